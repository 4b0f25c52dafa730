"""test_imap_search.py: SEARCH and UID SEARCH end to end (RFC 3501 sections 6.4.4, 6.4.8,
7.2.5): every search key, OR/NOT/parentheses, sequence and UID sets, dates, sizes, header keys
on RFC 2047 encoded words, BODY/TEXT on quoted-printable and base64 parts in ISO-8859-1 and
UTF-8 and inside nested multiparts, CHARSET UTF-8 with a literal, BADCHARSET, syntax errors,
and no EXPUNGE response during SEARCH."""
import imaplib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main  # noqa: E402


def crlf(s):
    return s.replace("\n", "\r\n").encode("utf-8") if isinstance(s, str) else s


M1 = crlf("""Date: Fri, 01 Mar 2024 08:00:00 -0500
From: "Dana Okafor" <dana.okafor@example.net>
To: fred@example.com,
 joe@example.com
Cc: carol@example.org
Subject: Quarterly report: sales
Message-ID: <1@example.net>

Hello world, the quuxwobbleflarn is here.
""")

M2 = crlf("""Date: 2 Mar 2024 23:30:00 +0900
From: =?ISO-8859-1?Q?Andr=E9_M=FCller?= <andre@example.fr>
To: fred@example.com
Bcc: boss@example.com
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
MIME-Version: 1.0
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 cr=E8me and a soft line bre=
akword here.
""")

M3 = crlf("""From: Zoe <zoe@example.org>
To: team@example.org
Subject: =?utf-8?B?w5xiZXJzaWNodA==?= quarterly
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble zzpreamble
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: base64

w5xuw69jw7Zkw6kgYm9keSB3aXRoIG5lZWRsZSB6ZWJyYQ0K
--inner
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p>html only giraffe =C3=A9l=C3=A8ve</p>
--inner--
--outer
Content-Type: application/octet-stream; name="x.bin"
Content-Transfer-Encoding: base64

c2VjcmV0d29yZA==
--outer
Content-Type: message/rfc822

From: inner@example.com
Subject: inner subject

innerword inside
--outer--
""")

M4 = crlf("""Date: Sun, 31 Dec 23 10:00:00 GMT
From: Fred <fred@example.com>
To: dana.okafor@example.net
Subject: plain words
X-Custom: Hello There
Content-Type: text/plain; charset=utf-8

R\u00e9sum\u00e9 and \u041f\u0440\u0438\u0432\u0435\u0442 world
""")

M5 = crlf("Subject: big one, no date\n\n" + ("padding line of text\n" * 800))

# (message, flags, internal date); internal dates at noon UTC so the day is the same in any
# server time zone within +-11 hours.
MSGS = [
    (M1, r"(\Seen)", "01-Mar-2024 12:00:00 +0000"),
    (M2, r"(\Answered \Flagged $Work)", "02-Mar-2024 12:00:00 +0000"),
    (M3, r"(\Deleted \Draft Urgent)", "03-Mar-2024 12:00:00 +0000"),
    (M4, r"(\Seen \Answered $Work Urgent)", "29-Feb-2024 12:00:00 +0000"),
    (M5, r"()", "11-Mar-2024 12:00:00 +0000"),
]


# SEARCH needs only imapd: the other services stay out so this test does not depend on them.
IMAP_ONLY = [("imap", "imapd", "starttls", False)]


class Search(SharedCofferTestCase):
    coffer_kwargs = {"services": IMAP_ONLY,
                     "global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("fred", "secret")
        m = cls.coffer.imap()
        try:
            m.login("fred", "secret")
            m.create("Search")
            for data, flags, date in MSGS:
                typ, dat = m.append("Search", flags, '"%s"' % date, data)
                assert typ == "OK", dat
            cls.uids = []
            m.select("Search", readonly=True)
            typ, dat = m.fetch("1:*", "(UID)")
            cls.uids = [int(x.split(b"UID ")[1].rstrip(b")")) for x in dat]
        finally:
            m.logout()
        # the first read-write session claims \Recent for everything
        cls.m = cls.coffer.imap()
        cls.m.login("fred", "secret")
        typ, _ = cls.m.select("Search")
        assert typ == "OK"

    @classmethod
    def tearDownClass(cls):
        try:
            cls.m.logout()
        except Exception:
            pass
        super().tearDownClass()

    def search(self, *crit, uid=False, charset=None):
        if uid:
            typ, dat = self.m.uid("SEARCH", *(("CHARSET", charset) if charset else ()), *crit)
        else:
            typ, dat = self.m.search(charset, *crit)
        self.assertEqual(typ, "OK", (crit, dat))
        return [int(x) for x in b" ".join(d for d in dat if d).split()]

    def check(self, query, want):
        got = self.search(query)
        self.assertEqual(got, want, query)
        # UID SEARCH gives the same messages by UID
        got = self.search(query, uid=True)
        self.assertEqual(got, [self.uids[i - 1] for i in want], "UID SEARCH " + query)

    def test_flags(self):
        cases = [
            ("ALL", [1, 2, 3, 4, 5]),
            ("ANSWERED", [2, 4]), ("UNANSWERED", [1, 3, 5]),
            ("DELETED", [3]), ("UNDELETED", [1, 2, 4, 5]),
            ("DRAFT", [3]), ("UNDRAFT", [1, 2, 4, 5]),
            ("FLAGGED", [2]), ("UNFLAGGED", [1, 3, 4, 5]),
            ("SEEN", [1, 4]), ("UNSEEN", [2, 3, 5]),
            ("RECENT", [1, 2, 3, 4, 5]), ("NEW", [2, 3, 5]), ("OLD", []),
            ("KEYWORD $Work", [2, 4]), ("KEYWORD Urgent", [3, 4]),
            ("UNKEYWORD Urgent", [1, 2, 5]), ("KEYWORD $Nothing", []),
            ("UNKEYWORD $Nothing", [1, 2, 3, 4, 5]),
        ]
        for q, want in cases:
            with self.subTest(q=q):
                self.check(q, want)

    def test_recent_in_second_session(self):
        m2 = self.coffer.imap()
        try:
            m2.login("fred", "secret")
            m2.select("Search", readonly=True)
            typ, dat = m2.search(None, "RECENT")
            self.assertEqual(dat, [b""])
            typ, dat = m2.search(None, "OLD")
            self.assertEqual(dat, [b"1 2 3 4 5"])
        finally:
            m2.logout()

    def test_sets_sizes_dates(self):
        u = self.uids
        cases = [
            ("1:3", [1, 2, 3]), ("2,4:*", [2, 4, 5]), ("*", [5]),
            ("UID %d,%d:%d" % (u[1], u[3], u[4]), [2, 4, 5]),
            ("UID %d:*" % (u[4] + 100), [5]),
            ("LARGER %d" % len(M5), []), ("LARGER %d" % (len(M5) - 1), [5]),
            ("SMALLER %d" % len(M1), [m for m in range(1, 6) if len(MSGS[m - 1][0]) < len(M1)]),
            ("BEFORE 1-Mar-2024", [4]), ("ON 1-Mar-2024", [1]), ("ON 2-MAR-2024", [2]),
            ("SINCE 2-Mar-2024", [2, 3, 5]),
            ("SENTBEFORE 1-Mar-2024", [4]), ("SENTON 1-Mar-2024", [1]),
            ("SENTON 2-Mar-2024", [2]), ("SENTSINCE 3-Mar-2024", [3, 5]),
            ('SINCE "1-Mar-2024" BEFORE 3-Mar-2024', [1, 2]),
        ]
        for q, want in cases:
            with self.subTest(q=q):
                self.check(q, want)

    def test_headers(self):
        cases = [
            ("FROM dana.okafor@example.net", [1]), ('FROM "Dana Okafor"', [1]),
            ('FROM "dana okafor"', [1]), ("TO dana.okafor", [4]), ("TO joe@example.com", [1]),
            ("CC carol", [1]), ("BCC boss", [2]), ("SUBJECT quarterly", [1, 3]),
            ("SUBJECT QUARTERLY", [1, 3]), ('HEADER X-Custom "there"', [4]),
            ('HEADER x-custom ""', [4]), ("HEADER Message-ID example.net", [1]),
            ('SUBJECT ""', [1, 2, 3, 4, 5]),
        ]
        for q, want in cases:
            with self.subTest(q=q):
                self.check(q, want)

    def test_body_and_text(self):
        cases = [
            ("BODY quuxwobbleflarn", [1]), ("BODY QUUXWOBBLEFLARN", [1]),
            ("BODY breakword", [2]),            # across a QP soft line break
            ("BODY zebra", [3]),                # base64 inside multipart/alternative
            ("BODY giraffe", [3]),              # the html part
            ("BODY secretword", []),            # an attachment is not text
            ("BODY innerword", [3]),            # inside message/rfc822
            ("BODY zzpreamble", []),
            ("BODY quarterly", []),             # only in subjects
            ("TEXT quarterly", [1, 3]),
            ("TEXT quuxwobbleflarn", [1]),
            ('TEXT "subject: quarterly"', [1]),
            ("BODY padding", [5]),
        ]
        for q, want in cases:
            with self.subTest(q=q):
                self.check(q, want)

    def test_logic(self):
        cases = [
            ("NOT SEEN", [2, 3, 5]), ("NOT NOT SEEN", [1, 4]),
            ("OR SEEN FLAGGED", [1, 2, 4]), ("OR (SEEN ANSWERED) DELETED", [3, 4]),
            ("SEEN ANSWERED", [4]), ("(SEEN ANSWERED)", [4]),
            ("(OR FROM dana TO dana) NOT 4", [1]),
            ("OR BODY zebra OR BODY breakword FROM fred", [2, 3, 4]),
            ("NOT (OR 1 2)", [3, 4, 5]), ("((((SEEN))))", [1, 4]),
            ("UID 1:* NOT DELETED SUBJECT quarterly", [1]),
        ]
        for q, want in cases:
            with self.subTest(q=q):
                self.check(q, want)

    def test_charset_utf8_literals(self):
        def lit(crit, text, charset="UTF-8", uid=False):
            self.m.literal = text.encode("utf-8")
            return self.search(crit, charset=charset, uid=uid)
        self.assertEqual(lit("SUBJECT", "grüße"), [2])
        self.assertEqual(lit("SUBJECT", "AUS KÖLN"), [2])
        self.assertEqual(lit("SUBJECT", "übersicht"), [3])
        self.assertEqual(lit("FROM", "müller"), [2])
        self.assertEqual(lit("BODY", "CAFÉ"), [2])          # QP, ISO-8859-1
        self.assertEqual(lit("BODY", "crème"), [2])
        self.assertEqual(lit("BODY", "ünïcödé"), [3])       # base64 UTF-8
        self.assertEqual(lit("BODY", "élève"), [3])
        self.assertEqual(lit("BODY", "привет"), [4])        # 8-bit UTF-8
        self.assertEqual(lit("TEXT", "résumé"), [4])
        self.assertEqual(lit("SUBJECT", "grüße", uid=True), [self.uids[1]])
        self.assertEqual(lit("SUBJECT", "quarterly", charset="US-ASCII"), [1, 3])

    def raw(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        tagged, _ = c.imap("l", "LOGIN fred secret")
        self.assertIn(b"OK", tagged)
        tagged, _ = c.imap("s", "EXAMINE Search")
        self.assertIn(b"OK", tagged)
        return c

    def test_wire_format_and_errors(self):
        c = self.raw()
        tagged, untagged = c.imap("a1", "SEARCH SEEN")
        self.assertEqual(untagged, [b"* SEARCH 1 4\r\n"])
        self.assertEqual(tagged, b"a1 OK SEARCH completed\r\n")
        tagged, untagged = c.imap("a2", "SEARCH KEYWORD $Nothing")
        self.assertEqual(untagged, [b"* SEARCH\r\n"])
        tagged, untagged = c.imap("a3", "uid search seen")
        self.assertEqual(untagged, [("* SEARCH %d %d\r\n" % (self.uids[0], self.uids[3])).encode()])
        self.assertRegex(tagged, rb"^a3 OK ")
        tagged, _ = c.imap("a4", "SEARCH CHARSET ISO-8859-1 SUBJECT x")
        self.assertEqual(tagged, b"a4 NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n")
        for q, why in [("SEARCH", b"Missing search key"), ("SEARCH FOO", b"Unknown search key"),
                       ("SEARCH FROM", b"Missing search string"),
                       ("SEARCH BEFORE 1-Foo-2024", b"Invalid date"),
                       ("SEARCH LARGER x", b"Invalid size"), ("SEARCH ()", b"Empty search key list"),
                       ("SEARCH UID x", b"Invalid UID set in search"),
                       ("UID SEARCH OR SEEN", b"Missing search key")]:
            tagged, untagged = c.imap("b", q)
            self.assertEqual(tagged, b"b BAD " + why + b"\r\n", q)
            self.assertEqual(untagged, [], q)
        # a synchronizing and a non-synchronizing literal in one command
        c.send(b"c1 SEARCH CHARSET UTF-8 SUBJECT {6}\r\n")
        c.expect(rb"^\+ ")
        c.send("grüß".encode() + b" BODY {6+}\r\n" + "crème".encode() + b"\r\n")
        tagged, untagged = c.read_tagged("c1")
        self.assertEqual(untagged, [b"* SEARCH 2\r\n"])
        self.assertRegex(tagged, rb"^c1 OK ")

    def test_search_needs_selected(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        c.imap("l", "LOGIN fred secret")
        tagged, _ = c.imap("a", "SEARCH ALL")
        self.assertEqual(tagged, b"a BAD No mailbox selected\r\n")


class SearchExpunge(SharedCofferTestCase):
    """RFC 3501 section 7.4.1: no EXPUNGE while answering SEARCH; messages expunged by another
    session but still numbered here match nothing (RFC 2180 section 4.3)."""
    coffer_kwargs = {"services": IMAP_ONLY,
                     "global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    def test_no_expunge_during_search(self):
        self.coffer.add_user("joe", "pw")
        m = self.coffer.imap()
        m.login("joe", "pw")
        m.create("Box")
        for i in range(4):
            m.append("Box", None, None, crlf("Subject: msg %d\n\nbody %d\n" % (i, i)))
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        c.imap("l", "LOGIN joe pw")
        c.imap("s", "SELECT Box")
        # another session expunges message 2
        m.select("Box")
        m.store("2", "+FLAGS", r"(\Deleted)")
        m.expunge()
        m.logout()
        tagged, untagged = c.imap("a1", "SEARCH ALL")
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        self.assertIn(b"* SEARCH 1 3 4\r\n", untagged)
        self.assertRegex(tagged, rb"^a1 OK ")
        tagged, untagged = c.imap("a2", "SEARCH BODY body")
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        self.assertIn(b"* SEARCH 1 3 4\r\n", untagged)
        # NOOP delivers it; numbers then close up
        tagged, untagged = c.imap("a3", "NOOP")
        self.assertIn(b"* 2 EXPUNGE\r\n", untagged)
        tagged, untagged = c.imap("a4", "SEARCH ALL")
        self.assertIn(b"* SEARCH 1 2 3\r\n", untagged)


if __name__ == "__main__":
    main()
