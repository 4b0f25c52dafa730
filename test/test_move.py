"""test_move.py: `coffer user move` (man/coffer-user.8) and the admin endpoint admind
(man/admind.8) with two real backends and a router on loopback: a move while an IMAP client is
connected and mail is delivered every 100 ms through the router's socketmap (every message
acknowledged with 250 ends up on the destination exactly once, the client is disconnected,
logging in again works, the source holds nothing), kill -9 of the move tool after each step
and of an admind worker in the middle of a copy followed by a re-run, a rollback from a middle
step, and the endpoint's rights and limits."""
import base64
import imaplib
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import HOST, CofferTestCase, main, wait_for  # noqa: E402
import test_router  # noqa: E402  (its SocketMap client)

BACKEND_SERVICES = [("imap", "imapd", "starttls", False), ("lmtp", "lmtpd", "none", False),
                    ("admin", "admind", "implicit", False)]
MOVE_TIMEOUT = 120


class AdminConn:
    """A client of admind: TLS (implicit) or plain, lines and chunks."""

    def __init__(self, c, service="admin", tls=True):
        s = socket.create_connection((HOST, c.ports[service]), timeout=30)
        if tls:
            s = c.ssl_context().wrap_socket(s, server_hostname="localhost")
        self.s = s
        self.f = s.makefile("rb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def cmd(self, text):
        """(status line, ["* " lines]) of one command."""
        self.s.sendall(text.encode() + b"\r\n")
        data = []
        while True:
            ln = self.line()
            if ln.startswith("* "):
                data.append(ln[2:])
                continue
            return ln, data

    def auth(self, user, password):
        return self.cmd("AUTH PLAIN " + base64.b64encode(
            b"\0" + user.encode() + b"\0" + password.encode()).decode())[0]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Cluster:
    """Backends a and b (imapd, lmtpd, admind under TLS) and a router holding route.db."""

    def __init__(self, test, stall_file=None):
        self.a = test.new_coffer(start=False, services=BACKEND_SERVICES,
                                 global_settings={"admins": "admin"})
        self.b = test.new_coffer(start=False, services=BACKEND_SERVICES,
                                 global_settings={"admins": "admin"})
        if stall_file:
            env0 = self.b.env

            def env():
                e = env0()
                e["COFFER_TEST_ADMIND_STALL"] = stall_file
                return e
            self.b.env = env
        for c in (self.a, self.b):
            c.start()
            for u, p in (("alice", "alicepw"), ("admin", "adminpw"), ("carol", "carolpw")):
                c.add_user(u, p)
        self.r = test.new_coffer(start=False, services=[("router", "router", "none", False)],
                                 global_settings={"router_default_backend": "a"})
        pw = os.path.join(self.r.tmp, "admin.pw")
        with open(pw, "w") as f:
            f.write("adminpw\n")
        ca = os.path.join(self.r.tmp, "backends-ca.pem")
        with open(ca, "w") as f:
            for c in (self.a, self.b):
                with open(c.cert) as g:
                    f.write(g.read())
        os.chmod(pw, 0o644)
        os.chmod(ca, 0o644)
        self.r.globals.update({"move_admin_user": "admin", "move_admin_password_file": pw,
                               "move_admin_ca_file": ca})
        self.r.extra_config = "".join(
            "\n[backend %s]\nimap = 127.0.0.1:%d\nlmtp = 127.0.0.1:%d\nadmin = 127.0.0.1:%d\n"
            % (n, c.ports["imap"], c.ports["lmtp"], c.ports["admin"])
            for n, c in (("a", self.a), ("b", self.b)))
        self.r.write_config()
        self.r.start()
        self.r.add_user("alice", "alicepw")
        self.by_name = {"a": self.a, "b": self.b}

    def coffer(self, *args, timeout=MOVE_TIMEOUT):
        p = subprocess.run([os.path.join(self.r.bindir, "coffer"), "-C", self.r.conf_path]
                           + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, env=self.r.env())
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def move(self, *args):
        return self.coffer("user", "move", "alice", *args)

    def logs(self):
        """The logs' last lines, for a failure's message."""
        out = []
        for n, c in (("a", self.a), ("b", self.b), ("router", self.r)):
            with open(c.log_path, errors="replace") as f:
                lines = [ln for ln in f if "insecure_owner" not in ln]
            out.append("---- %s\n%s" % (n, "".join(lines[-40:])))
        return "\n".join(out)

    def route(self):
        rc, out, err = self.coffer("--json", "route", "get", "alice")
        assert rc == 0, err
        row = json.loads(out)[0]
        return row["backend"], row["state"]

    def verify(self, c):
        ac = AdminConn(c)
        try:
            assert ac.auth("admin", "adminpw").startswith("OK")
            st, data = ac.cmd("VERIFY alice")
            assert st.startswith("OK"), st
            return data
        finally:
            ac.close()

    def imap_login(self, c):
        m = c.imap()
        m.starttls(c.ssl_context())
        m.login("alice", "alicepw")
        return m

    def message_ids(self, c):
        """Message-IDs of alice's INBOX on c, as a list (duplicates kept)."""
        m = self.imap_login(c)
        try:
            m.select("INBOX", readonly=True)
            typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            ids = []
            for item in data:
                if isinstance(item, tuple):
                    found = re.search(rb"<([^>]+)>", item[1])
                    ids.append(found.group(1).decode())
            return ids
        finally:
            m.logout()


def deliver_direct(c, mid):
    with smtplib.LMTP(HOST, c.ports["lmtp"], timeout=30) as l:
        l.sendmail("sender@example.org", ["alice@example.org"],
                   "From: s@example.org\r\nTo: alice@example.org\r\nMessage-ID: <%s>\r\n"
                   "Subject: %s\r\n\r\nbody of %s\r\n" % (mid, mid, mid))


class Deliverer(threading.Thread):
    """Every 100 ms one message to alice, routed as Postfix would: a socketmap lookup at the
    router, then LMTP to the answer; TEMP or a 4xx is retried after 100 ms. acked: the
    Message-IDs answered 250."""

    def __init__(self, cluster, prefix):
        super().__init__(daemon=True)
        self.cl, self.prefix = cluster, prefix
        self.acked, self.temps, self.stop_flag, self.errors = [], 0, False, []
        self.reconnects = 0
        self.ports = {c.ports["lmtp"] for c in (cluster.a, cluster.b)}

    def run(self):
        sm = test_router.SocketMap(self.cl.r)
        n = 0
        try:
            while not self.stop_flag:
                mid = "%s-%d@test" % (self.prefix, n)
                while not self.stop_flag:
                    try:
                        ans = sm.lookup("alice@example.org")
                    except (EOFError, OSError):
                        sm.close()              # as Postfix does: connect again
                        sm = test_router.SocketMap(self.cl.r)
                        self.reconnects += 1
                        continue
                    if ans.startswith("TEMP"):
                        self.temps += 1
                        time.sleep(0.1)
                        continue
                    m = re.match(r"OK lmtp:inet:127\.0\.0\.1:(\d+)$", ans)
                    if not m or int(m.group(1)) not in self.ports:
                        self.errors.append(ans)
                        return
                    try:
                        with smtplib.LMTP(HOST, int(m.group(1)), timeout=30) as l:
                            l.sendmail("s@example.org", ["alice@example.org"],
                                       "Message-ID: <%s>\r\nSubject: %d\r\n\r\nbody\r\n" % (mid, n))
                        self.acked.append(mid)
                        break
                    except smtplib.SMTPException:
                        self.temps += 1
                        time.sleep(0.1)
                n += 1
                time.sleep(0.1)
        finally:
            sm.close()


class MoveTest(CofferTestCase):
    def setUp(self):
        super().setUp()
        self.cl = Cluster(self)
        for i in range(5):
            deliver_direct(self.cl.a, "pre-%d@test" % i)
        m = self.cl.imap_login(self.cl.a)
        m.create("Archive")
        m.append("Archive", None, None, b"Message-ID: <arch@test>\r\nSubject: a\r\n\r\nkept\r\n")
        m.subscribe("Archive")
        m.create("Old")                 # deleted: kept for undelete (delete_mode = delayed)
        m.append("Old", None, None, b"Message-ID: <old@test>\r\n\r\ngone\r\n")
        m.delete("Old")
        m.logout()

    def assert_only_on(self, cl, where, expect_ids):
        other = cl.a if where is cl.b else cl.b
        ids = cl.message_ids(where)
        self.assertEqual(len(ids), len(set(ids)), "a message was delivered twice")
        self.assertEqual(set(ids), set(expect_ids))
        self.assertIn("T 0 0", cl.verify(other), "the source still holds the user's mail")
        r = subprocess.run([os.path.join(other.bindir, "coffer"), "-C", other.conf_path, "--json",
                            "undelete", "alice", "--list"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60, env=other.env())
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(json.loads(r.stdout), [], "deleted mailboxes left on the source")
        name = "a" if where is cl.a else "b"
        self.assertEqual(cl.route(), (name, "ready"))

    def test_move_with_connected_client_and_deliveries(self):
        cl = self.cl
        idle = cl.imap_login(cl.a)
        idle.select("INBOX")
        d = Deliverer(cl, "live")
        d.start()
        # deliveries before the move and after it, counted rather than slept for (a loaded
        # machine delivers far fewer a second)
        wait_for(lambda: d.errors or len(d.acked) >= 6 or not d.is_alive(), 60, 0.1,
                 "six deliveries before the move")
        rc, out, err = cl.move("--to", "b")
        self.assertEqual(rc, 0, out + err + cl.logs())
        for step in ("marked", "fenced", "copied", "verified", "switched", "removed"):
            self.assertRegex(out, r"(?m)^%s\s+done" % step)
        self.assertIn("moved alice: a -> b", out)
        after = len(d.acked)
        wait_for(lambda: d.errors or len(d.acked) >= after + 5 or not d.is_alive(), 60, 0.1,
                 "five deliveries after the move")
        d.stop_flag = True
        d.join(60)
        self.assertFalse(d.errors, d.errors)
        self.assertGreater(len(d.acked), 10)
        # the connected client was ended by the fence
        with self.assertRaises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError)):
            idle.noop()
            idle.noop()
        self.assert_only_on(cl, cl.b, ["pre-%d@test" % i for i in range(5)] + d.acked)
        m = cl.imap_login(cl.b)
        typ, data = m.select("Archive", readonly=True)
        self.assertEqual(data, [b"1"])
        typ, subs = m.lsub()
        self.assertTrue(any(b"Archive" in s for s in subs))
        m.logout()
        # the source is fenced: a stale login or delivery there is refused for now
        m = cl.a.imap()
        m.starttls(cl.a.ssl_context())
        with self.assertRaisesRegex(imaplib.IMAP4.error, "UNAVAILABLE"):
            m.login("alice", "alicepw")
        with self.assertRaises(smtplib.SMTPRecipientsRefused) as e:
            deliver_direct(cl.a, "stale@test")
        self.assertEqual(list(e.exception.recipients.values())[0][0], 451)
        # and back to a, --json
        rc, out, err = cl.coffer("--json", "user", "move", "alice", "--to", "a")
        self.assertEqual(rc, 0, out + err)
        res = json.loads(out)
        self.assertEqual((res["result"], res["from"], res["to"]), ("moved", "b", "a"))
        self.assertEqual(res["messages"], 5 + len(d.acked) + 1)
        self.assert_only_on(cl, cl.a, ["pre-%d@test" % i for i in range(5)] + d.acked)

    def test_kill_move_tool_at_each_step_then_rerun(self):
        cl = self.cl
        ids = ["pre-%d@test" % i for i in range(5)]
        where, other = "a", "b"
        for step in ("started", "marked", "fenced", "copied", "verified", "switched"):
            p = subprocess.Popen([os.path.join(cl.r.bindir, "coffer"), "-C", cl.r.conf_path,
                                  "user", "move", "alice", "--to", other, "--pause-after", step],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 env=cl.r.env())
            got = b""
            deadline = time.monotonic() + MOVE_TIMEOUT
            while b"paused after" not in got and time.monotonic() < deadline:
                ln = p.stderr.readline()
                if not ln:
                    break
                got += ln
            self.assertIn(b"paused after " + step.encode(), got)
            p.kill()
            p.wait()
            p.stderr.close()
            # mid-move: a different destination is refused, the route says moving
            if step not in ("started", "switched"):
                self.assertEqual(cl.route(), (where, "moving"))
            rc, out, err = cl.move("--to", where)
            self.assertEqual(rc, 5, out + err)
            self.assertIn("unfinished", err)
            rc, out, err = cl.move("--to", other)
            self.assertEqual(rc, 0, "after a kill at %s: %s%s%s" % (step, out, err, cl.logs()))
            self.assertRegex(out, r"resume\s+%s" % step)
            self.assert_only_on(cl, cl.by_name[other], ids)
            deliver_direct(cl.by_name[other], "after-%s@test" % step)
            ids.append("after-%s@test" % step)
            where, other = other, where

    def test_rollback_from_middle_step(self):
        cl = self.cl
        ids = ["pre-%d@test" % i for i in range(5)]
        for step in ("fenced", "copied", "verified"):
            p = subprocess.Popen([os.path.join(cl.r.bindir, "coffer"), "-C", cl.r.conf_path,
                                  "user", "move", "alice", "--to", "b", "--pause-after", step],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 env=cl.r.env())
            got = b""
            while b"paused after" not in got:
                ln = p.stderr.readline()
                if not ln:
                    break
                got += ln
            p.kill()
            p.wait()
            p.stderr.close()
            rc, out, err = cl.move("--rollback")
            self.assertEqual(rc, 0, out + err)
            self.assertIn("rolled back", out)
            self.assert_only_on(cl, cl.a, ids)
            deliver_direct(cl.a, "after-rollback-%s@test" % step)   # unfenced again
            ids.append("after-rollback-%s@test" % step)
        rc, out, err = cl.move("--rollback")
        self.assertEqual(rc, 3, out + err)
        # after the switch a rollback is refused: the move is finished instead
        p = subprocess.Popen([os.path.join(cl.r.bindir, "coffer"), "-C", cl.r.conf_path,
                              "user", "move", "alice", "--to", "b", "--pause-after", "switched"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cl.r.env())
        while b"paused after" not in p.stderr.readline():
            pass
        p.kill()
        p.wait()
        p.stderr.close()
        rc, out, err = cl.move("--rollback")
        self.assertEqual(rc, 1, out + err)
        self.assertIn("switched the route already", err)
        self.assertEqual(cl.move("--to", "b")[0], 0)


class MoveKillEndpointTest(CofferTestCase):
    def test_kill_admind_worker_mid_copy_then_rerun(self):
        stall = os.path.join("/tmp", "coffer-move-stall-%d" % os.getpid())
        if os.path.exists(stall):
            os.unlink(stall)
        self.addCleanup(lambda: os.path.exists(stall) and os.unlink(stall))
        cl = Cluster(self, stall_file=stall)
        for i in range(20):
            deliver_direct(cl.a, "pre-%d@test" % i)
        p = subprocess.Popen([os.path.join(cl.r.bindir, "coffer"), "-C", cl.r.conf_path,
                              "--json", "user", "move", "alice", "--to", "b"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cl.r.env())
        wait_for(lambda: os.path.exists(stall) and open(stall).read().strip(), timeout=60)
        with open(stall) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGKILL)
        out, err = p.communicate(timeout=MOVE_TIMEOUT)
        self.assertNotEqual(p.returncode, 0, out + err)
        # --json: one object, the steps done and the failure in it
        res = json.loads(out)
        self.assertEqual(res["result"], "unfinished", out)
        self.assertIn("error", res)
        self.assertEqual(cl.route(), ("a", "moving"))
        # a failure before any step: one object too
        rc, out, err = cl.coffer("--json", "user", "move", "alice", "--to", "a")
        self.assertNotEqual(rc, 0)
        self.assertIn("error", json.loads(out))
        rc, out, err = cl.move("--to", "b")
        self.assertEqual(rc, 0, out + err + cl.logs())
        ids = cl.message_ids(cl.b)
        self.assertEqual(sorted(ids), sorted("pre-%d@test" % i for i in range(20)))
        self.assertIn("T 0 0", cl.verify(cl.a))


class AdminRightsTest(CofferTestCase):
    def test_rights_and_limits(self):
        c = self.new_coffer(services=BACKEND_SERVICES + [("adminplain", "admind", "none", False)],
                            global_settings={"admins": "admin"})
        c.add_user("admin", "adminpw")
        c.add_user("carol", "carolpw")
        a = AdminConn(c)
        self.assertTrue(a.greeting.startswith("OK coffer-admin"))
        self.assertTrue(a.cmd("VERIFY carol")[0].startswith("NO authenticate first"))
        self.assertTrue(a.auth("carol", "carolpw").startswith("NO not an administrator"))
        self.assertTrue(a.auth("admin", "wrong").startswith("NO authentication failed"))
        self.assertTrue(a.auth("admin", "wrong").startswith("NO authentication failed"))
        self.assertEqual(a.f.readline(), b"")           # the third failure closed it
        a.close()
        a = AdminConn(c)
        self.assertTrue(a.cmd("AUTH PLAIN " + base64.b64encode(
            b"carol\0admin\0adminpw").decode())[0].startswith("NO acting as another"))
        self.assertTrue(a.cmd("FROB x")[0].startswith("BAD unknown command"))
        self.assertTrue(a.cmd("VERIFY ../etc")[0].startswith("BAD not a valid user name"))
        self.assertTrue(a.cmd("VERIFY " + "x" * 2000)[0].startswith("NO line too long"))
        self.assertTrue(a.auth("admin", "adminpw").startswith("OK"))
        self.assertTrue(a.cmd("REMOVE carol")[0].startswith("NO not fenced here"))
        self.assertTrue(a.cmd("RESTORE carol")[0].startswith("GO"))
        a.s.sendall(b"+ 99999999\r\n")
        self.assertIn("too large", a.line())
        self.assertEqual(a.f.readline(), b"")
        a.close()
        # passwords never in the clear on a listener without TLS (allow_plaintext = no)
        p = AdminConn(c, "adminplain", tls=False)
        self.assertTrue(p.auth("admin", "adminpw").startswith("NO TLS required"))
        p.close()
        # a dump that is not one: refused, nothing left
        a = AdminConn(c)
        a.auth("admin", "adminpw")
        self.assertTrue(a.cmd("RESTORE carol")[0].startswith("GO"))
        junk = b"x" * 1024
        a.s.sendall(b"+ 1024\r\n" + junk + b"+ 0\r\n")
        st = a.line()
        self.assertTrue(st.startswith("NO") and "not a coffer dump" in st, st)
        st, data = a.cmd("VERIFY carol")
        self.assertIn("T 0 0", data)
        a.cmd("QUIT")
        a.close()
        self.assertEqual(c.sanitizer_reports(), [])


if __name__ == "__main__":
    main()
