"""test_hostile_soak.py: the kill -9 soak. LMTP and IMAP APPEND writers run while random workers
are SIGKILLed several times a second; then the master and every worker are SIGKILLed at once.
cofferd must restart at once (the pid-file lock), every acknowledged message must be present
exactly once, and `coffer check` must exit 0.

Environment (all optional):
  COFFER_SOAK_SECONDS        how long the writers and the killer run (default 45)
  COFFER_SOAK_KILL_INTERVAL  mean seconds between two worker kills (default 0.25)
  COFFER_SOAK_CRASH_EVERY    also SIGKILL the master and all workers every N seconds during
                             the run (default 0: only the final crash)
  COFFER_SOAK_SEED           random seed (default: time based, printed)

Retries: an LMTP message whose transaction did not end with 250 is sent again with the same
Message-ID, as an MTA would (duplicate suppression may then drop the retry, or, when the first
attempt was stored but its acknowledgement lost, the retry is a second copy: counted apart as
"redelivered", not as a duplicate). An APPEND whose outcome is unknown is not retried, so an
acknowledged APPEND must be there exactly once."""
import collections
import imaplib
import os
import random
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main, proc_stat, wait_for  # noqa: E402

SECONDS = float(os.environ.get("COFFER_SOAK_SECONDS", "45"))
KILL_INTERVAL = float(os.environ.get("COFFER_SOAK_KILL_INTERVAL", "0.25"))
CRASH_EVERY = float(os.environ.get("COFFER_SOAK_CRASH_EVERY", "0"))
SEED = int(os.environ.get("COFFER_SOAK_SEED", str(int(time.time()))))
USERS = ("soak1", "soak2")
DOMAIN = "soak.test"
MSGID_RE = re.compile(rb"<(soak-[a-z0-9-]+)@" + DOMAIN.encode() + rb">")


def message(marker, kind):
    return (b"From: writer@example.com\r\nTo: soak@example.com\r\nSubject: %s %s\r\n"
            b"Message-ID: <%s@%s>\r\n\r\nmarker %s\r\n" % (
                kind.encode(), marker.encode(), marker.encode(), DOMAIN.encode(),
                marker.encode()) + b"line of body text\r\n" * 20)


class Ledger:
    """What the writers know: acknowledged markers (with their user and number of attempts)
    and markers whose outcome is unknown."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}                 # marker -> (user, kind, attempts)
        self.unknown = set()            # attempted, never acknowledged
        self.errors = collections.Counter()

    def ack(self, marker, user, kind, attempts):
        with self.lock:
            self.acked[marker] = (user, kind, attempts)
            self.unknown.discard(marker)

    def tried(self, marker):
        with self.lock:
            if marker not in self.acked:
                self.unknown.add(marker)

    def error(self, what):
        with self.lock:
            self.errors[what] += 1


class Soak(CofferTestCase):

    def setUp(self):
        self.stop = threading.Event()
        self.paused = threading.Event()     # set while the whole instance is down
        self.ledger = Ledger()
        self.kills = 0
        self.crashes = 0
        self.rnd = random.Random(SEED)

    # ---- writers

    def lmtp_writer(self, c, n, user):
        conn = None
        i = 0
        while not self.stop.is_set():
            marker = "soak-l%d-%d" % (n, i)
            i += 1
            data = message(marker, "lmtp")
            attempts = 0
            while not self.stop.is_set() and attempts < 50:
                attempts += 1
                self.ledger.tried(marker)
                try:
                    if conn is None:
                        if self.paused.is_set():
                            time.sleep(0.05)
                            continue
                        conn = smtplib.LMTP("127.0.0.1", c.ports["lmtp"], timeout=10)
                        conn.ehlo("mta.test")   # LHLO
                    refused = conn.sendmail("writer@example.com", ["%s@%s" % (user, DOMAIN)],
                                            data)
                    if not refused:
                        self.ledger.ack(marker, user, "lmtp", attempts)
                        break
                    self.ledger.error("lmtp refused")
                except smtplib.SMTPResponseException as e:
                    self.ledger.error("lmtp %d" % e.smtp_code)
                    try:
                        conn.rset()
                    except Exception:
                        conn = self.drop(conn)
                    if e.smtp_code >= 500:
                        break       # permanent: an MTA would bounce it
                    time.sleep(0.02)
                except Exception as e:   # the worker was killed: redeliver
                    self.ledger.error("lmtp " + type(e).__name__)
                    conn = self.drop(conn)
                    time.sleep(0.02)
        self.drop(conn)

    def imap_writer(self, c, n, user):
        conn = None
        i = 0
        while not self.stop.is_set():
            marker = "soak-a%d-%d" % (n, i)
            i += 1
            try:
                if conn is None:
                    if self.paused.is_set():
                        time.sleep(0.05)
                        continue
                    conn = imaplib.IMAP4("127.0.0.1", c.ports["imap"], timeout=10)
                    conn.login(user, "pw")
                self.ledger.tried(marker)
                typ, _ = conn.append("INBOX", None, None, message(marker, "append"))
                if typ == "OK":
                    self.ledger.ack(marker, user, "append", 1)
                else:
                    self.ledger.error("append " + typ)
            except Exception as e:      # outcome unknown: not retried (see the docstring)
                self.ledger.error("append " + type(e).__name__)
                conn = self.drop(conn)
                time.sleep(0.02)
        self.drop(conn)

    @staticmethod
    def drop(conn):
        if conn is not None:
            try:
                conn.sock.close()
            except Exception:
                pass
        return None

    # ---- killing

    def wait_dead(self, pids, what):
        """Every pid is a zombie or gone (the master stays an unreaped zombie)."""
        wait_for(lambda: all((proc_stat(p) or ("", "Z"))[1] == "Z" for p in pids), 20, 0.02,
                 what)

    def crash_all(self, c):
        """SIGKILL the master and every worker and zygote at once, wait until they are dead
        (not reaped), and restart at once: the pid file still names the dead master."""
        pids = c.instance_pids() | {c.pid}
        self.paused.set()
        os.killpg(c.pid, signal.SIGKILL)        # the master's process group: everything
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.kills += len(pids)
        self.crashes += 1
        old = c.proc
        self.wait_dead(pids, "the instance dead")
        t0 = time.monotonic()
        c.start()
        old.wait(5)
        self.paused.clear()
        return time.monotonic() - t0

    def killer(self, c):
        next_crash = time.monotonic() + CRASH_EVERY if CRASH_EVERY > 0 else None
        while not self.stop.is_set():
            time.sleep(self.rnd.expovariate(1.0 / KILL_INTERVAL))
            if next_crash is not None and time.monotonic() >= next_crash:
                self.crash_all(c)
                next_crash = time.monotonic() + CRASH_EVERY
                continue
            ws = c.workers()
            if not ws:
                continue
            w = self.rnd.choice(ws)
            try:
                os.kill(w.pid, signal.SIGKILL)
                self.kills += 1
            except ProcessLookupError:
                pass

    # ---- checking

    def stored(self, c):
        """{marker: count} over every user's INBOX, by Message-ID."""
        counts = collections.Counter()
        for user in USERS:
            m = imaplib.IMAP4("127.0.0.1", c.ports["imap"], timeout=60)
            m.login(user, "pw")
            typ, _ = m.select("INBOX", readonly=True)
            self.assertEqual(typ, "OK")
            typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            for item in data:
                if isinstance(item, tuple):
                    for g in MSGID_RE.finditer(item[1]):
                        counts[g.group(1).decode()] += 1
            m.logout()
        return counts

    def test_kill9_soak(self):
        c = self.new_coffer(global_settings={
            "allow_plaintext": "yes", "respawn_limit": "1000000", "respawn_pause": "1s"},
            services=[("imap", "imapd", "none", False), ("lmtp", "lmtpd", "none", False)],
            service_settings={"imap": {"prefork": 3}, "lmtp": {"prefork": 3}})
        for u in USERS:
            c.add_user(u, "pw")
        # the INBOXes exist before the writers start (the first delivery makes them)
        lm = c.lmtp()
        lm.sendmail("w@example.com", ["%s@%s" % (u, DOMAIN) for u in USERS],
                    b"Subject: first\r\n\r\nfirst\r\n")
        lm.quit()
        threads = [threading.Thread(target=self.lmtp_writer, args=(c, 0, USERS[0])),
                   threading.Thread(target=self.lmtp_writer, args=(c, 1, USERS[1])),
                   threading.Thread(target=self.imap_writer, args=(c, 0, USERS[0])),
                   threading.Thread(target=self.imap_writer, args=(c, 1, USERS[1]))]
        killer = threading.Thread(target=self.killer, args=(c,))
        for t in threads + [killer]:
            t.daemon = True
            t.start()
        time.sleep(SECONDS)
        # the final crash comes while the writers are still in their last transactions
        self.stop.set()
        killer.join(30)
        restart = self.crash_all(c)
        for t in threads:
            t.join(30)

        counts = self.stored(c)
        acked = self.ledger.acked
        lost = sorted(m for m in acked if counts[m] == 0)
        dup = sorted(m for m, (u, kind, att) in acked.items() if counts[m] > 1 and att == 1)
        redelivered = sorted(m for m, (u, kind, att) in acked.items()
                             if counts[m] > 1 and att > 1)
        unacked_stored = sum(1 for m in self.ledger.unknown if counts[m] > 0)
        check = subprocess.run([os.path.join(c.bindir, "coffer"), "-C", c.conf_path, "check"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                               env=c.env())
        summary = ("soak: seed=%d seconds=%g kills=%d full_crashes=%d acknowledged=%d "
                   "(lmtp=%d append=%d) lost=%d duplicated=%d redelivered=%d "
                   "unacknowledged_but_stored=%d last_restart=%.2fs check_exit=%d errors=%s" % (
                       SEED, SECONDS, self.kills, self.crashes, len(acked),
                       sum(1 for v in acked.values() if v[1] == "lmtp"),
                       sum(1 for v in acked.values() if v[1] == "append"), len(lost), len(dup),
                       len(redelivered), unacked_stored, restart, check.returncode,
                       dict(self.ledger.errors.most_common(8))))
        sys.stderr.write(summary + "\n")
        self.assertGreater(self.kills, 5, summary)
        self.assertGreater(len(acked), 20, summary)
        self.assertEqual(lost, [], summary)
        self.assertEqual(dup, [], summary)
        self.assertEqual(check.returncode, 0, "coffer check:\n%s\n%s" % (
            check.stdout.decode(errors="replace")[-3000:], summary))


if __name__ == "__main__":
    main()
