/* imapurl.c: IMAP URLs in imapd: the data a URL names, read with the rights of FETCH, and
 * URLAUTH tokens (RFC 4467) over the store's mailbox access keys; see imapurl.h. */
#include "imapurl.h"
#include "imapd.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include "store/acl.h"
#include "store/mail.h"
#include "store/mboxlist.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* url_mailbox: the internal name of u's mailbox as owner names it (or base for a relative
 * URL) into name. 0 or CF_E_NOTFOUND. */
static int url_mailbox(const struct imap_url *u, const char *owner, const char *base,
                       struct buf *name)
{
    if (!u->mailbox) {
        if (!base) return CF_E_NOTFOUND;
        buf_reset(name);
        buf_appends(name, base);
        return 0;
    }
    return mboxname_from_external(owner, u->mailbox, name) ? CF_E_NOTFOUND : 0;
}

struct filter_rock {
    const struct strarr *fields;
    int not;
    struct buf *out;
};

static int filter_cb(void *rock, const char *name, size_t name_len, const char *field,
                     size_t field_len)
{
    struct filter_rock *fr = rock;
    int match = 0;
    for (size_t i = 0; name && i < fr->fields->count; i++)
        if (strlen(fr->fields->v[i]) == name_len && !strncasecmp(fr->fields->v[i], name, name_len))
            match = 1;
    if (!name || match == fr->not) return 0;
    buf_append(fr->out, field, field_len);
    if (field[field_len - 1] != '\n') buf_appends(fr->out, "\r\n");
    return 0;
}

/* header_part: a header block as the section text asks (all of it, or the fields named) */
static void header_part(const struct imap_url_section *sec, const char *h, size_t len,
                        struct buf *out)
{
    if (sec->text == IMAP_SECTION_HEADER) {
        buf_append(out, h, len);
        return;
    }
    struct filter_rock fr = { &sec->fields, sec->text == IMAP_SECTION_HEADER_FIELDS_NOT, out };
    mime_header_foreach_raw(h, len, filter_cb, &fr);
    buf_appends(out, "\r\n");
}

/* decode_cte: body[0,len) decoded per the Content-Transfer-Encoding field of header h into
 * out (RFC 2045 section 6; 7bit, 8bit, binary and none are identity). 0 or CF_E_NOTFOUND for
 * an encoding this server does not know (RFC 3516's UNKNOWN-CTE case: the URL names nothing
 * it can deliver). This is the minimal decoding URLAUTH=BINARY needs; FETCH BINARY has its
 * own (cmd-fetch.c), to be shared once both are in. */
static int decode_cte(const char *h, size_t hlen, const char *body, size_t len, struct buf *out)
{
    const char *v;
    size_t vl;
    struct buf cte = BUF_INIT;
    if (mime_header_find(h, hlen, "Content-Transfer-Encoding", &v, &vl) == 1)
        mime_header_unfold(v, vl, &cte);
    while (cte.len && (cte.s[cte.len - 1] == ' ' || cte.s[cte.len - 1] == '\t')) cte.len--;
    const char *name = buf_cstr(&cte);
    int r = 0;
    if (!*name || !strcasecmp(name, "7bit") || !strcasecmp(name, "8bit") ||
        !strcasecmp(name, "binary"))
        buf_append(out, body, len);
    else if (!strcasecmp(name, "base64"))
        mime_decode_base64(body, len, out);
    else if (!strcasecmp(name, "quoted-printable"))
        mime_decode_qp(body, len, 0, out);
    else
        r = CF_E_NOTFOUND;
    buf_fini(&cte);
    return r;
}

/* section_data: the bytes of the section of message msg[0,len) into out */
static int section_data(struct mail *m, const char *msg, size_t len, const struct imap_url *u,
                        enum imapurl_want want, struct buf *out, struct buf *bs)
{
    struct imap_url_section sec;
    int r = imap_url_section_parse(u->section ? u->section : "", &sec);
    if (r) goto done;
    /* the MIME header and body of the part named (the whole message for no part numbers) */
    const char *h = msg, *body;
    size_t hlen, blen;
    const char *top_h;
    size_t top_hl;
    if ((r = mail_header(m, &top_h, &top_hl)) < 0) goto done;
    hlen = top_hl <= len ? top_hl : len;
    body = msg + hlen;
    blen = len - hlen;
    int is_msg = 1;     /* the part is a message: HEADER and TEXT apply */
    if (sec.nparts) {
        char spec[32 * 11 + 1];
        size_t sl = 0;
        for (size_t i = 0; i < sec.nparts; i++)
            sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%s%u", i ? "." : "",
                                   (unsigned)sec.parts[i]);
        struct mime_section ms;
        r = mail_section_find(m, spec, &ms);
        if (r == 0) r = CF_E_NOTFOUND;
        if (r < 0) goto done;
        r = 0;
        /* the table comes from the cache file: check its offsets */
        if (ms.header_off > len || ms.header_len > len - ms.header_off || ms.body_off > len ||
            ms.body_len > len - ms.body_off || ms.msg_header_len > ms.body_len) {
            r = CF_E_NOTFOUND;
            goto done;
        }
        h = msg + ms.header_off;
        hlen = (size_t)ms.header_len;
        body = msg + ms.body_off;
        blen = (size_t)ms.body_len;
        is_msg = ms.is_message_rfc822;
        if (is_msg && sec.text != IMAP_SECTION_NONE && sec.text != IMAP_SECTION_MIME) {
            /* HEADER/TEXT of an encapsulated message: its own header and body */
            h = body;
            hlen = (size_t)ms.msg_header_len;
            body += hlen;
            blen -= hlen;
        }
    }
    switch (sec.text) {
    case IMAP_SECTION_MIME:
        buf_append(out, h, hlen);
        break;
    case IMAP_SECTION_HEADER:
    case IMAP_SECTION_HEADER_FIELDS:
    case IMAP_SECTION_HEADER_FIELDS_NOT:
        if (!is_msg) {
            r = CF_E_NOTFOUND;
            goto done;
        }
        header_part(&sec, h, hlen, out);
        break;
    case IMAP_SECTION_TEXT:
        if (!is_msg) {
            r = CF_E_NOTFOUND;
            goto done;
        }
        buf_append(out, body, blen);
        break;
    default:
        if (!sec.nparts) {
            buf_append(out, msg, len);      /* the whole message */
        } else {
            if (want == IMAPURL_BINARY) r = decode_cte(h, hlen, body, blen, out);
            else buf_append(out, body, blen);
            if (r) goto done;
        }
        break;
    }
    /* RFC 5524 section 3: BODYPARTSTRUCTURE of the part: its MIME header and body read as
     * a message of their own, which is what the part's BODYSTRUCTURE describes */
    if (bs) {
        struct mime_summary sum;
        mime_summary_init(&sum);
        struct buf whole = BUF_INIT;
        if (sec.nparts && sec.text == IMAP_SECTION_NONE) {
            buf_append(&whole, h, hlen);
            buf_append(&whole, body, blen);
        } else {
            buf_append(&whole, msg, len);
        }
        mime_summarize(whole.s ? whole.s : "", whole.len, &sum);
        buf_append(bs, sum.bodystructure.s ? sum.bodystructure.s : "", sum.bodystructure.len);
        buf_fini(&whole);
        mime_summary_fini(&sum);
    }
done:
    imap_url_section_fini(&sec);
    return r;
}

int imapurl_fetch(struct client *c, const struct imap_url *u, const char *owner, int owner_admin,
                  const char *base, enum imapurl_want want, struct buf *out,
                  struct buf *bodystructure)
{
    struct buf name = BUF_INIT, data = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct mailbox *mb = NULL;
    struct mail *m = NULL;
    int r = c->store ? url_mailbox(u, owner, base, &name) : CF_E_AGAIN;
    if (r) goto done;
    /* the FETCH rule (RFC 4314 section 4): 'r' on the mailbox, for the owner */
    r = store_lookup(c->store, buf_cstr(&name), &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto done;
    unsigned mask = acl_user_rights(e.acl, buf_cstr(&name), owner, owner_admin);
    char rights[32];
    if (!strchr(acl_format_rights(mask, rights), 'r')) {
        r = CF_E_NOTFOUND;
        goto done;
    }
    r = store_open_mailbox(c->store, buf_cstr(&name), NULL, &mb);
    if (r) goto done;
    if (u->uidvalidity && u->uidvalidity != mailbox_header(mb)->uidvalidity) {
        r = CF_E_NOTFOUND;
        goto done;
    }
    m = mail_new(mb);
    mail_set_uid(m, u->uid);
    const struct index_record *rec;
    r = mail_record(m, &rec);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) goto done;
    const char *msg;
    size_t len;
    if ((r = mail_message(m, &msg, &len)) < 0) goto done;
    r = section_data(m, msg, len, u, want, &data, bodystructure);
    if (r) goto done;
    /* RFC 5092 section 5: ;PARTIAL=offset[.length] of the data (decoded for BINARY) */
    size_t off = 0, n = data.len;
    if (u->has_partial) {
        off = u->partial_offset < data.len ? u->partial_offset : data.len;
        n = data.len - off;
        if (u->partial_length && u->partial_length < n) n = u->partial_length;
    }
    buf_append(out, data.s ? data.s + off : "", n);
done:
    if (r < 0 && r != CF_E_NOTFOUND && r != CF_E_PARSE)
        log_warn("imap_url_fetch_failed", "mailbox=%s uid=%u error=%s",
                 log_quote(buf_cstr(&name)), (unsigned)u->uid, cf_strerror(r));
    if (r == CF_E_PARSE) r = CF_E_NOTFOUND;
    mail_free(&m);
    mailbox_close(&mb);
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    buf_fini(&data);
    return r;
}

void imapurl_token(const unsigned char *key, const char *rump, size_t len, char *hex)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    HMAC(EVP_sha1(), key, STORE_URLAUTH_KEY_LEN, (const unsigned char *)rump, len, mac, &maclen);
    for (unsigned i = 0; i < maclen && i < 20; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    hex[40] = '\0';
}

int imapurl_owner_key(struct client *c, const struct imap_url *u, int create, unsigned char *key)
{
    if (!c->store || !u->user || !u->mailbox) return 0;
    struct buf name = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = url_mailbox(u, u->user, NULL, &name);
    if (r == 0) r = store_lookup(c->store, buf_cstr(&name), &e);
    else r = 0;
    if (r == 1) r = store_urlauth_key(c->store, u->user, e.uniqueid, create, key);
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    return r;
}

/* restored_key: the URL owner's restored key of u's mailbox (store_urlauth_restored: the key
 * a `coffer restore` carried over from the dump) into key, when it may verify u: u's UID
 * below its bound (a message the dump held) and the mailbox's UIDVALIDITY still the restored
 * one. 1, else 0. */
static int restored_key(struct client *c, const struct imap_url *u, unsigned char *key)
{
    if (!c->store || !u->user || !u->mailbox || !u->uid) return 0;
    struct buf name = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    uint32_t uidvalidity = 0, limit = 0;
    int ok = 0;
    if (url_mailbox(u, u->user, NULL, &name) == 0 &&
        store_lookup(c->store, buf_cstr(&name), &e) == 1 &&
        store_urlauth_restored(c->store, u->user, e.uniqueid, key, &uidvalidity, &limit) == 1 &&
        u->uid < limit && (!u->uidvalidity || u->uidvalidity == uidvalidity)) {
        struct index_header h;
        ok = store_status(c->store, buf_cstr(&name), &h) == 0 && h.uidvalidity == uidvalidity;
    }
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    return ok;
}

int imapurl_authorized(struct client *c, const struct imap_url *u, const char *text, size_t len)
{
    (void)len;
    if (u->access == IMAP_URL_ACCESS_NONE || !u->token || !u->user || !u->mailbox ||
        u->form != IMAP_URL_ABSOLUTE)
        return 0;
    if (strcasecmp(u->mech, IMAPURL_MECH)) return 0;
    if (u->has_expire && u->expire <= (int64_t)time(NULL)) return 0;   /* RFC 4467 section 3 */
    switch (u->access) {
    case IMAP_URL_ACCESS_ANONYMOUS:
        break;
    case IMAP_URL_ACCESS_AUTHUSER:
        if (!c->user) return 0;
        break;
    case IMAP_URL_ACCESS_USER:
        if (!c->user || strcmp(c->user, u->access_user)) return 0;
        break;
    case IMAP_URL_ACCESS_SUBMIT:
        if (!c->user ||
            strarr_find(config_list(c->ws->cfg, CFG_URLAUTH_SUBMIT_SERVERS), c->user) < 0)
            return 0;
        break;
    default:
        return 0;
    }
    unsigned char key[STORE_URLAUTH_KEY_LEN];
    if (imapurl_owner_key(c, u, 0, key) != 1) return 0;
    char hex[41];
    imapurl_token(key, text, u->rump_len, hex);
    /* case of the hex digits is not significant (HEXDIG); compare in constant time */
    char got[41] = "";
    if (strlen(u->token) != 40) return 0;
    for (size_t i = 0; i < 40; i++) {
        char ch = u->token[i];
        got[i] = ch >= 'A' && ch <= 'F' ? (char)(ch - 'A' + 'a') : ch;
    }
    if (CRYPTO_memcmp(got, hex, 40) == 0) return 1;
    /* a URL made before the mailbox was dumped and restored (coffer-dump(8)) */
    if (!restored_key(c, u, key)) return 0;
    imapurl_token(key, text, u->rump_len, hex);
    return CRYPTO_memcmp(got, hex, 40) == 0;
}
