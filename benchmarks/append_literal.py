#!/usr/bin/env python3
"""APPEND with a synchronizing literal from a client with Nagle's algorithm on (Python's imaplib sends the literal and
its closing CRLF in two writes): the per-APPEND latency shows whether the server acknowledges literal bytes at once.
A server that delays the ACK makes the client hold the CRLF for the delayed-ACK timeout (about 40 ms on Linux).

    benchmarks/append_literal.py --port 143 --user tim --password timmy [--count 100] [--size 4000]

Creates the mailbox NagleBench, appends --count messages of --size bytes one by one, deletes it, and prints the
median and 90th percentile.
"""
import argparse
import imaplib
import statistics
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=143)
    parser.add_argument("--user", default="tim")
    parser.add_argument("--password", default="timmy")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=4000)
    options = parser.parse_args()
    m = imaplib.IMAP4(options.host, options.port)
    m.login(options.user, options.password)
    m.create("NagleBench")
    message = ("From: a@example.com\r\nSubject: nagle\r\n\r\n" + "x" * options.size + "\r\n").encode()
    times = []
    for _ in range(options.count):
        started = time.perf_counter()
        typ, data = m.append("NagleBench", None, None, message)
        times.append((time.perf_counter() - started) * 1000)
        if typ != "OK":
            raise SystemExit(f"APPEND failed: {data}")
    m.delete("NagleBench")
    m.logout()
    times.sort()
    print(f"APPEND {options.size} B with a synchronizing literal, Nagle on: median {statistics.median(times):.2f} ms, "
          f"p90 {times[int(len(times) * 0.9) - 1]:.2f} ms ({options.count} appends)")


if __name__ == "__main__":
    main()
