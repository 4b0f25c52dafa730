#!/usr/bin/env python3
"""bench-store.py: STORE +FLAGS (\\Seen) 1:* and EXPUNGE of every tenth message, Coffer beside
peers in one run (the imap-store-expunge workload of ../shared/bench/mailbench.py, without its
LMTP refill between rounds).

For each server (IMAP ports of instances from scripts/bench-start.sh and ../shared/bench/peers,
users user0.. with password "pw"), in alternating rounds, on a mailbox of --messages messages
(filled and topped up with MULTIAPPEND, bodies of --body-size bytes):
  - STORE 1:* -FLAGS.SILENT (\\Seen), untimed (every message changes next);
  - STORE 1:* +FLAGS (\\Seen), timed (one FETCH per message comes back);
  - STORE of every tenth message +FLAGS (\\Deleted), timed;
  - EXPUNGE, timed (--messages / 10 untagged EXPUNGE responses);
  - the mailbox topped up again, untimed.
Reports wall time on loopback and the server's CPU time for each command, read from
/proc/PID/schedstat of the process that owns the connection (found with ss -tnp: run on the
server's machine, as root for another user's processes). Prints the median of the rounds.

Usage: scripts/bench-store.py --port NAME=PORT [--port NAME=PORT ...] [--rounds 3]
       [--messages 5000] [--body-size 16384] [--user user0]
Python standard library (and the ss tool) only."""
import argparse
import importlib.util
import os
import re
import statistics
import time

_here = os.path.dirname(os.path.abspath(__file__))


def _load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(_here, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bq = _load("bench_qresync", "bench-qresync.py")
bs = _load("bench_select", "bench-select.py")
BOX = "store-bench"


def fill(c, want, body_size):
    """Top BOX up to want messages (MULTIAPPEND of 250)."""
    c.cmd('CREATE "%s"' % BOX)
    u = c.ok('STATUS "%s" (MESSAGES)' % BOX)
    have = int(re.search(rb"MESSAGES (\d+)", b"".join(u)).group(1))
    line = b"x" * 76 + b"\r\n"
    body = line * max(1, body_size // len(line))
    t0 = int(time.time() * 1000)
    while have < want:
        k = min(250, want - have)
        parts = []
        for i in range(have, have + k):
            m = (b"From: bench%d@example.com\r\nTo: user@example.com\r\nSubject: store bench %d\r\n"
                 b"Message-ID: <sb%d.%d@example.com>\r\n\r\n" % (i % 97, i, i, t0)) + body
            parts.append(b"{%d+}\r\n%s" % (len(m), m))
        c.ok(b'APPEND "' + BOX.encode() + b'" ' + b" ".join(parts))
        have += k
    return have


def one_round(port, a):
    c = bq.Imap("127.0.0.1", port, a.user, "pw")
    try:
        fill(c, a.messages, a.body_size)
        u = c.ok('SELECT "%s"' % BOX)
        n = int(re.search(rb"\* (\d+) EXISTS", b"\n".join(u)).group(1))
        if n != a.messages:
            raise RuntimeError("%d messages, expected %d" % (n, a.messages))
        pid = bs.server_pid(c, port)
        c.ok("STORE 1:* -FLAGS.SILENT (\\Seen)")
        out = {}
        w, cpu, _, u = bs.timed(c, pid, "STORE 1:* +FLAGS (\\Seen)")
        fetches = sum(1 for x in u if b" FETCH " in x)
        if fetches != n:
            raise RuntimeError("STORE: %d FETCH responses, expected %d" % (fetches, n))
        out["store_seen"] = (w, cpu)
        victims = ",".join(str(m) for m in range(10, n + 1, 10))
        w, cpu, _, u = bs.timed(c, pid, "STORE %s +FLAGS.SILENT (\\Deleted)" % victims)
        out["store_deleted"] = (w, cpu)
        w, cpu, _, u = bs.timed(c, pid, "EXPUNGE")
        gone = sum(1 for x in u if x.endswith(b" EXPUNGE"))
        if gone != n // 10:
            raise RuntimeError("EXPUNGE: %d responses, expected %d" % (gone, n // 10))
        out["expunge"] = (w, cpu)
        c.ok("CLOSE")
    finally:
        c.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", action="append", required=True, help="NAME=IMAPPORT")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--body-size", type=int, default=16384)
    ap.add_argument("--user", default="user0")
    a = ap.parse_args()
    servers = [p.split("=", 1) for p in a.port]
    res = {name: [] for name, _ in servers}
    for r in range(a.rounds):
        for name, port in servers:
            out = one_round(int(port), a)
            res[name].append(out)
            print("round %d %-10s " % (r + 1, name) + "  ".join(
                "%s %.1f ms (cpu %.1f)" % (k, v[0], v[1]) for k, v in out.items()), flush=True)
    print("\nmedian of %d rounds (wall ms / server CPU ms), %d messages" % (a.rounds, a.messages))
    for k in ("store_seen", "store_deleted", "expunge"):
        line = "%-14s" % k
        for name, _ in servers:
            w = statistics.median(x[k][0] for x in res[name])
            c = statistics.median(x[k][1] for x in res[name])
            line += "  %s %.1f / %.1f" % (name, w, c)
        print(line)


if __name__ == "__main__":
    main()
