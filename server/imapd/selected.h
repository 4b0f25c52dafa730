/* selected.h: the selected state of an IMAP session: the open mailbox, its message numbers,
 * the \Recent set, and the untagged updates (EXISTS, RECENT, EXPUNGE, FETCH FLAGS) owed to the
 * client (RFC 3501 sections 5.2, 6.3.1, 7.4.1).
 *
 * Other command families (SEARCH) read the view through this header:
 *   struct mail *m = mail_new(sel->mb);                       (store/mail.h)
 *   for (uint32_t msgno = 1; msgno <= selected_count(sel); msgno++) {
 *       mail_set_uid(m, selected_uid(sel, msgno));
 *       const struct index_record *rec;
 *       if (mail_record(m, &rec) <= 0) ...   (1 found, 0 gone: expunged by another session
 *                                             but still numbered here, <0 corrupt)
 *       selected_is_recent(sel, uid), mailbox_keywords(sel->mb), mail_header(m, ...)
 *   }
 *   mail_free(&m);
 * The view changes only in selected_sync(), which command_dispatch (commands.c) calls after a
 * command's handler and before its tagged response, and IDLE while it waits, so numbers stay
 * stable for the whole of one command. */
#ifndef COFFER_IMAPD_SELECTED_H
#define COFFER_IMAPD_SELECTED_H
#include "imap/imap-arg.h"
#include "imap/imap-seqset.h"
#include "store/mailbox.h"
#include "core/buf.h"
#include <stdint.h>

struct mboxlist_entry;

struct client;
struct store;
struct search_contexts;

struct selected {
    char *name;                 /* internal name, e.g. "user/fred/Sent" (owned) */
    struct mailbox *mb;         /* owned; from store_open_mailbox */
    int readonly;               /* EXAMINE, or no write right */
    char rights[16];            /* the user's RFC 4314 rights on it (ACL_RIGHTS_ALL order) */
    char *acl;                  /* the ACL text rights was computed from (owned; NULL: not yet) */
    char acl_uniqueid[33];      /* the mailbox list entry it came from ("" until then) */
    uint32_t uidvalidity;
    /* \Recent (RFC 3501 section 2.3.2): the uids this session claimed (ranges of uids;
     * claimed ones stay recent for this session until it deselects). For a read-only session
     * nothing is claimed and recent_from says which uids are unclaimed (>= recent_from). */
    struct imap_seqset recent;
    uint32_t recent_from;       /* read-only: uids >= this count as recent; 0 = none */
    /* an IMAP4rev2 session (rev2.c): no message is \Recent for it, and it claims none, so
     * IMAP4rev1 sessions of the same mailbox keep theirs (RFC 9051 appendix E) */
    int no_recent;
    /* what the client was last told */
    uint32_t told_exists;
    uint32_t told_recent;
    uint32_t told_keywords;     /* keywords in the last FLAGS response */
    /* uids whose flag changes this command already reported (its own STORE, or \Seen set by
     * FETCH): the next selected_sync does not report them again, then clears the set */
    struct imap_seqset skip;
    /* per-user \Seen of a shared mailbox (one not under user/; store/seendb.h): when seen_user
     * is set, the index's FLAG_SEEN is ignored and a message is \Seen for this session when its
     * uid is in seen_uids, this user's set. Another user's mailbox shared by ACL keeps the
     * owner's \Seen in the index (the owner's flags are what the sharing is about). */
    char *seen_user;            /* owned; NULL for personal mailboxes */
    struct store *seen_store;   /* not owned */
    char seen_id[33];           /* the mailbox's unique id (the seendb key) */
    struct imap_seqset seen_uids;
    struct buf seen_text;       /* seen_uids as last read or written, to notice other sessions */
    /* RFC 7162 for per-user \Seen (condstore.c): this user's \Seen changes get mod-sequences
     * of their own, so the session shows every mod-sequence scaled: an index modseq m is
     * m << SEEN_MODSEQ_SHIFT, a \Seen change made while the index stood at m gets
     * (m << SEEN_MODSEQ_SHIFT) + k (k = 1, 2, ... until the index moves on). seen_hist holds
     * the user's latest changes, newest first, each the uids changed with that value; the
     * oldest entries merge into one (taking the newer value: a client may be told of a change
     * twice, never not at all). Stored beside the \Seen set in the seen database. */
    struct seen_hist *seen_hist;
    size_t n_seen_hist;
    /* SEARCHRES (RFC 5182): the result last saved by SEARCH RETURN (SAVE), as uids, so that
     * expunged messages drop out; empty until a SAVE and in every newly selected mailbox */
    struct imap_seqset saved;
    /* CONTEXT=SEARCH (RFC 5267): the live searches of SEARCH RETURN (UPDATE) (owned; NULL
     * until the first; search-context.h) */
    struct search_contexts *contexts;
};

/* selected_open: open internal mailbox `name` in store st, build the view from the index
 * alone and claim \Recent for a read-write session. *sel_r is owned by the caller (free with
 * selected_close). 0, CF_E_NOTFOUND, CF_E_CORRUPT, CF_E_IO. Blocks on the mailbox lock. */
int selected_open(struct store *st, const char *name, int readonly, struct selected **sel_r);
/* selected_open_view: selected_open, with no_recent for an IMAP4rev2 session: nothing is
 * claimed and nothing shows as \Recent (sel->no_recent). */
int selected_open_view(struct store *st, const char *name, int readonly, int no_recent,
                       struct selected **sel_r);
void selected_close(struct selected **sel);

/* selected_seen_init: for a shared mailbox (not under user/) and a logged-in user, switch the
 * view to user's own \Seen set, read from the seen database. 0 or a database error. */
int selected_seen_init(struct selected *sel, struct store *st, const char *user);

/* selected_seen_apply: put this session's \Seen into rec->flags (a no-op for personal
 * mailboxes). Every reader of records for the client (FETCH, SEARCH, STORE replies, SELECT's
 * UNSEEN) calls it after mailbox_record. */
void selected_seen_apply(const struct selected *sel, struct index_record *rec);

/* selected_seen_hist_load: read this user's \Seen mod-sequence history (condstore.c) of a
 * shared mailbox into sel (a missing or damaged one is empty). 0 or a database error. */
int selected_seen_hist_load(struct selected *sel);

/* selected_seen_hist_add: give the n uids whose \Seen this user just changed a new
 * mod-sequence of this user's view and store the history. 0 or a database error. */
int selected_seen_hist_add(struct selected *sel, const uint32_t *uids, size_t n);

/* selected_seen_hist_free: release the history. */
void selected_seen_hist_free(struct selected *sel);

/* selected_modseq_raw: the index mod-sequence bound that a client's view value v stands for
 * (v itself for personal mailboxes; v >> SEEN_MODSEQ_SHIFT with per-user \Seen): an index
 * modseq m shows as above v exactly when m > selected_modseq_raw(v). */
uint64_t selected_modseq_raw(const struct selected *sel, uint64_t v);

#define SEEN_MODSEQ_SHIFT 16

/* selected_seen_change: add (add 1) or remove (add 0) \Seen on uids for this user of a shared
 * mailbox, merged into the set as stored now (another session of the user may have changed
 * it), and written back. 0 or a database error. */
int selected_seen_change(struct selected *sel, const uint32_t *uids, size_t n, int add);

/* selected_count: messages in the view (the highest message sequence number). */
uint32_t selected_count(const struct selected *sel);
/* selected_uid / selected_msgno: 0 when out of range / not in the view. */
uint32_t selected_uid(const struct selected *sel, uint32_t msgno);
uint32_t selected_msgno(const struct selected *sel, uint32_t uid);

/* selected_is_recent: 1 when uid carries \Recent in this session. */
int selected_is_recent(const struct selected *sel, uint32_t uid);
/* selected_recent_count: messages in the view with \Recent in this session. */
uint32_t selected_recent_count(const struct selected *sel);

/* selected_msgset: turn a sequence set given by the client into message numbers.
 * uid 0: text is a set of message numbers; a number past selected_count() (or any number in
 * an empty mailbox unless it is only "*") is an error (RFC 3501 section 6.4.5: BAD).
 * uid 1: text is a set of UIDs; "*" is the highest uid in the view, uids not in the view are
 * silently skipped (RFC 3501 section 6.4.8). "$" (either form) is the saved search result,
 * sel->saved, less the uids no longer in the view (RFC 5182). out (cleared first) gets message numbers.
 * 0, or CF_E_PARSE with a reason in *err (static text). */
int selected_msgset(const struct selected *sel, const char *text, int uid,
                    struct imap_seqset *out, const char **err);

/* selected_flags_append: append the flag list of a record as sent in FETCH FLAGS and SEARCH
 * matching: "(\Seen \Flagged $Junk \Recent)" with parentheses; keywords from the mailbox's
 * keyword table (mailbox_keywords). */
void selected_flags_append(struct selected *sel, const struct index_record *rec,
                           struct buf *out);

/* selected_flags_responses: `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` with the
 * mailbox's current keywords (SELECT, and after a new keyword appears). */
void selected_flags_responses(struct client *c);

/* selected_keywords_announce: RFC 3501 section 7.2.6: when the mailbox's keyword table has
 * changed since the last FLAGS response (another session made a keyword), send FLAGS and
 * PERMANENTFLAGS again. Every writer of a `* N FETCH (FLAGS ...)` response calls it before it
 * starts the response, so a client never meets a keyword it was not told about. */
void selected_keywords_announce(struct client *c);

/* Flags for selected_sync. */
#define SELECTED_SYNC_NO_EXPUNGE 1  /* after FETCH, STORE, SEARCH (CMD_USES_SEQS) */
#define SELECTED_SYNC_UID 2         /* add UID to FETCH FLAGS updates (after UID commands) */

/* selected_sync: bring c->sel's view up to date and send the untagged responses it owes
 * (`* N EXPUNGE` unless SELECTED_SYNC_NO_EXPUNGE, `* N EXISTS` and `* N RECENT` when messages
 * arrived, `* N FETCH (FLAGS ...)` for flags changed elsewhere, except uids in sel->skip,
 * which is cleared). Claims \Recent for newly arrived messages in a read-write session. 0,
 * CF_E_NOTFOUND (mailbox deleted), CF_E_CORRUPT, CF_E_IO. Blocks on the shared lock. */
int selected_sync(struct client *c, unsigned flags);

/* selected_rights_check: re-read the selected mailbox's ACL from the mailbox list (one
 * database read) and, when it changed since SELECT or the last check, recompute sel->rights,
 * so that a revoked right stops working for open sessions too (L3 of the 2026-12 review).
 * CF_E_PERM when the user lost 'r' (the caller ends the selection: selected_sync_failed says
 * BYE [NOPERM]); else 0. A failed read, or a name that now belongs to another mailbox (renamed
 * away), keeps the rights as they were. selected_sync calls it first; command_dispatch before
 * each command. Blocks on the database. */
int selected_rights_check(struct client *c);

/* selected_expunge: store_expunge (uids NULL: every \Deleted message), which gives the quota
 * root of the mailbox back exactly what went away. The `* N EXPUNGE` responses follow from the
 * next selected_sync. 0 or store_expunge's errors. Blocks on the locks and the database. */
int selected_expunge(struct store *st, struct selected *sel, const uint32_t *uids, size_t n);

/* selected_resolve_name: the internal name (into name) of the mailbox argument arg, checked
 * with acl_lookup for right; rights (ACL_RIGHTS_SIZE) gets the user's rights, and e (when not
 * NULL, initialized by the caller) the mailbox list entry they were computed from. 0, or a
 * negative code after which the command has been answered with tag (BAD, NO [NONEXISTENT],
 * NO [NOPERM], else imapd_reply_error). Blocks on the database. */
int selected_resolve_name(struct client *c, const char *tag, const struct imap_arg *arg,
                          char right, struct buf *name, char *rights, struct mboxlist_entry *e);

/* selected_sync_failed: after selected_sync returned r < 0: the view can no longer be kept
 * right, so the session says BYE (NONEXISTENT when the mailbox was deleted, NOPERM when the
 * user lost the 'r' right on it, CORRUPTION when its index is damaged, SERVERBUG otherwise),
 * deselects and sets c->end_reason (clients reconnect; SELECT then reports it). */
void selected_sync_failed(struct client *c, int r);

/* selected_deselect: close the selected mailbox (if any) and go back to authenticated state. */
void selected_deselect(struct client *c);

/* ---- CONDSTORE and QRESYNC (RFC 7162): condstore.c ---- */

struct imap_qresync;
struct mailbox_modseq_scan;

/* selected_highestmodseq: the HIGHESTMODSEQ this session shows (at least 1). */
uint64_t selected_highestmodseq(const struct selected *sel);

/* selected_modseq: the MODSEQ this session shows for rec (at least 1). */
uint64_t selected_modseq(const struct selected *sel, const struct index_record *rec);

/* What selected_fetch_line puts in an untagged FETCH. UID is added anyway with QRESYNC
 * enabled, MODSEQ anyway with CONDSTORE enabled (RFC 7162 sections 3.1.4, 3.2.4). */
#define SELECTED_FETCH_UID 1
#define SELECTED_FETCH_FLAGS 2
#define SELECTED_FETCH_MODSEQ 4

/* selected_fetch_line: "N FETCH (UID u FLAGS (...) MODSEQ (m))" for rec (message number
 * msgno) into b (reset first), for client_untagged. */
void selected_fetch_line(struct client *c, uint32_t msgno, const struct index_record *rec,
                         unsigned what, struct buf *b);

/* selected_vanished: "* VANISHED [(EARLIER)] uid-set" for the uids (concrete), in lines of
 * bounded length; nothing for an empty set. */
void selected_vanished(struct client *c, const struct imap_seqset *uids, int earlier);

/* selected_vanished_since: into out, the uids expunged after modseq since, from scan
 * (mailbox_modseq_scan with since), restricted to within (NULL: all). When the index no
 * longer holds every expunge after since (since < scan->vanished_modseq), RFC 7162 section
 * 3.2.5.2: every uid of within (NULL: 1 .. uidnext-1) from exact_from on that is not a live
 * message of the view. 0. */
int selected_vanished_since(struct selected *sel, uint64_t since, const struct imap_seqset *within,
                            uint32_t exact_from, const struct mailbox_modseq_scan *scan,
                            struct imap_seqset *out);

/* selected_qresync: the QRESYNC part of SELECT/EXAMINE (RFC 7162 section 3.2.5), after the
 * usual responses: when q's UIDVALIDITY matches, "* VANISHED (EARLIER)" for the expunges
 * since q->modseq (within the known uids) and an untagged FETCH (UID FLAGS MODSEQ) for every
 * message changed since. 0 or a store error. Blocks on the shared lock. */
int selected_qresync(struct client *c, const struct imap_qresync *q);

#endif
