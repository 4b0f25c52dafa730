"""test_imap_idle.py: IDLE (RFC 2177): `+ idling`, updates pushed within a second when another
session APPENDs, stores flags or expunges and when LMTP delivers, DONE ends it, anything else is
BAD, IDLE in authenticated state, and a server shutdown during IDLE says BYE."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, SharedCofferTestCase, main  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: fred@coffer.test\r\nSubject: idle %d\r\n"
       b"Message-ID: <idle%d@example.com>\r\n\r\nbody\r\n")


class Idle(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("fred", "secret")

    def conn(self, select=None):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN fred secret")[0], rb"^l OK")
        if select:
            self.assertRegex(c.imap("s", "SELECT " + select)[0], rb"^s OK")
        return c

    def append(self, mailbox, i):
        m = self.coffer.imap()
        m.login("fred", "secret")
        typ, _ = m.append(mailbox, None, None, MSG % (i, i))
        m.logout()
        self.assertEqual(typ, "OK")

    def test_idle_woken_by_append_store_expunge(self):
        m = self.coffer.imap()
        m.login("fred", "secret")
        m.create("idle1")
        m.append("idle1", None, None, MSG % (0, 0))
        m.logout()
        c = self.conn("idle1")
        c.cmd("i1 IDLE")
        c.expect(rb"^\+ idling")
        self.append("idle1", 1)
        t0 = time.monotonic()           # from the commit: the appending session is not timed
        c.expect(rb"^\* 2 EXISTS\r\n$", timeout=1.0)
        c.expect(rb"^\* 2 RECENT\r\n$", timeout=1.0)
        self.assertLess(time.monotonic() - t0, 2.0)
        other = self.conn("idle1")
        other.imap("o1", "STORE 1 +FLAGS.SILENT (\\Flagged)")
        c.expect(rb"^\* 1 FETCH \(FLAGS \(\\Flagged \\Recent\)\)\r\n$", timeout=1.0)
        other.imap("o2", "STORE 2 +FLAGS.SILENT (\\Deleted)")
        other.imap("o3", "EXPUNGE")
        t0 = time.monotonic()
        c.expect(rb"^\* 2 EXPUNGE\r\n$", timeout=1.0)
        self.assertLess(time.monotonic() - t0, 2.0)
        c.cmd("DONE")
        tagged, untagged = c.read_tagged("i1")
        self.assertEqual(tagged, b"i1 OK IDLE terminated\r\n")
        self.assertEqual(c.imap("n", "NOOP"), (b"n OK NOOP completed\r\n", []))

    def test_idle_woken_by_lmtp(self):
        c = self.conn("INBOX")
        c.cmd("i1 IDLE")
        c.expect(rb"^\+ idling")
        lm = self.coffer.lmtp()
        lm.sendmail("a@example.com", ["fred@coffer.test"], MSG % (5, 5))
        t0 = time.monotonic()           # the delivery is acknowledged (fsynced): from here
        lm.quit()
        c.expect(rb"^\* \d+ EXISTS\r\n$", timeout=1.0)
        self.assertLess(time.monotonic() - t0, 2.0)
        c.cmd("done")                      # case-insensitive
        self.assertEqual(c.read_tagged("i1")[0], b"i1 OK IDLE terminated\r\n")

    def test_idle_other_than_done_and_auth_state(self):
        c = self.conn()
        # IDLE is allowed in authenticated state (RFC 2177 section 3)
        c.cmd("i1 IDLE")
        c.expect(rb"^\+ idling")
        c.cmd("i2 NOOP")
        self.assertEqual(c.read_tagged("i1")[0], b"i1 BAD Expected DONE\r\n")
        self.assertEqual(c.imap("n", "NOOP")[0], b"n OK NOOP completed\r\n")
        self.assertRegex(c.imap("b", "IDLE now")[0], rb"^b BAD")

    def test_idle_pipelined_done(self):
        m = self.coffer.imap()
        m.login("fred", "secret")
        m.create("idle2")
        m.logout()
        c = self.conn("idle2")
        c.send(b"i1 IDLE\r\nDONE\r\nn1 NOOP\r\n")
        c.expect(rb"^\+ idling")
        self.assertEqual(c.read_tagged("i1")[0], b"i1 OK IDLE terminated\r\n")
        self.assertEqual(c.read_tagged("n1")[0], b"n1 OK NOOP completed\r\n")


class IdleShutdown(CofferTestCase):
    def test_shutdown_during_idle_says_bye(self):
        co = self.new_coffer(global_settings={"allow_plaintext": "yes", "auth_fail_delay": "0"})
        co.add_user("fred", "secret")
        c = co.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        c.imap("l", "LOGIN fred secret")
        self.assertRegex(c.imap("s", "SELECT INBOX")[0], rb"^s OK")
        c.cmd("i IDLE")
        c.expect(rb"^\+ idling")
        co.send_signal(signal.SIGTERM)
        c.expect(rb"^\* BYE Server shutting down", timeout=5)
        c.wait_eof()


if __name__ == "__main__":
    main()
