/* test-crash.c: kill -9 a process appending, expunging or storing flags at many random moments,
 * then check that the mailbox is consistent and nothing acknowledged was lost. */
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
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { APPEND_ROUNDS = 120, EXPUNGE_ROUNDS = 40, STORE_ROUNDS = 40, MAXUID = 100000 };

static char tmpdir[] = "/tmp/coffer-test-crash-XXXXXX";
static char *part;
static char id[UNIQUEID_LEN + 1];
static int32_t seq_of[MAXUID];      /* uid -> content seq, for acknowledged appends; -1 none */
static unsigned char gone[MAXUID];  /* acknowledged expunges */
static unsigned char maybe_gone[MAXUID];  /* expunges in flight at a kill */
static uint32_t checked_upto;       /* records up to this uid were verified already */

static void make_msg(struct buf *b, int seq)
{
    buf_reset(b);
    buf_printf(b, "From: crash@example.org\r\nSubject: crash %d\r\nDate: Sat, 1 Jan 2022 "
                  "00:00:00 +0000\r\n\r\n", seq);
    for (int i = 0; i < seq % 9; i++)
        buf_printf(b, "line %d of message %d, padding padding padding padding\r\n", i, seq);
}

static int append_seq(struct mailbox *mb, int seq, uint32_t *uid_r)
{
    struct buf b = BUF_INIT;
    make_msg(&b, seq);
    struct mailbox_msg m = { b.s, b.len, -1, 0, 0, NULL, 0 };
    int r = mailbox_append(mb, &m, 1, NULL);
    *uid_r = m.uid;
    buf_fini(&b);
    return r;
}

static void write_rec(int fd, uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t v[3] = { a, b, c };
    if (write(fd, v, sizeof v) != (ssize_t)sizeof v) _exit(9);
}

/* Children: say they are ready (a record of zeros) once the mailbox is open, then loop until
 * killed, reporting on the pipe after each call returned. */
static void child_append(int fd, int base)
{
    struct mailbox *mb;
    if (mailbox_open(part, id, NULL, &mb) < 0) _exit(2);
    write_rec(fd, 0, 0, 0);
    for (int i = 0;; i++) {
        uint32_t uid;
        if (append_seq(mb, base + i, &uid) < 0) _exit(3);
        write_rec(fd, uid, (uint32_t)(base + i), 0);
    }
}

static void child_expunge(int fd, unsigned seed)
{
    struct mailbox *mb;
    if (mailbox_open(part, id, NULL, &mb) < 0) _exit(2);
    write_rec(fd, 0, 0, 0);
    for (int i = 0;; i++) {
        uint32_t n = mailbox_count(mb);
        if (n < 20) _exit(0);
        uint32_t uid = mailbox_uid(mb, 1 + (uint32_t)rand_r(&seed) % n);
        struct mailbox_store st = { STORE_ADD, FLAG_DELETED, NULL, 0 };
        uint32_t count;
        write_rec(fd, uid, 0, 1);   /* intent: may or may not happen if killed now */
        if (mailbox_store(mb, &uid, 1, &st, NULL, NULL) < 0) _exit(4);
        if (mailbox_expunge(mb, &uid, 1, &count) < 0 || count != 1) _exit(5);
        write_rec(fd, uid, 0, 2);   /* done */
        if (i % 7 == 3 && mailbox_repack(mb) < 0) _exit(6);
        struct mailbox_changes ch;
        mailbox_changes_init(&ch);
        if (mailbox_sync(mb, 0, &ch) < 0) _exit(7);
        mailbox_changes_fini(&ch);
    }
}

static void child_store(int fd, unsigned seed)
{
    struct mailbox *mb;
    if (mailbox_open(part, id, NULL, &mb) < 0) _exit(2);
    static const char *kws[] = { "k0", "k1", "k2", "k3", "k4" };
    write_rec(fd, 0, 0, 0);
    for (int i = 0;; i++) {
        uint32_t uid = mailbox_uid(mb, 1 + (uint32_t)rand_r(&seed) % mailbox_count(mb));
        uint32_t pattern = (uint32_t)(i % 32) & ~FLAG_DELETED;   /* no \Deleted: keep them */
        const char *kw[] = { kws[i % 5], NULL };
        struct mailbox_store st = { STORE_SET, pattern, kw, 0 };
        write_rec(fd, uid, pattern | (uint32_t)(i % 5) << 8, 1);   /* intent */
        if (mailbox_store(mb, &uid, 1, &st, NULL, NULL) < 0) _exit(4);
        write_rec(fd, uid, pattern | (uint32_t)(i % 5) << 8, 2);   /* done */
    }
}

static void sha1(const void *p, size_t n, uint8_t out[20])
{
    unsigned int len = 20;
    EVP_Digest(p, n, out, &len, EVP_sha1(), NULL);
}

/* verify: open, check every record from checked_upto (all when full) against its file, the
 * acknowledged appends and expunges; returns the number of problems. */
static int verify(int full, struct mailbox **mb_r)
{
    struct mailbox *mb;
    int bad = 0;
    int r = mailbox_open(part, id, NULL, &mb);
    if (r < 0) {
        fprintf(stderr, "open failed: %s\n", cf_strerror(r));
        return 1;
    }
    const struct index_header *h = mailbox_header(mb);
    struct buf want = BUF_INIT;
    uint32_t found = 0, expunged = 0, deleted = 0, seen = 0, flagged = 0;
    uint64_t maxmodseq = 0;
    for (uint32_t u = full ? 1 : checked_upto + 1; u < h->uidnext && u < MAXUID; u++) {
        struct index_record rec;
        int f = mailbox_record(mb, u, &rec);
        if (f < 0) { bad++; continue; }
        int live = f == 1 && !(rec.flags & FLAG_EXPUNGED);
        if (f == 1 && rec.modseq > maxmodseq) maxmodseq = rec.modseq;
        if (f == 1 && !live) expunged++;
        if (live) {
            deleted += (rec.flags & FLAG_DELETED) != 0;
            seen += (rec.flags & FLAG_SEEN) != 0;
            flagged += (rec.flags & FLAG_FLAGGED) != 0;
        }
        if (gone[u] && live) { fprintf(stderr, "uid %u expunged but present\n", u); bad++; }
        if (!live) {
            if (seq_of[u] >= 0 && !gone[u] && !maybe_gone[u]) {
                fprintf(stderr, "uid %u lost\n", u);
                bad++;
            }
            continue;
        }
        found++;
        const char *p;
        size_t len;
        if (mailbox_message_map(mb, u, &p, &len) < 0) {
            fprintf(stderr, "uid %u: record without a file\n", u);
            bad++;
            continue;
        }
        uint8_t g[20];
        sha1(p, len, g);
        if (memcmp(g, rec.guid, 20) || len != rec.size) { fprintf(stderr, "uid %u: guid\n", u); bad++; }
        if (seq_of[u] >= 0) {
            make_msg(&want, seq_of[u]);
            if (len != want.len || memcmp(p, want.s, len)) {
                fprintf(stderr, "uid %u: content\n", u);
                bad++;
            }
        }
        mailbox_message_unmap(p, len);
    }
    if (full && found != h->exists) { fprintf(stderr, "exists %u, found %u\n", h->exists, found); bad++; }
    if (full && mailbox_count(mb) != h->exists) bad++;
    /* every counter, not only exists, and no record changed after the header's modseq */
    if (full && (expunged != h->expunged || deleted != h->deleted || seen != h->seen ||
                 flagged != h->flagged || maxmodseq > h->highestmodseq)) {
        fprintf(stderr, "header expunged %u deleted %u seen %u flagged %u highestmodseq %llu, "
                "records %u %u %u %u %llu\n", h->expunged, h->deleted, h->seen, h->flagged,
                (unsigned long long)h->highestmodseq, expunged, deleted, seen, flagged,
                (unsigned long long)maxmodseq);
        bad++;
    }
    checked_upto = h->uidnext - 1;
    buf_fini(&want);
    *mb_r = mb;
    return bad;
}

/* dry_findings: what `coffer check` would report for the mailbox (0 when clean). */
static int dry_findings(void)
{
    struct recon_report rep;
    recon_report_init(&rep);
    int r = reconstruct_mailbox(part, id, "user.crash", NULL, RECON_DRY_RUN, &rep);
    for (size_t i = 0; i < rep.what.count; i++)
        fprintf(stderr, "check: %s %s\n", rep.what.v[i], rep.detail.v[i]);
    recon_report_fini(&rep);
    return r;
}

/* files_above: message files at or above uidnext (leftovers of killed appends). */
static int files_above(struct mailbox *mb)
{
    DIR *d = opendir(mailbox_dir(mb));
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char *end;
        unsigned long u = strtoul(de->d_name, &end, 10);
        if (u && end[0] == '.' && !end[1] && u >= mailbox_header(mb)->uidnext) n++;
    }
    if (d) closedir(d);
    return n;
}

/* run_child: fork fn, kill it after delay_us, collect its reports. Returns the number of
 * 12-byte reports in *recs (caller frees). */
static size_t run_child(int kind, int base, unsigned delay_us, uint32_t **recs)
{
    int p[2];
    if (pipe(p) < 0) abort();
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (kind == 0) child_append(p[1], base);
        else if (kind == 1) child_expunge(p[1], (unsigned)base);
        else child_store(p[1], (unsigned)base);
        _exit(0);
    }
    close(p[1]);
    /* The delay counts from the child's ready record, so that on a loaded machine the kill
     * still lands among the operations and not in fork or open. */
    uint32_t ready[3];
    size_t got = 0;
    while (got < sizeof ready) {
        ssize_t n = read(p[0], (char *)ready + got, sizeof ready - got);
        if (n <= 0) break;   /* the child died before it was ready: reported below */
        got += (size_t)n;
    }
    usleep(delay_us);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fprintf(stderr, "child kind %d exited with %d\n", kind, WEXITSTATUS(status));
    struct buf b = BUF_INIT;
    char chunk[4096];
    ssize_t n;
    while ((n = read(p[0], chunk, sizeof chunk)) > 0) buf_append(&b, chunk, (size_t)n);
    close(p[0]);
    size_t count = b.len / 12;
    *recs = xmalloc(count * 12 + 12);
    if (b.len) memcpy(*recs, b.s, count * 12);
    buf_fini(&b);
    return count;
}

/* ---- unexpunge killed at each of its commit points ---- */

static int kill_at, kill_calls;
static int kill_hook(const char *point)
{
    (void)point;
    if (++kill_calls == kill_at) _exit(0);
    return 0;
}

/* unexpunge_state: per message seq 0..n-1 of the mailbox, live copies and retained copies
 * unexpunge would still offer (by Subject "crash SEQ"). */
static void unexpunge_state(struct mailbox *mb, int n, int *live, int *offered)
{
    memset(live, 0, sizeof(int) * (size_t)n);
    memset(offered, 0, sizeof(int) * (size_t)n);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    UNIT_EQ_INT(mailbox_sync(mb, 0, &ch), 0);
    mailbox_changes_fini(&ch);
    for (uint32_t i = 1; i <= mailbox_count(mb); i++) {
        const char *p;
        size_t len;
        int seq;
        if (mailbox_message_map(mb, mailbox_uid(mb, i), &p, &len) < 0) continue;
        const char *sp = memmem(p, len, "Subject: crash ", 15);
        if (sp && sscanf(sp + 15, "%d", &seq) == 1 && seq >= 0 && seq < n) live[seq]++;
        mailbox_message_unmap(p, len);
    }
    struct index_record *recs;
    size_t nr;
    UNIT_EQ_INT(mailbox_retained(mb, NULL, 0, &recs, &nr), 0);
    for (size_t i = 0; i < nr; i++) {
        const char *p;
        size_t len;
        int seq;
        if (mailbox_message_map(mb, recs[i].uid, &p, &len) < 0) continue;
        const char *sp = memmem(p, len, "Subject: crash ", 15);
        if (sp && sscanf(sp + 15, "%d", &seq) == 1 && seq >= 0 && seq < n) offered[seq]++;
        mailbox_message_unmap(p, len);
    }
    free(recs);
}

/* A child unexpunges everything and is killed at its k-th commit point (record writes, header
 * commits, flushes), for every k until it finishes: after each kill every message is live or
 * offered again, never both, never twice; a second run then brings back each exactly once. */
static int test_unexpunge_crash(void)
{
    enum { N = 6 };
    int bad = 0, k;
    for (k = 1; k < 200; k++) {
        char uid[UNIQUEID_LEN + 1];
        partition_new_uniqueid(uid);
        if (mailbox_create(part, "user.unexp", uid, "", 0) < 0) return 1;
        struct mailbox *mb;
        if (mailbox_open(part, uid, NULL, &mb) < 0) return 1;
        mailbox_set_expunge_delayed(mb, 1);
        uint32_t uids[N], u;
        for (int i = 0; i < N; i++) {
            if (append_seq(mb, i, &u) < 0) return 1;
            uids[i] = u;
        }
        struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
        UNIT_EQ_INT(mailbox_store(mb, uids, N - 1, &del, NULL, NULL), 0);   /* the last stays */
        UNIT_EQ_INT(mailbox_expunge(mb, NULL, 0, NULL), 0);
        mailbox_close(&mb);
        pid_t pid = fork();
        if (pid == 0) {
            struct mailbox *cm;
            if (mailbox_open(part, uid, NULL, &cm) < 0) _exit(3);
            struct index_record *recs;
            size_t nr;
            if (mailbox_retained(cm, NULL, 0, &recs, &nr) < 0) _exit(4);
            kill_at = k;
            mailbox_fault_hook = kill_hook;
            int r = mailbox_unexpunge(cm, recs, nr, NULL, NULL);
            _exit(r == (int)nr ? 7 : 5);   /* 7: finished before the k-th point */
        }
        int status;
        waitpid(pid, &status, 0);
        int finished = WIFEXITED(status) && WEXITSTATUS(status) == 7;
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && !finished)) {
            fprintf(stderr, "unexpunge child at point %d: status %#x\n", k, status);
            bad++;
        }
        if (mailbox_open(part, uid, NULL, &mb) < 0) return 1;
        int live[N], offered[N];
        unexpunge_state(mb, N, live, offered);
        for (int i = 0; i < N; i++)
            if (live[i] + offered[i] != 1) {
                fprintf(stderr, "point %d: message %d live %d offered %d\n", k, i, live[i], offered[i]);
                bad++;
            }
        /* a second run completes what was left */
        struct index_record *recs;
        size_t nr;
        UNIT_EQ_INT(mailbox_retained(mb, NULL, 0, &recs, &nr), 0);
        UNIT_EQ_INT(mailbox_unexpunge(mb, recs, nr, NULL, NULL), (int)nr);
        free(recs);
        unexpunge_state(mb, N, live, offered);
        for (int i = 0; i < N; i++)
            if (live[i] != 1 || offered[i]) {
                fprintf(stderr, "point %d, rerun: message %d live %d offered %d\n", k, i, live[i], offered[i]);
                bad++;
            }
        mailbox_close(&mb);
        if (finished) break;
    }
    mailbox_fault_hook = NULL;
    fprintf(stderr, "unexpunge killed at %d points\n", k - 1);
    UNIT_CHECK(k > 3);
    return bad;
}

/* RFC 8508 REPLACE at the mailbox level, as store_replace does it (store-mail.h): append the
 * new message, then mailbox_expunge_replaced of the old one. A child is killed at its k-th
 * commit point for every k until it finishes: after each kill the old message or the new one
 * is live (never neither), the old one never shows \Deleted, a check finds nothing but the
 * old message's file when the kill fell inside its expunge (as for any expunge), and a
 * finished replace has only the new one. */
static int test_replace_crash(void)
{
    int bad = 0, k;
    for (k = 1; k < 200; k++) {
        char uid[UNIQUEID_LEN + 1];
        partition_new_uniqueid(uid);
        if (mailbox_create(part, "user.repl", uid, "", 0) < 0) return 1;
        struct mailbox *mb;
        if (mailbox_open(part, uid, NULL, &mb) < 0) return 1;
        uint32_t old;
        if (append_seq(mb, 0, &old) < 0) return 1;
        mailbox_close(&mb);
        pid_t pid = fork();
        if (pid == 0) {
            struct mailbox *cm;
            if (mailbox_open(part, uid, NULL, &cm) < 0) _exit(3);
            kill_at = k;
            mailbox_fault_hook = kill_hook;
            uint32_t nu, count = 0;
            if (append_seq(cm, 1, &nu) < 0) _exit(4);
            if (mailbox_expunge_replaced(cm, &old, 1, &count, NULL) < 0 || count != 1) _exit(5);
            _exit(7);                       /* finished before the k-th point */
        }
        int status;
        waitpid(pid, &status, 0);
        int finished = WIFEXITED(status) && WEXITSTATUS(status) == 7;
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && !finished)) {
            fprintf(stderr, "replace child at point %d: status %#x\n", k, status);
            bad++;
        }
        if (mailbox_open(part, uid, NULL, &mb) < 0) return 1;
        int live[2], offered[2];
        unexpunge_state(mb, 2, live, offered);
        struct index_record rec;
        int f = mailbox_record(mb, old, &rec);
        if (f == 1 && (rec.flags & FLAG_DELETED)) {
            fprintf(stderr, "point %d: the replaced message shows \\Deleted\n", k);
            bad++;
        }
        if (live[0] + live[1] < 1 || live[0] > 1 || live[1] > 1 ||
            (finished && (live[0] || !live[1]))) {
            fprintf(stderr, "point %d: old live %d, new live %d, finished %d\n", k, live[0],
                    live[1], finished);
            bad++;
        }
        mailbox_close(&mb);
        struct recon_report rep;
        recon_report_init(&rep);
        reconstruct_mailbox(part, uid, "user.repl", NULL, RECON_DRY_RUN, &rep);
        /* the one finding allowed is the file of the old message, left when the kill came
         * after its expunge was written and before the unlink, as for any expunge */
        for (size_t i = 0; i < rep.what.count; i++) {
            if (!strcmp(rep.what.v[i], "expunged_file")) continue;
            fprintf(stderr, "point %d: check: %s %s\n", k, rep.what.v[i], rep.detail.v[i]);
            bad++;
        }
        recon_report_fini(&rep);
        if (finished) break;
    }
    mailbox_fault_hook = NULL;
    fprintf(stderr, "replace killed at %d points\n", k - 1);
    UNIT_CHECK(k > 2);
    return bad;
}

int main(int argc, char **argv)
{
    log_init("test-crash", 1, LOG_LVL_ERR);
    if (!mkdtemp(tmpdir)) return 2;
    part = xasprintf("%s/part", tmpdir);
    UNIT_EQ_INT(partition_prepare(part), 0);
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.crash", id, "", 0), 0);
    memset(seq_of, 0xff, sizeof seq_of);
    /* a failing run can be replayed (as far as timing allows) with its seed as argument */
    unsigned seed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "seed %u\n", seed);
    int seq = 0, bad = 0, acked = 0;
    /* appends; the kill delay scales with what an append costs here (three fsyncs, slow on
     * a loaded machine), so that kills land after several acknowledged appends */
    unsigned span = 25000;
    {
        struct mailbox *mb;
        UNIT_EQ_INT(mailbox_open(part, id, NULL, &mb), 0);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 3; i++) {
            uint32_t uid;
            UNIT_EQ_INT(append_seq(mb, seq, &uid), 0);
            seq_of[uid] = seq++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
        if (us > (long)span) span = (unsigned)(us < 250000 ? us : 250000);
        mailbox_close(&mb);
    }
    /* on a machine much busier than at calibration, kills land too early: more rounds
     * (at most twice as many) with a longer span until enough appends were acked */
    for (int round = 0; !bad && (round < APPEND_ROUNDS ||
                                 (acked < APPEND_ROUNDS / 2 && round < 2 * APPEND_ROUNDS));
         round++) {
        uint32_t *recs;
        if (round >= APPEND_ROUNDS && round % 20 == 0 && span < 900000) span *= 2;
        unsigned delay = round % 10 == 0 ? (unsigned)rand_r(&seed) % 500
                                         : (unsigned)rand_r(&seed) % span;
        size_t n = run_child(0, seq, delay, &recs);
        for (size_t i = 0; i < n; i++) {
            uint32_t uid = recs[3 * i], s = recs[3 * i + 1];
            if (uid >= MAXUID || seq_of[uid] >= 0) { bad++; continue; }
            seq_of[uid] = (int32_t)s;
            acked++;
        }
        free(recs);
        seq += 100000;
        /* M7: a killed append leaves at most files above uidnext, which a check ignores */
        int f = dry_findings();
        if (f != 0) {
            fprintf(stderr, "round %d: check found %d problems after the kill\n", round, f);
            bad++;
        }
        struct mailbox *mb;
        bad += verify(0, &mb);
        if (mb) {   /* the next append works, and never reuses an acknowledged uid */
            uint32_t uid;
            if (append_seq(mb, seq, &uid) < 0 || seq_of[uid] >= 0) bad++;
            else seq_of[uid] = seq++;
            if (files_above(mb)) {   /* it removed what the killed one left */
                fprintf(stderr, "round %d: %d files above uidnext\n", round, files_above(mb));
                bad++;
            }
            mailbox_close(&mb);
        }
    }
    UNIT_EQ_INT(bad, 0);
    /* the test must not be vacuous: kills have to land after acknowledged appends. How many
     * depends on the machine's speed and load (about 3 per round on an idle machine, fewer
     * under CI's parallel tests, and the extra rounds above aim at one per two rounds), so
     * ask for one per four rounds. */
    UNIT_CHECK(acked >= APPEND_ROUNDS / 4);
    fprintf(stderr, "%d appends acknowledged before kills\n", acked);
    /* expunges, with repacks */
    int expunged = 0;
    for (int round = 0; round < EXPUNGE_ROUNDS && !bad; round++) {
        uint32_t *recs;
        size_t n = run_child(1, (int)rand_r(&seed), (unsigned)rand_r(&seed) % 20000, &recs);
        for (size_t i = 0; i < n; i++) {
            uint32_t uid = recs[3 * i];
            if (uid >= MAXUID) { bad++; continue; }
            if (recs[3 * i + 2] == 1) maybe_gone[uid] = 1;
            else { gone[uid] = 1; expunged++; }
        }
        free(recs);
        struct mailbox *mb;
        bad += verify(1, &mb);
        if (mb) {
            uint32_t uid;
            if (append_seq(mb, seq, &uid) < 0 || seq_of[uid] >= 0) bad++;
            else seq_of[uid] = seq++;
            mailbox_close(&mb);
        }
    }
    UNIT_EQ_INT(bad, 0);
    UNIT_CHECK(expunged > 0);
    fprintf(stderr, "%d expunges acknowledged before kills\n", expunged);
    /* flag stores */
    int stores = 0;
    for (int round = 0; round < STORE_ROUNDS && !bad; round++) {
        uint32_t *recs;
        size_t n = run_child(2, (int)rand_r(&seed), (unsigned)rand_r(&seed) % 20000, &recs);
        /* per uid: the last acknowledged value, and an unacknowledged one in flight */
        uint32_t inflight_uid = 0, inflight_val = 0;
        static uint32_t last_val[MAXUID];
        static unsigned char has_val[MAXUID];
        memset(has_val, 0, sizeof has_val);
        for (size_t i = 0; i < n; i++) {
            uint32_t uid = recs[3 * i], val = recs[3 * i + 1], what = recs[3 * i + 2];
            if (uid >= MAXUID) { bad++; continue; }
            if (what == 1) { inflight_uid = uid; inflight_val = val; }
            else { last_val[uid] = val; has_val[uid] = 1; inflight_uid = 0; stores++; }
        }
        free(recs);
        struct mailbox *mb;
        bad += verify(1, &mb);
        if (!mb) continue;
        const struct strarr *kw = mailbox_keywords(mb);
        for (uint32_t uid = 1; uid < MAXUID; uid++) {
            if (!has_val[uid] && uid != inflight_uid) continue;
            struct index_record r;
            if (mailbox_record(mb, uid, &r) != 1) { bad++; continue; }
            uint32_t k = 0;
            while (k < kw->count && !index_user_flag_get(&r, k)) k++;
            if (k == kw->count) k = 99;
            else if (kw->v[k][1] - '0' >= 0) k = (uint32_t)(kw->v[k][1] - '0');
            uint32_t got = r.flags | k << 8;
            int ok = (has_val[uid] && got == last_val[uid]) ||
                     (uid == inflight_uid && got == inflight_val) ||
                     (!has_val[uid] && uid == inflight_uid);  /* an older value stays */
            if (!ok) {
                fprintf(stderr, "uid %u flags %#x, expected %#x\n", uid, got, last_val[uid]);
                bad++;
            }
        }
        uint32_t uid;
        if (append_seq(mb, seq, &uid) < 0 || seq_of[uid] >= 0) bad++;
        else seq_of[uid] = seq++;
        mailbox_close(&mb);
    }
    UNIT_EQ_INT(bad, 0);
    UNIT_CHECK(stores > 0);
    fprintf(stderr, "%d stores acknowledged before kills\n", stores);
    struct mailbox *mb;
    UNIT_EQ_INT(verify(1, &mb), 0);
    mailbox_close(&mb);
    UNIT_EQ_INT(test_unexpunge_crash(), 0);
    UNIT_EQ_INT(test_replace_crash(), 0);
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
