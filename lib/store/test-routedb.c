/* test-routedb.c: unit tests for the router's route table (routedb.c): names, set/get in
 * both states, delete, the scan in user order, and records that cannot be read. */
#include "core/error.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "store/kv.h"
#include "store/routedb.h"
#include <stdlib.h>
#include <string.h>

static char tmpdir[] = "/tmp/coffer-test-routedb-XXXXXX";

static int collect(const char *user, const struct route *rt, void *rock)
{
    struct buf *b = rock;
    buf_printf(b, "%s=%s/%d;", user, rt->backend, rt->moving);
    return 0;
}

static void test_names(void)
{
    static const struct { const char *s; int ok; } cases[] = {
        { "alice", 1 }, { "a.b-c_d", 1 }, { "", 0 }, { "a b", 0 }, { "a@b", 0 },
        { "a%b", 0 }, { "a\tb", 0 }, { "\x7f", 0 }, { "caf\xc3\xa9", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        UNIT_EQ_INT(routedb_valid_name(cases[i].s), cases[i].ok);
    char *longname = xmalloc(ROUTEDB_MAX_NAME + 2);
    memset(longname, 'x', ROUTEDB_MAX_NAME + 1);
    longname[ROUTEDB_MAX_NAME + 1] = '\0';
    UNIT_EQ_INT(routedb_valid_name(longname), 0);
    longname[ROUTEDB_MAX_NAME] = '\0';
    UNIT_EQ_INT(routedb_valid_name(longname), 1);
    free(longname);
}

static void test_table(void)
{
    struct kv_env *env = NULL;
    struct routedb *rd = NULL;
    UNIT_EQ_INT(kv_env_open(tmpdir, &env), 0);
    UNIT_EQ_INT(routedb_open(env, &rd), 0);
    struct route rt, got;
    memset(&rt, 0, sizeof rt);
    strcpy(rt.backend, "mail2");
    UNIT_EQ_INT(routedb_get(rd, NULL, "bob", &got), 0);
    UNIT_EQ_INT(routedb_set(rd, NULL, "bob", &rt), 0);
    rt.moving = 1;
    strcpy(rt.backend, "mail1");
    UNIT_EQ_INT(routedb_set(rd, NULL, "alice", &rt), 0);
    UNIT_EQ_INT(routedb_get(rd, NULL, "alice", &got), 1);
    UNIT_EQ_STR(got.backend, "mail1");
    UNIT_EQ_INT(got.moving, 1);
    UNIT_EQ_INT(routedb_get(rd, NULL, "bob", &got), 1);
    UNIT_EQ_STR(got.backend, "mail2");
    UNIT_EQ_INT(got.moving, 0);
    UNIT_EQ_INT(routedb_set(rd, NULL, "c@d", &rt), CF_E_PARSE);
    strcpy(rt.backend, "bad name");
    UNIT_EQ_INT(routedb_set(rd, NULL, "carol", &rt), CF_E_PARSE);

    /* records written by something else: read as corrupt, skipped by the scan */
    static const char *const bad[] = { "2 mail1 ready", "1 mail1", "1 mail1 gone", "1  ready",
                                       "1 ma@il ready", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_EQ_INT(kv_put(routedb_kv(rd), NULL, "zed", 3, bad[i], strlen(bad[i])), 0);
        UNIT_EQ_INT(routedb_get(rd, NULL, "zed", &got), CF_E_CORRUPT);
    }
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(routedb_foreach(rd, collect, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "alice=mail1/1;bob=mail2/0;");
    UNIT_EQ_INT(routedb_del(rd, NULL, "alice"), 1);
    UNIT_EQ_INT(routedb_del(rd, NULL, "alice"), 0);
    buf_reset(&b);
    UNIT_EQ_INT(routedb_foreach(rd, collect, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "bob=mail2/0;");
    buf_fini(&b);
    routedb_close(&rd);
    kv_env_close(&env);
}

int main(void)
{
    log_init("test-routedb", 1, LOG_LVL_ERR);
    if (!mkdtemp(tmpdir)) return 1;
    test_names();
    test_table();
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd)) unit_failed++;
    free(cmd);
    UNIT_DONE();
}
