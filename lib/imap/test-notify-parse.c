/* test-notify-parse.c: the NOTIFY argument parser (RFC 5465 section 8) on the RFC's examples
 * and on each composition rule. */
#include "core/error.h"
#include "core/unit.h"
#include "imap/imap-memsource.h"
#include "imap/imap-parser.h"
#include "imap/notify-parse.h"
#include <string.h>

static struct imap_parser *p;

/* run: parse "a NOTIFY <args>" and then notify_parse; returns notify_parse's result (or
 * 99 when the command line itself does not parse) with req filled. */
static int run(const char *args, struct notify_request *req, const char **err)
{
    static char line[1024];
    static struct imap_memsource ms;
    snprintf(line, sizeof line, "a NOTIFY %s\r\n", args);
    struct imap_source src;
    struct imap_parser_limits lim;
    imap_parser_limits_default(&lim);
    imap_memsource_init(&ms, line, strlen(line), 0, &src);
    if (p) imap_parser_free(&p);
    p = imap_parser_new(&src, &lim);
    struct imap_command cmd;
    memset(req, 0, sizeof *req);
    if (imap_parser_read(p, &cmd) != 0) return 99;
    return notify_parse(cmd.args, cmd.nargs, req, err);
}

static void test_good(void)
{
    struct notify_request req;
    const char *err = NULL;
    UNIT_EQ_INT(run("NONE", &req, &err), 0);
    UNIT_CHECK(req.none && !req.ngroups);
    notify_request_fini(&req);

    /* RFC 5465 section 3.1's example */
    UNIT_EQ_INT(run("SET STATUS (selected MessageExpunge)", &req, &err), CF_E_PARSE);
    notify_request_fini(&req);
    UNIT_EQ_INT(run("SET (selected (MessageNew (uid body.peek[header.fields (from to subject)]) "
                    "MessageExpunge)) (subtree Lists MessageNew)", &req, &err),
                CF_E_PARSE);   /* events must be a list */
    notify_request_fini(&req);
    UNIT_EQ_INT(run("SET (selected (MessageNew (uid body.peek[header.fields (from to subject)]) "
                    "MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))", &req, &err),
                0);
    UNIT_EQ_INT(req.ngroups, 2);
    UNIT_EQ_INT(req.groups[0].filter, NOTIFY_SELECTED);
    UNIT_EQ_INT(req.groups[0].events, NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE);
    UNIT_CHECK(req.groups[0].fetch_atts && req.groups[0].fetch_atts->count == 2);
    UNIT_EQ_INT(req.groups[1].filter, NOTIFY_SUBTREE);
    UNIT_EQ_INT(req.groups[1].nnames, 1);
    UNIT_EQ_STR(req.groups[1].names[0].s, "Lists");
    notify_request_fini(&req);

    UNIT_EQ_INT(run("SET STATUS (personal (MessageNew MessageExpunge FlagChange MailboxName "
                    "SubscriptionChange)) (mailboxes (INBOX \"a b\" {1+}\r\nc) NONE) "
                    "(inboxes NONE) (subscribed (MailboxName))", &req, &err), 0);
    UNIT_CHECK(req.status);
    UNIT_EQ_INT(req.ngroups, 4);
    UNIT_EQ_INT(req.groups[0].events, NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE |
                                      NOTIFY_EV_FLAG_CHANGE | NOTIFY_EV_MAILBOX_NAME |
                                      NOTIFY_EV_SUBSCRIPTION_CHANGE);
    UNIT_EQ_INT(req.groups[1].nnames, 3);
    UNIT_EQ_STR(req.groups[1].names[2].s, "c");
    UNIT_EQ_INT(req.groups[1].events, 0);
    UNIT_EQ_INT(req.groups[2].filter, NOTIFY_INBOXES);
    UNIT_EQ_INT(req.groups[3].events, NOTIFY_EV_MAILBOX_NAME);
    notify_request_fini(&req);

    /* unknown and unsupported events are not syntax errors: the caller says BADEVENT */
    UNIT_EQ_INT(run("SET (personal (MailboxMetadataChange ServerMetadataChange FooBar))", &req,
                    &err), 0);
    UNIT_EQ_INT(req.groups[0].events, NOTIFY_EV_MAILBOX_METADATA_CHANGE |
                                      NOTIFY_EV_SERVER_METADATA_CHANGE | NOTIFY_EV_OTHER);
    notify_request_fini(&req);
    UNIT_EQ_INT(run("set (SELECTED-delayed (messagenew messageexpunge annotationchange))", &req,
                    &err), 0);
    UNIT_EQ_INT(req.groups[0].filter, NOTIFY_SELECTED_DELAYED);
    notify_request_fini(&req);
    UNIT_EQ_STR(notify_event_name(NOTIFY_EV_FLAG_CHANGE), "FlagChange");
}

static void test_bad(void)
{
    static const char *const cases[] = {
        "FOO", "NONE x", "SET", "SET STATUS", "SET ()", "SET (personal)",
        "SET (personal ())", "SET (personal MessageNew)", "SET (bogus NONE)",
        "SET (subtree NONE)", "SET (mailboxes () NONE)", "SET (personal NONE extra)",
        "SET (inboxes (MessageNew))", "SET (inboxes (MessageExpunge))",
        "SET (inboxes (FlagChange))", "SET (inboxes (AnnotationChange MessageNew))",
        "SET (selected (MessageNew MessageExpunge)) (selected-delayed NONE)",
        "SET (selected (MailboxName))", "SET (selected-delayed (SubscriptionChange))",
        "SET (personal (MessageNew (UID) MessageExpunge))",
        "SET (selected (MessageNew () MessageExpunge))",
        "SET (selected (MessageNew (UID) (FLAGS) MessageExpunge))",
        "SET (personal (\"MessageNew\" MessageExpunge))", "SET (personal ((x)))",
        "SET (mailboxes ((a)) NONE)", "SET STATUS STATUS (personal NONE)", "SET personal",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct notify_request req;
        const char *err = NULL;
        int r = run(cases[i], &req, &err);
        if (r != CF_E_PARSE) fprintf(stderr, "case %zu \"%s\": %d\n", i, cases[i], r);
        UNIT_EQ_INT(r, CF_E_PARSE);
        UNIT_CHECK(err && *err);
        notify_request_fini(&req);
    }
}

int main(void)
{
    test_good();
    test_bad();
    imap_parser_free(&p);
    UNIT_DONE();
}
