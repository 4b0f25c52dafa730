/* imap-listopts.c: LIST-EXTENDED arguments (RFC 5258 section 6) and STATUS item lists. */
#include "imap/imap-listopts.h"
#include "core/error.h"
#include <string.h>

static const struct { const char *name; unsigned bit; } status_items[IMAP_STATUS_ITEMS_MAX] = {
    { "MESSAGES", IMAP_STATUS_MESSAGES }, { "RECENT", IMAP_STATUS_RECENT },
    { "UIDNEXT", IMAP_STATUS_UIDNEXT }, { "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
    { "UNSEEN", IMAP_STATUS_UNSEEN }, { "DELETED", IMAP_STATUS_DELETED },
    { "SIZE", IMAP_STATUS_SIZE }, { "DELETED-STORAGE", IMAP_STATUS_DELETED_STORAGE },
    { "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
    { "MAILBOXID", IMAP_STATUS_MAILBOXID },
    { "APPENDLIMIT", IMAP_STATUS_APPENDLIMIT },
};

int imap_status_items_parse(const struct imap_arg *a, unsigned order[IMAP_STATUS_ITEMS_MAX],
                            size_t *n)
{
    *n = 0;
    if (a->type != IMAP_ARG_LIST || a->count == 0) return CF_E_PARSE;
    for (size_t i = 0; i < a->count; i++) {
        unsigned bit = 0;
        for (size_t k = 0; k < IMAP_STATUS_ITEMS_MAX; k++)
            if (imap_arg_atom_eq(&a->list[i], status_items[k].name)) bit = status_items[k].bit;
        if (!bit) return CF_E_PARSE;
        int dup = 0;
        for (size_t k = 0; k < *n; k++) dup |= order[k] == bit;
        if (!dup) order[(*n)++] = bit;   /* distinct known bits: never more than the table */
    }
    return 0;
}

const char *imap_status_item_name(unsigned item)
{
    for (size_t k = 0; k < IMAP_STATUS_ITEMS_MAX; k++)
        if (status_items[k].bit == item) return status_items[k].name;
    return "";
}

/* parse_select: list-select-opts "(" [option *(SP option)] ")". */
static int parse_select(struct imap_list_opts *o, const struct imap_arg *opts)
{
    static const struct { const char *name; unsigned bit; } sel[] = {
        { "SUBSCRIBED", IMAP_LIST_SEL_SUBSCRIBED }, { "REMOTE", IMAP_LIST_SEL_REMOTE },
        { "RECURSIVEMATCH", IMAP_LIST_SEL_RECURSIVEMATCH },
        { "SPECIAL-USE", IMAP_LIST_SEL_SPECIAL_USE },
    };
    for (size_t i = 0; i < opts->count; i++) {
        unsigned bit = 0;
        for (size_t k = 0; k < sizeof sel / sizeof sel[0]; k++)
            if (imap_arg_atom_eq(&opts->list[i], sel[k].name)) bit = sel[k].bit;
        if (!bit) return CF_E_PARSE;
        o->sel |= bit;
    }
    /* section 3.1: RECURSIVEMATCH "MUST NOT occur as the only selection option (or only with
     * REMOTE)" */
    if ((o->sel & IMAP_LIST_SEL_RECURSIVEMATCH) &&
        !(o->sel & (IMAP_LIST_SEL_SUBSCRIBED | IMAP_LIST_SEL_SPECIAL_USE)))
        return CF_E_PARSE;
    if (o->sel & IMAP_LIST_SEL_SUBSCRIBED) o->ret |= IMAP_LIST_RET_SUBSCRIBED;
    return 0;
}

/* parse_return: "RETURN" SP "(" [return-option *(SP return-option)] ")". */
static int parse_return(struct imap_list_opts *o, const struct imap_arg *kw,
                        const struct imap_arg *opts)
{
    if (!imap_arg_atom_eq(kw, "RETURN") || opts->type != IMAP_ARG_LIST) return CF_E_PARSE;
    for (size_t i = 0; i < opts->count; i++) {
        const struct imap_arg *a = &opts->list[i];
        if (imap_arg_atom_eq(a, "SUBSCRIBED")) o->ret |= IMAP_LIST_RET_SUBSCRIBED;
        else if (imap_arg_atom_eq(a, "CHILDREN")) o->ret |= IMAP_LIST_RET_CHILDREN;
        else if (imap_arg_atom_eq(a, "SPECIAL-USE")) o->ret |= IMAP_LIST_RET_SPECIAL_USE;
        else if (imap_arg_atom_eq(a, "STATUS") && !(o->ret & IMAP_LIST_RET_STATUS) &&
                 i + 1 < opts->count &&
                 !imap_status_items_parse(&opts->list[i + 1], o->status, &o->nstatus)) {
            o->ret |= IMAP_LIST_RET_STATUS;
            i++;
        } else {
            return CF_E_PARSE;
        }
    }
    return 0;
}

int imap_list_opts_parse(const struct imap_arg *args, size_t nargs, struct imap_list_opts *o,
                         const char **why)
{
    size_t a = 0;
    memset(o, 0, sizeof *o);
    *why = "LIST needs a reference and a mailbox pattern";
    if (nargs >= 1 && args[0].type == IMAP_ARG_LIST) {
        if (parse_select(o, &args[0])) {
            *why = "Unknown LIST selection option, or RECURSIVEMATCH without another one";
            return CF_E_PARSE;
        }
        if (args[0].count) o->extended = 1;
        a = 1;
    }
    size_t rest = nargs - a;
    if (rest != 2 && rest != 4) return CF_E_PARSE;
    o->ref = imap_arg_astring(&args[a]);
    if (!o->ref) return CF_E_PARSE;
    const struct imap_arg *p = &args[a + 1];
    if (p->type == IMAP_ARG_LIST) {
        if (!p->count || p->count > IMAP_LIST_PATTERNS_MAX) {
            *why = "LIST needs 1 to 16 mailbox patterns in its list";
            return CF_E_PARSE;
        }
        for (size_t i = 0; i < p->count; i++)
            if (!imap_arg_astring(&p->list[i])) return CF_E_PARSE;
        o->pats = p->list;
        o->npats = p->count;
        o->extended = 1;
    } else {
        if (!imap_arg_astring(p)) return CF_E_PARSE;
        o->pats = p;
        o->npats = 1;
    }
    if (rest == 4) {
        if (parse_return(o, &args[a + 2], &args[a + 3])) {
            *why = "Unknown or invalid LIST return option";
            return CF_E_PARSE;
        }
        o->extended = 1;
    }
    return 0;
}
