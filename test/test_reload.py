"""test_reload.py: SIGHUP re-reads coffer.conf: prefork changes, services added and removed,
sessions open across the reload keep working, a broken file leaves the old config in force."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main, port_refuses, wait_for  # noqa: E402

BOUND = 20      # seconds for a reload to take effect


class Reload(CofferTestCase):

    def imap_status(self, c):
        return c.status().get("imap", {})

    def test_prefork_change_and_live_session(self):
        c = self.new_coffer()
        live = c.connect("imap")
        self.addCleanup(live.close)
        live.expect(rb"^\* OK")
        self.assertRegex(live.imap("a1", "NOOP")[0], rb"^a1 OK")
        since = c.log_size()

        c.set_service("imap", prefork=3)
        c.reload()
        c.wait_log(r"event=reloaded\b", BOUND, since)
        # one snapshot per try: asking twice could pass on the first (3 ready) and return the
        # second, where a worker retired by the reload but not yet gone still counts as ready
        st = wait_for(lambda: (lambda s: s.get("ready") == 3 and s)(self.imap_status(c)),
                      BOUND, 0.2, "3 ready imap workers after reload")
        self.assertEqual(st["ready"], 3)
        # the session that was open across the reload still works
        self.assertRegex(live.imap("a2", "NOOP")[0], rb"^a2 OK")
        self.assertRegex(live.imap("a3", "LOGOUT")[0], rb"^a3 OK")
        live.close()
        # once the retired worker has gone, exactly prefork idle workers remain
        st = wait_for(lambda: (lambda s: s.get("workers") == 3 and s.get("busy") == 0 and s)(
            self.imap_status(c)), BOUND, 0.2, "imap workers=3 busy=0")
        self.assertEqual(st["ready"], 3)
        self.assertEqual(len(wait_for(lambda: len(c.workers("imap")) == 3 and c.workers("imap"),
                                      BOUND, 0.1, "3 imap worker processes")), 3)
        with c.connect("imap") as conn:
            conn.expect(rb"^\* OK")

        # and back down to 1
        c.set_service("imap", prefork=1)
        c.reload()
        wait_for(lambda: self.imap_status(c).get("workers") == 1, BOUND, 0.2,
                 "imap workers back to 1")

    def test_add_and_remove_services(self):
        c = self.new_coffer()
        removed_port = c.ports["pop3s"]
        removed_unix = c.unix_paths["lmtpunix"]
        since = c.log_size()
        c.add_service("imap2", "imapd", "starttls", write=False, prefork=2)
        c.remove_service("pop3s", write=False)
        c.remove_service("lmtpunix", write=False)
        c.write_config()
        c.reload()
        c.wait_log(r"event=reloaded\b", BOUND, since)
        c.wait_ready(BOUND, services=["imap2"])
        g = c.greet("imap2")
        self.assertRegex(g, rb"^\* OK \[CAPABILITY")
        self.assertTrue(c.log_grep(r"event=service_started .*service=imap2", since))
        wait_for(lambda: port_refuses(removed_port), BOUND, 0.2,
                 "removed service pop3s to stop listening")
        wait_for(lambda: not os.path.exists(removed_unix), BOUND, 0.2,
                 "removed UNIX socket to be unlinked")
        wait_for(lambda: not c.workers("pop3s") and not c.workers("lmtpunix"), BOUND, 0.1,
                 "workers of removed services to exit")
        st = wait_for(lambda: (lambda s: "imap2" in s and s)(c.status()), BOUND, 0.2,
                      "imap2 in the status file")
        self.assertNotIn("pop3s", st)
        # the untouched services still answer
        for svc in ("imap", "imaps", "pop3", "lmtp"):
            c.greet(svc)

    def test_bad_config_keeps_old(self):
        c = self.new_coffer()
        since = c.log_size()
        good = c.config_text()
        c.write_config(good + "\n[service broken]\nprogram = imapd\nprefok = 3\n")
        c.reload()
        line = c.wait_log(r"event=reload_failed\b", BOUND, since)
        self.assertIn("coffer.conf:", line)
        self.assertTrue(c.running())
        for svc in c.services:
            c.greet(svc)
        # a reload whose new port cannot be bound changes nothing either
        import socket
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        c.write_config(good + "\n[service taken]\nprogram = imapd\nlisten = 127.0.0.1:%d\n" % port)
        since = c.log_size()
        c.reload()
        line = c.wait_log(r"event=reload_failed\b", BOUND, since)
        self.assertIn("127.0.0.1:%d" % port, line)
        self.assertTrue(c.running())
        for svc in c.services:
            c.greet(svc)


if __name__ == "__main__":
    main()
