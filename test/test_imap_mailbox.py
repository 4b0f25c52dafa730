"""test_imap_mailbox.py: the authenticated-state mailbox commands of IMAP (RFC 3501 sections
6.3.3-6.3.10): CREATE (with parents and RFC 6154 USE), DELETE, RENAME (children, INBOX),
SUBSCRIBE/UNSUBSCRIBE/LSUB, LIST (wildcards, references, CHILDREN, special-use, \\Noselect
parents, LIST-STATUS), STATUS, NAMESPACE, modified UTF-7 names, response codes, mailboxes of
other users hidden by the ACL check, autocreated special-use folders, and curl's imap:// LIST."""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import HOST, SharedCofferTestCase, main  # noqa: E402

LIST_RX = re.compile(rb'^\* (LIST|LSUB) \(([^)]*)\) "/" "((?:[^"\\]|\\.)*)"\r\n$')
MSG = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n"


def parse_list(untagged):
    """{name: set(attributes)} from LIST/LSUB lines; fails on a line it cannot parse."""
    out = {}
    for line in untagged:
        if line.startswith(b"* STATUS"):
            continue
        m = LIST_RX.match(line)
        assert m, "unparsable: %r" % line
        name = re.sub(r'\\(.)', r'\1', m.group(3).decode())
        out[name] = set(m.group(2).decode().split())
    return out


def parse_status(line):
    m = re.match(rb'^\* STATUS (?:"(?:[^"\\]|\\.)*"|\S+) \(([^)]*)\)\r\n$', line)
    assert m, line
    items = m.group(1).decode().split()
    return {items[i]: int(items[i + 1]) for i in range(0, len(items), 2)}


class Mailboxes(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin",
                                         "autocreate_special_use": "Sent Drafts Trash Junk"}}
    users = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for u in ("fred", "joe", "admin"):
            cls.coffer.add_user(u, u + "pw")

    def login(self, user):
        """A raw connection logged in as user (made on first use, password USERpw)."""
        if user not in ("fred", "joe", "admin") and user not in type(self).users:
            self.coffer.add_user(user, user + "pw")
            type(self).users[user] = True
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        tagged, _ = c.imap("L", "LOGIN %s %spw" % (user, user))
        self.assertRegex(tagged, rb"^L OK")
        return c

    def ok(self, c, cmd, tag="T"):
        tagged, untagged = c.imap(tag, cmd)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" OK", cmd)
        return untagged

    def no(self, c, cmd, code, tag="T"):
        tagged, untagged = c.imap(tag, cmd)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" NO \[" + code.encode() + rb"\]", cmd)
        return tagged

    def append(self, c, mailbox, flags="", data=MSG):
        c.cmd('A APPEND "%s" %s{%d+}' % (mailbox, "(%s) " % flags if flags else "", len(data)))
        c.send(data + b"\r\n")
        tagged, _ = c.read_tagged("A")
        self.assertRegex(tagged, rb"^A OK")

    def test_namespace(self):
        c = self.login("fred")
        self.assertEqual(self.ok(c, "NAMESPACE"),
                         [b'* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))\r\n'])

    def test_create_list_delete(self):
        c = self.login("cld")
        self.ok(c, "CREATE a/b/c")
        got = parse_list(self.ok(c, 'LIST "" *'))
        self.assertEqual(got["a"], {"\\HasChildren"})
        self.assertEqual(got["a/b"], {"\\HasChildren"})
        self.assertEqual(got["a/b/c"], {"\\HasNoChildren"})
        self.assertEqual(got["INBOX"], {"\\HasNoChildren"})
        self.no(c, "CREATE a/b", "ALREADYEXISTS")
        self.no(c, "CREATE INBOX", "ALREADYEXISTS")
        self.no(c, "CREATE inbox", "ALREADYEXISTS")
        self.ok(c, 'CREATE "trail/"')              # trailing separator allowed
        self.assertIn("trail", parse_list(self.ok(c, 'LIST "" trail')))
        self.no(c, 'CREATE "bad//name"', "CANNOT")
        self.no(c, 'CREATE "bad/%"', "CANNOT")
        self.assertRegex(c.imap("T", "CREATE")[0], rb"^T BAD")
        # DELETE keeps the children; the name stays as a \Noselect level
        self.ok(c, "DELETE a")
        # "*" lists mailboxes; "%" also shows the levels that hold them (RFC 3501 section 6.3.8)
        got = parse_list(self.ok(c, 'LIST "" *'))
        self.assertNotIn("a", got)
        self.assertIn("a/b/c", got)
        got = parse_list(self.ok(c, 'LIST "" %'))
        self.assertEqual(got["a"], {"\\Noselect", "\\HasChildren"})
        self.no(c, "DELETE a", "NONEXISTENT")
        self.no(c, "STATUS a (MESSAGES)", "NONEXISTENT")
        self.assertRegex(c.imap("T", "DELETE INBOX")[0], rb"^T NO ")
        self.ok(c, "DELETE a/b/c")
        self.ok(c, "DELETE a/b")
        got = parse_list(self.ok(c, 'LIST "" *'))
        self.assertFalse([n for n in got if n.startswith("a")], got)

    def test_list_patterns_and_reference(self):
        c = self.login("pat")
        for name in ("Work/Proj1", "Work/Proj2/Deep", "Private"):
            self.ok(c, "CREATE " + name)
        top = parse_list(self.ok(c, 'LIST "" %'))
        self.assertEqual(set(top), {"INBOX", "Work", "Private", "Sent", "Drafts", "Trash", "Junk"})
        self.assertEqual(set(parse_list(self.ok(c, 'LIST "" Work/%'))), {"Work/Proj1", "Work/Proj2"})
        self.assertEqual(set(parse_list(self.ok(c, 'LIST Work/ %'))), {"Work/Proj1", "Work/Proj2"})
        self.assertEqual(set(parse_list(self.ok(c, 'LIST "" Work/*'))),
                         {"Work/Proj1", "Work/Proj2", "Work/Proj2/Deep"})
        self.assertEqual(set(parse_list(self.ok(c, 'LIST "" *Deep'))), {"Work/Proj2/Deep"})
        self.assertEqual(set(parse_list(self.ok(c, 'LIST "" inbox'))), {"INBOX"})
        self.assertEqual(set(parse_list(self.ok(c, 'LIST "" nothing*'))), set())
        # the empty pattern asks for the separator (RFC 3501 section 6.3.8)
        self.assertEqual(self.ok(c, 'LIST "" ""'), [b'* LIST (\\Noselect) "/" ""\r\n'])
        self.assertEqual(self.ok(c, 'LIST "Other Users/joe" ""'),
                         [b'* LIST (\\Noselect) "/" "Other Users/"\r\n'])
        # LIST works as a literal pattern too, and with the LIST-EXTENDED empty selection
        c.cmd('T LIST "" {5}')
        c.expect(rb"^\+ ")
        c.send(b"Work*\r\n")
        tagged, untagged = c.read_tagged("T")
        self.assertEqual(len(parse_list(untagged)), 4)
        self.assertEqual(set(parse_list(self.ok(c, 'LIST () "" Private'))), {"Private"})
        self.assertRegex(c.imap("T", 'LIST (BOGUS) "" *')[0], rb"^T BAD")
        self.assertRegex(c.imap("T", 'LIST ""')[0], rb"^T BAD")

    def test_utf7_names(self):
        c = self.login("utf")
        self.ok(c, 'CREATE "Entw&APw-rfe"')
        self.ok(c, 'CREATE "Entw&APw-rfe/&ZeVnLIqe-"')
        got = parse_list(self.ok(c, 'LIST "" Entw*'))
        self.assertEqual(set(got), {"Entw&APw-rfe", "Entw&APw-rfe/&ZeVnLIqe-"})
        self.assertEqual(got["Entw&APw-rfe"], {"\\HasChildren"})
        self.ok(c, 'STATUS "Entw&APw-rfe" (MESSAGES)')
        self.no(c, 'CREATE "Entw&APw"', "CANNOT")       # unterminated shift
        self.no(c, 'CREATE "&AGE-"', "CANNOT")          # ASCII must not be encoded
        r = subprocess.run([os.path.join(self.coffer.bindir, "coffer"), "-C", self.coffer.conf_path,
                            "mailbox", "list"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        self.assertIn("user/utf/Entwürfe", r.stdout.decode("utf-8", "replace"))

    def test_special_use(self):
        c = self.login("spec")
        got = parse_list(self.ok(c, 'LIST "" %'))
        self.assertEqual(got["Sent"], {"\\HasNoChildren", "\\Sent"})
        self.assertEqual(got["Drafts"], {"\\HasNoChildren", "\\Drafts"})
        self.assertEqual(got["Trash"], {"\\HasNoChildren", "\\Trash"})
        self.assertEqual(got["Junk"], {"\\HasNoChildren", "\\Junk"})
        self.ok(c, "CREATE Old (USE (\\Archive))")
        self.ok(c, "CREATE Everything (USE (\\All \\Flagged))")
        got = parse_list(self.ok(c, 'LIST "" * RETURN (SPECIAL-USE)'))
        self.assertEqual(got["Old"], {"\\HasNoChildren", "\\Archive"})
        self.assertEqual(got["Everything"], {"\\HasNoChildren", "\\All", "\\Flagged"})
        self.no(c, "CREATE Odd (USE (\\Bogus))", "USEATTR")
        self.assertRegex(c.imap("T", "CREATE Odd (FOO (\\Sent))")[0], rb"^T BAD")
        self.assertNotIn("Odd", parse_list(self.ok(c, 'LIST "" *')))
        # a second login does not create them again (they exist) and keeps working
        self.login("spec")

    def test_rename(self):
        c = self.login("ren")
        self.ok(c, "CREATE src/kid/grandkid")
        self.ok(c, "CREATE other")
        self.ok(c, "RENAME src dst")
        got = parse_list(self.ok(c, 'LIST "" *'))
        self.assertIn("dst/kid/grandkid", got)
        self.assertFalse([n for n in got if n.startswith("src")], got)
        self.no(c, "RENAME dst other", "ALREADYEXISTS")
        self.no(c, "RENAME nosuch x", "NONEXISTENT")
        self.no(c, "RENAME dst dst/kid/new", "CANNOT")
        self.ok(c, 'RENAME dst "new/place/"')
        self.assertIn("new/place/kid", parse_list(self.ok(c, 'LIST "" *')))

    def test_rename_inbox(self):
        c = self.login("reninbox")
        self.ok(c, "CREATE child")
        self.append(c, "INBOX")
        self.append(c, "INBOX", "\\Seen")
        self.ok(c, "RENAME INBOX Saved")
        st = parse_status(self.ok(c, "STATUS Saved (MESSAGES UNSEEN)")[0])
        self.assertEqual(st, {"MESSAGES": 2, "UNSEEN": 1})
        st = parse_status(self.ok(c, "STATUS INBOX (MESSAGES UIDNEXT)")[0])
        self.assertEqual(st, {"MESSAGES": 0, "UIDNEXT": 3})
        self.assertIn("child", parse_list(self.ok(c, 'LIST "" *')))
        self.no(c, "RENAME INBOX Saved", "ALREADYEXISTS")

    def test_subscribe_lsub(self):
        c = self.login("subs")
        self.ok(c, "CREATE top/mid/leaf")
        self.ok(c, "SUBSCRIBE top/mid/leaf")
        self.ok(c, "SUBSCRIBE INBOX")
        self.ok(c, "SUBSCRIBE gone")                 # need not exist (RFC 3501 section 6.3.6)
        got = parse_list(self.ok(c, 'LSUB "" *'))
        self.assertEqual(set(got), {"top/mid/leaf", "INBOX", "gone"})
        self.assertEqual(got["gone"], {"\\Noselect"})
        self.assertEqual(got["INBOX"], set())
        # "%" stops at "top": shown as \Noselect since "top" itself is not subscribed
        got = parse_list(self.ok(c, 'LSUB "" %'))
        self.assertEqual(got["top"], {"\\Noselect"})
        self.assertNotIn("top/mid/leaf", got)
        self.ok(c, "UNSUBSCRIBE top/mid/leaf")
        self.ok(c, "UNSUBSCRIBE gone")
        self.assertEqual(set(parse_list(self.ok(c, 'LSUB "" *'))), {"INBOX"})
        for line in self.ok(c, 'LSUB "" *'):
            self.assertTrue(line.startswith(b"* LSUB "), line)

    def test_status(self):
        c = self.login("stat")
        st = parse_status(self.ok(c, "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")[0])
        self.assertEqual((st["MESSAGES"], st["RECENT"], st["UIDNEXT"], st["UNSEEN"]), (0, 0, 1, 0))
        self.assertGreater(st["UIDVALIDITY"], 0)
        self.append(c, "INBOX")
        self.append(c, "INBOX", "\\Seen \\Flagged")
        self.append(c, "INBOX", "\\Deleted")
        tagged, untagged = c.imap("T", "STATUS inbox (UNSEEN MESSAGES RECENT UIDNEXT)")
        self.assertRegex(untagged[0], rb'^\* STATUS "?inbox"? \(UNSEEN 2 MESSAGES 3 RECENT 3 UIDNEXT 4\)')
        self.no(c, "STATUS nosuch (MESSAGES)", "NONEXISTENT")
        self.assertRegex(c.imap("T", "STATUS INBOX (BOGUS)")[0], rb"^T BAD")
        self.assertRegex(c.imap("T", "STATUS INBOX ()")[0], rb"^T BAD")
        self.assertRegex(c.imap("T", "STATUS INBOX")[0], rb"^T BAD")

    def test_list_status(self):
        c = self.login("lstat")
        self.ok(c, "CREATE box")
        self.append(c, "box")
        untagged = self.ok(c, 'LIST "" % RETURN (STATUS (MESSAGES UIDNEXT))')
        got = parse_list(untagged)
        self.assertIn("box", got)
        for i, line in enumerate(untagged):
            if line.startswith(b'* LIST ') and line.endswith(b'"box"\r\n'):
                self.assertEqual(untagged[i + 1], b'* STATUS "box" (MESSAGES 1 UIDNEXT 2)\r\n')
                break
        statuses = [l for l in untagged if l.startswith(b"* STATUS")]
        self.assertEqual(len(statuses), len(got))

    def test_other_users_hidden(self):
        f = self.login("hidef")
        self.ok(f, "CREATE Secret/Inner")
        j = self.login("hidej")
        self.assertEqual(parse_list(self.ok(j, 'LIST "" "Other Users/*"')), {})
        self.assertEqual(parse_list(self.ok(j, 'LIST "" *')).keys() & {"Secret"}, set())
        self.no(j, 'STATUS "Other Users/hidef/Secret" (MESSAGES)', "NONEXISTENT")
        self.no(j, 'STATUS "Other Users/hidef" (MESSAGES)', "NONEXISTENT")
        self.no(j, 'DELETE "Other Users/hidef/Secret"', "NONEXISTENT")
        self.no(j, 'RENAME "Other Users/hidef/Secret" Mine', "NONEXISTENT")
        self.no(j, 'CREATE "Other Users/hidef/Planted"', "NOPERM")
        self.no(j, 'CREATE "Shared Folders/pub"', "NOPERM")
        tagged = j.imap("T", 'APPEND "Other Users/hidef/Secret" {3+}\r\nabc')[0]
        self.assertRegex(tagged, rb"^T NO \[TRYCREATE\]")
        self.no(j, 'CREATE "Other Users"', "NONEXISTENT")
        # an administrator sees and manages everything
        a = self.login("admin")
        got = parse_list(self.ok(a, 'LIST "Other Users/" "hidef/*"'))
        self.assertIn("Other Users/hidef/Secret/Inner", got)
        got = parse_list(self.ok(a, 'LIST "" "Other Users/%"'))
        self.assertIn("Other Users/hidef", got)
        self.ok(a, 'STATUS "Other Users/hidef/Secret" (MESSAGES)')
        self.ok(a, 'CREATE "Shared Folders/pub"')
        self.assertIn("Shared Folders/pub", parse_list(self.ok(a, 'LIST "" "Shared Folders/*"')))
        self.assertEqual(parse_list(self.ok(j, 'LIST "" "Shared Folders/*"')), {})
        self.ok(a, 'DELETE "Other Users/hidef/Secret/Inner"')
        self.assertEqual(set(parse_list(self.ok(f, 'LIST "" Secret*'))), {"Secret"})

    def test_not_authenticated(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        for cmd in ("CREATE x", "DELETE x", "RENAME x y", "SUBSCRIBE x", "UNSUBSCRIBE x",
                    'LIST "" *', 'LSUB "" *', "STATUS x (MESSAGES)", "NAMESPACE",
                    "APPEND x {1+}\r\nx"):
            self.assertRegex(c.imap("T", cmd)[0], rb"^T BAD", cmd)

    def test_curl_list(self):
        self.login("curly")
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", "curly:curlypw",
                            "imap://%s:%d/" % (HOST, self.coffer.ports["imap"]),
                            "-X", 'LIST "" *'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.decode()
        self.assertIn('* LIST (\\HasNoChildren) "/" "INBOX"', out)
        self.assertIn('"Sent"', out)


if __name__ == "__main__":
    main()
