"""test_imap_compress.py: COMPRESS=DEFLATE (RFC 4978) end to end: the capability (gone once
compression is on), COMPRESS before login (BAD), unknown mechanisms and bad arguments (BAD), the
tagged OK in clear and everything after it raw-deflated both ways, SELECT/FETCH/APPEND (both
literal kinds)/IDLE through the compressed stream, commands pipelined right behind COMPRESS, a
second COMPRESS (NO [COMPRESSIONACTIVE]), COMPRESS over implicit TLS and after STARTTLS, another
user's mailbox still refused, a decompression bomb that meets the same line limit as plain input,
corrupt compressed input (BYE, logged, the worker process survives), and the compression counters
on the disconnect log line."""
import os
import socket
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}

BODY = b"".join(b"Line %d of a message that compresses well, as mail text does.\r\n" % i
                for i in range(200))
MSG = (b"From: a@example.com\r\nTo: fred@coffer.test\r\nSubject: compress %d\r\n"
       b"Message-ID: <compress%d@example.com>\r\n\r\n") + BODY


class ZSock:
    """A raw deflate (RFC 1951, no zlib header) layer over a socket (plain or TLS) with the
    calls coffer_harness.Conn makes: sendall compresses with a sync flush, recv inflates."""

    def __init__(self, sock):
        self.sock = sock
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        self.pending = b""
        self.wire_in = 0

    def sendall(self, data):
        self.sock.sendall(self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH))

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv(self, n):
        while not self.pending:
            data = self.sock.recv(65536)
            if not data:
                return b""
            self.wire_in += len(data)
            self.pending += self.decomp.decompress(data)
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def settimeout(self, t):
        self.sock.settimeout(t)

    def close(self):
        self.sock.close()


def caps_of(untagged):
    for line in untagged:
        if line.startswith(b"* CAPABILITY "):
            return line.decode().upper().split()[2:]
    return None


class Compress(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "1M", "admins": "boss"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = cls.coffer.imap()
        m.login("fred", "fredpw")
        m.create("zbox")
        for i in range(1, 4):
            m.append("zbox", None, None, MSG % (i, i))
        m.logout()
        m = cls.coffer.imap()
        m.login("joe", "joepw")
        m.create("private")
        m.logout()

    def compress(self, c, tag="z"):
        """COMPRESS DEFLATE on c: the tagged OK arrives in clear, then c speaks deflate."""
        c.cmd("%s COMPRESS DEFLATE" % tag)
        line = c.readline()
        self.assertEqual(line, b"%s OK DEFLATE active\r\n" % tag.encode())
        self.assertEqual(c.buf, b"", "bytes after the tagged OK before the client compresses")
        c.sock = ZSock(c.sock)
        return c.sock

    def test_capability_and_state(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        g = c.readline()
        self.assertIn(b"COMPRESS=DEFLATE", g)
        # RFC 4978 section 3: authenticated or selected state only
        self.assertRegex(c.imap("a", "COMPRESS DEFLATE")[0], rb"^a BAD")
        self.assertRegex(c.imap("l", "LOGIN fred fredpw")[0], rb"^l OK")
        tagged, untagged = c.imap("c", "CAPABILITY")
        self.assertIn("COMPRESS=DEFLATE", caps_of(untagged))
        self.compress(c)
        tagged, untagged = c.imap("c2", "CAPABILITY")
        self.assertRegex(tagged, rb"^c2 OK")
        self.assertNotIn("COMPRESS=DEFLATE", caps_of(untagged))

    def test_bad_arguments(self):
        c = self.conn("fred")
        for text in ("COMPRESS", "COMPRESS FOO", "COMPRESS DEFLATE DEFLATE", 'COMPRESS "DEFLATE"',
                     "COMPRESS (DEFLATE)", "COMPRESS X-GZIP"):
            with self.subTest(text=text):
                self.assertRegex(c.imap("b", text)[0], rb"^b BAD")
        # still uncompressed: a plain NOOP works
        self.assertRegex(c.imap("n", "NOOP")[0], rb"^n OK")
        # any case of the mechanism name
        c.cmd("z compress deflate")
        self.assertRegex(c.readline(), rb"^z OK")
        c.sock = ZSock(c.sock)
        self.assertRegex(c.imap("n2", "NOOP")[0], rb"^n2 OK")

    def test_session_through_compression(self):
        c = self.conn("fred")
        z = self.compress(c)
        # second COMPRESS: NO [COMPRESSIONACTIVE], compression goes on
        self.assertRegex(c.imap("z2", "COMPRESS DEFLATE")[0], rb"^z2 NO \[COMPRESSIONACTIVE\]")
        tagged, untagged = c.imap("s", "SELECT zbox")
        self.assertRegex(tagged, rb"^s OK \[READ-WRITE\]")
        self.assertIn(b"* 3 EXISTS\r\n", untagged)
        # FETCH with literals in the response
        c.cmd("f FETCH 1:3 BODY.PEEK[]")
        for i in range(1, 4):
            m = MSG % (i, i)
            head = c.readline()
            self.assertEqual(head, b"* %d FETCH (BODY[] {%d}\r\n" % (i, len(m)))
            self.assertEqual(c.read_exact(len(m)), m)
            self.assertEqual(c.readline(), b")\r\n")
        self.assertRegex(c.readline(), rb"^f OK")
        # the response was compressed on the wire
        self.assertLess(z.wire_in, len(BODY))
        # APPEND with a synchronizing literal: the continuation must arrive compressed
        m = MSG % (10, 10)
        c.cmd("a APPEND zbox {%d}" % len(m))
        c.expect(rb"^\+ ")
        c.send(m + b"\r\n")
        self.assertRegex(c.read_tagged("a")[0], rb"^a OK \[APPENDUID \d+ \d+\]")
        # and LITERAL+
        m = MSG % (11, 11)
        c.send(b"a2 APPEND zbox {%d+}\r\n" % len(m) + m + b"\r\n")
        tagged, untagged = c.read_tagged("a2")
        self.assertRegex(tagged, rb"^a2 OK")
        self.assertIn(b"* 5 EXISTS\r\n", untagged)
        c.cmd("f2 FETCH 5 BODY.PEEK[]")
        self.assertEqual(c.readline(), b"* 5 FETCH (BODY[] {%d}\r\n" % len(m))
        self.assertEqual(c.read_exact(len(m)), m)
        self.assertEqual(c.readline(), b")\r\n")
        self.assertRegex(c.readline(), rb"^f2 OK")
        # IDLE: "+ idling" and the update must each come without more client input
        c.cmd("i IDLE")
        c.expect(rb"^\+ idling", timeout=2)
        lm = self.coffer.lmtp()
        lm.sendmail("a@example.com", ["fred@coffer.test"], MSG % (12, 12))
        lm.quit()
        other = self.conn("fred")
        self.ok(other, "APPEND zbox {%d+}\r\n%s" % (len(m), m.decode()))
        t0 = time.monotonic()           # from the commit: the other sessions are not timed
        c.expect(rb"^\* 6 EXISTS\r\n$", timeout=2)
        self.assertLess(time.monotonic() - t0, 3)
        c.cmd("DONE")
        self.assertEqual(c.read_tagged("i")[0], b"i OK IDLE terminated\r\n")
        # rights are unchanged by compression: joe's mailbox is not fred's to select
        self.assertRegex(c.imap("o", 'SELECT "Other Users/joe/private"')[0], rb"^o NO")
        self.assertRegex(c.imap("o2", "SELECT zbox")[0], rb"^o2 OK")
        since = self.coffer.log_size()
        self.assertRegex(c.imap("lo", "LOGOUT")[0], rb"^lo OK")
        self.assertTrue(c.at_eof(5))
        line = self.coffer.wait_log(r"event=disconnect .*deflate_in=\d+/\d+ deflate_out=\d+/\d+ "
                                    r"deflate_ratio_out=0\.\d+", since=since)
        self.assertTrue(line)

    def test_rights_through_compression(self):
        # rights are the same in a compressed session: no rights, l only, administrator
        m = self.coffer.imap()
        m.login("joe", "joepw")
        m.create("rights")
        m.append("rights", None, None, MSG % (7, 7))
        m.logout()
        box = '"Other Users/joe/rights"'
        c = self.conn("fred")
        self.compress(c)
        tagged, untagged = c.imap("o", "SELECT " + box)
        self.assertRegex(tagged, rb"^o NO \[NONEXISTENT\] ")
        self.assertEqual(untagged, [])
        j = self.conn("joe")
        self.assertRegex(j.imap("a", 'SETACL "rights" fred l')[0], rb"^a OK")
        tagged, untagged = c.imap("o", "SELECT " + box)
        self.assertRegex(tagged, rb"^o NO \[NOPERM\] ")
        self.assertNotIn(b"EXISTS", b"".join(untagged))
        b = self.conn("boss")
        self.compress(b)
        tagged, untagged = b.imap("o", "EXAMINE " + box)
        self.assertRegex(tagged, rb"^o OK \[READ-ONLY\]")
        self.assertIn(b"* 1 EXISTS\r\n", untagged)
        b.cmd("f FETCH 1 BODY.PEEK[TEXT]")
        b.expect(rb"^\* 1 FETCH \(BODY\[TEXT\] \{%d\}\r\n$" % len(BODY))
        self.assertEqual(b.read_exact(len(BODY)), BODY)
        self.assertRegex(b.read_tagged("f")[0], rb"^f OK")

    def test_pipelined_after_compress(self):
        """Bytes the client sends right behind the COMPRESS line are compressed input."""
        c = self.conn("fred")
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = comp.compress(b"n1 NOOP\r\nn2 CAPABILITY\r\n") + comp.flush(zlib.Z_SYNC_FLUSH)
        c.send(b"z COMPRESS DEFLATE\r\n" + data)
        self.assertEqual(c.readline(), b"z OK DEFLATE active\r\n")
        z = ZSock(c.sock)
        z.comp = comp
        # the answers may have come in the same read as the OK: they are compressed
        z.pending = z.decomp.decompress(c.buf)
        c.buf = b""
        c.sock = z
        self.assertRegex(c.read_tagged("n1")[0], rb"^n1 OK")
        self.assertRegex(c.read_tagged("n2")[0], rb"^n2 OK")

    def test_over_tls(self):
        for svc in ("imaps", "starttls"):
            with self.subTest(service=svc):
                if svc == "imaps":
                    c = self.coffer.connect("imaps")
                    self.addCleanup(c.close)
                    c.expect(rb"^\* OK")
                else:
                    c = self.coffer.connect("imap")
                    self.addCleanup(c.close)
                    c.expect(rb"^\* OK")
                    self.assertRegex(c.imap("t", "STARTTLS")[0], rb"^t OK")
                    c.starttls(self.coffer.ssl_context())
                self.assertRegex(c.imap("l", "LOGIN fred fredpw")[0], rb"^l OK")
                self.compress(c)
                self.assertRegex(c.imap("s", "EXAMINE zbox")[0], rb"^s OK")
                m = MSG % (2, 2)
                c.cmd("f FETCH 2 BODY.PEEK[]")
                self.assertEqual(c.readline(), b"* 2 FETCH (BODY[] {%d}\r\n" % len(m))
                self.assertEqual(c.read_exact(len(m)), m)
                self.assertEqual(c.readline(), b")\r\n")
                self.assertRegex(c.readline(), rb"^f OK")
                self.assertRegex(c.imap("z2", "COMPRESS DEFLATE")[0],
                                 rb"^z2 NO \[COMPRESSIONACTIVE\]")
                self.assertRegex(c.imap("lo", "LOGOUT")[0], rb"^lo OK")

    def test_decompression_bomb_meets_line_limit(self):
        """A line far past max_line (64K) gets the same answer compressed as in clear: ~10 KB
        on the wire expanding to 10 MB must not make the server buffer it."""
        big = b"b NOOP " + b"x" * (10 * 1024 * 1024) + b"\r\n"
        plain = self.conn("fred")
        plain.send(big)
        plain_answer = plain.readline(timeout=60)
        self.assertEqual(plain_answer, b"* BAD Line too long\r\n")
        self.assertRegex(plain.imap("n", "NOOP")[0], rb"^n OK")

        c = self.conn("fred")
        worker = self.coffer.worker_for(c)
        z = self.compress(c)
        wire = z.comp.compress(big) + z.comp.flush(zlib.Z_SYNC_FLUSH)
        self.assertLess(len(wire), 64 * 1024)
        z.send_raw(wire)
        answer = c.readline(timeout=60)
        self.assertEqual(answer, plain_answer)
        self.assertRegex(c.imap("n", "NOOP")[0], rb"^n OK")
        if worker:
            # the worker did not keep the expanded line: its resident size stays small
            with open("/proc/%d/status" % worker.pid) as f:
                rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
            self.assertLess(rss, 200 * 1024, "worker RSS %d KiB after the bomb" % rss)

    def test_literal_bomb_meets_literal_limit(self):
        """A non-synchronizing literal too large to APPEND is refused the same way through
        compression (the server reads and drops it, decompressed, in bounded steps)."""
        n = 3 * 1024 * 1024      # max_literal is 1M here
        for compressed in (False, True):
            with self.subTest(compressed=compressed):
                c = self.conn("fred")
                if compressed:
                    z = self.compress(c)
                    comp = z.comp
                    z.send_raw(comp.compress(b"a APPEND zbox {%d+}\r\n" % n))
                    chunk = b"y" * (1024 * 1024)
                    for _ in range(n // len(chunk)):
                        z.send_raw(comp.compress(chunk))
                    z.send_raw(comp.compress(b"\r\n") + comp.flush(zlib.Z_SYNC_FLUSH))
                    tagged = c.read_tagged("a", timeout=60)[0]
                    self.assertEqual(tagged, self.plain_literal_answer)
                else:
                    c.send(b"a APPEND zbox {%d+}\r\n" % n)
                    try:
                        c.send(b"y" * n + b"\r\n")
                    except OSError:
                        pass
                    tagged = c.read_tagged("a", timeout=60)[0]
                    type(self).plain_literal_answer = tagged
                self.assertRegex(tagged, rb"^a (NO|BAD) \[(TOOBIG|LIMIT|OVERQUOTA)\]")
                self.assertRegex(c.imap("n", "NOOP")[0], rb"^n OK")

    def test_corrupt_input_ends_session(self):
        c = self.conn("fred")
        worker = self.coffer.worker_for(c)
        z = self.compress(c)
        self.assertRegex(c.imap("n", "NOOP")[0], rb"^n OK")
        since = self.coffer.log_size()
        # 0xff starts a block of the reserved type 3: invalid in any deflate stream
        z.send_raw(b"\xff\xff\xff\xff garbage that is not deflate")
        line = c.readline(timeout=10)
        self.assertEqual(line, b"* BYE Corrupt compressed input\r\n")
        self.assertTrue(c.at_eof(10))
        self.coffer.wait_log(r"event=compress_failed .*op=inflate", since=since)
        self.coffer.wait_log(r"event=disconnect .*reason=compress_error", since=since)
        # the worker process lives on (prefork: it serves the next connection)
        os.kill(worker.pid, 0)
        c2 = self.conn("fred")
        self.compress(c2)
        self.assertRegex(c2.imap("n", "NOOP")[0], rb"^n OK")

    def test_garbage_before_any_block_and_eof(self):
        """Random bytes, then the client vanishing mid-stream: no crash, a clean end."""
        c = self.conn("fred")
        z = self.compress(c)
        z.send_raw(os.urandom(4096))
        try:
            c.wait_eof(10)
        except OSError:
            pass
        c2 = self.conn("fred")
        z2 = self.compress(c2)
        z2.send_raw(z2.comp.compress(b"n NOOP\r\npartial line"))
        z2.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c2.wait_eof(10))
        self.assertRegex(self.conn("fred").imap("n", "NOOP")[0], rb"^n OK")


if __name__ == "__main__":
    main()
