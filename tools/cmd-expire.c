/* cmd-expire.c: `coffer expire`: one run of store_expire (store/store-expire.h): prune the
 * duplicate-delivery database (duplicate_lifetime), the Sieve vacation database (answers older
 * than --vacation-days), repack mailboxes that carry expunged records past expunge_retention
 * (or whose files are gone), and remove mailboxes hidden by delayed delete past it, reporting
 * what went. cofferd runs the same every expire_interval. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store-expire.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_error(void *rock, const char *msg)
{
    tool_error(rock, "%s", msg);
}

static void on_progress(void *rock, size_t done, size_t total)
{
    tool_progress(rock, done, total, "mailboxes");
}

int cmd_expire(struct tool *t)
{
    int dry = 0, bad = 0;
    long long vdays = config_int(t->cfg, CFG_EXPIRE_VACATION_DAYS);
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
    long long life = config_int(t->cfg, CFG_DUPLICATE_LIFETIME);
    struct store_expire_report rep;
    struct store_expire_hooks hooks = { on_error, on_progress, t };
    int r = store_expire(st, (int64_t)time(NULL), life, vdays, dry, &rep, &hooks);

    struct table tab;
    table_init(&tab, (const char *const[]){ "what", "removed#", "detail", NULL });
    char num[32], detail[256];
    snprintf(num, sizeof num, "%lld", rep.duplicates);
    snprintf(detail, sizeof detail, "dup.db: deliveries older than %llds", life);
    table_add(&tab, (const char *const[]){ "duplicates", num, detail });
    if (rep.vacation >= 0) {
        snprintf(num, sizeof num, "%lld", rep.vacation);
        snprintf(detail, sizeof detail, "vacation.db: answers older than %lld days", vdays);
        table_add(&tab, (const char *const[]){ "vacation", num, detail });
    }
    snprintf(num, sizeof num, "%lld", rep.expunged);
    snprintf(detail, sizeof detail, "expunged messages in %lld mailbox%s; %lld younger than %llds kept",
             rep.expunged_boxes, rep.expunged_boxes == 1 ? "" : "es", rep.expunged_kept,
             (long long)rep.retention);
    table_add(&tab, (const char *const[]){ "expunged", num, detail });
    snprintf(num, sizeof num, "%lld", rep.deleted);
    snprintf(detail, sizeof detail, "deleted mailboxes; %lld younger than %llds kept",
             rep.deleted_kept, (long long)rep.retention);
    table_add(&tab, (const char *const[]){ "deleted", num, detail });
    table_print(&tab, t->json);
    if (dry && !t->json) fprintf(stderr, "coffer expire: dry run: nothing was removed\n");
    table_fini(&tab);
    store_close(&st);
    return tool_exit_for(r < 0 ? r : 0);
}
