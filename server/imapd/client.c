/* client.c: the state of one IMAP connection, its capabilities and its replies. It writes
 * and records; the mailbox updates that precede a tagged response are the dispatcher's
 * (commands.c), so nothing here touches the store. */
#include "imapd.h"
#include "core/config.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Deepest list nesting accepted. RFC 3501 sets no limit; SEARCH keys nest in parentheses,
 * and real clients stay far below this. */
#define IMAPD_MAX_LIST_DEPTH 32

/* client_parser_limits: the parser limits for the connection's state. Before login they are
 * small (review M3): nobody needs a 64 MiB literal or thousands of arguments to log in, and
 * every connection reaches this state without a password. */
const struct line_texts client_texts = {
    NULL, "* BYE Autologout; idle for too long", "* BYE Server shutting down",
};

static void client_parser_limits(const struct client *c, struct imap_parser_limits *lim)
{
    const struct config *cfg = c->ws->cfg;
    imap_parser_limits_default(lim);
    lim->max_line = (size_t)config_int(cfg, CFG_MAX_LINE);
    lim->max_depth = IMAPD_MAX_LIST_DEPTH;
    lim->literal_minus = 0;                 /* we advertise LITERAL+ */
    size_t max_literal = (size_t)config_int(cfg, CFG_MAX_LITERAL);
    if (c->state == CLIENT_NOT_AUTH) {
        /* never more than after login */
        size_t pre = (size_t)config_int(cfg, CFG_MAX_LITERAL_PREAUTH);
        size_t cmd = (size_t)config_int(cfg, CFG_MAX_COMMAND_PREAUTH);
        lim->max_literal = pre < max_literal ? pre : max_literal;
        lim->max_command = cmd < max_literal + 16 * lim->max_line ? cmd
                                                                 : max_literal + 16 * lim->max_line;
        lim->max_args = (size_t)config_int(cfg, CFG_MAX_ARGS_PREAUTH);
        /* RFC 7888 section 4: BAD and close rather than read an oversized {N+} */
        lim->nonsync_too_big_fatal = 1;
    } else {
        lim->max_literal = max_literal;
        /* a command may carry one literal of the largest size plus its lines and extras */
        lim->max_command = lim->max_literal + 16 * lim->max_line;
        lim->max_args = (size_t)config_int(cfg, CFG_MAX_ARGS);
    }
}

void client_update_limits(struct client *c)
{
    int auth = c->state != CLIENT_NOT_AUTH;
    if (auth == c->parser_limits_auth) return;
    struct imap_parser_limits lim;
    client_parser_limits(c, &lim);
    imap_parser_set_limits(c->parser, &lim);
    c->parser_limits_auth = auth;
}

struct client *client_new(struct worker_session *ws)
{
    struct client *c = xzmalloc(sizeof *c);
    c->ws = ws;
    c->stream = ws->stream;
    c->state = CLIENT_NOT_AUTH;
    c->store = imapd_store();
    clock_gettime(CLOCK_MONOTONIC, &c->started);

    struct imap_parser_limits lim;
    client_parser_limits(c, &lim);
    stream_set_max_line(c->stream, lim.max_line);
    struct imap_source src;
    imap_parser_source_stream(&src, c->stream);
    c->parser = imap_parser_new(&src, &lim);
    c->parser_limits_auth = 0;
    return c;
}

void client_free(struct client **cp)
{
    struct client *c = *cp;
    if (!c) return;
    imap_parser_free(&c->parser);
    buf_fini(&c->reply.line);
    buf_fini(&c->reply.after);
    auth_session_end(c);
    free(c);
    *cp = NULL;
}

void client_capabilities(const struct client *c, struct buf *out)
{
    buf_appends(out, "IMAP4rev1 LITERAL+");
    buf_appends(out, " IMAP4rev2 UTF8=ACCEPT");             /* rev2.c (RFC 9051, RFC 6855) */
    buf_appends(out, " IDLE UIDPLUS MOVE UNSELECT");      /* selected.c and cmd-*.c */
    buf_appends(out, " ESEARCH SEARCHRES WITHIN");        /* cmd-search.c, lib/imap/search */
    buf_appends(out, " NOTIFY");                          /* notify.c (RFC 5465) */
    buf_appends(out, " BINARY");                          /* cmd-fetch.c, lib/imap/imap-parser.c */
    buf_appends(out, " CONTEXT=SEARCH");                  /* cmd-search.c, search-context.c */
    buf_appends(out, " CONTEXT=SORT");                    /* cmd-sort.c, search-context.c */
    buf_appends(out, " CONDSTORE QRESYNC");               /* condstore.c, cmd-select/fetch/store.c */
    buf_appends(out, " SORT SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES"); /* cmd-sort.c */
    if (c->state == CLIENT_NOT_AUTH) {
        if (worker_tls_available(c->ws)) buf_appends(out, " STARTTLS");
        if (!worker_plaintext_ok(c->ws)) buf_appends(out, " LOGINDISABLED");
    }
    /* cmd-mailbox.c, cmd-append.c, cmd-misc.c; then AUTH=... SASL-IR before login */
    buf_appends(out, " ID ENABLE NAMESPACE CHILDREN SPECIAL-USE CREATE-SPECIAL-USE LIST-STATUS"
                     " MULTIAPPEND");
    /* cmd-acl.c (RFC 4314), cmd-quota.c (RFC 9208) */
    buf_appends(out, " ACL RIGHTS=kxte QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE QUOTASET");
    buf_appends(out, " CATENATE URLAUTH URLAUTH=BINARY");     /* cmd-append.c, cmd-urlauth.c */
    buf_appends(out, " LIST-EXTENDED STATUS=SIZE");          /* cmd-mailbox.c (RFC 5258, 8438) */
    buf_appends(out, " SAVEDATE PREVIEW OBJECTID");   /* cmd-fetch.c, search-*.c, cmd-mailbox.c */
    /* RFC 7889: one limit for every mailbox, max_literal (cmd-mailbox.c STATUS, main.c
     * NO [TOOBIG]); RFC 8508 (cmd-append.c); RFC 8437 (cmd-auth.c) */
    buf_printf(out, " APPENDLIMIT=%lld REPLACE UNAUTHENTICATE",
               config_int(c->ws->cfg, CFG_MAX_LITERAL));
    buf_appends(out, " METADATA METADATA-SERVER");           /* cmd-metadata.c (RFC 5464) */
    /* cmd-compress.c (RFC 4978): in every state (the command needs a login), until it is on */
    if (!stream_is_compressed(c->stream))
        buf_appends(out, " COMPRESS=DEFLATE");
    auth_capabilities(c, out);
}

static int reply(struct client *c, const char *prefix, const char *fmt, va_list ap)
{
    struct buf b = BUF_INIT;
    buf_appends(&b, prefix);
    buf_putc(&b, ' ');
    buf_vprintf(&b, fmt, ap);
    buf_appends(&b, "\r\n");
    int r = stream_write(c->stream, b.s, b.len);
    buf_fini(&b);
    return r;
}

const char *client_printable(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    if (!outlen) return "";
    for (size_t i = 0; i < len && n + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[n] = '\0';
    return out;
}

int client_tagged(struct client *c, const char *tag, const char *fmt, ...)
{
    /* a handler that answers twice gets both lines, in order, as it always did */
    if (c->reply.done != CLIENT_DONE_NONE) client_reply_flush(c);
    struct buf *b = &c->reply.line;
    buf_reset(b);
    buf_appends(b, tag);
    buf_putc(b, ' ');
    size_t start = b->len;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
    /* A tagged response is one line of resp-text (RFC 3501 section 9: TEXT-CHAR excludes CR
     * and LF), and no literal. Should a handler put client bytes into it, a CR or LF would
     * let the client forge further responses (review L1): controls become '?' here. */
    for (size_t i = start; i < b->len; i++) {
        unsigned char ch = (unsigned char)b->s[i];
        if (ch < 0x20 || ch == 0x7f) b->s[i] = '?';
    }
    const char *text = b->s + start;
    if (!strncmp(text, "OK", 2)) c->reply.done = CLIENT_DONE_OK;
    else if (!strncmp(text, "NO", 2)) c->reply.done = CLIENT_DONE_NO;
    else c->reply.done = CLIENT_DONE_BAD;
    buf_appends(b, "\r\n");
    return 0;
}

int client_untagged(struct client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = 0;
    if (c->reply.done != CLIENT_DONE_NONE) {
        /* after the tagged response in the handler's order: held until it is written */
        buf_appends(&c->reply.after, "* ");
        buf_vprintf(&c->reply.after, fmt, ap);
        buf_appends(&c->reply.after, "\r\n");
    } else {
        r = reply(c, "*", fmt, ap);
    }
    va_end(ap);
    return r;
}

int client_untagged_lines(struct client *c, const char *p, size_t n)
{
    if (!n) return 0;
    if (c->reply.done != CLIENT_DONE_NONE) {
        buf_append(&c->reply.after, p, n);
        return 0;
    }
    return stream_write(c->stream, p, n);
}

long long client_untagged_nowait(struct client *c, const char *p, size_t n)
{
    if (c->reply.done != CLIENT_DONE_NONE || !n) return 0;
    return stream_write_nowait(c->stream, p, n);
}

int client_untagged_push(struct client *c)
{
    if (c->reply.done != CLIENT_DONE_NONE) return 0;
    return stream_flush(c->stream);
}

void client_reply_take(struct client *c, struct client_reply *out)
{
    *out = c->reply;
    c->reply.done = CLIENT_DONE_NONE;
    buf_init(&c->reply.line);
    buf_init(&c->reply.after);
}

int client_reply_write(struct client *c, struct client_reply *rp)
{
    int r = 0;
    if (rp->done != CLIENT_DONE_NONE) r = stream_write(c->stream, rp->line.s, rp->line.len);
    if (rp->after.len && r == 0) r = stream_write(c->stream, rp->after.s, rp->after.len);
    buf_fini(&rp->line);
    buf_fini(&rp->after);
    rp->done = CLIENT_DONE_NONE;
    return r;
}

int client_reply_flush(struct client *c)
{
    struct client_reply rp;
    client_reply_take(c, &rp);
    return client_reply_write(c, &rp);
}
