/* cmd-mailbox.c: the authenticated-state mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE,
 * UNSUBSCRIBE, LIST, LSUB, STATUS (RFC 3501 sections 6.3.3 to 6.3.10), NAMESPACE (RFC 2342),
 * with CHILDREN (RFC 3348), SPECIAL-USE and CREATE-SPECIAL-USE (RFC 6154), LIST-STATUS
 * (RFC 5819), LIST-EXTENDED (RFC 5258) and the STATUS items SIZE (RFC 8438), DELETED and
 * DELETED-STORAGE (RFC 9208) and HIGHESTMODSEQ (RFC 7162).
 *
 * Names on the wire are modified UTF-7 in the user's view (store/mboxname.h), or UTF-8 once the
 * session enabled IMAP4rev2 or UTF8=ACCEPT (rev2.c does the conversion); INBOX matches in
 * any case; the hierarchy separator is "/". A mailbox the user may not see (no 'l' right,
 * acl-check.h) is answered as if it did not exist. */
#include "imapd.h"
#include "acl-check.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "imap/imap-listopts.h"
#include "imap/imap-seqset.h"
#include "store/mboxname.h"
#include "store/store-mail.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int need_store(struct client *c, const char *tag)
{
    if (c->store) return 1;
    client_tagged(c, tag, "NO [UNAVAILABLE] The mail store is not available");
    return 0;
}

/* one_mailbox_arg: the internal name of argument i (an astring) into out; answers BAD or NO
 * itself and returns 0 when there is none. strip_sep drops one trailing separator (CREATE,
 * RENAME target: RFC 3501 section 6.3.3). */
static int one_mailbox_arg(struct client *c, const struct imap_command *cmd, size_t i,
                           int strip_sep, struct buf *out)
{
    const char *s = i < cmd->nargs ? imap_arg_astring(&cmd->args[i]) : NULL;
    if (!s) {
        client_tagged(c, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
        return 0;
    }
    size_t len = cmd->args[i].len;
    if (strlen(s) != len) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Invalid mailbox name");
        return 0;
    }
    char *copy = xstrdup(s);
    if (strip_sep && len > 1 && copy[len - 1] == MBOXNAME_SEP) copy[len - 1] = '\0';
    int r = imapd_mailbox_name(c, cmd->tag, copy, out);
    free(copy);
    return r == 0;
}

static int own_inbox(const struct client *c, const char *name)
{
    struct buf inbox = BUF_INIT;
    mboxname_user_inbox(c->user, &inbox);
    int same = !strcmp(buf_cstr(&inbox), name);
    buf_fini(&inbox);
    return same;
}

/* may_create_in: whether the user may create internal name: the 'k' right on the nearest
 * existing ancestor (RFC 4314 section 4, CREATE), or, when no ancestor exists, the mailbox
 * lies in the user's own hierarchy or the user is an administrator. The list is read through
 * txn (NULL: each lookup on its own). 1 yes, 0 no, or an error. */
static int may_create_in(struct client *c, struct store_txn *txn, const char *name)
{
    struct buf parent = BUF_INIT, cur = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = 0;
    buf_appends(&cur, name);
    for (;;) {
        if (mboxname_parent(buf_cstr(&cur), &parent) != 1) {
            struct buf owner = BUF_INIT;
            r = c->is_admin || (mboxname_owner(name, &owner) == 1 &&
                                !strcmp(buf_cstr(&owner), c->user));
            buf_fini(&owner);
            break;
        }
        r = store_lookup_in(c->store, txn, buf_cstr(&parent), &e);
        if (r < 0) break;
        if (r == 1) {
            r = acl_has(c, buf_cstr(&parent), e.acl, 'k');
            break;
        }
        buf_reset(&cur);
        buf_append(&cur, parent.s, parent.len);
    }
    mboxlist_entry_fini(&e);
    buf_fini(&parent);
    buf_fini(&cur);
    return r;
}

static int may_create(struct client *c, const char *name)
{
    return may_create_in(c, NULL, name);
}

/* taken_error: what CREATE or RENAME answers when its target name exists: ALREADYEXISTS when
 * the user has some right on that mailbox, else the same NOPERM as a missing 'k' right, so
 * that a mailbox the user may not see is not revealed (RFC 4314 section 4 hides it everywhere
 * else; RFC 5530 ALREADYEXISTS would tell). The lookup itself can fail: then its error. */
static int taken_error(struct client *c, const char *name)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    char rights[ACL_RIGHTS_SIZE];
    int r = store_lookup(c->store, name, &e);
    if (r == 1) r = acl_rights(c, name, e.acl, rights) > 0 ? CF_E_EXISTS : CF_E_PERM;
    else if (r == 0) r = CF_E_PERM;   /* gone meanwhile, or a child's new name that is hidden */
    mboxlist_entry_fini(&e);
    return r;
}

/* same_owner: 1 when a and b lie in one user's hierarchy, or are both shared. */
static int same_owner(const char *a, const char *b)
{
    struct buf oa = BUF_INIT, ob = BUF_INIT;
    int same = mboxname_owner(a, &oa) == mboxname_owner(b, &ob) && !strcmp(buf_cstr(&oa),
                                                                           buf_cstr(&ob));
    buf_fini(&oa);
    buf_fini(&ob);
    return same;
}

struct count_rock { long long n, stop; };

static int count_cb(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct count_rock *cr = rock;
    (void)name;
    (void)e;
    return ++cr->n >= cr->stop ? 1 : 0;
}

/* check_mailbox_limit: L8 of the 2026-12 review: CF_E_LIMIT when creating name (and its
 * missing ancestors) would put more than max_mailboxes_per_user mailboxes in its owner's
 * hierarchy, else 0 (or a database error). Administrators and shared mailboxes have no limit.
 * Not in the create's transaction: two sessions racing can pass it by a few, which is all
 * the limit needs (it bounds the inodes one user can take, not an exact count). */
static int check_mailbox_limit(struct client *c, const char *name)
{
    long long max = config_int(c->ws->cfg, CFG_MAX_MAILBOXES_PER_USER);
    struct buf owner = BUF_INIT, inbox = BUF_INIT, anc = BUF_INIT;
    int r = 0;
    if (c->is_admin || max <= 0 || mboxname_owner(name, &owner) != 1) goto done;
    mboxname_user_inbox(buf_cstr(&owner), &inbox);
    /* the mailboxes this create makes: name and every missing ancestor below "user" */
    long long adding = 0;
    buf_appends(&anc, name);
    for (;;) {
        int found = store_lookup(c->store, buf_cstr(&anc), NULL);
        if (found < 0) { r = found; goto done; }
        if (found) break;
        adding++;
        struct buf up = BUF_INIT;
        int more = mboxname_parent(buf_cstr(&anc), &up) == 1;
        buf_reset(&anc);
        buf_append(&anc, up.s ? up.s : "", up.len);
        buf_fini(&up);
        if (!more) break;
    }
    struct count_rock cr = { 0, max + 1 };
    r = store_lookup(c->store, buf_cstr(&inbox), NULL);
    if (r < 0) goto done;
    cr.n = r;
    buf_putc(&inbox, MBOXNAME_SEP);
    r = store_mailbox_foreach(c->store, buf_cstr(&inbox), count_cb, &cr);
    if (r < 0) goto done;
    r = cr.n + adding > max ? CF_E_LIMIT : 0;
    if (r) log_notice("mailbox_limit", "owner=%s limit=%lld", log_quote(buf_cstr(&owner)), max);
done:
    buf_fini(&owner);
    buf_fini(&inbox);
    buf_fini(&anc);
    return r;
}

/* RFC 6154 section 2: the special-use attributes. */
static const char *const special_uses[] = { "\\All", "\\Archive", "\\Drafts", "\\Flagged",
                                            "\\Junk", "\\Sent", "\\Trash" };

static const char *special_use_canonical(const char *s)
{
    for (size_t i = 0; i < sizeof special_uses / sizeof special_uses[0]; i++)
        if (!strcasecmp(special_uses[i], s)) return special_uses[i];
    return NULL;
}

/* ---- CREATE ---- */

/* RFC 3501 section 6.3.3; RFC 6154 section 3: CREATE name (USE (\Sent ...)). Missing parents
 * are created too. */
/* create_ok: the tagged OK of CREATE with the new mailbox's RFC 8474 section 4.1 MAILBOXID
 * response code (plain OK if the entry is gone again already). */
static void create_ok(struct client *c, const char *tag, const char *name)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    if (store_lookup(c->store, name, &e) == 1)
        client_tagged(c, tag, "OK [MAILBOXID (F%s)] CREATE completed", e.uniqueid);
    else
        client_tagged(c, tag, "OK CREATE completed");
    mboxlist_entry_fini(&e);
}

void cmd_create(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT, flags = BUF_INIT;
    if (cmd->nargs < 1 || cmd->nargs > 2) {
        client_tagged(c, cmd->tag, "BAD CREATE needs a mailbox name");
        goto done;
    }
    if (cmd->nargs == 2) {
        /* RFC 4466 create-params: ( USE ( attr ... ) ) */
        const struct imap_arg *p = &cmd->args[1];
        if (p->type != IMAP_ARG_LIST || p->count != 2 || !imap_arg_atom_eq(&p->list[0], "USE") ||
            p->list[1].type != IMAP_ARG_LIST) {
            client_tagged(c, cmd->tag, "BAD Unknown CREATE parameters");
            goto done;
        }
        for (size_t i = 0; i < p->list[1].count; i++) {
            const char *a = imap_arg_atom(&p->list[1].list[i]);
            const char *canon = a ? special_use_canonical(a) : NULL;
            if (!canon) {
                client_tagged(c, cmd->tag, "NO [USEATTR] Unsupported special-use attribute");
                goto done;
            }
            if (strstr(buf_cstr(&flags), canon)) continue;
            if (flags.len) buf_putc(&flags, ' ');
            buf_appends(&flags, canon);
        }
    }
    if (!need_store(c, cmd->tag) || !one_mailbox_arg(c, cmd, 0, 1, &name)) goto done;
    const char *n = buf_cstr(&name);
    if (own_inbox(c, n)) {
        client_tagged(c, cmd->tag, "NO [ALREADYEXISTS] INBOX always exists");
        goto done;
    }
    int r = may_create(c, n);
    if (r == 0) r = CF_E_PERM;
    if (r == 1) r = store_lookup(c->store, n, NULL);
    if (r == 1) r = taken_error(c, n);
    if (r == 0) r = check_mailbox_limit(c, n);
    if (r == 0) r = store_create(c->store, n, NULL, NULL, flags.len ? buf_cstr(&flags) : NULL,
                                 STORE_CREATE_PARENTS);
    if (r == CF_E_EXISTS) r = taken_error(c, n);   /* created meanwhile */
    if (r) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    create_ok(c, cmd->tag, n);
done:
    buf_fini(&name);
    buf_fini(&flags);
}

/* ---- DELETE ---- */

static int delete_has_children(struct client *c, const char *name);

/* RFC 3501 section 6.3.4. Only the mailbox goes: its children stay, and LIST shows its name
 * as a \Noselect parent while they exist (the store has no \Noselect mailboxes, so this is
 * how "a name with inferiors" looks afterwards). The quota root is charged back. */
void cmd_delete(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    if (cmd->nargs != 1) {
        client_tagged(c, cmd->tag, "BAD DELETE needs a mailbox name");
        goto done;
    }
    if (!need_store(c, cmd->tag) || !one_mailbox_arg(c, cmd, 0, 0, &name)) goto done;
    const char *n = buf_cstr(&name);
    if (own_inbox(c, n)) {
        client_tagged(c, cmd->tag, "NO [CANNOT] INBOX cannot be deleted");
        goto done;
    }
    int r = acl_lookup(c, n, &e, 'x', NULL);
    /* RFC 9051 section 6.3.5: a name that is no mailbox but has children (a \Noselect level)
     * cannot be deleted; rev2 names the reason with its HASCHILDREN code (rev2.c) */
    if (r == 0 && rev2_on(c) && store_lookup(c->store, n, NULL) == 0 &&
        delete_has_children(c, n) > 0) {
        client_tagged(c, cmd->tag, "NO [HASCHILDREN] Only the mailboxes below this name exist");
        goto done;
    }
    if (r == 0) r = CF_E_NOTFOUND;
    /* another user's INBOX is their account, not a folder shared with 'x': only an
     * administrator deletes it (as RENAME never moves it out of its owner's hierarchy) */
    if (r == 1 && !c->is_admin && mboxname_is_inbox(n)) r = CF_E_PERM;
    if (r == 1) r = store_delete(c->store, n);   /* credits the quota root itself */
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    client_tagged(c, cmd->tag, "OK DELETE completed");
done:
    mboxlist_entry_fini(&e);
    buf_fini(&name);
}

/* ---- RENAME ---- */

/* rename_inbox: RFC 3501 section 6.3.5: renaming INBOX moves all its messages to a new
 * mailbox and leaves INBOX empty; its inferiors stay. Create, then one store_move (the new
 * mailbox's root charged, INBOX's credited, never refused: nothing is added overall). */
static int rename_inbox(struct client *c, const char *inbox, const char *newname)
{
    struct mailbox *src = NULL, *dst = NULL;
    uint32_t *uids = NULL;
    int r = store_create(c->store, newname, NULL, NULL, NULL, STORE_CREATE_PARENTS);
    if (r) goto done;
    r = store_open_mailbox(c->store, inbox, NULL, &src);
    if (!r) r = store_open_mailbox(c->store, newname, NULL, &dst);
    if (r) goto done;
    uint32_t n = mailbox_count(src);
    if (n) {
        uids = xmalloc(n * sizeof *uids);
        for (uint32_t i = 0; i < n; i++) uids[i] = mailbox_uid(src, i + 1);
        r = store_move(c->store, src, inbox, uids, n, dst, newname, MAILBOX_COPY_ALL_FLAGS, 1,
                       NULL, STORE_NO_QUOTA_CHECK, NULL);
    }
done:
    free(uids);
    mailbox_close(&src);
    mailbox_close(&dst);
    return r;
}

/* rename_check: the store_rename_with_check hook of RENAME (H3 of the 2026-12 review): every
 * mailbox that moves needs 'x' (RFC 4314 section 4: RENAME needs 'x' on the source; a child
 * moves with it, so it is a source too, and a child the user cannot see must not be carried
 * off), and the new name of the top one needs 'k' on its new parent. Run inside the rename's
 * transaction, so the rights checked are the rights in force when the list changes. */
struct rename_check { struct client *c; const char *top; };

static int rename_check(struct store_txn *txn, const char *oldname, const char *newname,
                        const struct mboxlist_entry *e, void *rock)
{
    struct rename_check *rc = rock;
    if (!acl_has(rc->c, oldname, e->acl, 'x')) return CF_E_PERM;
    if (!strcmp(oldname, rc->top)) {
        int r = may_create_in(rc->c, txn, newname);
        if (r <= 0) return r ? r : CF_E_PERM;
    }
    return 0;
}

/* RFC 3501 section 6.3.5, RFC 4314 section 4. Ownership comes from the name (a user's
 * mailboxes are those under user/NAME, store/acl.h), so a move between hierarchies would hand
 * the mailbox and its subtree to the new owner: only administrators may do that (an account
 * rename). For everyone else source and target must have the same owner (both shared counts),
 * else NO [NOPERM]. ACL entries move unchanged with each mailbox; the move grants nothing. */
void cmd_rename(struct client *c, const struct imap_command *cmd)
{
    struct buf from = BUF_INIT, to = BUF_INIT;
    if (cmd->nargs != 2) {
        client_tagged(c, cmd->tag, "BAD RENAME needs two mailbox names");
        goto done;
    }
    if (!need_store(c, cmd->tag) || !one_mailbox_arg(c, cmd, 0, 0, &from) ||
        !one_mailbox_arg(c, cmd, 1, 1, &to))
        goto done;
    const char *f = buf_cstr(&from), *t = buf_cstr(&to);
    int r = acl_lookup(c, f, NULL, 'x', NULL);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r == 1 && !c->is_admin && !same_owner(f, t)) r = CF_E_PERM;
    if (r == 1) r = may_create(c, t) == 1 ? 1 : CF_E_PERM;
    if (r == 1) {
        r = store_lookup(c->store, t, NULL);
        if (r == 1) r = taken_error(c, t);
    }
    /* the user's folders lie below their INBOX internally, but are its siblings in the user's
     * view: only other mailboxes cannot move inside themselves */
    int into_itself = !own_inbox(c, f) && mboxname_is_descendant(t, f);
    if (r == 0 && into_itself) r = CF_E_PERM;
    if (r == 0) {
        if (own_inbox(c, f)) {
            r = check_mailbox_limit(c, t);
            if (!r) r = rename_inbox(c, f, t);
        } else if (mboxname_is_inbox(t)) {
            r = CF_E_PARSE;   /* nobody's INBOX by renaming */
        } else {
            struct rename_check rc = { c, f };
            r = store_rename_with_check(c->store, f, t, rename_check, &rc);
            if (r > 0) r = 0;
        }
        if (r == CF_E_EXISTS) r = taken_error(c, t);
    }
    if (r) {
        if (r == CF_E_PERM && into_itself)
            client_tagged(c, cmd->tag, "NO [CANNOT] Cannot rename a mailbox into itself");
        else
            imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    if (own_inbox(c, f)) log_info("inbox_renamed", "new=%s", log_quote(t));
    client_tagged(c, cmd->tag, "OK RENAME completed");
done:
    buf_fini(&from);
    buf_fini(&to);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

/* RFC 3501 sections 6.3.6 and 6.3.7. A name need not exist (the RFC allows either; accepting
 * it also reveals nothing about mailboxes the user cannot see). */
static void subscribe(struct client *c, const struct imap_command *cmd, int add)
{
    struct buf name = BUF_INIT;
    if (cmd->nargs != 1) {
        client_tagged(c, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
        goto done;
    }
    if (!need_store(c, cmd->tag) || !one_mailbox_arg(c, cmd, 0, 0, &name)) goto done;
    /* max_subscriptions_per_user bounds the list (L8 of the 2026-12 review: LSUB reads it whole) */
    int r = add ? store_subscribe(c->store, c->user, buf_cstr(&name), 1)
                : store_unsubscribe(c->store, c->user, buf_cstr(&name));
    if (r) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
done:
    buf_fini(&name);
}

void cmd_subscribe(struct client *c, const struct imap_command *cmd) { subscribe(c, cmd, 1); }
void cmd_unsubscribe(struct client *c, const struct imap_command *cmd) { subscribe(c, cmd, 0); }

/* ---- STATUS ---- */

/* The STATUS items (RFC 3501; DELETED, DELETED-STORAGE: RFC 9208 section 4.2; SIZE: RFC
 * 8438; HIGHESTMODSEQ: RFC 7162) and their parser are in imap/imap-listopts.h. */

/* recent_count: messages that would be \Recent for the next session (RFC 3501 section
 * 2.3.2): those not yet claimed by any session. Opens a session view (the only way to count
 * them), so it is done only when RECENT is asked for. */
static int recent_count(struct store *st, const struct mboxlist_entry *e, const char *name,
                        uint32_t *out)
{
    struct mailbox *mb = NULL;
    *out = 0;
    const char *path = store_partition_path(st, e->partition);
    int r = path ? mailbox_open(path, e->uniqueid, name, &mb) : CF_E_NOTFOUND;
    if (r) return r;
    uint32_t first = 0, end = 0;
    r = mailbox_claim_recent(mb, 0, &first, &end);
    if (!r && first) {
        for (uint32_t m = mailbox_count(mb); m >= 1 && mailbox_uid(mb, m) >= first; m--)
            (*out)++;
    }
    mailbox_close(&mb);
    return r;
}

/* shared_unseen: UNSEEN of a shared mailbox for user, whose \Seen is kept per user in the
 * seen database (selected.h): the messages not in the user's seen set. Opens a session view
 * (the uids are needed), so only when UNSEEN is asked of a shared mailbox. */
static int shared_unseen(struct store *st, const struct mboxlist_entry *e, const char *name,
                         const char *user, uint32_t *out)
{
    struct buf text = BUF_INIT;
    struct imap_seqset set;
    imap_seqset_init(&set);
    struct mailbox *mb = NULL;
    const char *err = NULL;
    int r = store_seen_get(st, e->uniqueid, user, &text);
    if (r >= 0 && text.len && imap_seqset_parse(&set, text.s, text.len, &err) < 0)
        imap_seqset_clear(&set);                 /* a bad record reads as "nothing seen" */
    const char *path = store_partition_path(st, e->partition);
    r = r < 0 ? r : path ? mailbox_open(path, e->uniqueid, name, &mb) : CF_E_NOTFOUND;
    if (r == 0) {
        *out = 0;
        for (uint32_t m = 1; m <= mailbox_count(mb); m++)
            if (!imap_seqset_contains(&set, mailbox_uid(mb, m))) (*out)++;
        mailbox_close(&mb);
    }
    imap_seqset_fini(&set);
    buf_fini(&text);
    return r;
}

/* deleted_storage: RFC 9208 section 4.2.2: the KiB (rounded up, as the STORAGE usage of
 * cmd-quota.c) that expunging the \Deleted messages would give back: the sum of their sizes
 * from a walk of the index records (no message file is read). Opens a session view, so only
 * when DELETED-STORAGE is asked for and the header counts some \Deleted message. */
static int deleted_storage(struct store *st, const struct mboxlist_entry *e, const char *name,
                           uint64_t *out)
{
    struct mailbox *mb = NULL;
    *out = 0;
    const char *path = store_partition_path(st, e->partition);
    int r = path ? mailbox_open(path, e->uniqueid, name, &mb) : CF_E_NOTFOUND;
    if (r) return r;
    uint64_t bytes = 0;
    struct index_record rec;
    for (uint32_t m = 1; m <= mailbox_count(mb); m++) {
        int f = mailbox_record(mb, mailbox_uid(mb, m), &rec);
        if (f < 0) {
            r = f;
            break;
        }
        if (f == 1 && (rec.flags & FLAG_DELETED) && !(rec.flags & FLAG_EXPUNGED)) bytes += rec.size;
    }
    mailbox_close(&mb);
    if (!r) *out = bytes / 1024 + (bytes % 1024 != 0);
    return r;
}

/* status_mailboxid: RFC 8474 section 4.2: "MAILBOXID (id)" (after a space unless it is the
 * first item i == 0). The id is "F" and the mailbox's uniqueid, which a rename keeps and a
 * new mailbox never reuses (mboxlist.h). */
static void status_mailboxid(struct buf *out, size_t i, const struct mboxlist_entry *e)
{
    buf_printf(out, "%sMAILBOXID (F%s)", i ? " " : "", e->uniqueid);
}

/* status_append: "STATUS name (ITEM n ...)" (no "* ", no CRLF) for an existing mailbox into out.
 * UNSEEN comes from the index header's \Seen count (the owner's flags), or for a shared
 * mailbox from user's own seen set. 0 or a store error. */
static int status_append(struct client *c, const char *imapname, const char *name,
                         const struct mboxlist_entry *e, const unsigned *order, size_t n,
                         struct buf *out)
{
    struct store *st = c->store;
    const char *user = c->user;
    struct index_header h;
    const char *path = store_partition_path(st, e->partition);
    int r = path ? mailbox_status(path, e->uniqueid, &h) : CF_E_NOTFOUND;
    if (r) return r;
    uint32_t recent = 0, unseen = h.exists >= h.seen ? h.exists - h.seen : 0;
    uint64_t delstorage = 0;
    int shared = strncmp(name, MBOXNAME_USER_PREFIX, strlen(MBOXNAME_USER_PREFIX)) != 0;
    for (size_t i = 0; i < n; i++) {
        if (order[i] == IMAP_STATUS_RECENT && (r = recent_count(st, e, name, &recent))) return r;
        if (order[i] == IMAP_STATUS_UNSEEN && shared && user &&
            (r = shared_unseen(st, e, name, user, &unseen)))
            return r;
        if (order[i] == IMAP_STATUS_DELETED_STORAGE && h.deleted &&
            (r = deleted_storage(st, e, name, &delstorage)))
            return r;
    }
    buf_appends(out, "STATUS ");
    rev2_string_append(c, imapname, strlen(imapname), out);
    buf_appends(out, " (");
    for (size_t i = 0; i < n; i++) {
        if (order[i] == IMAP_STATUS_MAILBOXID) {
            status_mailboxid(out, i, e);
            continue;
        }
        uint64_t v = 0;
        const char *item = "";
        switch (order[i]) {
        case IMAP_STATUS_MESSAGES: item = "MESSAGES"; v = h.exists; break;
        case IMAP_STATUS_RECENT: item = "RECENT"; v = recent; break;
        case IMAP_STATUS_UIDNEXT: item = "UIDNEXT"; v = h.uidnext; break;
        case IMAP_STATUS_UIDVALIDITY: item = "UIDVALIDITY"; v = h.uidvalidity; break;
        case IMAP_STATUS_UNSEEN: item = "UNSEEN"; v = unseen; break;
        case IMAP_STATUS_DELETED: item = "DELETED"; v = h.deleted; break;
        /* RFC 8438: the sum of the RFC822.SIZEs, which the header keeps */
        case IMAP_STATUS_SIZE: item = "SIZE"; v = h.quota_used; break;
        case IMAP_STATUS_DELETED_STORAGE: item = "DELETED-STORAGE"; v = delstorage; break;
        /* RFC 7162 section 3.1.7: the value a SELECT would show (at least 1; in a shared
         * mailbox with per-user \Seen, the user's own scale: condstore.c) */
        case IMAP_STATUS_HIGHESTMODSEQ:
            item = "HIGHESTMODSEQ";
            v = condstore_status_highestmodseq(c, name, e->uniqueid, h.highestmodseq);
            break;
        /* RFC 7889 section 3.1: the largest message APPEND takes here, max_literal for every
         * mailbox (section 3.3: no ACL or quota in it); the capability says the same */
        case IMAP_STATUS_APPENDLIMIT:
            item = "APPENDLIMIT";
            v = (uint64_t)config_int(c->ws->cfg, CFG_MAX_LITERAL);
            break;
        }
        buf_printf(out, "%s%s %llu", i ? " " : "", item, (unsigned long long)v);
    }
    buf_putc(out, ')');
    return 0;
}

/* RFC 3501 section 6.3.10 (needs the 'r' right, RFC 4314 section 4). */
void cmd_status(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT, out = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    unsigned order[IMAP_STATUS_ITEMS_MAX];
    size_t n;
    if (cmd->nargs != 2 || imap_status_items_parse(&cmd->args[1], order, &n)) {
        client_tagged(c, cmd->tag, "BAD STATUS needs a mailbox name and a list of "
                      "MESSAGES, RECENT, UIDNEXT, UIDVALIDITY, UNSEEN, DELETED, "
                      "DELETED-STORAGE, SIZE, HIGHESTMODSEQ, APPENDLIMIT");
        goto done;
    }
    /* RFC 9051 section 6.3.11: rev2 has no RECENT status item (rev2.c) */
    if (!rev2_status_items_ok(c, order, n)) {
        client_tagged(c, cmd->tag, "BAD STATUS RECENT is not part of IMAP4rev2");
        goto done;
    }
    if (!need_store(c, cmd->tag) || !one_mailbox_arg(c, cmd, 0, 0, &name)) goto done;
    int r = acl_lookup(c, buf_cstr(&name), &e, 'r', NULL);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r == 1) {
        /* answer with the name as the client sent it (RFC 3501 section 7.2.4 example) */
        r = status_append(c, cmd->args[0].s, buf_cstr(&name), &e, order, n, &out);
    }
    if (r) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    client_untagged(c, "%s", buf_cstr(&out));
    client_tagged(c, cmd->tag, "OK STATUS completed");
done:
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    buf_fini(&out);
}

/* ---- LIST / LSUB ---- */

/* LIST-EXTENDED (RFC 5258) options: imap/imap-listopts.h parses them. */
struct list_rock {
    struct client *c;
    int lsub;
    struct imap_list_opts o;        /* o.extended: \NonExistent for \Noselect */
    struct mboxname_pattern *cpat[IMAP_LIST_PATTERNS_MAX];  /* compiled, UTF-8, ref joined */
    size_t ncpat;
    struct strarr parents;          /* sorted: ancestor levels already sent */
    struct strarr subs;             /* sorted: subscribed internal names (when needed) */
    const struct strarr *subscribed; /* LSUB: the subscribed internal names */
    struct strarr *collect;         /* collect_special_use: where the names go */
    struct strarr visible;          /* LIST "*": every mailbox the user sees, sorted ... */
    int visible_known;              /* ... and children are found in it (visible_children) */
    struct buf line, imapname, iname;
    int err;
};

/* sorted_find: where s is, or belongs, in the strcmp-sorted a; *found 1 when it is there. */
static size_t sorted_find(const struct strarr *a, const char *s, int *found)
{
    size_t lo = 0, hi = a->count;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(a->v[mid], s);
        if (!cmp) {
            *found = 1;
            return mid;
        }
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* sorted_add: s (copied) into the sorted a; 1 when added, 0 when it was there already. */
static int sorted_add(struct strarr *a, const char *s)
{
    int found;
    size_t at = sorted_find(a, s, &found);
    if (found) return 0;
    strarr_add(a, s);
    char *p = a->v[a->count - 1];
    memmove(&a->v[at + 1], &a->v[at], (a->count - 1 - at) * sizeof *a->v);
    a->v[at] = p;
    return 1;
}

static int is_subscribed(const struct list_rock *l, const char *name)
{
    int found;
    sorted_find(&l->subs, name, &found);
    return found;
}

/* special_use_attrs: the RFC 6154 section 2 attributes kept in the mailbox list entry's flags,
 * each appended to attrs after a space (attrs NULL: only counted). Returns how many. */
static size_t special_use_attrs(const struct mboxlist_entry *e, struct buf *attrs)
{
    struct strarr words = STRARR_INIT;
    size_t n = 0;
    strarr_split(&words, e->flags ? e->flags : "", " ", 1);
    for (size_t i = 0; i < words.count; i++) {
        const char *canon = special_use_canonical(words.v[i]);
        if (!canon) continue;
        n++;
        if (attrs) {
            buf_putc(attrs, ' ');
            buf_appends(attrs, canon);
        }
    }
    strarr_fini(&words);
    return n;
}

/* visible_children: 1 when some mailbox below internal name is one the user may see (RFC 5258
 * section 4: no \HasChildren for children the user cannot access), 0 when none, or an error.
 * Stops at the first visible one. */
static int kids_cb(const char *name, const struct mboxlist_entry *e, void *rock)
{
    return acl_has(rock, name, e->acl, 'l') ? 1 : 0;
}

static int visible_children(struct list_rock *l, const char *name)
{
    if (l->c->is_admin) return store_has_children(l->c->store, name);
    struct buf prefix = BUF_INIT;
    buf_appends(&prefix, name);
    buf_putc(&prefix, MBOXNAME_SEP);
    int r;
    if (l->visible_known) {
        /* names below name/ sort together, from the first one >= "name/" */
        int found;
        size_t i = sorted_find(&l->visible, buf_cstr(&prefix), &found);
        r = i < l->visible.count && !strncmp(l->visible.v[i], prefix.s, prefix.len);
    } else {
        r = store_mailbox_foreach(l->c->store, buf_cstr(&prefix), kids_cb, l->c);
    }
    buf_fini(&prefix);
    return r;
}

/* delete_has_children: visible_children for DELETE (no LIST state). */
static int delete_has_children(struct client *c, const char *name)
{
    struct list_rock l;
    memset(&l, 0, sizeof l);
    l.c = c;
    return visible_children(&l, name);
}

/* mailbox_attrs: the attributes of a mailbox the user sees (internal name, entry e) into
 * attrs: \HasChildren or \HasNoChildren (RFC 3348; RFC 5258 CHILDREN, given always), its
 * special-use attributes (RFC 6154, always) and, with the SUBSCRIBED return option,
 * \Subscribed. */
static void mailbox_attrs(struct list_rock *l, const char *name, const struct mboxlist_entry *e,
                          struct buf *attrs)
{
    /* the user's own INBOX has no children in their view: "INBOX/x" cannot exist, and the
     * folders stored below user/NAME are INBOX's siblings */
    int kids = own_inbox(l->c, name) ? 0 : visible_children(l, name);
    buf_appends(attrs, kids > 0 ? "\\HasChildren" : "\\HasNoChildren");
    special_use_attrs(e, attrs);
    if ((l->o.ret & IMAP_LIST_RET_SUBSCRIBED) && is_subscribed(l, name)) buf_appends(attrs, " \\Subscribed");
}

/* absent_attrs: the attributes of a name that is no mailbox the user sees (internal name, NULL
 * when it has none): \Noselect, or \NonExistent once LIST-EXTENDED syntax was used (RFC 5258
 * section 3: it implies \Noselect); \HasChildren when kids (-1: look it up); \Subscribed. */
static void absent_attrs(struct list_rock *l, const char *name, int kids, struct buf *attrs)
{
    buf_appends(attrs, l->o.extended ? "\\NonExistent" : "\\Noselect");
    if (kids < 0) kids = name ? visible_children(l, name) > 0 : 0;
    if (kids) buf_appends(attrs, " \\HasChildren");
    if (name && (l->o.ret & IMAP_LIST_RET_SUBSCRIBED) && is_subscribed(l, name))
        buf_appends(attrs, " \\Subscribed");
}

/* send_entry: one "* LIST (attrs) "/" name" line, with childinfo the RFC 5258 section 3.5
 * CHILDINFO extended data item naming the selection criteria (then the STATUS line when
 * asked for and e is a mailbox the user may read). */
static void send_entry(struct list_rock *l, const char *attrs, const char *extname,
                       const char *name, const struct mboxlist_entry *e, int childinfo)
{
    buf_reset(&l->imapname);
    if (rev2_ext_to_wire(l->c, extname, &l->imapname)) return;
    buf_reset(&l->line);
    buf_printf(&l->line, "%s (%s) \"%c\" ", l->lsub ? "LSUB" : "LIST", attrs, MBOXNAME_SEP);
    rev2_string_append(l->c, l->imapname.s, l->imapname.len, &l->line);
    if (childinfo) {
        buf_appends(&l->line, " (\"CHILDINFO\" (");
        const char *sep = "";
        if (l->o.sel & IMAP_LIST_SEL_SUBSCRIBED) {
            buf_appends(&l->line, "\"SUBSCRIBED\"");
            sep = " ";
        }
        if (l->o.sel & IMAP_LIST_SEL_SPECIAL_USE) buf_printf(&l->line, "%s\"SPECIAL-USE\"", sep);
        buf_appends(&l->line, "))");
    }
    client_untagged(l->c, "%s", buf_cstr(&l->line));
    if (l->o.nstatus && e && acl_has(l->c, name, e->acl, 'r')) {
        buf_reset(&l->line);
        /* a mailbox that vanished meanwhile just gets no STATUS line */
        if (!status_append(l->c, buf_cstr(&l->imapname), name, e, l->o.status,
                           l->o.nstatus, &l->line))
            client_untagged(l->c, "%s", buf_cstr(&l->line));
    }
}

/* send_named: the LIST line of extname, whatever it is: a mailbox the user may see, with its
 * attributes (and STATUS), else a name that is no mailbox (absent_attrs). */
static void send_named(struct list_rock *l, const char *extname, int childinfo)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct buf attrs = BUF_INIT;
    char *name = NULL;
    int exists = 0;
    if (!mboxname_from_external(l->c->user, extname, &l->iname)) {
        name = xstrdup(buf_cstr(&l->iname));
        exists = store_lookup(l->c->store, name, &e) == 1 && acl_has(l->c, name, e.acl, 'l');
    }
    if (exists) mailbox_attrs(l, name, &e, &attrs);
    else absent_attrs(l, name, -1, &attrs);
    send_entry(l, buf_cstr(&attrs), extname, name, exists ? &e : NULL, childinfo);
    buf_fini(&attrs);
    free(name);
    mboxlist_entry_fini(&e);
}

/* send_parent: a \Noselect ancestor, once (RFC 3501 section 6.3.8: "%" shows a level whose
 * children exist even when the level itself is no mailbox). An existing visible ancestor is
 * reported on its own instead. */
static void send_parent(struct list_rock *l, const char *anc)
{
    if (!sorted_add(&l->parents, anc)) return;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int exists = 0, named = 0;
    if (!mboxname_from_external(l->c->user, anc, &l->iname)) {
        named = 1;
        if (l->lsub) {
            exists = strarr_find(l->subscribed, buf_cstr(&l->iname)) >= 0;
        } else if (store_lookup(l->c->store, buf_cstr(&l->iname), &e) == 1) {
            exists = acl_has(l->c, buf_cstr(&l->iname), e.acl, 'l');
        }
    }
    mboxlist_entry_fini(&e);
    if (exists) return;
    if (l->lsub) {
        send_entry(l, "\\Noselect", anc, NULL, NULL, 0);
        return;
    }
    struct buf attrs = BUF_INIT;
    char *name = named ? xstrdup(buf_cstr(&l->iname)) : NULL;
    absent_attrs(l, name, 1, &attrs);
    send_entry(l, buf_cstr(&attrs), anc, NULL, NULL, 0);
    free(name);
    buf_fini(&attrs);
}

/* list_visible: LIST shows only what the user has 'l' on (RFC 4314 section 4); tested
 * before the pattern is matched (store_list). */
static int list_visible(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct list_rock *l = rock;
    return acl_has(l->c, name, e->acl, 'l');
}

/* list_store: the store's LIST scan for c: an administrator sees every mailbox, so reads the
 * whole list; anyone else only what the grant index names outside their own hierarchy. */
static int list_store(struct client *c, const char *pattern, store_visible_fn *visible,
                      store_list_fn *cb, void *rock)
{
    if (c->is_admin) return store_list(c->store, c->user, pattern, visible, cb, rock);
    return store_list_granted(c->store, c->user, pattern, visible, cb, rock);
}

/* LIST "*" (list_or_lsub): every mailbox the user sees is kept (its names, entry) until the
 * scan ends, then sent with \HasChildren found among them (visible_children). */
struct listed {
    char *extname, *name;
    size_t matchlen;
    struct mboxlist_entry e;
};

struct listed_all {
    struct list_rock *l;
    struct listed *v;
    size_t n, cap;
};

/* keep_visible: list_visible for keep_cb's rock (one rock goes to both) */
static int keep_visible(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct listed_all *a = rock;
    return acl_has(a->l->c, name, e->acl, 'l');
}

static int keep_cb(const char *extname, size_t matchlen, const char *name,
                   const struct mboxlist_entry *e, void *rock)
{
    struct listed_all *a = rock;
    if (!acl_has(a->l->c, name, e->acl, 'l')) return 0;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 32;
        a->v = xreallocarray(a->v, a->cap, sizeof *a->v);
    }
    struct listed *it = &a->v[a->n++];
    it->extname = xstrdup(extname);
    it->name = xstrdup(name);
    it->matchlen = matchlen;
    mboxlist_entry_init(&it->e);
    it->e.partition = xstrdup(e->partition ? e->partition : "");
    memcpy(it->e.uniqueid, e->uniqueid, sizeof it->e.uniqueid);
    it->e.acl = xstrdup(e->acl ? e->acl : "");
    it->e.flags = xstrdup(e->flags ? e->flags : "");
    it->e.ctime = e->ctime;
    strarr_add(&a->l->visible, name);
    return 0;
}

static int list_cb(const char *extname, size_t matchlen, const char *name,
                   const struct mboxlist_entry *e, void *rock);

/* list_all_visible: LIST "" "*" of a user who is no administrator: one scan of what the user
 * sees, then each line, its \HasChildren from the names kept rather than from a scan of the
 * mailbox list per name (a B-tree descent each: 26 for a user of 20 folders, about 1 us more
 * each at 2,000,000 mailboxes; docs/perf/many-users.md). */
static int list_all_visible(struct list_rock *l, const char *pattern)
{
    struct listed_all a = { .l = l };
    int r = list_store(l->c, pattern, keep_visible, keep_cb, &a);
    strarr_sort(&l->visible);
    l->visible_known = 1;
    for (size_t i = 0; i < a.n; i++) {
        if (!r) r = list_cb(a.v[i].extname, a.v[i].matchlen, a.v[i].name, &a.v[i].e, l);
        free(a.v[i].extname);
        free(a.v[i].name);
        mboxlist_entry_fini(&a.v[i].e);
    }
    free(a.v);
    return r;
}

static int list_cb(const char *extname, size_t matchlen, const char *name,
                   const struct mboxlist_entry *e, void *rock)
{
    struct list_rock *l = rock;
    struct client *c = l->c;
    if (!acl_has(c, name, e->acl, 'l')) return 0;
    if (matchlen != strlen(extname)) {
        char *anc = xstrndup(extname, matchlen);
        send_parent(l, anc);
        free(anc);
        return 0;
    }
    struct buf attrs = BUF_INIT;
    mailbox_attrs(l, name, e, &attrs);
    send_entry(l, buf_cstr(&attrs), extname, name, e, 0);
    buf_fini(&attrs);
    return 0;
}

/* list_multi_cb: LIST with several patterns (RFC 5258 section 3): every visible mailbox comes
 * here once (pattern "*"), and is sent when some pattern matches it; the levels above it that
 * patterns stop at are sent once each (send_parent). */
static int list_multi_cb(const char *extname, size_t matchlen, const char *name,
                         const struct mboxlist_entry *e, void *rock)
{
    struct list_rock *l = rock;
    int full = 0;
    (void)matchlen;
    for (size_t i = 0; i < l->ncpat; i++) {
        size_t anc = 0;
        if (mboxname_pattern_run(l->cpat[i], extname, &anc)) {
            full = 1;
        } else if (anc) {
            char *a = xstrndup(extname, anc);
            send_parent(l, a);
            free(a);
        }
    }
    return full ? list_cb(extname, strlen(extname), name, e, rock) : 0;
}

static int match_any(struct list_rock *l, const char *extname)
{
    for (size_t i = 0; i < l->ncpat; i++)
        if (mboxname_pattern_run(l->cpat[i], extname, NULL)) return 1;
    return 0;
}

/* collect_special_use: the visible mailboxes with a special-use attribute (the SPECIAL-USE
 * selection option alone), their external names into l->collect. */
static int collect_special_use(const char *extname, size_t matchlen, const char *name,
                               const struct mboxlist_entry *e, void *rock)
{
    struct list_rock *l = rock;
    (void)name;
    if (matchlen == strlen(extname) && special_use_attrs(e, NULL)) strarr_add(l->collect, extname);
    return 0;
}

/* list_selected: LIST with the selection options SUBSCRIBED and/or SPECIAL-USE (RFC 5258
 * section 3.1, RFC 6154 section 3): the names meeting every criterion that a pattern matches
 * (a subscribed name that is no visible mailbox as \NonExistent), without the levels above
 * them; with RECURSIVEMATCH (section 3.5) also each matching ancestor of a name that meets
 * the criteria but matches no pattern, with CHILDINFO (an ancestor meeting the criteria
 * itself gets it too). Sent in byte order of the external names. 0 or an error. */
static int list_selected(struct list_rock *l)
{
    struct strarr qual = STRARR_INIT, hit = STRARR_INIT, info = STRARR_INIT;
    struct buf ext = BUF_INIT;
    int r = 0;
    if (l->o.sel & IMAP_LIST_SEL_SUBSCRIBED) {
        for (size_t i = 0; i < l->subs.count; i++) {
            if (mboxname_to_external(l->c->user, l->subs.v[i], &ext)) continue;
            if (l->o.sel & IMAP_LIST_SEL_SPECIAL_USE) {
                struct mboxlist_entry e;
                mboxlist_entry_init(&e);
                int ok = store_lookup(l->c->store, l->subs.v[i], &e) == 1 &&
                         acl_has(l->c, l->subs.v[i], e.acl, 'l') && special_use_attrs(&e, NULL);
                mboxlist_entry_fini(&e);
                if (!ok) continue;
            }
            strarr_add(&qual, buf_cstr(&ext));
        }
    } else {
        l->collect = &qual;
        r = list_store(l->c, "*", list_visible, collect_special_use, l);
        l->collect = NULL;
        if (r < 0) goto done;
        r = 0;
    }
    for (size_t i = 0; i < qual.count; i++) {
        const char *q = qual.v[i];
        if (match_any(l, q)) {
            strarr_add(&hit, q);
            continue;
        }
        if (!(l->o.sel & IMAP_LIST_SEL_RECURSIVEMATCH)) continue;
        char *anc = xstrdup(q);
        for (char *p = strrchr(anc, MBOXNAME_SEP); p; p = strrchr(anc, MBOXNAME_SEP)) {
            *p = '\0';
            if (*anc && match_any(l, anc)) strarr_add(&info, anc);
        }
        free(anc);
    }
    /* the union of hit and info, in order, each name once (sorted once: the lists can hold
     * every special-use mailbox an administrator sees) */
    strarr_sort(&hit);
    strarr_sort(&info);
    size_t a = 0, b = 0;
    const char *last = NULL;
    while (a < hit.count || b < info.count) {
        int cmp = a == hit.count ? 1 : b == info.count ? -1 : strcmp(hit.v[a], info.v[b]);
        const char *name = cmp <= 0 ? hit.v[a] : info.v[b];
        int childinfo = cmp >= 0;
        if (cmp <= 0) a++;
        if (cmp >= 0) b++;
        if (last && !strcmp(last, name)) continue;   /* a repeat within hit or info */
        last = name;
        send_named(l, name, childinfo);
    }
done:
    buf_fini(&ext);
    strarr_fini(&qual);
    strarr_fini(&hit);
    strarr_fini(&info);
    return r;
}

/* lsub_all: RFC 3501 section 6.3.9: the subscribed names matching the pattern, and the
 * \Noselect levels above subscribed names that "%" stops at. */
static void lsub_all(struct list_rock *l)
{
    struct strarr subs = STRARR_INIT;
    struct buf ext = BUF_INIT;
    l->subscribed = &subs;
    int r = store_subscriptions(l->c->store, l->c->user, &subs);
    if (r) l->err = r;
    for (size_t i = 0; !r && i < subs.count; i++) {
        if (mboxname_to_external(l->c->user, subs.v[i], &ext)) continue;
        const char *x = buf_cstr(&ext);
        size_t m = 0;
        if (mboxname_pattern_run(l->cpat[0], x, &m)) {
            struct mboxlist_entry e;
            mboxlist_entry_init(&e);
            int found = store_lookup(l->c->store, subs.v[i], &e) == 1 &&
                        acl_has(l->c, subs.v[i], e.acl, 'l');
            send_entry(l, found ? "" : "\\Noselect", x, NULL, NULL, 0);
            mboxlist_entry_fini(&e);
        } else {
            if (m) {
                char *anc = xstrndup(x, m);
                send_parent(l, anc);
                free(anc);
            }
        }
    }
    l->subscribed = NULL;
    buf_fini(&ext);
    strarr_fini(&subs);
}

/* RFC 3501 sections 6.3.8 (LIST) and 6.3.9 (LSUB), RFC 5258 (LIST-EXTENDED). The reference
 * and each pattern are joined (RFC 3501 leaves the interpretation to the server; joining is
 * what clients expect: LIST "Other Users/" "%"). An empty pattern asks for the separator and
 * the root. */
static void list_or_lsub(struct client *c, const struct imap_command *cmd, int lsub)
{
    struct list_rock l;
    memset(&l, 0, sizeof l);
    l.c = c;
    l.lsub = lsub;
    struct buf pat = BUF_INIT, utf8 = BUF_INIT;
    const char *ref = NULL, *why = NULL;
    const struct imap_arg *pats = NULL;
    size_t npats = 0;
    int r = 0;
    if (lsub) {
        ref = cmd->nargs == 2 ? imap_arg_astring(&cmd->args[0]) : NULL;
        pats = &cmd->args[1];
        npats = 1;
        if (!ref || !imap_arg_astring(pats)) {
            client_tagged(c, cmd->tag, "BAD LSUB needs a reference and a mailbox pattern");
            goto done;
        }
    } else if (imap_list_opts_parse(cmd->args, cmd->nargs, &l.o, &why)) {
        client_tagged(c, cmd->tag, "BAD %s", why);
        goto done;
    } else if (!rev2_status_items_ok(c, l.o.status, l.o.nstatus)) {
        client_tagged(c, cmd->tag, "BAD STATUS RECENT is not part of IMAP4rev2");
        goto done;
    } else {
        ref = l.o.ref;
        pats = l.o.pats;
        npats = l.o.npats;
    }
    if (!need_store(c, cmd->tag)) goto done;
    if (npats == 1 && !*imap_arg_astring(pats) && !lsub) {
        /* RFC 3501 section 6.3.8: the delimiter, and the root of the reference: a namespace
         * prefix when the reference is in one, else "" */
        const char *root = "";
        if (!strncmp(ref, MBOXNAME_NS_OTHER, strlen(MBOXNAME_NS_OTHER))) root = MBOXNAME_NS_OTHER;
        if (!strncmp(ref, MBOXNAME_NS_SHARED, strlen(MBOXNAME_NS_SHARED))) root = MBOXNAME_NS_SHARED;
        client_untagged(c, "LIST (\\Noselect) \"%c\" \"%s\"", MBOXNAME_SEP, root);
        client_tagged(c, cmd->tag, "OK LIST completed");
        goto done;
    }
    const char *single = NULL;   /* the one valid pattern, UTF-8 */
    for (size_t i = 0; i < npats; i++) {
        buf_reset(&pat);
        buf_reset(&utf8);
        buf_appends(&pat, ref);
        buf_appends(&pat, imap_arg_astring(&pats[i]));
        /* a pattern that is no valid modified UTF-7 can match no name */
        int utf8_ok = pat.len <= MBOXNAME_PATTERN_MAX &&
                      !rev2_pattern_from_wire(c, buf_cstr(&pat), &utf8);
        /* matching costs time in proportion to the pattern, for every mailbox (review M6) */
        if (pat.len > MBOXNAME_PATTERN_MAX || (utf8_ok && utf8.len > MBOXNAME_PATTERN_MAX)) {
            client_tagged(c, cmd->tag, "NO [LIMIT] Mailbox pattern too long (limit %d bytes)",
                          MBOXNAME_PATTERN_MAX);
            goto done;
        }
        if (!utf8_ok) continue;
        r = mboxname_pattern_new(buf_cstr(&utf8), &l.cpat[l.ncpat]);
        if (r) goto fail;
        l.ncpat++;
        if (npats == 1) single = buf_cstr(&utf8);
    }
    if (l.ncpat && (l.o.ret & IMAP_LIST_RET_SUBSCRIBED)) {
        r = store_subscriptions(c->store, c->user, &l.subs);
        if (r) goto fail;
        strarr_sort(&l.subs);
    }
    if (!l.ncpat) {
        r = 0;
    } else if (lsub) {
        lsub_all(&l);
        r = l.err;
    } else if (l.o.sel & (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_SPECIAL_USE)) {
        r = list_selected(&l);
    } else if (single && !strcmp(single, "*") && !c->is_admin) {
        r = list_all_visible(&l, single);   /* every mailbox the user sees is listed */
    } else if (single) {
        r = list_store(c, single, list_visible, list_cb, &l);
    } else {
        r = list_store(c, "*", list_visible, list_multi_cb, &l);
    }
fail:
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
done:
    for (size_t i = 0; i < l.ncpat; i++) mboxname_pattern_free(&l.cpat[i]);
    strarr_fini(&l.parents);
    strarr_fini(&l.subs);
    strarr_fini(&l.visible);
    buf_fini(&l.line);
    buf_fini(&l.imapname);
    buf_fini(&l.iname);
    buf_fini(&pat);
    buf_fini(&utf8);
}

void cmd_list(struct client *c, const struct imap_command *cmd) { list_or_lsub(c, cmd, 0); }
void cmd_lsub(struct client *c, const struct imap_command *cmd) { list_or_lsub(c, cmd, 1); }

/* ---- NAMESPACE ---- */

/* RFC 2342 section 5: personal, other users', shared; the prefixes come from mboxname.h. */
void cmd_namespace(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_tagged(c, cmd->tag, "BAD NAMESPACE takes no arguments");
        return;
    }
    client_untagged(c, "NAMESPACE ((\"\" \"%c\")) ((\"%s\" \"%c\")) ((\"%s\" \"%c\"))",
                    MBOXNAME_SEP, MBOXNAME_NS_OTHER, MBOXNAME_SEP, MBOXNAME_NS_SHARED,
                    MBOXNAME_SEP);
    client_tagged(c, cmd->tag, "OK NAMESPACE completed");
}
