"""test_startup.py: cofferd's startup failures and exit codes: 2 bad config (file:line), 3 cannot
bind (names the address), 4 already running; -t checks a config without starting anything."""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main  # noqa: E402

RUN_BOUND = 30


class Startup(CofferTestCase):

    def insert_global(self, c, line):
        """Write coffer.conf with line added at the end of the global section."""
        text = c.config_text()
        i = text.index("\n[service ")
        c.write_config(text[:i] + "\n" + line + text[i:])
        return c.config_line_of(line)

    def test_check_good_config(self):
        c = self.new_coffer(start=False)
        rc, out = c.run_cofferd(["-t"], RUN_BOUND)
        self.assertEqual(rc, 0, out)
        self.assertFalse(c.instance_pids(), "-t left processes behind")
        self.assertFalse(os.path.exists(c.pidfile_path()), "-t wrote a pid file")

    def test_unknown_key(self):
        c = self.new_coffer(start=False)
        lineno = self.insert_global(c, "bogus_setting = 1")
        for args in (["-f"], ["-t"]):
            with self.subTest(args=args):
                rc, out = c.run_cofferd(args, RUN_BOUND)
                self.assertEqual(rc, 2, out)
                self.assertIn("coffer.conf:%d:" % lineno, out)
                self.assertIn("bogus_setting", out)
        self.assertFalse(c.instance_pids())

    def test_bad_service_setting(self):
        c = self.new_coffer(start=False)
        c.set_service("pop3", tls="sometimes")
        lineno = c.config_line_of("tls = sometimes")
        rc, out = c.run_cofferd(["-f"], RUN_BOUND)
        self.assertEqual(rc, 2, out)
        self.assertIn("coffer.conf:%d:" % lineno, out)

    def test_missing_program(self):
        c = self.new_coffer(start=False)
        c.set_service("imap", program="no-such-imapd")
        rc, out = c.run_cofferd(["-f"], RUN_BOUND)
        self.assertEqual(rc, 2, out)
        self.assertIn("no-such-imapd", out)
        self.assertRegex(out, r"coffer\.conf:\d+:")

    def test_port_taken(self):
        c = self.new_coffer(start=False)
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        c.ports["pop3"] = port
        c.set_service("pop3", listen="127.0.0.1:%d" % port)
        rc, out = c.run_cofferd(["-f"], RUN_BOUND)
        self.assertEqual(rc, 3, out)
        self.assertIn("cannot listen on 127.0.0.1:%d" % port, out)
        self.assertRegex(out, r"Address already in use")
        self.assertFalse(c.instance_pids(), "processes left after a failed start")
        self.assertFalse(os.path.exists(c.pidfile_path()), "pid file left after a failed start")
        # the other services' sockets were released too: a real start now works
        blocker.close()
        c.start()
        c.greet("pop3")

    def test_already_running(self):
        c = self.new_coffer()
        with open(c.pidfile_path()) as f:
            first = f.read()
        rc, out = c.run_cofferd(["-f"], RUN_BOUND)
        self.assertEqual(rc, 4, out)
        self.assertRegex(out, r"(?i)already running|%d" % c.pid)
        # the running instance is untouched: same pid file, still serving
        with open(c.pidfile_path()) as f:
            self.assertEqual(f.read(), first)
        self.assertTrue(c.running())
        for svc in c.services:
            c.greet(svc)

    def test_stale_pidfile_is_replaced(self):
        c = self.new_coffer(start=False)
        # a pid that is surely not a cofferd: a finished child of ours
        import subprocess
        p = subprocess.Popen(["true"])
        p.wait()
        with open(c.pidfile_path(), "w") as f:
            f.write("%d\n" % p.pid)
        c.start()
        with open(c.pidfile_path()) as f:
            self.assertEqual(int(f.read().split()[0]), c.pid)

    def test_refuses_root_without_user(self):
        if os.geteuid() != 0:
            self.skipTest("only meaningful as root")
        c = self.new_coffer(start=False)
        del c.globals["user"]
        c.write_config()
        rc, out = c.run_cofferd(["-f"], RUN_BOUND)
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"(?i)root|user")
        self.assertFalse(c.instance_pids())

    def test_usage(self):
        c = self.new_coffer(start=False)
        rc, out = c.run_cofferd(["-Z"], RUN_BOUND)
        self.assertNotEqual(rc, 0)
        self.assertTrue(re.search(r"(?i)usage", out), out)


if __name__ == "__main__":
    main()
