#!/usr/bin/env python3
"""MailHost and Dovecot side by side in one run: medians and ratios for the rows of issue 11.

Both servers must already be running, with the same users and passwords (imaptest's `user=imaptest%d`, and for
the large-mailbox rows an account holding N messages on each). Rounds alternate between the servers, so machine
noise hits both. Ratios are MailHost / Dovecot for rates and Dovecot time / MailHost time for latencies, so a
ratio above 1.0 means MailHost is ahead.

    benchmarks/compare.py --imaptest /path/to/imaptest --mbox /tmp/bench.mbox \\
        --server mailhost=127.0.0.1:18143 --server dovecot=127.0.0.1:16143 \\
        --clients 50 --clients 200 --secs 30 --rounds 3 \\
        --big mailhost=big100k:imaptest1 --big dovecot=tim100k:timmy \\
        --dovecot-conf /tmp/dovecot-bench/dovecot.conf --pg-url postgres://postgres@127.0.0.1:25432/mh

imaptest is not part of this repository (build it from dovecot/imaptest, release-2.3 branch); `make_mbox.py`
writes the mbox. Rows that are not asked for (no --imaptest, no --big) are skipped.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import threading
import time


def run_imaptest(binary, options, secs):
    """One imaptest run (`options`: key=value strings besides secs); returns ({command: count} from its totals,
    error lines)."""
    cmd = [binary] + options + [f"secs={secs}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 120,
                         cwd=os.path.dirname(os.path.dirname(binary)) or ".").stdout
    lines = out.splitlines()
    errors = [l for l in lines if l.startswith("Error:") or " BAD " in l]
    if "Totals:" not in lines:
        raise RuntimeError("imaptest printed no totals:\n" + out[-2000:])
    names = lines[lines.index("Totals:") + 1].split()
    counts = [int(c) for c in lines[lines.index("Totals:") + 4].split()]
    return dict(zip(names, counts)), len(errors)


def imaptest_mix(binary, host, port, args, clients):
    """One imaptest run of the default command mix; returns (commands per second, error lines)."""
    totals, errors = run_imaptest(
        binary, [f"host={host}", f"port={port}", f"user={args.user}", f"pass={args.password}",
                 f"users={args.users}", f"mbox={args.mbox}", f"clients={clients}"], args.secs)
    return sum(totals.values()) / args.secs, errors


class Conn:
    """A minimal IMAP client on a raw socket (no Nagle), enough to time single commands."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.n = 0
        self._until(lambda: b"\r\n" in self.buf)
        self.buf = b""

    def _until(self, done):
        while not done():
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk

    def command(self, text, literal=None):
        """Sends a command (a LITERAL+ literal when given) and waits for its tagged reply; returns seconds."""
        self.n += 1
        tag = f"t{self.n}".encode()
        start = time.perf_counter()
        if literal is None:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() + f" {{{len(literal)}+}}\r\n".encode() + literal + b"\r\n")
        marker = b"\r\n" + tag + b" "
        self._until(lambda: marker in self.buf[-300:] or self.buf.startswith(tag + b" "))
        elapsed = time.perf_counter() - start
        reply = self.buf[self.buf.rfind(tag + b" "):]
        if not reply.startswith(tag + b" OK"):
            raise RuntimeError(f"{text[:40]!r}: {reply[:200]!r}")
        self.last = self.buf  # the whole answer, for callers that read it
        self.buf = b""
        return elapsed

    def close(self):
        try:
            self.s.sendall(b"z LOGOUT\r\n")
        finally:
            self.s.close()


def append_rate(host, port, user, password, count, connections, size):
    """APPENDs `count` messages of `size` bytes over `connections` connections; returns messages per second."""
    body = (b"x" * 70 + b"\r\n") * (size // 72)
    per = count // connections
    conns = []
    for _ in range(connections):
        c = Conn(host, port)
        c.command(f'LOGIN {user} "{password}"')
        conns.append(c)

    def work(c, k):
        for i in range(per):
            msg = (f"From: bench@example.org\r\nTo: {user}@example.com\r\nSubject: append {k}.{i}\r\n"
                   f"Message-ID: <append.{k}.{i}.{time.time_ns()}@example.org>\r\n\r\n").encode() + body
            c.command("APPEND INBOX", literal=msg)

    threads = [threading.Thread(target=work, args=(c, k)) for k, c in enumerate(conns)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return per * connections / elapsed


def big_mailbox(host, port, user, password, repeats=3):
    """SELECT INBOX and `UID FETCH 1:* (UID FLAGS)` times (ms), `repeats` times on one connection: the first pair,
    and the median of the others (a server's caches are warm then; the first of a fresh process is cold)."""
    c = Conn(host, port)
    c.command(f'LOGIN {user} "{password}"')
    pairs = []
    for _ in range(repeats):
        select = c.command("SELECT INBOX") * 1000
        fetch = c.command("UID FETCH 1:* (UID FLAGS)") * 1000
        c.command("UNSELECT")
        pairs.append((select, fetch))
    c.close()
    rest = pairs[1:] or pairs
    return pairs[0], (statistics.median(p[0] for p in rest), statistics.median(p[1] for p in rest))


def show_config(args):
    if args.dovecot_conf:
        text = open(args.dovecot_conf).read()
        keep = [l.strip() for l in text.splitlines()
                if re.match(r"\s*(mail_location|mail_fsync|mailbox_list_index|mail_cache|args = scheme|service_count|"
                            r"process_min_avail|imap_hibernate|fsync)", l)]
        print("dovecot:", "; ".join(keep) or "(defaults)",
              "| mail_fsync default = optimized" if "mail_fsync" not in text else "")
    if args.pg_url:
        settings = subprocess.run(
            ["psql", args.pg_url, "-Atc",
             "select string_agg(name || '=' || setting, ' ') from pg_settings where name in "
             "('fsync','synchronous_commit','full_page_writes','shared_buffers','wal_sync_method')"],
            capture_output=True, text=True).stdout.strip()
        print("postgresql:", settings)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", action="append", required=True, help="NAME=HOST:PORT (MailHost first, then Dovecot)")
    p.add_argument("--imaptest", help="imaptest binary: runs the default-mix rows")
    p.add_argument("--mbox", default="/tmp/bench.mbox")
    p.add_argument("--user", default="imaptest%d")
    p.add_argument("--password", default="imaptest1")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--clients", type=int, action="append")
    p.add_argument("--secs", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--append", type=int, default=0, help="messages for the APPEND rows (e.g. 5000); 0 skips them")
    p.add_argument("--append-user", default="imaptest200", help="an account outside the mix's users")
    p.add_argument("--big", action="append", default=[], help="NAME=USER:PASSWORD of an account with a large INBOX")
    p.add_argument("--dovecot-conf")
    p.add_argument("--pg-url")
    args = p.parse_args()
    servers = []
    for spec in args.server:
        name, address = spec.split("=", 1)
        host, port = address.rsplit(":", 1)
        servers.append((name, host, int(port)))
    bigs = dict(spec.split("=", 1) for spec in args.big)
    show_config(args)

    results = {}  # row -> server -> [values]

    def record(row, name, value):
        results.setdefault(row, {}).setdefault(name, []).append(value)

    for r in range(args.rounds):
        for name, host, port in servers:
            if args.imaptest:
                for clients in args.clients or [50]:
                    rate, errors = imaptest_mix(args.imaptest, host, port, args, clients)
                    record(f"imaptest default mix, {clients} clients (cmds/s)", name, rate)
                    record(f"imaptest default mix, {clients} clients (error lines)", name, errors)
                    print(f"round {r + 1} {name}: mix {clients} clients {rate:.0f} cmds/s, {errors} error lines",
                          flush=True)
            if args.append:
                for connections in (1, 10):
                    rate = append_rate(host, port, args.append_user, args.password, args.append, connections, 4096)
                    record(f"APPEND {args.append} x 4 KB, {connections} connection(s) (msg/s)", name, rate)
                    print(f"round {r + 1} {name}: append x{connections} {rate:.0f} msg/s", flush=True)
            if name in bigs:
                user, password = bigs[name].split(":", 1)
                (first_select, first_fetch), (select, fetch) = big_mailbox(host, port, user, password)
                record("large INBOX: SELECT (ms)", name, select)
                record("large INBOX: UID FETCH 1:* (UID FLAGS) (ms)", name, fetch)
                record("large INBOX: first SELECT of the round (ms)", name, first_select)
                record("large INBOX: first UID FETCH of the round (ms)", name, first_fetch)
                print(f"round {r + 1} {name}: SELECT {select:.1f} ms, UID FETCH flags {fetch:.0f} ms "
                      f"(first: {first_select:.1f} / {first_fetch:.0f} ms)", flush=True)

    names = [s[0] for s in servers]
    print()
    print("| measure | " + " | ".join(names) + " | ratio |")
    print("|---|" + "---|" * len(names) + "---|")
    for row, by in results.items():
        medians = [statistics.median(by[n]) if n in by else None for n in names]
        ratio = ""
        if len(names) == 2 and all(m for m in medians) and "error" not in row:
            ratio = medians[0] / medians[1] if "/s)" in row else medians[1] / medians[0]
            ratio = f"{ratio:.2f}x"
        cells = [f"{m:.1f}" if m is not None else "-" for m in medians]
        print(f"| {row} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main()
