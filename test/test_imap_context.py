"""test_imap_context.py: CONTEXT=SEARCH (RFC 5267 section 4) end to end: PARTIAL ranges
(section 4.4) positive, negative (RFC 9394), reversed, past the end and over an empty result,
with MIN/MAX/COUNT and SAVE, in both numberings; SEARCH RETURN (UPDATE) kept live while a
second session appends, expunges and changes flags (ADDTO/REMOVEFROM content and positions,
UID and message-number forms, REMOVEFROM of an expunged match before the EXPUNGE (or
VANISHED) in a message-number search, the session's own STORE, MIN/COUNT updates), CANCELUPDATE,
updates ending at UNSELECT, the per-session limit (NO [NOUPDATE]), UPDATE with SAVE, another
user's shared mailbox with rights, and BAD for malformed options and tags."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n"
       b"Message-ID: <cx%d@example.com>\r\n\r\nbody %d\r\n")

N = 8
SEARCH_CONTEXT_MAX = 16     # server/imapd/search-context.h


def msg(i):
    return MSG % (b"odd" if i % 2 else b"even", i, i)


def seqset(nums):
    """nums (sorted) as a compact sequence set, the way the server writes it."""
    out, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else "%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return ",".join(out)


class ClientList:
    """What a client keeps of a live message-number SEARCH: the list, changed only by
    REMOVEFROM/ADDTO (RFC 5267 section 4.3) and renumbered by EXPUNGE, which must not name
    a message still in it (section 4.3.4: REMOVEFROM first)."""

    def __init__(self, tc, tag, nums):
        self.tc, self.tag, self.list = tc, tag, list(nums)

    def apply(self, untagged):
        for line in untagged:
            line = line.rstrip(b"\r\n").decode()
            m = re.match(r"^\* (\d+) EXPUNGE$", line)
            if m:
                n = int(m.group(1))
                self.tc.assertNotIn(n, self.list, "REMOVEFROM must come before EXPUNGE")
                self.list = [x - 1 if x > n else x for x in self.list]
                continue
            if not line.startswith('* ESEARCH (TAG "%s")' % self.tag):
                continue
            for kind, payload in re.findall(r"(ADDTO|REMOVEFROM) \(([^)]*)\)", line):
                items = payload.split()
                for k in range(0, len(items), 2):
                    pos, nums = int(items[k]), expand(items[k + 1])
                    if kind == "ADDTO":
                        self.list[pos - 1:pos - 1] = nums
                    else:
                        self.tc.assertEqual(self.list[pos - 1:pos - 1 + len(nums)], nums,
                                            (line, self.list))
                        del self.list[pos - 1:pos - 1 + len(nums)]


def expand(text):
    """The numbers of a sequence set, in order."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


class Context(ImapUsersTestCase):
    users = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def append(self, c, box, i):
        m = msg(i)
        self.ok(c, 'APPEND "%s" {%d+}\r\n%s' % (box, len(m), m.decode()))

    def box(self, name, n=N):
        """A fresh mailbox of n messages selected in a new session; (conn, uids)."""
        c = self.conn("fred")
        self.ok(c, 'CREATE "%s"' % name)
        for i in range(1, n + 1):
            self.append(c, name, i)
        self.ok(c, 'SELECT "%s"' % name)
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(c, "FETCH 1:* UID")))]
        self.assertEqual(len(uids), n)
        return c, uids

    def other(self, name, user="fred"):
        """A second session with name selected."""
        c = self.conn(user)
        self.ok(c, 'SELECT "%s"' % name)
        return c

    def esearch(self, untagged, tag=None):
        lines = [u.rstrip(b"\r\n").decode() for u in untagged if u.startswith(b"* ESEARCH")]
        if tag is not None:
            lines = [x for x in lines if x.startswith('* ESEARCH (TAG "%s")' % tag)]
        return lines

    def one(self, c, text, tag="s"):
        """The single ESEARCH line of a successful command."""
        lines = self.esearch(self.ok(c, text, tag=tag))
        self.assertEqual(len(lines), 1, lines)
        return lines[0]

    def bad(self, c, text, tag="b"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" BAD ", (text, untagged))

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" CONTEXT=SEARCH", caps)
        self.assertIn(b" ESEARCH", caps)

    def test_partial(self):
        c, u = self.box("partial")
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL 1:3) ALL", "p1"),
                         '* ESEARCH (TAG "p1") UID PARTIAL (1:3 %s)' % seqset(u[0:3]))
        # RFC 9394: negative ranges count from the last result
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL -1:-3) ALL", "p2"),
                         '* ESEARCH (TAG "p2") UID PARTIAL (-1:-3 %s)' % seqset(u[-3:]))
        # a reversed range means the same, and is echoed in order
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL 3:1) ALL", "p3"),
                         '* ESEARCH (TAG "p3") UID PARTIAL (1:3 %s)' % seqset(u[0:3]))
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL -3:-1) ALL", "p4"),
                         '* ESEARCH (TAG "p4") UID PARTIAL (-1:-3 %s)' % seqset(u[-3:]))
        # partly and wholly past the end of the result
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL 7:100) ALL", "p5"),
                         '* ESEARCH (TAG "p5") UID PARTIAL (7:100 %s)' % seqset(u[6:]))
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL 9:100) ALL", "p6"),
                         '* ESEARCH (TAG "p6") UID PARTIAL (9:100 NIL)')
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL -5:-100) ALL", "p7"),
                         '* ESEARCH (TAG "p7") UID PARTIAL (-5:-100 %s)' % seqset(u[:4]))
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL -9:-100) ALL", "p8"),
                         '* ESEARCH (TAG "p8") UID PARTIAL (-9:-100 NIL)')
        # over a subset, in message numbers; odd subjects are messages 1 3 5 7
        self.assertEqual(self.one(c, "SEARCH RETURN (PARTIAL 2:3) SUBJECT odd", "p9"),
                         '* ESEARCH (TAG "p9") PARTIAL (2:3 3,5)')
        self.assertEqual(self.one(c, "SEARCH RETURN (PARTIAL -1:-1) SUBJECT odd", "pa"),
                         '* ESEARCH (TAG "pa") PARTIAL (-1:-1 7)')
        # no match at all
        self.assertEqual(self.one(c, "SEARCH RETURN (PARTIAL 1:10) SUBJECT nothere", "pb"),
                         '* ESEARCH (TAG "pb") PARTIAL (1:10 NIL)')
        # with MIN MAX COUNT (and CONTEXT, a hint)
        self.assertEqual(
            self.one(c, "UID SEARCH RETURN (CONTEXT MIN MAX COUNT PARTIAL 2:2) SUBJECT even",
                     "pc"),
            '* ESEARCH (TAG "pc") UID MIN %d MAX %d PARTIAL (2:2 %d) COUNT 4'
            % (u[1], u[7], u[3]))
        # a 32-bit range end
        self.assertEqual(self.one(c, "UID SEARCH RETURN (PARTIAL 1:4294967295) ALL", "pd"),
                         '* ESEARCH (TAG "pd") UID PARTIAL (1:4294967295 %s)' % seqset(u))

    def test_partial_save(self):
        c, u = self.box("psave")
        # SAVE with PARTIAL (and neither ALL nor COUNT) saves the window
        self.assertEqual(self.esearch(self.ok(c, "UID SEARCH RETURN (SAVE PARTIAL 2:3) ALL")),
                         ['* ESEARCH (TAG "t") UID PARTIAL (2:3 %s)' % seqset(u[1:3])])
        got = sorted(int(x) for x in re.findall(rb"UID (\d+)",
                                                b"".join(self.ok(c, "UID FETCH $ UID"))))
        self.assertEqual(got, u[1:3])
        # with COUNT the whole result is saved
        self.ok(c, "UID SEARCH RETURN (SAVE COUNT PARTIAL -1:-1) SUBJECT odd")
        got = sorted(int(x) for x in re.findall(rb"UID (\d+)",
                                                b"".join(self.ok(c, "UID FETCH $ UID"))))
        self.assertEqual(got, u[0::2])

    def test_bad_syntax(self):
        c, u = self.box("badsyn")
        for text in ("SEARCH RETURN (PARTIAL) ALL",
                     "SEARCH RETURN (PARTIAL 0:5) ALL",
                     "SEARCH RETURN (PARTIAL 1:0) ALL",
                     "SEARCH RETURN (PARTIAL 1:*) ALL",
                     "SEARCH RETURN (PARTIAL -1:5) ALL",
                     "SEARCH RETURN (PARTIAL 1:-5) ALL",
                     "SEARCH RETURN (PARTIAL 01:5) ALL",
                     "SEARCH RETURN (PARTIAL 5) ALL",
                     "SEARCH RETURN (PARTIAL 1:4294967296) ALL",
                     "SEARCH RETURN (PARTIAL \"1:5\") ALL",
                     "SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
                     "SEARCH RETURN (ALL PARTIAL 1:5) ALL",
                     "SEARCH RETURN (UPDATE UPDATE) ALL",
                     "SEARCH RETURN (UPDATE) FROBNICATE",
                     "CANCELUPDATE",
                     "CANCELUPDATE \"nosuchtag\"",
                     "CANCELUPDATE nosuchtag"):
            with self.subTest(text=text):
                self.bad(c, text)
        # the session goes on, and a bad SEARCH left no update behind
        self.assertEqual(self.one(c, "SEARCH RETURN (COUNT) ALL", "g"),
                         '* ESEARCH (TAG "g") COUNT %d' % N)
        self.bad(c, 'CANCELUPDATE "b"')
        # CANCELUPDATE needs a selected mailbox
        self.ok(c, "UNSELECT")
        self.bad(c, 'CANCELUPDATE "x"')

    def test_update_uid(self):
        c, u = self.box("upuid")
        d = self.other("upuid")
        self.assertEqual(self.one(c, "UID SEARCH RETURN (UPDATE) UNSEEN", "U1"),
                         '* ESEARCH (TAG "U1") UID ALL %s' % seqset(u))
        # flags changed elsewhere: messages 2 and 3 leave, from position 2
        self.ok(d, "STORE 2:3 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "U1") UID REMOVEFROM (2 %s)' % seqset(u[1:3])])
        # messages 5 and 7 leave and message 3 comes back. Removals first, each at its
        # position in the list as it is when the pair is applied (u1 u4 u5 u6 u7 u8: 5 is
        # 3rd, then 7 is 4th), then additions at their place in the new list
        self.ok(d, "STORE 3 -FLAGS (\\Seen)")
        self.ok(d, "STORE 5,7 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "U1") UID REMOVEFROM (3 %d 4 %d) ADDTO (2 %d)'
                          % (u[4], u[6], u[2])])
        # now: u1 u3 u4 u6 u8. A new message goes to the end
        self.append(d, "upuid", 9)
        untagged = self.ok(c, "NOOP")
        new = int(re.search(rb"UID (\d+)", b"".join(self.ok(d, "FETCH 9 UID"))).group(1))
        self.assertIn(b"* 9 EXISTS\r\n", untagged)
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "U1") UID ADDTO (6 %d)' % new])
        # an expunge: REMOVEFROM in a UID search, after the EXPUNGE response
        self.ok(d, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(d, "EXPUNGE")
        untagged = self.ok(c, "NOOP")
        self.assertIn(b"* 1 EXPUNGE\r\n", untagged)
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "U1") UID REMOVEFROM (1 %d)'
                                                  % u[0]])
        self.assertLess(untagged.index(b"* 1 EXPUNGE\r\n"),
                        [i for i, x in enumerate(untagged) if x.startswith(b"* ESEARCH")][0])
        # the session's own STORE: the update comes before the tagged OK
        untagged = self.ok(c, "UID STORE %d +FLAGS (\\Seen)" % u[2])
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "U1") UID REMOVEFROM (1 %d)'
                                                  % u[2]])
        # a change that does not move a message in or out says nothing
        self.ok(d, "STORE 2:4 +FLAGS (\\Flagged)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")), [])
        # cancelled: silence
        self.ok(c, 'CANCELUPDATE "U1"')
        self.ok(d, "STORE 1:* -FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")), [])
        self.bad(c, 'CANCELUPDATE "U1"')

    def test_update_new_keyword(self):
        """A keyword that did not exist when the search ran matches once another session
        makes it (after the new FLAGS response)."""
        c, u = self.box("upkw")
        d = self.other("upkw")
        self.assertEqual(self.one(c, "UID SEARCH RETURN (UPDATE) KEYWORD $Later", "K1"),
                         '* ESEARCH (TAG "K1") UID')
        self.ok(d, "STORE 2,4 +FLAGS ($Later)")
        untagged = self.ok(c, "NOOP")
        self.assertEqual(self.esearch(untagged),
                         ['* ESEARCH (TAG "K1") UID ADDTO (1 %d,%d)' % (u[1], u[3])])
        flags = [i for i, x in enumerate(untagged) if x.startswith(b"* FLAGS")]
        esearch = [i for i, x in enumerate(untagged) if x.startswith(b"* ESEARCH")]
        self.assertTrue(flags and flags[0] < esearch[0], untagged)

    def test_update_runs(self):
        """Neighbours in the list share one pair; a gap starts another."""
        c, u = self.box("upruns")
        d = self.other("upruns")
        self.one(c, "UID SEARCH RETURN (UPDATE) UNSEEN", "R1")
        self.ok(d, "STORE 1:* +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "R1") UID REMOVEFROM (1 %s)' % seqset(u)])
        self.ok(d, "STORE 2,3,5,8 -FLAGS (\\Seen)")
        # all four are neighbours in the new list: one pair
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "R1") UID ADDTO (1 %s)'
                          % seqset([u[1], u[2], u[4], u[7]])])
        # 2 3 5 8 -> remove 3 and 5 (neighbours: one pair), add 1 and 7
        self.ok(d, "STORE 3,5 +FLAGS (\\Seen)")
        self.ok(d, "STORE 1,7 -FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "R1") UID REMOVEFROM (2 %d,%d) ADDTO (1 %d 3 %d)'
                          % (u[2], u[4], u[0], u[6])])

    def test_update_msgno(self):
        c, u = self.box("upseq")
        d = self.other("upseq")
        self.assertEqual(self.one(c, "SEARCH RETURN (UPDATE) SUBJECT odd UNFLAGGED", "M1"),
                         '* ESEARCH (TAG "M1") ALL 1,3,5,7')
        cl = ClientList(self, "M1", [1, 3, 5, 7])
        # RFC 5267 section 4.3.4: an expunged result of a message-number search is removed
        # with REMOVEFROM, numbered as the client still has it, before the EXPUNGE response
        self.ok(d, "STORE 3 +FLAGS (\\Deleted)")
        self.ok(d, "EXPUNGE")
        untagged = self.ok(c, "NOOP")
        self.assertEqual(untagged, [b'* ESEARCH (TAG "M1") REMOVEFROM (2 3)\r\n',
                                    b"* 3 EXPUNGE\r\n"])
        cl.apply(untagged)
        self.assertEqual(cl.list, [1, 4, 6])
        # now 1,4,6 (old 5 and 7 renumbered); flag the new 4: REMOVEFROM at position 2
        self.ok(d, "STORE 4 +FLAGS (\\Flagged)")
        untagged = self.ok(c, "NOOP")
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "M1") REMOVEFROM (2 4)'])
        cl.apply(untagged)
        # an expunge and a flag change in one sync: the expunged one before its EXPUNGE, the
        # flag change after, counted in the renumbered list
        self.ok(d, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(d, "EXPUNGE")
        self.ok(d, "STORE 5 +FLAGS (\\Flagged)")
        untagged = self.ok(c, "NOOP")
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "M1") REMOVEFROM (1 1)',
                                                  '* ESEARCH (TAG "M1") REMOVEFROM (1 5)'])
        self.assertLess(untagged.index(b'* ESEARCH (TAG "M1") REMOVEFROM (1 1)\r\n'),
                        untagged.index(b"* 1 EXPUNGE\r\n"))
        self.assertLess(untagged.index(b"* 1 EXPUNGE\r\n"),
                        untagged.index(b'* ESEARCH (TAG "M1") REMOVEFROM (1 5)\r\n'))
        cl.apply(untagged)
        self.assertEqual(cl.list, [])
        # an arrival that matches (six left, the new one is 7), in message numbers
        self.append(d, "upseq", 9)
        untagged = self.ok(c, "NOOP")
        self.assertIn(b"* 7 EXISTS\r\n", untagged)
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "M1") ADDTO (1 7)'])
        cl.apply(untagged)
        self.assertEqual(cl.list, self.fresh(c, "SEARCH SUBJECT odd UNFLAGGED"))

    def fresh(self, c, text):
        """The message numbers a new SEARCH gives."""
        got = [x for x in self.ok(c, text) if x.startswith(b"* SEARCH")]
        self.assertEqual(len(got), 1, got)
        return [int(x) for x in got[0].split()[2:]]

    def test_update_msgno_expunge_runs(self):
        c, u = self.box("upxruns")
        d = self.other("upxruns")
        self.assertEqual(self.one(c, "SEARCH RETURN (UPDATE) SUBJECT odd", "E1"),
                         '* ESEARCH (TAG "E1") ALL 1,3,5,7')
        self.assertEqual(self.one(c, "SEARCH RETURN (UPDATE COUNT) SUBJECT odd", "E2"),
                         '* ESEARCH (TAG "E2") COUNT 4')
        self.assertEqual(self.one(c, "UID SEARCH RETURN (UPDATE) SUBJECT odd", "E3"),
                         '* ESEARCH (TAG "E3") UID ALL %s' % seqset(u[0::2]))
        cl = ClientList(self, "E1", [1, 3, 5, 7])
        # neighbours 3 and 5 (and 2, no match) in one sync: one pair, all before the first
        # EXPUNGE; COUNT and the UID search after, as before
        self.ok(d, "STORE 2,3,5 +FLAGS (\\Deleted)")
        self.ok(d, "EXPUNGE")
        untagged = self.ok(c, "NOOP")
        self.assertEqual(untagged[0], b'* ESEARCH (TAG "E1") REMOVEFROM (2 3,5)\r\n', untagged)
        self.assertEqual(untagged[1:4], [b"* 2 EXPUNGE\r\n"] * 2 + [b"* 3 EXPUNGE\r\n"])
        self.assertEqual(self.esearch(untagged, "E2"), ['* ESEARCH (TAG "E2") COUNT 2'])
        self.assertEqual(self.esearch(untagged, "E3"),
                         ['* ESEARCH (TAG "E3") UID REMOVEFROM (2 %s)' % seqset([u[2], u[4]])])
        cl.apply(untagged)
        self.assertEqual(cl.list, [1, 4])
        self.assertEqual(cl.list, self.fresh(c, "SEARCH SUBJECT odd"))
        # with QRESYNC the expunges are VANISHED: the REMOVEFROM still comes first
        e = self.conn("fred")
        self.ok(e, "ENABLE QRESYNC")
        self.ok(e, 'SELECT "upxruns"')
        self.assertEqual(self.one(e, "SEARCH RETURN (UPDATE) SUBJECT odd", "Q1"),
                         '* ESEARCH (TAG "Q1") ALL 1,4')
        self.ok(d, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(d, "EXPUNGE")
        untagged = self.ok(e, "NOOP")
        self.assertEqual(untagged, [b'* ESEARCH (TAG "Q1") REMOVEFROM (1 1)\r\n',
                                    b"* VANISHED %d\r\n" % u[0]])

    def test_update_min_count(self):
        c, u = self.box("upmin")
        d = self.other("upmin")
        self.assertEqual(self.one(c, "UID SEARCH RETURN (UPDATE MIN COUNT) UNSEEN", "C1"),
                         '* ESEARCH (TAG "C1") UID MIN %d COUNT %d' % (u[0], N))
        self.ok(d, "STORE 1 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "C1") UID MIN %d COUNT %d' % (u[1], N - 1)])
        # COUNT changes, MIN does not
        self.ok(d, "STORE 5 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "C1") UID COUNT %d' % (N - 2)])
        # with PARTIAL the list is kept (ADDTO/REMOVEFROM over the whole result)
        self.assertEqual(self.one(c, "UID SEARCH RETURN (UPDATE PARTIAL 1:2) UNSEEN", "C2"),
                         '* ESEARCH (TAG "C2") UID PARTIAL (1:2 %s)' % seqset(u[1:3]))
        self.ok(d, "STORE 2 +FLAGS (\\Seen)")
        lines = self.esearch(self.ok(c, "NOOP"))
        self.assertIn('* ESEARCH (TAG "C1") UID MIN %d COUNT %d' % (u[2], N - 3), lines)
        self.assertIn('* ESEARCH (TAG "C2") UID REMOVEFROM (1 %d)' % u[1], lines)

    def test_update_save(self):
        c, u = self.box("upsave")
        d = self.other("upsave")
        # SAVE and UPDATE: no ESEARCH at first (RFC 5182: SAVE alone), updates later
        self.assertEqual(self.esearch(self.ok(c, "UID SEARCH RETURN (SAVE UPDATE) SUBJECT even",
                                              "S1")), [])
        self.ok(d, "STORE 2 +FLAGS (\\Seen)")
        self.append(d, "upsave", 10)
        new = int(re.search(rb"UID (\d+)", b"".join(self.ok(d, "FETCH 9 UID"))).group(1))
        self.assertEqual(self.esearch(self.ok(c, "NOOP")),
                         ['* ESEARCH (TAG "S1") UID ADDTO (5 %d)' % new])
        # "$" is the result as saved (RFC 5182): not grown by the update
        got = sorted(int(x) for x in re.findall(rb"UID (\d+)",
                                                b"".join(self.ok(c, "UID FETCH $ UID"))))
        self.assertEqual(got, u[1::2])

    def test_update_ends_and_limit(self):
        c, u = self.box("uplimit")
        d = self.other("uplimit")
        for i in range(SEARCH_CONTEXT_MAX):
            self.one(c, "UID SEARCH RETURN (UPDATE COUNT) UNSEEN", "L%d" % i)
        # the same tag again while live: BAD
        self.bad(c, "UID SEARCH RETURN (UPDATE) ALL", tag="L0")
        # one too many: untagged NO [NOUPDATE "tag"], the search still answers
        tagged, untagged = c.imap("X1", "UID SEARCH RETURN (UPDATE COUNT) UNSEEN")
        self.assertRegex(tagged, rb"^X1 OK ")
        self.assertTrue([x for x in untagged if x.startswith(b'* NO [NOUPDATE "X1"]')], untagged)
        self.assertEqual(self.esearch(untagged), ['* ESEARCH (TAG "X1") UID COUNT %d' % N])
        self.ok(d, "STORE 1 +FLAGS (\\Seen)")
        lines = self.esearch(self.ok(c, "NOOP"))
        self.assertEqual(len(lines), SEARCH_CONTEXT_MAX, lines)
        self.assertFalse([x for x in lines if '"X1"' in x])
        # cancelling frees a place; several tags at once
        self.ok(c, 'CANCELUPDATE "L0" "L1"')
        self.one(c, "UID SEARCH RETURN (UPDATE COUNT) UNSEEN", "X2")
        # an unknown tag among known ones: BAD, and none is cancelled
        self.bad(c, 'CANCELUPDATE "L2" "nosuch"')
        self.ok(c, 'CANCELUPDATE "L2"')
        # UNSELECT ends them all: the tags are unknown after a new SELECT
        self.ok(c, "UNSELECT")
        self.ok(c, 'SELECT "uplimit"')
        self.bad(c, 'CANCELUPDATE "L3"')
        self.ok(d, "STORE 2 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(c, "NOOP")), [])
        # and SELECT of another mailbox too
        self.one(c, "UID SEARCH RETURN (UPDATE) UNSEEN", "Y1")
        self.ok(c, 'CREATE "uplimit2"')
        self.ok(c, 'SELECT "uplimit2"')
        self.ok(c, 'SELECT "uplimit"')
        self.bad(c, 'CANCELUPDATE "Y1"')

    def test_shared_seen(self):
        """Another user's mailbox shared by ACL: joe's live search follows fred's flag
        changes, and stops with the selection when joe loses the r right."""
        c, u = self.box("cxshare")
        self.ok(c, 'SETACL "cxshare" joe "lrs"')
        j = self.conn("joe")
        self.ok(j, 'SELECT "Other Users/fred/cxshare"')
        self.assertEqual(self.one(j, "UID SEARCH RETURN (UPDATE) FLAGGED", "J1"),
                         '* ESEARCH (TAG "J1") UID')
        self.ok(c, "STORE 4 +FLAGS (\\Flagged)")
        self.assertEqual(self.esearch(self.ok(j, "NOOP")),
                         ['* ESEARCH (TAG "J1") UID ADDTO (1 %d)' % u[3]])
        # without the r right, no selection (and so no search) at all
        self.ok(c, 'SETACL "cxshare" joe "l"')
        j.cmd("n NOOP")
        j.expect(rb'^\* BYE \[NOPERM\]')

    def test_per_user_seen(self):
        """A shared folder (per-user \\Seen): fred's live UNSEEN search moves with fred's
        \\Seen, set by this session or by another of his, and not with joe's."""
        b = self.conn("boss")
        self.ok(b, 'CREATE "Shared Folders/cxnews"')
        for i in range(1, 5):
            self.append(b, "Shared Folders/cxnews", i)
        self.ok(b, 'SETACL "Shared Folders/cxnews" anyone lrs')
        f, f2, j = self.conn("fred"), self.conn("fred"), self.conn("joe")
        for c in (f, f2, j):
            self.ok(c, 'SELECT "Shared Folders/cxnews"')
        u = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(f, "FETCH 1:* UID")))]
        self.assertEqual(self.one(f, "UID SEARCH RETURN (UPDATE) UNSEEN", "P1"),
                         '* ESEARCH (TAG "P1") UID ALL %s' % seqset(u))
        self.ok(j, "STORE 1 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(f, "NOOP")), [])
        self.ok(f2, "STORE 2 +FLAGS (\\Seen)")
        self.assertEqual(self.esearch(self.ok(f, "NOOP")),
                         ['* ESEARCH (TAG "P1") UID REMOVEFROM (2 %d)' % u[1]])
        self.assertEqual(self.esearch(self.ok(f, "STORE 3 +FLAGS (\\Seen)")),
                         ['* ESEARCH (TAG "P1") UID REMOVEFROM (2 %d)' % u[2]])
        self.assertEqual(self.esearch(self.ok(f, "STORE 2 -FLAGS (\\Seen)")),
                         ['* ESEARCH (TAG "P1") UID ADDTO (2 %d)' % u[1]])

    def test_update_during_idle(self):
        c, u = self.box("upidle")
        d = self.other("upidle")
        self.one(c, "UID SEARCH RETURN (UPDATE) FLAGGED", "I1")
        c.cmd("i IDLE")
        c.expect(rb"^\+ ")
        self.ok(d, "STORE 3 +FLAGS (\\Flagged)")
        c.expect(rb'^\* ESEARCH \(TAG "I1"\) UID ADDTO \(1 %d\)\r\n' % u[2])
        c.send("DONE\r\n")
        self.assertRegex(c.read_tagged("i")[0], rb"^i OK")


if __name__ == "__main__":
    main()
