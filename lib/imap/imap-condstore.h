/* imap-condstore.h: the RFC 7162 (CONDSTORE, QRESYNC) pieces of client input: mod-sequence
 * values, the SELECT/EXAMINE QRESYNC parameter, the FETCH modifiers CHANGEDSINCE and
 * VANISHED and the STORE modifier UNCHANGEDSINCE. Pure parsing: imapd applies them. */
#ifndef COFFER_IMAP_IMAP_CONDSTORE_H
#define COFFER_IMAP_IMAP_CONDSTORE_H
#include "imap/imap-arg.h"
#include "imap/imap-seqset.h"
#include <stdint.h>

/* RFC 7162 section 7: mod-sequence-value = 1*DIGIT, at most 2^63 - 1. */
#define IMAP_MODSEQ_MAX 0x7fffffffffffffffull

/* imap_modseq_parse: the atom s[0,len) as a mod-sequence value: 1 .. 2^63-1, or 0 too when
 * zero_ok (mod-sequence-valzer). Digits only, no sign, no leading '+'. 0 and *out, or -1. */
int imap_modseq_parse(const char *s, size_t len, int zero_ok, uint64_t *out);

/* imap_modseq_arg: imap_modseq_parse of an atom argument; -1 for any other type. */
int imap_modseq_arg(const struct imap_arg *a, int zero_ok, uint64_t *out);

/* The QRESYNC select parameter (RFC 7162 section 3.2.5):
 * QRESYNC (uidvalidity modseq [known-uids [(seq-match uid-match)]]). */
struct imap_qresync {
    uint32_t uidvalidity;
    uint64_t modseq;
    struct imap_seqset known_uids;      /* no "*"; empty when not given */
    int has_known_uids;
    struct imap_seqset seq_match, uid_match;   /* same size; has_match when given */
    int has_match;
};
void imap_qresync_init(struct imap_qresync *q);
void imap_qresync_fini(struct imap_qresync *q);

/* The select parameters (RFC 4466 section 2.1 select-params, RFC 7162 sections 3.1.8 and
 * 3.2.5): CONDSTORE and/or QRESYNC (...). */
struct imap_select_params {
    int condstore;
    int qresync;
    struct imap_qresync q;
};
void imap_select_params_init(struct imap_select_params *p);
void imap_select_params_fini(struct imap_select_params *p);

/* imap_select_params_parse: the parenthesized list a into p (init'ed by the caller). 0, or -1
 * with a reason for BAD in *err (static text). Unknown parameters are an error (RFC 4466
 * section 2.1: the server MUST reject unknown select parameters). */
int imap_select_params_parse(const struct imap_arg *a, struct imap_select_params *p,
                             const char **err);

/* imap_fetch_modifiers_parse: the FETCH modifier list a (RFC 4466 fetch-modifiers, RFC 7162
 * sections 3.1.4.1 and 3.2.6): (CHANGEDSINCE n [VANISHED]) in any order, each once.
 * *changedsince (0 when absent), *vanished. 0, or -1 with a reason in *err. VANISHED
 * without CHANGEDSINCE is an error (section 3.2.6). */
int imap_fetch_modifiers_parse(const struct imap_arg *a, uint64_t *changedsince, int *vanished,
                               const char **err);

/* imap_store_modifiers_parse: the STORE modifier list a (RFC 4466 store-modifiers, RFC 7162
 * section 3.1.3): (UNCHANGEDSINCE n), n may be 0. *has is set when present. 0, or -1 with a
 * reason in *err. */
int imap_store_modifiers_parse(const struct imap_arg *a, uint64_t *unchangedsince, int *has,
                               const char **err);

#endif
