/* mime-parse.c: one forward pass over a message that finds its header fields and MIME part tree
 * (RFC 5322, RFC 2045, RFC 2046 section 5.1), tolerant of anything a real mail stream holds. */
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include "mime/mime-int.h"

/* ---- small helpers ---- */

static int lc(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

int mime_ieq(const char *p, size_t n, const char *s)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (!s[i] || lc((unsigned char)p[i]) != lc((unsigned char)s[i]))
            return 0;
    }
    return s[i] == '\0';
}

static int is_wsp(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

const char *mime_skip_cfws(const char *p, const char *end)
{
    while (p < end) {
        if (is_wsp((unsigned char)*p)) {
            p++;
        } else if (*p == '(') {
            int depth = 0;
            /* A comment runs to its matching ')'; an unterminated one eats the rest. */
            while (p < end) {
                if (*p == '\\' && p + 1 < end) p++;
                else if (*p == '(') depth++;
                else if (*p == ')' && --depth == 0) { p++; break; }
                p++;
            }
        } else {
            break;
        }
    }
    return p;
}

/* RFC 2045 section 5.1 tspecials, plus controls and space. */
static int is_token_char(unsigned char c)
{
    if (c <= 0x20 || c == 0x7f) return 0;
    return !strchr("()<>@,;:\\\"/[]?=", c);
}

const char *mime_token(const char *p, const char *end)
{
    while (p < end && is_token_char((unsigned char)*p)) p++;
    return p;
}

int mime_parse_ctype(const char *p, size_t n, const char **type, size_t *type_len,
                     const char **subtype, size_t *subtype_len, const char **params_r)
{
    const char *end = p + n, *t;
    p = mime_skip_cfws(p, end);
    t = mime_token(p, end);
    if (t == p) return 0;
    *type = p; *type_len = (size_t)(t - p);
    p = mime_skip_cfws(t, end);
    if (p >= end || *p != '/') return 0;
    p = mime_skip_cfws(p + 1, end);
    t = mime_token(p, end);
    if (t == p) return 0;
    *subtype = p; *subtype_len = (size_t)(t - p);
    *params_r = t;
    return 1;
}

/* skip_to_semicolon: the next ';' outside a quoted string or comment, or end. */
static const char *skip_to_semicolon(const char *p, const char *end)
{
    while (p < end && *p != ';') {
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++)
                if (*p == '\\' && p + 1 < end) p++;
            if (p < end) p++;
        } else if (*p == '(') {
            p = mime_skip_cfws(p, end);
        } else {
            p++;
        }
    }
    return p;
}

int mime_param_next(const char **pp, const char *end, struct mime_param *out)
{
    const char *p = *pp, *t;
    for (;;) {
        p = mime_skip_cfws(p, end);
        if (p >= end) break;
        if (*p != ';') {                   /* junk between parameters */
            p = skip_to_semicolon(p, end);
            continue;
        }
        p = mime_skip_cfws(p + 1, end);
        t = mime_token(p, end);
        if (t == p) continue;
        out->name = p; out->name_len = (size_t)(t - p);
        p = mime_skip_cfws(t, end);
        if (p >= end || *p != '=') continue;   /* a parameter without a value is dropped */
        p = mime_skip_cfws(p + 1, end);
        if (p < end && *p == '"') {
            const char *v = ++p;
            while (p < end && *p != '"') {
                if (*p == '\\' && p + 1 < end) p++;
                p++;
            }
            out->value = v; out->value_len = (size_t)(p - v); out->quoted = 1;
            if (p < end) p++;
        } else {
            /* Unquoted values often hold tspecials ("boundary=----=_Part") or spaces: take all
             * up to ';' or a comment, as RFC 2045's own "us-ascii (Plain text)" example needs. */
            const char *v = p;
            while (p < end && *p != ';' && *p != '(') p++;
            t = p;
            while (t > v && is_wsp((unsigned char)t[-1])) t--;
            out->value = v; out->value_len = (size_t)(t - v); out->quoted = 0;
        }
        *pp = p;
        return 1;
    }
    *pp = end;
    return 0;
}

void mime_param_value(const struct mime_param *prm, struct buf *out)
{
    const char *p = prm->value, *end = p + prm->value_len;
    for (; p < end; p++) {
        if (*p == '\r' || *p == '\n' || *p == '\0') continue;   /* unfold */
        if (prm->quoted && *p == '\\' && p + 1 < end) p++;
        buf_putc(out, *p);
    }
}

int mime_find_param(const char *p, const char *end, const char *name, struct buf *out)
{
    struct mime_param prm;
    while (mime_param_next(&p, end, &prm)) {
        if (mime_ieq(prm.name, prm.name_len, name)) {
            mime_param_value(&prm, out);
            return 1;
        }
    }
    return 0;
}

/* ---- the tree ---- */

static const char *const hdr_names[MH_COUNT] = {
    "content-type", "content-transfer-encoding", "content-id", "content-description",
    "content-disposition", "content-language", "content-location", "content-md5",
    "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
    "in-reply-to", "message-id",
};

static int hdr_lookup(const char *p, size_t n)
{
    int i;
    for (i = 0; i < MH_COUNT; i++)
        if (lc((unsigned char)*p) == hdr_names[i][0] && mime_ieq(p, n, hdr_names[i]))
            return i;
    return -1;
}

struct bound { const char *s; size_t n; char *owned; };

/* Where a scan stopped: a boundary line of stack level `level` (0 = outermost) at
 * [start, end) with `lf` line feeds before it, or level -1 at the end of the message. */
struct hit { size_t start, end; uint64_t lf; int level, close; };

struct pctx {
    const char *msg;
    size_t len;
    size_t pos;          /* always a line start */
    uint64_t lf;         /* line feeds in msg[0, pos) */
    struct bound stack[MIME_MAX_DEPTH + 1];
    int nstack;
    struct mime_tree *t;
};

static int new_node(struct pctx *c, int parent)
{
    struct mime_tree *t = c->t;
    struct mime_node *n;
    int idx;
    if (t->count == t->alloc) {
        t->alloc = t->alloc ? t->alloc * 2 : 8;
        t->nodes = xreallocarray(t->nodes, (size_t)t->alloc, sizeof(*t->nodes));
    }
    idx = t->count++;
    n = &t->nodes[idx];
    memset(n, 0, sizeof(*n));
    n->parent = parent;
    n->first_child = n->last_child = n->next = -1;
    n->kind = MIME_LEAF;
    if (parent >= 0) {
        struct mime_node *p = &t->nodes[parent];
        if (p->last_child >= 0) t->nodes[p->last_child].next = idx;
        else p->first_child = idx;
        p->last_child = idx;
        p->nchildren++;
    }
    return idx;
}

static void set_default_type(struct mime_node *n, int digest)
{
    if (digest) {   /* RFC 2046 section 5.1.5 */
        n->type = "message"; n->type_len = 7;
        n->subtype = "rfc822"; n->subtype_len = 6;
        n->params = MIME_PARAMS_NONE;
    } else {        /* RFC 2045 section 5.2 */
        n->type = "text"; n->type_len = 4;
        n->subtype = "plain"; n->subtype_len = 5;
        n->params = MIME_PARAMS_USASCII;
    }
}

int mime_node_is_text(const struct mime_node *n)
{
    return n->kind == MIME_LEAF && mime_ieq(n->type, n->type_len, "text");
}

/* match_boundary: if the line [p, p+n) is a delimiter of an active boundary, returns its stack
 * level and sets *close; else -1. An exact match (only "--" and white space after the
 * boundary) wins over a prefix match, which RFC 2046 section 5.1.1 also allows; inner
 * boundaries are tried first. */
static int match_boundary(const struct pctx *c, const char *p, size_t n, int *close)
{
    int lvl, prefix_lvl = -1, prefix_close = 0;
    if (c->nstack == 0 || n < 2 || p[0] != '-' || p[1] != '-') return -1;
    p += 2; n -= 2;
    for (lvl = c->nstack - 1; lvl >= 0; lvl--) {
        const struct bound *b = &c->stack[lvl];
        const char *r, *q, *e = p + n;
        int cl;
        if (n < b->n || memcmp(p, b->s, b->n)) continue;
        r = p + b->n;
        cl = e - r >= 2 && r[0] == '-' && r[1] == '-';
        q = cl ? r + 2 : r;
        while (q < e && is_wsp((unsigned char)*q)) q++;
        if (q == e) { *close = cl; return lvl; }       /* exact */
        if (prefix_lvl < 0) { prefix_lvl = lvl; prefix_close = cl; }
    }
    *close = prefix_close;
    return prefix_lvl;
}

static size_t line_end(const struct pctx *c, size_t pos)
{
    const char *e = memchr(c->msg + pos, '\n', c->len - pos);
    return e ? (size_t)(e - c->msg) + 1 : c->len;
}

static void advance(struct pctx *c, size_t le)
{
    if (le > c->pos && c->msg[le - 1] == '\n') c->lf++;
    c->pos = le;
}

static void hit_eof(struct pctx *c, struct hit *h)
{
    h->start = h->end = c->len;
    h->lf = c->lf;
    h->level = -1;
    h->close = 0;
}

/* scan_body: read lines until a delimiter of any active boundary (left unread) or the end. */
static void scan_body(struct pctx *c, struct hit *h)
{
    if (c->nstack == 0) {
        const char *p = c->msg + c->pos, *e = c->msg + c->len;
        while ((p = memchr(p, '\n', (size_t)(e - p))) != NULL) { c->lf++; p++; }
        c->pos = c->len;
        hit_eof(c, h);
        return;
    }
    while (c->pos < c->len) {
        size_t le = line_end(c, c->pos);
        int lvl, cl;
        if (c->msg[c->pos] == '-' &&
            (lvl = match_boundary(c, c->msg + c->pos, le - c->pos, &cl)) >= 0) {
            h->start = c->pos; h->end = le; h->lf = c->lf; h->level = lvl; h->close = cl;
            return;
        }
        advance(c, le);
    }
    hit_eof(c, h);
}

/* parse_header: read header fields into n->hdr up to and including the empty line; returns 1
 * when a boundary delimiter cut the header short (h filled, line left unread), else 0. */
static int parse_header(struct pctx *c, struct mime_node *n, struct hit *h)
{
    int cur = -1;
    while (c->pos < c->len) {
        const char *line = c->msg + c->pos;
        size_t le = line_end(c, c->pos), cl = le - c->pos;
        int lvl, close;
        if (cl && line[cl - 1] == '\n') cl--;
        if (cl && line[cl - 1] == '\r') cl--;
        if (cl == 0) { advance(c, le); return 0; }
        if (line[0] == '-' && (lvl = match_boundary(c, line, cl, &close)) >= 0) {
            h->start = c->pos; h->end = le; h->lf = c->lf; h->level = lvl; h->close = close;
            return 1;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (cur >= 0) n->hdr[cur].n = (size_t)(line + cl - n->hdr[cur].p);
        } else {
            const char *colon = memchr(line, ':', cl), *ne;
            cur = -1;
            if (colon) {
                ne = colon;
                while (ne > line && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
                if (ne > line) {
                    int id = hdr_lookup(line, (size_t)(ne - line));
                    if (id >= 0 && !n->hdr[id].p) {
                        n->hdr[id].p = colon + 1;
                        n->hdr[id].n = (size_t)(line + cl - (colon + 1));
                        cur = id;
                    }
                }
            }
        }
        advance(c, le);
    }
    return 0;
}

/* finish_body: set n's body length and line count from where its body stopped. The line break
 * before a delimiter belongs to the delimiter (RFC 2046 section 5.1.1). */
static void finish_body(const struct pctx *c, struct mime_node *n, uint64_t body_lf,
                        const struct hit *h)
{
    size_t be = h->start;
    uint64_t lfs = h->lf - body_lf;
    if (h->level >= 0) {
        if (be > n->boff && c->msg[be - 1] == '\n') { be--; lfs--; }
        if (be > n->boff && c->msg[be - 1] == '\r') be--;
    }
    n->blen = be - n->boff;
    n->lines = lfs + (n->blen > 0 && c->msg[be - 1] != '\n');
}

static int push_boundary(struct pctx *c, const struct mime_node *n)
{
    const char *params, *t, *st;
    size_t tl, sl;
    struct buf v = BUF_INIT;
    struct bound *b = &c->stack[c->nstack];
    const struct mime_field *f = &n->hdr[MH_CONTENT_TYPE];
    if (!f->p || !mime_parse_ctype(f->p, f->n, &t, &tl, &st, &sl, &params)) return 0;
    if (!mime_find_param(params, f->p + f->n, "boundary", &v) || v.len == 0) {
        buf_fini(&v);
        return 0;
    }
    b->n = v.len;
    b->owned = buf_release(&v);
    b->s = b->owned;
    c->nstack++;
    return 1;
}

static void pop_boundary(struct pctx *c)
{
    c->nstack--;
    free(c->stack[c->nstack].owned);
    c->stack[c->nstack].owned = NULL;
}

static void parse_entity(struct pctx *c, int idx, int depth, int digest, struct hit *h);

/* clip_subtree: keep the nodes from first (a message/rfc822 part's child) to the last one made
 * inside end. The line break before a delimiter belongs to the delimiter, so it is cut from the
 * part's body, but the encapsulated message's parse may have read it as the end of its header
 * ("Subject: x" CRLF CRLF "--b": the part holds "Subject: x" CRLF only). */
static void clip_subtree(struct mime_tree *t, int first, size_t end)
{
    int j;
    for (j = first; j >= 0 && j < t->count; j++) {
        struct mime_node *k = &t->nodes[j];
        if (k->hoff > end) k->hoff = end;
        if (k->hoff + k->hlen > end) k->hlen = end - k->hoff;
        if (k->boff > end) k->boff = end;
        if (k->boff < k->hoff + k->hlen) k->boff = k->hoff + k->hlen;
        if (k->boff + k->blen > end) k->blen = end - k->boff;
        if (k->blen == 0) k->lines = 0;
    }
}

/* consume_delimiter: step over the delimiter line h points at. */
static void consume_delimiter(struct pctx *c, const struct hit *h)
{
    c->pos = h->start;
    c->lf = h->lf;
    advance(c, h->end);
}

static void parse_multipart(struct pctx *c, int idx, int depth, struct hit *h)
{
    struct mime_node *n = &c->t->nodes[idx];
    int mylevel = c->nstack - 1;
    int digest = mime_ieq(n->subtype, n->subtype_len, "digest");
    int child;

    scan_body(c, h);                                   /* the preamble */
    while (h->level == mylevel && !h->close) {
        consume_delimiter(c, h);
        if (c->t->count >= MIME_MAX_PARTS) {           /* skip the part unparsed */
            c->t->limited = 1;
            scan_body(c, h);
            continue;
        }
        child = new_node(c, idx);
        parse_entity(c, child, depth + 1, digest, h);
    }
    if (h->level == mylevel) {                         /* close delimiter, then the epilogue */
        consume_delimiter(c, h);
        pop_boundary(c);
        scan_body(c, h);
    } else {
        pop_boundary(c);                               /* close delimiter missing */
    }
}

static void parse_entity(struct pctx *c, int idx, int depth, int digest, struct hit *h)
{
    struct mime_node *n = &c->t->nodes[idx];
    const char *params;
    uint64_t body_lf;
    const struct mime_field *ct;
    int cut;

    n->hoff = c->pos;
    cut = parse_header(c, n, h);
    n->hlen = c->pos - n->hoff;
    n->boff = c->pos;
    body_lf = c->lf;

    ct = &n->hdr[MH_CONTENT_TYPE];
    if (!ct->p) {
        set_default_type(n, digest);
    } else if (!mime_parse_ctype(ct->p, ct->n, &n->type, &n->type_len, &n->subtype,
                                 &n->subtype_len, &params)) {
        set_default_type(n, 0);
    } else {
        n->params = MIME_PARAMS_HEADER;
    }

    if (cut) {
        /* A delimiter inside the header: an empty leaf (it cannot hold parts). */
        if (mime_ieq(n->type, n->type_len, "multipart") ||
            (mime_ieq(n->type, n->type_len, "message") &&
             mime_ieq(n->subtype, n->subtype_len, "rfc822")))
            set_default_type(n, 0);
        n->blen = 0;
        n->lines = 0;
        return;
    }
    if (mime_ieq(n->type, n->type_len, "multipart")) {
        if (depth >= MIME_MAX_DEPTH || c->t->count >= MIME_MAX_PARTS) {
            c->t->limited = 1;
            set_default_type(n, 0);
            scan_body(c, h);
        } else if (!push_boundary(c, n)) {
            set_default_type(n, 0);                    /* RFC 2046 requires a boundary */
            scan_body(c, h);
        } else {
            n->kind = MIME_MULTIPART;
            parse_multipart(c, idx, depth, h);
            n = &c->t->nodes[idx];
            if (n->nchildren == 0) {
                /* No delimiter at all: the body is shown as one headerless text part. */
                int k = new_node(c, idx);
                struct mime_node *kn = &c->t->nodes[k];
                n = &c->t->nodes[idx];
                kn->hoff = kn->boff = n->boff;
                set_default_type(kn, 0);
                finish_body(c, kn, body_lf, h);
            }
        }
    } else if (mime_ieq(n->type, n->type_len, "message") &&
               mime_ieq(n->subtype, n->subtype_len, "rfc822")) {
        if (depth >= MIME_MAX_DEPTH || c->t->count >= MIME_MAX_PARTS) {
            c->t->limited = 1;
            set_default_type(n, 0);
            scan_body(c, h);
        } else {
            int k;
            n->kind = MIME_MESSAGE;
            k = new_node(c, idx);
            parse_entity(c, k, depth + 1, 0, h);
        }
    } else {
        scan_body(c, h);
    }
    n = &c->t->nodes[idx];
    finish_body(c, n, body_lf, h);
    if (n->kind == MIME_MESSAGE) clip_subtree(c->t, n->first_child, n->boff + n->blen);
}

int mime_tree_parse(const char *msg, size_t len, struct mime_tree *t)
{
    struct pctx c;
    struct hit h;
    memset(&c, 0, sizeof(c));
    c.msg = msg;
    c.len = len;
    c.t = t;
    t->count = 0;
    t->limited = 0;
    new_node(&c, -1);
    parse_entity(&c, 0, 0, 0, &h);
    while (c.nstack > 0) pop_boundary(&c);   /* not reached: every push is popped */
    return t->limited ? CF_E_LIMIT : 0;
}

void mime_tree_fini(struct mime_tree *t)
{
    free(t->nodes);
    t->nodes = NULL;
    t->count = t->alloc = 0;
}
