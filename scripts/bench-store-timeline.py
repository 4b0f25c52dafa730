#!/usr/bin/env python3
"""bench-store-timeline.py: imaplib timeline probe (the mailbench client): timestamps of command sent, first response
line, last untagged line, tagged OK, for STORE +FLAGS (\\Seen) 1:*, STORE \\Deleted every 10th,
EXPUNGE; pages made clean before like mailbench's LMTP refill (EXPUNGE + APPEND refill)."""
import argparse, imaplib, time, statistics, sys, re
ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--user", default="user6")
ap.add_argument("--n", type=int, default=5000)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--pid", type=int, default=0)
ap.add_argument("--label", default="")
ap.add_argument("--condstore", action="store_true")
a = ap.parse_args()

class T(imaplib.IMAP4):
    marks = None
    def _get_line(self):
        line = super()._get_line()
        if self.marks is not None:
            now = time.perf_counter()
            if self.marks.get("first") is None: self.marks["first"] = now
            if line.startswith(b"*"): self.marks["last"] = now
            else: self.marks["ok"] = now
        return line
    def send(self, data):
        if self.marks is not None and self.marks.get("sent") is None:
            self.marks["sent"] = time.perf_counter()
        return super().send(data)

def cpu(pid):
    if not pid: return 0.0
    tot = 0
    import os
    for p in [pid] + [int(x) for x in open(f"/proc/{pid}/task/{pid}/children").read().split()]:
        try: tot += int(open(f"/proc/{p}/schedstat").read().split()[0])
        except OSError: pass
    return tot / 1e6

def timed(m, fn):
    m.marks = {"sent": None, "first": None, "last": None, "ok": None}
    c0 = cpu(a.pid)
    typ, dat = fn()
    c1 = cpu(a.pid)
    mk = m.marks; m.marks = None
    assert typ == "OK", (typ, dat)
    s = mk["sent"]
    return dict(first=(mk["first"] - s) * 1e3, last=((mk["last"] or mk["ok"]) - s) * 1e3,
                ok=(mk["ok"] - s) * 1e3, cpu=c1 - c0)

msg = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: probe %d\r\nMessage-ID: <il%d@x>\r\n\r\nbody line\r\n"
m = T("127.0.0.1", a.port)
m.sock.setsockopt(6, 1, 1)
m.login(a.user, "pw")
if a.condstore: m._simple_command("ENABLE", "CONDSTORE")
typ, dat = m.select("INBOX"); have = int(dat[0])
seq = 0
def refill():
    global have, seq
    typ, dat = m.select("INBOX"); have = int(dat[0])
    while have < a.n:
        k = min(1000, a.n - have)
        # MULTIAPPEND through raw socket
        tag = m._new_tag()
        out = bytearray(tag + b" APPEND INBOX")
        for i in range(k):
            seq += 1
            body = msg % (seq, seq + int(time.time() * 1000) * 10000)
            out += b" {%d+}\r\n" % len(body) + body
        out += b"\r\n"
        m.send(bytes(out))
        while True:
            line = m._get_line()
            if line.startswith(tag): break
        typ, dat = m.select("INBOX"); have = int(dat[0])
refill()
res = {"seen": [], "del": [], "exp": []}
for r in range(a.rounds):
    m.store("1:*", "-FLAGS.SILENT", "(\\Seen \\Deleted)")
    # make the index pages clean as after mailbench's LMTP fill (an index flush): EXPUNGE of
    # nothing does not flush; expunge + refill happens below each round
    res["seen"].append(timed(m, lambda: m.store("1:*", "+FLAGS", "(\\Seen)")))
    victims = ",".join(str(i) for i in range(10, have + 1, 10))
    res["del"].append(timed(m, lambda: m.store(victims, "+FLAGS", "(\\Deleted)")))
    res["exp"].append(timed(m, lambda: m.expunge()))
    refill()
for k, rs in res.items():
    med = lambda key: statistics.median(x[key] for x in rs)
    print(f"{a.label:8s} {k:4s}: first {med('first'):6.2f} last {med('last'):6.2f} ok {med('ok'):6.2f} ms  srvcpu {med('cpu'):5.2f} ms   ok: "
          + " ".join(f"{x['ok']:.1f}" for x in rs))
m.logout()
