/* cmd-sort.c: SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267 section
 * 3) and their UID forms. The search criteria run through the SEARCH engine
 * (search_run_selected in cmd-search.c); then each match's keys are computed once into flat
 * arrays and one string pool (dates, sizes from the index record; Subject, From, To, Cc,
 * Date, Message-ID, References, In-Reply-To from the header block, which the message handle
 * serves from the cache: store/mail.h mail_header), so the comparator never allocates or
 * parses, and the sort is one qsort of n fixed-size items. Strings are compared in their
 * i;unicode-casemap form (lib/imap/imap-sort.h), which is i;ascii-casemap on ASCII.
 * CONTEXT=SORT (RFC 5267 section 4): ESORT's RETURN (PARTIAL m:n) answers a window of the
 * sorted result; RETURN (UPDATE) keeps the SORT live (search-context.c) with its result in
 * sort order and each message's keys (struct sort_context, at the end of this file), so
 * that a new match is placed by comparing keys, never by sorting again. */
#include "imapd.h"
#include "search-context.h"
#include "selected.h"
#include "imap/imap-partial.h"
#include "imap/imap-sort.h"
#include "imap/imap-thread.h"
#include "imap/search.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/date.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include "store/mail.h"
#include <stdlib.h>
#include <string.h>

/* The sort keys (RFC 5256 section 3, RFC 5957 section 3). */
enum sort_key {
    SK_ARRIVAL, SK_DATE, SK_SIZE,
    /* string keys: their index in struct sort_item's off/len */
    SK_SUBJECT, SK_FROM, SK_TO, SK_CC, SK_DISPLAYFROM, SK_DISPLAYTO,
};
#define SK_FIRST_STR SK_SUBJECT
#define SK_NSTR (SK_DISPLAYTO - SK_SUBJECT + 1)
#define SORT_MAX_CRITERIA 32        /* more sort keys than this are refused as BAD */

struct sort_crit {
    enum sort_key key;
    int reverse;
};

/* One message to sort: its keys, computed before sorting. */
struct sort_item {
    uint32_t msgno, uid;
    int64_t arrival, date;
    uint64_t size;
    uint32_t off[SK_NSTR], len[SK_NSTR];   /* casemapped keys in the pool */
};

/* Header fields read for the keys; the first of each name counts. */
enum { HF_DATE, HF_SUBJECT, HF_FROM, HF_TO, HF_CC, HF_MSGID, HF_REFS, HF_IRT, HF_COUNT };
static const char *const hf_names[HF_COUNT] = {
    "Date", "Subject", "From", "To", "Cc", "Message-ID", "References", "In-Reply-To",
};

struct fields {
    const char *v[HF_COUNT];
    size_t len[HF_COUNT];
    unsigned want;                  /* 1 << HF_* */
};

static int fields_cb(void *rock, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    struct fields *f = rock;
    for (int i = 0; i < HF_COUNT; i++) {
        if (!(f->want & (1u << i)) || f->v[i]) continue;
        if (strlen(hf_names[i]) == name_len && !strncasecmp(name, hf_names[i], name_len)) {
            f->v[i] = value;
            f->len[i] = value_len;
        }
    }
    return 0;
}

/* The state of one SORT or THREAD while it gathers keys. */
struct gather {
    struct mail *mail;
    struct buf pool;        /* every string key, casemapped */
    struct buf tmp, tmp2;   /* scratch */
};

/* load_fields: the index record and the wanted header fields of uid. 1 when the message is
 * there (*arrival, *size filled; f filled as far as found), 0 when it is gone, or an error. */
static int load_fields(struct gather *g, uint32_t uid, struct fields *f, int64_t *arrival,
                       uint64_t *size)
{
    const struct index_record *rec;
    const char *h;
    size_t hl;
    unsigned want = f->want;
    memset(f, 0, sizeof(*f));
    f->want = want;
    *arrival = 0;
    *size = 0;
    mail_set_uid(g->mail, uid);
    int r = mail_record(g->mail, &rec);
    if (r <= 0) return r;
    *arrival = rec->internaldate;
    *size = rec->size;
    if (!want) return 1;
    r = mail_header(g->mail, &h, &hl);
    if (r == CF_E_NOTFOUND) return 1;
    if (r < 0) return r;
    mime_header_foreach(h, hl, fields_cb, f);
    return 1;
}

/* sent_date: RFC 5256 section 2.2: the Date: field in UTC, else the internal date. */
static int64_t sent_date(const struct fields *f, int64_t arrival)
{
    int64_t d = f->v[HF_DATE] ? mime_parse_date(f->v[HF_DATE], f->len[HF_DATE]) : 0;
    return d ? d : arrival;
}

/* The first address of an address field (group markers skipped). */
struct first_addr {
    int found;
    struct buf *out;        /* what was asked for, appended */
    int display;
};

static int first_addr_cb(void *rock, int kind, const struct mime_address *a)
{
    struct first_addr *fa = rock;
    if (kind != MIME_ADDRESS) return 0;
    fa->found = 1;
    if (fa->display && a->name && a->name_len) {
        /* RFC 5957 section 3: the display-name, RFC 2047 decoded */
        size_t at = fa->out->len;
        mime_decode_header(a->name, a->name_len, fa->out);
        for (size_t i = at; i < fa->out->len; i++)
            if (fa->out->s[i] != ' ') return 1;
        buf_truncate(fa->out, at);  /* only blanks: as if there were none */
    }
    if (fa->display) {
        /* no display-name: the addr-spec */
        buf_append(fa->out, a->mailbox, a->mailbox_len);
        if (a->domain_len) {
            buf_putc(fa->out, '@');
            buf_append(fa->out, a->domain, a->domain_len);
        }
        return 1;
    }
    /* RFC 5256 section 3: the addr-mailbox (local part) of the first address */
    buf_append(fa->out, a->mailbox, a->mailbox_len);
    return 1;
}

/* pool_put: the casemapped form of s[0,n) appended to the pool; its offset and length. */
static void pool_put(struct gather *g, const char *s, size_t n, uint32_t *off, uint32_t *len)
{
    *off = (uint32_t)g->pool.len;
    imap_casemap(s, n, &g->pool);
    *len = (uint32_t)(g->pool.len - *off);
}

static void address_key(struct gather *g, const struct fields *f, int field, int display,
                        uint32_t *off, uint32_t *len)
{
    struct first_addr fa = { 0, &g->tmp, display };
    buf_reset(&g->tmp);
    if (f->v[field]) mime_address_foreach(f->v[field], f->len[field], first_addr_cb, &fa);
    pool_put(g, g->tmp.s ? g->tmp.s : "", g->tmp.len, off, len);
}

static void subject_key(struct gather *g, const struct fields *f, uint32_t *off, uint32_t *len,
                        int *reply)
{
    buf_reset(&g->tmp);
    *reply = 0;
    if (f->v[HF_SUBJECT]) imap_base_subject(f->v[HF_SUBJECT], f->len[HF_SUBJECT], &g->tmp, reply);
    pool_put(g, g->tmp.s ? g->tmp.s : "", g->tmp.len, off, len);
}

/* item_keys: the keys of message uid (numbered msgno, the mailbox-order tie-break) into *it
 * (cleared first), string keys appended to g's pool; want: the header fields crit reads
 * (1 << HF_*). 1, 0 when the message is gone (keys empty), or an error (keys as far as
 * read). */
static int item_keys(struct gather *g, const struct sort_crit *crit, size_t ncrit,
                     unsigned want, uint32_t msgno, uint32_t uid, struct sort_item *it)
{
    struct fields f;
    memset(it, 0, sizeof(*it));
    it->msgno = msgno;
    it->uid = uid;
    f.want = want;
    int r = load_fields(g, uid, &f, &it->arrival, &it->size);
    if (r < 0) return r;
    it->date = sent_date(&f, it->arrival);
    for (size_t k = 0; k < ncrit; k++) {
        size_t s = crit[k].key - SK_FIRST_STR;
        int reply;
        if (crit[k].key < SK_FIRST_STR || it->len[s] || it->off[s]) continue;
        switch (crit[k].key) {
        case SK_SUBJECT: subject_key(g, &f, &it->off[s], &it->len[s], &reply); break;
        case SK_FROM: address_key(g, &f, HF_FROM, 0, &it->off[s], &it->len[s]); break;
        case SK_TO: address_key(g, &f, HF_TO, 0, &it->off[s], &it->len[s]); break;
        case SK_CC: address_key(g, &f, HF_CC, 0, &it->off[s], &it->len[s]); break;
        case SK_DISPLAYFROM: address_key(g, &f, HF_FROM, 1, &it->off[s], &it->len[s]); break;
        case SK_DISPLAYTO: address_key(g, &f, HF_TO, 1, &it->off[s], &it->len[s]); break;
        default: break;
        }
    }
    return r;
}

/* check_charset: 1 when the charset argument is one SORT and THREAD take. */
static int check_charset(const struct imap_arg *a)
{
    const char *s = imap_arg_astring(a);
    return s && (!strcasecmp(s, "UTF-8") || !strcasecmp(s, "US-ASCII"));
}

/* parse_criteria: the search criteria after the charset into *prog. 0, or -1 with the
 * tagged response written. */
static int parse_criteria(struct client *c, const struct imap_command *cmd,
                          const struct imap_arg *args, size_t nargs, struct search_program **prog)
{
    const char *err = NULL;
    int r;
    if (!nargs) {
        client_tagged(c, cmd->tag, "BAD %s needs search criteria", cmd->name);
        return -1;
    }
    if (imap_arg_atom_eq(&args[0], "CHARSET")) {
        client_tagged(c, cmd->tag, "BAD The charset of %s goes before the criteria, without "
                      "CHARSET", cmd->name);
        return -1;
    }
    r = search_parse(args, nargs, prog, &err);
    if (r == CF_E_LIMIT) {
        client_tagged(c, cmd->tag, "NO [LIMIT] %s (limit %d bytes)", err, SEARCH_MAX_STRINGS);
        return -1;
    }
    if (r < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err ? err : "Invalid search criteria");
        return -1;
    }
    return 0;
}

static const char *g_pool;          /* the comparator's view of the pool (one sort at a time) */
static const struct sort_crit *g_crit;
static size_t g_ncrit;

static int item_cmp(const void *pa, const void *pb)
{
    const struct sort_item *a = pa, *b = pb;
    for (size_t i = 0; i < g_ncrit; i++) {
        int c = 0;
        switch (g_crit[i].key) {
        case SK_ARRIVAL: c = (a->arrival > b->arrival) - (a->arrival < b->arrival); break;
        case SK_DATE: c = (a->date > b->date) - (a->date < b->date); break;
        case SK_SIZE: c = (a->size > b->size) - (a->size < b->size); break;
        default: {
            size_t k = g_crit[i].key - SK_FIRST_STR;
            uint32_t la = a->len[k], lb = b->len[k];
            c = memcmp(g_pool + a->off[k], g_pool + b->off[k], la < lb ? la : lb);
            if (!c) c = (la > lb) - (la < lb);
            break;
        }
        }
        if (c) return g_crit[i].reverse ? -c : c;
    }
    /* RFC 5256 section 3: exact matches in mailbox order */
    return (a->msgno > b->msgno) - (a->msgno < b->msgno);
}

/* RFC 5267 section 3 (ESORT) result options, RFC 5182 SAVE, and RFC 5267 section 4
 * (CONTEXT=SORT) CONTEXT, UPDATE, PARTIAL */
enum {
    RET_MIN = 1, RET_MAX = 2, RET_ALL = 4, RET_COUNT = 8, RET_SAVE = 16,
    RET_CONTEXT = 32, RET_UPDATE = 64, RET_PARTIAL = 128,
};
/* the options that ask for a result (without any, RETURN means ALL) */
#define RET_RESULTS (RET_MIN | RET_MAX | RET_ALL | RET_COUNT | RET_SAVE | RET_PARTIAL)

/* parse_sort_return: the RETURN list into RET_* bits, PARTIAL's range into *partial. 0, or
 * -1 with the reason in *err. The rules are SEARCH's (cmd-search.c parse_return). */
static int parse_sort_return(const struct imap_arg *a, unsigned *ret,
                             struct imap_partial *partial, const char **err)
{
    static const struct { const char *name; unsigned bit; } opts[] = {
        { "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL }, { "COUNT", RET_COUNT },
        { "SAVE", RET_SAVE }, { "CONTEXT", RET_CONTEXT }, { "UPDATE", RET_UPDATE },
        { "PARTIAL", RET_PARTIAL },
    };
    *ret = 0;
    *err = "RETURN needs a list of MIN, MAX, ALL, COUNT, SAVE, PARTIAL, CONTEXT, UPDATE";
    if (a->type != IMAP_ARG_LIST) return -1;
    for (size_t i = 0; i < a->count; i++) {
        size_t k;
        for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (imap_arg_atom_eq(&a->list[i], opts[k].name)) break;
        if (k == sizeof opts / sizeof opts[0]) return -1;
        if ((opts[k].bit & (RET_UPDATE | RET_PARTIAL)) && (*ret & opts[k].bit)) {
            *err = "UPDATE and PARTIAL may be given only once";
            return -1;
        }
        *ret |= opts[k].bit;
        if (opts[k].bit != RET_PARTIAL) continue;
        /* RFC 5267 section 4.4: PARTIAL takes a range (RFC 9394: negative ones too) */
        const char *text = ++i < a->count ? imap_arg_atom(&a->list[i]) : NULL;
        if (!text || imap_partial_parse(text, a->list[i].len, partial, err) < 0) {
            *err = "PARTIAL needs a range m:n or -m:-n of nonzero numbers";
            return -1;
        }
    }
    /* RFC 5267 section 4.4: one PARTIAL or one ALL, not both */
    if ((*ret & RET_PARTIAL) && (*ret & RET_ALL)) {
        *err = "PARTIAL and ALL cannot be combined";
        return -1;
    }
    if (!(*ret & RET_RESULTS)) *ret |= RET_ALL;
    return 0;
}

/* append_ordered: nums[0,n) comma-separated in their order, an ascending run of neighbours
 * as "a:b" (RFC 5267 section 3.2: a range never reorders the result). */
static void append_ordered(struct buf *out, const uint32_t *nums, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && nums[j + 1] == nums[j] + 1) j++;
        if (i) buf_putc(out, ',');
        if (j > i) buf_printf(out, "%u:%u", nums[i], nums[j]);
        else buf_printf(out, "%u", nums[i]);
        i = j + 1;
    }
}

/* sort_view_uid: selected_uid for search_pin. */
static uint32_t sort_view_uid(void *ctx, uint32_t msgno)
{
    return selected_uid(ctx, msgno);
}

static int parse_sort_keys(const struct imap_arg *a, struct sort_crit *crit, size_t *ncrit,
                           const char **err)
{
    static const struct { const char *name; enum sort_key key; } names[] = {
        { "ARRIVAL", SK_ARRIVAL }, { "CC", SK_CC }, { "DATE", SK_DATE }, { "FROM", SK_FROM },
        { "SIZE", SK_SIZE }, { "SUBJECT", SK_SUBJECT }, { "TO", SK_TO },
        { "DISPLAYFROM", SK_DISPLAYFROM }, { "DISPLAYTO", SK_DISPLAYTO },
    };
    int reverse = 0;
    *ncrit = 0;
    if (a->type != IMAP_ARG_LIST || !a->count) {
        *err = "SORT needs a list of sort keys";
        return -1;
    }
    for (size_t i = 0; i < a->count; i++) {
        if (imap_arg_atom_eq(&a->list[i], "REVERSE")) {
            if (reverse) { *err = "REVERSE twice"; return -1; }
            reverse = 1;
            continue;
        }
        size_t k;
        for (k = 0; k < sizeof names / sizeof names[0]; k++)
            if (imap_arg_atom_eq(&a->list[i], names[k].name)) break;
        if (k == sizeof names / sizeof names[0]) { *err = "Unknown sort key"; return -1; }
        if (*ncrit == SORT_MAX_CRITERIA) { *err = "Too many sort keys"; return -1; }
        crit[*ncrit].key = names[k].key;
        crit[(*ncrit)++].reverse = reverse;
        reverse = 0;
    }
    if (reverse) { *err = "REVERSE needs a sort key after it"; return -1; }
    return 0;
}

/* esort_reply: the ESEARCH response of SORT RETURN (RFC 5267 section 3.2): MIN and MAX the
 * first and last message in sort order, ALL the matches in sort order (only ascending runs
 * become ranges, so the order survives), PARTIAL (section 4.4) the window of them in sort
 * order, COUNT how many. */
static void esort_reply(struct client *c, const struct imap_command *cmd, int uid_cmd,
                        unsigned ret, const struct imap_partial *partial, const uint32_t *nums,
                        size_t n)
{
    struct buf out = BUF_INIT;
    buf_appends(&out, "ESEARCH (TAG \"");
    for (const char *t = cmd->tag; *t; t++) {
        if (*t == '"' || *t == '\\') buf_putc(&out, '\\');
        buf_putc(&out, *t);
    }
    buf_printf(&out, "\")%s", uid_cmd ? " UID" : "");
    if (n && (ret & RET_MIN)) buf_printf(&out, " MIN %u", nums[0]);
    if (n && (ret & RET_MAX)) buf_printf(&out, " MAX %u", nums[n - 1]);
    if (n && (ret & RET_ALL)) {
        buf_appends(&out, " ALL ");
        append_ordered(&out, nums, n);
    }
    if (ret & RET_PARTIAL) {
        /* RFC 5267 section 4.4: PARTIAL (range set-or-NIL), the range echoed */
        uint64_t first = 0, end = 0;
        buf_appends(&out, " PARTIAL (");
        imap_partial_format(partial, &out);
        buf_putc(&out, ' ');
        if (imap_partial_window(partial, n, &first, &end))
            append_ordered(&out, nums + first, (size_t)(end - first));
        else
            buf_appends(&out, "NIL");
        buf_putc(&out, ')');
    }
    if (ret & RET_COUNT) buf_printf(&out, " COUNT %zu", n);
    client_untagged(c, "%s", buf_cstr(&out));
    buf_fini(&out);
}

static void sort_keep(struct client *c, const struct imap_command *cmd, int uid_cmd,
                      unsigned ret, struct search_program **prog, const struct sort_crit *crit,
                      size_t ncrit, unsigned want, const struct sort_item *items, size_t n,
                      struct buf *pool);

void cmd_sort(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    const struct imap_arg *args = cmd->args;
    size_t nargs = cmd->nargs, ncrit = 0, n = 0;
    struct sort_crit crit[SORT_MAX_CRITERIA];
    struct search_program *prog = NULL;
    const char *err = NULL;
    uint32_t *msgnos = NULL;
    unsigned ret = 0;
    struct imap_partial partial = { 0, 0, 0 };
    int extended = 0, save_asked = 0, r;

    if (nargs >= 1 && imap_arg_atom_eq(&args[0], "RETURN")) {
        /* RFC 5267 section 3: SORT RETURN (options) (keys) charset criteria */
        extended = 1;
        if (nargs >= 2 && args[1].type == IMAP_ARG_LIST)
            for (size_t i = 0; i < args[1].count; i++)
                if (imap_arg_atom_eq(&args[1].list[i], "SAVE")) save_asked = 1;
        if (nargs < 2) {
            client_tagged(c, cmd->tag, "BAD RETURN needs a list of result options");
            goto failed;
        }
        if (parse_sort_return(&args[1], &ret, &partial, &err) < 0) {
            client_tagged(c, cmd->tag, "BAD %s", err);
            goto failed;
        }
        args += 2;
        nargs -= 2;
        /* RFC 5267 section 4.3: an update is named by its tag, which must be unambiguous */
        if ((ret & RET_UPDATE) && search_context_find(sel, cmd->tag)) {
            client_tagged(c, cmd->tag, "BAD A search update with this tag is active");
            goto failed;
        }
    }
    if (nargs < 3) {
        client_tagged(c, cmd->tag, "BAD %s needs (sort keys), a charset and search criteria",
                      cmd->name);
        goto failed;
    }
    if (parse_sort_keys(&args[0], crit, &ncrit, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto failed;
    }
    if (!imap_arg_astring(&args[1])) {
        client_tagged(c, cmd->tag, "BAD %s needs a charset", cmd->name);
        goto failed;
    }
    if (parse_criteria(c, cmd, args + 2, nargs - 2, &prog) < 0) goto failed;
    if (!check_charset(&args[1])) {
        /* RFC 5256 section 3: NO with the charsets we do take */
        search_free(&prog);
        client_tagged(c, cmd->tag, "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
        goto failed;
    }
    r = search_run_selected(sel, prog, &msgnos, &n);
    /* a live SORT keeps the messages its sequence keys meant now (search.h search_pin) */
    if (r >= 0 && (ret & RET_UPDATE))
        search_pin(prog, selected_count(sel), sort_view_uid, sel);
    else
        search_free(&prog);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto failed;
    }

    /* the keys */
    unsigned want = 0;
    for (size_t i = 0; i < ncrit; i++) {
        switch (crit[i].key) {
        case SK_DATE: want |= 1u << HF_DATE; break;
        case SK_SUBJECT: want |= 1u << HF_SUBJECT; break;
        case SK_FROM: case SK_DISPLAYFROM: want |= 1u << HF_FROM; break;
        case SK_TO: case SK_DISPLAYTO: want |= 1u << HF_TO; break;
        case SK_CC: want |= 1u << HF_CC; break;
        default: break;
        }
    }
    struct gather g;
    memset(&g, 0, sizeof(g));
    g.mail = mail_new(sel->mb);
    struct sort_item *items = n ? xreallocarray(NULL, n, sizeof(*items)) : NULL;
    for (size_t i = 0; i < n && r >= 0; i++) {
        r = item_keys(&g, crit, ncrit, want, msgnos[i], selected_uid(sel, msgnos[i]), &items[i]);
        if (r < 0) break;
        mail_reset(g.mail);
        r = 0;
    }
    mail_free(&g.mail);
    free(msgnos);
    if (r < 0) {
        search_free(&prog);
        if (save_asked) imap_seqset_clear(&sel->saved);
        imapd_reply_error(c, cmd->tag, r);
    } else {
        g_pool = g.pool.s ? g.pool.s : "";
        g_crit = crit;
        g_ncrit = ncrit;
        if (n > 1) qsort(items, n, sizeof(*items), item_cmp);
        g_pool = NULL;
        uint32_t *nums = n ? xreallocarray(NULL, n, sizeof(*nums)) : NULL;
        for (size_t i = 0; i < n; i++) nums[i] = uid_cmd ? items[i].uid : items[i].msgno;
        if (!extended) {
            struct buf out = BUF_INIT;
            buf_appends(&out, "SORT");
            for (size_t i = 0; i < n; i++) buf_printf(&out, " %u", nums[i]);
            client_untagged(c, "%s", buf_cstr(&out));
            buf_fini(&out);
        } else {
            if (ret & RET_SAVE) {
                /* RFC 5182 section 2.4: with MIN and/or MAX but neither ALL nor COUNT, only
                 * those are saved; PARTIAL, read the same way, saves its window; as uids */
                struct imap_seqset uids = IMAP_SEQSET_INIT;
                int only_ends = (ret & (RET_MIN | RET_MAX | RET_PARTIAL)) &&
                                !(ret & (RET_ALL | RET_COUNT));
                uint64_t pfirst = 0, pend = 0;
                if (ret & RET_PARTIAL) imap_partial_window(&partial, n, &pfirst, &pend);
                for (size_t i = 0; i < n; i++) {
                    if (only_ends && !((i == 0 && (ret & RET_MIN)) ||
                                       (i == n - 1 && (ret & RET_MAX)) ||
                                       (i >= pfirst && i < pend)))
                        continue;
                    imap_seqset_add(&uids, items[i].uid, items[i].uid);
                }
                imap_seqset_fini(&sel->saved);
                sel->saved = uids;
            }
            if (ret & RET_UPDATE) sort_keep(c, cmd, uid_cmd, ret, &prog, crit, ncrit, want,
                                            items, n, &g.pool);
            /* RFC 5182 section 2.1: SAVE alone gives no ESEARCH response (CONTEXT and UPDATE
             * ask for none either) */
            if (ret & ~(unsigned)(RET_SAVE | RET_CONTEXT | RET_UPDATE))
                esort_reply(c, cmd, uid_cmd, ret, &partial, nums, n);
        }
        free(nums);
        search_free(&prog);
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
    free(items);
    buf_fini(&g.pool);
    buf_fini(&g.tmp);
    buf_fini(&g.tmp2);
    return;
failed:
    /* RFC 5182 section 2.1: a failed command that asked to SAVE empties "$" */
    if (save_asked) imap_seqset_clear(&sel->saved);
}

void cmd_thread(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    const struct imap_arg *args = cmd->args;
    size_t nargs = cmd->nargs, n = 0;
    struct search_program *prog = NULL;
    uint32_t *msgnos = NULL;
    int references, r;

    if (nargs < 3) {
        client_tagged(c, cmd->tag, "BAD %s needs an algorithm, a charset and search criteria",
                      cmd->name);
        return;
    }
    if (imap_arg_atom_eq(&args[0], "REFERENCES")) references = 1;
    else if (imap_arg_atom_eq(&args[0], "ORDEREDSUBJECT")) references = 0;
    else {
        client_tagged(c, cmd->tag, "BAD Unknown threading algorithm");
        return;
    }
    if (!imap_arg_astring(&args[1])) {
        client_tagged(c, cmd->tag, "BAD %s needs a charset", cmd->name);
        return;
    }
    if (parse_criteria(c, cmd, args + 2, nargs - 2, &prog) < 0) return;
    if (!check_charset(&args[1])) {
        search_free(&prog);
        client_tagged(c, cmd->tag, "NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
        return;
    }
    r = search_run_selected(sel, prog, &msgnos, &n);
    search_free(&prog);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        return;
    }

    /* the keys: strings as pool offsets first (the pool moves as it grows), pointers after */
    struct gather g;
    memset(&g, 0, sizeof(g));
    g.mail = mail_new(sel->mb);
    struct thread_msg *tm = n ? xreallocarray(NULL, n, sizeof(*tm)) : NULL;
    unsigned want = (1u << HF_DATE) | (1u << HF_SUBJECT);
    if (references) want |= (1u << HF_MSGID) | (1u << HF_REFS) | (1u << HF_IRT);
    /* offsets of msgid, refs, irt (subject_len etc. hold lengths meanwhile) */
    size_t *offs = n ? xreallocarray(NULL, n * 4, sizeof(*offs)) : NULL;
    for (size_t i = 0; i < n && r >= 0; i++) {
        struct thread_msg *m = &tm[i];
        struct fields f;
        int64_t arrival;
        uint64_t size;
        uint32_t off, len;
        memset(m, 0, sizeof(*m));
        m->seq = msgnos[i];
        m->num = uid_cmd ? selected_uid(sel, msgnos[i]) : msgnos[i];
        f.want = want;
        r = load_fields(&g, selected_uid(sel, msgnos[i]), &f, &arrival, &size);
        if (r < 0) break;
        m->date = sent_date(&f, arrival);
        subject_key(&g, &f, &off, &len, &m->reply);
        offs[i * 4] = off;
        m->subject_len = len;
        if (references) {
            static const int hf[3] = { HF_MSGID, HF_REFS, HF_IRT };
            size_t *lens[3] = { &m->msgid_len, &m->refs_len, &m->irt_len };
            for (int k = 0; k < 3; k++) {
                offs[i * 4 + 1 + k] = g.pool.len;
                *lens[k] = f.v[hf[k]] ? f.len[hf[k]] : (size_t)-1;
                if (f.v[hf[k]]) buf_append(&g.pool, f.v[hf[k]], f.len[hf[k]]);
            }
        }
        mail_reset(g.mail);
        r = 0;
    }
    mail_free(&g.mail);
    free(msgnos);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
    } else {
        const char *pool = g.pool.s ? g.pool.s : "";
        for (size_t i = 0; i < n; i++) {
            struct thread_msg *m = &tm[i];
            m->subject = pool + offs[i * 4];
            if (!references) continue;
            const char **ps[3] = { &m->msgid, &m->refs, &m->irt };
            size_t *lens[3] = { &m->msgid_len, &m->refs_len, &m->irt_len };
            for (int k = 0; k < 3; k++) {
                if (*lens[k] == (size_t)-1) { *ps[k] = NULL; *lens[k] = 0; }
                else *ps[k] = pool + offs[i * 4 + 1 + k];
            }
        }
        struct buf out = BUF_INIT;
        buf_appends(&out, "THREAD");
        if (n) buf_putc(&out, ' ');
        if (references) thread_references(tm, n, &out);
        else thread_orderedsubject(tm, n, &out);
        client_untagged(c, "%s", buf_cstr(&out));
        buf_fini(&out);
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
    free(offs);
    free(tm);
    buf_fini(&g.pool);
    buf_fini(&g.tmp);
    buf_fini(&g.tmp2);
}

/* ---- CONTEXT=SORT (RFC 5267 section 4): a live SORT's result in sort order ---- */

struct sort_context {
    struct sort_crit crit[SORT_MAX_CRITERIA];
    size_t ncrit;
    unsigned want;                  /* the header fields the keys read (1 << HF_*) */
    struct sort_item *items;        /* the result in sort order; each msgno field holds the
                                     * uid, the mailbox-order tie-break (uids grow as message
                                     * numbers do, and do not change on expunge) */
    size_t n;
    struct buf pool;                /* the items' string keys */
};

/* sort_keep: keep the SORT just answered live (RETURN (UPDATE)): *prog (taken), the keys
 * items[0,n) in sort order over *pool (taken). Past SEARCH_CONTEXT_MAX, * NO [NOUPDATE]. */
static void sort_keep(struct client *c, const struct imap_command *cmd, int uid_cmd,
                      unsigned ret, struct search_program **prog, const struct sort_crit *crit,
                      size_t ncrit, unsigned want, const struct sort_item *items, size_t n,
                      struct buf *pool)
{
    struct sort_context *s = xzmalloc(sizeof(*s));
    memcpy(s->crit, crit, ncrit * sizeof(*crit));
    s->ncrit = ncrit;
    s->want = want;
    s->n = n;
    s->items = n ? xreallocarray(NULL, n, sizeof(*s->items)) : NULL;
    struct imap_seqset uids = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < n; i++) {
        s->items[i] = items[i];
        s->items[i].msgno = items[i].uid;
        imap_seqset_add(&uids, items[i].uid, items[i].uid);
    }
    s->pool = *pool;
    buf_init(pool);
    unsigned w = 0;
    if (ret & RET_MIN) w |= SEARCH_UPDATE_MIN;
    if (ret & RET_MAX) w |= SEARCH_UPDATE_MAX;
    if (ret & RET_COUNT) w |= SEARCH_UPDATE_COUNT;
    /* RFC 5267 section 4.3: no interaction with the other options: ADDTO/REMOVEFROM for
     * ALL or PARTIAL (or when nothing else was asked) */
    if ((ret & (RET_ALL | RET_PARTIAL)) || !w) w |= SEARCH_UPDATE_LIST;
    if (search_context_add_sort(c->sel, cmd->tag, uid_cmd, w, prog, &uids, &s) < 0) {
        struct buf q = BUF_INIT;
        imap_string_append(&q, cmd->tag, strlen(cmd->tag));
        client_untagged(c, "NO [NOUPDATE %s] Too many search updates (limit %d, of them %d "
                        "SORTs)", buf_cstr(&q), SEARCH_CONTEXT_MAX, SORT_CONTEXT_MAX);
        buf_fini(&q);
        search_free(prog);
        sort_context_free(&s);
    }
    imap_seqset_fini(&uids);
}

/* A run of an update being written: results next to each other in the list. */
struct sort_run {
    size_t next;                    /* index that would extend the run */
    uint64_t pos;                   /* position sent for the run */
    uint32_t *nums;                 /* their numbers in list order */
    size_t n, cap;
    int open;
};

/* run_flush: write the run as "pos n,n:m" into out (space-separated from what is there). */
static void sort_run_flush(struct sort_run *r, struct buf *out)
{
    if (!r->open) return;
    if (out->len) buf_putc(out, ' ');
    buf_printf(out, "%llu ", (unsigned long long)r->pos);
    append_ordered(out, r->nums, r->n);
    r->n = 0;
    r->open = 0;
}

/* sort_run_put: the result numbered num at list index idx, sent at position pos when it
 * starts a run. */
static void sort_run_put(struct sort_run *r, size_t idx, uint64_t pos, uint32_t num,
                         struct buf *out)
{
    if (r->open && idx != r->next) sort_run_flush(r, out);
    if (!r->open) {
        r->open = 1;
        r->pos = pos;
    }
    r->next = idx + 1;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->nums = xreallocarray(r->nums, r->cap, sizeof(*r->nums));
    }
    r->nums[r->n++] = num;
}

/* sort_pool_compact: copy the live string keys to a new pool once removals left more
 * garbage than keys (a long-lived context would otherwise grow with every re-entry). */
static void sort_pool_compact(struct sort_context *s)
{
    size_t live = 0;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < SK_NSTR; k++) live += s->items[i].len[k];
    if (s->pool.len < 65536 || live * 2 > s->pool.len) return;
    struct buf pool = BUF_INIT;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < SK_NSTR; k++) {
            struct sort_item *it = &s->items[i];
            uint32_t off = (uint32_t)pool.len;
            if (it->len[k]) buf_append(&pool, s->pool.s + it->off[k], it->len[k]);
            it->off[k] = off;
        }
    buf_fini(&s->pool);
    s->pool = pool;
}

void sort_context_apply(struct selected *sel, struct sort_context *s,
                        const struct imap_seqset *gone, const struct imap_seqset *added,
                        uint32_t (*num)(void *ctx, uint32_t uid), void *ctx, struct buf *rm,
                        struct buf *add, uint32_t *first_r, uint32_t *last_r, int *logged)
{
    struct sort_run run;
    memset(&run, 0, sizeof(run));
    /* RFC 5267 section 4.3.4: REMOVEFROM in list order; the first of a pair sits at its
     * position before removal, with the pairs before it applied (so a run of neighbours at
     * old indices i.. goes out at i + 1 minus the ones removed before it) */
    if (gone->count) {
        size_t w = 0, removed = 0;
        for (size_t i = 0; i < s->n; i++) {
            uint32_t uid = s->items[i].msgno;
            if (imap_seqset_contains(gone, uid)) {
                sort_run_put(&run, i, (uint64_t)(i - removed) + 1, num(ctx, uid), rm);
                removed++;
                continue;
            }
            s->items[w++] = s->items[i];
        }
        sort_run_flush(&run, rm);
        s->n = w;
        sort_pool_compact(s);
    }
    /* RFC 5267 section 4.3.3: ADDTO in list order, each at its position in the new list
     * (the additions before it already inserted); the new messages' keys are read once,
     * sorted among themselves, and merged into the list */
    uint64_t k = imap_seqset_size(added);
    if (k) {
        struct gather g;
        memset(&g, 0, sizeof(g));
        g.mail = mail_new(sel->mb);
        g.pool = s->pool;
        struct sort_item *nw = xreallocarray(NULL, (size_t)k, sizeof(*nw));
        size_t m = 0;
        for (size_t i = 0; i < added->count; i++)
            for (uint64_t uid = added->r[i].lo; uid <= added->r[i].hi; uid++) {
                int r = item_keys(&g, s->crit, s->ncrit, s->want, (uint32_t)uid, (uint32_t)uid,
                                  &nw[m++]);
                if (r < 0 && !(*logged)++)
                    log_warn("imap_sort_update_failed", "uid=%u error=%s", (unsigned)uid,
                             cf_strerror(r));
                mail_reset(g.mail);
            }
        mail_free(&g.mail);
        s->pool = g.pool;
        buf_fini(&g.tmp);
        buf_fini(&g.tmp2);
        g_pool = s->pool.s ? s->pool.s : "";
        g_crit = s->crit;
        g_ncrit = s->ncrit;
        if (m > 1) qsort(nw, m, sizeof(*nw), item_cmp);
        struct sort_item *out = xreallocarray(NULL, s->n + m, sizeof(*out));
        size_t i = 0, j = 0, o = 0;
        while (i < s->n || j < m) {
            if (j < m && (i == s->n || item_cmp(&nw[j], &s->items[i]) < 0)) {
                out[o] = nw[j++];
                sort_run_put(&run, o, (uint64_t)o + 1, num(ctx, out[o].msgno), add);
            } else {
                out[o] = s->items[i++];
            }
            o++;
        }
        g_pool = NULL;
        sort_run_flush(&run, add);
        free(s->items);
        free(nw);
        s->items = out;
        s->n = o;
    }
    free(run.nums);
    *first_r = s->n ? s->items[0].msgno : 0;
    *last_r = s->n ? s->items[s->n - 1].msgno : 0;
}

void sort_context_free(struct sort_context **s)
{
    if (!*s) return;
    free((*s)->items);
    buf_fini(&(*s)->pool);
    free(*s);
    *s = NULL;
}
