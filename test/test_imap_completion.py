"""test_imap_completion.py: how an IMAP command completes (server/imapd/commands.c): the untagged
updates before its tagged response follow the command table's flags, and store errors map to
the same RFC 5530 response code in every command family (server/imapd/reply.c).

- An expunge made by another session is not reported as `* N EXPUNGE` after FETCH, STORE or
  SEARCH, which use message numbers (RFC 3501 section 7.4.1, RFC 9051 section 7.5.1), but is
  after NOOP and after UID FETCH / UID STORE / UID SEARCH, which are other commands.
- A BAD (parser error, unknown command, bad arguments) in selected state brings no updates:
  the command never ran.
- A damaged index is NO [CORRUPTION] for STATUS (a mailbox command) and SELECT / EXAMINE (the
  selected-state family) alike; a quota lock that cannot be had is the same code for APPEND,
  COPY, SETQUOTA and EXPUNGE."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, run_coffer, main  # noqa: E402


def msg(i):
    return (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: c%d\r\n"
            b"Message-ID: <compl%d@example.com>\r\n\r\nbody %d\r\n" % (i, i, i))


class Completion(ImapUsersTestCase):
    users = {"cu": "cupw", "cq": "cqpw", "boss": "bosspw"}
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def tool(self, *args):
        code, out, err = run_coffer(self.coffer, *args)
        self.assertEqual(code, 0, (args, out, err))
        return out

    def mailbox(self, c, name, n):
        self.ok(c, "CREATE %s" % name)
        for i in range(n):
            m = msg(i)
            self.ok(c, "APPEND %s {%d+}\r\n%s" % (name, len(m), m.decode()))

    def expunge_elsewhere(self, name, msgno):
        """Another session of the user expunges message msgno of name."""
        b = self.conn("cu")
        self.ok(b, "SELECT %s" % name)
        self.ok(b, "STORE %d +FLAGS.SILENT (\\Deleted)" % msgno)
        self.assertIn(b"* %d EXPUNGE\r\n" % msgno, self.ok(b, "EXPUNGE"))
        self.ok(b, "LOGOUT")

    def no_expunge(self, untagged):
        self.assertFalse([u for u in untagged if u.endswith(b" EXPUNGE\r\n")], untagged)

    def test_expunge_not_after_sequence_commands(self):
        a = self.conn("cu")
        self.mailbox(a, "seqs", 4)
        self.ok(a, "SELECT seqs")
        self.expunge_elsewhere("seqs", 2)
        # FETCH, STORE, SEARCH: message 2 still has its number for this session
        untagged = self.ok(a, "FETCH 1:4 UID")
        self.no_expunge(untagged)
        self.assertIn(b"* 4 FETCH (UID 4)\r\n", untagged)
        self.no_expunge(self.ok(a, "STORE 1 +FLAGS (\\Flagged)"))
        untagged = self.ok(a, "SEARCH ALL")
        self.no_expunge(untagged)
        self.assertIn(b"* SEARCH 1 3 4\r\n", untagged)   # 2 is gone, 3 and 4 keep their numbers
        # NOOP may renumber: now it is told
        self.assertIn(b"* 2 EXPUNGE\r\n", self.ok(a, "NOOP"))
        self.assertIn(b"* SEARCH 1 2 3\r\n", self.ok(a, "SEARCH ALL"))

    def test_expunge_after_uid_commands(self):
        a = self.conn("cu")
        self.mailbox(a, "uids", 4)
        self.ok(a, "SELECT uids")
        for i, command in enumerate(["UID FETCH 1:* FLAGS", "UID STORE 1 +FLAGS (\\Seen)",
                                     "UID SEARCH ALL"]):
            self.expunge_elsewhere("uids", 2)
            untagged = self.ok(a, command)
            self.assertIn(b"* 2 EXPUNGE\r\n", untagged, command)
            # the EXPUNGE comes last, just before the tagged response
            self.assertEqual(untagged[-1], b"* 2 EXPUNGE\r\n", command)
        self.assertIn(b"* SEARCH 1\r\n", self.ok(a, "SEARCH ALL"))

    def test_bad_brings_no_updates(self):
        a = self.conn("cu")
        self.mailbox(a, "bads", 3)
        self.ok(a, "SELECT bads")
        self.expunge_elsewhere("bads", 3)
        b, m = self.conn("cu"), msg(9)
        self.ok(b, "APPEND bads {%d+}\r\n%s" % (len(m), m.decode()))   # an EXISTS owed too
        for tag, command in [("b1", "NOOP extra"), ("b2", "FROBNICATE"),
                             ("b3", "FETCH 1 (FLAGS"), ("b4", "UID FROB 1"),
                             ("b5", "FETCH 99 FLAGS"), ("b6", "STORE 1 +FLAGS"),
                             ("b7", "CHECK now"), ("b8", "LOGIN cu cupw")]:
            tagged, untagged = a.imap(tag, command)
            self.assertRegex(tagged, rb"^" + tag.encode() + rb" BAD ", command)
            self.assertEqual(untagged, [], command)
        untagged = self.ok(a, "NOOP")
        self.assertIn(b"* 3 EXPUNGE\r\n", untagged)
        self.assertIn(b"* 3 EXISTS\r\n", untagged)

    # ---- one error table

    def mailbox_dir(self, name):
        out = run_coffer(self.coffer, "mailbox", "list", name, json_out=True)[1]
        row = [r for r in json.loads(out.decode()) if r["mailbox"] == name][0]
        u = row["uniqueid"]
        return os.path.join(self.coffer.spool, u[:2], u)

    def test_corruption_same_code(self):
        a = self.conn("cu")
        self.mailbox(a, "dmg", 2)
        self.ok(a, "LOGOUT")
        with open(os.path.join(self.mailbox_dir("user/cu/dmg"), "index"), "r+b") as f:
            f.truncate(16)                # no header left to choose
        a = self.conn("cu")
        try:
            self.no(a, "STATUS dmg (MESSAGES)", "CORRUPTION", tag="s")
            self.no(a, "SELECT dmg", "CORRUPTION", tag="t")
            self.no(a, "EXAMINE dmg", "CORRUPTION", tag="e")
        finally:
            self.tool("reconstruct", "user/cu/dmg")
        self.ok(a, "SELECT dmg")

    def test_quota_lock_failure_same_code(self):
        a = self.conn("cq")
        self.mailbox(a, "ql", 1)
        self.ok(a, "CREATE qlother")
        self.tool("quota", "set", "user/cq", "--storage", "100000", "--messages", "1000")
        h = 0xcbf29ce484222325      # CONFIGDIR/lock/quota/<FNV-1a 64 of the root>
        for ch in b"user/cq":
            h = ((h ^ ch) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
        path = os.path.join(self.coffer.configdir, "lock", "quota", "%016x" % h)
        if os.path.exists(path):
            os.unlink(path)
        os.makedirs(path)           # a directory cannot be opened for the lock
        try:
            m = msg(5)
            codes = set()
            tagged = a.imap("a", "APPEND ql {%d+}\r\n%s" % (len(m), m.decode()))[0]
            codes.add(tagged.split(b"]")[0])
            self.ok(a, "SELECT ql")
            codes.add(a.imap("a", "COPY 1 qlother")[0].split(b"]")[0])
            self.ok(a, "STORE 1 +FLAGS.SILENT (\\Deleted)")
            codes.add(a.imap("a", "EXPUNGE")[0].split(b"]")[0])
            b = self.conn("boss")
            codes.add(b.imap("a", 'SETQUOTA "Other Users/cq" (STORAGE 5)')[0].split(b"]")[0])
            self.assertEqual(codes, {b"a NO [UNAVAILABLE"})
        finally:
            os.rmdir(path)


if __name__ == "__main__":
    main()
