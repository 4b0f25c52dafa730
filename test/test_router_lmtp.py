"""test_router_lmtp.py: lmtproute, the router's LMTP entry (man/lmtproute.8), in front of two
real Coffer backends: a transaction split over both backends with one reply per recipient in
RCPT order, an unknown user, a user being moved (4xx, stored nowhere), a backend that is down
(4xx for its recipients, 250 for the other's), a pipelined client, oversized messages, and
kill -9 of the backend's lmtpd in the middle of the relayed DATA (4xx, nothing stored; the
retry is stored once), a backend that never greets (4xx after the connect timeout). Mail is checked on each backend over IMAP."""
import imaplib
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (HOST, Coffer, Conn, SharedCofferTestCase, tcp_sockets,  # noqa: E402
                            free_port, main, run_coffer, socket_inodes_of, wait_for)

BACKEND_SERVICES = [("imap", "imapd", "none", False), ("lmtp", "lmtpd", "none", False)]
ROUTER_MAX = 4 * 1024 * 1024            # the router's max_literal (the backends keep 64M)
USERS = {"alice": "b1", "carol": "b1", "bob": "b2", "frank": "b2", "dave": "b2", "erin": "down",
         "ghost": "b1",         # ghost: routed, but no user on b1
         "gina": "stall"}       # gina: a backend that takes the connection and never speaks


def established_inodes(port):
    """Socket inodes of established TCP connections whose local port is port."""
    return {inode for local, _remote, state, inode in tcp_sockets() if local == port and state == "01"}


def spool_size(pid):
    """Bytes in lmtpd's spool of the message being received (an unlinked file in
    configdir/tmp, cmd-data.c), seen through /proc/PID/fd; 0 when it has none."""
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return 0
    for n in names:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, n))
            if "/tmp/lmtp." in link and link.endswith("(deleted)"):
                return os.stat("/proc/%d/fd/%s" % (pid, n)).st_size
        except OSError:
            continue
    return 0


class RouterLmtpTest(SharedCofferTestCase):
    @classmethod
    def setUpClass(cls):
        cls._any_failed = False
        cls.backs = {}
        cls.coffer = None
        try:
            for name in ("b1", "b2"):
                cls.backs[name] = Coffer(services=BACKEND_SERVICES,
                                         global_settings={"allow_plaintext": "yes"})
                cls.backs[name].start()
            cls.coffer = c = Coffer(services=[("lmtp", "lmtproute", "none", False)],
                                    global_settings={"max_literal": str(ROUTER_MAX),
                                                     "router_lmtp_timeout": "20s",
                                                     "router_lmtp_connect_timeout": "5s"})
            cls.down_port = free_port()     # nothing listens there
            c.extra_config = "".join(
                "\n[backend %s]\nimap = 127.0.0.1:%d\nlmtp = 127.0.0.1:%d\n"
                % (n, b.ports["imap"], b.ports["lmtp"]) for n, b in cls.backs.items())
            c.extra_config += "\n[backend down]\nlmtp = 127.0.0.1:%d\n" % cls.down_port
            cls.stall = socket.socket()
            cls.stall.bind((HOST, 0))
            cls.stall.listen(16)            # the kernel accepts; nobody greets
            c.extra_config += "\n[backend stall]\nlmtp = 127.0.0.1:%d\n" % cls.stall.getsockname()[1]
            c.write_config()
            c.start()
            for u, b in USERS.items():
                if b in cls.backs and u != "ghost":
                    cls.backs[b].add_user(u, "pw")
            routes = "".join("%s %s\n" % (u, b) for u, b in USERS.items() if u != "dave")
            rc, out, err = run_coffer(c, "route", "import", input=routes.encode())
            assert rc == 0, err
            rc, out, err = run_coffer(c, "route", "set", "dave", "b2", "--moving")
            assert rc == 0, err
        except BaseException:
            cls._close_all()
            raise

    @classmethod
    def _close_all(cls):
        if getattr(cls, "stall", None) is not None:
            cls.stall.close()
        for c in [cls.coffer] + list(cls.backs.values()):
            if c is not None:
                c.close()

    @classmethod
    def tearDownClass(cls):
        cls.stall.close()
        reports = []
        for c in list(cls.backs.values()):
            c.close()
            reports += c.final_sanitizer_reports
            if cls._any_failed:
                sys.stderr.write("\n---- backend %s ----\n%s\n" % (c.log_path, c.final_log_tail))
        super().tearDownClass()
        if reports:
            raise AssertionError("sanitizer reports in a backend log:\n" + "\n".join(reports))

    # ---- helpers

    def lmtp(self):
        conn = Conn(socket.create_connection((HOST, self.coffer.ports["lmtp"]), timeout=30))
        self.addCleanup(conn.close)
        code, _ = conn.read_smtp_reply()
        self.assertEqual(code, 220)
        conn.cmd("LHLO test.example")
        code, lines = conn.read_smtp_reply()
        self.assertEqual(code, 250)
        for ext in (b"PIPELINING", b"ENHANCEDSTATUSCODES", b"8BITMIME", b"SIZE %d" % ROUTER_MAX):
            self.assertIn(ext, lines)
        return conn

    def ask(self, conn, line):
        conn.cmd(line)
        code, lines = conn.read_smtp_reply()
        return code, b" ".join(lines).decode()

    def messages(self, user):
        """The bodies of user's INBOX messages on its backend (IMAP)."""
        b = self.backs[USERS[user]]
        im = imaplib.IMAP4(HOST, b.ports["imap"], timeout=30)
        try:
            im.login(user, "pw")
            typ, data = im.select("INBOX", readonly=True)
            n = int(data[0])
            out = []
            for i in range(1, n + 1):
                typ, d = im.fetch(str(i), "(BODY.PEEK[])")
                out.append(d[0][1])
            return out
        finally:
            im.logout()

    def message(self, tag, size=0):
        body = "From: s@example.org\r\nSubject: %s\r\n\r\n.dot-line %s\r\n" % (tag, tag)
        line = "x" * 76 + "\r\n"
        body += line * (size // len(line))
        return body

    def send_data(self, conn, text):
        conn.cmd("DATA")
        code, _ = conn.read_smtp_reply()
        self.assertEqual(code, 354)
        stuffed = "".join(("." + l if l.startswith(".") else l)
                          for l in text.splitlines(keepends=True))
        conn.send(stuffed.encode() + b".\r\n")

    def count_tag(self, user, tag):
        return sum(1 for m in self.messages(user) if ("Subject: %s\r\n" % tag).encode() in m)

    # ---- tests

    def test_split_over_backends(self):
        c = self.lmtp()
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org> SIZE=300 BODY=8BITMIME")[0], 250)
        rcpts = ["alice@example.org", "bob@example.org", "carol+folder@example.org"]
        for r in rcpts:
            self.assertEqual(self.ask(c, "RCPT TO:<%s>" % r)[0], 250, r)
        self.send_data(c, self.message("split"))
        for r in rcpts:
            code, text = c.read_smtp_reply()
            self.assertEqual(code, 250)
            self.assertIn(("<%s>" % r).encode(), text[0], text)
        for u in ("alice", "bob", "carol"):
            msgs = [m for m in self.messages(u) if b"Subject: split" in m]
            self.assertEqual(len(msgs), 1, u)
            self.assertIn(b"(Coffer lmtproute) with LMTP", msgs[0])
            self.assertIn(b"\r\n.dot-line split\r\n", msgs[0])    # dot-stuffing undone once
        self.assertTrue(self.backs["b1"].log_grep(r"user=alice"))
        self.assertFalse(self.backs["b2"].log_grep(r"user=alice"))
        self.assertFalse(self.backs["b1"].log_grep(r"user=bob"))
        # one line per recipient routed, with the session id
        lines = self.coffer.log_grep(r"event=rcpt_routed .*backend=b2")
        self.assertTrue(any("session=" in l and "user=bob" in l for l in lines), lines)
        # the connections are kept: a second transaction on the same session
        self.assertEqual(self.ask(c, "MAIL FROM:<>")[0], 250)
        self.assertEqual(self.ask(c, "RCPT TO:<bob@example.org>")[0], 250)
        self.send_data(c, self.message("second"))
        self.assertEqual(c.read_smtp_reply()[0], 250)
        self.assertEqual(self.count_tag("bob", "second"), 1)

    def test_unknown_user(self):
        c = self.lmtp()
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
        code, text = self.ask(c, "RCPT TO:<nobody@example.org>")
        self.assertEqual(code, 550)
        self.assertIn("5.1.1", text)
        self.assertEqual(self.ask(c, "RCPT TO:<bad name@example.org>")[0], 550)
        # routed, but the backend does not know the user: the backend's own refusal
        code, text = self.ask(c, "RCPT TO:<ghost@example.org>")
        self.assertEqual(code, 550)
        self.assertIn("<ghost@example.org> User unknown", text)
        self.assertTrue(self.coffer.log_grep(r"event=rcpt_routed .*backend=b1 code=550"))
        self.assertEqual(self.ask(c, "DATA")[0], 503)    # no valid recipients
        self.assertEqual(self.ask(c, "RSET")[0], 250)
        self.assertEqual(self.ask(c, "HELO x")[0], 500)
        self.assertEqual(self.ask(c, "RCPT TO:<alice@example.org>")[0], 503)   # no MAIL

    def test_moving_user_deferred(self):
        c = self.lmtp()
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
        code, text = self.ask(c, "RCPT TO:<dave@example.org>")
        self.assertEqual(code, 451)
        self.assertIn("4.2.0", text)
        self.assertEqual(self.ask(c, "RCPT TO:<alice@example.org>")[0], 250)
        self.send_data(c, self.message("moving"))
        code, text = c.read_smtp_reply()                  # alice's only
        self.assertEqual(code, 250)
        self.assertIn(b"<alice@example.org>", text[0])
        self.assertEqual(self.ask(c, "NOOP")[0], 250)
        self.assertEqual(self.count_tag("dave", "moving"), 0)
        self.assertEqual(self.count_tag("alice", "moving"), 1)
        self.assertTrue(self.coffer.log_grep(r"event=rcpt_moving .*backend=b2"))

    def test_backend_down(self):
        c = self.lmtp()
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
        code, text = self.ask(c, "RCPT TO:<erin@example.org>")
        self.assertEqual(code, 451)
        self.assertIn("4.4.1", text)
        self.assertEqual(self.ask(c, "RCPT TO:<bob@example.org>")[0], 250)
        self.send_data(c, self.message("down"))
        code, text = c.read_smtp_reply()
        self.assertEqual(code, 250)
        self.assertIn(b"<bob@example.org>", text[0])
        self.assertEqual(self.count_tag("bob", "down"), 1)
        self.assertTrue(self.coffer.log_grep(r"event=backend_unavailable .*backend=down"))

    def test_backend_silent_times_out(self):
        c = self.lmtp()
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
        t0 = time.monotonic()
        code, text = self.ask(c, "RCPT TO:<gina@example.org>")
        waited = time.monotonic() - t0
        self.assertEqual(code, 451)
        self.assertIn("4.4.1", text)
        self.assertGreater(waited, 4)           # router_lmtp_connect_timeout = 5s
        self.assertLess(waited, 15)
        self.assertEqual(self.ask(c, "RCPT TO:<bob@example.org>")[0], 250)
        self.send_data(c, self.message("silent"))
        self.assertEqual(c.read_smtp_reply()[0], 250)
        self.assertEqual(self.count_tag("bob", "silent"), 1)
        self.assertTrue(self.coffer.log_grep(r"event=backend_unavailable .*backend=stall"))

    def test_pipelined(self):
        c = Conn(socket.create_connection((HOST, self.coffer.ports["lmtp"]), timeout=30))
        self.addCleanup(c.close)
        msg = self.message("pipelined")
        c.send(("LHLO p.example\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                "RCPT TO:<nobody@example.org>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
                + msg + ".\r\nNOOP\r\nQUIT\r\n").encode())
        codes = [c.read_smtp_reply() for _ in range(10)]
        self.assertEqual([x[0] for x in codes], [220, 250, 250, 250, 550, 250, 354, 250, 250, 250])
        self.assertIn(b"<bob@example.org>", codes[7][1][0])
        self.assertIn(b"<alice@example.org>", codes[8][1][0])
        self.assertEqual(c.read_smtp_reply()[0], 221)
        self.assertEqual(self.count_tag("bob", "pipelined"), 1)
        self.assertEqual(self.count_tag("alice", "pipelined"), 1)

    def test_empty_message(self):
        # the 354 reply counts as the CRLF before the dot: ".\r\n" at once ends the data
        c = self.lmtp()
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(self.ask(c, "RCPT TO:<carol@example.org>")[0], 250)
        c.cmd("DATA")
        self.assertEqual(c.read_smtp_reply()[0], 354)
        c.send(b".\r\n")
        code, text = c.read_smtp_reply()
        self.assertEqual(code, 250, text)
        self.assertIn(b"<carol@example.org>", text[0])

    def test_bare_lf_dot_relayed_as_data(self):
        # a lone dot next to a bare LF is data for the router (as for lmtpd), and it must reach
        # the backend stuffed, not as the end of the message (SMTP smuggling)
        c = self.lmtp()
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(self.ask(c, "RCPT TO:<carol@example.org>")[0], 250)
        c.cmd("DATA")
        self.assertEqual(c.read_smtp_reply()[0], 354)
        c.send(b"Subject: smuggle\r\n\r\nbody\n.\nMAIL FROM:<smuggled@x>\r\n.\r\n")
        self.assertEqual(c.read_smtp_reply()[0], 250)
        self.assertEqual(self.ask(c, "NOOP")[0], 250)
        hit = [m for m in self.messages("carol") if b"Subject: smuggle" in m]
        self.assertEqual(len(hit), 1)
        self.assertIn(b"body\r\n.\r\nMAIL FROM:<smuggled@x>\r\n", hit[0])

    def test_oversized(self):
        c = self.lmtp()
        code, text = self.ask(c, "MAIL FROM:<s@example.org> SIZE=%d" % (ROUTER_MAX + 1))
        self.assertEqual(code, 552)
        self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
        self.assertEqual(self.ask(c, "RCPT TO:<alice@example.org>")[0], 250)
        self.assertEqual(self.ask(c, "RCPT TO:<bob@example.org>")[0], 250)
        self.send_data(c, self.message("oversized", ROUTER_MAX + 1000))
        for r in ("alice", "bob"):
            code, text = c.read_smtp_reply(timeout=60)
            self.assertEqual(code, 552)
            self.assertIn(b"5.3.4", text[0])
        self.assertEqual(self.ask(c, "RCPT TO:<alice@example.org>")[0], 503)  # ended
        self.assertEqual(self.count_tag("alice", "oversized"), 0)
        self.assertEqual(self.count_tag("bob", "oversized"), 0)

    def backend_worker(self, name):
        """The backend's lmtpd worker that holds a connection (the router's)."""
        b = self.backs[name]
        inodes = established_inodes(b.ports["lmtp"])
        for w in b.workers(service="lmtp"):
            if socket_inodes_of(w.pid) & inodes:
                return w
        return None

    def test_kill_backend_mid_data(self):
        size = 3 * 1024 * 1024
        for attempt in range(3):
            c = self.lmtp()
            tag = "killed%d" % attempt
            self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
            self.assertEqual(self.ask(c, "RCPT TO:<alice@example.org>")[0], 250)
            self.assertEqual(self.ask(c, "RCPT TO:<frank@example.org>")[0], 250)
            w = wait_for(lambda: self.backend_worker("b2"), 10, 0.05, "b2's lmtpd worker")
            self.send_data(c, self.message(tag, size))
            # stop it once it has spooled a part of the message, and only then kill it: the
            # relayed DATA is then certainly cut in the middle
            deadline = time.monotonic() + 60
            while spool_size(w.pid) < 256 * 1024 and time.monotonic() < deadline:
                time.sleep(0.001)
            os.kill(w.pid, signal.SIGSTOP)
            got = spool_size(w.pid)
            mid = 0 < got < size
            os.kill(w.pid, signal.SIGKILL)
            replies = [c.read_smtp_reply(timeout=60) for _ in range(2)]
            if not mid:
                continue                # the whole message got through first: try again
            self.assertEqual(replies[0][0], 250, replies)             # alice, on b1
            self.assertIn(b"<alice@example.org>", replies[0][1][0])
            self.assertEqual(replies[1][0], 451, replies)             # frank, on b2
            self.assertIn(b"<frank@example.org>", replies[1][1][0])
            self.assertEqual(self.count_tag("frank", tag), 0)
            self.assertEqual(self.count_tag("alice", tag), 1)
            # the MTA's retry for frank: a new backend worker, stored once
            wait_for(lambda: self.backs["b2"].workers(service="lmtp"), 20, 0.1, "respawn")
            self.assertEqual(self.ask(c, "MAIL FROM:<s@example.org>")[0], 250)
            self.assertEqual(self.ask(c, "RCPT TO:<frank@example.org>")[0], 250)
            self.send_data(c, self.message(tag, size))
            self.assertEqual(c.read_smtp_reply(timeout=60)[0], 250)
            self.assertEqual(self.count_tag("frank", tag), 1)
            return
        self.fail("the relayed message was never caught in the middle")


if __name__ == "__main__":
    main()
