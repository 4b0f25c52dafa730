/* test-mailbox-watch.c: unit tests of mailbox-watch.c: every kind of commit another handle
 * makes is reported once, files that are no commit are not, and a deleted mailbox is. */
#include "store/mailbox-watch.h"
#include "store/mailbox.h"
#include "store/partition.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/coffer-test-watch-XXXXXX";

/* readable: whether the watch's fd polls readable within ms. */
static int readable(struct mailbox_watch *w, int ms)
{
    struct pollfd pf = { .fd = mailbox_watch_fd(w), .events = POLLIN, .revents = 0 };
    return poll(&pf, 1, ms) == 1 && (pf.revents & POLLIN);
}

static int append_one(struct mailbox *mb, uint32_t flags, uint32_t *uid_r)
{
    static const char msg[] = "From: a@example.org\r\nSubject: watch\r\n\r\nbody\r\n";
    struct mailbox_msg m = { msg, sizeof msg - 1, -1, 0, flags, NULL, 0 };
    int r = mailbox_append(mb, &m, 1, NULL);
    *uid_r = m.uid;
    return r;
}

static void test_watch(const char *part)
{
    char id[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    UNIT_EQ_INT(mailbox_create(part, "user.alice", id, "alice\tlrswipkxtecda", 0), 0);
    struct mailbox *mb = NULL, *writer = NULL;
    UNIT_EQ_INT(mailbox_open(part, id, "user.alice", &mb), 0);
    UNIT_EQ_INT(mailbox_open(part, id, "user.alice", &writer), 0);
    struct mailbox_watch *w = NULL;
    UNIT_EQ_INT(mailbox_watch_open(mb, &w), 0);
    UNIT_CHECK(w != NULL);
    if (!w) return;
    UNIT_CHECK(mailbox_watch_fd(w) >= 0);
    UNIT_CHECK(!readable(w, 0));
    UNIT_EQ_INT(mailbox_watch_changed(w), 0);

    /* append, store, expunge, repack: each is reported, once */
    uint32_t uid = 0;
    UNIT_EQ_INT(append_one(writer, 0, &uid), 0);
    UNIT_CHECK(readable(w, 1000));
    UNIT_EQ_INT(mailbox_watch_changed(w), 1);
    UNIT_EQ_INT(mailbox_watch_changed(w), 0);
    UNIT_CHECK(!readable(w, 0));

    struct mailbox_store st = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    UNIT_EQ_INT(mailbox_store(writer, &uid, 1, &st, NULL, NULL), 0);
    UNIT_CHECK(readable(w, 1000));
    UNIT_EQ_INT(mailbox_watch_changed(w), 1);

    UNIT_EQ_INT(mailbox_expunge(writer, &uid, 1, NULL), 0);
    UNIT_CHECK(readable(w, 1000));
    UNIT_EQ_INT(mailbox_watch_changed(w), 1);

    UNIT_EQ_INT(mailbox_repack(writer), 0);       /* a new index renamed in */
    UNIT_CHECK(readable(w, 1000));
    UNIT_EQ_INT(mailbox_watch_changed(w), 1);
    UNIT_EQ_INT(mailbox_watch_changed(w), 0);

    /* a file that is no commit wakes the fd but is no change */
    char *other = xasprintf("%s/unrelated", mailbox_dir(mb));
    UNIT_EQ_INT(file_write_atomic(other, "x", 1, 0600), 0);
    UNIT_CHECK(readable(w, 1000));
    UNIT_EQ_INT(mailbox_watch_changed(w), 0);
    unlink(other);
    free(other);
    mailbox_close(&writer);

    /* the mailbox deleted while a session holds it open: reported */
    UNIT_EQ_INT(mailbox_delete(part, id), 0);
    UNIT_CHECK(readable(w, 1000));
    UNIT_EQ_INT(mailbox_watch_changed(w), 1);
    /* once the directory is really gone: reported, and from then on always */
    mailbox_close(&mb);
    UNIT_CHECK(readable(w, 1000));
    UNIT_EQ_INT(mailbox_watch_changed(w), 1);
    UNIT_EQ_INT(mailbox_watch_changed(w), 1);
    mailbox_watch_close(&w);
    UNIT_CHECK(w == NULL);
    mailbox_watch_close(&w);                      /* NULL is fine */
}

struct seen_ids { int ids[8]; int n; };

static void note_id(int id, void *rock)
{
    struct seen_ids *s = rock;
    if (s->n < 8) s->ids[s->n++] = id;
}

/* test_watchset: two mailboxes on one descriptor; a commit names the right one. */
static void test_watchset(const char *part)
{
    char a[UNIQUEID_LEN + 1], b[UNIQUEID_LEN + 1];
    partition_new_uniqueid(a);
    partition_new_uniqueid(b);
    UNIT_EQ_INT(mailbox_create(part, "user.bob", a, "bob\tlrswipkxtecda", 0), 0);
    UNIT_EQ_INT(mailbox_create(part, "user.bob.x", b, "bob\tlrswipkxtecda", 0), 0);
    struct mailbox_watchset *ws = NULL;
    UNIT_EQ_INT(mailbox_watchset_new(&ws), 0);
    if (!ws) return;
    int ia = mailbox_watchset_add(ws, part, a), ib = mailbox_watchset_add(ws, part, b);
    UNIT_CHECK(ia >= 0 && ib >= 0 && ia != ib);
    UNIT_EQ_INT(mailbox_watchset_add(ws, part, a), ia);       /* same mailbox, same id */
    UNIT_CHECK(mailbox_watchset_add(ws, part, "00nosuchmailbox") < 0);
    struct mailbox *mb = NULL;
    UNIT_EQ_INT(mailbox_open(part, b, "user.bob.x", &mb), 0);
    uint32_t uid = 0;
    UNIT_EQ_INT(append_one(mb, 0, &uid), 0);
    struct pollfd pf = { .fd = mailbox_watchset_fd(ws), .events = POLLIN, .revents = 0 };
    UNIT_EQ_INT(poll(&pf, 1, 1000), 1);
    struct seen_ids s = { { 0 }, 0 };
    mailbox_watchset_changed(ws, note_id, &s);
    UNIT_CHECK(s.n >= 1);
    for (int i = 0; i < s.n; i++) UNIT_EQ_INT(s.ids[i], ib);
    /* removed: its commits are no longer reported */
    mailbox_watchset_remove(ws, ib);
    s.n = 0;
    mailbox_watchset_changed(ws, note_id, &s);   /* IN_IGNORED of the removal: not a commit */
    UNIT_EQ_INT(s.n, 0);
    UNIT_EQ_INT(append_one(mb, 0, &uid), 0);
    mailbox_watchset_changed(ws, note_id, &s);
    UNIT_EQ_INT(s.n, 0);
    mailbox_close(&mb);
    mailbox_watchset_free(&ws);
    UNIT_CHECK(ws == NULL);
    mailbox_watchset_free(&ws);
}

static void rm_rf(const char *path)
{
    char *cmd = xasprintf("rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed: %s\n", cmd);
    free(cmd);
}

int main(void)
{
    log_init("test-mailbox-watch", 1, LOG_LVL_WARNING);
    if (!mkdtemp(tmpdir)) return 2;
    char *part = xasprintf("%s/part", tmpdir);
    UNIT_EQ_INT(partition_prepare(part), 0);
    test_watch(part);
    test_watchset(part);
    if (!unit_failed) rm_rf(tmpdir);
    else fprintf(stderr, "left %s for inspection\n", tmpdir);
    free(part);
    UNIT_DONE();
}
