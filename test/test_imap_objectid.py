"""test_imap_objectid.py: RFC 8474 OBJECTID end to end: MAILBOXID in the CREATE response code,
the SELECT/EXAMINE response code, STATUS and LIST-STATUS, kept by RENAME and new after DELETE and
CREATE of the same name; EMAILID shared by COPY and MOVE of a message and different for different
messages; THREADID shared by a thread (In-Reply-To, References), different for another one, never
NIL, the same for records from before index version 3; SEARCH EMAILID and THREADID; the objectid
syntax of section 7; rights (another user's mailbox with and without r, an administrator)."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402
from test_objid_lib import downgrade_index, mailbox_dir, mailboxid_of  # noqa: E402

USERS = {u: u + "pw" for u in ("fred", "joe", "admin", "sam")}
OBJECTID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def msg(subject, msgid=None, irt=None, refs=None, body="text"):
    h = "From: a@example.com\r\nSubject: %s\r\n" % subject
    if msgid:
        h += "Message-ID: <%s>\r\n" % msgid
    if irt:
        h += "In-Reply-To: <%s>\r\n" % irt
    if refs:
        h += "References: %s\r\n" % " ".join("<%s>" % r for r in refs)
    return (h + "\r\n" + body + "\r\n").encode()


class ObjectId(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin"}}

    def append(self, c, box, data):
        self.ok(c, "APPEND %s {%d+}\r\n%s" % (box, len(data), data.decode()))

    def ids(self, c):
        """{uid: (emailid, threadid)}."""
        out = {}
        for line in self.ok(c, "UID FETCH 1:* (EMAILID THREADID)"):
            mt = re.search(rb"UID (\d+) EMAILID \(([^)]*)\) THREADID \(([^)]*)\)", line)
            self.assertTrue(mt, line)
            e, t = mt.group(2).decode(), mt.group(3).decode()
            self.assertRegex(e, OBJECTID)
            self.assertRegex(t, OBJECTID)
            out[int(mt.group(1))] = (e, t)
        return out

    def search(self, c, keys):
        line = [l for l in self.ok(c, "UID SEARCH " + keys) if l.startswith(b"* SEARCH")][0]
        return sorted(int(x) for x in line.split()[2:])

    def test_capability(self):
        caps = b"".join(self.conn("fred").imap("c", "CAPABILITY")[1])
        self.assertIn(b" OBJECTID", caps)

    def test_mailboxid(self):
        c = self.conn("fred")
        tagged, _ = c.imap("c", "CREATE mb1")
        mt = re.match(rb"^c OK \[MAILBOXID \(([^)]+)\)\]", tagged)
        self.assertTrue(mt, tagged)
        mid = mt.group(1).decode()
        self.assertRegex(mid, OBJECTID)
        self.assertEqual(mailboxid_of(self, c, "mb1"), mid)
        for cmd in ("SELECT", "EXAMINE"):
            untagged = self.ok(c, "%s mb1" % cmd)
            self.assertIn(b"* OK [MAILBOXID (" + mid.encode() + b")]",
                          b"".join(untagged), cmd)
        self.ok(c, "UNSELECT")
        untagged = self.ok(c, 'LIST "" mb1 RETURN (STATUS (MESSAGES MAILBOXID))')
        self.assertRegex(untagged[1], rb"STATUS \"?mb1\"? \(MESSAGES 0 MAILBOXID \(" +
                         mid.encode() + rb"\)\)")
        # stable across RENAME (section 4.1), new after DELETE and CREATE of the same name
        self.ok(c, "RENAME mb1 mb2")
        self.assertEqual(mailboxid_of(self, c, "mb2"), mid)
        self.ok(c, "DELETE mb2")
        self.ok(c, "CREATE mb2")
        self.assertNotEqual(mailboxid_of(self, c, "mb2"), mid)
        self.assertNotEqual(mailboxid_of(self, c, "INBOX"), mid)

    def test_emailid_threadid(self):
        c = self.conn("sam")
        self.ok(c, "CREATE t")
        self.ok(c, "CREATE t2")
        self.append(c, "t", msg("root", "r@x"))                              # 1
        self.append(c, "t", msg("re", "a@x", irt="r@x"))                     # 2
        self.append(c, "t", msg("re re", "b@x", irt="a@x", refs=["r@x", "a@x"]))  # 3
        self.append(c, "t", msg("other", "o@x"))                             # 4
        self.append(c, "t", msg("no id"))                                    # 5
        self.append(c, "t", msg("no id", body="other text"))                 # 6
        self.ok(c, "SELECT t")
        ids = self.ids(c)
        self.assertEqual(len({e for e, _ in ids.values()}), 6)      # all different messages
        self.assertEqual(ids[1][1], ids[2][1])
        self.assertEqual(ids[1][1], ids[3][1])
        self.assertEqual(len({ids[u][1] for u in (1, 4, 5, 6)}), 4)
        # COPY and MOVE keep EMAILID and THREADID (section 5.1)
        self.ok(c, "UID COPY 2 t2")
        self.ok(c, "UID MOVE 4 t2")
        self.ok(c, "SELECT t2")
        ids2 = self.ids(c)
        self.assertEqual(ids2, {1: ids[2], 2: ids[4]})
        # SEARCH EMAILID / THREADID (section 6)
        self.assertEqual(self.search(c, "EMAILID %s" % ids[4][0]), [2])
        self.assertEqual(self.search(c, "THREADID %s" % ids[1][1]), [1])
        self.ok(c, "SELECT t")
        self.assertEqual(self.search(c, "THREADID %s" % ids[1][1]), [1, 2, 3])
        self.assertEqual(self.search(c, "EMAILID %s" % ids[3][0]), [3])
        self.assertEqual(self.search(c, "NOT THREADID %s" % ids[1][1]), [5, 6])
        self.assertEqual(self.search(c, "OR EMAILID %s EMAILID %s" % (ids[5][0], ids[6][0])),
                         [5, 6])
        self.assertEqual(self.search(c, "EMAILID Enotthere"), [])
        self.assertEqual(self.search(c, "EMAILID %s" % ids[3][0].upper()), [])  # exact case
        for keys in ("EMAILID", "THREADID a.b", "EMAILID %s" % ("x" * 256), 'THREADID ""',
                     "EMAILID (abc)"):
            tagged, _ = c.imap("b", "SEARCH %s" % keys)
            self.assertRegex(tagged, rb"^b BAD ", keys)
        # records written before index version 3: THREADID computed from the header, the same
        mid = mailboxid_of(self, c, "t")
        self.ok(c, "LOGOUT", "z")
        downgrade_index(mailbox_dir(self.coffer, mid))
        c = self.conn("sam")
        self.ok(c, "SELECT t")
        self.assertEqual(self.ids(c), {u: ids[u] for u in (1, 2, 3, 5, 6)})
        self.assertEqual(self.search(c, "THREADID %s" % ids[1][1]), [1, 2, 3])
        # a copy of an old record gets its THREADID too
        self.ok(c, "UID COPY 3 t2")
        self.ok(c, "SELECT t2")
        self.assertEqual(self.search(c, "THREADID %s" % ids[1][1]), [1, 3])

    def test_rights(self):
        f = self.conn("fred")
        tagged, _ = f.imap("c", "CREATE shared")
        mid = re.search(rb"MAILBOXID \(([^)]+)\)", tagged).group(1)
        self.append(f, "shared", msg("s", "s@x"))
        self.ok(f, "SELECT shared")
        fids = self.ids(f)
        box = '"Other Users/fred/shared"'
        j = self.conn("joe")
        self.no(j, "STATUS %s (MAILBOXID)" % box, "NONEXISTENT")
        self.ok(f, "SETACL shared joe l")
        tagged, untagged = j.imap("s", "STATUS %s (MAILBOXID)" % box)
        self.assertRegex(tagged, rb"^s NO ")
        self.assertEqual(untagged, [])
        self.ok(f, "SETACL shared joe lr")
        self.assertEqual(mailboxid_of(self, j, box), mid.decode())
        self.ok(j, "EXAMINE %s" % box)
        self.assertEqual(self.ids(j), fids)
        a = self.conn("admin")
        self.assertEqual(mailboxid_of(self, a, box), mid.decode())
        self.ok(a, "EXAMINE %s" % box)
        self.assertEqual(self.ids(a), fids)

    def test_bad_fetch(self):
        c = self.conn("fred")
        self.ok(c, "SELECT INBOX")
        for items in ("(EMAILID[])", "(THREADID (X))", "EMAILID.PEEK"):
            tagged, _ = c.imap("b", "FETCH 1:* %s" % items)
            self.assertRegex(tagged, rb"^b BAD ", items)
        tagged, _ = c.imap("b", "STATUS INBOX (MAILBOXID MAILBOXID2)")
        self.assertRegex(tagged, rb"^b BAD ")
        self.ok(c, "NOOP")


if __name__ == "__main__":
    main()
