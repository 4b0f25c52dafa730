/* account.h: a whole account on this server as the admin endpoint (admind, man/admind.8) sees it
 * during a move between backends: its fingerprint, to compare the copy with the original, and
 * its removal once the copy is verified. Dump and restore are cmd_dump and cmd_restore. */
#ifndef COFFER_TOOLS_ACCOUNT_H
#define COFFER_TOOLS_ACCOUNT_H
#include <stdio.h>
struct tool;

/* account_verify: user's fingerprint to out, one line each, in this order:
 *   M COUNT DIGEST NAME   a mailbox (internal name, as listed): its message count and the
 *                         SHA-256 over "UID SHA256-OF-THE-MESSAGE\n" per message in UID order
 *   S COUNT DIGEST        the Sieve scripts: over "NAME SHA256-OF-THE-SCRIPT\n" per script in
 *                         name order, then "active NAME\n" for the active one
 *   U COUNT DIGEST        the subscriptions: over "NAME\n" per subscribed name in byte order
 *   T MAILBOXES MESSAGES  the totals
 * Two servers hold the same account when the lines are equal. A user without an INBOX has no
 * M lines. Returns an exit code (tool.h); blocks reading every message under each mailbox's
 * shared lock. */
int account_verify(struct tool *t, const char *user, FILE *out);

/* account_remove: delete user's mailboxes (children first, at once whatever delete_mode says),
 * the mailboxes it deleted before that are kept for undelete, subscriptions, quota root and
 * Sieve scripts; the password database is left alone. A line
 * "removed N mailboxes, M scripts" to out. Returns an exit code; EXIT_OK also when nothing was
 * there (a remove run again after an interruption). */
int account_remove(struct tool *t, const char *user, FILE *out);

#endif
