/* cmd-store.c: STORE and UID STORE (RFC 3501 sections 6.4.6, 6.4.8): FLAGS, +FLAGS, -FLAGS and
 * their .SILENT forms, with system flags and keywords. */
#include "imapd.h"
#include "selected.h"
#include "search-context.h"
#include "core/error.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "imap/imap-condstore.h"
#include "store/store-mail.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* flag_system: the FLAG_* bit of a system flag name (any case), 0 if it is none. */
static uint32_t flag_system(const char *s)
{
    static const struct { const char *name; uint32_t bit; } sys[] = {
        { "\\Seen", FLAG_SEEN }, { "\\Answered", FLAG_ANSWERED }, { "\\Flagged", FLAG_FLAGGED },
        { "\\Deleted", FLAG_DELETED }, { "\\Draft", FLAG_DRAFT },
    };
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (!strcasecmp(s, sys[i].name)) return sys[i].bit;
    return 0;
}

/* keyword_valid: RFC 3501 section 9 flag-keyword = atom: no atom-specials, no '\' . */
static int keyword_valid(const char *s)
{
    if (!*s) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p >= 0x7f || strchr("(){%*\"\\]", *p)) return 0;
    }
    return 1;
}

/* parse_flag_list: the flags args[0..n) into *sys and kw (RFC 3501 section 9 flag). NULL, or
 * a reason for BAD. */
static const char *parse_flag_list(const struct imap_arg *args, size_t n, uint32_t *sys,
                                   struct strarr *kw)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = imap_arg_atom(&args[i]);
        /* NIL is an atom like any other here (RFC 3501 section 9: flag-keyword = atom) */
        if (!s) return "Flags must be atoms";
        if (s[0] == '\\') {
            if (!strcasecmp(s, "\\Recent")) return "\\Recent cannot be stored";
            uint32_t bit = flag_system(s);
            if (!bit) return "Unknown system flag";
            *sys |= bit;
            continue;
        }
        if (!keyword_valid(s)) return "Invalid keyword";
        if (strarr_find_case(kw, s) < 0) strarr_add(kw, s);
    }
    return NULL;
}

/* FETCH lines sent while the commit is being made (RFC 3501 section 6.4.6). Without CONDSTORE
 * the lines carry no MODSEQ a client could keep, so they may go out before the change is
 * durable: a crash before its flush only means the command did not complete, and the tagged
 * OK still follows the flush; a refused commit is followed by each message's flags as they
 * are again (store_early_undo). They are made from the records as the commit will leave them,
 * worked out before it changes any (mailbox_store_hooked), and the client parses them while
 * the server changes the records and flushes the flag log (the parsing, one line per message,
 * is most of a STORE 1:*'s time for a client such as Python's imaplib). They are written
 * under the mailbox's write lock, so only what the socket takes at once: a slow client never
 * holds the lock; the rest is made and written after it is released. With CONDSTORE or
 * QRESYNC the order stays flush, then lines. Other sessions see nothing earlier or longer
 * than before: the lines are sent before the first record changes in place, and the records
 * change under the write lock exactly as they did. */
struct store_early {
    struct client *c;
    size_t n;                   /* messages named */
    const uint32_t *uids, *at, *msgnos;
    unsigned what;              /* SELECTED_FETCH_* */
    size_t k;                   /* lines made for messages [0, k) */
    struct buf lines;           /* made; [off, len) not yet written */
    size_t off;
    size_t nlive;               /* records the store hands back */
    int sent;                   /* some bytes went out before the flush */
    int full;                   /* the socket took no more */
    struct buf b;
};

/* early_line: the FETCH line of message k from rec into lines. */
static void early_line(struct store_early *e, size_t k, const struct index_record *rec)
{
    selected_fetch_line(e->c, e->msgnos[k], rec, e->what, &e->b);
    buf_appends(&e->lines, "* ");
    buf_append(&e->lines, e->b.s, e->b.len);
    buf_appends(&e->lines, "\r\n");
}

/* early_send: send what the socket takes of the lines made; 1 when some are left (the
 * socket is full, or the stream cannot send without waiting), 0 when all went. */
static int early_send(struct store_early *e)
{
    size_t want = e->lines.len - e->off;
    if (!want) return 0;
    long long w = client_untagged_nowait(e->c, e->lines.s + e->off, want);
    if (w <= 0) return 1;
    e->sent = 1;
    e->off += (size_t)w;
    if ((size_t)w < want) return 1;
    buf_reset(&e->lines);
    e->off = 0;
    return 0;
}

/* store_ready: mailbox_store_hooked's step: make the lines of the records worked out so far
 * (recs[0, done), as the commit will leave them) and send what the socket takes; make no more
 * once it takes no more (the rest is made after the commit). */
static void store_ready(void *arg, const struct index_record *recs, size_t done)
{
    struct store_early *e = arg;
    if (e->full && early_send(e)) return;
    e->full = 0;
    if (!e->k) selected_keywords_announce(e->c);   /* before the first line; none is new */
    while (e->k < e->n) {
        size_t k = e->k;
        if (e->uids[k] && e->at[k] >= done) break;   /* not worked out yet */
        e->k++;
        const struct index_record *rec = &recs[e->at[k]];
        /* refused, absent or expunged: as the lines after the commit (the lookup there
         * finds it gone too) */
        if (!e->uids[k] || rec->uid != e->uids[k] || (rec->flags & FLAG_EXPUNGED)) continue;
        early_line(e, k, rec);
        if (e->lines.len - e->off >= (e->sent ? 65536u : 8192u) && (e->full = early_send(e)))
            return;
    }
    if (done == e->nlive) e->full = early_send(e);
}

/* store_early_undo: the commit failed after lines went out: finish the line cut short and
 * tell the flags each message has now (put back), so that the client forgets what it read. */
static void store_early_undo(struct store_early *e, struct selected *sel)
{
    const char *rest = e->lines.s + e->off;
    size_t left = e->lines.len - e->off;
    const char *eol = left ? memchr(rest, '\n', left) : NULL;
    if (eol && e->off && e->lines.s[e->off - 1] != '\n')
        client_untagged_lines(e->c, rest, (size_t)(eol + 1 - rest));
    buf_reset(&e->lines);
    e->off = 0;
    for (size_t k = 0; k < e->k; k++) {
        struct index_record rec;
        if (!e->uids[k] || mailbox_record(sel->mb, e->uids[k], &rec) != 1 ||
            (rec.flags & FLAG_EXPUNGED))
            continue;
        early_line(e, k, &rec);
    }
    client_untagged_lines(e->c, e->lines.s, e->lines.len);
    buf_reset(&e->lines);
}

void cmd_store(struct client *c, const struct imap_command *cmd)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct imap_seqset msgs = IMAP_SEQSET_INIT;
    struct strarr kw = STRARR_INIT;
    struct buf b = BUF_INIT;
    uint32_t *uids = NULL;
    struct imap_arg *shifted = NULL;
    const char *err = NULL;
    struct imap_seqset modified = IMAP_SEQSET_INIT;
    uint32_t *failed = NULL, *at = NULL;
    struct index_record *recs = NULL;
    size_t nfailed = 0;
    struct store_early early = { .c = c, .lines = BUF_INIT, .b = BUF_INIT };
    struct mailbox_store_hook hook = { NULL, NULL };
    uint32_t *msgnos = NULL;
    /* RFC 7162 section 3.1.3: STORE set (UNCHANGEDSINCE n) item flags; the modifier list is
     * the second argument (RFC 4466 section 2.5 store-modifiers) */
    uint64_t unchangedsince = 0;
    int has_unchangedsince = 0;
    const struct imap_arg *args = cmd->args;
    size_t nargs = cmd->nargs;
    if (nargs >= 4 && args[1].type == IMAP_ARG_LIST) {
        if (imap_store_modifiers_parse(&args[1], &unchangedsince, &has_unchangedsince, &err) < 0) {
            client_tagged(c, cmd->tag, "BAD %s", err);
            goto out;
        }
        /* shift the modifier out: args[0] stays the set, args[1..] item and flags */
        struct imap_arg *copy = xreallocarray(NULL, nargs - 1, sizeof *copy);
        copy[0] = args[0];
        memcpy(copy + 1, args + 2, (nargs - 2) * sizeof *copy);
        args = shifted = copy;
        nargs--;
    }
    if (nargs < 3 || !imap_arg_atom(&args[0]) || !imap_arg_atom(&args[1])) {
        client_tagged(c, cmd->tag, "BAD %s takes a sequence set, an item and flags", cmd->name);
        goto out;
    }
    const char *item = args[1].s;
    enum mailbox_store_op op = STORE_SET;
    if (*item == '+') op = STORE_ADD, item++;
    else if (*item == '-') op = STORE_REMOVE, item++;
    int silent = 0;
    if (!strcasecmp(item, "FLAGS.SILENT")) silent = 1;
    else if (strcasecmp(item, "FLAGS")) {
        client_tagged(c, cmd->tag, "BAD Unknown STORE item %.40s", args[1].s);
        goto out;
    }
    uint32_t sys = 0;
    if (nargs == 3 && args[2].type == IMAP_ARG_LIST)
        err = parse_flag_list(args[2].list, args[2].count, &sys, &kw);
    else
        err = parse_flag_list(args + 2, nargs - 2, &sys, &kw);
    if (err) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (selected_msgset(sel, args[0].s, uid_cmd, &msgs, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (sel->readonly) {
        client_tagged(c, cmd->tag, "NO [READ-ONLY] The mailbox is read-only");
        goto out;
    }
    /* RFC 4314 section 4: flags the user has no right to change are left alone */
    if (!strchr(sel->rights, 's')) sys &= ~FLAG_SEEN;
    if (!strchr(sel->rights, 't')) sys &= ~FLAG_DELETED;
    if (!strchr(sel->rights, 'w')) {
        sys &= FLAG_SEEN | FLAG_DELETED;
        strarr_fini(&kw);
        if (op == STORE_SET) op = STORE_ADD;   /* cannot clear what it may not write */
    }
    /* RFC 7162 section 3.1: STORE UNCHANGEDSINCE is CONDSTORE-enabling */
    if (has_unchangedsince) condstore_enable(c, CLIENT_ENABLED_CONDSTORE);
    uint64_t total = imap_seqset_size(&msgs);
    uids = xreallocarray(NULL, total ? total : 1, sizeof *uids);
    msgnos = xreallocarray(NULL, total ? total : 1, sizeof *msgnos);
    size_t n = 0;
    for (size_t i = 0; i < msgs.count; i++) {
        for (uint64_t m = msgs.r[i].lo; m <= msgs.r[i].hi; m++) {
            uint32_t uid = selected_uid(sel, (uint32_t)m);
            msgnos[n] = (uint32_t)m;
            if (has_unchangedsince) {
                /* RFC 7162 section 3.1.3: a message changed after n is left alone and
                 * listed in MODIFIED (as this session sees its mod-sequence); the store
                 * checks again under its lock (failed below) */
                struct index_record rec;
                int rr = mailbox_record(sel->mb, uid, &rec);
                if (rr == 1 && !(rec.flags & FLAG_EXPUNGED) &&
                    selected_modseq(sel, &rec) > unchangedsince) {
                    imap_seqset_add(&modified, uid_cmd ? uid : (uint32_t)m,
                                    uid_cmd ? uid : (uint32_t)m);
                    uid = 0;
                }
            }
            uids[n++] = uid;
        }
    }
    /* the uids that may change (0 marks one refused above); at[i] is uids[i]'s place in
     * live, whose records the store hands back for the FETCH responses below */
    uint32_t *live = xreallocarray(NULL, n ? n : 1, sizeof *live);
    at = xreallocarray(NULL, n ? n : 1, sizeof *at);
    size_t nlive = 0;
    for (size_t i = 0; i < n; i++) {
        at[i] = (uint32_t)nlive;
        if (uids[i]) live[nlive++] = uids[i];
    }
    /* a shared mailbox keeps \Seen per user (selected.h): that part goes to the seen set */
    int r = 0;
    if (sel->seen_user && nlive && strchr(sel->rights, 's') &&
        (op == STORE_SET || (sys & FLAG_SEEN))) {
        r = selected_seen_change(sel, live, nlive, op != STORE_REMOVE && (sys & FLAG_SEEN));
        sys &= ~FLAG_SEEN;
    }
    /* UNCHANGEDSINCE 0 refuses every message (all have a mod-sequence), handled above; the
     * store's unchangedsince 0 means "no condition" */
    struct mailbox_store st = { op, sys, kw.count ? (const char *const *)kw.v : NULL,
                                has_unchangedsince ? selected_modseq_raw(sel, unchangedsince) : 0 };
    if (!r && nlive && (!sel->seen_user || sys || kw.count || op == STORE_SET)) {
        /* with recs every change is ours to tell below (FETCH, or nothing for .SILENT, RFC
         * 3501 section 6.4.6): the sync after the command need not read them back */
        recs = xreallocarray(NULL, nlive, sizeof *recs);
        /* the FETCH lines before the flush: only without MODSEQ in them (store_early), for
         * system flags alone (a new keyword commits through the index and is announced by a
         * FLAGS response first) and a mailbox that keeps \Seen in the index */
        if (!silent && !(c->enabled & (CLIENT_ENABLED_CONDSTORE | CLIENT_ENABLED_QRESYNC)) &&
            !has_unchangedsince && !kw.count && !sel->seen_user) {
            early.n = n;
            early.uids = uids;
            early.at = at;
            early.msgnos = msgnos;
            early.what = SELECTED_FETCH_FLAGS | (uid_cmd ? SELECTED_FETCH_UID : 0);
            early.nlive = nlive;
            hook.ready = store_ready;
            hook.arg = &early;
        }
        r = store_set_flags_records(c->store, sel->mb, live, nlive, &st,
                                    has_unchangedsince ? &failed : NULL,
                                    has_unchangedsince ? &nfailed : NULL, recs,
                                    hook.ready ? &hook : NULL);
    }
    free(live);
    if (r < 0) {
        if (early.sent) store_early_undo(&early, sel);
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    /* refused by the store under its lock (changed between our check and the commit) */
    for (size_t i = 0; i < nfailed; i++) {
        uint32_t msgno = selected_msgno(sel, failed[i]);
        if (!msgno) continue;
        uint32_t v = uid_cmd ? failed[i] : msgno;
        imap_seqset_add(&modified, v, v);
        for (size_t k = 0; k < n; k++)
            if (uids[k] == failed[i]) uids[k] = 0;
    }
    /* RFC 3501 section 6.4.6: the new flags of each message, unless .SILENT; either way the
     * next sync does not report this command's own changes again. RFC 7162 section 3.1.3:
     * with CONDSTORE on they carry MODSEQ, and .SILENT still sends MODSEQ alone; refused
     * messages get no FETCH */
    int condstore = (c->enabled & CLIENT_ENABLED_CONDSTORE) != 0;
    size_t k = 0;
    /* the lines go out in large writes (one per 64 KiB), not a formatted write each; the
     * first after 8 KiB, so that the client starts reading while the rest is formatted */
    struct buf lines = BUF_INIT;
    int announced = 0, wrote = 0;
    if (early.lines.len > early.off) {   /* made before the flush, not yet written */
        client_untagged_lines(c, early.lines.s + early.off, early.lines.len - early.off);
        if (!early.sent) client_untagged_push(c);
        wrote = 1;
    }
    if (early.k) announced = 1;
    for (size_t i = 0; i < msgs.count; i++) {
        for (uint64_t m = msgs.r[i].lo; m <= msgs.r[i].hi; m++, k++) {
            if (!uids[k]) continue;
            imap_seqset_add(&sel->skip, uids[k], uids[k]);
            /* RFC 5267 live searches look again (the sync may not see this change) */
            search_context_touch(sel, uids[k]);
            if (k < early.k) continue;   /* its line is out, or on its way (above) */
            struct index_record rec;
            int rr = 1;
            if (recs && recs[at[k]].uid == uids[k]) rec = recs[at[k]];   /* as committed */
            else rr = mailbox_record(sel->mb, uids[k], &rec);
            /* RFC 2180 section 4.2.1: one expunged elsewhere is skipped silently */
            if (rr <= 0 || (rec.flags & FLAG_EXPUNGED)) continue;
            if (silent && !condstore) continue;
            if (!silent && !announced) {   /* before the first line (no commit between) */
                selected_keywords_announce(c);
                announced = 1;
            }
            selected_fetch_line(c, (uint32_t)m, &rec,
                                (silent ? 0 : SELECTED_FETCH_FLAGS) |
                                    (uid_cmd ? SELECTED_FETCH_UID : 0),
                                &b);
            buf_appends(&lines, "* ");
            buf_append(&lines, b.s, b.len);
            buf_appends(&lines, "\r\n");
            if (lines.len >= (wrote ? 65536u : 8192u)) {
                client_untagged_lines(c, lines.s, lines.len);
                if (!wrote) client_untagged_push(c);
                wrote = 1;
                buf_reset(&lines);
            }
        }
    }
    client_untagged_lines(c, lines.s, lines.len);
    buf_fini(&lines);
    if (modified.count) {
        buf_reset(&b);
        imap_seqset_format(&modified, &b);
        client_tagged(c, cmd->tag, "OK [MODIFIED %s] Conditional %s failed for some messages",
                      buf_cstr(&b), cmd->name);
        goto out;
    }
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
out:
    free(uids);
    free(msgnos);
    buf_fini(&early.lines);
    buf_fini(&early.b);
    free(at);
    free(recs);
    free(failed);
    free(shifted);
    imap_seqset_fini(&modified);
    buf_fini(&b);
    strarr_fini(&kw);
    imap_seqset_fini(&msgs);
}
