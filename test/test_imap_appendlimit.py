"""test_imap_appendlimit.py: APPENDLIMIT (RFC 7889) end to end: the server-wide
APPENDLIMIT=<max_literal> capability before and after login (section 2 (a)), the STATUS item
(section 3.1, the example there) and LIST ... RETURN (STATUS (APPENDLIMIT)) (section 3.2, the
example there), a message of exactly the limit stored, one octet more refused with NO [TOOBIG]
before the "+" of a synchronizing literal (section 4), an oversized non-synchronizing literal
read, thrown away and answered BAD [TOOBIG] (RFC 7888 section 4 and 5) with the connection
still in step, MULTIAPPEND and CATENATE past the limit storing nothing, and the rights of the
STATUS item: another user's mailbox without rights (NO), with l r (the limit), an
administrator (the limit)."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

LIMIT = 16384          # max_literal = 16K below
USERS = {"ann": "annpw", "bob": "bobpw", "root1": "root1pw"}


def message(size):
    """A message of exactly size octets."""
    head = b"From: a@example.com\r\nSubject: appendlimit\r\n\r\n"
    return head + b"x" * (size - len(head))


def caps_of(line):
    m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line)
    return m.group(1).decode().split() if m else []


class AppendLimit(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "16K", "admins": "root1"}}

    def count(self, c, box="INBOX"):
        untagged = self.ok(c, 'STATUS "%s" (MESSAGES)' % box, "cnt")
        return int(re.search(rb"MESSAGES (\d+)", untagged[0]).group(1))

    def test_capability(self):
        """Section 2 (a): one limit for all mailboxes, before login too, and the same value
        after login (the OK [CAPABILITY] of LOGIN and a CAPABILITY command)."""
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        greeting = c.readline()
        self.assertIn("APPENDLIMIT=%d" % LIMIT, caps_of(greeting))
        self.assertEqual([x for x in caps_of(greeting) if x.startswith("APPENDLIMIT")],
                         ["APPENDLIMIT=%d" % LIMIT])
        tagged, _ = c.imap("l", "LOGIN ann annpw")
        self.assertIn("APPENDLIMIT=%d" % LIMIT, caps_of(tagged))
        _, untagged = c.imap("c", "CAPABILITY")
        self.assertIn("APPENDLIMIT=%d" % LIMIT, caps_of(untagged[0]))

    def test_status_item(self):
        """Section 3.1 example: STATUS INBOX (APPENDLIMIT); any case, with other items, and
        section 3.3: the same for every mailbox (no ACL or quota in it)."""
        c = self.conn("ann")
        self.assertEqual(self.ok(c, "STATUS INBOX (APPENDLIMIT)"),
                         [b'* STATUS "INBOX" (APPENDLIMIT %d)\r\n' % LIMIT])
        self.ok(c, "CREATE limbox")
        untagged = self.ok(c, "STATUS limbox (messages appendlimit UIDNEXT)")
        self.assertEqual(untagged, [b'* STATUS "limbox" (MESSAGES 0 APPENDLIMIT %d UIDNEXT 1)\r\n'
                                    % LIMIT])
        self.no(c, "STATUS nosuchbox (APPENDLIMIT)", "NONEXISTENT")
        tagged, _ = c.imap("b", "STATUS INBOX (APPENDLIMIT=5)")
        self.assertRegex(tagged, rb"^b BAD")

    def test_list_status(self):
        """Section 3.2 example: LIST "" % RETURN (STATUS (APPENDLIMIT)): a STATUS response
        with the item for every matching mailbox."""
        c = self.conn("bob")
        self.ok(c, "CREATE bobbox")
        untagged = self.ok(c, 'LIST "" % RETURN (STATUS (APPENDLIMIT))')
        status = [u for u in untagged if u.startswith(b"* STATUS")]
        lists = [u for u in untagged if u.startswith(b"* LIST")]
        self.assertEqual(len(status), len(lists))
        self.assertIn(b'* STATUS "INBOX" (APPENDLIMIT %d)\r\n' % LIMIT, status)
        self.assertIn(b'* STATUS "bobbox" (APPENDLIMIT %d)\r\n' % LIMIT, status)

    def test_append_at_and_over_the_limit(self):
        """Section 4: a message of exactly the limit is stored; one octet more is refused with
        a tagged NO [TOOBIG] instead of the "+" (the client never sends it), and the
        connection goes on."""
        c = self.conn("ann")
        self.ok(c, "CREATE atlimit")
        c.cmd("a1 APPEND atlimit {%d}" % LIMIT)
        c.expect(rb"^\+ ")
        c.send(message(LIMIT) + b"\r\n")
        self.assertRegex(c.read_tagged("a1")[0], rb"^a1 OK \[APPENDUID \d+ 1\]")
        c.cmd("a2 APPEND atlimit (\\Seen) {%d}" % (LIMIT + 1))
        line = c.readline()
        self.assertRegex(line, rb"^a2 NO \[TOOBIG\]")
        self.ok(c, "NOOP", "a3")
        self.assertEqual(self.count(c, "atlimit"), 1)
        # stored octet for octet
        self.ok(c, "EXAMINE atlimit")
        c.cmd("f FETCH 1 RFC822.SIZE")
        self.assertRegex(c.read_tagged("f")[1][0], rb"RFC822\.SIZE %d\)" % LIMIT)

    def test_nonsync_over_the_limit(self):
        """An oversized {N+} (RFC 7888 section 4 choice 1): read, thrown away, BAD [TOOBIG],
        and the next pipelined command runs; nothing is stored."""
        c = self.conn("bob")
        self.ok(c, "CREATE nsbox")
        big = message(LIMIT + 1)
        c.send(b"n1 APPEND nsbox {%d+}\r\n" % len(big) + big + b"\r\nn2 NOOP\r\n")
        self.assertRegex(c.read_tagged("n1")[0], rb"^n1 BAD \[TOOBIG\]")
        self.assertRegex(c.read_tagged("n2")[0], rb"^n2 OK")
        self.assertEqual(self.count(c, "nsbox"), 0)
        ok = message(LIMIT)
        c.send(b"n3 APPEND nsbox {%d+}\r\n" % len(ok) + ok + b"\r\n")
        self.assertRegex(c.read_tagged("n3")[0], rb"^n3 OK \[APPENDUID")

    def test_multiappend_and_catenate(self):
        """MULTIAPPEND whose second message is over the limit stores nothing (RFC 3502 all
        or nothing); a CATENATE whose result passes the limit is NO [TOOBIG] (RFC 4469)."""
        c = self.conn("ann")
        self.ok(c, "CREATE multi")
        small = message(100)
        c.cmd(b"m1 APPEND multi {%d+}\r\n" % len(small) + small + b" {%d}" % (LIMIT + 1))
        self.assertRegex(c.readline(), rb"^m1 NO \[TOOBIG\]")
        self.ok(c, "NOOP", "m2")
        self.assertEqual(self.count(c, "multi"), 0)
        half = b"y" * (LIMIT // 2 + 1)
        c.send(b"m3 APPEND multi CATENATE (TEXT {%d+}\r\n%s TEXT {%d+}\r\n%s)\r\n"
               % (len(half), half, len(half), half))
        self.assertRegex(c.read_tagged("m3")[0], rb"^m3 NO \[TOOBIG\]")
        self.assertEqual(self.count(c, "multi"), 0)

    def test_status_rights(self):
        """STATUS APPENDLIMIT needs the r right like every STATUS item (RFC 4314 section 4):
        another user's mailbox without rights is NO, with l r it shows the limit, and an
        administrator sees it everywhere."""
        owner = self.conn("ann")
        self.ok(owner, "CREATE shared1")
        other = self.conn("bob")
        tagged, _ = other.imap("s1", 'STATUS "Other Users/ann/shared1" (APPENDLIMIT)')
        self.assertRegex(tagged, rb"^s1 NO \[(NONEXISTENT|NOPERM)\]")
        self.ok(owner, 'SETACL shared1 bob l')
        tagged, _ = other.imap("s2", 'STATUS "Other Users/ann/shared1" (APPENDLIMIT)')
        self.assertRegex(tagged, rb"^s2 NO \[NOPERM\]")
        self.ok(owner, 'SETACL shared1 bob lr')
        self.assertEqual(self.ok(other, 'STATUS "Other Users/ann/shared1" (APPENDLIMIT)'),
                         [b'* STATUS "Other Users/ann/shared1" (APPENDLIMIT %d)\r\n' % LIMIT])
        admin = self.conn("root1")
        self.assertEqual(self.ok(admin, 'STATUS "Other Users/ann/shared1" (APPENDLIMIT)'),
                         [b'* STATUS "Other Users/ann/shared1" (APPENDLIMIT %d)\r\n' % LIMIT])


if __name__ == "__main__":
    main()
