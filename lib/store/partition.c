/* partition.c: mail partitions: selection for new mailboxes and mailbox directory paths. */
#include "store/partition.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

int partition_select(const struct config *cfg, const struct partition **out)
{
    *out = NULL;
    if (!cfg->npartitions) {
        log_err("partition_none", "reason=%s", log_quote("no partitions configured"));
        return CF_E_NOTFOUND;
    }
    const char *how = config_str(cfg, CFG_PARTITION_SELECT);
    if (strcmp(how, "mostfree") != 0) {
        const char *name = config_str(cfg, CFG_DEFAULTPARTITION);
        const struct partition *p = config_partition(cfg, name);
        if (!p) {
            log_err("partition_unknown", "partition=%s", log_quote(name));
            return CF_E_NOTFOUND;
        }
        *out = p;
        return 0;
    }
    unsigned long long best = 0;
    for (size_t i = 0; i < cfg->npartitions; i++) {
        struct statvfs sv;
        const struct partition *p = &cfg->partitions[i];
        if (statvfs(p->path, &sv) < 0) {
            log_warn("partition_statvfs_failed", "partition=%s path=%s errno=%s",
                     log_quote(p->name), log_quote(p->path), strerror(errno));
            continue;
        }
        unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
        if (!*out || avail > best) {
            *out = p;
            best = avail;
        }
    }
    return *out ? 0 : CF_E_IO;
}

int partition_prepare(const char *partition_path)
{
    return mkdir_p(partition_path, 0700);  /* logs its own failure */
}

int partition_uniqueid_valid(const char *id)
{
    if (!id) return 0;
    size_t i;
    for (i = 0; id[i]; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return i == UNIQUEID_LEN;
}

void partition_new_uniqueid(char *out)
{
    unsigned char raw[UNIQUEID_LEN / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            /* No entropy source at all: time and pid still make a collision unlikely, and
             * mailbox_create refuses an existing directory. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            unsigned long long x = (unsigned long long)ts.tv_nsec * 6364136223846793005ULL ^
                                   (unsigned long long)ts.tv_sec << 20 ^ (unsigned)getpid();
            for (size_t i = got; i < sizeof raw; i++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                raw[i] = (unsigned char)(x >> 56);
            }
            break;
        }
        got += (size_t)r;
    }
    for (size_t i = 0; i < sizeof raw; i++) sprintf(out + 2 * i, "%02x", raw[i]);
    out[UNIQUEID_LEN] = 0;
}

char *partition_mailbox_dir(const char *partition_path, const char *uniqueid)
{
    return xasprintf("%s/%.2s/%s", partition_path, uniqueid, uniqueid);
}
