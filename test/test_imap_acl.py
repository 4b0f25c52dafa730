"""test_imap_acl.py: RFC 4314 ACLs end to end: SETACL/DELETEACL/GETACL/LISTRIGHTS/MYRIGHTS, every
right granted and withheld (l r s w i p k x t e a, POP3 needing r on the INBOX, LMTP plus
addresses needing p), errors that say the same for an invisible mailbox as for a missing one,
shared folders made by an administrator with per-user \\Seen, namespaces, and administrators
creating and deleting other users' INBOXes; acl_local_users_only (a scale-out backend) refusing
grants to identifiers that are no user of the server, in SETACL and `coffer acl set`."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main, run_coffer  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: s%d\r\n"
       b"Message-ID: <acl%d@example.com>\r\n\r\nbody %d\r\n")


def msg(i):
    return MSG % (i, i, i)


USERS = {"fred": "fredpw", "joe": "joepw", "sue": "suepw", "boss": "bosspw"}


class Acl(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def no(self, c, text, code, tag="t"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" NO \[" + code.encode() + rb"\]",
                         (text, tagged))
        return tagged

    def make_box(self, user, name, n=2):
        c = self.conn(user)
        self.ok(c, 'CREATE "%s"' % name)
        for i in range(n):
            self.ok(c, 'APPEND "%s" {%d+}\r\n%s' % (name, len(msg(i)), msg(i).decode()))
        c.imap("z", "LOGOUT")
        return name

    def setacl(self, c, box, ident, rights):
        self.ok(c, 'SETACL "%s" %s "%s"' % (box, ident, rights))

    # ---- the commands

    def test_capability_and_owner(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        for cap in (b" ACL", b" RIGHTS=kxte", b" QUOTA", b" QUOTA=RES-STORAGE",
                    b" QUOTA=RES-MESSAGE"):
            self.assertIn(cap, caps)
        self.assertEqual(self.ok(c, "MYRIGHTS INBOX"), [b'* MYRIGHTS "INBOX" "lrswipkxtea"\r\n'])
        self.assertEqual(self.ok(c, "GETACL INBOX"), [b'* ACL "INBOX" "fred" "lrswipkxtea"\r\n'])
        self.assertEqual(self.ok(c, "LISTRIGHTS INBOX fred"),
                         [b'* LISTRIGHTS "INBOX" "fred" "la" r s w i p k x t e\r\n'])
        self.assertEqual(self.ok(c, "LISTRIGHTS INBOX joe"),
                         [b'* LISTRIGHTS "INBOX" "joe" "" l r s w i p k x t e a\r\n'])
        self.assertEqual(self.ok(c, "LISTRIGHTS INBOX boss"),
                         [b'* LISTRIGHTS "INBOX" "boss" "lrswipkxtea"\r\n'])
        # children inherit the parent's ACL at CREATE
        self.ok(c, "CREATE inherit")
        self.setacl(c, "inherit", "joe", "lr")
        self.ok(c, "CREATE inherit/kid")
        self.assertEqual(self.ok(c, "GETACL inherit/kid"),
                         [b'* ACL "inherit/kid" "fred" "lrswipkxtea" "joe" "lr"\r\n'])

    def test_admin_rename_to_another_user_hands_over_ownership(self):
        """An administrator moving user/fred/x to user/joe/y: joe gets what fred's entry gave
        (every right here), fred's entry goes, other entries stay, on children too."""
        self.make_box("fred", "handme")
        self.make_box("fred", "handme/kid", n=1)
        f = self.conn("fred")
        self.setacl(f, "handme", "sue", "lr")
        f.imap("z", "LOGOUT")
        b = self.conn("boss")
        self.ok(b, 'RENAME "Other Users/fred/handme" "Other Users/joe/got"')
        acl = b"".join(self.ok(b, 'GETACL "Other Users/joe/got"'))
        self.assertIn(b'"joe" "lrswipkxtea"', acl)
        self.assertIn(b'"sue" "lr"', acl)
        self.assertNotIn(b'"fred"', acl)
        kid = b"".join(self.ok(b, 'GETACL "Other Users/joe/got/kid"'))
        self.assertIn(b'"joe" "lrswipkxtea"', kid)
        self.assertNotIn(b'"fred"', kid)
        j = self.conn("joe")
        self.assertIn(b"* 2 EXISTS", b"".join(self.ok(j, 'SELECT "got"')))
        self.ok(j, 'STORE 1 +FLAGS (\\Deleted)')
        f = self.conn("fred")
        self.no(f, 'SELECT "Other Users/joe/got"', "NONEXISTENT")

    def test_setacl_forms(self):
        c = self.conn("fred")
        self.ok(c, "CREATE forms")
        self.setacl(c, "forms", "joe", "lr")
        self.setacl(c, "forms", "joe", "+wc")       # c is k x (RFC 4314 section 2.1.1)
        self.assertIn(b'"joe" "lrwkx"', self.ok(c, "GETACL forms")[0])
        self.setacl(c, "forms", "joe", "-rk")
        self.assertIn(b'"joe" "lwx"', self.ok(c, "GETACL forms")[0])
        self.setacl(c, "forms", "-sue", "r")
        self.setacl(c, "forms", "anyone", "d")
        self.assertEqual(self.ok(c, "GETACL forms"),
                         [b'* ACL "forms" "fred" "lrswipkxtea" "joe" "lwx" "-sue" "r" '
                          b'"anyone" "xte"\r\n'])
        self.assertEqual(c.imap("b", 'SETACL forms joe "lrQ"')[0][:6], b"b BAD ")
        self.assertEqual(c.imap("b", "SETACL forms joe")[0][:6], b"b BAD ")
        self.no(c, 'SETACL forms "a b" lr', "CANNOT")
        self.ok(c, "DELETEACL forms joe")
        self.ok(c, "DELETEACL forms nobody")       # nothing to delete is fine
        self.setacl(c, "forms", "anyone", "")      # empty rights remove the entry
        self.assertEqual(self.ok(c, "GETACL forms"),
                         [b'* ACL "forms" "fred" "lrswipkxtea" "-sue" "r"\r\n'])

    def test_invisible_is_nonexistent(self):
        self.make_box("fred", "secret", 1)
        j = self.conn("joe")
        for box in ("Other Users/fred/secret", "Other Users/fred/nosuch"):
            replies = []
            for cmd in ('SELECT "%s"', 'EXAMINE "%s"', 'STATUS "%s" (MESSAGES)', 'DELETE "%s"',
                        'RENAME "%s" "mine"', 'GETACL "%s"', 'MYRIGHTS "%s"',
                        'LISTRIGHTS "%s" joe', 'SETACL "%s" joe lr', 'DELETEACL "%s" joe',
                        'GETQUOTAROOT "%s"', 'APPEND "%s" {3+}\r\nabc'):
                replies.append(j.imap("x", cmd % box)[0])
            if box.endswith("secret"):
                first = replies
            else:
                self.assertEqual(replies, first)
        for r in first:
            self.assertRegex(r, rb"^x NO \[(NONEXISTENT|TRYCREATE)\]")
        self.assertEqual(self.ok(j, 'LIST "" "Other Users/fred/secret*"'), [])
        # with 'l' only it is seen and the answers become NOPERM
        f = self.conn("fred")
        self.setacl(f, "secret", "joe", "l")
        self.no(j, 'SELECT "Other Users/fred/secret"', "NOPERM")
        self.no(j, 'GETACL "Other Users/fred/secret"', "NOPERM")
        self.assertEqual(self.ok(j, 'MYRIGHTS "Other Users/fred/secret"'),
                         [b'* MYRIGHTS "Other Users/fred/secret" "l"\r\n'])

    # ---- every right, with and without

    def test_rights_l_r_a(self):
        self.make_box("fred", "lra", 1)
        f, j = self.conn("fred"), self.conn("joe")
        self.setacl(f, "lra", "joe", "r")
        self.assertNotIn(b"lra", b"".join(self.ok(j, 'LIST "" "*"')))
        self.setacl(f, "lra", "joe", "l")
        self.assertIn(b'"Other Users/fred/lra"', b"".join(self.ok(j, 'LIST "" "*"')))
        self.no(j, 'SELECT "Other Users/fred/lra"', "NOPERM")
        self.no(j, 'STATUS "Other Users/fred/lra" (MESSAGES)', "NOPERM")
        self.setacl(f, "lra", "joe", "lr")
        self.assertRegex(j.imap("s", 'SELECT "Other Users/fred/lra"')[0], rb"^s OK \[READ-ONLY\]")
        self.no(j, 'SETACL "Other Users/fred/lra" sue lr', "NOPERM")
        self.setacl(f, "lra", "joe", "lra")
        self.ok(j, 'SETACL "Other Users/fred/lra" sue lr')
        self.assertIn(b'"sue" "lr"', self.ok(j, 'GETACL "Other Users/fred/lra"')[0])
        # negative rights take away what "anyone" gives
        self.setacl(f, "lra", "anyone", "lr")
        self.setacl(f, "lra", "-sue", "r")
        s = self.conn("sue")
        self.no(s, 'SELECT "Other Users/fred/lra"', "NOPERM")

    def test_rights_s_w_t_e(self):
        self.make_box("fred", "swte", 2)
        f, j = self.conn("fred"), self.conn("joe")
        box = '"Other Users/fred/swte"'

        def flags_after(rights, store, msgno=1):
            self.setacl(f, "swte", "joe", rights)
            self.ok(j, "SELECT " + box)
            self.ok(j, "STORE %d %s" % (msgno, store))
            got = self.ok(j, "FETCH %d FLAGS" % msgno)
            self.ok(j, "UNSELECT")
            return b"".join(got)

        self.assertNotIn(b"\\Seen", flags_after("lrw", "+FLAGS (\\Seen)"))
        self.assertIn(b"\\Seen", flags_after("lrs", "+FLAGS (\\Seen)"))
        self.assertNotIn(b"\\Flagged", flags_after("lrs", "+FLAGS (\\Flagged)"))
        self.assertIn(b"\\Flagged", flags_after("lrw", "+FLAGS (\\Flagged)"))
        self.assertNotIn(b"\\Deleted", flags_after("lrw", "+FLAGS (\\Deleted)"))
        self.assertIn(b"\\Deleted", flags_after("lrt", "+FLAGS (\\Deleted)"))
        self.setacl(f, "swte", "joe", "lrt")
        self.ok(j, "SELECT " + box)
        self.no(j, "EXPUNGE", "NOPERM")
        self.setacl(f, "swte", "joe", "lrte")
        self.ok(j, "SELECT " + box)
        self.assertIn(b"* 1 EXPUNGE\r\n", self.ok(j, "EXPUNGE"))

    def test_rights_i_k_x(self):
        self.make_box("fred", "ikx", 1)
        f, j = self.conn("fred"), self.conn("joe")
        box = "Other Users/fred/ikx"
        self.setacl(f, "ikx", "joe", "lr")
        self.no(j, 'APPEND "%s" {3+}\r\nabc' % box, "NOPERM")
        self.ok(j, "SELECT INBOX")
        self.ok(j, 'APPEND INBOX {%d+}\r\n%s' % (len(msg(9)), msg(9).decode()))
        self.no(j, 'COPY 1 "%s"' % box, "NOPERM")
        self.no(j, 'MOVE 1 "%s"' % box, "NOPERM")
        self.no(j, 'CREATE "%s/sub"' % box, "NOPERM")
        self.setacl(f, "ikx", "joe", "lrik")
        self.ok(j, 'APPEND "%s" {%d+}\r\n%s' % (box, len(msg(8)), msg(8).decode()))
        self.assertRegex(j.imap("c", 'COPY 1 "%s"' % box)[0], rb"^c OK \[COPYUID")
        self.assertRegex(j.imap("m", 'MOVE 1 "%s"' % box)[1][0], rb"^\* OK \[COPYUID")
        self.ok(j, 'CREATE "%s/sub"' % box)
        self.no(j, 'DELETE "%s/sub"' % box, "NOPERM")
        self.no(j, 'RENAME "%s/sub" "%s/sub2"' % (box, box), "NOPERM")
        self.setacl(f, "ikx/sub", "joe", "lrkx")
        self.ok(j, 'RENAME "%s/sub" "%s/sub2"' % (box, box))
        self.ok(j, 'DELETE "%s/sub2"' % box)
        self.no(f, 'CREATE "Shared Folders/fredsown"', "NOPERM")
        self.no(f, 'CREATE "Other Users/joe/intruder"', "NOPERM")

    def test_right_p_lmtp(self):
        self.make_box("sue", "lists", 0)
        s = self.conn("sue")

        serial = [70]

        def deliver(rcpt):
            serial[0] += 1      # a new Message-ID each time: no duplicate suppression
            with self.coffer.lmtp() as l:
                l.sendmail("x@example.com", [rcpt], msg(serial[0]))

        def count(box):
            return int(re.search(rb"MESSAGES (\d+)",
                                 self.ok(s, 'STATUS "%s" (MESSAGES)' % box)[0]).group(1))
        before = count("INBOX")
        deliver("sue+lists@example.com")          # no p: the INBOX gets it
        self.assertEqual((count("lists"), count("INBOX")), (0, before + 1))
        self.setacl(s, "lists", "anyone", "p")
        deliver("sue+lists@example.com")
        self.assertEqual((count("lists"), count("INBOX")), (1, before + 1))
        self.setacl(s, "lists", "-anyone", "p")   # a negative entry wins
        deliver("sue+lists@example.com")
        self.assertEqual((count("lists"), count("INBOX")), (1, before + 2))

    def test_pop3_needs_r(self):
        s = self.conn("sue")
        self.setacl(s, "INBOX", "sue", "-r")
        p = self.coffer.pop3()
        try:
            p.user("sue")
            with self.assertRaises(Exception) as ctx:
                p.pass_("suepw")
            self.assertIn("SYS/PERM", str(ctx.exception))
        finally:
            p.close()
        # the owner keeps l and a, so they can give themselves r back
        self.assertEqual(self.ok(s, "MYRIGHTS INBOX"), [b'* MYRIGHTS "INBOX" "lswipkxtea"\r\n'])
        self.setacl(s, "INBOX", "sue", "+r")
        p = self.coffer.pop3()
        try:
            p.user("sue")
            self.assertTrue(p.pass_("suepw").startswith(b"+OK"))
            p.quit()
        finally:
            p.close()

    # ---- shared folders, namespaces, administrators

    def test_shared_folders_per_user_seen(self):
        b = self.conn("boss")
        self.ok(b, 'CREATE "Shared Folders/news"')
        self.ok(b, 'CREATE "Shared Folders/news/local"')
        for i in range(3):
            self.ok(b, 'APPEND "Shared Folders/news" {%d+}\r\n%s' % (len(msg(i)), msg(i).decode()))
        self.ok(b, 'SETACL "Shared Folders/news" anyone lrs')
        self.ok(b, 'SETACL "Shared Folders/news/local" fred lr')
        f, j = self.conn("fred"), self.conn("joe")
        self.assertEqual(self.ok(f, "NAMESPACE"), [
            b'* NAMESPACE (("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))\r\n'])
        lf = b"".join(self.ok(f, 'LIST "Shared Folders/" "*"'))
        lj = b"".join(self.ok(j, 'LIST "Shared Folders/" "*"'))
        self.assertIn(b'"Shared Folders/news"', lf)
        self.assertIn(b'"Shared Folders/news/local"', lf)
        self.assertIn(b'"Shared Folders/news"', lj)
        self.assertNotIn(b"local", lj)
        # \Seen is per user
        self.assertRegex(f.imap("s", 'SELECT "Shared Folders/news"')[0], rb"^s OK \[READ-WRITE\]")
        self.assertRegex(j.imap("s", 'SELECT "Shared Folders/news"')[0], rb"^s OK \[READ-WRITE\]")
        self.assertEqual(self.ok(f, "STORE 1 +FLAGS (\\Seen)"),
                         [b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n"])
        self.assertEqual(self.ok(j, "FETCH 1 FLAGS"), [b"* 1 FETCH (FLAGS ())\r\n"])
        self.assertEqual(self.ok(f, "SEARCH SEEN"), [b"* SEARCH 1\r\n"])
        self.assertEqual(self.ok(j, "SEARCH SEEN"), [b"* SEARCH\r\n"])
        # reading marks it for the reader only
        self.ok(j, "FETCH 2 BODY[]")
        self.assertEqual(self.ok(j, "SEARCH SEEN"), [b"* SEARCH 2\r\n"])
        self.assertEqual(self.ok(f, "SEARCH UNSEEN"), [b"* SEARCH 2 3\r\n"])
        self.assertEqual(self.ok(f, "STORE 1 -FLAGS.SILENT (\\Seen)"), [])
        self.assertEqual(self.ok(f, "SEARCH SEEN"), [b"* SEARCH\r\n"])
        self.assertEqual(self.ok(j, "SEARCH SEEN"), [b"* SEARCH 2\r\n"])
        # a second session of joe hears about joe's \Seen changes, fred's do not leak to joe
        j2 = self.conn("joe")
        self.ok(j2, 'SELECT "Shared Folders/news"')
        self.ok(j, "STORE 3 +FLAGS (\\Seen)")
        self.assertIn(b"* 3 FETCH (FLAGS (\\Seen))\r\n", self.ok(j2, "NOOP"))
        self.ok(f, "STORE 3 +FLAGS (\\Seen)")
        self.assertEqual(self.ok(j2, "NOOP"), [])
        # SELECT's first unseen follows the user's own set
        self.assertIn(b"* OK [UNSEEN 1]", b"".join(j2.imap("e", 'EXAMINE "Shared Folders/news"')[1]))
        self.ok(j, "STORE 1 FLAGS (\\Seen)")
        self.assertNotIn(b"UNSEEN", b"".join(j2.imap("e", 'EXAMINE "Shared Folders/news"')[1]))
        # STATUS UNSEEN counts each user's own set: joe has seen all three, fred only 3
        self.assertEqual(self.ok(j2, 'STATUS "Shared Folders/news" (UNSEEN MESSAGES)'),
                         [b'* STATUS "Shared Folders/news" (UNSEEN 0 MESSAGES 3)\r\n'])
        self.assertEqual(self.ok(f, 'STATUS "Shared Folders/news" (UNSEEN)'),
                         [b'* STATUS "Shared Folders/news" (UNSEEN 2)\r\n'])
        # without 's' a session cannot keep \Seen
        self.ok(b, 'SETACL "Shared Folders/news" -sue s')
        s = self.conn("sue")
        self.assertRegex(s.imap("s", 'SELECT "Shared Folders/news"')[0], rb"^s OK \[READ-ONLY\]")

    def test_admin_other_users(self):
        self.conn("fred")       # fred's and joe's INBOXes exist from their first login on
        j = self.conn("joe")
        b = self.conn("boss")
        # an administrator names another user's INBOX "Other Users/NAME" and may create it
        self.ok(b, 'CREATE "Other Users/newguy"')
        self.ok(b, 'CREATE "Other Users/newguy/Sent"')
        self.assertEqual(self.ok(b, 'GETACL "Other Users/newguy"'),
                         [b'* ACL "Other Users/newguy" "newguy" "lrswipkxtea"\r\n'])
        listing = b"".join(self.ok(b, 'LIST "Other Users/" "*"'))
        self.assertIn(b'"Other Users/newguy"', listing)
        self.assertIn(b'"Other Users/newguy/Sent"', listing)
        self.assertIn(b'"Other Users/fred"', listing)
        self.ok(b, 'SELECT "Other Users/fred"')
        self.ok(b, 'DELETE "Other Users/newguy/Sent"')
        self.ok(b, 'DELETE "Other Users/newguy"')
        self.no(b, 'SELECT "Other Users/newguy"', "NONEXISTENT")
        self.ok(b, 'SETACL "Other Users/joe" boss lr')
        self.ok(b, 'DELETEACL "Other Users/joe" boss')
        # a user is no administrator
        self.no(j, 'CREATE "Other Users/another"', "NOPERM")
        self.no(j, 'DELETE "Other Users/fred"', "NONEXISTENT")


class AclLocalUsersOnly(ImapUsersTestCase):
    """acl_local_users_only = yes, as run-cluster.sh sets it on backends: "bob" lives on another
    backend (a user of the router's password database, not of this one)."""
    users = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss", "acl_local_users_only": "yes"}}

    def test_setacl_refuses_users_elsewhere(self):
        c = self.conn("fred")
        self.ok(c, 'CREATE "shared-x"')
        tagged, _ = c.imap("t", 'SETACL "shared-x" bob lr')
        self.assertRegex(tagged, rb"^t NO \[CANNOT\] bob is not a user of this server")
        self.no(c, 'SETACL "shared-x" bob +lr', "CANNOT")
        # what grants nothing, and identifiers that are no user, are accepted
        for ident, rights in (("bob", "-lr"), ("bob", ""), ("-bob", "w"), ("joe", "lr"),
                              ("anyone", "l"), ("anonymous", "p"), ("boss", "lra")):
            self.ok(c, 'SETACL "shared-x" %s "%s"' % (ident, rights))
        acl = b"".join(self.ok(c, 'GETACL "shared-x"'))
        self.assertNotIn(b'"bob"', acl)
        self.assertIn(b'"joe" "lr"', acl)
        self.assertTrue(self.coffer.log_grep(r"event=acl_refused .*identifier=bob"))

    def test_coffer_acl_set_refuses_too(self):
        c = self.conn("joe")
        self.ok(c, 'CREATE "tool-x"')
        rc, out, err = run_coffer(self.coffer, "acl", "set", "user/joe/tool-x", "bob", "lr")
        self.assertNotEqual(rc, 0)
        self.assertIn("not a user of this server", err)
        rc, out, err = run_coffer(self.coffer, "acl", "set", "user/joe/tool-x", "fred", "lr")
        self.assertEqual(rc, 0, err)
        rc, out, err = run_coffer(self.coffer, "acl", "set", "user/joe/tool-x", "bob", "-lr")
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    main()
