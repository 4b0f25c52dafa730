/* search-context.c: live SEARCH and SORT results (RFC 5267 section 4, CONTEXT=SEARCH and
 * CONTEXT=SORT; search-context.h): the searches SEARCH/SORT RETURN (UPDATE) left, kept up to
 * date from each selected_sync by searching only the messages that changed, and
 * CANCELUPDATE. The sort order of a live SORT is kept in cmd-sort.c (sort_context_apply). */
#include "search-context.h"
#include "imapd.h"
#include "selected.h"
#include "imap/search.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mail.h"
#include <stdlib.h>
#include <string.h>

struct search_update {
    char *tag;                      /* owned */
    int uid;                        /* numbers sent are uids (UID SEARCH), else msgnos */
    unsigned want;                  /* SEARCH_UPDATE_* */
    struct search_program *prog;    /* owned; pinned (search_pin) */
    struct imap_seqset result;      /* the matching uids */
    uint32_t sent_min, sent_max;    /* MIN/MAX as last sent (0: none sent) */
    uint64_t sent_count;            /* COUNT as last sent */
    struct sort_context *sort;      /* owned; a live SORT (cmd-sort.c), else NULL */
};

struct search_contexts {
    struct search_update *v;
    size_t n;
    struct imap_seqset touched;     /* uids to search again at the next sync */
};

static struct search_update *find(const struct selected *sel, const char *tag)
{
    struct search_contexts *cx = sel->contexts;
    for (size_t i = 0; cx && i < cx->n; i++)
        if (!strcmp(cx->v[i].tag, tag)) return &cx->v[i];
    return NULL;
}

int search_context_find(const struct selected *sel, const char *tag)
{
    return find(sel, tag) != NULL;
}

/* first_last: the first and last element of a nonempty set; 0 when empty. */
static uint32_t set_first(const struct imap_seqset *s) { return s->count ? s->r[0].lo : 0; }
static uint32_t set_last(const struct imap_seqset *s)
{
    return s->count ? s->r[s->count - 1].hi : 0;
}

/* number: what the client calls uid in update u. */
static uint32_t number(const struct selected *sel, const struct search_update *u, uint32_t uid)
{
    return u->uid ? uid : selected_msgno(sel, uid);
}

int search_context_add(struct selected *sel, const char *tag, int uid, unsigned want,
                       struct search_program **prog, const struct imap_seqset *result)
{
    struct search_contexts *cx = sel->contexts;
    if (!cx) {
        cx = sel->contexts = xzmalloc(sizeof *cx);
        imap_seqset_init(&cx->touched);
    }
    if (cx->n >= SEARCH_CONTEXT_MAX) return CF_E_LIMIT;
    cx->v = xrealloc(cx->v, (cx->n + 1) * sizeof *cx->v);
    struct search_update *u = &cx->v[cx->n++];
    memset(u, 0, sizeof *u);
    u->tag = xstrdup(tag);
    u->uid = uid;
    u->want = want;
    u->prog = *prog;
    *prog = NULL;
    imap_seqset_init(&u->result);
    for (size_t i = 0; i < result->count; i++)
        imap_seqset_add(&u->result, result->r[i].lo, result->r[i].hi);
    /* the initial ESEARCH sent these (cmd-search.c) */
    if (u->result.count) {
        u->sent_min = number(sel, u, set_first(&u->result));
        u->sent_max = number(sel, u, set_last(&u->result));
    }
    u->sent_count = imap_seqset_size(&u->result);
    return 0;
}

/* A live SORT's numbering callback (sort_context_apply): uid as the client calls it. */
struct numbering {
    const struct selected *sel;
    const struct search_update *u;
};

static uint32_t numbering_num(void *ctx, uint32_t uid)
{
    struct numbering *nb = ctx;
    return number(nb->sel, nb->u, uid);
}

int search_context_add_sort(struct selected *sel, const char *tag, int uid, unsigned want,
                            struct search_program **prog, const struct imap_seqset *result,
                            struct sort_context **sort)
{
    struct search_contexts *have = sel->contexts;
    size_t sorts = 0;
    for (size_t i = 0; have && i < have->n; i++) sorts += have->v[i].sort != NULL;
    if (sorts >= SORT_CONTEXT_MAX) return CF_E_LIMIT;
    int r = search_context_add(sel, tag, uid, want, prog, result);
    if (r < 0) return r;
    struct search_contexts *cx = sel->contexts;
    struct search_update *u = &cx->v[cx->n - 1];
    u->sort = *sort;
    *sort = NULL;
    /* ESORT's MIN and MAX are the first and last in sort order (RFC 5267 section 3.1) */
    uint32_t first = 0, last = 0;
    struct buf rm = BUF_INIT, add = BUF_INIT;
    struct imap_seqset none = IMAP_SEQSET_INIT;
    struct numbering nb = { sel, u };
    int logged = 0;
    sort_context_apply(sel, u->sort, &none, &none, numbering_num, &nb, &rm, &add, &first, &last,
                       &logged);
    u->sent_min = first ? number(sel, u, first) : 0;
    u->sent_max = last ? number(sel, u, last) : 0;
    buf_fini(&rm);
    buf_fini(&add);
    return 0;
}

/* line_start: "ESEARCH (TAG "tag") [UID]" of u into out. */
static void line_start(const struct search_update *u, struct buf *out)
{
    buf_appends(out, "ESEARCH (TAG \"");
    for (const char *t = u->tag; *t; t++) {
        if (*t == '"' || *t == '\\') buf_putc(out, '\\');
        buf_putc(out, *t);
    }
    buf_printf(out, "\")%s", u->uid ? " UID" : "");
}

/* The client's message numbers before the EXPUNGE responses of a sync: expunged_uids and
 * expunged_msgnos come in ascending order, each msgno counted after the earlier ones went. */
static uint32_t expunge_num(void *ctx, uint32_t uid)
{
    const struct mailbox_changes *ch = ctx;
    size_t lo = 0, hi = ch->n_expunged;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ch->expunged_uids[mid] < uid) lo = mid + 1;
        else hi = mid;
    }
    return lo < ch->n_expunged ? ch->expunged_msgnos[lo] + (uint32_t)lo : 0;
}

/* expunge_removefrom (below): the REMOVEFROM pairs of a live message-number SEARCH for its
 * results in gone, numbered by num. */
static void expunge_removefrom(const struct search_update *u, const struct imap_seqset *gone,
                               uint32_t (*num)(void *, uint32_t), void *ctx, struct buf *rm);

void search_context_expunge(struct client *c, const struct mailbox_changes *ch)
{
    struct selected *sel = c->sel;
    struct search_contexts *cx = sel->contexts;
    if (!cx || !ch->n_expunged) return;
    for (size_t k = 0; k < cx->n; k++) {
        struct search_update *u = &cx->v[k];
        if (u->uid) continue;
        struct imap_seqset gone = IMAP_SEQSET_INIT, none = IMAP_SEQSET_INIT;
        struct imap_seqset kept = IMAP_SEQSET_INIT;
        for (size_t i = 0; i < ch->n_expunged; i++)
            if (imap_seqset_contains(&u->result, ch->expunged_uids[i]))
                imap_seqset_add(&gone, ch->expunged_uids[i], ch->expunged_uids[i]);
        if (gone.count) {
            struct buf line = BUF_INIT, rm = BUF_INIT, add = BUF_INIT;
            uint32_t first, last;
            int logged = 0;
            if (u->sort)
                sort_context_apply(sel, u->sort, &gone, &none, expunge_num, (void *)ch, &rm,
                                   &add, &first, &last, &logged);
            else
                expunge_removefrom(u, &gone, expunge_num, (void *)ch, &rm);
            imap_seqset_subtract(&u->result, &gone, &kept);
            imap_seqset_fini(&u->result);
            u->result = kept;
            if ((u->want & SEARCH_UPDATE_LIST) && rm.len) {
                line_start(u, &line);
                buf_printf(&line, " REMOVEFROM (%s)", buf_cstr(&rm));
                client_untagged(c, "%s", buf_cstr(&line));
            }
            buf_fini(&line);
            buf_fini(&rm);
            buf_fini(&add);
        }
        imap_seqset_fini(&gone);
    }
}

static void update_fini(struct search_update *u)
{
    sort_context_free(&u->sort);
    free(u->tag);
    search_free(&u->prog);
    imap_seqset_fini(&u->result);
}

int search_context_cancel(struct selected *sel, const char *tag)
{
    struct search_contexts *cx = sel->contexts;
    struct search_update *u = find(sel, tag);
    if (!u) return 0;
    update_fini(u);
    size_t i = (size_t)(u - cx->v);
    memmove(&cx->v[i], &cx->v[i + 1], (cx->n - i - 1) * sizeof *cx->v);
    cx->n--;
    return 1;
}

void search_context_free(struct selected *sel)
{
    struct search_contexts *cx = sel->contexts;
    if (!cx) return;
    for (size_t i = 0; i < cx->n; i++) update_fini(&cx->v[i]);
    free(cx->v);
    imap_seqset_fini(&cx->touched);
    free(cx);
    sel->contexts = NULL;
}

void search_context_touch(struct selected *sel, uint32_t uid)
{
    struct search_contexts *cx = sel->contexts;
    if (cx && cx->n && uid) imap_seqset_add(&cx->touched, uid, uid);
}

/* A walk over a set answering "how many elements are below x" for x that never decrease,
 * in time linear in the set's ranges over the whole walk. */
struct ranker {
    const struct imap_seqset *s;
    size_t i;                       /* first range not wholly below the last x */
    uint64_t below;                 /* elements in the ranges before i */
};

static uint64_t rank_next(struct ranker *k, uint32_t x)
{
    const struct imap_seqset *s = k->s;
    while (k->i < s->count && s->r[k->i].hi < x) {
        k->below += (uint64_t)s->r[k->i].hi - s->r[k->i].lo + 1;
        k->i++;
    }
    if (k->i < s->count && s->r[k->i].lo < x) return k->below + (x - s->r[k->i].lo);
    return k->below;
}

/* A run of the update being written: messages next to each other in the list. */
struct run {
    uint64_t pos, next;             /* position sent for the run; key that would extend it */
    struct imap_seqset nums;        /* their numbers as the client knows them */
    int open;
};

/* run_flush: write the run as "pos set" into out (with a separating space). */
static void run_flush(struct run *r, struct buf *out, int *first)
{
    if (!r->open) return;
    if (!*first) buf_putc(out, ' ');
    *first = 0;
    buf_printf(out, "%llu ", (unsigned long long)r->pos);
    imap_seqset_format(&r->nums, out);
    imap_seqset_clear(&r->nums);
    r->open = 0;
}

/* run_put: the message numbered num at place key of the list (keys of neighbours differ by
 * one), sent at position pos when it starts a run. */
static void run_put(struct run *r, uint64_t key, uint64_t pos, uint32_t num, struct buf *out,
                    int *first)
{
    if (r->open && key != r->next) run_flush(r, out, first);
    if (!r->open) {
        r->open = 1;
        r->pos = pos;
    }
    r->next = key + 1;
    imap_seqset_add(&r->nums, num, num);
}

static void expunge_removefrom(const struct search_update *u, const struct imap_seqset *gone,
                               uint32_t (*num)(void *, uint32_t), void *ctx, struct buf *rm)
{
    /* the result is in ascending message-number order, so the pairs are those of
     * update_one's removals: a run of neighbours at old positions p, p+1, ... is "p - done
     * set", done the ones removed by the earlier pairs */
    struct ranker rank = { &u->result, 0, 0 };
    struct run run = { 0, 0, IMAP_SEQSET_INIT, 0 };
    int first = 1;
    uint64_t done = 0;
    for (size_t i = 0; i < gone->count; i++)
        for (uint64_t uid = gone->r[i].lo; uid <= gone->r[i].hi; uid++, done++) {
            uint64_t old = rank_next(&rank, (uint32_t)uid) + 1;
            run_put(&run, old, old - done, num(ctx, (uint32_t)uid), rm, &first);
        }
    run_flush(&run, rm, &first);
    imap_seqset_fini(&run.nums);
}

/* update_one: search the candidates again for u and send what changed. */
static void update_one(struct client *c, struct search_update *u,
                       const struct mailbox_changes *ch, const struct imap_seqset *cand,
                       struct mail *mail, int *logged)
{
    struct selected *sel = c->sel;
    struct imap_seqset gone = IMAP_SEQSET_INIT;
    struct imap_seqset added = IMAP_SEQSET_INIT, kept = IMAP_SEQSET_INIT;
    struct imap_seqset now = IMAP_SEQSET_INIT;
    struct buf line = BUF_INIT, rm = BUF_INIT, add = BUF_INIT;
    struct run run = { 0, 0, IMAP_SEQSET_INIT, 0 };
    uint32_t exists = selected_count(sel);

    /* RFC 5267 section 4.3.4: expunged results leave. A message-number search was told
     * before the EXPUNGE responses (search_context_expunge, which took them out of the
     * result); a UID search is told here with REMOVEFROM. */
    for (size_t i = 0; i < ch->n_expunged; i++) {
        uint32_t uid = ch->expunged_uids[i];
        if (imap_seqset_contains(&u->result, uid)) imap_seqset_add(&gone, uid, uid);
    }
    /* the keyword table may have grown; the sequence keys were pinned (search_pin) */
    search_prepare(u->prog, exists, exists ? selected_uid(sel, exists) : 0,
                   mailbox_keywords(sel->mb));
    for (size_t i = 0; i < cand->count; i++)
        for (uint64_t uid = cand->r[i].lo; uid <= cand->r[i].hi; uid++) {
            if (imap_seqset_contains(&gone, (uint32_t)uid)) continue;
            uint32_t msgno = selected_msgno(sel, (uint32_t)uid);
            if (!msgno) continue;                   /* not in the view (expunged) */
            int r = cmd_search_match(sel, u->prog, mail, msgno);
            if (r < 0) {
                if (!(*logged)++)
                    log_warn("imap_search_update_failed", "tag=%s uid=%u error=%s",
                             log_quote(u->tag), (unsigned)uid, cf_strerror(r));
                r = 0;
            }
            int in = imap_seqset_contains(&u->result, (uint32_t)uid);
            if (r && !in) imap_seqset_add(&added, (uint32_t)uid, (uint32_t)uid);
            if (!r && in) imap_seqset_add(&gone, (uint32_t)uid, (uint32_t)uid);
        }

    /* REMOVEFROM: in ascending order, each pair's position counted in the list as the client
     * has it when it reaches that pair: the ones before are removed already by an earlier
     * pair, so a run of neighbours at old positions
     * p, p+1, ... is sent as "p - done set" */
    int first = 1;
    uint64_t done = 0;
    struct ranker old_rank = { &u->result, 0, 0 }, new_rank = { &now, 0, 0 };
    /* a live SORT: the positions are in sort order (cmd-sort.c), the loops below skipped */
    uint32_t sort_first = 0, sort_last = 0;
    if (u->sort) {
        struct numbering nb = { sel, u };
        sort_context_apply(sel, u->sort, &gone, &added, numbering_num, &nb, &rm, &add,
                           &sort_first, &sort_last, logged);
    }
    for (size_t i = 0; !u->sort && i < gone.count; i++)
        for (uint64_t uid = gone.r[i].lo; uid <= gone.r[i].hi; uid++, done++) {
            uint64_t old = rank_next(&old_rank, (uint32_t)uid) + 1;
            run_put(&run, old, old - done, number(sel, u, (uint32_t)uid), &rm, &first);
        }
    run_flush(&run, &rm, &first);
    /* ADDTO: in ascending order, each at its position in the new list */
    imap_seqset_subtract(&u->result, &gone, &kept);
    imap_seqset_fini(&now);
    now = kept;
    imap_seqset_init(&kept);
    for (size_t i = 0; i < added.count; i++) imap_seqset_add(&now, added.r[i].lo, added.r[i].hi);
    first = 1;
    for (size_t i = 0; !u->sort && i < added.count; i++)
        for (uint64_t uid = added.r[i].lo; uid <= added.r[i].hi; uid++) {
            uint64_t pos = rank_next(&new_rank, (uint32_t)uid) + 1;
            run_put(&run, pos, pos, number(sel, u, (uint32_t)uid), &add, &first);
        }
    run_flush(&run, &add, &first);

    buf_appends(&line, "ESEARCH (TAG \"");
    for (const char *t = u->tag; *t; t++) {
        if (*t == '"' || *t == '\\') buf_putc(&line, '\\');
        buf_putc(&line, *t);
    }
    buf_printf(&line, "\")%s", u->uid ? " UID" : "");
    size_t bare = line.len;
    if ((u->want & SEARCH_UPDATE_LIST) && rm.len)
        buf_printf(&line, " REMOVEFROM (%s)", buf_cstr(&rm));
    if ((u->want & SEARCH_UPDATE_LIST) && add.len)
        buf_printf(&line, " ADDTO (%s)", buf_cstr(&add));
    uint32_t mn = now.count ? number(sel, u, set_first(&now)) : 0;
    uint32_t mx = now.count ? number(sel, u, set_last(&now)) : 0;
    if (u->sort) {
        mn = sort_first ? number(sel, u, sort_first) : 0;
        mx = sort_last ? number(sel, u, sort_last) : 0;
    }
    uint64_t count = imap_seqset_size(&now);
    if ((u->want & SEARCH_UPDATE_MIN) && mn && mn != u->sent_min)
        buf_printf(&line, " MIN %u", (unsigned)mn);
    if ((u->want & SEARCH_UPDATE_MAX) && mx && mx != u->sent_max)
        buf_printf(&line, " MAX %u", (unsigned)mx);
    if ((u->want & SEARCH_UPDATE_COUNT) && count != u->sent_count)
        buf_printf(&line, " COUNT %llu", (unsigned long long)count);
    u->sent_min = mn;
    u->sent_max = mx;
    u->sent_count = count;
    if (line.len > bare) client_untagged(c, "%s", buf_cstr(&line));
    imap_seqset_fini(&u->result);
    u->result = now;
    imap_seqset_init(&now);

    imap_seqset_fini(&run.nums);
    imap_seqset_fini(&gone);
    imap_seqset_fini(&added);
    imap_seqset_fini(&kept);
    imap_seqset_fini(&now);
    buf_fini(&line);
    buf_fini(&rm);
    buf_fini(&add);
}

void search_context_sync(struct client *c, const struct mailbox_changes *ch)
{
    struct selected *sel = c->sel;
    struct search_contexts *cx = sel->contexts;
    if (!cx) return;
    if (!cx->n) {
        imap_seqset_clear(&cx->touched);
        return;
    }
    /* the candidates: messages whose flags changed, and the new ones (the last n_new of the
     * view); every other message keeps its answer */
    uint32_t exists = selected_count(sel);
    for (uint32_t m = exists - (ch->n_new < exists ? ch->n_new : exists) + 1; m <= exists; m++)
        imap_seqset_add(&cx->touched, selected_uid(sel, m), selected_uid(sel, m));
    if (!cx->touched.count && !ch->n_expunged) return;
    struct imap_seqset cand = cx->touched;
    imap_seqset_init(&cx->touched);
    struct mail *mail = mail_new(sel->mb);
    int logged = 0;
    for (size_t i = 0; i < cx->n; i++) update_one(c, &cx->v[i], ch, &cand, mail, &logged);
    mail_free(&mail);
    imap_seqset_fini(&cand);
}

void cmd_cancelupdate(struct client *c, const struct imap_command *cmd)
{
    /* RFC 5267 section 4.2 and section 6: "CANCELUPDATE" 1*(SP quoted). Every tag must name
     * a live search, or none is cancelled. */
    if (cmd->nargs == 0) {
        client_tagged(c, cmd->tag, "BAD CANCELUPDATE needs the tag of a search");
        return;
    }
    for (size_t i = 0; i < cmd->nargs; i++) {
        const char *tag = imap_arg_string(&cmd->args[i]);
        if (!tag) {
            client_tagged(c, cmd->tag, "BAD CANCELUPDATE takes quoted tags");
            return;
        }
        if (!search_context_find(c->sel, tag)) {
            client_tagged(c, cmd->tag, "BAD No search update with that tag");
            return;
        }
    }
    for (size_t i = 0; i < cmd->nargs; i++)
        search_context_cancel(c->sel, imap_arg_string(&cmd->args[i]));
    client_tagged(c, cmd->tag, "OK CANCELUPDATE completed");
}
