/* main.c: router, the scale-out front service (man/router.8): answers nginx's mail auth_http
 * requests (password check against the SASL setup of the backends, then the user's backend
 * address) and Postfix socketmap lookups (the user's backend LMTP address), from route.db
 * (store/routedb.h, through route-lookup.h). Run by cofferd's prefork worker
 * (lib/net/worker.h). One connection speaks one protocol, told by its first byte: a digit
 * starts a netstring (socketmap), anything else an HTTP request. */
#include "router/route-lookup.h"
#include "router/router-parse.h"
#include "auth/sasl.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "net/worker.h"
#include "store/kv.h"
#include "store/routedb.h"
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define ROUTER_HTTP_DEADLINE 10         /* seconds for one whole auth_http request */
#define ROUTER_MAX_NETSTRING 4096       /* longest socketmap request accepted */
#define ROUTER_MAX_WAIT_FACTOR 30       /* Auth-Wait grows up to 30 times router_auth_wait */

static const struct config *g_cfg;
static struct kv_db *g_fails;           /* authfail.db: recent failed logins (fail_count) */
static time_t g_last_prune;

static int router_init(const struct config *cfg, const struct config_service *svc)
{
    (void)svc;
    if (csasl_init(cfg)) return 1;
    g_cfg = cfg;
    route_lookup_init(cfg);
    return 0;
}

/* ---- failed logins across connections ----
 * authfail.db (in the same environment, commits not forced to disk: losing the last counts
 * in a crash only shortens a wait): key "u USER" or "i CLIENT-IP", value "1 COUNT FIRST",
 * the failures since FIRST (seconds since the epoch) within router_fail_window. nginx's own
 * Auth-Login-Attempt restarts with every client connection; these counts do not. Records
 * past the window are removed by the worker at most once a window. */

static int fail_parse(const char *v, long long *count, long long *first)
{
    return sscanf(v, "1 %lld %lld", count, first) == 2 ? 0 : -1;
}

static int fail_expired(const char *key, size_t klen, const char *val, size_t vlen, void *rock)
{
    (void)key;
    (void)klen;
    (void)vlen;
    long long count, first;
    return fail_parse(val, &count, &first) || first < *(const long long *)rock;
}

/* fails: authfail.db, opened on first use; NULL when unavailable (logged by kv) */
static struct kv_db *fails(void)
{
    if (!g_fails && route_lookup_env() &&
        kv_db_open(route_lookup_env(), "authfail.db", KV_TXN_NOSYNC, &g_fails))
        g_fails = NULL;
    return g_fails;
}

/* fail_count: the failures recorded for key within the window, after adding one when bump;
 * 0 when none or when the database is unavailable (logged by kv). */
static long long fail_count(const char *key, int bump)
{
    long long window = config_int(g_cfg, CFG_ROUTER_FAIL_WINDOW);
    if (window <= 0 || !fails()) return 0;
    time_t now = time(NULL);
    long long count = 0, first = now;
    int r;
    KV_RETRY(r) {
        struct kv_txn *txn = NULL;
        struct buf v = BUF_INIT;
        count = 0;
        first = now;
        r = kv_txn_begin(route_lookup_env(), KV_TXN_NOSYNC, &txn);
        if (!r) r = kv_get(g_fails, txn, key, strlen(key), &v);
        if (r == 1 && (fail_parse(buf_cstr(&v), &count, &first) || first < now - window)) {
            count = 0;
            first = now;
        }
        if (r >= 0 && bump) {
            count++;
            buf_reset(&v);
            buf_printf(&v, "1 %lld %lld", count, first);
            r = kv_put(g_fails, txn, key, strlen(key), v.s, v.len);
        }
        if (r >= 0) r = kv_txn_commit(&txn);
        else kv_txn_abort(&txn);
        buf_fini(&v);
    }
    if (bump && now - g_last_prune > window) {
        g_last_prune = now;
        long long before = now - window;
        kv_del_if(g_fails, "", 0, fail_expired, &before);
    }
    return r < 0 ? 0 : count;
}

static void fail_forget(const char *key)
{
    if (config_int(g_cfg, CFG_ROUTER_FAIL_WINDOW) > 0 && fails())
        kv_del(g_fails, NULL, key, strlen(key));
}

/* ---- nginx auth_http ---- */

static void http_status(struct stream *s, const char *status)
{
    stream_printf(s, "HTTP/1.0 %s\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status);
}

/* auth_reply: a 200 answer with Auth-Status text and, when wait > 0, Auth-Wait */
static void auth_reply(struct stream *s, const char *status, long long wait)
{
    stream_printf(s, "HTTP/1.0 200 OK\r\nAuth-Status: %s\r\n", status);
    if (wait > 0) stream_printf(s, "Auth-Wait: %lld\r\n", wait);
    stream_puts(s, "Content-Length: 0\r\n\r\n");
}

/* resolve_ip: the first address of "host:port" / "[v6]:port" as a numeric host into ip and
 * the port into port: nginx wants Auth-Server as an address, never a name. 0 or -1. */
static int resolve_ip(const char *addr, char *ip, size_t iplen, char *port, size_t portlen)
{
    char host[256];
    const char *p;
    if (route_addr_split(addr, host, sizeof host, &p) || strlen(p) >= portlen) return -1;
    strcpy(port, p);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) || !res) return -1;
    int r = getnameinfo(res->ai_addr, res->ai_addrlen, ip, (socklen_t)iplen, NULL, 0,
                        NI_NUMERICHOST) ? -1 : 0;
    freeaddrinfo(res);
    return r;
}

/* auth: answer one parsed auth_http request */
static void auth(struct stream *s, const struct http_req *req)
{
    const char *method = http_header(req, "Auth-Method");
    const char *proto = http_header(req, "Auth-Protocol");
    const char *euser = http_header(req, "Auth-User");
    const char *epass = http_header(req, "Auth-Pass");
    const char *attempt_s = http_header(req, "Auth-Login-Attempt");
    const char *client = http_header(req, "Client-IP");
    struct buf user = BUF_INIT, pass = BUF_INIT;
    long attempt = 1;
    if (attempt_s) {
        char *end;
        attempt = strtol(attempt_s, &end, 10);
        if (end == attempt_s || *end || attempt < 1) attempt = -1;
    }
    if (!method || !proto || !euser || !epass || attempt < 1 || url_decode(euser, &user) ||
        url_decode(epass, &pass)) {
        log_notice("auth_http_refused", "reason=bad_headers");
        http_status(s, "400 Bad Request");
        goto out;
    }
    log_set_user(buf_cstr(&user));
    if (strcmp(proto, "imap") && strcmp(proto, "pop3") && strcmp(proto, "smtp")) {
        log_notice("auth_http_refused", "reason=bad_protocol protocol=%s", log_quote(proto));
        http_status(s, "400 Bad Request");
        goto out;
    }
    if (strcmp(method, "plain") && strcmp(method, "login")) {
        log_notice("auth_failed", "reason=method method=%s", log_quote(method));
        auth_reply(s, "Authentication method not supported", 0);
        goto out;
    }
    struct csasl *sasl = NULL;
    /* whether the client may send a password without TLS is nginx's decision (its
     * starttls only); the router only checks it, as imapd checks a LOGIN */
    int r = csasl_new(!strcmp(proto, "pop3") ? "pop" : proto, NULL, NULL, 0, &sasl);
    /* NUL-terminated too: SASL compares the password with strcmp */
    if (!r) r = csasl_checkpass(sasl, buf_cstr(&user), user.len, buf_cstr(&pass), pass.len);
    long long unit = config_int(g_cfg, CFG_ROUTER_AUTH_WAIT);
    if (r == CF_E_PERM || r == CF_E_PARSE) {
        char *ukey = xasprintf("u %s", buf_cstr(&user));
        char *ikey = xasprintf("i %s", client ? client : "");
        long long nu = fail_count(ukey, 1), ni = client ? fail_count(ikey, 1) : 0;
        long long f = attempt;
        if (nu > f) f = nu;
        if (ni > f) f = ni;
        if (f > ROUTER_MAX_WAIT_FACTOR) f = ROUTER_MAX_WAIT_FACTOR;
        free(ukey);
        free(ikey);
        log_notice("auth_failed", "protocol=%s attempt=%ld failures_user=%lld "
                   "failures_client=%lld client=%s", proto, attempt, nu, ni,
                   log_quote(client ? client : ""));
        auth_reply(s, "Invalid login or password", unit > 0 ? unit * f : 1);
        csasl_free(&sasl);
        goto out;
    }
    if (r) {
        log_err("auth_failed", "protocol=%s reason=backend", proto);
        auth_reply(s, "Temporary server problem, try again later", unit > 0 ? unit : 1);
        csasl_free(&sasl);
        goto out;
    }
    char *canon = xstrdup(csasl_user(sasl));
    csasl_free(&sasl);
    log_set_user(canon);
    char *ukey = xasprintf("u %s", buf_cstr(&user));
    fail_forget(ukey);                  /* the right password ends the user's count */
    free(ukey);
    const struct config_backend *be = NULL;
    int moving = 0;
    r = route_lookup(canon, &be, &moving);
    const char *addr = r == 1 ? backend_addr(be, proto) : NULL;
    char ip[INET6_ADDRSTRLEN + 1], port[8];
    if (r == 1 && moving) {
        log_info("auth_moving", "protocol=%s backend=%s", proto, log_quote(be->name));
        auth_reply(s, "Temporary server problem, try again later",
                   config_int(g_cfg, CFG_ROUTER_MOVE_WAIT) > 0
                       ? config_int(g_cfg, CFG_ROUTER_MOVE_WAIT) : 1);
    } else if (r == 1 && addr && *addr && !resolve_ip(addr, ip, sizeof ip, port, sizeof port)) {
        log_info("auth_routed", "protocol=%s backend=%s server=%s port=%s", proto,
                 log_quote(be->name), ip, port);
        stream_printf(s, "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: %s\r\n"
                      "Auth-Port: %s\r\nContent-Length: 0\r\n\r\n", ip, port);
    } else {
        log_err("auth_no_route", "protocol=%s backend=%s reason=%s", proto,
                log_quote(be ? be->name : ""),
                r == 0 ? "no_route" : r < 0 ? "database" : addr && *addr ? "resolve" : "no_address");
        auth_reply(s, "Temporary server problem, try again later", unit > 0 ? unit : 1);
    }
    free(canon);
out:
    buf_fini(&user);
    buf_fini(&pass);
}

/* http_session: read one request head (first: its first byte, already read), answer it */
static const char *http_session(struct stream *s, char first)
{
    struct buf head = BUF_INIT, line = BUF_INIT;
    const char *end = "done";
    buf_putc(&head, first);
    stream_set_max_line(s, HTTP_MAX_HEAD);
    for (;;) {
        int r = stream_read_line(s, &line);
        if (r == CF_E_LIMIT || (!r && head.len + line.len + 2 > HTTP_MAX_HEAD)) {
            log_notice("auth_http_refused", "reason=too_long");
            http_status(s, "400 Bad Request");
            end = "too_long";
            goto out;
        }
        if (r) {
            end = r == CF_E_TIMEOUT ? "timeout" : r == CF_E_EOF ? "eof"
                : r == CF_E_SHUTDOWN ? "shutdown" : "io";
            goto out;
        }
        if (!line.len && head.len > 1) break;      /* the empty line ends the head */
        buf_append(&head, line.s, line.len);
        buf_appends(&head, "\r\n");
    }
    struct http_req req;
    int r = http_parse_head(head.s, head.len, &req);
    if (r) {
        log_notice("auth_http_refused", "reason=malformed");
        http_status(s, "400 Bad Request");
        end = "malformed";
    } else if (strcmp(req.method, "GET")) {
        log_notice("auth_http_refused", "reason=method method=%s", log_quote(req.method));
        http_status(s, "405 Method Not Allowed");
        end = "malformed";
    } else {
        auth(s, &req);
    }
    http_req_fini(&req);
out:
    buf_fini(&head);
    buf_fini(&line);
    return end;
}

/* ---- Postfix socketmap ---- */

static void netstring_reply(struct stream *s, const char *text)
{
    stream_printf(s, "%zu:%s,", strlen(text), text);
}

/* socketmap_answer: the reply text for one request "NAME KEY" */
static void socketmap_answer(struct stream *s, const char *req, size_t len)
{
    const char *sp = memchr(req, ' ', len);
    if (!sp || sp == req || memchr(req, '\0', len)) {
        netstring_reply(s, "PERM malformed request");
        return;
    }
    if ((size_t)(sp - req) != 5 || memcmp(req, "route", 5)) {
        netstring_reply(s, "PERM unknown map name (only \"route\")");
        return;
    }
    /* the key: "user@domain", "user+detail@domain" or a bare local part; the route is the
     * user's, so the domain and any +detail go (lmtpd delivers user+detail to user) */
    const char *key = sp + 1, *kend = req + len;
    const char *at = memchr(key, '@', (size_t)(kend - key));
    if (at) kend = at;
    const char *plus = memchr(key, '+', (size_t)(kend - key));
    if (plus) kend = plus;
    char *user = xstrndup(key, (size_t)(kend - key));
    if (!routedb_valid_name(user)) {
        netstring_reply(s, "NOTFOUND ");
        free(user);
        return;
    }
    log_set_user(user);
    const struct config_backend *be = NULL;
    int moving = 0;
    int r = route_lookup(user, &be, &moving);
    if (r < 0) {
        netstring_reply(s, "TEMP route database unavailable");
    } else if (r == 0) {
        log_info("route_notfound", "protocol=socketmap");
        netstring_reply(s, "NOTFOUND ");
    } else if (moving) {
        log_info("route_moving", "protocol=socketmap backend=%s", log_quote(be->name));
        netstring_reply(s, "TEMP user is being moved to another backend");
    } else if (!*be->lmtp) {
        log_err("route_no_lmtp", "backend=%s", log_quote(be->name));
        netstring_reply(s, "TEMP backend has no lmtp address");
    } else {
        char *v = xasprintf("OK lmtp:inet:%s", be->lmtp);
        log_info("route_found", "protocol=socketmap backend=%s", log_quote(be->name));
        netstring_reply(s, v);
        free(v);
    }
    log_set_user(NULL);
    free(user);
}

/* socketmap_session: netstring requests until the client closes (Postfix keeps the
 * connection open between lookups); a malformed or over-long one ends it after a PERM */
static const char *socketmap_session(struct stream *s, char first)
{
    struct buf in = BUF_INIT;
    const char *end = NULL;
    buf_putc(&in, first);
    while (!end) {
        const char *data;
        size_t dlen, used;
        int r = netstring_parse(in.s, in.len, ROUTER_MAX_NETSTRING, &data, &dlen, &used);
        if (r == 1) {
            socketmap_answer(s, data, dlen);
            memmove(in.s, in.s + used, in.len - used);
            in.len -= used;
            if (!in.len && stream_pending(s) == 0 && stream_flush(s)) end = "io";
            continue;
        }
        if (r < 0) {
            log_notice("socketmap_refused", "reason=%s", r == CF_E_LIMIT ? "too_long" : "malformed");
            netstring_reply(s, r == CF_E_LIMIT ? "PERM request too long" : "PERM malformed netstring");
            end = "malformed";
            break;
        }
        if (stream_pending(s) == 0 && stream_flush(s)) {
            end = "io";
            break;
        }
        /* one byte at a time past what is buffered keeps the parse simple; requests are short */
        size_t want = stream_pending(s) ? stream_pending(s) : 1;
        r = stream_read_exact(s, want, &in);
        if (r) end = r == CF_E_TIMEOUT ? "timeout" : r == CF_E_EOF ? "eof"
                   : r == CF_E_SHUTDOWN ? "shutdown" : "io";
    }
    buf_fini(&in);
    return end;
}

static void router_session(struct worker_session *ws)
{
    struct stream *s = ws->stream;
    /* the router's clients are nginx and Postfix, which log in to nothing: leave the
     * pre-login count at once (max_preauth_per_ip would otherwise cap nginx's parallel auth
     * requests from one address) and bound each protocol below instead */
    worker_note_login(ws, NULL);
    struct buf first = BUF_INIT;
    stream_set_deadline(s, ROUTER_HTTP_DEADLINE);
    int r = stream_read_exact(s, 1, &first);
    if (r) {
        ws->end_reason = r == CF_E_TIMEOUT ? "timeout" : r == CF_E_EOF ? "eof" : "io";
    } else if (first.s[0] >= '0' && first.s[0] <= '9') {
        stream_set_deadline(s, 0);
        stream_set_timeout(s, config_int(ws->cfg, CFG_IDLE_TIMEOUT));
        ws->end_reason = socketmap_session(s, first.s[0]);
    } else {
        ws->end_reason = http_session(s, first.s[0]);
    }
    stream_flush(s);
    buf_fini(&first);
}

static const struct worker_ops router_ops = {
    .name = "router",
    .init = router_init,
    .session = router_session,
    .too_many = NULL,
};

int main(int argc, char **argv)
{
    int rc = worker_main(argc, argv, &router_ops);
    route_lookup_done();
    csasl_done();
    return rc;
}
