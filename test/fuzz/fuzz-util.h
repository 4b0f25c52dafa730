/* fuzz-util.h: small helpers shared by the fuzz targets in test/fuzz. */
#ifndef COFFER_TEST_FUZZ_UTIL_H
#define COFFER_TEST_FUZZ_UTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FUZZ_ASSERT: a property every input must keep; a failure aborts, which libFuzzer (and the
 * ctest driver) report as a crash with the input that caused it. */
#define FUZZ_ASSERT(c) do { \
    if (!(c)) { fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #c); \
                abort(); } \
} while (0)

/* fuzz_cstr: a NUL-terminated malloc'd copy of the input (cut at its first NUL, as C string
 * parsers see it); the caller frees. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* fuzz_stream: the input as a read-only FILE (fmemopen; an empty input reads as empty). */
static inline FILE *fuzz_stream(const uint8_t *data, size_t size)
{
    FILE *f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
    if (!f) abort();
    return f;
}

#endif
