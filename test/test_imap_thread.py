"""test_imap_thread.py: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 sections 3 and
4) end to end: References chains, In-Reply-To alone, siblings sorted by sent date (Date:
normalized to UTC), a dummy parent for a missing message, a reference loop, a message without
Message-ID merged by subject, the parenthesised thread-list, the UID form, search criteria,
an empty result, BAD for malformed commands, NO [BADCHARSET], and the r right."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

USERS = {"fred": "fredpw", "joe": "joepw", "boss": "bosspw"}

# (subject, Date:, Message-ID, References, In-Reply-To)
MSGS = [
    ("topic", "Mon, 2 Jan 2023 10:00:00 +0000", "<1@t>", None, None),
    ("Re: topic", "Mon, 2 Jan 2023 11:00:00 +0000", "<2@t>", "<1@t>", None),
    ("Re: topic", "Mon, 2 Jan 2023 12:00:00 +0000", "<3@t>", "<1@t>\r\n <2@t>", None),
    ("Re: topic", "Mon, 2 Jan 2023 12:30:00 +0100", "<4@t>", None, "<1@t> (in reply)"),
    ("other", "Sun, 1 Jan 2023 08:00:00 +0000", "<5@t>", None, None),
    ("Re: third", "Tue, 3 Jan 2023 09:00:00 +0000", "<6@t>", "<missing@t>", None),
    ("Re: third", "Tue, 3 Jan 2023 08:00:00 +0000", "<7@t>", "<missing@t>", None),
    ("loop", "Wed, 4 Jan 2023 10:00:00 +0000", "<8@t>", "<9@t>", None),
    ("Re: loop", "Wed, 4 Jan 2023 09:00:00 +0000", "<9@t>", "<8@t>", None),
    ("Re: other", "Thu, 5 Jan 2023 09:00:00 +0000", None, None, None),
]

REFERENCES = "(5 10)(1 (2 3)(4))((7)(6))(9 8)"
ORDEREDSUBJECT = "(5 10)(1 (2)(4)(3))(7 6)(9 8)"


def message(i):
    subj, date, mid, refs, irt = MSGS[i - 1]
    h = "From: a@example\r\nSubject: %s\r\nDate: %s\r\n" % (subj, date)
    if mid:
        h += "Message-ID: %s\r\n" % mid
    if refs:
        h += "References: %s\r\n" % refs
    if irt:
        h += "In-Reply-To: %s\r\n" % irt
    return h + "\r\nbody %d\r\n" % i


class Thread(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "boss"}}

    def make_box(self, name, msgs):
        c = self.conn("fred")
        self.ok(c, 'CREATE "%s"' % name)
        for m in msgs:
            self.ok(c, 'APPEND "%s" {%d+}\r\n%s' % (name, len(m.encode()), m))
        c.imap("z", "LOGOUT")

    def box(self, name):
        self.make_box(name, [message(i) for i in range(1, len(MSGS) + 1)])
        c = self.conn("fred")
        self.ok(c, 'SELECT "%s"' % name)
        uids = [int(x) for x in re.findall(rb"UID (\d+)", b"".join(self.ok(c, "FETCH 1:* UID")))]
        return c, uids

    def thread(self, c, text, tag="t"):
        untagged = self.ok(c, text, tag=tag)
        lines = [u.rstrip(b"\r\n").decode() for u in untagged if u.startswith(b"* THREAD")]
        self.assertEqual(len(lines), 1, untagged)
        return lines[0][len("* THREAD"):].lstrip(" ")

    def bad(self, c, text, tag="b"):
        tagged, untagged = c.imap(tag, text)
        self.assertRegex(tagged, rb"^" + tag.encode() + rb" BAD ", (text, tagged))

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(c.imap("c", "CAPABILITY")[1]).split()
        self.assertIn(b"THREAD=ORDEREDSUBJECT", caps)
        self.assertIn(b"THREAD=REFERENCES", caps)

    def test_references(self):
        c, uids = self.box("refs")
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 ALL"), REFERENCES)
        uid_form = re.sub(r"\d+", lambda m: str(uids[int(m.group(0)) - 1]), REFERENCES)
        self.assertEqual(self.thread(c, "UID THREAD REFERENCES US-ASCII ALL"), uid_form)
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 SUBJECT topic"),
                         "(1 (2 3)(4))")
        # without the root message: its children under a dummy
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 2:4"), "((2 3)(4))")
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 SUBJECT nosuch"), "")
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 5"), "(5)")

    def test_orderedsubject(self):
        c, uids = self.box("os")
        self.assertEqual(self.thread(c, "THREAD ORDEREDSUBJECT UTF-8 ALL"), ORDEREDSUBJECT)
        uid_form = re.sub(r"\d+", lambda m: str(uids[int(m.group(0)) - 1]), ORDEREDSUBJECT)
        self.assertEqual(self.thread(c, "UID THREAD ORDEREDSUBJECT UTF-8 ALL"), uid_form)
        self.assertEqual(self.thread(c, "THREAD ORDEREDSUBJECT UTF-8 NOT SUBJECT topic"),
                         "(5 10)(7 6)(9 8)")

    def test_encoded_and_duplicates(self):
        msgs = [
            "Subject: =?UTF-8?Q?caf=C3=A9?=\r\nMessage-ID: <d@t>\r\n"
            "Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n\r\n.\r\n",
            "Subject: Re: =?ISO-8859-1?Q?CAF=C9?=\r\nMessage-ID: <d@t>\r\n"
            "Date: Mon, 2 Jan 2023 11:00:00 +0000\r\n\r\n.\r\n",
            "Subject: Fwd: other (fwd)\r\nReferences: <d@t>\r\n"
            "Date: Mon, 2 Jan 2023 12:00:00 +0000\r\n\r\n.\r\n",
        ]
        self.make_box("enc", msgs)
        c = self.conn("fred")
        self.ok(c, 'SELECT "enc"')
        # 2 has 1's id (a duplicate: its own container) and joins 1 by subject
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 ALL"), "(1 (2)(3))")
        self.assertEqual(self.thread(c, "THREAD ORDEREDSUBJECT UTF-8 ALL"), "(1 2)(3)")

    def test_bad(self):
        c, _ = self.box("bad")
        for text in ("THREAD", "THREAD REFERENCES", "THREAD REFERENCES UTF-8",
                     "THREAD FOO UTF-8 ALL", "THREAD (REFERENCES) UTF-8 ALL",
                     "THREAD REFERENCES UTF-8 FROB", "UID THREAD ORDEREDSUBJECT",
                     "THREAD REFERENCES UTF-8 CHARSET UTF-8 ALL"):
            with self.subTest(text=text):
                self.bad(c, text)
        self.no(c, "THREAD REFERENCES KOI8-R ALL", r"BADCHARSET \(US-ASCII UTF-8\)")
        self.assertEqual(self.thread(c, "THREAD REFERENCES UTF-8 ALL"), REFERENCES)
        d = self.conn("fred")
        self.bad(d, "THREAD REFERENCES UTF-8 ALL")

    def test_rights(self):
        self.make_box("noread", [message(1), message(2)])
        f, j = self.conn("fred"), self.conn("joe")
        self.ok(f, 'SETACL "noread" joe "l"')
        self.no(j, 'SELECT "Other Users/fred/noread"', "NOPERM")
        self.bad(j, "THREAD REFERENCES UTF-8 ALL")
        self.ok(f, 'SETACL "noread" joe "lr"')
        self.ok(j, 'EXAMINE "Other Users/fred/noread"')
        self.assertEqual(self.thread(j, "THREAD REFERENCES UTF-8 ALL"), "(1 2)")

    def test_rights_none_and_admin(self):
        self.make_box("private", [message(1), message(2)])
        # no rights at all: the mailbox does not exist for joe, and nothing is selected
        j = self.conn("joe")
        self.no(j, 'EXAMINE "Other Users/fred/private"', "NONEXISTENT")
        self.bad(j, "THREAD REFERENCES UTF-8 ALL")
        # an administrator has every right (imapd(8)): threads fred's mailbox
        b = self.conn("boss")
        self.ok(b, 'EXAMINE "Other Users/fred/private"')
        self.assertEqual(self.thread(b, "THREAD REFERENCES UTF-8 ALL"), "(1 2)")
        self.assertEqual(self.thread(b, "UID THREAD REFERENCES UTF-8 ALL"), "(1 2)")


if __name__ == "__main__":
    main()
