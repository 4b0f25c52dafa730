/* store-expire.c: one expire run over the store (store-expire.h). */
#include "store/store-expire.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/store-retained.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void report(const struct store_expire_hooks *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report(const struct store_expire_hooks *h, const char *fmt, ...)
{
    if (!h || !h->error) return;
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    h->error(h->rock, buf_cstr(&b));
    buf_fini(&b);
}

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

int store_expire(struct store *st, int64_t now, long long dup_lifetime, long long vacation_days,
                 int dry, struct store_expire_report *rep, const struct store_expire_hooks *hooks)
{
    memset(rep, 0, sizeof *rep);
    rep->vacation = -1;
    int err = 0;

    /* 1. duplicate suppression records past duplicate_lifetime */
    int r = store_dup_expire(st, now - dup_lifetime, dry);
    if (r < 0) {
        report(hooks, "cannot prune dup.db: %s", cf_strerror(r));
        err = r;
    } else {
        rep->duplicates = r;
    }

    /* 2. vacation answers: only when lmtpd ever made the database */
    if (!err) {
        r = store_vacation_expire(st, now - vacation_days * 86400, dry);
        if (r >= 0) {
            rep->vacation = r;
        } else if (r != CF_E_NOTFOUND) {
            report(hooks, "cannot prune vacation.db: %s", cf_strerror(r));
            rep->vacation = 0;
            err = r;
        }
    }

    /* 3. expunged records still in indexes whose files are gone or past expunge_retention
     * (and their files); records younger than that stay for coffer unexpunge */
    rep->retention = store_expunge_retention(st);
    int64_t cutoff = now - rep->retention;
    struct strarr names = STRARR_INIT;
    if (!err) {
        r = store_mailbox_foreach(st, "", add_name, &names);
        if (r < 0) err = r;
    }
    for (size_t i = 0; !err && i < names.count; i++) {
        if (hooks && hooks->progress) hooks->progress(hooks->rock, i + 1, names.count);
        struct index_header h;
        if (store_status(st, names.v[i], &h) < 0 || !h.expunged) continue;
        struct mailbox *mb;
        int x = store_open_mailbox(st, names.v[i], NULL, &mb);
        uint32_t due = 0, keep = 0;
        if (!x) x = mailbox_expunged_due(mb, cutoff, &due, &keep);
        if (!x && due && !dry) x = mailbox_repack_expired(mb, cutoff, &due);
        mailbox_close(&mb);
        if (x < 0 && x != CF_E_NOTFOUND) {
            report(hooks, "%s: cannot repack: %s", names.v[i], cf_strerror(x));
            err = x;
        }
        if (x < 0) continue;
        rep->expunged += due;
        rep->expunged_kept += keep;
        if (due) rep->expunged_boxes++;
    }
    strarr_fini(&names);

    /* 4. mailboxes hidden by delayed delete past expunge_retention */
    struct store_deleted *dv = NULL;
    size_t nd = 0;
    if (!err) {
        r = store_deleted_list(st, &dv, &nd);
        if (r < 0) err = r;
    }
    for (size_t i = 0; !err && i < nd; i++) {
        if (dv[i].deleted_at > cutoff) {
            rep->deleted_kept++;
            continue;
        }
        int x = dry ? 0 : store_deleted_expire(st, &dv[i]);
        if (x < 0 && x != CF_E_NOTFOUND) {
            report(hooks, "%s: cannot remove the deleted mailbox %s: %s", dv[i].name, dv[i].dir,
                   cf_strerror(x));
            err = x;
        } else {
            rep->deleted++;
        }
    }
    for (size_t i = 0; i < nd; i++) store_deleted_fini(&dv[i]);
    free(dv);
    return err;
}
