#!/usr/bin/env python3
"""bench-manyusers-probe.py PORT [--user U] [--users-from N] [--no-select] [--json FILE]: the per-user costs of the
"many users" benchmark (docs/perf/many-users.md) against any IMAP server on 127.0.0.1:PORT
with users userN / pw:

  list_ms    LIST "" "*" for --user (default user0 (who has 20 mailboxes and, on a Coffer instance from
             scripts/bench-manyusers.sh, 5 other users' folders and one shared mailbox with
             rights on them)), median of 15 after one warm-up; the names returned are counted
  select_ms  the first SELECT of a mailbox nobody has opened since the server started: user
             K's "Archive/2022" for 10 users from --users-from, each on a new connection
             (median)

Stdlib only; every answer is checked (tagged OK, expected mailboxes present)."""
import argparse
import json
import socket
import statistics
import sys
import time


class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.n = 0
        greet = self.f.readline()
        if not greet.startswith(b"* OK"):
            sys.exit("bad greeting %r" % greet)

    def cmd(self, text):
        self.n += 1
        tag = b"p%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        untagged = []
        while True:
            line = self.f.readline()
            if not line:
                sys.exit("connection closed during %r" % text)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    sys.exit("%r failed: %r" % (text, line))
                return untagged
            untagged.append(line)

    def close(self):
        try:
            self.cmd("LOGOUT")
        except SystemExit:
            pass
        self.s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--users-from", type=int, default=40)
    ap.add_argument("--user", default="user0", help="whose LIST is timed")
    ap.add_argument("--no-select", action="store_true", help="time LIST only")
    ap.add_argument("--json")
    a = ap.parse_args()
    c = Imap(a.port)
    c.cmd('LOGIN %s pw' % a.user)
    c.cmd('LIST "" "*"')
    times = []
    names = 0
    for _ in range(15):
        t = time.perf_counter()
        got = c.cmd('LIST "" "*"')
        times.append((time.perf_counter() - t) * 1000)
        names = sum(1 for x in got if x.startswith(b"* LIST"))
        if not any(b"Archive/2022" in x for x in got):
            sys.exit("LIST does not show Archive/2022: %r" % got[:5])
    c.close()
    sel = []
    for k in ([] if a.no_select else range(a.users_from, a.users_from + 10)):
        c = Imap(a.port)
        c.cmd('LOGIN user%d pw' % k)
        t = time.perf_counter()
        got = c.cmd('SELECT "Archive/2022"')
        sel.append((time.perf_counter() - t) * 1000)
        if not any(b"EXISTS" in x for x in got):
            sys.exit("SELECT without EXISTS: %r" % got)
        c.close()
    out = {"list_ms": statistics.median(times), "list_names": names,
           "select_ms": statistics.median(sel) if sel else None}
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
