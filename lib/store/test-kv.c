/* test-kv.c: unit tests of kv.c against real Berkeley DB files in a temporary directory. */
#include "core/error.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "store/kv.h"
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/coffer-test-kv-XXXXXX";

static char *subdir(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void rm_rf(const char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    free(cmd);
}

static int get_str(struct kv_db *db, struct kv_txn *t, const char *k, struct buf *v)
{
    return kv_get(db, t, k, strlen(k), v);
}

static int put_str(struct kv_db *db, struct kv_txn *t, const char *k, const char *v)
{
    return kv_put(db, t, k, strlen(k), v, strlen(v));
}

static void test_basics(void)
{
    char *dir = subdir("basics");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct buf v = BUF_INIT;
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "t.db", 0, &db), 0);
    UNIT_EQ_STR(kv_db_name(db), "t.db");
    UNIT_CHECK(kv_db_env(db) == env);
    UNIT_EQ_STR(kv_env_dir(env), dir);

    UNIT_EQ_INT(get_str(db, NULL, "missing", &v), 0);
    UNIT_EQ_INT(v.len, 0);
    UNIT_EQ_INT(put_str(db, NULL, "alpha", "one"), 0);
    UNIT_EQ_INT(get_str(db, NULL, "alpha", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "one");
    UNIT_EQ_INT(put_str(db, NULL, "alpha", "uno"), 0);
    UNIT_EQ_INT(get_str(db, NULL, "alpha", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "uno");
    /* binary key and value with NULs; empty value */
    UNIT_EQ_INT(kv_put(db, NULL, "a\0b", 3, "x\0y\0", 4), 0);
    UNIT_EQ_INT(kv_get(db, NULL, "a\0b", 3, &v), 1);
    UNIT_EQ_INT(v.len, 4);
    UNIT_CHECK(!memcmp(v.s, "x\0y\0", 4));
    UNIT_EQ_INT(kv_get(db, NULL, "a", 1, &v), 0);
    UNIT_EQ_INT(put_str(db, NULL, "empty", ""), 0);
    UNIT_EQ_INT(get_str(db, NULL, "empty", &v), 1);
    UNIT_EQ_INT(v.len, 0);

    UNIT_EQ_INT(kv_del(db, NULL, "alpha", 5), 1);
    UNIT_EQ_INT(kv_del(db, NULL, "alpha", 5), 0);
    UNIT_EQ_INT(get_str(db, NULL, "alpha", &v), 0);

    /* survives close and reopen */
    kv_env_close(&env);
    UNIT_CHECK(env == NULL);
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "t.db", 0, &db), 0);
    UNIT_EQ_INT(get_str(db, NULL, "empty", &v), 1);
    UNIT_EQ_INT(kv_get(db, NULL, "a\0b", 3, &v), 1);
    kv_db_close(&db);
    UNIT_CHECK(db == NULL);
    kv_env_close(&env);
    buf_fini(&v);
    free(dir);
}

static void test_txn(void)
{
    char *dir = subdir("txn");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct kv_txn *t = NULL;
    struct buf v = BUF_INIT;
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "t.db", 0, &db), 0);

    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(put_str(db, t, "k1", "v1"), 0);
    UNIT_EQ_INT(put_str(db, t, "k2", "v2"), 0);
    UNIT_EQ_INT(get_str(db, t, "k1", &v), 1);   /* sees its own writes */
    kv_txn_abort(&t);
    UNIT_CHECK(t == NULL);
    UNIT_EQ_INT(get_str(db, NULL, "k1", &v), 0);
    UNIT_EQ_INT(get_str(db, NULL, "k2", &v), 0);

    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(put_str(db, t, "k1", "v1"), 0);
    UNIT_EQ_INT(put_str(db, t, "k2", "v2"), 0);
    UNIT_EQ_INT(kv_txn_commit(&t), 0);
    UNIT_CHECK(t == NULL);
    UNIT_EQ_INT(get_str(db, NULL, "k1", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "v1");

    /* a delete rolled back */
    UNIT_EQ_INT(kv_txn_begin(env, KV_TXN_NOSYNC, &t), 0);
    UNIT_EQ_INT(kv_del(db, t, "k2", 2), 1);
    UNIT_EQ_INT(get_str(db, t, "k2", &v), 0);
    kv_txn_abort(&t);
    UNIT_EQ_INT(get_str(db, NULL, "k2", &v), 1);

    /* the retry macro (no deadlock here: one pass) */
    int r, passes = 0;
    KV_RETRY(r) {
        passes++;
        r = kv_txn_begin(env, 0, &t);
        if (!r) r = put_str(db, t, "k3", "v3");
        if (!r) r = kv_txn_commit(&t);
        else kv_txn_abort(&t);
    }
    UNIT_EQ_INT(r, 0);
    UNIT_EQ_INT(passes, 1);
    /* ... and a body that reports CF_E_AGAIN twice */
    passes = 0;
    KV_RETRY(r) {
        passes++;
        r = passes < 3 ? CF_E_AGAIN : 0;
    }
    UNIT_EQ_INT(r, 0);
    UNIT_EQ_INT(passes, 3);

    kv_env_close(&env);
    buf_fini(&v);
    free(dir);
}

struct collect {
    struct buf out;
    int stop_at;
    int n;
};

static int collect_cb(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct collect *c = rock;
    UNIT_EQ_INT(strlen(key), klen);
    UNIT_EQ_INT(strlen(val), vlen);
    buf_printf(&c->out, "%s=%s;", key, val);
    if (++c->n == c->stop_at) return 7;
    return 0;
}

struct writer {
    struct kv_db *db;
    struct kv_txn *t;
};

/* txn_write_cb: writes through the scanning transaction: a copy of each record under "c/". */
static int txn_write_cb(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    struct writer *w = rock;
    struct buf k = BUF_INIT;
    buf_printf(&k, "c/%s", key);
    int r = kv_put(w->db, w->t, k.s, k.len, val, vlen);
    buf_fini(&k);
    (void)klen;
    return r;
}

static void test_foreach(void)
{
    char *dir = subdir("foreach");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct kv_txn *t = NULL;
    struct collect c = { BUF_INIT, 0, 0 };
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "t.db", 0, &db), 0);
    const char *keys[] = { "b", "ab", "a", "abc", "ab/x", "ac", "ab\x7f", "ab\xff" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        UNIT_EQ_INT(put_str(db, NULL, keys[i], "v"), 0);

    UNIT_EQ_INT(kv_foreach(db, NULL, "ab", 2, collect_cb, &c), 0);
    UNIT_EQ_STR(buf_cstr(&c.out), "ab=v;ab/x=v;abc=v;ab\x7f=v;ab\xff=v;");
    buf_reset(&c.out);
    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(kv_foreach(db, t, "ab", 2, collect_cb, &c), 0);
    UNIT_EQ_STR(buf_cstr(&c.out), "ab=v;ab/x=v;abc=v;ab\x7f=v;ab\xff=v;");
    kv_txn_abort(&t);
    buf_reset(&c.out);
    c.n = 0;
    c.stop_at = 2;
    UNIT_EQ_INT(kv_foreach(db, NULL, NULL, 0, collect_cb, &c), 7);
    UNIT_EQ_STR(buf_cstr(&c.out), "a=v;ab=v;");
    buf_reset(&c.out);
    c.n = 0;
    c.stop_at = 0;
    UNIT_EQ_INT(kv_foreach(db, NULL, "zz", 2, collect_cb, &c), 0);
    UNIT_EQ_INT(c.n, 0);

    /* many records: crosses the lock-free batch boundary, keeps order */
    char k[32], want[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "n/%04d", i);
        UNIT_EQ_INT(put_str(db, NULL, k, k + 2), 0);
    }
    c.n = 0;
    buf_reset(&c.out);
    UNIT_EQ_INT(kv_foreach(db, NULL, "n/", 2, collect_cb, &c), 0);
    UNIT_EQ_INT(c.n, 1000);
    UNIT_CHECK(!strncmp(buf_cstr(&c.out), "n/0000=0000;n/0001=0001;", 24));
    snprintf(want, sizeof want, "n/0999=0999;");
    UNIT_CHECK(c.out.len > 12 && !strcmp(c.out.s + c.out.len - 12, want));

    /* a scan in a transaction that writes through it */
    struct writer w = { db, NULL };
    UNIT_EQ_INT(kv_txn_begin(env, 0, &w.t), 0);
    UNIT_EQ_INT(kv_foreach(db, w.t, "n/", 2, txn_write_cb, &w), 0);
    UNIT_EQ_INT(kv_txn_commit(&w.t), 0);
    c.n = 0;
    buf_reset(&c.out);
    UNIT_EQ_INT(kv_foreach(db, NULL, "c/n/", 4, collect_cb, &c), 0);
    UNIT_EQ_INT(c.n, 1000);
    UNIT_EQ_INT(kv_del_prefix(db, NULL, "n/", 2), 1000);
    UNIT_EQ_INT(kv_del_prefix(db, NULL, "c/", 2), 1000);
    kv_env_close(&env);
    buf_fini(&c.out);
    free(dir);
}

static int doomed_odd(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)key;
    (void)klen;
    (void)vlen;
    (void)rock;
    return !strcmp(val, "odd");
}

static void test_delete(void)
{
    char *dir = subdir("delete");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct kv_txn *t = NULL;
    struct collect c = { BUF_INIT, 0, 0 };
    char k[32];
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "t.db", KV_TXN_NOSYNC, &db), 0);
    UNIT_EQ_INT(put_str(db, NULL, "m", "before"), 0);
    UNIT_EQ_INT(put_str(db, NULL, "o", "after"), 0);
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "n/%04d", i);
        UNIT_EQ_INT(put_str(db, NULL, k, (i % 2) ? "odd" : "even"), 0);
    }
    UNIT_EQ_INT(kv_del_if(db, "n/", 2, doomed_odd, NULL), 500);
    UNIT_EQ_INT(kv_foreach(db, NULL, "n/", 2, collect_cb, &c), 0);
    UNIT_EQ_INT(c.n, 500);
    UNIT_CHECK(!strstr(buf_cstr(&c.out), "odd"));

    /* prefix delete inside a transaction, aborted, then committed */
    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(kv_del_prefix(db, t, "n/", 2), 500);
    kv_txn_abort(&t);
    c.n = 0;
    UNIT_EQ_INT(kv_foreach(db, NULL, "n/", 2, collect_cb, &c), 0);
    UNIT_EQ_INT(c.n, 500);
    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(kv_del_prefix(db, t, "n/", 2), 500);
    UNIT_EQ_INT(kv_txn_commit(&t), 0);
    c.n = 0;
    buf_reset(&c.out);
    UNIT_EQ_INT(kv_foreach(db, NULL, NULL, 0, collect_cb, &c), 0);
    UNIT_EQ_STR(buf_cstr(&c.out), "m=before;o=after;");
    UNIT_EQ_INT(kv_del_prefix(db, NULL, "n/", 2), 0);
    kv_env_close(&env);
    buf_fini(&c.out);
    free(dir);
}

/* ---- two processes incrementing one counter ---- */

struct incr {
    struct kv_db *db;
};

static int incr_fn(struct kv_txn *t, void *rock)
{
    struct incr *in = rock;
    struct buf v = BUF_INIT;
    int r = get_str(in->db, t, "counter", &v);
    long n = r == 1 ? strtol(buf_cstr(&v), NULL, 10) : 0;
    if (r >= 0) {
        char s[32];
        snprintf(s, sizeof s, "%ld", n + 1);
        r = put_str(in->db, t, "counter", s);
        /* a second record touched in a different order by the other process: deadlocks */
        if (!r) r = put_str(in->db, t, (n % 2) ? "zzz" : "aaa", s);
    }
    buf_fini(&v);
    return r;
}

static void incr_child(const char *dir, int times)
{
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    int bad = 0;
    if (kv_env_open(dir, &env) || kv_db_open(env, "counter.db", 0, &db)) _exit(2);
    struct incr in = { db };
    for (int i = 0; i < times; i++)
        if (kv_txn_run(env, KV_TXN_NOSYNC, incr_fn, &in)) bad++;
    kv_env_close(&env);
    _exit(bad ? 1 : 0);
}

static void test_concurrent(void)
{
    char *dir = subdir("concurrent");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct buf v = BUF_INIT;
    /* create the environment first so the children only join it */
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "counter.db", 0, &db), 0);
    kv_env_close(&env);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0) incr_child(dir, 500);
    }
    for (int i = 0; i < 2; i++) {
        int st = 0;
        UNIT_EQ_INT(waitpid(kids[i], &st, 0), kids[i]);
        UNIT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "counter.db", 0, &db), 0);
    UNIT_EQ_INT(get_str(db, NULL, "counter", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "1000");
    kv_env_close(&env);
    buf_fini(&v);
    free(dir);
}

/* ---- dump and load ---- */

static char *dump_to_string(struct kv_db *db, int *r)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    *r = kv_dump(db, f);
    fclose(f);
    return s;
}

static int load_string(struct kv_db *db, const char *s)
{
    FILE *f = fmemopen((void *)s, strlen(s), "r");
    int r = kv_load(db, f);
    fclose(f);
    return r;
}

static void test_dump_load(void)
{
    char *dir1 = subdir("dump1"), *dir2 = subdir("dump2");
    struct kv_env *e1 = NULL, *e2 = NULL;
    struct kv_db *d1 = NULL, *d2 = NULL, *other = NULL;
    struct buf v = BUF_INIT;
    int r;
    UNIT_EQ_INT(kv_env_open(dir1, &e1), 0);
    UNIT_EQ_INT(kv_db_open(e1, "stuff.db", 0, &d1), 0);
    UNIT_EQ_INT(put_str(d1, NULL, "plain", "value"), 0);
    UNIT_EQ_INT(put_str(d1, NULL, "with space", "50% of\ttabs\n"), 0);
    UNIT_EQ_INT(put_str(d1, NULL, "empty", ""), 0);
    UNIT_EQ_INT(kv_put(d1, NULL, "bin\0\xff", 5, "\x01\x02\0", 3), 0);
    UNIT_EQ_INT(put_str(d1, NULL, "utf8 \xc3\xa9", "\xe2\x82\xac"), 0);
    char k[32];
    for (int i = 0; i < 600; i++) {   /* more than one load batch */
        snprintf(k, sizeof k, "many/%d", i);
        UNIT_EQ_INT(put_str(d1, NULL, k, "x"), 0);
    }
    char *s1 = dump_to_string(d1, &r);
    UNIT_EQ_INT(r, 0);
    UNIT_CHECK(!strncmp(s1, "coffer-kv-dump 1 stuff.db\nbin%00%FF %01%02%00\nempty %\n", 54));
    UNIT_CHECK(strstr(s1, "\nwith%20space 50%25%20of%09tabs%0A\n") != NULL);
    UNIT_CHECK(strstr(s1, "\nutf8%20%C3%A9 %E2%82%AC\n") != NULL);
    UNIT_CHECK(strstr(s1, "\ncoffer-kv-end 605\n") != NULL);

    UNIT_EQ_INT(kv_env_open(dir2, &e2), 0);
    UNIT_EQ_INT(kv_db_open(e2, "stuff.db", 0, &d2), 0);
    UNIT_EQ_INT(load_string(d2, s1), 0);
    char *s2 = dump_to_string(d2, &r);
    UNIT_EQ_INT(r, 0);
    UNIT_EQ_STR(s2, s1);
    UNIT_EQ_INT(kv_get(d2, NULL, "bin\0\xff", 5, &v), 1);
    UNIT_CHECK(v.len == 3 && !memcmp(v.s, "\x01\x02\0", 3));

    /* loading refuses another database's dump, a wrong version, bad lines, bad counts */
    UNIT_EQ_INT(kv_db_open(e2, "other.db", 0, &other), 0);
    UNIT_EQ_INT(load_string(other, s1), CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 2 other.db\ncoffer-kv-end 0\n"), CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 1 other.db\na b\ncoffer-kv-end 2\n"),
                CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 1 other.db\na%4 b\ncoffer-kv-end 1\n"),
                CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 1 other.db\na\ncoffer-kv-end 1\n"),
                CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 1 other.db\na b\n"), CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 1 other.db\na b\ncoffer-kv-end 1"),
                CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 1 other.db\ncoffer-kv-end 0\nx y\n"),
                CF_E_PARSE);
    UNIT_EQ_INT(load_string(other, "coffer-kv-dump 1 other.db\na %41%20b\ncoffer-kv-end 1\n"),
                0);
    UNIT_EQ_INT(get_str(other, NULL, "a", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "A b");

    /* escaping round trip of every byte */
    struct buf esc = BUF_INIT, back = BUF_INIT;
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    kv_escape(&esc, all, 256);
    UNIT_EQ_INT(kv_unescape(&back, esc.s, esc.len), 0);
    UNIT_CHECK(back.len == 256 && !memcmp(back.s, all, 256));
    UNIT_CHECK(!memchr(esc.s, ' ', esc.len) && !memchr(esc.s, '\n', esc.len));
    buf_reset(&back);
    UNIT_EQ_INT(kv_unescape(&back, "a b", 3), CF_E_PARSE);
    UNIT_EQ_INT(kv_unescape(&back, "%g0", 3), CF_E_PARSE);
    UNIT_EQ_INT(kv_unescape(&back, "", 0), CF_E_PARSE);
    buf_fini(&esc);
    buf_fini(&back);

    kv_env_close(&e1);
    kv_env_close(&e2);
    free(s1);
    free(s2);
    buf_fini(&v);
    free(dir1);
    free(dir2);
}

/* ---- recovery after kill -9 in the middle of a transaction ---- */

static void test_recover(void)
{
    char *dir = subdir("recover");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct buf v = BUF_INIT;
    int p[2];
    UNIT_EQ_INT(kv_env_recover(dir), 0);
    UNIT_EQ_INT(pipe(p), 0);
    pid_t kid = fork();
    if (kid == 0) {
        struct kv_txn *t = NULL;
        close(p[0]);
        if (kv_env_open(dir, &env) || kv_db_open(env, "r.db", 0, &db)) _exit(2);
        if (put_str(db, NULL, "committed", "yes")) _exit(3);
        if (kv_txn_begin(env, 0, &t)) _exit(4);
        if (put_str(db, t, "committed", "overwritten")) _exit(5);
        char k[32];
        for (int i = 0; i < 300; i++) {
            snprintf(k, sizeof k, "pending/%d", i);
            if (put_str(db, t, k, "no")) _exit(6);
        }
        /* push the uncommitted changes to the log and the data file, as a busy server would */
        if (kv_checkpoint(env)) _exit(7);
        if (write(p[1], "x", 1) != 1) _exit(8);
        for (;;) pause();
    }
    close(p[1]);
    char ch = 0;
    UNIT_EQ_INT(read(p[0], &ch, 1), 1);
    close(p[0]);
    kill(kid, SIGKILL);
    int st = 0;
    UNIT_EQ_INT(waitpid(kid, &st, 0), kid);
    UNIT_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    UNIT_EQ_INT(kv_env_recover(dir), 0);
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "r.db", 0, &db), 0);
    UNIT_EQ_INT(get_str(db, NULL, "committed", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "yes");
    UNIT_EQ_INT(get_str(db, NULL, "pending/0", &v), 0);
    UNIT_EQ_INT(get_str(db, NULL, "pending/299", &v), 0);
    /* and it is writable again (no lock left behind by the dead process) */
    UNIT_EQ_INT(put_str(db, NULL, "committed", "again"), 0);
    UNIT_EQ_INT(get_str(db, NULL, "committed", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "again");
    kv_env_close(&env);
    buf_fini(&v);
    free(dir);
}

/* ---- a process killed inside a transaction does not block the others ---- */

static void on_alarm(int sig) { (void)sig; _exit(99); }

/* A live server cannot run recovery, so the locks and transaction of a worker killed with
 * SIGKILL must be released by kv_failchk, which cofferd runs when it reaps a crashed worker.
 * Without it the next writer of the same key would wait forever. */
static void test_failchk(void)
{
    char *dir = subdir("failchk");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct buf v = BUF_INIT;
    int p[2];
    UNIT_EQ_INT(kv_env_recover(dir), 0);
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);    /* a live process that stays (like a worker) */
    UNIT_EQ_INT(kv_db_open(env, "f.db", 0, &db), 0);
    UNIT_EQ_INT(put_str(db, NULL, "k", "before"), 0);
    UNIT_EQ_INT(pipe(p), 0);
    pid_t kid = fork();
    if (kid == 0) {
        struct kv_env *e2 = NULL;
        struct kv_db *d2 = NULL;
        struct kv_txn *t = NULL;
        close(p[0]);
        if (kv_env_open(dir, &e2) || kv_db_open(e2, "f.db", 0, &d2)) _exit(2);
        if (kv_txn_begin(e2, 0, &t) || put_str(d2, t, "k", "uncommitted")) _exit(3);
        if (write(p[1], "x", 1) != 1) _exit(4);
        for (;;) pause();                      /* holds the write lock on "k" */
    }
    close(p[1]);
    char ch = 0;
    UNIT_EQ_INT(read(p[0], &ch, 1), 1);
    close(p[0]);
    kill(kid, SIGKILL);
    int st = 0;
    UNIT_EQ_INT(waitpid(kid, &st, 0), kid);
    UNIT_EQ_INT(kv_failchk(dir), 0);
    /* in a child with an alarm, so a regression fails the test instead of hanging it */
    pid_t w = fork();
    if (w == 0) {
        signal(SIGALRM, on_alarm);
        alarm(10);
        struct buf b = BUF_INIT;
        if (get_str(db, NULL, "k", &b) != 1 || strcmp(buf_cstr(&b), "before")) _exit(5);
        if (put_str(db, NULL, "k", "after")) _exit(6);
        _exit(0);
    }
    UNIT_EQ_INT(waitpid(w, &st, 0), w);
    UNIT_CHECK(WIFEXITED(st));
    UNIT_EQ_INT(WEXITSTATUS(st), 0);
    UNIT_EQ_INT(get_str(db, NULL, "k", &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "after");
    kv_env_close(&env);
    buf_fini(&v);
    free(dir);
}

/* ---- a process attached when the environment is recovered leaves ---- */

/* cofferd recovers the environment after a process died inside Berkeley DB; a tool it cannot
 * stop is still attached to the old region (and may be waiting on a dead mutex there). With
 * kv_env_guard it exits with the code it gave, within about KV_GUARD_SECONDS. */
static void test_guard(void)
{
    char *dir = subdir("guard");
    UNIT_EQ_INT(kv_env_recover(dir), 0);
    int p[2];
    UNIT_EQ_INT(pipe(p), 0);
    pid_t kid = fork();
    if (kid == 0) {
        struct kv_env *e2 = NULL;
        close(p[0]);
        signal(SIGALRM, SIG_DFL);
        if (kv_env_open(dir, &e2) || kv_env_guard(e2, 7)) _exit(2);
        if (write(p[1], "x", 1) != 1) _exit(3);
        for (int i = 0; i < 5 * KV_GUARD_SECONDS; i++) sleep(1);
        _exit(0);                              /* never noticed */
    }
    close(p[1]);
    char ch = 0;
    UNIT_EQ_INT(read(p[0], &ch, 1), 1);
    close(p[0]);
    /* the same region for a while: the guard lets it be */
    struct timespec pause = { KV_GUARD_SECONDS, 500 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    int st = 0;
    UNIT_EQ_INT(waitpid(kid, &st, WNOHANG), 0);
    UNIT_EQ_INT(kv_env_recover(dir), 0);         /* what cofferd's recovery restart does */
    UNIT_EQ_INT(waitpid(kid, &st, 0), kid);
    UNIT_CHECK(WIFEXITED(st));
    UNIT_EQ_INT(WEXITSTATUS(st), 7);
    free(dir);
}

/* ---- checkpoints remove old log files ---- */

static int count_logs(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    if (!d) return -1;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "log.", 4)) n++;
    closedir(d);
    return n;
}

static void test_checkpoint(void)
{
    char *dir = subdir("checkpoint");
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct kv_txn *t = NULL;
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    UNIT_EQ_INT(kv_db_open(env, "big.db", 0, &db), 0);
    size_t n = 1024 * 1024;
    char *big = xmalloc(n);
    memset(big, 'x', n);
    char k[32];
    for (int i = 0; i < 25; i++) {   /* about 25 MB of log: three or more 10 MB log files */
        snprintf(k, sizeof k, "big/%d", i % 3);
        UNIT_EQ_INT(kv_txn_begin(env, KV_TXN_NOSYNC, &t), 0);
        UNIT_EQ_INT(put_str(db, t, k, "small"), 0);
        UNIT_EQ_INT(kv_put(db, t, k, strlen(k), big, n), 0);
        UNIT_EQ_INT(kv_txn_commit(&t), 0);
    }
    int before = count_logs(dir);
    UNIT_CHECK(before >= 3);
    UNIT_EQ_INT(kv_checkpoint(env), 0);
    UNIT_EQ_INT(kv_checkpoint(env), 0);
    int after = count_logs(dir);
    UNIT_CHECK(after >= 1 && after < before);
    kv_env_close(&env);
    free(big);
    free(dir);
}

/* the Berkeley DB version check: the library this test runs with passed it (every
 * kv_env_open above), and any other major or minor version is refused */
static void test_version(void)
{
    int major = 0, minor = 0;
    kv_version_built(&major, &minor);
    UNIT_CHECK(major >= 4);
    UNIT_EQ_INT(kv_version_check(major, minor), 0);
    UNIT_EQ_INT(kv_version_check(major + 1, minor), CF_E_IO);   /* logged */
    UNIT_EQ_INT(kv_version_check(major, minor + 1), CF_E_IO);
    UNIT_EQ_INT(kv_version_check(major - 1, minor), CF_E_IO);
    UNIT_EQ_INT(kv_version_check(0, 0), CF_E_IO);
}

/* test_lock_table: the environment's main region stays small (its lock hash table is sized
 * for the objects locked at once, not for lk_max_objects: it was 15 MB), and one transaction
 * still locks more objects than the table has buckets */
static void test_lock_table(void)
{
    char *dir = subdir("locktable");
    char *region = xasprintf("%s/__db.001", dir);
    struct kv_env *env = NULL;
    struct kv_db *db = NULL;
    struct kv_txn *t = NULL;
    struct buf v = BUF_INIT;
    UNIT_EQ_INT(kv_env_recover(dir), 0);
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    struct stat st;
    UNIT_EQ_INT(stat(region, &st), 0);
    UNIT_CHECK(st.st_size < 4 * 1024 * 1024);
    UNIT_EQ_INT(kv_db_open(env, "big.db", 0, &db), 0);
    /* 3,000 values of 1 KB: over 1,000 leaf pages, each write-locked by the one transaction */
    char val[1024];
    memset(val, 'v', sizeof val);
    UNIT_EQ_INT(kv_txn_begin(env, KV_TXN_NOSYNC, &t), 0);
    int failed = 0;
    for (int i = 0; i < 3000 && !failed; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, "key%06d", i);
        val[0] = (char)('a' + i % 26);
        failed = kv_put(db, t, key, (size_t)n, val, sizeof val) != 0;
    }
    UNIT_CHECK(!failed);
    UNIT_EQ_INT(kv_txn_commit(&t), 0);
    UNIT_EQ_INT(kv_get(db, NULL, "key002999", 9, &v), 1);
    UNIT_EQ_INT(v.len, sizeof val);
    UNIT_EQ_INT(v.s[0], 'a' + 2999 % 26);
    kv_env_close(&env);
    buf_fini(&v);
    free(region);
    free(dir);
}

int main(void)
{
    log_init("test-kv", 1, LOG_LVL_WARNING);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_basics();
    test_txn();
    test_foreach();
    test_delete();
    test_concurrent();
    test_dump_load();
    test_recover();
    test_checkpoint();
    test_failchk();
    test_guard();
    test_version();
    test_lock_table();
    rm_rf(tmpdir);
    UNIT_DONE();
}
