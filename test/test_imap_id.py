"""test_imap_id.py: ID (RFC 2971) end to end: the capability, the section 3.1 forms (ID NIL
and a field list, the example's fields) in every state, the answer naming the server and the
version from project() in CMakeLists.txt and nothing else (section 7: no host, OS or build
details), the section 3.3 limits (30 pairs, 30-octet fields, 1024-octet values) and malformed
lists answered BAD, and the client's fields in the log."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main, src_dir  # noqa: E402


def project_version():
    with open(os.path.join(src_dir(), "CMakeLists.txt")) as f:
        m = re.search(r"^project\(coffer VERSION ([0-9.]+)", f.read(), re.M)
    return m.group(1)


class Id(ImapUsersTestCase):
    users = {"idu": "idupw"}
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    def expected(self):
        return b'* ID ("name" "Coffer" "version" "%s")\r\n' % project_version().encode()

    def test_before_and_after_login(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        self.assertIn(b" ID ", c.readline())
        # section 3.1: any state; NIL when the client says nothing about itself
        self.assertEqual(self.ok(c, "ID NIL"), [self.expected()])
        self.assertRegex(c.imap("l", "LOGIN idu idupw")[0], rb"^l OK")
        # the fields of the section 3.4 example
        untagged = self.ok(c, 'ID ("name" "sodr" "version" "19.34" "vendor" '
                              '"Pink Floyd Music Limited")')
        self.assertEqual(untagged, [self.expected()])
        self.ok(c, "SELECT INBOX")
        self.assertEqual(self.ok(c, 'ID ("name" NIL)'), [self.expected()])

    def test_answer_has_nothing_else(self):
        """Section 7: nothing that would help an attacker: only name and version, and the
        version is the project's (CMakeLists.txt project(... VERSION ...))."""
        c = self.conn("idu")
        line = self.ok(c, "ID NIL")[0]
        pairs = re.findall(rb'"([^"]*)"', line)
        self.assertEqual(pairs, [b"name", b"Coffer", b"version", project_version().encode()])
        self.assertNotIn(os.uname().nodename.encode(), line)
        self.assertRegex(project_version(), r"^\d+\.\d+")

    def test_limits_and_syntax(self):
        c = self.conn("idu")
        bad = [
            "ID",                                   # needs a list or NIL
            'ID ("name")',                          # pairs only
            "ID () ()",
            'ID ("%s" "v")' % ("f" * 31),           # field over 30 octets
            'ID ("f" "%s")' % ("v" * 1025),         # value over 1024 octets
            "ID (%s)" % " ".join('"f%d" "v"' % i for i in range(31)),   # 31 pairs
        ]
        for i, text in enumerate(bad):
            tagged, untagged = c.imap("b%d" % i, text)
            self.assertRegex(tagged, rb"^b%d BAD" % i, text)
            self.assertEqual(untagged, [], text)
        # the limits themselves are fine
        self.ok(c, 'ID ("%s" "%s")' % ("f" * 30, "v" * 1024))
        self.ok(c, "ID (%s)" % " ".join('"f%d" "v"' % i for i in range(30)))

    def test_logged(self):
        c = self.conn("idu")
        since = self.coffer.log_size()
        self.ok(c, 'ID ("name" "idtest client" "os" "Linux")')
        self.assertTrue(self.coffer.wait_log(r'event=client_id .*id_name="idtest client"',
                                             since=since))


if __name__ == "__main__":
    main()
