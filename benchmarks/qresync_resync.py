#!/usr/bin/env python3
"""QRESYNC resync benchmark: how long a reconnecting client waits for `SELECT INBOX (QRESYNC ...)` after 100 changes
in a large mailbox (RFC 7162).

Each round, for each server in turn (so load noise hits all of them alike):
  1. a client logs in, does ENABLE QRESYNC and SELECT INBOX (with QRESYNC from its previous state after the first
     round), remembers UIDVALIDITY, HIGHESTMODSEQ and the UIDs, and logs out;
  2. another connection makes the changes: --flags single-message flag STOREs (toggling \\Flagged) and --expunges
     expunges (UID STORE +FLAGS.SILENT (\\Deleted), then UID EXPUNGE of those UIDs), on messages picked at random
     from evenly spread slices of the mailbox;
  3. a fresh connection logs in and does ENABLE QRESYNC (neither timed), then the timed
     `SELECT INBOX (QRESYNC (uidvalidity modseq known-uids))` until its tagged OK; and another fresh connection the
     same without known-uids, `SELECT INBOX (QRESYNC (uidvalidity modseq))` (the two alternate in order per round;
     medians for the first and the second resync after the changes are printed too, as a server may do deferred
     work, such as index syncing, in the first one).
Each resync reply is checked: exactly the --flags FETCHes of the changed messages (with the new \\Flagged state) and
one VANISHED (EARLIER) whose UIDs are the expunged ones (without known-uids a server that does not remember every
expunge may report older ones too, which RFC 7162 allows; those extras are counted, not failed). Medians per server
and variant are printed at the end, and the ratio to the first server.

    benchmarks/qresync_resync.py --port 1143 --user tim --password timmy --rounds 7
    benchmarks/qresync_resync.py --server mailhost=15143:tim --server dovecot=16143:tim100k --rounds 7

The mailbox must already hold the messages (e.g. seeded by benchmarks/sort_thread.py --seed 100000); every round
expunges --expunges of them.
"""
import argparse
import random
import re
import socket
import statistics
import sys
import time

LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class Connection:
    """Minimal raw-socket IMAP client: sends a tagged command, collects the untagged lines up to the tagged reply."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer, self.counter = b"", 0
        self.line()  # greeting

    def _read_until(self, predicate):
        while not predicate():
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk

    def line(self):
        """One response line, literals included."""
        result = b""
        while True:
            self._read_until(lambda: b"\r\n" in self.buffer)
            end = self.buffer.index(b"\r\n") + 2
            part, self.buffer = self.buffer[:end], self.buffer[end:]
            result += part
            literal = LITERAL.search(part)
            if not literal:
                return result[:-2]
            size = int(literal.group(1))
            self._read_until(lambda: len(self.buffer) >= size)
            result += self.buffer[:size]
            self.buffer = self.buffer[size:]

    def command(self, text, check=True):
        """Returns (untagged lines, tagged line, seconds from sending to the tagged reply, response bytes)."""
        self.counter += 1
        tag = f"t{self.counter}".encode()
        lines, size = [], 0
        started = time.perf_counter()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        while True:
            line = self.line()
            size += len(line) + 2
            if line.startswith(tag + b" "):
                elapsed = time.perf_counter() - started
                break
            lines.append(line)
        if check and not line.startswith(tag + b" OK"):
            raise RuntimeError(f"{text[:80]}: {line.decode(errors='replace')}")
        return lines, line, elapsed, size

    def login(self, user, password):
        self.command(f'LOGIN "{user}" "{password}"')

    def close(self):
        try:
            self.command("LOGOUT", check=False)
        except (ConnectionError, OSError):
            pass
        self.sock.close()


def uid_set(uids):
    """Sorted UIDs as a compact IMAP set: 1:5,7,9:12."""
    parts, uids = [], sorted(uids)
    i = 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        parts.append(str(uids[i]) if i == j else f"{uids[i]}:{uids[j]}")
        i = j + 1
    return ",".join(parts)


def parse_set(text):
    uids = set()
    for part in text.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            uids.update(range(min(a, b), max(a, b) + 1))
        else:
            uids.add(int(part))
    return uids


def code_value(lines, name):
    for line in lines:
        found = re.search(rb"\[" + name.encode() + rb" (\d+)\]", line)
        if found:
            return int(found.group(1))
    raise RuntimeError(f"no {name} in the SELECT reply")


def baseline(host, port, user, password, state):
    """Step 1: the client's view before the changes (state from the previous round, if any, is used for QRESYNC)."""
    c = Connection(host, port)
    c.login(user, password)
    c.command("ENABLE QRESYNC")
    if state:
        lines, _, _, _ = c.command(f"SELECT INBOX (QRESYNC ({state['uidvalidity']} {state['modseq']}))")
    else:
        lines, _, _, _ = c.command("SELECT INBOX")
    uidvalidity, modseq = code_value(lines, "UIDVALIDITY"), code_value(lines, "HIGHESTMODSEQ")
    lines, _, _, _ = c.command("UID SEARCH ALL")
    uids = sorted(int(x) for line in lines if line.startswith(b"* SEARCH") for x in line.split()[2:])
    c.close()
    return {"uidvalidity": uidvalidity, "modseq": modseq, "uids": uids}


def make_changes(host, port, user, password, uids, flags, expunges, rng):
    """Step 2: `flags` flag toggles and `expunges` expunges on messages from evenly spread slices of the mailbox.
    Returns ({uid: flagged after the change}, set of expunged UIDs, seconds)."""
    count = flags + expunges
    if len(uids) < count:
        raise SystemExit(f"the mailbox has {len(uids)} messages, fewer than the {count} changes")
    picked = [uids[rng.randrange(k * len(uids) // count, (k + 1) * len(uids) // count)] for k in range(count)]
    rng.shuffle(picked)
    flagged_uids, expunged = picked[:flags], set(picked[flags:])
    c = Connection(host, port)
    c.login(user, password)
    c.command("SELECT INBOX")
    started = time.perf_counter()
    lines, _, _, _ = c.command(f"UID FETCH {uid_set(flagged_uids)} (UID FLAGS)")
    was_flagged = {}
    for line in lines:
        uid = re.search(rb"UID (\d+)", line)
        if uid:
            was_flagged[int(uid.group(1))] = b"\\Flagged" in line
    expected = {}
    for uid in flagged_uids:
        expected[uid] = not was_flagged[uid]
        c.command(f"UID STORE {uid} {'+' if expected[uid] else '-'}FLAGS.SILENT (\\Flagged)")
    deleted = uid_set(expunged)
    c.command(f"UID STORE {deleted} +FLAGS.SILENT (\\Deleted)")
    c.command(f"UID EXPUNGE {deleted}")
    elapsed = time.perf_counter() - started
    c.close()
    return expected, expunged, elapsed


def resync(host, port, user, password, state, known):
    """Step 3: a fresh connection's QRESYNC SELECT, timed to the tagged OK. Returns (seconds, bytes, check)."""
    c = Connection(host, port)
    c.login(user, password)
    c.command("ENABLE QRESYNC")
    known_text = f" {uid_set(state['uids'])}" if known else ""
    lines, _, elapsed, size = c.command(f"SELECT INBOX (QRESYNC ({state['uidvalidity']} {state['modseq']}{known_text}))")
    c.close()
    fetches, vanished, vanished_lines = {}, set(), 0
    for line in lines:
        fetch = re.match(rb"\* \d+ FETCH \((.*)\)$", line)
        if fetch:
            uid = re.search(rb"UID (\d+)", fetch.group(1))
            fetches[int(uid.group(1)) if uid else None] = b"\\Flagged" in fetch.group(1)
        elif line.startswith(b"* VANISHED (EARLIER) "):
            vanished_lines += 1
            vanished |= parse_set(line.split()[-1].decode())
    return elapsed, size, fetches, vanished, vanished_lines


def check(expected, expunged, fetches, vanished, vanished_lines, known, current):
    """A short verdict: 'ok' or what differs from the expected reply."""
    problems = []
    if set(fetches) != set(expected):
        problems.append(f"{len(fetches)} FETCH (missing {len(set(expected) - set(fetches))}, "
                        f"extra {len(set(fetches) - set(expected))})")
    elif any(fetches[uid] != flagged for uid, flagged in expected.items()):
        problems.append("wrong \\Flagged state in FETCH")
    if vanished_lines != 1:
        problems.append(f"{vanished_lines} VANISHED (EARLIER) lines")
    if not expunged <= vanished:
        problems.append(f"VANISHED misses {len(expunged - vanished)} expunged UIDs")
    if vanished & current:
        problems.append(f"VANISHED reports {len(vanished & current)} existing messages")
    extra = len(vanished - expunged - current)
    if extra and known:
        problems.append(f"VANISHED has {extra} UIDs outside the expunged ones")
    verdict = "; ".join(problems) if problems else "ok"
    if extra and not known and not problems:
        verdict = f"ok (+{extra} older expunged UIDs)"
    return verdict, not problems


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1143)
    p.add_argument("--user", default="tim")
    p.add_argument("--password", default="timmy")
    p.add_argument("--server", action="append", metavar="NAME=PORT:USER",
                   help="server to compare (repeatable; rounds interleave them); replaces --port/--user")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--flags", type=int, default=50, help="flag changes per round")
    p.add_argument("--expunges", type=int, default=50, help="expunged messages per round")
    p.add_argument("--random-seed", type=int, default=1)
    args = p.parse_args()

    servers = []
    for spec in args.server or [f"{args.port}={args.port}:{args.user}"]:
        name, _, rest = spec.partition("=")
        port, _, user = rest.partition(":")
        servers.append((name, int(port), user or args.user))
    rng = {name: random.Random(args.random_seed) for name, _, _ in servers}  # same picks in every server
    states = {name: None for name, _, _ in servers}
    times = {(name, known): [] for name, _, _ in servers for known in (True, False)}
    by_order = {(name, position): [] for name, _, _ in servers for position in (0, 1)}  # first/second after changes
    failures = 0
    for round_number in range(1, args.rounds + 1):
        load = open("/proc/loadavg").read().split()[:3]
        print(f"round {round_number} (load {' '.join(load)})")
        for name, port, user in servers:
            state = baseline(args.host, port, user, args.password, states[name])
            expected, expunged, change_time = make_changes(args.host, port, user, args.password, state["uids"],
                                                           args.flags, args.expunges, rng[name])
            current = set(state["uids"]) - expunged
            results = []
            for position, known in enumerate((True, False) if round_number % 2 else (False, True)):
                elapsed, size, fetches, vanished, lines = resync(args.host, port, user, args.password, state, known)
                verdict, good = check(expected, expunged, fetches, vanished, lines, known, current)
                failures += not good
                times[(name, known)].append(elapsed * 1000)
                by_order[(name, position)].append(elapsed * 1000)
                results.append(f"{'known-uids' if known else 'no known-uids'} {elapsed * 1000:.1f} ms "
                               f"({size} bytes, {verdict})")
            states[name] = {"uidvalidity": state["uidvalidity"], "modseq": state["modseq"]}
            print(f"  {name}: {len(state['uids'])} messages, changes {change_time * 1000:.0f} ms; "
                  + "; ".join(sorted(results, key=lambda r: not r.startswith("known"))))
    print(f"medians over {args.rounds} rounds ({args.flags} flag changes + {args.expunges} expunges each):")
    first = servers[0][0]
    for known in (True, False):
        for name, _, _ in servers:
            median = statistics.median(times[(name, known)])
            ratio = ""
            if name != first:
                ratio = f", {first}/{name} = {statistics.median(times[(first, known)]) / median:.2f}"
            runs = ", ".join(f"{t:.1f}" for t in times[(name, known)])
            print(f"  {'known-uids   ' if known else 'no known-uids'} {name}: median {median:.1f} ms (runs {runs}){ratio}")
    for name, _, _ in servers:
        print(f"  {name}: first resync after the changes median {statistics.median(by_order[(name, 0)]):.1f} ms, "
              f"second {statistics.median(by_order[(name, 1)]):.1f} ms (both variants)")
    if failures:
        print(f"{failures} resync replies differed from the expected ones", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
