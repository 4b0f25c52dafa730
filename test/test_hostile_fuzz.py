"""test_hostile_fuzz.py: end-to-end checks for the bugs the fuzz targets found (issue 11, the
fuzzing part). Each has a regression seed in test/fuzz/corpus as well; this file shows the
effect on a running server where there is one."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import main  # noqa: E402
from test_lmtp_lib import LmtpCase  # noqa: E402


class LmtpPaths(LmtpCase):
    users = ("alice",)

    def test_fuzz_lmtp_quoted_pair_control(self):
        # fuzz-lmtp: a backslash in a quoted local part escaped any byte, so a CR (or other
        # control byte) got into the reverse path, and from there into Return-Path and into
        # the replies that echo an address. RFC 5321 section 4.1.2: quoted-pairSMTP is a
        # backslash and a printable character.
        c = self.conn()
        for esc in (b"\r", b"\t", b"\x01", b"\x7f"):
            c.send(b'MAIL FROM:<"a\\' + esc + b'X-Injected: 1"@example.org>\r\n')
            self.assertEqual(c.read_smtp_reply(), (501, [b"5.1.7 Bad sender address syntax"]))
        c.send(b'MAIL FROM:<"a\\"b\\\\c"@example.org>\r\n')     # printable escapes still work
        self.assertEqual(c.read_smtp_reply()[0], 250)
        c.send(b'RCPT TO:<"ali\\\rce"@example.org>\r\n')
        self.assertEqual(c.read_smtp_reply(), (501, [b"5.1.3 Bad recipient address syntax"]))


if __name__ == "__main__":
    main()
