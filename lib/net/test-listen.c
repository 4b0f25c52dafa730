/* test-listen.c: unit tests for listen address parsing, binding over real sockets, and formatting. */
#include "net/listen.h"
#include "core/error.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static const struct {
    const char *spec;
    int ok;
    int family;
    const char *formatted;   /* listen_format of the parsed address, when ok */
} parse_cases[] = {
    { "127.0.0.1:143", 1, AF_INET, "127.0.0.1:143" },
    { "*:1143", 1, AF_INET, "0.0.0.0:1143" },
    { "0.0.0.0:0", 1, AF_INET, "0.0.0.0:0" },
    { "[::1]:993", 1, AF_INET6, "[::1]:993" },
    { "[::]:65535", 1, AF_INET6, "[::]:65535" },
    { "localhost:25", 1, AF_INET, "127.0.0.1:25" },
    { "/tmp/lmtp.sock", 1, AF_UNIX, "unix" },
    { "", 0, 0, NULL },
    { "127.0.0.1", 0, 0, NULL },
    { "127.0.0.1:", 0, 0, NULL },
    { ":143", 0, 0, NULL },
    { "127.0.0.1:65536", 0, 0, NULL },
    { "127.0.0.1:14x", 0, 0, NULL },
    { "127.0.0.1:-1", 0, 0, NULL },
    { "::1:143", 0, 0, NULL },
    { "[::1]143", 0, 0, NULL },
    { "[::1:143", 0, 0, NULL },
    { "[127.0.0.1]:143", 0, 0, NULL },
    { "[::1]:", 0, 0, NULL },
    { "relative/path.sock", 0, 0, NULL },
    { "no-such-host.invalid:143", 0, 0, NULL },
};

static void test_parse(void)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        struct listen_addr a;
        struct buf err = BUF_INIT;
        int r = listen_parse(parse_cases[i].spec, &a, &err);
        if (parse_cases[i].ok) {
            if (r) fprintf(stderr, "case %s: %s", parse_cases[i].spec, buf_cstr(&err));
            UNIT_EQ_INT(r, 0);
            UNIT_EQ_INT(a.family, parse_cases[i].family);
            char text[80];
            listen_format((struct sockaddr *)&a.sa, a.salen, text, sizeof text);
            UNIT_EQ_STR(text, parse_cases[i].formatted);
            UNIT_EQ_STR(a.spec, parse_cases[i].spec);
        } else {
            if (!r) fprintf(stderr, "case '%s' parsed but should not\n", parse_cases[i].spec);
            UNIT_EQ_INT(r, CF_E_PARSE);
            UNIT_CHECK(strstr(buf_cstr(&err), "bad listen address") != NULL);
        }
        buf_fini(&err);
    }
    /* a path that does not fit into sun_path */
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    struct listen_addr a;
    struct buf err = BUF_INIT;
    UNIT_EQ_INT(listen_parse(longpath, &a, &err), CF_E_PARSE);
    buf_fini(&err);
}

static void test_tcp(void)
{
    struct buf err = BUF_INIT;
    int fd;
    UNIT_EQ_INT(listen_open("127.0.0.1:0", &fd, &err), 0);
    UNIT_CHECK(fd >= 0);
    int port = listen_local_port(fd);
    UNIT_CHECK(port > 0);
    UNIT_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    UNIT_CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    int v = 0;
    socklen_t vl = sizeof v;
    UNIT_EQ_INT(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &v, &vl), 0);
    UNIT_CHECK(v != 0);
    v = 0;
    UNIT_EQ_INT(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl), 0);
    UNIT_CHECK(v != 0);

    /* the same address again: the exact message cofferd prints for exit code 3 */
    char spec[64], want[128];
    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    snprintf(want, sizeof want, "cannot listen on %s: %s\n", spec, strerror(EADDRINUSE));
    int fd2;
    UNIT_EQ_INT(listen_open(spec, &fd2, &err), CF_E_IO);
    UNIT_EQ_INT(fd2, -1);
    UNIT_EQ_STR(buf_cstr(&err), want);

    /* a real connection: accept works and the peer is formatted and recognised as loopback */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    UNIT_EQ_INT(connect(c, (struct sockaddr *)&sin, sizeof sin), 0);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int s = -1;
    for (int i = 0; i < 100 && s < 0; i++) {
        s = accept(fd, (struct sockaddr *)&peer, &plen);
        if (s < 0) usleep(10000);
    }
    UNIT_CHECK(s >= 0);
    if (s >= 0) {
        char text[80];
        listen_format((struct sockaddr *)&peer, plen, text, sizeof text);
        UNIT_CHECK(!strncmp(text, "127.0.0.1:", 10));
        UNIT_EQ_INT(listen_is_loopback((struct sockaddr *)&peer), 1);
        close(s);
    }
    close(c);
    close(fd);

    /* after close, SO_REUSEADDR lets the port be bound again at once despite TIME_WAIT */
    UNIT_EQ_INT(listen_open(spec, &fd, &err), 0);
    if (fd >= 0) close(fd);

    struct sockaddr_in other;
    memset(&other, 0, sizeof other);
    other.sin_family = AF_INET;
    other.sin_addr.s_addr = inet_addr("192.0.2.1");
    UNIT_EQ_INT(listen_is_loopback((struct sockaddr *)&other), 0);
    buf_fini(&err);
}

static void test_tcp6(void)
{
    struct buf err = BUF_INIT;
    int fd;
    int r = listen_open("[::1]:0", &fd, &err);
    if (r && strstr(buf_cstr(&err), "Cannot assign")) {
        printf("no IPv6 loopback: skipping the IPv6 bind test\n");
        buf_fini(&err);
        return;
    }
    UNIT_EQ_INT(r, 0);
    int v = 0;
    socklen_t vl = sizeof v;
    UNIT_EQ_INT(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl), 0);
    UNIT_CHECK(v != 0);
    int port = listen_local_port(fd);
    UNIT_CHECK(port > 0);
    /* V6ONLY: the same port on IPv4 is still free */
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    int fd4;
    UNIT_EQ_INT(listen_open(spec, &fd4, &err), 0);
    if (fd4 >= 0) close(fd4);
    close(fd);

    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_addr = in6addr_loopback;
    UNIT_EQ_INT(listen_is_loopback((struct sockaddr *)&s6), 1);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    UNIT_EQ_INT(listen_is_loopback((struct sockaddr *)&s6), 1);
    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    UNIT_EQ_INT(listen_is_loopback((struct sockaddr *)&s6), 0);
    buf_fini(&err);
}

static void test_unix(void)
{
    char dir[] = "/tmp/coffer-listen-XXXXXX";
    UNIT_CHECK(mkdtemp(dir) != NULL);
    char *path = xasprintf("%s/s.sock", dir);
    struct buf err = BUF_INIT;
    int fd;
    UNIT_EQ_INT(listen_open(path, &fd, &err), 0);
    struct stat st;
    UNIT_EQ_INT(lstat(path, &st), 0);
    UNIT_CHECK(S_ISSOCK(st.st_mode));
    UNIT_EQ_INT(st.st_mode & 0777, LISTEN_UNIX_MODE);   /* H4: never 0666 */

    /* live: somebody listens, so the path is in use and is not unlinked */
    int fd2;
    UNIT_EQ_INT(listen_open(path, &fd2, &err), CF_E_IO);
    UNIT_CHECK(strstr(buf_cstr(&err), "cannot listen on ") != NULL);
    UNIT_CHECK(strstr(buf_cstr(&err), strerror(EADDRINUSE)) != NULL);
    UNIT_EQ_INT(lstat(path, &st), 0);

    /* stale: the listener is gone but its file is left; binding again succeeds */
    close(fd);
    UNIT_EQ_INT(lstat(path, &st), 0);
    buf_reset(&err);
    UNIT_EQ_INT(listen_open(path, &fd, &err), 0);
    if (fd >= 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un un;
        memset(&un, 0, sizeof un);
        un.sun_family = AF_UNIX;
        strcpy(un.sun_path, path);
        UNIT_EQ_INT(connect(c, (struct sockaddr *)&un, sizeof un), 0);
        close(c);
        close(fd);
    }
    unlink(path);

    /* a regular file at the path is never removed */
    FILE *f = fopen(path, "w");
    UNIT_CHECK(f != NULL);
    if (f) fclose(f);
    buf_reset(&err);
    UNIT_EQ_INT(listen_open(path, &fd, &err), CF_E_IO);
    UNIT_CHECK(strstr(buf_cstr(&err), "not a socket") != NULL);
    UNIT_EQ_INT(lstat(path, &st), 0);
    UNIT_CHECK(S_ISREG(st.st_mode));
    unlink(path);

    /* H4: mode and group given at bind time; a leftover umask of ours does not matter */
    struct listen_unix_perm perm = { 0640, (long)getegid() };
    mode_t old_mask = umask(0);
    buf_reset(&err);
    UNIT_EQ_INT(listen_open_perm(path, &perm, &fd, &err), 0);
    UNIT_EQ_INT(umask(old_mask), 0);          /* restored after bind */
    UNIT_EQ_INT(lstat(path, &st), 0);
    UNIT_EQ_INT(st.st_mode & 0777, 0640);
    UNIT_EQ_INT((long)st.st_gid, (long)getegid());
    if (fd >= 0) close(fd);
    unlink(path);

    /* a directory that does not exist */
    char *nodir = xasprintf("%s/nodir/s.sock", dir);
    buf_reset(&err);
    UNIT_EQ_INT(listen_open(nodir, &fd, &err), CF_E_IO);
    UNIT_CHECK(strstr(buf_cstr(&err), strerror(ENOENT)) != NULL);
    free(nodir);

    rmdir(dir);
    free(path);
    buf_fini(&err);
}

int main(void)
{
    test_parse();
    test_tcp();
    test_tcp6();
    test_unix();
    UNIT_DONE();
}
