#!/usr/bin/python3
"""The peers of the header-routing e2e (test_connect_route.py).

  route_peers.py http PORT NAME     a developer's local HTTP/1.1 server (keep-alive): answers
                                    {"served_by": NAME, "route": <x-lpk-route it got>,
                                     "has_cluster_env": <REDIS_PASSWORD imported>}
  route_peers.py grpc PORT NAME     the same as a gRPC server (python3-grpcio, no protoc):
                                    /lpk.Route/Who answers NAME and the x-lpk-route metadata
  route_peers.py client HOST:PORT STEP...
                                    runs in a pod: ONE TCP connection, one request per STEP
                                    (`-` no header, `raw` bytes that are not HTTP and then the
                                    end, anything else the x-lpk-route value); prints a JSON line
                                    per answer, the last with the connection's local port, to
                                    show it never changed
  route_peers.py grpc-client HOST:PORT [VALUE]
                                    calls /lpk.Route/Who (metadata x-lpk-route: VALUE if given)
"""

import http.server
import json
import os
import signal
import socket
import sys


def serve_http(port, name):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the router's test needs
        # Head and body go out in two writes: without TCP_NODELAY the body waits for the
        # client's delayed ACK of the head (40 ms per request on a kept-alive connection).
        disable_nagle_algorithm = True

        def do_GET(self):
            body = json.dumps({"served_by": name, "route": self.headers.get("x-lpk-route"),
                               "path": self.path,
                               "has_cluster_env": "REDIS_PASSWORD" in os.environ}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"route_peers {name} listening on {port}", flush=True)
    server.serve_forever()


def serve_grpc(port, name):
    from concurrent import futures
    import grpc

    def who(request, context):
        route = dict(context.invocation_metadata()).get("x-lpk-route")
        return json.dumps({"served_by": name, "route": route}).encode()

    handler = grpc.method_handlers_generic_handler("lpk.Route", {
        "Who": grpc.unary_unary_rpc_method_handler(who, request_deserializer=bytes,
                                                   response_serializer=bytes)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"route_peers {name} listening on {port}", flush=True)
    server.wait_for_termination()


def read_response(f):
    """Status line, headers and a Content-Length body from file `f`."""
    status = f.readline().decode().strip()
    headers = {}
    while True:
        line = f.readline().decode().strip()
        if not line:
            break
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0"))).decode()
    return status, headers, body


def client(address, steps):
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=20)
    f = s.makefile("rb")
    local_port = s.getsockname()[1]
    for step in steps:
        if step == "raw":
            s.sendall(b"HELLO lpk, not http\r\n\r\n")
            print(json.dumps({"step": step, "answer": f.read().decode(errors="replace")}))
            return
        extra = "" if step == "-" else f"x-lpk-route: {step}\r\n"
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())
        status, headers, body = read_response(f)
        print(json.dumps({"step": step, "status": status, "body": body,
                          "connection": headers.get("connection")}), flush=True)
    print(json.dumps({"local_port": local_port, "same_connection": s.getsockname()[1]
                      == local_port}))


def grpc_client(address, value):
    import grpc
    with grpc.insecure_channel(address) as channel:
        who = channel.unary_unary("/lpk.Route/Who", request_serializer=bytes,
                                  response_deserializer=bytes)
        metadata = [("x-lpk-route", value)] if value else []
        print(who(b"", metadata=metadata, timeout=20).decode())


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    mode = sys.argv[1]
    if mode == "http":
        serve_http(int(sys.argv[2]), sys.argv[3])
    elif mode == "grpc":
        serve_grpc(int(sys.argv[2]), sys.argv[3])
    elif mode == "client":
        client(sys.argv[2], sys.argv[3:])
    elif mode == "grpc-client":
        grpc_client(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
