#!/usr/bin/python3
"""A real gRPC peer for the kubesim Service tests (python3-grpcio's generic handlers, bytes in
and out: no protoc, no generated code).

  grpc_echo.py serve PORT     the server a pod runs: /lpk.test.Echo/Who (unary) answers
                              "<HOSTNAME> <peer>" (the peer names the TCP connection the call
                              came on); /lpk.test.Echo/Chat (bidirectional) answers each message
                              with "<HOSTNAME> <message>".
  grpc_echo.py client TARGET  one channel to TARGET driven by commands on stdin, each answered
                              by one JSON line on stdout:
                                who N      N concurrent Who calls -> {"answers": [...]}
                                open       starts a Chat call -> {"open": true}
                                chat TEXT  sends TEXT on it -> {"answer": "..."}
                                close      half-closes it and reads its end -> {"closed": true}
                              A failed call answers {"error": "..."}.
"""

import json
import os
import queue
import sys
from concurrent import futures

import grpc

WHO = "/lpk.test.Echo/Who"
CHAT = "/lpk.test.Echo/Chat"


def serve(port):
    me = os.environ.get("HOSTNAME", "?")

    def who(_request, context):
        return f"{me} {context.peer()}".encode()

    def chat(requests, _context):
        for m in requests:
            yield me.encode() + b" " + m

    handler = grpc.method_handlers_generic_handler("lpk.test.Echo", {
        "Who": grpc.unary_unary_rpc_method_handler(who),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    })
    # Enough workers for the tests' concurrent calls plus open Chat streams.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), handlers=[handler])
    server.add_insecure_port(f"0.0.0.0:{port}")
    server.start()
    print(f"serving on {port}", flush=True)
    server.wait_for_termination()


class ChatCall:
    """One bidirectional call: messages go in through a queue, answers come back in order."""

    def __init__(self, channel):
        self.outbox = queue.Queue()
        self.answers = channel.stream_stream(CHAT)(iter(self.outbox.get, None), timeout=300)

    def say(self, text):
        self.outbox.put(text.encode())
        return next(self.answers).decode()

    def close(self):
        self.outbox.put(None)
        for _ in self.answers:  # the server's end of the call
            pass


def run_command(channel, line, state):
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "who":
        calls = [channel.unary_unary(WHO).future(b"", timeout=30) for _ in range(int(arg))]
        return {"answers": [c.result().decode() for c in calls]}
    if cmd == "open":
        state["chat"] = ChatCall(channel)
        return {"open": True}
    if cmd == "chat":
        return {"answer": state["chat"].say(arg)}
    if cmd == "close":
        state.pop("chat").close()
        return {"closed": True}
    return {"error": f"unknown command {cmd!r}"}


def client(target):
    # No proxy from the environment: the call must go to the ClusterIP itself.
    with grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        state = {}
        for line in sys.stdin:
            try:
                out = run_command(channel, line, state)
            except grpc.RpcError as e:
                out = {"error": f"{e.code()}: {e.details()}"}
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "client":
        client(sys.argv[2])
    else:
        sys.exit(__doc__)
