/* cmd-deliver.c: `coffer deliver [-m folder] [-f sender] USER < message`: hand one message to
 * the running lmtpd over LMTP (RFC 2033), for MTAs that deliver by piping to a command. The
 * exit code follows sysexits(3), which MTAs understand. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

/* lmtp_address: the first listen address of the first service running lmtpd, preferring a
 * UNIX socket of that service; on a router host without lmtpd, of the first service running
 * lmtproute (the LMTP entry that passes the message to the user's backend, lmtproute(8)).
 * NULL when there is none. */
static const char *lmtp_address(const struct config *cfg)
{
    static const char *const programs[] = { "lmtpd", "lmtproute" };
    for (size_t p = 0; p < sizeof programs / sizeof programs[0]; p++) {
        for (size_t i = 0; i < cfg->nservices; i++) {
            const struct config_service *s = &cfg->services[i];
            const char *prog = service_str(s, SVC_PROGRAM);
            const char *base = strrchr(prog, '/');
            if (strcmp(base ? base + 1 : prog, programs[p])) continue;
            const struct strarr *l = service_list(s, SVC_LISTEN);
            for (size_t k = 0; k < l->count; k++)
                if (l->v[k][0] == '/') return l->v[k];
            if (l->count) return l->v[0];
        }
    }
    return NULL;
}

/* lmtp_connect: a connected socket to addr ("/path", "host:port", "[v6]:port"), or -1. */
static int lmtp_connect(const char *addr)
{
    if (addr[0] == '/') {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        if (strlen(addr) >= sizeof sun.sun_path) return -1;
        strcpy(sun.sun_path, addr);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    const char *colon = strrchr(addr, ':');
    if (!colon) return -1;
    char *host = xstrndup(addr, (size_t)(colon - addr));
    if (host[0] == '[') {
        size_t n = strlen(host);
        memmove(host, host + 1, n);
        if (n >= 2 && host[n - 2] == ']') host[n - 2] = '\0';
    }
    if (!strcmp(host, "*") || !*host) {
        free(host);
        host = xstrdup("127.0.0.1");
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int fd = -1;
    if (getaddrinfo(host, colon + 1, &hints, &res) == 0) {
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(res);
    }
    free(host);
    return fd;
}

/* read_reply: one (possibly multi-line) reply; its code, its last line in text. <0 on error. */
static int read_reply(struct stream *s, struct buf *text)
{
    struct buf line = BUF_INIT;
    int code = -1;
    for (;;) {
        if (stream_read_line(s, &line) < 0 || line.len < 3) {
            code = -1;
            break;
        }
        const char *l = buf_cstr(&line);
        code = atoi(l);
        buf_reset(text);
        buf_appends(text, l);
        if (line.len == 3 || l[3] == ' ') break;
    }
    buf_fini(&line);
    return code;
}

/* exit_for: sysexits for an LMTP reply (RFC 3463 codes in the text). */
static int exit_for(int code, const char *text)
{
    if (code >= 200 && code < 300) return EX_OK;
    if (code >= 400 && code < 500) return EX_TEMPFAIL;
    if (code >= 500 && code < 600) {
        if (strstr(text, " 5.1.1 ")) return EX_NOUSER;
        return EX_DATAERR;
    }
    return EX_PROTOCOL;
}

/* send_message: stdin as DATA: dot-stuffed, every line ended with CRLF (RFC 5321 section
 * 4.5.2). 0 or -1. */
static int send_message(struct stream *s, FILE *in)
{
    char chunk[65536];
    int bol = 1, cr = 0;
    size_t n;
    struct buf out = BUF_INIT;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) {
        buf_reset(&out);
        for (size_t i = 0; i < n; i++) {
            char ch = chunk[i];
            if (bol && ch == '.') buf_putc(&out, '.');
            if (ch == '\n' && !cr) buf_putc(&out, '\r');
            buf_putc(&out, ch);
            cr = ch == '\r';
            bol = ch == '\n';
        }
        if (stream_write(s, out.s, out.len) < 0) break;
    }
    int r = ferror(in) ? -1 : 0;
    if (!bol) stream_write(s, "\r\n", 2);
    if (stream_write(s, ".\r\n", 3) < 0) r = -1;
    buf_fini(&out);
    return r;
}

int cmd_deliver(struct tool *t)
{
    const char *folder = NULL, *sender = "", *user = NULL;
    for (int i = 0; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "-m") && i + 1 < t->argc) folder = t->argv[++i];
        else if (!strcmp(t->argv[i], "-f") && i + 1 < t->argc) sender = t->argv[++i];
        else if (t->argv[i][0] != '-' && !user) user = t->argv[i];
        else user = NULL, i = t->argc;
    }
    if (!user) {
        tool_error(t, "usage: coffer deliver [-m folder] [-f sender] USER < message");
        return EX_USAGE;
    }
    const char *addr = lmtp_address(t->cfg);
    if (!addr) {
        tool_error(t, "no service with program = lmtpd (or lmtproute) in %s", t->conf_path);
        return EX_CONFIG;
    }
    int fd = lmtp_connect(addr);
    if (fd < 0) {
        tool_error(t, "cannot connect to lmtpd at %s", addr);
        return EX_TEMPFAIL;
    }
    struct stream *s = stream_new(fd);
    stream_set_timeout(s, 300);
    struct buf text = BUF_INIT;
    int rc = EX_PROTOCOL, code;
    char host[256];
    if (gethostname(host, sizeof host) < 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    if ((code = read_reply(s, &text)) != 220) goto reply;
    stream_printf(s, "LHLO %s\r\n", host);
    stream_flush(s);
    if ((code = read_reply(s, &text)) != 250) goto reply;
    /* PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write */
    stream_printf(s, "MAIL FROM:<%s>\r\nRCPT TO:<%s%s%s>\r\nDATA\r\n", sender, user,
                  folder ? "+" : "", folder ? folder : "");
    stream_flush(s);
    if ((code = read_reply(s, &text)) != 250) goto reply;
    if ((code = read_reply(s, &text)) != 250) {
        struct buf ignored = BUF_INIT;
        read_reply(s, &ignored);            /* DATA's 503 */
        buf_fini(&ignored);
        goto reply;
    }
    if ((code = read_reply(s, &text)) != 354) goto reply;
    if (send_message(s, stdin) < 0 || stream_flush(s) < 0) {
        tool_error(t, "sending the message failed");
        rc = EX_TEMPFAIL;
        goto done;
    }
    code = read_reply(s, &text);
reply:
    if (code < 0) {
        tool_error(t, "lmtpd at %s closed the connection", addr);
        rc = EX_TEMPFAIL;
        goto done;
    }
    rc = exit_for(code, buf_cstr(&text));
    if (rc != EX_OK) tool_error(t, "%s", buf_cstr(&text));
    stream_puts(s, "QUIT\r\n");
    stream_flush(s);
    read_reply(s, &text);
done:
    buf_fini(&text);
    stream_free(&s);
    return rc;
}
