/* cmd-sort.c: SORT and THREAD (RFC 5256), SORT=DISPLAY (RFC 5957), ESORT (RFC 5267 section
 * 3) and their UID forms. The search criteria run through the SEARCH engine
 * (search_run_selected in cmd-search.c); then each match's keys are gathered into flat arrays
 * without parsing a message: arrival, sent date and size from one walk of the mapped index
 * (store/mailbox-sort.h mailbox_sort_records), the string keys and the threading ids from the
 * mailbox's sort key file, where imap_sortkeys_encode (lib/imap/imap-sortkeys.h) left them
 * when the message was first sorted or threaded. Numeric sorts are a stable LSD radix sort;
 * a sort whose first key is a string an MSD radix sort over its bytes, 8 at a time
 * (string_order), and one whose first key is a number and a later one a string a qsort of
 * fixed-size items whose comparator never allocates or parses. Strings are compared in
 * their i;unicode-casemap form (lib/imap/imap-sort.h), which is i;ascii-casemap on ASCII.
 * CONTEXT=SORT (RFC 5267 section 4): ESORT's RETURN (PARTIAL m:n) answers a window of the
 * sorted result; RETURN (UPDATE) keeps the SORT live (search-context.c) with its result in
 * sort order and each message's keys (struct sort_context, at the end of this file), so
 * that a new match is placed by comparing keys, never by sorting again. */
#include "imapd.h"
#include "search-context.h"
#include "selected.h"
#include "imap/imap-partial.h"
#include "imap/imap-keyfiles.h"
#include "imap/imap-sort.h"
#include "imap/imap-sortkeys.h"
#include "imap/imap-thread.h"
#include "imap/search.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mailbox-sort.h"
#include <malloc.h>
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
    const char *str[SK_NSTR];       /* casemapped keys (in the key blobs) */
    uint32_t len[SK_NSTR];
    uint64_t pfx[SK_NSTR];          /* their first 8 bytes, big-endian, zero-padded */
};

/* str_prefix: the first 8 bytes of s[0,n) as a big-endian number, zero-padded. Prefixes that
 * differ order two keys as memcmp-then-length does (a shorter key's padding is below any
 * byte the longer one has there, unless that byte is zero too, and then they are equal), so
 * the comparator reads the strings only on equal prefixes. */
static uint64_t str_prefix(const char *s, size_t n)
{
    uint64_t v = 0;
    if (n >= 8) {
        /* one load (s[0,8) is in the key), made big-endian */
        memcpy(&v, s, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return v;
    }
    for (size_t i = 0; i < 8; i++) v = (v << 8) | (i < n ? (unsigned char)s[i] : 0);
    return v;
}

/* sent_date: RFC 5256 section 2.2: the Date: field in UTC, else the internal date. The index
 * keeps the first one (mailbox_summarize parses the first Date: field; 0 when there is none
 * or it does not parse). */
static int64_t sent_date(const struct mailbox_sortrec *r)
{
    return r->sentdate ? r->sentdate : r->internaldate;
}


/* keep_heap: from the first SORT or THREAD on, this process keeps freed heap memory (up to
 * 64 MiB) and serves arrays up to 32 MiB from the heap rather than fresh mappings: a command
 * on a 100,000-message mailbox allocates some 30 MB of arrays, and giving them back to the
 * kernel after each command made the next one fault every page in again (measured: the
 * largest single cost of a warm THREAD). The memory stays reusable by any later command.
 * The per-message arrays of XBIG_MIN (2 MiB) and more are xbig_alloc'd instead (2 MiB pages,
 * unmapped after the command): at 1,000,000 messages they are some 180 MB, which in the heap
 * either stayed in the process or was faulted in again, 26,000 pages a command. */
static void keep_heap(void)
{
    static int done;
    if (done) return;
    done = 1;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

/* only_all: the search criteria args[0,nargs) are the single key ALL. */
static int only_all(const struct imap_arg *args, size_t nargs)
{
    return nargs == 1 && imap_arg_atom_eq(&args[0], "ALL");
}

/* run_search: the matching message numbers, ascending (*msgnos_r, caller frees). For ALL
 * alone, every message of the view without a record read per message: gather drops the ones
 * expunged meanwhile, as the search engine would (RFC 2180 section 4.3). */
static int run_search(struct selected *sel, struct search_program *prog, int all,
                      uint32_t **msgnos_r, size_t *n_r)
{
    if (!all) return search_run_selected(sel, prog, msgnos_r, n_r);
    uint32_t n = selected_count(sel);
    *msgnos_r = n ? xreallocarray(NULL, n, sizeof(**msgnos_r)) : NULL;
    for (uint32_t i = 0; i < n; i++) (*msgnos_r)[i] = i + 1;
    *n_r = n;
    return 0;
}

/* gather: the uids of msgnos[0,*n) into uids, their index fields into recs (with drop_gone,
 * the messages without a live record are removed from all three arrays and *n), and, when
 * keys is not NULL, the key blobs (mailbox_sortkeys_get; *keys released by the caller). 0 or
 * an error. */
static int gather(struct selected *sel, uint32_t *msgnos, size_t *n, int drop_gone,
                  uint32_t *uids, struct mailbox_sortrec *recs, struct mailbox_sortkeys *keys)
{
    keep_heap();
    for (size_t i = 0; i < *n; i++) uids[i] = selected_uid(sel, msgnos[i]);
    mailbox_sort_records(sel->mb, uids, *n, recs);
    if (drop_gone) {
        size_t k = 0;
        for (size_t i = 0; i < *n; i++) {
            if (!recs[i].found || recs[i].expunged) continue;
            msgnos[k] = msgnos[i];
            uids[k] = uids[i];
            recs[k++] = recs[i];
        }
        *n = k;
    }
    if (!keys) return 0;
    return mailbox_sortkeys_get(sel->mb, &imap_sortkeys_file_ops, uids, recs, *n, keys);
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

static const struct sort_crit *g_crit;     /* the comparator's criteria (one sort at a time) */
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
            if (a->pfx[k] != b->pfx[k]) {
                c = a->pfx[k] < b->pfx[k] ? -1 : 1;
                break;
            }
            uint32_t la = a->len[k], lb = b->len[k];
            c = la && lb ? memcmp(a->str[k], b->str[k], la < lb ? la : lb) : 0;
            if (!c) c = (la > lb) - (la < lb);
            break;
        }
        }
        if (c) return g_crit[i].reverse ? -c : c;
    }
    /* RFC 5256 section 3: exact matches in mailbox order */
    return (a->msgno > b->msgno) - (a->msgno < b->msgno);
}

/* numeric_key: the 64-bit unsigned key of a numeric criterion whose ascending order is the
 * criterion's order (REVERSE included). */
static uint64_t numeric_key(const struct sort_item *it, const struct sort_crit *c)
{
    uint64_t k;
    switch (c->key) {
    case SK_ARRIVAL: k = (uint64_t)it->arrival ^ (1ull << 63); break;
    case SK_DATE: k = (uint64_t)it->date ^ (1ull << 63); break;
    default: k = it->size; break;
    }
    return c->reverse ? ~k : k;
}

struct radix_kv {
    uint64_t k;
    uint32_t i;
    uint32_t len;                   /* string_order: the key's length (else unused) */
};

/* radix_order: the order of items[0,n) (given in mailbox order) under numeric criteria only,
 * into order[0,n): a stable LSD radix sort per criterion, the last criterion first, so ties
 * stay in mailbox order as RFC 5256 section 3 wants. O(n) per criterion: qsort's comparator
 * calls dominated a 100,000-message SORT. */
static void radix_order(const struct sort_item *items, size_t n, const struct sort_crit *crit,
                        size_t ncrit, uint32_t *order)
{
    struct radix_kv *a = xbig_alloc(n * sizeof(*a)), *b = xbig_alloc(n * sizeof(*b));
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
    for (size_t c = ncrit; c-- > 0;) {
        size_t count[8][256];
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++) {
            a[i].i = order[i];
            a[i].k = numeric_key(&items[order[i]], &crit[c]);
            for (int d = 0; d < 8; d++) count[d][(a[i].k >> (8 * d)) & 0xff]++;
        }
        for (int d = 0; d < 8; d++) {
            size_t *cnt = count[d], sum = 0;
            if (cnt[(a[0].k >> (8 * d)) & 0xff] == n) continue;    /* one bucket: no-op */
            for (int v = 0; v < 256; v++) {
                size_t t = cnt[v];
                cnt[v] = sum;
                sum += t;
            }
            for (size_t i = 0; i < n; i++) b[cnt[(a[i].k >> (8 * d)) & 0xff]++] = a[i];
            struct radix_kv *t = a;
            a = b;
            b = t;
        }
        for (size_t i = 0; i < n; i++) order[i] = a[i].i;
    }
    xbig_free(a, n * sizeof(*a));
    xbig_free(b, n * sizeof(*b));
}

/* chunk_at: the 8 bytes of s[0,n) from offset off as a big-endian number, zero-padded
 * (str_prefix of the rest). */
static uint64_t chunk_at(const char *s, size_t n, size_t off)
{
    return off < n ? str_prefix(s + off, n - off) : 0;
}

/* radix_kv_sort: a stable LSD radix sort of a[0,n) by k (b is scratch of n); the result is
 * in a. Byte positions where every key agrees are skipped. */
static void radix_kv_sort(struct radix_kv *a, struct radix_kv *b, size_t n)
{
    size_t count[8][256];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 8; d++) count[d][(a[i].k >> (8 * d)) & 0xff]++;
    struct radix_kv *src = a, *dst = b;
    for (int d = 0; d < 8; d++) {
        size_t *cnt = count[d], sum = 0;
        if (cnt[(src[0].k >> (8 * d)) & 0xff] == n) continue;
        for (int v = 0; v < 256; v++) {
            size_t t = cnt[v];
            cnt[v] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i].k >> (8 * d)) & 0xff]++] = src[i];
        struct radix_kv *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, n * sizeof *a);
}

/* small_kv_sort: a stable insertion sort of a[0,n) by k, for the short runs. */
static void small_kv_sort(struct radix_kv *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct radix_kv x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].k > x.k) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

static const struct sort_item *g_items;     /* index_cmp's items */

/* index_cmp: item_cmp of the items two indices name. */
static int index_cmp(const void *pa, const void *pb)
{
    return item_cmp(&g_items[*(const uint32_t *)pa], &g_items[*(const uint32_t *)pb]);
}

/* The first criterion's string key of one message, for string_order. */
struct str_key {
    uint64_t pfx, pfx2;             /* bytes 0 to 7 and 8 to 15, big-endian, zero-padded */
    const char *s;
    uint32_t len;
};

/* run_exhausted: for string_order, a run ra[0,m) of keys with equal bytes that all end by
 * the current level: ordered by length, then (more criteria) by item_cmp; b is scratch. */
static void run_exhausted(struct radix_kv *ra, size_t m, struct radix_kv *b,
                          const struct sort_item *items, const struct sort_crit *crit,
                          size_t ncrit)
{
    /* every key ends at or before this level's offset: equal bytes, so the shorter first
     * (REVERSE: the longer), ties in mailbox order */
    for (size_t x = 0; x < m; x++) {
        uint64_t l = ra[x].len;
        ra[x].k = crit[0].reverse ? ~l : l;
    }
    if (m > 32) radix_kv_sort(ra, b, m);
    else small_kv_sort(ra, m);
    if (ncrit < 2) return;
    /* the same key: the next criteria decide (item_cmp, mailbox order last) */
    for (size_t x = 0; x < m;) {
        size_t y = x + 1;
        while (y < m && ra[y].k == ra[x].k) y++;
        if (y - x > 1) {
            uint32_t *ix = xreallocarray(NULL, y - x, sizeof(*ix));
            for (size_t z = x; z < y; z++) ix[z - x] = ra[z].i;
            g_items = items;
            qsort(ix, y - x, sizeof(*ix), index_cmp);
            for (size_t z = x; z < y; z++) ra[z].i = ix[z - x];
            free(ix);
        }
        x = y;
    }
}

/* chunk_pass: chunk[i] = the 8 bytes at offset off of key i, for every i whose bit is set in
 * live[0, words), in ascending i: the str_key array and the key blobs are both read forward. */
static void chunk_pass(const struct str_key *keys, size_t n, const uint64_t *live, size_t words,
                       size_t off, uint64_t *chunk)
{
    for (size_t w = 0; w < words; w++) {
        uint64_t bits = live[w];
        while (bits) {
            size_t i = w * 64 + (size_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            /* the blob a few keys on (prefetching never faults, wherever it points) */
            if (i + 16 < n) __builtin_prefetch(keys[i + 16].s + off);
            const struct str_key *k = &keys[i];
            chunk[i] = off == 8 ? k->pfx2 : chunk_at(k->s, k->len, off);
        }
    }
}

struct str_run { size_t lo, hi; };

/* string_order: the order of the messages keys[0,n) (given in mailbox order) when the first
 * criterion is a string key, into order[0,n), exactly the order of item_cmp on items[0,n)
 * (which only more criteria need; NULL with one): an MSD radix sort on the key
 * 8 bytes at a time (each level a stable sort of one run of equal bytes so far, so ties stay
 * in mailbox order), then the runs whose keys are exhausted by length (a shorter key first,
 * as memcmp-then-length orders) and, with more criteria, the items still equal by item_cmp.
 * The work is the key bytes that must be looked at, not n log n comparisons that each chase
 * two keys through memory (the cost of a 100,000-message SORT (SUBJECT) ALL before).
 *
 * The levels go breadth first: all runs still open at key offset off take their next 8 bytes
 * in one pass over the keys in mailbox order, which is the order of the blobs in the key file
 * (chunk_pass), and then read them from a flat array of 8 bytes a message. Taking them in sort
 * order instead, run by run, cost a cache and TLB miss per key and level in the mapped key
 * file at 1,000,000 messages (docs/perf/sort-thread.md, 2026-12-08). Runs are disjoint, so
 * the order they are done in changes nothing in the result. */
static void string_order(const struct str_key *keys, const struct sort_item *items, size_t n,
                         const struct sort_crit *crit, size_t ncrit, uint32_t *order)
{
    const uint64_t flip = crit[0].reverse ? ~0ull : 0;  /* REVERSE: descending bytes */
    struct radix_kv *a = xbig_alloc(n * sizeof(*a)), *b = xbig_alloc(n * sizeof(*b));
    for (size_t i = 0; i < n; i++) {
        a[i].k = keys[i].pfx ^ flip;
        a[i].i = (uint32_t)i;
        a[i].len = keys[i].len;
    }
    radix_kv_sort(a, b, n);
    /* the runs of equal bytes so far (bytes [0, off) equal), longer than one */
    struct str_run *runs = NULL, *next = NULL;
    size_t nr = 0, ar = 0, nn = 0, an = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && a[j].k == a[i].k) j++;
        if (j - i > 1) {
            if (nr == ar) runs = xreallocarray(runs, ar = ar ? ar * 2 : 64, sizeof(*runs));
            runs[nr++] = (struct str_run){ i, j };
        }
        i = j;
    }
    const size_t words = (n + 63) / 64;
    uint64_t *live = NULL, *chunk = NULL;
    for (size_t off = 8; nr; off += 8) {
        if (!live) {
            live = xreallocarray(NULL, words, sizeof(*live));
            chunk = xbig_alloc(n * sizeof(*chunk));
        }
        memset(live, 0, words * sizeof(*live));
        /* the runs whose keys all end by off are done; the others' keys go on */
        size_t keep = 0;
        for (size_t q = 0; q < nr; q++) {
            struct radix_kv *ra = a + runs[q].lo;
            size_t m = runs[q].hi - runs[q].lo, longer = 0;
            for (size_t x = 0; x < m; x++) longer |= ra[x].len > off;
            if (!longer) {
                run_exhausted(ra, m, b, items, crit, ncrit);
                continue;
            }
            for (size_t x = 0; x < m; x++) live[ra[x].i >> 6] |= 1ull << (ra[x].i & 63);
            runs[keep++] = runs[q];
        }
        nr = keep;
        if (!nr) break;
        chunk_pass(keys, n, live, words, off, chunk);
        nn = 0;
        for (size_t q = 0; q < nr; q++) {
            struct radix_kv *ra = a + runs[q].lo;
            size_t m = runs[q].hi - runs[q].lo;
            for (size_t x = 0; x < m; x++) ra[x].k = chunk[ra[x].i] ^ flip;
            if (m > 32) radix_kv_sort(ra, b, m);
            else small_kv_sort(ra, m);
            for (size_t x = 0; x < m;) {
                size_t y = x + 1;
                while (y < m && ra[y].k == ra[x].k) y++;
                if (y - x > 1) {
                    if (nn == an) next = xreallocarray(next, an = an ? an * 2 : 64, sizeof(*next));
                    next[nn++] = (struct str_run){ runs[q].lo + x, runs[q].lo + y };
                }
                x = y;
            }
        }
        struct str_run *t = runs;
        runs = next;
        next = t;
        size_t ta = ar;
        ar = an;
        an = ta;
        nr = nn;
    }
    for (size_t i = 0; i < n; i++) order[i] = a[i].i;
    free(runs);
    free(next);
    free(live);
    xbig_free(chunk, n * sizeof(*chunk));
    xbig_free(a, n * sizeof(*a));
    xbig_free(b, n * sizeof(*b));
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
    buf_appends(&out, "* ESEARCH (TAG \"");
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
    buf_appends(&out, "\r\n");
    client_untagged_lines(c, out.s, out.len);
    buf_fini(&out);
}

static void sort_keep(struct client *c, const struct imap_command *cmd, int uid_cmd,
                      unsigned ret, struct search_program **prog, const struct sort_crit *crit,
                      size_t ncrit, const struct sort_item *items, const uint32_t *order,
                      size_t n);

/* fill_items: items[0,n) from the gathered uids, index fields and (strings: the key file's)
 * key blobs; msgno_of[i] is the number items[i] sorts by when keys tie (its message number,
 * or for a live SORT its uid). The string keys point into keys; strings is
 * crit_has_strings (0: no string key is read), and only those keys get their prefix. */
static void fill_items(struct sort_item *items, size_t n, const uint32_t *msgno_of,
                       const uint32_t *uidv, const struct mailbox_sortrec *recs,
                       const struct mailbox_sortkeys *keys, int strings)
{
    for (size_t i = 0; i < n; i++) {
        struct sort_item *it = &items[i];
        memset(it, 0, sizeof(*it));
        it->msgno = msgno_of[i];
        it->uid = uidv[i];
        it->arrival = recs[i].internaldate;
        it->date = sent_date(&recs[i]);
        it->size = recs[i].size;
        if (!strings) continue;
        struct imap_sortkeys k;
        imap_sortkeys_decode(keys->blob[i], keys->len[i], &k);
        for (size_t s = 0; s < SK_NSTR; s++) {
            /* enum sort_key's strings are in enum imap_sortkey_str's order */
            it->str[s] = k.str[s];
            it->len[s] = k.len[s];
            /* only the criteria's keys are compared (strings: a bit per key) */
            if (strings >> s & 1) it->pfx[s] = str_prefix(k.str[s], k.len[s]);
        }
    }
}

/* str_keys: the string key sk (0 for SK_FIRST_STR) of n messages for string_order, from
 * items[0,n) when there are items, else straight from the key blobs (a SORT by one string
 * key builds no items: at 160 bytes each, filling them was a good part of its time). */
static struct str_key *str_keys(const struct sort_item *items, const struct mailbox_sortkeys *kb,
                                size_t n, size_t sk)
{
    struct str_key *out = xbig_alloc(n * sizeof(*out));      /* xbig_free(out, n * ...) */
    for (size_t i = 0; i < n; i++) {
        struct str_key *o = &out[i];
        if (items) {
            o->s = items[i].str[sk];
            o->len = items[i].len[sk];
        } else {
            struct imap_sortkeys k;
            imap_sortkeys_decode(kb->blob[i], kb->len[i], &k);
            o->s = k.str[sk];               /* in enum imap_sortkey_str's order, as above */
            o->len = k.len[sk];
        }
        o->pfx = str_prefix(o->s, o->len);
        o->pfx2 = chunk_at(o->s, o->len, 8);
    }
    return out;
}

/* crit_has_strings: the string keys of crit[0,ncrit), bit k for SK_FIRST_STR + k (0: none). */
static int crit_has_strings(const struct sort_crit *crit, size_t ncrit)
{
    int mask = 0;
    for (size_t i = 0; i < ncrit; i++)
        if (crit[i].key >= SK_FIRST_STR) mask |= 1 << (crit[i].key - SK_FIRST_STR);
    return mask;
}

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
    int all = only_all(args + 2, nargs - 2);
    r = run_search(sel, prog, all, &msgnos, &n);
    /* a live SORT keeps the messages its sequence keys meant now (search.h search_pin) */
    if (r >= 0 && (ret & RET_UPDATE))
        search_pin(prog, selected_count(sel), sort_view_uid, sel);
    else
        search_free(&prog);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto failed;
    }

    /* the keys: numbers from the index records, strings from the key file */
    int strings = crit_has_strings(crit, ncrit);
    /* the big arrays are xbig_alloc'd: nothing of them stays in the process (xmalloc.h) */
    const size_t nrecs = n;
    uint32_t *uidv = n ? xbig_alloc(n * sizeof(*uidv)) : NULL;
    struct mailbox_sortrec *recs = n ? xbig_alloc(n * sizeof(*recs)) : NULL;
    struct mailbox_sortkeys keys;
    memset(&keys, 0, sizeof(keys));
    r = gather(sel, msgnos, &n, all, uidv, recs, strings ? &keys : NULL);
    int first = strings && crit[0].key >= SK_FIRST_STR ? (int)(crit[0].key - SK_FIRST_STR) : -1;
    /* one string key and no live SORT: the keys alone, no items */
    int compact = first >= 0 && ncrit == 1 && !(ret & RET_UPDATE);
    struct sort_item *items = NULL;
    struct str_key *skeys = NULL;
    if (r >= 0 && n) {
        if (!compact) {
            items = xbig_alloc(n * sizeof(*items));
            fill_items(items, n, msgnos, uidv, recs, &keys, strings);
        }
        if (first >= 0) skeys = str_keys(items, &keys, n, (size_t)first);
    }
    xbig_free(recs, nrecs * sizeof(*recs));
    if (r < 0) {
        search_free(&prog);
        if (save_asked) imap_seqset_clear(&sel->saved);
        imapd_reply_error(c, cmd->tag, r);
    } else {
        uint32_t *order = n ? xbig_alloc(n * sizeof(*order)) : NULL;
        g_crit = crit;
        g_ncrit = ncrit;
        if (first >= 0) {
            if (n) string_order(skeys, items, n, crit, ncrit, order);
        } else if (strings) {
            if (n > 1) qsort(items, n, sizeof(*items), item_cmp);
            for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
        } else if (n) {
            radix_order(items, n, crit, ncrit, order);
        }
        /* the uids and numbers in sort order (items, when there are, are in the order the
         * qsort left them; else order indexes the gathered arrays) */
        uint32_t *nums = n ? xbig_alloc(n * sizeof(*nums)) : NULL;
        uint32_t *suid = n ? xbig_alloc(n * sizeof(*suid)) : NULL;
        for (size_t i = 0; i < n; i++) {
            uint32_t j = order[i];
            suid[i] = items ? items[j].uid : uidv[j];
            nums[i] = uid_cmd ? suid[i] : items ? items[j].msgno : msgnos[j];
        }
        if (!extended) {
            struct buf out = BUF_INIT;
            buf_ensure(&out, 8 + n * 7);
            buf_appends(&out, "* SORT");
            for (size_t i = 0; i < n; i++) {
                buf_putc(&out, ' ');      /* no printf: it would cost more than the sort */
                buf_putu32(&out, nums[i]);
            }
            buf_appends(&out, "\r\n");
            /* as it is: through printf, the copy of a 7 MB line cost 3% of a 1M SORT */
            client_untagged_lines(c, out.s, out.len);
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
                    imap_seqset_add(&uids, suid[i], suid[i]);
                }
                imap_seqset_fini(&sel->saved);
                sel->saved = uids;
            }
            if (ret & RET_UPDATE) sort_keep(c, cmd, uid_cmd, ret, &prog, crit, ncrit, items,
                                            order, n);
            /* RFC 5182 section 2.1: SAVE alone gives no ESEARCH response (CONTEXT and UPDATE
             * ask for none either) */
            if (ret & ~(unsigned)(RET_SAVE | RET_CONTEXT | RET_UPDATE))
                esort_reply(c, cmd, uid_cmd, ret, &partial, nums, n);
        }
        xbig_free(nums, n * sizeof(*nums));
        xbig_free(suid, n * sizeof(*suid));
        xbig_free(order, n * sizeof(*order));
        search_free(&prog);
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
    xbig_free(items, n * sizeof(*items));
    xbig_free(skeys, n * sizeof(*skeys));
    free(msgnos);
    xbig_free(uidv, nrecs * sizeof(*uidv));
    mailbox_sortkeys_fini(&keys);
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
    int all = only_all(args + 2, nargs - 2);
    r = run_search(sel, prog, all, &msgnos, &n);
    search_free(&prog);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        return;
    }

    /* the keys: dates from the index records, subjects and ids from the key file */
    uint32_t *uids = n ? xreallocarray(NULL, n, sizeof(*uids)) : NULL;
    const size_t nrecs = n;
    struct mailbox_sortrec *recs = n ? xbig_alloc(n * sizeof(*recs)) : NULL;
    struct mailbox_sortkeys keys;
    r = gather(sel, msgnos, &n, all, uids, recs, &keys);
    struct thread_msg *tm = n && r >= 0 ? xreallocarray(NULL, n, sizeof(*tm)) : NULL;
    for (size_t i = 0; i < n && r >= 0; i++) {
        struct thread_msg *m = &tm[i];
        struct imap_sortkeys k;
        memset(m, 0, sizeof(*m));
        imap_sortkeys_decode(keys.blob[i], keys.len[i], &k);
        m->seq = msgnos[i];
        m->num = uid_cmd ? uids[i] : msgnos[i];
        m->date = sent_date(&recs[i]);
        m->subject = k.str[ISK_SUBJECT];
        m->subject_len = k.len[ISK_SUBJECT];
        m->reply = k.reply;
        m->has_id = k.has_msgid;
        m->id_hash = k.msgid;
        m->parents = k.parents;
        m->nparents = k.nparents;
    }
    free(msgnos);
    free(uids);
    xbig_free(recs, nrecs * sizeof(*recs));
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
    } else {
        struct buf out = BUF_INIT;
        buf_appends(&out, "* THREAD");
        if (n) buf_putc(&out, ' ');
        if (references) thread_references_hashed(tm, n, &out);
        else thread_orderedsubject(tm, n, &out);
        buf_appends(&out, "\r\n");
        client_untagged_lines(c, out.s, out.len);   /* not through printf (see cmd_sort) */
        buf_fini(&out);
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
    free(tm);
    mailbox_sortkeys_fini(&keys);
}

/* ---- CONTEXT=SORT (RFC 5267 section 4): a live SORT's result in sort order ---- */

struct sort_context {
    struct sort_crit crit[SORT_MAX_CRITERIA];
    size_t ncrit;
    struct sort_item *items;        /* the result in sort order; each msgno field holds the
                                     * uid, the mailbox-order tie-break (uids grow as message
                                     * numbers do, and do not change on expunge) */
    size_t n;
    char *pool;                     /* the items' string keys (their str point here) */
    size_t pool_len;
};

/* sort_repool: copy the string keys of s's items into a new pool of their own and point the
 * items there (they may point into a key file mapping about to go, or into the old pool,
 * which is freed). O(total key bytes). */
static void sort_repool(struct sort_context *s)
{
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < SK_NSTR; k++) total += s->items[i].len[k];
    char *pool = total ? xmalloc(total) : NULL, *p = pool;
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < SK_NSTR; k++) {
            struct sort_item *it = &s->items[i];
            if (!it->len[k]) {
                it->str[k] = NULL;
                continue;
            }
            memcpy(p, it->str[k], it->len[k]);
            it->str[k] = p;
            p += it->len[k];
        }
    free(s->pool);
    s->pool = pool;
    s->pool_len = total;
}

/* sort_keep: keep the SORT just answered live (RETURN (UPDATE)): *prog (taken), the keys
 * items[order[0,n)] in sort order (copied). Past SEARCH_CONTEXT_MAX, * NO [NOUPDATE]. */
static void sort_keep(struct client *c, const struct imap_command *cmd, int uid_cmd,
                      unsigned ret, struct search_program **prog, const struct sort_crit *crit,
                      size_t ncrit, const struct sort_item *items, const uint32_t *order,
                      size_t n)
{
    struct sort_context *s = xzmalloc(sizeof(*s));
    memcpy(s->crit, crit, ncrit * sizeof(*crit));
    s->ncrit = ncrit;
    s->n = n;
    s->items = n ? xreallocarray(NULL, n, sizeof(*s->items)) : NULL;
    struct imap_seqset uids = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < n; i++) {
        s->items[i] = items[order[i]];
        s->items[i].msgno = s->items[i].uid;
        imap_seqset_add(&uids, s->items[i].uid, s->items[i].uid);
    }
    sort_repool(s);
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
        /* the removed keys stay in the pool until it is mostly garbage */
        size_t live = 0;
        for (size_t i = 0; i < s->n; i++)
            for (size_t j = 0; j < SK_NSTR; j++) live += s->items[i].len[j];
        if (s->pool_len >= 65536 && live * 2 < s->pool_len) sort_repool(s);
    }
    /* RFC 5267 section 4.3.3: ADDTO in list order, each at its position in the new list
     * (the additions before it already inserted); the new messages' keys are read once,
     * sorted among themselves, and merged into the list */
    uint64_t k = imap_seqset_size(added);
    if (k) {
        size_t m = (size_t)k, i = 0, j = 0, o = 0;
        uint32_t *uidv = xreallocarray(NULL, m, sizeof(*uidv));
        for (size_t a = 0; a < added->count; a++)
            for (uint64_t uid = added->r[a].lo; uid <= added->r[a].hi; uid++)
                uidv[i++] = (uint32_t)uid;
        struct mailbox_sortrec *recs = xreallocarray(NULL, m, sizeof(*recs));
        struct mailbox_sortkeys keys;
        memset(&keys, 0, sizeof(keys));
        int strings = crit_has_strings(s->crit, s->ncrit);
        mailbox_sort_records(sel->mb, uidv, m, recs);
        int r = strings ? mailbox_sortkeys_get(sel->mb, &imap_sortkeys_file_ops, uidv, recs, m, &keys) : 0;
        if (r < 0) {
            /* the new matches sort with empty string keys: logged, the list stays whole */
            if (!(*logged)++)
                log_warn("imap_sort_update_failed", "uid=%u error=%s", (unsigned)uidv[0],
                         cf_strerror(r));
            strings = 0;
        }
        struct sort_item *nw = xreallocarray(NULL, m, sizeof(*nw));
        fill_items(nw, m, uidv, uidv, recs, &keys, strings);
        free(uidv);
        free(recs);
        g_crit = s->crit;
        g_ncrit = s->ncrit;
        if (m > 1) qsort(nw, m, sizeof(*nw), item_cmp);
        struct sort_item *out = xreallocarray(NULL, s->n + m, sizeof(*out));
        i = 0;
        while (i < s->n || j < m) {
            if (j < m && (i == s->n || item_cmp(&nw[j], &s->items[i]) < 0)) {
                out[o] = nw[j++];
                sort_run_put(&run, o, (uint64_t)o + 1, num(ctx, out[o].msgno), add);
            } else {
                out[o] = s->items[i++];
            }
            o++;
        }
        sort_run_flush(&run, add);
        free(s->items);
        free(nw);
        s->items = out;
        s->n = o;
        sort_repool(s);     /* the new keys point into the key file: copy them */
        mailbox_sortkeys_fini(&keys);
    }
    free(run.nums);
    *first_r = s->n ? s->items[0].msgno : 0;
    *last_r = s->n ? s->items[s->n - 1].msgno : 0;
}

void sort_context_free(struct sort_context **s)
{
    if (!*s) return;
    free((*s)->items);
    free((*s)->pool);
    free(*s);
    *s = NULL;
}
