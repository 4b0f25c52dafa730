/* mailbox-watch.h: notice when another process commits to a mailbox (for IMAP IDLE), without
 * the caller knowing which files a commit touches or how the kernel reports it. */
#ifndef COFFER_STORE_MAILBOX_WATCH_H
#define COFFER_STORE_MAILBOX_WATCH_H
#include "store/mailbox.h"

struct mailbox_watch;

/* mailbox_watch_open: start watching mb's directory (Linux inotify) for commits: the index
 * rewritten in place or renamed in (a commit or a repack), the index unlinked or the directory
 * moved away (a delete or a rename). The watch does not keep mb: it may outlive it, and it keeps watching the directory
 * it was opened on. 0 with *w_r set (free with mailbox_watch_close), or CF_E_IO when the
 * kernel refuses (no inotify, out of watches: logged at debug level); the caller then falls
 * back to syncing periodically. Does not block. */
int mailbox_watch_open(struct mailbox *mb, struct mailbox_watch **w_r);

/* mailbox_watch_fd: a file descriptor that polls readable (POLLIN) when something happened in
 * the directory; owned by the watch. It may also wake for files that are no commit (message
 * files being written): mailbox_watch_changed tells. */
int mailbox_watch_fd(const struct mailbox_watch *w);

/* mailbox_watch_changed: read what the kernel queued, without blocking. 1 when a commit (or a
 * delete, a move, or lost events) happened since the last call, so the caller should sync;
 * 0 when nothing that matters did. Once the directory is gone it keeps returning 1. */
int mailbox_watch_changed(struct mailbox_watch *w);

/* mailbox_watch_close: stop watching, close the fd, free *w and set it to NULL (NULL is fine). */
void mailbox_watch_close(struct mailbox_watch **w);

/* ---- a set of watched mailboxes on one descriptor (IMAP NOTIFY) ---- */

struct mailbox_watchset;

/* mailbox_watchset_new: an empty set (one inotify instance). 0 with *ws_r set (free with
 * mailbox_watchset_free), or CF_E_IO when the kernel refuses (logged at debug level). */
int mailbox_watchset_new(struct mailbox_watchset **ws_r);

/* mailbox_watchset_add: watch the directory of the mailbox with uniqueid on the partition at
 * partition_path for commits (as mailbox_watch_open does), without opening the mailbox. The
 * id (>= 0) names it in mailbox_watchset_changed and mailbox_watchset_remove; adding the same
 * mailbox twice gives the same id. CF_E_IO when the kernel refuses (out of watches, no such
 * directory: logged at debug level). Does not block. */
int mailbox_watchset_add(struct mailbox_watchset *ws, const char *partition_path,
                         const char *uniqueid);

/* mailbox_watchset_remove: stop watching id (unknown ids are ignored). */
void mailbox_watchset_remove(struct mailbox_watchset *ws, int id);

/* mailbox_watchset_fd: polls readable (POLLIN) when something happened in a watched directory. */
int mailbox_watchset_fd(const struct mailbox_watchset *ws);

/* mailbox_watchset_fn: a commit (or a delete or move) in the mailbox of id; id -1 when events
 * were lost (every mailbox must be looked at). */
typedef void mailbox_watchset_fn(int id, void *rock);

/* mailbox_watchset_changed: read what the kernel queued, without blocking, calling cb for each
 * event that is a commit (an id may come more than once). */
void mailbox_watchset_changed(struct mailbox_watchset *ws, mailbox_watchset_fn *cb, void *rock);

/* mailbox_watchset_free: close the set and free *ws, setting it to NULL (NULL is fine). */
void mailbox_watchset_free(struct mailbox_watchset **ws);

#endif
