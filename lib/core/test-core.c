/* test-core.c: unit tests for buf, strarr, arena, log quoting, file helpers, SipHash,
 * xbig_alloc. */
#include "core/arena.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/priv.h"
#include "core/siphash.h"
#include "core/strarr.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_buf(void)
{
    struct buf b = BUF_INIT;
    UNIT_EQ_STR(buf_cstr(&b), "");
    UNIT_EQ_INT(buf_appends(&b, "hello"), 0);
    UNIT_EQ_INT(buf_printf(&b, " %d %s", 42, "x"), 0);
    UNIT_EQ_STR(buf_cstr(&b), "hello 42 x");
    buf_consume(&b, 6);
    UNIT_EQ_STR(buf_cstr(&b), "42 x");
    buf_truncate(&b, 2);
    UNIT_EQ_STR(buf_cstr(&b), "42");
    buf_putu32(&b, 0);
    buf_putc(&b, ' ');
    buf_putu32(&b, 4294967295u);
    UNIT_EQ_STR(buf_cstr(&b), "420 4294967295");
    buf_truncate(&b, 2);
    buf_truncate(&b, 99);
    UNIT_EQ_INT(b.len, 2);
    /* binary data with NULs */
    buf_reset(&b);
    UNIT_EQ_INT(buf_append(&b, "a\0b", 3), 0);
    UNIT_EQ_INT(b.len, 3);
    /* growth across many appends */
    buf_reset(&b);
    for (int i = 0; i < 10000; i++) buf_putc(&b, (char)('a' + i % 26));
    UNIT_EQ_INT(b.len, 10000);
    UNIT_CHECK(b.s[9999] == 'a' + 9999 % 26);
    /* cap: an append past the cap fails and changes nothing */
    buf_reset(&b);
    buf_set_cap(&b, 8);
    UNIT_EQ_INT(buf_appends(&b, "12345678"), 0);
    UNIT_EQ_INT(buf_putc(&b, '9'), CF_E_LIMIT);
    UNIT_EQ_INT(buf_printf(&b, "%s", "x"), CF_E_LIMIT);
    UNIT_EQ_STR(buf_cstr(&b), "12345678");
    char *s = buf_release(&b);
    UNIT_EQ_STR(s, "12345678");
    UNIT_CHECK(b.s == NULL && b.len == 0);
    free(s);
    buf_fini(&b);
}

static void test_strarr(void)
{
    struct strarr a = STRARR_INIT;
    strarr_split(&a, " b, a ,,c  ", ",", 1);
    UNIT_EQ_INT(a.count, 3);
    UNIT_EQ_STR(strarr_get(&a, 0), "b");
    UNIT_EQ_STR(strarr_get(&a, 1), "a");
    UNIT_CHECK(strarr_get(&a, 3) == NULL);
    UNIT_CHECK(a.v[a.count] == NULL);
    UNIT_EQ_INT(strarr_find(&a, "c"), 2);
    UNIT_EQ_INT(strarr_find(&a, "C"), -1);
    UNIT_EQ_INT(strarr_find_case(&a, "C"), 2);
    strarr_sort(&a);
    char *j = strarr_join(&a, "|");
    UNIT_EQ_STR(j, "a|b|c");
    free(j);
    strarr_remove(&a, 0);
    UNIT_EQ_INT(a.count, 2);
    UNIT_EQ_STR(a.v[0], "b");
    UNIT_CHECK(a.v[2] == NULL);
    for (int i = 0; i < 100; i++) strarr_take(&a, xasprintf("%d", i));
    UNIT_EQ_STR(strarr_get(&a, 101), "99");
    strarr_fini(&a);
    UNIT_EQ_INT(a.count, 0);
}

static void test_arena(void)
{
    struct arena ar;
    arena_init(&ar, 64);
    char *p = arena_strdup(&ar, "abc");
    UNIT_EQ_STR(p, "abc");
    void *big = arena_alloc(&ar, 1000); /* bigger than a block: its own block */
    UNIT_CHECK(((uintptr_t)big & 15) == 0);
    memset(big, 1, 1000);
    for (int i = 0; i < 100; i++) UNIT_CHECK(((uintptr_t)arena_alloc(&ar, 7) & 15) == 0);
    char *z = arena_zalloc(&ar, 32);
    UNIT_CHECK(z[0] == 0 && z[31] == 0);
    arena_reset(&ar);
    UNIT_EQ_INT(ar.total, 0);
    UNIT_EQ_STR(arena_strndup(&ar, "hello", 3), "hel");
    arena_fini(&ar);
}

static void test_log_quote(void)
{
    UNIT_EQ_STR(log_quote("plain"), "plain");
    UNIT_EQ_STR(log_quote("two words"), "\"two words\"");
    UNIT_EQ_STR(log_quote("a\"b"), "\"a\\\"b\"");
    UNIT_EQ_STR(log_quote("x\ny"), "\"x\\x0ay\"");
    UNIT_EQ_STR(log_quote(""), "\"\"");
    UNIT_EQ_STR(log_quote(NULL), "-");
    const char *id = log_new_session_id();
    UNIT_EQ_INT(strlen(id), 12);
    enum log_level l;
    UNIT_EQ_INT(log_level_parse("warning", &l), 0);
    UNIT_EQ_INT(l, LOG_LVL_WARNING);
    UNIT_EQ_INT(log_level_parse("loud", &l), CF_E_PARSE);
}

/* L9: an event with user= and mailbox= set and five quoted arguments logs each argument with
 * its own value (a ring of 4 slots shared with the event builder used to mix them up). */
static void test_log_many_quoted(void)
{
    char path[] = "/tmp/test-core-log.XXXXXX";
    int fd = mkstemp(path);
    UNIT_CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    log_set_level(LOG_LVL_INFO);
    log_set_user("some user");
    log_set_mailbox("the box");
    log_info("many", "a=%s b=%s c=%s d=%s e=%s", log_quote("one 1"), log_quote("two 2"),
             log_quote("three 3"), log_quote("four 4"), log_quote("five 5"));
    /* an event that names its own mailbox first: one mailbox= field, the event's */
    log_info("own", "mailbox=%s n=1", log_quote("other box"));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    log_set_user(NULL);
    log_set_mailbox(NULL);
    log_set_level(LOG_LVL_ERR);
    char *text = NULL;
    UNIT_EQ_INT(file_read_all(path, 65536, &text, NULL), 0);
    UNIT_CHECK(strstr(text, "user=\"some user\" mailbox=\"the box\" a=\"one 1\" b=\"two 2\" "
                             "c=\"three 3\" d=\"four 4\" e=\"five 5\"") != NULL);
    UNIT_CHECK(strstr(text, " user=\"some user\" mailbox=\"other box\" n=1\n") != NULL);
    UNIT_CHECK(strstr(text, "\"the box\" mailbox=") == NULL);
    free(text);
    close(fd);
    unlink(path);
}

static void test_files(void)
{
    char dir[] = "/tmp/coffer-test-XXXXXX";
    UNIT_CHECK(mkdtemp(dir) != NULL);
    char *sub = xasprintf("%s/a/b/c", dir);
    UNIT_EQ_INT(mkdir_p(sub, 0700), 0);
    UNIT_EQ_INT(mkdir_p(sub, 0700), 0);
    struct stat st;
    UNIT_CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode));
    char *f = xasprintf("%s/file", sub);
    UNIT_EQ_INT(file_write_atomic(f, "one", 3, 0600), 0);
    UNIT_EQ_INT(file_write_atomic(f, "second", 6, 0600), 0);
    char *data;
    size_t len;
    UNIT_EQ_INT(file_read_all(f, 100, &data, &len), 0);
    UNIT_EQ_STR(data, "second");
    UNIT_EQ_INT(len, 6);
    free(data);
    UNIT_EQ_INT(file_read_all(f, 3, &data, &len), CF_E_LIMIT);
    char *missing = xasprintf("%s/nope", dir);
    UNIT_EQ_INT(file_read_all(missing, 100, &data, &len), CF_E_NOTFOUND);
    char *pf = xasprintf("%s/pid", dir);
    pid_t pid = 0;
    UNIT_EQ_INT(pidfile_read(pf, &pid), 0);
    UNIT_EQ_INT(pidfile_write(pf, getpid()), 0);
    /* a pid file nobody holds locked is stale, whatever pid it names */
    UNIT_EQ_INT(pidfile_read(pf, &pid), 0);
    int lfd = -1, lfd2 = -1;
    pid_t holder = 0;
    UNIT_EQ_INT(pidfile_lock(pf, &lfd, &holder), 0);
    UNIT_EQ_INT(pidfile_update(lfd, 4242), 0);
    UNIT_EQ_INT(pidfile_read(pf, &pid), 1);
    UNIT_EQ_INT(pid, 4242);
    /* the lock belongs to the open file, so even this process cannot take it twice */
    UNIT_EQ_INT(pidfile_lock(pf, &lfd2, &holder), CF_E_LOCKED);
    UNIT_EQ_INT(holder, 4242);
    close(lfd);
    UNIT_EQ_INT(pidfile_read(pf, &pid), 0);
    /* never through a symlink */
    char *link = xasprintf("%s/pidlink", dir);
    UNIT_EQ_INT(symlink(f, link), 0);
    UNIT_EQ_INT(pidfile_lock(link, &lfd2, &holder), CF_E_IO);
    UNIT_EQ_INT(file_read_all(f, 100, &data, &len), 0);
    UNIT_EQ_STR(data, "second");
    free(data);
    free(link);
    /* the paged writers: the same bytes as one write, from unaligned offsets and lengths */
    {
        enum { BIG = 3 * 4096 + 1000 };
        char *big = xmalloc(BIG), *back = xmalloc(BIG);
        for (int i = 0; i < BIG; i++) big[i] = (char)(i * 7 + i / 4096);
        UNIT_EQ_INT(file_write_atomic_paged(f, big, BIG, 0600), 0);
        UNIT_EQ_INT(file_read_all(f, 2 * BIG, &data, &len), 0);
        UNIT_EQ_INT(len, BIG);
        UNIT_CHECK(!memcmp(data, big, BIG));
        free(data);
        int fd = open(f, O_RDWR);
        UNIT_CHECK(fd >= 0);
        memset(big + 100, 'x', 9000);
        UNIT_EQ_INT(pwrite_all_paged(fd, big + 100, 9000, 100), 0);
        UNIT_EQ_INT(pwrite_all_paged(fd, "tail", 4, BIG), 0);
        UNIT_EQ_INT(pread(fd, back, BIG, 0), BIG);
        UNIT_CHECK(!memcmp(back, big, BIG));
        UNIT_EQ_INT(pread(fd, back, 8, BIG), 4);
        UNIT_CHECK(!memcmp(back, "tail", 4));
        close(fd);
        free(big);
        free(back);
    }
    char *cmd = xasprintf("rm -rf %s", dir);
    UNIT_EQ_INT(system(cmd), 0);
    free(cmd); free(pf); free(missing); free(f); free(sub);
}

static void test_base64(void)
{
    static const struct { const char *raw, *enc; } t[] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },  /* RFC 4648 10 */
    };
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        buf_reset(&b);
        base64_encode(t[i].raw, strlen(t[i].raw), &b);
        UNIT_EQ_STR(buf_cstr(&b), t[i].enc);
        UNIT_EQ_INT(base64_decode(t[i].enc, strlen(t[i].enc), &b), 0);
        UNIT_EQ_STR(buf_cstr(&b), t[i].raw);
    }
    buf_reset(&b);
    base64_encode("\0\xff\x10", 3, &b);
    UNIT_EQ_STR(buf_cstr(&b), "AP8Q");
    UNIT_EQ_INT(base64_decode("AP8Q", 4, &b), 0);
    UNIT_CHECK(b.len == 3 && b.s[0] == 0 && (unsigned char)b.s[1] == 0xff && b.s[2] == 0x10);
    static const char *bad[] = { "Zg=", "Zg", "Z===", "Zm9v\r\n", "Zg==Zg==", "Zm9*", "=Zm9" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        UNIT_EQ_INT(base64_decode(bad[i], strlen(bad[i]), &b), CF_E_PARSE);
    buf_fini(&b);
}

/* priv_child: priv_drop(user) in a child (the switch is for good); its result, then whether
 * root could be regained, as the exit status: 0 dropped and locked out, 1 refused. */
static int priv_child(const char *user)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (priv_drop(user, NULL)) _exit(1);
        _exit(getuid() != 0 && geteuid() != 0 && setuid(0) < 0 ? 0 : 2);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_priv(void)
{
    struct buf err = BUF_INIT;
    UNIT_EQ_INT(priv_drop("", &err), 0);                 /* no user: nothing to do */
    UNIT_EQ_INT(priv_drop(NULL, &err), 0);
    UNIT_EQ_INT(err.len, 0);
    if (geteuid() != 0) {                                /* not root: nothing to do either */
        UNIT_EQ_INT(priv_drop("no-such-coffer-user", &err), 0);
        buf_fini(&err);
        return;
    }
    UNIT_EQ_INT(priv_drop("no-such-coffer-user", &err), CF_E_NOTFOUND);
    UNIT_CHECK(err.len > 0);
    UNIT_EQ_INT(priv_child("root"), 1);                  /* root can be regained: refused */
    if (getpwnam("nobody")) UNIT_EQ_INT(priv_child("nobody"), 0);
    buf_fini(&err);
}

/* path_check_access: a table of paths under dirs with chosen modes, judged for a made-up
 * account (uid 54321, group 54321) that owns nothing, and for the directory's owner. */
static void test_path_access(void)
{
    char top[] = "/tmp/coffer-test-access-XXXXXX";
    UNIT_CHECK(mkdtemp(top) != NULL);
    chmod(top, 0755);
    char *closed = xasprintf("%s/closed", top), *open_ = xasprintf("%s/open", top);
    char *ro = xasprintf("%s/open/ro", top), *file = xasprintf("%s/open/file", top);
    mkdir(closed, 0700);
    mkdir(open_, 0755);
    mkdir(ro, 0555);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    chmod(file, 0600);
    struct path_who other = { .uid = 54321, .gid = 54321, .ngroups = 0, .name = "other" }, me;
    path_who_self(&me);
    me.uid = getuid() ? getuid() : 54322;   /* root would pass everything: be the owner */
    if (!getuid()) {
        me.gid = 54322;
        if (chown(closed, me.uid, me.gid) || chown(open_, me.uid, me.gid) ||
            chown(ro, me.uid, me.gid) || chown(file, me.uid, me.gid))
            UNIT_CHECK(!"chown");
        if (chown(top, me.uid, me.gid)) UNIT_CHECK(!"chown");
    }
    static const struct {
        const char *rel;
        int want, create, who_other;
        int expect;
        const char *words;   /* in the explanation */
    } cases[] = {
        { "closed", R_OK | W_OK | X_OK, 0, 0, 0, NULL },
        { "closed", R_OK, 0, 1, 1, "no read (r) permission on directory" },
        { "closed/db", 0, 1, 1, 1, "no search (x) permission on directory" },
        { "closed/db", 0, 1, 0, 0, NULL },
        { "open/missing/deeper", 0, 0, 1, 0, NULL },             /* absent, no create */
        { "open/missing/deeper", 0, 1, 1, 1, "needed to create" },
        { "open/missing/deeper", 0, 1, 0, 0, NULL },
        { "open/ro/new", 0, 1, 0, 1, "no write (w) permission" },
        { "open/ro", R_OK | X_OK, 0, 1, 0, NULL },
        { "open/file", R_OK, 0, 1, 1, "no read (r) permission on file" },
        { "open/file", R_OK | W_OK, 0, 0, 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = xasprintf("%s/%s", top, cases[i].rel);
        struct buf why = BUF_INIT;
        int r = path_check_access(path, cases[i].want, cases[i].create,
                                  cases[i].who_other ? &other : &me, &why);
        if (r != cases[i].expect)
            fprintf(stderr, "case %zu (%s): %d, expected %d: %s\n", i, cases[i].rel, r,
                    cases[i].expect, buf_cstr(&why));
        UNIT_EQ_INT(r, cases[i].expect);
        if (cases[i].words) UNIT_CHECK(strstr(buf_cstr(&why), cases[i].words) != NULL);
        if (!cases[i].expect) UNIT_EQ_INT(why.len, 0);
        buf_fini(&why);
        free(path);
    }
    /* the sentence names who, the directory, its mode */
    struct buf why = BUF_INIT;
    char *db = xasprintf("%s/db", closed);
    path_check_access(db, R_OK, 0, &other, &why);
    char *want = xasprintf("user other (uid 54321) has no search (x) permission on directory %s "
                           "(mode 0700, owner ", closed);
    UNIT_CHECK(strncmp(buf_cstr(&why), want, strlen(want)) == 0);
    free(want);
    free(db);
    buf_fini(&why);
    unlink(file);
    rmdir(ro);
    rmdir(open_);
    rmdir(closed);
    rmdir(top);
    free(closed);
    free(open_);
    free(ro);
    free(file);
}

/* SipHash-2-4-128 against the reference test vectors: key 00 01 .. 0f, message 00 01 .. of
 * each length (the short tail, one whole word, a word and a tail, several words) */
static void test_siphash(void)
{
    static const struct { size_t len; unsigned char out[16]; } v[] = {
        { 0, { 0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93 } },
        { 1, { 0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22, 0xfc, 0x45 } },
        { 7, { 0xa1, 0xf1, 0xeb, 0xbe, 0xd8, 0xdb, 0xc1, 0x53, 0xc0, 0xb8, 0x4a, 0xa6, 0x1f, 0xf0, 0x82, 0x39 } },
        { 8, { 0x3b, 0x62, 0xa9, 0xba, 0x62, 0x58, 0xf5, 0x61, 0x0f, 0x83, 0xe2, 0x64, 0xf3, 0x14, 0x97, 0xb4 } },
        { 15, { 0x54, 0x93, 0xe9, 0x99, 0x33, 0xb0, 0xa8, 0x11, 0x7e, 0x08, 0xec, 0x0f, 0x97, 0xcf, 0xc3, 0xd9 } },
        { 16, { 0x6e, 0xe2, 0xa4, 0xca, 0x67, 0xb0, 0x54, 0xbb, 0xfd, 0x33, 0x15, 0xbf, 0x85, 0x23, 0x05, 0x77 } },
        { 63, { 0x51, 0x50, 0xd1, 0x77, 0x2f, 0x50, 0x83, 0x4a, 0x50, 0x3e, 0x06, 0x9a, 0x97, 0x3f, 0xbd, 0x7c } },
    };
    unsigned char key[SIPHASH_KEY_LEN], msg[64], out[SIPHASH128_LEN];
    for (int i = 0; i < SIPHASH_KEY_LEN; i++) key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++) msg[i] = (unsigned char)i;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        siphash128(key, msg, v[i].len, out);
        if (memcmp(out, v[i].out, sizeof out)) fprintf(stderr, "siphash128 length %zu\n", v[i].len);
        UNIT_CHECK(!memcmp(out, v[i].out, sizeof out));
    }
    /* another key, another output */
    unsigned char first[SIPHASH128_LEN];
    siphash128(key, "alice", 5, first);
    key[0] ^= 1;
    siphash128(key, "alice", 5, out);
    UNIT_CHECK(memcmp(first, out, sizeof out) != 0);
}

/* vm_size_kb: VmSize of this process (kB), from /proc/self/status; -1 when unknown. */
static long vm_size_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* xbig_alloc: below XBIG_MIN from malloc, from XBIG_MIN on a mapping of its own, whole
 * sizes and odd ones; every byte writable and nothing left mapped after xbig_free. */
static void test_xbig(void)
{
    size_t sizes[] = { 1, 4096, XBIG_MIN - 1, XBIG_MIN, XBIG_MIN + 1, 3 * XBIG_MIN + 12345 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        unsigned char *p = xbig_alloc(n);
        UNIT_CHECK(p != NULL);
        memset(p, 0xa5, n);
        UNIT_CHECK(p[0] == 0xa5 && p[n - 1] == 0xa5);
        xbig_free(p, n);
    }
    xbig_free(NULL, XBIG_MIN);
    xbig_free(NULL, 1);
    /* a big one is given back: the process's address space shrinks again */
    size_t n = (size_t)64 << 20;
    long before = vm_size_kb();
    unsigned char *p = xbig_alloc(n);
    p[0] = p[n - 1] = 1;
    UNIT_CHECK(vm_size_kb() >= before + 64 * 1024);
    xbig_free(p, n);
    UNIT_CHECK(vm_size_kb() < before + 64 * 1024);
}

int main(void)
{
    log_init("test-core", 1, LOG_LVL_ERR);
    test_buf();
    test_priv();
    test_strarr();
    test_arena();
    test_log_quote();
    test_log_many_quoted();
    test_files();
    test_base64();
    test_path_access();
    test_siphash();
    test_xbig();
    UNIT_DONE();
}
