"""test_pop3.py: POP3 end to end (RFC 1939, 2449, 5034, 2595): login, the maildrop snapshot,
RETR/TOP byte transparency, DELE/RSET/QUIT, [IN-USE], UIDL stability and \\Seen, with poplib and
raw connections. Messages are put into the INBOX with the pop3-testfill helper (test/helpers/)."""
import base64
import hashlib
import hmac
import os
import poplib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, SharedCofferTestCase, main  # noqa: E402

PASSWORD = "s3cret pass"        # a space: PASS takes the rest of the line

MSG_DOTS = (b"From: a@coffer.test\r\nTo: b@coffer.test\r\nSubject: dots\r\n\r\n"
            b".leading dot\r\n..two dots\r\n.\r\nmiddle\r\n.\r\n\r\nlast line\r\n")
MSG_NO_CRLF = b"From: a@coffer.test\r\nSubject: no final line end\r\n\r\nbody without CRLF"
MSG_PLAIN = (b"From: a@coffer.test\r\nSubject: plain\r\nX-Long: "
             + b"v" * 300 + b"\r\n\r\nline 1\r\nline 2\r\nline 3\r\nline 4\r\n")


def fill(coffer, user, *messages):
    """Append messages (bytes) to user's INBOX; returns their uids."""
    paths = []
    with tempfile.TemporaryDirectory() as d:
        for i, m in enumerate(messages):
            p = os.path.join(d, "m%d" % i)
            with open(p, "wb") as f:
                f.write(m)
            os.chmod(p, 0o644)
            paths.append(p)
        os.chmod(d, 0o755)
        r = subprocess.run([os.path.join(coffer.bindir, "pop3-testfill"), "-C",
                            coffer.conf_path, user] + paths, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=coffer.env())
    if r.returncode != 0:
        raise AssertionError("pop3-testfill failed: %r" % r.stderr)
    return [int(x) for x in r.stdout.split()]


def inbox(coffer, user):
    """{uid: (size, flags)} of user's INBOX from pop3-testfill -l."""
    r = subprocess.run([os.path.join(coffer.bindir, "pop3-testfill"), "-C", coffer.conf_path,
                        "-l", user], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=coffer.env())
    if r.returncode != 0:
        raise AssertionError("pop3-testfill -l failed: %r" % r.stderr)
    out = {}
    for line in r.stdout.decode().splitlines():
        uid, size, flags = line.split()
        out[int(uid)] = (int(size), flags)
    return out


def read_body(conn):
    """Raw multi-line body after a +OK: bytes up to the terminating CRLF.CRLF, unstuffed."""
    data = b""
    while not (data.endswith(b"\r\n.\r\n") or data == b".\r\n"):
        data += conn.readline()
    data = data[:-5] if data != b".\r\n" else b""
    lines = data.split(b"\r\n")
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


def big_dots():
    """Over 64 KiB (past the stream buffer: sent with sendmsg) with hundreds of lines that start
    with "." at every alignment, "." alone, ".." and dots inside lines."""
    lines = [b"From: a@coffer.test", b"Subject: big dots", b""]
    for i in range(3000):
        pad = b"x" * (i % 37)
        if i % 7 == 0:
            lines.append(b"." + pad)
        elif i % 11 == 0:
            lines.append(b".." + pad)
        elif i % 13 == 0:
            lines.append(b".")
        else:
            lines.append(b"line %d " % i + pad + b" a.b.c")
    return b"\r\n".join(lines) + b"\r\n"


def big_clean():
    """Over 64 KiB, no line starting with "." (dots only inside lines)."""
    return (b"From: a@coffer.test\r\nSubject: big clean\r\n\r\n"
            + b"".join(b"line %d %s end.\r\n" % (i, b"y" * (i % 53)) for i in range(4000)))


# edge cases of stuffing: a first byte ".", a last line (without line end) starting with ".",
# bare LF line ends, and a large message without a final line end
WIRE_MSGS = [big_dots(), big_clean(), b".X-Odd: 1\r\n\r\nbody\r\n.end",
             b"Subject: lf\n\n.dot after lf\nplain\n..two\n",
             big_clean() + b".no final line end", MSG_DOTS, MSG_PLAIN, b""]


def wire_form(m):
    """What a multi-line response carries for message bytes m (RFC 1939 section 3): a "."
    before every line starting with ".", a CRLF when m does not end a line, then ".\r\n"."""
    out = b"\n".join(b"." + l if l.startswith(b".") else l for l in m.split(b"\n"))
    if m and not m.endswith(b"\n"):
        out += b"\r\n"
    return out + b".\r\n"


def top_part(m, n):
    """The bytes TOP msg n sends: the header, the blank line and n body lines."""
    pos = 0
    while pos < len(m):
        end = m.find(b"\n", pos)
        end = len(m) if end < 0 else end + 1
        line, pos = m[pos:end], end
        if line in (b"\n", b"\r\n"):
            break
    for _ in range(n):
        if pos >= len(m):
            break
        end = m.find(b"\n", pos)
        pos = len(m) if end < 0 else end + 1
    return m[:pos]


def check_wire(tc, c, msgs):
    """RETR and TOP of every message on the logged-in Conn c, compared byte for byte with the
    wire form computed here; then QUIT."""
    def multiline():
        wire = b""
        while True:
            line = c.readline()
            wire += line
            if line == b".\r\n":
                return wire
    for i, m in enumerate(msgs, 1):
        c.cmd("RETR %d" % i)
        tc.assertEqual(c.readline(), b"+OK %d octets\r\n" % len(m))
        tc.assertEqual(multiline(), wire_form(m), "RETR %d" % i)
        for n in (0, 1, 50, 100000):
            c.cmd("TOP %d %d" % (i, n))
            tc.assertRegex(c.readline(), rb"^\+OK")
            tc.assertEqual(multiline(), wire_form(top_part(m, n)), "TOP %d %d" % (i, n))
    # pipelined: every response follows its command in order, none cut short
    c.send(b"".join(b"RETR %d\r\n" % i for i in range(1, len(msgs) + 1)))
    for i, m in enumerate(msgs, 1):
        tc.assertEqual(c.readline(), b"+OK %d octets\r\n" % len(m))
        tc.assertEqual(multiline(), wire_form(m), "pipelined RETR %d" % i)
    c.cmd("QUIT")
    tc.assertRegex(c.readline(), rb"^\+OK")


class Pop3Test(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"auth_fail_delay": "0"}}
    users = set()

    def user(self, name):
        if name not in self.users:
            self.coffer.add_user(name, PASSWORD)
            self.users.add(name)
        return name

    def login(self, name, service="pop3s"):
        p = self.coffer.pop3(service)
        if service == "pop3":
            p.stls(self.coffer.ssl_context())
        p.user(name)
        p.pass_(PASSWORD)
        return p

    def raw_login(self, name):
        c = self.coffer.connect("pop3s")
        c.readline()
        c.cmd("USER " + name)
        self.assertRegex(c.readline(), rb"^\+OK")
        c.cmd("PASS " + PASSWORD)
        self.assertRegex(c.readline(), rb"^\+OK")
        return c

    # ---- authorization

    def test_plaintext_refused_without_tls(self):
        u = self.user("plainuser")
        with self.coffer.connect("pop3") as c:
            c.readline()
            c.cmd("CAPA")
            c.readline()
            caps = [l.split()[0] for l in c.read_multiline()]
            self.assertNotIn(b"USER", caps)
            c.cmd("USER " + u)
            self.assertRegex(c.readline(), rb"^-ERR \[AUTH\] .*TLS")
            c.cmd("PASS " + PASSWORD)
            self.assertRegex(c.readline(), rb"^-ERR \[AUTH\]")
            c.cmd("AUTH PLAIN " + base64.b64encode(b"\0" + u.encode() + b"\0" +
                                                   PASSWORD.encode()).decode())
            self.assertRegex(c.readline(), rb"^-ERR")
            c.cmd("STLS")
            self.assertRegex(c.readline(), rb"^\+OK")
            c.starttls(self.coffer.ssl_context())
            c.cmd("CAPA")
            c.readline()
            caps = c.read_multiline()
            self.assertIn(b"USER", [l.split()[0] for l in caps])
            self.assertTrue([l for l in caps if l.startswith(b"SASL ") and b"PLAIN" in l], caps)
            c.cmd("USER " + u)
            self.assertRegex(c.readline(), rb"^\+OK")
            c.cmd("PASS " + PASSWORD)
            self.assertRegex(c.readline(), rb"^\+OK")
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")

    def test_login_good_and_bad(self):
        u = self.user("gooduser")
        p = self.coffer.pop3("pop3s")
        p.user(u)
        with self.assertRaisesRegex(poplib.error_proto, r"\[AUTH\] Authentication failed"):
            p.pass_("wrong")
        with self.assertRaisesRegex(poplib.error_proto, "USER first"):
            p.pass_(PASSWORD)
        p.user("nosuchuser")
        with self.assertRaisesRegex(poplib.error_proto, r"\[AUTH\]"):
            p.pass_(PASSWORD)
        p.user(u)
        self.assertTrue(p.pass_(PASSWORD).startswith(b"+OK"))
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.coffer.wait_log(r"event=login_failed .*user=nosuchuser")

    def test_three_failures_close(self):
        with self.coffer.connect("pop3s") as c:
            c.readline()
            for i in range(3):
                c.cmd("USER x%d" % i)
                self.assertRegex(c.readline(), rb"^\+OK")
                c.cmd("PASS bad")
                self.assertRegex(c.readline(), rb"^-ERR \[AUTH\]")
            self.assertTrue(c.wait_eof(5))

    def test_wrong_state_and_bad_input(self):
        with self.coffer.connect("pop3s") as c:
            c.readline()
            for cmd in ("NOOP", "STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1", "RSET"):
                c.cmd(cmd)
                self.assertRegex(c.readline(), rb"^-ERR .*only allowed after login", cmd)
            c.cmd("APOP x 0123456789abcdef0123456789abcdef")
            self.assertRegex(c.readline(), rb"^-ERR APOP is not supported")
            c.cmd("XYZZY")
            self.assertRegex(c.readline(), rb"^-ERR Unknown command")
            c.send(b"USER " + b"x" * 70000 + b"\r\n")
            self.assertRegex(c.readline(), rb"^-ERR Line too long")
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")
        u = self.user("stateuser")
        fill(self.coffer, u, MSG_PLAIN)
        c = self.raw_login(u)
        with c:
            for cmd in ("USER x", "PASS y", "AUTH PLAIN", "STLS"):
                c.cmd(cmd)
                self.assertRegex(c.readline(), rb"^-ERR .*not allowed after login", cmd)
            for cmd, rx in (("RETR", rb"^-ERR RETR needs a message number"),
                            ("RETR 0", rb"^-ERR No such message"),
                            ("RETR 2", rb"^-ERR No such message"),
                            ("RETR x", rb"^-ERR Invalid message number"),
                            ("RETR -1", rb"^-ERR Invalid message number"),
                            ("RETR 99999999999", rb"^-ERR Invalid message number"),
                            ("RETR 1 2", rb"^-ERR Too many arguments"),
                            ("TOP 1", rb"^-ERR TOP needs"),
                            ("TOP 1 x", rb"^-ERR Invalid line count"),
                            ("STAT 1", rb"^-ERR Too many arguments"),
                            ("NOOP", rb"^\+OK")):
                c.cmd(cmd)
                self.assertRegex(c.readline(), rx, cmd)
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")

    def test_capa(self):
        with self.coffer.connect("pop3s") as c:
            c.readline()
            c.cmd("CAPA")
            self.assertRegex(c.readline(), rb"^\+OK")
            caps = c.read_multiline()
            for want in (b"TOP", b"UIDL", b"USER", b"RESP-CODES", b"AUTH-RESP-CODE",
                         b"PIPELINING", b"EXPIRE NEVER", b"LOGIN-DELAY 0",
                         b"IMPLEMENTATION Coffer"):
                self.assertIn(want, caps)
            self.assertFalse([l for l in caps if l == b"STLS"])
            sasl = [l for l in caps if l.startswith(b"SASL ")]
            self.assertEqual(len(sasl), 1, caps)
            self.assertIn(b"PLAIN", sasl[0].split())

    def test_auth_plain(self):
        u = self.user("authuser")
        cred = base64.b64encode(b"\0" + u.encode() + b"\0" + PASSWORD.encode()).decode()
        # initial response (RFC 5034 section 4)
        with self.coffer.connect("pop3s") as c:
            c.readline()
            c.cmd("AUTH PLAIN " + cred)
            self.assertRegex(c.readline(), rb"^\+OK")
            c.cmd("STAT")
            self.assertRegex(c.readline(), rb"^\+OK \d+ \d+")
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")
        # without: empty challenge, then the response
        with self.coffer.connect("pop3s") as c:
            c.readline()
            c.cmd("auth plain")
            self.assertEqual(c.readline(), b"+ \r\n")
            c.cmd(cred)
            self.assertRegex(c.readline(), rb"^\+OK")
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")
        # cancel, bad base64, bad password, unknown mechanism
        with self.coffer.connect("pop3s") as c:
            c.readline()
            c.cmd("AUTH PLAIN")
            self.assertEqual(c.readline(), b"+ \r\n")
            c.cmd("*")
            self.assertRegex(c.readline(), rb"^-ERR Authentication cancelled")
            c.cmd("AUTH PLAIN !!!!")
            self.assertRegex(c.readline(), rb"^-ERR Invalid base64")
            c.cmd("AUTH PLAIN")
            c.readline()
            c.cmd("not base64")
            self.assertRegex(c.readline(), rb"^-ERR Invalid base64")
            c.cmd("AUTH PLAIN " + base64.b64encode(b"\0" + u.encode() + b"\0bad").decode())
            self.assertRegex(c.readline(), rb"^-ERR \[AUTH\] Authentication failed")
            c.cmd("AUTH X-UNKNOWN")
            self.assertRegex(c.readline(), rb"^-ERR Unsupported")
            c.cmd("AUTH")
            self.assertRegex(c.readline(), rb"^\+OK")
            self.assertIn(b"PLAIN", c.read_multiline())
            c.cmd("AUTH PLAIN =")     # an empty initial response: a malformed PLAIN message
            self.assertRegex(c.readline(), rb"^-ERR \[AUTH\] Authentication failed\r")
            c.cmd("AUTH PLAIN " + base64.b64encode(b"\0" + u.encode() + b"\0bad2").decode())
            self.assertRegex(c.readline(), rb"^-ERR \[AUTH\] .*too many failures")
            # that was the third failure (cancel and bad base64 do not count): it ends
            self.assertTrue(c.wait_eof(5))

    def test_auth_scram(self):
        """SCRAM-SHA-256: several steps and server data with the outcome (RFC 5034 section 4:
        sent as a last challenge, answered with an empty line)."""
        u = self.user("scramuser")
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=%s,r=%s" % (u, cnonce)
        with self.coffer.connect("pop3s") as c:
            c.readline()
            c.cmd("AUTH SCRAM-SHA-256 " + base64.b64encode(("n,," + first_bare).encode())
                  .decode())
            line = c.readline()
            self.assertTrue(line.startswith(b"+ "), line)
            server_first = base64.b64decode(line[2:].strip()).decode()
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            self.assertTrue(attrs["r"].startswith(cnonce))
            salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(),
                                         base64.b64decode(attrs["s"]), int(attrs["i"]))
            client_key = hmac.new(salted, b"Client Key", "sha256").digest()
            stored_key = hashlib.sha256(client_key).digest()
            without_proof = "c=biws,r=" + attrs["r"]
            auth_msg = ",".join((first_bare, server_first, without_proof)).encode()
            sig = hmac.new(stored_key, auth_msg, "sha256").digest()
            proof = bytes(a ^ b for a, b in zip(client_key, sig))
            c.cmd(base64.b64encode((without_proof + ",p=" +
                                    base64.b64encode(proof).decode()).encode()).decode())
            line = c.readline()
            self.assertTrue(line.startswith(b"+ "), line)
            server_final = base64.b64decode(line[2:].strip()).decode()
            server_key = hmac.new(salted, b"Server Key", "sha256").digest()
            self.assertEqual(server_final, "v=" + base64.b64encode(
                hmac.new(server_key, auth_msg, "sha256").digest()).decode())
            c.cmd("")
            self.assertRegex(c.readline(), rb"^\+OK Maildrop locked")
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")
        self.coffer.wait_log(r"event=login .*mech=SCRAM-SHA-256")

    def test_pipelining(self):
        u = self.user("pipeuser")
        fill(self.coffer, u, MSG_PLAIN, MSG_PLAIN)
        with self.coffer.connect("pop3s") as c:
            c.readline()
            c.send(("USER %s\r\nPASS %s\r\nSTAT\r\nLIST\r\nUIDL 2\r\nNOOP\r\nQUIT\r\n" %
                    (u, PASSWORD)).encode())
            self.assertRegex(c.readline(), rb"^\+OK")
            self.assertRegex(c.readline(), rb"^\+OK Maildrop locked")
            self.assertEqual(c.readline(), b"+OK 2 %d\r\n" % (2 * len(MSG_PLAIN)))
            self.assertRegex(c.readline(), rb"^\+OK 2 messages")
            self.assertEqual(len(c.read_multiline()), 2)
            self.assertRegex(c.readline(), rb"^\+OK 2 \d+\.\d+\r\n")
            self.assertEqual(c.readline(), b"+OK\r\n")
            self.assertRegex(c.readline(), rb"^\+OK .*0 messages deleted")
            self.assertTrue(c.at_eof(5))

    # ---- the maildrop

    def test_stat_list_uidl(self):
        u = self.user("listuser")
        msgs = [MSG_PLAIN, MSG_DOTS, MSG_NO_CRLF]
        uids = fill(self.coffer, u, *msgs)
        p = self.login(u)
        self.assertEqual(p.stat(), (3, sum(len(m) for m in msgs)))
        resp, lines, _ = p.list()
        self.assertEqual(lines, [b"%d %d" % (i + 1, len(m)) for i, m in enumerate(msgs)])
        self.assertEqual(p.list(2), b"+OK 2 %d" % len(MSG_DOTS))
        resp, ul, _ = p.uidl()
        ids = [l.split()[1] for l in ul]
        self.assertEqual([int(x.split(b".")[1]) for x in ids], uids)
        self.assertEqual(len(set(x.split(b".")[0] for x in ids)), 1)
        self.assertEqual(p.uidl(3), b"+OK 3 " + ids[2])
        p.quit()
        # the same ids in a later session, over STLS this time
        p = self.login(u, "pop3")
        self.assertEqual([l.split()[1] for l in p.uidl()[1]], ids)
        p.quit()

    def test_retr_byte_exact(self):
        u = self.user("retruser")
        msgs = [MSG_PLAIN, MSG_DOTS, MSG_NO_CRLF, b""]
        fill(self.coffer, u, *msgs)
        c = self.raw_login(u)
        with c:
            for i, m in enumerate(msgs, 1):
                c.cmd("RETR %d" % i)
                self.assertEqual(c.readline(), b"+OK %d octets\r\n" % len(m))
                want = m[:-2] if m.endswith(b"\r\n") else m
                self.assertEqual(read_body(c), want, "message %d" % i)
            # the wire form: dot-stuffed
            c.cmd("RETR 2")
            c.readline()
            wire = b""
            while not wire.endswith(b"\r\n.\r\n"):
                wire += c.readline()
            self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\nmiddle\r\n..\r\n", wire)
            c.cmd("QUIT")
            c.readline()
        p = self.login(u)
        for i, m in enumerate(msgs[:2], 1):
            resp, lines, octets = p.retr(i)
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", m)
        p.quit()

    def test_retr_top_wire_tls(self):
        """Lines starting with "." and clean messages, small and over 64 KiB, over TLS."""
        u = self.user("wiretls")
        fill(self.coffer, u, *WIRE_MSGS)
        with self.raw_login(u) as c:
            check_wire(self, c, WIRE_MSGS)

    def test_top(self):
        u = self.user("topuser")
        fill(self.coffer, u, MSG_PLAIN, MSG_NO_CRLF)
        header, body = MSG_PLAIN.split(b"\r\n\r\n", 1)
        p = self.login(u)
        resp, lines, _ = p.top(1, 0)
        self.assertEqual(b"\r\n".join(lines), header + b"\r\n")
        resp, lines, _ = p.top(1, 2)
        self.assertEqual(b"\r\n".join(lines), header + b"\r\n\r\nline 1\r\nline 2")
        resp, lines, _ = p.top(1, 100)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", MSG_PLAIN)
        resp, lines, _ = p.top(2, 5)
        self.assertEqual(b"\r\n".join(lines), MSG_NO_CRLF)
        p.quit()
        self.assertEqual([f for s, f in inbox(self.coffer, u).values()], ["-", "-"],
                         "TOP must not set \\Seen")

    def test_dele_rset_quit(self):
        u = self.user("deleuser")
        uids = fill(self.coffer, u, MSG_PLAIN, MSG_DOTS, MSG_NO_CRLF)
        p = self.login(u)
        self.assertTrue(p.dele(2).startswith(b"+OK"))
        with self.assertRaisesRegex(poplib.error_proto, "already deleted"):
            p.retr(2)
        with self.assertRaisesRegex(poplib.error_proto, "already deleted"):
            p.dele(2)
        self.assertEqual(p.stat(), (2, len(MSG_PLAIN) + len(MSG_NO_CRLF)))
        self.assertEqual([l.split()[0] for l in p.list()[1]], [b"1", b"3"])
        self.assertEqual(len(p.uidl()[1]), 2)
        self.assertTrue(p.rset().startswith(b"+OK Maildrop has 3 messages"))
        self.assertEqual(p.stat()[0], 3)
        p.dele(1)
        p.dele(3)
        self.assertRegex(p.quit(), rb"^\+OK .*\(2 messages deleted\)")
        self.assertEqual(sorted(inbox(self.coffer, u)), [uids[1]])
        p = self.login(u)
        self.assertEqual(p.stat(), (1, len(MSG_DOTS)))
        self.assertEqual(int(p.uidl(1).split(b".")[-1]), uids[1])
        p.quit()

    def test_dele_then_drop_keeps(self):
        u = self.user("dropuser")
        uids = fill(self.coffer, u, MSG_PLAIN, MSG_DOTS)
        c = self.raw_login(u)
        c.cmd("DELE 1")
        self.assertRegex(c.readline(), rb"^\+OK")
        c.cmd("DELE 2")
        self.assertRegex(c.readline(), rb"^\+OK")
        c.close()
        # the maildrop lock goes with the session: wait until a new login gets it
        deadline = time.monotonic() + 10
        while True:
            try:
                p = self.login(u)
                break
            except poplib.error_proto:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.assertEqual(p.stat()[0], 2)
        p.quit()
        self.assertEqual(sorted(inbox(self.coffer, u)), uids)

    def test_in_use(self):
        u = self.user("lockuser")
        fill(self.coffer, u, MSG_PLAIN)
        p1 = self.login(u)
        p2 = self.coffer.pop3("pop3s")
        p2.user(u)
        with self.assertRaisesRegex(poplib.error_proto, r"^b?'?-ERR \[IN-USE\]"):
            p2.pass_(PASSWORD)
        cred = base64.b64encode(b"\0" + u.encode() + b"\0" + PASSWORD.encode())
        p2.sock.sendall(b"AUTH PLAIN " + cred + b"\r\n")
        self.assertRegex(p2._getline()[0], rb"^-ERR \[IN-USE\]")
        p1.quit()
        p2.user(u)
        self.assertTrue(p2.pass_(PASSWORD).startswith(b"+OK"))
        p2.quit()

    def test_delivery_during_session_not_shown(self):
        u = self.user("snapuser")
        fill(self.coffer, u, MSG_PLAIN)
        p = self.login(u)
        new = fill(self.coffer, u, MSG_DOTS)
        self.assertEqual(p.stat(), (1, len(MSG_PLAIN)))
        self.assertEqual(len(p.uidl()[1]), 1)
        with self.assertRaises(poplib.error_proto):
            p.retr(2)
        p.dele(1)
        p.quit()
        self.assertEqual(sorted(inbox(self.coffer, u)), new)
        p = self.login(u)
        self.assertEqual(p.stat(), (1, len(MSG_DOTS)))
        p.quit()

    def test_seen_after_retr(self):
        u = self.user("seenuser")
        uids = fill(self.coffer, u, MSG_PLAIN, MSG_DOTS)
        p = self.login(u)
        p.retr(2)
        p.quit()
        box = inbox(self.coffer, u)
        self.assertEqual(box[uids[0]][1], "-")
        self.assertEqual(box[uids[1]][1], "S")

    def test_imap_sees_pop3_expunge(self):
        """IMAP is not blocked by the POP3 maildrop lock, and a selected IMAP session sees the
        messages DELE'd over POP3 go at QUIT (and nothing before)."""
        u = self.user("imapuser")
        fill(self.coffer, u, MSG_PLAIN, MSG_DOTS, MSG_NO_CRLF)
        p = self.login(u)
        self.addCleanup(p.close)
        m = self.coffer.imap("imaps")
        self.addCleanup(lambda: m.state != "LOGOUT" and m.shutdown())
        try:
            m.login(u, PASSWORD)
            typ, data = m.select("INBOX")
        except m.error as e:
            if "Unknown command" in str(e):
                self.skipTest("imapd has no LOGIN/SELECT yet: %s" % e)
            raise
        self.assertEqual((typ, data), ("OK", [b"3"]))
        p.dele(1)
        p.dele(3)
        m.noop()
        self.assertEqual(m.response("EXPUNGE"), ("EXPUNGE", [None]))
        p.quit()
        typ, data = m.noop()
        # messages 1 and 3 go: "* 1 EXPUNGE" "* 2 EXPUNGE" or "* 3 EXPUNGE" "* 1 EXPUNGE"
        self.assertIn(sorted(int(x) for x in m.response("EXPUNGE")[1]), ([1, 2], [1, 3]),
                      "EXPUNGE responses after POP3 QUIT")
        self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))
        m.logout()

    def test_uidl_stable_across_restart(self):
        u = self.user("restartuser")
        fill(self.coffer, u, MSG_PLAIN, MSG_PLAIN)
        p = self.login(u)
        before = p.uidl()[1]
        p.quit()
        fill(self.coffer, u, MSG_DOTS)
        p = self.login(u)
        after = p.uidl()[1]
        p.quit()
        self.assertEqual(after[:2], before)
        self.assertEqual(len(after), 3)


class Pop3SettingsTest(CofferTestCase):
    def test_fail_delay_and_seen_off(self):
        c = self.new_coffer(global_settings={"auth_fail_delay": "1s",
                                             "pop3_retr_sets_seen": "no",
                                             "allow_plaintext": "yes"})
        c.add_user("delayuser", PASSWORD)
        uids = fill(c, "delayuser", MSG_PLAIN)
        p = c.pop3("pop3")          # plaintext allowed: no STLS needed
        self.assertIn("USER", p.capa())
        p.user("delayuser")
        t0 = time.monotonic()
        with self.assertRaises(poplib.error_proto):
            p.pass_("wrong")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        p.user("delayuser")
        p.pass_(PASSWORD)
        p.retr(1)
        p.quit()
        self.assertEqual(inbox(c, "delayuser")[uids[0]][1], "-")
        c.wait_log(r"event=login_failed .*user=delayuser")

    def test_retr_top_wire_plaintext(self):
        """The same messages over plaintext, where large responses go out with sendmsg."""
        c = self.new_coffer(global_settings={"auth_fail_delay": "0", "allow_plaintext": "yes"})
        c.add_user("wireplain", PASSWORD)
        fill(c, "wireplain", *WIRE_MSGS)
        with c.connect("pop3") as conn:
            self.assertRegex(conn.readline(), rb"^\+OK")
            conn.cmd("USER wireplain")
            self.assertRegex(conn.readline(), rb"^\+OK")
            conn.cmd("PASS " + PASSWORD)
            self.assertRegex(conn.readline(), rb"^\+OK")
            check_wire(self, conn, WIRE_MSGS)

    def test_login_delay(self):
        c = self.new_coffer(global_settings={"auth_fail_delay": "0", "allow_plaintext": "yes",
                                             "pop3_login_delay": "3s"})
        c.add_user("ld", PASSWORD)
        p = c.pop3("pop3")
        self.assertEqual(p.capa().get("LOGIN-DELAY"), ["3"])
        p.user("ld")
        p.pass_(PASSWORD)                       # the first login is never delayed
        p.quit()
        p = c.pop3("pop3")
        p.user("ld")
        with self.assertRaises(poplib.error_proto) as e:
            p.pass_(PASSWORD)
        self.assertIn(b"[LOGIN-DELAY]", e.exception.args[0])
        p.quit()
        time.sleep(3.2)
        p = c.pop3("pop3")
        p.user("ld")
        p.pass_(PASSWORD)
        p.quit()

    def test_restart_keeps_uidl(self):
        c = self.new_coffer(global_settings={"auth_fail_delay": "0"})
        c.add_user("u1", PASSWORD)
        fill(c, "u1", MSG_PLAIN, MSG_DOTS)
        p = c.pop3("pop3s")
        p.user("u1")
        p.pass_(PASSWORD)
        before = p.uidl()[1]
        p.quit()
        c.stop()
        c.start()
        p = c.pop3("pop3s")
        p.user("u1")
        p.pass_(PASSWORD)
        self.assertEqual(p.uidl()[1], before)
        p.quit()


FETCHMAIL = shutil.which("fetchmail")


@unittest.skipUnless(FETCHMAIL, "fetchmail is not installed (apt-get install fetchmail)")
class FetchmailTest(CofferTestCase):
    """A real POP3 client: fetchmail over implicit TLS and over STLS, into an MDA that writes
    one file per message, deleting from the server as it goes."""

    def run_fetchmail(self, c, service, ssl_lines):
        home = tempfile.mkdtemp(prefix="fetchmail-")
        self.addCleanup(shutil.rmtree, home, True)
        out = os.path.join(home, "out")
        os.mkdir(out)
        mda = os.path.join(home, "save.sh")
        with open(mda, "w") as f:
            f.write("#!/bin/sh\ncat > %s/m.$$\n" % out)
        os.chmod(mda, 0o755)
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no bouncemail\n'
                    'poll 127.0.0.1 service %d protocol POP3 auth password\n'
                    '  user "fmuser" there with password "%s" is "x" here\n'
                    '  %s\n  sslcertck sslcertfile "%s" sslcommonname localhost\n'
                    '  mda "%s"\n  fetchall\n' % (c.ports[service], PASSWORD, ssl_lines,
                                                    c.cert, mda))
        os.chmod(rc, 0o600)
        env = dict(os.environ, FETCHMAILHOME=home, HOME=home)
        r = subprocess.run([FETCHMAIL, "-f", rc, "--nosyslog", "-N", "-v"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode(errors="replace"))
        got = []
        for n in os.listdir(out):
            with open(os.path.join(out, n), "rb") as f:
                got.append(f.read())
        return got, r.stdout.decode(errors="replace")

    def test_fetchmail(self):
        c = self.new_coffer(global_settings={"auth_fail_delay": "0"})
        c.add_user("fmuser", PASSWORD)
        for service, ssl_lines in (("pop3s", "ssl"), ("pop3", "sslproto 'tls1.2+'")):
            with self.subTest(service=service):
                msgs = [MSG_PLAIN, MSG_DOTS]
                fill(c, "fmuser", *msgs)
                got, log = self.run_fetchmail(c, service, ssl_lines)
                self.assertEqual(len(got), 2, log)
                if service == "pop3":
                    self.assertIn("STLS", log)
                # fetchmail hands the MDA LF line ends and adds a Received: header on top
                for m in msgs:
                    want = m.replace(b"\r\n", b"\n").split(b"\n", 1)[1]
                    self.assertTrue([g for g in got if g.endswith(want)],
                                    "message %r not delivered intact: %r" % (m[:40], got))
                self.assertEqual(inbox(c, "fmuser"), {}, "fetchmail deletes what it fetched")


if __name__ == "__main__":
    main()
