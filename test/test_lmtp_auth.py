"""test_lmtp_auth.py: LMTP AUTH (RFC 4954): offered in LHLO under TLS (or with
allow_plaintext), administrators only, lmtp_require_auth gating MAIL on TCP but not on the UNIX
socket, cancel and bad base64, and forgetting AUTH across STARTTLS."""
import base64
import os
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import main  # noqa: E402
from test_lmtp_lib import LMTP_SERVICES, LmtpCase, make_msg  # noqa: E402


def b64(s):
    return base64.b64encode(s.encode()).decode()


class LmtpAuth(LmtpCase):
    coffer_kwargs = {"services": LMTP_SERVICES,
                     "global_settings": {"lmtp_require_auth": "yes", "admins": "mta"}}
    users = ("alice", "mta")

    def tls_conn(self):
        c = self.conn()
        c.cmd("STARTTLS")
        self.assertEqual(c.read_smtp_reply()[0], 220)
        c.starttls(self.coffer.ssl_context())
        c.cmd("LHLO mta.test")
        code, lines = c.read_smtp_reply()
        self.assertEqual(code, 250)
        return c, lines

    def test_not_offered_in_plaintext_and_mail_refused(self):
        c = self.conn()
        c.cmd("LHLO again")
        code, lines = c.read_smtp_reply()
        auth = [l for l in lines if l.startswith(b"AUTH")]
        # without TLS only non-plaintext mechanisms may be offered
        self.assertTrue(all(b"PLAIN" not in l and b"LOGIN" not in l for l in auth), lines)
        c.cmd("MAIL FROM:<a@b>")
        self.assertEqual(c.read_smtp_reply()[0], 530)
        c.cmd("AUTH PLAIN " + b64("\0mta\0secret"))
        self.assertEqual(c.read_smtp_reply()[0], 504)

    def test_admin_auth_then_delivery(self):
        c, lines = self.tls_conn()
        self.assertTrue(any(l.startswith(b"AUTH ") and b"PLAIN" in l for l in lines), lines)
        c.cmd("MAIL FROM:<a@b>")
        self.assertEqual(c.read_smtp_reply()[0], 530)
        c.cmd("AUTH PLAIN " + b64("\0mta\0wrong"))
        self.assertEqual(c.read_smtp_reply()[0], 535)
        c.cmd("AUTH PLAIN")                                  # no initial response: 334 first
        code, lines = c.read_smtp_reply()
        self.assertEqual((code, lines), (334, [b""]))
        c.cmd(b64("\0mta\0secret"))
        self.assertEqual(c.read_smtp_reply()[0], 235)
        c.cmd("AUTH PLAIN " + b64("\0mta\0secret"))
        self.assertEqual(c.read_smtp_reply()[0], 503)       # once per session
        c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<alice>\r\nDATA\r\n")
        self.assertEqual([c.read_smtp_reply()[0] for _ in range(3)], [250, 250, 354])
        c.send(make_msg("authed@x") + b".\r\n")
        self.assertEqual(c.read_smtp_reply()[0], 250)
        self.assertTrue(self.coffer.wait_log(r"event=login .*service=lmtp authid=mta", 5))

    def test_non_admin_refused_cancel_and_bad_base64(self):
        c, _ = self.tls_conn()
        c.cmd("AUTH PLAIN " + b64("\0alice\0secret"))
        self.assertEqual(c.read_smtp_reply()[0], 535)        # good password, not an admin
        c.cmd("AUTH PLAIN")
        self.assertEqual(c.read_smtp_reply()[0], 334)
        c.cmd("*")
        self.assertEqual(c.read_smtp_reply()[0], 501)
        c.cmd("AUTH PLAIN !!notbase64")
        self.assertEqual(c.read_smtp_reply()[0], 501)
        c.cmd("AUTH")
        self.assertEqual(c.read_smtp_reply()[0], 501)
        c.cmd("AUTH X-NOPE")
        self.assertEqual(c.read_smtp_reply()[0], 504)
        c.cmd("MAIL FROM:<a@b>")
        self.assertEqual(c.read_smtp_reply()[0], 530)

    def test_smtplib_login(self):
        s = self.coffer.lmtp()
        self.addCleanup(s.close)
        s.starttls(context=self.coffer.ssl_context())
        s.login("mta", "secret")
        refused = s.sendmail("s@x", ["alice"], make_msg("smtplib@x"))
        self.assertEqual(refused, {})

    def test_unix_socket_needs_no_auth(self):
        c = self.conn("lmtpunix")
        c.send(b"MAIL FROM:<s@x>\r\nRCPT TO:<alice>\r\nDATA\r\n")
        self.assertEqual([c.read_smtp_reply()[0] for _ in range(3)], [250, 250, 354])
        c.send(make_msg("unix@x") + b".\r\n")
        self.assertEqual(c.read_smtp_reply()[0], 250)


if __name__ == "__main__":
    main()
