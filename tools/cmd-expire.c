/* cmd-expire.c: `coffer expire`: prune the duplicate-delivery database (duplicate_lifetime),
 * the Sieve vacation database (answers older than --vacation-days), repack mailboxes that
 * carry expunged records past expunge_retention (or whose files are gone), and remove
 * mailboxes hidden by delayed delete past it, reporting what went. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store-retained.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VACATION_DAYS_DEFAULT 30

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

int cmd_expire(struct tool *t)
{
    int dry = 0, bad = 0;
    long long vdays = VACATION_DAYS_DEFAULT;
    for (int i = 0; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "--dry-run") || !strcmp(t->argv[i], "-n")) dry = 1;
        else if (!strcmp(t->argv[i], "--vacation-days") && i + 1 < t->argc) {
            char *end;
            vdays = strtoll(t->argv[++i], &end, 10);
            if (*end || vdays < 1) bad = 1;
        } else bad = 1;
    }
    if (bad) {
        tool_error(t, "usage: coffer expire [--dry-run] [--vacation-days DAYS]");
        return EXIT_USAGE;
    }
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) return rc;
    int64_t now = (int64_t)time(NULL);
    struct table tab;
    table_init(&tab, (const char *const[]){ "what", "removed#", "detail", NULL });
    char num[32], detail[256];
    int r = 0;

    /* 1. duplicate suppression records past duplicate_lifetime */
    long long life = config_int(t->cfg, CFG_DUPLICATE_LIFETIME);
    r = store_dup_expire(st, now - life, dry);
    if (r < 0) tool_error(t, "cannot prune dup.db: %s", cf_strerror(r));
    snprintf(num, sizeof num, "%d", r < 0 ? 0 : r);
    snprintf(detail, sizeof detail, "dup.db: deliveries older than %llds", life);
    table_add(&tab, (const char *const[]){ "duplicates", num, detail });

    /* 2. vacation answers: only when lmtpd ever made the database */
    if (r >= 0) {
        r = store_vacation_expire(st, now - vdays * 86400, dry);
        if (r < 0 && r != CF_E_NOTFOUND)
            tool_error(t, "cannot prune vacation.db: %s", cf_strerror(r));
        if (r != CF_E_NOTFOUND) {
            snprintf(num, sizeof num, "%d", r < 0 ? 0 : r);
            snprintf(detail, sizeof detail, "vacation.db: answers older than %lld days", vdays);
            table_add(&tab, (const char *const[]){ "vacation", num, detail });
        } else {
            r = 0;
        }
    }

    /* 3. expunged records still in indexes whose files are gone or past expunge_retention
     * (and their files); records younger than that stay for coffer unexpunge */
    int64_t retention = store_expunge_retention(st), cutoff = now - retention;
    struct strarr names = STRARR_INIT;
    long long recs = 0, boxes = 0, kept = 0;
    if (r >= 0) r = store_mailbox_foreach(st, "", add_name, &names);
    for (size_t i = 0; r >= 0 && i < names.count; i++) {
        tool_progress(t, i + 1, names.count, "mailboxes");
        struct index_header h;
        if (store_status(st, names.v[i], &h) < 0 || !h.expunged) continue;
        struct mailbox *mb;
        int x = store_open_mailbox(st, names.v[i], NULL, &mb);
        uint32_t due = 0, keep = 0;
        if (!x) x = mailbox_expunged_due(mb, cutoff, &due, &keep);
        if (!x && due && !dry) x = mailbox_repack_expired(mb, cutoff, &due);
        mailbox_close(&mb);
        if (x < 0 && x != CF_E_NOTFOUND) {
            tool_error(t, "%s: cannot repack: %s", names.v[i], cf_strerror(x));
            r = x;
        }
        if (x < 0) continue;
        recs += due;
        kept += keep;
        if (due) boxes++;
    }
    snprintf(num, sizeof num, "%lld", recs);
    snprintf(detail, sizeof detail, "expunged messages in %lld mailbox%s; %lld younger than %llds kept",
             boxes, boxes == 1 ? "" : "es", kept, (long long)retention);
    table_add(&tab, (const char *const[]){ "expunged", num, detail });

    /* 4. mailboxes hidden by delayed delete past expunge_retention */
    struct store_deleted *dv = NULL;
    size_t nd = 0;
    long long gone = 0, held = 0;
    if (r >= 0) r = store_deleted_list(st, &dv, &nd);
    for (size_t i = 0; r >= 0 && i < nd; i++) {
        if (dv[i].deleted_at > cutoff) {
            held++;
            continue;
        }
        int x = dry ? 0 : store_deleted_expire(st, &dv[i]);
        if (x < 0 && x != CF_E_NOTFOUND) {
            tool_error(t, "%s: cannot remove the deleted mailbox %s: %s", dv[i].name, dv[i].dir, cf_strerror(x));
            r = x;
        } else {
            gone++;
        }
    }
    for (size_t i = 0; i < nd; i++) store_deleted_fini(&dv[i]);
    free(dv);
    snprintf(num, sizeof num, "%lld", gone);
    snprintf(detail, sizeof detail, "deleted mailboxes; %lld younger than %llds kept", held, (long long)retention);
    table_add(&tab, (const char *const[]){ "deleted", num, detail });
    strarr_fini(&names);
    table_print(&tab, t->json);
    if (dry && !t->json) fprintf(stderr, "coffer expire: dry run: nothing was removed\n");
    table_fini(&tab);
    store_close(&st);
    return tool_exit_for(r < 0 ? r : 0);
}
