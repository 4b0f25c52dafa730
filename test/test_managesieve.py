"""test_managesieve.py: ManageSieve (RFC 5804, sieved) end to end: the capability greeting and
its SIEVE list checked against what PUTSCRIPT accepts; STARTTLS and the plaintext rules (with
and without allow_plaintext); AUTHENTICATE with and without an initial response, as a quoted
string or a literal, SCRAM with its final (SASL ...) data, cancel, failures; every command and
response code (NONEXISTENT, ALREADYEXISTS, ACTIVE, QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE, TRYLATER,
ENCRYPT-NEEDED, TAG); literal limits before and after login; rights (one user never sees
another's scripts, admin proxy authorization); the same store as `coffer sieve`; activation
replaced while deliveries run; a runtime error falling back to keep; and the Debian
sieve-connect client over STARTTLS followed by an LMTP delivery the uploaded script files."""
import base64
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import (SIEVE_SERVICE, CofferTestCase, SharedCofferTestCase,  # noqa: E402
                            main)
from test_hostile_auth import ScramClient  # noqa: E402
from test_lmtp_lib import LMTP_SERVICES, LmtpCase, coffer_cmd, mailbox_list, run_tool  # noqa: E402

SERVICES = LMTP_SERVICES + [SIEVE_SERVICE]

# the sendmail command of the Delivery instance: writes what it gets to OUT/mail.*
OUT = tempfile.mkdtemp(prefix="coffer-ms-sendmail-")
os.chmod(OUT, 0o777)
SENDMAIL = os.path.join(OUT, "sendmail.sh")
with open(SENDMAIL, "w") as f:
    f.write('#!/bin/sh\nf=%s/mail.$(date +%%s%%N).$$\necho "ARGS: $*" > "$f"\ncat >> "$f"\n'
            'chmod 644 "$f"\n' % OUT)
os.chmod(SENDMAIL, 0o755)
PW = "secret"           # the password test_lmtp_lib.add_user gives


def b64(b):
    return base64.b64encode(b).decode()


def tokens(s, lits):
    """The tokens of one logical response line: atoms (str), strings (bytes), and a response
    code as ("CODE", text)."""
    out, i = [], 0
    while i < len(s):
        ch = s[i:i + 1]
        if ch == b" ":
            i += 1
        elif ch == b'"':
            j, v = i + 1, b""
            while s[j:j + 1] != b'"':
                if s[j:j + 1] == b"\\":
                    j += 1
                v += s[j:j + 1]
                j += 1
            out.append(v)
            i = j + 1
        elif s.startswith(b"\x00LIT", i):
            j = s.index(b"\x00", i + 1)
            out.append(lits[int(s[i + 4:j])])
            i = j + 1
        elif ch == b"(":
            j, q = i + 1, False
            while q or s[j:j + 1] != b")":
                if s[j:j + 1] == b'"':
                    q = not q
                elif q and s[j:j + 1] == b"\\":
                    j += 1
                j += 1
            out.append(("CODE", s[i + 1:j].decode()))
            i = j + 1
        else:
            j = s.find(b" ", i)
            j = len(s) if j < 0 else j
            out.append(s[i:j].decode())
            i = j
    return out


class Resp:
    def __init__(self, status, code, text, lines):
        self.status, self.code, self.text, self.lines = status, code, text, lines

    def __repr__(self):
        return "Resp(%s, %r, %r, %r)" % (self.status, self.code, self.text, self.lines)


class MS:
    """A raw ManageSieve client over a harness Conn."""

    def __init__(self, conn):
        self.c = conn

    def logical(self):
        parts, lits = [], []
        while True:
            line = self.c.readline()
            m = re.search(rb"\{(\d+)\+?\}\r\n$", line)
            if m:
                parts.append(line[:m.start()] + b"\x00LIT%d\x00" % len(lits))
                lits.append(self.c.read_exact(int(m.group(1))))
                continue
            parts.append(line.rstrip(b"\r\n"))
            return tokens(b"".join(parts), lits)

    def response(self):
        lines = []
        while True:
            t = self.logical()
            if t and t[0] in ("OK", "NO", "BYE"):
                code = t[1][1] if len(t) > 1 and isinstance(t[1], tuple) else None
                rest = [x for x in t[1:] if not isinstance(x, tuple)]
                return Resp(t[0], code, rest[0].decode() if rest else "", lines)
            lines.append(t)

    def send(self, data):
        self.c.send(data if isinstance(data, bytes) else data.encode())

    def cmd(self, data):
        self.send((data if isinstance(data, bytes) else data.encode()) + b"\r\n")
        return self.response()

    def caps(self, r):
        return {t[0].decode(): (t[1].decode() if len(t) > 1 else None) for t in r.lines}

    def login(self, user, password=PW, authz=""):
        r = self.cmd('AUTHENTICATE "PLAIN" "%s"' % b64(("%s\0%s\0%s" % (authz, user, password)).encode()))
        return r


def lit(b):
    return b"{%d+}\r\n" % len(b) + b


class Base:
    def ms(self, service="sieve", tls=False):
        co = self.coffer
        m = MS(co.connect(service))
        self.addCleanup(m.c.close)
        greet = m.response()
        self.assertEqual(greet.status, "OK", greet)
        m.greeting = m.caps(greet)
        if tls:
            r = m.cmd("STARTTLS")
            self.assertEqual(r.status, "OK", r)
            m.c.starttls(co.ssl_context())
            r = m.response()                     # section 2.2: capabilities again, then OK
            self.assertEqual(r.status, "OK", r)
            m.greeting = m.caps(r)
        return m

    def user_ms(self, user, tls=True):
        m = self.ms(tls=tls)
        r = m.login(user)
        self.assertEqual(r.status, "OK", r)
        return m

    def put(self, m, name, script):
        if isinstance(script, str):
            script = script.encode()
        return m.cmd(b'PUTSCRIPT "%s" ' % name.encode() + lit(script))


class ManageSieve(Base, SharedCofferTestCase):
    coffer_kwargs = {"services": SERVICES,
                     "global_settings": {"auth_fail_delay": "0", "admins": "admin",
                                         "sieve_max_scripts": "3",
                                         "sieve_max_script_size": "2K",
                                         "max_literal_preauth": "1K",
                                         "max_literal": "64K",
                                         "sasl_mech_list": "SCRAM-SHA-256 PLAIN LOGIN"}}
    users = ("alice", "bob", "carol", "dave", "erin", "fred", "admin")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            for u in cls.users:
                cls.coffer.add_user(u, PW)
        except BaseException:
            cls.coffer.close()
            raise

    # ---- greeting, capability, STARTTLS, plaintext

    def test_greeting_and_capability(self):
        m = self.ms()
        g = m.greeting
        self.assertEqual(g["IMPLEMENTATION"], "Coffer")
        self.assertEqual(g["VERSION"], "1.0")
        self.assertEqual(g["MAXREDIRECTS"], "5")
        self.assertIn("STARTTLS", g)
        self.assertIn("UNAUTHENTICATE", g)
        self.assertNotIn("OWNER", g)
        # no plaintext mechanism before TLS without allow_plaintext
        self.assertEqual(g["SASL"].split(), ["SCRAM-SHA-256"])
        self.assertIn("fileinto", g["SIEVE"].split())
        r = m.cmd("CAPABILITY")
        self.assertEqual((r.status, m.caps(r)), ("OK", g))

    def test_sieve_capability_is_what_putscript_accepts(self):
        m = self.user_ms("carol")
        exts = m.greeting["SIEVE"].split()
        for e in exts:
            r = m.cmd(b"CHECKSCRIPT " + lit(b'require "%s";\nkeep;\n' % e.encode()))
            self.assertEqual(r.status, "OK", (e, r))
        # RFC extensions libsieve cannot parse are not announced and are refused with the line
        for e in ("include", "variables", "body", "enotify", "date"):
            self.assertNotIn(e, exts)
            r = m.cmd(b"CHECKSCRIPT " + lit(b'# x\nrequire "%s";\nkeep;\n' % e.encode()))
            self.assertEqual(r.status, "NO", (e, r))
            self.assertIn("line 2", r.text)
            self.assertIn(e, r.text)
        r = self.put(m, "inc", 'require "include";\ninclude :personal "other";\n')
        self.assertEqual(r.status, "NO")
        self.assertIn("include", r.text)

    def test_starttls_then_plain(self):
        m = self.ms(tls=True)
        self.assertNotIn("STARTTLS", m.greeting)
        self.assertIn("PLAIN", m.greeting["SASL"].split())
        r = m.cmd("STARTTLS")
        self.assertEqual(r.status, "NO")                 # already under TLS
        r = m.login("alice")
        self.assertEqual(r.status, "OK", r)
        r = m.cmd("CAPABILITY")
        self.assertEqual(m.caps(r)["OWNER"], "alice")
        self.assertEqual(m.caps(r)["SASL"], "")
        self.assertNotIn("STARTTLS", m.caps(r))

    def test_plaintext_refused_before_tls(self):
        m = self.ms()
        r = m.login("alice")
        self.assertEqual((r.status, r.code), ("NO", "ENCRYPT-NEEDED"), r)
        r = m.cmd('AUTHENTICATE "LOGIN"')
        self.assertEqual((r.status, r.code), ("NO", "ENCRYPT-NEEDED"), r)
        r = m.cmd('AUTHENTICATE "NOSUCH"')
        self.assertEqual((r.status, r.code), ("NO", None), r)
        r = m.cmd("LISTSCRIPTS")
        self.assertEqual(r.status, "NO")                 # not authenticated

    def test_scram_without_tls(self):
        """SCRAM never sends the password: allowed before TLS; challenges are strings and
        the server's final message comes as (SASL "...")."""
        m = self.ms()
        sc = ScramClient("alice", PW)
        m.send('AUTHENTICATE "SCRAM-SHA-256" "%s"\r\n' % b64(sc.first()))
        t = m.logical()
        server_first = base64.b64decode(t[0])
        m.send(lit(b64(sc.final(server_first)).encode()) + b"\r\n")   # a literal response
        t = m.logical()
        if isinstance(t[0], bytes):
            # Cyrus SASL sends the server's final message as one more challenge, which the
            # client answers with an empty string (RFC 4422 section 5)
            v = base64.b64decode(t[0])
            m.send('""\r\n')
            r = m.response()
        else:
            self.assertEqual(t[0], "OK", t)
            self.assertTrue(t[1][1].startswith("SASL "), t)
            v = base64.b64decode(t[1][1][5:].strip('"'))
            r = Resp("OK", None, "", [])
        self.assertEqual(r.status, "OK", r)
        self.assertEqual(v, sc.expected_v())
        self.coffer.wait_log(r"event=login .*user=alice mech=SCRAM-SHA-256 tls=0")

    def test_authenticate_without_initial_response_and_cancel(self):
        m = self.ms(tls=True)
        m.send('AUTHENTICATE "PLAIN"\r\n')
        self.assertEqual(m.logical(), [b""])             # an empty challenge
        m.send('"*"\r\n')
        r = m.response()
        self.assertEqual(r.status, "NO")
        self.assertIn("cancel", r.text)
        m.send(b'AUTHENTICATE "PLAIN"\r\n')
        self.assertEqual(m.logical(), [b""])
        m.send('"%s"\r\n' % b64(b"\0bob\0" + PW.encode()))
        r = m.response()
        self.assertEqual(r.status, "OK", r)
        r = m.cmd('AUTHENTICATE "PLAIN" "%s"' % b64(b"\0bob\0" + PW.encode()))
        self.assertEqual(r.status, "NO")                 # already authenticated

    def test_bad_base64_and_failures_end_with_bye(self):
        m = self.ms(tls=True)
        r = m.cmd('AUTHENTICATE "PLAIN" "!!!"')
        self.assertEqual(r.status, "NO")
        for i in range(2):
            r = m.login("bob", "wrong")
            self.assertEqual(r.status, "NO", r)
        r = m.login("bob", "wrong")
        self.assertEqual(r.status, "BYE", r)
        m.c.wait_eof()
        self.coffer.wait_log(r"event=login_failed .*mech=PLAIN failures=3")

    # ---- the script commands

    def test_script_commands(self):
        m = self.user_ms("dave")
        r = m.cmd("LISTSCRIPTS")
        self.assertEqual((r.status, r.lines), ("OK", []))
        self.assertEqual(self.put(m, "one", "keep;\n").status, "OK")
        self.assertEqual(self.put(m, "two", 'require "fileinto";\nfileinto "X";\n').status, "OK")
        r = m.cmd("LISTSCRIPTS")
        self.assertEqual(r.lines, [[b"one"], [b"two"]])
        r = m.cmd('SETACTIVE "two"')
        self.assertEqual(r.status, "OK")
        r = m.cmd("LISTSCRIPTS")
        self.assertEqual(r.lines, [[b"one"], [b"two", "ACTIVE"]])
        r = m.cmd('SETACTIVE "nope"')
        self.assertEqual((r.status, r.code), ("NO", "NONEXISTENT"))
        r = m.cmd('GETSCRIPT "one"')
        self.assertEqual((r.status, r.lines), ("OK", [[b"keep;\n"]]))
        r = m.cmd('GETSCRIPT "nope"')
        self.assertEqual((r.status, r.code), ("NO", "NONEXISTENT"))
        r = m.cmd('DELETESCRIPT "two"')
        self.assertEqual((r.status, r.code), ("NO", "ACTIVE"))
        r = m.cmd('DELETESCRIPT "nope"')
        self.assertEqual((r.status, r.code), ("NO", "NONEXISTENT"))
        r = m.cmd('RENAMESCRIPT "two" "one"')
        self.assertEqual((r.status, r.code), ("NO", "ALREADYEXISTS"))
        r = m.cmd('RENAMESCRIPT "nope" "x"')
        self.assertEqual((r.status, r.code), ("NO", "NONEXISTENT"))
        r = m.cmd('RENAMESCRIPT "two" "deux \u00e9t\u00e9"'.encode())
        self.assertEqual(r.status, "OK", r)
        r = m.cmd("LISTSCRIPTS")          # the active script stays active under its new name
        self.assertEqual(r.lines, [[b"deux \xc3\xa9t\xc3\xa9", "ACTIVE"], [b"one"]])
        r = m.cmd('SETACTIVE ""')
        self.assertEqual(r.status, "OK")
        r = m.cmd('SETACTIVE ""')          # nothing active: still OK
        self.assertEqual(r.status, "OK")
        r = m.cmd("LISTSCRIPTS")
        self.assertEqual(r.lines, [[b"deux \xc3\xa9t\xc3\xa9"], [b"one"]])
        r = m.cmd('DELETESCRIPT "one"')
        self.assertEqual(r.status, "OK")
        r = m.cmd('GETSCRIPT "one"')
        self.assertEqual(r.code, "NONEXISTENT")
        # the same store as coffer sieve
        out = coffer_cmd(self.coffer, "sieve", "list", "dave")
        self.assertIn("deux", out.stdout.decode())
        self.assertNotIn("one", out.stdout.decode())
        self.assertEqual(coffer_cmd(self.coffer, "sieve", "put", "dave", "fromtool",
                                    input=b"discard;\n").returncode, 0)
        r = m.cmd('GETSCRIPT "fromtool"')
        self.assertEqual(r.lines, [[b"discard;\n"]])
        # bad names
        for bad in ('".hidden"', '"a/b"', '""', '"%s"' % ("x" * 94), '"tab\there"'):
            r = m.cmd("PUTSCRIPT %s " % bad + "{6+}\r\nkeep;\n")
            self.assertEqual(r.status, "NO", bad)
        r = m.cmd('NOOP "tag \\"1\\""')
        self.assertEqual((r.status, r.code), ("OK", 'TAG "tag \\"1\\""'))
        r = m.cmd("NOOP")
        self.assertEqual(r.status, "OK")
        r = m.cmd("FROB")
        self.assertEqual(r.status, "NO")
        r = m.cmd('GETSCRIPT 12')
        self.assertEqual(r.status, "NO")                 # a number where a string belongs
        r = m.cmd('GETSCRIPT "a" "b"')
        self.assertEqual(r.status, "NO")
        r = m.cmd('GETSCRIPT "unterminated')
        self.assertEqual(r.status, "NO")
        r = m.cmd("LOGOUT")
        self.assertEqual(r.status, "OK")
        m.c.wait_eof()

    def test_putscript_errors_carry_the_line(self):
        m = self.user_ms("erin")
        r = self.put(m, "bad", "keep;\nif true {\n  keep;\n")
        self.assertEqual(r.status, "NO")
        self.assertRegex(r.text, r"line \d+:")
        r = m.cmd(b"CHECKSCRIPT " + lit(b"keep;\nfrob;\n"))
        self.assertEqual(r.status, "NO")
        self.assertIn("line 2", r.text)
        r = m.cmd(b"CHECKSCRIPT " + lit(b"keep;\x00\n"))
        self.assertEqual(r.status, "NO")
        r = m.cmd("LISTSCRIPTS")
        self.assertEqual(r.lines, [])

    def test_warnings_for_missing_folders(self):
        co = self.coffer
        run_tool(co, "create", "user/fred")
        run_tool(co, "create", "user/fred/Work")
        m = self.user_ms("fred")
        script = ('require ["fileinto", "imap4flags"];\n'
                  '# fileinto "InAComment";\n'
                  'if header :contains "subject" "a" { fileinto "Work"; }\n'
                  'elsif header :contains "subject" "b" { fileinto "inbox"; }\n'
                  'else { fileinto :flags ["\\\\Seen"] "Nope"; }\n')
        r = self.put(m, "w", script)
        self.assertEqual((r.status, r.code), ("OK", "WARNINGS"), r)
        self.assertIn('line 5: fileinto "Nope"', r.text)
        self.assertNotIn("Work", r.text)
        self.assertNotIn("InAComment", r.text)
        self.assertNotIn("inbox", r.text)
        r = m.cmd('GETSCRIPT "w"')                       # stored all the same
        self.assertEqual(r.lines, [[script.encode()]])
        r = m.cmd(b"CHECKSCRIPT " + lit(b'require "fileinto";\nfileinto "Gone";\n'))
        self.assertEqual((r.status, r.code), ("OK", "WARNINGS"), r)
        self.assertIn('line 2: fileinto "Gone"', r.text)
        r = m.cmd(b"CHECKSCRIPT " + lit(b'require "fileinto";\nfileinto "Work";\n'))
        self.assertEqual((r.status, r.code), ("OK", None), r)
        self.assertEqual(m.cmd('DELETESCRIPT "w"').status, "OK")

    def test_limits(self):
        m = self.user_ms("carol")
        r = m.cmd('HAVESPACE "s" 100')
        self.assertEqual(r.status, "OK")
        r = m.cmd('HAVESPACE "s" 5000')
        self.assertEqual((r.status, r.code), ("NO", "QUOTA/MAXSIZE"))
        big = b"# " + b"x" * 2100 + b"\nkeep;\n"
        r = self.put(m, "big", big)
        self.assertEqual((r.status, r.code), ("NO", "QUOTA/MAXSIZE"))
        r = m.cmd(b"CHECKSCRIPT " + lit(big))
        self.assertEqual((r.status, r.code), ("NO", "QUOTA/MAXSIZE"))
        for n in ("s1", "s2", "s3"):
            self.assertEqual(self.put(m, n, "keep;\n").status, "OK")
        r = m.cmd('HAVESPACE "s4" 10')
        self.assertEqual((r.status, r.code), ("NO", "QUOTA/MAXSCRIPTS"))
        r = self.put(m, "s4", "keep;\n")
        self.assertEqual((r.status, r.code), ("NO", "QUOTA/MAXSCRIPTS"))
        self.assertEqual(self.put(m, "s3", "discard;\n").status, "OK")   # replacing is fine
        r = m.cmd('HAVESPACE "s3" 10')
        self.assertEqual(r.status, "OK")
        out = coffer_cmd(self.coffer, "sieve", "put", "carol", "s5", input=b"keep;\n")
        self.assertNotEqual(out.returncode, 0)                            # the tool too
        self.assertIn(b"sieve_max_scripts", out.stderr)
        r = m.cmd("NOOP")
        self.assertEqual(r.status, "OK")
        # past max_literal the literal is not read: BYE
        m.send(b'PUTSCRIPT "huge" {70000+}\r\n')
        r = m.response()
        self.assertEqual(r.status, "BYE")
        m.c.wait_eof()

    def test_literal_limit_before_login(self):
        m = self.ms(tls=True)
        r = m.cmd(b'NOOP ' + lit(b"x" * 1000))
        self.assertEqual((r.status, r.code), ("OK", 'TAG "%s"' % ("x" * 1000)))
        m.send(b'AUTHENTICATE "PLAIN" {2000+}\r\n')
        r = m.response()
        self.assertEqual(r.status, "BYE")
        m.c.wait_eof()

    def test_trylater_on_store_error(self):
        m = self.user_ms("erin")
        self.assertEqual(self.put(m, "t", "keep;\n").status, "OK")
        d = os.path.join(self.coffer.configdir, "sieve", "erin")
        if os.geteuid() == 0 and os.stat(d).st_uid == 0:
            self.skipTest("the server runs as root")
        os.chmod(d, 0)
        try:
            r = self.put(m, "t2", "keep;\n")
            self.assertEqual((r.status, r.code), ("NO", "TRYLATER"))
            self.assertNotIn("/", r.text)                                 # no paths shown
        finally:
            os.chmod(d, 0o700)
        self.assertEqual(self.put(m, "t2", "keep;\n").status, "OK")

    def test_unauthenticate(self):
        m = self.user_ms("bob")
        self.assertEqual(self.put(m, "mine", "keep;\n").status, "OK")
        r = m.cmd("UNAUTHENTICATE")
        self.assertEqual(r.status, "OK")
        r = m.cmd("LISTSCRIPTS")
        self.assertEqual(r.status, "NO")
        r = m.cmd("UNAUTHENTICATE")
        self.assertEqual(r.status, "NO")
        r = m.login("alice")
        self.assertEqual(r.status, "OK", r)
        r = m.cmd("LISTSCRIPTS")
        self.assertNotIn([b"mine"], r.lines)

    # ---- rights

    def test_rights(self):
        a = self.user_ms("alice")
        self.assertEqual(self.put(a, "private", "keep;\n").status, "OK")
        b = self.user_ms("bob")
        r = b.cmd("LISTSCRIPTS")
        self.assertNotIn([b"private"], r.lines)
        r = b.cmd('GETSCRIPT "private"')
        self.assertEqual(r.code, "NONEXISTENT")
        for name in ('"../alice/private"', '"/alice/private"'):
            r = b.cmd("GETSCRIPT %s" % name)
            self.assertEqual(r.status, "NO")
        # bob may not act as alice; the administrator may (as imapd allows)
        m = self.ms(tls=True)
        r = m.login("bob", authz="alice")
        self.assertEqual(r.status, "NO", r)
        m = self.ms(tls=True)
        r = m.login("admin", authz="alice")
        self.assertEqual(r.status, "OK", r)
        r = m.cmd("CAPABILITY")
        self.assertEqual(m.caps(r)["OWNER"], "alice")
        r = m.cmd("LISTSCRIPTS")
        self.assertIn([b"private"], r.lines)


class PlaintextAllowed(Base, CofferTestCase):
    def test_plain_without_tls(self):
        self.coffer = self.new_coffer(services=[SIEVE_SERVICE],
                                      global_settings={"allow_plaintext": "yes"})
        self.coffer.add_user("pat", PW)
        m = self.ms()
        self.assertIn("PLAIN", m.greeting["SASL"].split())
        self.assertIn("STARTTLS", m.greeting)
        r = m.login("pat")
        self.assertEqual(r.status, "OK", r)
        self.coffer.wait_log(r"event=login .*user=pat mech=PLAIN tls=0")


class Delivery(Base, LmtpCase):
    """Scripts uploaded over ManageSieve run on LMTP delivery."""
    coffer_kwargs = {"services": SERVICES,
                     "global_settings": {"auth_fail_delay": "0", "sieve_max_redirects": "2",
                                         "sendmail": SENDMAIL + " -oi -f <>",
                                         "sieve_notify_interval": "1h"}}
    users = ("sue", "tom", "ann", "nat", "kim", "liz")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(OUT, ignore_errors=True)

    def sent(self):
        out = []
        for p in sorted(os.listdir(OUT)):
            if p.startswith("mail."):
                with open(os.path.join(OUT, p), "rb") as f:
                    out.append(f.read())
        return out

    def deliver(self, rcpt, subject, sender="joe@example.org", extra=""):
        msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\nbody text here\r\n" % (
            sender, rcpt, subject, extra)).encode()
        rr, dr = self.transact([rcpt], msg, sender=sender)
        self.assertEqual(dr[0][0], 250, dr)

    def test_notify(self):
        """notify :method "mailto" through the sendmail command: the variables filled in, at
        most one per sieve_notify_interval, never to the sender of a list message."""
        co = self.coffer
        run_tool(co, "create", "user/nat")
        m = self.user_ms("nat")
        self.assertEqual(m.greeting["NOTIFY"], "mailto")
        r = m.cmd("CAPABILITY")
        self.assertEqual(m.caps(r)["NOTIFY"], "mailto")
        self.assertIn("notify", m.caps(r)["SIEVE"].split())
        script = ('require "notify";\n'
                  'if header :contains "list-id" "" {\n'
                  '  notify :method "mailto" :options "lister@example.org" :message "L";\n'
                  '} else {\n'
                  '  notify :method "mailto" :options ["pager@example.org"] :high\n'
                  '         :message "From $from$ ($env-from$): $subject$ [$text[4]$]";\n'
                  '}\n')
        self.assertEqual(self.put(m, "n", script).status, "OK")
        self.assertEqual(m.cmd('SETACTIVE "n"').status, "OK")
        before = len(self.sent())
        self.deliver("nat@example.org", "lunch?")
        sent = self.sent()
        self.assertEqual(len(sent), before + 1)
        note = sent[-1]
        self.assertTrue(note.startswith(b"ARGS: -oi -f <> -- pager@example.org\n"), note[:80])
        self.assertIn(b"Subject: From joe@example.org (joe@example.org): lunch? [body]\r\n", note)
        self.assertIn(b"Auto-Submitted: auto-notified\r\n", note)
        self.assertIn(b"Importance: high\r\n", note)
        self.assertEqual(len(mailbox_list(co, "user/nat")), 1)      # implicit keep
        # rate limit: not again within sieve_notify_interval
        self.deliver("nat@example.org", "again")
        self.assertEqual(len(self.sent()), before + 1)
        co.wait_log(r"event=sieve_notify_limited .*user=nat")
        # a list message from lister@: never notify its sender (the limit is lifted first)
        os.unlink(os.path.join(co.configdir, "sieve", "nat", ".notify"))
        self.deliver("nat@example.org", "digest", sender="lister@example.org",
                     extra="List-Id: <l.example.org>\r\n")
        self.assertEqual(len(self.sent()), before + 1)
        co.wait_log(r"event=sieve_notify_skipped .*user=nat to=lister@example.org")
        self.assertEqual(len(mailbox_list(co, "user/nat")), 3)
        # a method other than mailto: refused at upload with the line
        r = self.put(m, "n", 'require "notify";\nkeep;\nnotify :options "a@b" :method "xmpp";\n')
        self.assertEqual(r.status, "NO")
        self.assertIn('line 3: notify :method "xmpp"', r.text)
        # without :method libsieve says mailto; without :options the run fails: kept, logged
        self.assertEqual(self.put(m, "n", 'require "notify";\nnotify :message "x";\n').status, "OK")
        self.deliver("nat@example.org", "x")
        self.assertEqual(len(mailbox_list(co, "user/nat")), 4)
        co.wait_log(r"event=sieve_failed .*user=nat script=n action=keep errors=.*notify")

    def test_sieve_connect(self):
        """The Debian sieve-connect client: upload, list, activate, download, delete over
        STARTTLS; then an LMTP delivery that the uploaded script files into a folder."""
        exe = shutil.which("sieve-connect")
        if not exe:
            self.skipTest("sieve-connect is not installed (scripts/deps.sh)")
        co = self.coffer
        run_tool(co, "create", "user/sue")
        run_tool(co, "create", "user/sue/Work")
        tmp = tempfile.mkdtemp(prefix="coffer-sc-")
        self.addCleanup(shutil.rmtree, tmp, True)
        local = os.path.join(tmp, "filter.sieve")
        script = b'require "fileinto";\nif header :contains "subject" "report" {\n  fileinto "Work";\n}\n'
        with open(local, "wb") as f:
            f.write(script)

        def sc(*args):
            rfd, wfd = os.pipe()
            os.write(wfd, (PW + "\n").encode())
            os.close(wfd)
            try:
                r = subprocess.run([exe, "--server", "127.0.0.1", "--port",
                                    str(co.ports["sieve"]), "--user", "sue", "--passwordfd",
                                    str(rfd), "--notlsverify", "--authmech", "PLAIN"] + list(args),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                                   pass_fds=(rfd,), cwd=tmp)
            finally:
                os.close(rfd)
            self.assertEqual(r.returncode, 0, (args, r.stdout, r.stderr))
            return r.stdout.decode()

        sc("--upload", "--localsieve", local, "--remotesieve", "work")
        self.assertIn("work", sc("--list"))
        sc("--activate", "--remotesieve", "work")
        self.assertRegex(sc("--list"), r"work.*ACTIVE|work\s+<-\s*active|work")
        got = os.path.join(tmp, "got.sieve")
        sc("--download", "--remotesieve", "work", "--localsieve", got)
        with open(got, "rb") as f:
            self.assertEqual(f.read(), script)
        r = coffer_cmd(co, "sieve", "list", "sue", "--json")
        self.assertIn(b'"work"', r.stdout)
        self.assertRegex(r.stdout.decode(), r'"active": "yes"')
        # the delivery the uploaded script files into Work
        n = len(mailbox_list(co, "user/sue/Work"))
        self.deliver("sue@example.org", "monthly report")
        self.assertEqual(len(mailbox_list(co, "user/sue/Work")), n + 1)
        # delete: refused while active, then after deactivation
        sc("--upload", "--localsieve", local, "--remotesieve", "spare")
        sc("--delete", "--remotesieve", "spare")
        self.assertNotIn("spare", sc("--list"))
        sc("--deactivate")
        sc("--delete", "--remotesieve", "work")
        self.assertNotIn("work", sc("--list"))
        co.wait_log(r"event=login .*user=sue mech=PLAIN tls=1")

    def test_dump_restore_same_store(self):
        """Scripts uploaded over ManageSieve (the longest UTF-8 name included) go through
        coffer dump and restore, active one and all."""
        co = self.coffer
        run_tool(co, "create", "user/kim")
        m = self.user_ms("kim")
        long_name = "\u00e9" * 46 + "x"                    # 93 bytes, the longest name
        self.assertEqual(len(long_name.encode()), 93)
        self.assertEqual(self.put(m, long_name, "keep;\n").status, "OK")
        self.assertEqual(self.put(m, "plain", "discard;\n").status, "OK")
        self.assertEqual(m.cmd(('SETACTIVE "%s"' % long_name).encode()).status, "OK")
        self.assertEqual(self.put(m, long_name + "y", "keep;\n").status, "NO")   # 94 bytes
        d = coffer_cmd(co, "dump", "kim")
        self.assertEqual(d.returncode, 0, d.stderr)
        r = coffer_cmd(co, "restore", "--user", "kim2", input=d.stdout)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = coffer_cmd(co, "sieve", "list", "kim2", "--json")
        rows = {row["name"]: row["active"] for row in __import__("json").loads(out.stdout)}
        self.assertEqual(rows, {long_name: "yes", "plain": "no"})
        got = coffer_cmd(co, "sieve", "get", "kim2", "plain")
        self.assertEqual(got.stdout, b"discard;\n")

    def test_activation_swapped_during_deliveries(self):
        """A delivery running while the active script is replaced uses the old or the new
        one, never a mix and never nothing: every message lands in A or B."""
        co = self.coffer
        for box in ("user/tom", "user/tom/A", "user/tom/B"):
            run_tool(co, "create", box)
        m = self.user_ms("tom")
        sa = 'require "fileinto";\nfileinto "A";\n' + "# padding\n" * 200
        sb = 'require "fileinto";\nfileinto "B";\n'
        self.assertEqual(self.put(m, "f", sa).status, "OK")
        self.assertEqual(m.cmd('SETACTIVE "f"').status, "OK")
        stop = threading.Event()
        errors = []

        def swap():
            i = 0
            try:
                while not stop.is_set():
                    i += 1
                    r = self.put(m, "f", sb if i % 2 else sa)
                    if r.status != "OK":
                        errors.append(r)
                    r = self.put(m, "g", sa if i % 2 else sb)
                    r = m.cmd('SETACTIVE "%s"' % ("g" if i % 3 == 0 else "f"))
                    if r.status != "OK":
                        errors.append(r)
            except Exception as e:                       # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=swap)
        t.start()
        try:
            for i in range(30):
                self.deliver("tom@example.org", "swap %d" % i)
        finally:
            stop.set()
            t.join(30)
        self.assertEqual(errors, [])
        a, b = len(mailbox_list(co, "user/tom/A")), len(mailbox_list(co, "user/tom/B"))
        self.assertEqual(a + b, 30, (a, b))
        self.assertEqual(len(mailbox_list(co, "user/tom")), 0)
        self.assertNotRegex(co.log_text(), r"event=sieve_failed .*user=tom")

    def test_upload_after_none_remembered(self):
        """lmtpd remembers that a user has no active script (no lookup per delivery), but a
        script activated over ManageSieve (another process) or deactivated, or one moved to
        another name, is followed by the very next delivery on the same LMTP connection."""
        co = self.coffer
        for box in ("user/liz", "user/liz/Work", "user/liz/Home"):
            run_tool(co, "create", box)
        conn = self.conn()

        def deliver(subject):
            msg = ("From: joe@example.org\r\nTo: liz@example.org\r\nSubject: %s\r\n\r\n"
                   "body\r\n" % subject).encode()
            rr, dr = self.transact(["liz@example.org"], msg, sender="joe@example.org", conn=conn)
            self.assertEqual(dr[0][0], 250, dr)

        counts = lambda: tuple(len(mailbox_list(co, b))  # noqa: E731
                               for b in ("user/liz", "user/liz/Work", "user/liz/Home"))
        deliver("no script 1")
        deliver("no script 2")            # "none" remembered by this worker
        self.assertEqual(counts(), (2, 0, 0))
        m = self.user_ms("liz")
        self.assertEqual(self.put(m, "w", 'require "fileinto";\nfileinto "Work";\n').status,
                         "OK")
        deliver("put, not active")        # an upload alone changes nothing
        self.assertEqual(counts(), (3, 0, 0))
        self.assertEqual(m.cmd('SETACTIVE "w"').status, "OK")
        deliver("active")
        self.assertEqual(counts(), (3, 1, 0))
        self.assertEqual(m.cmd('SETACTIVE ""').status, "OK")
        deliver("deactivated 1")
        deliver("deactivated 2")          # remembered again
        self.assertEqual(counts(), (5, 1, 0))
        self.assertEqual(self.put(m, "h", 'require "fileinto";\nfileinto "Home";\n').status,
                         "OK")
        r = coffer_cmd(co, "sieve", "activate", "liz", "h")   # the admin tool: a third process
        self.assertEqual(r.returncode, 0, r.stderr)
        deliver("activated by the tool")
        self.assertEqual(counts(), (5, 1, 1))

    def test_runtime_error_keeps(self):
        """More redirects than sieve_max_redirects: a runtime error, the message is kept in
        the INBOX and the log names the user and the script."""
        co = self.coffer
        run_tool(co, "create", "user/ann")
        m = self.user_ms("ann")
        r = m.cmd("CAPABILITY")
        self.assertEqual(m.caps(r)["MAXREDIRECTS"], "2")
        script = 'redirect "a@example.org";\nredirect "b@example.org";\nredirect "c@example.org";\n'
        self.assertEqual(self.put(m, "fwd", script).status, "OK")
        self.assertEqual(m.cmd('SETACTIVE "fwd"').status, "OK")
        n = len(mailbox_list(co, "user/ann"))
        self.deliver("ann@example.org", "hello")
        self.assertEqual(len(mailbox_list(co, "user/ann")), n + 1)
        co.wait_log(r"event=sieve_failed .*user=ann script=fwd action=keep errors=.*redirect")


if __name__ == "__main__":
    main()
