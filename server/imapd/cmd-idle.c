/* cmd-idle.c: IDLE (RFC 2177): push the selected mailbox's changes as they happen until the
 * client says DONE. Changes are noticed through inotify on the mailbox directory (a commit
 * rewrites the index there), with a periodic sync as the fallback when inotify is missing or
 * an event is lost. */
#include "imapd.h"
#include "selected.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"
#include "net/worker.h"
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

/* How long IDLE may last without DONE: RFC 2177 asks clients to re-issue it every 29 minutes,
 * so the session's own idle timeout is stretched to at least 31 minutes. */
#define IDLE_MIN_SECONDS (31 * 60)
/* Periodic sync: with inotify a safety net; without it, how late an update may come. */
#define IDLE_POLL_MS_INOTIFY 5000
#define IDLE_POLL_MS_PLAIN 300

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* watch_open: an inotify fd watching the selected mailbox's directory, or -1. */
static int watch_open(struct client *c)
{
    if (!c->sel) return -1;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return -1;
    if (inotify_add_watch(fd, mailbox_dir(c->sel->mb),
                          IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE_SELF |
                              IN_MOVE_SELF) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void watch_drain(int fd)
{
    char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (read(fd, b, sizeof b) > 0) {}
}

/* push: sync and send what changed, then flush. 0, or <0 when the session must end. */
static int push(struct client *c)
{
    if (c->sel && c->state == CLIENT_SELECTED) {
        int r = selected_sync(c, 0);
        if (r < 0) {
            selected_sync_failed(c, r);
            stream_flush(c->stream);
            return r;
        }
    }
    if (stream_flush(c->stream) < 0) {
        c->end_reason = "io";
        return CF_E_IO;
    }
    return 0;
}

void cmd_idle(struct client *c, const struct imap_command *cmd)
{
    if (cmd->nargs) {
        client_tagged(c, cmd->tag, "BAD IDLE takes no arguments");
        return;
    }
    int64_t limit = config_int(c->ws->cfg, CFG_IDLE_TIMEOUT);
    if (limit < IDLE_MIN_SECONDS) limit = IDLE_MIN_SECONDS;
    if (limit > INT32_MAX) limit = INT32_MAX;   /* L13: a huge duration must not overflow */
    int64_t deadline = now_ms() + limit * 1000;
    int wfd = watch_open(c);
    int poll_ms = wfd >= 0 ? IDLE_POLL_MS_INOTIFY : IDLE_POLL_MS_PLAIN;
    struct buf line = BUF_INIT;
    stream_puts(c->stream, "+ idling\r\n");
    if (push(c) < 0) goto out;
    for (;;) {
        int r = stream_wait_readable(c->stream, 0);
        if (r == 0) {
            if (worker_shutdown) r = CF_E_SHUTDOWN;
            else if (now_ms() >= deadline) r = CF_E_TIMEOUT;
        }
        if (r == 0) {
            struct pollfd pf[2] = { { stream_fd(c->stream), POLLIN, 0 }, { wfd, POLLIN, 0 } };
            int pr = poll(pf, wfd >= 0 ? 2 : 1, poll_ms);
            if (pr < 0 && errno != EINTR) r = CF_E_IO;
            if (pr > 0 && wfd >= 0 && (pf[1].revents & POLLIN)) watch_drain(wfd);
            if (r == 0 && push(c) < 0) goto out;
            if (pr > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) r = 1;
            if (r == 0) continue;
        }
        if (r == 1) {
            r = stream_read_line(c->stream, &line);
            if (r == 0) {
                /* RFC 2177 section 3: DONE ends it; anything else is an error that ends it too */
                if (!strcasecmp(buf_cstr(&line), "DONE"))
                    client_tagged(c, cmd->tag, "OK IDLE terminated");
                else
                    client_tagged(c, cmd->tag, "BAD Expected DONE");
                break;
            }
        }
        if (r == CF_E_LIMIT) {
            client_tagged(c, cmd->tag, "BAD Line too long");
            goto out;
        }
        c->end_reason = worker_read_end(c->stream, r, &client_texts);
        break;
    }
out:
    if (wfd >= 0) close(wfd);
    buf_fini(&line);
}
