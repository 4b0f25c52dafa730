#!/usr/bin/env python3
"""bench-sort.py: time SORT and THREAD on a large mailbox of a running server (Coffer from
scripts/bench-start.sh DIR BASEPORT, or any IMAP server with the same users: user0..user99,
password "pw"). Python stdlib only.

It fills the INBOX of --user by LMTP until it holds --messages messages (realistic, varied
headers: names and addresses, Cc on some, subjects with Re:/Fwd:/[list] markers and encoded
words, Date: fields in many time zones, Message-ID, and References/In-Reply-To chains that
follow a random thread model), then logs in over IMAP, SELECTs the INBOX and times each
command --repeat times (the first run is reported apart: it may read the cache cold):

    UID SORT (DATE) UTF-8 ALL
    UID THREAD REFERENCES UTF-8 ALL

Output: one line per command with the first, best and median wall-clock time in ms (from
sending the command to its tagged OK) and the response size.

    scripts/bench-start.sh /tmp/bench 20000
    scripts/bench-sort.py --port 20000 --messages 5000 --user user1
    scripts/bench-sort.py --port 20000 --messages 100000 --user user2
"""
import argparse
import random
import socket
import statistics
import sys
import threading
import time

FIRST = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
         "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter",
         "Zoë", "Émile", "Søren", "Łukasz", "Jürgen"]
LAST = ["Smith", "Jones", "Müller", "García", "Rossi", "Dubois", "Nowak", "Kim", "Chen",
        "Ødegaard", "O'Brien", "van Dijk"]
DOMAINS = ["example.com", "example.org", "lists.example.net", "mail.example.de", "corp.example"]
TOPICS = ["quarterly report", "build failure on main", "lunch on friday", "release 2.4 plan",
          "invoice #4411", "holiday schedule", "server migration", "security advisory",
          "new hire onboarding", "budget review", "conference travel", "patch review",
          "café meeting", "résumé attached", "weekly sync notes", "database outage"]
ZONES = ["+0000", "-0500", "+0100", "+0200", "-0800", "+0530", "+0900", "-0300", "+1000"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def encode_word(s):
    """RFC 2047 Q-encoding of s when it is not ASCII."""
    try:
        s.encode("ascii")
        return s
    except UnicodeEncodeError:
        out = []
        for b in s.encode("utf-8"):
            c = chr(b)
            if c.isalnum() and b < 128:
                out.append(c)
            elif c == " ":
                out.append("_")
            else:
                out.append("=%02X" % b)
        return "=?UTF-8?Q?" + "".join(out) + "?="


def person(rng):
    f, l = rng.choice(FIRST), rng.choice(LAST)
    local = (f + "." + l).lower().encode("ascii", "ignore").decode().replace("'", "")
    return '"%s" <%s@%s>' % (encode_word(f + " " + l), local or "x", rng.choice(DOMAINS))


class Corpus:
    """Messages with a thread model: about 60% reply to an earlier message."""

    def __init__(self, seed, tag):
        self.rng = random.Random(seed)
        self.tag = tag
        self.msgs = []          # (message-id, references list, subject)
        self.t0 = 1672531200    # 2023-01-01

    def make(self, i):
        rng = self.rng
        mid = "<%s.%d.%d@bench.example>" % (self.tag, i, rng.randrange(1 << 30))
        refs = []
        if self.msgs and rng.random() < 0.6:
            # reply to a recent message mostly, sometimes an old one
            j = len(self.msgs) - 1 - min(int(rng.expovariate(1 / 50.0)), len(self.msgs) - 1)
            pid, prefs, psubj = self.msgs[j]
            refs = (prefs + [pid])[-12:]
            subj = rng.choice(["Re: ", "RE: ", "Re: ", "Fwd: ", "Re[2]: "]) + psubj
            base = psubj
        else:
            base = rng.choice(TOPICS) + " " + str(rng.randrange(1000))
            subj = rng.choice(["", "", "", "[team] ", "[announce] "]) + base
        self.msgs.append((mid, refs, base))
        when = self.t0 + i * 300 + rng.randrange(-7200, 7200)
        tm = time.gmtime(when)
        date = "%s, %d %s %d %02d:%02d:%02d %s" % (
            DAYS[tm.tm_wday], tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year, tm.tm_hour,
            tm.tm_min, tm.tm_sec, rng.choice(ZONES))
        h = ["Return-Path: <bounce@example.com>",
             "Received: from mx.example.com (mx.example.com [192.0.2.1]) by bench (Coffer)"
             " with LMTP; %s" % date,
             "From: " + person(rng),
             "To: " + ", ".join(person(rng) for _ in range(rng.randrange(1, 3)))]
        if rng.random() < 0.3:
            h.append("Cc: " + person(rng))
        h += ["Subject: " + encode_word(subj), "Date: " + date, "Message-ID: " + mid]
        if refs:
            h.append("In-Reply-To: " + refs[-1])
            h.append("References: " + "\r\n ".join(refs))
        h += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
        lines = ["Line %d of message %d: lorem ipsum dolor sit amet." % (k, i)
                 for k in range(rng.randrange(5, 60))]
        return ("\r\n".join(h) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n").encode("utf-8")


class Conn:
    def __init__(self, host, port, timeout=600):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def line(self):
        l = self.f.readline()
        if not l:
            raise EOFError("server closed the connection")
        return l

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.f.close()
        self.s.close()


def lmtp_reply(c):
    while True:
        l = c.line()
        if l[3:4] != b"-":
            return l


def lmtp_fill(host, port, user, corpus, start, count, conns, lock):
    """Deliver messages start..start+count-1 over conns parallel LMTP sessions."""
    nexti = [start]
    errors = []

    def worker():
        c = Conn(host, port)
        try:
            lmtp_reply(c)
            c.send(b"LHLO bench\r\n")
            lmtp_reply(c)
            while True:
                with lock:
                    if nexti[0] >= start + count:
                        break
                    i = nexti[0]
                    nexti[0] += 1
                    msg = corpus.make(i)
                data = msg.replace(b"\r\n.", b"\r\n..")
                c.send(b"MAIL FROM:<bounce@example.com>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                       % user.encode())
                for _ in range(3):
                    r = lmtp_reply(c)
                    if r[:1] not in (b"2", b"3"):
                        raise RuntimeError("LMTP: %r" % r)
                c.send(data + b".\r\n")
                r = lmtp_reply(c)
                if r[:1] != b"2":
                    raise RuntimeError("LMTP: %r" % r)
            c.send(b"QUIT\r\n")
        except Exception as e:  # reported by the caller
            errors.append(e)
        finally:
            c.close()

    ts = [threading.Thread(target=worker) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


class Imap(Conn):
    def __init__(self, host, port):
        super().__init__(host, port)
        self.n = 0
        self.line()

    def cmd(self, text):
        """(tagged line, untagged bytes, seconds)."""
        self.n += 1
        tag = b"b%d" % self.n
        t = time.perf_counter()
        self.send(tag + b" " + text.encode() + b"\r\n")
        size = 0
        untagged = []
        while True:
            l = self.line()
            if l.startswith(tag + b" "):
                return l, untagged, time.perf_counter() - t, size
            size += len(l)
            untagged.append(l)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="IMAP port (BASEPORT)")
    ap.add_argument("--lmtp-port", type=int, help="LMTP port (default BASEPORT+2)")
    ap.add_argument("--user", default="user1")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lmtp-conns", type=int, default=8)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    lport = a.lmtp_port or a.port + 2

    im = Imap(a.host, a.port)
    tagged, _, _, _ = im.cmd("LOGIN %s %s" % (a.user, a.password))
    if b" OK" not in tagged:
        sys.exit("login failed: %r" % tagged)
    _, untagged, _, _ = im.cmd("EXAMINE INBOX")
    have = 0
    for l in untagged:
        p = l.split()
        if len(p) >= 3 and p[2] == b"EXISTS":
            have = int(p[1])
    if have < a.messages:
        corpus = Corpus(a.seed, a.user)
        for i in range(have):      # the thread model sees what is there already
            corpus.make(i)
        t = time.perf_counter()
        print("filling %s: %d messages by LMTP ..." % (a.user, a.messages - have), flush=True)
        lmtp_fill(a.host, lport, a.user, corpus, have, a.messages - have, a.lmtp_conns,
                  threading.Lock())
        print("  %.1f s" % (time.perf_counter() - t), flush=True)
    elif have > a.messages:
        print("note: INBOX of %s holds %d messages (more than --messages)" % (a.user, have))
    # a new session: the first may have outlived the server's idle timeout while filling
    im.close()
    im = Imap(a.host, a.port)
    im.cmd("LOGIN %s %s" % (a.user, a.password))
    tagged, untagged, _, _ = im.cmd("SELECT INBOX")
    for l in untagged:
        if l.split()[2:3] == [b"EXISTS"]:
            have = int(l.split()[1])
    print("%s INBOX: %d messages" % (a.user, have))
    for text in ("UID SORT (DATE) UTF-8 ALL", "UID THREAD REFERENCES UTF-8 ALL"):
        times, size = [], 0
        for _ in range(a.repeat):
            tagged, _, dt, size = im.cmd(text)
            if b" OK" not in tagged:
                sys.exit("%s: %r" % (text, tagged))
            times.append(dt * 1000)
        rest = times[1:] or times
        print("%-34s first %8.1f ms  best %8.1f ms  median %8.1f ms  (%d bytes)"
              % (text, times[0], min(rest), statistics.median(rest), size), flush=True)
    im.cmd("LOGOUT")


if __name__ == "__main__":
    main()
