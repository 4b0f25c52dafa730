/* client.c: the state of one ManageSieve connection and its responses (RFC 5804 section 1.3
 * and section 4: strings, response codes, the capability response). */
#include "sieved.h"
#include "auth/sasl-exchange.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "sieve/sieve.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct client *client_new(struct worker_session *ws)
{
    struct client *c = xzmalloc(sizeof *c);
    c->ws = ws;
    c->stream = ws->stream;
    return c;
}

/* RFC 5804 section 1.3: BYE ends the session; TRYLATER says the server will be back */
const struct line_texts client_texts = {
    "NO \"Line too long\"", "BYE \"Autologout; idle for too long\"",
    "BYE (TRYLATER) \"Server shutting down\"",
};

void client_free(struct client **cp)
{
    struct client *c = *cp;
    if (!c) return;
    csasl_free(&c->sasl);
    free(c->user);
    free(c);
    *cp = NULL;
}

struct csasl *client_sasl(struct client *c)
{
    if (c->sasl) return c->sasl;
    /* "sieve" is the SASL service name RFC 5804 section 2.1 registers */
    if (csasl_session_new("sieve", c->ws, &c->sasl)) c->sasl = NULL;
    return c->sasl;
}

void client_string(struct client *c, const char *s, size_t len)
{
    int quoted = len <= 1024;
    for (size_t i = 0; quoted && i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') quoted = 0;
    if (!quoted) {
        stream_printf(c->stream, "{%zu}\r\n", len);
        stream_write(c->stream, s, len);
        return;
    }
    stream_write(c->stream, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') stream_write(c->stream, "\\", 1);
        stream_write(c->stream, &s[i], 1);
    }
    stream_write(c->stream, "\"", 1);
}

void client_status(struct client *c, const char *kind, const char *code, const char *fmt, ...)
{
    stream_puts(c->stream, kind);
    if (code) stream_printf(c->stream, " (%s)", code);
    if (fmt) {
        struct buf text = BUF_INIT;
        va_list ap;
        va_start(ap, fmt);
        buf_vprintf(&text, fmt, ap);
        va_end(ap);
        stream_write(c->stream, " ", 1);
        client_string(c, text.s ? text.s : "", text.len);
        buf_fini(&text);
    }
    stream_write(c->stream, "\r\n", 2);
}

/* cap: one capability line: "NAME" and, unless value is NULL, "VALUE". */
static void cap(struct client *c, const char *name, const char *value)
{
    client_string(c, name, strlen(name));
    if (value) {
        stream_write(c->stream, " ", 1);
        client_string(c, value, strlen(value));
    }
    stream_write(c->stream, "\r\n", 2);
}

/* has_word: whether the space-separated list holds word. */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}

void client_capabilities(struct client *c)
{
    cap(c, "IMPLEMENTATION", "Coffer");
    struct buf mechs = BUF_INIT;
    struct csasl *s = c->user ? NULL : client_sasl(c);
    if (s) csasl_mechs(s, " ", &mechs);
    /* after AUTHENTICATE the list is empty: there is nothing left to authenticate */
    cap(c, "SASL", buf_cstr(&mechs));
    buf_fini(&mechs);
    /* what libsieve accepts with the callbacks lmtpd registers, asked at run time: the list
     * can never promise an extension PUTSCRIPT would refuse */
    const char *ext = sieve_extensions();
    cap(c, "SIEVE", ext);
    if (!c->user && worker_tls_available(c->ws)) cap(c, "STARTTLS", NULL);
    long long maxr = config_int(c->ws->cfg, CFG_SIEVE_MAX_REDIRECTS);
    if (maxr > 0) {
        char n[32];
        snprintf(n, sizeof n, "%lld", maxr);
        cap(c, "MAXREDIRECTS", n);
    }
    if (has_word(ext, "notify")) cap(c, "NOTIFY", "mailto");
    if (c->user) cap(c, "OWNER", c->user);
    cap(c, "UNAUTHENTICATE", NULL);                 /* RFC 5804 section 2.14 */
    cap(c, "VERSION", "1.0");
}

void client_error(struct client *c, int r)
{
    switch (r) {
    case CF_E_NOTFOUND:
        client_status(c, "NO", "NONEXISTENT", "There is no script by that name");
        break;
    case CF_E_EXISTS:
        client_status(c, "NO", "ALREADYEXISTS", "A script by that name already exists");
        break;
    case CF_E_PERM:
        client_status(c, "NO", "ACTIVE", "The script is active; deactivate it first");
        break;
    case SIEVE_E_MAXSCRIPTS:
        client_status(c, "NO", "QUOTA/MAXSCRIPTS", "You have the most scripts allowed (%lld)",
                      config_int(c->ws->cfg, CFG_SIEVE_MAX_SCRIPTS));
        break;
    case SIEVE_E_MAXSIZE:
        client_status(c, "NO", "QUOTA/MAXSIZE", "Scripts may be at most %zu bytes",
                      sieve_max_size(c->ws->cfg));
        break;
    case CF_E_PARSE:
        client_status(c, "NO", NULL, "Invalid script name");
        break;
    default:
        client_status(c, "NO", "TRYLATER", "Internal error, try again later");
        break;
    }
}

int client_read(struct client *c, struct msieve_parser *p, int *too_big_r)
{
    struct buf line = BUF_INIT, lit = BUF_INIT;
    int ret = -1;
    if (too_big_r) *too_big_r = 0;
    for (;;) {
        int r = worker_next_line(c->stream, &line, &client_texts, &c->end_reason);
        if (r < 0) goto done;
        if (r == 0) {                                     /* "NO Line too long" was sent */
            ret = 0;
            goto done;
        }
        size_t n;
        const char *err;
        enum msieve_step st = msieve_parse_line(p, line.s ? line.s : "", line.len, &n, &err);
        if (st == MSIEVE_ERROR) {
            client_status(c, "NO", NULL, "%s", err);
            ret = 0;
            goto done;
        }
        if (st == MSIEVE_DONE) {
            ret = 1;
            goto done;
        }
        size_t limit = c->user ? sieve_max_size(c->ws->cfg)
                               : (size_t)config_int(c->ws->cfg, CFG_MAX_LITERAL_PREAUTH);
        if (n > limit) {
            /* a non-synchronizing literal is on its way: it must be read to go on */
            if (!c->user || !too_big_r || n > (size_t)config_int(c->ws->cfg, CFG_MAX_LITERAL)) {
                log_notice("literal_refused", "size=%zu limit=%zu", n, limit);
                client_status(c, "BYE", NULL, "Literal too big (at most %zu bytes)", limit);
                c->end_reason = "literal_too_big";
                goto done;
            }
            if ((r = stream_skip(c->stream, n)) < 0) {
                c->end_reason = worker_read_end(c->stream, r, &client_texts);
                goto done;
            }
            *too_big_r = 1;
            msieve_parse_literal(p, NULL, 0);
            continue;
        }
        buf_reset(&lit);
        if ((r = stream_read_exact(c->stream, n, &lit)) < 0) {
            c->end_reason = worker_read_end(c->stream, r, &client_texts);
            goto done;
        }
        msieve_parse_literal(p, lit.s, lit.len);
    }
done:
    buf_fini(&line);
    buf_fini(&lit);
    return ret;
}
