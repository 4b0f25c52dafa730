/* test-mboxname.c: table-driven tests of mailbox name rules, modified UTF-7, namespaces and
 * LIST matching. */
#include "core/error.h"
#include "core/unit.h"
#include "store/mboxname.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_valid(void)
{
    static const struct { const char *name; int ok; } t[] = {
        { "user/fred", 1 },
        { "user/fred/Sent", 1 },
        { "shared", 1 },
        { "shared/lists/coffer-dev", 1 },
        { "user/fred/Caf\xc3\xa9 & bar", 1 },
        { "user/fred/\xe2\x98\xba", 1 },
        { "user/fred/\xf0\x9f\x93\xa7", 1 },
        { "a b/c.d/e-f/[x]", 1 },
        { "", 0 },
        { "/", 0 },
        { "/a", 0 },
        { "a/", 0 },
        { "a//b", 0 },
        { "user", 0 },
        { "user/", 0 },
        { "a/./b", 0 },
        { "a/../b", 0 },
        { "..", 0 },
        { "a/...", 1 },
        { "a\tb", 0 },
        { "a\nb", 0 },
        { "a\x7f", 0 },
        { "a\xc2\x85", 0 },              /* C1 control NEL */
        { "a%b", 0 },
        { "a*b", 0 },
        { "a\xff", 0 },                  /* not UTF-8 */
        { "a\xc3", 0 },                  /* truncated sequence */
        { "a\xc0\xaf", 0 },              /* overlong '/' */
        { "a\xed\xa0\x80", 0 },          /* surrogate */
        { "a\xf4\x90\x80\x80", 0 },      /* past U+10FFFF */
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        int r = mboxname_valid(t[i].name);
        if ((r == 0) != t[i].ok) fprintf(stderr, "valid case %zu: \"%s\"\n", i, t[i].name);
        UNIT_EQ_INT(r == 0, t[i].ok);
        if (!t[i].ok) UNIT_EQ_INT(r, CF_E_PARSE);
    }
    /* lengths and depth */
    char name[1200];
    memset(name, 'x', sizeof name);
    name[255] = '\0';
    UNIT_EQ_INT(mboxname_valid(name), 0);
    name[255] = 'x';
    name[256] = '\0';
    UNIT_EQ_INT(mboxname_valid(name), CF_E_PARSE);
    for (int i = 0; i < 500; i++) name[i] = (i % 100 == 50) ? '/' : 'y';
    name[500] = '\0';
    UNIT_EQ_INT(mboxname_valid(name), 0);
    name[500] = 'y';
    name[501] = '\0';
    UNIT_EQ_INT(mboxname_valid(name), CF_E_PARSE);
    /* 64 components fine, 65 not */
    size_t n = 0;
    for (int i = 0; i < 64; i++) { name[n++] = 'c'; name[n++] = '/'; }
    name[n - 1] = '\0';
    UNIT_EQ_INT(mboxname_valid(name), 0);
    name[n - 1] = '/';
    name[n] = 'c';
    name[n + 1] = '\0';
    UNIT_EQ_INT(mboxname_valid(name), CF_E_PARSE);

    UNIT_EQ_INT(mboxname_valid_user("fred"), 0);
    UNIT_EQ_INT(mboxname_valid_user("fred@example.com"), 0);
    UNIT_EQ_INT(mboxname_valid_user("fr/ed"), CF_E_PARSE);
    UNIT_EQ_INT(mboxname_valid_user(""), CF_E_PARSE);
    UNIT_EQ_INT(mboxname_valid_user(".."), CF_E_PARSE);
    UNIT_EQ_INT(mboxname_valid_user("a*"), CF_E_PARSE);
}

static void test_utf7(void)
{
    /* both directions: canonical pairs */
    static const struct { const char *utf7, *utf8; } both[] = {
        { "INBOX", "INBOX" },
        { "", "" },
        { "&-", "&" },
        { "a&-b&-", "a&b&" },
        { "&Jjo-", "\xe2\x98\xba" },                                      /* U+263A */
        { "&Jjo-!", "\xe2\x98\xba!" },
        { "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
          "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e" },  /* RFC 3501 */
        { "Caf&AOk-", "Caf\xc3\xa9" },
        { "&AOkA6QDp-", "\xc3\xa9\xc3\xa9\xc3\xa9" },
        { "&2D3c5w-", "\xf0\x9f\x93\xa7" },                               /* surrogate pair */
        { "&AAk-", "\t" },
        { "&AH8-", "\x7f" },
        { "&AOk-&-&AOk-", "\xc3\xa9&\xc3\xa9" },
        { "a-b+c,d", "a-b+c,d" },
    };
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < sizeof both / sizeof *both; i++) {
        buf_reset(&out);
        UNIT_EQ_INT(mboxname_utf7_to_utf8(both[i].utf7, &out), 0);
        UNIT_EQ_STR(buf_cstr(&out), both[i].utf8);
        buf_reset(&out);
        UNIT_EQ_INT(mboxname_utf8_to_utf7(both[i].utf8, &out), 0);
        UNIT_EQ_STR(buf_cstr(&out), both[i].utf7);
    }
    /* malformed modified UTF-7 is refused */
    static const char *bad[] = {
        "&",            /* unterminated */
        "a&Jjo",        /* unterminated */
        "&Jjo",         /* unterminated */
        "&Jj-",         /* too few bits for one character */
        "&Jjp-",        /* nonzero leftover bits */
        "&Jjo=-",       /* padding is not used */
        "&Jj/-",        /* '/' is not in the modified alphabet */
        "&Jjo-&Jjo-",   /* adjacent shifts must be merged */
        "&AGE-",        /* 'a' must be written directly */
        "&ACY-",        /* '&' must be written as &- */
        "&AAA-",        /* NUL */
        "&2D0-",        /* lone high surrogate */
        "&3KcA6Q-",     /* lone low surrogate */
        "&2D3YPQ-",     /* high surrogate after high surrogate */
        "&A-",          /* six bits, no character */
        "caf\xc3\xa9",  /* 8-bit bytes outside a shift */
        "tab\there",    /* control characters */
        "&Jj o-",       /* space inside a shift */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        buf_reset(&out);
        int r = mboxname_utf7_to_utf8(bad[i], &out);
        if (r != CF_E_PARSE) fprintf(stderr, "bad utf7 case %zu accepted: %s\n", i, bad[i]);
        UNIT_EQ_INT(r, CF_E_PARSE);
    }
    /* invalid UTF-8 cannot be encoded */
    buf_reset(&out);
    UNIT_EQ_INT(mboxname_utf8_to_utf7("a\xff", &out), CF_E_PARSE);
    buf_reset(&out);
    UNIT_EQ_INT(mboxname_utf8_to_utf7("\xed\xa0\x80", &out), CF_E_PARSE);

    /* round trip of many code points, one and several in a row */
    struct buf u8 = BUF_INIT, back = BUF_INIT;
    static const unsigned cps[] = { 0x01, 0x1f, 0x7f, 0x80, 0xff, 0x100, 0x7ff, 0x800, 0xfffd,
                                    0xffff, 0x10000, 0x1f600, 0x10ffff };
    for (size_t i = 0; i < sizeof cps / sizeof *cps; i++) {
        for (int rep = 1; rep <= 4; rep++) {
            buf_reset(&u8);
            buf_appends(&u8, "x");
            for (int k = 0; k < rep; k++) {
                unsigned cp = cps[(i + (size_t)k) % (sizeof cps / sizeof *cps)];
                char b[5] = { 0 };
                if (cp < 0x80) b[0] = (char)cp;
                else if (cp < 0x800) { b[0] = (char)(0xc0 | cp >> 6); b[1] = (char)(0x80 | (cp & 0x3f)); }
                else if (cp < 0x10000) { b[0] = (char)(0xe0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); b[2] = (char)(0x80 | (cp & 0x3f)); }
                else { b[0] = (char)(0xf0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)); b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); b[3] = (char)(0x80 | (cp & 0x3f)); }
                buf_appends(&u8, b);
            }
            buf_appends(&u8, "y");
            buf_reset(&out);
            buf_reset(&back);
            UNIT_EQ_INT(mboxname_utf8_to_utf7(buf_cstr(&u8), &out), 0);
            UNIT_EQ_INT(mboxname_utf7_to_utf8(buf_cstr(&out), &back), 0);
            UNIT_EQ_STR(buf_cstr(&back), buf_cstr(&u8));
        }
    }
    buf_fini(&u8);
    buf_fini(&back);
    buf_fini(&out);
}

static void test_namespaces(void)
{
    static const struct { const char *user, *ext, *internal; int r; } t[] = {
        { "fred", "INBOX", "user/fred", 0 },
        { "fred", "inbox", "user/fred", 0 },
        { "fred", "InBoX", "user/fred", 0 },
        { "fred", "Sent", "user/fred/Sent", 0 },
        { "fred", "Lists/coffer", "user/fred/Lists/coffer", 0 },
        { "fred", "INBOXes", "user/fred/INBOXes", 0 },
        { "fred", "user/x", "user/fred/user/x", 0 },
        { "fred", "Other Users/joe", "user/joe", 0 },
        { "fred", "Other Users/joe/x", "user/joe/x", 0 },
        { "fred", "Shared Folders/x", "x", 0 },
        { "fred", "Shared Folders/news/a", "news/a", 0 },
        { "fred", "INBOX/Sub", NULL, CF_E_PERM },
        { "fred", "inbox/Sub", NULL, CF_E_PERM },
        { "fred", "Other Users", NULL, CF_E_NOTFOUND },
        { "fred", "Other Users/", NULL, CF_E_NOTFOUND },
        { "fred", "Shared Folders", NULL, CF_E_NOTFOUND },
        { "fred", "Shared Folders/user/joe", NULL, CF_E_PERM },
        { "fred", "Shared Folders/user", NULL, CF_E_PERM },
        { "fred", "Sent/", NULL, CF_E_PARSE },
        { "fred", "a%b", NULL, CF_E_PARSE },
        { "fred", "Other Users/joe//x", NULL, CF_E_PARSE },
        { "fr/ed", "Sent", NULL, CF_E_PARSE },
        { NULL, "user/fred/Sent", "user/fred/Sent", 0 },
        { NULL, "shared", "shared", 0 },
        { NULL, "user", NULL, CF_E_PARSE },
    };
    struct buf out = BUF_INIT;
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        int r = mboxname_from_external(t[i].user, t[i].ext, &out);
        if (r != t[i].r) fprintf(stderr, "namespace case %zu: %s\n", i, t[i].ext);
        UNIT_EQ_INT(r, t[i].r);
        if (t[i].internal) UNIT_EQ_STR(buf_cstr(&out), t[i].internal);
    }
    static const struct { const char *user, *internal, *ext; } back[] = {
        { "fred", "user/fred", "INBOX" },
        { "fred", "user/fred/Sent", "Sent" },
        { "fred", "user/fredrick", "Other Users/fredrick" },
        { "fred", "user/fredrick/x", "Other Users/fredrick/x" },
        { "fred", "user/joe/x", "Other Users/joe/x" },
        { "fred", "news/a", "Shared Folders/news/a" },
        { "fred", "users", "Shared Folders/users" },
        { NULL, "user/fred/Sent", "user/fred/Sent" },
    };
    for (size_t i = 0; i < sizeof back / sizeof *back; i++) {
        UNIT_EQ_INT(mboxname_to_external(back[i].user, back[i].internal, &out), 0);
        UNIT_EQ_STR(buf_cstr(&out), back[i].ext);
        /* and the way back gives the same internal name */
        struct buf again = BUF_INIT;
        UNIT_EQ_INT(mboxname_from_external(back[i].user, back[i].ext, &again), 0);
        UNIT_EQ_STR(buf_cstr(&again), back[i].internal);
        buf_fini(&again);
    }
    UNIT_EQ_INT(mboxname_to_external("fred", "a//b", &out), CF_E_PARSE);

    /* with modified UTF-7 on the wire */
    UNIT_EQ_INT(mboxname_from_imap("fred", "Caf&AOk-", &out), 0);
    UNIT_EQ_STR(buf_cstr(&out), "user/fred/Caf\xc3\xa9");
    UNIT_EQ_INT(mboxname_to_imap("fred", "user/joe/\xe2\x98\xba & co", &out), 0);
    UNIT_EQ_STR(buf_cstr(&out), "Other Users/joe/&Jjo- &- co");
    UNIT_EQ_INT(mboxname_from_imap("fred", "Caf&AOk", &out), CF_E_PARSE);

    /* owner, INBOX, parent, descendant */
    UNIT_EQ_INT(mboxname_owner("user/fred/Sent", &out), 1);
    UNIT_EQ_STR(buf_cstr(&out), "fred");
    UNIT_EQ_INT(mboxname_owner("user/fred", &out), 1);
    UNIT_EQ_STR(buf_cstr(&out), "fred");
    UNIT_EQ_INT(mboxname_owner("news/user/fred", &out), 0);
    UNIT_EQ_STR(buf_cstr(&out), "");
    UNIT_EQ_INT(mboxname_is_inbox("user/fred"), 1);
    UNIT_EQ_INT(mboxname_is_inbox("user/fred/x"), 0);
    UNIT_EQ_INT(mboxname_is_inbox("news"), 0);
    UNIT_EQ_INT(mboxname_parent("user/fred/a/b", &out), 1);
    UNIT_EQ_STR(buf_cstr(&out), "user/fred/a");
    UNIT_EQ_INT(mboxname_parent("user/fred/a", &out), 1);
    UNIT_EQ_STR(buf_cstr(&out), "user/fred");
    UNIT_EQ_INT(mboxname_parent("user/fred", &out), 0);
    UNIT_EQ_INT(mboxname_parent("news", &out), 0);
    UNIT_EQ_INT(mboxname_parent("news/a", &out), 1);
    UNIT_EQ_STR(buf_cstr(&out), "news");
    UNIT_EQ_INT(mboxname_is_descendant("a/b/c", "a/b"), 1);
    UNIT_EQ_INT(mboxname_is_descendant("a/b/c", "a"), 1);
    UNIT_EQ_INT(mboxname_is_descendant("a/bc", "a/b"), 0);
    UNIT_EQ_INT(mboxname_is_descendant("a/b", "a/b"), 0);
    UNIT_EQ_INT(mboxname_is_descendant("a", ""), 0);
    mboxname_user_inbox("joe", &out);
    UNIT_EQ_STR(buf_cstr(&out), "user/joe");
    buf_fini(&out);
}

static void test_match(void)
{
    static const struct { const char *pat, *name; int match; size_t anc; } t[] = {
        { "*", "INBOX", 1, 0 },
        { "*", "a/b/c", 1, 3 },
        { "%", "a", 1, 0 },
        { "%", "a/b", 0, 1 },
        { "%", "a/b/c", 0, 1 },
        { "%/%", "a/b", 1, 0 },
        { "%/%", "a/b/c", 0, 3 },
        { "a/*", "a/b/c", 1, 3 },
        { "a/*", "a", 0, 0 },
        { "a*", "a", 1, 0 },
        { "a*", "ab/c", 1, 2 },
        { "a%", "ab/c", 0, 2 },
        { "a%c", "abc", 1, 0 },
        { "a%c", "ab/c", 0, 0 },
        { "a*c", "ab/c", 1, 0 },
        { "*c", "ab/c", 1, 0 },
        { "%c", "ab/c", 0, 0 },
        { "inbox", "INBOX", 1, 0 },
        { "InBox", "INBOX", 1, 0 },
        { "inbox*", "INBOX", 1, 0 },
        { "inboxes", "INBOXes", 0, 0 },
        { "INBOX", "inbox", 0, 0 },
        { "Other Users/%", "Other Users/joe", 1, 0 },
        { "Other Users/%", "Other Users/joe/x", 0, 15 },
        { "Other Users/%/%", "Other Users/joe/x", 1, 0 },
        { "", "a", 0, 0 },
        { "", "", 1, 0 },
        { "a", "A", 0, 0 },
        { "**%%", "x/y", 1, 1 },
        { "%*%", "x/y", 1, 1 },
        { "Caf\xc3\xa9%", "Caf\xc3\xa9s", 1, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        int m = mboxname_match(t[i].pat, t[i].name);
        size_t a = mboxname_match_ancestor(t[i].pat, t[i].name);
        if (m != t[i].match || a != t[i].anc)
            fprintf(stderr, "match case %zu: \"%s\" \"%s\"\n", i, t[i].pat, t[i].name);
        UNIT_EQ_INT(m, t[i].match);
        UNIT_EQ_INT(a, t[i].anc);
    }
    UNIT_EQ_INT(mboxname_pattern_literal("Other Users/jo%"), 14);
    UNIT_EQ_INT(mboxname_pattern_literal("*"), 0);
    UNIT_EQ_INT(mboxname_pattern_literal("abc"), 3);
    /* a long pattern of stars stays fast (no backtracking blow-up) */
    char pat[400], name[500];
    for (int i = 0; i < 399; i++) pat[i] = (i % 2) ? '*' : 'a';
    pat[399] = '\0';
    memset(name, 'a', 499);
    name[499] = '\0';
    UNIT_EQ_INT(mboxname_match(pat, name), 1);
    name[250] = 'b';
    UNIT_EQ_INT(mboxname_match(pat, name), 1);
    pat[398] = 'c';
    UNIT_EQ_INT(mboxname_match(pat, name), 0);
}

/* ref_match: the plain dynamic-programming definition of LIST matching (what the matcher
 * replaced), to check the bit-parallel one against; anc as mboxname_match_ancestor. */
static int ref_match(const char *pat, const char *name, size_t *anc)
{
    size_t m = strlen(pat), n = strlen(name);
    unsigned char cur[64], nxt[64];
    cur[0] = 1;
    for (size_t j = 1; j <= m; j++) cur[j] = cur[j - 1] && (pat[j - 1] == '*' || pat[j - 1] == '%');
    *anc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '/' && cur[m] && i > 0) *anc = i;
        nxt[0] = 0;
        for (size_t j = 1; j <= m; j++) {
            char p = pat[j - 1];
            if (p == '*') nxt[j] = cur[j] || nxt[j - 1];
            else if (p == '%') nxt[j] = (c != '/' && cur[j]) || nxt[j - 1];
            else nxt[j] = cur[j - 1] && p == c;
        }
        memcpy(cur, nxt, m + 1);
    }
    return cur[m];
}

/* Random patterns and names over a small alphabet against ref_match; then the worst cases
 * for time (review M6): a 1 KiB pattern over a long name, many times. */
static void test_match_random(void)
{
    unsigned seed = 12345;
    int bad = 0;
    for (int t = 0; t < 20000 && bad < 5; t++) {
        char pat[40], name[40];
        size_t pl, nl;
        seed = seed * 1103515245 + 12345;
        pl = (seed >> 16) % 12;
        seed = seed * 1103515245 + 12345;
        nl = (seed >> 16) % 14;
        for (size_t i = 0; i < pl; i++) {
            seed = seed * 1103515245 + 12345;
            pat[i] = "ab/*%a"[(seed >> 16) % 6];
        }
        pat[pl] = '\0';
        for (size_t i = 0; i < nl; i++) {
            seed = seed * 1103515245 + 12345;
            name[i] = "ab/"[(seed >> 16) % 3];
        }
        name[nl] = '\0';
        size_t ra, a;
        int rm = ref_match(pat, name, &ra);
        int mm = mboxname_match(pat, name);
        a = mboxname_match_ancestor(pat, name);
        if (rm != mm || ra != a) {
            fprintf(stderr, "random match: \"%s\" \"%s\": %d/%zu, want %d/%zu\n", pat, name, mm,
                    a, rm, ra);
            bad++;
        }
    }
    UNIT_EQ_INT(bad, 0);

    /* states past one 64-bit word, and a literal match carried across a word boundary */
    char pat[MBOXNAME_PATTERN_MAX + 2], name[501];
    for (int i = 0; i < 200; i++) pat[i] = 'a';
    pat[200] = '%';
    pat[201] = '\0';
    memset(name, 'a', 200);
    strcpy(name + 200, "xyz");
    UNIT_EQ_INT(mboxname_match(pat, name), 1);
    name[201] = '/';
    UNIT_EQ_INT(mboxname_match(pat, name), 0);
    UNIT_EQ_INT(mboxname_match_ancestor(pat, name), 201);

    /* too long: refused when compiled, no match in the one-shot form */
    memset(pat, '*', MBOXNAME_PATTERN_MAX + 1);
    pat[MBOXNAME_PATTERN_MAX + 1] = '\0';
    struct mboxname_pattern *cp = NULL;
    UNIT_EQ_INT(mboxname_pattern_new(pat, &cp), CF_E_LIMIT);
    UNIT_CHECK(cp == NULL);
    UNIT_EQ_INT(mboxname_match(pat, "x"), 0);

    /* "a*a*a*...*b" (1 KiB) against 500 a's, 500 times (a LIST over 500 mailboxes): a
     * backtracking matcher never ends; this one takes O(name x pattern / 64) word steps,
     * about a quarter second in a sanitized debug build (the bound allows a busy machine) */
    for (int i = 0; i < MBOXNAME_PATTERN_MAX; i++) pat[i] = i % 2 ? '*' : 'a';
    pat[MBOXNAME_PATTERN_MAX - 1] = 'b';
    pat[MBOXNAME_PATTERN_MAX] = '\0';
    memset(name, 'a', 500);
    name[500] = '\0';
    UNIT_EQ_INT(mboxname_pattern_new(pat, &cp), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int hits = 0;
    for (int k = 0; k < 500; k++) {
        size_t anc;
        hits += mboxname_pattern_run(cp, name, &anc);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    UNIT_EQ_INT(hits, 0);
    if (secs > 10.0) fprintf(stderr, "pattern runs took %.2f s\n", secs);
    UNIT_CHECK(secs <= 10.0);
    mboxname_pattern_free(&cp);
    UNIT_CHECK(cp == NULL);
}

int main(void)
{
    test_valid();
    test_utf7();
    test_namespaces();
    test_match();
    test_match_random();
    UNIT_DONE();
}
