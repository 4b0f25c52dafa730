/* test-sasl.c: unit tests for the SASL glue against a real sasldb file, and of the exchange
 * loop the services share (csasl_exchange) over a socket pair. */
#include "auth/sasl.h"
#include "auth/sasl-exchange.h"
#include "core/base64.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char dir[] = "/tmp/coffer-sasltest-XXXXXX";

static int plain(struct csasl *s, const char *authz, const char *authc, const char *pw)
{
    char msg[256];
    size_t n = 0;
    n += (size_t)sprintf(msg + n, "%s", authz) + 1;
    n += (size_t)sprintf(msg + n, "%s", authc) + 1;
    memcpy(msg + n, pw, strlen(pw));
    n += strlen(pw);
    const char *out;
    size_t outlen;
    return csasl_start(s, "PLAIN", msg, n, &out, &outlen);
}

static int checkpass(struct csasl *s, const char *user, const char *pass)
{
    return csasl_checkpass(s, user, strlen(user), pass, strlen(pass));
}

/* M2/L2: a name SASL would canonicalize into another one, or bytes past a NUL, never log in */
static void test_identity_variants(void)
{
    static const char *const bad[] = { " alice", "alice ", "\talice", "alice\t", "Alice",
                                       "alice@other.realm", "al ice", "", "..", "a/b",
                                       "alice\r" };
    struct csasl *s;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
        UNIT_EQ_INT(checkpass(s, bad[i], "secret"), CF_E_PERM);
        UNIT_CHECK(csasl_user(s) == NULL);
        csasl_free(&s);
    }
    char longname[CSASL_MAX_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(checkpass(s, longname, "secret"), CF_E_PERM);
    csasl_free(&s);
    /* NUL in the name or the password */
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(csasl_checkpass(s, "alice\0x", 7, "secret", 6), CF_E_PERM);
    UNIT_EQ_INT(csasl_checkpass(s, "alice", 5, "secret\0junk", 11), CF_E_PERM);
    csasl_free(&s);
    /* our own realm is the same user, and the session is the bare canonical name */
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(checkpass(s, "alice@test.example", "secret"), 0);
    UNIT_EQ_STR(csasl_user(s), "alice");
    UNIT_EQ_STR(csasl_authid(s), "alice");
    csasl_free(&s);
    /* the SASL exchange path: padded or foreign-realm identities fail like bad credentials
     * (the canonicalization callback), whether authentication or authorization identity */
    static const char *const bad_ids[][2] = { { "", " alice" }, { "", "alice\t" },
                                              { " bob", "admin" }, { "bob", "admin@x.y" },
                                              { "", "alice@test.example@test.example" } };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
        UNIT_EQ_INT(plain(s, bad_ids[i][0], bad_ids[i][1], "secret"), CF_E_PERM);
        csasl_free(&s);
    }
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(plain(s, "", "alice@test.example", "secret"), 0);
    UNIT_EQ_STR(csasl_user(s), "alice");
    csasl_free(&s);
}

/* Table: one exchange of PLAIN: the initial response, what the client has sent beforehand
 * (NULL: it has hung up), the outcome and result, and the challenges the server wrote. */
static const struct {
    const char *ir, *client;
    enum csasl_outcome o;
    int r;
    const char *server;
} exchange_cases[] = {
    { "AGJvYgBib2Jwdw==", "", CSASL_FINISHED, 0, "" },                    /* \0bob\0bobpw */
    { NULL, "AGJvYgBib2Jwdw==\r\n", CSASL_FINISHED, 0, "+ \r\n" },
    { NULL, "AGJvYgB3cm9uZw==\r\n", CSASL_FINISHED, CF_E_PERM, "+ \r\n" },  /* \0bob\0wrong */
    { "!!!", "", CSASL_BAD_INITIAL, 0, "" },
    { NULL, "*\r\n", CSASL_CANCELLED, 0, "+ \r\n" },
    { NULL, "@@@\r\n", CSASL_BAD_RESPONSE, 0, "+ \r\n" },
    { NULL, "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n", CSASL_TOO_LONG, 0, "+ \r\n" },
    { NULL, NULL, CSASL_READ_FAILED, CF_E_EOF, "+ \r\n" },
};

static void test_exchange(void)
{
    for (size_t i = 0; i < sizeof exchange_cases / sizeof exchange_cases[0]; i++) {
        int sv[2];
        UNIT_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        const char *cl = exchange_cases[i].client;
        if (cl && *cl) UNIT_EQ_INT(write(sv[1], cl, strlen(cl)), (long)strlen(cl));
        if (!cl) shutdown(sv[1], SHUT_WR);
        struct stream *st = stream_new(sv[0]);
        stream_set_timeout(st, 5);
        stream_set_max_line(st, 32);
        struct csasl *s;
        UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
        int r = 0;
        enum csasl_outcome o = csasl_exchange(s, st, "+ ", "PLAIN", exchange_cases[i].ir, &r);
        if (o != exchange_cases[i].o) fprintf(stderr, "exchange case %zu\n", i);
        UNIT_EQ_INT(o, exchange_cases[i].o);
        if (o == CSASL_FINISHED || o == CSASL_READ_FAILED) UNIT_EQ_INT(r, exchange_cases[i].r);
        if (o == CSASL_FINISHED && !r) UNIT_EQ_STR(csasl_user(s), "bob");
        stream_free(&st);
        char got[256];
        ssize_t n = read(sv[1], got, sizeof got - 1);
        got[n > 0 ? n : 0] = '\0';
        UNIT_EQ_STR(got, exchange_cases[i].server);
        close(sv[1]);
        csasl_free(&s);
    }
}

int main(void)
{
    log_init("test-sasl", 1, LOG_LVL_ERR);
    if (!mkdtemp(dir)) return 2;
    char *conf = xasprintf("%s/coffer.conf", dir), *parts = xasprintf("%s/partitions.conf", dir);
    const char *text = "configdir = cfg\nhostname = test.example\nadmins = admin\n"
                       "sasl_mech_list = PLAIN LOGIN SCRAM-SHA-256\n";
    file_write_atomic(conf, text, strlen(text), 0600);
    file_write_atomic(parts, "default spool\n", 14, 0600);
    char *cfgdir = xasprintf("%s/cfg", dir);
    mkdir_p(cfgdir, 0700);
    struct config *cfg;
    struct buf err = BUF_INIT;
    UNIT_EQ_INT(config_load(conf, &cfg, &err), 0);
    UNIT_EQ_STR(config_str(cfg, CFG_SASL_REALM), "test.example");
    UNIT_EQ_INT(csasl_init(cfg), 0);

    struct strarr users = STRARR_INIT;
    UNIT_EQ_INT(csasl_listusers(&users), 0);           /* no database yet */
    UNIT_EQ_INT(users.count, 0);
    UNIT_EQ_INT(csasl_setpass("alice", "secret", 1), 0);
    UNIT_EQ_INT(csasl_setpass("admin", "adminpw", 1), 0);
    UNIT_EQ_INT(csasl_setpass("bob", "bobpw", 1), 0);
    UNIT_EQ_INT(csasl_setpass("alice", "x", 1), CF_E_EXISTS);
    UNIT_EQ_INT(csasl_setpass("nobody", "x", 0), CF_E_NOTFOUND);
    UNIT_EQ_INT(csasl_user_exists("alice"), 1);
    UNIT_EQ_INT(csasl_user_exists("carol"), 0);
    UNIT_EQ_INT(csasl_user_exists("alic"), 0);    /* a prefix of a user is none */
    UNIT_EQ_INT(csasl_user_exists("alice2"), 0);
    UNIT_EQ_INT(csasl_listusers(&users), 0);
    UNIT_EQ_INT(users.count, 3);
    UNIT_EQ_STR(strarr_get(&users, 0), "admin");
    UNIT_EQ_STR(strarr_get(&users, 2), "bob");
    strarr_fini(&users);

    struct csasl *s;
    struct buf mechs = BUF_INIT;
    /* without TLS and without allow_plaintext: no plaintext mechanisms, no plaintext checks */
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 0, &s), 0);
    csasl_mechs(s, " ", &mechs);
    UNIT_CHECK(strstr(buf_cstr(&mechs), "SCRAM-SHA-256") != NULL);
    UNIT_CHECK(strstr(buf_cstr(&mechs), "PLAIN") == NULL);
    UNIT_EQ_INT(csasl_mech_allowed(s, "plain"), 0);
    UNIT_EQ_INT(plain(s, "", "alice", "secret"), CF_E_NOTFOUND);
    csasl_free(&s);
    UNIT_CHECK(s == NULL);

    /* over TLS */
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    csasl_mechs(s, " ", &mechs);
    UNIT_CHECK(strstr(buf_cstr(&mechs), "PLAIN") != NULL);
    UNIT_EQ_INT(checkpass(s, "alice", "wrong"), CF_E_PERM);
    UNIT_EQ_INT(checkpass(s, "nosuch", "secret"), CF_E_PERM);
    UNIT_EQ_INT(checkpass(s, "alice", "secret"), 0);
    UNIT_EQ_STR(csasl_user(s), "alice");
    csasl_free(&s);
    test_identity_variants();
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    csasl_free(&s);

    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(plain(s, "", "alice", "secret"), 0);
    UNIT_EQ_STR(csasl_user(s), "alice");
    UNIT_EQ_STR(csasl_authid(s), "alice");
    csasl_free(&s);
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(plain(s, "", "alice", "nope"), CF_E_PERM);
    csasl_free(&s);
    /* an administrator may authorize as another user; a user may not */
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(plain(s, "bob", "admin", "adminpw"), 0);
    UNIT_EQ_STR(csasl_user(s), "bob");
    UNIT_EQ_STR(csasl_authid(s), "admin");
    csasl_free(&s);
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(plain(s, "alice", "bob", "bobpw"), CF_E_PERM);
    csasl_free(&s);
    /* unknown mechanism */
    UNIT_EQ_INT(csasl_new("imap", NULL, NULL, 256, &s), 0);
    const char *out;
    size_t outlen;
    UNIT_EQ_INT(csasl_start(s, "X-NOPE", NULL, 0, &out, &outlen), CF_E_NOTFOUND);
    csasl_free(&s);

    /* password change and delete */
    UNIT_EQ_INT(csasl_setpass("alice", "newpw", 0), 0);
    UNIT_EQ_INT(csasl_new("pop", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(checkpass(s, "alice", "secret"), CF_E_PERM);
    UNIT_EQ_INT(checkpass(s, "alice", "newpw"), 0);
    csasl_free(&s);
    UNIT_EQ_INT(csasl_deluser("alice"), 0);
    UNIT_EQ_INT(csasl_deluser("alice"), CF_E_NOTFOUND);
    UNIT_EQ_INT(csasl_user_exists("alice"), 0);
    UNIT_EQ_INT(csasl_new("pop", NULL, NULL, 256, &s), 0);
    UNIT_EQ_INT(checkpass(s, "alice", "newpw"), CF_E_PERM);
    csasl_free(&s);
    UNIT_EQ_INT(csasl_user_exists("bob"), 1);
    test_exchange();

    buf_fini(&mechs);
    buf_fini(&err);
    config_free(&cfg);
    csasl_done();
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd)) unit_failed++;
    free(cmd); free(conf); free(parts); free(cfgdir);
    UNIT_DONE();
}
