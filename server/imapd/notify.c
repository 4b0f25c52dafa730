/* notify.c: NOTIFY (RFC 5465). The session keeps the mailboxes its filters name, each with
 * the events of the first filter that matches it (RFC 5465 section 6), the rights it has
 * there and the counters last told. Commits to those mailboxes are noticed through one
 * inotify instance (store/mailbox-watch.h: the index header, never the message files), and
 * then only their index headers are read; the mailbox list, the subscriptions and the rights
 * (MailboxName, SubscriptionChange, ACL changes: section 5.9) and the annotations
 * (MailboxMetadataChange, ServerMetadataChange: sections 5.7 and 5.8, required with METADATA)
 * are looked at again at most every NOTIFY_SCAN_MS. Notifications go out between commands, at command boundaries and
 * during IDLE; the selected mailbox keeps its own updates (selected.c). */
#include "notify.h"
#include "imapd.h"
#include "selected.h"
#include "acl-check.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "imap/imap-memsource.h"
#include "imap/notify-parse.h"
#include "net/stream.h"
#include "net/worker.h"
#include "store/mailbox-watch.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The events this server delivers (RFC 5465 section 3.1: BADEVENT lists them). */
#define SUPPORTED_EVENTS (NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE | \
                          NOTIFY_EV_FLAG_CHANGE | NOTIFY_EV_MAILBOX_NAME | \
                          NOTIFY_EV_SUBSCRIPTION_CHANGE | NOTIFY_EV_MAILBOX_METADATA_CHANGE | \
                          NOTIFY_EV_SERVER_METADATA_CHANGE)
#define BADEVENT_TEXT "BADEVENT (MessageNew MessageExpunge FlagChange MailboxName " \
                      "SubscriptionChange MailboxMetadataChange ServerMetadataChange)"

/* One filter of NOTIFY SET, with its names made internal. */
struct nfilter {
    enum notify_filter filter;
    struct strarr names;            /* SUBTREE, MAILBOXES */
    unsigned events;
};

/* One mailbox a filter matched (and the user may list). */
struct nbox {
    char *name;                     /* internal */
    char uniqueid[MBOXLIST_UNIQUEID_LEN + 1];
    char *partition;
    unsigned events;
    int readable;                   /* 'r': message events are told */
    int wd;                         /* watch id, -1 when not watched */
    int dirty;                      /* a commit was seen since the counters were read */
    int known;                      /* the counters below were read */
    uint32_t messages, uidnext, uidvalidity, unseen;
    char rights[ACL_RIGHTS_SIZE];   /* the user's rights when last scanned */
    struct strarr meta;             /* MailboxMetadataChange: "ENTRY\tDIGEST", sorted */
    int meta_known;                 /* meta was read */
    uint64_t modseq;                /* the index header's highestmodseq (FlagChange) */
};

struct notify {
    struct nfilter *filters;
    size_t nfilters;
    unsigned sel_events;            /* the SELECTED / SELECTED-DELAYED group's events */
    int sel_delayed;
    char *fetch_atts;               /* MessageNew's fetch-att list as text, or NULL */
    int status;                     /* NOTIFY SET STATUS (only at SET) */
    struct nbox *boxes;
    size_t nboxes;
    struct strarr subs;             /* subscribed names a SubscriptionChange filter matches */
    struct mailbox_watchset *ws;
    int sel_wd;                     /* watch on the selected mailbox (IDLE, between commands) */
    char *sel_name;
    int64_t next_scan;
    int all_dirty;                  /* events were lost: read every counter */
    int server_meta_events;         /* a filter asked for ServerMetadataChange */
    struct strarr server_meta;      /* the server's entries the user reads, as nbox.meta */
    int server_meta_known;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void boxes_free(struct nbox *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(b[i].name);
        free(b[i].partition);
        strarr_fini(&b[i].meta);
    }
    free(b);
}

void notify_free(struct notify **np)
{
    struct notify *n = *np;
    if (!n) return;
    for (size_t i = 0; i < n->nfilters; i++) strarr_fini(&n->filters[i].names);
    free(n->filters);
    free(n->fetch_atts);
    boxes_free(n->boxes, n->nboxes);
    strarr_fini(&n->subs);
    strarr_fini(&n->server_meta);
    mailbox_watchset_free(&n->ws);
    free(n->sel_name);
    free(n);
    *np = NULL;
}

int notify_active(const struct client *c) { return c->notify != NULL; }

/* ---- which mailboxes ---- */

/* match: the events of the first filter matching internal name (subscribed: whether it is
 * subscribed), and 1; 0 when none matches. The selected filters match no name here. */
static int match(const struct client *c, const struct notify *n, const char *inbox,
                 const char *name, int subscribed, unsigned *events)
{
    for (size_t i = 0; i < n->nfilters; i++) {
        const struct nfilter *f = &n->filters[i];
        int hit = 0;
        switch (f->filter) {
        case NOTIFY_SELECTED:
        case NOTIFY_SELECTED_DELAYED:
            break;
        case NOTIFY_INBOXES:
            hit = !strcmp(name, inbox);
            break;
        case NOTIFY_PERSONAL:
            hit = !strcmp(name, inbox) || mboxname_is_descendant(name, inbox);
            break;
        case NOTIFY_SUBSCRIBED:
            hit = subscribed;
            break;
        case NOTIFY_SUBTREE:
            for (size_t k = 0; !hit && k < f->names.count; k++)
                hit = !strcmp(name, f->names.v[k]) || mboxname_is_descendant(name, f->names.v[k]);
            break;
        case NOTIFY_MAILBOXES:
            hit = strarr_find(&f->names, name) >= 0;
            break;
        }
        if (hit) {
            *events = f->events;
            return 1;
        }
    }
    (void)c;
    return 0;
}

struct collect {
    struct strarr *names;
    const char *inbox;              /* NULL: every name under the prefix */
    size_t cap;                     /* stop (CF_E_LIMIT) past this many names; 0: no cap */
};

static int collect_cb(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct collect *k = rock;
    (void)e;
    if (!k->inbox || !strcmp(name, k->inbox) || mboxname_is_descendant(name, k->inbox))
        strarr_add(k->names, name);
    /* a SUBTREE over other users' or shared folders must not make every scan walk the whole
     * mailbox list: past the cap the request is too expensive (RFC 5465 section 3.1) */
    return k->cap && k->names->count > k->cap ? CF_E_LIMIT : 0;
}

/* candidates: every internal name a filter may match, sorted and unique; subs gets the
 * user's subscriptions. 0 or a store error. */
static int candidates(struct client *c, const struct notify *n, const char *inbox,
                      struct strarr *out, struct strarr *subs)
{
    int r = store_subscriptions(c->store, c->user, subs);
    if (r < 0) return r;
    strarr_sort(subs);
    struct buf prefix = BUF_INIT;
    int64_t limit = config_int(c->ws->cfg, CFG_NOTIFY_MAX_MAILBOXES);
    /* names only looked at (MailboxName, NONE) cost a lookup each per scan: bounded too,
     * with room for a personal hierarchy of max_mailboxes_per_user */
    size_t cap = limit > 0 ? (size_t)limit * 10 + 1000 : 0;
    for (size_t i = 0; i < n->nfilters && r >= 0; i++) {
        const struct nfilter *f = &n->filters[i];
        struct collect k = { out, NULL, cap };
        switch (f->filter) {
        case NOTIFY_INBOXES:
            strarr_add(out, inbox);
            break;
        case NOTIFY_PERSONAL:
            k.inbox = inbox;
            r = store_mailbox_foreach_tree(c->store, inbox, collect_cb, &k);
            break;
        case NOTIFY_SUBSCRIBED:
            for (size_t s = 0; s < subs->count; s++) strarr_add(out, subs->v[s]);
            break;
        case NOTIFY_SUBTREE:
            for (size_t s = 0; s < f->names.count && r >= 0; s++) {
                strarr_add(out, f->names.v[s]);
                buf_reset(&prefix);
                buf_printf(&prefix, "%s%c", f->names.v[s], MBOXNAME_SEP);
                r = store_mailbox_foreach(c->store, buf_cstr(&prefix), collect_cb, &k);
            }
            break;
        case NOTIFY_MAILBOXES:
            for (size_t s = 0; s < f->names.count; s++) strarr_add(out, f->names.v[s]);
            break;
        default:
            break;
        }
    }
    buf_fini(&prefix);
    strarr_sort(out);
    for (size_t i = 1; i < out->count;) {
        if (!strcmp(out->v[i], out->v[i - 1])) strarr_remove(out, i);
        else i++;
    }
    return r < 0 ? r : 0;
}

/* ---- responses ---- */

/* imapname_append: name as the client sees it, as an IMAP string. */
static void imapname_append(const struct client *c, const char *name, struct buf *out)
{
    struct buf b = BUF_INIT;
    if (rev2_name_to_wire(c, name, &b) == 0) rev2_string_append(c, b.s, b.len, out);
    else imap_string_append(out, name, strlen(name));
    buf_fini(&b);
}

/* send_list: "* LIST (attrs) "/" name" [with OLDNAME]. */
static void send_list(struct client *c, const char *attrs, const char *name, const char *oldname)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "LIST (%s) \"%c\" ", attrs, MBOXNAME_SEP);
    imapname_append(c, name, &b);
    if (oldname) {
        /* RFC 5465 section 5.4: the extended LIST response of RFC 5258 with OLDNAME */
        buf_appends(&b, " (\"OLDNAME\" (");
        imapname_append(c, oldname, &b);
        buf_appends(&b, "))");
    }
    client_untagged(c, "%s", buf_cstr(&b));
    buf_fini(&b);
}

/* send_status: "* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n UNSEEN n [HIGHESTMODSEQ n])"
 * from the box's counters (RFC 5465 sections 5.1-5.3 ask for at least UIDNEXT and MESSAGES; UIDVALIDITY
 * with STATUS at NOTIFY SET, section 3.1). */
static void send_status(struct client *c, const struct nbox *bx)
{
    struct buf b = BUF_INIT;
    buf_appends(&b, "STATUS ");
    imapname_append(c, bx->name, &b);
    buf_printf(&b, " (MESSAGES %u UIDNEXT %u UIDVALIDITY %u UNSEEN %u", (unsigned)bx->messages,
               (unsigned)bx->uidnext, (unsigned)bx->uidvalidity, (unsigned)bx->unseen);
    /* RFC 5465 sections 5.2 and 5.3: with CONDSTORE enabled, HIGHESTMODSEQ too (the value a
     * SELECT would show: condstore.c) */
    struct index_header h;
    const char *path = store_partition_path(c->store, bx->partition);
    if ((c->enabled & CLIENT_ENABLED_CONDSTORE) && path &&
        mailbox_status(path, bx->uniqueid, &h) == 0)
        buf_printf(&b, " HIGHESTMODSEQ %llu", (unsigned long long)condstore_status_highestmodseq(
                                                   c, bx->name, bx->uniqueid, h.highestmodseq));
    buf_putc(&b, ')');
    client_untagged(c, "%s", buf_cstr(&b));
    buf_fini(&b);
}

/* read_counters: the box's counters from its index header (and, for a shared mailbox, the
 * user's own \Seen set), and its highestmodseq into *modseq. 0 or a store error (the mailbox
 * vanished: the next scan sees it). */
static int read_counters(struct client *c, struct nbox *bx, uint32_t *v, uint64_t *modseq)
{
    struct index_header h;
    const char *path = store_partition_path(c->store, bx->partition);
    int r = path ? mailbox_status(path, bx->uniqueid, &h) : CF_E_NOTFOUND;
    if (r < 0) return r;
    v[0] = h.exists;
    v[1] = h.uidnext;
    v[2] = h.uidvalidity;
    v[3] = h.exists >= h.seen ? h.exists - h.seen : 0;
    *modseq = h.highestmodseq;
    return 0;
}

/* ---- the scan: mailbox list, subscriptions, rights ---- */

/* overflow: RFC 5465 section 5.8: tell, and behave as after NOTIFY NONE. */
static void overflow(struct client *c)
{
    client_untagged(c, "OK [NOTIFICATIONOVERFLOW] Too many mailboxes to watch; NOTIFY is off");
    log_info("imap_notify_overflow", "limit=%lld",
             (long long)config_int(c->ws->cfg, CFG_NOTIFY_MAX_MAILBOXES));
    notify_free(&c->notify);
}

/* sorted_has: 1 when s is in a (sorted with strarr_sort). */
static int sorted_has(const struct strarr *a, const char *s)
{
    size_t lo = 0, hi = a->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(a->v[mid], s);
        if (!cmp) return 1;
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static struct nbox *find_uid(struct nbox *b, size_t n, const char *uniqueid)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(b[i].uniqueid, uniqueid)) return &b[i];
    return NULL;
}

static int is_selected(const struct client *c, const char *name)
{
    return c->sel && c->state == CLIENT_SELECTED && !strcmp(c->sel->name, name);
}

/* ---- annotations (RFC 5465 sections 5.7 and 5.8) ---- */

/* meta_one: "ENTRY\tLEN.HASH" for one entry: its value's length and FNV-1a hash tell a change
 * without keeping the value */
static int meta_one(const char *entry, const char *val, size_t len, void *rock)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)val[i];
        h *= 1099511628211ULL;
    }
    strarr_take(rock, xasprintf("%s\t%zu.%016llx", entry, len, (unsigned long long)h));
    return 0;
}

/* meta_snapshot: the entries of uniqueid the user may read with rights (NULL: the server's,
 * shared and the user's own private ones), sorted, into out (reset first). The rights rule is
 * cmd-metadata.c's: "l" and one of "r s w i p", "r" for shared entries. 0 or a store error. */
static int meta_snapshot(struct client *c, const char *uniqueid, const char *rights,
                         struct strarr *out)
{
    strarr_fini(out);
    int any = !rights || (strchr(rights, 'l') && strpbrk(rights, "rswip"));
    int shared = !rights || (any && strchr(rights, 'r'));
    int r = shared ? store_metadata_foreach(c->store, uniqueid, NULL, "/shared", -1, meta_one, out)
                   : 0;
    if (r >= 0 && any)
        r = store_metadata_foreach(c->store, uniqueid, c->user, "/private", -1, meta_one, out);
    strarr_sort(out);
    return r < 0 ? r : 0;
}

/* meta_tell: "* METADATA name ENTRY ..." with the entries that differ between old and now
 * (RFC 5464 section 4.4.2, entry names only); nothing when none does. name NULL: the server. */
static void meta_tell(struct client *c, const char *name, const struct strarr *old,
                      const struct strarr *now)
{
    struct strarr changed = STRARR_INIT;
    for (int pass = 0; pass < 2; pass++) {
        const struct strarr *a = pass ? now : old, *b = pass ? old : now;
        for (size_t i = 0; i < a->count; i++) {
            if (sorted_has(b, a->v[i])) continue;
            const char *tab = strchr(a->v[i], '\t');
            char *entry = xstrndup(a->v[i], tab ? (size_t)(tab - a->v[i]) : strlen(a->v[i]));
            if (strarr_find(&changed, entry) < 0) strarr_take(&changed, entry);
            else free(entry);
        }
    }
    if (changed.count) {
        struct buf b = BUF_INIT;
        buf_appends(&b, "METADATA ");
        if (name) imapname_append(c, name, &b);
        else buf_appends(&b, "\"\"");
        strarr_sort(&changed);
        for (size_t i = 0; i < changed.count; i++) {
            buf_putc(&b, ' ');
            imap_astring_append(&b, changed.v[i], strlen(changed.v[i]));
        }
        client_untagged(c, "%s", buf_cstr(&b));
        buf_fini(&b);
    }
    strarr_fini(&changed);
}

/* meta_scan: the annotations of the mailboxes in nb that ask for MailboxMetadataChange and of
 * the server, compared with what the last scan (old boxes) saw, told when tell */
static void meta_scan(struct client *c, struct notify *n, struct nbox *nb, size_t nn, int tell)
{
    for (size_t i = 0; i < nn; i++) {
        struct nbox *bx = &nb[i];
        if (!(bx->events & NOTIFY_EV_MAILBOX_METADATA_CHANGE)) continue;
        if (meta_snapshot(c, bx->uniqueid, bx->rights, &bx->meta) < 0) continue;
        bx->meta_known = 1;
        struct nbox *old = find_uid(n->boxes, n->nboxes, bx->uniqueid);
        if (tell && old && old->meta_known) meta_tell(c, bx->name, &old->meta, &bx->meta);
    }
    if (!n->server_meta_events) return;
    struct strarr now = STRARR_INIT;
    if (meta_snapshot(c, STORE_METADATA_SERVER, NULL, &now) == 0) {
        if (tell && n->server_meta_known) meta_tell(c, NULL, &n->server_meta, &now);
        strarr_fini(&n->server_meta);
        n->server_meta = now;
        n->server_meta_known = 1;
    } else {
        strarr_fini(&now);
    }
}

/* scan: the mailboxes and subscriptions as they are now into n; with tell, LIST responses for
 * the mailbox names and subscriptions that changed since the last scan (first: none, but
 * \NoAccess for listable mailboxes without 'r', and STATUS for each with status). 0; CF_E_LIMIT
 * when more than notify_max_mailboxes would be watched (n unchanged); another error when the
 * store failed (n unchanged; tried again later). */
static int scan(struct client *c, struct notify *n, int tell, int first)
{
    struct buf inbox = BUF_INIT;
    struct strarr names = STRARR_INIT, subs = STRARR_INIT, newsubs = STRARR_INIT;
    struct nbox *nb = NULL;
    size_t nn = 0, watched = 0;
    int64_t limit = config_int(c->ws->cfg, CFG_NOTIFY_MAX_MAILBOXES);
    mboxname_user_inbox(c->user, &inbox);
    int r = candidates(c, n, buf_cstr(&inbox), &names, &subs);
    if (r == 0 && limit > 0 && names.count > (size_t)limit * 10 + 1000) r = CF_E_LIMIT;
    if (r < 0) goto out;
    nb = xreallocarray(NULL, names.count + 1, sizeof *nb);
    for (size_t i = 0; i < names.count; i++) {
        const char *name = names.v[i];
        int subscribed = sorted_has(&subs, name);
        unsigned ev = 0;
        if (!match(c, n, buf_cstr(&inbox), name, subscribed, &ev)) continue;
        if (subscribed && (ev & NOTIFY_EV_SUBSCRIPTION_CHANGE)) strarr_add(&newsubs, name);
        if (!ev) continue;
        struct mboxlist_entry e;
        mboxlist_entry_init(&e);
        char rights[ACL_RIGHTS_SIZE];
        /* RFC 5465 section 5: events only for mailboxes the user may list ('l'); message
         * events need 'r' too (section 5.9: a lost right stops them) */
        if (store_lookup(c->store, name, &e) == 1 && acl_rights(c, name, e.acl, rights) &&
            strchr(rights, 'l')) {
            struct nbox *bx = &nb[nn++];
            memset(bx, 0, sizeof *bx);
            bx->name = xstrdup(name);
            snprintf(bx->uniqueid, sizeof bx->uniqueid, "%s", e.uniqueid);
            bx->partition = xstrdup(e.partition);
            bx->events = ev;
            bx->readable = strchr(rights, 'r') != NULL;
            snprintf(bx->rights, sizeof bx->rights, "%s", rights);
            strarr_init(&bx->meta);
            bx->wd = -1;
            if (bx->readable && (ev & NOTIFY_EV_MESSAGE)) watched++;
            if (first && !bx->readable && (ev & NOTIFY_EV_MESSAGE))
                send_list(c, "\\NoAccess", name, NULL);   /* RFC 5465 section 3.1 */
        }
        mboxlist_entry_fini(&e);
    }
    if (limit > 0 && watched > (size_t)limit) {
        r = CF_E_LIMIT;
        goto out;
    }
    /* watches and counters: kept for the mailboxes still there (by uniqueid: a rename keeps
     * the directory), added for the new ones, dropped for the rest */
    for (size_t i = 0; i < nn; i++) {
        struct nbox *bx = &nb[i];
        struct nbox *old = find_uid(n->boxes, n->nboxes, bx->uniqueid);
        int want = bx->readable && (bx->events & NOTIFY_EV_MESSAGE);
        if (old && old->wd >= 0 && want) {
            bx->wd = old->wd;
            old->wd = -1;
        }
        if (old && want && old->known) {
            bx->known = 1;
            bx->dirty = old->dirty;
            bx->messages = old->messages;
            bx->uidnext = old->uidnext;
            bx->uidvalidity = old->uidvalidity;
            bx->unseen = old->unseen;
            bx->modseq = old->modseq;
        }
        if (want && bx->wd < 0) {
            const char *path = store_partition_path(c->store, bx->partition);
            int wd = n->ws && path ? mailbox_watchset_add(n->ws, path, bx->uniqueid) : CF_E_IO;
            if (wd < 0) {
                /* no inotify or out of watches: cannot keep the promise (section 5.8) */
                r = CF_E_LIMIT;
                goto out;
            }
            bx->wd = wd;
        }
        if (want && !bx->known) {
            uint32_t v[4];
            if (read_counters(c, bx, v, &bx->modseq) == 0) {
                bx->known = 1;
                bx->messages = v[0];
                bx->uidnext = v[1];
                bx->uidvalidity = v[2];
                bx->unseen = v[3];
                if (first && n->status && !is_selected(c, bx->name)) send_status(c, bx);
            }
        }
    }
    for (size_t i = 0; i < n->nboxes; i++) {
        struct nbox *old = &n->boxes[i];
        if (old->wd >= 0 && n->ws) {
            /* the same directory may still be watched for a box under another name */
            int kept = 0;
            for (size_t k = 0; k < nn; k++) kept |= nb[k].wd == old->wd;
            if (!kept) mailbox_watchset_remove(n->ws, old->wd);
        }
    }
    if (tell && !first) {
        /* RFC 5465 section 5.4: MailboxName */
        for (size_t i = 0; i < nn; i++) {
            struct nbox *bx = &nb[i];
            struct nbox *old = find_uid(n->boxes, n->nboxes, bx->uniqueid);
            int now = bx->events & NOTIFY_EV_MAILBOX_NAME;
            if (old && strcmp(old->name, bx->name) && (now || (old->events & NOTIFY_EV_MAILBOX_NAME)))
                send_list(c, store_has_children(c->store, bx->name) > 0 ? "\\HasChildren"
                                                                         : "\\HasNoChildren",
                          bx->name, old->name);
            else if (!old && now)
                send_list(c, store_has_children(c->store, bx->name) > 0 ? "\\HasChildren"
                                                                         : "\\HasNoChildren",
                          bx->name, NULL);
        }
        for (size_t i = 0; i < n->nboxes; i++) {
            struct nbox *old = &n->boxes[i];
            if ((old->events & NOTIFY_EV_MAILBOX_NAME) && !find_uid(nb, nn, old->uniqueid))
                send_list(c, "\\NonExistent", old->name, NULL);
        }
        /* RFC 5465 section 5.5: SubscriptionChange, \Subscribed iff subscribed now */
        for (size_t i = 0; i < newsubs.count; i++)
            if (!sorted_has(&n->subs, newsubs.v[i]))
                send_list(c, "\\Subscribed", newsubs.v[i], NULL);
        for (size_t i = 0; i < n->subs.count; i++) {
            if (sorted_has(&newsubs, n->subs.v[i])) continue;
            struct mboxlist_entry e;
            mboxlist_entry_init(&e);
            int exists = store_lookup(c->store, n->subs.v[i], &e) == 1 &&
                         acl_has(c, n->subs.v[i], e.acl, 'l');
            mboxlist_entry_fini(&e);
            send_list(c, exists ? "" : "\\NonExistent", n->subs.v[i], NULL);
        }
    }
    meta_scan(c, n, nb, nn, tell && !first);
    boxes_free(n->boxes, n->nboxes);
    n->boxes = nb;
    n->nboxes = nn;
    nb = NULL;
    strarr_fini(&n->subs);
    n->subs = newsubs;
    strarr_init(&newsubs);
    n->next_scan = now_ms() + NOTIFY_SCAN_MS;
out:
    if (nb) {
        /* the new watches go again; the old ones stay as they were */
        for (size_t i = 0; i < nn; i++)
            if (nb[i].wd >= 0 && n->ws && !find_uid(n->boxes, n->nboxes, nb[i].uniqueid))
                mailbox_watchset_remove(n->ws, nb[i].wd);
        for (size_t i = 0; i < nn; i++) {
            struct nbox *old = find_uid(n->boxes, n->nboxes, nb[i].uniqueid);
            if (old && nb[i].wd >= 0) old->wd = nb[i].wd;
        }
        boxes_free(nb, nn);
    }
    strarr_fini(&names);
    strarr_fini(&subs);
    strarr_fini(&newsubs);
    buf_fini(&inbox);
    return r;
}

/* ---- delivery ---- */

static void mark_dirty(int id, void *rock)
{
    struct notify *n = rock;
    if (id < 0) {
        n->all_dirty = 1;
        return;
    }
    for (size_t i = 0; i < n->nboxes; i++)
        if (n->boxes[i].wd == id) n->boxes[i].dirty = 1;
}

/* deliver: drain the watches, scan when due (or forced), and tell (or, without tell, just
 * take in) what changed in the other mailboxes. 0, or < 0 after NOTIFICATIONOVERFLOW (NOTIFY
 * is then off). */
static int deliver(struct client *c, int tell, int force_scan)
{
    struct notify *n = c->notify;
    if (!n) return 0;
    if (n->ws) mailbox_watchset_changed(n->ws, mark_dirty, n);
    if (force_scan || now_ms() >= n->next_scan) {
        int r = scan(c, n, tell, 0);
        if (r == CF_E_LIMIT) {
            overflow(c);
            return r;
        }
        /* a store error: tried again at the next scan */
    }
    for (size_t i = 0; i < n->nboxes; i++) {
        struct nbox *bx = &n->boxes[i];
        if (!(bx->dirty || n->all_dirty) || bx->wd < 0 || !bx->readable) continue;
        bx->dirty = 0;
        uint32_t v[4];
        uint64_t modseq = 0;
        if (read_counters(c, bx, v, &modseq) < 0) continue;
        int counts = v[0] != bx->messages || v[1] != bx->uidnext || v[2] != bx->uidvalidity;
        /* RFC 5465 section 5.2: FlagChange in a mailbox other than the selected one is told
         * as STATUS. Every STORE that changes flags or keywords raises the highestmodseq of
         * the index header (RFC 7162 section 3.1), so a change of it with the same counts is
         * a flag change (an expunge or an arrival changes the counts and is MessageNew's or
         * MessageExpunge's, which FlagChange always comes with: section 5); a change of
         * UNSEEN still counts as one when the counts changed too. */
        int flags = v[3] != bx->unseen || (!counts && modseq != bx->modseq);
        bx->messages = v[0];
        bx->uidnext = v[1];
        bx->uidvalidity = v[2];
        bx->unseen = v[3];
        bx->modseq = modseq;
        bx->known = 1;
        /* the selected mailbox has its own updates (RFC 5465 section 6.1) */
        if (!tell || is_selected(c, bx->name)) continue;
        if ((counts && (bx->events & NOTIFY_EV_MESSAGE_NEW)) ||
            (flags && (bx->events & NOTIFY_EV_FLAG_CHANGE)))
            send_status(c, bx);
    }
    n->all_dirty = 0;
    return 0;
}

/* sel_watch: keep the watch on the selected mailbox in step with the selection. */
static void sel_watch(struct client *c)
{
    struct notify *n = c->notify;
    const char *name = c->sel && c->state == CLIENT_SELECTED ? c->sel->name : NULL;
    if (name && n->sel_name && !strcmp(name, n->sel_name)) return;
    if (!name && !n->sel_name) return;
    if (n->sel_wd >= 0 && n->ws) {
        int kept = 0;
        for (size_t i = 0; i < n->nboxes; i++) kept |= n->boxes[i].wd == n->sel_wd;
        if (!kept) mailbox_watchset_remove(n->ws, n->sel_wd);
    }
    n->sel_wd = -1;
    free(n->sel_name);
    n->sel_name = name ? xstrdup(name) : NULL;
    if (!name || !n->ws || !n->sel_events) return;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    if (store_lookup(c->store, name, &e) == 1) {
        const char *path = store_partition_path(c->store, e.partition);
        int wd = path ? mailbox_watchset_add(n->ws, path, e.uniqueid) : -1;
        n->sel_wd = wd >= 0 ? wd : -1;
    }
    mboxlist_entry_fini(&e);
}

/* fetch_new: RFC 5465 section 5.2: the FETCH the client asked for with MessageNew, for the
 * messages with uid above after (UID FETCH, so the responses carry UID). */
static void fetch_new(struct client *c, uint32_t after)
{
    struct notify *n = c->notify;
    uint32_t count = selected_count(c->sel);
    if (!n->fetch_atts || !count || selected_uid(c->sel, count) <= after) return;
    struct buf line = BUF_INIT;
    buf_printf(&line, "N UID FETCH %u:* %s\r\n", (unsigned)after + 1, n->fetch_atts);
    struct imap_memsource ms;
    struct imap_source src;
    struct imap_parser_limits lim;
    imap_parser_limits_default(&lim);
    imap_memsource_init(&ms, line.s, line.len, 0, &src);
    struct imap_parser *p = imap_parser_new(&src, &lim);
    struct imap_command cmd;
    if (imap_parser_read(p, &cmd) == 0) {
        unsigned saved = c->cmd_flags;
        c->cmd_flags = CMD_USES_SEQS;
        cmd_uid(c, &cmd);
        c->cmd_flags = saved;
        /* the synthetic command's own tagged line is not the client's */
        struct client_reply reply;
        client_reply_take(c, &reply);
        buf_reset(&reply.line);
        reply.done = CLIENT_DONE_NONE;
        client_reply_write(c, &reply);
    }
    imap_parser_free(&p);
    buf_fini(&line);
}

/* push: what happened, with the selected mailbox's updates when a selected filter asks. */
static int push(struct client *c)
{
    struct notify *n = c->notify;
    sel_watch(c);
    if (n->sel_events && c->sel && c->state == CLIENT_SELECTED) {
        uint32_t count = selected_count(c->sel);
        uint32_t last = count ? selected_uid(c->sel, count) : 0;
        /* SELECTED-DELAYED: no EXPUNGE until a command allows them (section 6.1.2) */
        int r = selected_sync(c, SELECTED_SYNC_UID |
                                     (n->sel_delayed ? SELECTED_SYNC_NO_EXPUNGE : 0));
        if (r < 0) {
            selected_sync_failed(c, r);
            return r;
        }
        if (n->sel_events & NOTIFY_EV_MESSAGE_NEW) fetch_new(c, last);
    }
    if (c->notify) deliver(c, 1, 0);
    return 0;
}

void notify_before_command(struct client *c)
{
    if (c->notify) deliver(c, 1, 0);
}

void notify_after_command(struct client *c, const struct imap_command *cmd)
{
    static const char *const changers[] = {
        "APPEND", "COPY", "MOVE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
        "SETACL", "DELETEACL", "EXPUNGE", "STORE", "CLOSE", "SETMETADATA",
        "REPLACE",      /* RFC 8508 (cmd-append.c) */
    };
    if (!c->notify || !cmd->name) return;
    const char *name = cmd->name;
    if (!strcmp(name, "UID") && cmd->nargs) name = imap_arg_atom(&cmd->args[0]);
    if (!name) return;
    int own = 0;
    for (size_t i = 0; i < sizeof changers / sizeof changers[0]; i++)
        own |= !strcasecmp(name, changers[i]);
    if (!own) return;
    int list = !strcasecmp(name, "CREATE") || !strcasecmp(name, "DELETE") ||
               !strcasecmp(name, "RENAME") || !strcasecmp(name, "SUBSCRIBE") ||
               !strcasecmp(name, "UNSUBSCRIBE") || !strcasecmp(name, "SETACL") ||
               !strcasecmp(name, "DELETEACL") || !strcasecmp(name, "SETMETADATA");
    deliver(c, 0, list);
}

int notify_idle_fd(const struct client *c)
{
    return c->notify && c->notify->ws ? mailbox_watchset_fd(c->notify->ws) : -1;
}

int notify_idle_push(struct client *c)
{
    int r = c->notify ? push(c) : 0;
    if (stream_flush(c->stream) < 0) {
        c->end_reason = "io";
        return CF_E_IO;
    }
    return r;
}

int notify_wait_input(struct client *c)
{
    if (!c->notify || stream_pending(c->stream)) return 0;
    int64_t limit = config_int(c->ws->cfg, CFG_IDLE_TIMEOUT);
    if (limit > INT32_MAX) limit = INT32_MAX;
    int64_t deadline = now_ms() + limit * 1000;
    while (c->notify && !c->end_reason) {
        if (notify_idle_push(c) < 0) return -1;
        if (!c->notify) break;
        int64_t wait = c->notify->next_scan - now_ms();
        if (wait < 0) wait = 0;
        if (wait > NOTIFY_SCAN_MS) wait = NOTIFY_SCAN_MS;
        int r = stream_wait_readable(c->stream, notify_idle_fd(c), (int)wait);
        if (r == 0 && worker_shutdown) r = CF_E_SHUTDOWN;
        if (r == 0 && now_ms() >= deadline) r = CF_E_TIMEOUT;
        if (r < 0) {
            if (r == CF_E_EOF || r == CF_E_IO || r == CF_E_TLS) return 0;   /* the parser reports it */
            c->end_reason = worker_read_end(c->stream, r, &client_texts);
            return -1;
        }
        if (r & STREAM_WAIT_INPUT) return 0;
    }
    return c->end_reason ? -1 : 0;
}

/* ---- the command ---- */

/* setup: a new state from req, or NULL with the command answered. */
static struct notify *setup(struct client *c, const char *tag, const struct notify_request *req)
{
    struct notify *n = xzmalloc(sizeof *n);
    n->sel_wd = -1;
    strarr_init(&n->subs);
    strarr_init(&n->server_meta);
    n->status = req->status;
    n->filters = xreallocarray(NULL, req->ngroups + 1, sizeof *n->filters);
    struct buf name = BUF_INIT;
    for (size_t i = 0; i < req->ngroups; i++) {
        const struct notify_group *g = &req->groups[i];
        if (g->filter == NOTIFY_SELECTED || g->filter == NOTIFY_SELECTED_DELAYED) {
            n->sel_events = g->events;
            n->sel_delayed = g->filter == NOTIFY_SELECTED_DELAYED;
            if (g->fetch_atts) {
                struct buf b = BUF_INIT;
                imap_arg_format(g->fetch_atts, &b);
                n->fetch_atts = buf_release(&b);
            }
            continue;
        }
        struct nfilter *f = &n->filters[n->nfilters++];
        f->filter = g->filter;
        f->events = g->events;
        /* the server's annotations belong to no mailbox: any filter asks for them */
        if (g->events & NOTIFY_EV_SERVER_METADATA_CHANGE) n->server_meta_events = 1;
        strarr_init(&f->names);
        for (size_t k = 0; k < g->nnames; k++) {
            buf_reset(&name);
            /* a name that cannot be a mailbox is ignored, like one that does not exist
             * (RFC 5465 section 6.6) */
            if (rev2_name_from_wire(c, imap_arg_astring(&g->names[k]), &name) == 0)
                strarr_add(&f->names, buf_cstr(&name));
        }
    }
    buf_fini(&name);
    if (mailbox_watchset_new(&n->ws) < 0) n->ws = NULL;
    int r = scan(c, n, 1, 1);
    if (r == CF_E_LIMIT) {
        client_tagged(c, tag, "NO [NOTIFICATIONOVERFLOW] More than %lld mailboxes to watch",
                      (long long)config_int(c->ws->cfg, CFG_NOTIFY_MAX_MAILBOXES));
        notify_free(&n);
    } else if (r < 0) {
        imapd_reply_error(c, tag, r);
        notify_free(&n);
    }
    return n;
}

void cmd_notify(struct client *c, const struct imap_command *cmd)
{
    struct notify_request req;
    const char *err = NULL;
    if (notify_parse(cmd->args, cmd->nargs, &req, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto done;
    }
    if (req.none) {
        notify_free(&c->notify);
        client_tagged(c, cmd->tag, "OK NOTIFY completed");
        goto done;
    }
    /* RFC 5465 section 3.1: an unsupported event is refused with NO (not BAD), BADEVENT
     * listing the supported ones; the old state stays */
    for (size_t i = 0; i < req.ngroups; i++) {
        if (req.groups[i].events & ~(unsigned)SUPPORTED_EVENTS) {
            client_tagged(c, cmd->tag, "NO [" BADEVENT_TEXT "] Event not supported");
            goto done;
        }
    }
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        goto done;
    }
    struct notify *n = setup(c, cmd->tag, &req);
    if (!n) goto done;
    notify_free(&c->notify);
    c->notify = n;
    sel_watch(c);
    /* RFC 5465 section 3.1: the implicit NOOP is command_dispatch's sync before the OK */
    client_tagged(c, cmd->tag, "OK NOTIFY completed");
done:
    notify_request_fini(&req);
}
