/* fuzz-imap-hibstate.c: fuzz target for the IDLE session state parser (imap-hibstate.h): any
 * input is parsed; what parses is formatted again and must parse to the same text. Seeds in
 * test/fuzz/corpus/imap-hibstate. */
#include "core/error.h"
#include "imap/imap-hibstate.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_hibstate s, s2;
    imap_hibstate_init(&s);
    imap_hibstate_init(&s2);
    const char *err = NULL;
    char v[64];
    imap_hibstate_field((const char *)data, size, "user", v, sizeof v);
    if (imap_hibstate_parse(&s, (const char *)data, size, &err) == 0) {
        struct buf t = BUF_INIT, t2 = BUF_INIT;
        /* a parsed state always formats (the parser refused what could not be written) */
        if (imap_hibstate_format(&s, &t) != 0) abort();
        if (imap_hibstate_parse(&s2, t.s, t.len, &err) != 0) abort();
        if (imap_hibstate_format(&s2, &t2) != 0) abort();
        if (t.len != t2.len || memcmp(t.s, t2.s, t.len)) abort();
        buf_fini(&t);
        buf_fini(&t2);
    }
    imap_hibstate_fini(&s);
    imap_hibstate_fini(&s2);
    return 0;
}
