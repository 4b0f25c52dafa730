/* stream.c: buffered, size-limited, timed socket I/O with TLS (implicit or STARTTLS). */
#include "net/stream.h"
#include "net/stream-deflate.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define STREAM_BUFSIZE (64 * 1024)
#define STREAM_DEFAULT_MAX_LINE (64 * 1024)
#define STREAM_DEFAULT_WRITE_TIMEOUT 60     /* seconds, when the idle timeout is 0 */
#define STREAM_FREE_FLUSH_TIMEOUT 10        /* stream_free waits at most this long */
#define STREAM_POLL_SLICE_MS 1000           /* re-check the interrupt flag this often */
/* The most plaintext one TLS record carries (RFC 8446 section 5.1, RFC 5246 section 6.2.1),
 * OpenSSL's default max_send_fragment. The write buffer holds a whole number of them. */
#define TLS_RECORD (16 * 1024)
_Static_assert(STREAM_BUFSIZE % TLS_RECORD == 0, "the write buffer holds whole TLS records");

struct tls_ctx {
    SSL_CTX *ctx;
};

struct stream {
    int fd;
    int is_socket;          /* send/recv (MSG_NOSIGNAL) rather than write/read */
    int timeout;            /* idle timeout in seconds; 0 = none */
    long long deadline;     /* now_ms() value no wait may pass (stream_set_deadline); -1 = none */
    size_t max_line;

    /* input: rbuf[rpos, rlen) is buffered; line holds the start of an unfinished line, which
     * comes before rbuf[rpos] in stream order */
    char *rbuf;
    size_t rpos, rlen;
    struct buf line;
    int discarding;         /* inside an over-long line: drop bytes up to its LF */
    int bare_lf;            /* the last line read ended in a bare LF, not CRLF */
    int rerr;               /* sticky read error: CF_E_EOF after end of file, CF_E_TLS */
    int bio_eof;            /* the TLS BIO saw end of file (for BIO_CTRL_EOF) */
    short rwant;            /* what the last read waited for: POLLIN, or POLLOUT when TLS
                             * must write before it can read on */

    /* output */
    char *wbuf;
    size_t wlen;
    int werr;               /* sticky write error */

    SSL *ssl;
    int tls_more;           /* the record the BIO is writing is followed at once by another
                             * of the same write: send it with MSG_MORE (raw_write) */
    char tls_info[96];
    char tls_error[256];

    unsigned long long bytes_in, bytes_out;

    /* COMPRESS=DEFLATE (stream-deflate.c), between the buffers above and the transport: fill
     * inflates into rbuf, flushing deflates wbuf; NULL when not active */
    struct zlayer *z;
};

static volatile sig_atomic_t *g_interrupt;

void stream_set_interrupt_flag(volatile sig_atomic_t *flag) { g_interrupt = flag; }

static int interrupted(void) { return g_interrupt && *g_interrupt; }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long read_deadline(const struct stream *s)
{
    return s->timeout > 0 ? now_ms() + (long long)s->timeout * 1000 : -1;
}

static int write_timeout(const struct stream *s)
{
    return s->timeout > 0 ? s->timeout : STREAM_DEFAULT_WRITE_TIMEOUT;
}

/* ---- the private BIO: socket I/O with MSG_NOSIGNAL, never closing the fd ---- */

static ssize_t sock_read(struct stream *s, void *p, size_t n)
{
    return s->is_socket ? recv(s->fd, p, n, 0) : read(s->fd, p, n);
}

static ssize_t sock_write(struct stream *s, const void *p, size_t n)
{
    return s->is_socket ? send(s->fd, p, n, MSG_NOSIGNAL) : write(s->fd, p, n);
}

static int retryable(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

static int bio_read(BIO *b, char *p, int n)
{
    struct stream *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0) return 0;
    ssize_t r = sock_read(s, p, (size_t)n);
    if (r < 0 && retryable(errno)) BIO_set_retry_read(b);
    if (r == 0) s->bio_eof = 1;
    return (int)r;
}

static int bio_write(BIO *b, const char *p, int n)
{
    struct stream *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0) return 0;
    /* A record with more of the same write behind it goes with MSG_MORE: TCP packs the
     * records into full segments and pushes once at the write's last record, which goes
     * without it, instead of once per 16 KiB record (a segment, and on loopback the reader's
     * whole receive path run in this process, per record). The flag never outlives raw_write,
     * so nothing stays corked. */
    int more = s->tls_more ? MSG_MORE : 0;
    ssize_t r = s->is_socket ? send(s->fd, p, (size_t)n, MSG_NOSIGNAL | more)
                             : write(s->fd, p, (size_t)n);
    if (r < 0 && retryable(errno)) BIO_set_retry_write(b);
    return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct stream *s = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;           /* nothing is buffered in the BIO itself */
    case BIO_CTRL_EOF:
        return s && s->bio_eof;
    case BIO_C_GET_FD:
        if (!s) return -1;
        if (ptr) *(int *)ptr = s->fd;
        return s->fd;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

static int bio_destroy(BIO *b) { return b != NULL; }   /* the stream owns and closes the fd */

static BIO_METHOD *g_bio_method;
static pthread_once_t g_bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "coffer stream socket");
    if (!m) return;
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    g_bio_method = m;
}

/* ---- errors ---- */

/* openssl_reasons: OpenSSL's error queue as readable text, emptying the queue. */
static void openssl_reasons(char *dst, size_t size)
{
    size_t used = 0;
    const char *data;
    int flags;
    unsigned long e;
    char prev[128] = "";
    dst[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        char code[128];
        const char *reason = ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e))
                                                 : ERR_reason_error_string(e);
        if (!reason) {
            ERR_error_string_n(e, code, sizeof code);
            reason = code;
        }
        /* "system lib" only says that the entry before it was a system error */
        if (!strcmp(prev, reason) || (used && !strcmp(reason, "system lib"))) continue;
        snprintf(prev, sizeof prev, "%s", reason);
        int with_data = (flags & ERR_TXT_STRING) && data && *data;
        if (used + 1 >= size) continue;   /* keep draining the queue */
        int k = snprintf(dst + used, size - used, "%s%s%s%s%s", used ? "; " : "", reason,
                         with_data ? " (" : "", with_data ? data : "", with_data ? ")" : "");
        if (k > 0) used += (size_t)k < size - used ? (size_t)k : size - used - 1;
    }
}

/* tls_failed: record why a TLS operation failed, log it once, return CF_E_TLS or CF_E_IO. */
static int tls_failed(struct stream *s, const char *op, int sslerr, int saved_errno)
{
    char reasons[200];
    openssl_reasons(reasons, sizeof reasons);
    int r = CF_E_TLS;
    if (!reasons[0]) {
        if (sslerr == SSL_ERROR_SYSCALL && saved_errno) {
            snprintf(reasons, sizeof reasons, "%s", strerror(saved_errno));
            r = CF_E_IO;    /* the socket failed, not the TLS protocol */
        } else if (sslerr == SSL_ERROR_SYSCALL) {
            snprintf(reasons, sizeof reasons, "connection closed");
        } else {
            snprintf(reasons, sizeof reasons, "SSL error %d", sslerr);
        }
    }
    snprintf(s->tls_error, sizeof s->tls_error, "%s", reasons);
    log_info("tls_failed", "op=%s reason=%s", op, log_quote(reasons));
    return r;
}

static int io_failed(const char *op, int e)
{
    /* a peer resetting the connection is ordinary; anything else deserves attention */
    if (e == ECONNRESET || e == EPIPE || e == ETIMEDOUT)
        log_info("stream_io_failed", "op=%s errno=%s", op, log_quote(strerror(e)));
    else
        log_warn("stream_io_failed", "op=%s errno=%s", op, log_quote(strerror(e)));
    return CF_E_IO;
}

/* ---- waiting ---- */

/* wait_fd: poll until the fd is ready for events. deadline is a now_ms() value or -1 for none.
 * 0 when ready (or in error: the following call reports it), CF_E_TIMEOUT, CF_E_SHUTDOWN
 * (only when check_interrupt), CF_E_IO. */
static int wait_fd(struct stream *s, short events, long long deadline, int check_interrupt)
{
    /* the session's hard deadline caps every wait: reads, writes and handshakes alike, so a
     * peer that trickles bytes or reads slowly cannot stretch it */
    if (s->deadline >= 0 && (deadline < 0 || s->deadline < deadline)) deadline = s->deadline;
    for (;;) {
        if (check_interrupt && interrupted()) return CF_E_SHUTDOWN;
        int slice = STREAM_POLL_SLICE_MS;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) return CF_E_TIMEOUT;
            if (left < slice) slice = (int)left;
        }
        struct pollfd pfd = { .fd = s->fd, .events = events, .revents = 0 };
        int n = poll(&pfd, 1, slice);
        if (n < 0) {
            if (errno == EINTR) continue;   /* the loop re-checks the flag */
            return io_failed("poll", errno);
        }
        if (n > 0) return 0;
    }
}

/* ---- reading ---- */

/* transport_read: read what the transport (TLS or the socket) has into p[0, room) without
 * waiting. Returns the number of bytes (> 0), 0 when nothing is there yet (*want says what to
 * poll for), or CF_E_*. */
static int transport_read(struct stream *s, char *p, size_t room, short *want)
{
    if (room > INT_MAX) room = INT_MAX;
    for (;;) {
        *want = POLLIN;
        if (s->ssl) {
            size_t got = 0;
            ERR_clear_error();
            errno = 0;
            int r = SSL_read_ex(s->ssl, p, room, &got);
            if (r > 0) {
                s->bytes_in += got;
                return (int)got;
            }
            int saved = errno;
            int e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                *want = POLLIN;
            } else if (e == SSL_ERROR_WANT_WRITE) {
                *want = POLLOUT;
            } else if (e == SSL_ERROR_ZERO_RETURN) {
                s->rerr = CF_E_EOF;
                return CF_E_EOF;
            } else if (e == SSL_ERROR_SYSCALL && saved == 0 && ERR_peek_error() == 0) {
                s->rerr = CF_E_EOF;  /* closed without close_notify */
                return CF_E_EOF;
            } else {
                s->rerr = tls_failed(s, "read", e, saved);
                return s->rerr;
            }
            return 0;
        }
        ssize_t n = sock_read(s, p, room);
        if (n > 0) {
            s->bytes_in += (unsigned long long)n;
            return (int)n;
        }
        if (n == 0) {
            s->rerr = CF_E_EOF;
            return CF_E_EOF;
        }
        if (errno == EINTR) {
            if (interrupted()) return CF_E_SHUTDOWN;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) return io_failed("read", errno);
        return 0;
    }
}

/* inflate_more: with compression active, decompress what the layer holds into rbuf. Returns
 * the bytes added (> 0), 0 when the layer needs more compressed input, or a sticky CF_E_*:
 * CF_E_CORRUPT for a corrupt stream (logged), CF_E_EOF when the client ended it. */
static int inflate_more(struct stream *s, size_t room)
{
    int k = zlayer_inflate(s->z, s->rbuf + s->rlen, room);
    if (k > 0) {
        s->rlen += (size_t)k;
        return k;
    }
    if (k == CF_E_CORRUPT)
        log_notice("compress_failed", "op=inflate reason=%s", log_quote(zlayer_error(s->z)));
    if (k < 0) s->rerr = k;
    return k;
}

/* fill: read what the peer has sent (waiting until deadline) into rbuf after rlen, through
 * the deflate layer when it is active. Returns the number of bytes added (> 0) or CF_E_*. */
static int fill(struct stream *s, long long deadline)
{
    if (s->rpos == s->rlen) {
        s->rpos = s->rlen = 0;
    } else if (s->rpos > 0 && s->rlen == STREAM_BUFSIZE) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
        s->rlen -= s->rpos;
        s->rpos = 0;
    }
    size_t room = STREAM_BUFSIZE - s->rlen;
    if (room == 0) return CF_E_INTERNAL;
    if (s->rerr) return s->rerr;
    /* input the layer already holds is decompressed before anything else: at most room bytes
     * at a time, so a small input that expands enormously still meets the line limits in
     * 64 KiB steps, exactly as plain input would */
    if (s->z) {
        int k = inflate_more(s, room);
        if (k != 0) return k;
    }
    if (interrupted()) return CF_E_SHUTDOWN;
    /* checked before reading too: a peer that keeps the socket full (a flood of commands
     * before login) would otherwise never make us wait, and so never see the deadline */
    if (s->deadline >= 0 && now_ms() >= s->deadline) return CF_E_TIMEOUT;
    for (;;) {
        short want = POLLIN;
        char *p = s->rbuf + s->rlen;
        size_t n = room;
        if (s->z) n = zlayer_in_room(s->z, &p);
        int r = transport_read(s, p, n, &want);
        if (r < 0) return r;
        if (r > 0 && !s->z) {
            s->rlen += (size_t)r;
            return r;
        }
        if (r > 0) {
            zlayer_in_added(s->z, (size_t)r);
            int k = inflate_more(s, room);
            if (k != 0) return k;
            continue;   /* a piece of a block: read on before waiting */
        }
        s->rwant = want;
        int w = wait_fd(s, want, deadline, 1);
        if (w < 0) return w;
    }
}

size_t stream_pending(const struct stream *s) { return s->line.len + (s->rlen - s->rpos); }

/* finish_line: the line's bytes are s->line then p[0, n) (the LF is not included); *p_r,
 * *n_r the line without its line end (in s->line or in rbuf: valid until the next read). */
static int finish_line(struct stream *s, const char *p, size_t n, const char **p_r, size_t *n_r)
{
    int r = 0;
    if (!s->discarding && s->line.len) {
        buf_append(&s->line, p, n);
        p = s->line.s;
        n = s->line.len;
    }
    s->bare_lf = !(n && p[n - 1] == '\r');
    if (!s->bare_lf) n--;
    if (s->discarding || n > s->max_line) {
        r = CF_E_LIMIT;
        p = "";
        n = 0;
    }
    s->discarding = 0;
    buf_reset(&s->line);        /* keeps the bytes: *p_r stays good until the next read */
    *p_r = p;
    *n_r = n;
    return r;
}

int stream_read_line_ref(struct stream *s, const char **p_r, size_t *n_r)
{
    for (;;) {
        char *start = s->rbuf + s->rpos;
        size_t n = s->rlen - s->rpos;
        char *lf = n ? memchr(start, '\n', n) : NULL;
        if (lf) {
            size_t len = (size_t)(lf - start);
            s->rpos += len + 1;
            return finish_line(s, start, len, p_r, n_r);
        }
        if (n) {
            /* no LF yet: carry the partial line (max line + 1 leaves room for its CR) */
            if (!s->discarding) {
                if (s->line.len + n > s->max_line + 1) {
                    s->discarding = 1;
                    buf_reset(&s->line);
                } else {
                    buf_append(&s->line, start, n);
                }
            }
            s->rpos = s->rlen = 0;
        }
        int r = fill(s, read_deadline(s));
        if (r < 0) {
            if (r != CF_E_TIMEOUT && r != CF_E_SHUTDOWN) {
                buf_reset(&s->line);   /* an unfinished line is never returned */
                s->discarding = 0;
            }
            return r;
        }
    }
}

int stream_read_line(struct stream *s, struct buf *out)
{
    const char *p;
    size_t n;
    int r = stream_read_line_ref(s, &p, &n);
    if (r < 0) return r;
    buf_reset(out);
    if (n && buf_append(out, p, n) < 0) return CF_E_LIMIT;
    return 0;
}

/* next_chunk: buffered input in stream order (the carried partial line first), reading more
 * when nothing is buffered. 0 with *p, *n set (n > 0), or CF_E_*. */
static int next_chunk(struct stream *s, const char **p, size_t *n)
{
    s->discarding = 0;
    if (s->line.len) {
        *p = s->line.s;
        *n = s->line.len;
        return 0;
    }
    if (s->rpos == s->rlen) {
        int r = fill(s, read_deadline(s));
        if (r < 0) return r;
    }
    *p = s->rbuf + s->rpos;
    *n = s->rlen - s->rpos;
    return 0;
}

static void consume(struct stream *s, size_t n)
{
    if (s->line.len) buf_consume(&s->line, n);
    else s->rpos += n;
}

int stream_read_exact(struct stream *s, size_t n, struct buf *out)
{
    if (out->cap && (n > out->cap || out->len > out->cap - n)) return CF_E_LIMIT;
    size_t old_len = out->len;
    while (n) {
        const char *p;
        size_t k;
        int r = next_chunk(s, &p, &k);
        if (r < 0) {
            buf_truncate(out, old_len);
            return r;
        }
        if (k > n) k = n;
        buf_append(out, p, k);
        consume(s, k);
        n -= k;
    }
    return 0;
}

int stream_read_to_fd(struct stream *s, size_t n, int fd)
{
    while (n) {
        const char *p;
        size_t k;
        int r = next_chunk(s, &p, &k);
        if (r < 0) return r;
        if (k > n) k = n;
        if (write_all(fd, p, k) < 0) return io_failed("write_to_fd", errno);
        consume(s, k);
        n -= k;
    }
    return 0;
}

int stream_skip(struct stream *s, size_t n)
{
    while (n) {
        const char *p;
        size_t k;
        int r = next_chunk(s, &p, &k);
        if (r < 0) return r;
        if (k > n) k = n;
        consume(s, k);
        n -= k;
    }
    return 0;
}

int stream_wait_readable(struct stream *s, int extra_fd, int timeout_ms)
{
    if (stream_pending(s)) return STREAM_WAIT_INPUT;
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int ready = 0, polled = 0;
    for (;;) {
        /* a read that does not wait (deadline 0 has passed) comes first, every time: poll()
         * cannot see bytes OpenSSL already holds (a second record read with the first, or the
         * rest of one larger than our buffer), only a read finds them */
        int r = fill(s, 0);
        if (r > 0) return ready | STREAM_WAIT_INPUT;
        if (r != CF_E_TIMEOUT) return r;
        if (ready) return ready;
        long long now = now_ms();
        if (s->deadline >= 0 && (deadline < 0 || s->deadline < deadline)) deadline = s->deadline;
        int slice = STREAM_POLL_SLICE_MS;
        if (deadline >= 0) {
            if (deadline <= now && polled) return 0;   /* timeout 0 still looks once */
            if (deadline - now < slice) slice = deadline > now ? (int)(deadline - now) : 0;
        }
        polled = 1;
        struct pollfd pf[2] = { { .fd = s->fd, .events = s->rwant ? s->rwant : POLLIN },
                                { .fd = extra_fd, .events = POLLIN } };
        int n = poll(pf, extra_fd >= 0 ? 2 : 1, slice);
        if (n < 0 && errno != EINTR) return io_failed("poll", errno);
        /* any revents on the extra fd (POLLERR too) is the caller's to look at */
        if (n > 0 && extra_fd >= 0 && pf[1].revents) ready = STREAM_WAIT_EXTRA;
        /* the loop's read sees the interrupt flag, the socket's input or its error */
    }
}

/* ---- writing ---- */

/* raw_write: send all of p, waiting for the socket; CF_E_TIMEOUT when no byte is accepted for
 * timeout seconds. Ignores the interrupt flag on purpose (BYE must go out during shutdown). */
static int raw_write_loop(struct stream *s, const char *p, size_t n, int timeout, int more_after)
{
    long long deadline = now_ms() + (long long)timeout * 1000;
    while (n) {
        short want = POLLOUT;
        if (s->ssl) {
            size_t done = 0;
            ERR_clear_error();
            errno = 0;
            /* SSL_MODE_ENABLE_PARTIAL_WRITE: one record per call; a retry after WANT_WRITE
             * finishes the same record first, with the same n */
            s->tls_more = n > TLS_RECORD || more_after;
            int r = SSL_write_ex(s->ssl, p, n, &done);
            if (r > 0) {
                p += done;
                n -= done;
                s->bytes_out += done;
                deadline = now_ms() + (long long)timeout * 1000;
                continue;
            }
            int saved = errno;
            int e = SSL_get_error(s->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE) want = POLLOUT;
            else if (e == SSL_ERROR_WANT_READ) want = POLLIN;
            else return tls_failed(s, "write", e, saved);
        } else {
            ssize_t w = sock_write(s, p, n);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
                s->bytes_out += (unsigned long long)w;
                deadline = now_ms() + (long long)timeout * 1000;
                continue;
            }
            if (w < 0 && errno == EINTR) continue;
            if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                return io_failed("write", w == 0 ? EPIPE : errno);
        }
        int r = wait_fd(s, want, deadline, 0);
        if (r == CF_E_TIMEOUT) log_info("stream_write_timeout", "seconds=%d", timeout);
        if (r < 0) return r;
    }
    return 0;
}

static int raw_write(struct stream *s, const char *p, size_t n, int timeout)
{
    int r = raw_write_loop(s, p, n, timeout, 0);
    s->tls_more = 0;
    return r;
}

struct zsink_arg {
    struct stream *s;
    int timeout;
};

static int zsink(void *arg, const char *p, size_t n)
{
    struct zsink_arg *a = arg;
    return raw_write(a->s, p, n, a->timeout);
}

/* out_write: p[0, n) to the transport, through the deflate layer when it is active; flush
 * ends with a sync flush there, so the client can read every byte written so far (RFC 4978
 * section 4: a response, e.g. an IDLE update or a tagged reply, must not wait for more). */
static int out_write(struct stream *s, const char *p, size_t n, int flush, int timeout)
{
    if (!s->z) return n ? raw_write(s, p, n, timeout) : 0;
    struct zsink_arg a = { s, timeout };
    return zlayer_deflate(s->z, p, n, flush, zsink, &a);
}

/* drain: write out the buffer; sync flush the deflate layer only when flush (a full buffer in
 * the middle of a response needs none: the response's own stream_flush follows). */
static int drain(struct stream *s, int flush)
{
    if (s->werr) return s->werr;
    if (!s->wlen && !(flush && s->z && zlayer_unflushed(s->z))) return 0;
    int r = out_write(s, s->wbuf, s->wlen, flush, write_timeout(s));
    s->wlen = 0;
    if (r < 0) s->werr = r;
    return r;
}

int stream_flush(struct stream *s) { return drain(s, 1); }

/* send_nowait: one pass of non-blocking sends of p[0, n); the bytes sent, or a negative
 * error (sticky). The socket is non-blocking (stream_new). */
static long long send_nowait(struct stream *s, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = sock_write(s, p + done, n - done);
        if (w > 0) {
            done += (size_t)w;
            s->bytes_out += (unsigned long long)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        s->werr = io_failed("write", w == 0 ? EPIPE : errno);
        return s->werr;
    }
    return (long long)done;
}

long long stream_write_nowait(struct stream *s, const void *p, size_t n)
{
    if (s->werr) return s->werr;
    if (s->ssl || s->z) return 0;
    if (s->wlen) {
        long long w = send_nowait(s, s->wbuf, s->wlen);
        if (w < 0) return w;
        memmove(s->wbuf, s->wbuf + w, s->wlen - (size_t)w);
        s->wlen -= (size_t)w;
        if (s->wlen) return 0;
    }
    return send_nowait(s, p, n);
}

/* tls_write_through: n bytes that do not fit in the buffer, under TLS without compression,
 * in whole records: the buffer's last record is completed from p, the buffer written, then
 * p's whole records straight from p (never copied), and its tail (less than a record) kept in
 * the buffer for what the response writes next. Draining the buffer as it stood, then p,
 * made a short record (and a system call) at each seam: a FETCH line's "{N}" prefix or a POP3
 * "+OK" line before a large message went out alone, 12% of the records in a FETCH 1:*
 * BODY[] of mailbench's corpus, and every message's tail record was cut short. */
static int tls_write_through(struct stream *s, const char *p, size_t n)
{
    size_t top = (TLS_RECORD - s->wlen % TLS_RECORD) % TLS_RECORD;   /* <= room < n */
    memcpy(s->wbuf + s->wlen, p, top);
    s->wlen += top;
    p += top;
    n -= top;
    size_t direct = n - n % TLS_RECORD;
    int timeout = write_timeout(s);
    int r = 0;
    if (s->wlen) {
        /* the buffer's records and p's leave as one train: MSG_MORE on all but the last */
        r = raw_write_loop(s, s->wbuf, s->wlen, timeout, direct > 0);
        s->wlen = 0;
    }
    if (!r && direct) r = raw_write_loop(s, p, direct, timeout, 0);
    s->tls_more = 0;
    if (r < 0) {
        s->werr = r;
        return r;
    }
    memcpy(s->wbuf, p + direct, n - direct);
    s->wlen = n - direct;
    return 0;
}

int stream_write(struct stream *s, const void *p, size_t n)
{
    if (s->werr) return s->werr;
    if (n == 0) return 0;
    if (n <= STREAM_BUFSIZE - s->wlen) {
        memcpy(s->wbuf + s->wlen, p, n);
        s->wlen += n;
        return 0;
    }
    if (s->ssl && !s->z) return tls_write_through(s, p, n);
    int r = drain(s, 0);
    if (r < 0) return r;
    if (n < STREAM_BUFSIZE) {
        memcpy(s->wbuf, p, n);
        s->wlen = n;
        return 0;
    }
    r = out_write(s, p, n, 0, write_timeout(s));   /* bigger than the buffer: straight out */
    if (r < 0) s->werr = r;
    return r;
}

/* raw_writev: send all of v[0, n) on a plain socket (v is consumed), waiting for the socket
 * as raw_write does. */
static int raw_writev(struct stream *s, struct iovec *v, int n, int timeout)
{
    long long deadline = now_ms() + (long long)timeout * 1000;
    while (n) {
        struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)n };
        ssize_t w = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            s->bytes_out += (unsigned long long)w;
            size_t left = (size_t)w;
            while (n && left >= v->iov_len) {
                left -= v->iov_len;
                v++;
                n--;
            }
            if (n) {
                v->iov_base = (char *)v->iov_base + left;
                v->iov_len -= left;
            }
            deadline = now_ms() + (long long)timeout * 1000;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return io_failed("write", w == 0 ? EPIPE : errno);
        int r = wait_fd(s, POLLOUT, deadline, 0);
        if (r == CF_E_TIMEOUT) log_info("stream_write_timeout", "seconds=%d", timeout);
        if (r < 0) return r;
    }
    return 0;
}

#define STREAM_IOV_MAX 64           /* pieces per sendmsg, besides the buffer */

int stream_writev(struct stream *s, const struct iovec *iov, int n)
{
    if (s->werr) return s->werr;
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    if (total <= STREAM_BUFSIZE - s->wlen || s->ssl || s->z || !s->is_socket) {
        for (int i = 0; i < n; i++) {
            int r = stream_write(s, iov[i].iov_base, iov[i].iov_len);
            if (r) return r;
        }
        return 0;
    }
    while (n > 0) {
        struct iovec v[1 + STREAM_IOV_MAX];
        int k = 0, used = 0;
        if (s->wlen) v[k++] = (struct iovec){ s->wbuf, s->wlen };
        for (; used < n && used < STREAM_IOV_MAX; used++)
            if (iov[used].iov_len) v[k++] = iov[used];
        int r = raw_writev(s, v, k, write_timeout(s));
        s->wlen = 0;
        if (r < 0) {
            s->werr = r;
            return r;
        }
        iov += used;
        n -= used;
    }
    return 0;
}

int stream_can_sendfile(const struct stream *s) { return s->is_socket && !s->ssl && !s->z; }

int stream_sendfile(struct stream *s, int fd, off_t off, size_t len)
{
    if (s->werr) return s->werr;
    if (!stream_can_sendfile(s)) return CF_E_INTERNAL;
    int timeout = write_timeout(s);
    long long deadline = now_ms() + (long long)timeout * 1000;
    int r = 0;
    size_t done = 0;
    while (done < s->wlen) {                /* the buffer, held back for the file's bytes */
        ssize_t w = send(s->fd, s->wbuf + done, s->wlen - done, MSG_NOSIGNAL | MSG_MORE);
        if (w > 0) {
            done += (size_t)w;
            s->bytes_out += (unsigned long long)w;
            deadline = now_ms() + (long long)timeout * 1000;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            r = io_failed("write", w == 0 ? EPIPE : errno);
            goto done;
        }
        if ((r = wait_fd(s, POLLOUT, deadline, 0)) < 0) goto done;
    }
    s->wlen = 0;
    while (len) {
        ssize_t w = sendfile(s->fd, fd, &off, len);
        if (w > 0) {
            len -= (size_t)w;
            s->bytes_out += (unsigned long long)w;
            deadline = now_ms() + (long long)timeout * 1000;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) {                       /* the file is shorter than it was said to be */
            log_warn("stream_sendfile_short", "missing=%zu", len);
            r = CF_E_IO;
            goto done;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            r = io_failed("sendfile", errno);
            goto done;
        }
        if ((r = wait_fd(s, POLLOUT, deadline, 0)) < 0) goto done;
    }
done:
    if (r == CF_E_TIMEOUT) log_info("stream_write_timeout", "seconds=%d", timeout);
    if (r < 0) {
        s->wlen = 0;
        s->werr = r;
    }
    return r;
}

int stream_puts(struct stream *s, const char *str) { return stream_write(s, str, strlen(str)); }

int stream_printf(struct stream *s, const char *fmt, ...)
{
    if (s->werr) return s->werr;
    va_list ap;
    size_t room = STREAM_BUFSIZE - s->wlen;
    va_start(ap, fmt);
    int k = vsnprintf(s->wbuf + s->wlen, room, fmt, ap);   /* writes only past wlen */
    va_end(ap);
    if (k < 0) return CF_E_INTERNAL;
    if ((size_t)k < room) {
        s->wlen += (size_t)k;
        return 0;
    }
    struct buf b = BUF_INIT;
    va_start(ap, fmt);
    int r = buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (r == 0) r = stream_write(s, b.s, b.len);
    buf_fini(&b);
    return r;
}

/* ---- life cycle ---- */

struct stream *stream_new(int fd)
{
    struct stream *s = xzmalloc(sizeof *s);
    s->fd = fd;
    s->max_line = STREAM_DEFAULT_MAX_LINE;
    s->deadline = -1;
    s->rbuf = xmalloc(STREAM_BUFSIZE);
    s->wbuf = xmalloc(STREAM_BUFSIZE);
    buf_init(&s->line);

    int type;
    socklen_t tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0) {
        s->is_socket = 1;
        struct sockaddr_storage ss;
        socklen_t slen = sizeof ss;
        if (type == SOCK_STREAM && getsockname(fd, (struct sockaddr *)&ss, &slen) == 0 &&
            (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
            /* replies are written whole by stream_flush; Nagle would only delay them */
            int one = 1;
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
                log_warn("setsockopt_failed", "option=TCP_NODELAY errno=%s",
                         log_quote(strerror(errno)));
        }
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        log_warn("fcntl_failed", "op=O_NONBLOCK errno=%s", log_quote(strerror(errno)));
    return s;
}

void stream_free(struct stream **sp)
{
    struct stream *s = *sp;
    if (!s) return;
    if ((s->wlen || (s->z && zlayer_unflushed(s->z))) && !s->werr) {
        int t = write_timeout(s);
        out_write(s, s->wbuf, s->wlen, 1,
                  t < STREAM_FREE_FLUSH_TIMEOUT ? t : STREAM_FREE_FLUSH_TIMEOUT);
    }
    zlayer_free(&s->z);
    if (s->ssl) {
        /* one non-blocking attempt to send close_notify; we do not wait for the peer's */
        if (!s->werr && SSL_is_init_finished(s->ssl)) {
            ERR_clear_error();
            SSL_shutdown(s->ssl);
        }
        SSL_free(s->ssl);
        ERR_clear_error();
    }
    if (s->fd >= 0) close(s->fd);
    free(s->rbuf);
    free(s->wbuf);
    buf_fini(&s->line);
    free(s);
    *sp = NULL;
}

void stream_set_timeout(struct stream *s, long long seconds)
{
    /* a duration from the config is a long long; past INT_MAX seconds (68 years) it means
     * "never" anyway, and a plain cast could turn it negative, i.e. no timeout at all */
    s->timeout = seconds <= 0 ? 0 : seconds > INT_MAX ? INT_MAX : (int)seconds;
}

void stream_set_deadline(struct stream *s, long long seconds)
{
    if (seconds <= 0) {
        s->deadline = -1;
        return;
    }
    if (seconds > INT_MAX) seconds = INT_MAX;
    s->deadline = now_ms() + seconds * 1000;
}

int stream_has_deadline(const struct stream *s) { return s->deadline >= 0; }

int stream_deadline_passed(const struct stream *s)
{
    return s->deadline >= 0 && now_ms() >= s->deadline;
}
void stream_set_max_line(struct stream *s, size_t max) { s->max_line = max; }
int stream_fd(const struct stream *s) { return s->fd; }
unsigned long long stream_bytes_in(const struct stream *s) { return s->bytes_in; }
unsigned long long stream_bytes_out(const struct stream *s) { return s->bytes_out; }

/* ---- TLS ---- */

static int tls_ctx_fail(SSL_CTX *c, struct buf *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int tls_ctx_fail(SSL_CTX *c, struct buf *err, const char *fmt, ...)
{
    char reasons[400];
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    openssl_reasons(reasons, sizeof reasons);
    if (err) buf_printf(err, "%s%s%s", what, reasons[0] ? ": " : "", reasons);
    log_err("tls_config_failed", "error=%s", log_quote(what));
    SSL_CTX_free(c);
    return CF_E_TLS;
}

int tls_ctx_new(const char *cert, const char *key, const char *ciphers, const char *min_version,
                struct tls_ctx **out, struct buf *err)
{
    *out = NULL;
    ERR_clear_error();
    int version;
    if (!min_version || !*min_version || !strcmp(min_version, "1.2") ||
        !strcasecmp(min_version, "TLSv1.2"))
        version = TLS1_2_VERSION;
    else if (!strcmp(min_version, "1.3") || !strcasecmp(min_version, "TLSv1.3"))
        version = TLS1_3_VERSION;
    else
        return tls_ctx_fail(NULL, err, "unsupported TLS minimum version \"%s\" (use 1.2 or 1.3)",
                            min_version);
    if (!cert || !*cert || !key || !*key)
        return tls_ctx_fail(NULL, err, "a TLS certificate and key file are both required");

    SSL_CTX *c = SSL_CTX_new(TLS_server_method());
    if (!c) return tls_ctx_fail(NULL, err, "cannot create a TLS context");
    if (SSL_CTX_set_min_proto_version(c, version) != 1)
        return tls_ctx_fail(c, err, "cannot set the TLS minimum version %s", min_version);
    /* No compression (CRIME), no renegotiation (a cheap DoS and an old attack surface);
     * an unexpected close without close_notify is plain end of file, as mail clients do it. */
    /* L12: no stateless session tickets. Their key is made once per SSL_CTX, which lives as
     * long as the zygote, and is never rotated: one stolen key would decrypt every TLS 1.2
     * session resumed with it. Without tickets resumption needs the per-process session cache,
     * which is rare in a prefork server, and a full handshake costs little next to a login. */
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                           SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF |
                           SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                        SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_dh_auto(c, 1);
    static const unsigned char sid_ctx[] = "coffer";
    SSL_CTX_set_session_id_context(c, sid_ctx, sizeof sid_ctx - 1);
    if (ciphers && *ciphers && SSL_CTX_set_cipher_list(c, ciphers) != 1)
        return tls_ctx_fail(c, err, "invalid TLS cipher list \"%s\"", ciphers);
    if (SSL_CTX_use_certificate_chain_file(c, cert) != 1)
        return tls_ctx_fail(c, err, "cannot load TLS certificate %s", cert);
    if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1)
        return tls_ctx_fail(c, err, "cannot load TLS private key %s (or it does not match "
                            "certificate %s)", key, cert);
    if (SSL_CTX_check_private_key(c) != 1)
        return tls_ctx_fail(c, err, "private key %s does not match certificate %s", key, cert);

    struct tls_ctx *t = xzmalloc(sizeof *t);
    t->ctx = c;
    *out = t;
    return 0;
}

void tls_ctx_free(struct tls_ctx **ctx)
{
    if (!*ctx) return;
    SSL_CTX_free((*ctx)->ctx);
    xfree_ptr(ctx);
}

/* tls_dead: after a failed handshake nothing more may pass in either direction. */
static int tls_dead(struct stream *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    ERR_clear_error();
    s->rerr = CF_E_TLS;
    s->werr = CF_E_TLS;
    s->wlen = 0;
    return CF_E_TLS;
}

int stream_start_tls(struct stream *s, struct tls_ctx *ctx)
{
    s->tls_error[0] = '\0';
    if (s->ssl || s->z) {
        snprintf(s->tls_error, sizeof s->tls_error,
                 s->ssl ? "TLS is already active" : "TLS cannot start under compression");
        return CF_E_TLS;
    }
    if (s->rerr || s->werr) {
        snprintf(s->tls_error, sizeof s->tls_error, "the connection has already failed");
        return tls_dead(s);
    }
    if (stream_flush(s) < 0) {
        snprintf(s->tls_error, sizeof s->tls_error, "cannot flush plaintext before TLS");
        return tls_dead(s);
    }
    /* RFC 3207 section 4.2, RFC 2595 section 3.1: anything the client pipelined after the
     * STARTTLS command was sent before TLS protected it, so it must not be acted on. */
    size_t dropped = stream_pending(s);
    buf_reset(&s->line);
    s->rpos = s->rlen = 0;
    s->discarding = 0;
    if (dropped) log_notice("starttls_input_discarded", "bytes=%zu", dropped);

    pthread_once(&g_bio_once, bio_method_init);
    ERR_clear_error();
    BIO *bio = g_bio_method ? BIO_new(g_bio_method) : NULL;
    s->ssl = bio ? SSL_new(ctx->ctx) : NULL;
    if (!s->ssl) {
        BIO_free(bio);
        openssl_reasons(s->tls_error, sizeof s->tls_error);
        log_err("tls_failed", "op=setup reason=%s", log_quote(s->tls_error));
        return tls_dead(s);
    }
    BIO_set_data(bio, s);
    BIO_set_init(bio, 1);
    s->bio_eof = 0;
    SSL_set_bio(s->ssl, bio, bio);   /* the SSL owns the one reference */
    SSL_set_accept_state(s->ssl);

    int timeout = write_timeout(s);  /* the idle timeout, or 60 s */
    long long deadline = now_ms() + (long long)timeout * 1000;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_do_handshake(s->ssl);
        if (r == 1) break;
        int saved = errno;
        int e = SSL_get_error(s->ssl, r);
        short want;
        if (e == SSL_ERROR_WANT_READ) {
            want = POLLIN;
        } else if (e == SSL_ERROR_WANT_WRITE) {
            want = POLLOUT;
        } else {
            tls_failed(s, "handshake", e, saved);
            return tls_dead(s);
        }
        int w = wait_fd(s, want, deadline, 1);
        if (w < 0) {
            snprintf(s->tls_error, sizeof s->tls_error, "%s",
                     w == CF_E_TIMEOUT ? "handshake timed out"
                     : w == CF_E_SHUTDOWN ? "handshake interrupted by shutdown" : "poll failed");
            log_info("tls_failed", "op=handshake reason=%s", log_quote(s->tls_error));
            return tls_dead(s);
        }
    }
    snprintf(s->tls_info, sizeof s->tls_info, "%s %s", SSL_get_version(s->ssl),
             SSL_get_cipher_name(s->ssl));
    return dropped ? 1 : 0;
}

int stream_is_tls(const struct stream *s) { return s->ssl != NULL; }
int stream_line_bare_lf(const struct stream *s) { return s->bare_lf; }

int stream_tls_ssf(const struct stream *s)
{
    /* L12: the negotiated cipher's secret bits (SASL's "security strength factor") */
    if (!s->ssl) return 0;
    int bits = SSL_get_cipher_bits(s->ssl, NULL);
    return bits > 0 ? bits : 1;
}
const char *stream_tls_info(const struct stream *s) { return s->ssl ? s->tls_info : ""; }
const char *stream_tls_error(const struct stream *s) { return s->tls_error; }

/* ---- COMPRESS=DEFLATE (the layer is stream-deflate.c) ---- */

int stream_start_deflate(struct stream *s)
{
    if (s->z) return CF_E_EXISTS;
    if (s->rerr) return s->rerr;
    int r = stream_flush(s);   /* the tagged OK goes out uncompressed (RFC 4978 section 3) */
    if (r < 0) return r;
    s->z = zlayer_new();
    if (!s->z) {
        log_err("compress_failed", "op=init reason=%s", log_quote("zlib cannot allocate"));
        return CF_E_INTERNAL;
    }
    /* whatever the client sent after the COMPRESS command line is already compressed: it
     * moves, in stream order, into the layer's input */
    if (!s->discarding) zlayer_in_push(s->z, s->line.s, s->line.len);
    zlayer_in_push(s->z, s->rbuf + s->rpos, s->rlen - s->rpos);
    buf_reset(&s->line);
    s->discarding = 0;
    s->rpos = s->rlen = 0;
    return 0;
}

int stream_is_compressed(const struct stream *s) { return s->z != NULL; }

int stream_compress_stats(const struct stream *s, unsigned long long *plain_in,
                          unsigned long long *wire_in, unsigned long long *plain_out,
                          unsigned long long *wire_out)
{
    struct zlayer_stats st = { 0, 0, 0, 0 };
    if (s->z) zlayer_stats(s->z, &st);
    *plain_in = st.plain_in;
    *wire_in = st.wire_in;
    *plain_out = st.plain_out;
    *wire_out = st.wire_out;
    return s->z != NULL;
}
