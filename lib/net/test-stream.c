/* test-stream.c: unit tests for stream.c over socketpairs and loopback TCP, with real TLS. */
#include "core/buf.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static char g_dir[64];
static char g_cert[128], g_key[128], g_other_key[128];
static volatile sig_atomic_t g_flag;

/* ---- helpers ---- */

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
}

static unsigned char pattern(size_t i) { return (unsigned char)(i * 31 + (i >> 13)); }

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}
#define FNV_INIT 14695981039346656037ULL

static int wait_child(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

/* feeder_start: a child that writes data to fd in chunks of `chunk` bytes, then exits (closing fd). */
static pid_t feeder_start(int fd, int other, const void *data, size_t len, size_t chunk)
{
    pid_t pid = fork();
    if (pid == 0) {
        close(other);
        const char *p = data;
        while (len) {
            size_t k = len < chunk ? len : chunk;
            if (write_all(fd, p, k) < 0) _exit(1);
            p += k;
            len -= k;
        }
        _exit(0);
    }
    close(fd);
    return pid;
}

/* sink: a child that reads fd to end of file and reports the byte count and hash on a pipe. */
struct sink {
    pid_t pid;
    int result;
};

static struct sink sink_start(int fd, int other)
{
    int p[2];
    struct sink k = { -1, -1 };
    if (pipe(p) < 0) return k;
    k.pid = fork();
    if (k.pid == 0) {
        close(other);
        close(p[0]);
        static char b[65536];
        uint64_t res[2] = { 0, FNV_INIT };
        ssize_t n;
        while ((n = read(fd, b, sizeof b)) > 0 || (n < 0 && errno == EINTR)) {
            if (n < 0) continue;
            res[0] += (uint64_t)n;
            res[1] = fnv(res[1], b, (size_t)n);
        }
        if (write_all(p[1], res, sizeof res) < 0) _exit(1);
        _exit(n < 0 ? 1 : 0);
    }
    close(p[1]);
    close(fd);
    k.result = p[0];
    return k;
}

static int sink_wait(struct sink *k, uint64_t *count, uint64_t *hash)
{
    uint64_t res[2] = { 0, 0 };
    ssize_t n = read_full(k->result, res, sizeof res);
    close(k->result);
    *count = res[0];
    *hash = res[1];
    int st = wait_child(k->pid);
    return n == (ssize_t)sizeof res ? st : -1;
}

static int tcp_listen(int family, int *port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 8) < 0) {
        close(fd);
        return -1;
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                              : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

static int tcp_connect(int family, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)port);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons((uint16_t)port);
        len = sizeof *a;
    }
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* fd_read_line: a plain line read a byte at a time (so no TLS bytes are taken by mistake). */
static int fd_read_line(int fd, char *out, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r <= 0) return -1;
        if (c == '\n') break;
        if (n + 1 < size) out[n++] = c;
    }
    if (n && out[n - 1] == '\r') n--;
    out[n] = '\0';
    return 0;
}

static int fd_puts(int fd, const char *s) { return write_all(fd, s, strlen(s)); }

/* ---- certificates made at test time ---- */

static EVP_PKEY *write_key(const char *path)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    FILE *f = fopen(path, "w");
    if (!pk || !f || !PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL)) {
        fprintf(stderr, "cannot write key %s\n", path);
        exit(2);
    }
    fclose(f);
    return pk;
}

static void make_certificates(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/test-stream.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
    snprintf(g_other_key, sizeof g_other_key, "%s/other-key.pem", g_dir);
    EVP_PKEY *pk = write_key(g_key);
    EVP_PKEY_free(write_key(g_other_key));

    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (!X509_sign(x, pk, EVP_sha256())) {
        fprintf(stderr, "cannot sign certificate\n");
        exit(2);
    }
    FILE *f = fopen(g_cert, "w");
    if (!f || !PEM_write_X509(f, x)) exit(2);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static void remove_certificates(void)
{
    unlink(g_cert);
    unlink(g_key);
    unlink(g_other_key);
    rmdir(g_dir);
}

/* client_tls: in a child, a verifying TLS client over fd (trusting our certificate). */
static SSL *client_tls(int fd, int max_version)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    if (!c) return NULL;
    if (max_version) SSL_CTX_set_max_proto_version(c, max_version);
    if (SSL_CTX_load_verify_locations(c, g_cert, NULL) != 1) return NULL;
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(c);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) return NULL;
    return ssl;
}

static int ssl_puts(SSL *ssl, const char *s)
{
    int n = (int)strlen(s);
    return SSL_write(ssl, s, n) == n ? 0 : -1;
}

static int ssl_read_line(SSL *ssl, char *out, size_t size)
{
    size_t n = 0;
    for (;;) {
        char c;
        if (SSL_read(ssl, &c, 1) != 1) return -1;
        if (c == '\n') break;
        if (n + 1 < size) out[n++] = c;
    }
    if (n && out[n - 1] == '\r') n--;
    out[n] = '\0';
    return 0;
}

/* ---- plain streams ---- */

static void test_lines(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    struct buf b = BUF_INIT;
    const char input[] = "one\r\ntwo\n\r\n\nbare\rcr\r\ntail-without-newline";
    UNIT_EQ_INT(write_all(sv[1], input, sizeof input - 1), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "one");
    UNIT_CHECK(stream_pending(s) > 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "two");
    UNIT_EQ_INT(stream_read_line(s, &b), 0);      /* empty line, CRLF */
    UNIT_EQ_INT(b.len, 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);      /* empty line, bare LF */
    UNIT_EQ_INT(b.len, 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);      /* a bare CR inside a line is data */
    UNIT_EQ_STR(buf_cstr(&b), "bare\rcr");
    close(sv[1]);                                  /* end of file in the middle of a line */
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    UNIT_EQ_INT(stream_bytes_in(s), sizeof input - 1);
    UNIT_EQ_INT(stream_fd(s), sv[0]);
    stream_free(&s);
    UNIT_CHECK(s == NULL);
    stream_free(&s);                               /* NULL is fine */

    /* a line split over several writes with the CR and LF in separate packets */
    make_pair(sv);
    s = stream_new(sv[0]);
    UNIT_EQ_INT(write_all(sv[1], "spl", 3), 0);
    UNIT_EQ_INT(stream_wait_readable(s, -1, 1000), 1);
    UNIT_EQ_INT(write_all(sv[1], "it\r", 3), 0);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        _exit(write_all(sv[1], "\nnext\n", 6) < 0);
    }
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "split");
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "next");
    UNIT_EQ_INT(wait_child(pid), 0);
    close(sv[1]);
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    stream_free(&s);
    buf_fini(&b);
}

/* test_line_ref: stream_read_line_ref gives the same lines as stream_read_line, also a line
 * carried over several reads (it then lies in the stream's carry buffer), with bare_lf set the
 * same way, "" on an over-long line, and each line good until the next read. */
static void test_line_ref(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    const char *p;
    size_t n;
    UNIT_EQ_INT(write_all(sv[1], "one\r\nbare\nspl", 13), 0);
    UNIT_EQ_INT(stream_read_line_ref(s, &p, &n), 0);
    UNIT_CHECK(n == 3 && !memcmp(p, "one", 3));
    UNIT_EQ_INT(stream_line_bare_lf(s), 0);
    UNIT_EQ_INT(stream_read_line_ref(s, &p, &n), 0);
    UNIT_CHECK(n == 4 && !memcmp(p, "bare", 4));
    UNIT_EQ_INT(stream_line_bare_lf(s), 1);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(50000);
        if (write_all(sv[1], "it\r\n", 4) < 0) _exit(1);
        usleep(50000);
        _exit(write_all(sv[1], "0123456789abcdef-too-long\r\nok\r\n", 31) < 0);
    }
    UNIT_EQ_INT(stream_read_line_ref(s, &p, &n), 0);      /* "spl" carried, then "it" */
    UNIT_CHECK(n == 5 && !memcmp(p, "split", 5));
    UNIT_EQ_INT(stream_line_bare_lf(s), 0);
    stream_set_max_line(s, 16);
    UNIT_EQ_INT(stream_read_line_ref(s, &p, &n), CF_E_LIMIT);
    UNIT_CHECK(n == 0 && p && !*p);
    UNIT_EQ_INT(stream_read_line_ref(s, &p, &n), 0);
    UNIT_CHECK(n == 2 && !memcmp(p, "ok", 2));
    UNIT_EQ_INT(wait_child(pid), 0);
    close(sv[1]);
    UNIT_EQ_INT(stream_read_line_ref(s, &p, &n), CF_E_EOF);
    stream_free(&s);
}

static void test_binary_exact(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    struct buf b = BUF_INIT;
    const char input[] = "ab\0cd\r\n\0\0\xff" "x";
    UNIT_EQ_INT(write_all(sv[1], input, sizeof input - 1), 0);
    UNIT_EQ_INT(stream_read_exact(s, 3, &b), 0);
    UNIT_EQ_INT(b.len, 3);
    UNIT_CHECK(memcmp(b.s, "ab\0", 3) == 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "cd");
    buf_reset(&b);
    UNIT_EQ_INT(stream_read_exact(s, 3, &b), 0);
    UNIT_CHECK(b.len == 3 && memcmp(b.s, "\0\0\xff", 3) == 0);
    UNIT_EQ_INT(stream_read_exact(s, 1, &b), 0);   /* appends */
    UNIT_CHECK(b.len == 4 && b.s[3] == 'x');
    UNIT_EQ_INT(stream_read_exact(s, 0, &b), 0);
    /* a NUL inside a line is returned as data too */
    UNIT_EQ_INT(write_all(sv[1], "n\0l\r\n", 5), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_CHECK(b.len == 3 && memcmp(b.s, "n\0l", 3) == 0);
    /* end of file in the middle of an exact read: out keeps its old contents */
    UNIT_EQ_INT(write_all(sv[1], "abc", 3), 0);
    close(sv[1]);
    buf_reset(&b);
    buf_appends(&b, "keep");
    UNIT_EQ_INT(stream_read_exact(s, 10, &b), CF_E_EOF);
    UNIT_EQ_STR(buf_cstr(&b), "keep");
    stream_free(&s);
    buf_fini(&b);
}

static void test_long_lines(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    struct buf b = BUF_INIT;
    stream_set_max_line(s, 10);
    const char input[] = "0123456789\r\n0123456789\n0123456789A\r\nok\r\n0123456789AB\nfine\n";
    UNIT_EQ_INT(write_all(sv[1], input, sizeof input - 1), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);                 /* exactly max, CRLF */
    UNIT_EQ_STR(buf_cstr(&b), "0123456789");
    UNIT_EQ_INT(stream_read_line(s, &b), 0);                 /* exactly max, LF */
    UNIT_EQ_STR(buf_cstr(&b), "0123456789");
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_LIMIT);        /* max + 1 */
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "ok");
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_LIMIT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "fine");

    /* out's cap also limits a line; the line is consumed */
    struct buf capped = BUF_INIT;
    buf_set_cap(&capped, 4);
    UNIT_EQ_INT(write_all(sv[1], "toolong\r\nfit\r\n", 14), 0);
    UNIT_EQ_INT(stream_read_line(s, &capped), CF_E_LIMIT);
    UNIT_EQ_INT(stream_read_line(s, &capped), 0);
    UNIT_EQ_STR(buf_cstr(&capped), "fit");
    buf_fini(&capped);
    close(sv[1]);
    stream_free(&s);

    /* default limit (64 KiB) with lines longer than the 64 KiB read buffer */
    make_pair(sv);
    s = stream_new(sv[0]);
    struct buf in = BUF_INIT;
    for (int i = 0; i < 65536; i++) buf_putc(&in, 'y');
    buf_appends(&in, "\r\n");
    for (int i = 0; i < 200000; i++) buf_putc(&in, 'x');
    buf_appends(&in, "\nafter\r\n");
    for (int i = 0; i < 65537; i++) buf_putc(&in, 'z');
    buf_appends(&in, "\r\nend\r\n");
    pid_t pid = feeder_start(sv[1], sv[0], in.s, in.len, 7000);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_INT(b.len, 65536);
    UNIT_CHECK(b.s[0] == 'y' && b.s[65535] == 'y');
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_LIMIT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "after");
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_LIMIT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "end");
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    UNIT_EQ_INT(wait_child(pid), 0);
    stream_free(&s);
    buf_fini(&in);
    buf_fini(&b);
}

static void test_exact_large(void)
{
    const size_t mb = 1024 * 1024;
    size_t total = 2 * mb + 1000 + 6;
    char *data = xmalloc(total);
    for (size_t i = 0; i < 2 * mb + 1000; i++) data[i] = (char)pattern(i);
    memcpy(data + 2 * mb + 1000, "tail\r\n", 6);
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    pid_t pid = feeder_start(sv[1], sv[0], data, total, 12345);

    /* 1 MB into a buffer, across many refills; NULs included by the pattern */
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_exact(s, mb, &b), 0);
    UNIT_EQ_INT(b.len, mb);
    UNIT_CHECK(memcmp(b.s, data, mb) == 0);
    UNIT_CHECK(memchr(b.s, '\0', b.len) != NULL);

    /* a capped buffer refuses without consuming */
    struct buf capped = BUF_INIT;
    buf_set_cap(&capped, 100);
    UNIT_EQ_INT(stream_read_exact(s, 200, &capped), CF_E_LIMIT);
    UNIT_EQ_INT(capped.len, 0);
    buf_fini(&capped);

    /* 1 MB to a file */
    char path[128];
    snprintf(path, sizeof path, "%s/literal", g_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    UNIT_CHECK(fd >= 0);
    UNIT_EQ_INT(stream_read_to_fd(s, mb, fd), 0);
    struct stat st;
    UNIT_EQ_INT(fstat(fd, &st), 0);
    UNIT_EQ_INT(st.st_size, mb);
    char *back = xmalloc(mb);
    UNIT_EQ_INT(pread(fd, back, mb, 0), mb);
    UNIT_CHECK(memcmp(back, data + mb, mb) == 0);
    free(back);
    close(fd);
    unlink(path);
    UNIT_EQ_INT(stream_read_to_fd(s, 10, -1), CF_E_IO);   /* a bad output fd: nothing consumed */

    UNIT_EQ_INT(stream_skip(s, 1000), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "tail");
    UNIT_EQ_INT(stream_read_exact(s, 1, &b), CF_E_EOF);
    UNIT_EQ_INT(wait_child(pid), 0);
    UNIT_EQ_INT(stream_bytes_in(s), total);
    stream_free(&s);
    buf_fini(&b);
    free(data);
}

/* after CF_E_TIMEOUT the unfinished line stays and a retry continues it; exact reads after
 * an unfinished line get its bytes first */
static void test_timeout(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    struct buf b = BUF_INIT;
    stream_set_timeout(s, 1);
    long long t0 = ms_now();
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_TIMEOUT);
    long long el = ms_now() - t0;
    UNIT_CHECK(el >= 900 && el < 2500);

    UNIT_EQ_INT(write_all(sv[1], "part", 4), 0);
    t0 = ms_now();
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_TIMEOUT);
    UNIT_CHECK(ms_now() - t0 >= 900);
    UNIT_EQ_INT(stream_pending(s), 4);
    UNIT_EQ_INT(write_all(sv[1], "ial\r\nxy", 7), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "partial");

    /* stream_wait_readable: buffered input, timeout, arriving input */
    UNIT_EQ_INT(stream_wait_readable(s, -1, 0), 1);
    buf_reset(&b);
    UNIT_EQ_INT(stream_read_exact(s, 2, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "xy");
    t0 = ms_now();
    UNIT_EQ_INT(stream_wait_readable(s, -1, 200), 0);
    el = ms_now() - t0;
    UNIT_CHECK(el >= 150 && el < 1500);
    UNIT_EQ_INT(write_all(sv[1], "z", 1), 0);
    UNIT_EQ_INT(stream_wait_readable(s, -1, -1), 1);

    /* an exact read after an unfinished line */
    UNIT_EQ_INT(write_all(sv[1], "bc", 2), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_TIMEOUT);
    buf_reset(&b);
    UNIT_EQ_INT(stream_read_exact(s, 2, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "zb");
    UNIT_EQ_INT(stream_pending(s), 1);
    close(sv[1]);
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    UNIT_EQ_INT(stream_wait_readable(s, -1, 100), CF_E_EOF);
    stream_free(&s);
    buf_fini(&b);
}

/* stream_wait_readable with an extra fd (IDLE's mailbox watch) over a socketpair */
static void test_wait_extra(void)
{
    int sv[2], pp[2];
    make_pair(sv);
    UNIT_EQ_INT(pipe(pp), 0);
    struct stream *s = stream_new(sv[0]);
    struct buf b = BUF_INIT;
    char c;

    /* nothing on either side: the timeout */
    long long t0 = ms_now();
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], 200), 0);
    long long el = ms_now() - t0;
    UNIT_CHECK(el >= 150 && el < 1500);

    /* the extra fd alone; not drained, it is reported again at once */
    UNIT_EQ_INT(write_all(pp[1], "x", 1), 0);
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], -1), STREAM_WAIT_EXTRA);
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], 0), STREAM_WAIT_EXTRA);

    /* input waiting in the socket, or buffered, is returned first */
    UNIT_EQ_INT(write_all(sv[1], "one\r\ntwo\r\n", 10), 0);
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], -1), STREAM_WAIT_INPUT);
    UNIT_EQ_INT(stream_pending(s), 10);                /* read in, not consumed */
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "one");
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], -1), STREAM_WAIT_INPUT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "two");
    UNIT_EQ_INT(read(pp[0], &c, 1), 1);

    /* input arriving during the wait wakes it */
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100000);
        _exit(write_all(sv[1], "three\r\n", 7) < 0);
    }
    t0 = ms_now();
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], 5000), STREAM_WAIT_INPUT);
    UNIT_CHECK(ms_now() - t0 < 2000);
    UNIT_EQ_INT(wait_child(pid), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "three");

    /* so does the extra fd */
    pid = fork();
    if (pid == 0) {
        usleep(100000);
        _exit(write_all(pp[1], "y", 1) < 0);
    }
    t0 = ms_now();
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], 5000), STREAM_WAIT_EXTRA);
    UNIT_CHECK(ms_now() - t0 < 2000);
    UNIT_EQ_INT(wait_child(pid), 0);
    UNIT_EQ_INT(read(pp[0], &c, 1), 1);

    /* a partial line is input too (the caller's read then waits for the rest) */
    UNIT_EQ_INT(write_all(sv[1], "DO", 2), 0);
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], 1000), STREAM_WAIT_INPUT);

    /* end of file while waiting */
    close(sv[1]);
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], 1000), CF_E_EOF);
    stream_free(&s);
    close(pp[0]);
    close(pp[1]);
    buf_fini(&b);
}

/* stream_wait_readable over TLS: a record without application data (a TLS 1.3 KeyUpdate)
 * makes the socket readable but is no input; records and close_notify are read through
 * OpenSSL. The child signals each step on a pipe that is also the extra fd. */
static void test_wait_extra_tls(void)
{
    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.3", &ctx, NULL), 0);
    int sv[2], ack[2], go[2];
    make_pair(sv);
    UNIT_EQ_INT(pipe(ack), 0);
    UNIT_EQ_INT(pipe(go), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        SSL *ssl = client_tls(sv[1], 0);
        char c;
        if (!ssl) _exit(10);
        if (read(go[0], &c, 1) != 1) _exit(11);
        if (SSL_key_update(ssl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1 || SSL_do_handshake(ssl) != 1)
            _exit(12);
        if (write_all(ack[1], "k", 1) < 0) _exit(13);
        if (read(go[0], &c, 1) != 1) _exit(14);
        if (ssl_puts(ssl, "line\r\n") < 0 || ssl_puts(ssl, "a\r\n") < 0 || ssl_puts(ssl, "b\r\n") < 0)
            _exit(15);
        if (read(go[0], &c, 1) != 1) _exit(16);
        SSL_shutdown(ssl);
        _exit(0);
    }
    close(sv[1]);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 10);
    UNIT_EQ_INT(stream_start_tls(s, ctx), 0);
    struct buf b = BUF_INIT;
    char c;

    UNIT_EQ_INT(write_all(go[1], "1", 1), 0);
    UNIT_EQ_INT(stream_wait_readable(s, ack[0], 5000), STREAM_WAIT_EXTRA);
    UNIT_EQ_INT(read(ack[0], &c, 1), 1);
    UNIT_EQ_INT(stream_wait_readable(s, ack[0], 200), 0);  /* the KeyUpdate was no input */
    UNIT_EQ_INT(stream_pending(s), 0);

    UNIT_EQ_INT(write_all(go[1], "2", 1), 0);
    UNIT_EQ_INT(stream_wait_readable(s, ack[0], 5000), STREAM_WAIT_INPUT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "line");
    /* the next records: buffered or still in the socket, found without waiting (the child
     * may not have written them yet on a loaded machine: up to 5 s for that) */
    for (int i = 0; i < 500 && stream_wait_readable(s, ack[0], 0) != STREAM_WAIT_INPUT; i++)
        usleep(10000);
    UNIT_EQ_INT(stream_wait_readable(s, ack[0], 0), STREAM_WAIT_INPUT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "a");
    UNIT_EQ_INT(stream_wait_readable(s, ack[0], 2000), STREAM_WAIT_INPUT);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "b");

    UNIT_EQ_INT(write_all(go[1], "3", 1), 0);
    UNIT_EQ_INT(stream_wait_readable(s, ack[0], 5000), CF_E_EOF);   /* close_notify */
    UNIT_EQ_INT(wait_child(pid), 0);
    stream_free(&s);
    for (int i = 0; i < 2; i++) {
        close(ack[i]);
        close(go[i]);
    }
    buf_fini(&b);
    tls_ctx_free(&ctx);
}

static void on_alarm(int sig) { (void)sig; g_flag = 1; }

static void *flag_thread(void *arg)
{
    (void)arg;
    usleep(300000);
    g_flag = 1;
    return NULL;
}

static void test_interrupt(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;                           /* no SA_RESTART, like the worker */
    sigaction(SIGALRM, &sa, &old);
    stream_set_interrupt_flag(&g_flag);

    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 5);   /* a broken flag check fails with CF_E_TIMEOUT, not a hang */
    struct buf b = BUF_INIT;
    struct itimerval it = { { 0, 0 }, { 0, 200000 } };

    /* a signal during a blocked read */
    g_flag = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    long long t0 = ms_now();
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_SHUTDOWN);
    long long el = ms_now() - t0;
    UNIT_CHECK(el >= 150 && el < 1000);

    /* a signal during stream_wait_readable(-1) */
    g_flag = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    UNIT_EQ_INT(stream_wait_readable(s, -1, -1), CF_E_SHUTDOWN);
    int pp[2];                                 /* and with an extra fd */
    UNIT_EQ_INT(pipe(pp), 0);
    g_flag = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    UNIT_EQ_INT(stream_wait_readable(s, pp[0], -1), CF_E_SHUTDOWN);
    close(pp[0]);
    close(pp[1]);

    /* the flag set with no signal at all: seen within the one-second poll slice */
    g_flag = 0;
    pthread_t th;
    pthread_create(&th, NULL, flag_thread, NULL);
    t0 = ms_now();
    UNIT_EQ_INT(stream_read_exact(s, 5, &b), CF_E_SHUTDOWN);
    el = ms_now() - t0;
    UNIT_CHECK(el >= 250 && el < 1800);
    pthread_join(th, NULL);

    /* buffered input is still returned while the flag is set; then CF_E_SHUTDOWN */
    g_flag = 0;
    UNIT_EQ_INT(write_all(sv[1], "x\r\ny\r\n", 6), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "x");
    g_flag = 1;
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "y");
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_SHUTDOWN);
    /* writes ignore the flag, so a BYE still goes out */
    UNIT_EQ_INT(stream_puts(s, "* BYE\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    char line[32];
    UNIT_EQ_INT(fd_read_line(sv[1], line, sizeof line), 0);
    UNIT_EQ_STR(line, "* BYE");

    g_flag = 0;
    stream_set_interrupt_flag(NULL);
    sigaction(SIGALRM, &old, NULL);
    close(sv[1]);
    stream_free(&s);
    buf_fini(&b);
}

static void test_big_writes(void)
{
    const size_t total = 8 * 1024 * 1024;
    char *data = xmalloc(total);
    for (size_t i = 0; i < total; i++) data[i] = (char)pattern(i);
    int sv[2];
    make_pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);   /* force waiting */
    struct stream *s = stream_new(sv[0]);
    struct sink k = sink_start(sv[1], sv[0]);
    static const size_t sizes[] = { 1, 100, 5000, 65535, 65536, 70000, 300000, 1 << 20, 7 };
    size_t off = 0;
    int r = 0;
    for (unsigned i = 0; off < total && r == 0; i++) {
        size_t n = sizes[i % (sizeof sizes / sizeof sizes[0])];
        if (n > total - off) n = total - off;
        r = stream_write(s, data + off, n);
        off += n;
    }
    UNIT_EQ_INT(r, 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    UNIT_EQ_INT(stream_bytes_out(s), total);
    stream_free(&s);
    uint64_t count, hash;
    UNIT_EQ_INT(sink_wait(&k, &count, &hash), 0);
    UNIT_EQ_INT(count, total);
    UNIT_CHECK(hash == fnv(FNV_INIT, data, total));
    free(data);

    /* stream_printf, small and larger than the buffer; stream_free flushes */
    make_pair(sv);
    s = stream_new(sv[0]);
    k = sink_start(sv[1], sv[0]);
    char *big = xmalloc(100001);
    memset(big, 'q', 100000);
    big[100000] = '\0';
    struct buf expect = BUF_INIT;
    for (int i = 0; i < 3000; i++) {
        UNIT_EQ_INT(stream_printf(s, "* %d FETCH (UID %d)\r\n", i, i * 7), 0);
        buf_printf(&expect, "* %d FETCH (UID %d)\r\n", i, i * 7);
    }
    UNIT_EQ_INT(stream_printf(s, "%s\r\n", big), 0);
    buf_printf(&expect, "%s\r\n", big);
    UNIT_EQ_INT(stream_puts(s, "done\r\n"), 0);
    buf_appends(&expect, "done\r\n");
    stream_free(&s);
    UNIT_EQ_INT(sink_wait(&k, &count, &hash), 0);
    UNIT_EQ_INT(count, expect.len);
    UNIT_CHECK(hash == fnv(FNV_INIT, expect.s, expect.len));
    buf_fini(&expect);
    free(big);
}

/* stream_writev: pieces that fit are buffered, larger sets go out with what was buffered in
 * one sendmsg, past STREAM_IOV_MAX pieces and through partial sends; order and bytes kept */
static void test_writev(void)
{
    const size_t total = 4 * 1024 * 1024;
    char *data = xmalloc(total);
    for (size_t i = 0; i < total; i++) data[i] = (char)pattern(i);
    int sv[2];
    make_pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);   /* partial sends */
    struct stream *s = stream_new(sv[0]);
    struct sink k = sink_start(sv[1], sv[0]);
    static const size_t sizes[] = { 1, 0, 19, 2, 300000, 1, 0, 70000, 3, 65536, 5000, 1 };
    size_t off = 0;
    int r = 0;
    for (unsigned round = 0; off < total && r == 0; round++) {
        r = stream_write(s, data + off, round % 3 ? 17 : 0);   /* something buffered first */
        off += round % 3 ? 17 : 0;
        struct iovec v[150];
        int n = (int)(round % 3 == 2 ? 150 : round % 5 + 1);
        for (int i = 0; i < n; i++) {
            size_t len = sizes[(round + (unsigned)i) % (sizeof sizes / sizeof sizes[0])];
            if (len > total - off) len = total - off;
            v[i] = (struct iovec){ data + off, len };
            off += len;
        }
        if (!r) r = stream_writev(s, v, n);
    }
    UNIT_EQ_INT(r, 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    UNIT_EQ_INT(stream_bytes_out(s), total);
    stream_free(&s);
    uint64_t count, hash;
    UNIT_EQ_INT(sink_wait(&k, &count, &hash), 0);
    UNIT_EQ_INT(count, total);
    UNIT_CHECK(hash == fnv(FNV_INIT, data, total));
    free(data);
}

/* stream_sendfile: the buffered bytes, then the file's range, then what is written after;
 * a range past the file's end is CF_E_IO and sticky */
static void test_sendfile(void)
{
    const size_t flen = 700000;
    char *data = xmalloc(flen);
    for (size_t i = 0; i < flen; i++) data[i] = (char)pattern(i);
    char path[96];
    snprintf(path, sizeof path, "%s/sendfile.dat", g_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    UNIT_CHECK(fd >= 0);
    UNIT_EQ_INT(write_all(fd, data, flen), 0);
    int sv[2];
    make_pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);   /* partial sends */
    struct stream *s = stream_new(sv[0]);
    UNIT_EQ_INT(stream_can_sendfile(s), 1);
    struct sink k = sink_start(sv[1], sv[0]);
    UNIT_EQ_INT(stream_puts(s, "+OK head\r\n"), 0);
    UNIT_EQ_INT(stream_sendfile(s, fd, 100, flen - 100), 0);
    UNIT_EQ_INT(stream_puts(s, ".\r\n"), 0);
    UNIT_EQ_INT(stream_sendfile(s, fd, 0, 10), 0);   /* nothing buffered before it */
    UNIT_EQ_INT(stream_flush(s), 0);
    UNIT_EQ_INT(stream_sendfile(s, fd, flen - 5, 10), CF_E_IO);
    UNIT_EQ_INT(stream_puts(s, "x"), CF_E_IO);
    stream_free(&s);
    uint64_t count, hash;
    UNIT_EQ_INT(sink_wait(&k, &count, &hash), 0);
    uint64_t h = fnv(FNV_INIT, "+OK head\r\n", 10);
    h = fnv(h, data + 100, flen - 100);
    h = fnv(h, ".\r\n", 3);
    h = fnv(h, data, 10);
    h = fnv(h, data + flen - 5, 5);   /* what the short range did send */
    UNIT_EQ_INT(count, 10 + flen - 100 + 3 + 10 + 5);
    UNIT_CHECK(hash == h);
    close(fd);
    unlink(path);
    free(data);
}

/* stream_write_nowait: what is buffered goes first, then as much as the socket takes without
 * waiting; nothing (0) while the buffer cannot be emptied; the reader gets every byte in
 * order; a gone peer is a sticky error */
static void test_write_nowait(void)
{
    int sv[2];
    make_pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct stream *s = stream_new(sv[0]);
    struct buf expect = BUF_INIT;
    UNIT_EQ_INT(stream_puts(s, "* buffered\r\n"), 0);
    buf_appends(&expect, "* buffered\r\n");
    const size_t total = 1 << 20;
    char *data = xmalloc(total);
    for (size_t i = 0; i < total; i++) data[i] = (char)pattern(i);
    long long t0 = ms_now();
    long long w = stream_write_nowait(s, data, total);
    UNIT_CHECK(w > 0 && (size_t)w < total);   /* some, not all: nobody reads yet */
    UNIT_CHECK(ms_now() - t0 < 1000);          /* and it did not wait */
    buf_append(&expect, data, (size_t)w);
    UNIT_EQ_INT(stream_write_nowait(s, data + w, total - (size_t)w), 0);   /* full */
    /* the rest through the buffer, which must now wait for the reader: it goes before
     * anything stream_write_nowait could send */
    struct sink k = sink_start(sv[1], sv[0]);
    UNIT_EQ_INT(stream_write(s, data + w, 10), 0);
    buf_append(&expect, data + w, 10);
    long long w2 = stream_write_nowait(s, data + w + 10, total - (size_t)w - 10);
    UNIT_CHECK(w2 >= 0);
    buf_append(&expect, data + w + 10, (size_t)w2);
    stream_free(&s);
    uint64_t count, hash;
    UNIT_EQ_INT(sink_wait(&k, &count, &hash), 0);
    UNIT_EQ_INT(count, expect.len);
    UNIT_CHECK(hash == fnv(FNV_INIT, expect.s, expect.len));
    buf_fini(&expect);
    free(data);

    make_pair(sv);
    s = stream_new(sv[0]);
    close(sv[1]);
    UNIT_CHECK(stream_write_nowait(s, "x\r\n", 3) < 0);
    UNIT_CHECK(stream_flush(s) < 0);   /* sticky */
    stream_free(&s);
}

/* a peer that has gone away: CF_E_IO, sticky, and no SIGPIPE (its default action is kept) */
static void test_sigpipe(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    close(sv[1]);
    UNIT_EQ_INT(stream_puts(s, "hello\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), CF_E_IO);
    UNIT_EQ_INT(stream_puts(s, "again\r\n"), CF_E_IO);
    UNIT_EQ_INT(stream_flush(s), CF_E_IO);
    stream_free(&s);
}

static void check_nodelay(int family)
{
    int port = 0;
    int lfd = tcp_listen(family, &port);
    if (lfd < 0) {
        UNIT_CHECK(family == AF_INET6);   /* IPv6 may be absent; IPv4 loopback may not */
        return;
    }
    int cfd = tcp_connect(family, port);
    UNIT_CHECK(cfd >= 0);
    int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    UNIT_CHECK(afd >= 0);
    int v = 0;
    socklen_t len = sizeof v;
    getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &v, &len);
    UNIT_EQ_INT(v, 0);
    struct stream *s = stream_new(afd);
    v = 0;
    len = sizeof v;
    UNIT_EQ_INT(getsockopt(afd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    UNIT_CHECK(v != 0);
    /* and a line each way */
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(fd_puts(cfd, "ping\r\n"), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "ping");
    UNIT_EQ_INT(stream_puts(s, "pong\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    char line[16];
    UNIT_EQ_INT(fd_read_line(cfd, line, sizeof line), 0);
    UNIT_EQ_STR(line, "pong");
    close(cfd);
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    stream_free(&s);
    close(lfd);
    buf_fini(&b);
}

static void test_tcp(void)
{
    check_nodelay(AF_INET);
    check_nodelay(AF_INET6);
}

/* ---- TLS ---- */

static void test_tls_ctx_errors(void)
{
    struct tls_ctx *ctx = NULL;
    struct buf err = BUF_INIT;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_other_key, "", "1.2", &ctx, &err), CF_E_TLS);
    UNIT_CHECK(ctx == NULL);
    UNIT_CHECK(strstr(buf_cstr(&err), "does not match") != NULL);
    UNIT_CHECK(strstr(buf_cstr(&err), "mismatch") != NULL);   /* OpenSSL's own reason */
    UNIT_CHECK(strstr(buf_cstr(&err), g_other_key) != NULL);
    printf("wrong key: %s\n", buf_cstr(&err));

    buf_reset(&err);
    UNIT_EQ_INT(tls_ctx_new("/nonexistent/cert.pem", g_key, "", "1.2", &ctx, &err), CF_E_TLS);
    UNIT_CHECK(strstr(buf_cstr(&err), "/nonexistent/cert.pem") != NULL);
    UNIT_CHECK(strstr(buf_cstr(&err), "No such file") != NULL);
    printf("missing cert: %s\n", buf_cstr(&err));

    buf_reset(&err);
    UNIT_EQ_INT(tls_ctx_new(g_key, g_key, "", "1.2", &ctx, &err), CF_E_TLS);   /* not a cert */
    UNIT_CHECK(err.len > 0);

    buf_reset(&err);
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.1", &ctx, &err), CF_E_TLS);
    UNIT_CHECK(strstr(buf_cstr(&err), "1.1") != NULL);

    buf_reset(&err);
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "NO-SUCH-CIPHER", "1.2", &ctx, &err), CF_E_TLS);
    UNIT_CHECK(strstr(buf_cstr(&err), "cipher") != NULL);

    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "ECDHE+AESGCM", "TLSv1.3", &ctx, NULL), 0);
    UNIT_CHECK(ctx != NULL);
    tls_ctx_free(&ctx);
    UNIT_CHECK(ctx == NULL);
    tls_ctx_free(&ctx);
    buf_fini(&err);
}

/* implicit TLS over loopback TCP: lines both ways and bulk data both ways */
static void test_tls_tcp(void)
{
    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.2", &ctx, NULL), 0);
    int port = 0;
    int lfd = tcp_listen(AF_INET, &port);
    UNIT_CHECK(lfd >= 0);
    const size_t bulk = 300000, back = 1024 * 1024;
    pid_t pid = fork();
    if (pid == 0) {
        close(lfd);
        int fd = tcp_connect(AF_INET, port);
        SSL *ssl = fd < 0 ? NULL : client_tls(fd, 0);
        if (!ssl) _exit(10);
        char line[128];
        if (ssl_puts(ssl, "hello server\r\n") < 0) _exit(11);
        if (ssl_read_line(ssl, line, sizeof line) < 0 || strcmp(line, "hello client")) _exit(12);
        char *data = malloc(bulk);
        for (size_t i = 0; i < bulk; i++) data[i] = (char)pattern(i);
        if (SSL_write(ssl, data, (int)bulk) != (int)bulk) _exit(13);
        free(data);
        size_t got = 0;
        char chunk[16384];
        while (got < back) {
            int n = SSL_read(ssl, chunk, sizeof chunk);
            if (n <= 0) _exit(14);
            for (int i = 0; i < n; i++)
                if ((unsigned char)chunk[i] != pattern(got + (size_t)i)) _exit(15);
            got += (size_t)n;
        }
        if (ssl_puts(ssl, "bye\r\n") < 0) _exit(16);
        SSL_shutdown(ssl);
        _exit(0);
    }
    int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    close(lfd);
    struct stream *s = stream_new(afd);
    stream_set_timeout(s, 10);
    UNIT_EQ_INT(stream_is_tls(s), 0);
    UNIT_EQ_STR(stream_tls_info(s), "");
    UNIT_EQ_INT(stream_start_tls(s, ctx), 0);
    UNIT_EQ_INT(stream_is_tls(s), 1);
    UNIT_CHECK(strncmp(stream_tls_info(s), "TLSv1.3 TLS_", 12) == 0);
    printf("tls info: %s\n", stream_tls_info(s));
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "hello server");
    UNIT_EQ_INT(stream_puts(s, "hello client\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    buf_reset(&b);
    UNIT_EQ_INT(stream_read_exact(s, bulk, &b), 0);
    int same = b.len == bulk;
    for (size_t i = 0; same && i < bulk; i++) same = (unsigned char)b.s[i] == pattern(i);
    UNIT_CHECK(same);
    char *data = xmalloc(back);
    for (size_t i = 0; i < back; i++) data[i] = (char)pattern(i);
    UNIT_EQ_INT(stream_write(s, data, 1000), 0);          /* buffered, then a direct write */
    UNIT_EQ_INT(stream_write(s, data + 1000, back - 1000), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    free(data);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "bye");
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    UNIT_EQ_INT(stream_start_tls(s, ctx), CF_E_TLS);      /* already TLS */
    UNIT_EQ_INT(wait_child(pid), 0);
    stream_free(&s);
    buf_fini(&b);
    tls_ctx_free(&ctx);
}

/* STARTTLS over a socketpair. mode 0: clean; 1: plaintext injected after STARTTLS in the same
 * packet; 2: plaintext sent where the handshake should start. */
static void run_starttls(int mode)
{
    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.2", &ctx, NULL), 0);
    int sv[2];
    make_pair(sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        int fd = sv[1];
        char line[128];
        if (fd_puts(fd, "CAPA\r\n") < 0) _exit(10);
        if (fd_read_line(fd, line, sizeof line) < 0 || strcmp(line, "STARTTLS")) _exit(11);
        const char *cmd = mode == 1 ? "STARTTLS\r\nINJECTED\r\n" : "STARTTLS\r\n";
        if (fd_puts(fd, cmd) < 0) _exit(12);
        if (fd_read_line(fd, line, sizeof line) < 0 || strcmp(line, "OK begin TLS")) _exit(13);
        if (mode == 2) {
            fd_puts(fd, "NOT A HANDSHAKE\r\n");
            usleep(200000);
            _exit(0);
        }
        SSL *ssl = client_tls(fd, 0);
        if (!ssl) _exit(14);
        if (ssl_puts(ssl, "secret\r\n") < 0) _exit(15);
        if (ssl_read_line(ssl, line, sizeof line) < 0 || strcmp(line, "got secret")) _exit(16);
        _exit(0);
    }
    close(sv[1]);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 10);
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "CAPA");
    UNIT_EQ_INT(stream_puts(s, "STARTTLS\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    UNIT_EQ_STR(buf_cstr(&b), "STARTTLS");
    if (mode == 1) UNIT_CHECK(stream_pending(s) > 0);
    UNIT_EQ_INT(stream_puts(s, "OK begin TLS\r\n"), 0);   /* left for start_tls to flush */
    int r = stream_start_tls(s, ctx);
    if (mode == 2) {
        UNIT_EQ_INT(r, CF_E_TLS);
        UNIT_CHECK(stream_tls_error(s)[0] != '\0');
        printf("plaintext handshake: %s\n", stream_tls_error(s));
        UNIT_EQ_INT(stream_is_tls(s), 0);
        /* a failed upgrade never falls back to plaintext */
        UNIT_EQ_INT(stream_read_line(s, &b), CF_E_TLS);
        UNIT_EQ_INT(stream_puts(s, "x\r\n"), CF_E_TLS);
        UNIT_EQ_INT(stream_flush(s), CF_E_TLS);
    } else {
        UNIT_EQ_INT(r, mode == 1 ? 1 : 0);
        UNIT_EQ_INT(stream_pending(s), 0);
        UNIT_EQ_INT(stream_read_line(s, &b), 0);
        UNIT_EQ_STR(buf_cstr(&b), "secret");                 /* not "INJECTED" */
        UNIT_EQ_INT(stream_puts(s, "got secret\r\n"), 0);
        UNIT_EQ_INT(stream_flush(s), 0);
        UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);
    }
    UNIT_EQ_INT(wait_child(pid), 0);
    stream_free(&s);
    buf_fini(&b);
    tls_ctx_free(&ctx);
}

static void test_starttls(void)
{
    run_starttls(0);
    run_starttls(1);
    run_starttls(2);
}

/* a client that can only speak TLS 1.2 against a server at minimum 1.3, then at 1.2 */
static void run_version(const char *server_min, int expect_ok)
{
    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", server_min, &ctx, NULL), 0);
    int sv[2];
    make_pair(sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        SSL *ssl = client_tls(sv[1], TLS1_2_VERSION);
        if (!ssl) _exit(20);
        char line[64];
        if (ssl_puts(ssl, "old client\r\n") < 0) _exit(21);
        if (ssl_read_line(ssl, line, sizeof line) < 0) _exit(22);
        /* client-initiated renegotiation must be refused (OpenSSL 3 refuses it by default too;
         * SSL_OP_NO_RENEGOTIATION also covers the server side) */
        if (SSL_renegotiate(ssl) != 1) _exit(23);
        if (SSL_do_handshake(ssl) == 1) _exit(24);
        _exit(0);
    }
    close(sv[1]);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 10);
    struct buf b = BUF_INIT;
    int r = stream_start_tls(s, ctx);
    if (expect_ok) {
        UNIT_EQ_INT(r, 0);
        UNIT_CHECK(strncmp(stream_tls_info(s), "TLSv1.2 ", 8) == 0);
        UNIT_EQ_INT(stream_read_line(s, &b), 0);
        UNIT_EQ_STR(buf_cstr(&b), "old client");
        UNIT_EQ_INT(stream_puts(s, "welcome\r\n"), 0);
        UNIT_EQ_INT(stream_flush(s), 0);
        r = stream_read_line(s, &b);       /* the refused renegotiation ends the session */
        UNIT_CHECK(r == CF_E_TLS || r == CF_E_EOF);
        printf("renegotiation attempt: %s\n", cf_strerror(r));
        UNIT_EQ_INT(wait_child(pid), 0);
    } else {
        UNIT_EQ_INT(r, CF_E_TLS);
        UNIT_CHECK(strstr(stream_tls_error(s), "unsupported protocol") != NULL);
        printf("TLS 1.2 client vs minimum 1.3: %s\n", stream_tls_error(s));
        UNIT_EQ_INT(wait_child(pid), 20);             /* the client's handshake failed */
    }
    stream_free(&s);
    buf_fini(&b);
    tls_ctx_free(&ctx);
}

static void test_tls_versions(void)
{
    run_version("1.3", 0);
    run_version("1.2", 1);
}

/* a client that never starts its handshake: the stream's timeout bounds it */
static void test_tls_handshake_timeout(void)
{
    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.2", &ctx, NULL), 0);
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 1);
    long long t0 = ms_now();
    UNIT_EQ_INT(stream_start_tls(s, ctx), CF_E_TLS);
    long long el = ms_now() - t0;
    UNIT_CHECK(el >= 900 && el < 2500);
    UNIT_CHECK(strstr(stream_tls_error(s), "timed out") != NULL);
    close(sv[1]);
    stream_free(&s);
    tls_ctx_free(&ctx);
}

/* stream_set_deadline: a hard deadline that trickled bytes, a flood of complete lines and
 * a long idle timeout cannot stretch; it caps the TLS handshake too; cleared, it is gone */
static void test_deadline(void)
{
    int sv[2];
    make_pair(sv);
    struct stream *s = stream_new(sv[0]);
    struct buf b = BUF_INIT;
    stream_set_timeout(s, 60);
    stream_set_deadline(s, 1);
    UNIT_CHECK(stream_has_deadline(s) && !stream_deadline_passed(s));
    long long t0 = ms_now();
    int r = 0;
    while (r == 0 || r == CF_E_LIMIT) {
        /* a line every 100 ms: data is always just about to arrive */
        UNIT_EQ_INT(write_all(sv[1], "x\r\n", 3), 0);
        r = stream_read_line(s, &b);
        usleep(100000);
        if (ms_now() - t0 > 5000) break;
    }
    long long el = ms_now() - t0;
    UNIT_EQ_INT(r, CF_E_TIMEOUT);
    UNIT_CHECK(el >= 900 && el < 2500);
    UNIT_CHECK(stream_deadline_passed(s));
    /* writes still go out as far as the socket takes them */
    UNIT_EQ_INT(stream_puts(s, "bye\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    stream_set_deadline(s, 0);
    UNIT_CHECK(!stream_has_deadline(s));
    UNIT_EQ_INT(write_all(sv[1], "later\n", 6), 0);
    UNIT_EQ_INT(stream_read_line(s, &b), 0);
    close(sv[1]);
    stream_free(&s);

    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.2", &ctx, NULL), 0);
    make_pair(sv);
    s = stream_new(sv[0]);
    stream_set_timeout(s, 60);
    stream_set_deadline(s, 1);
    t0 = ms_now();
    UNIT_EQ_INT(stream_start_tls(s, ctx), CF_E_TLS);
    el = ms_now() - t0;
    UNIT_CHECK(el >= 900 && el < 2500);
    close(sv[1]);
    stream_free(&s);
    tls_ctx_free(&ctx);
    buf_fini(&b);
}

/* a TLS peer that disappears: writes fail with an error, not SIGPIPE */
static void test_tls_peer_gone(void)
{
    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.2", &ctx, NULL), 0);
    int sv[2];
    make_pair(sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        SSL *ssl = client_tls(sv[1], 0);
        char line[16];
        if (!ssl || ssl_read_line(ssl, line, sizeof line) < 0) _exit(30);
        _exit(0);   /* closes without close_notify */
    }
    close(sv[1]);
    struct stream *s = stream_new(sv[0]);
    stream_set_timeout(s, 10);
    UNIT_EQ_INT(stream_start_tls(s, ctx), 0);
    UNIT_EQ_INT(stream_puts(s, "go\r\n"), 0);
    UNIT_EQ_INT(stream_flush(s), 0);
    UNIT_EQ_INT(wait_child(pid), 0);
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), CF_E_EOF);     /* no close_notify is still EOF */
    char *junk = xzmalloc(1 << 20);
    int r = stream_write(s, junk, 1 << 20);
    if (r == 0) r = stream_flush(s);
    UNIT_CHECK(r == CF_E_IO || r == CF_E_TLS);
    free(junk);
    stream_free(&s);
    buf_fini(&b);
    tls_ctx_free(&ctx);
}

/* ---- TLS record sizes ---- */

/* tls_record_reader: in a child, read n bytes over TLS (max_version 0: any), sleeping slow_us
 * before each read (a slow client), and send the parent, on rfd, each record's plaintext
 * length (OpenSSL's SSL_read returns one record at most) as a uint32_t, then 0, then the FNV
 * hash of all bytes as a uint64_t. Exit 0, or 40+ on a failure. */
static void tls_record_reader(int fd, int rfd, size_t n, int slow_us, int max_version)
{
    SSL *ssl = client_tls(fd, max_version);
    if (!ssl) _exit(40);
    char *chunk = malloc(65536);
    uint64_t h = FNV_INIT;
    size_t got = 0;
    while (got < n) {
        if (slow_us) usleep((useconds_t)slow_us);
        int k = SSL_read(ssl, chunk, 65536);
        if (k <= 0) _exit(41);
        h = fnv(h, chunk, (size_t)k);
        got += (size_t)k;
        uint32_t len = (uint32_t)k;
        if (write_all(rfd, &len, sizeof len) < 0) _exit(42);
    }
    uint32_t end = 0;
    if (write_all(rfd, &end, sizeof end) < 0 || write_all(rfd, &h, sizeof h) < 0) _exit(43);
    if (ssl_puts(ssl, "done\r\n") < 0) _exit(44);
    SSL_shutdown(ssl);
    free(chunk);
    _exit(got == n ? 0 : 45);
}

/* the records a tls_record_reader saw: their count, how many were not full (16 KiB), and
 * whether the hash matched */
static void tls_records_check(int rfd, const char *data, size_t n, unsigned *records_r,
                              unsigned *short_r, int *same_r)
{
    unsigned records = 0, shortr = 0;
    for (;;) {
        uint32_t len;
        if (read(rfd, &len, sizeof len) != (ssize_t)sizeof len || len == 0) break;
        records++;
        if (len != 16384) shortr++;
    }
    uint64_t h = 0;
    *same_r = read(rfd, &h, sizeof h) == (ssize_t)sizeof h && h == fnv(FNV_INIT, data, n);
    *records_r = records;
    *short_r = shortr;
}

/* What FETCH 1:* BODY[] and POP3 RETR write: a short prefix, a message (small, between the
 * buffer's records, larger than the buffer), a short suffix, again and again, then a flush.
 * Over TLS every record but the last is full: no short record at the seam between the
 * buffer and a large message, none at a message's tail. tcp: over loopback TCP, where the
 * records in the middle go with MSG_MORE and the last must still leave at once; slow_us: the
 * client sleeps before each read, so writes wait for the socket in the middle of records.
 * Checked for TLS 1.3 and 1.2. */
static void run_tls_records(int tcp, int slow_us, int max_version)
{
    static const size_t sizes[] = { 3000, 20000, 70000, 250000, 100, 16384, 65536, 40000,
                                    5, 131072, 16383, 2900, 300000 };
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    size_t total = 0;
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < nsizes; i++) total += 24 + sizes[i] + 3;
    char *data = xmalloc(total);
    for (size_t i = 0; i < total; i++) data[i] = (char)pattern(i);

    struct tls_ctx *ctx = NULL;
    UNIT_EQ_INT(tls_ctx_new(g_cert, g_key, "", "1.2", &ctx, NULL), 0);
    int sv[2], rp[2], lfd = -1, port = 0;
    UNIT_EQ_INT(pipe(rp), 0);
    if (tcp) {
        lfd = tcp_listen(AF_INET, &port);
        UNIT_CHECK(lfd >= 0);
    } else {
        make_pair(sv);
        int small = 4096;
        if (slow_us) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(rp[0]);
        int fd;
        if (tcp) {
            close(lfd);
            fd = tcp_connect(AF_INET, port);
            if (fd < 0) _exit(46);
            int small = 8192;
            if (slow_us) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        } else {
            close(sv[0]);
            fd = sv[1];
        }
        tls_record_reader(fd, rp[1], total, slow_us, max_version);
    }
    close(rp[1]);
    int fd;
    if (tcp) {
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        close(lfd);
        int small = 4096;
        if (slow_us) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    } else {
        close(sv[1]);
        fd = sv[0];
    }
    struct stream *s = stream_new(fd);
    stream_set_timeout(s, 30);
    UNIT_EQ_INT(stream_start_tls(s, ctx), 0);
    size_t off = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < nsizes; i++) {
            UNIT_EQ_INT(stream_write(s, data + off, 24), 0);      /* "* 1 FETCH (BODY[] {N}" */
            off += 24;
            if (i % 2) {
                struct iovec v[2] = { { data + off, sizes[i] / 2 },
                                      { data + off + sizes[i] / 2, sizes[i] - sizes[i] / 2 } };
                UNIT_EQ_INT(stream_writev(s, v, 2), 0);
            } else {
                UNIT_EQ_INT(stream_write(s, data + off, sizes[i]), 0);
            }
            off += sizes[i];
            UNIT_EQ_INT(stream_write(s, data + off, 3), 0);       /* ")\r\n" */
            off += 3;
        }
    }
    UNIT_EQ_INT(off, total);
    UNIT_EQ_INT(stream_flush(s), 0);
    UNIT_EQ_INT(stream_bytes_out(s), total);
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(stream_read_line(s, &b), 0);                      /* the client got it all */
    UNIT_EQ_STR(buf_cstr(&b), "done");
    unsigned records, shortr;
    int same;
    tls_records_check(rp[0], data, total, &records, &shortr, &same);
    printf("tls records (%s%s, max %s): %u for %zu bytes, %u not full\n", tcp ? "tcp" : "unix",
           slow_us ? ", slow reader" : "", max_version == TLS1_2_VERSION ? "1.2" : "1.3",
           records, total, shortr);
    UNIT_CHECK(same);
    UNIT_EQ_INT(records, (unsigned)((total + 16383) / 16384));
    UNIT_EQ_INT(shortr, total % 16384 ? 1u : 0u);
    UNIT_EQ_INT(wait_child(pid), 0);
    close(rp[0]);
    stream_free(&s);
    buf_fini(&b);
    free(data);
    tls_ctx_free(&ctx);
}

static void test_tls_records(void)
{
    run_tls_records(0, 0, 0);
    run_tls_records(0, 0, TLS1_2_VERSION);
    run_tls_records(1, 0, 0);
    run_tls_records(0, 300, 0);
    run_tls_records(1, 300, TLS1_2_VERSION);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL);   /* a missed MSG_NOSIGNAL must kill the test */
    log_init("test-stream", 1, LOG_LVL_ERR);
    make_certificates();
    test_lines();
    test_line_ref();
    test_binary_exact();
    test_long_lines();
    test_exact_large();
    test_timeout();
    test_wait_extra();
    test_interrupt();
    test_big_writes();
    test_writev();
    test_sendfile();
    test_write_nowait();
    test_sigpipe();
    test_tcp();
    test_tls_ctx_errors();
    test_tls_tcp();
    test_starttls();
    test_tls_versions();
    test_tls_handshake_timeout();
    test_deadline();
    test_tls_peer_gone();
    test_wait_extra_tls();
    test_tls_records();
    remove_certificates();
    UNIT_DONE();
}
