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
                            proc_cmdline, all_pids)

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
        t0 = time.monotonic()
        self.deliver(1)
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


if __name__ == "__main__":
    main()
