/* cmd-dump.c: `coffer dump USER > FILE` and `coffer restore [--user NEWNAME] < FILE`: a user's
 * whole account (mailboxes, messages byte for byte with UIDs, flags, keywords and internal
 * dates, ACLs, special-use flags, quota, subscriptions, Sieve scripts) as a POSIX ustar stream:
 * manifest.json first, then mailboxes/N/UID.eml and sieve/NAME.sieve. The format is documented
 * in coffer-dump(8); we write and read the tar stream ourselves (it is 512-byte blocks). */
#include "tool.h"
#include "dump-read.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/xmalloc.h"
#include "sieve/sieve.h"
#include "store/acl.h"
#include "store/mboxname.h"
#include "store/partition.h"
#include "store/reconstruct.h"
#include "store/store.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DUMP_FORMAT "coffer-dump"
#define DUMP_VERSION 1
#define MANIFEST_MAX (512u << 20)
/* Restore takes a dump from anywhere, so every count in the manifest is bounded (review M5):
 * far above what a real account holds, far below what exhausts memory. */
#define RESTORE_MAX_BOXES 100000
#define RESTORE_MAX_MSGS 50000000
#define RESTORE_MAX_ACL 256
#define RESTORE_MAX_SUBS 100000

static const struct { uint32_t bit; const char *name; } sysflags[] = {
    { FLAG_SEEN, "\\Seen" }, { FLAG_ANSWERED, "\\Answered" }, { FLAG_FLAGGED, "\\Flagged" },
    { FLAG_DELETED, "\\Deleted" }, { FLAG_DRAFT, "\\Draft" },
};

/* ---- tar (POSIX.1-1988 ustar) ---- */

/* tar_header: one header block for a regular file (name <= 99 bytes). */
static void tar_header(unsigned char *h, const char *name, uint64_t size, int64_t mtime)
{
    memset(h, 0, TAR_BLOCK);
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000600", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    char oct[32];
    snprintf(oct, sizeof oct, "%011llo", (unsigned long long)size);   /* < 8 GiB: 11 digits */
    memcpy(h + 124, oct, 12);
    snprintf(oct, sizeof oct, "%011llo", (unsigned long long)(mtime > 0 && mtime < 077777777777LL ? mtime : 0));
    memcpy(h + 136, oct, 12);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    snprintf((char *)h + 265, 32, "coffer");
    snprintf((char *)h + 297, 32, "coffer");
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static int tar_pad(FILE *f, uint64_t size)
{
    static const unsigned char zero[TAR_BLOCK];
    size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
    return pad && fwrite(zero, 1, pad, f) != pad ? -1 : 0;
}

static int tar_put(FILE *f, const char *name, const void *data, size_t len, int64_t mtime)
{
    unsigned char h[TAR_BLOCK];
    tar_header(h, name, len, mtime);
    if (fwrite(h, 1, TAR_BLOCK, f) != TAR_BLOCK) return -1;
    if (len && fwrite(data, 1, len, f) != len) return -1;
    return tar_pad(f, len);
}

/* tar_put_file: stream the file at path as name. 0, 1 when the file is gone, -1 on error. */
static int tar_put_file(FILE *f, const char *name, const char *path, int64_t mtime)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 1 : -1;
    struct stat sb;
    int r = -1;
    if (fstat(fd, &sb) < 0) goto out;
    unsigned char h[TAR_BLOCK];
    tar_header(h, name, (uint64_t)sb.st_size, mtime);
    if (fwrite(h, 1, TAR_BLOCK, f) != TAR_BLOCK) goto out;
    uint64_t left = (uint64_t)sb.st_size;
    char buf[65536];
    while (left) {
        ssize_t n = read(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto out;   /* message files never shrink: this is damage */
        if (fwrite(buf, 1, (size_t)n, f) != (size_t)n) goto out;
        left -= (uint64_t)n;
    }
    r = tar_pad(f, (uint64_t)sb.st_size);
out:
    close(fd);
    return r;
}

/* ---- dump ---- */

struct dump_msg { uint32_t uid; int64_t internaldate; };

struct dump_box {
    char *name;
    char *dir;                 /* the mailbox directory, for the message files */
    struct dump_msg *msgs;
    size_t n;
};

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

/* json_acl: the ACL text as [[ident, rights], ...]. */
static void json_acl(struct buf *m, const char *acl)
{
    struct strarr parts = STRARR_INIT;
    strarr_split(&parts, acl, "\t", 0);
    buf_putc(m, '[');
    for (size_t i = 0; i + 1 < parts.count; i += 2) {
        buf_appends(m, i ? ", [" : "[");
        json_str(m, parts.v[i]);
        buf_appends(m, ", ");
        json_str(m, parts.v[i + 1]);
        buf_putc(m, ']');
    }
    buf_putc(m, ']');
    strarr_fini(&parts);
}

/* dump_mailbox: one mailbox's manifest object into m (a shared-lock snapshot of its index). */
static int dump_mailbox(struct tool *t, struct store *st, const char *name, size_t idx,
                        struct buf *m, struct dump_box *box)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct mailbox *mb = NULL;
    int r = store_open_mailbox(st, name, &e, &mb);
    if (r) {
        tool_error(t, "%s: %s", name, r == CF_E_CORRUPT ? "damaged (run coffer reconstruct)" : cf_strerror(r));
        goto out;
    }
    if ((r = mailbox_lock_shared(mb)) < 0) goto out;
    const struct index_header *h = mailbox_header(mb);
    box->name = xstrdup(name);
    box->dir = xstrdup(mailbox_dir(mb));
    buf_appends(m, idx ? ",\n  {\"name\": " : "\n  {\"name\": ");
    json_str(m, name);
    buf_printf(m, ", \"dir\": \"mailboxes/%zu\", \"uidvalidity\": %u, \"uidnext\": %u, "
               "\"highestmodseq\": %llu, \"special_use\": ", idx, (unsigned)h->uidvalidity,
               (unsigned)h->uidnext, (unsigned long long)h->highestmodseq);
    json_str(m, e.flags);
    buf_appends(m, ", \"acl\": ");
    json_acl(m, e.acl);
    buf_appends(m, ",\n   \"messages\": [");
    const struct strarr *kw = mailbox_keywords(mb);
    uint32_t count = mailbox_count(mb);
    box->msgs = xreallocarray(NULL, count ? count : 1, sizeof *box->msgs);
    for (uint32_t i = 1; i <= count; i++) {
        uint32_t uid = mailbox_uid(mb, i);
        struct index_record rec;
        int f = mailbox_record(mb, uid, &rec);
        if (f < 0) { r = f; break; }
        if (f == 0 || (rec.flags & FLAG_EXPUNGED)) continue;
        box->msgs[box->n].uid = uid;
        box->msgs[box->n].internaldate = rec.internaldate;
        buf_printf(m, "%s\n    {\"uid\": %u, \"file\": \"mailboxes/%zu/%u.eml\", \"size\": %llu, "
                   "\"internaldate\": %lld, \"modseq\": %llu, \"flags\": [", box->n ? "," : "",
                   (unsigned)uid, idx, (unsigned)uid, (unsigned long long)rec.size,
                   (long long)rec.internaldate, (unsigned long long)rec.modseq);
        int first = 1;
        for (size_t k = 0; k < sizeof sysflags / sizeof sysflags[0]; k++) {
            if (!(rec.flags & sysflags[k].bit)) continue;
            if (!first) buf_appends(m, ", ");
            json_str(m, sysflags[k].name);
            first = 0;
        }
        buf_appends(m, "], \"keywords\": [");
        first = 1;
        for (size_t k = 0; k < kw->count; k++) {
            if (!index_user_flag_get(&rec, (unsigned)k)) continue;
            if (!first) buf_appends(m, ", ");
            json_str(m, kw->v[k]);
            first = 0;
        }
        buf_appends(m, "]}");
        box->n++;
    }
    mailbox_unlock(mb);
    buf_appends(m, "]}");
out:
    mailbox_close(&mb);
    mboxlist_entry_fini(&e);
    return r;
}

static char *sieve_dir(const struct config *cfg, const char *user)
{
    return xasprintf("%s/sieve/%s", config_str(cfg, CFG_CONFIGDIR), user);
}

int cmd_dump(struct tool *t)
{
    if (t->argc != 1) {
        tool_error(t, "usage: coffer dump USER > FILE");
        return EXIT_USAGE;
    }
    const char *user = t->argv[0];
    if (mboxname_valid_user(user) != 0 || strchr(user, '/')) {
        tool_error(t, "'%s' is not a valid user name", user);
        return EXIT_USAGE;
    }
    if (isatty(STDOUT_FILENO)) {
        tool_error(t, "refusing to write a tar stream to a terminal: redirect it to a file");
        return EXIT_USAGE;
    }
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) return rc;
    struct buf inbox = BUF_INIT, m = BUF_INIT, prefix = BUF_INIT;
    struct strarr names = STRARR_INIT, subs = STRARR_INIT, scripts = STRARR_INIT;
    struct dump_box *boxes = NULL;
    char *sdir = sieve_dir(t->cfg, user);
    char *active = NULL;
    int r = 0;
    size_t vanished = 0, nmsgs = 0;
    mboxname_user_inbox(user, &inbox);
    r = store_lookup(st, buf_cstr(&inbox), NULL);
    if (r == 0) {
        tool_error(t, "user %s has no INBOX (%s)", user, buf_cstr(&inbox));
        r = CF_E_NOTFOUND;
        goto out;
    }
    if (r < 0) goto out;
    strarr_add(&names, buf_cstr(&inbox));
    buf_printf(&prefix, "%s/", buf_cstr(&inbox));
    if ((r = mboxlist_foreach(st->mboxlist, NULL, buf_cstr(&prefix), add_name, &names)) < 0) goto out;
    if ((r = subs_list(st->subs, NULL, user, &subs)) < 0) goto out;
    /* Sieve scripts: NAME.sieve files and the "active" link (lib/sieve/sieve.h) */
    DIR *d = opendir(sdir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n > 6 && n < 90 && de->d_name[0] != '.' && !strcmp(de->d_name + n - 6, ".sieve"))
                strarr_take(&scripts, xstrndup(de->d_name, n - 6));
        }
        closedir(d);
        strarr_sort(&scripts);
        char *link = xasprintf("%s/active", sdir);
        char target[512];
        ssize_t ln = readlink(link, target, sizeof target - 1);
        free(link);
        if (ln > 6 && !strncmp(target + ln - 6, ".sieve", 6)) active = xstrndup(target, (size_t)ln - 6);
    }

    buf_printf(&m, "{\"format\": \"%s\", \"version\": %d, \"user\": ", DUMP_FORMAT, DUMP_VERSION);
    json_str(&m, user);
    buf_printf(&m, ", \"created\": %lld,\n \"quota\": ", (long long)time(NULL));
    struct quota q;
    int qr = quotadb_get(st->quota, NULL, buf_cstr(&inbox), &q);
    if (qr == 1) buf_printf(&m, "{\"storage_kib\": %lld, \"messages\": %lld}", (long long)q.limit_storage_kib,
                            (long long)q.limit_messages);
    else buf_appends(&m, "null");
    buf_appends(&m, ",\n \"subscriptions\": [");
    for (size_t i = 0; i < subs.count; i++) {
        if (i) buf_appends(&m, ", ");
        json_str(&m, subs.v[i]);
    }
    buf_appends(&m, "],\n \"sieve\": {\"active\": ");
    if (active) json_str(&m, active);
    else buf_appends(&m, "null");
    buf_appends(&m, ", \"scripts\": [");
    for (size_t i = 0; i < scripts.count; i++) {
        if (i) buf_appends(&m, ", ");
        buf_appends(&m, "{\"name\": ");
        json_str(&m, scripts.v[i]);
        buf_appends(&m, ", \"file\": ");
        char *fn = xasprintf("sieve/%s.sieve", scripts.v[i]);
        json_str(&m, fn);
        free(fn);
        buf_putc(&m, '}');
    }
    buf_appends(&m, "]},\n \"mailboxes\": [");
    boxes = xzmalloc((names.count ? names.count : 1) * sizeof *boxes);
    for (size_t i = 0; i < names.count; i++) {
        tool_progress(t, i + 1, names.count, "mailboxes read");
        if ((r = dump_mailbox(t, st, names.v[i], i, &m, &boxes[i])) < 0) goto out;
        nmsgs += boxes[i].n;
    }
    buf_appends(&m, "\n ]\n}\n");

    /* the stream: manifest, messages, scripts, two zero blocks */
    FILE *out = stdout;
    int64_t now = (int64_t)time(NULL);
    if (tar_put(out, "manifest.json", m.s, m.len, now) < 0) goto write_error;
    size_t done = 0;
    for (size_t i = 0; i < names.count; i++) {
        for (size_t k = 0; k < boxes[i].n; k++) {
            char *path = xasprintf("%s/%u.", boxes[i].dir, (unsigned)boxes[i].msgs[k].uid);
            char *an = xasprintf("mailboxes/%zu/%u.eml", i, (unsigned)boxes[i].msgs[k].uid);
            int w = tar_put_file(out, an, path, boxes[i].msgs[k].internaldate);
            free(path);
            free(an);
            if (w < 0) goto write_error;
            if (w == 1) vanished++;   /* expunged since the snapshot: restore skips it */
            tool_progress(t, ++done, nmsgs, "messages written");
        }
    }
    for (size_t i = 0; i < scripts.count; i++) {
        char *path = xasprintf("%s/%s.sieve", sdir, scripts.v[i]);
        char *an = xasprintf("sieve/%s.sieve", scripts.v[i]);
        int w = tar_put_file(out, an, path, now);
        free(path);
        free(an);
        if (w < 0) goto write_error;
    }
    static const unsigned char zero[2 * TAR_BLOCK];
    if (fwrite(zero, 1, sizeof zero, out) != sizeof zero || fflush(out) != 0) goto write_error;
    fprintf(stderr, "coffer dump: %s: %zu mailbox%s, %zu messages%s, %zu Sieve script%s\n", user,
            names.count, names.count == 1 ? "" : "es", nmsgs - vanished,
            vanished ? " (some expunged while dumping)" : "", scripts.count, scripts.count == 1 ? "" : "s");
    r = 0;
    goto out;
write_error:
    tool_error(t, "cannot write the dump: %s", strerror(errno));
    r = CF_E_IO;
out:
    if (boxes) {
        for (size_t i = 0; i < names.count; i++) {
            free(boxes[i].name);
            free(boxes[i].dir);
            free(boxes[i].msgs);
        }
        free(boxes);
    }
    free(sdir);
    free(active);
    buf_fini(&inbox);
    buf_fini(&m);
    buf_fini(&prefix);
    strarr_fini(&names);
    strarr_fini(&subs);
    strarr_fini(&scripts);
    store_close(&st);
    if (r < 0 && r != CF_E_NOTFOUND && r != CF_E_IO) tool_error(t, "dump failed: %s", cf_strerror(r));
    return tool_exit_for(r);
}

/* ---- restore ---- */

/* sieve_name_ok: a script name as lib/sieve stores them: 1..128 printable ASCII bytes, no '/',
 * not starting with '.'. */
static int sieve_name_ok(const char *n)
{
    size_t l = strlen(n);
    if (!l || l > 128 || n[0] == '.') return 0;
    for (; *n; n++)
        if (*n < 0x20 || *n > 0x7e || *n == '/') return 0;
    return 1;
}

/* map_name: a name of the dumped user's (user/OLD...) for the new user, into out. Returns 1
 * when it was one of the dumped user's (mapped), 0 otherwise (out holds name unchanged). */
static int map_name(const char *name, const char *olduser, const char *newuser, struct buf *out)
{
    buf_reset(out);
    size_t ol = strlen(olduser);
    if (!strncmp(name, "user/", 5) && !strncmp(name + 5, olduser, ol) &&
        (name[5 + ol] == '\0' || name[5 + ol] == '/')) {
        buf_printf(out, "user/%s%s", newuser, name + 5 + ol);
        return 1;
    }
    buf_appends(out, name);
    return 0;
}

/* restore_acl: the manifest's ACL of one mailbox as ACL text (acl.h) into out, the dumped
 * user's entries given to newuser. Every identifier and every rights string is checked as
 * SETACL would (a tab or an odd identifier would corrupt the stored text). 0, or -1 with the
 * reason in why. */
static int restore_acl(const struct jval *aj, const char *olduser, const char *newuser,
                       struct buf *out, const char **why)
{
    buf_reset(out);
    if (!aj || aj->t == J_NULL) return 0;
    if (aj->t != J_ARR) { *why = "the ACL is not a list"; return -1; }
    if (aj->n > RESTORE_MAX_ACL) { *why = "the ACL has too many entries"; return -1; }
    for (size_t k = 0; k < aj->n; k++) {
        const struct jval *pair = &aj->v[k];
        if (pair->t != J_ARR || pair->n != 2 || pair->v[0].t != J_STR || pair->v[1].t != J_STR) {
            *why = "an ACL entry is not a pair of strings";
            return -1;
        }
        const char *ident = pair->v[0].str;
        int neg = ident[0] == '-';
        ident += neg;
        if (!strcmp(ident, olduser)) ident = newuser;
        unsigned mask = 0;
        const char *rights = pair->v[1].str;
        if (!acl_ident_valid(ident) || strlen(rights) > 64 ||
            acl_parse_rights(rights, strlen(rights), 1, &mask) < 0) {
            *why = "an ACL entry has an invalid identifier or rights";
            return -1;
        }
        char letters[16];
        buf_printf(out, "%s%s\t%s\t", neg ? "-" : "", ident, acl_format_rights(mask, letters));
    }
    return 0;
}

/* entry_name_ok: a tar entry name restore may look at: relative, no ".." component. */
static int entry_name_ok(const char *n)
{
    if (n[0] == '/') return 0;
    for (const char *p = n; *p; ) {
        size_t l = strcspn(p, "/");
        if (l == 2 && p[0] == '.' && p[1] == '.') return 0;
        p += l;
        if (*p == '/') p++;
    }
    return 1;
}

/* One mailbox of the manifest as it is being restored. */
struct rbox {
    const struct jval *j;     /* its manifest object */
    char *name;               /* the new internal name */
    char *ppath;              /* partition path, uniqueid, once created */
    char uniqueid[UNIQUEID_LEN + 1];
    char *dir;
    int lock_fd;
    int done;
    int existed;              /* the empty mailbox was there before: never changed but filled */
    int created;              /* made by this restore: removed again if the restore is refused */
    uint8_t *got;             /* per manifest message: its file arrived */
};

static int finish_box(struct tool *t, struct store *st, struct rbox *b, size_t *nmsgs,
                      size_t *missing)
{
    const struct jval *msgs = jget(b->j, "messages");
    size_t n = msgs && msgs->t == J_ARR ? msgs->n : 0;
    struct recon_import *im = xzmalloc((n ? n : 1) * sizeof *im);
    const char ***kws = xzmalloc((n ? n : 1) * sizeof *kws);
    size_t k = 0;
    int r = 0;
    if (b->lock_fd < 0 && (r = reconstruct_lock(b->ppath, b->uniqueid, &b->lock_fd)) < 0) goto out;
    for (size_t i = 0; i < n; i++) {
        const struct jval *mj = &msgs->v[i];
        if (!b->got[i]) {
            (*missing)++;
            continue;
        }
        im[k].uid = (uint32_t)jnum(mj, "uid", 0);
        im[k].internaldate = jnum(mj, "internaldate", 0);
        im[k].modseq = (uint64_t)jnum(mj, "modseq", 0);
        const struct jval *fl = jget(mj, "flags");
        for (size_t f = 0; fl && fl->t == J_ARR && f < fl->n; f++)
            for (size_t s = 0; s < sizeof sysflags / sizeof sysflags[0]; s++)
                if (fl->v[f].t == J_STR && !strcasecmp(fl->v[f].str, sysflags[s].name)) im[k].flags |= sysflags[s].bit;
        const struct jval *kw = jget(mj, "keywords");
        size_t nk = kw && kw->t == J_ARR ? kw->n : 0;
        kws[k] = xzmalloc((nk + 1) * sizeof *kws[k]);
        size_t w = 0;
        for (size_t x = 0; x < nk; x++)
            if (kw->v[x].t == J_STR) kws[k][w++] = kw->v[x].str;
        im[k].keywords = kws[k];
        k++;
    }
    r = reconstruct_import(b->ppath, b->uniqueid, (uint32_t)jnum(b->j, "uidvalidity", 0),
                           (uint32_t)jnum(b->j, "uidnext", 1), (uint64_t)jnum(b->j, "highestmodseq", 1), im, k);
    /* UIDVALIDITY only ever rises per name: later creates must stay above the restored value */
    if (r == 0) {
        int u = mboxlist_raise_uidvalidity(st->mboxlist, NULL, (uint32_t)jnum(b->j, "uidvalidity", 0), NULL);
        if (u < 0) tool_error(t, "%s: cannot raise the UIDVALIDITY counter: %s", b->name, cf_strerror(u));
    }
    *nmsgs += k;
out:
    if (r < 0) tool_error(t, "%s: cannot write its index: %s", b->name, cf_strerror(r));
    if (b->lock_fd >= 0) close(b->lock_fd);
    b->lock_fd = -1;
    b->done = 1;
    for (size_t i = 0; i < k; i++) free(kws[i]);
    free(kws);
    free(im);
    return r;
}

/* write_message: the entry's bytes as DIR/<uid>. (the mailbox is locked by us). */
static int write_message(FILE *in, const struct tar_entry *e, const char *dir, uint32_t uid)
{
    char *path = xasprintf("%s/%u.", dir, (unsigned)uid);
    unlink(path);   /* a leftover of an earlier, interrupted restore */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int r = fd < 0 ? -1 : tar_copy(in, e, fd);
    if (r == 0 && fsync(fd) < 0) r = -1;
    if (fd >= 0 && close(fd) < 0) r = -1;
    if (r < 0) unlink(path);
    free(path);
    return r;
}

/* restore_undo: a refused dump leaves nothing behind: the mailboxes it created are deleted
 * (children first: they come after their parents in the manifest). */
static void restore_undo(struct store *st, struct rbox *boxes, size_t nbox)
{
    for (size_t i = nbox; i-- > 0; ) {
        if (boxes[i].lock_fd >= 0) close(boxes[i].lock_fd);
        boxes[i].lock_fd = -1;
        if (boxes[i].created) store_delete(st, boxes[i].name);
    }
}

int cmd_restore(struct tool *t)
{
    const char *newuser = NULL;
    int bad = 0;
    for (int i = 0; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "--user") && i + 1 < t->argc) newuser = t->argv[++i];
        else bad = 1;
    }
    if (bad) {
        tool_error(t, "usage: coffer restore [--user NEWNAME] < FILE");
        return EXIT_USAGE;
    }
    FILE *in = stdin;
    struct tar_entry e;
    struct buf data = BUF_INIT, name = BUF_INIT, acltext = BUF_INIT;
    struct strarr new_scripts = STRARR_INIT;    /* Sieve scripts this run created */
    struct jval man;
    memset(&man, 0, sizeof man);
    struct store *st = NULL;
    struct rbox *boxes = NULL;
    size_t nbox = 0, nmsgs = 0, missing = 0, nscripts = 0;
    int r = 0, rc = EXIT_OK;
    if (tar_next(in, &e) != 1 || strcmp(e.name, "manifest.json") || tar_read(in, &e, &data, MANIFEST_MAX) < 0) {
        tool_error(t, "not a coffer dump: the stream does not start with manifest.json");
        rc = EXIT_USAGE;
        goto out;
    }
    /* jvalue's strtoll reads until a non-digit: the NUL stops it at the end of the buffer */
    buf_cstr(&data);
    struct jparser jp = { data.s, data.s + data.len, 0 };
    if (jvalue(&jp, &man) < 0 || man.t != J_OBJ || !jstr(&man, "format") ||
        strcmp(jstr(&man, "format"), DUMP_FORMAT) || jnum(&man, "version", 0) != DUMP_VERSION ||
        !jstr(&man, "user")) {
        tool_error(t, "manifest.json is not a %s version %d manifest", DUMP_FORMAT, DUMP_VERSION);
        rc = EXIT_USAGE;
        goto out;
    }
    const char *olduser = jstr(&man, "user");
    if (mboxname_valid_user(olduser) != 0 || strchr(olduser, '/')) {
        tool_error(t, "manifest.json: '%s' is not a valid user name", olduser);
        rc = EXIT_USAGE;
        goto out;
    }
    if (!newuser) newuser = olduser;
    if (mboxname_valid_user(newuser) != 0 || strchr(newuser, '/')) {
        tool_error(t, "'%s' is not a valid user name", newuser);
        rc = EXIT_USAGE;
        goto out;
    }
    if ((rc = tool_store_open(t, &st))) goto out;
    const struct jval *mboxes = jget(&man, "mailboxes");
    nbox = mboxes && mboxes->t == J_ARR ? mboxes->n : 0;
    const struct jval *subs = jget(&man, "subscriptions");
    if (nbox > RESTORE_MAX_BOXES || (subs && subs->t == J_ARR && subs->n > RESTORE_MAX_SUBS)) {
        tool_error(t, "manifest.json: more than %d mailboxes or subscriptions", RESTORE_MAX_BOXES);
        rc = EXIT_USAGE;
        goto out;
    }
    boxes = xzmalloc((nbox ? nbox : 1) * sizeof *boxes);
    for (size_t i = 0; i < nbox; i++) boxes[i].lock_fd = -1;
    /* 1. Check everything before changing anything. Every name must be one of the dumped
     * user's, restored under user/NEWUSER: a dump is data from outside, and may not create
     * mailboxes in other users' or the shared namespace (review M5). Every target must be new,
     * or an empty mailbox never used (an INBOX made by delivery). */
    size_t total_msgs = 0;
    for (size_t i = 0; i < nbox; i++) {
        struct rbox *b = &boxes[i];
        b->j = &mboxes->v[i];
        const char *on = jstr(b->j, "name");
        if (!on || !jstr(b->j, "dir")) {
            tool_error(t, "manifest.json: mailbox %zu has no name or dir", i);
            rc = EXIT_USAGE;
            goto out;
        }
        if (!map_name(on, olduser, newuser, &name) || mboxname_valid(buf_cstr(&name)) != 0) {
            tool_error(t, "manifest.json: mailbox '%s' is not one of user %s's: a dump restores "
                       "only into user/%s (nothing was restored)", on, olduser, newuser);
            rc = EXIT_USAGE;
            goto out;
        }
        b->name = xstrdup(buf_cstr(&name));
        for (size_t k = 0; k < i; k++)
            if (!strcmp(boxes[k].name, b->name)) {
                tool_error(t, "manifest.json: mailbox %s is listed twice", b->name);
                rc = EXIT_USAGE;
                goto out;
            }
        const char *why = NULL;
        if (restore_acl(jget(b->j, "acl"), olduser, newuser, &acltext, &why) < 0) {
            tool_error(t, "manifest.json: mailbox %s: %s (nothing was restored)", b->name, why);
            rc = EXIT_USAGE;
            goto out;
        }
        const struct jval *msgs = jget(b->j, "messages");
        size_t nm = msgs && msgs->t == J_ARR ? msgs->n : 0;
        total_msgs += nm;
        if (total_msgs > RESTORE_MAX_MSGS) {
            tool_error(t, "manifest.json: more than %d messages", RESTORE_MAX_MSGS);
            rc = EXIT_USAGE;
            goto out;
        }
        b->got = xzmalloc(nm ? nm : 1);
        struct index_header h;
        int sr = store_status(st, b->name, &h);
        if (sr == 0 && (h.exists || h.uidnext != 1)) {
            tool_error(t, "%s exists and is not empty: restore only into new mailboxes", b->name);
            rc = EXIT_EXISTS;
            goto out;
        }
        b->existed = sr == 0;
        if (sr < 0 && sr != CF_E_NOTFOUND) {
            tool_error(t, "%s: %s", b->name, cf_strerror(sr));
            rc = tool_exit_for(sr);
            goto out;
        }
    }
    /* 2. create them, with their ACL (the old owner's entries become the new owner's). An
     * empty mailbox that exists (an INBOX made by delivery) keeps its own ACL and flags: the
     * dump's ACL replaced it before, so a crafted dump could grant a stranger all rights on a
     * new account's INBOX (review M5). */
    for (size_t i = 0; i < nbox; i++) {
        struct rbox *b = &boxes[i];
        const char *why = NULL;
        restore_acl(jget(b->j, "acl"), olduser, newuser, &acltext, &why);
        const char *su = jstr(b->j, "special_use");
        if (b->existed) {
            r = 0;
        } else {
            r = store_create(st, b->name, NULL, buf_cstr(&acltext), su && *su ? su : NULL,
                             STORE_CREATE_PARENTS);
            if (r == 0) b->created = 1;
        }
        if (r < 0) {
            tool_error(t, "cannot create %s: %s", b->name, cf_strerror(r));
            rc = tool_exit_for(r);
            goto out;
        }
        struct mboxlist_entry me;
        mboxlist_entry_init(&me);
        r = store_lookup(st, b->name, &me);
        if (r == 1) {
            b->ppath = xstrdup(store_partition_path(st, me.partition));
            memcpy(b->uniqueid, me.uniqueid, sizeof b->uniqueid);
            b->dir = partition_mailbox_dir(b->ppath, b->uniqueid);
            r = 0;
        } else if (r == 0) {
            r = CF_E_NOTFOUND;
        }
        mboxlist_entry_fini(&me);
        if (r < 0) {
            tool_error(t, "%s: %s", b->name, cf_strerror(r));
            rc = tool_exit_for(r);
            goto out;
        }
    }
    /* 3. the files: messages (mailbox by mailbox, each under its write lock), scripts */
    const struct jval *sieve = jget(&man, "sieve");
    char *sdir = sieve_dir(t->cfg, newuser);
    int cur = -1, tr, refused = 0;
    uint64_t max_msg = (uint64_t)config_int(t->cfg, CFG_MAX_LITERAL);
    while ((tr = tar_next(in, &e)) == 1) {
        unsigned long bi = 0, uid = 0;
        char tail[8] = "";
        /* Names are never used as paths (files go to paths made from numbers), but a dump
         * with absolute names, "..", links or devices was not written by coffer dump. */
        if (!entry_name_ok(e.name) || strchr("1234567", e.type)) {
            tool_error(t, "%s: a link, device, absolute name or '..' in the dump: refused "
                       "(nothing was restored)", e.name);
            rc = EXIT_USAGE;
            refused = 1;
            break;
        }
        if (e.type != '0') {
            tar_copy(in, &e, -1);   /* directories and the like: nothing of ours */
            continue;
        }
        if (sscanf(e.name, "mailboxes/%lu/%lu.eml%7s", &bi, &uid, tail) == 2 && bi < nbox && uid &&
            uid < UINT32_MAX) {
            struct rbox *b = &boxes[bi];
            if ((int)bi != cur) {
                if (cur >= 0 && finish_box(t, st, &boxes[cur], &nmsgs, &missing) < 0) { rc = EXIT_FAIL; break; }
                if (b->done) {
                    tool_error(t, "%s: its messages are not together in the stream", e.name);
                    rc = EXIT_USAGE;
                    break;
                }
                cur = (int)bi;
                if ((r = reconstruct_lock(b->ppath, b->uniqueid, &b->lock_fd)) < 0) {
                    tool_error(t, "%s: cannot lock: %s", b->name, cf_strerror(r));
                    rc = EXIT_FAIL;
                    break;
                }
            }
            const struct jval *msgs = jget(b->j, "messages");
            size_t mi = (size_t)-1;
            for (size_t k = 0; msgs && msgs->t == J_ARR && k < msgs->n; k++)
                if ((unsigned long)jnum(&msgs->v[k], "uid", 0) == uid) { mi = k; break; }
            if (mi == (size_t)-1) {
                fprintf(stderr, "coffer restore: %s is not in the manifest: skipped\n", e.name);
                tar_copy(in, &e, -1);
                continue;
            }
            if (e.size > max_msg) {
                tool_error(t, "%s: %llu bytes, more than max_literal (%llu): refused (nothing "
                           "was restored)", e.name, (unsigned long long)e.size,
                           (unsigned long long)max_msg);
                rc = EXIT_USAGE;
                refused = 1;
                break;
            }
            if (write_message(in, &e, b->dir, (uint32_t)uid) < 0) {
                tool_error(t, "%s: cannot write %s: %s", b->name, e.name, strerror(errno));
                rc = EXIT_FAIL;
                break;
            }
            b->got[mi] = 1;
            continue;
        }
        size_t nl = strlen(e.name);
        if (!strncmp(e.name, "sieve/", 6) && nl > 12 && !strcmp(e.name + nl - 6, ".sieve") &&
            !strchr(e.name + 6, '/') && e.name[6] != '.') {
            char *stem = xstrndup(e.name + 6, nl - 12);
            int ok = sieve_name_ok(stem);
            free(stem);
            if (!ok || e.size > SIEVE_MAX_SCRIPT) {
                tool_error(t, "%s: not a valid Sieve script name, or larger than %d bytes: "
                           "refused (nothing was restored)", e.name, SIEVE_MAX_SCRIPT);
                rc = EXIT_USAGE;
                refused = 1;
                break;
            }
            if (tar_read(in, &e, &data, SIEVE_MAX_SCRIPT) < 0) { tr = -1; break; }
            /* as PUTSCRIPT would: lmtpd runs it for every delivery */
            struct buf serr = BUF_INIT;
            if (memchr(data.s ? data.s : "", '\0', data.len) ||
                sieve_check(buf_cstr(&data), &serr) < 0) {
                tool_error(t, "%s: not a valid Sieve script, skipped: %s", e.name, buf_cstr(&serr));
                buf_fini(&serr);
                rc = EXIT_FAIL;
                continue;
            }
            buf_fini(&serr);
            char *path = xasprintf("%s/%s", sdir, e.name + 6);
            int had = access(path, F_OK) == 0;
            if (mkdir_p(sdir, 0700) < 0 || file_write_atomic(path, data.s ? data.s : "", data.len, 0600) < 0) {
                tool_error(t, "cannot write %s", path);
                rc = EXIT_FAIL;
            } else {
                nscripts++;
                if (!had) strarr_add(&new_scripts, path);
            }
            free(path);
            continue;
        }
        fprintf(stderr, "coffer restore: unknown entry %s: skipped\n", e.name);
        if (tar_copy(in, &e, -1) < 0) { tr = -1; break; }
    }
    if (tr < 0 && rc == EXIT_OK) {
        tool_error(t, "the tar stream is damaged or cut short");
        rc = EXIT_FAIL;
    }
    if (refused) {
        restore_undo(st, boxes, nbox);
        for (size_t i = 0; i < new_scripts.count; i++) unlink(new_scripts.v[i]);
        free(sdir);
        goto out;
    }
    /* mailboxes without messages in the stream still get their uidvalidity and uidnext */
    for (size_t i = 0; i < nbox; i++)
        if (!boxes[i].done && finish_box(t, st, &boxes[i], &nmsgs, &missing) < 0) rc = EXIT_FAIL;
    /* 4. Sieve activation, subscriptions, quota */
    const char *act = jstr(sieve, "active");
    char *act_path = act ? xasprintf("%s/%s.sieve", sdir, act) : NULL;
    /* only a script that was restored (and so passed sieve_check) */
    if (act && nscripts && sieve_name_ok(act) && access(act_path, F_OK) == 0) {
        char *target = xasprintf("%s.sieve", act), *link = xasprintf("%s/active", sdir);
        char *tmp = xasprintf("%s/active.tmp.%d", sdir, (int)getpid());
        unlink(tmp);
        if (symlink(target, tmp) < 0 || rename(tmp, link) < 0) {
            tool_error(t, "cannot activate the Sieve script %s: %s", act, strerror(errno));
            unlink(tmp);
            rc = EXIT_FAIL;
        }
        free(target);
        free(link);
        free(tmp);
    }
    free(act_path);
    free(sdir);
    for (size_t i = 0; subs && subs->t == J_ARR && i < subs->n; i++) {
        if (subs->v[i].t != J_STR) continue;
        /* a subscription grants nothing: one to another user's shared folder stays */
        map_name(subs->v[i].str, olduser, newuser, &name);
        if (mboxname_valid(buf_cstr(&name)) != 0) continue;
        if (subs_add(st->subs, NULL, newuser, buf_cstr(&name)) < 0) rc = EXIT_FAIL;
    }
    const struct jval *qj = jget(&man, "quota");
    struct buf inbox = BUF_INIT;
    mboxname_user_inbox(newuser, &inbox);
    r = 0;
    if (qj && qj->t == J_OBJ)
        r = quotadb_set_limits(st->quota, NULL, buf_cstr(&inbox), jnum(qj, "storage_kib", QUOTA_UNLIMITED),
                               jnum(qj, "messages", QUOTA_UNLIMITED));
    /* the imported messages bypassed the quota: recount the user's root (whether the dump
     * made it or it was there already) under its lock */
    if (!r && quotadb_get(st->quota, NULL, buf_cstr(&inbox), NULL) == 1)
        r = store_quota_fix(st, buf_cstr(&inbox), NULL);
    if (r < 0) {
        tool_error(t, "cannot set the quota of %s: %s", buf_cstr(&inbox), cf_strerror(r));
        rc = EXIT_FAIL;
    }
    buf_fini(&inbox);
    struct table tab;
    table_init(&tab, (const char *const[]){ "mailbox", "messages#", "uidvalidity#", NULL });
    for (size_t i = 0; i < nbox; i++) {
        struct index_header h;
        char n1[32] = "?", n2[32] = "?";
        if (store_status(st, boxes[i].name, &h) == 0) {
            snprintf(n1, sizeof n1, "%u", (unsigned)h.exists);
            snprintf(n2, sizeof n2, "%u", (unsigned)h.uidvalidity);
        }
        table_add(&tab, (const char *const[]){ boxes[i].name, n1, n2 });
    }
    table_print(&tab, t->json);
    table_fini(&tab);
    fprintf(stderr, "coffer restore: %s: %zu mailbox%s, %zu messages, %zu Sieve script%s%s\n", newuser,
            nbox, nbox == 1 ? "" : "es", nmsgs, nscripts, nscripts == 1 ? "" : "s",
            missing ? " (messages listed but absent from the stream were skipped)" : "");
out:
    for (size_t i = 0; i < nbox && boxes; i++) {
        if (boxes[i].lock_fd >= 0) close(boxes[i].lock_fd);
        free(boxes[i].name);
        free(boxes[i].ppath);
        free(boxes[i].dir);
        free(boxes[i].got);
    }
    free(boxes);
    buf_fini(&acltext);
    strarr_fini(&new_scripts);
    jfree(&man);
    buf_fini(&data);
    buf_fini(&name);
    store_close(&st);
    return rc;
}
