"""test_imap_fetch_bytes.py: FETCH and POP3 RETR hand back exactly the stored bytes, whichever
way the server reads the message file (read whole into a buffer up to 1 MiB, mapped above,
store/mail.h) and whichever transport carries them: odd and huge messages (bare LF, no final
newline, leading dots, 8-bit bytes, NUL bytes from a literal8 APPEND, an empty body, sizes on
both sides of the 1 MiB boundary, 3 MiB) fetched whole, as TEXT, as BINARY and in
<start.len> pieces across the boundaries, over plain TCP, implicit TLS, COMPRESS=DEFLATE and
COMPRESS over TLS, and retrieved by POP3 in clear and over TLS (dot-stuffed, RFC 1939).
Sizes on both sides of a TLS record (16 KiB) and of the stream's buffer (64 KiB) too, since
TLS output is cut into whole records around them (lib/net/stream.c), and a client that reads
slowly through a small receive window over TLS, so that the server's writes stop and resume
in the middle of records: it must still get every byte, by FETCH and by RETR."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402
from test_imap_compress import ZSock  # noqa: E402

USERS = {"fred": "fredpw"}
MIB = 1 << 20


def filler(n, seed):
    """n bytes of CRLF lines with 8-bit bytes and lines starting with a dot."""
    out = bytearray()
    k = seed
    while len(out) < n:
        k = (k * 1103515245 + 12345) & 0x7fffffff
        if k % 7 == 0:
            out += b"."
        out += bytes(0x21 + (k >> (i % 16)) % 0xdd for i in range(40 + k % 50)) + b"\r\n"
    return bytes(out[:n])


def sized(n, seed):
    head = b"From: big@example.com\r\nSubject: sized %d\r\n\r\n" % n
    return head + filler(n - len(head), seed)


MSGS = [
    b"From: a@example.com\r\nSubject: plain\r\n\r\nline one\r\n.leading dot\r\n",
    b"From: a@example.com\nSubject: bare LF\n\nline one\n.dot\n..two dots\nlast",
    b"Subject: no final newline\r\n\r\nbody without end",
    b"Subject: empty body\r\n\r\n",
    b"Subject: header only, no blank line",
    sized(MIB - 1, 1), sized(MIB, 2), sized(MIB + 1, 3), sized(3 * MIB, 4),
    sized(16383, 5), sized(16385, 6), sized(65535, 7), sized(65537, 8), sized(200000, 9),
    b"Subject: tiny\r\n\r\nx\r\n",
]
# appended as literal8 (RFC 3516): holds NUL bytes; BODY[] sends them as 0x80
BINARY = (b"Subject: nul\r\nContent-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: binary\r\n\r\nab\x00cd\x00\r\n\x00")


def split_text(m):
    for sep in (b"\r\n\r\n", b"\n\n"):
        k = m.find(sep)
        if k >= 0:
            return m[k + len(sep):]
    return b""


class FetchBytes(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "8M"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.coffer.connect("imap")
        try:
            c.expect(rb"^\* OK")
            assert c.imap("l", "LOGIN fred fredpw")[0].startswith(b"l OK")
            for m in MSGS:
                c.send(b"a APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
                tagged, _ = c.read_tagged("a")
                assert tagged.startswith(b"a OK"), tagged
            c.send(b"b APPEND INBOX ~{%d+}\r\n" % len(BINARY) + BINARY + b"\r\n")
            tagged, _ = c.read_tagged("b")
            assert tagged.startswith(b"b OK"), tagged
        finally:
            c.close()
        cls.stored = MSGS + [BINARY]

    def session(self, service, compress):
        c = self.coffer.connect(service)
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("l", "LOGIN fred fredpw")[0], rb"^l OK")
        if compress:
            c.cmd("z COMPRESS DEFLATE")
            self.assertEqual(c.readline(), b"z OK DEFLATE active\r\n")
            c.sock = ZSock(c.sock)
        self.assertRegex(c.imap("s", "EXAMINE INBOX")[0], rb"^s OK")
        return c

    def fetch_literal(self, c, n, item):
        """FETCH n item (one item with a literal answer): (the item's name as answered,
        the literal's bytes)."""
        c.cmd("f FETCH %d (%s)" % (n, item))
        line = c.readline()
        m = re.match(rb"\* %d FETCH \((\S+) (~?)\{(\d+)\}\r\n$" % n, line)
        self.assertIsNotNone(m, (item, line))
        data = c.read_exact(int(m.group(3)))
        self.assertEqual(c.readline(), b")\r\n")
        self.assertRegex(c.readline(), rb"^f OK")
        return m.group(1), data

    def check_session(self, c, what):
        for n, m in enumerate(self.stored, 1):
            plain = m.replace(b"\x00", b"\x80")
            name, got = self.fetch_literal(c, n, "BODY.PEEK[]")
            self.assertEqual((name, len(got)), (b"BODY[]", len(m)), (what, n))
            self.assertTrue(got == plain, (what, n, "BODY[] differs"))
            _, got = self.fetch_literal(c, n, "BODY.PEEK[TEXT]")
            self.assertTrue(got == split_text(plain), (what, n, "TEXT differs"))
            pieces = [(0, 1), (len(m) - 1, 10), (MIB - 2, 3), (MIB, 5), (len(m) // 2, 70000),
                      (5, len(m))]
            for start, count in pieces:
                name, got = self.fetch_literal(c, n, "BODY.PEEK[]<%d.%d>" % (start, count))
                self.assertEqual(name, b"BODY[]<%d>" % start)
                self.assertTrue(got == plain[start:start + count],
                                (what, n, start, count, len(got)))
        # BINARY[] of the literal8 message: the NULs as stored, in a literal8
        n = len(self.stored)
        c.cmd("f FETCH %d (BINARY.PEEK[])" % n)
        self.assertEqual(c.readline(), b"* %d FETCH (BINARY[] ~{%d}\r\n" % (n, len(BINARY)))
        self.assertEqual(c.read_exact(len(BINARY)), BINARY)
        self.assertEqual(c.readline(), b")\r\n")
        self.assertRegex(c.readline(), rb"^f OK")
        # many messages in one FETCH, as a client syncing does
        c.cmd("g FETCH 1:* (RFC822.SIZE BODY.PEEK[])")
        for n, m in enumerate(self.stored, 1):
            plain = m.replace(b"\x00", b"\x80")
            line = c.readline()
            self.assertEqual(line, b"* %d FETCH (RFC822.SIZE %d BODY[] {%d}\r\n"
                             % (n, len(m), len(m)), what)
            self.assertTrue(c.read_exact(len(m)) == plain, (what, n))
            self.assertEqual(c.readline(), b")\r\n")
        self.assertRegex(c.readline(), rb"^g OK")

    def test_plain(self):
        self.check_session(self.session("imap", False), "plain")

    def test_tls(self):
        self.check_session(self.session("imaps", False), "imaps")

    def test_compress(self):
        self.check_session(self.session("imap", True), "compress")

    def test_compress_over_tls(self):
        self.check_session(self.session("imaps", True), "compress over tls")

    def test_pop3_retr(self):
        for service in ("pop3", "pop3s"):
            c = self.coffer.connect(service)
            self.addCleanup(c.close)
            c.expect(rb"^\+OK")
            c.cmd("USER fred")
            c.expect(rb"^\+OK")
            c.cmd("PASS fredpw")
            c.expect(rb"^\+OK")
            for n, m in enumerate(self.stored, 1):
                c.cmd("RETR %d" % n)
                self.assertEqual(c.readline(), b"+OK %d octets\r\n" % len(m))
                # the data up to the terminating line, read raw so line ends stay as sent
                want = m if m.endswith(b"\n") else m + b"\r\n"
                stuffed = re.sub(rb"(^|\n)\.", rb"\1..", want)
                self.assertTrue(c.read_exact(len(stuffed)) == stuffed, (service, n))
                self.assertEqual(c.readline(), b".\r\n", (service, n))
            c.cmd("QUIT")
            c.expect(rb"^\+OK")

    def slow_session(self, service):
        """A TLS connection to service through a 4 KiB receive window, read 2 KiB at a time
        with a pause before each read."""
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect: the window
        raw.settimeout(60)
        raw.connect(self.coffer.address(service))
        tls = self.coffer.ssl_context().wrap_socket(raw, server_hostname="localhost")
        self.addCleanup(tls.close)
        return SlowReader(tls)

    def test_slow_reader_tls(self):
        c = self.slow_session("imaps")
        self.assertTrue(c.line().startswith(b"* OK"))
        c.send(b"l LOGIN fred fredpw\r\n")
        while not c.line().startswith(b"l OK"):
            pass
        c.send(b"s EXAMINE INBOX\r\n")
        while not c.line().startswith(b"s "):
            pass
        c.send(b"f FETCH 1:* (BODY.PEEK[])\r\n")
        for n, m in enumerate(self.stored, 1):
            plain = m.replace(b"\x00", b"\x80")
            self.assertEqual(c.line(), b"* %d FETCH (BODY[] {%d}\r\n" % (n, len(m)))
            self.assertTrue(c.exact(len(m)) == plain, ("slow imaps", n))
            self.assertEqual(c.line(), b")\r\n")
        self.assertTrue(c.line().startswith(b"f OK"))

        c = self.slow_session("pop3s")
        self.assertTrue(c.line().startswith(b"+OK"))
        c.send(b"USER fred\r\nPASS fredpw\r\n")
        self.assertTrue(c.line().startswith(b"+OK"))
        self.assertTrue(c.line().startswith(b"+OK"))
        for n, m in enumerate(self.stored, 1):
            if len(m) < 60000 and n % 3:
                continue                    # the large ones, and some small between them
            c.send(b"RETR %d\r\n" % n)
            self.assertEqual(c.line(), b"+OK %d octets\r\n" % len(m))
            want = m if m.endswith(b"\n") else m + b"\r\n"
            stuffed = re.sub(rb"(^|\n)\.", rb"\1..", want)
            self.assertTrue(c.exact(len(stuffed)) == stuffed, ("slow pop3s", n))
            self.assertEqual(c.line(), b".\r\n")


class SlowReader:
    """Reads a socket 2 KiB at a time, pausing before each read; chunks kept in a list (a
    growing bytes object would copy megabytes per read)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _more(self):
        time.sleep(0.0002)
        data = self.sock.recv(2048)
        if not data:
            raise EOFError("connection closed")
        return data

    def line(self):
        while b"\n" not in self.buf:
            self.buf += self._more()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def exact(self, n):
        parts, have = [self.buf], len(self.buf)
        while have < n:
            data = self._more()
            parts.append(data)
            have += len(data)
        data = b"".join(parts)
        self.buf = data[n:]
        return data[:n]


if __name__ == "__main__":
    main()
