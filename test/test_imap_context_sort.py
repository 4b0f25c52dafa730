"""test_imap_context_sort.py: CONTEXT=SORT (RFC 5267 sections 3 and 4) end to end: ESORT's
RETURN (PARTIAL m:n) over the sorted result (positive, negative RFC 9394, reversed, past the
end, NIL, with MIN/MAX/COUNT, with SAVE, in both numberings, ranges only for ascending runs);
SORT RETURN (UPDATE) kept live while a second session changes flags, appends and expunges:
ADDTO/REMOVEFROM with positions in sort order (exact lines for the RFC's rules, and a
seeded random run where a client applying every update as section 4.3 says ends with the
list a fresh SORT gives), REMOVEFROM of a message-number SORT before the EXPUNGE response
(section 4.3.4), ADDTO after EXISTS (section 4.3.3), MIN/MAX/COUNT updates in sort order,
UPDATE with PARTIAL, CANCELUPDATE, tags shared with live SEARCHes, the per-session limit
(NO [NOUPDATE]), BAD for malformed options, and rights (another user's mailbox, no rights,
an administrator)."""
import os
import random
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

SEARCH_CONTEXT_MAX = 16     # server/imapd/search-context.h
SORT_CONTEXT_MAX = 4        # of them live SORTs

# message i has subject SUBJECTS[i - 1]: SORT (SUBJECT) gives 4 6 2 8 7 3 5 1
SUBJECTS = ["h", "c", "f", "a", "g", "b", "e", "d"]
ORDER = [4, 6, 2, 8, 7, 3, 5, 1]


def msg(subject, i):
    return ("From: a@example.com\r\nSubject: %s\r\nMessage-ID: <cs%d@example.com>\r\n\r\n"
            "body %d\r\n" % (subject, i, i))


def ordered(nums):
    """nums in their order, ascending runs of neighbours as a:b (RFC 5267 section 3.2)."""
    out, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else "%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return ",".join(out)


def expand(s):
    """A sequence set in the order written (a:b ascending, as the server writes runs)."""
    out = []
    for part in s.split(","):
        lo, _, hi = part.partition(":")
        lo, hi = int(lo), int(hi or lo)
        out.extend(range(lo, hi + 1) if lo <= hi else range(lo, hi - 1, -1))
    return out


def pairs(text):
    """[(pos, [nums])] of an ADDTO/REMOVEFROM payload."""
    items = text.split()
    return [(int(items[k]), expand(items[k + 1])) for k in range(0, len(items), 2)]


class Client:
    """What a client keeps of a live SORT: the list, changed only as RFC 5267 section 4.3
    says (and, for message numbers, renumbered by EXPUNGE)."""

    def __init__(self, tc, tag, nums, uid):
        self.tc, self.tag, self.list, self.uid = tc, tag, list(nums), uid

    def apply(self, untagged):
        for line in untagged:
            line = line.rstrip(b"\r\n").decode()
            m = re.match(r"^\* (\d+) EXPUNGE$", line)
            if m and not self.uid:
                n = int(m.group(1))
                self.tc.assertNotIn(n, self.list, "REMOVEFROM must come before EXPUNGE")
                self.list = [x - 1 if x > n else x for x in self.list]
                continue
            if not line.startswith('* ESEARCH (TAG "%s")' % self.tag):
                continue
            # RFC 5267 section 4.3.2: the items in the order they appear
            for kind, payload in re.findall(r"(ADDTO|REMOVEFROM) \(([^)]*)\)", line):
                for pos, nums in pairs(payload):
                    self.tc.assertGreaterEqual(pos, 1)
                    if kind == "ADDTO":
                        self.tc.assertLessEqual(pos, len(self.list) + 1, line)
                        self.list[pos - 1:pos - 1] = nums
                    else:
                        self.tc.assertEqual(self.list[pos - 1:pos - 1 + len(nums)], nums,
                                            (line, self.list))
                        del self.list[pos - 1:pos - 1 + len(nums)]


class ContextSort(ImapUsersTestCase):
    users = {"fred": "fredpw", "joe": "joepw", "ann": "annpw", "boss": "bosspw"}
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss", "expunge_mode": "immediate"}}

    def append(self, c, box, subject, i):
        """Message i, its internal date i seconds past midnight (ARRIVAL order is i's)."""
        m = msg(subject, i)
        self.ok(c, 'APPEND "%s" "01-Jan-2024 00:%02d:%02d +0000" {%d+}\r\n%s'
                % (box, i // 60, i % 60, len(m), m))

    def box(self, name, user="fred"):
        """A fresh mailbox of the 8 messages selected in a new session; (conn, uids)."""
        c = self.conn(user)
        self.ok(c, 'CREATE "%s"' % name)
        for i, s in enumerate(SUBJECTS, 1):
            self.append(c, name, s, i)
        self.ok(c, 'SELECT "%s"' % name)
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(c, "FETCH 1:* UID")))]
        self.assertEqual(len(uids), len(SUBJECTS))
        return c, [None] + uids         # uids[i] is message i's

    def other(self, name, user="fred"):
        c = self.conn(user)
        self.ok(c, 'SELECT "%s"' % name)
        return c

    def esearch(self, untagged, tag=None):
        lines = [u.rstrip(b"\r\n").decode() for u in untagged if u.startswith(b"* ESEARCH")]
        if tag is not None:
            lines = [x for x in lines if x.startswith('* ESEARCH (TAG "%s")' % tag)]
        return lines

    def one(self, c, text, tag="s"):
        lines = self.esearch(self.ok(c, text, tag=tag))
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def sort(self, c, text, tag="q"):
        untagged = self.ok(c, text, tag=tag)
        lines = [u.rstrip(b"\r\n") for u in untagged if u.startswith(b"* SORT")]
        self.assertEqual(len(lines), 1, untagged)
        return [int(x) for x in lines[0].split()[2:]]

    def bad(self, c, text, tag="b"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" BAD ", (text, untagged))

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1]).split()
        self.assertIn(b"CONTEXT=SORT", caps)
        self.assertIn(b"CONTEXT=SEARCH", caps)
        self.assertIn(b"ESORT", caps)

    # ---- PARTIAL (section 4.4) on ESORT results

    def test_partial(self):
        c, u = self.box("partial")
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 ALL"), ORDER)
        p = "SORT RETURN (PARTIAL %s) (SUBJECT) UTF-8 ALL"
        self.assertEqual(self.one(c, p % "1:3", "p1"), '* ESEARCH (TAG "p1") PARTIAL (1:3 4,6,2)')
        self.assertEqual(self.one(c, p % "4:5", "p2"), '* ESEARCH (TAG "p2") PARTIAL (4:5 8,7)')
        # RFC 9394: negative ranges count from the last result; reversed ranges are ordered
        self.assertEqual(self.one(c, p % "-1:-2", "p3"), '* ESEARCH (TAG "p3") PARTIAL (-1:-2 5,1)')
        self.assertEqual(self.one(c, p % "3:1", "p4"), '* ESEARCH (TAG "p4") PARTIAL (1:3 4,6,2)')
        # past the end: what is there, or NIL
        self.assertEqual(self.one(c, p % "7:100", "p5"), '* ESEARCH (TAG "p5") PARTIAL (7:100 5,1)')
        self.assertEqual(self.one(c, p % "9:100", "p6"), '* ESEARCH (TAG "p6") PARTIAL (9:100 NIL)')
        self.assertEqual(self.one(c, p % "-9:-20", "p7"), '* ESEARCH (TAG "p7") PARTIAL (-9:-20 NIL)')
        # UID form: uids in sort order
        self.assertEqual(self.one(c, "UID " + p % "2:4", "p8"),
                         '* ESEARCH (TAG "p8") UID PARTIAL (2:4 %s)'
                         % ",".join(str(u[i]) for i in (6, 2, 8)))
        # ascending runs of neighbours become ranges, nothing else does
        self.assertEqual(self.one(c, "SORT RETURN (PARTIAL 2:5) (ARRIVAL) UTF-8 ALL", "p9"),
                         '* ESEARCH (TAG "p9") PARTIAL (2:5 2:5)')
        self.assertEqual(self.one(c, "SORT RETURN (PARTIAL 2:5) (REVERSE ARRIVAL) UTF-8 ALL",
                                  "pa"), '* ESEARCH (TAG "pa") PARTIAL (2:5 7,6,5,4)')
        # with criteria, MIN MAX COUNT (first and last in sort order) and CONTEXT (a hint)
        self.assertEqual(self.one(c, "SORT RETURN (CONTEXT MIN MAX COUNT PARTIAL 2:3) (SUBJECT) "
                                     "UTF-8 NOT 6", "pb"),
                         '* ESEARCH (TAG "pb") MIN 4 MAX 1 PARTIAL (2:3 2,8) COUNT 7')
        self.assertEqual(self.one(c, p.replace("ALL", "SUBJECT nothere") % "1:5", "pc"),
                         '* ESEARCH (TAG "pc") PARTIAL (1:5 NIL)')

    def test_partial_save(self):
        c, u = self.box("psave")
        # SAVE with PARTIAL and neither ALL nor COUNT saves the window (RFC 5182 section 2.4)
        untagged = self.ok(c, "SORT RETURN (SAVE PARTIAL 1:2) (SUBJECT) UTF-8 ALL", "v1")
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "v1") PARTIAL (1:2 4,6)'])
        self.assertIn(b"* SEARCH 4 6\r\n", self.ok(c, "SEARCH $"))
        self.ok(c, "SORT RETURN (SAVE COUNT PARTIAL 1:2) (SUBJECT) UTF-8 ALL", "v2")
        self.assertIn(b"* SEARCH 1 2 3 4 5 6 7 8\r\n", self.ok(c, "SEARCH $"))
        # a failed SORT that asked to SAVE empties $
        self.bad(c, "SORT RETURN (SAVE PARTIAL 0:2) (SUBJECT) UTF-8 ALL")
        self.assertIn(b"* SEARCH\r\n", self.ok(c, "SEARCH $"))

    def test_bad_syntax(self):
        c, _ = self.box("sbad")
        for opts in ("PARTIAL", "PARTIAL 0:5", "PARTIAL 1:*", "PARTIAL -1:5", "PARTIAL x",
                     "PARTIAL 1:2 PARTIAL 3:4", "ALL PARTIAL 1:2", "UPDATE UPDATE", "FOO",
                     "PARTIAL 01:2", "PARTIAL 1:4294967296"):
            with self.subTest(opts=opts):
                self.bad(c, "SORT RETURN (%s) (SUBJECT) UTF-8 ALL" % opts)
        # nothing was kept by the refused commands
        self.bad(c, 'CANCELUPDATE "b"')

    # ---- UPDATE (section 4.3)

    def test_update_uid(self):
        c, u = self.box("upuid")
        d = self.other("upuid")
        self.assertEqual(self.one(c, "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 UNSEEN", "U1"),
                         '* ESEARCH (TAG "U1") UID ALL %s' % ordered([u[i] for i in ORDER]))
        # 2 and 8 are neighbours in sort order (4 6 [2 8] 7 3 5 1): one pair at position 3
        self.ok(d, "STORE 2,8 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "U1") UID REMOVEFROM (3 %s)' % ordered([u[2], u[8]])])
        # 5 leaves (4 6 7 3 [5] 1) and 2 comes back between 6 and 7
        self.ok(d, "STORE 5 +FLAGS (\\Seen)")
        self.ok(d, "STORE 2 -FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "U1") UID REMOVEFROM (5 %d) ADDTO (3 %d)'
                          % (u[5], u[2])])
        # now 4 6 2 7 3 1; a new message "bb" sorts between b (6) and c (2), after EXISTS
        self.append(d, "upuid", "bb", 9)
        new = int(re.search(rb"UID (\d+)", b"".join(self.ok(d, "FETCH 9 UID"))).group(1))
        untagged = self.ok(c, "NOOP")
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "U1") UID ADDTO (3 %d)' % new])
        exists = untagged.index(b"* 9 EXISTS\r\n")
        self.assertLess(exists, [i for i, x in enumerate(untagged) if x.startswith(b"* ESEARCH")][0])
        # several at once, not neighbours: removals first (positions with the earlier pairs
        # applied), then additions at their place in the new list
        self.ok(d, "STORE 4,3 +FLAGS (\\Seen)")        # 4 6 9 2 7 3 1 -> 6 9 2 7 1
        self.ok(d, "STORE 8,5 -FLAGS (\\Seen)")        # -> 6 9 2 8 7 5 1
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "U1") UID REMOVEFROM (1 %d 5 %d) ADDTO (4 %d 6 %d)'
                          % (u[4], u[3], u[8], u[5])])
        # an expunge in a UID SORT: REMOVEFROM by uid (after the EXPUNGE is fine: uids stay)
        self.ok(d, "STORE 2 +FLAGS (\\Deleted)")
        self.ok(d, "EXPUNGE")
        untagged = self.ok(c, "NOOP")
        self.assertIn(b"* 2 EXPUNGE\r\n", untagged)
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "U1") UID REMOVEFROM (3 %d)'
                                                  % u[2]])
        # a flag change that moves nothing in or out says nothing
        self.ok(d, "STORE 1:* +FLAGS (\\Flagged)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")), [])
        # the list the client holds is the one a new SORT gives
        self.assertEqual(self.sort(c, "UID SORT (SUBJECT) UTF-8 UNSEEN"),
                         [u[6], new, u[8], u[7], u[5], u[1]])
        # cancelled: silence, and the tag is free again
        self.ok(c, 'CANCELUPDATE "U1"')
        self.ok(d, "STORE 1:* -FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")), [])
        self.bad(c, 'CANCELUPDATE "U1"')

    def test_update_msgno_expunge_first(self):
        c, u = self.box("upseq")
        d = self.other("upseq")
        self.assertEqual(self.one(c, "SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL", "M1"),
                         '* ESEARCH (TAG "M1") ALL 4,6,2,8,7,3,5,1')
        # RFC 5267 section 4.3.4: REMOVEFROM with the numbers the client still has, before
        # the EXPUNGE responses that renumber them
        self.ok(d, "STORE 6,3 +FLAGS (\\Deleted)")
        self.ok(d, "EXPUNGE")
        untagged = self.ok(c, "NOOP")
        es = [i for i, x in enumerate(untagged) if x.startswith(b"* ESEARCH")]
        ex = [i for i, x in enumerate(untagged) if x.endswith(b" EXPUNGE\r\n")]
        self.assertEqual(len(es), 1, untagged)
        self.assertEqual(len(ex), 2, untagged)
        self.assertLess(es[0], ex[0])
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "M1") REMOVEFROM (2 6 5 3)'])
        # 4 2 8 7 5 1 renumbered: 1..8 without 3 and 6 -> 3 2 6 5 4 1
        cl = Client(self, "M1", [4, 6, 2, 8, 7, 3, 5, 1], False)
        cl.apply(untagged)
        self.assertEqual(cl.list, [3, 2, 6, 5, 4, 1])
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 ALL"), cl.list)
        # a new message ("0" sorts first) in message numbers, after its EXISTS
        self.append(d, "upseq", "0", 9)
        untagged = self.ok(c, "NOOP")
        self.assertIn(b"* 7 EXISTS\r\n", untagged)
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "M1") ADDTO (1 7)'])
        # the session's own expunge too: REMOVEFROM before the session's EXPUNGE responses
        self.ok(c, "STORE 7 +FLAGS (\\Deleted)")
        untagged = self.ok(c, "EXPUNGE")
        self.assertEqual(untagged[0], b'* ESEARCH (TAG "M1") REMOVEFROM (1 7)\r\n')
        self.assertEqual(untagged[1], b"* 7 EXPUNGE\r\n")

    def test_update_min_max_count(self):
        c, u = self.box("upmin")
        d = self.other("upmin")
        self.assertEqual(self.one(c, "UID SORT RETURN (UPDATE MIN MAX COUNT) (SUBJECT) UTF-8 "
                                     "UNSEEN", "N1"),
                         '* ESEARCH (TAG "N1") UID MIN %d MAX %d COUNT 8' % (u[4], u[1]))
        # MIN is the first in sort order: 4 leaves, 6 becomes MIN; no list changes are sent
        self.ok(d, "STORE 4 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "N1") UID MIN %d COUNT 7' % u[6]])
        # a change in the middle changes only COUNT
        self.ok(d, "STORE 8 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")), ['* ESEARCH (TAG "N1") UID COUNT 6'])
        self.ok(d, "STORE 1 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "N1") UID MAX %d COUNT 5' % u[5]])

    def test_update_with_partial(self):
        """UPDATE and PARTIAL do not interact: updates cover the whole result (section 4.4)."""
        c, u = self.box("uppart")
        d = self.other("uppart")
        self.assertEqual(self.one(c, "SORT RETURN (UPDATE PARTIAL 1:2) (SUBJECT) UTF-8 UNSEEN",
                                  "P1"), '* ESEARCH (TAG "P1") PARTIAL (1:2 4,6)')
        self.ok(d, "STORE 5 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "P1") REMOVEFROM (7 5)'])

    def test_update_random(self):
        """A client that applies every update as RFC 5267 section 4.3 says always holds the
        list a new SORT gives, in both numberings and for a two-key sort."""
        rnd = random.Random(5267)
        c, u = self.box("uprand")
        d = self.other("uprand")
        crit = "(SUBJECT REVERSE ARRIVAL) UTF-8 UNSEEN"
        lists = {}
        for tag, uid in (("X1", "UID "), ("X2", "")):
            line = self.one(c, "%sSORT RETURN (UPDATE) %s" % (uid, crit), tag)
            m = re.search(r" ALL (\S+)$", line)
            lists[tag] = Client(self, tag, expand(m.group(1)) if m else [], bool(uid))
        subjects = "abcdefgh"
        n = len(SUBJECTS)
        for step in range(30):
            ops = []
            for _ in range(rnd.randint(1, 3)):
                kind = rnd.choice(["seen", "unseen", "unseen", "append", "expunge"])
                if kind == "append" or n < 3:
                    n += 1
                    ops.append("append")
                    self.append(d, "uprand", rnd.choice(subjects) * rnd.randint(1, 2), 100 + step)
                elif kind == "expunge":
                    k = rnd.randint(1, n)
                    self.ok(d, "STORE %d +FLAGS (\\Deleted)" % k)
                    self.ok(d, "EXPUNGE")
                    n -= 1
                    ops.append("expunge %d" % k)
                else:
                    nums = sorted(rnd.sample(range(1, n + 1), min(n, rnd.randint(1, 3))))
                    sign = "+" if kind == "seen" else "-"
                    self.ok(d, "STORE %s %sFLAGS (\\Seen)" % (",".join(map(str, nums)), sign))
                    ops.append("%s %s" % (kind, nums))
            untagged = self.ok(c, "NOOP")
            for cl in lists.values():
                cl.apply(untagged)
            with self.subTest(step=step, ops=ops):
                self.assertEqual(lists["X1"].list, self.sort(c, "UID SORT " + crit))
                self.assertEqual(lists["X2"].list, self.sort(c, "SORT " + crit))

    def test_tags_limit_and_end(self):
        c, _ = self.box("uplim")
        d = self.other("uplim")
        # a tag in use by a live SEARCH or SORT cannot start another (section 4.3)
        self.one(c, "SEARCH RETURN (UPDATE) UNSEEN", "T1")
        self.bad(c, "SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL", "T1")
        self.one(c, "SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL", "T2")
        self.bad(c, "SEARCH RETURN (UPDATE) ALL", "T2")
        self.bad(c, "SORT RETURN (UPDATE) (ARRIVAL) UTF-8 ALL", "T2")
        # a tag without UPDATE is no conflict
        self.one(c, "SORT RETURN (COUNT) (SUBJECT) UTF-8 ALL", "T2")
        # at most SORT_CONTEXT_MAX live SORTs (their keys stay in memory): beyond that NO
        # [NOUPDATE], and the answer stands
        for i in range(3, SORT_CONTEXT_MAX + 2):
            self.one(c, "SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 ALL", "T%d" % i)
        noupdate = (b'* NO [NOUPDATE "T99"] Too many search updates (limit 16, of them 4 SORTs)'
                    b"\r\n")
        untagged = self.ok(c, "SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 ALL", "T99")
        self.assertEqual(untagged[0], noupdate)
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "T99") COUNT 8'])
        # the limit of live searches counts SORTs too
        self.ok(c, 'CANCELUPDATE "T3"')
        for i in range(SORT_CONTEXT_MAX + 2, SEARCH_CONTEXT_MAX + 2):     # one was cancelled
            self.one(c, "SEARCH RETURN (UPDATE COUNT) ALL", "T%d" % i)
        untagged = self.ok(c, "SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 ALL", "T99")
        self.assertEqual(untagged[0], noupdate)
        untagged = self.ok(c, "SEARCH RETURN (UPDATE COUNT) ALL", "T98")
        self.assertRegex(untagged[0], rb'^\* NO \[NOUPDATE "T98"\] ')
        self.ok(d, "STORE 1 +FLAGS (\\Seen)")
        lines = self.esearch(self.ok(c, "NOOP"))
        self.assertIn('* ESEARCH (TAG "T1") REMOVEFROM (1 1)', lines)
        self.assertNotIn("T99", " ".join(lines))
        # CANCELUPDATE ends SEARCH and SORT contexts alike; UNSELECT ends them all
        self.ok(c, 'CANCELUPDATE "T1" "T2"')
        self.one(c, "SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 ALL", "T97")
        self.ok(c, "UNSELECT")
        self.ok(c, 'SELECT "uplim"')
        self.ok(d, "STORE 1 -FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")), [])
        self.bad(c, 'CANCELUPDATE "T3"')

    def test_update_during_idle(self):
        c, u = self.box("upidle")
        d = self.other("upidle")
        self.one(c, "UID SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL", "I1")
        c.cmd("i IDLE")
        c.expect(rb"^\+ ")
        self.append(d, "upidle", "ca", 9)
        new = int(re.search(rb"UID (\d+)", b"".join(self.ok(d, "FETCH 9 UID"))).group(1))
        c.expect(rb"^\* 9 EXISTS\r\n$", timeout=10)
        # "ca" goes after c (message 2): 4 6 2 [new] 8 ...
        c.expect(rb'^\* ESEARCH \(TAG "I1"\) UID ADDTO \(4 %d\)\r\n$' % new, timeout=10)
        c.send(b"DONE\r\n")
        self.assertRegex(c.read_tagged("i")[0], rb"^i OK")

    # ---- rights

    def test_rights(self):
        f, u = self.box("shared")
        box = '"Other Users/fred/shared"'
        # no rights at all: no such mailbox, nothing selected to sort
        j = self.conn("joe")
        self.no(j, "EXAMINE " + box, "NONEXISTENT")
        self.bad(j, "SORT RETURN (UPDATE) (SUBJECT) UTF-8 ALL")
        # l only: NOPERM
        self.ok(f, 'SETACL "shared" joe l')
        self.no(j, "EXAMINE " + box, "NOPERM")
        # l r: another user's mailbox sorts live, read-only
        self.ok(f, 'SETACL "shared" joe lr')
        self.ok(j, "EXAMINE " + box)
        self.assertEqual(self.one(j, "SORT RETURN (UPDATE PARTIAL 1:2) (SUBJECT) UTF-8 ALL", "J1"),
                         '* ESEARCH (TAG "J1") PARTIAL (1:2 4,6)')
        self.append(f, "shared", "b0", 9)
        self.assertEqual(self.esearch(self.ok(j, "NOOP")), ['* ESEARCH (TAG "J1") ADDTO (3 9)'])
        # an administrator has every right (imapd(8))
        b = self.conn("boss")
        self.ok(b, "SELECT " + box)
        self.assertEqual(self.one(b, "UID SORT RETURN (UPDATE MIN) (SUBJECT) UTF-8 ALL", "B1"),
                         '* ESEARCH (TAG "B1") UID MIN %d' % u[4])
        self.append(f, "shared", "0", 10)
        lines = self.esearch(self.ok(b, "NOOP"))
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r'^\* ESEARCH \(TAG "B1"\) UID MIN \d+$')
        self.assertNotEqual(lines[0], '* ESEARCH (TAG "B1") UID MIN %d' % u[4])


if __name__ == "__main__":
    main()
