/* imap-condstore.c: parsing of the RFC 7162 (CONDSTORE, QRESYNC) client input. */
#include "imap/imap-condstore.h"
#include <string.h>

int imap_modseq_parse(const char *s, size_t len, int zero_ok, uint64_t *out)
{
    if (!s || !len || len > 19) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > IMAP_MODSEQ_MAX || (!v && !zero_ok)) return -1;
    *out = v;
    return 0;
}

int imap_modseq_arg(const struct imap_arg *a, int zero_ok, uint64_t *out)
{
    if (a->type != IMAP_ARG_ATOM) return -1;
    return imap_modseq_parse(a->s, a->len, zero_ok, out);
}

void imap_qresync_init(struct imap_qresync *q)
{
    memset(q, 0, sizeof *q);
    imap_seqset_init(&q->known_uids);
    imap_seqset_init(&q->seq_match);
    imap_seqset_init(&q->uid_match);
}

void imap_qresync_fini(struct imap_qresync *q)
{
    imap_seqset_fini(&q->known_uids);
    imap_seqset_fini(&q->seq_match);
    imap_seqset_fini(&q->uid_match);
}

void imap_select_params_init(struct imap_select_params *p)
{
    p->condstore = p->qresync = 0;
    imap_qresync_init(&p->q);
}

void imap_select_params_fini(struct imap_select_params *p) { imap_qresync_fini(&p->q); }

/* concrete_set: parse a as a sequence set without "*" and "$" (RFC 7162 known-uids and the
 * match data are sequence-set / known-uids = sequence-set of concrete numbers). */
static int concrete_set(const struct imap_arg *a, struct imap_seqset *out)
{
    const char *err;
    if (a->type != IMAP_ARG_ATOM) return -1;
    if (imap_seqset_parse(out, a->s, a->len, &err) < 0) return -1;
    if (out->star || out->saved) return -1;
    return 0;
}

static int parse_qresync(const struct imap_arg *a, struct imap_qresync *q, const char **err)
{
    uint32_t uv;
    if (a->type != IMAP_ARG_LIST || a->count < 2 || a->count > 4) {
        *err = "QRESYNC needs (uidvalidity modseq [known-uids [(seq-match uid-match)]])";
        return -1;
    }
    if (a->list[0].type != IMAP_ARG_ATOM || imap_arg_number(&a->list[0], &uv) < 0 || !uv) {
        *err = "Invalid QRESYNC uidvalidity";
        return -1;
    }
    q->uidvalidity = uv;
    if (imap_modseq_arg(&a->list[1], 0, &q->modseq) < 0) {
        *err = "Invalid QRESYNC mod-sequence";
        return -1;
    }
    size_t i = 2;
    if (i < a->count && a->list[i].type != IMAP_ARG_LIST) {
        if (concrete_set(&a->list[i], &q->known_uids) < 0) {
            *err = "Invalid QRESYNC known-uids";
            return -1;
        }
        q->has_known_uids = 1;
        i++;
    }
    if (i < a->count) {
        const struct imap_arg *m = &a->list[i];
        if (m->type != IMAP_ARG_LIST || m->count != 2 ||
            concrete_set(&m->list[0], &q->seq_match) < 0 ||
            concrete_set(&m->list[1], &q->uid_match) < 0 ||
            imap_seqset_size(&q->seq_match) != imap_seqset_size(&q->uid_match)) {
            *err = "Invalid QRESYNC sequence match data";
            return -1;
        }
        q->has_match = 1;
        i++;
    }
    if (i != a->count) {
        *err = "Invalid QRESYNC parameter";
        return -1;
    }
    return 0;
}

int imap_select_params_parse(const struct imap_arg *a, struct imap_select_params *p,
                             const char **err)
{
    if (a->type != IMAP_ARG_LIST || !a->count) {
        *err = "Select parameters must be a non-empty list";
        return -1;
    }
    for (size_t i = 0; i < a->count; i++) {
        const struct imap_arg *x = &a->list[i];
        if (imap_arg_atom_eq(x, "CONDSTORE") && x->type == IMAP_ARG_ATOM) {
            if (p->condstore) goto dup;
            p->condstore = 1;
        } else if (imap_arg_atom_eq(x, "QRESYNC") && x->type == IMAP_ARG_ATOM) {
            if (p->qresync) goto dup;
            if (i + 1 >= a->count) {
                *err = "QRESYNC needs its parameter list";
                return -1;
            }
            if (parse_qresync(&a->list[++i], &p->q, err) < 0) return -1;
            p->qresync = 1;
        } else {
            *err = "Unknown select parameter";
            return -1;
        }
    }
    return 0;
dup:
    *err = "Select parameter given twice";
    return -1;
}

int imap_fetch_modifiers_parse(const struct imap_arg *a, uint64_t *changedsince, int *vanished,
                               const char **err)
{
    *changedsince = 0;
    *vanished = 0;
    int have_cs = 0;
    if (a->type != IMAP_ARG_LIST || !a->count) {
        *err = "FETCH modifiers must be a non-empty list";
        return -1;
    }
    for (size_t i = 0; i < a->count; i++) {
        const struct imap_arg *x = &a->list[i];
        if (x->type == IMAP_ARG_ATOM && imap_arg_atom_eq(x, "CHANGEDSINCE")) {
            /* RFC 7162 section 3.1.4.1: mod-sequence-value (not 0), and RFC 4466 section 2.4:
             * a modifier at most once */
            if (have_cs || i + 1 >= a->count ||
                imap_modseq_arg(&a->list[i + 1], 0, changedsince) < 0) {
                *err = "CHANGEDSINCE needs one mod-sequence value";
                return -1;
            }
            have_cs = 1;
            i++;
        } else if (x->type == IMAP_ARG_ATOM && imap_arg_atom_eq(x, "VANISHED")) {
            if (*vanished) {
                *err = "VANISHED given twice";
                return -1;
            }
            *vanished = 1;
        } else {
            *err = "Unknown FETCH modifier";
            return -1;
        }
    }
    if (*vanished && !have_cs) {
        /* RFC 7162 section 3.2.6: VANISHED only with CHANGEDSINCE */
        *err = "VANISHED needs CHANGEDSINCE";
        return -1;
    }
    return 0;
}

int imap_store_modifiers_parse(const struct imap_arg *a, uint64_t *unchangedsince, int *has,
                               const char **err)
{
    *has = 0;
    *unchangedsince = 0;
    if (a->type != IMAP_ARG_LIST || !a->count) {
        *err = "STORE modifiers must be a non-empty list";
        return -1;
    }
    for (size_t i = 0; i < a->count; i++) {
        const struct imap_arg *x = &a->list[i];
        if (x->type == IMAP_ARG_ATOM && imap_arg_atom_eq(x, "UNCHANGEDSINCE")) {
            if (*has || i + 1 >= a->count ||
                imap_modseq_arg(&a->list[i + 1], 1, unchangedsince) < 0) {
                *err = "UNCHANGEDSINCE needs one mod-sequence value";
                return -1;
            }
            *has = 1;
            i++;
        } else {
            *err = "Unknown STORE modifier";
            return -1;
        }
    }
    return 0;
}
