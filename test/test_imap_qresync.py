"""test_imap_qresync.py: QRESYNC (RFC 7162 section 3.2) end to end: SELECT/EXAMINE (QRESYNC
...) is BAD before ENABLE QRESYNC; VANISHED (EARLIER) and the FETCH (UID FLAGS MODSEQ) of
changed messages at reselect, with known uids and sequence match data; a UIDVALIDITY
mismatch sends nothing; UID FETCH (CHANGEDSINCE n VANISHED); VANISHED instead of EXPUNGE for
EXPUNGE, UID EXPUNGE, MOVE, another session's expunge and during IDLE; CLOSE sends nothing;
a reselect after 100 flag changes and 100 expunges costs data proportional to the changes;
and an old mod-sequence after the expunged records were compacted (coffer expire) still gets
every uid the client may know of that is gone."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main, run_coffer  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: qr %d\r\n"
       b"Message-ID: <qr%d@example.com>\r\n\r\nbody %d\r\n")
USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}


def vanished(untagged, earlier):
    """The uids of the VANISHED lines (with or without EARLIER, as asked)."""
    out = set()
    for line in untagged:
        m = re.match(rb"\* VANISHED (\(EARLIER\) )?([0-9:,]+)\r\n$", line)
        if not m or bool(m.group(1)) != earlier:
            continue
        for part in m.group(2).split(b","):
            lo, _, hi = part.partition(b":")
            lo, hi = int(lo), int(hi or lo)
            out.update(range(min(lo, hi), max(lo, hi) + 1))
    return out


def fetched(untagged):
    """{uid: (flags bytes, modseq)} from untagged FETCH lines."""
    out = {}
    for line in untagged:
        if not re.match(rb"\* \d+ FETCH", line):
            continue
        uid = re.search(rb"UID (\d+)", line)
        ms = re.search(rb"MODSEQ \((\d+)\)", line)
        fl = re.search(rb"FLAGS \(([^)]*)\)", line)
        out[int(uid.group(1)) if uid else None] = (fl.group(1) if fl else None,
                                                   int(ms.group(1)) if ms else None)
    return out


class Qresync(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "expunge_mode": "immediate", "admins": "boss"}}

    def box(self, name, n, user="fred"):
        c = self.conn(user)
        self.ok(c, 'CREATE "%s"' % name)
        for i in range(1, n + 1, 50):
            # MULTIAPPEND is not there: one APPEND per message, pipelined in groups
            batch = []
            for k in range(i, min(i + 50, n + 1)):
                m = (MSG % (k, k, k)).decode()
                batch.append('a%d APPEND "%s" {%d+}\r\n%s\r\n' % (k, name, len(m), m))
            c.send("".join(batch).encode())
            for k in range(i, min(i + 50, n + 1)):
                tagged, _ = c.read_tagged("a%d" % k)
                self.assertRegex(tagged, rb"OK")
        return c

    def state(self, c, name):
        """(uidvalidity, highestmodseq, uids) of name, selected in c."""
        u = self.ok(c, 'SELECT "%s"' % name)
        uv = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(u)).group(1))
        hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(u)).group(1))
        uids = sorted(int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(c, "UID FETCH 1:* UID"))))
        return uv, hms, uids

    def qconn(self):
        c = self.conn("fred")
        self.ok(c, "ENABLE QRESYNC")
        return c

    def test_needs_enable(self):
        c = self.box("needen", 2)
        uv, hms, _ = self.state(c, "needen")
        tagged, _ = c.imap("b", 'SELECT "needen" (QRESYNC (%d %d))' % (uv, hms))
        self.assertRegex(tagged, rb"^b BAD ")
        self.ok(c, "ENABLE QRESYNC")
        self.ok(c, 'SELECT "needen" (QRESYNC (%d %d))' % (uv, hms))
        for bad in ('SELECT "needen" (QRESYNC)', 'SELECT "needen" (QRESYNC ())',
                    'SELECT "needen" (QRESYNC (%d))' % uv, 'SELECT "needen" (QRESYNC (%d 0))' % uv,
                    'SELECT "needen" (QRESYNC (%d %d 1:*))' % (uv, hms),
                    'SELECT "needen" (QRESYNC (%d %d 1:4 (1:2 1)))' % (uv, hms),
                    'UID FETCH 1:* FLAGS (VANISHED)'):
            with self.subTest(bad=bad):
                self.assertRegex(c.imap("b", bad)[0], rb"^b BAD ")

    def test_reselect(self):
        c = self.box("resel", 10)
        uv, hms, uids = self.state(c, "resel")
        # another session changes flags and expunges while c is away
        o = self.conn("fred")
        self.ok(o, 'SELECT "resel"')
        self.ok(o, "UID STORE %d,%d +FLAGS (\\Flagged)" % (uids[1], uids[5]))
        self.ok(o, "UID STORE %d,%d +FLAGS (\\Deleted)" % (uids[2], uids[3]))
        self.ok(o, "EXPUNGE")
        q = self.qconn()
        u = self.ok(q, 'SELECT "resel" (QRESYNC (%d %d))' % (uv, hms))
        self.assertEqual(vanished(u, True), {uids[2], uids[3]})
        f = fetched(u)
        self.assertEqual(set(f), {uids[1], uids[5]})
        self.assertTrue(all(b"\\Flagged" in v[0] and v[1] > hms for v in f.values()), f)
        new_hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(u)).group(1))
        self.assertGreater(new_hms, hms)
        # VANISHED (EARLIER) comes before the FETCHes, and both before the tagged OK
        kinds = [b"V" if b"VANISHED" in x else b"F" for x in u if b"VANISHED" in x or b"FETCH" in x]
        self.assertEqual(kinds, sorted(kinds, reverse=True))
        # up to date: nothing; [CLOSED] first (RFC 7162 section 3.2.11)
        u = self.ok(q, 'SELECT "resel" (QRESYNC (%d %d))' % (uv, new_hms))
        self.assertRegex(u[0], rb"^\* OK \[CLOSED\]")
        self.assertEqual((vanished(u, True), fetched(u)), (set(), {}))
        # known uids restrict VANISHED
        u = self.ok(q, 'SELECT "resel" (QRESYNC (%d %d %d:%d))' % (uv, hms, uids[3], uids[-1]))
        self.assertEqual(vanished(u, True), {uids[3]})
        # a wrong UIDVALIDITY: no VANISHED, no FETCH
        u = self.ok(q, 'EXAMINE "resel" (QRESYNC (%d %d))' % (uv + 1, hms))
        self.assertEqual((vanished(u, True), fetched(u)), (set(), {}))
        # EXAMINE works the same as SELECT
        u = self.ok(q, 'EXAMINE "resel" (QRESYNC (%d %d))' % (uv, hms))
        self.assertEqual(vanished(u, True), {uids[2], uids[3]})

    def test_rfc_example_match_data(self):
        # RFC 7162 section 3.2.5.2 shape: known uids and (seq-match uid-match)
        c = self.box("match", 8)
        uv, hms, uids = self.state(c, "match")
        o = self.conn("fred")
        self.ok(o, 'SELECT "match"')
        self.ok(o, "UID STORE %d +FLAGS (\\Deleted)" % uids[6])
        self.ok(o, "EXPUNGE")
        q = self.qconn()
        u = self.ok(q, 'SELECT "match" (QRESYNC (%d %d %d:%d (1,3 %d,%d)))'
                    % (uv, hms, uids[0], uids[-1], uids[0], uids[2]))
        self.assertEqual(vanished(u, True), {uids[6]})

    def test_fetch_vanished_modifier(self):
        c = self.box("fv", 6)
        uv, hms, uids = self.state(c, "fv")
        self.ok(c, "ENABLE QRESYNC")
        self.ok(c, 'SELECT "fv" (QRESYNC (%d %d))' % (uv, hms))
        o = self.conn("fred")
        self.ok(o, 'SELECT "fv"')
        self.ok(o, "UID STORE %d +FLAGS (\\Deleted)" % uids[0])
        self.ok(o, "UID EXPUNGE %d" % uids[0])
        self.ok(o, "UID STORE %d +FLAGS (\\Answered)" % uids[4])
        tagged, u = c.imap("v", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms)
        self.assertRegex(tagged, rb"^v OK")
        self.assertEqual(vanished(u, True), {uids[0]})
        self.assertIn(uids[4], fetched(u))
        # non-UID FETCH with VANISHED: BAD (RFC 7162 section 3.2.6)
        self.assertRegex(c.imap("b", "FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % hms)[0],
                         rb"^b BAD ")

    def test_vanished_replaces_expunge(self):
        c = self.box("vx", 8)
        _, _, uids = self.state(c, "vx")
        q = self.qconn()
        self.ok(q, 'SELECT "vx"')
        self.ok(q, "UID STORE %d,%d +FLAGS.SILENT (\\Deleted)" % (uids[0], uids[1]))
        u = self.ok(q, "EXPUNGE")
        self.assertEqual(vanished(u, False), {uids[0], uids[1]})
        self.assertFalse([x for x in u if re.match(rb"\* \d+ EXPUNGE", x)], u)
        self.ok(q, "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[2])
        self.assertEqual(vanished(self.ok(q, "UID EXPUNGE %d" % uids[2]), False), {uids[2]})
        # MOVE (RFC 6851 section 4.3 with QRESYNC: VANISHED, COPYUID first)
        self.ok(q, 'CREATE "vx-dest"')
        u = self.ok(q, "UID MOVE %d vx-dest" % uids[3])
        self.assertEqual(vanished(u, False), {uids[3]})
        self.assertRegex(u[0], rb"^\* OK \[COPYUID ")
        # another session's expunge, seen at NOOP
        o = self.conn("fred")
        self.ok(o, 'SELECT "vx"')
        self.ok(o, "UID STORE %d +FLAGS (\\Deleted)" % uids[4])
        self.ok(o, "EXPUNGE")
        self.assertEqual(vanished(self.ok(q, "NOOP"), False), {uids[4]})
        # and during IDLE
        q.send(b"i IDLE\r\n")
        q.expect(rb"^\+ ")
        self.ok(o, "UID STORE %d +FLAGS (\\Deleted)" % uids[5])
        self.ok(o, "EXPUNGE")
        line = q.expect(rb"^\* VANISHED ").string
        self.assertEqual(vanished([line.rstrip(b"\r\n") + b"\r\n"], False), {uids[5]})
        q.send(b"DONE\r\n")
        self.assertRegex(q.read_tagged("i")[0], rb"^i OK")
        # CLOSE expunges silently
        self.ok(q, "UID STORE %d +FLAGS.SILENT (\\Deleted)" % uids[6])
        self.assertEqual(self.ok(q, "CLOSE"), [])
        # a session without QRESYNC still gets EXPUNGE
        p = self.conn("fred")
        self.ok(p, 'SELECT "vx"')
        self.ok(p, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(self.ok(p, "EXPUNGE"), [b"* 1 EXPUNGE\r\n"])
        # FETCH responses carry UID with QRESYNC on (RFC 7162 section 3.2.4)
        self.ok(q, 'CREATE "vx2"')
        m = (MSG % (1, 1, 1)).decode()
        self.ok(q, 'APPEND "vx2" {%d+}\r\n%s' % (len(m), m))
        self.ok(q, 'SELECT "vx2"')
        self.assertRegex(self.ok(q, "FETCH 1 FLAGS")[0], rb"UID \d+")

    def test_reselect_100_changes(self):
        n = 600
        c = self.box("big", n)
        uv, hms, uids = self.state(c, "big")
        self.ok(c, "UID STORE %s +FLAGS.SILENT (\\Flagged)"
                % ",".join(str(u) for u in uids[0:200:2]))          # 100 flag changes
        self.ok(c, "UID STORE %d:%d +FLAGS.SILENT (\\Deleted)" % (uids[300], uids[399]))
        self.ok(c, "EXPUNGE")                                        # 100 expunges
        q = self.qconn()
        q.send(b'r SELECT "big" (QRESYNC (%d %d 1:%d))\r\n' % (uv, hms, uids[-1]))
        data = b""
        while True:
            line = q.readline()
            data += line
            if line.startswith(b"r "):
                break
        self.assertRegex(line, rb"^r OK")
        lines = data.split(b"\r\n")
        self.assertEqual(vanished([x + b"\r\n" for x in lines], True), set(uids[300:400]))
        self.assertEqual(len(fetched([x + b"\r\n" for x in lines])), 100)
        # proportional to the changes, not to the 600 messages: ~100 FETCH lines of < 120
        # bytes and one VANISHED line
        self.assertLess(len(data), 100 * 120 + 2000, len(data))

    def test_compacted_expunges(self):
        c = self.box("compact", 6)
        uv, hms, uids = self.state(c, "compact")
        self.ok(c, "UID STORE %d,%d +FLAGS (\\Deleted)" % (uids[1], uids[2]))
        self.ok(c, "EXPUNGE")
        _, hms2, _ = self.state(c, "compact")
        self.ok(c, "UID STORE %d +FLAGS (\\Deleted)" % uids[4])
        self.ok(c, "EXPUNGE")
        self.ok(c, "UNSELECT")
        # with expunge_mode immediate, coffer expire drops the expunged records at once
        # (coffer-store(5)): the index no longer knows what vanished before
        rc, out, err = run_coffer(self.coffer, "expire")
        self.assertEqual(rc, 0, err)
        q = self.qconn()
        # older than what the index still holds: every known uid not present
        u = self.ok(q, 'SELECT "compact" (QRESYNC (%d %d %d:%d))' % (uv, hms, uids[0], uids[-1]))
        self.assertEqual(vanished(u, True), {uids[1], uids[2], uids[4]})
        u = self.ok(q, 'SELECT "compact" (QRESYNC (%d %d))' % (uv, hms2))
        self.assertTrue({uids[4]} <= vanished(u, True) <= {uids[1], uids[2], uids[4]})

    def test_rights(self):
        f = self.box("qrights", 4)
        uv, hms, uids = self.state(f, "qrights")
        self.ok(f, "STORE 1 +FLAGS (\\Flagged)")
        self.ok(f, "STORE 4 +FLAGS (\\Deleted)")
        self.ok(f, "EXPUNGE")
        box = '"Other Users/fred/qrights"'
        qs = "SELECT %s (QRESYNC (%d %d 1:%d))" % (box, uv, hms, uids[-1])
        # no rights at all: no such mailbox, and no VANISHED or FETCH data
        j = self.conn("joe")
        self.ok(j, "ENABLE QRESYNC")
        tagged, untagged = j.imap("q", qs)
        self.assertRegex(tagged, rb"^q NO \[NONEXISTENT\] ")
        self.assertEqual(untagged, [])
        # l without r: NOPERM, still nothing
        self.ok(f, 'SETACL "qrights" joe l')
        tagged, untagged = j.imap("q", qs)
        self.assertRegex(tagged, rb"^q NO \[NOPERM\] ")
        self.assertEqual(vanished(untagged, True), set())
        self.assertEqual(fetched(untagged), {})
        # l r: another user's mailbox resyncs read-only
        self.ok(f, 'SETACL "qrights" joe lr')
        u = self.ok(j, qs.replace("SELECT", "EXAMINE"))
        self.assertEqual(vanished(u, True), {uids[3]})
        self.assertEqual(set(fetched(u)), {uids[0]})
        # an administrator has every right (imapd(8)): the same answer, read-write
        b = self.conn("boss")
        self.ok(b, "ENABLE QRESYNC")
        tagged, u = b.imap("q", qs)
        self.assertRegex(tagged, rb"^q OK \[READ-WRITE\]")
        self.assertEqual(vanished(u, True), {uids[3]})
        self.assertEqual(fetched(u)[uids[0]][0], b"\\Flagged")


if __name__ == "__main__":
    main()
