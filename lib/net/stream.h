/* stream.h: buffered, size-limited, timed protocol I/O over a socket, with TLS (implicit, or
 * STARTTLS upgraded in place). No protocol handler touches a socket or an SSL * directly.
 *
 * All reads block until data arrives, the idle timeout passes, or the process's interrupt flag
 * (stream_set_interrupt_flag) becomes non-zero. Writes are buffered until stream_flush() or
 * until the buffer fills; a handler flushes once per response.
 *
 * Implementation notes callers may rely on:
 * - The read and write buffers are 64 KiB each; a write larger than the buffer goes straight out.
 * - Over TLS (without COMPRESS) output leaves in whole 16 KiB records: a write that does not
 *   fit completes the buffer's last record, the buffer and then the write's whole records go
 *   out (records followed by more of the same write with MSG_MORE), and the tail stays
 *   buffered; only a flush's last record may be short.
 * - stream_new puts the fd in O_NONBLOCK mode (on its open file description, so a dup shares
 *   it); every wait is a poll() in slices of at most one second, so the interrupt flag is seen
 *   within a second even when no signal interrupts the poll.
 * - SIGPIPE: plain sockets are written with send(MSG_NOSIGNAL) and TLS goes through a private
 *   BIO that does the same, so a peer that has gone away gives CF_E_IO, never SIGPIPE. The
 *   stream never changes signal dispositions. (A non-socket fd is written with write(), which
 *   can raise SIGPIPE: only sockets are expected here.)
 * - Write timeout: a flush fails with CF_E_TIMEOUT when the peer accepts no byte for the idle
 *   timeout (60 s when the idle timeout is 0). Write errors are sticky: once a write failed,
 *   every later write and flush returns the same code at once. Writes ignore the interrupt
 *   flag, so a session can still say BYE while shutting down.
 * - Not thread-safe: one stream belongs to one thread. */
#ifndef COFFER_NET_STREAM_H
#define COFFER_NET_STREAM_H
#include "core/buf.h"
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct stream;
struct tls_ctx;

/* stream_new: wrap a connected socket (takes ownership of fd; closed by stream_free). Sets
 * TCP_NODELAY on TCP sockets. Default timeout 0 (none), default max line 64 KiB. */
struct stream *stream_new(int fd);
void stream_free(struct stream **s);      /* flushes what it can (waiting at most 10 s),
                                           * sends a TLS close_notify, closes the fd; NULLs *s */

/* stream_set_timeout: read idle timeout in seconds (0 = none), restarted by every byte read;
 * values past INT_MAX seconds are clamped (a config duration is a long long). */
void stream_set_timeout(struct stream *s, long long seconds);
/* stream_set_deadline: a hard deadline seconds from now (0 clears it) that no read, write,
 * flush or TLS handshake may wait past, whatever the idle timeout and however the peer trickles
 * its bytes; once it has passed, reads that need bytes from the socket return CF_E_TIMEOUT and
 * writes go out only as far as the socket takes them without waiting. Used for the pre-login
 * phase (login_timeout, counted from accept). */
void stream_set_deadline(struct stream *s, long long seconds);
int stream_has_deadline(const struct stream *s);
int stream_deadline_passed(const struct stream *s);   /* a deadline is set and has passed */
void stream_set_max_line(struct stream *s, size_t max);   /* longest line, CRLF excluded */
int stream_fd(const struct stream *s);

/* stream_set_interrupt_flag: process-wide; when *flag is non-zero while a read waits for
 * input, the read returns CF_E_SHUTDOWN (used for graceful shutdown: the caller says BYE).
 * Precisely: input already buffered is still returned; any read that needs bytes from the
 * socket returns CF_E_SHUTDOWN once the flag is set, and a blocked read notices the flag at
 * once when a signal interrupts its poll() (handler installed without SA_RESTART), else
 * within a second. The stream installs no signal handler itself. NULL disables it. */
void stream_set_interrupt_flag(volatile sig_atomic_t *flag);

/* stream_read_line: the next line, without its CRLF or bare LF, replaces out's contents.
 * Returns 0; CF_E_LIMIT when the line is longer than max line (the rest of that line is read
 * and thrown away so the next read starts on a fresh line); CF_E_EOF; CF_E_TIMEOUT;
 * CF_E_SHUTDOWN; CF_E_IO; CF_E_TLS. A line is never returned in part: bytes of an unfinished
 * line stay in the stream (after CF_E_TIMEOUT or CF_E_SHUTDOWN a retry continues the same
 * line) and are dropped at end of file. A line longer than out's cap also gives CF_E_LIMIT
 * (consumed, out left empty). A bare CR inside a line is kept as data. */
int stream_read_line(struct stream *s, struct buf *out);

/* stream_read_line_ref: stream_read_line without the copy: *p_r, *n_r the line (without its
 * line end) where the stream holds it, good only until the next read from s (for a caller that
 * copies each line once, into where it goes: LMTP DATA). Same returns (no out, so no cap). */
int stream_read_line_ref(struct stream *s, const char **p_r, size_t *n_r);

/* stream_line_bare_lf: 1 when the last line stream_read_line returned ended in a bare LF
 * rather than CRLF (LMTP's end of data must be CRLF.CRLF), else 0. */
int stream_line_bare_lf(const struct stream *s);

/* stream_read_exact: append exactly n bytes to out (out's cap, if any, is respected:
 * CF_E_LIMIT). Same errors as stream_read_line. On CF_E_LIMIT nothing is consumed (the caller
 * may stream_skip the bytes); on any other error out is restored to its old length and the
 * bytes already read are lost. */
int stream_read_exact(struct stream *s, size_t n, struct buf *out);

/* stream_read_to_fd: copy exactly n bytes from the stream to fd (for large literals); fd is
 * written with blocking write()s. 0, or the read errors above, or CF_E_IO when writing fd
 * fails (logged). */
int stream_read_to_fd(struct stream *s, size_t n, int fd);

/* stream_skip: read and throw away exactly n bytes (a literal that is refused but must be
 * consumed, such as an oversized non-synchronizing literal). Same errors as a read. */
int stream_skip(struct stream *s, size_t n);

/* stream_pending: bytes already read from the socket and buffered, not yet consumed. */
size_t stream_pending(const struct stream *s);

/* stream_wait_readable: wait, for at most timeout_ms (-1: forever; 0: just look), until the
 * stream has input or extra_fd (-1: none; the caller's, e.g. a mailbox watch for IDLE) polls
 * readable. Returns a mask: STREAM_WAIT_INPUT when input is buffered in the stream (TLS bytes
 * OpenSSL had already read included) or has arrived, STREAM_WAIT_EXTRA when extra_fd polled
 * readable (or in error), or both; 0 on timeout (or when the stream's deadline has passed);
 * CF_E_SHUTDOWN when the interrupt flag is set, CF_E_EOF, CF_E_IO, CF_E_TLS. Input already
 * buffered returns STREAM_WAIT_INPUT at once, without looking at extra_fd. Input is read into
 * the stream's buffer, never consumed; extra_fd is only polled: the caller drains it, or the
 * next call returns at once. For IDLE. */
#define STREAM_WAIT_INPUT 1
#define STREAM_WAIT_EXTRA 2
int stream_wait_readable(struct stream *s, int extra_fd, int timeout_ms);

/* Writing: 0, or (when the buffer had to be flushed) stream_flush's sticky error. May block
 * only when the buffer is full or the data is larger than it. */
int stream_write(struct stream *s, const void *p, size_t n);
int stream_puts(struct stream *s, const char *str);
int stream_printf(struct stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int stream_flush(struct stream *s);       /* 0, CF_E_IO, CF_E_TLS, CF_E_TIMEOUT */

/* stream_writev: the n pieces in order, as stream_write of each would write them (same return
 * values). When they fit in the buffer they are copied there; otherwise a plain socket gets
 * what was buffered and all the pieces in one sendmsg, so a status line, a large body and
 * its terminating line cost one system call and wake the reader once (TLS and COMPRESS
 * streams write the pieces one by one). Nothing points into the pieces after it returns. */
int stream_writev(struct stream *s, const struct iovec *iov, int n);

/* stream_can_sendfile: 1 when the stream is a plain socket (no TLS, no COMPRESS), where
 * stream_sendfile may be used; else 0. */
int stream_can_sendfile(const struct stream *s);

/* stream_sendfile: what is buffered (sent with MSG_MORE, so it leaves with the file's first
 * bytes), then len bytes of fd from offset off with sendfile(2): the file's pages go to the
 * socket without being copied through this process. Only where stream_can_sendfile (else
 * CF_E_INTERNAL, nothing written). 0 or a sticky write error as stream_flush gives; CF_E_IO
 * too when the file ends before off + len. */
int stream_sendfile(struct stream *s, int fd, off_t off, size_t len);

/* stream_write_nowait: send what the socket takes of p[0, n) right now, never waiting: first
 * what is buffered, then p straight to the socket. Returns the bytes of p sent (0 when the
 * buffer could not be emptied, or on a TLS or compressed stream, where bytes cannot be sent
 * without possibly waiting); the caller writes the rest later. A socket error is sticky, as
 * stream_flush's, and returned. For replies sent while the caller holds a lock that a slow
 * client must not be able to hold up (STORE's FETCH lines before the flush, cmd-store.c). */
long long stream_write_nowait(struct stream *s, const void *p, size_t n);

/* TLS. tls_ctx_new: a server context from PEM files; min_version "1.2" or "1.3"; ciphers may
 * be "" for OpenSSL's defaults. On failure returns CF_E_TLS with a reason in err.
 * cert may hold the whole chain (leaf first); the key must match the leaf certificate.
 * ciphers is an OpenSSL cipher list for TLS 1.2 (TLS 1.3 keeps OpenSSL's default suites);
 * NULL or "" means the defaults. NULL or "" min_version means "1.2" ("TLSv1.2"/"TLSv1.3"
 * are accepted too). Compression and renegotiation are off; session tickets are on.
 * err (may be NULL) gets text appended, e.g. "private key /x/key.pem does not match
 * certificate /x/cert.pem: key values mismatch". */
int tls_ctx_new(const char *cert, const char *key, const char *ciphers, const char *min_version,
                struct tls_ctx **out, struct buf *err);
void tls_ctx_free(struct tls_ctx **ctx);

/* stream_start_tls: server-side handshake on the stream (for implicit TLS right after accept,
 * and for STARTTLS/STLS after the "go ahead" reply has been flushed). Plaintext input that was
 * pipelined after the STARTTLS command is discarded (RFC 3207 section 4.2 / RFC 2595
 * section 3.1 injection defence) and that fact is returned as 1; 0 on success without such
 * input; CF_E_TLS on failure (the session must then be closed). */
/* Details: buffered output is flushed (in plaintext) before the handshake. The handshake
 * blocks for at most the stream's timeout (60 s when it is 0), polling the fd; a set interrupt
 * flag aborts it. On failure the reason is logged and kept for stream_tls_error(), and the
 * stream is dead: every later read or write returns CF_E_TLS (it never falls back to
 * plaintext). Calling it on a stream that is already TLS returns CF_E_TLS. */
int stream_start_tls(struct stream *s, struct tls_ctx *ctx);
int stream_is_tls(const struct stream *s);
/* stream_tls_ssf: the strength in bits of the negotiated TLS cipher (SSL_get_cipher_bits, e.g.
 * 128 or 256) for SASL's external SSF; 0 without TLS. */
int stream_tls_ssf(const struct stream *s);
const char *stream_tls_info(const struct stream *s);   /* "TLSv1.3 TLS_AES_256_GCM_SHA384" or "" */

/* stream_tls_error: why the last TLS handshake or record operation failed, as OpenSSL's
 * readable reasons ("unsupported protocol"); "" when none. Owned by the stream. */
const char *stream_tls_error(const struct stream *s);

/* stream_start_deflate: COMPRESS=DEFLATE (RFC 4978): flushes buffered output uncompressed
 * (the tagged OK), then compresses everything written after it (raw deflate, a sync flush at
 * every stream_flush) and decompresses everything read, input already buffered after the
 * command line included. Over TLS when TLS is active (compress, then encrypt). Line and
 * literal limits apply to the decompressed bytes, read in bounded steps. A corrupt compressed
 * stream makes every later read return CF_E_CORRUPT (logged once as compress_failed); writes
 * still work, so the caller can say BYE. 0; CF_E_EXISTS when already active; a flush error;
 * CF_E_INTERNAL when zlib cannot start. The layer itself is lib/net/stream-deflate.c. */
int stream_start_deflate(struct stream *s);
int stream_is_compressed(const struct stream *s);
/* stream_compress_stats: bytes since compression started, plain (uncompressed) and on the
 * wire (compressed, before TLS) each way; all 0 and returns 0 when compression is not on,
 * else 1. */
int stream_compress_stats(const struct stream *s, unsigned long long *plain_in,
                          unsigned long long *wire_in, unsigned long long *plain_out,
                          unsigned long long *wire_out);

/* Counters for logging: application bytes (plaintext, after TLS decryption) received from
 * and sent to the peer, including input later discarded by STARTTLS or over-long lines. With
 * compression on they count the compressed bytes (what crossed the transport). */
unsigned long long stream_bytes_in(const struct stream *s);
unsigned long long stream_bytes_out(const struct stream *s);

#endif
