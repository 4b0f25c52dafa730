/* search-parse.c: parsing SEARCH arguments (RFC 3501 section 6.4.4 and the section 9
 * grammar) into a program tree (search-int.h), one parser per search key in a table, and
 * binding the tree to a mailbox view (search_prepare). */
#include "imap/search-int.h"
#include "imap/search-column.h"
#include "imap/imap-condstore.h"
#include "imap/imap-date.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <time.h>

#define MAX_DEPTH 64        /* nesting of NOT/OR/parentheses; deeper is refused as BAD */

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
    n->col = -1;
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

/* parse_need: the next argument, or NULL with an error naming the key that wanted it. */
static const struct imap_arg *parse_need(struct pctx *pc, const struct imap_arg *args,
                                         size_t nargs, size_t *ip, const char *what)
{
    if (*ip >= nargs) { pc->err = what; return NULL; }
    return &args[(*ip)++];
}

static struct snode *parse_key(struct pctx *pc, const struct imap_arg *args, size_t nargs,
                               size_t *ip, unsigned depth);

/* One search key of RFC 3501 section 6.4.4: its name, the node it makes (kind and cost), and
 * the parser of the arguments after it, args[*ip..nargs). A parser returns the node, or NULL
 * with pc->err set. */
struct key_def {
    const char *name;
    enum skey key;
    int cost;
    struct snode *(*parse)(struct pctx *pc, const struct key_def *kd, const struct imap_arg *args,
                           size_t nargs, size_t *ip, unsigned depth);
    uint32_t flag;          /* K_FLAG/K_UNFLAG: the system flag */
    const char *field;      /* K_HEADER shorthands: the field name */
    int addr;               /* ... of an address field */
};

static const struct { const char *name; uint32_t flag; } system_flags[] = {
    { "\\Seen", SF_SEEN }, { "\\Answered", SF_ANSWERED }, { "\\Flagged", SF_FLAGGED },
    { "\\Deleted", SF_DELETED }, { "\\Draft", SF_DRAFT },
};

/* parse_plain: a key without arguments (ALL, the flag keys, RECENT, NEW, OLD). */
static struct snode *parse_plain(struct pctx *pc, const struct key_def *kd,
                                 const struct imap_arg *args, size_t nargs, size_t *ip,
                                 unsigned depth)
{
    struct snode *n = node_new(kd->key, kd->cost);
    n->flag = kd->flag;
    return n;
}

/* parse_keyword: KEYWORD/UNKEYWORD flag; a system flag name (or \Recent) tests that. */
static struct snode *parse_keyword(struct pctx *pc, const struct key_def *kd,
                                   const struct imap_arg *args, size_t nargs, size_t *ip,
                                   unsigned depth)
{
    const struct imap_arg *b;
    const char *s;
    size_t len;
    if (!(b = parse_need(pc, args, nargs, ip, "Missing keyword"))) return NULL;
    if (!(s = arg_string(b, &len)) || len == 0 || memchr(s, '\0', len)) {
        pc->err = "Invalid keyword";
        return NULL;
    }
    struct snode *n = node_new(kd->key, kd->cost);
    n->name = xstrndup(s, len);
    for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++)
        if (!strcasecmp(n->name, system_flags[i].name)) {
            n->kwsys = 1;
            n->flag = system_flags[i].flag;
        }
    if (!strcasecmp(n->name, "\\Recent")) n->kwsys = -1;
    return n;
}

/* need_number: the next argument as a number of at least min into *v_r. 0, or -1 with
 * pc->err set to missing or invalid. */
static int need_number(struct pctx *pc, const struct imap_arg *args, size_t nargs, size_t *ip,
                       const char *missing, const char *invalid, uint32_t min, uint32_t *v_r)
{
    const struct imap_arg *b = parse_need(pc, args, nargs, ip, missing);
    if (!b) return -1;
    if (imap_arg_number(b, v_r) < 0 || *v_r < min) {
        pc->err = invalid;
        return -1;
    }
    return 0;
}

/* parse_size: LARGER/SMALLER n. */
static struct snode *parse_size(struct pctx *pc, const struct key_def *kd,
                                const struct imap_arg *args, size_t nargs, size_t *ip,
                                unsigned depth)
{
    uint32_t v;
    if (need_number(pc, args, nargs, ip, "Missing size", "Invalid size", 0, &v)) return NULL;
    struct snode *n = node_new(kd->key, kd->cost);
    n->num = v;
    return n;
}

/* parse_modseq: RFC 7162 section 3.1.5: MODSEQ ["/flags/" attr-flag SP ("priv" / "shared" /
 * "all")] SP mod-sequence-valzer. The mod-sequence of a message is one for all its flags, so
 * the entry name and type are checked and then compare the same value. */
static struct snode *parse_modseq(struct pctx *pc, const struct key_def *kd,
                                  const struct imap_arg *args, size_t nargs, size_t *ip,
                                  unsigned depth)
{
    const struct imap_arg *b;
    (void)depth;
    if (!(b = parse_need(pc, args, nargs, ip, "Missing mod-sequence"))) return NULL;
    if (b->type == IMAP_ARG_QUOTED || b->type == IMAP_ARG_LITERAL) {
        /* entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE */
        if (b->len <= 7 || strncasecmp(b->s, "/flags/", 7) != 0) {
            pc->err = "Invalid MODSEQ entry name";
            return NULL;
        }
        const struct imap_arg *t = parse_need(pc, args, nargs, ip, "Missing MODSEQ entry type");
        if (!t) return NULL;
        if (t->type != IMAP_ARG_ATOM ||
            (!ieq(t->s, t->len, "priv") && !ieq(t->s, t->len, "shared") &&
             !ieq(t->s, t->len, "all"))) {
            pc->err = "Invalid MODSEQ entry type";
            return NULL;
        }
        if (!(b = parse_need(pc, args, nargs, ip, "Missing mod-sequence"))) return NULL;
    }
    uint64_t v;
    if (imap_modseq_arg(b, 1, &v) < 0) {
        pc->err = "Invalid mod-sequence";
        return NULL;
    }
    struct snode *n = node_new(kd->key, kd->cost);
    n->num = v;
    return n;
}

/* parse_date: BEFORE/ON/SINCE and SENTBEFORE/SENTON/SENTSINCE date. */
static struct snode *parse_date(struct pctx *pc, const struct key_def *kd,
                                const struct imap_arg *args, size_t nargs, size_t *ip,
                                unsigned depth)
{
    const struct imap_arg *b;
    int64_t day;
    if (!(b = parse_need(pc, args, nargs, ip, "Missing date"))) return NULL;
    if ((b->type != IMAP_ARG_ATOM && b->type != IMAP_ARG_QUOTED) ||
        imap_date_parse(b->s, b->len, &day) < 0) {
        pc->err = "Invalid date";
        return NULL;
    }
    struct snode *n = node_new(kd->key, kd->cost);
    n->day = day;
    return n;
}

/* parse_within: OLDER/YOUNGER interval (RFC 5032: an nz-number of seconds); the cutoff is
 * now minus the interval. */
static struct snode *parse_within(struct pctx *pc, const struct key_def *kd,
                                  const struct imap_arg *args, size_t nargs, size_t *ip,
                                  unsigned depth)
{
    uint32_t v;
    if (need_number(pc, args, nargs, ip, "Missing interval", "Invalid interval", 1, &v)) return NULL;
    struct snode *n = node_new(kd->key, kd->cost);
    n->day = (int64_t)time(NULL) - (int64_t)v;
    return n;
}

/* parse_uid: UID sequence-set. */
static struct snode *parse_uid(struct pctx *pc, const struct key_def *kd,
                               const struct imap_arg *args, size_t nargs, size_t *ip,
                               unsigned depth)
{
    const struct imap_arg *b;
    const char *e = NULL;
    if (!(b = parse_need(pc, args, nargs, ip, "Missing UID set"))) return NULL;
    struct snode *n = node_new(kd->key, kd->cost);
    if (b->type != IMAP_ARG_ATOM || imap_seqset_parse(&n->set, b->s, b->len, &e) < 0) {
        pc->err = "Invalid UID set in search";
        node_free(n);
        return NULL;
    }
    return n;
}

/* need_string: the next argument as a search string into *s_r and *len_r, counted against the
 * search's string budget (with extra bytes more). 0, or -1 with pc->err set. */
static int need_string(struct pctx *pc, const struct imap_arg *args, size_t nargs, size_t *ip,
                       size_t extra, const char **s_r, size_t *len_r)
{
    const struct imap_arg *b = parse_need(pc, args, nargs, ip, "Missing search string");
    if (!b) return -1;
    if (!(*s_r = arg_string(b, len_r))) {
        pc->err = "Invalid search string";
        return -1;
    }
    return take_string(pc, *len_r + extra) ? -1 : 0;
}

/* parse_field: BCC, CC, FROM, SUBJECT, TO string: HEADER with the field name given. */
static struct snode *parse_field(struct pctx *pc, const struct key_def *kd,
                                 const struct imap_arg *args, size_t nargs, size_t *ip,
                                 unsigned depth)
{
    const char *s;
    size_t len;
    if (need_string(pc, args, nargs, ip, 0, &s, &len)) return NULL;
    struct snode *n = node_new(kd->key, kd->cost);
    n->name = xstrdup(kd->field);
    n->addr = kd->addr;
    n->col = search_column_field(n->name);
    needle_init(&n->nd, s, len);
    return n;
}

/* parse_header: HEADER field-name string. */
static struct snode *parse_header(struct pctx *pc, const struct key_def *kd,
                                  const struct imap_arg *args, size_t nargs, size_t *ip,
                                  unsigned depth)
{
    const struct imap_arg *b;
    const char *f, *s;
    size_t flen, len;
    if (!(b = parse_need(pc, args, nargs, ip, "Missing header field name"))) return NULL;
    if (!(f = arg_string(b, &flen)) || !is_header_name(f, flen)) {
        pc->err = "Invalid header field name";
        return NULL;
    }
    if (need_string(pc, args, nargs, ip, flen, &s, &len)) return NULL;
    struct snode *n = node_new(kd->key, kd->cost);
    n->name = xstrndup(f, flen);
    n->col = search_column_field(n->name);
    needle_init(&n->nd, s, len);
    return n;
}

/* parse_text: BODY/TEXT string. */
static struct snode *parse_text(struct pctx *pc, const struct key_def *kd,
                                const struct imap_arg *args, size_t nargs, size_t *ip,
                                unsigned depth)
{
    const char *s;
    size_t len;
    if (need_string(pc, args, nargs, ip, 0, &s, &len)) return NULL;
    struct snode *n = node_new(kd->key, kd->cost);
    needle_init(&n->nd, s, len);
    return n;
}

/* parse_not: NOT search-key. */
static struct snode *parse_not(struct pctx *pc, const struct key_def *kd,
                               const struct imap_arg *args, size_t nargs, size_t *ip,
                               unsigned depth)
{
    struct snode *k = parse_key(pc, args, nargs, ip, depth + 1);
    if (!k) return NULL;
    struct snode *n = node_new(kd->key, kd->cost);
    node_add(n, k);
    return n;
}

/* parse_or: OR search-key search-key. */
static struct snode *parse_or(struct pctx *pc, const struct key_def *kd,
                              const struct imap_arg *args, size_t nargs, size_t *ip,
                              unsigned depth)
{
    struct snode *k1, *k2;
    if (!(k1 = parse_key(pc, args, nargs, ip, depth + 1))) return NULL;
    if (!(k2 = parse_key(pc, args, nargs, ip, depth + 1))) { node_free(k1); return NULL; }
    struct snode *n = node_new(kd->key, kd->cost);
    node_add(n, k1);
    node_add(n, k2);
    return n;
}

/* parse_objectid: EMAILID/THREADID objectid (RFC 8474 section 7: 1*255 of ALPHA, DIGIT, "_"
 * and "-"). An id of the right form that names nothing simply matches nothing. */
static struct snode *parse_objectid(struct pctx *pc, const struct key_def *kd,
                                    const struct imap_arg *args, size_t nargs, size_t *ip,
                                    unsigned depth)
{
    const struct imap_arg *b;
    const char *s;
    size_t len;
    if (!(b = parse_need(pc, args, nargs, ip, "Missing object id"))) return NULL;
    if (!(s = arg_string(b, &len)) || len == 0 || len > 255) {
        pc->err = "Invalid object id";
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            pc->err = "Invalid object id";
            return NULL;
        }
    }
    struct snode *n = node_new(kd->key, kd->cost);
    n->name = xstrndup(s, len);
    return n;
}

static const struct key_def key_defs[] = {
    { "ALL", K_ALL, COST_RECORD, parse_plain, 0, NULL, 0 },
    { "ANSWERED", K_FLAG, COST_RECORD, parse_plain, SF_ANSWERED, NULL, 0 },
    { "UNANSWERED", K_UNFLAG, COST_RECORD, parse_plain, SF_ANSWERED, NULL, 0 },
    { "DELETED", K_FLAG, COST_RECORD, parse_plain, SF_DELETED, NULL, 0 },
    { "UNDELETED", K_UNFLAG, COST_RECORD, parse_plain, SF_DELETED, NULL, 0 },
    { "DRAFT", K_FLAG, COST_RECORD, parse_plain, SF_DRAFT, NULL, 0 },
    { "UNDRAFT", K_UNFLAG, COST_RECORD, parse_plain, SF_DRAFT, NULL, 0 },
    { "FLAGGED", K_FLAG, COST_RECORD, parse_plain, SF_FLAGGED, NULL, 0 },
    { "UNFLAGGED", K_UNFLAG, COST_RECORD, parse_plain, SF_FLAGGED, NULL, 0 },
    { "SEEN", K_FLAG, COST_RECORD, parse_plain, SF_SEEN, NULL, 0 },
    { "UNSEEN", K_UNFLAG, COST_RECORD, parse_plain, SF_SEEN, NULL, 0 },
    { "RECENT", K_RECENT, COST_RECORD, parse_plain, 0, NULL, 0 },
    { "NEW", K_NEW, COST_RECORD, parse_plain, 0, NULL, 0 },
    { "OLD", K_OLD, COST_RECORD, parse_plain, 0, NULL, 0 },
    { "KEYWORD", K_KEYWORD, COST_RECORD, parse_keyword, 0, NULL, 0 },
    { "UNKEYWORD", K_UNKEYWORD, COST_RECORD, parse_keyword, 0, NULL, 0 },
    { "LARGER", K_LARGER, COST_RECORD, parse_size, 0, NULL, 0 },
    { "SMALLER", K_SMALLER, COST_RECORD, parse_size, 0, NULL, 0 },
    { "BEFORE", K_BEFORE, COST_RECORD, parse_date, 0, NULL, 0 },
    { "ON", K_ON, COST_RECORD, parse_date, 0, NULL, 0 },
    { "SINCE", K_SINCE, COST_RECORD, parse_date, 0, NULL, 0 },
    { "OLDER", K_OLDER, COST_RECORD, parse_within, 0, NULL, 0 },
    { "YOUNGER", K_YOUNGER, COST_RECORD, parse_within, 0, NULL, 0 },
    /* the sent date is read from the header's Date: field */
    { "SENTBEFORE", K_SENTBEFORE, COST_HEADER, parse_date, 0, NULL, 0 },
    { "SENTON", K_SENTON, COST_HEADER, parse_date, 0, NULL, 0 },
    { "SENTSINCE", K_SENTSINCE, COST_HEADER, parse_date, 0, NULL, 0 },
    { "UID", K_UID, COST_RECORD, parse_uid, 0, NULL, 0 },
    { "MODSEQ", K_MODSEQ, COST_RECORD, parse_modseq, 0, NULL, 0 },   /* RFC 7162 */
    /* RFC 8514 (SAVEDATE) search keys */
    { "SAVEDBEFORE", K_SAVEDBEFORE, COST_RECORD, parse_date, 0, NULL, 0 },
    { "SAVEDON", K_SAVEDON, COST_RECORD, parse_date, 0, NULL, 0 },
    { "SAVEDSINCE", K_SAVEDSINCE, COST_RECORD, parse_date, 0, NULL, 0 },
    { "SAVEDATESUPPORTED", K_SAVEDATESUPPORTED, COST_RECORD, parse_plain, 0, NULL, 0 },
    /* RFC 8474 section 6 (OBJECTID); a THREADID may need the header of an old record */
    { "EMAILID", K_EMAILID, COST_RECORD, parse_objectid, 0, NULL, 0 },
    { "THREADID", K_THREADID, COST_HEADER, parse_objectid, 0, NULL, 0 },
    { "BCC", K_HEADER, COST_HEADER, parse_field, 0, "Bcc", 1 },
    { "CC", K_HEADER, COST_HEADER, parse_field, 0, "Cc", 1 },
    { "FROM", K_HEADER, COST_HEADER, parse_field, 0, "From", 1 },
    { "SUBJECT", K_HEADER, COST_HEADER, parse_field, 0, "Subject", 0 },
    { "TO", K_HEADER, COST_HEADER, parse_field, 0, "To", 1 },
    { "HEADER", K_HEADER, COST_HEADER, parse_header, 0, NULL, 0 },
    { "BODY", K_BODY, COST_BODY, parse_text, 0, NULL, 0 },
    { "TEXT", K_TEXT, COST_BODY, parse_text, 0, NULL, 0 },
    { "NOT", K_NOT, COST_RECORD, parse_not, 0, NULL, 0 },
    { "OR", K_OR, COST_RECORD, parse_or, 0, NULL, 0 },
};

/* parse_key: one search key at args[*ip] (a parenthesized list is an AND of its keys, a
 * sequence set a K_SEQ), with its arguments; *ip moves past them. NULL with pc->err set. */
static struct snode *parse_key(struct pctx *pc, const struct imap_arg *args, size_t nargs,
                               size_t *ip, unsigned depth)
{
    const struct imap_arg *a;
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
    if (a->s[0] == '$') {
        /* RFC 5182 section 2.1: the saved result, a set of uids (search_set_saved) */
        const char *e = NULL;
        n = node_new(K_UID, COST_RECORD);
        if (imap_seqset_parse(&n->set, a->s, a->len, &e) < 0) {
            pc->err = "Invalid sequence set in search";
            node_free(n);
            return NULL;
        }
        return n;
    }
    if ((a->s[0] >= '0' && a->s[0] <= '9') || a->s[0] == '*') {
        const char *e = NULL;
        n = node_new(K_SEQ, COST_RECORD);
        if (imap_seqset_parse(&n->set, a->s, a->len, &e) < 0) {
            pc->err = "Invalid sequence set in search";
            node_free(n);
            return NULL;
        }
        return n;
    }
    for (size_t i = 0; i < sizeof(key_defs) / sizeof(key_defs[0]); i++)
        if (imap_arg_atom_eq(a, key_defs[i].name))
            return key_defs[i].parse(pc, &key_defs[i], args, nargs, ip, depth);
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

/* has_modseq_key: 1 when n or a node below it is a MODSEQ key. */
static int has_modseq_key(const struct snode *n)
{
    if (n->key == K_MODSEQ) return 1;
    for (size_t i = 0; i < n->nkids; i++)
        if (has_modseq_key(n->kids[i])) return 1;
    return 0;
}

int search_uses_modseq(const struct search_program *prog) { return prog->uses_modseq; }

static int uses_column(const struct snode *n)
{
    if (n->key == K_HEADER && n->col >= 0) return 1;
    for (size_t i = 0; i < n->nkids; i++)
        if (uses_column(n->kids[i])) return 1;
    return 0;
}

int search_uses_column(const struct search_program *prog)
{
    return prog->root && uses_column(prog->root);
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
    (*prog_r)->uses_modseq = has_modseq_key(root);
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

static void saved_node(struct snode *n, const struct imap_seqset *uids)
{
    for (size_t i = 0; i < n->nkids; i++) saved_node(n->kids[i], uids);
    if ((n->key != K_SEQ && n->key != K_UID) || !n->set.saved) return;
    imap_seqset_clear(&n->set);
    n->set.saved = 1;
    for (size_t i = 0; uids && i < uids->count; i++)
        imap_seqset_add(&n->set, uids->r[i].lo, uids->r[i].hi);
}

void search_set_saved(struct search_program *prog, const struct imap_seqset *uids)
{
    saved_node(prog->root, uids);
}

void search_prepare(struct search_program *prog, uint32_t exists, uint32_t max_uid,
                    const struct strarr *keywords)
{
    prepare_node(prog->root, exists, max_uid, keywords);
}

static void pin_node(struct snode *n, uint32_t exists,
                     uint32_t (*uid_of)(void *ctx, uint32_t msgno), void *ctx)
{
    for (size_t i = 0; i < n->nkids; i++) pin_node(n->kids[i], exists, uid_of, ctx);
    if (n->key != K_SEQ && n->key != K_UID) return;
    struct imap_seqset uids = IMAP_SEQSET_INIT;
    if (n->key == K_SEQ) {
        for (size_t i = 0; i < n->resolved.count; i++)
            for (uint64_t m = n->resolved.r[i].lo; m <= n->resolved.r[i].hi && m <= exists;
                 m++) {
                uint32_t uid = uid_of(ctx, (uint32_t)m);
                if (uid) imap_seqset_add(&uids, uid, uid);
            }
    } else {
        for (size_t i = 0; i < n->resolved.count; i++)
            imap_seqset_add(&uids, n->resolved.r[i].lo, n->resolved.r[i].hi);
    }
    n->key = K_UID;
    imap_seqset_fini(&n->set);
    n->set = uids;
    imap_seqset_clear(&n->resolved);
    for (size_t i = 0; i < n->set.count; i++)
        imap_seqset_add(&n->resolved, n->set.r[i].lo, n->set.r[i].hi);
}

void search_pin(struct search_program *prog, uint32_t exists,
                uint32_t (*uid_of)(void *ctx, uint32_t msgno), void *ctx)
{
    pin_node(prog->root, exists, uid_of, ctx);
}
