"""test_run_cluster.py: the scale-out demo, scripts/run-cluster.sh (make run-cluster;
docs/scale-out.md). Starts the script on free loopback ports with a temporary data directory,
delivers one message to alice and bob through the LMTP entry (lmtproute, which routes each
recipient to its backend; each backend's log names only its own user), logs in through nginx's
front (IMAP with STARTTLS, POP3 with STLS) as alice and bob and sees each user's own message
(so each landed on its own backend), moves alice to b while she is connected through nginx
(her session ends; a new login through nginx reaches b and sees her mail), then sends SIGINT to the script and checks that nginx, the three cofferd masters and
all their children are gone within a bound and the ports are closed. Skipped when nginx or its
mail module is missing (nginx-light, libnginx-mod-mail)."""
import imaplib
import os
import poplib
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import HOST, bin_dir, free_port, main, src_dir, wait_for  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_MAIL = "/usr/lib/nginx/modules/ngx_mail_module.so"
PORTS = ("FRONT_IMAP_PORT", "FRONT_POP3_PORT", "ROUTER_PORT", "LMTP_PORT", "A_IMAP_PORT", "A_POP3_PORT",
         "A_LMTP_PORT", "A_ADMIN_PORT", "B_IMAP_PORT", "B_POP3_PORT", "B_LMTP_PORT", "B_ADMIN_PORT")


def proc_table():
    """{pid: (ppid, cmdline)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        out[int(d)] = (ppid, cmd)
    return out


def descendants(table, roots):
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_open(port):
    try:
        socket.create_connection((HOST, port), timeout=2).close()
        return True
    except OSError:
        return False


@unittest.skipUnless(os.access(NGINX, os.X_OK) and os.path.exists(NGINX_MAIL),
                     "needs nginx-light and libnginx-mod-mail (scripts/deps.sh)")
class RunClusterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-cluster-")
        os.chmod(self.tmp, 0o711)            # the service user walks into var/ when run as root
        self.var = os.path.join(self.tmp, "var")
        self.ports = {}
        while len(set(self.ports.values())) != len(PORTS):
            self.ports = {k: free_port() for k in PORTS}
        env = dict(os.environ, CLUSTER_VAR=self.var,
                   **{k: str(v) for k, v in self.ports.items()})
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        self.out = open(os.path.join(self.tmp, "run-cluster.out"), "wb")
        self.proc = subprocess.Popen(
            ["sh", os.path.join(src_dir(), "scripts", "run-cluster.sh"),
             os.path.dirname(bin_dir())], stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.pids = []                       # the cluster's processes, once known
        self.addCleanup(self.cleanup)

    def cleanup(self):
        """After a failure: nginx (its master and workers, by the pid file), the script's
        process group and anything left of the cluster, so no test leaves a process behind."""
        roots = []
        try:
            with open(os.path.join(self.var, "nginx", "nginx.pid")) as f:
                roots.append(int(f.read().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
        table = proc_table()
        left = descendants(table, roots + [self.proc.pid] + self.pids)
        left.discard(os.getpid())
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in left:
            if not self.ours(pid, table):
                continue                      # a pid reused by someone else
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.out.close()
        if not os.environ.get("COFFER_KEEP_TMP"):
            shutil.rmtree(self.tmp, True)

    def ours(self, pid, table):
        """Whether pid is (still) a process of this cluster: its command line or one of its
        open files is under the test's directory."""
        if self.tmp in table.get(pid, (0, ""))[1]:
            return True
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            return False
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(self.tmp):
                    return True
            except OSError:
                pass
        return False

    def output(self):
        with open(os.path.join(self.tmp, "run-cluster.out"), errors="replace") as f:
            return f.read()

    def deliver(self, port, user):
        with smtplib.LMTP(HOST, port, timeout=15) as l:
            msg = ("From: s@example.org\r\nTo: %s\r\nSubject: for %s\r\n\r\nhello %s\r\n"
                   % (user, user, user))
            self.assertEqual(l.sendmail("s@example.org", [user], msg.encode()), {})

    def log(self, instance):
        with open(os.path.join(self.var, instance, "cofferd.log"), errors="replace") as f:
            return f.read()

    def test_cluster_up_routes_and_stops(self):
        p = self.ports

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("run-cluster.sh exited %d:\n%s"
                                     % (self.proc.returncode, self.output()))
            return all(port_open(p[k]) for k in PORTS)
        wait_for(up, 45, 0.2, "every port of the cluster listening")

        self.assertIn("LMTP 127.0.0.1:%d" % p["LMTP_PORT"], self.output())
        # one LMTP entry for both: the router's lmtproute passes each to its backend
        self.deliver(p["LMTP_PORT"], "alice")
        self.deliver(p["LMTP_PORT"], "bob")
        for inst, mine, other in (("a", "alice", "bob"), ("b", "bob", "alice")):
            self.assertIn("user=%s" % mine, self.log(inst))
            self.assertNotIn("user=%s" % other, self.log(inst))
        self.assertIn("backend=a", self.log("router"))
        self.assertIn("backend=b", self.log("router"))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for user in ("alice", "bob"):
            im = imaplib.IMAP4(HOST, p["FRONT_IMAP_PORT"], timeout=15)
            try:
                self.assertIn("STARTTLS", im.capabilities)
                im.starttls(ctx)
                im.login(user, user)
                self.assertEqual(im.select("INBOX"), ("OK", [b"1"]))
                typ, data = im.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                self.assertIn(("Subject: for %s" % user).encode(), data[0][1])
            finally:
                im.logout()
            pop = poplib.POP3(HOST, p["FRONT_POP3_PORT"], timeout=15)
            try:
                pop.stls(ctx)
                pop.user(user)
                pop.pass_(user)
                self.assertEqual(pop.stat()[0], 1)
                self.assertIn(("hello %s" % user).encode(), b"\n".join(pop.retr(1)[1]))
                pop.quit()
            finally:
                pop.close()
        # a wrong password stops at the front
        im = imaplib.IMAP4(HOST, p["FRONT_IMAP_PORT"], timeout=30)
        try:
            im.starttls(ctx)
            with self.assertRaises(imaplib.IMAP4.error):
                im.login("alice", "bob")
        finally:
            im.logout()

        # the move the script prints: alice to b while she is connected through nginx; her
        # session ends, a new login through nginx reaches b and sees her mail, and mail for her
        # through the LMTP entry lands on b
        self.assertIn("user move alice --to b", self.output())
        im = imaplib.IMAP4(HOST, p["FRONT_IMAP_PORT"], timeout=15)
        im.starttls(ctx)
        im.login("alice", "alice")
        im.select("INBOX")
        mv = subprocess.run([os.path.join(bin_dir(), "coffer"), "-C",
                             os.path.join(self.var, "router", "coffer.conf"), "user", "move",
                             "alice", "--to", "b"], capture_output=True, text=True, timeout=120)
        self.assertEqual(mv.returncode, 0, mv.stdout + mv.stderr)
        with self.assertRaises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError)):
            for _ in range(50):                  # the backend ended it; nginx closes the front
                im.noop()
                time.sleep(0.1)
        try:
            im.shutdown()
        except OSError:
            pass
        im = imaplib.IMAP4(HOST, p["FRONT_IMAP_PORT"], timeout=15)
        try:
            im.starttls(ctx)
            im.login("alice", "alice")
            self.assertEqual(im.select("INBOX"), ("OK", [b"1"]))
        finally:
            im.logout()
        self.deliver(p["LMTP_PORT"], "alice")
        self.assertIn("user=alice", self.log("b"))
        self.assertIn("moved", self.log("router") + mv.stdout)

        # every process of the cluster: the script's process group, nginx and all children
        with open(os.path.join(self.var, "nginx", "nginx.pid")) as f:
            nginx = int(f.read().split()[0])
        table = proc_table()
        group = [pid for pid in table if pid != os.getpid() and _pgid(pid) == self.proc.pid]
        pids = descendants(table, [self.proc.pid, nginx] + group)
        self.pids = sorted(pids)
        masters = [pid for pid in pids if "cofferd" in table.get(pid, (0, ""))[1]]
        self.assertGreaterEqual(len(masters), 3, table)

        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        wait_for(lambda: not any(alive(pid) for pid in pids), 20, 0.1,
                 "every cluster process gone")
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(self.proc.returncode, 0, self.output())
        self.assertFalse([k for k in PORTS if port_open(p[k])])
        self.assertIn("run-cluster: stopping", self.output())


def _pgid(pid):
    try:
        return os.getpgid(pid)
    except OSError:
        return None


if __name__ == "__main__":
    main()
