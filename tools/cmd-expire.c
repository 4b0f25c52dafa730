/* cmd-expire.c: `coffer expire`: prune the duplicate-delivery database (duplicate_lifetime),
 * the Sieve vacation database (answers older than --vacation-days), and repack mailboxes that
 * still carry expunged records, reporting what went. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The database lmtpd's vacation action keeps (server/lmtpd/delivery.c): key USER NUL SENDER,
 * value the decimal time the last answer went to SENDER. */
#define VACATION_DB "vacation.db"
#define VACATION_DAYS_DEFAULT 30

struct older_rock {
    int64_t before;
    int dup;        /* dup.db values are "1 TIME"; vacation.db values "TIME" */
    long long n;
};

/* older: a record whose time is before the cut (or that cannot be read: nothing uses it). */
static int older(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct older_rock *o = rock;
    (void)key;
    (void)klen;
    (void)vlen;
    const char *p = val;
    if (o->dup) {
        if (strncmp(p, "1 ", 2)) return 1;
        p += 2;
    }
    char *end;
    errno = 0;
    long long when = strtoll(p, &end, 10);
    return errno || end == p || when < o->before ? 1 : 0;
}

static int count_older(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct older_rock *o = rock;
    if (older(key, klen, val, vlen, rock)) o->n++;
    return 0;
}

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
    struct older_rock o = { now - life, 1, 0 };
    if (dry) r = kv_foreach(dupdb_kv(st->dup), NULL, "", 0, count_older, &o);
    else if ((r = dupdb_prune(st->dup, now - life)) >= 0) o.n = r;
    if (r < 0) tool_error(t, "cannot prune %s: %s", DUPDB_DB, cf_strerror(r));
    snprintf(num, sizeof num, "%lld", o.n);
    snprintf(detail, sizeof detail, "%s: deliveries older than %llds", DUPDB_DB, life);
    table_add(&tab, (const char *const[]){ "duplicates", num, detail });

    /* 2. vacation answers: only when lmtpd ever made the database */
    char *vpath = xasprintf("%s/db/%s", config_str(t->cfg, CFG_CONFIGDIR), VACATION_DB);
    struct stat sb;
    if (r >= 0 && stat(vpath, &sb) == 0) {
        struct kv_db *vdb = NULL;
        struct older_rock v = { now - vdays * 86400, 0, 0 };
        r = kv_db_open(st->env, VACATION_DB, KV_TXN_NOSYNC, &vdb);
        if (!r && dry) r = kv_foreach(vdb, NULL, "", 0, count_older, &v);
        else if (!r && (r = kv_del_if(vdb, "", 0, older, &v)) >= 0) v.n = r;
        if (r < 0) tool_error(t, "cannot prune %s: %s", VACATION_DB, cf_strerror(r));
        snprintf(num, sizeof num, "%lld", v.n);
        snprintf(detail, sizeof detail, "%s: answers older than %lld days", VACATION_DB, vdays);
        table_add(&tab, (const char *const[]){ "vacation", num, detail });
        if (vdb) kv_db_close(&vdb);
    }
    free(vpath);

    /* 3. expunged records still in indexes (and their files, if a crash left any) */
    struct strarr names = STRARR_INIT;
    long long recs = 0, boxes = 0;
    if (r >= 0) r = mboxlist_foreach(st->mboxlist, NULL, "", add_name, &names);
    for (size_t i = 0; r >= 0 && i < names.count; i++) {
        tool_progress(t, i + 1, names.count, "mailboxes");
        struct index_header h;
        if (store_status(st, names.v[i], &h) < 0 || !h.expunged) continue;
        recs += h.expunged;
        boxes++;
        if (dry) continue;
        struct mailbox *mb;
        int x = store_open_mailbox(st, names.v[i], NULL, &mb);
        if (!x) x = mailbox_repack(mb);
        mailbox_close(&mb);
        if (x < 0 && x != CF_E_NOTFOUND) {
            tool_error(t, "%s: cannot repack: %s", names.v[i], cf_strerror(x));
            r = x;
        }
    }
    snprintf(num, sizeof num, "%lld", recs);
    snprintf(detail, sizeof detail, "expunged index records in %lld mailbox%s", boxes, boxes == 1 ? "" : "es");
    table_add(&tab, (const char *const[]){ "expunged", num, detail });
    strarr_fini(&names);
    table_print(&tab, t->json);
    if (dry && !t->json) fprintf(stderr, "coffer expire: dry run: nothing was removed\n");
    table_fini(&tab);
    store_close(&st);
    return tool_exit_for(r < 0 ? r : 0);
}
