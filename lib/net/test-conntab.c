/* test-conntab.c: unit tests for the shared connection table: address keys, the limit per
 * address before login, the limit per user and address after it, release, the master's
 * clean-up after a worker died holding slots, the lock across processes, signalling a user's
 * sessions, and the user keys (one per name, the same in every process). */
#include "net/conntab.h"
#include "core/error.h"
#include "core/unit.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void addr4(const char *ip, struct conntab_addr *out)
{
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(1234) };
    inet_pton(AF_INET, ip, &in.sin_addr);
    conntab_addr_of(-1, (struct sockaddr *)&in, sizeof in, out);
}

static void addr6(const char *ip, struct conntab_addr *out)
{
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(1234) };
    inet_pton(AF_INET6, ip, &in6.sin6_addr);
    conntab_addr_of(-1, (struct sockaddr *)&in6, sizeof in6, out);
}

static void test_keys(void)
{
    struct conntab_addr a, b;
    addr4("192.0.2.1", &a);
    addr6("::ffff:192.0.2.1", &b);
    UNIT_CHECK(!memcmp(&a, &b, sizeof a));          /* v4-mapped is the IPv4 client */
    addr6("2001:db8:1:2::1", &a);
    addr6("2001:db8:1:2:ffff::9", &b);
    UNIT_CHECK(!memcmp(&a, &b, sizeof a));          /* one /64 */
    addr6("2001:db8:1:3::1", &b);
    UNIT_CHECK(memcmp(&a, &b, sizeof a) != 0);
    conntab_addr_of(-1, NULL, 0, &a);
    UNIT_EQ_INT(a.b[0], 0);                          /* not counted */
}

static void test_limits(void)
{
    struct conntab *t = NULL;
    int fd = -1, count = 0;
    UNIT_EQ_INT(conntab_create(64, &t, &fd), 0);
    struct conntab_addr a, b, none;
    addr4("192.0.2.1", &a);
    addr4("192.0.2.2", &b);
    conntab_addr_of(-1, NULL, 0, &none);
    int slot[4];
    for (int i = 0; i < 3; i++) {
        slot[i] = conntab_enter(t, 100 + i, "imap", &a, 3, &count);
        UNIT_CHECK(slot[i] > 0);
        UNIT_EQ_INT(count, i);
    }
    UNIT_EQ_INT(conntab_enter(t, 200, "imap", &a, 3, &count), 0);     /* the 4th: refused */
    UNIT_EQ_INT(count, 3);
    UNIT_CHECK(conntab_enter(t, 200, "pop3", &a, 3, &count) > 0);    /* per service */
    UNIT_CHECK(conntab_enter(t, 201, "imap", &b, 3, &count) > 0);    /* per address */
    UNIT_CHECK(conntab_enter(t, 202, "imap", &none, 1, &count) > 0); /* never refused */
    UNIT_CHECK(conntab_enter(t, 203, "imap", &none, 1, &count) > 0);
    UNIT_CHECK(conntab_enter(t, 204, "imap", &a, 0, &count) > 0);    /* 0: no limit */
    UNIT_EQ_INT(conntab_count(t, "imap", CONNTAB_PREAUTH), 7);

    /* logging in frees a place before login; the user limit counts logged-in slots only */
    UNIT_EQ_INT(conntab_login(t, slot[0], "fred", 2, &count), 0);
    UNIT_EQ_INT(conntab_login(t, slot[1], "fred", 2, &count), 0);
    UNIT_EQ_INT(count, 1);
    UNIT_EQ_INT(conntab_login(t, slot[2], "fred", 2, &count), CF_E_LIMIT);
    UNIT_EQ_INT(count, 2);
    UNIT_EQ_INT(conntab_login(t, slot[2], "wilma", 2, &count), 0);   /* another user */
    UNIT_EQ_INT(conntab_count(t, "imap", CONNTAB_AUTH), 3);
    slot[3] = conntab_enter(t, 205, "imap", &a, 3, &count);
    UNIT_CHECK(slot[3] > 0);
    UNIT_EQ_INT(count, 1);                           /* only slot 204's is before login */
    UNIT_EQ_INT(conntab_login(t, slot[3], NULL, 1, &count), 0);      /* LMTP: no user limit */

    /* a logout frees the user's place */
    conntab_leave(t, slot[0]);
    int s = conntab_enter(t, 206, "imap", &a, 3, &count);
    UNIT_CHECK(s > 0);
    UNIT_EQ_INT(conntab_login(t, s, "fred", 2, &count), 0);

    /* notes: what a worker is in the middle of, read by the master after it died */
    conntab_note(t, slot[1], "user/fred\nuser/barney\n");
    struct strarr notes = STRARR_INIT;
    conntab_notes_of(t, 101, &notes);
    UNIT_EQ_INT(notes.count, 1);
    UNIT_EQ_STR(notes.v[0], "user/fred\nuser/barney\n");
    char big[CONNTAB_NOTE_MAX + 10];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    conntab_note(t, slot[1], big);                   /* too long: "anything" */
    strarr_fini(&notes);
    conntab_notes_of(t, 101, &notes);
    UNIT_EQ_STR(notes.v[0], CONNTAB_NOTE_OVERFLOW);
    strarr_fini(&notes);
    conntab_notes_of(t, 999, &notes);               /* no slot of that pid */
    UNIT_EQ_INT(notes.count, 0);
    conntab_note(t, slot[1], "");
    conntab_notes_of(t, 101, &notes);               /* cleared */
    UNIT_EQ_INT(notes.count, 0);
    strarr_fini(&notes);

    /* the master reaps pid 101 (fred's second session) that never released its slot */
    UNIT_EQ_INT(conntab_clear_pid(t, 101), 1);
    UNIT_EQ_INT(conntab_clear_pid(t, 101), 0);
    s = conntab_enter(t, 207, "imap", &a, 3, &count);
    UNIT_EQ_INT(conntab_login(t, s, "fred", 2, &count), 0);
    UNIT_EQ_INT(count, 1);
    conntab_free(&t);
    UNIT_CHECK(t == NULL);
    close(fd);
}

/* test_processes: children attached by fd race for the places of one address; exactly limit
 * of them win, and the table is full when the table is */
static void test_processes(void)
{
    struct conntab *t = NULL;
    int fd = -1, count = 0;
    UNIT_EQ_INT(conntab_create(16, &t, &fd), 0);
    struct conntab_addr a;
    addr4("198.51.100.7", &a);
    int p[2];
    UNIT_EQ_INT(pipe(p), 0);
    enum { N = 8, LIMIT = 5 };
    for (int i = 0; i < N; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            struct conntab *c = NULL;
            if (conntab_attach(fd, &c)) _exit(2);
            int n = 0;
            char won = conntab_enter(c, (int)getpid(), "imap", &a, LIMIT, &n) > 0 ? 'y' : 'n';
            if (write(p[1], &won, 1) != 1) _exit(3);
            _exit(0);               /* exits without leaving: the parent clears like the master */
        }
        UNIT_CHECK(pid > 0);
    }
    int wins = 0;
    for (int i = 0; i < N; i++) {
        char c = 0;
        UNIT_EQ_INT((int)read(p[0], &c, 1), 1);
        wins += c == 'y';
    }
    UNIT_EQ_INT(wins, LIMIT);
    int st, cleared = 0;
    pid_t pid;
    while ((pid = wait(&st)) > 0) {
        UNIT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        cleared += conntab_clear_pid(t, (int)pid);
    }
    UNIT_EQ_INT(cleared, LIMIT);
    UNIT_EQ_INT(conntab_count(t, NULL, CONNTAB_PREAUTH), 0);
    for (int i = 0; i < 16; i++) UNIT_CHECK(conntab_enter(t, 1000 + i, "imap", &a, 0, &count) > 0);
    UNIT_EQ_INT(conntab_enter(t, 2000, "imap", &a, 0, &count), CF_E_AGAIN);
    close(p[0]);
    close(p[1]);
    conntab_free(&t);
    close(fd);
}

/* conntab_signal_user: the logged-in sessions of that user alone, of any service, are signalled
 * (admind's FENCE); a session before login, another user's, or the caller's own are not */
static void test_signal_user(void)
{
    struct conntab *t;
    int fd, count;
    UNIT_CHECK(conntab_create(16, &t, &fd) == 0);
    struct conntab_addr a;
    addr4("192.0.2.9", &a);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            pause();
            _exit(0);
        }
        UNIT_CHECK(kids[i] > 0);
    }
    int s0 = conntab_enter(t, kids[0], "imap", &a, 0, &count);
    int s1 = conntab_enter(t, kids[1], "pop3", &a, 0, &count);
    int s2 = conntab_enter(t, kids[2], "imap", &a, 0, &count);
    int s3 = conntab_enter(t, kids[3], "imap", &a, 0, &count);
    int me = conntab_enter(t, (int)getpid(), "admin", &a, 0, &count);
    UNIT_CHECK(conntab_login(t, s0, "alice", 0, &count) == 0);
    UNIT_CHECK(conntab_login(t, s1, "alice", 0, &count) == 0);
    UNIT_CHECK(conntab_login(t, s2, "alicex", 0, &count) == 0);     /* another user */
    (void)s3;                                                      /* not logged in */
    UNIT_CHECK(conntab_login(t, me, "alice", 0, &count) == 0);     /* the caller itself */
    UNIT_CHECK(conntab_signal_user(t, "alice", SIGTERM) == 2);
    for (int i = 0; i < 4; i++) {
        int st;
        if (i >= 2) kill(kids[i], SIGKILL);
        UNIT_CHECK(waitpid(kids[i], &st, 0) == kids[i]);
        UNIT_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == (i < 2 ? SIGTERM : SIGKILL));
    }
    conntab_free(&t);
    close(fd);
}

/* test_user_keys: the user key (SipHash under the table's key) is the same for one name in
 * every process attached to the table, and different for different names, also for long
 * names that share their first 16 bytes or differ in one bit */
static void test_user_keys(void)
{
    struct conntab *t = NULL;
    int fd = -1, count = 0;
    UNIT_EQ_INT(conntab_create(32, &t, &fd), 0);
    struct conntab_addr a;
    addr4("203.0.113.5", &a);
    static const char *const names[] = { "alice", "alicf", "Alice", "",
                                         "a-very-long-user-name@example.org",
                                         "a-very-long-user-name@example.net" };
    enum { NN = sizeof names / sizeof names[0] };
    /* a child process (attached by fd, as a worker) logs in every name once, limit 1 ... */
    int p[2];
    UNIT_EQ_INT(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct conntab *c = NULL;
        char ok = 'y';
        if (conntab_attach(fd, &c)) _exit(2);
        for (int i = 0; i < NN; i++) {
            int n = 0, slot = conntab_enter(c, (int)getpid(), "imap", &a, 0, &n);
            if (slot <= 0 || conntab_login(c, slot, names[i], 1, &n) != 0) ok = 'n';
        }
        if (write(p[1], &ok, 1) != 1) _exit(3);
        pause();
        _exit(0);
    }
    UNIT_CHECK(pid > 0);
    char ok = 0;
    UNIT_EQ_INT((int)read(p[0], &ok, 1), 1);
    UNIT_EQ_INT(ok, 'y');                   /* distinct names never counted against each other */
    /* ... so in this process each name has reached its limit of 1: same key across processes */
    for (int i = 0; i < NN; i++) {
        int slot = conntab_enter(t, 300 + i, "imap", &a, 0, &count);
        UNIT_CHECK(slot > 0);
        UNIT_EQ_INT(conntab_login(t, slot, names[i], 1, &count), CF_E_LIMIT);
        UNIT_EQ_INT(count, 1);
        UNIT_EQ_INT(conntab_login(t, slot, "nobody-else", 1, &count), 0);
        conntab_logout(t, slot);
    }
    UNIT_EQ_INT(conntab_signal_user(t, "alice", SIGTERM), 1);       /* found by its key */
    int st;
    UNIT_CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    UNIT_EQ_INT(conntab_clear_pid(t, (int)pid), NN);
    close(p[0]);
    close(p[1]);
    conntab_free(&t);
    close(fd);
}

int main(void)
{
    test_keys();
    test_limits();
    test_processes();
    test_signal_user();
    test_user_keys();
    UNIT_DONE();
}
