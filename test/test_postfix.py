"""test_postfix.py: a real MTA in front of Coffer (issue 17). A private Postfix instance that
this test configures and starts itself (its own config_directory, queue_directory and
data_directory in a temp dir, smtpd on a free loopback port, a maillog_file; nothing of the
system's Postfix is used or changed) delivers to Coffer over LMTP: local recipients through
`mailbox_transport = lmtp:unix:SOCKET`, a virtual domain through `virtual_transport =
lmtp:inet:127.0.0.1:PORT`. Mail submitted by SMTP reaches the INBOX; a recipient over quota is
deferred (452 4.2.2) and delivered by `postqueue -f` once the quota is raised; an unknown user
bounces (550 5.1.1). The main.cf lines of README.md and lmtpd(8) are the ones used here.
Skipped when Postfix is not installed (scripts/deps.sh installs it) or not run as root."""
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (HOST, CofferTestCase, free_port, main, run_coffer,  # noqa: E402
                            wait_for)

POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"

# master.cf: the services a Postfix that receives by SMTP and delivers by LMTP needs, none
# chrooted (the LMTP socket is outside the queue directory)
MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

# main.cf: the Coffer lines (as in README.md and lmtpd(8)) and what makes the instance private
MAIN_CF = """\
compatibility_level = 3.6
# --- delivery to Coffer
mailbox_transport = lmtp:unix:{sock}
virtual_transport = lmtp:inet:{host}:{lmtp_port}
lmtp_destination_recipient_limit = 100
# --- this instance: its own directories, loopback only, nothing sent out
queue_directory = {queue}
data_directory = {data}
maillog_file = {maillog}
maillog_file_prefixes = {pf}
myhostname = mx.coffer.test
mydomain = coffer.test
myorigin = coffer.test
mydestination = coffer.test
virtual_mailbox_domains = virt.coffer.test
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# every local part is handed to Coffer, which knows its users (lmtpd answers 550 5.1.1)
local_recipient_maps =
smtpd_reject_unlisted_recipient = no
alias_maps =
alias_database =
default_transport = error:this test sends no mail out
relay_transport = error:this test sends no mail out
smtputf8_enable = no
biff = no
# a deferred message waits for `postqueue -f`, not for a retry of Postfix's own
queue_run_delay = 1h
minimal_backoff_time = 1h
maximal_backoff_time = 2h
"""


@unittest.skipUnless(os.geteuid() == 0, "a private Postfix instance needs root")
@unittest.skipUnless(os.access(POSTFIX, os.X_OK) and os.access(POSTQUEUE, os.X_OK),
                     "Postfix is not installed (scripts/deps.sh installs it: apt-get install "
                     "postfix)")
class PostfixTest(CofferTestCase):

    def setUp(self):
        self.pf = tempfile.mkdtemp(prefix="coffer-e2e-postfix-")
        os.chmod(self.pf, 0o755)
        self.addCleanup(shutil.rmtree, self.pf, True)
        # Coffer: the LMTP socket where Postfix's lmtp client (user postfix) can reach it
        sockdir = os.path.join(self.pf, "coffer")
        os.makedirs(sockdir)
        os.chmod(sockdir, 0o755)
        self.sock = os.path.join(sockdir, "lmtp")
        c = self.new_coffer(start=False, global_settings={"allow_plaintext": "yes",
                                                          "admins": "admin"})
        c.set_service("lmtpunix", listen=self.sock, socket_group="postfix")
        c.unix_paths["lmtpunix"] = self.sock
        c.set_service("lmtp", tls="none")
        c.start()
        self.c = c
        for u in ("fred", "joe", "full", "admin"):
            c.add_user(u, "pw")
        # Postfix
        self.conf = os.path.join(self.pf, "conf")
        os.makedirs(self.conf)
        self.maillog = os.path.join(self.pf, "maillog")
        self.smtp_port = free_port()
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(host=HOST, port=self.smtp_port))
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(sock=self.sock, host=HOST, lmtp_port=c.ports["lmtp"],
                                   queue=os.path.join(self.pf, "queue"),
                                   data=os.path.join(self.pf, "data"), maillog=self.maillog,
                                   pf=self.pf))
        os.makedirs(os.path.join(self.pf, "queue"))
        os.makedirs(os.path.join(self.pf, "data"))
        shutil.chown(os.path.join(self.pf, "data"), "postfix")
        self.postfix("check")   # creates the queue's directories, owned as Postfix wants
        self.addCleanup(self.stop_postfix)
        self.postfix("start")
        wait_for(self.smtp_greets, 30, interval=0.2, what="the private Postfix's greeting")

    def postfix(self, *args, check=True):
        r = subprocess.run([POSTFIX, "-c", self.conf] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode(errors="replace")
        if check and r.returncode:
            raise AssertionError("postfix %s: %s" % (" ".join(args), out))
        return out

    def stop_postfix(self):
        self.postfix("stop", check=False)
        pidfile = os.path.join(self.pf, "queue", "pid", "master.pid")
        # `postfix stop` returns before the master is gone; the queue is removed after this
        def gone():
            try:
                with open(pidfile) as f:
                    pid = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                return True
            return not os.path.exists("/proc/%d" % pid)
        try:
            wait_for(gone, 20, interval=0.2, what="the private Postfix to stop")
        except TimeoutError:
            self.postfix("abort", check=False)

    def smtp_greets(self):
        try:
            with socket.create_connection((HOST, self.smtp_port), timeout=2) as s:
                return s.recv(100).startswith(b"220 ")
        except OSError:
            return False

    def submit(self, sender, rcpt, subject, size=0):
        body = (b"x" * 76 + b"\r\n") * (size // 78)
        msg = (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s.%f@coffer.test>\r\n"
               b"\r\nhello\r\n" % (sender.encode(), rcpt.encode(), subject.encode(),
                                    subject.replace(" ", "-").encode(), time.time())) + body
        with smtplib.SMTP(HOST, self.smtp_port, timeout=30) as s:
            refused = s.sendmail(sender, [rcpt], msg)
        self.assertEqual(refused, {})

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_line(self, rcpt, status, timeout=30):
        pat = re.compile(r"to=<%s>.*status=%s.*$" % (re.escape(rcpt), status), re.M)
        return wait_for(lambda: pat.search(self.log()), timeout, interval=0.2,
                        what="%s for %s in the Postfix log" % (status, rcpt)).group(0)

    def subjects(self, user):
        m = self.c.imap()
        try:
            m.login(user, "pw")
            typ, data = m.select("INBOX", readonly=True)
            if typ != "OK" or data[0] == b"0":
                return []
            typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            return [d[1].decode().strip()[len("Subject: "):] for d in data
                    if isinstance(d, tuple)]
        finally:
            m.logout()

    def queue(self):
        r = subprocess.run([POSTQUEUE, "-c", self.conf, "-j"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        return [line for line in r.stdout.decode().splitlines() if line.startswith("{")]

    def test_postfix_to_coffer(self):
        """One instance of each for the three cases: starting Postfix is the slow part."""
        self.delivery()
        self.quota_full_deferred_then_delivered()
        self.unknown_user_bounces()

    def delivery(self):
        # local recipient: local(8) -> mailbox_transport, the UNIX socket
        self.submit("sender@example.com", "fred@coffer.test", "over the unix socket")
        line = self.log_line("fred@coffer.test", "sent")
        self.assertIn(self.sock, line)
        self.assertIn("250 2.1.5", line)
        self.assertEqual(self.subjects("fred"), ["over the unix socket"])
        # virtual domain: virtual_transport, LMTP over TCP
        self.submit("sender@example.com", "joe@virt.coffer.test", "over tcp")
        line = self.log_line("joe@virt.coffer.test", "sent")
        self.assertIn("%s[%s]:%d" % (HOST, HOST, self.c.ports["lmtp"]), line)
        self.assertEqual(self.subjects("joe"), ["over tcp"])

    def quota_full_deferred_then_delivered(self):
        rc, out, err = run_coffer(self.c, "mailbox", "create", "user/full")
        self.assertEqual(rc, 0, err)
        rc, out, err = run_coffer(self.c, "quota", "set", "user/full", "--storage", "2")
        self.assertEqual(rc, 0, err)
        self.submit("sender@example.com", "full@coffer.test", "too big for now", size=8000)
        line = self.log_line("full@coffer.test", "deferred")
        self.assertIn("452 4.2.2", line)
        self.assertEqual(self.subjects("full"), [])
        self.assertEqual(len(self.queue()), 1)
        rc, out, err = run_coffer(self.c, "quota", "set", "user/full", "--storage", "100000")
        self.assertEqual(rc, 0, err)
        r = subprocess.run([POSTQUEUE, "-c", self.conf, "-f"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.log_line("full@coffer.test", "sent")
        self.assertEqual(self.subjects("full"), ["too big for now"])
        wait_for(lambda: not self.queue(), 30, interval=0.2, what="an empty Postfix queue")

    def unknown_user_bounces(self):
        # the null sender: no bounce message goes anywhere, the log says what happened
        self.submit("", "nosuch@coffer.test", "to nobody")
        line = self.log_line("nosuch@coffer.test", "bounced")
        self.assertIn("550 5.1.1", line)
        wait_for(lambda: not self.queue(), 30, interval=0.2, what="an empty Postfix queue")

if __name__ == "__main__":
    main()
