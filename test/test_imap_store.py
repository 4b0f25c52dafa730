"""test_imap_store.py: STORE and UID STORE (RFC 3501 section 6.4.6) with every form, keywords
and the FETCH FLAGS replies; COPY, MOVE and their UID forms with UIDPLUS COPYUID (RFC 4315,
RFC 6851), TRYCREATE, OVERQUOTA; EXPUNGE and UID EXPUNGE ordering (RFC 3501 section 6.4.3,
RFC 4315 section 2.1)."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import Coffer, SharedCofferTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s%d\r\n"
       b"Message-ID: <m%d@example.com>\r\n\r\nbody %d\r\n")


def msg(i):
    return MSG % (i, i, i)


class Store(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("fred", "secret")
        cls.coffer.add_user("quser", "qpw")

    def mailbox(self, name, n, user="fred", pw="secret"):
        m = self.coffer.imap()
        m.login(user, pw)
        self.assertEqual(m.create(name)[0], "OK")
        for i in range(n):
            m.append(name, None, None, msg(i))
        m.logout()

    def conn(self, select=None, user="fred", pw="secret"):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN %s %s" % (user, pw))[0], rb"^l OK")
        if select:
            self.assertRegex(c.imap("s", "SELECT " + select)[0], rb"^s OK")
        return c

    def test_store_forms(self):
        self.mailbox("st1", 3)
        c = self.conn("st1")
        c.imap("z", "FETCH 1 FLAGS")
        self.assertEqual(c.imap("a", "STORE 1:2 FLAGS (\\Seen \\Flagged)"),
                         (b"a OK STORE completed\r\n",
                          [b"* 1 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n",
                           b"* 2 FETCH (FLAGS (\\Flagged \\Seen \\Recent))\r\n"]))
        self.assertEqual(c.imap("b", "STORE 1 -FLAGS \\Seen")[1],
                         [b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n"])
        # flags one after another, keywords created on the fly (PERMANENTFLAGS has \*)
        tagged, untagged = c.imap("c", "STORE 2 +FLAGS \\Draft $Work Other")
        self.assertEqual(tagged, b"c OK STORE completed\r\n")
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Other)\r\n",
                      untagged)
        self.assertIn(b"* 2 FETCH (FLAGS (\\Flagged \\Seen \\Draft $Work Other \\Recent))\r\n",
                      untagged)
        # FLAGS replaces everything, keywords included
        self.assertEqual(c.imap("d", "STORE 2 FLAGS (\\Answered)")[1],
                         [b"* 2 FETCH (FLAGS (\\Answered \\Recent))\r\n"])
        self.assertEqual(c.imap("e", "STORE 2 FLAGS ()")[1],
                         [b"* 2 FETCH (FLAGS (\\Recent))\r\n"])
        # .SILENT: no FETCH for this session's own change, now or at the next command
        self.assertEqual(c.imap("f", "STORE 3 +FLAGS.SILENT (\\Deleted)"),
                         (b"f OK STORE completed\r\n", []))
        self.assertEqual(c.imap("g", "NOOP")[1], [])
        self.assertEqual(c.imap("h", "FETCH 3 FLAGS")[1],
                         [b"* 3 FETCH (FLAGS (\\Deleted \\Recent))\r\n"])
        # UID STORE reports the UID
        self.assertEqual(c.imap("i", "UID STORE 1,3 -FLAGS (\\Deleted \\Flagged)")[1],
                         [b"* 1 FETCH (FLAGS (\\Recent) UID 1)\r\n",
                          b"* 3 FETCH (FLAGS (\\Recent) UID 3)\r\n"])
        self.assertEqual(c.imap("j", "UID STORE 50:60 +FLAGS (\\Seen)"),
                         (b"j OK UID STORE completed\r\n", []))
        # case-insensitive item and system flag names
        self.assertEqual(c.imap("k", "store 1 +flags.silent (\\SEEN)")[0],
                         b"k OK STORE completed\r\n")
        self.assertIn(b"\\Seen", c.imap("l", "FETCH 1 FLAGS")[1][0])

    def test_store_errors(self):
        self.mailbox("st2", 1)
        c = self.conn("st2")
        for i, bad in enumerate(("1 +FLAGS (\\Recent)", "1 +FLAGS (\\Bogus)", "1 FLAG (\\Seen)",
                                 "2 +FLAGS (\\Seen)", "1 +FLAGS (a(b)", "1 +FLAGS",
                                 "1 +FLAGS (\"quoted\")", "x +FLAGS (\\Seen)")):
            tagged, _ = c.imap("b%d" % i, "STORE " + bad)
            self.assertRegex(tagged, rb"^b%d BAD" % i, bad)

    def test_copy_and_copyuid(self):
        self.mailbox("src", 5)
        self.mailbox("dst", 2)
        c = self.conn("src")
        c.imap("a", "STORE 2 +FLAGS.SILENT (\\Flagged $K)")
        tagged, untagged = c.imap("b", "COPY 2:4 dst")
        m = re.match(rb"b OK \[COPYUID (\d+) 2:4 3:5\] COPY completed\r\n$", tagged)
        self.assertTrue(m, tagged)
        tagged, untagged = c.imap("c", "UID COPY 5,1 dst")
        self.assertRegex(tagged, rb"^c OK \[COPYUID %s 1,5 6,7\] UID COPY completed\r\n$" %
                         m.group(1))
        tagged, untagged = c.imap("d", "UID COPY 100:200 dst")       # nothing: no COPYUID
        self.assertEqual(tagged, b"d OK UID COPY completed\r\n")
        # the copies keep flags and keywords, and the bytes
        d = self.conn("dst")
        tagged, untagged = d.imap("e", "UID FETCH 3 (FLAGS BODY.PEEK[])")
        self.assertIn(b"\\Flagged", untagged[0])
        self.assertIn(b"$K", untagged[0])
        self.assertIn(msg(1), b"".join(untagged))
        self.assertRegex(d.imap("f", "STATUS dst (MESSAGES UIDNEXT)")[1][0],
                         rb"MESSAGES 7 UIDNEXT 8")
        # nonexistent target: TRYCREATE (RFC 3501 section 6.4.7)
        self.assertEqual(c.imap("g", "COPY 1 nosuch")[0], b"g NO [TRYCREATE] No such mailbox\r\n")
        self.assertEqual(c.imap("h", "MOVE 1 nosuch")[0], b"h NO [TRYCREATE] No such mailbox\r\n")
        self.assertRegex(c.imap("i", "COPY 9 dst")[0], rb"^i BAD")
        self.assertRegex(c.imap("j", "COPY 1")[0], rb"^j BAD")

    def test_copy_into_selected(self):
        self.mailbox("self", 2)
        c = self.conn("self")
        tagged, untagged = c.imap("a", "COPY 1:2 self")
        self.assertRegex(tagged, rb"^a OK \[COPYUID \d+ 1:2 3:4\]")
        self.assertIn(b"* 4 EXISTS\r\n", untagged)

    def test_move(self):
        self.mailbox("msrc", 4)
        self.mailbox("mdst", 0)
        c = self.conn("msrc")
        other = self.conn("msrc")
        c.imap("a", "STORE 3 +FLAGS.SILENT (\\Seen)")
        tagged, untagged = c.imap("b", "MOVE 2:3 mdst")
        # RFC 6851 section 4.3: untagged COPYUID, then the EXPUNGEs, then the tagged OK
        self.assertEqual(len(untagged), 3, untagged)
        self.assertRegex(untagged[0], rb"^\* OK \[COPYUID \d+ 2:3 1:2\]")
        self.assertEqual(untagged[1:], [b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"])
        self.assertEqual(tagged, b"b OK MOVE completed\r\n")
        tagged, untagged = c.imap("c", "UID MOVE 4 mdst")
        self.assertRegex(untagged[0], rb"^\* OK \[COPYUID \d+ 4 3\]")
        self.assertEqual(untagged[1:], [b"* 2 EXPUNGE\r\n"])
        self.assertEqual(c.imap("d", "FETCH 1:* UID")[1], [b"* 1 FETCH (UID 1)\r\n"])
        # the other session learns of it at its next command
        self.assertEqual([u for u in other.imap("e", "NOOP")[1] if b"EXPUNGE" in u],
                         [b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n", b"* 2 EXPUNGE\r\n"])
        d = self.conn("mdst")
        tagged, untagged = d.imap("f", "FETCH 1:* (UID FLAGS)")
        self.assertEqual(len(untagged), 3)
        self.assertIn(b"\\Seen", untagged[1])          # flags moved along; \Deleted did not
        self.assertNotIn(b"\\Deleted", b"".join(untagged))

    def test_expunge_order(self):
        self.mailbox("exp", 6)
        c = self.conn("exp")
        c.imap("a", "STORE 1,3,4,6 +FLAGS.SILENT (\\Deleted)")
        # UID EXPUNGE only touches the given uids that are \Deleted (RFC 4315 section 2.1)
        self.assertEqual(c.imap("b", "UID EXPUNGE 2:4"),
                         (b"b OK UID EXPUNGE completed\r\n",
                          [b"* 3 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]))
        self.assertEqual(c.imap("c", "EXPUNGE"),
                         (b"c OK EXPUNGE completed\r\n", [b"* 1 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"]))
        self.assertEqual(c.imap("d", "FETCH 1:* UID")[1],
                         [b"* 1 FETCH (UID 2)\r\n", b"* 2 FETCH (UID 5)\r\n"])
        self.assertEqual(c.imap("e", "EXPUNGE"), (b"e OK EXPUNGE completed\r\n", []))
        self.assertRegex(c.imap("f", "EXPUNGE 1")[0], rb"^f BAD")
        self.assertRegex(c.imap("g", "UID EXPUNGE")[0], rb"^g BAD")

    def test_overquota(self):
        self.mailbox("qsrc", 3, "quser", "qpw")
        conf = self.coffer.conf_path
        coffer = os.path.join(self.coffer.bindir, "coffer")
        # a root on quser's INBOX allowing 4 messages; 3 are in qsrc
        r = subprocess.run([coffer, "-C", conf, "quota", "set", "user/quser", "--messages", "4"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           env=self.coffer.env())
        self.assertEqual(r.returncode, 0, r.stdout)
        r = subprocess.run([coffer, "-C", conf, "quota", "fix", "user/quser"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                           env=self.coffer.env())
        c = self.conn("qsrc", "quser", "qpw")
        self.assertRegex(c.imap("a", "COPY 1 qsrc")[0], rb"^a OK \[COPYUID")
        self.assertEqual(c.imap("b", "COPY 1:2 qsrc")[0], b"b NO [OVERQUOTA] Quota exceeded\r\n")
        # expunging gives the room back
        c.imap("c", "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        c.imap("d", "EXPUNGE")
        self.assertRegex(c.imap("e", "COPY 1:2 qsrc")[0], rb"^e OK \[COPYUID")


class StoreBeforeFlush(SharedCofferTestCase):
    """STORE's FETCH lines and the flush of the change (cmd-store.c, store_early): without
    CONDSTORE the lines may go out before the flag log is flushed, the tagged OK only after
    it; with CONDSTORE (MODSEQ in the lines) nothing goes out before the flush. The instance
    fails every flag log flush while the file named by $COFFER_TEST_STORE_FAIL exists."""
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        cls._any_failed = False
        cls.coffer = Coffer(**cls.coffer_kwargs)
        cls.fail_file = os.path.join(cls.coffer.tmp, "store-fail")
        env0 = cls.coffer.env

        def env():
            e = env0()
            e["COFFER_TEST_STORE_FAIL"] = cls.fail_file
            return e
        cls.coffer.env = env
        try:
            cls.coffer.start()
        except BaseException:
            cls.coffer.close()
            raise
        cls.coffer.add_user("fred", "secret")

    def fail_flush(self, on):
        if on:
            open(self.fail_file, "w").close()
            self.addCleanup(self.fail_flush, False)
        elif os.path.exists(self.fail_file):
            os.unlink(self.fail_file)

    def conn(self, select, condstore=False):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN fred secret")[0], rb"^l OK")
        if condstore:
            self.assertRegex(c.imap("e", "ENABLE CONDSTORE")[0], rb"^e OK")
        self.assertRegex(c.imap("s", "SELECT " + select)[0], rb"^s OK")
        return c

    def mailbox(self, name, n):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN fred secret")[0], rb"^l OK")
        self.assertRegex(c.imap("c", "CREATE " + name)[0], rb"^c OK")
        for base in range(0, n, 500):
            parts = []
            for i in range(base, min(n, base + 500)):
                m = msg(i)
                parts.append(b"{%d+}\r\n" % len(m) + m)
            c.send(b"a APPEND " + name.encode() + b" " + b" ".join(parts) + b"\r\n")
            self.assertRegex(c.read_tagged("a")[0], rb"^a OK")

    @staticmethod
    def parse(untagged):
        """msgno -> (flags, modseq or None) of the FETCH lines, the last line of each."""
        out = {}
        for u in untagged:
            m = re.match(rb"\* (\d+) FETCH \(.*FLAGS \(([^)]*)\)", u)
            if m:
                ms = re.search(rb"MODSEQ \((\d+)\)", u)
                out[int(m.group(1))] = (m.group(2), ms.group(1) if ms else None)
        return out

    def flags_of(self, c, tag):
        """The flags of every message as c sees them (its sync's FETCH lines included)."""
        tagged, untagged = c.imap(tag, "FETCH 1:* FLAGS")
        self.assertRegex(tagged, rb"OK")
        got = self.parse(untagged)
        return [got[i][0] for i in sorted(got)]

    def test_lines_and_ok(self):
        n = 1100   # over 8 KB of lines and over STORE_HOOK_STEP records: sent in parts
        self.mailbox("early", n)
        plain = self.conn("early")
        cond = self.conn("early", condstore=True)
        other = self.conn("early")
        tagged, untagged = plain.imap("a", "STORE 1:* +FLAGS (\\Seen)")
        self.assertEqual(tagged, b"a OK STORE completed\r\n")
        self.assertEqual(untagged, [b"* %d FETCH (FLAGS (\\Seen \\Recent))\r\n" % i
                                    for i in range(1, n + 1)])
        # another session sees the change once the OK is out
        self.assertEqual(self.flags_of(other, "b"), [b"\\Seen"] * n)
        tagged, untagged = plain.imap("c", "UID STORE 2:4 FLAGS (\\Flagged)")
        self.assertEqual(tagged, b"c OK UID STORE completed\r\n")
        self.assertEqual(untagged, [b"* %d FETCH (FLAGS (\\Flagged \\Recent) UID %d)\r\n"
                                    % (i, i) for i in range(2, 5)])
        # CONDSTORE: the lines carry the commit's MODSEQ, all the same one
        tagged, untagged = cond.imap("d", "STORE 1:* -FLAGS (\\Seen)")
        self.assertEqual(tagged, b"d OK STORE completed\r\n")
        got = self.parse(untagged)
        self.assertEqual(sorted(got), list(range(1, n + 1)))
        # one MODSEQ for the messages it changed; 2:4 (FLAGS replaced \Seen) keep theirs
        self.assertEqual({got[i][1] for i in got if i not in (2, 3, 4)}, {got[1][1]})
        self.assertEqual({got[i][1] for i in (2, 3, 4)}, {got[2][1]})
        self.assertLess(int(got[2][1]), int(got[1][1]))
        self.assertEqual(got[1][0], b"")
        self.assertEqual(got[2][0], b"\\Flagged")
        self.assertEqual(self.flags_of(other, "e")[:5],
                         [b"", b"\\Flagged", b"\\Flagged", b"\\Flagged", b""])

    def test_refused_flush(self):
        n = 1100
        self.mailbox("refused", n)
        plain = self.conn("refused")
        cond = self.conn("refused", condstore=True)
        other = self.conn("refused")
        self.fail_flush(True)
        # without CONDSTORE the new flags went out before the flush failed: each message's
        # flags as they are again follow, then the NO
        tagged, untagged = plain.imap("a", "STORE 1:* +FLAGS (\\Seen)")
        self.assertRegex(tagged, rb"^a NO")
        told = [b"* %d FETCH (FLAGS (\\Seen \\Recent))\r\n" % i for i in range(1, n + 1)]
        back = [b"* %d FETCH (FLAGS (\\Recent))\r\n" % i for i in range(1, n + 1)]
        self.assertEqual(len(untagged), 2 * n)
        # the lines the socket took before the flush come first, whole, then every message again
        self.assertEqual(untagged[n:], back)
        self.assertEqual(untagged[:n], told)
        # with CONDSTORE nothing went out before the flush: no line with the refused MODSEQ
        tagged, untagged = cond.imap("b", "STORE 1:* +FLAGS (\\Seen)")
        self.assertRegex(tagged, rb"^b NO")
        self.assertEqual(untagged, [])
        # nobody sees the refused change
        self.assertEqual(self.flags_of(other, "c"), [b""] * n)
        self.fail_flush(False)
        tagged, untagged = plain.imap("d", "STORE 5 +FLAGS (\\Seen)")
        self.assertEqual((tagged, untagged), (b"d OK STORE completed\r\n",
                                              [b"* 5 FETCH (FLAGS (\\Seen \\Recent))\r\n"]))
        self.assertEqual(self.flags_of(other, "e")[4], b"\\Seen")


if __name__ == "__main__":
    main()
