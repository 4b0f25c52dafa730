/* fuzz-config.c: fuzz target for the coffer.conf parser (lib/core/config.c), through
 * config_load_streams with a fixed partitions file, so nothing is opened on disk. A loaded
 * configuration must answer every accessor; a refused one must say why. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"

static const char partitions[] = "default /var/spool/coffer\nother data\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fuzz_stream(data, size);
    FILE *pf = fmemopen((void *)partitions, sizeof partitions - 1, "r");
    if (!pf) abort();
    struct config *c = NULL;
    struct buf err = BUF_INIT;
    int r = config_load_streams(f, "/etc/coffer/coffer.conf", pf, &c, &err);
    fclose(f);
    fclose(pf);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    FUZZ_ASSERT((r == 0) == (c != NULL));
    FUZZ_ASSERT(r == 0 || err.len > 0);
    if (c) {
        size_t n, sn;
        const struct config_def *defs = config_global_defs(&n);
        const struct config_def *sdefs = config_service_defs(&sn);
        (void)defs;
        (void)sdefs;
        volatile size_t sink = 0;
        for (size_t i = 0; i < n; i++) {
            sink += strlen(config_str(c, (enum config_id)i));
            sink += (size_t)config_int(c, (enum config_id)i);
            sink += config_list(c, (enum config_id)i)->count;
        }
        for (size_t k = 0; k < c->nservices; k++) {
            const struct config_service *s = config_service(c, c->services[k].name);
            FUZZ_ASSERT(s == &c->services[k]);
            for (size_t i = 0; i < sn; i++) {
                sink += strlen(service_str(s, (enum service_id)i));
                sink += (size_t)service_int(s, (enum service_id)i);
                sink += service_list(s, (enum service_id)i)->count;
            }
        }
        FUZZ_ASSERT(config_partition(c, config_str(c, CFG_DEFAULTPARTITION)) != NULL);
        char *pid = config_pidfile(c);
        sink += strlen(pid);
        free(pid);
        (void)sink;
        config_free(&c);
    }
    buf_fini(&err);
    /* the value parsers on their own, on the whole text */
    char *s = fuzz_cstr(data, size);
    long long v;
    if (config_parse_size(s, &v) == 0) FUZZ_ASSERT(v >= 0);
    if (config_parse_duration(s, &v) == 0) FUZZ_ASSERT(v >= 0);
    free(s);
    return 0;
}
