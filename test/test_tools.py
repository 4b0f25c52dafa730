"""test_tools.py: the `coffer` administration subcommands against a live cofferd: reconstruct
after damaged, truncated and deleted indexes, orphan and missing message files and a lost
mailbox list (checked through IMAP: every surviving message, flag and UID is back, and
`coffer check` is clean); quota fix after tampering; dump, wipe, restore and compare the account
byte for byte; mailbox, acl, expire and db subcommands; JSON output and exit codes."""
import io
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tarfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (CofferTestCase, SharedCofferTestCase, main, run_coffer,  # noqa: E402
                            wait_for)

# expunge_mode immediate: reconstruct from message files alone (a deleted index) cannot tell
# the files delayed expunge keeps from live ones; expunge_retention 0: coffer expire removes
# deleted mailboxes at once (delayed expunge and delete have their own suite,
# test_unexpunge.py)
SETTINGS = {"global_settings": {"allow_plaintext": "yes", "expunge_mode": "immediate",
                                "expunge_retention": "0"}}


def msg(user, box, i):
    return (b"From: sender%d@example.com\r\nTo: %s@example.com\r\nSubject: %s %s %d\r\n"
            b"Message-ID: <%s.%s.%d@example.com>\r\n\r\nbody of message %d\r\n" % (
                i, user.encode(), user.encode(), box.encode(), i, user.encode(),
                box.encode(), i, i))


def coffer_json(t, c, *args, rc=0):
    code, out, err = run_coffer(c, *args, json_out=True)
    t.assertEqual(code, rc, "coffer %s: %s %s" % (" ".join(args), out, err))
    return json.loads(out.decode())


def populate(c, user):
    """An account: INBOX with 6 messages (flags, keywords, internal dates, uid 3 expunged) and
    a folder Work with 3. Returns nothing; see snapshot()."""
    c.add_user(user, "pw")
    m = c.imap()
    m.login(user, "pw")
    flags = ["(\\Seen)", "(\\Seen \\Flagged)", "()", "(\\Answered $Label1)", "(\\Draft Work)",
             "(\\Seen $Label1 Work)"]
    for i, f in enumerate(flags):
        date = imaplib_date(1600000000 + i * 3600)
        typ, _ = m.append("INBOX", f, date, msg(user, "INBOX", i))
        assert typ == "OK"
    assert m.create("Work")[0] == "OK"
    for i in range(3):
        assert m.append("Work", "(\\Flagged)", imaplib_date(1500000000 + i), msg(user, "Work", i))[0] == "OK"
    m.subscribe("Work")
    m.select("INBOX")
    m.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.logout()


def imaplib_date(t):
    import imaplib
    return imaplib.Time2Internaldate(t)


FETCH_RE = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]+)\"")


def snapshot(c, user, boxes=("INBOX", "Work")):
    """{box: (uidvalidity, {uid: (flags, internaldate, bytes)})} through IMAP."""
    m = c.imap()
    m.login(user, "pw")
    out = {}
    for box in boxes:
        typ, _ = m.select(box, readonly=True)
        assert typ == "OK", (box, typ)
        uv = int(m.response("UIDVALIDITY")[1][0])
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        msgs = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = flags = date = None
            for g in FETCH_RE.finditer(item[0]):
                if g.group(1):
                    uid = int(g.group(1))
                elif g.group(2) is not None:
                    flags = frozenset(f for f in g.group(2).decode().split() if f != "\\Recent")
                elif g.group(3):
                    date = g.group(3).decode()
            msgs[uid] = (flags, date, item[1])
        out[box] = (uv, msgs)
    m.logout()
    return out


class Tools(SharedCofferTestCase):
    coffer_kwargs = SETTINGS

    def run_tool(self, *args, **kw):
        return run_coffer(self.coffer, *args, **kw)

    def mailbox_dir(self, name):
        rows = coffer_json(self, self.coffer, "mailbox", "list", name)
        self.assertEqual(len(rows), 1, rows)
        uid = rows[0]["uniqueid"]
        return os.path.join(self.coffer.spool, uid[:2], uid)

    def chown(self, path):
        if self.coffer.user:
            pw = pwd.getpwnam(self.coffer.user)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def assert_clean(self):
        code, out, err = self.run_tool("check")
        self.assertEqual(code, 0, "coffer check: %s %s" % (out.decode(), err))
        self.assertIn("clean", err)

    def problems(self):
        rows = coffer_json(self, self.coffer, "check", rc=1)
        return {(r["mailbox"], r["problem"]) for r in rows}

    def reconstruct(self, *args):
        return coffer_json(self, self.coffer, "reconstruct", *args)

    # ---- reconstruct

    def test_truncated_index(self):
        populate(self.coffer, "t1")
        before = snapshot(self.coffer, "t1")
        idx = os.path.join(self.mailbox_dir("user/t1"), "index")
        with open(idx, "r+b") as f:
            f.truncate(os.path.getsize(idx) - 64)   # cuts the last record in half
        self.assertIn(("user/t1", "index_damaged"), self.problems())
        changes = self.reconstruct("user/t1")
        self.assertIn(("user/t1", "index_damaged"), {(r["mailbox"], r["change"]) for r in changes})
        self.assert_clean()
        after = snapshot(self.coffer, "t1")
        self.assertEqual(after["Work"], before["Work"])
        uv, b = before["INBOX"]
        uv2, a = after["INBOX"]
        self.assertEqual(uv2, uv)
        self.assertEqual(sorted(a), sorted(b))
        last = max(b)
        for uid in b:
            self.assertEqual(a[uid][2], b[uid][2])          # the bytes
            if uid != last:
                self.assertEqual(a[uid], b[uid])           # flags and dates too
        self.assertEqual(a[last][0], frozenset())          # its record was cut: adopted bare

    def test_flipped_header_bytes(self):
        populate(self.coffer, "t2")
        before = snapshot(self.coffer, "t2")
        idx = os.path.join(self.mailbox_dir("user/t2"), "index")
        with open(idx, "r+b") as f:
            for off in (20, 512 + 20):           # both header slots
                f.seek(off)
                b = f.read(1)
                f.seek(off)
                f.write(bytes([b[0] ^ 0x5a]))
        code, out, err = self.run_tool("check")
        self.assertEqual(code, 1)
        self.assertIn("index_damaged", out.decode())
        self.reconstruct("user/t2")
        self.assert_clean()
        self.assertEqual(snapshot(self.coffer, "t2"), before)   # everything survived

    def test_deleted_index_recursive(self):
        populate(self.coffer, "t3")
        before = snapshot(self.coffer, "t3")
        os.unlink(os.path.join(self.mailbox_dir("user/t3"), "index"))
        os.unlink(os.path.join(self.mailbox_dir("user/t3/Work"), "index"))
        probs = self.problems()
        self.assertIn(("user/t3", "index_missing"), probs)
        self.assertIn(("user/t3/Work", "index_missing"), probs)
        changes = self.reconstruct("-r", "user/t3")
        adopted = [r for r in changes if r["change"] == "message_adopted"]
        self.assertEqual(len(adopted), 8)
        self.assert_clean()
        after = snapshot(self.coffer, "t3")
        for box in ("INBOX", "Work"):
            self.assertEqual(after[box][0], before[box][0])            # uidvalidity from header
            self.assertEqual(sorted(after[box][1]), sorted(before[box][1]))
            for uid, (_, _, body) in before[box][1].items():
                self.assertEqual(after[box][1][uid][2], body)
        # new mail continues above the old uids
        m = self.coffer.imap()
        m.login("t3", "pw")
        typ, data = m.append("INBOX", None, None, b"Subject: new\r\n\r\nnew\r\n")
        self.assertEqual(typ, "OK")
        self.assertIn(b"[APPENDUID %d 7]" % before["INBOX"][0], data[0])
        m.logout()

    def test_orphan_and_missing_files(self):
        populate(self.coffer, "t4")
        before = snapshot(self.coffer, "t4")
        d = self.mailbox_dir("user/t4")
        orphan = os.path.join(d, "50.")
        body = b"From: orphan@example.com\r\nSubject: orphan\r\n\r\nfound on disk\r\n"
        with open(orphan, "wb") as f:
            f.write(body)
        self.chown(orphan)
        os.unlink(os.path.join(d, "2."))
        probs = self.problems()
        # 50 is above the committed uidnext of an intact index: the file of an append killed
        # before its commit, never acknowledged; not adopted (it would be a duplicate of the
        # redelivery) nor a problem, and reconstruct removes it (M7)
        self.assertNotIn(("user/t4", "message_adopted"), probs)
        self.assertIn(("user/t4", "record_dropped"), probs)
        # a live session sees the repair
        live = self.coffer.imap()
        live.login("t4", "pw")
        live.select("INBOX")
        changes = self.reconstruct("--user", "t4")
        self.assertEqual({(r["change"], r["detail"].split(":")[0]) for r in changes},
                         {("record_dropped", "uid 2")})
        self.assertFalse(os.path.exists(orphan))
        typ, data = live.noop()
        self.assertEqual(typ, "OK")
        typ, data = live.uid("FETCH", "1:*", "(UID)")
        self.assertEqual(sorted(int(re.search(rb"UID (\d+)", x).group(1)) for x in data),
                         [1, 4, 5, 6])
        live.logout()
        self.assert_clean()
        after = snapshot(self.coffer, "t4")
        b = dict(before["INBOX"][1])
        del b[2]
        a = dict(after["INBOX"][1])
        self.assertEqual(a, b)
        self.assertEqual(after["Work"], before["Work"])

    # ---- quota

    def test_quota_fix(self):
        populate(self.coffer, "q1")
        rows = coffer_json(self, self.coffer, "quota", "set", "user/q1", "--storage", "100000")
        self.assertEqual(rows[0]["storage_limit_kib"], 100000)
        want_msgs = rows[0]["messages"]
        want_bytes = rows[0]["used_bytes"]
        self.assertEqual(want_msgs, 8)     # INBOX 5 + Work 3, counted when the root was made
        # tamper with the usage through a text dump and load of quota.db
        code, dump, _ = self.run_tool("db", "dump", "quota")
        self.assertEqual(code, 0)
        lines = dump.decode().splitlines()
        for i, l in enumerate(lines):
            if l.startswith("user/q1 "):
                lines[i] = "user/q1 1%20100000%20-1%201234%2099"
        code, _, err = self.run_tool("db", "load", "quota", input=("\n".join(lines) + "\n").encode())
        self.assertEqual(code, 0, err)
        self.assertIn(("user/q1", "quota_usage"), self.problems())
        fixed = coffer_json(self, self.coffer, "quota", "fix")
        self.assertIn({"root": "user/q1", "resource": "bytes", "was": 1234, "now": want_bytes}, fixed)
        self.assertIn({"root": "user/q1", "resource": "messages", "was": 99, "now": 8}, fixed)
        self.assert_clean()
        self.assertEqual(coffer_json(self, self.coffer, "quota", "fix"), [])
        got = coffer_json(self, self.coffer, "quota", "get", "user/q1")[0]
        self.assertEqual((got["used_bytes"], got["messages"]), (want_bytes, 8))
        self.assertEqual(self.run_tool("quota", "delete", "user/q1")[0], 0)

    # ---- dump and restore

    def sieve_dir(self, user):
        return os.path.join(self.coffer.configdir, "sieve", user)

    def tar_members(self, data):
        out = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
            names = t.getnames()
            for ti in t.getmembers():
                out[ti.name] = t.extractfile(ti).read()
        return names, out

    def test_dump_wipe_restore(self):
        c = self.coffer
        populate(c, "d1")
        self.assertEqual(self.run_tool("acl", "set", "user/d1/Work", "joe", "lrs")[0], 0)
        self.assertEqual(self.run_tool("quota", "set", "user/d1", "--storage", "5000",
                                     "--messages", "100")[0], 0)
        sd = self.sieve_dir("d1")
        os.makedirs(sd)
        with open(os.path.join(sd, "main.sieve"), "w") as f:
            f.write('require "fileinto";\nif header :contains "subject" "x" { fileinto "Work"; }\n')
        os.symlink("main.sieve", os.path.join(sd, "active"))
        c._chown_tree()
        before = snapshot(c, "d1")
        acl_before = coffer_json(self, c, "acl", "get", "user/d1/Work")
        code, dump1, err = self.run_tool("dump", "d1")
        self.assertEqual(code, 0, err)
        names, files = self.tar_members(dump1)
        self.assertEqual(names[0], "manifest.json")
        self.assertIn("sieve/main.sieve", names)
        man = json.loads(files["manifest.json"])
        self.assertEqual(man["format"], "coffer-dump")
        self.assertEqual([b["name"] for b in man["mailboxes"]], ["user/d1", "user/d1/Work"])
        self.assertEqual(man["sieve"]["active"], "main")
        self.assertEqual(len(man["mailboxes"][0]["messages"]), 5)
        # `tar` itself reads it
        r = subprocess.run(["tar", "tf", "-"], input=dump1, stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"mailboxes/1/1.eml", r.stdout)
        # wipe
        self.assertEqual(self.run_tool("mailbox", "delete", "-r", "user/d1")[0], 0)
        self.assertEqual(self.run_tool("quota", "delete", "user/d1")[0], 0)
        for fn in os.listdir(sd):
            os.unlink(os.path.join(sd, fn))
        os.rmdir(sd)
        self.assertEqual(self.run_tool("mailbox", "list", "user/d1*")[1].count(b"user/d1"), 0)
        # restore
        code, out, err = self.run_tool("restore", input=dump1)
        self.assertEqual(code, 0, err)
        self.assertEqual(snapshot(c, "d1"), before)
        self.assertEqual(coffer_json(self, c, "acl", "get", "user/d1/Work"), acl_before)
        q = coffer_json(self, c, "quota", "get", "user/d1")[0]
        self.assertEqual((q["storage_limit_kib"], q["message_limit"], q["messages"]), (5000, 100, 8))
        self.assertEqual(os.readlink(os.path.join(sd, "active")), "main.sieve")
        m = c.imap()
        m.login("d1", "pw")
        self.assertIn(b'"Work"', b"".join(m.lsub()[1]))
        m.logout()
        self.assert_clean()
        # the account dumps again to the same bytes (the manifest differs only in its date)
        code, dump2, err = self.run_tool("dump", "d1")
        self.assertEqual(code, 0, err)
        names2, files2 = self.tar_members(dump2)
        self.assertEqual(names2, names)
        for n in names:
            if n != "manifest.json":
                self.assertEqual(files2[n], files[n], n)
        man2 = json.loads(files2["manifest.json"])
        man.pop("created")
        man2.pop("created")
        self.assertEqual(man2, man)
        # into an existing account: refused; under another name: fine
        self.assertEqual(self.run_tool("restore", input=dump1)[0], 4)
        code, out, err = run_coffer(c, "restore", "--user", "d2", input=dump1, json_out=True)
        self.assertEqual(code, 0, err)
        rows = json.loads(out)
        self.assertEqual([(r["mailbox"], r["messages"]) for r in rows], [("user/d2", 5), ("user/d2/Work", 3)])
        acl = coffer_json(self, c, "acl", "get", "user/d2")
        self.assertIn({"mailbox": "user/d2", "identifier": "d2", "rights": "lrswipkxtea"}, acl)
        self.assert_clean()

    def test_restore_rejects_garbage(self):
        self.assertEqual(self.run_tool("restore", input=b"not a tar stream" * 100)[0], 2)
        self.assertEqual(self.run_tool("dump", "nosuchuser")[0], 3)

    # ---- mailbox, acl, expire, db; JSON and exit codes

    def test_mailbox_commands(self):
        c = self.coffer
        rows = coffer_json(self, c, "mailbox", "create", "user/m1")
        self.assertEqual(rows, {"mailbox": "user/m1", "result": "created"})
        self.assertEqual(self.run_tool("mailbox", "create", "user/m1")[0], 4)
        self.assertEqual(self.run_tool("mailbox", "create", "user/m1/a/b", "--special-use", "\\Archive")[0], 0)
        rows = coffer_json(self, c, "mailbox", "list", "user/m1*")
        self.assertEqual([r["mailbox"] for r in rows], ["user/m1", "user/m1/a", "user/m1/a/b"])
        self.assertEqual(rows[2]["special-use"], "\\Archive")
        self.assertEqual(self.run_tool("mailbox", "rename", "user/m1/a", "user/m1/c")[0], 0)
        self.assertEqual([r["mailbox"] for r in coffer_json(self, c, "mailbox", "list", "user/m1/*")],
                         ["user/m1/c", "user/m1/c/b"])
        self.assertEqual(self.run_tool("mailbox", "delete", "user/nosuch")[0], 3)
        self.assertEqual(self.run_tool("mailbox", "create", "bad//name")[0], 2)
        self.assertEqual(self.run_tool("mailbox", "frobnicate")[0], 2)
        self.assertEqual(self.run_tool("mailbox", "create", "x", "--partition", "nosuch")[0], 2)
        self.assertEqual(self.run_tool("mailbox", "delete", "-r", "user/m1")[0], 0)
        self.assertEqual(coffer_json(self, c, "mailbox", "list", "user/m1*"), [])

    def test_bulk_user_and_mailbox_create(self):
        """`user add --stdin` and `mailbox create --stdin` (provisioning many users,
        docs/perf/many-users.md): every good line done, every bad one reported, real
        mailboxes that IMAP can select at once."""
        code, out, err = self.run_tool("user", "add", "--stdin",
                                       input=b"bulk1 pw1\nbulk2 pw2\nbulk1 again\nnopassword\n")
        self.assertEqual(code, 4, err)   # the first failure: bulk1 exists
        self.assertIn(b"added 2 users, 2 failed", out)
        self.assertIn("cannot add bulk1", err)
        names = b"user/bulk1\nuser/bulk1/Sent\nuser/bulk1/Sent/2024\nuser/bulk2\n" \
                b"user/bulk1/Sent\nuser/nobody/x\n"
        code, out, err = self.run_tool("mailbox", "create", "--stdin", input=names)
        self.assertEqual(code, 4, err)
        self.assertIn(b"created 4 mailboxes, 2 failed", out)
        self.assertIn("cannot create user/nobody/x", err)
        self.assertEqual([r["mailbox"] for r in coffer_json(self, self.coffer, "mailbox", "list",
                                                            "user/bulk*")],
                         ["user/bulk1", "user/bulk1/Sent", "user/bulk1/Sent/2024", "user/bulk2"])
        m = self.coffer.imap()
        m.login("bulk1", "pw1")
        self.assertEqual(m.select("Sent/2024")[0], "OK")
        m.logout()

    def test_bulk_mailbox_create_any_order(self):
        """`mailbox create --stdin` sorts the names in the list's key order before creating
        them: children given before their parents, and users in number order (user1, user10,
        user2: not key order), are all created, real and selectable."""
        self.assertEqual(self.run_tool("user", "add", "--stdin",
                                       input=b"ord1 pw\nord2 pw\nord10 pw\n")[0], 0)
        names = b"user/ord1/Sent/2024\nuser/ord1/Sent\nuser/ord10/a\nuser/ord2\n" \
                b"user/ord10\nuser/ord1\nuser/ord2/b\nuser/ord1/Sent\n"
        code, out, err = self.run_tool("mailbox", "create", "--stdin", input=names)
        self.assertEqual(code, 4, err)   # the duplicate user/ord1/Sent, nothing else
        self.assertIn(b"created 7 mailboxes, 1 failed", out)
        self.assertIn("cannot create user/ord1/Sent: it already exists", err)
        self.assertEqual([r["mailbox"] for r in coffer_json(self, self.coffer, "mailbox", "list",
                                                            "user/ord*")],
                         ["user/ord1", "user/ord1/Sent", "user/ord1/Sent/2024", "user/ord10",
                          "user/ord10/a", "user/ord2", "user/ord2/b"])
        m = self.coffer.imap()
        m.login("ord10", "pw")
        self.assertEqual(m.select("a")[0], "OK")
        m.logout()

    def test_acl(self):
        c = self.coffer
        self.assertEqual(self.run_tool("mailbox", "create", "user/a1")[0], 0)
        rows = coffer_json(self, c, "acl", "set", "user/a1", "joe", "lr")
        self.assertIn({"mailbox": "user/a1", "identifier": "joe", "rights": "lr"}, rows)
        rows = coffer_json(self, c, "acl", "set", "user/a1", "joe", "+wc")
        self.assertIn({"mailbox": "user/a1", "identifier": "joe", "rights": "lrwkx"}, rows)
        rows = coffer_json(self, c, "acl", "set", "user/a1", "joe", "-r")
        self.assertIn({"mailbox": "user/a1", "identifier": "joe", "rights": "lwkx"}, rows)
        self.assertEqual(self.run_tool("acl", "set", "user/a1", "joe", "lrQ")[0], 2)
        self.assertEqual(self.run_tool("acl", "get", "user/nosuch")[0], 3)
        # the header file carries the ACL, so the check (which compares them) stays clean
        with open(os.path.join(self.mailbox_dir("user/a1"), "header")) as f:
            self.assertIn("joe\tlwkx\t", f.read())
        self.assert_clean()
        rows = coffer_json(self, c, "acl", "delete", "user/a1", "joe")
        self.assertEqual([r["identifier"] for r in rows], ["a1"])
        self.assertEqual(self.run_tool("acl", "delete", "user/a1", "joe")[0], 3)

    def test_expire(self):
        c = self.coffer
        populate(c, "e1")
        m = c.imap()
        m.login("e1", "pw")
        m.select("Work")
        m.uid("STORE", "1:2", "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.logout()
        # an old duplicate record and old and new vacation answers, loaded as text
        old, new = int(time.time()) - 400 * 86400, int(time.time())
        dupdump = "coffer-kv-dump 1 dup.db\n%%3Cold@x%%3E%%00user/e1 1%%20%d\ncoffer-kv-end 1\n" % old
        self.assertEqual(self.run_tool("db", "load", "dup", input=dupdump.encode())[0], 0)
        vac = ("coffer-kv-dump 1 vacation.db\ne1%%00a@x %d\ne1%%00b@x %d\ncoffer-kv-end 2\n" % (old, new))
        self.assertEqual(self.run_tool("db", "load", "vacation", input=vac.encode())[0], 0)
        rows = {r["what"]: r["removed"] for r in coffer_json(self, c, "expire", "--dry-run")}
        self.assertGreaterEqual(rows["expunged"], 3)    # INBOX uid 3 and Work 1:2
        self.assertGreaterEqual(rows["duplicates"], 1)
        self.assertEqual(rows["vacation"], 1)
        rows2 = {r["what"]: r["removed"] for r in coffer_json(self, c, "expire")}
        self.assertEqual(rows2, rows)
        rows3 = {r["what"]: r["removed"] for r in coffer_json(self, c, "expire")}
        self.assertEqual(rows3, {"duplicates": 0, "vacation": 0, "expunged": 0, "deleted": 0})
        code, out, _ = self.run_tool("db", "dump", "vacation")
        self.assertIn(b"b@x", out)
        self.assertNotIn(b"a@x", out)
        self.assertEqual(sorted(snapshot(c, "e1", ("Work",))["Work"][1]), [3])
        self.assert_clean()

    def test_db_list_and_usage(self):
        rows = coffer_json(self, self.coffer, "db", "list")
        names = [r["database"] for r in rows]
        for n in ("mailboxes.db", "quota.db", "subs.db", "seen.db", "dup.db"):
            self.assertIn(n, names)
        self.assertEqual(self.run_tool("db", "dump", "../etc")[0], 2)
        self.assertEqual(self.run_tool("db", "dump", "nosuch")[0], 3)
        self.assertEqual(self.run_tool("db", "load", "quota", input=b"garbage\n")[0], 2)
        self.assertEqual(self.run_tool("reconstruct")[0], 2)
        self.assertEqual(self.run_tool("reconstruct", "user/nosuch")[0], 3)
        self.assertEqual(self.run_tool("quota", "get", "user/nosuch")[0], 3)
        self.assertIsInstance(coffer_json(self, self.coffer, "check"), list)
        self.assertIsInstance(coffer_json(self, self.coffer, "quota", "report"), list)


class Status(CofferTestCase):
    """`coffer status`: the running master's workers per service, as a table and as JSON; exit 1
    once cofferd is gone."""

    def test_status(self):
        c = self.new_coffer(**SETTINGS)
        conn = c.connect("imap")
        self.addCleanup(conn.close)
        conn.expect(rb"^\* OK")
        rows = wait_for(lambda: [r for r in coffer_json(self, c, "status")
                                 if r["service"] == "imap" and r["busy"] >= 1
                                 and r["workers"] >= 2], 10,
                        what="a busy imap worker and a ready one in coffer status")
        self.assertGreaterEqual(rows[0]["workers"], 2)          # the busy one and a ready one
        services = {r["service"] for r in coffer_json(self, c, "status")}
        self.assertEqual(services, set(c.services))
        code, out, err = run_coffer(c, "status")
        self.assertEqual(code, 0, err)
        self.assertIn(b"cofferd is running, pid %d" % c.pid, out)
        self.assertRegex(out, rb"\nservice +workers +ready +busy +served\n")
        conn.close()
        c.stop()
        code, out, err = run_coffer(c, "status")
        self.assertEqual(code, 1)
        self.assertIn(b"not running", out)
        self.assertEqual(coffer_json(self, c, "status", rc=1), {"running": False})


class LostMailboxList(CofferTestCase):
    """The databases are lost while the server is down (the whole configdir/db: removing only
    mailboxes.db is undone by Berkeley DB recovery from its log): reconstruct --mailboxlist brings
    every mailbox back from the partitions' header files."""

    def test_mailboxlist_rebuilt(self):
        c = self.new_coffer(**SETTINGS)
        populate(c, "l1")
        before = snapshot(c, "l1")
        c.stop()
        shutil.rmtree(os.path.join(c.configdir, "db"))
        c.start()
        code, out, err = run_coffer(c, "check")
        self.assertEqual(code, 1, err)
        rows = coffer_json(self, c, "reconstruct", "--mailboxlist")
        self.assertEqual(sorted((r["mailbox"], r["change"]) for r in rows),
                         [("user/l1", "mailbox_added"), ("user/l1/Work", "mailbox_added")])
        code, out, err = run_coffer(c, "check")
        self.assertEqual(code, 0, out.decode() + err)
        self.assertEqual(snapshot(c, "l1"), before)
        acl = coffer_json(self, c, "acl", "get", "user/l1")
        self.assertEqual(acl, [{"mailbox": "user/l1", "identifier": "l1", "rights": "lrswipkxtea"}])


if __name__ == "__main__":
    main()
