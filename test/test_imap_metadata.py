"""test_imap_metadata.py: RFC 5464 METADATA and METADATA-SERVER end to end: the RFC's examples
(GETMETADATA with DEPTH and MAXSIZE, SETMETADATA with strings, literals, literal8 and NIL),
server entries (administrators write the shared ones), every limit ([METADATA MAXSIZE n],
[METADATA TOOMANY] per mailbox scope, by bytes and per user, all or nothing), the rights of RFC
5464 section 3.3 (no rights, l only, lr, li, lrw, another user's private entries, an
administrator), entry names (case, syntax), RENAME (children, INBOX) and DELETE,
/private/specialuse from SPECIAL-USE, `coffer mailbox metadata`, and dump/restore."""
import io
import json
import os
import re
import sys
import tarfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main, run_coffer  # noqa: E402

USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw", "lim": "limpw", "mv": "mvpw",
         "du": "dupw", "du2": "du2pw", "su": "supw", "tl": "tlpw", "cs": "cspw",
         "nt": "ntpw"}


def meta_line(untagged):
    """The raw bytes of the untagged responses (literals included) as one string."""
    return b"".join(untagged)


class Metadata(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {
        "allow_plaintext": "yes", "auth_fail_delay": "0", "admins": "boss",
        "metadata_max_entry_size": "200", "metadata_max_entries": "6",
        "metadata_max_size": "1000", "metadata_max_entries_per_user": "20"}}

    def bad(self, c, text, tag="t"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" BAD", (text, tagged))

    def get(self, c, text):
        """GETMETADATA text: the METADATA responses' bytes."""
        return meta_line(self.ok(c, "GETMETADATA " + text))

    def tool(self, *args, json_out=False, input=None):
        return run_coffer(self.coffer, *args, json_out=json_out, input=input)

    # ---- capability and the RFC's examples

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(self.ok(c, "CAPABILITY"))
        self.assertIn(b" METADATA ", caps)
        self.assertIn(b" METADATA-SERVER", caps)

    def test_rfc_examples_mailbox(self):
        c = self.conn("fred")
        # section 4.3: a literal value, then two entries at once, then NIL
        self.ok(c, "SETMETADATA INBOX (/private/comment {14+}\r\nMy new comment)")
        self.assertEqual(self.get(c, "INBOX /private/comment"),
                         b'* METADATA INBOX (/private/comment "My new comment")\r\n')
        self.ok(c, 'SETMETADATA INBOX (/private/comment "c1" /shared/comment "c2")')
        self.assertEqual(self.get(c, "INBOX (/shared/comment /private/comment)"),
                         b'* METADATA INBOX (/shared/comment "c2" /private/comment "c1")\r\n')
        self.ok(c, "SETMETADATA INBOX (/shared/comment NIL)")
        self.assertEqual(self.get(c, "INBOX (/shared/comment /private/comment)"),
                         b'* METADATA INBOX (/shared/comment NIL /private/comment "c1")\r\n')
        # removing what is not there is no error
        self.ok(c, "SETMETADATA INBOX (/shared/comment NIL)")
        # the options may also follow the mailbox, as drafts had them
        self.assertIn(b"/private/comment", self.get(c, "INBOX (DEPTH 1) /private"))
        self.ok(c, "SETMETADATA INBOX (/private/comment NIL)")

    def test_rfc_examples_server(self):
        b = self.conn("boss")
        f = self.conn("fred")
        j = self.conn("joe")
        self.ok(b, 'SETMETADATA "" (/shared/comment "Shared comment" '
                   '/shared/admin "mailto:boss@example.com")')
        self.assertEqual(self.get(f, '"" (/shared/comment /shared/admin)'),
                         b'* METADATA "" (/shared/comment "Shared comment" '
                         b'/shared/admin "mailto:boss@example.com")\r\n')
        # only administrators write the server's shared entries
        self.no(f, 'SETMETADATA "" (/shared/comment "mine now")', "NOPERM")
        self.no(f, 'SETMETADATA "" (/shared/vendor/x/y "v")', "NOPERM")
        # everybody keeps private server entries of their own
        self.ok(f, 'SETMETADATA "" (/private/comment "fred only")')
        self.assertEqual(self.get(f, '"" /private/comment'),
                         b'* METADATA "" (/private/comment "fred only")\r\n')
        self.assertEqual(self.get(j, '"" /private/comment'),
                         b'* METADATA "" (/private/comment NIL)\r\n')
        self.assertEqual(self.get(j, '(DEPTH infinity) "" /private'), b"")
        self.ok(f, 'SETMETADATA "" (/private/comment NIL)')
        self.ok(b, 'SETMETADATA "" (/shared/comment NIL /shared/admin NIL)')

    def test_depth_and_maxsize(self):
        c = self.conn("cs")
        self.ok(c, 'SETMETADATA INBOX (/private/filters/values/small "SMALLER_THAN 100K" '
                   '/private/filters/values/big "BIGGER_THAN 100K" '
                   '/private/filters/values/party "SUBJECT \\"Party\\" FROM \\"gbbr@example.org\\"" '
                   '/private/filters/values/party/deep "below" /private/filtersx "not below")')
        # section 4.2.2 example: DEPTH 1 lists the children, not the entry (it has no value)
        got = self.get(c, "(DEPTH 1) INBOX (/private/filters/values)")
        self.assertEqual(got, b'* METADATA INBOX (/private/filters/values/big "BIGGER_THAN 100K" '
                              b'/private/filters/values/party "SUBJECT \\"Party\\" FROM '
                              b'\\"gbbr@example.org\\"" /private/filters/values/small '
                              b'"SMALLER_THAN 100K")\r\n')
        self.assertEqual(self.get(c, "INBOX /private/filters/values"),
                         b"* METADATA INBOX (/private/filters/values NIL)\r\n")
        self.assertEqual(self.get(c, "(DEPTH 0) INBOX /private/filters/values"),
                         b"* METADATA INBOX (/private/filters/values NIL)\r\n")
        deep = self.get(c, "(DEPTH infinity) INBOX /private/filters")
        self.assertIn(b"/private/filters/values/party/deep", deep)
        self.assertNotIn(b"filtersx", deep)
        self.assertEqual(len(re.findall(rb"/private/filters/", deep)), 4)
        # section 4.2.1: MAXSIZE leaves larger values out and says how large the largest was
        tagged, untagged = c.imap("m", "GETMETADATA (MAXSIZE 16 DEPTH 1) INBOX /private/filters/values")
        self.assertEqual(tagged, b"m OK [METADATA LONGENTRIES 39] GETMETADATA completed\r\n")
        self.assertEqual(meta_line(untagged),
                         b'* METADATA INBOX (/private/filters/values/big "BIGGER_THAN 100K")\r\n')
        tagged, untagged = c.imap("m", "GETMETADATA (MAXSIZE 1000) INBOX /private/filters/values/big")
        self.assertEqual(tagged, b"m OK GETMETADATA completed\r\n")
        # a NIL value is never "too long"
        tagged, untagged = c.imap("m", "GETMETADATA (MAXSIZE 0) INBOX /private/nothing")
        self.assertEqual(tagged, b"m OK GETMETADATA completed\r\n")
        self.assertEqual(meta_line(untagged), b"* METADATA INBOX (/private/nothing NIL)\r\n")

    def test_values_binary_literal_utf8(self):
        c = self.conn("cs")
        self.ok(c, "CREATE vals")
        c.send(b"t SETMETADATA vals (/shared/vendor/coffer/bin ~{5+}\r\na\x00b\r\n)\r\n")
        tagged, untagged = c.read_tagged("t")
        self.assertRegex(tagged, rb"^t OK")
        self.assertEqual(self.get(c, "vals /shared/vendor/coffer/bin"),
                         b"* METADATA vals (/shared/vendor/coffer/bin ~{5}\r\na\x00b\r\n)\r\n")
        # a synchronizing literal8 gets the go-ahead
        c.send(b"u SETMETADATA vals (/shared/vendor/coffer/bin2 ~{2}\r\n")
        c.expect(rb"^\+ ")
        c.send(b"\x00\x01)\r\n")
        self.assertRegex(c.read_tagged("u")[0], rb"^u OK")
        self.ok(c, "SETMETADATA vals (/shared/comment {12+}\r\ntwo\r\nlines\r\n)")
        self.assertEqual(self.get(c, "vals /shared/comment"),
                         b"* METADATA vals (/shared/comment {12}\r\ntwo\r\nlines\r\n)\r\n")
        c.send("t SETMETADATA vals (/private/comment {6+}\r\nd\u00e9j\u00e0)\r\n".encode())
        self.assertRegex(c.read_tagged("t")[0], rb"^t OK")
        self.assertEqual(self.get(c, "vals /private/comment"),
                         "* METADATA vals (/private/comment {6}\r\nd\u00e9j\u00e0)\r\n".encode())
        # an empty string is a value, unlike NIL
        self.ok(c, 'SETMETADATA vals (/private/comment "")')
        self.assertEqual(self.get(c, "vals /private/comment"),
                         b'* METADATA vals (/private/comment "")\r\n')
        # literal8 stays refused where RFC 5464 does not allow it
        c.send(b"v GETMETADATA vals ~{3+}\r\nabc\r\n")
        self.assertRegex(c.read_tagged("v")[0], rb"^v BAD")

    def test_names(self):
        c = self.conn("cs")
        # section 3.2: case-insensitive; reported as stored (lower case)
        self.ok(c, 'SETMETADATA INBOX (/Shared/Vendor/Coffer/Case "v")')
        self.assertEqual(self.get(c, "INBOX /SHARED/vendor/coffer/CASE"),
                         b'* METADATA INBOX (/shared/vendor/coffer/case "v")\r\n')
        self.ok(c, 'SETMETADATA INBOX (/shared/vendor/coffer/case NIL)')
        for text in ("GETMETADATA INBOX", "GETMETADATA", "GETMETADATA INBOX ()",
                     "GETMETADATA INBOX /shared/a*", "GETMETADATA INBOX /shared/a%",
                     "GETMETADATA INBOX /shared//a", "GETMETADATA INBOX /shared/a/",
                     "GETMETADATA INBOX /other/a", "GETMETADATA INBOX comment",
                     "GETMETADATA (DEPTH 2) INBOX /shared/a", "GETMETADATA (MAXSIZE -1) INBOX /shared/a",
                     "GETMETADATA (FOO 1) INBOX /shared/a",
                     "SETMETADATA INBOX", "SETMETADATA INBOX ()", "SETMETADATA INBOX (/shared/a)",
                     'SETMETADATA INBOX (/shared "x")', 'SETMETADATA INBOX (/private "x")',
                     'SETMETADATA INBOX (/private/ "x")', 'SETMETADATA INBOX (/other/a "x")',
                     "SETMETADATA INBOX (/shared/a atom)", "SETMETADATA INBOX (/shared/a (x))",
                     'SETMETADATA INBOX /shared/a "x"'):
            self.bad(c, text)
        # a missing mailbox
        self.no(c, "GETMETADATA nosuch /shared/comment", "NONEXISTENT")
        self.no(c, 'SETMETADATA nosuch (/shared/comment "x")', "NONEXISTENT")
        # state: not before login
        c2 = self.coffer.connect("imap")
        self.addCleanup(c2.close)
        c2.expect(rb"^\* OK")
        self.bad(c2, "GETMETADATA INBOX /shared/comment")
        self.bad(c2, 'SETMETADATA INBOX (/shared/comment "x")')

    # ---- rights (RFC 5464 section 3.3)

    def test_rights(self):
        f = self.conn("fred")
        j = self.conn("joe")
        b = self.conn("boss")
        self.ok(f, "CREATE share")
        self.ok(f, 'SETMETADATA share (/shared/comment "fred shared" /private/comment "fred private")')
        box = '"Other Users/fred/share"'
        # no rights: as if it did not exist
        self.no(j, "GETMETADATA %s /shared/comment" % box, "NONEXISTENT")
        self.no(j, "GETMETADATA %s /private/comment" % box, "NONEXISTENT")
        self.no(j, 'SETMETADATA %s (/private/comment "x")' % box, "NONEXISTENT")
        # l only: visible, but none of r s w i p
        self.ok(f, "SETACL share joe l")
        self.no(j, "GETMETADATA %s /shared/comment" % box, "NOPERM")
        self.no(j, "GETMETADATA %s /private/comment" % box, "NOPERM")
        self.no(j, 'SETMETADATA %s (/private/comment "x")' % box, "NOPERM")
        self.no(j, 'SETMETADATA %s (/shared/comment "x")' % box, "NOPERM")
        # lr: reads shared entries, keeps private ones of its own, cannot write shared ones
        self.ok(f, "SETACL share joe lr")
        self.assertEqual(self.get(j, "%s /shared/comment" % box),
                         b'* METADATA "Other Users/fred/share" (/shared/comment "fred shared")\r\n')
        self.assertEqual(self.get(j, "%s /private/comment" % box),
                         b'* METADATA "Other Users/fred/share" (/private/comment NIL)\r\n')
        self.ok(j, 'SETMETADATA %s (/private/comment "joe private")' % box)
        self.no(j, 'SETMETADATA %s (/shared/comment "joe shared")' % box, "NOPERM")
        # all or nothing: a permitted private entry with a refused shared one
        self.no(j, 'SETMETADATA %s (/private/other "x" /shared/comment "y")' % box, "NOPERM")
        self.assertEqual(self.get(j, "%s /private/other" % box),
                         b'* METADATA "Other Users/fred/share" (/private/other NIL)\r\n')
        # private entries are per user
        self.assertEqual(self.get(f, "share /private/comment"),
                         b'* METADATA share (/private/comment "fred private")\r\n')
        self.assertEqual(self.get(j, "%s /private/comment" % box),
                         b'* METADATA "Other Users/fred/share" (/private/comment "joe private")\r\n')
        # li: private entries yes (i is one of r s w i p), shared ones need r to read
        self.ok(f, "SETACL share joe li")
        self.assertIn(b"joe private", self.get(j, "%s /private/comment" % box))
        self.no(j, "GETMETADATA %s /shared/comment" % box, "NOPERM")
        self.no(j, "GETMETADATA %s (/private/comment /shared/comment)" % box, "NOPERM")
        # lrw: writes shared entries too
        self.ok(f, "SETACL share joe lrw")
        self.ok(j, 'SETMETADATA %s (/shared/comment "joe shared")' % box)
        self.assertEqual(self.get(f, "share /shared/comment"),
                         b'* METADATA share (/shared/comment "joe shared")\r\n')
        # lw: private entries yes, shared ones neither read nor written without r
        self.ok(f, "SETACL share joe lw")
        self.ok(j, 'SETMETADATA %s (/private/comment "joe private")' % box)
        self.no(j, "GETMETADATA %s /shared/comment" % box, "NOPERM")
        self.no(j, 'SETMETADATA %s (/shared/comment "x")' % box, "NOPERM")
        # w without l: still nothing
        self.ok(f, "SETACL share joe rw")
        self.no(j, 'SETMETADATA %s (/shared/comment "x")' % box, "NOPERM")
        # an administrator reads and writes any mailbox's entries
        self.assertIn(b"joe shared", self.get(b, "%s /shared/comment" % box))
        self.ok(b, 'SETMETADATA %s (/shared/comment "boss shared" /private/comment "boss")' % box)
        self.assertEqual(self.get(f, "share (/shared/comment /private/comment)"),
                         b'* METADATA share (/shared/comment "boss shared" '
                         b'/private/comment "fred private")\r\n')
        # another user's INBOX without rights
        self.no(j, 'GETMETADATA "Other Users/fred" /shared/comment', "NONEXISTENT")
        self.ok(f, "DELETE share")

    # ---- limits

    def test_limits(self):
        c = self.conn("lim")
        self.ok(c, "CREATE one")
        # metadata_max_entry_size 200
        self.no(c, 'SETMETADATA one (/shared/a "%s")' % ("x" * 201), r"METADATA MAXSIZE 200")
        self.ok(c, 'SETMETADATA one (/shared/a "%s")' % ("x" * 200))
        # metadata_max_entries 6 in one scope
        self.ok(c, 'SETMETADATA one (/shared/b "1" /shared/c "2" /shared/d "3" /shared/e "4" '
                   '/shared/f "5")')
        self.no(c, 'SETMETADATA one (/shared/g "6")', r"METADATA TOOMANY")
        # all or nothing: the change of /shared/b is not kept either
        self.no(c, 'SETMETADATA one (/shared/b "changed" /shared/g "6")', r"METADATA TOOMANY")
        self.assertEqual(self.get(c, "one /shared/b"), b'* METADATA one (/shared/b "1")\r\n')
        # replacing and removing at the limit is fine
        self.ok(c, 'SETMETADATA one (/shared/b "changed" /shared/c NIL /shared/g "6")')
        # the private scope is counted apart
        self.ok(c, 'SETMETADATA one (/private/a "1")')
        # metadata_max_size 1000 in one scope: 5 x 200 fill it
        self.ok(c, "CREATE two")
        for k in "abcde":
            self.ok(c, 'SETMETADATA two (/shared/%s "%s")' % (k, "y" * 200))
        self.no(c, 'SETMETADATA two (/shared/f "z")', r"METADATA TOOMANY")
        self.no(c, 'SETMETADATA two (/shared/a "%s")' % ("y" * 199 + "yy"), r"METADATA MAXSIZE 200")
        self.ok(c, 'SETMETADATA two (/shared/a "short")')
        self.ok(c, 'SETMETADATA two (/shared/f "z")')
        # metadata_max_entries_per_user 20: private entries on all mailboxes and the server
        self.ok(c, 'SETMETADATA "" (/private/a "1" /private/b "2" /private/c "3")')   # 4
        for box in ("three", "four", "five"):
            self.ok(c, "CREATE " + box)
            self.ok(c, 'SETMETADATA %s (/private/a "1" /private/b "2" /private/c "3" '
                       '/private/d "4" /private/e "5")' % box)                       # 19
        self.ok(c, 'SETMETADATA two (/private/a "1")')                                # 20
        self.no(c, 'SETMETADATA two (/private/b "1")', r"METADATA TOOMANY")
        self.no(c, 'SETMETADATA "" (/private/d "1")', r"METADATA TOOMANY")
        # another user is not affected
        f = self.conn("fred")
        self.ok(f, 'SETMETADATA "" (/private/lim "1")')
        self.ok(f, 'SETMETADATA "" (/private/lim NIL)')
        # and freeing one makes room
        self.ok(c, 'SETMETADATA three (/private/e NIL)')
        self.ok(c, 'SETMETADATA two (/private/b "1")')

    # ---- RENAME and DELETE

    def test_rename_and_delete(self):
        c = self.conn("mv")
        self.ok(c, "CREATE a")
        self.ok(c, "CREATE a/b")
        self.ok(c, 'SETMETADATA a (/shared/comment "top" /private/comment "mine top")')
        self.ok(c, 'SETMETADATA a/b (/shared/comment "kid" /private/comment "mine kid")')
        self.ok(c, "RENAME a c")
        self.assertEqual(self.get(c, "c (/shared/comment /private/comment)"),
                         b'* METADATA c (/shared/comment "top" /private/comment "mine top")\r\n')
        self.assertEqual(self.get(c, "c/b (/shared/comment /private/comment)"),
                         b'* METADATA c/b (/shared/comment "kid" /private/comment "mine kid")\r\n')
        self.no(c, "GETMETADATA a /shared/comment", "NONEXISTENT")
        self.no(c, "GETMETADATA a/b /shared/comment", "NONEXISTENT")
        # a deleted mailbox takes its entries along: a new one of that name has none
        self.ok(c, "DELETE c/b")
        self.ok(c, "CREATE c/b")
        self.assertEqual(self.get(c, "c/b (/shared/comment /private/comment)"),
                         b"* METADATA c/b (/shared/comment NIL /private/comment NIL)\r\n")
        # RENAME INBOX (RFC 3501 section 6.3.5) moves the messages to a new mailbox: the
        # annotations describe INBOX, which stays; the new mailbox starts without any
        self.ok(c, 'SETMETADATA INBOX (/private/comment "inbox")')
        self.ok(c, "RENAME INBOX old-inbox")
        self.assertEqual(self.get(c, "INBOX /private/comment"),
                         b'* METADATA INBOX (/private/comment "inbox")\r\n')
        self.assertEqual(self.get(c, "old-inbox /private/comment"),
                         b"* METADATA old-inbox (/private/comment NIL)\r\n")

    def test_specialuse(self):
        c = self.conn("su")
        self.ok(c, "CREATE Sent (USE (\\Sent))")
        self.assertEqual(self.get(c, "Sent /private/specialuse"),
                         b'* METADATA Sent (/private/specialuse "\\\\Sent")\r\n')
        self.assertEqual(self.get(c, "INBOX /private/specialuse"),
                         b"* METADATA INBOX (/private/specialuse NIL)\r\n")
        self.assertIn(b"/private/specialuse", self.get(c, "(DEPTH 1) Sent /private"))
        # RFC 6154 section 4: setting it changes the mailbox's attributes, as LIST shows them
        self.ok(c, "CREATE Bin")
        self.ok(c, 'SETMETADATA Bin (/private/specialuse "\\\\trash")')
        self.assertEqual(self.get(c, "Bin /private/specialuse"),
                         b'* METADATA Bin (/private/specialuse "\\\\Trash")\r\n')
        self.assertIn(b"\\Trash", b"".join(self.ok(c, 'LIST "" Bin')))
        self.no(c, 'SETMETADATA Bin (/private/specialuse "\\\\Bogus")', "USEATTR")
        # all or nothing with the other entries of the command
        self.ok(c, 'SETMETADATA Bin (/shared/a "1" /shared/b "2" /shared/c "3" /shared/d "4" '
                   '/shared/e "5" /shared/f "6")')
        self.no(c, 'SETMETADATA Bin (/private/specialuse NIL /shared/g "7")', "METADATA TOOMANY")
        self.assertIn(b"\\\\Trash", self.get(c, "Bin /private/specialuse"))
        self.ok(c, "SETMETADATA Bin (/private/specialuse NIL)")
        self.assertEqual(self.get(c, "Bin /private/specialuse"),
                         b"* METADATA Bin (/private/specialuse NIL)\r\n")
        self.assertNotIn(b"\\Trash", b"".join(self.ok(c, 'LIST "" Bin')))
        # only the owner (and administrators): not another user with every other right
        self.ok(c, "SETACL Bin joe lrswipkxte")
        j = self.conn("joe")
        self.no(j, 'SETMETADATA "Other Users/su/Bin" (/private/specialuse "\\\\Junk")', "NOPERM")
        b = self.conn("boss")
        self.ok(b, 'SETMETADATA "Other Users/su/Bin" (/private/specialuse "\\\\Junk")')
        self.assertIn(b"\\\\Junk", self.get(c, "Bin /private/specialuse"))
        # on the server it is an entry like any other
        self.ok(c, 'SETMETADATA "" (/private/specialuse "anything")')
        self.ok(c, 'SETMETADATA "" (/private/specialuse NIL)')

    # ---- NOTIFY (RFC 5465 sections 5.7 and 5.8: required with METADATA)

    def test_notify_metadata_changes(self):
        a = self.conn("nt")
        b = self.conn("nt")
        boss = self.conn("boss")
        joe = self.conn("joe")
        self.ok(a, "CREATE watched")
        self.ok(a, "CREATE quiet")
        self.ok(a, "NOTIFY SET (mailboxes watched (MailboxMetadataChange)) "
                   "(personal (ServerMetadataChange))")
        # another session's change: the entry names, unsolicited (RFC 5464 section 4.4.2)
        self.ok(b, 'SETMETADATA watched (/shared/comment "y" /private/comment "x")')
        a.expect(rb'^\* METADATA "watched" /private/comment /shared/comment\r\n', timeout=15)
        self.ok(b, 'SETMETADATA watched (/shared/comment NIL)')
        a.expect(rb'^\* METADATA "watched" /shared/comment\r\n', timeout=15)
        # the server's entries: shared ones by an administrator, the user's own private ones
        self.ok(boss, 'SETMETADATA "" (/shared/motd "hello")')
        a.expect(rb'^\* METADATA "" /shared/motd\r\n', timeout=15)
        self.ok(b, 'SETMETADATA "" (/private/x "1")')
        a.expect(rb'^\* METADATA "" /private/x\r\n', timeout=15)
        # not: another user's private server entry, a mailbox without the event, own changes
        self.ok(joe, 'SETMETADATA "" (/private/joes "1")')
        self.ok(b, 'SETMETADATA quiet (/shared/comment "q")')
        self.ok(a, 'SETMETADATA watched (/private/own "1")')
        self.ok(a, 'SETMETADATA "" (/private/own "1")')
        time.sleep(4.5)   # two scans (NOTIFY_SCAN_MS)
        untagged = self.ok(a, "NOOP")
        self.assertFalse([u for u in untagged if b"METADATA" in u], untagged)
        self.ok(boss, 'SETMETADATA "" (/shared/motd NIL)')
        self.ok(joe, 'SETMETADATA "" (/private/joes NIL)')

    # ---- the administration tool and dump/restore

    def test_tool(self):
        m = self.conn("tl")
        self.ok(m, 'SETMETADATA INBOX (/shared/comment "from imap" /private/comment "tl\'s")')
        code, out, err = self.tool("mailbox", "metadata", "user/tl", json_out=True)
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out), [{"entry": "/shared/comment", "bytes": 9,
                                            "value": "from imap"}])
        code, out, err = self.tool("mailbox", "metadata", "user/tl", "get", "--user", "tl",
                                   json_out=True)
        self.assertEqual(code, 0, err)
        self.assertEqual([r["entry"] for r in json.loads(out)], ["/shared/comment", "/private/comment"])
        code, out, err = self.tool("mailbox", "metadata", "user/tl", "set", "/shared/vendor/x/y",
                                   "from tool")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.get(m, "INBOX /shared/vendor/x/y"),
                         b'* METADATA INBOX (/shared/vendor/x/y "from tool")\r\n')
        code, out, err = self.tool("mailbox", "metadata", "user/tl", "set", "/shared/vendor/x/bin",
                                   "-", input=b"a\x00b\n")
        self.assertEqual(code, 0, err)
        code, out, err = self.tool("mailbox", "metadata", "user/tl", "get", "/shared/vendor")
        self.assertEqual(code, 0, err)
        self.assertIn(b"a\\x00b\\x0a", out)
        self.assertIn(b"/shared/vendor/x/y", out)
        code, out, err = self.tool("mailbox", "metadata", "user/tl", "delete", "/shared/vendor/x/y")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.get(m, "INBOX /shared/vendor/x/y"),
                         b"* METADATA INBOX (/shared/vendor/x/y NIL)\r\n")
        # the server's entries
        code, out, err = self.tool("mailbox", "metadata", "", "set", "/shared/motd", "hello")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.get(m, '"" /shared/motd'), b'* METADATA "" (/shared/motd "hello")\r\n')
        self.assertEqual(self.tool("mailbox", "metadata", "", "delete", "/shared/motd")[0], 0)
        # exit codes: missing mailbox 3, bad entry or usage 2, a limit 6
        self.assertEqual(self.tool("mailbox", "metadata", "user/nosuch")[0], 3)
        self.assertEqual(self.tool("mailbox", "metadata", "user/tl", "set", "/other/x", "v")[0], 2)
        self.assertEqual(self.tool("mailbox", "metadata", "user/tl", "set", "/private/x", "v")[0], 2)
        self.assertEqual(self.tool("mailbox", "metadata", "user/tl", "frob")[0], 2)
        self.assertEqual(self.tool("mailbox", "metadata", "user/tl", "set", "/shared/big",
                                   "x" * 201)[0], 6)

    def test_dump_restore(self):
        m = self.conn("du")
        self.ok(m, "CREATE Work")
        self.ok(m, 'SETMETADATA INBOX (/shared/comment "inbox shared" /private/comment "inbox private")')
        m.send(b"t SETMETADATA Work (/private/vendor/coffer/bin ~{3+}\r\n\x00\x01\x02)\r\n")
        self.assertRegex(m.read_tagged("t")[0], rb"^t OK")
        self.ok(m, 'SETMETADATA "" (/private/comment "server private")')
        # another user's private entry on du's mailbox is not du's to dump
        self.ok(m, "SETACL Work joe lr")
        j = self.conn("joe")
        self.ok(j, 'SETMETADATA "Other Users/du/Work" (/private/comment "joe\'s")')
        code, dump, err = self.tool("dump", "du")
        self.assertEqual(code, 0, err)
        with tarfile.open(fileobj=io.BytesIO(dump), mode="r:") as t:
            man = json.loads(t.extractfile("manifest.json").read())
        self.assertEqual(man["mailboxes"][0]["metadata"],
                         [["/shared/comment", "aW5ib3ggc2hhcmVk"],
                          ["/private/comment", "aW5ib3ggcHJpdmF0ZQ=="]])
        self.assertEqual(man["mailboxes"][1]["metadata"], [["/private/vendor/coffer/bin", "AAEC"]])
        self.assertEqual(man["server_metadata"], [["/private/comment", "c2VydmVyIHByaXZhdGU="]])
        code, out, err = self.tool("restore", "--user", "du2", input=dump)
        self.assertEqual(code, 0, err)
        r = self.conn("du2")
        self.assertEqual(self.get(r, "INBOX (/shared/comment /private/comment)"),
                         b'* METADATA INBOX (/shared/comment "inbox shared" '
                         b'/private/comment "inbox private")\r\n')
        self.assertEqual(self.get(r, "Work /private/vendor/coffer/bin"),
                         b"* METADATA Work (/private/vendor/coffer/bin ~{3}\r\n\x00\x01\x02)\r\n")
        self.assertEqual(self.get(r, '"" /private/comment'),
                         b'* METADATA "" (/private/comment "server private")\r\n')
        # the restored entries are du2's, not du's copy: du's stay as they were
        self.ok(r, 'SETMETADATA INBOX (/private/comment "changed")')
        self.assertIn(b"inbox private", self.get(m, "INBOX /private/comment"))
        self.assertEqual(self.get(r, "Work /private/comment"),
                         b"* METADATA Work (/private/comment NIL)\r\n")


if __name__ == "__main__":
    main()
