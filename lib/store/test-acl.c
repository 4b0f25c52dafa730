/* test-acl.c: unit tests of lib/store/acl.c: rights letters, the user rule, editing ACL text,
 * and the mailbox list + header file update against a real store. */
#include "store/acl.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *rights_of(unsigned mask)
{
    static char out[16];
    return acl_format_rights(mask, out);
}

static unsigned parse(const char *s, int strict, int *r)
{
    unsigned m = 0;
    *r = acl_parse_rights(s, strlen(s), strict, &m);
    return m;
}

static void test_letters(void)
{
    static const struct { const char *in; int strict; int r; const char *out; } cases[] = {
        { "", 1, 0, "" },
        { "lr", 1, 0, "lr" },
        { "arl", 1, 0, "lra" },
        { "lrswipkxtea", 1, 0, "lrswipkxtea" },
        { "c", 1, 0, "kx" },              /* RFC 4314 section 2.1.1 */
        { "d", 1, 0, "xte" },
        { "lrcd", 1, 0, "lrkxte" },
        { "lrQ", 1, CF_E_PARSE, NULL },
        { "lr0", 1, CF_E_PARSE, NULL },
        { "lrQ", 0, 0, "lr" },            /* stored text: unknown letters skipped */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r;
        unsigned m = parse(cases[i].in, cases[i].strict, &r);
        UNIT_EQ_INT(r, cases[i].r);
        if (cases[i].out) UNIT_EQ_STR(rights_of(m), cases[i].out);
    }
    UNIT_EQ_STR(rights_of(ACL_MASK_ALL), ACL_RIGHTS_ALL);
    UNIT_EQ_INT(acl_right_bit('l'), 1);
    UNIT_EQ_INT(acl_right_bit('a'), 1 << 10);
    UNIT_EQ_INT(acl_right_bit('c'), 0);
    UNIT_EQ_INT(acl_right_bit('\0'), 0);
}

static void test_idents(void)
{
    UNIT_EQ_INT(acl_ident_valid("fred"), 1);
    UNIT_EQ_INT(acl_ident_valid("anyone"), 1);
    UNIT_EQ_INT(acl_ident_valid("fred@example.com"), 1);
    UNIT_EQ_INT(acl_ident_valid(""), 0);
    UNIT_EQ_INT(acl_ident_valid("-fred"), 0);
    UNIT_EQ_INT(acl_ident_valid("a b"), 0);
    UNIT_EQ_INT(acl_ident_valid("a\tb"), 0);
    UNIT_EQ_INT(acl_ident_valid("a\nb"), 0);
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    UNIT_EQ_INT(acl_ident_valid(big), 0);
    big[ACL_IDENT_MAX] = '\0';
    UNIT_EQ_INT(acl_ident_valid(big), 1);
}

static void test_rule(void)
{
    static const struct {
        const char *acl, *name, *user;
        int admin;
        const char *want;
    } cases[] = {
        /* plain entries */
        { "fred\tlrs\t", "news", "fred", 0, "lrs" },
        { "fred\tlrs\t", "news", "joe", 0, "" },
        { "anyone\tlr\t", "news", "joe", 0, "lr" },
        { "anyone\tlr\t", "news", NULL, 0, "lr" },
        { "anonymous\tl\t", "news", NULL, 0, "l" },
        { "anonymous\tl\t", "news", "joe", 0, "" },
        /* grants add up; negative rights win (RFC 4314 section 2) */
        { "anyone\tlr\tjoe\tsw\t", "news", "joe", 0, "lrsw" },
        { "anyone\tlrs\t-joe\trs\t", "news", "joe", 0, "l" },
        { "anyone\tlrs\t-anyone\ts\t", "news", "fred", 0, "lr" },
        { "joe\tlrswipkxtea\t-joe\ta\t", "news", "joe", 0, "lrswipkxte" },
        /* obsolete letters in stored text */
        { "joe\tlrcd\t", "news", "joe", 0, "lrkxte" },
        /* the owner always keeps l and a, and gets the rest from the ACL */
        { "fred\tlrswipkxtea\t", "user/fred", "fred", 0, "lrswipkxtea" },
        { "", "user/fred/Sent", "fred", 0, "la" },
        { "fred\tr\t", "user/fred", "fred", 0, "lra" },
        { "-fred\tlra\t", "user/fred", "fred", 0, "la" },
        { "fred\tlrswipkxtea\t", "user/fredx", "fred", 0, "lrswipkxtea" },
        { "", "user/fredx", "fred", 0, "" },
        /* another user's mailbox: only the ACL */
        { "fred\tlrswipkxtea\tjoe\tlr\t", "user/fred/x", "joe", 0, "lr" },
        /* administrators have everything */
        { "", "user/fred", "admin", 1, "lrswipkxtea" },
        { "-admin\tlrswipkxtea\t", "news", "admin", 1, "lrswipkxtea" },
        /* malformed text grants nothing past the damage; name prefixes do not match */
        { "joe\tlr", "news", "joe", 0, "lr" },
        { "joe", "news", "joe", 0, "" },
        { "jo\tlr\tjoey\tlr\t", "news", "joe", 0, "" },
        { NULL, "news", "joe", 0, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned m = acl_user_rights(cases[i].acl, cases[i].name, cases[i].user, cases[i].admin);
        if (strcmp(rights_of(m), cases[i].want))
            fprintf(stderr, "case %zu: acl=%s name=%s user=%s\n", i,
                    cases[i].acl ? cases[i].acl : "(null)", cases[i].name,
                    cases[i].user ? cases[i].user : "(null)");
        UNIT_EQ_STR(rights_of(m), cases[i].want);
    }
}

static void test_edit(void)
{
    static const struct {
        const char *acl, *ident;
        enum acl_mode mode;
        const char *rights, *want;
    } cases[] = {
        { "", "joe", ACL_REPLACE, "lr", "joe\tlr\t" },
        { NULL, "joe", ACL_REPLACE, "lr", "joe\tlr\t" },
        { "joe\tlr\t", "joe", ACL_REPLACE, "lrs", "joe\tlrs\t" },
        { "joe\tlr\tfred\ta\t", "joe", ACL_ADD, "wc", "fred\ta\tjoe\tlrwkx\t" },
        { "joe\tlr\t", "joe", ACL_REMOVE, "r", "joe\tl\t" },
        { "joe\tlr\t", "joe", ACL_REMOVE, "lr", "" },            /* no rights: entry goes */
        { "joe\tlr\t", "joe", ACL_REPLACE, "", "" },
        { "joe\tlr\t", "-joe", ACL_REPLACE, "r", "joe\tlr\t-joe\tr\t" },
        { "joe\tlr\t", "fred", ACL_REMOVE, "r", "joe\tlr\t" },   /* nothing to remove */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int r;
        unsigned m = parse(cases[i].rights, 1, &r);
        char *out = NULL;
        UNIT_EQ_INT(acl_modify(cases[i].acl, cases[i].ident, cases[i].mode, m, &out), 0);
        UNIT_EQ_STR(out, cases[i].want);
        free(out);
    }
    char *out = NULL;
    UNIT_EQ_INT(acl_modify("", "a b", ACL_REPLACE, 1, &out), CF_E_PARSE);
    UNIT_CHECK(out == NULL);
    UNIT_EQ_INT(acl_modify("", "-", ACL_REPLACE, 1, &out), CF_E_PARSE);
    UNIT_EQ_INT(acl_remove_ident("joe\tlr\tfred\ta\t", "joe", &out), 1);
    UNIT_EQ_STR(out, "fred\ta\t");
    free(out);
    UNIT_EQ_INT(acl_remove_ident("joe\tlr\t", "-joe", &out), 0);
    UNIT_EQ_STR(out, "joe\tlr\t");
    free(out);

    struct strarr ids = STRARR_INIT, rs = STRARR_INIT;
    acl_split("joe\tlr\t-anyone\ts\tbad", &ids, &rs);
    UNIT_EQ_INT(ids.count, 2);
    UNIT_EQ_INT(rs.count, 2);
    if (ids.count == 2 && rs.count == 2) {
        UNIT_EQ_STR(ids.v[1], "-anyone");
        UNIT_EQ_STR(rs.v[0], "lr");
    }
    strarr_fini(&ids);
    strarr_fini(&rs);
}

/* test_mailbox_update: a real store; the list entry and the header file both get the ACL. */
static void test_mailbox_update(void)
{
    char tmpl[] = "/tmp/test-acl-XXXXXX";
    char *dir = mkdtemp(tmpl);
    UNIT_CHECK(dir != NULL);
    if (!dir) return;
    char *conf = xasprintf("%s/coffer.conf", dir), *parts = xasprintf("%s/partitions.conf", dir);
    file_write_atomic(conf, "configdir = cfg\n", 16, 0600);
    file_write_atomic(parts, "default p1\n", 11, 0600);
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    int r = config_load(conf, &cfg, &err);
    UNIT_EQ_INT(r, 0);
    buf_fini(&err);
    char *dbdir = xasprintf("%s/cfg/db", dir);
    if (!r) r = kv_env_recover(dbdir);
    free(dbdir);
    free(parts);
    struct store *st = NULL;
    if (!r) r = store_open(cfg, &st);
    UNIT_EQ_INT(r, 0);
    if (!r) {
        UNIT_EQ_INT(store_create(st, "news", NULL, NULL, NULL, 0), 0);
        struct mboxlist_entry e;
        mboxlist_entry_init(&e);
        UNIT_EQ_INT(store_lookup(st, "news", &e), 1);
        UNIT_EQ_STR(e.acl, "");
        char *acl = NULL;
        acl_modify(e.acl, "anyone", ACL_REPLACE, acl_right_bit('l') | acl_right_bit('r'), &acl);
        free(e.acl);
        e.acl = acl;
        UNIT_EQ_INT(acl_mailbox_update(st, "news", &e), 0);
        mboxlist_entry_fini(&e);
        UNIT_EQ_INT(store_lookup(st, "news", &e), 1);
        UNIT_EQ_STR(e.acl, "anyone\tlr\t");
        struct mbheader h;
        mbheader_init(&h);
        char *mdir = partition_mailbox_dir(store_partition_path(st, e.partition), e.uniqueid);
        UNIT_EQ_INT(mbheader_read(mdir, &h), 0);
        UNIT_EQ_STR(h.acl, "anyone\tlr\t");
        mbheader_fini(&h);
        free(mdir);
        UNIT_EQ_INT(acl_mailbox_update(st, "nosuch", &e), CF_E_NOTFOUND);
        mboxlist_entry_fini(&e);
        store_close(&st);
    }
    config_free(&cfg);
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    free(cmd);
    free(conf);
}

int main(void)
{
    log_init("test-acl", 1, LOG_LVL_ERR);
    test_letters();
    test_idents();
    test_rule();
    test_edit();
    test_mailbox_update();
    UNIT_DONE();
}
