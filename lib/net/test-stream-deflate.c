/* test-stream-deflate.c: unit tests for the COMPRESS=DEFLATE layer (stream-deflate.c) and its
 * hook in stream.c: both ends of a socketpair as compressed streams, sync flushes, input
 * already buffered when compression starts, a decompression bomb against the line limit,
 * corrupt input, and the counters. */
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "net/stream-deflate.h"
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

static void make_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
}

static unsigned char pattern(size_t i) { return (unsigned char)("mail text "[i % 10] + (i >> 16)); }

/* raw_deflate: p[0, n) as one raw deflate stream piece ending in a sync flush (malloc'd). */
static unsigned char *raw_deflate(z_stream *zs, const void *p, size_t n, size_t *outlen)
{
    size_t cap = deflateBound(zs, n) + 64;
    unsigned char *out = xmalloc(cap);
    zs->next_in = (Bytef *)(uintptr_t)p;
    zs->avail_in = (uInt)n;
    zs->next_out = out;
    zs->avail_out = (uInt)cap;
    int r = deflate(zs, Z_SYNC_FLUSH);
    UNIT_CHECK(r == Z_OK && zs->avail_in == 0);
    *outlen = cap - zs->avail_out;
    return out;
}

static void write_all_fd(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0) exit(3);
        c += w;
        n -= (size_t)w;
    }
}

/* both ends compressed: lines, a big binary block (past the 64 KiB buffer, so it takes the
 * unbuffered path) and a reply the other way, with a child process as the peer */
static void test_round_trip(void)
{
    int sv[2];
    make_pair(sv);
    size_t big = 300 * 1024;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        struct stream *s = stream_new(sv[1]);
        stream_set_timeout(s, 10);
        int bad = stream_start_deflate(s) != 0;
        bad |= stream_puts(s, "hello\r\n") != 0;
        char *blob = xmalloc(big);
        for (size_t i = 0; i < big; i++) blob[i] = (char)pattern(i);
        bad |= stream_write(s, blob, big) != 0;
        bad |= stream_puts(s, "bye\r\n") != 0;
        bad |= stream_flush(s) != 0;
        struct buf line = BUF_INIT;
        bad |= stream_read_line(s, &line) != 0;
        bad |= strcmp(buf_cstr(&line), "thanks") != 0;
        buf_fini(&line);
        free(blob);
        stream_free(&s);
        _exit(bad);
    }
    close(sv[1]);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 10);
    UNIT_EQ_INT(stream_start_deflate(s), 0);
    UNIT_EQ_INT(stream_start_deflate(s), CF_E_EXISTS);
    UNIT_CHECK(stream_is_compressed(s));
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "hello");
    buf_reset(&b);
    UNIT_EQ_INT(stream_read_exact(s, big, &b), 0);
    int same = b.len == big;
    for (size_t i = 0; same && i < big; i++) same = (unsigned char)b.s[i] == pattern(i);
    UNIT_CHECK(same);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "bye");
    UNIT_EQ_INT(stream_puts(s, "thanks\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    int st = 0;
    waitpid(pid, &st, 0);
    UNIT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unsigned long long pi, wi, po, wo;
    UNIT_EQ_INT(stream_compress_stats(s, &pi, &wi, &po, &wo), 1);
    UNIT_EQ_INT(pi, 7 + big + 5);
    UNIT_CHECK(wi > 0 && wi < pi / 4);           /* the pattern compresses well */
    UNIT_EQ_INT(po, 8);
    UNIT_CHECK(wo > 0);
    UNIT_EQ_INT(stream_bytes_in(s), wi);          /* the transport saw compressed bytes only */
    buf_fini(&b);
    stream_free(&s);
}

/* every flush ends in a sync flush: the peer can read the line at once, with the connection
 * still open (an IDLE update, a tagged reply); input sent behind the line that turned
 * compression on is compressed input */
static void test_sync_flush_and_pending(void)
{
    int sv[2];
    make_pair(sv);
    z_stream zc;
    memset(&zc, 0, sizeof zc);
    UNIT_CHECK(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t n;
    unsigned char *piece = raw_deflate(&zc, "a1 NOOP\r\n", 9, &n);
    char msg[256];
    memcpy(msg, "z COMPRESS DEFLATE\r\n", 20);
    memcpy(msg + 20, piece, n);
    write_all_fd(sv[1], msg, 20 + n);
    free(piece);

    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 5);
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "z COMPRESS DEFLATE");
    UNIT_EQ_INT(stream_puts(s, "z OK\r\n"), 0);
    UNIT_EQ_INT(stream_start_deflate(s), 0);
    /* the OK went out in clear */
    char got[64];
    ssize_t k = read(sv[1], got, 6);
    UNIT_EQ_INT(k, 6);
    UNIT_CHECK(!memcmp(got, "z OK\r\n", 6));
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "a1 NOOP");

    z_stream zd;
    memset(&zd, 0, sizeof zd);
    UNIT_CHECK(inflateInit2(&zd, -15) == Z_OK);
    for (int round = 0; round < 3; round++) {
        UNIT_EQ_INT(stream_printf(s, "* %d EXISTS\r\n", round), 0);
        UNIT_EQ_INT(stream_flush(s), 0);
        unsigned char wire[256];
        k = read(sv[1], wire, sizeof wire);   /* all of it is there after the flush */
        UNIT_CHECK(k >= 4 && !memcmp(wire + k - 4, "\x00\x00\xff\xff", 4));
        char plain[64];
        zd.next_in = wire;
        zd.avail_in = (uInt)(k > 0 ? k : 0);
        zd.next_out = (Bytef *)plain;
        zd.avail_out = sizeof plain;
        UNIT_CHECK(inflate(&zd, Z_SYNC_FLUSH) == Z_OK);
        char want[32];
        int wl = snprintf(want, sizeof want, "* %d EXISTS\r\n", round);
        UNIT_EQ_INT(sizeof plain - zd.avail_out, wl);
        UNIT_CHECK(!memcmp(plain, want, (size_t)wl));
    }
    /* a flush with nothing new writes nothing */
    UNIT_EQ_INT(stream_flush(s), 0);
    UNIT_EQ_INT(recv(sv[1], got, sizeof got, MSG_DONTWAIT), -1);
    UNIT_EQ_INT(stream_wait_readable(s, -1, 0), 0);
    inflateEnd(&zd);
    deflateEnd(&zc);
    buf_fini(&b);
    stream_free(&s);
    close(sv[1]);
}

/* 8 MB of one line in ~8 KB of deflate: CF_E_LIMIT, as in clear, and the next line is read;
 * the stream never holds more than its buffer and max line */
static void test_bomb(void)
{
    int sv[2];
    make_pair(sv);
    z_stream zc;
    memset(&zc, 0, sizeof zc);
    UNIT_CHECK(deflateInit2(&zc, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t big = 8 * 1024 * 1024;
    char *line = xmalloc(big + 20);
    memset(line, 'x', big);
    memcpy(line + big, "\r\nnext\r\n", 8);
    size_t n;
    unsigned char *wire = raw_deflate(&zc, line, big + 8, &n);
    UNIT_CHECK(n < 64 * 1024);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        write_all_fd(sv[1], wire, n);
        _exit(0);
    }
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 10);
    stream_set_max_line(s, 1000);
    UNIT_EQ_INT(stream_start_deflate(s), 0);
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_LIMIT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "next");
    unsigned long long pi, wi, po, wo;
    stream_compress_stats(s, &pi, &wi, &po, &wo);
    UNIT_EQ_INT(pi, big + 8);
    UNIT_EQ_INT(wi, n);
    waitpid(pid, NULL, 0);
    free(wire);
    free(line);
    deflateEnd(&zc);
    buf_fini(&b);
    stream_free(&s);
    close(sv[1]);
}

/* corrupt input: CF_E_CORRUPT, sticky, and the stream can still write (a BYE) */
static void test_corrupt(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 5);
    UNIT_EQ_INT(stream_start_deflate(s), 0);
    write_all_fd(sv[1], "\xff\xff\xff\xff not deflate\r\n", 17);
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_CORRUPT);
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_CORRUPT);
    UNIT_EQ_INT(stream_wait_readable(s, -1, 0), CF_E_CORRUPT);
    UNIT_EQ_INT(stream_puts(s, "* BYE\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    char wire[64];
    UNIT_CHECK(read(sv[1], wire, sizeof wire) > 0);
    buf_fini(&b);
    stream_free(&s);
    close(sv[1]);
}

/* the layer alone: bounded output per call, a final block as the end, in_push growing */
static void test_layer(void)
{
    struct zlayer *z = zlayer_new();
    UNIT_CHECK(z != NULL);
    z_stream zc;
    memset(&zc, 0, sizeof zc);
    UNIT_CHECK(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t big = 1024 * 1024, n;
    char *plain = xmalloc(big);
    for (size_t i = 0; i < big; i++) plain[i] = (char)pattern(i);
    zc.next_in = (Bytef *)plain;
    zc.avail_in = (uInt)big;
    size_t cap = deflateBound(&zc, big);
    unsigned char *wire = xmalloc(cap);
    zc.next_out = wire;
    zc.avail_out = (uInt)cap;
    UNIT_CHECK(deflate(&zc, Z_FINISH) == Z_STREAM_END);
    n = cap - zc.avail_out;
    zlayer_in_push(z, (char *)wire, n);
    UNIT_EQ_INT(zlayer_in_pending(z), n);
    char out[1000];
    size_t total = 0;
    int same = 1, r;
    while ((r = zlayer_inflate(z, out, sizeof out)) > 0) {
        UNIT_CHECK(r <= (int)sizeof out);
        if (total + (size_t)r > big || memcmp(out, plain + total, (size_t)r)) same = 0;
        total += (size_t)r;
    }
    UNIT_EQ_INT(r, CF_E_EOF);
    UNIT_EQ_INT(total, big);
    UNIT_CHECK(same);
    UNIT_EQ_INT(zlayer_inflate(z, out, sizeof out), CF_E_EOF);
    UNIT_EQ_STR(zlayer_error(z), "");
    deflateEnd(&zc);
    free(wire);
    free(plain);
    zlayer_free(&z);
    UNIT_CHECK(z == NULL);
    zlayer_free(&z);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);
    log_init("test-stream-deflate", 1, LOG_LVL_ERR);
    test_round_trip();
    test_sync_flush_and_pending();
    test_bomb();
    test_corrupt();
    test_layer();
    UNIT_DONE();
}
