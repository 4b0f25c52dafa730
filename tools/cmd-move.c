/* cmd-move.c: `coffer user move USER --to BACKEND [--rollback] [--pause-after STEP]` on the
 * router host: move a user's whole account from the backend its route names to another, over
 * the backends' admin endpoints (admind, man/admind.8), without losing a delivery, and so that
 * a run stopped at any point (kill -9 of this tool, of an admind worker, of a cofferd) can be
 * run again to finish or rolled back. man/coffer-user.8 describes the steps.
 *
 * The journal, configdir/move/HEX (the user name in hex), one line "1 FROM TO STEP", rewritten
 * atomically after each step, is what a second run starts from. */
#include "tool.h"
#include "cmd.h"
#include "admind/admin-parse.h"
#include "core/base64.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/xmalloc.h"
#include "store/kv.h"
#include "store/routedb.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MOVE_USAGE "usage: coffer user move USER --to BACKEND [--rollback] [--pause-after STEP]"
#define MOVE_IO_TIMEOUT 600             /* seconds one read or write on an admin connection may take */
#define MOVE_VERIFY_TRIES 3             /* copies made before a mismatch is given up on */

/* The steps, in order; the journal records the last one done. */
enum move_step { STEP_STARTED, STEP_MARKED, STEP_FENCED, STEP_COPIED, STEP_VERIFIED,
                 STEP_SWITCHED, STEP_REMOVED, STEP__COUNT };
static const char *const step_names[STEP__COUNT] = {
    "started", "marked", "fenced", "copied", "verified", "switched", "removed",
};

static int step_of(const char *name)
{
    for (int i = 0; i < STEP__COUNT; i++)
        if (!strcmp(step_names[i], name)) return i;
    return -1;
}

/* ---- one connection to an admin endpoint ---- */

struct aconn {
    const char *backend;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char rb[16384];
    size_t rpos, rlen;
    struct buf err;                     /* why it failed */
};

static int ac_fill(struct aconn *a)
{
    ssize_t n;
    /* a blocking socket: WANT_READ/WANT_WRITE only mean a record that was not data (a TLS
     * 1.3 session ticket) was handled; read again */
    for (int tries = 0;; tries++) {
        n = a->ssl ? SSL_read(a->ssl, a->rb, sizeof a->rb) : read(a->fd, a->rb, sizeof a->rb);
        if (n >= 0 || tries > 100) break;
        if (a->ssl ? SSL_get_error(a->ssl, (int)n) != SSL_ERROR_WANT_READ &&
                     SSL_get_error(a->ssl, (int)n) != SSL_ERROR_WANT_WRITE
                   : errno != EINTR)
            break;
    }
    if (n <= 0) {
        int e = errno;
        buf_reset(&a->err);
        buf_printf(&a->err, "connection to %s's admin endpoint lost", a->backend);
        if (a->ssl && n < 0) buf_printf(&a->err, " (TLS error %d)", SSL_get_error(a->ssl, (int)n));
        else if (n < 0) buf_printf(&a->err, " (%s)", strerror(e));
        return -1;
    }
    a->rpos = 0;
    a->rlen = (size_t)n;
    return 0;
}

static int ac_write(struct aconn *a, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = a->ssl ? SSL_write(a->ssl, c, (int)(n > 65536 ? 65536 : n)) : write(a->fd, c, n);
        if (w < 0 && (a->ssl ? SSL_get_error(a->ssl, (int)w) == SSL_ERROR_WANT_WRITE ||
                               SSL_get_error(a->ssl, (int)w) == SSL_ERROR_WANT_READ
                             : errno == EINTR))
            continue;
        if (w <= 0) {
            buf_reset(&a->err);
            buf_printf(&a->err, "cannot write to %s's admin endpoint", a->backend);
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ac_line: the next line without CRLF into line; 0 or -1 */
static int ac_line(struct aconn *a, struct buf *line)
{
    buf_reset(line);
    for (;;) {
        if (a->rpos == a->rlen && ac_fill(a)) return -1;
        char ch = a->rb[a->rpos++];
        if (ch == '\n') break;
        if (line->len > ADMIN_MAX_LINE + 8) {
            buf_reset(&a->err);
            buf_printf(&a->err, "%s's admin endpoint sent an over-long line", a->backend);
            return -1;
        }
        buf_putc(line, ch);
    }
    if (line->len && line->s[line->len - 1] == '\r') line->len--;
    buf_cstr(line);
    return 0;
}

/* ac_exact: n bytes, each run handed to sink(rock, p, len); 0 or -1 */
static int ac_exact(struct aconn *a, size_t n, int (*sink)(void *, const char *, size_t), void *rock)
{
    while (n) {
        if (a->rpos == a->rlen && ac_fill(a)) return -1;
        size_t k = a->rlen - a->rpos < n ? a->rlen - a->rpos : n;
        if (sink(rock, a->rb + a->rpos, k)) return -1;
        a->rpos += k;
        n -= k;
    }
    return 0;
}

/* ac_cmd: send "fmt" + CRLF and read the status line (skipping "* " lines into data when
 * given); 0 on OK (status in line), 1 on NO/BAD (reason in a->err), -1 connection trouble */
static int ac_cmd(struct aconn *a, struct strarr *data, struct buf *line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ac_cmd(struct aconn *a, struct strarr *data, struct buf *line, const char *fmt, ...)
{
    struct buf out = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&out, fmt, ap);
    va_end(ap);
    buf_appends(&out, "\r\n");
    int r = ac_write(a, out.s, out.len);
    buf_fini(&out);
    if (r) return -1;
    for (;;) {
        if (ac_line(a, line)) return -1;
        if (!strncmp(line->s, "* ", 2)) {
            if (data) strarr_add(data, line->s + 2);
            continue;
        }
        if (!strncmp(line->s, "OK", 2) || !strncmp(line->s, "GO", 2)) return 0;
        buf_reset(&a->err);
        buf_printf(&a->err, "%s: %s", a->backend, line->s);
        return 1;
    }
}

static void ac_close(struct aconn *a)
{
    if (a->ssl) {
        SSL_shutdown(a->ssl);
        SSL_free(a->ssl);
    }
    if (a->ctx) SSL_CTX_free(a->ctx);
    if (a->fd >= 0) close(a->fd);
    a->ssl = NULL;
    a->ctx = NULL;
    a->fd = -1;
    buf_fini(&a->err);
}

/* split_hostport: "host:port" or "[v6]:port" */
static int split_hostport(const char *addr, char *host, size_t hl, char *port, size_t pl)
{
    const char *colon;
    if (*addr == '[') {
        const char *end = strchr(addr, ']');
        if (!end || (size_t)(end - addr - 1) >= hl) return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= hl) return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    if (*colon != ':' || strlen(colon + 1) >= pl) return -1;
    strcpy(port, colon + 1);
    return 0;
}

static int ac_open_once(struct tool *t, const char *backend, struct aconn *a);

/* ac_open: connect to backend's admin endpoint, TLS when move_admin_tls, and authenticate
 * as move_admin_user; a connection or handshake that fails is tried again twice, a second
 * apart (a backend restarting its worker). 0, or an exit code with the reason in a->err. */
static int ac_open(struct tool *t, const char *backend, struct aconn *a)
{
    int rc = EXIT_TEMPFAIL;
    for (int i = 0; i < 3 && rc == EXIT_TEMPFAIL; i++) {
        if (i) {
            fprintf(stderr, "coffer user move: %s: trying again\n", buf_cstr(&a->err));
            ac_close(a);
            sleep(1);
        }
        rc = ac_open_once(t, backend, a);
    }
    return rc;
}

static int ac_open_once(struct tool *t, const char *backend, struct aconn *a)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->backend = backend;
    a->err = (struct buf)BUF_INIT;
    const struct config_backend *be = config_backend(t->cfg, backend);
    const char *addr = be ? be->admin : "";
    char host[256], port[16];
    struct buf line = BUF_INIT;
    char *pass = NULL;
    int rc = EXIT_TEMPFAIL;
    if (!*addr || split_hostport(addr, host, sizeof host, port, sizeof port)) {
        buf_printf(&a->err, "[backend %s] has no admin = HOST:PORT", backend);
        rc = EXIT_USAGE;
        goto out;
    }
    const char *who = config_str(t->cfg, CFG_MOVE_ADMIN_USER);
    const char *pwfile = config_str(t->cfg, CFG_MOVE_ADMIN_PASSWORD_FILE);
    size_t plen = 0;
    if (!*who || !*pwfile || file_read_all(pwfile, 4096, &pass, &plen)) {
        buf_printf(&a->err, "move_admin_user and a readable move_admin_password_file are needed");
        rc = EXIT_USAGE;
        goto out;
    }
    pass[strcspn(pass, "\r\n")] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) || !res) {
        buf_printf(&a->err, "cannot resolve %s", addr);
        goto out;
    }
    for (struct addrinfo *ai = res; ai && a->fd < 0; ai = ai->ai_next) {
        a->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (a->fd < 0) continue;
        struct timeval tv = { MOVE_IO_TIMEOUT, 0 };
        setsockopt(a->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(a->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(a->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(a->fd);
            a->fd = -1;
        }
    }
    freeaddrinfo(res);
    if (a->fd < 0) {
        buf_printf(&a->err, "cannot connect to %s's admin endpoint %s: %s", backend, addr,
                   strerror(errno));
        goto out;
    }
    if (config_int(t->cfg, CFG_MOVE_ADMIN_TLS)) {
        const char *ca = config_str(t->cfg, CFG_MOVE_ADMIN_CA_FILE);
        a->ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_mode(a->ctx, SSL_MODE_AUTO_RETRY);
        SSL_CTX_set_min_proto_version(a->ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(a->ctx, SSL_VERIFY_PEER, NULL);
        int ok = *ca ? SSL_CTX_load_verify_locations(a->ctx, ca, NULL)
                     : SSL_CTX_set_default_verify_paths(a->ctx);
        a->ssl = ok ? SSL_new(a->ctx) : NULL;
        /* the name checked is the admin address's host: an IP address against the
         * certificate's IP subjectAltNames, a name against its DNS names */
        unsigned char ipbuf[16];
        int is_ip = inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1;
        if (!a->ssl || !SSL_set_fd(a->ssl, a->fd) ||
            !(is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(a->ssl), host)
                    : SSL_set1_host(a->ssl, host)) ||
            SSL_connect(a->ssl) != 1) {
            char e[256];
            ERR_error_string_n(ERR_get_error(), e, sizeof e);
            buf_printf(&a->err, "TLS with %s's admin endpoint %s failed: %s", backend, addr, e);
            goto out;
        }
    }
    if (ac_line(a, &line)) goto out;
    if (strncmp(line.s, "OK", 2)) {
        buf_printf(&a->err, "%s's admin endpoint: %s", backend, line.s);
        goto out;
    }
    struct buf plain = BUF_INIT, b64 = BUF_INIT;
    buf_putc(&plain, '\0');
    buf_appends(&plain, who);
    buf_putc(&plain, '\0');
    buf_appends(&plain, pass);
    base64_encode(plain.s, plain.len, &b64);
    int r = ac_cmd(a, NULL, &line, "AUTH PLAIN %s", buf_cstr(&b64));
    buf_fini(&plain);
    buf_fini(&b64);
    if (r == 1) rc = EXIT_FAIL;
    if (r) goto out;
    rc = EXIT_OK;
out:
    if (pass) {
        memset(pass, 0, plen);
        free(pass);
    }
    buf_fini(&line);
    return rc;
}

/* ---- the move ---- */

struct move {
    struct tool *t;
    const char *user;
    char from[ROUTEDB_MAX_NAME + 1], to[ROUTEDB_MAX_NAME + 1];
    int step;                           /* the last step done */
    const char *pause_after;
    char *journal;                      /* its path */
    struct kv_env *env;
    struct routedb *rd;
    struct table tab;                   /* step, result, detail */
    struct buf why;
    struct buf error;                   /* the first failure, for --json's one object */
    size_t mailboxes, messages;
};

/* move_error: a failure of the move: on standard error now, and under --json kept for the
 * one result object printed at the end (tool_error would print a second object first). */
static void move_error(struct move *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void move_error(struct move *m, const char *fmt, ...)
{
    struct buf msg = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "coffer user move: %s\n", buf_cstr(&msg));
    if (!m->error.len) buf_appends(&m->error, buf_cstr(&msg));
    buf_fini(&msg);
}

static void note(struct move *m, const char *step, const char *result, const char *detail)
{
    table_add(&m->tab, (const char *const[]){ step, result, detail });
    if (!m->t->json) fprintf(stderr, "coffer user move: %s: %s%s%s\n", step, result,
                             *detail ? ": " : "", detail);
}

static char *journal_path(struct tool *t, const char *user)
{
    struct buf p = BUF_INIT;
    buf_printf(&p, "%s/move/", config_str(t->cfg, CFG_CONFIGDIR));
    for (const unsigned char *c = (const unsigned char *)user; *c; c++) buf_printf(&p, "%02x", *c);
    return buf_release(&p);
}

/* journal_read: 1 with from, to, step filled, 0 none, -1 unreadable (reported) */
static int journal_read(struct move *m)
{
    char *text = NULL;
    size_t len;
    int r = file_read_all(m->journal, 4096, &text, &len);
    if (r == CF_E_NOTFOUND) return 0;
    char from[ROUTEDB_MAX_NAME + 1], to[ROUTEDB_MAX_NAME + 1], step[32];
    if (r || sscanf(text, "1 %255s %255s %31s", from, to, step) != 3 || step_of(step) < 0) {
        move_error(m, "the move journal %s is unreadable", m->journal);
        free(text);
        return -1;
    }
    free(text);
    strcpy(m->from, from);
    strcpy(m->to, to);
    m->step = step_of(step);
    return 1;
}

/* done: record step as done (durably), then stop for good when --pause-after names it (for
 * the tests: a kill at a known point) */
static int done(struct move *m, int step, const char *detail)
{
    m->step = step;
    note(m, step_names[step], "done", detail);
    char *line = xasprintf("1 %s %s %s\n", m->from, m->to, step_names[step]);
    char *dir = xasprintf("%s/move", config_str(m->t->cfg, CFG_CONFIGDIR));
    int r = mkdir_p(dir, 0700) < 0 ? CF_E_IO
          : file_write_atomic(m->journal, line, strlen(line), 0600);
    free(line);
    free(dir);
    if (r) {
        move_error(m, "cannot write the move journal %s", m->journal);
        return -1;
    }
    if (m->pause_after && !strcmp(m->pause_after, step_names[step])) {
        fprintf(stderr, "coffer user move: paused after %s (pid %d)\n", step_names[step],
                (int)getpid());
        for (;;) pause();
    }
    return 0;
}

/* route_write: user -> backend (moving or ready) */
static int route_write(struct move *m, const char *backend, int moving)
{
    struct route rt;
    memset(&rt, 0, sizeof rt);
    snprintf(rt.backend, sizeof rt.backend, "%s", backend);
    rt.moving = moving;
    int r = routedb_set(m->rd, NULL, m->user, &rt);
    if (r) move_error(m, "cannot write the route of %s: %s", m->user, cf_strerror(r));
    return r;
}

/* admin: one command on a fresh connection to backend; 0, or an exit code (reported) */
static int admin(struct move *m, const char *backend, struct strarr *data, const char *verb)
{
    struct aconn a;
    struct buf line = BUF_INIT;
    int rc = ac_open(m->t, backend, &a);
    if (!rc) {
        int r = ac_cmd(&a, data, &line, "%s %s", verb, m->user);
        rc = r == 0 ? EXIT_OK : r == 1 ? EXIT_FAIL : EXIT_TEMPFAIL;
    }
    if (rc) move_error(m, "%s %s on %s: %s", verb, m->user, backend, buf_cstr(&a.err));
    buf_fini(&line);
    ac_close(&a);
    return rc;
}

static int to_dst(void *rock, const char *p, size_t n)
{
    return ac_write(rock, p, n);
}

/* copy: DUMP on the source streamed into RESTORE on the destination, chunk by chunk */
static int copy(struct move *m)
{
    struct aconn src, dst;
    struct buf line = BUF_INIT;
    int rc = ac_open(m->t, m->from, &src);
    if (rc) {
        move_error(m, "%s", buf_cstr(&src.err));
        ac_close(&src);
        return rc;
    }
    rc = ac_open(m->t, m->to, &dst);
    if (rc) {
        move_error(m, "%s", buf_cstr(&dst.err));
        goto out;
    }
    int r = ac_cmd(&dst, NULL, &line, "RESTORE %s", m->user);
    if (r) {
        move_error(m, "RESTORE on %s: %s", m->to, buf_cstr(&dst.err));
        rc = r == 1 ? EXIT_FAIL : EXIT_TEMPFAIL;
        goto out;
    }
    char req[ADMIN_MAX_LINE];
    snprintf(req, sizeof req, "DUMP %s\r\n", m->user);
    if (ac_write(&src, req, strlen(req))) goto src_lost;
    unsigned long long bytes = 0;
    for (;;) {
        if (ac_line(&src, &line)) goto src_lost;
        size_t n = 0;
        int c = admin_parse_chunk(line.s, line.len, &n);
        if (c == 1 && n) {
            char hdr[32];
            int hl = snprintf(hdr, sizeof hdr, "+ %zu\r\n", n);
            if (ac_write(&dst, hdr, (size_t)hl) || ac_exact(&src, n, to_dst, &dst)) {
                /* either side: a lost source shows in src.err, else the destination's */
                move_error(m, "copy: %s", src.err.len ? buf_cstr(&src.err) : buf_cstr(&dst.err));
                rc = EXIT_TEMPFAIL;
                goto out;
            }
            bytes += n;
            continue;
        }
        if (c != 0 || strncmp(line.s, "OK", 2)) {
            move_error(m, "DUMP on %s: %s", m->from, line.s);
            rc = EXIT_FAIL;
            goto out;
        }
        break;
    }
    if (ac_write(&dst, "+ 0\r\n", 5) || ac_line(&dst, &line)) {
        move_error(m, "RESTORE on %s: %s", m->to, buf_cstr(&dst.err));
        rc = EXIT_TEMPFAIL;
        goto out;
    }
    if (strncmp(line.s, "OK", 2)) {
        move_error(m, "RESTORE on %s: %s", m->to, line.s);
        rc = EXIT_FAIL;
        goto out;
    }
    buf_reset(&m->why);
    buf_printf(&m->why, "%llu bytes from %s to %s", bytes, m->from, m->to);
    rc = EXIT_OK;
    goto out;
src_lost:
    move_error(m, "DUMP on %s: %s", m->from, buf_cstr(&src.err));
    rc = EXIT_TEMPFAIL;
out:
    buf_fini(&line);
    ac_close(&src);
    ac_close(&dst);
    return rc;
}

/* fingerprint: VERIFY on backend into lines; totals into the move when it is the source */
static int fingerprint(struct move *m, const char *backend, struct strarr *lines)
{
    int rc = admin(m, backend, lines, "VERIFY");
    if (rc) return rc;
    for (size_t i = 0; i < lines->count; i++)
        if (lines->v[i][0] == 'T') sscanf(lines->v[i], "T %zu %zu", &m->mailboxes, &m->messages);
    return 0;
}

/* verify: the destination's fingerprint equals the source's. 0 equal, 1 different (the
 * difference reported), or an exit code + 1 */
static int verify(struct move *m)
{
    struct strarr a = STRARR_INIT, b = STRARR_INIT;
    size_t mb = 0, ms = 0;
    int rc = fingerprint(m, m->to, &b);
    if (!rc) {
        mb = m->mailboxes;
        ms = m->messages;
        rc = fingerprint(m, m->from, &a);
    }
    int diff = 0;
    if (!rc) {
        diff = a.count != b.count;
        for (size_t i = 0; !diff && i < a.count; i++) diff = strcmp(a.v[i], b.v[i]) != 0;
        buf_reset(&m->why);
        if (diff) buf_printf(&m->why, "%s has %zu mailboxes, %zu messages; %s has %zu, %zu (or "
                             "their contents differ)", m->from, m->mailboxes, m->messages, m->to, mb, ms);
        else buf_printf(&m->why, "%zu mailboxes, %zu messages, checksums equal", m->mailboxes,
                        m->messages);
    }
    strarr_fini(&a);
    strarr_fini(&b);
    return rc ? rc + 1 : diff;
}

/* dest_empty: 1 when the destination holds no mail or scripts of the user (a fresh move may
 * start), 0 when it does (reported), or an exit code + 1 */
static int dest_empty(struct move *m)
{
    struct strarr lines = STRARR_INIT;
    int rc = admin(m, m->to, &lines, "VERIFY"), empty = 1;
    for (size_t i = 0; !rc && i < lines.count; i++) {
        size_t a = 0, b = 0;
        if (sscanf(lines.v[i], "T %zu %zu", &a, &b) == 2 && b) empty = 0;
        if (sscanf(lines.v[i], "S %zu", &a) == 1 && a) empty = 0;
    }
    if (!rc && !empty)
        move_error(m, "%s already holds mail or Sieve scripts of %s: nothing was changed "
                   "(remove them there first)", m->to, m->user);
    strarr_fini(&lines);
    return rc ? rc + 1 : empty;
}

/* forward: run the move from the step after m->step to the end */
static int forward(struct move *m)
{
    int rc = 0;
    if (m->step < STEP_MARKED) {
        if (route_write(m, m->from, 1)) return EXIT_FAIL;
        if (done(m, STEP_MARKED, "logins and deliveries to the user are told to try later")) return EXIT_FAIL;
    }
    if (m->step < STEP_FENCED) {
        /* the source first: from here on nothing changes the account there; the destination
         * too, so nothing but the copy reaches it before the switch */
        if ((rc = admin(m, m->from, NULL, "FENCE")) || (rc = admin(m, m->to, NULL, "FENCE")))
            return rc;
        if (done(m, STEP_FENCED, "sessions on the source ended")) return EXIT_FAIL;
    }
    for (int tries = 0; m->step < STEP_VERIFIED; tries++) {
        if (m->step < STEP_COPIED) {
            /* whatever an interrupted copy left on the destination goes first */
            if ((rc = admin(m, m->to, NULL, "REMOVE")) || (rc = copy(m))) return rc;
            if (done(m, STEP_COPIED, buf_cstr(&m->why))) return EXIT_FAIL;
        }
        int v = verify(m);
        if (v > 1) return v - 1;
        if (v == 0) {
            if (done(m, STEP_VERIFIED, buf_cstr(&m->why))) return EXIT_FAIL;
            break;
        }
        note(m, "verified", "mismatch", buf_cstr(&m->why));
        if (tries + 1 >= MOVE_VERIFY_TRIES) {
            move_error(m, "the copy on %s differs from %s: %s", m->to, m->from, buf_cstr(&m->why));
            return EXIT_FAIL;
        }
        m->step = STEP_FENCED;          /* copy again */
    }
    if (m->step < STEP_SWITCHED) {
        if ((rc = admin(m, m->to, NULL, "UNFENCE"))) return rc;
        if (route_write(m, m->to, 0)) return EXIT_FAIL;
        if (done(m, STEP_SWITCHED, "the route points to the destination; logins and deliveries go there"))
            return EXIT_FAIL;
    }
    if (m->step < STEP_REMOVED) {
        /* the source stays fenced: a delivery by a stale route is deferred, never kept there */
        if ((rc = admin(m, m->from, NULL, "REMOVE"))) return rc;
        if (done(m, STEP_REMOVED, "the source copy is gone")) return EXIT_FAIL;
    }
    if (unlink(m->journal) < 0 || fsync_dir(m->journal, 0) < 0) {
        move_error(m, "cannot remove the move journal %s: %s", m->journal, strerror(errno));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* rollback: undo an unfinished move before its switch: the destination's copy goes, the
 * source is unfenced, the route points to the source, ready */
static int rollback(struct move *m)
{
    if (m->step >= STEP_SWITCHED) {
        move_error(m, "the move of %s to %s has switched the route already: finish it with "
                   "coffer user move %s --to %s, then move back", m->user, m->to, m->user, m->to);
        return EXIT_FAIL;
    }
    int rc;
    if (m->step >= STEP_MARKED) {
        /* the destination may hold a partial or whole copy; it is fenced when it does */
        if ((rc = admin(m, m->to, NULL, "FENCE")) || (rc = admin(m, m->to, NULL, "REMOVE")))
            return rc;
        note(m, "rollback", "done", "the destination's copy is gone");
    }
    if ((rc = admin(m, m->from, NULL, "UNFENCE"))) return rc;
    if (route_write(m, m->from, 0)) return EXIT_FAIL;
    note(m, "rollback", "done", "the route points to the source again, ready");
    if (unlink(m->journal) < 0 || fsync_dir(m->journal, 0) < 0) {
        move_error(m, "cannot remove the move journal %s: %s", m->journal, strerror(errno));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* start: a fresh move: the source is the user's current route */
static int start(struct move *m, const char *to)
{
    struct route rt;
    int r = routedb_get(m->rd, NULL, m->user, &rt);
    if (r < 0) {
        move_error(m, "cannot read the route of %s: %s", m->user, cf_strerror(r));
        return tool_exit_for(r);
    }
    const char *from = r == 1 ? rt.backend : config_str(m->t->cfg, CFG_ROUTER_DEFAULT_BACKEND);
    if (!*from) {
        move_error(m, "%s has no route and there is no router_default_backend", m->user);
        return EXIT_NOTFOUND;
    }
    if (r == 1 && rt.moving) {
        move_error(m, "%s is marked moving but has no move journal: another tool set the "
                   "mark (coffer route mark %s ready clears it)", m->user, m->user);
        return EXIT_TEMPFAIL;
    }
    if (!strcmp(from, to)) {
        move_error(m, "%s is on %s already", m->user, to);
        return EXIT_EXISTS;
    }
    if (!config_backend(m->t->cfg, from)) {
        move_error(m, "the route of %s names %s, which has no [backend] section", m->user, from);
        return EXIT_USAGE;
    }
    snprintf(m->from, sizeof m->from, "%s", from);
    snprintf(m->to, sizeof m->to, "%s", to);
    struct strarr lines = STRARR_INIT;
    int rc = fingerprint(m, m->from, &lines);
    strarr_fini(&lines);
    if (rc) return rc;
    if (!m->mailboxes) {
        move_error(m, "%s has no mailboxes on %s: nothing to move", m->user, m->from);
        return EXIT_NOTFOUND;
    }
    int e = dest_empty(m);
    if (e != 1) return e == 0 ? EXIT_EXISTS : e - 1;
    m->step = -1;
    return done(m, STEP_STARTED, "") ? EXIT_FAIL : EXIT_OK;
}

int cmd_user_move(struct tool *t)
{
    const char *user = NULL, *to = NULL, *pause_after = NULL;
    int rollback_it = 0;
    for (int i = 1; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "--to") && i + 1 < t->argc) to = t->argv[++i];
        else if (!strcmp(t->argv[i], "--pause-after") && i + 1 < t->argc) pause_after = t->argv[++i];
        else if (!strcmp(t->argv[i], "--rollback")) rollback_it = 1;
        else if (!user && t->argv[i][0] != '-') user = t->argv[i];
        else user = NULL, i = t->argc;
    }
    if (!user || (!to && !rollback_it) || (pause_after && step_of(pause_after) < 0)) {
        tool_error(t, MOVE_USAGE);
        return EXIT_USAGE;
    }
    if (!routedb_valid_name(user) || !admin_user_valid(user)) {
        tool_error(t, "'%s' is not a valid user name", user);
        return EXIT_USAGE;
    }
    if (to && !config_backend(t->cfg, to)) {
        tool_error(t, "no [backend %s] section in %s", to, t->conf_path);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);           /* a lost connection is a write error, reported */
    struct move m;
    memset(&m, 0, sizeof m);
    m.t = t;
    m.user = user;
    m.pause_after = pause_after;
    m.why = (struct buf)BUF_INIT;
    m.error = (struct buf)BUF_INIT;
    m.journal = journal_path(t, user);
    table_init(&m.tab, (const char *const[]){ "step", "result", "detail", NULL });
    int rc = EXIT_OK;
    char *dir = xasprintf("%s/db", config_str(t->cfg, CFG_CONFIGDIR));
    int r = kv_env_open(dir, &m.env);
    if (!r) r = kv_env_guard(m.env, EXIT_TEMPFAIL);
    if (!r) r = routedb_open(m.env, &m.rd);
    if (r) {
        tool_error(t, "cannot open %s/%s: %s", dir, ROUTEDB_DB, cf_strerror(r));
        rc = tool_exit_for(r);
        goto out;
    }
    int j = journal_read(&m);
    if (j < 0) {
        rc = EXIT_FAIL;
    } else if (rollback_it) {
        if (!j) {
            tool_error(t, "no unfinished move of %s to roll back", user);
            rc = EXIT_NOTFOUND;
        } else if (to && strcmp(to, m.to)) {
            tool_error(t, "the unfinished move of %s goes to %s, not %s", user, m.to, to);
            rc = EXIT_USAGE;
        } else {
            rc = rollback(&m);
        }
    } else if (j && strcmp(to, m.to)) {
        tool_error(t, "a move of %s from %s to %s is unfinished (step %s): run it again with "
                   "--to %s, or --rollback", user, m.from, m.to, step_names[m.step], m.to);
        rc = EXIT_TEMPFAIL;
    } else {
        if (j) note(&m, "resume", step_names[m.step], "");
        rc = j ? EXIT_OK : start(&m, to);
        if (!rc) rc = forward(&m);
    }
    if (m.tab.cells.count) {
        if (t->json) {
            struct buf b = BUF_INIT;
            buf_appends(&b, "{\"user\": ");
            json_str(&b, user);
            buf_appends(&b, ", \"from\": ");
            json_str(&b, m.from);
            buf_appends(&b, ", \"to\": ");
            json_str(&b, m.to);
            buf_printf(&b, ", \"result\": \"%s\", \"mailboxes\": %zu, \"messages\": %zu, "
                       "\"exit\": %d, \"steps\": [", rc ? "unfinished" : rollback_it ? "rolled back" : "moved",
                       m.mailboxes, m.messages, rc);
            for (size_t i = 0; i + 2 < m.tab.cells.count; i += 3) {
                buf_appends(&b, i ? ", {\"step\": " : "{\"step\": ");
                json_str(&b, m.tab.cells.v[i]);
                buf_appends(&b, ", \"result\": ");
                json_str(&b, m.tab.cells.v[i + 1]);
                buf_appends(&b, ", \"detail\": ");
                json_str(&b, m.tab.cells.v[i + 2]);
                buf_appends(&b, "}");
            }
            buf_appends(&b, "]");
            if (m.error.len) {
                buf_appends(&b, ", \"error\": ");
                json_str(&b, buf_cstr(&m.error));
            }
            buf_appends(&b, "}\n");
            fputs(buf_cstr(&b), stdout);
            buf_fini(&b);
        } else {
            table_print(&m.tab, 0);
            if (!rc) printf("%s %s: %s -> %s\n", rollback_it ? "rolled back the move of" : "moved",
                            user, m.from, rollback_it ? m.from : m.to);
        }
    } else if (t->json && m.error.len) {
        struct buf b = BUF_INIT;             /* no step ran: the error is the whole answer */
        buf_appends(&b, "{\"error\": ");
        json_str(&b, buf_cstr(&m.error));
        buf_appends(&b, "}\n");
        fputs(buf_cstr(&b), stdout);
        buf_fini(&b);
    }
out:
    free(dir);
    table_fini(&m.tab);
    buf_fini(&m.why);
    buf_fini(&m.error);
    free(m.journal);
    routedb_close(&m.rd);
    kv_env_close(&m.env);
    return rc;
}
