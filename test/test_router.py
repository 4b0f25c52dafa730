"""test_router.py: the scale-out router service (man/router.8) and `coffer route`
(man/coffer-route.8): nginx auth_http answers (password check, backend address per protocol,
Auth-Wait growing with the attempt number, the moving state, the default backend, malformed
and oversized requests) with http.client and raw sockets, Postfix socketmap lookups over a raw
socket, and the route table verbs with --json and import."""
import http.client
import imaplib
import json
import os
import poplib
import shutil
import smtplib
import socket
import subprocess
import sys
import time
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (HOST, Coffer, CofferTestCase, SharedCofferTestCase,  # noqa: E402
                            free_port, main, run_coffer, wait_for)

BACKENDS = """
[backend b1]
imap = 127.0.0.1:1143
pop3 = 127.0.0.1:1110
lmtp = 127.0.0.1:1024

[backend b2]
imap = localhost:2143
pop3 = [::1]:2110
lmtp = [::1]:2024
"""

ROUTER_ONLY = [("router", "router", "none", False)]


def make_router(default):
    """kwargs for a Coffer running only the router service."""
    g = {"router_auth_wait": "1s", "router_move_wait": "7s"}
    if default:
        g["router_default_backend"] = default
    return {"services": ROUTER_ONLY, "global_settings": g}


def configure(c):
    c.extra_config = BACKENDS
    c.write_config()


_client_ips = iter("198.51.100.%d" % (n % 250 + 1) for n in range(1, 1 << 30))


def auth(c, user, password, protocol="imap", attempt=1, method="plain", extra=None):
    """(status, headers dict) of one auth_http request as nginx sends it; Client-IP is new
    for each request unless extra gives one (the router counts failures per address)."""
    conn = http.client.HTTPConnection(HOST, c.ports["router"], timeout=15)
    headers = {"Auth-Method": method, "Auth-User": urllib.parse.quote(user, safe="@"),
               "Auth-Pass": urllib.parse.quote(password, safe=""),
               "Auth-Protocol": protocol, "Auth-Login-Attempt": str(attempt),
               "Client-IP": next(_client_ips), "Client-Host": "[UNAVAILABLE]"}
    headers.update(extra or {})
    for k in [k for k, v in headers.items() if v is None]:
        del headers[k]
    conn.request("GET", "/auth", headers=headers)
    r = conn.getresponse()
    r.read()
    out = (r.status, {k: v for k, v in r.getheaders()})
    conn.close()
    return out


def raw(c, data, timeout=15):
    """Everything the router sends for data until it closes."""
    s = socket.create_connection((HOST, c.ports["router"]), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b
    finally:
        s.close()


def netstring(text):
    b = text.encode()
    return b"%d:%s," % (len(b), b)


class SocketMap:
    """One socketmap connection, several lookups on it (as Postfix keeps it open)."""

    def __init__(self, c):
        self.s = socket.create_connection((HOST, c.ports["router"]), timeout=15)
        self.buf = b""

    def reply(self):
        while True:
            if b":" in self.buf:
                n, rest = self.buf.split(b":", 1)
                n = int(n)
                if len(rest) >= n + 1:
                    assert rest[n:n + 1] == b",", self.buf
                    self.buf = rest[n + 1:]
                    return rest[:n].decode()
            b = self.s.recv(4096)
            if not b:
                raise EOFError("closed with %r pending" % self.buf)
            self.buf += b

    def lookup(self, key, name="route"):
        self.s.sendall(netstring("%s %s" % (name, key)))
        return self.reply()

    def at_eof(self):
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


class RouterTest(SharedCofferTestCase):
    coffer_kwargs = make_router("b1")

    @classmethod
    def setUpClass(cls):
        cls._any_failed = False
        cls.coffer = c = Coffer(**cls.coffer_kwargs)
        try:
            configure(c)
            c.start()
        except BaseException:
            c.close()
            raise
        for u, p in (("alice", "pw-a"), ("bob", "p w%+b"), ("carol", "pw-c"), ("dave", "pw-d")):
            c.add_user(u, p)
        rc, out, err = run_coffer(c, "route", "import", input=b"alice b1\n# comment\n\nbob b2\n")
        assert rc == 0, err
        rc, out, err = run_coffer(c, "route", "set", "dave", "b2", "--moving")
        assert rc == 0, err

    # ---- auth_http

    def test_ok_per_protocol_and_backend(self):
        c = self.coffer
        st, h = auth(c, "alice", "pw-a", "imap")
        self.assertEqual((st, h["Auth-Status"], h["Auth-Server"], h["Auth-Port"]),
                         (200, "OK", "127.0.0.1", "1143"))
        st, h = auth(c, "alice", "pw-a", "pop3")
        self.assertEqual((h["Auth-Server"], h["Auth-Port"]), ("127.0.0.1", "1110"))
        # bob: on b2, a password that needs percent-encoding; a host name becomes an address
        st, h = auth(c, "bob", "p w%+b", "imap")
        self.assertEqual(h["Auth-Status"], "OK")
        self.assertIn(h["Auth-Server"], ("127.0.0.1", "::1"))
        self.assertEqual(h["Auth-Port"], "2143")
        st, h = auth(c, "bob", "p w%+b", "pop3")
        self.assertEqual((h["Auth-Server"], h["Auth-Port"]), ("::1", "2110"))
        self.assertNotIn("Auth-Wait", h)
        self.assertTrue(c.log_grep(r"auth_routed .*user=bob.*backend=b2"))

    def test_default_backend(self):
        st, h = auth(self.coffer, "carol", "pw-c", "pop3")
        self.assertEqual((h["Auth-Status"], h["Auth-Server"], h["Auth-Port"]),
                         ("OK", "127.0.0.1", "1110"))

    def test_bad_password_waits_longer_each_attempt(self):
        c = self.coffer
        waits = []
        for attempt in (1, 2, 3):
            st, h = auth(c, "alice", "wrong", attempt=attempt)
            self.assertEqual((st, h["Auth-Status"]), (200, "Invalid login or password"))
            self.assertNotIn("Auth-Server", h)
            waits.append(int(h["Auth-Wait"]))
        self.assertEqual(waits, [1, 2, 3])
        st, h = auth(c, "alice", "wrong", attempt=1000)
        self.assertEqual(h["Auth-Wait"], "30")           # capped at 30 times router_auth_wait
        # an unknown user fails the same way (nothing tells it apart)
        st, h = auth(c, "nobody", "x")
        self.assertEqual((h["Auth-Status"], h["Auth-Wait"]), ("Invalid login or password", "1"))
        # a moving user with a bad password is refused as bad, not told to retry
        st, h = auth(c, "dave", "wrong")
        self.assertEqual(h["Auth-Status"], "Invalid login or password")

    def test_failures_counted_across_connections(self):
        """nginx's Auth-Login-Attempt restarts with each client connection: the router's own
        counts of a user's and an address's failures keep the wait growing."""
        c = self.coffer
        ip = {"Client-IP": "203.0.113.9"}
        waits = [auth(c, "carol", "wrong", extra=ip)[1]["Auth-Wait"] for _ in range(3)]
        self.assertEqual(waits, ["1", "2", "3"])
        # the right password ends the user's count (not the address's)
        self.assertEqual(auth(c, "carol", "pw-c", extra=ip)[1]["Auth-Status"], "OK")
        self.assertEqual(auth(c, "carol", "wrong")[1]["Auth-Wait"], "1")
        self.assertEqual(auth(c, "erin", "wrong", extra=ip)[1]["Auth-Wait"], "4")
        self.assertTrue(c.log_grep(r"auth_failed .*user=erin .*failures_client=4"))

    def test_moving_user_gets_temporary_error(self):
        c = self.coffer
        st, h = auth(c, "dave", "pw-d")
        self.assertEqual((h["Auth-Status"], h["Auth-Wait"]),
                         ("Temporary server problem, try again later", "7"))
        self.assertNotIn("Auth-Server", h)
        rc, out, err = run_coffer(c, "route", "mark", "dave", "ready")
        self.assertEqual(rc, 0, err)
        try:
            st, h = auth(c, "dave", "pw-d")
            self.assertEqual((h["Auth-Status"], h["Auth-Port"]), ("OK", "2143"))
        finally:
            run_coffer(c, "route", "mark", "dave", "moving")

    def test_unsupported_method_and_protocol(self):
        st, h = auth(self.coffer, "alice", "pw-a", method="cram-md5")
        self.assertEqual(h["Auth-Status"], "Authentication method not supported")
        st, h = auth(self.coffer, "alice", "pw-a", protocol="smtp")
        self.assertEqual(h["Auth-Status"], "Temporary server problem, try again later")
        st, h = auth(self.coffer, "alice", "pw-a", protocol="gopher")
        self.assertEqual(st, 400)

    def test_malformed_requests(self):
        c = self.coffer
        st, h = auth(c, "alice", "pw-a", extra={"Auth-User": None})
        self.assertEqual(st, 400)
        st, h = auth(c, "alice", "pw-a", extra={"Auth-Pass": "bad%zz"})
        self.assertEqual(st, 400)
        st, h = auth(c, "alice", "pw-a", extra={"Auth-Pass": "nul%00"})
        self.assertEqual(st, 400)
        st, h = auth(c, "alice", "pw-a", extra={"Auth-Login-Attempt": "x"})
        self.assertEqual(st, 400)
        for req in (b"garbage\r\n\r\n",
                    b"GET /auth HTTP/2.0\r\n\r\n",
                    b"GET /auth HTTP/1.0\r\n folded: x\r\n\r\n",
                    b"GET /auth HTTP/1.0\r\nA : b\r\n\r\n",
                    b"GET /auth HTTP/1.0\r\nAuth-User: a\r\nAuth-User: b\r\n\r\n",
                    b"GET /auth HTTP/1.0\r\nX: a\x01b\r\n\r\n"):
            out = raw(c, req)
            self.assertTrue(out.startswith(b"HTTP/1.0 400 "), (req, out))
        out = raw(c, b"POST /auth HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 405 "), out)
        # oversized: one long header line, and many short ones; answered and closed
        out = raw(c, b"GET /auth HTTP/1.0\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 400 "), out)
        out = raw(c, b"GET /auth HTTP/1.0\r\n" + b"X-Pad: 0123456789\r\n" * 600 + b"\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.0 400 "), out)
        self.assertTrue(c.log_grep(r"auth_http_refused .*reason=too_long"))

    # ---- socketmap

    def test_socketmap(self):
        m = SocketMap(self.coffer)
        try:
            self.assertEqual(m.lookup("alice@example.org"), "OK lmtp:inet:127.0.0.1:1024")
            self.assertEqual(m.lookup("bob"), "OK lmtp:inet:[::1]:2024")
            self.assertEqual(m.lookup("bob+lists@example.org"), "OK lmtp:inet:[::1]:2024")
            self.assertEqual(m.lookup("carol@example.org"), "OK lmtp:inet:127.0.0.1:1024")
            self.assertTrue(m.lookup("dave@example.org").startswith("TEMP "))
            self.assertEqual(m.lookup("@example.org"), "NOTFOUND ")
            self.assertTrue(m.lookup("alice", name="other").startswith("PERM "))
            # two requests in one write: two answers, in order
            m.s.sendall(netstring("route alice") + netstring("route bob"))
            self.assertEqual(m.reply(), "OK lmtp:inet:127.0.0.1:1024")
            self.assertEqual(m.reply(), "OK lmtp:inet:[::1]:2024")
            # a malformed netstring: PERM, then the connection is closed
            m.s.sendall(b"5:route alice,")
            self.assertTrue(m.reply().startswith("PERM "))
            self.assertTrue(m.at_eof())
        finally:
            m.close()
        for bad in (b"00:,", b"99999999:x,"):
            out = raw(self.coffer, bad)
            self.assertRegex(out, rb"^\d+:PERM [^,]*,$")

    # ---- coffer route

    def test_route_verbs(self):
        c = self.coffer
        rc, out, err = run_coffer(c, "route", "set", "erin", "b2")
        self.assertEqual((rc, out), (0, b"set erin\n"), err)
        rc, out, err = run_coffer(c, "route", "get", "erin", json_out=True)
        self.assertEqual(json.loads(out), [{"user": "erin", "backend": "b2", "state": "ready",
                                            "source": "table"}])
        rc, out, err = run_coffer(c, "route", "get", "zed", json_out=True)
        self.assertEqual(json.loads(out)[0]["source"], "default")
        rc, out, err = run_coffer(c, "route", "list")
        self.assertEqual(rc, 0)
        lines = out.decode().splitlines()
        self.assertRegex(lines[0], r"^user\s+backend\s+state\s+source")
        self.assertTrue(any(l.split()[:3] == ["dave", "b2", "moving"] for l in lines), lines)
        rc, out, err = run_coffer(c, "route", "list", json_out=True)
        users = {r["user"]: r for r in json.loads(out)}
        self.assertEqual(users["bob"]["backend"], "b2")
        rc, out, err = run_coffer(c, "route", "delete", "erin", json_out=True)
        self.assertEqual(json.loads(out), {"user": "erin", "result": "deleted"})
        rc, out, err = run_coffer(c, "route", "delete", "erin")
        self.assertEqual(rc, 3, err)
        rc, out, err = run_coffer(c, "route", "mark", "erin", "moving")
        self.assertEqual(rc, 3, err)
        rc, out, err = run_coffer(c, "route", "set", "erin", "b9")
        self.assertEqual(rc, 2)
        self.assertIn("no [backend b9]", err)
        rc, out, err = run_coffer(c, "route", "set", "e@x", "b1")
        self.assertEqual(rc, 2)
        rc, out, err = run_coffer(c, "route", "frob")
        self.assertEqual(rc, 2)

    def test_route_import(self):
        c = self.coffer
        with tempfile.NamedTemporaryFile("w", suffix=".routes", delete=False) as f:
            f.write("imp1 b2\nimp2 b1  # trailing comment\n")
        os.chmod(f.name, 0o644)
        try:
            rc, out, err = run_coffer(c, "route", "import", f.name, json_out=True)
            self.assertEqual((rc, json.loads(out)), (0, {"imported": 2}), err)
        finally:
            os.unlink(f.name)
        self.assertEqual(SocketMap(c).lookup("imp1"), "OK lmtp:inet:[::1]:2024")
        # one bad line: nothing of the file is written
        rc, out, err = run_coffer(c, "route", "import", input=b"imp3 b1\nimp4 nowhere\n")
        self.assertEqual(rc, 2)
        self.assertIn("-:2:", err)
        rc, out, err = run_coffer(c, "route", "get", "imp3", json_out=True)
        self.assertEqual(json.loads(out)[0]["source"], "default")
        # a user being moved is not overwritten by an import: all or nothing
        rc, out, err = run_coffer(c, "route", "import", input=b"imp5 b1\ndave b1\n")
        self.assertEqual(rc, 5, err)
        self.assertIn("dave is being moved", err)
        rc, out, err = run_coffer(c, "route", "get", "imp5", json_out=True)
        self.assertEqual(json.loads(out)[0]["source"], "default")
        # export: the table as import reads it (every entry, sorted, no moving mark);
        # imported back it changes nothing
        rc, out, err = run_coffer(c, "route", "list", json_out=True)
        table = {e["user"]: e["backend"] for e in json.loads(out)}
        rc, exported, err = run_coffer(c, "route", "export")
        self.assertEqual(rc, 0, err)
        lines = exported.decode().splitlines()
        self.assertEqual(lines, sorted(lines))
        self.assertEqual(dict(l.split(" ") for l in lines), table)
        self.assertIn("imp1 b2", lines)
        rc, out, err = run_coffer(c, "route", "mark", "dave", "ready")
        self.assertEqual(rc, 0, err)
        try:
            rc, out, err = run_coffer(c, "route", "import", input=exported, json_out=True)
            self.assertEqual((rc, json.loads(out)), (0, {"imported": len(lines)}), err)
        finally:
            run_coffer(c, "route", "mark", "dave", "moving")
        rc, out, err = run_coffer(c, "route", "list", json_out=True)
        self.assertEqual({e["user"]: e["backend"] for e in json.loads(out)}, table)


class RouterNoDefaultTest(CofferTestCase):
    def test_no_default_backend(self):
        c = self.new_coffer(start=False, **make_router(None))
        configure(c)
        c.start()
        c.add_user("frank", "pw-f")
        m = SocketMap(c)
        try:
            self.assertEqual(m.lookup("frank@example.org"), "NOTFOUND ")
        finally:
            m.close()
        st, h = auth(c, "frank", "pw-f")
        self.assertEqual(h["Auth-Status"], "Temporary server problem, try again later")
        rc, out, err = run_coffer(c, "route", "get", "frank")
        self.assertEqual(rc, 3)
        run_coffer(c, "route", "set", "frank", "b2")
        st, h = auth(c, "frank", "pw-f", "pop3")
        self.assertEqual((h["Auth-Status"], h["Auth-Server"]), ("OK", "::1"))

    def test_bad_backend_config(self):
        c = self.new_coffer(start=False, **make_router("b7"))
        configure(c)
        rc, out, err = run_coffer(c, "route", "list")
        self.assertEqual(rc, 2)
        self.assertIn("router_default_backend 'b7'", err)
        c.extra_config = "\n[backend b1]\nimap = 127.0.0.1\nsmtp = x:1\n"
        c.write_config()
        rc, out, err = run_coffer(c, "route", "list")
        self.assertEqual(rc, 2)
        self.assertIn("is not HOST:PORT", err)
        self.assertIn("unknown backend setting 'smtp'", err)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_MAIL = "/usr/lib/nginx/modules/ngx_mail_module.so"
BACKEND_SERVICES = [("imap", "imapd", "none", False), ("pop3", "pop3d", "none", False),
                    ("lmtp", "lmtpd", "none", False)]


@unittest.skipUnless(os.access(NGINX, os.X_OK) and os.path.exists(NGINX_MAIL),
                     "needs nginx-light and libnginx-mod-mail (scripts/deps.sh)")
class NginxEndToEndTest(CofferTestCase):
    """A private nginx mail proxy in front of two Coffer backends, the router deciding:
    users on both backends log in through nginx over IMAP and POP3 and see their own mail,
    which was delivered to the LMTP address the router's socketmap named."""

    def start_nginx(self, router_port):
        d = tempfile.mkdtemp(prefix="coffer-nginx-")
        self.addCleanup(shutil.rmtree, d, True)
        self.nginx_imap, self.nginx_pop3 = free_port(), free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""load_module %(mod)s;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
worker_processes 1;
events { worker_connections 64; }
mail {
    server_name coffer.test;
    auth_http 127.0.0.1:%(router)d/auth;
    proxy_pass_error_message on;
    server { listen 127.0.0.1:%(imap)d; protocol imap; }
    server { listen 127.0.0.1:%(pop3)d; protocol pop3; }
}
""" % {"mod": NGINX_MAIL, "d": d, "router": router_port, "imap": self.nginx_imap,
       "pop3": self.nginx_pop3})
        log = open(os.path.join(d, "stderr.log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen([NGINX, "-p", d, "-e", os.path.join(d, "error.log"), "-c", conf,
                              "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)

        def stop():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        self.addCleanup(stop)

        def up():
            if p.poll() is not None:
                with open(os.path.join(d, "error.log"), errors="replace") as f:
                    raise AssertionError("nginx exited %d: %s" % (p.returncode, f.read()))
            try:
                socket.create_connection((HOST, self.nginx_imap), timeout=2).close()
                socket.create_connection((HOST, self.nginx_pop3), timeout=2).close()
                return True
            except OSError:
                return False
        wait_for(up, 20, 0.1, "nginx listening")
        self.nginx_dir = d

    def test_imap_and_pop3_through_nginx(self):
        backs = {}
        for name in ("b1", "b2"):
            backs[name] = self.new_coffer(services=BACKEND_SERVICES,
                                          global_settings={"allow_plaintext": "yes"})
        front = self.new_coffer(start=False, **make_router("b1"))
        front.extra_config = "".join(
            "\n[backend %s]\nimap = 127.0.0.1:%d\npop3 = 127.0.0.1:%d\nlmtp = 127.0.0.1:%d\n"
            % (n, c.ports["imap"], c.ports["pop3"], c.ports["lmtp"]) for n, c in backs.items())
        front.write_config()
        front.start()
        users = {"alice": ("pw-a", "b1"), "bob": ("pw-b", "b2")}
        for u, (pw, b) in users.items():
            front.add_user(u, pw)
            backs[b].add_user(u, pw)
        rc, out, err = run_coffer(front, "route", "import", input=b"bob b2\n")
        self.assertEqual(rc, 0, err)          # alice: the default backend

        # delivery: where the router's socketmap says
        m = SocketMap(front)
        try:
            for u in users:
                ans = m.lookup("%s@coffer.test" % u)
                self.assertTrue(ans.startswith("OK lmtp:inet:127.0.0.1:"), ans)
                port = int(ans.rsplit(":", 1)[1])
                with smtplib.LMTP(HOST, port, timeout=15) as l:
                    l.sendmail("s@example.org", [u], ("From: s@example.org\r\nTo: %s\r\n"
                               "Subject: for %s\r\n\r\nhello %s\r\n" % (u, u, u)).encode())
        finally:
            m.close()
        self.assertTrue(backs["b2"].log_grep(r"user=bob"))
        self.assertFalse(backs["b1"].log_grep(r"user=bob"))

        self.start_nginx(front.ports["router"])
        for u, (pw, b) in users.items():
            im = imaplib.IMAP4(HOST, self.nginx_imap, timeout=15)
            try:
                im.login(u, pw)
                typ, data = im.select("INBOX")
                self.assertEqual((typ, data), ("OK", [b"1"]))
                typ, data = im.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                self.assertIn(("Subject: for %s" % u).encode(), data[0][1])
            finally:
                im.logout()
            p = poplib.POP3(HOST, self.nginx_pop3, timeout=15)
            try:
                p.user(u)
                p.pass_(pw)
                self.assertEqual(p.stat()[0], 1)
                self.assertIn(("hello %s" % u).encode(), b"\n".join(p.retr(1)[1]))
                p.quit()
            finally:
                p.close()
            self.assertTrue(backs[b].log_grep(r"event=login .*user=%s" % u), u)
        # a bad password stops at the front: no backend sees it
        im = imaplib.IMAP4(HOST, self.nginx_imap, timeout=30)
        try:
            with self.assertRaises(imaplib.IMAP4.error):
                im.login("bob", "wrong")
        finally:
            im.logout()
        self.assertTrue(front.log_grep(r"auth_failed .*user=bob"))
        self.assertFalse(backs["b2"].log_grep(r"login_failed"))


if __name__ == "__main__":
    main()
