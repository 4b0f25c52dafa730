"""test_metrics.py: cofferd's metrics and health endpoint (metrics_listen, cofferd(8) METRICS AND
HEALTH): counters move by exactly the traffic the test makes, the text passes a strict parser of
the Prometheus text format (version 0.0.4), /health says 503 until every service has a worker and
200 after, and hostile requests get an HTTP error without holding up the endpoint.

promtool (Debian's prometheus package) would be the reference checker, but the package is 96 MB
installed for one command, so the format is checked here by a parser that is stricter than the
format needs (see parse_exposition)."""
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import Coffer, free_port, run_coffer, wait_for, HOST  # noqa: E402

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(text, where):
    """{name: value} of a label set body ('a="x",b="y"'), unescaping \\\\, \\" and \\n."""
    out = {}
    i = 0
    while i < len(text):
        m = re.match(LABEL + "=\"", text[i:])
        if not m:
            raise AssertionError("%s: bad label at %r" % (where, text[i:]))
        name = m.group(0)[:-2]
        i += m.end()
        val = []
        while True:
            if i >= len(text):
                raise AssertionError("%s: unterminated label value" % where)
            ch = text[i]
            if ch == "\\":
                nxt = text[i + 1:i + 2]
                if nxt not in ("\\", "\"", "n"):
                    raise AssertionError("%s: bad escape \\%s" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif ch == "\"":
                i += 1
                break
            elif ch == "\n":
                raise AssertionError("%s: newline in label value" % where)
            else:
                val.append(ch)
                i += 1
        if name in out:
            raise AssertionError("%s: label %s twice" % (where, name))
        out[name] = "".join(val)
        if i < len(text):
            if text[i] != ",":
                raise AssertionError("%s: expected ',' at %r" % (where, text[i:]))
            i += 1
    return out


def parse_value(v, where):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf"))
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", v):
        raise AssertionError("%s: bad value %r" % (where, v))
    return float(v)


def parse_exposition(text):
    """Parse the Prometheus text format strictly: every family has HELP then TYPE before its
    samples and appears once; sample names belong to the family (histograms: _bucket, _sum,
    _count); counters end in _total; no series twice; histogram buckets are cumulative, sorted by
    le, end with +Inf equal to _count. Returns {(name, frozenset(labels.items())): value} and
    {family: type}."""
    if not text.endswith("\n"):
        raise AssertionError("the text must end with a newline")
    samples, types, helps, seen_families = {}, {}, set(), []
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line)
        if line.startswith("#"):
            m = re.fullmatch(r"# (HELP|TYPE) (" + NAME + r") (.+)", line)
            if not m:
                raise AssertionError("%s: bad comment line" % where)
            kind, fam, rest = m.groups()
            if kind == "HELP":
                if fam in helps:
                    raise AssertionError("%s: HELP twice" % where)
                helps.add(fam)
                if fam in seen_families:
                    raise AssertionError("%s: family appears twice" % where)
                seen_families.append(fam)
                current = fam
            else:
                if fam != current or fam in types:
                    raise AssertionError("%s: TYPE must follow its HELP, once" % where)
                if rest not in TYPES:
                    raise AssertionError("%s: unknown type" % where)
                if rest == "counter" and not fam.endswith("_total"):
                    raise AssertionError("%s: a counter's name ends in _total" % where)
                types[fam] = rest
            continue
        m = re.fullmatch("(" + NAME + r")(\{(.*)\})? (\S+)", line)
        if not m:
            raise AssertionError("%s: bad sample line" % where)
        name, _, labels, value = m.groups()
        if current is None or current not in types:
            raise AssertionError("%s: sample before its TYPE" % where)
        allowed = {current}
        if types[current] == "histogram":
            allowed = {current + "_bucket", current + "_sum", current + "_count"}
        if name not in allowed:
            raise AssertionError("%s: sample %s outside family %s" % (where, name, current))
        lab = parse_labels(labels or "", where)
        key = (name, frozenset(lab.items()))
        if key in samples:
            raise AssertionError("%s: series twice" % where)
        samples[key] = parse_value(value, where)
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        groups = {}
        for (name, lab), v in samples.items():
            if name == fam + "_bucket":
                d = dict(lab)
                le = d.pop("le")
                groups.setdefault(frozenset(d.items()), []).append((le, v))
        for rest, buckets in groups.items():
            les = [float(le.replace("+Inf", "inf")) for le, _ in buckets]
            if les != sorted(les) or les[-1] != float("inf"):
                raise AssertionError("%s %s: buckets not sorted or no +Inf" % (fam, dict(rest)))
            vals = [v for _, v in buckets]
            if vals != sorted(vals):
                raise AssertionError("%s %s: buckets not cumulative" % (fam, dict(rest)))
            cnt = samples.get((fam + "_count", rest))
            if cnt != vals[-1] or (fam + "_sum", rest) not in samples:
                raise AssertionError("%s %s: +Inf != _count or no _sum" % (fam, dict(rest)))
    if set(helps) != set(types):
        raise AssertionError("HELP without TYPE")
    return samples, types


def http(port, request, timeout=10):
    """(status, headers text, body) of one raw request."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"Content-Length: (\d+)", head)
    assert m and (int(m.group(1)) == len(body) or request.startswith(b"HEAD ")), head
    return status, head.decode(), body.decode()


def get(port, path):
    return http(port, b"GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n" %
                path.encode())


def scrape(port):
    status, head, body = get(port, "/metrics")
    assert status == 200, (status, body)
    assert "Content-Type: text/plain; version=0.0.4" in head, head
    return parse_exposition(body)[0]


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


class Raw:
    """A raw TCP client that counts every byte each way (the server's in/out)."""

    def __init__(self, port):
        self.s = socket.create_connection((HOST, port), timeout=15)
        self.sent = self.got = 0
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)
        self.sent += len(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.got += len(chunk)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def until(self, prefix):
        while True:
            line = self.line()
            if line.startswith(prefix):
                return line

    def finish(self):
        """Read to EOF (the server closes after LOGOUT/QUIT) so every byte is counted."""
        while True:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            self.got += len(chunk)
        self.s.close()


class MetricsTest(unittest.TestCase):
    def start(self, **settings):
        self.mport = free_port()
        g = {"metrics_listen": "%s:%d" % (HOST, self.mport), "allow_plaintext": "yes",
             "auth_fail_delay": "0"}
        g.update(settings)
        c = Coffer(global_settings=g)
        self.addCleanup(c.close)
        return c

    def quiet(self):
        """Wait until no connection is open on any service (every closed one is counted)."""
        def idle():
            s = scrape(self.mport)
            return all(v == 0 for (n, _), v in s.items() if n == "coffer_connections") and s
        return wait_for(idle, 15, what="no open connections")

    def test_counters_exact(self):
        c = self.start(db_stats_interval="1s")
        c.start()
        c.add_user("alice", "pw")
        c.add_user("bob", "pw")
        m = c.imap()                # bob's INBOX
        m.login("bob", "pw")
        m.logout()
        # bob's quota root: 4 KiB: a small message fits (usage under half), a larger one not
        code, out, err = run_coffer(c, "quota", "set", "user/bob", "--storage", "4")
        self.assertEqual(code, 0, err)
        before = self.quiet()

        # IMAP: one good login with a few commands, one bad login
        imap_in = imap_out = 0
        r = Raw(c.ports["imap"])
        r.line()
        r.send(b"a1 LOGIN alice pw\r\n")
        r.until(b"a1 ")
        r.send(b"a2 SELECT INBOX\r\na3 NOOP\r\na4 NOOP\r\na5 NOOP\r\n")
        self.assertIn(b"OK", r.until(b"a5 "))
        r.send(b"a6 LOGOUT\r\n")
        r.finish()
        imap_in += r.sent
        imap_out += r.got
        r = Raw(c.ports["imap"])
        r.line()
        r.send(b"b1 LOGIN alice wrong\r\n")
        self.assertIn(b"NO", r.until(b"b1 "))
        r.send(b"b2 LOGOUT\r\n")
        r.finish()
        imap_in += r.sent
        imap_out += r.got

        # POP3: one login
        r = Raw(c.ports["pop3"])
        r.line()
        r.send(b"USER alice\r\n")
        r.line()
        r.send(b"PASS pw\r\n")
        self.assertTrue(r.line().startswith(b"+OK"))
        r.send(b"QUIT\r\n")
        r.finish()

        # LMTP: two messages for alice, a small one for bob, then one over his quota (452)
        r = Raw(c.ports["lmtp"])
        r.line()
        r.send(b"LHLO test\r\n")
        r.until(b"250 ")
        for rcpt, n, size, code in ((b"alice", 1, 3000, b"250"), (b"alice", 2, 3000, b"250"),
                                    (b"bob", 3, 1000, b"250"), (b"bob", 4, 3000, b"452")):
            body = b"Subject: m%d\r\nMessage-ID: <m%d@test>\r\n\r\n" % (n, n) + b"x" * size + b"\r\n"
            r.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<" + rcpt + b">\r\nDATA\r\n")
            r.until(b"354")
            r.send(body + b".\r\n")
            reply = r.line()
            self.assertTrue(reply.startswith(code), reply)
        r.send(b"QUIT\r\n")
        r.finish()
        lmtp_in, lmtp_out = r.sent, r.got

        after = self.quiet()

        def d(name, **labels):
            return val(after, name, **labels) - val(before, name, **labels)

        self.assertEqual(d("coffer_connections_total", service="imap"), 2)
        self.assertEqual(d("coffer_connections_total", service="pop3"), 1)
        self.assertEqual(d("coffer_connections_total", service="lmtp"), 1)
        self.assertEqual(d("coffer_connections_total", service="imaps"), 0)
        self.assertEqual(d("coffer_received_bytes_total", service="imap"), imap_in)
        self.assertEqual(d("coffer_sent_bytes_total", service="imap"), imap_out)
        self.assertEqual(d("coffer_received_bytes_total", service="lmtp"), lmtp_in)
        self.assertEqual(d("coffer_sent_bytes_total", service="lmtp"), lmtp_out)
        self.assertEqual(d("coffer_logins_total", service="imap", mechanism="LOGIN", result="ok"), 1)
        self.assertEqual(d("coffer_logins_total", service="imap", mechanism="LOGIN",
                           result="failed"), 1)
        self.assertEqual(d("coffer_logins_total", service="pop3", mechanism="USER", result="ok"), 1)
        self.assertEqual(d("coffer_logins_total", service="pop3", mechanism="USER",
                           result="failed"), 0)
        for cmd, n in (("LOGIN", 2), ("SELECT", 1), ("NOOP", 3), ("LOGOUT", 2), ("FETCH", 0)):
            self.assertEqual(d("coffer_imap_command_duration_seconds_count", command=cmd), n, cmd)
            self.assertEqual(d("coffer_imap_command_duration_seconds_bucket", command=cmd,
                               le="+Inf"), n, cmd)
        self.assertEqual(d("coffer_lmtp_deliveries_total", result="delivered"), 3)
        self.assertEqual(d("coffer_lmtp_deliveries_total", result="overquota_deferred"), 1)
        self.assertEqual(d("coffer_lmtp_deliveries_total", result="deferred"), 0)
        # each delivery fsyncs at least its message file and its index
        self.assertGreaterEqual(d("coffer_fsyncs_total"), 4)
        self.assertGreaterEqual(val(after, "coffer_workers", service="imap", state="ready"), 1)
        self.assertEqual(val(after, "coffer_ready"), 1)

        # the statistics job: bob's root, the one with a limit, is less than half full
        def stats():
            s = scrape(self.mport)
            return s if val(s, "coffer_db_stats_timestamp_seconds") > time.time() - 1 and \
                val(s, "coffer_quota_roots") == 1 else None
        s = wait_for(stats, 20, what="fresh Berkeley DB statistics")
        self.assertEqual(val(s, "coffer_quota_roots_usage", le="0.5"), 1)
        self.assertEqual(val(s, "coffer_quota_roots_usage", le="+Inf"), 1)
        self.assertGreater(val(s, "coffer_db_cache_hits_total"), 0)
        self.assertGreater(val(s, "coffer_db_log_flushes_total"), 0)
        self.assertTrue(0 <= val(s, "coffer_db_cache_hit_ratio") <= 1)

    def test_health_and_respawns(self):
        c = self.start()
        # a service whose program exits at once never has a worker: not ready
        c.add_service("broken", "/bin/false", tls="none")
        c.start(wait=False)
        c.wait_ready(services=["imap", "pop3", "lmtp"])

        def status503():
            st, _, body = get(self.mport, "/health")
            return st == 503 and "service broken: no worker ready" in body and body
        wait_for(status503, 15, what="503 naming the broken service")
        s = wait_for(lambda: (lambda s: val(s, "coffer_worker_respawns_total",
                                            service="broken") >= 1 and s)(scrape(self.mport)),
                     15, what="respawns of the broken service")
        self.assertEqual(val(s, "coffer_ready"), 0)
        self.assertEqual(val(s, "coffer_worker_respawns_total", service="imap"), 0)
        # without it, ready
        c.remove_service("broken")
        c.reload()
        wait_for(lambda: get(self.mport, "/health")[0] == 200, 20, what="200 after reload")
        st, _, body = get(self.mport, "/health")
        self.assertEqual((st, body), (200, "ready\n"))
        st, head, body = http(self.mport, b"HEAD /health HTTP/1.0\r\n\r\n")
        self.assertEqual((st, body), (200, ""))

    def test_hostile_requests(self):
        c = self.start()
        c.start()
        p = self.mport
        self.assertEqual(get(p, "/nope")[0], 404)
        self.assertEqual(get(p, "/metrics/../etc")[0], 404)
        self.assertEqual(http(p, b"POST /metrics HTTP/1.1\r\n\r\n")[0], 405)
        self.assertEqual(http(p, b"GARBAGE\r\n\r\n")[0], 400)
        self.assertEqual(http(p, b"GET /metrics HTTP/1.1 extra\r\n\r\n")[0], 400)
        self.assertEqual(http(p, b"GET /metrics\r\n\r\n")[0], 400)
        # a head that never ends within the limit
        self.assertEqual(http(p, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 8000 + b"\r\n\r\n")[0],
                         431)
        # a NUL closes the connection without an answer
        with socket.create_connection((HOST, p), timeout=10) as s:
            s.sendall(b"GET /\x00 HTTP/1.1\r\n\r\n")
            self.assertEqual(s.recv(100), b"")
        # connections that send nothing do not keep a scraper out
        idle = [socket.create_connection((HOST, p), timeout=10) for _ in range(24)]
        try:
            t0 = time.monotonic()
            self.assertEqual(get(p, "/health")[0], 200)
            self.assertLess(time.monotonic() - t0, 3)
        finally:
            for s in idle:
                s.close()
        # and an idle one is closed after the endpoint's timeout
        with socket.create_connection((HOST, p), timeout=15) as s:
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")
            self.assertLess(time.monotonic() - t0, 12)
        # the services still serve
        c.greet("imap")
        self.assertEqual(c.sanitizer_reports(), [])

    def test_config_check(self):
        """cofferd -t refuses a metrics_listen that is not a HOST:PORT of its own."""
        c = self.start()
        rc, out = c.run_cofferd(["-t"])
        self.assertEqual(rc, 0, out)
        for bad, why in (("/tmp/metrics.sock", "must be a HOST:PORT address"),
                         ("127.0.0.1:notaport", "metrics_listen"),
                         (c.services["imap"]["listen"], "also a listen address of service 'imap'")):
            c.globals["metrics_listen"] = bad
            c.write_config()
            rc, out = c.run_cofferd(["-t"])
            self.assertEqual(rc, 2, out)
            self.assertIn(why, out)

    def test_parser_rejects(self):
        """The format checker itself fails on what it must refuse."""
        good = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n"
        parse_exposition(good)
        for bad in (good.replace("a_total 1", "a_total{x=\"1} 1"),          # unterminated
                    good.replace("a_total 1", "b_total 1"),                 # outside family
                    good + "a_total 2\n",                                   # series twice
                    good.replace("counter", "gauge").replace("a_total", "a") + "# HELP a x\n",
                    "# TYPE a_total counter\n# HELP a_total x\na_total 1\n",  # order
                    "# HELP a x\n# TYPE a counter\na 1\n",                  # counter name
                    good.replace(" 1\n", " one\n"),
                    "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                    "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"):       # not cumulative
            with self.assertRaises(AssertionError, msg=bad):
                parse_exposition(bad)


if __name__ == "__main__":
    unittest.main()
