/* pop3-testfill.c: test helper (not installed): appends messages to a user's INBOX through
 * lib/store, for the POP3 tests and benchmarks before and besides LMTP delivery.
 *
 * Usage: pop3-testfill -C coffer.conf [-F] USER FILE...      one message per file, bytes as is
 *        pop3-testfill -C coffer.conf [-F] -n COUNT -s SIZE USER   COUNT made-up messages of
 *                                                               about SIZE bytes (CRLF lines)
 *        pop3-testfill -C coffer.conf -l USER      list the INBOX: "uid size flags" per line
 *                                                 (flags: S seen, D deleted, or -)
 * -F skips fsync (fast fills). Prints the uid of each message, one per line. As root with
 * `user` configured it first becomes that user, so the files belong to the server. */
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/priv.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* make_message: a plain message of about size bytes, numbered i, with CRLF lines. */
static void make_message(struct buf *b, long i, long size)
{
    buf_reset(b);
    buf_printf(b, "From: filler@coffer.test\r\nTo: user@coffer.test\r\n"
                  "Subject: fill message %ld\r\nMessage-ID: <fill%ld@coffer.test>\r\n\r\n", i, i);
    while ((long)b->len < size) {
        buf_appends(b, "The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\r\n");
    }
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    long count = -1, size = 1000;
    int nofsync = 0, list = 0, opt;
    while ((opt = getopt(argc, argv, "C:Fln:s:")) != -1) {
        switch (opt) {
        case 'l': list = 1; break;
        case 'C': conf = optarg; break;
        case 'F': nofsync = 1; break;
        case 'n': count = atol(optarg); break;
        case 's': size = atol(optarg); break;
        default: goto usage;
        }
    }
    if (!conf || optind >= argc || (count < 0 && !list && optind + 1 >= argc)) goto usage;
    const char *user = argv[optind];

    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    if (config_load(conf, &cfg, &err)) {
        fprintf(stderr, "pop3-testfill: %s\n", buf_cstr(&err));
        return 1;
    }
    buf_fini(&err);
    if (priv_drop(config_str(cfg, CFG_USER), NULL)) {
        fprintf(stderr, "pop3-testfill: cannot become %s\n", config_str(cfg, CFG_USER));
        return 1;
    }
    log_init("pop3-testfill", 1, LOG_LVL_WARNING);

    struct store *st = NULL;
    struct mailbox *mb = NULL;
    struct buf name = BUF_INIT, msg = BUF_INIT;
    int rc = 1, r;
    if ((r = store_open(cfg, &st)) || (r = store_ensure_inbox(st, user)) < 0) goto fail;
    mboxname_user_inbox(user, &name);
    if ((r = store_open_mailbox(st, buf_cstr(&name), NULL, &mb))) goto fail;
    mailbox_set_nofsync(mb, nofsync);
    if (list) {
        for (uint32_t i = 1; i <= mailbox_count(mb); i++) {
            struct index_record rec;
            if ((r = mailbox_record(mb, mailbox_uid(mb, i), &rec)) < 0) goto fail;
            if (r == 0 || (rec.flags & FLAG_EXPUNGED)) continue;
            printf("%u %llu %s%s%s\n", rec.uid, (unsigned long long)rec.size,
                   rec.flags & FLAG_SEEN ? "S" : "", rec.flags & FLAG_DELETED ? "D" : "",
                   rec.flags & (FLAG_SEEN | FLAG_DELETED) ? "" : "-");
        }
    } else if (count >= 0) {
        for (long i = 1; i <= count; i++) {
            make_message(&msg, i, size);
            struct mailbox_msg m = { .data = msg.s, .len = msg.len, .fd = -1 };
            if ((r = mailbox_append(mb, &m, 1, NULL))) goto fail;
            printf("%u\n", m.uid);
        }
    } else {
        for (int i = optind + 1; i < argc; i++) {
            char *data = NULL;
            size_t len = 0;
            if ((r = file_read_all(argv[i], (size_t)1 << 30, &data, &len))) {
                fprintf(stderr, "pop3-testfill: cannot read %s\n", argv[i]);
                goto fail;
            }
            struct mailbox_msg m = { .data = data ? data : "", .len = len, .fd = -1 };
            r = mailbox_append(mb, &m, 1, NULL);
            free(data);
            if (r) goto fail;
            printf("%u\n", m.uid);
        }
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "pop3-testfill: %s\n", cf_strerror(r));
    mailbox_close(&mb);
    store_close(&st);
    buf_fini(&name);
    buf_fini(&msg);
    config_free(&cfg);
    return rc;

usage:
    fprintf(stderr, "usage: pop3-testfill -C conf [-F] USER FILE...\n"
                    "       pop3-testfill -C conf -l USER\n"
                    "       pop3-testfill -C conf [-F] -n COUNT -s SIZE USER\n");
    return 2;
}
