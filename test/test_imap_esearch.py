"""test_imap_esearch.py: ESEARCH (RFC 4731) and SEARCHRES (RFC 5182) end to end: every
RETURN option (MIN MAX ALL COUNT SAVE, and RETURN () meaning ALL), the UID form, CHARSET after
RETURN, an empty result, ALL as a compact sequence set, SAVE and "$" in FETCH, STORE, COPY,
MOVE, SEARCH, UID EXPUNGE and their UID forms, "$" after another session's expunge, "$" reset by SELECT and
UNSELECT, SAVE with MIN/MAX, a failed SEARCH emptying "$", BAD for unknown return options, and
the r right still needed to search; WITHIN (RFC 5032): OLDER and YOUNGER against internal dates
far in the past and now, and BAD for a missing or invalid interval."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n"
       b"Message-ID: <es%d@example.com>\r\n\r\nbody %d\r\n")

# message i (1-based) has subject "odd" or "even"
N = 8


def msg(i):
    return MSG % (b"odd" if i % 2 else b"even", i, i)


USERS = {"fred": "fredpw", "joe": "joepw"}


class Esearch(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    def make_box(self, name, n=N):
        c = self.conn("fred")
        self.ok(c, 'CREATE "%s"' % name)
        for i in range(1, n + 1):
            m = msg(i)
            self.ok(c, 'APPEND "%s" {%d+}\r\n%s' % (name, len(m), m.decode()))
        c.imap("z", "LOGOUT")

    def box(self, name, n=N):
        """A fresh mailbox of n messages selected in a new session; returns (conn, uids)."""
        self.make_box(name, n)
        c = self.conn("fred")
        self.ok(c, 'SELECT "%s"' % name)
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(c, "FETCH 1:* UID")))]
        self.assertEqual(len(uids), n)
        return c, uids

    def esearch(self, c, text, tag="s"):
        """The ESEARCH line (without CRLF) of a successful command, or None."""
        untagged = self.ok(c, text, tag=tag)
        lines = [u.rstrip(b"\r\n") for u in untagged if u.startswith(b"* ESEARCH")]
        self.assertLessEqual(len(lines), 1, untagged)
        self.assertFalse([u for u in untagged if u.startswith(b"* SEARCH")], untagged)
        return lines[0].decode() if lines else None

    def fetch_uids(self, c, text):
        untagged = self.ok(c, text)
        return sorted(int(x) for x in re.findall(rb"UID (\d+)", b"".join(untagged)))

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" ESEARCH", caps)
        self.assertIn(b" SEARCHRES", caps)

    def test_within(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" WITHIN", caps)
        self.ok(c, 'CREATE "within"')
        # messages 1 and 3 from 2001, 2 and 4 appended now (no date: the internal date is now)
        for i in range(1, 5):
            m = msg(i).decode()
            date = ' "01-Jan-2001 12:00:00 +0000"' if i % 2 else ""
            self.ok(c, 'APPEND "within"%s {%d+}\r\n%s' % (date, len(m), m))
        self.ok(c, 'SELECT "within"')
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(c, "FETCH 1:* UID")))]

        def search(text):
            untagged = self.ok(c, text)
            line = [u for u in untagged if u.startswith(b"* SEARCH")]
            self.assertEqual(len(line), 1, untagged)
            return [int(x) for x in line[0].split()[2:]]

        self.assertEqual(search("SEARCH YOUNGER 3600"), [2, 4])
        self.assertEqual(search("SEARCH OLDER 3600"), [1, 3])
        self.assertEqual(search("SEARCH older 86400 SUBJECT odd"), [1, 3])
        self.assertEqual(search("SEARCH NOT YOUNGER 3600"), [1, 3])
        self.assertEqual(search("SEARCH OR OLDER 4294967295 YOUNGER 3600"), [2, 4])
        self.assertEqual(search("UID SEARCH YOUNGER 3600"), [uids[1], uids[3]])
        self.assertEqual(self.esearch(c, "SEARCH RETURN (COUNT MIN) YOUNGER 3600", "w1"),
                         '* ESEARCH (TAG "w1") MIN 2 COUNT 2')
        for text in ("SEARCH OLDER", "SEARCH YOUNGER 0", "SEARCH YOUNGER abc",
                     "SEARCH OLDER -10", "SEARCH OLDER 99999999999", "SEARCH (YOUNGER)"):
            with self.subTest(text=text):
                tagged, _ = c.imap("b", text)
                self.assertRegex(tagged, rb"^b BAD ")
        self.assertEqual(search("SEARCH YOUNGER 3600"), [2, 4])

    def test_return_options(self):
        c, u = self.box("opts")
        # odd: 1,3,5,7
        self.assertEqual(self.esearch(c, "SEARCH RETURN (MIN) SUBJECT odd", "A1"),
                         '* ESEARCH (TAG "A1") MIN 1')
        self.assertEqual(self.esearch(c, "SEARCH RETURN (MAX) SUBJECT odd", "A2"),
                         '* ESEARCH (TAG "A2") MAX 7')
        self.assertEqual(self.esearch(c, "SEARCH RETURN (COUNT) SUBJECT odd", "A3"),
                         '* ESEARCH (TAG "A3") COUNT 4')
        self.assertEqual(self.esearch(c, "SEARCH RETURN (ALL) SUBJECT odd", "A4"),
                         '* ESEARCH (TAG "A4") ALL 1,3,5,7')
        self.assertEqual(self.esearch(c, "SEARCH RETURN () SUBJECT odd", "A5"),
                         '* ESEARCH (TAG "A5") ALL 1,3,5,7')
        self.assertEqual(self.esearch(c, "SEARCH RETURN (min max count all) 2:6", "A6"),
                         '* ESEARCH (TAG "A6") MIN 2 MAX 6 ALL 2:6 COUNT 5')
        self.assertEqual(self.esearch(c, "SEARCH RETURN (ALL) 1:3,5,7:8", "A7"),
                         '* ESEARCH (TAG "A7") ALL 1:3,5,7:8')
        # CHARSET after RETURN
        self.assertEqual(self.esearch(c, "SEARCH RETURN (COUNT) CHARSET UTF-8 SUBJECT even",
                                      "A8"), '* ESEARCH (TAG "A8") COUNT 4')
        tagged, _ = c.imap("A9", "SEARCH RETURN (COUNT) CHARSET KOI8-R ALL")
        self.assertRegex(tagged, rb"^A9 NO \[BADCHARSET")
        # plain SEARCH is unchanged
        self.assertEqual(self.ok(c, "SEARCH SUBJECT odd"), [b"* SEARCH 1 3 5 7\r\n"])

    def test_uid_form(self):
        c, u = self.box("uidform")
        want = "* ESEARCH (TAG \"U1\") UID MIN %d MAX %d ALL %d,%d,%d,%d COUNT 4" % (
            u[0], u[6], u[0], u[2], u[4], u[6])
        self.assertEqual(self.esearch(c, "UID SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT odd",
                                      "U1"), want)
        self.assertEqual(self.esearch(c, "UID SEARCH RETURN () ALL", "U2"),
                         '* ESEARCH (TAG "U2") UID ALL %d:%d' % (u[0], u[-1]))

    def test_empty_result(self):
        c, u = self.box("empty")
        self.assertEqual(self.esearch(c, "SEARCH RETURN (MIN MAX ALL) SUBJECT nothere", "E1"),
                         '* ESEARCH (TAG "E1")')
        self.assertEqual(self.esearch(c, "SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothere",
                                      "E2"), '* ESEARCH (TAG "E2") COUNT 0')
        self.assertEqual(self.esearch(c, "UID SEARCH RETURN (COUNT) SUBJECT nothere", "E3"),
                         '* ESEARCH (TAG "E3") UID COUNT 0')

    def test_bad_options(self):
        c, u = self.box("bad")
        for text in ("SEARCH RETURN (FOO) ALL", "SEARCH RETURN (MIN PARTIAL) ALL",
                     "SEARCH RETURN ALL", "SEARCH RETURN", "UID SEARCH RETURN (\"MIN\") ALL",
                     "SEARCH RETURN (MIN) FROBNICATE", "FETCH $,1 UID", "FETCH 1:$ UID",
                     "SEARCH $,1"):
            with self.subTest(text=text):
                tagged, _ = c.imap("b", text)
                self.assertRegex(tagged, rb"^b BAD ")
        # the session goes on
        self.assertEqual(self.esearch(c, "SEARCH RETURN (COUNT) ALL", "b2"),
                         '* ESEARCH (TAG "b2") COUNT %d' % N)

    def test_save_and_dollar(self):
        c, u = self.box("save")
        # $ before any SAVE is empty
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        self.assertEqual(self.ok(c, "SEARCH $"), [b"* SEARCH\r\n"])
        # SAVE alone: no ESEARCH response
        self.assertIsNone(self.esearch(c, "SEARCH RETURN (SAVE) SUBJECT odd"))
        odd = [u[0], u[2], u[4], u[6]]
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), odd)
        self.assertEqual(self.fetch_uids(c, "UID FETCH $ UID"), odd)
        self.assertEqual(self.ok(c, "SEARCH $"), [b"* SEARCH 1 3 5 7\r\n"])
        self.assertEqual(self.ok(c, "UID SEARCH $ 2:5"),
                         [("* SEARCH %d %d\r\n" % (u[2], u[4])).encode()])
        self.assertEqual(self.esearch(c, "SEARCH RETURN (COUNT) NOT $", "c1"),
                         '* ESEARCH (TAG "c1") COUNT 4')
        # STORE and COPY
        self.ok(c, "STORE $ +FLAGS.SILENT (\\Flagged)")
        self.assertEqual(self.ok(c, "SEARCH FLAGGED"), [b"* SEARCH 1 3 5 7\r\n"])
        self.ok(c, "UID STORE $ -FLAGS.SILENT (\\Flagged)")
        self.assertEqual(self.ok(c, "SEARCH FLAGGED"), [b"* SEARCH\r\n"])
        self.ok(c, "CREATE savecopy")
        self.ok(c, "COPY $ savecopy")
        self.ok(c, "UID COPY $ savecopy")
        st = b"".join(self.ok(c, "STATUS savecopy (MESSAGES)"))
        self.assertIn(b"MESSAGES 8", st)
        # SAVE with ALL and output in one command, then reuse by the next
        self.assertEqual(self.esearch(c, "UID SEARCH RETURN (SAVE ALL) SUBJECT even", "c2"),
                         '* ESEARCH (TAG "c2") UID ALL %d,%d,%d,%d' % (u[1], u[3], u[5], u[7]))
        self.assertEqual(self.ok(c, "SEARCH $"), [b"* SEARCH 2 4 6 8\r\n"])
        # a SEARCH that uses $ and saves over it
        self.assertIsNone(self.esearch(c, "SEARCH RETURN (SAVE) $ 1:4"))
        self.assertEqual(self.ok(c, "SEARCH $"), [b"* SEARCH 2 4\r\n"])

    def test_move_and_uid_expunge(self):
        c, u = self.box("movebox")
        self.ok(c, "CREATE movedest")
        self.esearch(c, "SEARCH RETURN (SAVE) SUBJECT odd")
        untagged = self.ok(c, "MOVE $ movedest")
        self.assertEqual(len([x for x in untagged if x.endswith(b" EXPUNGE\r\n")]), 4)
        self.assertIn(b"MESSAGES 4", b"".join(self.ok(c, "STATUS movedest (MESSAGES)")))
        # the moved messages are gone: $ is empty now
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        self.esearch(c, "UID SEARCH RETURN (SAVE) 1:2")
        self.ok(c, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "STORE 3 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "UID EXPUNGE $")
        # only the saved uids u[1], u[3] went; u[5] keeps \Deleted
        self.assertEqual(self.fetch_uids(c, "FETCH 1:* UID"), [u[5], u[7]])

    def test_save_min_max(self):
        c, u = self.box("minmax")
        self.assertEqual(self.esearch(c, "SEARCH RETURN (SAVE MIN) SUBJECT even", "m1"),
                         '* ESEARCH (TAG "m1") MIN 2')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [u[1]])
        self.assertEqual(self.esearch(c, "SEARCH RETURN (SAVE MIN MAX) SUBJECT even", "m2"),
                         '* ESEARCH (TAG "m2") MIN 2 MAX 8')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [u[1], u[7]])
        self.assertEqual(self.esearch(c, "SEARCH RETURN (SAVE MAX) SUBJECT even", "m3"),
                         '* ESEARCH (TAG "m3") MAX 8')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [u[7]])
        # with COUNT (or ALL) the whole result is saved
        self.assertEqual(self.esearch(c, "SEARCH RETURN (SAVE MIN COUNT) SUBJECT even", "m4"),
                         '* ESEARCH (TAG "m4") MIN 2 COUNT 4')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [u[1], u[3], u[5], u[7]])
        # an empty match saves an empty result
        self.assertEqual(self.esearch(c, "SEARCH RETURN (SAVE MIN) SUBJECT none", "m5"),
                         '* ESEARCH (TAG "m5")')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])

    def test_failed_search_resets(self):
        c, u = self.box("failreset")
        self.esearch(c, "SEARCH RETURN (SAVE) SUBJECT odd")
        self.assertEqual(len(self.fetch_uids(c, "FETCH $ UID")), 4)
        tagged, _ = c.imap("f1", "SEARCH RETURN (SAVE) FROBNICATE")
        self.assertRegex(tagged, rb"^f1 BAD ")
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        self.esearch(c, "SEARCH RETURN (SAVE) SUBJECT odd")
        tagged, _ = c.imap("f2", "SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
        self.assertRegex(tagged, rb"^f2 NO ")
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        self.esearch(c, "SEARCH RETURN (SAVE) SUBJECT odd")
        tagged, _ = c.imap("f3", "SEARCH RETURN (SAVE BOGUS) ALL")
        self.assertRegex(tagged, rb"^f3 BAD ")
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        # a failed search without SAVE leaves it alone
        self.esearch(c, "SEARCH RETURN (SAVE) SUBJECT odd")
        tagged, _ = c.imap("f4", "SEARCH FROBNICATE")
        self.assertRegex(tagged, rb"^f4 BAD ")
        self.assertEqual(len(self.fetch_uids(c, "FETCH $ UID")), 4)

    def test_reset_by_select_and_unselect(self):
        c, u = self.box("resetsel")
        self.esearch(c, "SEARCH RETURN (SAVE) ALL")
        self.assertEqual(len(self.fetch_uids(c, "FETCH $ UID")), N)
        self.ok(c, 'SELECT "resetsel"')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        self.esearch(c, "SEARCH RETURN (SAVE) ALL")
        self.ok(c, 'EXAMINE "resetsel"')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        self.esearch(c, "SEARCH RETURN (SAVE) ALL")
        self.ok(c, "UNSELECT")
        self.ok(c, 'SELECT "resetsel"')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])
        self.esearch(c, "SEARCH RETURN (SAVE) ALL")
        self.ok(c, "CLOSE")
        tagged, _ = c.imap("x", "FETCH $ UID")
        self.assertRegex(tagged, rb"^x (BAD|NO) ")
        self.ok(c, 'SELECT "resetsel"')
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [])

    def test_dollar_after_expunge_by_other_session(self):
        c, u = self.box("expunged")
        self.esearch(c, "SEARCH RETURN (SAVE) SUBJECT odd")
        o = self.conn("fred")
        self.ok(o, 'SELECT "expunged"')
        self.ok(o, "STORE 3 +FLAGS.SILENT (\\Deleted)")
        self.ok(o, "EXPUNGE")
        o.imap("z", "LOGOUT")
        untagged = self.ok(c, "NOOP")
        self.assertIn(b"* 3 EXPUNGE\r\n", untagged)
        # uid u[2] is gone: $ is now messages 1,4,6 (uids u[0], u[4], u[6])
        self.assertEqual(self.fetch_uids(c, "FETCH $ UID"), [u[0], u[4], u[6]])
        self.assertEqual(self.ok(c, "SEARCH $"), [b"* SEARCH 1 4 6\r\n"])
        self.assertEqual(self.esearch(c, "UID SEARCH RETURN (ALL) $", "x1"),
                         '* ESEARCH (TAG "x1") UID ALL %d,%d,%d' % (u[0], u[4], u[6]))
        # and it stays gone when this session expunges too
        self.ok(c, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "EXPUNGE")
        self.assertEqual(self.ok(c, "SEARCH $"), [b"* SEARCH 3 5\r\n"])

    def test_rights(self):
        self.make_box("noread", 2)
        f, j = self.conn("fred"), self.conn("joe")
        self.ok(f, 'SETACL "noread" joe "l"')
        self.no(j, 'SELECT "Other Users/fred/noread"', "NOPERM")
        tagged, _ = j.imap("r1", "SEARCH RETURN (COUNT) ALL")
        self.assertRegex(tagged, rb"^r1 BAD ")
        self.ok(f, 'SETACL "noread" joe "lr"')
        self.ok(j, 'EXAMINE "Other Users/fred/noread"')
        self.assertEqual(self.esearch(j, "SEARCH RETURN (COUNT) ALL", "r2"),
                         '* ESEARCH (TAG "r2") COUNT 2')


if __name__ == "__main__":
    main()
