"""test_imap_listext.py: LIST-EXTENDED (RFC 5258) end to end, from the examples of its section 5
with the mailbox names adapted: the selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH and
SPECIAL-USE (RFC 6154), the return options SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS (RFC
5819), several patterns in one LIST, \\NonExistent (also for a subscribed mailbox deleted since),
\\Subscribed, CHILDINFO with RECURSIVEMATCH, BAD for unknown options and for RECURSIVEMATCH alone
(section 3), LSUB unchanged, other users' mailboxes shown only with the l right, and modified
UTF-7 and quoted names."""
import os
import random
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coffer_harness import ImapUsersTestCase, main  # noqa: E402

LIST_RX = re.compile(rb'^\* (LIST|LSUB) \(([^)]*)\) "/" "((?:[^"\\]|\\.)*)"(?: (.*))?\r\n$')
MSG = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n"

USERS = {u: u + "pw" for u in ("fred", "ex", "multi", "su", "gone", "owner", "viewer", "admin",
                               "utf", "stat", "bad", "rnd", "sharer", "reader", "kidown",
                               "kidview")}


def parse_list(untagged, verb=b"LIST"):
    """{name: (set(attributes), extended data or None)}; fails on a line it cannot parse and
    on a name sent twice."""
    out = {}
    for line in untagged:
        if line.startswith(b"* STATUS"):
            continue
        m = LIST_RX.match(line)
        assert m and m.group(1) == verb, "unparsable: %r" % line
        name = re.sub(r'\\(.)', r'\1', m.group(3).decode())
        assert name not in out, "sent twice: %r" % line
        ext = m.group(4).decode() if m.group(4) is not None else None
        out[name] = (set(m.group(2).decode().split()), ext)
    return out


def attrs(got):
    return {n: a for n, (a, _) in got.items()}


CHILDINFO = '("CHILDINFO" ("SUBSCRIBED"))'


class ListExtended(ImapUsersTestCase):
    users = USERS
    coffer_kwargs = {"global_settings": {"allow_plaintext": "yes", "auth_fail_delay": "0",
                                         "admins": "admin"}}

    def lst(self, c, text):
        return parse_list(self.ok(c, text))

    def bad(self, c, text):
        tagged, untagged = c.imap("b", text)
        self.assertRegex(tagged, rb"^b BAD ", text)
        self.assertEqual(untagged, [], text)

    def fruit(self, user):
        """RFC 5258 section 5's hierarchy, and its subscriptions (Fruit/Peach does not exist)."""
        c = self.conn(user)
        for name in ("Fruit/Apple", "Fruit/Banana", "Tofu", "Vegetable/Broccoli",
                     "Vegetable/Corn"):
            self.ok(c, "CREATE " + name)
        for name in ("Fruit/Banana", "Fruit/Peach", "Vegetable", "Vegetable/Broccoli"):
            self.ok(c, "SUBSCRIBE " + name)
        return c

    def test_capability(self):
        c = self.conn("fred")
        caps = b"".join(self.ok(c, "CAPABILITY"))
        self.assertIn(b" LIST-EXTENDED", caps)
        self.assertIn(b" STATUS=SIZE", caps)

    def test_rfc5258_examples(self):
        c = self.fruit("ex")
        # example 1: the basic forms keep their meaning, and give \HasChildren/\HasNoChildren
        got = attrs(self.lst(c, 'LIST "" %'))
        self.assertEqual(set(got), {"INBOX", "Fruit", "Tofu", "Vegetable"})
        self.assertEqual(got["Fruit"], {"\\HasChildren"})
        self.assertEqual(got["Tofu"], {"\\HasNoChildren"})
        self.assertEqual(attrs(self.lst(c, 'LIST () "" %')), got)
        self.assertEqual(attrs(self.lst(c, 'LIST (REMOTE) "" %')), got)
        self.assertEqual(attrs(self.lst(c, 'LIST "" % RETURN (CHILDREN)')), got)
        # example 2 ("LIST (SUBSCRIBED) "" *"): subscribed names only, \Subscribed on each,
        # a subscribed name that does not exist is \NonExistent
        got = self.lst(c, 'LIST (SUBSCRIBED) "" *')
        got.pop("INBOX", None)
        self.assertEqual(attrs(got), {
            "Fruit/Banana": {"\\Subscribed", "\\HasNoChildren"},
            "Fruit/Peach": {"\\Subscribed", "\\NonExistent"},
            "Vegetable": {"\\Subscribed", "\\HasChildren"},
            "Vegetable/Broccoli": {"\\Subscribed", "\\HasNoChildren"}})
        self.assertFalse([e for _, e in got.values() if e], got)
        # example 3: RETURN (SUBSCRIBED) marks the subscribed ones among all mailboxes
        got = attrs(self.lst(c, 'LIST "" * RETURN (SUBSCRIBED)'))
        self.assertNotIn("Fruit/Peach", got)
        self.assertEqual(got["Vegetable"], {"\\Subscribed", "\\HasChildren"})
        self.assertEqual(got["Fruit"], {"\\HasChildren"})
        self.assertEqual(got["Vegetable/Corn"], {"\\HasNoChildren"})
        # example 6: with "%", SUBSCRIBED shows no level above a subscribed name ...
        got = self.lst(c, 'LIST (SUBSCRIBED) "" %')
        got.pop("INBOX", None)
        self.assertEqual(set(got), {"Vegetable"})
        self.assertIsNone(got["Vegetable"][1])
        # ... unless RECURSIVEMATCH asks for it: CHILDINFO on the parent (section 3.5)
        got = self.lst(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
        got.pop("INBOX", None)
        self.assertEqual(got, {"Fruit": ({"\\HasChildren"}, CHILDINFO),
                               "Vegetable": ({"\\HasChildren", "\\Subscribed"}, CHILDINFO)})
        self.assertEqual(self.lst(c, 'LIST (RECURSIVEMATCH SUBSCRIBED) "" % RETURN (CHILDREN)'),
                         self.lst(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %'))
        # with "*" every subscribed child matches itself: no CHILDINFO, no unsubscribed parent
        got = self.lst(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" *')
        got.pop("INBOX", None)
        self.assertEqual(set(got), {"Fruit/Banana", "Fruit/Peach", "Vegetable",
                                    "Vegetable/Broccoli"})
        self.assertFalse([e for _, e in got.values() if e], got)
        # example 7: a parent that does not exist at all gets \NonExistent with CHILDINFO
        self.ok(c, "SUBSCRIBE Moo/Cow/Calf")
        got = self.lst(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %')
        self.assertEqual(got["Moo"], ({"\\NonExistent"}, CHILDINFO))
        got = self.lst(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" Moo/%')
        self.assertEqual(got, {"Moo/Cow": ({"\\NonExistent"}, CHILDINFO)})
        # LSUB is unchanged: \Noselect levels, no \Subscribed, no extended data
        got = parse_list(self.ok(c, 'LSUB "" %'), b"LSUB")
        self.assertEqual(got["Fruit"], ({"\\Noselect"}, None))
        self.assertEqual(got["Vegetable"], (set(), None))
        self.assertEqual(got["Moo"], ({"\\Noselect"}, None))

    def test_multiple_patterns(self):
        c = self.conn("multi")
        for name in ("Sent", "Sent/2025", "Seen", "Work/a", "Work/b", "Other"):
            self.ok(c, "CREATE " + name)
        got = attrs(self.lst(c, 'LIST "" ("INBOX" "Sent*")'))
        self.assertEqual(set(got), {"INBOX", "Sent", "Sent/2025"})
        # overlapping patterns: each name once (parse_list fails on a repeat)
        got = attrs(self.lst(c, 'LIST "" ("S*" "*t" "Sent" "inbox")'))
        self.assertEqual(set(got), {"INBOX", "Sent", "Sent/2025", "Seen"})
        got = attrs(self.lst(c, 'LIST Work/ ("a" "b" "c")'))
        self.assertEqual(set(got), {"Work/a", "Work/b"})
        # a level that "%" stops at: once, \NonExistent in the extended syntax
        self.ok(c, "DELETE Work")
        got = attrs(self.lst(c, 'LIST "" ("W%" "%k")'))
        self.assertEqual(got, {"Work": {"\\NonExistent", "\\HasChildren"}})
        # ... and \Noselect in the RFC 3501 form
        self.assertEqual(attrs(self.lst(c, 'LIST "" %'))["Work"], {"\\Noselect", "\\HasChildren"})
        # several patterns with selection and return options
        self.ok(c, "SUBSCRIBE Work/a")
        got = self.lst(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Other" "W%") RETURN (CHILDREN)')
        self.assertEqual(got, {"Work": ({"\\NonExistent", "\\HasChildren"}, CHILDINFO)})
        # a literal in the list, and a pattern that is no valid modified UTF-7 matches nothing
        c.cmd('t LIST "" ("&Jjo" {5}')
        c.expect(rb"^\+ ")
        c.send(b"Other)\r\n")
        tagged, untagged = c.read_tagged("t")
        self.assertRegex(tagged, rb"^t OK")
        self.assertEqual(set(parse_list(untagged)), {"Other"})
        # sixteen patterns at most
        self.ok(c, 'LIST "" (%s)' % " ".join(["x%d" % i for i in range(16)]))
        self.bad(c, 'LIST "" (%s)' % " ".join(["x%d" % i for i in range(17)]))

    def test_special_use_selection(self):
        c = self.conn("su")
        self.ok(c, "CREATE MySent (USE (\\Sent))")
        self.ok(c, "CREATE Arch (USE (\\Archive))")
        self.ok(c, "CREATE Plain")
        self.ok(c, "CREATE Deep/Bin (USE (\\Trash))")
        got = attrs(self.lst(c, 'LIST (SPECIAL-USE) "" *'))
        self.assertEqual(got, {"MySent": {"\\HasNoChildren", "\\Sent"},
                               "Arch": {"\\HasNoChildren", "\\Archive"},
                               "Deep/Bin": {"\\HasNoChildren", "\\Trash"}})
        got = self.lst(c, 'LIST (SPECIAL-USE) "" % RETURN (SPECIAL-USE)')
        self.assertEqual(set(got), {"MySent", "Arch"})
        got = self.lst(c, 'LIST (SPECIAL-USE RECURSIVEMATCH) "" %')
        self.assertEqual(got["Deep"], ({"\\HasChildren"}, '("CHILDINFO" ("SPECIAL-USE"))'))
        # RETURN (SPECIAL-USE) on the ordinary listing (RFC 6154 section 3)
        got = attrs(self.lst(c, 'LIST "" * RETURN (SPECIAL-USE)'))
        self.assertEqual(got["Arch"], {"\\HasNoChildren", "\\Archive"})
        self.assertEqual(got["Plain"], {"\\HasNoChildren"})
        # both criteria: subscribed and special-use
        self.ok(c, "SUBSCRIBE Arch")
        self.ok(c, "SUBSCRIBE Plain")
        got = self.lst(c, 'LIST (SUBSCRIBED SPECIAL-USE) "" *')
        self.assertEqual(got, {"Arch": ({"\\HasNoChildren", "\\Archive", "\\Subscribed"}, None)})

    def test_subscribed_but_deleted(self):
        c = self.conn("gone")
        self.ok(c, "CREATE Old")
        self.ok(c, "SUBSCRIBE Old")
        self.assertEqual(attrs(self.lst(c, 'LIST (SUBSCRIBED) "" Old')),
                         {"Old": {"\\HasNoChildren", "\\Subscribed"}})
        self.ok(c, "DELETE Old")
        self.assertEqual(self.lst(c, 'LIST (SUBSCRIBED) "" Old'),
                         {"Old": ({"\\NonExistent", "\\Subscribed"}, None)})
        # it has no STATUS line (RFC 5819: only for mailboxes that exist)
        untagged = self.ok(c, 'LIST (SUBSCRIBED) "" Old RETURN (STATUS (MESSAGES))')
        self.assertFalse([u for u in untagged if u.startswith(b"* STATUS")], untagged)
        self.assertEqual(self.lst(c, 'LIST "" Old'), {})
        self.assertEqual(parse_list(self.ok(c, 'LSUB "" Old'), b"LSUB"),
                         {"Old": ({"\\Noselect"}, None)})

    def test_other_users_need_l(self):
        o = self.conn("owner")
        self.ok(o, "CREATE Proj/a")
        self.ok(o, "CREATE Proj/b")
        v = self.conn("viewer")
        self.ok(v, 'SUBSCRIBE "Other Users/owner/Proj/a"')
        # no right: listed only as the subscribed name it is, never as a mailbox
        self.assertEqual(self.lst(v, 'LIST "" "Other Users/*"'), {})
        got = self.lst(v, 'LIST (SUBSCRIBED) "" "Other Users/*" RETURN (STATUS (MESSAGES))')
        self.assertEqual(got, {"Other Users/owner/Proj/a": ({"\\NonExistent", "\\Subscribed"},
                                                             None)})
        got = self.lst(v, 'LIST (SUBSCRIBED RECURSIVEMATCH) "Other Users/" %')
        self.assertEqual(got, {"Other Users/owner": ({"\\NonExistent"}, CHILDINFO)})
        # l alone: a mailbox, without STATUS (that needs r)
        self.ok(o, "SETACL Proj/a viewer l")
        untagged = self.ok(v, 'LIST (SUBSCRIBED) "" "Other Users/*" RETURN (STATUS (MESSAGES))')
        self.assertEqual(parse_list(untagged),
                         {"Other Users/owner/Proj/a": ({"\\HasNoChildren", "\\Subscribed"},
                                                       None)})
        self.assertFalse([u for u in untagged if u.startswith(b"* STATUS")], untagged)
        self.assertEqual(set(self.lst(v, 'LIST "" ("Other Users/*" "nothing")')),
                         {"Other Users/owner/Proj/a"})
        self.ok(o, "SETACL Proj/a viewer lr")
        untagged = self.ok(v, 'LIST (SUBSCRIBED) "" "Other Users/*" RETURN (STATUS (MESSAGES))')
        self.assertIn(b'* STATUS "Other Users/owner/Proj/a" (MESSAGES 0)\r\n', untagged)
        # Proj/b stays hidden; the administrator sees everything
        a = self.conn("admin")
        got = self.lst(a, 'LIST "" ("Other Users/owner/Proj/*")')
        self.assertEqual(set(got), {"Other Users/owner/Proj/a", "Other Users/owner/Proj/b"})

    def test_shared_through_grant_index(self):
        """LIST "" "*" finds other users' and shared mailboxes through the mailbox list's
        grant index (docs/perf/many-users.md): every ACL change, rename and delete must show
        at once, and the index must never widen what a user sees."""
        s = self.conn("sharer")
        r = self.conn("reader")
        a = self.conn("admin")
        for name in ("Proj/x", "Proj/y"):
            self.ok(s, "CREATE " + name)
        self.ok(a, 'CREATE "Shared Folders/team"')

        def seen():
            return {n for n in self.lst(r, 'LIST "" "*"')
                    if n.startswith("Other Users/sharer") or n.startswith("Shared Folders/team")}
        self.assertEqual(seen(), set())
        # r alone does not make a mailbox listable (RFC 4314 section 4: LIST needs l)
        self.ok(s, "SETACL Proj/x reader r")
        self.assertEqual(seen(), set())
        self.ok(s, "SETACL Proj/x reader lr")
        self.assertEqual(seen(), {"Other Users/sharer/Proj/x"})
        self.assertEqual(set(self.lst(r, 'LIST "Other Users/" "*"')) & {"Other Users/sharer/Proj/x",
                                                                       "Other Users/sharer/Proj/y"},
                         {"Other Users/sharer/Proj/x"})
        self.ok(a, 'SETACL "Shared Folders/team" anyone lr')
        self.assertEqual(seen(), {"Other Users/sharer/Proj/x", "Shared Folders/team"})
        # a negative right for the reader beats anyone's
        self.ok(a, 'SETACL "Shared Folders/team" -reader l')
        self.assertEqual(seen(), {"Other Users/sharer/Proj/x"})
        # a rename keeps the ACL, and the index follows the new name
        self.ok(s, "RENAME Proj/x Proj/z")
        self.assertEqual(seen(), {"Other Users/sharer/Proj/z"})
        self.ok(s, "DELETEACL Proj/z reader")
        self.assertEqual(seen(), set())
        self.ok(s, "SETACL Proj/z reader l")
        self.assertEqual(seen(), {"Other Users/sharer/Proj/z"})
        self.ok(s, "DELETE Proj/z")
        self.assertEqual(seen(), set())
        # the administrator still sees every mailbox
        got = set(self.lst(a, 'LIST "" "*"'))
        self.assertLessEqual({"Other Users/sharer/Proj/y", "Shared Folders/team"}, got)
        self.assertNotIn("Other Users/sharer/Proj/z", got)

    def test_star_children_from_the_listing(self):
        """LIST "" "*" of a user who is no administrator finds \\HasChildren from the names it
        lists, not from a scan per name (docs/perf/many-users.md): siblings that sort between a
        parent and its children ("A b", "A-c" before "A/..."), children the viewer may not see
        (no l, or only r), children seen only through a grant, and a shared mailbox's; every
        attribute must equal what a pattern naming the one mailbox gives (a scan)."""
        o = self.conn("kidown")
        v = self.conn("kidview")
        a = self.conn("admin")
        for name in ("A", "A b", "A-c", "A/x", "B", "B/hidden", "C", "C-1", "D", "D/E",
                     "D/E/F"):
            self.ok(o, "CREATE " + ('"%s"' % name if " " in name else name))
        # the viewer: A and A/x listable; B listable, B/hidden readable but not listable;
        # C and C-1 listable (C has no child); D/E/F listable without D or D/E
        for name, rights in (("A", "lr"), ("A/x", "l"), ("B", "lr"), ("B/hidden", "r"),
                             ("C", "l"), ("C-1", "l"), ("D/E/F", "lr"), ("A b", "l")):
            self.ok(o, 'SETACL "%s" kidview %s' % (name, rights))
        self.ok(a, 'CREATE "Shared Folders/kids"')
        self.ok(a, 'CREATE "Shared Folders/kids/one"')
        self.ok(a, 'SETACL "Shared Folders/kids" anyone lr')
        self.ok(a, 'SETACL "Shared Folders/kids/one" kidview l')
        self.ok(v, "CREATE mine")
        self.ok(v, "CREATE mine/sub")
        self.ok(v, 'CREATE "mine sib"')
        for c, who in ((o, "owner"), (v, "viewer")):
            star = attrs(self.lst(c, 'LIST "" "*"'))
            self.assertTrue(star, who)
            for name, got in star.items():
                one = attrs(self.lst(c, 'LIST "" "%s"' % name.replace('"', '\\"')))
                self.assertEqual(got, one.get(name), "%s: %s" % (who, name))
        star = attrs(self.lst(v, 'LIST "" "*"'))
        pre = "Other Users/kidown/"
        self.assertEqual(star[pre + "A"], {"\\HasChildren"})
        self.assertEqual(star[pre + "A b"], {"\\HasNoChildren"})
        self.assertEqual(star[pre + "B"], {"\\HasNoChildren"})
        self.assertEqual(star[pre + "C"], {"\\HasNoChildren"})
        self.assertEqual(star[pre + "D/E/F"], {"\\HasNoChildren"})
        self.assertEqual(star["Shared Folders/kids"], {"\\HasChildren"})
        self.assertEqual(star["mine"], {"\\HasChildren"})
        self.assertEqual(star["mine sib"], {"\\HasNoChildren"})
        self.assertNotIn(pre + "B/hidden", star)
        # a child made or removed since is seen by the next LIST at once
        self.ok(o, "SETACL B/hidden kidview l")
        self.assertEqual(attrs(self.lst(v, 'LIST "" "*"'))[pre + "B"], {"\\HasChildren"})
        self.ok(o, "DELETE A/x")
        self.assertEqual(attrs(self.lst(v, 'LIST "" "*"'))[pre + "A"], {"\\HasNoChildren"})

    def test_names_quoting_and_utf7(self):
        c = self.conn("utf")
        self.ok(c, 'CREATE "Entw&APw-rfe/Q\\"uote"')
        self.ok(c, 'CREATE "My Box"')
        self.ok(c, 'SUBSCRIBE "Entw&APw-rfe/Q\\"uote"')
        self.ok(c, 'SUBSCRIBE "My Box"')
        got = self.lst(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" ("Entw&APw-%" "My*")')
        self.assertEqual(got, {"Entw&APw-rfe": ({"\\HasChildren"}, CHILDINFO),
                               "My Box": ({"\\HasNoChildren", "\\Subscribed"}, None)})
        got = self.lst(c, 'LIST (SUBSCRIBED) "" "Entw&APw-rfe/*"')
        self.assertEqual(set(got), {'Entw&APw-rfe/Q"uote'})

    def test_status_return_option(self):
        c = self.conn("stat")
        self.ok(c, "CREATE box")
        self.ok(c, "SUBSCRIBE box")
        self.ok(c, 'APPEND box {%d+}\r\n%s' % (len(MSG), MSG.decode()))
        untagged = self.ok(c, 'LIST (SUBSCRIBED) "" box RETURN (CHILDREN STATUS (MESSAGES '
                              'SIZE DELETED-STORAGE HIGHESTMODSEQ))')
        self.assertEqual(untagged[0], b'* LIST (\\HasNoChildren \\Subscribed) "/" "box"\r\n')
        self.assertRegex(untagged[1], rb'^\* STATUS "box" \(MESSAGES 1 SIZE %d DELETED-STORAGE 0 '
                                      rb'HIGHESTMODSEQ [1-9]\d*\)\r\n$' % len(MSG))
        self.assertEqual(len(untagged), 2)

    def test_bad_options(self):
        c = self.conn("bad")
        # section 3: RECURSIVEMATCH alone, or with REMOTE only
        self.bad(c, 'LIST (RECURSIVEMATCH) "" *')
        self.bad(c, 'LIST (REMOTE RECURSIVEMATCH) "" *')
        # unknown selection and return options
        self.bad(c, 'LIST (BOGUS) "" *')
        self.bad(c, 'LIST (SUBSCRIBED BOGUS) "" *')
        self.bad(c, 'LIST ("SUBSCRIBED") "" *')
        self.bad(c, 'LIST "" * RETURN (BOGUS)')
        self.bad(c, 'LIST "" * RETURN (RECURSIVEMATCH)')
        self.bad(c, 'LIST "" * RETURN (STATUS)')
        self.bad(c, 'LIST "" * RETURN (STATUS ())')
        self.bad(c, 'LIST "" * RETURN (STATUS (BOGUS))')
        self.bad(c, 'LIST "" * RETURN (STATUS (MESSAGES) STATUS (UNSEEN))')
        self.bad(c, 'LIST "" * RETURN CHILDREN')
        self.bad(c, 'LIST "" * RETURN')
        self.bad(c, 'LIST "" * BOGUS (CHILDREN)')
        self.bad(c, 'LIST "" ()')
        self.bad(c, 'LIST "" ("a" ("b"))')
        self.bad(c, 'LIST () ""')
        # LSUB takes none of it
        self.bad(c, 'LSUB () "" *')
        self.bad(c, 'LSUB "" ("a" "b")')
        self.bad(c, 'LSUB "" * RETURN (CHILDREN)')
        # the empty option lists are fine, and the session goes on
        self.ok(c, 'LIST () "" * RETURN ()')
        self.ok(c, "NOOP")

    def test_random_option_lists(self):
        """A seeded fuzz of the option parser: random selection lists, pattern forms and
        return lists, each answered OK exactly when a model of RFC 5258 section 6 says it is
        valid, else BAD, with every LIST line well formed and the session alive."""
        c = self.fruit("rnd")
        sel_words = ["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE", "subscribed",
                     "BOGUS", '"REMOTE"', "(SUBSCRIBED)", "NIL"]
        ret_words = ["SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS (MESSAGES SIZE)",
                     "STATUS (DELETED-STORAGE HIGHESTMODSEQ UNSEEN)", "STATUS", "STATUS ()",
                     "STATUS (BOGUS)", "RECURSIVEMATCH", "BOGUS", "children"]
        patterns = [("*", True), ("%", True), ("Fruit/%", True), ('""', True),
                    ('("Fruit*" "Veg*")', True), ('("%")', True), ("()", False),
                    ('(("a"))', False), ("&Jjo", True), ('("a" NIL)', True)]
        line_rx = re.compile(rb'^\* (LIST \([^)]*\) "/" "(?:[^"\\]|\\.)*"'
                             rb'(?: \("CHILDINFO" \("[A-Z-]+"(?: "[A-Z-]+")?\)\))?'
                             rb'|STATUS "(?:[^"\\]|\\.)*" \([A-Z0-9 -]*\))\r\n$')
        rng = random.Random(5258)
        for _ in range(300):
            valid = True
            parts = ["LIST"]
            sel = None
            if rng.random() < 0.7:
                sel = [rng.choice(sel_words) for _ in range(rng.randint(0, 3))]
                parts.append("(%s)" % " ".join(sel))
                known = {w.upper() for w in sel if w.upper() == w.upper().strip('"()') and
                         not w.startswith(('"', "(")) and w.upper() in
                         ("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE")}
                if len(known) != len({w.upper() for w in sel}) or \
                        any(w.startswith(('"', "(")) or w == "NIL" or w == "BOGUS" for w in sel):
                    valid = False
                if "RECURSIVEMATCH" in known and not known & {"SUBSCRIBED", "SPECIAL-USE"}:
                    valid = False
            parts.append('""')
            pat, pat_ok = rng.choice(patterns)
            parts.append(pat)
            valid &= pat_ok
            if rng.random() < 0.6:
                ret = [rng.choice(ret_words) for _ in range(rng.randint(0, 3))]
                parts.append("RETURN (%s)" % " ".join(ret))
                good = ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS (MESSAGES SIZE)",
                        "STATUS (DELETED-STORAGE HIGHESTMODSEQ UNSEEN)", "children")
                if any(w not in good for w in ret) or \
                        len([w for w in ret if w.startswith("STATUS")]) > 1:
                    valid = False
            text = " ".join(parts)
            tagged, untagged = c.imap("r", text)
            self.assertRegex(tagged, rb"^r OK " if valid else rb"^r BAD ", text)
            for line in untagged:
                self.assertRegex(line, line_rx, text)
        self.ok(c, "NOOP")


if __name__ == "__main__":
    main()
