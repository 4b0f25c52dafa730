#!/usr/bin/env python3
"""bench-idle.py: many authenticated IMAP connections in IDLE against a running server (Coffer
from scripts/bench-start.sh, or a peer from ../shared/bench/peers), measured from outside:

  - memory: the PSS of every process of the server (the master's process tree, from
    /proc/PID/smaps_rollup) with the connections open and asleep, minus the same with none,
    divided by the connections; and the total divided by the connections;
  - wake-up latency: an LMTP delivery to a user whose only connection is one of the idle ones
    (a "probe" user), timed from the LMTP 250 (the message is committed) to the `* N EXISTS`
    on that connection (the server may push it before the 250 reaches us: then ~0), and from
    the end of the message (".") to the EXISTS, p50/p99 over --probes deliveries to random
    probe users;
  - CPU while idle: user+system time of the master and of every other process of the tree
    (the hibernate process named apart) over --idle-seconds with nothing happening.

Users user0..user(U-1) with password pw (the peers' contract). The last --probe-users users get
one connection each; the others share the rest of the connections (all on INBOX). Run as root
(RLIMIT_NOFILE is raised to fit). Prints one JSON object.

    python3 scripts/bench-idle.py --imap 33100 --lmtp 33102 --pid PID --conns 10000
"""
import argparse
import json
import os
import random
import resource
import selectors
import socket
import statistics
import sys
import time


def tree(root):
    """pids of root and all its descendants"""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def comm(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0].decode(errors="replace").rsplit("/", 1)[-1]
    except OSError:
        return "?"


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return 0
    fields = st[st.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])      # utime + stime


def memory(root):
    pids = tree(root)
    per = {}
    total = 0
    for p in pids:
        k = pss_kb(p)
        total += k
        name = comm(p)
        per[name] = per.get(name, 0) + k
    return total, len(pids), per


class Conn:
    __slots__ = ("sock", "buf", "state", "user")

    def __init__(self, sock, user):
        self.sock, self.buf, self.state, self.user = sock, b"", 0, user


def open_idle(host, port, users, n, batch, timeout, sources):
    """n connections, logged in as users[i], SELECT INBOX, IDLE; returns them once every one
    has had `+ idling`. Opens at most `batch` not yet idling at a time (the server's workers
    take them as they come free)."""
    sel = selectors.DefaultSelector()
    conns, pending, done = [], 0, 0
    i = 0
    deadline = time.monotonic() + timeout
    retry = []          # users whose connection was refused or reset: opened again
    resets = 0
    while done < n:
        while (i < n or retry) and pending < batch:
            if retry:
                user = retry.pop()
            else:
                user = users[i]
                i += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if sources:
                s.bind((sources[len(conns) % len(sources)], 0))
            try:
                s.connect((host, port))
            except OSError:
                s.close()
                retry.append(user)
                resets += 1
                time.sleep(0.05)
                continue
            s.setblocking(False)
            c = Conn(s, user)
            s.send(b"l LOGIN %s pw\r\ns SELECT INBOX\r\ni IDLE\r\n" % c.user.encode())
            sel.register(s, selectors.EVENT_READ, c)
            conns.append(c)
            pending += 1
        if time.monotonic() > deadline:
            sys.exit("bench-idle: only %d of %d connections idling after %ds" % (done, n, timeout))
        for key, _ in sel.select(1.0):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                # reset or closed before it was idle (an overloaded listen queue): again
                sel.unregister(c.sock)
                c.sock.close()
                conns.remove(c)
                retry.append(c.user)
                pending -= 1
                resets += 1
                continue
            c.buf += data
            if b"\r\nl NO" in c.buf or b"\r\nl BAD" in c.buf:
                sys.exit("bench-idle: login failed: %r" % c.buf[-200:])
            if b"+ idling" in c.buf:
                sel.unregister(c.sock)
                c.buf = b""
                pending -= 1
                done += 1
    sel.close()
    if resets:
        sys.stderr.write("bench-idle: %d connections were reset during setup and opened again\n"
                         % resets)
    return conns


def lmtp_deliver(host, port, rcpt, i):
    s = socket.create_connection((host, port), timeout=30)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise EOFError("lmtp closed")
            if line[3:4] != b"-":
                return line

    reply()
    s.sendall(b"LHLO bench\r\n")
    reply()
    s.sendall(b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt.encode())
    for _ in range(3):
        r = reply()
        if not r.startswith((b"250", b"354")):
            raise RuntimeError("lmtp: %r" % r)
    msg = (b"From: bench@example.com\r\nTo: %s\r\nSubject: wake %d\r\n"
           b"Message-ID: <wake%d.%f@bench>\r\n\r\nwake\r\n.\r\n") % (rcpt.encode(), i, i, time.time())
    t_sent = time.monotonic()
    s.sendall(msg)
    r = reply()
    t = time.monotonic()
    if not r.startswith(b"250"):
        raise RuntimeError("lmtp: %r" % r)
    s.sendall(b"QUIT\r\n")
    s.close()
    return t_sent, t


def wait_exists(c, timeout):
    c.sock.setblocking(True)
    c.sock.settimeout(timeout)
    while b" EXISTS\r\n" not in c.buf:
        data = c.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        c.buf += data
    t = time.monotonic()
    c.buf = b""
    c.sock.setblocking(False)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--imap", type=int, required=True)
    ap.add_argument("--lmtp", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server's master pid")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--probe-users", type=int, default=10)
    ap.add_argument("--per-user", type=int, default=0,
                    help="at most this many connections per bulk user (0: no limit)")
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to wait after the last connection idles (for hibernation)")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=300)
    ap.add_argument("--sources", type=int, default=1,
                    help="spread the connections over 127.0.0.1 .. 127.0.0.N")
    ap.add_argument("--domain", default="", help="RCPT TO user@DOMAIN (default: the bare user, "
                    "as mailbench delivers)")
    a = ap.parse_args()

    want = a.conns + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    bulk_users = ["user%d" % i for i in range(a.users - a.probe_users)]
    probe_users = ["user%d" % i for i in range(a.users - a.probe_users, a.users)]
    nbulk = a.conns - len(probe_users)
    if a.per_user and nbulk > a.per_user * len(bulk_users):
        nbulk = a.per_user * len(bulk_users)
    users = [bulk_users[i % len(bulk_users)] for i in range(nbulk)] + probe_users
    sources = ["127.0.0.%d" % (i + 1) for i in range(a.sources)] if a.sources > 1 else None

    base_total, base_n, base_per = memory(a.pid)
    t0 = time.monotonic()
    conns = open_idle(a.host, a.imap, users, len(users), a.batch, 1800, sources)
    setup = time.monotonic() - t0
    time.sleep(a.settle)
    total, nproc, per = memory(a.pid)

    # CPU while everything idles
    pids = tree(a.pid)
    before = {p: cpu_ticks(p) for p in pids}
    time.sleep(a.idle_seconds)
    hz = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for p in pids:
        d = (cpu_ticks(p) - before[p]) / hz
        name = "master" if p == a.pid else comm(p)
        cpu[name] = cpu.get(name, 0.0) + d

    probes = conns[-len(probe_users):]
    lat, lat_sent = [], []
    for i in range(a.probes):
        k = random.randrange(len(probes))
        c = probes[k]
        rcpt = probe_users[k] + ("@" + a.domain if a.domain else "")
        t_sent, t_commit = lmtp_deliver(a.host, a.lmtp, rcpt, i)
        t_seen = wait_exists(c, 30)
        lat.append((t_seen - t_commit) * 1000.0)
        lat_sent.append((t_seen - t_sent) * 1000.0)
        time.sleep(0.1)
    lat.sort()
    lat_sent.sort()
    alive = 0
    for c in conns:
        try:
            c.sock.setblocking(False)
            d = c.sock.recv(1, socket.MSG_PEEK)
            alive += d != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    for c in conns:
        c.sock.close()
    out = {
        "connections": len(conns),
        "alive_at_end": alive,
        "setup_s": round(setup, 1),
        "pss_total_kb": total,
        "pss_idle_server_kb": base_total,
        "processes": nproc,
        "processes_idle_server": base_n,
        "pss_per_conn_kb": round(total / len(conns), 1),
        "pss_added_per_conn_kb": round((total - base_total) / len(conns), 1),
        "pss_by_program_kb": per,
        "wake_ms_p50": round(statistics.median(lat), 2),
        "wake_ms_p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
        "wake_ms_max": round(lat[-1], 2),
        "wake_samples": len(lat),
        # from the end of the message (LMTP ".") to the EXISTS: delivery and wake together
        "deliver_to_exists_ms_p50": round(statistics.median(lat_sent), 2),
        "deliver_to_exists_ms_p99": round(lat_sent[min(len(lat_sent) - 1,
                                                       int(len(lat_sent) * 0.99))], 2),
        "idle_cpu_s": {k: round(v, 3) for k, v in sorted(cpu.items())},
        "idle_seconds": a.idle_seconds,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
