/* rev2.c: IMAP4rev2 (RFC 9051) and UTF8=ACCEPT (RFC 6855) as per-session modes: ENABLE of
 * both, mailbox names on the wire (UTF-8 or modified UTF-7) and the rev2 answers of SELECT.
 *
 * The server announces IMAP4rev1 and IMAP4rev2 side by side (RFC 9051 section 2.1 and
 * appendix D); a session speaks IMAP4rev1 until the client sends ENABLE IMAP4rev2 (RFC 9051
 * section 6.3.1), and every rev1 answer stays as it was. Internal names are UTF-8 already
 * (store/mboxname.h), so the mode only changes the conversion at the protocol edge.
 *
 * Checklist: RFC 9051 appendix E (changes from RFC 3501), item by item, and where each is
 * handled. "rev2 session" means one that sent ENABLE IMAP4rev2.
 *
 *  1. Folded-in extensions, all advertised already and usable in both modes:
 *     NAMESPACE (cmd-mailbox.c cmd_namespace), UNSELECT (cmd-select.c), UIDPLUS (cmd-append.c
 *     APPENDUID, cmd-copy.c COPYUID, UID EXPUNGE: cmd-expunge.c via the UID table entry in
 *     commands.c), ESEARCH (cmd-search.c), SEARCHRES (cmd-search.c, selected.c "$"), ENABLE
 *     (cmd-misc.c; IMAP4rev2 and UTF8=ACCEPT here), IDLE (cmd-idle.c), SASL-IR (cmd-auth.c),
 *     LIST-EXTENDED and LIST-STATUS (cmd-mailbox.c, lib/imap/imap-listopts.c), MOVE
 *     (cmd-copy.c), LITERAL- (the parser takes LITERAL+, a superset: lib/imap/imap-parser.c),
 *     the ABNF of RFC 4466, the response codes of RFC 5530 (reply.c imapd_error_reply), the
 *     FETCH side of BINARY (cmd-fetch.c: BINARY[], BINARY.PEEK[], BINARY.SIZE[], ~{n}),
 *     \HasChildren/\HasNoChildren (always sent), the SPECIAL-USE attributes (cmd-mailbox.c).
 *  2. STATUS DELETED and SIZE: cmd-mailbox.c status_append (both modes; RFC 9208, RFC 8438).
 *  3. SEARCH answers with ESEARCH only; the SEARCH response is deprecated: cmd-search.c turns
 *     a plain SEARCH / UID SEARCH of a rev2 session into RETURN (ALL), so the answer is
 *     "* ESEARCH (TAG "t") [UID] [ALL set]" (RFC 9051 section 6.4.4).
 *  4. Which SEARCH keys match substrings: lib/imap/search-eval.c (unchanged: the header and
 *     text keys match substrings, the others do not).
 *  5. RFC 2231 parameter continuations decoded: lib/mime (unchanged, both modes).
 *  6. COPYUID for MOVE and UID MOVE: cmd-copy.c (both modes).
 *  7. COPY/MOVE never create the target and answer NO [TRYCREATE]: cmd-copy.c (both modes).
 *  8. The \Recent flag and the RECENT response are gone: a rev2 session claims no \Recent at
 *     SELECT or later (selected_open_view with no_recent, selected_sync), so rev1 sessions of
 *     the same mailbox keep seeing their \Recent; FLAGS never carry \Recent
 *     (selected_is_recent), SELECT and the updates send no "* N RECENT" (cmd-select.c,
 *     selected.c), STATUS RECENT is a BAD (rev2_status_items_ok), so is LIST RETURN (STATUS
 *     (RECENT)). The SEARCH keys NEW, OLD and RECENT are still parsed (they are gone from the
 *     rev2 grammar): with no \Recent, RECENT and NEW match nothing and OLD matches all.
 *  9. The UNSEEN response code of SELECT is deprecated: a rev2 session does not get it
 *     (cmd-select.c); it uses SEARCH UNSEEN or STATUS UNSEEN.
 * 10. SELECT/EXAMINE answer with a LIST response naming the mailbox (RFC 9051 section
 *     6.3.2): rev2_select_list. Names are never normalized here (what was created is what is
 *     stored), so no OLDNAME is owed for SELECT or CREATE (section 6.3.4).
 * 11. OLDNAME: a renamed mailbox is reported with ("OLDNAME" (old)) to a session that asked
 *     for MailboxName events with NOTIFY (notify.c send_list), with the names in the session's
 *     form (UTF-8 for rev2).
 * 12. [CLOSED] when SELECT/EXAMINE leaves a selected mailbox (RFC 9051 section 7.1): for rev2
 *     sessions as for QRESYNC ones (cmd-select.c).
 * 13. Mailbox names in UTF-8 (RFC 9051 section 5.1): after ENABLE IMAP4rev2 or ENABLE
 *     UTF8=ACCEPT, names are read and written as UTF-8, modified UTF-7 is never decoded or
 *     produced ("&-" is two characters): rev2_name_from_wire, rev2_name_to_wire,
 *     rev2_ext_to_wire, rev2_pattern_from_wire, used by every command that takes or shows a
 *     name (reply.c imapd_mailbox_name, cmd-mailbox.c LIST/LSUB/STATUS, cmd-append.c,
 *     cmd-copy.c, cmd-quota.c, notify.c, selected.c). Names with U+2028, U+2029 or controls
 *     are refused (NO [CANNOT]). UTF-8 names go out as quoted strings (RFC 9051's
 *     QUOTED-CHAR and RFC 6855 section 3 allow UTF-8 there once enabled): rev2_string_append.
 * 14. UTF-8 in message headers: stored as they are. A rev2 or UTF8=ACCEPT session gets them
 *     unchanged; for other sessions see "Down-conversion" below.
 * 15. All unsolicited FETCH responses carry UID in a rev2 session: condstore.c
 *     selected_fetch_line (as with QRESYNC).
 * 16. LSUB is deprecated but still answered (cmd-mailbox.c), in both modes.
 * 17. CHECK is gone from rev2; it is still answered (a NOOP) so old habits do no harm.
 * 18. The RFC822, RFC822.HEADER and RFC822.TEXT FETCH items are gone from rev2's grammar;
 *     they are still answered (cmd-fetch.c).
 * 19. BODYSTRUCTURE: body-fld-md5 NIL, languages and locations as RFC 3501 section 7.4.2
 *     gave them (lib/mime/mime-imap.c), unchanged. Deviation: message/global (RFC 6532) is
 *     shown as a single non-multipart part (media-basic "MESSAGE" "GLOBAL", which the rev2
 *     grammar allows), not with its own envelope: the structure is computed once at delivery
 *     for every session, and rev1's grammar knows only message/rfc822 as an encapsulation.
 * 20. BINARY FETCH: cmd-fetch.c, NO [UNKNOWN-CTE] for an encoding it cannot decode.
 * 21. APPEND limits: a literal over max_literal is refused by the parser with [TOOBIG]
 *     (lib/imap/imap-parser.c; a synchronizing one before the go-ahead), answered NO [TOOBIG]
 *     for APPEND in a rev2 session (RFC 9051 section 7.1, main.c reply_parse_error) and BAD
 *     [TOOBIG] as always in rev1; a CATENATE result over it gets NO [TOOBIG] (cmd-append.c);
 *     quota NO [OVERQUOTA] (reply.c). APPENDLIMIT itself is another extension (not here).
 * 22. Response codes of RFC 9051 section 7.1: ALERT, ALREADYEXISTS, APPENDUID, AUTHENTICATIONFAILED
 *     (cmd-auth.c), BADCHARSET (cmd-search.c), CANNOT, CAPABILITY, CLOSED, CONTACTADMIN (not
 *     produced: no situation calls for it), COPYUID, CORRUPTION, EXPIRED (not produced: no
 *     password expiry), EXPUNGEISSUED (cmd-fetch.c), HASCHILDREN (DELETE of a name that is no
 *     mailbox but has children, rev2 sessions: cmd-mailbox.c), INUSE, LIMIT, NONEXISTENT,
 *     NOPERM, OVERQUOTA, PARSE (not produced: a bad message is stored as it is), PERMANENTFLAGS,
 *     PRIVACYREQUIRED (cmd-auth.c), READ-ONLY, READ-WRITE, SERVERBUG, TRYCREATE, UIDNEXT,
 *     UIDNOTSTICKY (not produced: UIDs are always sticky), UIDVALIDITY, UNAVAILABLE,
 *     UNKNOWN-CTE; AUTHORIZATIONFAILED and CLIENTBUG are not produced (a refused authorization
 *     identity is an AUTHENTICATIONFAILED, as RFC 5530 section 3 allows, to tell nothing).
 * 23. TLS rules of RFC 8314/7817/8996: lib/net (unchanged).
 * 24. tagged-ext-simple with a bare number64: the parser reads any number as an atom
 *     (lib/imap/imap-parser.c) and each extension converts it (64-bit where it needs it:
 *     MODSEQ, lib/imap/imap-condstore.c); nothing parses tagged-ext values generically.
 * 25. $MDNSent, $Forwarded, $Junk, $NotJunk, $Phishing: PERMANENTFLAGS \* takes any keyword.
 * 26. The "$" marker of SEARCHRES in COPY, MOVE, FETCH, STORE: selected_msgset (selected.c).
 * 27. The literal rules: non-synchronizing literals of any size after login ({n+}), up to
 *     4096 bytes before login (LITERAL-, RFC 7888), literal8 in APPEND and FETCH BINARY;
 *     8-bit and UTF-8 in quoted strings are read as they are.
 *
 * UTF8=ACCEPT (RFC 6855): ENABLE UTF8=ACCEPT (section 3) switches names to UTF-8 as item 13
 * does; APPEND takes the UTF8 data item "UTF8 (~{n}...)" (section 4) only after it
 * (cmd-append.c: BAD before); SEARCH with a CHARSET after it is a BAD (section 3). It does not
 * switch off \Recent (that is rev2 only).
 *
 * Down-conversion (RFC 6855 section 7, RFC 6857 section 3): messages are stored byte for
 * byte. A session that enabled neither mode gets the strings of ENVELOPE, BODY and
 * BODYSTRUCTURE that hold UTF-8 as RFC 2047 encoded-words (cmd-fetch.c cached_text,
 * lib/imap/imap-downconvert.c; addresses included: their local part and domain become
 * encoded-words too, which keeps the response ASCII rather than making a valid address);
 * strings in another 8-bit charset stay literals as before. BODY[...], BINARY[...] and RFC822*
 * are the stored bytes, sizes unchanged. No command fails because of UTF-8 headers. Mailbox
 * names are always converted (item 13). */
#include "imapd.h"
#include "selected.h"
#include "core/buf.h"
#include "core/error.h"
#include "imap/imap-downconvert.h"
#include "imap/imap-listopts.h"
#include "store/mboxname.h"
#include <string.h>

int rev2_utf8_names(const struct client *c)
{
    return (c->enabled & (CLIENT_ENABLED_IMAP4REV2 | CLIENT_ENABLED_UTF8ACCEPT)) != 0;
}

/* utf8_name_ok: RFC 6855 section 3, RFC 9051 section 5.1: a UTF-8 name may not hold the line
 * and paragraph separators (U+2028, U+2029); mboxname_valid refuses controls, C1 and bad
 * UTF-8 itself. */
static int utf8_name_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) return 0;
    return 1;
}

int rev2_name_from_wire(const struct client *c, const char *wire, struct buf *out)
{
    if (!rev2_utf8_names(c)) return mboxname_from_imap(c->user, wire, out);
    if (!utf8_name_ok(wire)) {
        buf_reset(out);
        return CF_E_PARSE;
    }
    return mboxname_from_external(c->user, wire, out);
}

int rev2_name_to_wire(const struct client *c, const char *name, struct buf *out)
{
    if (!rev2_utf8_names(c)) return mboxname_to_imap(c->user, name, out);
    return mboxname_to_external(c->user, name, out);
}

int rev2_ext_to_wire(const struct client *c, const char *extname, struct buf *out)
{
    if (!rev2_utf8_names(c)) return mboxname_utf8_to_utf7(extname, out);
    buf_appends(out, extname);
    buf_cstr(out);
    return 0;
}

int rev2_pattern_from_wire(const struct client *c, const char *wire, struct buf *out)
{
    if (!rev2_utf8_names(c)) return mboxname_utf7_to_utf8(wire, out);
    buf_appends(out, wire);
    buf_cstr(out);
    return 0;
}

unsigned rev2_enable(struct client *c, const struct imap_arg *a, struct buf *list)
{
    unsigned bit = imap_arg_atom_eq(a, "IMAP4rev2") ? CLIENT_ENABLED_IMAP4REV2
                   : imap_arg_atom_eq(a, "UTF8=ACCEPT") ? CLIENT_ENABLED_UTF8ACCEPT
                                                        : 0;
    if (!bit) return 0;
    if (c->enabled & bit) return bit;
    c->enabled |= bit;
    /* enabled while a mailbox is selected: from now on it shows no \Recent, and claims none */
    if (bit == CLIENT_ENABLED_IMAP4REV2 && c->sel) c->sel->no_recent = 1;
    buf_appends(list, bit == CLIENT_ENABLED_IMAP4REV2 ? " IMAP4rev2" : " UTF8=ACCEPT");
    return bit;
}

int rev2_status_items_ok(const struct client *c, const unsigned *items, size_t n)
{
    if (!rev2_on(c)) return 1;
    for (size_t i = 0; i < n; i++)
        if (items[i] == IMAP_STATUS_RECENT) return 0;
    return 1;
}

void rev2_string_append(const struct client *c, const char *s, size_t len, struct buf *out)
{
    int quote = rev2_utf8_names(c) && imap_downconvert_utf8((const unsigned char *)s, len);
    for (size_t i = 0; quote && i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) quote = 0;
    if (!quote) {
        imap_string_append(out, s, len);
        return;
    }
    buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') buf_putc(out, '\\');
        buf_putc(out, s[i]);
    }
    buf_putc(out, '"');
}

void rev2_select_list(struct client *c, const char *name)
{
    struct buf wire = BUF_INIT, line = BUF_INIT;
    if (rev2_name_to_wire(c, name, &wire) == 0) {
        buf_printf(&line, "LIST () \"%c\" ", MBOXNAME_SEP);
        rev2_string_append(c, wire.s, wire.len, &line);
        client_untagged(c, "%s", buf_cstr(&line));
    }
    buf_fini(&wire);
    buf_fini(&line);
}
