/* fuzz-partitions.c: fuzz target for the partitions.conf parser (lib/core/config.c) behind a
 * fixed coffer.conf, through config_load_streams. Every loaded partition has a valid name,
 * an absolute path, and no duplicate. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include <ctype.h>

static const char conf[] = "configdir = /var/lib/coffer\ndefaultpartition = default\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fmemopen((void *)conf, sizeof conf - 1, "r");
    if (!f) abort();
    FILE *pf = fuzz_stream(data, size);
    struct config *c = NULL;
    struct buf err = BUF_INIT;
    int r = config_load_streams(f, "/etc/coffer/coffer.conf", pf, &c, &err);
    fclose(f);
    fclose(pf);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    FUZZ_ASSERT((r == 0) == (c != NULL));
    if (c) {
        FUZZ_ASSERT(c->npartitions > 0);
        for (size_t i = 0; i < c->npartitions; i++) {
            const struct partition *p = &c->partitions[i];
            FUZZ_ASSERT(*p->name && p->path[0] == '/');
            for (const char *q = p->name; *q; q++)
                FUZZ_ASSERT(isalnum((unsigned char)*q) || *q == '-' || *q == '_');
            FUZZ_ASSERT(config_partition(c, p->name) == p);
        }
        config_free(&c);
    }
    buf_fini(&err);
    return 0;
}
