"""test_lmtp_crash.py: kill -9 of lmtpd workers during delivery: a message whose DATA was cut
short is never visible, and every acknowledged (250) message is in the mailbox."""
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import bin_dir, main, wait_for  # noqa: E402
from test_lmtp_lib import LMTP_SERVICES, LmtpCase, make_msg, mailbox_list, message  # noqa: E402


class LmtpCrash(LmtpCase):
    coffer_kwargs = {"services": LMTP_SERVICES,
                     "global_settings": {"respawn_limit": "1000", "respawn_pause": "1s"}}
    users = ("crash1", "crash2")

    def kill_worker_of(self, conn):
        w = wait_for(lambda: self.coffer.worker_for(conn), 5, what="worker of connection")
        os.kill(w.pid, signal.SIGKILL)
        return w.pid

    def test_kill_during_data(self):
        co = self.coffer
        self.assertEqual(self.transact(["crash1"], make_msg("warm@x"))[1][0][0], 250)
        before = mailbox_list(co, "user/crash1")
        c = self.conn()
        c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<crash1>\r\nDATA\r\n")
        self.assertEqual([c.read_smtp_reply()[0] for _ in range(3)], [250, 250, 354])
        c.send(make_msg("cut@x", body=b"first half\r\n" * 500))
        time.sleep(0.2)
        self.kill_worker_of(c)
        self.assertTrue(c.wait_eof(10))
        self.assertEqual(mailbox_list(co, "user/crash1"), before)
        # a retry works and stores it once
        rr, dr = self.transact(["crash1"], make_msg("cut@x", body=b"first half\r\n" * 500))
        self.assertEqual(dr[0][0], 250)
        after = mailbox_list(co, "user/crash1")
        self.assertEqual(len(after), len(before) + 1)
        self.assertIn(b"<cut@x>", message(co, "user/crash1", after[-1][0]))

    def test_db_panic_recovers_and_keeps_mail(self):
        """A worker that dies inside Berkeley DB can leave the environment needing recovery
        (DB_RUNRECOVERY): failchk cannot fix that and every database call would fail or hang.
        cofferd stops every worker, runs recovery and starts the pools again; nothing
        acknowledged is lost."""
        co = self.coffer
        self.assertEqual(self.transact(["crash1"], make_msg("before-panic@x"))[1][0][0], 250)
        before = mailbox_list(co, "user/crash1")
        since = co.log_size()
        # a panicked environment refuses to close, so libdb's handles stay: no leak check
        env = dict(co.env())
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        r = subprocess.run([os.path.join(bin_dir(), "lmtp-testtool"), co.conf_path, "panic", "-"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        # a worker that did not exit cleanly makes the master run failchk, which finds it
        c = self.conn()
        self.kill_worker_of(c)
        wait_for(lambda: co.log_grep("db_recovered", since), 30, what="db_recovered in the log")
        self.assertTrue(co.log_grep("db_recovery_restart", since))
        # the pools are back: a delivery works and the earlier mail is all there

        def delivered():
            try:
                return self.transact(["crash1"], make_msg("after-panic@x"))[1][0][0] == 250
            except (OSError, EOFError, AssertionError):
                return False
        wait_for(delivered, 30, what="a delivery after recovery")
        after = mailbox_list(co, "user/crash1")
        self.assertEqual(after[:len(before)], before)
        self.assertEqual(len(after), len(before) + 1)

    def test_every_acknowledged_message_survives(self):
        co = self.coffer
        rnd = random.Random(4)
        acked = set()
        for i in range(40):
            c = self.coffer.connect("lmtp", timeout=10)
            try:
                c.read_smtp_reply()
                c.cmd("LHLO mta.test")
                c.read_smtp_reply()
                c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<crash2>\r\nDATA\r\n")
                [c.read_smtp_reply() for _ in range(3)]
                c.send(make_msg("ack%d@x" % i, subject="n%d" % i) + b".\r\n")
                how = rnd.choice(("after", "during", "none"))
                if how == "during":
                    time.sleep(rnd.random() * 0.01)
                    self.kill_worker_of(c)
                code, _ = c.read_smtp_reply()
                if code == 250:
                    acked.add(i)
                if how == "after":
                    self.kill_worker_of(c)
            except (AssertionError, EOFError, OSError):
                pass            # a killed worker: the message may or may not be stored
            finally:
                c.close()
        self.assertGreater(len(acked), 10)
        stored = set()
        for uid, _, _ in mailbox_list(co, "user/crash2"):
            m = message(co, "user/crash2", uid)
            subj = [l for l in m.split(b"\r\n") if l.startswith(b"Subject: n")][0]
            stored.add(int(subj[len(b"Subject: n"):]))
        self.assertEqual(acked - stored, set())
        # each stored at most once (duplicate suppression or none happened twice)
        self.assertEqual(len(mailbox_list(co, "user/crash2")), len(stored))


if __name__ == "__main__":
    main()
