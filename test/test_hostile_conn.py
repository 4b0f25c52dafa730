"""test_hostile_conn.py: holding workers and connections (security review 2026-12, H2, L13, L8):
idle unauthenticated connections from one address cannot take every worker (max_preauth_per_ip),
the pre-login phase has one deadline counted from accept (login_timeout) that silence, trickled
bytes and stalled TLS handshakes cannot stretch, one user from one address gets at most
max_userip_connections sessions (IDLE included), the counts are right again after kill -9 of
workers, and a huge idle_timeout is clamped rather than overflowed.

Attackers and victims are told apart by their source address: every 127.0.0.0/8 address is
loopback on Linux, so a client socket is bound to 127.0.0.N before it connects."""
import os
import signal
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, Conn, main, wait_for  # noqa: E402

ATTACKER = "127.0.0.2"
VICTIM = "127.0.0.3"
OTHER = "127.0.0.4"
BASE = {"allow_plaintext": "yes", "auth_fail_delay": "0"}


def connect_from(co, service, source, timeout=10):
    """A Conn to service (TCP) whose source address is `source` (nothing read)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((source, 0))
        s.connect(co.address(service))
    except BaseException:
        s.close()
        raise
    return Conn(s, timeout)


def first_line(conn, timeout):
    """The first line the server sends, b"" on EOF/reset, None when nothing came in time."""
    try:
        return conn.readline(timeout)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return b""
    except (socket.timeout, TimeoutError):
        return None


def peer_closed(conn, timeout):
    """True when the server closes conn within timeout (what it sends is dropped)."""
    return conn.wait_eof(timeout)


def closed_within(conn, timeout):
    """Seconds until the server closed conn (reading and dropping what it sends), or None."""
    t0 = time.monotonic()
    return time.monotonic() - t0 if conn.wait_eof(timeout) else None


class HostileConn(CofferTestCase):

    def login(self, conn, user="fred", password="secret", tag="l"):
        first_line(conn, 10)
        return conn.imap(tag, "LOGIN %s %s" % (user, password))[0]

    # ---- H2: the per-address limit before login

    def test_h2_preauth_flood_does_not_shut_out_others(self):
        maxchild = 30
        co = self.new_coffer(global_settings=dict(BASE),
                             service_settings={"imap": {"maxchild": maxchild, "prefork": 2}})
        co.add_user("fred", "secret")
        wait_for(lambda: co.status().get("imap", {}).get("ready", 0) >= 2, 20, 0.2,
                 "two ready imap workers")
        flood = []
        self.addCleanup(lambda: [c.close() for c in flood])
        for _ in range(120):
            flood.append(connect_from(co, "imap", ATTACKER))
        # every flood connection is either greeted (and held, silent) or refused at once
        deadline = time.monotonic() + 20
        greeted = refused = silent = 0
        for c in flood:
            line = first_line(c, max(0.05, deadline - time.monotonic()))
            if line is None:
                silent += 1
            elif line.startswith(b"* OK"):
                greeted += 1
            elif line.startswith(b"* BYE [UNAVAILABLE] Too many connections"):
                refused += 1
                self.assertTrue(c.at_eof(5), "a refused connection must be closed")
        self.assertEqual(silent, 0, "connections left hanging without a greeting")
        self.assertEqual(greeted, 10, "max_preauth_per_ip defaults to 10")
        self.assertEqual(refused, 110)
        # the victim, from another address, is served at once and can log in
        v = connect_from(co, "imap", VICTIM, timeout=5)
        self.addCleanup(v.close)
        self.assertRegex(self.login(v), rb"^l OK")
        # measured: the flood holds at most 10 workers; others remain for everybody else.
        # A worker that has just closed a refused connection says it is ready again a moment
        # later: wait (bounded) for the count to settle rather than read it once
        st = wait_for(lambda: (lambda s: s if s["busy"] <= 11 else None)(co.status()["imap"]),
                      10, 0.2, "busy imap workers down to the flood's 10 and the victim")
        self.assertLessEqual(st["busy"], 11, st)
        self.assertGreater(maxchild - st["busy"], 0, st)
        self.assertEqual(st["preauth"], 10, st)
        self.assertEqual(st["loggedin"], 1, st)
        self.assertTrue(co.wait_log(r"event=connect_refused .*reason=max_preauth_per_ip", 5))

    # ---- H2: the pre-login deadline

    def test_h2_login_timeout_silent_peer(self):
        co = self.new_coffer(global_settings=dict(BASE, login_timeout="2s"))
        co.add_user("fred", "secret")
        goodbye = {"imap": rb"^\* BYE", "pop3": rb"^-ERR", "lmtp": rb"^421 "}
        for svc, pat in goodbye.items():
            c = co.connect(svc)
            self.addCleanup(c.close)
            self.assertIsNotNone(first_line(c, 10))       # the greeting
            t0 = time.monotonic()
            c.expect(pat, timeout=6)
            self.assertTrue(c.at_eof(3), "%s: closed after its goodbye" % svc)
            took = time.monotonic() - t0
            self.assertLess(took, 5, "%s: login_timeout 2s took %.1fs" % (svc, took))
            self.assertGreater(took, 1.0, "%s: closed too early (%.1fs)" % (svc, took))
        self.assertTrue(co.wait_log(r"event=disconnect .*reason=login_timeout", 5))
        # after login the idle timeout (30 minutes) applies, not login_timeout
        c = co.connect("imap")
        self.addCleanup(c.close)
        self.assertRegex(self.login(c), rb"^l OK")
        time.sleep(3)
        self.assertRegex(c.imap("n", "NOOP")[0], rb"^n OK")

    def test_h2_login_timeout_trickle(self):
        co = self.new_coffer(global_settings=dict(BASE, login_timeout="2s"))
        for svc in ("imap", "pop3"):
            c = co.connect(svc)
            self.addCleanup(c.close)
            first_line(c, 10)
            t0 = time.monotonic()
            closed = False
            # one byte every 0.2 s, never a whole line: a per-byte timeout would never fire
            while time.monotonic() - t0 < 8:
                try:
                    c.send(b"x")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                if peer_closed(c, 0.2):
                    closed = True
                    break
            took = time.monotonic() - t0
            self.assertTrue(closed, "%s: trickling kept the connection for 8s" % svc)
            self.assertLess(took, 4.5, "%s: trickle stretched login_timeout to %.1fs" % (svc, took))
        # a flood of complete commands does not stretch it either
        c = co.connect("imap")
        self.addCleanup(c.close)
        first_line(c, 10)
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 8 and not closed:
            try:
                c.send(b"a NOOP\r\n" * 20)
                c.sock.settimeout(0.05)
                data = c.sock.recv(65536)
                closed = data == b""
            except (socket.timeout, TimeoutError):
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        self.assertTrue(closed, "a busy unauthenticated peer kept its worker for 8s")
        self.assertLess(time.monotonic() - t0, 4.5)

    def test_h2_stalled_tls_handshake(self):
        co = self.new_coffer(global_settings=dict(BASE, login_timeout="2s"))
        # implicit TLS: TCP connected, no ClientHello
        for svc in ("imaps", "pop3s"):
            s = co.raw_socket(svc)
            c = Conn(s, 10)
            self.addCleanup(c.close)
            took = closed_within(c, 6)
            self.assertIsNotNone(took, "%s: a stalled handshake held the worker" % svc)
        # half a ClientHello is no better
        s = co.raw_socket("imaps")
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        c = Conn(s, 10)
        self.addCleanup(c.close)
        self.assertIsNotNone(closed_within(c, 6), "a partial ClientHello held the worker")
        # STARTTLS, STLS and LMTP STARTTLS (after LHLO, when the login deadline no longer runs)
        for svc, cmds, ok in (("imap", [b"a STARTTLS"], rb"^a OK"),
                              ("pop3", [b"STLS"], rb"^\+OK"),
                              ("lmtp", [b"LHLO x", b"STARTTLS"], rb"^220 ")):
            c = co.connect(svc)
            self.addCleanup(c.close)
            first_line(c, 10)
            for cmd in cmds:
                c.cmd(cmd)
            c.expect(ok)
            t0 = time.monotonic()
            self.assertTrue(c.wait_eof(6), "%s: a stalled STARTTLS handshake held the worker"
                            % svc)
            self.assertLess(time.monotonic() - t0, 5)
        self.assertTrue(co.wait_log(r"handshake timed out", 5))

    # ---- H2, L8: the per-user-and-address limit after login

    def test_h2_userip_limit(self):
        co = self.new_coffer(global_settings=dict(BASE))
        co.add_user("fred", "secret")
        co.add_user("wilma", "secret")
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for i in range(10):
            c = connect_from(co, "imap", ATTACKER)
            held.append(c)
            self.assertRegex(self.login(c), rb"^l OK", "login %d" % (i + 1))
            if i % 2:
                # IDLE sessions count like any other (L8)
                c.cmd("i IDLE")
                c.expect(rb"^\+ ")
        eleventh = connect_from(co, "imap", ATTACKER)
        self.addCleanup(eleventh.close)
        self.assertEqual(self.login(eleventh), b"l NO [LIMIT] Too many connections\r\n")
        self.assertTrue(co.wait_log(r"event=login_refused .*reason=max_userip_connections", 5))
        # the refused session is still unauthenticated but alive: another user may log in on it
        self.assertRegex(eleventh.imap("w", "LOGIN wilma secret")[0], rb"^w OK")
        # the same user from another address is not affected
        other = connect_from(co, "imap", VICTIM)
        self.addCleanup(other.close)
        self.assertRegex(self.login(other), rb"^l OK")
        # one of the ten logs out: the place is free again
        self.assertRegex(held[0].imap("o", "LOGOUT")[0], rb"^o OK")
        held[0].close()
        again = connect_from(co, "imap", ATTACKER)
        self.addCleanup(again.close)
        self.assertRegex(self.login(again), rb"^l OK")
        st = co.status()["imap"]
        self.assertEqual(st["loggedin"], 12, st)

    def test_h2_logout_frees_the_place_at_once(self):
        """A session told "LOGOUT completed" no longer counts: the same user coming straight
        back from the same address is let in even at max_userip_connections 1. The worker
        used to leave the connection table only after flushing the reply and tearing the
        session down (closing a NOTIFY inotify instance takes milliseconds), so the quick
        return was refused with NO [LIMIT] for the client's own finished session."""
        co = self.new_coffer(global_settings=dict(BASE, max_userip_connections="1"))
        co.add_user("fred", "secret")
        for i in range(40):
            c = connect_from(co, "imap", ATTACKER)
            self.addCleanup(c.close)
            self.assertRegex(self.login(c), rb"^l OK")
            self.assertRegex(c.imap("s", "SELECT INBOX")[0], rb"^s OK")
            self.assertRegex(c.imap("n", "NOTIFY SET (selected (MessageNew MessageExpunge)) "
                                         "(personal (MessageNew MessageExpunge))")[0], rb"^n OK")
            self.assertRegex(c.imap("o", "LOGOUT")[0], rb"^o OK")
            again = connect_from(co, "imap", ATTACKER)
            self.addCleanup(again.close)
            self.assertRegex(self.login(again), rb"^l OK", "round %d" % i)
            self.assertRegex(again.imap("o", "LOGOUT")[0], rb"^o OK")
            c.close()
            again.close()
        # POP3 gives its place up before "+OK ... signing off" the same way (it has no slow
        # teardown to show the old order, but the same rule holds)
        for _ in range(5):
            p = co.pop3()
            p.user("fred")
            p.pass_("secret")
            p.quit()

    # ---- H2: the counts after kill -9

    def test_h2_counts_recover_after_kill9(self):
        co = self.new_coffer(global_settings=dict(BASE, max_preauth_per_ip="3",
                                                  max_userip_connections="2"))
        co.add_user("fred", "secret")
        pre = [connect_from(co, "imap", OTHER) for _ in range(3)]
        self.addCleanup(lambda: [c.close() for c in pre])
        for c in pre:
            self.assertRegex(first_line(c, 10), rb"^\* OK")
        extra = connect_from(co, "imap", OTHER)
        self.addCleanup(extra.close)
        self.assertRegex(first_line(extra, 10), rb"^\* BYE \[UNAVAILABLE\]")
        users = [connect_from(co, "imap", ATTACKER) for _ in range(2)]
        self.addCleanup(lambda: [c.close() for c in users])
        for c in users:
            self.assertRegex(self.login(c), rb"^l OK")
        over = connect_from(co, "imap", ATTACKER)
        self.addCleanup(over.close)
        self.assertRegex(self.login(over), rb"^l NO \[LIMIT\]")
        over.close()
        # kill -9 every worker holding one of those connections: no chance to clean up
        victims = set()
        for c in pre + users:
            w = wait_for(lambda: co.worker_for(c.sock), 10, what="the worker of a connection")
            victims.add(w.pid)
        self.assertEqual(len(victims), 5)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        for c in pre + users:
            self.assertTrue(peer_closed(c, 10))
        wait_for(lambda: (lambda s: s.get("preauth") == 0 and s.get("loggedin") == 0)(
            co.status()["imap"]), 20, 0.3, "the table to forget the killed workers")
        fresh = [connect_from(co, "imap", OTHER) for _ in range(3)]
        self.addCleanup(lambda: [c.close() for c in fresh])
        for c in fresh:
            self.assertRegex(first_line(c, 10), rb"^\* OK")
        logins = [connect_from(co, "imap", ATTACKER) for _ in range(2)]
        self.addCleanup(lambda: [c.close() for c in logins])
        for c in logins:
            self.assertRegex(self.login(c), rb"^l OK")

    # ---- L13: a huge idle_timeout is clamped, not overflowed

    def test_l13_huge_idle_timeout(self):
        # 10^14 days is accepted by the config parser (it fits a long long in seconds); times
        # 1000 it overflowed in IDLE (UBSan, fatal in the sanitizer build) and cast to int it
        # turned negative, i.e. no timeout
        co = self.new_coffer(global_settings=dict(BASE, idle_timeout="100000000000000d"))
        co.add_user("fred", "secret")
        c = co.connect("imap")
        self.addCleanup(c.close)
        self.assertRegex(self.login(c), rb"^l OK")
        self.assertRegex(c.imap("s", "SELECT INBOX")[0], rb"^s OK")
        c.cmd("i IDLE")
        c.expect(rb"^\+ ")
        c.cmd("DONE")
        self.assertRegex(c.read_tagged("i")[0], rb"^i OK")
        self.assertRegex(c.imap("o", "LOGOUT")[0], rb"^o OK")


if __name__ == "__main__":
    main()
