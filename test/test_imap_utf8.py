"""test_imap_utf8.py: UTF8=ACCEPT (RFC 6855) end to end, from the RFC's text: the capability,
ENABLE UTF8=ACCEPT (section 3; alone and beside IMAP4rev2), UTF-8 mailbox names in quoted
strings and literals after it (modified UTF-7 for sessions that did not enable it, both ways),
APPEND with the UTF8 data item (section 4: literal8 in parentheses; BAD before ENABLE, BAD for a
plain literal or no parentheses, an empty message refused, several in one MULTIAPPEND, flags
and date before it), SEARCH with a CHARSET refused with BAD after ENABLE (section 3) and UTF-8
search strings without one, \\Recent and SEARCH responses kept (UTF8=ACCEPT is not IMAP4rev2),
what a session without UTF8=ACCEPT sees of a message with UTF-8 header fields (section 7:
ENVELOPE and BODYSTRUCTURE strings as RFC 2047 encoded-words; the raw header as stored; the
commands succeed), and rights: another user's
mailbox without rights, without the i right, and an administrator."""
import base64
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}

SUBJECT = "Gr\u00fc\u00dfe aus K\u00f6ln"
UMSG = ("From: J\u00f6rg <j\u00f6rg@b\u00fccher.example>\r\nTo: fred@example.com\r\n"
        "Subject: %s\r\nMessage-ID: <u8@example.com>\r\n\r\nHallo!\r\n" % SUBJECT).encode()
AMSG = b"From: a@example.com\r\nSubject: plain\r\n\r\nascii\r\n"


def utf8_item(m):
    """The UTF8 APPEND data item around message bytes m (non-synchronizing literal8)."""
    return b"UTF8 (~{%d+}\r\n" % len(m) + m + b")"


class Utf8Accept(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def utf8(self, user="fred"):
        c = self.conn(user)
        self.assertIn(b"* ENABLED UTF8=ACCEPT\r\n", self.ok(c, "ENABLE UTF8=ACCEPT", "e"))
        return c

    def raw(self, c, tag, data):
        """Send tag + data (bytes) + CRLF; the (tagged, untagged) answer."""
        c.send(tag.encode() + b" " + data + b"\r\n")
        return c.read_tagged(tag)

    def joined(self, untagged):
        return b"".join(untagged)

    def test_capability_and_enable(self):
        c = self.conn("fred")
        caps = self.joined(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" UTF8=ACCEPT", caps)
        self.assertIn(b" ENABLE", caps)          # section 3: UTF8=ACCEPT implies ENABLE
        self.assertIn(b"* ENABLED UTF8=ACCEPT\r\n", self.ok(c, "ENABLE utf8=accept"))
        self.assertIn(b"* ENABLED\r\n", self.ok(c, "ENABLE UTF8=ACCEPT"))
        # beside IMAP4rev2: only the newly enabled one is listed
        self.assertIn(b"* ENABLED IMAP4rev2\r\n", self.ok(c, "ENABLE UTF8=ACCEPT IMAP4rev2"))
        d = self.conn("fred")
        self.assertIn(b"* ENABLED IMAP4rev2 UTF8=ACCEPT\r\n",
                      self.ok(d, "ENABLE IMAP4rev2 UTF8=ACCEPT UTF8=ONLY"))

    def test_names(self):
        c = self.utf8()
        self.ok(c, 'CREATE "Stra\u00dfe"')
        self.ok(c, "CREATE {6+}\r\n\u00c4pfel")
        lst = self.joined(self.ok(c, 'LIST "" "*"'))
        self.assertIn("Stra\u00dfe".encode(), lst)
        self.assertIn("\u00c4pfel".encode(), lst)
        d = self.conn("fred")
        lst1 = self.joined(self.ok(d, 'LIST "" "*"'))
        self.assertIn(b'"Stra&AN8-e"', lst1)
        self.assertIn(b'"&AMQ-pfel"', lst1)
        # a name made by the rev1 session in modified UTF-7, seen in UTF-8
        self.ok(d, 'CREATE "Caf&AOk-"')
        self.assertIn("Caf\u00e9".encode(), self.joined(self.ok(c, 'LIST "" "Caf*"')))
        self.no(c, 'SELECT "Caf&AOk-"', "NONEXISTENT")
        self.ok(c, 'SELECT "Caf\u00e9"')
        # UTF8=ACCEPT alone keeps \Recent and the SEARCH response
        self.append_plain(d, '"Caf&AOk-"', AMSG)
        untagged = self.joined(self.ok(c, "NOOP"))
        self.assertIn(b"* 1 EXISTS", untagged)
        self.assertIn(b"* 1 RECENT", untagged)
        self.assertIn(b"\\Recent", self.joined(self.ok(c, "FETCH 1 FLAGS")))
        self.assertIn(b"* SEARCH 1\r\n", self.ok(c, "SEARCH ALL"))

    def append_plain(self, c, box, m):
        return self.raw(c, "p", b"APPEND " + box.encode() + b" {%d+}\r\n" % len(m) + m)

    def test_append_utf8_item(self):
        c = self.conn("fred")
        self.ok(c, "CREATE u8box")
        # section 4: only after ENABLE UTF8=ACCEPT
        tagged, _ = self.raw(c, "a", b"APPEND u8box " + utf8_item(UMSG))
        self.assertRegex(tagged, rb"^a BAD ")
        self.assertIn(b"ENABLE UTF8=ACCEPT", tagged)
        self.ok(c, "ENABLE UTF8=ACCEPT")
        tagged, _ = self.raw(c, "a", b"APPEND u8box " + utf8_item(UMSG))
        self.assertRegex(tagged, rb"^a OK \[APPENDUID \d+ \d+\]")
        # flags and date before it; two messages in one MULTIAPPEND
        tagged, _ = self.raw(c, "b", b'APPEND u8box (\\Seen) "01-Feb-2021 10:00:00 +0100" ' +
                             utf8_item(UMSG) + b" " + utf8_item(AMSG))
        self.assertRegex(tagged, rb"^b OK \[APPENDUID \d+ \d+:\d+\]")
        # malformed: a plain literal, no parentheses, two literals, nothing, an empty message
        for bad in (b"UTF8 ({%d+}\r\n" % len(AMSG) + AMSG + b")",
                    b"UTF8 ~{%d+}\r\n" % len(AMSG) + AMSG,
                    b"UTF8 (~{%d+}\r\n" % len(AMSG) + AMSG + b" ~{1+}\r\nx)",
                    b"UTF8 ()", b"UTF8"):
            with self.subTest(bad=bad[:20]):
                tagged, _ = self.raw(c, "x", b"APPEND u8box " + bad)
                self.assertRegex(tagged, rb"^x BAD ")
        tagged, _ = self.raw(c, "y", b"APPEND u8box UTF8 (~{0+}\r\n)")
        self.assertRegex(tagged, rb"^y NO \[CANNOT\]")
        # a plain literal with UTF-8 headers is taken too
        self.assertRegex(self.append_plain(c, "u8box", UMSG)[0], rb"^p OK ")
        untagged = self.joined(self.ok(c, "STATUS u8box (MESSAGES)"))
        self.assertIn(b"(MESSAGES 4)", untagged)
        self.ok(c, "SELECT u8box")
        got = self.joined(self.ok(c, "FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        self.assertIn(SUBJECT.encode(), got)
        self.assertIn("j\u00f6rg".encode(), got)
        got = self.joined(self.ok(c, "FETCH 2 (FLAGS INTERNALDATE)"))
        self.assertIn(b"\\Seen", got)
        self.assertIn(b'" 1-Feb-2021 09:00:00 +0000"', got)   # kept in UTC
        self.assertIn(b"ascii", self.joined(self.ok(c, "FETCH 3 BODY.PEEK[TEXT]")))

    def test_search(self):
        c = self.conn("fred")
        self.ok(c, "CREATE u8search")
        self.append_plain(c, "u8search", UMSG)
        self.append_plain(c, "u8search", AMSG)
        self.ok(c, "SELECT u8search")
        # before ENABLE: CHARSET UTF-8 with the string in a literal, as RFC 3501 has it
        s = "K\u00f6ln".encode()
        tagged, untagged = self.raw(c, "s", b"SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(s) + s)
        self.assertRegex(tagged, rb"^s OK")
        self.assertIn(b"* SEARCH 1\r\n", untagged)
        self.ok(c, "ENABLE UTF8=ACCEPT")
        # section 3: after ENABLE a CHARSET is a BAD, in every form of SEARCH
        for text in ("SEARCH CHARSET UTF-8 SUBJECT plain", "UID SEARCH CHARSET UTF-8 ALL",
                     "SEARCH RETURN (COUNT) CHARSET US-ASCII ALL",
                     "SEARCH charset utf-8 ALL"):
            with self.subTest(text=text):
                self.assertRegex(c.imap("b", text)[0], rb"^b BAD ")
        # UTF-8 in a quoted string, no CHARSET
        tagged, untagged = self.raw(c, "q", b'SEARCH SUBJECT "' + s + b'"')
        self.assertRegex(tagged, rb"^q OK")
        self.assertIn(b"* SEARCH 1\r\n", untagged)
        tagged, untagged = self.raw(c, "q", b'SEARCH FROM "' + "j\u00f6rg".encode() + b'"')
        self.assertIn(b"* SEARCH 1\r\n", untagged)
        self.assertIn(b"* SEARCH 2\r\n", self.ok(c, "SEARCH SUBJECT plain"))

    def test_downconversion(self):
        """A session without UTF8=ACCEPT fetching a message with UTF-8 header fields (section
        7, RFC 6857 section 3): ENVELOPE and BODYSTRUCTURE strings come as RFC 2047
        encoded-words, never as 8-bit bytes; the raw header is the bytes as stored; the
        commands succeed. A UTF8=ACCEPT or IMAP4rev2 session gets the UTF-8 itself."""
        c = self.utf8()
        self.ok(c, "CREATE u8down")
        self.assertRegex(self.raw(c, "a", b"APPEND u8down " + utf8_item(UMSG))[0], rb"^a OK")
        d = self.conn("fred")
        self.ok(d, "SELECT u8down")
        for item in ("ENVELOPE", "BODYSTRUCTURE", "BODY", "BODY.PEEK[HEADER]", "RFC822.SIZE",
                     "BINARY.PEEK[1]", "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"):
            with self.subTest(item=item):
                tagged, untagged = d.imap("f", "FETCH 1 %s" % item)
                self.assertRegex(tagged, rb"^f OK")
        text = self.joined(d.imap("f", "FETCH 1 (ENVELOPE BODYSTRUCTURE)")[1])
        self.assertFalse(any(b >= 0x80 for b in text), text)
        words = re.findall(rb"=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?=", text)
        decoded = [base64.b64decode(w).decode() for w in words]
        self.assertIn(SUBJECT, decoded)
        self.assertIn("J\u00f6rg", decoded)
        # the raw header is the stored bytes
        self.assertIn(SUBJECT.encode(), self.joined(
            self.ok(d, "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")))
        # the sessions that enabled UTF-8 get it unchanged
        for mode in ("UTF8=ACCEPT", "IMAP4rev2"):
            with self.subTest(mode=mode):
                e = self.conn("fred")
                self.ok(e, "ENABLE " + mode)
                self.ok(e, "EXAMINE u8down")
                text = self.joined(self.ok(e, "FETCH 1 ENVELOPE"))
                self.assertIn(SUBJECT.encode(), text)
                self.assertNotIn(b"=?UTF-8?", text)

    def test_rights(self):
        j = self.conn("joe")
        self.ok(j, 'CREATE "Kl&AOQ-ger"')           # Kläger
        other = "Other Users/joe/Kl\u00e4ger"
        c = self.utf8()
        # no rights: as if it did not exist
        tagged, _ = self.raw(c, "a", b'APPEND "' + other.encode() + b'" ' + utf8_item(AMSG))
        self.assertRegex(tagged, rb"^a NO \[TRYCREATE\]")
        self.no(c, 'STATUS "%s" (MESSAGES)' % other, "NONEXISTENT")
        # l and r but not i: no appending
        self.ok(j, 'SETACL "Kl&AOQ-ger" fred lr')
        tagged, _ = self.raw(c, "a", b'APPEND "' + other.encode() + b'" ' + utf8_item(AMSG))
        self.assertRegex(tagged, rb"^a NO \[NOPERM\]")
        # i granted: it works
        self.ok(j, 'SETACL "Kl&AOQ-ger" fred lri')
        tagged, _ = self.raw(c, "a", b'APPEND "' + other.encode() + b'" ' + utf8_item(AMSG))
        self.assertRegex(tagged, rb"^a OK ")
        # an administrator, in UTF-8 after ENABLE
        b = self.utf8("boss")
        tagged, _ = self.raw(b, "a", b'APPEND "' + other.encode() + b'" ' + utf8_item(UMSG))
        self.assertRegex(tagged, rb"^a OK ")
        self.assertIn(b"MESSAGES 2", self.joined(self.ok(j, 'STATUS "Kl&AOQ-ger" (MESSAGES)')))


if __name__ == "__main__":
    main()
