"""test_imap_select.py: SELECT and EXAMINE responses (RFC 3501 sections 6.3.1, 6.3.2), failed
SELECT deselecting, CLOSE/UNSELECT/CHECK (RFC 3501 section 6.4, RFC 3691), \\Recent going to
exactly one session, and two sessions on one mailbox seeing EXISTS, EXPUNGE and FETCH FLAGS
from each other at the points RFC 3501 section 7.4.1 allows; a deleted selected mailbox."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s%d\r\n"
       b"Message-ID: <m%d@example.com>\r\n\r\nbody %d\r\n")


def msg(i):
    return MSG % (i, i, i)


class Select(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("fred", "secret")
        cls.coffer.add_user("joe", "joepw")
        m = cls.coffer.imap()
        m.login("joe", "joepw")
        m.create("private")
        m.logout()

    def mailbox(self, name, n, flags=None):
        """Create mailbox name with n messages (the first with flags) via APPEND."""
        m = self.coffer.imap()
        m.login("fred", "secret")
        self.assertEqual(m.create(name)[0], "OK")
        for i in range(n):
            m.append(name, flags if i == 0 else None, None, msg(i))
        m.logout()

    def conn(self, user="fred", pw="secret"):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN %s %s" % (user, pw))[0], rb"^l OK")
        return c

    def test_select_responses(self):
        self.mailbox("sel1", 3, r"(\Seen $Later)")
        c = self.conn()
        tagged, untagged = c.imap("a", "SELECT sel1")
        self.assertEqual(tagged, b"a OK [READ-WRITE] SELECT completed\r\n")
        text = b"".join(untagged)
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Later)\r\n", text)
        self.assertIn(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
                      b"$Later \\*)]", text)
        self.assertIn(b"* 3 EXISTS\r\n", text)
        self.assertIn(b"* 3 RECENT\r\n", text)
        self.assertIn(b"* OK [UNSEEN 2]", text)       # the first message is \Seen
        self.assertRegex(text, rb"\* OK \[UIDVALIDITY \d+\]")
        self.assertIn(b"* OK [UIDNEXT 4]", text)
        # imaplib agrees
        m = self.coffer.imap()
        m.login("fred", "secret")
        self.assertEqual(m.select("sel1"), ("OK", [b"3"]))
        self.assertEqual(m.untagged_responses.get("RECENT"), [b"0"])   # claimed by c already
        self.assertIn("READ-WRITE", m.untagged_responses)
        m.logout()

    def test_examine_read_only(self):
        self.mailbox("ex1", 2)
        c = self.conn()
        tagged, untagged = c.imap("a", "EXAMINE ex1")
        self.assertEqual(tagged, b"a OK [READ-ONLY] EXAMINE completed\r\n")
        self.assertIn(b"* OK [PERMANENTFLAGS ()]", b"".join(untagged))
        # EXAMINE never takes \Recent (RFC 3501 section 6.3.2)
        self.assertIn(b"* 2 RECENT\r\n", untagged)
        self.assertRegex(c.imap("b", "STORE 1 +FLAGS (\\Seen)")[0], rb"^b NO \[READ-ONLY\]")
        self.assertRegex(c.imap("c", "EXPUNGE")[0], rb"^c NO \[READ-ONLY\]")
        self.assertRegex(c.imap("d", "UID MOVE 1 INBOX")[0], rb"^d NO \[READ-ONLY\]")
        c2 = self.conn()
        self.assertIn(b"* 2 RECENT\r\n", c2.imap("e", "SELECT ex1")[1])

    def test_nonexistent_deselects(self):
        self.mailbox("ne1", 1)
        c = self.conn()
        self.assertRegex(c.imap("a", "SELECT ne1")[0], rb"^a OK")
        tagged, untagged = c.imap("b", "SELECT nosuch")
        self.assertEqual(tagged, b"b NO [NONEXISTENT] No such mailbox\r\n")
        # RFC 3501 section 6.3.1: a failed SELECT leaves no mailbox selected
        self.assertRegex(c.imap("c", "FETCH 1 FLAGS")[0], rb"^c BAD")
        # another user's mailbox is invisible (no rights)
        self.assertRegex(c.imap("d", 'SELECT "Other Users/joe/private"')[0],
                         rb"^d NO \[NONEXISTENT\]")
        self.assertRegex(c.imap("e", "SELECT")[0], rb"^e BAD")
        self.assertRegex(c.imap("f", "SELECT ne1 (X-UNKNOWN-PARAM)")[0], rb"^f BAD")
        # selected-state commands need a selection
        for i, cmd in enumerate(("CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "UID FETCH 1 FLAGS")):
            self.assertRegex(c.imap("g%d" % i, cmd)[0], rb"^g%d BAD" % i)

    def test_close_unselect_check(self):
        self.mailbox("cl1", 3)
        c = self.conn()
        c.imap("a", "SELECT cl1")
        self.assertEqual(c.imap("b", "STORE 1:2 +FLAGS.SILENT (\\Deleted)"),
                         (b"b OK STORE completed\r\n", []))
        self.assertEqual(c.imap("c", "CHECK"), (b"c OK CHECK completed\r\n", []))
        # UNSELECT does not expunge
        self.assertEqual(c.imap("d", "UNSELECT"), (b"d OK UNSELECT completed\r\n", []))
        self.assertIn(b"* 3 EXISTS\r\n", c.imap("e", "SELECT cl1")[1])
        # CLOSE expunges silently
        self.assertEqual(c.imap("f", "CLOSE"), (b"f OK CLOSE completed\r\n", []))
        self.assertIn(b"* 1 EXISTS\r\n", c.imap("g", "EXAMINE cl1")[1])
        # CLOSE after EXAMINE does not expunge
        c.imap("h", "SELECT cl1")
        c.imap("i", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.imap("j", "EXAMINE cl1")
        self.assertEqual(c.imap("k", "CLOSE")[0], b"k OK CLOSE completed\r\n")
        self.assertIn(b"* 1 EXISTS\r\n", c.imap("l", "SELECT cl1")[1])

    def test_recent_goes_to_one_session(self):
        self.mailbox("rec1", 2)
        a, b = self.conn(), self.conn()
        self.assertIn(b"* 2 RECENT\r\n", a.imap("a1", "SELECT rec1")[1])
        self.assertIn(b"* 0 RECENT\r\n", b.imap("b1", "SELECT rec1")[1])
        m = self.coffer.imap()
        m.login("fred", "secret")
        m.append("rec1", None, None, msg(9))
        m.logout()
        ua = a.imap("a2", "NOOP")[1]
        ub = b.imap("b2", "NOOP")[1]
        self.assertEqual(ua, [b"* 3 EXISTS\r\n", b"* 3 RECENT\r\n"])
        self.assertEqual(ub, [b"* 3 EXISTS\r\n", b"* 0 RECENT\r\n"])
        fa = a.imap("a3", "FETCH 3 FLAGS")[1]
        fb = b.imap("b3", "FETCH 3 FLAGS")[1]
        self.assertEqual(fa, [b"* 3 FETCH (FLAGS (\\Recent))\r\n"])
        self.assertEqual(fb, [b"* 3 FETCH (FLAGS ())\r\n"])
        # a later session sees none as recent
        c = self.conn()
        self.assertIn(b"* 0 RECENT\r\n", c.imap("c1", "SELECT rec1")[1])

    def test_two_sessions_updates(self):
        self.mailbox("two", 4)
        z = self.conn()
        z.imap("z", "SELECT two")        # takes \Recent, so a and b see plain flags
        a, b = self.conn(), self.conn()
        a.imap("a0", "SELECT two")
        b.imap("b0", "SELECT two")
        # flags changed by a reach b as FETCH FLAGS at b's next command
        self.assertEqual(a.imap("a1", "STORE 2 +FLAGS (\\Flagged)")[1],
                         [b"* 2 FETCH (FLAGS (\\Flagged))\r\n"])
        self.assertEqual(b.imap("b1", "NOOP")[1], [b"* 2 FETCH (FLAGS (\\Flagged))\r\n"])
        # with UID during UID commands
        a.imap("a2", "STORE 3 +FLAGS.SILENT (\\Answered)")
        tagged, untagged = b.imap("b2", "UID FETCH 1 UID")
        self.assertEqual(untagged, [b"* 1 FETCH (UID 1)\r\n",
                                    b"* 3 FETCH (FLAGS (\\Answered) UID 3)\r\n"])
        # a expunges 2 and 4; b hears nothing of it during FETCH, STORE or SEARCH ...
        a.imap("a3", "STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(a.imap("a4", "EXPUNGE")[1], [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"])
        tagged, untagged = b.imap("b3", "FETCH 1:* UID")
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        self.assertEqual([u for u in untagged if b"FETCH (UID" in u],
                         [b"* 1 FETCH (UID 1)\r\n", b"* 3 FETCH (UID 3)\r\n"])
        self.assertRegex(tagged, rb"^b3 OK \[EXPUNGEISSUED\]")   # RFC 2180 section 4.1.1
        tagged, untagged = b.imap("b4", "STORE 1 +FLAGS (\\Seen)")
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        tagged, untagged = b.imap("b5", "SEARCH ALL")
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        # ... and at NOOP, in order, each number valid when sent
        untagged = b.imap("b6", "NOOP")[1]
        self.assertEqual([u for u in untagged if b"EXPUNGE" in u],
                         [b"* 2 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"])
        self.assertEqual(b.imap("b7", "FETCH 1:* UID")[1],
                         [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"])
        # b's flag change reaches a
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen))\r\n", a.imap("a5", "CHECK")[1])
        # a new keyword brings a new FLAGS response to the other session too
        a.imap("a6", "STORE 1 +FLAGS.SILENT (NewKeyword)")
        untagged = b.imap("b8", "NOOP")[1]
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft NewKeyword)\r\n",
                      untagged)
        self.assertIn(b"* 1 FETCH (FLAGS (\\Seen NewKeyword))\r\n", untagged)

    def test_rights(self):
        m = self.coffer.imap()
        m.login("joe", "joepw")
        m.create("shr")
        m.append("shr", None, None, msg(1))
        m.logout()
        coffer = os.path.join(self.coffer.bindir, "coffer")

        def acl(rights):
            r = subprocess.run([coffer, "-C", self.coffer.conf_path, "acl", "set", "user/joe/shr",
                                "fred", rights], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=60, env=self.coffer.env())
            self.assertEqual(r.returncode, 0, r.stdout)
        acl("lr")
        c = self.conn()
        # read rights only: SELECT is read-only (RFC 4314 section 4)
        self.assertEqual(c.imap("a", 'SELECT "Other Users/joe/shr"')[0],
                         b"a OK [READ-ONLY] SELECT completed\r\n")
        acl("lrs")
        self.assertEqual(c.imap("b", 'SELECT "Other Users/joe/shr"')[0],
                         b"b OK [READ-WRITE] SELECT completed\r\n")
        # \Seen may be set, \Deleted (no 't') is dropped; no 'e': no EXPUNGE, no MOVE
        self.assertEqual(c.imap("c", "STORE 1 +FLAGS (\\Seen \\Deleted)")[1],
                         [b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"])
        self.assertEqual(c.imap("d", "EXPUNGE")[0], b"d NO [NOPERM] Permission denied\r\n")
        self.assertEqual(c.imap("e", "MOVE 1 INBOX")[0], b"e NO [NOPERM] Permission denied\r\n")
        # COPY out of it into a mailbox of one's own is fine; into it needs 'i'
        self.assertRegex(c.imap("f", "COPY 1 INBOX")[0], rb"^f OK \[COPYUID")
        c.imap("g", "SELECT INBOX")
        self.assertEqual(c.imap("h", 'COPY 1 "Other Users/joe/shr"')[0],
                         b"h NO [NOPERM] Permission denied\r\n")

    def test_deleted_while_selected(self):
        self.mailbox("gone", 1)
        a, b = self.conn(), self.conn()
        a.imap("a", "SELECT gone")
        self.assertRegex(b.imap("b", "DELETE gone")[0], rb"^b OK")
        a.cmd("c NOOP")
        a.expect(rb"^\* BYE \[NONEXISTENT\]")
        a.wait_eof()


if __name__ == "__main__":
    main()
