#!/usr/bin/env python3
"""Machine probes for bench/compare.sh: what a durable write costs on this disk, and what
a loopback round trip costs. Prints one JSON line.

Disk (in DIR, which must be on the disk the servers write to): ITERATIONS appends to a
new file, each followed by fdatasync, in two sizes:

- "fsync_4k": 4 KiB per append, the disk probe of the comparison. Every append lands in a
  new block, so on ext4 each fdatasync also commits the block's allocation (a journal
  commit).
- "fsync_100b": 100 bytes per append, about one small txn record. Most appends stay in
  the block already allocated, so most fdatasyncs flush data (and the size) only; the p99
  shows the ones that start a new block.

Loopback: a TCP echo of 64 bytes over 127.0.0.1 (TCP_NODELAY, one thread each side),
ITERATIONS round trips. Python adds some microseconds to each, so it is an upper bound.

Usage: probe.py DIR [ITERATIONS]
"""

import json
import os
import socket
import sys
import threading
import time

def percentiles(samples_s):
    """p50 and p99 of durations in seconds, as milliseconds."""
    ordered = sorted(samples_s)
    last = len(ordered) - 1

    def pick(q):
        return round(ordered[min(last, int(q * len(ordered)))] * 1e3, 4)

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "n": len(ordered)}


def fsync_probe(path, iterations, size):
    buffer = os.urandom(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        samples = []
        for _ in range(iterations):
            started = time.perf_counter()
            os.write(fd, buffer)
            os.fdatasync(fd)
            samples.append(time.perf_counter() - started)
        return percentiles(samples)
    finally:
        os.close(fd)
        os.unlink(path)


def rtt_probe(iterations):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    message = b"x" * 64

    def echo():
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                data = conn.recv(len(message))
                if not data:
                    return
                conn.sendall(data)

    server = threading.Thread(target=echo, daemon=True)
    server.start()
    client = socket.create_connection(listener.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    with client:
        for _ in range(iterations + 100):
            started = time.perf_counter()
            client.sendall(message)
            received = 0
            while received < len(message):
                received += len(client.recv(len(message) - received))
            samples.append(time.perf_counter() - started)
    server.join(timeout=2)
    listener.close()
    # The first hundred warm the path up.
    return percentiles(samples[100:])


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    directory = sys.argv[1]
    iterations = int(sys.argv[2]) if len(sys.argv) == 3 else 1000
    path = os.path.join(directory, "fsync-probe.bin")
    report = {
        "fsync_4k": fsync_probe(path, iterations, 4096),
        "fsync_100b": fsync_probe(path, iterations, 100),
        "loopback_rtt": rtt_probe(iterations),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
