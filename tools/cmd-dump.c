/* cmd-dump.c: `coffer dump USER > FILE`: a user's whole account (mailboxes, messages byte for
 * byte with UIDs, flags, keywords and internal dates, ACLs, special-use flags, quota,
 * subscriptions, Sieve scripts, RFC 5464 annotations) as a POSIX ustar stream: manifest.json
 * first, then mailboxes/N/UID.eml and sieve/NAME.sieve. The format is documented in
 * coffer-dump(8); the stream is written by dump-tar.c and dump-json.c, and read back by
 * cmd-restore.c. */
#include "tool.h"
#include "cmd.h"
#include "dump.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/mail.h"
#include "store/mboxname.h"
#include "store/store.h"
#include "sieve/sieve.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct dump_msg { uint32_t uid; int64_t internaldate; };

struct dump_box {
    char *name;
    char *ppath, *uniqueid;    /* where the mailbox is, to open it again for its messages */
    struct dump_msg *msgs;
    size_t n;
};

/* One dump as it is being made. */
struct dump {
    struct tool *t;
    struct store *st;
    const char *user;
    struct buf inbox;          /* user/USER */
    struct buf m;              /* the manifest */
    struct strarr names;       /* the mailboxes, INBOX first */
    struct strarr subscribed;  /* the user's subscriptions */
    struct strarr scripts;     /* Sieve script names, without .sieve */
    char *active;              /* the active script's name, or NULL */
    struct dump_box *boxes;    /* parallel to names */
    size_t nmsgs, vanished;
};


static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

static int add_meta(const char *entry, const char *val, size_t len, void *rock)
{
    dump_json_metadata_add(rock, entry, val, len);
    return 0;
}

/* dump_metadata: the RFC 5464 annotations of uniqueid ("" the server) into meta: the shared
 * ones (not for the server: they are the administrators', not the user's) and user's private
 * ones. 0 or an error. */
static int dump_metadata(struct store *st, const char *uniqueid, const char *user,
                         struct strarr *meta)
{
    int r = 0;
    if (*uniqueid) r = store_metadata_foreach(st, uniqueid, NULL, "/shared", -1, add_meta, meta);
    if (r >= 0) r = store_metadata_foreach(st, uniqueid, user, "/private", -1, add_meta, meta);
    return r < 0 ? r : 0;
}

/* dump_mailbox: one mailbox's manifest object into m (a shared-lock snapshot of its index),
 * with user's URLAUTH access key for it when there is one, and its annotations. */
static int dump_mailbox(struct tool *t, struct store *st, const char *user, const char *name,
                        size_t idx, struct buf *m, struct dump_box *box)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct mailbox *mb = NULL;
    int r = store_open_mailbox(st, name, &e, &mb);
    if (r) {
        tool_error(t, "%s: %s", name, r == CF_E_CORRUPT ? "damaged (run coffer reconstruct)" : cf_strerror(r));
        goto out;
    }
    if ((r = mailbox_lock_shared(mb)) < 0) goto out;
    const struct index_header *h = mailbox_header(mb);
    box->name = xstrdup(name);
    const char *ppath = store_partition_path(st, e.partition);
    box->ppath = xstrdup(ppath ? ppath : "");
    box->uniqueid = xstrdup(mailbox_uniqueid(mb));
    /* the key URLs made before the dump were signed with (store-db.h); restore gives it
     * back, for the messages dumped only */
    unsigned char key[STORE_URLAUTH_KEY_LEN];
    char hex[2 * STORE_URLAUTH_KEY_LEN + 1];
    int kr = store_urlauth_key(st, user, box->uniqueid, 0, key);
    if (kr == 1)
        for (size_t i = 0; i < STORE_URLAUTH_KEY_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", key[i]);
    else if (kr < 0)
        tool_error(t, "%s: its URLAUTH key is unreadable (%s): left out", name, cf_strerror(kr));
    dump_json_mailbox(m, idx, name, h, e.flags, e.acl, kr == 1 ? hex : NULL);
    const struct strarr *kw = mailbox_keywords(mb);
    uint32_t count = mailbox_count(mb);
    box->msgs = xreallocarray(NULL, count ? count : 1, sizeof *box->msgs);
    for (uint32_t i = 1; i <= count; i++) {
        uint32_t uid = mailbox_uid(mb, i);
        struct index_record rec;
        int f = mailbox_record(mb, uid, &rec);
        if (f < 0) { r = f; break; }
        if (f == 0 || (rec.flags & FLAG_EXPUNGED)) continue;
        box->msgs[box->n].uid = uid;
        box->msgs[box->n].internaldate = rec.internaldate;
        dump_json_message(m, box->n, idx, uid, &rec, kw);
        box->n++;
    }
    mailbox_unlock(mb);
    struct strarr meta = STRARR_INIT;
    if (!r) r = dump_metadata(st, e.uniqueid, user, &meta);
    dump_json_mailbox_end(m, &meta);
    strarr_fini(&meta);
out:
    mailbox_close(&mb);
    mboxlist_entry_fini(&e);
    return r;
}

/* dump_sieve: the user's Sieve scripts and the active one's name, from the script store
 * (lib/sieve/sieve.h); none when the user has none. */
static void dump_sieve(struct dump *d)
{
    char *active = NULL;
    if (sieve_list(d->t->cfg, d->user, &d->scripts, &active) < 0) return;
    d->active = active;
}

/* dump_collect: what the account holds: its mailboxes (the INBOX must exist), subscriptions
 * and Sieve scripts. 0 or a CF_E_* error (CF_E_NOTFOUND reported). */
static int dump_collect(struct dump *d)
{
    struct buf prefix = BUF_INIT;
    mboxname_user_inbox(d->user, &d->inbox);
    int r = store_lookup(d->st, buf_cstr(&d->inbox), NULL);
    if (r == 0) {
        tool_error(d->t, "user %s has no INBOX (%s)", d->user, buf_cstr(&d->inbox));
        r = CF_E_NOTFOUND;
        goto out;
    }
    if (r < 0) goto out;
    strarr_add(&d->names, buf_cstr(&d->inbox));
    buf_printf(&prefix, "%s/", buf_cstr(&d->inbox));
    if ((r = store_mailbox_foreach(d->st, buf_cstr(&prefix), add_name, &d->names)) < 0) goto out;
    if ((r = store_subscriptions(d->st, d->user, &d->subscribed)) < 0) goto out;
    dump_sieve(d);
    r = 0;
out:
    buf_fini(&prefix);
    return r;
}

/* dump_manifest: the whole manifest into d->m, reading every mailbox's index. 0 or a CF_E_*
 * error. */
static int dump_manifest(struct dump *d)
{
    struct quota q;
    int qr = store_quota_get(d->st, buf_cstr(&d->inbox), &q);
    dump_json_head(&d->m, d->user, (long long)time(NULL), qr == 1 ? &q : NULL, &d->subscribed, d->active,
                   &d->scripts);
    d->boxes = xzmalloc((d->names.count ? d->names.count : 1) * sizeof *d->boxes);
    for (size_t i = 0; i < d->names.count; i++) {
        tool_progress(d->t, i + 1, d->names.count, "mailboxes read");
        int r = dump_mailbox(d->t, d->st, d->user, d->names.v[i], i, &d->m, &d->boxes[i]);
        if (r < 0) return r;
        d->nmsgs += d->boxes[i].n;
    }
    struct strarr server_meta = STRARR_INIT;
    int r = dump_metadata(d->st, STORE_METADATA_SERVER, d->user, &server_meta);
    dump_json_end(&d->m, &server_meta);
    strarr_fini(&server_meta);
    return r;
}

/* dump_box_messages: the messages of the idx'th mailbox into out, read through the message
 * handle (store/mail.h) of the mailbox opened again; a message (or the whole mailbox) gone
 * since the snapshot is counted in d->vanished and left out (restore skips it). 0, or a
 * CF_E_* error (reported). */
static int dump_box_messages(struct dump *d, FILE *out, size_t idx, size_t *done)
{
    const struct dump_box *b = &d->boxes[idx];
    struct mailbox *mb = NULL;
    int r = b->n ? mailbox_open(b->ppath, b->uniqueid, b->name, &mb) : 0;
    if (r == CF_E_NOTFOUND) {   /* deleted since the snapshot */
        d->vanished += b->n;
        *done += b->n;
        return 0;
    }
    if (r < 0) {
        tool_error(d->t, "%s: %s", b->name,
                   r == CF_E_CORRUPT ? "damaged (run coffer reconstruct)" : cf_strerror(r));
        return r;
    }
    struct mail *m = mb ? mail_new(mb) : NULL;
    for (size_t k = 0; k < b->n && r == 0; k++) {
        const char *p;
        size_t len;
        mail_set_uid(m, b->msgs[k].uid);
        r = mail_message(m, &p, &len);
        if (r == CF_E_NOTFOUND) {
            d->vanished++;
            r = 0;
        } else if (r < 0) {
            tool_error(d->t, "%s: message %u: %s", b->name, (unsigned)b->msgs[k].uid,
                       cf_strerror(r));
        } else {
            char *an = xasprintf("mailboxes/%zu/%u.eml", idx, (unsigned)b->msgs[k].uid);
            if (tar_put(out, an, p, len, b->msgs[k].internaldate) < 0) {
                tool_error(d->t, "cannot write the dump: %s", strerror(errno));
                r = CF_E_IO;
            }
            free(an);
        }
        tool_progress(d->t, ++*done, d->nmsgs, "messages written");
    }
    mail_free(&m);
    mailbox_close(&mb);
    return r;
}

/* dump_stream: the tar stream to out: manifest, messages, scripts, two zero blocks. 0, or a
 * CF_E_* error (reported: CF_E_IO for a write error). */
static int dump_stream(struct dump *d, FILE *out)
{
    int64_t now = (int64_t)time(NULL);
    if (tar_put(out, "manifest.json", d->m.s, d->m.len, now) < 0) goto write_error;
    size_t done = 0;
    for (size_t i = 0; i < d->names.count; i++) {
        int r = dump_box_messages(d, out, i, &done);
        if (r < 0) return r;
    }
    for (size_t i = 0; i < d->scripts.count; i++) {
        char *data = NULL, *an = xasprintf("sieve/%s.sieve", d->scripts.v[i]);
        size_t len = 0;
        int g = sieve_get(d->t->cfg, d->user, d->scripts.v[i], &data, &len);
        int w = g < 0 ? 0 : tar_put(out, an, data, len, now);
        free(data);
        free(an);
        if (w < 0) goto write_error;
        if (g < 0) {
            tool_error(d->t, "cannot read the Sieve script %s: %s", d->scripts.v[i],
                       cf_strerror(g));
            return g;
        }
    }
    if (tar_end(out) < 0) goto write_error;
    return 0;
write_error:
    tool_error(d->t, "cannot write the dump: %s", strerror(errno));
    return CF_E_IO;
}

static void dump_fini(struct dump *d)
{
    if (d->boxes) {
        for (size_t i = 0; i < d->names.count; i++) {
            free(d->boxes[i].name);
            free(d->boxes[i].ppath);
            free(d->boxes[i].uniqueid);
            free(d->boxes[i].msgs);
        }
        free(d->boxes);
    }
    free(d->active);
    buf_fini(&d->inbox);
    buf_fini(&d->m);
    strarr_fini(&d->names);
    strarr_fini(&d->subscribed);
    strarr_fini(&d->scripts);
    store_close(&d->st);
}

int cmd_dump(struct tool *t)
{
    if (t->argc != 1) {
        tool_error(t, "usage: coffer dump USER > FILE");
        return EXIT_USAGE;
    }
    const char *user = t->argv[0];
    if (mboxname_valid_user(user) != 0 || strchr(user, '/')) {
        tool_error(t, "'%s' is not a valid user name", user);
        return EXIT_USAGE;
    }
    if (isatty(STDOUT_FILENO)) {
        tool_error(t, "refusing to write a tar stream to a terminal: redirect it to a file");
        return EXIT_USAGE;
    }
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) return rc;
    struct dump d = {
        .t = t, .st = st, .user = user, .inbox = BUF_INIT, .m = BUF_INIT, .names = STRARR_INIT,
        .subscribed = STRARR_INIT, .scripts = STRARR_INIT,
    };
    int r = dump_collect(&d);
    if (r == 0) r = dump_manifest(&d);
    if (r == 0) r = dump_stream(&d, stdout);
    if (r == 0)
        fprintf(stderr, "coffer dump: %s: %zu mailbox%s, %zu messages%s, %zu Sieve script%s\n", user,
                d.names.count, d.names.count == 1 ? "" : "es", d.nmsgs - d.vanished,
                d.vanished ? " (some expunged while dumping)" : "", d.scripts.count,
                d.scripts.count == 1 ? "" : "s");
    dump_fini(&d);
    if (r < 0 && r != CF_E_NOTFOUND && r != CF_E_IO) tool_error(t, "dump failed: %s", cf_strerror(r));
    return tool_exit_for(r);
}
