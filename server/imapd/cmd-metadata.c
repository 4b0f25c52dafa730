/* cmd-metadata.c: GETMETADATA and SETMETADATA (RFC 5464 METADATA and METADATA-SERVER):
 * annotations of mailboxes and of the server (mailbox name ""), kept by the store
 * (store-db.h, metadata.db); arguments parsed by lib/imap/imap-metadata.c.
 *
 * Rights (RFC 5464 section 3.3, with RFC 4314): a mailbox's annotations, private or shared,
 * are read and written only by a user with the "l" right and one of "r", "s", "w", "i" or
 * "p"; reading /shared entries needs "r" besides, writing them "r" and "w". Without "l" (nor "r")
 * the mailbox is answered as not existing (RFC 4314 section 4). The server's entries: any
 * user reads the shared ones and keeps private ones of their own; only administrators
 * (`admins`) write the shared ones. Administrators have every right on every mailbox
 * (acl-check.h).
 *
 * /private/specialuse of a mailbox (RFC 6154 section 4) is not kept with the annotations: it
 * is the mailbox's SPECIAL-USE attributes in the mailbox list (as LIST shows them, to every
 * user who sees the mailbox). Setting it changes them, in the same transaction as the other
 * entries of the command; only the mailbox's owner and administrators may, as for CREATE ...
 * USE, and only with the attributes of RFC 6154 section 2 (else NO [USEATTR]).
 *
 * Unsolicited METADATA responses (section 4.4.2) go only to sessions that asked with NOTIFY
 * (notify.c: MailboxMetadataChange, ServerMetadataChange). */
#include "imapd.h"
#include "acl-check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "imap/imap-metadata.h"
#include "net/stream.h"
#include "store/mboxlist.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SPECIALUSE_ENTRY STORE_METADATA_SPECIALUSE

/* The mailbox (or the server) a command names, and what the user may do there. */
struct target {
    int server;                      /* mailbox "" */
    struct buf name;                 /* internal name of a mailbox */
    struct mboxlist_entry e;         /* its list entry */
    int read_private, read_shared, write_private, write_shared;
};

/* The special-use attributes of RFC 6154 section 2, as LIST writes them. */
static const char *const special_uses[] = { "\\All", "\\Archive", "\\Drafts", "\\Flagged",
                                            "\\Junk", "\\Sent", "\\Trash" };

/* special_use_canonical: the attribute s names (ASCII case ignored), or NULL */
static const char *special_use_canonical(const char *s)
{
    for (size_t k = 0; k < sizeof special_uses / sizeof special_uses[0]; k++)
        if (!strcasecmp(s, special_uses[k])) return special_uses[k];
    return NULL;
}

static void target_fini(struct target *t)
{
    buf_fini(&t->name);
    mboxlist_entry_fini(&t->e);
}

/* target_open: resolve mailbox for the session into t and its rights. 1 when the command may
 * go on, 0 when the tagged NO was sent. */
static int target_open(struct client *c, const char *tag, const char *mailbox, struct target *t)
{
    memset(t, 0, sizeof *t);
    buf_init(&t->name);
    mboxlist_entry_init(&t->e);
    if (!c->store) {
        client_tagged(c, tag, "NO [UNAVAILABLE] The mail store is not available");
        return 0;
    }
    if (!*mailbox) {
        /* METADATA-SERVER (RFC 5464 section 3.1) */
        t->server = 1;
        t->read_private = t->write_private = t->read_shared = 1;
        t->write_shared = c->is_admin;
        return 1;
    }
    if (imapd_mailbox_name(c, tag, mailbox, &t->name) < 0) return 0;
    char rights[ACL_RIGHTS_SIZE] = "";
    int r = acl_lookup(c, buf_cstr(&t->name), &t->e, 'r', rights);
    if (r == 0) {
        client_tagged(c, tag, "NO [NONEXISTENT] No such mailbox");
        return 0;
    }
    if (r < 0 && r != CF_E_PERM) {
        imapd_reply_error(c, tag, r);
        return 0;
    }
    /* section 3.3: "l" and any one of "r", "s", "w", "i" or "p" for any annotation */
    int any = strchr(rights, 'l') && strpbrk(rights, "rswip");
    t->read_private = t->write_private = any;
    t->read_shared = any && strchr(rights, 'r');
    /* writing a shared value needs reading it too (the "l r w"; Cyrus does the same) */
    t->write_shared = any && strchr(rights, 'r') && strchr(rights, 'w');
    return 1;
}

static int is_private(const char *entry)
{
    return !strncasecmp(entry, "/private", 8);
}

/* specialuse_value: the mailbox's RFC 6154 attributes, space-separated, into out; 1 when it has
 * any, else 0 */
static int specialuse_value(const struct target *t, struct buf *out)
{
    buf_reset(out);
    if (t->server || !t->e.flags) return 0;
    struct strarr words = STRARR_INIT;
    strarr_split(&words, t->e.flags, " ", 0);
    for (size_t i = 0; i < words.count; i++) {
        const char *canon = special_use_canonical(words.v[i]);
        if (!canon) continue;
        if (out->len) buf_putc(out, ' ');
        buf_appends(out, canon);
    }
    strarr_fini(&words);
    return out->len > 0;
}

/* specialuse_parse: a /private/specialuse value (attributes separated by spaces; NULL or ""
 * for none) as the canonical words into out. 0, or -1 for a word that is no attribute. */
static int specialuse_parse(const char *v, size_t len, struct buf *out)
{
    buf_reset(out);
    if (!v) return 0;
    if (memchr(v, '\0', len)) return -1;
    struct strarr words = STRARR_INIT;
    strarr_split(&words, v, " ", 0);
    int r = 0;
    for (size_t i = 0; i < words.count && !r; i++) {
        if (!*words.v[i]) continue;
        const char *canon = special_use_canonical(words.v[i]);
        if (!canon) r = -1;
        else if (!strstr(buf_cstr(out), canon)) {
            if (out->len) buf_putc(out, ' ');
            buf_appends(out, canon);
        }
    }
    strarr_fini(&words);
    return r;
}

/* may_set_specialuse: the mailbox's owner or an administrator (as CREATE ... USE) */
static int may_set_specialuse(const struct client *c, const char *name)
{
    if (c->is_admin) return 1;
    struct buf owner = BUF_INIT;
    int own = mboxname_owner(name, &owner) == 1 && !strcmp(buf_cstr(&owner), c->user);
    buf_fini(&owner);
    return own;
}

/* What GETMETADATA collects for its one METADATA response. */
struct get_rock {
    struct buf out;                  /* "entry value entry value ..." */
    int64_t maxsize;                 /* -1: none */
    size_t longest;                  /* largest value left out for MAXSIZE (LONGENTRIES) */
    int count;
};

static void get_add(struct get_rock *g, const char *entry, const char *val, size_t len)
{
    if (val && g->maxsize >= 0 && (int64_t)len > g->maxsize) {
        /* section 4.2.1: left out, and the tagged OK says how large the largest was */
        if (len > g->longest) g->longest = len;
        return;
    }
    if (g->count++) buf_putc(&g->out, ' ');
    imap_astring_append(&g->out, entry, strlen(entry));
    buf_putc(&g->out, ' ');
    imap_metadata_value_append(&g->out, val, len);
}

static int get_one(const char *entry, const char *val, size_t len, void *rock)
{
    get_add(rock, entry, val, len);
    return 0;
}

/* get_entry: entry (depth as asked) into g. 0 or a store error. */
static int get_entry(struct client *c, const struct target *t, const char *entry, int depth,
                     struct get_rock *g)
{
    const char *uid = t->server ? STORE_METADATA_SERVER : t->e.uniqueid;
    struct buf v = BUF_INIT;
    int r = 0;
    if (!strcasecmp(entry, SPECIALUSE_ENTRY) && !t->server) {
        /* RFC 6154 section 4: the mailbox list's attributes, not an annotation */
        int has = specialuse_value(t, &v);
        get_add(g, SPECIALUSE_ENTRY, has ? v.s : NULL, v.len);
    } else if (depth == 0) {
        if (!strcasecmp(entry, "/shared") || !strcasecmp(entry, "/private")) {
            /* a scope holds no value of its own */
            get_add(g, entry, NULL, 0);
        } else {
            r = store_metadata_get(c->store, uid, c->user, entry, &v);
            if (r >= 0) {
                /* reported lower-cased, as stored (names are case-insensitive) */
                struct buf lower = BUF_INIT;
                for (const char *p = entry; *p; p++)
                    buf_putc(&lower, *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p);
                get_add(g, buf_cstr(&lower), r == 1 ? v.s : NULL, v.len);
                buf_fini(&lower);
                r = 0;
            }
        }
    } else {
        r = store_metadata_foreach(c->store, uid, c->user, entry, depth, get_one, g);
        /* /private/specialuse lies one level below /private */
        if (r >= 0 && !t->server && !strcasecmp(entry, "/private") && specialuse_value(t, &v))
            get_add(g, SPECIALUSE_ENTRY, v.s, v.len);
        if (r > 0) r = 0;
    }
    buf_fini(&v);
    return r;
}

/* RFC 5464 section 4.2: GETMETADATA [(MAXSIZE n DEPTH d)] mailbox entries. */
void cmd_getmetadata(struct client *c, const struct imap_command *cmd)
{
    struct imap_metadata_get req;
    struct target t;
    struct get_rock g = { BUF_INIT, -1, 0, 0 };
    const char *why;
    int opened = 0;
    if (imap_metadata_parse_get(cmd->args, cmd->nargs, &req, &why)) {
        client_tagged(c, cmd->tag, "BAD %s", why);
        goto done;
    }
    opened = 1;
    if (!target_open(c, cmd->tag, req.mailbox, &t)) goto done;
    for (size_t i = 0; i < req.entries.count; i++) {
        int priv = is_private(req.entries.v[i]);
        if (!(priv ? t.read_private : t.read_shared)) {
            client_tagged(c, cmd->tag, "NO [NOPERM] Permission denied");
            goto done;
        }
    }
    g.maxsize = req.maxsize;
    for (size_t i = 0; i < req.entries.count; i++) {
        int r = get_entry(c, &t, req.entries.v[i], req.depth, &g);
        if (r < 0) {
            imapd_reply_error(c, cmd->tag, r);
            goto done;
        }
    }
    if (g.count) {
        /* section 4.4.1; written as it is: a binary value is a literal8 holding NUL bytes,
         * which the printf-style reply functions cannot carry */
        struct buf line = BUF_INIT;
        buf_appends(&line, "* METADATA ");
        imap_astring_append(&line, req.mailbox, strlen(req.mailbox));
        buf_appends(&line, " (");
        buf_append(&line, g.out.s, g.out.len);
        buf_appends(&line, ")\r\n");
        stream_write(c->stream, line.s, line.len);
        buf_fini(&line);
    }
    if (g.longest)
        client_tagged(c, cmd->tag, "OK [METADATA LONGENTRIES %zu] GETMETADATA completed",
                      g.longest);
    else
        client_tagged(c, cmd->tag, "OK GETMETADATA completed");
done:
    if (opened) target_fini(&t);
    imap_metadata_get_fini(&req);
    buf_fini(&g.out);
}

/* RFC 5464 section 4.3: SETMETADATA mailbox (entry value ...), all or nothing. */
void cmd_setmetadata(struct client *c, const struct imap_command *cmd)
{
    struct imap_metadata_set req;
    struct target t;
    struct store_metadata_item *items = NULL;
    struct buf uses = BUF_INIT;
    const char *why;
    int opened = 0;
    if (imap_metadata_parse_set(cmd->args, cmd->nargs, &req, &why)) {
        client_tagged(c, cmd->tag, "BAD %s", why);
        goto done;
    }
    opened = 1;
    if (!target_open(c, cmd->tag, req.mailbox, &t)) goto done;
    items = xzmalloc(req.n * sizeof *items);
    for (size_t i = 0; i < req.n; i++) {
        const char *entry = req.items[i].entry;
        int priv = is_private(entry);
        if (!(priv ? t.write_private : t.write_shared)) {
            client_tagged(c, cmd->tag, "NO [NOPERM] Permission denied");
            goto done;
        }
        items[i].entry = entry;
        items[i].value = req.items[i].value;
        items[i].len = req.items[i].len;
        if (!t.server && !strcasecmp(entry, SPECIALUSE_ENTRY)) {
            /* RFC 6154 section 4: the mailbox's attributes (the last one given counts) */
            if (!may_set_specialuse(c, buf_cstr(&t.name))) {
                client_tagged(c, cmd->tag, "NO [NOPERM] Only the owner sets special-use"
                              " attributes");
                goto done;
            }
            if (specialuse_parse(req.items[i].value, req.items[i].len, &uses) < 0) {
                client_tagged(c, cmd->tag, "NO [USEATTR] Unsupported special-use attribute");
                goto done;
            }
            items[i].value = buf_cstr(&uses);
            items[i].len = uses.len;
        }
    }
    long long maxsize = 0;
    int r = store_metadata_set(c->store, t.server ? STORE_METADATA_SERVER : buf_cstr(&t.name),
                               c->user, items, req.n, &maxsize);
    if (r == CF_E_LIMIT && maxsize > 0)
        client_tagged(c, cmd->tag, "NO [METADATA MAXSIZE %lld] Value too large", maxsize);
    else if (r == CF_E_LIMIT)
        client_tagged(c, cmd->tag, "NO [METADATA TOOMANY] Too many annotations");
    else if (r == CF_E_PARSE)
        client_tagged(c, cmd->tag, "BAD Invalid entry name");
    else if (r < 0)
        imapd_reply_error(c, cmd->tag, r);
    else
        client_tagged(c, cmd->tag, "OK SETMETADATA completed");
done:
    free(items);
    buf_fini(&uses);
    if (opened) target_fini(&t);
    imap_metadata_set_fini(&req);
}
