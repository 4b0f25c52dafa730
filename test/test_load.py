"""test_load.py: 200 IMAP connections at once against maxchild 20: each is served (greeting,
NOOP, LOGOUT) as workers free up, or cleanly refused; none hangs, no more than maxchild workers
run, and the master is healthy afterwards."""
import os
import socket
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main, wait_for  # noqa: E402

CONNECTIONS = 200
MAXCHILD = 20
PREFORK = 4
CLIENT_BOUND = 120      # no single client may take longer than this, end to end


class Load(CofferTestCase):

    def test_200_connections(self):
        # 200 clients from 127.0.0.1 are what max_preauth_per_ip refuses (H2; tested in
        # test_hostile_conn.py): this test is about the worker pool, so that limit is off
        c = self.new_coffer(service_settings={"imap": {"maxchild": MAXCHILD,
                                                       "prefork": PREFORK}},
                            global_settings={"max_preauth_per_ip": 0})
        results = [None] * CONNECTIONS
        socks = [None] * CONNECTIONS
        start = threading.Event()
        stop_sampling = threading.Event()
        peak = [0]

        def sampler():
            while not stop_sampling.is_set():
                peak[0] = max(peak[0], len(c.workers("imap")))
                time.sleep(0.02)

        def client(i):
            start.wait(30)
            try:
                conn = c.connect("imap", timeout=CLIENT_BOUND)
            except OSError as e:
                results[i] = ("refused", repr(e))
                return
            socks[i] = conn
            deadline = time.monotonic() + CLIENT_BOUND
            try:
                conn.expect(rb"^\* OK", timeout=CLIENT_BOUND)
                tagged, _ = conn.imap("a1", "NOOP", timeout=max(1, deadline - time.monotonic()))
                if not tagged.startswith(b"a1 OK"):
                    results[i] = ("bad", tagged)
                    return
                tagged, untagged = conn.imap("a2", "LOGOUT",
                                             timeout=max(1, deadline - time.monotonic()))
                if not tagged.startswith(b"a2 OK"):
                    results[i] = ("bad", tagged)
                    return
                results[i] = ("served", None)
            except AssertionError as e:
                # EOF or reset before a greeting is a clean refusal; a timeout is a hang
                msg = str(e)
                if "timed out" in msg or "timeout" in msg:
                    results[i] = ("hung", msg[:300])
                else:
                    results[i] = ("closed", msg[:300])
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
                results[i] = ("closed", repr(e))
            except socket.timeout as e:
                results[i] = ("hung", repr(e))
            finally:
                conn.close()

        samp = threading.Thread(target=sampler, daemon=True)
        samp.start()
        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(CONNECTIONS)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        start.set()
        for t in threads:
            t.join(max(0.1, CLIENT_BOUND + 30 - (time.monotonic() - t0)))
        elapsed = time.monotonic() - t0
        stop_sampling.set()
        samp.join(5)

        alive = [i for i, t in enumerate(threads) if t.is_alive()]
        self.assertEqual(alive, [], "clients still running after %.0fs" % elapsed)
        kinds = {}
        for r in results:
            kinds.setdefault(r[0] if r else "none", []).append(r)
        summary = {k: len(v) for k, v in kinds.items()}
        sys.stderr.write("load: %s in %.1fs, peak imap workers %d\n" % (summary, elapsed,
                                                                         peak[0]))
        self.assertNotIn("hung", kinds, kinds.get("hung", [])[:5])
        self.assertNotIn("bad", kinds, kinds.get("bad", [])[:5])
        self.assertNotIn("none", kinds)
        self.assertEqual(sum(summary.values()), CONNECTIONS)
        # the listen backlog (1024) holds every waiting connection, so all should be served
        self.assertEqual(summary.get("served", 0), CONNECTIONS, summary)
        self.assertLessEqual(peak[0], MAXCHILD, "more imap workers than maxchild")
        self.assertTrue(c.running())

        # healthy afterwards: the pool settles, new connections greet, status adds up
        st = wait_for(lambda: (lambda s: s.get("busy") == 0 and s)(c.status().get("imap", {})),
                      30, 0.2, "imap busy=0 after the storm")
        self.assertLessEqual(st["workers"], MAXCHILD)
        self.assertGreaterEqual(st["ready"], PREFORK)
        self.assertGreaterEqual(st["served"], CONNECTIONS)
        for svc in c.services:
            c.greet(svc)

    def test_maxchild_1_serializes(self):
        # one worker: a second client waits in the listen queue until the first logs out
        c = self.new_coffer(service_settings={"imap": {"maxchild": 1, "prefork": 1}})
        wait_for(lambda: c.status().get("imap", {}).get("ready") == 1, 20, 0.2,
                 "the single imap worker to be ready")
        first = c.connect("imap")
        self.addCleanup(first.close)
        first.expect(rb"^\* OK")
        second = c.connect("imap")
        self.addCleanup(second.close)
        with self.assertRaises(socket.timeout):
            second.readline(1.5)
        self.assertEqual(len(c.workers("imap")), 1)
        self.assertRegex(first.imap("a1", "LOGOUT")[0], rb"^a1 OK")
        second.expect(rb"^\* OK", timeout=20)
        self.assertRegex(second.imap("b1", "NOOP")[0], rb"^b1 OK")


if __name__ == "__main__":
    main()
