/* fuzz-uidcol.c: fuzz target for the uid column reader (lib/store/mailbox-uidcol.c): a damaged
 * or hostile "uidcol" file must never crash an open, and must never give a view that breaks
 * what the reader promises (uids strictly increasing, below UIDNEXT, as many as the header's
 * EXISTS).
 *
 * LLVMFuzzerInitialize makes one mailbox of 100 messages (3 expunged, some flagged) whose
 * column is current. The input edits a copy of that column: byte 0 holds flags (bit 0: write
 * the header naming the current index header afterwards, bit 1: seal every block's checksum
 * afterwards, bit 2: cut the file at the offset), bytes 1-2 a little-endian offset, the rest
 * bytes written there. The edited file replaces the column and the mailbox is opened (its
 * group summary, uidsum, removed first: the open makes it from the column). With bit 3 the
 * edit goes to the group summary instead (bit 1 then seals every entry's checksum), beside
 * the good column. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/partition.h"
#include "store/uidcol.h"
#include "store/mailbox-sort.h"
#include <unistd.h>

static char *part, *colpath, *sumpath;
static char tmpl[] = "/tmp/coffer-fuzz-uidcol-XXXXXX";
static char id[UNIQUEID_LEN + 1];
static unsigned char *good;   /* the current column */
static size_t good_len;
static unsigned char good_head[UIDCOL_HEADER_SIZE];
static unsigned char *good_sum;   /* its group summary */
static size_t good_sum_len;

static void cleanup(void)
{
    char *cmd = xasprintf("rm -rf '%s'", tmpl);
    if (system(cmd) != 0) fprintf(stderr, "fuzz-uidcol: cleanup of %s failed\n", tmpl);
    free(cmd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz-uidcol", 0, LOG_LVL_ERR);
    if (!mkdtemp(tmpl)) abort();
    atexit(cleanup);
    part = xasprintf("%s/p", tmpl);
    uidcol_min_records = 0;
    partition_new_uniqueid(id);
    struct mailbox *mb = NULL;
    if (partition_prepare(part) < 0 || mailbox_create(part, "user.fuzz", id, "", 0) < 0 ||
        mailbox_open(part, id, NULL, &mb) < 0)
        abort();
    mailbox_set_nofsync(mb, 1);
    static const char body[] = "Subject: f\r\n\r\nbody\r\n";
    struct mailbox_msg msgs[100];
    for (int i = 0; i < 100; i++) {
        struct mailbox_msg m = { body, sizeof body - 1, -1, 1000000000, i % 7 ? 0 : FLAG_SEEN,
                                 NULL, 0 };
        msgs[i] = m;
    }
    uint32_t gone[] = { 3, 40, 77 }, flag[] = { 1, 33, 64, 99 };
    struct mailbox_store sd = { STORE_ADD, FLAG_DELETED, NULL, 0 };
    struct mailbox_store sf = { STORE_ADD, FLAG_FLAGGED, NULL, 0 };
    if (mailbox_append(mb, msgs, 100, NULL) < 0 ||
        mailbox_store(mb, gone, 3, &sd, NULL, NULL) < 0 || mailbox_expunge(mb, gone, 3, NULL) < 0 ||
        mailbox_store(mb, flag, 4, &sf, NULL, NULL) < 0)
        abort();
    mailbox_close(&mb);
    if (mailbox_open(part, id, NULL, &mb) < 0) abort();   /* writes the column */
    mailbox_close(&mb);
    char *dir = partition_mailbox_dir(part, id);
    colpath = xasprintf("%s/%s", dir, UIDCOL_FILE);
    sumpath = xasprintf("%s/%s", dir, UIDSUM_FILE);
    free(dir);
    char *text = NULL;
    if (file_read_all(colpath, 1 << 20, &text, &good_len) < 0 || good_len < UIDCOL_HEADER_SIZE)
        abort();
    good = (unsigned char *)text;
    memcpy(good_head, good, sizeof good_head);
    if (file_read_all(sumpath, 1 << 20, &text, &good_sum_len) < 0 ||
        good_sum_len < UIDCOL_HEADER_SIZE + UIDSUM_ENTRY_SIZE)
        abort();
    good_sum = (unsigned char *)text;
    return 0;
}

static int check_open(int used);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    unsigned fix = data[0];
    size_t off = (size_t)(data[1] | data[2] << 8), n = size - 3;
    if (fix & 8) {   /* the summary, beside the good column */
        size_t sl = good_sum_len > off + n ? good_sum_len : off + n;
        if (fix & 4) sl = off < sl ? off : sl;
        unsigned char *sum = calloc(1, sl ? sl : 1);
        if (!sum) abort();
        memcpy(sum, good_sum, good_sum_len < sl ? good_sum_len : sl);
        if (off < sl) memcpy(sum + off, data + 3, off + n <= sl ? n : sl - off);
        if ((fix & 1) && sl >= UIDCOL_HEADER_SIZE) memcpy(sum, good_sum, UIDCOL_HEADER_SIZE);
        if (fix & 2)
            for (size_t e = UIDCOL_HEADER_SIZE; e + UIDSUM_ENTRY_SIZE <= sl; e += UIDSUM_ENTRY_SIZE)
                le_put32(sum + e + 28, mailbox_sortkeys_sum(sum + e, 28));
        if (file_write_atomic(colpath, good, good_len, 0600) < 0 ||
            file_write_atomic(sumpath, sum, sl, 0600) < 0)
            abort();
        free(sum);
        return check_open(0);
    }
    size_t len = good_len > off + n ? good_len : off + n;
    if (fix & 4) len = off < len ? off : len;
    unsigned char *col = calloc(1, len ? len : 1);
    if (!col) abort();
    memcpy(col, good, good_len < len ? good_len : len);
    if (off < len) memcpy(col + off, data + 3, off + n <= len ? n : len - off);
    if ((fix & 1) && len >= UIDCOL_HEADER_SIZE) memcpy(col, good_head, UIDCOL_HEADER_SIZE);
    if (fix & 2)
        for (uint32_t b = 0; uidcol_block_offset(b) + UIDCOL_BLOCK_SIZE <= len; b++)
            uidcol_block_seal(col + uidcol_block_offset(b));
    if (file_write_atomic(colpath, col, len, 0600) < 0) abort();
    int same = len == good_len && !memcmp(col, good, len);
    free(col);
    /* no group summary: it is made from this column (uidsum), and the lazy view reads its
     * groups' uids from the column as well */
    unlink(sumpath);
    return check_open(same);
}

/* check_open: open the mailbox and check what the view promises; with used, that the open
 * read its view from the column or the summary. */
static int check_open(int used)
{
    struct mailbox *mb = NULL;
    uint64_t loads = uidcol_stats.loads + uidcol_stats.sum_loads;
    FUZZ_ASSERT(mailbox_open(part, id, NULL, &mb) == 0);
    if (used) FUZZ_ASSERT(uidcol_stats.loads + uidcol_stats.sum_loads == loads + 1);
    const struct index_header *h = mailbox_header(mb);
    FUZZ_ASSERT(mailbox_count(mb) == h->exists);
    for (uint32_t m = 1; m <= mailbox_count(mb); m++) {
        FUZZ_ASSERT(mailbox_uid(mb, m) < h->uidnext);
        FUZZ_ASSERT(m == 1 || mailbox_uid(mb, m) > mailbox_uid(mb, m - 1));
    }
    int fu = mailbox_first_unseen(mb);
    FUZZ_ASSERT(fu >= 0 && (uint32_t)fu <= mailbox_count(mb));
    struct mailbox_modseq_scan s;
    FUZZ_ASSERT(mailbox_modseq_scan(mb, 0, &s) == 0);
    mailbox_modseq_scan_fini(&s);
    mailbox_close(&mb);
    return 0;
}
