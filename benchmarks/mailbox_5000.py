#!/usr/bin/env python3
"""The 5,000-message rows of the performance issue, side by side: SELECT in a new session, `FETCH 1:* (ENVELOPE)`,
`UID FETCH 1:* (FLAGS)`, a header download (`BODY.PEEK[HEADER]`, `HEADER.FIELDS`) and `UID SEARCH TEXT` on a
mailbox of 5,000 messages of the benchmark mbox, and imaptest
with 10 clients on one INBOX without logging out. Medians of `--repeat` runs, servers alternating.

    benchmarks/mailbox_5000.py --mbox /tmp/bench.mbox --imaptest PATH \\
        --server mailhost=127.0.0.1:18143:imaptest150:imaptest1 --server dovecot=127.0.0.1:16143:imaptest150:imaptest1

Each server needs the account; the mailbox `bench5k` is created and filled over IMAP (APPEND, so both servers hold
the same messages) the first time. The imaptest row runs against the account's INBOX (`users=1`, `logout=0`).
"""
import argparse
import os
import statistics
import time

from compare import Conn, run_imaptest

MAILBOX = "bench5k"


def messages(path):
    """The messages of an mbox file (separated by `From ` lines after an empty line), with CRLF line ends."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    out, current, previous = [], None, b""
    for line in lines:
        if line.startswith(b"From ") and previous.strip() == b"":
            if current:
                out.append(current)
            current = []
        elif current is not None:
            current.append(line.rstrip(b"\r"))
        previous = line
    if current:
        out.append(current)
    return [b"\r\n".join(m).rstrip(b"\r\n") + b"\r\n" for m in out]


def fill(host, port, user, password, source, count):
    """Creates `bench5k` and APPENDs messages from `source` until it holds `count`."""
    c = Conn(host, port)
    c.command(f'LOGIN {user} "{password}"')
    try:
        c.command(f"CREATE {MAILBOX}")
    except RuntimeError:
        pass  # exists
    c.command(f"SELECT {MAILBOX}")
    have = next(int(line.split()[1]) for line in c.last.split(b"\r\n") if line.endswith(b" EXISTS"))
    for i in range(have, count):
        c.command(f"APPEND {MAILBOX}", literal=source[i % len(source)])
    c.close()


def timed(host, port, user, password, command, select=True):
    """A new session: LOGIN (and SELECT unless timing SELECT itself); returns the seconds `command` took."""
    c = Conn(host, port)
    c.command(f'LOGIN {user} "{password}"')
    if select:
        c.command(f"SELECT {MAILBOX}")
    elapsed = c.command(command)
    c.close()
    return elapsed


def imaptest_cycles(binary, host, port, user, password, secs):
    """imaptest, 10 clients on the account's INBOX, no logouts: (commands per second, FETCH commands, error lines)."""
    totals, errors = run_imaptest(
        binary, [f"host={host}", f"port={port}", f"user={user}", f"pass={password}", "users=1", "clients=10",
                 "logout=0", "mbox=" + os.environ.get("MBOX", "")], secs)
    return sum(totals.values()) / secs, totals.get("Fetc", 0), errors


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", action="append", required=True, help="NAME=HOST:PORT:USER:PASSWORD")
    p.add_argument("--mbox", required=True)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--imaptest", help="imaptest binary: runs the 10-clients-on-one-INBOX row")
    p.add_argument("--secs", type=int, default=20)
    args = p.parse_args()
    servers = []
    for spec in args.server:
        name, rest = spec.split("=", 1)
        host, port, user, password = rest.split(":", 3)
        servers.append((name, host, int(port), user, password))
    source = messages(args.mbox)
    os.environ["MBOX"] = os.path.abspath(args.mbox)
    for _, host, port, user, password in servers:
        fill(host, port, user, password, source, args.messages)

    rows = [
        ("SELECT, new session (ms)", f"SELECT {MAILBOX}", False),
        ("FETCH 1:* (ENVELOPE) (ms)", "FETCH 1:* (ENVELOPE)", True),
        ("UID FETCH 1:* (FLAGS) (ms)", "UID FETCH 1:* (FLAGS)", True),
        # A client's header download: the whole header, and the fields a message list shows.
        ("FETCH 1:* (BODY.PEEK[HEADER]) (ms)", "FETCH 1:* (BODY.PEEK[HEADER])", True),
        ("FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From To Subject Date)]) (ms)",
         "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From To Subject Date)])", True),
        ("UID SEARCH TEXT budget (ms)", "UID SEARCH TEXT budget", True),
        ("UID SEARCH TEXT absent word (ms)", "UID SEARCH TEXT zyxwvutq", True),
    ]
    results = {}
    for _ in range(args.repeat):
        for name, host, port, user, password in servers:
            for row, command, select in rows:
                ms = timed(host, port, user, password, command, select) * 1000
                results.setdefault(row, {}).setdefault(name, []).append(ms)
    if args.imaptest:
        for _ in range(3):
            for name, host, port, user, password in servers:
                rate, fetches, errors = imaptest_cycles(args.imaptest, host, port, user, password, args.secs)
                results.setdefault("10 clients, one INBOX, logout=0 (cmds/s)", {}).setdefault(name, []).append(rate)
                results.setdefault("10 clients, one INBOX, logout=0 (FETCHes)", {}).setdefault(name, []).append(
                    fetches)
                results.setdefault("10 clients, one INBOX, logout=0 (error lines)", {}).setdefault(name, []).append(
                    errors)
                print(f"{name}: 10 clients {rate:.0f} cmds/s, {fetches} FETCHes, {errors} error lines", flush=True)

    names = [s[0] for s in servers]
    print()
    print("| measure | " + " | ".join(names) + " | ratio |")
    print("|---|" + "---|" * len(names) + "---|")
    for row, by in results.items():
        medians = [statistics.median(by[n]) for n in names]
        ratio = ""
        if len(names) == 2 and all(medians) and "error" not in row:
            ratio = medians[0] / medians[1] if "(ms)" not in row else medians[1] / medians[0]
            ratio = f"{ratio:.2f}x"
        print(f"| {row} | " + " | ".join(f"{m:.1f}" for m in medians) + f" | {ratio} |")


if __name__ == "__main__":
    main()
