"""test_imap_urlauth.py: URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524): GENURLAUTH with the
INTERNAL mechanism, URLFETCH by the access identifiers anonymous, authuser, user+ and submit+
(only a user named in urlauth_submit_servers), NIL for a forged, altered, expired or revoked
URL (RESETKEY with and without a mailbox), the owner's rights checked at fetch time, partial
ranges, the extended URLFETCH (BODY, BINARY with content-transfer decoding, BODYPARTSTRUCTURE),
a URLAUTH URL in CATENATE, the keys leaving urlauth.db with their mailbox, and carried by
coffer dump and restore (URLs made before work after, for the restored messages only)."""
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import tarfile
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import SharedCofferTestCase, main, run_coffer  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: urlauth test\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
       b"--XX\r\nContent-Type: text/plain\r\n\r\nPart one.\r\n"
       b"--XX\r\nContent-Type: application/octet-stream\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8gYmluYXJ5AA==\r\n--XX--\r\n")
APPENDUID_RX = rb"^\w+ OK \[APPENDUID (\d+) ([\d:,]+)\]"
LIT_RX = re.compile(rb"~?\{(\d+)\}\r\n$")


def lit(data):
    return b"{%d+}\r\n" % len(data) + data


class Urlauth(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "urlauth_submit_servers": "submitter",
                                         "delete_mode": "immediate", "admins": "boss"}}
    made = set()

    def login(self, user):
        if user not in type(self).made:
            self.coffer.add_user(user, user + "pw")
            type(self).made.add(user)
        c = self.coffer.connect("imap")
        self.addCleanup(c.close)
        c.expect(rb"^\* OK")
        self.assertRegex(c.imap("L", "LOGIN %s %spw" % (user, user))[0], rb"^L OK")
        return c

    def put(self, c, box="INBOX", msg=MSG):
        c.send(b'P APPEND "%s" ' % box.encode() + lit(msg) + b"\r\n")
        tagged, _ = c.read_tagged("P")
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        return int(m.group(2))

    def responses(self, c, tag):
        """(tagged line, [untagged responses with their literals inline])."""
        out = []
        while True:
            line = c.readline()
            while True:
                m = LIT_RX.search(line)
                if not m:
                    break
                line += c.read_exact(int(m.group(1)))
                line += c.readline()
            if line.startswith(tag.encode() + b" "):
                return line, out
            out.append(line)

    def genurlauth(self, c, rump, mech="INTERNAL"):
        c.cmd('G GENURLAUTH "%s" %s' % (rump, mech))
        tagged, untagged = self.responses(c, "G")
        self.assertRegex(tagged, rb"^G OK", untagged)
        m = re.match(rb'^\* GENURLAUTH "([^"]+)"\r\n$', untagged[0])
        self.assertTrue(m, untagged)
        full = m.group(1).decode()
        self.assertTrue(full.startswith(rump + ":INTERNAL:"), full)
        self.assertRegex(full, r":INTERNAL:[0-9a-f]{40}$")
        return full

    def urlfetch(self, c, url):
        """The data URLFETCH returns for url, or None for NIL."""
        c.cmd('U URLFETCH "%s"' % url)
        tagged, untagged = self.responses(c, "U")
        self.assertRegex(tagged, rb"^U OK")
        self.assertEqual(len(untagged), 1, untagged)
        prefix = b'* URLFETCH "%s" ' % url.encode()
        self.assertTrue(untagged[0].startswith(prefix), untagged)
        rest = untagged[0][len(prefix):]
        if rest == b"NIL\r\n":
            return None
        m = re.match(rb"\{(\d+)\}\r\n", rest)
        self.assertTrue(m, rest)
        data = rest[m.end():m.end() + int(m.group(1))]
        self.assertEqual(rest[m.end() + len(data):], b"\r\n")
        return data

    def test_capability(self):
        c = self.login("capa")
        _, untagged = c.imap("C", "CAPABILITY")
        caps = untagged[0].split()
        self.assertIn(b"URLAUTH", caps)
        self.assertIn(b"URLAUTH=BINARY", caps)

    def test_access_identifiers(self):
        fred = self.login("fred")
        uid = self.put(fred)
        base = "imap://fred@localhost/INBOX/;UID=%d" % uid
        bob, carol, sub = self.login("bob"), self.login("carol"), self.login("submitter")
        url = self.genurlauth(fred, base + ";URLAUTH=authuser")
        for c in (fred, bob, carol):
            self.assertEqual(self.urlfetch(c, url), MSG)
        url = self.genurlauth(fred, base + ";URLAUTH=anonymous")
        self.assertEqual(self.urlfetch(carol, url), MSG)
        url = self.genurlauth(fred, base + "/;SECTION=1;URLAUTH=user+bob")
        self.assertEqual(self.urlfetch(bob, url), b"Part one.")
        self.assertIsNone(self.urlfetch(carol, url))
        self.assertIsNone(self.urlfetch(fred, url))
        # submit+: only a submission server (urlauth_submit_servers), never another user
        url = self.genurlauth(fred, base + "/;SECTION=1;URLAUTH=submit+fred")
        self.assertIsNone(self.urlfetch(bob, url))
        self.assertIsNone(self.urlfetch(fred, url))
        self.assertEqual(self.urlfetch(sub, url), b"Part one.")
        # partial range (RFC 5092 section 5)
        url = self.genurlauth(fred, base + "/;PARTIAL=0.4;URLAUTH=authuser")
        self.assertEqual(self.urlfetch(bob, url), b"From")

    def test_forged_and_altered(self):
        fred = self.login("forger")
        uid = self.put(fred)
        self.put(fred)
        bob = self.login("bob2")
        base = "imap://forger@localhost/INBOX/;UID=%d;URLAUTH=authuser" % uid
        url = self.genurlauth(fred, base)
        token = url.rsplit(":", 1)[1]
        forged = url[:-1] + ("0" if url[-1] != "0" else "1")
        self.assertIsNone(self.urlfetch(bob, forged))
        # the token is bound to the rump: another uid with the same token fails
        other = "imap://forger@localhost/INBOX/;UID=%d;URLAUTH=authuser:INTERNAL:%s" % (
            uid + 1, token)
        self.assertIsNone(self.urlfetch(bob, other))
        # upper-case hex is the same token (HEXDIG)
        self.assertEqual(self.urlfetch(bob, url[:-40] + token.upper()), MSG)
        # other mechanisms, rumps without a token and garbage are NIL, not errors
        for u in (base, base + ":OTHER:" + token, "garbage", "/INBOX/;UID=1"):
            self.assertIsNone(self.urlfetch(bob, u))

    def test_expire(self):
        fred = self.login("expirer")
        uid = self.put(fred)
        bob = self.login("bob3")
        base = "imap://expirer@localhost/INBOX/;UID=%d" % uid
        past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        fred.cmd('G GENURLAUTH "%s;EXPIRE=%s;URLAUTH=authuser" INTERNAL' % (base, past))
        self.assertRegex(self.responses(fred, "G")[0], rb"^G NO \[BADURL ")
        # whole seconds: the time written is when it expires. Far enough ahead that the
        # GENURLAUTH and the first URLFETCH are done before it on a loaded machine; then wait
        # until it has passed by the clock, not for a fixed time
        expiry = int(time.time()) + 8
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry))
        url = self.genurlauth(fred, "%s;EXPIRE=%s;URLAUTH=authuser" % (base, soon))
        self.assertEqual(self.urlfetch(bob, url), MSG,
                         "%.1fs before the expiry" % (expiry - time.time()))
        time.sleep(max(0.0, expiry + 1.5 - time.time()))
        self.assertIsNone(self.urlfetch(bob, url))
        later = "2199-01-01T00:00:00+01:00"
        url = self.genurlauth(fred, "%s;EXPIRE=%s;URLAUTH=authuser" % (base, later))
        self.assertEqual(self.urlfetch(bob, url), MSG)

    def test_resetkey(self):
        fred = self.login("resetter")
        uid = self.put(fred)
        self.assertRegex(fred.imap("C", "CREATE Other")[0], rb"^C OK")
        ouid = self.put(fred, "Other")
        bob = self.login("bob4")
        url = self.genurlauth(fred, "imap://resetter@localhost/INBOX/;UID=%d;URLAUTH=authuser" % uid)
        ourl = self.genurlauth(fred, "imap://resetter@localhost/Other/;UID=%d;URLAUTH=authuser" % ouid)
        self.assertEqual(self.urlfetch(bob, url), MSG)
        # the same rump gives the same URL while the key stands
        self.assertEqual(self.genurlauth(fred, url[:url.index(":INTERNAL")]), url)
        self.assertRegex(fred.imap("R", "RESETKEY INBOX INTERNAL")[0], rb"^R OK")
        self.assertIsNone(self.urlfetch(bob, url))
        self.assertEqual(self.urlfetch(bob, ourl), MSG)      # another mailbox's key stands
        url2 = self.genurlauth(fred, url[:url.index(":INTERNAL")])
        self.assertNotEqual(url2, url)
        self.assertEqual(self.urlfetch(bob, url2), MSG)
        self.assertRegex(fred.imap("R", "RESETKEY")[0], rb"^R OK")
        self.assertIsNone(self.urlfetch(bob, url2))
        self.assertIsNone(self.urlfetch(bob, ourl))
        self.assertRegex(fred.imap("R", "RESETKEY INBOX FOO")[0], rb"^R BAD ")
        self.assertRegex(fred.imap("R", "RESETKEY Nonexistent")[0], rb"^R NO ")

    def test_genurlauth_errors(self):
        fred = self.login("generr")
        uid = self.put(fred)
        self.login("bob5")
        base = "imap://generr@localhost/INBOX/;UID=%d" % uid
        for rump in ("imap://bob5@localhost/INBOX/;UID=1;URLAUTH=authuser",   # another user
                     base,                                                   # no ;URLAUTH=
                     "/INBOX/;UID=%d;URLAUTH=authuser" % uid,                # not absolute
                     "imap://generr@localhost/INBOX/;UID=%d;URLAUTH=authuser" % (uid + 7),
                     base + ";URLAUTH=authuser:INTERNAL:" + "0" * 40,        # has a verifier
                     "imap://generr@localhost/Nope/;UID=1;URLAUTH=authuser",
                     "garbage"):
            with self.subTest(rump=rump):
                fred.cmd('G GENURLAUTH "%s" INTERNAL' % rump)
                tagged, untagged = self.responses(fred, "G")
                self.assertRegex(tagged, rb"^G NO \[BADURL ")
                self.assertEqual(untagged, [])
        fred.cmd('G GENURLAUTH "%s;URLAUTH=authuser" FOO' % base)
        self.assertRegex(self.responses(fred, "G")[0], rb"^G NO ")
        for args in ("", '"%s;URLAUTH=authuser"' % base, "(x) INTERNAL"):
            self.assertRegex(fred.imap("G", "GENURLAUTH " + args)[0], rb"^G BAD ")
        self.assertRegex(fred.imap("G", "URLFETCH")[0], rb"^G BAD ")
        # two URLs in one command: two answers in one response
        fred.cmd('G GENURLAUTH "%s;URLAUTH=authuser" INTERNAL "%s;URLAUTH=anonymous" internal'
                 % (base, base))
        tagged, untagged = self.responses(fred, "G")
        self.assertRegex(tagged, rb"^G OK")
        self.assertEqual(len(re.findall(rb":INTERNAL:[0-9a-f]{40}", untagged[0])), 2)

    def test_owner_rights_at_fetch(self):
        owner = self.login("shareowner")
        uid = self.put(owner)
        user = self.login("sharer")
        bob = self.login("bob6")
        self.assertRegex(owner.imap("A", "SETACL INBOX sharer lr")[0], rb"^A OK")
        url = self.genurlauth(user, "imap://sharer@localhost/Other%%20Users/shareowner/;UID=%d"
                              ";URLAUTH=authuser" % uid)
        self.assertEqual(self.urlfetch(bob, url), MSG)
        self.assertRegex(owner.imap("A", "SETACL INBOX sharer l")[0], rb"^A OK")
        self.assertIsNone(self.urlfetch(bob, url))
        # no r: GENURLAUTH refuses too
        user.cmd('G GENURLAUTH "imap://sharer@localhost/Other%%20Users/shareowner/;UID=%d'
                 ';URLAUTH=authuser" INTERNAL' % uid)
        self.assertRegex(self.responses(user, "G")[0], rb"^G NO \[BADURL ")

    def test_no_rights_and_admin(self):
        owner = self.login("adminowner")
        uid = self.put(owner)
        rump = ("imap://%s@localhost/Other%%20Users/adminowner/;UID=%d;URLAUTH=authuser")
        # no rights at all: GENURLAUTH and RESETKEY see no such mailbox
        stranger = self.login("stranger")
        stranger.cmd('G GENURLAUTH "%s" INTERNAL' % (rump % ("stranger", uid)))
        tagged, untagged = self.responses(stranger, "G")
        self.assertRegex(tagged, rb"^G NO \[BADURL ")
        self.assertEqual(untagged, [])
        self.assertRegex(stranger.imap("R", 'RESETKEY "Other Users/adminowner"')[0],
                         rb"^R NO \[NONEXISTENT\] ")
        # an administrator has every right (imapd(8)): his URL to adminowner's message
        # works for another user, until he resets his key for that mailbox
        boss = self.login("boss")
        url = self.genurlauth(boss, rump % ("boss", uid))
        reader = self.login("reader9")
        self.assertEqual(self.urlfetch(reader, url), MSG)
        self.assertRegex(boss.imap("R", 'RESETKEY "Other Users/adminowner"')[0], rb"^R OK")
        self.assertIsNone(self.urlfetch(reader, url))
        # the owner's own URLs are not touched by the administrator's reset
        own = self.genurlauth(owner, "imap://adminowner@localhost/INBOX/;UID=%d"
                              ";URLAUTH=authuser" % uid)
        self.assertRegex(boss.imap("R", 'RESETKEY "Other Users/adminowner"')[0], rb"^R OK")
        self.assertEqual(self.urlfetch(reader, own), MSG)

    def test_extended_urlfetch(self):
        fred = self.login("binary")
        uid = self.put(fred)
        bob = self.login("bob7")
        url = self.genurlauth(fred, "imap://binary@localhost/INBOX/;UID=%d/;SECTION=2"
                              ";URLAUTH=authuser" % uid)
        bob.cmd('U URLFETCH ("%s" BINARY BODYPARTSTRUCTURE)' % url)
        tagged, untagged = self.responses(bob, "U")
        self.assertRegex(tagged, rb"^U OK")
        resp = untagged[0]
        self.assertIn(b"(BINARY ~{13}\r\nHello binary\x00)", resp)
        m = re.search(rb"\(BODYPARTSTRUCTURE (\(.*\))\) \(BINARY", resp)
        self.assertTrue(m, resp)
        self.assertIn(b'"APPLICATION" "OCTET-STREAM"', m.group(1))
        self.assertIn(b'"BASE64"', m.group(1))
        bob.cmd('U URLFETCH ("%s" BODY) "%s"' % (url, url))
        tagged, untagged = self.responses(bob, "U")
        self.assertRegex(tagged, rb"^U OK")
        self.assertIn(b"(BODY {20}\r\nSGVsbG8gYmluYXJ5AA==)", untagged[0])
        self.assertTrue(untagged[1].endswith(b" {20}\r\nSGVsbG8gYmluYXJ5AA==\r\n"), untagged)
        # a bad URL in the extended form is NIL too
        bob.cmd('U URLFETCH ("%s0" BINARY)' % url)
        tagged, untagged = self.responses(bob, "U")
        self.assertEqual(untagged[0], b'* URLFETCH "%s0" NIL\r\n' % url.encode())
        for bad in ('("%s" BINARY BODY)' % url, '("%s" FOO)' % url, "()", '("%s" BINARY BINARY)' % url):
            self.assertRegex(bob.imap("U", "URLFETCH " + bad)[0], rb"^U BAD ")

    def test_catenate_with_urlauth(self):
        fred = self.login("catowner")
        uid = self.put(fred)
        bob = self.login("bob8")
        url = self.genurlauth(fred, "imap://catowner@localhost/INBOX/;UID=%d/;SECTION=1"
                              ";URLAUTH=user+bob8" % uid)
        bob.send(b'A APPEND INBOX CATENATE (URL "%s")\r\n' % url.encode())
        tagged, _ = bob.read_tagged("A")
        self.assertRegex(tagged, rb"^A OK \[APPENDUID ")
        self.assertEqual(self.urlfetch(fred, self.genurlauth(
            fred, "imap://catowner@localhost/INBOX/;UID=%d;URLAUTH=anonymous" % uid)), MSG)
        forged = url[:-1] + ("0" if url[-1] != "0" else "1")
        bob.send(b'A APPEND INBOX CATENATE (URL "%s")\r\n' % forged.encode())
        self.assertRegex(bob.read_tagged("A")[0], rb"^A NO \[BADURL ")
        # another user cannot use a user+bob8 URL
        carol = self.login("carol8")
        carol.send(b'A APPEND INBOX CATENATE (URL "%s")\r\n' % url.encode())
        self.assertRegex(carol.read_tagged("A")[0], rb"^A NO \[BADURL ")

    def dump_count(self):
        r = subprocess.run([os.path.join(self.coffer.bindir, "coffer"), "-C",
                            self.coffer.conf_path, "db", "dump", "urlauth"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        m = re.search(rb"coffer-kv-end (\d+)", r.stdout)
        self.assertTrue(m, r.stdout)
        return int(m.group(1))

    def test_delete_forgets_rename_keeps(self):
        fred = self.login("deleter")
        self.assertRegex(fred.imap("C", "CREATE Box")[0], rb"^C OK")
        uid = self.put(fred, "Box")
        before = self.dump_count()
        self.genurlauth(fred, "imap://deleter@localhost/Box/;UID=%d;URLAUTH=authuser" % uid)
        self.assertEqual(self.dump_count(), before + 1)
        self.assertRegex(fred.imap("R", "RENAME Box Box2")[0], rb"^R OK")
        self.assertEqual(self.dump_count(), before + 1)
        url = self.genurlauth(fred, "imap://deleter@localhost/Box2/;UID=%d;URLAUTH=authuser" % uid)
        self.assertEqual(self.dump_count(), before + 1)      # the same key
        self.assertEqual(self.urlfetch(fred, url), MSG)
        self.assertRegex(fred.imap("D", "DELETE Box2")[0], rb"^D OK")
        self.assertEqual(self.dump_count(), before)
        self.assertIsNone(self.urlfetch(fred, url))


    def test_dump_restore_keeps_urls(self):
        """coffer dump carries the user's access key of each mailbox, and restore gives it
        back to the new mailbox (new unique id) for the restored messages only."""
        mover, other = self.login("mover"), self.login("bystander")
        uid = self.put(mover)
        rump = "imap://mover@localhost/INBOX/;UID=%d;URLAUTH=anonymous" % uid
        url = self.genurlauth(mover, rump)
        self.assertEqual(self.urlfetch(other, url), MSG)
        code, dump, err = run_coffer(self.coffer, "dump", "mover")
        self.assertEqual(code, 0, err)
        with tarfile.open(fileobj=io.BytesIO(dump)) as t:
            man = json.loads(t.extractfile("manifest.json").read())
        inbox = [b for b in man["mailboxes"] if b["name"] == "user/mover"][0]
        key = bytes.fromhex(inbox["urlauth_key"])
        self.assertEqual(url.rsplit(":", 1)[1], token(key, rump))
        # gone with its mailbox, back with the restore
        self.assertEqual(run_coffer(self.coffer, "mailbox", "delete", "-r", "user/mover")[0], 0)
        self.assertIsNone(self.urlfetch(other, url))
        code, _, err = run_coffer(self.coffer, "restore", input=dump)
        self.assertEqual(code, 0, err)
        self.assertEqual(self.urlfetch(other, url), MSG)
        # the dumped key signs nothing the dump did not hold: a URL for later mail made with
        # it (whoever has the dump knows it) is refused
        mover = self.login("mover")
        later = self.put(mover)
        forged = "imap://mover@localhost/INBOX/;UID=%d;URLAUTH=anonymous" % later
        self.assertIsNone(self.urlfetch(other, forged + ":INTERNAL:" + token(key, forged)))
        # new URLs come from a fresh key, and work
        url2 = self.genurlauth(mover, rump)
        self.assertNotEqual(url2, url)
        self.assertEqual(self.urlfetch(other, url2), MSG)
        self.assertIsNotNone(self.urlfetch(other, self.genurlauth(mover, forged)))
        # a second dump carries the current key (not the restored one)
        code, dump2, err = run_coffer(self.coffer, "dump", "mover")
        with tarfile.open(fileobj=io.BytesIO(dump2)) as t:
            man2 = json.loads(t.extractfile("manifest.json").read())
        self.assertNotEqual(man2["mailboxes"][0]["urlauth_key"], inbox["urlauth_key"])
        # RESETKEY ends the restored key as well
        self.assertRegex(mover.imap("R", "RESETKEY INBOX INTERNAL")[0], rb"^R OK")
        self.assertIsNone(self.urlfetch(other, url))
        self.assertIsNone(self.urlfetch(other, url2))
        # under another user name a URL names the old user: the keys stay behind
        code, _, err = run_coffer(self.coffer, "restore", "--user", "mover2", input=dump)
        self.assertEqual(code, 0, err)
        self.assertIn("URLAUTH keys of 1 mailbox are not carried", err)
        code, dump3, err = run_coffer(self.coffer, "dump", "mover2")
        with tarfile.open(fileobj=io.BytesIO(dump3)) as t:
            man3 = json.loads(t.extractfile("manifest.json").read())
        self.assertNotIn("urlauth_key", man3["mailboxes"][0])


def token(key, rump):
    """The INTERNAL mechanism's token: HMAC-SHA1 of the rump with the access key."""
    return hmac.new(key, rump.encode(), hashlib.sha1).hexdigest()


if __name__ == "__main__":
    main()
