#!/usr/bin/python3
"""Captures the first flight of real HTTP/2 clients: everything a client sends a server on
127.0.0.1 up to the end of its first request's headers. Regenerates the fixtures of
tests/agent/h2_first_flight_test.cpp (tests/agent/data/*.hex) and the fuzz seeds
(tests/fuzz/corpus/fuzz_hpack/).

Clients: curl --http2-prior-knowledge -H 'x-lpk-route: a' and a python3-grpcio (Debian) unary
call with metadata x-lpk-route: a. The server side answers with an empty SETTINGS frame, reads
frames until a HEADERS/CONTINUATION with END_HEADERS, and closes; the clients then fail, which
is expected.

    /usr/bin/python3 tests/agent/capture_h2_first_flight.py
"""
import os
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
CORPUS = os.path.join(HERE, "..", "fuzz", "corpus", "fuzz_hpack")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SERVER_SETTINGS = bytes(9)[:3] + b"\x04" + bytes(5)  # length 0, type SETTINGS, stream 0


def first_flight(listener):
    """Accepts one connection and returns its bytes up to the first END_HEADERS."""
    conn, _ = listener.accept()
    with conn:
        conn.sendall(SERVER_SETTINGS)
        data = b""
        pos = len(PREFACE)
        while True:
            while len(data) < pos + 9 or len(data) < pos + 9 + int.from_bytes(data[pos:pos + 3], "big"):
                chunk = conn.recv(65536)
                if not chunk:
                    sys.exit(f"capture: connection closed after {len(data)} bytes")
                data += chunk
            length, ftype, flags = int.from_bytes(data[pos:pos + 3], "big"), data[pos + 3], data[pos + 4]
            pos += 9 + length
            if ftype in (0x1, 0x9) and flags & 0x4:
                return data[:pos]


def capture(name, run_client):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = threading.Thread(target=run_client, args=(port,))
        client.start()
        data = first_flight(listener)
        client.join()
    with open(os.path.join(DATA, f"h2_{name}_first_flight.hex"), "w") as f:
        f.write(data.hex() + "\n")
    with open(os.path.join(CORPUS, f"{name}_first_flight"), "wb") as f:
        f.write(data)
    print(f"capture: {name}: {len(data)} bytes")


def curl(port):
    subprocess.run(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge",
                    "-H", "x-lpk-route: a", f"http://127.0.0.1:{port}/hello?name=lpk"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def grpc_client(port):
    import grpc
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/lpk.test.Echo/Say")
        try:
            call(b"\x0a\x03lpk", timeout=10, metadata=(("x-lpk-route", "a"),))
        except grpc.RpcError:
            pass  # the capture server hangs up after the headers


if __name__ == "__main__":
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(CORPUS, exist_ok=True)
    capture("curl", curl)
    capture("grpc", grpc_client)
