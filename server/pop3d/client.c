/* client.c: the state of one POP3 connection and its replies. */
#include "pop3d.h"
#include "auth/sasl.h"
#include "core/config.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct client *client_new(struct worker_session *ws)
{
    struct client *c = xzmalloc(sizeof *c);
    c->ws = ws;
    c->stream = ws->stream;
    c->state = CLIENT_AUTHORIZATION;
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    return c;
}

const struct line_texts client_texts = {
    "-ERR Line too long", "-ERR Autologout; idle for too long", "-ERR Server shutting down",
};

void client_free(struct client **cp)
{
    struct client *c = *cp;
    if (!c) return;
    maildrop_close(&c->drop);
    csasl_free(&c->sasl);
    free(c->user_arg);
    free(c->user);
    free(c);
    *cp = NULL;
}

int client_tls_available(const struct client *c)
{
    return c->ws->tls && strcmp(service_str(c->ws->svc, SVC_TLS), "none") &&
           !stream_is_tls(c->stream);
}

int client_plaintext_ok(const struct client *c)
{
    return stream_is_tls(c->stream) || config_int(c->ws->cfg, CFG_ALLOW_PLAINTEXT);
}

struct csasl *client_sasl(struct client *c)
{
    if (c->sasl) return c->sasl;
    /* SASL wants "IP;PORT"; the worker gives "IP:PORT" or "[v6]:PORT" */
    char local[96], peer[96];
    const char *addrs[2] = { c->ws->local, c->ws->peer };
    char *outs[2] = { local, peer };
    for (int i = 0; i < 2; i++) {
        const char *a = addrs[i];
        const char *colon = strrchr(a, ':');
        if (c->ws->is_unix || !colon) {
            outs[i] = NULL;
            continue;
        }
        size_t hl = (size_t)(colon - a);
        if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
            a++;
            hl -= 2;
        }
        snprintf(outs[i], 96, "%.*s;%s", (int)hl, a, colon + 1);
    }
    /* Stream TLS always uses a strong cipher (TLS 1.2+ with OpenSSL defaults): claim 128 bits,
     * which is all SASL needs to know to allow plaintext mechanisms. */
    int ssf = stream_tls_ssf(c->stream);   /* L12 */
    if (csasl_new("pop", outs[0], outs[1], ssf, &c->sasl)) c->sasl = NULL;
    return c->sasl;
}

int client_reply(struct client *c, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    buf_appends(&b, "\r\n");
    int r = stream_write(c->stream, b.s, b.len);
    buf_fini(&b);
    return r;
}
