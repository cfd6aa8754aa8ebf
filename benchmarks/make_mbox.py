#!/usr/bin/env python3
"""Writes a deterministic mbox of ordinary-looking mail for imaptest's stress mode (its `mbox=` source).

    benchmarks/make_mbox.py --messages 1000 --seed 1 > /tmp/bench.mbox

Sizes follow a rough mail mix (mostly 1-8 KB text, some 20-60 KB multipart with a base64 attachment); headers carry
Message-ID, References and varied subjects, so the same file exercises FETCH ENVELOPE/BODYSTRUCTURE and threading.
"""
import argparse
import base64
import random
import sys

WORDS = ("meeting report budget quarter review draft project status update invoice travel schedule team lunch "
         "release server backup network design proposal contract customer feedback question answer please thanks "
         "tomorrow monday friday office deadline agenda minutes notes summary").split()


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def text_body(rng, size):
    lines, total = [], 0
    while total < size:
        line = sentence(rng, rng.randint(6, 12))
        lines.append(line)
        total += len(line) + 2
    return "\r\n".join(lines)


def message(rng, i, ids):
    sender = f"user{rng.randint(1, 40)}@example.org"
    to = f"tim{rng.randint(1, 5)}@example.com"
    subject = ("Re: " if ids and rng.random() < 0.4 else "") + sentence(rng, rng.randint(2, 6))[:-1]
    msgid = f"<bench.{i}.{rng.randint(0, 1 << 30)}@example.org>"
    headers = [
        f"From: User {sender.split('@')[0]} <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {['Mon', 'Tue', 'Wed', 'Thu', 'Fri'][i % 5]}, {1 + i % 28:02d} Nov 2026 {i % 24:02d}:{i % 60:02d}:00 +0000",
        f"Message-ID: {msgid}",
    ]
    if subject.startswith("Re: "):
        parent = rng.choice(ids[-50:])
        headers += [f"In-Reply-To: {parent}", f"References: {parent}"]
    ids.append(msgid)
    size = int(rng.lognormvariate(8.0, 0.8))  # median about 3 KB
    if rng.random() < 0.15:
        boundary = f"b{i}x{rng.randint(0, 1 << 20)}"
        blob = base64.encodebytes(rng.randbytes(min(size * 4, 60000))).decode().replace("\n", "\r\n")
        headers += ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{boundary}"']
        body = (f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text_body(rng, 600)}\r\n"
                f"--{boundary}\r\nContent-Type: application/pdf; name=\"r{i}.pdf\"\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n{blob}--{boundary}--\r\n")
    else:
        headers += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
        body = text_body(rng, size) + "\r\n"
    return "\r\n".join(headers) + "\r\n\r\n" + body


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng, ids = random.Random(args.seed), []
    out = sys.stdout
    for i in range(args.messages):
        text = message(rng, i, ids).replace("\r\n", "\n")
        # mboxrd quoting of body lines that look like separators
        text = "\n".join((">" + l if l.startswith("From ") else l) for l in text.split("\n"))
        out.write(f"From bench@example.org Mon Nov 30 12:00:00 2026\n{text}\n\n")


if __name__ == "__main__":
    main()
