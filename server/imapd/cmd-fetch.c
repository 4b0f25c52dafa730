/* cmd-fetch.c: FETCH and UID FETCH (RFC 3501 sections 6.4.5, 6.4.8, 7.4.2): every data item,
 * answered from the index record and the cache file, reading the message file only for body
 * data, which is streamed from its mapping. */
#include "imapd.h"
#include "selected.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include "store/store-mail.h"
#include "net/stream.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Body data at least this long is written straight from the message mapping to the stream
 * instead of being copied into the response buffer. */
#define FETCH_DIRECT_MIN 8192

enum fetch_kind {
    FA_FLAGS, FA_INTERNALDATE, FA_SIZE, FA_ENVELOPE, FA_BODY, FA_BODYSTRUCTURE, FA_UID,
    FA_RFC822, FA_RFC822_HEADER, FA_RFC822_TEXT, FA_SECTION,
};

struct fetch_att {
    enum fetch_kind kind;
    const struct imap_section *sec;     /* FA_SECTION */
};

struct fetch {
    struct client *c;
    struct selected *sel;
    struct fetch_att *atts;
    size_t n, alloc;
    int uid_cmd;
    int has_flags, has_uid;
    int need_cache;         /* ENVELOPE, BODY, BODYSTRUCTURE, or a section with part numbers */
    int set_seen;           /* BODY[...] without PEEK, RFC822, RFC822.TEXT */
    int need_map;           /* body data other than the top-level header */
    int io_failed;          /* writing to the client failed: the session ends */
    int direct_written;     /* part of this message's response is already out */
    /* per message */
    uint32_t uid;
    struct index_record rec;
    struct cache_entry ce;
    int have_cache;
    const char *map;
    size_t map_len;
    int mapped;
    struct buf out;
};

static void att_add(struct fetch *f, enum fetch_kind kind, const struct imap_section *sec)
{
    if (f->n == f->alloc) {
        f->alloc = f->alloc ? f->alloc * 2 : 8;
        f->atts = xreallocarray(f->atts, f->alloc, sizeof *f->atts);
    }
    f->atts[f->n].kind = kind;
    f->atts[f->n].sec = sec;
    f->n++;
    switch (kind) {
    case FA_FLAGS: f->has_flags = 1; break;
    case FA_UID: f->has_uid = 1; break;
    case FA_ENVELOPE: case FA_BODY: case FA_BODYSTRUCTURE: f->need_cache = 1; break;
    case FA_RFC822: case FA_RFC822_TEXT: f->set_seen = f->need_map = 1; break;
    case FA_SECTION:
        if (sec->nparts) f->need_cache = 1;
        if (sec->nparts || sec->text == IMAP_SECTION_NONE || sec->text == IMAP_SECTION_TEXT)
            f->need_map = 1;
        if (strcmp(sec->name, "BODY.PEEK")) f->set_seen = 1;
        break;
    default: break;
    }
}

/* parse_att: one fetch-att (RFC 3501 section 9). NULL, or a reason for BAD. */
static const char *parse_att(struct fetch *f, const struct imap_arg *a)
{
    static const struct { const char *name; enum fetch_kind kind; } simple[] = {
        { "FLAGS", FA_FLAGS }, { "INTERNALDATE", FA_INTERNALDATE }, { "RFC822.SIZE", FA_SIZE },
        { "ENVELOPE", FA_ENVELOPE }, { "BODY", FA_BODY }, { "BODYSTRUCTURE", FA_BODYSTRUCTURE },
        { "UID", FA_UID }, { "RFC822", FA_RFC822 }, { "RFC822.HEADER", FA_RFC822_HEADER },
        { "RFC822.TEXT", FA_RFC822_TEXT },
    };
    if (a->type == IMAP_ARG_SECTION) {
        const struct imap_section *sec = a->section;
        if (strcmp(sec->name, "BODY") && strcmp(sec->name, "BODY.PEEK"))
            return "BINARY is not supported";
        if (sec->text == IMAP_SECTION_MIME && !sec->nparts) return "MIME needs a part number";
        if (sec->has_partial && sec->partial_count == 0) return "Partial length must not be 0";
        att_add(f, FA_SECTION, sec);
        return NULL;
    }
    if (a->type != IMAP_ARG_ATOM) return "Invalid fetch attribute";
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (imap_arg_atom_eq(a, simple[i].name)) {
            att_add(f, simple[i].kind, NULL);
            return NULL;
        }
    }
    return "Unknown fetch attribute";
}

/* parse_atts: the fetch items argument: a macro, one item, or a list (RFC 3501 section 6.4.5). */
static const char *parse_atts(struct fetch *f, const struct imap_arg *a)
{
    if (imap_arg_atom_eq(a, "ALL") || imap_arg_atom_eq(a, "FAST") || imap_arg_atom_eq(a, "FULL")) {
        att_add(f, FA_FLAGS, NULL);
        att_add(f, FA_INTERNALDATE, NULL);
        att_add(f, FA_SIZE, NULL);
        if (!imap_arg_atom_eq(a, "FAST")) att_add(f, FA_ENVELOPE, NULL);
        if (imap_arg_atom_eq(a, "FULL")) att_add(f, FA_BODY, NULL);
        return NULL;
    }
    if (a->type != IMAP_ARG_LIST) return parse_att(f, a);
    if (!a->count) return "Empty fetch attribute list";
    for (size_t i = 0; i < a->count; i++) {
        const char *err = parse_att(f, &a->list[i]);
        if (err) return err;
    }
    return NULL;
}

/* ---- data of one message ---- */

static int load_map(struct fetch *f)
{
    if (f->mapped) return 0;
    int r = mailbox_message_map(f->sel->mb, f->uid, &f->map, &f->map_len);
    if (r < 0) return r;
    f->mapped = 1;
    return 0;
}

static void unload(struct fetch *f)
{
    if (f->mapped) mailbox_message_unmap(f->map, f->map_len);
    f->mapped = 0;
    f->map = NULL;
    f->map_len = 0;
    if (f->have_cache) cache_entry_fini(&f->ce);
    f->have_cache = 0;
}

static int load_cache(struct fetch *f)
{
    if (f->have_cache) return 0;
    cache_entry_init(&f->ce);
    f->have_cache = 1;
    return mailbox_cache_fetch(f->sel->mb, f->uid, &f->ce);
}

/* top_header: the message's top-level header block (with its empty line): from the cache when
 * it holds it whole, else from the message file. */
static int top_header(struct fetch *f, const char **p, size_t *len)
{
    if (f->need_cache && f->have_cache && f->ce.present[CACHE_HEADER] &&
        f->ce.f[CACHE_HEADER].len == f->rec.header_size) {
        *p = f->ce.f[CACHE_HEADER].s;
        *len = f->ce.f[CACHE_HEADER].len;
        return 0;
    }
    if (!f->need_cache || !f->have_cache) {
        /* only load the cache for the header when the message file is not mapped anyway */
        if (!f->mapped && f->rec.header_size <= CACHE_HEADER_MAX) {
            int r = load_cache(f);
            if (r < 0) return r;
            if (f->ce.present[CACHE_HEADER] && f->ce.f[CACHE_HEADER].len == f->rec.header_size) {
                *p = f->ce.f[CACHE_HEADER].s;
                *len = f->ce.f[CACHE_HEADER].len;
                return 0;
            }
        }
    }
    int r = load_map(f);
    if (r < 0) return r;
    *p = f->map;
    *len = f->rec.header_size <= f->map_len ? f->rec.header_size : f->map_len;
    return 0;
}

/* emit_literal: {N} CRLF and the bytes; long data goes straight to the stream. */
static int emit_literal(struct fetch *f, const char *p, size_t len)
{
    buf_printf(&f->out, "{%zu}\r\n", len);
    if (len < FETCH_DIRECT_MIN) {
        buf_append(&f->out, p, len);
        return 0;
    }
    int r = stream_write(f->c->stream, f->out.s, f->out.len);
    buf_reset(&f->out);
    f->direct_written = 1;
    if (r == 0) r = stream_write(f->c->stream, p, len);
    if (r < 0) f->io_failed = 1;
    return r;
}

/* emit_partial: the data clipped to the section's <offset.count>, as a literal. */
static int emit_partial(struct fetch *f, const struct imap_section *sec, const char *p, size_t len)
{
    if (sec && sec->has_partial) {
        size_t off = sec->partial_offset;
        if (off >= len) {
            p = "";
            len = 0;
        } else {
            p += off;
            len -= off;
            if (len > sec->partial_count) len = sec->partial_count;
        }
    }
    return emit_literal(f, p, len);
}

/* field_match: whether the header field name (len bytes) is among the section's fields. */
static int field_match(const struct imap_section *sec, const char *name, size_t len)
{
    for (size_t i = 0; i < sec->nfields; i++) {
        const char *w = sec->fields[i];
        if (strlen(w) == len && !strncasecmp(w, name, len)) return 1;
    }
    return 0;
}

/* header_filter: the fields of header block h whose names are (not, for .NOT) among the
 * section's, raw and in message order, then the empty line (RFC 3501 section 6.4.5). */
static void header_filter(const struct imap_section *sec, const char *h, size_t len,
                          struct buf *out)
{
    int not = sec->text == IMAP_SECTION_HEADER_FIELDS_NOT;
    const char *p = h, *end = h + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n')) break;   /* empty line */
        /* a field: this line and its continuation lines */
        const char *fend = next;
        while (fend < end && (*fend == ' ' || *fend == '\t')) {
            const char *e2 = memchr(fend, '\n', (size_t)(end - fend));
            fend = e2 ? e2 + 1 : end;
        }
        const char *colon = memchr(p, ':', (size_t)(next - p));
        int keep = 0;
        if (colon) {
            const char *ne = colon;
            while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
            keep = field_match(sec, p, (size_t)(ne - p)) != not;
        }
        if (keep) {
            buf_append(out, p, (size_t)(fend - p));
            if (fend == end && (fend == p || fend[-1] != '\n')) buf_appends(out, "\r\n");
        }
        p = fend;
    }
    buf_appends(out, "\r\n");
}

/* emit_header_text: header text (a top-level header, or an encapsulated message's) per the
 * section: all of it (HEADER) or filtered. */
static int emit_header_part(struct fetch *f, const struct imap_section *sec, const char *h,
                            size_t len)
{
    if (sec->text == IMAP_SECTION_HEADER) return emit_partial(f, sec, h, len);
    struct buf tmp = BUF_INIT;
    header_filter(sec, h, len, &tmp);
    int r = emit_partial(f, sec, tmp.s ? tmp.s : "", tmp.len);
    buf_fini(&tmp);
    return r;
}

static int emit_section(struct fetch *f, const struct imap_section *sec)
{
    int r;
    imap_section_format(sec, 1, &f->out);
    buf_putc(&f->out, ' ');
    if (!sec->nparts) {
        switch (sec->text) {
        case IMAP_SECTION_HEADER:
        case IMAP_SECTION_HEADER_FIELDS:
        case IMAP_SECTION_HEADER_FIELDS_NOT: {
            const char *h;
            size_t hl;
            if ((r = top_header(f, &h, &hl)) < 0) return r;
            return emit_header_part(f, sec, h, hl);
        }
        case IMAP_SECTION_TEXT:
            if ((r = load_map(f)) < 0) return r;
            if (f->rec.header_size > f->map_len) return emit_partial(f, sec, "", 0);
            return emit_partial(f, sec, f->map + f->rec.header_size,
                                f->map_len - f->rec.header_size);
        default:
            if ((r = load_map(f)) < 0) return r;
            return emit_partial(f, sec, f->map, f->map_len);
        }
    }
    if ((r = load_cache(f)) < 0) return r;
    char spec[16 * 11 + 1];
    size_t sl = 0;
    for (size_t i = 0; i < sec->nparts && sl < sizeof spec - 12; i++)
        sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%s%u", i ? "." : "",
                               (unsigned)sec->parts[i]);
    struct mime_section ms;
    const struct buf *tab = &f->ce.f[CACHE_SECTIONS];
    if (sec->nparts > 16 || !f->ce.present[CACHE_SECTIONS] ||
        !mime_section_find(tab->s, tab->len, spec, &ms)) {
        buf_appends(&f->out, "NIL");
        return 0;
    }
    if ((r = load_map(f)) < 0) return r;
    uint64_t off, len;
    switch (sec->text) {
    case IMAP_SECTION_MIME:
        off = ms.header_off;
        len = ms.header_len;
        break;
    case IMAP_SECTION_HEADER:
    case IMAP_SECTION_HEADER_FIELDS:
    case IMAP_SECTION_HEADER_FIELDS_NOT:
    case IMAP_SECTION_TEXT:
        if (!ms.is_message_rfc822) {
            buf_appends(&f->out, "NIL");
            return 0;
        }
        if (sec->text == IMAP_SECTION_TEXT) {
            off = ms.body_off + ms.msg_header_len;
            len = ms.body_len >= ms.msg_header_len ? ms.body_len - ms.msg_header_len : 0;
        } else {
            off = ms.body_off;
            len = ms.msg_header_len;
        }
        break;
    default:
        off = ms.body_off;
        len = ms.body_len;
        break;
    }
    /* the table comes from the cache file, which may be damaged or stale: check bounds */
    if (off > f->map_len || len > f->map_len - off) {
        log_warn("imap_fetch_bad_section", "uid=%u part=%s", (unsigned)f->uid, spec);
        buf_appends(&f->out, "NIL");
        return 0;
    }
    if (sec->text == IMAP_SECTION_HEADER_FIELDS || sec->text == IMAP_SECTION_HEADER_FIELDS_NOT ||
        sec->text == IMAP_SECTION_HEADER)
        return emit_header_part(f, sec, f->map + off, (size_t)len);
    return emit_partial(f, sec, f->map + off, (size_t)len);
}

/* internaldate_append: "17-Jul-1996 02:44:25 -0700" (RFC 3501 section 9 date-time), local time. */
static void internaldate_append(int64_t t, struct buf *out)
{
    static const char mon[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm)) {
        tt = 0;
        gmtime_r(&tt, &tm);
    }
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    buf_printf(out, "\"%2d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"", tm.tm_mday, mon[tm.tm_mon],
               tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

static int cache_field(struct fetch *f, enum cache_field id, const char *name)
{
    int r = load_cache(f);
    if (r < 0) return r;
    buf_appends(&f->out, name);
    buf_putc(&f->out, ' ');
    if (f->ce.present[id] && f->ce.f[id].len) buf_append(&f->out, f->ce.f[id].s, f->ce.f[id].len);
    else buf_appends(&f->out, "NIL");
    return 0;
}

/* fetch_one: the FETCH response of one message; flags_changed adds FLAGS when \Seen was just
 * set. 0, or an error (CF_E_NOTFOUND: the message vanished). */
static int fetch_one(struct fetch *f, uint32_t msgno, int flags_changed)
{
    /* map first: a message file that vanished is found before any byte of the reply is out */
    int r = f->need_map ? load_map(f) : 0;
    if (r < 0) return r;
    if (flags_changed || f->has_flags) selected_keywords_announce(f->c);
    f->direct_written = 0;
    buf_reset(&f->out);
    buf_printf(&f->out, "* %u FETCH (", (unsigned)msgno);
    int first = 1;
#define SEP() do { if (!first) buf_putc(&f->out, ' '); first = 0; } while (0)
    if (f->uid_cmd && !f->has_uid) {
        SEP();
        buf_printf(&f->out, "UID %u", (unsigned)f->uid);
    }
    if (flags_changed && !f->has_flags) {
        SEP();
        buf_appends(&f->out, "FLAGS ");
        selected_flags_append(f->sel, &f->rec, &f->out);
    }
    for (size_t i = 0; i < f->n && r == 0; i++) {
        const struct fetch_att *a = &f->atts[i];
        SEP();
        switch (a->kind) {
        case FA_FLAGS:
            buf_appends(&f->out, "FLAGS ");
            selected_flags_append(f->sel, &f->rec, &f->out);
            break;
        case FA_UID:
            buf_printf(&f->out, "UID %u", (unsigned)f->uid);
            break;
        case FA_INTERNALDATE:
            buf_appends(&f->out, "INTERNALDATE ");
            internaldate_append(f->rec.internaldate, &f->out);
            break;
        case FA_SIZE:
            buf_printf(&f->out, "RFC822.SIZE %llu", (unsigned long long)f->rec.size);
            break;
        case FA_ENVELOPE:
            r = cache_field(f, CACHE_ENVELOPE, "ENVELOPE");
            break;
        case FA_BODY:
            r = cache_field(f, CACHE_BODY, "BODY");
            break;
        case FA_BODYSTRUCTURE:
            r = cache_field(f, CACHE_BODYSTRUCTURE, "BODYSTRUCTURE");
            break;
        case FA_RFC822:
            buf_appends(&f->out, "RFC822 ");
            if ((r = load_map(f)) == 0) r = emit_literal(f, f->map, f->map_len);
            break;
        case FA_RFC822_HEADER: {
            const char *h;
            size_t hl;
            buf_appends(&f->out, "RFC822.HEADER ");
            if ((r = top_header(f, &h, &hl)) == 0) r = emit_literal(f, h, hl);
            break;
        }
        case FA_RFC822_TEXT:
            buf_appends(&f->out, "RFC822.TEXT ");
            if ((r = load_map(f)) == 0) {
                size_t hs = f->rec.header_size <= f->map_len ? f->rec.header_size : f->map_len;
                r = emit_literal(f, f->map + hs, f->map_len - hs);
            }
            break;
        case FA_SECTION:
            r = emit_section(f, a->sec);
            break;
        }
    }
#undef SEP
    if (r == 0) {
        buf_appends(&f->out, ")\r\n");
        r = stream_write(f->c->stream, f->out.s, f->out.len);
        if (r < 0) f->io_failed = 1;
    }
    return r;
}

/* mark_seen: set \Seen on the messages of the set that lack it (one commit), before any
 * response is built, so FETCH reports the new flags (RFC 3501 section 6.4.5). The uids
 * changed go into changed (and sel->skip: their FETCH already shows the flags). */
static int mark_seen(struct fetch *f, const struct imap_seqset *msgs, struct imap_seqset *changed)
{
    uint32_t *uids = NULL;
    size_t n = 0, alloc = 0;
    int r = 0;
    for (size_t i = 0; i < msgs->count; i++) {
        for (uint64_t m = msgs->r[i].lo; m <= msgs->r[i].hi; m++) {
            uint32_t uid = selected_uid(f->sel, (uint32_t)m);
            struct index_record rec;
            if (mailbox_record(f->sel->mb, uid, &rec) <= 0) continue;
            selected_seen_apply(f->sel, &rec);
            if (rec.flags & (FLAG_SEEN | FLAG_EXPUNGED)) continue;
            if (n == alloc) {
                alloc = alloc ? alloc * 2 : 64;
                uids = xreallocarray(uids, alloc, sizeof *uids);
            }
            uids[n++] = uid;
        }
    }
    if (n) {
        struct mailbox_store st = { STORE_ADD, FLAG_SEEN, NULL, 0 };
        /* a shared mailbox keeps \Seen per user (selected.h) */
        r = f->sel->seen_user
                ? selected_seen_change(f->sel, uids, n, 1)
                : store_set_flags(f->c->store, f->sel->mb, uids, n, &st, NULL, NULL);
        if (r == 0) {
            for (size_t i = 0; i < n; i++) {
                imap_seqset_add(changed, uids[i], uids[i]);
                imap_seqset_add(&f->sel->skip, uids[i], uids[i]);
            }
        }
    }
    free(uids);
    return r;
}

void cmd_fetch(struct client *c, const struct imap_command *cmd)
{
    struct fetch f;
    memset(&f, 0, sizeof f);
    f.c = c;
    f.sel = c->sel;
    f.uid_cmd = command_is_uid(cmd);
    struct imap_seqset msgs = IMAP_SEQSET_INIT, seen_now = IMAP_SEQSET_INIT;
    const char *err = NULL;
    if (cmd->nargs != 2 || !imap_arg_atom(&cmd->args[0])) {
        client_tagged(c, cmd->tag, "BAD %s takes a sequence set and fetch items", cmd->name);
        goto out;
    }
    if ((err = parse_atts(&f, &cmd->args[1])) != NULL) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (selected_msgset(f.sel, cmd->args[0].s, f.uid_cmd, &msgs, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    int r = 0;
    if (f.set_seen && !f.sel->readonly && strchr(f.sel->rights, 's') &&
        (r = mark_seen(&f, &msgs, &seen_now)) < 0) {
        selected_reply_error(c, cmd->tag, r);
        goto out;
    }
    int gone = 0;
    for (size_t i = 0; i < msgs.count && r == 0; i++) {
        for (uint64_t m = msgs.r[i].lo; m <= msgs.r[i].hi && r == 0; m++) {
            f.uid = selected_uid(f.sel, (uint32_t)m);
            int rr = mailbox_record(f.sel->mb, f.uid, &f.rec);
            if (rr < 0) {
                r = rr;
                break;
            }
            /* RFC 2180 section 4.1: expunged elsewhere but still numbered here */
            if (rr == 0 || (f.rec.flags & FLAG_EXPUNGED)) {
                gone = 1;
                continue;
            }
            r = fetch_one(&f, (uint32_t)m, imap_seqset_contains(&seen_now, f.uid));
            unload(&f);
            if (r == CF_E_NOTFOUND && !f.direct_written) {   /* the file went away: expunged */
                gone = 1;
                r = 0;
            }
        }
    }
    if (r < 0) {
        if (f.io_failed) {
            c->end_reason = "io";
            goto out;
        }
        if (f.direct_written) {
            /* half a response is on the wire: no reply can follow it that the client could
             * parse, so the session ends (the store logged why) */
            log_warn("imap_fetch_aborted", "uid=%u error=%s", (unsigned)f.uid, cf_strerror(r));
            c->end_reason = "fetch_error";
            goto out;
        }
        selected_reply_error(c, cmd->tag, r);
    } else if (gone) {
        /* RFC 2180 section 4.1.1: what could be returned was, so the command succeeded */
        client_tagged(c, cmd->tag, "OK [EXPUNGEISSUED] %s completed; some messages were expunged",
                      cmd->name);
    } else {
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
out:
    unload(&f);
    buf_fini(&f.out);
    free(f.atts);
    imap_seqset_fini(&msgs);
    imap_seqset_fini(&seen_now);
}
