/* cmd-search.c: SEARCH and UID SEARCH (RFC 3501 sections 6.4.4, 6.4.8, 7.2.5), with
 * RETURN (MIN MAX ALL COUNT) answered by ESEARCH (RFC 4731) and SAVE keeping the result for
 * "$" (SEARCHRES, RFC 5182; selected.h saved): the search program of lib/imap/search.h run
 * over the selected view through the message handle (store/mail.h): index records first,
 * the header block when a header key needs it (cached where it fits), and the message file
 * only for BODY/TEXT. CONTEXT=SEARCH (RFC 5267 section 4): RETURN (PARTIAL m:n) answers a
 * window of the result (negative ranges count from the end, RFC 9394), RETURN (UPDATE)
 * keeps the search live (search-context.c), CONTEXT is a hint taken as such. */
#include "imapd.h"
#include "selected.h"
#include "imap/search.h"
#include "imap/imap-keyfiles.h"
#include "imap/search-column.h"
#include "imap/imap-partial.h"
#include "search-context.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/index.h"
#include "store/mail.h"
#include "store/mailbox.h"
#include "store/mailbox-sort.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

/* The accessors' state: the message handle, re-pointed at each message. */
struct search_ctx {
    struct selected *sel;
    uint32_t uid;
    struct mail *mail;
    uint64_t modseq;        /* of the message last given to the engine (RFC 7162) */
    struct mailbox_sortkeys col;    /* header search column blobs of messages 1..ncol */
    uint32_t ncol;                  /* 0: none fetched (sx_column says so) */
    uint32_t hint;                  /* mailbox_record_next's place in the index */
};

/* column_load: when prog has keys the header search column answers, the blobs of every
 * message of the view (n of them) from the mailbox's searchkeys file, which
 * mailbox_sortkeys_get brings up to date first (messages it lacks are encoded from their
 * header and appended). A blob counts only for its uid and GUID, so it cannot be stale; a
 * failure leaves x->ncol 0 and the search reads headers as before. */
static void column_load(struct search_ctx *x, struct search_program *prog, uint32_t n)
{
    if (!n || !search_uses_column(prog)) return;
    uint32_t *uids = xreallocarray(NULL, n, sizeof *uids);
    struct mailbox_sortrec *recs = xreallocarray(NULL, n, sizeof *recs);
    for (uint32_t i = 0; i < n; i++) uids[i] = selected_uid(x->sel, i + 1);
    mailbox_sort_records(x->sel->mb, uids, n, recs);
    if (mailbox_sortkeys_get(x->sel->mb, &search_column_file_ops, uids, recs, n, &x->col) == 0)
        x->ncol = n;
    else
        mailbox_sortkeys_fini(&x->col);
    free(uids);
    free(recs);
}

static void column_unload(struct search_ctx *x)
{
    if (x->ncol) mailbox_sortkeys_fini(&x->col);
    x->ncol = 0;
}

/* sx_column: the blob of msgno, when column_load fetched them. */
static int sx_column(void *ctx, uint32_t msgno, const unsigned char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    if (msgno < 1 || msgno > x->ncol || !x->col.blob[msgno - 1]) return CF_E_NOTFOUND;
    *p = x->col.blob[msgno - 1];
    *len = x->col.len[msgno - 1];
    return 0;
}

static int sx_record(void *ctx, uint32_t msgno, struct search_record *r)
{
    struct search_ctx *x = ctx;
    const struct index_record *mrec;
    x->uid = selected_uid(x->sel, msgno);
    /* the engine walks the view in ascending order: the record from where the last was */
    struct index_record cur;
    int found = mailbox_record_next(x->sel->mb, x->uid, &x->hint, &cur);
    if (found < 0) return found;
    if (found) mail_set_record(x->mail, &cur);
    else mail_set_uid(x->mail, 0);      /* none: mail_record says gone */
    found = mail_record(x->mail, &mrec);
    if (found < 0) return found;
    /* expunged by another session but still numbered here (RFC 2180 section 4.3): it
     * matches nothing; CF_E_NOTFOUND tells the loop to skip it */
    if (found == 0) return CF_E_NOTFOUND;
    struct index_record rec = *mrec;
    selected_seen_apply(x->sel, &rec);   /* per-user \Seen (selected.h) */
    memset(r, 0, sizeof(*r));
    r->uid = x->uid;
    r->flags = rec.flags & FLAG_SYSTEM_MASK;
    r->recent = selected_is_recent(x->sel, x->uid);
    r->internaldate = rec.internaldate;
    r->size = rec.size;
    r->user_flags = mrec->user_flags;    /* owned by the handle until sx_release */
    r->user_flags_len = sizeof(mrec->user_flags);
    r->modseq = x->modseq = selected_modseq(x->sel, &rec);
    r->savedate = mrec->savedate;        /* RFC 8514 */
    r->guid = mrec->guid;                /* RFC 8474 EMAILID */
    r->threadid = mrec->threadid;
    return 0;
}

/* sx_threadid: RFC 8474 THREADID of a record from before index version 3 (mail_threadid). */
static int sx_threadid(void *ctx, uint32_t msgno, uint64_t *id)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    return mail_threadid(x->mail, id);
}

static int sx_message(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    return mail_message(x->mail, p, len);
}

static int sx_header(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    return mail_header(x->mail, p, len);
}

static int sx_sections(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    return mail_sections(x->mail, p, len);
}

static void sx_release(void *ctx, uint32_t msgno)
{
    struct search_ctx *x = ctx;
    (void)msgno;
    mail_reset(x->mail);
}

static const struct search_msg_ops sx_ops = {
    sx_record, sx_header, sx_sections, sx_message, sx_release, sx_threadid, sx_column,
};

int cmd_search_match(struct selected *sel, struct search_program *prog, struct mail *mail,
                     uint32_t msgno)
{
    struct search_ctx x;
    memset(&x, 0, sizeof x);
    x.sel = sel;
    x.mail = mail;
    int r = search_match(prog, &sx_ops, &x, msgno);
    if (r == CF_E_NOTFOUND) {           /* expunged meanwhile: not a match */
        sx_release(&x, msgno);
        return 0;
    }
    return r;
}

/* view_uid: selected_uid for search_pin. */
static uint32_t view_uid(void *ctx, uint32_t msgno)
{
    return selected_uid(ctx, msgno);
}

/* seqset_slice: out gets the elements of in at indices [first, end) (0-based, ascending). */
static void seqset_slice(const struct imap_seqset *in, uint64_t first, uint64_t end,
                         struct imap_seqset *out)
{
    uint64_t at = 0;
    for (size_t i = 0; i < in->count && at < end; i++) {
        uint64_t n = (uint64_t)in->r[i].hi - in->r[i].lo + 1;
        if (at + n > first) {
            uint64_t a = first > at ? first - at : 0;
            uint64_t b = end < at + n ? end - at : n;
            imap_seqset_add(out, (uint32_t)(in->r[i].lo + a), (uint32_t)(in->r[i].lo + b - 1));
        }
        at += n;
    }
}

/* RFC 4731 section 3.1 result options, and RFC 5182 SAVE */
enum {
    RET_MIN = 1 << 0, RET_MAX = 1 << 1, RET_ALL = 1 << 2, RET_COUNT = 1 << 3, RET_SAVE = 1 << 4,
    /* RFC 5267 section 4 */
    RET_CONTEXT = 1 << 5, RET_UPDATE = 1 << 6, RET_PARTIAL = 1 << 7,
};
/* the options that ask for a result (without any, RETURN means ALL) */
#define RET_RESULTS (RET_MIN | RET_MAX | RET_ALL | RET_COUNT | RET_SAVE | RET_PARTIAL)

/* parse_return: the RETURN (...) list of an extended SEARCH into RET_* bits in *ret (empty
 * list: ALL, RFC 4731 section 3.1), the range of PARTIAL into *partial. 0, or CF_E_PARSE with
 * a reason in *err. */
static int parse_return(const struct imap_arg *a, unsigned *ret, struct imap_partial *partial,
                        const char **err)
{
    static const struct { const char *name; unsigned bit; } opts[] = {
        { "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL }, { "COUNT", RET_COUNT },
        { "SAVE", RET_SAVE }, { "CONTEXT", RET_CONTEXT }, { "UPDATE", RET_UPDATE },
        { "PARTIAL", RET_PARTIAL },
    };
    *ret = 0;
    if (a->type != IMAP_ARG_LIST) {
        *err = "RETURN needs a list of result options";
        return CF_E_PARSE;
    }
    for (size_t i = 0; i < a->count; i++) {
        size_t k;
        for (k = 0; k < sizeof opts / sizeof opts[0]; k++)
            if (imap_arg_atom_eq(&a->list[i], opts[k].name)) break;
        if (k == sizeof opts / sizeof opts[0]) {
            *err = "Unknown SEARCH result option";
            return CF_E_PARSE;
        }
        if ((opts[k].bit & (RET_UPDATE | RET_PARTIAL)) && (*ret & opts[k].bit)) {
            *err = "UPDATE and PARTIAL may be given only once";
            return CF_E_PARSE;
        }
        *ret |= opts[k].bit;
        if (opts[k].bit != RET_PARTIAL) continue;
        /* RFC 5267 section 4.4: PARTIAL takes a range (RFC 9394: negative ones too) */
        const char *text = ++i < a->count ? imap_arg_atom(&a->list[i]) : NULL;
        if (!text || imap_partial_parse(text, a->list[i].len, partial, err) < 0) {
            *err = "PARTIAL needs a range m:n or -m:-n of nonzero numbers";
            return CF_E_PARSE;
        }
    }
    /* PARTIAL and ALL ask for the same list twice, whole and in part: refused, as Dovecot
     * does, rather than guessing which one the client meant */
    if ((*ret & RET_PARTIAL) && (*ret & RET_ALL)) {
        *err = "PARTIAL and ALL cannot be combined";
        return CF_E_PARSE;
    }
    if (!(*ret & RET_RESULTS)) *ret |= RET_ALL;
    return 0;
}

/* has_save: 1 when the RETURN list (well formed or not) names SAVE: a failed SEARCH that
 * asked to save empties the saved result (RFC 5182 section 2.1). */
static int has_save(const struct imap_arg *a)
{
    if (a->type != IMAP_ARG_LIST) return 0;
    for (size_t i = 0; i < a->count; i++)
        if (imap_arg_atom_eq(&a->list[i], "SAVE")) return 1;
    return 0;
}

void cmd_search(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct search_program *prog = NULL;
    struct search_ctx x;
    struct buf out = BUF_INIT;
    const char *err = NULL;
    uint32_t n, msgno;
    const struct imap_arg *args = cmd->args;
    size_t nargs = cmd->nargs;
    int extended = 0, save_asked = 0;
    unsigned ret = 0;
    struct imap_partial partial = { 0, 0, 0 };
    int r;

    if (nargs >= 1 && imap_arg_atom_eq(&args[0], "RETURN")) {
        /* RFC 4731 section 3.1: SEARCH RETURN (options) [CHARSET x] keys */
        extended = 1;
        if (nargs < 2) {
            client_tagged(c, cmd->tag, "BAD RETURN needs a list of result options");
            return;
        }
        save_asked = has_save(&args[1]);
        if (parse_return(&args[1], &ret, &partial, &err) < 0) {
            if (save_asked) imap_seqset_clear(&sel->saved);
            client_tagged(c, cmd->tag, "BAD %s", err);
            return;
        }
        args += 2;
        nargs -= 2;
        /* RFC 5267 section 4.3: an update is named by its tag, which must be unambiguous */
        if ((ret & RET_UPDATE) && search_context_find(sel, cmd->tag)) {
            if (save_asked) imap_seqset_clear(&sel->saved);
            client_tagged(c, cmd->tag, "BAD A search update with this tag is active");
            return;
        }
    }
    /* RFC 6855 section 3: after ENABLE UTF8=ACCEPT every string is UTF-8, and a CHARSET
     * label would conflict with that (rev2.c) */
    if (nargs >= 1 && imap_arg_atom_eq(&args[0], "CHARSET") &&
        (c->enabled & CLIENT_ENABLED_UTF8ACCEPT)) {
        if (save_asked) imap_seqset_clear(&sel->saved);
        client_tagged(c, cmd->tag, "BAD No CHARSET after ENABLE UTF8=ACCEPT");
        return;
    }
    /* RFC 9051 section 6.4.4: IMAP4rev2 answers SEARCH with ESEARCH only, as RETURN (ALL)
     * (rev2.c) */
    if (!extended && rev2_on(c)) {
        extended = 1;
        ret = RET_ALL;
    }
    r = search_parse(args, nargs, &prog, &err);
    if (r < 0 && save_asked) imap_seqset_clear(&sel->saved);
    if (r == CF_E_NOTFOUND) {
        /* RFC 3501 section 6.4.4: NO with the charsets we do take */
        client_tagged(c, cmd->tag, "NO [BADCHARSET (UTF-8 US-ASCII)] %s", err);
        return;
    }
    if (r == CF_E_LIMIT) {
        client_tagged(c, cmd->tag, "NO [LIMIT] %s (limit %d bytes)", err, SEARCH_MAX_STRINGS);
        return;
    }
    if (r < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        return;
    }
    memset(&x, 0, sizeof(x));
    x.sel = sel;
    x.mail = mail_new(sel->mb);
    n = selected_count(sel);
    search_set_saved(prog, &sel->saved);
    search_prepare(prog, n, n ? selected_uid(sel, n) : 0, mailbox_keywords(sel->mb));
    /* a live search keeps the messages its sequence keys meant now (search.h search_pin) */
    if (ret & RET_UPDATE) search_pin(prog, n, view_uid, sel);

    /* extended: the matches as numbers of the command's kind, and as uids for SAVE */
    struct imap_seqset all = IMAP_SEQSET_INIT, uids = IMAP_SEQSET_INIT;
    uint32_t first = 0, last = 0, first_uid = 0, last_uid = 0;
    uint64_t count = 0;
    /* RFC 7162 sections 3.1.5, 3.1.6: a MODSEQ key makes the response carry the highest
     * mod-sequence of the matches (of MIN/MAX only when only those are returned) */
    int with_modseq = search_uses_modseq(prog);
    uint64_t modseq_all = 0, modseq_first = 0, modseq_last = 0;
    if (with_modseq) condstore_enable(c, CLIENT_ENABLED_CONDSTORE);   /* section 3.1 */
    column_load(&x, prog, n);
    buf_appends(&out, "SEARCH");
    for (msgno = 1; msgno <= n; msgno++) {
        r = search_match(prog, &sx_ops, &x, msgno);
        if (r == CF_E_NOTFOUND) {       /* expunged meanwhile: not a match */
            sx_release(&x, msgno);
            continue;
        }
        if (r < 0) break;
        if (!r) continue;
        uint32_t num = uid_cmd ? x.uid : msgno;
        if (x.modseq > modseq_all) modseq_all = x.modseq;
        if (!modseq_first) modseq_first = x.modseq;
        modseq_last = x.modseq;
        if (!extended) {
            buf_printf(&out, " %u", num);
            continue;
        }
        if (!count) { first = num; first_uid = x.uid; }
        last = num;
        last_uid = x.uid;
        count++;
        if (ret & (RET_ALL | RET_PARTIAL)) imap_seqset_add(&all, num, num);
        if (ret & (RET_SAVE | RET_UPDATE)) imap_seqset_add(&uids, x.uid, x.uid);
    }
    column_unload(&x);
    mail_free(&x.mail);
    /* RFC 5267 section 4.3: keep the search live, or say why not (the search still answers) */
    if ((r >= 0 || r == CF_E_NOTFOUND) && (ret & RET_UPDATE)) {
        unsigned want = 0;
        if (ret & RET_MIN) want |= SEARCH_UPDATE_MIN;
        if (ret & RET_MAX) want |= SEARCH_UPDATE_MAX;
        if (ret & RET_COUNT) want |= SEARCH_UPDATE_COUNT;
        if ((ret & (RET_ALL | RET_PARTIAL)) || !want) want |= SEARCH_UPDATE_LIST;
        if (search_context_add(sel, cmd->tag, uid_cmd, want, &prog, &uids) < 0) {
            struct buf q = BUF_INIT;
            imap_string_append(&q, cmd->tag, strlen(cmd->tag));
            client_untagged(c, "NO [NOUPDATE %s] Too many search updates (limit %d)",
                            buf_cstr(&q), SEARCH_CONTEXT_MAX);
            buf_fini(&q);
        }
    }
    search_free(&prog);
    if (r < 0 && r != CF_E_NOTFOUND) {
        if (save_asked) imap_seqset_clear(&sel->saved);
        imapd_reply_error(c, cmd->tag, r);
    } else if (!extended) {
        if (with_modseq && modseq_all)
            buf_printf(&out, " (MODSEQ %llu)", (unsigned long long)modseq_all);
        client_untagged(c, "%s", buf_cstr(&out));
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    } else {
        uint64_t pfirst = 0, pend = 0;
        if (ret & RET_PARTIAL) imap_partial_window(&partial, count, &pfirst, &pend);
        if (ret & RET_SAVE) {
            /* RFC 5182 section 2.4: with MIN and/or MAX but neither ALL nor COUNT, only
             * those are saved; PARTIAL, read the same way, saves its window (and MIN/MAX) */
            if ((ret & (RET_MIN | RET_MAX | RET_PARTIAL)) && !(ret & (RET_ALL | RET_COUNT))) {
                struct imap_seqset part = IMAP_SEQSET_INIT;
                if (ret & RET_PARTIAL) seqset_slice(&uids, pfirst, pend, &part);
                if (count && (ret & RET_MIN)) imap_seqset_add(&part, first_uid, first_uid);
                if (count && (ret & RET_MAX)) imap_seqset_add(&part, last_uid, last_uid);
                imap_seqset_fini(&uids);
                uids = part;
            }
            imap_seqset_fini(&sel->saved);
            sel->saved = uids;
            imap_seqset_init(&uids);
        }
        /* RFC 5182 section 2.1: SAVE alone gives no ESEARCH response (CONTEXT and UPDATE
         * ask for none either) */
        if (ret & ~(unsigned)(RET_SAVE | RET_CONTEXT | RET_UPDATE)) {
            buf_reset(&out);
            buf_appends(&out, "ESEARCH (TAG \"");
            for (const char *t = cmd->tag; *t; t++) {
                if (*t == '"' || *t == '\\') buf_putc(&out, '\\');
                buf_putc(&out, *t);
            }
            buf_printf(&out, "\")%s", uid_cmd ? " UID" : "");
            if (count && (ret & RET_MIN)) buf_printf(&out, " MIN %u", first);
            if (count && (ret & RET_MAX)) buf_printf(&out, " MAX %u", last);
            if (count && (ret & RET_ALL)) {
                buf_appends(&out, " ALL ");
                imap_seqset_format(&all, &out);
            }
            if (ret & RET_PARTIAL) {
                /* RFC 5267 section 4.4: PARTIAL (range set-or-NIL), the range echoed */
                struct imap_seqset part = IMAP_SEQSET_INIT;
                seqset_slice(&all, pfirst, pend, &part);
                buf_appends(&out, " PARTIAL (");
                imap_partial_format(&partial, &out);
                buf_putc(&out, ' ');
                if (part.count) imap_seqset_format(&part, &out);
                else buf_appends(&out, "NIL");
                buf_putc(&out, ')');
                imap_seqset_fini(&part);
            }
            if (ret & RET_COUNT) buf_printf(&out, " COUNT %llu", (unsigned long long)count);
            if (with_modseq && count) {
                uint64_t m = modseq_all;
                if (!(ret & (RET_ALL | RET_COUNT))) {
                    m = 0;
                    if ((ret & RET_MIN) && modseq_first > m) m = modseq_first;
                    if ((ret & RET_MAX) && modseq_last > m) m = modseq_last;
                }
                if (m) buf_printf(&out, " MODSEQ %llu", (unsigned long long)m);
            }
            client_untagged(c, "%s", buf_cstr(&out));
        }
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
    }
    imap_seqset_fini(&all);
    imap_seqset_fini(&uids);
    buf_fini(&out);
}

/* ---- for SORT and THREAD (cmd-sort.c) ---- */

int search_run_selected(struct selected *sel, struct search_program *prog, uint32_t **msgnos_r,
                        size_t *n_r)
{
    struct search_ctx x;
    uint32_t n = selected_count(sel), *out = NULL;
    size_t k = 0;
    int r = 0;
    memset(&x, 0, sizeof(x));
    x.sel = sel;
    x.mail = mail_new(sel->mb);
    search_set_saved(prog, &sel->saved);
    search_prepare(prog, n, n ? selected_uid(sel, n) : 0, mailbox_keywords(sel->mb));
    if (n) out = xreallocarray(NULL, n, sizeof(*out));
    column_load(&x, prog, n);
    for (uint32_t msgno = 1; msgno <= n; msgno++) {
        r = search_match(prog, &sx_ops, &x, msgno);
        if (r == CF_E_NOTFOUND) {       /* expunged meanwhile: not a match */
            sx_release(&x, msgno);
            r = 0;
            continue;
        }
        if (r < 0) break;
        if (r) out[k++] = msgno;
        r = 0;
    }
    column_unload(&x);
    mail_free(&x.mail);
    if (r < 0) {
        free(out);
        return r;
    }
    *msgnos_r = out;
    *n_r = k;
    return 0;
}
