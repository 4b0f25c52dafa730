/* cmd-restore.c: `coffer restore [--user NEWNAME] < FILE`: recreate an account from what
 * `coffer dump` wrote (cmd-dump.c; the format is in coffer-dump(8)). A dump is data from
 * outside: everything is checked before anything changes, names are mapped into
 * user/NEWNAME only, and a refused dump leaves nothing behind. The tar and JSON reader is
 * dump-read.c. */
#include "tool.h"
#include "cmd.h"
#include "dump.h"
#include "dump-read.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/base64.h"
#include "core/xmalloc.h"
#include "imap/imap-metadata.h"
#include "sieve/sieve.h"
#include "store/acl.h"
#include "store/mboxname.h"
#include "store/partition.h"
#include "store/reconstruct.h"
#include "store/store.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Restore takes a dump from anywhere, so every count in the manifest is bounded (review M5):
 * far above what a real account holds, far below what exhausts memory. */
#define RESTORE_MAX_BOXES 100000
#define RESTORE_MAX_MSGS 50000000
#define RESTORE_MAX_ACL 256
#define RESTORE_MAX_SUBS 100000

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

/* urlauth_key_parse: the manifest's "urlauth_key" of a mailbox (absent or null: none) into
 * key. 1 when there is one, 0 none, -1 when it is not 2 * STORE_URLAUTH_KEY_LEN lower-case
 * hex digits, as coffer dump writes it. */
static int urlauth_key_parse(const struct jval *kj, unsigned char *key)
{
    static const char hex[] = "0123456789abcdef";
    if (!kj || kj->t == J_NULL) return 0;
    if (kj->t != J_STR || strlen(kj->str) != 2 * STORE_URLAUTH_KEY_LEN) return -1;
    for (size_t i = 0; i < STORE_URLAUTH_KEY_LEN; i++) {
        const char *h = strchr(hex, kj->str[2 * i]), *l = strchr(hex, kj->str[2 * i + 1]);
        if (!h || !l || !*h || !*l) return -1;
        key[i] = (unsigned char)((h - hex) * 16 + (l - hex));
    }
    return 1;
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
            for (size_t s = 0; s < dump_nsysflags; s++)
                if (fl->v[f].t == J_STR && !strcasecmp(fl->v[f].str, dump_sysflags[s].name))
                    im[k].flags |= dump_sysflags[s].bit;
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
        int u = store_raise_uidvalidity(st, (uint32_t)jnum(b->j, "uidvalidity", 0), NULL);
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
        if (boxes[i].created) store_delete_opts(st, boxes[i].name, STORE_DELETE_NOW);
    }
}


/* One restore as it runs. */
struct restore {
    struct tool *t;
    struct store *st;
    FILE *in;
    const char *olduser, *newuser;
    struct jval man;              /* the manifest */
    struct buf data;              /* the manifest's bytes, then each Sieve script's */
    struct buf name, acltext;
    struct strarr new_scripts;    /* Sieve scripts this run created */
    struct rbox *boxes;
    size_t nbox, nmsgs, missing, nscripts;
    uint64_t max_msg;             /* max_literal: the largest message taken */
    int cur;                      /* the mailbox whose messages are arriving, or -1 */
    int refused;                  /* the stream holds what coffer dump never writes */
    int rc;                       /* the exit code so far */
};

/* RESTORE_REFUSE: report a refusal of the manifest or the stream; sets and yields EXIT_USAGE. */
#define RESTORE_REFUSE(rs, ...) (tool_error((rs)->t, __VA_ARGS__), (rs)->rc = EXIT_USAGE)

/* restore_manifest: read manifest.json, the stream's first entry, and check its format and
 * user names. 0 or an exit code (reported). */
static int restore_manifest(struct restore *rs)
{
    struct tar_entry e;
    if (tar_next(rs->in, &e) != 1 || strcmp(e.name, "manifest.json") ||
        tar_read(rs->in, &e, &rs->data, MANIFEST_MAX) < 0)
        return RESTORE_REFUSE(rs, "not a coffer dump: the stream does not start with manifest.json");
    /* jvalue's strtoll reads until a non-digit: the NUL stops it at the end of the buffer */
    buf_cstr(&rs->data);
    struct jparser jp = { rs->data.s, rs->data.s + rs->data.len, 0 };
    struct jval *man = &rs->man;
    if (jvalue(&jp, man) < 0 || man->t != J_OBJ || !jstr(man, "format") ||
        strcmp(jstr(man, "format"), DUMP_FORMAT) || jnum(man, "version", 0) != DUMP_VERSION ||
        !jstr(man, "user"))
        return RESTORE_REFUSE(rs, "manifest.json is not a %s version %d manifest", DUMP_FORMAT, DUMP_VERSION);
    rs->olduser = jstr(man, "user");
    if (mboxname_valid_user(rs->olduser) != 0 || strchr(rs->olduser, '/'))
        return RESTORE_REFUSE(rs, "manifest.json: '%s' is not a valid user name", rs->olduser);
    if (!rs->newuser) rs->newuser = rs->olduser;
    if (mboxname_valid_user(rs->newuser) != 0 || strchr(rs->newuser, '/'))
        return RESTORE_REFUSE(rs, "'%s' is not a valid user name", rs->newuser);
    return 0;
}

/* restore_check_box: step 1 for the i'th mailbox of the manifest: its name maps into the new
 * user's, it is not listed twice, its ACL is valid, the message count stays bounded, and the
 * target is new or empty. 0 or an exit code (reported). */
static int restore_check_box(struct restore *rs, size_t i, size_t *total_msgs)
{
    const struct jval *mboxes = jget(&rs->man, "mailboxes");
    struct rbox *b = &rs->boxes[i];
    b->j = &mboxes->v[i];
    const char *on = jstr(b->j, "name");
    if (!on || !jstr(b->j, "dir"))
        return RESTORE_REFUSE(rs, "manifest.json: mailbox %zu has no name or dir", i);
    if (!map_name(on, rs->olduser, rs->newuser, &rs->name) || mboxname_valid(buf_cstr(&rs->name)) != 0)
        return RESTORE_REFUSE(rs, "manifest.json: mailbox '%s' is not one of user %s's: a dump restores "
                              "only into user/%s (nothing was restored)", on, rs->olduser, rs->newuser);
    b->name = xstrdup(buf_cstr(&rs->name));
    for (size_t k = 0; k < i; k++)
        if (!strcmp(rs->boxes[k].name, b->name))
            return RESTORE_REFUSE(rs, "manifest.json: mailbox %s is listed twice", b->name);
    const char *why = NULL;
    if (restore_acl(jget(b->j, "acl"), rs->olduser, rs->newuser, &rs->acltext, &why) < 0)
        return RESTORE_REFUSE(rs, "manifest.json: mailbox %s: %s (nothing was restored)", b->name, why);
    unsigned char key[STORE_URLAUTH_KEY_LEN];
    if (urlauth_key_parse(jget(b->j, "urlauth_key"), key) < 0)
        return RESTORE_REFUSE(rs, "manifest.json: mailbox %s: its urlauth_key is not %d lower-case "
                              "hex digits (nothing was restored)", b->name, 2 * STORE_URLAUTH_KEY_LEN);
    const struct jval *msgs = jget(b->j, "messages");
    size_t nm = msgs && msgs->t == J_ARR ? msgs->n : 0;
    *total_msgs += nm;
    if (*total_msgs > RESTORE_MAX_MSGS)
        return RESTORE_REFUSE(rs, "manifest.json: more than %d messages", RESTORE_MAX_MSGS);
    b->got = xzmalloc(nm ? nm : 1);
    struct index_header h;
    int sr = store_status(rs->st, b->name, &h);
    if (sr == 0 && (h.exists || h.uidnext != 1)) {
        tool_error(rs->t, "%s exists and is not empty: restore only into new mailboxes", b->name);
        return rs->rc = EXIT_EXISTS;
    }
    b->existed = sr == 0;
    if (sr < 0 && sr != CF_E_NOTFOUND) {
        tool_error(rs->t, "%s: %s", b->name, cf_strerror(sr));
        return rs->rc = tool_exit_for(sr);
    }
    return 0;
}

/* restore_check: 1. Check everything before changing anything. Every name must be one of the
 * dumped user's, restored under user/NEWUSER: a dump is data from outside, and may not create
 * mailboxes in other users' or the shared namespace (review M5). Every target must be new, or
 * an empty mailbox never used (an INBOX made by delivery). 0 or an exit code (reported). */
static int restore_check(struct restore *rs)
{
    const struct jval *mboxes = jget(&rs->man, "mailboxes");
    rs->nbox = mboxes && mboxes->t == J_ARR ? mboxes->n : 0;
    const struct jval *subs = jget(&rs->man, "subscriptions");
    if (rs->nbox > RESTORE_MAX_BOXES || (subs && subs->t == J_ARR && subs->n > RESTORE_MAX_SUBS))
        return RESTORE_REFUSE(rs, "manifest.json: more than %d mailboxes or subscriptions", RESTORE_MAX_BOXES);
    rs->boxes = xzmalloc((rs->nbox ? rs->nbox : 1) * sizeof *rs->boxes);
    for (size_t i = 0; i < rs->nbox; i++) rs->boxes[i].lock_fd = -1;
    size_t total_msgs = 0;
    for (size_t i = 0; i < rs->nbox; i++)
        if (restore_check_box(rs, i, &total_msgs)) return rs->rc;
    return 0;
}

/* restore_create: 2. create the mailboxes, with their ACL (the old owner's entries become the
 * new owner's). An empty mailbox that exists (an INBOX made by delivery) keeps its own ACL and
 * flags: the dump's ACL replaced it before, so a crafted dump could grant a stranger all
 * rights on a new account's INBOX (review M5). 0 or an exit code (reported). */
static int restore_create(struct restore *rs)
{
    for (size_t i = 0; i < rs->nbox; i++) {
        struct rbox *b = &rs->boxes[i];
        const char *why = NULL;
        int r;
        restore_acl(jget(b->j, "acl"), rs->olduser, rs->newuser, &rs->acltext, &why);
        const char *su = jstr(b->j, "special_use");
        if (b->existed) {
            r = 0;
        } else {
            r = store_create(rs->st, b->name, NULL, buf_cstr(&rs->acltext), su && *su ? su : NULL,
                             STORE_CREATE_PARENTS);
            if (r == 0) b->created = 1;
        }
        if (r < 0) {
            tool_error(rs->t, "cannot create %s: %s", b->name, cf_strerror(r));
            return rs->rc = tool_exit_for(r);
        }
        struct mboxlist_entry me;
        mboxlist_entry_init(&me);
        r = store_lookup(rs->st, b->name, &me);
        if (r == 1) {
            b->ppath = xstrdup(store_partition_path(rs->st, me.partition));
            memcpy(b->uniqueid, me.uniqueid, sizeof b->uniqueid);
            b->dir = partition_mailbox_dir(b->ppath, b->uniqueid);
            r = 0;
        } else if (r == 0) {
            r = CF_E_NOTFOUND;
        }
        mboxlist_entry_fini(&me);
        if (r < 0) {
            tool_error(rs->t, "%s: %s", b->name, cf_strerror(r));
            return rs->rc = tool_exit_for(r);
        }
    }
    return 0;
}

/* What restore_files does after one entry. */
enum restore_next { ENTRY_NEXT, ENTRY_STOP, ENTRY_DAMAGED };

/* restore_message: the entry mailboxes/BI/UID.eml: the message file, written under the
 * mailbox's lock (the previous mailbox's index is written when the next one starts). */
static enum restore_next restore_message(struct restore *rs, const struct tar_entry *e,
                                         unsigned long bi, unsigned long uid)
{
    struct rbox *b = &rs->boxes[bi];
    if ((int)bi != rs->cur) {
        if (rs->cur >= 0 && finish_box(rs->t, rs->st, &rs->boxes[rs->cur], &rs->nmsgs, &rs->missing) < 0) {
            rs->rc = EXIT_FAIL;
            return ENTRY_STOP;
        }
        if (b->done) {
            RESTORE_REFUSE(rs, "%s: its messages are not together in the stream", e->name);
            return ENTRY_STOP;
        }
        rs->cur = (int)bi;
        int r = reconstruct_lock(b->ppath, b->uniqueid, &b->lock_fd);
        if (r < 0) {
            tool_error(rs->t, "%s: cannot lock: %s", b->name, cf_strerror(r));
            rs->rc = EXIT_FAIL;
            return ENTRY_STOP;
        }
    }
    const struct jval *msgs = jget(b->j, "messages");
    size_t mi = (size_t)-1;
    for (size_t k = 0; msgs && msgs->t == J_ARR && k < msgs->n; k++)
        if ((unsigned long)jnum(&msgs->v[k], "uid", 0) == uid) { mi = k; break; }
    if (mi == (size_t)-1) {
        fprintf(stderr, "coffer restore: %s is not in the manifest: skipped\n", e->name);
        tar_copy(rs->in, e, -1);
        return ENTRY_NEXT;
    }
    if (e->size > rs->max_msg) {
        RESTORE_REFUSE(rs, "%s: %llu bytes, more than max_literal (%llu): refused (nothing "
                       "was restored)", e->name, (unsigned long long)e->size,
                       (unsigned long long)rs->max_msg);
        rs->refused = 1;
        return ENTRY_STOP;
    }
    if (write_message(rs->in, e, b->dir, (uint32_t)uid) < 0) {
        tool_error(rs->t, "%s: cannot write %s: %s", b->name, e->name, strerror(errno));
        rs->rc = EXIT_FAIL;
        return ENTRY_STOP;
    }
    b->got[mi] = 1;
    return ENTRY_NEXT;
}

/* restore_script: the entry sieve/NAME.sieve: checked as PUTSCRIPT would, then written. */
static enum restore_next restore_script(struct restore *rs, const struct tar_entry *e)
{
    size_t nl = strlen(e->name);
    char *stem = xstrndup(e->name + 6, nl - 12);
    if (!sieve_name_valid(stem) || e->size > SIEVE_MAX_SCRIPT) {
        free(stem);
        RESTORE_REFUSE(rs, "%s: not a valid Sieve script name, or larger than %d bytes: "
                       "refused (nothing was restored)", e->name, SIEVE_MAX_SCRIPT);
        rs->refused = 1;
        return ENTRY_STOP;
    }
    if (tar_read(rs->in, e, &rs->data, SIEVE_MAX_SCRIPT) < 0) {
        free(stem);
        return ENTRY_DAMAGED;
    }
    /* the script store checks it as PUTSCRIPT would (lmtpd runs it for every delivery); the
     * user's limits do not apply: the account comes back as it was dumped */
    char *old = NULL;
    size_t oldlen;
    int had = sieve_get(rs->t->cfg, rs->newuser, stem, &old, &oldlen) == 0;
    free(old);
    struct buf serr = BUF_INIT;
    int r = sieve_put(rs->t->cfg, rs->newuser, stem, rs->data.s ? rs->data.s : "", rs->data.len,
                      0, &serr);
    if (r == CF_E_PARSE) {
        tool_error(rs->t, "%s: not a valid Sieve script, skipped: %s", e->name, buf_cstr(&serr));
        rs->rc = EXIT_FAIL;
    } else if (r < 0) {
        tool_error(rs->t, "cannot store %s: %s", e->name, cf_strerror(r));
        rs->rc = EXIT_FAIL;
    } else {
        rs->nscripts++;
        if (!had) strarr_add(&rs->new_scripts, stem);
    }
    buf_fini(&serr);
    free(stem);
    return ENTRY_NEXT;
}

/* restore_entry: one tar entry after the manifest. */
static enum restore_next restore_entry(struct restore *rs, const struct tar_entry *e)
{
    unsigned long bi = 0, uid = 0;
    char tail[8] = "";
    /* Names are never used as paths (files go to paths made from numbers), but a dump
     * with absolute names, "..", links or devices was not written by coffer dump. */
    if (!entry_name_ok(e->name) || strchr("1234567", e->type)) {
        RESTORE_REFUSE(rs, "%s: a link, device, absolute name or '..' in the dump: refused "
                       "(nothing was restored)", e->name);
        rs->refused = 1;
        return ENTRY_STOP;
    }
    if (e->type != '0') {
        tar_copy(rs->in, e, -1);   /* directories and the like: nothing of ours */
        return ENTRY_NEXT;
    }
    if (sscanf(e->name, "mailboxes/%lu/%lu.eml%7s", &bi, &uid, tail) == 2 && bi < rs->nbox && uid &&
        uid < UINT32_MAX)
        return restore_message(rs, e, bi, uid);
    size_t nl = strlen(e->name);
    if (!strncmp(e->name, "sieve/", 6) && nl > 12 && !strcmp(e->name + nl - 6, ".sieve") &&
        !strchr(e->name + 6, '/') && e->name[6] != '.')
        return restore_script(rs, e);
    fprintf(stderr, "coffer restore: unknown entry %s: skipped\n", e->name);
    if (tar_copy(rs->in, e, -1) < 0) return ENTRY_DAMAGED;
    return ENTRY_NEXT;
}

/* restore_files: 3. the files: messages (mailbox by mailbox, each under its write lock),
 * scripts. */
static void restore_files(struct restore *rs)
{
    struct tar_entry e;
    int tr;
    rs->cur = -1;
    rs->max_msg = (uint64_t)config_int(rs->t->cfg, CFG_MAX_LITERAL);
    while ((tr = tar_next(rs->in, &e)) == 1) {
        enum restore_next n = restore_entry(rs, &e);
        if (n == ENTRY_DAMAGED) tr = -1;
        if (n != ENTRY_NEXT) break;
    }
    if (tr < 0 && rs->rc == EXIT_OK) {
        tool_error(rs->t, "the tar stream is damaged or cut short");
        rs->rc = EXIT_FAIL;
    }
}

/* restore_sieve_active: activate the dump's active Sieve script, only one that was restored
 * (and so passed sieve_check). */
static void restore_sieve_active(struct restore *rs)
{
    const char *act = jstr(jget(&rs->man, "sieve"), "active");
    if (!act || !rs->nscripts || !sieve_name_valid(act)) return;
    char *data = NULL;
    size_t len;
    if (sieve_get(rs->t->cfg, rs->newuser, act, &data, &len) == 0) {
        int r = sieve_activate(rs->t->cfg, rs->newuser, act);
        if (r < 0) {
            tool_error(rs->t, "cannot activate the Sieve script %s: %s", act, cf_strerror(r));
            rs->rc = EXIT_FAIL;
        }
    }
    free(data);
}

/* restore_metadata: the annotations of one mailbox (internal name; "" the server) from the
 * manifest's [[ENTRY, BASE64], ...] list: shared ones (not on the server) and private ones,
 * which become the new user's (never /private/specialuse: the special_use field has that).
 * Entries a client could not set are skipped with a warning; the limits apply as to
 * SETMETADATA. 0 or an error (reported). */
static int restore_metadata(struct restore *rs, const char *what, const char *mailbox,
                            const struct jval *list)
{
    int r = 0;
    struct buf val = BUF_INIT;
    for (size_t i = 0; list && list->t == J_ARR && i < list->n; i++) {
        const struct jval *p = &list->v[i];
        const char *entry = p->t == J_ARR && p->n == 2 && p->v[0].t == J_STR ? p->v[0].str : NULL;
        const char *b64 = entry && p->v[1].t == J_STR ? p->v[1].str : NULL;
        buf_reset(&val);
        if (!b64 || !imap_metadata_entry_valid(entry, strlen(entry), 1) ||
            (!*mailbox && !strncasecmp(entry, "/shared", 7)) ||
            !strcasecmp(entry, STORE_METADATA_SPECIALUSE) ||
            base64_decode(b64, strlen(b64), &val) < 0) {
            fprintf(stderr, "coffer restore: %s: annotation %zu is not one coffer dump writes: "
                    "skipped\n", what, i);
            continue;
        }
        long long maxsize = 0;
        struct store_metadata_item it = { entry, val.s ? val.s : "", val.len };
        int sr = store_metadata_set(rs->st, mailbox, rs->newuser, &it, 1, &maxsize);
        if (sr < 0) {
            tool_error(rs->t, "%s: cannot restore the annotation %s: %s", what, entry,
                       sr == CF_E_LIMIT ? "over a metadata_max_* limit" : cf_strerror(sr));
            r = sr;
        }
    }
    buf_fini(&val);
    return r;
}

/* restore_urlauth: the dumped URLAUTH access keys (checked in step 1), each as the restored
 * key of its mailbox, bounded to the messages restored (store_urlauth_restore: whoever holds
 * the dump knows it, so it never signs URLs for later mail). A URL names its user, so under
 * another user name they would verify nothing: kept only when the name stays. */
static void restore_urlauth(struct restore *rs)
{
    size_t skipped = 0;
    for (size_t i = 0; i < rs->nbox; i++) {
        struct rbox *b = &rs->boxes[i];
        unsigned char key[STORE_URLAUTH_KEY_LEN];
        if (urlauth_key_parse(jget(b->j, "urlauth_key"), key) != 1) continue;
        if (strcmp(rs->olduser, rs->newuser)) {
            skipped++;
            continue;
        }
        struct index_header h;
        int r = store_status(rs->st, b->name, &h);
        if (r == 0 && h.uidnext > 1)
            r = store_urlauth_restore(rs->st, rs->newuser, b->uniqueid, key, h.uidvalidity,
                                      h.uidnext);
        if (r < 0) {
            tool_error(rs->t, "%s: cannot restore its URLAUTH key: %s", b->name, cf_strerror(r));
            rs->rc = EXIT_FAIL;
        }
    }
    if (skipped)
        fprintf(stderr, "coffer restore: the URLAUTH keys of %zu mailbox%s are not carried to "
                "another user name\n", skipped, skipped == 1 ? "" : "es");
}

/* restore_settings: 4. Sieve activation, subscriptions, quota, annotations, URLAUTH keys. */
static void restore_settings(struct restore *rs)
{
    for (size_t i = 0; i < rs->nbox; i++)
        if (restore_metadata(rs, rs->boxes[i].name, rs->boxes[i].name,
                             jget(rs->boxes[i].j, "metadata")) < 0)
            rs->rc = EXIT_FAIL;
    if (restore_metadata(rs, "the server", STORE_METADATA_SERVER,
                         jget(&rs->man, "server_metadata")) < 0)
        rs->rc = EXIT_FAIL;
    restore_sieve_active(rs);
    restore_urlauth(rs);
    const struct jval *subs = jget(&rs->man, "subscriptions");
    for (size_t i = 0; subs && subs->t == J_ARR && i < subs->n; i++) {
        if (subs->v[i].t != J_STR) continue;
        /* a subscription grants nothing: one to another user's shared folder stays */
        map_name(subs->v[i].str, rs->olduser, rs->newuser, &rs->name);
        if (mboxname_valid(buf_cstr(&rs->name)) != 0) continue;
        if (store_subscribe(rs->st, rs->newuser, buf_cstr(&rs->name), 0) < 0) rs->rc = EXIT_FAIL;
    }
    const struct jval *qj = jget(&rs->man, "quota");
    struct buf inbox = BUF_INIT;
    mboxname_user_inbox(rs->newuser, &inbox);
    int r = 0;
    if (qj && qj->t == J_OBJ)
        r = store_quota_set(rs->st, buf_cstr(&inbox), jnum(qj, "storage_kib", QUOTA_UNLIMITED),
                            jnum(qj, "messages", QUOTA_UNLIMITED), NULL);
    /* the imported messages bypassed the quota: recount the user's root (whether the dump
     * made it or it was there already) under its lock */
    if (!r && store_quota_get(rs->st, buf_cstr(&inbox), NULL) == 1)
        r = store_quota_fix(rs->st, buf_cstr(&inbox), NULL);
    if (r < 0) {
        tool_error(rs->t, "cannot set the quota of %s: %s", buf_cstr(&inbox), cf_strerror(r));
        rs->rc = EXIT_FAIL;
    }
    buf_fini(&inbox);
}

/* restore_report: the restored mailboxes as a table, and a summary line on stderr. */
static void restore_report(struct restore *rs)
{
    struct table tab;
    table_init(&tab, (const char *const[]){ "mailbox", "messages#", "uidvalidity#", NULL });
    for (size_t i = 0; i < rs->nbox; i++) {
        struct index_header h;
        char n1[32] = "?", n2[32] = "?";
        if (store_status(rs->st, rs->boxes[i].name, &h) == 0) {
            snprintf(n1, sizeof n1, "%u", (unsigned)h.exists);
            snprintf(n2, sizeof n2, "%u", (unsigned)h.uidvalidity);
        }
        table_add(&tab, (const char *const[]){ rs->boxes[i].name, n1, n2 });
    }
    table_print(&tab, rs->t->json);
    table_fini(&tab);
    fprintf(stderr, "coffer restore: %s: %zu mailbox%s, %zu messages, %zu Sieve script%s%s\n", rs->newuser,
            rs->nbox, rs->nbox == 1 ? "" : "es", rs->nmsgs, rs->nscripts, rs->nscripts == 1 ? "" : "s",
            rs->missing ? " (messages listed but absent from the stream were skipped)" : "");
}

static void restore_fini(struct restore *rs)
{
    for (size_t i = 0; i < rs->nbox && rs->boxes; i++) {
        if (rs->boxes[i].lock_fd >= 0) close(rs->boxes[i].lock_fd);
        free(rs->boxes[i].name);
        free(rs->boxes[i].ppath);
        free(rs->boxes[i].dir);
        free(rs->boxes[i].got);
    }
    free(rs->boxes);
    buf_fini(&rs->acltext);
    strarr_fini(&rs->new_scripts);
    jfree(&rs->man);
    buf_fini(&rs->data);
    buf_fini(&rs->name);
    store_close(&rs->st);
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
    struct restore rs;
    memset(&rs, 0, sizeof rs);
    rs.t = t;
    rs.in = stdin;
    rs.newuser = newuser;
    rs.rc = EXIT_OK;
    if (restore_manifest(&rs) || (rs.rc = tool_store_open(t, &rs.st)) || restore_check(&rs) ||
        restore_create(&rs))
        goto out;
    restore_files(&rs);
    if (rs.refused) {
        restore_undo(rs.st, rs.boxes, rs.nbox);
        for (size_t i = 0; i < rs.new_scripts.count; i++)
            sieve_delete(t->cfg, rs.newuser, rs.new_scripts.v[i]);
        goto out;
    }
    /* mailboxes without messages in the stream still get their uidvalidity and uidnext */
    for (size_t i = 0; i < rs.nbox; i++)
        if (!rs.boxes[i].done && finish_box(t, rs.st, &rs.boxes[i], &rs.nmsgs, &rs.missing) < 0)
            rs.rc = EXIT_FAIL;
    restore_settings(&rs);
    restore_report(&rs);
out:
    restore_fini(&rs);
    return rs.rc;
}
