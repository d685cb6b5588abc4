#!/usr/bin/env python3
"""The mail servers of benches/service.sh: sends a generated log's messages to syslog-ng over
TCP at a fixed rate, as RFC 5424 lines stamped with the current time, one connection per
server (mx1..mxN, as a forwarding syslog daemon on each server would).

usage: service-feed.py POOL PORT RATE SECONDS

POOL is a `maillog-loggen` log (BSD headers); its servers mail01, mail02, … become mx1, mx2, …
and its lines are sent in order, from the start again when they run out. Every 10 ms the
lines due by then are sent, so the rate holds on average over any 10 ms. At the end it prints
the lines sent and the rate reached on stderr.
"""

import re
import socket
import sys
import time

LINE = re.compile(rb"^\S+ +\d+ \S+ (\S+) ([^\[:\s]+)(?:\[(\d+)\])?: (.*)$")


def load(path):
    lines = []
    with open(path, "rb") as f:
        for raw in f:
            m = LINE.match(raw.rstrip(b"\n"))
            if not m:
                continue
            host, prog, pid, msg = m.groups()
            if host.startswith(b"mail") and host[4:].isdigit():
                host = b"mx%d" % int(host[4:])
            # mail.info (<22>), also for the generator's few lines of other programs: they are
            # part of the central host's mail.log it models.
            lines.append((host, b"<22>1 ", b" %s %s %s - - %s\n" % (host, prog, pid or b"-", msg)))
    return lines


def main():
    pool_path, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    pool = load(pool_path)
    if not pool:
        sys.exit(f"service-feed: no lines in {pool_path}")
    conns = {}
    for host in sorted({h for h, _, _ in pool}):
        conns[host] = socket.create_connection(("127.0.0.1", port))
    start = time.monotonic()
    sent = 0
    i = 0
    n = len(pool)
    while True:
        now = time.monotonic()
        elapsed = now - start
        if elapsed >= seconds:
            break
        due = int(rate * elapsed) - sent
        if due > 0:
            t = time.time()
            stamp = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % (t % 1 * 1e6)).encode()
            batches = {}
            for _ in range(due):
                host, head, tail = pool[i]
                batches.setdefault(host, []).append(head + stamp + tail)
                i = (i + 1) % n
            for host, batch in batches.items():
                conns[host].sendall(b"".join(batch))
            sent += due
        time.sleep(max(0.0, 0.01 - (time.monotonic() - now)))
    for c in conns.values():
        c.close()
    took = time.monotonic() - start
    print(f"service-feed: {sent} lines in {took:.1f} s: {sent / took:.0f} lines/s over {len(conns)} connections", file=sys.stderr)


if __name__ == "__main__":
    main()
