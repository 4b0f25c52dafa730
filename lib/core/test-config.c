/* test-config.c: unit tests for coffer.conf and partitions.conf parsing, and a check that
 * man/coffer.conf.5 documents every setting. */
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/coffer-cfgtest-XXXXXX";

static void put(const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    file_write_atomic(p, text, strlen(text), 0600);
    free(p);
}

static int load(const char *conf, struct config **c, struct buf *err)
{
    put("coffer.conf", conf);
    char *p = xasprintf("%s/coffer.conf", dir);
    buf_reset(err);
    int r = config_load(p, c, err);
    free(p);
    return r;
}

static void test_good(void)
{
    struct config *c;
    struct buf err = BUF_INIT;
    put("partitions.conf", "# comment\ndefault  spool/default\np2 /srv/p2   # second\n");
    int r = load("configdir = conf\nidle_timeout = 31m\nmax_literal = 10M\n"
                 "allow_plaintext = yes\nadmins = admin, root\n"
                 "\n[service imap]\nprogram = imapd\nlisten = 127.0.0.1:1143 [::1]:1143\n"
                 "prefork = 2\n[service lmtp]\nprogram = lmtpd\nlisten = /tmp/x.sock\ntls = none\n",
                 &c, &err);
    UNIT_EQ_INT(r, 0);
    if (r) { fprintf(stderr, "%s", buf_cstr(&err)); return; }
    char *cd = xasprintf("%s/conf", dir);
    UNIT_EQ_STR(config_str(c, CFG_CONFIGDIR), cd);
    free(cd);
    UNIT_EQ_INT(config_int(c, CFG_IDLE_TIMEOUT), 31 * 60);
    UNIT_EQ_INT(config_int(c, CFG_MAX_LITERAL), 10 * 1024 * 1024);
    UNIT_EQ_INT(config_int(c, CFG_MAX_LINE), 64 * 1024);          /* default */
    UNIT_EQ_INT(config_int(c, CFG_ALLOW_PLAINTEXT), 1);
    UNIT_EQ_INT(config_list(c, CFG_ADMINS)->count, 2);
    UNIT_EQ_STR(config_list(c, CFG_ADMINS)->v[1], "root");
    UNIT_EQ_INT(c->nservices, 2);
    const struct config_service *s = config_service(c, "imap");
    UNIT_CHECK(s != NULL);
    if (s) {
        UNIT_EQ_STR(service_str(s, SVC_PROGRAM), "imapd");
        UNIT_EQ_INT(service_list(s, SVC_LISTEN)->count, 2);
        UNIT_EQ_INT(service_int(s, SVC_PREFORK), 2);
        UNIT_EQ_INT(service_int(s, SVC_MAXUSE), 250);
        UNIT_EQ_STR(service_str(s, SVC_TLS), "starttls");
    }
    UNIT_EQ_STR(service_str(config_service(c, "lmtp"), SVC_TLS), "none");
    UNIT_CHECK(config_service(c, "pop3") == NULL);
    UNIT_EQ_INT(c->npartitions, 2);
    char *pd = xasprintf("%s/spool/default", dir);
    UNIT_EQ_STR(config_partition(c, "default")->path, pd);
    free(pd);
    UNIT_EQ_STR(config_partition(c, "p2")->path, "/srv/p2");
    char *pid = config_pidfile(c);
    UNIT_CHECK(strstr(pid, "/conf/cofferd.pid") != NULL);
    free(pid);
    config_free(&c);
    UNIT_CHECK(c == NULL);
    buf_fini(&err);
}

static void test_backends(void)
{
    struct config *c;
    struct buf err = BUF_INIT;
    put("partitions.conf", "default /tmp/x\n");
    int r = load("router_default_backend = m2\n[backend m1]\nimap = 10.0.0.1:143\n"
                 "lmtp = mail1.example:24\n[service r]\nprogram = router\nlisten = 127.0.0.1:9\n"
                 "[backend m2]\npop3 = [2001:db8::1]:110\n", &c, &err);
    UNIT_EQ_INT(r, 0);
    if (r) { fprintf(stderr, "%s", buf_cstr(&err)); return; }
    UNIT_EQ_INT(c->nbackends, 2);
    UNIT_EQ_INT(c->nservices, 1);
    const struct config_backend *b = config_backend(c, "m1");
    UNIT_CHECK(b != NULL);
    if (b) {
        UNIT_EQ_STR(backend_addr(b, "imap"), "10.0.0.1:143");
        UNIT_EQ_STR(backend_addr(b, "lmtp"), "mail1.example:24");
        UNIT_EQ_STR(backend_addr(b, "pop3"), "");
        UNIT_CHECK(backend_addr(b, "smtp") == NULL);
    }
    UNIT_EQ_STR(config_backend(c, "m2")->pop3, "[2001:db8::1]:110");
    UNIT_CHECK(config_backend(c, "m3") == NULL);
    config_free(&c);
    buf_fini(&err);
}

static void test_errors(void)
{
    static const struct { const char *conf, *want; } cases[] = {
        { "bogus = 1\n", "coffer.conf:1: unknown setting 'bogus'" },
        { "\n\nidle_timeout = soon\n", "coffer.conf:3: idle_timeout must be a duration" },
        { "allow_plaintext = maybe\n", "coffer.conf:1: allow_plaintext must be yes or no" },
        { "log_target = file\n", "coffer.conf:1: log_target must be one of syslog|stderr" },
        { "just words\n", "coffer.conf:1: expected 'name = value'" },
        { "[service imap]\nlisten = 1.2.3.4:1\n", "coffer.conf:1: service 'imap' has no program" },
        { "[service imap]\nprogram = imapd\n", "coffer.conf:1: service 'imap' has no listen address" },
        { "[service imap]\nprogram=imapd\nlisten=a:1\nprefok = 1\n", "coffer.conf:4: unknown service setting 'prefok'" },
        { "[service a]\nprogram=x\nlisten=a:1\n[service a]\n", "coffer.conf:4: service 'a' is defined twice" },
        { "[servic a]\n", "coffer.conf:1: expected a section header" },
        { "[service imap]\nprogram=imapd\nlisten=a:1\nprefork=5\nmaxchild=2\n", "prefork <= maxchild" },
        { "max_line = 12Q\n", "max_line must be a size" },
        { "defaultpartition = nope\n", "defaultpartition 'nope' is not defined" },
        { "[backend b]\nimap = 127.0.0.1\n", "coffer.conf:2: backend imap: '127.0.0.1' is not HOST:PORT" },
        { "[backend b]\nlmtp = h:70000\n", "is not HOST:PORT" },
        { "[backend b]\npop3 = [::1:110\n", "is not HOST:PORT" },
        { "[backend b]\nsmtp = h:25\n", "coffer.conf:2: unknown backend setting 'smtp'" },
        { "[backend b]\n[backend b]\n", "coffer.conf:2: backend 'b' is defined twice" },
        { "[backend b c]\n", "coffer.conf:1: bad backend name 'b c'" },
        { "router_default_backend = x\n", "router_default_backend 'x' names no [backend] section" },
    };
    put("partitions.conf", "default /tmp/x\n");
    struct buf err = BUF_INIT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config *c = NULL;
        int r = load(cases[i].conf, &c, &err);
        UNIT_EQ_INT(r, CF_E_PARSE);
        UNIT_CHECK(c == NULL);
        if (!strstr(buf_cstr(&err), cases[i].want)) {
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, buf_cstr(&err), cases[i].want);
            UNIT_CHECK(0);
        }
    }
    put("partitions.conf", "default\n");
    struct config *c = NULL;
    UNIT_EQ_INT(load("", &c, &err), CF_E_PARSE);
    UNIT_CHECK(strstr(buf_cstr(&err), "partitions.conf:1: expected 'NAME DIRECTORY'") != NULL);
    put("partitions.conf", "a/b /x\n");
    UNIT_EQ_INT(load("", &c, &err), CF_E_PARSE);
    UNIT_CHECK(strstr(buf_cstr(&err), "partition name 'a/b'") != NULL);
    char *p = xasprintf("%s/partitions.conf", dir);
    unlink(p);
    free(p);
    UNIT_EQ_INT(load("", &c, &err), CF_E_IO);
    UNIT_CHECK(strstr(buf_cstr(&err), "cannot open partitions file") != NULL);
    buf_reset(&err);
    UNIT_EQ_INT(config_load("/nonexistent/coffer.conf", &c, &err), CF_E_IO);
    buf_fini(&err);
}

static void test_units(void)
{
    long long v;
    UNIT_EQ_INT(config_parse_size("512K", &v), 0); UNIT_EQ_INT(v, 512 * 1024);
    UNIT_EQ_INT(config_parse_size("2GB", &v), 0); UNIT_EQ_INT(v, 2LL << 30);
    UNIT_EQ_INT(config_parse_size("-1", &v), CF_E_PARSE);
    UNIT_EQ_INT(config_parse_size("", &v), CF_E_PARSE);
    UNIT_EQ_INT(config_parse_duration("90", &v), 0); UNIT_EQ_INT(v, 90);
    UNIT_EQ_INT(config_parse_duration("2h", &v), 0); UNIT_EQ_INT(v, 7200);
    UNIT_EQ_INT(config_parse_duration("1d", &v), 0); UNIT_EQ_INT(v, 86400);
    UNIT_EQ_INT(config_parse_duration("5mm", &v), CF_E_PARSE);
    UNIT_EQ_INT(config_parse_duration("99999999999999999999", &v), CF_E_PARSE);
}

/* Every setting must be documented in man/coffer.conf.5 (as a .TP entry "\fBname\fR"). */
static void test_documented(void)
{
    char *man;
    int r = file_read_all(COFFER_MAN_DIR "/coffer.conf.5", 1 << 20, &man, NULL);
    UNIT_EQ_INT(r, 0);
    if (r) return;
    size_t n;
    const struct config_def *d = config_global_defs(&n);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            char *needle = xasprintf("\\fB%s\\fR", d[i].name);
            if (!strstr(man, needle)) {
                fprintf(stderr, "man/coffer.conf.5 does not document '%s'\n", d[i].name);
                UNIT_CHECK(0);
            }
            free(needle);
        }
        d = config_service_defs(&n);
    }
    free(man);
}

int main(void)
{
    if (!mkdtemp(dir)) return 2;
    test_good();
    test_errors();
    test_backends();
    test_units();
    test_documented();
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd)) unit_failed++;
    free(cmd);
    UNIT_DONE();
}
