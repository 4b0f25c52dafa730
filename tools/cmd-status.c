/* cmd-status.c: `coffer status`: is cofferd running, and its workers per service, from the
 * status file it keeps (configdir/cofferd.status: key=value lines, one per service). */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/xmalloc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

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

int cmd_status(struct tool *t)
{
    if (t->argc != 0) {
        tool_error(t, "usage: coffer status");
        return EXIT_USAGE;
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
    struct table tab;
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
    free(text);
    free(path);
    return EXIT_OK;
}
