/* test-metrics.c: unit tests for the shared counters (metrics.h): nothing is counted without
 * a mapping, slots are found by name and shared across fork, labels a client could choose
 * collapse into "other", the latency buckets, and fsync counted through the link wrapper. */
#include "core/metrics.h"
#include "core/unit.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t login_count(const struct metrics_shm *m, const char *key, int ok)
{
    uint64_t n = 0;
    for (size_t i = 0; i < METRICS_LOGINS; i++)
        if (m->logins[i].n.state == 2 && !strcmp(m->logins[i].n.name, key))
            n += ok ? m->logins[i].ok : m->logins[i].failed;
    return n;
}

static const struct metrics_command *command(const struct metrics_shm *m, const char *name)
{
    int i = metrics_slot_find((void *)m->commands, METRICS_COMMANDS, sizeof m->commands[0], name, 0);
    return i < 0 ? NULL : &m->commands[i];
}

int main(void)
{
    /* without a mapping every call is a no-op */
    UNIT_CHECK(metrics_get() == NULL);
    metrics_connection("imap");
    metrics_login("imap", "PLAIN", 1);
    metrics_command("NOOP", 10);
    metrics_lmtp(METRICS_LMTP_DELIVERED);

    int fd = -1;
    UNIT_EQ_INT(metrics_create(&fd), 0);
    struct metrics_shm *m = metrics_get();
    UNIT_CHECK(m != NULL);
    UNIT_EQ_INT(m->magic, METRICS_MAGIC);
    UNIT_EQ_INT(m->lmtp[METRICS_LMTP_DELIVERED], 0);

    /* connections and bytes by service; a child's counts land in the same mapping */
    metrics_connection("imap");
    pid_t pid = fork();
    if (pid == 0) {
        metrics_connection("imap");
        metrics_connection("pop3");
        metrics_bytes("imap", 10, 20);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    int i = metrics_slot_find(m->services, METRICS_SERVICES, sizeof m->services[0], "imap", 0);
    UNIT_CHECK(i >= 0);
    if (i >= 0) {
        UNIT_EQ_INT(m->services[i].connections, 2);
        UNIT_EQ_INT(m->services[i].bytes_in, 10);
        UNIT_EQ_INT(m->services[i].bytes_out, 20);
    }
    UNIT_CHECK(metrics_slot_find(m->services, METRICS_SERVICES, sizeof m->services[0], "pop3", 0) >= 0);
    UNIT_EQ_INT(metrics_slot_find(m->services, METRICS_SERVICES, sizeof m->services[0], "x", 0), -1);

    /* mechanisms: known ones by their name, case-insensitively; anything else is "other" */
    metrics_login("imap", "plain", 1);
    metrics_login("imap", "PLAIN", 0);
    metrics_login("imap", "X-MADE-UP", 0);
    metrics_login("imap", "\"quoted\nnewline", 0);
    metrics_login("pop3", "USER", 1);
    UNIT_EQ_INT(login_count(m, "imap/PLAIN", 1), 1);
    UNIT_EQ_INT(login_count(m, "imap/PLAIN", 0), 1);
    UNIT_EQ_INT(login_count(m, "imap/other", 0), 2);
    UNIT_EQ_INT(login_count(m, "pop3/USER", 1), 1);

    /* latency buckets: the first bound at or above the time, +Inf past the last */
    metrics_command("noop", 400);        /* 0.4 ms: le 0.0005 */
    metrics_command("NOOP", 500);        /* exactly the bound: le 0.0005 */
    metrics_command("NOOP", 3000);       /* 3 ms: le 0.005 */
    metrics_command("NOOP", 60000000);   /* 60 s: +Inf */
    const struct metrics_command *c = command(m, "NOOP");
    UNIT_CHECK(c != NULL);
    if (c) {
        UNIT_EQ_INT(c->count, 4);
        UNIT_EQ_INT(c->sum_us, 400 + 500 + 3000 + 60000000);
        UNIT_EQ_INT(c->bucket[0], 2);
        UNIT_EQ_INT(c->bucket[3], 1);
        UNIT_EQ_INT(c->bucket[METRICS_LATENCY_BUCKETS], 1);
    }

    /* when the slots run out, new names go to "other" and nothing grows */
    char name[32];
    for (int k = 0; k < METRICS_COMMANDS + 10; k++) {
        snprintf(name, sizeof name, "CMD%d", k);
        metrics_command(name, 1);
    }
    c = command(m, METRICS_OTHER);
    UNIT_CHECK(c != NULL);
    if (c) UNIT_EQ_INT(c->count, 12);   /* 95 slots: NOOP and 94 CMDn; 12 go to other */

    /* fsync through the link wrapper */
    uint64_t before = m->fsyncs;
    char path[] = "/tmp/test-metrics.XXXXXX";
    int tfd = mkstemp(path);
    UNIT_CHECK(tfd >= 0);
    UNIT_EQ_INT(fsync(tfd), 0);
    UNIT_EQ_INT(fdatasync(tfd), 0);
    close(tfd);
    unlink(path);
    UNIT_EQ_INT(m->fsyncs - before, 2);

    /* a second process attaches by fd and sees the same counters */
    UNIT_EQ_INT(metrics_attach(fd), 0);
    UNIT_CHECK(metrics_get() != m);
    UNIT_EQ_INT(metrics_get()->fsyncs, m->fsyncs);
    /* the wrong file is refused */
    int bad = open("/dev/null", O_RDONLY);
    UNIT_EQ_INT(metrics_attach(bad), -1);
    close(bad);
    close(fd);
    UNIT_DONE();
}
