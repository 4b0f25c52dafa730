#!/usr/bin/env python3
"""bench-select.py: SELECT cost against mailbox size, Coffer beside a peer in one run.

For each server (IMAP ports of instances from scripts/bench-start.sh and ../shared/bench/peers,
users user0.. with password "pw"), in alternating rounds:
  - QRESYNC reselect (RFC 7162 section 3.2.5) of a --messages mailbox after --changes flag
    changes and --expunges expunges made by another session: 5 reselects in fresh connections
    (the first is the first look after the changes);
  - repeat SELECT (UNSELECT + SELECT in one connection, 20 times) of an unchanged mailbox of
    --small messages and of the big one.
Reports wall time on loopback and the server's CPU time for the command, read from
/proc/PID/schedstat of the process that owns the connection (found with ss -tnp: run on the
server's machine, as root for another user's processes). Mailboxes are filled (and topped up)
with MULTIAPPEND as scripts/bench-qresync.py does. Prints the median of the rounds.

Usage: scripts/bench-select.py --port NAME=PORT [--port NAME=PORT ...] [--rounds 3]
       [--messages 100000] [--small 5000] [--changes 100] [--expunges 100]
Python standard library (and the ss tool) only."""
import argparse
import importlib.util
import os
import random
import re
import statistics
import subprocess
import time

_spec = importlib.util.spec_from_file_location(
    "bench_qresync", os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench-qresync.py"))
bq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bq)
BOX = "qresync-bench"
SMALL = "select-small"


def server_pid(c, port):
    """The pid of the server process owning connection c (ss -tnp), or None."""
    lp = c.sock.getsockname()[1]
    out = subprocess.run(["ss", "-tnpH", "state", "established",
                          "( sport = :%d and dport = :%d )" % (port, lp)],
                         capture_output=True, text=True).stdout
    pids = re.findall(r"pid=(\d+)", out)
    return int(pids[-1]) if pids else None


def cpu_ns(pid):
    """CPU time the process has run, in ns (first field of schedstat)."""
    return int(open("/proc/%d/schedstat" % pid).read().split()[0])


def timed(c, pid, text):
    """(wall ms, server CPU ms, bytes received, untagged lines) of one command."""
    c0 = cpu_ns(pid)
    t0 = time.perf_counter()
    b0 = c.bytes
    u = c.ok(text)
    return (time.perf_counter() - t0) * 1000, (cpu_ns(pid) - c0) / 1e6, c.bytes - b0, u


def qresync_round(port, a):
    """Top up, change, then 5 QRESYNC reselects in fresh connections: [(wall, cpu, bytes)]."""
    c = bq.Imap(a.host, port, a.user, a.password)
    bq.fill(c, BOX, a.messages + a.expunges)
    c.ok("ENABLE QRESYNC")
    u = b"".join(c.ok('SELECT "%s"' % BOX))
    uv = int(re.search(rb"UIDVALIDITY (\d+)", u).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", u).group(1))
    uids = bq.all_uids(c)
    pick = random.Random(time.time()).sample(uids, a.changes + a.expunges)
    for uid in pick[:a.changes]:                      # each its own command: its own modseq
        c.ok("UID STORE %d FLAGS.SILENT (\\Flagged)" % uid)
    gone = ",".join(map(str, sorted(pick[a.changes:])))
    c.ok("UID STORE %s +FLAGS.SILENT (\\Deleted)" % gone)
    c.ok("UID EXPUNGE %s" % gone)
    c.close()
    res = []
    for _ in range(5):
        q = bq.Imap(a.host, port, a.user, a.password)
        q.ok("ENABLE QRESYNC")
        w, cpu, nb, _u = timed(q, server_pid(q, port),
                               'SELECT "%s" (QRESYNC (%d %d))' % (BOX, uv, hms))
        res.append((w, cpu, nb))
        q.close()
    return res


def repeat_round(port, box, a, n=20):
    """n times UNSELECT + SELECT box in one connection: [(wall, cpu)] of the SELECTs."""
    c = bq.Imap(a.host, port, a.user, a.password)
    pid = server_pid(c, port)
    c.ok('SELECT "%s"' % box)
    res = []
    for _ in range(n):
        c.ok("UNSELECT")
        w, cpu, _nb, _u = timed(c, pid, 'SELECT "%s"' % box)
        res.append((w, cpu))
    c.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", action="append", required=True, help="NAME=PORT, repeatable")
    ap.add_argument("--user", default="user0")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--small", type=int, default=5000)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--expunges", type=int, default=100)
    a = ap.parse_args()
    ports = dict((p.split("=")[0], int(p.split("=")[1])) for p in a.port)
    for port in ports.values():
        c = bq.Imap(a.host, port, a.user, a.password)
        bq.fill(c, SMALL, a.small)
        c.close()
    keys = ("q_first", "q_all_w", "q_all_cpu", "q_bytes", "rs_w", "rs_cpu", "rb_w", "rb_cpu")
    out = {k: {key: [] for key in keys} for k in ports}
    for rnd in range(a.rounds):
        for name, port in ports.items():
            q = qresync_round(port, a)
            o = out[name]
            o["q_first"].append(q[0][1])
            o["q_all_w"] += [x[0] for x in q]
            o["q_all_cpu"] += [x[1] for x in q]
            o["q_bytes"] += [x[2] for x in q]
            for box, kw, kc in ((SMALL, "rs_w", "rs_cpu"), (BOX, "rb_w", "rb_cpu")):
                r = repeat_round(port, box, a)
                o[kw].append(statistics.median(x[0] for x in r))
                o[kc].append(statistics.median(x[1] for x in r))
            print("%s round %d: QRESYNC CPU first %.2f ms, median %.2f ms; repeat SELECT CPU "
                  "%.3f ms (%d), %.3f ms (%d)" % (name, rnd, q[0][1], statistics.median(x[1] for x in q),
                                                  o["rs_cpu"][-1], a.small, o["rb_cpu"][-1], a.messages),
                  flush=True)
    med = statistics.median
    for name in ports:
        o = out[name]
        print("%s: QRESYNC reselect at %d after %d changes + %d expunges: server CPU first %.2f ms, "
              "all %.2f ms; wall %.2f ms; %d bytes | repeat SELECT %d: CPU %.3f ms, wall %.3f ms | "
              "%d: CPU %.3f ms, wall %.3f ms"
              % (name, a.messages, a.changes, a.expunges, med(o["q_first"]), med(o["q_all_cpu"]),
                 med(o["q_all_w"]), med(o["q_bytes"]), a.small, med(o["rs_cpu"]), med(o["rs_w"]),
                 a.messages, med(o["rb_cpu"]), med(o["rb_w"])))


if __name__ == "__main__":
    main()
