/* imap-thread.c: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 section 3) over
 * precomputed keys (imap-thread.h). The containers of the REFERENCES algorithm live in one
 * array and point at each other by index; the message-id and subject tables are open-address
 * hash tables over borrowed strings, so threading n messages makes O(1) allocations that grow
 * geometrically, and nothing recurses (a 100,000-deep reply chain must not exhaust the
 * stack). */
#include "imap/imap-thread.h"
#include "imap/imap-sort.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

#define NONE (-1)

struct node {
    int32_t parent, first, last, next;
    int32_t msg;            /* index into msgs, or NONE for a dummy (and the root) */
    int32_t pos;            /* step 6: the index in the root list */
};

struct forest {
    const struct thread_msg *msgs;
    struct node *nodes;
    size_t count, alloc;
    /* message-id table: slots hold node index + 1 (0 empty); an id is its hash and, unless
     * the ids are hashes only (thread_references_hashed), its bytes */
    int32_t *slots;
    const char **ids;
    size_t *idlens;
    uint64_t *hashes;
    size_t nslots, used;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int32_t node_new(struct forest *f, int32_t msg)
{
    if (f->count == f->alloc) {
        f->alloc = f->alloc ? f->alloc * 2 : 64;
        f->nodes = xreallocarray(f->nodes, f->alloc, sizeof(*f->nodes));
        f->ids = xreallocarray(f->ids, f->alloc, sizeof(*f->ids));
        f->idlens = xreallocarray(f->idlens, f->alloc, sizeof(*f->idlens));
        f->hashes = xreallocarray(f->hashes, f->alloc, sizeof(*f->hashes));
    }
    struct node *n = &f->nodes[f->count];
    n->parent = n->first = n->last = n->next = NONE;
    n->msg = msg;
    n->pos = NONE;
    f->ids[f->count] = NULL;
    f->idlens[f->count] = 0;
    f->hashes[f->count] = 0;
    return (int32_t)f->count++;
}

static void table_grow(struct forest *f)
{
    size_t nn = f->nslots ? f->nslots * 2 : 1024;
    int32_t *ns = xzmalloc(nn * sizeof(*ns));
    for (size_t i = 0; i < f->nslots; i++) {
        int32_t v = f->slots[i];
        if (!v) continue;
        size_t h = (size_t)f->hashes[v - 1] & (nn - 1);
        while (ns[h]) h = (h + 1) & (nn - 1);
        ns[h] = v;
    }
    free(f->slots);
    f->slots = ns;
    f->nslots = nn;
}

/* id_find: the container of the id with hash hv and bytes id[0,len) (id NULL: the hash alone
 * names it); created (as a dummy) when create is set and there is none. NONE when absent and
 * not created. */
static int32_t id_find(struct forest *f, const char *id, size_t len, uint64_t hv, int create)
{
    if (f->used * 2 >= f->nslots) table_grow(f);
    size_t h = (size_t)hv & (f->nslots - 1);
    while (f->slots[h]) {
        int32_t v = f->slots[h] - 1;
        if (f->hashes[v] == hv &&
            (!id || (f->idlens[v] == len && memcmp(f->ids[v], id, len) == 0)))
            return v;
        h = (h + 1) & (f->nslots - 1);
    }
    if (!create) return NONE;
    int32_t v = node_new(f, NONE);
    f->ids[v] = id;
    f->idlens[v] = len;
    f->hashes[v] = hv;
    f->slots[h] = v + 1;
    f->used++;
    return v;
}

static void child_append(struct forest *f, int32_t parent, int32_t kid)
{
    struct node *p = &f->nodes[parent], *k = &f->nodes[kid];
    k->parent = parent;
    k->next = NONE;
    if (p->last == NONE) p->first = kid;
    else f->nodes[p->last].next = kid;
    p->last = kid;
}

static void child_unlink(struct forest *f, int32_t kid)
{
    int32_t parent = f->nodes[kid].parent, prev = NONE;
    if (parent == NONE) return;
    struct node *p = &f->nodes[parent];
    for (int32_t x = p->first; x != NONE; prev = x, x = f->nodes[x].next) {
        if (x != kid) continue;
        if (prev == NONE) p->first = f->nodes[x].next;
        else f->nodes[prev].next = f->nodes[x].next;
        if (p->last == kid) p->last = prev;
        break;
    }
    f->nodes[kid].parent = NONE;
    f->nodes[kid].next = NONE;
}

/* would_loop: making kid a child of parent would close a loop (kid is parent or one of its
 * ancestors). */
static int would_loop(const struct forest *f, int32_t parent, int32_t kid)
{
    /* a container without children is no one's ancestor: the common case costs nothing */
    if (f->nodes[kid].first == NONE) return parent == kid;
    for (int32_t x = parent; x != NONE; x = f->nodes[x].parent)
        if (x == kid) return 1;
    return 0;
}

/* The sort key of a container (RFC 5256 section 3 steps 5 and 7): its message's sent date
 * and mailbox order; a dummy's first child's. */
static const struct thread_msg *node_key(const struct forest *f, int32_t x)
{
    while (f->nodes[x].msg == NONE && f->nodes[x].first != NONE) x = f->nodes[x].first;
    return f->nodes[x].msg == NONE ? NULL : &f->msgs[f->nodes[x].msg];
}

static int msg_cmp_date(const struct thread_msg *a, const struct thread_msg *b)
{
    if (!a || !b) return a ? -1 : b ? 1 : 0;
    if (a->date != b->date) return a->date < b->date ? -1 : 1;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    return 0;
}

struct keyed { const struct thread_msg *key; int32_t node; };

static int keyed_cmp(const void *pa, const void *pb)
{
    const struct keyed *a = pa, *b = pb;
    return msg_cmp_date(a->key, b->key);
}

/* sort_kids: order the children of x by sent date (tmp: scratch, grown as needed). */
static void sort_kids(struct forest *f, int32_t x, struct keyed **tmp, size_t *tmpn)
{
    size_t k = 0;
    for (int32_t c = f->nodes[x].first; c != NONE; c = f->nodes[c].next) k++;
    if (k < 2) return;
    if (k > *tmpn) {
        *tmpn = k;
        *tmp = xreallocarray(*tmp, k, sizeof(**tmp));
    }
    k = 0;
    for (int32_t c = f->nodes[x].first; c != NONE; c = f->nodes[c].next) {
        (*tmp)[k].key = node_key(f, c);
        (*tmp)[k++].node = c;
    }
    qsort(*tmp, k, sizeof(**tmp), keyed_cmp);
    f->nodes[x].first = (*tmp)[0].node;
    for (size_t i = 0; i + 1 < k; i++) f->nodes[(*tmp)[i].node].next = (*tmp)[i + 1].node;
    f->nodes[(*tmp)[k - 1].node].next = NONE;
    f->nodes[x].last = (*tmp)[k - 1].node;
}

/* sort_all: every sibling set under root, deepest first (step 7): a breadth-first list taken
 * backwards visits children before their parents. */
static void sort_all(struct forest *f, int32_t root)
{
    int32_t *order = xreallocarray(NULL, f->count, sizeof(*order));
    size_t n = 0, tmpn = 0;
    struct keyed *tmp = NULL;
    order[n++] = root;
    for (size_t i = 0; i < n; i++)
        for (int32_t c = f->nodes[order[i]].first; c != NONE; c = f->nodes[c].next)
            order[n++] = c;
    while (n--) sort_kids(f, order[n], &tmp, &tmpn);
    free(tmp);
    free(order);
}

/* prune: step 4, from the root down without recursion. */
static void prune(struct forest *f, int32_t root)
{
    int32_t *stack = xreallocarray(NULL, f->count, sizeof(*stack));
    size_t sp = 0;
    stack[sp++] = root;
    while (sp) {
        int32_t p = stack[--sp];
        int32_t prev = NONE, x = f->nodes[p].first;
        while (x != NONE) {
            struct node *n = &f->nodes[x];
            int32_t next = n->next;
            if (n->msg == NONE && n->first == NONE) {
                /* a dummy without children: dropped */
                if (prev == NONE) f->nodes[p].first = next;
                else f->nodes[prev].next = next;
                if (f->nodes[p].last == x) f->nodes[p].last = prev;
                n->parent = NONE;
                x = next;
                continue;
            }
            if (n->msg == NONE && (p != root || n->first == n->last)) {
                /* a dummy with children: they take its place (not to the root level unless
                 * there is only one) and are looked at again */
                int32_t first = n->first, last = n->last;
                for (int32_t c = first; c != NONE; c = f->nodes[c].next) f->nodes[c].parent = p;
                if (prev == NONE) f->nodes[p].first = first;
                else f->nodes[prev].next = first;
                f->nodes[last].next = next;
                if (f->nodes[p].last == x) f->nodes[p].last = last;
                n->first = n->last = n->parent = n->next = NONE;
                x = first;
                continue;
            }
            stack[sp++] = x;
            prev = x;
            x = next;
        }
    }
    free(stack);
}

/* The subject table of step 6: slots hold node index + 1, and beside each the hash of its
 * subject, so a probe reads another root's subject only when the hashes agree. */
struct subjtab {
    int32_t *slots;
    uint64_t *hashes;
    size_t nslots;
};

static const struct thread_msg *root_subject_msg(const struct forest *f, int32_t x)
{
    if (f->nodes[x].msg == NONE) x = f->nodes[x].first;
    return x == NONE || f->nodes[x].msg == NONE ? NULL : &f->msgs[f->nodes[x].msg];
}

static int32_t *subj_slot(struct subjtab *t, const struct forest *f, const struct thread_msg *m,
                          uint64_t hv)
{
    size_t h = (size_t)hv & (t->nslots - 1);
    while (t->slots[h]) {
        if (t->hashes[h] == hv) {
            const struct thread_msg *o = root_subject_msg(f, t->slots[h] - 1);
            if (o && o->subject_len == m->subject_len &&
                memcmp(o->subject, m->subject, m->subject_len) == 0)
                break;
        }
        h = (h + 1) & (t->nslots - 1);
    }
    /* an empty slot gets the hash now: the caller may fill it, and one of this subject only */
    if (!t->slots[h]) t->hashes[h] = hv;
    return &t->slots[h];
}

/* merge_subjects: step 6 over the root's children. */
static void merge_subjects(struct forest *f, int32_t root)
{
    size_t nroots = 0;
    for (int32_t c = f->nodes[root].first; c != NONE; c = f->nodes[c].next) nroots++;
    if (nroots < 2) return;
    int32_t *roots = xreallocarray(NULL, nroots, sizeof(*roots));
    size_t k = 0;
    for (int32_t c = f->nodes[root].first; c != NONE; c = f->nodes[c].next) {
        f->nodes[c].pos = (int32_t)k;
        roots[k++] = c;
    }
    struct subjtab t;
    t.nslots = 16;
    while (t.nslots < nroots * 2) t.nslots *= 2;
    t.slots = xzmalloc(t.nslots * sizeof(*t.slots));
    t.hashes = xreallocarray(NULL, t.nslots, sizeof(*t.hashes));
    /* each root's subject hashed once, for both passes */
    uint64_t *rh = xreallocarray(NULL, nroots, sizeof(*rh));
    for (size_t i = 0; i < nroots; i++) {
        const struct thread_msg *m = root_subject_msg(f, roots[i]);
        rh[i] = m ? hash_bytes(m->subject, m->subject_len) : 0;
    }
    /* C: the container each subject is merged into */
    for (size_t i = 0; i < nroots; i++) {
        int32_t x = roots[i];
        const struct thread_msg *m = root_subject_msg(f, x);
        if (!m || !m->subject_len) continue;
        int32_t *slot = subj_slot(&t, f, m, rh[i]);
        if (!*slot) { *slot = x + 1; continue; }
        int32_t o = *slot - 1;
        int xd = f->nodes[x].msg == NONE, od = f->nodes[o].msg == NONE;
        if ((xd && !od) ||
            (!xd && !od && f->msgs[f->nodes[o].msg].reply && !f->msgs[f->nodes[x].msg].reply))
            *slot = x + 1;
    }
    /* D and E: merge each other root into the table's container */
    for (size_t i = 0; i < nroots; i++) {
        int32_t x = roots[i];
        if (x == NONE) continue;
        const struct thread_msg *m = root_subject_msg(f, x);
        if (!m || !m->subject_len) continue;
        int32_t *slot = subj_slot(&t, f, m, rh[i]);
        int32_t o = *slot - 1;
        if (o == x) continue;
        int xd = f->nodes[x].msg == NONE, od = f->nodes[o].msg == NONE;
        int xr = !xd && f->msgs[f->nodes[x].msg].reply;
        int orr = !od && f->msgs[f->nodes[o].msg].reply;
        if (xd && od) {
            while (f->nodes[x].first != NONE) {
                int32_t c = f->nodes[x].first;
                child_unlink(f, c);
                child_append(f, o, c);
            }
            roots[i] = NONE;
        } else if (od || (!xd && !orr && xr)) {
            roots[i] = NONE;
            child_append(f, o, x);
        } else if (xd || (orr && !xr)) {
            /* (not reached after step C, which prefers these) */
            roots[f->nodes[o].pos] = NONE;
            child_append(f, x, o);
            *slot = x + 1;
        } else {
            int32_t d = node_new(f, NONE);
            f->nodes[d].pos = f->nodes[o].pos;
            roots[f->nodes[d].pos] = d;
            roots[i] = NONE;
            child_append(f, d, o);
            child_append(f, d, x);
            *slot = d + 1;
        }
    }
    /* the new root list */
    f->nodes[root].first = f->nodes[root].last = NONE;
    for (size_t i = 0; i < nroots; i++) {
        if (roots[i] == NONE) continue;
        f->nodes[roots[i]].parent = NONE;
        child_append(f, root, roots[i]);
    }
    free(t.slots);
    free(t.hashes);
    free(rh);
    free(roots);
}

/* print_forest: the thread-list of the root's children (RFC 5256 section 4): a message with
 * one child is followed by it ("1 2"), one with several by each in parentheses
 * ("1 (2)(3)"); a dummy prints nothing of its own. Iterative: items on the stack are node
 * indexes (bit 0 of the value: a space goes before the number) or the literals below. */
enum { LIT_OPEN = -1, LIT_CLOSE = -2, LIT_SPACE = -3 };

/* put_num: v in decimal, after a space when space is set (a printf per number costs more
 * than the threading of a 100,000-message mailbox). */
static void put_num(struct buf *out, int space, uint32_t v)
{
    if (space) buf_putc(out, ' ');
    buf_putu32(out, v);
}

static void print_forest(const struct forest *f, int32_t root, struct buf *out)
{
    int64_t *stack = NULL;
    size_t sp = 0, alloc = 0;
#define PUSH(v) do { \
        if (sp == alloc) { alloc = alloc ? alloc * 2 : 256; \
                           stack = xreallocarray(stack, alloc, sizeof(*stack)); } \
        stack[sp++] = (v); } while (0)
    for (int32_t r = f->nodes[root].first; r != NONE; r = f->nodes[r].next) {
        PUSH(LIT_CLOSE);
        PUSH((int64_t)r * 2);
        PUSH(LIT_OPEN);
        while (sp) {
            int64_t v = stack[--sp];
            if (v == LIT_OPEN) { buf_putc(out, '('); continue; }
            if (v == LIT_CLOSE) { buf_putc(out, ')'); continue; }
            if (v == LIT_SPACE) { buf_putc(out, ' '); continue; }
            int32_t x = (int32_t)(v / 2);
            const struct node *n = &f->nodes[x];
            if (n->msg != NONE)
                put_num(out, (v & 1) != 0, f->msgs[n->msg].num);
            if (n->first == NONE) continue;
            if (n->first == n->last) {
                PUSH((int64_t)n->first * 2 + (n->msg != NONE));
                continue;
            }
            /* several children: pushed backwards so the first comes out first */
            size_t k = 0;
            for (int32_t c = n->first; c != NONE; c = f->nodes[c].next) k++;
            for (size_t i = 0; i < k; i++) { PUSH(0); PUSH(0); PUSH(0); }
            size_t at = sp;
            for (int32_t c = n->first; c != NONE; c = f->nodes[c].next) {
                stack[--at] = LIT_OPEN;
                stack[--at] = (int64_t)c * 2;
                stack[--at] = LIT_CLOSE;
            }
            if (n->msg != NONE) PUSH(LIT_SPACE);
        }
    }
#undef PUSH
    free(stack);
}

static void forest_fini(struct forest *f)
{
    free(f->nodes);
    free(f->ids);
    free(f->idlens);
    free(f->hashes);
    free(f->slots);
}

static void references_run(const struct thread_msg *msgs, size_t n, int hashed,
                           struct buf *out)
{
    struct forest f;
    memset(&f, 0, sizeof(f));
    f.msgs = msgs;
    /* sized for the common case up front (a message and a referenced id or two each), so
     * neither the node arrays nor the id table grow while 100,000 messages go in */
    f.alloc = 2 * n + 64;
    f.nodes = xreallocarray(NULL, f.alloc, sizeof(*f.nodes));
    f.ids = xreallocarray(NULL, f.alloc, sizeof(*f.ids));
    f.idlens = xreallocarray(NULL, f.alloc, sizeof(*f.idlens));
    f.hashes = xreallocarray(NULL, f.alloc, sizeof(*f.hashes));
    f.nslots = 1024;
    while (f.nslots < 4 * n) f.nslots *= 2;
    f.slots = xzmalloc(f.nslots * sizeof(*f.slots));
    int32_t root = node_new(&f, NONE);
    for (size_t i = 0; i < n; i++) {
        const struct thread_msg *m = &msgs[i];
        const char *myid = NULL, *id, *p, *end;
        size_t mylen = 0, len;
        if (hashed) {
            /* the same steps over ids the caller extracted and hashed */
            int32_t prev = NONE, me = NONE;
            for (uint32_t k = 0; k < m->nparents; k++) {
                uint64_t hv = 0;
                for (int b = 7; b >= 0; b--) hv = (hv << 8) | m->parents[k * 8 + (unsigned)b];
                int32_t c = id_find(&f, NULL, 0, hv, 1);
                if (prev != NONE && f.nodes[c].parent == NONE && !would_loop(&f, prev, c))
                    child_append(&f, prev, c);
                prev = c;
            }
            if (m->has_id) {
                me = id_find(&f, NULL, 0, m->id_hash, 1);
                if (f.nodes[me].msg != NONE) me = NONE;
            }
            if (me == NONE) me = node_new(&f, (int32_t)i);
            else f.nodes[me].msg = (int32_t)i;
            child_unlink(&f, me);
            if (prev != NONE && !would_loop(&f, prev, me)) child_append(&f, prev, me);
            continue;
        }
        if (m->msgid) {
            p = m->msgid;
            if (!imap_msgid_next(&p, m->msgid + m->msgid_len, &myid, &mylen)) myid = NULL;
        }
        /* step 1A: the References ids linked in order (In-Reply-To's first id when
         * References has none), existing links kept, no loops; the message's own id is
         * left out of its references */
        int32_t prev = NONE;
        int any = 0;
        for (int pass = 0; pass < 2 && !any; pass++) {
            p = pass ? m->irt : m->refs;
            if (!p) continue;
            end = p + (pass ? m->irt_len : m->refs_len);
            while (imap_msgid_next(&p, end, &id, &len)) {
                if (myid && len == mylen && memcmp(id, myid, len) == 0) continue;
                int32_t c = id_find(&f, id, len, hash_bytes(id, len), 1);
                any = 1;
                if (prev != NONE && f.nodes[c].parent == NONE && !would_loop(&f, prev, c))
                    child_append(&f, prev, c);
                prev = c;
                if (pass) break;
            }
        }
        /* step 1B: the message's container (a fresh one for no id or a duplicate id) */
        int32_t me = NONE;
        if (myid) {
            me = id_find(&f, myid, mylen, hash_bytes(myid, mylen), 1);
            if (f.nodes[me].msg != NONE) me = NONE;
        }
        if (me == NONE) me = node_new(&f, (int32_t)i);
        else f.nodes[me].msg = (int32_t)i;
        /* step 1C: its parent is the last reference; an older link gives way */
        child_unlink(&f, me);
        if (prev != NONE && !would_loop(&f, prev, me)) child_append(&f, prev, me);
    }
    /* step 2: the root set */
    for (size_t x = 1; x < f.count; x++)
        if (f.nodes[x].parent == NONE) child_append(&f, root, (int32_t)x);
    /* steps 4 to 7 */
    prune(&f, root);
    sort_all(&f, root);
    merge_subjects(&f, root);
    sort_all(&f, root);
    print_forest(&f, root, out);
    forest_fini(&f);
}

void thread_references(const struct thread_msg *msgs, size_t n, struct buf *out)
{
    references_run(msgs, n, 0, out);
}

void thread_references_hashed(const struct thread_msg *msgs, size_t n, struct buf *out)
{
    references_run(msgs, n, 1, out);
}

static int subj_date_cmp(const void *pa, const void *pb)
{
    const struct thread_msg *a = *(const struct thread_msg *const *)pa;
    const struct thread_msg *b = *(const struct thread_msg *const *)pb;
    size_t l = a->subject_len < b->subject_len ? a->subject_len : b->subject_len;
    int c = l ? memcmp(a->subject, b->subject, l) : 0;
    if (c) return c;
    if (a->subject_len != b->subject_len) return a->subject_len < b->subject_len ? -1 : 1;
    return msg_cmp_date(a, b);
}

void thread_orderedsubject(const struct thread_msg *msgs, size_t n, struct buf *out)
{
    /* RFC 5256 section 3, ORDEREDSUBJECT: sorted by base subject then sent date; each run of
     * one subject is a thread whose first message is the parent of the others; threads in
     * the order of their first messages' sent dates */
    struct forest f;
    memset(&f, 0, sizeof(f));
    f.msgs = msgs;
    if (!n) return;
    const struct thread_msg **v = xreallocarray(NULL, n, sizeof(*v));
    for (size_t i = 0; i < n; i++) v[i] = &msgs[i];
    qsort(v, n, sizeof(*v), subj_date_cmp);
    int32_t root = node_new(&f, NONE), top = NONE;
    for (size_t i = 0; i < n; i++) {
        int32_t x = node_new(&f, (int32_t)(v[i] - msgs));
        if (i && top != NONE && v[i]->subject_len == v[i - 1]->subject_len &&
            memcmp(v[i]->subject, v[i - 1]->subject, v[i]->subject_len) == 0) {
            child_append(&f, top, x);
        } else {
            child_append(&f, root, x);
            top = x;
        }
    }
    struct keyed *tmp = NULL;
    size_t tmpn = 0;
    sort_kids(&f, root, &tmp, &tmpn);
    free(tmp);
    free(v);
    print_forest(&f, root, out);
    forest_fini(&f);
}
