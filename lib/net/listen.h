/* listen.h: listening sockets for cofferd: parse "HOST:PORT", "[IPv6]:PORT", "*:PORT" and
 * absolute UNIX socket paths, bind them, and format socket addresses for logs. */
#ifndef COFFER_NET_LISTEN_H
#define COFFER_NET_LISTEN_H
#include "core/buf.h"
#include <stddef.h>
#include <sys/socket.h>

/* Every listening socket is created with this backlog; connections beyond what the workers
 * take wait here (maxchild reached) rather than being refused. */
#define LISTEN_BACKLOG 1024

struct listen_addr {
    int family;                         /* AF_INET, AF_INET6 or AF_UNIX */
    struct sockaddr_storage sa;
    socklen_t salen;
    char spec[256];                     /* as written in the config, for messages */
};

/* listen_parse: spec is "HOST:PORT" (HOST an IPv4 address or a host name, of which the first
 * address is used), "[IPv6]:PORT", "*:PORT" (every IPv4 address) or an absolute path of a
 * UNIX socket. PORT is 0..65535 (0: the kernel picks one, useful for tests).
 * Returns 0, or CF_E_PARSE with one line "bad listen address 'SPEC': WHY" in err. Does not
 * block, except that a host name is resolved (no resolution for numeric addresses). */
int listen_parse(const char *spec, struct listen_addr *out, struct buf *err);

/* Who may connect to a UNIX socket: the file's mode (permission bits only) and group (-1:
 * the creator's effective group). Connecting needs write permission on the file. */
struct listen_unix_perm {
    unsigned mode;
    long gid;
};
#define LISTEN_UNIX_MODE 0600           /* the mode when no listen_unix_perm is given */

/* listen_bind: a new listening socket (SOCK_CLOEXEC and SOCK_NONBLOCK set, SO_REUSEADDR for TCP,
 * IPV6_V6ONLY for IPv6, backlog LISTEN_BACKLOG) in *fd_r, owned by the caller. A UNIX socket path
 * left over by a dead process (nobody accepts on it) is unlinked first; a live one is "in use";
 * the new socket file is created with perm's mode and group (perm NULL: LISTEN_UNIX_MODE, the
 * creator's group), set atomically at bind time (umask and effective gid around bind; a group
 * other than our own needs root). perm is ignored for TCP.
 * Returns 0, or CF_E_IO with "cannot listen on SPEC: ERRNO TEXT" in err. */
int listen_bind(const struct listen_addr *a, const struct listen_unix_perm *perm, int *fd_r,
                struct buf *err);

/* listen_open_perm: listen_parse then listen_bind; listen_open: the same with perm NULL. */
int listen_open_perm(const char *spec, const struct listen_unix_perm *perm, int *fd_r,
                     struct buf *err);
int listen_open(const char *spec, int *fd_r, struct buf *err);

/* listen_format: sa as "127.0.0.1:143", "[::1]:143", or "unix" (UNIX peers have no useful
 * name); writes at most n bytes including the NUL into out. */
void listen_format(const struct sockaddr *sa, socklen_t len, char *out, size_t n);

/* listen_is_loopback: 1 for 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and UNIX sockets, else 0. */
int listen_is_loopback(const struct sockaddr *sa);

/* listen_local_port: the port fd is bound to (after binding to port 0), or -1. */
int listen_local_port(int fd);

#endif
