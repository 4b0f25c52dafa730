/* kv.c: the Berkeley DB implementation of kv.h. */
#include "store/kv.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include <db.h>

#define KV_ENV_FLAGS (DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL)

int kv_env_recover(const char *dir)
{
    DB_ENV *env = NULL;
    int r = mkdir_p(dir, 0700);
    if (r) return r;
    int e = db_env_create(&env, 0);
    if (!e) e = env->open(env, dir, KV_ENV_FLAGS | DB_RECOVER, 0600);
    if (e) {
        log_err("db_recover_failed", "dir=%s error=%s", log_quote(dir), log_quote(db_strerror(e)));
        if (env) env->close(env, 0);
        return CF_E_IO;
    }
    env->close(env, 0);
    log_info("db_recovered", "dir=%s", log_quote(dir));
    return 0;
}
