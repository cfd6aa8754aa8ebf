#!/usr/bin/env python3
"""Memory per authenticated IDLE connection: opens N connections, logs each in, SELECTs INBOX and starts IDLE,
then reports the server's RSS growth divided by N (sampled from /proc/PID/status), or with --tree the growth of the
PSS of PID and its descendants (for Dovecot, whose master forks a process per session).

    benchmarks/idle_connections.py --port 1143 --pid $(pgrep -f 'mailhost serve') --connections 1000
"""
import argparse
import os
import socket
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid):
    """Proportional set size of `pid` and all its descendants: for multi-process servers such as Dovecot (one imap
    process per session), shared pages counted once across the processes."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def read_until(s, marker):
    buf = b""
    while marker not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError(f"closed while waiting for {marker!r}: {buf!r}")
        buf += chunk
    return buf


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1143)
    p.add_argument("--user", default="tim")
    p.add_argument("--password", default="timmy")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--settle", type=float, default=2,
                   help="seconds to wait after the last connection before measuring (timers the logins left behind, "
                        "such as PostgresNIO's cancelled pool timers, live up to 60 s)")
    p.add_argument("--tree", action="store_true",
                   help="measure PSS of --pid and its descendants (Dovecot's master) instead of RSS of --pid")
    args = p.parse_args()
    memory = (lambda: pss_kib(args.pid)) if args.tree else (lambda: rss_kib(args.pid))

    # Warm up: one full session so one-time allocations are not counted.
    warm = socket.create_connection((args.host, args.port))
    read_until(warm, b"\r\n")
    warm.sendall(f"a LOGIN {args.user} \"{args.password}\"\r\nb SELECT INBOX\r\nc LOGOUT\r\n".encode())
    read_until(warm, b"c OK")
    warm.close()
    time.sleep(1)
    before = memory()
    sockets = []
    start = time.perf_counter()
    for i in range(args.connections):
        s = socket.create_connection((args.host, args.port))
        read_until(s, b"\r\n")
        s.sendall(f"a LOGIN {args.user} \"{args.password}\"\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
        read_until(s, b"+ ")
        sockets.append(s)
    setup = time.perf_counter() - start
    time.sleep(args.settle)
    after = memory()
    print(f"connections={len(sockets)} setup={setup:.1f}s {'pss' if args.tree else 'rss'}_before={before}KiB "
          f"after={after}KiB "
          f"per_connection={(after - before) / len(sockets):.1f}KiB")
    for s in sockets:
        s.sendall(b"DONE\r\nd LOGOUT\r\n")
    for s in sockets:
        s.close()


if __name__ == "__main__":
    main()
