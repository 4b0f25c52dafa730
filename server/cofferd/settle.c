/* settle.c: cofferd's part of the quota ledger protocol (store.h "Quota accounting"): recount
 * the quota roots a worker was changing when it died, and every root after an unclean stop. */
#include "settle.h"
#include "master-int.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "net/conntab.h"
#include "store/store.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SETTLE_ALL CONNTAB_NOTE_OVERFLOW   /* "*": every root */
#define CLEAN_MARKER "cofferd.clean"
/* A recount that takes longer is stuck (a database that needs recovery after a worker died
 * inside it: db_failchk_failed): the child dies rather than hold a root's lock for ever. */
#define SETTLE_MAX_SECONDS 300

static struct strarr g_pending = STRARR_INIT;   /* roots to recount, or SETTLE_ALL */

void settle_note(const char *note)
{
    struct strarr roots = STRARR_INIT;
    strarr_split(&roots, note, "\n", 0);
    for (size_t i = 0; i < roots.count; i++)
        if (*roots.v[i] && strarr_find(&g_pending, roots.v[i]) < 0)
            strarr_add(&g_pending, roots.v[i]);
    strarr_fini(&roots);
}

int settle_pending(void)
{
    return g_pending.count > 0;
}

/* settle_child: in the forked child: recount the roots, then exit. */
static void settle_child(const struct config *cfg, const struct strarr *roots)
{
    struct store *st = NULL;
    if (store_open(cfg, &st)) _exit(1);
    int all = strarr_find(roots, SETTLE_ALL) >= 0;
    int fixed = 0, failed = 0;
    if (all) {
        int r = store_quota_fix_all(st, &fixed);
        if (r < 0) failed++;
    } else {
        for (size_t i = 0; i < roots->count; i++) {
            int r = store_quota_fix(st, roots->v[i], NULL);
            if (r == 1) fixed++;
            else if (r < 0 && r != CF_E_NOTFOUND) failed++;
        }
    }
    log_info("quota_settled", "roots=%s corrected=%d failed=%d", all ? "all" : "noted", fixed,
             failed);
    store_close(&st);
    _exit(failed ? 1 : 0);
}

static pid_t g_settle_pid;     /* the last recount child (may be gone already) */
static struct strarr g_last;   /* its roots, to recount again if it is killed */

int settle_kill(void)
{
    if (g_settle_pid <= 0 || kill(g_settle_pid, 0) < 0) return 0;
    kill(g_settle_pid, SIGKILL);
    for (size_t i = 0; i < g_last.count; i++)
        if (strarr_find(&g_pending, g_last.v[i]) < 0) strarr_add(&g_pending, g_last.v[i]);
    return (int)g_settle_pid;
}

void settle_spawn(const struct config *cfg)
{
    if (!g_pending.count) return;
    pid_t pid = fork_helper();
    if (pid == 0) {
        alarm(SETTLE_MAX_SECONDS);
        settle_child(cfg, &g_pending);
    }
    int e = errno;
    /* the master reaps it as a process it does not track; its own log line says how it went */
    if (pid < 0)
        log_warn("quota_settle_failed", "error=\"fork: %s\" hint=\"coffer quota fix recounts\"",
                 strerror(e));
    else
        log_notice("quota_settle", "pid=%d roots=%zu%s", (int)pid, g_pending.count,
                   strarr_find(&g_pending, SETTLE_ALL) >= 0 ? " all=1" : "");
    g_settle_pid = pid;
    strarr_fini(&g_last);
    g_last = g_pending;
    strarr_init(&g_pending);
}

/* marker_path: CONFIGDIR/cofferd.clean (caller frees) */
static char *marker_path(const struct config *cfg)
{
    return xasprintf("%s/%s", config_str(cfg, CFG_CONFIGDIR), CLEAN_MARKER);
}

void settle_start(const struct config *cfg)
{
    char *path = marker_path(cfg);
    if (access(path, F_OK) != 0) {
        /* not stopped cleanly last time (power loss, kill -9 of cofferd), or the first start
         * of a store without a ledger: every root once */
        settle_note(SETTLE_ALL);
        settle_spawn(cfg);
    } else if (unlink(path) < 0) {
        log_warn("unlink_failed", "path=%s error=%s", log_quote(path), log_quote(strerror(errno)));
    }
    free(path);
}

void settle_stop(const struct config *cfg, int clean)
{
    if (!clean || g_pending.count) return;   /* the next start recounts everything */
    char *path = marker_path(cfg);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) log_warn("open_failed", "path=%s error=%s", log_quote(path), log_quote(strerror(errno)));
    else close(fd);
    free(path);
}
