/* search-context.h: searches kept live for the client (RFC 5267 section 4, CONTEXT=SEARCH):
 * SEARCH RETURN (UPDATE) leaves its program and its result here; each selected_sync passes
 * what changed in the view, only the changed and new messages are searched again, and the
 * differences go out as `* ESEARCH (TAG "t") [UID] REMOVEFROM (pos set) ADDTO (pos set)` (and
 * new MIN/MAX/COUNT values when those were asked for). CANCELUPDATE ends one; closing the
 * mailbox ends all (selected_close).
 *
 * The result is kept as uids in ascending order, which is also the result order of a SEARCH
 * (message numbers and uids grow together). A live SORT (CONTEXT=SORT, SORT RETURN (UPDATE))
 * is the same live search plus a struct sort_context (cmd-sort.c) that keeps the result in
 * sort order with each message's sort keys, and gives the positions of ADDTO/REMOVEFROM in
 * that order; its MIN/MAX are the first and last in sort order. */
#ifndef COFFER_IMAPD_SEARCH_CONTEXT_H
#define COFFER_IMAPD_SEARCH_CONTEXT_H
#include "core/buf.h"
#include "imap/imap-seqset.h"
#include "store/mailbox.h"
#include <stdint.h>

struct client;
struct selected;
struct search_program;
struct mail;

/* Most live searches one session may hold: past it, SEARCH RETURN (UPDATE) still answers but
 * says `* NO [NOUPDATE "tag"]` and keeps nothing (RFC 5267 section 4.3). Each one costs a
 * search of every changed message at each sync. */
#define SEARCH_CONTEXT_MAX 16
/* Of those, most live SORTs: each keeps its result's sort keys in memory (about 80 bytes and
 * the key strings per message), so a 100,000-message result costs about 10 MB. */
#define SORT_CONTEXT_MAX 4

/* What a live search reports, from its RETURN options. */
#define SEARCH_UPDATE_LIST  1u      /* ADDTO/REMOVEFROM (ALL, PARTIAL, or no MIN/MAX/COUNT) */
#define SEARCH_UPDATE_MIN   2u
#define SEARCH_UPDATE_MAX   4u
#define SEARCH_UPDATE_COUNT 8u

/* search_context_find: 1 when sel holds a live search of tag, else 0. */
int search_context_find(const struct selected *sel, const char *tag);

/* search_context_add: keep a live search: tag (copied), uid 1 for UID SEARCH (the numbers
 * sent are uids) or 0 (message numbers), want SEARCH_UPDATE_* bits, *prog (taken: set to
 * NULL; pinned with search_pin), result the matching uids now (copied). 0, or CF_E_LIMIT when
 * SEARCH_CONTEXT_MAX are held already (nothing taken). */
int search_context_add(struct selected *sel, const char *tag, int uid, unsigned want,
                       struct search_program **prog, const struct imap_seqset *result);

struct sort_context;

/* search_context_add_sort: search_context_add for a live SORT: *sort (taken: set to NULL)
 * holds the result in sort order. Same returns (on CF_E_LIMIT nothing is taken), CF_E_LIMIT
 * also when SORT_CONTEXT_MAX live SORTs are held. */
int search_context_add_sort(struct selected *sel, const char *tag, int uid, unsigned want,
                            struct search_program **prog, const struct imap_seqset *result,
                            struct sort_context **sort);

/* search_context_expunge: before the EXPUNGE (or VANISHED) responses of a sync: each live
 * message-number SEARCH or SORT sends REMOVEFROM for its expunged results, numbered as the
 * client still numbers them (RFC 5267 section 4.3.4: "MUST be sent prior to the expunge
 * notification"), and forgets them. UID ones are told at search_context_sync. */
void search_context_expunge(struct client *c, const struct mailbox_changes *ch);

/* search_context_cancel: end the live search of tag; 1 when there was one, else 0. */
int search_context_cancel(struct selected *sel, const char *tag);

/* search_context_free: end every live search of sel (selected_close). */
void search_context_free(struct selected *sel);

/* search_context_touch: uid's flags (or this user's \Seen) changed: search it again at the
 * end of the sync. A no-op without live searches. */
void search_context_touch(struct selected *sel, uint32_t uid);

/* search_context_sync: at the end of selected_sync (after EXPUNGE, EXISTS and FETCH were
 * sent, so numbers are those the client now has): search the touched and the new messages
 * again for every live search, drop the expunged ones, and send the ESEARCH updates. Errors
 * reading a message count as "does not match" (logged once per sync). */
void search_context_sync(struct client *c, const struct mailbox_changes *ch);

/* cmd_search_match (cmd-search.c): run prog on message msgno of sel's view through mail:
 * 1 match, 0 no match (also for a message expunged meanwhile), or a negative CF_E_* code. */
int cmd_search_match(struct selected *sel, struct search_program *prog, struct mail *mail,
                     uint32_t msgno);

/* ---- CONTEXT=SORT, in cmd-sort.c ---- */

/* sort_context_apply: take the uids of gone (ascending) out of s and put the uids of added
 * (ascending; their keys are read now through sel) in, appending to rm the REMOVEFROM pairs
 * and to add the ADDTO pairs ("pos n,n:m ..."; positions as RFC 5267 sections 4.3.3/4.3.4
 * count them, each pair valid once the ones before it are applied) with each uid numbered
 * by num(ctx, uid). *first_r, *last_r: the first and last uid in sort order afterwards (0:
 * empty). A message whose keys cannot be read sorts as if its strings were empty (logged
 * once per call through *logged). */
void sort_context_apply(struct selected *sel, struct sort_context *s,
                        const struct imap_seqset *gone, const struct imap_seqset *added,
                        uint32_t (*num)(void *ctx, uint32_t uid), void *ctx, struct buf *rm,
                        struct buf *add, uint32_t *first_r, uint32_t *last_r, int *logged);

/* sort_context_free: free *s and set it to NULL (NULL is fine). */
void sort_context_free(struct sort_context **s);

#endif
