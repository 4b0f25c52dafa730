"""test_hostile_master.py: cofferd as root against a hostile service user (review M4) and the
pid-file lock (a master killed with SIGKILL restarts at once, before it is even reaped)."""
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main, proc_stat, wait_for  # noqa: E402

RUN_BOUND = 30


def make_victim_dir(test):
    """A root-owned directory (mode 0755) outside the instance's tree, holding one file."""
    d = tempfile.mkdtemp(prefix="coffer-victim-")
    test.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
    os.chmod(d, 0o755)
    with open(os.path.join(d, "precious"), "w") as f:
        f.write("precious data\n")
    os.chmod(os.path.join(d, "precious"), 0o644)
    return d


def owner_mode(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def run_bounded(c, bound=RUN_BOUND):
    """Start cofferd -f; return its exit code, or None when it was still running after
    bound seconds (it is then stopped). The victim checks come after either way."""
    p = c.spawn()
    try:
        return p.wait(bound)
    except subprocess.TimeoutExpired:
        c.proc = p
        c.stop_quietly()
        return None


class HostileMaster(CofferTestCase):

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("cofferd only runs as root in these attacks")

    def test_pidfile_lock_restart_after_sigkill(self):
        """A master killed with SIGKILL and not yet reaped (a zombie still called cofferd,
        whose pid is in the pid file) must not block a restart: only the lock counts."""
        c = self.new_coffer()
        old = c.proc
        # a second start while it runs: exit 4, and the pid file is untouched
        with open(c.pidfile_path()) as f:
            first = f.read()
        rc, out = c.run_cofferd(["-f"], RUN_BOUND)
        self.assertEqual(rc, 4, out)
        self.assertIn("already running as pid %d" % old.pid, out)
        with open(c.pidfile_path()) as f:
            self.assertEqual(f.read(), first)
        workers = c.workers()
        os.kill(old.pid, signal.SIGKILL)
        # wait until the master is a zombie (not reaped: we do not wait for it) and its
        # workers have gone (the kernel sends them SIGTERM when the master dies)
        wait_for(lambda: (proc_stat(old.pid) or ("", "Z"))[1] == "Z", 10, 0.02, "master dead")
        wait_for(lambda: all((proc_stat(w.pid) or ("", "Z"))[1] == "Z" for w in workers),
                 10, 0.05, "workers gone")
        self.assertEqual(proc_stat(old.pid)[0], "cofferd", "the dead master is still a zombie")
        self.assertTrue(os.path.exists(c.pidfile_path()))
        t0 = time.monotonic()
        c.start()
        self.assertLess(time.monotonic() - t0, 15)
        self.assertNotEqual(c.pid, old.pid)
        with open(c.pidfile_path()) as f:
            self.assertEqual(int(f.read().split()[0]), c.pid)
        for svc in c.services:
            c.greet(svc)
        old.wait(5)
        # the pid file is root's, a plain file, readable by all
        st = os.lstat(c.pidfile_path())
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o644))

    def test_m4_partition_symlink_not_followed(self):
        """The service user owns the directory above the partition (cofferd made it) and
        replaces the partition with a symlink to a root-owned directory: root must not make
        that directory the service user's, nor mode 0700."""
        victim = make_victim_dir(self)
        before = owner_mode(victim)
        c = self.new_coffer(start=False)
        # what the service user can do in its own directory (the harness gives it the whole
        # instance tree, as `chown -R coffer` in the demo does): rename, symlink
        os.rename(c.spool, c.spool + ".bak")
        os.symlink(victim, c.spool)
        rc = run_bounded(c)
        self.assertEqual(owner_mode(victim), before, "root changed the victim directory")
        self.assertEqual(owner_mode(os.path.join(victim, "precious")), (0, 0, 0o644))
        self.assertIsNotNone(rc, "cofferd started on a partition that is a planted symlink")
        self.assertNotEqual(rc, 0)
        self.assertRegex(c.log_text(), r"symbolic link")

    def test_m4_configdir_symlink_not_followed(self):
        """The same with configdir, in the instance directory the service user owns."""
        victim = make_victim_dir(self)
        before = owner_mode(victim)
        c = self.new_coffer(start=False)
        os.rmdir(c.configdir)
        os.symlink(victim, c.configdir)
        rc = run_bounded(c)
        self.assertEqual(owner_mode(victim), before, "root changed the victim directory")
        self.assertFalse(os.path.exists(os.path.join(victim, "cofferd.pid")))
        self.assertIsNotNone(rc)
        self.assertNotEqual(rc, 0)

    def test_m4_pidfile_tmp_symlink(self):
        """Pre-planted cofferd.pid.tmp.PID symlinks (the old predictable temp name) to a
        root-owned file must not be followed: the file keeps its data and owner. A symlink
        planted as the pid file itself is refused."""
        victim_dir = make_victim_dir(self)
        victim = os.path.join(victim_dir, "precious")
        c = self.new_coffer(start=False)
        with open("/proc/sys/kernel/ns_last_pid") as f:
            last = int(f.read())
        pf = c.pidfile_path()
        for pid in range(last + 1, last + 600):
            os.symlink(victim, "%s.tmp.%d" % (pf, pid))
        c.start()
        with open(victim) as f:
            self.assertEqual(f.read(), "precious data\n")
        self.assertEqual(owner_mode(victim), (0, 0, 0o644))
        self.assertFalse(os.path.islink(pf))
        c.stop()
        # the pid file itself a symlink: not opened, cofferd does not start
        if os.path.lexists(pf):
            os.unlink(pf)
        os.symlink(victim, pf)
        rc, out = c.run_cofferd(["-f"], RUN_BOUND)
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"pid file")
        with open(victim) as f:
            self.assertEqual(f.read(), "precious data\n")
        self.assertEqual(owner_mode(victim), (0, 0, 0o644))


if __name__ == "__main__":
    main()
