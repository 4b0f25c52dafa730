#!/usr/bin/env python3
"""bench-compress.py: what IMAP COMPRESS=DEFLATE (RFC 4978) costs and saves on a big FETCH.

Talks to a running server (Coffer from scripts/bench-start.sh DIR BASEPORT, or a peer from
../shared/bench/peers: users user0..user99, password pw). Fills one user's INBOX over LMTP with
realistic text mail (skipped when it already holds enough), then runs `FETCH 1:* BODY.PEEK[]`
ROUNDS times each without and with COMPRESS DEFLATE and prints, per mode, the median of: bytes
on the wire, wall time, and server CPU (user+system of the master and all its descendants, from
/proc/PID/stat; --server-pid) per MB of message data delivered. Python standard library only.

    scripts/bench-start.sh /tmp/cb 10500
    scripts/bench-compress.py --imap-port 10500 --lmtp-port 10502 --server-pid $(cat /tmp/cb/peer.pid)
"""
import argparse
import json
import os
import random
import re
import smtplib
import socket
import statistics
import sys
import time
import zlib

WORDS = ("the of and to in is that for it as was with be by on not he this are or his from at "
         "which but have an they you were her she there been one all we their has would when if "
         "so no what up said about out into them can only other time new some could these two "
         "may first then do any like my now over such our man me even most made after also did "
         "many before must through back years where much your way well down should because "
         "each just those people how too little state good very make world still own see men "
         "work long get here between both life being under never day same another know while "
         "last might us great old year off come since against go came right used take three "
         "meeting project budget report quarter review schedule release server mailbox client "
         "invoice contract deadline proposal customer support ticket update figures draft "
         "attached please regards thanks tomorrow monday friday morning afternoon office").split()


def paragraph(rng, words):
    out, line = [], []
    for _ in range(words):
        w = rng.choice(WORDS)
        if sum(len(x) + 1 for x in line) + len(w) > 72:
            out.append(" ".join(line))
            line = []
        line.append(w)
    if line:
        out.append(" ".join(line))
    text = "\r\n".join(out)
    return text[:1].upper() + text[1:] + "."


def make_message(rng, i, user):
    """A plausible text mail of 1 to ~30 KB: headers of a real client, paragraphs, sometimes a
    quoted reply and a signature."""
    frm = "%s.%s@example.%s" % (rng.choice(WORDS), rng.choice(WORDS), rng.choice(["com", "org"]))
    subj = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8)))
    hdr = ("Return-Path: <%s>\r\n"
           "Received: from mx%d.example.com (mx%d.example.com [192.0.2.%d])\r\n"
           "\tby mail.example.net with ESMTPS id %08x\r\n"
           "\tfor <%s@example.net>; Mon, 7 Dec 2026 03:%02d:%02d +0000\r\n"
           "From: %s\r\nTo: %s@example.net\r\nSubject: %s\r\n"
           "Date: Mon, 7 Dec 2026 03:%02d:%02d +0000\r\n"
           "Message-ID: <bench-compress-%d-%08x@example.com>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n") % (
        frm, i % 7, i % 7, i % 250, rng.getrandbits(32), user, i % 60, i % 60, frm, user, subj,
        i % 60, i % 60, i, rng.getrandbits(32))
    parts = [paragraph(rng, rng.randint(20, 400)) for _ in range(rng.randint(1, 8))]
    body = "\r\n\r\n".join(parts)
    if rng.random() < 0.4:
        quoted = paragraph(rng, rng.randint(50, 300)).replace("\r\n", "\r\n> ")
        body += "\r\n\r\nOn Friday, %s wrote:\r\n> %s" % (frm, quoted)
    body += "\r\n\r\n-- \r\n%s\r\nExample Corp, %d Main Street\r\n" % (frm, rng.randint(1, 999))
    return (hdr + body).encode()


class Reader:
    """Buffered IMAP response reader over a socket, optionally inflating (raw deflate)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.z = None
        self.zc = None
        self.wire_in = 0
        self.wire_out = 0

    def start_deflate(self):
        self.z = zlib.decompressobj(-15)
        self.zc = zlib.compressobj(6, zlib.DEFLATED, -15)
        if self.buf:            # bytes after the OK line are already compressed
            self.buf = self.z.decompress(self.buf)

    def send(self, data):
        if self.zc:
            data = self.zc.compress(data) + self.zc.flush(zlib.Z_SYNC_FLUSH)
        self.wire_out += len(data)
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("server closed the connection")
        self.wire_in += len(data)
        self.buf += self.z.decompress(data) if self.z else data

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return out
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, tag):
        """Read up to the tagged line; returns (tagged line, literal bytes, untagged count)."""
        lit = 0
        count = 0
        tagb = tag.encode() + b" "
        while True:
            line = self.line()
            while True:
                m = re.search(rb"\{(\d+)\}\r\n$", line)
                if not m:
                    break
                n = int(m.group(1))
                self.exact(n)
                lit += n
                line = self.line()
            if line.startswith(tagb):
                return line, lit, count
            count += 1


def command(r, tag, text):
    r.send(("%s %s\r\n" % (tag, text)).encode())
    tagged, lit, count = r.response(tag)
    if not tagged.startswith(("%s OK" % tag).encode()):
        raise RuntimeError("%s %s: %r" % (tag, text, tagged))
    return lit, count


def server_cpu(pid):
    """CPU seconds (user+system) of pid and all its descendants, from /proc."""
    if not pid:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    children, ticks = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        ppid = int(fields[1])
        children.setdefault(ppid, []).append(int(d))
        ticks[int(d)] = int(fields[11]) + int(fields[12])
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += ticks.get(p, 0)
        stack.extend(children.get(p, []))
    return total / tick


def connect(args):
    s = socket.create_connection((args.host, args.imap_port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    r = Reader(s)
    r.line()  # greeting
    command(r, "l", "LOGIN %s %s" % (args.user, args.password))
    return r


def fill(args):
    """Deliver messages until the user's INBOX holds --messages; returns the count."""
    r = connect(args)
    r.send(b"st STATUS INBOX (MESSAGES)\r\n")
    have = 0
    while True:     # a NO (no INBOX before the first delivery) leaves have at 0
        line = r.line()
        m = re.match(rb"\* STATUS .*MESSAGES (\d+)", line)
        if m:
            have = int(m.group(1))
        if line.startswith(b"st "):
            break
    r.sock.close()
    if have >= args.messages:
        return have
    rng = random.Random(4978)
    for i in range(have):           # keep the generator's sequence stable across runs
        make_message(rng, i, args.user)
    lm = smtplib.LMTP(args.host, args.lmtp_port, timeout=120)
    t0 = time.monotonic()
    for i in range(have, args.messages):
        rcpt = "%s@%s" % (args.user, args.domain) if args.domain else args.user
        lm.sendmail("bench@example.com", [rcpt],
                    make_message(rng, i, args.user))
    lm.quit()
    print("filled %d messages in %.1f s" % (args.messages - have, time.monotonic() - t0),
          file=sys.stderr)
    return args.messages


def run_fetch(args, compress):
    r = connect(args)
    if compress:
        r.send(b"z COMPRESS DEFLATE\r\n")
        tagged = r.line()
        if not tagged.startswith(b"z OK"):
            raise RuntimeError("COMPRESS refused: %r" % tagged)
        r.start_deflate()
    command(r, "s", "EXAMINE INBOX")
    win, wout = r.wire_in, r.wire_out
    cpu0 = server_cpu(args.server_pid)
    t0 = time.monotonic()
    lit, count = command(r, "f", "FETCH 1:* BODY.PEEK[]")
    wall = time.monotonic() - t0
    cpu = server_cpu(args.server_pid) - cpu0
    wire = r.wire_in - win + r.wire_out - wout
    r.send(b"q LOGOUT\r\n")
    r.sock.close()
    return {"messages": count, "literal_bytes": lit, "wire_bytes": wire, "wall_s": wall,
            "server_cpu_s": cpu}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--imap-port", type=int, required=True)
    ap.add_argument("--lmtp-port", type=int, required=True)
    ap.add_argument("--server-pid", type=int, default=0,
                    help="master pid: its and its descendants' CPU is measured")
    ap.add_argument("--user", default="user99")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--domain", default="localhost", help="LMTP recipient domain ('' for a bare user name, as Dovecot's passwd-file wants)")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--label", default="server")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    n = fill(args)
    results = {"plain": [], "deflate": []}
    run_fetch(args, False)          # warm the page cache
    for _ in range(args.rounds):    # alternate, so drift hits both modes alike
        results["plain"].append(run_fetch(args, False))
        results["deflate"].append(run_fetch(args, True))
    summary = {}
    print("%s: FETCH 1:* BODY.PEEK[] of %d messages, median of %d rounds" % (
        args.label, n, args.rounds))
    print("%-8s %12s %12s %7s %8s %10s %12s" % ("mode", "data bytes", "wire bytes", "ratio",
                                                 "wall s", "srv CPU s", "CPU ms/MB"))
    for mode, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        mb = med["literal_bytes"] / 1e6
        med["ratio"] = med["wire_bytes"] / med["literal_bytes"] if med["literal_bytes"] else 0
        med["cpu_ms_per_mb"] = med["server_cpu_s"] * 1000 / mb if mb else 0
        summary[mode] = med
        print("%-8s %12d %12d %7.3f %8.3f %10.3f %12.1f" % (
            mode, med["literal_bytes"], med["wire_bytes"], med["ratio"], med["wall_s"],
            med["server_cpu_s"], med["cpu_ms_per_mb"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"label": args.label, "messages": n, "rounds": args.rounds,
                       "summary": summary, "runs": results}, f, indent=1)


if __name__ == "__main__":
    main()
