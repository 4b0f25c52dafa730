"""test_lmtp_lib.py: shared helpers of the LMTP end-to-end tests (not a test itself).

LmtpCase: a SharedCofferTestCase with only the lmtp (TCP) and lmtpunix services, users made with
`coffer user add`, and store access through build/bin/lmtp-testtool (create a mailbox with an ACL,
set a quota, list a mailbox, read a message)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, bin_dir  # noqa: E402

LMTP_SERVICES = [
    ("lmtp", "lmtpd", "starttls", False),
    ("lmtpunix", "lmtpd", "none", True),
]


def run_tool(c, *args, check=True, input=None):
    """build/bin/lmtp-testtool CONF ARGS; returns stdout bytes."""
    r = subprocess.run([os.path.join(bin_dir(), "lmtp-testtool"), c.conf_path] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, input=input,
                       env=c.env())
    if check and r.returncode != 0:
        raise AssertionError("lmtp-testtool %s failed: %s" % (args, r.stderr.decode()))
    return r.stdout


def coffer_cmd(c, *args, input=None):
    """build/bin/coffer -C CONF ARGS; returns the CompletedProcess."""
    return subprocess.run([os.path.join(bin_dir(), "coffer"), "-C", c.conf_path] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                          input=input, env=c.env())


def add_user(c, name, password="secret"):
    r = coffer_cmd(c, "user", "add", name, "-p", password)
    if r.returncode != 0:
        raise AssertionError("coffer user add %s: %s" % (name, r.stderr.decode()))


def mailbox_list(c, name):
    """[(uid, size, flags)] of mailbox name; [] when it does not exist."""
    out = run_tool(c, "list", name, check=False)
    return [tuple(int(x) for x in l.split()) for l in out.decode().splitlines()]


def message(c, name, uid):
    return run_tool(c, "cat", name, str(uid))


def body_of(stored):
    """The stored message without the Return-Path and Received fields lmtpd added."""
    assert stored.startswith(b"Return-Path: <"), stored[:100]
    i = stored.index(b"\r\nReceived: ")
    j = stored.index(b"\r\n", stored.index(b";\r\n\t", i) + 4)
    return stored[j + 2:]


class LmtpCase(SharedCofferTestCase):
    coffer_kwargs = {"services": LMTP_SERVICES}
    users = ("alice", "bob")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            for u in cls.users:
                add_user(cls.coffer, u)
        except BaseException:
            cls.coffer.close()
            raise

    def conn(self, service="lmtp", lhlo=True):
        c = self.coffer.connect(service)
        self.addCleanup(c.close)
        code, _ = c.read_smtp_reply()
        self.assertEqual(code, 220)
        if lhlo:
            c.cmd("LHLO mta.test")
            code, lines = c.read_smtp_reply()
            self.assertEqual(code, 250)
        return c

    def transact(self, rcpts, msg, sender="sender@example.org", service="lmtp", conn=None):
        """One pipelined transaction; returns ([rcpt replies], [data replies])."""
        c = conn or self.conn(service)
        out = ["MAIL FROM:<%s>" % sender] + ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]
        c.send("".join(l + "\r\n" for l in out))
        self.assertEqual(c.read_smtp_reply()[0], 250)
        rr = [c.read_smtp_reply() for _ in rcpts]
        ok = sum(1 for code, _ in rr if code == 250)
        code, _ = c.read_smtp_reply()
        if not ok:
            self.assertEqual(code, 503)
            return rr, []
        self.assertEqual(code, 354)
        c.send(dotstuff(msg) + b".\r\n")
        return rr, [c.read_smtp_reply() for _ in range(ok)]

    def wait_count(self, name, n, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            got = mailbox_list(self.coffer, name)
            if len(got) == n or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


def dotstuff(msg):
    """msg (bytes, lines ending CRLF) dot-stuffed for DATA, ending with CRLF."""
    if not msg.endswith(b"\r\n"):
        msg += b"\r\n"
    lines = msg.split(b"\r\n")[:-1]
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def make_msg(msgid=None, subject="test", body=b"hello\r\n", extra=b""):
    h = b"From: sender@example.org\r\nTo: someone@example.org\r\nSubject: " + subject.encode() + b"\r\n"
    if msgid:
        h += b"Message-ID: <" + msgid.encode() + b">\r\n"
    return h + extra + b"\r\n" + body
