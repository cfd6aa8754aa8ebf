#!/usr/bin/env python3
"""LMTP delivery benchmark: messages per second into real mailboxes, for mailhost or any LMTP server (Dovecot).

Each run delivers --messages messages over --connections parallel LMTP connections (one transaction per message,
--recipients recipients each), and reports the wall time and the rate. Medians over the runs are printed at the end.
The message is a ~4 KiB text/plain mail unless --message FILE is given.

    benchmarks/lmtp_delivery.py --port 2424 --to bench@example.com --messages 2000 --connections 4

The recipients must exist (mailadmin user add bench …); with --recipients 3 the addresses are the --to address and
two +folder variants of it (user+a@domain, user+b@domain), which mailhost files into INBOX when the folder does not
exist.
"""
import argparse
import concurrent.futures
import smtplib
import statistics
import time


def message(size):
    body = ("The quick brown fox jumps over the lazy dog. " * 2 + "\r\n") * (size // 92 + 1)
    head = (
        "From: Bench <bench@example.org>\r\nTo: bench@example.com\r\nSubject: benchmark\r\n"
        "Date: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <{n}@bench.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    return head, body


def deliver(host, port, recipients, count, head, body, offset):
    lmtp = smtplib.LMTP(host, port)
    lmtp.ehlo("bench.example")
    for n in range(count):
        # smtplib reads one reply after DATA; LMTP sends one per accepted recipient (RFC 2033 4.2), so the
        # transaction is driven by hand to read them all.
        code, reply = lmtp.mail("bench@example.org")
        if code != 250:
            raise RuntimeError(f"MAIL FROM: {code} {reply!r}")
        for rcpt in recipients:
            code, reply = lmtp.rcpt(rcpt)
            if code != 250:
                raise RuntimeError(f"RCPT TO:<{rcpt}>: {code} {reply!r}")
        replies = [lmtp.data((head.format(n=offset + n) + body).encode())]
        replies += [lmtp.getreply() for _ in recipients[1:]]
        failed = [r for r in replies if r[0] != 250]
        if failed:
            raise RuntimeError(f"DATA: {failed}")
    lmtp.quit()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2424)
    p.add_argument("--to", required=True, help="recipient address, user@domain")
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--recipients", type=int, default=1, choices=[1, 2, 3])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()

    user, domain = args.to.split("@")
    recipients = [args.to, f"{user}+a@{domain}", f"{user}+b@{domain}"][: args.recipients]
    head, body = message(args.size)
    per = args.messages // args.connections
    rates = []
    for run in range(args.runs):
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.connections) as pool:
            futures = [
                pool.submit(deliver, args.host, args.port, recipients, per, head, body, run * args.messages + c * per)
                for c in range(args.connections)
            ]
            for f in futures:
                f.result()
        elapsed = time.monotonic() - started
        delivered = per * args.connections
        rates.append(delivered / elapsed)
        print(f"run {run + 1}: {delivered} messages x {len(recipients)} recipients in {elapsed:.2f} s, "
              f"{delivered / elapsed:.0f} messages/s")
    print(f"median: {statistics.median(rates):.0f} messages/s "
          f"({args.connections} connections, {len(recipients)} recipients, {args.size} bytes)")


if __name__ == "__main__":
    main()
