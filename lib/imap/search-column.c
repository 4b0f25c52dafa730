/* search-column.c: the header search column of search-column.h: encoding a header block into
 * a blob, and reading one field back. The texts are exactly what search-text.c's
 * header_field_match compares the needle with, folded ahead (mime_text_fold), so a match on
 * the blob is a match on the header (test-search checks both on a corpus). */
#include "imap/search-column.h"
#include "imap/search-int.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include <string.h>
#include <strings.h>

static const char *const col_names[SCOL_N] = { "From", "To", "Cc", "Bcc", "Subject" };

int search_column_field(const char *name)
{
    for (int i = 0; i < SCOL_N; i++)
        if (!strcasecmp(name, col_names[i])) return i;
    return -1;
}

static void put32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    buf_append(b, x, 4);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

struct enc {
    uint32_t count[SCOL_N], naddr[SCOL_N];
    struct buf val[SCOL_N], addr[SCOL_N];
    struct buf tmp;
    int f;                  /* the field whose addresses are being collected */
    unsigned flags;
};

/* add_addr_text: one text of field e->f's addresses, folded, after a separator. */
static void add_addr_text(struct enc *e, const char *s, size_t n)
{
    if (e->naddr[e->f]++) buf_putc(&e->addr[e->f], (char)0xff);
    mime_text_fold(s, n, &e->addr[e->f]);
}

/* addr_cb: the texts search-text.c's addr_cb looks in, in the same order. */
static int addr_cb(void *rock, int kind, const struct mime_address *a)
{
    struct enc *e = rock;
    if (kind == MIME_ADDRESS_GROUP_END) return 0;
    if (kind == MIME_ADDRESS) {
        buf_reset(&e->tmp);
        buf_append(&e->tmp, a->mailbox, a->mailbox_len);
        if (a->domain_len) {
            buf_putc(&e->tmp, '@');
            buf_append(&e->tmp, a->domain, a->domain_len);
        }
        add_addr_text(e, e->tmp.s ? e->tmp.s : "", e->tmp.len);
    }
    if (!a->name_len) return 0;
    buf_reset(&e->tmp);
    mime_decode_header(a->name, a->name_len, &e->tmp);
    add_addr_text(e, e->tmp.s ? e->tmp.s : "", e->tmp.len);
    return 0;
}

/* raw_scan_differs: whether header_value_match's raw byte scan (taken for ASCII values without
 * encoded words) can see v differently from its decoded text: decoding drops every CR and LF,
 * which joins the bytes around one that does not start a fold. */
static int raw_scan_differs(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] >= 0x80) return 0;
        if (v[i] == '=' && i + 1 < n && v[i + 1] == '?') return 0;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if ((v[i] == '\r' || v[i] == '\n') && !strchr(" \t\r\n", v[i + 1])) return 1;
    return 0;
}

static int field_cb(void *rock, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    struct enc *e = rock;
    int f = -1;
    for (int i = 0; i < SCOL_N && f < 0; i++)
        if (strlen(col_names[i]) == name_len && !strncasecmp(name, col_names[i], name_len)) f = i;
    if (f < 0) return 0;
    if (e->count[f]++) buf_putc(&e->val[f], (char)0xff);
    buf_reset(&e->tmp);
    mime_decode_header(value, value_len, &e->tmp);
    mime_text_fold(e->tmp.s ? e->tmp.s : "", e->tmp.len, &e->val[f]);
    if (raw_scan_differs(value, value_len)) e->flags |= SCOL_UNSURE;
    if (f != SCOL_SUBJECT && addr_text_may_differ(value, value_len)) {
        e->f = f;
        mime_address_foreach(value, value_len, addr_cb, e);
    }
    return 0;
}

void search_column_encode(void *rock, const unsigned char *key, const char *hdr, size_t hlen,
                          struct buf *out)
{
    struct enc e;
    (void)rock;
    (void)key;
    memset(&e, 0, sizeof e);
    mime_header_foreach(hdr, hlen, field_cb, &e);
    size_t total = 0;
    for (int i = 0; i < SCOL_N; i++) total += e.val[i].len + e.addr[i].len;
    int too_big = total > SEARCH_COLUMN_MAX;
    buf_putc(out, (char)(too_big ? SCOL_UNSURE : e.flags));
    for (int i = 0; i < SCOL_N; i++) {
        if (too_big) {
            e.count[i] = 0;
            e.val[i].len = e.addr[i].len = 0;
        }
        put32(out, e.count[i]);
        put32(out, (uint32_t)e.val[i].len);
        if (e.val[i].len) buf_append(out, e.val[i].s, e.val[i].len);
        put32(out, (uint32_t)e.addr[i].len);
        if (e.addr[i].len) buf_append(out, e.addr[i].s, e.addr[i].len);
        buf_fini(&e.val[i]);
        buf_fini(&e.addr[i]);
    }
    buf_fini(&e.tmp);
}

int search_column_get(const unsigned char *b, size_t len, enum search_column_field f,
                      struct search_column_value *v)
{
    memset(v, 0, sizeof *v);
    if (len < 1 || (unsigned)f >= SCOL_N) return -1;
    size_t off = 1;
    for (int i = 0; i <= (int)f; i++) {
        if (len - off < 8) return -1;
        uint32_t count = get32(b + off), vl = get32(b + off + 4);
        off += 8;
        if (len - off < vl) return -1;
        const char *val = (const char *)b + off;
        off += vl;
        if (len - off < 4) return -1;
        uint32_t al = get32(b + off);
        off += 4;
        if (len - off < al) return -1;
        if (i == (int)f) {
            v->count = count;
            v->val = val;
            v->val_len = vl;
            v->addr = (const char *)b + off;
            v->addr_len = al;
        }
        off += al;
    }
    return b[0];
}
