/* notify-parse.h: the arguments of the IMAP NOTIFY command (RFC 5465 section 8), checked for
 * the composition rules of sections 5 and 6.1; no session or store code, so the unit test
 * and the fuzz target use it alone. */
#ifndef COFFER_IMAP_NOTIFY_PARSE_H
#define COFFER_IMAP_NOTIFY_PARSE_H
#include "imap/imap-arg.h"
#include <stddef.h>

/* RFC 5465 section 6: the mailbox filters. */
enum notify_filter {
    NOTIFY_SELECTED,
    NOTIFY_SELECTED_DELAYED,
    NOTIFY_INBOXES,
    NOTIFY_PERSONAL,
    NOTIFY_SUBSCRIBED,
    NOTIFY_SUBTREE,
    NOTIFY_MAILBOXES,
};

/* RFC 5465 section 5: the events, as bits. */
enum notify_event {
    NOTIFY_EV_MESSAGE_NEW = 1 << 0,
    NOTIFY_EV_MESSAGE_EXPUNGE = 1 << 1,
    NOTIFY_EV_FLAG_CHANGE = 1 << 2,
    NOTIFY_EV_ANNOTATION_CHANGE = 1 << 3,
    NOTIFY_EV_MAILBOX_NAME = 1 << 4,
    NOTIFY_EV_SUBSCRIPTION_CHANGE = 1 << 5,
    NOTIFY_EV_MAILBOX_METADATA_CHANGE = 1 << 6,
    NOTIFY_EV_SERVER_METADATA_CHANGE = 1 << 7,
    NOTIFY_EV_OTHER = 1 << 8,       /* an event-ext atom this parser does not know */
};
#define NOTIFY_EV_MESSAGE (NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE | \
                           NOTIFY_EV_FLAG_CHANGE | NOTIFY_EV_ANNOTATION_CHANGE)

/* One event group: "(" filter-mailboxes SP events ")". */
struct notify_group {
    enum notify_filter filter;
    const struct imap_arg *names;   /* SUBTREE, MAILBOXES: the mailbox names (nnames of them,
                                     * each an astring argument), else NULL */
    size_t nnames;
    unsigned events;                /* NOTIFY_EV_* bits; 0 for NONE */
    const struct imap_arg *fetch_atts;  /* MessageNew's fetch-att list, or NULL */
};

/* NOTIFY NONE (none set, no groups) or NOTIFY SET [STATUS] groups... */
struct notify_request {
    int none;
    int status;
    struct notify_group *groups;    /* owned (notify_request_fini) */
    size_t ngroups;
};

/* notify_parse: the arguments after NOTIFY into req (which points into args: they must
 * outlive it). 0, or CF_E_PARSE with *err a reason fit to follow "BAD " for a syntax error or
 * a broken composition rule (RFC 5465 section 5: MessageNew and MessageExpunge only together,
 * FlagChange and AnnotationChange only with both; section 6.1: one selected filter at most,
 * only message events with it; fetch-atts only for the selected mailbox). Events the server
 * does not support are not errors here: they are bits the caller refuses with BADEVENT.
 * req is always initialized (free with notify_request_fini). Pure. */
int notify_parse(const struct imap_arg *args, size_t nargs, struct notify_request *req,
                 const char **err);

/* notify_request_fini: free req->groups (req may be zeroed or failed). */
void notify_request_fini(struct notify_request *req);

/* notify_event_name: the RFC 5465 name of one NOTIFY_EV_* bit ("MessageNew", ...). */
const char *notify_event_name(unsigned bit);

#endif
