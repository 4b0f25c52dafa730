/* cmd-status.c: `coffer status`: is cofferd running, its workers per service and its
 * scheduled maintenance (--tasks), from the status file it keeps (configdir/cofferd.status:
 * key=value lines, one per service and one per maintenance task). */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/xmalloc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

/* line_field: the value of key in a line of key=value words, or "" (into a static slot). */
static const char *line_field(const char *line, const char *key, char *out, size_t outsz)
{
    size_t kl = strlen(key);
    out[0] = '\0';
    for (const char *p = line; *p; ) {
        while (*p == ' ') p++;
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            p += kl + 1;
            size_t n = strcspn(p, " \n");
            if (n >= outsz) n = outsz - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return out;
        }
        p += strcspn(p, " \n");
    }
    return out;
}

/* when: a wall clock time from the status file as "YYYY-MM-DD HH:MM:SS" UTC, or "-" for 0 */
static const char *when(const char *secs, char *out, size_t n)
{
    long long v = strtoll(secs, NULL, 10);
    if (v <= 0) return "-";
    time_t tt = (time_t)v;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
    return out;
}

/* task_table: the scheduled maintenance lines (task=...) of the status file into tab */
static void task_table(char *text, struct table *tab)
{
    table_init(tab, (const char *const[]){ "task", "runs#", "last_start", "last_end", "result",
                                           "running#", "interval#", "failures#", NULL });
    char f[8][128], w1[32], w2[32];
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!*line_field(line, "task", f[0], sizeof f[0])) continue;
        line_field(line, "runs", f[1], sizeof f[1]);
        line_field(line, "last_start", f[2], sizeof f[2]);
        line_field(line, "last_end", f[3], sizeof f[3]);
        line_field(line, "result", f[4], sizeof f[4]);
        line_field(line, "running", f[5], sizeof f[5]);
        line_field(line, "interval", f[6], sizeof f[6]);
        line_field(line, "failures", f[7], sizeof f[7]);
        table_add(tab, (const char *const[]){ f[0], f[1], when(f[2], w1, sizeof w1),
                                              when(f[3], w2, sizeof w2), f[4], f[5], f[6], f[7] });
    }
}

int cmd_status(struct tool *t)
{
    int tasks = 0;
    for (int i = 0; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "--tasks")) tasks = 1;
        else {
            tool_error(t, "usage: coffer status [--tasks]");
            return EXIT_USAGE;
        }
    }
    pid_t pid = 0;
    int running = pidfile_read(config_str(t->cfg, CFG_PIDFILE), &pid);
    if (running <= 0) {
        if (t->json) printf("{\"running\": false}\n");
        else printf("cofferd is not running (no live pid in %s)\n", config_str(t->cfg, CFG_PIDFILE));
        return EXIT_FAIL;
    }
    char *path = xasprintf("%s/cofferd.status", config_str(t->cfg, CFG_CONFIGDIR));
    char *text = NULL;
    int r = file_read_all(path, 1 << 20, &text, NULL);
    if (r) {
        tool_error(t, "cofferd runs (pid %d) but %s cannot be read: %s", (int)pid, path,
                   cf_strerror(r));
        free(path);
        return EXIT_FAIL;
    }
    char *copy = xstrdup(text);
    struct table tab;
    if (tasks) {
        task_table(copy, &tab);
        table_print(&tab, t->json);
        table_fini(&tab);
        free(copy);
        free(text);
        free(path);
        return EXIT_OK;
    }
    table_init(&tab, (const char *const[]){ "service", "workers#", "ready#", "busy#", "served#", NULL });
    char f[5][128];
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!*line_field(line, "service", f[0], sizeof f[0])) continue;
        line_field(line, "workers", f[1], sizeof f[1]);
        line_field(line, "ready", f[2], sizeof f[2]);
        line_field(line, "busy", f[3], sizeof f[3]);
        line_field(line, "served", f[4], sizeof f[4]);
        table_add(&tab, (const char *const[]){ f[0], f[1], f[2], f[3], f[4] });
    }
    if (!t->json) printf("cofferd is running, pid %d\n\n", (int)pid);
    table_print(&tab, t->json);
    table_fini(&tab);
    /* the scheduled maintenance under the services (the JSON keeps its shape: --tasks) */
    if (!t->json) {
        task_table(copy, &tab);
        printf("\nscheduled maintenance (times UTC, intervals in seconds):\n\n");
        table_print(&tab, 0);
        table_fini(&tab);
    }
    free(copy);
    free(text);
    free(path);
    return EXIT_OK;
}
