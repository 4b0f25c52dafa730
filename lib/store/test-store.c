/* test-store.c: mailbox-level operations (store.c) over real Berkeley DB and real directories. */
#include "store/store.h"
#include "store/store-mail.h"
#include "store/deliver.h"
#include "store/mbheader.h"
#include "store/quotalock.h"
#include "store/reconstruct.h"
#include "store/store-retained.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "store/store-int.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/coffer-storetest-XXXXXX";

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static char *mbdir(struct store *st, const char *name)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    char *d = NULL;
    if (store_lookup(st, name, &e) == 1)
        d = xasprintf("%s/%.2s/%s", store_partition_path(st, e.partition), e.uniqueid, e.uniqueid);
    mboxlist_entry_fini(&e);
    return d;
}

/* usage_is: root's usage in quota.db is bytes/msgs, and so is a recount from the headers */
static void usage_is(struct store *st, const char *root, int64_t bytes, int64_t msgs)
{
    struct quota q;
    int64_t b = -1, m = -1;
    UNIT_EQ_INT(quotadb_get(st->quota, NULL, root, &q), 1);
    UNIT_EQ_INT(q.used_bytes, bytes);
    UNIT_EQ_INT(q.used_messages, msgs);
    UNIT_EQ_INT(store_quota_recount(st, root, &b, &m), 0);
    UNIT_EQ_INT(b, bytes);
    UNIT_EQ_INT(m, msgs);
}

/* put: append n messages of 10, 20, ... bytes to name, one store transaction each */
static void put(struct store *st, const char *name, int n)
{
    struct mailbox *mb;
    UNIT_EQ_INT(store_open_mailbox(st, name, NULL, &mb), 0);
    static const char fill[] = "0123456789012345678901234567890123456789012345678901234567890";
    for (int i = 0; i < n; i++) {
        struct mailbox_msg m = { fill, (size_t)(10 * (i + 1)), -1, 0, 0, NULL, 0 };
        UNIT_EQ_INT(store_append(st, mb, name, &m, 1), 0);
    }
    mailbox_close(&mb);
}

/* nothing_to_fix: `coffer quota fix` of root would change nothing */
static void nothing_to_fix(struct store *st, const char *root)
{
    UNIT_EQ_INT(store_quota_fix(st, root, NULL), 0);
}

/* store-mail.h: append, copy and move as store transactions, with the quota inside */
static void test_mail_ops(struct store *st)
{
    static const char fill[1000] = { 'x' };
    struct mailbox *in, *sub, *dan;
    UNIT_EQ_INT(store_ensure_inbox(st, "cat"), 1);
    UNIT_EQ_INT(store_ensure_inbox(st, "dan"), 1);
    UNIT_EQ_INT(store_create(st, "user/cat/sub", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/cat", 1, 4), 0);   /* 1 KiB, 4 msgs */
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/dan", QUOTA_UNLIMITED, 100), 0);
    UNIT_EQ_INT(store_open_mailbox(st, "user/cat", NULL, &in), 0);
    UNIT_EQ_INT(store_open_mailbox(st, "user/cat/sub", NULL, &sub), 0);
    UNIT_EQ_INT(store_open_mailbox(st, "user/dan", NULL, &dan), 0);

    /* MULTIAPPEND: one commit, all counted */
    struct mailbox_msg two[2] = { { fill, 100, -1, 0, FLAG_SEEN, NULL, 0 },
                                  { fill, 200, -1, 0, 0, NULL, 0 } };
    UNIT_EQ_INT(store_append(st, in, "user/cat", two, 2), 0);
    UNIT_EQ_INT(two[1].uid, two[0].uid + 1);
    usage_is(st, "user/cat", 300, 2);
    /* over the storage limit: refused, nothing stored or counted */
    struct mailbox_msg big = { fill, 800, -1, 0, 0, NULL, 0 };
    UNIT_EQ_INT(store_append(st, in, "user/cat", &big, 1), CF_E_QUOTA);
    usage_is(st, "user/cat", 300, 2);
    /* all or nothing: the second of two would pass the limit */
    struct mailbox_msg pair[2] = { { fill, 100, -1, 0, 0, NULL, 0 }, big };
    UNIT_EQ_INT(store_append(st, in, "user/cat", pair, 2), CF_E_QUOTA);
    usage_is(st, "user/cat", 300, 2);

    /* copy within the root: charged */
    uint32_t uids[2] = { two[0].uid, two[1].uid }, dst[2] = { 0, 0 };
    UNIT_EQ_INT(store_copy(st, in, uids, 2, sub, "user/cat/sub", MAILBOX_COPY_ALL_FLAGS, 1, dst,
                           0), 0);
    UNIT_CHECK(dst[0] && dst[1]);
    usage_is(st, "user/cat", 600, 4);
    /* a fifth message is one too many; unless nothing is checked */
    UNIT_EQ_INT(store_copy(st, in, uids, 1, sub, "user/cat/sub", MAILBOX_COPY_ALL_FLAGS, 1,
                           NULL, 0), CF_E_QUOTA);
    usage_is(st, "user/cat", 600, 4);
    /* move within the full root: nothing added overall, so allowed, and still exact */
    uint32_t moved = 0;
    UNIT_EQ_INT(store_move(st, sub, "user/cat/sub", dst, 2, in, "user/cat",
                           MAILBOX_COPY_ALL_FLAGS, 1, NULL, 0, &moved), 0);
    UNIT_EQ_INT(moved, 2);
    usage_is(st, "user/cat", 600, 4);
    /* move to another root: charged there, credited here */
    UNIT_EQ_INT(store_move(st, in, "user/cat", uids, 2, dan, "user/dan", MAILBOX_COPY_ALL_FLAGS,
                           1, dst, 0, &moved), 0);
    UNIT_EQ_INT(moved, 2);
    usage_is(st, "user/cat", 300, 2);
    usage_is(st, "user/dan", 300, 2);

    /* a commit whose settle never ran (kill -9 between the two): the next transaction on the
     * mailbox rolls it forward before its check, so the check sees the real usage */
    struct mailbox_msg lost = { fill, 500, -1, 0, 0, NULL, 0 };
    UNIT_EQ_INT(mailbox_append(in, &lost, 1, NULL), 0);
    struct quota q;
    UNIT_EQ_INT(quotadb_get(st->quota, NULL, "user/cat", &q), 1);
    UNIT_EQ_INT(q.used_bytes, 300);                       /* not counted yet */
    struct mailbox_msg more = { fill, 300, -1, 0, 0, NULL, 0 };
    UNIT_EQ_INT(store_append(st, in, "user/cat", &more, 1), CF_E_QUOTA);   /* 800 + 300 */
    usage_is(st, "user/cat", 800, 3);
    nothing_to_fix(st, "user/cat");
    nothing_to_fix(st, "user/dan");

    /* flags hold no quota */
    struct mailbox_store fl = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    UNIT_EQ_INT(store_set_flags(st, dan, dst, 2, &fl, NULL, NULL), 0);
    struct index_record rec;
    UNIT_EQ_INT(mailbox_record(dan, dst[0], &rec), 1);
    UNIT_CHECK(rec.flags & FLAG_FLAGGED);
    UNIT_CHECK(rec.flags & FLAG_SEEN);                    /* kept by the move */

    /* a root made or removed below another: both recount, exactly */
    put(st, "user/cat/sub", 1);
    usage_is(st, "user/cat", 810, 4);
    UNIT_EQ_INT(store_quota_set(st, "user/cat/sub", QUOTA_UNLIMITED, 100, NULL), 0);
    usage_is(st, "user/cat", 800, 3);                     /* at once, both roots */
    nothing_to_fix(st, "user/cat");
    usage_is(st, "user/cat/sub", 10, 1);
    put(st, "user/cat", 1);
    usage_is(st, "user/cat", 810, 4);
    UNIT_EQ_INT(store_quota_delete(st, "user/cat/sub"), 0);
    usage_is(st, "user/cat", 820, 5);
    nothing_to_fix(st, "user/cat");
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    uint32_t one = lost.uid;
    UNIT_EQ_INT(store_set_flags(st, in, &one, 1, &del, NULL, NULL), 0);
    UNIT_EQ_INT(store_expunge(st, in, "user/cat", &one, 1, NULL), 0);
    nothing_to_fix(st, "user/cat");
    mailbox_close(&in);
    mailbox_close(&sub);
    mailbox_close(&dan);
}

/* store_replace (RFC 8508): append then expunge the old message, never shown \Deleted; the
 * quota counts the net change within one root and the whole message under another; a refusal
 * or a message already gone changes nothing */
static void test_replace(struct store *st)
{
    static const char fill[1000] = { 'r' };
    struct mailbox *in, *other;
    UNIT_EQ_INT(store_ensure_inbox(st, "rita"), 1);
    UNIT_EQ_INT(store_ensure_inbox(st, "sam"), 1);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/rita", 1, 2), 0);   /* 1 KiB, 2 msgs */
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/sam", QUOTA_UNLIMITED, 0), 0);
    UNIT_EQ_INT(store_open_mailbox(st, "user/rita", NULL, &in), 0);
    UNIT_EQ_INT(store_open_mailbox(st, "user/sam", NULL, &other), 0);
    struct mailbox_msg two[2] = { { fill, 100, -1, 0, FLAG_FLAGGED, NULL, 0 },
                                  { fill, 200, -1, 0, 0, NULL, 0 } };
    UNIT_EQ_INT(store_append(st, in, "user/rita", two, 2), 0);
    usage_is(st, "user/rita", 300, 2);
    struct mailbox_msg third = { fill, 150, -1, 0, 0, NULL, 0 };
    UNIT_EQ_INT(store_append(st, in, "user/rita", &third, 1), CF_E_QUOTA);
    /* at the message limit, a replace in the same root is net zero messages */
    struct mailbox *in2;
    UNIT_EQ_INT(store_open_mailbox(st, "user/rita", NULL, &in2), 0);
    uint32_t gone = 0;
    UNIT_EQ_INT(store_replace(st, in, "user/rita", two[0].uid, in2, "user/rita", &third, &gone), 0);
    UNIT_EQ_INT(gone, 1);
    UNIT_EQ_INT(third.uid, two[1].uid + 1);
    usage_is(st, "user/rita", 350, 2);
    struct index_record rec;
    UNIT_EQ_INT(mailbox_record(in, two[0].uid, &rec), 1);
    UNIT_CHECK(rec.flags & FLAG_EXPUNGED);
    UNIT_CHECK(!(rec.flags & FLAG_DELETED));          /* never \Deleted, not even at the end */
    UNIT_EQ_INT(mailbox_record(in, third.uid, &rec), 1);
    UNIT_CHECK(!(rec.flags & (FLAG_FLAGGED | FLAG_EXPUNGED)));   /* nothing inherited */
    /* the net change must still fit: 350 - 200 + 900 is over 1 KiB */
    struct mailbox_msg huge = { fill, 900, -1, 0, 0, NULL, 0 };
    UNIT_EQ_INT(store_replace(st, in, "user/rita", two[1].uid, in2, "user/rita", &huge, &gone),
                CF_E_QUOTA);
    UNIT_EQ_INT(huge.uid, 0);
    UNIT_EQ_INT(mailbox_record(in, two[1].uid, &rec), 1);
    UNIT_CHECK(!(rec.flags & FLAG_EXPUNGED));
    /* another root is charged the whole message: sam takes none */
    struct mailbox_msg small = { fill, 10, -1, 0, 0, NULL, 0 };
    UNIT_EQ_INT(store_replace(st, in, "user/rita", two[1].uid, other, "user/sam", &small, &gone),
                CF_E_QUOTA);
    UNIT_EQ_INT(small.uid, 0);
    usage_is(st, "user/rita", 350, 2);
    usage_is(st, "user/sam", 0, 0);
    /* a message already expunged (or never there): nothing appended */
    UNIT_EQ_INT(store_replace(st, in, "user/rita", two[0].uid, in2, "user/rita", &small, &gone),
                CF_E_NOTFOUND);
    UNIT_EQ_INT(store_replace(st, in, "user/rita", 999, in2, "user/rita", &small, &gone),
                CF_E_NOTFOUND);
    usage_is(st, "user/rita", 350, 2);
    /* the expunge half alone refuses "every message" */
    UNIT_EQ_INT(mailbox_expunge_replaced(in, NULL, 0, NULL, NULL), CF_E_INTERNAL);
    /* into another root with room: credited here, charged there */
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/sam", QUOTA_UNLIMITED, 5), 0);
    UNIT_EQ_INT(store_replace(st, in, "user/rita", two[1].uid, other, "user/sam", &small, &gone),
                0);
    UNIT_EQ_INT(gone, 1);
    usage_is(st, "user/rita", 150, 1);
    usage_is(st, "user/sam", 10, 1);
    nothing_to_fix(st, "user/rita");
    nothing_to_fix(st, "user/sam");
    mailbox_close(&in2);
    mailbox_close(&in);
    mailbox_close(&other);
}

/* M8: every removal path of the store credits the quota root exactly once */
static void test_quota_accounting(struct store *st)
{
    UNIT_EQ_INT(store_ensure_inbox(st, "ann"), 1);
    UNIT_EQ_INT(store_create(st, "user/ann/x", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(store_create(st, "user/ann/arch", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/ann", 1000, 100), 0);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/ann/arch", 1000, 100), 0);
    put(st, "user/ann/x", 3);            /* 10 + 20 + 30 */
    put(st, "user/ann/arch", 1);         /* 10 */
    usage_is(st, "user/ann", 60, 3);
    usage_is(st, "user/ann/arch", 10, 1);
    /* expunge from two handles: the message goes once, is credited once */
    struct mailbox *a, *b;
    UNIT_EQ_INT(store_open_mailbox(st, "user/ann/x", NULL, &a), 0);
    UNIT_EQ_INT(store_open_mailbox(st, "user/ann/x", NULL, &b), 0);
    uint32_t uid1 = mailbox_uid(a, 1), n = 9;
    struct mailbox_store del = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(a, &uid1, 1, &del, NULL, NULL), 0);
    UNIT_EQ_INT(store_expunge(st, a, "user/ann/x", NULL, 0, &n), 0);
    UNIT_EQ_INT(n, 1);
    UNIT_EQ_INT(store_expunge(st, b, "user/ann/x", &uid1, 1, &n), 0);
    UNIT_EQ_INT(n, 0);
    usage_is(st, "user/ann", 50, 2);
    mailbox_close(&a);
    mailbox_close(&b);
    /* rename into the other root and back: the usage follows */
    UNIT_EQ_INT(store_rename(st, "user/ann/x", "user/ann/arch/x", NULL), 1);
    usage_is(st, "user/ann", 0, 0);
    usage_is(st, "user/ann/arch", 60, 3);
    UNIT_EQ_INT(store_rename(st, "user/ann/arch/x", "user/ann/y", NULL), 1);
    usage_is(st, "user/ann", 50, 2);
    usage_is(st, "user/ann/arch", 10, 1);
    /* delete credits what the header held; a stale handle's expunge afterwards credits
     * nothing (it would show: the root still holds other usage) */
    put(st, "user/ann", 1);
    UNIT_EQ_INT(store_open_mailbox(st, "user/ann/y", NULL, &a), 0);
    UNIT_EQ_INT(store_delete(st, "user/ann/y"), 0);
    usage_is(st, "user/ann", 10, 1);
    uint32_t all[2] = { mailbox_uid(a, 1), mailbox_uid(a, 2) };
    if (mailbox_store(a, all, 2, &del, NULL, NULL) == 0)
        UNIT_EQ_INT(store_expunge(st, a, "user/ann/y", NULL, 0, NULL) <= 0, 1);
    mailbox_close(&a);
    usage_is(st, "user/ann", 10, 1);
    /* a quota root renamed with its mailbox keeps limits and usage under the new name */
    UNIT_EQ_INT(store_rename(st, "user/ann/arch", "user/ann/old", NULL), 1);
    UNIT_EQ_INT(quotadb_get(st->quota, NULL, "user/ann/arch", NULL), 0);
    usage_is(st, "user/ann/old", 10, 1);
    usage_is(st, "user/ann", 10, 1);
    /* a user renamed: the root follows, with the mailboxes below it */
    UNIT_EQ_INT(store_rename(st, "user/ann", "user/bea", NULL), 2);
    UNIT_EQ_INT(quotadb_get(st->quota, NULL, "user/ann", NULL), 0);
    usage_is(st, "user/bea", 10, 1);
    usage_is(st, "user/bea/old", 10, 1);
    struct quota q;
    UNIT_EQ_INT(quotadb_get(st->quota, NULL, "user/bea", &q), 1);
    UNIT_EQ_INT(q.limit_storage_kib, 1000);
    /* onto a name that is a root already: that root keeps its own, the usage moves */
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/bea/new2", 5, 5), 0);
    UNIT_EQ_INT(store_rename(st, "user/bea/old", "user/bea/new2", NULL), 1);
    usage_is(st, "user/bea/new2", 10, 1);
    UNIT_EQ_INT(quotadb_get(st->quota, NULL, "user/bea/old", &q), 1);
    UNIT_EQ_INT(q.used_bytes, 0);
}

/* delete_mode delayed: hidden at once (credited, name free), undelete (quota, --as, ACL and
 * flags), expiry; reconstruct leaves hidden mailboxes alone */
static void test_delayed_delete(struct store *st)
{
    UNIT_EQ_INT(store_ensure_inbox(st, "dora"), 1);
    UNIT_EQ_INT(store_create(st, "user/dora/f", NULL, "dora\tlrswipkxtea\tjoe\tlr\t", "\\Archive", 0), 0);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/dora", 1000, 100), 0);
    put(st, "user/dora/f", 2);             /* 10 + 20 */
    usage_is(st, "user/dora", 30, 2);
    char *live = mbdir(st, "user/dora/f");
    UNIT_EQ_INT(store_delete(st, "user/dora/f"), 0);
    usage_is(st, "user/dora", 0, 0);       /* credited at once */
    UNIT_EQ_INT(store_lookup(st, "user/dora/f", NULL), 0);
    char *held = xasprintf("%s%s", live, DELETED_SUFFIX);
    UNIT_CHECK(!exists(live) && exists(held));
    struct store_deleted *v;
    size_t n;
    /* (the deletes of the tests before are hidden too) */
    UNIT_EQ_INT(store_deleted_list(st, &v, &n), 0);
    size_t base = n - 1;
    UNIT_CHECK(n >= 1);
    for (size_t i = 1; i < n; i++)   /* ours first */
        if (!strcmp(v[i].name, "user/dora/f")) {
            struct store_deleted t = v[0];
            v[0] = v[i];
            v[i] = t;
        }
    UNIT_EQ_STR(v[0].name, "user/dora/f");
    UNIT_EQ_INT(v[0].messages, 2);
    UNIT_EQ_INT(v[0].bytes, 30);
    UNIT_EQ_STR(v[0].e.acl, "dora\tlrswipkxtea\tjoe\tlr\t");
    UNIT_CHECK(v[0].deleted_at > 0);
    /* reconstruct of the list neither adopts nor removes it */
    struct recon_report rep;
    recon_report_init(&rep);
    UNIT_EQ_INT(store_reconstruct_mailboxlist(st, 0, &rep), 0);
    recon_report_fini(&rep);
    UNIT_CHECK(exists(held));
    UNIT_EQ_INT(store_lookup(st, "user/dora/f", NULL), 0);
    /* the name is free at once */
    UNIT_EQ_INT(store_create(st, "user/dora/f", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(store_undelete(st, &v[0], NULL, 0), CF_E_EXISTS);
    /* over the limit: refused, nothing changed; forced: charged */
    put(st, "user/dora", 1);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/dora", 1000, 2), 0);
    UNIT_EQ_INT(store_undelete(st, &v[0], "user/dora/g", 0), CF_E_QUOTA);
    UNIT_CHECK(exists(held));
    usage_is(st, "user/dora", 10, 1);
    UNIT_EQ_INT(store_undelete(st, &v[0], "user/dora/g", 1), 0);
    usage_is(st, "user/dora", 40, 3);
    UNIT_CHECK(exists(live) && !exists(held));
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    UNIT_EQ_INT(store_lookup(st, "user/dora/g", &e), 1);
    UNIT_EQ_STR(e.acl, "dora\tlrswipkxtea\tjoe\tlr\t");
    UNIT_EQ_STR(e.flags, "\\Archive");
    struct mbheader h;
    mbheader_init(&h);
    UNIT_EQ_INT(mbheader_read(live, &h), 0);
    UNIT_EQ_STR(h.name, "user/dora/g");
    mbheader_fini(&h);
    struct index_header ih;
    UNIT_EQ_INT(store_status(st, "user/dora/g", &ih), 0);
    UNIT_EQ_INT(ih.exists, 2);
    char *side = xasprintf("%s/%s", live, DELETED_FILE);
    UNIT_CHECK(!exists(side));
    free(side);
    for (size_t i = 0; i < n; i++) store_deleted_fini(&v[i]);
    free(v);
    UNIT_EQ_INT(store_deleted_list(st, &v, &n), 0);
    UNIT_EQ_INT(n, base);
    for (size_t i = 0; i < n; i++) store_deleted_fini(&v[i]);
    free(v);
    /* delete again, then expire: gone for good */
    UNIT_EQ_INT(store_delete(st, "user/dora/g"), 0);
    usage_is(st, "user/dora", 10, 1);
    UNIT_EQ_INT(store_deleted_list(st, &v, &n), 0);
    UNIT_EQ_INT(n, base + 1);
    size_t k = 0;
    while (k < n && strcmp(v[k].name, "user/dora/g")) k++;
    UNIT_CHECK(k < n);
    if (k < n) UNIT_EQ_INT(store_deleted_expire(st, &v[k]), 0);
    UNIT_CHECK(!exists(held) && !exists(live));
    for (size_t i = 0; i < n; i++) store_deleted_fini(&v[i]);
    free(v);
    UNIT_EQ_INT(store_deleted_list(st, &v, &n), 0);
    UNIT_EQ_INT(n, base);
    for (size_t i = 0; i < n; i++) store_deleted_fini(&v[i]);
    free(v);
    /* crash states, as reconstruct finds them: (1) an undelete killed between moving the
     * directory back and adding the entry: adopted under its (new) name, once; (2) a delayed
     * delete killed after the entry went, before the directory was hidden: hidden */
    UNIT_EQ_INT(store_create(st, "user/dora/c", NULL, NULL, NULL, 0), 0);
    put(st, "user/dora/c", 1);
    char *cdir = mbdir(st, "user/dora/c");
    char *chold = xasprintf("%s%s", cdir, DELETED_SUFFIX);
    char *ctomb = xasprintf("%s.deleted", cdir);
    UNIT_EQ_INT(store_delete(st, "user/dora/c"), 0);
    UNIT_EQ_INT(rename(chold, cdir), 0);          /* (1) */
    recon_report_init(&rep);
    UNIT_CHECK(store_reconstruct_mailboxlist(st, 0, &rep) > 0);
    recon_report_fini(&rep);
    UNIT_EQ_INT(store_lookup(st, "user/dora/c", NULL), 1);
    usage_is(st, "user/dora", 20, 2);              /* recounted: charged again */
    UNIT_EQ_INT(store_deleted_list(st, &v, &n), 0);
    UNIT_EQ_INT(n, base);
    for (size_t i = 0; i < n; i++) store_deleted_fini(&v[i]);
    free(v);
    UNIT_EQ_INT(store_delete(st, "user/dora/c"), 0);
    UNIT_EQ_INT(rename(chold, ctomb), 0);         /* (2) */
    recon_report_init(&rep);
    UNIT_CHECK(store_reconstruct_mailboxlist(st, 0, &rep) > 0);
    UNIT_CHECK(strarr_find(&rep.what, "tombstone_hidden") >= 0);
    recon_report_fini(&rep);
    UNIT_CHECK(exists(chold) && !exists(ctomb) && !exists(cdir));
    UNIT_EQ_INT(store_lookup(st, "user/dora/c", NULL), 0);
    UNIT_EQ_INT(store_deleted_list(st, &v, &n), 0);
    UNIT_EQ_INT(n, base + 1);
    for (size_t i = 0; i < n; i++) store_deleted_fini(&v[i]);
    free(v);
    free(cdir);
    free(chold);
    free(ctomb);
    mboxlist_entry_fini(&e);
    free(live);
    free(held);
}

/* store_create_many: what store_create would do for each name, in one batch */
static void test_create_many(struct store *st)
{
    const char *names[] = { "user/kim", "user/kim/a", "user/kim/a/b", "user/kim",
                            "user/lee/x", "bad//name", "shared/many", "user/kim/c" };
    int res[8];
    UNIT_EQ_INT(store_create_many(st, names, 8, NULL, res), 5);
    UNIT_EQ_INT(res[0], 0);
    UNIT_EQ_INT(res[1], 0);
    UNIT_EQ_INT(res[2], 0);              /* its parent came earlier in the batch */
    UNIT_EQ_INT(res[3], CF_E_EXISTS);    /* twice in one batch */
    UNIT_EQ_INT(res[4], CF_E_NOTFOUND);  /* no user/lee */
    UNIT_EQ_INT(res[5], CF_E_PARSE);
    UNIT_EQ_INT(res[6], 0);              /* "shared" exists: inherits partition and ACL */
    UNIT_EQ_INT(res[7], 0);
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    UNIT_EQ_INT(store_lookup(st, "user/kim/a/b", &e), 1);
    UNIT_EQ_STR(e.acl, "kim\tlrswipkxtea\t");
    UNIT_EQ_STR(e.partition, "default");
    UNIT_EQ_INT(store_lookup(st, "shared/many", &e), 1);
    UNIT_EQ_STR(e.partition, "other");
    UNIT_EQ_STR(e.acl, "anyone\tlrs\t");
    /* a real mailbox: its directory is there and opens */
    struct index_header h;
    UNIT_EQ_INT(store_status(st, "user/kim/a/b", &h), 0);
    UNIT_EQ_INT(h.exists, 0);
    struct mailbox *mb = NULL;
    UNIT_EQ_INT(store_open_mailbox(st, "user/kim/c", NULL, &mb), 0);
    mailbox_close(&mb);
    /* a second batch: all exist already */
    UNIT_EQ_INT(store_create_many(st, names, 3, NULL, res), 0);
    UNIT_EQ_INT(res[0], CF_E_EXISTS);
    UNIT_EQ_INT(store_create_many(st, names, 1, "nosuch", res), CF_E_NOTFOUND);
    mboxlist_entry_fini(&e);
}

/* deliver_to: one message into name through deliver_message; its result */
static int deliver_to(struct store *st, const char *name)
{
    static const char msg[] = "Subject: kept\r\n\r\nbody\r\n";
    struct deliver_msg m = { msg, sizeof msg - 1, -1, NULL, 0 };
    struct deliver_target t;
    memset(&t, 0, sizeof t);
    t.mailbox = name;
    deliver_message(st, &m, &t, 1);
    return t.result;
}

static uint32_t exists_of(struct store *st, const char *name)
{
    struct index_header h;
    UNIT_EQ_INT(store_status(st, name, &h), 0);
    return h.exists;
}

/* Kept targets (store_take_target): deliveries to a mailbox reuse the handle the last one
 * kept; the quota is still checked per delivery; a mailbox deleted and made again under the
 * name, or moved to another partition and back (a new directory, a new lock file), is opened
 * afresh, and the message lands in the mailbox the list names; the least recently used of
 * more than STORE_KEPT_TARGETS goes. */
static void test_kept_targets(struct store *st)
{
    UNIT_EQ_INT(store_ensure_inbox(st, "kit"), 1);
    UNIT_EQ_INT(store_create(st, "user/kit/box", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/kit", QUOTA_UNLIMITED, 3), 0);
    store_drop_targets(st);
    struct store_target_stats s0 = store_target_stats;
    UNIT_EQ_INT(deliver_to(st, "user/kit"), DELIVER_OK);
    UNIT_EQ_INT(deliver_to(st, "user/kit"), DELIVER_OK);
    UNIT_EQ_INT(deliver_to(st, "user/kit/box"), DELIVER_OK);
    UNIT_EQ_INT(deliver_to(st, "user/kit"), CF_E_QUOTA);   /* 4 > 3, through the kept one */
    UNIT_EQ_INT(store_target_stats.opens - s0.opens, 2);
    UNIT_EQ_INT(store_target_stats.hits - s0.hits, 2);
    UNIT_EQ_INT(exists_of(st, "user/kit"), 2);
    UNIT_EQ_INT(quotadb_set_limits(st->quota, NULL, "user/kit", QUOTA_UNLIMITED, 100), 0);
    s0 = store_target_stats;
    UNIT_EQ_INT(deliver_to(st, "user/kit"), DELIVER_OK);   /* the failed one was not kept */
    UNIT_EQ_INT(deliver_to(st, "user/kit"), DELIVER_OK);
    UNIT_EQ_INT(store_target_stats.opens - s0.opens, 1);
    UNIT_EQ_INT(store_target_stats.hits - s0.hits, 1);
    UNIT_EQ_INT(exists_of(st, "user/kit"), 4);

    /* deleted and made again: the new mailbox gets the message */
    UNIT_EQ_INT(store_delete(st, "user/kit/box"), 0);
    UNIT_EQ_INT(store_create(st, "user/kit/box", NULL, NULL, NULL, 0), 0);
    s0 = store_target_stats;
    UNIT_EQ_INT(deliver_to(st, "user/kit/box"), DELIVER_OK);
    UNIT_EQ_INT(store_target_stats.opens - s0.opens, 1);
    UNIT_EQ_INT(exists_of(st, "user/kit/box"), 1);

    /* moved to the other partition and back: same uniqueid and partition, new directory */
    UNIT_EQ_INT(store_rename(st, "user/kit/box", "user/kit/moved", "other"), 1);
    UNIT_EQ_INT(store_rename(st, "user/kit/moved", "user/kit/box", "default"), 1);
    s0 = store_target_stats;
    UNIT_EQ_INT(deliver_to(st, "user/kit/box"), DELIVER_OK);
    UNIT_EQ_INT(store_target_stats.opens - s0.opens, 1);
    UNIT_EQ_INT(store_target_stats.hits - s0.hits, 0);
    UNIT_EQ_INT(exists_of(st, "user/kit/box"), 2);
    UNIT_EQ_INT(deliver_to(st, "user/kit/box"), DELIVER_OK);
    UNIT_EQ_INT(store_target_stats.hits - s0.hits, 1);
    UNIT_EQ_INT(exists_of(st, "user/kit/box"), 3);

    /* one more mailbox than are kept: the oldest (user/kit) is opened again */
    char name[64];
    for (int i = 0; i < STORE_KEPT_TARGETS; i++) {
        snprintf(name, sizeof name, "user/kit/m%d", i);
        UNIT_EQ_INT(store_create(st, name, NULL, NULL, NULL, 0), 0);
        UNIT_EQ_INT(deliver_to(st, name), DELIVER_OK);
    }
    s0 = store_target_stats;
    UNIT_EQ_INT(deliver_to(st, "user/kit"), DELIVER_OK);
    UNIT_EQ_INT(deliver_to(st, name), DELIVER_OK);
    UNIT_EQ_INT(store_target_stats.opens - s0.opens, 1);
    UNIT_EQ_INT(store_target_stats.hits - s0.hits, 1);
    store_drop_targets(st);
}

int main(void)
{
    log_init("test-store", 1, LOG_LVL_ERR);
    if (!mkdtemp(dir)) return 2;
    char *conf = xasprintf("%s/coffer.conf", dir), *parts = xasprintf("%s/partitions.conf", dir);
    const char *text = "configdir = cfg\n";
    file_write_atomic(conf, text, strlen(text), 0600);
    const char *ptext = "default p1\nother p2\n";
    file_write_atomic(parts, ptext, strlen(ptext), 0600);
    struct config *cfg;
    struct buf err = BUF_INIT;
    UNIT_EQ_INT(config_load(conf, &cfg, &err), 0);
    char *dbdir = xasprintf("%s/cfg/db", dir);
    UNIT_EQ_INT(kv_env_recover(dbdir), 0);
    struct store *st;
    UNIT_EQ_INT(store_open(cfg, &st), 0);

    /* INBOX and a child with parents */
    UNIT_EQ_INT(store_ensure_inbox(st, "fred"), 1);
    UNIT_EQ_INT(store_ensure_inbox(st, "fred"), 0);
    UNIT_EQ_INT(store_create(st, "user/fred/a/b", NULL, NULL, NULL, 0), CF_E_NOTFOUND);
    UNIT_EQ_INT(store_create(st, "user/fred/a/b", NULL, NULL, NULL, STORE_CREATE_PARENTS), 0);
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    UNIT_EQ_INT(store_lookup(st, "user/fred/a", &e), 1);
    UNIT_EQ_STR(e.partition, "default");
    UNIT_EQ_STR(e.acl, "fred\tlrswipkxtea\t");
    UNIT_EQ_INT(store_create(st, "user/fred/a", NULL, NULL, NULL, 0), CF_E_EXISTS);
    UNIT_EQ_INT(store_create(st, "bad//name", NULL, NULL, NULL, 0), CF_E_PARSE);
    UNIT_EQ_INT(store_create(st, "shared", "nosuch", NULL, NULL, 0), CF_E_NOTFOUND);
    /* a shared mailbox on the other partition, its child inherits partition and ACL */
    UNIT_EQ_INT(store_create(st, "shared", "other", "anyone\tlrs\t", "\\Archive", 0), 0);
    UNIT_EQ_INT(store_create(st, "shared/sub", NULL, NULL, NULL, 0), 0);
    UNIT_EQ_INT(store_lookup(st, "shared/sub", &e), 1);
    UNIT_EQ_STR(e.partition, "other");
    UNIT_EQ_STR(e.acl, "anyone\tlrs\t");
    test_create_many(st);
    test_kept_targets(st);

    /* append, status, open */
    struct mailbox *mb;
    UNIT_EQ_INT(store_open_mailbox(st, "user/fred", &e, &mb), 0);
    struct mailbox_msg m = { .data = "Subject: hi\r\n\r\nbody\r\n", .len = 21, .fd = -1 };
    UNIT_EQ_INT(mailbox_append(mb, &m, 1, NULL), 0);
    mailbox_close(&mb);
    struct index_header h;
    UNIT_EQ_INT(store_status(st, "user/fred", &h), 0);
    UNIT_EQ_INT(h.exists, 1);
    UNIT_EQ_INT(store_status(st, "user/nobody", &h), CF_E_NOTFOUND);
    UNIT_EQ_INT(store_open_mailbox(st, "user/nobody", NULL, &mb), CF_E_NOTFOUND);

    /* rename with children, headers follow */
    UNIT_EQ_INT(store_rename(st, "user/fred/a", "user/fred/z", NULL), 2);
    UNIT_EQ_INT(store_lookup(st, "user/fred/a", NULL), 0);
    UNIT_EQ_INT(store_lookup(st, "user/fred/z/b", NULL), 1);
    char *d = mbdir(st, "user/fred/z/b");
    struct mbheader mh;
    mbheader_init(&mh);
    UNIT_EQ_INT(mbheader_read(d, &mh), 0);
    UNIT_EQ_STR(mh.name, "user/fred/z/b");
    mbheader_fini(&mh);
    free(d);
    UNIT_EQ_INT(store_rename(st, "user/fred/z", "user/fred/z/b/c", NULL), CF_E_PERM);
    UNIT_EQ_INT(store_rename(st, "user/fred/none", "user/fred/y", NULL), CF_E_NOTFOUND);

    /* move across partitions, messages come along */
    UNIT_EQ_INT(store_rename(st, "user/fred", "user/fred2", "other"), 3);  /* with 2 children */
    UNIT_EQ_INT(store_lookup(st, "user/fred2", &e), 1);
    UNIT_EQ_STR(e.partition, "other");
    UNIT_EQ_INT(store_status(st, "user/fred2", &h), 0);
    UNIT_EQ_INT(h.exists, 1);
    UNIT_EQ_INT(store_lookup(st, "user/fred2/z", &e), 1);
    UNIT_EQ_STR(e.partition, "default");                  /* children stay where they are */
    UNIT_EQ_INT(store_rename(st, "user/fred2", "user/fred", NULL), 3);
    UNIT_EQ_INT(store_lookup(st, "user/fred", &e), 1);

    /* a crash between moving the files and updating the entry: the entry is repaired */
    char uid[40];
    strcpy(uid, e.uniqueid);
    char *from = xasprintf("%s/p2/%.2s/%s", dir, uid, uid);
    char *tod = xasprintf("%s/p1/%.2s", dir, uid);
    char *to = xasprintf("%s/%s", tod, uid);
    mkdir_p(tod, 0700);
    UNIT_EQ_INT(rename(from, to), 0);
    UNIT_EQ_INT(store_open_mailbox(st, "user/fred", &e, &mb), 0);
    UNIT_EQ_STR(e.partition, "default");
    UNIT_EQ_INT(mailbox_count(mb), 1);
    mailbox_close(&mb);
    free(from); free(to); free(tod);

    /* delete: list entry and directory go, children stay */
    d = mbdir(st, "user/fred/z");
    UNIT_CHECK(d && exists(d));
    UNIT_EQ_INT(store_delete(st, "user/fred/z"), 0);
    UNIT_CHECK(!exists(d));
    char *tomb = xasprintf("%s.deleted", d);
    UNIT_CHECK(!exists(tomb));
    free(tomb);
    free(d);
    UNIT_EQ_INT(store_lookup(st, "user/fred/z", NULL), 0);
    UNIT_EQ_INT(store_lookup(st, "user/fred/z/b", NULL), 1);
    UNIT_EQ_INT(store_delete(st, "user/fred/z"), CF_E_NOTFOUND);

    test_quota_accounting(st);
    test_mail_ops(st);
    test_replace(st);
    test_delayed_delete(st);

    mboxlist_entry_fini(&e);
    store_close(&st);
    UNIT_CHECK(st == NULL);
    config_free(&cfg);
    buf_fini(&err);
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd)) unit_failed++;
    free(cmd); free(conf); free(parts); free(dbdir);
    UNIT_DONE();
}
