#!/usr/bin/env python3
"""SORT and THREAD benchmark: seeds N varied messages over LMTP (subjects from a small vocabulary with Re:/Fwd:,
60 % replies to an earlier message through References, 200 senders, spread dates), then times `UID SORT (REVERSE
ARRIVAL)`, `UID SORT (SUBJECT)` and `UID THREAD REFERENCES` on the INBOX, 5 runs each, and prints the medians.

    benchmarks/sort_thread.py --lmtp 24 --imap 143 --user tim --password timmy --rcpt tim@example.com --seed 10000

Run it against MailHost and, beside it, Dovecot (with its LMTP listener) on the same machine; --seed 0 only times.
"""
import argparse
import imaplib
import random
import smtplib
import statistics
import time


def seed(port, rcpt, n):
    random.seed(7)
    words = ["budget", "meeting", "report", "lunch", "release", "review", "plan", "invoice", "trip", "party"]
    senders = [f"user{i}@example.org" for i in range(200)]
    c = smtplib.LMTP("127.0.0.1", port)
    c.ehlo_or_helo_if_needed = lambda: None
    c.docmd("LHLO", "bench")
    start = time.time()
    for i in range(n):
        topic = f"{random.choice(words)} {random.choice(words)} {i % 997}"
        parent = random.randrange(i) if i and random.random() < 0.6 else None
        prefix = "Re: " if parent is not None else random.choice(["", "", "Fwd: "])
        refs = f"References: <m{parent}@bench>\r\n" if parent is not None else ""
        day = 1 + (i * 7919) % 28
        message = (
            f"From: Name {i % 200} <{random.choice(senders)}>\r\nTo: {rcpt}\r\n"
            f"Subject: {prefix}{topic}\r\nMessage-ID: <m{i}@bench>\r\n{refs}"
            f"Date: {day} Feb 2024 {i % 24:02d}:{i % 60:02d}:00 +0000\r\n\r\nbody {i}\r\n")
        c.docmd("MAIL", "FROM:<b@example.org>")
        c.docmd("RCPT", f"TO:<{rcpt}>")
        c.docmd("DATA")
        c.send(message.encode() + b".\r\n")
        code, _ = c.getreply()
        if code != 250:
            raise SystemExit(f"delivery {i} failed: {code}")
    c.quit()
    print(f"seeded {n} messages in {time.time() - start:.1f} s")


def measure(port, user, password, runs):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(user, password)
    m.select("INBOX", readonly=True)
    commands = [
        ("UID SORT (REVERSE ARRIVAL)", ("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL")),
        ("UID SORT (SUBJECT)", ("SORT", "(SUBJECT)", "UTF-8", "ALL")),
        ("UID THREAD REFERENCES", ("THREAD", "REFERENCES", "UTF-8", "ALL")),
    ]
    for name, args in commands:
        times = []
        for _ in range(runs):
            started = time.time()
            typ, data = m.uid(*args)
            times.append((time.time() - started) * 1000)
            if typ != "OK":
                raise SystemExit(f"{name}: {data}")
        runs_text = ", ".join(f"{t:.0f}" for t in times)
        print(f"{name}: median {statistics.median(times):.0f} ms (runs {runs_text}), {len(data[0])} bytes")
    m.logout()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lmtp", type=int, default=24)
    parser.add_argument("--imap", type=int, default=143)
    parser.add_argument("--user", default="tim")
    parser.add_argument("--password", default="timmy")
    parser.add_argument("--rcpt", default="tim@example.com")
    parser.add_argument("--seed", type=int, default=10000, help="messages to deliver first (0: none)")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    if options.seed:
        seed(options.lmtp, options.rcpt, options.seed)
    measure(options.imap, options.user, options.password, options.runs)


if __name__ == "__main__":
    main()
