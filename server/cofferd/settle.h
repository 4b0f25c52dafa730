/* settle.h: cofferd finishing the quota accounting of what died (store.h "Quota accounting"):
 * the roots noted in a killed worker's connection slot (quotalock.h, net/conntab.h) and, after
 * a stop that was not clean (no CONFIGDIR/cofferd.clean marker), every root. The recount runs
 * in a short child process (store_quota_fix takes each root's lock and may wait), so the
 * master loop never blocks on it; the master reaps it like any process it does not track. */
#ifndef COFFER_COFFERD_SETTLE_H
#define COFFER_COFFERD_SETTLE_H
#include "core/config.h"

/* settle_note: add the roots of a dead worker's note (one per line; "*": all) to recount. */
void settle_note(const char *note);

/* settle_pending: 1 when roots are waiting for settle_spawn. */
int settle_pending(void);

/* settle_spawn: fork a child that opens the store and recounts the pending roots; clears the
 * list. Call after the dead workers' database locks were freed (kv_failchk). Never blocks. */
void settle_spawn(const struct config *cfg);

/* settle_kill: SIGKILL the recount child if one runs (the databases are about to be
 * recovered); its pid (to wait for) or 0. Its roots are recounted again later. */
int settle_kill(void);

/* settle_start: at start, before any worker: when the clean-stop marker is missing, recount
 * every root (in a child); remove the marker either way. */
void settle_start(const struct config *cfg);

/* settle_stop: at the end of a stop: write the marker when clean (no worker was killed and no
 * recount is pending), so the next start need not recount. */
void settle_stop(const struct config *cfg, int clean);

#endif
