#!/usr/bin/env python3
"""Large-mailbox benchmark: SELECT latency and streaming FETCH memory on an N-message INBOX.

Runs against a server that is already listening (mailhost or, for comparison, Dovecot). For mailhost, the messages
are seeded straight into PostgreSQL (N copies of one small message, each its own stored content, as N deliveries
would leave them), so the seeding takes seconds instead of N APPENDs. For other servers, use --append to seed over
IMAP (or write the Maildir files directly).

    benchmarks/large_mailbox.py --port 1143 --user tim --password timmy \
        --pid $(pgrep -f 'mailhost serve') --seed-sql 'postgres://postgres@127.0.0.1:5432/bench' --messages 100000

It reports, for several runs: SELECT time, `UID FETCH 1:* (UID FLAGS)` time and bytes, and the server's peak RSS
during the FETCH (sampled from /proc/PID/status every 10 ms). Medians are printed at the end.
"""
import argparse
import imaplib
import socket
import statistics
import subprocess
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class PeakSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            if self.pid:
                self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)


def seed_sql(url, login, count):
    """Creates the account through a login first, then fills INBOX with `count` messages, each with its own copy of
    the first message's content (as `count` deliveries would store them)."""
    cols = ("size, header_length, body, envelope, body_summary, body_structure, parts, sent_day, search_from, "
            "search_to, search_cc, search_bcc, search_subject, search_headers, search_body, sha256")
    sql = f"""
    WITH a AS (SELECT account_id FROM accounts WHERE login = '{login}'),
    b AS (SELECT b.account_id, b.mailbox_id FROM mailboxes b, a WHERE b.account_id = a.account_id AND b.name = 'INBOX'),
    src AS (SELECT c.* FROM contents c, messages m, b
            WHERE m.account_id = b.account_id AND m.mailbox_id = b.mailbox_id
              AND c.account_id = m.account_id AND c.content_id = m.content_id LIMIT 1),
    cs AS (INSERT INTO contents (account_id, {cols})
           SELECT src.account_id, {', '.join('src.' + c.strip() for c in cols.split(','))}
           FROM src, generate_series(1, {count}) g
           RETURNING content_id),
    numbered AS (SELECT content_id, row_number() OVER (ORDER BY content_id) AS g FROM cs),
    ins AS (
      INSERT INTO messages (account_id, mailbox_id, uid, content_id, flags, keywords, modseq, internal_date, internal_zone, size)
      SELECT b.account_id, b.mailbox_id, 1 + n.g, n.content_id, CASE WHEN n.g % 3 = 0 THEN 8 ELSE 0 END, '{{}}', 2,
             1700000000 + n.g, 0, 100
      FROM b, numbered n
      RETURNING uid)
    UPDATE mailboxes SET uidnext = (SELECT max(uid) + 1 FROM ins), highestmodseq = 3
    WHERE (account_id, mailbox_id) IN (SELECT account_id, mailbox_id FROM b)
    """
    subprocess.run(["psql", url, "-q", "-c", sql], check=True)
    subprocess.run(["psql", url, "-q", "-c", "ANALYZE"], check=True)


def raw_fetch(host, port, user, password, command):
    """Sends a command on a raw socket and reads until the tagged reply; returns (seconds, bytes)."""
    s = socket.create_connection((host, port))
    s.recv(4096)
    s.sendall(f"a LOGIN {user} \"{password}\"\r\n".encode())
    buf = b""
    while b"a OK" not in buf and b"a NO" not in buf:
        buf += s.recv(65536)
    s.sendall(b"b SELECT INBOX\r\n")
    buf = b""
    while b"\r\nb OK" not in buf and not buf.startswith(b"b OK"):
        buf += s.recv(65536)
    start = time.perf_counter()
    s.sendall(f"c {command}\r\n".encode())
    total, tail = 0, b""
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        total += len(chunk)
        tail = (tail + chunk)[-200:]
        if b"\r\nc OK" in tail or b"\r\nc NO" in tail or b"\r\nc BAD" in tail:
            break
    elapsed = time.perf_counter() - start
    s.sendall(b"d LOGOUT\r\n")
    s.close()
    return elapsed, total


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1143)
    p.add_argument("--user", default="tim")
    p.add_argument("--password", default="timmy")
    p.add_argument("--pid", type=int, default=0, help="server process to sample RSS from")
    p.add_argument("--messages", type=int, default=100000)
    p.add_argument("--seed-sql", help="mailhost database URL: seed the INBOX directly")
    p.add_argument("--append", action="store_true", help="seed over IMAP APPEND instead")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()

    m = imaplib.IMAP4(args.host, args.port)
    m.login(args.user, args.password)
    typ, data = m.select("INBOX")
    existing = int(data[0])
    if existing == 0:
        m.append("INBOX", None, None, b"From: a@b.c\r\nSubject: seed\r\n\r\nbody\r\n")
        if args.seed_sql:
            seed_sql(args.seed_sql, args.user, args.messages - 1)
        elif args.append:
            for i in range(args.messages - 1):
                m.append("INBOX", None, None, f"From: a@b.c\r\nSubject: seed {i}\r\n\r\nbody\r\n".encode())
    m.logout()

    selects, fetches, peaks, sizes = [], [], [], []
    for _ in range(args.runs):
        m = imaplib.IMAP4(args.host, args.port)
        m.login(args.user, args.password)
        start = time.perf_counter()
        typ, data = m.select("INBOX")
        selects.append(time.perf_counter() - start)
        count = int(data[0])
        m.logout()
        baseline = rss_kib(args.pid) if args.pid else 0
        sampler = PeakSampler(args.pid)
        sampler.start()
        elapsed, total = raw_fetch(args.host, args.port, args.user, args.password, "UID FETCH 1:* (UID FLAGS)")
        sampler.running = False
        sampler.join()
        fetches.append(elapsed)
        sizes.append(total)
        peaks.append(sampler.peak - baseline if args.pid else 0)
        print(f"messages={count} select={selects[-1]*1000:.1f}ms fetch={elapsed*1000:.0f}ms "
              f"bytes={total} rss_growth={peaks[-1]}KiB")
    print(f"median select={statistics.median(selects)*1000:.1f}ms fetch={statistics.median(fetches)*1000:.0f}ms "
          f"rss_growth={statistics.median(peaks)}KiB over {args.runs} runs")


if __name__ == "__main__":
    main()
