/* notify-parse.c: the NOTIFY command's arguments (RFC 5465 section 8) into event groups. */
#include "imap/notify-parse.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct { const char *name; unsigned bit; } events[] = {
    { "MessageNew", NOTIFY_EV_MESSAGE_NEW },
    { "MessageExpunge", NOTIFY_EV_MESSAGE_EXPUNGE },
    { "FlagChange", NOTIFY_EV_FLAG_CHANGE },
    { "AnnotationChange", NOTIFY_EV_ANNOTATION_CHANGE },
    { "MailboxName", NOTIFY_EV_MAILBOX_NAME },
    { "SubscriptionChange", NOTIFY_EV_SUBSCRIPTION_CHANGE },
    { "MailboxMetadataChange", NOTIFY_EV_MAILBOX_METADATA_CHANGE },
    { "ServerMetadataChange", NOTIFY_EV_SERVER_METADATA_CHANGE },
};

const char *notify_event_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (events[i].bit == bit) return events[i].name;
    return "";
}

void notify_request_fini(struct notify_request *req)
{
    free(req->groups);
    memset(req, 0, sizeof *req);
}

/* is_atom_chars: a valid event-ext atom (ATOM-CHAR only, RFC 3501 section 9). */
static int is_atom_chars(const struct imap_arg *a)
{
    if (a->type != IMAP_ARG_ATOM || !a->len) return 0;
    for (size_t i = 0; i < a->len; i++) {
        unsigned char ch = (unsigned char)a->s[i];
        if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch)) return 0;
    }
    return 1;
}

/* parse_events: "(" event *(SP event) ")" or NONE into g. */
static int parse_events(const struct imap_arg *a, struct notify_group *g, const char **err)
{
    if (imap_arg_atom_eq(a, "NONE")) return 0;
    if (a->type != IMAP_ARG_LIST || !a->count) {
        *err = "Expected a list of events or NONE";
        return CF_E_PARSE;
    }
    for (size_t i = 0; i < a->count; i++) {
        const struct imap_arg *e = &a->list[i];
        if (!is_atom_chars(e)) {
            *err = "Expected an event name";
            return CF_E_PARSE;
        }
        unsigned bit = NOTIFY_EV_OTHER;
        for (size_t k = 0; k < sizeof events / sizeof events[0]; k++)
            if (imap_arg_atom_eq(e, events[k].name)) bit = events[k].bit;
        g->events |= bit;
        /* message-event: "MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"] */
        if (bit == NOTIFY_EV_MESSAGE_NEW && i + 1 < a->count &&
            a->list[i + 1].type == IMAP_ARG_LIST) {
            if (!a->list[i + 1].count || g->fetch_atts) {
                *err = "Expected fetch attributes after MessageNew";
                return CF_E_PARSE;
            }
            g->fetch_atts = &a->list[++i];
        }
    }
    unsigned ev = g->events;
    /* RFC 5465 section 5: MessageNew and MessageExpunge together, and FlagChange and
     * AnnotationChange only with both; otherwise BAD */
    if (!(ev & NOTIFY_EV_MESSAGE_NEW) != !(ev & NOTIFY_EV_MESSAGE_EXPUNGE)) {
        *err = "MessageNew and MessageExpunge must be given together";
        return CF_E_PARSE;
    }
    if ((ev & (NOTIFY_EV_FLAG_CHANGE | NOTIFY_EV_ANNOTATION_CHANGE)) &&
        !(ev & NOTIFY_EV_MESSAGE_NEW)) {
        *err = "FlagChange and AnnotationChange need MessageNew and MessageExpunge";
        return CF_E_PARSE;
    }
    return 0;
}

/* parse_group: "(" filter-mailboxes SP events ")". */
static int parse_group(const struct imap_arg *a, struct notify_group *g, const char **err)
{
    static const struct { const char *name; enum notify_filter f; int names; } filters[] = {
        { "SELECTED", NOTIFY_SELECTED, 0 }, { "SELECTED-DELAYED", NOTIFY_SELECTED_DELAYED, 0 },
        { "INBOXES", NOTIFY_INBOXES, 0 },   { "PERSONAL", NOTIFY_PERSONAL, 0 },
        { "SUBSCRIBED", NOTIFY_SUBSCRIBED, 0 }, { "SUBTREE", NOTIFY_SUBTREE, 1 },
        { "MAILBOXES", NOTIFY_MAILBOXES, 1 },
    };
    memset(g, 0, sizeof *g);
    if (a->type != IMAP_ARG_LIST || a->count < 2) {
        *err = "Expected an event group: (filter events)";
        return CF_E_PARSE;
    }
    size_t k = 0, n = sizeof filters / sizeof filters[0];
    while (k < n && !imap_arg_atom_eq(&a->list[0], filters[k].name)) k++;
    if (k == n) {
        *err = "Unknown mailbox filter";
        return CF_E_PARSE;
    }
    g->filter = filters[k].f;
    size_t want = filters[k].names ? 3 : 2;
    if (a->count != want) {
        *err = filters[k].names ? "Expected mailbox names and events" : "Expected events";
        return CF_E_PARSE;
    }
    if (filters[k].names) {
        /* one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")" */
        const struct imap_arg *m = &a->list[1];
        if (m->type == IMAP_ARG_LIST) {
            g->names = m->list;
            g->nnames = m->count;
        } else {
            g->names = m;
            g->nnames = 1;
        }
        if (!g->nnames) {
            *err = "Expected mailbox names";
            return CF_E_PARSE;
        }
        for (size_t i = 0; i < g->nnames; i++) {
            if (!imap_arg_astring(&g->names[i])) {
                *err = "Expected a mailbox name";
                return CF_E_PARSE;
            }
        }
    }
    int r = parse_events(&a->list[want - 1], g, err);
    if (r < 0) return r;
    int selected = g->filter == NOTIFY_SELECTED || g->filter == NOTIFY_SELECTED_DELAYED;
    /* RFC 5465 section 6.1: only message events with the selected filters */
    if (selected && (g->events & ~(unsigned)NOTIFY_EV_MESSAGE)) {
        *err = "Only message events may be given for the selected mailbox";
        return CF_E_PARSE;
    }
    /* RFC 5465 section 8: fetch-att belongs to the selected mailbox's MessageNew */
    if (!selected && g->fetch_atts) {
        *err = "Fetch attributes are only for the selected mailbox";
        return CF_E_PARSE;
    }
    return 0;
}

int notify_parse(const struct imap_arg *args, size_t nargs, struct notify_request *req,
                 const char **err)
{
    memset(req, 0, sizeof *req);
    *err = "Expected SET or NONE";
    if (!nargs) return CF_E_PARSE;
    if (imap_arg_atom_eq(&args[0], "NONE")) {
        if (nargs != 1) {
            *err = "NOTIFY NONE takes no arguments";
            return CF_E_PARSE;
        }
        req->none = 1;
        return 0;
    }
    if (!imap_arg_atom_eq(&args[0], "SET")) return CF_E_PARSE;
    size_t i = 1;
    if (i < nargs && imap_arg_atom_eq(&args[i], "STATUS")) {
        req->status = 1;
        i++;
    }
    if (i == nargs) {
        *err = "Expected event groups";
        return CF_E_PARSE;
    }
    req->groups = xreallocarray(NULL, nargs - i, sizeof *req->groups);
    memset(req->groups, 0, (nargs - i) * sizeof *req->groups);
    int selected = 0;
    for (; i < nargs; i++) {
        struct notify_group *g = &req->groups[req->ngroups];
        int r = parse_group(&args[i], g, err);
        if (r < 0) return r;
        req->ngroups++;
        if (g->filter == NOTIFY_SELECTED || g->filter == NOTIFY_SELECTED_DELAYED) {
            /* RFC 5465 section 6.1: only one of them in a command */
            if (selected++) {
                *err = "Only one of SELECTED and SELECTED-DELAYED may be given";
                return CF_E_PARSE;
            }
        }
    }
    return 0;
}
