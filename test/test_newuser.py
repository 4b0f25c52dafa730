"""test_newuser.py: what a new administrator meets first (issue 17): `coffer SUB --help` and
`cofferd --help` without any configuration; a store under a directory the service user cannot
enter is named, with the missing permission, by `cofferd -t`, at start and by `coffer user
passwd`; an administrator's SETQUOTA "user/fred" sets fred's root, not one in the
administrator's own namespace; scripts/deps.sh waits for a dpkg lock held by someone else."""
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (CofferTestCase, bin_dir, main, run_coffer, service_user,  # noqa: E402
                            src_dir)

SUBCOMMANDS = ["deliver", "acl", "check", "db", "dump", "expire", "mailbox", "quota",
               "reconstruct", "restore", "sieve", "status", "undelete", "unexpunge", "user"]


def run(argv, env=None, timeout=60, input=None):
    e = dict(os.environ)
    e.pop("COFFER_CONF", None)
    e.update(env or {})
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                       timeout=timeout, input=input)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


class HelpTest(unittest.TestCase):
    """Help never reads a configuration: -C names a file that does not exist."""

    def test_coffer_subcommand_help(self):
        coffer = os.path.join(bin_dir(), "coffer")
        for sub in SUBCOMMANDS:
            for flag in ("--help", "-h"):
                rc, out, err = run([coffer, "-C", "/nonexistent/coffer.conf", sub, flag])
                self.assertEqual(rc, 0, "%s %s: %s" % (sub, flag, err))
                self.assertIn("usage: coffer", out)
                self.assertIn(" %s " % sub, out)
                self.assertRegex(out, r"See coffer-\w+\(8\)")
                self.assertEqual(err, "")
        # after other words too, and through $COFFER_CONF
        rc, out, err = run([coffer, "quota", "set", "--help"],
                           env={"COFFER_CONF": "/nonexistent/c.conf"})
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("quota get|set", out)

    def test_password_that_looks_like_help_is_a_password(self):
        coffer = os.path.join(bin_dir(), "coffer")
        rc, out, err = run([coffer, "-C", "/nonexistent/coffer.conf", "user", "passwd", "fred",
                            "-p", "--help"])
        self.assertEqual(rc, 2)
        self.assertIn("bad configuration", err)

    def test_cofferd_help(self):
        cofferd = os.path.join(bin_dir(), "cofferd")
        for flag in ("--help", "-h"):
            rc, out, err = run([cofferd, "-C", "/nonexistent/coffer.conf", flag])
            self.assertEqual(rc, 0, err)
            self.assertIn("usage: cofferd", out)
            self.assertIn("cofferd(8)", out)
        rc, out, err = run([cofferd, "-x"])
        self.assertEqual(rc, 1)
        self.assertIn("usage: cofferd", err)


@unittest.skipUnless(os.geteuid() == 0, "needs root: the check is about the service user")
class UnreachableStoreTest(unittest.TestCase):
    """The store under a 0700 directory of root's: the service user cannot enter it."""

    def setUp(self):
        self.user = service_user()
        self.top = tempfile.mkdtemp(prefix="coffer-e2e-perm-")   # 0700, root's
        os.chmod(self.top, 0o711)
        self.addCleanup(shutil.rmtree, self.top, True)
        self.hidden = os.path.join(self.top, "hidden")
        store = os.path.join(self.hidden, "store")
        os.makedirs(os.path.join(store, "conf"))
        os.makedirs(os.path.join(store, "spool"))
        os.chmod(self.hidden, 0o700)
        os.chmod(store, 0o755)
        subprocess.run(["chown", "-R", self.user, store], check=True)
        self.conf = os.path.join(self.top, "coffer.conf")
        parts = os.path.join(self.top, "partitions.conf")
        with open(parts, "w") as f:
            f.write("default %s\n" % os.path.join(store, "spool"))
        with open(self.conf, "w") as f:
            f.write("configdir = %s\npartitions = %s\nuser = %s\nlog_target = stderr\n"
                    "pidfile = %s\n" % (os.path.join(store, "conf"), parts, self.user,
                                        os.path.join(store, "conf", "cofferd.pid")))
        os.chmod(self.conf, 0o644)
        os.chmod(parts, 0o644)

    def test_named_with_the_permission(self):
        cofferd = os.path.join(bin_dir(), "cofferd")
        coffer = os.path.join(bin_dir(), "coffer")
        want = ("has no search (x) permission on directory %s (mode 0700, owner root:root), "
                "which is on the way to %s/store/conf" % (self.hidden, self.hidden))
        rc, out, err = run([cofferd, "-C", self.conf, "-t"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("user %s (uid " % self.user, err)
        self.assertIn(want, err)
        self.assertIn("store/spool", err)
        self.assertNotIn("configuration OK", out)
        # a start fails the same way, before binding anything
        rc, out, err = run([cofferd, "-C", self.conf, "-f"], timeout=30)
        self.assertEqual(rc, 2, out + err)
        self.assertIn(want, err)
        for args in (["user", "passwd", "fred", "-p", "pw"], ["user", "add", "fred", "-p", "pw"],
                     ["mailbox", "list"], ["status"]):
            rc, out, err = run([coffer, "-C", self.conf] + args)
            self.assertEqual(rc, 1, "%s: %s" % (args, err))
            self.assertIn(want, err)
            self.assertNotIn("I/O error", err)
        # --json: the same sentence as {"error": ...}
        rc, out, err = run([coffer, "-C", self.conf, "--json", "user", "list"])
        self.assertEqual(rc, 1)
        self.assertIn('"error": "user %s' % self.user, out)
        # given the permission, all is well
        os.chmod(self.hidden, 0o711)
        rc, out, err = run([cofferd, "-C", self.conf, "-t"])
        self.assertEqual(rc, 0, err)
        rc, out, err = run([coffer, "-C", self.conf, "user", "add", "fred", "-p", "pw"])
        self.assertEqual(rc, 0, err)

    def test_unreadable_file(self):
        cofferd = os.path.join(bin_dir(), "cofferd")
        os.chmod(self.hidden, 0o711)
        os.chmod(self.conf, 0o600)
        rc, out, err = run([cofferd, "-C", self.conf, "-t"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("has no read (r) permission on file %s (mode 0600, owner root:root)"
                      % self.conf, err)


class ConventionalQuotaRootTest(CofferTestCase):
    """An administrator's SETQUOTA "user/fred" is fred's root (RFC 9208 section 4.1.3)."""

    def test_user_slash_name(self):
        c = self.new_coffer(global_settings={"allow_plaintext": "yes", "admins": "admin"})
        c.add_user("admin", "pw")
        c.add_user("fred", "pw")
        f = c.imap()
        f.login("fred", "pw")
        f.append("INBOX", None, None, b"Subject: x\r\n\r\n" + b"y" * 3000 + b"\r\n")
        a = c.imap()
        a.login("admin", "pw")
        typ, data = a._simple_command("SETQUOTA", '"user/fred"', "(STORAGE 100)")
        self.assertEqual(typ, "OK", data)
        untagged = a.untagged_responses.pop("QUOTA", [])
        self.assertEqual(untagged, [b'"Other Users/fred" (STORAGE 3 100)'])
        # fred sees it as the root of the INBOX
        typ, data = f.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        self.assertIn(b"STORAGE 3 100", b" ".join(x for x in data[1]))
        # GETQUOTA takes the same spelling
        typ, data = a._simple_command("GETQUOTA", '"user/fred"')
        self.assertEqual(typ, "OK")
        self.assertEqual(a.untagged_responses.pop("QUOTA", []),
                         [b'"Other Users/fred" (STORAGE 3 100)'])
        # nothing was made in the administrator's own namespace
        rc, out, err = run_coffer(c, "quota", "report", json_out=True)
        self.assertEqual(rc, 0, err)
        self.assertIn('"user/fred"', out.decode())
        self.assertNotIn("user/admin", out.decode())
        self.assertIn("quota_root_conventional", c.log_text())
        # an administrator who has a mailbox "user/fred" of their own keeps it as it was
        self.assertEqual(a.create("user/fred")[0], "OK")
        typ, data = a._simple_command("SETQUOTA", '"user/fred"', "(MESSAGE 5)")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(a.untagged_responses.pop("QUOTA", []), [b'"user/fred" (MESSAGE 0 5)'])
        rc, out, err = run_coffer(c, "quota", "report", json_out=True)
        self.assertIn('"user/admin/user/fred"', out.decode())
        # fred's own limit is untouched
        typ, data = a._simple_command("GETQUOTA", '"Other Users/fred"')
        self.assertEqual(a.untagged_responses.pop("QUOTA", []),
                         [b'"Other Users/fred" (STORAGE 3 100)'])
        # a user who is no administrator gets nothing from the spelling
        typ, data = f._simple_command("SETQUOTA", '"user/fred"', "(STORAGE 1)")
        self.assertEqual(typ, "NO")
        f.logout()
        a.logout()


LOCK = "/var/lib/dpkg/lock-frontend"


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("apt-get") and os.path.exists(LOCK),
                     "needs root and apt-get")
class DepsLockTest(unittest.TestCase):
    """scripts/deps.sh waits for the dpkg lock instead of failing at once. A dpkg-query
    wrapper says procps (installed) is missing, so deps.sh runs a real apt-get install of it
    (nothing to do once it has the lock; --no-upgrade, no network)."""

    def test_waits_for_lock(self):
        fake = tempfile.mkdtemp(prefix="coffer-e2e-deps-")
        self.addCleanup(shutil.rmtree, fake, True)
        real = shutil.which("dpkg-query")
        with open(os.path.join(fake, "dpkg-query"), "w") as f:
            f.write('#!/bin/sh\nfor a; do [ "$a" = procps ] && { echo "unknown ok '
                    'not-installed"; exit 0; }; done\nexec %s "$@"\n' % real)
        os.chmod(os.path.join(fake, "dpkg-query"), 0o755)
        fd = os.open(LOCK, os.O_RDWR)
        self.addCleanup(os.close, fd)
        deadline = time.monotonic() + 120
        while True:   # someone else's apt may hold it now: wait our turn
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.skipTest("%s stayed locked by another process" % LOCK)
                time.sleep(1)
        held = 3.0
        threading.Timer(held, fcntl.lockf, (fd, fcntl.LOCK_UN)).start()
        t0 = time.monotonic()
        rc, out, err = run(["sh", os.path.join(src_dir(), "scripts", "deps.sh")],
                           env={"PATH": fake + ":" + os.environ.get("PATH", ""),
                                "COFFER_APT_LOCK_TIMEOUT": "90"}, timeout=150)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, out + err)
        self.assertIn("deps: installing procps", out)
        self.assertGreaterEqual(took, held - 0.5, "deps.sh did not wait for the lock")


if __name__ == "__main__":
    main()
