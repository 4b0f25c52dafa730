/* http-req.c: the metrics endpoint's request head (http-req.h). */
#include "http-req.h"
#include <string.h>

size_t http_req_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n') continue;
        if (buf[i + 1] == '\n') return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n') return i + 3;
    }
    return 0;
}

void http_req_parse(const char *head, size_t len, struct http_req *out)
{
    out->target = HTTP_BAD;
    out->head = 0;
    size_t eol = 0;
    while (eol < len && head[eol] != '\r' && head[eol] != '\n') eol++;
    char line[256];
    if (eol >= sizeof line) return;
    memcpy(line, head, eol);
    line[eol] = '\0';
    if (strlen(line) != eol) return;   /* a NUL inside */
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp2 == sp1 + 1 || sp1 == line || strchr(sp2 + 1, ' ') ||
        strncmp(sp2 + 1, "HTTP/1.", 7) || strlen(sp2 + 1) != 8 || sp2[8] < '0' || sp2[8] > '9')
        return;
    *sp1 = *sp2 = '\0';
    const char *path = sp1 + 1;
    size_t plen = strcspn(path, "?");
    out->head = !strcmp(line, "HEAD");
    if (strcmp(line, "GET") && !out->head) out->target = HTTP_BAD_METHOD;
    else if (plen == 8 && !strncmp(path, "/metrics", 8)) out->target = HTTP_METRICS;
    else if (plen == 7 && !strncmp(path, "/health", 7)) out->target = HTTP_HEALTH;
    else out->target = HTTP_NOT_FOUND;
}
