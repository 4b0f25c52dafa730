"""test_lmtp.py: LMTP delivery end to end (RFC 2033): commands and their exact status codes,
pipelining, per-recipient replies, byte-exact storage, dot-stuffing, bare LF, size limit, BDAT,
quota, plus addressing, shared mailboxes, duplicate suppression, single-instance store."""
import os
import shutil
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import CofferTestCase, main  # noqa: E402
from test_lmtp_lib import (LMTP_SERVICES, LmtpCase, add_user, body_of, coffer_cmd,  # noqa: E402
                           make_msg, mailbox_list, message, run_tool)


class LmtpProtocol(LmtpCase):
    coffer_kwargs = {"services": LMTP_SERVICES, "global_settings": {"max_literal": "20K"}}
    users = ("alice", "bob", "carol", "dave", "erin", "frank", "Gina")

    def test_lhlo_extensions(self):
        c = self.conn(lhlo=False)
        c.cmd("LHLO mta.test")
        code, lines = c.read_smtp_reply()
        self.assertEqual(code, 250)
        self.assertEqual(lines, [b"coffer.test", b"PIPELINING", b"ENHANCEDSTATUSCODES",
                                 b"8BITMIME", b"CHUNKING", b"SIZE 20480", b"STARTTLS",
                                 b"AUTH SCRAM-SHA-256 SCRAM-SHA-1"])

    def test_bad_sequences(self):
        c = self.conn(lhlo=False)
        for line, want in [
                ("MAIL FROM:<a@b>", b"503 5.5.1 Send LHLO first"),
                ("LHLO mta.test", None),
                ("RCPT TO:<alice>", b"503 5.5.1 Need MAIL command"),
                ("DATA", b"503 5.5.1 Need MAIL command"),
                ("MAIL FROM:<a@b>", b"250 2.1.0 Sender OK"),
                ("MAIL FROM:<a@b>", b"503 5.5.1 Nested MAIL command"),
                ("DATA", b"503 5.5.1 No valid recipients"),
                ("RCPT TO:<nosuchuser@x>", b"550 5.1.1 <nosuchuser@x> User unknown"),
                ("DATA", b"503 5.5.1 No valid recipients"),
                ("RCPT TO:alice", b"501 5.1.3 Bad recipient address syntax"),
                ("RCPT TO:<>", b"501 5.1.3 Bad recipient address syntax"),
                ("RCPT TO:<alice> FOO=1", b"555 5.5.4 Unsupported parameter"),
                ("RSET", b"250 2.0.0 OK"),
                ("RCPT TO:<alice>", b"503 5.5.1 Need MAIL command"),
                ("MAIL FROM:a@b", b"501 5.1.7 Bad sender address syntax"),
                ("MAIL TO:<a@b>", b"501 5.5.4 Syntax: MAIL FROM:<address>"),
                ("MAIL FROM:<a@b> SIZE=20481", b"552 5.3.4 Message size exceeds fixed maximum message size"),
                ("MAIL FROM:<a@b> SIZE=x", b"501 5.5.4 Syntax: SIZE=number"),
                ("MAIL FROM:<a@b> BODY=BINARYMIME", b"555 5.5.4 Unsupported BODY type"),
                ("MAIL FROM:<a@b> XYZ=1", b"555 5.5.4 Unsupported parameter XYZ=1"),
                ("MAIL FROM:<> SIZE=20480 BODY=8BITMIME", b"250 2.1.0 Sender OK"),
                ("DATA x", b"501 5.5.4 Syntax: DATA takes no parameters"),
                ("BDAT x", b"501 5.5.4 Syntax: BDAT size [LAST]"),
                ("QUIT", b"221 2.0.0 coffer.test closing connection")]:
            c.cmd(line)
            code, lines = c.read_smtp_reply()
            if want is not None:
                got = b"%d %s" % (code, lines[-1])
                self.assertEqual(got, want, line)

    def test_multi_recipient_pipelined(self):
        before_b = len(mailbox_list(self.coffer, "user/bob"))
        before_c = len(mailbox_list(self.coffer, "user/carol"))
        rr, dr = self.transact(["bob@example.org", "ghost@example.org", "carol@example.org"],
                               make_msg("multi1@x"))
        self.assertEqual([r[0] for r in rr], [250, 550, 250])
        self.assertEqual(dr, [(250, [b"2.1.5 <bob@example.org> Delivered"]),
                              (250, [b"2.1.5 <carol@example.org> Delivered"])])
        self.assertEqual(len(mailbox_list(self.coffer, "user/bob")), before_b + 1)
        self.assertEqual(len(mailbox_list(self.coffer, "user/carol")), before_c + 1)

    def test_two_transactions_in_one_write(self):
        c = self.conn()
        m = make_msg("pipe2@x")
        one = b"MAIL FROM:<s@x>\r\nRCPT TO:<dave>\r\nDATA\r\n"
        c.send(one + m + b".\r\n" + one.replace(b"DATA", b"RCPT TO:<erin>\r\nDATA") +
               make_msg("pipe3@x") + b".\r\nQUIT\r\n")
        codes = [c.read_smtp_reply()[0] for _ in range(4 + 6)]
        self.assertEqual(codes, [250, 250, 354, 250, 250, 250, 250, 354, 250, 250])
        self.assertEqual(c.read_smtp_reply()[0], 221)

    def test_stored_bytes_exact_dotstuffing_bare_lf(self):
        c = self.conn()
        c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<frank>\r\nDATA\r\n")
        self.assertEqual([c.read_smtp_reply()[0] for _ in range(3)], [250, 250, 354])
        wire = (b"Subject: dots\r\nMessage-ID: <dots@x>\r\n\r\n"
                b"..leading dot\r\n"          # stuffed: stored as ".leading dot"
                b"...two\r\n"                 # stored as "..two"
                b"bare lf line\n"             # stored with CRLF
                b"cr \r inside\r\n"           # a bare CR is data
                b". \r\n"                     # not the end: stored as " "
                b"\xff\xfe 8bit\r\n"
                b"last line bare lf\n"
                b".\r\n"                      # after a bare LF: data, not the end (L11)
                b"end\r\n"
                b".\r\n")
        c.send(wire)
        self.assertEqual(c.read_smtp_reply(), (250, [b"2.1.5 <frank> Delivered"]))
        uid = mailbox_list(self.coffer, "user/frank")[-1][0]
        stored = message(self.coffer, "user/frank", uid)
        self.assertEqual(body_of(stored),
                         b"Subject: dots\r\nMessage-ID: <dots@x>\r\n\r\n.leading dot\r\n..two\r\n"
                         b"bare lf line\r\ncr \r inside\r\n \r\n\xff\xfe 8bit\r\n"
                         b"last line bare lf\r\n.\r\nend\r\n")
        self.assertTrue(stored.startswith(
            b"Return-Path: <s@x>\r\nReceived: from mta.test (127.0.0.1:"), stored[:120])
        self.assertIn(b")\r\n\tby coffer.test (Coffer) with LMTP id ", stored)

    def test_fence_dir_remade(self):
        """lmtpd makes configdir/fence (the delivery lock) when it is missing, not before every
        message: removed while the server runs, it is made again by the next delivery."""
        shutil.rmtree(os.path.join(self.coffer.configdir, "fence"), ignore_errors=True)
        before = len(mailbox_list(self.coffer, "user/erin"))
        rr, dr = self.transact(["erin@example.org"], make_msg("remade@x"))
        self.assertEqual([r[0] for r in rr], [250])
        self.assertEqual(dr, [(250, [b"2.1.5 <erin@example.org> Delivered"])])
        self.assertEqual(len(mailbox_list(self.coffer, "user/erin")), before + 1)
        self.assertTrue(os.path.isfile(os.path.join(self.coffer.configdir, "fence", ".lock")))

    def test_null_sender_and_unix_socket(self):
        rr, dr = self.transact(["alice"], make_msg("unix1@x"), sender="", service="lmtpunix")
        self.assertEqual(dr, [(250, [b"2.1.5 <alice> Delivered"])])
        uid = mailbox_list(self.coffer, "user/alice")[-1][0]
        stored = message(self.coffer, "user/alice", uid)
        self.assertTrue(stored.startswith(b"Return-Path: <>\r\nReceived: from mta.test (unix)"),
                        stored[:80])

    def test_size_limit_while_reading(self):
        before = len(mailbox_list(self.coffer, "user/bob"))
        big = make_msg("big@x", body=b"x" * 100 + b"\r\n") * 1 + (b"y" * 998 + b"\r\n") * 21
        rr, dr = self.transact(["bob", "carol"], big)
        self.assertEqual(dr, [(552, [b"5.3.4 <bob> Message size exceeds fixed maximum message size"]),
                              (552, [b"5.3.4 <carol> Message size exceeds fixed maximum message size"])])
        self.assertEqual(len(mailbox_list(self.coffer, "user/bob")), before)
        # the session goes on
        rr, dr = self.transact(["bob"], make_msg("small@x"))
        self.assertEqual(dr[0][0], 250)

    def test_bdat(self):
        c = self.conn()
        part1 = b"Subject: chunks\r\nMessage-ID: <bdat1@x>\r\n\r\n.line one\r\n"
        part2 = b"line two\r\n"
        c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<erin>\r\nRCPT TO:<ghost>\r\nRCPT TO:<dave>\r\n"
               b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
        self.assertEqual([c.read_smtp_reply()[0] for _ in range(4)], [250, 250, 550, 250])
        self.assertEqual(c.read_smtp_reply(), (250, [b"2.0.0 %d octets received" % len(part1)]))
        self.assertEqual(c.read_smtp_reply(), (250, [b"2.1.5 <erin> Delivered"]))
        self.assertEqual(c.read_smtp_reply(), (250, [b"2.1.5 <dave> Delivered"]))
        uid = mailbox_list(self.coffer, "user/erin")[-1][0]
        self.assertEqual(body_of(message(self.coffer, "user/erin", uid)), part1 + part2)
        # BDAT without recipients: the chunk is read past and refused
        c.send(b"MAIL FROM:<s@x>\r\nBDAT 5 LAST\r\nabcdeNOOP\r\n")
        self.assertEqual(c.read_smtp_reply()[0], 250)
        self.assertEqual(c.read_smtp_reply(), (503, [b"5.5.1 No valid recipients"]))
        self.assertEqual(c.read_smtp_reply()[0], 250)
        # too big over chunks
        c.send(b"RSET\r\nMAIL FROM:<s@x>\r\nRCPT TO:<erin>\r\nBDAT 15000\r\n" + b"z" * 15000 +
               b"BDAT 15000 LAST\r\n" + b"z" * 15000)
        self.assertEqual([c.read_smtp_reply()[0] for _ in range(4)], [250, 250, 250, 250])
        self.assertEqual(c.read_smtp_reply(),
                         (552, [b"5.3.4 <erin> Message size exceeds fixed maximum message size"]))

    def test_user_case_and_smtplib(self):
        s = self.coffer.lmtp()
        s.ehlo_or_helo_if_needed = lambda: s.ehlo("mta.test")
        # smtplib reads one reply after DATA: one good recipient per transaction
        self.assertEqual(s.sendmail("s@x", ["ALICE@example.org"], make_msg("case1@x")), {})
        self.assertEqual(s.sendmail("s@x", ["Gina@example.org"], make_msg("case1@x")), {})
        # a user name with capitals is only found as it is
        self.assertEqual(s.sendmail("s@x", ["gina@example.org", "bob"], make_msg("case2@x")),
                         {"gina@example.org": (550, b"5.1.1 <gina@example.org> User unknown")})
        s.quit()
        self.assertTrue(mailbox_list(self.coffer, "user/Gina"))
        self.assertIn(b"<case1@x>", message(self.coffer, "user/alice",
                                            mailbox_list(self.coffer, "user/alice")[-1][0]))

    def test_duplicate_suppression(self):
        before = len(mailbox_list(self.coffer, "user/dave"))
        mark = self.coffer.log_size()
        for _ in range(2):
            rr, dr = self.transact(["dave"], make_msg("dup1@x"))
            self.assertEqual(dr, [(250, [b"2.1.5 <dave> Delivered"])])
        self.assertEqual(len(mailbox_list(self.coffer, "user/dave")), before + 1)
        self.coffer.wait_log(r"event=duplicate_suppressed .*user=dave mailbox=user/dave .*"
                             r"msgid=<dup1@x>", since=mark)
        # another mailbox still gets it; no Message-ID is never suppressed
        self.assertEqual(self.transact(["erin"], make_msg("dup1@x"))[1][0][0], 250)
        for _ in range(2):
            self.transact(["dave"], make_msg(None))
        self.assertEqual(len(mailbox_list(self.coffer, "user/dave")), before + 3)
        # the same mailbox twice in one transaction: one copy, two 250s
        rr, dr = self.transact(["dave", "DAVE"], make_msg("dup2@x"))
        self.assertEqual([d[0] for d in dr], [250, 250])
        self.assertEqual(len(mailbox_list(self.coffer, "user/dave")), before + 4)

    def test_single_instance_store(self):
        rr, dr = self.transact(["alice", "bob", "carol"], make_msg("sis1@x"))
        self.assertEqual([d[0] for d in dr], [250, 250, 250])
        inodes = set()
        for u in ("alice", "bob", "carol"):
            uid = mailbox_list(self.coffer, "user/" + u)[-1][0]
            inodes.add(run_tool(self.coffer, "inode", "user/" + u, str(uid)).strip())
        self.assertEqual(len(inodes), 1)

    def test_plus_addressing_and_shared(self):
        co = self.coffer
        run_tool(co, "create", "user/bob/lists", "bob=lrswipkxtea,anyone=p")
        run_tool(co, "create", "user/bob/private", "bob=lrswipkxtea")
        run_tool(co, "create", "shared1", "anyone=lrp")
        run_tool(co, "create", "closed", "anyone=lr")
        n_inbox = len(mailbox_list(co, "user/bob"))
        rr, dr = self.transact(["bob+lists@x", "bob+private@x", "bob+nonexistent@x",
                                "+shared1@x", "+closed@x", "+nothere@x", "+user/bob/lists@x"],
                               make_msg("plus1@x"))
        self.assertEqual([r[0] for r in rr], [250, 250, 250, 250, 550, 550, 550])
        self.assertEqual([d[0] for d in dr], [250, 250, 250, 250])
        self.assertEqual(len(mailbox_list(co, "user/bob/lists")), 1)
        self.assertEqual(len(mailbox_list(co, "user/bob/private")), 0)
        # private and nonexistent both fell back to the INBOX: one copy there
        self.assertEqual(len(mailbox_list(co, "user/bob")), n_inbox + 1)
        self.assertEqual(len(mailbox_list(co, "shared1")), 1)

    def test_quota(self):
        co = self.coffer
        add_user(co, "quser")
        add_user(co, "quser2")
        # first delivery creates the INBOX, then it gets a quota of 2 KiB and 3 messages
        # (a new root counts what its mailboxes already hold at its first settle: q0 too)
        self.assertEqual(self.transact(["quser"], make_msg("q0@x"))[1][0][0], 250)
        run_tool(co, "quota", "user/quser", "2", "3")
        self.assertEqual(self.transact(["quser"], make_msg("q1@x"))[1][0][0], 250)
        self.assertEqual(run_tool(co, "usage", "user/quser").split()[1], b"2")
        # too big for the storage limit at DATA: this recipient only
        big = make_msg("q2@x", body=b"b" * 2500 + b"\r\n")
        rr, dr = self.transact(["quser", "quser2"], big)
        self.assertEqual(dr, [(452, [b"4.2.2 <quser> Mailbox over quota"]),
                              (250, [b"2.1.5 <quser2> Delivered"])])
        self.assertEqual(len(mailbox_list(co, "user/quser")), 2)
        self.assertEqual(self.transact(["quser"], make_msg("q3@x"))[1][0][0], 250)
        # now at the message limit: refused at RCPT already
        rr, dr = self.transact(["quser", "quser2"], make_msg("q4@x"))
        self.assertEqual(rr[0], (452, [b"4.2.2 <quser> Mailbox over quota"]))
        self.assertEqual(dr, [(250, [b"2.1.5 <quser2> Delivered"])])
        usage = run_tool(co, "usage", "user/quser").split()
        self.assertEqual(usage[1], b"3")      # q0, q1 and q3

    def test_coffer_deliver(self):
        co = self.coffer
        run_tool(co, "create", "user/carol/inbound", "carol=lrswipkxtea,anyone=p")
        msg = b"Subject: piped\nMessage-ID: <pipe1@x>\n\n.dot line\nend"
        r = coffer_cmd(co, "deliver", "-f", "mta@x", "-m", "inbound", "carol", input=msg)
        self.assertEqual(r.returncode, 0, r.stderr)
        uid = mailbox_list(co, "user/carol/inbound")[-1][0]
        stored = message(co, "user/carol/inbound", uid)
        self.assertTrue(stored.startswith(b"Return-Path: <mta@x>\r\n"), stored[:60])
        self.assertEqual(body_of(stored),
                         b"Subject: piped\r\nMessage-ID: <pipe1@x>\r\n\r\n.dot line\r\nend\r\n")
        r = coffer_cmd(co, "deliver", "nosuchuser", input=msg)
        self.assertEqual(r.returncode, 67, r.stderr)        # EX_NOUSER
        self.assertIn(b"550 5.1.1", r.stderr)
        r = coffer_cmd(co, "deliver", "carol", input=b"x" * 30000)
        self.assertEqual(r.returncode, 65, r.stderr)        # EX_DATAERR: 552 5.3.4
        run_tool(co, "quota", "user/erin", "1", "-1")
        r = coffer_cmd(co, "deliver", "erin", input=b"Subject: q\n\n" + b"e" * 3000)
        self.assertEqual(r.returncode, 75, r.stderr)        # EX_TEMPFAIL: 452 4.2.2
        run_tool(co, "quota", "user/erin", "-1", "-1")

    def test_swaks(self):
        if not shutil.which("swaks"):
            self.skipTest("swaks not installed")
        r = subprocess.run(["swaks", "--protocol", "LMTP", "--server", "127.0.0.1",
                            "--port", str(self.coffer.ports["lmtp"]), "--helo", "mta.test",
                            "--from", "s@x", "--to", "carol@example.org,ghost@example.org",
                            "--header", "Message-ID: <swaks1@x>"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode(errors="replace")
        self.assertIn("<** 550 5.1.1 <ghost@example.org> User unknown", out)
        self.assertIn("<-  250 2.1.5 <carol@example.org> Delivered", out)


class LmtpSpool(CofferTestCase):
    """DATA keeps a message that fits its 1 MiB write buffer in memory and spools a larger
    one to an unlinked file in configdir/tmp (made when missing): both are stored byte for
    byte; only the larger one needs the spool directory."""

    def deliver(self, co, msgid, body):
        c = co.connect("lmtp")
        c.read_smtp_reply()
        c.cmd("LHLO x")
        c.read_smtp_reply()
        c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<pat>\r\nDATA\r\n")
        self.assertEqual([c.read_smtp_reply()[0] for _ in range(3)], [250, 250, 354])
        # dot-stuffed lines and bare LFs on the wire, as in test_stored_bytes_exact
        wire = body.replace(b"\r\n.", b"\r\n..")
        c.send(make_msg(msgid) + wire + b".\r\n")
        reply = c.read_smtp_reply()
        c.close()
        return reply

    def test_memory_and_file(self):
        co = self.new_coffer(services=LMTP_SERVICES, global_settings={"max_literal": "8M"})
        add_user(co, "pat")
        line = b"0123456789abcdef.line with a dot\r\n.starts with a dot\r\n"
        mem = 1 << 20                   # cmd-data.c DATA_MEMORY_MAX
        big = 3 * mem // len(line)      # spooled, in three pieces and a rest
        sizes = (10, 6000, mem // len(line) - 2, mem // len(line), mem // len(line) + 1, big)
        for k, n in enumerate(sizes):
            body = line * n + b"bare lf\n" + b"end\r\n"
            self.assertEqual(self.deliver(co, "sp%d@x" % k, body),
                             (250, [b"2.1.5 <pat> Delivered"]), n)
            uid = mailbox_list(co, "user/pat")[-1][0]
            stored = message(co, "user/pat", uid)
            self.assertEqual(body_of(stored),
                             make_msg("sp%d@x" % k) + body.replace(b"bare lf\n", b"bare lf\r\n"), n)
        # the spool directory cannot be made (a file in its place): a message that fits the
        # buffer is still delivered, a larger one gets a temporary failure and nothing stored
        tmp = os.path.join(co.configdir, "tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with open(tmp, "w") as f:
            f.write("not a directory\n")
        n = len(mailbox_list(co, "user/pat"))
        self.assertEqual(self.deliver(co, "small@x", line * 6000), (250, [b"2.1.5 <pat> Delivered"]))
        self.assertEqual(self.deliver(co, "big@x", line * big)[0], 451)
        self.assertEqual(len(mailbox_list(co, "user/pat")), n + 1)
        os.unlink(tmp)
        self.assertEqual(self.deliver(co, "big2@x", line * big), (250, [b"2.1.5 <pat> Delivered"]))
        self.assertEqual(os.listdir(tmp), [])       # made again, and the spool file unlinked


class LmtpSettings(CofferTestCase):
    """lmtp_overquota_permanent = yes, lmtp_autocreate_inbox = no."""

    def test_permanent_quota_no_autocreate(self):
        co = self.new_coffer(services=LMTP_SERVICES, global_settings={
            "lmtp_overquota_permanent": "yes", "lmtp_autocreate_inbox": "no"})
        add_user(co, "pat")
        add_user(co, "quinn")
        run_tool(co, "create", "user/pat")
        run_tool(co, "quota", "user/pat", "1", "-1")
        c = co.connect("lmtp")
        c.read_smtp_reply()
        c.cmd("LHLO x")
        c.read_smtp_reply()
        c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<quinn>\r\nRCPT TO:<pat>\r\nDATA\r\n")
        self.assertEqual(c.read_smtp_reply()[0], 250)
        self.assertEqual(c.read_smtp_reply(), (550, [b"5.1.1 <quinn> User unknown"]))
        self.assertEqual(c.read_smtp_reply()[0], 250)
        self.assertEqual(c.read_smtp_reply()[0], 354)
        c.send(make_msg("perm@x", body=b"p" * 2000 + b"\r\n") + b".\r\n")
        self.assertEqual(c.read_smtp_reply(), (552, [b"5.2.2 <pat> Mailbox over quota"]))
        c.close()
        self.assertEqual(mailbox_list(co, "user/quinn"), [])


if __name__ == "__main__":
    main()
