/* fuzz-main.c: the main() of every fuzz target when it is not built for libFuzzer.
 *
 * Each fuzz target is one LLVMFuzzerTestOneInput and a seed corpus directory
 * (test/fuzz/corpus/<target>/). Configured with -DCOFFER_FUZZ=ON and CC=clang, a target links
 * libFuzzer's own main instead of this file (`make fuzz`). In the ordinary builds (gcc, and
 * AddressSanitizer/UBSan under `make test`) this driver makes the target a program that
 * replays its seeds and then a deterministic series of simple mutations of them (bit flips,
 * interesting bytes, byte insertion and deletion, range duplication, splices of two seeds),
 * until a count or a time budget runs out, so every test run checks the parser on malformed
 * input without needing clang.
 *
 *   fuzz-NAME [-n ROUNDS] [-t SECONDS] [-s SEED] [FILE|DIR ...]
 *
 * Without FILE or DIR arguments the seeds come from FUZZ_CORPUS_DIR (compiled in: directories
 * separated by ':'). Files named
 * on the command line are run as they are (a crash reproducer from `make fuzz`, for example).
 * The rounds default to FUZZ_ROUNDS (or 200000) and the time to FUZZ_SECONDS (or 1.5): a
 * different budget per run only changes how far the same sequence gets. An input that kills
 * the target is saved as crash-NAME in the current directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef FUZZ_ROUNDS
#define FUZZ_ROUNDS 200000
#endif
#ifndef FUZZ_SECONDS
#define FUZZ_SECONDS 1.5
#endif
#define FUZZ_MAX_LEN (64u << 10)     /* mutants are capped at this size */
#define FUZZ_MAX_SEEDS 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* A target may define this (libFuzzer calls it once before the first input). */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

struct seed {
    uint8_t *data;
    size_t len;
};

static struct seed seeds[FUZZ_MAX_SEEDS];
static size_t nseeds;

/* xorshift64*: fixed seed, so a run tries the same inputs every time. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static int load_file(const char *path, struct seed *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *d = malloc(cap);
    if (!d) abort();
    while ((n = fread(d + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            d = realloc(d, cap);
            if (!d) abort();
        }
    }
    fclose(f);
    s->data = d;
    s->len = len;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* load_dir: every regular file in dir, in name order (readdir's order differs between file
 * systems, and the mutation sequence depends on the seeds' order). */
static int load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char *names[FUZZ_MAX_SEEDS];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < FUZZ_MAX_SEEDS) {
        if (de->d_name[0] == '.') continue;
        names[n] = strdup(de->d_name);
        if (!names[n]) abort();
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        free(names[i]);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || nseeds == FUZZ_MAX_SEEDS) continue;
        if (load_file(path, &seeds[nseeds]) < 0) r = -1;
        else nseeds++;
    }
    return r;
}

/* The input being run, written to crash-NAME in the current directory when the target dies
 * (a sanitizer report, or a failed FUZZ_ASSERT's abort), to be replayed as `fuzz-NAME FILE`. */
static const uint8_t *cur_data;
static size_t cur_len;
static char crash_file[300];

static void save_input(void)
{
    if (!cur_data) return;
    int fd = open(crash_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    ssize_t w = write(fd, cur_data, cur_len);
    close(fd);
    static const char msg[] = "fuzz: the input is saved as ";
    if (w >= 0 && write(2, msg, sizeof msg - 1) > 0 && write(2, crash_file, strlen(crash_file)) > 0)
        w = write(2, "\n", 1);
    (void)w;
}

static void on_abort(int sig)
{
    save_input();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Provided by the sanitizer runtimes: called before they end the process on an error. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

/* run: pass a private copy, so that reading past the end is caught by the sanitizers. */
static void run(const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) abort();
    if (len) memcpy(copy, data, len);
    cur_data = copy;
    cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    cur_data = NULL;
    free(copy);
}

/* make_room: open a gap of n bytes at pos (the caller fills it); 0, or -1 past the cap. */
static int make_room(uint8_t *buf, size_t *len, size_t pos, size_t n)
{
    if (*len + n > FUZZ_MAX_LEN) return -1;
    memmove(buf + pos + n, buf + pos, *len - pos);
    *len += n;
    return 0;
}

static void mutate(uint8_t *buf, size_t *len)
{
    static const uint8_t interesting[] = { 0, 1, 0x7f, 0x80, 0xff, ' ', '\r', '\n', '"', '\\',
                                           '{', '}', '(', ')', '[', ']', '<', '>', '=', '&',
                                           '-', '+', '/', ':', ';', ',', '#', '0', '9' };
    size_t pos = rndn(*len + 1);
    switch (rndn(8)) {
    case 0:                                             /* flip a bit */
        if (*len) buf[rndn(*len)] ^= (uint8_t)(1u << rndn(8));
        break;
    case 1:                                             /* an interesting byte */
        if (*len) buf[rndn(*len)] = interesting[rndn(sizeof interesting)];
        break;
    case 2:                                             /* insert a byte */
        if (make_room(buf, len, pos, 1) == 0)
            buf[pos] = rndn(2) ? (uint8_t)rnd() : interesting[rndn(sizeof interesting)];
        break;
    case 3: {                                           /* delete a range */
        size_t n = rndn(*len - pos + 1);
        if (n > 16 && rndn(4)) n = rndn(16);
        memmove(buf + pos, buf + pos + n, *len - pos - n);
        *len -= n;
        break;
    }
    case 4: {                                           /* duplicate a range */
        size_t n = rndn(*len - pos + 1);
        if (n > 256) n = rndn(256);
        /* the gap keeps its old bytes, which now also follow it: a duplicate */
        make_room(buf, len, pos, n);
        break;
    }
    case 5:                                             /* truncate */
        *len = pos;
        break;
    case 6: {                                           /* overwrite with a seed's bytes */
        const struct seed *o = &seeds[rndn(nseeds)];
        if (!o->len || !*len) break;
        size_t from = rndn(o->len), n = rndn(o->len - from) + 1, at = rndn(*len);
        if (n > *len - at) n = *len - at;
        memcpy(buf + at, o->data + from, n);
        break;
    }
    default: {                                          /* splice in part of a seed */
        const struct seed *o = &seeds[rndn(nseeds)];
        if (!o->len) break;
        size_t from = rndn(o->len), n = rndn(o->len - from) + 1;
        if (n > 1024) n = rndn(1024) + 1;
        if (make_room(buf, len, pos, n) == 0) memcpy(buf + pos, o->data + from, n);
        break;
    }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long rounds = FUZZ_ROUNDS;
    double seconds = FUZZ_SECONDS;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int i = 1, files = 0;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) rounds = atol(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) rng = strtoull(argv[++i], NULL, 0) | 1;
        else break;
    }
    snprintf(crash_file, sizeof crash_file, "crash-%s", name);
    signal(SIGABRT, on_abort);
    signal(SIGSEGV, on_abort);
    if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(save_input);
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (load_dir(argv[i]) < 0) return 1;
        } else {
            /* a single file is run as it is, not mutated */
            struct seed s;
            if (load_file(argv[i], &s) < 0) return 1;
            run(s.data, s.len);
            free(s.data);
            files++;
        }
    }
    if (files && !nseeds) {
        printf("%s: %d file%s run\n", name, files, files == 1 ? "" : "s");
        return 0;
    }
#ifdef FUZZ_CORPUS_DIR
    if (!nseeds) {
        /* a ':'-separated list of directories */
        char dirs[] = FUZZ_CORPUS_DIR;
        for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save))
            if (load_dir(d) < 0) return 1;
    }
#endif
    if (!nseeds) {
        fprintf(stderr, "%s: no seeds (give a corpus directory)\n", name);
        return 1;
    }
    for (size_t k = 0; k < nseeds; k++) run(seeds[k].data, seeds[k].len);

    uint8_t *buf = malloc(FUZZ_MAX_LEN);
    if (!buf) abort();
    double deadline = now() + seconds;
    long done = 0;
    for (; done < rounds; done++) {
        if (done % 256 == 0 && now() > deadline) break;
        const struct seed *s = &seeds[rndn(nseeds)];
        size_t len = s->len < FUZZ_MAX_LEN ? s->len : FUZZ_MAX_LEN;
        memcpy(buf, s->data, len);
        int steps = 1 + (int)rndn(6);
        for (int k = 0; k < steps; k++) mutate(buf, &len);
        run(buf, len);
    }
    free(buf);
    printf("%s: %zu seeds, %ld mutants\n", name, nseeds, done);
    for (size_t k = 0; k < nseeds; k++) free(seeds[k].data);
    return 0;
}
