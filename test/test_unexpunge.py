"""test_unexpunge.py: delayed expunge and delayed delete end to end (expunge_mode and
delete_mode delayed, the defaults): IMAP EXPUNGE and POP3 DELE+QUIT hide messages at once and
credit the quota, `coffer unexpunge` brings them back with new UIDs, their flags (without
\\Deleted) and internal dates; IMAP DELETE hides a folder whose name is free at once, and
`coffer undelete` brings it back (--as for a taken name) with its messages and ACL; quota is
charged again, refused (exit 6) over the limit unless --force; --dry-run lists exactly what
would come back and changes nothing; --json shapes; no client can see a hidden mailbox; and
`coffer expire` removes both after expunge_retention (2s here), freeing their files."""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main, run_coffer  # noqa: E402

RETENTION = 2
USERS = {"ua": "uapw", "ub": "ubpw", "up": "uppw", "ud": "udpw", "uq": "uqpw", "ue": "uepw",
         "boss": "bosspw"}


def msg(i, pad=0):
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: subject %d\r\n"
            b"Message-ID: <unexp%d@example.com>\r\n\r\nbody %d\r\n" % (i, i, i)) + b"x" * pad


class Unexpunge(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss",
                                         "expunge_retention": "%ds" % RETENTION}}

    # ---- helpers

    def tool(self, *args, rc=0):
        code, out, err = run_coffer(self.coffer, *args, json_out=True)
        self.assertEqual(code, rc, (args, out, err))
        return json.loads(out.decode()) if out.strip() else None

    def append(self, c, box, data, flags="", date=None):
        extra = (" (%s)" % flags if flags else "") + (' "%s"' % date if date else "")
        tagged = c.imap("a", 'APPEND "%s"%s {%d+}\r\n%s' % (box, extra, len(data), data.decode()))[0]
        return tagged

    def fetch(self, c, uids="1:*"):
        """{uid: (flags set, internaldate)} of the selected mailbox."""
        out = {}
        for line in self.ok(c, "UID FETCH %s (FLAGS INTERNALDATE)" % uids):
            m = re.search(rb"UID (\d+)", line)
            f = re.search(rb"FLAGS \(([^)]*)\)", line)
            d = re.search(rb'INTERNALDATE "([^"]+)"', line)
            if m and f and d:
                flags = set(f.group(1).split()) - {b"\\Recent"}
                out[int(m.group(1))] = (flags, d.group(1))
        return out

    def status(self, c, box, item="MESSAGES"):
        line = self.ok(c, 'STATUS "%s" (%s)' % (box, item))[0]
        return int(re.search(rb"%s (\d+)" % item.encode(), line).group(1))

    def quota(self, c):
        line = self.ok(c, "GETQUOTA INBOX")[0]
        m = re.search(rb"MESSAGE (\d+) (\d+)", line)
        return int(m.group(1)), int(m.group(2))

    def message_files(self, box):
        rows = self.tool("mailbox", "list", box)
        u = [r for r in rows if r["mailbox"] == box][0]["uniqueid"]
        d = os.path.join(self.coffer.spool, u[:2], u)
        return sorted(f for f in os.listdir(d) if re.match(r"^\d+\.$", f))

    def held_dirs(self):
        out = []
        for xx in os.listdir(self.coffer.spool):
            top = os.path.join(self.coffer.spool, xx)
            if os.path.isdir(top):
                out += [os.path.join(top, d) for d in os.listdir(top) if d.endswith(".held")]
        return out

    # ---- tests

    def test_imap_expunge_then_unexpunge(self):
        a = self.conn("ua")
        self.assertRegex(self.append(a, "INBOX", msg(1), "\\Seen $Work", "01-Feb-2020 10:00:00 +0000"), rb"^a OK")
        self.assertRegex(self.append(a, "INBOX", msg(2), "\\Flagged", "02-Mar-2021 11:30:00 +0000"), rb"^a OK")
        self.assertRegex(self.append(a, "INBOX", msg(3)), rb"^a OK")
        self.ok(a, "SELECT INBOX")
        before = self.fetch(a)
        self.ok(a, "UID STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        untagged = self.ok(a, "EXPUNGE")
        self.assertEqual([l for l in untagged if b"EXPUNGE" in l], [b"* 1 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"])
        # gone for everyone at once
        b = self.conn("ua")
        self.assertEqual(self.status(b, "INBOX"), 1)
        self.ok(b, "SELECT INBOX")
        self.assertEqual(self.ok(b, "UID SEARCH ALL"), [b"* SEARCH 3\r\n"])
        self.assertEqual(self.message_files("user/ua"), ["1.", "2.", "3."])   # kept for unexpunge
        # the dry run says exactly what would come back, and changes nothing
        rows = self.tool("unexpunge", "ua", "INBOX", "--dry-run")
        self.assertEqual([r["uid"] for r in rows], [1, 2])
        self.assertEqual(set(rows[0]), {"uid", "date", "expunged", "size", "flags", "subject"})
        self.assertEqual(rows[0]["subject"], "subject 1")
        self.assertEqual(rows[0]["date"], "2020-02-01T10:00:00Z")
        self.assertEqual(rows[0]["size"], len(msg(1)))
        self.assertEqual(rows[0]["flags"], "\\Seen $Work")
        self.assertEqual(rows[1]["flags"], "\\Flagged")
        self.assertEqual(self.status(b, "INBOX"), 1)
        code, out, err = run_coffer(self.coffer, "unexpunge", "ua", "INBOX", "--dry-run")
        self.assertEqual(code, 0)
        self.assertIn(b"subject 2", out)
        self.assertIn("dry run", err)
        # --uid picks some
        rows = self.tool("unexpunge", "ua", "INBOX", "--uid", "2", "--dry-run")
        self.assertEqual([r["uid"] for r in rows], [2])
        # bring them back: new uids, flags without \Deleted, the same internal dates
        rows = self.tool("unexpunge", "ua", "INBOX")
        self.assertEqual([(r["uid"], r["new_uid"]) for r in rows], [(1, 4), (2, 5)])
        self.assertIn(b"* 3 EXISTS\r\n", self.ok(a, "NOOP"))
        after = self.fetch(a)
        self.assertEqual(sorted(after), [3, 4, 5])
        self.assertEqual(after[4][0], before[1][0])
        self.assertEqual(after[4][0], {b"\\Seen", b"$Work"})
        self.assertEqual(after[5][0], {b"\\Flagged"})
        self.assertEqual(after[4][1], before[1][1])
        self.assertEqual(after[5][1], before[2][1])
        self.assertIn(b"* 3 EXISTS\r\n", self.ok(b, "NOOP"))
        self.assertEqual(sorted(self.fetch(b)), [3, 4, 5])
        self.assertEqual(self.message_files("user/ua"), ["3.", "4.", "5."])
        # nothing left to bring back: never twice
        self.assertEqual(self.tool("unexpunge", "ua", "INBOX"), [])
        self.assertEqual(run_coffer(self.coffer, "check")[0], 0)

    def test_pop3_dele_then_unexpunge(self):
        a = self.conn("up")
        for i in (10, 11):
            self.assertRegex(self.append(a, "INBOX", msg(i)), rb"^a OK")
        p = self.coffer.pop3("pop3s")
        p.user("up")
        p.pass_(USERS["up"])
        p.dele(1)
        p.quit()
        self.assertEqual(self.status(a, "INBOX"), 1)
        rows = self.tool("unexpunge", "up", "INBOX")
        self.assertEqual([r["subject"] for r in rows], ["subject 10"])
        self.assertEqual(self.status(a, "INBOX"), 2)
        p = self.coffer.pop3("pop3s")
        p.user("up")
        p.pass_(USERS["up"])
        self.assertEqual(p.stat()[0], 2)
        p.quit()

    def test_delete_then_undelete(self):
        d = self.conn("ud")
        self.ok(d, "CREATE Folder")
        self.assertRegex(self.append(d, "Folder", msg(20), "\\Answered"), rb"^a OK")
        self.assertRegex(self.append(d, "Folder", msg(21)), rb"^a OK")
        self.ok(d, 'SETACL Folder ub lr')
        b = self.conn("ub")
        self.assertIn(b"Other Users/ud/Folder", b"".join(self.ok(b, 'LIST "" "*"')))
        self.ok(d, "DELETE Folder")
        # hidden from every client and from the mailbox list
        for c in (d, b):
            listing = b"".join(self.ok(c, 'LIST "" "*"'))
            self.assertNotIn(b"Folder", listing)
            self.assertNotIn(b"held", listing)
        self.assertEqual([r for r in self.tool("mailbox", "list") if "Folder" in r["mailbox"]], [])
        self.assertEqual(len([h for h in self.held_dirs()]), len(self.tool("undelete", "--list")))
        # the name is free at once
        self.ok(d, "CREATE Folder")
        self.assertRegex(self.append(d, "Folder", msg(22)), rb"^a OK")
        listed = self.tool("undelete", "ud", "--list")
        self.assertEqual(len(listed), 1)
        self.assertEqual(set(listed[0]), {"name", "internal", "deleted", "expires", "messages",
                                          "bytes", "uniqueid"})
        self.assertEqual((listed[0]["name"], listed[0]["internal"], listed[0]["messages"]),
                         ("Folder", "user/ud/Folder", 2))
        self.assertEqual(listed[0]["bytes"], len(msg(20)) + len(msg(21)))
        # taken: refused, with the way out in the message
        code, out, err = run_coffer(self.coffer, "undelete", "ud", "Folder")
        self.assertEqual(code, 4)
        self.assertIn("--as", err)
        # dry run: says what, changes nothing
        rows = self.tool("undelete", "ud", "Folder", "--as", "Restored", "--dry-run")
        self.assertEqual((rows[0]["name"], rows[0]["as"], rows[0]["messages"]), ("Folder", "Restored", 2))
        self.assertNotIn(b"Restored", b"".join(self.ok(d, 'LIST "" "*"')))
        rows = self.tool("undelete", "ud", "Folder", "--as", "Restored")
        self.assertEqual(rows[0]["as"], "Restored")
        self.assertIn(b"Restored", b"".join(self.ok(d, 'LIST "" "*"')))
        self.ok(d, "SELECT Restored")
        got = self.fetch(d)
        self.assertEqual(sorted(got), [1, 2])        # the same mailbox: its uids are kept
        self.assertEqual(got[1][0], {b"\\Answered"})
        # its ACL came back with it
        self.assertIn(b'"ub" "lr"', b"".join(self.ok(d, "GETACL Restored")))
        self.assertEqual(self.tool("undelete", "ud", "--list"), [])
        self.assertEqual(run_coffer(self.coffer, "check")[0], 0)
        code, _, err = run_coffer(self.coffer, "undelete", "ud", "Folder")
        self.assertEqual(code, 3)

    def test_quota_credit_charge_force(self):
        boss, q = self.conn("boss"), self.conn("uq")
        self.ok(boss, 'SETQUOTA "Other Users/uq" (MESSAGE 4)')
        self.ok(q, "CREATE F")
        self.assertRegex(self.append(q, "F", msg(30)), rb"^a OK")
        self.assertEqual(self.quota(q), (1, 4))
        self.ok(q, "DELETE F")
        self.assertEqual(self.quota(q), (0, 4))          # credited at the delete
        for i in range(31, 35):
            self.assertRegex(self.append(q, "INBOX", msg(i)), rb"^a OK")
        self.assertEqual(self.quota(q), (4, 4))
        code, out, err = run_coffer(self.coffer, "undelete", "uq", "F")
        self.assertEqual(code, 6, err)
        self.assertIn("quota", err)
        self.assertEqual(self.tool("undelete", "uq", "F", "--dry-run")[0]["messages"], 1)
        self.ok(q, "SELECT INBOX")
        self.ok(q, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        self.ok(q, "EXPUNGE")
        self.assertEqual(self.quota(q), (2, 4))          # credited at the expunge
        self.tool("undelete", "uq", "F")
        self.assertEqual(self.quota(q), (3, 4))          # charged at the undelete
        code, out, err = run_coffer(self.coffer, "unexpunge", "uq", "INBOX")
        self.assertEqual(code, 6, err)
        self.assertIn("quota", err)
        code, out, err = run_coffer(self.coffer, "unexpunge", "uq", "INBOX", json_out=True)
        self.assertEqual(code, 6)
        self.assertIn("quota", json.loads(out.decode())["error"])
        self.assertEqual(self.quota(q), (3, 4))          # refused: nothing changed
        rows = self.tool("unexpunge", "uq", "INBOX", "--force")
        self.assertEqual(len(rows), 2)
        self.assertEqual(self.quota(q), (5, 4))          # charged, over the limit by --force
        self.assertEqual(self.tool("quota", "fix"), [])

    def test_expire_after_retention(self):
        e = self.conn("ue")
        self.ok(e, "CREATE Old")
        self.assertRegex(self.append(e, "Old", msg(40)), rb"^a OK")
        for i in (41, 42):
            self.assertRegex(self.append(e, "INBOX", msg(i)), rb"^a OK")
        self.ok(e, "SELECT INBOX")
        self.ok(e, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(e, "EXPUNGE")
        self.ok(e, "DELETE Old")
        # within the retention: kept
        self.tool("expire")
        self.assertEqual(len(self.tool("unexpunge", "ue", "INBOX", "--dry-run")), 1)
        self.assertEqual(len(self.tool("undelete", "ue", "--list")), 1)
        self.assertEqual(self.message_files("user/ue"), ["1.", "2."])
        time.sleep(RETENTION + 1.2)
        rows = {r["what"]: r["removed"] for r in self.tool("expire", "--dry-run")}
        self.assertGreaterEqual(rows["expunged"], 1)
        self.assertGreaterEqual(rows["deleted"], 1)
        self.assertEqual(len(self.tool("undelete", "ue", "--list")), 1)   # dry run
        rows = {r["what"]: r["removed"] for r in self.tool("expire")}
        self.assertGreaterEqual(rows["expunged"], 1)
        self.assertGreaterEqual(rows["deleted"], 1)
        # the files are gone: space freed
        self.assertEqual(self.message_files("user/ue"), ["2."])
        self.assertEqual(self.tool("unexpunge", "ue", "INBOX", "--dry-run"), [])
        self.assertEqual(self.tool("undelete", "ue", "--list"), [])
        self.assertEqual(run_coffer(self.coffer, "check")[0], 0)

    def test_usage_and_errors(self):
        self.assertEqual(run_coffer(self.coffer, "unexpunge")[0], 2)
        self.assertEqual(run_coffer(self.coffer, "unexpunge", "ua")[0], 2)
        self.assertEqual(run_coffer(self.coffer, "unexpunge", "ua", "INBOX", "--since", "yesterday")[0], 2)
        self.assertEqual(run_coffer(self.coffer, "unexpunge", "ua", "INBOX", "--uid", "0")[0], 2)
        self.assertEqual(run_coffer(self.coffer, "unexpunge", "nobody-here", "INBOX")[0], 3)
        self.assertEqual(run_coffer(self.coffer, "undelete", "ua")[0], 2)
        self.assertEqual(run_coffer(self.coffer, "undelete", "ua", "Nothing")[0], 3)
        code, out, _ = run_coffer(self.coffer, "undelete", "ua", "Nothing", json_out=True)
        self.assertEqual(code, 3)
        self.assertIn("error", json.loads(out.decode()))
        # --since in the future selects nothing
        self.assertEqual(self.tool("unexpunge", "ua", "INBOX", "--since", "2999-01-01", "--dry-run"), [])


if __name__ == "__main__":
    main()
