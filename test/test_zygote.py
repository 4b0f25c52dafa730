"""test_zygote.py: each service's workers are forked from one zygote per service: it is not
counted as a worker, is replaced when killed or stuck, is renewed on reload, follows its
master, and its workers share its library pages."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (CofferTestCase, main, pid_alive, proc_cmdline,  # noqa: E402
                            proc_stat, wait_for)

BOUND = 15              # seconds for the master to notice a death and fork a replacement


def private_dirty_kb(pid, needle):
    """Private_Dirty (KB) summed over pid's mappings whose path contains needle."""
    total, inside = 0, False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                inside = needle in line
            elif inside and first == "Private_Dirty:":
                total += int(line.split()[1])
    return total


def maps_of(pid, needle):
    """The address ranges of pid's mappings whose path contains needle."""
    with open("/proc/%d/maps" % pid) as f:
        return sorted(line.split()[0] for line in f if needle in line)


class Zygote(CofferTestCase):

    def one_zygote(self, c, service):
        return wait_for(lambda: len(c.zygotes(service)) == 1 and c.zygotes(service)[0], BOUND,
                        what="one %s zygote" % service)

    def test_one_zygote_per_service_not_counted(self):
        c = self.new_coffer(service_settings={"imap": {"prefork": 3}})
        for svc in c.services:
            z = self.one_zygote(c, svc)
            self.assertIn("-Z", proc_cmdline(z.pid))
        ws = wait_for(lambda: len(c.workers("imap")) >= 3 and c.workers("imap"), BOUND,
                      what="3 imap workers")
        for w in ws:
            argv = proc_cmdline(w.pid)
            self.assertNotIn("-Z", argv)
            self.assertIn("-W", argv)             # forked from the zygote, then renamed
            self.assertEqual(proc_stat(w.pid)[2], c.pid)   # reparented to the master
        # the status counts workers only
        st = wait_for(lambda: c.status().get("imap", {}).get("ready", 0) >= 3 and c.status(),
                      BOUND, 0.2, "imap ready >= 3")
        self.assertEqual(st["imap"]["workers"], len(c.workers("imap")))

    def test_kill_zygote_is_replaced(self):
        c = self.new_coffer(service_settings={"imap": {"prefork": 1}})
        old = self.one_zygote(c, "imap")
        idle = wait_for(lambda: c.workers("imap"), BOUND, what="an imap worker")
        since = c.log_size()
        os.kill(old.pid, signal.SIGKILL)
        new = wait_for(lambda: [z for z in c.zygotes("imap") if z.pid != old.pid], BOUND,
                       what="a new imap zygote")[0]
        self.assertFalse(pid_alive(old.pid) and proc_stat(old.pid)[1] != "Z")
        c.wait_log(r"event=zygote_crashed .*service=imap\b.*pid=%d\b" % old.pid, 5, since)
        # the workers it forked live on
        self.assertTrue(all(pid_alive(w.pid) for w in idle))
        # more sessions than idle workers: the master asks the new zygote for more
        conns = []
        try:
            for i in range(3):
                conn = c.connect("imap")
                conns.append(conn)
                conn.expect(rb"^\* OK")
                self.assertRegex(conn.imap("a%d" % i, "NOOP")[0], rb"^a%d OK" % i)
            fresh = [w for w in c.workers("imap") if w.pid not in {x.pid for x in idle}]
            self.assertTrue(fresh, "no worker from the new zygote")
        finally:
            for conn in conns:
                conn.close()
        # a worker just forked by the zygote looks like one until it is reparented: wait
        wait_for(lambda: [z.pid for z in c.zygotes("imap")] == [new.pid], 10,
                 what="the new zygote alone")

    def test_stuck_zygote_is_replaced(self):
        c = self.new_coffer(service_settings={"pop3": {"prefork": 1}})
        old = self.one_zygote(c, "pop3")
        ws = {w.pid for w in wait_for(lambda: c.workers("pop3"), BOUND, what="a pop3 worker")}
        since = c.log_size()
        os.kill(old.pid, signal.SIGSTOP)
        self.addCleanup(lambda: pid_alive(old.pid) and os.kill(old.pid, signal.SIGCONT))
        for pid in ws:                          # the master must ask for a replacement
            os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        c.wait_log(r"event=zygote_stuck .*service=pop3\b.*pid=%d\b" % old.pid, BOUND, since)
        self.assertGreater(time.monotonic() - t0, 1.0)      # it had its ~2 s to answer
        wait_for(lambda: [z for z in c.zygotes("pop3") if z.pid != old.pid], BOUND,
                 what="a new pop3 zygote")
        wait_for(lambda: [x for x in c.workers("pop3") if x.pid not in ws], BOUND,
                 what="a new pop3 worker")
        c.greet("pop3")

    def test_reload_renews_zygotes(self):
        c = self.new_coffer()
        old = {svc: self.one_zygote(c, svc).pid for svc in c.services}
        since = c.log_size()
        c.set_service("imap", prefork=2)
        c.reload()
        c.wait_log(r"event=reloaded", 10, since)
        for svc in c.services:
            wait_for(lambda: [z for z in c.zygotes(svc) if z.pid != old[svc]] and
                     not pid_alive(old[svc]), BOUND, what="a new %s zygote" % svc)
        wait_for(lambda: len(c.workers("imap")) >= 2, BOUND, what="2 imap workers")
        c.wait_ready(20)

    def test_master_killed_zygotes_follow(self):
        c = self.new_coffer()
        zs = [self.one_zygote(c, svc).pid for svc in c.services]
        os.kill(c.pid, signal.SIGKILL)
        c.proc.wait(10)
        wait_for(lambda: not [p for p in zs if pid_alive(p) and proc_stat(p)[1] != "Z"],
                 BOUND, 0.1, "zygotes to exit after their master was killed")

    def test_sigterm_stops_zygotes(self):
        c = self.new_coffer()
        zs = [self.one_zygote(c, svc).pid for svc in c.services]
        self.assertEqual(c.stop(), 0)
        self.assertFalse([p for p in zs if pid_alive(p) and proc_stat(p)[1] != "Z"])

    def test_workers_share_library_pages(self):
        c = self.new_coffer(service_settings={"imap": {"prefork": 2}})
        c.add_user("zoe", "secret")
        z = self.one_zygote(c, "imap")
        # two sessions held open, each logged in over STARTTLS, so each worker has used
        # libcrypto; the relocated pages still come from the zygote
        clients = []
        try:
            for _ in range(2):
                m = c.imap()
                clients.append(m)
                m.starttls(ssl_context=c.ssl_context())
                m.login("zoe", "secret")
                m.select("INBOX")
            busy = [c.worker_for(m.sock) for m in clients]
            self.assertTrue(all(busy), busy)
            self.assertEqual(len({w.pid for w in busy}), 2, busy)
            zmaps = maps_of(z.pid, "libcrypto.so")
            self.assertTrue(zmaps, "libcrypto is not mapped in the zygote")
            for w in busy:
                # same layout as the zygote: forked, not exec'd
                self.assertEqual(maps_of(w.pid, "libcrypto.so"), zmaps)
                kb = private_dirty_kb(w.pid, "libcrypto.so")
                self.assertLess(kb, 64, "worker %d: %d KB of libcrypto private" % (w.pid, kb))
        finally:
            for m in clients:
                try:
                    m.logout()
                except Exception:
                    pass


if __name__ == "__main__":
    main()
