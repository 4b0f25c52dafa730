/* cmd-mail.c: the TRANSACTION state commands on the maildrop: STAT, LIST, UIDL, RETR, TOP,
 * DELE and RSET (RFC 1939 sections 5 and 7). Message numbers refer to the list taken at login. */
#include "pop3d.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "net/stream.h"
#include <stdio.h>

/* parse_number: a decimal number of at most 10 digits without sign or leading junk (RFC 1939
 * section 3: "msg" is a decimal number). 0 and *n_r, or -1. */
static int parse_number(const char *s, unsigned long long max, unsigned long long *n_r)
{
    unsigned long long n = 0;
    int digits = 0;
    for (; *s; s++, digits++) {
        if (*s < '0' || *s > '9' || digits >= 10) return -1;
        n = n * 10 + (unsigned)(*s - '0');
    }
    if (!digits || n > max) return -1;
    *n_r = n;
    return 0;
}

/* arg_count: 1 when the command has between min and max arguments, else replies. */
static int arg_count(struct client *c, const struct pop3_command *cmd, size_t min, size_t max)
{
    if (cmd->args.count < min) {
        client_reply(c, "-ERR %s needs %s", cmd->name,
                     min == 1 ? "a message number" : "a message number and a line count");
        return 0;
    }
    if (cmd->args.count > max) {
        client_reply(c, "-ERR Too many arguments for %s", cmd->name);
        return 0;
    }
    return 1;
}

/* message_arg: the message number in args[i] when it names a message that is there: 1 with
 * *n_r, *uid_r, *size_r set; otherwise replies and returns 0. */
static int message_arg(struct client *c, const struct pop3_command *cmd, size_t i, uint32_t *n_r,
                       uint32_t *uid_r, uint64_t *size_r)
{
    unsigned long long n;
    if (parse_number(cmd->args.v[i], UINT32_MAX, &n)) {
        client_reply(c, "-ERR Invalid message number");
        return 0;
    }
    int f = maildrop_get(c->drop, (uint32_t)n, uid_r, size_r);
    if (f == 0) {
        client_reply(c, "-ERR No such message");
        return 0;
    }
    if (f < 0) {
        client_reply(c, "-ERR Message %llu already deleted", n);
        return 0;
    }
    *n_r = (uint32_t)n;
    return 1;
}

void cmd_stat(struct client *c, const struct pop3_command *cmd)
{
    if (!arg_count(c, cmd, 0, 0)) return;
    uint32_t n;
    uint64_t octets;
    maildrop_stat(c->drop, &n, &octets);
    client_reply(c, "+OK %u %llu", n, (unsigned long long)octets);
}

/* list_or_uidl: LIST and UIDL share their shape: one message, or every message not deleted. */
static void list_or_uidl(struct client *c, const struct pop3_command *cmd, int uidl)
{
    if (!arg_count(c, cmd, 0, 1)) return;
    uint32_t n, uid, uidv = maildrop_uidvalidity(c->drop);
    uint64_t size;
    if (cmd->args.count == 1) {
        if (!message_arg(c, cmd, 0, &n, &uid, &size)) return;
        if (uidl) client_reply(c, "+OK %u %u.%u", n, uidv, uid);
        else client_reply(c, "+OK %u %llu", n, (unsigned long long)size);
        return;
    }
    uint32_t count;
    uint64_t octets;
    maildrop_stat(c->drop, &count, &octets);
    if (uidl) client_reply(c, "+OK Unique-ID listing follows");
    else client_reply(c, "+OK %u messages (%llu octets)", count, (unsigned long long)octets);
    for (n = 1; n <= maildrop_count(c->drop); n++) {
        if (maildrop_get(c->drop, n, &uid, &size) != 1) continue;
        /* RFC 1939 section 7: the unique id is 1-70 printable characters; "uidvalidity.uid"
         * never changes for a message and is never reused in the mailbox */
        if (uidl) stream_printf(c->stream, "%u %u.%u\r\n", n, uidv, uid);
        else stream_printf(c->stream, "%u %llu\r\n", n, (unsigned long long)size);
    }
    stream_write(c->stream, ".\r\n", 3);
}

void cmd_list(struct client *c, const struct pop3_command *cmd) { list_or_uidl(c, cmd, 0); }
void cmd_uidl(struct client *c, const struct pop3_command *cmd) { list_or_uidl(c, cmd, 1); }

/* send_message: RETR (lines < 0) and TOP. */
static void send_message(struct client *c, uint32_t n, uint64_t size, long lines)
{
    char ok[64];
    if (lines < 0) snprintf(ok, sizeof ok, "+OK %llu octets", (unsigned long long)size);
    else snprintf(ok, sizeof ok, "+OK Top of message follows");
    int seen = lines < 0 && config_int(c->ws->cfg, CFG_POP3_RETR_SETS_SEEN);
    int r = maildrop_send(c->drop, c->stream, n, lines, seen, ok);
    if (r == CF_E_NOTFOUND) {
        client_reply(c, "-ERR Message %u was expunged by another session", n);
    } else if (r == CF_E_AGAIN) {
        client_reply(c, "-ERR [SYS/TEMP] Internal error reading message %u", n);
    } else if (r) {
        c->end_reason = "io";
    }
}

void cmd_retr(struct client *c, const struct pop3_command *cmd)
{
    uint32_t n, uid;
    uint64_t size;
    if (!arg_count(c, cmd, 1, 1) || !message_arg(c, cmd, 0, &n, &uid, &size)) return;
    send_message(c, n, size, -1);
}

void cmd_top(struct client *c, const struct pop3_command *cmd)
{
    uint32_t n, uid;
    uint64_t size;
    unsigned long long lines;
    if (!arg_count(c, cmd, 2, 2)) return;
    if (parse_number(cmd->args.v[1], 0x7fffffffULL, &lines)) {
        client_reply(c, "-ERR Invalid line count");
        return;
    }
    if (!message_arg(c, cmd, 0, &n, &uid, &size)) return;
    send_message(c, n, size, (long)lines);
}

void cmd_dele(struct client *c, const struct pop3_command *cmd)
{
    uint32_t n, uid;
    uint64_t size;
    if (!arg_count(c, cmd, 1, 1) || !message_arg(c, cmd, 0, &n, &uid, &size)) return;
    /* M8: DELE marks \Deleted and QUIT expunges: RFC 4314 section 4 rights 't' and 'e'.
     * Refused here, where the client can still keep the session, not at QUIT. */
    if (!maildrop_may(c->drop, 't') || !maildrop_may(c->drop, 'e')) {
        client_reply(c, "-ERR [SYS/PERM] Deleting messages from this maildrop is not permitted");
        return;
    }
    maildrop_delete(c->drop, n);
    client_reply(c, "+OK Message %u deleted", n);
}

void cmd_rset(struct client *c, const struct pop3_command *cmd)
{
    if (!arg_count(c, cmd, 0, 0)) return;
    maildrop_reset(c->drop);
    uint32_t n;
    uint64_t octets;
    maildrop_stat(c->drop, &n, &octets);
    client_reply(c, "+OK Maildrop has %u messages (%llu octets)", n, (unsigned long long)octets);
}
