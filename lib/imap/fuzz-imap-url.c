/* fuzz-imap-url.c: fuzz target for the IMAP URL parser (imap-url.c): the input is a URL as a
 * client sends it in CATENATE, GENURLAUTH or URLFETCH. Properties: a parsed URL has a uid, the
 * rump of a URLAUTH URL lies inside the input, a parsed section text parses. Seeds in
 * test/fuzz/corpus/imap-url. */
#include "core/buf.h"
#include "core/error.h"
#include "imap/imap-url.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "property failed: %s\n", #c); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_url u;
    int r = imap_url_parse((const char *)data, size, &u);
    CHECK(r == 0 || r == CF_E_PARSE || r == CF_E_LIMIT);
    if (r == 0) {
        CHECK(u.uid >= 1);
        CHECK(u.rump_len <= size);
        CHECK((u.access == IMAP_URL_ACCESS_NONE) == (u.rump_len == 0));
        CHECK(!u.token || (u.mech && strlen(u.token) >= 32));
        CHECK(u.form == IMAP_URL_RELATIVE ? !u.mailbox : u.mailbox && *u.mailbox);
        if (u.section) {
            struct imap_url_section s;
            if (imap_url_section_parse(u.section, &s) == 0)
                CHECK(s.text != IMAP_SECTION_MIME || s.nparts > 0);
            imap_url_section_fini(&s);
        }
    }
    imap_url_fini(&u);
    /* the input as a section text too */
    char *cs = malloc(size + 1);
    if (!cs) abort();
    memcpy(cs, data, size);
    cs[size] = '\0';
    struct imap_url_section s;
    imap_url_section_parse(cs, &s);
    imap_url_section_fini(&s);
    struct buf b = BUF_INIT;
    imap_url_printable((const char *)data, size, &b);
    CHECK(b.len <= 512 && !memchr(b.s ? b.s : "", ']', b.len));
    buf_fini(&b);
    free(cs);
    return 0;
}
