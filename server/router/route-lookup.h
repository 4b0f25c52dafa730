/* route-lookup.h: the user -> backend lookup shared by the router (auth_http, socketmap) and
 * lmtproute (the router's LMTP entry): route.db (store/routedb.h) in the configdir's kv
 * environment, then router_default_backend. One handle per worker process. */
#ifndef COFFER_ROUTER_ROUTE_LOOKUP_H
#define COFFER_ROUTER_ROUTE_LOOKUP_H
#include "core/config.h"
#include <stddef.h>

struct kv_env;

/* route_lookup_init: remember cfg (call from the service's init; opens nothing: a Berkeley DB
 * environment must not cross fork, so route.db is opened at the first lookup in the worker). */
void route_lookup_init(const struct config *cfg);

/* route_lookup_env: the kv environment route.db lives in, opened on first use; NULL when it
 * cannot be opened (logged; tried again at the next call). Not owned. */
struct kv_env *route_lookup_env(void);

/* route_lookup: user's backend section into *be and its moving state into *moving: 1 found (in
 * route.db or as router_default_backend), 0 no route, CF_E_AGAIN (database trouble or a route
 * naming no configured backend; logged). Blocks on the database lock only. */
int route_lookup(const char *user, const struct config_backend **be, int *moving);

/* route_addr_split: a backend address "host:port" or "[v6]:port" (coffer.conf(5), [backend
 * NAME]) into host (brackets dropped, NUL-terminated, at most hostlen - 1 bytes) and *port
 * (pointing into addr). 0, or -1 when it has no such form. */
int route_addr_split(const char *addr, char *host, size_t hostlen, const char **port);

/* route_lookup_done: close route.db and its environment (at process exit). */
void route_lookup_done(void);

#endif
