"""test_hostile_quota.py: quota accounting on every path that removes messages (security review
M8, L6, L14). With quota roots set, each removal path (IMAP EXPUNGE, UID EXPUNGE, CLOSE, MOVE
to another root, DELETE, RENAME to another root, POP3 DELE+QUIT, `coffer mailbox delete`,
`coffer expire`, `coffer reconstruct`) is driven between APPEND, LMTP and COPY, also from two
sessions at once; after each step the usage in quota.db (GETQUOTAROOT and the exact bytes of
`coffer quota get`) must equal the sum the test counts with FETCH RFC822.SIZE, and `coffer
check` and `coffer quota fix` must find nothing. POP3 needs 't' and 'e' to DELE and 's' to set
\\Seen (M8); huge limits are refused, not multiplied past 63 bits (L6). A worker killed in the
middle of an expunge may leave the usage too high, never too low (coffer-store(5))."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"qx": "qxpw", "qp": "qppw", "qr": "qrpw", "qk": "qkpw", "qc": "qcpw", "boss": "bosspw"}


def msg(i, pad=0):
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hq%d\r\n"
            b"Message-ID: <hquota%d.%d@example.com>\r\n\r\nbody %d\r\n"
            % (i, i, pad, i)) + b"y" * pad + b"\r\n"


class HostileQuota(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    # ---- helpers

    def append(self, c, box, data):
        tagged = c.imap("a", 'APPEND "%s" {%d+}\r\n%s' % (box, len(data), data.decode()))[0]
        self.assertRegex(tagged, rb"^a OK", (box, tagged))

    def lmtp(self, user, data):
        with self.coffer.lmtp() as l:
            self.assertEqual(l.sendmail("x@example.com", ["%s@example.com" % user], data), {})

    def tool(self, *args, check=True):
        r = subprocess.run([os.path.join(self.coffer.bindir, "coffer"), "-C",
                            self.coffer.conf_path] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                           env=self.coffer.env())
        if check:
            self.assertEqual(r.returncode, 0, (args, r.stdout, r.stderr))
        return r

    def tool_json(self, *args):
        return json.loads(self.tool("--json", *args).stdout.decode())

    def db_usage(self, root):
        """(used bytes, messages) of root in quota.db, exact."""
        row = self.tool_json("quota", "get", root)
        row = row[0] if isinstance(row, list) else row
        return int(row["used_bytes"]), int(row["messages"])

    def counted(self, c, boxes):
        """(bytes, messages) the test counts itself: RFC822.SIZE of every message in boxes."""
        total = n = 0
        for box in boxes:
            untagged = self.ok(c, 'EXAMINE "%s"' % box, "e")
            exists = int(re.search(rb"\* (\d+) EXISTS", b"".join(untagged)).group(1))
            if exists:
                for line in self.ok(c, "FETCH 1:* (RFC822.SIZE)", "f"):
                    m = re.search(rb"RFC822\.SIZE (\d+)", line)
                    if m:
                        total += int(m.group(1))
                        n += 1
            self.ok(c, "UNSELECT", "u")
        return total, n

    def assert_exact(self, c, roots, what):
        """roots: {internal root: (IMAP root name as c sees it, [its mailboxes])}. The usage
        of each equals the count, in quota.db and GETQUOTA; the check tools agree."""
        for root, (imap_root, boxes) in roots.items():
            want = self.counted(c, boxes)
            self.assertEqual(self.db_usage(root), want, (what, root))
            got = self.ok(c, 'GETQUOTA "%s"' % imap_root, "q")[0]
            m = re.search(rb"STORAGE (\d+) \d+ MESSAGE (\d+)", got)
            self.assertTrue(m, got)
            self.assertEqual((int(m.group(1)), int(m.group(2))),
                             ((want[0] + 1023) // 1024, want[1]), (what, root, got))
        self.assert_clean(what)

    def assert_clean(self, what):
        fixes = self.tool_json("quota", "fix")
        self.assertEqual(fixes, [], (what, "coffer quota fix corrected something"))
        r = self.tool("check", check=False)
        self.assertEqual(r.returncode, 0, (what, r.stdout, r.stderr))

    def setquota(self, root, kib=1000000, messages=100000):
        self.tool("quota", "set", root, "--storage", str(kib), "--messages", str(messages))

    def mailbox_dir(self, name):
        rows = self.tool_json("mailbox", "list", name)
        row = [r for r in rows if r["mailbox"] == name][0]
        u = row["uniqueid"]
        return os.path.join(self.coffer.spool, u[:2], u)

    # ---- M8: every removal path

    def test_m8_every_removal_path(self):
        c = self.conn("qx")
        for box in ("a", "arch", "c", "d"):
            self.ok(c, "CREATE %s" % box)
        self.setquota("user/qx")
        self.setquota("user/qx/arch")       # a nearer root: MOVE and RENAME cross roots
        main_boxes = ["INBOX", "a", "c", "d"]
        roots = {"user/qx": ("INBOX", main_boxes), "user/qx/arch": ("arch", ["arch"])}
        for i in range(3):
            self.append(c, "INBOX", msg(100 + i, 3000 * (i + 1)))
        self.lmtp("qx", msg(110, 5000))
        self.lmtp("qx", msg(111, 700))
        for i in range(2):
            self.append(c, "a", msg(120 + i, 2000))
        for i in range(3):
            self.append(c, "c", msg(130 + i, 4000))
        self.append(c, "d", msg(140, 900))
        self.assert_exact(c, roots, "appends")

        # IMAP EXPUNGE
        self.ok(c, "SELECT INBOX")
        self.ok(c, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "EXPUNGE")
        self.assert_exact(c, roots, "EXPUNGE")
        # UID EXPUNGE: only the named one of two \Deleted
        self.ok(c, "SELECT INBOX")
        self.ok(c, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        uid = int(re.search(rb"UID (\d+)", self.ok(c, "FETCH 1 (UID)")[0]).group(1))
        self.ok(c, "UID EXPUNGE %d" % uid)
        self.assert_exact(c, roots, "UID EXPUNGE")
        # CLOSE expunges the other
        self.ok(c, "SELECT INBOX")
        self.ok(c, "CLOSE")
        self.assert_exact(c, roots, "CLOSE")
        # COPY then MOVE into the other root
        self.ok(c, "SELECT a")
        self.ok(c, "COPY 1 INBOX")
        self.assert_exact(c, roots, "COPY")
        self.ok(c, "SELECT a")
        self.ok(c, "MOVE 1 arch")
        self.assert_exact(c, roots, "MOVE to another root")
        # RENAME into the other root and back (its messages' usage follows)
        self.ok(c, "RENAME c arch/c")
        roots["user/qx/arch"][1].append("arch/c")
        main_boxes.remove("c")
        self.assert_exact(c, roots, "RENAME into another root")
        self.ok(c, "RENAME arch/c c2")
        roots["user/qx/arch"][1].remove("arch/c")
        main_boxes.append("c2")
        self.assert_exact(c, roots, "RENAME back")
        # IMAP DELETE of a mailbox holding messages
        self.ok(c, "DELETE c2")
        main_boxes.remove("c2")
        self.assert_exact(c, roots, "DELETE")
        # `coffer mailbox delete` of a folder holding 3 messages (the reproduction)
        for i in range(3):
            self.append(c, "d", msg(150 + i, 1500))
        self.tool("mailbox", "delete", "user/qx/d")
        main_boxes.remove("d")
        self.assert_exact(c, roots, "coffer mailbox delete")
        # `coffer expire` repacks the expunged records: usage must not move
        self.lmtp("qx", msg(160, 300))
        self.tool("expire")
        self.assert_exact(c, roots, "coffer expire")
        # POP3 DELE + QUIT (the reproduction: three messages, all deleted)
        p = self.coffer.pop3("pop3s")
        p.user("qx")
        p.pass_(USERS["qx"])
        count = p.stat()[0]
        for k in range(1, count + 1):
            p.dele(k)
        p.quit()
        self.assertEqual(self.counted(c, ["INBOX"]), (0, 0))
        self.assert_exact(c, roots, "POP3 DELE + QUIT")
        # reconstruct: a record whose file is gone is dropped, a file without a record is
        # adopted; the root follows both
        for i in range(3):
            self.append(c, "a", msg(170 + i, 2500))
        d = self.mailbox_dir("user/qx/a")
        files = sorted((f for f in os.listdir(d) if re.match(r"^\d+\.$", f)),
                       key=lambda f: int(f[:-1]))
        victim = os.path.join(d, files[0])
        keep = os.path.join(d, files[-1])
        adopted = os.path.join(d, "%d." % (int(files[-1][:-1]) + 50))
        shutil.copyfile(keep, adopted)
        st = os.stat(keep)
        os.chown(adopted, st.st_uid, st.st_gid)
        with open(adopted, "ab") as f:
            f.write(b"adopted with a different size\r\n")
        os.unlink(victim)
        self.tool("reconstruct", "user/qx/a")
        self.assert_exact(c, roots, "coffer reconstruct")

    # ---- M8: two sessions at once

    def test_m8_concurrent_sessions(self):
        setup = self.conn("qc")
        self.ok(setup, "CREATE two")
        self.setquota("user/qc")
        roots = {"user/qc": ("INBOX", ["INBOX", "two"])}
        for i in range(30):
            self.append(setup, "INBOX", msg(300 + i, 200 * (i % 7)))
        errors = []

        def expunger(k):
            try:
                c = self.coffer.connect("imap")
                c.expect(rb"^\* OK")
                c.imap("l", "LOGIN qc %s" % USERS["qc"])
                for rnd in range(6):
                    c.imap("s", "SELECT INBOX")
                    # both sessions flag and expunge overlapping sets: each message is
                    # credited once, by whichever expunge took it
                    c.imap("f", "STORE %d:%d +FLAGS.SILENT (\\Deleted)" % (1 + rnd, 3 + rnd))
                    c.imap("x", "EXPUNGE")
                    data = msg(400 + 10 * k + rnd, 333 * k)
                    c.imap("a", 'APPEND two {%d+}\r\n%s' % (len(data), data.decode()))
                    c.imap("s", "SELECT two")
                    c.imap("m", "MOVE 1 INBOX")
                    c.imap("c", "COPY 1 INBOX")
                c.close()
            except Exception as e:   # noqa: BLE001 - reported below
                errors.append(repr(e))

        def deliverer():
            try:
                for i in range(8):
                    self.lmtp("qc", msg(500 + i, 100 * i))
            except Exception as e:   # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=expunger, args=(k,)) for k in range(2)]
        threads.append(threading.Thread(target=deliverer))
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assert_exact(setup, roots, "two sessions")
        # POP3 and IMAP expunging the same messages: credited once
        self.ok(setup, "SELECT INBOX")
        p = self.coffer.pop3("pop3s")
        p.user("qc")
        p.pass_(USERS["qc"])
        for k in range(1, 6):
            p.dele(k)
        # IMAP takes three of the five first; POP3's QUIT expunges the other two and must
        # credit exactly those
        self.ok(setup, "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        self.ok(setup, "EXPUNGE")
        p.quit()
        self.assert_exact(setup, roots, "POP3 and IMAP on the same messages")

    # ---- M8: POP3 rights

    def test_m8_pop3_rights(self):
        c = self.conn("qr")
        for i in range(3):
            self.lmtp("qr", msg(600 + i, 100))
        # the owner keeps 'a' (and may give back the rest); without 't' and 'e' DELE is refused
        self.ok(c, 'SETACL INBOX qr "lrwipkxa"')
        p = self.coffer.pop3("pop3s")
        p.user("qr")
        p.pass_(USERS["qr"])
        with self.assertRaises(Exception) as ctx:
            p.dele(1)
        self.assertIn("[SYS/PERM]", str(ctx.exception))
        p.retr(2)                                  # no 's': read, but \Seen is not set
        p.quit()
        self.ok(c, "SELECT INBOX")
        flags = b"".join(self.ok(c, "FETCH 1:* (FLAGS)"))
        self.assertNotIn(b"\\Seen", flags)
        self.assertEqual(len(re.findall(rb"\* \d+ FETCH", flags)), 3)
        # 't' alone is not enough: QUIT would expunge, which needs 'e'
        self.ok(c, 'SETACL INBOX qr "lrstwipkxa"')
        p = self.coffer.pop3("pop3s")
        p.user("qr")
        p.pass_(USERS["qr"])
        with self.assertRaises(Exception):
            p.dele(1)
        p.retr(2)
        p.quit()
        self.assertIn(b"\\Seen", b"".join(self.ok(c, "FETCH 2 (FLAGS)")))
        # with every right DELE works again
        self.ok(c, 'SETACL INBOX qr "lrswipkxtea"')
        p = self.coffer.pop3("pop3s")
        p.user("qr")
        p.pass_(USERS["qr"])
        p.dele(1)
        p.quit()
        self.ok(c, "NOOP")
        self.assertEqual(self.counted(c, ["INBOX"])[1], 2)

    # ---- L6: huge limits

    def test_l6_huge_limits(self):
        b = self.conn("boss")
        self.conn("qk")
        # 2^63-1 KiB is a valid RFC 9208 number64, but not as bytes: refused, not overflowed
        tagged = b.imap("s", 'SETQUOTA "Other Users/qk" (STORAGE 9223372036854775807)')[0]
        self.assertRegex(tagged, rb"^s NO \[LIMIT\]")
        r = self.tool("quota", "set", "user/qk", "--storage", "9223372036854775807", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"at most", r.stderr)
        # the largest accepted limit works: appends pass and the SELECT warning does not
        # divide by zero or wrap to a negative percent
        top = (2 ** 63 - 1) // 1024
        self.ok(b, 'SETQUOTA "Other Users/qk" (STORAGE %d MESSAGE 9223372036854775807)' % top)
        q = self.conn("qk")
        self.append(q, "INBOX", msg(700, 100))
        tagged, untagged = q.imap("s", "SELECT INBOX")
        self.assertRegex(tagged, rb"^s OK")
        self.assertNotIn(b"ALERT", b"".join(untagged))
        got = self.ok(q, "GETQUOTA INBOX")[0]
        self.assertIn(b"STORAGE 1 %d MESSAGE 1 9223372036854775807" % top, got)
        # a limit of 0: the warning says 100%, no division by zero
        self.ok(b, 'SETQUOTA "Other Users/qk" (STORAGE 0)')
        tagged, untagged = q.imap("s", "SELECT INBOX")
        self.assertIn(b"100% full", b"".join(untagged))
        self.ok(b, 'SETQUOTA "Other Users/qk" ()')

    # ---- L14: a quota lock that cannot be taken

    def quota_lock_path(self, root):
        """CONFIGDIR/lock/quota/<FNV-1a 64 of the root name> (store/quotalock.h)."""
        h = 0xcbf29ce484222325
        for ch in root.encode():
            h ^= ch
            h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        return os.path.join(self.coffer.configdir, "lock", "quota", "%016x" % h)

    def test_l14_quota_lock_failure(self):
        self.coffer.add_user("ql", "qlpw")
        USERS["ql"] = "qlpw"
        c = self.conn("ql")
        self.ok(c, "CREATE other")
        self.setquota("user/ql")
        self.append(c, "INBOX", msg(900, 100))
        path = self.quota_lock_path("user/ql")
        if os.path.exists(path):
            os.unlink(path)
        os.makedirs(path)          # open(O_RDWR) of a directory fails: the lock cannot be had
        try:
            tagged = c.imap("a", 'APPEND INBOX {%d+}\r\n%s' % (len(msg(901)), msg(901).decode()))[0]
            self.assertRegex(tagged, rb"^a NO \[(SERVERBUG|UNAVAILABLE)\]")
            self.ok(c, "SELECT INBOX")
            self.assertRegex(c.imap("c", "COPY 1 other")[0], rb"^c NO \[(SERVERBUG|UNAVAILABLE)\]")
            b = self.conn("boss")
            self.assertRegex(b.imap("s", 'SETQUOTA "Other Users/ql" (STORAGE 5)')[0],
                             rb"^s NO \[(SERVERBUG|UNAVAILABLE)\]")
            # nothing happened: one message, the old limit
            self.ok(c, "STORE 1 +FLAGS.SILENT (\\Deleted)")
            self.assertRegex(c.imap("x", "EXPUNGE")[0], rb"^x NO \[(SERVERBUG|UNAVAILABLE)\]")
            with self.coffer.lmtp() as l:
                with self.assertRaises(Exception) as ctx:
                    l.sendmail("x@example.com", ["ql@example.com"], msg(902))
                self.assertIn("451", str(ctx.exception))
        finally:
            os.rmdir(path)
        self.assertEqual(self.counted(c, ["INBOX", "other"]), self.db_usage("user/ql"))
        self.assertEqual(self.db_usage("user/ql")[1], 1)
        self.assertIn(b"STORAGE 1 1000000", self.ok(c, "GETQUOTA INBOX")[0])
        self.ok(c, "SELECT INBOX")
        self.ok(c, "EXPUNGE")
        self.assert_exact(c, {"user/ql": ("INBOX", ["INBOX", "other"])}, "lock back")

    # ---- kill -9 of a worker in the middle of an expunge

    def test_m8_kill_mid_expunge(self):
        setup = self.conn("qp")
        self.setquota("user/qp")
        roots = {"user/qp": ("INBOX", ["INBOX"])}
        delays = [0.0, 0.002, 0.01, 0.03, 0.1]
        too_high = 0      # rounds whose kill fell between the index commit and the credit
        for rnd, delay in enumerate(delays):
            for i in range(40):
                self.append(setup, "INBOX", msg(800 + 100 * rnd + i, 50))
            c = self.coffer.connect("imap")
            c.expect(rb"^\* OK")
            c.imap("l", "LOGIN qp %s" % USERS["qp"])
            c.imap("s", "SELECT INBOX")
            c.imap("f", "STORE 1:* +FLAGS.SILENT (\\Deleted)")
            w = self.coffer.worker_for(c)
            self.assertIsNotNone(w)
            c.send(b"x EXPUNGE\r\n")
            time.sleep(delay)
            os.kill(w.pid, signal.SIGKILL)
            c.close()
            time.sleep(0.2)
            # the kill may have made cofferd recover the databases and restart every worker
            setup = self.conn_settled("qp")
            # documented direction: a removal cut short leaves the usage too high, never low
            want = self.counted(setup, ["INBOX"])
            got = self.db_usage("user/qp")
            self.assertGreaterEqual(got[0], want[0], (delay, got, want))
            self.assertGreaterEqual(got[1], want[1], (delay, got, want))
            if got != want:
                too_high += 1
            self.tool("quota", "fix")
            self.assertEqual(self.db_usage("user/qp"), want)
            # whatever the kill left, expunge the rest: exact again
            self.ok(setup, "SELECT INBOX")
            self.ok(setup, "STORE 1:* +FLAGS.SILENT (\\Deleted)")
            self.ok(setup, "CLOSE")
        sys.stderr.write("kill -9 mid-expunge: %d of %d rounds left the usage too high\n"
                         % (too_high, len(delays)))
        self.tool("reconstruct", "user/qp")
        self.assert_exact(setup, roots, "after kill -9")


if __name__ == "__main__":
    main()
