/* quotalock.h: the per-quota-root lock that makes check + append + charge one step.
 *
 * Why: APPEND, COPY, MOVE and delivery check the root's usage under the target mailbox's
 * lock and charge it after the commit. Two sessions appending to two mailboxes of one root
 * (or to one mailbox: the charge comes after its lock is released) could both pass the check
 * and push usage past the limit. Holding this lock from before the check until after the
 * charge serializes them per root; it is short (one append) and always taken before any
 * mailbox lock, never while one is held, so it cannot deadlock with them.
 * The lock is flock(2) on CONFIGDIR/lock/quota/<16 hex digits of a 64-bit FNV-1a hash of the
 * root name>: two roots sharing a hash only wait for each other. */
#ifndef COFFER_STORE_QUOTALOCK_H
#define COFFER_STORE_QUOTALOCK_H

struct store;

/* quotalock_acquire: take root's lock for the process, blocking until it is free. *fd_r gets
 * the descriptor (-1 on failure). 0 or CF_E_IO (logged). Callers do nothing without the lock
 * (security review L14): IMAP answers NO [SERVERBUG], LMTP a temporary 451, so the message is
 * retried rather than stored unchecked or left charged. Never take a root's lock twice in one
 * process (flock on a second descriptor waits for the first). */
int quotalock_acquire(struct store *st, const char *root, int *fd_r);

/* quotalock_release: drop the lock (closing *fd, which becomes -1); -1 is a no-op. */
void quotalock_release(int *fd);

/* Crash recovery: a process killed while it holds a root's lock may have committed an index
 * without settling the root's usage (store.h "Quota accounting"). A note function, when set,
 * is told the roots this process is about to hold or holds, one per line ("" for none):
 * before each lock is taken and after each is released, so a process that dies holding one
 * is always noted. cofferd's workers set worker_note (net/worker.h); the master recounts the
 * noted roots of a worker killed by a signal (store_quota_fix). */
typedef void quotalock_note_fn(const char *roots);
void quotalock_set_note(quotalock_note_fn *fn);

#endif
