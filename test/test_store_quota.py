"""test_store_quota.py: quota usage stays exact after any mix of IMAP, POP3, LMTP and tool
operations (issue 12, part 1), also with concurrent sessions and kill -9 in the middle.

Every scenario works on users with quota roots. Afterwards the test counts, on its own, what
each root governs: every mailbox under user/NAME (LIST as an administrator), each message's
RFC822.SIZE read over IMAP by an administrator, grouped by the nearest quota root. That count
must equal the exact usage in quota.db (`coffer quota report`), and GETQUOTA over IMAP; then
`coffer quota fix` must correct nothing and `coffer check` must find no problem in those
mailboxes. A kill -9 is
followed by the master reaping the worker and one ordinary operation (a SELECT), never by a
repair, before the assertion: the usage must be exact after a crash too.

COFFER_QUOTA_ROUNDS (default 3) scales the concurrent and kill -9 rounds."""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (ImapUsersTestCase, main, proc_stat, run_coffer,  # noqa: E402
                            wait_for)

ROUNDS = max(1, int(os.environ.get("COFFER_QUOTA_ROUNDS", "3")))

USERS = {name: name + "pw" for name in (
    "boss", "sqa", "sqc", "sqe", "sqf", "sqf2", "sqp", "sql", "sql2", "sqt", "sqt2", "sqt3",
    "sqr", "sqd", "sqd2", "sqx", "sqw", "ska", "ske", "skl", "skl2", "skp", "sqq")}

BIG = 1000000       # KiB: a limit nothing here reaches


def msg(tag, pad=0):
    """A small message with a unique Message-ID; pad adds that many body bytes."""
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: sq %s\r\n"
            b"Message-ID: <sq.%s@example.com>\r\n\r\nbody %s\r\n" % (
                tag.encode(), tag.encode(), tag.encode())) + b"z" * pad + b"\r\n"


_uniq = [0]
_uniq_lock = threading.Lock()


def uniq(prefix):
    with _uniq_lock:
        _uniq[0] += 1
        return "%s%d" % (prefix, _uniq[0])


class StoreQuota(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {
        "allow_plaintext": "yes", "auth_fail_delay": "0", "admins": "boss",
        "respawn_limit": "10000", "respawn_pause": "1s", "max_literal": "8M"}}

    # ---------------------------------------------------------------- tools

    def tool(self, *args, input=None, ok=True):
        """(exit status, stdout bytes, stderr) of `coffer ARGS`; ok: status 0 is asserted."""
        rc, out, err = run_coffer(self.coffer, *args, input=input)
        if ok:
            self.assertEqual(rc, 0, (args, out[:2000], err[-2000:]))
        return rc, out, err

    def tool_json(self, *args, ok=True):
        rc, out, err = run_coffer(self.coffer, *args, json_out=True)
        if ok:
            self.assertEqual(rc, 0, (args, out[:2000], err[-2000:]))
        return json.loads(out.decode() or "null")

    def spawn_tool(self, *args):
        """`coffer --json ARGS` started in the background; collect() waits for it."""
        cmd = [os.path.join(self.coffer.bindir, "coffer"), "-C", self.coffer.conf_path, "--json"]
        p = subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.coffer.env())
        p.args_ = args
        return p

    def collect(self, p, ok=False):
        """(exit status, stdout bytes, stderr text) of a spawn_tool() process."""
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
        err = err.decode(errors="replace")
        if "Sanitizer" in err or "runtime error" in err:
            raise AssertionError("sanitizer report from coffer %s:\n%s" % (p.args_, err))
        if ok:
            self.assertEqual(p.returncode, 0, (p.args_, out[:2000], err[-2000:]))
        return p.returncode, out, err

    def setquota(self, root, kib=BIG, messages=100000):
        self.tool("quota", "set", root, "--storage", str(kib), "--messages", str(messages))

    # ---------------------------------------------------------------- IMAP helpers

    def login(self, user):
        """A logged-in raw IMAP connection, closed at cleanup."""
        return self.conn(user)

    def append(self, c, box, data, tag="a"):
        tagged = c.imap(tag, 'APPEND "%s" {%d+}\r\n%s' % (box, len(data), data.decode()))[0]
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" OK", (box, tagged))
        return tagged

    def uids(self, c, box):
        self.ok(c, 'SELECT "%s"' % box, "s")
        out = []
        for line in self.ok(c, "UID SEARCH ALL", "u"):
            if line.startswith(b"* SEARCH"):
                out += [int(x) for x in line.split()[2:]]
        return out

    # ---------------------------------------------------------------- LMTP helpers

    def lmtp_raw(self, rcpts, data, mail_from="s@example.com"):
        """One LMTP transaction over a raw socket: ([RCPT codes], [DATA codes, one per
        accepted recipient]). Dot-stuffing is not needed: msg() has no line starting with '.'."""
        c = self.coffer.connect("lmtp")
        try:
            c.read_smtp_reply()
            c.cmd("LHLO quota.test")
            c.read_smtp_reply()
            c.cmd("MAIL FROM:<%s>" % mail_from)
            self.assertEqual(c.read_smtp_reply()[0], 250)
            rc = []
            for r in rcpts:
                c.cmd("RCPT TO:<%s>" % r)
                rc.append(c.read_smtp_reply()[0])
            if not any(x == 250 for x in rc):
                c.cmd("RSET")
                c.read_smtp_reply()
                return rc, []
            c.cmd("DATA")
            self.assertEqual(c.read_smtp_reply()[0], 354)
            c.send(data + b".\r\n")
            dc = [c.read_smtp_reply()[0] for x in rc if x == 250]
            c.cmd("QUIT")
            return rc, dc
        finally:
            c.close()

    def deliver(self, user, data):
        rc, dc = self.lmtp_raw([user], data)
        self.assertEqual((rc, dc), ([250], [250]), user)

    # ---------------------------------------------------------------- the exact count

    @staticmethod
    def owned(name, users):
        """True when the internal name is user/U or below it for one of users."""
        return any(name == "user/" + u or name.startswith("user/%s/" % u) for u in users)

    def roots_of(self, users):
        """{root: (bytes, messages)} from quota.db for every root of these users."""
        return {row["root"]: (int(row["used_bytes"]), int(row["messages"]))
                for row in self.tool_json("quota", "report") if self.owned(row["root"], users)}

    @staticmethod
    def admin_name(name):
        """The IMAP name an administrator uses for the internal name user/U[/...]."""
        return "Other Users/" + name[len("user/"):]

    def count_mailbox(self, c, imap_name):
        """(bytes, messages) of one mailbox: the sum of RFC822.SIZE over its messages; None
        when it cannot be examined (\\Noselect)."""
        tagged, untagged = c.imap("e", 'EXAMINE "%s"' % imap_name)
        if not tagged.startswith(b"e OK"):
            return None
        m = re.search(rb"\* (\d+) EXISTS", b"".join(untagged))
        exists = int(m.group(1)) if m else 0
        total = n = 0
        if exists:
            for line in self.ok(c, "FETCH 1:* (RFC822.SIZE)", "f"):
                mm = re.search(rb"RFC822\.SIZE (\d+)", line)
                if mm:
                    total += int(mm.group(1))
                    n += 1
        self.ok(c, "UNSELECT", "x")
        self.assertEqual(n, exists, (imap_name, "FETCH answered for every message"))
        return total, n

    def exactness(self, users, what):
        """The list of problems (empty when exact). The test counts, as the administrator
        over IMAP, every message of every mailbox of users and charges it to its nearest
        quota root; that must equal quota.db (exact bytes and messages) and GETQUOTA. Then
        `coffer quota fix` must correct nothing and `coffer check` find nothing in these
        users' mailboxes. The fix always runs, so a failing test leaves nothing behind."""
        if isinstance(users, str):
            users = [users]
        problems = []
        # the two read-only tools run beside the IMAP count; the fix comes last
        report = self.spawn_tool("quota", "report")
        check = self.spawn_tool("check")
        have = {row["root"]: (int(row["used_bytes"]), int(row["messages"]))
                for row in json.loads(self.collect(report, ok=True)[1].decode())
                if self.owned(row["root"], users)}
        if not have:
            problems.append("%s: no quota root for %s" % (what, users))
        want = {r: (0, 0) for r in have}
        c = self.raw_login("boss")
        try:
            boxes = set()
            for u in users:
                for line in self.ok(c, 'LIST "" "Other Users/%s*"' % u, "l"):
                    m = re.match(rb'\* LIST \(([^)]*)\) "/" "?Other Users/([^"\r\n]*)"?\r\n',
                                 line)
                    if m and b"\\Noselect" not in m.group(1):
                        name = "user/" + m.group(2).decode()
                        if self.owned(name, users):
                            boxes.add(name)
            for box in sorted(boxes):
                got = self.count_mailbox(c, self.admin_name(box))
                if got is None:
                    continue
                gov = [r for r in have if box == r or box.startswith(r + "/")]
                if gov:
                    r = max(gov, key=len)
                    want[r] = (want[r][0] + got[0], want[r][1] + got[1])
            for root in sorted(want):
                if have[root] != want[root]:
                    problems.append(
                        "%s: %s quota.db says %d bytes in %d messages, the mailboxes hold %d "
                        "bytes in %d (diff %+d bytes, %+d messages)" % (
                            what, root, have[root][0], have[root][1], want[root][0],
                            want[root][1], have[root][0] - want[root][0],
                            have[root][1] - want[root][1]))
                if root not in boxes:
                    continue
                # RFC 9208: only the resources with a limit are listed
                got = b"".join(self.ok(c, 'GETQUOTA "%s"' % self.admin_name(root), "q"))
                kib = (want[root][0] + 1023) // 1024
                for res, n in ((b"STORAGE", kib), (b"MESSAGE", want[root][1])):
                    m = re.search(res + rb" (\d+) \d+", got)
                    if m and int(m.group(1)) != n:
                        problems.append("%s: GETQUOTA %s says %r, want %s %d"
                                        % (what, root, got, res.decode(), n))
            c.imap("z", "LOGOUT")
        finally:
            c.close()
        rc, out, err = self.collect(check)
        fixed = [r for r in self.tool_json("quota", "fix") if self.owned(r["root"], users)]
        if fixed:
            problems.append("%s: coffer quota fix corrected %s" % (what, fixed))
        rows = json.loads(out.decode() or "[]")
        found = [r for r in rows if self.owned(r["mailbox"], users)]
        if found:
            problems.append("%s: coffer check found %s" % (what, found))
        if rc != 0 and not rows:
            problems.append("%s: coffer check exited %d: %s" % (what, rc, err[-500:]))
        return problems

    def setUp(self):
        super().setUp()
        self.problems = []          # what assert_exact found, reported by assert_no_problems
        self.started = time.monotonic()
        self.addCleanup(self._report_time)

    def _report_time(self):
        sys.stderr.write("[%s: %.1f s] " % (self._testMethodName, time.monotonic() - self.started))

    def assert_exact(self, users, what):
        """Record exactness problems and go on (the fix inside exactness() repaired the usage,
        so the next step starts exact): every failing step shows in one run."""
        self.problems += self.exactness(users, what)

    def assert_no_problems(self):
        self.assertEqual(self.problems, [], "%d problems:\n%s" % (
            len(self.problems), "\n".join(self.problems)))

    # ---------------------------------------------------------------- workers and kills

    def worker_of(self, c):
        """The worker serving Conn c (found before the command whose middle it will cut)."""
        return wait_for(lambda: self.coffer.worker_for(c), 5, what="worker of the connection")

    def kill(self, w):
        """SIGKILL worker w and wait until the master has reaped it."""
        try:
            os.kill(w.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_for(lambda: proc_stat(w.pid) is None, 10, what="master reaping %d" % w.pid)

    def wait_service(self, service):
        """Until a respawned worker greets on service again."""
        wait_for(lambda: self._greets(service), 15, 0.1, "%s to greet again" % service)

    def _greets(self, service):
        try:
            self.coffer.greet(service, timeout=3)
            return True
        except (OSError, EOFError, AssertionError):
            return False

    # ================================================================ IMAP

    def test_imap_append_and_multiappend(self):
        u = "sqa"
        c = self.login(u)
        self.ok(c, "CREATE f")
        self.setquota("user/" + u)
        for i in range(3):
            self.append(c, "INBOX", msg(uniq("a"), 1000 * i))
        self.append(c, "f", msg(uniq("a"), 333))
        self.assert_exact(u, "APPEND")
        # MULTIAPPEND (RFC 3502): three messages in one command, one commit
        parts = [msg(uniq("m"), 200 * k) for k in range(3)]
        text = "INBOX " + " ".join("{%d+}\r\n%s" % (len(p), p.decode()) for p in parts)
        tagged = c.imap("m", "APPEND " + text)[0]
        self.assertRegex(tagged, rb"^m OK")
        self.assert_exact(u, "MULTIAPPEND")
        # over the limit: refused whole, nothing charged
        used = self.roots_of([u])["user/" + u][0]
        self.setquota("user/" + u, kib=(used + 1023) // 1024 + 2)
        big = msg(uniq("big"), 5000)
        self.assertRegex(c.imap("b", 'APPEND INBOX {%d+}\r\n%s' % (len(big), big.decode()))[0],
                         rb"^b NO \[OVERQUOTA\]")
        parts = [msg(uniq("m"), 1000), msg(uniq("m"), 1500)]
        text = "f " + " ".join("{%d+}\r\n%s" % (len(p), p.decode()) for p in parts)
        self.assertRegex(c.imap("m", "APPEND " + text)[0], rb"^m NO \[OVERQUOTA\]")
        self.assert_exact(u, "APPEND and MULTIAPPEND over quota")
        # message limit
        n = self.roots_of([u])["user/" + u][1]
        self.setquota("user/" + u, messages=n)
        one = msg(uniq("one"))
        self.assertRegex(c.imap("b", 'APPEND INBOX {%d+}\r\n%s' % (len(one), one.decode()))[0],
                         rb"^b NO \[OVERQUOTA\]")
        self.setquota("user/" + u)
        self.assert_exact(u, "APPEND over the message limit")
        self.assert_no_problems()

    def test_imap_copy_move(self):
        u = "sqc"
        c = self.login(u)
        for box in ("a", "b", "arch"):
            self.ok(c, "CREATE %s" % box)
        self.setquota("user/" + u)
        self.setquota("user/%s/arch" % u)          # a nearer root: crossing roots
        for i in range(6):
            self.append(c, "a", msg(uniq("c"), 700 * i))
        self.assert_exact(u, "appends")
        self.ok(c, "SELECT a")
        self.ok(c, "COPY 1:3 b")
        self.assert_exact(u, "COPY within a root")
        self.ok(c, "COPY 4:5 arch")
        self.assert_exact(u, "COPY to another root")
        self.ok(c, "SELECT a")
        self.ok(c, "MOVE 1 b")
        self.assert_exact(u, "MOVE within a root")
        self.ok(c, "SELECT a")
        uid = self.uids(c, "a")[0]
        self.ok(c, "UID MOVE %d arch" % uid)
        self.assert_exact(u, "UID MOVE to another root")
        self.ok(c, "SELECT arch")
        self.ok(c, "UID MOVE 1:* INBOX")
        self.assert_exact(u, "UID MOVE back from the nearer root")
        # over quota: COPY and MOVE into a full root are refused, nothing moves
        self.setquota("user/%s/arch" % u, kib=1)
        self.ok(c, "SELECT b")
        self.assertRegex(c.imap("c", "COPY 1:* arch")[0], rb"^c NO \[OVERQUOTA\]")
        self.assertRegex(c.imap("m", "MOVE 1:* arch")[0], rb"^m NO \[OVERQUOTA\]")
        self.setquota("user/%s/arch" % u)
        self.assert_exact(u, "COPY and MOVE over quota")
        self.assert_no_problems()

    def test_imap_expunge_paths(self):
        u = "sqe"
        c = self.login(u)
        self.ok(c, "CREATE x")
        self.setquota("user/" + u)
        for i in range(8):
            self.append(c, "INBOX", msg(uniq("e"), 400 * i))
        for i in range(3):
            self.append(c, "x", msg(uniq("e"), 900))
        self.assert_exact(u, "appends")
        self.ok(c, "SELECT INBOX")
        self.ok(c, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        self.assert_exact(u, "STORE \\Deleted (still charged)")
        self.ok(c, "SELECT INBOX")
        self.ok(c, "EXPUNGE")
        self.assert_exact(u, "EXPUNGE")
        self.ok(c, "SELECT INBOX")
        self.ok(c, "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        uids = self.uids(c, "INBOX")
        self.ok(c, "UID EXPUNGE %d,%d" % (uids[0], uids[2]))
        self.assert_exact(u, "UID EXPUNGE of two of three \\Deleted")
        self.ok(c, "SELECT INBOX")
        self.ok(c, "STORE 1:* +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "CLOSE")
        self.assert_exact(u, "CLOSE")
        # EXAMINE + CLOSE expunges nothing; UNSELECT neither
        self.ok(c, "SELECT x")
        self.ok(c, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "UNSELECT")
        self.ok(c, "EXAMINE x")
        self.ok(c, "CLOSE")
        self.assert_exact(u, "UNSELECT and read-only CLOSE")
        # an expunge in one session while another session has the mailbox selected
        other = self.login(u)
        self.ok(other, "SELECT x")
        self.ok(c, "SELECT x")
        self.ok(c, "EXPUNGE")
        self.ok(other, "STORE 1:* +FLAGS.SILENT (\\Deleted)")
        self.ok(other, "EXPUNGE")
        self.assert_exact(u, "EXPUNGE from two sessions")
        self.assert_no_problems()

    def test_imap_folders(self):
        u, v = "sqf", "sqf2"
        c = self.login(u)
        self.login(v)           # provisions user/sqf2
        for box in ("tmp", "keep", "par", "par/kid", "par/kid/deep"):
            self.ok(c, "CREATE %s" % box)
        self.setquota("user/" + u)
        self.setquota("user/" + v)
        for box in ("INBOX", "tmp", "keep", "par", "par/kid", "par/kid/deep"):
            for i in range(2):
                self.append(c, box, msg(uniq("f"), 300 * (i + 1)))
        self.assert_exact([u, v], "appends")
        self.ok(c, "DELETE tmp")
        self.assert_exact([u, v], "DELETE of a folder holding messages")
        self.ok(c, "CREATE tmp")
        self.append(c, "tmp", msg(uniq("f"), 50))
        self.assert_exact([u, v], "CREATE again and APPEND")
        self.ok(c, "RENAME keep kept")
        self.assert_exact([u, v], "RENAME within the root")
        self.ok(c, "RENAME par moved")        # with its children
        self.assert_exact([u, v], "RENAME of a folder with children")
        # DELETE of a folder that has children: its messages go, the children stay
        c.imap("d", "DELETE moved")
        self.assert_exact([u, v], "DELETE of a folder with children")
        # RENAME INBOX: its messages move to a new folder, INBOX stays (empty)
        self.ok(c, "RENAME INBOX oldinbox")
        self.assert_exact([u, v], "RENAME INBOX")
        # into another user's namespace (an administrator may)
        b = self.login("boss")
        tagged = b.imap("r", 'RENAME "Other Users/%s/kept" "Other Users/%s/fromf"' % (u, v))[0]
        self.assert_exact([u, v], "RENAME into another user's namespace (%s)" % tagged.strip())
        tagged = b.imap("r", 'RENAME "Other Users/%s/moved/kid" "Other Users/%s/kid"' % (u, v))[0]
        self.assert_exact([u, v], "RENAME of a subtree into another user (%s)" % tagged.strip())
        tagged = b.imap("d", 'DELETE "Other Users/%s/oldinbox"' % u)[0]
        self.assert_exact([u, v], "admin DELETE (%s)" % tagged.strip())
        self.assert_no_problems()

    # ================================================================ POP3

    def pop3(self, user):
        p = self.coffer.pop3("pop3s")
        p.user(user)
        p.pass_(USERS[user])
        return p

    def test_pop3(self):
        u = "sqp"
        c = self.login(u)
        self.setquota("user/" + u)
        for i in range(6):
            self.deliver(u, msg(uniq("p"), 500 * i))
        self.assert_exact(u, "deliveries")
        # DELE + RSET + QUIT: nothing goes
        p = self.pop3(u)
        p.dele(1)
        p.dele(2)
        p.rset()
        p.quit()
        self.assert_exact(u, "DELE + RSET + QUIT")
        # DELE, then the connection drops without QUIT: nothing goes
        p = self.pop3(u)
        p.dele(1)
        p.dele(3)
        p.sock.shutdown(socket.SHUT_RDWR)
        p.close()
        time.sleep(0.3)
        self.assert_exact(u, "DELE then a dropped connection")
        # DELE + QUIT: exactly those go
        p = self.pop3(u)
        p.dele(2)
        p.dele(4)
        p.quit()
        self.ok(c, "SELECT INBOX")
        self.assertEqual(self.count_mailbox(c, "INBOX")[1], 4)
        self.assert_exact(u, "DELE + QUIT")
        # all of them, with IMAP expunging some at the same time
        p = self.pop3(u)
        for k in range(1, p.stat()[0] + 1):
            p.dele(k)
        self.ok(c, "SELECT INBOX")
        self.ok(c, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "EXPUNGE")
        p.quit()
        self.assert_exact(u, "POP3 QUIT of every message, two already expunged over IMAP")
        self.assert_no_problems()

    # ================================================================ LMTP

    def test_lmtp(self):
        u, v = "sql", "sql2"
        c = self.login(u)
        self.login(v)
        self.ok(c, "CREATE drop")
        self.ok(c, 'SETACL drop anyone "p"')
        self.setquota("user/" + u)
        self.setquota("user/" + v)
        self.deliver(u, msg(uniq("l"), 100))
        self.assert_exact([u, v], "one delivery")
        # several recipients, one of them twice, one to a folder
        rc, dc = self.lmtp_raw([u, v, u, u + "+drop"], msg(uniq("l"), 2000))
        self.assertEqual(rc, [250, 250, 250, 250])
        self.assertTrue(all(x == 250 for x in dc), dc)
        self.assert_exact([u, v], "one transaction to several recipients")
        # duplicate suppression: the same Message-ID again is not stored again
        dup = msg(uniq("dup"), 700)
        self.deliver(u, dup)
        self.deliver(u, dup)
        rc, dc = self.lmtp_raw([u, v], dup)
        self.assertEqual(rc, [250, 250])
        self.assert_exact([u, v], "duplicate deliveries")
        # over quota: refused for that recipient only, nothing charged for it
        used = self.roots_of([u])["user/" + u][0]
        self.setquota("user/" + u, kib=(used + 1023) // 1024 + 1)
        rc, dc = self.lmtp_raw([u, v], msg(uniq("over"), 6000))
        codes = [x for x in rc if x != 250] + dc
        self.assertTrue(any(x in (452, 552) for x in codes), (rc, dc))
        self.assertIn(250, dc)
        self.assert_exact([u, v], "delivery over quota")
        n = self.roots_of([u])["user/" + u][1]
        self.setquota("user/" + u, messages=n)
        rc, dc = self.lmtp_raw([u], msg(uniq("over"), 10))
        self.assertTrue(any(x in (452, 552) for x in rc + dc), (rc, dc))
        self.setquota("user/" + u)
        self.assert_exact([u, v], "delivery over the message limit")
        # coffer deliver (the tool speaks LMTP to the running lmtpd)
        rc, out, err = self.tool("deliver", "-m", "drop", u, input=msg(uniq("tool"), 1234))
        self.assert_exact([u, v], "coffer deliver")
        self.assert_no_problems()

    # ================================================================ tools

    def test_tool_mailbox_commands(self):
        u, v, w = "sqt", "sqt2", "sqt3"
        c = self.login(u)
        self.login(v)
        self.setquota("user/" + u)
        self.setquota("user/" + v)
        self.tool("mailbox", "create", "user/%s/made" % u)
        self.tool("mailbox", "create", "user/%s/tree/a/b" % u)
        for box in ("made", "tree", "tree/a", "tree/a/b", "INBOX"):
            for i in range(2):
                self.append(c, box, msg(uniq("t"), 250 * (i + 2)))
        self.assert_exact([u, v], "coffer mailbox create and APPEND")
        self.tool("mailbox", "rename", "user/%s/made" % u, "user/%s/renamed" % u)
        self.assert_exact([u, v], "coffer mailbox rename within the root")
        self.tool("mailbox", "rename", "user/%s/renamed" % u, "user/%s/given" % v)
        self.assert_exact([u, v], "coffer mailbox rename into another root")
        self.tool("mailbox", "delete", "user/%s/tree/a" % u)
        self.assert_exact([u, v], "coffer mailbox delete of a folder with a child")
        self.tool("mailbox", "delete", "-r", "user/%s/tree" % u)
        self.assert_exact([u, v], "coffer mailbox delete -r")
        # a whole user renamed: the root goes with it
        self.tool("mailbox", "create", "user/%s/last" % u)
        self.append(c, "last", msg(uniq("t"), 3000))
        c.imap("z", "LOGOUT")
        self.tool("mailbox", "rename", "user/" + u, "user/" + w)
        self.assert_exact([u, v, w], "coffer mailbox rename of a user")
        self.assert_no_problems()

    def test_tool_quota_roots(self):
        u = "sqq"
        c = self.login(u)
        for box in ("sub", "sub/inner", "other"):
            self.ok(c, "CREATE %s" % box)
        self.setquota("user/" + u)
        for box in ("INBOX", "sub", "sub/inner", "other"):
            for i in range(2):
                self.append(c, box, msg(uniq("q"), 800 * (i + 1)))
        self.assert_exact(u, "appends")
        # a new nearer root takes its mailboxes' usage from the old one
        self.setquota("user/%s/sub" % u)
        self.assert_exact(u, "coffer quota set of a nearer root")
        self.append(c, "sub/inner", msg(uniq("q"), 100))
        self.assert_exact(u, "APPEND under the nearer root")
        b = self.login("boss")
        self.ok(b, 'SETQUOTA "Other Users/%s/other" (STORAGE %d)' % (u, BIG))
        self.assert_exact(u, "SETQUOTA of another nearer root")
        # the nearer root removed: its usage returns to the outer root
        self.tool("quota", "delete", "user/%s/sub" % u)
        self.assert_exact(u, "coffer quota delete of the nearer root")
        self.ok(b, 'SETQUOTA "Other Users/%s/other" ()' % u)
        self.assert_exact(u, "SETQUOTA () of the other nearer root")
        self.assert_no_problems()

    def mailbox_dir(self, name):
        row = [r for r in self.tool_json("mailbox", "list", name) if r["mailbox"] == name][0]
        uid = row["uniqueid"]
        return os.path.join(self.coffer.spool, uid[:2], uid)

    def test_tool_reconstruct_and_expire(self):
        u = "sqr"
        c = self.login(u)
        self.ok(c, "CREATE r")
        self.setquota("user/" + u)
        for i in range(5):
            self.append(c, "r", msg(uniq("r"), 1100 * (i + 1)))
            self.deliver(u, msg(uniq("r"), 90 * i))
        self.assert_exact(u, "appends")
        # expunged records are repacked away; usage does not move
        self.ok(c, "SELECT INBOX")
        self.ok(c, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "EXPUNGE")
        self.ok(c, "SELECT r")
        self.ok(c, "STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "EXPUNGE")
        self.ok(c, "UNSELECT")
        self.tool("expire")
        self.assert_exact(u, "coffer expire")
        # in r (UIDs 1 3 4 5 left): the file of UID 1 goes (record dropped), UID 3's file
        # grows (size fixed), a file for the expunged UID 2 appears (adopted)
        d = self.mailbox_dir("user/%s/r" % u)
        st = os.stat(os.path.join(d, "5."))
        os.unlink(os.path.join(d, "1."))
        with open(os.path.join(d, "3."), "ab") as f:
            f.write(b"grown by the test\r\n" * 7)
        shutil.copyfile(os.path.join(d, "5."), os.path.join(d, "2."))
        os.chown(os.path.join(d, "2."), st.st_uid, st.st_gid)
        self.tool("reconstruct", "user/%s/r" % u)
        self.assert_exact(u, "coffer reconstruct of changed files")
        self.tool("reconstruct", "--user", u)
        self.tool("reconstruct", "--all")
        self.assert_exact(u, "coffer reconstruct --user and --all on clean mailboxes")
        self.assert_no_problems()

    def test_tool_dump_restore(self):
        u, v = "sqd", "sqd2"
        c = self.login(u)
        self.ok(c, "CREATE d")
        self.ok(c, "CREATE d/e")
        self.setquota("user/" + u, kib=50000, messages=1000)
        for box in ("INBOX", "d", "d/e"):
            for i in range(3):
                self.append(c, box, msg(uniq("d"), 600 * i))
        self.ok(c, "SELECT d")
        self.ok(c, "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "EXPUNGE")
        self.assert_exact(u, "appends")
        rc, dump, err = self.tool("dump", u)
        # into a new name (the target's INBOX does not exist yet)
        self.tool("restore", "--user", v, input=dump)
        self.assert_exact([u, v], "coffer restore --user")
        # wipe and restore in place
        c.imap("z", "LOGOUT")
        self.tool("mailbox", "delete", "-r", "user/" + u)
        self.assert_exact([v], "coffer mailbox delete -r of a whole user")
        self.tool("restore", input=dump)
        self.assert_exact([u, v], "coffer restore in place")
        c = self.login(u)
        self.append(c, "d/e", msg(uniq("d"), 10))
        self.assert_exact([u, v], "APPEND after restore")
        self.assert_no_problems()

    # ================================================================ concurrency

    def test_concurrent_sessions(self):
        u = "sqx"
        setup = self.login(u)
        for box in ("two", "drop"):
            self.ok(setup, "CREATE %s" % box)
        self.ok(setup, 'SETACL drop anyone "p"')
        self.setquota("user/" + u)
        for i in range(12):
            self.append(setup, "INBOX", msg(uniq("x"), 150 * (i % 5)))
        setup.imap("z", "LOGOUT")
        errors = []
        rounds = 3 * ROUNDS
        rnd = random.Random(12)

        def guard(fn):
            def run(*a):
                try:
                    fn(*a)
                except Exception as e:   # noqa: BLE001 - reported below
                    errors.append("%s: %r" % (fn.__name__, e))
            return run

        def imap_worker(k):
            c = self.coffer.connect("imap")
            c.expect(rb"^\* OK")
            c.imap("l", "LOGIN %s %s" % (u, USERS[u]))
            for r in range(rounds):
                box = ("INBOX", "two")[(r + k) % 2]
                data = msg(uniq("cx%d" % k), 97 * ((r * 7 + k) % 11))
                if r % 3 == 0:
                    parts = [data, msg(uniq("cm%d" % k), 31 * r)]
                    c.imap("a", "APPEND %s " % box + " ".join(
                        "{%d+}\r\n%s" % (len(p), p.decode()) for p in parts))
                else:
                    c.imap("a", 'APPEND %s {%d+}\r\n%s' % (box, len(data), data.decode()))
                c.imap("s", "SELECT %s" % box)
                c.imap("c", "COPY 1:2 %s" % ("two" if box == "INBOX" else "INBOX"))
                c.imap("f", "STORE %d:%d +FLAGS.SILENT (\\Deleted)" % (1 + k, 2 + k + r % 3))
                if r % 2:
                    c.imap("x", "EXPUNGE")
                else:
                    c.imap("m", "MOVE 3 %s" % ("two" if box == "INBOX" else "INBOX"))
                    c.imap("x", "CLOSE")
            c.imap("z", "LOGOUT")
            c.close()

        def lmtp_worker():
            for r in range(rounds):
                rcpts = [u] if r % 2 else [u, u + "+drop"]
                rc, dc = self.lmtp_raw(rcpts, msg(uniq("cl"), 211 * (r % 4)))
                if rc[0] != 250:
                    raise AssertionError("RCPT %r" % rc)

        def pop3_worker():
            for r in range(ROUNDS):
                try:
                    p = self.pop3(u)
                except Exception as e:   # noqa: BLE001 - the maildrop may be in use
                    if "IN-USE" in str(e) or "LOCK" in str(e).upper():
                        time.sleep(0.1)
                        continue
                    raise
                n = p.stat()[0]
                for k in sorted(set(rnd.randint(1, n) for _ in range(3))) if n else []:
                    p.dele(k)
                if r % 3 == 2:
                    p.rset()
                p.quit()

        def tool_worker():
            for r in range(ROUNDS):
                self.tool("expire")
                rc, out, err = run_coffer(self.coffer, "reconstruct", "--user", u)
                if rc != 0:
                    raise AssertionError("reconstruct --user: %d %s" % (rc, err[-300:]))

        threads = [threading.Thread(target=guard(imap_worker), args=(k,)) for k in range(3)]
        threads += [threading.Thread(target=guard(f)) for f in
                    (lmtp_worker, lmtp_worker, pop3_worker, tool_worker)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "a thread did not finish")
        self.assertEqual(errors, [])
        self.assert_exact(u, "IMAP, LMTP, POP3 and tools at once")
        self.assert_no_problems()

    # ================================================================ kill -9

    def raw_login(self, user, box=None):
        """A logged-in raw IMAP connection (closed by the caller)."""
        c = self.coffer.connect("imap")
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN %s %s" % (user, USERS[user]))[0], rb"^l OK")
        if box:
            self.ok(c, 'SELECT "%s"' % box, "s")
        return c

    def touch(self, user, box):
        """The one ordinary operation allowed after a kill: a session of user SELECTs box
        (where a store that recovers at open would recover) and logs out."""
        c = self.raw_login(user, box)
        c.imap("z", "LOGOUT")
        c.close()

    KILL_DELAYS = [0.0, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.03, 0.06]
    AFTER_COMMIT = [0.0, 0.0001, 0.00005, 0.0002, 0.0, 0.0003]

    @staticmethod
    def index_stat(index_path):
        """The two header slots of a mailbox index (offsets 0 and 512, coffer-store(5)): a
        commit is the write of one of them."""
        try:
            with open(index_path, "rb") as f:
                head = f.read(640)
        except FileNotFoundError:
            return None
        return head[0:128] + head[512:640]

    def arm(self, index_path):
        """Before sending the command to be cut: what the mailbox index looks like now."""
        return index_path, self.index_stat(index_path)

    def fire(self, w, armed):
        """SIGKILL worker w in this round's way: odd rounds aim at the window between the
        index commit and the quota change (spin until a header slot of the index changes,
        then wait a few hundred microseconds at most); even rounds kill after a plain
        delay."""
        targeted, delay = self._kill_mode
        if targeted:
            path, before = armed
            deadline = time.monotonic() + 10
            while self.index_stat(path) == before and time.monotonic() < deadline:
                pass
            self._kill_what = "%.2f ms after the index commit" % (delay * 1000)
        else:
            self._kill_what = "%.1f ms after the command" % (delay * 1000)
        if delay:
            time.sleep(delay)
        self.kill(w)

    def kill_rounds(self, users, scenario, what):
        """Run scenario(round) 2*ROUNDS times; each sends a command and cuts it with fire().
        After each round check exactness, with nothing in between but the master reaping the
        worker, the service greeting again and one SELECT of the mailbox (touch), never a
        repair. Fails at the end with the problems of every round."""
        rnd = random.Random(what)
        n = 2 * ROUNDS
        bad = 0
        for r in range(n):
            if r % 2:
                self._kill_mode = (True, self.AFTER_COMMIT[(r // 2) % len(self.AFTER_COMMIT)])
            else:
                self._kill_mode = (False, self.KILL_DELAYS[(r // 2) % len(self.KILL_DELAYS)]
                                   * (0.5 + rnd.random()))
            self.round_cut_by_recovery(scenario, r)
            p = self.round_cut_by_recovery(
                lambda r: self.exactness(users, "%s, round %d, killed %s" % (
                    what, r, self._kill_what)), r)
            bad += bool(p)
            self.problems += p
            if p:
                # after the assertion: repair what check found, so the next round's report
                # is its own (the quota was repaired by the fix inside exactness)
                for u in users:
                    self.tool("reconstruct", "--user", u)
        self.assertEqual(self.problems, [], "%d of %d rounds not exact after kill -9:\n%s" % (
            bad, n, "\n".join(self.problems)))

    def round_cut_by_recovery(self, scenario, r, attempts=3):
        """scenario(r), again when a recovery restart cut its sessions: a worker killed inside
        Berkeley DB makes cofferd stop every worker, recover and start again (cofferd(8)),
        which closes the round's other connections too and makes a coffer tool running then
        exit 5. Anything else fails the round. Returns what scenario returns."""
        for attempt in range(attempts):
            mark = self.coffer.log_size()
            try:
                return scenario(r)
            except (OSError, EOFError, AssertionError):
                if attempt == attempts - 1 or not self.coffer.log_grep(
                        r"event=db_recovery_restart", mark):
                    raise
                self.coffer.wait_log(r"event=db_recovered workers=restarting", 30, mark)

    def index_path(self, name):
        return os.path.join(self.mailbox_dir(name), "index")

    @staticmethod
    def multiappend_text(box, parts):
        return "APPEND %s " % box + " ".join("{%d+}\r\n%s" % (len(p), p.decode()) for p in parts)

    def test_kill_mid_append(self):
        u = "ska"
        setup = self.login(u)
        self.ok(setup, "CREATE f")
        self.setquota("user/" + u)
        self.append(setup, "INBOX", msg(uniq("k"), 10))
        index = {"f": self.index_path("user/%s/f" % u), "INBOX": self.index_path("user/" + u)}

        def scenario(r):
            c = self.raw_login(u)
            box = "f" if (r // 2) % 2 else "INBOX"
            if box == "f":
                data = self.multiappend_text("f", [msg(uniq("ka"), 3000 + 100 * k)
                                                   for k in range(20)]).encode()
            else:
                one = msg(uniq("ka"), 200000)
                data = b'APPEND INBOX {%d+}\r\n' % len(one) + one
            w = self.worker_of(c)
            armed = self.arm(index[box])
            c.send(b"a " + data + b"\r\n")
            self.fire(w, armed)
            c.close()
            self.wait_service("imap")
            self.touch(u, box)

        self.kill_rounds([u], scenario, "kill -9 mid-APPEND")

    def test_kill_mid_expunge(self):
        u = "ske"
        setup = self.login(u)
        self.ok(setup, "CREATE t")
        self.setquota("user/" + u)
        index = {"t": self.index_path("user/%s/t" % u), "INBOX": self.index_path("user/" + u)}

        setup.close()

        def scenario(r):
            box = ("INBOX", "t")[(r // 2) % 2]
            setup = self.conn_settled(u)
            self.ok(setup, self.multiappend_text(box, [msg(uniq("ke"), 50 * k)
                                                       for k in range(40)]))
            setup.close()
            c = self.raw_login(u, box)
            self.ok(c, "STORE 1:* +FLAGS.SILENT (\\Deleted)")
            w = self.worker_of(c)
            armed = self.arm(index[box])
            kind = r % 3
            if kind == 0:
                c.send(b"x EXPUNGE\r\n")
            elif kind == 1:
                c.send(b"x CLOSE\r\n")
            else:
                c.send(b"x MOVE 1:* %s\r\n" % (b"t" if box == "INBOX" else b"INBOX"))
            self.fire(w, armed)
            c.close()
            self.wait_service("imap")
            self.touch(u, box)

        self.kill_rounds([u], scenario, "kill -9 mid-EXPUNGE/CLOSE/MOVE")

    def test_kill_mid_pop3_quit(self):
        u = "skp"
        self.login(u)
        self.setquota("user/" + u)
        index = self.index_path("user/" + u)

        def scenario(r):
            for k in range(3):
                rc, dc = self.lmtp_raw([u], msg(uniq("kp"), 20 * k))
            setup = self.conn_settled(u)
            self.ok(setup, self.multiappend_text("INBOX", [msg(uniq("kp"), 20 * k)
                                                           for k in range(27)]))
            setup.close()
            c = self.coffer.connect("pop3")
            c.expect(rb"^\+OK")
            c.cmd("USER %s" % u)
            c.expect(rb"^\+OK")
            c.cmd("PASS %s" % USERS[u])
            c.expect(rb"^\+OK")
            for k in range(1, 31):
                c.cmd("DELE %d" % k)
            for k in range(1, 31):
                c.expect(rb"^\+OK")
            w = self.worker_of(c)
            armed = self.arm(index)
            c.cmd("QUIT")
            self.fire(w, armed)
            c.close()
            self.wait_service("pop3")
            self.touch(u, "INBOX")

        self.kill_rounds([u], scenario, "kill -9 mid-POP3 QUIT")

    def test_kill_mid_lmtp_data(self):
        u, v = "skl", "skl2"
        self.login(u)
        self.login(v)
        self.setquota("user/" + u)
        self.setquota("user/" + v)
        index = self.index_path("user/" + u)

        def scenario(r):
            c = self.coffer.connect("lmtp")
            c.read_smtp_reply()
            c.cmd("LHLO kill.test")
            c.read_smtp_reply()
            rcpts = [u, v] if (r // 2) % 2 else [u]
            c.cmd("MAIL FROM:<k@example.com>")
            for x in rcpts:
                c.cmd("RCPT TO:<%s>" % x)
            c.cmd("DATA")
            for _ in range(len(rcpts) + 2):
                c.read_smtp_reply()
            body = msg(uniq("kl"), 60000 + 1000 * r) + b".\r\n"
            w = self.worker_of(c)
            armed = self.arm(index)
            c.send(body)
            self.fire(w, armed)
            c.close()
            self.wait_service("lmtp")
            self.touch(u, "INBOX")

        self.kill_rounds([u, v], scenario, "kill -9 mid-LMTP DATA")


if __name__ == "__main__":
    main()
