/* cmd-data.c: DATA (RFC 5321 section 4.1.1.4, RFC 2033 section 4.2) and BDAT (RFC 3030):
 * a message is never held in memory whole past its first MiB: a larger one (and every BDAT
 * message) is spooled to an unlinked temporary file. */
#include "lmtpd.h"
#include "lmtp-parse.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A message up to this size is delivered from memory; a larger one goes to the spool file in
 * pieces of this size. It was 64 KiB: then the tenth of mailbench's messages past 64 KiB (four
 * fifths of its bytes) were each written to the spool file, mapped, unlinked, and written again
 * into the mailbox, a write() of the whole message that was 5% of the worker's time. A session
 * can hold a line of DATA_MAX_LINE in the stream already, so this keeps the same bound. */
#define DATA_MEMORY_MAX (1024 * 1024)
#define DATA_MAX_LINE (1024 * 1024)   /* RFC 5321 says 1000; real mail is longer, not this */
#define BDAT_MAX_DIGITS 20            /* 18446744073709551615 */

/* append_safe: append s for a header field: control characters become '?'. */
static void append_safe(struct buf *b, const char *s)
{
    for (; *s; s++) buf_putc(b, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* spool_file: a new unlinked temporary file in configdir/tmp (made when missing); the fd, or
 * CF_E_IO (logged). */
static int spool_file(struct client *c)
{
    char *dir = xasprintf("%s/tmp", config_str(c->ws->cfg, CFG_CONFIGDIR));
    char *path = xasprintf("%s/lmtp.XXXXXX", dir);
    int fd = mkstemp(path);
    /* configdir/tmp is made when it is missing, not before every message (a mkdir per path
     * component, each failing with EEXIST, was 4 of a delivery's system calls) */
    if (fd < 0 && errno == ENOENT && mkdir_p(dir, 0700) == 0) {
        memcpy(path + strlen(path) - 6, "XXXXXX", 6);
        fd = mkstemp(path);
    }
    if (fd < 0) {
        log_err("spool_failed", "call=mkstemp path=%s error=%s", log_quote(path),
                log_quote(strerror(errno)));
        fd = CF_E_IO;
    } else {
        unlink(path);     /* nothing to clean up after a crash; mailbox_append copies it */
    }
    free(dir);
    free(path);
    return fd;
}

/* spool_header: the Return-Path and Received header fields of the current transaction,
 * appended to h (RFC 5321 section 4.4: the delivering server adds them). */
static void spool_header(struct client *c, struct buf *h)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    buf_appends(h, "Return-Path: <");
    append_safe(h, c->mail_from);
    buf_appends(h, ">\r\nReceived: from ");
    append_safe(h, c->lhlo_name ? c->lhlo_name : "unknown");
    buf_appends(h, " (");
    append_safe(h, c->ws->peer);
    buf_printf(h, ")\r\n\tby %s (Coffer) with %s id %s;\r\n\t%s\r\n", lmtpd_hostname(),
               stream_is_tls(c->stream) ? "LMTPS" : "LMTP", log_session() ? log_session() : "-",
               date);
}

int spool_new(struct client *c)
{
    int fd = spool_file(c);
    if (fd < 0) return fd;
    struct buf h = BUF_INIT;
    spool_header(c, &h);
    if (write_all(fd, h.s, h.len) < 0) {
        log_err("spool_failed", "call=write error=%s", log_quote(strerror(errno)));
        close(fd);
        fd = CF_E_IO;
    }
    buf_fini(&h);
    return fd;
}

/* reply_all: the same reply for every recipient (RFC 2033 section 4.2). */
static void reply_all(struct client *c, const char *code, const char *text)
{
    for (size_t i = 0; i < c->nrcpts; i++)
        client_reply(c, "%s <%s> %s", code, c->rcpts[i].addr, text);
}

void cmd_data(struct client *c, const struct lmtp_command *cmd)
{
    if (*cmd->args) {
        client_reply(c, "501 5.5.4 Syntax: DATA takes no parameters");
        return;
    }
    if (!c->mail_from) {
        client_reply(c, "503 5.5.1 Need MAIL command");
        return;
    }
    if (c->spool_fd >= 0) {
        client_reply(c, "503 5.5.1 DATA after BDAT");
        return;
    }
    if (!c->nrcpts) {
        client_reply(c, "503 5.5.1 No valid recipients");   /* RFC 2033 section 4.2 */
        return;
    }
    /* The message collects in out; only one that outgrows it (DATA_MEMORY_MAX) goes on to
     * an unlinked file in configdir/tmp, written a chunk at a time, so memory stays bounded.
     * Most mail fits and is delivered from memory: no temporary file to create, write, map
     * and free (an inode allocated and released per delivery, and the bytes written twice). */
    int fd = -1;
    struct buf out = BUF_INIT;
    spool_header(c, &out);
    client_reply(c, "354 Start mail input; end with <CRLF>.<CRLF>");
    if (stream_flush(c->stream) < 0) {
        c->end_reason = "io";
        goto done;
    }
    uint64_t max = (uint64_t)config_int(c->ws->cfg, CFG_MAX_LITERAL);
    uint64_t size = 0;
    int too_big = 0, long_line = 0, write_failed = 0;
    stream_set_max_line(c->stream, DATA_MAX_LINE);
    int prev_bare_lf = 0;           /* the 354 reply counts as the CRLF before a first "." */
    for (;;) {
        /* each line is copied once, from the stream's buffer to out, CRLF and all (it used to
         * be copied into a line buffer first) */
        const char *s;
        size_t n, skip;
        int r = stream_read_line_ref(c->stream, &s, &n);
        if (r == CF_E_LIMIT) {
            long_line = 1;
            prev_bare_lf = 1;          /* whatever it ended with, it was no CRLF "." CRLF */
            continue;
        }
        if (r < 0) {
            c->end_reason = worker_read_end(c->stream, r, &client_texts);
            break;
        }
        /* L11: only CRLF "." CRLF ends it; dot-stuffing undone (lmtp-parse.h) */
        if (lmtp_data_line(s, n, stream_line_bare_lf(c->stream), &prev_bare_lf, &skip)) break;
        s += skip;
        n -= skip;
        /* each line, whether it ended in CRLF or a bare LF, is stored with CRLF */
        size += n + 2;
        if (size > max) too_big = 1;
        if (too_big || long_line || write_failed) continue;    /* read on to the dot */
        buf_ensure(&out, n + 2);                /* no cap: it cannot fail */
        memcpy(out.s + out.len, s, n);
        memcpy(out.s + out.len + n, "\r\n", 2);
        out.len += n + 2;
        if (out.len >= DATA_MEMORY_MAX) {
            if (fd < 0 && (fd = spool_file(c)) < 0) {
                write_failed = 1;               /* logged; read on, then 451 */
            } else if (write_all(fd, out.s, out.len) < 0) {
                log_err("spool_failed", "call=write error=%s", log_quote(strerror(errno)));
                write_failed = 1;
            }
            buf_reset(&out);
        }
    }
    stream_set_max_line(c->stream, (size_t)config_int(c->ws->cfg, CFG_MAX_LINE));
    if (!c->end_reason && !too_big && !long_line && !write_failed && fd >= 0 && out.len &&
        write_all(fd, out.s, out.len) < 0) {
        log_err("spool_failed", "call=write error=%s", log_quote(strerror(errno)));
        write_failed = 1;
    }
    if (c->end_reason) goto done;               /* nothing was acknowledged, nothing stored */
    if (too_big || long_line) {
        log_info("message_refused", "reason=%s size=%llu", too_big ? "size" : "line",
                 (unsigned long long)size);
        reply_all(c, "552 5.3.4", too_big ? "Message size exceeds fixed maximum message size"
                                          : "Message line too long");
    } else if (write_failed) {
        reply_all(c, "451 4.3.0", "Temporary local problem");
    } else if (fd >= 0) {
        lmtp_deliver(c, fd);
    } else {
        lmtp_deliver_data(c, out.s, out.len);
    }
    client_reset(c);
done:
    buf_fini(&out);
    if (fd >= 0) close(fd);
}

/* BDAT SIZE [LAST] (RFC 3030 section 2): the chunk is taken as it is (no dot-stuffing, line
 * ends kept); each chunk gets one reply, LAST one reply per recipient. */
void cmd_bdat(struct client *c, const struct lmtp_command *cmd)
{
    char *end;
    const char *a = cmd->args;
    if (*a < '0' || *a > '9') {
        client_reply(c, "501 5.5.4 Syntax: BDAT size [LAST]");
        return;
    }
    size_t digits = strspn(a, "0123456789");
    errno = 0;
    unsigned long long n = strtoull(a, &end, 10);
    int last = 0;
    /* more than 20 digits cannot be a 64-bit size, whatever strtoull makes of it */
    if (digits > BDAT_MAX_DIGITS) errno = ERANGE;
    if (!errno && *end == ' ' && !strcasecmp(end + 1, "LAST")) last = 1;
    else if (*end || errno) {
        /* the size cannot be trusted, so neither can the stream: RFC 3030 section 2 */
        client_reply(c, "501 5.5.4 Syntax: BDAT size [LAST]");
        c->end_reason = "protocol";
        return;
    }
    uint64_t max = (uint64_t)config_int(c->ws->cfg, CFG_MAX_LITERAL);
    if (n > max) {
        /* H5: a chunk larger than any message we accept cannot be read past at a bounded
         * cost (2^64-1 octets would take forever), so the session ends here */
        log_info("message_refused", "reason=size chunk=%llu", n);
        client_reply(c, "421 4.3.4 Chunk exceeds the maximum message size; closing connection");
        c->end_reason = "protocol";
        return;
    }
    const char *refuse = NULL;
    if (!c->mail_from) refuse = "503 5.5.1 Need MAIL command";
    else if (!c->nrcpts) refuse = "503 5.5.1 No valid recipients";
    if (refuse) {
        /* the chunk follows the command whatever we say: read it past */
        int r = stream_skip(c->stream, n);
        if (r < 0) {
            c->end_reason = worker_read_end(c->stream, r, &client_texts);
            return;
        }
        client_reply(c, "%s", refuse);
        return;
    }
    if (c->spool_fd < 0 && !c->bdat_failed) {
        c->spool_fd = spool_new(c);
        if (c->spool_fd < 0) {
            c->bdat_failed = 1;
            c->bdat_error = "451 4.3.0";
        }
    }
    int r;
    /* written as a subtraction: spool_size + n could wrap around (H5); n <= max here and
     * spool_size never exceeds max, because a chunk that would pass it is skipped */
    if (c->bdat_failed || c->spool_size > max - n) {
        if (!c->bdat_failed) {
            c->bdat_failed = 1;
            c->bdat_error = "552 5.3.4";
        }
        r = stream_skip(c->stream, n);
    } else {
        r = stream_read_to_fd(c->stream, n, c->spool_fd);
        if (r == CF_E_IO && !c->end_reason) {
            /* a spool write failure; the stream itself may be fine, but we cannot know
             * how much was read: end the session rather than guess */
            c->end_reason = "io";
            return;
        }
    }
    if (r < 0) {
        c->end_reason = worker_read_end(c->stream, r, &client_texts);
        return;
    }
    if (!c->bdat_failed) c->spool_size += n;
    if (!last) {
        if (c->bdat_failed)
            client_reply(c, "%s %s", c->bdat_error,
                         !strcmp(c->bdat_error, "552 5.3.4") ? "Message too big" : "Temporary local problem");
        else
            client_reply(c, "250 2.0.0 %llu octets received", n);
        return;
    }
    if (c->bdat_failed) {
        if (!strcmp(c->bdat_error, "552 5.3.4"))
            reply_all(c, "552 5.3.4", "Message size exceeds fixed maximum message size");
        else
            reply_all(c, "451 4.3.0", "Temporary local problem");
    } else {
        lmtp_deliver(c, c->spool_fd);
    }
    client_reset(c);
}
