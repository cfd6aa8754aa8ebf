#!/usr/bin/env python3
"""Latency of cheap commands on one connection: NOOP (with nothing and with a mailbox selected), STATUS of a
mailbox, and SELECT followed by UNSELECT. Prints the median of `--repeat` runs of each, in milliseconds.

    benchmarks/command_latency.py --port 18143 --user big100k --password imaptest1 --mailbox INBOX

Run it against MailHost and Dovecot on the same mailbox size (e.g. the 100,000-message INBOX of large_mailbox.py):
these are the commands a client sends to poll, so their cost is mostly fixed overhead, not data.
"""
import argparse
import statistics

from compare import Conn


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--mailbox", default="INBOX")
    p.add_argument("--repeat", type=int, default=300)
    args = p.parse_args()

    c = Conn(args.host, args.port)
    c.command(f'LOGIN {args.user} "{args.password}"')

    def median_ms(command, after=None):
        times = []
        for _ in range(args.repeat):
            times.append(c.command(command) * 1000)
            if after:
                c.command(after)
        return statistics.median(times)

    print(f"NOOP, nothing selected: {median_ms('NOOP'):.3f} ms")
    print(f"STATUS {args.mailbox} (MESSAGES UNSEEN UIDNEXT): "
          f"{median_ms(f'STATUS {args.mailbox} (MESSAGES UNSEEN UIDNEXT)'):.3f} ms")
    c.command(f"SELECT {args.mailbox}")
    print(f"NOOP, {args.mailbox} selected: {median_ms('NOOP'):.3f} ms")
    c.command("UNSELECT")
    print(f"SELECT {args.mailbox} (then UNSELECT): {median_ms(f'SELECT {args.mailbox}', after='UNSELECT'):.3f} ms")
    c.command("LOGOUT")


if __name__ == "__main__":
    main()
