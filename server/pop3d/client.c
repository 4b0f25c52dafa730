/* client.c: the state of one POP3 connection and its replies. */
#include "pop3d.h"
#include "auth/sasl-exchange.h"
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

struct csasl *client_sasl(struct client *c)
{
    if (c->sasl) return c->sasl;
    if (csasl_session_new("pop", c->ws, &c->sasl)) c->sasl = NULL;
    return c->sasl;
}

int client_reply(struct client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = worker_vreply(c->stream, fmt, ap);   /* L1: one line, controls as '?' */
    va_end(ap);
    return r;
}
