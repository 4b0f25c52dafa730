/* fuzz-imap-parser.c: libFuzzer target for the IMAP command parser and sequence sets.
 *
 * Built with clang -fsanitize=fuzzer -DCOFFER_FUZZING, libFuzzer drives
 * LLVMFuzzerTestOneInput. Built normally (as ctest runs it), main() feeds it a built-in
 * corpus, a fixed-seed series of mutations of that corpus, and any files named on the command
 * line, so the sanitizer build checks the parser on malformed input at every test run. */
#include "core/buf.h"
#include "core/error.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include "imap/imap-seqset.h"
#include <stdint.h>
#include <stdio.h>
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
                imap_arg_format(&cmd.args[i], &out);
            }
            sink += strlen(cmd.tag) + strlen(cmd.name);
        } else if (r == CF_E_PARSE || r == CF_E_LIMIT) {
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

#ifndef COFFER_FUZZING
static const char *const corpus[] = {
    "a1 NOOP\r\n",
    "a2 LOGIN fred \"sec\\\"ret\"\r\n",
    "a3 LOGIN {4}\r\nfred {6+}\r\nsecret\r\n",
    "a4 FETCH 1:*,7,9:3 (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100> UID)\r\n",
    "a5 FETCH 2 (BODY[1.2.MIME] BODY[TEXT] BINARY.PEEK[1]<0.5> BINARY.SIZE[2])\r\n",
    "a6 STORE 1 +FLAGS (\\Seen \\Deleted)\r\n",
    "a7 APPEND INBOX (\\Seen) \"1-Jan-2024 10:00:00 +0000\" {11}\r\nhello world\r\n",
    "a8 SEARCH OR (FROM \"a\" SUBJECT {3+}\r\nxyz) NOT SEEN\r\n",
    "a9 LIST \"\" \"*\"\r\n",
    "b1 FETCH 1 BODY[HEADER.FIELDS ({4}\r\nFrom)]\r\n",
    "b2 X ((((((((((a))))))))))\r\n",
    "b3 X {3000+}\r\nshort\r\nb4 NOOP\r\n",
    "b5 X {99999999999999999999+}\r\n",
    "* BAD\r\n+ x\r\n\r\n\r\n",
    "c1 UID FETCH 4294967295:1 (UID)\r\n",
    "c2 X \"unterminated {3}\r\nc3 NOOP\r\n",
    "c4 X a\\b \\ \"\\q\" ) (\r\n",
};

/* mutate: a deterministic small change to buf (flip, insert, delete, splice a token). */
static size_t mutate(uint8_t *buf, size_t len, size_t cap, uint32_t *seed)
{
    static const char *const tokens[] = { "{", "}", "{5}\r\n", "{2+}\r\n", "(", ")", "[", "]",
                                          "\"", "\\", " ", "\r\n", "\n", "<0.1>", "*", ":",
                                          ",", "BODY[", "HEADER.FIELDS (", "NIL", "\0" };
    *seed = *seed * 1103515245u + 12345u;
    uint32_t r = *seed >> 8;
    size_t at = len ? r % len : 0;
    switch (r % 4) {
    case 0:
        if (len) buf[at] ^= (uint8_t)(1u << (r % 8));
        break;
    case 1:
        if (len < cap) {
            memmove(buf + at + 1, buf + at, len - at);
            buf[at] = (uint8_t)(r >> 5);
            len++;
        }
        break;
    case 2:
        if (len) {
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
        }
        break;
    default: {
        const char *t = tokens[(r >> 3) % (sizeof tokens / sizeof tokens[0])];
        size_t tl = *t ? strlen(t) : 1;
        if (len + tl <= cap) {
            memmove(buf + at + tl, buf + at, len - at);
            memcpy(buf + at, t, tl);
            len += tl;
        }
    }
    }
    return len;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return 1; }
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_append(&b, chunk, n);
    fclose(f);
    LLVMFuzzerTestOneInput((const uint8_t *)buf_cstr(&b), b.len);
    buf_fini(&b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        int bad = 0;
        for (int i = 1; i < argc; i++) bad |= run_file(argv[i]);
        return bad;
    }
    size_t ncorpus = sizeof corpus / sizeof corpus[0];
    enum { CAP = 8192, ROUNDS = 100000 };
    static uint8_t buf[CAP];
    uint32_t seed = 20240601;
    for (size_t i = 0; i < ncorpus; i++)
        LLVMFuzzerTestOneInput((const uint8_t *)corpus[i], strlen(corpus[i]));
    for (int round = 0; round < ROUNDS; round++) {
        const char *c = corpus[(size_t)round % ncorpus];
        size_t len = strlen(c);
        memcpy(buf, c, len);
        int steps = 1 + round % 8;
        for (int s = 0; s < steps; s++) len = mutate(buf, len, CAP, &seed);
        LLVMFuzzerTestOneInput(buf, len);
    }
    /* all corpus entries at once: one session's worth of pipelined input */
    struct buf all = BUF_INIT;
    for (size_t i = 0; i < ncorpus; i++) buf_appends(&all, corpus[i]);
    LLVMFuzzerTestOneInput((const uint8_t *)buf_cstr(&all), all.len);
    buf_fini(&all);
    printf("fuzz-imap-parser: %zu corpus inputs and %d mutations parsed\n", ncorpus, ROUNDS);
    return 0;
}
#endif
