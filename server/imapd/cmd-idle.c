/* cmd-idle.c: IDLE (RFC 2177): push the selected mailbox's changes as they happen until the
 * client says DONE. Commits are noticed through the store's mailbox watch, with a periodic
 * sync as the fallback when the watch cannot be had or an event is lost. */
#include "imapd.h"
#include "selected.h"
#include "notify.h"
#include "hibernate.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"
#include "net/worker.h"
#include "store/mailbox-watch.h"
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* How long IDLE may last without DONE: RFC 2177 asks clients to re-issue it every 29 minutes,
 * so the session's own idle timeout is stretched to at least 31 minutes. */
#define IDLE_MIN_SECONDS (31 * 60)
/* Periodic sync: with the watch a safety net; without it, how late an update may come. */
#define IDLE_POLL_MS_WATCH 5000
#define IDLE_POLL_MS_PLAIN 300

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* push: sync and send what changed, then flush. 0, or <0 when the session must end. */
static int push(struct client *c)
{
    /* RFC 5465 section 4: with NOTIFY, IDLE sends what NOTIFY asked for, nothing else */
    if (notify_active(c)) return notify_idle_push(c);
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

/* idle_run: the IDLE loop of tag until DONE, the deadline, the end of the session, or its
 * hand-off to imap-hibernate (hibernate.h). hib_first_ms: when to try the first hand-off
 * (CLOCK_MONOTONIC ms; 0: after imap_hibernate_timeout from now). */
static void idle_run(struct client *c, const char *tag, int64_t deadline, int64_t hib_first_ms)
{
    struct mailbox_watch *watch = NULL;
    if (c->sel && !notify_active(c) && mailbox_watch_open(c->sel->mb, &watch) < 0) watch = NULL;
    int poll_ms = watch ? IDLE_POLL_MS_WATCH : IDLE_POLL_MS_PLAIN;
    if (notify_active(c)) poll_ms = NOTIFY_SCAN_MS;
    int64_t hib_delay = hibernate_delay_ms(c);
    int64_t hib_at = hib_delay < 0 ? -1 : hib_first_ms ? hib_first_ms : now_ms() + hib_delay;
    struct buf line = BUF_INIT;
    if (push(c) < 0) goto out;
    for (;;) {
        /* the first look does not wait: input already there is read before anything is pushed */
        int r = stream_wait_readable(c->stream, -1, 0);
        if (r == 0) {
            if (worker_shutdown) r = CF_E_SHUTDOWN;
            else if (now_ms() >= deadline) r = CF_E_TIMEOUT;
        }
        if (r == 0 && hib_at >= 0 && now_ms() >= hib_at) {
            /* quiet for imap_hibernate_timeout: the connection moves to imap-hibernate, and
             * this worker is free for others */
            if (hibernate_try(c, tag, deadline)) goto out;
            if (c->end_reason) goto out;
            hib_at = now_ms() + (hib_delay > 0 ? hib_delay : 1000);
            continue;
        }
        if (r == 0) {
            int nfd = notify_idle_fd(c);     /* NOTIFY's watches replace the mailbox's own */
            int wait_ms = poll_ms;
            if (hib_at >= 0) {
                int64_t left = hib_at - now_ms();
                if (left < 0) left = 0;
                if (left < wait_ms) wait_ms = (int)left;
            }
            r = stream_wait_readable(c->stream, watch ? mailbox_watch_fd(watch) : nfd, wait_ms);
            int changed = r > 0 && (r & STREAM_WAIT_EXTRA)
                              ? (watch ? mailbox_watch_changed(watch) : 1) : 0;
            /* a timeout is the periodic sync; a watch event that was no commit needs none */
            if ((r == 0 || changed) && push(c) < 0) goto out;
            if (r >= 0 && !(r & STREAM_WAIT_INPUT)) continue;
            if (r > 0) r = 1;
        }
        if (r == 1) {
            r = stream_read_line(c->stream, &line);
            if (r == 0) {
                /* RFC 2177 section 3: DONE ends it; anything else is an error that ends it too */
                if (!strcasecmp(buf_cstr(&line), "DONE"))
                    client_tagged(c, tag, "OK IDLE terminated");
                else
                    client_tagged(c, tag, "BAD Expected DONE");
                break;
            }
        }
        if (r == CF_E_LIMIT) {
            client_tagged(c, tag, "BAD Line too long");
            goto out;
        }
        c->end_reason = worker_read_end(c->stream, r, &client_texts);
        break;
    }
out:
    mailbox_watch_close(&watch);
    buf_fini(&line);
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
    stream_puts(c->stream, "+ idling\r\n");
    idle_run(c, cmd->tag, deadline, 0);
}

void idle_resume(struct client *c, const char *tag, int64_t deadline, int soon)
{
    const struct command *def = command_find("IDLE");
    c->cmd_flags = def ? def->flags : CMD_NEEDS_AUTH;
    /* woken by a change the client did not ask about: once it is told, the session may go
     * back to sleep at once; woken by input, the client is active and waits the full time */
    idle_run(c, tag, deadline, soon ? now_ms() : 0);
    command_finish(c);
}
