"""test_imap_search_column.py: the header search column (coffer-store(5) "searchkeys") that
SEARCH FROM/TO/CC/BCC/SUBJECT and HEADER on those fields read instead of the headers, end to
end: written at APPEND and LMTP delivery (and by a SEARCH for what they could not write),
and giving exactly the answers of the header path
(encoded words in two charsets, several From fields and addresses, address text that differs
from the field's text, groups, missing fields) also after flag changes, an expunge and an
append by another session, with UID SEARCH, ESEARCH, SORT and live (CONTEXT=SEARCH) searches,
and with a damaged file, a file of another format, a file holding another mailbox's records
and no file at all (reconstruct drops it)."""
import os
import re
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"fred": "fredpw"}


def crlf(s):
    return s.replace("\n", "\r\n")


MSGS = [
    crlf('From: "Dana Okafor" <dana.okafor@example.net>\nTo: fred@example.com\n'
         'Subject: Quarterly report\n\nbody one\n'),
    crlf("From: =?ISO-8859-1?Q?Andr=E9_M=FCller?= <andre@example.fr>,\n"
         " dana.okafor@example.net\nCc: carol@example.org\n"
         "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= quarterly\n\nbody two\n"),
    crlf("From: zoe@example.org\nFrom: second@example.com\nDate: 1 Jan 2024 00:00:00 +0000\n"
         "\nbody three (no To, no Subject)\n"),
    crlf("From: user (c)@ (c) domain.org\nSubject: STRASSE\n\nbody four\n"),
    crlf("From: eve@example.com\nTo: Team: a@x.example, b@y.example;\nBcc: boss@example.com\n"
         "Subject: =?utf-8?b?w5xiZXJzaWNodA==?=\n\nbody five\n"),
]
NEW = crlf('From: "New Dana" <dana.okafor@example.net>\nSubject: quarterly again\n\nsix\n')

# (search key, needle, matching positions in MSGS (1-based))
CASES = [
    ("FROM", "dana", [1, 2]),
    ("FROM", "andré", [2]),
    ("FROM", "ANDRÉ MÜLLER", [2]),
    ("FROM", "second@example.com", [3]),
    ("FROM", "zoe", [3]),
    ("FROM", "user@domain.org", [4]),     # only in the parsed address
    ("HEADER From", "user@domain.org", []),   # HEADER compares the field's text only
    ("SUBJECT", "quarterly", [1, 2]),
    ("SUBJECT", "grüße", [2]),
    ("SUBJECT", "strasse", [4]),
    ("SUBJECT", "übersicht", [5]),
    ("HEADER Subject", "", [1, 2, 4, 5]),
    ("HEADER To", "", [1, 5]),
    ("TO", "team", [5]),
    ("TO", "b@y.example", [5]),
    ("CC", "CAROL", [2]),
    ("BCC", "boss", [5]),
    ("NOT FROM", "dana", [3, 4, 5]),
    ("FROM", "nobody-here", []),
]


class SearchColumn(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0"}}

    def tool(self, *args):
        r = subprocess.run([os.path.join(self.coffer.bindir, "coffer"), "-C",
                            self.coffer.conf_path] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                           env=self.coffer.env())
        self.assertEqual(r.returncode, 0, (args, r.stdout, r.stderr))
        return r.stdout

    def mailbox_dir(self, name):
        import json
        rows = json.loads(self.tool("--json", "mailbox", "list", name).decode())
        u = [r for r in rows if r["mailbox"] == name][0]["uniqueid"]
        return os.path.join(self.coffer.spool, u[:2], u)

    def records(self, kf):
        """[(uid, guid prefix)] of the key file kf's records, each checked whole."""
        with open(kf, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"COFFERSK")
        out, off = [], 64
        while off < len(data):
            ln, uid = struct.unpack_from("<II", data, off)
            self.assertGreaterEqual(ln, 20)
            self.assertLessEqual(off + ln, len(data))
            out.append((uid, data[off + 8:off + 16]))
            off += ln
        return out

    def deliver(self, msgs):
        s = self.coffer.lmtp()
        try:
            for m in msgs:
                self.assertEqual(s.sendmail("s@example.net", ["fred@example.org"],
                                            m.encode()), {})
        finally:
            s.quit()

    def test_delivery_writes_the_column(self):
        """LMTP deliveries append the new messages' records to INBOX's searchkeys and sortkeys
        files, so the first header SEARCH (and SORT) has nothing to encode; the answers stay
        exact. A file that does not end at the last message before the new ones (a torn tail)
        is left to SEARCH, which rewrites it whole."""
        self.deliver(MSGS)
        d = self.mailbox_dir("user/fred")
        kf, sk = os.path.join(d, "searchkeys"), os.path.join(d, "sortkeys")
        self.assertEqual([u for u, _ in self.records(kf)], [1, 2, 3, 4, 5])
        self.assertEqual([u for u, _ in self.records(sk)], [1, 2, 3, 4, 5])
        guids = [g for _, g in self.records(kf)]
        self.assertEqual(len(set(guids)), 5)
        c = self.conn("fred")
        self.ok(c, "SELECT INBOX")
        size, ssize = os.path.getsize(kf), os.path.getsize(sk)
        ident = {i: i for i in range(1, 6)}
        self.check_all(c, ident, "delivered")
        untagged = self.ok(c, "SORT (SUBJECT) UTF-8 SUBJECT quarterly")
        self.assertEqual(re.findall(rb"\* SORT (.*)\r\n", b"".join(untagged)), [b"2 1"])
        self.assertEqual((os.path.getsize(kf), os.path.getsize(sk)), (size, ssize),
                         "SEARCH and SORT found every record in the files")

        # more deliveries append to the files
        self.deliver([NEW])
        self.assertEqual([u for u, _ in self.records(kf)], [1, 2, 3, 4, 5, 6])
        self.ok(c, "NOOP")
        self.assertEqual(self.search(c, "FROM", "dana"), [1, 2, 6])

        # a torn tail: the delivery leaves the file alone, SEARCH rewrites it, same answers
        with open(kf, "r+b") as f:
            f.truncate(os.path.getsize(kf) - 3)
        torn = os.path.getsize(kf)
        self.deliver([NEW])
        self.assertEqual(os.path.getsize(kf), torn)
        self.ok(c, "NOOP")
        self.assertEqual(self.search(c, "FROM", "dana"), [1, 2, 6, 7])
        self.assertEqual([u for u, _ in self.records(kf)], [1, 2, 3, 4, 5, 6, 7])
        self.assertEqual(self.search(c, "FROM", "andré"), [2])
        self.assertEqual(self.search(c, "SUBJECT", "quarterly"), [1, 2, 6, 7])
        # and deliveries append again after the rewrite
        self.deliver([MSGS[3]])
        self.assertEqual([u for u, _ in self.records(kf)], [1, 2, 3, 4, 5, 6, 7, 8])
        self.ok(c, "NOOP")
        self.assertEqual(self.search(c, "SUBJECT", "strasse"), [4, 8])
        c.imap("z", "LOGOUT")

    def append(self, c, box, data):
        self.ok(c, 'APPEND "%s" {%d+}\r\n%s' % (box, len(data.encode()), data))

    def search(self, c, key, needle, extra="", uid=False):
        n = len(needle.encode())
        untagged = self.ok(c, "%sSEARCH CHARSET UTF-8 %s%s {%d+}\r\n%s" % (
            "UID " if uid else "", extra, key, n, needle))
        lines = [u for u in untagged if u.startswith(b"* SEARCH")]
        self.assertEqual(len(lines), 1, untagged)
        return [int(x) for x in lines[0].split()[2:]]

    def check_all(self, c, positions, what):
        """every CASE, its matches mapped through positions (MSGS index -> msgno, or None
        when that message is not in the view); also as UID SEARCH against uids."""
        for key, needle, want in CASES:
            exp = sorted(positions[i] for i in want if positions.get(i))
            self.assertEqual(self.search(c, key, needle), exp, (what, key, needle))

    def test_column_follows_the_mailbox(self):
        c = self.conn("fred")
        self.ok(c, 'CREATE "col"')
        for m in MSGS:
            self.append(c, "col", m)
        self.ok(c, 'SELECT "col"')
        d = self.mailbox_dir("user/fred/col")
        kf = os.path.join(d, "searchkeys")
        self.ok(c, "SEARCH SEEN")
        # APPEND wrote the records already
        self.assertEqual([u for u, _ in self.records(kf)], [1, 2, 3, 4, 5])
        ident = {i: i for i in range(1, 6)}
        size = os.path.getsize(kf)
        self.check_all(c, ident, "first")
        self.assertEqual(os.path.getsize(kf), size, "nothing left for SEARCH to add")
        self.check_all(c, ident, "from the file")
        self.assertEqual(self.search(c, "FROM", "dana", uid=True), [1, 2])

        # flags changed by another session: the column holds no flags
        c2 = self.conn("fred")
        self.ok(c2, 'SELECT "col"')
        self.ok(c2, "UID STORE 2,5 +FLAGS (\\Seen)")
        self.ok(c, "NOOP")
        self.assertEqual(self.search(c, "FROM", "dana", extra="SEEN "), [2])
        self.assertEqual(self.search(c, "SUBJECT", "", extra="UNSEEN "), [1, 4])   # 3 has none

        # expunged by another session: before c hears of it, uid 1 matches nothing
        self.ok(c2, "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(c2, "EXPUNGE")
        self.assertEqual(self.search(c, "FROM", "dana"), [2])
        self.ok(c, "NOOP")
        gone = {1: None, 2: 1, 3: 2, 4: 3, 5: 4}
        self.check_all(c, gone, "after expunge")

        # appended by another session: the file grows by its record
        size = os.path.getsize(kf)
        self.append(c2, "col", NEW)
        self.ok(c, "NOOP")
        self.assertEqual(self.search(c, "FROM", "dana"), [1, 5])
        self.assertEqual(self.search(c, "SUBJECT", "quarterly"), [1, 5])
        self.assertEqual(self.search(c, "FROM", "dana", uid=True), [2, 6])
        self.assertGreater(os.path.getsize(kf), size)

        # ESEARCH, SORT with a header key, and a live search updated by an append
        untagged = self.ok(c, "SEARCH RETURN (COUNT MIN MAX) FROM dana")
        self.assertIn(b"COUNT 2", b"".join(untagged))
        untagged = self.ok(c, "SORT (SUBJECT) UTF-8 SUBJECT quarterly")
        self.assertEqual(re.findall(rb"\* SORT (.*)\r\n", b"".join(untagged)), [b"1 5"])   # Grüße < quarterly again
        untagged = self.ok(c, "SEARCH RETURN (UPDATE ALL) FROM dana", tag="live")
        self.append(c2, "col", NEW)
        untagged = self.ok(c, "NOOP")
        self.assertRegex(b"".join(untagged), rb'ESEARCH \(TAG "live"\)[^\r]* ADDTO \(')
        self.ok(c, 'CANCELUPDATE "live"')

        # the two new messages expunged by this session: the view is MSGS[1:] again
        self.ok(c, "STORE 5:6 +FLAGS.SILENT (\\Deleted)")
        self.ok(c, "EXPUNGE")
        now = {1: None, 2: 1, 3: 2, 4: 3, 5: 4}
        self.check_all(c, now, "own expunge")

        # damaged records, another format version, a truncated file, no file: the same
        # answers every time
        st = os.stat(kf)
        with open(kf, "r+b") as f:
            data = bytearray(f.read())
            for k in range(80, len(data), 7):
                data[k] ^= 0x55
            f.seek(0)
            f.write(data)
        self.check_all(c, now, "damaged")
        with open(kf, "r+b") as f:
            f.seek(8)
            f.write(b"\x63\x00\x00\x00")
        self.check_all(c, now, "other version")
        with open(kf, "r+b") as f:
            f.truncate(os.path.getsize(kf) - 9)
        self.check_all(c, now, "torn tail")
        self.assertEqual(os.stat(kf).st_uid, st.st_uid)
        c.imap("z", "LOGOUT")
        c2.imap("z", "LOGOUT")
        # reconstruct after a lost message file (uid 5, MSGS[5]) rewrites the index and
        # drops the key files
        os.unlink(os.path.join(d, "5."))
        self.tool("reconstruct", "user/fred/col")
        self.assertFalse(os.path.exists(kf))
        c = self.conn("fred")
        self.ok(c, 'SELECT "col"')
        self.check_all(c, {2: 1, 3: 2, 4: 3}, "after reconstruct")
        self.assertTrue(os.path.exists(kf))

    def test_file_of_another_mailbox(self):
        """A column file copied from another mailbox with the same uids is never believed:
        each record names its message's GUID."""
        c = self.conn("fred")
        self.ok(c, 'CREATE "one"')
        self.ok(c, 'CREATE "two"')
        for m in MSGS:
            self.append(c, "one", m)
        for m in reversed(MSGS):
            self.append(c, "two", m)
        self.ok(c, 'SELECT "one"')
        self.assertEqual(self.search(c, "FROM", "dana"), [1, 2])
        untagged = b"".join(self.ok(c, 'SELECT "two"'))
        uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", untagged).group(1))
        self.assertEqual(self.search(c, "FROM", "dana"), [4, 5])
        one = os.path.join(self.mailbox_dir("user/fred/one"), "searchkeys")
        two = os.path.join(self.mailbox_dir("user/fred/two"), "searchkeys")
        st = os.stat(two)
        with open(one, "rb") as f:
            data = bytearray(f.read())
        data[16:20] = struct.pack("<I", uidvalidity)
        data[60:64] = struct.pack("<I", zlib.crc32(bytes(data[:60])))
        with open(two, "wb") as f:
            f.write(data)
        os.chown(two, st.st_uid, st.st_gid)
        self.assertEqual(self.search(c, "FROM", "dana"), [4, 5])
        self.assertEqual(self.search(c, "SUBJECT", "übersicht"), [1])
        self.assertEqual(self.search(c, "FROM", "dana"), [4, 5])


if __name__ == "__main__":
    main()
