"""test_hostile_restore.py: `coffer restore` against crafted dumps (review M5): names outside
user/NEWUSER (other users, the shared namespace), '..', absolute names, links, oversize
entries, bad ACL identifiers, bad Sieve scripts, damaged URLAUTH keys, and an ACL aimed at an
existing empty INBOX.
Every refused dump exits non-zero and leaves the mailbox list, the ACLs and the files as they
were."""
import io
import json
import os
import re
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main, run_coffer  # noqa: E402

ALL = "lrswipkxtea"


def manifest(user, boxes, **extra):
    m = {"format": "coffer-dump", "version": 1, "user": user, "created": 0,
         "mailboxes": boxes, "subscriptions": []}
    m.update(extra)
    return json.dumps(m).encode()


def box(name, n=0, acl=None, idx=0):
    return {"name": name, "dir": "mailboxes/%d" % idx, "uidvalidity": 1, "uidnext": n + 1,
            "highestmodseq": 1, "acl": acl or [],
            "messages": [{"uid": u, "internaldate": 1600000000, "modseq": 1, "flags": [],
                          "keywords": []} for u in range(1, n + 1)]}


def message(i):
    return (b"From: a@example.com\r\nSubject: restored %d\r\nMessage-ID: <r%d@example.com>\r\n"
            b"\r\nbody %d\r\n" % (i, i, i))


def make_tar(man, entries=()):
    """A dump: manifest.json first, then entries as (TarInfo fields dict, data bytes)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(man)
        t.addfile(ti, io.BytesIO(man))
        for fields, data in entries:
            ti = tarfile.TarInfo(fields.pop("name"))
            for k, v in fields.items():
                setattr(ti, k, v)
            if ti.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return out.getvalue()


class HostileRestore(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "max_literal": "64K"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.coffer
        for u in ("victim", "mallory", "newbie"):
            c.add_user(u, "pw")
        # the victim has mail; newbie has an INBOX that was never used (an administrator or
        # an auto-create made it): the one case where restore fills an existing mailbox
        lm = c.lmtp()
        lm.sendmail("a@example.com", ["victim"], b"Subject: hi\r\n\r\nhello\r\n")
        lm.quit()
        code, out, err = run_coffer(c, "mailbox", "create", "user/newbie")
        assert code == 0, err

    def tool(self, *args, **kw):
        return run_coffer(self.coffer, *args, **kw)

    def state(self):
        """Everything a refused restore must leave alone: every mailbox with its ACL, and
        the Sieve directory tree."""
        code, out, err = self.tool("mailbox", "list", "*", json_out=True)
        self.assertEqual(code, 0, err)
        rows = json.loads(out)
        acls = {}
        for r in rows:
            # the mailbox's header file carries its ACL (one tool run per mailbox is slow)
            uid = r["uniqueid"]
            with open(os.path.join(self.coffer.spool, uid[:2], uid, "header"), "rb") as f:
                acls[r["mailbox"]] = f.read()
        files = []
        # mailbox directories (spool/xx/UNIQUEID; an emptied xx/ bucket may stay)
        for root, dirs, fns in os.walk(self.coffer.spool):
            if root != self.coffer.spool:
                files += [os.path.join(root, d) for d in dirs]
        for root, dirs, fns in os.walk(self.coffer.configdir):
            if os.sep + "db" in root or root.endswith(os.sep + "db"):
                continue
            # cofferd's own files (cofferd.status and the .cofferd.status.tmp it is written
            # through) and what its scheduled jobs keep (the scrubber's place, the last
            # expire, each written through NAME.tmp.XXXXXX by file_write_atomic) come and go
            # on their own schedule
            files += [os.path.join(root, f) for f in fns
                      if not f.lstrip(".").startswith("cofferd.")
                      and not re.match(r"(scrub\.state|expire\.stamp)(\.tmp\.\w{6})?$", f)]
        return sorted(r["mailbox"] for r in rows), acls, sorted(files)

    def assert_refused(self, dump, user, pattern):
        before = self.state()
        code, out, err = self.tool("restore", "--user", user, input=dump)
        self.assertNotEqual(code, 0, "restore accepted a crafted dump: %s" % err)
        self.assertRegex(err, pattern)
        self.assertEqual(self.state(), before, "a refused restore changed something")
        return err

    def test_m5_other_users_names(self):
        """The review's transcript: a dump for mallory naming user/victim, granting mallory
        everything. Before: created or re-ACLed in the victim's namespace."""
        dump = make_tar(manifest("mallory", [
            box("user/mallory", 0, [["mallory", ALL]], 0),
            box("user/victim", 0, [["victim", ALL], ["mallory", ALL]], 1),
            box("user/victim/Stolen", 0, [["mallory", ALL]], 2)]))
        self.assert_refused(dump, "mallory", r"user/victim.*not one of user mallory's")
        # restored for another name, the same dump still cannot leave that name's namespace
        self.assert_refused(dump, "m2", r"not one of")
        # a prefix of another user's name is not that user's
        dump = make_tar(manifest("vic", [box("user/victim", 0, [], 0)]))
        self.assert_refused(dump, "vic", r"not one of")

    def test_m5_shared_namespace(self):
        for name in ("shared", "public/evil", "user", "user/mallory/../victim"):
            with self.subTest(name=name):
                dump = make_tar(manifest("mallory", [box("user/mallory", 0, [], 0),
                                                     box(name, 0, [["anyone", ALL]], 1)]))
                self.assert_refused(dump, "mallory", r"not one of")

    def test_m5_tar_entries(self):
        """'..', absolute names, symlinks, hard links and devices are refused; the mailbox
        the manifest made and the Sieve script written before the bad entry are removed."""
        man = manifest("t1", [box("user/t1", 1, [["t1", ALL]], 0)])
        good = ({"name": "mailboxes/0/1.eml"}, message(1))
        bad = [
            ({"name": "../../../../tmp/coffer-restore-escape"}, b"x"),
            ({"name": "mailboxes/0/../../x.eml"}, b"x"),
            ({"name": "/tmp/coffer-restore-abs"}, b"x"),
            ({"name": "sieve/evil.sieve", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"},
             b""),
            ({"name": "mailboxes/0/2.eml", "type": tarfile.LNKTYPE, "linkname": "/etc/shadow"},
             b""),
            ({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, b""),
        ]
        for entry in bad:
            with self.subTest(entry=entry[0]["name"]):
                dump = make_tar(man, [(dict(good[0]), good[1]),
                                      ({"name": "sieve/fine.sieve"}, b"keep;\n"),
                                      (dict(entry[0]), entry[1])])
                self.assert_refused(dump, "t1", r"refused")
        self.assertFalse(os.path.exists("/tmp/coffer-restore-escape"))
        self.assertFalse(os.path.exists("/tmp/coffer-restore-abs"))

    def test_m5_oversize_entries(self):
        man = manifest("t2", [box("user/t2", 1, [["t2", ALL]], 0)])
        big = b"Subject: big\r\n\r\n" + b"x" * (100 * 1024)
        dump = make_tar(man, [({"name": "mailboxes/0/1.eml"}, big)])
        self.assert_refused(dump, "t2", r"max_literal")
        script = b"# " + b"y" * (1100 * 1024) + b"\nkeep;\n"
        dump = make_tar(man, [({"name": "sieve/big.sieve"}, script)])
        self.assert_refused(dump, "t2", r"refused")
        # too many mailboxes for one manifest
        boxes = [box("user/t2/f%d" % i, 0, [], i) for i in range(100001)]
        self.assert_refused(make_tar(manifest("t2", boxes)), "t2", r"more than")

    def test_m5_acl_identifiers(self):
        for ident, rights in (("bad\tident", "lr"), ("", "lr"), ("joe", "lr\tjoe2\tlrswipkxtea"),
                              ("-", "l"), ("joe", "lrZ"), ("two words", "lr")):
            with self.subTest(ident=ident, rights=rights):
                dump = make_tar(manifest("t3", [box("user/t3", 0, [[ident, rights]], 0)]))
                self.assert_refused(dump, "t3", r"invalid identifier or rights")

    def test_urlauth_key_checked(self):
        """A mailbox's urlauth_key must be what coffer dump writes (64 lower-case hex digits):
        anything else refuses the whole dump, before anything is created."""
        for key in ("zz" * 32, "AB" * 32, "ab" * 31, "ab" * 33, "ab" * 31 + "a\n", 12,
                    ["ab" * 32], {"key": "ab" * 32}, ""):
            with self.subTest(key=key):
                b = box("user/t5", 1, None, 0)
                b["urlauth_key"] = key
                dump = make_tar(manifest("t5", [b]),
                                [({"name": "mailboxes/0/1.eml"}, message(1))])
                self.assert_refused(dump, "t5", r"user/t5: its urlauth_key is not 64 lower-case "
                                                r"hex digits \(nothing was restored\)")
        # the same dump with a well-formed key (or null) restores
        for key, name in (("0123456789abcdef" * 4, "t5"), (None, "t6")):
            b = box("user/%s" % name, 1, None, 0)
            b["urlauth_key"] = key
            dump = make_tar(manifest(name, [b]), [({"name": "mailboxes/0/1.eml"}, message(1))])
            code, out, err = self.tool("restore", input=dump)
            self.assertEqual(code, 0, err)

    def test_m5_acl_of_existing_empty_inbox(self):
        """newbie's INBOX exists (made by delivery) and is empty: a dump may fill it, but
        never replace its ACL (before: mallory got every right on it)."""
        code, a, err = self.tool("acl", "get", "user/newbie", json_out=True)
        acl_before = json.loads(a)
        dump = make_tar(manifest("newbie", [
            box("user/newbie", 0, [["newbie", ALL], ["mallory", ALL], ["anyone", "lr"]], 0)]))
        code, out, err = self.tool("restore", "--user", "newbie", input=dump)
        code, a, err = self.tool("acl", "get", "user/newbie", json_out=True)
        self.assertEqual(json.loads(a), acl_before, "restore rewrote the ACL of an INBOX")
        m = self.coffer.imap()
        m.login("mallory", "pw")
        typ, data = m.myrights('"Other Users/newbie"')
        m.logout()
        self.assertNotEqual(typ, "OK", "mallory has rights on newbie's INBOX: %r" % data)

    def test_m5_sieve_checked(self):
        """A restored Sieve script is compiled first: a broken one is not written (nor
        activated), a good one is."""
        man = manifest("t4", [box("user/t4", 0, [["t4", ALL]], 0)],
                       sieve={"active": "bad"})
        dump = make_tar(man, [({"name": "sieve/bad.sieve"}, b"if true { frobnicate; }\n"),
                              ({"name": "sieve/good.sieve"}, b"keep;\n")])
        code, out, err = self.tool("restore", "--user", "t4", input=dump)
        self.assertNotEqual(code, 0, err)
        self.assertRegex(err, r"bad\.sieve: not a valid Sieve script")
        sd = [os.path.join(r, d) for r, ds, fs in os.walk(self.coffer.configdir) for d in ds
              if os.path.exists(os.path.join(r, d, "good.sieve"))]
        self.assertEqual(len(sd), 1, "the good script was not restored")
        self.assertFalse(os.path.exists(os.path.join(sd[0], "bad.sieve")))
        self.assertFalse(os.path.lexists(os.path.join(sd[0], "active")))

    def test_m5_manifest_unterminated(self):
        """A manifest that ends inside a number (jvalue's strtoll ran past the buffer)."""
        for text in (b'{"format":"coffer-dump","version":1', b"12345678901234567890",
                     b'{"format":"coffer-dump","version":1,"user":"x","mailboxes":[{"uid":1'):
            with self.subTest(text=text):
                code, out, err = self.tool("restore", "--user", "t5", input=make_tar(text))
                self.assertEqual(code, 2, err)


if __name__ == "__main__":
    main()
