"""test_imap_catenate.py: IMAP CATENATE (RFC 4469): APPEND ... CATENATE (TEXT literal URL url)
with the appendix A example, every URL form (absolute, absolute path, relative to the selected
mailbox), sections and partial ranges, [BADURL url] for what cannot be resolved (no such
message, wrong UIDVALIDITY, another user's mailbox without the r right, garbage), the same
URL working once the owner grants r, [TOOBIG] past max_literal, MULTIAPPEND with CATENATE all
or nothing, and bad syntax answered BAD."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: catenate test\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
       b"--XX\r\nContent-Type: text/plain\r\n\r\nPart one.\r\n"
       b"--XX\r\nContent-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gYmluYXJ5AA==\r\n--XX--\r\n")
HEADER = MSG[:MSG.index(b"\r\n\r\n") + 4]
PART1_MIME = b"Content-Type: text/plain\r\n\r\n"
PART1 = b"Part one."
APPENDUID_RX = rb"^\w+ OK \[APPENDUID (\d+) ([\d:,]+)\]"


def lit(data):
    """A LITERAL+ literal (RFC 7888): no go-ahead needed."""
    return b"{%d+}\r\n" % len(data) + data


class Catenate(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "8K", "admins": "boss"}}
    made = set()

    def login(self, user):
        if user not in type(self).made:
            self.coffer.add_user(user, user + "pw")
            type(self).made.add(user)
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("L", "LOGIN %s %spw" % (user, user))[0], rb"^L OK")
        return c

    def send(self, c, tag, raw):
        c.send(tag.encode() + b" " + raw + b"\r\n")
        return c.read_tagged(tag)

    def put(self, c, box, msg=MSG):
        """Append msg to box; (uidvalidity, uid)."""
        tagged, _ = self.send(c, "P", b'APPEND "%s" ' % box.encode() + lit(msg))
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        return int(m.group(1)), int(m.group(2))

    def body(self, c, box, uid):
        tagged, _ = c.imap("X", 'EXAMINE "%s"' % box)
        self.assertRegex(tagged, rb"^X OK")
        c.cmd("F UID FETCH %d BODY.PEEK[]" % uid)
        m = c.expect(rb"^\* \d+ FETCH .*\{(\d+)\}\r\n$")
        data = c.read_exact(int(m.group(1)))
        self.assertRegex(c.read_tagged("F")[0], rb"^F OK")
        c.imap("U", "UNSELECT")
        return data

    def count(self, c, box):
        tagged, untagged = c.imap("S", 'STATUS "%s" (MESSAGES)' % box)
        self.assertRegex(tagged, rb"^S OK")
        return int(re.search(rb"MESSAGES (\d+)", untagged[0]).group(1))

    def test_capability(self):
        c = self.login("capa")
        _, untagged = c.imap("C", "CAPABILITY")
        caps = untagged[0].split()
        self.assertIn(b"CATENATE", caps)

    def test_rfc_example(self):
        # RFC 4469 appendix A: header, new text, MIME header and body of part 1, new text
        c = self.login("alice")
        self.assertRegex(c.imap("C", "CREATE Drafts")[0], rb"^C OK")
        v, uid = self.put(c, "Drafts")
        text1 = b"--------------030308070208000400050907\r\n"
        text2 = b"\r\n--------------030308070208000400050907--\r\n"
        raw = (b'APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL '
               b'"/Drafts;UIDVALIDITY=%d/;UID=%d/;section=HEADER" TEXT ' % (v, uid) + lit(text1) +
               b' URL "/Drafts;UIDVALIDITY=%d/;UID=%d/;section=1.MIME"'
               b' URL "/Drafts;UIDVALIDITY=%d/;UID=%d/;section=1" TEXT ' % (v, uid, v, uid) +
               lit(text2) + b")")
        tagged, _ = self.send(c, "A", raw)
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        self.assertEqual(int(m.group(1)), v)
        new = int(m.group(2))
        self.assertEqual(self.body(c, "Drafts", new), HEADER + text1 + PART1_MIME + PART1 + text2)
        # the flags were taken as for a plain APPEND
        c.imap("X", "EXAMINE Drafts")
        _, untagged = c.imap("F", "UID FETCH %d FLAGS" % new)
        self.assertIn(b"\\Draft", untagged[0])
        self.assertIn(b"$MDNSent", untagged[0])

    def test_url_forms(self):
        c = self.login("forms")
        v, uid = self.put(c, "INBOX")
        host = "imap://forms@localhost/INBOX/;UID=%d" % uid
        cases = [
            (host, MSG),
            ("/INBOX/;UID=%d" % uid, MSG),
            ("/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=TEXT" % (v, uid), MSG[len(HEADER):]),
            ("/INBOX/;UID=%d/;SECTION=HEADER.FIELDS%%20(Subject)" % uid,
             b"Subject: catenate test\r\n\r\n"),
            ("/INBOX/;UID=%d/;SECTION=1/;PARTIAL=5.3" % uid, b"one"),
            ("/INBOX/;UID=%d/;PARTIAL=0.4" % uid, b"From"),
            # an offset past the end gives nothing (with text around it, the message is not empty)
            ("/INBOX/;UID=%d/;SECTION=1/;PARTIAL=500" % uid, b""),
        ]
        for url, want in cases:
            with self.subTest(url=url):
                raw = (b"APPEND INBOX CATENATE (TEXT " + lit(b"<") + b' URL "%s" TEXT ' % url.encode()
                       + lit(b">") + b")")
                tagged, _ = self.send(c, "A", raw)
                m = re.match(APPENDUID_RX, tagged)
                self.assertTrue(m, tagged)
                self.assertEqual(self.body(c, "INBOX", int(m.group(2))), b"<" + want + b">")

    def test_relative_to_selected(self):
        c = self.login("rel")
        self.assertRegex(c.imap("C", "CREATE Src")[0], rb"^C OK")
        _, uid = self.put(c, "Src")
        url = b'";UID=%d/;SECTION=1"' % uid
        # nothing selected: a relative URL has no base
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (URL " + url + b")")
        self.assertRegex(tagged, rb"^A NO \[BADURL ;UID=\d+/;SECTION=1\] ")
        self.assertEqual(self.count(c, "INBOX"), 0)
        self.assertRegex(c.imap("S", "SELECT Src")[0], rb"^S OK")
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (URL " + url + b")")
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        c.imap("U", "UNSELECT")
        self.assertEqual(self.body(c, "INBOX", int(m.group(2))), PART1)

    def test_badurl(self):
        c = self.login("bad")
        v, uid = self.put(c, "INBOX")
        bad = [
            "/INBOX/;UID=%d" % (uid + 5),                       # no such message
            "/INBOX;UIDVALIDITY=%d/;UID=%d" % (v + 1, uid),     # another UIDVALIDITY
            "/INBOX/;UID=%d/;SECTION=9" % uid,                  # no such part
            "/INBOX/;UID=%d/;SECTION=1.HEADER" % uid,           # part 1 is not a message
            "/INBOX/;UID=%d/;SECTION=BOGUS" % uid,
            "/Nonexistent/;UID=1",
            "http://example.com/",
            "/INBOX/;UID=0",
        ]
        for url in bad:
            with self.subTest(url=url):
                tagged, _ = self.send(c, "A", b'APPEND INBOX CATENATE (URL "%s")' % url.encode())
                self.assertRegex(tagged, rb"^A NO \[BADURL [^\]]+\] ")
                self.assertIn(url.replace("]", "?").encode(), tagged)
        self.assertEqual(self.count(c, "INBOX"), 1)

    def test_other_users_mailbox(self):
        owner = self.login("owner")
        _, uid = self.put(owner, "INBOX")
        c = self.login("reader")
        url = b'"/Other%%20Users/owner/;UID=%d"' % uid
        # no rights at all: the mailbox does not exist for reader
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (URL " + url + b")")
        self.assertRegex(tagged, rb"^A NO \[BADURL ")
        # l without r: still not readable (FETCH's rule)
        self.assertRegex(owner.imap("A", "SETACL INBOX reader l")[0], rb"^A OK")
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (URL " + url + b")")
        self.assertRegex(tagged, rb"^A NO \[BADURL ")
        self.assertEqual(self.count(c, "INBOX"), 0)
        self.assertRegex(owner.imap("A", "SETACL INBOX reader lr")[0], rb"^A OK")
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (URL " + url + b")")
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        self.assertEqual(self.body(c, "INBOX", int(m.group(2))), MSG)
        # appending needs i on the target, as for APPEND
        tagged, _ = self.send(c, "A", b'APPEND "Other Users/owner" CATENATE (URL ' + url + b")")
        self.assertRegex(tagged, rb"^A NO ")

    def test_admin_reads_and_appends_anywhere(self):
        owner = self.login("owner2")
        _, uid = self.put(owner, "INBOX")
        self.assertEqual(self.count(owner, "INBOX"), 1)
        url = b'"/Other%%20Users/owner2/;UID=%d/;SECTION=1"' % uid
        # no rights: another user gets BADURL and nothing is appended
        c = self.login("reader2")
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (URL " + url + b")")
        self.assertRegex(tagged, rb"^A NO \[BADURL /Other%20Users/owner2/;UID=\d+/;SECTION=1\] ")
        tagged, _ = self.send(c, "A", b'APPEND "Other Users/owner2" CATENATE (TEXT ' + lit(MSG) + b")")
        self.assertRegex(tagged, rb"^A NO \[TRYCREATE\] ")
        self.assertEqual(self.count(c, "INBOX"), 0)
        # an administrator has every right (imapd(8)): reads owner2's part by URL and
        # appends to owner2's INBOX
        boss = self.login("boss")
        tagged, _ = self.send(boss, "A", b"APPEND INBOX CATENATE (URL " + url + b")")
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        self.assertEqual(self.body(boss, "INBOX", int(m.group(2))), PART1)
        tagged, _ = self.send(boss, "A", b'APPEND "Other Users/owner2" CATENATE (URL ' + url +
                              b" TEXT " + lit(b"\r\n-- added by boss") + b")")
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        self.assertEqual(self.count(owner, "INBOX"), 2)
        self.assertEqual(self.body(owner, "INBOX", int(m.group(2))),
                         PART1 + b"\r\n-- added by boss")

    def test_multiappend_all_or_nothing(self):
        c = self.login("multi")
        _, uid = self.put(c, "INBOX")
        good = b'CATENATE (URL "/INBOX/;UID=%d/;SECTION=1")' % uid
        bad = b'CATENATE (TEXT ' + lit(b"x") + b' URL "/INBOX/;UID=%d")' % (uid + 9)
        tagged, _ = self.send(c, "A", b"APPEND INBOX " + lit(MSG) + b" " + good + b" " + bad)
        self.assertRegex(tagged, rb"^A NO \[BADURL /INBOX/;UID=\d+\] ")
        self.assertEqual(self.count(c, "INBOX"), 1)
        tagged, _ = self.send(c, "A", b"APPEND INBOX " + lit(MSG) + b" (\\Flagged) " + good)
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        self.assertEqual(m.group(2), b"%d:%d" % (uid + 1, uid + 2))
        self.assertEqual(self.body(c, "INBOX", uid + 2), PART1)

    def test_toobig(self):
        c = self.login("big")
        big = HEADER + b"x" * 3000 + b"\r\n"
        _, uid = self.put(c, "INBOX", big)
        url = b' URL "/INBOX/;UID=%d"' % uid
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (" + url[1:] + url + b")")
        self.assertRegex(tagged, rb"^A OK")
        tagged, _ = self.send(c, "A", b"APPEND INBOX CATENATE (" + url[1:] + url + url + b")")
        self.assertRegex(tagged, rb"^A NO \[TOOBIG\] ")
        self.assertEqual(self.count(c, "INBOX"), 2)

    def test_bad_syntax(self):
        c = self.login("syntax")
        for raw in [b"APPEND INBOX CATENATE ()", b'APPEND INBOX CATENATE (FOO "x")',
                    b'APPEND INBOX CATENATE (URL)', b'APPEND INBOX CATENATE (TEXT "x")',
                    b"APPEND INBOX CATENATE (URL NIL)", b"APPEND INBOX CATENATE"]:
            with self.subTest(raw=raw):
                tagged, _ = self.send(c, "B", raw)
                self.assertRegex(tagged, rb"^B BAD ")
        tagged, _ = self.send(c, "B", b"APPEND INBOX CATENATE (TEXT " + lit(b"") + b")")
        self.assertRegex(tagged, rb"^B NO ")
        tagged, _ = self.send(c, "B", b'APPEND Nowhere CATENATE (TEXT ' + lit(b"x") + b")")
        self.assertRegex(tagged, rb"^B NO \[TRYCREATE\]")
        self.assertEqual(self.count(c, "INBOX"), 0)


if __name__ == "__main__":
    main()
