"""test_imap_savedate.py: RFC 8514 SAVEDATE end to end: FETCH SAVEDATE is when the message was
stored in this mailbox (APPEND with an old internal date, LMTP delivery, COPY and MOVE, which
keep the internal date but get a new save date), SEARCH SAVEDBEFORE/SAVEDON/SAVEDSINCE against
the save date and not the internal date, SAVEDATESUPPORTED; messages stored before save dates
were kept (index version 2) answer NIL and are searched by their internal date; rights
(another user's mailbox with and without r, an administrator); BAD for malformed keys."""
import calendar
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402
from test_objid_lib import downgrade_index, mailbox_dir, mailboxid_of  # noqa: E402

USERS = {u: u + "pw" for u in ("fred", "joe", "admin", "sam")}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
OLD = "01-Jan-2000 10:00:00 +0000"


def msg(i):
    return (b"From: a@example.com\r\nSubject: s%d\r\nMessage-ID: <sd%d@example.com>\r\n\r\n"
            b"body %d\r\n" % (i, i, i))


def imap_time(s):
    """Seconds since the epoch of an IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz"."""
    m = re.match(r"(\d+)-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)", s.strip())
    assert m, s
    d, mon, y, hh, mm, ss, sign, zh, zm = m.groups()
    t = calendar.timegm((int(y), MONTHS.index(mon) + 1, int(d), int(hh), int(mm), int(ss)))
    off = (int(zh) * 60 + int(zm)) * 60
    return t - off if sign == "+" else t + off


def imap_date(t):
    g = time.localtime(t)     # SEARCH dates are days in the server's time zone
    return "%d-%s-%d" % (g.tm_mday, MONTHS[g.tm_mon - 1], g.tm_year)


class SaveDate(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin"}}

    def append(self, c, box, data, date=None):
        self.ok(c, 'APPEND %s %s{%d+}\r\n%s' % (box, '"%s" ' % date if date else "", len(data),
                                                 data.decode()))

    def fetch_dates(self, c, seq="1:*"):
        """{uid: (internaldate, savedate or None)} from UID FETCH."""
        out = {}
        for line in self.ok(c, "UID FETCH %s (INTERNALDATE SAVEDATE)" % seq):
            m = re.search(rb'UID (\d+) INTERNALDATE "([^"]+)" SAVEDATE (NIL|"[^"]+")', line)
            self.assertTrue(m, line)
            sd = m.group(3).decode()
            out[int(m.group(1))] = (imap_time(m.group(2).decode()),
                                    None if sd == "NIL" else imap_time(sd.strip('"')))
        return out

    def search(self, c, keys):
        line = [l for l in self.ok(c, "UID SEARCH " + keys) if l.startswith(b"* SEARCH")][0]
        return sorted(int(x) for x in line.split()[2:])

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" SAVEDATE", caps)

    def test_append_copy_move_deliver(self):
        c = self.conn("fred")
        self.ok(c, "CREATE sd")
        self.ok(c, "CREATE sd2")
        before = time.time()
        self.append(c, "sd", msg(1), OLD)        # an old internal date
        self.append(c, "sd", msg(2))
        self.ok(c, "SELECT sd")
        d = self.fetch_dates(c)
        self.assertEqual(d[1][0], imap_time(OLD))
        for uid in (1, 2):
            self.assertGreaterEqual(d[uid][1], int(before) - 1)
            self.assertLessEqual(d[uid][1], time.time() + 1)
        # the save date, not the internal date, decides SAVED*
        today, old_day = imap_date(time.time()), "1-Jan-2000"
        self.assertEqual(self.search(c, "SAVEDSINCE %s" % today), [1, 2])
        self.assertEqual(self.search(c, "SAVEDON %s" % today), [1, 2])
        self.assertEqual(self.search(c, "SAVEDBEFORE %s" % today), [])
        self.assertEqual(self.search(c, "SAVEDON %s" % old_day), [])
        self.assertEqual(self.search(c, "ON %s" % old_day), [1])
        self.assertEqual(self.search(c, "SAVEDATESUPPORTED"), [1, 2])
        self.assertEqual(self.search(c, "NOT SAVEDATESUPPORTED"), [])
        self.assertEqual(self.search(c, "OR SAVEDBEFORE 1-Jan-2001 ON %s" % old_day), [1])
        # COPY and MOVE keep the internal date and set a new save date
        time.sleep(1.2)
        self.ok(c, "UID COPY 1 sd2")
        self.ok(c, "UID MOVE 2 sd2")
        self.ok(c, "SELECT sd2")
        d2 = self.fetch_dates(c)
        self.assertEqual(sorted(d2), [1, 2])
        self.assertEqual(d2[1][0], d[1][0])
        self.assertEqual(d2[2][0], d[2][0])
        self.assertGreater(d2[1][1], d[1][1])
        self.assertGreater(d2[2][1], d[2][1])
        # LMTP delivery
        t0 = time.time()
        with self.coffer.lmtp() as l:
            l.sendmail("x@example.com", ["fred@example.com"], msg(3))
        self.ok(c, "SELECT INBOX")
        di = self.fetch_dates(c)
        self.assertEqual(len(di), 1)
        self.assertGreaterEqual(list(di.values())[0][1], int(t0) - 1)

    def test_old_records(self):
        c = self.conn("sam")
        self.ok(c, "CREATE old")
        self.append(c, "old", msg(4), OLD)
        self.append(c, "old", msg(5), OLD)
        mid = mailboxid_of(self, c, "old")
        self.ok(c, "LOGOUT", "z")
        downgrade_index(mailbox_dir(self.coffer, mid))
        c = self.conn("sam")
        self.ok(c, "SELECT old")
        d = self.fetch_dates(c)
        self.assertEqual(d, {1: (imap_time(OLD), None), 2: (imap_time(OLD), None)})
        # unknown save dates: searched by the internal date
        self.assertEqual(self.search(c, "SAVEDON 1-Jan-2000"), [1, 2])
        self.assertEqual(self.search(c, "SAVEDSINCE %s" % imap_date(time.time())), [])
        self.assertEqual(self.search(c, "SAVEDATESUPPORTED"), [1, 2])
        # a message stored now gets a save date in the same (old) mailbox
        self.append(c, "old", msg(6), OLD)
        self.ok(c, "NOOP")
        d = self.fetch_dates(c, "3")
        self.assertIsNotNone(d[3][1])
        self.assertEqual(self.search(c, "SAVEDSINCE %s" % imap_date(time.time())), [3])
        # and an old message copied gets one
        self.ok(c, "UID COPY 1 old")
        self.ok(c, "NOOP")
        self.assertIsNotNone(self.fetch_dates(c, "4")[4][1])

    def test_rights(self):
        f = self.conn("fred")
        self.ok(f, "CREATE shared")
        self.append(f, "shared", msg(7), OLD)
        j = self.conn("joe")
        box = '"Other Users/fred/shared"'
        self.no(j, "EXAMINE %s" % box, "NONEXISTENT")
        self.ok(f, 'SETACL shared joe l')
        tagged, _ = j.imap("e", "EXAMINE %s" % box)
        self.assertRegex(tagged, rb"^e NO ")
        self.ok(f, 'SETACL shared joe lr')
        self.ok(j, "EXAMINE %s" % box)
        dj = self.fetch_dates(j)
        self.ok(f, "SELECT shared")
        self.assertEqual(dj, self.fetch_dates(f))
        self.assertEqual(self.search(j, "SAVEDSINCE %s" % imap_date(time.time())), [1])
        a = self.conn("admin")
        self.ok(a, "EXAMINE %s" % box)
        self.assertEqual(self.fetch_dates(a), dj)

    def test_bad(self):
        c = self.conn("fred")
        self.ok(c, "SELECT INBOX")
        for keys in ("SAVEDBEFORE", "SAVEDON 32-Jan-2020", "SAVEDSINCE 2020-01-01",
                     "SAVEDATESUPPORTED 1-Jan-2020", "SAVEDON (1-Jan-2020)"):
            tagged, _ = c.imap("b", "SEARCH %s" % keys)
            self.assertRegex(tagged, rb"^b BAD ", keys)
        tagged, _ = c.imap("f", "FETCH 1:* (SAVEDATE[])")
        self.assertRegex(tagged, rb"^f BAD ")
        self.ok(c, "NOOP")


if __name__ == "__main__":
    main()
