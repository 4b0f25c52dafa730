/* test-imap-hibstate.c: an IDLE session's state as text (imap-hibstate.h): a full state and an
 * authenticated one survive format and parse unchanged, and every kind of damage is refused
 * with the state left empty. */
#include "core/unit.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "imap/imap-hibstate.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(struct imap_hibstate *s, int with_mailbox)
{
    imap_hibstate_init(s);
    snprintf(s->session, sizeof s->session, "abc123def456");
    s->user = xstrdup("fred");
    s->authid = xstrdup("admin");
    s->is_admin = 1;
    s->enabled = 0x3;
    s->tag = xstrdup("A0042");
    s->deadline_ms = 1234567890123LL;
    s->started_ms = 99;
    if (!with_mailbox) return;
    s->mailbox = xstrdup("user/fred/Sent Items");
    snprintf(s->uniqueid, sizeof s->uniqueid, "0123456789abcdef0123456789abcdef");
    s->partition_path = xstrdup("/var/spool/coffer/p1");
    s->uidvalidity = 4000000000u;
    s->readonly = 1;
    s->no_recent = 0;
    snprintf(s->rights, sizeof s->rights, "lrswipkxtecda");
    imap_seqset_add(&s->uids, 1, 5);
    imap_seqset_add(&s->uids, 9, 9);
    imap_seqset_add(&s->uids, 100, 4000);
    s->maxuid = 4002;
    s->modseq = 77777;
    imap_seqset_add(&s->recent, 3999, 4000);
    s->recent_from = 3999;
    s->told_exists = 3907;
    s->told_recent = 2;
    s->told_keywords = 4;
    imap_seqset_add(&s->saved, 2, 3);
}

static void test_roundtrip(void)
{
    for (int mb = 0; mb <= 1; mb++) {
        struct imap_hibstate a, b;
        fill(&a, mb);
        imap_hibstate_init(&b);
        struct buf t = BUF_INIT, t2 = BUF_INIT;
        UNIT_EQ_INT(imap_hibstate_format(&a, &t), 0);
        const char *err = NULL;
        UNIT_EQ_INT(imap_hibstate_parse(&b, t.s, t.len, &err), 0);
        UNIT_EQ_INT(imap_hibstate_format(&b, &t2), 0);
        UNIT_EQ_STR(buf_cstr(&t), buf_cstr(&t2));
        UNIT_EQ_STR(b.user, "fred");
        UNIT_EQ_STR(b.tag, "A0042");
        UNIT_CHECK(b.deadline_ms == 1234567890123LL);
        if (mb) {
            UNIT_EQ_STR(b.mailbox, "user/fred/Sent Items");
            UNIT_CHECK(imap_seqset_size(&b.uids) == 5 + 1 + 3901);
            UNIT_CHECK(b.uidvalidity == 4000000000u && b.modseq == 77777 && b.maxuid == 4002);
            UNIT_EQ_STR(b.rights, "lrswipkxtecda");
        } else {
            UNIT_CHECK(b.mailbox == NULL);
        }
        char v[64];
        UNIT_EQ_INT(imap_hibstate_field(t.s, t.len, "user", v, sizeof v), 1);
        UNIT_EQ_STR(v, "fred");
        UNIT_EQ_INT(imap_hibstate_field(t.s, t.len, "nosuch", v, sizeof v), 0);
        imap_hibstate_fini(&a);
        imap_hibstate_fini(&b);
        buf_fini(&t);
        buf_fini(&t2);
    }
}

static void test_format_refuses(void)
{
    struct imap_hibstate a;
    struct buf t = BUF_INIT;
    fill(&a, 1);
    free(a.user);
    a.user = xstrdup("fr\r\ned");
    UNIT_EQ_INT(imap_hibstate_format(&a, &t), CF_E_PARSE);
    imap_hibstate_fini(&a);
    fill(&a, 1);
    a.uids.star = 1;
    UNIT_EQ_INT(imap_hibstate_format(&a, &t), CF_E_PARSE);
    imap_hibstate_fini(&a);
    buf_fini(&t);
}

/* replace: the valid full text with the line of key changed to "key value" (value NULL: the
 * line removed), or with extra appended */
static char *variant(const char *key, const char *value, const char *extra)
{
    struct imap_hibstate a;
    struct buf t = BUF_INIT, out = BUF_INIT;
    fill(&a, 1);
    imap_hibstate_format(&a, &t);
    imap_hibstate_fini(&a);
    const char *p = buf_cstr(&t);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t kl = strlen(key);
        if (key && !strncmp(p, key, kl) && p[kl] == ' ') {
            if (value) buf_printf(&out, "%s %s\n", key, value);
        } else {
            buf_append(&out, p, (size_t)(nl - p + 1));
        }
        p = nl + 1;
    }
    if (extra) buf_appends(&out, extra);
    buf_fini(&t);
    return buf_release(&out);
}

static void test_parse_refuses(void)
{
    static const struct { const char *key, *value, *extra; } bad[] = {
        { "v", "2", NULL },                     /* another version */
        { "v", NULL, NULL },                    /* no version first */
        { "user", NULL, NULL },                 /* a required field missing */
        { "user", "", NULL },                   /* empty user */
        { "tag", "a b", NULL },                 /* a space in the tag */
        { "admin", "2", NULL },                 /* a flag not 0 or 1 */
        { "uidvalidity", "4294967296", NULL },  /* out of range */
        { "modseq", "-1", NULL },
        { "modseq", "007", NULL },              /* leading zeros */
        { "uids", "1:*", NULL },                /* a star */
        { "uids", "$", NULL },                  /* the saved result */
        { "uids", "1:5000", NULL },             /* a uid above maxuid */
        { "saved", "x", NULL },
        { "partition", "relative/path", NULL },
        { "rights", "LR", NULL },
        { "uniqueid", NULL, NULL },             /* the mailbox part incomplete */
        { "user", "fred", "user joe\n" },       /* a key twice */
        { "user", "fred", "colour blue\n" },    /* an unknown key */
        { "user", "fred", "admin 1" },          /* the last line without its newline */
        { "user", "fred", "novalue\n" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *text = variant(bad[i].key, bad[i].value, bad[i].extra);
        struct imap_hibstate s;
        imap_hibstate_init(&s);
        const char *err = NULL;
        int r = imap_hibstate_parse(&s, text, strlen(text), &err);
        if (r != CF_E_PARSE) fprintf(stderr, "case %zu accepted\n", i);
        UNIT_EQ_INT(r, CF_E_PARSE);
        UNIT_CHECK(err != NULL);
        UNIT_CHECK(s.user == NULL && s.mailbox == NULL && s.uids.count == 0);
        imap_hibstate_fini(&s);
        free(text);
    }
    struct imap_hibstate s;
    imap_hibstate_init(&s);
    const char *err = NULL;
    UNIT_EQ_INT(imap_hibstate_parse(&s, "", 0, &err), CF_E_PARSE);
    UNIT_EQ_INT(imap_hibstate_parse(&s, "v 1\0\n", 5, &err), CF_E_PARSE);
    imap_hibstate_fini(&s);
}

int main(void)
{
    test_roundtrip();
    test_format_refuses();
    test_parse_refuses();
    UNIT_DONE();
}
