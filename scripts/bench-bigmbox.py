#!/usr/bin/env python3
"""bench-bigmbox.py: one big INBOX (100,000 and 1,000,000 messages), Coffer beside a peer.

Two steps, each against servers from scripts/bench-start.sh and ../shared/bench/peers (users
user0.. with password "pw"):

  fill  --port NAME=PORT --user USER --messages N [--conns 4] [--batch 500]
        Fills USER's INBOX up to N messages (a rerun tops it up) with MULTIAPPEND (RFC 3502)
        over --conns parallel connections, --batch messages per command. This is the servers'
        own append path with their own durability: Coffer writes and fsyncs each message file
        and commits (index fsync) once per command; Dovecot saves the batch in one transaction.
        Messages are 2 to 4 KB, made from the message number alone (so both servers get the
        same bytes): From one of 2,000 senders, Subject from a 600-word vocabulary, a Date
        spread over 10 years, a body of paragraphs from a pool of 1,000 plus a unique token
        "tok<N>" (so SEARCH TEXT finds exactly one message).

  run   --port NAME=PORT [...] --user USER [--messages N] [--rounds 3]
        N is the size the mailbox is kept at: each round's expunge is topped up to it again.
        Without --messages, N is what USER's INBOX holds when the run starts; with it, a
        mailbox that holds another count is an error (a wrong N would leave the expunge
        rounds untopped or top the mailbox up to another size).
        Alternating rounds; in each, for every server, the operations below on USER's INBOX.
        Each is timed as wall time on loopback and as the server's CPU time, read from
        /proc/PID/schedstat of the process that owns the connection (ss -tnp; run as root).
          select      SELECT INBOX in a fresh connection (the first SELECT of a session)
          resync      SELECT INBOX (QRESYNC (uidvalidity modseq)) in a fresh connection after
                      another session made 100 flag changes (one STORE each)
          noop_sync   NOOP of a session that had the mailbox selected while another made the
                      100 changes (the long-lived session's incremental sync)
          changedsince  FETCH 1:* (FLAGS) (CHANGEDSINCE modseq-before-the-changes)
          fetch_flags FETCH 1:* (FLAGS)                (work grows with the mailbox)
          envelope    FETCH last 50 (ENVELOPE)
          search_from / search_subject / search_text   SEARCH FROM / SUBJECT / TEXT
          sort        SORT (DATE) UTF-8 FROM <a sender>  (a SORT of a restricted set)
          sort_all    SORT (SUBJECT) UTF-8 ALL          (work grows with the mailbox)
          store       UID STORE of \\Deleted (+FLAGS.SILENT) on 1,000 spread messages (one command)
          expunge     UID EXPUNGE of those 1,000 (then the mailbox is topped up)
          append      APPEND of one message (3 KB) into the big INBOX, from a session with
                      nothing selected (what a client saving to Sent does)
        Prints per-round lines and, at the end, the median of the rounds per operation; for the
        write operations also the server's read/write system calls and bytes of that command
        (/proc/PID/io syscr+syscw, rchar+wchar: every read, pread, write, pwrite; not fsync).
        --only OP (repeatable) runs just those operations (the first SELECT always runs).
        --timeout SECONDS (default 3600): how long the client waits for one response.
Python standard library (and the ss tool) only."""
import argparse
import importlib.util
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time

_here = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("bench_qresync", os.path.join(_here, "bench-qresync.py"))
bq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bq)

# ---- the messages ----
_rng = random.Random(20261207)
_SYL = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "da", "fu", "go", "hi", "ja", "ke",
        "ma", "no", "pe", "qu", "re", "si", "tu", "wa", "xe", "yo", "zu"]
WORDS = sorted(set("".join(_rng.choice(_SYL) for _ in range(_rng.randint(2, 4)))
                   for _ in range(700)))[:600]
SENDERS = ["%s.%s%d" % (_rng.choice(WORDS), _rng.choice(WORDS), i) for i in range(2000)]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "lists.example.org"]
PARAS = []
for _ in range(1000):
    line, lines = [], []
    for _w in range(_rng.randint(40, 80)):
        line.append(_rng.choice(WORDS))
        if len(" ".join(line)) > 66:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    PARAS.append("\r\n".join(lines) + "\r\n\r\n")
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
T0 = 1480000000            # November 2016: dates spread over the 10 years after it


def message(i):
    """The bytes of message number i (2 to 4 KB; the same for every server)."""
    h = (i * 2654435761) & 0xffffffff
    s = SENDERS[h % 2000]
    frm = "%s <%s@%s>" % (s.replace(".", " ").title(), s, DOMAINS[h % 5])
    subj = " ".join(WORDS[(h >> (3 * k)) % 600] for k in range(3 + h % 5))
    if h % 7 == 0:
        subj = "Re: " + subj
    t = time.gmtime(T0 + (h % 315360000))
    date = "%s, %02d %s %d %02d:%02d:%02d +0000" % (DAYS[t.tm_wday], t.tm_mday, MONTHS[t.tm_mon - 1],
                                                     t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)
    body = "".join(PARAS[(h + 131 * k) % 1000] for k in range(5 + h % 4))[:1700 + h % 1800]
    text = ("From: %s\r\nTo: user@example.com\r\nSubject: %s\r\nDate: %s\r\n"
            "Message-ID: <big%d@example.com>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s tok%d\r\n"
            % (frm, subj, date, i, body, i))
    return text.encode()


def conn(a, port):
    c = bq.Imap(a.host, port, a.user, a.password)
    # a first read that scans a 1,000,000-message mailbox took Dovecot more than 600 s
    c.sock.settimeout(a.timeout)
    return c


def count(c):
    u = c.ok("STATUS INBOX (MESSAGES)")
    return int(re.search(rb"MESSAGES (\d+)", b"".join(u)).group(1))


def fill(a, port, want):
    """Top USER's INBOX up to want messages over a.conns connections; seconds taken."""
    c = conn(a, port)
    have = count(c)
    c.close()
    if have >= want:
        return 0.0
    todo = list(range(have, want, a.batch))
    lock = threading.Lock()
    done = [have]
    t0 = time.monotonic()
    err = []

    def worker():
        c = conn(a, port)
        while True:
            with lock:
                if not todo or err:
                    break
                lo = todo.pop(0)
            hi = min(lo + a.batch, want)
            parts = []
            for i in range(lo, hi):
                m = message(i)
                parts.append(b"{%d+}\r\n%s" % (len(m), m))
            try:
                c.ok(b"APPEND INBOX " + b" ".join(parts))
            except Exception as e:            # noqa: BLE001 - reported below
                err.append(e)
                break
            with lock:
                done[0] += hi - lo
                if done[0] // 20000 != (done[0] - (hi - lo)) // 20000:
                    el = time.monotonic() - t0
                    print("  %d/%d (%.0f s, %.0f msg/s)" % (done[0], want, el, (done[0] - have) / el),
                          file=sys.stderr, flush=True)
        c.close()
    ts = [threading.Thread(target=worker) for _ in range(a.conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if err:
        raise err[0]
    return time.monotonic() - t0


# ---- measuring ----
def server_pid(c, port):
    lp = c.sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnpH", "state", "established",
                          "( sport = :%d and dport = :%d )" % (port, lp)],
                         capture_output=True, text=True).stdout
    pids = re.findall(r"pid=(\d+)", out)
    return int(pids[-1]) if pids else None


def cpu_ns(pid):
    return int(open("/proc/%d/schedstat" % pid).read().split()[0])


def io(pid):
    """(read+write system calls, bytes read+written) of pid so far (/proc/PID/io)."""
    d = dict(l.split(": ") for l in open("/proc/%d/io" % pid).read().splitlines())
    return int(d["syscr"]) + int(d["syscw"]), int(d["rchar"]) + int(d["wchar"])


IO = {}   # op: [(syscalls, bytes)] per round, for the write operations


def timed(c, pid, text, op=None):
    """(wall ms, server CPU ms, untagged lines) of one command; with op its system calls
    and bytes go to IO[op]."""
    i0 = io(pid) if op else None
    c0 = cpu_ns(pid)
    t0 = time.perf_counter()
    u = c.ok(text)
    w, cpu = (time.perf_counter() - t0) * 1000, (cpu_ns(pid) - c0) / 1e6
    if op:
        i1 = io(pid)
        IO.setdefault(op, []).append((i1[0] - i0[0], i1[1] - i0[1]))
    return w, cpu, u


def fresh(a, port):
    c = conn(a, port)
    return c, server_pid(c, port)


def one_round(a, name, port, rnd, n_msgs):
    """{op: (wall ms, cpu ms)} for one round on one server (NaN for a skipped op)."""
    skip = set(x.split(":", 1)[1] for x in a.skip if x.startswith(name + ":"))
    skip |= set(x for x in a.skip if ":" not in x)
    if a.only:
        skip |= set(OPS) - set(a.only)
    res = {op: (float("nan"), float("nan")) for op in skip}
    rng = random.Random(rnd * 7919 + n_msgs)
    # first SELECT in a fresh session
    c, pid = fresh(a, port)
    c.ok("ENABLE QRESYNC")
    w, cpu, u = timed(c, pid, "SELECT INBOX")
    res["select"] = (w, cpu)
    u = b"".join(u)
    uv = int(re.search(rb"UIDVALIDITY (\d+)", u).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", u).group(1))
    exists = int(re.search(rb"\* (\d+) EXISTS", u).group(1))
    if {"resync", "noop_sync", "changedsince"} - skip:
        resync_ops(a, port, c, rng, uv, hms, exists, res)
    reads(c, pid, rng, n_msgs, exists, skip, res)
    writes(a, port, c, pid, rng, n_msgs, skip, res)
    return res


def resync_ops(a, port, c, rng, uv, hms, exists, res):
    # a long-lived session that watches the changes
    watch, wpid = fresh(a, port)
    watch.ok("ENABLE QRESYNC")
    watch.ok("SELECT INBOX")
    # 100 flag changes by another session, spread over the mailbox
    seqs = sorted(rng.sample(range(1, exists + 1), 100))
    kw = "$B%d" % (time.time() * 1000 % 100000)   # new to every message: each STORE is a change
    for s in seqs:
        c.ok("STORE %d +FLAGS.SILENT (%s)" % (s, kw))
    w, cpu, u = timed(watch, wpid, "NOOP")
    n_fetch = sum(1 for x in u if b" FETCH " in x)
    if n_fetch != 100:
        raise RuntimeError("noop_sync saw %d FETCH, not 100" % n_fetch)
    res["noop_sync"] = (w, cpu)
    w, cpu, u = timed(watch, wpid, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
    if sum(1 for x in u if b" FETCH " in x) != 100:
        raise RuntimeError("CHANGEDSINCE answered %d, not 100" % len(u))
    res["changedsince"] = (w, cpu)
    watch.close()
    q, qpid = fresh(a, port)
    q.ok("ENABLE QRESYNC")
    w, cpu, u = timed(q, qpid, "SELECT INBOX (QRESYNC (%d %d))" % (uv, hms))
    if sum(1 for x in u if b" FETCH " in x) != 100:
        raise RuntimeError("QRESYNC answered %d FETCH, not 100" % sum(1 for x in u if b" FETCH " in x))
    res["resync"] = (w, cpu)
    q.close()


def reads(c, pid, rng, n_msgs, exists, skip, res):
    for op, cmd in (("fetch_flags", "FETCH 1:* (FLAGS)"),
                    ("envelope", "FETCH %d:* (ENVELOPE)" % (exists - 49)),
                    ("search_from", "SEARCH FROM \"%s\"" % SENDERS[rng.randrange(2000)]),
                    ("search_subject", "SEARCH SUBJECT \"%s %s\"" % (rng.choice(WORDS), rng.choice(WORDS))),
                    ("search_text", "SEARCH TEXT tok%d" % rng.randrange(n_msgs)),
                    ("sort", "SORT (DATE) UTF-8 FROM \"%s\"" % SENDERS[rng.randrange(2000)]),
                    ("sort_all", "SORT (SUBJECT) UTF-8 ALL")):
        if op in skip:
            continue
        w, cpu, u = timed(c, pid, cmd)
        res[op] = (w, cpu)


def writes(a, port, c, pid, rng, n_msgs, skip, res):
    # \Deleted on 1,000 spread messages in one UID STORE, expunge them, top the mailbox up
    if not {"store", "expunge"} <= skip:
        uids = sorted(rng.sample(bq.all_uids(c), 1000))
        uset = ",".join(map(str, uids))
        w, cpu, u = timed(c, pid, "UID STORE %s +FLAGS.SILENT (\\Deleted)" % uset, "store")
        res["store"] = (w, cpu)
        if "expunge" not in skip:
            w, cpu, u = timed(c, pid, "UID EXPUNGE %s" % uset, "expunge")
            res["expunge"] = (w, cpu)
    c.close()
    if "append" not in skip:
        # one message from a session with nothing selected (a client saving to Sent)
        s, spid = fresh(a, port)
        s.ok("NOOP")
        m = message(n_msgs + rng.randrange(1000000))
        w, cpu, u = timed(s, spid, b"APPEND INBOX {%d+}\r\n%s" % (len(m), m), "append")
        res["append"] = (w, cpu)
        s.close()
    fill(a, port, n_msgs)


OPS = ("select", "resync", "noop_sync", "changedsince", "fetch_flags", "envelope", "search_from",
       "search_subject", "search_text", "sort", "sort_all", "store", "expunge", "append")
WRITES = ("store", "expunge", "append")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=("fill", "run"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", action="append", required=True, help="NAME=PORT, repeatable")
    ap.add_argument("--user", default="user1")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--messages", type=int, default=None,
                    help="fill: the size to fill to (default 100000); run: the size the mailbox "
                         "holds and is kept at (default: what it holds when the run starts)")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=3600,
                    help="seconds the client waits for a response (default 3600)")
    ap.add_argument("--skip", action="append", default=[],
                    help="OP or NAME:OP not to run (repeatable): the reads that scan every "
                         "message take minutes at 1,000,000")
    ap.add_argument("--only", action="append", default=[], choices=OPS,
                    help="OP to run (repeatable); the others are skipped")
    a = ap.parse_args()
    ports = dict((p.split("=")[0], int(p.split("=")[1])) for p in a.port)
    if a.step == "fill":
        if a.messages is None:
            a.messages = 100000
        for name, port in ports.items():
            s = fill(a, port, a.messages)
            print("%s: filled %s INBOX to %d in %.0f s" % (name, a.user, a.messages, s), flush=True)
        return
    held = {}
    for name, port in ports.items():
        c = conn(a, port)
        held[name] = count(c)
        c.close()
    if a.messages is None:
        if len(set(held.values())) != 1:
            sys.exit("the INBOXes hold different counts (%s): fill them to one size or pass "
                     "--messages" % held)
        a.messages = next(iter(held.values()))
    if a.messages < 1000:
        sys.exit("%s INBOX holds %d messages: a round expunges 1,000, fill it first" % (a.user, a.messages))
    bad = dict((k, v) for k, v in held.items() if v != a.messages)
    if bad:
        sys.exit("--messages %d, but %s INBOX holds %s: fill it to that size first"
                 % (a.messages, a.user, bad))
    out = {k: {op: [] for op in OPS} for k in ports}
    for rnd in range(a.rounds):
        for name, port in ports.items():
            r = one_round(a, name, port, rnd, a.messages)
            for op in OPS:
                out[name][op].append(r[op])
            print("%s round %d: %s" % (name, rnd, " ".join("%s=%.2f/%.2f" % (op, r[op][1], r[op][0])
                                                            for op in OPS)), flush=True)
    def med(xs):
        xs = [x for x in xs if x == x]
        return statistics.median(xs) if xs else float("nan")
    print("median of %d rounds, %s INBOX of %d: server CPU ms / wall ms" % (a.rounds, a.user, a.messages))
    print("%-15s" % "op" + "".join("%24s" % n for n in ports))
    for op in OPS:
        print("%-15s" % op + "".join("%24s" % ("%.2f / %.2f" % (med(x[1] for x in out[n][op]),
                                                               med(x[0] for x in out[n][op])))
                                     for n in ports))
    if IO:
        print("write operations, median of the rounds (all servers): read+write system calls / "
              "bytes read+written")
        for op in WRITES:
            if op in IO:
                print("%-15s %8.0f / %.0f" % (op, med(x[0] for x in IO[op]), med(x[1] for x in IO[op])))


if __name__ == "__main__":
    main()
