/* condstore.c: what CONDSTORE and QRESYNC (RFC 7162) add to the selected state: the
 * mod-sequences a session shows, VANISHED responses, and the QRESYNC resynchronization at
 * SELECT/EXAMINE (section 3.2.5). */
#include "imapd.h"
#include "selected.h"
#include "core/error.h"
#include "store/store-db.h"
#include "store/mboxname.h"
#include "core/xmalloc.h"
#include "imap/imap-condstore.h"
#include <stdlib.h>
#include <string.h>

void condstore_enable(struct client *c, unsigned bits)
{
    /* RFC 7162 section 3.2.3: QRESYNC implies CONDSTORE */
    if (bits & CLIENT_ENABLED_QRESYNC) bits |= CLIENT_ENABLED_CONDSTORE;
    c->enabled |= bits;
}

/* ---- per-user \Seen mod-sequences (selected.h seen_hist) ---- */

/* One step of a user's \Seen history: the uids changed with view mod-sequence modseq. */
struct seen_hist {
    uint64_t modseq;
    struct imap_seqset uids;
};

/* At most this many steps are kept apart; older ones merge (selected.h). */
#define SEEN_HIST_MAX 16

/* The seen database entry of the history: the user's name and this suffix (no user name
 * holds a control character), value "MODSEQ:SET/MODSEQ:SET..." newest first. */
#define SEEN_HIST_SUFFIX "\x01modseq"

void selected_seen_hist_free(struct selected *sel)
{
    for (size_t i = 0; i < sel->n_seen_hist; i++) imap_seqset_fini(&sel->seen_hist[i].uids);
    free(sel->seen_hist);
    sel->seen_hist = NULL;
    sel->n_seen_hist = 0;
}

int selected_seen_hist_load(struct selected *sel)
{
    selected_seen_hist_free(sel);
    if (!sel->seen_user) return 0;
    struct buf text = BUF_INIT;
    char *key = xasprintf("%s" SEEN_HIST_SUFFIX, sel->seen_user);
    int r = store_seen_get(sel->seen_store, sel->seen_id, key, &text);
    free(key);
    if (r == CF_E_CORRUPT) r = 0;   /* logged; an empty history only over-reports nothing */
    if (r <= 0) goto out;
    r = 0;
    const char *p = buf_cstr(&text);
    while (*p && sel->n_seen_hist < SEEN_HIST_MAX) {
        const char *colon = strchr(p, ':'), *end = strchr(p, '/');
        if (!end) end = p + strlen(p);
        uint64_t m;
        const char *err;
        struct imap_seqset set = IMAP_SEQSET_INIT;
        if (!colon || colon > end || imap_modseq_parse(p, (size_t)(colon - p), 0, &m) < 0 ||
            imap_seqset_parse(&set, colon + 1, (size_t)(end - colon - 1), &err) < 0) {
            imap_seqset_fini(&set);
            break;
        }
        sel->seen_hist = xreallocarray(sel->seen_hist, sel->n_seen_hist + 1,
                                       sizeof *sel->seen_hist);
        sel->seen_hist[sel->n_seen_hist].modseq = m;
        sel->seen_hist[sel->n_seen_hist++].uids = set;
        p = *end ? end + 1 : end;
    }
out:
    buf_fini(&text);
    return r;
}

int selected_seen_hist_add(struct selected *sel, const uint32_t *uids, size_t n)
{
    if (!sel->seen_user || !n) return 0;
    /* the index as it is now: a \Seen change sorts after every index change made so far */
    int r = mailbox_lock_shared(sel->mb);
    if (r < 0) return r;
    mailbox_unlock(sel->mb);
    uint64_t base = mailbox_header(sel->mb)->highestmodseq << SEEN_MODSEQ_SHIFT;
    uint64_t m = base + 1;
    if (sel->n_seen_hist && sel->seen_hist[0].modseq >= m) m = sel->seen_hist[0].modseq + 1;
    /* 65535 changes of one user while the index stood still: the value would reach the next
     * index modseq's, so it stays (those changes share one value; documented in imapd(8)) */
    if (m >= base + ((uint64_t)1 << SEEN_MODSEQ_SHIFT)) m = sel->seen_hist[0].modseq;
    struct imap_seqset set = IMAP_SEQSET_INIT, rest = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < n; i++) imap_seqset_add(&set, uids[i], uids[i]);
    /* the uids leave their older steps */
    for (size_t i = 0; i < sel->n_seen_hist; i++) {
        struct imap_seqset *u = &sel->seen_hist[i].uids;
        imap_seqset_clear(&rest);
        for (size_t k = 0; k < u->count; k++)
            for (uint64_t x = u->r[k].lo; x <= u->r[k].hi; x++)
                if (!imap_seqset_contains(&set, (uint32_t)x)) imap_seqset_add(&rest, (uint32_t)x, (uint32_t)x);
        struct imap_seqset t = *u;
        *u = rest;
        rest = t;
    }
    imap_seqset_fini(&rest);
    sel->seen_hist = xreallocarray(sel->seen_hist, sel->n_seen_hist + 1, sizeof *sel->seen_hist);
    memmove(sel->seen_hist + 1, sel->seen_hist, sel->n_seen_hist * sizeof *sel->seen_hist);
    sel->seen_hist[0].modseq = m;
    sel->seen_hist[0].uids = set;
    sel->n_seen_hist++;
    /* drop emptied steps; past SEEN_HIST_MAX the two oldest merge under the newer value */
    size_t k = 0;
    for (size_t i = 0; i < sel->n_seen_hist; i++) {
        if (!sel->seen_hist[i].uids.count) {
            imap_seqset_fini(&sel->seen_hist[i].uids);
            continue;
        }
        sel->seen_hist[k++] = sel->seen_hist[i];
    }
    sel->n_seen_hist = k;
    while (sel->n_seen_hist > SEEN_HIST_MAX) {
        struct seen_hist *a = &sel->seen_hist[sel->n_seen_hist - 2];
        struct seen_hist *b = &sel->seen_hist[sel->n_seen_hist - 1];
        for (size_t i = 0; i < b->uids.count; i++)
            imap_seqset_add(&a->uids, b->uids.r[i].lo, b->uids.r[i].hi);
        imap_seqset_fini(&b->uids);
        sel->n_seen_hist--;
    }
    struct buf text = BUF_INIT;
    for (size_t i = 0; i < sel->n_seen_hist; i++) {
        if (i) buf_putc(&text, '/');
        buf_printf(&text, "%llu:", (unsigned long long)sel->seen_hist[i].modseq);
        imap_seqset_format(&sel->seen_hist[i].uids, &text);
    }
    char *key = xasprintf("%s" SEEN_HIST_SUFFIX, sel->seen_user);
    r = store_seen_set(sel->seen_store, sel->seen_id, key, buf_cstr(&text));
    free(key);
    buf_fini(&text);
    return r;
}

uint64_t condstore_status_highestmodseq(struct client *c, const char *name, const char *uniqueid,
                                        uint64_t highestmodseq)
{
    /* the same rule as selected_seen_init: per-user \Seen for mailboxes not under user/ */
    if (!c->user || !c->store || !strncmp(name, MBOXNAME_USER_PREFIX, strlen(MBOXNAME_USER_PREFIX)))
        return highestmodseq ? highestmodseq : 1;
    uint64_t m = highestmodseq << SEEN_MODSEQ_SHIFT, first = 0;
    struct buf text = BUF_INIT;
    char *key = xasprintf("%s" SEEN_HIST_SUFFIX, c->user);
    if (store_seen_get(c->store, uniqueid, key, &text) == 1) {
        const char *p = buf_cstr(&text), *colon = strchr(p, ':');
        if (colon && imap_modseq_parse(p, (size_t)(colon - p), 0, &first) == 0 && first > m)
            m = first;
    }
    free(key);
    buf_fini(&text);
    return m ? m : 1;
}

uint64_t selected_modseq_raw(const struct selected *sel, uint64_t v)
{
    return sel->seen_user ? v >> SEEN_MODSEQ_SHIFT : v;
}

uint64_t selected_highestmodseq(const struct selected *sel)
{
    uint64_t m = mailbox_header(sel->mb)->highestmodseq;
    if (sel->seen_user) {
        m <<= SEEN_MODSEQ_SHIFT;
        if (sel->n_seen_hist && sel->seen_hist[0].modseq > m) m = sel->seen_hist[0].modseq;
    }
    /* RFC 7162 section 7: a mod-sequence value is at least 1; an index that never changed
     * says 0 (the first change gets 1, and clients fetch new messages by UID anyway) */
    return m ? m : 1;
}

uint64_t selected_modseq(const struct selected *sel, const struct index_record *rec)
{
    uint64_t m = rec->modseq;
    if (sel->seen_user) {
        m <<= SEEN_MODSEQ_SHIFT;
        for (size_t i = 0; i < sel->n_seen_hist; i++) {
            if (!imap_seqset_contains(&sel->seen_hist[i].uids, rec->uid)) continue;
            if (sel->seen_hist[i].modseq > m) m = sel->seen_hist[i].modseq;
            break;
        }
    }
    return m ? m : 1;
}

/* VANISHED lines are cut at about this many bytes of set text (a response line has no hard
 * limit, but clients read lines into buffers). */
#define VANISHED_LINE_MAX 8000

void selected_vanished(struct client *c, const struct imap_seqset *uids, int earlier)
{
    struct buf b = BUF_INIT;
    struct imap_seqset part = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < uids->count; i++) {
        imap_seqset_add(&part, uids->r[i].lo, uids->r[i].hi);
        if (part.count * 22 >= VANISHED_LINE_MAX || i + 1 == uids->count) {
            buf_reset(&b);
            imap_seqset_format(&part, &b);
            client_untagged(c, "VANISHED %s%s", earlier ? "(EARLIER) " : "", buf_cstr(&b));
            imap_seqset_clear(&part);
        }
    }
    imap_seqset_fini(&part);
    buf_fini(&b);
}

void selected_fetch_line(struct client *c, uint32_t msgno, const struct index_record *rec,
                         unsigned what, struct buf *b)
{
    struct selected *sel = c->sel;
    buf_reset(b);
    buf_printf(b, "%u FETCH (", (unsigned)msgno);
    size_t start = b->len;
    if (what & SELECTED_FETCH_FLAGS) {
        buf_appends(b, "FLAGS ");
        selected_flags_append(sel, rec, b);
    }
    /* RFC 7162 section 3.2.4: with QRESYNC every untagged FETCH carries the UID; so it does
     * for IMAP4rev2 (RFC 9051 section 7.5.2, rev2.c) */
    if ((what & SELECTED_FETCH_UID) ||
        (c->enabled & (CLIENT_ENABLED_QRESYNC | CLIENT_ENABLED_IMAP4REV2))) {
        if (b->len > start) buf_putc(b, ' ');
        buf_printf(b, "UID %u", (unsigned)rec->uid);
    }
    /* RFC 7162 section 3.1.4: once CONDSTORE is enabled, every FETCH that reports a flag
     * change carries the new MODSEQ */
    if ((what & SELECTED_FETCH_MODSEQ) || (c->enabled & CLIENT_ENABLED_CONDSTORE)) {
        if (b->len > start) buf_putc(b, ' ');
        buf_printf(b, "MODSEQ (%llu)", (unsigned long long)selected_modseq(sel, rec));
    }
    buf_putc(b, ')');
}

/* uid_in_view: 1 when uid is a live message of the session's view. */
static int uid_in_view(struct selected *sel, uint32_t uid)
{
    if (!selected_msgno(sel, uid)) return 0;
    struct index_record rec;
    return mailbox_record(sel->mb, uid, &rec) == 1 && !(rec.flags & FLAG_EXPUNGED);
}

int selected_vanished_since(struct selected *sel, uint64_t since, const struct imap_seqset *within,
                            uint32_t exact_from, const struct mailbox_modseq_scan *scan,
                            struct imap_seqset *out)
{
    imap_seqset_clear(out);
    if (selected_modseq_raw(sel, since) >= scan->vanished_modseq) {
        /* every expunge after since is still in the index (index.h vanished_modseq) */
        for (size_t i = 0; i < scan->n_expunged; i++) {
            uint32_t u = scan->expunged[i];
            if (!within || imap_seqset_contains(within, u)) imap_seqset_add(out, u, u);
        }
        return 0;
    }
    /* RFC 7162 section 3.2.5.2: the expunges after since are no longer all known: every uid
     * the client may know (within, from exact_from on) that is not here any more */
    uint32_t uidnext = mailbox_header(sel->mb)->uidnext;
    struct imap_seqset all = IMAP_SEQSET_INIT;
    if (!within) {
        if (uidnext > 1) imap_seqset_add(&all, 1, uidnext - 1);
        within = &all;
    }
    for (size_t i = 0; i < within->count; i++) {
        uint64_t lo = within->r[i].lo, hi = within->r[i].hi;
        if (lo < exact_from) lo = exact_from;
        if (hi >= uidnext) hi = uidnext - 1;
        for (uint64_t u = lo; u <= hi; u++) {
            if (!uid_in_view(sel, (uint32_t)u)) imap_seqset_add(out, (uint32_t)u, (uint32_t)u);
        }
    }
    imap_seqset_fini(&all);
    return 0;
}

/* match_floor: RFC 7162 section 3.2.5.2 sequence match data: the pairs (seq, uid) the client
 * sends are checked in order; up to the last pair before the first mismatch the client's
 * numbering is right, so uids at or below that pair's uid need no VANISHED. Returns the first
 * uid to check (1 when nothing matched). */
static uint32_t match_floor(struct selected *sel, const struct imap_qresync *q)
{
    uint32_t floor = 1;
    size_t j = 0;
    uint64_t jv = 0;
    for (size_t i = 0; i < q->seq_match.count; i++) {
        for (uint64_t s = q->seq_match.r[i].lo; s <= q->seq_match.r[i].hi; s++) {
            /* the matching uid: walk uid_match in step */
            if (j >= q->uid_match.count) return floor;
            uint64_t u = q->uid_match.r[j].lo + jv;
            if (u >= q->uid_match.r[j].hi) {
                j++;
                jv = 0;
            } else {
                jv++;
            }
            if (s > UINT32_MAX || selected_uid(sel, (uint32_t)s) != u) return floor;
            floor = (uint32_t)u + 1;
        }
    }
    return floor;
}

/* scanned_record: 1 with *rec set when the scan read uid's record (a change after its
 * modseq), else 0. */
static int scanned_record(const struct mailbox_modseq_scan *scan, uint32_t uid,
                          struct index_record *rec)
{
    size_t lo = 0, hi = scan->n_changed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (scan->changed[mid] < uid) lo = mid + 1;
        else hi = mid;
    }
    if (lo == scan->n_changed || scan->changed[lo] != uid || !scan->changed_recs ||
        scan->changed_recs[lo].uid != uid)
        return 0;
    *rec = scan->changed_recs[lo];
    return 1;
}

int selected_qresync(struct client *c, const struct imap_qresync *q)
{
    struct selected *sel = c->sel;
    /* RFC 7162 section 3.2.5: a different UIDVALIDITY: the client must start over; nothing
     * more is sent (the UIDVALIDITY response already told it) */
    if (q->uidvalidity != sel->uidvalidity) return 0;
    struct mailbox_modseq_scan scan;
    int r = mailbox_modseq_scan(sel->mb, selected_modseq_raw(sel, q->modseq), &scan);
    if (r < 0) goto out;
    struct imap_seqset gone = IMAP_SEQSET_INIT;
    uint32_t from = q->has_match ? match_floor(sel, q) : 1;
    selected_vanished_since(sel, q->modseq, q->has_known_uids ? &q->known_uids : NULL, from,
                            &scan, &gone);
    if (gone.count) selected_vanished(c, &gone, 1);
    imap_seqset_fini(&gone);
    /* the changed messages: index changes, and this user's own \Seen changes */
    struct imap_seqset changed = IMAP_SEQSET_INIT;
    for (size_t i = 0; i < scan.n_changed; i++)
        imap_seqset_add(&changed, scan.changed[i], scan.changed[i]);
    for (size_t i = 0; i < sel->n_seen_hist; i++) {
        if (sel->seen_hist[i].modseq <= q->modseq) continue;
        for (size_t k = 0; k < sel->seen_hist[i].uids.count; k++)
            imap_seqset_add(&changed, sel->seen_hist[i].uids.r[k].lo, sel->seen_hist[i].uids.r[k].hi);
    }
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < changed.count && r == 0; i++) for (uint64_t u = changed.r[i].lo; u <= changed.r[i].hi; u++) {
        uint32_t uid = (uint32_t)u, msgno = selected_msgno(sel, uid);
        struct index_record rec;
        if (!msgno) continue;
        if (!scanned_record(&scan, uid, &rec)) {
            if ((r = mailbox_record(sel->mb, uid, &rec)) < 0) break;
            r = 0;
        }
        if ((rec.flags & FLAG_EXPUNGED) || selected_modseq(sel, &rec) <= q->modseq) continue;
        selected_keywords_announce(c);
        selected_fetch_line(c, msgno, &rec,
                            SELECTED_FETCH_UID | SELECTED_FETCH_FLAGS | SELECTED_FETCH_MODSEQ, &b);
        client_untagged(c, "%s", buf_cstr(&b));
    }
    imap_seqset_fini(&changed);
    buf_fini(&b);
out:
    mailbox_modseq_scan_fini(&scan);
    return r;
}
