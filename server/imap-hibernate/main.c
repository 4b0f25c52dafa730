/* main.c: imap-hibernate, one process that holds IMAP sessions idle in IDLE for imapd
 * (man/imap-hibernate.8): each is a socket, its serialized state and a place in an epoll set,
 * and an inotify watch on its selected mailbox shared with the other sessions on it. A session
 * goes back to an imapd worker, through the imap service's resume socket, when the client
 * sends anything, its mailbox changes or its IDLE reaches its deadline. */
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap-hibstate.h"
#include "net/handoff.h"
#include "net/worker.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/mailbox-watch.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* how long an incoming hand-off may take to arrive once its connection is accepted */
#define RECV_MS 1000
/* a session that could not be handed back (no imapd listening, its queue full) is tried
 * again this often */
#define RETRY_MS 100

struct wslot;

/* What an epoll event points at: a session, a listener or the watch set. */
enum ev_kind { EV_CONN, EV_LISTEN, EV_WATCH };
struct evsrc {
    enum ev_kind kind;
    int fd;
};

/* One hibernated session: about 90 bytes plus its state text. */
struct hconn {
    struct evsrc src;           /* kind EV_CONN, fd the client's socket: epoll points here */
    uint32_t len;
    char *state;                /* the state as imapd sent it; handed back unchanged */
    int64_t deadline_ms;        /* the IDLE's own deadline */
    uint32_t pending;           /* a hand-back kind that could not be sent yet (0: none) */
    uint64_t modseq;            /* the mailbox's mod-sequence the client's view stands at */
    struct wslot *ws;           /* the selected mailbox's watch; NULL in authenticated state */
    struct hconn *prev, *next;  /* every session */
    struct hconn *wprev, *wnext;   /* the sessions on ws */
};

/* One watched mailbox directory: its inotify watch and the sessions waiting on it. */
struct wslot {
    int wd;
    int refs;
    char *partition_path;       /* the mailbox, to read its header when the watch fires */
    char uniqueid[33];
    struct hconn *head;
    struct wslot *next;         /* hash chain */
};

#define WS_BUCKETS 4096u


static struct {
    const struct config *cfg;
    int ep;
    struct mailbox_watchset *watches;
    struct wslot *buckets[WS_BUCKETS];
    struct hconn *all;
    long count, max;
    long npending;
    int64_t next_deadline;
    struct evsrc *listeners;
    struct evsrc watch;
} g;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* log_context: the session, user and mailbox of h's state as the log context (so its lines
 * carry the same session id as imapd's), or cleared with h NULL. */
static void log_context(const struct hconn *h)
{
    if (!h) {
        log_set_session(NULL);
        log_set_user(NULL);
        log_set_mailbox(NULL);
        return;
    }
    char v[512];
    imap_hibstate_field(h->state, h->len, "session", v, sizeof v);
    log_set_session(v[0] ? v : NULL);
    imap_hibstate_field(h->state, h->len, "user", v, sizeof v);
    log_set_user(v[0] ? v : NULL);
    imap_hibstate_field(h->state, h->len, "mailbox", v, sizeof v);
    log_set_mailbox(v[0] ? v : NULL);
}

/* ---- watched mailboxes ---- */

static struct wslot **ws_find(int wd)
{
    struct wslot **pp = &g.buckets[(unsigned)wd % WS_BUCKETS];
    while (*pp && (*pp)->wd != wd) pp = &(*pp)->next;
    return pp;
}

/* ws_attach: h waits on the watch wd (taken from mailbox_watchset_add) of the mailbox
 * uniqueid on partition_path. */
static void ws_attach(struct hconn *h, int wd, const char *partition_path, const char *uniqueid)
{
    struct wslot **pp = ws_find(wd);
    if (!*pp) {
        *pp = xzmalloc(sizeof **pp);
        (*pp)->wd = wd;
        (*pp)->partition_path = xstrdup(partition_path);
        snprintf((*pp)->uniqueid, sizeof (*pp)->uniqueid, "%s", uniqueid);
    }
    struct wslot *w = *pp;
    w->refs++;
    h->ws = w;
    h->wprev = NULL;
    h->wnext = w->head;
    if (w->head) w->head->wprev = h;
    w->head = h;
}

static void ws_detach(struct hconn *h)
{
    struct wslot *w = h->ws;
    if (!w) return;
    if (h->wprev) h->wprev->wnext = h->wnext;
    else w->head = h->wnext;
    if (h->wnext) h->wnext->wprev = h->wprev;
    h->ws = NULL;
    if (--w->refs == 0) {
        /* the last session on the mailbox: its watch goes */
        mailbox_watchset_remove(g.watches, w->wd);
        struct wslot **pp = ws_find(w->wd);
        *pp = w->next;
        free(w->partition_path);
        free(w);
    }
}

/* ---- sessions ---- */

static void conn_free(struct hconn *h, int close_fd)
{
    ws_detach(h);
    if (h->prev) h->prev->next = h->next;
    else g.all = h->next;
    if (h->next) h->next->prev = h->prev;
    /* out of the epoll set before the close: the registration belongs to the open file,
     * which the imapd worker that sent or takes the connection holds too, so a close alone
     * would leave it (and events pointing at h) behind */
    if (h->pending) g.npending--;
    else epoll_ctl(g.ep, EPOLL_CTL_DEL, h->src.fd, NULL);
    if (close_fd) close(h->src.fd);
    free(h->state);
    free(h);
    g.count--;
}

/* connect_resume: a connection to the imap service's resume socket, or -1. */
static int connect_resume(void)
{
    const char *path = config_str(g.cfg, CFG_IMAP_HIBERNATE_RESUME_SOCKET);
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    if (!*path || strlen(path) >= sizeof un.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(un.sun_path, path, strlen(path));
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) return -1;
    if (connect(s, (struct sockaddr *)&un, sizeof un) < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

/* wake: hand h back to an imapd worker (kind says why). The resume socket's listen queue
 * holds it until a worker accepts; when even that cannot be had (no imapd, the queue full)
 * h waits, out of the epoll set, and is tried again every RETRY_MS. 1 when h is gone. */
static int wake(struct hconn *h, uint32_t kind)
{
    int s = connect_resume();
    int r = s < 0 ? CF_E_AGAIN : handoff_send(s, h->src.fd, kind, h->state, h->len, 1000);
    if (s >= 0) close(s);
    log_context(h);
    if (r < 0) {
        if (!h->pending) {
            log_warn("wake_delayed", "reason=%s error=%s", hibernate_kind_name(kind),
                     log_quote(s < 0 ? strerror(errno) : cf_strerror(r)));
            epoll_ctl(g.ep, EPOLL_CTL_DEL, h->src.fd, NULL);
            g.npending++;
        }
        /* a later reason never hides input: the worker reads the socket anyway */
        h->pending = kind;
        log_context(NULL);
        return 0;
    }
    log_info("wake", "reason=%s sessions=%ld", hibernate_kind_name(kind), g.count - 1);
    log_context(NULL);
    conn_free(h, 1);
    return 1;
}

/* client_event: the client's socket is readable or closed. */
static void client_event(struct hconn *h, uint32_t events)
{
    char b;
    ssize_t n = recv(h->src.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) {
        wake(h, HIBERNATE_KIND_INPUT);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) &&
        !(events & (EPOLLHUP | EPOLLERR)))
        return;
    /* the client went away while asleep: nothing to hand back */
    log_context(h);
    log_info("disconnect", "reason=%s hibernated=1", n == 0 ? "eof" : "io");
    log_context(NULL);
    conn_free(h, 1);
}

/* ws_wake_changed: wake the sessions on w whose view is behind the mailbox. The directory's
 * events include ones that change nothing (every close of the index by a writer, such as the
 * imapd worker that just handed a session over), so the header says whether anything was
 * committed: one read under the shared lock for all the sessions on the mailbox. */
static void ws_wake_changed(struct wslot *w)
{
    struct index_header ih;
    int r = mailbox_status(w->partition_path, w->uniqueid, &ih);
    /* waking the last session frees w: count the sessions left instead of reading w */
    int left = w->refs;
    for (struct hconn *h = w->head, *nx; h && left > 0; h = nx, left--) {
        nx = h->wnext;
        /* a deleted or damaged mailbox too: the worker says BYE as a live IDLE would */
        if (!h->pending && (r < 0 || ih.highestmodseq != h->modseq)) wake(h, HIBERNATE_KIND_CHANGE);
    }
}

/* mailbox_changed: a commit in the mailbox of watch wd (-1: events were lost: every mailbox). */
static void mailbox_changed(int wd, void *rock)
{
    (void)rock;
    if (wd < 0) {
        for (unsigned b = 0; b < WS_BUCKETS; b++)
            for (struct wslot *w = g.buckets[b], *nx; w; w = nx) {
                nx = w->next;
                ws_wake_changed(w);
            }
        return;
    }
    struct wslot *w = *ws_find(wd);
    if (w) ws_wake_changed(w);
}

/* refuse: answer a hand-off we will not take; imapd keeps the session. */
static void refuse(int s, const char *reason)
{
    char no = '-';
    if (write(s, &no, 1) < 0) {
        /* imapd gone: it keeps nothing either way */
    }
    log_info("hibernate_refused", "reason=%s", reason);
}

/* take: a connection from an imapd worker on our listener: check the peer, read the session,
 * watch its mailbox and say yes. */
static void take(int s)
{
    long pid, uid;
    if (!handoff_peer_ok(s, &pid, &uid)) {
        log_warn("hibernate_refused", "reason=peer peer_pid=%ld peer_uid=%ld", pid, uid);
        return;
    }
    struct buf st = BUF_INIT;
    struct imap_hibstate hs;
    imap_hibstate_init(&hs);
    uint32_t kind = 0;
    int fd = -1;
    int r = handoff_recv(s, &fd, &kind, &st, RECV_MS);
    if (r < 0) {
        log_warn("hibernate_refused", "reason=%s peer_pid=%ld", log_quote(cf_strerror(r)), pid);
        goto out;
    }
    const char *why = NULL;
    if (kind != HIBERNATE_KIND_SLEEP || imap_hibstate_parse(&hs, st.s, st.len, &why) < 0) {
        log_warn("hibernate_refused", "reason=state error=%s peer_pid=%ld",
                 log_quote(why ? why : "kind"), pid);
        goto out;
    }
    if (g.count >= g.max) {
        refuse(s, "max_connections");
        goto out;
    }
    int wd = -1;
    if (hs.mailbox) {
        wd = mailbox_watchset_add(g.watches, hs.partition_path, hs.uniqueid);
        if (wd < 0) {
            refuse(s, "watch");
            goto out;
        }
    }
    struct hconn *h = xzmalloc(sizeof *h);
    h->src.fd = fd;
    fd = -1;
    h->len = (uint32_t)st.len;
    h->state = buf_release(&st);
    h->deadline_ms = hs.deadline_ms;
    h->next = g.all;
    if (g.all) g.all->prev = h;
    g.all = h;
    g.count++;
    h->modseq = hs.modseq;
    if (wd >= 0) ws_attach(h, wd, hs.partition_path, hs.uniqueid);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = h };
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, h->src.fd, &ev) < 0) {
        log_err("hibernate_refused", "reason=epoll error=%s", log_quote(strerror(errno)));
        refuse(s, "epoll");
        conn_free(h, 1);
        goto out;
    }
    char yes = HANDOFF_ACK;
    if (write(s, &yes, 1) != 1) {
        /* the worker died or gave up: it is not serving the session, so we do */
    }
    if (h->deadline_ms < g.next_deadline) g.next_deadline = h->deadline_ms;
    log_context(h);
    log_info("hibernated", "sessions=%ld", g.count);
    log_context(NULL);
    /* A commit between imapd's last sync and our watch would go unnoticed: compare the
     * header with the view's mod-sequence now that the watch is in place. */
    if (hs.mailbox) {
        struct index_header ih;
        int sr = mailbox_status(hs.partition_path, hs.uniqueid, &ih);
        if (sr < 0 || ih.highestmodseq != hs.modseq) {
            log_debug("hibernate_changed", "error=%s highestmodseq=%llu view_modseq=%llu",
                      sr < 0 ? cf_strerror(sr) : "none",
                      sr < 0 ? 0ULL : (unsigned long long)ih.highestmodseq,
                      (unsigned long long)hs.modseq);
            wake(h, HIBERNATE_KIND_CHANGE);
        }
    }
out:
    if (fd >= 0) close(fd);
    imap_hibstate_fini(&hs);
    buf_fini(&st);
}

static void accept_all(int lfd)
{
    for (;;) {
        int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0) return;   /* EAGAIN: drained; anything else: tried again at the next wake */
        take(s);
        close(s);
    }
}

/* deadlines: hand back the sessions whose IDLE has timed out (imapd says BYE) */
static void deadlines(int64_t now)
{
    g.next_deadline = INT64_MAX;
    for (struct hconn *h = g.all, *nx; h; h = nx) {
        nx = h->next;
        if (h->pending) continue;
        if (h->deadline_ms <= now) wake(h, HIBERNATE_KIND_TIMEOUT);
        else if (h->deadline_ms < g.next_deadline) g.next_deadline = h->deadline_ms;
    }
}

static void retry_pending(void)
{
    for (struct hconn *h = g.all, *nx; h && g.npending; h = nx) {
        nx = h->next;
        if (h->pending) {
            uint32_t k = h->pending;
            if (!wake(h, k)) return;   /* still no room: try the rest later too */
        }
    }
}

/* goodbye: SIGTERM: the server is stopping, as imapd says it to a session in IDLE */
static void goodbye(void)
{
    static const char bye[] = "* BYE Server shutting down\r\n";
    while (g.all) {
        struct hconn *h = g.all;
        if (send(h->src.fd, bye, sizeof bye - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* the client is gone or its buffer full: it is closed anyway */
        }
        log_context(h);
        log_info("disconnect", "reason=shutdown hibernated=1");
        conn_free(h, 1);
    }
    log_context(NULL);
}

/* hibernate_run: the process's life (worker_ops.run). */
static int hibernate_run(const struct config *cfg, const struct config_service *svc, int nfds)
{
    (void)svc;
    g.cfg = cfg;
    g.max = (long)config_int(cfg, CFG_IMAP_HIBERNATE_MAX_CONNECTIONS);
    g.next_deadline = INT64_MAX;
    /* a descriptor per session: take all the hard limit allows (an imapd worker needs only
     * a few, so the limit cofferd was started with is usually set low) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)g.max + 64 > rl.rlim_cur)
        log_warn("hibernate_fd_limit", "max_connections=%ld nofile=%llu", g.max,
                 (unsigned long long)rl.rlim_cur);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0 || mailbox_watchset_new(&g.watches) < 0) {
        log_err("hibernate_failed", "error=\"epoll or inotify: %s\"", strerror(errno));
        return 1;
    }
    g.listeners = xreallocarray(NULL, (size_t)nfds, sizeof *g.listeners);
    for (int i = 0; i < nfds; i++) {
        int fd = WORKER_FIRST_FD + i;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        g.listeners[i] = (struct evsrc){ EV_LISTEN, fd };
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &g.listeners[i] };
        if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            log_err("hibernate_failed", "error=\"epoll_ctl: %s\"", strerror(errno));
            return 1;
        }
    }
    g.watch = (struct evsrc){ EV_WATCH, mailbox_watchset_fd(g.watches) };
    struct epoll_event wev = { .events = EPOLLIN, .data.ptr = &g.watch };
    epoll_ctl(g.ep, EPOLL_CTL_ADD, g.watch.fd, &wev);
    log_info("hibernate_ready", "max_connections=%ld", g.max);
    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR2);
    struct epoll_event evs[256];
    for (;;) {
        sigprocmask(SIG_BLOCK, &block, &orig);
        if (worker_shutdown || worker_retire) {
            sigprocmask(SIG_SETMASK, &orig, NULL);
            break;
        }
        int64_t now = now_ms();
        int timeout = -1;
        if (g.npending) timeout = RETRY_MS;
        if (g.next_deadline != INT64_MAX) {
            int64_t left = g.next_deadline - now;
            if (left < 0) left = 0;
            if (left > 60000) left = 60000;
            if (timeout < 0 || left < timeout) timeout = (int)left;
        }
        int n = epoll_pwait(g.ep, evs, 256, timeout, &orig);
        int e = errno;
        sigprocmask(SIG_SETMASK, &orig, NULL);
        if (n < 0) {
            if (e == EINTR) continue;
            log_err("hibernate_failed", "error=\"epoll_wait: %s\"", strerror(e));
            return 1;
        }
        /* sessions first: a wake below (a mailbox change) may free a session whose own
         * event is in this round too; each session appears at most once, and a session's
         * event frees only that session */
        for (int i = 0; i < n; i++) {
            struct evsrc *src = evs[i].data.ptr;
            if (src->kind == EV_CONN) client_event((struct hconn *)(void *)src, evs[i].events);
        }
        /* by pointer, not through it: the sessions' entries may point at freed memory now */
        for (int i = 0; i < n; i++) {
            struct evsrc *src = evs[i].data.ptr;
            if (src == &g.watch) mailbox_watchset_changed(g.watches, mailbox_changed, NULL);
            else if (src >= g.listeners && src < g.listeners + nfds) accept_all(src->fd);
        }
        now = now_ms();
        if (now >= g.next_deadline) deadlines(now);
        if (g.npending) retry_pending();
    }
    if (worker_retire) {
        /* a reload: the sessions go back to the (new) imapd workers, which hibernate them
         * again into the new imap-hibernate */
        for (struct hconn *h = g.all, *nx; h; h = nx) {
            nx = h->next;
            if (!wake(h, h->pending ? h->pending : HIBERNATE_KIND_RETIRE)) {
                /* no imapd to take it: it stays until the end below */
            }
        }
    }
    goodbye();
    mailbox_watchset_free(&g.watches);
    free(g.listeners);
    close(g.ep);
    return 0;
}

static const struct worker_ops hibernate_ops = {
    .name = "imap-hibernate",
    .run = hibernate_run,
};

int main(int argc, char **argv)
{
    return worker_main(argc, argv, &hibernate_ops);
}
