"""test_imap_literal.py: LITERAL+ and LITERAL- (RFC 7888) as Coffer decides them: LITERAL+ is
advertised in every state and LITERAL- never (section 5: never both; LITERAL+ is the larger
promise, and RFC 9051's LITERAL- requirement is met by it, so IMAP4rev2 clients get LITERAL+
too). Non-synchronizing literals therefore work above 4096 octets after login (what LITERAL-
alone would refuse), in any command: the section 3 example, APPEND and MULTIAPPEND (section 7),
literal8 ~{N+} with BINARY (section 6), a SEARCH string; before login up to
max_literal_preauth; past the limits the section 4 choices (tested in test_hostile_parser.py and
test_imap_appendlimit.py)."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402


def caps_of(line):
    m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line)
    return m.group(1).decode().split() if m else []


def msg(size, tag=b"lit"):
    head = b"From: a@example.com\r\nSubject: " + tag + b"\r\n\r\n"
    return head + b"z" * (size - len(head))


class Literal(ImapUsersTestCase):
    users = {"lena": "lenapw"}
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "1M"}}

    def test_capability(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        caps = caps_of(c.readline())
        self.assertIn("LITERAL+", caps)
        self.assertNotIn("LITERAL-", caps)
        tagged, _ = c.imap("l", "LOGIN lena lenapw")
        caps = caps_of(tagged)
        self.assertIn("LITERAL+", caps)
        self.assertNotIn("LITERAL-", caps)

    def test_section3_example(self):
        """The LOGIN of section 3 with two {N+} literals, the second after text that follows
        the first literal on the same line."""
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.readline()
        c.send(b"A001 LOGIN {4+}\r\nlena {6+}\r\nlenapw\r\n")
        self.assertRegex(c.read_tagged("A001")[0], rb"^A001 OK")

    def test_over_4096_after_login(self):
        """What LITERAL- alone would refuse (a {N+} over 4096 octets) is accepted: APPEND,
        MULTIAPPEND with two such literals, and a SEARCH string; no "+" is ever sent."""
        c = self.conn("lena")
        self.ok(c, "CREATE litbox")
        a, b = msg(5000, b"one"), msg(70000, b"two")
        c.send(b"p1 APPEND litbox {%d+}\r\n%s\r\n" % (len(a), a))
        tagged, untagged = c.read_tagged("p1")
        self.assertRegex(tagged, rb"^p1 OK \[APPENDUID")
        self.assertFalse([u for u in untagged if u.startswith(b"+")])
        c.send(b"p2 APPEND litbox {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(a), a, len(b), b))
        self.assertRegex(c.read_tagged("p2")[0], rb"^p2 OK \[APPENDUID \d+ 2:3\]")
        self.ok(c, "SELECT litbox")
        needle = b"z" * 4500
        c.send(b"s1 SEARCH BODY {%d+}\r\n%s\r\n" % (len(needle), needle))
        tagged, untagged = c.read_tagged("s1")
        self.assertRegex(tagged, rb"^s1 OK")
        self.assertIn(b"* SEARCH 1 2 3\r\n", untagged)

    def test_literal8_nonsync(self):
        """Section 6: ~{N+} with BINARY and LITERAL+, over 4096 octets, NULs kept."""
        c = self.conn("lena")
        self.ok(c, "CREATE bin8")
        body = msg(6000, b"bin")[:-10] + b"\x00\x01\x02zzzzzzz"
        c.send(b"b1 APPEND bin8 ~{%d+}\r\n%s\r\n" % (len(body), body))
        self.assertRegex(c.read_tagged("b1")[0], rb"^b1 OK \[APPENDUID")

    def test_before_login(self):
        """Before login a {N+} over 4096 but within max_literal_preauth (8K) is read as usual:
        the LOGIN fails on its password, not on the literal."""
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.readline()
        pw = b"p" * 5000
        c.send(b"x1 LOGIN lena {%d+}\r\n%s\r\n" % (len(pw), pw))
        self.assertRegex(c.read_tagged("x1")[0], rb"^x1 NO \[AUTHENTICATIONFAILED\]")
        self.assertRegex(c.imap("x2", "LOGIN lena lenapw")[0], rb"^x2 OK")


if __name__ == "__main__":
    main()
