/* test-mailbox-sort.c: unit tests of mailbox-sort.h on real mailbox files: the index walk
 * (sent date as RFC 5256 wants it, sizes, expunged records), and the sort key file: built on
 * first use, served from the file after, appended for new messages, never stale after an
 * expunge, a repack, a damaged record, a torn tail, another content version or a replaced
 * message under the same uid, shrunk when mostly expunged, and rebuilt after reconstruct. */
#include "store/mailbox-sort.h"
#include "store/mailbox.h"
#include "store/partition.h"
#include "store/reconstruct.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/coffer-test-mbsort-XXXXXX";
static char *part;

/* The test encoder: the blob is "K" + the key's first byte + the Subject value, so a test
 * sees which header (and which file key) a blob came from. */
static int encode_calls;
static void test_encode(void *rock, const unsigned char *key, const char *hdr, size_t hlen,
                        struct buf *out)
{
    (void)rock;
    encode_calls++;
    buf_putc(out, 'K');
    buf_putc(out, (char)key[0]);
    const char *s = NULL;
    for (size_t i = 0; i + 9 <= hlen; i++) {
        if ((i == 0 || hdr[i - 1] == '\n') && !strncmp(hdr + i, "Subject: ", 9)) {
            s = hdr + i + 9;
            break;
        }
    }
    if (!s) return;
    const char *e = s;
    while (e < hdr + hlen && *e != '\r') e++;
    buf_append(out, s, (size_t)(e - s));
}

static struct mailbox_sortkeys_ops ops = { 7, test_encode, NULL, NULL };

static uint32_t append_subject(struct mailbox *mb, const char *subject, const char *date,
                               int64_t internaldate)
{
    char *msg = xasprintf("From: a@example.org\r\nSubject: %s\r\n%s%s%s\r\nbody\r\n",
                          subject, date ? "Date: " : "", date ? date : "", date ? "\r\n" : "");
    struct mailbox_msg m = { msg, strlen(msg), -1, internaldate, 0, NULL, 0 };
    UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
    free(msg);
    return m.uid;
}

static char *sk_path(struct mailbox *mb)
{
    return xasprintf("%s/%s", mailbox_dir(mb), SORTKEYS_FILE);
}

/* get: the blobs of every message of the view, as strings without the key byte, joined by
 * '|'; *key0 gets the file key's first byte. */
static char *get_all(struct mailbox *mb, unsigned char *key0)
{
    uint32_t n = mailbox_count(mb);
    uint32_t *uids = xreallocarray(NULL, n + 1, sizeof *uids);
    struct mailbox_sortrec *recs = xreallocarray(NULL, n + 1, sizeof *recs);
    for (uint32_t i = 0; i < n; i++) uids[i] = mailbox_uid(mb, i + 1);
    mailbox_sort_records(mb, uids, n, recs);
    struct mailbox_sortkeys k;
    UNIT_EQ_INT(mailbox_sortkeys_get(mb, &ops, uids, recs, n, &k), 0);
    struct buf b = BUF_INIT;
    for (uint32_t i = 0; i < n; i++) {
        UNIT_CHECK(k.len[i] >= 2 && k.blob[i][0] == 'K');
        UNIT_CHECK(k.blob[i][1] == k.key[0]);
        if (i) buf_putc(&b, '|');
        if (k.len[i] > 2) buf_append(&b, k.blob[i] + 2, k.len[i] - 2);
    }
    if (key0) *key0 = k.key[0];
    mailbox_sortkeys_fini(&k);
    free(uids);
    free(recs);
    return buf_release(&b);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    UNIT_CHECK(fd >= 0);
    unsigned char c;
    UNIT_EQ_INT(pread(fd, &c, 1, off), 1);
    c ^= 0x40;
    UNIT_EQ_INT(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void expunge_uid(struct mailbox *mb, uint32_t uid)
{
    struct mailbox_store st = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, &uid, 1, &st, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(mb, &uid, 1, NULL), 0);
}

static void sync_view(struct mailbox *mb)
{
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(mb, 0, &ch), 0);
    mailbox_changes_fini(&ch);
}

static void test_records(void)
{
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.rec", id, "rec\tlrswipkxtecda", 0), 0);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
    mailbox_set_nofsync(mb, 1);
    /* RFC 5256 section 2.2: the Date: field in UTC; the internal date when there is none or
     * it does not parse (the index keeps 0 then) */
    uint32_t u1 = append_subject(mb, "one", "Fri, 21 Nov 1997 09:55:06 -0600", 1000);
    uint32_t u2 = append_subject(mb, "two", NULL, 2000);
    uint32_t u3 = append_subject(mb, "three", "not a date", 3000);
    uint32_t u4 = append_subject(mb, "four", "Sat, 1 Jan 2000 00:00:00 +0100", 4000);
    expunge_uid(mb, u4);
    uint32_t uids[5] = { u1, u2, u3, u4, u4 + 10 };
    struct mailbox_sortrec r[5];
    mailbox_sort_records(mb, uids, 5, r);
    UNIT_CHECK(r[0].found && !r[0].expunged);
    UNIT_EQ_INT(r[0].sentdate, 880127706);
    UNIT_EQ_INT(r[0].internaldate, 1000);
    UNIT_EQ_INT(r[1].sentdate, 0);
    UNIT_EQ_INT(r[2].sentdate, 0);
    UNIT_EQ_INT(r[2].internaldate, 3000);
    UNIT_CHECK(r[3].found && r[3].expunged);
    UNIT_EQ_INT(r[3].sentdate, 946681200);
    UNIT_CHECK(!r[4].found);
    UNIT_CHECK(r[1].size > 0);
    /* a sparse list: the walk bisects past the gap */
    uint32_t two[2] = { u1, u3 };
    mailbox_sort_records(mb, two, 2, r);
    UNIT_CHECK(r[0].found && r[1].found);
    UNIT_EQ_INT(r[1].internaldate, 3000);
    mailbox_close(&mb);
}

static void test_keyfile(void)
{
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.keys", id, "keys\tlrswipkxtecda", 0), 0);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
    mailbox_set_nofsync(mb, 1);
    char *path = sk_path(mb);
    uint32_t u[8];
    u[0] = append_subject(mb, "alpha", NULL, 1);
    u[1] = append_subject(mb, "beta", NULL, 2);
    u[2] = append_subject(mb, "gamma", NULL, 3);
    sync_view(mb);

    /* first use: computed, the file written whole */
    struct mailbox_sortkeys_stats s0 = mailbox_sortkeys_stats;
    unsigned char key0, key1;
    char *got = get_all(mb, &key0);
    UNIT_EQ_STR(got, "alpha|beta|gamma");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 3);
    UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);
    UNIT_CHECK(file_size(path) > SORTKEYS_HEADER_SIZE);

    /* second use: all from the file, nothing written */
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, &key1);
    UNIT_EQ_STR(got, "alpha|beta|gamma");
    free(got);
    UNIT_EQ_INT(key0, key1);
    UNIT_EQ_INT(mailbox_sortkeys_stats.hits - s0.hits, 3);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);
    UNIT_EQ_INT(mailbox_sortkeys_stats.appends + mailbox_sortkeys_stats.rewrites -
                s0.appends - s0.rewrites, 0);

    /* new messages: computed once, appended */
    u[3] = append_subject(mb, "delta", NULL, 4);
    u[4] = append_subject(mb, "epsilon", NULL, 5);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|beta|gamma|delta|epsilon");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 2);
    UNIT_EQ_INT(mailbox_sortkeys_stats.appends - s0.appends, 1);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.hits - s0.hits, 5);

    /* a subset asked for in a mailbox with new messages: the file gets all of them, so it
     * has no gaps */
    u[5] = append_subject(mb, "zeta", NULL, 6);
    u[6] = append_subject(mb, "eta", NULL, 7);
    sync_view(mb);
    {
        uint32_t one = u[6];
        struct mailbox_sortrec rec;
        struct mailbox_sortkeys k;
        mailbox_sort_records(mb, &one, 1, &rec);
        s0 = mailbox_sortkeys_stats;
        UNIT_EQ_INT(mailbox_sortkeys_get(mb, &ops, &one, &rec, 1, &k), 0);
        UNIT_CHECK(k.len[0] == 5 && !memcmp(k.blob[0] + 2, "eta", 3));
        mailbox_sortkeys_fini(&k);
        UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 2);
        s0 = mailbox_sortkeys_stats;
        got = get_all(mb, NULL);
        UNIT_EQ_STR(got, "alpha|beta|gamma|delta|epsilon|zeta|eta");
        free(got);
        UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);
    }

    /* expunge and repack: the keys of the others stay right */
    expunge_uid(mb, u[1]);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|gamma|delta|epsilon|zeta|eta");
    free(got);
    UNIT_EQ_INT(mailbox_repack(mb), 0);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|gamma|delta|epsilon|zeta|eta");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    /* a damaged record: not used, recomputed, the file rewritten */
    flip_byte(path, SORTKEYS_HEADER_SIZE + 16 + 2);   /* in the first record's blob */
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|gamma|delta|epsilon|zeta|eta");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 1);
    UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    /* a torn tail (half a record): ignored, and the file rewritten */
    {
        int fd = open(path, O_WRONLY | O_APPEND);
        UNIT_CHECK(fd >= 0);
        unsigned char junk[10] = { 200, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 1, 2 };
        UNIT_EQ_INT(write(fd, junk, sizeof junk), (int)sizeof junk);
        close(fd);
        off_t before = file_size(path);
        s0 = mailbox_sortkeys_stats;
        got = get_all(mb, NULL);
        UNIT_EQ_STR(got, "alpha|gamma|delta|epsilon|zeta|eta");
        free(got);
        UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);
        UNIT_EQ_INT(file_size(path), before - (off_t)sizeof junk);
    }

    /* another content version: rebuilt with a new key */
    ops.version = 8;
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|gamma|delta|epsilon|zeta|eta");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 6);
    UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);
    ops.version = 7;
    got = get_all(mb, NULL);
    free(got);

    /* mostly expunged: shrunk to the live messages */
    for (int i = 0; i < 140; i++) {
        char subj[16];
        snprintf(subj, sizeof subj, "x%d", i);
        append_subject(mb, subj, NULL, 10 + i);
    }
    sync_view(mb);
    got = get_all(mb, NULL);
    free(got);
    off_t big = file_size(path);
    {
        struct mailbox_store st = { STORE_ADD, FLAG_DELETED, NULL, 0 };
        uint32_t n = mailbox_count(mb);
        uint32_t *all = xreallocarray(NULL, n, sizeof *all);
        for (uint32_t i = 0; i < n; i++) all[i] = mailbox_uid(mb, i + 1);
        /* keep the first two */
        UNIT_EQ_INT(mailbox_store(mb, all + 2, n - 2, &st, NULL, NULL), 0);
        UNIT_EQ_INT(mailbox_expunge(mb, all + 2, n - 2, NULL), 0);
        free(all);
    }
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|gamma");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);
    UNIT_CHECK(file_size(path) < big / 10);

    /* reconstruct: the file is dropped with the index rewrite, and rebuilt on next use */
    mailbox_close(&mb);
    {
        char *ip = NULL;
        UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
        ip = xasprintf("%s/index", mailbox_dir(mb));
        mailbox_close(&mb);
        UNIT_EQ_INT(unlink(ip), 0);       /* a lost index: reconstruct rebuilds it */
        free(ip);
        struct recon_report rep;
        recon_report_init(&rep);
        UNIT_CHECK(reconstruct_mailbox(part, id, "user.keys", NULL, 0, &rep) >= 0);
        recon_report_fini(&rep);
    }
    UNIT_CHECK(file_size(path) < 0);
    UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|gamma");
    free(got);
    UNIT_CHECK(file_size(path) > SORTKEYS_HEADER_SIZE);

    /* a record whose GUID does not match the message under that uid (a file restored from
     * elsewhere): not used */
    {
        char *other = xasprintf("%s.copy", path);
        char *cmd = xasprintf("cp '%s' '%s'", path, other);
        UNIT_EQ_INT(system(cmd), 0);
        free(cmd);
        flip_byte(path, SORTKEYS_HEADER_SIZE + 8);   /* the first record's GUID */
        s0 = mailbox_sortkeys_stats;
        got = get_all(mb, NULL);
        UNIT_EQ_STR(got, "alpha|gamma");
        free(got);
        UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 1);
        unlink(other);
        free(other);
    }
    free(path);
    mailbox_close(&mb);
}

/* Records written at append (mailbox_sortkeys_fill_on_append): a new mailbox's file is
 * created by its first append, later appends add their records, so a reader computes
 * nothing; a file whose tail is torn, or that lacks the message just below the new ones, is
 * left alone (the reader rewrites it), and the answers are the same throughout. */
static struct mailbox_sortkeys_ops fill_ops = { 7, test_encode, NULL, "fillkeys" };

static void test_fill_on_append(void)
{
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.fill", id, "fill\tlrswipkxtecda", 0), 0);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
    mailbox_set_nofsync(mb, 1);
    char *path = xasprintf("%s/fillkeys", mailbox_dir(mb));
    const struct mailbox_sortkeys_ops saved = ops;
    ops = fill_ops;

    /* not registered: nothing written */
    append_subject(mb, "one", NULL, 1);
    UNIT_EQ_INT(file_size(path), -1);
    expunge_uid(mb, 1);
    mailbox_sortkeys_fill_on_append(&fill_ops);
    mailbox_sortkeys_fill_on_append(&fill_ops);   /* once is enough */

    /* the first append after registering (no older live message) creates the file */
    struct mailbox_sortkeys_stats s0 = mailbox_sortkeys_stats;
    append_subject(mb, "alpha", NULL, 2);
    append_subject(mb, "beta", NULL, 3);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 2);
    UNIT_CHECK(file_size(path) > SORTKEYS_HEADER_SIZE);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    char *got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|beta");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);
    UNIT_EQ_INT(mailbox_sortkeys_stats.hits - s0.hits, 2);

    /* a last record longer than the first tail read (1 KiB): found in the longer one */
    char *longsub = xmalloc(3001);
    memset(longsub, 'x', 3000);
    longsub[3000] = 0;
    append_subject(mb, longsub, NULL, 3);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "beta", NULL, 3);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 1);
    sync_view(mb);
    char *want = xasprintf("alpha|beta|%s|beta", longsub);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, want);
    free(got);
    free(want);
    free(longsub);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);
    expunge_uid(mb, 4);
    expunge_uid(mb, 5);
    sync_view(mb);

    /* a torn tail: the append writes nothing, the reader rewrites the file whole */
    UNIT_EQ_INT(truncate(path, file_size(path) - 1), 0);
    off_t torn = file_size(path);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "gamma", NULL, 4);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 0);
    UNIT_EQ_INT(file_size(path), torn);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|beta|gamma");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);

    /* appends resume on the rewritten file */
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "delta", NULL, 5);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 1);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|beta|gamma|delta");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    /* no file while older live messages exist: left to the reader */
    unlink(path);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "epsilon", NULL, 6);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 0);
    UNIT_EQ_INT(file_size(path), -1);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|beta|gamma|delta|epsilon");
    free(got);

    /* a gap (the file ends below the live message just before the new one): left alone */
    got = get_all(mb, NULL);    /* the file again, up to epsilon */
    free(got);
    char *copy = xasprintf("%s.old", path);
    char *cmd = xasprintf("cp '%s' '%s'", path, copy);
    UNIT_EQ_INT(system(cmd), 0);
    free(cmd);
    append_subject(mb, "zeta", NULL, 7);
    UNIT_EQ_INT(rename(copy, path), 0);    /* back to the file without zeta */
    free(copy);
    off_t before = file_size(path);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "eta", NULL, 8);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 0);
    UNIT_EQ_INT(file_size(path), before);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|beta|gamma|delta|epsilon|zeta|eta");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 2);

    /* the last message expunged: the file ends above the live message just below the new
     * one, at an expunged one; no gap, so the append fills */
    expunge_uid(mb, 10);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    uint32_t theta = append_subject(mb, "theta", NULL, 9);
    UNIT_EQ_INT(theta, 11);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 1);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "alpha|beta|gamma|delta|epsilon|zeta|theta");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    /* emptied (more expunged records at the end of the index than live_before walks) and
     * filled again, as mailbench does before it delivers its corpus: the first append
     * replaces the file of expunged messages' records with its own, the next appends */
    for (int i = 0; i < 80; i++) append_subject(mb, "filler", NULL, 10 + i);
    sync_view(mb);
    got = get_all(mb, NULL);    /* the file up to the last filler */
    free(got);
    off_t full = file_size(path);
    uint32_t nlive = mailbox_count(mb);
    uint32_t *live = xreallocarray(NULL, nlive, sizeof *live);
    for (uint32_t i = 0; i < nlive; i++) live[i] = mailbox_uid(mb, i + 1);
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, live, nlive, &del, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(mb, live, nlive, NULL), 0);
    free(live);
    sync_view(mb);
    UNIT_EQ_INT(mailbox_count(mb), 0);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "iota", NULL, 100);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 1);
    UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);
    off_t one = file_size(path);
    UNIT_CHECK(one > SORTKEYS_HEADER_SIZE && one < full / 10);
    append_subject(mb, "kappa", NULL, 101);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 2);
    UNIT_EQ_INT(mailbox_sortkeys_stats.appends - s0.appends, 1);
    UNIT_CHECK(file_size(path) > one);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "iota|kappa");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);
    UNIT_EQ_INT(mailbox_sortkeys_stats.rewrites - s0.rewrites, 1);

    ops = saved;
    free(path);
    mailbox_close(&mb);
}

/* The key files stay open on the handle between appends (struct mbi_keyfile): a run of
 * appends through one handle opens each file once; a file another handle made grow, one a
 * rewrite replaced (rename over it), or one reconstruct removed is noticed by the next
 * append, which goes the long way; the answers are the same throughout, and mailbox_close
 * closes the kept files. */
/* open_fds_on: this process's descriptors open on path, or on a file once there */
static int open_fds_on(const char *path)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *l = xasprintf("/proc/self/fd/%s", de->d_name), target[4096];
        ssize_t k = readlink(l, target, sizeof target - 1);
        free(l);
        if (k <= 0) continue;
        target[k] = 0;
        if (!strncmp(target, path, strlen(path))) n++;   /* also "path (deleted)" */
    }
    if (d) closedir(d);
    return n;
}

static void test_fill_kept_open(void)
{
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.kept", id, "kept\tlrswipkxtecda", 0), 0);
    struct mailbox *mb, *other;
    UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
    UNIT_EQ_INT(mailbox_open_target(part, id, NULL, &other), 0);
    mailbox_set_nofsync(mb, 1);
    mailbox_set_nofsync(other, 1);
    char *path = xasprintf("%s/fillkeys", mailbox_dir(mb));
    const struct mailbox_sortkeys_ops saved = ops;
    ops = fill_ops;
    mailbox_sortkeys_fill_on_append(&fill_ops);

    /* the first append creates the file (a rename: nothing kept), the second opens it and
     * keeps it, the next ones write through the kept descriptor */
    struct mailbox_sortkeys_stats s0 = mailbox_sortkeys_stats;
    append_subject(mb, "a", NULL, 1);
    append_subject(mb, "b", NULL, 2);
    append_subject(mb, "c", NULL, 3);
    append_subject(mb, "d", NULL, 4);
    append_subject(mb, "e", NULL, 5);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 5);
    UNIT_EQ_INT(mailbox_sortkeys_stats.fill_opens - s0.fill_opens, 2);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    char *got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "a|b|c|d|e");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    /* another handle appends: the file grew under the kept one, which notices */
    s0 = mailbox_sortkeys_stats;
    append_subject(other, "f", NULL, 6);
    append_subject(mb, "g", NULL, 7);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 2);
    UNIT_EQ_INT(mailbox_sortkeys_stats.fill_opens - s0.fill_opens, 2);
    append_subject(mb, "h", NULL, 8);
    UNIT_EQ_INT(mailbox_sortkeys_stats.fill_opens - s0.fill_opens, 2);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "a|b|c|d|e|f|g|h");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    /* replaced by a copy renamed over it (what a rewrite does): the kept descriptor is on
     * the old inode; the append writes into the new file */
    char *copy = xasprintf("%s.new", path);
    char *cmd = xasprintf("cp '%s' '%s'", path, copy);
    UNIT_EQ_INT(system(cmd), 0);
    free(cmd);
    UNIT_EQ_INT(rename(copy, path), 0);
    free(copy);
    off_t before = file_size(path);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "i", NULL, 9);
    UNIT_EQ_INT(mailbox_sortkeys_stats.fill_opens - s0.fill_opens, 1);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 1);
    UNIT_CHECK(file_size(path) > before);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "a|b|c|d|e|f|g|h|i");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    /* removed (reconstruct does): the append does not write into the unlinked file nor
     * start a new one (older live messages would be missing from it); the reader rebuilds */
    UNIT_EQ_INT(unlink(path), 0);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "j", NULL, 10);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 0);
    UNIT_EQ_INT(file_size(path), -1);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "a|b|c|d|e|f|g|h|i|j");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 10);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "k", NULL, 11);
    append_subject(mb, "l", NULL, 12);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 2);
    UNIT_EQ_INT(mailbox_sortkeys_stats.fill_opens - s0.fill_opens, 1);

    /* a gap (the file lacks the last message: an older copy put back): each append leaves
     * it to the readers, and after the first one only looks whether it is unchanged, without
     * opening and reading it again; a reader's fill is noticed by the next append */
    char *older = xasprintf("%s.old", path);
    cmd = xasprintf("cp '%s' '%s'", path, older);
    UNIT_EQ_INT(system(cmd), 0);
    free(cmd);
    append_subject(mb, "m", NULL, 13);
    UNIT_EQ_INT(rename(older, path), 0);
    free(older);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "n", NULL, 14);
    append_subject(mb, "o", NULL, 15);
    append_subject(mb, "p", NULL, 16);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 0);
    UNIT_EQ_INT(mailbox_sortkeys_stats.fill_opens - s0.fill_opens, 1);
    sync_view(mb);
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p");
    free(got);
    s0 = mailbox_sortkeys_stats;
    append_subject(mb, "q", NULL, 17);
    append_subject(mb, "r", NULL, 18);
    UNIT_EQ_INT(mailbox_sortkeys_stats.filled - s0.filled, 2);
    UNIT_EQ_INT(mailbox_sortkeys_stats.fill_opens - s0.fill_opens, 1);
    sync_view(mb);
    s0 = mailbox_sortkeys_stats;
    got = get_all(mb, NULL);
    UNIT_EQ_STR(got, "a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r");
    free(got);
    UNIT_EQ_INT(mailbox_sortkeys_stats.computed - s0.computed, 0);

    ops = saved;
    UNIT_EQ_INT(open_fds_on(path), 2);   /* kept by mb and by other */
    mailbox_close(&mb);
    UNIT_EQ_INT(open_fds_on(path), 1);
    mailbox_close(&other);
    UNIT_EQ_INT(open_fds_on(path), 0);
    free(path);
}

int main(void)
{
    log_init("test-mailbox-sort", 1, LOG_LVL_ERR);
    if (!mkdtemp(tmpdir)) return 2;
    part = xasprintf("%s/part", tmpdir);
    UNIT_EQ_INT(partition_prepare(part), 0);
    test_records();
    test_keyfile();
    test_fill_on_append();
    test_fill_kept_open();
    if (!unit_failed) {
        char *cmd = xasprintf("rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
        free(cmd);
    } else {
        fprintf(stderr, "left %s for inspection\n", tmpdir);
    }
    free(part);
    UNIT_DONE();
}
