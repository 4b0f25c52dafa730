"""test_imap_reselect.py: a SELECT of the mailbox a session had selected before (UNSELECT,
CLOSE, or SELECT of another in between) reuses that session's view (store_park_mailbox), and
must answer exactly as a fresh session would: changes, expunges and new messages made by another
session meanwhile (RFC 3501 section 6.3.1 EXISTS and FLAGS, RFC 7162 section 3.2.5 HIGHESTMODSEQ
and VANISHED (EARLIER) for QRESYNC), and a mailbox deleted and created again under the same name
(new UIDVALIDITY, RFC 3501 section 2.3.1.1)."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: r%d\r\n"
       b"Message-ID: <r%d@example.com>\r\n\r\nbody %d\r\n")


def msg(i):
    return MSG % (i, i, i)


class Reselect(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("fred", "secret")

    def mailbox(self, name, n):
        m = self.coffer.imap()
        m.login("fred", "secret")
        self.assertEqual(m.create(name)[0], "OK")
        for i in range(n):
            m.append(name, None, None, msg(i))
        m.logout()

    def conn(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN fred secret")[0], rb"^l OK")
        return c

    def select(self, c, text):
        tagged, untagged = c.imap("s", text)
        self.assertRegex(tagged, rb"^s OK")
        return b"".join(untagged)

    def state(self, c):
        """(uids, {uid: flags without \\Recent}) of the selected mailbox."""
        tagged, untagged = c.imap("f", "UID FETCH 1:* (FLAGS)")
        self.assertRegex(tagged, rb"^f OK")
        out = {}
        for line in untagged:
            m = re.search(rb"UID (\d+)", line)
            f = re.search(rb"FLAGS \(([^)]*)\)", line)
            if m and f:
                # \Recent goes to one session only (RFC 3501 section 2.3.2): not compared
                out[int(m.group(1))] = set(f.group(1).split()) - {b"\\Recent"}
        return sorted(out), out

    def test_reselect_sees_other_sessions_changes(self):
        self.mailbox("rs1", 5)
        a, b = self.conn(), self.conn()
        self.assertRegex(a.imap("e", "ENABLE QRESYNC")[0], rb"^e OK")
        first = self.select(a, "SELECT rs1")
        uv = int(re.search(rb"UIDVALIDITY (\d+)", first).group(1))
        hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", first).group(1))
        for how in ("UNSELECT", "CLOSE"):
            self.assertRegex(a.imap("u", how)[0], rb"^u OK")
            self.select(b, "SELECT rs1")
            self.assertRegex(b.imap("x", "UID STORE 2 +FLAGS (\\Flagged)")[0], rb"^x OK")
            self.assertRegex(b.imap("x", "UID STORE 3 +FLAGS.SILENT (\\Deleted)")[0], rb"^x OK")
            self.assertRegex(b.imap("x", "EXPUNGE")[0], rb"^x OK")
            self.assertRegex(b.imap("x", "UNSELECT")[0], rb"^x OK")
            m = self.coffer.imap()
            m.login("fred", "secret")
            m.append("rs1", None, None, msg(99))
            m.logout()
            again = self.select(a, "SELECT rs1")
            fresh = self.conn()
            ref = self.select(fresh, "SELECT rs1")
            for item in (rb"\* (\d+) EXISTS", rb"UIDNEXT (\d+)", rb"HIGHESTMODSEQ (\d+)",
                         rb"UIDVALIDITY (\d+)"):
                self.assertEqual(re.search(item, again).group(1), re.search(item, ref).group(1),
                                 (how, item))
            self.assertEqual(self.state(a), self.state(fresh))
            self.assertIn(b"\\Flagged", self.state(a)[1][2])
            self.assertNotIn(3, self.state(a)[0])
        # the QRESYNC view of the same: what vanished and what changed since the first SELECT
        self.assertRegex(a.imap("u", "UNSELECT")[0], rb"^u OK")
        tagged, untagged = a.imap("q", "SELECT rs1 (QRESYNC (%d %d))" % (uv, hms))
        self.assertRegex(tagged, rb"^q OK")
        text = b"".join(untagged)
        self.assertRegex(text, rb"\* VANISHED \(EARLIER\) [0-9:,]*\b3\b")
        self.assertRegex(text, rb"\* \d+ FETCH \((?=[^\r]*UID 2\b)[^\r]*\\Flagged")

    def test_reselect_recreated_mailbox(self):
        self.mailbox("rs2", 3)
        a, b = self.conn(), self.conn()
        first = self.select(a, "SELECT rs2")
        uv = re.search(rb"UIDVALIDITY (\d+)", first).group(1)
        self.assertRegex(a.imap("u", "UNSELECT")[0], rb"^u OK")
        self.assertRegex(b.imap("d", "DELETE rs2")[0], rb"^d OK")
        self.assertRegex(b.imap("c", "CREATE rs2")[0], rb"^c OK")
        m = self.coffer.imap()
        m.login("fred", "secret")
        m.append("rs2", None, None, msg(7))
        m.logout()
        again = self.select(a, "SELECT rs2")
        self.assertIn(b"* 1 EXISTS\r\n", again)
        self.assertNotEqual(re.search(rb"UIDVALIDITY (\d+)", again).group(1), uv)
        # and a mailbox deleted while kept: SELECT fails cleanly, another one works
        self.assertRegex(a.imap("u", "UNSELECT")[0], rb"^u OK")
        self.assertRegex(b.imap("d", "DELETE rs2")[0], rb"^d OK")
        self.assertRegex(a.imap("s", "SELECT rs2")[0], rb"^s NO")
        self.assertRegex(a.imap("s", "SELECT INBOX")[0], rb"^s OK")

    def test_reselect_examine_and_select_switch(self):
        """EXAMINE then SELECT of the same mailbox: read-only then read-write, same view."""
        self.mailbox("rs3", 4)
        a = self.conn()
        ex = self.select(a, "EXAMINE rs3")
        self.assertIn(b"* 4 EXISTS\r\n", ex)
        tagged, _ = a.imap("s", "SELECT rs3")
        self.assertRegex(tagged, rb"^s OK \[READ-WRITE\]")
        self.assertEqual(self.state(a)[0], [1, 2, 3, 4])
        self.select(a, "SELECT INBOX")
        tagged, untagged = a.imap("s", "EXAMINE rs3")
        self.assertRegex(tagged, rb"^s OK \[READ-ONLY\]")
        self.assertIn(b"* 4 EXISTS\r\n", b"".join(untagged))

    def test_reselect_unseen_and_the_next_commands_updates(self):
        """[UNSEEN] of a reselect after another session's \\Seen changes, in a mailbox with a
        uid column (over 1,024 messages: the open names the first unseen message from it and
        a SELECT takes it without locking again): always a fresh session's answer. And as
        SELECT no longer syncs after its own open, what another session changes right after
        it reaches the next command."""
        c = self.conn()
        self.assertRegex(c.imap("c", "CREATE rsu")[0], rb"^c OK")
        for lo in range(0, 1100, 100):    # MULTIAPPEND (RFC 3502), LITERAL+
            parts = [b"{%d+}\r\n%s" % (len(msg(i)), msg(i)) for i in range(lo, lo + 100)]
            c.send(b"t APPEND rsu " + b" ".join(parts) + b"\r\n")
            self.assertRegex(c.read_tagged("t")[0], rb"^t OK")
        a, b = self.conn(), self.conn()
        self.select(b, "SELECT rsu")

        def unseen(text):
            m = re.search(rb"\[UNSEEN (\d+)\]", text)
            return int(m.group(1)) if m else None

        self.assertEqual(unseen(self.select(a, "SELECT rsu")), 1)
        for change, want in (("STORE 1:5 +FLAGS.SILENT (\\Seen)", 6),
                             ("STORE 1:* +FLAGS.SILENT (\\Seen)", None),
                             ("UID STORE 1100 -FLAGS.SILENT (\\Seen)", 1100),
                             (None, 1100),     # unchanged: from the handle
                             ("UID STORE 7 -FLAGS.SILENT (\\Seen)", 7)):
            if change:
                self.assertRegex(b.imap("x", change)[0], rb"^x OK")
            self.assertRegex(a.imap("u", "UNSELECT")[0], rb"^u OK")
            got = unseen(self.select(a, "SELECT rsu"))
            self.assertEqual(got, want, change)
            self.assertEqual(unseen(self.select(self.conn(), "EXAMINE rsu")), want, change)
        # changes right after the SELECT: told by the next command
        self.assertRegex(b.imap("x", "STORE 2 +FLAGS.SILENT (\\Deleted \\Flagged)")[0],
                         rb"^x OK")
        self.assertRegex(b.imap("x", "EXPUNGE")[0], rb"^x OK")
        self.assertRegex(b.imap("x", "UID STORE 3 +FLAGS.SILENT (\\Answered)")[0],
                         rb"^x OK")
        m = self.coffer.imap()
        m.login("fred", "secret")
        m.append("rsu", None, None, msg(5000))
        m.logout()
        tagged, untagged = a.imap("n", "NOOP")
        self.assertRegex(tagged, rb"^n OK")
        text = b"".join(untagged)
        self.assertIn(b"* 2 EXPUNGE\r\n", text)
        self.assertIn(b"* 1100 EXISTS\r\n", text)
        self.assertRegex(text, rb"\* 2 FETCH \(FLAGS \([^)]*\\Answered")
        fresh = self.conn()
        self.select(fresh, "SELECT rsu")
        self.assertEqual(self.state(a), self.state(fresh))


if __name__ == "__main__":
    main()
