"""test_hostile_imap.py: hostile tests of IMAP mailbox and rights semantics (security review
2026-12: H3, L3, L4, L5, L8, and the issue's RFC 2180 / RFC 3501 7.2.6 / NIL keyword /
UIDVALIDITY findings). Each test is named after its finding and fails on the code before the
fix. Takeover attempts run across every mailbox command, as a user with no rights, with
partial rights, and as an administrator."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"bob": "bobpw", "alice": "alicepw", "carol": "carolpw", "root": "rootpw",
         "lim": "limpw", "dave": "davepw", "erin": "erinpw"}


def msg(subject, n=0):
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: %s\r\n"
            b"Message-ID: <hostile%d.%s@example.com>\r\n\r\nbody of %s\r\n"
            % (subject.encode(), n, subject.encode(), subject.encode()))


class HostileImap(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "root", "max_mailboxes_per_user": "12",
                                         "max_subscriptions_per_user": "5"}}

    # ---- helpers ----

    def append(self, c, box, subject, n=0, flags=""):
        m = msg(subject, n)
        self.ok(c, 'APPEND "%s" %s{%d+}\r\n%s' % (box, "(%s) " % flags if flags else "", len(m),
                                                   m.decode()))

    def myrights(self, c, box):
        untagged = self.ok(c, 'MYRIGHTS "%s"' % box)
        m = re.search(rb'MYRIGHTS "?[^"]*"? "?([a-z]*)"?', b"".join(untagged))
        return m.group(1).decode() if m else None

    def getacl(self, c, box):
        return b"".join(self.ok(c, 'GETACL "%s"' % box))

    # ---- H3 ----

    def test_h3_rename_takeover(self):
        """The review's transcript: lrx on a parent must not hand over the subtree."""
        bob = self.conn("bob")
        self.ok(bob, "CREATE H3Projects/Secret")
        self.append(bob, "H3Projects/Secret", "s3cret")
        self.ok(bob, "SETACL H3Projects alice lrx")
        alice = self.conn("alice")
        self.no(alice, 'SELECT "Other Users/bob/H3Projects/Secret"', "NONEXISTENT")
        # out of bob's hierarchy: never, whatever the rights
        self.no(alice, 'RENAME "Other Users/bob/H3Projects" Loot', "NOPERM")
        self.no(alice, 'MYRIGHTS "Loot/Secret"', "NONEXISTENT")
        self.no(alice, 'MYRIGHTS "Loot"', "NONEXISTENT")
        # inside bob's hierarchy, 'x' on the parent is not 'x' on the child that moves with it
        self.ok(bob, "SETACL INBOX alice lk")
        self.addCleanup(lambda: self.ok(self.conn("bob"), "DELETEACL INBOX alice"))
        self.no(alice, 'RENAME "Other Users/bob/H3Projects" "Other Users/bob/H3Moved"', "NOPERM")
        untagged = self.ok(bob, 'LIST "" "H3*"')
        self.assertIn(b"H3Projects/Secret", b"".join(untagged))
        self.assertNotIn(b"H3Moved", b"".join(untagged))
        # with 'x' on both the move works; ACL entries move unchanged, nothing is granted
        self.ok(bob, "SETACL H3Projects/Secret alice lx")
        self.ok(alice, 'RENAME "Other Users/bob/H3Projects" "Other Users/bob/H3Moved"')
        self.assertEqual(self.myrights(alice, "Other Users/bob/H3Moved/Secret"), "lx")
        self.no(alice, 'SETACL "Other Users/bob/H3Moved/Secret" alice lrswipkxtea', "NOPERM")
        self.no(alice, 'SELECT "Other Users/bob/H3Moved/Secret"', "NOPERM")
        acl = self.getacl(bob, "H3Moved/Secret")
        self.assertIn(b'"bob" "lrswipkxtea"', acl)
        self.assertIn(b'"alice" "lx"', acl)
        # the message is still bob's and in place
        untagged = self.ok(bob, "STATUS H3Moved/Secret (MESSAGES)")
        self.assertIn(b"MESSAGES 1", b"".join(untagged))

    def test_h3_rename_other_inbox(self):
        """'x' on another user's INBOX does not move the account."""
        dave = self.conn("dave")
        self.ok(dave, "CREATE H3In")
        self.ok(dave, "SETACL INBOX alice lrxk")
        self.ok(dave, "SETACL H3In alice lrx")
        alice = self.conn("alice")
        self.no(alice, 'RENAME "Other Users/dave" Daves', "NOPERM")
        self.no(alice, 'RENAME "Other Users/dave" "Other Users/carol"', "NOPERM")
        self.no(alice, 'RENAME "Other Users/dave" "Other Users/dave/Old"', "CANNOT")
        self.no(alice, 'RENAME "Other Users/dave/H3In" "Mine"', "NOPERM")
        # her own INBOX does not go into dave's hierarchy either (the owner would change)
        self.no(alice, 'RENAME INBOX "Other Users/dave/FromAlice"', "NOPERM")
        untagged = self.ok(dave, 'LIST "" "*"')
        self.assertIn(b'"H3In"', b"".join(untagged))
        self.assertNotIn(b"FromAlice", b"".join(untagged))
        self.no(alice, 'MYRIGHTS "Daves"', "NONEXISTENT")
        self.no(alice, 'MYRIGHTS "Mine"', "NONEXISTENT")
        # nor does 'x' on it let her delete the account's INBOX
        self.no(alice, 'DELETE "Other Users/dave"', "NOPERM")
        self.ok(dave, "STATUS INBOX (MESSAGES)")

    def test_h3_takeover_every_command(self):
        """Another user's mailbox with no rights, with partial rights, and as admin."""
        erin = self.conn("erin")
        self.ok(erin, "CREATE H3All/Child")
        self.append(erin, "H3All", "all")
        self.append(erin, "H3All/Child", "child")
        alice = self.conn("alice")
        box, child = "Other Users/erin/H3All", "Other Users/erin/H3All/Child"
        # no rights at all: everything answers as if the mailbox did not exist
        for cmd in ('SELECT "%s"' % box, 'EXAMINE "%s"' % box,
                    'STATUS "%s" (MESSAGES)' % box, 'DELETE "%s"' % box,
                    'RENAME "%s" "%s/X"' % (box, "Other Users/erin"),
                    'RENAME "%s" Stolen' % box, 'GETACL "%s"' % box,
                    'SETACL "%s" alice lrswipkxtea' % box, 'DELETEACL "%s" bob' % box,
                    'MYRIGHTS "%s"' % box, 'LISTRIGHTS "%s" alice' % box):
            self.no(alice, cmd, "NONEXISTENT")
        m = msg("x")
        tagged, _ = alice.imap("t", 'APPEND "%s" {%d+}\r\n%s' % (box, len(m), m.decode()))
        self.assertRegex(tagged, rb"^t NO \[(TRYCREATE|NONEXISTENT)\]")
        self.no(alice, 'CREATE "%s/New"' % box, "NOPERM")
        self.no(alice, 'CREATE "Other Users/erin/New"', "NOPERM")
        self.no(alice, 'CREATE "Other Users/nosuchuser/New"', "NOPERM")
        self.no(alice, 'CREATE "Other Users/erin"', "NOPERM")
        untagged = b"".join(self.ok(alice, 'LIST "" "Other Users/erin/*"'))
        self.assertNotIn(b"H3All", untagged)
        # GETQUOTAROOT reveals nothing either
        tagged, untagged = alice.imap("t", 'GETQUOTAROOT "%s"' % box)
        self.assertNotIn(b"erin", b"".join(untagged))
        # SUBSCRIBE is allowed (a name) but LSUB shows it \Noselect
        self.ok(alice, 'SUBSCRIBE "%s"' % box)
        lsub = b"".join(self.ok(alice, 'LSUB "" "Other Users/erin/*"'))
        self.assertIn(b"\\Noselect", lsub)
        self.ok(alice, 'UNSUBSCRIBE "%s"' % box)
        # COPY/MOVE into it
        self.ok(alice, "SELECT INBOX")
        self.append(alice, "INBOX", "alices")
        self.no(alice, 'COPY 1 "%s"' % box, "TRYCREATE")
        self.no(alice, 'MOVE 1 "%s"' % box, "TRYCREATE")
        self.ok(alice, "UNSELECT")

        # partial rights: lr on the parent, nothing on the child
        self.ok(erin, "SETACL H3All alice lr")
        self.ok(alice, 'EXAMINE "%s"' % box)
        self.ok(alice, "UNSELECT")
        self.no(alice, 'DELETE "%s"' % box, "NOPERM")
        self.no(alice, 'RENAME "%s" "Other Users/erin/H3Other"' % box, "NOPERM")
        self.no(alice, 'SETACL "%s" alice lrswipkxtea' % box, "NOPERM")
        self.no(alice, 'CREATE "%s/New"' % box, "NOPERM")
        self.no(alice, 'STATUS "%s" (MESSAGES)' % child, "NONEXISTENT")
        self.ok(alice, 'SELECT "%s"' % box)
        self.no(alice, 'COPY 1 "%s"' % child, "TRYCREATE")
        self.ok(alice, "UNSELECT")
        # x on the parent: DELETE of the parent leaves the invisible child where it is
        self.ok(erin, "SETACL H3All alice lrx")
        self.ok(alice, 'DELETE "%s"' % box)
        self.no(alice, 'STATUS "%s" (MESSAGES)' % child, "NONEXISTENT")
        untagged = b"".join(self.ok(erin, "STATUS H3All/Child (MESSAGES)"))
        self.assertIn(b"MESSAGES 1", untagged)

        # the administrator may rename across owners: the old owner's entry becomes the new
        # owner's (store.c owner_handover), other entries stay
        root = self.conn("root")
        self.ok(root, 'RENAME "Other Users/erin/H3All/Child" "Other Users/carol/FromErin"')
        acl = self.getacl(root, "Other Users/carol/FromErin")
        self.assertIn(b'"carol" "lrswipkxtea"', acl)
        self.assertNotIn(b'"erin"', acl)
        self.ok(root, 'RENAME "Other Users/carol/FromErin" "Other Users/erin/H3Back"')
        untagged = b"".join(self.ok(erin, "STATUS H3Back (MESSAGES)"))
        self.assertIn(b"MESSAGES 1", untagged)
        self.ok(root, 'CREATE "Other Users/carol/AdminMade"')
        self.ok(root, 'DELETE "Other Users/carol/AdminMade"')

    # ---- L5 ----

    def test_l5_no_alreadyexists_leak(self):
        bob = self.conn("bob")
        self.ok(bob, "CREATE L5Shared")
        self.ok(bob, "CREATE L5Shared/Hidden")
        self.ok(bob, "SETACL L5Shared alice lrk")
        self.ok(bob, "DELETEACL L5Shared/Hidden alice")
        alice = self.conn("alice")
        # an invisible mailbox answers as a missing right would
        self.no(alice, 'CREATE "Other Users/bob/L5Shared/Hidden"', "NOPERM")
        self.no(alice, 'CREATE "Other Users/bob/L5Shared/Hidden/"', "NOPERM")
        # RENAME onto an invisible name
        self.ok(bob, "CREATE L5Shared/Mine")
        self.ok(bob, "SETACL L5Shared/Mine alice lrx")
        # a visible one still says ALREADYEXISTS
        self.no(alice, 'CREATE "Other Users/bob/L5Shared/Mine"', "ALREADYEXISTS")
        self.no(alice, 'RENAME "Other Users/bob/L5Shared/Mine" "Other Users/bob/L5Shared/Hidden"',
                "NOPERM")
        self.ok(bob, "SETACL L5Shared/Hidden alice l")
        self.no(alice, 'RENAME "Other Users/bob/L5Shared/Mine" "Other Users/bob/L5Shared/Hidden"',
                "ALREADYEXISTS")
        # a new name with k is still fine
        self.ok(alice, 'CREATE "Other Users/bob/L5Shared/New"')

    # ---- L8 ----

    def test_l8_mailbox_and_subscription_limits(self):
        lim = self.conn("lim")
        made = 0
        # max_mailboxes_per_user = 12, INBOX included
        for i in range(20):
            tagged, _ = lim.imap("t", "CREATE L8Box%d" % i)
            if not tagged.startswith(b"t OK"):
                self.assertRegex(tagged, rb"^t NO \[LIMIT\]")
                break
            made += 1
        self.assertEqual(made, 11)
        # parents count too
        self.no(lim, "CREATE Deep/Er/Est", "LIMIT")
        self.ok(lim, "DELETE L8Box0")
        self.ok(lim, "CREATE L8Again")
        # renames inside the hierarchy keep the count
        self.ok(lim, "RENAME L8Again L8Renamed")
        # subscriptions: max 5
        for i in range(5):
            self.ok(lim, "SUBSCRIBE S%d" % i)
        self.ok(lim, "SUBSCRIBE S0")    # already there: not a new one
        self.no(lim, "SUBSCRIBE S5", "LIMIT")
        self.ok(lim, "UNSUBSCRIBE S0")
        self.ok(lim, "SUBSCRIBE S5")
        # the administrator is not limited
        root = self.conn("root")
        self.ok(root, 'CREATE "Other Users/lim/ByAdmin"')

    # ---- L4 ----

    def test_l4_copy_keeps_only_permitted_flags(self):
        carol = self.conn("carol")
        self.ok(carol, "CREATE L4Drop")
        self.ok(carol, "SETACL L4Drop alice li")
        self.ok(carol, "CREATE L4Seen")
        self.ok(carol, "SETACL L4Seen alice lis")
        alice = self.conn("alice")
        self.ok(alice, "CREATE L4Src")
        self.append(alice, "L4Src", "flags1", flags="\\Seen \\Deleted \\Flagged $Junk")
        self.append(alice, "L4Src", "flags2", flags="\\Seen \\Deleted \\Flagged $Junk")
        self.ok(alice, "SELECT L4Src")
        self.ok(alice, 'COPY 1 "Other Users/carol/L4Drop"')
        self.ok(alice, 'COPY 1 "Other Users/carol/L4Seen"')
        self.ok(alice, 'MOVE 2 "Other Users/carol/L4Drop"')
        self.ok(carol, "EXAMINE L4Drop")
        fl = b"".join(self.ok(carol, "FETCH 1:* FLAGS"))
        for f in (b"\\Seen", b"\\Deleted", b"\\Flagged", b"$Junk"):
            self.assertNotIn(f, fl)
        self.assertEqual(fl.count(b"FETCH"), 2)
        self.ok(carol, "EXAMINE L4Seen")
        fl = b"".join(self.ok(carol, "FETCH 1 FLAGS"))
        self.assertIn(b"\\Seen", fl)
        for f in (b"\\Deleted", b"\\Flagged", b"$Junk"):
            self.assertNotIn(f, fl)
        # into one's own mailbox every flag is kept
        self.ok(alice, "CREATE L4Own")
        self.ok(alice, "COPY 1 L4Own")
        self.ok(alice, "EXAMINE L4Own")
        fl = b"".join(self.ok(alice, "FETCH 1 FLAGS"))
        for f in (b"\\Seen", b"\\Deleted", b"\\Flagged", b"$Junk"):
            self.assertIn(f, fl)

    # ---- L3 ----

    def test_l3_revoked_rights_reach_open_sessions(self):
        carol = self.conn("carol")
        self.ok(carol, "CREATE L3Box")
        self.append(carol, "L3Box", "one")
        self.append(carol, "L3Box", "two")
        self.ok(carol, "SETACL L3Box alice lrswt")
        alice = self.conn("alice")
        self.ok(alice, 'SELECT "Other Users/carol/L3Box"')
        self.ok(alice, "STORE 1 +FLAGS (\\Flagged)")
        # 'w' taken away: the next STORE no longer changes other flags
        self.ok(carol, "SETACL L3Box alice lrst")
        self.ok(alice, "STORE 2 +FLAGS (\\Flagged)")
        fl = b"".join(self.ok(alice, "FETCH 2 FLAGS"))
        self.assertNotIn(b"\\Flagged", fl)
        # 'r' taken away from an idling session: it is told and disconnected
        alice.send(b"i IDLE\r\n")
        alice.expect(rb"^\+ ")
        self.ok(carol, "SETACL L3Box alice l")
        line = alice.expect(rb"^\* BYE \[NOPERM\]", timeout=15)
        self.assertTrue(alice.wait_eof(timeout=10))
        # a session that is not idling is stopped at its next command
        self.ok(carol, "SETACL L3Box alice lr")
        a2 = self.conn("alice")
        self.ok(a2, 'EXAMINE "Other Users/carol/L3Box"')
        self.ok(carol, "DELETEACL L3Box alice")
        a2.send(b"f FETCH 1 BODY[]\r\n")
        line = a2.readline()
        self.assertRegex(line, rb"^\* BYE \[NOPERM\]")
        self.assertTrue(a2.wait_eof(timeout=10))

    # ---- the extra findings ----

    def imaplib_login(self, user):
        m = self.coffer.imap()
        self.addCleanup(self._logout, m)
        m.login(user, USERS[user])
        return m

    @staticmethod
    def _logout(m):
        try:
            m.logout()
        except Exception:
            pass

    def test_rfc2180_expunged_fetch_store_ok(self):
        """FETCH and STORE of messages another session expunged: OK, not NO."""
        a = self.imaplib_login("dave")
        a.create("X2180")
        for i in range(4):
            a.append("X2180", None, None, msg("e%d" % i, i))
        b = self.imaplib_login("dave")
        self.assertEqual(a.select("X2180")[0], "OK")
        self.assertEqual(b.select("X2180")[0], "OK")
        a.store("2,4", "+FLAGS.SILENT", "(\\Deleted)")
        a.expunge()
        typ, data = b.fetch("1:4", "(UID)")
        self.assertEqual(typ, "OK", data)
        uids = [d for d in data if d]
        self.assertEqual(len(uids), 2, data)
        typ, data = b.store("1:4", "+FLAGS", "(\\Deleted)")
        self.assertEqual(typ, "OK", data)
        typ, data = b.store("2", "+FLAGS", "(\\Seen)")
        self.assertEqual(typ, "OK", data)
        typ, data = b.uid("FETCH", "1:*", "(FLAGS)")
        self.assertEqual(typ, "OK", data)
        # NOOP then delivers the expunges
        b.noop()

    def test_rfc3501_7_2_6_flags_before_new_keyword(self):
        """A keyword made by another session is announced by FLAGS before any FETCH names it."""
        a = self.conn("erin")
        self.ok(a, "CREATE Kw726")
        self.append(a, "Kw726", "k1")
        self.append(a, "Kw726", "k2")
        b = self.conn("erin")
        self.ok(a, "SELECT Kw726")
        self.ok(b, "SELECT Kw726")
        self.ok(a, "STORE 1 +FLAGS ($Brandnew)")
        for cmd in ("STORE 1 +FLAGS (\\Flagged)", "FETCH 1 BODY[]"):
            untagged = self.ok(b, cmd)
            flags_at = [i for i, u in enumerate(untagged) if u.startswith(b"* FLAGS")]
            named_at = [i for i, u in enumerate(untagged)
                        if b"FETCH" in u and b"$Brandnew" in u]
            if named_at:
                self.assertTrue(flags_at and flags_at[0] < named_at[0], untagged)
                self.assertIn(b"$Brandnew", untagged[flags_at[0]])
                perm = [u for u in untagged if b"PERMANENTFLAGS" in u]
                self.assertTrue(perm and b"$Brandnew" in perm[0], untagged)
            self.ok(a, "STORE 1 +FLAGS ($Another%d)" % len(cmd))
        # and the session's own new keyword is announced before its STORE reply too
        untagged = self.ok(b, "STORE 2 +FLAGS ($MineNew)")
        flags_at = [i for i, u in enumerate(untagged) if u.startswith(b"* FLAGS")]
        named_at = [i for i, u in enumerate(untagged) if b"FETCH" in u and b"$MineNew" in u]
        self.assertTrue(named_at and flags_at and flags_at[0] < named_at[0], untagged)

    def test_nil_is_a_keyword(self):
        c = self.conn("erin")
        self.ok(c, "CREATE NilKw")
        m = msg("nil")
        self.ok(c, 'APPEND NilKw (NIL \\Seen) {%d+}\r\n%s' % (len(m), m.decode()))
        self.ok(c, "SELECT NilKw")
        fl = b"".join(self.ok(c, "FETCH 1 FLAGS"))
        self.assertRegex(fl, rb"FLAGS \([^)]*\bNIL\b")
        self.ok(c, "STORE 1 -FLAGS NIL")
        self.assertNotRegex(b"".join(self.ok(c, "FETCH 1 FLAGS")), rb"\bNIL\b")
        self.ok(c, "STORE 1 +FLAGS NIL")
        self.assertRegex(b"".join(self.ok(c, "FETCH 1 FLAGS")), rb"\bNIL\b")
        self.ok(c, "STORE 1 +FLAGS (NIL)")
        res = b"".join(self.ok(c, "SEARCH KEYWORD NIL"))
        self.assertIn(b"SEARCH 1", res)

    def test_uidvalidity_rises_per_name(self):
        """DELETE and CREATE of one name within a second: UIDVALIDITY still rises."""
        c = self.conn("erin")
        seen = []
        for i in range(4):
            self.ok(c, "CREATE UidvBox")
            st = b"".join(self.ok(c, "STATUS UidvBox (UIDVALIDITY)"))
            seen.append(int(re.search(rb"UIDVALIDITY (\d+)", st).group(1)))
            self.ok(c, "DELETE UidvBox")
        self.assertEqual(seen, sorted(set(seen)), seen)
        # another name made now is above them all too (one counter for the whole list)
        self.ok(c, "CREATE UidvOther")
        st = b"".join(self.ok(c, "STATUS UidvOther (UIDVALIDITY)"))
        self.assertGreater(int(re.search(rb"UIDVALIDITY (\d+)", st).group(1)), seen[-1])


if __name__ == "__main__":
    main()
