/* test-mail.c: unit tests of the message handle (mail.h) on real mailbox files: what it loads
 * and how often, the top header from the cache or the file, a damaged cache record rebuilt, a
 * vanished message file, the cached section table, reuse across messages. */
#include "store/mail.h"
#include "store/cache.h"
#include "store/mailbox.h"
#include "store/partition.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/coffer-test-mail-XXXXXX";
static char *part;

static const char small_msg[] =
    "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: small one\r\n"
    "Date: Fri, 21 Nov 1997 09:55:06 -0600\r\n\r\nHello.\r\nBye.\r\n";

static const char mime_msg[] =
    "From: carol@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    "--b1\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
    "--b1\r\nContent-Type: text/html\r\n\r\n<p>second</p>\r\n--b1--\r\n";

static uint32_t append(struct mailbox *mb, const char *data, size_t len)
{
    struct mailbox_msg m = { data, len, -1, 1000000000, 0, NULL, 0 };
    UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
    return m.uid;
}

/* a message whose header block is bigger than the cache keeps (CACHE_HEADER_MAX) */
static void big_header_msg(struct buf *b)
{
    buf_reset(b);
    buf_appends(b, "From: dave@example.org\r\nSubject: long header\r\n");
    while (b->len <= CACHE_HEADER_MAX + 100)
        buf_appends(b, "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    buf_appends(b, "\r\nbody of the big-header message\r\n");
}

static void rm_rf(const char *path)
{
    char *cmd = xasprintf("rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed: %s\n", cmd);
    free(cmd);
}

static struct mail_stats snap(void)
{
    return mail_stats;
}

static void test_mail(void)
{
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.alice", id, "alice\tlrswipkxtecda", 0), 0);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
    mailbox_set_nofsync(mb, 1);
    struct buf big = BUF_INIT;
    big_header_msg(&big);
    uint32_t u_small = append(mb, small_msg, strlen(small_msg));
    uint32_t u_mime = append(mb, mime_msg, strlen(mime_msg));
    uint32_t u_big = append(mb, big.s, big.len);
    uint32_t u_gone = append(mb, small_msg, strlen(small_msg));
    size_t small_hs = (size_t)(strstr(small_msg, "\r\n\r\n") + 4 - small_msg);

    struct mail *m = mail_new(mb);
    const struct index_record *rec;
    const char *p, *q;
    size_t len, qlen;

    /* the record, read once; the top header of a small message from the cache alone */
    mail_set_uid(m, u_small);
    struct mail_stats s0 = snap();
    UNIT_EQ_INT(mail_record(m, &rec), 1);
    UNIT_EQ_INT(rec->uid, u_small);
    UNIT_EQ_INT(mail_size(m), strlen(small_msg));
    UNIT_EQ_INT(mail_internaldate(m), 1000000000);
    UNIT_EQ_INT(mail_uid(m), u_small);
    UNIT_CHECK(mail_guid(m) == rec->guid);
    UNIT_EQ_INT(mail_record(m, &rec), 1);
    UNIT_EQ_INT(mail_header(m, &p, &len), 0);
    UNIT_EQ_INT(len, small_hs);
    UNIT_CHECK(!memcmp(p, small_msg, len));
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    UNIT_CHECK(qlen > 0 && memmem(q, qlen, "small one", 9) != NULL);
    UNIT_EQ_INT(mail_field(m, MAIL_BODYSTRUCTURE, &q, &qlen), 0);
    UNIT_CHECK(qlen > 0);
    UNIT_EQ_INT(mail_field(m, MAIL_BODY, &q, &qlen), 0);
    UNIT_CHECK(qlen > 0);
    UNIT_EQ_INT(mail_stats.records - s0.records, 1);
    UNIT_EQ_INT(mail_stats.caches - s0.caches, 1);
    UNIT_EQ_INT(mail_stats.maps - s0.maps, 0);
    /* then the body: mapped once, however often asked */
    UNIT_EQ_INT(mail_body(m, &p, &len), 0);
    UNIT_EQ_INT(len, strlen(small_msg) - small_hs);
    UNIT_CHECK(!memcmp(p, "Hello.", 6));
    UNIT_EQ_INT(mail_message(m, &p, &len), 0);
    UNIT_CHECK(len == strlen(small_msg) && !memcmp(p, small_msg, len));
    UNIT_EQ_INT(mail_stats.maps - s0.maps, 1);
    UNIT_EQ_INT(mail_stats.records - s0.records, 1);
    UNIT_EQ_INT(mail_stats.caches - s0.caches, 1);

    /* a record given by the caller is not read again; once mapped, the header comes from the
     * file (no cache read for it) */
    struct index_record r2;
    UNIT_EQ_INT(mailbox_record(mb, u_small, &r2), 1);
    mail_set_record(m, &r2);
    s0 = snap();
    UNIT_EQ_INT(mail_message(m, &p, &len), 0);
    UNIT_EQ_INT(mail_header(m, &p, &len), 0);
    UNIT_EQ_INT(len, small_hs);
    UNIT_CHECK(!memcmp(p, small_msg, len));
    UNIT_EQ_INT(mail_stats.records - s0.records, 0);
    UNIT_EQ_INT(mail_stats.caches - s0.caches, 0);
    UNIT_EQ_INT(mail_stats.maps - s0.maps, 1);

    /* a header bigger than the cache keeps: from the file, without reading the cache */
    mail_set_uid(m, u_big);
    s0 = snap();
    UNIT_EQ_INT(mail_header(m, &p, &len), 0);
    UNIT_CHECK(len > CACHE_HEADER_MAX && len == big.len - strlen("body of the big-header message\r\n"));
    UNIT_CHECK(!memcmp(p, big.s, len));
    UNIT_EQ_INT(mail_stats.caches - s0.caches, 0);
    UNIT_EQ_INT(mail_stats.maps - s0.maps, 1);
    /* ... and still from the file when the cache entry is loaded as well */
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    UNIT_EQ_INT(mail_header(m, &p, &len), 0);
    UNIT_CHECK(len > CACHE_HEADER_MAX && !memcmp(p, big.s, len));
    UNIT_EQ_INT(mail_stats.maps - s0.maps, 1);

    /* the section table from the cache */
    mail_set_uid(m, u_mime);
    struct mime_section ms;
    UNIT_EQ_INT(mail_section_find(m, "2", &ms), 1);
    UNIT_EQ_INT(mail_message(m, &p, &len), 0);
    UNIT_CHECK(ms.body_off + ms.body_len <= len);
    UNIT_CHECK(!memcmp(p + ms.body_off, "<p>second</p>", 13));
    UNIT_EQ_INT(mail_section_find(m, "7", &ms), 0);
    UNIT_EQ_INT(mail_sections(m, &q, &qlen), 0);
    UNIT_CHECK(qlen > 0);

    /* a damaged cache record: rebuilt from the file, same answer, file mapped once */
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    char *env = xstrndup(q, qlen);
    UNIT_EQ_INT(mailbox_record(mb, u_mime, &r2), 1);
    char *cpath = xasprintf("%s/cache", mailbox_dir(mb));
    int fd = open(cpath, O_RDWR);
    UNIT_CHECK(fd >= 0);
    UNIT_CHECK(pwrite(fd, "XXXX", 4, (off_t)r2.cache_offset + 20) == 4);
    close(fd);
    /* a new handle: this one may still hold the record's bytes as it read them before the
     * damage (its read-ahead window), which are right */
    mail_free(&m);
    m = mail_new(mb);
    mail_set_uid(m, u_mime);
    s0 = snap();
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    UNIT_CHECK(qlen == strlen(env) && !memcmp(q, env, qlen));
    UNIT_EQ_INT(mail_section_find(m, "1", &ms), 1);
    UNIT_EQ_INT(mail_message(m, &p, &len), 0);
    UNIT_CHECK(!memcmp(p + ms.body_off, "first part", 10));
    UNIT_EQ_INT(mail_header(m, &p, &len), 0);
    UNIT_CHECK(!memcmp(p, mime_msg, len) && !memcmp(p + len - 4, "\r\n\r\n", 4));
    UNIT_EQ_INT(mail_stats.cache_rebuilds - s0.cache_rebuilds, 1);
    UNIT_EQ_INT(mail_stats.caches - s0.caches, 0);
    UNIT_EQ_INT(mail_stats.maps - s0.maps, 1);
    free(env);
    free(cpath);

    /* a vanished message file: CF_E_NOTFOUND, and nothing stale is handed out */
    char *mpath = mailbox_message_path(mb, u_gone);
    UNIT_EQ_INT(unlink(mpath), 0);
    free(mpath);
    mail_set_uid(m, u_gone);
    UNIT_EQ_INT(mail_record(m, &rec), 1);
    UNIT_EQ_INT(mail_message(m, &p, &len), CF_E_NOTFOUND);
    UNIT_EQ_INT(mail_body(m, &p, &len), CF_E_NOTFOUND);
    UNIT_EQ_INT(mail_header(m, &p, &len), 0);      /* the cache still has the header */
    UNIT_EQ_INT(len, small_hs);

    /* an absent uid, and an expunged message: gone */
    mail_set_uid(m, 999);
    UNIT_EQ_INT(mail_record(m, &rec), 0);
    UNIT_EQ_INT(mail_header(m, &p, &len), CF_E_NOTFOUND);
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), CF_E_NOTFOUND);
    struct mailbox_store st = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, &u_small, 1, &st, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(mb, &u_small, 1, NULL), 0);
    mail_set_uid(m, u_small);
    UNIT_EQ_INT(mail_record(m, &rec), 0);
    UNIT_EQ_INT(mail_message(m, &p, &len), CF_E_NOTFOUND);

    /* reset: points at nothing */
    mail_reset(m);
    UNIT_EQ_INT(mail_uid(m), 0);
    UNIT_EQ_INT(mail_record(m, &rec), 0);
    mail_free(&m);
    UNIT_CHECK(m == NULL);
    mail_free(&m);
    buf_fini(&big);
    mailbox_close(&mb);
}

/* the cache read-ahead window (mail.c): a walk in uid order gets every record right, a record
 * longer than the window included; a record whose bytes in the window fail their check is
 * read again from the file before being called damaged */
static void test_window(void)
{
    enum { N = 30, LONG = 20 };
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.win", id, "win\tlrswipkxtecda", 0), 0);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
    mailbox_set_nofsync(mb, 1);
    struct buf msg = BUF_INIT;
    char *want[N + 1];
    for (int i = 1; i <= N; i++) {
        buf_reset(&msg);
        buf_printf(&msg, "From: w%d@example.org\r\nSubject: window %02d\r\n", i, i);
        /* a cached header of 6 KB: a record longer than the first window read */
        for (int k = 0; i == LONG && k < 80; k++)
            buf_printf(&msg, "X-Pad-%d: %070d\r\n", k, 0);
        buf_appends(&msg, "\r\nbody\r\n");
        UNIT_EQ_INT((int)append(mb, msg.s, msg.len), i);
        struct cache_entry ce;
        cache_entry_init(&ce);
        UNIT_EQ_INT(mailbox_cache_fetch(mb, (uint32_t)i, &ce), 0);
        want[i] = xstrndup(ce.f[CACHE_ENVELOPE].s, ce.f[CACHE_ENVELOPE].len);
        cache_entry_fini(&ce);
    }
    struct index_record r1, r2, rl;
    UNIT_EQ_INT(mailbox_record(mb, 1, &r1), 1);
    UNIT_EQ_INT(mailbox_record(mb, 2, &r2), 1);
    UNIT_EQ_INT(mailbox_record(mb, LONG, &rl), 1);
    UNIT_CHECK(r2.cache_offset - r1.cache_offset < 2048);      /* both in the first window */
    UNIT_CHECK(rl.cache_offset > r1.cache_offset + 4096);

    /* the walk: every envelope its own, none rebuilt */
    struct mail *m = mail_new(mb);
    const char *q;
    size_t qlen;
    struct mail_stats s0 = snap();
    for (int i = 1; i <= N; i++) {
        mail_set_uid(m, (uint32_t)i);
        UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
        UNIT_CHECK(qlen == strlen(want[i]) && !memcmp(q, want[i], qlen));
    }
    UNIT_EQ_INT(mail_stats.caches - s0.caches, N);
    UNIT_EQ_INT(mail_stats.cache_rebuilds - s0.cache_rebuilds, 0);
    mail_free(&m);

    /* record 2 damaged on disk when the window is read (with record 1), repaired before
     * record 2 is asked for: read again from the file, not rebuilt */
    char *cpath = xasprintf("%s/cache", mailbox_dir(mb));
    int fd = open(cpath, O_RDWR);
    UNIT_CHECK(fd >= 0);
    char orig[4];
    UNIT_CHECK(pread(fd, orig, 4, (off_t)r2.cache_offset + 20) == 4);
    UNIT_CHECK(pwrite(fd, "XXXX", 4, (off_t)r2.cache_offset + 20) == 4);
    m = mail_new(mb);
    mail_set_uid(m, 1);
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    UNIT_CHECK(pwrite(fd, orig, 4, (off_t)r2.cache_offset + 20) == 4);
    s0 = snap();
    mail_set_uid(m, 2);
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    UNIT_CHECK(qlen == strlen(want[2]) && !memcmp(q, want[2], qlen));
    UNIT_EQ_INT(mail_stats.caches - s0.caches, 1);
    UNIT_EQ_INT(mail_stats.cache_rebuilds - s0.cache_rebuilds, 0);

    /* damaged on disk (and so in the window): rebuilt from the message file, same text */
    UNIT_CHECK(pwrite(fd, "XXXX", 4, (off_t)r2.cache_offset + 20) == 4);
    mail_set_uid(m, 1);
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    s0 = snap();
    mail_set_uid(m, 2);
    UNIT_EQ_INT(mail_field(m, MAIL_ENVELOPE, &q, &qlen), 0);
    UNIT_CHECK(qlen == strlen(want[2]) && !memcmp(q, want[2], qlen));
    UNIT_EQ_INT(mail_stats.cache_rebuilds - s0.cache_rebuilds, 1);
    close(fd);
    mail_free(&m);
    free(cpath);
    for (int i = 1; i <= N; i++) free(want[i]);
    buf_fini(&msg);
    mailbox_close(&mb);
}

int main(void)
{
    log_init("test-mail", 1, LOG_LVL_ERR);
    if (!mkdtemp(tmpdir)) return 2;
    part = xasprintf("%s/part", tmpdir);
    UNIT_EQ_INT(partition_prepare(part), 0);
    test_mail();
    test_window();
    if (!unit_failed) rm_rf(tmpdir);
    else fprintf(stderr, "left %s for inspection\n", tmpdir);
    free(part);
    UNIT_DONE();
}
