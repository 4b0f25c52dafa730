/* admin-parse.c: the admin protocol's command lines and chunk headers (admin-parse.h). */
#include "admind/admin-parse.h"
#include "core/error.h"
#include <string.h>
#include <strings.h>

static const struct { const char *name; enum admin_verb verb; } verbs[] = {
    { "AUTH", ADMIN_AUTH }, { "FENCE", ADMIN_FENCE }, { "UNFENCE", ADMIN_UNFENCE },
    { "DUMP", ADMIN_DUMP }, { "RESTORE", ADMIN_RESTORE }, { "VERIFY", ADMIN_VERIFY },
    { "REMOVE", ADMIN_REMOVE }, { "QUIT", ADMIN_QUIT },
};

int admin_user_valid(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > ADMIN_MAX_USER || *s == '.') return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("/@%*", *p)) return 0;
    return 1;
}

static int base64_word(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '+' || *s == '/' || *s == '='))
            return 0;
    return 1;
}

int admin_parse(const char *line, size_t len, struct admin_cmd *cmd, const char **why)
{
    cmd->arg[0] = '\0';
    if (len > ADMIN_MAX_LINE) { *why = "line too long"; return CF_E_PARSE; }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < ' ' || (unsigned char)line[i] >= 0x7f) {
            *why = "control or non-ASCII character";
            return CF_E_PARSE;
        }
    const char *sp = memchr(line, ' ', len);
    size_t vlen = sp ? (size_t)(sp - line) : len;
    cmd->verb = 0;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strlen(verbs[i].name) == vlen && !strncasecmp(line, verbs[i].name, vlen))
            cmd->verb = verbs[i].verb;
    if (!cmd->verb) { *why = "unknown command"; return CF_E_PARSE; }
    size_t alen = sp ? len - vlen - 1 : 0;
    memcpy(cmd->arg, sp ? sp + 1 : "", alen);
    cmd->arg[alen] = '\0';
    if (cmd->verb == ADMIN_QUIT) {
        if (sp) { *why = "QUIT takes no argument"; return CF_E_PARSE; }
        return 0;
    }
    if (!sp) { *why = "argument missing"; return CF_E_PARSE; }
    if (cmd->verb == ADMIN_AUTH) {
        if (strncasecmp(cmd->arg, "PLAIN ", 6) || !base64_word(cmd->arg + 6)) {
            *why = "expected AUTH PLAIN BASE64";
            return CF_E_PARSE;
        }
        return 0;
    }
    if (!admin_user_valid(cmd->arg)) { *why = "not a valid user name"; return CF_E_PARSE; }
    return 0;
}

int admin_parse_chunk(const char *line, size_t len, size_t *n)
{
    if (len < 2 || line[0] != '+' || line[1] != ' ') return 0;
    const char *p = line + 2, *end = line + len;
    if (p == end || (*p == '0' && end - p > 1)) return CF_E_PARSE;
    size_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return CF_E_PARSE;
        v = v * 10 + (size_t)(*p - '0');
        if (v > ADMIN_MAX_CHUNK) return CF_E_LIMIT;
    }
    *n = v;
    return 1;
}
