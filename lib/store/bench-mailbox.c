/* bench-mailbox.c: builds a big mailbox and measures open time, session memory and append
 * rates. Not a test: run it by hand (a release build gives the meaningful numbers).
 *
 *   bench-mailbox [-n COUNT] [--nofsync] [--fsync-count M] [--dir DIR] [--keep] */
#include "store/mailbox.h"
#include "store/partition.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* smaps_private: kB of Private_Clean + Private_Dirty, of the whole process (path NULL, from
 * smaps_rollup) or of the mappings of one file (from smaps). */
static long smaps_private(const char *path)
{
    FILE *f = fopen(path ? "/proc/self/smaps" : "/proc/self/smaps_rollup", "r");
    if (!f) return -1;
    char line[4096];
    long total = 0;
    int in = path == NULL;
    while (fgets(line, sizeof line, f)) {
        long kb;
        if (path && strchr(line, '-') && strchr(line, ' ') && line[0] != ' ' &&
            strchr(line, ':') > strchr(line, ' ')) {
            /* a mapping header line: "start-end perms offset dev inode   path" */
            size_t l = strlen(line);
            if (l && line[l - 1] == '\n') line[l - 1] = 0;
            const char *sp = strrchr(line, ' ');
            in = sp && !strcmp(sp + 1, path);
            continue;
        }
        if (in && (sscanf(line, "Private_Clean: %ld kB", &kb) == 1 ||
                   sscanf(line, "Private_Dirty: %ld kB", &kb) == 1))
            total += kb;
    }
    fclose(f);
    return total;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long count = 100000, fsync_count = 200;
    int nofsync = 0, keep = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--nofsync")) nofsync = 1;
        else if (!strcmp(argv[i], "--fsync-count") && i + 1 < argc) fsync_count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--keep")) keep = 1;
        else {
            fprintf(stderr, "usage: %s [-n COUNT] [--nofsync] [--fsync-count M] [--dir DIR] [--keep]\n", argv[0]);
            return 2;
        }
    }
    log_init("bench-mailbox", 1, LOG_LVL_WARNING);
    char tmpl[] = "/tmp/coffer-bench-XXXXXX";
    if (!dir && !(dir = mkdtemp(tmpl))) return 1;
    char *part = xasprintf("%s/part", dir);
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    if (partition_prepare(part) < 0 || mailbox_create(part, "user.bench", id, "", 0) < 0) return 1;
    struct mailbox *mb;
    if (mailbox_open(part, id, "user.bench", &mb) < 0) return 1;
    mailbox_set_nofsync(mb, nofsync);
    struct buf msg = BUF_INIT;
    /* 1. fill */
    double t0 = now();
    for (long i = 0; i < count; i++) {
        buf_reset(&msg);
        buf_printf(&msg, "From: bench@example.org\r\nTo: user@example.org\r\nSubject: bench %ld\r\n"
                         "Date: Mon, 7 Feb 2022 12:00:00 +0000\r\nMessage-ID: <%ld@bench>\r\n\r\n"
                         "Body of message %ld.\r\n", i, i, i);
        struct mailbox_msg m = { msg.s, msg.len, -1, 0, (uint32_t)(i % 3 == 0), NULL, 0 };
        if (mailbox_append(mb, &m, 1, NULL) < 0) return 1;
    }
    double fill = now() - t0;
    mailbox_close(&mb);
    /* 2. open + first sync, several times */
    enum { RUNS = 7 };
    double times[RUNS];
    long priv_delta = 0, map_priv = 0;
    size_t heap_delta = 0;
    char *index_path = xasprintf("%s/%.2s/%s/index", part, id, id);
    for (int run = 0; run < RUNS; run++) {
        malloc_trim(0);
        long before = smaps_private(NULL);
        struct mallinfo2 mi0 = mallinfo2();
        struct mailbox_changes ch;
        mailbox_changes_init(&ch);
        t0 = now();
        if (mailbox_open(part, id, "user.bench", &mb) < 0 || mailbox_sync(mb, 0, &ch) < 0) return 1;
        times[run] = now() - t0;
        if (run == RUNS - 1) {
            struct mallinfo2 mi1 = mallinfo2();
            heap_delta = mi1.uordblks - mi0.uordblks;
            map_priv = smaps_private(index_path);
            priv_delta = smaps_private(NULL) - before - map_priv;
            if ((long)mailbox_count(mb) != count) fprintf(stderr, "count mismatch\n");
        }
        mailbox_changes_fini(&ch);
        if (run < RUNS - 1) mailbox_close(&mb);
    }
    qsort(times, RUNS, sizeof times[0], cmp_double);
    /* 3. a sync with nothing new */
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    t0 = now();
    for (int i = 0; i < 1000; i++) mailbox_sync(mb, 0, &ch);
    double idle_sync = (now() - t0) / 1000;
    /* 4. appends with fsync, into the big mailbox */
    mailbox_set_nofsync(mb, 0);
    t0 = now();
    for (long i = 0; i < fsync_count; i++) {
        buf_reset(&msg);
        buf_printf(&msg, "From: bench@example.org\r\nSubject: fsync %ld\r\n\r\nBody.\r\n", i);
        struct mailbox_msg m = { msg.s, msg.len, -1, 0, 0, NULL, 0 };
        if (mailbox_append(mb, &m, 1, NULL) < 0) return 1;
    }
    double fs = now() - t0;
    /* 5. a sync that picks those up */
    t0 = now();
    mailbox_sync(mb, 0, &ch);
    double new_sync = now() - t0;
    const struct index_header *h = mailbox_header(mb);
    printf("%-44s %12s\n", "measure", "value");
    printf("%-44s %12ld\n", "messages", count);
    printf("%-44s %12.0f\n", nofsync ? "fill rate, no fsync (msg/s)" : "fill rate, fsync (msg/s)",
           (double)count / fill);
    printf("%-44s %12.2f\n", "index file (MiB)",
           (double)index_record_offset(h->record_count) / (1 << 20));
    printf("%-44s %12.2f\n", "open + first sync, median (ms)", times[RUNS / 2] * 1e3);
    printf("%-44s %12.2f\n", "open + first sync, min (ms)", times[0] * 1e3);
    printf("%-44s %12.2f\n", "open + first sync, max (ms)", times[RUNS - 1] * 1e3);
    printf("%-44s %12ld\n", "private memory of the session (kB)", priv_delta);
    printf("%-44s %12ld\n", "  (index mapping, excluded) (kB)", map_priv);
    printf("%-44s %12zu\n", "heap in use by the session (kB)", heap_delta / 1024);
    printf("%-44s %12.1f\n", "sync with no change (us)", idle_sync * 1e6);
    printf("%-44s %12.2f\n", "sync after the fsync appends (ms)", new_sync * 1e3);
    printf("%-44s %12.0f\n", "append rate with fsync (msg/s)", (double)fsync_count / fs);
    printf("%-44s %12.2f\n", "append latency with fsync (ms)", fs / (double)fsync_count * 1e3);
    mailbox_changes_fini(&ch);
    mailbox_close(&mb);
    buf_fini(&msg);
    if (!keep) {
        char *cmd = xasprintf("rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
        free(cmd);
    } else {
        printf("kept %s (mailbox %s)\n", dir, id);
    }
    free(index_path);
    free(part);
    return 0;
}
