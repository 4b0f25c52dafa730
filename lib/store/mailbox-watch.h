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

#endif
