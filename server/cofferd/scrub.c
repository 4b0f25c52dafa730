/* scrub.c: the scrubber, one slice of it in a child of cofferd (master-int.h "scrub.c",
 * cofferd(8) MAINTENANCE). It re-reads every live message file of the store and checks its
 * size and SHA-1 against its index record (whose own CRC mailbox_record checks), at most
 * scrub_rate bytes a second, niced and at idle I/O priority, so it never competes with
 * service. What does not match is logged (user, mailbox, uid) and counted, and never changed:
 * the administrator decides (coffer reconstruct, a restore).
 *
 * A slice runs for at most SCRUB_SLICE_MS and keeps its place in configdir/scrub.state
 * (mailbox name and uid, and when the last full pass ended), so the master can kill it at any
 * time (database recovery, shutdown) and the next slice goes on where it stopped. */
#include "master-int.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SCRUB_SLICE_MS 20000
#define SCRUB_CHUNK 65536
/* ioprio_set(2): no glibc wrapper */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_CLASS_SHIFT 13

struct scrub_state {
    struct buf mailbox;      /* the mailbox being scrubbed ("" at the start of a pass) */
    uint32_t uid;            /* the last uid done in it */
    int64_t pass_end;        /* when the last full pass ended (0: never) */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *state_path(const struct config *cfg)
{
    return xasprintf("%s/scrub.state", config_str(cfg, CFG_CONFIGDIR));
}

/* state_load: the file's three lines "mailbox NAME", "uid N", "pass_end T"; a missing or
 * unreadable file starts a pass from the beginning. */
static void state_load(const struct config *cfg, struct scrub_state *s)
{
    char *path = state_path(cfg), *text = NULL;
    if (file_read_all(path, 1 << 16, &text, NULL) == 0) {
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            if (!strncmp(l, "mailbox ", 8)) {
                buf_reset(&s->mailbox);
                buf_appends(&s->mailbox, l + 8);
            } else if (!strncmp(l, "uid ", 4)) {
                s->uid = (uint32_t)strtoul(l + 4, NULL, 10);
            } else if (!strncmp(l, "pass_end ", 9)) {
                s->pass_end = strtoll(l + 9, NULL, 10);
            }
        }
    }
    free(text);
    free(path);
}

static void state_save(const struct config *cfg, struct scrub_state *s)
{
    struct buf b = BUF_INIT;
    buf_printf(&b, "mailbox %s\nuid %" PRIu32 "\npass_end %" PRId64 "\n", buf_cstr(&s->mailbox),
               s->uid, s->pass_end);
    char *path = state_path(cfg);
    if (file_write_atomic(path, b.s, b.len, 0600))
        log_warn("scrub_state_failed", "path=%s", log_quote(path));
    free(path);
    buf_fini(&b);
}

struct pace {
    long long start_ms;
    uint64_t bytes;
    long long rate;          /* bytes a second */
};

/* pace_wait: sleep until reading `bytes` so far keeps within the rate */
static void pace_wait(struct pace *p, size_t n)
{
    p->bytes += n;
    long long due = p->start_ms + (long long)(p->bytes * 1000 / (uint64_t)p->rate);
    long long now = mono_ms();
    if (due > now) {
        struct timespec ts = { (due - now) / 1000, ((due - now) % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    }
}

static void report_corrupt(const char *name, uint32_t uid, const char *reason,
                           unsigned long long want, unsigned long long got)
{
    struct buf owner = BUF_INIT;
    mboxname_owner(name, &owner);
    log_err("scrub_corrupt", "user=%s mailbox=%s uid=%" PRIu32 " reason=%s expected_size=%llu "
            "size=%llu hint=%s", log_quote(buf_cstr(&owner)), log_quote(name), uid, reason, want,
            got, log_quote("the file is left as it is: restore it or run coffer reconstruct"));
    buf_fini(&owner);
    struct metrics_shm *m = metrics_get();
    if (m) metrics_add(&m->scrub_corrupt, 1);
}

static void report_index(const char *name, uint32_t uid, int r)
{
    struct buf owner = BUF_INIT;
    mboxname_owner(name, &owner);
    log_err("scrub_index_corrupt", "user=%s mailbox=%s uid=%" PRIu32 " error=%s",
            log_quote(buf_cstr(&owner)), log_quote(name), uid, log_quote(cf_strerror(r)));
    buf_fini(&owner);
    struct metrics_shm *m = metrics_get();
    if (m) metrics_add(&m->scrub_index_corrupt, 1);
}

/* scrub_message: read uid's file at the pace and compare it with rec. 0, or CF_E_NOTFOUND
 * when the file is gone. */
static int scrub_message(struct mailbox *mb, const char *name, const struct index_record *rec,
                         struct pace *p)
{
    int fd = -1;
    uint64_t size = 0;
    int r = mailbox_message_open(mb, rec->uid, &fd, &size);
    if (r) return r;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
    static unsigned char chunk[SCRUB_CHUNK];
    uint64_t total = 0;
    int ioerr = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ioerr = errno;
            break;
        }
        if (n == 0) break;
        EVP_DigestUpdate(ctx, chunk, (size_t)n);
        total += (uint64_t)n;
        pace_wait(p, (size_t)n);
    }
    close(fd);
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned int shalen = 0;
    EVP_DigestFinal_ex(ctx, sha, &shalen);
    EVP_MD_CTX_free(ctx);
    struct metrics_shm *m = metrics_get();
    if (m) {
        metrics_add(&m->scrub_messages, 1);
        metrics_add(&m->scrub_bytes, total);
    }
    if (ioerr) report_corrupt(name, rec->uid, "read_error", rec->size, total);
    else if (total != rec->size) report_corrupt(name, rec->uid, "size", rec->size, total);
    else if (shalen != 20 || memcmp(sha, rec->guid, 20))
        report_corrupt(name, rec->uid, "sha1", rec->size, total);
    return 0;
}

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

/* scrub_mailbox: the live records above s->uid of name; 1 when the slice ran out (s keeps
 * the place), 0 when the mailbox is done. */
static int scrub_mailbox(struct store *st, const char *name, struct scrub_state *s,
                         struct pace *p, long long end_ms)
{
    struct mailbox *mb = NULL;
    int r = store_open_mailbox(st, name, NULL, &mb);
    if (r == CF_E_CORRUPT) report_index(name, 0, r);
    if (r) return 0;   /* gone since the list was read, or reported */
    uint32_t n = mailbox_count(mb);
    int out = 0;
    for (uint32_t msgno = 1; msgno <= n; msgno++) {
        uint32_t uid = mailbox_uid(mb, msgno);
        if (uid <= s->uid) continue;
        struct index_record rec;
        r = mailbox_record(mb, uid, &rec);
        if (r == CF_E_CORRUPT) report_index(name, uid, r);
        if (r == 1 && !(rec.flags & FLAG_EXPUNGED)) {
            r = scrub_message(mb, name, &rec, p);
            if (r == CF_E_NOTFOUND) {
                /* expunged and removed meanwhile, or truly missing: look again */
                struct mailbox_changes ch;
                mailbox_changes_init(&ch);
                int y = mailbox_sync(mb, MAILBOX_SYNC_NO_EXPUNGE, &ch);
                mailbox_changes_fini(&ch);
                if (y == 0 && mailbox_record(mb, uid, &rec) == 1 && !(rec.flags & FLAG_EXPUNGED))
                    report_corrupt(name, uid, "missing", rec.size, 0);
            }
        }
        s->uid = uid;
        if (mono_ms() >= end_ms) {
            out = 1;
            break;
        }
    }
    mailbox_close(&mb);
    return out;
}

void scrub_child(const struct config *cfg)
{
    setpriority(PRIO_PROCESS, 0, 19);
    syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT);
    struct scrub_state s = { BUF_INIT, 0, 0 };
    state_load(cfg, &s);
    long long interval = config_int(cfg, CFG_SCRUB_INTERVAL);
    int64_t now = (int64_t)time(NULL);
    if (!s.mailbox.len && !s.uid && s.pass_end && now - s.pass_end < interval)
        _exit(SCRUB_EXIT_NOT_DUE);
    struct store *st = NULL;
    if (store_open(cfg, &st)) _exit(1);
    struct strarr names = STRARR_INIT;
    if (store_mailbox_foreach(st, "", add_name, &names) < 0) _exit(1);
    strarr_sort(&names);
    struct pace p = { mono_ms(), 0, config_int(cfg, CFG_SCRUB_RATE) };
    if (p.rate <= 0) p.rate = 1;
    long long end_ms = p.start_ms + SCRUB_SLICE_MS;
    if (!s.mailbox.len) log_info("scrub_started", "mailboxes=%zu", names.count);
    for (size_t i = 0; i < names.count; i++) {
        int cmp = strcmp(names.v[i], buf_cstr(&s.mailbox));
        if (s.mailbox.len && cmp < 0) continue;
        if (cmp != 0) {
            buf_reset(&s.mailbox);
            buf_appends(&s.mailbox, names.v[i]);
            s.uid = 0;
        }
        if (scrub_mailbox(st, names.v[i], &s, &p, end_ms)) {
            state_save(cfg, &s);
            store_close(&st);
            _exit(0);
        }
    }
    struct metrics_shm *m = metrics_get();
    unsigned long long corrupt = m ? __atomic_load_n(&m->scrub_corrupt, __ATOMIC_RELAXED) : 0;
    log_info("scrub_pass_done", "mailboxes=%zu corrupt_total=%llu", names.count, corrupt);
    if (m) metrics_add(&m->scrub_passes, 1);
    buf_reset(&s.mailbox);
    s.uid = 0;
    s.pass_end = (int64_t)time(NULL);
    state_save(cfg, &s);
    store_close(&st);
    _exit(SCRUB_EXIT_PASS_DONE);
}
