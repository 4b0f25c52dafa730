/* search.c: IMAP SEARCH programs (RFC 3501 section 6.4.4): parsing search keys into a tree and
 * evaluating it, cheapest keys first, against messages reached through struct search_msg_ops. */
#include "imap/search.h"
#include "imap/imap-date.h"
#include "imap/imap-seqset.h"
#include "mime/date.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include "core/buf.h"
#include "core/date.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* System flag bits, the same values as store/index.h's FLAG_* (the engine does not link the
 * store; search.h documents the values). */
#define SF_SEEN      0x01u
#define SF_ANSWERED  0x02u
#define SF_FLAGGED   0x04u
#define SF_DELETED   0x08u
#define SF_DRAFT     0x10u

#define MAX_DEPTH 64        /* nesting of NOT/OR/parentheses; deeper is refused as BAD */

enum skey {
    K_ALL, K_AND, K_OR, K_NOT,
    K_FLAG, K_UNFLAG,               /* a system flag set / not set */
    K_RECENT, K_NEW, K_OLD,
    K_KEYWORD, K_UNKEYWORD,
    K_LARGER, K_SMALLER,
    K_BEFORE, K_ON, K_SINCE,        /* internal date */
    K_SENTBEFORE, K_SENTON, K_SENTSINCE,
    K_SEQ, K_UID,
    K_HEADER,                       /* HEADER, FROM, TO, CC, BCC, SUBJECT */
    K_BODY, K_TEXT,
};

/* Cost classes: what a key reads beyond the record. */
enum { COST_RECORD = 0, COST_HEADER = 1, COST_BODY = 2 };

struct needle {
    char *s;            /* as sent (UTF-8 or ASCII), NUL-terminated */
    size_t len;
    char *lower;        /* ASCII-lowercased copy, for the byte-level scans */
    uint32_t *border;   /* KMP table of lower: border[k] is the longest proper border of
                         * lower[0,k) (k = 1..len), so ci_find never re-reads the haystack */
    int ascii;          /* no byte >= 0x80 */
    int has_ws;         /* holds a space, tab, CR or LF */
    int has_colon;
    int has_sk;         /* holds s or k, which U+017F and U+212A fold to */
};

struct snode {
    enum skey key;
    int cost;
    struct snode **kids;
    size_t nkids;
    uint32_t flag;          /* K_FLAG/K_UNFLAG, K_KEYWORD on a system flag name */
    uint64_t num;           /* K_LARGER/K_SMALLER */
    int64_t day;            /* date keys */
    struct imap_seqset set, resolved;  /* K_SEQ/K_UID */
    char *name;             /* keyword or header field name */
    int kwidx;              /* K_KEYWORD/K_UNKEYWORD: bit, or -1 (never set) */
    int kwsys;              /* the keyword names a system flag (flag) or \Recent (-1) */
    int addr;               /* K_HEADER of FROM/TO/CC/BCC: also match the parsed addresses */
    struct needle nd;
};

struct search_program {
    struct snode *root;
    unsigned needs;
    struct buf tmp;         /* scratch for decoding, reused from message to message */
};

/* ---- small text helpers ---- */

static unsigned char lower_tab[256];
static int lower_tab_ready;

static void lower_tab_init(void)
{
    if (lower_tab_ready) return;
    for (int i = 0; i < 256; i++)
        lower_tab[i] = (unsigned char)(i >= 'A' && i <= 'Z' ? i + 32 : i);
    lower_tab_ready = 1;
}

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    return alen == bl && strncasecmp(a, b, bl) == 0;
}

static int is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

/* ci_find: 1 if the ASCII-lowercased needle nd->lower occurs in h[0,n) ignoring ASCII case.
 * A Knuth-Morris-Pratt scan over folded bytes: O(n + m) for any needle and haystack (the
 * naive compare-at-every-start was O(n * m): 'a' * 16M against 'a' * 16M + 'b' took hours,
 * review M6). Between partial matches it skips ahead eight bytes at a time for the first
 * needle byte (letters are found in either case by OR-ing 0x20, which maps exactly 'A'..'Z'
 * onto 'a'..'z' among bytes that can equal a lowercase letter), so the common case costs
 * what the old scan did. */
static int ci_find(const char *h, size_t n, const struct needle *nd)
{
    const unsigned char *p = (const unsigned char *)h, *nl = (const unsigned char *)nd->lower;
    size_t m = nd->len, i = 0, q = 0;   /* q: needle bytes matched before p[i] */
    unsigned char c0;
    int letter;
    if (m == 0) return 1;
    if (n < m) return 0;
    c0 = nl[0];
    letter = c0 >= 'a' && c0 <= 'z';
    while (i < n) {
        if (q == 0) {
            /* find the next possible start; none after n - m */
            size_t last = n - m;
            if (i > last) return 0;
            if (!letter) {
                const unsigned char *x = memchr(p + i, c0, last - i + 1);
                if (!x) return 0;
                i = (size_t)(x - p);
            } else {
                const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
                const uint64_t pat = ones * c0, low = ones * 0x20;
                while (i + 8 <= last + 1) {
                    uint64_t w, x;
                    memcpy(&w, p + i, 8);
                    x = (w | low) ^ pat;
                    if ((x - ones) & ~x & highs) break;
                    i += 8;
                }
                while (i <= last && (p[i] | 0x20) != c0) i++;
                if (i > last) return 0;
            }
            q = 1;
            i++;
            if (q == m) return 1;
            continue;
        }
        unsigned char c = lower_tab[p[i]];
        while (q > 0 && nl[q] != c) q = nd->border[q];
        if (nl[q] == c) q++;
        i++;
        if (q == m) return 1;
    }
    return 0;
}

static void needle_init(struct needle *nd, const char *s, size_t len)
{
    nd->s = xstrndup(s, len);
    nd->len = len;
    nd->lower = xstrndup(s, len);
    nd->border = NULL;
    nd->ascii = 1;
    nd->has_ws = nd->has_colon = nd->has_sk = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        nd->lower[i] = (char)lower_tab[c];
        if (c >= 0x80) nd->ascii = 0;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') nd->has_ws = 1;
        if (c == ':') nd->has_colon = 1;
        if (lower_tab[c] == 's' || lower_tab[c] == 'k') nd->has_sk = 1;
    }
    if (len > 1) {
        /* border[k] for the prefix of length k (k >= 1); border[1] = 0 */
        const char *l = nd->lower;
        nd->border = xmalloc((len + 1) * sizeof *nd->border);
        nd->border[0] = nd->border[1] = 0;
        uint32_t b = 0;
        for (size_t k = 1; k < len; k++) {
            while (b > 0 && l[k] != l[b]) b = nd->border[b];
            if (l[k] == l[b]) b++;
            nd->border[k + 1] = b;
        }
    }
}

static void needle_fini(struct needle *nd)
{
    free(nd->s);
    free(nd->lower);
    free(nd->border);
    nd->s = nd->lower = NULL;
    nd->border = NULL;
}

/* fold_to_ascii_risk: p holds a character outside ASCII that folds to an ASCII letter (U+017F
 * to s, U+212A to k), so a byte-level ASCII scan could miss a match. */
static int fold_to_ascii_risk(const char *p, size_t n)
{
    return memmem(p, n, "\xc5\xbf", 2) || memmem(p, n, "\xe2\x84\xaa", 3);
}

/* ---- parsing ---- */

struct pctx {
    const char *err;
    int limit;              /* the error is SEARCH_MAX_STRINGS, not syntax */
    size_t strings;         /* bytes of search strings so far */
};

/* take_string: count a search string against SEARCH_MAX_STRINGS; 0, or -1 with the error
 * set. Each string is scanned for in every message searched, so their size is the cost. */
static int take_string(struct pctx *pc, size_t len)
{
    pc->strings += len;
    if (pc->strings <= SEARCH_MAX_STRINGS) return 0;
    pc->err = "Search strings too long";
    pc->limit = 1;
    return -1;
}

static struct snode *node_new(enum skey key, int cost)
{
    struct snode *n = xzmalloc(sizeof(*n));
    n->key = key;
    n->cost = cost;
    n->kwidx = -1;
    imap_seqset_init(&n->set);
    imap_seqset_init(&n->resolved);
    return n;
}

static void node_free(struct snode *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->nkids; i++) node_free(n->kids[i]);
    free(n->kids);
    imap_seqset_fini(&n->set);
    imap_seqset_fini(&n->resolved);
    free(n->name);
    needle_fini(&n->nd);
    free(n);
}

static void node_add(struct snode *parent, struct snode *kid)
{
    parent->kids = xreallocarray(parent->kids, parent->nkids + 1, sizeof(*parent->kids));
    parent->kids[parent->nkids++] = kid;
    if (kid->cost > parent->cost) parent->cost = kid->cost;
}

static const struct { const char *name; uint32_t flag; int set; } flag_keys[] = {
    { "ANSWERED", SF_ANSWERED, 1 }, { "UNANSWERED", SF_ANSWERED, 0 },
    { "DELETED", SF_DELETED, 1 },   { "UNDELETED", SF_DELETED, 0 },
    { "DRAFT", SF_DRAFT, 1 },       { "UNDRAFT", SF_DRAFT, 0 },
    { "FLAGGED", SF_FLAGGED, 1 },   { "UNFLAGGED", SF_FLAGGED, 0 },
    { "SEEN", SF_SEEN, 1 },         { "UNSEEN", SF_SEEN, 0 },
};

static const struct { const char *name; const char *field; int addr; } header_keys[] = {
    { "BCC", "Bcc", 1 }, { "CC", "Cc", 1 }, { "FROM", "From", 1 }, { "SUBJECT", "Subject", 0 },
    { "TO", "To", 1 },
};

static const struct { const char *name; enum skey key; } date_keys[] = {
    { "BEFORE", K_BEFORE }, { "ON", K_ON }, { "SINCE", K_SINCE },
    { "SENTBEFORE", K_SENTBEFORE }, { "SENTON", K_SENTON }, { "SENTSINCE", K_SENTSINCE },
};

static const struct { const char *name; uint32_t flag; } system_flags[] = {
    { "\\Seen", SF_SEEN }, { "\\Answered", SF_ANSWERED }, { "\\Flagged", SF_FLAGGED },
    { "\\Deleted", SF_DELETED }, { "\\Draft", SF_DRAFT },
};

/* arg_string: an astring argument (atom, quoted, literal); NULL for lists and sections. */
static const char *arg_string(const struct imap_arg *a, size_t *len)
{
    const char *s = imap_arg_astring(a);
    if (s) *len = a->len;
    return s;
}

static int is_header_name(const char *s, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 32 || c >= 127 || c == ':') return 0;
    }
    return 1;
}

static struct snode *parse_key(struct pctx *pc, const struct imap_arg *args, size_t nargs,
                               size_t *ip, unsigned depth);

/* parse_need: the next argument, or NULL with an error naming the key that wanted it. */
static const struct imap_arg *parse_need(struct pctx *pc, const struct imap_arg *args,
                                         size_t nargs, size_t *ip, const char *what)
{
    if (*ip >= nargs) { pc->err = what; return NULL; }
    return &args[(*ip)++];
}

static struct snode *parse_key(struct pctx *pc, const struct imap_arg *args, size_t nargs,
                               size_t *ip, unsigned depth)
{
    const struct imap_arg *a, *b;
    const char *w, *s;
    size_t len, i;
    struct snode *n = NULL;

    if (depth > MAX_DEPTH) { pc->err = "Search program too deeply nested"; return NULL; }
    if (*ip >= nargs) { pc->err = "Missing search key"; return NULL; }
    a = &args[(*ip)++];

    if (a->type == IMAP_ARG_LIST) {
        size_t j = 0;
        if (a->count == 0) { pc->err = "Empty search key list"; return NULL; }
        n = node_new(K_AND, COST_RECORD);
        while (j < a->count) {
            struct snode *k = parse_key(pc, a->list, a->count, &j, depth + 1);
            if (!k) { node_free(n); return NULL; }
            node_add(n, k);
        }
        return n;
    }
    if (a->type != IMAP_ARG_ATOM) { pc->err = "Invalid search key"; return NULL; }
    w = a->s;

    if ((w[0] >= '0' && w[0] <= '9') || w[0] == '*') {
        const char *e = NULL;
        n = node_new(K_SEQ, COST_RECORD);
        if (imap_seqset_parse(&n->set, a->s, a->len, &e) < 0) {
            pc->err = "Invalid sequence set in search";
            node_free(n);
            return NULL;
        }
        return n;
    }
    if (imap_arg_atom_eq(a, "ALL")) return node_new(K_ALL, COST_RECORD);
    for (i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++) {
        if (imap_arg_atom_eq(a, flag_keys[i].name)) {
            n = node_new(flag_keys[i].set ? K_FLAG : K_UNFLAG, COST_RECORD);
            n->flag = flag_keys[i].flag;
            return n;
        }
    }
    if (imap_arg_atom_eq(a, "RECENT")) return node_new(K_RECENT, COST_RECORD);
    if (imap_arg_atom_eq(a, "NEW")) return node_new(K_NEW, COST_RECORD);
    if (imap_arg_atom_eq(a, "OLD")) return node_new(K_OLD, COST_RECORD);

    if (imap_arg_atom_eq(a, "KEYWORD") || imap_arg_atom_eq(a, "UNKEYWORD")) {
        int un = imap_arg_atom_eq(a, "UNKEYWORD");
        if (!(b = parse_need(pc, args, nargs, ip, "Missing keyword"))) return NULL;
        if (!(s = arg_string(b, &len)) || len == 0 || memchr(s, '\0', len)) {
            pc->err = "Invalid keyword";
            return NULL;
        }
        n = node_new(un ? K_UNKEYWORD : K_KEYWORD, COST_RECORD);
        n->name = xstrndup(s, len);
        for (i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++)
            if (!strcasecmp(n->name, system_flags[i].name)) {
                n->kwsys = 1;
                n->flag = system_flags[i].flag;
            }
        if (!strcasecmp(n->name, "\\Recent")) n->kwsys = -1;
        return n;
    }
    if (imap_arg_atom_eq(a, "LARGER") || imap_arg_atom_eq(a, "SMALLER")) {
        int larger = imap_arg_atom_eq(a, "LARGER");
        uint32_t v;
        if (!(b = parse_need(pc, args, nargs, ip, "Missing size"))) return NULL;
        if (imap_arg_number(b, &v) < 0) { pc->err = "Invalid size"; return NULL; }
        n = node_new(larger ? K_LARGER : K_SMALLER, COST_RECORD);
        n->num = v;
        return n;
    }
    for (i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
        if (imap_arg_atom_eq(a, date_keys[i].name)) {
            int64_t day;
            enum skey k = date_keys[i].key;
            if (!(b = parse_need(pc, args, nargs, ip, "Missing date"))) return NULL;
            if ((b->type != IMAP_ARG_ATOM && b->type != IMAP_ARG_QUOTED) ||
                imap_date_parse(b->s, b->len, &day) < 0) {
                pc->err = "Invalid date";
                return NULL;
            }
            n = node_new(k, k == K_SENTBEFORE || k == K_SENTON || k == K_SENTSINCE ?
                         COST_HEADER : COST_RECORD);
            n->day = day;
            return n;
        }
    }
    if (imap_arg_atom_eq(a, "UID")) {
        const char *e = NULL;
        if (!(b = parse_need(pc, args, nargs, ip, "Missing UID set"))) return NULL;
        n = node_new(K_UID, COST_RECORD);
        if (b->type != IMAP_ARG_ATOM || imap_seqset_parse(&n->set, b->s, b->len, &e) < 0) {
            pc->err = "Invalid UID set in search";
            node_free(n);
            return NULL;
        }
        return n;
    }
    for (i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++) {
        if (imap_arg_atom_eq(a, header_keys[i].name)) {
            if (!(b = parse_need(pc, args, nargs, ip, "Missing search string"))) return NULL;
            if (!(s = arg_string(b, &len))) { pc->err = "Invalid search string"; return NULL; }
            if (take_string(pc, len)) return NULL;
            n = node_new(K_HEADER, COST_HEADER);
            n->name = xstrdup(header_keys[i].field);
            n->addr = header_keys[i].addr;
            needle_init(&n->nd, s, len);
            return n;
        }
    }
    if (imap_arg_atom_eq(a, "HEADER")) {
        const char *f;
        size_t flen;
        if (!(b = parse_need(pc, args, nargs, ip, "Missing header field name"))) return NULL;
        if (!(f = arg_string(b, &flen)) || !is_header_name(f, flen)) {
            pc->err = "Invalid header field name";
            return NULL;
        }
        if (!(b = parse_need(pc, args, nargs, ip, "Missing search string"))) return NULL;
        if (!(s = arg_string(b, &len))) { pc->err = "Invalid search string"; return NULL; }
        if (take_string(pc, len + flen)) return NULL;
        n = node_new(K_HEADER, COST_HEADER);
        n->name = xstrndup(f, flen);
        needle_init(&n->nd, s, len);
        return n;
    }
    if (imap_arg_atom_eq(a, "BODY") || imap_arg_atom_eq(a, "TEXT")) {
        int text = imap_arg_atom_eq(a, "TEXT");
        if (!(b = parse_need(pc, args, nargs, ip, "Missing search string"))) return NULL;
        if (!(s = arg_string(b, &len))) { pc->err = "Invalid search string"; return NULL; }
        if (take_string(pc, len)) return NULL;
        n = node_new(text ? K_TEXT : K_BODY, COST_BODY);
        needle_init(&n->nd, s, len);
        return n;
    }
    if (imap_arg_atom_eq(a, "NOT")) {
        struct snode *k = parse_key(pc, args, nargs, ip, depth + 1);
        if (!k) return NULL;
        n = node_new(K_NOT, COST_RECORD);
        node_add(n, k);
        return n;
    }
    if (imap_arg_atom_eq(a, "OR")) {
        struct snode *k1, *k2;
        if (!(k1 = parse_key(pc, args, nargs, ip, depth + 1))) return NULL;
        if (!(k2 = parse_key(pc, args, nargs, ip, depth + 1))) { node_free(k1); return NULL; }
        n = node_new(K_OR, COST_RECORD);
        node_add(n, k1);
        node_add(n, k2);
        return n;
    }
    pc->err = "Unknown search key";
    return NULL;
}

/* order_by_cost: stable-sort the children of every AND/OR so cheap keys are tried first
 * (both are commutative: the answer does not depend on the order, only the work does). */
static void order_by_cost(struct snode *n)
{
    for (size_t i = 0; i < n->nkids; i++) order_by_cost(n->kids[i]);
    if (n->key != K_AND && n->key != K_OR) return;
    for (size_t i = 1; i < n->nkids; i++) {
        struct snode *k = n->kids[i];
        size_t j = i;
        while (j > 0 && n->kids[j - 1]->cost > k->cost) { n->kids[j] = n->kids[j - 1]; j--; }
        n->kids[j] = k;
    }
}

int search_parse(const struct imap_arg *args, size_t nargs, struct search_program **prog_r,
                 const char **err_r)
{
    struct pctx pc = { NULL };
    struct snode *root;
    size_t i = 0;

    lower_tab_init();
    *prog_r = NULL;
    *err_r = NULL;
    if (nargs >= 1 && imap_arg_atom_eq(&args[0], "CHARSET")) {
        const char *cs;
        size_t len;
        if (nargs < 2 || !(cs = arg_string(&args[1], &len))) {
            *err_r = "Missing charset";
            return CF_E_PARSE;
        }
        /* RFC 3501 section 6.4.4: US-ASCII must be supported; we also take UTF-8, which
         * covers it. Anything else is NO [BADCHARSET]. */
        if (!ieq(cs, len, "UTF-8") && !ieq(cs, len, "US-ASCII") && !ieq(cs, len, "UTF8") &&
            !ieq(cs, len, "ASCII")) {
            *err_r = "Unsupported charset";
            return CF_E_NOTFOUND;
        }
        i = 2;
    }
    if (i >= nargs) {
        *err_r = "Missing search key";
        return CF_E_PARSE;
    }
    root = node_new(K_AND, COST_RECORD);
    while (i < nargs) {
        struct snode *k = parse_key(&pc, args, nargs, &i, 0);
        if (!k) {
            node_free(root);
            *err_r = pc.err ? pc.err : "Invalid search program";
            return pc.limit ? CF_E_LIMIT : CF_E_PARSE;
        }
        node_add(root, k);
    }
    order_by_cost(root);
    *prog_r = xzmalloc(sizeof(**prog_r));
    (*prog_r)->root = root;
    buf_init(&(*prog_r)->tmp);
    (*prog_r)->needs = root->cost >= COST_BODY ? SEARCH_NEEDS_HEADER | SEARCH_NEEDS_BODY :
                       root->cost >= COST_HEADER ? SEARCH_NEEDS_HEADER : 0;
    return 0;
}

void search_free(struct search_program **prog)
{
    if (!*prog) return;
    node_free((*prog)->root);
    buf_fini(&(*prog)->tmp);
    free(*prog);
    *prog = NULL;
}

unsigned search_needs(const struct search_program *prog)
{
    return prog->needs;
}

static void prepare_node(struct snode *n, uint32_t exists, uint32_t max_uid,
                         const struct strarr *keywords)
{
    for (size_t i = 0; i < n->nkids; i++) prepare_node(n->kids[i], exists, max_uid, keywords);
    if (n->key == K_SEQ) imap_seqset_resolve(&n->set, exists, &n->resolved);
    else if (n->key == K_UID) imap_seqset_resolve(&n->set, max_uid, &n->resolved);
    else if ((n->key == K_KEYWORD || n->key == K_UNKEYWORD) && !n->kwsys)
        n->kwidx = keywords ? strarr_find_case(keywords, n->name) : -1;
}

void search_prepare(struct search_program *prog, uint32_t exists, uint32_t max_uid,
                    const struct strarr *keywords)
{
    prepare_node(prog->root, exists, max_uid, keywords);
}

/* ---- matching text ---- */

/* header_value_match: needle in one raw header field value, decoded (RFC 2047, unfolded). */
static int header_value_match(const char *v, size_t vlen, const struct needle *nd,
                              struct buf *tmp)
{
    if (nd->len == 0) return 1;
    /* Plain ASCII without encoded-words decodes to itself apart from unfolding, which only
     * touches white space: a needle without white space can be looked for in the raw bytes. */
    if (nd->ascii && !nd->has_ws && is_ascii(v, vlen) && !memmem(v, vlen, "=?", 2))
        return ci_find(v, vlen, nd);
    buf_reset(tmp);
    mime_decode_header(v, vlen, tmp);
    return mime_text_contains_n(tmp->s ? tmp->s : "", tmp->len, nd->s, nd->len);
}

struct field_rock {
    const char *name;
    size_t name_len;
    const struct needle *nd;
    struct buf *tmp;
    int addr;
};

/* addr_text_may_differ: whether the parsed addresses of an address field can hold text that
 * its decoded value does not: only comments, quoted-pairs, a quoted local part, or white
 * space (folding included) next to the '@' or a '.' of an address change the text. Most
 * fields have none, and the parse is skipped. */
static int addr_text_may_differ(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '(' || c == '\\') return 1;
        if (c == '"' && i + 1 < n && v[i + 1] == '@') return 1;
        if ((c == '@' || c == '.') &&
            ((i > 0 && strchr(" \t\r\n", v[i - 1])) || (i + 1 < n && strchr(" \t\r\n", v[i + 1]))))
            return 1;
    }
    return 0;
}

struct addr_rock {
    const struct needle *nd;
    struct buf text;
};

/* addr_cb: the needle in "mailbox@domain" or in the (RFC 2047 decoded) display name. */
static int addr_cb(void *rock, int kind, const struct mime_address *a)
{
    struct addr_rock *ar = rock;
    if (kind == MIME_ADDRESS_GROUP_END) return 0;
    buf_reset(&ar->text);
    if (kind == MIME_ADDRESS) {
        buf_append(&ar->text, a->mailbox, a->mailbox_len);
        if (a->domain_len) {
            buf_putc(&ar->text, '@');
            buf_append(&ar->text, a->domain, a->domain_len);
        }
        if (mime_text_contains_n(buf_cstr(&ar->text), ar->text.len, ar->nd->s, ar->nd->len))
            return 1;
        buf_reset(&ar->text);
    }
    if (!a->name_len) return 0;
    mime_decode_header(a->name, a->name_len, &ar->text);
    return mime_text_contains_n(buf_cstr(&ar->text), ar->text.len, ar->nd->s, ar->nd->len);
}

static int field_cb(void *rock, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    struct field_rock *fr = rock;
    if (name_len != fr->name_len || strncasecmp(name, fr->name, name_len)) return 0;
    if (header_value_match(value, value_len, fr->nd, fr->tmp)) return 1;
    /* FROM/TO/CC/BCC: "user@domain.org" must find "<user (c)@ (c) domain.org>", as the
     * address ENVELOPE shows (RFC 3501 section 6.4.4 leaves address matching open; clients
     * search for what they display) */
    if (!fr->addr || !addr_text_may_differ(value, value_len)) return 0;
    struct addr_rock ar = { fr->nd, BUF_INIT };
    int r = mime_address_foreach(value, value_len, addr_cb, &ar);
    buf_fini(&ar.text);
    return r > 0;
}

/* header_field_match: 1 when some field called name has needle in its decoded value (an
 * empty needle: when the field is present, RFC 3501 section 6.4.4 HEADER); with addr also
 * when it is in one of the field's parsed addresses or display names. */
static int header_field_match(const char *hdr, size_t hlen, const char *name, int addr,
                              const struct needle *nd, struct buf *tmp)
{
    struct field_rock fr = { name, strlen(name), nd, tmp, addr };
    return mime_header_foreach(hdr, hlen, field_cb, &fr) > 0;
}

static int any_field_cb(void *rock, const char *name, size_t name_len, const char *value,
                        size_t value_len)
{
    struct field_rock *fr = rock;
    buf_reset(fr->tmp);
    buf_append(fr->tmp, name, name_len);
    buf_append(fr->tmp, ": ", 2);
    mime_decode_header(value, value_len, fr->tmp);
    return mime_text_contains_n(fr->tmp->s, fr->tmp->len, fr->nd->s, fr->nd->len);
}

/* header_text_match: the header half of TEXT: needle in any field as "Name: decoded value". */
static int header_text_match(const char *hdr, size_t hlen, const struct needle *nd,
                             struct buf *tmp)
{
    struct field_rock fr = { NULL, 0, nd, tmp, 0 };
    if (nd->len == 0) return 1;
    if (nd->ascii && !nd->has_ws && !nd->has_colon && is_ascii(hdr, hlen) &&
        !memmem(hdr, hlen, "=?", 2) && !ci_find(hdr, hlen, nd))
        return 0;
    return mime_header_foreach(hdr, hlen, any_field_cb, &fr) > 0;
}

struct text_rock {
    const struct needle *nd;
};

static int text_cb(void *rock, const char *subtype, const char *text, size_t len)
{
    struct text_rock *tr = rock;
    (void)subtype;
    return mime_text_contains_n(text, len, tr->nd->s, tr->nd->len);
}

static int body_exact(const char *msg, size_t len, const struct needle *nd)
{
    struct text_rock tr = { nd };
    if (nd->len == 0) return 1;
    return mime_foreach_text(msg, len, text_cb, &tr) > 0;
}

/* What body_fast learns of one part from its MIME header. */
struct part_info {
    int text;           /* 1 text, 0 clearly not text, 2 a leaf typed multipart or message */
    int cte;            /* 0 identity, 1 base64, 2 quoted-printable */
    int charset_ok;     /* ASCII bytes are ASCII characters in its charset */
    int unsure;         /* something our small parser does not handle: use the slow path */
    int n_ct, n_cte;
};

static int is_tspecial_or_end(unsigned char c)
{
    return c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
    return i;
}

/* charset_ascii_safe: charsets in which every byte below 0x80 is that ASCII character and no
 * other byte sequence decodes to an ASCII character (so the decoded text holds an ASCII needle
 * only where the raw bytes do). Unknown names decode as UTF-8 or Latin-1 (decode.h), which is
 * safe too, but a name iconv knows (UTF-16, UTF-7, EBCDIC) is not: only listed names pass. */
static int charset_ascii_safe(const char *cs, size_t n)
{
    static const char *const exact[] = {
        "us-ascii", "ascii", "utf-8", "utf8", "latin1", "koi8-r", "koi8-u", "ansi_x3.4-1968",
    };
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (ieq(cs, n, exact[i])) return 1;
    if ((n >= 10 && n <= 11 && !strncasecmp(cs, "iso-8859-", 9)) ||
        (n >= 9 && n <= 10 && !strncasecmp(cs, "iso8859-", 8)) ||
        (n == 12 && !strncasecmp(cs, "windows-125", 11)) ||
        (n == 6 && !strncasecmp(cs, "cp125", 5))) {
        char c = cs[n - 1];
        return c >= '0' && c <= '9';
    }
    return 0;
}

static void parse_ctype(const char *v, size_t n, struct part_info *pi)
{
    size_t i = skip_ws(v, n, 0), ts, te, ss;
    int have_cs = 0;
    if (memchr(v, '(', n)) { pi->unsure = 1; return; }
    ts = i;
    while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
    te = i;
    i = skip_ws(v, n, i);
    if (te == ts || i >= n || v[i] != '/') { pi->unsure = 1; return; }
    i = skip_ws(v, n, i + 1);
    ss = i;
    while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
    if (i == ss) { pi->unsure = 1; return; }
    if (ieq(v + ts, te - ts, "text")) pi->text = 1;
    else if (ieq(v + ts, te - ts, "multipart") || ieq(v + ts, te - ts, "message")) pi->text = 2;
    else pi->text = 0;
    pi->charset_ok = 1;
    for (;;) {
        size_t ns, ne, vs, ve;
        i = skip_ws(v, n, i);
        if (i >= n) break;
        if (v[i] != ';') { pi->unsure = 1; return; }
        i = skip_ws(v, n, i + 1);
        if (i >= n) break;
        ns = i;
        while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
        ne = i;
        if (ne > ns && v[ne - 1] == '*' ) { /* not a token char anyway; kept for clarity */ }
        i = skip_ws(v, n, i);
        if (ne == ns || i >= n || v[i] != '=') { pi->unsure = 1; return; }
        i = skip_ws(v, n, i + 1);
        if (i < n && v[i] == '"') {
            vs = ++i;
            while (i < n && v[i] != '"') {
                if (v[i] == '\\') { pi->unsure = ieq(v + ns, ne - ns, "charset"); i++; }
                i++;
            }
            if (i >= n) { pi->unsure = 1; return; }
            ve = i++;
        } else {
            vs = i;
            while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
            ve = i;
        }
        if (ne - ns >= 7 && !strncasecmp(v + ns, "charset", 7)) {
            if (ne - ns != 7 || have_cs) { pi->unsure = 1; return; }   /* RFC 2231 forms */
            have_cs = 1;
            pi->charset_ok = ve == vs || charset_ascii_safe(v + vs, ve - vs);
        }
    }
}

static void parse_cte(const char *v, size_t n, struct part_info *pi)
{
    size_t i = skip_ws(v, n, 0), s;
    if (i < n && v[i] == '(') { pi->unsure = 1; return; }
    s = i;
    while (i < n && !is_tspecial_or_end((unsigned char)v[i])) i++;
    if (ieq(v + s, i - s, "base64")) pi->cte = 1;
    else if (ieq(v + s, i - s, "quoted-printable")) pi->cte = 2;
    else pi->cte = 0;
}

static int part_header_cb(void *rock, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    struct part_info *pi = rock;
    if (ieq(name, name_len, "Content-Type")) {
        if (pi->n_ct++) pi->unsure = 1;
        else parse_ctype(value, value_len, pi);
    } else if (ieq(name, name_len, "Content-Transfer-Encoding")) {
        if (pi->n_cte++) pi->unsure = 1;
        else parse_cte(value, value_len, pi);
    }
    return 0;
}

static int hexdigit(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* qp_decode: append in[0,n) quoted-printable-decoded to out, byte for byte what
 * mime_decode_qp(in, n, 0, out) appends (soft breaks, "=XY", bad "=" kept, white space
 * dropped at line ends), but writing into one reserved block instead of a call per byte:
 * the decoder is most of the cost of BODY/TEXT on HTML mail. */
static void qp_decode(const char *in, size_t n, struct buf *out)
{
    char *o, *ls;
    size_t i = 0;
    buf_ensure(out, n);                 /* every input byte yields at most one output byte */
    o = out->s + out->len;
    ls = o;
    while (i < n) {
        unsigned char c = (unsigned char)in[i];
        if (c != '=' && c != '\n') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c == '=') {
            size_t j = i + 1;
            int h1, h2;
            if (j + 1 < n && (h1 = hexdigit((unsigned char)in[j])) >= 0 &&
                (h2 = hexdigit((unsigned char)in[j + 1])) >= 0) {
                *o++ = (char)(h1 * 16 + h2);
                i += 3;
                continue;
            }
            while (j < n && (in[j] == ' ' || in[j] == '\t')) j++;
            if (j == n) { i = n; continue; }
            if (in[j] == '\n' || (in[j] == '\r' && j + 1 < n && in[j + 1] == '\n')) {
                i = (in[j] == '\r' ? j + 1 : j) + 1;
                continue;
            }
            *o++ = '=';
            i++;
            continue;
        }
        {
            /* line end: drop the white space before it (RFC 2045 section 6.7 rule 3) */
            char *e = o;
            int cr = 0;
            if (e > ls && e[-1] == '\r') { e--; cr = 1; }
            while (e > ls && (e[-1] == ' ' || e[-1] == '\t')) e--;
            if (e < o && cr) { o = e; *o++ = '\r'; }
            else if (e < o) o = e;
            *o++ = '\n';
            ls = o;
            i++;
        }
    }
    out->len = (size_t)(o - out->s);
}

static int parse_u64(const char **pp, const char *end, uint64_t *v)
{
    const char *p = *pp;
    uint64_t x = 0;
    if (p >= end || *p < '0' || *p > '9') return -1;
    while (p < end && *p >= '0' && *p <= '9') {
        if (x > (UINT64_MAX - 9) / 10) return -1;
        x = x * 10 + (uint64_t)(*p++ - '0');
    }
    if (p < end && *p == ' ') p++;
    *pp = p;
    *v = x;
    return 0;
}

/* body_fast: the BODY test through the section table, decoding only text parts and scanning
 * their bytes for an ASCII needle without converting charsets. Returns 1 found, 0 not found,
 * -1 when it cannot tell (a charset or header it does not handle): use body_exact. */
static int body_fast(const char *msg, size_t len, const char *sec, size_t seclen,
                     const struct needle *nd, struct buf *tmp)
{
    const char *p = sec, *end = sec + seclen;
    if (seclen < 3 || memcmp(sec, "S1\n", 3)) return -1;
    p += 3;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        const char *part = p, *q;
        uint64_t hoff, hlen, boff, blen, mhlen;
        size_t partlen;
        struct part_info pi;
        const char *body;
        size_t bodylen;
        int multi = 0;

        q = memchr(p, ' ', (size_t)(le - p));
        if (!q) return -1;
        partlen = (size_t)(q - part);
        q++;
        if (parse_u64(&q, le, &hoff) || parse_u64(&q, le, &hlen) || parse_u64(&q, le, &boff) ||
            parse_u64(&q, le, &blen))
            return -1;
        for (; q < le && *q != ' '; q++)
            if (*q == 'M' || *q == 'R') multi = 1;
        if (q < le) q++;
        if (parse_u64(&q, le, &mhlen)) return -1;
        p = nl ? nl + 1 : end;
        if (hoff > len || hlen > len - hoff || boff > len || blen > len - boff) return -1;
        if (multi || (partlen == 1 && part[0] == '0')) continue;

        memset(&pi, 0, sizeof(pi));
        pi.text = 1;
        pi.charset_ok = 1;
        mime_header_foreach(msg + hoff, (size_t)hlen, part_header_cb, &pi);
        if (pi.unsure) return -1;
        if (pi.text == 0) continue;
        if (!pi.charset_ok) return -1;
        body = msg + boff;
        bodylen = (size_t)blen;
        if (pi.cte) {
            buf_reset(tmp);
            if (pi.cte == 1) mime_decode_base64(body, bodylen, tmp);
            else qp_decode(body, bodylen, tmp);
            body = tmp->s ? tmp->s : "";
            bodylen = tmp->len;
        }
        if (ci_find(body, bodylen, nd)) return pi.text == 1 ? 1 : -1;
        if (nd->has_sk && fold_to_ascii_risk(body, bodylen)) return -1;
    }
    return 0;
}

/* body_match: BODY on msg with its (possibly absent) section table. */
static int body_match(const char *msg, size_t len, const char *sec, size_t seclen,
                      const struct needle *nd, struct buf *tmp)
{
    int r;
    if (nd->len == 0) return 1;
    if (nd->ascii && sec) {
        r = body_fast(msg, len, sec, seclen, nd, tmp);
        if (r >= 0) return r;
    }
    return body_exact(msg, len, nd);
}

/* header_block_len: bytes of msg's top-level header through its empty line. */
static size_t header_block_len(const char *msg, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(msg + i, '\n', len - i);
        size_t ll;
        if (!nl) return len;
        ll = (size_t)(nl - (msg + i));
        if (ll == 0 || (ll == 1 && msg[i] == '\r')) return (size_t)(nl - msg) + 1;
        i = (size_t)(nl - msg) + 1;
    }
    return len;
}

int search_text_match(const char *msg, size_t len, const char *sections, size_t sections_len,
                      const char *needle, size_t needle_len, int with_header)
{
    struct needle nd;
    struct buf tmp = BUF_INIT;
    int r = 0;
    lower_tab_init();
    needle_init(&nd, needle, needle_len);
    if (with_header) r = header_text_match(msg, header_block_len(msg, len), &nd, &tmp);
    if (!r) r = body_match(msg, len, sections, sections_len, &nd, &tmp);
    buf_fini(&tmp);
    needle_fini(&nd);
    return r;
}

int search_text_match_exact(const char *msg, size_t len, const char *needle, size_t needle_len,
                            int with_header)
{
    struct needle nd;
    struct buf tmp = BUF_INIT;
    struct field_rock fr;
    int r = 0;
    lower_tab_init();
    needle_init(&nd, needle, needle_len);
    fr.name = NULL;
    fr.name_len = 0;
    fr.addr = 0;
    fr.nd = &nd;
    fr.tmp = &tmp;
    if (with_header)
        r = needle_len == 0 || mime_header_foreach(msg, len, any_field_cb, &fr) > 0;
    if (!r) r = body_exact(msg, len, &nd);
    buf_fini(&tmp);
    needle_fini(&nd);
    return r;
}

/* ---- evaluation ---- */

/* The state of one message while a program runs on it: what has been fetched so far. */
struct mstate {
    const struct search_msg_ops *ops;
    void *ctx;
    uint32_t msgno;
    struct search_record rec;
    int have_header, have_msg, have_sections, sent_known, touched;
    const char *hdr, *msg, *sec;
    size_t hdr_len, msg_len, sec_len;
    int64_t sent_day;
    struct buf *tmp;
};

static int need_header(struct mstate *m)
{
    int r;
    if (m->have_header) return 0;
    m->touched = 1;
    if ((r = m->ops->header(m->ctx, m->msgno, &m->hdr, &m->hdr_len)) < 0) return r;
    m->have_header = 1;
    return 0;
}

static int need_message(struct mstate *m)
{
    int r;
    if (m->have_msg) return 0;
    m->touched = 1;
    if ((r = m->ops->message(m->ctx, m->msgno, &m->msg, &m->msg_len)) < 0) return r;
    m->have_msg = 1;
    return 0;
}

/* need_sections: the section table, or m->sec NULL when none is to be had. */
static int need_sections(struct mstate *m)
{
    int r;
    if (m->have_sections) return 0;
    m->have_sections = 1;
    m->sec = NULL;
    m->sec_len = 0;
    if (!m->ops->sections) return 0;
    m->touched = 1;
    r = m->ops->sections(m->ctx, m->msgno, &m->sec, &m->sec_len);
    if (r == CF_E_NOTFOUND) { m->sec = NULL; return 0; }
    return r < 0 ? r : 0;
}

struct date_rock { int found; int64_t day; };

static int date_cb(void *rock, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    struct date_rock *dr = rock;
    if (!ieq(name, name_len, "Date")) return 0;
    dr->found = mime_date_day(value, value_len, &dr->day);
    return 1;
}

/* sent_day: the day the Date: field names as written; the internal date's day when the
 * field is missing or unparsable (so every message has a sent date to compare). */
static int sent_day(struct mstate *m, int64_t *day)
{
    int r;
    if (!m->sent_known) {
        struct date_rock dr = { 0, 0 };
        if ((r = need_header(m)) < 0) return r;
        mime_header_foreach(m->hdr, m->hdr_len, date_cb, &dr);
        m->sent_day = dr.found ? dr.day : date_local_day(m->rec.internaldate);
        m->sent_known = 1;
    }
    *day = m->sent_day;
    return 0;
}

static int has_keyword(const struct search_record *rec, int idx)
{
    if (idx < 0 || !rec->user_flags || (size_t)idx / 8 >= rec->user_flags_len) return 0;
    return (rec->user_flags[idx / 8] >> (idx % 8)) & 1;
}

static int eval(struct snode *n, struct mstate *m)
{
    int r;
    int64_t d;
    switch (n->key) {
    case K_ALL: return 1;
    case K_AND:
        for (size_t i = 0; i < n->nkids; i++)
            if ((r = eval(n->kids[i], m)) <= 0) return r;
        return 1;
    case K_OR:
        for (size_t i = 0; i < n->nkids; i++)
            if ((r = eval(n->kids[i], m)) != 0) return r;
        return 0;
    case K_NOT:
        r = eval(n->kids[0], m);
        return r < 0 ? r : !r;
    case K_FLAG: return (m->rec.flags & n->flag) != 0;
    case K_UNFLAG: return (m->rec.flags & n->flag) == 0;
    case K_RECENT: return m->rec.recent != 0;
    case K_NEW: return m->rec.recent && !(m->rec.flags & SF_SEEN);
    case K_OLD: return !m->rec.recent;
    case K_KEYWORD:
    case K_UNKEYWORD:
        if (n->kwsys > 0) r = (m->rec.flags & n->flag) != 0;
        else if (n->kwsys < 0) r = m->rec.recent != 0;
        else r = has_keyword(&m->rec, n->kwidx);
        return n->key == K_KEYWORD ? r : !r;
    case K_LARGER: return m->rec.size > n->num;
    case K_SMALLER: return m->rec.size < n->num;
    case K_BEFORE: return date_local_day(m->rec.internaldate) < n->day;
    case K_ON: return date_local_day(m->rec.internaldate) == n->day;
    case K_SINCE: return date_local_day(m->rec.internaldate) >= n->day;
    case K_SENTBEFORE:
    case K_SENTON:
    case K_SENTSINCE:
        if ((r = sent_day(m, &d)) < 0) return r;
        if (n->key == K_SENTBEFORE) return d < n->day;
        if (n->key == K_SENTON) return d == n->day;
        return d >= n->day;
    case K_SEQ: return imap_seqset_contains(&n->resolved, m->msgno);
    case K_UID: return imap_seqset_contains(&n->resolved, m->rec.uid);
    case K_HEADER:
        if ((r = need_header(m)) < 0) return r;
        return header_field_match(m->hdr, m->hdr_len, n->name, n->addr, &n->nd, m->tmp);
    case K_TEXT:
        if ((r = need_header(m)) < 0) return r;
        if (header_text_match(m->hdr, m->hdr_len, &n->nd, m->tmp)) return 1;
        /* not in the header: look in the body */
        /* fall through */
    case K_BODY:
        if (n->nd.len == 0) return 1;
        if ((r = need_message(m)) < 0 || (r = need_sections(m)) < 0) return r;
        return body_match(m->msg, m->msg_len, m->sec, m->sec_len, &n->nd, m->tmp);
    }
    return 0;
}

int search_match(struct search_program *prog, const struct search_msg_ops *ops, void *ctx,
                 uint32_t msgno)
{
    struct mstate m;
    int r;
    memset(&m, 0, sizeof(m));
    m.ops = ops;
    m.ctx = ctx;
    m.msgno = msgno;
    m.tmp = &prog->tmp;
    r = ops->record(ctx, msgno, &m.rec);
    if (r >= 0) r = eval(prog->root, &m);
    if (m.touched && ops->release) ops->release(ctx, msgno);
    /* keep the scratch buffer unless one message made it large */
    if (prog->tmp.alloc > (1u << 20)) buf_fini(&prog->tmp);
    return r;
}
