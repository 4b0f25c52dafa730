"""test_logs.py: the log is one line per event in the documented shape, and sessions are
traceable: connect and disconnect lines carry the same session=ID."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main, wait_for  # noqa: E402

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (?P<ident>[\w.-]+)\[(?P<pid>\d+)\] "
                  r"(?P<level>debug|info|notice|warning|error): event=(?P<event>[a-z_]+)"
                  r"(?P<rest>( \w+=(\"(?:[^\"\\]|\\.)*\"|[^\s\"]*))*)$")


def fields(rest):
    return dict((m.group(1), m.group(2)) for m in
                re.finditer(r" (\w+)=(\"(?:[^\"\\]|\\.)*\"|[^\s\"]*)", rest))


class Logs(CofferTestCase):

    def check_lines(self, text):
        bad = [l for l in text.splitlines() if not LINE.match(l)]
        self.assertEqual(bad, [], "log lines not in the one-event-per-line key=value shape")

    def test_session_lines(self):
        c = self.new_coffer(log_level="debug")
        since = c.log_size()
        sessions = {}
        for svc in ("imap", "imaps", "pop3", "lmtp", "lmtpunix"):
            with c.connect(svc) as conn:
                conn.readline()
                w = c.worker_for(conn) if svc not in c.unix_paths else None
                if w is not None:
                    sessions[svc] = w.pid
                proto = c.protocol(svc)
                conn.cmd({"imap": "a1 LOGOUT", "pop3": "QUIT", "lmtp": "QUIT"}[proto])
                conn.wait_eof(10)
        # a line with a CR/LF in client data must still be a single log line
        with c.connect("imap") as conn:
            conn.readline()
            conn.send(b"a1 XYZZY\rinjected=1 event=fake\r\n")
            conn.readline()
            conn.cmd("a2 LOGOUT")
            conn.wait_eof(10)

        def disconnects():
            return len(c.log_grep(r"event=disconnect\b", since)) >= 6
        wait_for(disconnects, 10, 0.1, "6 disconnect lines")
        text = c.log_text(since)
        self.check_lines(text)
        connects = {}
        for line in text.splitlines():
            m = LINE.match(line)
            f = fields(m.group("rest"))
            if m.group("event") == "connect":
                self.assertIn("session", f, line)
                self.assertIn("service", f, line)
                self.assertIn("peer", f, line)
                self.assertRegex(f["session"], r"^[a-z0-9]{12}$")
                self.assertNotIn(f["session"], connects, "session id reused")
                connects[f["session"]] = (f["service"], int(m.group("pid")))
        self.assertEqual(sorted(s for s, _ in connects.values()),
                         sorted(["imap", "imap", "imaps", "pop3", "lmtp", "lmtpunix"]))
        for svc, pid in sessions.items():
            self.assertIn((svc, pid), connects.values(), "connect line from the serving worker")
        disc = {}
        for line in text.splitlines():
            m = LINE.match(line)
            if m.group("event") == "disconnect":
                f = fields(m.group("rest"))
                self.assertIn("session", f, line)
                self.assertIn(f["session"], connects, "disconnect of an unknown session")
                self.assertEqual(int(m.group("pid")), connects[f["session"]][1])
                disc.setdefault(f["session"], []).append(line)
        self.assertEqual(set(disc), set(connects), "every connect has its disconnect")
        # one line per event: a session ends once, so it has exactly one disconnect line
        twice = dict((s, l) for s, l in disc.items() if len(l) != 1)
        self.assertEqual(twice, {}, "sessions with more than one disconnect line")
        # nothing from the client was able to forge an event
        self.assertFalse([l for l in text.splitlines() if l.startswith("injected")])
        self.assertEqual(len(c.log_grep(r": event=fake", since)), 0)

    def test_master_lines(self):
        c = self.new_coffer()
        text = c.log_text()
        self.check_lines(text)
        listening = c.log_grep(r"cofferd\[%d\] info: event=listening " % c.pid)
        self.assertEqual(len(listening), len(c.services), listening)
        for name in c.services:
            self.assertTrue(any("service=%s " % name in l for l in listening), name)
        since = c.log_size()
        c.send_signal(signal.SIGUSR1)
        lines = wait_for(lambda: len(c.log_grep(r"event=status ", since)) >= len(c.services)
                         and c.log_grep(r"event=status ", since), 10, 0.1, "status lines")
        for l in lines:
            self.assertRegex(l, r"event=status service=\S+ workers=\d+ ready=\d+ busy=\d+ "
                                r"served=\d+$")
        self.check_lines(c.log_text())


if __name__ == "__main__":
    main()
