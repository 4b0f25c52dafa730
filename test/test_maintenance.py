"""test_maintenance.py: cofferd's scheduled maintenance (cofferd(8) MAINTENANCE): the scrubber finds
a message file corrupted on disk, reports it in the log (user, mailbox, uid) and on the metrics
endpoint, and leaves it alone; expire runs every expire_interval and removes what is due; the
database checkpoint runs every db_checkpoint_interval; `coffer status` shows the last runs."""
import glob
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import Coffer, free_port, run_coffer, wait_for, HOST  # noqa: E402
from test_metrics import scrape, val  # noqa: E402


def deliver(c, rcpt, n, size=2000):
    conn = c.connect("lmtp")
    conn.expect(rb"^220 ")
    conn.cmd("LHLO test")
    conn.read_smtp_reply()
    conn.cmd("MAIL FROM:<s@x>")
    conn.read_smtp_reply()
    conn.cmd("RCPT TO:<%s>" % rcpt)
    conn.read_smtp_reply()
    conn.cmd("DATA")
    conn.read_smtp_reply()
    conn.send(b"Subject: m%d\r\nMessage-ID: <m%d@test>\r\n\r\n" % (n, n) + b"y" * size + b"\r\n.\r\n")
    code, _ = conn.read_smtp_reply()
    conn.cmd("QUIT")
    conn.close()
    return code


def tasks(c):
    code, out, err = run_coffer(c, "status", "--tasks", json_out=True)
    assert code == 0, err
    return {r["task"]: r for r in json.loads(out)}


class MaintenanceTest(unittest.TestCase):
    def start(self, **settings):
        self.mport = free_port()
        g = {"metrics_listen": "%s:%d" % (HOST, self.mport), "scrub_rate": "0",
             "expire_interval": "0"}
        g.update(settings)
        c = Coffer(global_settings=g)
        self.addCleanup(c.close)
        return c

    def test_scrubber_reports_corruption(self):
        c = self.start(scrub_rate="50M", scrub_interval="1s")
        c.start()
        c.add_user("carol", "pw")
        for n in (1, 2, 3):
            self.assertTrue(deliver(c, "carol", n) == 250)
        files = sorted(glob.glob(os.path.join(c.spool, "**", "2."), recursive=True))
        self.assertEqual(len(files), 1, files)
        path = files[0]
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0x01          # same size, one bit
            f.seek(0)
            f.write(data)
        corrupted = bytes(data)
        st = os.stat(path)

        line = c.wait_log(r"scrub_corrupt .*uid=2 ", timeout=30)
        self.assertRegex(line, r'user=("?)carol\1 ')
        self.assertRegex(line, r"mailbox=\"?user/carol\"? ")
        self.assertIn("reason=sha1", line)
        # only the damaged message is reported
        self.assertEqual([l for l in c.log_grep(r"scrub_corrupt") if "uid=2 " not in l], [])
        s = wait_for(lambda: (lambda s: val(s, "coffer_scrub_corrupt_messages_total") >= 1 and s)(
            scrape(self.mport)), 15, what="the corruption on the metrics endpoint")
        self.assertGreaterEqual(val(s, "coffer_scrub_messages_total"), 3)
        self.assertEqual(val(s, "coffer_scrub_corrupt_index_total"), 0)
        # a full pass ended, and coffer status says so
        wait_for(lambda: val(scrape(self.mport), "coffer_scrub_passes_total") >= 1, 20,
                 what="a full scrub pass")
        t = wait_for(lambda: (lambda t: t["scrub"]["runs"] >= 1 and t)(tasks(c)), 15,
                     what="the scrub pass in coffer status")
        self.assertEqual(t["scrub"]["result"], "ok")
        # the file is left exactly as it was found
        with open(path, "rb") as f:
            self.assertEqual(f.read(), corrupted)
        self.assertEqual(os.stat(path).st_mtime_ns, st.st_mtime_ns)
        # a truncated message is reported by size
        with open(path, "r+b") as f:
            f.truncate(100)
        line = c.wait_log(r"scrub_corrupt .*reason=size", timeout=30)
        self.assertIn("uid=2 ", line)
        self.assertRegex(line, r"expected_size=%d size=100 " % len(corrupted))
        self.assertEqual(c.sanitizer_reports(), [])

    def test_scrubber_reports_index_record(self):
        c = self.start(scrub_rate="50M", scrub_interval="1s")
        c.start()
        c.add_user("fred", "pw")
        for n in (1, 2, 3):
            self.assertTrue(deliver(c, "fred", n) == 250)
        idx = glob.glob(os.path.join(c.spool, "**", "index"), recursive=True)
        self.assertEqual(len(idx), 1, idx)
        # uid 2's record (the second after the 8192-byte header): its internaldate, so the
        # record's CRC no longer matches
        with open(idx[0], "r+b") as f:
            f.seek(8192 + 128 + 12)
            b = f.read(1)
            f.seek(8192 + 128 + 12)
            f.write(bytes([b[0] ^ 0x40]))
        line = c.wait_log(r"scrub_index_corrupt ", timeout=30)
        self.assertRegex(line, r"mailbox=\"?user/fred\"? ")
        # the open of the mailbox checks the records already: uid 0 names the index as a whole
        self.assertRegex(line, r" uid=(0|2) ")
        s = wait_for(lambda: (lambda s: val(s, "coffer_scrub_corrupt_index_total") >= 1 and s)(
            scrape(self.mport)), 15, what="the index corruption on the metrics endpoint")
        self.assertEqual(val(s, "coffer_scrub_corrupt_messages_total"), 0)

    def test_expire_and_checkpoint_on_schedule(self):
        # duplicates are remembered 1s; expire every 2s removes them (the checkpoint's own
        # pruning is kept out of the way: its interval is long here)
        c = self.start(expire_interval="2s", duplicate_lifetime="1s",
                       db_checkpoint_interval="1h")
        c.start()
        c.add_user("dave", "pw")
        self.assertTrue(deliver(c, "dave", 1) == 250)
        line = wait_for(lambda: [l for l in c.log_grep(r"event=expired ")
                                 if re.search(r"duplicates=[1-9]", l)], 20,
                        what="an expire run that removed the duplicate record")[0]
        self.assertIn("result=ok", line)
        # the stamp that carries the schedule across a restart
        self.assertTrue(os.path.exists(os.path.join(c.configdir, "expire.stamp")))
        # the line comes from the job's child; the master counts the run when it reaps it
        t = wait_for(lambda: (lambda t: t["expire"]["runs"] >= 1 and t)(tasks(c)), 10,
                     what="the master counting the expire run")
        self.assertEqual(t["expire"]["result"], "ok")
        self.assertEqual(t["expire"]["interval"], 2)
        self.assertNotEqual(t["expire"]["last_end"], "-")
        self.assertEqual(t["checkpoint"]["runs"], 0)
        s = scrape(self.mport)
        self.assertGreaterEqual(val(s, "coffer_maintenance_runs_total", task="expire"), 1)
        self.assertGreater(val(s, "coffer_maintenance_last_run_timestamp_seconds", task="expire"),
                           time.time() - 60)
        # the human table shows both
        code, out, err = run_coffer(c, "status")
        self.assertEqual(code, 0, err)
        text = out.decode()
        self.assertIn("scheduled maintenance", text)
        self.assertRegex(text, r"\nexpire +[1-9]")

    def test_checkpoint_on_schedule(self):
        c = self.start(db_checkpoint_interval="1s")
        c.start()
        c.add_user("erin", "pw")
        self.assertTrue(deliver(c, "erin", 1) == 250)
        t = wait_for(lambda: (lambda t: t["checkpoint"]["runs"] >= 2 and t)(tasks(c)), 20,
                     what="two checkpoint runs")
        self.assertEqual(t["checkpoint"]["result"], "ok")
        s = scrape(self.mport)
        self.assertGreaterEqual(val(s, "coffer_maintenance_runs_total", task="checkpoint"), 2)
        self.assertEqual(val(s, "coffer_maintenance_failures_total", task="checkpoint"), 0)
        # the checkpoint removed the log files it no longer needs: one is left
        logs = glob.glob(os.path.join(c.configdir, "db", "log.*"))
        self.assertGreaterEqual(len(logs), 1)


if __name__ == "__main__":
    unittest.main()
