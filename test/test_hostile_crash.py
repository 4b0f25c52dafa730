"""test_hostile_crash.py: store durability and crash leftovers (security review 2026-12, M7).

An append killed after its message file was created but before its commit leaves a file above
the committed uidnext. It was never acknowledged, so the MTA (or the IMAP client) sends it
again: after a restart `coffer check` must be clean (exit 0), and the message must be stored
once, never adopted from the leftover file as well."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import main, wait_for  # noqa: E402
from test_lmtp_lib import (LMTP_SERVICES, LmtpCase, add_user, coffer_cmd, dotstuff,  # noqa: E402
                           make_msg, mailbox_list, message)


def mailbox_dir(spool, name):
    """The directory of the mailbox whose header file names it (PARTITION/xx/UNIQUEID)."""
    for xx in os.listdir(spool):
        top = os.path.join(spool, xx)
        if not os.path.isdir(top):
            continue
        for uid in os.listdir(top):
            try:
                with open(os.path.join(top, uid, "header"), "rb") as f:
                    if ("\nname %s\n" % name).encode() in f.read():
                        return os.path.join(top, uid)
            except OSError:
                pass
    return None


def message_files(d):
    return sorted(int(f[:-1]) for f in os.listdir(d) if f.endswith(".") and f[:-1].isdigit())


class HostileCrash(LmtpCase):
    coffer_kwargs = {"services": LMTP_SERVICES,
                     "global_settings": {"respawn_limit": "1000", "respawn_pause": "1s"}}
    users = ("killed",)

    def test_m7_killed_append_leaves_no_duplicate(self):
        co = self.coffer
        box = "user/killed"
        self.assertEqual(self.transact(["killed"], make_msg("warm@x"))[1][0][0], 250)
        d = wait_for(lambda: mailbox_dir(co.spool, box), 5, what="mailbox directory")
        warm = len(mailbox_list(co, box))
        # A big message: writing and fsyncing its file takes long enough for the kill to land
        # between the file's creation and the commit. Retry with a new message if the kill
        # came too late (the delivery was acknowledged: that one is simply counted).
        body = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-+\r\n") * 300000
        killed_msg = None
        acked = 0
        for attempt in range(6):
            msg = make_msg("big%d@x" % attempt, subject="big %d" % attempt, body=body)
            before = set(message_files(d))
            c = co.connect("lmtp", timeout=60)
            try:
                self.assertEqual(c.read_smtp_reply()[0], 220)
                c.cmd("LHLO mta.test")
                c.read_smtp_reply()
                c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<killed>\r\nDATA\r\n")
                self.assertEqual([c.read_smtp_reply()[0] for _ in range(3)], [250, 250, 354])
                w = wait_for(lambda: co.worker_for(c), 5, what="worker of connection")
                c.send(dotstuff(msg) + b".\r\n")
                deadline = time.monotonic() + 60
                new = set()
                while time.monotonic() < deadline and not new:
                    new = set(message_files(d)) - before
                os.kill(w.pid, signal.SIGKILL)
                try:
                    code, _ = c.read_smtp_reply(timeout=10)
                except (AssertionError, EOFError, OSError):
                    code = None
            finally:
                c.close()
            if code == 250:
                acked += 1
                continue
            self.assertTrue(new, "no message file appeared before the kill")
            killed_msg = msg
            break
        self.assertIsNotNone(killed_msg, "every kill came after the reply")
        # The leftover is there, above the committed uidnext.
        self.assertTrue(set(message_files(d)) - {u for u, _, _ in mailbox_list(co, box)})
        # Crash and restart: the check is clean (exit 0), not "message_adopted".
        co.stop()
        co.start()
        r = coffer_cmd(co, "check")
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        # The MTA delivers it again: stored once.
        self.assertEqual(self.transact(["killed"], killed_msg)[1][0][0], 250)
        got = mailbox_list(co, box)
        self.assertEqual(len(got), warm + acked + 1)
        self.assertIn(b"Subject: big %d" % attempt, message(co, box, got[-1][0]))
        # ... and the leftover is gone: every file has its record, nothing to adopt.
        self.assertEqual(message_files(d), sorted(u for u, _, _ in got))
        r = coffer_cmd(co, "reconstruct", box)
        self.assertEqual(len(mailbox_list(co, box)), warm + acked + 1)
        r = coffer_cmd(co, "check")
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())


IMAP_SERVICES = [("imap", "imapd", "starttls", False)]


class HostileCrashImap(LmtpCase):
    coffer_kwargs = {"services": IMAP_SERVICES,
                     "global_settings": {"respawn_limit": "1000", "respawn_pause": "1s",
                                         "allow_plaintext": "yes"}}
    users = ("appender",)

    def login(self):
        c = self.coffer.connect("imap", timeout=60)
        self.addCleanup(c.close)
        c.readline()
        tagged, _ = c.imap("a1", "LOGIN appender secret")
        self.assertIn(b"OK", tagged)
        return c

    def test_m7_killed_imap_append_leaves_no_duplicate(self):
        co = self.coffer
        box = "user/appender"
        c = self.login()
        msg = make_msg("first@x", subject="first")
        c.send(b"a2 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        self.assertIn(b"OK", c.read_tagged("a2")[0])
        d = wait_for(lambda: mailbox_dir(co.spool, box), 5, what="mailbox directory")
        body = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-+\r\n") * 300000
        killed_msg = None
        acked = 0
        for attempt in range(6):
            msg = make_msg("big%d@x" % attempt, subject="big %d" % attempt, body=body)
            before = set(message_files(d))
            c = self.login()
            w = wait_for(lambda: co.worker_for(c), 5, what="worker of connection")
            # LITERAL+ (RFC 7888): the whole command in one go, no continuation to wait for
            c.send(b"a3 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
            deadline = time.monotonic() + 60
            new = set()
            while time.monotonic() < deadline and not new:
                new = set(message_files(d)) - before
            os.kill(w.pid, signal.SIGKILL)
            try:
                tagged, _ = c.read_tagged("a3", timeout=10)
            except (AssertionError, EOFError, OSError):
                tagged = None
            if tagged and b"OK" in tagged:
                acked += 1
                continue
            self.assertTrue(new, "no message file appeared before the kill")
            killed_msg = msg
            break
        self.assertIsNotNone(killed_msg, "every kill came after the reply")
        co.stop()
        co.start()
        r = coffer_cmd(co, "check")
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        # the client, told nothing, appends it again: stored once
        c = self.login()
        c.send(b"a4 APPEND INBOX {%d+}\r\n" % len(killed_msg) + killed_msg + b"\r\n")
        self.assertIn(b"OK", c.read_tagged("a4", timeout=60)[0])
        got = mailbox_list(co, box)
        self.assertEqual(len(got), 1 + acked + 1)
        self.assertEqual(message_files(d), sorted(u for u, _, _ in got))
        r = coffer_cmd(co, "check")
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())


if __name__ == "__main__":
    main()
