/* condstore.c: what CONDSTORE and QRESYNC (RFC 7162) add to the selected state: the
 * mod-sequences a session shows, VANISHED responses, and the QRESYNC resynchronization at
 * SELECT/EXAMINE (section 3.2.5). */
#include "imapd.h"
#include "selected.h"
#include "core/error.h"
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

uint64_t selected_highestmodseq(const struct selected *sel)
{
    uint64_t m = mailbox_header(sel->mb)->highestmodseq;
    /* RFC 7162 section 7: a mod-sequence value is at least 1; an index that never changed
     * says 0 (the first change gets 1, and clients fetch new messages by UID anyway) */
    return m ? m : 1;
}

uint64_t selected_modseq(const struct selected *sel, const struct index_record *rec)
{
    (void)sel;
    return rec->modseq ? rec->modseq : 1;
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
    /* RFC 7162 section 3.2.4: with QRESYNC every untagged FETCH carries the UID */
    if ((what & SELECTED_FETCH_UID) || (c->enabled & CLIENT_ENABLED_QRESYNC)) {
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
    if (since >= scan->vanished_modseq) {
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

int selected_qresync(struct client *c, const struct imap_qresync *q)
{
    struct selected *sel = c->sel;
    /* RFC 7162 section 3.2.5: a different UIDVALIDITY: the client must start over; nothing
     * more is sent (the UIDVALIDITY response already told it) */
    if (q->uidvalidity != sel->uidvalidity) return 0;
    struct mailbox_modseq_scan scan;
    int r = mailbox_modseq_scan(sel->mb, q->modseq, &scan);
    if (r < 0) goto out;
    struct imap_seqset gone = IMAP_SEQSET_INIT;
    uint32_t from = q->has_match ? match_floor(sel, q) : 1;
    selected_vanished_since(sel, q->modseq, q->has_known_uids ? &q->known_uids : NULL, from,
                            &scan, &gone);
    if (gone.count) selected_vanished(c, &gone, 1);
    imap_seqset_fini(&gone);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < scan.n_changed; i++) {
        uint32_t uid = scan.changed[i], msgno = selected_msgno(sel, uid);
        struct index_record rec;
        if (!msgno) continue;
        if ((r = mailbox_record(sel->mb, uid, &rec)) < 0) break;
        r = 0;
        selected_keywords_announce(c);
        selected_fetch_line(c, msgno, &rec,
                            SELECTED_FETCH_UID | SELECTED_FETCH_FLAGS | SELECTED_FETCH_MODSEQ, &b);
        client_untagged(c, "%s", buf_cstr(&b));
    }
    buf_fini(&b);
out:
    mailbox_modseq_scan_fini(&scan);
    return r;
}
