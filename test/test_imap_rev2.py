"""test_imap_rev2.py: IMAP4rev2 (RFC 9051) chosen per session with ENABLE IMAP4rev2, from the
RFC's text and examples: the capability beside IMAP4rev1, ENABLE (once, any case, not before
login), SELECT without RECENT and UNSEEN but with LIST (section 6.3.2) and [CLOSED] (section
7.1), no \\Recent in FLAGS, SEARCH and UID SEARCH answered by ESEARCH only (section 6.4.4, with
the tag correlator; nothing matching: no ALL), STATUS with DELETED and SIZE and without RECENT
(BAD, also in LIST RETURN (STATUS)), mailbox names in UTF-8 in every command that takes or shows
one (no modified UTF-7 either way; U+2028 refused), UID EXPUNGE, UID in unsolicited FETCH,
DELETE of a \\Noselect level with [HASCHILDREN], APPEND over the limit with NO [TOOBIG], NOTIFY's
OLDNAME in UTF-8, NAMESPACE, LSUB, UNSELECT, CLOSE, BINARY; a rev1 and a rev2 session on one
mailbox at once (\\Recent for the rev1 session only, which keeps it even when the rev2 session
selected first; names in modified UTF-7 vs UTF-8); rights: another user's mailbox without rights,
with l only, and an administrator."""
import base64
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n"
       b"Message-ID: <r2-%d@example.com>\r\n\r\nbody %d\r\n")

USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}

ENTWURF = "Entw\u00fcrfe"                 # modified UTF-7: Entw&APw-rfe
JAPAN = "\u65e5\u672c\u8a9e"              # modified UTF-7: &ZeVnLIqe-
SCAN = 4.0                                 # NOTIFY rescans every 2 s


def msg(i, subject=b"hello"):
    return MSG % (subject, i, i)


def utf7(name):
    """Modified UTF-7 (RFC 3501 section 5.1.3) of a str, for the expected rev1 names."""
    out, run = [], []

    def flush():
        if run:
            b = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()
    for ch in name:
        if 0x20 <= ord(ch) < 0x7f:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def lit(s):
    """A name as a non-synchronizing literal (LITERAL+)."""
    b = s.encode()
    return "{%d+}\r\n%s" % (len(b), s)


class Rev2(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss", "max_literal": "100K"}}

    def rev2(self, user="fred"):
        c = self.conn(user)
        untagged = self.ok(c, "ENABLE IMAP4rev2", "e")
        self.assertIn(b"* ENABLED IMAP4rev2\r\n", untagged)
        return c

    def append(self, c, box, i, subject=b"hello"):
        m = msg(i, subject)
        self.ok(c, "APPEND %s {%d+}\r\n%s" % (box, len(m), m.decode()))

    def joined(self, untagged):
        return b"".join(untagged)

    # ---- capability and ENABLE

    def test_capability_and_enable(self):
        c = self.conn("fred")
        caps = self.joined(c.imap("c", "CAPABILITY")[1])
        self.assertRegex(caps, rb"^\* CAPABILITY IMAP4rev1 .*\bIMAP4rev2\b")
        self.assertIn(b" UTF8=ACCEPT", caps)
        # section 6.3.1: ENABLED lists what this command turned on, once, in any case
        self.assertIn(b"* ENABLED IMAP4rev2\r\n", self.ok(c, "ENABLE imap4REV2"))
        self.assertIn(b"* ENABLED\r\n", self.ok(c, "ENABLE IMAP4rev2"))
        # the capability list does not change
        self.assertEqual(self.joined(c.imap("c", "CAPABILITY")[1]), caps)
        # not before login
        d = self.coffer.connect("imap")
        self.addCleanup(d.close)
        d.expect(rb"^\* OK")
        self.assertRegex(d.imap("e", "ENABLE IMAP4rev2")[0], rb"^e BAD ")

    def test_rev1_untouched(self):
        c = self.conn("fred")
        self.ok(c, "CREATE r1box")
        self.append(c, "r1box", 1)
        untagged = self.joined(self.ok(c, "SELECT r1box"))
        self.assertIn(b"* 1 RECENT", untagged)
        self.assertNotIn(b"* LIST", untagged)
        self.assertRegex(self.joined(self.ok(c, "FETCH 1 FLAGS")), rb"\\Recent")
        self.assertIn(b"* SEARCH 1\r\n", self.ok(c, "SEARCH ALL"))
        self.assertRegex(self.joined(self.ok(c, "STATUS INBOX (RECENT)")), rb"RECENT \d+")
        self.ok(c, 'CREATE "%s"' % utf7("Alt" + ENTWURF))
        lst = self.joined(self.ok(c, 'LIST "" "Alt*"'))
        self.assertIn(b'"AltEntw&APw-rfe"', lst)
        # 8-bit is no modified UTF-7: a rev1 session cannot name it so
        self.assertRegex(c.imap("t", "SELECT %s" % lit("Alt" + ENTWURF))[0], rb"^t NO ")
        # DELETE of a \Noselect level: NONEXISTENT as before
        self.ok(c, "CREATE r1p/q")
        self.ok(c, "DELETE r1p")
        self.no(c, "DELETE r1p", "NONEXISTENT")

    # ---- SELECT

    def test_select(self):
        c = self.conn("fred")
        self.ok(c, "CREATE sel2")
        for i in range(3):
            self.append(c, "sel2", i)
        c = self.rev2()
        untagged = self.joined(self.ok(c, "SELECT sel2", "s1"))
        self.assertIn(b"* 3 EXISTS", untagged)
        self.assertNotIn(b"RECENT", untagged)
        self.assertNotIn(b"[UNSEEN", untagged)
        self.assertIn(b"[UIDVALIDITY ", untagged)
        self.assertIn(b"[UIDNEXT ", untagged)
        self.assertIn(b"* LIST () \"/\" \"sel2\"", untagged)
        self.assertNotIn(b"\\Recent", untagged)
        self.assertNotIn(b"\\Recent", self.joined(self.ok(c, "FETCH 1:* FLAGS")))
        # the keys of \Recent: nothing is recent for this session
        self.assertIn(b'* ESEARCH (TAG "r1")\r\n', self.ok(c, "SEARCH RECENT", "r1"))
        self.assertIn(b'* ESEARCH (TAG "r2")\r\n', self.ok(c, "SEARCH NEW", "r2"))
        self.assertIn(b'* ESEARCH (TAG "r3") ALL 1:3\r\n', self.ok(c, "SEARCH OLD", "r3"))
        # SELECT of INBOX in any case: the LIST names it as the server knows it
        untagged = self.joined(self.ok(c, "EXAMINE inbox", "s2"))
        # section 7.1: [CLOSED] ends the responses of the mailbox left behind
        self.assertRegex(untagged, rb"^\* OK \[CLOSED\]")
        self.assertIn(b'* LIST () "/" "INBOX"', untagged)
        self.ok(c, "UNSELECT")
        self.assertNotIn(b"[CLOSED]", self.joined(self.ok(c, "SELECT sel2")))
        self.ok(c, "CLOSE")
        self.assertRegex(c.imap("t", "FETCH 1 FLAGS")[0], rb"^t BAD ")

    # ---- SEARCH

    def test_search_esearch_only(self):
        c = self.conn("fred")
        self.ok(c, "CREATE srch2")
        for i in range(1, 5):
            self.append(c, "srch2", i, b"odd" if i % 2 else b"even")
        c = self.rev2()
        self.ok(c, "SELECT srch2")
        uids = [int(x) for x in re.findall(rb"UID (\d+)", self.joined(self.ok(c, "FETCH 1:* UID")))]

        def esearch(text, tag):
            untagged = self.ok(c, text, tag)
            self.assertFalse([u for u in untagged if u.startswith(b"* SEARCH")], untagged)
            lines = [u.rstrip(b"\r\n").decode() for u in untagged if u.startswith(b"* ESEARCH")]
            self.assertLessEqual(len(lines), 1, untagged)
            return lines[0] if lines else None

        self.assertEqual(esearch("SEARCH SUBJECT odd", "A1"), '* ESEARCH (TAG "A1") ALL 1,3')
        self.assertEqual(esearch("UID SEARCH SUBJECT even", "A2"),
                         '* ESEARCH (TAG "A2") UID ALL %d,%d' % (uids[1], uids[3]))
        self.assertEqual(esearch("SEARCH ALL", "A3"), '* ESEARCH (TAG "A3") ALL 1:4')
        # nothing matches: the correlator alone (section 7.3.4)
        self.assertEqual(esearch("SEARCH SUBJECT nothing", "A4"), '* ESEARCH (TAG "A4")')
        self.assertEqual(esearch("UID SEARCH SUBJECT nothing", "A5"), '* ESEARCH (TAG "A5") UID')
        self.assertEqual(esearch("SEARCH RETURN (COUNT MIN) SUBJECT odd", "A6"),
                         '* ESEARCH (TAG "A6") MIN 1 COUNT 2')
        self.assertEqual(esearch("SEARCH CHARSET UTF-8 SUBJECT odd", "A7"),
                         '* ESEARCH (TAG "A7") ALL 1,3')
        # SAVE alone: no ESEARCH at all; then "$"
        self.assertIsNone(esearch("SEARCH RETURN (SAVE) SUBJECT even", "A8"))
        self.assertEqual(esearch("SEARCH $", "A9"), '* ESEARCH (TAG "A9") ALL 2,4')
        # the rev1 session on the same mailbox still gets SEARCH
        d = self.conn("fred")
        self.ok(d, "SELECT srch2")
        self.assertIn(b"* SEARCH 1 3\r\n", self.ok(d, "SEARCH SUBJECT odd"))

    # ---- STATUS

    def test_status(self):
        c = self.rev2()
        self.ok(c, "CREATE st2")
        self.append(c, "st2", 1)
        self.append(c, "st2", 2)
        self.ok(c, "SELECT st2")
        self.ok(c, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(c, "UNSELECT")
        line = self.joined(self.ok(
            c, "STATUS st2 (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE)"))
        m = re.search(rb"\* STATUS \"?st2\"? \(MESSAGES 2 UIDNEXT \d+ UIDVALIDITY \d+ UNSEEN 2 "
                      rb"DELETED 1 SIZE (\d+)\)", line)
        self.assertTrue(m, line)
        self.assertEqual(int(m.group(1)), len(msg(1)) + len(msg(2)))
        # RECENT is gone from status-att (section 6.3.11)
        self.assertRegex(c.imap("b", "STATUS st2 (MESSAGES RECENT)")[0], rb"^b BAD ")
        self.assertRegex(c.imap("b", 'LIST "" "st2" RETURN (STATUS (RECENT))')[0], rb"^b BAD ")
        lst = self.joined(self.ok(c, 'LIST "" "st2" RETURN (STATUS (MESSAGES SIZE))'))
        self.assertRegex(lst, rb"\* STATUS \"?st2\"? \(MESSAGES 2 SIZE \d+\)")

    # ---- UTF-8 mailbox names

    def test_utf8_names(self):
        c = self.rev2()
        self.ok(c, 'CREATE "%s"' % ENTWURF)                 # UTF-8 in a quoted string
        self.ok(c, "CREATE %s" % lit(JAPAN + "/sub"))        # and in a literal, with a child
        lst = self.joined(self.ok(c, 'LIST "" "*"'))
        # UTF-8 in quoted strings (RFC 9051 QUOTED-CHAR)
        self.assertIn(b'"/" "' + ENTWURF.encode() + b'"\r\n', lst)
        self.assertIn(b'"/" "' + JAPAN.encode() + b'/sub"\r\n', lst)
        self.assertNotIn(b"&", lst)
        # patterns are UTF-8 too
        lst = self.joined(self.ok(c, 'LIST "" "Entw\u00fc*"'))
        self.assertIn(ENTWURF.encode(), lst)
        self.assertIn(b"\\HasNoChildren", lst)
        self.assertIn(b"\\HasChildren", self.joined(self.ok(c, "LIST \"\" %s" % lit(JAPAN))))
        # modified UTF-7 is not decoded any more: "&APw-" are five characters
        self.no(c, 'SELECT "Entw&APw-rfe"', "NONEXISTENT")
        self.ok(c, 'CREATE "a&-b"')
        d = self.conn("fred")                                # rev1 view of the same names
        lst1 = self.joined(self.ok(d, 'LIST "" "*"'))
        self.assertIn(utf7(ENTWURF).encode(), lst1)
        self.assertIn(utf7(JAPAN + "/sub").encode(), lst1)
        self.assertIn(b'"a&--b"', lst1)
        self.assertNotIn(ENTWURF.encode(), lst1)
        # every command that takes a name
        self.append(c, '"%s"' % ENTWURF, 1)
        self.ok(c, 'SUBSCRIBE "%s"' % ENTWURF)
        self.assertIn(ENTWURF.encode(), self.joined(self.ok(c, 'LSUB "" "*"')))
        self.assertIn(ENTWURF.encode(), self.joined(
            self.ok(c, 'LIST (SUBSCRIBED) "" "*"')))
        st = self.joined(self.ok(c, 'STATUS "%s" (MESSAGES)' % ENTWURF))
        self.assertIn(b"(MESSAGES 1)", st)
        self.assertIn(ENTWURF.encode(), st)
        sel = self.joined(self.ok(c, 'SELECT "%s"' % ENTWURF))
        self.assertIn(ENTWURF.encode(), sel)                 # in SELECT's LIST
        self.ok(c, 'COPY 1 "%s"' % (JAPAN + "/sub"))
        self.ok(c, 'MOVE 1 "a&-b"')
        self.assertIn(b"(MESSAGES 1)", self.joined(self.ok(d, 'STATUS "a&--b" (MESSAGES)')))
        self.assertIn(b"(MESSAGES 1)", self.joined(
            self.ok(d, 'STATUS "%s" (MESSAGES)' % utf7(JAPAN + "/sub"))))
        self.ok(c, "UNSELECT")
        self.ok(c, 'RENAME "%s" "%s"' % (ENTWURF, "Entw\u00fcrfe2"))
        self.assertIn(utf7("Entw\u00fcrfe2").encode(), self.joined(self.ok(d, 'LIST "" "Entw*"')))
        self.assertIn("Entw\u00fcrfe2".encode(), self.joined(
            self.ok(c, 'GETQUOTAROOT "Entw\u00fcrfe2"')))
        self.assertIn(b"Entw", self.joined(self.ok(c, 'MYRIGHTS "Entw\u00fcrfe2"')))
        # RFC 9051 section 5.1: no line or paragraph separator, no controls
        self.no(c, "CREATE %s" % lit("bad\u2028name"), "CANNOT")
        self.no(c, "CREATE %s" % lit("bad\u2029name"), "CANNOT")
        self.no(c, "CREATE %s" % lit("bad\u0085name"), "CANNOT")
        # invalid UTF-8 is no name
        c.send(b"t CREATE {3+}\r\na\xff\xfe\r\n")
        self.assertRegex(c.read_tagged("t")[0], rb"^t (NO|BAD) ")

    def test_namespace_lsub_binary_uid_expunge(self):
        c = self.rev2()
        self.assertIn(b'* NAMESPACE (("" "/"))', self.joined(self.ok(c, "NAMESPACE")))
        self.ok(c, "CREATE ue2")
        for i in range(1, 4):
            self.append(c, "ue2", i)
        self.ok(c, "SELECT ue2")
        uids = [int(x) for x in re.findall(rb"UID (\d+)", self.joined(self.ok(c, "FETCH 1:* UID")))]
        got = self.joined(self.ok(c, "FETCH 1 BINARY.PEEK[1]"))
        self.assertIn(b"body 1", got)
        self.ok(c, "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        # UID EXPUNGE removes only the named uid (RFC 4315, folded into rev2)
        untagged = self.ok(c, "UID EXPUNGE %d" % uids[1])
        self.assertIn(b"* 2 EXPUNGE\r\n", untagged)
        self.assertEqual(len([u for u in untagged if u.endswith(b"EXPUNGE\r\n")]), 1)
        self.assertIn(b"(MESSAGES 2)", self.joined(self.ok(c, "STATUS ue2 (MESSAGES)")))
        # LSUB is deprecated but answers
        self.ok(c, "SUBSCRIBE ue2")
        self.assertIn(b'* LSUB () "/" "ue2"', self.joined(self.ok(c, 'LSUB "" "ue*"')))
        # a subscribed name that is no mailbox: \NonExistent (RFC 9051 section 6.3.9)
        self.ok(c, "CREATE ue2gone")
        self.ok(c, "SUBSCRIBE ue2gone")
        self.ok(c, "DELETE ue2gone")
        lst = self.joined(self.ok(c, 'LIST (SUBSCRIBED) "" "ue2*"'))
        self.assertRegex(lst, rb'\* LIST \(\\NonExistent \\Subscribed\) "/" "ue2gone"')

    def test_unsolicited_fetch_has_uid(self):
        c = self.rev2()
        self.ok(c, "CREATE uf2")
        self.append(c, "uf2", 1)
        self.ok(c, "SELECT uf2")
        uid = int(re.search(rb"UID (\d+)", self.joined(self.ok(c, "FETCH 1 UID"))).group(1))
        d = self.conn("fred")
        self.ok(d, "SELECT uf2")
        self.ok(d, "STORE 1 +FLAGS.SILENT (\\Flagged)")
        got = self.joined(self.ok(c, "NOOP"))
        self.assertRegex(got, rb"\* 1 FETCH \(FLAGS \(\\Flagged\) UID %d\)" % uid)
        # the rev1 session gets the same change without UID, as before
        self.ok(c, "STORE 1 -FLAGS.SILENT (\\Flagged)")
        got = self.joined(self.ok(d, "NOOP"))
        # (and \\Recent: the rev2 session claimed none, so the message is recent for it)
        self.assertIn(b"* 1 FETCH (FLAGS (\\Recent))", got)

    def test_delete_haschildren(self):
        c = self.rev2()
        self.ok(c, "CREATE hc/kid")
        self.ok(c, "DELETE hc")                          # the mailbox goes, its child stays
        self.no(c, "DELETE hc", "HASCHILDREN")           # a \Noselect level with inferiors
        self.no(c, "DELETE nothing-here", "NONEXISTENT")
        # another user's \Noselect level the user cannot see: nothing revealed
        j = self.conn("joe")
        self.ok(j, "CREATE secret/kid")
        self.ok(j, "DELETE secret")
        self.no(c, 'DELETE "Other Users/joe/secret"', "NONEXISTENT")

    def test_append_toobig(self):
        c = self.rev2()
        c.cmd("T1 APPEND INBOX {200000}")
        self.assertRegex(c.readline(), rb"^T1 NO \[TOOBIG\]")
        self.ok(c, "NOOP")
        # a rev1 session: a synchronizing literal over the limit is refused before the "+"
        # with NO [TOOBIG] too (APPENDLIMIT, RFC 7889 section 4); an oversized
        # non-synchronizing one stays BAD [TOOBIG] (RFC 7888 section 5)
        d = self.conn("fred")
        d.cmd("T2 APPEND INBOX {200000}")
        self.assertRegex(d.readline(), rb"^T2 NO \[TOOBIG\]")
        self.ok(d, "NOOP")

    def test_notify_oldname_utf8(self):
        c = self.rev2()
        self.ok(c, "NOTIFY SET (personal (MailboxName))")
        o = self.conn("fred")
        self.ok(o, 'CREATE "%s"' % utf7("n\u00e4me"))
        c.expect(rb'^\* LIST \(\\HasNoChildren\) "/" "n\xc3\xa4me"', timeout=SCAN)
        self.ok(o, 'RENAME "%s" "%s"' % (utf7("n\u00e4me"), utf7("n\u00e4me2")))
        c.expect(rb'^\* LIST \(\\HasNoChildren\) "/" "n\xc3\xa4me2" '
                 rb'\("OLDNAME" \("n\xc3\xa4me"\)\)', timeout=SCAN)

    # ---- two sessions on one mailbox

    def test_rev1_and_rev2_together(self):
        w = self.conn("fred")
        self.ok(w, 'CREATE "%s"' % utf7("B\u00fcro"))
        self.append(w, '"%s"' % utf7("B\u00fcro"), 1)
        # the rev2 session selects first: it claims no \Recent ...
        r2 = self.rev2()
        untagged = self.joined(self.ok(r2, 'SELECT "B\u00fcro"'))
        self.assertNotIn(b"RECENT", untagged)
        # ... so the rev1 session that comes next still sees the message as recent
        r1 = self.conn("fred")
        untagged = self.joined(self.ok(r1, 'SELECT "%s"' % utf7("B\u00fcro")))
        self.assertIn(b"* 1 RECENT", untagged)
        self.assertIn(b"\\Recent", self.joined(self.ok(r1, "FETCH 1 FLAGS")))
        # a new message while both are selected
        self.append(w, '"%s"' % utf7("B\u00fcro"), 2)
        u1 = self.joined(self.ok(r1, "NOOP"))
        self.assertIn(b"* 2 EXISTS", u1)
        self.assertIn(b"* 2 RECENT", u1)
        u2 = self.joined(self.ok(r2, "NOOP"))
        self.assertIn(b"* 2 EXISTS", u2)
        self.assertNotIn(b"RECENT", u2)
        self.assertIn(b"\\Recent", self.joined(self.ok(r1, "FETCH 2 FLAGS")))
        self.assertNotIn(b"\\Recent", self.joined(self.ok(r2, "FETCH 1:2 FLAGS")))
        # flags set by one show in the other
        self.ok(r2, "STORE 2 +FLAGS.SILENT (\\Seen)")
        self.assertRegex(self.joined(self.ok(r1, "NOOP")),
                         rb"\* 2 FETCH \(FLAGS \(\\Seen \\Recent\)\)")
        self.ok(r1, "STORE 1 +FLAGS.SILENT (\\Answered)")
        self.assertRegex(self.joined(self.ok(r2, "NOOP")),
                         rb"\* 1 FETCH \(FLAGS \(\\Answered\) UID \d+\)")
        # the same mailbox by name in each form
        self.assertIn("B\u00fcro".encode(), self.joined(self.ok(r2, 'LIST "" "B*"')))
        self.assertIn(utf7("B\u00fcro").encode(), self.joined(self.ok(r1, 'LIST "" "B*"')))
        # an expunge reaches both
        self.ok(r1, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(r1, "EXPUNGE")
        self.assertIn(b"* 1 EXPUNGE", self.joined(self.ok(r2, "NOOP")))
        self.assertIn(b"* ESEARCH (TAG \"t\") ALL 1", self.joined(self.ok(r2, "SEARCH ALL")))
        self.assertIn(b"* SEARCH 1\r\n", self.ok(r1, "SEARCH ALL"))

    # ---- rights

    def test_rights(self):
        j = self.conn("joe")
        self.ok(j, 'CREATE "%s"' % utf7("Gep\u00e4ck"))
        self.append(j, '"%s"' % utf7("Gep\u00e4ck"), 1)
        c = self.rev2()
        other = "Other Users/joe/Gep\u00e4ck"
        # no rights: as if it did not exist
        self.no(c, 'SELECT "%s"' % other, "NONEXISTENT")
        self.no(c, 'STATUS "%s" (MESSAGES)' % other, "NONEXISTENT")
        self.no(c, 'DELETE "%s"' % other, "NONEXISTENT")
        self.no(c, 'APPEND "%s" {6+}\r\nx: y\r\n' % other, "TRYCREATE")
        self.assertNotIn(b"Gep", self.joined(self.ok(c, 'LIST "" "Other Users/*"')))
        # l only: visible, but no reading
        self.ok(j, 'SETACL "%s" fred l' % utf7("Gep\u00e4ck"))
        self.assertIn(other.encode(), self.joined(self.ok(c, 'LIST "" "Other Users/joe/*"')))
        self.no(c, 'SELECT "%s"' % other, "NOPERM")
        self.no(c, 'STATUS "%s" (MESSAGES)' % other, "NOPERM")
        self.no(c, 'DELETE "%s"' % other, "NOPERM")
        # lr: readable, and the rev2 answers with the UTF-8 name
        self.ok(j, 'SETACL "%s" fred lr' % utf7("Gep\u00e4ck"))
        sel = self.joined(self.ok(c, 'EXAMINE "%s"' % other))
        self.assertIn(other.encode(), sel)
        self.assertIn(b"* ESEARCH (TAG \"t\") ALL 1", self.joined(self.ok(c, "SEARCH ALL")))
        # an administrator sees it without any grant, in UTF-8 after ENABLE
        b = self.rev2("boss")
        st = self.joined(self.ok(b, 'STATUS "%s" (MESSAGES SIZE)' % other))
        self.assertIn(b"MESSAGES 1", st)
        self.assertIn(other.encode(), self.joined(self.ok(b, 'LIST "" "Other Users/joe/*"')))


if __name__ == "__main__":
    main()
