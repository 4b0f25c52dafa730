/* imap-sortkeys.c: the SORT and THREAD keys of one message (imap-sortkeys.h): the header
 * fields parsed once, the string keys casemapped, the threading ids hashed with SipHash-2-4
 * (Aumasson and Bernstein, 2012) under the key file's random key, so an id chosen by a sender
 * cannot be made to collide with another on purpose.
 *
 * Blob layout (little-endian): flags (4: bit 0 reply, bit 1 has a msg-id), msg-id hash (8),
 * parent count (4), the parent hashes (8 each), then ISK_NSTR strings as length (4) and
 * bytes. */
#include "imap/imap-sortkeys.h"
#include "imap/imap-sort.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include <string.h>
#include <strings.h>

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(struct buf *b, uint64_t v)
{
    unsigned char p[8];
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
    buf_append(b, p, 8);
}

static void put32(struct buf *b, uint32_t v)
{
    unsigned char p[4];
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
    buf_append(b, p, 4);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); } while (0)

uint64_t imap_sortkeys_hash(const unsigned char *key, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint64_t k0 = get64(key), k1 = get64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t m = get64(s + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    for (size_t k = 0; i + k < n; k++) b |= (uint64_t)s[i + k] << (8 * k);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Header fields read for the keys; the first of each name counts. */
enum { HF_SUBJECT, HF_FROM, HF_TO, HF_CC, HF_MSGID, HF_REFS, HF_IRT, HF_COUNT };
static const char *const hf_names[HF_COUNT] = {
    "Subject", "From", "To", "Cc", "Message-ID", "References", "In-Reply-To",
};

struct fields {
    const char *v[HF_COUNT];
    size_t len[HF_COUNT];
    unsigned found;
};

static int fields_cb(void *rock, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    struct fields *f = rock;
    for (int i = 0; i < HF_COUNT; i++) {
        if (f->v[i]) continue;
        if (strlen(hf_names[i]) == name_len && !strncasecmp(name, hf_names[i], name_len)) {
            f->v[i] = value;
            f->len[i] = value_len;
            f->found |= 1u << i;
        }
    }
    return f->found == (1u << HF_COUNT) - 1;
}

/* The first address of an address field (group markers skipped). */
struct first_addr {
    struct buf *out;
    int display;
};

static int first_addr_cb(void *rock, int kind, const struct mime_address *a)
{
    struct first_addr *fa = rock;
    if (kind != MIME_ADDRESS) return 0;
    if (fa->display && a->name && a->name_len) {
        /* RFC 5957 section 3: the display-name, RFC 2047 decoded */
        size_t at = fa->out->len;
        mime_decode_header(a->name, a->name_len, fa->out);
        for (size_t i = at; i < fa->out->len; i++)
            if (fa->out->s[i] != ' ') return 1;
        buf_truncate(fa->out, at);  /* only blanks: as if there were none */
    }
    if (fa->display) {
        /* no display-name: the addr-spec */
        buf_append(fa->out, a->mailbox, a->mailbox_len);
        if (a->domain_len) {
            buf_putc(fa->out, '@');
            buf_append(fa->out, a->domain, a->domain_len);
        }
        return 1;
    }
    /* RFC 5256 section 3: the addr-mailbox (local part) of the first address */
    buf_append(fa->out, a->mailbox, a->mailbox_len);
    return 1;
}

/* put_str: length and casemapped bytes of s[0,n) appended to out. */
static void put_str(struct buf *out, const char *s, size_t n, struct buf *tmp)
{
    buf_reset(tmp);
    imap_casemap(s ? s : "", n, tmp);
    put32(out, (uint32_t)tmp->len);
    if (tmp->len) buf_append(out, tmp->s, tmp->len);
}

static void put_address(struct buf *out, const struct fields *f, int field, int display,
                        struct buf *tmp, struct buf *tmp2)
{
    struct first_addr fa = { tmp2, display };
    buf_reset(tmp2);
    if (f->v[field]) mime_address_foreach(f->v[field], f->len[field], first_addr_cb, &fa);
    put_str(out, tmp2->s, tmp2->len, tmp);
}

void imap_sortkeys_encode(void *rock, const unsigned char *key, const char *hdr, size_t hlen,
                          struct buf *out)
{
    struct fields f;
    struct buf tmp = BUF_INIT, tmp2 = BUF_INIT;
    const char *myid = NULL, *id, *p, *end;
    size_t mylen = 0, len;
    int reply = 0;
    (void)rock;
    memset(&f, 0, sizeof f);
    if (hlen) mime_header_foreach(hdr, hlen, fields_cb, &f);

    /* the base subject first: its reply flag goes into the flags word */
    if (f.v[HF_SUBJECT]) imap_base_subject(f.v[HF_SUBJECT], f.len[HF_SUBJECT], &tmp2, &reply);
    if (f.v[HF_MSGID]) {
        p = f.v[HF_MSGID];
        if (!imap_msgid_next(&p, f.v[HF_MSGID] + f.len[HF_MSGID], &myid, &mylen)) myid = NULL;
    }
    put32(out, (reply ? 1u : 0) | (myid ? 2u : 0));
    put64(out, myid ? imap_sortkeys_hash(key, myid, mylen) : 0);
    /* REFERENCES step 1A (as thread_references does it on strings): the ids of References,
     * else the first of In-Reply-To; the message's own id left out */
    size_t count_at = out->len;
    uint32_t np = 0;
    put32(out, 0);
    for (int pass = 0; pass < 2 && !np; pass++) {
        int fi = pass ? HF_IRT : HF_REFS;
        if (!f.v[fi]) continue;
        p = f.v[fi];
        end = p + f.len[fi];
        while (imap_msgid_next(&p, end, &id, &len)) {
            if (myid && len == mylen && memcmp(id, myid, len) == 0) continue;
            put64(out, imap_sortkeys_hash(key, id, len));
            np++;
            if (pass) break;
        }
    }
    unsigned char c[4];
    for (int i = 0; i < 4; i++) c[i] = (unsigned char)(np >> (8 * i));
    memcpy(out->s + count_at, c, 4);

    put_str(out, tmp2.s, tmp2.len, &tmp);
    put_address(out, &f, HF_FROM, 0, &tmp, &tmp2);
    put_address(out, &f, HF_TO, 0, &tmp, &tmp2);
    put_address(out, &f, HF_CC, 0, &tmp, &tmp2);
    put_address(out, &f, HF_FROM, 1, &tmp, &tmp2);
    put_address(out, &f, HF_TO, 1, &tmp, &tmp2);
    buf_fini(&tmp);
    buf_fini(&tmp2);
}

int imap_sortkeys_decode(const unsigned char *b, size_t len, struct imap_sortkeys *k)
{
    memset(k, 0, sizeof *k);
    for (int i = 0; i < ISK_NSTR; i++) k->str[i] = "";
    if (len < 16) return -1;
    uint32_t flags = get32(b);
    uint32_t np = get32(b + 12);
    size_t at = 16;
    if (np > (len - at) / 8) return -1;
    at += (size_t)np * 8;
    const char *str[ISK_NSTR];
    uint32_t sl[ISK_NSTR];
    for (int i = 0; i < ISK_NSTR; i++) {
        if (len - at < 4) return -1;
        sl[i] = get32(b + at);
        at += 4;
        if (sl[i] > len - at) return -1;
        str[i] = (const char *)b + at;
        at += sl[i];
    }
    k->reply = flags & 1;
    k->has_msgid = (flags >> 1) & 1;
    k->msgid = get64(b + 4);
    k->nparents = np;
    k->parents = b + 16;
    for (int i = 0; i < ISK_NSTR; i++) {
        k->str[i] = str[i];
        k->len[i] = sl[i];
    }
    return 0;
}
