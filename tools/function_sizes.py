#!/usr/bin/python3
"""Lists C++ functions longer than a limit (default 60 lines, from the signature's opening brace
to the closing one), for the style rule "functions mostly under 40 lines, none over 60".

  tools/function_sizes.py [--limit N] DIR...     exit 1 if any function is over the limit

A small scanner, not a compiler: it drops comments, string and character literals, then
matches braces; a block opened after a `)` (a function, a lambda at namespace or class level, a
constructor with an initializer list) outside any function counts as a function."""

import argparse
import os
import re
import sys

TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|R"([^(]*)\(.*?\)\1"|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
                   re.S)


def blank(match):
    text = match.group(0)
    return re.sub(r"[^\n]", " ", text)


def functions(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        code = TOKEN.sub(blank, f.read())
    stack = []  # (kind, start line)
    head_start = 0
    line = 1
    found = []
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            head = code[head_start:i]
            in_function = any(entry[0] == "function" for entry in stack)
            if in_function:
                kind = "block"
            elif re.search(r"\bnamespace\b", head) or re.search(r'\bextern\s*$', head):
                kind = "namespace"
            elif ")" in head and not re.search(r"\b(class|struct|enum|union)\b[^()]*$", head):
                kind = "function"
            else:
                kind = "class"
            name = ""
            if kind == "function":
                m = re.findall(r"([~\w:]+(?:<[^<>]*>)?)\s*\(", head)
                name = m[0] if m else "?"
            stack.append((kind, line, name))
            head_start = i + 1
        elif c == "}":
            if stack:
                kind, start, name = stack.pop()
                if kind == "function":
                    found.append((name, start, line))
            head_start = i + 1
        elif c == ";":
            head_start = i + 1
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    over = []
    for top in args.dirs:
        for root, _, files in os.walk(top):
            for name in sorted(files):
                if not name.endswith((".cpp", ".hpp")):
                    continue
                path = os.path.join(root, name)
                for fn, start, end in functions(path):
                    if end - start + 1 > args.limit:
                        over.append((end - start + 1, path, start, fn))
    for size, path, start, fn in sorted(over, reverse=True):
        print(f"{path}:{start}: {fn} is {size} lines")
    print(f"function_sizes: {len(over)} function(s) over {args.limit} lines in {' '.join(args.dirs)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
