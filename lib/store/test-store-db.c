/* test-store-db.c: the store's database accessors (store-db.c) through the public API only,
 * as services and tools see them (no store-int.h), over real Berkeley DB. */
#include "store/store.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/coffer-storedbtest-XXXXXX";

static int count_cb(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)name;
    (void)e;
    (*(int *)rock)++;
    return 0;
}

static int list_cb(const char *extname, size_t matchlen, const char *name,
                   const struct mboxlist_entry *e, void *rock)
{
    (void)name;
    (void)e;
    if (matchlen == strlen(extname)) strarr_add(rock, extname);
    return 0;
}

static int hide_b(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    (void)rock;
    return strstr(name, "/b") == NULL;
}

/* refuse: a rename check that looks the target's parent up in the rename's transaction and
 * refuses any mailbox called ".../x/c" */
static int refuse(struct store_txn *txn, const char *oldname, const char *newname,
                  const struct mboxlist_entry *e, void *rock)
{
    (void)newname;
    (void)e;
    struct store *st = rock;
    int r = store_lookup_in(st, txn, "user/dan", NULL);
    if (r != 1) return r < 0 ? r : CF_E_NOTFOUND;
    return strstr(oldname, "/x/c") ? CF_E_PERM : 0;
}

static int root_cb(const char *root, const struct quota *qt, void *rock)
{
    (void)qt;
    strarr_add(rock, root);
    return 0;
}

static void test_mailbox_list(struct store *st)
{
    UNIT_EQ_INT(store_ensure_inbox(st, "dan"), 1);
    UNIT_EQ_INT(store_create(st, "user/dan/a", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(store_create(st, "user/dan/b", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(store_create(st, "user/dan/x/c", NULL, NULL, NULL, STORE_CREATE_PARENTS), 0);
    int n = 0;
    UNIT_EQ_INT(store_mailbox_foreach(st, "user/dan/", count_cb, &n), 0);
    UNIT_EQ_INT(n, 4);
    UNIT_EQ_INT(store_has_children(st, "user/dan/x"), 1);
    UNIT_EQ_INT(store_has_children(st, "user/dan/a"), 0);
    struct strarr seen = STRARR_INIT;
    UNIT_EQ_INT(store_list(st, "dan", "%", hide_b, list_cb, &seen), 0);
    UNIT_CHECK(strarr_find(&seen, "INBOX") >= 0);
    UNIT_CHECK(strarr_find(&seen, "a") >= 0);
    UNIT_CHECK(strarr_find(&seen, "b") < 0);   /* refused by visible() */
    strarr_fini(&seen);

    /* a refused check leaves everything as it was; an allowing one renames the subtree */
    UNIT_EQ_INT(store_rename_with_check(st, "user/dan/x", "user/dan/y", refuse, st), CF_E_PERM);
    UNIT_EQ_INT(store_lookup(st, "user/dan/x/c", NULL), 1);
    UNIT_EQ_INT(store_rename_with_check(st, "user/dan/a", "user/dan/z", refuse, st), 1);
    UNIT_EQ_INT(store_lookup(st, "user/dan/z", NULL), 1);
    UNIT_EQ_INT(store_lookup_in(st, NULL, "user/dan/a", NULL), 0);

    uint32_t last = 0;
    UNIT_EQ_INT(store_raise_uidvalidity(st, 0, &last), 0);
    UNIT_CHECK(last > 0);
    UNIT_EQ_INT(store_raise_uidvalidity(st, last + 100, &last), 0);
    uint32_t now = 0;
    UNIT_EQ_INT(store_raise_uidvalidity(st, 5, &now), 0);   /* never lowered */
    UNIT_EQ_INT(now, last);
}

static void test_subscriptions(struct store *st)
{
    /* max_subscriptions_per_user = 2 (main) */
    UNIT_EQ_INT(store_subscribe(st, "dan", "user/dan", 1), 0);
    UNIT_EQ_INT(store_subscribe(st, "dan", "user/dan/z", 1), 0);
    UNIT_EQ_INT(store_subscribe(st, "dan", "user/dan/z", 1), 0);          /* already */
    UNIT_EQ_INT(store_subscribe(st, "dan", "nosuch", 1), CF_E_LIMIT);
    UNIT_EQ_INT(store_subscribe(st, "dan", "nosuch", 0), 0);              /* a restore */
    struct strarr subs = STRARR_INIT;
    UNIT_EQ_INT(store_subscriptions(st, "dan", &subs), 0);
    UNIT_EQ_INT(subs.count, 3);
    UNIT_EQ_INT(store_unsubscribe(st, "dan", "nosuch"), 0);
    UNIT_EQ_INT(store_unsubscribe(st, "dan", "nosuch"), 0);
    strarr_fini(&subs);
    UNIT_EQ_INT(store_subscriptions(st, "dan", &subs), 0);
    UNIT_EQ_INT(subs.count, 2);
    UNIT_EQ_STR(subs.v[0], "user/dan");
    strarr_fini(&subs);
}

static void test_seen(struct store *st)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    UNIT_EQ_INT(store_create(st, "shared", NULL, "anyone\tlrs\t", NULL, 0), 0);
    UNIT_EQ_INT(store_lookup(st, "shared", &e), 1);
    struct buf set = BUF_INIT;
    UNIT_EQ_INT(store_seen_get(st, e.uniqueid, "dan", &set), 0);
    UNIT_EQ_INT(set.len, 0);
    UNIT_EQ_INT(store_seen_set(st, e.uniqueid, "dan", "1:3,7"), 0);
    UNIT_EQ_INT(store_seen_get(st, e.uniqueid, "dan", &set), 1);
    UNIT_EQ_STR(buf_cstr(&set), "1:3,7");
    UNIT_EQ_INT(store_seen_get(st, e.uniqueid, "eve", &set), 0);
    UNIT_EQ_INT(store_seen_set(st, e.uniqueid, "dan", "1 2"), CF_E_PARSE);
    buf_fini(&set);
    mboxlist_entry_fini(&e);
}

static void test_quota(struct store *st)
{
    /* a message in user/dan/z before the root exists: a new root counts it */
    struct mailbox *mb;
    UNIT_EQ_INT(store_open_mailbox(st, "user/dan/z", NULL, &mb), 0);
    struct mailbox_msg m = { .data = "Subject: q\r\n\r\nbody\r\n", .len = 20, .fd = -1 };
    UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
    mailbox_close(&mb);
    struct quota q;
    UNIT_EQ_INT(store_quota_get(st, "user/dan", &q), 0);
    UNIT_EQ_INT(store_quota_set(st, "user/dan", 100, QUOTA_UNLIMITED, &q), 0);
    UNIT_EQ_INT(q.limit_storage_kib, 100);
    UNIT_EQ_INT(q.limit_messages, QUOTA_UNLIMITED);
    UNIT_EQ_INT(q.used_bytes, 20);
    UNIT_EQ_INT(q.used_messages, 1);
    /* new limits keep the usage */
    UNIT_EQ_INT(store_quota_set(st, "user/dan", 50, 10, NULL), 0);
    UNIT_EQ_INT(store_quota_get(st, "user/dan", &q), 1);
    UNIT_EQ_INT(q.limit_messages, 10);
    UNIT_EQ_INT(q.used_messages, 1);
    UNIT_EQ_INT(store_quota_set(st, "user/dan", -5, 10, NULL), CF_E_PARSE);
    UNIT_EQ_INT(store_quota_set(st, "user/dan", QUOTA_STORAGE_KIB_MAX + 1, 10, NULL), CF_E_LIMIT);
    struct buf root = BUF_INIT;
    UNIT_EQ_INT(store_quota_root(st, "user/dan/x/c", &root), 1);
    UNIT_EQ_STR(buf_cstr(&root), "user/dan");
    UNIT_EQ_INT(store_quota_of(st, "user/dan/z", &root, &q), 1);
    UNIT_EQ_INT(q.used_bytes, 20);
    UNIT_EQ_INT(store_quota_of(st, "shared", &root, &q), 0);
    UNIT_EQ_INT(store_quota_set(st, "shared", 1, 1, NULL), 0);
    struct strarr roots = STRARR_INIT;
    UNIT_EQ_INT(store_quota_foreach(st, "", root_cb, &roots), 0);
    UNIT_EQ_INT(roots.count, 2);
    strarr_fini(&roots);
    UNIT_EQ_INT(store_quota_delete(st, "shared"), 0);
    UNIT_EQ_INT(store_quota_delete(st, "shared"), CF_E_NOTFOUND);
    UNIT_EQ_INT(store_quota_foreach(st, "", root_cb, &roots), 0);
    UNIT_EQ_INT(roots.count, 1);
    strarr_fini(&roots);
    buf_fini(&root);
}

static void test_dup_and_vacation(struct store *st)
{
    int64_t when = 0;
    UNIT_EQ_INT(store_dup_check(st, "<a@x>", "user/dan", &when), 0);
    UNIT_EQ_INT(store_dup_mark(st, "<a@x>", "user/dan", 1000), 0);
    UNIT_EQ_INT(store_dup_mark(st, "<b@x>", "user/dan", 3000), 0);
    UNIT_EQ_INT(store_dup_check(st, "<a@x>", "user/dan", &when), 1);
    UNIT_EQ_INT(when, 1000);
    UNIT_EQ_INT(store_dup_mark(st, "", "user/dan", 1), CF_E_PARSE);
    UNIT_EQ_INT(store_dup_expire(st, 2000, 1), 1);   /* dry run: counted, kept */
    UNIT_EQ_INT(store_dup_check(st, "<a@x>", "user/dan", NULL), 1);
    UNIT_EQ_INT(store_dup_expire(st, 2000, 0), 1);
    UNIT_EQ_INT(store_dup_check(st, "<a@x>", "user/dan", NULL), 0);
    UNIT_EQ_INT(store_dup_check(st, "<b@x>", "user/dan", NULL), 1);

    /* vacation.db: not made by an expiry, made by the first use */
    UNIT_EQ_INT(store_vacation_expire(st, 1 << 30, 1), CF_E_NOTFOUND);
    UNIT_EQ_INT(store_vacation_check(st, "dan", "s@x", 7, 100000), 0);
    UNIT_EQ_INT(store_vacation_mark(st, "dan", "s@x", 100000), 0);
    UNIT_EQ_INT(store_vacation_mark(st, "dan", "old@x", 10), 0);
    UNIT_EQ_INT(store_vacation_check(st, "dan", "s@x", 7, 100000 + 86400), 1);
    UNIT_EQ_INT(store_vacation_check(st, "dan", "s@x", 1, 100000 + 86400), 0);   /* a day on */
    UNIT_EQ_INT(store_vacation_check(st, "eve", "s@x", 7, 100000), 0);
    UNIT_EQ_INT(store_vacation_expire(st, 5000, 1), 1);
    UNIT_EQ_INT(store_vacation_expire(st, 5000, 0), 1);
    UNIT_EQ_INT(store_vacation_expire(st, 5000, 1), 0);
    UNIT_EQ_INT(store_vacation_check(st, "dan", "s@x", 7, 100000), 1);
}

/* urlauth.db: keys made on demand, one per (user, mailbox), replaced, removed per user and
 * per mailbox (RFC 4467 RESETKEY, mailbox deletion) */
static void test_urlauth(struct store *st)
{
    unsigned char k1[STORE_URLAUTH_KEY_LEN], k2[STORE_URLAUTH_KEY_LEN], k3[STORE_URLAUTH_KEY_LEN];
    const char *id1 = "0123456789abcdef0123456789abcdef", *id2 = "fedcba9876543210fedcba9876543210";
    UNIT_EQ_INT(store_urlauth_forget(st, id1), 0);            /* no database yet: nothing made */
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id1, 0, k1), 0);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id1, 1, k1), 1);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id1, 0, k2), 1);
    UNIT_CHECK(!memcmp(k1, k2, sizeof k1));                   /* made once, then kept */
    UNIT_EQ_INT(store_urlauth_key(st, "eve", id1, 1, k3), 1);
    UNIT_CHECK(memcmp(k1, k3, sizeof k1) != 0);               /* per user */
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id2, 1, k3), 1);
    UNIT_CHECK(memcmp(k1, k3, sizeof k1) != 0);               /* per mailbox */
    UNIT_EQ_INT(store_urlauth_reset(st, "dan", id1), 0);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id1, 0, k2), 1);
    UNIT_CHECK(memcmp(k1, k2, sizeof k1) != 0);               /* replaced */
    UNIT_EQ_INT(store_urlauth_forget(st, id1), 2);            /* dan's and eve's */
    UNIT_EQ_INT(store_urlauth_key(st, "eve", id1, 0, k2), 0);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id2, 0, k2), 1);
    UNIT_EQ_INT(store_urlauth_reset(st, "dan", NULL), 0);     /* all of dan's */
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id2, 0, k2), 0);
    long long n = -1;
    UNIT_EQ_INT(store_db_count(st, "urlauth.db", &n), 0);
    UNIT_EQ_INT(n, 0);
}

/* load_urlauth: one urlauth.db record (dan, id) with value val, through a text dump. */
static void load_urlauth(struct store *st, const char *id, const char *val)
{
    FILE *f = tmpfile();
    UNIT_CHECK(f != NULL);
    if (!f) return;
    fprintf(f, "coffer-kv-dump 1 urlauth.db\ndan%%00%s ", id);
    for (const char *p = val; *p; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '%') fputc(*p, f);
        else fprintf(f, "%%%02X", (unsigned char)*p);
    }
    fprintf(f, "\ncoffer-kv-end 1\n");
    rewind(f);
    UNIT_EQ_INT(store_db_load(st, "urlauth.db", f, 0), 0);
    fclose(f);
}

/* urlauth.db version 2 records: a restored key beside the current one, with its bounds
 * (coffer restore); RESETKEY drops it; damaged records are refused */
static void test_urlauth_restored(struct store *st)
{
    unsigned char old[STORE_URLAUTH_KEY_LEN], k1[STORE_URLAUTH_KEY_LEN];
    unsigned char k2[STORE_URLAUTH_KEY_LEN], got[STORE_URLAUTH_KEY_LEN];
    const char *id1 = "aaaa456789abcdef0123456789abcdef", *id2 = "bbbb456789abcdef0123456789abcdef";
    uint32_t uv = 0, lim = 0;
    memset(old, 0x5a, sizeof old);
    UNIT_EQ_INT(store_urlauth_restored(st, "dan", id1, got, &uv, &lim), 0);
    UNIT_EQ_INT(store_urlauth_restore(st, "dan", id1, old, 0, 5), CF_E_PARSE);
    /* a new mailbox: a fresh current key, the old one kept apart */
    UNIT_EQ_INT(store_urlauth_restore(st, "dan", id1, old, 77, 5), 0);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id1, 0, k1), 1);
    UNIT_CHECK(memcmp(k1, old, sizeof old) != 0);
    UNIT_EQ_INT(store_urlauth_restored(st, "dan", id1, got, &uv, &lim), 1);
    UNIT_CHECK(!memcmp(got, old, sizeof old));
    UNIT_EQ_INT(uv, 77);
    UNIT_EQ_INT(lim, 5);
    /* GENURLAUTH's lookup keeps both */
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id1, 1, k2), 1);
    UNIT_CHECK(!memcmp(k1, k2, sizeof k1));
    UNIT_EQ_INT(store_urlauth_restored(st, "dan", id1, got, &uv, &lim), 1);
    /* an existing current key stays when a restore adds the old one */
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id2, 1, k1), 1);
    UNIT_EQ_INT(store_urlauth_restore(st, "dan", id2, old, 1, 4294967295u), 0);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id2, 0, k2), 1);
    UNIT_CHECK(!memcmp(k1, k2, sizeof k1));
    UNIT_EQ_INT(store_urlauth_restored(st, "dan", id2, got, &uv, &lim), 1);
    UNIT_EQ_INT(lim, 4294967295u);
    /* RESETKEY: a fresh version 1 record, the restored key gone */
    UNIT_EQ_INT(store_urlauth_reset(st, "dan", id1), 0);
    UNIT_EQ_INT(store_urlauth_restored(st, "dan", id1, got, &uv, &lim), 0);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id1, 0, k2), 1);
    /* damaged version 2 records: unreadable, never half read */
    char hex[2 * STORE_URLAUTH_KEY_LEN + 1];
    for (size_t i = 0; i < STORE_URLAUTH_KEY_LEN; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned)i);
    const char *bad[] = { "2 %s %s 0 5", "2 %s %s 7 0", "2 %s %s 7", "2 %s %s 7 5 ", "2 %s %s -7 5",
                          "2 %s %s 4294967296 5", "2 %s %s 07 5", "2 %s %sX 7 5", "3 %s %s 7 5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char val[256];
        snprintf(val, sizeof val, bad[i], hex, hex);
        load_urlauth(st, id2, val);
        UNIT_EQ_INT(store_urlauth_restored(st, "dan", id2, got, &uv, &lim), CF_E_CORRUPT);
        UNIT_EQ_INT(store_urlauth_key(st, "dan", id2, 0, k2), CF_E_CORRUPT);
    }
    char val[256];
    snprintf(val, sizeof val, "2 %s %s 7 5", hex, hex);
    load_urlauth(st, id2, val);
    UNIT_EQ_INT(store_urlauth_restored(st, "dan", id2, got, &uv, &lim), 1);
    UNIT_EQ_INT(store_urlauth_key(st, "dan", id2, 0, k2), 1);
    UNIT_EQ_INT(k2[3], 3);
    UNIT_EQ_INT(store_urlauth_reset(st, "dan", NULL), 0);
}

static void test_whole_databases(struct store *st)
{
    long long n = -1;
    UNIT_EQ_INT(store_db_count(st, "subs.db", &n), 0);
    UNIT_EQ_INT(n, 2);
    UNIT_EQ_INT(store_db_count(st, "vacation.db", &n), 0);
    UNIT_EQ_INT(n, 1);
    FILE *f = tmpfile();
    UNIT_CHECK(f != NULL);
    if (!f) return;
    UNIT_EQ_INT(store_db_dump(st, "subs.db", f), 0);
    UNIT_EQ_INT(store_unsubscribe(st, "dan", "user/dan"), 0);
    UNIT_EQ_INT(store_subscribe(st, "dan", "other", 0), 0);
    rewind(f);
    UNIT_EQ_INT(store_db_load(st, "subs.db", f, 1), 0);   /* replace: back to the dump */
    struct strarr subs = STRARR_INIT;
    UNIT_EQ_INT(store_subscriptions(st, "dan", &subs), 0);
    UNIT_EQ_INT(subs.count, 2);
    UNIT_CHECK(strarr_find(&subs, "other") < 0);
    strarr_fini(&subs);
    /* a dump names its database: loading it into another is refused */
    rewind(f);
    UNIT_EQ_INT(store_db_load(st, "seen.db", f, 0), CF_E_PARSE);
    fclose(f);
}

int main(void)
{
    log_init("test-store-db", 1, LOG_LVL_ERR);
    if (!mkdtemp(dir)) return 2;
    char *conf = xasprintf("%s/coffer.conf", dir), *parts = xasprintf("%s/partitions.conf", dir);
    const char *text = "configdir = cfg\nmax_subscriptions_per_user = 2\n";
    file_write_atomic(conf, text, strlen(text), 0600);
    const char *ptext = "default p1\n";
    file_write_atomic(parts, ptext, strlen(ptext), 0600);
    struct config *cfg;
    struct buf err = BUF_INIT;
    UNIT_EQ_INT(config_load(conf, &cfg, &err), 0);
    UNIT_EQ_INT(store_db_recover(cfg), 0);
    struct store *st;
    UNIT_EQ_INT(store_open(cfg, &st), 0);

    test_mailbox_list(st);
    test_subscriptions(st);
    test_seen(st);
    test_quota(st);
    test_dup_and_vacation(st);
    test_urlauth(st);
    test_urlauth_restored(st);
    test_whole_databases(st);
    store_close(&st);

    /* cofferd's periodic work over the same environment */
    UNIT_EQ_INT(store_db_failchk(cfg), 0);
    UNIT_CHECK(store_db_maintain(cfg) >= 0);

    config_free(&cfg);
    buf_fini(&err);
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    free(cmd);
    free(conf);
    free(parts);
    UNIT_DONE();
}
