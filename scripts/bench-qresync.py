#!/usr/bin/env python3
"""bench-qresync.py: QRESYNC reselect cost (RFC 7162 section 3.2.5) on a large mailbox.

Talks to a running server from scripts/bench-start.sh DIR BASEPORT (users user0..user99,
password "pw"). Fills a mailbox of one user to --messages messages (MULTIAPPEND in batches;
a rerun tops it up), records UIDVALIDITY and HIGHESTMODSEQ in a client session, then another
session makes 100 flag changes and 100 expunges (by default), and the client reselects with
SELECT mailbox (QRESYNC (uidvalidity modseq)) --repeat times in fresh connections. Prints the
reselect time (round trip on loopback, median and min) and the bytes the server sent for it,
beside a full resync without QRESYNC (SELECT + UID FETCH 1:* (FLAGS)) for scale.

Usage: scripts/bench-qresync.py [--host 127.0.0.1] [--port BASEPORT] [--user user0]
       [--messages 100000] [--changes 100] [--expunges 100] [--repeat 5]
Python standard library only."""
import argparse
import random
import re
import socket
import statistics
import sys
import time


class Imap:
    def __init__(self, host, port, user, password):
        self.sock = socket.create_connection((host, port), timeout=600)
        self.buf = b""
        self.pos = 0                                  # read offset into buf
        self.n = 0
        self.bytes = 0
        self.readline()                               # greeting
        self.ok("LOGIN %s %s" % (user, password))

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("server closed the connection")
        # keep only what is unread: re-slicing the whole buffer for every line made reading
        # a 100,000-line FETCH quadratic in the client
        self.buf = self.buf[self.pos:] + data
        self.pos = 0

    def readline(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                break
            self._fill()
        line = self.buf[self.pos:i]
        self.pos = i + 2
        self.bytes += len(line) + 2
        m = re.search(rb"\{(\d+)\}$", line)
        if m:                                         # a literal: keep it in the line
            need = int(m.group(1))
            while len(self.buf) - self.pos < need:
                self._fill()
            line += b"\r\n" + self.buf[self.pos:self.pos + need]
            self.bytes += need
            self.pos += need
            line += self.readline()
        return line

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text):
        """(tagged line, untagged lines)."""
        self.n += 1
        tag = b"b%d" % self.n
        self.send(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + b" "):
                return line, untagged
            untagged.append(line)

    def ok(self, text):
        tagged, untagged = self.cmd(text)
        if b" OK" not in tagged[:len(tagged.split(b" ")[0]) + 3]:
            raise RuntimeError("%r -> %r" % (text if isinstance(text, str) else text[:80], tagged))
        return untagged

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, EOFError):
            pass
        self.sock.close()


def parse_set(text):
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        lo, hi = int(lo), int(hi or lo)
        out.extend(range(min(lo, hi), max(lo, hi) + 1))
    return out


def all_uids(c):
    u = c.ok("UID SEARCH RETURN (ALL) ALL")
    for line in u:
        m = re.search(rb" ALL ([0-9:,]+)", line)
        if m:
            return parse_set(m.group(1).decode())
    return []


def fill(c, box, want):
    c.cmd('CREATE "%s"' % box)
    u = c.ok('STATUS "%s" (MESSAGES)' % box)
    have = int(re.search(rb"MESSAGES (\d+)", b"".join(u)).group(1))
    batch = 500
    t0 = time.monotonic()
    while have < want:
        k = min(batch, want - have)
        parts = []
        for i in range(have, have + k):
            m = ("From: bench%d@example.com\r\nTo: user@example.com\r\nSubject: qresync bench %d\r\n"
                 "Message-ID: <qrb%d.%d@example.com>\r\n\r\nbody of message %d\r\n"
                 % (i % 97, i, i, int(t0), i)).encode()
            parts.append(b"{%d+}\r\n%s" % (len(m), m))
        c.ok(b'APPEND "' + box.encode() + b'" ' + b" ".join(parts))
        have += k
        if have % 10000 < batch:
            print("  filled %d/%d (%.0f s)" % (have, want, time.monotonic() - t0), file=sys.stderr)
    return have


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="IMAP port (bench-start BASEPORT)")
    ap.add_argument("--user", default="user0")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--mailbox", default="qresync-bench")
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--expunges", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()

    c = Imap(a.host, a.port, a.user, a.password)
    n = fill(c, a.mailbox, a.messages + a.expunges)
    c.ok("ENABLE QRESYNC")
    u = b"".join(c.ok('SELECT "%s"' % a.mailbox))
    uv = int(re.search(rb"UIDVALIDITY (\d+)", u).group(1))
    hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", u).group(1))
    uids = all_uids(c)
    c.close()

    # the changes, from another session
    rnd = random.Random(7162)
    pick = rnd.sample(uids, a.changes + a.expunges)
    flag_uids, gone_uids = pick[:a.changes], sorted(pick[a.changes:])
    o = Imap(a.host, a.port, a.user, a.password)
    o.ok('SELECT "%s"' % a.mailbox)
    flagged = set()
    for line in o.ok("UID FETCH %s (FLAGS)" % ",".join(map(str, flag_uids))):
        m = re.search(rb"UID (\d+)", line)
        if m and b"\\Flagged" in line:
            flagged.add(int(m.group(1)))
    for uid in flag_uids:                            # each its own command: 100 modseqs
        o.ok("UID STORE %d %sFLAGS.SILENT (\\Flagged)" % (uid, "-" if uid in flagged else "+"))
    gone = ",".join(map(str, gone_uids))
    o.ok("UID STORE %s +FLAGS.SILENT (\\Deleted)" % gone)
    o.ok("UID EXPUNGE %s" % gone)
    o.close()

    times, sizes = [], []
    for _ in range(a.repeat):
        q = Imap(a.host, a.port, a.user, a.password)
        q.ok("ENABLE QRESYNC")
        b0 = q.bytes
        t0 = time.perf_counter()
        u = q.ok('SELECT "%s" (QRESYNC (%d %d))' % (a.mailbox, uv, hms))
        times.append((time.perf_counter() - t0) * 1000)
        sizes.append(q.bytes - b0)
        nf = sum(1 for x in u if re.match(rb"\* \d+ FETCH", x))
        nv = sum(len(parse_set(m.group(1).decode())) for x in u
                 for m in [re.match(rb"\* VANISHED \(EARLIER\) ([0-9:,]+)", x)] if m)
        q.close()
    # for scale: a client without QRESYNC resyncs flags of every message
    f = Imap(a.host, a.port, a.user, a.password)
    b0 = f.bytes
    t0 = time.perf_counter()
    f.ok('SELECT "%s"' % a.mailbox)
    f.ok("UID FETCH 1:* (FLAGS)")
    full_ms = (time.perf_counter() - t0) * 1000
    full_bytes = f.bytes - b0
    f.close()
    print("mailbox %s: %d messages before, %d flag changes, %d expunges" %
          (a.mailbox, n, a.changes, a.expunges))
    print("QRESYNC reselect: median %.2f ms, min %.2f ms over %d; %d bytes "
          "(%d FETCH, %d uids VANISHED)" % (statistics.median(times), min(times), a.repeat,
                                            statistics.median(sizes), nf, nv))
    print("full resync (SELECT + UID FETCH 1:* (FLAGS)): %.1f ms, %d bytes" % (full_ms, full_bytes))


if __name__ == "__main__":
    main()
