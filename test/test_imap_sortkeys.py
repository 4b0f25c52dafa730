"""test_imap_sortkeys.py: the per-mailbox sort key file (coffer-store(5) "sortkeys") that SORT
and THREAD (RFC 5256) read instead of the headers, end to end: written at APPEND (and by a
SORT or THREAD for what APPEND could not write), and never stale: right answers after EXPUNGE
(also from another session), after APPEND, after a repack (`coffer expire`), after
`coffer reconstruct` (which drops the file), on a mailbox without the file (one written before
the file existed), with a file of another format or a damaged one, and with a file holding a
record for a uid whose message is another one."""
import os
import re
import struct
import subprocess
import sys
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"fred": "fredpw"}

# (subject, Date:, Message-ID, References, In-Reply-To, From)
MSGS = [
    ("topic", "Mon, 2 Jan 2023 10:00:00 +0000", "<a@x>", None, None, "zed@x.example"),
    ("Re: topic", "Mon, 2 Jan 2023 11:00:00 +0000", "<b@x>", "<a@x>", None, "amy@x.example"),
    ("other", "Mon, 2 Jan 2023 12:00:00 +0000", "<c@x>", None, None, "bob@x.example"),
    ("Re: topic", "Mon, 2 Jan 2023 13:00:00 +0000", "<d@x>", None, "<b@x>", "cat@x.example"),
    ("Re: other", "Mon, 2 Jan 2023 14:00:00 +0000", "<e@x>", "<c@x>", None, "dan@x.example"),
    ("lonely", "Mon, 2 Jan 2023 15:00:00 +0000", "<f@x>", None, None, "eve@x.example"),
]
NEW = ("Re: topic", "Mon, 2 Jan 2023 16:00:00 +0000", "<g@x>", "<a@x> <b@x>", None,
       "fay@x.example")


def message(m, i):
    subj, date, mid, refs, irt, frm = m
    h = "From: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n" % (frm, subj, date, mid)
    if refs:
        h += "References: %s\r\n" % refs
    if irt:
        h += "In-Reply-To: %s\r\n" % irt
    return h + "\r\nbody %d\r\n" % i


class SortKeys(ImapUsersTestCase):
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

    def append(self, c, box, m, i):
        data = message(m, i)
        self.ok(c, 'APPEND "%s" {%d+}\r\n%s' % (box, len(data.encode()), data))

    def thread(self, c):
        untagged = self.ok(c, "UID THREAD REFERENCES UTF-8 ALL")
        lines = [u.rstrip(b"\r\n").decode() for u in untagged if u.startswith(b"* THREAD")]
        self.assertEqual(len(lines), 1, untagged)
        return lines[0][len("* THREAD"):].lstrip(" ")

    def sort(self, c, keys):
        untagged = self.ok(c, "UID SORT (%s) UTF-8 ALL" % keys)
        lines = [u.rstrip(b"\r\n") for u in untagged if u.startswith(b"* SORT")]
        self.assertEqual(len(lines), 1, untagged)
        return [int(x) for x in lines[0].split()[2:]]

    def check(self, c, threads, by_subject, by_from, what):
        self.assertEqual(self.thread(c), threads, what)
        self.assertEqual(self.sort(c, "SUBJECT"), by_subject, what)
        self.assertEqual(self.sort(c, "FROM"), by_from, what)
        self.assertEqual(self.sort(c, "REVERSE DATE"), sorted(by_subject, reverse=True), what)

    def test_follows_the_index(self):
        c = self.conn("fred")
        self.ok(c, 'CREATE "keys"')
        for i, m in enumerate(MSGS, 1):
            self.append(c, "keys", m, i)
        self.ok(c, 'SELECT "keys"')
        d = self.mailbox_dir("user/fred/keys")
        kf = os.path.join(d, "sortkeys")
        # written at APPEND already (coffer-store(5)); the first SORT adds nothing
        with open(kf, "rb") as f:
            self.assertEqual(f.read(8), b"COFFERSK")
        size = os.path.getsize(kf)
        # uids 1..6; from: amy 2, bob 3, cat 4, dan 5, eve 6, zed 1
        self.check(c, "(1 2 4)(3 5)(6)", [6, 3, 5, 1, 2, 4], [2, 3, 4, 5, 6, 1], "first")
        self.assertEqual(os.path.getsize(kf), size)
        # again, from the file
        self.check(c, "(1 2 4)(3 5)(6)", [6, 3, 5, 1, 2, 4], [2, 3, 4, 5, 6, 1], "again")

        # EXPUNGE of 2 from another session: 4's parent <b@x> is gone, it joins 1 by subject
        c2 = self.conn("fred")
        self.ok(c2, 'SELECT "keys"')
        self.ok(c2, "UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        self.ok(c2, "EXPUNGE")
        self.ok(c, "NOOP")
        self.check(c, "(1 4)(3 5)(6)", [6, 3, 5, 1, 4], [3, 4, 5, 6, 1], "expunge")

        # a new message referring to <a@x> and the expunged <b@x>: appended to the file
        size = os.path.getsize(kf)
        self.append(c2, "keys", NEW, 7)
        self.ok(c, "NOOP")
        self.check(c, "(1 (4)(7))(3 5)(6)", [6, 3, 5, 1, 4, 7], [3, 4, 5, 6, 7, 1], "append")
        self.assertGreater(os.path.getsize(kf), size)

        # repack: the expunged record leaves the index
        self.tool("expire")
        self.ok(c, "NOOP")
        self.check(c, "(1 (4)(7))(3 5)(6)", [6, 3, 5, 1, 4, 7], [3, 4, 5, 6, 7, 1], "repack")

        # reconstruct after a lost message file: the index is rewritten, the file dropped
        c.imap("z", "LOGOUT")
        c2.imap("z", "LOGOUT")
        os.unlink(os.path.join(d, "6."))
        self.tool("reconstruct", "user/fred/keys")
        self.assertFalse(os.path.exists(kf))
        c = self.conn("fred")
        self.ok(c, 'SELECT "keys"')
        self.check(c, "(1 (4)(7))(3 5)", [3, 5, 1, 4, 7], [3, 4, 5, 7, 1], "reconstruct")
        self.assertTrue(os.path.exists(kf))

        # a mailbox from before the file existed: none, rebuilt
        os.unlink(kf)
        self.check(c, "(1 (4)(7))(3 5)", [3, 5, 1, 4, 7], [3, 4, 5, 7, 1], "no file")
        self.assertTrue(os.path.exists(kf))

        # a file of another format version, and one with damaged records: replaced
        st = os.stat(kf)
        with open(kf, "r+b") as f:
            f.seek(8)
            f.write(b"\x63\x00\x00\x00")
        self.check(c, "(1 (4)(7))(3 5)", [3, 5, 1, 4, 7], [3, 4, 5, 7, 1], "other version")
        with open(kf, "r+b") as f:
            data = bytearray(f.read())
            for k in range(80, len(data), 7):
                data[k] ^= 0x55
            f.seek(0)
            f.write(data)
        self.check(c, "(1 (4)(7))(3 5)", [3, 5, 1, 4, 7], [3, 4, 5, 7, 1], "damaged")
        self.assertEqual(os.stat(kf).st_uid, st.st_uid)

    def test_record_of_another_message(self):
        """A key file copied from another mailbox with the same uids (a restore gone wrong)
        is never believed: each record names its message's GUID."""
        c = self.conn("fred")
        self.ok(c, 'CREATE "one"')
        self.ok(c, 'CREATE "two"')
        for i, m in enumerate(MSGS, 1):
            self.append(c, "one", m, i)
        # the same uids in "two", other messages (subjects reversed)
        for i, m in enumerate(MSGS, 1):
            m2 = (MSGS[len(MSGS) - i][0],) + m[1:]
            self.append(c, "two", m2, i)
        self.ok(c, 'SELECT "one"')
        self.thread(c)
        untagged = b"".join(self.ok(c, 'SELECT "two"'))
        uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", untagged).group(1))
        want = self.sort(c, "SUBJECT")
        self.assertEqual(want, [1, 2, 4, 3, 5, 6])
        one = os.path.join(self.mailbox_dir("user/fred/one"), "sortkeys")
        two = os.path.join(self.mailbox_dir("user/fred/two"), "sortkeys")
        st = os.stat(two)
        # one's file, made to look like two's: its uidvalidity in the header (bytes 16-19,
        # the header's CRC-32 at 60)
        with open(one, "rb") as f:
            data = bytearray(f.read())
        data[16:20] = struct.pack("<I", uidvalidity)
        data[60:64] = struct.pack("<I", zlib.crc32(bytes(data[:60])))
        with open(two, "wb") as f:
            f.write(data)
        os.chown(two, st.st_uid, st.st_gid)
        self.assertEqual(self.sort(c, "SUBJECT"), want)
        self.assertEqual(self.sort(c, "SUBJECT"), want)


if __name__ == "__main__":
    main()
