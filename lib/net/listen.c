/* listen.c: parsing and binding of cofferd's listen addresses. */
#include "net/listen.h"
#include "core/error.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int bad(struct buf *err, const char *spec, const char *why)
{
    buf_printf(err, "bad listen address '%s': %s\n", spec, why);
    return CF_E_PARSE;
}

static int parse_port(const char *s, int *port)
{
    if (!*s || strlen(s) > 5) return -1;
    int v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535) return -1;
    *port = v;
    return 0;
}

int listen_parse(const char *spec, struct listen_addr *out, struct buf *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->spec, sizeof out->spec, "%s", spec);
    if (!*spec) return bad(err, spec, "empty");
    if (strlen(spec) >= sizeof out->spec) return bad(err, spec, "too long");

    if (spec[0] == '/') {
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        if (strlen(spec) >= sizeof un->sun_path)
            return bad(err, spec, "UNIX socket path too long");
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, spec);
        out->family = AF_UNIX;
        out->salen = (socklen_t)sizeof *un;
        return 0;
    }

    char host[256];
    const char *portstr;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':')
            return bad(err, spec, "expected [IPv6]:PORT");
        size_t n = (size_t)(close - spec - 1);
        memcpy(host, spec + 1, n);
        host[n] = '\0';
        portstr = close + 2;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->sa;
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return bad(err, spec, "not an IPv6 address");
        int port;
        if (parse_port(portstr, &port)) return bad(err, spec, "port must be 0..65535");
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)port);
        out->family = AF_INET6;
        out->salen = (socklen_t)sizeof *s6;
        return 0;
    }

    const char *colon = strrchr(spec, ':');
    if (!colon) return bad(err, spec, "expected HOST:PORT, [IPv6]:PORT or an absolute path");
    if (strchr(spec, ':') != colon)
        return bad(err, spec, "IPv6 addresses must be written in brackets: [::1]:PORT");
    size_t n = (size_t)(colon - spec);
    if (n == 0) return bad(err, spec, "missing host (use *:PORT for every address)");
    memcpy(host, spec, n);
    host[n] = '\0';
    int port;
    if (parse_port(colon + 1, &port)) return bad(err, spec, "port must be 0..65535");

    struct sockaddr_in *s4 = (struct sockaddr_in *)&out->sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((unsigned short)port);
    out->family = AF_INET;
    out->salen = (socklen_t)sizeof *s4;
    if (!strcmp(host, "*")) {
        s4->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) return 0;

    /* A host name: bind its first address. Prefer IPv4, as "localhost" should mean 127.0.0.1
     * whatever the order in /etc/hosts. */
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int e = getaddrinfo(host, colon + 1, &hints, &res);
    if (e) {
        char why[400];
        snprintf(why, sizeof why, "cannot resolve '%s': %s", host, gai_strerror(e));
        return bad(err, spec, why);
    }
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET) { pick = ai; break; }
    if (!pick)
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (ai->ai_family == AF_INET6) { pick = ai; break; }
    if (!pick || pick->ai_addrlen > sizeof out->sa) {
        freeaddrinfo(res);
        return bad(err, spec, "host has no IPv4 or IPv6 address");
    }
    memset(&out->sa, 0, sizeof out->sa);
    memcpy(&out->sa, pick->ai_addr, pick->ai_addrlen);
    out->salen = pick->ai_addrlen;
    out->family = pick->ai_family;
    freeaddrinfo(res);
    return 0;
}

static int fail(struct buf *err, const struct listen_addr *a, int fd, int e, const char *extra)
{
    buf_printf(err, "cannot listen on %s: %s%s\n", a->spec, strerror(e), extra ? extra : "");
    if (fd >= 0) close(fd);
    return CF_E_IO;
}

/* unix_path_is_stale: 1 when path is a socket nobody accepts on (safe to unlink), 0 when it is
 * live, -1 when it is not a socket at all (never unlinked: it may be somebody's file). */
static int unix_path_is_stale(const struct listen_addr *a)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
    struct stat st;
    if (lstat(un->sun_path, &st) < 0) return 0;
    if (!S_ISSOCK(st.st_mode)) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int r = connect(fd, (const struct sockaddr *)&a->sa, a->salen);
    int e = errno;
    close(fd);
    if (r == 0) return 0;
    return e == ECONNREFUSED ? 1 : 0;
}

/* unix_bind: bind fd to the UNIX path with the file created as mode perm->mode and group
 * perm->gid from the start. H4: the path is never chmod'ed or chown'ed afterwards, because
 * between bind and a call on the path, whoever can write to the directory could replace it
 * (with a symlink to a file of theirs, which root would then chmod). On Linux the socket file
 * takes its mode from the umask at bind time (fchmod on the socket fd before bind changes the
 * socket inode, not the file) and its group from the effective gid (unless the directory is
 * set-group-ID), so both are set around bind and restored at once. Returns bind's result with
 * errno; setegid failing (not root, and gid neither our real nor saved gid) gives -1 too. */
static int unix_bind(int fd, const struct listen_addr *a, const struct listen_unix_perm *perm)
{
    unsigned mode = perm ? perm->mode & 0777 : LISTEN_UNIX_MODE;
    gid_t old_gid = getegid();
    int set_gid = perm && perm->gid >= 0 && (gid_t)perm->gid != old_gid;
    if (set_gid && setegid((gid_t)perm->gid) < 0) return -1;
    mode_t old_mask = umask((mode_t)(~mode & 0777));
    int r = bind(fd, (const struct sockaddr *)&a->sa, a->salen);
    int e = errno;
    umask(old_mask);
    if (set_gid && setegid(old_gid) < 0) {
        /* cannot happen when the first setegid worked; never go on with the wrong gid */
        abort();
    }
    errno = e;
    return r;
}

/* unix_check_group: after bind, whether the file got the group asked for (a set-group-ID
 * directory overrides the effective gid). Only looks, never changes the path. */
static int unix_check_group(const struct listen_addr *a, const struct listen_unix_perm *perm)
{
    if (!perm || perm->gid < 0) return 0;
    const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
    struct stat st;
    if (lstat(un->sun_path, &st) < 0) return -1;
    if (st.st_gid != (gid_t)perm->gid) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int listen_bind(const struct listen_addr *a, const struct listen_unix_perm *perm, int *fd_r,
                struct buf *err)
{
    *fd_r = -1;
    int fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail(err, a, -1, errno, NULL);
    int one = 1;
    if (a->family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return fail(err, a, fd, errno, NULL);
    /* Without V6ONLY, [::]:143 would also take the IPv4 port and a separate 0.0.0.0:143 in the
     * same config would fail with "in use"; each listen line binds exactly what it says. */
    if (a->family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        return fail(err, a, fd, errno, NULL);

    int is_unix = a->family == AF_UNIX;
    int r = is_unix ? unix_bind(fd, a, perm) : bind(fd, (const struct sockaddr *)&a->sa, a->salen);
    if (r < 0) {
        int e = errno;
        if (!is_unix || e != EADDRINUSE) return fail(err, a, fd, e, NULL);
        int stale = unix_path_is_stale(a);
        if (stale < 0) return fail(err, a, fd, e, " (the path exists and is not a socket)");
        if (stale == 0) return fail(err, a, fd, e, NULL);
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
        if (unlink(un->sun_path) < 0 && errno != ENOENT) return fail(err, a, fd, errno, NULL);
        if (unix_bind(fd, a, perm) < 0) return fail(err, a, fd, errno, NULL);
    }
    if (is_unix && unix_check_group(a, perm) < 0) {
        int e = errno;
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
        unlink(un->sun_path);
        return fail(err, a, fd, e, " (the socket file did not get socket_group; is the "
                                   "directory set-group-ID?)");
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) return fail(err, a, fd, errno, NULL);
    *fd_r = fd;
    return 0;
}

int listen_open_perm(const char *spec, const struct listen_unix_perm *perm, int *fd_r,
                     struct buf *err)
{
    struct listen_addr a;
    *fd_r = -1;
    int r = listen_parse(spec, &a, err);
    if (r) return r;
    return listen_bind(&a, perm, fd_r, err);
}

int listen_open(const char *spec, int *fd_r, struct buf *err)
{
    return listen_open_perm(spec, NULL, fd_r, err);
}

void listen_format(const struct sockaddr *sa, socklen_t len, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN];
    if (n == 0) return;
    out[0] = '\0';
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        snprintf(out, n, "%s:%u", host, (unsigned)ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        snprintf(out, n, "[%s]:%u", host, (unsigned)ntohs(s6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(out, n, "unix");
    } else {
        snprintf(out, n, "unknown");
    }
}

int listen_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_UNIX) return 1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)) return 1;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) return s6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

int listen_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}
