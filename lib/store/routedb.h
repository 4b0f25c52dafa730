/* routedb.h: the scale-out route table, "route.db" in the kv environment of the router host:
 * user -> the backend that holds the user's mail, and whether the user is being moved.
 *
 * Key: the user name (without domain). Value, version 1 (text): "1 BACKEND STATE", BACKEND a
 * [backend NAME] of coffer.conf, STATE "ready" or "moving" (documented in man/coffer-store.5
 * and man/coffer-route.8). Durable commits. Functions taking txn accept NULL (kv.h). */
#ifndef COFFER_STORE_ROUTEDB_H
#define COFFER_STORE_ROUTEDB_H
#include "store/kv.h"

#define ROUTEDB_DB "route.db"
#define ROUTEDB_MAX_NAME 255

struct routedb;

struct route {
    char backend[ROUTEDB_MAX_NAME + 1];
    int moving;                         /* 1: being moved, answer "try again later" */
};

/* routedb_open: open route.db in env (the handle belongs to env). 0 or CF_E_IO. */
int routedb_open(struct kv_env *env, struct routedb **rd_r);
void routedb_close(struct routedb **rdp);
struct kv_db *routedb_kv(struct routedb *rd);

/* routedb_valid_name: 1 when s may be a user or backend name in the table: 1..255 bytes of
 * printable ASCII without space, '@' or '%'. */
int routedb_valid_name(const char *s);

/* routedb_get: user's route into *rt. 1 found, 0 not found, CF_E_CORRUPT for a record that
 * cannot be read (logged), or a kv error. Blocks on the database lock only. */
int routedb_get(struct routedb *rd, struct kv_txn *txn, const char *user, struct route *rt);

/* routedb_set: user -> rt (replacing). 0, CF_E_PARSE for a name routedb_valid_name refuses,
 * or a kv error. */
int routedb_set(struct routedb *rd, struct kv_txn *txn, const char *user, const struct route *rt);

/* routedb_del: 1 removed, 0 absent, or a kv error. */
int routedb_del(struct routedb *rd, struct kv_txn *txn, const char *user);

/* routedb_foreach: cb(user, route, rock) for every record in user order (records that
 * cannot be read are logged and skipped); cb returns 0 to go on, else that value stops the
 * scan and is returned. */
typedef int routedb_foreach_fn(const char *user, const struct route *rt, void *rock);
int routedb_foreach(struct routedb *rd, routedb_foreach_fn *cb, void *rock);

#endif
