/* sasl.c: glue over the Cyrus SASL server library (see sasl.h). */
#include "auth/sasl.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <db.h>
#include <errno.h>
#include <sasl/sasl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct csasl {
    sasl_conn_t *conn;
    int plaintext_ok;
    char *user;     /* authorized identity, no realm */
    char *authid;   /* authenticated identity, no realm */
};

static const struct config *g_cfg;
static int g_inited;

/* SASL options come from coffer.conf; nothing is read from SASL's own config files. */
static int cb_getopt(void *context, const char *plugin, const char *option, const char **result,
                     unsigned *len)
{
    (void)context; (void)plugin;
    const char *v = NULL;
    if (!strcmp(option, "pwcheck_method")) v = config_str(g_cfg, CFG_SASL_PWCHECK_METHOD);
    else if (!strcmp(option, "auxprop_plugin")) v = "sasldb";
    else if (!strcmp(option, "sasldb_path")) v = config_str(g_cfg, CFG_SASL_DBPATH);
    else if (!strcmp(option, "mech_list")) v = config_str(g_cfg, CFG_SASL_MECH_LIST);
    else if (!strcmp(option, "saslauthd_path") && *config_str(g_cfg, CFG_SASL_SASLAUTHD_PATH))
        v = config_str(g_cfg, CFG_SASL_SASLAUTHD_PATH);
    else if (!strcmp(option, "log_level")) v = "2";  /* errors and failures */
    if (!v) return SASL_FAIL;
    *result = v;
    if (len) *len = (unsigned)strlen(v);
    return SASL_OK;
}

static int cb_log(void *context, int level, const char *message)
{
    (void)context;
    enum log_level l = level <= SASL_LOG_ERR ? LOG_LVL_ERR
                     : level <= SASL_LOG_WARN ? LOG_LVL_WARNING
                     : level <= SASL_LOG_NOTE ? LOG_LVL_NOTICE : LOG_LVL_DEBUG;
    log_event(l, "sasl", "message=%s", log_quote(message));
    return SASL_OK;
}

/* is_admin_canonical: whether SASL's canonical identity auth ("user@realm") is one of admins.
 * M10: the whole name counts: an entry of admins is "name@<sasl_realm>" (or a bare "name",
 * for a backend that appends no realm), never the part before the first '@' of any realm. */
static int is_admin_canonical(const char *auth, size_t alen)
{
    const struct strarr *admins = config_list(g_cfg, CFG_ADMINS);
    const char *realm = config_str(g_cfg, CFG_SASL_REALM);
    size_t rlen = strlen(realm);
    int has_at = memchr(auth, '@', alen) != NULL;
    for (size_t i = 0; i < admins->count; i++) {
        size_t n = strlen(admins->v[i]);
        if (n > alen || memcmp(admins->v[i], auth, n)) continue;
        if (n == alen && !has_at) return 1;
        if (*realm && alen == n + 1 + rlen && auth[n] == '@' && !memcmp(auth + n + 1, realm, rlen))
            return 1;
    }
    return 0;
}

/* Proxy authorization (authzid): a user may act as someone else only when an administrator. */
static int cb_proxy(sasl_conn_t *conn, void *context, const char *requested, unsigned rlen,
                    const char *auth, unsigned alen, const char *def_realm, unsigned urlen,
                    struct propctx *propctx)
{
    (void)context; (void)def_realm; (void)urlen; (void)propctx;
    if (rlen == alen && !memcmp(requested, auth, rlen)) return SASL_OK;
    if (is_admin_canonical(auth, alen)) return SASL_OK;
    sasl_seterror(conn, 0, "not authorized to act as another user");
    return SASL_BADAUTH;
}

/* cb_canon: M2: every name a client gives SASL (LOGIN and USER/PASS, and the authentication
 * and authorization identities of every mechanism) must already be in canonical form: SASL's
 * own canonicalization would strip white space, so " user" would authenticate as "user" while
 * meaning another string. Names with white space, control characters or DEL, with more than
 * one '@', or with a realm other than sasl_realm fail like bad credentials; a good name goes on
 * unchanged to SASL's canonicalization, which appends the realm. */
static int cb_canon(sasl_conn_t *conn, void *context, const char *in, unsigned inlen,
                    unsigned flags, const char *user_realm, char *out, unsigned out_max,
                    unsigned *out_len)
{
    (void)context; (void)flags; (void)user_realm;
    const char *realm = config_str(g_cfg, CFG_SASL_REALM);
    /* sasldb compares names exactly, but saslauthd's backends (PAM, LDAP) mostly ignore case,
     * and "User" would then be a second identity of "user": there, upper case is refused */
    int no_upper = !strcmp(config_str(g_cfg, CFG_SASL_PWCHECK_METHOD), "saslauthd");
    const char *at = NULL;
    int bad = inlen > CSASL_MAX_NAME + 1 + strlen(realm);
    for (unsigned i = 0; i < inlen && !bad; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch <= 0x20 || ch == 0x7f || (ch == '@' && at)) bad = 1;
        else if (no_upper && ch >= 'A' && ch <= 'Z') bad = 1;
        else if (ch == '@') at = in + i;
    }
    if (!bad && at && ((size_t)(in + inlen - at - 1) != strlen(realm) ||
                       memcmp(at + 1, realm, strlen(realm)) || at == in))
        bad = 1;
    if (bad) {
        sasl_seterror(conn, 0, "user name is not in canonical form");
        return SASL_BADAUTH;
    }
    if (inlen >= out_max) return SASL_BUFOVER;
    memmove(out, in, inlen);        /* in and out may be the same buffer */
    out[inlen] = '\0';
    *out_len = inlen;
    return SASL_OK;
}

static sasl_callback_t g_callbacks[] = {
    { SASL_CB_CANON_USER, (int (*)(void))(void *)cb_canon, NULL },
    { SASL_CB_GETOPT, (int (*)(void))(void *)cb_getopt, NULL },
    { SASL_CB_LOG, (int (*)(void))(void *)cb_log, NULL },
    { SASL_CB_PROXY_POLICY, (int (*)(void))(void *)cb_proxy, NULL },
    { SASL_CB_LIST_END, NULL, NULL },
};

int csasl_init(const struct config *cfg)
{
    g_cfg = cfg;
    if (g_inited) return 0;
    int r = sasl_server_init(g_callbacks, "coffer");
    if (r != SASL_OK) {
        log_err("sasl_init_failed", "error=%s", log_quote(sasl_errstring(r, NULL, NULL)));
        return CF_E_INTERNAL;
    }
    g_inited = 1;
    return 0;
}

void csasl_done(void)
{
    if (g_inited) sasl_server_done();
    g_inited = 0;
}

int csasl_new(const char *service, const char *local, const char *peer, int tls_ssf,
              struct csasl **out)
{
    *out = NULL;
    struct csasl *s = xzmalloc(sizeof *s);
    int r = sasl_server_new(service, config_str(g_cfg, CFG_HOSTNAME),
                            config_str(g_cfg, CFG_SASL_REALM), local, peer, NULL, 0, &s->conn);
    if (r != SASL_OK) {
        log_err("sasl_new_failed", "error=%s", log_quote(sasl_errstring(r, NULL, NULL)));
        free(s);
        return CF_E_INTERNAL;
    }
    s->plaintext_ok = tls_ssf > 0 || config_int(g_cfg, CFG_ALLOW_PLAINTEXT);
    sasl_security_properties_t sec;
    memset(&sec, 0, sizeof sec);
    sec.maxbufsize = 0;          /* no SASL security layer: TLS protects the session */
    sec.min_ssf = 0;
    sec.max_ssf = 0;
    sec.security_flags = SASL_SEC_NOANONYMOUS | (s->plaintext_ok ? 0 : SASL_SEC_NOPLAINTEXT);
    sasl_setprop(s->conn, SASL_SEC_PROPS, &sec);
    sasl_ssf_t ext = (sasl_ssf_t)tls_ssf;
    sasl_setprop(s->conn, SASL_SSF_EXTERNAL, &ext);
    *out = s;
    return 0;
}

void csasl_free(struct csasl **sp)
{
    struct csasl *s = *sp;
    if (!s) return;
    sasl_dispose(&s->conn);
    free(s->user);
    free(s->authid);
    free(s);
    *sp = NULL;
}

int csasl_mechs(struct csasl *s, const char *sep, struct buf *out)
{
    const char *list;
    unsigned len;
    int count;
    buf_reset(out);
    if (sasl_listmech(s->conn, NULL, "", sep, "", &list, &len, &count) != SASL_OK) return 0;
    return buf_append(out, list, len);
}

int csasl_mech_allowed(struct csasl *s, const char *mech)
{
    struct buf b = BUF_INIT;
    struct strarr a = STRARR_INIT;
    csasl_mechs(s, " ", &b);
    strarr_split(&a, buf_cstr(&b), " ", 0);
    int found = strarr_find_case(&a, mech) >= 0;
    strarr_fini(&a);
    buf_fini(&b);
    return found;
}

/* strip_realm: "user@realm" -> "user" when realm is ours. */
static char *strip_realm(const char *u)
{
    const char *realm = config_str(g_cfg, CFG_SASL_REALM);
    const char *at = strrchr(u, '@');
    if (at && !strcmp(at + 1, realm)) return xstrndup(u, (size_t)(at - u));
    return xstrdup(u);
}

/* name_acceptable: M2: a name Coffer can use as a session identity as it is: not empty, not
 * too long, no white space, control characters or DEL (SASL would strip or keep them, and the
 * session would then not be the account), and no '@' left after our realm was stripped (Coffer
 * has one realm: "user@other.realm" is not a user of it). */
static int name_acceptable(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > CSASL_MAX_NAME) return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p == 0x7f || *p == '@') return 0;
    return 1;
}

static int finish(struct csasl *s)
{
    const void *user = NULL, *authid = NULL;
    if (sasl_getprop(s->conn, SASL_USERNAME, &user) != SASL_OK || !user) return CF_E_INTERNAL;
    sasl_getprop(s->conn, SASL_AUTHUSER, &authid);
    char *u = strip_realm(user), *a = strip_realm(authid ? authid : user);
    if (!name_acceptable(u) || !name_acceptable(a)) {
        log_notice("sasl_identity_refused", "user=%s authid=%s", log_quote(u), log_quote(a));
        free(u);
        free(a);
        return CF_E_PERM;
    }
    free(s->user);
    free(s->authid);
    s->user = u;
    s->authid = a;
    return 0;
}

static int map_result(struct csasl *s, int r)
{
    switch (r) {
    case SASL_OK: return finish(s);
    case SASL_CONTINUE: return 1;
    case SASL_NOMECH: case SASL_TOOWEAK: case SASL_ENCRYPT: return CF_E_NOTFOUND;
    case SASL_BADPROT: case SASL_BADPARAM: return CF_E_PARSE;
    case SASL_TRYAGAIN: case SASL_UNAVAIL: case SASL_NOMEM: return CF_E_AGAIN;
    default:
        log_debug("sasl_failed", "error=%s", log_quote(sasl_errdetail(s->conn)));
        return CF_E_PERM;
    }
}

int csasl_start(struct csasl *s, const char *mech, const char *in, size_t inlen,
                const char **out, size_t *outlen)
{
    unsigned olen = 0;
    *out = NULL;
    if (!csasl_mech_allowed(s, mech)) return CF_E_NOTFOUND;
    int r = sasl_server_start(s->conn, mech, in, (unsigned)inlen, out, &olen);
    *outlen = olen;
    return map_result(s, r);
}

int csasl_step(struct csasl *s, const char *in, size_t inlen, const char **out, size_t *outlen)
{
    unsigned olen = 0;
    *out = NULL;
    int r = sasl_server_step(s->conn, in, (unsigned)inlen, out, &olen);
    *outlen = olen;
    return map_result(s, r);
}

int csasl_checkpass(struct csasl *s, const char *user, size_t ulen, const char *pass,
                    size_t plen)
{
    /* L2: a NUL inside either would make SASL check a shorter name or password than given */
    if (memchr(user, '\0', ulen) || memchr(pass, '\0', plen)) return CF_E_PERM;
    /* M2: a name SASL would change (" user", "user\t") is refused before SASL sees it, with
     * the same failure as a wrong password; "user@<sasl_realm>" is "user" */
    char *given = strip_realm(user);
    int r = CF_E_PERM;
    if (!name_acceptable(given)) goto done;
    r = sasl_checkpass(s->conn, user, (unsigned)ulen, pass, (unsigned)plen);
    if (r != SASL_OK) {
        r = r == SASL_TRYAGAIN || r == SASL_UNAVAIL ? CF_E_AGAIN : CF_E_PERM;
        goto done;
    }
    /* the session is SASL's canonical name, never the input (M2); the two must agree, or
     * "User" and "user" on a case-blind backend would be two identities of one account */
    r = finish(s);
    if (r == 0 && strcmp(s->user, given)) {
        log_notice("sasl_identity_refused", "given=%s canonical=%s", log_quote(given),
                   log_quote(s->user));
        r = CF_E_PERM;
    }
    if (r == 0) {
        free(s->authid);
        s->authid = xstrdup(s->user);
    } else {
        free(s->user);
        free(s->authid);
        s->user = s->authid = NULL;
        if (r != CF_E_AGAIN) r = CF_E_PERM;
    }
done:
    free(given);
    return r;
}

const char *csasl_user(const struct csasl *s) { return s->user; }
const char *csasl_authid(const struct csasl *s) { return s->authid; }

/* ---- sasldb management (tools) ---- */

static int admin_conn(sasl_conn_t **conn)
{
    int r = sasl_server_new("coffer", config_str(g_cfg, CFG_HOSTNAME),
                            config_str(g_cfg, CFG_SASL_REALM), NULL, NULL, NULL, 0, conn);
    if (r != SASL_OK) {
        log_err("sasl_new_failed", "error=%s", log_quote(sasl_errstring(r, NULL, NULL)));
        return CF_E_INTERNAL;
    }
    return 0;
}

static int sasldb_open(DB **dbp, int write);

int csasl_user_exists(const char *user)
{
    /* one lookup of the user's password record, the one SASL's setpass writes for every
     * user (sasl_setpass stores userPassword): listing every user to find one made adding
     * N users cost N^2 (provisioning 100,000 users, docs/perf/many-users.md) */
    DB *db;
    int r = sasldb_open(&db, 0);
    if (r == CF_E_NOTFOUND) return 0;
    if (r) return r;
    const char *realm = config_str(g_cfg, CFG_SASL_REALM);
    struct buf key = BUF_INIT;
    buf_appends(&key, user);
    buf_putc(&key, '\0');
    buf_appends(&key, realm);
    buf_putc(&key, '\0');
    buf_appends(&key, "userPassword");
    DBT k, v;
    memset(&k, 0, sizeof k);
    memset(&v, 0, sizeof v);
    k.data = key.s;
    k.size = (u_int32_t)key.len;
    int e = db->get(db, NULL, &k, &v, 0);
    r = e == 0 ? 1 : e == DB_NOTFOUND ? 0 : CF_E_IO;
    db->close(db, 0);
    buf_fini(&key);
    return r;
}

int csasl_acl_grantee_ok(const char *ident)
{
    if (!g_cfg || !config_int(g_cfg, CFG_ACL_LOCAL_USERS_ONLY)) return 1;
    if (ident[0] == '-' || !strcmp(ident, "anyone") || !strcmp(ident, "anonymous")) return 1;
    if (strarr_find(config_list(g_cfg, CFG_ADMINS), ident) >= 0) return 1;
    return csasl_user_exists(ident);
}

int csasl_setpass(const char *user, const char *pass, int create)
{
    int exists = csasl_user_exists(user);
    if (exists < 0) return exists;
    if (create && exists) return CF_E_EXISTS;
    if (!create && !exists) return CF_E_NOTFOUND;
    sasl_conn_t *conn;
    int r = admin_conn(&conn);
    if (r) return r;
    r = sasl_setpass(conn, user, pass, (unsigned)strlen(pass), NULL, 0, SASL_SET_CREATE);
    if (r != SASL_OK) {
        log_err("sasl_setpass_failed", "user=%s error=%s", log_quote(user),
                log_quote(sasl_errdetail(conn)));
        sasl_dispose(&conn);
        return CF_E_IO;
    }
    sasl_dispose(&conn);
    return 0;
}

/* sasldb is a Berkeley DB hash file of "user\0realm\0property" -> value, written by SASL's own
 * sasldb plugin. Listing users has no SASL API, so we read the file directly (read-only);
 * deleting goes through the same file, removing every property of the user. */
static int sasldb_open(DB **dbp, int write)
{
    DB *db;
    int e = db_create(&db, NULL, 0);
    if (e) return CF_E_IO;
    e = db->open(db, NULL, config_str(g_cfg, CFG_SASL_DBPATH), NULL, DB_UNKNOWN,
                 write ? 0 : DB_RDONLY, 0600);
    if (e) {
        db->close(db, 0);
        return e == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    }
    *dbp = db;
    return 0;
}

/* scan: walk the sasldb keys of our realm: add each user name once to users (sorted at the
 * end), or with delete, remove the keys of only_user (CF_E_NOTFOUND when it had none). */
static int scan(const char *only_user, struct strarr *users, int delete)
{
    DB *db;
    int r = sasldb_open(&db, delete);
    if (r == CF_E_NOTFOUND) return delete ? CF_E_NOTFOUND : 0;
    if (r) return r;
    const char *realm = config_str(g_cfg, CFG_SASL_REALM);
    DBC *cur;
    int found = 0;
    if (db->cursor(db, NULL, &cur, 0)) { db->close(db, 0); return CF_E_IO; }
    DBT k, v;
    memset(&k, 0, sizeof k);
    memset(&v, 0, sizeof v);
    while (cur->get(cur, &k, &v, DB_NEXT) == 0) {
        const char *p = k.data, *end = p + k.size;
        const char *z1 = memchr(p, '\0', k.size);
        if (!z1) continue;
        const char *z2 = memchr(z1 + 1, '\0', (size_t)(end - z1 - 1));
        if (!z2) continue;
        size_t rl = (size_t)(z2 - z1 - 1);
        if (rl != strlen(realm) || memcmp(z1 + 1, realm, rl)) continue;
        char *u = xstrndup(p, (size_t)(z1 - p));
        if (only_user && strcmp(u, only_user)) { free(u); continue; }
        if (delete) {
            cur->del(cur, 0);
            found = 1;
            free(u);
        } else if (strarr_find(users, u) < 0) {
            strarr_take(users, u);
        } else {
            free(u);
        }
    }
    cur->close(cur);
    db->close(db, 0);
    if (users) strarr_sort(users);
    return delete && !found ? CF_E_NOTFOUND : 0;
}

int csasl_listusers(struct strarr *out)
{
    return scan(NULL, out, 0);
}

int csasl_deluser(const char *user)
{
    return scan(user, NULL, 1);
}
