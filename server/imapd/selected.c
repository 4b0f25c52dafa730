/* selected.c: the selected state of an IMAP session: view, \Recent, sequence sets and the
 * untagged updates owed to the client (RFC 3501 sections 5.2, 7.3.1, 7.3.2, 7.4.1). */
#include "selected.h"
#include "imapd.h"
#include "acl-check.h"
#include "search-context.h"
#include "store/mboxname.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>

int selected_open(struct store *st, const char *name, int readonly, struct selected **sel_r)
{
    return selected_open_view(st, name, readonly, 0, sel_r);
}

int selected_open_view(struct store *st, const char *name, int readonly, int no_recent,
                       struct selected **sel_r)
{
    *sel_r = NULL;
    struct mailbox *mb = NULL;
    /* (the [UNSEEN] code comes with the open's sync; a rev2 session has none) */
    int r = no_recent ? store_open_mailbox(st, name, NULL, &mb)
                      : store_open_select(st, name, NULL, &mb);
    if (r < 0) return r;
    struct selected *sel = xzmalloc(sizeof *sel);
    sel->name = xstrdup(name);
    sel->mb = mb;
    sel->readonly = readonly;
    sel->no_recent = no_recent;
    sel->uidvalidity = mailbox_header(mb)->uidvalidity;
    imap_seqset_init(&sel->recent);
    imap_seqset_init(&sel->skip);
    imap_seqset_init(&sel->saved);
    uint32_t first = 0, end = 0;
    /* RFC 3501 section 6.3.2: EXAMINE must not take \Recent away from anyone */
    r = mailbox_claim_recent(mb, !readonly && !no_recent, &first, &end);
    if (r < 0) {
        selected_close(&sel);
        return r;
    }
    if (no_recent) sel->recent_from = 0;
    else if (readonly) sel->recent_from = first;
    else if (end > first) imap_seqset_add(&sel->recent, first, end - 1);
    sel->told_exists = selected_count(sel);
    sel->told_recent = selected_recent_count(sel);
    const struct strarr *kw = mailbox_keywords(mb);
    sel->told_keywords = kw ? (uint32_t)kw->count : 0;
    *sel_r = sel;
    return 0;
}

void selected_close(struct selected **selp)
{
    struct selected *sel = *selp;
    if (!sel) return;
    search_context_free(sel);
    mailbox_close(&sel->mb);
    imap_seqset_fini(&sel->recent);
    imap_seqset_fini(&sel->skip);
    imap_seqset_fini(&sel->saved);
    imap_seqset_fini(&sel->seen_uids);
    buf_fini(&sel->seen_text);
    selected_seen_hist_free(sel);
    free(sel->acl);
    free(sel->seen_user);
    free(sel->name);
    free(sel);
    *selp = NULL;
}

/* ---- per-user \Seen of shared mailboxes ---- */

/* seen_load: the user's stored set into set and its text into text. 0 or a database error; a
 * set that does not parse counts as empty (logged). */
static int seen_load(struct selected *sel, struct imap_seqset *set, struct buf *text)
{
    buf_reset(text);
    imap_seqset_clear(set);
    int r = store_seen_get(sel->seen_store, sel->seen_id, sel->seen_user, text);
    if (r < 0) return r;
    const char *err = NULL;
    if (text->len && imap_seqset_parse(set, text->s, text->len, &err) < 0) {
        log_warn("seen_set_invalid", "user=%s error=%s", log_quote(sel->seen_user), err);
        imap_seqset_clear(set);
    }
    return selected_seen_hist_load(sel);
}

int selected_seen_init(struct selected *sel, struct store *st, const char *user)
{
    if (!user || !strncmp(sel->name, MBOXNAME_USER_PREFIX, strlen(MBOXNAME_USER_PREFIX)))
        return 0;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = store_lookup(st, sel->name, &e);
    if (r == 1) snprintf(sel->seen_id, sizeof sel->seen_id, "%s", e.uniqueid);
    mboxlist_entry_fini(&e);
    if (r <= 0) return r ? r : CF_E_NOTFOUND;
    sel->seen_user = xstrdup(user);
    sel->seen_store = st;
    return seen_load(sel, &sel->seen_uids, &sel->seen_text);
}

void selected_seen_apply(const struct selected *sel, struct index_record *rec)
{
    if (!sel->seen_user) return;
    rec->flags &= ~FLAG_SEEN;
    if (imap_seqset_contains(&sel->seen_uids, rec->uid)) rec->flags |= FLAG_SEEN;
}

int selected_seen_change(struct selected *sel, const uint32_t *uids, size_t n, int add)
{
    if (!sel->seen_user) return 0;
    struct imap_seqset cur = IMAP_SEQSET_INIT, change = IMAP_SEQSET_INIT, out = IMAP_SEQSET_INIT;
    struct buf text = BUF_INIT;
    int r = seen_load(sel, &cur, &text);
    if (r < 0) goto done;
    /* the uids whose \Seen really changes get a new mod-sequence (RFC 7162 section 3.1.3: a
     * STORE that changes nothing leaves it) */
    uint32_t *moved = xreallocarray(NULL, n ? n : 1, sizeof *moved);
    size_t nmoved = 0;
    for (size_t i = 0; i < n; i++)
        if (uids[i] && imap_seqset_contains(&cur, uids[i]) != !!add) moved[nmoved++] = uids[i];
    for (size_t i = 0; i < n; i++)
        if (uids[i]) imap_seqset_add(add ? &cur : &change, uids[i], uids[i]);
    /* this session's own \Seen change: RFC 5267 live searches look again */
    for (size_t i = 0; i < n; i++) search_context_touch(sel, uids[i]);
    if (add) {
        out = cur;
        imap_seqset_init(&cur);
    } else {
        imap_seqset_subtract(&cur, &change, &out);
    }
    buf_reset(&text);
    imap_seqset_format(&out, &text);
    r = store_seen_set(sel->seen_store, sel->seen_id, sel->seen_user, buf_cstr(&text));
    if (r < 0) {
        free(moved);
        goto done;
    }
    r = nmoved ? selected_seen_hist_add(sel, moved, nmoved) : 0;
    free(moved);
    moved = NULL;
    if (r < 0) goto done;
    imap_seqset_fini(&sel->seen_uids);
    sel->seen_uids = out;
    imap_seqset_init(&out);
    buf_reset(&sel->seen_text);
    buf_append(&sel->seen_text, text.s ? text.s : "", text.len);
done:
    imap_seqset_fini(&cur);
    imap_seqset_fini(&change);
    imap_seqset_fini(&out);
    buf_fini(&text);
    return r;
}

uint32_t selected_count(const struct selected *sel) { return mailbox_count(sel->mb); }
uint32_t selected_uid(const struct selected *sel, uint32_t msgno)
{
    return mailbox_uid(sel->mb, msgno);
}
uint32_t selected_msgno(const struct selected *sel, uint32_t uid)
{
    return mailbox_msgno(sel->mb, uid);
}

/* first_msgno_ge: the smallest message number whose uid is >= uid, or count + 1. */
static uint32_t first_msgno_ge(const struct selected *sel, uint64_t uid)
{
    /* (a search by message number would read every group of a lazy view it passes) */
    return mailbox_msgno_ge(sel->mb, uid);
}

int selected_is_recent(const struct selected *sel, uint32_t uid)
{
    if (sel->no_recent) return 0;
    if (sel->readonly) return sel->recent_from && uid >= sel->recent_from;
    return imap_seqset_contains(&sel->recent, uid);
}

uint32_t selected_recent_count(const struct selected *sel)
{
    uint32_t count = selected_count(sel);
    if (sel->no_recent) return 0;
    if (sel->readonly) {
        if (!sel->recent_from) return 0;
        return count + 1 - first_msgno_ge(sel, sel->recent_from);
    }
    uint32_t n = 0;
    for (size_t i = 0; i < sel->recent.count; i++) {
        uint32_t a = first_msgno_ge(sel, sel->recent.r[i].lo);
        uint32_t b = first_msgno_ge(sel, (uint64_t)sel->recent.r[i].hi + 1);
        n += b - a;
    }
    return n;
}

int selected_msgset(const struct selected *sel, const char *text, int uid,
                    struct imap_seqset *out, const char **err)
{
    struct imap_seqset in = IMAP_SEQSET_INIT;
    imap_seqset_clear(out);
    int r = imap_seqset_parse(&in, text, strlen(text), err);
    if (r < 0) goto done;
    uint32_t count = selected_count(sel);
    if (in.saved) {
        /* RFC 5182 section 2.1: the saved uids still in the view, for both forms */
        for (size_t i = 0; i < sel->saved.count; i++) {
            uint32_t a = first_msgno_ge(sel, sel->saved.r[i].lo);
            uint32_t b = first_msgno_ge(sel, (uint64_t)sel->saved.r[i].hi + 1);
            if (b > a) imap_seqset_add(out, a, b - 1);
        }
        goto done;
    }
    if (!uid) {
        imap_seqset_resolve(&in, count, out);
        if (out->count && out->r[out->count - 1].hi > count) {
            imap_seqset_clear(out);
            *err = "Invalid message sequence number";
            r = CF_E_PARSE;
        }
        goto done;
    }
    struct imap_seqset uids = IMAP_SEQSET_INIT;
    imap_seqset_resolve(&in, count ? selected_uid(sel, count) : 0, &uids);
    for (size_t i = 0; i < uids.count; i++) {
        uint32_t a = first_msgno_ge(sel, uids.r[i].lo);
        uint32_t b = first_msgno_ge(sel, (uint64_t)uids.r[i].hi + 1);
        if (b > a) imap_seqset_add(out, a, b - 1);
    }
    imap_seqset_fini(&uids);
done:
    imap_seqset_fini(&in);
    return r;
}

void selected_flags_append(struct selected *sel, const struct index_record *rec,
                           struct buf *out)
{
    static const struct { uint32_t bit; const char *name; } sys[] = {
        { FLAG_ANSWERED, "\\Answered" }, { FLAG_FLAGGED, "\\Flagged" },
        { FLAG_DELETED, "\\Deleted" },   { FLAG_SEEN, "\\Seen" },
        { FLAG_DRAFT, "\\Draft" },
    };
    size_t start = out->len;
    /* selected_seen_apply's rule, without copying the record for it */
    uint32_t flags = rec->flags;
    if (sel->seen_user) {
        flags &= ~FLAG_SEEN;
        if (imap_seqset_contains(&sel->seen_uids, rec->uid)) flags |= FLAG_SEEN;
    }
    buf_putc(out, '(');
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        if (!(flags & sys[i].bit)) continue;
        if (out->len > start + 1) buf_putc(out, ' ');
        buf_appends(out, sys[i].name);
    }
    const struct strarr *kw = NULL;
    for (unsigned byte = 0; byte < INDEX_MAX_KEYWORDS / 8; byte++) {
        if (!rec->user_flags[byte]) continue;   /* most messages have no keyword */
        for (unsigned k = byte * 8; k < byte * 8 + 8; k++) {
            if (!index_user_flag_get(rec, k)) continue;
            if (!kw) kw = mailbox_keywords(sel->mb);
            if (!kw || k >= kw->count) continue;
            if (out->len > start + 1) buf_putc(out, ' ');
            buf_appends(out, kw->v[k]);
        }
    }
    if (selected_is_recent(sel, rec->uid)) {
        if (out->len > start + 1) buf_putc(out, ' ');
        buf_appends(out, "\\Recent");
    }
    buf_putc(out, ')');
}

/* The system flags every mailbox supports (RFC 3501 section 2.3.2), in reply order. */
#define SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

void selected_flags_responses(struct client *c)
{
    struct selected *sel = c->sel;
    const struct strarr *kw = mailbox_keywords(sel->mb);
    struct buf b = BUF_INIT, k = BUF_INIT;
    for (size_t i = 0; kw && i < kw->count; i++) {
        buf_putc(&k, ' ');
        buf_appends(&k, kw->v[i]);
    }
    buf_printf(&b, "FLAGS (" SYSTEM_FLAGS "%s)", buf_cstr(&k));
    client_untagged(c, "%s", buf_cstr(&b));
    if (sel->readonly)
        client_untagged(c, "OK [PERMANENTFLAGS ()] No permanent flags permitted");
    else
        client_untagged(c, "OK [PERMANENTFLAGS (" SYSTEM_FLAGS "%s \\*)] Flags permitted",
                        buf_cstr(&k));
    buf_fini(&b);
    buf_fini(&k);
}

void selected_keywords_announce(struct client *c)
{
    struct selected *sel = c->sel;
    const struct strarr *kw = mailbox_keywords(sel->mb);
    if (kw && kw->count != sel->told_keywords) {
        selected_flags_responses(c);
        sel->told_keywords = (uint32_t)kw->count;
    }
}

int selected_rights_check(struct client *c)
{
    struct selected *sel = c->sel;
    if (!sel || !c->store) return 0;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = 0;
    if (store_lookup(c->store, sel->name, &e) != 1) goto done;   /* keep; sync sees deletion */
    if (sel->acl_uniqueid[0] && strcmp(sel->acl_uniqueid, e.uniqueid)) goto done;
    if (sel->acl && !strcmp(sel->acl, e.acl)) goto done;
    snprintf(sel->acl_uniqueid, sizeof sel->acl_uniqueid, "%s", e.uniqueid);
    free(sel->acl);
    sel->acl = xstrdup(e.acl);
    char rights[ACL_RIGHTS_SIZE];
    acl_rights(c, sel->name, e.acl, rights);
    if (strcmp(rights, sel->rights))
        log_info("imap_rights_changed", "old=%s new=%s", sel->rights, rights);
    snprintf(sel->rights, sizeof sel->rights, "%s", rights);
    if (!strchr(rights, 'r')) r = CF_E_PERM;
done:
    mboxlist_entry_fini(&e);
    return r;
}

int selected_sync(struct client *c, unsigned flags)
{
    struct selected *sel = c->sel;
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    /* a revoked ACL reaches open and idling sessions here (selected_rights_check) */
    int r = selected_rights_check(c);
    if (r < 0) goto out;
    r = mailbox_sync(sel->mb, (flags & SELECTED_SYNC_NO_EXPUNGE) ? MAILBOX_SYNC_NO_EXPUNGE : 0,
                         &ch);
    if (r < 0) goto out;
    struct buf b = BUF_INIT;
    search_context_expunge(c, &ch);         /* RFC 5267 REMOVEFROM of live SORTs, before */
    /* RFC 3501 section 7.4.1: each EXPUNGE renumbers the ones after it, so they come in the
     * order mailbox_sync gives, each number valid when it is sent. */
    if (c->enabled & CLIENT_ENABLED_QRESYNC) {
        /* RFC 7162 section 3.2.10: with QRESYNC, expunges are told as VANISHED (uids) */
        struct imap_seqset gone = IMAP_SEQSET_INIT;
        for (size_t i = 0; i < ch.n_expunged; i++)
            imap_seqset_add(&gone, ch.expunged_uids[i], ch.expunged_uids[i]);
        selected_vanished(c, &gone, 0);
        imap_seqset_fini(&gone);
    } else {
        for (size_t i = 0; i < ch.n_expunged; i++)
            client_untagged(c, "%u EXPUNGE", (unsigned)ch.expunged_msgnos[i]);
    }
    if (ch.n_new && !sel->readonly && !sel->no_recent) {
        uint32_t first = 0, end = 0;
        r = mailbox_claim_recent(sel->mb, 1, &first, &end);
        if (r < 0) goto out_buf;
        if (end > first) imap_seqset_add(&sel->recent, first, end - 1);
    }
    selected_keywords_announce(c);
    uint32_t exists = selected_count(sel);
    if (ch.n_new) {
        client_untagged(c, "%u EXISTS", (unsigned)exists);
        uint32_t recent = selected_recent_count(sel);
        /* RFC 9051 appendix E: no RECENT response for an IMAP4rev2 session */
        if (!sel->no_recent) client_untagged(c, "%u RECENT", (unsigned)recent);
        sel->told_recent = recent;
    }
    sel->told_exists = exists;
    /* the user's \Seen set of a shared mailbox, changed by another session of theirs */
    struct imap_seqset seen_before = IMAP_SEQSET_INIT, reported = IMAP_SEQSET_INIT;
    struct buf seen_now = BUF_INIT;
    int seen_changed = 0;
    if (sel->seen_user) {
        seen_before = sel->seen_uids;
        imap_seqset_init(&sel->seen_uids);
        if (seen_load(sel, &sel->seen_uids, &seen_now) == 0 &&
            (seen_now.len != sel->seen_text.len ||
             (seen_now.len && memcmp(seen_now.s, sel->seen_text.s, seen_now.len)))) {
            seen_changed = 1;
            buf_reset(&sel->seen_text);
            buf_append(&sel->seen_text, seen_now.s ? seen_now.s : "", seen_now.len);
        } else {
            imap_seqset_fini(&sel->seen_uids);
            sel->seen_uids = seen_before;
            imap_seqset_init(&seen_before);
        }
    }
    for (size_t i = 0; i < ch.n_changed + (seen_changed ? selected_count(sel) : 0); i++) {
        uint32_t uid;
        if (i < ch.n_changed) {
            uid = ch.changed_uids[i];
            imap_seqset_add(&reported, uid, uid);
        } else {
            uid = selected_uid(sel, (uint32_t)(i - ch.n_changed + 1));
            if (imap_seqset_contains(&reported, uid) ||
                imap_seqset_contains(&seen_before, uid) ==
                    imap_seqset_contains(&sel->seen_uids, uid))
                continue;
        }
        search_context_touch(sel, uid);     /* RFC 5267 live searches look again */
        if (imap_seqset_contains(&sel->skip, uid)) continue;
        uint32_t msgno = selected_msgno(sel, uid);
        struct index_record rec;
        if (!msgno) continue;
        if (i < ch.n_changed)
            rec = ch.changed_recs[i];   /* as the sync read it under the lock */
        else if (mailbox_record(sel->mb, uid, &rec) <= 0)
            continue;
        if (rec.flags & FLAG_EXPUNGED) continue;
        selected_fetch_line(c, msgno, &rec,
                            SELECTED_FETCH_FLAGS |
                                ((flags & SELECTED_SYNC_UID) ? SELECTED_FETCH_UID : 0), &b);
        client_untagged(c, "%s", buf_cstr(&b));
    }
    search_context_sync(c, &ch);            /* RFC 5267 ADDTO/REMOVEFROM, after the rest */
    imap_seqset_fini(&seen_before);
    imap_seqset_fini(&reported);
    buf_fini(&seen_now);
out_buf:
    buf_fini(&b);
out:
    imap_seqset_clear(&sel->skip);
    mailbox_changes_fini(&ch);
    return r;
}

void selected_deselect(struct client *c)
{
    /* the mailbox session stays with the store for a repeat SELECT of the same mailbox, which
     * then costs what changed since (store_park_mailbox) */
    if (c->sel && c->store) store_park_mailbox(c->store, &c->sel->mb);
    if (c->sel) selected_close(&c->sel);
    if (c->state == CLIENT_SELECTED) c->state = CLIENT_AUTH;
    log_set_mailbox(NULL);
}

void selected_sync_failed(struct client *c, int r)
{
    if (r == CF_E_NOTFOUND)
        client_untagged(c, "BYE [NONEXISTENT] The selected mailbox was deleted");
    else if (r == CF_E_PERM)
        client_untagged(c, "BYE [NOPERM] The right to read the selected mailbox was revoked");
    else if (r == CF_E_CORRUPT)   /* RFC 5530 section 3, as imapd_error_reply says it */
        client_untagged(c, "BYE [CORRUPTION] The selected mailbox is damaged and needs repair");
    else
        client_untagged(c, "BYE [SERVERBUG] Internal error; the mailbox needs repair");
    log_warn("imap_selected_lost", "error=%s", cf_strerror(r));
    selected_deselect(c);
    c->end_reason = r == CF_E_NOTFOUND ? "mailbox_deleted"
                    : r == CF_E_PERM   ? "rights_revoked"
                                       : "mailbox_error";
}

int selected_resolve_name(struct client *c, const char *tag, const struct imap_arg *arg,
                          char right, struct buf *name, char *rights, struct mboxlist_entry *e)
{
    const char *ext = imap_arg_astring(arg);
    if (!ext) {
        client_tagged(c, tag, "BAD Mailbox name expected");
        return CF_E_PARSE;
    }
    if (rev2_name_from_wire(c, ext, name) < 0) {
        client_tagged(c, tag, "NO [NONEXISTENT] No such mailbox");
        return CF_E_NOTFOUND;
    }
    int r = acl_lookup(c, buf_cstr(name), e, right, rights);
    if (r == 1) return 0;
    if (r == 0) client_tagged(c, tag, "NO [NONEXISTENT] No such mailbox");
    else if (r == CF_E_PERM) client_tagged(c, tag, "NO [NOPERM] Permission denied");
    else imapd_reply_error(c, tag, r);
    return r == 0 ? CF_E_NOTFOUND : r;
}

int selected_expunge(struct store *st, struct selected *sel, const uint32_t *uids, size_t n)
{
    /* the store credits the quota root with exactly what went, under the root's lock */
    if (!st) return mailbox_expunge(sel->mb, uids, n, NULL);
    return store_expunge(st, sel->mb, sel->name, uids, n, NULL);
}
