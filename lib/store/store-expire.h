/* store-expire.h: what `coffer expire` and cofferd's scheduled expire do (coffer-expire(8)):
 * prune the duplicate-delivery records past duplicate_lifetime and the Sieve vacation answers
 * past a number of days, repack mailboxes whose expunged records are past expunge_retention
 * (or whose files are gone), and remove mailboxes hidden by delayed delete past it. */
#ifndef COFFER_STORE_STORE_EXPIRE_H
#define COFFER_STORE_STORE_EXPIRE_H
#include "store/store.h"
#include <stddef.h>
#include <stdint.h>

struct store_expire_report {
    long long duplicates;            /* records removed (or due, in a dry run) */
    long long vacation;              /* answers removed; -1: there is no vacation database */
    long long expunged, expunged_boxes, expunged_kept;
    long long deleted, deleted_kept;
    int64_t retention;               /* expunge_retention in seconds */
};

/* Who hears about problems and progress (each may be NULL). error gets one message per
 * problem (already formatted, no newline); the run goes on where it can. */
struct store_expire_hooks {
    void (*error)(void *rock, const char *msg);
    void (*progress)(void *rock, size_t done, size_t total);
    void *rock;
};

/* store_expire: one run at time now: duplicates older than dup_lifetime seconds, vacation
 * answers older than vacation_days, then expunged messages and hidden mailboxes past
 * expunge_retention. dry_run counts without removing. *rep is filled as far as the run got.
 * 0, or the first error (each reported through hooks). Blocks on the disk and the databases. */
int store_expire(struct store *st, int64_t now, long long dup_lifetime, long long vacation_days,
                 int dry_run, struct store_expire_report *rep,
                 const struct store_expire_hooks *hooks);

#endif
