/* notify.h: NOTIFY (RFC 5465): the events a session asked for, watched between commands, at
 * command boundaries and during IDLE. The selected mailbox's updates stay selected.c's; this
 * adds the other mailboxes (STATUS), mailbox names and subscriptions (LIST). */
#ifndef COFFER_IMAPD_NOTIFY_H
#define COFFER_IMAPD_NOTIFY_H

struct client;
struct imap_command;
struct notify;

/* notify_free: drop the session's NOTIFY state (NULL is fine); *n becomes NULL. */
void notify_free(struct notify **n);

/* notify_active: 1 when the session has NOTIFY SET events (c->notify). */
int notify_active(const struct client *c);

/* notify_before_command: before a command runs: send what happened since the last look
 * (others' changes), so that what the command itself changes can be absorbed after it.
 * Blocks on the database and index headers. */
void notify_before_command(struct client *c);

/* notify_after_command: after cmd's handler: take what the session changed itself (APPEND,
 * COPY, MOVE, CREATE, DELETE, RENAME, SUBSCRIBE, SETACL...) into the state without telling
 * (RFC 5465 section 5: the server SHOULD NOT notify a client of its own changes). */
void notify_after_command(struct client *c, const struct imap_command *cmd);

/* notify_wait_input: between commands, with NOTIFY active and no input buffered: wait for
 * input, sending the notifications as they happen (flushed). 0 when input is there (or NOTIFY
 * is not active), < 0 when the session must end (c->end_reason set: idle timeout, shutdown,
 * I/O). Blocks up to the session's idle timeout. */
int notify_wait_input(struct client *c);

/* notify_idle_fd: the descriptor IDLE waits on besides the client while NOTIFY is active
 * (-1: none). notify_idle_push: during IDLE, send what happened: the selected mailbox's
 * updates only when a SELECTED or SELECTED-DELAYED filter asks for them (RFC 5465 section 4),
 * the rest as notify_wait_input does. 0, or < 0 when the session must end. */
int notify_idle_fd(const struct client *c);
int notify_idle_push(struct client *c);

/* How often (ms) the mailbox list, the subscriptions and the rights are looked at again for
 * MailboxName, SubscriptionChange and ACL changes while waiting. */
#define NOTIFY_SCAN_MS 2000

#endif
