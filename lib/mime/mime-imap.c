/* mime-imap.c: writes a parsed part tree as IMAP ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501
 * sections 7.4.2 and 9) and as the section table; looks parts up in that table. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "core/error.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include "mime/mime-int.h"

/* Past this length a string goes out as a literal even when it could be quoted, so no client
 * meets a giant quoted string. */
#define QUOTED_MAX 1024
#define MAX_PARAMS 64

struct wctx {
    const struct mime_tree *t;
    struct buf s1, s2, s3, s4;   /* scratch, reused for every field */
};

/* ---- strings ---- */

/* put_string_x: an IMAP string (RFC 3501 section 4.3): quoted when it can be, with \" and \\
 * escaped; a literal when it holds 8-bit bytes, CR or LF. NUL bytes, which no IMAP string can
 * carry (CHAR8 excludes them), are dropped. With upper, a-z go out as A-Z (put_upper). */
static void put_string_x(struct buf *out, const char *p, size_t n, int upper)
{
    size_t i, nnul = 0, quotes = 0;
    int literal = n > QUOTED_MAX;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0) nnul++;
        else if (c >= 0x80 || c == '\r' || c == '\n') literal = 1;
        else if (c == '"' || c == '\\') quotes++;
    }
    if (literal) {
        buf_printf(out, "{%zu}\r\n", n - nnul);
        if (buf_ensure(out, n) < 0) return;
        for (i = 0; i < n; i++)
            if (p[i]) out->s[out->len++] = upper && p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i];
        return;
    }
    if (buf_ensure(out, n + quotes + 2) < 0) return;
    out->s[out->len++] = '"';
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (!c) continue;
        if (c == '"' || c == '\\') out->s[out->len++] = '\\';
        out->s[out->len++] = upper && c >= 'a' && c <= 'z' ? c - 32 : c;
    }
    out->s[out->len++] = '"';
}

static void put_string(struct buf *out, const char *p, size_t n) { put_string_x(out, p, n, 0); }
static void put_upper(struct buf *out, const char *p, size_t n) { put_string_x(out, p, n, 1); }
static void put_nil(struct buf *out) { buf_append(out, "NIL", 3); }
static void put_sp(struct buf *out) { buf_putc(out, ' '); }

/* unfold: the field value with folding line breaks removed and outer white space trimmed
 * (RFC 5322 section 2.2.3), into b (reset first). A bare CR stays. */
static void unfold(struct buf *b, const char *p, size_t n)
{
    const char *end = p + n;
    buf_reset(b);
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    if (buf_ensure(b, (size_t)(end - p)) < 0) return;
    for (; p < end; p++) {
        if (*p == '\n') continue;
        if (*p == '\r' && p + 1 < end && p[1] == '\n') continue;
        b->s[b->len++] = *p;
    }
}

/* put_field: the unfolded field as an nstring (NIL when absent). */
static void put_field(struct wctx *w, struct buf *out, const struct mime_field *f)
{
    if (!f->p) { put_nil(out); return; }
    unfold(&w->s1, f->p, f->n);
    put_string(out, w->s1.s ? w->s1.s : "", w->s1.len);
}

/* ---- addresses (RFC 5322 section 3.4) ---- */

enum { AT_END = 0, AT_ATOM = 'a', AT_QUOTED = 'q', AT_DLIT = 'd' };
struct atok { int type; const char *s; size_t n; int ws; };

static int is_wsp(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* append_text: bytes with quoted-pairs resolved (when unq) and line breaks dropped. */
static void append_text(struct buf *b, const char *s, size_t n, int unq)
{
    const char *e = s + n;
    for (; s < e; s++) {
        if (*s == '\r' || *s == '\n') continue;
        if (unq && *s == '\\' && s + 1 < e) s++;
        buf_putc(b, *s);
    }
}

/* alex: the next token of an address header; comments are skipped, the last one's text kept in
 * comment (reset per comment). */
static const char *alex(const char *p, const char *end, struct atok *t, struct buf *comment)
{
    int ws = 0;
    for (;;) {
        while (p < end && is_wsp((unsigned char)*p)) { p++; ws = 1; }
        if (p < end && *p == '(') {
            const char *q = mime_skip_cfws(p, end), *ce = q;
            if (ce > p + 1 && ce[-1] == ')') ce--;
            buf_reset(comment);
            append_text(comment, p + 1, (size_t)(ce - (p + 1)), 1);
            p = q;
            ws = 1;
            continue;
        }
        break;
    }
    t->ws = ws;
    t->s = p;
    t->n = 0;
    if (p >= end) { t->type = AT_END; return p; }
    if (*p == '"') {
        const char *s = ++p;
        while (p < end && *p != '"') {
            if (*p == '\\' && p + 1 < end) p++;
            p++;
        }
        t->type = AT_QUOTED; t->s = s; t->n = (size_t)(p - s);
        return p < end ? p + 1 : p;
    }
    if (*p == '[') {
        const char *s = p;
        while (p < end && *p != ']') {
            if (*p == '\\' && p + 1 < end) p++;
            p++;
        }
        if (p < end) p++;
        t->type = AT_DLIT; t->s = s; t->n = (size_t)(p - s);
        return p;
    }
    if (strchr("<>:;@,\\])", *p) && *p) {
        t->type = (unsigned char)*p;
        t->n = 1;
        return p + 1;
    }
    {
        const char *s = p;
        while (p < end && !is_wsp((unsigned char)*p) && !(*p && strchr("()<>[]:;@\\,\"", *p)))
            p++;
        t->type = AT_ATOM; t->s = s; t->n = (size_t)(p - s);
        return p;
    }
}

struct addr {
    struct buf name, local, domain, route, comment;
    int have_angle, have_at, have_words;
};

static void addr_reset(struct addr *a)
{
    buf_reset(&a->name); buf_reset(&a->local); buf_reset(&a->domain);
    buf_reset(&a->route); buf_reset(&a->comment);
    a->have_angle = a->have_at = a->have_words = 0;
}

/* addr_finish: report the address collected in a, if any, to cb; returns cb's value (0 when
 * there was nothing to report). */
static int addr_finish(struct addr *a, mime_address_fn *cb, void *rock)
{
    const struct buf *name = NULL;
    const struct buf *mbox;
    struct mime_address ma;
    if (a->have_angle) {
        name = a->name.len ? &a->name : NULL;
        mbox = &a->local;
    } else if (a->have_at) {
        name = a->comment.len ? &a->comment : NULL;
        mbox = &a->local;
    } else if (a->name.len) {
        mbox = &a->name;          /* a bare word list: "To: joe" */
    } else {
        return 0;
    }
    if (!mbox->len && !a->domain.len && !a->route.len) return 0;   /* "<>" */
    ma.name = name ? name->s : NULL;
    ma.name_len = name ? name->len : 0;
    ma.route = a->route.s ? a->route.s : "";
    ma.route_len = a->route.len;
    ma.mailbox = mbox->s ? mbox->s : "";
    ma.mailbox_len = mbox->len;
    ma.domain = a->domain.s ? a->domain.s : "";
    ma.domain_len = a->domain.len;
    return cb(rock, MIME_ADDRESS, &ma);
}

/* add_word: a phrase word, joined to the name with one space where the source had white space,
 * and to the would-be local part with nothing. */
static void add_word(struct addr *a, const struct atok *t)
{
    if (a->name.len && t->ws) buf_putc(&a->name, ' ');
    append_text(&a->name, t->s, t->n, t->type == AT_QUOTED);
    append_text(&a->local, t->s, t->n, t->type == AT_QUOTED);
    a->have_words = 1;
}

/* read_domain: domain tokens (atoms, dots, literals) up to a delimiter, into b; returns the
 * position of the first token not taken, with *t set to it. */
static const char *read_domain(const char *p, const char *end, struct atok *t, struct buf *b,
                               struct buf *comment)
{
    const char *q;
    for (;;) {
        q = alex(p, end, t, comment);
        if (t->type != AT_ATOM && t->type != AT_DLIT) return p;
        append_text(b, t->s, t->n, 0);
        p = q;
    }
}

/* walk_addresses: the address list p[0,n) reported to cb (see mime_address_foreach), with
 * a's buffers as scratch. Returns the first non-zero value of cb, else 0. */
static int walk_addresses(const char *p, size_t n, struct addr *a, mime_address_fn *cb,
                          void *rock)
{
    const char *end = p + n, *q;
    struct atok t;
    int in_group = 0, r = 0;
    struct mime_address grp;

    addr_reset(a);
    for (;;) {
        q = alex(p, end, &t, &a->comment);
        switch (t.type) {
        case AT_ATOM: case AT_QUOTED: case AT_DLIT:
            if (!a->have_angle && !a->have_at) add_word(a, &t);
            p = q;
            break;
        case '<':
            p = q;
            if (a->have_angle) break;
            if (a->have_at) {
                /* "joe@x.org <joe@x.org>": the addr-spec before '<' is the display name */
                buf_putc(&a->name, '@');
                buf_append(&a->name, a->domain.s ? a->domain.s : "", a->domain.len);
                a->have_at = 0;
            }
            a->have_angle = 1;
            buf_reset(&a->local);
            buf_reset(&a->domain);
            buf_reset(&a->route);
            /* obs-route: "@a,@b:" before the addr-spec (RFC 5322 section 4.4) */
            q = alex(p, end, &t, &a->comment);
            if (t.type == '@') {
                while (t.type != AT_END && t.type != ':' && t.type != '>') {
                    if (t.type == AT_ATOM || t.type == AT_DLIT || t.type == '@' ||
                        t.type == ',')
                        append_text(&a->route, t.s, t.n, 0);
                    p = q;
                    q = alex(p, end, &t, &a->comment);
                }
                if (t.type == ':') p = q;
            }
            for (;;) {                                 /* local part */
                q = alex(p, end, &t, &a->comment);
                if (t.type != AT_ATOM && t.type != AT_QUOTED) break;
                append_text(&a->local, t.s, t.n, t.type == AT_QUOTED);
                p = q;
            }
            if (t.type == '@') p = read_domain(q, end, &t, &a->domain, &a->comment);
            q = alex(p, end, &t, &a->comment);
            if (t.type == '>') p = q;
            break;
        case '@':
            p = q;
            if (a->have_angle || a->have_at) break;
            a->have_at = 1;
            buf_reset(&a->comment);
            p = read_domain(p, end, &t, &a->domain, &a->comment);
            break;
        case ':':
            p = q;
            if (in_group || a->have_angle || a->have_at) break;
            /* group start: its display name */
            memset(&grp, 0, sizeof grp);
            grp.name = a->name.s ? a->name.s : "";
            grp.name_len = a->name.len;
            if ((r = cb(rock, MIME_ADDRESS_GROUP_START, &grp))) return r;
            in_group = 1;
            addr_reset(a);
            break;
        case ';':
            p = q;
            if ((r = addr_finish(a, cb, rock))) return r;
            addr_reset(a);
            if (in_group) {
                memset(&grp, 0, sizeof grp);
                if ((r = cb(rock, MIME_ADDRESS_GROUP_END, &grp))) return r;
                in_group = 0;
            }
            break;
        case ',':
            p = q;
            if ((r = addr_finish(a, cb, rock))) return r;
            addr_reset(a);
            break;
        case AT_END:
            if ((r = addr_finish(a, cb, rock))) return r;
            if (in_group) {
                memset(&grp, 0, sizeof grp);
                r = cb(rock, MIME_ADDRESS_GROUP_END, &grp);
            }
            return r;
        default:                                       /* stray '>', ']', '\\', ')' */
            p = q;
            break;
        }
    }
}

int mime_address_foreach(const char *value, size_t len, mime_address_fn *cb, void *rock)
{
    struct addr a;
    memset(&a, 0, sizeof a);
    buf_init(&a.name); buf_init(&a.local); buf_init(&a.domain); buf_init(&a.route);
    buf_init(&a.comment);
    int r = walk_addresses(value, len, &a, cb, rock);
    buf_fini(&a.name); buf_fini(&a.local); buf_fini(&a.domain); buf_fini(&a.route);
    buf_fini(&a.comment);
    return r;
}

struct env_rock {
    struct buf *out;
    int count;
};

/* env_address: one address (or group marker) in ENVELOPE form, RFC 3501 section 7.4.2. */
static int env_address(void *rock, int kind, const struct mime_address *ma)
{
    struct env_rock *er = rock;
    struct buf *out = er->out;
    er->count++;
    if (kind == MIME_ADDRESS_GROUP_START) {          /* (NIL NIL "name" NIL) */
        buf_append(out, "(NIL NIL ", 9);
        put_string(out, ma->name, ma->name_len);
        buf_append(out, " NIL)", 5);
        return 0;
    }
    if (kind == MIME_ADDRESS_GROUP_END) {
        er->count--;                                 /* as before: only starts count */
        buf_append(out, "(NIL NIL NIL NIL)", 17);
        return 0;
    }
    buf_putc(out, '(');
    if (ma->name) put_string(out, ma->name, ma->name_len); else put_nil(out);
    put_sp(out);
    if (ma->route_len) put_string(out, ma->route, ma->route_len); else put_nil(out);
    put_sp(out);
    put_string(out, ma->mailbox, ma->mailbox_len);
    put_sp(out);
    /* missing domain: NIL host (RFC 3501 section 7.4.2) */
    if (ma->domain_len) put_string(out, ma->domain, ma->domain_len); else put_nil(out);
    buf_putc(out, ')');
    return 0;
}

/* put_addresses: an env-from style address list for the field, or NIL. */
static void put_addresses(struct wctx *w, struct buf *out, const struct mime_field *f)
{
    struct addr a;
    struct env_rock er = { out, 0 };
    size_t mark;

    if (!f->p) { put_nil(out); return; }
    memset(&a, 0, sizeof(a));
    a.name = w->s1; a.local = w->s2; a.domain = w->s3; a.route = w->s4;
    buf_init(&a.comment);
    mark = out->len;
    buf_putc(out, '(');
    walk_addresses(f->p, f->n, &a, env_address, &er);
    w->s1 = a.name; w->s2 = a.local; w->s3 = a.domain; w->s4 = a.route;
    buf_fini(&a.comment);
    if (er.count == 0) {
        buf_truncate(out, mark);
        put_nil(out);
    } else {
        buf_putc(out, ')');
    }
}

/* put_envelope: RFC 3501 section 7.4.2 ENVELOPE of the entity n. */
static void put_envelope(struct wctx *w, struct buf *out, const struct mime_node *n)
{
    size_t from_start, from_len;
    const struct mime_field *h = n->hdr;
    buf_putc(out, '(');
    put_field(w, out, &h[MH_DATE]); put_sp(out);
    put_field(w, out, &h[MH_SUBJECT]); put_sp(out);
    from_start = out->len;
    put_addresses(w, out, &h[MH_FROM]);
    from_len = out->len - from_start;
    put_sp(out);
    /* Sender and Reply-To absent or empty: the From value (RFC 3501 section 7.4.2). */
    {
        int which[2] = { MH_SENDER, MH_REPLY_TO }, i;
        for (i = 0; i < 2; i++) {
            size_t st = out->len;
            put_addresses(w, out, &h[which[i]]);
            if (out->len - st == 3 && !memcmp(out->s + st, "NIL", 3)) {
                buf_truncate(out, st);
                buf_ensure(out, from_len);
                memcpy(out->s + out->len, out->s + from_start, from_len);
                out->len += from_len;
            }
            put_sp(out);
        }
    }
    put_addresses(w, out, &h[MH_TO]); put_sp(out);
    put_addresses(w, out, &h[MH_CC]); put_sp(out);
    put_addresses(w, out, &h[MH_BCC]); put_sp(out);
    put_field(w, out, &h[MH_IN_REPLY_TO]); put_sp(out);
    put_field(w, out, &h[MH_MESSAGE_ID]);
    buf_putc(out, ')');
}

/* ---- body fields ---- */

struct pinfo { struct mime_param p; int section, ext, used; size_t base_len; };

static void split_2231(struct pinfo *pi)
{
    const char *n = pi->p.name, *star = memchr(n, '*', pi->p.name_len), *e = n + pi->p.name_len;
    const char *d;
    int sec = 0;
    pi->section = -1;
    pi->ext = 0;
    pi->base_len = pi->p.name_len;
    if (!star || star == n) return;
    d = star + 1;
    if (d == e) return;                     /* "name*": one extended value, passed as it is */
    if (*d < '0' || *d > '9') return;
    for (; d < e && *d >= '0' && *d <= '9'; d++)
        if (sec < 100000) sec = sec * 10 + (*d - '0');
    if (d < e && *d == '*' && d + 1 == e) pi->ext = 1;
    else if (d != e) return;
    pi->section = sec;
    pi->base_len = (size_t)(star - n);
}

static int is_attr_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("*'%()<>@,;:\\\"/[]?=", c);
}

/* put_params: body-fld-param from a params text: names uppercased, RFC 2231 continuations
 * (name*0, name*1*, ...) joined into one "NAME" or, when encoded, "NAME*" parameter whose
 * value keeps its charset'language' prefix and %-escapes. NIL when there are none. */
static void put_params(struct wctx *w, struct buf *out, const char *p, const char *end)
{
    struct pinfo pi[MAX_PARAMS];
    int n = 0, i, j, count = 0;
    while (n < MAX_PARAMS && mime_param_next(&p, end, &pi[n].p)) {
        split_2231(&pi[n]);
        pi[n].used = 0;
        n++;
    }
    for (i = 0; i < n; i++) {
        if (pi[i].used) continue;
        buf_putc(out, count++ ? ' ' : '(');
        if (pi[i].section < 0) {
            put_upper(out, pi[i].p.name, pi[i].p.name_len);
            put_sp(out);
            buf_reset(&w->s1);
            mime_param_value(&pi[i].p, &w->s1);
            put_string(out, w->s1.s ? w->s1.s : "", w->s1.len);
            pi[i].used = 1;
            continue;
        }
        /* Join the sections of this name in numeric order, first of each number wins. */
        {
            int next_sec = 0, ext = -1;
            buf_reset(&w->s1);
            for (;;) {
                int best = -1;
                for (j = i; j < n; j++) {
                    if (pi[j].used || pi[j].section < next_sec) continue;
                    if (pi[j].base_len != pi[i].base_len ||
                        strncasecmp(pi[j].p.name, pi[i].p.name, pi[i].base_len)) continue;
                    if (best < 0 || pi[j].section < pi[best].section) best = j;
                }
                if (best < 0) break;
                if (ext < 0) ext = pi[best].ext;
                buf_reset(&w->s2);
                mime_param_value(&pi[best].p, &w->s2);
                if (ext && !pi[best].ext) {
                    size_t k;
                    for (k = 0; k < w->s2.len; k++) {
                        unsigned char c = (unsigned char)w->s2.s[k];
                        if (is_attr_char(c)) buf_putc(&w->s1, (char)c);
                        else buf_printf(&w->s1, "%%%02X", c);
                    }
                } else {
                    buf_append(&w->s1, w->s2.s ? w->s2.s : "", w->s2.len);
                }
                next_sec = pi[best].section + 1;
                for (j = i; j < n; j++)       /* drop duplicates of the same number too */
                    if (!pi[j].used && pi[j].section >= 0 && pi[j].section < next_sec &&
                        pi[j].base_len == pi[i].base_len &&
                        !strncasecmp(pi[j].p.name, pi[i].p.name, pi[i].base_len))
                        pi[j].used = 1;
            }
            buf_reset(&w->s2);
            buf_append(&w->s2, pi[i].p.name, pi[i].base_len);
            if (ext > 0) buf_putc(&w->s2, '*');
            put_upper(out, w->s2.s, w->s2.len);
            put_sp(out);
            put_string(out, w->s1.s ? w->s1.s : "", w->s1.len);
        }
    }
    if (count) buf_putc(out, ')');
    else put_nil(out);
}

static void put_node_params(struct wctx *w, struct buf *out, const struct mime_node *n)
{
    const char *t, *st, *params;
    size_t tl, sl;
    const struct mime_field *f = &n->hdr[MH_CONTENT_TYPE];
    if (n->params == MIME_PARAMS_USASCII) {
        buf_appends(out, "(\"CHARSET\" \"US-ASCII\")");
    } else if (n->params == MIME_PARAMS_NONE || !f->p ||
               !mime_parse_ctype(f->p, f->n, &t, &tl, &st, &sl, &params)) {
        put_nil(out);
    } else {
        put_params(w, out, params, f->p + f->n);
    }
}

/* body-fld-dsp: ("TYPE" params) or NIL */
static void put_disposition(struct wctx *w, struct buf *out, const struct mime_field *f)
{
    const char *p, *end, *t;
    if (!f->p) { put_nil(out); return; }
    end = f->p + f->n;
    p = mime_skip_cfws(f->p, end);
    t = mime_token(p, end);
    if (t == p) { put_nil(out); return; }
    buf_putc(out, '(');
    put_upper(out, p, (size_t)(t - p));
    put_sp(out);
    put_params(w, out, t, end);
    buf_putc(out, ')');
}

/* body-fld-lang: NIL, one string, or a list of strings (RFC 3282 language tags) */
static void put_language(struct buf *out, const struct mime_field *f)
{
    const char *p, *end, *t, *first = NULL;
    size_t first_len = 0, mark = out->len;
    int count = 0;
    if (!f->p) { put_nil(out); return; }
    end = f->p + f->n;
    p = f->p;
    for (;;) {
        p = mime_skip_cfws(p, end);
        if (p >= end) break;
        t = mime_token(p, end);
        if (t == p) { p++; continue; }       /* ',' and junk */
        if (count == 0) { first = p; first_len = (size_t)(t - p); }
        else {
            if (count == 1) {
                buf_truncate(out, mark);
                buf_putc(out, '(');
                put_string(out, first, first_len);
            }
            put_sp(out);
            put_string(out, p, (size_t)(t - p));
        }
        count++;
        p = t;
    }
    if (count == 0) put_nil(out);
    else if (count == 1) put_string(out, first, first_len);
    else buf_putc(out, ')');
}

static void put_encoding(struct buf *out, const struct mime_field *f)
{
    const char *p, *t, *end;
    if (f->p) {
        end = f->p + f->n;
        p = mime_skip_cfws(f->p, end);
        t = mime_token(p, end);
        if (t > p) { put_upper(out, p, (size_t)(t - p)); return; }
    }
    buf_appends(out, "\"7BIT\"");
}

/* put_body: the BODY (ext = 0) or BODYSTRUCTURE (ext = 1) of node idx (RFC 3501 section 9,
 * "body"). */
static void put_body(struct wctx *w, struct buf *out, int idx, int ext)
{
    const struct mime_node *n = &w->t->nodes[idx];
    buf_putc(out, '(');
    if (n->kind == MIME_MULTIPART) {
        int k;
        for (k = n->first_child; k >= 0; k = w->t->nodes[k].next)
            put_body(w, out, k, ext);
        put_sp(out);
        put_upper(out, n->subtype, n->subtype_len);
        if (ext) {
            const char *t, *st, *params;
            size_t tl, sl;
            const struct mime_field *f = &n->hdr[MH_CONTENT_TYPE];
            put_sp(out);
            if (f->p && mime_parse_ctype(f->p, f->n, &t, &tl, &st, &sl, &params))
                put_params(w, out, params, f->p + f->n);
            else
                put_nil(out);
            put_sp(out); put_disposition(w, out, &n->hdr[MH_CONTENT_DISPOSITION]);
            put_sp(out); put_language(out, &n->hdr[MH_CONTENT_LANGUAGE]);
            put_sp(out); put_field(w, out, &n->hdr[MH_CONTENT_LOCATION]);
        }
    } else {
        put_upper(out, n->type, n->type_len); put_sp(out);
        put_upper(out, n->subtype, n->subtype_len); put_sp(out);
        put_node_params(w, out, n); put_sp(out);
        put_field(w, out, &n->hdr[MH_CONTENT_ID]); put_sp(out);
        put_field(w, out, &n->hdr[MH_CONTENT_DESCRIPTION]); put_sp(out);
        put_encoding(out, &n->hdr[MH_CONTENT_TRANSFER_ENCODING]);
        buf_printf(out, " %zu", n->blen);
        if (n->kind == MIME_MESSAGE && n->first_child >= 0) {
            put_sp(out);
            put_envelope(w, out, &w->t->nodes[n->first_child]);
            put_sp(out);
            put_body(w, out, n->first_child, ext);
            buf_printf(out, " %llu", (unsigned long long)n->lines);
        } else if (mime_ieq(n->type, n->type_len, "text")) {
            buf_printf(out, " %llu", (unsigned long long)n->lines);
        }
        if (ext) {
            put_sp(out); put_field(w, out, &n->hdr[MH_CONTENT_MD5]);
            put_sp(out); put_disposition(w, out, &n->hdr[MH_CONTENT_DISPOSITION]);
            put_sp(out); put_language(out, &n->hdr[MH_CONTENT_LANGUAGE]);
            put_sp(out); put_field(w, out, &n->hdr[MH_CONTENT_LOCATION]);
        }
    }
    buf_putc(out, ')');
}

/* ---- the section table ---- */

static void sect_line(const struct mime_tree *t, struct buf *out, const char *spec, size_t sl,
                      int idx)
{
    const struct mime_node *n = &t->nodes[idx];
    uint64_t mhlen = 0;
    const char *flags = "-";
    if (n->kind == MIME_MULTIPART) flags = "M";
    if (n->kind == MIME_MESSAGE) {
        flags = "R";
        if (n->first_child >= 0) mhlen = t->nodes[n->first_child].hlen;
    }
    buf_append(out, spec, sl);
    buf_printf(out, " %zu %zu %zu %zu %s %llu\n", n->hoff, n->hlen, n->boff, n->blen, flags,
               (unsigned long long)mhlen);
}

static void sect_msg(const struct mime_tree *t, struct buf *out, struct buf *path, int idx);

/* sect_part: the line of part idx, whose spec is in path, then its sub-parts. */
static void sect_part(const struct mime_tree *t, struct buf *out, struct buf *path, int idx)
{
    const struct mime_node *n = &t->nodes[idx];
    size_t mark = path->len;
    sect_line(t, out, path->s, path->len, idx);
    if (n->kind == MIME_MULTIPART) {
        int k, i = 1;
        for (k = n->first_child; k >= 0; k = t->nodes[k].next, i++) {
            buf_truncate(path, mark);
            buf_printf(path, ".%d", i);
            sect_part(t, out, path, k);
        }
    } else if (n->kind == MIME_MESSAGE && n->first_child >= 0) {
        buf_putc(path, '.');
        sect_msg(t, out, path, n->first_child);
    }
    buf_truncate(path, mark);
}

/* sect_msg: the parts of message entity idx, numbered after the prefix in path (RFC 3501
 * section 6.4.5: a non-multipart message has a part 1, which is its body). */
static void sect_msg(const struct mime_tree *t, struct buf *out, struct buf *path, int idx)
{
    const struct mime_node *n = &t->nodes[idx];
    size_t mark = path->len;
    if (n->kind == MIME_MULTIPART) {
        int k, i = 1;
        for (k = n->first_child; k >= 0; k = t->nodes[k].next, i++) {
            buf_truncate(path, mark);
            buf_printf(path, "%d", i);
            sect_part(t, out, path, k);
        }
    } else {
        buf_putc(path, '1');
        sect_part(t, out, path, idx);
    }
    buf_truncate(path, mark);
}

/* ---- public ---- */

void mime_summary_init(struct mime_summary *s)
{
    buf_init(&s->envelope);
    buf_init(&s->bodystructure);
    buf_init(&s->body);
    buf_init(&s->sections);
    s->header_size = 0;
    s->body_lines = 0;
}

void mime_summary_fini(struct mime_summary *s)
{
    buf_fini(&s->envelope);
    buf_fini(&s->bodystructure);
    buf_fini(&s->body);
    buf_fini(&s->sections);
}

int mime_summarize(const char *msg, size_t len, struct mime_summary *s)
{
    return mime_summarize_preview(msg, len, s, NULL);
}

int mime_summarize_preview(const char *msg, size_t len, struct mime_summary *s,
                           struct buf *preview)
{
    struct mime_tree t;
    struct wctx w;
    struct buf path = BUF_INIT;
    int r;

    memset(&t, 0, sizeof(t));
    r = mime_tree_parse(msg, len, &t);
    memset(&w, 0, sizeof(w));
    w.t = &t;
    buf_reset(&s->envelope);
    buf_reset(&s->bodystructure);
    buf_reset(&s->body);
    buf_reset(&s->sections);
    put_envelope(&w, &s->envelope, &t.nodes[0]);
    put_body(&w, &s->bodystructure, 0, 1);
    put_body(&w, &s->body, 0, 0);
    buf_appends(&s->sections, "S1\n");
    sect_line(&t, &s->sections, "0", 1, 0);
    buf_appends(&path, "");
    sect_msg(&t, &s->sections, &path, 0);
    s->header_size = t.nodes[0].hlen > UINT32_MAX ? UINT32_MAX : (uint32_t)t.nodes[0].hlen;
    s->body_lines = t.nodes[0].lines > UINT32_MAX ? UINT32_MAX : (uint32_t)t.nodes[0].lines;
    buf_cstr(&s->envelope);
    buf_cstr(&s->bodystructure);
    buf_cstr(&s->body);
    buf_cstr(&s->sections);
    buf_fini(&path);
    buf_fini(&w.s1); buf_fini(&w.s2); buf_fini(&w.s3); buf_fini(&w.s4);
    if (preview) mime_preview_tree(msg, &t, 0, preview);
    mime_tree_fini(&t);
    return r;
}

/* read_num: a decimal number ending at a space or the line end; returns the next byte or NULL. */
static const char *read_num(const char *p, const char *end, uint64_t *v)
{
    uint64_t x = 0;
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (x > (UINT64_MAX - 9) / 10) return NULL;
        x = x * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == s) return NULL;
    *v = x;
    return p;
}

int mime_section_find(const char *table, size_t table_len, const char *part,
                      struct mime_section *out)
{
    const char *p, *end = table + table_len, *want = *part ? part : "0";
    size_t wl = strlen(want);
    if (!table || table_len < 3 || memcmp(table, "S1\n", 3)) return 0;
    if (*part == '0') return 0;              /* "0" is only our name for "" */
    for (p = table + 3; p < end; ) {
        const char *le = memchr(p, '\n', (size_t)(end - p)), *q;
        uint64_t v[5];
        int i;
        if (!le) return 0;
        if ((size_t)(le - p) > wl && p[wl] == ' ' && !memcmp(p, want, wl)) {
            memset(out, 0, sizeof(*out));
            q = p + wl + 1;
            for (i = 0; i < 4; i++) {
                if (!(q = read_num(q, le, &v[i])) || q >= le || *q != ' ') return 0;
                q++;
            }
            for (; q < le && *q != ' '; q++) {
                if (*q == 'M') out->is_multipart = 1;
                else if (*q == 'R') out->is_message_rfc822 = 1;
            }
            if (q >= le || !(q = read_num(q + 1, le, &v[4]))) return 0;
            out->header_off = v[0]; out->header_len = v[1];
            out->body_off = v[2]; out->body_len = v[3];
            out->msg_header_len = v[4];
            return 1;
        }
        p = le + 1;
    }
    return 0;
}
