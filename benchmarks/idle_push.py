#!/usr/bin/env python3
"""Cross-instance IDLE push latency: how long after an APPEND on one instance an IDLE client on another hears EXISTS.

    benchmarks/idle_push.py --append-port 18143 --idle-port 18243 --user imaptest150 --password imaptest1 \\
        --idlers 20 --appends 300 --interval 0.05

`--idlers` connections IDLE on INBOX through the second instance; one connection APPENDs (LITERAL+) to the same
INBOX through the first, `--appends` times, `--interval` seconds apart. The latency of each push is the time from
sending the APPEND to the `* n EXISTS` on each IDLE connection, so it includes storing the message (under load the
tagged OK can reach the appender after the push reaches the IDLE clients). Prints the median, p90, p99 and the
maximum in milliseconds, and the same for its two parts: the APPEND's own latency (sent to tagged OK), and the push
measured from the tagged OK. Run it while a load runs (e.g. imaptest's default mix) to measure push
under load; it does not start the load itself.
"""
import argparse
import socket
import statistics
import threading
import time


def connect(host, port, user, password):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f'a LOGIN {user} "{password}"\r\n'.encode())
    while not f.readline().startswith(b"a "):
        pass
    s.sendall(b"b SELECT INBOX\r\n")
    while True:
        line = f.readline()
        if line.startswith(b"b "):
            if not line.startswith(b"b OK"):
                raise RuntimeError(line)
            break
    return s, f


def read_reply(f, tag):
    """Reads up to the tagged reply of `tag`: (that line, the last EXISTS count seen on the way, or None)."""
    exists = None
    while True:
        line = f.readline()
        parts = line.split()
        if len(parts) == 3 and parts[2] == b"EXISTS":
            exists = int(parts[1])
        if line.startswith(tag.encode() + b" "):
            return line, exists


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--append-port", type=int, required=True)
    p.add_argument("--idle-port", type=int, required=True)
    p.add_argument("--user", default="imaptest150")
    p.add_argument("--password", default="imaptest1")
    p.add_argument("--idlers", type=int, default=20)
    p.add_argument("--appends", type=int, default=300)
    p.add_argument("--interval", type=float, default=0.05)
    args = p.parse_args()

    committed = {}  # EXISTS count -> time the APPEND that made it was sent
    answered = {}  # EXISTS count -> time its tagged OK arrived
    append_ms = []  # each APPEND's own latency: sent to tagged OK
    heard = []  # per IDLE connection: [(exists count, time heard)] in arrival order
    lock = threading.Lock()
    ready = threading.Barrier(args.idlers + 1)
    stop = threading.Event()

    def idler():
        mine = []
        with lock:
            heard.append(mine)
        s, f = connect(args.host, args.idle_port, args.user, args.password)
        s.sendall(b"i IDLE\r\n")
        line = f.readline()
        if not line.startswith(b"+"):
            raise RuntimeError(line)
        ready.wait()
        s.settimeout(0.5)
        buffered = b""
        while not stop.is_set():
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            if not chunk:
                break
            now = time.perf_counter()
            buffered += chunk
            *lines, buffered = buffered.split(b"\r\n")
            for line in lines:
                parts = line.split()
                if len(parts) == 3 and parts[2] == b"EXISTS":
                    mine.append((int(parts[1]), now))
        try:
            s.sendall(b"DONE\r\n")
            s.close()
        except OSError:
            pass

    threads = [threading.Thread(target=idler, daemon=True) for _ in range(args.idlers)]
    for t in threads:
        t.start()
    appender, af = connect(args.host, args.append_port, args.user, args.password)
    ready.wait()
    time.sleep(0.5)
    body = b"From: push@example.org\r\nSubject: push\r\n\r\n" + b"x" * 1000 + b"\r\n"
    for n in range(args.appends):
        sent = time.perf_counter()
        appender.sendall(f"p{n} APPEND INBOX {{{len(body)}+}}\r\n".encode() + body + b"\r\n")
        line, exists = read_reply(af, f"p{n}")
        ok = time.perf_counter()
        if not line.startswith(f"p{n} OK".encode()):
            raise RuntimeError(line)
        append_ms.append((ok - sent) * 1000)
        # APPENDUID's UID is not the EXISTS count; the appender's own selected view says the count.
        appender.sendall(f"q{n} NOOP\r\n".encode())
        _, later = read_reply(af, f"q{n}")
        if later is not None:
            exists = later
        if exists is not None:
            committed[exists] = sent
            answered[exists] = ok
        time.sleep(args.interval)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=3)
    latencies, after_answer = [], []
    with lock:
        for pushes in heard:
            # A push may cover several appends (EXISTS jumps when notifications are coalesced): it answers for each
            # count since the previous push.
            previous = None
            for count, when in pushes:
                first = count if previous is None else previous + 1
                for covered in range(first, count + 1):
                    if covered in committed:
                        latencies.append((when - committed[covered]) * 1000)
                        after_answer.append((when - answered[covered]) * 1000)
                previous = max(previous or 0, count)
    if not latencies:
        print("no pushes matched")
        return
    def summary(values):
        values = sorted(values)
        q = lambda f: values[min(len(values) - 1, int(f * len(values)))]
        return (f"median={statistics.median(values):.1f}ms p90={q(0.90):.1f}ms p99={q(0.99):.1f}ms "
                f"max={values[-1]:.1f}ms")

    print(f"pushes={len(latencies)} expected={args.appends * args.idlers} from sending the APPEND: {summary(latencies)}")
    # The two parts: the APPEND's own latency on the appending instance, and the push after the appender was told
    # (negative when the IDLE client heard first).
    print(f"  APPEND sent to its tagged OK: {summary(append_ms)}")
    print(f"  push after the tagged OK: {summary(after_answer)}")


if __name__ == "__main__":
    main()
