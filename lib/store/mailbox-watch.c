/* mailbox-watch.c: inotify on a mailbox directory, reduced to "a commit happened" (IDLE). */
#include "store/mailbox-watch.h"
#include "store/partition.h"
#include "mailbox-int.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* A commit is a pwrite of the index header (IN_MODIFY; IN_CLOSE_WRITE when a tool closes it);
 * a repack renames a new index in (IN_MOVED_TO); a delete unlinks it (IN_DELETE: the
 * directory's own IN_DELETE_SELF comes only once nobody holds it open, and the session being
 * notified does). Message and cache files are written before the commit, so they need no
 * events of their own: the directory still reports them (inotify cannot filter by name), and
 * mailbox_watch_changed drops them. */
#define WATCH_MASK (IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | \
                    IN_MOVE_SELF)
/* The set (NOTIFY, imap-hibernate) leaves IN_CLOSE_WRITE out: every process that opened the
 * index read-write reports one at its close, writer or not (a session ending, or the reader
 * imap-hibernate itself, which checks the header on each event and would wake itself for
 * ever), while every write of the index, a tool's included, already reports IN_MODIFY. */
#define WATCHSET_MASK (WATCH_MASK & ~IN_CLOSE_WRITE)

struct mailbox_watch {
    int fd;
    int gone;           /* the directory was deleted or moved away, or the watch was dropped */
};

int mailbox_watch_open(struct mailbox *mb, struct mailbox_watch **w_r)
{
    *w_r = NULL;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        log_debug("mailbox_watch", "call=inotify_init1 error=\"%s\"", strerror(errno));
        return CF_E_IO;
    }
    if (inotify_add_watch(fd, mb->dir, WATCH_MASK) < 0) {
        log_debug("mailbox_watch", "call=inotify_add_watch path=%s error=\"%s\"", mb->dir,
                  strerror(errno));
        close(fd);
        return CF_E_IO;
    }
    struct mailbox_watch *w = xmalloc(sizeof *w);
    w->fd = fd;
    w->gone = 0;
    *w_r = w;
    return 0;
}

int mailbox_watch_fd(const struct mailbox_watch *w) { return w->fd; }

/* is_commit: whether one event means the index changed (or that we can no longer tell). */
static int is_commit(const struct inotify_event *ev)
{
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT | IN_Q_OVERFLOW))
        return 1;
    return ev->len && !strcmp(ev->name, INDEX_FILE);
}

int mailbox_watch_changed(struct mailbox_watch *w)
{
    char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int changed = w->gone;
    for (;;) {
        ssize_t n = read(w->fd, b, sizeof b);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;   /* EAGAIN: drained (an error other than that cannot be waited out) */
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(b + off);
            if (is_commit(ev)) changed = 1;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) w->gone = 1;
            off += (ssize_t)sizeof(struct inotify_event) + ev->len;
        }
    }
    return changed;
}

void mailbox_watch_close(struct mailbox_watch **w)
{
    if (!*w) return;
    close((*w)->fd);
    free(*w);
    *w = NULL;
}

/* ---- the set ---- */

struct mailbox_watchset {
    int fd;
};

int mailbox_watchset_new(struct mailbox_watchset **ws_r)
{
    *ws_r = NULL;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        log_debug("mailbox_watch", "call=inotify_init1 error=\"%s\"", strerror(errno));
        return CF_E_IO;
    }
    struct mailbox_watchset *ws = xmalloc(sizeof *ws);
    ws->fd = fd;
    *ws_r = ws;
    return 0;
}

int mailbox_watchset_add(struct mailbox_watchset *ws, const char *partition_path,
                         const char *uniqueid)
{
    char *dir = partition_mailbox_dir(partition_path, uniqueid);
    int wd = inotify_add_watch(ws->fd, dir, WATCHSET_MASK);
    if (wd < 0)
        log_debug("mailbox_watch", "call=inotify_add_watch path=%s error=\"%s\"", dir,
                  strerror(errno));
    free(dir);
    return wd < 0 ? CF_E_IO : wd;
}

void mailbox_watchset_remove(struct mailbox_watchset *ws, int id)
{
    if (id >= 0) inotify_rm_watch(ws->fd, id);   /* EINVAL when already gone: nothing to do */
}

int mailbox_watchset_fd(const struct mailbox_watchset *ws) { return ws->fd; }

void mailbox_watchset_changed(struct mailbox_watchset *ws, mailbox_watchset_fn *cb, void *rock)
{
    char b[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(ws->fd, b, sizeof b);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(b + off);
            /* IN_IGNORED ends a watch (removed, or its directory gone after IN_DELETE_SELF,
             * which was reported): nothing new to look at */
            if (ev->mask & IN_Q_OVERFLOW) cb(-1, rock);
            else if (!(ev->mask & IN_IGNORED) && is_commit(ev)) cb(ev->wd, rock);
            off += (ssize_t)sizeof(struct inotify_event) + ev->len;
        }
    }
}

void mailbox_watchset_free(struct mailbox_watchset **ws)
{
    if (!*ws) return;
    close((*ws)->fd);
    free(*ws);
    *ws = NULL;
}
