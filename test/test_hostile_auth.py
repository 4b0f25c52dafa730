"""test_hostile_auth.py: authentication identity under attack (security review 2026-12): M2 the
session is SASL's canonical name on every path (IMAP LOGIN, POP3 USER/PASS, LMTP AUTH), L2 NUL
in names and passwords, M1 LMTP AUTH is no faster or more talkative an oracle than LOGIN, M10
the admin check takes the realm into account, and the SCRAM server signature reaches the
client in all three protocols."""
import base64
import hashlib
import hmac
import os
import pwd
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import HOSTNAME, CofferTestCase, SharedCofferTestCase, main  # noqa: E402

REALM = HOSTNAME            # sasl_realm defaults to hostname


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def imap_quote(b):
    """b as an IMAP synchronizing literal header and payload."""
    return b"{%d}\r\n" % len(b), b


class ScramClient:
    """A minimal RFC 5802 / RFC 7677 SCRAM-SHA-256 client."""

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = b64(os.urandom(18))
        self.first_bare = "n=%s,r=%s" % (user, self.nonce)

    def first(self):
        return ("n,," + self.first_bare).encode()

    def final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        self.salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iters)
        client_key = hmac.new(self.salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        final_wo = "c=biws,r=%s" % attrs["r"]
        self.auth_msg = ",".join([self.first_bare, server_first, final_wo]).encode()
        sig = hmac.new(stored, self.auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        return ("%s,p=%s" % (final_wo, b64(proof))).encode()

    def expected_v(self):
        server_key = hmac.new(self.salted, b"Server Key", hashlib.sha256).digest()
        return ("v=" + b64(hmac.new(server_key, self.auth_msg, hashlib.sha256).digest())).encode()


class Identity(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin mta",
                                         "sasl_mech_list": "SCRAM-SHA-256 PLAIN LOGIN"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for u, p in (("user1", "secret"), ("admin", "adminpw"), ("mta", "mtapw"),
                     ("other", "otherpw")):
            cls.coffer.add_user(u, p)

    def imap(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        return c

    def imap_login_literal(self, c, tag, user, password):
        """LOGIN with both arguments as synchronizing literals; the tagged reply (which may
        come early, when a literal is refused)."""
        c.send(b"%s LOGIN {%d}\r\n" % (tag.encode(), len(user)))
        line = c.readline()
        if not line.startswith(b"+"):
            return line
        c.send(user + b" {%d}\r\n" % len(password))
        line = c.readline()
        if not line.startswith(b"+"):
            return line
        c.send(password + b"\r\n")
        return c.read_tagged(tag)[0]

    def user_mailboxes(self):
        """Every user/... top-level INBOX name, as admin sees them in LIST."""
        c = self.imap()
        self.assertRegex(c.imap("a1", "LOGIN admin adminpw")[0], rb"^a1 OK")
        _, untagged = c.imap("a2", 'LIST "" "*"')
        return b"".join(untagged)

    def test_m2_imap_login_variants_refused(self):
        variants = [b" user1", b"user1 ", b"\tuser1", b"user1\t", b"User1", b"USER1",
                    b"user1@otherrealm", b"..", b"user1/x", b"", b"u" * 300, b"user1\0x",
                    b"user1\r", b"us er1"]
        for v in variants:
            c = self.imap()
            # each connection stays unauthenticated: close it, or the variants would pass
            # max_preauth_per_ip (10 per address) before the loop ends
            self.addCleanup(c.close)
            tagged = self.imap_login_literal(c, "v1", v, b"secret")
            c.close()
            if b"\0" in v:     # the parser refuses a NUL in a literal before LOGIN sees it
                self.assertRegex(tagged, rb"^v1 (BAD|NO) ", v)
                continue
            self.assertEqual(tagged, b"v1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n", v)
        # quoted forms of the padded name, the exact transcript of the review
        c = self.imap()
        self.assertRegex(c.imap("q1", 'LOGIN " user1" secret')[0], rb"^q1 NO \[AUTHENTICATIONFAILED\]")
        # no padded identity got an INBOX of its own
        listing = self.user_mailboxes()
        self.assertNotIn(b" user1", listing.replace(b"/user1", b""))
        self.assertNotIn(b"User1", listing)

    def test_m2_imap_own_realm_is_the_same_user(self):
        since = self.coffer.log_size()
        c = self.imap()
        self.assertRegex(c.imap("r1", "LOGIN user1@%s secret" % REALM)[0], rb"^r1 OK")
        line = self.coffer.wait_log(r"event=login .*mech=LOGIN", since=since)
        self.assertRegex(line, r"user=user1 ")
        # a NUL in the password (literal) is a wrong password, not "secret"
        c = self.imap()
        self.assertRegex(self.imap_login_literal(c, "n1", b"user1", b"secret\0junk"),
                         rb"^n1 (NO \[AUTHENTICATIONFAILED\]|BAD)")

    def test_m2_pop3_variants_refused(self):
        cases = [(b"USER User1", b"PASS secret"), (b"USER user1\t", b"PASS secret"),
                 (b"USER user1@otherrealm", b"PASS secret"), (b"USER ..", b"PASS secret"),
                 (b"USER user1", b"PASS secret\0junk"), (b"USER user1", b"PASS secret ")]
        for user, pw in cases:
            c = self.coffer.connect("pop3")
            self.addCleanup(c.close)
            c.expect(rb"^\+OK")
            c.send(user + b"\r\n")
            c.readline()
            c.send(pw + b"\r\n")
            line = c.readline()
            self.assertTrue(line.startswith(b"-ERR"), (user, pw, line))
        # L2: a NUL in USER is refused as a line, never cut short to "a"
        c = self.coffer.connect("pop3")
        self.addCleanup(c.close)
        c.expect(rb"^\+OK")
        c.send(b"USER user1\0b\r\n")
        self.assertTrue(c.readline().startswith(b"-ERR"))
        c.send(b"PASS secret\r\n")
        self.assertTrue(c.readline().startswith(b"-ERR"))    # no USER was taken
        # and the plain name still works, as its canonical self
        c.send(b"USER user1@%s\r\nPASS secret\r\n" % REALM.encode())
        c.readline()
        self.assertTrue(c.readline().startswith(b"+OK"))

    def test_m2_lmtp_auth_variants_refused(self):
        for authc in ("Mta", "mta@otherrealm", "mta\t", " mta", "mta@%s@%s" % (REALM, REALM)):
            c = self.coffer.connect("lmtp")
            self.addCleanup(c.close)
            c.read_smtp_reply()
            c.cmd("LHLO x")
            c.read_smtp_reply()
            c.cmd("AUTH PLAIN " + b64("\0%s\0mtapw" % authc))
            self.assertEqual(c.read_smtp_reply()[0], 535, authc)

    def test_m10_admin_of_another_realm_is_no_admin(self):
        """admin@otherrealm (made with saslpasswd2 -u) must not act as admin or another user."""
        co = self.coffer
        dbpath = os.path.join(co.configdir, "sasldb2")
        r = subprocess.run(["saslpasswd2", "-f", dbpath, "-u", "otherrealm", "-c", "-p",
                            "admin"], input=b"evilpw", stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            self.skipTest("saslpasswd2 failed: %s" % r.stdout.decode(errors="replace"))
        if co.user:
            pw = pwd.getpwnam(co.user)
            os.chown(dbpath, pw.pw_uid, pw.pw_gid)
        # proxy authorization to user1 and to admin, and a plain login as it
        for authz in ("user1", "admin"):
            c = self.imap()
            tagged = c.imap("m1", "AUTHENTICATE PLAIN " + b64("%s\0admin@otherrealm\0evilpw" % authz))[0]
            self.assertRegex(tagged, rb"^m1 NO", authz)
        c = self.imap()
        self.assertRegex(c.imap("m2", "LOGIN admin@otherrealm evilpw")[0], rb"^m2 NO")
        # LMTP: not an administrator either
        c = self.coffer.connect("lmtp")
        self.addCleanup(c.close)
        c.read_smtp_reply()
        c.cmd("LHLO x")
        c.read_smtp_reply()
        c.cmd("AUTH PLAIN " + b64("\0admin@otherrealm\0evilpw"))
        self.assertEqual(c.read_smtp_reply()[0], 535)
        # the real admin still may act as user1
        c = self.imap()
        self.assertRegex(c.imap("m3", "AUTHENTICATE PLAIN " + b64("user1\0admin\0adminpw"))[0],
                         rb"^m3 OK")

    def scram_offered(self):
        c = self.imap()
        _, untagged = c.imap("c1", "CAPABILITY")
        return b"AUTH=SCRAM-SHA-256" in untagged[0]

    # The SCRAM tests also pass on the old code: csasl_new passes no SASL_SUCCESS_DATA, so the
    # SASL library itself turns "success with data" into one more step. They guard the RFC 4954
    # section 4 / RFC 5034 section 4 wire form, which the servers now also produce themselves.
    def test_m1_scram_server_signature_lmtp(self):
        if not self.scram_offered():
            self.skipTest("SCRAM-SHA-256 is not offered (SASL plugin missing)")
        s = ScramClient("mta", "mtapw")
        c = self.coffer.connect("lmtp")
        self.addCleanup(c.close)
        c.read_smtp_reply()
        c.cmd("LHLO x")
        c.read_smtp_reply()
        c.cmd("AUTH SCRAM-SHA-256 " + b64(s.first()))
        code, lines = c.read_smtp_reply()
        self.assertEqual(code, 334)
        c.cmd(b64(s.final(base64.b64decode(lines[0]))))
        code, lines = c.read_smtp_reply()
        # RFC 4954 section 4: the signature comes as a 334 challenge, then 235
        self.assertEqual(code, 334, lines)
        self.assertEqual(base64.b64decode(lines[0]), s.expected_v())
        c.cmd("")
        self.assertEqual(c.read_smtp_reply()[0], 235)

    def test_m1_scram_server_signature_pop3(self):
        if not self.scram_offered():
            self.skipTest("SCRAM-SHA-256 is not offered (SASL plugin missing)")
        s = ScramClient("user1", "secret")
        c = self.coffer.connect("pop3")
        self.addCleanup(c.close)
        c.expect(rb"^\+OK")
        c.cmd("AUTH SCRAM-SHA-256 " + b64(s.first()))
        line = c.readline()
        self.assertTrue(line.startswith(b"+ "), line)
        c.cmd(b64(s.final(base64.b64decode(line[2:].strip()))))
        line = c.readline()
        self.assertTrue(line.startswith(b"+ "), line)
        self.assertEqual(base64.b64decode(line[2:].strip()), s.expected_v())
        c.cmd("")
        self.assertTrue(c.readline().startswith(b"+OK"))


class Oracle(CofferTestCase):
    """M1: LMTP AUTH answers a wrong password and a right one of a non-admin alike, after the
    same pause, and closes after three failures; the same pause applies to IMAP LOGIN of a
    padded name (M2 refusals are ordinary failures)."""

    def test_m1_lmtp_auth_same_text_and_delay(self):
        co = self.new_coffer(global_settings={"allow_plaintext": "yes", "auth_fail_delay": "1s",
                                              "admins": "mta"})
        co.add_user("mta", "mtapw")
        co.add_user("demo", "demo")
        c = co.connect("lmtp")
        self.addCleanup(c.close)
        c.read_smtp_reply()
        c.cmd("LHLO x")
        c.read_smtp_reply()
        replies = []
        for cred in ("\0demo\0wrong", "\0demo\0demo"):
            t0 = time.monotonic()
            c.cmd("AUTH PLAIN " + b64(cred))
            code, lines = c.read_smtp_reply(timeout=10)
            replies.append((code, lines))
            self.assertGreaterEqual(time.monotonic() - t0, 0.9, cred)
        self.assertEqual(replies[0], replies[1])
        self.assertEqual(replies[0][0], 535)
        c.cmd("AUTH PLAIN " + b64("\0mta\0wrong"))
        self.assertEqual(c.read_smtp_reply(timeout=10)[0], 421)
        self.assertTrue(c.at_eof(5))
        self.assertTrue(co.wait_log(r"event=auth_failed .*reason=not_admin", 5))

    def test_m2_padded_name_is_an_ordinary_failure(self):
        co = self.new_coffer(global_settings={"allow_plaintext": "yes", "auth_fail_delay": "1s"})
        co.add_user("user1", "secret")
        c = co.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        t0 = time.monotonic()
        self.assertEqual(c.imap("p1", 'LOGIN " user1" secret')[0],
                         b"p1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        c.imap("p2", 'LOGIN "user1 " secret')
        tagged, untagged = c.imap("p3", 'LOGIN "USER1" secret')
        self.assertRegex(tagged, rb"^p3 NO \[AUTHENTICATIONFAILED\]")
        c.expect(rb"^\* BYE ")             # three strikes
        self.assertTrue(c.at_eof(5))


if __name__ == "__main__":
    main()
