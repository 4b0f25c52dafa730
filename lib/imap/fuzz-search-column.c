/* fuzz-search-column.c: fuzz target for the header search column (search-column.h). The
 * input is a header block: its blob is encoded and read back field by field, then FROM, TO,
 * SUBJECT and HEADER Cc keys with needles cut from the input must match exactly when answered
 * from the blob as when answered from the header. The input is also read as a blob, which
 * must be rejected or read within its bounds. Seeds in test/fuzz/corpus/search-column. */
#include "core/buf.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include "imap/search-column.h"
#include "imap/search.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct one {
    const char *hdr;
    size_t hlen;
    const struct buf *blob;
};

static int o_record(void *ctx, uint32_t msgno, struct search_record *r)
{
    (void)ctx;
    memset(r, 0, sizeof *r);
    r->uid = msgno;
    return 0;
}

static int o_header(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    struct one *o = ctx;
    (void)msgno;
    *p = o->hdr;
    *len = o->hlen;
    return 0;
}

static int o_message(void *ctx, uint32_t msgno, const char **p, size_t *len)
{
    return o_header(ctx, msgno, p, len);
}

static int o_column(void *ctx, uint32_t msgno, const unsigned char **p, size_t *len)
{
    struct one *o = ctx;
    (void)msgno;
    *p = (const unsigned char *)o->blob->s;
    *len = o->blob->len;
    return 0;
}

static const struct search_msg_ops header_ops = { o_record, o_header, NULL, o_message, NULL,
                                                  NULL, NULL };
static const struct search_msg_ops column_ops = { o_record, o_header, NULL, o_message, NULL,
                                                  NULL, o_column };

/* parse: "SEARCH CHARSET UTF-8 <key> {n+} needle"; NULL when the parser refuses it. */
static struct search_program *parse(const char *key, const char *needle, size_t n)
{
    struct buf in = BUF_INIT;
    struct imap_memsource ms;
    struct imap_source src;
    struct imap_parser_limits lim;
    struct imap_command cmd;
    struct search_program *prog = NULL;
    const char *err = NULL;
    buf_printf(&in, "A SEARCH CHARSET UTF-8 %s {%zu+}\r\n", key, n);
    buf_append(&in, needle, n);
    buf_appends(&in, "\r\n");
    imap_memsource_init(&ms, in.s, in.len, 0, &src);
    imap_parser_limits_default(&lim);
    struct imap_parser *p = imap_parser_new(&src, &lim);
    if (imap_parser_read(p, &cmd) < 0 || search_parse(cmd.args, cmd.nargs, &prog, &err) < 0)
        prog = NULL;
    imap_parser_free(&p);
    buf_fini(&in);
    return prog;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf blob = BUF_INIT;
    struct search_column_value v;

    /* the input as a blob: rejected, or read within bounds */
    for (int f = 0; f < SCOL_N; f++) {
        if (search_column_get(data, size, (enum search_column_field)f, &v) >= 0) {
            if (v.val_len && (v.val < in || v.val + v.val_len > in + size)) abort();
            if (v.addr_len && (v.addr < in || v.addr + v.addr_len > in + size)) abort();
        }
    }

    /* the input as a header block: its blob reads back whole */
    search_column_encode(NULL, NULL, in, size, &blob);
    for (int f = 0; f < SCOL_N; f++)
        if (search_column_get((const unsigned char *)blob.s, blob.len,
                              (enum search_column_field)f, &v) < 0)
            abort();

    /* needles cut from the input at a few places, on four keys: both answers agree */
    static const char *const keys[] = { "FROM", "TO", "SUBJECT", "HEADER Cc" };
    struct one o = { in, size, &blob };
    for (size_t k = 0; k < 6 && size; k++) {
        size_t at = (size * k) / 6, n = 1 + (k * 3) % 9;
        if (at + n > size) n = size - at;
        for (size_t q = 0; q < sizeof keys / sizeof keys[0]; q++) {
            struct search_program *prog = parse(keys[q], in + at, n);
            if (!prog) continue;
            search_prepare(prog, 1, 1, NULL);
            int a = search_match(prog, &header_ops, &o, 1);
            int b = search_match(prog, &column_ops, &o, 1);
            search_free(&prog);
            if (a != b) abort();
        }
    }
    buf_fini(&blob);
    return 0;
}
