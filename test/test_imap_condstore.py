"""test_imap_condstore.py: CONDSTORE (RFC 7162 section 3.1) end to end: the capability,
HIGHESTMODSEQ at SELECT/EXAMINE, SELECT (CONDSTORE), ENABLE CONDSTORE and what `* ENABLED`
lists, FETCH MODSEQ and (CHANGEDSINCE n), STORE (UNCHANGEDSINCE n) with [MODIFIED set] in
both forms (and UNCHANGEDSINCE 0, .SILENT), a STORE that changes nothing keeping the
mod-sequence, SEARCH MODSEQ with and without an entry name, (MODSEQ n) in SEARCH and MODSEQ
in ESEARCH, MODSEQ in the untagged FETCH another session's flag change causes, the
CONDSTORE-enabling commands, rights (lr only: NO), per-user \\Seen in a shared mailbox, and
BAD for malformed modifiers."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: cs %d\r\n"
       b"Message-ID: <cs%d@example.com>\r\n\r\nbody %d\r\n")
N = 6
USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}


def modseqs(untagged):
    """{uid or msgno: modseq} from FETCH lines (uid when present)."""
    out = {}
    for line in untagged:
        m = re.match(rb"\* (\d+) FETCH \((.*)\)\r\n$", line)
        if not m:
            continue
        ms = re.search(rb"MODSEQ \((\d+)\)", m.group(2))
        uid = re.search(rb"UID (\d+)", m.group(2))
        key = int(uid.group(1)) if uid else int(m.group(1))
        out[key] = int(ms.group(1)) if ms else None
    return out


class Condstore(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def box(self, name, user="fred", n=N):
        c = self.conn(user)
        self.ok(c, 'CREATE "%s"' % name)
        for i in range(1, n + 1):
            m = (MSG % (i, i, i)).decode()
            self.ok(c, 'APPEND "%s" {%d+}\r\n%s' % (name, len(m), m))
        return c

    def hms(self, untagged):
        for u in untagged:
            m = re.match(rb"\* OK \[HIGHESTMODSEQ (\d+)\]", u)
            if m:
                return int(m.group(1))
        self.fail("no HIGHESTMODSEQ in %r" % untagged)

    def test_capability_and_select(self):
        c = self.box("cap")
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" CONDSTORE", caps)
        self.assertIn(b" QRESYNC", caps)
        h1 = self.hms(self.ok(c, 'SELECT "cap"'))
        self.assertGreaterEqual(h1, 1)
        h2 = self.hms(self.ok(c, 'EXAMINE "cap"'))
        self.assertEqual(h1, h2)
        u = self.ok(c, 'SELECT "cap" (CONDSTORE)')
        self.assertEqual(self.hms(u), h1)
        # a new, empty mailbox still has a valid (non-zero) HIGHESTMODSEQ
        self.ok(c, 'CREATE "empty"')
        self.assertGreaterEqual(self.hms(self.ok(c, 'SELECT "empty"')), 1)
        for bad in ('SELECT "cap" ()', 'SELECT "cap" (FOO)', 'SELECT "cap" (CONDSTORE CONDSTORE)',
                    'SELECT "cap" CONDSTORE', 'EXAMINE "cap" (QRESYNC)'):
            with self.subTest(bad=bad):
                self.assertRegex(c.imap("b", bad)[0], rb"^b BAD ")

    def test_enable(self):
        c = self.conn("fred")
        self.assertEqual(self.ok(c, "ENABLE CONDSTORE"), [b"* ENABLED CONDSTORE\r\n"])
        # already on: not listed again; unknown names ignored
        self.assertEqual(self.ok(c, "ENABLE CONDSTORE X-FOO"), [b"* ENABLED\r\n"])
        self.assertEqual(self.ok(c, "ENABLE QRESYNC"), [b"* ENABLED QRESYNC\r\n"])
        d = self.conn("fred")
        self.assertEqual(self.ok(d, "ENABLE qresync condstore"), [b"* ENABLED QRESYNC\r\n"])

    def test_fetch_modseq_changedsince(self):
        c = self.box("fetch")
        self.ok(c, 'SELECT "fetch"')
        before = modseqs(self.ok(c, "FETCH 1:* (UID MODSEQ)"))
        self.assertEqual(len(before), N)
        hms = max(before.values())
        self.ok(c, "STORE 2,4 +FLAGS (\\Flagged)")
        after = modseqs(self.ok(c, "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms))
        uids = sorted(before)
        self.assertEqual(sorted(after), [uids[1], uids[3]])
        self.assertTrue(all(v > hms for v in after.values()))
        # both changed in one STORE: one new mod-sequence
        self.assertEqual(len(set(after.values())), 1)
        self.assertEqual(self.ok(c, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % max(after.values())),
                         [])
        # non-UID form: message numbers and the MODSEQ item implied
        lines = self.ok(c, "FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
        self.assertEqual(len(lines), 2)
        self.assertRegex(lines[0], rb"^\* 2 FETCH \(FLAGS \(\\Flagged[^)]*\) MODSEQ \(\d+\)\)")
        self.assertEqual(self.hms(self.ok(c, 'SELECT "fetch"')), max(after.values()))
        for bad in ("FETCH 1 FLAGS (CHANGEDSINCE)", "FETCH 1 FLAGS (CHANGEDSINCE 0)",
                    "FETCH 1 FLAGS (CHANGEDSINCE abc)", "FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
                    "FETCH 1 FLAGS (FOO 1)", "FETCH 1 FLAGS ()", "FETCH 1 FLAGS CHANGEDSINCE",
                    "FETCH 1 FLAGS (CHANGEDSINCE 99999999999999999999)",
                    "UID FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)",   # QRESYNC not enabled
                    "FETCH 1 FLAGS (VANISHED)"):
            with self.subTest(bad=bad):
                self.assertRegex(c.imap("b", bad)[0], rb"^b BAD ")

    def test_store_unchangedsince(self):
        c = self.box("cond")
        self.ok(c, 'SELECT "cond"')
        ms = modseqs(self.ok(c, "FETCH 1:* MODSEQ"))
        base = max(ms.values())
        # RFC 7162 section 3.1.3 example: message 2 changed meanwhile by another session
        o = self.conn("fred")
        self.ok(o, 'SELECT "cond"')
        self.ok(o, "STORE 2 +FLAGS.SILENT ($Other)")
        tagged, untagged = c.imap("d", "STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS (\\Deleted)" % base)
        self.assertRegex(tagged, rb"^d OK \[MODIFIED 2\]")
        got = {int(re.match(rb"\* (\d+) FETCH", u).group(1)) for u in untagged
               if re.match(rb"\* \d+ FETCH \(FLAGS \(\\Deleted", u)}
        self.assertEqual(got, {1, 3})
        self.assertTrue(all(b"MODSEQ (" in u for u in untagged if b"FETCH" in u), untagged)
        flags2 = b"".join(self.ok(c, "FETCH 2 FLAGS"))
        self.assertNotIn(b"\\Deleted", flags2)
        # UID form: MODIFIED lists uids; .SILENT still sends MODSEQ alone
        uids = sorted(ms)
        ms_now = modseqs(self.ok(c, "UID FETCH 1:* MODSEQ"))
        tagged, untagged = c.imap("e", "UID STORE %d,%d (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Seen)"
                                  % (uids[0], uids[4], ms_now[uids[4]]))
        self.assertRegex(tagged, rb"^e OK \[MODIFIED %d\]" % uids[0])
        self.assertEqual(len(untagged), 1, untagged)
        self.assertRegex(untagged[0], rb"^\* 5 FETCH \(UID %d MODSEQ \(\d+\)\)" % uids[4])
        # UNCHANGEDSINCE 0 always fails (RFC 7162 section 3.1.3)
        tagged, _ = c.imap("f", "STORE 6 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)")
        self.assertRegex(tagged, rb"^f OK \[MODIFIED 6\]")
        for bad in ("STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)",
                    "STORE 1 (CHANGEDSINCE 1) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)",
                    "STORE 1 (UNCHANGEDSINCE 5) +FLAGS"):
            with self.subTest(bad=bad):
                self.assertRegex(c.imap("b", bad)[0], rb"^b BAD ")

    def test_noop_store_keeps_modseq(self):
        c = self.box("noop")
        self.ok(c, 'SELECT "noop"')
        self.ok(c, "STORE 1 +FLAGS (\\Flagged)")
        m1 = modseqs(self.ok(c, "FETCH 1 MODSEQ"))[1]
        self.ok(c, "STORE 1 +FLAGS (\\Flagged)")
        self.ok(c, "STORE 1 -FLAGS (\\Answered)")
        self.assertEqual(modseqs(self.ok(c, "FETCH 1 MODSEQ"))[1], m1)
        self.assertEqual(self.hms(self.ok(c, 'SELECT "noop"')), m1)

    def test_untagged_fetch_has_modseq(self):
        c = self.box("push")
        self.ok(c, 'SELECT "push"')
        o = self.conn("fred")
        self.ok(o, 'SELECT "push"')
        self.ok(o, "STORE 3 +FLAGS (\\Answered)")
        plain = self.ok(c, "NOOP")
        self.assertTrue(any(re.match(rb"\* 3 FETCH \(FLAGS \(\\Answered[^)]*\)\)", u) for u in plain), plain)
        self.ok(c, "ENABLE CONDSTORE")
        self.ok(o, "STORE 4 +FLAGS (\\Answered)")
        after = self.ok(c, "NOOP")
        self.assertTrue(any(re.match(rb"\* 4 FETCH \(FLAGS \(\\Answered[^)]*\) MODSEQ \(\d+\)\)", u)
                            for u in after), after)

    def test_implicit_enable(self):
        # FETCH MODSEQ turns CONDSTORE on: later flag updates carry MODSEQ
        c = self.box("implicit")
        self.ok(c, 'SELECT "implicit"')
        self.ok(c, "FETCH 1 MODSEQ")
        u = self.ok(c, "STORE 1 +FLAGS (\\Seen)")
        self.assertRegex(u[0], rb"MODSEQ \(\d+\)")
        # and SELECT (CONDSTORE) in a fresh session
        d = self.conn("fred")
        self.ok(d, 'SELECT "implicit" (CONDSTORE)')
        u = self.ok(d, "STORE 2 +FLAGS (\\Seen)")
        self.assertRegex(u[0], rb"MODSEQ \(\d+\)")
        # and a SEARCH MODSEQ
        e = self.conn("fred")
        self.ok(e, 'SELECT "implicit"')
        self.ok(e, "SEARCH MODSEQ 1")
        self.assertRegex(self.ok(e, "STORE 3 +FLAGS (\\Seen)")[0], rb"MODSEQ \(\d+\)")
        # nothing of that without them
        f = self.conn("fred")
        self.ok(f, 'SELECT "implicit"')
        self.assertNotIn(b"MODSEQ", b"".join(self.ok(f, "STORE 4 +FLAGS (\\Seen)")))

    def test_search_modseq(self):
        c = self.box("search")
        self.ok(c, 'SELECT "search"')
        base = max(modseqs(self.ok(c, "FETCH 1:* MODSEQ")).values())
        self.ok(c, "STORE 2 +FLAGS (\\Draft)")
        self.ok(c, "STORE 5 +FLAGS (\\Flagged)")
        m5 = modseqs(self.ok(c, "FETCH 5 MODSEQ"))[5]
        u = self.ok(c, "SEARCH MODSEQ %d" % (base + 1))
        self.assertEqual(u, [b"* SEARCH 2 5 (MODSEQ %d)\r\n" % m5])
        # RFC 7162 section 3.1.5 example form, with an entry name and type
        u = self.ok(c, 'SEARCH MODSEQ "/flags/\\\\draft" all %d' % (base + 1))
        self.assertEqual(u, [b"* SEARCH 2 5 (MODSEQ %d)\r\n" % m5])
        u = self.ok(c, "SEARCH OR NOT MODSEQ %d MODSEQ %d" % (base + 1, m5))
        self.assertEqual(u, [b"* SEARCH 1 3 4 5 6 (MODSEQ %d)\r\n" % m5])
        # no match: no MODSEQ part
        self.assertEqual(self.ok(c, "SEARCH MODSEQ %d" % (m5 + 1)), [b"* SEARCH\r\n"])
        u = self.ok(c, "SEARCH RETURN (COUNT) MODSEQ %d" % (base + 1), tag="E1")
        self.assertEqual(u, [b'* ESEARCH (TAG "E1") COUNT 2 MODSEQ %d\r\n' % m5])
        u = self.ok(c, "UID SEARCH RETURN (MIN) MODSEQ %d" % (base + 1), tag="E2")
        m2 = modseqs(self.ok(c, "FETCH 2 MODSEQ"))[2]
        self.assertRegex(u[0], rb'^\* ESEARCH \(TAG "E2"\) UID MIN \d+ MODSEQ %d\r\n' % m2)
        for bad in ("SEARCH MODSEQ", "SEARCH MODSEQ x", "SEARCH MODSEQ -1",
                    'SEARCH MODSEQ "/flags/\\\\draft" 5', 'SEARCH MODSEQ "/flags/\\\\draft" foo 5',
                    'SEARCH MODSEQ "/other/x" all 5', "SEARCH MODSEQ 99999999999999999999"):
            with self.subTest(bad=bad):
                self.assertRegex(c.imap("b", bad)[0], rb"^b BAD ")

    def test_rights_read_only(self):
        c = self.box("joeshare")
        self.ok(c, 'SETACL "joeshare" joe lr')
        j = self.conn("joe")
        self.ok(j, 'SELECT "Other Users/fred/joeshare"')
        tagged, _ = j.imap("s", "STORE 1 (UNCHANGEDSINCE 99999) +FLAGS (\\Seen)")
        self.assertRegex(tagged, rb"^s NO ")
        # reading mod-sequences needs only r
        self.assertEqual(len(modseqs(self.ok(j, "FETCH 1:* MODSEQ"))), N)

    def test_rights_none_and_admin(self):
        c = self.box("csprivate")
        box = '"Other Users/fred/csprivate"'
        # no rights at all: no such mailbox, for SELECT (CONDSTORE) and STATUS HIGHESTMODSEQ
        j = self.conn("joe")
        tagged, untagged = j.imap("s", "SELECT %s (CONDSTORE)" % box)
        self.assertRegex(tagged, rb"^s NO \[NONEXISTENT\] ")
        self.assertEqual(untagged, [])
        tagged, untagged = j.imap("s", "STATUS %s (HIGHESTMODSEQ)" % box)
        self.assertRegex(tagged, rb"^s NO \[NONEXISTENT\] ")
        self.assertEqual(untagged, [])
        # an administrator has every right (imapd(8)): selects read-write, reads modseqs,
        # and a conditional STORE succeeds or reports MODIFIED as for the owner
        b = self.conn("boss")
        tagged, u = b.imap("s", "SELECT %s (CONDSTORE)" % box)
        self.assertRegex(tagged, rb"^s OK \[READ-WRITE\]")
        hms = self.hms(u)
        ms = modseqs(self.ok(b, "FETCH 1:* MODSEQ"))
        self.assertEqual(len(ms), N)
        tagged, untagged = b.imap("s", "STORE 1 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % ms[1])
        self.assertRegex(tagged, rb"^s OK")
        self.assertGreater(modseqs(untagged)[1], hms)
        tagged, _ = b.imap("s", "STORE 1 (UNCHANGEDSINCE %d) -FLAGS (\\Flagged)" % ms[1])
        self.assertRegex(tagged, rb"^s OK \[MODIFIED 1\]")
        st = b"".join(self.ok(b, "STATUS %s (HIGHESTMODSEQ)" % box))
        self.assertRegex(st, rb"HIGHESTMODSEQ %d\)" % modseqs(untagged)[1])
        # the owner sees the administrator's change
        self.ok(c, 'SELECT "csprivate"')
        self.assertIn(b"\\Flagged", b"".join(self.ok(c, "FETCH 1 FLAGS")))

    def test_shared_per_user_seen(self):
        b = self.conn("boss")
        self.ok(b, 'CREATE "Shared Folders/cs"')
        self.ok(b, 'SETACL "Shared Folders/cs" anyone lrsw')
        for i in range(1, 4):
            m = (MSG % (i, i, i)).decode()
            self.ok(b, 'APPEND "Shared Folders/cs" {%d+}\r\n%s' % (len(m), m))
        f = self.conn("fred")
        j = self.conn("joe")
        self.ok(f, 'SELECT "Shared Folders/cs" (CONDSTORE)')
        self.ok(j, 'SELECT "Shared Folders/cs" (CONDSTORE)')
        base = max(modseqs(self.ok(j, "FETCH 1:* MODSEQ")).values())
        hj = self.hms(self.ok(j, 'SELECT "Shared Folders/cs" (CONDSTORE)'))
        u = self.ok(f, "STORE 1 +FLAGS (\\Seen)")
        fm = modseqs(u)[1]
        self.assertGreater(fm, base)
        # fred sees his own change through CHANGEDSINCE and HIGHESTMODSEQ ...
        self.assertEqual(list(modseqs(self.ok(f, "FETCH 1:* FLAGS (CHANGEDSINCE %d)" % base))), [1])
        self.assertGreaterEqual(self.hms(self.ok(f, 'SELECT "Shared Folders/cs"')), fm)
        # ... joe's view of the messages does not change: not \Seen, no change since base
        self.assertEqual(self.ok(j, "FETCH 1:* FLAGS (CHANGEDSINCE %d)" % base), [])
        self.assertNotIn(b"\\Seen", b"".join(self.ok(j, "FETCH 1 FLAGS")))
        self.assertEqual(self.hms(self.ok(j, 'SELECT "Shared Folders/cs"')), hj)


if __name__ == "__main__":
    main()
