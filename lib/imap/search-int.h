/* search-int.h: what the parts of the SEARCH engine (search.h) share: the program tree and
 * the needles. search-parse.c builds the tree, search-eval.c runs it on one message,
 * search-text.c holds the string matching (headers, bodies). The dates are imap/imap-date.h
 * (SINCE, BEFORE, ON) and mime/date.h (the SENT* keys' Date: field). */
#ifndef COFFER_IMAP_SEARCH_INT_H
#define COFFER_IMAP_SEARCH_INT_H
#include "imap/search.h"
#include "imap/imap-seqset.h"
#include "core/buf.h"
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* System flag bits, the same values as store/index.h's FLAG_* (the engine does not link the
 * store; search.h documents the values). */
#define SF_SEEN      0x01u
#define SF_ANSWERED  0x02u
#define SF_FLAGGED   0x04u
#define SF_DELETED   0x08u
#define SF_DRAFT     0x10u

enum skey {
    K_ALL, K_AND, K_OR, K_NOT,
    K_FLAG, K_UNFLAG,               /* a system flag set / not set */
    K_RECENT, K_NEW, K_OLD,
    K_KEYWORD, K_UNKEYWORD,
    K_LARGER, K_SMALLER,
    K_BEFORE, K_ON, K_SINCE,        /* internal date */
    K_SENTBEFORE, K_SENTON, K_SENTSINCE,
    K_OLDER, K_YOUNGER,             /* internal date against now (RFC 5032 WITHIN) */
    K_SEQ, K_UID,
    K_HEADER,                       /* HEADER, FROM, TO, CC, BCC, SUBJECT */
    K_BODY, K_TEXT,
    K_MODSEQ,                       /* RFC 7162 section 3.1.5: mod-sequence >= num */
    K_SAVEDBEFORE, K_SAVEDON, K_SAVEDSINCE, /* RFC 8514: the save date */
    K_SAVEDATESUPPORTED,
    K_EMAILID, K_THREADID,          /* RFC 8474 section 6: name holds the objectid */
};

/* Cost classes: what a key reads beyond the record. */
enum { COST_RECORD = 0, COST_HEADER = 1, COST_BODY = 2 };

struct needle {
    char *s;            /* as sent (UTF-8 or ASCII), NUL-terminated */
    size_t len;
    char *lower;        /* ASCII-lowercased copy, for the byte-level scans */
    uint32_t *border;   /* KMP table of lower: border[k] is the longest proper border of
                         * lower[0,k) (k = 1..len), so ci_find never re-reads the haystack */
    int ascii;          /* no byte >= 0x80 */
    int has_ws;         /* holds a space, tab, CR or LF */
    int has_colon;
    int has_sk;         /* holds s or k, which U+017F and U+212A fold to */
    char *folded;       /* mime_text_fold of s, for the header search column */
    size_t folded_len;
};

struct snode {
    enum skey key;
    int cost;
    struct snode **kids;
    size_t nkids;
    uint32_t flag;          /* K_FLAG/K_UNFLAG, K_KEYWORD on a system flag name */
    uint64_t num;           /* K_LARGER/K_SMALLER */
    int64_t day;            /* date keys; K_OLDER/K_YOUNGER: the cutoff, seconds since the
                             * epoch (now - interval, taken when the program is parsed) */
    struct imap_seqset set, resolved;  /* K_SEQ/K_UID */
    char *name;             /* keyword or header field name */
    int kwidx;              /* K_KEYWORD/K_UNKEYWORD: bit, or -1 (never set) */
    int kwsys;              /* the keyword names a system flag (flag) or \Recent (-1) */
    int addr;               /* K_HEADER of FROM/TO/CC/BCC: also match the parsed addresses */
    int col;                /* K_HEADER: the header search column field of name, or -1 */
    struct needle nd;
};

struct search_program {
    struct snode *root;
    unsigned needs;
    int uses_modseq;        /* a MODSEQ key somewhere (search_uses_modseq) */
    struct buf tmp;         /* scratch for decoding, reused from message to message */
};

/* ieq: a[0,alen) equals the NUL-terminated b, ignoring ASCII case. */
static inline int ieq(const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    return alen == bl && strncasecmp(a, b, bl) == 0;
}

/* ---- search-text.c ---- */

/* lower_tab_init: the ASCII folding table of the needles; call before needle_init. */
void lower_tab_init(void);
/* needle_init: nd for the search string s[0,len) (copied); needle_fini frees it. */
void needle_init(struct needle *nd, const char *s, size_t len);
void needle_fini(struct needle *nd);
/* header_field_match: 1 when nd occurs in a field name of the header block (decoded; with
 * addr also in its parsed addresses), else 0. tmp is scratch. */
int header_field_match(const char *hdr, size_t hlen, const char *name, int addr,
                       const struct needle *nd, struct buf *tmp);
/* addr_text_may_differ: whether the parsed addresses of address field value v[0,n) can hold
 * text its decoded value does not (then header_field_match parses them). */
int addr_text_may_differ(const char *v, size_t n);
/* header_text_match: 1 when nd occurs in any decoded field ("Name: value") of the block. */
int header_text_match(const char *hdr, size_t hlen, const struct needle *nd, struct buf *tmp);
/* body_match: 1 when nd occurs in the decoded text parts of msg (sec: its section table, or
 * NULL). */
int body_match(const char *msg, size_t len, const char *sec, size_t seclen,
               const struct needle *nd, struct buf *tmp);

#endif
