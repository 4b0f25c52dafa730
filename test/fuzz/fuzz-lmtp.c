/* fuzz-lmtp.c: fuzz target for LMTP command parsing: each input line is split into verb and
 * arguments as lmtpd's session loop does, and the paths of MAIL FROM and RCPT TO go through
 * lmtp_parse_path and lmtp_local_part (server/lmtpd/lmtp-parse.c). Properties: a parsed path
 * holds no control character (it ends up in a Return-Path header field and in replies), and
 * the rest pointer stays inside the line. MAIL's parameters go through lmtp_parse_mail_params
 * (a refusal has a reply with a 5xx code; a size is never negative or over the maximum), and
 * every line is also read as a backend's reply line by lmtp_parse_reply_line, as lmtproute
 * reads them (a parsed code is 200..599, its text inside the line and free of controls), and as
 * a line of DATA by lmtp_data_line (only a lone dot after CRLF lines ends it; at most the one
 * stuffed dot is dropped). */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/error.h"
#include "lmtpd/lmtp-parse.h"
#include <strings.h>

static void check_path(const char *s)
{
    struct buf path = BUF_INIT, local = BUF_INIT;
    const char *rest = NULL;
    int r = lmtp_parse_path(s, &path, &rest);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    if (r == 0) {
        FUZZ_ASSERT(rest >= s && rest <= s + strlen(s));
        FUZZ_ASSERT(*rest != ' ');
        for (size_t i = 0; i < path.len; i++)
            FUZZ_ASSERT((unsigned char)path.s[i] >= 0x20 && path.s[i] != 0x7f);
        FUZZ_ASSERT(strlen(buf_cstr(&path)) == path.len);
        lmtp_local_part(buf_cstr(&path), &local);
        FUZZ_ASSERT(local.len <= path.len);
    }
    buf_fini(&path);
    buf_fini(&local);
}

static void check_params(const char *s)
{
    struct buf path = BUF_INIT, reply = BUF_INIT;
    const char *rest = NULL;
    if (lmtp_parse_path(s, &path, &rest) == 0) {
        long long size = -1;
        int r = lmtp_parse_mail_params(rest, 1000000, &size, &reply);
        FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
        if (r == 0) FUZZ_ASSERT(size >= 0 && size <= 1000000 && reply.len == 0);
        else FUZZ_ASSERT(reply.len > 4 && reply.s[0] == '5');
    }
    buf_fini(&path);
    buf_fini(&reply);
}

static void check_reply(const char *line)
{
    size_t len = strlen(line);
    int code = 0, last = -1;
    const char *text = NULL;
    int r = lmtp_parse_reply_line(line, len, &code, &last, &text);
    FUZZ_ASSERT(r == 0 || r == CF_E_PARSE);
    if (r == 0) {
        FUZZ_ASSERT(code >= 200 && code <= 599);
        FUZZ_ASSERT(last == 0 || last == 1);
        FUZZ_ASSERT(text >= line + 3 && text <= line + len);
        for (const char *p = text; *p; p++)
            FUZZ_ASSERT(((unsigned char)*p >= 0x20 || *p == '\t') && *p != 0x7f);
    }
}

/* check_data: a line as DATA reads it, after a CRLF line and after a bare-LF line */
static void check_data(const char *line)
{
    size_t n = strlen(line);
    for (int bare = 0; bare < 4; bare++) {
        int prev = bare >> 1;
        size_t skip = 9;
        int end = lmtp_data_line(line, n, bare & 1, &prev, &skip);
        FUZZ_ASSERT(prev == (bare & 1));
        FUZZ_ASSERT(skip <= 1 && skip <= n);
        if (end) FUZZ_ASSERT(n == 1 && line[0] == '.' && bare == 0 && skip == 0);
        if (skip) FUZZ_ASSERT(line[0] == '.' && n > 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char *line = text;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
            if (nl > line && nl[-1] == '\r') nl[-1] = '\0';
        }
        const char *sp = strchr(line, ' ');
        const char *args = sp ? sp + 1 : "";
        size_t vlen = sp ? (size_t)(sp - line) : strlen(line);
        if (vlen == 4 && !strncasecmp(line, "MAIL", 4) && !strncasecmp(args, "FROM:", 5)) {
            check_path(args + 5);
            check_params(args + 5);
        }
        else if (vlen == 4 && !strncasecmp(line, "RCPT", 4) && !strncasecmp(args, "TO:", 3))
            check_path(args + 3);
        else
            check_path(line);          /* any text: the parser must not care where it is */
        check_reply(line);
        check_data(line);
        struct buf local = BUF_INIT;
        lmtp_local_part(line, &local);
        FUZZ_ASSERT(local.len <= strlen(line));
        buf_fini(&local);
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return 0;
}
