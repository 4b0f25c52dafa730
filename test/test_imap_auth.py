"""test_imap_auth.py: IMAP LOGIN and AUTHENTICATE (RFC 3501 sections 6.2.2, 6.2.3), SASL-IR
(RFC 4959), failure delay and limit, admin proxy authorization, the plaintext refusal before
TLS (RFC 5530 PRIVACYREQUIRED), capabilities before and after login, ID and ENABLE."""
import base64
import hashlib
import hmac
import imaplib
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, SharedCofferTestCase, main  # noqa: E402


def caps_of(line):
    """Capabilities (upper-cased) from a `* CAPABILITY ...` line or an `[CAPABILITY ...]` code."""
    m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line)
    return m.group(1).decode().upper().split() if m else None


def b64(data):
    return base64.b64encode(data).decode()


class Auth(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("fred", "secret")
        cls.coffer.add_user("joe", "joepw")
        cls.coffer.add_user("admin", "adminpw")

    def conn(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        return c

    def test_capabilities_before_and_after_login(self):
        c = self.conn()
        tagged, untagged = c.imap("a1", "CAPABILITY")
        caps = caps_of(untagged[0])
        for want in ("IMAP4REV1", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR", "ID", "ENABLE",
                     "NAMESPACE", "CHILDREN", "SPECIAL-USE", "LIST-STATUS", "STARTTLS"):
            self.assertIn(want, caps)
        self.assertNotIn("LOGINDISABLED", caps)     # allow_plaintext = yes
        tagged, _ = c.imap("a2", "LOGIN fred secret")
        self.assertRegex(tagged, rb"^a2 OK \[CAPABILITY IMAP4rev1 [^\]]*\] Logged in\r\n$")
        after = caps_of(tagged)
        self.assertIn("NAMESPACE", after)
        for gone in ("STARTTLS", "LOGINDISABLED", "SASL-IR"):
            self.assertNotIn(gone, after)
        self.assertFalse([x for x in after if x.startswith("AUTH=")], after)
        tagged, untagged = c.imap("a3", "CAPABILITY")
        self.assertEqual(caps_of(untagged[0]), after)
        # no second login (RFC 3501 section 6.2: not authenticated state only)
        self.assertRegex(c.imap("a4", "LOGIN fred secret")[0], rb"^a4 BAD")
        self.assertRegex(c.imap("a5", "AUTHENTICATE PLAIN")[0], rb"^a5 BAD")

    def test_login_imaplib_and_log(self):
        since = self.coffer.log_size()
        m = self.coffer.imap()
        typ, data = m.login("fred", "secret")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.state, "AUTH")
        self.coffer.wait_log(r"event=login .*user=fred mech=LOGIN", since=since)
        m.logout()

    def test_login_literals_and_quoted(self):
        c = self.conn()
        c.cmd("b1 LOGIN {4}")
        c.expect(rb"^\+ ")
        c.send(b"fred {6+}\r\nsecret\r\n")
        tagged, _ = c.read_tagged("b1")
        self.assertRegex(tagged, rb"^b1 OK \[CAPABILITY ")
        c2 = self.conn()
        self.assertRegex(c2.imap("q1", 'LOGIN "fred" "secret"')[0], rb"^q1 OK")

    def test_login_failures(self):
        c = self.conn()
        since = self.coffer.log_size()
        self.assertEqual(c.imap("f1", "LOGIN fred wrong")[0],
                         b"f1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
        self.assertRegex(c.imap("f2", "LOGIN nosuchuser x")[0], rb"^f2 NO \[AUTHENTICATIONFAILED\]")
        self.coffer.wait_log(r"event=login_failed .*user=fred", since=since)
        self.assertRegex(c.imap("f3", "LOGIN fred")[0], rb"^f3 BAD")   # syntax: not counted
        # the third failure ends the connection with BYE
        tagged, untagged = c.imap("f4", "LOGIN fred wrong-again")
        self.assertRegex(tagged, rb"^f4 NO \[AUTHENTICATIONFAILED\]")
        c.expect(rb"^\* BYE ")
        self.assertTrue(c.at_eof(5))

    def test_authenticate_plain_imaplib(self):
        m = self.coffer.imap()
        typ, _ = m.authenticate("PLAIN", lambda _: b"\0fred\0secret")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.state, "AUTH")
        m.logout()
        m = self.coffer.imap()
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.authenticate("PLAIN", lambda _: b"\0fred\0nope")
        self.assertIn("AUTHENTICATIONFAILED", str(cm.exception))
        m.logout()

    def test_authenticate_login_mechanism(self):
        c = self.conn()
        c.cmd("l1 AUTHENTICATE LOGIN")
        c.expect(rb"^\+ ")
        c.cmd(b64(b"joe"))
        c.expect(rb"^\+ ")
        c.cmd(b64(b"joepw"))
        self.assertRegex(c.read_tagged("l1")[0], rb"^l1 OK \[CAPABILITY ")

    def test_sasl_ir(self):
        c = self.conn()
        since = self.coffer.log_size()
        tagged, untagged = c.imap("s1", "AUTHENTICATE PLAIN " + b64(b"\0fred\0secret"))
        self.assertEqual(untagged, [])          # no continuation with an initial response
        self.assertRegex(tagged, rb"^s1 OK \[CAPABILITY ")
        self.coffer.wait_log(r"event=login .*user=fred mech=PLAIN", since=since)
        # "=" is an empty initial response (RFC 4959 section 3): PLAIN cannot succeed with it
        c2 = self.conn()
        tagged, _ = c2.imap("s2", "AUTHENTICATE PLAIN =")
        self.assertRegex(tagged, rb"^s2 (NO|BAD)")
        self.assertRegex(c2.imap("s3", "NOOP")[0], rb"^s3 OK")
        # mechanism names are case-insensitive
        c3 = self.conn()
        self.assertRegex(c3.imap("s4", "AUTHENTICATE plain " + b64(b"\0joe\0joepw"))[0],
                         rb"^s4 OK")

    def test_authenticate_cancel_and_bad_base64(self):
        c = self.conn()
        c.cmd("x1 AUTHENTICATE PLAIN")
        self.assertEqual(c.readline(), b"+ \r\n")
        c.cmd("*")
        self.assertRegex(c.read_tagged("x1")[0], rb"^x1 BAD ")
        c.cmd("x2 AUTHENTICATE PLAIN")
        c.expect(rb"^\+ ")
        c.cmd("not base64!")
        self.assertRegex(c.read_tagged("x2")[0], rb"^x2 BAD ")
        self.assertRegex(c.imap("x3", "AUTHENTICATE PLAIN @@@@")[0], rb"^x3 BAD ")
        self.assertRegex(c.imap("x4", "AUTHENTICATE NO-SUCH-MECH")[0], rb"^x4 NO ")
        # none of those counted as failures: the session still logs in
        self.assertRegex(c.imap("x5", "LOGIN fred secret")[0], rb"^x5 OK")

    def test_admin_proxy(self):
        since = self.coffer.log_size()
        c = self.conn()
        tagged, _ = c.imap("p1", "AUTHENTICATE PLAIN " + b64(b"fred\0admin\0adminpw"))
        self.assertRegex(tagged, rb"^p1 OK ")
        self.coffer.wait_log(r"event=login .*user=fred authid=admin mech=PLAIN", since=since)
        # now acting as fred: fred's INBOX is "INBOX"
        self.assertRegex(c.imap("p2", 'STATUS INBOX (MESSAGES)')[0], rb"^p2 OK")
        # a non-admin may not authorize as someone else
        c2 = self.conn()
        tagged, _ = c2.imap("p3", "AUTHENTICATE PLAIN " + b64(b"fred\0joe\0joepw"))
        self.assertRegex(tagged, rb"^p3 NO \[AUTHENTICATIONFAILED\]")

    def scram_sha256(self, c, tag, user, password):
        """A minimal RFC 5802 / RFC 7677 client; returns the tagged reply."""
        nonce = b64(os.urandom(18))
        first_bare = "n=%s,r=%s" % (user, nonce)
        c.cmd("%s AUTHENTICATE SCRAM-SHA-256 %s" % (tag, b64(("n,," + first_bare).encode())))
        line = c.readline()
        if not line.startswith(b"+ "):
            return line
        server_first = base64.b64decode(line[2:].strip()).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        final_wo = "c=biws,r=%s" % attrs["r"]
        auth_msg = ",".join([first_bare, server_first, final_wo]).encode()
        sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        c.cmd(b64(("%s,p=%s" % (final_wo, b64(proof))).encode()))
        line = c.readline()
        if line.startswith(b"+ "):
            server_final = base64.b64decode(line[2:].strip()).decode()
            server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
            want = b64(hmac.new(server_key, auth_msg, hashlib.sha256).digest())
            self.assertEqual(server_final, "v=" + want)
            c.cmd("")
            line = c.read_tagged(tag)[0]
        return line

    def test_scram_sha256(self):
        c = self.conn()
        caps = caps_of(c.imap("c1", "CAPABILITY")[1][0])
        if "AUTH=SCRAM-SHA-256" not in caps:
            self.skipTest("SCRAM-SHA-256 is not offered (SASL plugin missing)")
        self.assertRegex(self.scram_sha256(c, "c2", "joe", "wrong"), rb"^c2 NO \[AUTHENTICATIONFAILED\]")
        self.assertRegex(self.scram_sha256(c, "c3", "joe", "joepw"), rb"^c3 OK \[CAPABILITY ")

    def test_id(self):
        since = self.coffer.log_size()
        c = self.conn()
        tagged, untagged = c.imap("i1", 'ID ("name" "test client" "version" "1.2")')
        self.assertEqual(untagged, [b'* ID ("name" "Coffer" "version" "0.1")\r\n'])
        self.assertRegex(tagged, rb"^i1 OK")
        self.coffer.wait_log(r'event=client_id .*id_name="test client" id_version=1\.2', since=since)
        self.assertRegex(c.imap("i2", "ID NIL")[0], rb"^i2 OK")
        self.assertRegex(c.imap("i3", 'ID ("odd")')[0], rb"^i3 BAD")
        self.assertRegex(c.imap("i4", "ID")[0], rb"^i4 BAD")

    def test_enable(self):
        c = self.conn()
        self.assertRegex(c.imap("e1", "ENABLE CONDSTORE")[0], rb"^e1 BAD")   # not logged in
        c.imap("e2", "LOGIN fred secret")
        # RFC 5161 section 3.1: unknown names are ignored; CONDSTORE is really enabled
        tagged, untagged = c.imap("e3", "ENABLE X-UNKNOWN CONDSTORE")
        self.assertEqual(untagged, [b"* ENABLED CONDSTORE\r\n"])
        self.assertRegex(tagged, rb"^e3 OK")
        self.assertRegex(c.imap("e4", "ENABLE")[0], rb"^e4 BAD")


class FailDelay(CofferTestCase):
    def test_delay_and_limit(self):
        co = self.new_coffer(global_settings={"allow_plaintext": "yes", "auth_fail_delay": "1s"})
        co.add_user("fred", "secret")
        with co.connect("imap") as c:
            c.expect(rb"^\* OK")
            t0 = time.monotonic()
            self.assertRegex(c.imap("d1", "LOGIN fred bad")[0], rb"^d1 NO \[AUTHENTICATIONFAILED\]")
            self.assertGreaterEqual(time.monotonic() - t0, 0.9)
            t0 = time.monotonic()
            self.assertRegex(c.imap("d2", "LOGIN fred secret")[0], rb"^d2 OK")
            self.assertLess(time.monotonic() - t0, 0.9)      # success is not delayed


class Plaintext(CofferTestCase):
    """allow_plaintext = no (the default): passwords only under TLS."""

    def test_refused_before_tls(self):
        co = self.new_coffer(global_settings={"auth_fail_delay": "0"})
        co.add_user("fred", "secret")
        with co.connect("imap") as c:
            greeting = c.readline()
            caps = caps_of(greeting)
            self.assertIn("LOGINDISABLED", caps)
            self.assertNotIn("AUTH=PLAIN", caps)
            self.assertNotIn("AUTH=LOGIN", caps)
            self.assertEqual(c.imap("t1", "LOGIN fred secret")[0],
                             b"t1 NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS\r\n")
            self.assertRegex(c.imap("t2", "AUTHENTICATE PLAIN " + b64(b"\0fred\0secret"))[0],
                             rb"^t2 NO \[PRIVACYREQUIRED\]")
            # refusals are no failed attempts: STARTTLS, then it works
            self.assertRegex(c.imap("t3", "STARTTLS")[0], rb"^t3 OK")
            c.starttls(co.ssl_context())
            caps = caps_of(c.imap("t4", "CAPABILITY")[1][0])
            self.assertIn("AUTH=PLAIN", caps)
            self.assertNotIn("LOGINDISABLED", caps)
            self.assertRegex(c.imap("t5", "AUTHENTICATE PLAIN " + b64(b"\0fred\0secret"))[0],
                             rb"^t5 OK \[CAPABILITY ")
        m = co.imap("imaps")
        self.assertEqual(m.login("fred", "secret")[0], "OK")
        m.logout()


if __name__ == "__main__":
    main()
