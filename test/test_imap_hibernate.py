"""test_imap_hibernate.py: IDLE hibernation (man/imap-hibernate.8). A session idle in IDLE for
imap_hibernate_timeout moves to the imap-hibernate process and comes back to an imapd worker on
activity, and the client cannot tell: an LMTP delivery wakes it with `* N EXISTS` within the
bound, DONE gets its OK and the session goes on; expunges and flag changes made meanwhile arrive
as a live IDLE sends them (plain, CONDSTORE with MODSEQ, QRESYNC with VANISHED); DONE sent while
asleep; a client that leaves while asleep leaves nothing behind; kill -9 of imap-hibernate drops
only its sessions and cofferd starts another; a process that is not one of cofferd's children
cannot hand a session in; and 500 sessions asleep at once with a pool of 4 imapd workers all
stay and all wake."""
import grp
import os
import pwd
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (CofferTestCase, SharedCofferTestCase, main, pid_alive,  # noqa: E402
                            proc_cmdline, all_pids, server_socket_inode, socket_inodes_of,
                            wait_for)

MSG = (b"From: a@example.com\r\nTo: fred@coffer.test\r\nSubject: hib %d\r\n"
       b"Message-ID: <hib%d@example.com>\r\n\r\nbody\r\n")

HIB_TIMEOUT = "1s"          # imap_hibernate_timeout for the tests
WAKE_BOUND = 1.0            # seconds a woken session may take to show an update (a live IDLE:
                            # well under 0.1 s; the bound leaves room for a loaded machine)


def hibernate_kwargs(tmp_hint=None, maxchild=None):
    """Coffer(...) arguments for an instance with hibernation: the settings, the imap service's
    resume socket and the imap-hibernate service are added by add_hibernation() once the
    instance's temp dir exists."""
    g = {"allow_plaintext": "yes", "auth_fail_delay": "0",
         "imap_hibernate_timeout": HIB_TIMEOUT}
    return {"global_settings": g}


def add_hibernation(coffer, maxchild=None, max_connections=None):
    """Give coffer (not started) the two hand-off sockets and the imap-hibernate service. The
    sockets are made by cofferd (as root, before it drops to the service user), so they get the
    service user's group and mode 0660: only that account (and root) may connect, and the peer
    check refuses everything but cofferd's own children."""
    hsock = os.path.join(coffer.tmp, "imap-hibernate.sock")
    rsock = os.path.join(coffer.tmp, "imap-resume.sock")
    coffer.globals["imap_hibernate_socket"] = hsock
    coffer.globals["imap_hibernate_resume_socket"] = rsock
    if max_connections:
        coffer.globals["imap_hibernate_max_connections"] = str(max_connections)
    group = None
    if coffer.user:
        group = grp.getgrgid(pwd.getpwnam(coffer.user).pw_gid).gr_name
    imap = coffer.services["imap"]
    imap["listen"] = "%s %s" % (imap["listen"], rsock)
    if group:
        imap["socket_group"] = group
    if maxchild:
        imap["maxchild"] = maxchild
    coffer.add_service("hibernate", "imap-hibernate", tls="none", unix=False, write=False)
    coffer.ports.pop("hibernate", None)
    hib = coffer.services["hibernate"]
    hib["listen"] = hsock
    hib["maxchild"] = 1
    hib["prefork"] = 1
    if group:
        hib["socket_group"] = group
    coffer.write_config()
    return hsock, rsock


def hibernate_pid(coffer):
    ws = coffer.workers(program="imap-hibernate")
    return ws[0].pid if ws else None


class HibernateBase(SharedCofferTestCase):
    coffer_kwargs = hibernate_kwargs()
    maxchild = None

    @classmethod
    def setUpClass(cls):
        cls._any_failed = False
        from coffer_harness import Coffer
        cls.coffer = Coffer(**cls.coffer_kwargs)
        try:
            cls.hsock, cls.rsock = add_hibernation(cls.coffer, maxchild=cls.maxchild)
            cls.coffer.start()
            cls.coffer.add_user("fred", "secret")
            cls.coffer.add_user("joe", "secret")
        except BaseException:
            cls.coffer.close()
            raise

    def conn(self, user="fred", select=None, enable=None):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN %s secret" % user)[0], rb"^l OK")
        if enable:
            self.assertRegex(c.imap("e", "ENABLE " + enable)[0], rb"^e OK")
        if select:
            tagged, untagged = c.imap("s", "SELECT " + select)
            self.assertRegex(tagged, rb"^s OK")
        return c

    def admin(self):
        m = self.coffer.imap()
        m.login("fred", "secret")
        return m

    def deliver(self, i, rcpt="fred@coffer.test"):
        lm = self.coffer.lmtp()
        lm.sendmail("a@example.com", [rcpt], MSG % (i, i))
        lm.quit()

    def idle_hibernated(self, c, tag="i1"):
        """Start IDLE on c and wait until the log says the session went to imap-hibernate."""
        since = self.coffer.log_size()
        c.cmd(tag + " IDLE")
        c.expect(rb"^\+ idling")
        self.coffer.wait_log(r"imap-hibernate\[\d+\] info: event=hibernated ", timeout=10, since=since)
        return since


class Hibernate(HibernateBase):

    def test_a_lmtp_wakes_then_session_goes_on(self):
        m = self.admin()
        m.create("a1")
        m.create("a2")
        m.logout()
        c = self.conn(select="INBOX")
        tagged, untagged = c.imap("x", "STATUS INBOX (MESSAGES)")
        n0 = int(re.search(rb"MESSAGES (\d+)", b"".join(untagged)).group(1))
        since = self.idle_hibernated(c)
        # the worker that served it is free: its disconnect line says so
        self.coffer.wait_log(r"imapd\[\d+\] info: event=disconnect .*reason=hibernated", since=since)
        self.deliver(1)
        t0 = time.monotonic()           # from the acknowledged delivery: LMTP is not timed
        c.expect(rb"^\* %d EXISTS\r\n$" % (n0 + 1), timeout=WAKE_BOUND)
        c.expect(rb"^\* %d RECENT\r\n$" % (n0 + 1), timeout=WAKE_BOUND)
        self.assertLess(time.monotonic() - t0, WAKE_BOUND + 0.5)
        self.coffer.wait_log(r"imapd\[\d+\] info: event=wake .*reason=change", since=since)
        c.cmd("DONE")
        tagged, untagged = c.read_tagged("i1")
        self.assertEqual(tagged, b"i1 OK IDLE terminated\r\n")
        self.assertEqual(untagged, [])
        tagged, untagged = c.imap("f", "FETCH %d (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
                                  % (n0 + 1))
        self.assertRegex(tagged, rb"^f OK")
        self.assertIn(b"Subject: hib 1", b"".join(untagged))
        self.assertRegex(c.imap("s", "STORE %d +FLAGS (\\Flagged)" % (n0 + 1))[0], rb"^s OK")
        tagged, untagged = c.imap("s2", "SELECT a1")
        self.assertRegex(tagged, rb"^s2 OK")
        self.assertIn(b"* 0 EXISTS\r\n", untagged)
        # and a second sleep in the other mailbox
        self.idle_hibernated(c, "i2")
        m = self.admin()
        m.append("a1", None, None, MSG % (2, 2))
        m.logout()
        c.expect(rb"^\* 1 EXISTS\r\n$", timeout=WAKE_BOUND)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i2")[0], b"i2 OK IDLE terminated\r\n")
        self.assertEqual(c.imap("n", "LOGOUT")[0], b"n OK LOGOUT completed\r\n")

    def fill(self, mailbox, n, start=100):
        m = self.admin()
        m.create(mailbox)
        for i in range(n):
            m.append(mailbox, None, None, MSG % (start + i, start + i))
        m.logout()

    def test_b_changes_while_asleep_plain(self):
        self.fill("b1", 3)
        c = self.conn(select="b1")
        self.idle_hibernated(c)
        other = self.conn(select="b1")
        since = self.coffer.log_size()
        other.imap("o1", "STORE 1 +FLAGS.SILENT (\\Flagged)")
        c.expect(rb"^\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\)\)\r\n$", timeout=WAKE_BOUND)
        self.idle_hibernated_again(since)
        other.imap("o2", "STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.imap("o3", "EXPUNGE")
        c.expect(rb"^\* 2 EXPUNGE\r\n$", timeout=WAKE_BOUND)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i1"), (b"i1 OK IDLE terminated\r\n", []))
        tagged, untagged = c.imap("f", "FETCH 1:* (UID FLAGS)")
        self.assertRegex(tagged, rb"^f OK")
        self.assertEqual(len(untagged), 2)
        self.assertIn(b"\\Flagged", untagged[0])

    def idle_hibernated_again(self, since):
        """After a wake by a change, the session goes back to sleep once told."""
        self.coffer.wait_log(r"imap-hibernate\[\d+\] info: event=hibernated ", since=since)

    def asleep_count(self):
        """Sessions imap-hibernate holds now, from its last hibernated/wake/disconnect line."""
        n = 0
        for line in self.coffer.log_text().splitlines():
            m = re.search(r"imap-hibernate\[\d+\] info: event=(hibernated|wake) .*sessions=(\d+)",
                          line)
            if m:
                n = int(m.group(2))
        return n

    def test_b_changes_while_asleep_condstore(self):
        self.fill("b2", 3)
        c = self.conn(select="b2", enable="CONDSTORE")
        tagged, untagged = c.imap("h", "STATUS b2 (HIGHESTMODSEQ)")
        self.idle_hibernated(c)
        other = self.conn(select="b2")
        other.imap("o1", "STORE 3 +FLAGS.SILENT (\\Answered)")
        line = c.expect(rb"^\* 3 FETCH \(FLAGS \(\\Answered \\Recent\) MODSEQ \(\d+\)\)\r\n$",
                        timeout=WAKE_BOUND)
        modseq = int(re.search(rb"MODSEQ \((\d+)\)", line.group(0)).group(1))
        other.imap("o2", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        other.imap("o3", "EXPUNGE")
        c.expect(rb"^\* 1 EXPUNGE\r\n$", timeout=WAKE_BOUND)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i1")[0], b"i1 OK IDLE terminated\r\n")
        tagged, untagged = c.imap("f", "FETCH 2 (MODSEQ)")
        self.assertIn(b"MODSEQ (%d)" % modseq, b"".join(untagged))

    def test_b_changes_while_asleep_qresync(self):
        self.fill("b3", 4)
        c = self.conn(enable="QRESYNC")
        tagged, untagged = c.imap("s", "SELECT b3")
        self.assertRegex(tagged, rb"^s OK")
        tagged, untagged = c.imap("u", "UID SEARCH ALL")
        uids = [int(x) for x in b"".join(untagged).split()[2:]]
        self.assertEqual(len(uids), 4)
        self.idle_hibernated(c)
        other = self.conn(select="b3")
        since = self.coffer.log_size()
        other.imap("o1", "STORE 2 +FLAGS.SILENT (\\Deleted)")
        # QRESYNC: a flag change carries UID and MODSEQ (RFC 7162 section 3.2.4)
        c.expect(rb"^\* 2 FETCH \(FLAGS \(\\Deleted \\Recent\) UID %d MODSEQ \(\d+\)\)\r\n$"
                 % uids[1], timeout=WAKE_BOUND)
        self.idle_hibernated_again(since)
        other.imap("o2", "EXPUNGE")
        # and expunges are VANISHED uids (RFC 7162 section 3.2.10)
        c.expect(rb"^\* VANISHED %d\r\n$" % uids[1], timeout=WAKE_BOUND)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i1")[0], b"i1 OK IDLE terminated\r\n")
        tagged, untagged = c.imap("f", "UID FETCH 1:* (FLAGS)")
        self.assertEqual(len(untagged), 3)

    def test_c_done_while_asleep(self):
        c = self.conn(select="INBOX")
        since = self.idle_hibernated(c)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i1"), (b"i1 OK IDLE terminated\r\n", []))
        self.coffer.wait_log(r"imapd\[\d+\] info: event=wake .*reason=input", since=since)
        # pipelined after DONE: both answered in order
        c.cmd("i2 IDLE")
        c.expect(rb"^\+ idling")
        self.coffer.wait_log(r"imap-hibernate\[\d+\] info: event=hibernated .*", since=since)
        c.send(b"DONE\r\nn1 NOOP\r\n")
        self.assertEqual(c.read_tagged("i2")[0], b"i2 OK IDLE terminated\r\n")
        self.assertEqual(c.read_tagged("n1")[0], b"n1 OK NOOP completed\r\n")
        # IDLE in authenticated state sleeps too
        self.assertRegex(c.imap("u", "UNSELECT")[0], rb"^u OK")
        self.idle_hibernated(c, "i3")
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i3")[0], b"i3 OK IDLE terminated\r\n")

    def test_d_disconnect_while_asleep(self):
        hp = hibernate_pid(self.coffer)
        base = len(os.listdir("/proc/%d/fd" % hp))
        c = self.conn(select="INBOX")
        since = self.idle_hibernated(c)
        # the session's socket, and nothing else: the "hibernated" line is logged while the
        # hand-off connection (and the index header looked at after it) are still open
        self.assertIn(server_socket_inode(c.sock), socket_inodes_of(hp))
        wait_for(lambda: len(os.listdir("/proc/%d/fd" % hp)) == base + 1, 5, 0.05,
                 "imap-hibernate to hold the session's descriptor and no other new one")
        c.close()
        self.coffer.wait_log(r"imap-hibernate\[\d+\] info: event=disconnect .*reason=eof "
                             r"hibernated=1", since=since)
        # the line is logged just before the descriptor is closed
        wait_for(lambda: len(os.listdir("/proc/%d/fd" % hp)) == base, 5, 0.05,
                 "imap-hibernate back to its descriptors before the session")
        self.assertEqual(hibernate_pid(self.coffer), hp)


class HibernateKill(HibernateBase):

    def test_e_kill_hibernate(self):
        a = self.conn(select="INBOX")
        b = self.conn("joe", select="INBOX")
        self.idle_hibernated(a)
        self.idle_hibernated(b, "j1")
        awake = self.conn(select="INBOX")     # not asleep: must live on
        hp = hibernate_pid(self.coffer)
        since = self.coffer.log_size()
        os.kill(hp, signal.SIGKILL)
        # its sessions are dropped (the client sees the connection close) ...
        self.assertTrue(a.wait_eof(timeout=5))
        self.assertTrue(b.wait_eof(timeout=5))
        # ... nothing else is ...
        self.assertEqual(awake.imap("n", "NOOP")[0], b"n OK NOOP completed\r\n")
        self.deliver(7)
        # ... and cofferd starts another, which takes sessions again
        self.coffer.wait_log(r"imap-hibernate\[\d+\] info: event=hibernate_ready", since=since)
        self.assertNotEqual(hibernate_pid(self.coffer), hp)
        c = self.conn(select="INBOX")
        self.idle_hibernated(c)
        self.deliver(8)
        c.expect(rb"^\* \d+ EXISTS\r\n$", timeout=WAKE_BOUND)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i1")[0], b"i1 OK IDLE terminated\r\n")


def forged_state(user):
    return ("v 1\nsession forged000001\nuser %s\nauthid %s\nadmin 1\nenabled 0\ntag x\n"
            "deadline 99999999999\nstarted 0\n" % (user, user)).encode()


def handoff_bytes(state, kind):
    return b"CFHO" + struct.pack("<III", 1, kind, len(state)) + state


class HibernateHostile(HibernateBase):

    def forge(self, path, kind):
        """As this test process (root, not a child of cofferd): connect to path and hand it
        one end of a socketpair with a forged session of an administrator. Returns (the other
        end of the pair, the connection)."""
        mine, theirs = socket.socketpair()
        self.addCleanup(mine.close)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.connect(path)
        try:
            socket.send_fds(s, [handoff_bytes(forged_state("fred"), kind)], [theirs.fileno()])
        except (BrokenPipeError, ConnectionResetError):
            pass                                  # refused before it was all sent
        theirs.close()
        return mine, s

    def test_f_forged_hibernate_refused(self):
        since = self.coffer.log_size()
        mine, s = self.forge(self.hsock, 1)
        s.settimeout(5)
        try:                                      # closed (or reset), no acknowledgement
            self.assertEqual(s.recv(1), b"")
        except ConnectionResetError:
            pass
        self.coffer.wait_log(r"imap-hibernate\[\d+\] warning: event=hibernate_refused "
                             r"reason=peer", since=since)
        self.assertNotRegex(self.coffer.log_text(since), r"forged000001")

    def test_f_forged_resume_refused(self):
        since = self.coffer.log_size()
        mine, s = self.forge(self.rsock, 2)
        mine.settimeout(3)
        # the forged session is never served: no answer on it, and it is closed
        self.assertEqual(mine.recv(100), b"")
        self.coffer.wait_log(r"imapd\[\d+\] warning: event=resume_refused reason=peer",
                             since=since)
        self.assertNotRegex(self.coffer.log_text(since), r"forged000001")

    def test_f_socket_permissions(self):
        # only the service user (and root) may even connect: another account gets EACCES
        for path in (self.hsock, self.rsock):
            st = os.stat(path)
            self.assertEqual(st.st_mode & 0o007, 0, path)
        if os.geteuid() != 0:
            self.skipTest("needs root to try another account")
        other = None
        for name in ("daemon", "bin", "sys"):
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                continue
            if pw.pw_uid != 0 and pw.pw_gid != os.stat(self.hsock).st_gid:
                other = pw
                break
        if not other:
            self.skipTest("no other account")
        for path in (self.hsock, self.rsock):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:                          # the child: that account, then connect
                try:
                    os.close(r)
                    os.setgroups([])
                    os.setgid(other.pw_gid)
                    os.setuid(other.pw_uid)
                    s = socket.socket(socket.AF_UNIX)
                    try:
                        s.connect(path)
                        os.write(w, b"connected")
                    except PermissionError:
                        os.write(w, b"EACCES")
                finally:
                    os._exit(0)
            os.close(w)
            with os.fdopen(r, "rb") as f:
                out = f.read()
            os.waitpid(pid, 0)
            self.assertEqual(out, b"EACCES", path)


class HibernateMany(HibernateBase):
    """500 sessions asleep at once while the imap service has 25 workers at most."""
    maxchild = 25
    coffer_kwargs = {"global_settings": dict(hibernate_kwargs()["global_settings"],
                                             max_userip_connections="0",
                                             max_preauth_per_ip="0")}
    N = 500

    def test_g_many_asleep_all_wake(self):
        since = self.coffer.log_size()
        conns = []
        for i in range(self.N):
            c = self.coffer.connect("imap", timeout=120)
            self.addCleanup(c.close)
            # pipelined: the workers take them as they come free
            c.send(b"l LOGIN fred secret\r\ns SELECT INBOX\r\ni IDLE\r\n")
            conns.append(c)
        for c in conns:
            c.expect(rb"^\+ idling", timeout=120)
        deadline = time.monotonic() + 120
        while self.asleep_count(since) < self.N:
            self.assertLess(time.monotonic(), deadline, "only %d asleep" % self.asleep_count(since))
            time.sleep(0.2)
        # far more sessions than imapd workers
        self.assertLessEqual(len(self.coffer.workers(program="imapd")), 2 * 25 + 2)
        t0 = time.monotonic()
        self.deliver(9)
        for c in conns:
            c.expect(rb"^\* \d+ EXISTS\r\n$", timeout=60)
        elapsed = time.monotonic() - t0
        for c in conns:
            c.cmd("DONE")
            self.assertEqual(c.read_tagged("i", timeout=60)[0], b"i OK IDLE terminated\r\n")
            self.assertEqual(c.imap("o", "LOGOUT")[0], b"o OK LOGOUT completed\r\n")
        sys.stderr.write("\n%d sessions woken by one delivery in %.2fs\n" % (self.N, elapsed))

    def asleep_count(self, since):
        n = 0
        for line in self.coffer.log_text(since).splitlines():
            m = re.search(r"imap-hibernate\[\d+\] info: event=(hibernated|wake) .*sessions=(\d+)",
                          line)
            if m:
                n = int(m.group(2))
        return n


if __name__ == "__main__":
    main()
