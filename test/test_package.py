"""test_package.py: the Debian package (issue 17). Builds the .deb from this build tree with
CPack (the same install rules and maintainer scripts as `make deb`; the binaries are the test
build's), installs it with dpkg into a clean root made here (its own dpkg database and
/etc/passwd; maintainer scripts run with DPKG_ROOT, dpkg --force-script-chrootless), and
checks what the package promises: the `coffer` system user and its 0700 state directories, a
certificate, the unit, conffiles, nothing started. Then runs the server from the installed
tree (cofferd started as root under the capability bounding set and no-new-privs of
coffer.service, a config pointing into the root, loopback ports): a user is added, mail is
delivered over the LMTP socket and read over IMAP. An upgrade keeps a changed coffer.conf;
purge keeps the mail unless COFFER_PURGE_MAIL=yes."""
import imaplib
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import bin_dir, free_port, main, service_user, src_dir, wait_for  # noqa: E402

HOST = "127.0.0.1"
CONF = "etc/coffer/coffer.conf"


def have(prog):
    return shutil.which(prog) is not None


def sh(argv, env=None, timeout=120, check=True):
    e = dict(os.environ)
    e.update(env or {})
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e,
                       timeout=timeout)
    out = r.stdout.decode(errors="replace")
    if check and r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(argv), r.returncode, out))
    return r.returncode, out


def unit_caps():
    """The CapabilityBoundingSet= of the unit as built (build dir/coffer.service)."""
    with open(os.path.join(os.path.dirname(bin_dir()), "coffer.service")) as f:
        for line in f:
            if line.startswith("CapabilityBoundingSet="):
                return line.split("=", 1)[1].split()
    raise AssertionError("no CapabilityBoundingSet in coffer.service")


@unittest.skipUnless(os.geteuid() == 0, "needs root (dpkg, a service user, chown)")
@unittest.skipUnless(all(have(p) for p in ("cpack", "dpkg", "dpkg-deb", "setpriv", "useradd")),
                     "needs cpack, dpkg, dpkg-deb, setpriv and useradd")
class PackageTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="coffer-e2e-pkg-")
        os.chmod(cls.tmp, 0o755)
        build = os.path.dirname(bin_dir())
        out = os.path.join(cls.tmp, "pkg")
        # uncompressed and without dpkg-shlibdeps: the sanitizer binaries are big, and the
        # machine is shared; `make deb` has both
        sh(["cpack", "-G", "DEB", "--config", os.path.join(build, "CPackConfig.cmake"),
            "-B", out, "-D", "CPACK_OUTPUT_FILE_PREFIX=" + out,
            "-D", "CPACK_DEBIAN_COMPRESSION_TYPE=none", "-D", "CPACK_DEBIAN_PACKAGE_SHLIBDEPS=OFF"],
           timeout=400)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(out, debs[0])
        cls.server = None

    @classmethod
    def tearDownClass(cls):
        cls.stop_server()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def stop_server(cls):
        p = cls.server
        cls.server = None
        if p and p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)

    # ---- a clean root

    def make_root(self, name):
        root = os.path.join(self.tmp, name)
        admin = os.path.join(root, "var/lib/dpkg")
        for d in ("info", "updates", "triggers"):
            os.makedirs(os.path.join(admin, d))
        for f in ("status", "available"):
            open(os.path.join(admin, f), "w").close()
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(root, "etc/group"), "w") as f:
            f.write("root:x:0:\n")
        for n in ("shadow", "gshadow"):
            with open(os.path.join(root, "etc", n), "w") as f:
                f.write("root:*::\n" if n == "gshadow" else "root:*:19000:0:99999:7:::\n")
            os.chmod(os.path.join(root, "etc", n), 0o640)
        if os.path.exists("/etc/login.defs"):
            shutil.copy("/etc/login.defs", os.path.join(root, "etc/login.defs"))
        return root

    def dpkg(self, root, *args, env=None, check=True):
        return sh(["dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends",
                   "--log=" + os.path.join(self.tmp, "dpkg.log")] + list(args), env=env,
                  check=check)

    def root_account(self, root, name):
        with open(os.path.join(root, "etc/passwd")) as f:
            for line in f:
                p = line.split(":")
                if p[0] == name:
                    return int(p[2]), int(p[3]), p[5], p[6].strip()
        return None

    def cofferd_running_from(self, root):
        exe = os.path.join(root, "usr/sbin/cofferd")
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    if os.readlink("/proc/%s/exe" % pid) == exe:
                        return int(pid)
                except OSError:
                    pass
        return None

    # ---- the tests

    def test_0_install_destdir(self):
        """`cmake --install` with DESTDIR (what `make install` runs): the FHS layout, a
        relocatable tree (cofferd finds its workers in ../libexec/coffer), and an existing
        coffer.conf kept on a second install."""
        dest = os.path.join(self.tmp, "stage")
        env = {"DESTDIR": dest}
        build = os.path.dirname(bin_dir())
        _, out = sh(["cmake", "--install", build], env=env)
        prefix = None
        for line in out.splitlines():
            m = re.search(r"Installing: %s(/.*)/sbin/cofferd$" % re.escape(dest), line)
            if m:
                prefix = m.group(1)
        self.assertIsNotNone(prefix, out)
        top = dest + prefix
        for f in ("sbin/cofferd", "sbin/coffer", "libexec/coffer/imapd", "libexec/coffer/pop3d",
                  "libexec/coffer/lmtpd", "lib/systemd/system/coffer.service",
                  "lib/tmpfiles.d/coffer.conf", "share/man/man8/coffer.8.gz",
                  "share/man/man5/coffer-store.5.gz"):
            self.assertTrue(os.path.exists(os.path.join(top, f)), f)
        with open(os.path.join(top, "lib/systemd/system/coffer.service")) as f:
            self.assertIn("ExecStart=%s/sbin/cofferd " % prefix, f.read())
        conf = os.path.join(dest, CONF)
        self.assertTrue(os.path.exists(conf))
        # the staged cofferd validates a configuration naming its workers by bare name
        test_conf = os.path.join(self.tmp, "stage.conf")
        user = service_user()   # as root, cofferd insists on one
        with open(test_conf, "w") as f:
            f.write("%sconfigdir = %s/state\npartitions = %s/parts\n[service imap]\n"
                    "program = imapd\nlisten = 127.0.0.1:%d\n" % (
                        "user = %s\n" % user if user else "", self.tmp, self.tmp, free_port()))
        with open(os.path.join(self.tmp, "parts"), "w") as f:
            f.write("default %s/spool\n" % self.tmp)
        rc, out = sh([os.path.join(top, "sbin/cofferd"), "-C", test_conf, "-t"], check=False)
        self.assertEqual(rc, 0, out)
        # a second install keeps the administrator's file
        with open(conf, "a") as f:
            f.write("# changed by the administrator\n")
        _, out = sh(["cmake", "--install", build], env=env)
        self.assertIn("Kept: %s" % conf, out)
        with open(conf) as f:
            self.assertTrue(f.read().endswith("# changed by the administrator\n"))

    def test_1_contents(self):
        _, info = sh(["dpkg-deb", "-I", self.deb])
        for want in ("Package: coffer", "Section: mail", "Depends: passwd, openssl"):
            self.assertIn(want, info)
        tmp = os.path.join(self.tmp, "ctrl")
        os.makedirs(tmp)
        sh(["dpkg-deb", "-e", self.deb, tmp])
        with open(os.path.join(tmp, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/coffer/coffer.conf",
                                                "/etc/coffer/partitions.conf"])
        _, listing = sh(["dpkg-deb", "-c", self.deb])
        files = set(re.findall(r"\s\./(\S+)$", listing, re.M))
        for want in ("usr/sbin/cofferd", "usr/sbin/coffer", "usr/libexec/coffer/imapd",
                     "usr/libexec/coffer/pop3d", "usr/libexec/coffer/lmtpd",
                     "usr/lib/systemd/system/coffer.service", "usr/lib/tmpfiles.d/coffer.conf",
                     "usr/share/man/man8/cofferd.8.gz", "usr/share/man/man5/coffer.conf.5.gz",
                     "etc/coffer/coffer.conf", "etc/coffer/partitions.conf"):
            self.assertIn(want, files)
        # nothing of the mail store's own is shipped: the package makes it, owned by coffer
        self.assertFalse([f for f in files if f.startswith(("var/", "run/"))])

    def test_2_install_run_upgrade_purge(self):
        root = self.make_root("root")
        _, out = self.dpkg(root, "-i", self.deb)
        # the system user, its directories, the certificate; nothing started
        acct = self.root_account(root, "coffer")
        self.assertIsNotNone(acct, "no coffer user in the root's /etc/passwd")
        uid, gid, home, shell = acct
        self.assertLess(uid, 1000)
        self.assertEqual((home, shell), ("/var/lib/coffer", "/usr/sbin/nologin"))
        for d in ("var/lib/coffer", "var/spool/coffer"):
            st = os.stat(os.path.join(root, d))
            self.assertEqual((st.st_uid, st.st_mode & 0o7777), (uid, 0o700), d)
        key = os.stat(os.path.join(root, "etc/coffer/tls/key.pem"))
        self.assertEqual((key.st_gid, key.st_mode & 0o777), (gid, 0o640))
        self.assertTrue(os.path.exists(os.path.join(root, "etc/coffer/tls/cert.pem")))
        self.assertIsNone(self.cofferd_running_from(root), "the package started cofferd")
        with open(os.path.join(root, "usr/lib/systemd/system/coffer.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/cofferd -C /etc/coffer/coffer.conf -f", unit)
        with open(os.path.join(root, "etc/coffer/partitions.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^default +/var/spool/coffer$")
        with open(os.path.join(root, CONF)) as f:
            shipped = f.read()
        self.assertIn("configdir = /var/lib/coffer", shipped)

        # ---- run the installed server, its paths moved into the root. The account is the
        # harness's (the root's coffer exists only in the root's /etc/passwd).
        user = service_user()
        upw = pwd.getpwnam(user)
        os.chown(os.path.join(root, "etc/coffer/tls/key.pem"), 0, upw.pw_gid)
        ports = {"imap": free_port(), "pop3": free_port()}
        lmtp_sock = os.path.join(root, "run/coffer/lmtp")
        conf = shipped
        for k, v in (("configdir", root + "/var/lib/coffer"), ("user", user),
                     ("pidfile", root + "/run/coffer/cofferd.pid"), ("log_target", "stderr"),
                     ("allow_plaintext", "yes")):
            conf, n = re.subn(r"(?m)^%s = .*$" % k, "%s = %s" % (k, v), conf)
            self.assertEqual(n, 1, k)
        conf = conf.replace("listen = *:143", "listen = %s:%d" % (HOST, ports["imap"]))
        conf = conf.replace("listen = *:110", "listen = %s:%d" % (HOST, ports["pop3"]))
        conf = re.sub(r"listen = \*:99[35]", lambda m: "listen = %s:%d" % (HOST, free_port()),
                      conf)
        conf = conf.replace("listen = /run/coffer/lmtp", "listen = " + lmtp_sock)
        conf, n = re.subn(r"(?m)^allow_plaintext = yes$",
                          "allow_plaintext = yes\nhostname = coffer.test\nadmins = admin", conf)
        self.assertEqual(n, 1)
        with open(os.path.join(root, CONF), "w") as f:
            f.write(conf)
        with open(os.path.join(root, "etc/coffer/partitions.conf"), "w") as f:
            f.write("default %s/var/spool/coffer\n" % root)
        cofferd = os.path.join(root, "usr/sbin/cofferd")
        coffer = os.path.join(root, "usr/sbin/coffer")
        conf_path = os.path.join(root, CONF)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        env.pop("COFFER_CONF", None)
        sh([cofferd, "-C", conf_path, "-t"])
        # root with only the unit's capabilities and no way to gain more, as systemd starts it
        caps = ",".join("+" + c[len("CAP_"):].lower() for c in unit_caps())
        log = open(os.path.join(self.tmp, "cofferd.log"), "wb")
        type(self).server = subprocess.Popen(
            ["setpriv", "--bounding-set=-all," + caps, "--inh-caps=-all", "--no-new-privs",
             cofferd, "-C", conf_path, "-f"], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd="/")
        try:
            def greets():
                try:
                    with socket.create_connection((HOST, ports["imap"]), timeout=2) as s:
                        return s.recv(100).startswith(b"* OK")
                except OSError:
                    if self.server.poll() is not None:
                        raise AssertionError("cofferd exited %d" % self.server.returncode)
                    return False
            wait_for(greets, 60, interval=0.2, what="the installed cofferd greeting")
            wait_for(lambda: os.path.exists(lmtp_sock), 30, what="the LMTP socket")
            # the workers are the installed ones, from libexec/coffer
            pid = self.server.pid
            kids = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE,
                                  text=True).stdout.split()
            exes = {os.readlink("/proc/%s/exe" % k) for k in kids
                    if os.path.exists("/proc/%s/exe" % k)}
            self.assertTrue(exes & {os.path.join(root, "usr/libexec/coffer", p)
                                    for p in ("imapd", "pop3d", "lmtpd")}, exes)
            for u in ("fred", "admin"):
                sh([coffer, "-C", conf_path, "user", "add", u, "-p", "pw"], env=env)
            with smtplib.LMTP(lmtp_sock, timeout=30) as l:
                l.sendmail("sender@example.com", ["fred"],
                           b"From: sender@example.com\r\nTo: fred@coffer.test\r\n"
                           b"Subject: from the package\r\n\r\nhello\r\n")
            m = imaplib.IMAP4(HOST, ports["imap"], timeout=30)
            m.login("fred", "pw")
            typ, data = m.select("INBOX")
            self.assertEqual((typ, data), ("OK", [b"1"]))
            typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertIn(b"from the package", data[0][1])
            m.logout()
        finally:
            self.stop_server()
            log.close()
        with open(os.path.join(self.tmp, "cofferd.log"), "rb") as f:
            text = f.read().decode(errors="replace")
        self.assertIn("event=stopped", text)
        self.assertNotIn("Sanitizer", text)

        # ---- upgrade to a newer version: the changed coffer.conf stays as it is
        newer = self.repack(self.deb, "0.1+test1", "# a line the new version adds\n")
        _, out = self.dpkg(root, "--force-confdef", "--force-confold", "-i", newer)
        with open(conf_path) as f:
            self.assertEqual(f.read(), conf)
        self.assertTrue(os.path.exists(conf_path + ".dpkg-dist"), out)
        self.assertIsNone(self.cofferd_running_from(root), "the upgrade started cofferd")
        _, status = sh(["dpkg-query", "--admindir=" + os.path.join(root, "var/lib/dpkg"),
                        "-W", "-f=${Version} ${Status}", "coffer"])
        self.assertEqual(status, "0.1+test1 install ok installed")

        # ---- purge: configuration gone, mail kept, and said so
        spool = os.path.join(root, "var/spool/coffer")
        kept = sum(len(fs) for _, _, fs in os.walk(spool))
        self.assertGreater(kept, 0)
        _, out = self.dpkg(root, "--purge", "coffer")
        self.assertIn("COFFER_PURGE_MAIL=yes", out)
        self.assertFalse(os.path.exists(os.path.join(root, "etc/coffer")), out)
        self.assertFalse(os.path.exists(os.path.join(root, "usr/sbin/cofferd")))
        self.assertEqual(sum(len(fs) for _, _, fs in os.walk(spool)), kept)
        self.assertTrue(os.path.exists(os.path.join(root, "var/lib/coffer/sasldb2")))
        # asked to: mail and databases go too
        self.dpkg(root, "-i", self.deb)
        _, out = self.dpkg(root, "--purge", "coffer", env={"COFFER_PURGE_MAIL": "yes"})
        self.assertFalse(os.path.exists(spool), out)
        self.assertFalse(os.path.exists(os.path.join(root, "var/lib/coffer")), out)

    def repack(self, deb, version, conf_extra):
        """deb with another version and a changed shipped coffer.conf (a new release)."""
        d = os.path.join(self.tmp, "repack-" + version)
        sh(["dpkg-deb", "-R", deb, d])
        ctl = os.path.join(d, "DEBIAN/control")
        with open(ctl) as f:
            text = re.sub(r"(?m)^Version: .*$", "Version: " + version, f.read())
        with open(ctl, "w") as f:
            f.write(text)
        with open(os.path.join(d, CONF), "a") as f:
            f.write(conf_extra)
        # md5sums must match the changed file
        sums = subprocess.run(["sh", "-c", "cd %s && find . -path ./DEBIAN -prune -o -type f "
                               "! -path './etc/*' -printf '%%P\\0' | xargs -0 md5sum" % d],
                              stdout=subprocess.PIPE, check=True).stdout
        with open(os.path.join(d, "DEBIAN/md5sums"), "wb") as f:
            f.write(sums)
        out = os.path.join(self.tmp, "coffer_%s.deb" % version)
        sh(["dpkg-deb", "-Znone", "--root-owner-group", "-b", d, out])
        return out


if __name__ == "__main__":
    main()
