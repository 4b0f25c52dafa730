"""test_shutdown.py: SIGTERM stops cofferd cleanly: sessions get their goodbye, every process of
the instance exits within shutdown_timeout, exit code 0, pid and status files removed."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main, pid_alive, port_refuses, wait_for  # noqa: E402

SHUTDOWN_TIMEOUT = 3
MARGIN = 10             # ASan builds start and stop slowly


class Shutdown(CofferTestCase):

    def test_sigterm_with_open_sessions(self):
        c = self.new_coffer(shutdown_timeout=SHUTDOWN_TIMEOUT)
        pidfile = c.pidfile_path()
        with open(pidfile) as f:
            self.assertEqual(int(f.read().split()[0]), c.pid)
        imap = c.connect("imap")
        self.addCleanup(imap.close)
        imap.expect(rb"^\* OK")
        self.assertRegex(imap.imap("a1", "NOOP")[0], rb"^a1 OK")
        pop = c.connect("pop3")
        self.addCleanup(pop.close)
        pop.expect(rb"^\+OK")
        lmtp = c.connect("lmtp")
        self.addCleanup(lmtp.close)
        lmtp.expect(rb"^220 ")
        c.status()                              # make sure the status file exists
        self.assertTrue(os.path.exists(c.status_path()))
        pids = c.instance_pids()
        self.assertIn(c.pid, pids)
        port = c.ports["imap"]

        t0 = time.monotonic()
        c.send_signal(signal.SIGTERM)
        # every idle session is told goodbye in its protocol
        line = imap.expect(rb"^\* BYE", timeout=SHUTDOWN_TIMEOUT + MARGIN).string
        self.assertRegex(line, rb"^\* BYE ")
        self.assertTrue(imap.at_eof(SHUTDOWN_TIMEOUT + MARGIN))
        self.assertRegex(pop.readline(SHUTDOWN_TIMEOUT + MARGIN), rb"^-ERR")
        self.assertTrue(pop.at_eof(SHUTDOWN_TIMEOUT + MARGIN))
        code, _ = lmtp.read_smtp_reply(SHUTDOWN_TIMEOUT + MARGIN)
        self.assertEqual(code, 421)
        self.assertTrue(lmtp.at_eof(SHUTDOWN_TIMEOUT + MARGIN))

        rc = c.proc.wait(SHUTDOWN_TIMEOUT + MARGIN)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, "cofferd exit code after SIGTERM")
        self.assertLess(elapsed, SHUTDOWN_TIMEOUT + MARGIN)
        wait_for(lambda: not c.instance_pids(), 5, 0.1, "no process of the instance left")
        self.assertEqual([p for p in pids if pid_alive(p)], [], "processes left behind")
        self.assertFalse(os.path.exists(pidfile), "pid file left behind")
        self.assertFalse(os.path.exists(c.status_path()), "status file left behind")
        self.assertTrue(port_refuses(port))
        self.assertFalse(os.path.exists(c.unix_paths["lmtpunix"]), "UNIX socket left behind")
        self.assertTrue(c.log_grep(r"event=shutdown\b.*signal=TERM"))

    def test_sigterm_idle(self):
        c = self.new_coffer(shutdown_timeout=SHUTDOWN_TIMEOUT)
        t0 = time.monotonic()
        rc = c.stop(signal.SIGTERM, timeout=SHUTDOWN_TIMEOUT + MARGIN)
        self.assertEqual(rc, 0)
        # with no session open, nothing needs to wait for the timeout
        self.assertLess(time.monotonic() - t0, SHUTDOWN_TIMEOUT + MARGIN)
        self.assertFalse(c.instance_pids())
        self.assertFalse(os.path.exists(c.pidfile_path()))

    def test_sigint_is_graceful_too(self):
        c = self.new_coffer(shutdown_timeout=SHUTDOWN_TIMEOUT)
        rc = c.stop(signal.SIGINT, timeout=SHUTDOWN_TIMEOUT + MARGIN)
        self.assertEqual(rc, 0)
        self.assertFalse(c.instance_pids())


if __name__ == "__main__":
    main()
