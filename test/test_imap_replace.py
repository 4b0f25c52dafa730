"""test_imap_replace.py: REPLACE and UID REPLACE (RFC 8508) end to end: the capability, the
examples of sections 3.2, 3.3 and 4.2 (CATENATE with a URL to the replaced message), the
response order of section 4.3 (APPENDUID untagged before the expunge), VANISHED under QRESYNC
(section 4.5), a target other than the selected mailbox (section 3.4), no inheritance of flags
(section 1) and no \\Deleted state seen by another session, the quota counted net (section
3.4), the errors (selected state only, bad numbers, a UID that is gone, TRYCREATE, READ-ONLY,
TOOBIG before the "+", one message only) each leaving both mailboxes untouched, and the rights
of section 4.1 (t and e on the selected mailbox, i on the target): another user's mailbox
without them, with them, and an administrator."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main, run_coffer  # noqa: E402

LIMIT = 65536
USERS = {"fritz": "fritzpw", "mitzy": "mitzypw", "quota1": "quota1pw", "rights1": "rights1pw",
         "adm": "admpw", "qr": "qrpw"}

# the message of the section 3.2 example
EXAMPLE = (b"Date: Thu, 1 Jan 2015 00:05:00 -0500 (EST)\r\n"
           b"From: Fritz Schmidt <fritz.ze@example.org>\r\n"
           b"Subject: happy new year !!\r\n"
           b"To: miss.mitzy@example.org\r\n"
           b"Message-Id: <B238822388-0100000@example.org>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
           b"\r\n"
           b"Just saw the best fireworks show. Wish you were here.\r\n")


def draft(n):
    return b"From: fritz.ze@example.org\r\nSubject: draft %d\r\n\r\nVersion %d.\r\n" % (n, n)


def lit(data):
    return b"{%d+}\r\n" % len(data) + data


class Replace(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "64K", "admins": "adm"}}

    def put(self, c, box, data, flags=""):
        c.send(b"p APPEND \"%s\" %s" % (box.encode(), flags.encode() + b" " if flags else b"")
               + lit(data) + b"\r\n")
        tagged, _ = c.read_tagged("p")
        m = re.match(rb"^p OK \[APPENDUID (\d+) (\d+)\]", tagged)
        self.assertTrue(m, tagged)
        return int(m.group(2))

    def fetch_all(self, user, box):
        """{uid: (flags, body)} of box, read by a fresh session of user."""
        c = self.conn(user)
        self.ok(c, 'EXAMINE "%s"' % box, "e")
        c.cmd("f UID FETCH 1:* (FLAGS BODY.PEEK[])")
        out = {}
        while True:
            line = c.readline()
            if line.startswith(b"f "):
                self.assertRegex(line, rb"^f OK")
                break
            m = re.match(rb"^\* \d+ FETCH \((.*)\{(\d+)\}\r\n$", line)
            if not m:
                continue
            head = m.group(1)
            body = c.read_exact(int(m.group(2)))
            rest = c.readline()
            uid = int(re.search(rb"UID (\d+)", head + rest).group(1))
            flags = re.search(rb"FLAGS \(([^)]*)\)", head + rest).group(1).decode().split()
            out[uid] = (sorted(f for f in flags if f != "\\Recent"), body)
        c.close()
        return out

    def select_with(self, user, box, n):
        """A session of user with box selected after appending n drafts; (conn, uids)."""
        c = self.conn(user)
        self.ok(c, 'CREATE "%s"' % box, "cr")
        uids = [self.put(c, box, draft(i)) for i in range(1, n + 1)]
        self.ok(c, 'SELECT "%s"' % box, "se")
        return c, uids

    # ---- the examples

    def test_capability(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        self.assertIn(b" REPLACE ", c.readline())

    def test_section_3_2_example(self):
        """REPLACE 4 Drafts (\\Seen \\Draft) {312}: "+", then APPENDUID untagged, EXISTS and
        EXPUNGE, then the tagged OK; the new message has exactly the given flags (nothing
        inherited from the old one, section 1)."""
        c, uids = self.select_with("fritz", "Drafts", 4)
        self.ok(c, "STORE 4 +FLAGS (\\Flagged $Important)")
        c.cmd("A003 REPLACE 4 Drafts (\\Seen \\Draft) {%d}" % len(EXAMPLE))
        c.expect(rb"^\+ ")
        c.send(EXAMPLE + b"\r\n")
        tagged, untagged = c.read_tagged("A003")
        self.assertRegex(tagged, rb"^A003 OK")
        m = re.match(rb"^\* OK \[APPENDUID (\d+) (\d+)\] Replacement Message ready", untagged[0])
        self.assertTrue(m, untagged)
        new_uid = int(m.group(2))
        self.assertEqual(new_uid, uids[-1] + 1)
        # the example sends EXISTS first; EXPUNGE first and then EXISTS 4 says the same
        self.assertIn(b"* 4 EXPUNGE\r\n", untagged)
        expunge = untagged.index(b"* 4 EXPUNGE\r\n")
        self.assertTrue(b"* 5 EXISTS\r\n" in untagged[:expunge] or
                        b"* 4 EXISTS\r\n" in untagged[expunge:], untagged)
        self.assertFalse([u for u in untagged if b"FETCH" in u], untagged)
        msgs = self.fetch_all("fritz", "Drafts")
        self.assertEqual(sorted(msgs), uids[:3] + [new_uid])
        self.assertEqual(msgs[new_uid], (["\\Draft", "\\Seen"], EXAMPLE))

    def test_section_3_3_uid_replace(self):
        c, uids = self.select_with("fritz", "Drafts33", 4)
        c.cmd("A004 UID REPLACE %d Drafts33 (\\Seen \\Draft) {%d}" % (uids[3], len(EXAMPLE)))
        c.expect(rb"^\+ ")
        c.send(EXAMPLE + b"\r\n")
        tagged, untagged = c.read_tagged("A004")
        self.assertRegex(tagged, rb"^A004 OK")
        self.assertRegex(untagged[0], rb"^\* OK \[APPENDUID \d+ %d\]" % (uids[3] + 1))
        self.assertIn(b"* 4 EXPUNGE\r\n", untagged)
        self.assertEqual(sorted(self.fetch_all("fritz", "Drafts33")), uids[:3] + [uids[3] + 1])

    def test_utf8_target(self):
        """The target is named as in APPEND: in UTF-8 after ENABLE UTF8=ACCEPT (RFC 6855
        section 3), in modified UTF-7 otherwise; either way the same mailbox."""
        c = self.conn("fritz")
        self.assertIn(b"* ENABLED UTF8=ACCEPT\r\n", self.ok(c, "ENABLE UTF8=ACCEPT", "en"))
        self.ok(c, 'CREATE "Entw\u00fcrfe"', "cr")
        uid = self.put(c, "Entw\u00fcrfe", draft(1))
        self.ok(c, 'SELECT "Entw\u00fcrfe"', "se")
        c.send(b'r UID REPLACE %d "Entw\xc3\xbcrfe" ' % uid + lit(EXAMPLE) + b"\r\n")
        tagged, untagged = c.read_tagged("r")
        self.assertRegex(tagged, rb"^r OK", untagged)
        self.assertRegex(untagged[0], rb"^\* OK \[APPENDUID \d+ %d\]" % (uid + 1))
        # the modified UTF-7 spelling is no name of a UTF-8 session (NO, nothing changes)
        c.send(b'r2 UID REPLACE %d "Entw&APw-rfe" ' % (uid + 1) + lit(EXAMPLE) + b"\r\n")
        tagged, _ = c.read_tagged("r2")
        self.assertRegex(tagged, rb"^r2 NO \[TRYCREATE\]")
        d = self.conn("fritz")
        self.ok(d, 'SELECT "Entw&APw-rfe"', "se")
        d.send(b'r3 UID REPLACE %d "Entw&APw-rfe" ' % (uid + 1) + lit(draft(3)) + b"\r\n")
        tagged, untagged = d.read_tagged("r3")
        self.assertRegex(tagged, rb"^r3 OK")
        self.assertRegex(untagged[0], rb"^\* OK \[APPENDUID \d+ %d\]" % (uid + 2))
        msgs = self.fetch_all("fritz", "Entw&APw-rfe")
        self.assertEqual(list(msgs), [uid + 2])
        self.assertEqual(msgs[uid + 2][1], draft(3))

    def test_section_4_2_catenate(self):
        """UID REPLACE 3002 Drafts CATENATE (TEXT {71} URL "/Drafts/;UID=3002"): the new
        message is the text and then the message it replaces."""
        c, uids = self.select_with("fritz", "Cat", 1)
        text = b"To: Mitzy <miss.mitzy@example.org>\r\nSubject: My view of the fireworks\r\n"
        self.assertEqual(len(text), 71)
        c.cmd("A011 UID REPLACE %d Cat CATENATE (TEXT {71}" % uids[0])
        c.expect(rb"^\+ ")
        c.send(text + b' URL "/Cat/;UID=%d")\r\n' % uids[0])
        tagged, untagged = c.read_tagged("A011")
        self.assertRegex(tagged, rb"^A011 OK")
        self.assertRegex(untagged[0], rb"^\* OK \[APPENDUID \d+ %d\]" % (uids[0] + 1))
        self.assertIn(b"* 1 EXPUNGE\r\n", untagged)
        msgs = self.fetch_all("fritz", "Cat")
        self.assertEqual(msgs, {uids[0] + 1: ([], text + draft(1))})
        # a URL that resolves to nothing: BADURL, and nothing changed
        c.send(b'b1 UID REPLACE %d Cat CATENATE (URL "/Cat/;UID=999")\r\n' % (uids[0] + 1))
        tagged, untagged = c.read_tagged("b1")
        self.assertRegex(tagged, rb"^b1 NO \[BADURL")
        self.assertEqual(untagged, [])

    def test_literal8(self):
        """Section 3.4: what extends APPEND extends REPLACE: the BINARY literal8 ~{N}
        (RFC 3516 section 4.4, RFC 4466 append-data), synchronizing and not."""
        c, uids = self.select_with("fritz", "Bin8", 2)
        body = b"From: a@example.com\r\nSubject: binary\r\n\r\nnul \x00 here\r\n"
        c.cmd("b1 REPLACE 1 Bin8 ~{%d}" % len(body))
        c.expect(rb"^\+ ")
        c.send(body + b"\r\n")
        tagged, untagged = c.read_tagged("b1")
        self.assertRegex(tagged, rb"^b1 OK")
        c.send(b"b2 UID REPLACE %d Bin8 ~{%d+}\r\n%s\r\n" % (uids[1], len(body), body))
        self.assertRegex(c.read_tagged("b2")[0], rb"^b2 OK")
        self.assertEqual(sorted(self.fetch_all("fritz", "Bin8")), [uids[1] + 1, uids[1] + 2])
        # but not in other UID commands
        c.send(b"b3 UID FETCH ~{3+}\r\nabc\r\n")
        self.assertRegex(c.read_tagged("b3")[0], rb"^b3 BAD")

    def test_other_target_and_qresync(self):
        """Section 3.4: from Drafts to Sent: the selected mailbox only loses the message; with
        QRESYNC enabled (section 4.5) the expunge is a VANISHED."""
        c = self.conn("qr")
        self.ok(c, "CREATE Sent")
        self.ok(c, "CREATE QDrafts")
        uids = [self.put(c, "QDrafts", draft(i)) for i in (1, 2)]
        self.ok(c, "ENABLE QRESYNC")
        self.ok(c, "SELECT QDrafts")
        c.send(b"q1 UID REPLACE %d Sent (\\Seen) " % uids[0] + lit(EXAMPLE) + b"\r\n")
        tagged, untagged = c.read_tagged("q1")
        self.assertRegex(tagged, rb"^q1 OK")
        sent_v = int(re.search(rb"UIDVALIDITY (\d+)",
                               self.ok(self.conn("qr"), "STATUS Sent (UIDVALIDITY)")[0]).group(1))
        self.assertEqual(untagged[0], b"* OK [APPENDUID %d 1] Replacement Message ready\r\n"
                         % sent_v)
        self.assertIn(b"* VANISHED %d\r\n" % uids[0], untagged)
        self.assertFalse([u for u in untagged if u.endswith(b"EXISTS\r\n")
                          or u.endswith(b"EXPUNGE\r\n")], untagged)
        self.assertEqual(self.fetch_all("qr", "Sent"), {1: (["\\Seen"], EXAMPLE)})
        self.assertEqual(sorted(self.fetch_all("qr", "QDrafts")), [uids[1]])

    def test_other_session_sees_no_deleted(self):
        """Section 3.4: no intermediate state: another session of the mailbox gets the expunge
        and the new message, never a \\Deleted flag on the old one."""
        c, uids = self.select_with("mitzy", "Shared2", 2)
        other = self.conn("mitzy")
        self.ok(other, "SELECT Shared2", "o1")
        other.cmd("i IDLE")
        other.expect(rb"^\+ ")
        c.send(b"r UID REPLACE %d Shared2 " % uids[0] + lit(draft(9)) + b"\r\n")
        self.assertRegex(c.read_tagged("r")[0], rb"^r OK")
        seen = []
        while not (any(b"EXPUNGE" in s for s in seen) and any(b"EXISTS" in s for s in seen)):
            seen.append(other.readline())
        other.cmd("DONE")
        _, rest = other.read_tagged("i")
        self.assertFalse([s for s in seen + rest if b"FETCH" in s], seen + rest)

    # ---- errors: each leaves both mailboxes as they were

    def test_errors(self):
        c = self.conn("fritz")
        self.ok(c, "CREATE Errs")
        uid = self.put(c, "Errs", draft(1))
        # section 3.5: selected state only, UID REPLACE too
        for tag, text in (("s1", "REPLACE 1 Errs {3+}\r\nabc"),
                          ("s2", "UID REPLACE %d Errs {3+}\r\nabc" % uid)):
            c.send(tag.encode() + b" " + text.encode() + b"\r\n")
            self.assertRegex(c.read_tagged(tag)[0], rb"^%s BAD" % tag.encode())
        self.ok(c, "SELECT Errs")
        bad = [
            b"REPLACE 2 Errs " + lit(draft(2)),           # past the last message
            b"REPLACE 0 Errs " + lit(draft(2)),
            b"REPLACE 1:2 Errs " + lit(draft(2)),         # one message, not a set
            b"REPLACE 1,1 Errs " + lit(draft(2)),
            b"REPLACE 1 Errs",                            # no message
            b"REPLACE 1",
            b"REPLACE 1 Errs " + lit(draft(2)) + b" " + lit(draft(3)),   # section 4.7
            b"REPLACE 1 Errs (\\Recent) " + lit(draft(2)),
            b"REPLACE 1 Errs \"bad date\" " + lit(draft(2)),
            b"UID REPLACE 1:* Errs " + lit(draft(2)),
        ]
        for i, text in enumerate(bad):
            tag = b"b%d" % i
            c.send(tag + b" " + text + b"\r\n")
            tagged, untagged = c.read_tagged(tag.decode())
            self.assertRegex(tagged, rb"^" + tag + rb" BAD", text)
            self.assertEqual(untagged, [], text)
        # a UID not in the mailbox: NO, nothing appended
        c.send(b"n1 UID REPLACE %d Errs " % (uid + 50) + lit(draft(2)) + b"\r\n")
        self.assertRegex(c.read_tagged("n1")[0], rb"^n1 NO \[NONEXISTENT\]")
        # RFC 3501 section 6.3.11 via section 3.4: TRYCREATE, and the old message stays
        c.send(b"n2 REPLACE 1 NoSuchBox " + lit(draft(2)) + b"\r\n")
        tagged, untagged = c.read_tagged("n2")
        self.assertRegex(tagged, rb"^n2 NO \[TRYCREATE\]")
        self.assertEqual(untagged, [])
        # TOOBIG before the "+" (RFC 7889 section 4); {N+} over it: BAD, read and dropped
        c.cmd("n3 UID REPLACE %d Errs {%d}" % (uid, LIMIT + 1))
        self.assertRegex(c.readline(), rb"^n3 NO \[TOOBIG\]")
        big = b"x" * (LIMIT + 1)
        c.send(b"n4 REPLACE 1 Errs {%d+}\r\n" % len(big) + big + b"\r\n")
        self.assertRegex(c.read_tagged("n4")[0], rb"^n4 BAD \[TOOBIG\]")
        # an empty message
        c.send(b"n5 REPLACE 1 Errs {0+}\r\n\r\n")
        self.assertRegex(c.read_tagged("n5")[0], rb"^n5 NO \[CANNOT\]")
        # read-only
        self.ok(c, "EXAMINE Errs")
        c.send(b"n6 REPLACE 1 Errs " + lit(draft(2)) + b"\r\n")
        self.assertRegex(c.read_tagged("n6")[0], rb"^n6 NO \[READ-ONLY\]")
        self.assertEqual(self.fetch_all("fritz", "Errs"), {uid: ([], draft(1))})

    def test_expunged_meanwhile(self):
        """The message was expunged by another session before the REPLACE (still in this
        session's view): NO [EXPUNGEISSUED] (RFC 5530), nothing appended."""
        c, uids = self.select_with("fritz", "Gone", 2)
        other = self.conn("fritz")
        self.ok(other, "SELECT Gone", "o")
        self.ok(other, "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[0], "o2")
        self.ok(other, "EXPUNGE", "o3")
        c.send(b"g UID REPLACE %d Gone " % uids[0] + lit(draft(7)) + b"\r\n")
        tagged, untagged = c.read_tagged("g")
        self.assertRegex(tagged, rb"^g NO \[EXPUNGEISSUED\]")
        self.assertEqual(sorted(self.fetch_all("fritz", "Gone")), [uids[1]])

    def test_quota_is_net(self):
        """Section 3.4: within one quota root only the net change counts: at the message
        limit APPEND is OVERQUOTA but REPLACE works; into another root it is checked in full
        and a refusal leaves the old message."""
        c = self.conn("quota1")
        self.ok(c, "CREATE qbox")
        u1 = self.put(c, "qbox", draft(1))
        self.put(c, "qbox", draft(2))
        rc, out, err = run_coffer(self.coffer, "quota", "set", "user/quota1", "--messages", "3")
        self.assertEqual(rc, 0, err)
        c.send(b"a APPEND qbox " + lit(draft(3)) + b"\r\n")     # INBOX, qbox: 2 + 1 = 3 fine
        self.assertRegex(c.read_tagged("a")[0], rb"^a OK")
        c.send(b"a2 APPEND qbox " + lit(draft(4)) + b"\r\n")
        self.assertRegex(c.read_tagged("a2")[0], rb"^a2 NO \[OVERQUOTA\]")
        self.ok(c, "SELECT qbox")
        c.send(b"r UID REPLACE %d qbox " % u1 + lit(draft(5)) + b"\r\n")
        tagged, untagged = c.read_tagged("r")
        self.assertRegex(tagged, rb"^r OK")
        # another root at its limit: OVERQUOTA, nothing expunged
        d = self.conn("mitzy")
        self.ok(d, "CREATE full")
        self.ok(d, "SETACL full quota1 lri")
        rc, out, err = run_coffer(self.coffer, "quota", "set", "user/mitzy/full", "--messages", "0")
        self.assertEqual(rc, 0, err)
        c.send(b"r2 REPLACE 1 \"Other Users/mitzy/full\" " + lit(draft(6)) + b"\r\n")
        tagged, untagged = c.read_tagged("r2")
        self.assertRegex(tagged, rb"^r2 NO \[OVERQUOTA\]")
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        self.assertEqual(len(self.fetch_all("quota1", "qbox")), 3)

    def test_rights(self):
        """Section 4.1: t and e on the selected mailbox (UID STORE \\Deleted and UID EXPUNGE),
        i on the target (APPEND)."""
        owner = self.conn("mitzy")
        self.ok(owner, "CREATE rbox")
        uid = self.put(owner, "rbox", draft(1))
        self.ok(owner, "CREATE rtarget")
        u = self.conn("rights1")
        src = '"Other Users/mitzy/rbox"'
        # no rights at all: the mailbox cannot even be selected
        tagged, _ = u.imap("s0", "SELECT %s" % src)
        self.assertRegex(tagged, rb"^s0 NO")
        # l r: selected read-only (RFC 4314 section 4); l r s: read-write, but REPLACE needs
        # t and e; nothing appended anywhere
        self.ok(owner, "SETACL rbox rights1 lr")
        self.ok(u, "SELECT %s" % src)
        u.send(b"x0 UID REPLACE %d %s " % (uid, src.encode()) + lit(draft(2)) + b"\r\n")
        self.assertRegex(u.read_tagged("x0")[0], rb"^x0 NO \[READ-ONLY\]")
        for rights in ("lrs", "lrst", "lrse"):
            self.ok(owner, "SETACL rbox rights1 %s" % rights)
            self.ok(u, "SELECT %s" % src)
            u.send(b"x1 UID REPLACE %d %s " % (uid, src.encode()) + lit(draft(2)) + b"\r\n")
            self.assertRegex(u.read_tagged("x1")[0], rb"^x1 NO \[NOPERM\]", rights)
        # l r t e: the source is fine, but the target (own INBOX works; rtarget has no i)
        self.ok(owner, "SETACL rbox rights1 lrte")
        self.ok(owner, "SETACL rtarget rights1 lr")
        self.ok(u, "SELECT %s" % src)
        u.send(b'x2 UID REPLACE %d "Other Users/mitzy/rtarget" ' % uid + lit(draft(2)) + b"\r\n")
        self.assertRegex(u.read_tagged("x2")[0], rb"^x2 NO \[NOPERM\]")
        self.assertEqual(len(self.fetch_all("mitzy", "rtarget")), 0)
        self.assertEqual(sorted(self.fetch_all("mitzy", "rbox")), [uid])
        # i on the target too: done
        self.ok(owner, "SETACL rtarget rights1 lri")
        u.send(b'x3 UID REPLACE %d "Other Users/mitzy/rtarget" ' % uid + lit(draft(3)) + b"\r\n")
        tagged, untagged = u.read_tagged("x3")
        self.assertRegex(tagged, rb"^x3 OK")
        self.assertIn(b"* 1 EXPUNGE\r\n", untagged)
        self.assertEqual(sorted(self.fetch_all("mitzy", "rbox")), [])
        self.assertEqual([b for _, b in self.fetch_all("mitzy", "rtarget").values()], [draft(3)])
        # an administrator, in another user's mailbox without any ACL entry
        uid2 = self.put(owner, "rbox", draft(4))
        a = self.conn("adm")
        self.ok(a, "SELECT %s" % src)
        a.send(b"x4 UID REPLACE %d %s " % (uid2, src.encode()) + lit(draft(5)) + b"\r\n")
        tagged, untagged = a.read_tagged("x4")
        self.assertRegex(tagged, rb"^x4 OK")
        self.assertEqual([b for _, b in self.fetch_all("mitzy", "rbox").values()], [draft(5)])


if __name__ == "__main__":
    main()
