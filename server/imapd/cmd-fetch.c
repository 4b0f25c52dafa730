/* cmd-fetch.c: FETCH and UID FETCH (RFC 3501 sections 6.4.5, 6.4.8, 7.4.2): every data item,
 * answered through the message handle (store/mail.h: index record and cache entry, the message
 * file only for body data), which is streamed from its mapping. */
#include "imapd.h"
#include "imap/imap-downconvert.h"
#include "selected.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap-condstore.h"
#include "imap/imap-date.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include "store/store-mail.h"
#include "net/stream.h"
#include "store/mail.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Body data at least this long is written straight from the message mapping to the stream
 * instead of being copied into the response buffer. */
#define FETCH_DIRECT_MIN 8192

/* A long FETCH response leaves in the stream's 64 KiB writes; its first FETCH_FLUSH_FIRST
 * bytes, then the next up to FETCH_FLUSH_SECOND, are pushed out at once instead, so that the
 * client starts reading (and parsing) while the rest is built: for FETCH 1:* ENVELOPE
 * BODYSTRUCTURE the first 64 KiB are a hundred messages of work before any byte leaves. */
#define FETCH_FLUSH_FIRST 4096
#define FETCH_FLUSH_SECOND 16384

enum fetch_kind {
    FA_FLAGS, FA_INTERNALDATE, FA_SIZE, FA_ENVELOPE, FA_BODY, FA_BODYSTRUCTURE, FA_UID,
    FA_RFC822, FA_RFC822_HEADER, FA_RFC822_TEXT, FA_SECTION,
    FA_BINARY,              /* BINARY[..], BINARY.PEEK[..], BINARY.SIZE[..] (RFC 3516) */
    FA_MODSEQ,                          /* RFC 7162 section 3.1.4.1 */
    FA_SAVEDATE,                        /* RFC 8514 */
    FA_PREVIEW,                         /* RFC 8970 */
    FA_EMAILID, FA_THREADID,            /* RFC 8474 section 5 */
};

struct fetch_att {
    enum fetch_kind kind;
    const struct imap_section *sec;     /* FA_SECTION */
    int lazy;                           /* FA_PREVIEW with the LAZY modifier (RFC 8970) */
};

struct fetch {
    struct client *c;
    struct selected *sel;
    struct fetch_att *atts;
    size_t n, alloc;
    int uid_cmd;
    int has_flags, has_uid;
    int has_modseq;         /* MODSEQ asked, or CHANGEDSINCE (RFC 7162 section 3.1.4.1) */
    int set_seen;           /* BODY[...] without PEEK, RFC822, RFC822.TEXT */
    int need_map;           /* body data other than the top-level header */
    int io_failed;          /* writing to the client failed: the session ends */
    uint64_t changedsince;  /* RFC 7162 CHANGEDSINCE modifier; 0 when absent */
    int direct_written;     /* part of this message's response is already out */
    /* per message: the handle is re-pointed at each one (its buffers are reused) */
    uint32_t uid;
    struct mail *mail;
    const struct index_record *rec;
    struct buf out;
    /* BINARY (RFC 3516): the decoded parts of the current message, and why it failed */
    struct binary_part *bin;
    size_t nbin;
    int unknown_cte;        /* a part's Content-Transfer-Encoding cannot be decoded */
    int literal8;           /* emit_literal may send NULs: a literal8 is being written */
    /* INTERNALDATE of the last message, formatted (messages delivered together share it) */
    int64_t idate_t;
    char idate_s[40];
    size_t idate_len;
    /* the first bytes of a long response go out early (FETCH_FLUSH_FIRST) */
    size_t out_total;
    int flushes;
};

static void att_add(struct fetch *f, enum fetch_kind kind, const struct imap_section *sec)
{
    if (f->n == f->alloc) {
        f->alloc = f->alloc ? f->alloc * 2 : 8;
        f->atts = xreallocarray(f->atts, f->alloc, sizeof *f->atts);
    }
    f->atts[f->n].kind = kind;
    f->atts[f->n].sec = sec;
    f->atts[f->n].lazy = 0;
    f->n++;
    switch (kind) {
    case FA_FLAGS: f->has_flags = 1; break;
    case FA_UID: f->has_uid = 1; break;
    case FA_MODSEQ: f->has_modseq = 1; break;
    case FA_RFC822: case FA_RFC822_TEXT: f->set_seen = f->need_map = 1; break;
    case FA_SECTION:
        if (sec->nparts || sec->text == IMAP_SECTION_NONE || sec->text == IMAP_SECTION_TEXT)
            f->need_map = 1;
        if (strcmp(sec->name, "BODY.PEEK")) f->set_seen = 1;
        break;
    case FA_BINARY:
        f->need_map = 1;
        if (!strcmp(sec->name, "BINARY")) f->set_seen = 1;    /* RFC 3516 section 4.2 */
        break;
    default: break;
    }
}

/* parse_binary_att: BINARY[section-binary]<partial>, BINARY.PEEK[..]<..>, BINARY.SIZE[..]
 * (RFC 3516 section 4.2). The parser already refused anything but part numbers in the section
 * (HEADER, TEXT, MIME: BAD) and a partial range on BINARY.SIZE. NULL, or a reason for BAD. */
static const char *parse_binary_att(struct fetch *f, const struct imap_section *sec)
{
    if (sec->text != IMAP_SECTION_NONE) return "BINARY takes only part numbers";
    if (sec->has_partial && sec->partial_count == 0) return "Partial length must not be 0";
    att_add(f, FA_BINARY, sec);
    return NULL;
}

/* parse_att: one fetch-att (RFC 3501 section 9). NULL, or a reason for BAD. */
static const char *parse_att(struct fetch *f, const struct imap_arg *a)
{
    static const struct { const char *name; enum fetch_kind kind; } simple[] = {
        { "FLAGS", FA_FLAGS }, { "INTERNALDATE", FA_INTERNALDATE }, { "RFC822.SIZE", FA_SIZE },
        { "ENVELOPE", FA_ENVELOPE }, { "BODY", FA_BODY }, { "BODYSTRUCTURE", FA_BODYSTRUCTURE },
        { "UID", FA_UID }, { "RFC822", FA_RFC822 }, { "RFC822.HEADER", FA_RFC822_HEADER },
        { "RFC822.TEXT", FA_RFC822_TEXT }, { "MODSEQ", FA_MODSEQ },
        { "SAVEDATE", FA_SAVEDATE }, { "PREVIEW", FA_PREVIEW },        /* RFC 8514, 8970 */
        { "EMAILID", FA_EMAILID }, { "THREADID", FA_THREADID },        /* RFC 8474 */
    };
    if (a->type == IMAP_ARG_SECTION) {
        const struct imap_section *sec = a->section;
        if (!strncmp(sec->name, "BINARY", 6)) return parse_binary_att(f, sec);
        if (strcmp(sec->name, "BODY") && strcmp(sec->name, "BODY.PEEK"))
            return "Invalid fetch attribute";
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

/* parse_preview_mods: the modifier list after PREVIEW (RFC 8970 formal syntax: "(" preview-mod
 * *(SP preview-mod) ")", preview-mod = "LAZY") for the item just added. NULL, or a reason for
 * BAD. */
static const char *parse_preview_mods(struct fetch *f, const struct imap_arg *a)
{
    if (!a->count) return "Empty PREVIEW modifier list";
    for (size_t i = 0; i < a->count; i++) {
        if (!imap_arg_atom_eq(&a->list[i], "LAZY")) return "Unknown PREVIEW modifier";
        f->atts[f->n - 1].lazy = 1;
    }
    return NULL;
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
        if (imap_arg_atom_eq(&a->list[i], "PREVIEW") && i + 1 < a->count &&
            a->list[i + 1].type == IMAP_ARG_LIST &&
            (err = parse_preview_mods(f, &a->list[++i])) != NULL)
            return err;
    }
    return NULL;
}

/* ---- data of one message ---- */

static int emit_without_nul(struct fetch *f, const char *p, size_t len);

/* emit_literal: {N} CRLF and the bytes; long data goes straight to the stream. */
static int emit_literal(struct fetch *f, const char *p, size_t len)
{
    if (!f->literal8 && len && memchr(p, '\0', len)) return emit_without_nul(f, p, len);
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

/* emit_without_nul: a literal of data holding NUL bytes, which only binary content APPENDed
 * as literal8 can have (RFC 3516 section 4.4; the store keeps it as sent). A literal cannot
 * carry NUL (RFC 3501 section 9, CHAR8), and a client that fetches BODY[] has not asked for
 * literal8: each NUL is sent as 0x80, which keeps the size RFC822.SIZE announced. BINARY[]
 * returns the bytes as stored. */
static int emit_without_nul(struct fetch *f, const char *p, size_t len)
{
    char *copy = xmalloc(len);
    for (size_t i = 0; i < len; i++) copy[i] = p[i] ? p[i] : (char)0x80;
    int r = emit_literal(f, copy, len);
    free(copy);
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

struct filter_rock { const struct imap_section *sec; int not; struct buf *out; };

static int filter_cb(void *rock, const char *name, size_t name_len, const char *field,
                     size_t field_len)
{
    struct filter_rock *fr = rock;
    if (!name || field_match(fr->sec, name, name_len) == fr->not) return 0;
    buf_append(fr->out, field, field_len);
    if (field[field_len - 1] != '\n') buf_appends(fr->out, "\r\n");   /* the last, cut short */
    return 0;
}

/* header_filter: the fields of header block h whose names are (not, for .NOT) among the
 * section's, raw and in message order, then the empty line (RFC 3501 section 6.4.5). */
static void header_filter(const struct imap_section *sec, const char *h, size_t len,
                          struct buf *out)
{
    struct filter_rock fr = { sec, sec->text == IMAP_SECTION_HEADER_FIELDS_NOT, out };
    mime_header_foreach_raw(h, len, filter_cb, &fr);
    buf_appends(out, "\r\n");
}

/* emit_header_part: header text (a top-level header, or an encapsulated message's) per the
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
    const char *p;
    size_t len;
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
            if ((r = mail_header(f->mail, &h, &hl)) < 0) return r;
            return emit_header_part(f, sec, h, hl);
        }
        case IMAP_SECTION_TEXT:
            if ((r = mail_body(f->mail, &p, &len)) < 0) return r;
            return emit_partial(f, sec, p, len);
        default:
            if ((r = mail_message(f->mail, &p, &len)) < 0) return r;
            return emit_partial(f, sec, p, len);
        }
    }
    char spec[16 * 11 + 1];
    size_t sl = 0;
    for (size_t i = 0; i < sec->nparts && sl < sizeof spec - 12; i++)
        sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%s%u", i ? "." : "",
                               (unsigned)sec->parts[i]);
    struct mime_section ms;
    if (sec->nparts > 16 || (r = mail_section_find(f->mail, spec, &ms)) == 0) {
        buf_appends(&f->out, "NIL");
        return 0;
    }
    if (r < 0) return r;
    if ((r = mail_message(f->mail, &p, &len)) < 0) return r;
    uint64_t off, plen;
    switch (sec->text) {
    case IMAP_SECTION_MIME:
        off = ms.header_off;
        plen = ms.header_len;
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
            plen = ms.body_len >= ms.msg_header_len ? ms.body_len - ms.msg_header_len : 0;
        } else {
            off = ms.body_off;
            plen = ms.msg_header_len;
        }
        break;
    default:
        off = ms.body_off;
        plen = ms.body_len;
        break;
    }
    /* the table comes from the cache file, which may be damaged or stale: check bounds */
    if (off > len || plen > len - off) {
        log_warn("imap_fetch_bad_section", "uid=%u part=%s", (unsigned)f->uid, spec);
        buf_appends(&f->out, "NIL");
        return 0;
    }
    if (sec->text == IMAP_SECTION_HEADER_FIELDS || sec->text == IMAP_SECTION_HEADER_FIELDS_NOT ||
        sec->text == IMAP_SECTION_HEADER)
        return emit_header_part(f, sec, p + off, (size_t)plen);
    return emit_partial(f, sec, p + off, (size_t)plen);
}

/* ---- BINARY (RFC 3516) ---- */

/* One section of the current message with its Content-Transfer-Encoding removed. The items
 * of one FETCH that name the same part (BINARY[1] BINARY.SIZE[1]) share it: a part is decoded
 * once per message, and BINARY.SIZE is the length of what BINARY[] sends. */
struct binary_part {
    char spec[16 * 11 + 1];     /* the part numbers, "1.2"; "" for the whole message */
    int found;                  /* 0: no such part (BINARY gives NIL, BINARY.SIZE 0) */
    const char *data;           /* the decoded bytes: into the mapping, or buf */
    size_t len;
    struct buf buf;
};

/* binary_spec: the part numbers of sec as "1.2" into spec; 0, or -1 when there are more than
 * a section table can hold. */
static int binary_spec(const struct imap_section *sec, char *spec, size_t size)
{
    size_t sl = 0;
    spec[0] = '\0';
    if (sec->nparts > 16) return -1;
    for (size_t i = 0; i < sec->nparts; i++)
        sl += (size_t)snprintf(spec + sl, size - sl, "%s%u", i ? "." : "", (unsigned)sec->parts[i]);
    return 0;
}

static struct binary_part *binary_find(struct fetch *f, const char *spec)
{
    for (size_t i = 0; i < f->nbin; i++)
        if (!strcmp(f->bin[i].spec, spec)) return &f->bin[i];
    return NULL;
}

/* binary_decode: fill bp (spec set) from the current message; with check_only, only look at
 * its encoding. 0 (found or not), CF_E_PARSE with f->unknown_cte for an encoding that cannot
 * be removed, or a store error. */
static int binary_decode(struct fetch *f, struct binary_part *bp, int check_only)
{
    const char *p;
    size_t len;
    int r = mail_message(f->mail, &p, &len);
    if (r < 0) return r;
    bp->found = 0;
    if (!bp->spec[0]) {
        /* BINARY[]: the whole message, an entity of type message/rfc822, whose only
         * encodings are the identities (RFC 2045 section 6.4) */
        bp->found = 1;
        bp->data = p;
        bp->len = len;
        return 0;
    }
    struct mime_section ms;
    if ((r = mail_section_find(f->mail, bp->spec, &ms)) <= 0) return r;
    /* the table comes from the cache file, which may be damaged or stale: check bounds */
    if (ms.header_off > len || ms.header_len > len - ms.header_off || ms.body_off > len ||
        ms.body_len > len - ms.body_off) {
        log_warn("imap_fetch_bad_section", "uid=%u part=%s", (unsigned)f->uid, bp->spec);
        return 0;
    }
    enum mime_cte cte = MIME_CTE_IDENTITY;
    /* a multipart or message/rfc822 part (not a leaf) is sent as it is, boundaries and
     * headers included: composite types cannot be encoded (RFC 2045 section 6.4), so their
     * decoded form is their body */
    if (!ms.is_multipart && !ms.is_message_rfc822)
        cte = mime_cte_of_header(p + ms.header_off, (size_t)ms.header_len);
    if (cte == MIME_CTE_UNKNOWN) {
        f->unknown_cte = 1;
        return CF_E_PARSE;
    }
    if (check_only) return 0;
    bp->found = 1;
    if (cte == MIME_CTE_IDENTITY) {
        bp->data = p + ms.body_off;
        bp->len = (size_t)ms.body_len;
        return 0;
    }
    /* RFC 2045 section 6.8: bytes outside the base64 alphabet are ignored; a bad "=XY" in
     * quoted-printable is kept as it stands (section 6.7 note 1): the data is sent as decoded
     * so far rather than failing the FETCH */
    buf_reset(&bp->buf);
    mime_cte_decode(cte, p + ms.body_off, (size_t)ms.body_len, &bp->buf);
    bp->data = bp->buf.s ? bp->buf.s : "";
    bp->len = bp->buf.len;
    return 0;
}

/* binary_cached_size: when the FETCH names part spec only in BINARY.SIZE items and the cache
 * keeps its decoded size (computed at append: lib/mime/binsize.h), fill bp from it without
 * decoding the part. 1 done, 0 decode it (an identity, unknown or composite encoding, an old
 * cache record, or a BINARY[] of the same part that needs the bytes anyway). */
static int binary_cached_size(struct fetch *f, struct binary_part *bp)
{
    for (size_t i = 0; i < f->n; i++) {
        const struct fetch_att *a = &f->atts[i];
        char spec[sizeof f->bin[0].spec];
        if (a->kind != FA_BINARY || binary_spec(a->sec, spec, sizeof spec) < 0) continue;
        if (!strcmp(spec, bp->spec) && strcmp(a->sec->name, "BINARY.SIZE")) return 0;
    }
    uint64_t size;
    if (!bp->spec[0] || mail_binary_size(f->mail, bp->spec, &size) != 1 || size > SIZE_MAX)
        return 0;
    /* listed only when its encoding was base64 or quoted-printable: a known one */
    bp->found = 1;
    bp->data = NULL;
    bp->len = (size_t)size;
    return 1;
}

/* binary_prepare: decode every part the BINARY items of the FETCH name (with check_only:
 * look at their encodings), before any byte of the message's response is built, so that an
 * unknown encoding fails the command cleanly (RFC 3516 section 4.3: NO [UNKNOWN-CTE]). 0 or
 * an error. */
static int binary_prepare(struct fetch *f, int check_only)
{
    f->nbin = 0;
    for (size_t i = 0; i < f->n; i++) {
        const struct fetch_att *a = &f->atts[i];
        char spec[sizeof f->bin[0].spec];
        if (a->kind != FA_BINARY) continue;
        if (binary_spec(a->sec, spec, sizeof spec) < 0 || binary_find(f, spec)) continue;
        if (!f->bin) f->bin = xzmalloc(f->n * sizeof *f->bin);   /* at most one per item */
        struct binary_part *bp = &f->bin[f->nbin++];
        memcpy(bp->spec, spec, sizeof spec);
        if (binary_cached_size(f, bp)) continue;
        int r = binary_decode(f, bp, check_only);
        if (r < 0) return r;
    }
    return 0;
}

/* emit_binary: BINARY[part]<offset> with the decoded data (a literal8 when it holds NUL,
 * else a literal: RFC 3516 section 4.3), NIL for a part that does not exist, or
 * BINARY.SIZE[part] with its decoded length. */
static int emit_binary(struct fetch *f, const struct imap_section *sec)
{
    char spec[sizeof f->bin[0].spec];
    const struct binary_part *bp =
        binary_spec(sec, spec, sizeof spec) < 0 ? NULL : binary_find(f, spec);
    imap_section_format(sec, 1, &f->out);
    buf_putc(&f->out, ' ');
    if (!strcmp(sec->name, "BINARY.SIZE")) {
        buf_printf(&f->out, "%zu", bp && bp->found ? bp->len : 0);
        return 0;
    }
    if (!bp || !bp->found) {
        buf_appends(&f->out, "NIL");
        return 0;
    }
    const char *p = bp->data;
    size_t len = bp->len;
    if (sec->has_partial) {                         /* the offset is into the decoded data */
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
    if (len && memchr(p, '\0', len)) buf_putc(&f->out, '~');
    f->literal8 = 1;
    int r = emit_literal(f, p, len);
    f->literal8 = 0;
    return r;
}

/* cached_text: "NAME text" with the IMAP text the store computed at append, or NIL. */
static int cached_text(struct fetch *f, enum mail_field field, const char *name)
{
    const char *p;
    size_t len;
    int r = mail_field(f->mail, field, &p, &len);
    if (r < 0) return r;
    buf_appends(&f->out, name);
    buf_putc(&f->out, ' ');
    /* RFC 6855 section 7: UTF-8 header text as encoded-words for a session that enabled
     * neither UTF8=ACCEPT nor IMAP4rev2 (rev2.c, imap/imap-downconvert.h) */
    if (len && !rev2_utf8_names(f->c)) imap_downconvert_append(p, len, &f->out);
    else if (len) buf_append(&f->out, p, len);
    else buf_appends(&f->out, "NIL");
    return 0;
}

/* emit_internaldate: the INTERNALDATE date-time of the message; the text of the last one is
 * kept, since a mailbox's messages often share their second of delivery (the time zone
 * cannot change within one command). */
static void emit_internaldate(struct fetch *f)
{
    int64_t t = f->rec->internaldate;
    if (f->idate_len && t == f->idate_t) {
        buf_append(&f->out, f->idate_s, f->idate_len);
        return;
    }
    size_t start = f->out.len;
    imap_datetime_append(t, &f->out);
    size_t n = f->out.len - start;
    f->idate_len = 0;
    if (n <= sizeof f->idate_s) {
        memcpy(f->idate_s, f->out.s + start, n);
        f->idate_len = n;
        f->idate_t = t;
    }
}

/* emit_savedate: RFC 8514: "SAVEDATE" and the date the message was stored in
 * this mailbox, NIL when it is not known (a record from before index version 3). */
static void emit_savedate(struct fetch *f)
{
    buf_appends(&f->out, "SAVEDATE ");
    if (f->rec->savedate) imap_datetime_append(f->rec->savedate, &f->out);
    else buf_appends(&f->out, "NIL");
}

/* emit_objectid: RFC 8474 section 5.1 and 5.2: EMAILID, "E" and the 40 hex digits of the
 * GUID (the SHA-1 of the message, so copies share it); THREADID, "T" and 16 hex digits of the
 * thread number (mailbox_threadid). 0 or a store error. */
static int emit_objectid(struct fetch *f, enum fetch_kind kind)
{
    if (kind == FA_EMAILID) {
        buf_appends(&f->out, "EMAILID (E");
        for (int i = 0; i < 20; i++) buf_printf(&f->out, "%02x", f->rec->guid[i]);
        buf_putc(&f->out, ')');
        return 0;
    }
    uint64_t tid;
    int r = mail_threadid(f->mail, &tid);
    if (r < 0) return r;
    buf_printf(&f->out, "THREADID (T%016llx)", (unsigned long long)tid);
    return 0;
}

/* emit_preview: RFC 8970: "PREVIEW" and the preview text kept in the cache, as a
 * quoted string when it is plain ASCII, else a literal (UTF-8); NIL for LAZY when the cache
 * record predates previews (computed from the message otherwise). 0 or a store error. */
static int emit_preview(struct fetch *f, int lazy)
{
    const char *p;
    size_t len;
    int r = mail_preview(f->mail, lazy, &p, &len);
    if (r < 0) return r;
    buf_appends(&f->out, "PREVIEW ");
    if (r == 1) {
        buf_appends(&f->out, "NIL");
        return 0;
    }
    int quotable = 1;
    for (size_t i = 0; i < len && quotable; i++)
        if ((unsigned char)p[i] >= 0x80 || (unsigned char)p[i] < 0x20) quotable = 0;
    if (!quotable) return emit_literal(f, p, len);
    buf_putc(&f->out, '"');
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '"' || p[i] == '\\') buf_putc(&f->out, '\\');
        buf_putc(&f->out, p[i]);
    }
    buf_putc(&f->out, '"');
    return 0;
}

/* has_binary: whether the FETCH has a BINARY item. */
static int has_binary(const struct fetch *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->atts[i].kind == FA_BINARY) return 1;
    return 0;
}

/* fetch_one: the FETCH response of one message; flags_changed adds FLAGS when \Seen was just
 * set. 0, or an error (CF_E_NOTFOUND: the message vanished). */
static int fetch_one(struct fetch *f, uint32_t msgno, int flags_changed)
{
    /* map first: a message file that vanished is found before any byte of the reply is out */
    const char *p;
    size_t len;
    int r = f->need_map ? mail_message(f->mail, &p, &len) : 0;
    if (r < 0) return r;
    if (f->bin || has_binary(f)) {
        if ((r = binary_prepare(f, 0)) < 0) return r;
    }
    if (flags_changed || f->has_flags) selected_keywords_announce(f->c);
    f->direct_written = 0;
    buf_reset(&f->out);
    buf_appends(&f->out, "* ");     /* no printf: FETCH 1:* (FLAGS) is mostly this */
    buf_putu32(&f->out, msgno);
    buf_appends(&f->out, " FETCH (");
    int first = 1;
#define SEP() do { if (!first) buf_putc(&f->out, ' '); first = 0; } while (0)
    /* RFC 7162 section 3.2.4: with QRESYNC every untagged FETCH carries the UID */
    if ((f->uid_cmd || (f->c->enabled & CLIENT_ENABLED_QRESYNC)) && !f->has_uid) {
        SEP();
        buf_appends(&f->out, "UID ");
        buf_putu32(&f->out, f->uid);
    }
    if (flags_changed && !f->has_flags) {
        SEP();
        buf_appends(&f->out, "FLAGS ");
        selected_flags_append(f->sel, f->rec, &f->out);
    }
    for (size_t i = 0; i < f->n && r == 0; i++) {
        const struct fetch_att *a = &f->atts[i];
        SEP();
        switch (a->kind) {
        case FA_FLAGS:
            buf_appends(&f->out, "FLAGS ");
            selected_flags_append(f->sel, f->rec, &f->out);
            break;
        case FA_UID:
            buf_appends(&f->out, "UID ");
            buf_putu32(&f->out, f->uid);
            break;
        case FA_INTERNALDATE:
            buf_appends(&f->out, "INTERNALDATE ");
            emit_internaldate(f);
            break;
        case FA_SIZE:
            buf_appends(&f->out, "RFC822.SIZE ");
            buf_putu64(&f->out, f->rec->size);
            break;
        case FA_ENVELOPE:
            r = cached_text(f, MAIL_ENVELOPE, "ENVELOPE");
            break;
        case FA_BODY:
            r = cached_text(f, MAIL_BODY, "BODY");
            break;
        case FA_BODYSTRUCTURE:
            r = cached_text(f, MAIL_BODYSTRUCTURE, "BODYSTRUCTURE");
            break;
        case FA_RFC822:
            buf_appends(&f->out, "RFC822 ");
            if ((r = mail_message(f->mail, &p, &len)) == 0) r = emit_literal(f, p, len);
            break;
        case FA_RFC822_HEADER:
            buf_appends(&f->out, "RFC822.HEADER ");
            if ((r = mail_header(f->mail, &p, &len)) == 0) r = emit_literal(f, p, len);
            break;
        case FA_RFC822_TEXT:
            buf_appends(&f->out, "RFC822.TEXT ");
            if ((r = mail_body(f->mail, &p, &len)) == 0) r = emit_literal(f, p, len);
            break;
        case FA_SECTION:
            r = emit_section(f, a->sec);
            break;
        case FA_BINARY:
            r = emit_binary(f, a->sec);
            break;
        case FA_MODSEQ:
            buf_printf(&f->out, "MODSEQ (%llu)", (unsigned long long)selected_modseq(f->sel, f->rec));
            break;
        case FA_SAVEDATE:
            emit_savedate(f);
            break;
        case FA_PREVIEW:
            r = emit_preview(f, a->lazy);
            break;
        case FA_EMAILID:
        case FA_THREADID:
            r = emit_objectid(f, a->kind);
            break;
        }
    }
    /* RFC 7162 section 3.1.4: a flag change reported with CONDSTORE on carries MODSEQ, and
     * CHANGEDSINCE implies the MODSEQ item (section 3.1.4.1) */
    if (r == 0 && !f->has_modseq && (f->changedsince ||
                           (flags_changed && (f->c->enabled & CLIENT_ENABLED_CONDSTORE)))) {
        SEP();
        buf_printf(&f->out, "MODSEQ (%llu)", (unsigned long long)selected_modseq(f->sel, f->rec));
    }
#undef SEP
    if (r == 0) {
        buf_appends(&f->out, ")\r\n");
        r = stream_write(f->c->stream, f->out.s, f->out.len);
        f->out_total += f->out.len;
        if (r == 0 && f->flushes < 2 &&
            f->out_total >= (f->flushes ? FETCH_FLUSH_SECOND : FETCH_FLUSH_FIRST)) {
            f->flushes++;
            r = stream_flush(f->c->stream);
        }
        if (r < 0) f->io_failed = 1;
    }
    return r;
}

/* binary_precheck: when the FETCH is about to set \Seen and has BINARY items, look at the
 * encodings of their parts in every message first (no decoding), so that a FETCH failing
 * with NO [UNKNOWN-CTE] leaves the flags as they were. -1 for such a part (f->unknown_cte),
 * else 0: other errors are left for the FETCH itself to meet. */
static int binary_precheck(struct fetch *f, const struct imap_seqset *msgs)
{
    if (!f->set_seen || f->sel->readonly || !strchr(f->sel->rights, 's') || !has_binary(f))
        return 0;
    struct mail *keep = f->mail;
    int r = 0;
    f->mail = mail_new(f->sel->mb);
    for (size_t i = 0; i < msgs->count && !f->unknown_cte; i++) {
        for (uint64_t m = msgs->r[i].lo; m <= msgs->r[i].hi && !f->unknown_cte; m++) {
            const struct index_record *rec;
            f->uid = selected_uid(f->sel, (uint32_t)m);
            mail_set_uid(f->mail, f->uid);
            if (mail_record(f->mail, &rec) <= 0) continue;
            binary_prepare(f, 1);
        }
    }
    if (f->unknown_cte) r = -1;
    mail_free(&f->mail);
    f->mail = keep;
    f->nbin = 0;
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

/* A message changed_msgnos found: its number and, when the scan read it, its record (uid 0:
 * look it up). */
struct visit {
    uint32_t msgno;
    struct index_record rec;
};

static int cmp_visit(const void *a, const void *b)
{
    const struct visit *x = a, *y = b;
    if (x->msgno != y->msgno) return x->msgno < y->msgno ? -1 : 1;
    return (x->rec.uid == 0) - (y->rec.uid == 0);   /* the one with a record first */
}

/* changed_msgnos: RFC 7162 section 3.1.4.1 CHANGEDSINCE: the message numbers of msgs whose
 * mod-sequence is above it (a \Seen set by this FETCH, seen_now, is such a change), from
 * mailbox_modseq_scan, which reads only the blocks of records holding one, so that the cost
 * follows the changes and not the set (FETCH 1:* (FLAGS) (CHANGEDSINCE m) on a big mailbox).
 * Only when the scan says every message of the view is live in the index it read (the
 * session saw every change): a message not listed then has a mod-sequence <= m, and none of
 * the set was expunged elsewhere (RFC 2180 section 4.1). Not for per-user \Seen (its
 * mod-sequences are not the records'). *visit_r (ascending, caller frees) and 1, 0 when the
 * caller must look at every message of the set, or a store error. Each comes with the record
 * the scan read under the lock, so that answering it needs no second lookup (each several
 * pages of a fresh session's mapping). */
static int changed_msgnos(struct fetch *f, const struct imap_seqset *msgs,
                          const struct imap_seqset *seen_now, struct visit **visit_r, size_t *n_r)
{
    *visit_r = NULL;
    *n_r = 0;
    if (f->sel->seen_user) return 0;
    struct mailbox_modseq_scan scan;
    int r = mailbox_modseq_scan(f->sel->mb, f->changedsince, &scan);
    if (r < 0 || !scan.view_current) {
        mailbox_modseq_scan_fini(&scan);
        return r;
    }
    struct visit *v = NULL;
    size_t n = 0, alloc = 0;
    for (size_t i = 0; i < scan.n_changed; i++) {
        uint32_t m = selected_msgno(f->sel, scan.changed[i]);
        if (!m || !imap_seqset_contains(msgs, m)) continue;
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            v = xreallocarray(v, alloc, sizeof *v);
        }
        v[n].msgno = m;
        v[n++].rec = scan.changed_recs[i];
    }
    for (size_t i = 0; i < seen_now->count; i++) {
        for (uint64_t u = seen_now->r[i].lo; u <= seen_now->r[i].hi; u++) {
            uint32_t m = selected_msgno(f->sel, (uint32_t)u);
            if (!m || !imap_seqset_contains(msgs, m)) continue;
            if (n == alloc) {
                alloc = alloc ? alloc * 2 : 64;
                v = xreallocarray(v, alloc, sizeof *v);
            }
            memset(&v[n].rec, 0, sizeof v[n].rec);
            v[n++].msgno = m;
        }
    }
    mailbox_modseq_scan_fini(&scan);
    if (n) qsort(v, n, sizeof *v, cmp_visit);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || v[i].msgno != v[k - 1].msgno) v[k++] = v[i];
    *visit_r = v;
    *n_r = k;
    return 1;
}

/* fetch_vanished: RFC 7162 section 3.2.6: UID FETCH ... (CHANGEDSINCE m VANISHED): "*
 * VANISHED (EARLIER)" for the uids of the set (as sent, not only those in the view) expunged
 * after m, before the FETCH responses. 0 or a store error. */
static int fetch_vanished(struct fetch *f, const char *set_text)
{
    struct imap_seqset in = IMAP_SEQSET_INIT, uids = IMAP_SEQSET_INIT, gone = IMAP_SEQSET_INIT;
    struct mailbox_modseq_scan scan;
    const char *err;
    int r = mailbox_modseq_scan(f->sel->mb, selected_modseq_raw(f->sel, f->changedsince), &scan);
    if (r < 0) goto out;
    if (imap_seqset_parse(&in, set_text, strlen(set_text), &err) < 0) goto out;
    uint32_t uidnext = mailbox_header(f->sel->mb)->uidnext;
    if (in.saved) {
        for (size_t i = 0; i < f->sel->saved.count; i++)
            imap_seqset_add(&uids, f->sel->saved.r[i].lo, f->sel->saved.r[i].hi);
    } else {
        imap_seqset_resolve(&in, uidnext > 1 ? uidnext - 1 : 0, &uids);
    }
    selected_vanished_since(f->sel, f->changedsince, &uids, 1, &scan, &gone);
    selected_vanished(f->c, &gone, 1);
out:
    mailbox_modseq_scan_fini(&scan);
    imap_seqset_fini(&in);
    imap_seqset_fini(&uids);
    imap_seqset_fini(&gone);
    return r;
}

/* preview_mods_arg: 1 when the fetch items are the single item PREVIEW followed by its own
 * modifier list ("FETCH 1 PREVIEW (LAZY)", RFC 8970 formal syntax), which then sits where fetch
 * modifiers would (told apart by its first word, a preview-mod); else 0. */
static size_t preview_mods_arg(const struct imap_command *cmd)
{
    return cmd->nargs >= 3 && imap_arg_atom_eq(&cmd->args[1], "PREVIEW") &&
           cmd->args[2].type == IMAP_ARG_LIST && cmd->args[2].count &&
           imap_arg_atom_eq(&cmd->args[2].list[0], "LAZY");
}

void cmd_fetch(struct client *c, const struct imap_command *cmd)
{
    struct fetch f;
    memset(&f, 0, sizeof f);
    f.c = c;
    f.sel = c->sel;
    f.uid_cmd = command_is_uid(cmd);
    struct imap_seqset msgs = IMAP_SEQSET_INIT, seen_now = IMAP_SEQSET_INIT;
    struct visit *visit = NULL; /* CHANGEDSINCE: the messages to look at */
    size_t nvisit = 0;
    int use_visit = 0;
    const char *err = NULL;
    int vanished = 0;
    size_t mods = preview_mods_arg(cmd);
    if ((cmd->nargs != 2 + mods && cmd->nargs != 3 + mods) || !imap_arg_atom(&cmd->args[0])) {
        client_tagged(c, cmd->tag, "BAD %s takes a sequence set and fetch items", cmd->name);
        goto out;
    }
    if ((err = parse_atts(&f, &cmd->args[1])) != NULL ||
        (mods && (err = parse_preview_mods(&f, &cmd->args[2])) != NULL)) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    /* RFC 4466 section 2.4 fetch modifiers: CHANGEDSINCE and VANISHED (RFC 7162) */
    if (cmd->nargs == 3 + mods &&
        imap_fetch_modifiers_parse(&cmd->args[2 + mods], &f.changedsince, &vanished, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    /* RFC 7162 section 3.2.6: VANISHED only in UID FETCH, with QRESYNC enabled */
    if (vanished && (!f.uid_cmd || !(c->enabled & CLIENT_ENABLED_QRESYNC))) {
        client_tagged(c, cmd->tag, "BAD VANISHED needs UID FETCH and ENABLE QRESYNC");
        goto out;
    }
    if (selected_msgset(f.sel, cmd->args[0].s, f.uid_cmd, &msgs, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (binary_precheck(&f, &msgs) < 0) {
        client_tagged(c, cmd->tag, "NO [UNKNOWN-CTE] Cannot decode the "
                      "Content-Transfer-Encoding of a part (RFC 3516)");
        goto out;
    }
    /* RFC 7162 section 3.1: FETCH MODSEQ and CHANGEDSINCE are CONDSTORE-enabling */
    if (f.has_modseq || f.changedsince) condstore_enable(c, CLIENT_ENABLED_CONDSTORE);
    int r = 0;
    if (vanished && (r = fetch_vanished(&f, cmd->args[0].s)) < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    if (f.set_seen && !f.sel->readonly && strchr(f.sel->rights, 's') &&
        (r = mark_seen(&f, &msgs, &seen_now)) < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    if (f.changedsince &&
        (use_visit = changed_msgnos(&f, &msgs, &seen_now, &visit, &nvisit)) < 0) {
        imapd_reply_error(c, cmd->tag, use_visit);
        goto out;
    }
    int gone = 0;
    uint32_t hint = 0;      /* mailbox_record_next's place in the index */
    f.mail = mail_new(f.sel->mb);
    /* every message of the set, or (CHANGEDSINCE) only those changed_msgnos found */
    for (size_t i = 0; i < (use_visit ? nvisit : msgs.count) && r == 0; i++) {
        uint64_t lo = use_visit ? visit[i].msgno : msgs.r[i].lo;
        uint64_t hi = use_visit ? visit[i].msgno : msgs.r[i].hi;
        for (uint64_t m = lo; m <= hi && r == 0; m++) {
            f.uid = selected_uid(f.sel, (uint32_t)m);
            if (use_visit && visit[i].rec.uid == f.uid) {
                mail_set_record(f.mail, &visit[i].rec);   /* as the scan read it */
            } else {
                /* the set's uids ascend: the record from where the last one was found */
                struct index_record rec;
                int found = mailbox_record_next(f.sel->mb, f.uid, &hint, &rec);
                if (found < 0) {
                    r = found;
                    break;
                }
                if (found) mail_set_record(f.mail, &rec);
                else mail_set_uid(f.mail, 0);             /* none: gone, as below */
            }
            int rr = mail_record(f.mail, &f.rec);
            if (rr < 0) {
                r = rr;
                break;
            }
            /* RFC 2180 section 4.1: expunged elsewhere but still numbered here */
            if (rr == 0) {
                gone = 1;
                continue;
            }
            /* RFC 7162 section 3.1.4.1: only messages changed after CHANGEDSINCE (a \Seen set
             * by this FETCH is such a change) */
            if (f.changedsince && selected_modseq(f.sel, f.rec) <= f.changedsince &&
                !imap_seqset_contains(&seen_now, f.uid))
                continue;
            r = fetch_one(&f, (uint32_t)m, imap_seqset_contains(&seen_now, f.uid));
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
        if (f.unknown_cte)
            client_tagged(c, cmd->tag, "NO [UNKNOWN-CTE] Cannot decode the "
                          "Content-Transfer-Encoding of a part (RFC 3516)");
        else
            imapd_reply_error(c, cmd->tag, r);
    } else if (gone) {
        /* RFC 2180 section 4.1.1: what could be returned was, so the command succeeded */
        client_tagged(c, cmd->tag, "OK [EXPUNGEISSUED] %s completed; some messages were expunged",
                      cmd->name);
    } else {
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
out:
    free(visit);
    mail_free(&f.mail);
    for (size_t i = 0; f.bin && i < f.n; i++) buf_fini(&f.bin[i].buf);
    free(f.bin);
    buf_fini(&f.out);
    free(f.atts);
    imap_seqset_fini(&msgs);
    imap_seqset_fini(&seen_now);
}
