/* lmtproute.c: lmtproute, the router's LMTP entry (man/lmtproute.8): an LMTP server (RFC 2033)
 * that looks up each recipient's backend in route.db (route-lookup.h, as the socketmap does),
 * forwards MAIL and RCPT to that backend's lmtpd, spools the message, relays it to every
 * backend holding a recipient and answers one reply per accepted recipient, in RCPT order,
 * each the backend's own reply for it. A recipient is never acknowledged before its backend
 * acknowledged it: a backend that fails before its reply gives 451 for its recipients, and
 * the MTA retries them. Run by cofferd's prefork worker (lib/net/worker.h). */
#include "router/route-lookup.h"
#include "lmtpd/lmtp-parse.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "net/worker.h"
#include "store/routedb.h"
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LR_DATA_MAX_LINE (1024 * 1024)   /* as lmtpd: RFC 5321 says 1000, real mail is longer */
#define LR_SPOOL_CHUNK 65536
#define LR_MAX_REPLY_LINES 100           /* lines of one backend reply we read before giving up */

/* One LMTP connection to a backend, kept for the session (the next transaction reuses it). */
struct bconn {
    struct stream *s;               /* NULL: not connected */
    int in_txn;                     /* MAIL was accepted on it in this transaction */
    int refused;                    /* this transaction: its MAIL reply was not 250 (in reply) */
    int failed;                     /* this transaction: unreachable or broken; 451 for all */
    struct buf reply;               /* the failed MAIL's reply, sent for each later RCPT */
};

/* One accepted recipient: its backend said 250 to RCPT. */
struct lrcpt {
    char *addr;
    char *user;
    size_t backend;                 /* index into the config's backends and the session's conns */
    struct buf reply;               /* its reply after DATA, code and text lines ("250 2.1.5 ..") */
};

struct lr {
    struct worker_session *ws;
    struct stream *s;
    const struct config *cfg;
    int greeted;
    char *lhlo_name;
    const char *end_reason;
    char *mail_from;                /* NULL before MAIL */
    char *mail_params;              /* MAIL's parameters, forwarded as given ("" when none) */
    struct lrcpt *rcpts;
    size_t nrcpts, rcpts_alloc;
    struct bconn *conns;            /* one per [backend NAME], in config order */
    size_t nconns;
};

static const struct line_texts lr_texts = {
    "500 5.5.2 Line too long",   /* RFC 5321 section 4.5.3.1.4 */
    "421 4.4.2 Idle timeout", "421 4.3.2 Server shutting down",
};

static int reply(struct lr *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reply(struct lr *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = worker_vreply(c->s, fmt, ap);   /* one line, controls as '?' */
    va_end(ap);
    return r;
}

/* ---- backend connections ---- */

/* be_connect: a socket connected to addr ("host:port", "[v6]:port") within timeout seconds,
 * or -1 (logged by the caller). Non-blocking connect and poll: a backend that drops SYNs
 * must not hold the session for the kernel's minutes. */
static int be_connect(const char *addr, long long timeout)
{
    char host[256];
    const char *port;
    if (route_addr_split(addr, host, sizeof host, &port)) return -1;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) || !res) return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) continue;
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int err = 0;
            socklen_t elen = sizeof err;
            int ms = timeout > 0 && timeout < 3600 ? (int)timeout * 1000 : 3600 * 1000;
            do r = poll(&p, 1, ms); while (r < 0 && errno == EINTR);
            if (r == 1 && !getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) && !err) r = 0;
            else r = -1;
        }
        if (r < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* be_read_reply: one whole reply from b into *code and lines (each line's text, code
 * dropped). 0, or a CF_E_ code: a read error, CF_E_PARSE for a malformed line or lines whose
 * codes differ, CF_E_LIMIT for an endless reply. */
static int be_read_reply(struct bconn *b, int *code, struct strarr *lines)
{
    struct buf line = BUF_INIT;
    int r = 0, first = -1;
    strarr_fini(lines);
    for (size_t n = 0;; n++) {
        if (n >= LR_MAX_REPLY_LINES) {
            r = CF_E_LIMIT;
            break;
        }
        r = stream_read_line(b->s, &line);
        if (r) break;
        int last;
        const char *text;
        r = lmtp_parse_reply_line(buf_cstr(&line), line.len, code, &last, &text);
        if (!r && first >= 0 && *code != first) r = CF_E_PARSE;
        if (r) break;
        first = *code;
        strarr_add(lines, text);
        if (last) break;
    }
    buf_fini(&line);
    return r;
}

/* be_drop: close b (after QUIT when polite) and forget its transaction. */
static void be_drop(struct bconn *b, int polite)
{
    if (b->s && polite) {
        stream_puts(b->s, "QUIT\r\n");
        stream_flush(b->s);
    }
    stream_free(&b->s);
    b->in_txn = 0;
}

/* be_command: send line (CRLF added) on b and read the reply. 0 with *code and lines, or a
 * CF_E_ code (the connection is then dropped: nothing more can be trusted on it). */
static int be_command(struct bconn *b, const char *line, int *code, struct strarr *lines)
{
    int r = stream_puts(b->s, line);
    if (!r) r = stream_puts(b->s, "\r\n");
    if (!r) r = stream_flush(b->s);
    if (!r) r = be_read_reply(b, code, lines);
    if (r) be_drop(b, 0);
    return r;
}

static const char *be_name(const struct lr *c, size_t i)
{
    return c->cfg->backends[i].name;
}

/* be_open: connect backend i, read its greeting, LHLO. 0, or a CF_E_ code (logged). */
static int be_open(struct lr *c, size_t i)
{
    struct bconn *b = &c->conns[i];
    const char *addr = c->cfg->backends[i].lmtp;
    long long ct = config_int(c->cfg, CFG_ROUTER_LMTP_CONNECT_TIMEOUT);
    int code = 0, r;
    struct strarr lines = STRARR_INIT;
    int fd = be_connect(addr, ct);
    if (fd < 0) {
        log_warn("backend_unavailable", "backend=%s lmtp=%s reason=connect error=%s",
                 log_quote(be_name(c, i)), log_quote(addr), log_quote(strerror(errno)));
        return CF_E_IO;
    }
    b->s = stream_new(fd);
    stream_set_max_line(b->s, LR_DATA_MAX_LINE);
    /* the greeting within the connect timeout, the rest within the reply timeout */
    stream_set_deadline(b->s, ct);
    r = be_read_reply(b, &code, &lines);
    stream_set_deadline(b->s, 0);
    stream_set_timeout(b->s, config_int(c->cfg, CFG_ROUTER_LMTP_TIMEOUT));
    if (!r && code != 220) r = CF_E_PERM;
    if (!r) {
        char *lhlo = xasprintf("LHLO %s", config_str(c->cfg, CFG_HOSTNAME));
        r = be_command(b, lhlo, &code, &lines);
        free(lhlo);
        if (!r && code != 250) r = CF_E_PERM;
    }
    if (r) {
        log_warn("backend_unavailable", "backend=%s lmtp=%s reason=%s code=%d",
                 log_quote(be_name(c, i)), log_quote(addr),
                 r == CF_E_PERM ? "refused" : log_quote(cf_strerror(r)), code);
        /* CF_E_PERM: it answered, but not 220 or 250 */
        be_drop(b, 0);
    }
    strarr_fini(&lines);
    return r ? r : 0;
}

/* reply_join: the reply "CODE text" lines (the last with a space, the others with '-') for
 * the client. A backend's 421 (it is closing its connection) becomes 451: passed on, it would
 * tell the client that this connection is closing (RFC 5321 section 3.8). */
static void reply_join(struct buf *out, int code, const struct strarr *lines)
{
    if (code == 421) code = 451;
    buf_reset(out);
    for (size_t i = 0; i < lines->count; i++)
        buf_printf(out, "%s%d%c%s", i ? "\n" : "", code, i + 1 < lines->count ? '-' : ' ',
                   lines->v[i]);
    if (!lines->count) buf_printf(out, "%d ", code);
}

/* send_reply_text: the reply kept by reply_join to the client, line by line */
static void send_reply_text(struct lr *c, const char *text)
{
    const char *p = text;
    for (;;) {
        const char *nl = strchr(p, '\n');
        reply(c, "%.*s", (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
        if (!nl) break;
        p = nl + 1;
    }
}

/* be_begin: backend i ready for RCPT in this transaction: connected, MAIL accepted. 1 ready,
 * 0 MAIL was refused (the reply is in b->reply), CF_E_ when unreachable (b->failed). A
 * connection kept from an earlier transaction that has gone away is opened again once. */
static int be_begin(struct lr *c, size_t i)
{
    struct bconn *b = &c->conns[i];
    if (b->failed) return CF_E_IO;
    if (b->refused) return 0;
    if (b->in_txn) return 1;
    struct strarr lines = STRARR_INIT;
    char *mail = xasprintf("MAIL FROM:<%s>%s%s", c->mail_from, *c->mail_params ? " " : "",
                           c->mail_params);
    int code = 0, r = CF_E_IO;
    for (int attempt = 0; attempt < 2; attempt++) {
        int kept = b->s != NULL;
        if (!kept && be_open(c, i)) break;      /* logged */
        r = be_command(b, mail, &code, &lines);
        if (r && !kept)
            log_warn("backend_unavailable", "backend=%s reason=mail error=%s",
                     log_quote(be_name(c, i)), log_quote(cf_strerror(r)));
        if (!r || !kept) break;
        /* a kept connection may have been closed on the backend's side since (its idle
         * timeout, a restart): open it once more */
    }
    free(mail);
    if (r) {
        b->failed = 1;
    } else if (code == 250) {
        b->in_txn = 1;
        r = 1;
    } else {
        reply_join(&b->reply, code, &lines);
        b->refused = 1;
        log_info("backend_refused_sender", "backend=%s code=%d", log_quote(be_name(c, i)), code);
        r = 0;
    }
    strarr_fini(&lines);
    return r;
}

/* txn_end: forget the transaction here and on every backend still in it (RSET; a backend that
 * does not answer it is dropped, to be opened again when needed). */
static void txn_end(struct lr *c)
{
    for (size_t i = 0; i < c->nconns; i++) {
        struct bconn *b = &c->conns[i];
        if (b->s && b->in_txn) {
            int code;
            struct strarr lines = STRARR_INIT;
            if (!be_command(b, "RSET", &code, &lines) && code != 250) be_drop(b, 1);
            strarr_fini(&lines);
        }
        b->in_txn = b->refused = b->failed = 0;
        buf_reset(&b->reply);
    }
    for (size_t i = 0; i < c->nrcpts; i++) {
        free(c->rcpts[i].addr);
        free(c->rcpts[i].user);
        buf_fini(&c->rcpts[i].reply);
    }
    c->nrcpts = 0;
    free(c->mail_from);
    c->mail_from = NULL;
    free(c->mail_params);
    c->mail_params = NULL;
}

/* ---- commands ---- */

static void cmd_lhlo(struct lr *c, const char *args)
{
    if (!*args || strchr(args, ' ')) {
        reply(c, "501 5.5.4 Syntax: LHLO hostname");
        return;
    }
    txn_end(c);
    free(c->lhlo_name);
    c->lhlo_name = xstrdup(args);
    c->greeted = 1;
    worker_note_login(c->ws, NULL);   /* LMTP has no login: LHLO ends the pre-login phase */
    const char *host = config_str(c->cfg, CFG_HOSTNAME);
    reply(c, "250-%s", host);
    reply(c, "250-PIPELINING");                   /* RFC 2920 */
    reply(c, "250-ENHANCEDSTATUSCODES");          /* RFC 2034 */
    reply(c, "250-8BITMIME");                     /* RFC 6152 */
    reply(c, "250 SIZE %lld", config_int(c->cfg, CFG_MAX_LITERAL));   /* RFC 1870 */
}

static void cmd_mail(struct lr *c, const char *args)
{
    if (!c->greeted) {
        reply(c, "503 5.5.1 Send LHLO first");
        return;
    }
    if (c->mail_from) {
        reply(c, "503 5.5.1 Nested MAIL command");
        return;
    }
    if (strncasecmp(args, "FROM:", 5)) {
        reply(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    struct buf path = BUF_INIT, err = BUF_INIT;
    const char *rest;
    long long size;
    if (lmtp_parse_path(args + 5, &path, &rest) < 0) {
        reply(c, "501 5.1.7 Bad sender address syntax");
    } else if (lmtp_parse_mail_params(rest, config_int(c->cfg, CFG_MAX_LITERAL), &size, &err)) {
        reply(c, "%s", buf_cstr(&err));
    } else {
        /* the backends are asked at the first RCPT for each: only then is it known which */
        c->mail_from = xstrdup(buf_cstr(&path));
        c->mail_params = xstrdup(rest);
        reply(c, "250 2.1.0 Sender OK");
    }
    buf_fini(&path);
    buf_fini(&err);
}

/* rcpt_user: the user an address routes by: its local part without "+detail" (lmtpd delivers
 * user+detail to user); "" when there is none (a "+shared" address names no user). */
static char *rcpt_user(const char *addr)
{
    struct buf local = BUF_INIT;
    lmtp_local_part(addr, &local);
    const char *lp = buf_cstr(&local);
    const char *plus = strchr(lp, '+');
    char *user = xstrndup(lp, plus ? (size_t)(plus - lp) : strlen(lp));
    buf_fini(&local);
    return user;
}

static void cmd_rcpt(struct lr *c, const char *args)
{
    if (!c->mail_from) {
        reply(c, "503 5.5.1 Need MAIL command");
        return;
    }
    if (strncasecmp(args, "TO:", 3)) {
        reply(c, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    struct buf path = BUF_INIT;
    struct strarr lines = STRARR_INIT;
    char *user = NULL, *cmd = NULL;
    const char *rest;
    if (lmtp_parse_path(args + 3, &path, &rest) < 0 || !path.len) {
        reply(c, "501 5.1.3 Bad recipient address syntax");
        goto done;
    }
    const char *addr = buf_cstr(&path);
    if (*rest) {
        reply(c, "555 5.5.4 Unsupported parameter");
        goto done;
    }
    if ((long long)c->nrcpts >= config_int(c->cfg, CFG_ROUTER_LMTP_MAX_RCPTS)) {
        reply(c, "452 4.5.3 Too many recipients");   /* RFC 5321 section 4.5.3.1.10 */
        goto done;
    }
    user = rcpt_user(addr);
    const struct config_backend *be = NULL;
    int moving = 0, r = 0;
    if (routedb_valid_name(user)) {
        r = route_lookup(user, &be, &moving);
        if (r == 0) {
            /* MTAs fold case unpredictably: lmtpd tries the lower-case name too */
            int lower = 0;
            for (char *p = user; *p; p++)
                if (*p >= 'A' && *p <= 'Z') { *p = (char)(*p + 32); lower = 1; }
            if (lower) r = route_lookup(user, &be, &moving);
        }
    }
    log_set_user(user);
    if (r < 0) {
        reply(c, "451 4.3.0 <%s> Route database unavailable, try again later", addr);
        goto done;
    }
    if (r == 0) {
        log_info("rcpt_unrouted", "rcpt=%s", log_quote(addr));
        reply(c, "550 5.1.1 <%s> User unknown", addr);
        goto done;
    }
    if (moving) {
        /* the user's mail is being copied to another backend: the MTA keeps the message and
         * tries again (docs/scale-out.md, Moving a user) */
        log_info("rcpt_moving", "rcpt=%s backend=%s", log_quote(addr), log_quote(be->name));
        reply(c, "451 4.2.0 <%s> Mailbox is being moved, try again later", addr);
        goto done;
    }
    size_t bi = (size_t)(be - c->cfg->backends);
    if (!*be->lmtp) {
        log_err("route_no_lmtp", "backend=%s", log_quote(be->name));
        reply(c, "451 4.3.0 <%s> Mail store temporarily unavailable", addr);
        goto done;
    }
    r = be_begin(c, bi);
    if (r < 0) {
        reply(c, "451 4.4.1 <%s> Mail store temporarily unavailable, try again later", addr);
        goto done;
    }
    if (r == 0) {                       /* the backend refused the sender: its reply */
        send_reply_text(c, buf_cstr(&c->conns[bi].reply));
        goto done;
    }
    struct bconn *b = &c->conns[bi];
    int code = 0;
    cmd = xasprintf("RCPT TO:<%s>", addr);
    if (be_command(b, cmd, &code, &lines)) {
        b->failed = 1;
        log_warn("backend_unavailable", "backend=%s reason=rcpt", log_quote(be->name));
        reply(c, "451 4.4.2 <%s> Mail store connection lost, try again later", addr);
        goto done;
    }
    struct buf rtext = BUF_INIT;
    reply_join(&rtext, code, &lines);
    send_reply_text(c, buf_cstr(&rtext));
    buf_fini(&rtext);
    log_info("rcpt_routed", "rcpt=%s backend=%s code=%d", log_quote(addr), log_quote(be->name),
             code);
    if (code != 250) goto done;
    if (c->nrcpts == c->rcpts_alloc) {
        c->rcpts_alloc = c->rcpts_alloc ? c->rcpts_alloc * 2 : 8;
        c->rcpts = xrealloc(c->rcpts, c->rcpts_alloc * sizeof *c->rcpts);
    }
    struct lrcpt *lr = &c->rcpts[c->nrcpts++];
    lr->addr = xstrdup(addr);
    lr->user = user;
    user = NULL;
    lr->backend = bi;
    buf_init(&lr->reply);
done:
    log_set_user(NULL);
    free(cmd);
    free(user);
    strarr_fini(&lines);
    buf_fini(&path);
}

/* spool_open: an unlinked temporary file in configdir/tmp with our Received header field
 * (RFC 5321 section 4.4: each hop adds one; the backend adds Return-Path and its own). The
 * fd, or -1 (logged). */
static int spool_open(struct lr *c)
{
    char *dir = xasprintf("%s/tmp", config_str(c->cfg, CFG_CONFIGDIR));
    char *path = xasprintf("%s/lmtproute.XXXXXX", dir);
    int fd = -1;
    if (mkdir_p(dir, 0700) < 0 || (fd = mkstemp(path)) < 0) {
        log_err("spool_failed", "call=mkstemp path=%s error=%s", log_quote(path),
                log_quote(strerror(errno)));
        goto out;
    }
    unlink(path);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    struct buf h = BUF_INIT;
    buf_appends(&h, "Received: from ");
    for (const char *p = c->lhlo_name; *p; p++)
        buf_putc(&h, (unsigned char)*p < 0x21 || *p == 0x7f || *p == '(' || *p == ')' ? '?' : *p);
    buf_printf(&h, " (%s)\r\n\tby %s (Coffer lmtproute) with LMTP id %s;\r\n\t%s\r\n",
               c->ws->peer, config_str(c->cfg, CFG_HOSTNAME),
               log_session() ? log_session() : "-", date);
    if (write_all(fd, h.s, h.len) < 0) {
        log_err("spool_failed", "call=write error=%s", log_quote(strerror(errno)));
        close(fd);
        fd = -1;
    }
    buf_fini(&h);
out:
    free(dir);
    free(path);
    return fd;
}

/* read_message: the message after 354 into fd, dot-unstuffed, each line ended by CRLF (the
 * end-of-data rules are lmtpd's, lmtp_data_line: only CRLF "." CRLF ends it, a lone dot next
 * to a bare LF is data, RFC 5321 section 4.1.1.4). 0; 1 too big; 2 a line too long; 3 a spool write failed;
 * -1 the session ended (c->end_reason set). */
static int read_message(struct lr *c, int fd)
{
    uint64_t max = (uint64_t)config_int(c->cfg, CFG_MAX_LITERAL), size = 0;
    int res = fd < 0 ? 3 : 0, prev_bare_lf = 0;   /* lmtp_data_line */
    struct buf line = BUF_INIT, out = BUF_INIT;
    stream_set_max_line(c->s, LR_DATA_MAX_LINE);
    for (;;) {
        int r = stream_read_line(c->s, &line);
        if (r == CF_E_LIMIT) {
            if (!res) res = 2;
            prev_bare_lf = 1;
            continue;
        }
        if (r < 0) {
            c->end_reason = worker_read_end(c->s, r, &lr_texts);
            res = -1;
            break;
        }
        const char *s = line.s ? line.s : "";
        size_t n = line.len, skip;
        if (lmtp_data_line(s, n, stream_line_bare_lf(c->s), &prev_bare_lf, &skip)) break;
        s += skip;
        n -= skip;
        size += n + 2;
        if (size > max && !res) res = 1;
        if (res) continue;                          /* read on to the dot */
        buf_append(&out, s, n);
        buf_append(&out, "\r\n", 2);
        if (out.len >= LR_SPOOL_CHUNK) {
            if (write_all(fd, out.s, out.len) < 0) res = 3;
            buf_reset(&out);
        }
    }
    if (!res && out.len && write_all(fd, out.s, out.len) < 0) res = 3;
    if (res == 3 && fd >= 0)
        log_err("spool_failed", "call=write error=%s", log_quote(strerror(errno)));
    stream_set_max_line(c->s, (size_t)config_int(c->cfg, CFG_MAX_LINE));
    buf_fini(&line);
    buf_fini(&out);
    return res;
}

/* relay_body: the spooled message (fd, from its start) to s, dot-stuffed (RFC 5321 section
 * 4.5.2), then CRLF "." CRLF, flushed. 0 or a CF_E_ code. */
static int relay_body(int fd, struct stream *s)
{
    char block[LR_SPOOL_CHUNK];
    int at_bol = 1, r = 0;
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, block, sizeof block, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            log_err("spool_failed", "call=read error=%s", log_quote(strerror(errno)));
            return CF_E_IO;
        }
        if (n == 0) break;
        off += n;
        size_t start = 0;
        for (size_t i = 0; i < (size_t)n && !r; i++) {
            if (at_bol && block[i] == '.') {
                r = stream_write(s, block + start, i - start);
                if (!r) r = stream_write(s, ".", 1);
                start = i;
            }
            at_bol = block[i] == '\n';
        }
        if (!r) r = stream_write(s, block + start, (size_t)n - start);
        if (r) return r;
    }
    /* the spool's lines all end in CRLF, so the message ends on a line boundary */
    r = stream_write(s, ".\r\n", 3);
    return r ? r : stream_flush(s);
}

/* relay: the spooled message to backend i and the replies for its recipients into their
 * reply buffers; a recipient left without one gets 451 (the backend failed before saying
 * anything about it: it may or may not have stored it, and only a retry is safe). */
static void relay(struct lr *c, size_t i, int fd)
{
    struct bconn *b = &c->conns[i];
    struct strarr lines = STRARR_INIT;
    int code = 0;
    const char *why = NULL;
    if (!b->s) {
        why = "lost";
    } else if (be_command(b, "DATA", &code, &lines)) {
        why = "data";
    } else if (code != 354) {
        /* RFC 2033 section 4.2: a refused DATA gets one reply, which stands for all */
        struct buf t = BUF_INIT;
        reply_join(&t, code, &lines);
        for (size_t k = 0; k < c->nrcpts; k++)
            if (c->rcpts[k].backend == i) {
                buf_reset(&c->rcpts[k].reply);
                buf_append(&c->rcpts[k].reply, t.s, t.len);
            }
        buf_fini(&t);
    } else if (relay_body(fd, b->s)) {
        be_drop(b, 0);
        why = "body";
    } else {
        for (size_t k = 0; k < c->nrcpts && b->s; k++) {
            struct lrcpt *r = &c->rcpts[k];
            if (r->backend != i) continue;
            if (be_read_reply(b, &code, &lines)) {
                be_drop(b, 0);
                why = "reply";
                break;
            }
            reply_join(&r->reply, code, &lines);
        }
    }
    b->in_txn = 0;                      /* the DATA ended the transaction on the backend */
    if (why)
        log_warn("backend_unavailable", "backend=%s reason=%s", log_quote(be_name(c, i)), why);
    strarr_fini(&lines);
}

/* reply_all: the same reply for every accepted recipient (RFC 2033 section 4.2) */
static void reply_all(struct lr *c, const char *codes, const char *text)
{
    for (size_t i = 0; i < c->nrcpts; i++)
        reply(c, "%s <%s> %s", codes, c->rcpts[i].addr, text);
}

static void cmd_data(struct lr *c, const char *args)
{
    if (*args) {
        reply(c, "501 5.5.4 Syntax: DATA takes no parameters");
        return;
    }
    if (!c->mail_from) {
        reply(c, "503 5.5.1 Need MAIL command");
        return;
    }
    if (!c->nrcpts) {
        reply(c, "503 5.5.1 No valid recipients");   /* RFC 2033 section 4.2 */
        return;
    }
    int fd = spool_open(c);
    reply(c, "354 Start mail input; end with <CRLF>.<CRLF>");
    if (stream_flush(c->s) < 0) {
        c->end_reason = "io";
        goto out;
    }
    int res = read_message(c, fd);
    if (res < 0) goto out;              /* nothing acknowledged; the backends see no DATA */
    if (res == 1 || res == 2) {
        log_info("message_refused", "reason=%s", res == 1 ? "size" : "line");
        reply_all(c, "552 5.3.4", res == 1 ? "Message size exceeds fixed maximum message size"
                                           : "Message line too long");
    } else if (res == 3) {
        reply_all(c, "451 4.3.0", "Temporary local problem");
    } else {
        for (size_t i = 0; i < c->nconns; i++)
            if (c->conns[i].in_txn) relay(c, i, fd);
        for (size_t k = 0; k < c->nrcpts; k++) {
            struct lrcpt *r = &c->rcpts[k];
            if (!r->reply.len) {
                reply(c, "451 4.4.2 <%s> Mail store connection lost, try again later", r->addr);
                log_info("rcpt_relayed", "user=%s rcpt=%s backend=%s code=451", log_quote(r->user),
                         log_quote(r->addr), log_quote(be_name(c, r->backend)));
                continue;
            }
            send_reply_text(c, buf_cstr(&r->reply));
            log_info("rcpt_relayed", "user=%s rcpt=%s backend=%s code=%.3s", log_quote(r->user),
                     log_quote(r->addr), log_quote(be_name(c, r->backend)), r->reply.s);
        }
    }
    txn_end(c);
out:
    if (fd >= 0) close(fd);
}

static void cmd_rset(struct lr *c, const char *args)
{
    if (*args) {
        reply(c, "501 5.5.4 Syntax: RSET takes no parameters");
        return;
    }
    txn_end(c);
    reply(c, "250 2.0.0 OK");
}

static void cmd_noop(struct lr *c, const char *args)
{
    (void)args;
    reply(c, "250 2.0.0 OK");
}

static void cmd_quit(struct lr *c, const char *args)
{
    if (*args) {
        reply(c, "501 5.5.4 Syntax: QUIT takes no parameters");
        return;
    }
    reply(c, "221 2.0.0 %s closing connection", config_str(c->cfg, CFG_HOSTNAME));
    c->end_reason = "quit";
}

static void cmd_helo(struct lr *c, const char *args)
{
    (void)args;
    reply(c, "500 5.5.1 This is an LMTP server: use LHLO");   /* RFC 2033 section 4.1 */
}

static const struct {
    const char *verb;
    void (*handler)(struct lr *c, const char *args);
} commands[] = {
    { "LHLO", cmd_lhlo },           /* RFC 2033 section 4.1 */
    { "HELO", cmd_helo },
    { "EHLO", cmd_helo },
    { "MAIL", cmd_mail },           /* RFC 5321 section 4.1.1.2 */
    { "RCPT", cmd_rcpt },           /* RFC 5321 section 4.1.1.3 */
    { "DATA", cmd_data },           /* RFC 2033 section 4.2 */
    { "RSET", cmd_rset },
    { "NOOP", cmd_noop },
    { "QUIT", cmd_quit },
};

static int lr_init(const struct config *cfg, const struct config_service *svc)
{
    (void)svc;
    route_lookup_init(cfg);
    return 0;
}

static void lr_session(struct worker_session *ws)
{
    struct lr c;
    memset(&c, 0, sizeof c);
    c.ws = ws;
    c.s = ws->stream;
    c.cfg = ws->cfg;
    c.nconns = ws->cfg->nbackends;
    c.conns = xzmalloc((c.nconns ? c.nconns : 1) * sizeof *c.conns);
    for (size_t i = 0; i < c.nconns; i++) buf_init(&c.conns[i].reply);
    stream_set_timeout(c.s, config_int(ws->cfg, CFG_IDLE_TIMEOUT));
    stream_set_max_line(c.s, (size_t)config_int(ws->cfg, CFG_MAX_LINE));
    reply(&c, "220 %s LMTP Coffer lmtproute ready", config_str(ws->cfg, CFG_HOSTNAME));
    struct buf line = BUF_INIT;
    while (!c.end_reason) {
        int r = worker_next_line(c.s, &line, &lr_texts, &c.end_reason);
        if (r <= 0) continue;
        if (memchr(line.s, '\0', line.len)) {
            reply(&c, "500 5.5.2 NUL is not allowed in a command line");
            continue;
        }
        const char *text = buf_cstr(&line);
        const char *sp = strchr(text, ' ');
        size_t vlen = sp ? (size_t)(sp - text) : strlen(text);
        size_t k;
        for (k = 0; k < sizeof commands / sizeof commands[0]; k++)
            if (strlen(commands[k].verb) == vlen && !strncasecmp(commands[k].verb, text, vlen))
                break;
        if (k == sizeof commands / sizeof commands[0]) reply(&c, "500 5.5.2 Unknown command");
        else commands[k].handler(&c, sp ? sp + 1 : "");
    }
    buf_fini(&line);
    stream_flush(c.s);
    txn_end(&c);
    for (size_t i = 0; i < c.nconns; i++) {
        be_drop(&c.conns[i], 1);
        buf_fini(&c.conns[i].reply);
    }
    free(c.conns);
    free(c.rcpts);
    free(c.lhlo_name);
    ws->end_reason = c.end_reason;
}

static const struct worker_ops lr_ops = {
    .name = "lmtproute",
    .init = lr_init,
    .session = lr_session,
    .too_many = "421 4.7.0 Too many connections from your address",
};

int main(int argc, char **argv)
{
    int rc = worker_main(argc, argv, &lr_ops);
    route_lookup_done();
    return rc;
}
