/* notify.c: the sd_notify protocol written directly (notify.h): a datagram of newline-separated
 * KEY=VALUE assignments sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name when it starts with '@'). Not libsystemd: the protocol is one sendto(), and
 * linking libsystemd would add a library (and its own dependencies) to a process that starts
 * as root, for nothing cofferd needs beyond this. */
#include "notify.h"
#include "master-int.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un g_addr;
static socklen_t g_addrlen;      /* 0: not under a service manager */
static int g_warned;
static char *g_last_status;

void notify_init(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    if (s && (s[0] == '/' || s[0] == '@') && strlen(s) < sizeof g_addr.sun_path) {
        memset(&g_addr, 0, sizeof g_addr);
        g_addr.sun_family = AF_UNIX;
        size_t n = strlen(s);
        memcpy(g_addr.sun_path, s, n);
        if (s[0] == '@') g_addr.sun_path[0] = '\0';   /* abstract: no terminating NUL counted */
        g_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (s[0] == '/'));
    } else if (s) {
        log_warn("notify_socket_invalid", "socket=%s", log_quote(s));
    }
    unsetenv("NOTIFY_SOCKET");
}

void notify_send(const char *fmt, ...)
{
    if (!g_addrlen) return;
    struct buf msg = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ssize_t n = -1;
    if (fd >= 0) {
        n = sendto(fd, msg.s, msg.len, MSG_DONTWAIT | MSG_NOSIGNAL,
                   (const struct sockaddr *)&g_addr, g_addrlen);
        int e = errno;
        close(fd);
        errno = e;
    }
    if (n < 0 && !g_warned) {
        g_warned = 1;
        log_warn("notify_failed", "error=%s", log_quote(strerror(errno)));
    }
    buf_fini(&msg);
}

void notify_status(void)
{
    if (!g_addrlen) return;
    /* "imap 2 workers (1 busy), lmtp 1 worker (0 busy)": one entry per service name, in
     * configuration order, summed over records a reload is retiring */
    struct strarr names = STRARR_INIT;
    for (struct service *s = g_services; s; s = s->next)
        if (strarr_find(&names, s->name) < 0) strarr_add(&names, s->name);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < names.count; i++) {
        int workers = 0, busy = 0;
        for (struct service *s = g_services; s; s = s->next) {
            if (strcmp(s->name, names.v[i])) continue;
            int t, id, r, bz;
            count_children(s, &t, &id, &r, &bz);
            workers += t;
            busy += bz;
        }
        buf_printf(&b, "%s%s %d worker%s (%d busy)", i ? ", " : "", names.v[i], workers,
                   workers == 1 ? "" : "s", busy);
    }
    if (g_stopping) buf_appends(&b, names.count ? "; stopping" : "stopping");
    const char *now = buf_cstr(&b);
    if (!g_last_status || strcmp(g_last_status, now)) {
        notify_send("STATUS=%s", now);
        free(g_last_status);
        g_last_status = xstrdup(now);
    }
    buf_fini(&b);
    strarr_fini(&names);
}
