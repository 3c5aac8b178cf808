#!/usr/bin/python3
"""The peer of bench/portforward/run.sh: one port-forward WebSocket per connection, the way the
official Python client does it (kubernetes.stream.portforward: a WebSocket, a socketpair per
port and a thread pumping between them).

  python_peer.py fetch KUBECONFIG NS/POD:PORT BYTES    -> {"bytes":..,"seconds":..,"gbit_s":..}
  python_peer.py ttfb  KUBECONFIG NS/POD:PORT COUNT    -> {"count":..,"p50_us":..,"p99_us":..}

Timing starts before the WebSocket is opened: a new connection costs a new WebSocket."""

import json
import sys
import time

from kubernetes import client, config
from kubernetes.stream import portforward


def main():
    mode, kubeconfig, where, amount = sys.argv[1:5]
    ns, rest = where.split("/", 1)
    pod, port = rest.rsplit(":", 1)
    port = int(port)
    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))

    def open_socket():
        pf = portforward(api.connect_get_namespaced_pod_portforward, pod, ns, ports=str(port))
        s = pf.socket(port)
        s.setblocking(True)
        return pf, s

    if mode == "fetch":
        n = int(amount)
        start = time.monotonic()
        pf, s = open_socket()
        s.sendall(b"D" + n.to_bytes(8, "big"))
        got = 0
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            got += len(b)
        secs = time.monotonic() - start
        s.close()
        if got != n:
            sys.exit(f"fetched {got} of {n} bytes: {pf.error(port)}")
        print(json.dumps({"bytes": n, "seconds": secs, "gbit_s": n * 8 / secs / 1e9}))
    elif mode == "ttfb":
        samples = []
        for _ in range(int(amount)):
            start = time.monotonic()
            pf, s = open_socket()
            s.sendall(b"P")
            if s.recv(1) != b"p":
                sys.exit(f"no first byte: {pf.error(port)}")
            samples.append((time.monotonic() - start) * 1e6)
            s.close()
        samples.sort()
        pick = lambda q: samples[int(q * (len(samples) - 1) + 0.5)]
        print(json.dumps({"count": len(samples), "p50_us": pick(0.5), "p99_us": pick(0.99)}))
    else:
        sys.exit("mode is fetch or ttfb")


if __name__ == "__main__":
    main()
