/* test-mboxlist.c: tests of the databases over kv (mailbox list, quota roots, subscriptions,
 * seen state, duplicate suppression) with real Berkeley DB files in a temporary directory. */
#include "core/error.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "store/acl.h"
#include "store/dupdb.h"
#include "store/mboxlist.h"
#include "store/quotadb.h"
#include "store/seendb.h"
#include "store/subs.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char tmpdir[] = "/tmp/coffer-test-mboxlist-XXXXXX";

static int create(struct mboxlist *ml, const char *name)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    e.partition = xstrdup("default");
    e.acl = xasprintf("%s\tlrswipkxtecda\t", "admin");
    int r = mboxlist_create(ml, NULL, name, &e);
    mboxlist_entry_fini(&e);
    return r;
}

struct names {
    struct buf out;
};

static int names_cb(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct names *n = rock;
    (void)e;
    buf_printf(&n->out, "%s;", name);
    return 0;
}

static const char *all_names(struct mboxlist *ml, struct names *n, const char *prefix)
{
    buf_reset(&n->out);
    UNIT_EQ_INT(mboxlist_foreach(ml, NULL, prefix, names_cb, n), 0);
    return buf_cstr(&n->out);
}

static void test_entry_format(void)
{
    struct mboxlist_entry e, d;
    struct buf b = BUF_INIT;
    mboxlist_entry_init(&e);
    mboxlist_entry_init(&d);
    e.partition = xstrdup("default");
    memcpy(e.uniqueid, "0123456789abcdef0123456789abcdef", 33);
    e.acl = xstrdup("fred\tlrswipkxtecda\tanyone\tlr\t");
    e.flags = xstrdup("\\Sent");
    e.ctime = 1700000000;
    mboxlist_entry_encode(&e, &b);
    UNIT_EQ_STR(buf_cstr(&b), "1 default 0123456789abcdef0123456789abcdef 1700000000 \\Sent "
                              "fred%09lrswipkxtecda%09anyone%09lr%09");
    UNIT_EQ_INT(mboxlist_entry_decode(b.s, b.len, &d), 0);
    UNIT_EQ_STR(d.partition, "default");
    UNIT_EQ_STR(d.uniqueid, e.uniqueid);
    UNIT_EQ_STR(d.acl, e.acl);
    UNIT_EQ_STR(d.flags, "\\Sent");
    UNIT_EQ_INT(d.ctime, 1700000000);
    /* empty fields */
    free(e.flags);
    e.flags = NULL;
    free(e.acl);
    e.acl = xstrdup("");
    buf_reset(&b);
    mboxlist_entry_encode(&e, &b);
    UNIT_EQ_STR(buf_cstr(&b), "1 default 0123456789abcdef0123456789abcdef 1700000000 % %");
    UNIT_EQ_INT(mboxlist_entry_decode(b.s, b.len, &d), 0);
    UNIT_EQ_STR(d.flags, "");
    UNIT_EQ_STR(d.acl, "");
    static const char *bad[] = {
        "",
        "2 default 0123456789abcdef0123456789abcdef 1700000000 % %",
        "1 default 0123456789abcdef0123456789abcde 1700000000 % %",
        "1 default 0123456789ABCDEF0123456789abcdef 1700000000 % %",
        "1 default 0123456789abcdef0123456789abcdef 17x % %",
        "1 default 0123456789abcdef0123456789abcdef 1700000000 %",
        "1 default 0123456789abcdef0123456789abcdef 1700000000 % % %",
        "1 default 0123456789abcdef0123456789abcdef 1700000000 % a%0",
        "1 default 0123456789abcdef0123456789abcdef 1700000000 % a%00",
        "1  0123456789abcdef0123456789abcdef 1700000000 % %",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int r = mboxlist_entry_decode(bad[i], strlen(bad[i]), &d);
        if (r != CF_E_CORRUPT) fprintf(stderr, "bad record %zu accepted\n", i);
        UNIT_EQ_INT(r, CF_E_CORRUPT);
    }
    char id1[33], id2[33];
    mboxlist_new_uniqueid(id1);
    mboxlist_new_uniqueid(id2);
    UNIT_EQ_INT(strlen(id1), 32);
    UNIT_CHECK(strcmp(id1, id2) != 0);
    UNIT_EQ_INT(strspn(id1, "0123456789abcdef"), 32);
    mboxlist_entry_fini(&e);
    mboxlist_entry_fini(&d);
    buf_fini(&b);
}

/* refuse_one: a rename check refusing one name and counting what it was asked about. */
struct check_rock { const char *refuse; int seen; };
static int refuse_one(struct kv_txn *txn, const char *oldname, const char *newname,
                      const struct mboxlist_entry *e, void *rock)
{
    struct check_rock *cr = rock;
    (void)txn;
    (void)newname;
    (void)e;
    cr->seen++;
    return strcmp(oldname, cr->refuse) ? 0 : CF_E_PERM;
}

static void test_mboxlist(struct kv_env *env)
{
    struct mboxlist *ml = NULL;
    struct mboxlist_entry e;
    struct names n = { BUF_INIT };
    mboxlist_entry_init(&e);
    UNIT_EQ_INT(mboxlist_open(env, &ml), 0);

    UNIT_EQ_INT(create(ml, "user/fred"), 0);
    UNIT_EQ_INT(create(ml, "user/fred/Sent"), 0);
    UNIT_EQ_INT(create(ml, "user/fred/Lists"), 0);
    UNIT_EQ_INT(create(ml, "user/fred/Lists/a"), 0);
    UNIT_EQ_INT(create(ml, "user/fred/Lists/a/deep"), 0);
    UNIT_EQ_INT(create(ml, "user/fred/Lists-old"), 0);
    UNIT_EQ_INT(create(ml, "user/fredrick"), 0);
    UNIT_EQ_INT(create(ml, "user/joe"), 0);
    UNIT_EQ_INT(create(ml, "user/joe/x"), 0);
    UNIT_EQ_INT(create(ml, "news/a"), 0);
    UNIT_EQ_INT(create(ml, "news/b"), 0);
    UNIT_EQ_INT(create(ml, "user/fred"), CF_E_EXISTS);
    UNIT_EQ_INT(create(ml, "bad//name"), CF_E_PARSE);
    mboxlist_entry_init(&e);
    UNIT_EQ_INT(mboxlist_create(ml, NULL, "nopartition", &e), CF_E_PARSE);

    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred/Sent", &e), 1);
    UNIT_EQ_STR(e.partition, "default");
    UNIT_EQ_STR(e.acl, "admin\tlrswipkxtecda\t");
    UNIT_EQ_INT(strlen(e.uniqueid), 32);
    UNIT_CHECK(e.ctime > 1600000000);
    char sent_id[33];
    memcpy(sent_id, e.uniqueid, 33);
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred/Trash", &e), 0);
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred", NULL), 1);

    /* update */
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred/Sent", &e), 1);
    free(e.flags);
    e.flags = xstrdup("\\Sent");
    UNIT_EQ_INT(mboxlist_update(ml, NULL, "user/fred/Sent", &e), 0);
    UNIT_EQ_INT(mboxlist_update(ml, NULL, "user/fred/Nope", &e), CF_E_NOTFOUND);
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred/Sent", &e), 1);
    UNIT_EQ_STR(e.flags, "\\Sent");

    UNIT_EQ_STR(all_names(ml, &n, "user/fred/"),
                "user/fred/Lists;user/fred/Lists-old;user/fred/Lists/a;user/fred/Lists/a/deep;"
                "user/fred/Sent;");
    UNIT_EQ_INT(mboxlist_has_children(ml, NULL, "user/fred/Lists"), 1);
    UNIT_EQ_INT(mboxlist_has_children(ml, NULL, "user/fred/Sent"), 0);
    UNIT_EQ_INT(mboxlist_has_children(ml, NULL, "user/fred/Lists/a/deep"), 0);

    /* rename with children, atomically; ids kept */
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Lists", "user/fred/Archive/Lists"), 3);
    UNIT_EQ_STR(all_names(ml, &n, "user/fred/"),
                "user/fred/Archive/Lists;user/fred/Archive/Lists/a;"
                "user/fred/Archive/Lists/a/deep;user/fred/Lists-old;user/fred/Sent;");
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Sent", "user/fred/Sent Items"), 1);
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred/Sent Items", &e), 1);
    UNIT_EQ_STR(e.uniqueid, sent_id);
    UNIT_EQ_STR(e.flags, "\\Sent");
    /* refusals leave everything as it was */
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Nope", "user/fred/X"), CF_E_NOTFOUND);
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Sent Items", "user/fred/Lists-old"),
                CF_E_EXISTS);
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Archive", "user/fred/X"), CF_E_NOTFOUND);
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Archive/Lists",
                                "user/fred/Archive/Lists/a/b"), CF_E_PERM);
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Archive/Lists", "x//y"), CF_E_PARSE);
    /* a child's new name taken: the whole rename is undone */
    UNIT_EQ_INT(create(ml, "user/fred/Moved/a"), 0);
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/fred/Archive/Lists", "user/fred/Moved"),
                CF_E_EXISTS);
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred/Archive/Lists/a/deep", NULL), 1);
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "user/fred/Moved", NULL), 0);
    UNIT_EQ_INT(mboxlist_delete(ml, NULL, "user/fred/Moved/a"), 0);
    /* renaming up over a child's old name: "a/b" -> "a" moves "a/b/b" to "a/b" */
    UNIT_EQ_INT(create(ml, "t/a/b"), 0);
    UNIT_EQ_INT(create(ml, "t/a/b/b"), 0);
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "t/a/b", "t/a"), 2);
    UNIT_EQ_STR(all_names(ml, &n, "t/"), "t/a;t/a/b;");
    /* a check that refuses one child refuses the whole rename; it sees every mailbox */
    struct check_rock cr = { "t/a/b", 0 };
    UNIT_EQ_INT(mboxlist_rename_checked(ml, NULL, "t/a", "v", refuse_one, &cr), CF_E_PERM);
    UNIT_EQ_STR(all_names(ml, &n, "t/"), "t/a;t/a/b;");
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "v", NULL), 0);
    cr.refuse = "nothing";
    cr.seen = 0;
    UNIT_EQ_INT(mboxlist_rename_checked(ml, NULL, "t/a", "v", refuse_one, &cr), 2);
    UNIT_EQ_INT(cr.seen, 2);
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "v", "t/a"), 2);
    /* inside a caller's transaction, aborted */
    struct kv_txn *t = NULL;
    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(mboxlist_rename(ml, t, "t/a", "u"), 2);
    UNIT_EQ_INT(mboxlist_lookup(ml, t, "u/b", NULL), 1);
    kv_txn_abort(&t);
    UNIT_EQ_STR(all_names(ml, &n, "t/"), "t/a;t/a/b;");
    UNIT_EQ_INT(mboxlist_lookup(ml, NULL, "u", NULL), 0);

    /* UIDVALIDITY: strictly rising within one second, never lowered, invisible to scans */
    const char *before = all_names(ml, &n, "");
    char *names_before = xstrdup(before);
    uint32_t u1 = 0, u2 = 0, u3 = 0, last = 0;
    UNIT_EQ_INT(mboxlist_next_uidvalidity(ml, NULL, &u1), 0);
    UNIT_EQ_INT(mboxlist_next_uidvalidity(ml, NULL, &u2), 0);
    UNIT_CHECK(u1 >= (uint32_t)time(NULL) - 5 && u2 > u1);
    UNIT_EQ_INT(mboxlist_raise_uidvalidity(ml, NULL, u2 + 1000, &last), 0);
    UNIT_EQ_INT((int)(last - u2), 1000);
    UNIT_EQ_INT(mboxlist_raise_uidvalidity(ml, NULL, 5, &last), 0);
    UNIT_EQ_INT((int)(last - u2), 1000);
    UNIT_EQ_INT(mboxlist_next_uidvalidity(ml, NULL, &u3), 0);
    UNIT_EQ_INT((int)(u3 - u2), 1001);
    UNIT_EQ_STR(all_names(ml, &n, ""), names_before);
    free(names_before);

    /* delete */
    UNIT_EQ_INT(mboxlist_delete(ml, NULL, "t/a"), 0);
    UNIT_EQ_INT(mboxlist_delete(ml, NULL, "t/a"), CF_E_NOTFOUND);
    UNIT_EQ_STR(all_names(ml, &n, "t/"), "t/a/b;");   /* children stay */
    UNIT_EQ_INT(mboxlist_delete(ml, NULL, "t/a/b"), 0);

    mboxlist_entry_fini(&e);
    buf_fini(&n.out);
    mboxlist_close(&ml);
    UNIT_CHECK(ml == NULL);
}

static int list_cb(const char *extname, size_t matchlen, const char *name,
                   const struct mboxlist_entry *e, void *rock)
{
    struct buf *out = rock;
    UNIT_CHECK(e != NULL && e->partition != NULL);
    if (matchlen == strlen(extname)) buf_printf(out, "%s=%s;", extname, name);
    else buf_printf(out, "(%.*s);", (int)matchlen, extname);
    return 0;
}

static const char *list(struct mboxlist *ml, struct buf *out, const char *user, const char *pat)
{
    buf_reset(out);
    UNIT_EQ_INT(mboxlist_list(ml, NULL, user, pat, list_cb, out), 0);
    return buf_cstr(out);
}

static void test_list(struct kv_env *env)
{
    struct mboxlist *ml = NULL;
    struct buf out = BUF_INIT;
    UNIT_EQ_INT(mboxlist_open(env, &ml), 0);
    /* the list left by test_mboxlist:
     *   news/a news/b user/fred user/fred/Archive/Lists(/a(/deep)) user/fred/Lists-old
     *   user/fred/Sent Items user/fredrick user/joe user/joe/x */
    UNIT_EQ_STR(list(ml, &out, "fred", "%"),
                "INBOX=user/fred;(Archive);(Archive);(Archive);Lists-old=user/fred/Lists-old;"
                "Sent Items=user/fred/Sent Items;(Other Users);(Other Users);(Other Users);"
                "(Shared Folders);(Shared Folders);");
    UNIT_EQ_STR(list(ml, &out, "fred", "inbox"), "INBOX=user/fred;");
    UNIT_EQ_STR(list(ml, &out, "fred", "Archive/*"),
                "Archive/Lists=user/fred/Archive/Lists;Archive/Lists/a=user/fred/Archive/Lists/a;"
                "Archive/Lists/a/deep=user/fred/Archive/Lists/a/deep;");
    UNIT_EQ_STR(list(ml, &out, "fred", "Archive/%"),
                "Archive/Lists=user/fred/Archive/Lists;(Archive/Lists);(Archive/Lists);");
    UNIT_EQ_STR(list(ml, &out, "fred", "Other Users/%"),
                "Other Users/fredrick=user/fredrick;Other Users/joe=user/joe;(Other Users/joe);");
    UNIT_EQ_STR(list(ml, &out, "fred", "Other Users/jo*"),
                "Other Users/joe=user/joe;Other Users/joe/x=user/joe/x;");
    UNIT_EQ_STR(list(ml, &out, "fred", "Shared Folders/*"),
                "Shared Folders/news/a=news/a;Shared Folders/news/b=news/b;");
    UNIT_EQ_STR(list(ml, &out, "fred", "Shared Folders/%"),
                "(Shared Folders/news);(Shared Folders/news);");
    UNIT_EQ_STR(list(ml, &out, "joe", "*x"), "x=user/joe/x;");
    UNIT_EQ_STR(list(ml, &out, "fred", "nothing*"), "");
    /* the administrator's view: internal names */
    UNIT_EQ_STR(list(ml, &out, NULL, "user/%"),
                "user/fred=user/fred;(user/fred);(user/fred);(user/fred);(user/fred);(user/fred);"
                "user/fredrick=user/fredrick;user/joe=user/joe;(user/joe);");
    buf_fini(&out);
    mboxlist_close(&ml);
}

static int create_acl(struct mboxlist *ml, const char *name, const char *acl)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    e.partition = xstrdup("default");
    e.acl = xstrdup(acl);
    int r = mboxlist_create(ml, NULL, name, &e);
    mboxlist_entry_fini(&e);
    return r;
}

static int set_acl(struct mboxlist *ml, const char *name, const char *acl)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = mboxlist_lookup(ml, NULL, name, &e);
    if (r == 1) {
        free(e.acl);
        e.acl = xstrdup(acl);
        r = mboxlist_update(ml, NULL, name, &e);
    }
    mboxlist_entry_fini(&e);
    return r;
}

static const char *grants(struct mboxlist *ml, struct buf *out, const char *ident)
{
    struct strarr names = STRARR_INIT;
    buf_reset(out);
    UNIT_EQ_INT(mboxlist_grants(ml, NULL, ident, &names), 0);
    for (size_t i = 0; i < names.count; i++) buf_printf(out, "%s;", names.v[i]);
    strarr_fini(&names);
    return buf_cstr(out);
}

/* the rule of acl.h for a user who is no administrator, as imapd's LIST applies it */
static const char *vis_user;
static int vis_l(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)rock;
    return (acl_user_rights(e->acl, name, vis_user, 0) & acl_right_bit('l')) != 0;
}

/* list_both: LIST through the grant index, checked against the same LIST reading the whole
 * list (what the index must never change is the answer) */
static const char *list_both(struct mboxlist *ml, struct buf *out, const char *user,
                             const char *pat)
{
    struct buf full = BUF_INIT;
    vis_user = user;
    UNIT_EQ_INT(mboxlist_list_visible(ml, NULL, user, pat, vis_l, list_cb, &full), 0);
    buf_reset(out);
    UNIT_EQ_INT(mboxlist_list_granted(ml, NULL, user, pat, vis_l, list_cb, out), 0);
    UNIT_EQ_STR(buf_cstr(out), buf_cstr(&full));
    buf_fini(&full);
    return buf_cstr(out);
}

/* the grant index: kept by every write, read by LIST, rebuilt when missing */
static void test_grants(struct kv_env *env)
{
    struct mboxlist *ml = NULL;
    struct buf out = BUF_INIT;
    UNIT_EQ_INT(mboxlist_open(env, &ml), 0);
    UNIT_EQ_INT(create_acl(ml, "user/ann", "ann\tlrswipkxtea\t"), 0);
    UNIT_EQ_INT(create_acl(ml, "user/ann/shared", "ann\tlrswipkxtea\tbob\tlr\t-carl\tl\t"), 0);
    UNIT_EQ_INT(create_acl(ml, "user/ann/private", "ann\tlrswipkxtea\t"), 0);
    UNIT_EQ_INT(create_acl(ml, "user/bob", "bob\tlrswipkxtea\tdora\tr\t"), 0);
    UNIT_EQ_INT(create_acl(ml, "grant/pub", "anyone\tlr\t"), 0);
    UNIT_EQ_INT(create_acl(ml, "grant/priv", "carl\tlr\t"), 0);
    /* the owner of a personal mailbox is not indexed; negative entries are not either */
    UNIT_EQ_STR(grants(ml, &out, "ann"), "");
    UNIT_EQ_STR(grants(ml, &out, "bob"), "user/ann/shared;");
    UNIT_EQ_STR(grants(ml, &out, "carl"), "grant/priv;");
    UNIT_EQ_STR(grants(ml, &out, "anyone"), "grant/pub;");
    UNIT_EQ_STR(grants(ml, &out, "dora"), "user/bob;");
    UNIT_EQ_STR(grants(ml, &out, "bo"), "");   /* a prefix of an identifier is not it */
    UNIT_EQ_STR(list_both(ml, &out, "bob", "*"),
                "INBOX=user/bob;Other Users/ann/shared=user/ann/shared;"
                "Shared Folders/grant/pub=grant/pub;");
    UNIT_EQ_STR(list_both(ml, &out, "carl", "*"),
                "Shared Folders/grant/priv=grant/priv;Shared Folders/grant/pub=grant/pub;");
    /* dora has only 'r' on user/bob: listed by neither way */
    UNIT_EQ_STR(list_both(ml, &out, "dora", "*"), "Shared Folders/grant/pub=grant/pub;");
    UNIT_EQ_STR(list_both(ml, &out, "bob", "Other Users/%"), "(Other Users/ann);");
    UNIT_EQ_STR(list_both(ml, &out, "bob", "Other Users/ann/*"),
                "Other Users/ann/shared=user/ann/shared;");
    UNIT_EQ_STR(list_both(ml, &out, "bob", "Shared Folders/grant/p%"),
                "Shared Folders/grant/pub=grant/pub;");
    UNIT_EQ_STR(list_both(ml, &out, "ann", "*"),
                "INBOX=user/ann;private=user/ann/private;shared=user/ann/shared;"
                "Shared Folders/grant/pub=grant/pub;");
    /* an ACL change moves the grants in the same transaction */
    UNIT_EQ_INT(set_acl(ml, "grant/priv", "bob\tl\t"), 0);
    UNIT_EQ_STR(grants(ml, &out, "carl"), "");
    UNIT_EQ_STR(grants(ml, &out, "bob"), "grant/priv;user/ann/shared;");
    UNIT_EQ_STR(list_both(ml, &out, "carl", "*"), "Shared Folders/grant/pub=grant/pub;");
    /* a rename to another owner: bob now owns it (not indexed), ann no longer does */
    UNIT_EQ_INT(mboxlist_rename(ml, NULL, "user/ann/shared", "user/bob/shared"), 1);
    UNIT_EQ_STR(grants(ml, &out, "bob"), "grant/priv;");
    UNIT_EQ_STR(grants(ml, &out, "ann"), "user/bob/shared;");
    UNIT_EQ_STR(list_both(ml, &out, "ann", "*"),
                "INBOX=user/ann;private=user/ann/private;"
                "Other Users/bob/shared=user/bob/shared;Shared Folders/grant/pub=grant/pub;");
    /* a delete takes the grants along */
    UNIT_EQ_INT(mboxlist_delete(ml, NULL, "grant/pub"), 0);
    UNIT_EQ_STR(grants(ml, &out, "anyone"), "");
    UNIT_EQ_INT(mboxlist_delete(ml, NULL, "grant/pub"), CF_E_NOTFOUND);
    /* rebuild: from the entries, whatever the index held */
    UNIT_EQ_INT(kv_put(mboxlist_kv(ml), NULL, "\001g\tzed\tuser/gone", strlen("\001g\tzed\tuser/gone"),
                      "", 0), 0);
    UNIT_EQ_STR(grants(ml, &out, "zed"), "user/gone;");
    long long n = mboxlist_rebuild_grants(ml);
    UNIT_CHECK(n >= 6);
    UNIT_EQ_STR(grants(ml, &out, "zed"), "");
    UNIT_EQ_STR(grants(ml, &out, "ann"), "user/bob/shared;");
    UNIT_EQ_STR(grants(ml, &out, "bob"), "grant/priv;");
    /* a list without the index's mark (older, or loaded from an older dump) is indexed
     * when opened */
    UNIT_CHECK(kv_del_prefix(mboxlist_kv(ml), NULL, "\001g", 2) >= 4);
    UNIT_EQ_STR(grants(ml, &out, "ann"), "");
    mboxlist_close(&ml);
    UNIT_EQ_INT(mboxlist_open(env, &ml), 0);
    UNIT_EQ_STR(grants(ml, &out, "ann"), "user/bob/shared;");
    UNIT_EQ_STR(grants(ml, &out, "dora"), "user/bob;");
    /* the internal records are no mailboxes to any scan */
    UNIT_EQ_STR(list_both(ml, &out, "bob", "*"),
                "INBOX=user/bob;shared=user/bob/shared;Shared Folders/grant/priv=grant/priv;");
    UNIT_EQ_INT(mboxlist_delete(ml, NULL, "\001grants"), CF_E_NOTFOUND);
    /* a user's hierarchy, not every name it is a prefix of (user/fredrick) */
    struct names nm = { BUF_INIT };
    UNIT_EQ_INT(mboxlist_foreach_tree(ml, NULL, "user/fred", names_cb, &nm), 0);
    UNIT_EQ_STR(buf_cstr(&nm.out), "user/fred;user/fred/Archive/Lists;user/fred/Archive/Lists/a;"
                "user/fred/Archive/Lists/a/deep;user/fred/Lists-old;user/fred/Sent Items;");
    buf_reset(&nm.out);
    UNIT_EQ_INT(mboxlist_foreach_tree(ml, NULL, "user/nobody", names_cb, &nm), 0);
    UNIT_EQ_STR(buf_cstr(&nm.out), "");
    UNIT_EQ_INT(mboxlist_foreach_tree(ml, NULL, "user/joe/x", names_cb, &nm), 0);
    UNIT_EQ_STR(buf_cstr(&nm.out), "user/joe/x;");
    buf_fini(&nm.out);
    UNIT_EQ_STR(list_both(ml, &out, "fred", "*"),
                "INBOX=user/fred;Archive/Lists=user/fred/Archive/Lists;"
                "Archive/Lists/a=user/fred/Archive/Lists/a;"
                "Archive/Lists/a/deep=user/fred/Archive/Lists/a/deep;"
                "Lists-old=user/fred/Lists-old;Sent Items=user/fred/Sent Items;");
    buf_fini(&out);
    mboxlist_close(&ml);
}

static void test_quota(struct kv_env *env)
{
    struct quotadb *q = NULL;
    struct quota qt;
    struct buf root = BUF_INIT;
    struct kv_txn *t = NULL;
    UNIT_EQ_INT(quotadb_open(env, &q), 0);
    UNIT_EQ_INT(quotadb_set_limits(q, NULL, "user/fred", 100, QUOTA_UNLIMITED), 0);
    UNIT_EQ_INT(quotadb_set_limits(q, NULL, "user/fred/Big", QUOTA_UNLIMITED, 10), 0);
    UNIT_EQ_INT(quotadb_set_limits(q, NULL, "user/fredrick", 5, 5), 0);
    UNIT_EQ_INT(quotadb_set_limits(q, NULL, "news", -2, 5), CF_E_PARSE);

    static const struct { const char *mbox, *root; } t1[] = {
        { "user/fred", "user/fred" },
        { "user/fred/Sent", "user/fred" },
        { "user/fred/Big", "user/fred/Big" },
        { "user/fred/Big/x/y", "user/fred/Big" },
        { "user/fred/Bigger", "user/fred" },
        { "user/fredrick/x", "user/fredrick" },
        { "user/fre", NULL },
        { "user/joe", NULL },
        { "news", NULL },
    };
    for (size_t i = 0; i < sizeof t1 / sizeof *t1; i++) {
        int r = quotadb_find_root(q, NULL, t1[i].mbox, &root);
        UNIT_EQ_INT(r, t1[i].root ? 1 : 0);
        UNIT_EQ_STR(buf_cstr(&root), t1[i].root ? t1[i].root : "");
    }

    /* deltas inside a caller's transaction: aborted, then committed */
    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(quotadb_apply_delta(q, t, "user/fred", 50 * 1024, 3, 1), 0);
    kv_txn_abort(&t);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/fred", &qt), 1);
    UNIT_EQ_INT(qt.used_bytes, 0);
    UNIT_EQ_INT(kv_txn_begin(env, 0, &t), 0);
    UNIT_EQ_INT(quotadb_apply_delta(q, t, "user/fred", 50 * 1024, 3, 1), 0);
    UNIT_EQ_INT(kv_txn_commit(&t), 0);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/fred", &qt), 1);
    UNIT_EQ_INT(qt.limit_storage_kib, 100);
    UNIT_EQ_INT(qt.limit_messages, QUOTA_UNLIMITED);
    UNIT_EQ_INT(qt.used_bytes, 50 * 1024);
    UNIT_EQ_INT(qt.used_messages, 3);
    /* limits: exactly at the limit is fine, one byte past is not (when enforced) */
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fred", 50 * 1024 + 1, 1, 1), CF_E_QUOTA);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fred", 50 * 1024, 1, 1), 0);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fred", 1, 1, 1), CF_E_QUOTA);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fred", 1, 1, 0), 0);  /* not enforced */
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fred", -1, -1, 1), 0); /* removal */
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/fred", &qt), 1);
    UNIT_EQ_INT(qt.used_bytes, 100 * 1024);
    UNIT_EQ_INT(qt.used_messages, 4);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fred/Big", 0, 10, 1), 0);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fred/Big", 0, 1, 1), CF_E_QUOTA);
    /* never negative */
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/fredrick", -10, -10, 1), 0);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/fredrick", &qt), 1);
    UNIT_EQ_INT(qt.used_bytes, 0);
    UNIT_EQ_INT(qt.used_messages, 0);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/joe", 1, 1, 1), CF_E_NOTFOUND);
    /* changing limits keeps usage; recount; delete */
    UNIT_EQ_INT(quotadb_set_limits(q, NULL, "user/fred", 200, 1000), 0);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/fred", &qt), 1);
    UNIT_EQ_INT(qt.used_bytes, 100 * 1024);
    UNIT_EQ_INT(qt.limit_messages, 1000);
    UNIT_EQ_INT(quotadb_set_usage(q, NULL, "user/fred", 7, 1), 0);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/fred", &qt), 1);
    UNIT_EQ_INT(qt.used_bytes, 7);
    UNIT_EQ_INT(quotadb_set_usage(q, NULL, "user/nobody", 7, 1), CF_E_NOTFOUND);
    UNIT_EQ_INT(quotadb_delete(q, NULL, "user/fred/Big"), 0);
    UNIT_EQ_INT(quotadb_delete(q, NULL, "user/fred/Big"), CF_E_NOTFOUND);
    UNIT_EQ_INT(quotadb_find_root(q, NULL, "user/fred/Big/x", &root), 1);
    UNIT_EQ_STR(buf_cstr(&root), "user/fred");
    /* the stored text format */
    struct buf v = BUF_INIT;
    UNIT_EQ_INT(kv_get(quotadb_kv(q), NULL, "user/fred", 9, &v), 1);
    UNIT_EQ_STR(buf_cstr(&v), "1 200 1000 7 1");
    UNIT_EQ_INT(kv_put(quotadb_kv(q), NULL, "user/bad", 8, "1 2 x", 5), 0);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/bad", &qt), CF_E_CORRUPT);
    /* L6: 63-bit limits: INT64_MAX decodes, a storage limit whose bytes overflow is refused,
     * and the checks on a record holding one (written before) neither wrap nor divide by 0 */
    UNIT_EQ_INT(quotadb_set_limits(q, NULL, "user/big", QUOTA_STORAGE_KIB_MAX + 1, 1), CF_E_LIMIT);
    UNIT_EQ_INT(quotadb_set_limits(q, NULL, "user/big", QUOTA_STORAGE_KIB_MAX, INT64_MAX), 0);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/big", &qt), 1);
    UNIT_EQ_INT(qt.limit_messages == INT64_MAX, 1);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/big", INT64_MAX / 2, 1, 1), 0);
    UNIT_EQ_INT(quotadb_apply_delta(q, NULL, "user/big", INT64_MAX / 2 + 100, 1, 1), CF_E_QUOTA);
    UNIT_EQ_INT(kv_put(quotadb_kv(q), NULL, "user/old", 8, "1 9223372036854775807 0 5 1", 27), 0);
    UNIT_EQ_INT(quotadb_get(q, NULL, "user/old", &qt), 1);
    UNIT_EQ_INT(quota_would_exceed(&qt, 1000, 0), 0);
    UNIT_EQ_INT(quota_would_exceed(&qt, INT64_MAX, 0), 1);
    UNIT_EQ_INT(quota_percent(&qt) >= 100, 1);    /* the message limit 0, 1 used */
    struct quota pq = { QUOTA_STORAGE_KIB_MAX, QUOTA_UNLIMITED, INT64_MAX / 2, 0 };
    UNIT_EQ_INT((int)quota_percent(&pq), 50);
    pq.limit_storage_kib = 0;
    UNIT_EQ_INT((int)quota_percent(&pq), 100);
    pq.used_bytes = 0;
    UNIT_EQ_INT((int)quota_percent(&pq), 0);
    buf_fini(&v);
    buf_fini(&root);
    quotadb_close(&q);
}

static void test_subs_seen(struct kv_env *env)
{
    struct subsdb *s = NULL;
    struct seendb *sn = NULL;
    struct strarr a = STRARR_INIT;
    struct buf set = BUF_INIT;
    UNIT_EQ_INT(subs_open(env, &s), 0);
    UNIT_EQ_INT(subs_add(s, NULL, "fred", "user/fred/Sent"), 0);
    UNIT_EQ_INT(subs_add(s, NULL, "fred", "news/a"), 0);
    UNIT_EQ_INT(subs_add(s, NULL, "fred", "news/a"), 0);
    UNIT_EQ_INT(subs_add(s, NULL, "fredrick", "news/b"), 0);
    UNIT_EQ_INT(subs_add(s, NULL, "fred", "bad//name"), CF_E_PARSE);
    UNIT_EQ_INT(subs_is_subscribed(s, NULL, "fred", "news/a"), 1);
    UNIT_EQ_INT(subs_is_subscribed(s, NULL, "fred", "news/b"), 0);
    UNIT_EQ_INT(subs_list(s, NULL, "fred", &a), 0);
    UNIT_EQ_INT(a.count, 2);
    UNIT_EQ_STR(strarr_get(&a, 0), "news/a");
    UNIT_EQ_STR(strarr_get(&a, 1), "user/fred/Sent");
    UNIT_EQ_INT(subs_remove(s, NULL, "fred", "news/a"), 0);
    UNIT_EQ_INT(subs_remove(s, NULL, "fred", "news/a"), 0);
    UNIT_EQ_INT(subs_is_subscribed(s, NULL, "fred", "news/a"), 0);
    UNIT_EQ_INT(subs_remove_user(s, NULL, "fred"), 1);
    strarr_fini(&a);
    UNIT_EQ_INT(subs_list(s, NULL, "fred", &a), 0);
    UNIT_EQ_INT(a.count, 0);
    UNIT_EQ_INT(subs_list(s, NULL, "fredrick", &a), 0);
    UNIT_EQ_INT(a.count, 1);
    strarr_fini(&a);
    subs_close(&s);

    UNIT_EQ_INT(seendb_open(env, &sn), 0);
    const char *id1 = "0123456789abcdef0123456789abcdef", *id2 = "fedcba98765432100123456789abcdef";
    UNIT_EQ_INT(seendb_get(sn, NULL, id1, "fred", &set), 0);
    UNIT_EQ_INT(seendb_set(sn, NULL, id1, "fred", "1:5,9"), 0);
    UNIT_EQ_INT(seendb_set(sn, NULL, id1, "joe", ""), 0);
    UNIT_EQ_INT(seendb_set(sn, NULL, id2, "fred", "3"), 0);
    UNIT_EQ_INT(seendb_set(sn, NULL, id2, "fred", "1 2"), CF_E_PARSE);
    UNIT_EQ_INT(seendb_get(sn, NULL, id1, "fred", &set), 1);
    UNIT_EQ_STR(buf_cstr(&set), "1:5,9");
    UNIT_EQ_INT(seendb_get(sn, NULL, id1, "joe", &set), 1);
    UNIT_EQ_STR(buf_cstr(&set), "");
    UNIT_EQ_INT(seendb_delete_user(sn, "fred"), 2);
    UNIT_EQ_INT(seendb_get(sn, NULL, id2, "fred", &set), 0);
    UNIT_EQ_INT(seendb_delete_mailbox(sn, NULL, id1), 1);
    UNIT_EQ_INT(seendb_get(sn, NULL, id1, "joe", &set), 0);
    seendb_close(&sn);
    buf_fini(&set);
}

static void test_dup(struct kv_env *env)
{
    struct dupdb *d = NULL;
    int64_t when = -1;
    char id[64];
    UNIT_EQ_INT(dupdb_open(env, &d), 0);
    UNIT_EQ_INT(dupdb_check(d, NULL, "<a@x>", "user/fred", &when), 0);
    UNIT_EQ_INT(when, 0);
    UNIT_EQ_INT(dupdb_mark(d, NULL, "<a@x>", "user/fred", 1000), 0);
    UNIT_EQ_INT(dupdb_check(d, NULL, "<a@x>", "user/fred", &when), 1);
    UNIT_EQ_INT(when, 1000);
    UNIT_EQ_INT(dupdb_check(d, NULL, "<a@x>", "user/joe", NULL), 0);
    UNIT_EQ_INT(dupdb_mark(d, NULL, "", "user/fred", 1000), CF_E_PARSE);
    UNIT_EQ_INT(dupdb_check(d, NULL, "<a@x>", "", NULL), CF_E_PARSE);
    /* 700 old and 300 new marks: pruning crosses several batches */
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "<%d@example.com>", i);
        UNIT_EQ_INT(dupdb_mark(d, NULL, id, "user/fred", i < 700 ? 2000 + i : 5000 + i), 0);
    }
    UNIT_EQ_INT(dupdb_prune(d, 5000), 701);   /* the 700 and <a@x> */
    UNIT_EQ_INT(dupdb_check(d, NULL, "<a@x>", "user/fred", NULL), 0);
    UNIT_EQ_INT(dupdb_check(d, NULL, "<699@example.com>", "user/fred", NULL), 0);
    UNIT_EQ_INT(dupdb_check(d, NULL, "<700@example.com>", "user/fred", &when), 1);
    UNIT_EQ_INT(when, 5700);
    UNIT_EQ_INT(dupdb_prune(d, 5000), 0);
    UNIT_EQ_INT(dupdb_prune(d, 6000), 300);
    dupdb_close(&d);
}

/* dump and load the mailbox list through a fresh environment */
static void test_mboxlist_dump(struct kv_env *env)
{
    struct mboxlist *ml = NULL, *ml2 = NULL;
    struct kv_env *env2 = NULL;
    char *dir2 = xasprintf("%s/env2", tmpdir);
    char *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, n2 = 0;
    UNIT_EQ_INT(mboxlist_open(env, &ml), 0);
    FILE *f = open_memstream(&s1, &n1);
    UNIT_EQ_INT(kv_dump(mboxlist_kv(ml), f), 0);
    fclose(f);
    /* the UIDVALIDITY counter (its key sorts first) is dumped and loaded like any record */
    UNIT_CHECK(!strncmp(s1, "coffer-kv-dump 1 mailboxes.db\n%01g%09", 36));
    UNIT_CHECK(strstr(s1, "\n%01uidvalidity ") != NULL);
    /* and so are the grant index and its mark (test_grants left some) */
    UNIT_CHECK(strstr(s1, "\n%01grants 1\n") != NULL);
    UNIT_CHECK(strstr(s1, "\nnews/a 1%20default%20") != NULL);
    UNIT_EQ_INT(kv_env_open(dir2, &env2), 0);
    UNIT_EQ_INT(mboxlist_open(env2, &ml2), 0);
    f = fmemopen(s1, n1, "r");
    UNIT_EQ_INT(kv_load(mboxlist_kv(ml2), f), 0);
    fclose(f);
    f = open_memstream(&s2, &n2);
    UNIT_EQ_INT(kv_dump(mboxlist_kv(ml2), f), 0);
    fclose(f);
    UNIT_EQ_STR(s2, s1);
    UNIT_EQ_INT(mboxlist_lookup(ml2, NULL, "user/fred/Sent Items", NULL), 1);
    mboxlist_close(&ml);
    mboxlist_close(&ml2);
    kv_env_close(&env2);
    free(s1);
    free(s2);
    free(dir2);
}

int main(void)
{
    log_init("test-mboxlist", 1, LOG_LVL_ERR);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char *dir = xasprintf("%s/db", tmpdir);
    struct kv_env *env = NULL;
    UNIT_EQ_INT(kv_env_recover(dir), 0);
    UNIT_EQ_INT(kv_env_open(dir, &env), 0);
    test_entry_format();
    test_mboxlist(env);
    test_list(env);
    test_grants(env);
    test_quota(env);
    test_subs_seen(env);
    test_dup(env);
    test_mboxlist_dump(env);
    kv_env_close(&env);
    free(dir);
    char *cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", tmpdir);
    free(cmd);
    UNIT_DONE();
}
