"""test_imap_preview.py: RFC 8970 PREVIEW end to end on a MIME corpus (plain, HTML only, base64,
quoted-printable, multipart/alternative, ISO-8859-1, windows-1252, ISO-2022-JP, empty body,
attachment only, a forwarded message, long text cut at 256 characters on a UTF-8 boundary):
FETCH PREVIEW and PREVIEW (LAZY), in a list and alone; the preview comes from the cache made at
append (a message file changed behind the server's back does not change it) and COPY keeps it;
caches written before previews existed answer NIL to LAZY and a computed text otherwise; no
\\Seen is set; rights (another user's mailbox, no rights, an administrator); BAD modifiers."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402
from test_objid_lib import mailbox_dir, mailboxid_of, strip_preview  # noqa: E402

USERS = {u: u + "pw" for u in ("fred", "joe", "admin", "sam")}


def m(headers, body):
    return (headers.replace("\n", "\r\n") + "\r\n").encode("latin-1") + body


CORPUS = [
    ("plain", m("Subject: plain\n", b"Hello   there,\r\n\r\n  how are\tyou?\r\n"),
     "Hello there, how are you?"),
    ("html only", m("Content-Type: text/html; charset=utf-8\n",
                    b"<html><head><title>Ignored</title><style>p {color: red}</style></head>"
                    b"<body><p>Dear&nbsp;<b>Reader</b>,</p><!-- hidden --><p>5 &lt; 6 &amp; "
                    b"&#x263A;</p><script>var x = 1;</script></body></html>\r\n"),
     "Dear Reader, 5 < 6 & \u263a"),
    ("base64", m("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n",
                 b"R3LDvMOfZSBhdXMgYmFzZTY0\r\n"), "Gr\u00fc\u00dfe aus base64"),
    ("quoted-printable", m("Content-Type: text/plain; charset=iso-8859-1\n"
                           "Content-Transfer-Encoding: quoted-printable\n",
                           b"Caf=E9 cr=E8me, a soft=\r\n line break =3D fine\r\n"),
     "Caf\u00e9 cr\u00e8me, a soft line break = fine"),
    ("alternative", m("Content-Type: multipart/alternative; boundary=xx\n",
                      b"--xx\r\nContent-Type: text/plain\r\n\r\nthe plain part\r\n--xx\r\n"
                      b"Content-Type: text/html\r\n\r\n<p>the html part</p>\r\n--xx--\r\n"),
     "the plain part"),
    ("alternative html first", m("Content-Type: multipart/alternative; boundary=xx\n",
                                 b"--xx\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--xx\r\n"
                                 b"Content-Type: text/plain\r\n\r\nplain\r\n--xx--\r\n"),
     "plain"),
    ("latin-1", m("Content-Type: text/plain; charset=ISO-8859-1\n", b"na\xefve fa\xe7ade\r\n"),
     "na\u00efve fa\u00e7ade"),
    ("windows-1252", m("Content-Type: text/plain; charset=windows-1252\n",
                       b"\x93smart quotes\x94 cost \x80 5\r\n"),
     "\u201csmart quotes\u201d cost \u20ac 5"),
    ("iso-2022-jp", m("Content-Type: text/plain; charset=ISO-2022-JP\n",
                      b"\x1b$B$3$s$K$A$O\x1b(B world\r\n"),
     "\u3053\u3093\u306b\u3061\u306f world"),
    ("empty body", m("Subject: nothing\n", b""), ""),
    ("attachment only", m("Content-Type: multipart/mixed; boundary=b\n",
                          b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: "
                          b"attachment; filename=x.pdf\r\nContent-Transfer-Encoding: base64\r\n"
                          b"\r\nJVBERi0xLjQ=\r\n--b--\r\n"), ""),
    ("text attachment", m("Content-Type: multipart/mixed; boundary=b\n",
                          b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; "
                          b"filename=a.txt\r\n\r\nfile text\r\n--b\r\nContent-Type: text/html\r\n"
                          b"\r\n<div>the body</div>\r\n--b--\r\n"), "the body"),
    ("forwarded", m("Content-Type: multipart/mixed; boundary=b\n",
                    b"--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--b\r\n"
                    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n"
                    b"--b--\r\n"), "see below"),
    ("quotes and backslash", m("Subject: q\n", b'say "hi" \\o/\r\n'), 'say "hi" \\o/'),
    ("long", m("Content-Type: text/plain; charset=utf-8\n", ("\u00e9" * 300).encode()),
     "\u00e9" * 256),
]


def parse_previews(untagged):
    """{uid: preview text or None} from FETCH responses with UID before PREVIEW."""
    blob = b"".join(untagged)
    out = {}
    for mt in re.finditer(rb"UID (\d+) PREVIEW ", blob):
        pos = mt.end()
        if blob.startswith(b"NIL", pos):
            val = None
        elif blob[pos:pos + 1] == b'"':
            q = re.match(rb'"((?:[^"\\]|\\.)*)"', blob[pos:])
            val = re.sub(rb"\\(.)", rb"\1", q.group(1)).decode()
        else:
            lit = re.match(rb"\{(\d+)\}\r\n", blob[pos:])
            n = int(lit.group(1))
            start = pos + lit.end()
            val = blob[start:start + n].decode("utf-8")
        out[int(mt.group(1))] = val
    return out


class Preview(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin"}}

    def append(self, c, box, data):
        c.send(b"a APPEND %s {%d+}\r\n" % (box.encode(), len(data)) + data + b"\r\n")
        tagged, _ = c.read_tagged("a")
        self.assertRegex(tagged, rb"^a OK")

    def previews(self, c, items="(UID PREVIEW)", seq="1:*"):
        return parse_previews(self.ok(c, "UID FETCH %s %s" % (seq, items)))

    def test_capability(self):
        caps = b"".join(self.conn("fred").imap("c", "CAPABILITY")[1])
        self.assertIn(b" PREVIEW", caps)

    def test_corpus(self):
        c = self.conn("fred")
        self.ok(c, "CREATE corpus")
        for _, data, _ in CORPUS:
            self.append(c, "corpus", data)
        self.ok(c, "SELECT corpus")
        got = self.previews(c)
        lazy = self.previews(c, "(UID PREVIEW (LAZY))")
        for i, (name, _, want) in enumerate(CORPUS, 1):
            self.assertEqual(got[i], want, name)
            self.assertEqual(lazy[i], want, name)       # computed at append: LAZY has it
            self.assertLessEqual(len(got[i]), 256, name)
        # ASCII goes quoted, other text as a literal
        raw = b"".join(self.ok(c, "UID FETCH 1,7 (UID PREVIEW)"))
        self.assertIn(b'PREVIEW "Hello there, how are you?"', raw)
        self.assertRegex(raw, rb"PREVIEW \{\d+\}\r\n")
        # the item alone, with its modifiers alone, and mixed with others; no \Seen
        self.assertEqual(parse_previews(self.ok(c, "UID FETCH 1 (UID PREVIEW (LAZY) FLAGS)")),
                         {1: CORPUS[0][2]})
        line = self.ok(c, "FETCH 1 PREVIEW (LAZY)")[0]
        self.assertIn(b'PREVIEW "Hello there', line)
        line = self.ok(c, "FETCH 1 PREVIEW")[0]
        self.assertIn(b'PREVIEW "Hello there', line)
        flags = b"".join(self.ok(c, "FETCH 1:* FLAGS"))
        self.assertNotIn(b"\\Seen", flags)

    def test_cached_and_copied(self):
        c = self.conn("sam")
        self.ok(c, "CREATE cached")
        self.ok(c, "CREATE copies")
        self.append(c, "cached", m("Subject: c\n", b"original words here\r\n"))
        mid = mailboxid_of(self, c, "cached")
        # change the message file behind the server's back (same length): FETCH PREVIEW is
        # not computed again from it, the cache made at append answers
        path = os.path.join(mailbox_dir(self.coffer, mid), "1.")
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data.replace(b"original", b"CHANGED!"))
        self.ok(c, "SELECT cached")
        self.assertEqual(self.previews(c), {1: "original words here"})
        self.assertIn(b"CHANGED!", b"".join(self.ok(c, "FETCH 1 BODY.PEEK[TEXT]")))
        # COPY carries the cached preview along
        self.ok(c, "UID COPY 1 copies")
        self.ok(c, "SELECT copies")
        self.assertEqual(self.previews(c, "(UID PREVIEW (LAZY))"), {1: "original words here"})

    def test_old_cache(self):
        c = self.conn("sam")
        self.ok(c, "CREATE oldcache")
        self.append(c, "oldcache", CORPUS[1][1])
        self.append(c, "oldcache", CORPUS[3][1])
        mid = mailboxid_of(self, c, "oldcache")
        self.ok(c, "LOGOUT", "z")
        strip_preview(mailbox_dir(self.coffer, mid))
        c = self.conn("sam")
        self.ok(c, "SELECT oldcache")
        # RFC 8970: LAZY may answer NIL when the preview is not at hand
        self.assertEqual(self.previews(c, "(UID PREVIEW (LAZY))"), {1: None, 2: None})
        self.assertEqual(self.previews(c), {1: CORPUS[1][2], 2: CORPUS[3][2]})
        # other cached data is still used (the cache record is intact)
        self.assertIn(b"ENVELOPE", self.ok(c, "FETCH 1 ENVELOPE")[0])
        # a new message in the same mailbox has its preview cached
        self.append(c, "oldcache", CORPUS[0][1])
        self.ok(c, "NOOP")
        self.assertEqual(self.previews(c, "(UID PREVIEW (LAZY))", "3"), {3: CORPUS[0][2]})

    def test_rights(self):
        f = self.conn("fred")
        self.ok(f, "CREATE pv")
        self.append(f, "pv", CORPUS[0][1])
        box = '"Other Users/fred/pv"'
        j = self.conn("joe")
        self.no(j, "EXAMINE %s" % box, "NONEXISTENT")
        self.ok(f, "SETACL pv joe l")
        self.assertRegex(j.imap("e", "EXAMINE %s" % box)[0], rb"^e NO ")
        self.ok(f, "SETACL pv joe lr")
        self.ok(j, "EXAMINE %s" % box)
        self.assertEqual(self.previews(j), {1: CORPUS[0][2]})
        a = self.conn("admin")
        self.ok(a, "EXAMINE %s" % box)
        self.assertEqual(self.previews(a), {1: CORPUS[0][2]})

    def test_bad(self):
        c = self.conn("fred")
        self.ok(c, "SELECT INBOX")
        for items in ("(PREVIEW (FUZZY))", "(PREVIEW ())", "PREVIEW (LAZY FOO)",
                      "(PREVIEW LAZY)", "(PREVIEW[])", "PREVIEW (LAZY) (CHANGEDSINCE)"):
            tagged, _ = c.imap("b", "FETCH 1:* %s" % items)
            self.assertRegex(tagged, rb"^b BAD ", items)
        self.ok(c, "NOOP")


if __name__ == "__main__":
    main()
