"""test_imap_status.py: the STATUS items beyond RFC 3501, end to end: SIZE (RFC 8438), DELETED
(RFC 9208 section 4.2.1), DELETED-STORAGE (RFC 9208 section 4.2.2, KiB that expunging the
\\Deleted messages frees, rounded up) and HIGHESTMODSEQ (RFC 7162 section 3.1.1), after
APPEND, STORE and EXPUNGE, against the sum of RFC822.SIZE; the same items in the LIST-STATUS
return option; another user's mailbox with and without the r right; BAD for unknown items."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {u: u + "pw" for u in ("fred", "joe", "admin", "mod")}
ITEMS = "(MESSAGES SIZE DELETED DELETED-STORAGE HIGHESTMODSEQ)"


def message(n):
    """A message of exactly n bytes."""
    head = b"From: a@example.com\r\nSubject: size %d\r\n\r\n" % n
    body = (b"x" * 70 + b"\r\n") * n
    return head + body[:n - len(head)]


def parse_status(line):
    m = re.match(rb'^\* STATUS (?:"(?:[^"\\]|\\.)*"|\S+) \(([^)]*)\)\r\n$', line)
    assert m, line
    items = m.group(1).decode().split()
    return {items[i]: int(items[i + 1]) for i in range(0, len(items), 2)}


class Status(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin"}}

    def status(self, c, box, items=ITEMS):
        untagged = self.ok(c, "STATUS %s %s" % (box, items))
        self.assertEqual(len(untagged), 1, untagged)
        return parse_status(untagged[0])

    def append(self, c, box, data, flags=""):
        self.ok(c, "APPEND %s %s{%d+}\r\n%s" % (box, flags, len(data), data.decode()))

    def test_values_follow_changes(self):
        c = self.conn("fred")
        self.ok(c, "CREATE box")
        st = self.status(c, "box")
        self.assertEqual({k: st[k] for k in ("MESSAGES", "SIZE", "DELETED", "DELETED-STORAGE")},
                         {"MESSAGES": 0, "SIZE": 0, "DELETED": 0, "DELETED-STORAGE": 0})
        self.assertGreaterEqual(st["HIGHESTMODSEQ"], 1)   # 0 would mean "no mod-sequences"
        sizes = (1000, 2500, 3000)
        for n in sizes:
            self.append(c, "box", message(n))
        st1 = self.status(c, "box")
        self.assertEqual(st1["MESSAGES"], 3)
        self.assertEqual(st1["SIZE"], sum(sizes))
        self.assertGreater(st1["HIGHESTMODSEQ"], st["HIGHESTMODSEQ"])
        # SIZE is the sum of the RFC822.SIZEs (RFC 8438 section 3)
        self.ok(c, "SELECT box")
        fetched = [int(x) for x in re.findall(rb"RFC822\.SIZE (\d+)",
                                             b"".join(self.ok(c, "FETCH 1:* RFC822.SIZE")))]
        self.assertEqual(sum(fetched), st1["SIZE"])
        # STATUS of the selected mailbox is allowed and sees the same values
        self.ok(c, "STORE 2:3 +FLAGS.SILENT (\\Deleted)")
        st2 = self.status(c, "box")
        self.assertEqual(st2["DELETED"], 2)
        self.assertEqual(st2["DELETED-STORAGE"], 6)       # 5500 bytes, rounded up to 6 KiB
        self.assertEqual(st2["SIZE"], sum(sizes))
        self.assertGreater(st2["HIGHESTMODSEQ"], st1["HIGHESTMODSEQ"])
        self.ok(c, "STORE 3 -FLAGS.SILENT (\\Deleted)")
        st3 = self.status(c, "box")
        self.assertEqual((st3["DELETED"], st3["DELETED-STORAGE"]), (1, 3))  # 2500 -> 3 KiB
        self.assertGreater(st3["HIGHESTMODSEQ"], st2["HIGHESTMODSEQ"])
        self.ok(c, "EXPUNGE")
        st4 = self.status(c, "box")
        self.assertEqual({k: st4[k] for k in ("MESSAGES", "SIZE", "DELETED", "DELETED-STORAGE")},
                         {"MESSAGES": 2, "SIZE": 4000, "DELETED": 0, "DELETED-STORAGE": 0})
        self.assertGreater(st4["HIGHESTMODSEQ"], st3["HIGHESTMODSEQ"])
        # exactly 1024 bytes is 1 KiB; an appended \Deleted message counts at once
        self.append(c, "box", message(1024), "(\\Deleted) ")
        st5 = self.status(c, "box")
        self.assertEqual((st5["DELETED"], st5["DELETED-STORAGE"], st5["SIZE"]), (1, 1, 5024))
        # the order asked is the order answered; a repeated item once
        untagged = self.ok(c, "STATUS box (HIGHESTMODSEQ SIZE DELETED-STORAGE SIZE)")
        self.assertRegex(untagged[0], rb'^\* STATUS "?box"? \(HIGHESTMODSEQ \d+ SIZE 5024 '
                                      rb"DELETED-STORAGE 1\)\r\n$")

    def test_list_status(self):
        c = self.conn("mod")
        self.ok(c, "CREATE a")
        self.append(c, "a", message(2048), "(\\Deleted) ")
        untagged = self.ok(c, 'LIST "" a RETURN (STATUS %s)' % ITEMS)
        self.assertEqual(untagged[0], b'* LIST (\\HasNoChildren) "/" "a"\r\n')
        st = parse_status(untagged[1])
        self.assertEqual({k: st[k] for k in ("MESSAGES", "SIZE", "DELETED", "DELETED-STORAGE")},
                         {"MESSAGES": 1, "SIZE": 2048, "DELETED": 1, "DELETED-STORAGE": 2})
        self.assertEqual(st, self.status(c, "a"))

    def test_rights(self):
        f = self.conn("fred")
        self.ok(f, "CREATE shared")
        self.append(f, "shared", message(3000), "(\\Deleted) ")
        j = self.conn("joe")
        box = '"Other Users/fred/shared"'
        # invisible: as if it did not exist
        self.no(j, "STATUS %s %s" % (box, ITEMS), "NONEXISTENT")
        # visible without r: NO, and no value given away
        self.ok(f, "SETACL shared joe l")
        tagged, untagged = j.imap("s", "STATUS %s %s" % (box, ITEMS))
        self.assertRegex(tagged, rb"^s NO ")
        self.assertEqual(untagged, [])
        untagged = self.ok(j, 'LIST "" %s RETURN (STATUS (SIZE))' % box)
        self.assertEqual(len(untagged), 1, untagged)
        # with r: the owner's values
        self.ok(f, "SETACL shared joe lr")
        st = self.status(j, box)
        self.assertEqual({k: st[k] for k in ("MESSAGES", "SIZE", "DELETED", "DELETED-STORAGE")},
                         {"MESSAGES": 1, "SIZE": 3000, "DELETED": 1, "DELETED-STORAGE": 3})
        self.assertEqual(st, self.status(f, "shared"))
        self.assertEqual(st, self.status(self.conn("admin"), box))

    def test_bad_items(self):
        c = self.conn("fred")
        for items in ("(SIZE BOGUS)", "(DELETED-STORAGE", "(HIGHESTMODSEQ 1)", "SIZE",
                      "(\"SIZE\")"):
            tagged, untagged = c.imap("b", "STATUS INBOX %s" % items)
            self.assertRegex(tagged, rb"^b BAD ", items)
        self.ok(c, "NOOP")


if __name__ == "__main__":
    main()
