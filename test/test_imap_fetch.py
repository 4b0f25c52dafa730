"""test_imap_fetch.py: FETCH and UID FETCH (RFC 3501 sections 6.4.5, 6.4.8, 7.4.2): every data
item and macro, BODY[section]<partial> with HEADER, HEADER.FIELDS(.NOT), MIME, TEXT and nested
part numbers (multipart inside message/rfc822), \\Seen set by BODY[] but not BODY.PEEK, large
bodies, sequence-set errors, and curl's imap:// URL fetch."""
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main  # noqa: E402

SIMPLE = (b"From: Fred Foo <fred@example.com>\r\n"
          b"To: joe@example.com\r\n"
          b"Subject: hello\r\n"
          b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
          b"Message-ID: <a1@example.com>\r\n"
          b"\r\n"
          b"body line one\r\n"
          b"body line two\r\n")

NESTED = (b"From: Alice <alice@example.com>\r\n"
          b"To: Bob <bob@example.com>\r\n"
          b"Subject: nested\r\n"
          b"Date: Wed, 2 Jul 2003 11:00:00 +0000\r\n"
          b"MIME-Version: 1.0\r\n"
          b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
          b"X-Folded: first\r\n"
          b" second\r\n"
          b"subject : spaced name\r\n"
          b"\r\n"
          b"preamble\r\n"
          b"--outer\r\n"
          b"Content-Type: text/plain; charset=us-ascii\r\n"
          b"\r\n"
          b"part one\r\n"
          b"--outer\r\n"
          b"Content-Type: message/rfc822\r\n"
          b"\r\n"
          b"From: Carol <carol@example.com>\r\n"
          b"Subject: inner\r\n"
          b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
          b"\r\n"
          b"--inner\r\n"
          b"Content-Type: text/plain\r\n"
          b"\r\n"
          b"inner plain\r\n"
          b"--inner\r\n"
          b"Content-Type: text/html\r\n"
          b"\r\n"
          b"<p>inner html</p>\r\n"
          b"--inner--\r\n"
          b"\r\n"
          b"--outer\r\n"
          b"Content-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: base64\r\n"
          b"\r\n"
          b"AAEC\r\n"
          b"--outer--\r\n")

BIG = (b"From: big@example.com\r\nSubject: big\r\n\r\n" +
       b"".join(b"line %07d of a large message body, to be streamed\r\n" % i
                for i in range(60000)))


def between(data, start, end):
    """The bytes of data after the first `start` up to the next `end` (both bytes)."""
    i = data.index(start) + len(start)
    return data[i:data.index(end, i)]


# ---- a small IMAP response reader and parser (literals, lists, quoted strings) ----

def read_resp(conn, tag, timeout=None):
    """(tagged line, [untagged responses]); a response holds its literals inline."""
    tagb = tag.encode() + b" "
    out = []
    while True:
        line = conn.readline(timeout)
        full = line
        while True:
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                break
            full += conn.read_exact(int(m.group(1)), timeout)
            line = conn.readline(timeout)
            full += line
        if full.startswith(tagb):
            return full, out
        out.append(full)


def command(conn, tag, text, timeout=None):
    conn.cmd("%s %s" % (tag, text))
    return read_resp(conn, tag, timeout)


def parse_value(s, i):
    """(value, next index): bytes for atoms/strings/literals, list for lists, None for NIL."""
    c = s[i:i + 1]
    if c == b"(":
        out = []
        i += 1
        while True:
            while s[i:i + 1] == b" ":
                i += 1
            if s[i:i + 1] == b")":
                return out, i + 1
            v, i = parse_value(s, i)
            out.append(v)
    if c == b'"':
        j = i + 1
        buf = b""
        while s[j:j + 1] != b'"':
            if s[j:j + 1] == b"\\":
                j += 1
            buf += s[j:j + 1]
            j += 1
        return buf, j + 1
    if c == b"{":
        j = s.index(b"}", i)
        n = int(s[i + 1:j])
        start = j + 3
        return s[start:start + n], start + n
    j = i
    depth = 0
    while j < len(s):
        ch = s[j:j + 1]
        if ch == b"[":
            depth += 1
        elif ch == b"]":
            depth -= 1
        elif depth == 0 and ch in (b" ", b")", b"(", b"\r"):
            break
        j += 1
    atom = s[i:j]
    return (None if atom.upper() == b"NIL" else atom), j


def fetch_items(resp):
    """(msgno, {NAME: value}) of a `* N FETCH (...)` response, names as sent (upper case)."""
    m = re.match(rb"\* (\d+) FETCH ", resp)
    assert m, resp
    lst, end = parse_value(resp, m.end())
    assert resp[end:] == b"\r\n", resp[end:]
    items = {}
    for k in range(0, len(lst), 2):
        items[lst[k].decode()] = lst[k + 1]
    return int(m.group(1)), items


class Fetch(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("fred", "secret")
        m = cls.coffer.imap()
        m.login("fred", "secret")
        m.create("fetch")
        m.append("fetch", r"(\Flagged $Work)", '"01-Jul-2003 10:52:37 +0200"', SIMPLE)
        m.append("fetch", None, None, NESTED)
        m.append("fetch", None, None, BIG)
        m.append("fetch", None, None, b"Subject: no body\r\n\r\n")
        m.logout()

    def conn(self, mailbox="fetch", examine=False):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        tagged, _ = c.imap("l", "LOGIN fred secret")
        self.assertRegex(tagged, rb"^l OK")
        tagged, _ = c.imap("s", "%s %s" % ("EXAMINE" if examine else "SELECT", mailbox))
        self.assertRegex(tagged, rb"^s OK")
        return c

    def fetch1(self, c, what, msgno=1, uid=False):
        tagged, untagged = command(c, "f", "%sFETCH %s %s" % ("UID " if uid else "", msgno, what))
        self.assertRegex(tagged, rb"^f OK", untagged)
        fetches = [fetch_items(r) for r in untagged if re.match(rb"\* \d+ FETCH", r)]
        self.assertEqual(len(fetches), 1, untagged)
        return fetches[0][1]

    def test_simple_items(self):
        c = self.conn(examine=True)
        it = self.fetch1(c, "(FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE)")
        self.assertEqual(it["UID"], b"1")
        self.assertEqual(it["RFC822.SIZE"], str(len(SIMPLE)).encode())
        self.assertLessEqual({b"\\Flagged", b"$Work"}, set(it["FLAGS"]))
        self.assertLessEqual(set(it["FLAGS"]), {b"\\Flagged", b"$Work", b"\\Recent", b"\\Seen"})
        # "dd-Mon-yyyy hh:mm:ss +zzzz" naming the same instant as the APPEND date
        self.assertRegex(it["INTERNALDATE"], rb"^[ \d]\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}$")
        import imaplib
        t = imaplib.Internaldate2tuple(b'INTERNALDATE "' + it["INTERNALDATE"] + b'"')
        self.assertEqual(time.mktime(t), 1057049557)
        env = it["ENVELOPE"]
        self.assertEqual(env[0], b"Tue, 1 Jul 2003 10:52:37 +0200")
        self.assertEqual(env[1], b"hello")
        self.assertEqual(env[2], [[b"Fred Foo", None, b"fred", b"example.com"]])
        self.assertEqual(env[3], env[2])                # sender defaults to from
        self.assertEqual(env[4], env[2])                # reply-to defaults to from
        self.assertEqual(env[5], [[None, None, b"joe", b"example.com"]])
        self.assertEqual(env[6:9], [None, None, None])
        self.assertEqual(env[9], b"<a1@example.com>")

    def test_body_and_bodystructure(self):
        c = self.conn(examine=True)
        it = self.fetch1(c, "(BODY BODYSTRUCTURE)", 2)
        bs, body = it["BODYSTRUCTURE"], it["BODY"]
        self.assertEqual(bs[0][:2], [b"TEXT", b"PLAIN"])
        self.assertEqual(bs[1][:2], [b"MESSAGE", b"RFC822"])
        self.assertEqual(bs[2][:2], [b"APPLICATION", b"OCTET-STREAM"])
        self.assertEqual(bs[3], b"MIXED")
        self.assertEqual(bs[4], [b"BOUNDARY", b"outer"])   # extension data in BODYSTRUCTURE
        self.assertEqual(bs[1][7][1], b"inner")            # the encapsulated ENVELOPE
        inner = bs[1][8]                                   # and its body
        self.assertEqual([inner[0][1], inner[1][1], inner[2]], [b"PLAIN", b"HTML", b"ALTERNATIVE"])
        self.assertEqual(body[3], b"MIXED")
        self.assertEqual(len(body), 4)                     # no extension data in BODY
        it = self.fetch1(c, "BODYSTRUCTURE", 1)
        self.assertEqual(it["BODYSTRUCTURE"][:2], [b"TEXT", b"PLAIN"])

    def test_whole_and_rfc822_items(self):
        c = self.conn(examine=True)
        hdr_end = NESTED.index(b"\r\n\r\n") + 4
        it = self.fetch1(c, "(RFC822 RFC822.HEADER RFC822.TEXT BODY.PEEK[] BODY.PEEK[HEADER] "
                            "BODY.PEEK[TEXT])", 2)
        self.assertEqual(it["RFC822"], NESTED)
        self.assertEqual(it["RFC822.HEADER"], NESTED[:hdr_end])
        self.assertEqual(it["RFC822.TEXT"], NESTED[hdr_end:])
        self.assertEqual(it["BODY[]"], NESTED)
        self.assertEqual(it["BODY[HEADER]"], NESTED[:hdr_end])
        self.assertEqual(it["BODY[TEXT]"], NESTED[hdr_end:])

    def test_nested_parts(self):
        c = self.conn(examine=True)
        inner_msg = between(NESTED, b"Content-Type: message/rfc822\r\n\r\n", b"\r\n--outer\r\n")
        inner_hdr = inner_msg[:inner_msg.index(b"\r\n\r\n") + 4]
        want = {
            "BODY[1]": b"part one",
            "BODY[1.MIME]": b"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
            "BODY[2]": inner_msg,
            "BODY[2.MIME]": b"Content-Type: message/rfc822\r\n\r\n",
            "BODY[2.HEADER]": inner_hdr,
            "BODY[2.TEXT]": inner_msg[len(inner_hdr):],
            "BODY[2.1]": b"inner plain",
            "BODY[2.1.MIME]": b"Content-Type: text/plain\r\n\r\n",
            "BODY[2.2]": b"<p>inner html</p>",
            "BODY[3]": b"AAEC",
            "BODY[2.HEADER.FIELDS (SUBJECT)]": b"Subject: inner\r\n\r\n",
            "BODY[4]": None,
            "BODY[1.HEADER]": None,            # part 1 is not a message/rfc822
            "BODY[2.3]": None,
        }
        asked = " ".join(k.replace("BODY[", "BODY.PEEK[", 1) for k in want)
        it = self.fetch1(c, "(%s)" % asked, 2)
        for k, v in want.items():
            self.assertEqual(it.get(k, "missing"), v, k)
        # a single-part message: part 1 is its body
        it = self.fetch1(c, "(BODY.PEEK[1] BODY.PEEK[1.MIME])", 1)
        self.assertEqual(it["BODY[1]"], SIMPLE[SIMPLE.index(b"\r\n\r\n") + 4:])

    def test_header_fields(self):
        c = self.conn(examine=True)
        it = self.fetch1(c, "(BODY.PEEK[HEADER.FIELDS (x-folded SUBJECT)] "
                            "BODY.PEEK[HEADER.FIELDS.NOT (From To Date MIME-Version "
                            "Content-Type Subject)] BODY.PEEK[HEADER.FIELDS (X-None)])", 2)
        # case-insensitive names, raw folded lines in message order, then the empty line;
        # "subject :" (space before the colon) is the same field name
        self.assertEqual(it["BODY[HEADER.FIELDS (x-folded SUBJECT)]"],
                         b"Subject: nested\r\nX-Folded: first\r\n second\r\n"
                         b"subject : spaced name\r\n\r\n")
        self.assertEqual(it["BODY[HEADER.FIELDS.NOT (From To Date MIME-Version Content-Type "
                            "Subject)]"], b"X-Folded: first\r\n second\r\n\r\n")
        self.assertEqual(it["BODY[HEADER.FIELDS (X-None)]"], b"\r\n")
        # a message with an empty body
        it = self.fetch1(c, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT] RFC822.SIZE)", 4)
        self.assertEqual(it["BODY[HEADER.FIELDS (SUBJECT)]"], b"Subject: no body\r\n\r\n")
        self.assertEqual(it["BODY[TEXT]"], b"")

    def test_partial(self):
        c = self.conn(examine=True)
        tagged, untagged = command(c, "p", "FETCH 1 (BODY.PEEK[]<0.10> BODY.PEEK[TEXT]<5.7> "
                                           "BODY.PEEK[TEXT]<100000.5> BODY.PEEK[HEADER]<3.1000000>)")
        self.assertRegex(tagged, rb"^p OK")
        raw = untagged[0]
        # RFC 3501 section 7.4.2: the response names the origin octet only
        self.assertIn(b"BODY[]<0> {10}\r\n" + SIMPLE[:10], raw)
        text = SIMPLE[SIMPLE.index(b"\r\n\r\n") + 4:]
        self.assertIn(b"BODY[TEXT]<5> {7}\r\n" + text[5:12], raw)
        self.assertIn(b"BODY[TEXT]<100000> {0}\r\n", raw)
        hdr = SIMPLE[:SIMPLE.index(b"\r\n\r\n") + 4]
        self.assertIn(b"BODY[HEADER]<3> {%d}\r\n" % (len(hdr) - 3) + hdr[3:], raw)
        it = self.fetch1(c, "BODY.PEEK[2.1]<2.3>", 2)
        self.assertEqual(it["BODY[2.1]<2>"], b"ner")

    def test_big_body_streamed(self):
        c = self.conn(examine=True)
        it = self.fetch1(c, "(RFC822.SIZE BODY.PEEK[])", 3)
        self.assertEqual(int(it["RFC822.SIZE"]), len(BIG))
        self.assertEqual(it["BODY[]"], BIG)
        it = self.fetch1(c, "BODY.PEEK[]<1000000.70000>", 3)
        self.assertEqual(it["BODY[]<1000000>"], BIG[1000000:1070000])

    def test_macros(self):
        c = self.conn(examine=True)
        self.assertEqual(sorted(self.fetch1(c, "FAST")),
                         ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])
        self.assertEqual(sorted(self.fetch1(c, "ALL")),
                         ["ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE"])
        self.assertEqual(sorted(self.fetch1(c, "FULL")),
                         ["BODY", "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822.SIZE"])
        # a macro is not valid inside a list
        self.assertRegex(command(c, "m", "FETCH 1 (ALL)")[0], rb"^m BAD")

    def test_uid_fetch_and_sets(self):
        c = self.conn(examine=True)
        tagged, untagged = command(c, "u1", "UID FETCH 1:* FLAGS")
        self.assertRegex(tagged, rb"^u1 OK")
        got = [fetch_items(r) for r in untagged]
        self.assertEqual([(n, it["UID"]) for n, it in got],
                         [(1, b"1"), (2, b"2"), (3, b"3"), (4, b"4")])
        # UID ranges past uidnext are fine; "*" is the highest uid (RFC 3501 section 6.4.8)
        tagged, untagged = command(c, "u2", "UID FETCH 100:200 FLAGS")
        self.assertEqual((tagged, untagged), (b"u2 OK UID FETCH completed\r\n", []))
        tagged, untagged = command(c, "u3", "UID FETCH 900:* UID")
        self.assertEqual([fetch_items(r) for r in untagged], [(4, {"UID": b"4"})])
        tagged, untagged = command(c, "u4", "FETCH 2,4 UID")
        self.assertEqual([fetch_items(r)[0] for r in untagged], [2, 4])
        tagged, untagged = command(c, "u5", "FETCH *:3 UID")
        self.assertEqual([fetch_items(r)[0] for r in untagged], [3, 4])
        # message numbers that do not exist: BAD (RFC 3501 section 6.4.5)
        for i, bad in enumerate(("5", "1:5", "0", "x", "1 (FLAGS", "1 NOSUCH", "1 BINARY[1.TEXT]")):
            tagged, _ = command(c, "b%d" % i, "FETCH " + bad)
            self.assertRegex(tagged, rb"^b%d BAD" % i, bad)
        self.assertRegex(command(c, "b9", "UID FETCH")[0], rb"^b9 BAD")

    def test_seen_set_by_body(self):
        m = self.coffer.imap()
        m.login("fred", "secret")
        m.create("seen")
        for _ in range(3):
            m.append("seen", None, None, SIMPLE)
        m.logout()
        c = self.conn("seen")
        # PEEK and RFC822.HEADER leave \Seen alone
        it = self.fetch1(c, "(BODY.PEEK[] RFC822.HEADER BODY.PEEK[HEADER])", 1)
        self.assertNotIn("FLAGS", it)
        self.assertNotIn(b"\\Seen", self.fetch1(c, "FLAGS", 1)["FLAGS"])
        # BODY[TEXT] sets it and reports FLAGS in the same response
        it = self.fetch1(c, "BODY[TEXT]", 1)
        self.assertIn(b"\\Seen", it["FLAGS"])
        # already seen: no extra FLAGS
        it = self.fetch1(c, "BODY[TEXT]", 1)
        self.assertNotIn("FLAGS", it)
        # RFC822 too, and with FLAGS asked for, once
        tagged, untagged = command(c, "r", "FETCH 2 (FLAGS RFC822)")
        self.assertEqual(untagged[0].count(b"FLAGS"), 1)
        self.assertIn(b"\\Seen", fetch_items(untagged[0])[1]["FLAGS"])
        # no unsolicited FETCH afterwards for this session's own change
        tagged, untagged = command(c, "n", "NOOP")
        self.assertEqual(untagged, [])
        # EXAMINE never sets it
        c2 = self.conn("seen", examine=True)
        it = self.fetch1(c2, "BODY[]", 3)
        self.assertNotIn("FLAGS", it)
        self.assertNotIn(b"\\Seen", self.fetch1(c2, "FLAGS", 3)["FLAGS"])

    def test_curl_imap_url(self):
        m = self.coffer.imap()
        m.login("fred", "secret")
        m.create("curl")
        m.append("curl", None, None, NESTED)
        m.logout()
        url = "imap://127.0.0.1:%d/curl;UID=1" % self.coffer.ports["imap"]
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", "fred:secret", url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, NESTED)
        r = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", "fred:secret",
                            url + "/;SECTION=2.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, b"inner plain"), r.stderr)


def sync_message(i):
    """Message i of the DamagedCache mailbox: plain or multipart, one with a header of 6 KB
    (a cache record longer than the server's first 4 KiB cache read)."""
    pad = b"".join(b"X-Pad-%d: %s\r\n" % (k, b"p" * 70) for k in range(80)) if i == 20 else b""
    head = (b"From: Sender %d <s%d@example.com>\r\nTo: r@example.com\r\n"
            b"Subject: sync message %02d\r\nMessage-ID: <sync%d@example.com>\r\n" % (i, i, i, i))
    if i % 3:
        return head + pad + b"\r\nplain body %d\r\n" % i
    return (head + pad + b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b%d\r\n"
            b"\r\n--b%d\r\nContent-Type: text/plain\r\n\r\nplain %d\r\n--b%d\r\n"
            b"Content-Type: text/html\r\n\r\n<p>%d</p>\r\n--b%d--\r\n" % (i, i, i, i, i, i))


class DamagedCache(SharedCofferTestCase):
    """FETCH 1:* of ENVELOPE and BODYSTRUCTURE reads the cache records one after the other
    (lib/store/mail.c's read-ahead window): a damaged record in the middle of the walk is
    rebuilt from its message file, and every other message still gets its own cached text."""
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}
    ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.coffer.add_user("sync", "secret")
        m = cls.coffer.imap()
        m.login("sync", "secret")
        m.create("sync")
        for i in range(1, 61):
            m.append("sync", None, None, sync_message(i))
        m.logout()

    def sync(self):
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(command(c, "l", "LOGIN sync secret")[0], rb"^l OK")
        self.assertRegex(command(c, "s", "SELECT sync")[0], rb"^s OK")
        tagged, untagged = command(c, "f", "UID FETCH 1:* " + self.ITEMS)
        self.assertRegex(tagged, rb"^f OK")
        st, status = command(c, "t", "STATUS sync (MAILBOXID)")
        mid = re.search(rb"MAILBOXID \(F([A-Za-z0-9_-]+)\)", status[0]).group(1).decode()
        # \Recent goes to the first session only: compare the rest
        return [re.sub(rb"FLAGS \([^)]*\)", b"FLAGS ()", r) for r in untagged
                if re.match(rb"\* \d+ FETCH", r)], mid

    def test_damaged_record_mid_walk(self):
        before, mid = self.sync()
        self.assertEqual(len(before), 60)
        for i, r in enumerate(before, 1):
            it = fetch_items(r)[1]
            self.assertEqual(it["ENVELOPE"][1], b"sync message %02d" % i)
            self.assertEqual(it["ENVELOPE"][9], b"<sync%d@example.com>" % i)
        path = os.path.join(self.coffer.spool, mid[:2], mid, "cache")
        with open(path, "rb") as f:
            cache = f.read()
        # damage message 31's record (its checksum no longer holds) and the long one's
        for subj in (b"sync message 31", b"sync message 20"):
            at = cache.index(subj)
            with open(path, "r+b") as f:
                f.seek(at)
                f.write(b"XXXX")
        since = self.coffer.log_size()
        after, _ = self.sync()
        self.assertEqual(after, before)
        # the server found both damaged (not served from bytes it had read ahead) and said so
        self.coffer.wait_log(r"mailbox_cache_rebuild .*uid=20 ", since=since)
        self.coffer.wait_log(r"mailbox_cache_rebuild .*uid=31 ", since=since)


if __name__ == "__main__":
    main()
