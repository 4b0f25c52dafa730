/* conntab.h: the table of live connections that cofferd shares with all its workers, for the
 * limits per client address before login (max_preauth_per_ip) and per user and address after
 * it (max_userip_connections).
 *
 * Workers are separate processes, so the counts live in one shared memory file (a memfd made
 * by the master, inherited by every zygote and worker; see WORKER_ENV_CONNTAB_FD in worker.h).
 * Each connection holds one slot from accept to close: the owner pid, the service, the
 * client's address key, its state (before or after login) and, after login, a keyed hash of
 * the user name (SipHash under a random key the master puts in the table's header when it
 * creates it). A check and the claim or update it allows happen under one POSIX record lock
 * (fcntl F_SETLKW) on the file, so two connections arriving at once cannot both take the last
 * place; the kernel drops such a lock when its holder dies, even by SIGKILL. Slots of a worker
 * that died without releasing them are cleared by the master when it reaps the worker
 * (conntab_clear_pid), so the counts are right again after kill -9.
 *
 * Not thread-safe within one process (the lock is per process); cofferd's processes are
 * single-threaded. Every function that takes the lock blocks only while another process holds
 * it, which is never longer than one scan of the table. */
#ifndef COFFER_NET_CONNTAB_H
#define COFFER_NET_CONNTAB_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "core/strarr.h"

struct conntab;

/* the client's address as counted: IPv4 (as ::ffff:a.b.c.d), the IPv6 /64 (one host usually
 * owns a whole /64), or the peer's uid for a UNIX socket (from SO_PEERCRED) */
struct conntab_addr {
    unsigned char b[17];          /* b[0]: 0 none (not counted), 4 IPv4, 6 IPv6 /64, 1 UNIX uid */
};

enum conntab_state { CONNTAB_FREE = 0, CONNTAB_PREAUTH = 1, CONNTAB_AUTH = 2 };

/* conntab_create: the master's table: a memfd of room for slots connections, mapped. Returns
 * 0 with *out and *fd_r (close-on-exec; the master hands a copy to its zygotes), or CF_E_IO
 * (logged). */
int conntab_create(size_t slots, struct conntab **out, int *fd_r);

/* conntab_attach: map the table from an inherited fd (a zygote, before it forks workers; the
 * mapping is inherited by fork). The fd stays open (it carries the lock). 0 or CF_E_IO. */
int conntab_attach(int fd, struct conntab **out);

void conntab_free(struct conntab **t);          /* unmaps; does not close the fd; NULLs *t */

/* conntab_addr_of: the key of the peer of connected socket fd (the address in sa/len as
 * returned by getpeername). A non-socket or unknown family gives a key that is not counted. */
void conntab_addr_of(int fd, const struct sockaddr *sa, socklen_t len, struct conntab_addr *out);

/* conntab_enter: a new connection of service (name) from addr, before login. Under the lock,
 * counts the slots of the same service and address that have not logged in; when limit > 0
 * and the count has reached it, nothing is claimed and 0 is returned with *count_r set (the
 * caller refuses the connection). Otherwise claims a slot for pid and returns its index + 1
 * (> 0). An address key that is not counted is still given a slot (for the user limit) but
 * never refused. CF_E_AGAIN when the table has no free slot (the caller serves the connection
 * without limits and logs it), CF_E_IO when the lock fails (logged). */
int conntab_enter(struct conntab *t, int pid, const char *service, const struct conntab_addr *addr,
                  long long limit, int *count_r);

/* conntab_login: slot (from conntab_enter) logged in as user. Under the lock, counts the
 * logged-in slots of the same service, address and user; when limit > 0 and the count has
 * reached it, returns CF_E_LIMIT with *count_r set and the slot stays before login. Else
 * marks it logged in and returns 0. user NULL (LMTP, which has no per-user limit) only marks
 * the slot logged in. */
int conntab_login(struct conntab *t, int slot, const char *user, long long limit, int *count_r);

/* conntab_logout: slot is back before login (IMAP UNAUTHENTICATE, RFC 8437): it counts for
 * nobody's user limit until the next conntab_login. */
void conntab_logout(struct conntab *t, int slot);

/* conntab_signal_user: send sig to every process other than the caller holding a logged-in
 * slot of user (any service): the admin endpoint ending a user's sessions before a move
 * (admind, man/admind.8). The scan and the signals happen under the lock, so no slot can be
 * claimed or logged in meanwhile; a worker that has just released its slot (an atomic store,
 * no lock) may still get the signal while idle, which only retires it early. Returns how many
 * processes were signalled, or CF_E_IO when the lock fails (logged). */
int conntab_signal_user(struct conntab *t, const char *user, int sig);

/* conntab_leave: release slot (the connection has closed). No lock needed: the owner alone
 * writes a claimed slot, and freeing it is one atomic store. */
void conntab_leave(struct conntab *t, int slot);

/* A note per slot: what the worker holding it is in the middle of, for the master to finish
 * when the worker dies (the store's quota roots being changed: quotalock.h). */
#define CONNTAB_NOTE_MAX 512
#define CONNTAB_NOTE_OVERFLOW "*"   /* the note did not fit: the reader must assume anything */

/* conntab_note: set slot's note to text ("" for none; longer than CONNTAB_NOTE_MAX - 1 bytes
 * becomes CONNTAB_NOTE_OVERFLOW). No lock: the owner alone writes its slot, and the master
 * reads it only after the owner died. A new connection's slot starts with none. */
void conntab_note(struct conntab *t, int slot, const char *text);

/* conntab_notes_of: the master, after reaping pid and before conntab_clear_pid: add the
 * non-empty notes of pid's slots to out. */
void conntab_notes_of(const struct conntab *t, int pid, struct strarr *out);

/* conntab_clear_pid: the master, after reaping pid: free every slot it still held. Returns
 * how many were freed. */
int conntab_clear_pid(struct conntab *t, int pid);

/* conntab_count: connections of service in state (for the status file); service NULL counts
 * every service. No lock: a snapshot. */
int conntab_count(const struct conntab *t, const char *service, enum conntab_state state);

#endif
