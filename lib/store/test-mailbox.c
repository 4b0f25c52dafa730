/* test-mailbox.c: unit tests of every mailbox operation on real files, with forked processes
 * appending and syncing at the same time. */
#include "store/mailbox.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "store/uidcol.h"
#include "store/mailbox-sort.h"
#include "store/flaglog.h"
#include "store/reconstruct.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/fileutil.h"
#include "core/error.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "mime/mime.h"

static char tmpdir[] = "/tmp/coffer-test-mailbox-XXXXXX";
static char *part1, *part2;

static void make_msg(struct buf *b, const char *tag)
{
    buf_reset(b);
    buf_printf(b, "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
                  "Subject: message %s\r\nDate: Fri, 21 Nov 1997 09:55:06 -0600\r\n"
                  "Message-ID: <%s@example.org>\r\n\r\nHello, this is %s.\r\nBye.\r\n",
               tag, tag, tag);
}

static void new_mailbox(const char *part, const char *name, char *id)
{
    partition_new_uniqueid(id);
    int r = mailbox_create(part, name, id, "alice\tlrswipkxtecda", 0);
    UNIT_EQ_INT(r, 0);
}

static int append_one(struct mailbox *mb, const char *tag, uint32_t flags,
                      const char *const *kw, uint32_t *uid_r)
{
    struct buf b = BUF_INIT;
    make_msg(&b, tag);
    struct mailbox_msg m = { b.s, b.len, -1, 1000000000, flags, kw, 0 };
    int r = mailbox_append(mb, &m, 1, NULL);
    if (uid_r) *uid_r = m.uid;
    buf_fini(&b);
    return r;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 1 && de->d_name[l - 1] == '.' && de->d_name[0] != '.') n++;
    }
    if (d) closedir(d);
    return n;
}

static void test_create_open(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice", id);
    UNIT_EQ_INT(mailbox_create(part1, "user.alice", id, "", 0), CF_E_EXISTS);
    UNIT_EQ_INT(mailbox_create(part1, "bad\nname", "0123456789abcdef0123456789abcdef", "", 0),
                CF_E_PARSE);
    char *dir = partition_mailbox_dir(part1, id);
    struct mbheader h;
    mbheader_init(&h);
    UNIT_EQ_INT(mbheader_read(dir, &h), 0);
    UNIT_EQ_STR(h.name, "user.alice");
    UNIT_EQ_STR(h.uniqueid, id);
    UNIT_EQ_STR(h.acl, "alice\tlrswipkxtecda");
    UNIT_CHECK(h.uidvalidity > 0);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, "user.alice", &mb), 0);
    UNIT_EQ_INT(mailbox_count(mb), 0);
    UNIT_EQ_INT(mailbox_header(mb)->uidnext, 1);
    UNIT_EQ_INT(mailbox_header(mb)->uidvalidity, h.uidvalidity);
    UNIT_EQ_STR(mailbox_dir(mb), dir);
    mailbox_close(&mb);
    UNIT_CHECK(mb == NULL);
    UNIT_EQ_INT(mailbox_open(part1, "00000000000000000000000000000000", NULL, &mb), CF_E_NOTFOUND);
    UNIT_EQ_INT(mailbox_open(part1, "../../etc", NULL, &mb), CF_E_NOTFOUND);
    mbheader_fini(&h);
    free(dir);
}

/* create_dirs: the directory of a mailbox is made first and its parents only when missing
 * (a partition path that does not exist yet, a new xx/ in it), both synced and not; what is
 * in the way (an existing directory, a file where the partition should be) is an error */
static void test_create_dirs(void)
{
    char *part = xasprintf("%s/fresh/part", tmpdir);
    const char *ids[] = { "ab000000000000000000000000000001", "ab000000000000000000000000000002",
                          "cd000000000000000000000000000003" };
    UNIT_EQ_INT(mailbox_create(part, "user.d1", ids[0], "", 0), 0);        /* whole path made */
    UNIT_EQ_INT(mailbox_create_nosync(part, "user.d2", ids[1], "", 0), 0); /* xx/ exists */
    UNIT_EQ_INT(mailbox_create_nosync(part, "user.d3", ids[2], "", 0), 0); /* new xx/ */
    UNIT_EQ_INT(mailbox_create_nosync(part, "user.d2", ids[1], "", 0), CF_E_EXISTS);
    UNIT_EQ_INT(mailbox_create(part, "user.d1", ids[0], "", 0), CF_E_EXISTS);
    for (int i = 0; i < 3; i++) {
        struct mailbox *mb;
        UNIT_EQ_INT(mailbox_open(part, ids[i], NULL, &mb), 0);
        UNIT_EQ_INT(mailbox_count(mb), 0);
        mailbox_close(&mb);
    }
    char *file = xasprintf("%s/fresh/file", tmpdir);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    UNIT_CHECK(fd >= 0);
    close(fd);
    char *under = xasprintf("%s/part", file);
    UNIT_EQ_INT(mailbox_create_nosync(under, "user.d4", ids[0], "", 0), CF_E_IO);
    free(under);
    free(file);
    free(part);
}

static void sha1(const void *p, size_t n, uint8_t out[20])
{
    unsigned int len = 20;
    EVP_Digest(p, n, out, &len, EVP_sha1(), NULL);
}

static void test_append_read(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.append", id);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb), 0);
    const char *kw[] = { "$Forwarded", "work", NULL };
    uint32_t uid;
    UNIT_EQ_INT(append_one(mb, "one", FLAG_SEEN | FLAG_EXPUNGED, kw, &uid), 0);
    UNIT_EQ_INT(uid, 1);
    /* from an fd */
    struct buf b = BUF_INIT;
    make_msg(&b, "two");
    char *fpath = xasprintf("%s/in.eml", tmpdir);
    int fd = open(fpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    UNIT_CHECK(write(fd, b.s, b.len) == (ssize_t)b.len);
    struct mailbox_msg m = { NULL, 0, fd, 0, FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
    UNIT_EQ_INT(m.uid, 2);
    close(fd);
    unlink(fpath);
    free(fpath);
    /* a batch in one commit, one of them empty */
    struct buf bb[4];
    struct mailbox_msg ms[4];
    for (int i = 0; i < 4; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "batch%d", i);
        buf_init(&bb[i]);
        if (i != 2) make_msg(&bb[i], tag);
        ms[i] = (struct mailbox_msg){ i == 2 ? "" : bb[i].s, bb[i].len, -1, 5, 0, NULL, 0 };
    }
    uint64_t commit = mailbox_header(mb)->commit;
    UNIT_EQ_INT(mailbox_append(mb, ms, 4, NULL), 0);
    UNIT_EQ_INT(mailbox_header(mb)->commit, commit + 1);
    for (int i = 0; i < 4; i++) UNIT_EQ_INT(ms[i].uid, 3 + i);
    /* the session view learns about them only at sync */
    UNIT_EQ_INT(mailbox_count(mb), 0);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(mb, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, 6);
    UNIT_EQ_INT(ch.exists, 6);
    UNIT_EQ_INT(ch.n_expunged, 0);
    UNIT_EQ_INT(mailbox_count(mb), 6);
    UNIT_EQ_INT(mailbox_uid(mb, 6), 6);
    UNIT_EQ_INT(mailbox_msgno(mb, 4), 4);
    UNIT_EQ_INT(mailbox_msgno(mb, 99), 0);
    UNIT_EQ_INT(mailbox_sync(mb, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, 0);
    const struct index_header *h = mailbox_header(mb);
    UNIT_EQ_INT(h->exists, 6);
    UNIT_EQ_INT(h->seen, 1);
    UNIT_EQ_INT(h->flagged, 1);
    UNIT_EQ_INT(h->uidnext, 7);
    UNIT_EQ_INT(h->keyword_count, 2);
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) total += bb[i].len;
    make_msg(&b, "one");
    total += b.len;
    make_msg(&b, "two");
    total += b.len;
    UNIT_EQ_INT(h->quota_used, total);
    const struct strarr *kws = mailbox_keywords(mb);
    UNIT_EQ_INT(kws->count, 2);
    UNIT_EQ_STR(strarr_get(kws, 0), "$Forwarded");
    UNIT_EQ_STR(strarr_get(kws, 1), "work");
    struct index_record r;
    UNIT_EQ_INT(mailbox_record(mb, 1, &r), 1);
    UNIT_EQ_INT(r.flags, FLAG_SEEN);   /* FLAG_EXPUNGED cannot be appended */
    UNIT_CHECK(index_user_flag_get(&r, 0) && index_user_flag_get(&r, 1));
    UNIT_EQ_INT(r.internaldate, 1000000000);
    UNIT_EQ_INT(r.sentdate, 880127706);
    make_msg(&b, "one");
    UNIT_EQ_INT(r.size, b.len);
    uint8_t g[20];
    sha1(b.s, b.len, g);
    UNIT_CHECK(!memcmp(r.guid, g, 20));
    UNIT_CHECK(r.header_size > 0 && r.header_size < b.len);
    UNIT_EQ_INT(mailbox_record(mb, 2, &r), 1);
    UNIT_CHECK(r.internaldate > 1600000000);   /* 0 meant now */
    UNIT_EQ_INT(mailbox_record(mb, 77, &r), 0);
    /* reading the message */
    const char *p;
    size_t len;
    UNIT_EQ_INT(mailbox_message_map(mb, 1, &p, &len), 0);
    UNIT_CHECK(len == b.len && !memcmp(p, b.s, len));
    mailbox_message_unmap(p, len);
    UNIT_EQ_INT(mailbox_message_map(mb, 5, &p, &len), 0);
    UNIT_EQ_INT(len, 0);
    mailbox_message_unmap(p, len);
    uint64_t size;
    UNIT_EQ_INT(mailbox_message_open(mb, 1, &fd, &size), 0);
    UNIT_EQ_INT(size, b.len);
    close(fd);
    UNIT_EQ_INT(mailbox_message_open(mb, 99, &fd, &size), CF_E_NOTFOUND);
    /* the cache */
    struct cache_entry e;
    cache_entry_init(&e);
    UNIT_EQ_INT(mailbox_cache_fetch(mb, 1, &e), 0);
    UNIT_CHECK(e.present[CACHE_ENVELOPE] && e.f[CACHE_ENVELOPE].len > 0);
    UNIT_CHECK(strstr(buf_cstr(&e.f[CACHE_ENVELOPE]), "message one") != NULL);
    UNIT_CHECK(e.present[CACHE_BODYSTRUCTURE] && e.f[CACHE_BODYSTRUCTURE].len > 0);
    UNIT_CHECK(e.present[CACHE_SECTIONS] && e.f[CACHE_SECTIONS].len > 0);
    UNIT_CHECK(e.present[CACHE_HEADER]);
    UNIT_EQ_INT(e.f[CACHE_HEADER].len, r.header_size ? e.f[CACHE_HEADER].len : 0);
    UNIT_CHECK(!memcmp(e.f[CACHE_HEADER].s, b.s, e.f[CACHE_HEADER].len));
    struct buf env = BUF_INIT;
    buf_append(&env, e.f[CACHE_ENVELOPE].s, e.f[CACHE_ENVELOPE].len);
    /* damage the cache: the answer is rebuilt from the message file */
    UNIT_EQ_INT(mailbox_record(mb, 1, &r), 1);
    char *cpath = xasprintf("%s/cache", mailbox_dir(mb));
    fd = open(cpath, O_RDWR);
    UNIT_CHECK(pwrite(fd, "XXXX", 4, (off_t)r.cache_offset + 20) == 4);
    close(fd);
    cache_entry_fini(&e);
    UNIT_EQ_INT(mailbox_cache_fetch(mb, 1, &e), 0);
    UNIT_EQ_STR(buf_cstr(&e.f[CACHE_ENVELOPE]), buf_cstr(&env));
    /* the whole cache file gone: recreated, still answered, appends still work */
    unlink(cpath);
    struct mailbox *mb2;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb2), 0);
    UNIT_EQ_INT(mailbox_cache_fetch(mb2, 1, &e), 0);
    UNIT_EQ_STR(buf_cstr(&e.f[CACHE_ENVELOPE]), buf_cstr(&env));
    UNIT_EQ_INT(append_one(mb2, "after-cache-loss", 0, NULL, &uid), 0);
    UNIT_EQ_INT(mailbox_cache_fetch(mb2, uid, &e), 0);
    UNIT_CHECK(strstr(buf_cstr(&e.f[CACHE_ENVELOPE]), "after-cache-loss") != NULL);
    mailbox_close(&mb2);
    free(cpath);
    buf_fini(&env);
    cache_entry_fini(&e);
    mailbox_changes_fini(&ch);
    for (int i = 0; i < 4; i++) buf_fini(&bb[i]);
    buf_fini(&b);
    /* status without a session */
    struct index_header sh;
    UNIT_EQ_INT(mailbox_status(part1, id, &sh), 0);
    UNIT_EQ_INT(sh.exists, 7);
    UNIT_EQ_INT(sh.uidnext, 8);
    mailbox_close(&mb);
}

static int uid_in(const uint32_t *v, size_t n, uint32_t u)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == u) return 1;
    return 0;
}

static void test_store_expunge(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.store", id);
    struct mailbox *a, *b;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &a), 0);
    for (int i = 0; i < 10; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "s%d", i);
        UNIT_EQ_INT(append_one(a, tag, 0, NULL, NULL), 0);
    }
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &b), 0);
    UNIT_EQ_INT(mailbox_count(b), 10);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(a, 0, &ch), 0);
    uint64_t m0 = mailbox_header(a)->highestmodseq;
    /* add \Seen and a keyword to 2,4,6 */
    uint32_t set1[] = { 2, 4, 6, 99 };
    const char *kw[] = { "Important", NULL };
    struct mailbox_store st = { STORE_ADD, FLAG_SEEN, kw, 0 };
    uint32_t *failed;
    size_t nfailed;
    UNIT_EQ_INT(mailbox_store(a, set1, 4, &st, &failed, &nfailed), 0);
    UNIT_EQ_INT(nfailed, 0);
    free(failed);
    uint64_t m1 = mailbox_header(a)->highestmodseq;
    UNIT_EQ_INT(m1, m0 + 1);
    UNIT_EQ_INT(mailbox_header(a)->seen, 3);
    struct index_record r;
    UNIT_EQ_INT(mailbox_record(a, 4, &r), 1);
    UNIT_EQ_INT(r.flags, FLAG_SEEN);
    UNIT_EQ_INT(r.modseq, m1);
    UNIT_CHECK(index_user_flag_get(&r, 0));
    UNIT_EQ_INT(mailbox_record(a, 3, &r), 1);
    UNIT_CHECK(r.modseq < m1);
    /* the same store again changes nothing: no new modseq */
    UNIT_EQ_INT(mailbox_store(a, set1, 3, &st, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_header(a)->highestmodseq, m1);
    /* the other session sees 2,4,6 changed, once */
    UNIT_EQ_INT(mailbox_sync(b, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_changed, 3);
    UNIT_CHECK(uid_in(ch.changed_uids, ch.n_changed, 2) && uid_in(ch.changed_uids, ch.n_changed, 6));
    UNIT_EQ_INT(ch.highestmodseq, m1);
    UNIT_EQ_INT(mailbox_sync(b, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_changed, 0);
    /* UNCHANGEDSINCE: 4 was changed at m1 > m0, 3 was not */
    uint32_t set2[] = { 3, 4 };
    struct mailbox_store st2 = { STORE_ADD, FLAG_FLAGGED, NULL, m0 };
    UNIT_EQ_INT(mailbox_store(a, set2, 2, &st2, &failed, &nfailed), 0);
    UNIT_EQ_INT(nfailed, 1);
    UNIT_EQ_INT(failed[0], 4);
    free(failed);
    UNIT_EQ_INT(mailbox_record(a, 3, &r), 1);
    UNIT_EQ_INT(r.flags, FLAG_FLAGGED);
    /* remove and set */
    struct mailbox_store st3 = { STORE_REMOVE, FLAG_SEEN, kw, 0 };
    UNIT_EQ_INT(mailbox_store(a, set1, 1, &st3, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_record(a, 2, &r), 1);
    UNIT_EQ_INT(r.flags, 0);
    UNIT_CHECK(!index_user_flag_get(&r, 0));
    struct mailbox_store st4 = { STORE_SET, FLAG_DELETED | FLAG_ANSWERED, NULL, 0 };
    uint32_t del[] = { 1, 5, 6, 10 };
    UNIT_EQ_INT(mailbox_store(a, del, 4, &st4, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_header(a)->deleted, 4);
    UNIT_EQ_INT(mailbox_header(a)->answered, 4);
    UNIT_EQ_INT(mailbox_header(a)->seen, 1);   /* 6 lost \Seen, 2 lost it before */
    /* expunge only some of the \Deleted ones */
    uint32_t ex1[] = { 5, 6, 7 };
    uint32_t n;
    UNIT_EQ_INT(mailbox_expunge(a, ex1, 3, &n), 0);
    UNIT_EQ_INT(n, 2);    /* 7 is not \Deleted */
    char *p5 = xasprintf("%s/5.", mailbox_dir(a));
    struct stat sb;
    UNIT_CHECK(stat(p5, &sb) < 0);
    free(p5);
    UNIT_EQ_INT(mailbox_header(a)->exists, 8);
    UNIT_EQ_INT(mailbox_header(a)->expunged, 2);
    UNIT_EQ_INT(mailbox_record(a, 5, &r), 1);
    UNIT_CHECK(r.flags & FLAG_EXPUNGED);
    /* b defers expunges, then takes them */
    UNIT_EQ_INT(mailbox_sync(b, MAILBOX_SYNC_NO_EXPUNGE, &ch), 0);
    UNIT_EQ_INT(ch.n_expunged, 0);
    UNIT_EQ_INT(mailbox_count(b), 10);
    UNIT_EQ_INT(mailbox_sync(b, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_expunged, 2);
    UNIT_EQ_INT(ch.expunged_uids[0], 5);
    UNIT_EQ_INT(ch.expunged_msgnos[0], 5);
    UNIT_EQ_INT(ch.expunged_uids[1], 6);
    UNIT_EQ_INT(ch.expunged_msgnos[1], 5);   /* 6 became message 5 after 5 went */
    UNIT_EQ_INT(mailbox_count(b), 8);
    UNIT_EQ_INT(mailbox_msgno(b, 7), 5);
    /* expunge all \Deleted, then repack */
    UNIT_EQ_INT(mailbox_expunge(a, NULL, 0, &n), 0);
    UNIT_EQ_INT(n, 2);
    uint64_t gen = mailbox_header(a)->generation;
    UNIT_EQ_INT(mailbox_repack(a), 0);
    UNIT_EQ_INT(mailbox_header(a)->generation, gen + 1);
    UNIT_EQ_INT(mailbox_header(a)->record_count, 6);
    UNIT_EQ_INT(mailbox_header(a)->expunged, 0);
    UNIT_EQ_INT(mailbox_header(a)->exists, 6);
    UNIT_EQ_INT(mailbox_record(a, 1, &r), 0);
    UNIT_EQ_INT(count_files(mailbox_dir(a)), 6);
    /* b, with the old file mapped, follows the repack */
    UNIT_EQ_INT(mailbox_sync(b, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_expunged, 2);
    UNIT_EQ_INT(ch.expunged_uids[0], 1);
    UNIT_EQ_INT(ch.expunged_msgnos[0], 1);
    UNIT_EQ_INT(ch.expunged_uids[1], 10);
    UNIT_EQ_INT(ch.expunged_msgnos[1], 7);
    UNIT_EQ_INT(mailbox_count(b), 6);
    /* appends after a repack, seen by both */
    uint32_t uid;
    UNIT_EQ_INT(append_one(b, "after-repack", 0, kw, &uid), 0);
    UNIT_EQ_INT(uid, 11);
    UNIT_EQ_INT(mailbox_sync(a, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, 1);
    UNIT_EQ_INT(mailbox_uid(a, mailbox_count(a)), 11);
    UNIT_EQ_INT(mailbox_record(a, 11, &r), 1);
    UNIT_CHECK(index_user_flag_get(&r, 0));   /* the keyword table survived the repack */
    mailbox_changes_fini(&ch);
    mailbox_close(&a);
    mailbox_close(&b);
}

static int file_there(struct mailbox *mb, uint32_t uid)
{
    char *p = mailbox_message_path(mb, uid);
    int there = access(p, F_OK) == 0;
    free(p);
    return there;
}

/* set_slot_version: rewrite the chosen header slot of the index in dir with version v. */
static void set_slot_version(const char *dir, uint32_t v)
{
    char *path = xasprintf("%s/index", dir);
    int fd = open(path, O_RDWR);
    UNIT_CHECK(fd >= 0);
    unsigned char head[INDEX_HEADER_SIZE];
    UNIT_EQ_INT(pread(fd, head, sizeof head, 0), (ssize_t)sizeof head);
    struct index_header h;
    int slot = -1;
    struct stat sb;
    UNIT_EQ_INT(fstat(fd, &sb), 0);
    unsigned char *all = xmalloc((size_t)sb.st_size);
    UNIT_EQ_INT(pread(fd, all, (size_t)sb.st_size, 0), (ssize_t)sb.st_size);
    UNIT_CHECK(index_choose_header(all, (size_t)sb.st_size, &h, &slot) >= 0);
    unsigned char *sp = head + index_slot_offset(h.commit);
    le_put32(sp + 8, v);
    le_put32(sp + 124, index_crc32(sp, 124));
    UNIT_EQ_INT(pwrite(fd, sp, INDEX_SLOT_SIZE, (off_t)index_slot_offset(h.commit)), INDEX_SLOT_SIZE);
    free(all);
    close(fd);
    free(path);
}

static void test_delayed_expunge(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.delayed", id);
    struct mailbox *a, *b;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &a), 0);
    mailbox_set_expunge_delayed(a, 1);
    const char *kw[] = { "Work", NULL };
    UNIT_EQ_INT(append_one(a, "d1", FLAG_SEEN, kw, NULL), 0);
    UNIT_EQ_INT(append_one(a, "d2", FLAG_FLAGGED, NULL, NULL), 0);
    UNIT_EQ_INT(append_one(a, "d3", 0, NULL, NULL), 0);
    UNIT_EQ_INT(append_one(a, "d4", 0, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &b), 0);
    uint64_t all_bytes = mailbox_header(a)->quota_used;
    struct index_record r4;
    UNIT_EQ_INT(mailbox_record(a, 4, &r4), 1);
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    uint32_t d[] = { 1, 2, 3 };
    UNIT_EQ_INT(mailbox_store(a, d, 3, &del, NULL, NULL), 0);
    uint32_t n;
    uint64_t bytes;
    time_t before = time(NULL);
    UNIT_EQ_INT(mailbox_expunge_sized(a, NULL, 0, &n, &bytes), 0);
    UNIT_EQ_INT(n, 3);
    UNIT_EQ_INT(bytes, all_bytes - r4.size);   /* credited at once */
    UNIT_EQ_INT(mailbox_header(a)->exists, 1);
    UNIT_EQ_INT(mailbox_header(a)->expunged, 3);
    UNIT_EQ_INT(mailbox_header(a)->quota_used, r4.size);
    UNIT_CHECK(file_there(a, 1) && file_there(a, 2) && file_there(a, 3));
    struct index_record r;
    UNIT_EQ_INT(mailbox_record(a, 2, &r), 1);
    UNIT_CHECK((r.flags & FLAG_EXPUNGED) && r.expunged_at >= before);
    /* other sessions see them gone */
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(b, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_expunged, 3);
    UNIT_EQ_INT(mailbox_count(b), 1);
    UNIT_EQ_INT(mailbox_uid(b, 1), 4);
    /* within the retention a repack keeps them, and rewrites nothing */
    uint32_t due, kept;
    UNIT_EQ_INT(mailbox_expunged_due(a, before - 3600, &due, &kept), 0);
    UNIT_EQ_INT(due, 0);
    UNIT_EQ_INT(kept, 3);
    uint64_t gen = mailbox_header(a)->generation;
    UNIT_EQ_INT(mailbox_repack_expired(a, before - 3600, &due), 0);
    UNIT_EQ_INT(due, 0);
    UNIT_EQ_INT(mailbox_header(a)->generation, gen);
    UNIT_CHECK(file_there(a, 1) && file_there(a, 3));
    /* what would come back */
    struct index_record *recs;
    size_t nr;
    UNIT_EQ_INT(mailbox_retained(a, NULL, 0, &recs, &nr), 0);
    UNIT_EQ_INT(nr, 3);
    UNIT_EQ_INT(recs[0].uid, 1);
    UNIT_EQ_INT(recs[2].uid, 3);
    /* bring back 1 and 2: new uids, flags without \Deleted, keyword, date */
    uint32_t nu[2];
    UNIT_EQ_INT(mailbox_unexpunge(a, recs, 2, NULL, nu), 2);
    UNIT_EQ_INT(nu[0], 5);
    UNIT_EQ_INT(nu[1], 6);
    free(recs);
    UNIT_EQ_INT(mailbox_record(a, 5, &r), 1);
    UNIT_EQ_INT(r.flags, FLAG_SEEN);
    UNIT_CHECK(index_user_flag_get(&r, 0));
    UNIT_EQ_INT(r.internaldate, 1000000000);
    UNIT_EQ_INT(mailbox_record(a, 6, &r), 1);
    UNIT_EQ_INT(r.flags, FLAG_FLAGGED);
    UNIT_EQ_INT(mailbox_header(a)->exists, 3);
    /* the originals have no file any more: never brought back twice */
    UNIT_EQ_INT(mailbox_record(a, 1, &r), 1);
    UNIT_CHECK((r.flags & FLAG_EXPUNGED) && r.expunged_at == 0);
    UNIT_CHECK(!file_there(a, 1) && !file_there(a, 2) && file_there(a, 3));
    UNIT_EQ_INT(mailbox_sync(b, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, 2);
    /* a restore cut short after its append (the copy of 3 is there, the original still
     * retained): 3 is not offered again */
    UNIT_EQ_INT(append_one(a, "d3", 0, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_retained(a, NULL, 0, &recs, &nr), 0);
    UNIT_EQ_INT(nr, 0);
    free(recs);
    /* past the retention: records and files go */
    UNIT_EQ_INT(mailbox_repack_expired(a, (int64_t)time(NULL) + 1, &due), 0);
    UNIT_EQ_INT(due, 3);
    UNIT_EQ_INT(mailbox_header(a)->expunged, 0);
    UNIT_EQ_INT(mailbox_header(a)->record_count, 4);
    UNIT_CHECK(!file_there(a, 3));
    UNIT_EQ_INT(count_files(mailbox_dir(a)), 4);
    /* immediate mode: the files go at once */
    mailbox_set_expunge_delayed(a, 0);
    uint32_t d4[] = { 4 };
    UNIT_EQ_INT(mailbox_store(a, d4, 1, &del, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(a, d4, 1, &n), 0);
    UNIT_EQ_INT(n, 1);
    UNIT_CHECK(!file_there(a, 4));
    UNIT_EQ_INT(mailbox_record(a, 4, &r), 1);
    UNIT_EQ_INT(r.expunged_at, 0);
    UNIT_EQ_INT(mailbox_retained(a, NULL, 0, &recs, &nr), 0);
    UNIT_EQ_INT(nr, 0);
    free(recs);
    mailbox_changes_fini(&ch);
    mailbox_close(&b);
    /* an index of version 1 is read, and written as version 2 at its next commit */
    char *dir = xstrdup(mailbox_dir(a));
    mailbox_close(&a);
    set_slot_version(dir, 1);
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &a), 0);
    UNIT_EQ_INT(mailbox_header(a)->version, 1);
    UNIT_EQ_INT(mailbox_count(a), 3);
    UNIT_EQ_INT(mailbox_record(a, 5, &r), 1);
    UNIT_EQ_INT(r.flags, FLAG_SEEN);
    UNIT_EQ_INT(append_one(a, "d5", 0, NULL, NULL), 0);
    mailbox_close(&a);
    struct index_header h;
    UNIT_EQ_INT(mailbox_status(part1, id, &h), 0);
    UNIT_EQ_INT(h.version, INDEX_VERSION);
    UNIT_EQ_INT(h.exists, 4);
    free(dir);
}

static int quota_calls;
static int quota_refuse(void *rock, const char *uniqueid, uint64_t bytes, uint32_t msgs)
{
    quota_calls++;
    uint64_t *limit = rock;
    return bytes > *limit ? CF_E_QUOTA : 0;
}

static void test_copy(void)
{
    char s[UNIQUEID_LEN + 1], d[UNIQUEID_LEN + 1], x[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.src", s);
    new_mailbox(part1, "user.alice.dst", d);
    new_mailbox(part2, "user.alice.other", x);
    struct mailbox *src, *dst, *oth;
    UNIT_EQ_INT(mailbox_open(part1, s, NULL, &src), 0);
    UNIT_EQ_INT(mailbox_open(part1, d, NULL, &dst), 0);
    UNIT_EQ_INT(mailbox_open(part2, x, NULL, &oth), 0);
    const char *kw1[] = { "a", "b", NULL }, *kw2[] = { "b", NULL }, *kwd[] = { "z", NULL };
    UNIT_EQ_INT(append_one(src, "c1", FLAG_SEEN, kw1, NULL), 0);
    UNIT_EQ_INT(append_one(src, "c2", FLAG_DRAFT, kw2, NULL), 0);
    UNIT_EQ_INT(append_one(src, "c3", 0, NULL, NULL), 0);
    UNIT_EQ_INT(append_one(dst, "d1", 0, kwd, NULL), 0);
    uint32_t uids[] = { 2, 1, 42 }, out[3];
    UNIT_EQ_INT(mailbox_copy(src, uids, 3, dst, out, NULL), 0);
    UNIT_EQ_INT(out[0], 2);
    UNIT_EQ_INT(out[1], 3);
    UNIT_EQ_INT(out[2], 0);
    struct index_record r, sr;
    UNIT_EQ_INT(mailbox_record(dst, 2, &r), 1);
    UNIT_EQ_INT(mailbox_record(src, 2, &sr), 1);
    UNIT_EQ_INT(r.flags, FLAG_DRAFT);
    UNIT_CHECK(!memcmp(r.guid, sr.guid, 20));
    UNIT_EQ_INT(r.size, sr.size);
    UNIT_EQ_INT(r.internaldate, sr.internaldate);
    const struct strarr *dk = mailbox_keywords(dst);
    UNIT_EQ_INT(dk->count, 3);   /* z, then b and a as the copied messages brought them */
    UNIT_EQ_STR(strarr_get(dk, 0), "z");
    UNIT_EQ_STR(strarr_get(dk, 1), "b");
    UNIT_EQ_STR(strarr_get(dk, 2), "a");
    UNIT_CHECK(index_user_flag_get(&r, 1) && !index_user_flag_get(&r, 0) &&
               !index_user_flag_get(&r, 2));
    UNIT_EQ_INT(mailbox_record(dst, 3, &r), 1);
    UNIT_EQ_INT(r.flags, FLAG_SEEN);
    UNIT_CHECK(index_user_flag_get(&r, 1) && index_user_flag_get(&r, 2));
    /* single-instance store: same inode */
    char *sp = mailbox_message_path(src, 2), *dp = mailbox_message_path(dst, 2);
    struct stat a, b;
    UNIT_EQ_INT(stat(sp, &a), 0);
    UNIT_EQ_INT(stat(dp, &b), 0);
    UNIT_EQ_INT(a.st_ino, b.st_ino);
    UNIT_EQ_INT(a.st_nlink, 2);
    free(sp);
    free(dp);
    struct cache_entry e;
    cache_entry_init(&e);
    UNIT_EQ_INT(mailbox_cache_fetch(dst, 3, &e), 0);
    UNIT_CHECK(strstr(buf_cstr(&e.f[CACHE_ENVELOPE]), "message c1") != NULL);
    cache_entry_fini(&e);
    /* to another partition */
    uint32_t all[] = { 1, 2, 3 };
    UNIT_EQ_INT(mailbox_copy(src, all, 3, oth, out, NULL), 0);
    UNIT_EQ_INT(out[2], 3);
    const char *p;
    size_t len;
    UNIT_EQ_INT(mailbox_message_map(oth, 3, &p, &len), 0);
    UNIT_CHECK(len > 0 && memmem(p, len, "this is c3", 10) != NULL);
    mailbox_message_unmap(p, len);
    /* quota: a refusal commits nothing */
    uint64_t limit = 10;
    struct mailbox_quota q = { quota_refuse, &limit };
    uint32_t before = mailbox_header(oth)->uidnext;
    UNIT_EQ_INT(mailbox_copy(src, all, 3, oth, out, &q), CF_E_QUOTA);
    UNIT_EQ_INT(quota_calls, 1);
    UNIT_EQ_INT(out[0], 0);
    UNIT_EQ_INT(append_one(oth, "big", 0, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_header(oth)->uidnext, before + 1);
    struct buf m = BUF_INIT;
    make_msg(&m, "q");
    struct mailbox_msg mm = { m.s, m.len, -1, 0, 0, NULL, 0 };
    UNIT_EQ_INT(mailbox_append(oth, &mm, 1, &q), CF_E_QUOTA);
    limit = 1 << 20;
    UNIT_EQ_INT(mailbox_append(oth, &mm, 1, &q), 0);
    UNIT_EQ_INT(mm.uid, before + 1);
    buf_fini(&m);
    mailbox_close(&src);
    mailbox_close(&dst);
    mailbox_close(&oth);
}

/* test_savedate_preview_threadid: what an append records for RFC 8514, 8970 and 8474 (save
 * date now though the internal date is old, the thread number of the root Message-ID, the
 * preview in the cache) and what a copy keeps (thread number, preview) and changes (save
 * date). */
static void test_savedate_preview_threadid(void)
{
    char s[UNIQUEID_LEN + 1], d[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.sp", s);
    new_mailbox(part1, "user.alice.sp2", d);
    struct mailbox *src, *dst;
    UNIT_EQ_INT(mailbox_open(part1, s, NULL, &src), 0);
    UNIT_EQ_INT(mailbox_open(part1, d, NULL, &dst), 0);
    const char *reply = "Message-ID: <r2@x>\r\nReferences: <root@x> <r1@x>\r\n\r\nthe   reply\r\n";
    const char *root = "Message-ID: <root@x>\r\n\r\nthe root\r\n";
    struct mailbox_msg m[] = { { reply, strlen(reply), -1, 1000000000, 0, NULL, 0 },
                               { root, strlen(root), -1, 1000000000, 0, NULL, 0 } };
    int64_t before = (int64_t)time(NULL);
    UNIT_EQ_INT(mailbox_append(src, m, 2, NULL), 0);
    struct index_record r1, r2;
    UNIT_EQ_INT(mailbox_record(src, 1, &r1), 1);
    UNIT_EQ_INT(mailbox_record(src, 2, &r2), 1);
    UNIT_EQ_INT(r1.internaldate, 1000000000);
    UNIT_CHECK(r1.savedate >= before && r1.savedate <= (int64_t)time(NULL));
    UNIT_CHECK(r1.threadid != 0 && r1.threadid == r2.threadid);
    UNIT_CHECK(r1.threadid == mailbox_threadid(root, strlen(root), r2.guid));
    struct cache_entry e;
    cache_entry_init(&e);
    UNIT_EQ_INT(mailbox_cache_fetch(src, 1, &e), 0);
    UNIT_CHECK(e.present[CACHE_PREVIEW]);
    UNIT_EQ_STR(buf_cstr(&e.f[CACHE_PREVIEW]), "the reply");
    sleep(1);
    uint32_t uid = 1, out = 0;
    UNIT_EQ_INT(mailbox_copy(src, &uid, 1, dst, &out, NULL), 0);
    struct index_record c;
    UNIT_EQ_INT(mailbox_record(dst, out, &c), 1);
    UNIT_CHECK(c.savedate > r1.savedate);
    UNIT_EQ_INT(c.internaldate, 1000000000);
    UNIT_CHECK(c.threadid == r1.threadid);
    UNIT_CHECK(!memcmp(c.guid, r1.guid, 20));
    UNIT_EQ_INT(mailbox_cache_fetch(dst, out, &e), 0);
    UNIT_EQ_STR(buf_cstr(&e.f[CACHE_PREVIEW]), "the reply");
    cache_entry_fini(&e);
    mailbox_close(&src);
    mailbox_close(&dst);
}

static void test_orphan_corrupt(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.orphan", id);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb), 0);
    UNIT_EQ_INT(append_one(mb, "o1", 0, NULL, NULL), 0);
    /* an orphan of a crashed append at uidnext */
    char *op = mailbox_message_path(mb, 2);
    int fd = open(op, O_WRONLY | O_CREAT, 0600);
    UNIT_CHECK(write(fd, "stale", 5) == 5);
    close(fd);
    uint32_t uid;
    UNIT_EQ_INT(append_one(mb, "o2", 0, NULL, &uid), 0);
    UNIT_EQ_INT(uid, 3);   /* the orphan's uid is skipped, and the orphan removed */
    UNIT_CHECK(access(op, F_OK) < 0);
    const char *p;
    size_t len;
    UNIT_EQ_INT(mailbox_message_map(mb, 3, &p, &len), 0);
    UNIT_CHECK(len > 5 && memmem(p, len, "this is o2", 10));
    mailbox_message_unmap(p, len);
    free(op);
    UNIT_EQ_INT(append_one(mb, "o3", 0, NULL, NULL), 0);
    /* a damaged record: found on read, reported as corrupt */
    char *ip = xasprintf("%s/index", mailbox_dir(mb));
    fd = open(ip, O_RDWR);
    UNIT_CHECK(pwrite(fd, "\xff", 1, (off_t)index_record_offset(0) + 20) == 1);
    struct index_record r;
    fprintf(stderr, "(mailbox_corrupt log lines expected)\n");
    UNIT_EQ_INT(mailbox_record(mb, 1, &r), CF_E_CORRUPT);
    /* both header slots damaged: open refuses */
    UNIT_CHECK(pwrite(fd, "X", 1, INDEX_SLOT0_OFFSET) == 1);
    UNIT_CHECK(pwrite(fd, "X", 1, INDEX_SLOT1_OFFSET) == 1);
    close(fd);
    mailbox_close(&mb);
    UNIT_EQ_INT(mailbox_open(part1, id, "user.alice.orphan", &mb), CF_E_CORRUPT);
    free(ip);
}

static void test_delete_rename(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.old", id);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb), 0);
    for (int i = 0; i < 3; i++) UNIT_EQ_INT(append_one(mb, "r", FLAG_SEEN, NULL, NULL), 0);
    mailbox_close(&mb);
    /* within the partition: only the header changes */
    UNIT_EQ_INT(mailbox_rename(part1, part1, id, "user.alice.new"), 0);
    char *d1 = partition_mailbox_dir(part1, id), *d2 = partition_mailbox_dir(part2, id);
    struct mbheader h;
    mbheader_init(&h);
    UNIT_EQ_INT(mbheader_read(d1, &h), 0);
    UNIT_EQ_STR(h.name, "user.alice.new");
    /* across partitions */
    UNIT_EQ_INT(mailbox_rename(part1, part2, id, "user.alice.moved"), 0);
    struct stat st;
    UNIT_CHECK(stat(d1, &st) < 0);
    UNIT_EQ_INT(mbheader_read(d2, &h), 0);
    UNIT_EQ_STR(h.name, "user.alice.moved");
    UNIT_EQ_INT(mailbox_open(part2, id, NULL, &mb), 0);
    UNIT_EQ_INT(mailbox_count(mb), 3);
    UNIT_EQ_INT(mailbox_header(mb)->seen, 3);
    struct cache_entry e;
    cache_entry_init(&e);
    UNIT_EQ_INT(mailbox_cache_fetch(mb, 3, &e), 0);
    cache_entry_fini(&e);
    UNIT_EQ_INT(append_one(mb, "r4", 0, NULL, NULL), 0);
    mailbox_close(&mb);
    UNIT_EQ_INT(mailbox_rename(part1, part2, id, "x"), CF_E_NOTFOUND);
    /* delete */
    UNIT_EQ_INT(mailbox_delete(part2, id), 0);
    UNIT_CHECK(stat(d2, &st) < 0);
    UNIT_EQ_INT(mailbox_delete(part2, id), CF_E_NOTFOUND);
    UNIT_EQ_INT(mailbox_open(part2, id, NULL, &mb), CF_E_NOTFOUND);
    mbheader_fini(&h);
    free(d1);
    free(d2);
}

/* Two processes append to one mailbox at once. */
static void test_concurrent_append(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.conc", id);
    enum { PER_CHILD = 150 };
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            struct mailbox *mb;
            if (mailbox_open(part1, id, NULL, &mb) < 0) _exit(2);
            mailbox_set_nofsync(mb, 1);
            uint32_t last = 0;
            for (int i = 0; i < PER_CHILD; i++) {
                char tag[32];
                uint32_t uid;
                snprintf(tag, sizeof tag, "c%d-%d", c, i);
                if (append_one(mb, tag, 0, NULL, &uid) < 0 || uid <= last) _exit(3);
                last = uid;
            }
            mailbox_close(&mb);
            _exit(0);
        }
    }
    for (int c = 0; c < 2; c++) {
        int status;
        waitpid(pids[c], &status, 0);
        UNIT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb), 0);
    UNIT_EQ_INT(mailbox_count(mb), 2 * PER_CHILD);
    int seen[2][PER_CHILD];
    memset(seen, 0, sizeof seen);
    int bad = 0;
    for (uint32_t i = 1; i <= mailbox_count(mb); i++) {
        uint32_t uid = mailbox_uid(mb, i);
        if (uid != i) bad++;   /* unique and increasing, no gaps */
        const char *p;
        size_t len;
        if (mailbox_message_map(mb, uid, &p, &len) < 0) { bad++; continue; }
        const char *t = memmem(p, len, "Subject: message c", 18);
        int c, k;
        if (!t || sscanf(t, "Subject: message c%d-%d", &c, &k) != 2 || c < 0 || c > 1 ||
            k < 0 || k >= PER_CHILD)
            bad++;
        else
            seen[c][k]++;
        struct index_record r;
        uint8_t g[20];
        if (mailbox_record(mb, uid, &r) != 1) bad++;
        sha1(p, len, g);
        if (memcmp(g, r.guid, 20)) bad++;
        mailbox_message_unmap(p, len);
    }
    UNIT_EQ_INT(bad, 0);
    int once = 0;
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < PER_CHILD; k++) once += seen[c][k] == 1;
    UNIT_EQ_INT(once, 2 * PER_CHILD);
    mailbox_close(&mb);
}

/* Group commit (M7): concurrent appenders with fsync on. Every commit either fsynced the
 * directory or found that another writer's fsync, started after its file was made, covered
 * it; UIDs stay unique, ascending and (single-message appends) without gaps. */
static void test_group_commit(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.group", id);
    enum { CHILDREN = 4, PER_CHILD = 25 };
    int p[2];
    UNIT_CHECK(pipe(p) == 0);
    pid_t pids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        if (pids[c] == 0) {
            close(p[0]);
            struct mailbox *mb;
            if (mailbox_open(part1, id, NULL, &mb) < 0) _exit(2);
            memset(&mailbox_sync_stats, 0, sizeof mailbox_sync_stats);   /* the parent's */
            uint32_t last = 0;
            for (int i = 0; i < PER_CHILD; i++) {
                char tag[32];
                uint32_t uid;
                snprintf(tag, sizeof tag, "g%d-%d", c, i);
                if (append_one(mb, tag, 0, NULL, &uid) < 0 || uid <= last) _exit(3);
                last = uid;
            }
            uint64_t st[2] = { mailbox_sync_stats.dir, mailbox_sync_stats.dir_shared };
            if (write(p[1], st, sizeof st) != (ssize_t)sizeof st) _exit(4);
            mailbox_close(&mb);
            _exit(0);
        }
    }
    close(p[1]);
    uint64_t dir = 0, shared = 0, st[2];
    while (read(p[0], st, sizeof st) == (ssize_t)sizeof st) {
        dir += st[0];
        shared += st[1];
    }
    close(p[0]);
    for (int c = 0; c < CHILDREN; c++) {
        int status;
        waitpid(pids[c], &status, 0);
        UNIT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    UNIT_EQ_INT(dir + shared, CHILDREN * PER_CHILD);
    fprintf(stderr, "group commit: %llu directory fsyncs for %d appends (%llu shared)\n",
            (unsigned long long)dir, CHILDREN * PER_CHILD, (unsigned long long)shared);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb), 0);
    UNIT_EQ_INT(mailbox_count(mb), CHILDREN * PER_CHILD);
    for (uint32_t i = 1; i <= mailbox_count(mb); i++) UNIT_EQ_INT(mailbox_uid(mb, i), i);
    UNIT_EQ_INT(count_files(mailbox_dir(mb)), CHILDREN * PER_CHILD);
    mailbox_close(&mb);
}

/* A reader syncs while a writer appends, stores and expunges: it sees each change once. */
static void test_reader_sync(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.sync", id);
    enum { N = 120 };
    pid_t pid = fork();
    if (pid == 0) {
        struct mailbox *mb;
        if (mailbox_open(part1, id, NULL, &mb) < 0) _exit(2);
        mailbox_set_nofsync(mb, 1);
        for (uint32_t i = 1; i <= N; i++) {
            if (append_one(mb, "w", 0, NULL, NULL) < 0) _exit(3);
            if (i % 3 == 0) {   /* flag an older message, each one once */
                uint32_t u = i - 2;
                struct mailbox_store st = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
                if (mailbox_store(mb, &u, 1, &st, NULL, NULL) < 0) _exit(4);
            }
            if (i % 5 == 0) {   /* delete and expunge another */
                uint32_t u = i - 1;
                struct mailbox_store st = { STORE_ADD, FLAG_DELETED, NULL, 0 };
                if (mailbox_store(mb, &u, 1, &st, NULL, NULL) < 0) _exit(5);
                if (mailbox_expunge(mb, &u, 1, NULL) < 0) _exit(6);
            }
            if (i == N / 2 && mailbox_repack(mb) < 0) _exit(7);
            usleep(300);
        }
        mailbox_close(&mb);
        _exit(0);
    }
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb), 0);
    static int news[N + 1], exps[N + 1], chg[N + 1];
    static uint64_t first_modseq[N + 1];
    uint32_t mirror[N + 1], nm = mailbox_count(mb);
    for (uint32_t i = 0; i < nm; i++) {
        mirror[i] = mailbox_uid(mb, i + 1);
        news[mirror[i]]++;
        first_modseq[mirror[i]] = mailbox_header(mb)->highestmodseq;
    }
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    int done = 0, bad = 0, syncs = 0, status = 0;
    while (!done) {
        done = waitpid(pid, &status, WNOHANG) == pid;   /* one more sync after the exit */
        if (mailbox_sync(mb, 0, &ch) < 0) { bad++; break; }
        syncs++;
        for (size_t i = 0; i < ch.n_expunged; i++) {
            uint32_t m = ch.expunged_msgnos[i], u = ch.expunged_uids[i];
            if (m < 1 || m > nm || mirror[m - 1] != u) bad++;
            else { memmove(mirror + m - 1, mirror + m, (nm - m) * sizeof *mirror); nm--; }
            if (u <= N) exps[u]++;
        }
        for (size_t i = 0; i < ch.n_changed; i++) {
            uint32_t u = ch.changed_uids[i];
            if (u <= N) chg[u]++;
            if (!mailbox_msgno(mb, u)) bad++;
        }
        for (uint32_t m = nm + 1; m <= mailbox_count(mb); m++) {
            uint32_t u = mailbox_uid(mb, m);
            if (u > N) { bad++; continue; }
            mirror[nm++] = u;
            news[u]++;
            first_modseq[u] = ch.highestmodseq;
        }
        if (nm != mailbox_count(mb) || ch.exists != nm) bad++;
        for (uint32_t m = 1; m <= nm; m++)
            if (mailbox_uid(mb, m) != mirror[m - 1]) { bad++; break; }
        if (!done) usleep(700);
    }
    UNIT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    UNIT_EQ_INT(bad, 0);
    UNIT_CHECK(syncs > 10);
    int news_once = 0, exp_ok = 0, chg_ok = 0;
    for (uint32_t u = 1; u <= N; u++) {
        int expunged = u % 5 == 4;
        /* a message may be appended and expunged between two syncs: then never seen */
        news_once += news[u] == 1 || (news[u] == 0 && expunged);
        exp_ok += expunged ? exps[u] == news[u] : exps[u] == 0;
        struct index_record r;
        int f = mailbox_record(mb, u, &r);
        if (!expunged && f == 1) {
            /* changed after the reader first saw it -> reported exactly once */
            int should = r.modseq > first_modseq[u] && (r.flags & FLAG_FLAGGED);
            chg_ok += should ? chg[u] == 1 : chg[u] == 0;
        } else {
            chg_ok++;
        }
    }
    UNIT_EQ_INT(news_once, N);
    UNIT_EQ_INT(exp_ok, N);
    UNIT_EQ_INT(chg_ok, N);
    UNIT_EQ_INT(mailbox_count(mb), N - N / 5);
    mailbox_changes_fini(&ch);
    mailbox_close(&mb);
}

static struct config *load_conf(const char *select)
{
    char *pc = xasprintf("%s/partitions.conf", tmpdir), *cc = xasprintf("%s/coffer.conf", tmpdir);
    char *parts = xasprintf("default %s\nsecond %s\nmissing %s/nowhere\n", part1, part2, tmpdir);
    char *conf = xasprintf("partition_select = %s\ndefaultpartition = second\n", select);
    UNIT_EQ_INT(file_write_atomic(pc, parts, strlen(parts), 0600), 0);
    UNIT_EQ_INT(file_write_atomic(cc, conf, strlen(conf), 0600), 0);
    struct config *c = NULL;
    struct buf err = BUF_INIT;
    int r = config_load(cc, &c, &err);
    if (r < 0) fprintf(stderr, "config: %s\n", buf_cstr(&err));
    UNIT_EQ_INT(r, 0);
    buf_fini(&err);
    free(pc);
    free(cc);
    free(parts);
    free(conf);
    return c;
}

static void test_partition_select(void)
{
    struct config *c = load_conf("default");
    const struct partition *p = NULL;
    UNIT_EQ_INT(partition_select(c, &p), 0);
    UNIT_CHECK(p && !strcmp(p->name, "second"));
    config_free(&c);
    c = load_conf("mostfree");
    p = NULL;
    UNIT_EQ_INT(partition_select(c, &p), 0);   /* "missing" is skipped with a log line */
    UNIT_CHECK(p && (!strcmp(p->name, "default") || !strcmp(p->name, "second")));
    config_free(&c);
    /* partition directories are made 0700 */
    char *np = xasprintf("%s/newpart/sub", tmpdir);
    UNIT_EQ_INT(partition_prepare(np), 0);
    struct stat st;
    UNIT_EQ_INT(stat(np, &st), 0);
    UNIT_EQ_INT(st.st_mode & 0777, 0700);
    free(np);
}

static void rm_rf(const char *path)
{
    char *cmd = xasprintf("rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed: %s\n", cmd);
    free(cmd);
}

/* ---- a kill -9 in the middle of a commit (the test-crash failure, deterministically) ---- */

static const char *fault_name;
static int fault_left;

static int fault_exit(const char *point)
{
    if (!strcmp(point, fault_name) && --fault_left == 0) _exit(77);   /* as if SIGKILLed here */
    return 0;
}

/* crash_in_child: in a child with its own handle, run a STORE (st not NULL) or EXPUNGE of
 * uids and die at the nth call of the fault point. Returns 1 when it died there. */
static int crash_in_child(const char *id, const uint32_t *uids, size_t n,
                          const struct mailbox_store *st, const char *point, int nth)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct mailbox *mb;
        if (mailbox_open(part1, id, NULL, &mb) < 0) _exit(2);
        fault_name = point;
        fault_left = nth;
        mailbox_fault_hook = fault_exit;
        if (st) mailbox_store(mb, uids, n, st, NULL, NULL);
        else mailbox_expunge(mb, uids, n, NULL);
        _exit(3);   /* the fault point was not reached */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 77;
}

/* check_counts: through mb, every record against the header's counters; the number of
 * mismatches (each printed). *maxmodseq_r gets the highest record modseq. */
static int check_counts(struct mailbox *mb, uint64_t *maxmodseq_r)
{
    const struct index_header *h = mailbox_header(mb);
    uint32_t live = 0, expunged = 0, deleted = 0, seen = 0, flagged = 0, badkw = 0;
    uint64_t maxmodseq = 0;
    size_t nkw = mailbox_keywords(mb)->count;
    for (uint32_t u = 1; u < h->uidnext; u++) {
        struct index_record r;
        if (mailbox_record(mb, u, &r) != 1) continue;
        if (r.modseq > maxmodseq) maxmodseq = r.modseq;
        if (r.flags & FLAG_EXPUNGED) {
            expunged++;
            continue;
        }
        live++;
        deleted += (r.flags & FLAG_DELETED) != 0;
        seen += (r.flags & FLAG_SEEN) != 0;
        flagged += (r.flags & FLAG_FLAGGED) != 0;
        for (unsigned k = (unsigned)nkw; k < INDEX_MAX_KEYWORDS; k++)
            badkw += index_user_flag_get(&r, k);   /* a bit without a keyword name */
    }
    int bad = 0;
#define CHECK_COUNT(x, y) if ((x) != (y)) { \
        fprintf(stderr, "%s is %llu, records say %llu\n", #x, (unsigned long long)(x), \
                (unsigned long long)(y)); bad++; }
    CHECK_COUNT(h->exists, live);
    CHECK_COUNT(h->expunged, expunged);
    CHECK_COUNT(h->deleted, deleted);
    CHECK_COUNT(h->seen, seen);
    CHECK_COUNT(h->flagged, flagged);
    CHECK_COUNT(mailbox_count(mb), live);
    CHECK_COUNT(badkw, 0);
    if (h->highestmodseq < maxmodseq) CHECK_COUNT(h->highestmodseq, maxmodseq);
#undef CHECK_COUNT
    if (maxmodseq_r) *maxmodseq_r = maxmodseq;
    return bad;
}

/* open_ok: open mailbox id of part1 as a check; 0 (and *mb_r NULL) when that failed. */
/* fake_boot_id: mailbox_boot_id_hook for tests: a boot id of 16 bytes fake_boot_byte. */
static uint8_t fake_boot_byte;
static int fake_boot_id(uint8_t id[16])
{
    memset(id, fake_boot_byte, 16);
    return 0;
}

/* append_many: n copies of body into mb in one batch, the first seen_below of them \Seen */
static int append_many(struct mailbox *mb, const char *body, int n, int seen_below)
{
    struct mailbox_msg *msgs = xzmalloc((size_t)n * sizeof *msgs);
    for (int i = 0; i < n; i++) {
        struct mailbox_msg m = { body, strlen(body), -1, 1000000000,
                                 i < seen_below ? FLAG_SEEN : 0, NULL, 0 };
        msgs[i] = m;
    }
    int r = mailbox_append(mb, msgs, (size_t)n, NULL);
    free(msgs);
    return r;
}

static int open_ok(const char *id, struct mailbox **mb_r)
{
    int r = mailbox_open(part1, id, NULL, mb_r);
    UNIT_EQ_INT(r, 0);
    return r == 0;
}

static void test_crash_mid_commit(void)
{
    char id[UNIQUEID_LEN + 1];
    struct mailbox *mb = NULL, *writer = NULL, *reader = NULL;
    char *dir = NULL, *ipath = NULL;
    struct index_record r2, r5;
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    /* 1. EXPUNGE killed after marking the first of three records, before its header: what
     * test-crash saw as "exists 525, found 524". The three are not adjacent, so each is a
     * write of its own (adjacent records go out in one). A session that had the mailbox open
     * before (writer) then commits a STORE on top, and a reader syncs. */
    new_mailbox(part1, "user.alice.crash", id);
    if (!open_ok(id, &writer)) goto out;
    for (int i = 0; i < 8; i++) UNIT_EQ_INT(append_one(writer, "c", 0, NULL, NULL), 0);
    uint32_t del[3] = { 2, 4, 7 };
    struct mailbox_store st_del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(writer, del, 3, &st_del, NULL, NULL), 0);
    if (!open_ok(id, &reader)) goto out;
    UNIT_EQ_INT(mailbox_count(reader), 8);
    UNIT_CHECK(crash_in_child(id, del, 3, NULL, "record", 1));
    uint32_t five = 5;
    struct mailbox_store st_seen = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(writer, &five, 1, &st_seen, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_record(writer, 2, &r2), 1);
    UNIT_EQ_INT(mailbox_record(writer, 5, &r5), 1);
    UNIT_CHECK(r2.flags & FLAG_EXPUNGED);   /* the change went forward, it was never acked */
    UNIT_CHECK(r5.modseq > r2.modseq);      /* RFC 7162: no modseq given to two changes */
    UNIT_EQ_INT(mailbox_sync(reader, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_expunged, 1);
    UNIT_EQ_INT(ch.exists, mailbox_header(reader)->exists);
    UNIT_EQ_INT(check_counts(reader, NULL), 0);
    if (!open_ok(id, &mb)) goto out;
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
    UNIT_EQ_INT(mailbox_header(mb)->exists, 7);
    mailbox_close(&mb);
    /* 2. The same killed just before the header write: all records marked. A fresh open
     * repairs the header on disk, so mailbox_status (no recount) agrees afterwards. */
    UNIT_CHECK(crash_in_child(id, del, 3, NULL, "commit", 1));
    if (!open_ok(id, &mb)) goto out;
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
    UNIT_EQ_INT(mailbox_header(mb)->exists, 5);
    struct index_header sh;
    UNIT_EQ_INT(mailbox_status(part1, id, &sh), 0);
    UNIT_EQ_INT(sh.exists, 5);
    UNIT_EQ_INT(sh.expunged, 3);
    UNIT_EQ_INT(mailbox_repack(mb), 0);
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
    mailbox_close(&mb);
    /* 3. STORE of \Flagged and a new keyword killed after the first record: the record uses
     * a keyword bit the header does not count yet. A keyword created next must not take it. */
    const char *torn_kw[] = { "$Torn", NULL };
    struct mailbox_store st_kw = { STORE_ADD, FLAG_FLAGGED, torn_kw, 0 };
    uint32_t two[2] = { 1, 5 };
    UNIT_CHECK(crash_in_child(id, two, 2, &st_kw, "record", 1));
    const char *other_kw[] = { "other", NULL };
    struct mailbox_store st_other = { STORE_ADD, 0, other_kw, 0 };
    uint32_t six = 6;
    UNIT_EQ_INT(mailbox_store(writer, &six, 1, &st_other, NULL, NULL), 0);
    if (!open_ok(id, &mb)) goto out;
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
    UNIT_EQ_INT(mailbox_header(mb)->flagged, 1);
    const struct strarr *kw = mailbox_keywords(mb);
    UNIT_EQ_INT(kw->count, 2);
    struct index_record r1;
    UNIT_EQ_INT(mailbox_record(mb, 1, &r1), 1);
    for (unsigned k = 0; k < kw->count; k++)
        if (index_user_flag_get(&r1, k)) UNIT_EQ_STR(kw->v[k], "$Torn");
    mailbox_close(&mb);
    /* 4. As a power loss can leave it: a record rewritten on disk, the header not, and no
     * intent marker (the kernel orders none of these writes). open's recount repairs it. */
    mailbox_close(&writer);
    mailbox_close(&reader);
    dir = partition_mailbox_dir(part1, id);
    ipath = xasprintf("%s/index", dir);
    if (!open_ok(id, &mb)) goto out;
    uint64_t maxmodseq;
    UNIT_EQ_INT(check_counts(mb, &maxmodseq), 0);
    struct index_record r6;
    UNIT_EQ_INT(mailbox_record(mb, 8, &r6), 1);
    mailbox_close(&mb);
    unsigned char intent_zero[32] = { 0 }, raw[INDEX_RECORD_SIZE];
    r6.flags |= FLAG_EXPUNGED;
    r6.modseq = maxmodseq + 1;
    index_record_encode(&r6, raw);
    int fd = open(ipath, O_RDWR);
    UNIT_CHECK(fd >= 0);
    /* record 8 is the last one after the repack above: its position is the count - 1 */
    struct index_header before;
    UNIT_EQ_INT(mailbox_status(part1, id, &before), 0);
    UNIT_EQ_INT(pwrite(fd, intent_zero, sizeof intent_zero, 256), 32);
    UNIT_EQ_INT(pwrite(fd, raw, sizeof raw, (off_t)index_record_offset(before.record_count - 1)),
                INDEX_RECORD_SIZE);
    close(fd);
    /* the machine came back: another boot, so the verified marker counts for nothing */
    fake_boot_byte = 0x5a;
    mailbox_boot_id_hook = fake_boot_id;
    if (!open_ok(id, &mb)) goto out;
    mailbox_boot_id_hook = NULL;
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
    UNIT_EQ_INT(mailbox_header(mb)->exists, before.exists - 1);
    UNIT_CHECK(mailbox_header(mb)->highestmodseq >= maxmodseq + 1);
    mailbox_close(&mb);
out:
    mailbox_close(&mb);
    mailbox_close(&writer);
    mailbox_close(&reader);
    mailbox_changes_fini(&ch);
    free(ipath);
    free(dir);
}

/* A cache record longer than cache_read's first read (4 KiB): a message of 400 parts has a
 * BODYSTRUCTURE and section table far past it. The cached texts must equal a fresh parse. */
/* fail_sync: the fault hook of test_failed_commit: the flushes named in fail_points fail
 * with EIO (ENOSPC on thin or network storage behaves the same). */
static const char *fail_points[3];
static int fail_sync(const char *point)
{
    for (size_t i = 0; i < 3 && fail_points[i]; i++)
        if (!strcmp(point, fail_points[i])) return EIO;
    return 0;
}

/* M7: a commit whose index flush fails is refused, and leaves nothing another session could
 * adopt: the previous header slot is put back before the new files go. When even that cannot
 * be flushed, the files stay (the disk may hold either header) until the next writer has
 * flushed the index and finds them above uidnext. One directory fsync per commit. */
static void test_failed_commit(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.eio", id);
    struct mailbox *mb, *other;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &mb), 0);
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &other), 0);
    /* two messages in one commit: two file fsyncs, one directory fsync, one index flush */
    struct buf b1 = BUF_INIT, b2 = BUF_INIT;
    make_msg(&b1, "e1");
    make_msg(&b2, "e2");
    struct mailbox_msg two[2] = { { b1.s, b1.len, -1, 0, 0, NULL, 0 },
                                  { b2.s, b2.len, -1, 0, 0, NULL, 0 } };
    struct mailbox_sync_stats before = mailbox_sync_stats;
    UNIT_EQ_INT(mailbox_append(mb, two, 2, NULL), 0);
    UNIT_EQ_INT(mailbox_sync_stats.file - before.file, 2);
    UNIT_EQ_INT(mailbox_sync_stats.dir - before.dir, 1);
    UNIT_EQ_INT(mailbox_sync_stats.index - before.index, 1);
    buf_fini(&b1);
    buf_fini(&b2);
    uint64_t commit = mailbox_header(mb)->commit;
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(other, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, 2);
    /* the flush fails: NO to the client, no file, and the other session sees nothing new */
    fail_points[0] = "index_sync";
    mailbox_fault_hook = fail_sync;
    fprintf(stderr, "(mailbox_io_error log lines expected)\n");
    uint32_t uid = 99;
    UNIT_EQ_INT(append_one(mb, "e3", 0, NULL, &uid), CF_E_IO);
    UNIT_EQ_INT(uid, 0);
    mailbox_fault_hook = NULL;
    UNIT_EQ_INT(count_files(mailbox_dir(mb)), 2);
    UNIT_EQ_INT(mailbox_sync(other, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, 0);
    UNIT_EQ_INT(mailbox_header(other)->uidnext, 3);
    UNIT_EQ_INT(mailbox_header(other)->commit, commit);
    UNIT_EQ_INT(append_one(mb, "e3", 0, NULL, &uid), 0);
    UNIT_EQ_INT(uid, 3);
    /* the restore cannot be flushed either: the file stays, nobody adopts it */
    fail_points[0] = "index_sync";
    fail_points[1] = "restore_sync";
    mailbox_fault_hook = fail_sync;
    fprintf(stderr, "(mailbox_commit_uncertain log line expected)\n");
    UNIT_EQ_INT(append_one(mb, "e4", 0, NULL, &uid), CF_E_IO);
    mailbox_fault_hook = NULL;
    fail_points[0] = fail_points[1] = NULL;
    UNIT_EQ_INT(count_files(mailbox_dir(mb)), 4);
    UNIT_EQ_INT(mailbox_sync(other, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, 1);   /* e3 only */
    UNIT_EQ_INT(mailbox_header(other)->uidnext, 4);
    /* the next writer flushes the index and removes the leftover (its uid is skipped) */
    UNIT_EQ_INT(append_one(other, "e5", 0, NULL, &uid), 0);
    UNIT_EQ_INT(uid, 5);
    const char *p;
    size_t len;
    UNIT_EQ_INT(mailbox_message_map(other, 5, &p, &len), 0);
    UNIT_CHECK(len > 10 && memmem(p, len, "this is e5", 10));
    mailbox_message_unmap(p, len);
    UNIT_EQ_INT(count_files(mailbox_dir(mb)), 4);
    /* STORE and EXPUNGE rewrite records in place: a failed flush puts them back too */
    uint32_t one = 1;
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED | FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, &one, 1, &del, NULL, NULL), 0);
    uint64_t modseq = mailbox_header(mb)->highestmodseq;
    fail_points[0] = "index_sync";     /* EXPUNGE's */
    fail_points[1] = "flaglog_sync";   /* STORE's: the flag change log */
    mailbox_fault_hook = fail_sync;
    struct mailbox_store flag = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, &one, 1, &flag, NULL, NULL), CF_E_IO);
    uint32_t count = 99;
    UNIT_EQ_INT(mailbox_expunge(mb, &one, 1, &count), CF_E_IO);
    mailbox_fault_hook = NULL;
    fail_points[0] = fail_points[1] = NULL;
    mailbox_close(&other);
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &other), 0);
    struct index_record rec;
    UNIT_EQ_INT(mailbox_record(other, 1, &rec), 1);
    UNIT_EQ_INT(rec.flags, FLAG_DELETED | FLAG_SEEN);
    UNIT_EQ_INT(rec.modseq, modseq);
    UNIT_EQ_INT(mailbox_header(other)->exists, 4);
    UNIT_EQ_INT(mailbox_header(other)->flagged, 0);
    UNIT_EQ_INT(mailbox_header(other)->highestmodseq, modseq);
    UNIT_EQ_INT(count_files(mailbox_dir(mb)), 4);
    mailbox_changes_fini(&ch);
    mailbox_close(&other);
    mailbox_close(&mb);
}

static void test_big_cache_record(void)
{
    char id[40];
    new_mailbox(part1, "user.big", id);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part1, id, "user.big", &mb), 0);
    struct buf b = BUF_INIT;
    buf_appends(&b, "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=\"xyz\"\r\n\r\n");
    for (int i = 0; i < 400; i++)
        buf_printf(&b, "--xyz\r\nContent-Type: text/plain; charset=utf-8; name=\"part%d.txt\"\r\n"
                       "Content-Disposition: attachment; filename=\"part%d.txt\"\r\n\r\nbody %d\r\n",
                   i, i, i);
    buf_appends(&b, "--xyz--\r\n");
    struct mailbox_msg m = { b.s, b.len, -1, 1000000000, 0, NULL, 0 };
    UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
    struct cache_entry e;
    cache_entry_init(&e);
    UNIT_EQ_INT(mailbox_cache_fetch(mb, m.uid, &e), 0);
    struct mime_summary sum;
    mime_summary_init(&sum);
    mime_summarize(b.s, b.len, &sum);
    UNIT_CHECK(sum.bodystructure.len > 16384);
    UNIT_CHECK(e.present[CACHE_BODYSTRUCTURE] && e.f[CACHE_BODYSTRUCTURE].len == sum.bodystructure.len &&
               !memcmp(e.f[CACHE_BODYSTRUCTURE].s, sum.bodystructure.s, sum.bodystructure.len));
    UNIT_CHECK(e.present[CACHE_SECTIONS] && e.f[CACHE_SECTIONS].len == sum.sections.len);
    mime_summary_fini(&sum);
    cache_entry_fini(&e);
    buf_fini(&b);
    mailbox_close(&mb);
}

/* RFC 7162: mailbox_modseq_scan gives what changed and what was expunged after a modseq;
 * a repack that drops expunged records raises vanished_modseq past them. */
static void test_modseq_scan(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.modseq", id);
    struct mailbox *a;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &a), 0);
    for (int i = 0; i < 6; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "m%d", i);
        UNIT_EQ_INT(append_one(a, tag, 0, NULL, NULL), 0);
    }
    uint64_t m0 = mailbox_header(a)->highestmodseq;
    uint32_t flag[] = { 2, 5 }, del[] = { 3, 4 };
    struct mailbox_store st = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(a, flag, 2, &st, NULL, NULL), 0);
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(a, del, 2, &sd, NULL, NULL), 0);
    uint64_t m1 = mailbox_header(a)->highestmodseq;
    UNIT_EQ_INT(mailbox_expunge(a, del, 1, NULL), 0);     /* only 3 */
    struct mailbox_modseq_scan s;
    UNIT_EQ_INT(mailbox_modseq_scan(a, m0, &s), 0);
    UNIT_EQ_INT(s.n_changed, 3);                           /* 2, 4 (\Deleted), 5 */
    UNIT_EQ_INT(s.n_expunged, 1);
    UNIT_EQ_INT(s.n_expunged ? s.expunged[0] : 0, 3);
    UNIT_EQ_INT(s.vanished_modseq, 0);
    UNIT_CHECK(s.highestmodseq > m1);
    mailbox_modseq_scan_fini(&s);
    UNIT_EQ_INT(mailbox_modseq_scan(a, m1, &s), 0);
    UNIT_EQ_INT(s.n_changed, 0);
    UNIT_EQ_INT(s.n_expunged, 1);
    mailbox_modseq_scan_fini(&s);
    uint64_t m2 = mailbox_header(a)->highestmodseq;
    UNIT_EQ_INT(mailbox_repack(a), 0);
    UNIT_EQ_INT(mailbox_modseq_scan(a, m0, &s), 0);
    UNIT_EQ_INT(s.n_expunged, 0);                          /* the record is gone ... */
    UNIT_CHECK(s.vanished_modseq == m2);                   /* ... and the index says so */
    mailbox_modseq_scan_fini(&s);
    /* it survives later commits and is read back by a new handle */
    UNIT_EQ_INT(mailbox_expunge(a, del + 1, 1, NULL), 0);
    struct mailbox *b;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &b), 0);
    UNIT_CHECK(mailbox_header(b)->vanished_modseq == m2);
    UNIT_EQ_INT(mailbox_modseq_scan(b, m2, &s), 0);
    UNIT_EQ_INT(s.n_expunged, 1);
    mailbox_modseq_scan_fini(&s);
    mailbox_close(&b);
    mailbox_close(&a);
}

/* view_uids: the uids of mb's view, as a fresh string "1,2,5" for comparisons. */
static char *view_uids(struct mailbox *mb)
{
    struct buf b = BUF_INIT;
    for (uint32_t m = 1; m <= mailbox_count(mb); m++)
        buf_printf(&b, "%s%u", m > 1 ? "," : "", (unsigned)mailbox_uid(mb, m));
    char *s = xstrdup(b.s ? b.s : "");
    buf_fini(&b);
    return s;
}

/* The verified-counts marker (index.h): an open in the boot that verified the header skips
 * the recount; a reboot, a rewritten header slot or a pending intent do not. The modseq
 * summary of mailbox_modseq_scan, the record lookup and mailbox_reuse give what a fresh open
 * and a full pass give. */
static void test_verified_reuse(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.verified", id);
    struct mailbox *w = NULL, *r = NULL, *p = NULL, *f = NULL;
    char *ipath = NULL, *dir = NULL, *v1 = NULL, *v2 = NULL;
    if (!open_ok(id, &w)) goto out;
    for (int i = 0; i < 100; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "v%d", i);
        UNIT_EQ_INT(append_one(w, tag, i % 3 ? 0 : FLAG_SEEN, NULL, NULL), 0);
    }
    /* 1. every commit of w stamped the marker: opens in this boot do not recount */
    uint64_t n0 = mailbox_recounts;
    if (!open_ok(id, &r)) goto out;
    UNIT_EQ_INT(mailbox_recounts, n0);
    UNIT_EQ_INT(check_counts(r, NULL), 0);
    mailbox_close(&r);
    /* 2. another boot: one recount, which stamps the marker for that boot */
    fake_boot_byte = 0x11;
    mailbox_boot_id_hook = fake_boot_id;
    if (!open_ok(id, &r)) goto out;
    UNIT_EQ_INT(mailbox_recounts, n0 + 1);
    mailbox_close(&r);
    if (!open_ok(id, &r)) goto out;
    UNIT_EQ_INT(mailbox_recounts, n0 + 1);
    mailbox_close(&r);
    mailbox_boot_id_hook = NULL;
    if (!open_ok(id, &r)) goto out;
    UNIT_EQ_INT(mailbox_recounts, n0 + 2);
    mailbox_close(&r);
    /* 3. the header slot rewritten (checksum right, a counter wrong): the marker names other
     * slot bytes, so the open recounts and repairs */
    dir = partition_mailbox_dir(part1, id);
    ipath = xasprintf("%s/index", dir);
    struct index_header h;
    UNIT_EQ_INT(mailbox_status(part1, id, &h), 0);
    uint32_t seen = h.seen;
    h.seen += 7;
    unsigned char slot[INDEX_SLOT_SIZE];
    index_header_encode(&h, slot);
    int fd = open(ipath, O_RDWR);
    UNIT_CHECK(fd >= 0);
    UNIT_EQ_INT(pwrite(fd, slot, sizeof slot, (off_t)index_slot_offset(h.commit)), INDEX_SLOT_SIZE);
    close(fd);
    if (!open_ok(id, &r)) goto out;
    UNIT_CHECK(mailbox_recounts >= n0 + 3);
    UNIT_EQ_INT(mailbox_header(r)->seen, seen);
    UNIT_EQ_INT(check_counts(r, NULL), 0);
    mailbox_close(&r);
    /* 4. the modseq summary: r's open made it; w's changes make it stale (a full pass), the
     * next scan uses it, and both find the same */
    if (!open_ok(id, &r)) goto out;
    if (!open_ok(id, &p)) goto out;
    uint64_t m0 = mailbox_header(r)->highestmodseq;
    uint32_t flag[] = { 50, 90 }, gone = 10;
    struct mailbox_store st = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(w, flag, 2, &st, NULL, NULL), 0);
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(w, &gone, 1, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, &gone, 1, NULL), 0);
    for (int pass = 0; pass < 2; pass++) {
        struct mailbox_modseq_scan s;
        UNIT_EQ_INT(mailbox_modseq_scan(r, m0, &s), 0);
        UNIT_EQ_INT(s.n_changed, 2);
        UNIT_EQ_INT(s.n_expunged, 1);
        for (size_t i = 0; i < s.n_changed && i < 2; i++) {
            UNIT_EQ_INT(s.changed[i], flag[i]);
            UNIT_EQ_INT(s.changed_recs[i].uid, flag[i]);
            UNIT_CHECK(s.changed_recs[i].flags & FLAG_FLAGGED);
        }
        UNIT_EQ_INT(s.n_expunged ? s.expunged[0] : 0, gone);
        mailbox_modseq_scan_fini(&s);
    }
    /* 5. mailbox_reuse: p (opened before the changes) equals a fresh open, also after a new
     * message and after a repack; it refuses another mailbox */
    UNIT_EQ_INT(append_one(w, "late", 0, NULL, NULL), 0);
    for (int round = 0; round < 2; round++) {
        UNIT_EQ_INT(mailbox_reuse(p, part1, id, NULL, 0), 0);
        if (!open_ok(id, &f)) goto out;
        v1 = view_uids(p);
        v2 = view_uids(f);
        UNIT_EQ_STR(v1, v2);
        UNIT_EQ_INT(mailbox_header(p)->highestmodseq, mailbox_header(f)->highestmodseq);
        free(v1);
        free(v2);
        v1 = v2 = NULL;
        mailbox_close(&f);
        uint32_t more[2][3] = { { 20, 21, 60 }, { 30, 31, 70 } };
        UNIT_EQ_INT(mailbox_store(w, more[round], 3, &sd, NULL, NULL), 0);
        UNIT_EQ_INT(mailbox_expunge(w, more[round], 3, NULL), 0);
        if (round == 0) UNIT_EQ_INT(mailbox_repack(w), 0);
    }
    UNIT_EQ_INT(mailbox_reuse(p, part2, id, NULL, 0), CF_E_NOTFOUND);
    /* 6. the record lookup across the holes a repack left: every uid found or not, exactly */
    if (!open_ok(id, &f)) goto out;
    for (uint32_t u = 1; u < mailbox_header(f)->uidnext + 3; u++) {
        struct index_record rec;
        int found = mailbox_record(f, u, &rec);
        UNIT_CHECK(found >= 0);
        if (found == 1) UNIT_EQ_INT(rec.uid, u);
        if (mailbox_msgno(f, u)) UNIT_EQ_INT(found, 1);
        if (u == 10 || u >= mailbox_header(f)->uidnext) UNIT_EQ_INT(found, 0);
    }
    /* 7. mailbox_first_unseen equals a walk of the view with a lookup each; then with every
     * message but the last one seen (the read goes past its first chunk) */
    for (int round = 0; round < 2; round++) {
        uint32_t want = 0;
        for (uint32_t m = 1; m <= mailbox_count(f) && !want; m++) {
            struct index_record rec;
            if (mailbox_record(f, mailbox_uid(f, m), &rec) == 1 &&
                !(rec.flags & (FLAG_SEEN | FLAG_EXPUNGED)))
                want = m;
        }
        UNIT_CHECK(want > 0);
        UNIT_EQ_INT(mailbox_first_unseen(f), (int)want);
        uint32_t n = mailbox_count(f) - 1, *all = xreallocarray(NULL, n, sizeof *all);
        for (uint32_t m = 1; m <= n; m++) all[m - 1] = mailbox_uid(f, m);
        struct mailbox_store ss = { STORE_ADD, FLAG_SEEN, NULL, 0 };
        UNIT_EQ_INT(mailbox_store(w, all, n, &ss, NULL, NULL), 0);
        free(all);
    }
out:
    mailbox_boot_id_hook = NULL;
    free(v1);
    free(v2);
    free(ipath);
    free(dir);
    mailbox_close(&f);
    mailbox_close(&p);
    mailbox_close(&r);
    mailbox_close(&w);
}

/* A mailbox of more records than the record reader reads through the mapping (RR_MIN_RUN):
 * the view built through pread, the modseq summary's blocks, mailbox_first_unseen past its
 * first chunks and the record lookup agree with what the records say. */
static void test_big_view(void)
{
    enum { N = 2600 };
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.bigview", id);
    struct mailbox *w = NULL, *f = NULL;
    struct mailbox_msg *msgs = xzmalloc(N * sizeof *msgs);
    static const char body[] = "Subject: big\r\n\r\nbody\r\n";
    for (int i = 0; i < N; i++) {
        struct mailbox_msg m = { body, sizeof body - 1, -1, 1000000000, FLAG_SEEN, NULL, 0 };
        msgs[i] = m;
    }
    msgs[N - 5].flags = 0;   /* the only unseen one */
    if (!open_ok(id, &w)) goto out;
    mailbox_set_nofsync(w, 1);
    UNIT_EQ_INT(mailbox_append(w, msgs, N, NULL), 0);
    uint64_t m0 = mailbox_header(w)->highestmodseq;
    uint32_t gone[] = { 3, 1500, N - 1 }, flag[] = { 7, 2049, 2500 };
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    struct mailbox_store sf = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(w, gone, 3, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, gone, 3, NULL), 0);
    UNIT_EQ_INT(mailbox_store(w, flag, 3, &sf, NULL, NULL), 0);
    if (!open_ok(id, &f)) goto out;
    UNIT_EQ_INT(mailbox_count(f), N - 3);
    for (uint32_t m = 1, u = 1; m <= mailbox_count(f); m++, u++) {
        while (u == 3 || u == 1500 || u == N - 1) u++;
        if (mailbox_uid(f, m) != u) {
            UNIT_EQ_INT(mailbox_uid(f, m), u);
            break;
        }
    }
    UNIT_EQ_INT(mailbox_first_unseen(f), (int)mailbox_msgno(f, N - 4));
    struct mailbox_modseq_scan s;
    for (int pass = 0; pass < 2; pass++) {   /* the summary from the open, before and after
                                              * a STORE that changes nothing */
        UNIT_EQ_INT(mailbox_modseq_scan(f, m0, &s), 0);
        UNIT_EQ_INT(s.n_changed, 3);
        UNIT_EQ_INT(s.n_expunged, 3);
        for (size_t i = 0; i < 3 && i < s.n_changed && i < s.n_expunged; i++) {
            UNIT_EQ_INT(s.changed[i], flag[i]);
            UNIT_EQ_INT(s.expunged[i], gone[i]);
        }
        mailbox_modseq_scan_fini(&s);
        UNIT_EQ_INT(mailbox_store(w, flag, 1, &sf, NULL, NULL), 0);   /* no change: no modseq */
    }
    struct index_record rec;
    UNIT_EQ_INT(mailbox_record(f, 2049, &rec), 1);
    UNIT_EQ_INT(rec.uid, 2049);
    UNIT_EQ_INT(mailbox_record(f, N + 1, &rec), 0);
out:
    free(msgs);
    mailbox_close(&f);
    mailbox_close(&w);
}

/* ---- the uid column (uidcol.h) ---- */

/* column_state: the column file of mailbox id against its records (read through a fresh
 * handle that does not use the column): 1 when it names the current index header and every
 * entry and block maximum equals what the records say, 0 when it is missing or names another
 * header (it will not be used), -1 when it names the current header but differs (a session
 * would be served wrong uids: the failure this guards against). */
static int column_state(const char *id)
{
    uint32_t min = uidcol_min_records;
    uidcol_min_records = UINT32_MAX;   /* this handle reads the records */
    struct mailbox *mb = NULL;
    int r = mailbox_open(part1, id, NULL, &mb);
    uidcol_min_records = min;
    UNIT_EQ_INT(r, 0);
    if (r < 0) return -1;
    char *path = xasprintf("%s/%s", mailbox_dir(mb), UIDCOL_FILE);
    char *bytes = NULL;
    size_t len = 0;
    int state = 0;
    struct uidcol_header c;
    const struct index_header *h = mailbox_header(mb);
    if (file_read_all(path, (size_t)1 << 30, &bytes, &len) < 0 || len < UIDCOL_HEADER_SIZE ||
        uidcol_header_decode((unsigned char *)bytes, &c) < 0 || c.generation != h->generation ||
        c.commit != h->commit || c.record_count != h->record_count)
        goto out;
    state = -1;
    uint32_t nb = (h->record_count + UIDCOL_BLOCK - 1) / UIDCOL_BLOCK;
    if (len < uidcol_block_offset(nb)) goto out;
    uint32_t pos = 0;
    uint64_t maxm = 0;
    for (uint32_t u = 1; u < h->uidnext; u++) {
        struct index_record rec;
        if (mailbox_record(mb, u, &rec) != 1) continue;
        const unsigned char *blk = (unsigned char *)bytes + uidcol_block_offset(pos / UIDCOL_BLOCK);
        const unsigned char *e = blk + (pos % UIDCOL_BLOCK) * UIDCOL_ENTRY_SIZE;
        if (uidcol_block_check(blk) < 0 || le_get32(e) != rec.uid || le_get32(e + 4) != rec.flags) {
            fprintf(stderr, "column entry %u: uid %u flags %x, record uid %u flags %x\n",
                    (unsigned)pos, (unsigned)le_get32(e), (unsigned)le_get32(e + 4),
                    (unsigned)rec.uid, (unsigned)rec.flags);
            goto out;
        }
        if (rec.modseq > maxm) maxm = rec.modseq;
        pos++;
        if (pos % UIDCOL_BLOCK == 0 || pos == h->record_count) {
            if (le_get64(blk + UIDCOL_BLOCK * UIDCOL_ENTRY_SIZE) != maxm) {
                fprintf(stderr, "column block %u: max modseq %llu, records %llu\n",
                        (unsigned)((pos - 1) / UIDCOL_BLOCK),
                        (unsigned long long)le_get64(blk + UIDCOL_BLOCK * UIDCOL_ENTRY_SIZE),
                        (unsigned long long)maxm);
                goto out;
            }
            maxm = 0;
        }
    }
    if (pos == h->record_count) state = 1;
out:
    free(bytes);
    free(path);
    mailbox_close(&mb);
    return state;
}

/* fresh_equals_records: a fresh open (which may use the column: *loaded_r says whether it
 * did) has the view, first unseen message and QRESYNC answer since m0 of one that reads the
 * records. */
static void fresh_equals_records(const char *id, uint64_t m0, int *loaded_r)
{
    struct mailbox *f = NULL, *g = NULL;
    char *v1 = NULL, *v2 = NULL;
    uint64_t loads = uidcol_stats.loads + uidcol_stats.sum_loads;
    if (!open_ok(id, &f)) goto out;
    *loaded_r = uidcol_stats.loads + uidcol_stats.sum_loads > loads;
    uint32_t min = uidcol_min_records;
    uidcol_min_records = UINT32_MAX;
    int r = mailbox_open(part1, id, NULL, &g);
    uidcol_min_records = min;
    UNIT_EQ_INT(r, 0);
    if (r < 0) goto out;
    v1 = view_uids(f);
    v2 = view_uids(g);
    UNIT_EQ_STR(v1, v2);
    UNIT_EQ_INT(mailbox_first_unseen(f), mailbox_first_unseen(g));
    UNIT_EQ_INT(check_counts(f, NULL), 0);
    struct mailbox_modseq_scan a, b;
    UNIT_EQ_INT(mailbox_modseq_scan(f, m0, &a), 0);
    UNIT_EQ_INT(mailbox_modseq_scan(g, m0, &b), 0);
    UNIT_EQ_INT(a.n_changed, b.n_changed);
    UNIT_EQ_INT(a.n_expunged, b.n_expunged);
    if (a.n_changed == b.n_changed && a.n_changed)
        UNIT_CHECK(!memcmp(a.changed, b.changed, a.n_changed * sizeof *a.changed));
    if (a.n_expunged == b.n_expunged && a.n_expunged)
        UNIT_CHECK(!memcmp(a.expunged, b.expunged, a.n_expunged * sizeof *a.expunged));
    mailbox_modseq_scan_fini(&a);
    mailbox_modseq_scan_fini(&b);
out:
    free(v1);
    free(v2);
    mailbox_close(&f);
    mailbox_close(&g);
}

/* crash_append_in_child: as crash_in_child, for an append of one message. */
static int crash_append_in_child(const char *id, const char *point)
{
    pid_t pid = fork();
    if (pid == 0) {
        struct mailbox *mb;
        if (mailbox_open(part1, id, NULL, &mb) < 0) _exit(2);
        fault_name = point;
        fault_left = 1;
        mailbox_fault_hook = fault_exit;
        append_one(mb, "crash", 0, NULL, NULL);
        _exit(3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 77;
}

/* The uid column equals the records after appends, flag stores, expunges and a repack; a
 * commit that died (before its header, between the column's blocks and its header), another
 * boot and a damaged file make it unused and rebuilt, never trusted; a fresh open through it
 * equals one that reads the records. */
static void test_uidcol(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.uidcol", id);
    struct mailbox *w = NULL, *r = NULL;
    char *path = NULL;
    uint32_t min = uidcol_min_records;
    uidcol_min_records = 0;
    int loaded = 0;
    if (!open_ok(id, &w)) goto out;
    mailbox_set_nofsync(w, 1);
    for (int i = 0; i < 30; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "u%d", i);
        UNIT_EQ_INT(append_one(w, tag, i < 20 ? FLAG_SEEN : 0, NULL, NULL), 0);
    }
    uint64_t m0 = mailbox_header(w)->highestmodseq;
    /* 1. w opened the mailbox empty: no column yet. The first open makes it, the next reads it */
    UNIT_EQ_INT(column_state(id), 0);
    uint64_t rebuilds = uidcol_stats.rebuilds;
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 0);
    UNIT_EQ_INT(uidcol_stats.rebuilds, rebuilds + 1);
    UNIT_EQ_INT(column_state(id), 1);
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 1);
    /* 2. every kind of commit brings it forward: appends (one, then 50 across blocks), flag
     * stores, expunges, a keyword; each time a fresh open reads it and equals the records */
    {
        struct mailbox_msg msgs[50];
        static const char body[] = "Subject: many\r\n\r\nbody\r\n";
        for (int i = 0; i < 50; i++) {
            struct mailbox_msg m = { body, sizeof body - 1, -1, 1000000000, 0, NULL, 0 };
            msgs[i] = m;
        }
        UNIT_EQ_INT(append_one(w, "one", 0, NULL, NULL), 0);
        UNIT_EQ_INT(column_state(id), 1);
        UNIT_EQ_INT(mailbox_append(w, msgs, 50, NULL), 0);
        UNIT_EQ_INT(column_state(id), 1);
    }
    uint32_t flag[] = { 2, 33, 64, 80 }, gone[] = { 5, 31, 32, 70 }, seen[] = { 21, 22 };
    const char *kw[] = { "$Col", NULL };
    struct mailbox_store sf = { STORE_ADD, FLAG_FLAGGED, kw, 0 };
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    struct mailbox_store ss = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(w, flag, 4, &sf, NULL, NULL), 0);
    UNIT_EQ_INT(column_state(id), 1);
    UNIT_EQ_INT(mailbox_store(w, gone, 4, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, gone, 4, NULL), 0);
    UNIT_EQ_INT(column_state(id), 1);
    UNIT_EQ_INT(mailbox_store(w, seen, 2, &ss, NULL, NULL), 0);
    UNIT_EQ_INT(column_state(id), 1);
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 1);
    /* 3. killed before its header (the intent is pending) and between the column's blocks and
     * its header: the column is not used, the expunge is seen, the next open rebuilds */
    uint32_t more[] = { 40, 41 };
    UNIT_EQ_INT(mailbox_store(w, more, 2, &sd, NULL, NULL), 0);
    UNIT_CHECK(crash_in_child(id, more, 2, NULL, "commit", 1));
    UNIT_EQ_INT(column_state(id), 0);
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 0);
    UNIT_EQ_INT(column_state(id), 1);
    UNIT_EQ_INT(mailbox_store(w, more, 2, &sf, NULL, NULL), 0);   /* w follows the repair */
    UNIT_EQ_INT(column_state(id), 1);
    uint32_t last[] = { 42 };
    UNIT_EQ_INT(mailbox_store(w, last, 1, &sd, NULL, NULL), 0);
    UNIT_CHECK(crash_in_child(id, last, 1, NULL, "uidcol", 1));
    UNIT_EQ_INT(column_state(id), 0);
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 0);
    UNIT_EQ_INT(column_state(id), 1);
    UNIT_CHECK(crash_append_in_child(id, "uidcol"));
    UNIT_EQ_INT(column_state(id), 0);
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 0);
    /* 4. another boot: not trusted, rebuilt for that boot; back in this one, rebuilt again */
    fake_boot_byte = 0x33;
    mailbox_boot_id_hook = fake_boot_id;
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 0);
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 1);
    mailbox_boot_id_hook = NULL;
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 0);
    UNIT_EQ_INT(column_state(id), 1);
    /* 5. damaged: a uid changed (block checksum), then an expunged entry shown as existing
     * with its checksum made right (the counts), then the header: each is rebuilt */
    path = xasprintf("%s/%s", mailbox_dir(w), UIDCOL_FILE);
    for (int damage = 0; damage < 3; damage++) {
        /* without the group summary, which a fresh view reads instead of the column (it is
         * made from the column, so the column's checks are what this exercises) */
        char *sum = xasprintf("%s/%s", mailbox_dir(w), UIDSUM_FILE);
        UNIT_EQ_INT(unlink(sum), 0);
        free(sum);
        int fd = open(path, O_RDWR);
        UNIT_CHECK(fd >= 0);
        unsigned char blk[UIDCOL_BLOCK_SIZE];
        UNIT_EQ_INT(pread(fd, blk, sizeof blk, (off_t)uidcol_block_offset(0)), (int)sizeof blk);
        if (damage == 0) {
            blk[3 * UIDCOL_ENTRY_SIZE] ^= 1;
        } else if (damage == 1) {
            /* entry 4 is uid 5, expunged in part 2 */
            UNIT_CHECK(le_get32(blk + 4 * UIDCOL_ENTRY_SIZE + 4) & FLAG_EXPUNGED);
            le_put32(blk + 4 * UIDCOL_ENTRY_SIZE + 4, 0);
            uidcol_block_seal(blk);
        }
        if (damage < 2)
            UNIT_EQ_INT(pwrite(fd, blk, sizeof blk, (off_t)uidcol_block_offset(0)),
                        (int)sizeof blk);
        else
            UNIT_EQ_INT(pwrite(fd, "XX", 2, 20), 2);
        close(fd);
        UNIT_CHECK(column_state(id) != 1);
        fresh_equals_records(id, m0, &loaded);
        UNIT_EQ_INT(loaded, 0);
        UNIT_EQ_INT(column_state(id), 1);
    }
    /* 6. a repack: another generation, so not used; a commit on top of it leaves it so; the
     * next open rebuilds it */
    UNIT_EQ_INT(mailbox_repack(w), 0);
    UNIT_EQ_INT(column_state(id), 0);
    UNIT_EQ_INT(mailbox_store(w, flag, 1, &ss, NULL, NULL), 0);
    UNIT_EQ_INT(column_state(id), 0);
    fresh_equals_records(id, m0, &loaded);
    UNIT_EQ_INT(loaded, 0);
    UNIT_EQ_INT(column_state(id), 1);
    fresh_equals_records(id, mailbox_header(w)->highestmodseq - 1, &loaded);
    UNIT_EQ_INT(loaded, 1);
    /* 7. a session that had it open before (r) follows the changes as it did before */
    if (!open_ok(id, &r)) goto out;
    UNIT_EQ_INT(append_one(w, "after", 0, NULL, NULL), 0);
    uint32_t g2[] = { 60 };
    UNIT_EQ_INT(mailbox_store(w, g2, 1, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, g2, 1, NULL), 0);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(r, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_expunged, 1);
    UNIT_EQ_INT(ch.n_new, 1);
    mailbox_changes_fini(&ch);
    UNIT_EQ_INT(check_counts(r, NULL), 0);
    UNIT_EQ_INT(column_state(id), 1);
out:
    mailbox_boot_id_hook = NULL;
    uidcol_min_records = min;
    free(path);
    mailbox_close(&r);
    mailbox_close(&w);
}

/* changes_text: a sync's answer as text, to compare two of them. */
static char *changes_text(const struct mailbox_changes *ch)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "exists %u new %u expunged", (unsigned)ch->exists, (unsigned)ch->n_new);
    for (size_t i = 0; i < ch->n_expunged; i++)
        buf_printf(&b, " %u/%u", (unsigned)ch->expunged_msgnos[i], (unsigned)ch->expunged_uids[i]);
    buf_printf(&b, " changed");
    for (size_t i = 0; i < ch->n_changed; i++) buf_printf(&b, " %u", (unsigned)ch->changed_uids[i]);
    char *t = xstrdup(b.s);
    buf_fini(&b);
    return t;
}

/* sync_both: sync a (which may read only the blocks the uid column's maxima name) and b (which
 * walks its whole view: no column for it) with flags; their answers and views must be equal.
 * 1 when a's sync was incremental. */
static int sync_both(struct mailbox *a, struct mailbox *b, unsigned flags)
{
    struct mailbox_changes ca, cb;
    mailbox_changes_init(&ca);
    mailbox_changes_init(&cb);
    uint64_t inc = uidcol_stats.incremental;
    UNIT_EQ_INT(mailbox_sync(a, flags, &ca), 0);
    int was = uidcol_stats.incremental > inc;
    uint32_t min = uidcol_min_records;
    uidcol_min_records = UINT32_MAX;
    UNIT_EQ_INT(mailbox_sync(b, flags, &cb), 0);
    uidcol_min_records = min;
    char *ta = changes_text(&ca), *tb = changes_text(&cb);
    UNIT_EQ_STR(ta, tb);
    free(ta);
    free(tb);
    char *va = view_uids(a), *vb = view_uids(b);
    UNIT_EQ_STR(va, vb);
    free(va);
    free(vb);
    mailbox_changes_fini(&ca);
    mailbox_changes_fini(&cb);
    return was;
}

/* A long-lived session's sync after other sessions' changes reads only the blocks of records
 * whose highest modseq (from the uid column) is above its view's, and answers exactly what a
 * walk over its whole view answers: flag changes, expunges (at once, or held back by
 * MAILBOX_SYNC_NO_EXPUNGE and given later), new messages, across many blocks; a damaged or
 * missing column falls back to the walk; a CHANGEDSINCE scan through the maxima equals a
 * full one. */
static void test_incremental_sync(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.incsync", id);
    struct mailbox *w = NULL, *a = NULL, *b = NULL;
    char *path = NULL;
    uint32_t min = uidcol_min_records;
    uidcol_min_records = 0;
    if (!open_ok(id, &w)) goto out;
    mailbox_set_nofsync(w, 1);
    {
        struct mailbox_msg msgs[300];
        static const char body[] = "Subject: many\r\n\r\nbody\r\n";
        for (int i = 0; i < 300; i++) {
            struct mailbox_msg m = { body, sizeof body - 1, -1, 1000000000, 0, NULL, 0 };
            msgs[i] = m;
        }
        UNIT_EQ_INT(mailbox_append(w, msgs, 300, NULL), 0);
    }
    uint64_t m0 = mailbox_header(w)->highestmodseq;
    if (!open_ok(id, &a)) goto out;   /* the first open writes the column */
    uidcol_min_records = UINT32_MAX;
    int r = mailbox_open(part1, id, NULL, &b);
    uidcol_min_records = 0;
    UNIT_EQ_INT(r, 0);
    if (r < 0) goto out;
    path = xasprintf("%s/%s", mailbox_dir(w), UIDCOL_FILE);
    UNIT_CHECK(access(path, F_OK) == 0);
    /* 1. nothing changed: nothing to say */
    sync_both(a, b, 0);
    /* 2. flags in scattered blocks, expunges (first, last, in the middle, two in one block),
     * new messages: incremental, same answer */
    uint32_t flag[] = { 1, 33, 34, 150, 299, 300 }, gone[] = { 2, 40, 41, 200, 298 };
    const char *kw[] = { "$Inc", NULL };
    struct mailbox_store sf = { STORE_ADD, FLAG_FLAGGED, kw, 0 };
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(w, flag, 6, &sf, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_store(w, gone, 5, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, gone, 5, NULL), 0);
    UNIT_EQ_INT(append_one(w, "new1", 0, NULL, NULL), 0);
    UNIT_EQ_INT(append_one(w, "new2", FLAG_SEEN, NULL, NULL), 0);
    UNIT_CHECK(sync_both(a, b, 0));
    /* 3. expunges held back during a command, then given: the second sync walks (a pending
     * expunge is not above the view's modseq any more) and both agree */
    uint32_t gone2[] = { 100, 101, 260 }, flag2[] = { 3 };
    UNIT_EQ_INT(mailbox_store(w, gone2, 3, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, gone2, 3, NULL), 0);
    UNIT_EQ_INT(mailbox_store(w, flag2, 1, &sf, NULL, NULL), 0);
    UNIT_CHECK(sync_both(a, b, MAILBOX_SYNC_NO_EXPUNGE));
    UNIT_EQ_INT(mailbox_count(a), 300 - 5 + 2);
    UNIT_EQ_INT(append_one(w, "new3", 0, NULL, NULL), 0);
    UNIT_CHECK(!sync_both(a, b, 0));
    UNIT_EQ_INT(mailbox_count(a), 300 - 8 + 3);
    /* 4. a CHANGEDSINCE scan of a (through the maxima after w's change) equals b's walk */
    uint32_t flag3[] = { 250 };
    UNIT_EQ_INT(mailbox_store(w, flag3, 1, &sf, NULL, NULL), 0);
    struct mailbox_modseq_scan sa, sb;
    uint64_t maxima = uidcol_stats.maxima + uidcol_stats.sum_loads;
    UNIT_EQ_INT(mailbox_modseq_scan(a, m0, &sa), 0);
    UNIT_CHECK(uidcol_stats.maxima + uidcol_stats.sum_loads > maxima);
    UNIT_CHECK(!sa.view_current);
    uidcol_min_records = UINT32_MAX;
    UNIT_EQ_INT(mailbox_modseq_scan(b, m0, &sb), 0);
    uidcol_min_records = 0;
    UNIT_EQ_INT(sa.n_changed, sb.n_changed);
    UNIT_EQ_INT(sa.n_expunged, sb.n_expunged);
    UNIT_EQ_INT(sa.n_expunged, 8);
    if (sa.n_changed == sb.n_changed)
        UNIT_CHECK(!memcmp(sa.changed, sb.changed, sa.n_changed * sizeof *sa.changed));
    if (sa.n_expunged == sb.n_expunged)
        UNIT_CHECK(!memcmp(sa.expunged, sb.expunged, sa.n_expunged * sizeof *sa.expunged));
    mailbox_modseq_scan_fini(&sa);
    mailbox_modseq_scan_fini(&sb);
    UNIT_CHECK(sync_both(a, b, 0));
    UNIT_EQ_INT(mailbox_modseq_scan(a, m0, &sa), 0);
    UNIT_CHECK(sa.view_current);
    mailbox_modseq_scan_fini(&sa);
    /* 5. a damaged block: the maxima are not believed, a walks its view, same answer */
    uint32_t flag4[] = { 20, 280 };
    UNIT_EQ_INT(mailbox_store(w, flag4, 2, &sf, NULL, NULL), 0);
    {
        int fd = open(path, O_RDWR);
        UNIT_CHECK(fd >= 0);
        unsigned char blk[UIDCOL_BLOCK_SIZE];
        UNIT_EQ_INT(pread(fd, blk, sizeof blk, (off_t)uidcol_block_offset(0)), (int)sizeof blk);
        blk[UIDCOL_BLOCK * UIDCOL_ENTRY_SIZE] ^= 0xff;   /* its maximum */
        UNIT_EQ_INT(pwrite(fd, blk, sizeof blk, (off_t)uidcol_block_offset(0)), (int)sizeof blk);
        close(fd);
    }
    UNIT_CHECK(!sync_both(a, b, 0));
    /* 6. no column: the walk again; a repack: a new generation, the walk */
    unlink(path);
    UNIT_EQ_INT(mailbox_store(w, flag4, 2, &sd, NULL, NULL), 0);
    UNIT_CHECK(!sync_both(a, b, 0));
    UNIT_EQ_INT(mailbox_expunge(w, flag4, 2, NULL), 0);
    UNIT_EQ_INT(mailbox_repack(w), 0);
    UNIT_CHECK(!sync_both(a, b, 0));
    UNIT_EQ_INT(check_counts(a, NULL), 0);
out:
    uidcol_min_records = min;
    free(path);
    mailbox_close(&a);
    mailbox_close(&b);
    mailbox_close(&w);
}

/* lazy_matches: every message number and uid of a (a lazy view) against b (an array), looked
 * up in a scattered order first (so groups are read one by one, not in order). */
static void lazy_matches(struct mailbox *a, struct mailbox *b)
{
    uint32_t n = mailbox_count(b);
    UNIT_EQ_INT(mailbox_count(a), n);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t m = (uint32_t)(((uint64_t)k * 7919) % n) + 1;
        uint32_t u = mailbox_uid(b, m);
        if (mailbox_uid(a, m) != u || mailbox_msgno(a, u) != m) {
            fprintf(stderr, "lazy view: msgno %u uid %u, array uid %u msgno %u\n", (unsigned)m,
                    (unsigned)mailbox_uid(a, m), (unsigned)u, (unsigned)mailbox_msgno(a, u));
            UNIT_CHECK(0);
            return;
        }
    }
    UNIT_EQ_INT(mailbox_msgno(a, 0), 0);
    UNIT_EQ_INT(mailbox_msgno(a, mailbox_header(a)->uidnext), 0);
    UNIT_EQ_INT(mailbox_first_unseen(a), mailbox_first_unseen(b));
}

/* A fresh session's view made from the group summary (uidsum) reads no record until a message
 * number is asked for, then one group; after expunges by another session, before its sync
 * and after it, every message number and uid is the array's, EXPUNGE numbers included
 * (several in one group, in several groups, first and last), with appends that start a new
 * group, an expunge held back (the view becomes an array), a repack while lazy, and a
 * damaged summary. */
static void test_lazy_view(void)
{
    enum { N = 5000 };   /* 5 groups of 1,024 */
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.lazy", id);
    struct mailbox *w = NULL, *a = NULL, *b = NULL, *c = NULL;
    static const char body[] = "Subject: lazy\r\n\r\nbody\r\n";
    uint32_t min = uidcol_min_records;
    uidcol_min_records = 0;
    if (!open_ok(id, &w)) goto out;
    mailbox_set_nofsync(w, 1);
    UNIT_EQ_INT(append_many(w, body, N, 3000), 0);
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    struct mailbox_store ss = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    const char *kw[] = { "$Lazy", NULL };
    struct mailbox_store sf = { STORE_ADD, FLAG_FLAGGED, kw, 0 };
    uint32_t early[] = { 7, 1500 };   /* expunged before any view: never in one */
    UNIT_EQ_INT(mailbox_store(w, early, 2, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, early, 2, NULL), 0);
    /* the first open writes column and summary; the next is lazy */
    if (!open_ok(id, &c)) goto out;
    mailbox_close(&c);
    uint64_t groups = uidcol_stats.group_loads, sums = uidcol_stats.sum_loads;
    if (!open_ok(id, &a)) goto out;
    UNIT_EQ_INT(uidcol_stats.sum_loads, sums + 1);
    UNIT_EQ_INT(uidcol_stats.group_loads, groups);   /* no record read */
    UNIT_EQ_INT(mailbox_count(a), N - 2);
    uidcol_min_records = UINT32_MAX;
    int r = mailbox_open(part1, id, NULL, &b);
    uidcol_min_records = 0;
    UNIT_EQ_INT(r, 0);
    if (r < 0) goto out;
    /* 1. one number: one group read */
    UNIT_EQ_INT(mailbox_uid(a, 4000), mailbox_uid(b, 4000));
    UNIT_EQ_INT(uidcol_stats.group_loads, groups + 1);
    /* 2. another session expunges in groups a has read and not read (first, last, two in
     * one group, group edges), flags some, appends: before a syncs, its numbers stay */
    uint32_t gone[] = { 1, 1023, 1024, 1025, 2049, 3000, 3001, 4100, 5000 };
    UNIT_EQ_INT(mailbox_store(w, gone, 9, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, gone, 9, NULL), 0);
    uint32_t fl[] = { 2, 1026, 4999 };
    UNIT_EQ_INT(mailbox_store(w, fl, 3, &sf, NULL, NULL), 0);
    for (int i = 0; i < 3; i++) UNIT_EQ_INT(append_one(w, "more", 0, NULL, NULL), 0);
    lazy_matches(a, b);
    UNIT_CHECK(sync_both(a, b, 0));
    UNIT_CHECK(mailbox_view_lazy(a));
    lazy_matches(a, b);
    /* 3. enough appends to start new groups, one of them expunged at once; seen changes that
     * move the first unseen message */
    {
        struct mailbox_msg more[1100];
        for (int i = 0; i < 1100; i++) {
            struct mailbox_msg m = { body, sizeof body - 1, -1, 1000000000, 0, NULL, 0 };
            more[i] = m;
        }
        UNIT_EQ_INT(mailbox_append(w, more, 1100, NULL), 0);
    }
    uint32_t late[] = { N + 3 + 500 }, seen[] = { 3002, 3003 };
    UNIT_EQ_INT(mailbox_store(w, late, 1, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, late, 1, NULL), 0);
    UNIT_EQ_INT(mailbox_store(w, seen, 2, &ss, NULL, NULL), 0);
    UNIT_CHECK(sync_both(a, b, 0));
    UNIT_CHECK(mailbox_view_lazy(a));
    lazy_matches(a, b);
    /* 4. a fresh lazy session, then expunges across every group without reading a number
     * first: the sync reads the groups it must renumber */
    mailbox_close(&a);
    if (!open_ok(id, &a)) goto out;
    UNIT_CHECK(mailbox_view_lazy(a));
    uint32_t spread[] = { 10, 1100, 2100, 3100, 4101, 5100, N + 3 + 600 };
    UNIT_EQ_INT(mailbox_store(w, spread, 7, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, spread, 7, NULL), 0);
    UNIT_CHECK(sync_both(a, b, 0));
    lazy_matches(a, b);
    /* 5. expunges held back (MAILBOX_SYNC_NO_EXPUNGE) twice, with flag changes, an append
     * and another expunge between: the view keeps them, then reports them in order with
     * the new one, as the array does */
    uint32_t held[] = { 20, 2200 }, held2[] = { 2201 }, fl2[] = { 21, 4000 };
    UNIT_EQ_INT(mailbox_store(w, held, 2, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, held, 2, NULL), 0);
    UNIT_CHECK(sync_both(a, b, MAILBOX_SYNC_NO_EXPUNGE));
    UNIT_CHECK(mailbox_view_lazy(a));
    lazy_matches(a, b);
    UNIT_EQ_INT(mailbox_store(w, fl2, 2, &sf, NULL, NULL), 0);
    UNIT_EQ_INT(append_one(w, "held", 0, NULL, NULL), 0);
    UNIT_CHECK(sync_both(a, b, MAILBOX_SYNC_NO_EXPUNGE));
    lazy_matches(a, b);
    UNIT_EQ_INT(mailbox_store(w, held2, 1, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, held2, 1, NULL), 0);
    UNIT_CHECK(sync_both(a, b, 0));
    UNIT_CHECK(mailbox_view_lazy(a));
    lazy_matches(a, b);
    /* held back, then a repack before they are given: the array takes them over */
    uint32_t held3[] = { 40 };
    UNIT_EQ_INT(mailbox_store(w, held3, 1, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, held3, 1, NULL), 0);
    UNIT_CHECK(sync_both(a, b, MAILBOX_SYNC_NO_EXPUNGE));
    UNIT_EQ_INT(mailbox_repack(w), 0);
    sync_both(a, b, MAILBOX_SYNC_NO_EXPUNGE);
    UNIT_CHECK(!mailbox_view_lazy(a));
    sync_both(a, b, 0);
    lazy_matches(a, b);
    /* 6. a repack while a lazy view is open: its messages are read from the file it had, and
     * the expunges since are reported as a walk reports them */
    mailbox_close(&a);
    if (!open_ok(id, &c)) goto out;   /* the column and summary for the repacked file */
    mailbox_close(&c);
    if (!open_ok(id, &a)) goto out;
    UNIT_CHECK(mailbox_view_lazy(a));
    uint32_t pre[] = { 30, 3500 };
    UNIT_EQ_INT(mailbox_store(w, pre, 2, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, pre, 2, NULL), 0);
    UNIT_EQ_INT(mailbox_repack(w), 0);
    sync_both(a, b, 0);
    UNIT_CHECK(!mailbox_view_lazy(a));
    lazy_matches(a, b);
    /* 7. a damaged summary (a count changed, its checksum made right): not believed, made
     * again from the column, and the view is right */
    if (!open_ok(id, &c)) goto out;   /* the column and summary for the repacked file */
    mailbox_close(&c);
    {
        char *sp = xasprintf("%s/%s", mailbox_dir(w), UIDSUM_FILE);
        int fd = open(sp, O_RDWR);
        UNIT_CHECK(fd >= 0);
        unsigned char e[UIDSUM_ENTRY_SIZE];
        UNIT_EQ_INT(pread(fd, e, sizeof e, UIDCOL_HEADER_SIZE + UIDSUM_ENTRY_SIZE), (int)sizeof e);
        le_put32(e + 8, le_get32(e + 8) - 1);
        le_put32(e + 28, mailbox_sortkeys_sum(e, 28));
        UNIT_EQ_INT(pwrite(fd, e, sizeof e, UIDCOL_HEADER_SIZE + UIDSUM_ENTRY_SIZE), (int)sizeof e);
        close(fd);
        free(sp);
    }
    mailbox_close(&a);
    uint64_t rebuilt = uidcol_stats.sum_rebuilds;
    if (!open_ok(id, &a)) goto out;
    UNIT_EQ_INT(uidcol_stats.sum_rebuilds, rebuilt + 1);
    UNIT_CHECK(mailbox_view_lazy(a));
    lazy_matches(a, b);
out:
    uidcol_min_records = min;
    mailbox_close(&a);
    mailbox_close(&b);
    mailbox_close(&c);
    mailbox_close(&w);
}

/* A session's own STORE and EXPUNGE of messages spread over a big mailbox cost the blocks
 * they change: the column's summary entries are brought forward from the changed blocks (no
 * group read), the sync that follows finds the changed blocks from the session's own commits
 * (no summary or column read), and a uid's message number in a lazy view reads that uid's
 * group only; another writer's commit in between makes the sync read the column as before.
 * Views, numbers and a fresh session's summary stay exactly the array's. */
static void test_own_changes(void)
{
    enum { N = 5000 };   /* 5 groups of 1,024 */
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.own", id);
    struct mailbox *w = NULL, *a = NULL, *b = NULL, *c = NULL;
    static const char body[] = "Subject: own\r\n\r\nbody\r\n";
    uint32_t min = uidcol_min_records;
    uidcol_min_records = 0;
    if (!open_ok(id, &w)) goto out;
    mailbox_set_nofsync(w, 1);
    UNIT_EQ_INT(append_many(w, body, N, 2500), 0);
    if (!open_ok(id, &c)) goto out;   /* writes column and summary */
    mailbox_close(&c);
    if (!open_ok(id, &a)) goto out;
    mailbox_set_nofsync(a, 1);
    UNIT_CHECK(mailbox_view_lazy(a));
    uidcol_min_records = UINT32_MAX;
    int r = mailbox_open(part1, id, NULL, &b);
    uidcol_min_records = 0;
    UNIT_EQ_INT(r, 0);
    if (r < 0) goto out;
    /* 1. a uid's message number reads its own group only, in and between groups */
    uint64_t groups = uidcol_stats.group_loads;
    UNIT_EQ_INT(mailbox_msgno_ge(a, 3500), mailbox_msgno_ge(b, 3500));
    UNIT_EQ_INT(uidcol_stats.group_loads, groups + 1);
    uint32_t probe[] = { 0, 1, 2, 1024, 1025, 2048, 4999, 5000, 5001, 9999 };
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++)
        UNIT_EQ_INT(mailbox_msgno_ge(a, probe[i]), mailbox_msgno_ge(b, probe[i]));
    /* 2. the session's own STORE then EXPUNGE of messages in every group, one of them the
     * only change in its block, two in one block, seen and unseen */
    uint32_t spread[] = { 5, 6, 1030, 2100, 2600, 3170, 4200, 4999 };
    size_t ns = sizeof spread / sizeof spread[0];
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    uint64_t deltas = uidcol_stats.sum_deltas, sums = uidcol_stats.sum_loads,
             own = uidcol_stats.own, rebuilt = uidcol_stats.sum_rebuilds;
    UNIT_EQ_INT(mailbox_store(a, spread, ns, &sd, NULL, NULL), 0);
    /* a group entry each from the records changed, no group read */
    UNIT_EQ_INT(uidcol_stats.sum_deltas, deltas + 5);
    UNIT_CHECK(sync_both(a, b, 0));
    uint32_t count = 0;
    UNIT_EQ_INT(mailbox_expunge(a, spread, ns, &count), 0);
    UNIT_EQ_INT(count, ns);
    UNIT_EQ_INT(uidcol_stats.sum_deltas, deltas + 10);
    UNIT_CHECK(sync_both(a, b, 0));
    UNIT_CHECK(uidcol_stats.own >= own + 2);            /* both syncs from the own blocks */
    UNIT_EQ_INT(uidcol_stats.sum_loads, sums);          /* ... so no summary read */
    UNIT_CHECK(mailbox_view_lazy(a));
    lazy_matches(a, b);
    /* 3. another writer's commit in between: not the session's own changes alone */
    uint32_t other[] = { 3000 }, mine[] = { 3001, 1500 };
    UNIT_EQ_INT(mailbox_store(w, other, 1, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_store(a, mine, 2, &sd, NULL, NULL), 0);
    own = uidcol_stats.own;
    UNIT_CHECK(sync_both(a, b, 0));
    UNIT_EQ_INT(uidcol_stats.own, own);
    lazy_matches(a, b);
    uint32_t both[] = { 1500, 3000, 3001 };
    UNIT_EQ_INT(mailbox_expunge(a, both, 3, &count), 0);
    UNIT_EQ_INT(count, 3);
    UNIT_CHECK(sync_both(a, b, 0));
    lazy_matches(a, b);
    /* 4. the summary brought forward is the one a rebuild makes: a fresh session believes
     * it (its counts are checked against the header) and its view is the array's */
    mailbox_close(&a);
    if (!open_ok(id, &a)) goto out;
    UNIT_EQ_INT(uidcol_stats.sum_rebuilds, rebuilt);
    UNIT_CHECK(mailbox_view_lazy(a));
    lazy_matches(a, b);
    /* 5. a record by uid (mbi_find_pos's interpolation) in a repacked mailbox, whose uids
     * have gaps: found exactly when the message is there, below, between and above them */
    {
        uint32_t runs[] = { 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 2000, 4998 };
        UNIT_EQ_INT(mailbox_store(w, runs, 12, &sd, NULL, NULL), 0);
        UNIT_EQ_INT(mailbox_expunge(w, runs, 12, NULL), 0);
        UNIT_EQ_INT(mailbox_repack(w), 0);
        sync_both(a, b, 0);   /* (a repack: not an incremental sync) */
        int wrong = 0;
        for (uint32_t u = 0; u <= N + 2; u++) {
            struct index_record rec;
            int f = mailbox_record(w, u, &rec);
            if (f != (mailbox_msgno(b, u) != 0) || (f == 1 && rec.uid != u)) wrong++;
        }
        UNIT_EQ_INT(wrong, 0);
    }
out:
    uidcol_min_records = min;
    mailbox_close(&a);
    mailbox_close(&b);
    mailbox_close(&c);
    mailbox_close(&w);
}

/* mailbox_open_target: a handle without a view (what a delivery uses) appends, is a copy's
 * source and destination, and builds its view at the first sync as an open does. */
/* The commit that takes a mailbox to uidcol_min_records records (a delivery through a target
 * handle) writes its uid column and summary; later deliveries keep them, so the first session
 * after them reads the summary instead of every record and writes no file; it sees what a
 * session reading the records sees. */
static void test_uidcol_created_by_commit(void)
{
    enum { MIN = 100 };
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.colmade", id);
    struct mailbox *t = NULL, *a = NULL, *b = NULL;
    static const char body[] = "Subject: made\r\n\r\nbody\r\n";
    uint32_t min = uidcol_min_records;
    uidcol_min_records = MIN;
    char *col = xasprintf("%s/%.2s/%s/%s", part1, id, id, UIDCOL_FILE);
    char *sum = xasprintf("%s/%.2s/%s/%s", part1, id, id, UIDSUM_FILE);
    struct stat st;
    UNIT_EQ_INT(mailbox_open_target(part1, id, NULL, &t), 0);
    if (!t) goto out;
    mailbox_set_nofsync(t, 1);
    UNIT_EQ_INT(append_many(t, body, MIN - 1, 10), 0);
    UNIT_EQ_INT(stat(col, &st), -1);   /* below the size: none */
    uint64_t rebuilds = uidcol_stats.rebuilds, sums = uidcol_stats.sum_rebuilds;
    UNIT_EQ_INT(append_one(t, "crossing", 0, NULL, NULL), 0);
    UNIT_EQ_INT(uidcol_stats.rebuilds, rebuilds + 1);
    UNIT_EQ_INT(uidcol_stats.sum_rebuilds, sums + 1);
    UNIT_EQ_INT(stat(col, &st), 0);
    UNIT_EQ_INT(stat(sum, &st), 0);
    /* more deliveries, one of them \Seen, and one expunged: brought forward, not rebuilt */
    uint64_t updates = uidcol_stats.updates;
    for (int i = 0; i < 40; i++)
        UNIT_EQ_INT(append_one(t, "later", i == 3 ? FLAG_SEEN : 0, NULL, NULL), 0);
    uint32_t gone[] = { 5 };
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(t, gone, 1, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(t, gone, 1, NULL), 0);
    UNIT_CHECK(uidcol_stats.updates >= updates + 40);
    UNIT_EQ_INT(uidcol_stats.rebuilds, rebuilds + 1);
    /* the first session: from the summary, nothing rebuilt, the same as from the records */
    uint64_t loads = uidcol_stats.sum_loads;
    UNIT_EQ_INT(mailbox_open_select(part1, id, NULL, &a), 0);
    if (!a) goto out;
    UNIT_EQ_INT(uidcol_stats.rebuilds, rebuilds + 1);
    UNIT_CHECK(uidcol_stats.sum_loads > loads);
    UNIT_CHECK(mailbox_view_lazy(a));
    /* the open for SELECT found the first unseen message under its lock: no second look */
    loads = uidcol_stats.sum_loads;
    UNIT_EQ_INT(mailbox_first_unseen_synced(a), 10);   /* 1-10 \Seen, uid 5 gone */
    UNIT_EQ_INT(uidcol_stats.sum_loads, loads);
    uidcol_min_records = UINT32_MAX;   /* this handle reads the records */
    int r = mailbox_open(part1, id, NULL, &b);
    uidcol_min_records = MIN;
    UNIT_EQ_INT(r, 0);
    if (r < 0) goto out;
    UNIT_EQ_INT(mailbox_count(a), MIN + 40 - 1);
    UNIT_EQ_INT(mailbox_count(a), mailbox_count(b));
    for (uint32_t m = 1; m <= mailbox_count(b); m++)
        if (mailbox_uid(a, m) != mailbox_uid(b, m)) {
            UNIT_EQ_INT(mailbox_uid(a, m), mailbox_uid(b, m));
            break;
        }
    UNIT_EQ_INT(mailbox_first_unseen_synced(b), 10);
    UNIT_EQ_INT((long long)mailbox_header(a)->highestmodseq,
                (long long)mailbox_header(b)->highestmodseq);
    /* another session's change: looked for again, right */
    uint32_t more[] = { 11 };
    struct mailbox_store ss = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(t, more, 1, &ss, NULL, NULL), 0);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(a, 0, &ch), 0);
    mailbox_changes_fini(&ch);
    UNIT_EQ_INT(mailbox_first_unseen_synced(a), 11);
    /* a view read from the records (no column used) is noted the same way */
    mailbox_close(&b);
    uidcol_min_records = UINT32_MAX;
    r = mailbox_open_select(part1, id, NULL, &b);
    uidcol_min_records = MIN;
    UNIT_EQ_INT(r, 0);
    if (r < 0) goto out;
    UNIT_CHECK(!mailbox_view_lazy(b));
    UNIT_EQ_INT(mailbox_first_unseen_synced(b), 11);
out:
    uidcol_min_records = min;
    free(col);
    free(sum);
    mailbox_close(&b);
    mailbox_close(&a);
    mailbox_close(&t);
}

static void test_open_target(void)
{
    enum { N = 1500 };
    char id[UNIQUEID_LEN + 1], id2[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.target", id);
    new_mailbox(part1, "user.alice.target2", id2);
    struct mailbox *w = NULL, *t = NULL, *t2 = NULL, *f = NULL;
    static const char body[] = "Subject: target\r\n\r\nbody\r\n";
    if (!open_ok(id, &w)) goto out;
    mailbox_set_nofsync(w, 1);
    UNIT_EQ_INT(append_many(w, body, N, 0), 0);
    uint32_t gone[] = { 2, 700 };
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(w, gone, 2, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, gone, 2, NULL), 0);
    UNIT_EQ_INT(mailbox_open_target(part1, id, NULL, &t), 0);
    if (!t) goto out;
    /* no view: nothing was read of the records, yet the header is the current one */
    UNIT_EQ_INT(mailbox_count(t), 0);
    UNIT_EQ_INT(mailbox_msgno(t, 1), 0);
    UNIT_EQ_INT(mailbox_header(t)->exists, N - 2);
    uint32_t uid = 0;
    UNIT_EQ_INT(append_one(t, "target", FLAG_FLAGGED, NULL, &uid), 0);
    UNIT_EQ_INT(uid, N + 1);
    UNIT_EQ_INT(mailbox_count(t), 0);
    struct index_record rec;
    UNIT_EQ_INT(mailbox_record(t, N + 1, &rec), 1);
    UNIT_EQ_INT(rec.flags & FLAG_FLAGGED, FLAG_FLAGGED);
    /* copy from one target handle into another */
    UNIT_EQ_INT(mailbox_open_target(part1, id2, NULL, &t2), 0);
    if (!t2) goto out;
    uint32_t src[] = { 1, N + 1 }, dst[2] = { 0, 0 };
    UNIT_EQ_INT(mailbox_copy(t, src, 2, t2, dst, NULL), 0);
    UNIT_EQ_INT(dst[0], 1);
    UNIT_EQ_INT(dst[1], 2);
    UNIT_EQ_INT(mailbox_header(t2)->exists, 2);
    /* the first sync builds the whole view: every message reported new, as a fresh open has */
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(t, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_new, N - 1);
    UNIT_EQ_INT(ch.n_expunged, 0);
    mailbox_changes_fini(&ch);
    if (!open_ok(id, &f)) goto out;
    UNIT_EQ_INT(mailbox_count(t), mailbox_count(f));
    for (uint32_t m = 1; m <= mailbox_count(f); m++)
        if (mailbox_uid(t, m) != mailbox_uid(f, m)) {
            UNIT_EQ_INT(mailbox_uid(t, m), mailbox_uid(f, m));
            break;
        }
    UNIT_EQ_INT(mailbox_msgno(t, N + 1), N - 1);
out:
    mailbox_close(&f);
    mailbox_close(&t2);
    mailbox_close(&t);
    mailbox_close(&w);
}

/* STORE and EXPUNGE write only the records they change, adjacent ones in one write, and flush
 * the index once per command; a message named twice is changed (and counted) once; a failed
 * commit puts every record back as it was. */
static void test_store_batched(void)
{
    enum { N = 300 };
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.batched", id);
    struct mailbox *mb = NULL;
    struct mailbox_msg *msgs = xzmalloc(N * sizeof *msgs);
    static const char body[] = "Subject: batched\r\n\r\nbody\r\n";
    uint32_t *all = xzmalloc(N * sizeof *all);
    for (int i = 0; i < N; i++) {
        struct mailbox_msg m = { body, sizeof body - 1, -1, 1000000000, 0, NULL, 0 };
        msgs[i] = m;
        all[i] = (uint32_t)i + 1;
    }
    if (!open_ok(id, &mb)) goto out;
    UNIT_EQ_INT(mailbox_append(mb, msgs, N, NULL), 0);
    /* 1:* \Seen: one write of the whole record area, one flush */
    struct mailbox_sync_stats s0 = mailbox_sync_stats;
    struct mailbox_store seen = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, all, N, &seen, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_sync_stats.record_writes - s0.record_writes, 1);
    UNIT_EQ_INT(mailbox_sync_stats.index - s0.index, 0);     /* the flag change log's flush */
    UNIT_EQ_INT(mailbox_sync_stats.flaglog - s0.flaglog, 1);
    UNIT_EQ_INT(mailbox_header(mb)->seen, N);
    /* again: nothing changes, nothing is written or flushed */
    s0 = mailbox_sync_stats;
    UNIT_EQ_INT(mailbox_store(mb, all, N, &seen, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_sync_stats.record_writes - s0.record_writes, 0);
    UNIT_EQ_INT(mailbox_sync_stats.index - s0.index, 0);
    UNIT_EQ_INT(mailbox_sync_stats.flaglog - s0.flaglog, 0);
    /* every tenth \Deleted, uid 10 named three times: 30 writes (none adjacent), one flush,
     * counted once */
    uint32_t tenth[N / 10 + 2];
    size_t nt = 0;
    for (uint32_t u = 10; u <= N; u += 10) tenth[nt++] = u;
    tenth[nt++] = 10;
    tenth[nt++] = 10;
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    s0 = mailbox_sync_stats;
    UNIT_EQ_INT(mailbox_store(mb, tenth, nt, &del, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_sync_stats.record_writes - s0.record_writes, N / 10);
    UNIT_EQ_INT(mailbox_sync_stats.flaglog - s0.flaglog, 1);
    UNIT_EQ_INT(mailbox_header(mb)->deleted, N / 10);
    s0 = mailbox_sync_stats;
    uint32_t count = 0;
    UNIT_EQ_INT(mailbox_expunge(mb, tenth, nt, &count), 0);
    UNIT_EQ_INT(count, N / 10);
    UNIT_EQ_INT(mailbox_sync_stats.record_writes - s0.record_writes, N / 10);
    UNIT_EQ_INT(mailbox_sync_stats.index - s0.index, 1);
    UNIT_EQ_INT(mailbox_header(mb)->exists, N - N / 10);
    UNIT_EQ_INT(mailbox_header(mb)->expunged, N / 10);
    UNIT_EQ_INT(mailbox_header(mb)->deleted, 0);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(mb, 0, &ch), 0);
    mailbox_changes_fini(&ch);
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
    /* 1:3,5,3,1:5 \Flagged (three writes: 1:3, 5, 4; the repeats change nothing), then the
     * flush fails: nothing shows, the records are the old ones */
    uint32_t over[] = { 1, 2, 3, 5, 3, 1, 2, 3, 4, 5 };
    struct index_record before[5], after;
    for (uint32_t u = 1; u <= 5; u++) UNIT_EQ_INT(mailbox_record(mb, u, &before[u - 1]), 1);
    uint64_t hms = mailbox_header(mb)->highestmodseq;
    struct mailbox_store flag = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    fail_points[0] = "flaglog_sync";
    mailbox_fault_hook = fail_sync;
    fprintf(stderr, "(mailbox_io_error log line expected)\n");
    s0 = mailbox_sync_stats;
    UNIT_EQ_INT(mailbox_store(mb, over, sizeof over / sizeof *over, &flag, NULL, NULL), CF_E_IO);
    UNIT_EQ_INT(mailbox_sync_stats.record_writes - s0.record_writes, 3);
    mailbox_fault_hook = NULL;
    fail_points[0] = NULL;
    for (uint32_t u = 1; u <= 5; u++) {
        UNIT_EQ_INT(mailbox_record(mb, u, &after), 1);
        UNIT_EQ_INT(after.flags, before[u - 1].flags);
        UNIT_EQ_INT(after.modseq, before[u - 1].modseq);
    }
    UNIT_EQ_INT(mailbox_header(mb)->highestmodseq, hms);
    struct index_record recs[sizeof over / sizeof *over];
    UNIT_EQ_INT(mailbox_store_records(mb, over, sizeof over / sizeof *over, &flag, NULL, NULL,
                                      recs), 0);
    UNIT_EQ_INT(mailbox_header(mb)->flagged, 5);
    /* the records handed back are the committed ones, repeats included */
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        UNIT_EQ_INT(recs[i].uid, over[i]);
        UNIT_EQ_INT(recs[i].modseq, hms + 1);
        UNIT_EQ_INT(mailbox_record(mb, over[i], &after), 1);
        UNIT_EQ_INT(recs[i].flags, after.flags);
    }
    /* unchanged ones come back with their old modseq; expunged and absent ones as uid 0 */
    uint32_t mixed[] = { 1, 10, N + 7 };
    UNIT_EQ_INT(mailbox_store_records(mb, mixed, 3, &flag, NULL, NULL, recs), 0);
    UNIT_EQ_INT(recs[0].uid, 1);
    UNIT_EQ_INT(recs[0].modseq, hms + 1);
    UNIT_EQ_INT(recs[1].uid, 0);
    UNIT_EQ_INT(recs[2].uid, 0);
    UNIT_EQ_INT(mailbox_header(mb)->highestmodseq, hms + 1);
    UNIT_EQ_INT(mailbox_sync(mb, 0, &ch), 0);
    mailbox_changes_fini(&ch);
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
out:
    free(msgs);
    free(all);
    mailbox_close(&mb);
}

/* ---- STORE in place and the view after it (mailbox-change.c) ---- */

/* sync_changed: mailbox_sync's changed uids as a bit set over 1..n; -1 on error. */
static int sync_changed(struct mailbox *mb, unsigned char *seen, uint32_t n)
{
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    memset(seen, 0, n + 1);
    int r = mailbox_sync(mb, 0, &ch);
    int k = r < 0 ? -1 : (int)ch.n_changed;
    for (size_t i = 0; r == 0 && i < ch.n_changed; i++)
        if (ch.changed_uids[i] <= n) seen[ch.changed_uids[i]] = 1;
    mailbox_changes_fini(&ch);
    return k;
}

/* Records are changed through the writable mapping: another handle (its own mapping) sees each
 * change at once; a refused commit puts every record back (two runs, one record in both); a
 * STORE that hands back its records (the caller reports them) leaves nothing for its own next
 * sync when its view held every commit before, and a commit by another handle in between makes
 * that sync report both. */
/* mailbox_store_hooked: the caller's step sees recs[0, done) as the commit will leave them,
 * every STORE_HOOK_STEP uids and once with all of them, before any record is changed (so
 * before the flag log's flush); a refused flush after it puts every record back. */
struct hook_seen {
    struct mailbox *mb;
    const uint32_t *uids;
    uint32_t flag;      /* the flag the store adds */
    size_t calls, last_done, bad;
    unsigned long flaglog_at_last;
};

static void hook_ready(void *arg, const struct index_record *recs, size_t done)
{
    struct hook_seen *h = arg;
    h->calls++;
    if (done <= h->last_done && h->calls > 1) h->bad++;   /* done only grows */
    for (size_t i = h->last_done; i < done; i++)
        if (recs[i].uid != h->uids[i] || !(recs[i].flags & h->flag)) h->bad++;
    h->last_done = done;
    h->flaglog_at_last = mailbox_sync_stats.flaglog;
    /* nothing is changed yet: another reader of the mapping sees the records as they were */
    struct index_record r;
    for (size_t i = 0; i < done; i++)
        if (mailbox_record(h->mb, h->uids[i], &r) != 1 || (r.flags & h->flag)) h->bad++;
}

static void test_store_hook(void)
{
    enum { N = 2 * STORE_HOOK_STEP + 100 };
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.storehook", id);
    struct mailbox *mb = NULL;
    static uint32_t all[N];
    static struct index_record recs[N];
    struct index_record r;
    for (uint32_t i = 0; i < N; i++) all[i] = i + 1;
    if (!open_ok(id, &mb)) goto out;
    mailbox_set_nofsync(mb, 1);   /* the appends quickly; the stores through the flag log */
    for (int i = 0; i < N; i++) UNIT_EQ_INT(append_one(mb, "sh", 0, NULL, NULL), 0);
    mailbox_set_nofsync(mb, 0);
    struct mailbox_store sseen = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    struct hook_seen h = { mb, all, FLAG_SEEN, 0, 0, 0, 0 };
    struct mailbox_store_hook hook = { hook_ready, &h };
    unsigned long flaglog0 = mailbox_sync_stats.flaglog;
    UNIT_EQ_INT(mailbox_store_hooked(mb, all, N, &sseen, NULL, NULL, recs, &hook), 0);
    UNIT_EQ_INT(h.calls, 3);              /* at 1,024 and 2,048 uids, then all */
    UNIT_EQ_INT(h.last_done, N);
    UNIT_EQ_INT(h.bad, 0);
    UNIT_EQ_INT(mailbox_record(mb, N, &r), 1);
    UNIT_CHECK((r.flags & FLAG_SEEN) != 0);   /* and after it, all changed */
    UNIT_EQ_INT(h.flaglog_at_last, flaglog0);              /* before the flush */
    UNIT_EQ_INT(mailbox_sync_stats.flaglog, flaglog0 + 1);  /* and the flush after it */
    /* refused: the step saw the change, the records are back as they were */
    struct mailbox_store sdel = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    memset(&h, 0, sizeof h);
    h.mb = mb;
    h.uids = all;
    h.flag = FLAG_DELETED;
    fail_points[0] = "flaglog_sync";
    mailbox_fault_hook = fail_sync;
    UNIT_EQ_INT(mailbox_store_hooked(mb, all, 10, &sdel, NULL, NULL, recs, &hook), CF_E_IO);
    mailbox_fault_hook = NULL;
    fail_points[0] = NULL;
    UNIT_EQ_INT(h.calls, 1);
    UNIT_EQ_INT(h.last_done, 10);
    UNIT_EQ_INT(h.bad, 0);
    for (uint32_t u = 1; u <= 10; u++) {
        UNIT_EQ_INT(mailbox_record(mb, u, &r), 1);
        UNIT_CHECK(!(r.flags & FLAG_DELETED) && (r.flags & FLAG_SEEN));
    }
out:
    mailbox_close(&mb);
}

static void test_store_view(void)
{
    enum { N = 80 };
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.storeview", id);
    struct mailbox *mb = NULL, *mb2 = NULL;
    uint32_t all[N];
    unsigned char seen[N + 1];
    struct index_record recs[N], r1, r2;
    for (uint32_t i = 0; i < N; i++) all[i] = i + 1;
    if (!open_ok(id, &mb) || !open_ok(id, &mb2)) goto out;
    for (int i = 0; i < N; i++) UNIT_EQ_INT(append_one(mb, "sv", 0, NULL, NULL), 0);
    UNIT_EQ_INT(sync_changed(mb, seen, N), 0);
    UNIT_EQ_INT(sync_changed(mb2, seen, N), 0);
    /* 1:* \Seen with its records handed back: none comes back from the sync */
    struct mailbox_store sseen = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store_records(mb, all, N, &sseen, NULL, NULL, recs), 0);
    uint64_t ms = mailbox_header(mb)->highestmodseq;
    UNIT_EQ_INT(sync_changed(mb, seen, N), 0);
    /* the other handle sees every record changed (through its own mapping) */
    UNIT_EQ_INT(sync_changed(mb2, seen, N), N);
    for (uint32_t u = 1; u <= N; u++) {
        UNIT_EQ_INT(mailbox_record(mb2, u, &r2), 1);
        UNIT_CHECK((r2.flags & FLAG_SEEN) != 0);
        UNIT_EQ_INT(r2.modseq, ms);
    }
    /* without records handed back the sync reports them, as before */
    struct mailbox_store sflag = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    uint32_t two[] = { 2, 3 };
    UNIT_EQ_INT(mailbox_store(mb, two, 2, &sflag, NULL, NULL), 0);
    UNIT_EQ_INT(sync_changed(mb, seen, N), 2);
    UNIT_CHECK(seen[2] && seen[3]);
    UNIT_EQ_INT(sync_changed(mb2, seen, N), 2);
    /* another handle's commit before ours: our sync reports both, ours included */
    uint32_t five = 5, seven = 7;
    UNIT_EQ_INT(mailbox_store(mb2, &five, 1, &sflag, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_store_records(mb, &seven, 1, &sflag, NULL, NULL, recs), 0);
    UNIT_EQ_INT(sync_changed(mb, seen, N), 2);
    UNIT_CHECK(seen[5] && seen[7]);
    UNIT_EQ_INT(sync_changed(mb2, seen, N), 2);   /* its own too: no records handed back */
    UNIT_CHECK(seen[5] && seen[7]);
    /* a refused commit: records 10:12 and 11 again after 20 (two runs, 11 in both) go back
     * to what they were, in this mapping and the other handle's; the view is as it was */
    struct index_record before[N];
    for (uint32_t u = 1; u <= N; u++) UNIT_EQ_INT(mailbox_record(mb, u, &before[u - 1]), 1);
    uint32_t over[] = { 10, 11, 12, 20, 11 };
    struct mailbox_store sdel = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    fail_points[0] = "flaglog_sync";
    mailbox_fault_hook = fail_sync;
    fprintf(stderr, "(mailbox_io_error log line expected)\n");
    UNIT_EQ_INT(mailbox_store_records(mb, over, 5, &sdel, NULL, NULL, recs), CF_E_IO);
    mailbox_fault_hook = NULL;
    fail_points[0] = NULL;
    for (uint32_t u = 1; u <= N; u++) {
        UNIT_EQ_INT(mailbox_record(mb, u, &r1), 1);
        UNIT_EQ_INT(mailbox_record(mb2, u, &r2), 1);
        UNIT_EQ_INT(r1.flags, before[u - 1].flags);
        UNIT_EQ_INT(r1.modseq, before[u - 1].modseq);
        UNIT_EQ_INT(r2.flags, before[u - 1].flags);
        UNIT_EQ_INT(r2.modseq, before[u - 1].modseq);
    }
    UNIT_EQ_INT(sync_changed(mb, seen, N), 0);
    UNIT_EQ_INT(sync_changed(mb2, seen, N), 0);
    UNIT_EQ_INT(check_counts(mb, NULL), 0);
    /* the same STORE again succeeds; the other handle sees 10, 11, 12 and 20 */
    UNIT_EQ_INT(mailbox_store_records(mb, over, 5, &sdel, NULL, NULL, recs), 0);
    UNIT_EQ_INT(sync_changed(mb, seen, N), 0);
    UNIT_EQ_INT(sync_changed(mb2, seen, N), 4);
    UNIT_CHECK(seen[10] && seen[11] && seen[12] && seen[20]);
    UNIT_EQ_INT(mailbox_header(mb2)->deleted, 4);
    /* EXPUNGE (in place too) reaches both */
    uint32_t count = 0;
    UNIT_EQ_INT(mailbox_expunge(mb, NULL, 0, &count), 0);
    UNIT_EQ_INT(count, 4);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(mb2, 0, &ch), 0);
    UNIT_EQ_INT(ch.n_expunged, 4);
    mailbox_changes_fini(&ch);
    UNIT_EQ_INT(check_counts(mb2, NULL), 0);
    /* a new open (a recount) agrees with what the handles saw */
    mailbox_close(&mb2);
    if (!open_ok(id, &mb2)) goto out;
    UNIT_EQ_INT(mailbox_header(mb2)->exists, N - 4);
    UNIT_EQ_INT(mailbox_header(mb2)->seen, N - 4);
    UNIT_EQ_INT(check_counts(mb2, NULL), 0);
out:
    mailbox_close(&mb);
    mailbox_close(&mb2);
}

/* ---- the flag change log (flaglog.h) ---- */

/* read_file_bytes / write_file_bytes: a whole file, for the power loss of test_flaglog. */
static char *read_file_bytes(const char *path, size_t *len_r)
{
    char *p = NULL;
    if (file_read_all(path, 1u << 26, &p, len_r) < 0) return NULL;
    return p;
}

static void write_file_bytes(const char *path, const char *p, size_t len)
{
    int fd = open(path, O_WRONLY);
    UNIT_CHECK(fd >= 0);
    if (fd < 0) return;
    UNIT_EQ_INT(pwrite(fd, p, len, 0), (ssize_t)len);
    close(fd);
}

/* snapshot: flags, keyword bits and modseq of every record uid 1..n (0 when absent). */
struct snap {
    uint32_t flags;
    uint64_t modseq;
    uint8_t kw[INDEX_MAX_KEYWORDS / 8];
};
static void snapshot(struct mailbox *mb, uint32_t n, struct snap *s)
{
    for (uint32_t u = 1; u <= n; u++) {
        struct index_record r;
        memset(&s[u - 1], 0, sizeof s[u - 1]);
        if (mailbox_record(mb, u, &r) != 1) continue;
        s[u - 1].flags = r.flags;
        s[u - 1].modseq = r.modseq;
        memcpy(s[u - 1].kw, r.user_flags, sizeof r.user_flags);
    }
}

static int snap_equal(const struct snap *a, const struct snap *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i].flags != b[i].flags || a[i].modseq != b[i].modseq ||
            memcmp(a[i].kw, b[i].kw, sizeof a[i].kw)) {
            fprintf(stderr, "uid %u: flags %#x/%#x modseq %llu/%llu\n", (unsigned)i + 1,
                    (unsigned)a[i].flags, (unsigned)b[i].flags, (unsigned long long)a[i].modseq,
                    (unsigned long long)b[i].modseq);
            return 0;
        }
    return 1;
}

/* STORE commits through the flag change log: one small flush of the log, none of the index.
 * A power loss that drops the index's record and header writes (simulated: the index file's
 * bytes as they were before the STOREs, another boot id) loses nothing acknowledged: the open
 * replays the log onto the records, recounts, and equals the state before the loss; so does
 * reconstruct. A STORE whose log flush fails is refused and never replayed; a full log makes
 * the STORE flush the index and the log start over; a kill at the log's points leaves a
 * consistent mailbox. */
/* synced_counts: check_counts after a sync of mb (its view and header brought up to date). */
static int synced_counts(struct mailbox *mb)
{
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    int r = mailbox_sync(mb, 0, &ch);
    mailbox_changes_fini(&ch);
    return r < 0 ? r : check_counts(mb, NULL);
}

static void test_flaglog(void)
{
    enum { N = 60 };
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.flaglog", id);
    struct mailbox *mb = NULL, *mb2 = NULL;
    char *dir = NULL, *ipath = NULL, *lpath = NULL, *old = NULL;
    size_t oldlen = 0;
    struct snap want[N], got[N];
    uint32_t all[N], odd[N / 2];
    for (uint32_t i = 0; i < N; i++) all[i] = i + 1;
    for (uint32_t i = 0; i < N / 2; i++) odd[i] = 2 * i + 1;
    if (!open_ok(id, &mb)) goto out;
    for (int i = 0; i < N; i++) UNIT_EQ_INT(append_one(mb, "fl", 0, NULL, NULL), 0);
    /* two keywords exist before the STOREs: a new keyword name goes to the index */
    const char *kw_ab[] = { "$a", "$b", NULL }, *kw_b[] = { "$b", NULL };
    struct mailbox_store mk = { STORE_ADD, 0, kw_ab, 0 };
    UNIT_EQ_INT(mailbox_store(mb, all, 1, &mk, NULL, NULL), 0);
    dir = partition_mailbox_dir(part1, id);
    ipath = xasprintf("%s/index", dir);
    lpath = xasprintf("%s/%s", dir, FLAGLOG_FILE);
    old = read_file_bytes(ipath, &oldlen);   /* the index as the disk last had it flushed */
    UNIT_CHECK(old != NULL);
    /* 1:* \Seen, the odd ones -\Seen +\Flagged, FLAGS ($b) on 7:12, 20 \Deleted */
    struct mailbox_sync_stats s0 = mailbox_sync_stats;
    struct mailbox_store seen = { STORE_ADD, FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, all, N, &seen, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_sync_stats.index - s0.index, 0);
    UNIT_EQ_INT(mailbox_sync_stats.flaglog - s0.flaglog, 1);
    UNIT_EQ_INT(mailbox_sync_stats.dir - s0.dir, 0);   /* the log came with the mailbox */
    struct stat st;
    UNIT_EQ_INT(stat(lpath, &st), 0);
    UNIT_EQ_INT(st.st_size, FLAGLOG_HEADER_SIZE + (off_t)flaglog_entry_size(1));   /* one range */
    struct mailbox_store unseen = { STORE_REMOVE, FLAG_SEEN, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, odd, N / 2, &unseen, NULL, NULL), 0);
    struct mailbox_store flag = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, odd, N / 2, &flag, NULL, NULL), 0);
    struct mailbox_store setb = { STORE_SET, FLAG_ANSWERED, kw_b, 0 };
    UNIT_EQ_INT(mailbox_store(mb, all + 6, 6, &setb, NULL, NULL), 0);
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, all + 19, 1, &del, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_sync_stats.index - s0.index, 0);
    UNIT_EQ_INT(mailbox_sync_stats.flaglog - s0.flaglog, 5);
    UNIT_EQ_INT(mailbox_sync_stats.dir - s0.dir, 0);
    UNIT_EQ_INT(synced_counts(mb), 0);
    snapshot(mb, N, want);
    struct index_header hwant = *mailbox_header(mb);
    /* a flush that fails: refused, and the log is cut back (not replayed below) */
    fail_points[0] = "flaglog_sync";
    mailbox_fault_hook = fail_sync;
    fprintf(stderr, "(mailbox_io_error log line expected)\n");
    struct mailbox_store ans = { STORE_ADD, FLAG_DRAFT, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, all, N, &ans, NULL, NULL), CF_E_IO);
    mailbox_fault_hook = NULL;
    fail_points[0] = NULL;
    snapshot(mb, N, got);
    UNIT_CHECK(snap_equal(got, want, N));
    mailbox_close(&mb);
    /* the power loss: none of the index writes since `old` reached the disk. STATUS (no open)
     * already counts the replayed changes */
    write_file_bytes(ipath, old, oldlen);
    fake_boot_byte = 0x6b;
    mailbox_boot_id_hook = fake_boot_id;
    struct index_header sh;
    UNIT_EQ_INT(mailbox_status(part1, id, &sh), 0);
    UNIT_EQ_INT(sh.seen, hwant.seen);
    UNIT_EQ_INT(sh.highestmodseq, hwant.highestmodseq);
    if (!open_ok(id, &mb)) goto out;
    snapshot(mb, N, got);
    UNIT_CHECK(snap_equal(got, want, N));
    UNIT_EQ_INT(synced_counts(mb), 0);
    UNIT_EQ_INT(mailbox_header(mb)->highestmodseq, hwant.highestmodseq);
    UNIT_EQ_INT(mailbox_header(mb)->seen, hwant.seen);
    UNIT_EQ_INT(mailbox_header(mb)->flagged, hwant.flagged);
    UNIT_EQ_INT(mailbox_header(mb)->answered, hwant.answered);
    UNIT_EQ_INT(mailbox_header(mb)->deleted, 1);
    /* the next STORE takes the next modseq: none is given twice */
    uint32_t two = 2;
    UNIT_EQ_INT(mailbox_store(mb, &two, 1, &flag, NULL, NULL), 0);
    struct index_record r;
    UNIT_EQ_INT(mailbox_record(mb, 2, &r), 1);
    UNIT_EQ_INT(r.modseq, hwant.highestmodseq + 1);
    snapshot(mb, N, want);
    mailbox_close(&mb);
    /* reconstruct replays it too (the same power loss once more, another boot) */
    write_file_bytes(ipath, old, oldlen);
    fake_boot_byte = 0x6c;
    {
        struct recon_report rep;
        recon_report_init(&rep);
        UNIT_CHECK(reconstruct_mailbox(part1, id, "user.alice.flaglog", NULL, 0, &rep) >= 0);
        recon_report_fini(&rep);
    }
    if (!open_ok(id, &mb)) goto out;
    snapshot(mb, N, got);
    for (uint32_t i = 0; i < N; i++) {   /* reconstruct gives new modseqs: compare flags */
        UNIT_EQ_INT(got[i].flags, want[i].flags);
        UNIT_CHECK(!memcmp(got[i].kw, want[i].kw, sizeof got[i].kw));
    }
    UNIT_EQ_INT(synced_counts(mb), 0);
    /* a full log: the STORE flushes the index and the log starts over */
    uint32_t saved_max = flaglog_max;
    flaglog_max = FLAGLOG_HEADER_SIZE + 3 * (uint32_t)flaglog_entry_size(1);
    s0 = mailbox_sync_stats;
    /* (the log holds the entries from before: the first goes to the index, three fit, the
     * fifth finds the log full again) */
    for (int i = 0; i < 5; i++) {
        struct mailbox_store t = { i % 2 ? STORE_REMOVE : STORE_ADD, FLAG_ANSWERED, NULL, 0 };
        UNIT_EQ_INT(mailbox_store(mb, all, N, &t, NULL, NULL), 0);
    }
    UNIT_EQ_INT(mailbox_sync_stats.flaglog - s0.flaglog, 3);
    UNIT_EQ_INT(mailbox_sync_stats.index - s0.index, 2);
    UNIT_EQ_INT(stat(lpath, &st), 0);
    UNIT_EQ_INT(st.st_size, FLAGLOG_HEADER_SIZE);
    struct mailbox_store answered = { STORE_ADD, FLAG_ANSWERED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(mb, all, N, &answered, NULL, NULL), 0);   /* nothing changes */
    UNIT_EQ_INT(mailbox_store(mb, all, N, &ans, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_sync_stats.flaglog - s0.flaglog, 4);
    UNIT_EQ_INT(mailbox_sync_stats.index - s0.index, 2);
    flaglog_max = saved_max;
    UNIT_EQ_INT(synced_counts(mb), 0);
    /* killed after the entry is written, and after its flush: a consistent mailbox; another
     * session sees the change once it is flushed (it was in the page cache all along) */
    if (!open_ok(id, &mb2)) goto out;
    struct mailbox_store drop = { STORE_REMOVE, FLAG_DRAFT, NULL, 0 };
    UNIT_CHECK(crash_in_child(id, all, N, &drop, "flaglog", 1));
    UNIT_EQ_INT(synced_counts(mb2), 0);
    struct mailbox_store ans2 = { STORE_ADD, FLAG_DRAFT, NULL, 0 };
    UNIT_CHECK(crash_in_child(id, all, N, &ans2, "flaglog_sync", 1));
    UNIT_EQ_INT(synced_counts(mb2), 0);
    mailbox_close(&mb);
    if (!open_ok(id, &mb)) goto out;
    UNIT_EQ_INT(synced_counts(mb), 0);
out:
    mailbox_boot_id_hook = NULL;
    mailbox_close(&mb);
    mailbox_close(&mb2);
    free(old);
    free(lpath);
    free(ipath);
    free(dir);
}

static void sync_view(struct mailbox *mb)
{
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(mb, 0, &ch), 0);
    mailbox_changes_fini(&ch);
}

/* \Recent claims through a handle keep the "recent" file open between claims; each uid is
 * claimed once; a removed file is noticed by every handle that kept the old one. */
static void test_recent_kept(void)
{
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.recent", id);
    struct mailbox *a, *b;
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &a), 0);
    UNIT_EQ_INT(mailbox_open(part1, id, NULL, &b), 0);
    uint32_t first = 0, end = 0, uid = 0;
    /* EXAMINE before any claim: everything unclaimed, no file made */
    UNIT_EQ_INT(mailbox_claim_recent(a, 0, &first, &end), 0);
    UNIT_EQ_INT(first, 1);
    struct mailbox_recent_stats s0 = mailbox_recent_stats;
    uint64_t col_opens = uidcol_stats.commit_opens;
    UNIT_EQ_INT(append_one(b, "r1", 0, NULL, &uid), 0);
    sync_view(a);
    UNIT_EQ_INT(mailbox_claim_recent(a, 1, &first, &end), 0);
    UNIT_EQ_INT(first, 1);
    UNIT_EQ_INT(end, 2);
    UNIT_EQ_INT(mailbox_recent_stats.opens - s0.opens, 1);
    for (int i = 0; i < 5; i++) {
        UNIT_EQ_INT(append_one(b, "rn", 0, NULL, &uid), 0);
        sync_view(a);
        UNIT_EQ_INT(mailbox_claim_recent(a, 1, &first, &end), 0);
        UNIT_EQ_INT(first, uid);
        UNIT_EQ_INT(end, uid + 1);
    }
    UNIT_EQ_INT(mailbox_recent_stats.opens - s0.opens, 1);   /* kept open */
    /* and no commit looked for the uid column of this small mailbox */
    UNIT_EQ_INT(uidcol_stats.commit_opens - col_opens, 0);
    /* the other handle: everything it sees was claimed already */
    sync_view(b);
    UNIT_EQ_INT(mailbox_claim_recent(b, 1, &first, &end), 0);
    UNIT_EQ_INT(first, end);
    UNIT_EQ_INT(mailbox_recent_stats.opens - s0.opens, 2);
    /* a new message goes to whichever claims first, once */
    UNIT_EQ_INT(append_one(a, "rx", 0, NULL, &uid), 0);
    sync_view(a);
    sync_view(b);
    UNIT_EQ_INT(mailbox_claim_recent(b, 1, &first, &end), 0);
    UNIT_EQ_INT(first, uid);
    UNIT_EQ_INT(end, uid + 1);
    UNIT_EQ_INT(mailbox_claim_recent(a, 1, &first, &end), 0);
    UNIT_EQ_INT(first, end);
    UNIT_EQ_INT(mailbox_recent_stats.opens - s0.opens, 2);
    /* the file removed: a reopens (a fresh file: everything is unclaimed again), and b,
     * whose kept descriptor names the removed file, sees a's new mark, not its old one */
    char *rpath = xasprintf("%s/recent", mailbox_dir(a));
    UNIT_EQ_INT(unlink(rpath), 0);
    UNIT_EQ_INT(append_one(a, "ry", 0, NULL, &uid), 0);
    sync_view(a);
    sync_view(b);
    UNIT_EQ_INT(mailbox_claim_recent(a, 1, &first, &end), 0);
    UNIT_EQ_INT(first, 1);
    UNIT_EQ_INT(end, uid + 1);
    UNIT_EQ_INT(mailbox_claim_recent(b, 1, &first, &end), 0);
    UNIT_EQ_INT(first, end);
    UNIT_EQ_INT(end, uid + 1);
    UNIT_EQ_INT(mailbox_recent_stats.opens - s0.opens, 4);
    /* replaced by a rename over it (as a restore would): both read the new file's mark */
    char *tpath = xasprintf("%s/recent.new", mailbox_dir(a));
    int fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    UNIT_CHECK(fd >= 0 && write(fd, "0000000003\n", 11) == 11);
    close(fd);
    UNIT_EQ_INT(rename(tpath, rpath), 0);
    UNIT_EQ_INT(mailbox_claim_recent(b, 1, &first, &end), 0);
    UNIT_EQ_INT(first, 3);
    UNIT_EQ_INT(end, uid + 1);
    UNIT_EQ_INT(mailbox_claim_recent(a, 1, &first, &end), 0);
    UNIT_EQ_INT(first, end);
    UNIT_EQ_INT(mailbox_recent_stats.opens - s0.opens, 6);
    /* nothing new since the last claim: no write lock is taken, so a claim (a SELECT or a
     * sync) does not wait for another session's read (would block here, ended by alarm) */
    UNIT_EQ_INT(mailbox_lock_shared(b), 0);
    alarm(10);
    UNIT_EQ_INT(mailbox_claim_recent(a, 1, &first, &end), 0);
    UNIT_EQ_INT(first, end);
    alarm(0);
    mailbox_unlock(b);
    free(tpath);
    free(rpath);
    mailbox_close(&a);
    mailbox_close(&b);
}

/* fresh_from_column: a new session's view comes from the uid column's summary as b's is, and
 * neither file had to be made again from the records (they were kept up to date). */
static void fresh_from_column(const char *id, struct mailbox *b)
{
    uint64_t rebuilt = uidcol_stats.rebuilds, sums = uidcol_stats.sum_rebuilds,
             loads = uidcol_stats.sum_loads;
    struct mailbox *c = NULL;
    if (!open_ok(id, &c)) return;
    UNIT_EQ_INT(uidcol_stats.rebuilds, rebuilt);
    UNIT_EQ_INT(uidcol_stats.sum_rebuilds, sums);
    UNIT_CHECK(uidcol_stats.sum_loads > loads);
    UNIT_CHECK(mailbox_view_lazy(c));
    lazy_matches(c, b);
    mailbox_close(&c);
}

/* The uid column and its summary stay open on a handle between its commits and syncs (one
 * stat a lock instead of opens and header reads), and the sync after the session's own
 * APPEND is answered from its own changes. Every way another process changes the files is
 * followed: another handle's append, expunge and repack in between, a reconstruct that
 * removes them, the files removed, and a rebuild renamed in. */
static void test_kept_column(void)
{
    enum { N = 2100 };
    char id[UNIQUEID_LEN + 1];
    new_mailbox(part1, "user.alice.keptcol", id);
    struct mailbox *w = NULL, *a = NULL, *b = NULL, *c = NULL;
    static const char body[] = "Subject: kept\r\n\r\nbody\r\n";
    uint32_t min = uidcol_min_records, uid = 0;
    char *colp = NULL, *sump = NULL;
    uidcol_min_records = 0;
    if (!open_ok(id, &w)) goto out;
    mailbox_set_nofsync(w, 1);
    UNIT_EQ_INT(append_many(w, body, N, 1000), 0);
    if (!open_ok(id, &c)) goto out;   /* writes column and summary */
    mailbox_close(&c);
    if (!open_ok(id, &a)) goto out;
    mailbox_set_nofsync(a, 1);
    UNIT_CHECK(mailbox_view_lazy(a));
    uidcol_min_records = UINT32_MAX;
    int r = mailbox_open(part1, id, NULL, &b);   /* the reference: an array from the records */
    uidcol_min_records = 0;
    UNIT_EQ_INT(r, 0);
    if (r < 0) goto out;
    colp = xasprintf("%s/%s", mailbox_dir(a), UIDCOL_FILE);
    sump = xasprintf("%s/%s", mailbox_dir(a), UIDSUM_FILE);
    /* 1. appends through a, each followed by its sync: the files are not opened again (the
     * open kept them), each commit brings them forward, and no sync reads the summary */
    uint64_t opens = uidcol_stats.commit_opens, sums = uidcol_stats.sum_loads,
             own = uidcol_stats.own, updates = uidcol_stats.updates,
             fopens = uidcol_stats.file_opens, deltas = uidcol_stats.sum_deltas,
             kept = uidcol_stats.sum_entry_kept;
    for (int i = 0; i < 6; i++) {
        UNIT_EQ_INT(append_one(a, "k1", i & 1 ? FLAG_SEEN : 0, NULL, &uid), 0);
        sync_both(a, b, 0);
    }
    UNIT_EQ_INT(uidcol_stats.commit_opens - opens, 0);
    UNIT_EQ_INT(uidcol_stats.file_opens - fopens, 0);
    /* each summary entry brought forward from the added record, no column block read */
    UNIT_EQ_INT(uidcol_stats.sum_deltas - deltas, 6);
    /* ... from the entry the handle's previous commit wrote, after the first */
    UNIT_EQ_INT(uidcol_stats.sum_entry_kept - kept, 5);
    UNIT_EQ_INT(uidcol_stats.updates - updates, 6);
    UNIT_EQ_INT(uidcol_stats.sum_loads, sums);
    UNIT_CHECK(uidcol_stats.own >= own + 6);
    lazy_matches(a, b);
    /* CHANGEDSINCE after the own appends: the new messages are found */
    struct mailbox_modseq_scan sc;
    uint64_t before = mailbox_header(a)->highestmodseq;
    UNIT_EQ_INT(append_one(a, "k2", 0, NULL, &uid), 0);
    UNIT_EQ_INT(mailbox_modseq_scan(a, before, &sc), 0);
    UNIT_EQ_INT(sc.n_changed, 1);
    UNIT_CHECK(sc.n_changed == 1 && sc.changed[0] == uid);
    mailbox_modseq_scan_fini(&sc);
    sync_both(a, b, 0);
    fresh_from_column(id, b);
    /* 2. another handle appends in between: a's next commit reads the headers again (not
     * its own header any more) and keeps both files right; its sync reports w's message */
    uint64_t rebuilt = uidcol_stats.rebuilds, sumsmade = uidcol_stats.sum_rebuilds;
    UNIT_EQ_INT(append_one(w, "other", 0, NULL, NULL), 0);
    UNIT_EQ_INT(append_one(a, "k3", 0, NULL, &uid), 0);
    sync_both(a, b, 0);
    lazy_matches(a, b);
    fresh_from_column(id, b);
    /* (nothing found wrong and made again on the way, by a's sync either) */
    UNIT_EQ_INT(uidcol_stats.rebuilds, rebuilt);
    UNIT_EQ_INT(uidcol_stats.sum_rebuilds, sumsmade);
    /* 3. another handle expunges in between (and a STORE): seen by a's next sync */
    uint32_t gone[] = { 5, 1500, uid }, flag[] = { 700 };
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    struct mailbox_store ss = { STORE_ADD, FLAG_SEEN | FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(w, gone, 3, &sd, NULL, NULL), 0);
    UNIT_EQ_INT(mailbox_expunge(w, gone, 3, NULL), 0);
    UNIT_EQ_INT(mailbox_store(w, flag, 1, &ss, NULL, NULL), 0);
    UNIT_EQ_INT(append_one(a, "k4", 0, NULL, &uid), 0);
    sync_both(a, b, 0);
    lazy_matches(a, b);
    UNIT_EQ_INT(mailbox_msgno(a, 1500), 0);
    fresh_from_column(id, b);
    UNIT_EQ_INT(uidcol_stats.rebuilds, rebuilt);
    UNIT_EQ_INT(uidcol_stats.sum_rebuilds, sumsmade);
    /* 4. a repack by another handle: the next open makes both files again (renamed in);
     * a's kept descriptors name the old ones, so its next commit opens the new column */
    UNIT_EQ_INT(mailbox_repack(w), 0);
    if (!open_ok(id, &c)) goto out;
    mailbox_close(&c);
    fopens = uidcol_stats.file_opens;
    updates = uidcol_stats.updates;
    UNIT_EQ_INT(append_one(a, "k5", 0, NULL, &uid), 0);
    UNIT_CHECK(uidcol_stats.file_opens > fopens);
    UNIT_EQ_INT(uidcol_stats.updates - updates, 1);
    sync_both(a, b, 0);
    lazy_matches(a, b);
    fresh_from_column(id, b);
    /* 5. a rebuild renamed in by another session (a fresh open after the files were found
     * naming another commit): followed the same way */
    {
        struct stat st0, st1;
        UNIT_EQ_INT(stat(colp, &st0), 0);
        UNIT_EQ_INT(unlink(sump), 0);
        UNIT_EQ_INT(unlink(colp), 0);
        if (!open_ok(id, &c)) goto out;   /* rebuilds both */
        mailbox_close(&c);
        UNIT_EQ_INT(stat(colp, &st1), 0);
        UNIT_CHECK(st0.st_ino != st1.st_ino);
        fopens = uidcol_stats.file_opens;
        updates = uidcol_stats.updates;
        UNIT_EQ_INT(append_one(a, "k6", 0, NULL, &uid), 0);
        UNIT_CHECK(uidcol_stats.file_opens > fopens);
        UNIT_EQ_INT(uidcol_stats.updates - updates, 1);
        sync_both(a, b, 0);
        fresh_from_column(id, b);
    }
    /* 6. the files removed: a's commits and syncs do not use the removed ones (nothing is
     * written into them), and the next open makes new ones from the records */
    UNIT_EQ_INT(unlink(colp), 0);
    UNIT_EQ_INT(unlink(sump), 0);
    UNIT_EQ_INT(append_one(a, "k7", 0, NULL, &uid), 0);
    UNIT_EQ_INT(append_one(w, "other2", 0, NULL, NULL), 0);
    sync_both(a, b, 0);
    lazy_matches(a, b);
    UNIT_CHECK(access(colp, F_OK) < 0 && errno == ENOENT);
    {
        uint64_t rebuilt6 = uidcol_stats.rebuilds;
        if (!open_ok(id, &c)) goto out;
        UNIT_EQ_INT(uidcol_stats.rebuilds - rebuilt6, 1);
        mailbox_close(&c);
    }
    UNIT_EQ_INT(append_one(a, "k8", 0, NULL, &uid), 0);
    sync_both(a, b, 0);
    fresh_from_column(id, b);
    /* 7. reconstruct rewrites the index (a message file lost) and removes the files */
    {
        char *f = xasprintf("%s/%u.", mailbox_dir(a), 10u);
        UNIT_EQ_INT(unlink(f), 0);
        free(f);
        struct recon_report rep;
        recon_report_init(&rep);
        UNIT_CHECK(reconstruct_mailbox(part1, id, "user.alice.keptcol", NULL, 0, &rep) > 0);
        recon_report_fini(&rep);
        UNIT_CHECK(access(colp, F_OK) < 0);
        UNIT_EQ_INT(append_one(a, "k9", 0, NULL, &uid), 0);
        sync_both(a, b, 0);
        lazy_matches(a, b);
        UNIT_EQ_INT(mailbox_msgno(a, 10), 0);
        if (!open_ok(id, &c)) goto out;   /* makes both again */
        mailbox_close(&c);
        UNIT_EQ_INT(append_one(a, "k10", 0, NULL, &uid), 0);
        sync_both(a, b, 0);
        fresh_from_column(id, b);
    }
out:
    uidcol_min_records = min;
    free(colp);
    free(sump);
    mailbox_close(&a);
    mailbox_close(&b);
    mailbox_close(&c);
    mailbox_close(&w);
}

int main(void)
{
    log_init("test-mailbox", 1, LOG_LVL_WARNING);
    if (!mkdtemp(tmpdir)) return 2;
    part1 = xasprintf("%s/part1", tmpdir);
    part2 = xasprintf("%s/part2", tmpdir);
    UNIT_EQ_INT(partition_prepare(part1), 0);
    UNIT_EQ_INT(partition_prepare(part2), 0);
    test_partition_select();
    test_create_open();
    test_create_dirs();
    test_append_read();
    test_store_expunge();
    test_modseq_scan();
    test_delayed_expunge();
    test_copy();
    test_savedate_preview_threadid();
    test_orphan_corrupt();
    test_delete_rename();
    test_concurrent_append();
    test_group_commit();
    test_reader_sync();
    test_crash_mid_commit();
    test_failed_commit();
    test_big_cache_record();
    test_verified_reuse();
    test_big_view();
    test_uidcol();
    test_incremental_sync();
    test_lazy_view();
    test_own_changes();
    test_open_target();
    test_uidcol_created_by_commit();
    test_store_batched();
    test_store_view();
    test_store_hook();
    test_flaglog();
    test_recent_kept();
    test_kept_column();
    if (!unit_failed) rm_rf(tmpdir);
    else fprintf(stderr, "left %s for inspection\n", tmpdir);
    free(part1);
    free(part2);
    UNIT_DONE();
}
