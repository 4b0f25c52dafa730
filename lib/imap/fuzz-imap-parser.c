/* fuzz-imap-parser.c: fuzz target for the IMAP command parser and sequence sets: the input
 * is a client's byte stream (several pipelined commands, literals included). Seeds in
 * test/fuzz/corpus/imap-parser; the driver is libFuzzer (make fuzz) or test/fuzz/fuzz-main.c. */
#include "core/buf.h"
#include "core/error.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include "imap/imap-seqset.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* walk: touch every byte the parser returned, so the sanitizers see any bad pointer. */
static size_t walk(const struct imap_arg *a, struct imap_seqset *set, struct buf *out)
{
    size_t sum = a->len;
    if (a->s) for (size_t i = 0; i < a->len; i++) sum += (unsigned char)a->s[i];
    if (a->type == IMAP_ARG_ATOM) {
        const char *err;
        if (imap_seqset_parse(set, a->s, a->len, &err) == 0) {
            struct imap_seqset res = IMAP_SEQSET_INIT;
            imap_seqset_resolve(set, 1000, &res);
            sum += (size_t)imap_seqset_size(&res);
            imap_seqset_format(set, out);
            imap_seqset_fini(&res);
        }
    }
    if (a->type == IMAP_ARG_SECTION) {
        imap_section_format(a->section, 0, out);
        imap_section_format(a->section, 1, out);
    }
    for (size_t i = 0; i < a->count; i++) sum += walk(&a->list[i], set, out);
    return sum;
}

/* check_literals: a literal holds NUL only when it is a literal8, and a literal8 is only
 * ever returned in APPEND (RFC 3516 section 4.4) and REPLACE (RFC 8508 section 3.4); the
 * string accessors refuse it. */
static void check_literals(const struct imap_arg *a, int append)
{
    if (a->type == IMAP_ARG_LITERAL) {
        if (!a->literal8 && a->len && memchr(a->s, '\0', a->len)) abort();
        if (a->literal8 && (!append || imap_arg_astring(a) || imap_arg_string(a))) abort();
    }
    for (size_t i = 0; i < a->count; i++) check_literals(&a->list[i], append);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imap_memsource ms;
    struct imap_source src;
    struct imap_parser_limits lim;
    imap_parser_limits_default(&lim);
    lim.max_line = 512;
    lim.max_literal = 2048;
    lim.max_command = 8192;
    lim.max_depth = 8;
    lim.literal_minus = size > 0 && (data[0] & 1);
    imap_memsource_init(&ms, data, size, lim.max_line, &src);
    struct imap_parser *p = imap_parser_new(&src, &lim);
    struct imap_seqset set = IMAP_SEQSET_INIT;
    struct buf out = BUF_INIT;
    volatile size_t sink = 0;
    for (int n = 0; n < 10000; n++) {
        struct imap_command cmd;
        int r = imap_parser_read(p, &cmd);
        if (r == 0) {
            for (size_t i = 0; i < cmd.nargs; i++) {
                sink += walk(&cmd.args[i], &set, &out);
                check_literals(&cmd.args[i], !strcmp(cmd.name, "APPEND") ||
                                                 !strcmp(cmd.name, "REPLACE") ||
                                                 (!strcmp(cmd.name, "UID") && cmd.nargs &&
                                                  imap_arg_atom_eq(&cmd.args[0], "REPLACE")));
                imap_arg_format(&cmd.args[i], &out);
            }
            sink += strlen(cmd.tag) + strlen(cmd.name);
        } else if (r == CF_E_PARSE || r == CF_E_LIMIT) {
            /* a refused {N} (NO [TOOBIG] for APPEND) is a TOOBIG limit that kept the input
             * in step: never a parse error, never fatal */
            if (imap_parser_refused_literal(p) &&
                (r != CF_E_LIMIT || imap_parser_fatal(p) || !imap_parser_error_code(p) ||
                 strcmp(imap_parser_error_code(p), "TOOBIG")))
                abort();
            sink += strlen(imap_parser_error(p));
            if (cmd.tag) sink += strlen(cmd.tag);
            if (imap_parser_fatal(p)) break;
        } else {
            break;                      /* end of input */
        }
        buf_reset(&out);
    }
    (void)sink;
    buf_fini(&out);
    imap_seqset_fini(&set);
    imap_parser_free(&p);
    return 0;
}
