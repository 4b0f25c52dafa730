/* fuzz-admin.c: fuzz target for the admin endpoint's line parser (server/admind/admin-parse.c):
 * the input as one command line and as a chunk header. Properties: a parsed command has a
 * known verb; its argument is printable ASCII within the line; a user argument passes
 * admin_user_valid; a chunk length is at most ADMIN_MAX_CHUNK and a refused line is never
 * taken as a chunk. */
#include "fuzz-util.h"
#include "core/error.h"
#include "admind/admin-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct admin_cmd cmd;
    const char *why = NULL;
    int r = admin_parse(p, size, &cmd, &why);
    FUZZ_ASSERT(r == 0 || (r == CF_E_PARSE && why && *why));
    if (r == 0) {
        FUZZ_ASSERT(cmd.verb >= ADMIN_AUTH && cmd.verb <= ADMIN_QUIT);
        size_t n = strlen(cmd.arg);
        FUZZ_ASSERT(n < size);
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT((unsigned char)cmd.arg[i] >= ' ' && (unsigned char)cmd.arg[i] < 0x7f);
        if (cmd.verb != ADMIN_AUTH && cmd.verb != ADMIN_QUIT)
            FUZZ_ASSERT(admin_user_valid(cmd.arg));
        if (cmd.verb == ADMIN_QUIT) FUZZ_ASSERT(n == 0);
    }
    size_t len = 0;
    int c = admin_parse_chunk(p, size, &len);
    FUZZ_ASSERT(c == 0 || c == 1 || c == CF_E_PARSE || c == CF_E_LIMIT);
    if (c == 1) FUZZ_ASSERT(len <= ADMIN_MAX_CHUNK && size >= 3 && p[0] == '+');
    return 0;
}
