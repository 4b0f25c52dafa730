/* imap-listopts.h: the arguments of LIST with LIST-EXTENDED (RFC 5258 section 6) and the
 * STATUS item lists (RFC 3501 section 6.3.10 and its extensions), parsed from the typed
 * arguments of a command (imap-arg.h). Pure functions, no store access: imapd's LIST and
 * STATUS (server/imapd/cmd-mailbox.c) give them meaning. */
#ifndef COFFER_IMAP_LISTOPTS_H
#define COFFER_IMAP_LISTOPTS_H
#include "imap/imap-arg.h"
#include <stddef.h>

/* STATUS items, one bit each. DELETED and DELETED-STORAGE: RFC 9208 section 4.2; SIZE: RFC
 * 8438; HIGHESTMODSEQ: RFC 7162 section 3.1.1. */
enum imap_status_item {
    IMAP_STATUS_MESSAGES = 1, IMAP_STATUS_RECENT = 2, IMAP_STATUS_UIDNEXT = 4,
    IMAP_STATUS_UIDVALIDITY = 8, IMAP_STATUS_UNSEEN = 16, IMAP_STATUS_DELETED = 32,
    IMAP_STATUS_SIZE = 64, IMAP_STATUS_DELETED_STORAGE = 128, IMAP_STATUS_HIGHESTMODSEQ = 256,
    IMAP_STATUS_MAILBOXID = 512,        /* RFC 8474 section 4.2 */
    IMAP_STATUS_APPENDLIMIT = 0x4000,   /* RFC 7889 section 3.1 */
};
#define IMAP_STATUS_ITEMS_MAX 11

/* imap_status_items_parse: a non-empty list of status item atoms (any case) into order[] in
 * the order given, a repeated item once, and *n. 0, or CF_E_PARSE for anything else. */
int imap_status_items_parse(const struct imap_arg *a, unsigned order[IMAP_STATUS_ITEMS_MAX],
                            size_t *n);

/* imap_status_item_name: the item's name ("MESSAGES"), "" for no single known bit. */
const char *imap_status_item_name(unsigned item);

/* LIST selection options (RFC 5258 section 3.1, SPECIAL-USE: RFC 6154 section 3) */
enum { IMAP_LIST_SEL_SUBSCRIBED = 1, IMAP_LIST_SEL_REMOTE = 2, IMAP_LIST_SEL_RECURSIVEMATCH = 4,
       IMAP_LIST_SEL_SPECIAL_USE = 8 };
/* LIST return options (RFC 5258 section 3.2, STATUS: RFC 5819, SPECIAL-USE: RFC 6154) */
enum { IMAP_LIST_RET_SUBSCRIBED = 1, IMAP_LIST_RET_CHILDREN = 2, IMAP_LIST_RET_SPECIAL_USE = 4,
       IMAP_LIST_RET_STATUS = 8 };

/* Patterns in one LIST ("a" "b" ...): each is matched against every visible mailbox. */
#define IMAP_LIST_PATTERNS_MAX 16

struct imap_list_opts {
    unsigned sel, ret;               /* IMAP_LIST_SEL_*, IMAP_LIST_RET_* */
    unsigned status[IMAP_STATUS_ITEMS_MAX]; /* RETURN (STATUS (items)) */
    size_t nstatus;
    int extended;                    /* an option or a pattern list was given */
    const char *ref;                 /* the reference (points into the arguments) */
    const struct imap_arg *pats;     /* the pattern arguments, each an astring */
    size_t npats;
};

/* imap_list_opts_parse: LIST's arguments args[0..nargs):
 *   [(select-opts)] reference (pattern / (pattern ...)) [RETURN (return-opts)]
 * into *o (pointing into args). Unknown options are errors (RFC 5258 section 3: BAD), and so
 * is RECURSIVEMATCH without SUBSCRIBED or SPECIAL-USE (section 3.1), a repeated STATUS, an
 * empty pattern list or more than IMAP_LIST_PATTERNS_MAX patterns. The SUBSCRIBED selection
 * option sets the SUBSCRIBED return option (it implies it). 0, or CF_E_PARSE with *why, a text
 * for the BAD answer. */
int imap_list_opts_parse(const struct imap_arg *args, size_t nargs, struct imap_list_opts *o,
                         const char **why);

#endif
