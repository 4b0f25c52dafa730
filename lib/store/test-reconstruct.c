/* test-reconstruct.c: reconstruct.c over real mailbox directories and a real Berkeley DB:
 * damaged, truncated and missing indexes, orphan and missing message files, damaged caches,
 * a lost mailbox list and interrupted deletes. */
#include "store/store-int.h"
#include "store/reconstruct.h"
#include "store/uidcol.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/coffer-recontest-XXXXXX";

/* The messages every case starts from: uid i+1 gets flags[i] and keyword kw[i] (or none). */
#define NMSG 5
static const uint32_t msg_flags[NMSG] = { FLAG_SEEN, FLAG_SEEN | FLAG_FLAGGED, 0, FLAG_ANSWERED, FLAG_DRAFT };
static const char *msg_kw[NMSG] = { "$Label1", NULL, "Work", "$Label1", NULL };

static char *msg_text(int i)
{
    return xasprintf("From: a%d@example.org\r\nDate: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
                     "Subject: message %d\r\n\r\nbody %d\r\n", i, i, i);
}

/* fill: a fresh mailbox with NMSG messages; uid 3 is then expunged (FLAG_DELETED + expunge)
 * unless keep3 is set. */
static void fill(const char *part, const char *uniqueid, int keep3)
{
    UNIT_EQ_INT(mailbox_create(part, "user/fred", uniqueid, "fred\tlrswipkxtea\t", 1234), 0);
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part, uniqueid, "user/fred", &mb), 0);
    mailbox_set_nofsync(mb, 1);
    for (int i = 0; i < NMSG; i++) {
        char *t = msg_text(i + 1);
        const char *kws[2] = { msg_kw[i], NULL };
        struct mailbox_msg m = { t, strlen(t), -1, 1000000 + i, msg_flags[i], kws, 0 };
        UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
        UNIT_EQ_INT(m.uid, i + 1);
        free(t);
    }
    if (!keep3) {
        uint32_t u = 3;
        struct mailbox_store s = { STORE_ADD, FLAG_DELETED, NULL, 0 };
        UNIT_EQ_INT(mailbox_store(mb, &u, 1, &s, NULL, NULL), 0);
        UNIT_EQ_INT(mailbox_expunge(mb, &u, 1, NULL), 0);
    }
    mailbox_close(&mb);
}

/* verify: the mailbox opens, holds exactly the uids in want (0-terminated), each with its
 * original flags and keyword unless flags_lost names it, and the right bytes. */
static void verify(const char *part, const char *uniqueid, const uint32_t *want, uint32_t flags_lost)
{
    struct mailbox *mb;
    UNIT_EQ_INT(mailbox_open(part, uniqueid, "user/fred", &mb), 0);
    if (!mb) return;
    size_t n = 0;
    while (want[n]) n++;
    UNIT_EQ_INT(mailbox_count(mb), n);
    UNIT_EQ_INT(mailbox_header(mb)->uidvalidity, 1234);
    for (size_t i = 0; i < n && i < mailbox_count(mb); i++) {
        uint32_t uid = want[i];
        UNIT_EQ_INT(mailbox_uid(mb, (uint32_t)i + 1), uid);
        struct index_record r;
        UNIT_EQ_INT(mailbox_record(mb, uid, &r), 1);
        int lost = uid == flags_lost;
        UNIT_EQ_INT(r.flags, lost ? 0 : msg_flags[uid - 1]);
        if (!lost) UNIT_EQ_INT(r.internaldate, 1000000 + (int64_t)uid - 1);
        /* a kept record keeps its save date, an adopted file gets its mtime (RFC 8514) */
        UNIT_CHECK(r.savedate > 0);
        UNIT_CHECK(r.threadid != 0);
        const struct strarr *kw = mailbox_keywords(mb);
        int has = 0;
        for (size_t k = 0; k < kw->count; k++)
            if (index_user_flag_get(&r, (unsigned)k) && msg_kw[uid - 1] && !strcmp(kw->v[k], msg_kw[uid - 1]))
                has = 1;
        UNIT_EQ_INT(has, !lost && msg_kw[uid - 1] != NULL);
        const char *p;
        size_t len;
        UNIT_EQ_INT(mailbox_message_map(mb, uid, &p, &len), 0);
        char *t = msg_text((int)uid);
        UNIT_CHECK(len == strlen(t) && !memcmp(p, t, len));
        UNIT_EQ_INT(r.size, len);
        free(t);
        mailbox_message_unmap(p, len);
        struct cache_entry ce;
        cache_entry_init(&ce);
        UNIT_EQ_INT(mailbox_cache_fetch(mb, uid, &ce), 0);
        UNIT_CHECK(ce.present[CACHE_ENVELOPE] && strstr(buf_cstr(&ce.f[CACHE_ENVELOPE]), "message"));
        cache_entry_fini(&ce);
    }
    mailbox_close(&mb);
}

/* clean: a dry run finds nothing. */
static int clean(const char *part, const char *uniqueid)
{
    struct recon_report rep;
    recon_report_init(&rep);
    int r = reconstruct_mailbox(part, uniqueid, "user/fred", "fred\tlrswipkxtea\t", RECON_DRY_RUN, &rep);
    recon_report_fini(&rep);
    return r;
}

/* fix: reconstruct for real; returns the number of findings and checks that one code is among
 * them (NULL: none expected). */
static int fix(const char *part, const char *uniqueid, const char *expect)
{
    struct recon_report rep;
    recon_report_init(&rep);
    int r = reconstruct_mailbox(part, uniqueid, "user/fred", "fred\tlrswipkxtea\t", 0, &rep);
    if (expect) UNIT_CHECK(strarr_find(&rep.what, expect) >= 0);
    if (expect && strarr_find(&rep.what, expect) < 0)
        for (size_t i = 0; i < rep.what.count; i++)
            fprintf(stderr, "  finding: %s %s\n", rep.what.v[i], rep.detail.v[i]);
    recon_report_fini(&rep);
    return r;
}

static char *path_in(const char *part, const char *uniqueid, const char *file)
{
    char *d = partition_mailbox_dir(part, uniqueid);
    char *p = xasprintf("%s/%s", d, file);
    free(d);
    return p;
}

static void flip(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c = 0;
    UNIT_EQ_INT(pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    UNIT_EQ_INT(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static off_t file_size(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 ? sb.st_size : -1;
}

int main(void)
{
    log_init("test-reconstruct", 1, LOG_LVL_ERR);
    if (!mkdtemp(dir)) return 2;
    char *part = xasprintf("%s/p1", dir);
    mkdir_p(part, 0700);
    static const uint32_t all4[] = { 1, 2, 4, 5, 0 };
    char uid[UNIQUEID_LEN + 1];

    /* 1. a healthy mailbox: nothing found, nothing written */
    partition_new_uniqueid(uid);
    fill(part, uid, 0);
    UNIT_EQ_INT(clean(part, uid), 0);
    char *ip = path_in(part, uid, "index");
    struct stat before, after;
    stat(ip, &before);
    UNIT_EQ_INT(fix(part, uid, NULL), 0);
    stat(ip, &after);
    UNIT_EQ_INT(after.st_ino, before.st_ino);
    /* the expunged message's file left behind by a crash is removed */
    char *p3 = path_in(part, uid, "3.");
    file_write_atomic(p3, "x", 1, 0600);
    UNIT_CHECK(clean(part, uid) > 0);
    UNIT_CHECK(fix(part, uid, "expunged_file") > 0);
    UNIT_EQ_INT(file_size(p3), -1);
    verify(part, uid, all4, 0);
    free(p3);

    /* 2. truncated index: the last record is cut. The uid column (derived from the index
     * it no longer equals) goes with the rewrite */
    off_t sz = file_size(ip);
    UNIT_EQ_INT(truncate(ip, sz - 64), 0);
    char *colp = path_in(part, uid, UIDCOL_FILE);
    file_write_atomic(colp, "column", 6, 0600);
    UNIT_CHECK(clean(part, uid) > 0);
    UNIT_EQ_INT(file_size(colp), 6);   /* a dry run writes nothing */
    UNIT_CHECK(fix(part, uid, "index_damaged") > 0);
    UNIT_EQ_INT(file_size(colp), -1);
    free(colp);
    verify(part, uid, all4, 5);  /* uid 5's record was cut: adopted without its flags */
    UNIT_EQ_INT(clean(part, uid), 0);
    free(ip);

    /* 3. both header slots flipped: every record survives with its flags */
    partition_new_uniqueid(uid);
    fill(part, uid, 0);
    ip = path_in(part, uid, "index");
    flip(ip, INDEX_SLOT0_OFFSET + 20);
    flip(ip, INDEX_SLOT1_OFFSET + 20);
    UNIT_CHECK(clean(part, uid) > 0);
    UNIT_CHECK(fix(part, uid, "index_damaged") > 0);
    verify(part, uid, all4, 0);
    UNIT_EQ_INT(clean(part, uid), 0);

    /* 4. a flipped record: that message is adopted again, the rest keeps everything */
    flip(ip, (off_t)index_record_offset(1) + 30);
    UNIT_CHECK(fix(part, uid, "record_corrupt") > 0);
    verify(part, uid, all4, 2);
    UNIT_EQ_INT(clean(part, uid), 0);
    free(ip);

    /* 5. index deleted: messages come back with their uids and the uidvalidity of the header */
    partition_new_uniqueid(uid);
    fill(part, uid, 1);
    ip = path_in(part, uid, "index");
    unlink(ip);
    UNIT_CHECK(fix(part, uid, "index_missing") > 0);
    {
        struct mailbox *mb;
        UNIT_EQ_INT(mailbox_open(part, uid, "user/fred", &mb), 0);
        UNIT_EQ_INT(mailbox_count(mb), NMSG);
        UNIT_EQ_INT(mailbox_header(mb)->uidvalidity, 1234);
        UNIT_EQ_INT(mailbox_header(mb)->uidnext, NMSG + 1);
        /* new appends continue above */
        struct mailbox_msg m = { "x\r\n\r\ny\r\n", 8, -1, 0, 0, NULL, 0 };
        UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
        UNIT_EQ_INT(m.uid, NMSG + 1);
        mailbox_close(&mb);
    }
    UNIT_EQ_INT(clean(part, uid), 0);
    free(ip);

    /* 6. a file above uidnext (an append killed before its commit: never acknowledged) and a
     * missing file, plus a damaged cache: the file is not adopted (that would duplicate a
     * message the MTA delivers again) nor reported by a dry run; reconstruct removes it */
    partition_new_uniqueid(uid);
    fill(part, uid, 0);
    char *p9 = path_in(part, uid, "9.");
    char *t9 = msg_text(9);
    file_write_atomic(p9, t9, strlen(t9), 0600);
    char *p4 = path_in(part, uid, "4.");
    unlink(p4);
    char *cp = path_in(part, uid, "cache");
    flip(cp, CACHE_HEADER_SIZE + 10);
    UNIT_EQ_INT(clean(part, uid), 2);   /* dropped, cache */
    UNIT_EQ_INT(fix(part, uid, "record_dropped"), 2);
    UNIT_CHECK(access(p9, F_OK) < 0);
    {
        struct mailbox *mb;
        UNIT_EQ_INT(mailbox_open(part, uid, "user/fred", &mb), 0);
        UNIT_EQ_INT(mailbox_count(mb), 3);
        UNIT_EQ_INT(mailbox_uid(mb, 3), 5);
        UNIT_EQ_INT(mailbox_header(mb)->uidnext, 6);
        struct index_record r;
        UNIT_EQ_INT(mailbox_record(mb, 9, &r), 0);
        uint64_t want = 0;
        for (uint32_t u = 1; u <= 9; u++) {
            struct index_record r2;
            if (mailbox_record(mb, u, &r2) == 1 && !(r2.flags & FLAG_EXPUNGED)) want += r2.size;
        }
        UNIT_EQ_INT(mailbox_header(mb)->quota_used, want);
        UNIT_EQ_INT(mailbox_header(mb)->exists, 3);
        mailbox_close(&mb);
    }
    UNIT_EQ_INT(clean(part, uid), 0);
    /* the mailbox's next writer skips such a file at uidnext and removes it; one further up
     * stays (ignored by the check) until a commit reaches it or reconstruct runs */
    file_write_atomic(p9, t9, strlen(t9), 0600);
    char *p6 = path_in(part, uid, "6.");
    file_write_atomic(p6, t9, strlen(t9), 0600);
    {
        struct mailbox *mb;
        UNIT_EQ_INT(mailbox_open(part, uid, "user/fred", &mb), 0);
        struct mailbox_msg m = { "x\r\n\r\ny\r\n", 8, -1, 0, 0, NULL, 0 };
        UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
        UNIT_EQ_INT(m.uid, 7);
        mailbox_close(&mb);
    }
    UNIT_CHECK(access(p6, F_OK) < 0);
    UNIT_EQ_INT(clean(part, uid), 0);
    free(p6);
    free(p9);
    free(t9);
    free(p4);
    free(cp);

    /* 7. header file lost: rewritten from the name given */
    char *hp = path_in(part, uid, "header");
    unlink(hp);
    UNIT_CHECK(fix(part, uid, "header_missing") > 0);
    struct mbheader h;
    mbheader_init(&h);
    char *d = partition_mailbox_dir(part, uid);
    UNIT_EQ_INT(mbheader_read(d, &h), 0);
    UNIT_EQ_STR(h.name, "user/fred");
    UNIT_EQ_INT(h.uidvalidity, 1234);
    mbheader_fini(&h);
    free(d);
    free(hp);
    UNIT_EQ_INT(clean(part, uid), 0);

    /* 8. import: files with chosen uids, flags and keywords become the mailbox (restore) */
    {
        partition_new_uniqueid(uid);
        UNIT_EQ_INT(mailbox_create(part, "user/imp", uid, "", 0), 0);
        int lfd;
        UNIT_EQ_INT(reconstruct_lock(part, uid, &lfd), 0);
        char *f3 = path_in(part, uid, "3."), *f7 = path_in(part, uid, "7.");
        char *t3 = msg_text(3), *t7 = msg_text(7);
        file_write_atomic(f3, t3, strlen(t3), 0600);
        file_write_atomic(f7, t7, strlen(t7), 0600);
        const char *kw7[] = { "Work", "$Junk", NULL };
        struct recon_import im[2] = { { 7, FLAG_SEEN | FLAG_FLAGGED, 777, kw7, 4 },
                                      { 3, FLAG_ANSWERED, 333, NULL, 0 } };
        UNIT_EQ_INT(reconstruct_import(part, uid, 4242, 20, 9, im, 2), 0);
        close(lfd);
        struct mailbox *mb;
        UNIT_EQ_INT(mailbox_open(part, uid, "user/imp", &mb), 0);
        UNIT_EQ_INT(mailbox_count(mb), 2);
        UNIT_EQ_INT(mailbox_uid(mb, 1), 3);
        UNIT_EQ_INT(mailbox_uid(mb, 2), 7);
        UNIT_EQ_INT(mailbox_header(mb)->uidvalidity, 4242);
        UNIT_EQ_INT(mailbox_header(mb)->uidnext, 20);
        UNIT_EQ_INT(mailbox_header(mb)->highestmodseq, 9);
        struct index_record r;
        UNIT_EQ_INT(mailbox_record(mb, 7, &r), 1);
        UNIT_EQ_INT(r.flags, FLAG_SEEN | FLAG_FLAGGED);
        UNIT_EQ_INT(r.internaldate, 777);
        UNIT_EQ_INT(r.modseq, 4);
        UNIT_EQ_INT(r.size, strlen(t7));
        const struct strarr *kw = mailbox_keywords(mb);
        UNIT_EQ_INT(kw->count, 2);
        UNIT_CHECK(index_user_flag_get(&r, 0) && index_user_flag_get(&r, 1));
        UNIT_EQ_INT(mailbox_record(mb, 3, &r), 1);
        UNIT_EQ_INT(r.flags, FLAG_ANSWERED);
        UNIT_EQ_INT(r.modseq, 9);
        UNIT_CHECK(!index_user_flag_get(&r, 0));
        mailbox_close(&mb);
        struct mbheader ih;
        mbheader_init(&ih);
        char *idir = partition_mailbox_dir(part, uid);
        UNIT_EQ_INT(mbheader_read(idir, &ih), 0);
        UNIT_EQ_INT(ih.uidvalidity, 4242);
        mbheader_fini(&ih);
        free(idir);
        struct recon_report rep;
        recon_report_init(&rep);
        UNIT_EQ_INT(reconstruct_mailbox(part, uid, "user/imp", "", RECON_DRY_RUN, &rep), 0);
        recon_report_fini(&rep);
        free(f3); free(f7); free(t3); free(t7);
    }

    /* 9. the mailbox list: lost DB, tombstones, unfinished creates */
    {
        char *conf = xasprintf("%s/coffer.conf", dir), *parts = xasprintf("%s/partitions.conf", dir);
        const char *text = "configdir = cfg\n";
        file_write_atomic(conf, text, strlen(text), 0600);
        char *ptext = xasprintf("default %s/sp1\nother %s/sp2\n", dir, dir);
        file_write_atomic(parts, ptext, strlen(ptext), 0600);
        struct config *cfg;
        struct buf err = BUF_INIT;
        UNIT_EQ_INT(config_load(conf, &cfg, &err), 0);
        char *dbdir = xasprintf("%s/cfg/db", dir);
        UNIT_EQ_INT(kv_env_recover(dbdir), 0);
        struct store *st;
        UNIT_EQ_INT(store_open(cfg, &st), 0);
        UNIT_EQ_INT(store_ensure_inbox(st, "joe"), 1);
        UNIT_EQ_INT(store_create(st, "user/joe/Sent", "other", NULL, NULL, 0), 0);
        UNIT_EQ_INT(store_create(st, "shared", NULL, NULL, NULL, 0), 0);
        struct mboxlist_entry e;
        mboxlist_entry_init(&e);
        UNIT_EQ_INT(store_lookup(st, "user/joe/Sent", &e), 1);
        struct recon_report rep;
        recon_report_init(&rep);
        UNIT_EQ_INT(reconstruct_mailboxlist(st, RECON_DRY_RUN, &rep), 0);
        /* lose two entries */
        UNIT_EQ_INT(mboxlist_delete(st->mboxlist, NULL, "user/joe/Sent"), 0);
        UNIT_EQ_INT(mboxlist_delete(st->mboxlist, NULL, "shared"), 0);
        /* a tombstone, and an unfinished create (a directory without a header) */
        char *tomb = xasprintf("%s/sp1/ab/%s.deleted", dir, "abababababababababababababababab");
        mkdir_p(tomb, 0700);
        char *tf = xasprintf("%s/1.", tomb);
        file_write_atomic(tf, "x", 1, 0600);
        char *unf = xasprintf("%s/sp2/cd/cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", dir);
        mkdir_p(unf, 0700);
        UNIT_EQ_INT(reconstruct_mailboxlist(st, RECON_DRY_RUN, &rep), 4);
        UNIT_EQ_INT(store_lookup(st, "shared", NULL), 0);
        recon_report_fini(&rep);
        recon_report_init(&rep);
        UNIT_EQ_INT(reconstruct_mailboxlist(st, 0, &rep), 4);
        UNIT_CHECK(strarr_find(&rep.what, "mailbox_added") >= 0);
        UNIT_CHECK(strarr_find(&rep.what, "tombstone_removed") >= 0);
        UNIT_CHECK(strarr_find(&rep.what, "unfinished_create") >= 0);
        struct mboxlist_entry e2;
        mboxlist_entry_init(&e2);
        UNIT_EQ_INT(store_lookup(st, "user/joe/Sent", &e2), 1);
        UNIT_EQ_STR(e2.uniqueid, e.uniqueid);
        UNIT_EQ_STR(e2.partition, "other");
        UNIT_EQ_STR(e2.acl, "joe\tlrswipkxtea\t");
        UNIT_EQ_INT(store_lookup(st, "shared", NULL), 1);
        UNIT_EQ_INT(file_size(tomb), -1);
        UNIT_EQ_INT(file_size(unf), -1);
        recon_report_fini(&rep);
        recon_report_init(&rep);
        UNIT_EQ_INT(reconstruct_mailboxlist(st, RECON_DRY_RUN, &rep), 0);
        /* an entry whose directory is gone is reported, not removed */
        char *sd = xasprintf("%s/sp2/%.2s/%s", dir, e.uniqueid, e.uniqueid);
        char *sd2 = xasprintf("%s.moved", sd);
        UNIT_EQ_INT(rename(sd, sd2), 0);
        UNIT_EQ_INT(reconstruct_mailboxlist(st, 0, &rep), 1);
        UNIT_CHECK(strarr_find(&rep.what, "entry_without_directory") >= 0);
        UNIT_EQ_INT(store_lookup(st, "user/joe/Sent", NULL), 1);
        /* a mailbox whose directory moved to the other partition: the entry follows */
        char *sd3 = xasprintf("%s/sp1/%.2s/%s", dir, e.uniqueid, e.uniqueid);
        char *sd3p = xasprintf("%s/sp1/%.2s", dir, e.uniqueid);
        mkdir_p(sd3p, 0700);
        UNIT_EQ_INT(rename(sd2, sd3), 0);
        recon_report_fini(&rep);
        recon_report_init(&rep);
        UNIT_EQ_INT(reconstruct_mailboxlist(st, 0, &rep), 1);
        UNIT_CHECK(strarr_find(&rep.what, "entry_partition_fixed") >= 0);
        UNIT_EQ_INT(store_lookup(st, "user/joe/Sent", &e2), 1);
        UNIT_EQ_STR(e2.partition, "default");
        recon_report_fini(&rep);
        free(sd); free(sd2); free(sd3); free(sd3p);
        mboxlist_entry_fini(&e);
        mboxlist_entry_fini(&e2);
        free(tomb); free(tf); free(unf);
        store_close(&st);
        config_free(&cfg);
        buf_fini(&err);
        free(dbdir); free(conf); free(parts); free(ptext);
    }

    /* 9. delayed expunge: the kept file of an expunged record is no finding, and a rewrite
     * (here for a damaged record of another message) keeps the record as it is: never
     * adopted as a live message, its file never removed */
    {
        partition_new_uniqueid(uid);
        fill(part, uid, 1);
        struct mailbox *mb;
        UNIT_EQ_INT(mailbox_open(part, uid, "user/fred", &mb), 0);
        mailbox_set_expunge_delayed(mb, 1);
        uint32_t u = 3;
        struct mailbox_store ds = { STORE_ADD, FLAG_DELETED, NULL, 0 };
        UNIT_EQ_INT(mailbox_store(mb, &u, 1, &ds, NULL, NULL), 0);
        UNIT_EQ_INT(mailbox_expunge(mb, &u, 1, NULL), 0);
        struct index_record r3;
        UNIT_EQ_INT(mailbox_record(mb, 3, &r3), 1);
        mailbox_close(&mb);
        UNIT_EQ_INT(clean(part, uid), 0);
        char *ip9 = path_in(part, uid, "index");
        flip(ip9, (off_t)index_record_offset(1) + 30);
        UNIT_CHECK(fix(part, uid, "record_corrupt") > 0);
        verify(part, uid, all4, 2);
        char *f3 = path_in(part, uid, "3.");
        UNIT_CHECK(file_size(f3) > 0);
        UNIT_EQ_INT(mailbox_open(part, uid, "user/fred", &mb), 0);
        struct index_record r;
        UNIT_EQ_INT(mailbox_record(mb, 3, &r), 1);
        UNIT_CHECK(r.flags & FLAG_EXPUNGED);
        UNIT_EQ_INT(r.expunged_at, r3.expunged_at);
        UNIT_EQ_INT(mailbox_header(mb)->expunged, 1);
        struct index_record *recs;
        size_t nr;
        UNIT_EQ_INT(mailbox_retained(mb, NULL, 0, &recs, &nr), 0);
        UNIT_EQ_INT(nr, 1);
        free(recs);
        mailbox_close(&mb);
        UNIT_EQ_INT(clean(part, uid), 0);
        free(f3);
        free(ip9);
    }

    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    free(cmd);
    free(part);
    UNIT_DONE();
}
