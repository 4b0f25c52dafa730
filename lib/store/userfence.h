/* userfence.h: the per-user fence of a backend in a scale-out setup: "this server does not
 * serve USER now" (the user is being moved to another backend, or has been moved away).
 * While a user is fenced, imapd, pop3d and sieved refuse the user's logins with a temporary
 * error and lmtpd answers the user's RCPT with 451 4.2.1, so nothing reaches the copy being
 * moved and nothing re-creates an INBOX on the backend the user left (man/admind.8).
 *
 * One empty file per fenced user: configdir/fence/HEX, HEX the user name's bytes as lower-case
 * hex digits (any valid user name, never a path). Set and cleared by admind (FENCE, UNFENCE,
 * RESTORE); the check is one stat(2) per login or recipient. */
#ifndef COFFER_STORE_USERFENCE_H
#define COFFER_STORE_USERFENCE_H
#include "core/config.h"

#define USERFENCE_DIR "fence"

/* userfence_check: 1 when user is fenced on this server, 0 when not, CF_E_IO when it cannot
 * be told (logged; callers refuse for now, as for a fence). Never blocks beyond a stat. */
int userfence_check(const struct config *cfg, const char *user);

/* userfence_set: fence user, durably (the file and its directory fsynced), then wait for the
 * deliveries that passed their fence check before it (userfence_hold) to finish: once it
 * returns, no delivery to user is in progress on this server. 0 (also when already fenced) or
 * CF_E_IO (logged). Blocks for the length of the deliveries in progress. */
int userfence_set(const struct config *cfg, const char *user);

/* userfence_hold: take the shared lock (flock on configdir/fence/.lock) that a delivery
 * holds from its fence check to its commit, so userfence_set can wait for it. Returns the
 * lock's fd for userfence_release, or -1 when it cannot be taken (logged; the caller goes
 * on: the move's verification still compares the copies). Blocks only while a FENCE waits. */
int userfence_hold(const struct config *cfg);
void userfence_release(int fd);

/* userfence_clear: lift user's fence, durably. 0 (also when not fenced) or CF_E_IO (logged). */
int userfence_clear(const struct config *cfg, const char *user);

#endif
