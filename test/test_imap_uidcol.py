"""test_imap_uidcol.py: a fresh session's view of a mailbox big enough to have a uid column
file ("uidcol", coffer-store(5)) equals what the messages say, whether the column was kept up
to date by the commits of another session (flag changes, expunges, appends), damaged, or
removed: SELECT's EXISTS, UID SEARCH ALL, FETCH FLAGS and the RFC 7162 section 3.2.5 QRESYNC
answer (VANISHED (EARLIER) and the changed messages) are compared with the client's own
record of the changes; a session that keeps it selected follows another's changes exactly
(NOOP, FETCH CHANGEDSINCE), with the column kept, damaged or removed."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main, wait_for  # noqa: E402

N = 1100           # above the size from which a mailbox gets a column (1,024 records)


def msg(i):
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: c%d\r\n"
            b"Message-ID: <c%d@example.com>\r\n\r\nbody %d\r\n" % (i, i, i))


def mailbox_dir(spool, suffix):
    """The directory of the mailbox whose header names a mailbox ending in suffix."""
    for xx in os.listdir(spool):
        top = os.path.join(spool, xx)
        if not os.path.isdir(top):
            continue
        for uid in os.listdir(top):
            try:
                with open(os.path.join(top, uid, "header"), "rb") as f:
                    if re.search(rb"\nname [^\n]*%s\n" % suffix.encode(), f.read()):
                        return os.path.join(top, uid)
            except OSError:
                pass
    return None


class UidColumn(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("cole", "secret")

    def conn(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN cole secret")[0], rb"^l OK")
        return c

    def ok(self, c, text):
        tagged, untagged = c.imap("t", text)
        self.assertRegex(tagged, rb"^t OK", text)
        return untagged

    def fill(self, c, box, first, n):
        """MULTIAPPEND (RFC 3502) of messages first..first+n-1, 100 at a time (LITERAL+)."""
        for lo in range(first, first + n, 100):
            parts = [b"{%d+}\r\n%s" % (len(msg(i)), msg(i))
                     for i in range(lo, min(lo + 100, first + n))]
            c.send(b"t APPEND " + box.encode() + b" " + b" ".join(parts) + b"\r\n")
            self.assertRegex(c.read_tagged("t")[0], rb"^t OK")

    def fresh_view(self, box, uv, hms):
        """A new session's SELECT box (QRESYNC (uv hms)): (exists, vanished uid set, {uid:
        flags} of the FETCHes it sent, uids of UID SEARCH ALL, {uid: flags} of all)."""
        c = self.conn()
        self.ok(c, "ENABLE QRESYNC")
        sel = self.ok(c, "SELECT %s (QRESYNC (%d %d))" % (box, uv, hms))
        exists = vanished = None
        fetched = {}
        for line in sel:
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                exists = int(m.group(1))
            m = re.match(rb"\* VANISHED \(EARLIER\) ([\d:,]+)", line)
            if m:
                vanished = set()
                for part in m.group(1).split(b","):
                    lo, _, hi = part.partition(b":")
                    vanished |= set(range(int(lo), int(hi or lo) + 1))
            m = re.search(rb"UID (\d+)", line)
            f = re.search(rb"FLAGS \(([^)]*)\)", line)
            if line.startswith(b"* ") and b"FETCH" in line and m and f:
                fetched[int(m.group(1))] = set(f.group(1).split()) - {b"\\Recent"}
        search = b"".join(self.ok(c, "UID SEARCH ALL"))
        uids = [int(x) for x in re.findall(rb"\d+", search.split(b"SEARCH", 1)[1])]
        flags = {}
        for line in self.ok(c, "UID FETCH 1:* (FLAGS)"):
            m = re.search(rb"UID (\d+)", line)
            f = re.search(rb"FLAGS \(([^)]*)\)", line)
            if m and f:
                flags[int(m.group(1))] = set(f.group(1).split()) - {b"\\Recent"}
        return exists, vanished or set(), fetched, uids, flags

    def test_fresh_sessions_through_the_column(self):
        box = "colbox"
        w = self.conn()
        self.ok(w, "CREATE %s" % box)
        self.fill(w, box, 0, N)
        self.ok(w, "ENABLE QRESYNC")
        sel = b"".join(self.ok(w, "SELECT %s" % box))
        uv = int(re.search(rb"UIDVALIDITY (\d+)", sel).group(1))
        d = mailbox_dir(self.coffer.spool, box)
        self.assertIsNotNone(d)
        col = os.path.join(d, "uidcol")
        # the first open of the full mailbox wrote the column
        wait_for(lambda: os.path.exists(col), 5, what="uid column file")
        live = {u: set() for u in range(1, N + 1)}
        gone = set()
        rounds = [("kept", None), ("damaged", b"\xff" * 64), ("removed", None),
                  ("damaged entry", b"\x00\x00\x00\x00")]
        for rnd, (how, damage) in enumerate(rounds):
            hms = int(re.search(rb"HIGHESTMODSEQ (\d+)",
                                b"".join(self.ok(w, "STATUS %s (HIGHESTMODSEQ)" % box))).group(1))
            # another session's changes: flags across the mailbox, expunges, new messages
            changed = set()
            for u in sorted(live)[rnd::97][:8]:
                self.ok(w, "UID STORE %d +FLAGS.SILENT (\\Flagged $C%d)" % (u, rnd))
                live[u] |= {b"\\Flagged", b"$C%d" % rnd}
                changed.add(u)
            dele = [u for u in sorted(live)[rnd + 5::131][:6] if u not in changed]
            self.ok(w, "UID STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(map(str, dele)))
            self.ok(w, "UID EXPUNGE %s" % ",".join(map(str, dele)))
            for u in dele:
                del live[u]
                gone.add(u)
            first_new = N + 1 + 3 * rnd
            self.fill(w, box, first_new, 3)
            for u in range(first_new, first_new + 3):
                live[u] = set()
            if how == "removed":
                os.unlink(col)
            elif how == "damaged":
                with open(col, "r+b") as f:
                    f.seek(0)
                    f.write(damage)
            elif how == "damaged entry":
                with open(col, "r+b") as f:
                    f.seek(64 + 272 * 3 + 8 * 5)   # the uid of an entry of block 3
                    f.write(damage)
            since = self.coffer.log_size()
            exists, vanished, fetched, uids, flags = self.fresh_view(box, uv, hms)
            # a column kept by the commits passes every check; a damaged block is noticed
            # (and rebuilt); one naming another header or none is simply not used
            damaged = self.coffer.log_grep("mailbox_uidcol_damaged", since)
            if how == "damaged entry":
                self.assertTrue(damaged, how)
            else:
                self.assertFalse(damaged, how)
            self.assertEqual(exists, len(live), how)
            self.assertEqual(uids, sorted(live), how)
            self.assertEqual(flags, live, how)
            self.assertEqual(vanished, set(dele), how)
            want = changed | set(range(first_new, first_new + 3))
            self.assertEqual(set(fetched), want, how)
            for u in want:
                self.assertEqual(fetched[u], live[u], how)
            # rebuilt (or kept): present again for the next round
            self.assertTrue(os.path.exists(col), how)

    def test_long_lived_session_follows_changes(self):
        """A session that keeps the mailbox selected while another changes it: its NOOP
        reports exactly the expunges (message numbers as they are when sent) and flag changes
        (RFC 3501 section 7.4.1, RFC 7162 section 3.2.10 with QRESYNC: VANISHED), and FETCH
        1:* (FLAGS) (CHANGEDSINCE m) (RFC 7162 section 3.1.4.1) exactly the messages changed
        after m, with their flags: with the column kept (the sync reads only the changed
        blocks), damaged and removed (it walks the view)."""
        box = "longbox"
        w = self.conn()
        self.ok(w, "CREATE %s" % box)
        self.fill(w, box, 0, N)
        self.ok(w, "SELECT %s" % box)
        d = mailbox_dir(self.coffer.spool, box)
        col = os.path.join(d, "uidcol")
        wait_for(lambda: os.path.exists(col), 5, what="uid column file")
        for qresync in (False, True):
            s = self.conn()
            if qresync:
                self.ok(s, "ENABLE QRESYNC")
            sel = b"".join(self.ok(s, "SELECT %s" % box))
            wait_for(lambda: os.path.exists(col), 5, what="uid column file")   # (re)built
            uids = [int(x) for x in re.findall(
                rb"\d+", b"".join(self.ok(s, "UID SEARCH ALL")).split(b"SEARCH", 1)[1])]
            flags = {}
            for line in self.ok(s, "UID FETCH 1:* (FLAGS)"):
                m = re.search(rb"UID (\d+)", line)
                f = re.search(rb"FLAGS \(([^)]*)\)", line)
                flags[int(m.group(1))] = set(f.group(1).split()) - {b"\\Recent"}
            self.assertEqual(len(uids), int(re.search(rb"(\d+) EXISTS", sel).group(1)))
            for rnd, how in enumerate(("kept", "kept", "damaged", "removed")):
                hms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(
                    self.ok(s, "STATUS %s (HIGHESTMODSEQ)" % box))).group(1))
                changed = set()
                for u in uids[rnd + 3::89][:9]:
                    kw = "$L%d%d" % (qresync, rnd)   # new to the message: a change
                    self.ok(w, "UID STORE %d +FLAGS.SILENT (\\Answered %s)" % (u, kw))
                    flags[u] |= {b"\\Answered", kw.encode()}
                    changed.add(u)
                dele = [u for u in uids[rnd + 7::113][:7] if u not in changed]
                self.ok(w, "UID STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(map(str, dele)))
                self.ok(w, "UID EXPUNGE %s" % ",".join(map(str, dele)))
                top = max(uids)   # the newest is never expunged here: uidnext - 1
                self.fill(w, box, top + 1, 2)
                if how == "damaged":
                    with open(col, "r+b") as f:
                        f.seek(64 + 272 * 2 + 256)   # the highest modseq of block 2
                        f.write(b"\x00" * 8)
                elif how == "removed" and os.path.exists(col):
                    os.unlink(col)
                since = self.coffer.log_size()
                u = self.ok(s, "NOOP")
                seen_changed, seen_gone, exists = {}, [], None
                cur = list(uids)
                for line in u:
                    m = re.match(rb"\* (\d+) EXPUNGE", line)
                    if m:
                        seen_gone.append(cur.pop(int(m.group(1)) - 1))
                    m = re.match(rb"\* VANISHED ([\d:,]+)", line)
                    if m:
                        for part in m.group(1).split(b","):
                            lo, _, hi = part.partition(b":")
                            for x in range(int(lo), int(hi or lo) + 1):
                                seen_gone.append(x)
                                cur.remove(x)
                    m = re.match(rb"\* (\d+) EXISTS", line)
                    if m:
                        exists = int(m.group(1))
                        cur += [top + 1, top + 2][:exists - len(cur)]
                    m = re.match(rb"\* (\d+) FETCH .*FLAGS \(([^)]*)\)", line)
                    if m and cur[int(m.group(1)) - 1] <= top:
                        seen_changed[cur[int(m.group(1)) - 1]] = \
                            set(m.group(2).split()) - {b"\\Recent"}
                self.assertEqual(sorted(seen_gone), sorted(dele), how)
                self.assertEqual(set(seen_changed), changed, how)
                for x in changed:
                    self.assertEqual(seen_changed[x], flags[x], how)
                uids = [x for x in uids if x not in dele] + [top + 1, top + 2]
                for x in dele:
                    del flags[x]
                flags[top + 1] = set()
                flags[top + 2] = set()
                self.assertEqual(exists, len(uids), how)
                if how == "damaged":
                    self.assertTrue(self.coffer.log_grep("mailbox_uidcol_damaged", since), how)
                # CHANGEDSINCE: exactly the changed and the new messages, by number and uid
                got = {}
                for line in self.ok(s, "FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % hms):
                    m = re.match(rb"\* (\d+) FETCH", line)
                    mu = re.search(rb"UID (\d+)", line)
                    f = re.search(rb"FLAGS \(([^)]*)\)", line)
                    self.assertEqual(uids[int(m.group(1)) - 1], int(mu.group(1)), how)
                    got[int(mu.group(1))] = set(f.group(1).split()) - {b"\\Recent"}
                self.assertEqual(set(got), changed | {top + 1, top + 2}, how)
                for x in got:
                    self.assertEqual(got[x], flags[x], how)
                # and on a part of the set only
                half = len(uids) // 2
                got = set()
                for line in self.ok(s, "FETCH %d:* (UID FLAGS) (CHANGEDSINCE %d)" % (half, hms)):
                    got.add(int(re.search(rb"UID (\d+)", line).group(1)))
                self.assertEqual(got, {x for x in changed | {top + 1, top + 2}
                                       if uids.index(x) + 1 >= half}, how)
            s.close()

    def test_lazy_view_numbers_after_other_sessions_expunges(self):
        """A session whose view came from the group summary ("uidsum": it reads a group of
        1,024 messages only when a number in it is used) keeps its message numbers while
        another session expunges in several groups (FETCH and STORE by number before its
        NOOP hit the messages they named when it last synced), then its NOOP's EXPUNGE
        numbers, applied in order, turn its view into the other's exactly, and FETCH n (UID)
        anywhere agrees; so does a new session's, with and without QRESYNC."""
        box = "lazybox"
        n = 3 * 1024 + 100
        w = self.conn()
        self.ok(w, "CREATE %s" % box)
        self.fill(w, box, 0, n)
        self.ok(w, "SELECT %s" % box)   # makes the column and its summary
        d = mailbox_dir(self.coffer.spool, box)
        wait_for(lambda: os.path.exists(os.path.join(d, "uidsum")), 5, what="group summary")

        def all_uids(c):
            return [int(x) for x in re.findall(
                rb"\d+", b"".join(self.ok(c, "UID SEARCH ALL")).split(b"SEARCH", 1)[1])]

        def uid_at(c, m):
            line = b"".join(self.ok(c, "FETCH %d (UID)" % m))
            got = re.match(rb"\* (\d+) FETCH \(UID (\d+)\)", line)
            self.assertIsNotNone(got, (m, line))
            self.assertEqual(int(got.group(1)), m)
            return int(got.group(2))

        old = all_uids(w)
        self.assertEqual(len(old), n)
        for qresync in (False, True):
            s = self.conn()
            if qresync:
                self.ok(s, "ENABLE QRESYNC")
            sel = b"".join(self.ok(s, "SELECT %s" % box))
            self.assertEqual(int(re.search(rb"(\d+) EXISTS", sel).group(1)), len(old))
            self.assertEqual(uid_at(s, 2000), old[1999])   # one group read
            # expunges in the group read and in groups not read: first, group edges, last
            idx = [0, 700, 1023, 1024, 1025, 2047, 2048, 2500, len(old) - 1]
            gone = [old[i] for i in idx]
            self.ok(w, "UID STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(map(str, gone)))
            self.ok(w, "UID EXPUNGE %s" % ",".join(map(str, gone)))
            new = all_uids(w)
            # before its NOOP: the old numbers (no EXPUNGE during FETCH or STORE)
            for m in (2, 1000, 1027, 2050, 3000, len(old) - 1):   # not expunged
                self.assertEqual(uid_at(s, m), old[m - 1], (qresync, m))
            kw = "$Lz%d" % qresync
            self.ok(s, "STORE 3000 +FLAGS.SILENT (%s)" % kw)
            f = b"".join(self.ok(w, "UID FETCH %d (FLAGS)" % old[2999]))
            self.assertIn(kw.encode(), f)
            cur = list(old)
            for line in self.ok(s, "NOOP"):
                m = re.match(rb"\* (\d+) EXPUNGE", line)
                if m:
                    cur.pop(int(m.group(1)) - 1)
                m = re.match(rb"\* VANISHED ([\d:,]+)", line)
                if m:
                    for part in m.group(1).split(b","):
                        lo, _, hi = part.partition(b":")
                        for x in range(int(lo), int(hi or lo) + 1):
                            cur.remove(x)
            self.assertEqual(cur, new, qresync)
            for m in (1, 700, 1022, 1023, 1024, 2044, 2045, 2046, len(new)):
                self.assertEqual(uid_at(s, m), new[m - 1], (qresync, m))
            self.assertEqual(all_uids(s), new)
            # a new session after the expunges, numbers first in scattered groups
            t = self.conn()
            if qresync:
                self.ok(t, "ENABLE QRESYNC")
            sel = b"".join(self.ok(t, "SELECT %s" % box))
            self.assertEqual(int(re.search(rb"(\d+) EXISTS", sel).group(1)), len(new))
            for m in (len(new), 1, 2046, 1023, 1024, 3000):
                self.assertEqual(uid_at(t, m), new[m - 1], (qresync, m))
            line = b"".join(self.ok(t, "UID FETCH %d (UID)" % new[2500]))
            self.assertEqual(int(re.match(rb"\* (\d+) FETCH", line).group(1)), 2501)
            s.close()
            t.close()
            old = new


if __name__ == "__main__":
    main()
