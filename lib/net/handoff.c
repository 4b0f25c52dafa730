/* handoff.c: a client connection and its state between cofferd's children (handoff.h). */
#include "net/handoff.h"
#include "core/error.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HANDOFF_MAGIC "CFHO"
#define HANDOFF_VERSION 1u

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* wait_for: poll sock for ev until deadline; 0 ready, CF_E_TIMEOUT, CF_E_IO */
static int wait_for(int sock, short ev, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return CF_E_TIMEOUT;
        struct pollfd p = { sock, ev, 0 };
        int n = poll(&p, 1, (int)left);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return CF_E_IO;
    }
}

int handoff_send(int sock, int fd, uint32_t kind, const void *data, size_t len, int timeout_ms)
{
    if (len > HANDOFF_MAX_STATE) return CF_E_IO;
    long long deadline = now_ms() + timeout_ms;
    unsigned char hdr[16];
    memcpy(hdr, HANDOFF_MAGIC, 4);
    put32(hdr + 4, HANDOFF_VERSION);
    put32(hdr + 8, kind);
    put32(hdr + 12, (uint32_t)len);
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov[2] = { { hdr, sizeof hdr }, { (void *)data, len } };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = len ? 2 : 1;
    m.msg_control = ctl.b;
    m.msg_controllen = sizeof ctl.b;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    size_t total = sizeof hdr + len, sent = 0;
    /* the descriptor goes with the first bytes; later writes carry the rest of the state */
    while (sent < total) {
        ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return CF_E_IO;
            int r = wait_for(sock, POLLOUT, deadline);
            if (r < 0) return r;
            continue;
        }
        sent += (size_t)n;
        m.msg_control = NULL;
        m.msg_controllen = 0;
        /* move the iovecs past what went */
        size_t skip = (size_t)n;
        while (m.msg_iovlen && skip >= m.msg_iov[0].iov_len) {
            skip -= m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen) {
            m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + skip;
            m.msg_iov[0].iov_len -= skip;
        }
    }
    return 0;
}

/* read_some: recvmsg into p[0, n), taking a descriptor when one comes (*fd_r, -1 before). */
static ssize_t read_some(int sock, void *p, size_t n, int *fd_r)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec iov = { p, n };
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.b;
    m.msg_controllen = sizeof ctl.b;
    ssize_t got = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0) return got;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            /* exactly one descriptor is expected: any other is closed at once */
            if (*fd_r < 0) *fd_r = fd;
            else close(fd);
        }
    }
    return got;
}

int handoff_recv(int sock, int *fd_r, uint32_t *kind_r, struct buf *data, int timeout_ms)
{
    *fd_r = -1;
    buf_reset(data);
    long long deadline = now_ms() + timeout_ms;
    unsigned char hdr[16];
    size_t have = 0, want = sizeof hdr, len = 0;
    int fd = -1, r = 0;
    while (have < want) {
        ssize_t n;
        if (have < sizeof hdr) {
            n = read_some(sock, hdr + have, sizeof hdr - have, &fd);
        } else {
            buf_ensure(data, want - have);
            n = read_some(sock, data->s + data->len, want - have, &fd);
        }
        if (n == 0) {
            r = CF_E_EOF;
            goto fail;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                r = CF_E_IO;
                goto fail;
            }
            r = wait_for(sock, POLLIN, deadline);
            if (r < 0) goto fail;
            continue;
        }
        if (have >= sizeof hdr) data->len += (size_t)n;
        have += (size_t)n;
        if (have == sizeof hdr && want == sizeof hdr) {
            if (memcmp(hdr, HANDOFF_MAGIC, 4) || get32(hdr + 4) != HANDOFF_VERSION) {
                r = CF_E_PARSE;
                goto fail;
            }
            len = get32(hdr + 12);
            if (len > HANDOFF_MAX_STATE) {
                r = CF_E_PARSE;
                goto fail;
            }
            want = sizeof hdr + len;
        }
    }
    if (fd < 0) {
        r = CF_E_PARSE;
        goto fail;
    }
    *kind_r = get32(hdr + 8);
    *fd_r = fd;
    buf_cstr(data);
    return 0;
fail:
    if (fd >= 0) close(fd);
    buf_reset(data);
    return r;
}

int handoff_peer_ok(int sock, long *pid_r, long *uid_r)
{
    *pid_r = *uid_r = -1;
    struct ucred cr;
    socklen_t l = sizeof cr;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) return 0;
    *pid_r = cr.pid;
    *uid_r = (long)cr.uid;
    if (cr.uid != geteuid() || cr.pid <= 0) return 0;
    char path[64], b[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)cr.pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return 0;
    b[n] = '\0';
    /* "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it */
    char *p = strrchr(b, ')');
    char state;
    int ppid;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2) return 0;
    /* a sibling under the same master; never our own parent's parent (1 is not a master) */
    return ppid == (int)getppid() && getppid() != 1;
}

int handoff_listener_ok(int sock, long *pid_r)
{
    *pid_r = -1;
    struct ucred cr;
    socklen_t l = sizeof cr;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) return 0;
    *pid_r = cr.pid;
    /* not the pid: cofferd binds before it daemonizes, so the process that called listen()
     * may be gone; root (the master binds before it drops root) or our own uid (a socket
     * bound at a reload, after the drop) are the only ones trusted with the path anyway */
    return cr.uid == 0 || cr.uid == geteuid();
}
