"""test_lmtp_sieve.py: Sieve on LMTP delivery, end to end: `coffer sieve` (put with validation,
list, activate), keep, fileinto (existing and missing folder), discard, reject (550 5.7.1),
redirect through the sendmail setting with loop protection, vacation once per sender, envelope
:detail (subaddress) test. The sendmail command is a script that writes what it gets to files."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import bin_dir, main  # noqa: E402
from test_lmtp_lib import (LMTP_SERVICES, LmtpCase, coffer_cmd, make_msg,  # noqa: E402
                           mailbox_list, message, run_tool)

OUT = tempfile.mkdtemp(prefix="coffer-sendmail-")
os.chmod(OUT, 0o777)
SENDMAIL = os.path.join(OUT, "sendmail.sh")
with open(SENDMAIL, "w") as f:
    f.write('#!/bin/sh\nf=%s/mail.$(date +%%s%%N).$$\necho "ARGS: $*" > "$f"\ncat >> "$f"\n'
            'chmod 644 "$f"\n' % OUT)
os.chmod(SENDMAIL, 0o755)

SCRIPT = b'''require ["fileinto", "reject", "vacation", "envelope", "subaddress", "imap4flags"];
if header :contains "subject" "flagme" { addflag "\\\\Flagged"; keep; stop; }
if header :contains "subject" "seenwork" { keep :flags ["\\\\Seen", "$Work"]; stop; }
if header :contains "subject" "spam" { discard; stop; }
if header :contains "subject" "reject me" { reject "not wanted here"; stop; }
if header :contains "subject" "forward" { redirect "other@example.org"; stop; }
if header :contains "subject" "away" { vacation :days 2 :subject "I am away" "Back soon."; }
if envelope :detail "to" "tagged" { fileinto "Tagged"; stop; }
if header :contains "subject" "nofolder" { fileinto "Missing"; stop; }
if address :domain "from" "lists.example.org" { fileinto "Lists"; }
'''


class LmtpSieve(LmtpCase):
    coffer_kwargs = {"services": LMTP_SERVICES,
                     "global_settings": {"sendmail": SENDMAIL + " -oi -f <>"}}
    users = ("sue",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        co = cls.coffer
        try:
            # INBOX and two folders, then the script
            run_tool(co, "create", "user/sue")
            run_tool(co, "create", "user/sue/Lists")
            run_tool(co, "create", "user/sue/Tagged")
            r = coffer_cmd(co, "sieve", "put", "sue", "main", input=SCRIPT)
            assert r.returncode == 0, r.stderr
            r = coffer_cmd(co, "sieve", "activate", "sue", "main")
            assert r.returncode == 0, r.stderr
        except BaseException:
            co.close()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(OUT, ignore_errors=True)

    def sent(self):
        out = []
        for p in sorted(glob.glob(os.path.join(OUT, "mail.*"))):
            with open(p, "rb") as f:
                out.append(f.read())
        return out

    def deliver(self, subject, rcpt="sue@example.org", sender="joe@example.org", extra=b"",
                msgid=None):
        msg = (b"From: " + sender.encode() + b"\r\nTo: sue@example.org\r\nSubject: " + subject.encode() + b"\r\n" +
               (b"Message-ID: <%s>\r\n" % msgid.encode() if msgid else b"") + extra +
               b"\r\nbody\r\n")
        rr, dr = self.transact([rcpt], msg, sender=sender)
        return dr[0]

    def test_check_and_list(self):
        # libsieve leaks its parse tree on a syntax error (not ours): no leak check here
        env = dict(self.coffer.env(), ASAN_OPTIONS="detect_leaks=0")
        r = subprocess.run([os.path.join(bin_dir(), "coffer"), "-C", self.coffer.conf_path,
                            "sieve", "put", "sue", "bad"], input=b'if true {\nkeep\n',
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b"line ", r.stderr)
        r = coffer_cmd(self.coffer, "sieve", "list", "sue")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"main", r.stdout)
        self.assertNotIn(b"bad", r.stdout)
        r = coffer_cmd(self.coffer, "sieve", "get", "sue", "main")
        self.assertEqual(r.stdout, SCRIPT)
        r = coffer_cmd(self.coffer, "sieve", "check", input=b"keep;")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_keep_fileinto_discard(self):
        co = self.coffer
        n = len(mailbox_list(co, "user/sue"))
        self.assertEqual(self.deliver("hello")[0], 250)
        self.assertEqual(len(mailbox_list(co, "user/sue")), n + 1)
        self.assertEqual(self.deliver("spam offer")[0], 250)
        self.assertEqual(len(mailbox_list(co, "user/sue")), n + 1)
        self.assertEqual(self.deliver("digest", sender="bot@lists.example.org")[0], 250)
        self.assertEqual(len(mailbox_list(co, "user/sue/Lists")), 1)
        self.assertEqual(self.deliver("x", rcpt="sue+tagged@example.org")[0], 250)
        self.assertEqual(len(mailbox_list(co, "user/sue/Tagged")), 1)
        self.assertEqual(self.deliver("nofolder")[0], 250)     # fileinto a missing folder: INBOX
        self.assertEqual(len(mailbox_list(co, "user/sue")), n + 2)

    def test_imap4flags(self):
        co = self.coffer
        self.assertEqual(self.deliver("flagme")[0], 250)
        uid, _, flags = mailbox_list(co, "user/sue")[-1]
        self.assertEqual(flags & 0x1f, 0x04)                 # \Flagged from addflag
        self.assertEqual(self.deliver("seenwork")[0], 250)
        uid, _, flags = mailbox_list(co, "user/sue")[-1]
        self.assertEqual(flags & 0x1f, 0x01)                 # \Seen from keep :flags

    def test_reject(self):
        self.assertEqual(self.deliver("please reject me"),
                         (550, [b"5.7.1 <sue@example.org> not wanted here"]))

    def test_redirect_and_loop(self):
        before = len(self.sent())
        self.assertEqual(self.deliver("forward this", msgid="fwd1@x")[0], 250)
        sent = self.sent()
        self.assertEqual(len(sent), before + 1)
        new = [m for m in sent if b"fwd1@x" in m][0]
        self.assertTrue(new.startswith(b"ARGS: -oi -f <> -- other@example.org\n"), new[:80])
        self.assertIn(b"X-Coffer-Loop: sue\r\n", new)
        # a message that went through sue's redirect already is kept instead
        n = len(mailbox_list(self.coffer, "user/sue"))
        self.assertEqual(self.deliver("forward again", extra=b"X-Coffer-Loop: sue\r\n")[0], 250)
        self.assertEqual(len(self.sent()), before + 1)
        self.assertEqual(len(mailbox_list(self.coffer, "user/sue")), n + 1)

    def test_vacation_once_per_sender(self):
        before = len(self.sent())
        self.assertEqual(self.deliver("away test", sender="friend@example.org", msgid="v1@x")[0], 250)
        self.assertEqual(self.deliver("away again", sender="friend@example.org")[0], 250)
        sent = self.sent()[before:]
        self.assertEqual(len(sent), 1)
        self.assertIn(b"ARGS: -oi -f <> -- friend@example.org", sent[0])
        self.assertIn(b"Subject: I am away\r\n", sent[0])
        self.assertIn(b"In-Reply-To: <v1@x>\r\n", sent[0])
        self.assertIn(b"Back soon.", sent[0])
        # never to automatic mail
        self.assertEqual(self.deliver("away list", sender="other@example.org",
                                      extra=b"Precedence: bulk\r\n")[0], 250)
        self.assertEqual(len(self.sent()), before + 1)
        # the message itself is kept
        uid = mailbox_list(self.coffer, "user/sue")[-1][0]
        self.assertIn(b"away list", message(self.coffer, "user/sue", uid))


if __name__ == "__main__":
    main()
