#!/usr/bin/env python3
"""bench-read.py: time the read paths of issue 15 on a mailbox that is already full (no
delivery, so rounds can alternate between servers quickly), with mailbench's own client code
when ../shared/bench/mailbench.py is there (--mailbench), else imaplib/poplib directly.
Python stdlib only.

Workloads, on --mailbox (INBOX) of --user (password "pw"):
    fetch     FETCH 1:* BODY.PEEK[] through an imaplib client (MB/s of message bytes)
    rawfetch  the same command, the answer only counted (what the server can send when the
              client does not parse)
    search    SEARCH FROM/SUBJECT (--repeat times each) and TEXT (3 times): median and best
    pop3      RETR 1..n read in bulk (MB/s)
    sync      mailbench's imap-sync-headers command, UID FETCH 1:* (UID FLAGS INTERNALDATE
              RFC822.SIZE ENVELOPE BODYSTRUCTURE), --repeat times through the imaplib client:
              median and best wall, the client's CPU, the server's CPU per command
    rawsync   the same command, the answer only counted: wall and time to the first byte
With --server-pid, the CPU seconds of that process tree during each workload are shown.

    scripts/bench-start.sh /tmp/rd-c 23300          # filled once by mailbench.py
    scripts/bench-read.py --imap-port 23300 --pop3-port 23301 --server-pid $(cat /tmp/rd-c/peer.pid)
"""
import argparse
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--imap-port", type=int, required=True)
p.add_argument("--pop3-port", type=int)
p.add_argument("--user", default="user0")
p.add_argument("--mailbox", default="INBOX", help="for fetch, rawfetch and search (POP3: INBOX)")
p.add_argument("--server-pid", type=int)
p.add_argument("--repeat", type=int, default=9)
# the bench sits in ../shared/bench beside the main checkout (one level more from a worktree)
BENCH = [d for d in (os.path.join(HERE, "..", "..", "shared", "bench"),
                     os.path.join(HERE, "..", "..", "..", "shared", "bench"))
         if os.path.exists(os.path.join(d, "mailbench.py"))]
p.add_argument("--mailbench", default=BENCH[0] if BENCH else None,
               help="the directory of mailbench.py")
p.add_argument("what", nargs="*", default=["fetch", "rawfetch", "search", "pop3"],
               help="fetch rawfetch search pop3 sync rawsync")
a = p.parse_args()
if not a.mailbench:
    sys.exit("bench-read.py: mailbench.py not found; give --mailbench DIR")
sys.path.insert(0, a.mailbench)
import mailbench as mb  # noqa: E402  (the bench's client classes and search words)


class Cfg:
    host = a.host
    imap_port = a.imap_port
    pop3_port = a.pop3_port
    password = "pw"


def cpu():
    return mb.tree_cpu(a.server_pid) if a.server_pid else 0.0


def span(fn):
    c0, t0 = cpu(), time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t0, cpu() - c0


SYNC_ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"


def sync():
    m = mb.imap_login(Cfg, a.user)
    n = mb.select_count(m, a.mailbox)
    walls, ccpu, c0 = [], [], cpu()
    for _ in range(a.repeat):
        p0, t0 = time.process_time(), time.perf_counter()
        typ, dat = m.uid("FETCH", "1:*", SYNC_ITEMS)
        walls.append(time.perf_counter() - t0)
        ccpu.append(time.process_time() - p0)
        mb.check(typ, dat, "UID FETCH")
    c = cpu() - c0
    print(f"sync n={n} median={statistics.median(walls) * 1000:.1f} ms "
          f"best={min(walls) * 1000:.1f} ms clientcpu={statistics.median(ccpu) * 1000:.1f} ms "
          f"srvcpu/cmd={c / a.repeat * 1000:.1f} ms")
    m.logout()


def rawsync():
    s = socket.create_connection((a.host, a.imap_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")

    def until(tag):
        while not f.readline().startswith(tag):
            pass
    until(b"* OK")
    s.sendall(b"a LOGIN %s pw\r\n" % a.user.encode())
    until(b"a ")
    s.sendall(b"b SELECT %s\r\n" % a.mailbox.encode())
    until(b"b ")
    walls, firsts, total = [], [], 0
    buf = memoryview(bytearray(4 << 20))
    for _ in range(a.repeat):
        t0, first, tail, total = time.perf_counter(), None, b"", 0
        s.sendall(b"f UID FETCH 1:* %s\r\n" % SYNC_ITEMS.encode())
        while b"\r\nf OK" not in tail and b"\r\nf NO" not in tail:
            n = s.recv_into(buf)
            if not n:
                break
            if first is None:
                first = time.perf_counter() - t0
            total += n
            tail = (tail + bytes(buf[max(0, n - 64):n]))[-64:]
        walls.append(time.perf_counter() - t0)
        firsts.append(first)
    print(f"rawsync wire={total / 1e6:.2f} MB median={statistics.median(walls) * 1000:.1f} ms "
          f"first-byte median={statistics.median(firsts) * 1000:.2f} ms")
    s.sendall(b"z LOGOUT\r\n")
    s.close()


def rawfetch():
    s = socket.create_connection((a.host, a.imap_port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def until(tag):
        data = b""
        while b"\r\n" + tag not in data and not data.startswith(tag):
            data += s.recv(65536)
    until(b"* OK")
    s.sendall(b"a LOGIN %s pw\r\n" % a.user.encode())
    until(b"a ")
    s.sendall(b"b SELECT %s\r\n" % a.mailbox.encode())
    until(b"b ")
    buf = memoryview(bytearray(4 << 20))
    total, tail = 0, b""
    c0, t0 = cpu(), time.perf_counter()
    s.sendall(b"f FETCH 1:* BODY.PEEK[]\r\n")
    while b"\r\nf OK" not in tail and b"\r\nf NO" not in tail:
        n = s.recv_into(buf)
        if not n:
            break
        total += n
        tail = (tail + bytes(buf[max(0, n - 64):n]))[-64:]
    t, c = time.perf_counter() - t0, cpu() - c0
    print(f"rawfetch {total / t / 1e6:.1f} MB/s wire={total / 1e6:.1f} MB wall={t:.3f} s "
          f"srvcpu={c:.2f} s")
    s.sendall(b"z LOGOUT\r\n")
    s.close()


for w in a.what:
    if w == "fetch":
        m = mb.imap_login(Cfg, a.user)
        n = mb.select_count(m, a.mailbox)
        (typ, dat), t, c = span(lambda: m.fetch("1:*", "(BODY.PEEK[])"))
        payload = sum(len(x[1]) for x in dat if isinstance(x, tuple))
        print(f"fetch n={n} {payload / t / 1e6:.1f} MB/s wall={t:.3f} s srvcpu={c:.2f} s")
        m.logout()
    elif w == "rawfetch":
        rawfetch()
    elif w == "sync":
        sync()
    elif w == "rawsync":
        rawsync()
    elif w == "search":
        m = mb.imap_login(Cfg, a.user)
        mb.select_count(m, a.mailbox)
        for q in (f'FROM "{mb.FROM_TARGET}"', f'SUBJECT "{mb.SUBJECT_WORD}"',
                  f'TEXT "{mb.RARE_WORD}"'):
            reps = 3 if q.startswith("TEXT") else a.repeat
            ts, c0 = [], cpu()
            for _ in range(reps):
                (typ, dat), t, _c = span(lambda: m.search(None, q))
                ts.append(t)
            c = cpu() - c0
            print(f"search {q.split()[0]} hits={len(dat[0].split())} first={ts[0] * 1000:.1f} ms "
                  f"median={statistics.median(ts) * 1000:.1f} ms best={min(ts) * 1000:.1f} ms "
                  f"srvcpu/cmd={c / reps * 1000:.1f} ms")
        m.logout()
    elif w == "pop3":
        pp = mb.POP3(a.host, a.pop3_port, timeout=300)
        pp.user(a.user)
        pp.pass_("pw")
        cnt, _ = pp.stat()

        def retr():
            return sum(len(mb.pop3_retr_raw(pp, k)[1]) for k in range(1, cnt + 1))
        payload, t, c = span(retr)
        print(f"pop3 n={cnt} {payload / t / 1e6:.1f} MB/s wall={t:.3f} s srvcpu={c:.2f} s")
        pp.quit()
    else:
        sys.exit(f"unknown workload {w}")
