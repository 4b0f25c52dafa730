/* test-imap-sortkeys.c: unit tests of imap-sortkeys.h: SipHash-2-4 against the reference
 * vectors, the keys of header blocks (base subject and reply flag, first addresses, display
 * names, msg-id, the ids REFERENCES step 1A links), malformed blobs, and THREAD=REFERENCES over
 * hashed keys giving what it gives over the raw fields, on generated reply chains. */
#include "imap/imap-sortkeys.h"
#include "imap/imap-thread.h"
#include "core/buf.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char key16[16] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
};

static void test_siphash(void)
{
    /* the SipHash paper's key 00..0f over the messages 00, 00 01, ... (length 0 and 15) */
    char m[64];
    for (int i = 0; i < 64; i++) m[i] = (char)i;
    UNIT_CHECK(imap_sortkeys_hash(key16, m, 0) == 0x726fdb47dd0e0e31ull);
    UNIT_CHECK(imap_sortkeys_hash(key16, m, 15) == 0xa129ca6149be45e5ull);
    UNIT_CHECK(imap_sortkeys_hash(key16, m, 8) != imap_sortkeys_hash(key16, m, 9));
    unsigned char other[16];
    memcpy(other, key16, 16);
    other[0] ^= 1;
    UNIT_CHECK(imap_sortkeys_hash(key16, "a@b", 3) != imap_sortkeys_hash(other, "a@b", 3));
}

static uint64_t parent(const struct imap_sortkeys *k, uint32_t i)
{
    uint64_t v = 0;
    for (int b = 7; b >= 0; b--) v = (v << 8) | k->parents[i * 8 + (unsigned)b];
    return v;
}

static int str_is(const struct imap_sortkeys *k, int i, const char *want)
{
    return k->len[i] == strlen(want) && !memcmp(k->str[i], want, k->len[i]);
}

static void test_encode(void)
{
    const char *h =
        "From: \"=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=\" <jurgen.m@example.org>, x@y.org\r\n"
        "To: undisclosed:;, <bob@example.net>\r\n"
        "Subject: Re: [list] Hello  World (fwd)\r\n"
        "Message-ID: <own@example.org>\r\n"
        "References: <r1@example.org> junk <own@example.org>\r\n <bad id@x> <r2@example.org>\r\n"
        "In-Reply-To: <irt@example.org>\r\n"
        "\r\n";
    struct buf b = BUF_INIT;
    struct imap_sortkeys k;
    imap_sortkeys_encode(NULL, key16, h, strlen(h), &b);
    UNIT_EQ_INT(imap_sortkeys_decode((const unsigned char *)b.s, b.len, &k), 0);
    UNIT_EQ_INT(k.reply, 1);
    UNIT_EQ_INT(k.has_msgid, 1);
    UNIT_CHECK(k.msgid == imap_sortkeys_hash(key16, "own@example.org", 15));
    /* References without the message's own id and without the invalid one */
    UNIT_EQ_INT(k.nparents, 2);
    UNIT_CHECK(parent(&k, 0) == imap_sortkeys_hash(key16, "r1@example.org", 14));
    UNIT_CHECK(parent(&k, 1) == imap_sortkeys_hash(key16, "r2@example.org", 14));
    UNIT_CHECK(str_is(&k, ISK_SUBJECT, "HELLO WORLD"));
    UNIT_CHECK(str_is(&k, ISK_FROM, "JURGEN.M"));
    UNIT_CHECK(str_is(&k, ISK_TO, "BOB"));           /* group markers skipped */
    UNIT_CHECK(str_is(&k, ISK_CC, ""));
    UNIT_CHECK(str_is(&k, ISK_DISPLAYTO, "BOB@EXAMPLE.NET"));
    /* the display name decoded, then casemapped: U+00FC titlecases to U+00DC, decomposed */
    UNIT_CHECK(str_is(&k, ISK_DISPLAYFROM, "JU\xcc\x88RGEN MU\xcc\x88LLER"));

    /* no References: the first id of In-Reply-To that is not the message's own */
    buf_reset(&b);
    const char *h2 = "Message-ID: <me@x.org>\r\nIn-Reply-To: <me@x.org> <p@x.org> <q@x.org>\r\n"
                     "Subject: plain\r\n\r\n";
    imap_sortkeys_encode(NULL, key16, h2, strlen(h2), &b);
    UNIT_EQ_INT(imap_sortkeys_decode((const unsigned char *)b.s, b.len, &k), 0);
    UNIT_EQ_INT(k.reply, 0);
    UNIT_EQ_INT(k.nparents, 1);
    UNIT_CHECK(parent(&k, 0) == imap_sortkeys_hash(key16, "p@x.org", 7));
    UNIT_CHECK(str_is(&k, ISK_SUBJECT, "PLAIN"));

    /* an empty header */
    buf_reset(&b);
    imap_sortkeys_encode(NULL, key16, "", 0, &b);
    UNIT_EQ_INT(imap_sortkeys_decode((const unsigned char *)b.s, b.len, &k), 0);
    UNIT_EQ_INT(k.has_msgid, 0);
    UNIT_EQ_INT(k.nparents, 0);
    for (int i = 0; i < ISK_NSTR; i++) UNIT_EQ_INT(k.len[i], 0);

    /* malformed blobs: refused, empty keys */
    imap_sortkeys_encode(NULL, key16, h, strlen(h), &b);
    for (size_t cut = 0; cut < b.len; cut++) {
        int r = imap_sortkeys_decode((const unsigned char *)b.s, cut, &k);
        if (r < 0) UNIT_CHECK(k.len[ISK_SUBJECT] == 0 && k.str[ISK_SUBJECT] != NULL);
    }
    unsigned char bad[16 + 8];
    memset(bad, 0, sizeof bad);
    bad[12] = 0xff;             /* a parent count past the end */
    UNIT_EQ_INT(imap_sortkeys_decode(bad, sizeof bad, &k), -1);
    buf_fini(&b);
}

/* THREAD=REFERENCES over hashed keys equals the string algorithm on random reply trees with
 * duplicate ids, missing ids, self references and loops. */
static void test_thread_equivalence(void)
{
    srand(13);
    for (int round = 0; round < 40; round++) {
        size_t n = 1 + (size_t)(rand() % 60);
        struct buf *hdrs = xzmalloc(n * sizeof *hdrs);
        struct buf *blobs = xzmalloc(n * sizeof *blobs);
        struct thread_msg *a = xzmalloc(n * sizeof *a), *h = xzmalloc(n * sizeof *h);
        struct imap_sortkeys *k = xzmalloc(n * sizeof *k);
        /* raw field values kept apart for the string algorithm */
        char **mid = xzmalloc(n * sizeof *mid), **refs = xzmalloc(n * sizeof *refs);
        char **irt = xzmalloc(n * sizeof *irt);
        for (size_t i = 0; i < n; i++) {
            int id = rand() % 5 ? (int)i : rand() % (int)n;   /* some duplicates */
            mid[i] = rand() % 8 ? xasprintf("<m%d@x>", id) : xasprintf("none");
            struct buf r = BUF_INIT;
            int nr = rand() % 4;
            for (int q = 0; q < nr; q++) {
                int t = rand() % (int)(n + 3);      /* some point nowhere, some forward */
                buf_printf(&r, "%s<m%d@x>", q ? " " : "", t);
            }
            refs[i] = buf_release(&r);
            irt[i] = xasprintf("<m%d@x>", rand() % (int)n);
            int use_refs = rand() % 3 != 0, use_irt = rand() % 2;
            buf_printf(&hdrs[i], "Subject: %s topic %d\r\nMessage-ID: %s\r\n",
                       rand() % 2 ? "Re:" : "", rand() % 4, mid[i]);
            if (use_refs) buf_printf(&hdrs[i], "References: %s\r\n", refs[i]);
            else { free(refs[i]); refs[i] = NULL; }
            if (use_irt) buf_printf(&hdrs[i], "In-Reply-To: %s\r\n", irt[i]);
            else { free(irt[i]); irt[i] = NULL; }
            buf_appends(&hdrs[i], "\r\n");
        }
        for (size_t i = 0; i < n; i++) {
            imap_sortkeys_encode(NULL, key16, hdrs[i].s, hdrs[i].len, &blobs[i]);
            UNIT_EQ_INT(imap_sortkeys_decode((const unsigned char *)blobs[i].s, blobs[i].len,
                                             &k[i]), 0);
            a[i].num = a[i].seq = (uint32_t)(i + 1);
            a[i].date = 1000 + rand() % 50;
            a[i].subject = k[i].str[ISK_SUBJECT];
            a[i].subject_len = k[i].len[ISK_SUBJECT];
            a[i].reply = k[i].reply;
            a[i].msgid = mid[i];
            a[i].msgid_len = strlen(mid[i]);
            a[i].refs = refs[i];
            a[i].refs_len = refs[i] ? strlen(refs[i]) : 0;
            a[i].irt = irt[i];
            a[i].irt_len = irt[i] ? strlen(irt[i]) : 0;
            h[i] = a[i];
            h[i].has_id = k[i].has_msgid;
            h[i].id_hash = k[i].msgid;
            h[i].parents = k[i].parents;
            h[i].nparents = k[i].nparents;
        }
        struct buf o1 = BUF_INIT, o2 = BUF_INIT;
        thread_references(a, n, &o1);
        thread_references_hashed(h, n, &o2);
        UNIT_EQ_STR(buf_cstr(&o1), buf_cstr(&o2));
        buf_fini(&o1);
        buf_fini(&o2);
        for (size_t i = 0; i < n; i++) {
            buf_fini(&hdrs[i]);
            buf_fini(&blobs[i]);
            free(mid[i]);
            free(refs[i]);
            free(irt[i]);
        }
        free(hdrs);
        free(blobs);
        free(a);
        free(h);
        free(k);
        free(mid);
        free(refs);
        free(irt);
    }
}

int main(void)
{
    test_siphash();
    test_encode();
    test_thread_equivalence();
    UNIT_DONE();
}
