"""test_imap_quota.py: RFC 9208 quotas end to end: GETQUOTA/GETQUOTAROOT/SETQUOTA (administrators
only; a new root counts its mailboxes), STORAGE in KiB and MESSAGE limits at, below and above
the limit through APPEND, COPY and LMTP, the SELECT warning, and four parallel clients
appending to two mailboxes of one root near its limit: usage never passes the limit and
equals the messages stored (`coffer quota fix` finds nothing)."""
import json
import os
import re
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"qa": "qapw", "qb": "qbpw", "qc": "qcpw", "qd": "qdpw", "boss": "bosspw"}


def msg(i, pad=0):
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: q%d\r\n"
            b"Message-ID: <quota%d@example.com>\r\n\r\nbody %d\r\n" % (i, i, i)) + b"x" * pad


class Quota(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def append(self, c, box, data, tag="a"):
        return c.imap(tag, 'APPEND "%s" {%d+}\r\n%s' % (box, len(data), data.decode()))[0]

    def coffer_json(self, *args):
        r = subprocess.run([os.path.join(self.coffer.bindir, "coffer"), "-C",
                            self.coffer.conf_path, "--json"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                           env=self.coffer.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout.decode())

    def test_commands_and_permissions(self):
        a = self.conn("qa")
        for i in range(1, 5):
            self.assertRegex(self.append(a, "INBOX", msg(i)), rb"^a OK")
        # no root yet
        self.assertEqual(self.ok(a, "GETQUOTAROOT INBOX"), [b'* QUOTAROOT "INBOX"\r\n'])
        self.assertRegex(a.imap("g", "GETQUOTA INBOX")[0], rb"^g NO \[NONEXISTENT\]")
        # only administrators set quotas
        self.assertRegex(a.imap("s", "SETQUOTA INBOX (STORAGE 100)")[0], rb"^s NO \[NOPERM\]")
        b = self.conn("boss")
        got = self.ok(b, 'SETQUOTA "Other Users/qa" (STORAGE 100 MESSAGE 10)')
        # the new root counts what is already there (4 messages here: 1..3 and 4)
        m = re.match(rb'\* QUOTA "Other Users/qa" \(STORAGE (\d+) 100 MESSAGE (\d+) 10\)\r\n',
                     got[0])
        self.assertTrue(m, got)
        self.assertEqual(int(m.group(2)), 4)
        self.assertEqual(self.ok(a, "GETQUOTAROOT INBOX"), [
            b'* QUOTAROOT "INBOX" "INBOX"\r\n',
            b'* QUOTA "INBOX" (STORAGE %s 100 MESSAGE 4 10)\r\n' % m.group(1)])
        self.ok(a, "CREATE sub")
        self.assertEqual(self.ok(a, "GETQUOTAROOT sub")[0], b'* QUOTAROOT "sub" "INBOX"\r\n')
        self.assertEqual(len(self.ok(a, "GETQUOTA INBOX")), 1)
        # other users' roots are invisible
        q = self.conn("qb")
        self.assertRegex(q.imap("g", 'GETQUOTA "Other Users/qa"')[0], rb"^g NO \[NONEXISTENT\]")
        self.assertRegex(q.imap("g", 'GETQUOTAROOT "Other Users/qa"')[0],
                         rb"^g NO \[NONEXISTENT\]")
        self.assertRegex(b.imap("x", 'SETQUOTA "Other Users/qa" (FOO 1)')[0], rb"^x NO \[CANNOT\]")
        self.assertRegex(b.imap("x", 'SETQUOTA "Other Users/qa" (STORAGE -1)')[0], rb"^x BAD")
        self.assertRegex(b.imap("x", 'SETQUOTA "Other Users/qa" (STORAGE)')[0], rb"^x BAD")
        # one resource only: the other has no limit any more
        self.assertEqual(self.ok(b, 'SETQUOTA "Other Users/qa" (MESSAGE 20)'),
                         [b'* QUOTA "Other Users/qa" (MESSAGE 4 20)\r\n'])
        # "()" removes the root
        self.ok(b, 'SETQUOTA "Other Users/qa" ()')
        self.assertEqual(self.ok(a, "GETQUOTAROOT INBOX"), [b'* QUOTAROOT "INBOX"\r\n'])

    def test_limits_imap_and_lmtp(self):
        b, q = self.conn("boss"), self.conn("qb")
        self.ok(b, 'SETQUOTA "Other Users/qb" (STORAGE 4 MESSAGE 3)')
        self.ok(q, "CREATE other")
        self.assertRegex(self.append(q, "INBOX", msg(10)), rb"^a OK")       # 1 of 3
        self.assertRegex(self.append(q, "other", msg(11)), rb"^a OK")       # 2 of 3
        # storage: 4 KiB; a 5 KiB message is refused whatever the message count
        self.assertRegex(self.append(q, "INBOX", msg(12, 5000)), rb"^a NO \[OVERQUOTA\]")
        self.assertRegex(self.append(q, "INBOX", msg(13)), rb"^a OK")       # 3 of 3: at the limit
        self.assertRegex(self.append(q, "INBOX", msg(14)), rb"^a NO \[OVERQUOTA\]")
        self.ok(q, "SELECT INBOX")
        self.assertRegex(q.imap("c", "COPY 1 other")[0], rb"^c NO \[OVERQUOTA\]")
        # at 100% of the message limit: the SELECT warning (quota_warn_percent = 90)
        tagged, untagged = q.imap("s", "SELECT INBOX")
        self.assertIn(b"* NO [ALERT] Mailbox is 100% full\r\n", untagged)
        self.assertIn("event=quota_warning", self.coffer.log_text())
        # LMTP: over quota is 452 4.2.2
        with self.coffer.lmtp() as l:
            with self.assertRaises(Exception) as ctx:
                l.sendmail("x@example.com", ["qb@example.com"], msg(15))
            self.assertIn("4.2.2", str(ctx.exception))
        # room again below the limit: expunging gives usage back, LMTP delivers
        self.ok(q, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        # RFC 9208 section 4.2.1: STATUS DELETED
        self.assertEqual(self.ok(q, "STATUS INBOX (MESSAGES DELETED)"),
                         [b'* STATUS "INBOX" (MESSAGES 2 DELETED 1)\r\n'])
        self.ok(q, "EXPUNGE")
        tagged, untagged = q.imap("s", "SELECT INBOX")
        self.assertNotIn(b"ALERT", b"".join(untagged))
        with self.coffer.lmtp() as l:
            self.assertEqual(l.sendmail("x@example.com", ["qb@example.com"], msg(16)), {})
        self.assertIn(b"MESSAGE 3 3", self.ok(q, "GETQUOTA INBOX")[0])
        self.assertRegex(q.imap("c", "COPY 1 other")[0], rb"^c NO \[OVERQUOTA\]")

    def test_concurrent_appends(self):
        b = self.conn("boss")
        setup = self.conn("qc")
        self.ok(setup, "CREATE one")
        self.ok(setup, "CREATE two")
        limit = 24
        self.ok(b, 'SETQUOTA "Other Users/qc" (MESSAGE %d)' % limit)
        results = []
        lock = threading.Lock()

        def client(k):
            m = self.coffer.imap()
            try:
                m.login("qc", USERS["qc"])
                for i in range(12):
                    box = "one" if (i + k) % 2 else "two"
                    typ, data = m.append(box, None, None, msg(1000 + k * 100 + i, pad=i * 37))
                    with lock:
                        results.append((typ, data[0] or b""))
                m.logout()
            except Exception as e:   # noqa: BLE001 - reported below
                with lock:
                    results.append(("EXC", repr(e).encode()))

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        oks = [r for r in results if r[0] == "OK"]
        refused = [r for r in results if r[0] != "OK"]
        self.assertEqual(len(results), 48, results)
        self.assertEqual(len(oks), limit, results)
        for r in refused:
            self.assertIn(b"OVERQUOTA", r[1], r)
        got = self.ok(setup, "GETQUOTA INBOX")[0]
        self.assertEqual(got, b'* QUOTA "INBOX" (MESSAGE %d %d)\r\n' % (limit, limit))
        stored = 0
        for box in ("INBOX", "one", "two"):
            stored += int(re.search(rb"MESSAGES (\d+)", self.ok(
                setup, 'STATUS "%s" (MESSAGES)' % box)[0]).group(1))
        self.assertEqual(stored, limit)
        # the bytes agree with the index headers too: nothing for the quota tool to fix
        self.assertEqual([f for f in self.coffer_json("quota", "fix") if f["root"] == "user/qc"],
                         [])


if __name__ == "__main__":
    main()
