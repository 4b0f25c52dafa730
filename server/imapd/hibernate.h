/* hibernate.h: imapd's side of IDLE hibernation (man/imap-hibernate.8): a session idle in IDLE
 * for imap_hibernate_timeout is handed, with its state, to the imap-hibernate process, and
 * the worker goes back to serving new connections; imap-hibernate hands it back on activity
 * (the client sent something, or the mailbox changed) and a worker rebuilds it. */
#ifndef COFFER_IMAPD_HIBERNATE_H
#define COFFER_IMAPD_HIBERNATE_H
#include "imapd.h"
#include "imap/imap-hibstate.h"   /* HIBERNATE_KIND_* */
#include <stdint.h>

/* hibernate_delay_ms: how long a session waits in IDLE before it is hibernated, or -1 when
 * this one never is: hibernation is off (imap_hibernate_timeout 0 or no imap_hibernate_socket),
 * or the session holds state no other process can take: TLS or COMPRESS (user-space stream
 * state), NOTIFY, per-user \Seen of a shared mailbox, live CONTEXT=SEARCH results. */
int64_t hibernate_delay_ms(struct client *c);

/* hibernate_try: hand c's connection and state to imap-hibernate, in IDLE with tag, ending
 * at deadline_ms (CLOCK_MONOTONIC). 1 when imap-hibernate took it (acknowledged): the session
 * is over in this worker (c->end_reason = "hibernated"; nothing more may be written to it);
 * 0 when it stays here (nothing was written to the client; imap-hibernate down, at its limit,
 * input already waiting), or when imap-hibernate said nothing for a minute: then it may hold
 * the session too, so the connection is shut down for both and c->end_reason set. Blocks on
 * the hand-off socket up to that minute. */
int hibernate_try(struct client *c, const char *tag, int64_t deadline_ms);

/* hibernate_resume: the session imap-hibernate handed back (state[0, len), kind HIBERNATE_KIND_*)
 * rebuilt into c (new, not logged in): user, enabled extensions, the selected mailbox with the
 * client's view as it was. 0 with *tag_r (caller frees) the tag of the IDLE to continue and
 * *deadline_r its deadline; <0 when it cannot be rebuilt: the state did not parse (logged;
 * the connection is closed without a word) or the mailbox is gone (BYE written, end_reason
 * set). Blocks on the store. */
int hibernate_resume(struct client *c, uint32_t kind, const char *state, size_t len, char **tag_r,
                     int64_t *deadline_r);

#endif
