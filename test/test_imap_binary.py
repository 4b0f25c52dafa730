"""test_imap_binary.py: BINARY (RFC 3516) end to end: FETCH BINARY[part], BINARY.PEEK and
BINARY.SIZE with the Content-Transfer-Encoding removed (base64 with line breaks and stray
characters, quoted-printable with soft breaks and trailing white space, 7bit as it is), parts
nested in a message/rfc822 part, non-leaf parts and BINARY[] as they stand, partial <o.n>
ranges on the decoded data, literal8 ~{n} exactly when the data holds NUL, \\Seen set by
BINARY and not by BINARY.PEEK (nor without the s right, nor under EXAMINE), NO [UNKNOWN-CTE]
for x-uuencode and garbage, BAD for HEADER/TEXT/MIME sections and for a partial range on
BINARY.SIZE; APPEND with literal8 (~{n} and ~{n+}) holding NULs round-trips through BINARY[],
while BODY[] stays a valid literal (NUL sent as 0x80, the size kept); literal8 outside the
APPEND message is BAD with the session going on; literal8 over max_literal is refused
(TOOBIG); another user's mailbox needs the r right."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}

BIN = bytes(range(256))                     # holds NUL: must come back as literal8


def b64_lines(data):
    """base64 of data in 76-character lines, with a stray '*' and a blank in the middle: RFC
    2045 section 6.8 says a decoder ignores characters outside the alphabet."""
    import base64
    s = base64.b64encode(data)
    lines = [s[i:i + 76] for i in range(0, len(s), 76)]
    lines[1] = lines[1][:10] + b"*" + lines[1][10:20] + b" " + lines[1][20:]
    return b"\r\n".join(lines)


QP_BODY = b"caf=C3=A9 soft=\r\nbreak line  \r\nend=3D =\r\n"
QP_DECODED = "caf\u00e9 softbreak line\r\nend= ".encode()

MULTI = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: binary\r\n"
         b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
         b"preamble\r\n"
         b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Transfer-Encoding: Quoted-Printable\r\n\r\n" + QP_BODY +
         b"\r\n--XX\r\nContent-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64 (a comment)\r\n\r\n" + b64_lines(BIN) +
         b"\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n"
         b"Subject: inner\r\nMIME-Version: 1.0\r\n"
         b"Content-Type: multipart/alternative; boundary=\"YY\"\r\n\r\n"
         b"--YY\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: BASE64\r\n\r\n"
         b"aGVsbG8g\r\nd29ybGQ=\r\n"
         b"--YY\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
         b"begin 644 x\r\n#86)C\r\n`\r\nend\r\n"
         b"--YY--\r\n"
         b"\r\n--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
         b"plain seven\r\n"
         b"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: \"garbage\r\n\r\n"
         b"what\r\n"
         b"--XX--\r\n")

SINGLE = (b"From: a@example.com\r\nSubject: single\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
          b"AAECAwQ=\r\n")


def read_response(c, tag):
    """Responses up to the tagged one, literals (both {n} and ~{n}) read by their length.
    Returns (tagged line, [untagged responses]); each untagged response is a list of pieces:
    text (bytes) and (kind, data) tuples for literals, kind b"{" or b"~{"."""
    tagb = tag.encode() + b" "
    out = []
    while True:
        line = c.readline()
        if line.startswith(tagb):
            return line, out
        pieces = []
        while True:
            m = re.search(rb"(~?)\{(\d+)\}\r\n$", line)
            if not m:
                pieces.append(line)
                break
            pieces.append(line[:m.start()])
            data = c.read_exact(int(m.group(2)))
            pieces.append((m.group(1) + b"{", data))
            line = c.readline()
        out.append(pieces)


def items(resp):
    """The literals of one FETCH response as {item name: (kind, data)}, the other text
    joined in "text"."""
    got, text = {}, b""
    for i, p in enumerate(resp):
        if isinstance(p, tuple):
            m = re.search(rb"([^\s(]+) $", resp[i - 1])
            got[m.group(1).decode()] = p
        else:
            text += p
    got["text"] = text
    return got


class Binary(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "200K", "admins": "boss"}}

    def append(self, c, box, data):
        c.send(b'p APPEND "%s" {%d+}\r\n%s\r\n' % (box.encode(), len(data), data))
        tagged, _ = read_response(c, "p")
        self.assertRegex(tagged, rb"^p OK ")

    def fresh(self, name, msgs=(MULTI,)):
        c = self.conn("fred")
        self.ok(c, 'CREATE "%s"' % name)
        for m in msgs:
            self.append(c, name, m)
        self.ok(c, 'SELECT "%s"' % name)
        return c

    def fetch(self, c, text, tag="f"):
        c.cmd("%s %s" % (tag, text))
        tagged, untagged = read_response(c, tag)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" OK", (text, untagged))
        fetches = [u for u in untagged if u[0].startswith(b"* ") and b" FETCH " in u[0]]
        return [items(u) for u in fetches]

    def tagged(self, c, text, tag="f"):
        c.cmd("%s %s" % (tag, text))
        return read_response(c, tag)

    def flags(self, c, seq=1):
        untagged = self.ok(c, "FETCH %d FLAGS" % seq)
        return re.search(rb"FLAGS \(([^)]*)\)", b"".join(untagged)).group(1)

    # ---- FETCH

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1])
        self.assertIn(b" BINARY", caps)

    def test_decoding(self):
        c = self.fresh("dec")
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[2] BINARY.PEEK[3.1] "
                          "BINARY.PEEK[4])")[0]
        # quoted-printable: soft breaks joined, =XY decoded, white space at line ends dropped
        self.assertEqual(r["BINARY[1]"], (b"{", QP_DECODED))
        # base64 with line breaks and stray characters; NUL inside: literal8
        self.assertEqual(r["BINARY[2]"], (b"~{", BIN))
        # a part of a multipart inside a message/rfc822 part
        self.assertEqual(r["BINARY[3.1]"], (b"{", b"hello world"))
        self.assertEqual(r["BINARY[4]"], (b"{", b"plain seven"))
        self.assertNotIn(b"\\Seen", self.flags(c))

    def test_size(self):
        c = self.fresh("size")
        r = self.fetch(c, "FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[3.1] "
                          "BINARY.SIZE[4] BINARY.SIZE[3] BINARY.SIZE[] BINARY.PEEK[2] "
                          "BINARY.SIZE[9] RFC822.SIZE)")[0]
        t = r["text"]
        self.assertIn(b"BINARY.SIZE[1] %d" % len(QP_DECODED), t)
        self.assertIn(b"BINARY.SIZE[2] 256", t)
        self.assertIn(b"BINARY.SIZE[3.1] 11", t)
        self.assertIn(b"BINARY.SIZE[4] 11", t)
        self.assertIn(b"BINARY.SIZE[] %d" % len(MULTI), t)
        self.assertIn(b"RFC822.SIZE %d" % len(MULTI), t)
        self.assertIn(b"BINARY.SIZE[9] 0", t)          # no such part
        size3 = int(re.search(rb"BINARY.SIZE\[3\] (\d+)", t).group(1))
        body3 = self.fetch(c, "FETCH 1 BODY.PEEK[3]")[0]["BODY[3]"][1]
        self.assertEqual(size3, len(body3))
        self.assertEqual(r["BINARY[2]"][1], BIN)

    def test_size_edges(self):
        """BINARY.SIZE comes from the cache's size table, counted at append without decoding
        (lib/mime/binsize.c): it must equal the length of what BINARY sends for parts whose
        encodings hit every rule of the decoders, for a message delivered over LMTP (the
        lmtpd path) and the same one appended over IMAP."""
        parts = [
            ("quoted-printable", b"tail =20\r\nblank =09 \t\r\nsoft =  \r\nbad =ZZ =4\r\n"
                                 b"cr =0D\r\n\r \r\n=3D=3d end  "),
            ("quoted-printable", b"=\r\n=\n_x_ \t\nline\nlast="),
            ("base64", b"QUJD\r\nRE\r\n *Vm==\r\nQUJD"),       # stops at the first '='
            ("base64", b"QUJDR\r\n"),                             # a cut group
            ("base64", b"\t" + b"AAAA" * 40 + b"\r\n"),
        ]
        msg = (b"From: a@example.com\r\nTo: fred@example.com\r\nSubject: edges\r\n"
               b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"E\"\r\n\r\n")
        for cte, body in parts:
            msg += (b"--E\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Transfer-Encoding: %s\r\n\r\n%s\r\n" % (cte.encode(), body))
        msg += b"--E--\r\n"
        with self.coffer.lmtp() as l:
            self.assertEqual(l.sendmail("a@example.com", ["fred@example.com"], msg), {})
        c = self.fresh("edges", (msg,))
        for box in ("INBOX", "edges"):
            self.ok(c, 'SELECT "%s"' % box)
            for k in range(1, len(parts) + 1):
                # "*": the message just delivered is the newest in INBOX
                r = self.fetch(c, "FETCH * (BINARY.SIZE[%d] BINARY.PEEK[%d])" % (k, k))[-1]
                data = r["BINARY[%d]" % k][1]
                self.assertIn(b"BINARY.SIZE[%d] %d" % (k, len(data)), r["text"], (box, k))
        # spot checks of the decoders' rules the sizes follow
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[3] BINARY.PEEK[4])")[0]
        self.assertTrue(r["BINARY[1]"][1].startswith(b"tail\r\nblank\r\nsoft bad =ZZ =4\r\n"))
        self.assertEqual(r["BINARY[3]"][1], b"ABCDEf")
        self.assertEqual(r["BINARY[4]"][1], b"ABC")

    def test_non_leaf_and_whole(self):
        c = self.fresh("whole")
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[] BINARY.PEEK[3] BODY.PEEK[3] BODY.PEEK[])")[0]
        self.assertEqual(r["BINARY[]"], (b"{", MULTI))
        self.assertEqual(r["BINARY[]"][1], r["BODY[]"][1])
        # message/rfc822: its encapsulated message as it stands (composite types have
        # identity encodings only, RFC 2045 section 6.4)
        self.assertEqual(r["BINARY[3]"][1], r["BODY[3]"][1])
        self.assertTrue(r["BINARY[3]"][1].startswith(b"Subject: inner\r\n"))
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[3.1] BINARY.PEEK[9] BINARY.PEEK[1.1])")[0]
        self.assertIn(b"BINARY[9] NIL", r["text"])
        self.assertIn(b"BINARY[1.1] NIL", r["text"])

    def test_single_part(self):
        c = self.fresh("single", (SINGLE,))
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[])")[0]
        self.assertEqual(r["BINARY[1]"], (b"~{", b"\x00\x01\x02\x03\x04"))
        self.assertIn(b"BINARY.SIZE[1] 5", r["text"])
        self.assertEqual(r["BINARY[]"], (b"{", SINGLE))

    def test_partial(self):
        c = self.fresh("partial")
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[2]<250.10>)")[0]
        self.assertEqual(r["BINARY[2]<250>"], (b"{", BIN[250:]))
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[2]<0.3>)")[0]
        self.assertEqual(r["BINARY[2]<0>"], (b"~{", b"\x00\x01\x02"))
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[2]<3.2>)")[0]
        self.assertEqual(r["BINARY[2]<3>"], (b"{", b"\x03\x04"))  # no NUL in the range
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[2]<1000.5>)")[0]
        self.assertEqual(r["BINARY[2]<1000>"], (b"{", b""))
        # the offset counts decoded bytes: "café " is 6 bytes in UTF-8
        r = self.fetch(c, "FETCH 1 (BINARY.PEEK[1]<6.4>)")[0]
        self.assertEqual(r["BINARY[1]<6>"], (b"{", b"soft"))

    def test_seen(self):
        c = self.fresh("seen")
        self.fetch(c, "FETCH 1 BINARY.PEEK[1]")
        self.fetch(c, "FETCH 1 BINARY.SIZE[1]")
        self.assertNotIn(b"\\Seen", self.flags(c))
        r = self.fetch(c, "FETCH 1 BINARY[4]")[0]
        self.assertIn(b"\\Seen", r["text"])            # FLAGS sent with the change
        self.assertIn(b"\\Seen", self.flags(c))
        # EXAMINE: read-only, BINARY sets nothing
        self.ok(c, 'STORE 1 -FLAGS (\\Seen)')
        self.ok(c, 'EXAMINE "seen"')
        self.fetch(c, "FETCH 1 BINARY[4]")
        self.assertNotIn(b"\\Seen", self.flags(c))

    def test_unknown_cte(self):
        c = self.fresh("cte")
        for item in ("BINARY.PEEK[3.2]", "BINARY[3.2]", "BINARY.SIZE[3.2]", "BINARY.PEEK[5]",
                     "(BINARY.PEEK[1] BINARY.SIZE[5])"):
            tagged, untagged = self.tagged(c, "FETCH 1 %s" % item)
            self.assertRegex(tagged, rb"^f NO \[UNKNOWN-CTE\]", item)
            self.assertFalse([u for u in untagged if b"BINARY" in u[0]], untagged)
        # the failed BINARY[3.2] set no flag
        self.assertNotIn(b"\\Seen", self.flags(c))
        tagged, _ = self.tagged(c, "FETCH 1 (BODY[4] BINARY[5])")
        self.assertRegex(tagged, rb"^f NO \[UNKNOWN-CTE\]")
        self.assertNotIn(b"\\Seen", self.flags(c))
        # the body as sent is still there
        r = self.fetch(c, "FETCH 1 BODY.PEEK[3.2]")[0]
        self.assertTrue(r["BODY[3.2]"][1].startswith(b"begin 644"))
        self.ok(c, "NOOP")
        # a FETCH of several messages fails as a whole
        self.append(c, "cte", SINGLE)
        self.ok(c, "NOOP")
        tagged, untagged = self.tagged(c, "FETCH 1:2 BINARY.PEEK[5]")
        self.assertRegex(tagged, rb"^f NO \[UNKNOWN-CTE\]")

    def test_bad_sections(self):
        c = self.fresh("bad")
        for item in ("BINARY[1.TEXT]", "BINARY[HEADER]", "BINARY.PEEK[1.MIME]",
                     "BINARY[TEXT]", "BINARY.SIZE[1]<0.1>", "BINARY[1]<0.0>",
                     "BINARY.PEEK[1.HEADER.FIELDS (From)]", "BINARY.SIZE", "BINARY.PEEK"):
            tagged, _ = self.tagged(c, "FETCH 1 %s" % item)
            self.assertRegex(tagged, rb"^f BAD ", item)
        self.ok(c, "NOOP")
        self.assertNotIn(b"\\Seen", self.flags(c))

    # ---- APPEND with literal8

    def test_append_literal8_roundtrip(self):
        c = self.conn("fred")
        self.ok(c, 'CREATE "l8"')
        body = b"\x00bin\x00ary\r\n\x00\xff\x00"
        msg = (b"From: a@example.com\r\nSubject: nul\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
               b"\r\n" + body)
        c.send(b'a APPEND "l8" ~{%d}\r\n' % len(msg))
        self.assertTrue(c.readline().startswith(b"+"))
        c.send(msg + b"\r\n")
        tagged, _ = read_response(c, "a")
        self.assertRegex(tagged, rb"^a OK \[APPENDUID \d+ \d+\]")
        # non-synchronizing literal8 (LITERAL+), two messages (MULTIAPPEND)
        c.send(b'b APPEND "l8" (\\Flagged) ~{%d+}\r\n%s ~{%d+}\r\n%s\r\n' % (
            len(msg), msg, len(SINGLE), SINGLE))
        tagged, _ = read_response(c, "b")
        self.assertRegex(tagged, rb"^b OK \[APPENDUID \d+ \d+:\d+\]")
        self.ok(c, 'SELECT "l8"')
        for seq in (1, 2):
            r = self.fetch(c, "FETCH %d (BINARY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1] "
                              "BODY.PEEK[] RFC822.SIZE)" % seq)[0]
            self.assertEqual(r["BINARY[]"], (b"~{", msg))
            self.assertEqual(r["BINARY[1]"], (b"~{", body))
            self.assertIn(b"BINARY.SIZE[1] %d" % len(body), r["text"])
            # BODY[] is a literal: no NUL in it, the size RFC822.SIZE says
            kind, data = r["BODY[]"]
            self.assertEqual(kind, b"{")
            self.assertNotIn(b"\x00", data)
            self.assertEqual(data, msg.replace(b"\x00", b"\x80"))
            self.assertIn(b"RFC822.SIZE %d" % len(msg), r["text"])
        r = self.fetch(c, "FETCH 3 BINARY.PEEK[1]")[0]
        self.assertEqual(r["BINARY[1]"], (b"~{", b"\x00\x01\x02\x03\x04"))
        self.assertIn(b"\\Flagged", self.flags(c, 2))
        # larger than what the server copies into its response buffer (written straight
        # from the message file)
        big = msg + bytes((i * 7) % 256 for i in range(40000))
        c.send(b'e APPEND "l8" ~{%d+}\r\n%s\r\n' % (len(big), big))
        tagged, _ = read_response(c, "e")
        self.assertRegex(tagged, rb"^e OK ")
        self.ok(c, "NOOP")
        r = self.fetch(c, "FETCH 4 (BINARY.PEEK[] BODY.PEEK[] BINARY.PEEK[1]<30000.20000>)")[0]
        self.assertEqual(r["BINARY[]"], (b"~{", big))
        self.assertEqual(r["BODY[]"], (b"{", big.replace(b"\x00", b"\x80")))
        body_big = big[len(msg) - len(body):]
        self.assertEqual(r["BINARY[1]<30000>"], (b"~{", body_big[30000:50000]))

    def test_literal8_elsewhere_is_bad(self):
        c = self.conn("fred")
        # a synchronizing literal8 outside APPEND: refused before any "+"
        c.send(b"a SELECT ~{5}\r\n")
        tagged, untagged = read_response(c, "a")
        self.assertRegex(tagged, rb"^a BAD .*literal8")
        self.assertFalse(untagged)
        # a non-synchronizing one is read and thrown away
        c.send(b"b SEARCH TEXT ~{3+}\r\na\x00b\r\n")
        tagged, _ = read_response(c, "b")
        self.assertRegex(tagged, rb"^b BAD ")
        # in APPEND but not as the message: mailbox name, flag
        c.send(b"c APPEND ~{5+}\r\nINBOX {3+}\r\nabc\r\n")
        tagged, _ = read_response(c, "c")
        self.assertRegex(tagged, rb"^c BAD ")
        c.send(b"d APPEND INBOX (~{1+}\r\nx) {3+}\r\nabc\r\n")
        tagged, _ = read_response(c, "d")
        self.assertRegex(tagged, rb"^d BAD ")
        self.ok(c, "NOOP")
        self.assertRegex(b"".join(self.ok(c, 'STATUS INBOX (MESSAGES)')), rb"MESSAGES 0")

    def test_literal8_size_limit(self):
        c = self.conn("fred")
        c.send(b"a APPEND INBOX ~{300000}\r\n")
        tagged, _ = read_response(c, "a")
        self.assertRegex(tagged, rb"^a (BAD|NO) \[TOOBIG\]")
        data = b"\x00" * 300000
        c.send(b"b APPEND INBOX ~{300000+}\r\n" + data + b"\r\n")
        tagged, _ = read_response(c, "b")
        self.assertRegex(tagged, rb"^b (BAD|NO) \[TOOBIG\]")
        self.ok(c, "NOOP")
        self.assertRegex(b"".join(self.ok(c, 'STATUS INBOX (MESSAGES)')), rb"MESSAGES 0")

    def test_size_from_cache(self):
        """BINARY.SIZE of an encoded part comes from the cache (computed at append), not from
        decoding again: after the message file's base64 is damaged in place (same length, so
        the cache stays valid), BINARY.SIZE alone still says 256, while BINARY[] in the same
        FETCH decodes the bytes there now and BINARY.SIZE then matches what it sends."""
        marker = b"X-Size-Test: %d\r\n" % os.getpid()
        c = self.fresh("sizecache", (marker + MULTI,))
        t = self.fetch(c, "FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[1] BINARY.SIZE[3.1])")[0]["text"]
        self.assertIn(b"BINARY.SIZE[2] 256", t)
        self.assertIn(b"BINARY.SIZE[1] %d" % len(QP_DECODED), t)
        self.assertIn(b"BINARY.SIZE[3.1] 11", t)
        found = []
        for d, _, files in os.walk(self.coffer.spool):
            for name in files:
                path = os.path.join(d, name)
                # a temp file another session or cofferd's scheduled jobs write through
                # (NAME.tmp.XXXXXX, renamed over NAME) can go between listing and opening
                if not os.path.isfile(path):
                    continue
                try:
                    with open(path, "rb") as fh:
                        if fh.read(len(marker)) == marker:
                            found.append(path)
                except (FileNotFoundError, IsADirectoryError):
                    continue
        self.assertEqual(len(found), 1, found)
        with open(found[0], "r+b") as fh:
            data = fh.read()
            at = data.index(b64_lines(BIN)[:40])
            fh.seek(at)
            fh.write(b"!" * 40)                 # 30 bytes fewer once decoded
        t = self.fetch(c, "FETCH 1 BINARY.SIZE[2]")[0]["text"]
        self.assertIn(b"BINARY.SIZE[2] 256", t)
        r = self.fetch(c, "FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])")[0]
        self.assertEqual(r["BINARY[2]"][1], BIN[30:])
        self.assertIn(b"BINARY.SIZE[2] 226", r["text"])
        # parts without an encoding to remove are not in the cache: still right
        self.assertIn(b"BINARY.SIZE[4] 11", self.fetch(c, "FETCH 1 BINARY.SIZE[4]")[0]["text"])

    # ---- rights

    def test_rights(self):
        f = self.fresh("shared")
        joe = self.conn("joe")
        box = '"Other Users/fred/shared"'
        tagged, _ = self.tagged(joe, "SELECT %s" % box)
        self.assertRegex(tagged, rb"^f NO ")
        tagged, _ = self.tagged(joe, "FETCH 1 BINARY[1]")
        self.assertRegex(tagged, rb"^f (BAD|NO) ")    # nothing selected
        # l r without s: joe can read, BINARY does not set his \Seen
        self.ok(f, 'SETACL "shared" joe lr')
        self.ok(joe, "SELECT %s" % box)
        r = self.fetch(joe, "FETCH 1 (BINARY[2] BINARY.SIZE[2])")[0]
        self.assertEqual(r["BINARY[2]"], (b"~{", BIN))
        self.assertNotIn(b"\\Seen", self.flags(joe))
        # l only: cannot select
        self.ok(f, 'SETACL "shared" joe l')
        joe2 = self.conn("joe")
        tagged, _ = self.tagged(joe2, "SELECT %s" % box)
        self.assertRegex(tagged, rb"^f NO ")

    def test_rights_none_and_admin(self):
        self.fresh("private")
        # no rights at all: the mailbox does not exist for joe, and nothing is selected
        joe = self.conn("joe")
        box = '"Other Users/fred/private"'
        tagged, untagged = self.tagged(joe, "EXAMINE %s" % box)
        self.assertRegex(tagged, rb"^f NO \[NONEXISTENT\] ")
        tagged, untagged = self.tagged(joe, "FETCH 1 BINARY.PEEK[2]")
        self.assertRegex(tagged, rb"^f BAD ")
        self.assertEqual(untagged, [])
        # an administrator has every right (imapd(8)): the decoded part and its size
        boss = self.conn("boss")
        self.ok(boss, "SELECT %s" % box)
        r = self.fetch(boss, "FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2])")[0]
        self.assertEqual(r["BINARY[2]"], (b"~{", BIN))
        self.assertIn(b"BINARY.SIZE[2] 256", r["text"])
        self.assertNotIn(b"\\Seen", self.flags(boss))


if __name__ == "__main__":
    main()
