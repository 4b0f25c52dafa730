/* lmtp-testtool.c: a small store tool for the LMTP end-to-end tests (test/test_lmtp*.py),
 * for what the `coffer` command cannot do yet: create a mailbox with an ACL, set a quota,
 * list a mailbox's messages and print one. Not installed.
 *
 *   lmtp-testtool CONF create NAME [ACL]       ACL as "ident=rights,ident=rights"
 *   lmtp-testtool CONF quota ROOT KIB MSGS     limits (-1: none)
 *   lmtp-testtool CONF usage ROOT              "BYTES MESSAGES"
 *   lmtp-testtool CONF list NAME               "UID SIZE FLAGS" per message, in uid order
 *   lmtp-testtool CONF cat NAME UID            the message bytes
 *   lmtp-testtool CONF inode NAME UID          the message file's inode number
 *   lmtp-testtool CONF panic -                 mark the database environment as needing
 *                                              recovery (kv_env_panic), for crash tests
 *
 * As root with `user` configured it acts as that user, like coffer(8). */
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/priv.h"
#include "core/xmalloc.h"
#include "store/kv.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: lmtp-testtool CONF create|quota|usage|list|cat|inode ...\n");
        return 2;
    }
    struct config *cfg = NULL;
    struct buf err = BUF_INIT;
    if (config_load(argv[1], &cfg, &err) < 0) {
        fprintf(stderr, "%s\n", buf_cstr(&err));
        return 2;
    }
    buf_fini(&err);
    log_init("lmtp-testtool", 1, LOG_LVL_WARNING);
    if (priv_drop(config_str(cfg, CFG_USER), NULL) < 0) return 2;
    if (!strcmp(argv[2], "panic")) {
        struct kv_env *env = NULL;
        char *dir = xasprintf("%s/db", config_str(cfg, CFG_CONFIGDIR));
        int pr = kv_env_open(dir, &env);
        if (!pr) pr = kv_env_panic(env);
        free(dir);
        kv_env_close(&env);   /* its handles go; the environment stays marked */
        return pr ? 1 : 0;
    }
    struct store *st = NULL;
    if (store_open(cfg, &st) < 0) return 1;
    const char *op = argv[2], *name = argv[3];
    int r = 0;
    if (!strcmp(op, "create")) {
        struct buf acl = BUF_INIT;
        if (argc > 4) {
            char *spec = xstrdup(argv[4]);
            for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
                char *eq = strchr(tok, '=');
                if (!eq) continue;
                *eq = '\0';
                buf_printf(&acl, "%s\t%s\t", tok, eq + 1);
            }
            free(spec);
        }
        r = store_create(st, name, NULL, argc > 4 ? buf_cstr(&acl) : NULL, NULL,
                         STORE_CREATE_PARENTS);
        buf_fini(&acl);
    } else if (!strcmp(op, "quota") && argc == 6) {
        r = store_quota_set(st, name, atoll(argv[4]), atoll(argv[5]), NULL);
    } else if (!strcmp(op, "usage")) {
        struct quota q;
        r = store_quota_get(st, name, &q);
        if (r == 1) printf("%lld %lld\n", (long long)q.used_bytes, (long long)q.used_messages);
        r = r == 1 ? 0 : CF_E_NOTFOUND;
    } else if (!strcmp(op, "list") || !strcmp(op, "cat") || !strcmp(op, "inode")) {
        struct mailbox *mb = NULL;
        r = store_open_mailbox(st, name, NULL, &mb);
        if (r == 0 && !strcmp(op, "list")) {
            for (uint32_t i = 1; i <= mailbox_count(mb); i++) {
                struct index_record rec;
                if (mailbox_record(mb, mailbox_uid(mb, i), &rec) == 1)
                    printf("%u %llu %u\n", rec.uid, (unsigned long long)rec.size, rec.flags);
            }
        } else if (r == 0 && argc > 4 && !strcmp(op, "cat")) {
            const char *p;
            size_t len;
            r = mailbox_message_map(mb, (uint32_t)atol(argv[4]), &p, &len);
            if (r == 0) {
                fwrite(p, 1, len, stdout);
                mailbox_message_unmap(p, len);
            }
        } else if (r == 0 && argc > 4) {
            char *path = mailbox_message_path(mb, (uint32_t)atol(argv[4]));
            struct stat sb;
            if (stat(path, &sb) == 0) printf("%llu\n", (unsigned long long)sb.st_ino);
            else r = CF_E_NOTFOUND;
            free(path);
        }
        if (mb) mailbox_close(&mb);
    } else {
        fprintf(stderr, "lmtp-testtool: bad arguments\n");
        r = CF_E_PARSE;
    }
    if (r < 0) fprintf(stderr, "lmtp-testtool %s %s: %s\n", op, name, cf_strerror(r));
    store_close(&st);
    config_free(&cfg);
    return r < 0 ? 1 : 0;
}
