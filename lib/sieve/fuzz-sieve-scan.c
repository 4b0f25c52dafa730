/* fuzz-sieve-scan.c: fuzz target for the lexical walks (sieve-scan.c: fileinto folders, notify
 * methods) that run on every uploaded script. Properties: every folder reported is a NUL-terminated string whose
 * line is at least 1, never past the number of lines in the input plus one, and lines never go
 * backwards. */
#include "sieve/sieve.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct rock { int last, max; };

static void cb(void *r, const char *folder, int line)
{
    struct rock *k = r;
    if (!folder || line < 1 || line > k->max || line < k->last) abort();
    (void)strlen(folder);
    k->last = line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rock k = { 1, 1 };
    for (size_t i = 0; i < size; i++) if (data[i] == '\n') k.max++;
    sieve_scan_fileinto((const char *)data, size, cb, &k);
    k.last = 1;
    sieve_scan_notify((const char *)data, size, cb, &k);
    return 0;
}
