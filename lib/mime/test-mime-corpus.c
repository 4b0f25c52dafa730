/* test-mime-corpus.c: runs every test/mime-corpus/NAME.eml through mime_summarize and compares
 * ENVELOPE and BODYSTRUCTURE with NAME.envelope and NAME.bodystructure (one trailing LF in
 * those files is not part of the value); also checks syntax and the section table. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/buf.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include "mime/check-imap.h"
#include "mime/decode.h"
#include "mime/mime.h"

#ifndef MIME_CORPUS_DIR
#error "MIME_CORPUS_DIR must be defined"
#endif

static int read_file(const char *path, struct buf *b)
{
    char tmp[65536];
    size_t n;
    FILE *f = fopen(path, "rb");
    buf_reset(b);
    if (!f) return -1;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) buf_append(b, tmp, n);
    fclose(f);
    return 0;
}

static void expect(const char *dir, const char *base, const char *ext, const struct buf *got)
{
    struct buf want = BUF_INIT;
    char *path = xasprintf("%s/%s.%s", dir, base, ext);
    if (read_file(path, &want) < 0) {
        fprintf(stderr, "%s: missing\n", path);
        unit_failed++;
    } else {
        if (want.len && want.s[want.len - 1] == '\n') want.len--;
        if (want.len == got->len && !memcmp(want.s, got->s, got->len)) {
            unit_passed++;
        } else {
            unit_failed++;
            fprintf(stderr, "%s: mismatch\n  got:  %.*s\n  want: %.*s\n", path, (int)got->len,
                    got->s, (int)want.len, want.s);
        }
    }
    buf_fini(&want);
    free(path);
}

static int count_text(void *rock, const char *subtype, const char *text, size_t len)
{
    (void)subtype; (void)text; (void)len;
    (*(int *)rock)++;
    return 0;
}

int main(void)
{
    DIR *d = opendir(MIME_CORPUS_DIR);
    struct dirent *de;
    struct buf msg = BUF_INIT;
    int files = 0;
    UNIT_CHECK(d != NULL);
    if (!d) UNIT_DONE();
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        struct mime_summary s;
        struct mime_section sec;
        char *path, *base;
        int ntext = 0;
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".eml")) continue;
        base = xstrndup(de->d_name, nl - 4);
        path = xasprintf("%s/%s", MIME_CORPUS_DIR, de->d_name);
        UNIT_EQ_INT(read_file(path, &msg), 0);
        mime_summary_init(&s);
        UNIT_EQ_INT(mime_summarize(msg.s, msg.len, &s), 0);
        expect(MIME_CORPUS_DIR, base, "envelope", &s.envelope);
        expect(MIME_CORPUS_DIR, base, "bodystructure", &s.bodystructure);
        UNIT_CHECK(check_imap_envelope(s.envelope.s, s.envelope.len));
        UNIT_CHECK(check_imap_body(s.bodystructure.s, s.bodystructure.len, 1));
        UNIT_CHECK(check_imap_body(s.body.s, s.body.len, 0));
        /* the whole message and part 1 always exist, inside the message */
        UNIT_EQ_INT(mime_section_find(s.sections.s, s.sections.len, "", &sec), 1);
        UNIT_EQ_INT(sec.header_len, s.header_size);
        UNIT_EQ_INT(sec.body_off + sec.body_len, msg.len);
        UNIT_EQ_INT(mime_section_find(s.sections.s, s.sections.len, "1", &sec), 1);
        UNIT_CHECK(sec.body_off + sec.body_len <= msg.len);
        mime_foreach_text(msg.s, msg.len, count_text, &ntext);
        mime_summary_fini(&s);
        free(path);
        free(base);
        files++;
    }
    closedir(d);
    buf_fini(&msg);
    printf("%d corpus messages\n", files);
    UNIT_CHECK(files >= 15);
    UNIT_DONE();
}
