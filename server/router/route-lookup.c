/* route-lookup.c: the user -> backend lookup of the router and lmtproute (route-lookup.h). */
#include "router/route-lookup.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/kv.h"
#include "store/routedb.h"
#include <stdlib.h>
#include <string.h>

static const struct config *g_cfg;
static struct kv_env *g_env;
static struct routedb *g_routes;

void route_lookup_init(const struct config *cfg)
{
    g_cfg = cfg;
}

/* routes: route.db, opened on first use in the worker; a failed open is logged and tried
 * again at the next request. */
static struct routedb *routes(void)
{
    if (g_routes) return g_routes;
    char *dir = xasprintf("%s/db", config_str(g_cfg, CFG_CONFIGDIR));
    int r = kv_env_open(dir, &g_env);
    free(dir);
    if (!r) r = routedb_open(g_env, &g_routes);
    if (r) {
        log_err("route_db_unavailable", "error=%s", log_quote(cf_strerror(r)));
        kv_env_close(&g_env);
        g_routes = NULL;
    }
    return g_routes;
}

struct kv_env *route_lookup_env(void)
{
    return routes() ? g_env : NULL;
}

int route_lookup(const char *user, const struct config_backend **be, int *moving)
{
    struct routedb *rd = routes();
    if (!rd) return CF_E_AGAIN;
    struct route rt;
    int r = routedb_get(rd, NULL, user, &rt);
    if (r < 0) return CF_E_AGAIN;
    const char *name = r == 1 ? rt.backend : config_str(g_cfg, CFG_ROUTER_DEFAULT_BACKEND);
    *moving = r == 1 && rt.moving;
    if (!*name) return 0;
    *be = config_backend(g_cfg, name);
    if (!*be) {
        log_err("route_unknown_backend", "user=%s backend=%s", log_quote(user), log_quote(name));
        return CF_E_AGAIN;
    }
    return 1;
}

int route_addr_split(const char *addr, char *host, size_t hostlen, const char **port)
{
    const char *colon;
    if (*addr == '[') {
        const char *end = strchr(addr, ']');
        if (!end || (size_t)(end - addr - 1) >= hostlen) return -1;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= hostlen) return -1;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
    }
    if (*colon != ':' || !colon[1]) return -1;
    *port = colon + 1;
    return 0;
}

void route_lookup_done(void)
{
    routedb_close(&g_routes);
    kv_env_close(&g_env);
}
