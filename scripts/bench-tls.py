#!/usr/bin/env python3
"""bench-tls.py: reading mail over TLS (IMAPS, POP3S, or STARTTLS/STLS), Coffer beside a peer.

mailbench runs plaintext; real clients read over TLS. This fills one user's INBOX over LMTP
with mailbench's corpus (set "A": 60% ~3 KB plain, 30% ~15-29 KB multipart/alternative, 10%
200-390 KB with an attachment; imported from ../shared/bench/mailbench.py) on every target,
then runs, in alternating rounds (target by target, operation by operation):

  fetch-body   IMAP `FETCH 1:* BODY.PEEK[]`                                 (MB/s)
  header-sync  IMAP `UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)`
  pop3-retr    POP3 RETR of every message, one command at a time

and prints per target and operation the medians of: wall time, client CPU (this process),
server CPU of the connection's process (the one `ss -tnp` shows owning the server end of our
TCP connection; Dovecot's is imap-login/pop3-login, which does its TLS) and of the whole server
(every process under --pid; Dovecot's imap/pop3 process is a second process), from
/proc/PID/schedstat (nanoseconds on CPU). The login and TLS handshake are outside the timing.
When client CPU is close to wall time, Python's ssl client is the bottleneck, not the server:
compare server CPU then. Python standard library only.

    BENCH_TLS=1 scripts/bench-start.sh /tmp/tls-c 21400     # imaps=21404 pop3s=21405
    scripts/bench-tls.py --target coffer:imap=21404,pop3=21405,lmtp=21402,pid=$(cat /tmp/tls-c/peer.pid) \\
        --target dovecot:imap=21413,pop3=21414,lmtp=21412,pid=$(cat /tmp/tls-d/peer.pid) \\
        --count 5000 --rounds 5

A target's imap/pop3 ports speak implicit TLS unless `starttls` is in its spec
(`coffer:imap=21400,pop3=21401,...,starttls`): then STARTTLS / STLS on the plaintext ports;
with `plain` the same plaintext ports without TLS (what TLS adds).
--tls 1.2 or 1.3 pins the version; --compress adds COMPRESS=DEFLATE after login (IMAP only;
targets that lack it are skipped for that operation).
"""
import argparse
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def import_mailbench(path):
    sys.path.insert(0, os.path.dirname(path))
    import mailbench  # noqa: E402
    return mailbench


def find_mailbench():
    cands = [os.environ.get("MAILBENCH", ""), os.path.join(HERE, "../../shared/bench/mailbench.py"),
             "/work/shared/bench/mailbench.py"]
    try:   # a worktree: beside the main checkout
        common = subprocess.run(["git", "-C", HERE, "rev-parse", "--git-common-dir"],
                                capture_output=True, text=True).stdout.strip()
        if common:
            cands.append(os.path.join(HERE, common, "../../shared/bench/mailbench.py"))
    except OSError:
        pass
    for c in cands:
        if c and os.path.isfile(c):
            return os.path.abspath(c)
    sys.exit("bench-tls: cannot find mailbench.py (set MAILBENCH=PATH)")


# ---- server CPU (/proc) ----

def schedstat_ns(pid):
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def proc_tree(root):
    kids = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(p))
    out, todo = [root], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def tree_ns(root):
    return {p: schedstat_ns(p) for p in proc_tree(root)}


def tree_delta(before, after):
    """CPU of the tree between two snapshots; processes born in between count from zero."""
    return sum(v - before.get(p, 0) for p, v in after.items()) / 1e9


def conn_pid(sock):
    """The server process owning the other end of sock (ss -tnp), or None."""
    lport = sock.getsockname()[1]
    rport = sock.getpeername()[1]
    out = subprocess.run(["ss", "-tnpH", "state", "established", "( sport = :%d and dport = :%d )"
                          % (rport, lport)], capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


# ---- a buffered reader over a (TLS) socket ----

class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.z = None
        self.zc = None
        self.nread = 0          # response bytes consumed by line() and exact() (decompressed)

    def send(self, data):
        if self.zc:
            data = self.zc.compress(data) + self.zc.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(1 << 18)
        if not data:
            raise EOFError("server closed the connection")
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += self.z.decompress(data) if self.z else data

    def line(self):
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                out = bytes(self.buf[self.pos:i + 1])
                self.pos = i + 1
                self.nread += len(out)
                return out
            self._fill()

    def exact(self, n):
        """n bytes as a bytearray; a large literal is read straight into its own buffer."""
        self.nread += n
        have = len(self.buf) - self.pos
        if have >= n:
            out = self.buf[self.pos:self.pos + n]
            self.pos += n
            return out
        out = bytearray(n)
        out[:have] = self.buf[self.pos:]
        self.buf.clear()
        self.pos = 0
        got = have
        if self.z:
            while got < n:
                self._fill()
                k = min(n - got, len(self.buf))
                out[got:got + k] = self.buf[:k]
                self.pos = k
                got += k
            return out
        mv = memoryview(out)
        while got < n:
            k = self.sock.recv_into(mv[got:], n - got)
            if not k:
                raise EOFError("server closed the connection")
            got += k
        return out

    def start_deflate(self):
        self.z = zlib.decompressobj(-15)
        self.zc = zlib.compressobj(6, zlib.DEFLATED, -15)
        rest = bytes(self.buf[self.pos:])
        self.buf = bytearray(self.z.decompress(rest)) if rest else bytearray()
        self.pos = 0

    def imap(self, tag, text, literals=None, lines=None):
        """Send a command, read to its tagged reply. Returns (tagged line, untagged lines,
        total literal bytes); literals collects each literal and lines each untagged line
        (its first line) when a list is given."""
        self.send(("%s %s\r\n" % (tag, text)).encode())
        tagb = tag.encode() + b" "
        lit = 0
        untagged = 0
        while True:
            line = self.line()
            while line.endswith(b"}\r\n"):
                m = re.search(rb"\{(\d+)\}\r\n$", line)
                if not m:
                    break
                n = int(m.group(1))
                data = self.exact(n)
                if literals is not None:
                    literals.append(data)
                lit += n
                line = self.line()
            if line.startswith(tagb):
                if not line.startswith(tagb + b"OK"):
                    raise RuntimeError("%s %s: %r" % (tag, text, line))
                return line, untagged, lit
            if lines is not None:
                lines.append(line)
            untagged += 1

    def pop3(self, cmd, multi=False):
        self.send(cmd.encode() + b"\r\n")
        st = self.line()
        if not st.startswith(b"+OK"):
            raise RuntimeError("%s: %r" % (cmd.split()[0], st))
        if not multi:
            return st, 0
        while len(self.buf) - self.pos < 3:
            self._fill()
        if self.buf.startswith(b".\r\n", self.pos):     # no data at all
            self.pos += 3
            return st, 0
        n = 0
        while True:
            # whole buffered stretches are searched for the terminator, not line by line
            i = self.buf.find(b"\r\n.\r\n", self.pos)
            if i >= 0:
                n += i + 2 - self.pos
                self.pos = i + 5
                return st, n
            keep = max(self.pos, len(self.buf) - 4)
            n += keep - self.pos
            self.pos = keep
            self._fill()


def tls_context(version):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def connect(t, proto, ctx):
    port = t[proto]
    raw = socket.create_connection((t["host"], port), timeout=600)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if t["plain"]:
        c = Conn(raw)
        c.line()
        return c
    if not t["starttls"]:
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        c = Conn(s)
        c.line()                                   # greeting
        return c
    c = Conn(raw)
    c.line()
    if proto == "imap":
        c.imap("s0", "STARTTLS")
    else:
        c.pop3("STLS")
    c.sock = ctx.wrap_socket(raw, server_hostname="localhost")
    c.buf.clear()
    c.pos = 0
    return c


def imap_session(t, ctx, user, compress):
    c = connect(t, "imap", ctx)
    c.imap("l1", "LOGIN %s pw" % user)
    if compress:
        c.imap("z1", "COMPRESS DEFLATE")
        c.start_deflate()
    _, _, _ = c.imap("s1", "SELECT INBOX")
    return c


# ---- filling ----

def fill(t, ctx, user, count, mb):
    c = connect(t, "imap", ctx)
    c.imap("l1", "LOGIN %s pw" % user)
    c.send(b"s1 SELECT INBOX\r\n")
    have = 0
    while True:
        line = c.line()
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            have = int(m.group(1))
        if line.startswith(b"s1 "):
            break
    c.imap("q", "LOGOUT")
    if have >= count:
        return have
    corpus = mb.Corpus(42, "tls%d" % int(time.time()), "user", 100)
    msgs = corpus.get("A", count)[have:]
    lm = mb.Lmtp(t["host"], t["lmtp"])
    t0 = time.time()
    for k, m in enumerate(msgs):
        lm.deliver("bench@bench.example", [user], m["data"])
        if k % 500 == 499:
            print("  %s: delivered %d/%d (%.0f/s)" % (t["name"], have + k + 1, count,
                                                    (k + 1) / (time.time() - t0)), file=sys.stderr)
    lm.quit()
    return count


# ---- operations ----

def op_fetch_body(c):
    _, n, lit = c.imap("f1", "FETCH 1:* BODY.PEEK[]")
    return n, lit


def op_header_sync(c):
    k = c.nread
    _, n, _ = c.imap("f2", "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE "
                           "BODYSTRUCTURE)")
    return n, c.nread - k


def op_pop3(c):
    st, _ = c.pop3("STAT")
    n = int(st.split()[1])
    total = 0
    for i in range(1, n + 1):
        _, k = c.pop3("RETR %d" % i, multi=True)
        total += k
    return n, total


def run_op(t, ctx, user, op, compress):
    if op == "pop3-retr":
        c = connect(t, "pop3", ctx)
        c.pop3("USER %s" % user)
        c.pop3("PASS pw")
    else:
        c = imap_session(t, ctx, user, compress)
    cp = conn_pid(c.sock)
    before = tree_ns(t["pid"])
    cp0 = schedstat_ns(cp) if cp else 0
    w0, u0 = time.perf_counter(), time.process_time()
    if op == "fetch-body":
        n, nbytes = op_fetch_body(c)
    elif op == "header-sync":
        n, nbytes = op_header_sync(c)
    else:
        n, nbytes = op_pop3(c)
    wall, ucpu = time.perf_counter() - w0, time.process_time() - u0
    cpn = (schedstat_ns(cp) - cp0) / 1e9 if cp else float("nan")
    srv = tree_delta(before, tree_ns(t["pid"]))
    ver = c.sock.version() if isinstance(c.sock, ssl.SSLSocket) else "plain"
    try:
        if op == "pop3-retr":
            c.pop3("QUIT")
        else:
            c.imap("q", "LOGOUT")
    except (OSError, RuntimeError, EOFError):
        pass
    c.sock.close()
    return {"wall": wall, "client": ucpu, "conn": cpn, "server": srv, "n": n, "bytes": nbytes,
            "ver": ver}


def parse_target(spec):
    name, _, rest = spec.partition(":")
    t = {"name": name, "host": "127.0.0.1", "starttls": False, "plain": False, "pid": None}
    for kv in rest.split(","):
        if kv in ("starttls", "plain"):
            t[kv] = True
            continue
        k, _, v = kv.partition("=")
        t[k] = v if k == "host" else int(v)
    for k in ("imap", "pop3", "lmtp", "pid"):
        if not t.get(k):
            sys.exit("bench-tls: target %s needs %s=" % (name, k))
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", action="append", required=True,
                    help="NAME:imap=P,pop3=P,lmtp=P,pid=PID[,host=H][,starttls]")
    ap.add_argument("--user", default="user7")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tls", choices=["1.2", "1.3", "any"], default="any")
    ap.add_argument("--compress", action="store_true", help="COMPRESS=DEFLATE for IMAP")
    ap.add_argument("--ops", default="fetch-body,header-sync,pop3-retr")
    args = ap.parse_args()
    mb = import_mailbench(find_mailbench())
    ctx = tls_context(args.tls)
    targets = [parse_target(s) for s in args.target]
    for t in targets:
        have = fill(t, ctx, args.user, args.count, mb)
        print("%s: INBOX of %s holds %d messages" % (t["name"], args.user, have), file=sys.stderr)
    ops = args.ops.split(",")
    if args.compress:
        for t in list(targets):
            c = connect(t, "imap", ctx)
            c.imap("l1", "LOGIN %s pw" % args.user)
            seen = []
            c.imap("c1", "CAPABILITY", lines=seen)
            c.send(b"q LOGOUT\r\n")
            c.sock.close()
            if not any(b" COMPRESS=DEFLATE" in x for x in seen):
                print("%s: no COMPRESS=DEFLATE, left out" % t["name"], file=sys.stderr)
                targets.remove(t)
    res = {}
    for r in range(args.rounds):
        for op in ops:
            for t in (targets if r % 2 == 0 else targets[::-1]):
                x = run_op(t, ctx, args.user, op, args.compress and op != "pop3-retr")
                res.setdefault((t["name"], op), []).append(x)
                print("round %d %-8s %-11s %s wall %.3f s client %.3f s conn-proc %.3f s "
                      "server %.3f s  %d msgs %.1f MB" % (
                          r + 1, t["name"], op, x["ver"], x["wall"], x["client"], x["conn"],
                          x["server"], x["n"], x["bytes"] / 1e6), file=sys.stderr)
    med = statistics.median
    print("MB: message bytes (literals; POP3: the data, dot-stuffing included); header-sync: "
          "the whole response")
    print("| workload | server | TLS | msgs | MB | wall s | MB/s | client CPU s | conn-proc CPU s "
          "| server CPU s | server CPU ms/MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op in ops:
        for t in targets:
            xs = res[(t["name"], op)]
            wall, srv = med([x["wall"] for x in xs]), med([x["server"] for x in xs])
            mbytes = xs[0]["bytes"] / 1e6
            print("| %s%s | %s | %s | %d | %.1f | %.3f | %.0f | %.3f | %.3f | %.3f | %.2f |" % (
                op, " +deflate" if args.compress and op != "pop3-retr" else "", t["name"],
                xs[0]["ver"] + (" starttls" if t["starttls"] and not t["plain"] else ""), xs[0]["n"], mbytes, wall,
                mbytes / wall if wall else 0, med([x["client"] for x in xs]),
                med([x["conn"] for x in xs]), srv, srv * 1e3 / mbytes if mbytes else 0))


if __name__ == "__main__":
    main()
