/* fuzz-msieve.c: fuzz target for the ManageSieve command grammar (server/sieved/
 * msieve-parse.c), driven as sieved's client_read drives it: lines in turn, and after a
 * MSIEVE_LITERAL the announced bytes taken from the input (cut short at its end). A first
 * byte 'R' parses SASL responses instead of commands. Properties: a finished command has an
 * upper-case name of letters (none for a response), at most MSIEVE_MAX_ARGS arguments, a
 * response exactly one string; every string is NUL-terminated at its length; numbers are in
 * range; an error comes with a reason. */
#include "fuzz-util.h"
#include "sieved/msieve-parse.h"

static void check(const struct msieve_parser *p)
{
    const struct msieve_command *c = &p->cmd;
    FUZZ_ASSERT(c->nargs <= MSIEVE_MAX_ARGS);
    if (p->response) {
        FUZZ_ASSERT(!c->name && c->nargs == 1 && c->args[0].type == MSIEVE_STRING);
    } else {
        FUZZ_ASSERT(c->name && *c->name);
        for (const char *q = c->name; *q; q++) FUZZ_ASSERT(*q >= 'A' && *q <= 'Z');
    }
    for (size_t i = 0; i < c->nargs; i++) {
        const struct msieve_arg *a = &c->args[i];
        if (a->type == MSIEVE_STRING) FUZZ_ASSERT(a->s && a->s[a->len] == '\0');
        else FUZZ_ASSERT(a->num <= MSIEVE_MAX_NUMBER && !a->s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct msieve_parser ps;
    msieve_parser_init(&ps, size && p[0] == 'R');
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t linelen = len && p[len - 1] == '\r' ? len - 1 : len;
        size_t lit;
        const char *err = NULL;
        enum msieve_step st = msieve_parse_line(&ps, p, linelen, &lit, &err);
        p += nl ? len + 1 : len;
        if (st == MSIEVE_LITERAL) {
            size_t n = lit < (size_t)(end - p) ? lit : (size_t)(end - p);
            msieve_parse_literal(&ps, p, n);
            p += n;
            continue;
        }
        if (st == MSIEVE_ERROR) FUZZ_ASSERT(err && *err);
        else check(&ps);
        msieve_parser_reset(&ps);
    }
    msieve_parser_reset(&ps);
    return 0;
}
