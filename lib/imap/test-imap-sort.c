/* test-imap-sort.c: unit tests of the SORT/THREAD keys (imap-sort.h: base subjects from the
 * rules of RFC 5256 section 2.1, i;unicode-casemap of RFC 5051, msg-ids) and of the threading
 * algorithms (imap-thread.h, RFC 5256 section 3). */
#include "core/unit.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include "imap/imap-sort.h"
#include "imap/imap-thread.h"
#include <stdlib.h>

/* RFC 5256 section 2.1, one row per rule (and the combinations that make it subtle) */
static const struct { const char *in, *base; int reply; } subjects[] = {
    { "hello", "hello", 0 },
    { "", "", 0 },
    { "  hello \t  world\r\n\t ", "hello world", 0 },      /* (1) white space */
    { "Re: hello", "hello", 1 },                           /* (3) subj-refwd */
    { "RE: Re: re:hello", "hello", 1 },
    { "Fwd: hello", "hello", 1 },
    { "FW: hello", "hello", 1 },
    { "fw:hello", "hello", 1 },
    { "Re[2]: hello", "hello", 1 },                        /* refwd's own blob */
    { "Re [2]: hello", "hello", 1 },
    { "Re : hello", "hello", 1 },                          /* *WSP before ":" */
    { "[list] Re: hello", "hello", 1 },                    /* *subj-blob subj-refwd */
    { "[a][b] Re: x", "x", 1 },
    { "[list] hello", "hello", 0 },                        /* (4) a lone blob */
    { "[list]", "[list]", 0 },                             /* ... not when nothing is left */
    { "[list]   ", "[list]", 0 },
    { "Re: [list] hello", "hello", 1 },                    /* (5) (3) and (4) repeated */
    { "hello (fwd)", "hello", 1 },                         /* (2) subj-trailer */
    { "hello (FWD) (fwd)  ", "hello", 1 },
    { "hello(fwd)", "hello", 1 },
    { "[fwd: hello]", "hello", 1 },                        /* (6) subj-fwd-hdr/trl */
    { "[Fwd: Re: hello] (fwd)", "hello", 1 },
    { "Re: [fwd: hello]", "hello", 1 },
    { "[fwd: [fwd: hello]]", "hello", 1 },
    { "[fwd:]", "", 1 },
    { "Reply: hello", "Reply: hello", 0 },                 /* not a subj-refwd */
    { "Re hello", "Re hello", 0 },
    { "Rehash: x", "Rehash: x", 0 },
    { "Fwdd: x", "Fwdd: x", 0 },
    { "Re: ", "", 1 },
    { "[caf\xc3\xa9] x", "[caf\xc3\xa9] x", 0 },           /* BLOBCHAR is ASCII */
    { "=?UTF-8?Q?Re:_caf=C3=A9?=", "caf\xc3\xa9", 1 },     /* (1) RFC 2047 first */
    { "=?ISO-8859-1?Q?Fwd:_=E9t=E9?= (fwd)", "\xc3\xa9t\xc3\xa9", 1 },
    { "Re: =?UTF-8?B?W2xpc3RdIGhp?=", "hi", 1 },            /* "[list] hi" encoded */
};

static void test_base_subject(void)
{
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++) {
        int reply = -1;
        buf_reset(&out);
        imap_base_subject(subjects[i].in, strlen(subjects[i].in), &out, &reply);
        if (strcmp(buf_cstr(&out), subjects[i].base) || reply != subjects[i].reply)
            fprintf(stderr, "subject \"%s\": \"%s\" reply %d\n", subjects[i].in,
                    buf_cstr(&out), reply);
        UNIT_EQ_STR(buf_cstr(&out), subjects[i].base);
        UNIT_EQ_INT(reply, subjects[i].reply);
    }
    buf_fini(&out);
}

static const struct { const char *in, *out; } casemaps[] = {
    { "abc XYZ 09", "ABC XYZ 09" },                         /* i;ascii-casemap on ASCII */
    { "\xc3\xa9", "E\xcc\x81" },                            /* é: É, decomposed */
    { "\xc3\x89", "E\xcc\x81" },                            /* É */
    { "\xc3\x9f", "\xc3\x9f" },                             /* ß: no simple titlecase */
    { "\xef\xac\x81", "fi" },                               /* U+FB01 ligature */
    { "\xea\xb0\x80", "\xe1\x84\x80\xe1\x85\xa1" },         /* Hangul syllable */
    { "\xc7\x86", "Dz\xcc\x8c" },                          /* U+01C6 dž: ǅ, decomposed */
    { "\xce\xb1\xce\x91", "\xce\x91\xce\x91" },             /* Greek alpha */
    { "\xff\xc3", "\xff\xc3" },                             /* not UTF-8: as is */
    { "\xd0\xb6", "\xd0\x96" },                             /* Cyrillic zhe */
};

static void test_casemap(void)
{
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < sizeof casemaps / sizeof casemaps[0]; i++) {
        buf_reset(&out);
        imap_casemap(casemaps[i].in, strlen(casemaps[i].in), &out);
        UNIT_EQ_STR(buf_cstr(&out), casemaps[i].out);
    }
    buf_fini(&out);
}

static void test_msgid(void)
{
    const char *v = " (comment <x@y>) <a@b> junk <no spaces@x> <noat> <c@d>", *p = v, *id;
    size_t len;
    /* the comment is not parsed as such: an id inside it counts, as most servers do */
    UNIT_EQ_INT(imap_msgid_next(&p, v + strlen(v), &id, &len), 1);
    UNIT_CHECK(len == 3 && !memcmp(id, "x@y", 3));
    UNIT_EQ_INT(imap_msgid_next(&p, v + strlen(v), &id, &len), 1);
    UNIT_CHECK(len == 3 && !memcmp(id, "a@b", 3));
    UNIT_EQ_INT(imap_msgid_next(&p, v + strlen(v), &id, &len), 1);
    UNIT_CHECK(len == 3 && !memcmp(id, "c@d", 3));
    UNIT_EQ_INT(imap_msgid_next(&p, v + strlen(v), &id, &len), 0);
    const char *w = "<<a@b>", *q = w;
    UNIT_EQ_INT(imap_msgid_next(&q, w + strlen(w), &id, &len), 1);
    UNIT_CHECK(len == 3 && !memcmp(id, "a@b", 3));
}

/* A message for the thread tests: subject (raw), date, ids. */
struct tm_spec { const char *subject; int64_t date; const char *id, *refs, *irt; };

static char *thread_run(const struct tm_spec *spec, size_t n, int references)
{
    struct thread_msg *m = xzmalloc((n ? n : 1) * sizeof(*m));
    struct buf *subj = xzmalloc((n ? n : 1) * sizeof(*subj));
    struct buf tmp = BUF_INIT, out = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_reset(&tmp);
        imap_base_subject(spec[i].subject, strlen(spec[i].subject), &tmp, &m[i].reply);
        imap_casemap(buf_cstr(&tmp), tmp.len, &subj[i]);
        m[i].subject = buf_cstr(&subj[i]);
        m[i].subject_len = subj[i].len;
        m[i].num = m[i].seq = (uint32_t)i + 1;
        m[i].date = spec[i].date;
        if (spec[i].id) { m[i].msgid = spec[i].id; m[i].msgid_len = strlen(spec[i].id); }
        if (spec[i].refs) { m[i].refs = spec[i].refs; m[i].refs_len = strlen(spec[i].refs); }
        if (spec[i].irt) { m[i].irt = spec[i].irt; m[i].irt_len = strlen(spec[i].irt); }
    }
    if (references) thread_references(m, n, &out);
    else thread_orderedsubject(m, n, &out);
    for (size_t i = 0; i < n; i++) buf_fini(&subj[i]);
    free(subj);
    free(m);
    buf_fini(&tmp);
    buf_cstr(&out);
    return buf_release(&out);
}

#define THREAD_EQ(spec, refs, expect) do { \
    char *got_ = thread_run(spec, sizeof(spec) / sizeof(spec[0]), refs); \
    UNIT_EQ_STR(got_, expect); \
    free(got_); \
} while (0)

static void test_threads(void)
{
    static const struct tm_spec chain[] = {
        { "a", 1, "<1@x>", NULL, NULL },
        { "Re: a", 2, "<2@x>", "<1@x>", NULL },
        { "Re: a", 3, "<3@x>", "<1@x> <2@x>", NULL },
    };
    THREAD_EQ(chain, 1, "(1 2 3)");
    static const struct tm_spec sib[] = {
        { "a", 1, "<1@x>", NULL, NULL },
        { "Re: a", 3, "<2@x>", "<1@x>", NULL },
        { "Re: a", 2, "<3@x>", NULL, "<1@x>" },            /* In-Reply-To only */
    };
    THREAD_EQ(sib, 1, "(1 (3)(2))");
    static const struct tm_spec dummy[] = {
        { "a", 1, "<1@x>", "<0@x>", NULL },
        { "b", 2, "<2@x>", "<0@x>", NULL },
        { "c", 0, "<3@x>", NULL, NULL },
    };
    THREAD_EQ(dummy, 1, "(3)((1)(2))");
    static const struct tm_spec loop[] = {
        { "a", 1, "<1@x>", "<2@x>", NULL },
        { "b", 1, "<2@x>", "<1@x>", NULL },
        { "c", 1, "<3@x>", "<3@x>", NULL },                /* references itself */
    };
    THREAD_EQ(loop, 1, "(2 1)(3)");
    static const struct tm_spec subj[] = {
        { "hello", 1, "<1@x>", NULL, NULL },
        { "Re: hello", 2, "<2@x>", NULL, NULL },           /* step 6: a reply joins */
        { "other", 3, "<3@x>", NULL, NULL },
        { "other", 4, "<4@x>", NULL, NULL },               /* two originals: a dummy */
        { "", 5, NULL, NULL, NULL },                       /* empty subjects never merge */
        { "", 6, NULL, NULL, NULL },
    };
    THREAD_EQ(subj, 1, "(1 2)((3)(4))(5)(6)");
    static const struct tm_spec dup[] = {
        { "a", 1, "<1@x>", NULL, NULL },
        { "b", 2, "<1@x>", NULL, NULL },                   /* duplicate id: on its own */
        { "c", 3, "<3@x>", "<1@x>", NULL },
    };
    THREAD_EQ(dup, 1, "(1 3)(2)");
    static const struct tm_spec dates[] = {
        { "x", 100, NULL, NULL, NULL },
        { "y", 50, NULL, NULL, NULL },
        { "z", 50, NULL, NULL, NULL },                     /* same date: mailbox order */
    };
    THREAD_EQ(dates, 1, "(2)(3)(1)");
    static const struct tm_spec os[] = {
        { "a", 3, NULL, NULL, NULL },
        { "b", 1, NULL, NULL, NULL },
        { "Re: a", 2, NULL, NULL, NULL },
        { "A", 4, NULL, NULL, NULL },
        { "c", 0, NULL, NULL, NULL },
        { "Fwd: b", 5, NULL, NULL, NULL },
    };
    THREAD_EQ(os, 0, "(5)(2 6)(3 (1)(4))");
    static const struct tm_spec none[1] = { { "a", 0, NULL, NULL, NULL } };
    char *got = thread_run(none, 0, 1);
    UNIT_EQ_STR(got, "");
    free(got);

    /* a 20,000-deep reply chain and a 20,000-wide thread: no recursion, no quadratic walk */
    enum { DEEP = 20000 };
    struct tm_spec *deep = xzmalloc(DEEP * sizeof(*deep));
    char (*ids)[32] = xzmalloc(DEEP * sizeof(*ids));
    for (size_t i = 0; i < DEEP; i++) {
        snprintf(ids[i], sizeof ids[i], "<%zu@x>", i);
        deep[i].subject = "s";
        deep[i].date = (int64_t)i;
        deep[i].id = ids[i];
        deep[i].refs = i ? ids[i - 1] : NULL;
    }
    got = thread_run(deep, DEEP, 1);
    UNIT_CHECK(!strncmp(got, "(1 2 3 ", 7) && strstr(got, " 19999 20000)") != NULL);
    free(got);
    for (size_t i = 1; i < DEEP; i++) deep[i].refs = ids[0];
    got = thread_run(deep, DEEP, 1);
    UNIT_CHECK(!strncmp(got, "(1 (2)(3)", 9) && strstr(got, "(20000))") != NULL);
    free(got);
    /* 10,000 subjects with two originals each: one dummy per subject, in linear time */
    for (size_t i = 0; i < DEEP; i++) {
        snprintf(ids[i], sizeof ids[i], "s%zu", i / 2);
        deep[i].subject = ids[i];
        deep[i].id = NULL;
        deep[i].refs = NULL;
    }
    got = thread_run(deep, DEEP, 1);
    UNIT_CHECK(!strncmp(got, "((1)(2))((3)(4))", 16) && strstr(got, "((19999)(20000))") != NULL);
    free(got);
    free(ids);
    free(deep);
}

int main(void)
{
    test_base_subject();
    test_casemap();
    test_msgid();
    test_threads();
    UNIT_DONE();
}
