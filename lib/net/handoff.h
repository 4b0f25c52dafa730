/* handoff.h: passing a client connection between cofferd's children over a UNIX socket: the
 * connection's descriptor (SCM_RIGHTS) with a block of state, and the check that the peer on
 * such a socket is one of them (imapd <-> imap-hibernate; man/imap-hibernate.8).
 *
 * On the wire: a 16-byte header, magic "CFHO", version, kind and the state's length (each a
 * 32-bit little-endian number; the descriptor rides with the header), then the state. The
 * receiver answers nothing; a sender that must know the connection was taken over (imapd, which
 * otherwise keeps serving it) waits for one byte, HANDOFF_ACK, written by the receiver once the
 * connection is its own. */
#ifndef COFFER_NET_HANDOFF_H
#define COFFER_NET_HANDOFF_H
#include "core/buf.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HANDOFF_ACK '+'
/* the largest state accepted (imap-hibstate.h IMAP_HIBSTATE_MAX) */
#define HANDOFF_MAX_STATE (16u << 20)

/* handoff_send: send fd (not closed) with kind and data[0, len) on the connected socket sock.
 * Waits for room at most timeout_ms in all. 0, or CF_E_IO / CF_E_TIMEOUT (nothing usable was
 * sent; the caller closes sock). */
int handoff_send(int sock, int fd, uint32_t kind, const void *data, size_t len, int timeout_ms);

/* handoff_recv: read one hand-off from sock: the descriptor into *fd_r (owned by the caller,
 * close-on-exec), kind into *kind_r and the state into data (reset first). Waits at most
 * timeout_ms in all. 0, CF_E_PARSE (not a hand-off: wrong magic or version, no descriptor,
 * too long), CF_E_EOF, CF_E_TIMEOUT or CF_E_IO; on failure no descriptor is left open. */
int handoff_recv(int sock, int *fd_r, uint32_t *kind_r, struct buf *data, int timeout_ms);

/* handoff_peer_ok: 1 when the process at the other end of the UNIX socket sock runs as our
 * effective uid and is a child of our own parent (cofferd's children are all reparented to
 * the master, a child subreaper), else 0 with the peer's pid and uid in *pid_r, *uid_r (-1
 * when unknown) for the log. Reads /proc/PID/stat; never blocks. */
int handoff_peer_ok(int sock, long *pid_r, long *uid_r);

/* handoff_listener_ok: on a socket we connected: 1 when the listening socket at the other end
 * was made by root or by our own uid (the kernel reports the credentials of the process that
 * called listen(): cofferd's master binds as root, or as the service user at a reload), so
 * the path was not taken over by another account's socket; else 0 with the pid that made it
 * in *pid_r. */
int handoff_listener_ok(int sock, long *pid_r);

#endif
