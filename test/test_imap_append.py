"""test_imap_append.py: IMAP APPEND (RFC 3501 section 6.3.11): flags, internal date,
synchronizing and non-synchronizing literals (RFC 7888), APPENDUID (RFC 4315 UIDPLUS),
MULTIAPPEND (RFC 3502), TRYCREATE, OVERQUOTA (quota set with `coffer quota`), TOOBIG, bad
arguments, imaplib's append and curl's imap:// upload."""
import imaplib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import HOST, SharedCofferTestCase, main  # noqa: E402

MSG = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: append test\r\n\r\nHello.\r\n"
APPENDUID_RX = rb"^(\w+) OK \[APPENDUID (\d+) ([\d:,]+)\] "


class Append(SharedCofferTestCase):
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "max_literal": "100K"}}
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

    def status(self, c, mailbox, items="MESSAGES UIDNEXT UIDVALIDITY UNSEEN"):
        tagged, untagged = c.imap("S", 'STATUS "%s" (%s)' % (mailbox, items))
        self.assertRegex(tagged, rb"^S OK")
        it = re.search(rb"\(([^)]*)\)", untagged[0]).group(1).decode().split()
        return {it[i]: int(it[i + 1]) for i in range(0, len(it), 2)}

    def fetch(self, c, what):
        """UID FETCH 1:* WHAT lines, or None when FETCH is not (yet) in this build."""
        c.cmd("SEL SELECT INBOX")
        tagged, _ = c.read_tagged("SEL")
        if not tagged.startswith(b"SEL OK"):
            return None
        tagged, untagged = c.imap("F", "UID FETCH 1:* (%s)" % what)
        self.assertRegex(tagged, rb"^F OK")
        c.imap("U", "UNSELECT")
        return untagged

    def coffer_tool(self, *args):
        r = subprocess.run([os.path.join(self.coffer.bindir, "coffer"), "-C",
                            self.coffer.conf_path] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout)
        return r.stdout.decode()

    def test_sync_literal_flags_date_appenduid(self):
        c = self.login("sync")
        uidvalidity = self.status(c, "INBOX")["UIDVALIDITY"]
        c.cmd('A1 APPEND INBOX (\\Seen $Label1) "05-Mar-2021 14:30:00 +0100" {%d}' % len(MSG))
        self.assertEqual(c.readline()[:2], b"+ ")      # synchronizing: go-ahead first
        c.send(MSG + b"\r\n")
        tagged, _ = c.read_tagged("A1")
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        self.assertEqual((int(m.group(2)), m.group(3)), (uidvalidity, b"1"))
        # a space-padded day is the RFC 3501 form for days below 10
        c.cmd('A2 APPEND INBOX " 1-Feb-2021 10:00:00 -0500" {%d}' % len(MSG))
        c.expect(rb"^\+ ")
        c.send(MSG + b"\r\n")
        self.assertRegex(c.read_tagged("A2")[0], rb"^A2 OK \[APPENDUID \d+ 2\]")
        st = self.status(c, "INBOX")
        self.assertEqual((st["MESSAGES"], st["UIDNEXT"], st["UNSEEN"]), (2, 3, 1))
        lines = self.fetch(c, "FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]")
        if lines is None:
            self.skipTest("FETCH is not in this build: flags and dates not checked")
        text = b"".join(lines)
        # the instant is kept (the server may show it in another zone)
        dates = [imaplib.Internaldate2tuple(b"INTERNALDATE " + d) for d in
                 re.findall(rb'INTERNALDATE ("[^"]*")', text)]
        self.assertEqual([time.mktime(d) for d in dates],
                         [time.mktime(imaplib.Internaldate2tuple(b'INTERNALDATE "%s"' % d))
                          for d in (b"05-Mar-2021 14:30:00 +0100", b"01-Feb-2021 10:00:00 -0500")])
        self.assertRegex(text, rb"FLAGS \([^)]*\\Seen[^)]*\)")
        self.assertIn(b"$Label1", text)
        self.assertIn(MSG, text)

    def test_nonsync_literal(self):
        c = self.login("nonsync")
        c.send(b"B1 APPEND INBOX (\\Flagged) {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        tagged, untagged = c.read_tagged("B1")
        self.assertEqual(untagged, [])                  # no "+" for LITERAL+
        self.assertRegex(tagged, rb"^B1 OK \[APPENDUID \d+ 1\] APPEND completed")
        # pipelined: two appends and a STATUS in one write
        c.send(b"B2 APPEND INBOX {%d+}\r\n%s\r\nB3 APPEND INBOX {%d+}\r\n%s\r\n"
               b"B4 STATUS INBOX (MESSAGES)\r\n" % (len(MSG), MSG, len(MSG), MSG))
        self.assertRegex(c.read_tagged("B2")[0], rb"^B2 OK \[APPENDUID \d+ 2\]")
        self.assertRegex(c.read_tagged("B3")[0], rb"^B3 OK \[APPENDUID \d+ 3\]")
        tagged, untagged = c.read_tagged("B4")
        self.assertIn(b"MESSAGES 3", untagged[0])

    def test_multiappend(self):
        c = self.login("multi")
        m2 = MSG.replace(b"append test", b"second")
        c.send(b'M1 APPEND INBOX (\\Seen) {%d+}\r\n%s (\\Flagged) "01-Jan-2020 00:00:00 +0000" '
               b"{%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(MSG), MSG, len(m2), m2, len(MSG), MSG))
        tagged, _ = c.read_tagged("M1")
        m = re.match(APPENDUID_RX, tagged)
        self.assertTrue(m, tagged)
        self.assertEqual(m.group(3), b"1:3")
        self.assertEqual(self.status(c, "INBOX")["MESSAGES"], 3)
        # all or nothing: a bad second message appends none
        c.send(b"M2 APPEND INBOX {%d+}\r\n%s (\\Bogus) {%d+}\r\n%s\r\n" % (len(MSG), MSG, len(MSG), MSG))
        self.assertRegex(c.read_tagged("M2")[0], rb"^M2 BAD")
        self.assertEqual(self.status(c, "INBOX")["MESSAGES"], 3)

    def test_trycreate_and_errors(self):
        c = self.login("errs")
        c.send(b"E1 APPEND nosuch {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        self.assertEqual(c.read_tagged("E1")[0], b"E1 NO [TRYCREATE] No such mailbox\r\n")
        c.send(b"E2 APPEND INBOX {0+}\r\n\r\n")
        self.assertRegex(c.read_tagged("E2")[0], rb"^E2 NO ")
        for tag, args in (("E3", b"(\\Recent)"), ("E4", b'"32-Jan-2021 10:00:00 +0000"'),
                          ("E5", b'"01-Foo-2021 10:00:00 +0000"'), ("E6", b'"01-Jan-2021 10:00 +0000"'),
                          ("E7", b"(\\Seen) (\\Seen)")):
            c.send(b"%s APPEND INBOX %s {%d+}\r\n%s\r\n" % (tag.encode(), args, len(MSG), MSG))
            self.assertRegex(c.read_tagged(tag)[0], rb"^" + tag.encode() + rb" BAD", args)
        self.assertRegex(c.imap("E8", 'APPEND INBOX "quoted message"')[0], rb"^E8 BAD")
        self.assertRegex(c.imap("E9", "APPEND INBOX")[0], rb"^E9 BAD")
        self.assertEqual(self.status(c, "INBOX")["MESSAGES"], 0)
        # imaplib's append to a missing mailbox shows the code too
        m = imaplib.IMAP4(HOST, self.coffer.ports["imap"])
        m.login("errs", "errspw")
        typ, data = m.append("Missing", None, None, MSG)
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", data[0])
        m.logout()

    def test_toobig(self):
        c = self.login("big")
        c.cmd("T1 APPEND INBOX {200000}")
        line = c.readline()                             # refused before any "+"
        self.assertRegex(line, rb"^T1 (BAD|NO) \[TOOBIG\]")
        big = b"x" * 200000
        c.send(b"T2 APPEND INBOX {200000+}\r\n" + big + b"\r\nT3 NOOP\r\n")
        self.assertRegex(c.read_tagged("T2")[0], rb"^T2 BAD \[TOOBIG\]")
        self.assertRegex(c.read_tagged("T3")[0], rb"^T3 OK")
        self.assertEqual(self.status(c, "INBOX")["MESSAGES"], 0)

    def test_overquota(self):
        c = self.login("quser")
        self.coffer_tool("quota", "set", "user/quser", "--messages", "2")
        for i in range(2):
            c.send(b"Q%d APPEND INBOX {%d+}\r\n%s\r\n" % (i, len(MSG), MSG))
            self.assertRegex(c.read_tagged("Q%d" % i)[0], rb"OK \[APPENDUID")
        c.send(b"Q3 APPEND INBOX {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        self.assertEqual(c.read_tagged("Q3")[0], b"Q3 NO [OVERQUOTA] Quota exceeded\r\n")
        # folders share the user's root
        self.assertRegex(c.imap("Q4", "CREATE Sub")[0], rb"^Q4 OK")
        c.send(b"Q5 APPEND Sub {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        self.assertRegex(c.read_tagged("Q5")[0], rb"^Q5 NO \[OVERQUOTA\]")
        self.assertEqual(self.status(c, "INBOX")["MESSAGES"], 2)
        usage = json.loads(self.coffer_tool("--json", "quota", "get", "user/quser"))
        row = usage[0] if isinstance(usage, list) else usage
        self.assertEqual(int(row["messages"]), 2)
        self.assertEqual(int(row["used_bytes"]), 2 * len(MSG))
        # storage: 1 KiB cannot take a 2 KiB message
        self.coffer_tool("quota", "set", "user/quser", "--messages", "100", "--storage", "1")
        big = MSG + b"y" * 2048 + b"\r\n"
        c.send(b"Q6 APPEND Sub {%d+}\r\n%s\r\n" % (len(big), big))
        self.assertRegex(c.read_tagged("Q6")[0], rb"^Q6 NO \[OVERQUOTA\]")
        # DELETE gives the usage back
        self.coffer_tool("quota", "set", "user/quser", "--messages", "100", "--storage", "100")
        c.send(b"Q7 APPEND Sub {%d+}\r\n%s\r\n" % (len(big), big))
        self.assertRegex(c.read_tagged("Q7")[0], rb"^Q7 OK")
        row = json.loads(self.coffer_tool("--json", "quota", "get", "user/quser"))
        row = row[0] if isinstance(row, list) else row
        self.assertEqual(int(row["messages"]), 3)
        self.assertRegex(c.imap("Q8", "DELETE Sub")[0], rb"^Q8 OK")
        row = json.loads(self.coffer_tool("--json", "quota", "get", "user/quser"))
        row = row[0] if isinstance(row, list) else row
        self.assertEqual((int(row["messages"]), int(row["used_bytes"])), (2, 2 * len(MSG)))

    def test_append_to_selected(self):
        """APPEND into the selected mailbox is written through the session's own handle (log
        line handle=selected), MULTIAPPEND too; the session still gets EXISTS and RECENT for
        the new messages before the tagged OK (RFC 3501 section 6.3.11), \\Recent on them
        and nothing for an APPEND into another mailbox (handle=opened)."""
        c = self.login("seluser")
        since = self.coffer.log_size()
        self.assertRegex(c.imap("S", "SELECT INBOX")[0], rb"^S OK \[READ-WRITE\]")
        c.send(b"A1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        tagged, untagged = c.read_tagged("A1")
        self.assertRegex(tagged, rb"^A1 OK \[APPENDUID \d+ 1\]")
        self.assertIn(b"* 1 EXISTS\r\n", untagged)
        self.assertIn(b"* 1 RECENT\r\n", untagged)
        c.send(b"A2 APPEND INBOX (\\Seen) {%d+}\r\n%s {%d+}\r\n%s\r\n"
               % (len(MSG), MSG, len(MSG), MSG))
        tagged, untagged = c.read_tagged("A2")
        self.assertRegex(tagged, rb"^A2 OK \[APPENDUID \d+ 2:3\]")
        self.assertIn(b"* 3 EXISTS\r\n", untagged)
        self.assertIn(b"* 3 RECENT\r\n", untagged)
        self.assertRegex(c.imap("C", "CREATE Other")[0], rb"^C OK")
        c.send(b"A3 APPEND Other {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        tagged, untagged = c.read_tagged("A3")
        self.assertRegex(tagged, rb"^A3 OK \[APPENDUID \d+ 1\]")
        self.assertFalse([l for l in untagged if b"EXISTS" in l or b"RECENT" in l], untagged)
        tagged, untagged = c.imap("F", "FETCH 1:* (UID FLAGS)")
        self.assertRegex(tagged, rb"^F OK")
        text = b"".join(untagged)
        self.assertEqual(len(re.findall(rb"\\Recent", text)), 3, text)
        self.assertEqual(len(re.findall(rb"\\Seen", text)), 1, text)   # the first of A2
        # a second session sees them too, and its own APPEND shows in the first at once
        d = self.login("seluser")
        self.assertIn(b"* 3 EXISTS\r\n", d.imap("S2", "SELECT INBOX")[1])
        d.send(b"A4 APPEND INBOX {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        self.assertIn(b"* 4 EXISTS\r\n", d.read_tagged("A4")[1])
        self.assertIn(b"* 4 EXISTS\r\n", c.imap("N", "NOOP")[1])
        lines = self.coffer.log_grep(r"append .*handle=", since)
        self.assertEqual([re.search(r"handle=(\w+)", l).group(1) for l in lines],
                         ["selected", "selected", "opened", "selected"], lines)

    def test_append_to_selected_recreated(self):
        """A mailbox deleted and made again under the selected one's name: the APPEND goes
        into the new mailbox, not through the old handle."""
        c = self.login("recreate")
        self.assertRegex(c.imap("C", "CREATE Box")[0], rb"^C OK")
        self.assertRegex(c.imap("S", "SELECT Box")[0], rb"^S OK")
        d = self.login("recreate")
        self.assertRegex(d.imap("D", "DELETE Box")[0], rb"^D OK")
        self.assertRegex(d.imap("C", "CREATE Box")[0], rb"^C OK")
        since = self.coffer.log_size()
        c.send(b"A1 APPEND Box {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        self.assertRegex(c.read_tagged("A1")[0], rb"^A1 OK \[APPENDUID \d+ 1\]")
        self.assertEqual(self.status(d, "Box")["MESSAGES"], 1)
        self.assertTrue(self.coffer.log_grep(r"append .*handle=opened", since))

    def test_append_to_selected_rights_and_quota(self):
        """The selected mailbox's handle is no licence: the 'i' right and the quota are
        checked for every APPEND, as another session changes them."""
        self.login("selowner").close()
        o = self.login("selowner")
        self.assertRegex(o.imap("C", "CREATE Box")[0], rb"^C OK")
        self.assertRegex(o.imap("A", 'SETACL Box selguest "lrsi"')[0], rb"^A OK")
        g = self.login("selguest")
        box = '"Other Users/selowner/Box"'
        self.assertRegex(g.imap("S", "SELECT " + box)[0], rb"^S OK")
        g.send(b"G1 APPEND %s {%d+}\r\n%s\r\n" % (box.encode(), len(MSG), MSG))
        self.assertRegex(g.read_tagged("G1")[0], rb"^G1 OK \[APPENDUID")
        self.assertRegex(o.imap("A", 'SETACL Box selguest "lrs"')[0], rb"^A OK")
        g.send(b"G2 APPEND %s {%d+}\r\n%s\r\n" % (box.encode(), len(MSG), MSG))
        self.assertRegex(g.read_tagged("G2")[0], rb"^G2 NO \[NOPERM\]")
        self.assertEqual(self.status(o, "Box")["MESSAGES"], 1)
        # quota: lowered by the administrator while the mailbox is selected
        q = self.login("selquota")
        self.assertRegex(q.imap("S", "SELECT INBOX")[0], rb"^S OK")
        self.coffer_tool("quota", "set", "user/selquota", "--messages", "10")
        q.send(b"Q1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        self.assertRegex(q.read_tagged("Q1")[0], rb"^Q1 OK \[APPENDUID")
        self.coffer_tool("quota", "set", "user/selquota", "--messages", "1")
        q.send(b"Q2 APPEND INBOX {%d+}\r\n%s\r\n" % (len(MSG), MSG))
        tagged, untagged = q.read_tagged("Q2")
        self.assertEqual(tagged, b"Q2 NO [OVERQUOTA] Quota exceeded\r\n")
        self.assertFalse([l for l in untagged if b"2 EXISTS" in l], untagged)
        self.coffer_tool("quota", "set", "user/selquota", "--messages", "10", "--storage", "1")
        big = MSG + b"y" * 2048 + b"\r\n"
        q.send(b"Q3 APPEND INBOX {%d+}\r\n%s\r\n" % (len(big), big))
        self.assertRegex(q.read_tagged("Q3")[0], rb"^Q3 NO \[OVERQUOTA\]")
        self.assertEqual(self.status(q, "INBOX")["MESSAGES"], 1)

    def test_imaplib_append(self):
        self.login("imaplibuser")
        m = imaplib.IMAP4(HOST, self.coffer.ports["imap"])
        m.login("imaplibuser", "imaplibuserpw")
        typ, data = m.append("INBOX", "(\\Seen \\Answered)",
                             imaplib.Time2Internaldate(time.time()), MSG)
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^\[APPENDUID \d+ 1\]")
        typ, data = m.status("INBOX", "(MESSAGES UNSEEN)")
        self.assertRegex(data[0], rb'^"?INBOX"? \(MESSAGES 1 UNSEEN 0\)$')
        m.logout()

    def test_curl_upload(self):
        c = self.login("curlup")
        with tempfile.NamedTemporaryFile(suffix=".eml") as f:
            f.write(MSG)
            f.flush()
            r = subprocess.run(["curl", "-s", "-S", "--max-time", "20", "-u", "curlup:curluppw",
                                "-T", f.name, "imap://%s:%d/INBOX" % (HOST, self.coffer.ports["imap"])],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.status(c, "INBOX")["MESSAGES"], 1)


if __name__ == "__main__":
    main()
