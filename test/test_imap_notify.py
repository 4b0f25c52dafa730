"""test_imap_notify.py: NOTIFY (RFC 5465) end to end with two sessions: STATUS for non-selected
mailboxes on delivery (LMTP and APPEND), flag changes (any flag or keyword, HIGHESTMODSEQ with
CONDSTORE) and expunges; LIST for MailboxName
(CREATE, RENAME with OLDNAME, DELETE with \\NonExistent) and SubscriptionChange; NOTIFY NONE
stops them; delivery during IDLE and between commands; SELECTED with fetch attributes and
SELECTED-DELAYED (no EXPUNGE between commands); rights (a mailbox shared without 'r' gets
\\NoAccess and no STATUS, a revoked right stops them); BAD for syntax and composition errors,
NO [BADEVENT] for unsupported events, NO [NOTIFICATIONOVERFLOW] past notify_max_mailboxes."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: fred@coffer.test\r\nSubject: notify %d\r\n"
       b"Message-ID: <notify%d@example.com>\r\n\r\nbody\r\n")
QUIET = 0.6     # how long "nothing comes" is waited for (the scan runs every 2 s: see below)
SCAN = 4.0      # NOTIFY_SCAN_MS is 2 s: list/subscription/rights changes within two rounds

ALL_MSG = "(MessageNew MessageExpunge FlagChange)"


class Notify(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "notify_max_mailboxes": "6", "admins": "boss"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for u in ("fred", "joe", "ann", "sue", "boss", "kim"):
            cls.coffer.add_user(u, "secret")

    def conn(self, user="fred", select=None):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN %s secret" % user)[0], rb"^l OK")
        if select:
            self.assertRegex(c.imap("s", "SELECT " + select)[0], rb"^s OK")
        return c

    def ok(self, c, text, tag="t"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" OK", (text, tagged, untagged))
        return untagged

    def quiet(self, c, seconds=QUIET):
        """Nothing arrives for seconds (then a NOOP shows the session is still fine)."""
        c.sock.settimeout(seconds)
        try:
            data = c.sock.recv(4096)
        except OSError:
            data = b""
        self.assertEqual(data, b"")
        c.sock.settimeout(c.timeout)

    def append(self, user, box, i):
        o = self.conn(user)
        m = MSG % (i, i)
        self.ok(o, 'APPEND "%s" {%d+}\r\n%s' % (box, len(m), m.decode()))
        o.imap("z", "LOGOUT")

    # ---- syntax and refusals

    def test_capability_and_errors(self):
        c = self.conn()
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" NOTIFY", caps)
        for bad in ("NOTIFY", "NOTIFY FOO", "NOTIFY SET", "NOTIFY SET (personal MessageNew)",
                    "NOTIFY SET (personal (MessageNew))", "NOTIFY SET (inboxes (FlagChange))",
                    "NOTIFY SET (selected (MailboxName))",
                    "NOTIFY SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)",
                    "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
                    "NOTIFY SET (bogus NONE)", "NOTIFY NONE extra"):
            tagged, untagged = c.imap("b", bad)
            self.assertRegex(tagged, rb"^b BAD ", bad)
        # RFC 5465 section 3.1: NO (not BAD) with BADEVENT listing what is supported
        # (the metadata events are supported with METADATA: test_imap_metadata.py)
        for ev in ("AnnotationChange", "Foo"):
            extra = " MessageNew MessageExpunge" if ev == "AnnotationChange" else ""
            tagged, _ = c.imap("e", "NOTIFY SET (personal (%s%s))" % (ev, extra))
            self.assertRegex(tagged, rb"^e NO \[BADEVENT \(MessageNew MessageExpunge FlagChange "
                                     rb"MailboxName SubscriptionChange MailboxMetadataChange "
                                     rb"ServerMetadataChange\)\]")
        # not authenticated: BAD
        n = self.coffer.connect("imap")
        self.addCleanup(n.close)
        n.expect(rb"^\* OK")
        self.assertRegex(n.imap("x", "NOTIFY NONE")[0], rb"^x BAD")
        self.ok(c, "NOTIFY NONE")

    def test_overflow_limit(self):
        c = self.conn("sue")
        for i in range(6):
            self.ok(c, "CREATE box%d" % i)
        # INBOX + 6 = 7 > notify_max_mailboxes 6: refused, and the old state stays
        tagged, _ = c.imap("o", "NOTIFY SET (personal %s)" % ALL_MSG)
        self.assertRegex(tagged, rb"^o NO \[NOTIFICATIONOVERFLOW\]")
        self.ok(c, "NOTIFY SET (personal (MailboxName))")   # names only: nothing watched
        self.ok(c, "NOTIFY SET (mailboxes (box0 box1) %s)" % ALL_MSG)
        self.ok(c, "NOTIFY SET (subtree box0 %s)" % ALL_MSG)
        # growing past the limit later: untagged OK [NOTIFICATIONOVERFLOW], then NOTIFY NONE
        self.ok(c, "DELETE box5")
        self.ok(c, "NOTIFY SET (personal %s)" % ALL_MSG)
        o = self.conn("sue")
        self.ok(o, "CREATE box5")
        c.expect(rb"^\* OK \[NOTIFICATIONOVERFLOW\]", timeout=SCAN)
        self.append("sue", "box1", 1)
        self.quiet(c, 2.5)

    # ---- message events in other mailboxes

    def test_status_on_delivery_flags_expunge(self):
        c = self.conn("fred")
        self.ok(c, "CREATE Lists")
        self.ok(c, "CREATE Quiet")
        self.append("fred", "Lists", 1)
        # STATUS indicator: a STATUS for each watched mailbox before the OK
        untagged = self.ok(c, "NOTIFY SET STATUS (inboxes %s) (mailboxes Quiet NONE) "
                              "(personal %s)" % (ALL_MSG, ALL_MSG))
        lines = b"".join(untagged)
        self.assertIn(b'* STATUS "Lists" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ', lines)
        self.assertIn(b'* STATUS "INBOX" (MESSAGES ', lines)
        self.assertNotIn(b'"Quiet"', lines)      # the first matching filter wins: NONE
        # delivered by another session: STATUS between commands, no command needed
        self.append("fred", "Lists", 2)
        c.expect(rb'^\* STATUS "Lists" \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 2\)',
                 timeout=2)
        # LMTP into INBOX
        lm = self.coffer.lmtp()
        lm.sendmail("a@example.com", ["fred@coffer.test"], MSG % (3, 3))
        lm.quit()
        c.expect(rb'^\* STATUS "INBOX" \(MESSAGES \d+ UIDNEXT \d+', timeout=2)
        # nothing for a mailbox filtered out with NONE
        self.append("fred", "Quiet", 4)
        self.quiet(c)
        # flag change (\Seen changes UNSEEN) and expunge by another session
        o = self.conn("fred", "Lists")
        self.ok(o, "STORE 1 +FLAGS (\\Seen)")
        c.expect(rb'^\* STATUS "Lists" \(MESSAGES 2 UIDNEXT 3 UIDVALIDITY \d+ UNSEEN 1\)',
                 timeout=2)
        self.ok(o, "STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.ok(o, "EXPUNGE")
        c.expect(rb'^\* STATUS "Lists" \(MESSAGES 1 UIDNEXT 3 ', timeout=2)
        # the session's own APPEND is not told (RFC 5465 section 5)
        m = MSG % (5, 5)
        tagged, untagged = c.imap("a", 'APPEND Lists {%d+}\r\n%s' % (len(m), m.decode()))
        self.assertRegex(tagged, rb"^a OK")
        self.assertFalse([u for u in untagged if u.startswith(b"* STATUS")], untagged)
        self.quiet(c)
        # NOTIFY NONE stops everything
        self.ok(c, "NOTIFY NONE")
        self.append("fred", "Lists", 6)
        self.quiet(c, 1.0)
        self.assertEqual(c.imap("n", "NOOP"), (b"n OK NOOP completed\r\n", []))

    def test_flag_change_any_flag(self):
        # RFC 5465 section 5.2: FlagChange in a mailbox other than the selected one is told as
        # STATUS for any flag or keyword, not only when UNSEEN moves; with CONDSTORE the
        # HIGHESTMODSEQ in it grows (sections 5.2, 5.3)
        c = self.conn("kim")
        self.ok(c, "CREATE Flags")
        self.append("kim", "Flags", 1)
        self.ok(c, "ENABLE CONDSTORE")
        lines = b"".join(self.ok(c, "NOTIFY SET STATUS (mailboxes Flags %s)" % ALL_MSG))
        m = re.search(rb'\* STATUS "Flags" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 '
                      rb'HIGHESTMODSEQ (\d+)\)', lines)
        self.assertTrue(m, lines)
        before = int(m.group(1))
        o = self.conn("kim", "Flags")
        self.ok(o, "STORE 1 +FLAGS (\\Flagged)")
        m = c.expect(rb'^\* STATUS "Flags" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1 '
                     rb'HIGHESTMODSEQ (\d+)\)', timeout=2)
        self.assertGreater(int(m.group(1)), before)
        before = int(m.group(1))
        # a keyword, and a flag taken away
        self.ok(o, "STORE 1 +FLAGS ($Label1)")
        m = c.expect(rb'^\* STATUS "Flags" \(.* HIGHESTMODSEQ (\d+)\)', timeout=2)
        self.assertGreater(int(m.group(1)), before)
        self.ok(o, "STORE 1 -FLAGS (\\Flagged)")
        c.expect(rb'^\* STATUS "Flags" \(MESSAGES 1 ', timeout=2)
        # a STORE that changes nothing is no flag change
        self.ok(o, "STORE 1 -FLAGS (\\Flagged)")
        self.quiet(c)
        # without FlagChange a flag change is not told
        self.ok(c, "NOTIFY SET (mailboxes Flags (MessageNew MessageExpunge))")
        self.ok(o, "STORE 1 +FLAGS (\\Answered)")
        self.quiet(c)
        # without CONDSTORE the line has no HIGHESTMODSEQ
        d = self.conn("kim")
        self.ok(d, "NOTIFY SET (mailboxes Flags %s)" % ALL_MSG)
        self.ok(o, "STORE 1 +FLAGS (\\Draft)")
        d.expect(rb'^\* STATUS "Flags" \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)\r\n',
                 timeout=2)

    def test_during_idle(self):
        c = self.conn("joe", "INBOX")
        self.ok(c, "CREATE Work")
        self.ok(c, "NOTIFY SET (personal %s)" % ALL_MSG)
        c.cmd("i IDLE")
        c.expect(rb"^\+ ")
        self.append("joe", "Work", 1)
        c.expect(rb'^\* STATUS "Work" \(MESSAGES 1 ', timeout=2)
        # no SELECTED filter: the selected INBOX gets nothing during IDLE (section 4)
        self.append("joe", "INBOX", 2)
        self.quiet(c)
        c.cmd("DONE")
        tagged, untagged = c.read_tagged("i")
        self.assertEqual(tagged, b"i OK IDLE terminated\r\n")
        # the command's completion still reports the selected mailbox (RFC 3501)
        self.assertIn(b"* 1 EXISTS\r\n", untagged + self.ok(c, "NOOP"))
        # with a SELECTED filter IDLE reports the selected mailbox too
        self.ok(c, "NOTIFY SET (selected (MessageNew MessageExpunge)) (personal %s)" % ALL_MSG)
        c.cmd("j IDLE")
        c.expect(rb"^\+ ")
        self.append("joe", "INBOX", 3)
        c.expect(rb"^\* 2 EXISTS", timeout=2)
        self.append("joe", "Work", 4)
        c.expect(rb'^\* STATUS "Work" \(MESSAGES 2 ', timeout=2)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("j")[0], b"j OK IDLE terminated\r\n")

    def test_selected_and_fetch_atts(self):
        c = self.conn("ann", "INBOX")
        self.ok(c, "NOTIFY SET (selected (MessageNew (UID FLAGS BODY.PEEK[HEADER.FIELDS "
                   "(Subject)]) MessageExpunge FlagChange))")
        self.append("ann", "INBOX", 1)
        c.expect(rb"^\* 1 EXISTS", timeout=2)
        m = c.expect(rb"^\* 1 FETCH \(.*UID 1", timeout=2)
        self.assertIn(b"BODY[HEADER.FIELDS (Subject)]", m.string)
        c.expect(rb"^Subject: notify 1", timeout=2)
        o = self.conn("ann", "INBOX")
        self.ok(o, "STORE 1 +FLAGS (\\Flagged)")
        c.expect(rb"^\* 1 FETCH \(FLAGS \(\\Flagged[^)]*\) UID 1\)", timeout=2)
        self.ok(o, "STORE 1 +FLAGS (\\Deleted)")
        self.ok(o, "EXPUNGE")
        c.expect(rb"^\* 1 EXPUNGE", timeout=2)      # SELECTED: at once, between commands
        self.ok(c, "NOTIFY NONE")

    def test_selected_delayed(self):
        c = self.conn("ann")
        self.ok(c, "CREATE delayed")
        self.append("ann", "delayed", 1)
        self.append("ann", "delayed", 2)
        self.ok(c, "SELECT delayed")
        self.ok(c, "NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))")
        o = self.conn("ann", "delayed")
        self.ok(o, "STORE 1 +FLAGS (\\Deleted)")
        c.expect(rb"^\* 1 FETCH \(FLAGS \(\\Deleted[^)]*\) UID 1\)", timeout=2)
        self.ok(o, "EXPUNGE")
        self.append("ann", "delayed", 3)
        # the new message comes at once; the expunge waits for a command that allows it
        c.expect(rb"^\* 3 EXISTS", timeout=2)
        self.quiet(c)
        tagged, untagged = c.imap("f", "FETCH 1 UID")      # FETCH: no EXPUNGE before its OK
        self.assertFalse([u for u in untagged if b"EXPUNGE" in u], untagged)
        self.assertIn(b"EXPUNGE", b"".join(self.ok(c, "NOOP")))

    # ---- mailbox names and subscriptions

    def test_mailbox_name_and_subscription(self):
        c = self.conn("fred")
        self.ok(c, "NOTIFY SET (personal (MailboxName SubscriptionChange))")
        o = self.conn("fred")
        self.ok(o, "CREATE named")
        c.expect(rb'^\* LIST \(\\HasNoChildren\) "/" "named"', timeout=SCAN)
        self.ok(o, "RENAME named renamed")
        c.expect(rb'^\* LIST \(\\HasNoChildren\) "/" "renamed" \("OLDNAME" \("named"\)\)',
                 timeout=SCAN)
        self.ok(o, "SUBSCRIBE renamed")
        c.expect(rb'^\* LIST \(\\Subscribed\) "/" "renamed"', timeout=SCAN)
        self.ok(o, "UNSUBSCRIBE renamed")
        c.expect(rb'^\* LIST \(\) "/" "renamed"', timeout=SCAN)
        self.ok(o, "DELETE renamed")
        c.expect(rb'^\* LIST \(\\NonExistent\) "/" "renamed"', timeout=SCAN)
        # the session's own CREATE is not told
        tagged, untagged = c.imap("c", "CREATE mine")
        self.assertFalse([u for u in untagged if u.startswith(b"* LIST")], untagged)
        self.quiet(c, 2.5)
        self.ok(c, "NOTIFY NONE")
        self.ok(o, "CREATE after-none")
        self.quiet(c, 2.5)

    # ---- rights

    def test_rights(self):
        owner = self.conn("joe")
        self.ok(owner, "CREATE listonly")
        self.ok(owner, "CREATE readable")
        self.ok(owner, 'SETACL listonly fred "l"')
        self.ok(owner, 'SETACL readable fred "lr"')
        c = self.conn("fred")
        untagged = self.ok(c, 'NOTIFY SET STATUS (mailboxes ("Other Users/joe/listonly" '
                              '"Other Users/joe/readable" "Other Users/joe/nosuch") %s)'
                           % ALL_MSG)
        lines = b"".join(untagged)
        # 'l' without 'r': \NoAccess and no STATUS; a name that does not exist is ignored
        self.assertIn(b'* LIST (\\NoAccess) "/" "Other Users/joe/listonly"', lines)
        self.assertIn(b'* STATUS "Other Users/joe/readable" (MESSAGES 0 ', lines)
        self.assertNotIn(b"nosuch", lines)
        self.append("joe", "listonly", 1)
        self.quiet(c)
        self.append("joe", "readable", 2)
        c.expect(rb'^\* STATUS "Other Users/joe/readable" \(MESSAGES 1 ', timeout=2)
        # a revoked right stops the notifications (RFC 5465 section 5.9)
        self.ok(owner, 'SETACL readable fred "l"')
        time.sleep(SCAN / 2 + 0.5)
        self.ok(c, "NOOP")
        self.append("joe", "readable", 3)
        self.quiet(c, 1.0)
        # and a mailbox the user cannot even list gives nothing at all
        self.ok(owner, 'DELETEACL listonly fred')
        self.ok(c, 'NOTIFY SET STATUS (mailboxes "Other Users/joe/listonly" %s)' % ALL_MSG)
        self.append("joe", "listonly", 4)
        self.quiet(c)

    def test_rights_admin(self):
        owner = self.conn("sue")
        self.ok(owner, "CREATE private")
        # an administrator has every right (imapd(8)): STATUS at NOTIFY SET and on delivery
        b = self.conn("boss")
        untagged = self.ok(b, 'NOTIFY SET STATUS (mailboxes "Other Users/sue/private" %s)'
                           % ALL_MSG)
        lines = b"".join(untagged)
        self.assertIn(b'* STATUS "Other Users/sue/private" (MESSAGES 0 ', lines)
        self.assertNotIn(b"\\NoAccess", lines)
        self.append("sue", "private", 5)
        b.expect(rb'^\* STATUS "Other Users/sue/private" \(MESSAGES 1 ', timeout=2)
        # the same mailbox, for a user without any right: nothing at all
        f = self.conn("ann")
        self.assertEqual(self.ok(f, 'NOTIFY SET STATUS (mailboxes "Other Users/sue/private" %s)'
                                 % ALL_MSG), [])
        self.append("sue", "private", 6)
        b.expect(rb'^\* STATUS "Other Users/sue/private" \(MESSAGES 2 ', timeout=2)
        self.quiet(f)


if __name__ == "__main__":
    main()
