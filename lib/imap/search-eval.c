/* search-eval.c: running a SEARCH program (search.h) on one message: the record keys at
 * once, the header, section table and message fetched through struct search_msg_ops only when
 * a key still needs them, cheapest keys first (search-parse.c ordered them). */
#include "imap/search-int.h"
#include "imap/search-column.h"
#include "mime/date.h"
#include "mime/decode.h"
#include "core/date.h"
#include "core/error.h"
#include <stdio.h>

/* The state of one message while a program runs on it: what has been fetched so far. */
struct mstate {
    const struct search_msg_ops *ops;
    void *ctx;
    uint32_t msgno;
    struct search_record rec;
    int have_header, have_msg, have_sections, have_col, sent_known, touched;
    const unsigned char *col;
    size_t col_len;
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

/* column_match: key n (K_HEADER on a column field) decided from the header search column:
 * 1 or 0 exactly as header_field_match would answer on the header; CF_E_NOTFOUND when the
 * column cannot tell (no blob, a malformed one, or one flagged SCOL_UNSURE): read the header. */
static int column_match(struct mstate *m, const struct snode *n)
{
    if (!m->have_col) {
        m->have_col = 1;
        m->col = NULL;
        if (m->ops->column) {
            int r = m->ops->column(m->ctx, m->msgno, &m->col, &m->col_len);
            if (r == CF_E_NOTFOUND) m->col = NULL;
            else if (r < 0) return r;
        }
    }
    if (!m->col) return CF_E_NOTFOUND;
    struct search_column_value v;
    int fl = search_column_get(m->col, m->col_len, (enum search_column_field)n->col, &v);
    if (fl < 0 || (fl & SCOL_UNSURE)) return CF_E_NOTFOUND;
    if (n->nd.len == 0) return v.count > 0;     /* HEADER name "": the field is present */
    if (v.val_len && memmem(v.val, v.val_len, n->nd.folded, n->nd.folded_len)) return 1;
    return n->addr && v.addr_len && memmem(v.addr, v.addr_len, n->nd.folded, n->nd.folded_len);
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

/* saved_day: the day of the save date (RFC 8514); the internal date's when the save date is
 * not known (a message stored before save dates were kept). */
static int64_t saved_day(const struct mstate *m)
{
    return date_local_day(m->rec.savedate ? m->rec.savedate : m->rec.internaldate);
}

/* objectid_match: EMAILID/THREADID: 1 when the message's id is n->name (RFC 8474 ids are
 * compared as they are, case-sensitively), 0 when not, or an accessor's error. */
static int objectid_match(struct snode *n, struct mstate *m)
{
    char id[48];
    if (n->key == K_EMAILID) {
        if (!m->rec.guid) return 0;
        id[0] = 'E';
        for (int i = 0; i < 20; i++) snprintf(id + 1 + 2 * i, 3, "%02x", m->rec.guid[i]);
        return strcmp(id, n->name) == 0;
    }
    uint64_t t = m->rec.threadid;
    if (!t) {
        if (!m->ops->threadid) return 0;
        m->touched = 1;
        int r = m->ops->threadid(m->ctx, m->msgno, &t);
        if (r < 0) return r;
    }
    snprintf(id, sizeof id, "T%016llx", (unsigned long long)t);
    return strcmp(id, n->name) == 0;
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
    case K_MODSEQ: return m->rec.modseq >= n->num;
    case K_SMALLER: return m->rec.size < n->num;
    case K_BEFORE: return date_local_day(m->rec.internaldate) < n->day;
    case K_ON: return date_local_day(m->rec.internaldate) == n->day;
    case K_SINCE: return date_local_day(m->rec.internaldate) >= n->day;
    case K_OLDER: return m->rec.internaldate < n->day;
    case K_YOUNGER: return m->rec.internaldate >= n->day;
    case K_SENTBEFORE:
    case K_SENTON:
    case K_SENTSINCE:
        if ((r = sent_day(m, &d)) < 0) return r;
        if (n->key == K_SENTBEFORE) return d < n->day;
        if (n->key == K_SENTON) return d == n->day;
        return d >= n->day;
    case K_SAVEDBEFORE: return saved_day(m) < n->day;
    case K_SAVEDON: return saved_day(m) == n->day;
    case K_SAVEDSINCE: return saved_day(m) >= n->day;
    case K_SAVEDATESUPPORTED: return 1;     /* every mailbox keeps save dates */
    case K_EMAILID:
    case K_THREADID:
        return objectid_match(n, m);
    case K_SEQ: return imap_seqset_contains(&n->resolved, m->msgno);
    case K_UID: return imap_seqset_contains(&n->resolved, m->rec.uid);
    case K_HEADER:
        if (n->col >= 0 && (r = column_match(m, n)) != CF_E_NOTFOUND) return r;
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
