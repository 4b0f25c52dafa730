"""test_imap_unauthenticate.py: UNAUTHENTICATE (RFC 8437) end to end: the capability; BAD in
not authenticated state and with arguments (section 3: never NO); back in not authenticated
state with the selected mailbox released without expunge responses; a LOGIN as another user,
pipelined right behind it (section 3), that sees only that user's data: no mailbox, rights
(an administrator's included, section 4.1 cached identity), ENABLEd extensions (CONDSTORE,
QRESYNC), saved search, NOTIFY or IDLE updates of the first user leak through; TLS kept
(section 3); the pre-login limits and login deadline again; failed logins still counted for
the connection; and COMPRESS, which cannot be ended, answered with BYE (section 3)."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import Conn, CofferTestCase, ImapUsersTestCase, main  # noqa: E402
from test_imap_compress import ZSock  # noqa: E402

USERS = {"ann": "annpw", "bob": "bobpw", "adm": "admpw", "eve": "evepw"}
MSG = b"From: a@example.com\r\nSubject: unauth %d\r\n\r\nbody %d\r\n"


def caps_of(line):
    m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line)
    return m.group(1).decode().split() if m else []


def lit(data):
    return b"{%d+}\r\n" % len(data) + data


class Unauthenticate(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "adm", "login_timeout": "4s"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = cls.coffer.imap()
        m.login("ann", "annpw")
        m.create("annsecret")
        for i in range(3):
            m.append("INBOX", None, None, MSG % (i, i))
        m.logout()

    def unauth(self, c, tag="u"):
        tagged, untagged = c.imap(tag, "UNAUTHENTICATE")
        self.assertRegex(tagged, rb"^%s OK" % tag.encode())
        return untagged

    def login(self, c, user, tag="l"):
        tagged, _ = c.imap(tag, "LOGIN %s %s" % (user, self.users[user]))
        self.assertRegex(tagged, rb"^%s OK" % tag.encode())

    def test_capability_and_state(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        self.assertIn("UNAUTHENTICATE", caps_of(c.readline()))
        # section 3: BAD only for a wrong state or syntax
        self.assertRegex(c.imap("b1", "UNAUTHENTICATE")[0], rb"^b1 BAD")
        self.login(c, "ann")
        self.assertRegex(c.imap("b2", "UNAUTHENTICATE now")[0], rb"^b2 BAD")
        self.ok(c, "NOOP")      # still ann's session
        self.assertEqual(self.unauth(c), [])
        # not authenticated state: the pre-login capabilities, commands that need a login BAD
        caps = caps_of(c.imap("c", "CAPABILITY")[1][0])
        self.assertIn("AUTH=PLAIN", caps)
        for tag, text in (("n1", "SELECT INBOX"), ("n2", "LIST \"\" *"), ("n3", "UNAUTHENTICATE"),
                          ("n4", "ENABLE CONDSTORE")):
            self.assertRegex(c.imap(tag, text)[0], rb"^%s BAD" % tag.encode(), text)
        self.login(c, "ann", "l2")

    def test_selected_released_other_user_sees_own_data(self):
        c = self.conn("ann")
        untagged = self.ok(c, "SELECT INBOX")
        self.assertTrue([u for u in untagged if u.endswith(b" EXISTS\r\n")], untagged)
        self.ok(c, "STORE 1 +FLAGS (\\Deleted)")
        # no expunge event: the \Deleted message stays
        untagged = self.unauth(c)
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        self.login(c, "bob")
        self.assertRegex(c.imap("f", "FETCH 1 FLAGS")[0], rb"^f BAD")    # nothing selected
        names = b"".join(self.ok(c, 'LIST "" *'))
        self.assertNotIn(b"annsecret", names)
        self.assertNotIn(b"Other Users", names)
        self.no(c, 'STATUS "Other Users/ann/annsecret" (MESSAGES)', "NONEXISTENT|NOPERM")
        self.assertRegex(c.imap("s", 'SELECT "Other Users/ann"')[0], rb"^s NO")
        # bob's INBOX, as a fresh session of bob counts it
        n = re.search(rb"MESSAGES (\d+)",
                      self.ok(self.conn("bob"), "STATUS INBOX (MESSAGES)")[0]).group(1)
        untagged = self.ok(c, "SELECT INBOX")
        self.assertIn(b"* %s EXISTS\r\n" % n, untagged)
        # ann's message is still there and still \Deleted
        a = self.conn("ann")
        self.ok(a, "EXAMINE INBOX")
        self.assertIn(b"\\Deleted", b"".join(self.ok(a, "FETCH 1 FLAGS")))
        self.ok(a, "CLOSE")

    def test_pipelined_login(self):
        """Section 3: with no SASL layer UNAUTHENTICATE may be pipelined with the next
        AUTHENTICATE (SASL-IR: one round trip)."""
        c = self.conn("ann")
        self.ok(c, "SELECT INBOX")
        import base64
        ir = base64.b64encode(b"\0bob\0bobpw").decode()
        c.send("u UNAUTHENTICATE\r\na AUTHENTICATE PLAIN %s\r\nn NAMESPACE\r\n" % ir)
        self.assertRegex(c.read_tagged("u")[0], rb"^u OK")
        self.assertRegex(c.read_tagged("a")[0], rb"^a OK \[CAPABILITY ")
        tagged, untagged = c.read_tagged("n")
        self.assertRegex(tagged, rb"^n OK")
        self.assertIn(b"bob", b"".join(self.ok(c, "GETACL INBOX")))

    def test_admin_rights_not_kept(self):
        """Section 4.1: identity used for ACLs is reset: an administrator's powers end."""
        c = self.conn("adm")
        self.ok(c, 'STATUS "Other Users/ann/annsecret" (MESSAGES)')
        self.unauth(c)
        self.login(c, "eve")
        self.no(c, 'STATUS "Other Users/ann/annsecret" (MESSAGES)', "NONEXISTENT|NOPERM")
        self.assertRegex(c.imap("q", 'SETQUOTA "user/ann" (STORAGE 1)')[0], rb"^q NO")

    def test_enabled_and_searchres_reset(self):
        """Section 4.1: ENABLEd extensions (CONDSTORE, QRESYNC) and the saved search result
        are gone; ENABLE lists them again as newly enabled."""
        c = self.conn("ann")
        self.assertIn(b"* ENABLED QRESYNC\r\n", self.ok(c, "ENABLE QRESYNC"))
        self.ok(c, "SELECT INBOX")
        self.ok(c, "SEARCH RETURN (SAVE) ALL")
        self.unauth(c)
        self.login(c, "ann", "l2")
        # no CONDSTORE: no HIGHESTMODSEQ-bearing FETCH MODSEQ in a plain FETCH
        self.ok(c, "SELECT INBOX")
        untagged = self.ok(c, "FETCH 1 FLAGS")
        self.assertFalse([u for u in untagged if b"MODSEQ" in u], untagged)
        # $ is empty again (RFC 5182: no saved result)
        self.assertEqual(self.ok(c, "FETCH $ FLAGS"), [])
        enabled = self.ok(c, "ENABLE CONDSTORE QRESYNC")
        self.assertEqual(len(enabled), 1)
        self.assertIn(b"QRESYNC", enabled[0])
        self.assertIn(b"CONDSTORE", enabled[0])

    def test_notify_and_idle_do_not_leak(self):
        """Section 4.1: NOTIFY is cancelled; the next user's IDLE and NOTIFY see only their
        own mailboxes."""
        c = self.conn("ann")
        self.ok(c, "NOTIFY SET STATUS (personal (MessageNew MessageExpunge))")
        self.ok(c, "SELECT INBOX")
        self.unauth(c)
        self.login(c, "bob")
        self.ok(c, "SELECT INBOX")
        other_ann = self.conn("ann")
        other_bob = self.conn("bob")
        c.cmd("i IDLE")
        c.expect(rb"^\+ ")
        other_ann.send(b"x APPEND INBOX " + lit(MSG % (8, 8)) + b"\r\n")
        self.assertRegex(other_ann.read_tagged("x")[0], rb"^x OK")
        other_ann.send(b"y APPEND annsecret " + lit(MSG % (9, 9)) + b"\r\n")
        self.assertRegex(other_ann.read_tagged("y")[0], rb"^y OK")
        # bob's own new message shows; nothing of ann's came before it
        time.sleep(1)
        other_bob.send(b"z APPEND INBOX " + lit(MSG % (7, 7)) + b"\r\n")
        self.assertRegex(other_bob.read_tagged("z")[0], rb"^z OK")
        line = c.readline(timeout=10)
        self.assertEqual(line, b"* 1 EXISTS\r\n")
        c.cmd("DONE")
        tagged, untagged = c.read_tagged("i")
        self.assertRegex(tagged, rb"^i OK")
        self.assertFalse([u for u in untagged if b"STATUS" in u or b"annsecret" in u], untagged)
        untagged = self.ok(c, "NOOP")
        self.assertFalse([u for u in untagged if b"STATUS" in u], untagged)

    def test_tls_stays(self):
        """Section 3: the TLS layer is not reset: after UNAUTHENTICATE the session is still
        under TLS (no STARTTLS offered, plaintext mechanisms allowed), and a new login works
        over it."""
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.readline()
        self.assertRegex(c.imap("t", "STARTTLS")[0], rb"^t OK")
        c.starttls(self.coffer.ssl_context())
        self.login(c, "ann")
        self.unauth(c)
        caps = caps_of(c.imap("c", "CAPABILITY")[1][0])
        self.assertNotIn("STARTTLS", caps)
        self.assertRegex(c.imap("t2", "STARTTLS")[0], rb"^t2 (BAD|NO)")
        self.login(c, "bob", "l2")
        self.ok(c, "SELECT INBOX")

    def test_prelogin_limits_and_failures(self):
        """Back before login: the pre-login literal limit (max_literal_preauth 8K) applies
        again, failed logins before UNAUTHENTICATE still count (three end the connection),
        and the login deadline (login_timeout) runs again."""
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.readline()
        for i in range(2):
            self.assertRegex(c.imap("f%d" % i, "LOGIN ann wrong")[0],
                             rb"NO \[AUTHENTICATIONFAILED\]")
        self.login(c, "ann")
        c.cmd("big NOOP {9000}")
        c.expect(rb"^\+ ")
        c.send(b"x" * 9000 + b"\r\n")
        self.assertRegex(c.read_tagged("big")[0], rb"^big BAD NOOP")
        self.unauth(c)
        c.cmd("big2 NOOP {9000}")
        self.assertRegex(c.readline(), rb"^big2 BAD \[TOOBIG\]")
        tagged, untagged = c.imap("f3", "LOGIN ann wrong")
        self.assertRegex(tagged, rb"^f3 NO \[AUTHENTICATIONFAILED\]")
        self.assertTrue(c.wait_eof(10))
        # the login deadline: 4 s after UNAUTHENTICATE the silent connection is closed
        d = self.conn("bob")
        time.sleep(5)           # longer than login_timeout, shorter than the idle timeout
        self.ok(d, "NOOP")
        self.unauth(d)
        start = time.monotonic()
        self.assertTrue(d.wait_eof(15))
        self.assertLess(time.monotonic() - start, 12)

    def test_compress_bye(self):
        """An active COMPRESS layer cannot be ended (section 4.1 wants it ended after the OK);
        NO is not allowed (section 3), so the session says BYE and closes."""
        c = self.conn("ann")
        c.cmd("z COMPRESS DEFLATE")
        self.assertEqual(c.readline(), b"z OK DEFLATE active\r\n")
        c.sock = ZSock(c.sock)
        self.ok(c, "SELECT INBOX", "s")
        c.cmd("u UNAUTHENTICATE")
        self.assertRegex(c.readline(), rb"^\* BYE \[UNAVAILABLE\]")
        self.assertTrue(c.wait_eof(10))

    def test_logged(self):
        c = self.conn("bob")
        since = self.coffer.log_size()
        self.unauth(c)
        self.coffer.wait_log(r"event=unauthenticate .*tls=0", since=since)



class UserIpLimit(CofferTestCase):
    """After UNAUTHENTICATE the connection no longer counts as the user's
    (max_userip_connections) and is before login again in the connection table."""

    def connect_from(self, co, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(10)
        s.bind((source, 0))
        s.connect(co.address("imap"))
        c = Conn(s, 10)
        self.addCleanup(c.close)
        self.assertRegex(c.readline(), rb"^\* OK")
        return c

    def test_slot_released(self):
        co = self.new_coffer(global_settings={"allow_plaintext": "yes", "auth_fail_delay": "0",
                                              "max_userip_connections": "1"})
        co.add_user("ann", "annpw")
        co.add_user("bob", "bobpw")
        a = self.connect_from(co, "127.0.0.5")
        self.assertRegex(a.imap("l", "LOGIN ann annpw")[0], rb"^l OK")
        b = self.connect_from(co, "127.0.0.5")
        self.assertEqual(b.imap("l", "LOGIN ann annpw")[0],
                         b"l NO [LIMIT] Too many connections\r\n")
        st = co.status()["imap"]
        self.assertEqual((st["loggedin"], st["preauth"]), (1, 1), st)
        self.assertRegex(a.imap("u", "UNAUTHENTICATE")[0], rb"^u OK")
        st = co.status()["imap"]
        self.assertEqual((st["loggedin"], st["preauth"]), (0, 2), st)
        # ann's place is free: b logs in as ann, and a can no longer be ann
        self.assertRegex(b.imap("l2", "LOGIN ann annpw")[0], rb"^l2 OK")
        self.assertEqual(a.imap("l2", "LOGIN ann annpw")[0],
                         b"l2 NO [LIMIT] Too many connections\r\n")
        self.assertRegex(a.imap("l3", "LOGIN bob bobpw")[0], rb"^l3 OK")
        st = co.status()["imap"]
        self.assertEqual((st["loggedin"], st["preauth"]), (2, 0), st)


if __name__ == "__main__":
    main()
