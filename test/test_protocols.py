"""test_protocols.py: greetings, capabilities, STARTTLS/STLS, NOOP, logout, unknown commands,
overlong lines and IMAP literals on every imapd, pop3d and lmtpd port of a real cofferd."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import HOSTNAME, SharedCofferTestCase, main  # noqa: E402

LONG = 100 * 1024       # longer than the default max_line (64K)


def imap_caps(lines):
    """Capabilities from `* CAPABILITY ...` untagged lines (upper-cased)."""
    for l in lines:
        m = re.match(rb"\* CAPABILITY (.*?)\r?\n?$", l, re.I)
        if m:
            return [c.upper() for c in m.group(1).decode().split()]
    return None


class Greetings(SharedCofferTestCase):

    def test_imap_greeting_and_capability(self):
        for svc in ("imap", "imaps"):
            with self.subTest(service=svc), self.coffer.connect(svc) as c:
                g = c.readline()
                self.assertRegex(g, rb"^\* OK \[CAPABILITY [^\]]*IMAP4(rev1|rev2)[^\]]*\] .*\r\n$")
                greet_caps = g.split(b"[CAPABILITY ", 1)[1].split(b"]")[0].decode().upper().split()
                tagged, untagged = c.imap("a1", "CAPABILITY")
                self.assertRegex(tagged, rb"^a1 OK")
                caps = imap_caps(untagged)
                self.assertIsNotNone(caps, untagged)
                self.assertIn("IMAP4REV1", caps)
                if svc == "imap":
                    self.assertIn("STARTTLS", caps)
                    self.assertIn("STARTTLS", greet_caps)
                else:
                    self.assertNotIn("STARTTLS", caps, "implicit TLS port offers STARTTLS")
                    self.assertNotIn("STARTTLS", greet_caps)
                tagged, untagged = c.imap("a2", "LOGOUT")
                self.assertRegex(tagged, rb"^a2 OK")
                self.assertTrue(any(l.startswith(b"* BYE") for l in untagged), untagged)
                self.assertTrue(c.at_eof(5), "server kept the connection open after LOGOUT")

    def test_imaplib_clients(self):
        for svc in ("imap", "imaps"):
            with self.subTest(service=svc):
                m = self.coffer.imap(svc)
                self.assertIn("IMAP4REV1", m.capabilities)
                typ, _ = m.noop()
                self.assertEqual(typ, "OK")
                typ, _ = m.logout()
                self.assertEqual(typ, "BYE")

    def test_pop3_greeting_and_capa(self):
        for svc in ("pop3", "pop3s"):
            with self.subTest(service=svc), self.coffer.connect(svc) as c:
                self.assertRegex(c.readline(), rb"^\+OK .*\r\n$")
                c.cmd("CAPA")
                self.assertRegex(c.readline(), rb"^\+OK")
                caps = [l.split()[0].upper() for l in c.read_multiline() if l.strip()]
                self.assertTrue(caps, "empty CAPA list")
                if svc == "pop3":
                    self.assertIn(b"STLS", caps)
                else:
                    self.assertNotIn(b"STLS", caps)
                c.cmd("QUIT")
                self.assertRegex(c.readline(), rb"^\+OK")
                self.assertTrue(c.at_eof(5))

    def test_poplib_clients(self):
        for svc in ("pop3", "pop3s"):
            with self.subTest(service=svc):
                p = self.coffer.pop3(svc)
                self.assertTrue(p.getwelcome().startswith(b"+OK"))
                caps = p.capa()
                self.assertEqual("STLS" in caps, svc == "pop3", caps)
                self.assertTrue(p.quit().startswith(b"+OK"))

    def test_lmtp_greeting_and_lhlo(self):
        for svc in ("lmtp", "lmtpunix"):
            with self.subTest(service=svc), self.coffer.connect(svc) as c:
                g = c.readline()
                self.assertRegex(g, rb"^220 ")
                self.assertIn(HOSTNAME.encode(), g)
                self.assertIn(b"LMTP", g)
                c.cmd("LHLO client.test")
                code, lines = c.read_smtp_reply()
                self.assertEqual(code, 250, lines)
                exts = [l.split()[0].upper() for l in lines[1:] if l.strip()]
                self.assertIn(b"PIPELINING", exts)
                self.assertIn(b"ENHANCEDSTATUSCODES", exts)
                if svc == "lmtp":
                    self.assertIn(b"STARTTLS", exts)
                else:
                    self.assertNotIn(b"STARTTLS", exts, "tls = none service offers STARTTLS")
                c.cmd("QUIT")
                code, _ = c.read_smtp_reply()
                self.assertEqual(code, 221)
                self.assertTrue(c.at_eof(5))

    def test_smtplib_lmtp_clients(self):
        for svc in ("lmtp", "lmtpunix"):
            with self.subTest(service=svc):
                l = self.coffer.lmtp(svc)
                code, _ = l.ehlo("client.test")     # LMTP sends LHLO
                self.assertEqual(code, 250)
                self.assertEqual(l.has_extn("starttls"), svc == "lmtp")
                self.assertEqual(l.noop()[0], 250)
                self.assertEqual(l.quit()[0], 221)


class StartTLS(SharedCofferTestCase):

    def test_imap_starttls(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            tagged, _ = c.imap("s1", "STARTTLS")
            self.assertRegex(tagged, rb"^s1 OK")
            c.starttls(self.coffer.ssl_context())
            tagged, untagged = c.imap("s2", "CAPABILITY")
            self.assertRegex(tagged, rb"^s2 OK")
            caps = imap_caps(untagged)
            self.assertIsNotNone(caps, untagged)
            self.assertNotIn("STARTTLS", caps)
            self.assertRegex(c.imap("s3", "NOOP")[0], rb"^s3 OK")
            # a second STARTTLS inside TLS is refused
            self.assertRegex(c.imap("s4", "STARTTLS")[0], rb"^s4 (BAD|NO)")
            self.assertRegex(c.imap("s5", "LOGOUT")[0], rb"^s5 OK")

    def test_imaplib_starttls(self):
        m = self.coffer.imap("imap")
        typ, _ = m.starttls(self.coffer.ssl_context())
        self.assertEqual(typ, "OK")
        self.assertNotIn("STARTTLS", m.capabilities)
        self.assertEqual(m.noop()[0], "OK")
        m.logout()

    def test_imap_pipelined_plaintext_discarded(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            c.send(b"s1 STARTTLS\r\ns2 NOOP\r\n")
            tagged, _ = c.read_tagged("s1")
            self.assertRegex(tagged, rb"^s1 OK")
            c.starttls(self.coffer.ssl_context())
            tagged, untagged = c.imap("s3", "NOOP")
            self.assertRegex(tagged, rb"^s3 OK")
            self.assertFalse([l for l in untagged if l.startswith(b"s2 ")],
                             "plaintext pipelined after STARTTLS was executed: %r" % untagged)
            tagged, untagged = c.imap("s4", "LOGOUT")
            self.assertFalse([l for l in untagged if l.startswith(b"s2 ")], untagged)

    def test_pop3_stls(self):
        with self.coffer.connect("pop3") as c:
            c.readline()
            c.cmd("STLS")
            self.assertRegex(c.readline(), rb"^\+OK")
            c.starttls(self.coffer.ssl_context())
            c.cmd("CAPA")
            self.assertRegex(c.readline(), rb"^\+OK")
            caps = [l.split()[0].upper() for l in c.read_multiline() if l.strip()]
            self.assertNotIn(b"STLS", caps)
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")

    def test_poplib_stls(self):
        p = self.coffer.pop3("pop3")
        self.assertTrue(p.stls(self.coffer.ssl_context()).startswith(b"+OK"))
        self.assertNotIn("STLS", p.capa())
        p.quit()

    def test_pop3_pipelined_plaintext_discarded(self):
        with self.coffer.connect("pop3") as c:
            c.readline()
            c.send(b"STLS\r\nXYZZY\r\n")
            self.assertRegex(c.readline(), rb"^\+OK")
            c.starttls(self.coffer.ssl_context())
            c.cmd("CAPA")
            first = c.readline()
            self.assertRegex(first, rb"^\+OK", "reply to plaintext pipelined after STLS?")
            caps = c.read_multiline()
            self.assertFalse([l for l in caps if l.startswith((b"+OK", b"-ERR"))], caps)
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")

    def test_lmtp_starttls(self):
        with self.coffer.connect("lmtp") as c:
            c.readline()
            c.cmd("LHLO client.test")
            self.assertEqual(c.read_smtp_reply()[0], 250)
            c.send(b"STARTTLS\r\nXYZZY\r\n")            # the XYZZY must be thrown away
            code, text = c.read_smtp_reply()
            self.assertEqual(code, 220, text)
            c.starttls(self.coffer.ssl_context())
            c.cmd("NOOP")
            code, text = c.read_smtp_reply()
            self.assertEqual(code, 250, "reply to plaintext pipelined after STARTTLS? %r" % text)
            c.cmd("LHLO client.test")
            code, lines = c.read_smtp_reply()
            self.assertEqual(code, 250)
            exts = [l.split()[0].upper() for l in lines[1:] if l.strip()]
            self.assertNotIn(b"STARTTLS", exts)
            c.cmd("QUIT")
            self.assertEqual(c.read_smtp_reply()[0], 221)

    def test_smtplib_lmtp_starttls(self):
        l = self.coffer.lmtp("lmtp")
        l.ehlo("client.test")
        self.assertEqual(l.starttls(context=self.coffer.ssl_context())[0], 220)
        l.ehlo("client.test")
        self.assertFalse(l.has_extn("starttls"))
        self.assertEqual(l.noop()[0], 250)
        l.quit()


class Commands(SharedCofferTestCase):

    def test_imap_noop_unknown_and_case(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            self.assertRegex(c.imap("a1", "NOOP")[0], rb"^a1 OK")
            self.assertRegex(c.imap("a2", "noop")[0], rb"^a2 OK")      # names are case-blind
            self.assertRegex(c.imap("a3", "XYZZY")[0], rb"^a3 BAD")
            self.assertRegex(c.imap("a4", "NOOP extra")[0], rb"^a4 BAD")
            c.cmd("")                                                   # empty line
            c.cmd("a5 NOOP")
            tagged, untagged = c.read_tagged("a5")
            self.assertRegex(tagged, rb"^a5 OK")
            self.assertTrue(all(l.startswith(b"* BAD") for l in untagged), untagged)
            self.assertRegex(c.imap("a6", "LOGOUT")[0], rb"^a6 OK")

    def test_imap_overlong_line(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            c.send(b"a1 NOOP " + b"x" * LONG + b"\r\n")
            line = c.expect(rb"^(\*|a1) BAD", timeout=20).string
            self.assertRegex(line, rb"BAD")
            self.assertRegex(c.imap("a2", "NOOP")[0], rb"^a2 OK")
            self.assertRegex(c.imap("a3", "LOGOUT")[0], rb"^a3 OK")

    def test_imap_pipelined_commands(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            c.send(b"p1 NOOP\r\np2 CAPABILITY\r\np3 NOOP\r\n")
            self.assertRegex(c.read_tagged("p1")[0], rb"^p1 OK")
            self.assertRegex(c.read_tagged("p2")[0], rb"^p2 OK")
            self.assertRegex(c.read_tagged("p3")[0], rb"^p3 OK")

    def test_imap_synchronizing_literal(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            c.cmd("a1 NOOP {3}")
            self.assertRegex(c.readline(), rb"^\+ ", "no continuation request for {3}")
            c.cmd("abc")
            tagged, untagged = c.read_tagged("a1")
            # NOOP takes no arguments, so BAD is right; OK would also be acceptable. What
            # matters is that "abc" was taken as the literal, not as a command line.
            self.assertRegex(tagged, rb"^a1 (OK|BAD)")
            self.assertFalse([l for l in untagged if l.startswith(b"abc")], untagged)
            self.assertRegex(c.imap("a2", "NOOP")[0], rb"^a2 OK")

    def test_imap_literal_plus(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            caps = imap_caps(c.imap("c1", "CAPABILITY")[1])
            self.assertTrue("LITERAL+" in caps or "LITERAL-" in caps, caps)
            c.send(b"a1 NOOP {3+}\r\nabc\r\na2 NOOP\r\n")
            tagged, untagged = c.read_tagged("a1")
            self.assertRegex(tagged, rb"^a1 (OK|BAD)")
            self.assertFalse([l for l in untagged if l.startswith(b"+ ")],
                             "continuation sent for a non-synchronizing literal")
            tagged, untagged = c.read_tagged("a2")
            self.assertRegex(tagged, rb"^a2 OK")
            self.assertFalse([l for l in untagged if l.startswith(b"+ ")], untagged)

    def test_imap_bad_literal_sizes(self):
        with self.coffer.connect("imap") as c:
            c.readline()
            for i, lit in enumerate([b"{99999999999999999999999}", b"{-1}", b"{12a}",
                                     b"{999999999999}"]):
                tag = "b%d" % i
                c.send(tag.encode() + b" NOOP " + lit + b"\r\n")
                line = c.readline()
                self.assertRegex(line, (r"^%s (BAD|NO)" % tag).encode(),
                                 "literal %r got %r" % (lit, line))
                self.assertRegex(c.imap("n%d" % i, "NOOP")[0], ("^n%d OK" % i).encode())

    def test_pop3_commands(self):
        with self.coffer.connect("pop3") as c:
            c.readline()
            c.cmd("NOOP")   # RFC 1939: NOOP is a TRANSACTION-state command; before login -ERR
            self.assertRegex(c.readline(), rb"^(\+OK|-ERR)")
            c.cmd("XYZZY")
            self.assertRegex(c.readline(), rb"^-ERR")
            c.cmd("capa")
            self.assertRegex(c.readline(), rb"^\+OK")
            c.read_multiline()
            c.send(b"NOOP " + b"x" * LONG + b"\r\n")
            self.assertRegex(c.readline(20), rb"^-ERR")
            c.cmd("CAPA")
            self.assertRegex(c.readline(), rb"^\+OK")
            c.read_multiline()
            c.cmd("QUIT")
            self.assertRegex(c.readline(), rb"^\+OK")
            self.assertTrue(c.at_eof(5))

    def test_lmtp_commands(self):
        for svc in ("lmtp", "lmtpunix"):
            with self.subTest(service=svc), self.coffer.connect(svc) as c:
                c.readline()
                c.cmd("NOOP")
                self.assertEqual(c.read_smtp_reply()[0], 250)
                c.cmd("XYZZY")
                code, text = c.read_smtp_reply()
                self.assertEqual(code, 500)
                self.assertRegex(text[0], rb"^5\.5\.[12] ")
                c.send(b"NOOP " + b"x" * LONG + b"\r\n")
                code, text = c.read_smtp_reply(20)
                self.assertEqual(code // 100, 5, text)
                c.cmd("LHLO client.test")
                self.assertEqual(c.read_smtp_reply()[0], 250)
                c.cmd("RSET")
                self.assertEqual(c.read_smtp_reply()[0], 250)
                c.cmd("QUIT")
                self.assertEqual(c.read_smtp_reply()[0], 221)
                self.assertTrue(c.at_eof(5))


if __name__ == "__main__":
    main()
