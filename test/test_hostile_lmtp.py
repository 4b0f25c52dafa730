"""test_hostile_lmtp.py: the LMTP trust boundary under attack (security review 2026-12):
H4 UNIX socket mode/group and no AUTH there, H5 BDAT size overflow, M9 sendmail argument vector,
L11 only CRLF.CRLF ends DATA, L1 no control characters echoed, L2 NUL in command lines."""
import os
import pwd
import grp
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main  # noqa: E402
from test_lmtp_lib import (LMTP_SERVICES, LmtpCase, coffer_cmd, mailbox_list,  # noqa: E402
                           message, run_tool)

MAX = 65536     # max_literal of these tests: small, so that limits are cheap to reach

# connect to a UNIX socket and print the greeting, or the errno name (run as another user)
PEER = ("import socket, sys, errno\n"
        "s = socket.socket(socket.AF_UNIX)\ns.settimeout(10)\n"
        "try:\n    s.connect(sys.argv[1])\nexcept OSError as e:\n"
        "    print(errno.errorcode.get(e.errno, e.errno)); sys.exit(0)\n"
        "print(s.recv(200).decode(errors='replace').strip())\n")


def connect_as(path, user, group):
    """Connect to the UNIX socket at path as user:group (no supplementary groups): the
    greeting, or an errno name such as EACCES."""
    r = subprocess.run(["setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups",
                        sys.executable, "-c", PEER, path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    return r.stdout.decode(errors="replace").strip()


def start_txn(case, c, rcpt="alice", sender="s@x"):
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (sender, rcpt))
    case.assertEqual(c.read_smtp_reply()[0], 250)
    case.assertEqual(c.read_smtp_reply()[0], 250)


class HostileLmtp(LmtpCase):
    coffer_kwargs = {"services": LMTP_SERVICES,
                     "global_settings": {"max_literal": str(MAX), "auth_fail_delay": "0",
                                         "admins": "mta"}}
    users = ("alice", "mta")

    def test_h4_no_auth_on_unix_socket(self):
        c = self.coffer.connect("lmtpunix")
        self.addCleanup(c.close)
        self.assertEqual(c.read_smtp_reply()[0], 220)
        c.cmd("LHLO mta.test")
        code, lines = c.read_smtp_reply()
        self.assertEqual(code, 250)
        self.assertFalse([l for l in lines if l.startswith(b"AUTH")], lines)
        c.cmd("AUTH PLAIN AG10YQBzZWNyZXQ=")            # \0mta\0secret: right, and still refused
        self.assertEqual(c.read_smtp_reply()[0], 502)

    def test_h5_bdat_huge_size_closes(self):
        c = self.conn()
        start_txn(self, c)
        c.send(b"BDAT 1\r\nX")
        self.assertEqual(c.read_smtp_reply()[0], 250)
        # 2^64-1: spool_size + n wrapped to 0 and the spool grew without limit
        c.send(b"BDAT 18446744073709551615\r\n" + b"Y" * 4096)
        code, lines = c.read_smtp_reply(timeout=10)
        self.assertEqual(code, 421, lines)
        self.assertTrue(c.at_eof(5))

    def test_h5_bdat_bad_sizes_are_protocol_errors(self):
        for size in (b"99999999999999999999999", b"000000000000000000000001", b"12x"):
            c = self.conn()
            start_txn(self, c)
            c.send(b"BDAT " + size + b"\r\n")
            code, lines = c.read_smtp_reply(timeout=10)
            self.assertEqual(code, 501, (size, lines))
            self.assertTrue(c.at_eof(5), size)

    def test_h5_bdat_sum_over_limit_is_552_and_skipped(self):
        c = self.conn()
        start_txn(self, c)
        c.send(b"BDAT 60000\r\n" + b"a" * 60000)
        self.assertEqual(c.read_smtp_reply()[0], 250)
        c.send(b"BDAT 10000\r\n" + b"b" * 10000)       # 70000 > MAX: skipped, not stored
        self.assertEqual(c.read_smtp_reply()[0], 552)
        c.send(b"BDAT 0 LAST\r\n")
        self.assertEqual(c.read_smtp_reply()[0], 552)
        c.cmd("NOOP")                                    # the stream is still in step
        self.assertEqual(c.read_smtp_reply()[0], 250)

    def test_h5_bdat_without_mail_and_huge_size(self):
        # the refusal path read the chunk past without any bound
        c = self.conn()
        c.send(b"BDAT 18446744073709551615\r\n")
        self.assertEqual(c.read_smtp_reply(timeout=10)[0], 421)

    def test_l11_bare_lf_dot_does_not_end_data(self):
        c = self.conn()
        start_txn(self, c)
        c.cmd("DATA")
        self.assertEqual(c.read_smtp_reply()[0], 354)
        c.send(b"Subject: l11\r\n\r\nbody\n.\nMAIL FROM:<smuggled@x>\r\n.\r\n")
        self.assertEqual(c.read_smtp_reply(timeout=10)[0], 250)
        c.cmd("NOOP")
        self.assertEqual(c.read_smtp_reply()[0], 250)
        msgs = mailbox_list(self.coffer, "user/alice")
        stored = [message(self.coffer, "user/alice", m[0]) for m in msgs]
        hit = [s for s in stored if b"Subject: l11\r\n" in s]
        self.assertEqual(len(hit), 1, stored)
        self.assertIn(b"body\r\n.\r\nMAIL FROM:<smuggled@x>\r\n", hit[0])

    def test_l11_bare_lf_before_crlf_dot(self):
        c = self.conn()
        start_txn(self, c)
        c.cmd("DATA")
        self.assertEqual(c.read_smtp_reply()[0], 354)
        c.send(b"Subject: l11b\r\n\r\nx\n.\r\nRSET\r\n.\r\n")
        self.assertEqual(c.read_smtp_reply(timeout=10)[0], 250)
        c.cmd("NOOP")
        code, lines = c.read_smtp_reply()
        self.assertEqual(code, 250, lines)
        stored = [message(self.coffer, "user/alice", m[0])
                  for m in mailbox_list(self.coffer, "user/alice")]
        hit = [s for s in stored if b"Subject: l11b\r\n" in s]
        self.assertEqual(len(hit), 1, stored)
        self.assertIn(b"\r\nx\r\n.\r\nRSET\r\n", hit[0])     # RSET was data, not a command

    def test_l1_no_control_characters_echoed(self):
        c = self.conn()
        c.send(b"MAIL FROM:<a@b> X-EVIL=\rinjected\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(b"555 "), line)
        self.assertNotIn(b"\r", line[:-2])
        c.send(b"HELO\rx\r\n")
        line = c.readline()
        self.assertTrue(line.startswith(b"500 "), line)
        self.assertNotIn(b"\r", line[:-2])

    def test_l2_nul_in_command_line(self):
        c = self.conn()
        c.send(b"MAIL FROM:<a@b>\0junk\r\n")
        self.assertEqual(c.read_smtp_reply()[0], 500)
        c.send(b"MAIL FROM:<a@b>\r\n")                  # no transaction was started
        self.assertEqual(c.read_smtp_reply()[0], 250)


class SocketAccess(CofferTestCase):
    """H4: the UNIX socket is 0600 by default, 0660 with socket_group; only those who may
    write to it can deliver."""

    def make(self, **svc):
        co = self.new_coffer(start=False, services=[("lmtp", "lmtpd", "none", False)])
        run = os.path.join(co.tmp, "run")
        os.makedirs(run)
        path = os.path.join(run, "lmtp")
        co.add_service("lmtpunix", "lmtpd", "none", False, listen=path, **svc)
        co.unix_paths["lmtpunix"] = path
        co.ports.pop("lmtpunix", None)
        co.start()
        # let anybody reach the socket through the directories: the file alone decides
        os.chmod(co.tmp, 0o711)
        os.chmod(run, 0o755)
        return co, path

    def test_h4_socket_default_mode_0600(self):
        co, path = self.make()
        st = os.stat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        if os.geteuid() != 0:
            self.skipTest("connecting as nobody needs root")
        self.assertEqual(connect_as(path, "nobody", "nogroup"), "EACCES")

    def test_h4_socket_group(self):
        if os.geteuid() != 0:
            self.skipTest("socket_group of another group needs root")
        co, path = self.make(socket_group="nogroup")
        st = os.stat(path)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertEqual(st.st_gid, grp.getgrnam("nogroup").gr_gid)
        self.assertTrue(connect_as(path, "nobody", "nogroup").startswith("220 "))
        # a user outside the group (daemon has its own group) is still refused
        try:
            pwd.getpwnam("daemon")
            self.assertEqual(connect_as(path, "daemon", "daemon"), "EACCES")
        except KeyError:
            pass

    def test_h4_socket_mode_for_others_refused(self):
        co = self.new_coffer(start=False, services=[("lmtp", "lmtpd", "none", False)])
        co.add_service("lmtpunix", "lmtpd", "none", True, socket_mode="0666")
        rc, out = co.run_cofferd(args=("-t",))
        self.assertEqual(rc, 2, out)
        self.assertIn("socket_mode 0666: gives others access", out)
        co.set_service("lmtpunix", socket_mode="0640", socket_group="no-such-group-xyz")
        rc, out = co.run_cofferd(args=("-t",))
        self.assertEqual(rc, 2, out)
        self.assertIn("socket_group no-such-group-xyz: no such group", out)


class Sendmail(LmtpCase):
    """M9: vacation hands the envelope sender to sendmail; it must never become an option."""
    OUT = tempfile.mkdtemp(prefix="coffer-m9-")
    SCRIPT = os.path.join(OUT, "sendmail.sh")
    coffer_kwargs = {"services": LMTP_SERVICES,
                     "global_settings": {"sendmail": SCRIPT + " -oi -f <>"}}
    users = ("sue",)

    @classmethod
    def setUpClass(cls):
        os.chmod(cls.OUT, 0o777)
        with open(cls.SCRIPT, "w") as f:
            # one argument per line, so that where each argument starts and ends shows
            f.write('#!/bin/sh\nf=%s/argv.$$\nfor a in "$@"; do printf "%%s\\n" "$a"; done > "$f"\n'
                    'cat > /dev/null\nchmod 644 "$f"\n' % cls.OUT)
        os.chmod(cls.SCRIPT, 0o755)
        super().setUpClass()
        co = cls.coffer
        try:
            run_tool(co, "create", "user/sue")
            script = b'require ["vacation"]; vacation :days 1 "away";\r\n'
            r = coffer_cmd(co, "sieve", "put", "sue", "main", input=script)
            assert r.returncode == 0, r.stderr
            r = coffer_cmd(co, "sieve", "activate", "sue", "main")
            assert r.returncode == 0, r.stderr
        except BaseException:
            co.close()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.OUT, ignore_errors=True)

    def argvs(self):
        out = []
        for n in sorted(os.listdir(self.OUT)):
            if n.startswith("argv."):
                with open(os.path.join(self.OUT, n)) as f:
                    out.append(f.read().splitlines())
        return out

    def test_m9_sender_is_never_an_option(self):
        # vacation answers only mail addressed to the user (RFC 5230 section 4.5)
        msg = b"From: x@example.org\r\nTo: sue@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
        since = self.coffer.log_size()
        rr, dr = self.transact(["sue@example.org"], msg, sender="-X/tmp/coffer-m9-x@example.org")
        self.assertEqual(dr[0][0], 250)
        self.coffer.wait_log(r"event=sendmail_failed|event=vacation_sent", since=since)
        for argv in self.argvs():
            self.assertNotIn("-X/tmp/coffer-m9-x@example.org", argv[:argv.index("--")]
                             if "--" in argv else argv)
        # a normal sender: the address comes after "--", as one argument, unquoted
        rr, dr = self.transact(["sue@example.org"], msg, sender="it's@example.org")
        self.assertEqual(dr[0][0], 250)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not [a for a in self.argvs()
                                                   if "it's@example.org" in a]:
            time.sleep(0.05)
        got = [a for a in self.argvs() if "it's@example.org" in a]
        self.assertEqual(got, [["-oi", "-f", "<>", "--", "it's@example.org"]], self.argvs())


if __name__ == "__main__":
    main()
