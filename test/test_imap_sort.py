"""test_imap_sort.py: SORT (RFC 5256), SORT=DISPLAY (RFC 5957) and ESORT (RFC 5267 section 3)
end to end: every sort key (ARRIVAL, CC, DATE, FROM, SIZE, SUBJECT, TO, DISPLAYFROM,
DISPLAYTO) and REVERSE, several keys, ties in mailbox order, the Date: field normalized to
UTC and the internal date when it is missing, base subjects (reply and forward markers,
[blobs], "(fwd)", RFC 2047 encoded words), i;unicode-casemap collation, missing headers,
search criteria and "$", the UID form, ESORT's RETURN (MIN MAX ALL COUNT SAVE) in sort order,
BAD for malformed commands and NO [BADCHARSET] for other charsets, and the r right."""
import functools
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}

# (internal date, header lines); the comments give the sort keys
MSGS = [
    # 1: date 2023-01-02 10:00 UTC, subject "beta" (reply), from alice / "Zed"
    ("05-Jan-2023 00:00:00 +0000",
     'From: "Zed" <alice@x.example>\r\nTo: bob@y.example\r\nCc: carol@z.example\r\n'
     "Subject: Re: beta\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n"),
    # 2: 2023-01-01 23:00 -0500 = 2023-01-02 04:00 UTC; to "Alpha" <zoe>
    ("03-Jan-2023 00:00:00 +0000",
     'From: Bob <bob@x.example>\r\nTo: "Alpha" <zoe@y.example>\r\nSubject: alpha\r\n'
     "Date: Sun, 1 Jan 2023 23:00:00 -0500\r\n"),
    # 3: 2023-01-02 09:00 +0100 = 08:00 UTC; encoded subject "éclair"; no display name
    ("04-Jan-2023 00:00:00 +0000",
     "From: carl@x.example\r\nTo: amy@y.example\r\nSubject: =?UTF-8?Q?=C3=A9clair?=\r\n"
     "Date: Mon, 2 Jan 2023 09:00:00 +0100\r\n"),
    # 4: no From, To, Subject or Date: the internal date (2023-01-01) is its date
    ("01-Jan-2023 00:00:00 +0000", "X-Nothing: here\r\n"),
    # 5: same date as 1; base subject "Alpha"; encoded display name "Émile"; no To
    ("02-Jan-2023 00:00:00 +0000",
     "From: =?UTF-8?Q?=C3=89mile?= <emile@x.example>\r\n"
     "Subject: [list] Fwd: Alpha (fwd)\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n"),
]


def body(i):
    # different sizes, not in message order
    return "x" * ((i * 37) % 5 * 10 + 1)


def message(i):
    date, hdr = MSGS[i - 1]
    return hdr + "Message-ID: <s%d@example>\r\n\r\n%s\r\n" % (i, body(i))


class Sort(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def make_box(self, name, msgs):
        """msgs: (internal date or None, message text) pairs."""
        c = self.conn("fred")
        self.ok(c, 'CREATE "%s"' % name)
        for date, m in msgs:
            d = ' "%s"' % date if date else ""
            data = m.encode()
            self.ok(c, 'APPEND "%s"%s {%d+}\r\n%s' % (name, d, len(data), m))
        c.imap("z", "LOGOUT")

    def box(self, name="sort"):
        self.make_box(name, [(MSGS[i - 1][0], message(i)) for i in range(1, len(MSGS) + 1)])
        c = self.conn("fred")
        self.ok(c, 'SELECT "%s"' % name)
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(c, "FETCH 1:* UID")))]
        return c, uids

    def sort(self, c, text, tag="s"):
        """The numbers of the one * SORT line of a successful command."""
        untagged = self.ok(c, text, tag=tag)
        lines = [u.rstrip(b"\r\n") for u in untagged if u.startswith(b"* SORT")]
        self.assertEqual(len(lines), 1, untagged)
        self.assertRegex(lines[0], rb"^\* SORT( \d+)*$")
        return [int(x) for x in lines[0].split()[2:]]

    def esearch(self, c, text, tag="s"):
        untagged = self.ok(c, text, tag=tag)
        lines = [u.rstrip(b"\r\n").decode() for u in untagged if u.startswith(b"* ESEARCH")]
        self.assertLessEqual(len(lines), 1, untagged)
        self.assertFalse([u for u in untagged if u.startswith(b"* SORT")], untagged)
        return lines[0] if lines else None

    def bad(self, c, text, tag="b"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" BAD ", (text, tagged))

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1]).split()
        for cap in (b"SORT", b"SORT=DISPLAY", b"ESORT"):
            self.assertIn(cap, caps)

    def test_keys(self):
        c, uids = self.box("keys")
        expect = {
            "DATE": [4, 2, 3, 1, 5],
            "REVERSE DATE": [1, 5, 3, 2, 4],    # ties stay in mailbox order
            "ARRIVAL": [4, 5, 2, 3, 1],
            "REVERSE ARRIVAL": [1, 3, 2, 5, 4],
            "SUBJECT": [4, 2, 5, 1, 3],         # "", alpha, Alpha, beta, éclair
            "FROM": [4, 1, 2, 3, 5],            # "", alice, bob, carl, emile
            "TO": [4, 5, 3, 1, 2],              # "", "", amy, bob, zoe
            "CC": [2, 3, 4, 5, 1],
            "DISPLAYFROM": [4, 2, 3, 5, 1],     # "", Bob, carl@x.example, Émile, Zed
            "DISPLAYTO": [4, 5, 2, 3, 1],       # "", "", Alpha, amy@..., bob@...
            "SUBJECT REVERSE DATE": [4, 5, 2, 1, 3],
            "REVERSE SUBJECT DATE": [3, 1, 2, 5, 4],
            "CC DATE": [4, 2, 3, 5, 1],
            "FROM FROM": [4, 1, 2, 3, 5],
        }
        sizes = [len(message(i).encode()) for i in range(1, 6)]
        expect["SIZE"] = sorted(range(1, 6), key=lambda i: (sizes[i - 1], i))
        expect["REVERSE SIZE"] = sorted(range(1, 6), key=lambda i: (-sizes[i - 1], i))
        for keys, order in expect.items():
            with self.subTest(keys=keys):
                self.assertEqual(self.sort(c, "SORT (%s) UTF-8 ALL" % keys), order)
                self.assertEqual(self.sort(c, "UID SORT (%s) US-ASCII ALL" % keys),
                                 [uids[i - 1] for i in order])
        # criteria: the search program of SEARCH
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 SUBJECT alpha"), [2, 5])
        self.assertEqual(self.sort(c, "SORT (REVERSE ARRIVAL) utf-8 OR FROM bob FROM carl"),
                         [3, 2])
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 2:4 NOT 3"), [4, 2])
        self.assertEqual(self.sort(c, "UID SORT (DATE) UTF-8 UID %d:%d" % (uids[1], uids[2])),
                         [uids[1], uids[2]])
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 SUBJECT nosuch"), [])
        # the sent date in the criteria too (SENTON compares the Date: day as written)
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 SENTON 2-Jan-2023"), [3, 1, 5])

    def test_collation(self):
        # i;unicode-casemap: case and accents decomposed, then octet order
        subjects = ["b", "a", "B", "=?ISO-8859-1?Q?=E1?=", "A", "=?UTF-8?Q?=C3=81?=", "Re: a",
                    "[x] c", "[fwd: b]"]
        msgs = [(None, "Subject: %s\r\nDate: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\n.\r\n" % s)
                for s in subjects]
        self.make_box("coll", msgs)
        c = self.conn("fred")
        self.ok(c, 'SELECT "coll"')
        # A: 2, 5, 7 (Re: a); A+acute: 4, 6; B: 1, 3, 9 ([fwd: b]); C: 8
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 ALL"), [2, 5, 7, 4, 6, 1, 3, 9, 8])
        self.assertEqual(self.sort(c, "SORT (REVERSE SUBJECT) UTF-8 ALL"),
                         [8, 1, 3, 9, 4, 6, 2, 5, 7])

    def test_long_shared_keys(self):
        # the string sort goes 8 bytes of the key at a time (cmd-sort.c string_order): keys
        # that share 8, 16, 24 bytes and more, keys that are prefixes of others, equal keys
        # (mailbox order), runs of equal bytes long enough for the radix pass and short ones;
        # checked against a sort of the casemapped keys (letters, digits, spaces: for those
        # i;unicode-casemap orders as upper case does), with REVERSE and a second key
        stems = ["project status", "project status report", "project status report week",
                 "projects", "project", "projectstatusreportweekly", "p", "", "zz top",
                 "project status report week 2", "project status report week 10"]
        subj, dates, msgs = [], [], []
        for i in range(300):
            h = (i * 2654435761) & 0xffffffff
            s = stems[h % len(stems)]
            if h % 3 == 0:
                s = (s + " " + str(h % 13)).strip()
            day = 1 + (h >> 8) % 28
            subj.append(s.upper())
            dates.append(day)
            cased = "".join(ch.upper() if (h >> k) & 1 else ch for k, ch in enumerate(s))
            msgs.append((None, "Subject: %s\r\nDate: %d Jan 2023 10:00:00 +0000\r\n\r\n%d\r\n"
                         % (cased, day, i)))
        self.make_box("long", msgs)
        c = self.conn("fred")
        self.ok(c, 'SELECT "long"')

        def ref(nums, rev_subj=False, then_date=None):
            def cmp(a, b):
                sa, sb = subj[a - 1], subj[b - 1]
                r = (sa > sb) - (sa < sb)
                if rev_subj: r = -r
                if not r and then_date:
                    da, db = dates[a - 1], dates[b - 1]
                    r = (da > db) - (da < db)
                    if then_date == "rev": r = -r
                return r or (a > b) - (a < b)
            return sorted(nums, key=functools.cmp_to_key(cmp))
        live = list(range(1, 301))
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 ALL"), ref(live))
        self.assertEqual(self.sort(c, "SORT (REVERSE SUBJECT) UTF-8 ALL"), ref(live, True))
        self.assertEqual(self.sort(c, "SORT (SUBJECT DATE) UTF-8 ALL"), ref(live, False, "asc"))
        self.assertEqual(self.sort(c, "SORT (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL"),
                         ref(live, True, "rev"))
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 1:150"), ref(live[:150]))
        # after an expunge, and with a message another session appended meanwhile
        self.ok(c, "STORE %s +FLAGS.SILENT (\\Deleted)" % ",".join(map(str, range(1, 301, 7))))
        self.ok(c, "EXPUNGE")
        keep = [i for i in range(1, 301) if (i - 1) % 7]
        other = self.conn("fred")
        extra = "Subject: Project Status Report Week 1\r\n\r\nx\r\n"
        self.ok(other, 'APPEND "long" {%d+}\r\n%s' % (len(extra), extra))
        other.imap("z", "LOGOUT")
        self.ok(c, "NOOP")
        subj = [subj[i - 1] for i in keep] + ["PROJECT STATUS REPORT WEEK 1"]
        dates = [dates[i - 1] for i in keep] + [0]
        live = list(range(1, len(subj) + 1))
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 ALL"), ref(live))
        self.assertEqual(self.sort(c, "SORT (REVERSE SUBJECT) UTF-8 ALL"), ref(live, True))

    def test_deep_runs_level_by_level(self):
        # string_order goes a level (8 key bytes) at a time over every run still open, the
        # bytes read in mailbox order (cmd-sort.c chunk_pass): at one level some runs end (all
        # their keys exhausted: by length, then mailbox order), others go on, with more than
        # 32 keys (radix) and fewer (insertion sort); keys ending on a level's edge (8, 16,
        # 24, 32 bytes) and in between, equal keys, and prefixes up to 48 bytes shared
        base = "abcdefgh" "ijklmnop" "qrstuvwx" "yz012345" "6789abcd" "efghijkl"
        lens = [8, 16, 24, 32, 40, 48, 7, 15, 17, 23, 25, 33, 47, 3, 0]
        subj, dates, msgs = [], [], []
        for i in range(700):
            h = (i * 2654435761 + 7) & 0xffffffff
            cut = lens[h % len(lens)]
            s = base[:cut]
            v = (h >> 8) % 9
            if v == 1 and cut:
                s = s[:-1] + "Z"              # differs in the level's last byte
            elif v == 2 and cut > 8:
                s = s[:8] + "A" + s[9:]       # differs at the start of the second level
            elif v == 3:
                s = s + " %d" % ((h >> 12) % 3)   # a short tail past the edge
            subj.append(s.upper())
            day = 1 + (h >> 16) % 28
            dates.append(day)
            cased = "".join(ch.upper() if (h >> k) & 1 else ch for k, ch in enumerate(s))
            msgs.append((None, "Subject: %s\r\nDate: %d Jan 2023 10:00:00 +0000\r\n\r\n%d\r\n"
                         % (cased, day, i)))
        self.make_box("deep", msgs)
        c = self.conn("fred")
        self.ok(c, 'SELECT "deep"')

        def ref(keys, ds, rev=False, then_date=None):
            def cmp(a, b):
                r = (keys[a - 1] > keys[b - 1]) - (keys[a - 1] < keys[b - 1])
                if rev: r = -r
                if not r and then_date:
                    r = (ds[a - 1] > ds[b - 1]) - (ds[a - 1] < ds[b - 1])
                    if then_date == "rev": r = -r
                return r or (a > b) - (a < b)
            return sorted(range(1, len(keys) + 1), key=functools.cmp_to_key(cmp))
        for _ in range(2):          # twice in one session: nothing of the first one is reused
            self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 ALL"), ref(subj, dates))
            self.assertEqual(self.sort(c, "SORT (REVERSE SUBJECT) UTF-8 ALL"),
                             ref(subj, dates, True))
            self.assertEqual(self.sort(c, "SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
                             ref(subj, dates, False, "rev"))
        # a subset: the keys the search left out are in no run
        odd = [m for m in range(1, 701) if m % 2]
        want = [m for m in ref(subj, dates) if m % 2]
        self.assertEqual(self.sort(c, "SORT (SUBJECT) UTF-8 %s" % ",".join(map(str, odd))), want)

    def test_empty_and_missing(self):
        c = self.conn("fred")
        self.ok(c, 'CREATE "empty"')
        self.ok(c, 'SELECT "empty"')
        untagged = self.ok(c, "SORT (DATE) UTF-8 ALL")
        self.assertIn(b"* SORT\r\n", untagged)
        self.assertEqual(self.esearch(c, "SORT RETURN (MIN MAX ALL COUNT) (DATE) UTF-8 ALL",
                                      "e1"), '* ESEARCH (TAG "e1") COUNT 0')
        # a message without any header at all
        self.make_box("bare", [("01-Jan-2020 00:00:00 +0000", "\r\nno header\r\n"),
                               ("01-Jan-2019 00:00:00 +0000", "\r\nno header\r\n")])
        self.ok(c, 'SELECT "bare"')
        for k in ("DATE", "SUBJECT", "FROM", "TO", "CC", "DISPLAYFROM", "DISPLAYTO"):
            self.assertEqual(self.sort(c, "SORT (%s) UTF-8 ALL" % k),
                             [2, 1] if k == "DATE" else [1, 2])

    def test_esort(self):
        c, uids = self.box("esort")
        self.assertEqual(self.esearch(c, "SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL", "e1"),
                         '* ESEARCH (TAG "e1") MIN 4 MAX 5 COUNT 5')
        # ALL in sort order: only ascending runs become ranges
        self.assertEqual(self.esearch(c, "SORT RETURN (ALL) (DATE) UTF-8 ALL", "e2"),
                         '* ESEARCH (TAG "e2") ALL 4,2:3,1,5')
        self.assertEqual(self.esearch(c, "SORT RETURN () (ARRIVAL) UTF-8 ALL", "e3"),
                         '* ESEARCH (TAG "e3") ALL 4:5,2:3,1')
        u = uids
        self.assertEqual(self.esearch(c, "UID SORT RETURN (MIN ALL) (REVERSE DATE) UTF-8 ALL",
                                      "e4"),
                         '* ESEARCH (TAG "e4") UID MIN %d ALL %d,%d,%d,%d,%d'
                         % (u[0], u[0], u[4], u[2], u[1], u[3]))
        self.assertEqual(self.esearch(c, "SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nosuch",
                                      "e5"), '* ESEARCH (TAG "e5") COUNT 0')
        # SAVE (RFC 5182): the result as "$", no ESEARCH line for SAVE alone
        self.assertIsNone(self.esearch(c, "SORT RETURN (SAVE) (DATE) UTF-8 FROM bob", "e6"))
        untagged = self.ok(c, "FETCH $ UID")
        self.assertEqual(len([x for x in untagged if b"FETCH" in x]), 1)
        self.assertIn(b"* 2 FETCH", b"".join(untagged))
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 OR $ FROM alice"), [2, 1])
        # SAVE with MIN only: the first in sort order
        self.esearch(c, "SORT RETURN (SAVE MIN) (REVERSE ARRIVAL) UTF-8 ALL", "e7")
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 $"), [1])
        # a failed SORT that asked to SAVE empties "$" (RFC 5182 section 2.1)
        self.bad(c, "SORT RETURN (SAVE) (FOO) UTF-8 ALL")
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 $"), [])
        self.esearch(c, "SORT RETURN (SAVE) (DATE) UTF-8 FROM bob", "e8")
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 $"), [2])
        self.no(c, "SORT RETURN (SAVE) (DATE) KOI8-R ALL", r"BADCHARSET \(US-ASCII UTF-8\)")
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 $"), [])
        self.bad(c, "SORT RETURN (FOO) (DATE) UTF-8 ALL")
        self.bad(c, "SORT RETURN MIN (DATE) UTF-8 ALL")
        self.bad(c, "SORT RETURN")

    def test_bad(self):
        c, _ = self.box("bad")
        for text in ("SORT", "SORT (DATE)", "SORT (DATE) UTF-8", "SORT DATE UTF-8 ALL",
                     "SORT () UTF-8 ALL", "SORT (FOO) UTF-8 ALL", "SORT (REVERSE) UTF-8 ALL",
                     "SORT (DATE REVERSE) UTF-8 ALL", "SORT (REVERSE REVERSE DATE) UTF-8 ALL",
                     "SORT (DATE) UTF-8 FROB", "SORT (DATE) UTF-8 CHARSET UTF-8 ALL",
                     "SORT (DATE) (UTF-8) ALL", "SORT (DATE) UTF-8 SUBJECT",
                     "SORT (%s) UTF-8 ALL" % " ".join(["DATE"] * 40),
                     "UID SORT (DATE)"):
            with self.subTest(text=text):
                self.bad(c, text)
        self.no(c, "SORT (DATE) KOI8-R ALL", r"BADCHARSET \(US-ASCII UTF-8\)")
        self.no(c, "UID SORT (DATE) ISO-8859-1 ALL", r"BADCHARSET \(US-ASCII UTF-8\)")
        # the session is fine afterwards
        self.assertEqual(self.sort(c, "SORT (DATE) UTF-8 ALL"), [4, 2, 3, 1, 5])
        # not selected: BAD
        d = self.conn("fred")
        self.bad(d, "SORT (DATE) UTF-8 ALL")

    def test_literal_criteria(self):
        c, _ = self.box("lit")
        tagged, untagged = c.imap("l", "SORT (DATE) UTF-8 SUBJECT {5+}\r\nalpha")
        self.assertRegex(tagged, rb"^l OK")
        self.assertIn(b"* SORT 2 5\r\n", untagged)

    def test_rights(self):
        self.make_box("noread", [(None, message(i)) for i in (1, 2)])
        f, j = self.conn("fred"), self.conn("joe")
        self.ok(f, 'SETACL "noread" joe "l"')
        self.no(j, 'SELECT "Other Users/fred/noread"', "NOPERM")
        self.bad(j, "SORT (DATE) UTF-8 ALL")
        self.ok(f, 'SETACL "noread" joe "lr"')
        self.ok(j, 'EXAMINE "Other Users/fred/noread"')
        self.assertEqual(self.sort(j, "SORT (SUBJECT) UTF-8 ALL"), [2, 1])
        # r taken away while selected: no sort, the session ends (as for SEARCH)
        self.ok(f, 'SETACL "noread" joe "l"')
        j.cmd("r SORT (SUBJECT) UTF-8 ALL")
        self.assertRegex(j.readline(), rb"^\* BYE \[NOPERM\]")

    def test_rights_none_and_admin(self):
        self.make_box("private", [(None, message(i)) for i in (1, 2)])
        # no rights at all: the mailbox does not exist for joe, and nothing is selected
        j = self.conn("joe")
        self.no(j, 'EXAMINE "Other Users/fred/private"', "NONEXISTENT")
        self.bad(j, "SORT (SUBJECT) UTF-8 ALL")
        self.bad(j, "SORT RETURN (ALL) (SUBJECT) UTF-8 ALL")
        # an administrator has every right (imapd(8)), whatever the ACL says (a negative entry
        # naming him included: coffer.conf(5)): reads and sorts fred's mailbox
        f = self.conn("fred")
        self.ok(f, 'SETACL "private" -boss lr')
        b = self.conn("boss")
        self.ok(b, 'EXAMINE "Other Users/fred/private"')
        self.assertEqual(self.sort(b, "SORT (SUBJECT) UTF-8 ALL"), [2, 1])
        self.assertEqual(self.sort(b, "SORT (REVERSE SUBJECT) UTF-8 ALL"), [1, 2])
        untagged = self.ok(b, "SORT RETURN (ALL COUNT) (SUBJECT) UTF-8 ALL", tag="e")
        self.assertEqual(untagged, [b'* ESEARCH (TAG "e") ALL 2,1 COUNT 2\r\n'])


if __name__ == "__main__":
    main()
