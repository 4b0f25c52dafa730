/* test-metadata.c: RFC 5464 annotations in the store (metadb.c, store-metadata.c) through the
 * public API: scopes, case, DEPTH, binary values, every limit, atomic batches, and that a
 * rename keeps and a delete removes a mailbox's entries. */
#include "store/store.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/coffer-metadatatest-XXXXXX";

#define FRED "user/fred"
#define LIM "user/lim"

static int collect(const char *entry, const char *val, size_t len, void *rock)
{
    struct buf *b = rock;
    buf_printf(b, "%s=%.*s;", entry, (int)len, val);
    return 0;
}

/* list: "entry=value;" for store_metadata_foreach */
static const char *list(struct store *st, const char *uid, const char *user, const char *entry,
                        int depth, struct buf *b)
{
    buf_reset(b);
    UNIT_EQ_INT(store_metadata_foreach(st, uid, user, entry, depth, collect, b), 0);
    return buf_cstr(b);
}

/* set1: one entry of mailbox (internal name, "" the server) */
static int set1(struct store *st, const char *mailbox, const char *user, const char *entry,
                const char *val, long long *maxsize)
{
    struct store_metadata_item it = { entry, val, val ? strlen(val) : 0 };
    return store_metadata_set(st, mailbox, user, &it, 1, maxsize);
}

static const char *uid_of(struct store *st, const char *name, struct mboxlist_entry *e)
{
    mboxlist_entry_fini(e);
    UNIT_EQ_INT(store_lookup(st, name, e), 1);
    return e->uniqueid;
}

static void test_basic(struct store *st)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct buf v = BUF_INIT, b = BUF_INIT;
    long long max = -1;
    UNIT_EQ_INT(store_create(st, "user/fred", NULL, NULL, NULL, 0), 0);
    const char *uid = uid_of(st, "user/fred", &e);
    UNIT_EQ_INT(set1(st, FRED, "fred", "/shared/Comment", "hello", &max), 0);
    UNIT_EQ_INT(max, 0);
    UNIT_EQ_INT(set1(st, FRED, "fred", "/private/comment", "mine", &max), 0);
    /* case-insensitive names (RFC 5464 section 3.2), reported lower-cased */
    UNIT_EQ_INT(store_metadata_get(st, uid, "fred", "/SHARED/COMMENT", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "hello");
    UNIT_EQ_INT(store_metadata_get(st, uid, "fred", "/private/comment", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "mine");
    /* another user's private entries are their own */
    UNIT_EQ_INT(store_metadata_get(st, uid, "joe", "/private/comment", &v), 0);
    UNIT_EQ_INT(store_metadata_get(st, uid, NULL, "/private/comment", &v), 0);
    /* the server's entries are apart from the mailbox's */
    UNIT_EQ_INT(store_metadata_get(st, STORE_METADATA_SERVER, "fred", "/shared/comment", &v), 0);
    UNIT_EQ_INT(set1(st, STORE_METADATA_SERVER, NULL, "/shared/admin", "mailto:a@b", &max), 0);
    UNIT_EQ_INT(store_metadata_get(st, NULL, NULL, "/shared/admin", &v), 1);
    /* binary values */
    struct store_metadata_item bin = { "/shared/vendor/x/bin", "a\0b", 3 };
    UNIT_EQ_INT(store_metadata_set(st, FRED, NULL, &bin, 1, &max), 0);
    UNIT_EQ_INT(store_metadata_get(st, uid, NULL, "/shared/vendor/x/bin", &v), 1);
    UNIT_EQ_INT((int)v.len, 3);
    UNIT_CHECK(!memcmp(v.s, "a\0b", 3));
    /* DEPTH 0, 1, infinity; "/vendorx" is not below "/vendor" */
    UNIT_EQ_INT(set1(st, FRED, NULL, "/shared/vendor", "v", &max), 0);
    UNIT_EQ_INT(set1(st, FRED, NULL, "/shared/vendor/y", "y", &max), 0);
    UNIT_EQ_INT(set1(st, FRED, NULL, "/shared/vendorx", "no", &max), 0);
    UNIT_EQ_STR(list(st, uid, NULL, "/shared/vendor", 0, &b), "/shared/vendor=v;");
    UNIT_EQ_STR(list(st, uid, NULL, "/shared/vendor", 1, &b),
                "/shared/vendor=v;/shared/vendor/y=y;");
    UNIT_EQ_STR(list(st, uid, NULL, "/shared/vendor", -1, &b),
                "/shared/vendor=v;/shared/vendor/x/bin=a;/shared/vendor/y=y;");
    UNIT_EQ_STR(list(st, uid, "fred", "/private", 1, &b), "/private/comment=mine;");
    UNIT_EQ_STR(list(st, uid, NULL, "/private", -1, &b), "");
    /* NIL removes; removing what is not there is fine */
    UNIT_EQ_INT(set1(st, FRED, NULL, "/shared/vendorx", NULL, &max), 0);
    UNIT_EQ_INT(set1(st, FRED, NULL, "/shared/nothing", NULL, &max), 0);
    UNIT_EQ_INT(store_metadata_get(st, uid, NULL, "/shared/vendorx", &v), 0);
    /* bad names */
    UNIT_EQ_INT(set1(st, FRED, NULL, "/other/x", "1", &max), CF_E_PARSE);
    UNIT_EQ_INT(set1(st, FRED, NULL, "/shared", "1", &max), CF_E_PARSE);
    UNIT_EQ_INT(set1(st, FRED, NULL, "/private/x", "1", &max), CF_E_PARSE);
    UNIT_EQ_INT(set1(st, FRED, NULL, "/sharedx/y", "1", &max), CF_E_PARSE);

    /* a rename keeps them (the unique id moves with the mailbox) */
    UNIT_EQ_INT(store_create(st, "user/fred/a", NULL, NULL, NULL, 0), 0);
    const char *auid = uid_of(st, "user/fred/a", &e);
    char *keep = xstrdup(auid);
    UNIT_EQ_INT(set1(st, "user/fred/a", "fred", "/private/comment", "child", &max), 0);
    UNIT_EQ_INT(set1(st, "user/fred/a", "joe", "/private/comment", "joe's", &max), 0);
    UNIT_EQ_INT(set1(st, "user/fred/a", NULL, "/shared/comment", "shared child", &max), 0);
    UNIT_CHECK(store_rename(st, "user/fred/a", "user/fred/b", NULL) >= 1);
    UNIT_EQ_INT(store_metadata_get(st, uid_of(st, "user/fred/b", &e), "fred", "/private/comment",
                                   &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "child");
    /* a delete removes them, every user's */
    UNIT_EQ_INT(store_delete_opts(st, "user/fred/b", STORE_DELETE_NOW), 0);
    UNIT_EQ_INT(store_metadata_get(st, keep, "fred", "/private/comment", &v), 0);
    UNIT_EQ_INT(store_metadata_get(st, keep, "joe", "/private/comment", &v), 0);
    UNIT_EQ_INT(store_metadata_get(st, keep, NULL, "/shared/comment", &v), 0);
    /* a change never lands on a mailbox that is gone */
    UNIT_EQ_INT(set1(st, "user/fred/b", NULL, "/shared/comment", "late", &max), CF_E_NOTFOUND);
    UNIT_EQ_INT(store_metadata_get(st, keep, NULL, "/shared/comment", &v), 0);
    /* the other mailbox kept its own */
    UNIT_EQ_INT(store_metadata_get(st, uid_of(st, "user/fred", &e), "fred", "/private/comment",
                                   &v), 1);
    /* a user's private entries go with the user */
    UNIT_CHECK(store_metadata_forget_user(st, "fred") >= 1);
    UNIT_EQ_INT(store_metadata_get(st, uid_of(st, "user/fred", &e), "fred", "/private/comment",
                                   &v), 0);
    UNIT_EQ_INT(store_metadata_get(st, uid_of(st, "user/fred", &e), NULL, "/shared/comment", &v),
                1);
    free(keep);
    mboxlist_entry_fini(&e);
    buf_fini(&v);
    buf_fini(&b);
}

/* the configuration of main: 16-byte values, 4 entries and 40 bytes per scope, 6 per user */
static void test_limits(struct store *st)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct buf v = BUF_INIT;
    long long max = -1;
    UNIT_EQ_INT(store_create(st, "user/lim", NULL, NULL, NULL, 0), 0);
    char *uid = xstrdup(uid_of(st, "user/lim", &e));
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/big", "0123456789abcdefX", &max), CF_E_LIMIT);
    UNIT_EQ_INT(max, 16);
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/big", "0123456789abcdef", &max), 0);
    UNIT_EQ_INT(max, 0);
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/a", "1", &max), 0);
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/b", "2", &max), 0);
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/c", "3", &max), 0);
    /* a fifth entry: TOOMANY (max 0), and nothing of the batch is kept */
    struct store_metadata_item two[] = { { "/shared/a", "changed", 7 }, { "/shared/d", "4", 1 } };
    UNIT_EQ_INT(store_metadata_set(st, LIM, NULL, two, 2, &max), CF_E_LIMIT);
    UNIT_EQ_INT(max, 0);
    UNIT_EQ_INT(store_metadata_get(st, uid, NULL, "/shared/a", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "1");
    UNIT_EQ_INT(store_metadata_get(st, uid, NULL, "/shared/d", &v), 0);
    /* the special-use flags change in the same transaction: not at all when it is refused */
    struct store_metadata_item use[] = { { STORE_METADATA_SPECIALUSE, "\\Sent", 5 },
                                         { "/shared/d", "4", 1 } };
    UNIT_EQ_INT(store_metadata_set(st, LIM, NULL, use, 2, &max), CF_E_LIMIT);
    UNIT_EQ_STR(uid_of(st, LIM, &e) ? e.flags : "?", "");
    UNIT_EQ_INT(store_metadata_set(st, LIM, NULL, use, 1, &max), 0);
    UNIT_EQ_STR(uid_of(st, LIM, &e) ? e.flags : "?", "\\Sent");
    UNIT_EQ_INT(store_metadata_get(st, uid, NULL, STORE_METADATA_SPECIALUSE, &v), 0);
    /* replacing one while removing another is fine at the limit */
    struct store_metadata_item swap[] = { { "/shared/a", NULL, 0 }, { "/shared/d", "4", 1 } };
    UNIT_EQ_INT(store_metadata_set(st, LIM, NULL, swap, 2, &max), 0);
    /* the bytes per scope: 16 + 1 + 1 + 1 = 19 now; 40 at most */
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/b", "0123456789abcdef", &max), 0);   /* 34 */
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/c", "0123456789abcdef", &max), CF_E_LIMIT);
    /* shrinking is never refused */
    UNIT_EQ_INT(set1(st, LIM, NULL, "/shared/b", "", &max), 0);
    /* the private scope counts apart, per user */
    UNIT_EQ_INT(set1(st, LIM, "lim", "/private/a", "1", &max), 0);
    UNIT_EQ_INT(set1(st, LIM, "lim", "/private/b", "1", &max), 0);
    UNIT_EQ_INT(set1(st, LIM, "lim", "/private/c", "1", &max), 0);
    UNIT_EQ_INT(set1(st, LIM, "lim", "/private/d", "1", &max), 0);
    UNIT_EQ_INT(set1(st, LIM, "lim", "/private/e", "1", &max), CF_E_LIMIT);
    UNIT_EQ_INT(set1(st, LIM, "other", "/private/e", "1", &max), 0);
    /* and per user over all mailboxes and the server: 4 here, 2 more on the server */
    UNIT_EQ_INT(set1(st, NULL, "lim", "/private/a", "1", &max), 0);
    UNIT_EQ_INT(set1(st, NULL, "lim", "/private/b", "1", &max), 0);
    UNIT_EQ_INT(set1(st, NULL, "lim", "/private/c", "1", &max), CF_E_LIMIT);
    UNIT_EQ_INT(max, 0);
    free(uid);
    mboxlist_entry_fini(&e);
    buf_fini(&v);
}

int main(void)
{
    log_init("test-metadata", 1, LOG_LVL_ERR);
    if (!mkdtemp(dir)) return 2;
    char *conf = xasprintf("%s/coffer.conf", dir), *parts = xasprintf("%s/partitions.conf", dir);
    char *p1 = xasprintf("%s/p1", dir);
    struct buf text = BUF_INIT;
    buf_printf(&text, "configdir = %s/cfg\ndelete_mode = immediate\n", dir);
    file_write_atomic(conf, text.s, text.len, 0600);
    buf_reset(&text);
    buf_printf(&text, "default %s\n", p1);
    file_write_atomic(parts, text.s, text.len, 0600);
    struct config *cfg;
    struct buf err = BUF_INIT;
    UNIT_EQ_INT(config_load(conf, &cfg, &err), 0);
    UNIT_EQ_INT(store_db_recover(cfg), 0);
    struct store *st;
    UNIT_EQ_INT(store_open(cfg, &st), 0);
    test_basic(st);
    store_close(&st);
    config_free(&cfg);

    buf_reset(&text);
    buf_printf(&text, "configdir = %s/cfg\nmetadata_max_entry_size = 16\nmetadata_max_entries = 4\n"
               "metadata_max_size = 40\nmetadata_max_entries_per_user = 6\n", dir);
    file_write_atomic(conf, text.s, text.len, 0600);
    UNIT_EQ_INT(config_load(conf, &cfg, &err), 0);
    UNIT_EQ_INT(store_open(cfg, &st), 0);
    test_limits(st);
    store_close(&st);
    config_free(&cfg);

    buf_fini(&err);
    buf_fini(&text);
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    free(cmd);
    free(conf);
    free(parts);
    free(p1);
    UNIT_DONE();
}
