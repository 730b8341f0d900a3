/* bench_frontend.c: how long the frontend takes on each example given on the command line.
 *
 *   bench_frontend [-r REPS] [-n INPUTS] [-s SEED] FILE.tfm...
 *
 * For every file, with clock_gettime(CLOCK_MONOTONIC), the median over REPS repetitions of
 *   (a) parse + check: tfmc_context_new + tfmc_load_file + tfmc_context_free;
 *   (b) interpreting INPUTS (default 1000) random inputs with tfmc_eval: seeded, lengths
 *       1..max_len, tokens drawn from the program's vocabulary, which is read from the text of
 *       its `vocab {...}` statement (strings, integers, integer ranges).
 * The inputs are built (and turned into values with tfmc_parse_words) before the clock starts.
 * Prints one table row per file: parse+check ms, eval ms, their total and whether the total is
 * under 100 ms. Exit status 1 when a file fails to load or evaluate.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfmc.h"

enum { MAX_VOCAB = 4096, MAX_WORD = 256, BUDGET_MS = 100 };

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* splitmix64: a small seeded generator, the same numbers on every machine. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *s, size_t n) { return (size_t)(rng_next(s) % n); }

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

/* A minimal scanner over the source text: skips blanks and comments, reads one token. */
typedef struct Scan {
    const char *p;
    char tok[MAX_WORD]; /* the token's text; a string's value (unescaped) */
    char kind;          /* 'i' identifier, 'n' integer, 's' string, '.' for `..`, else the char, 0 at the end */
} Scan;

static void next_token(Scan *s)
{
    for (;;) {
        while (isspace((unsigned char)*s->p)) s->p++;
        if (*s->p != '#') break;
        while (*s->p && *s->p != '\n') s->p++;
    }
    size_t k = 0;
    const char *p = s->p;
    if (!*p) {
        s->kind = 0;
    } else if (isalpha((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)*p) || *p == '_') {
            if (k + 1 < MAX_WORD) s->tok[k++] = *p;
            p++;
        }
        s->kind = 'i';
    } else if (isdigit((unsigned char)*p)) {
        while (isdigit((unsigned char)*p)) {
            if (k + 1 < MAX_WORD) s->tok[k++] = *p;
            p++;
        }
        s->kind = 'n';
    } else if (*p == '"') {
        for (p++; *p && *p != '"' && *p != '\n'; p++) {
            char c = *p;
            if (c == '\\' && p[1]) {
                c = *++p;
                if (c == 'n') c = '\n';
                else if (c == 't') c = '\t';
            }
            if (k + 1 < MAX_WORD) s->tok[k++] = c;
        }
        if (*p == '"') p++;
        s->kind = 's';
    } else if (p[0] == '.' && p[1] == '.') {
        p += 2;
        s->kind = '.';
    } else {
        s->kind = *p++;
    }
    s->tok[k] = '\0';
    s->p = p;
}

/* The words of the `vocab {...}` statement of program NAME in text (the first one when no
 * program of that name is found). Returns how many, or -1 when there is no readable vocab. */
static int read_vocab(const char *text, const char *name, char (*words)[MAX_WORD], int cap)
{
    Scan s = { .p = text };
    const char *start = NULL, *first_vocab = NULL;
    /* find `rasp NAME` */
    for (next_token(&s); s.kind; next_token(&s)) {
        if (s.kind == 'i' && !strcmp(s.tok, "vocab") && !first_vocab) first_vocab = s.p;
        if (s.kind == 'i' && !strcmp(s.tok, "rasp")) {
            next_token(&s);
            if (s.kind == 'i' && !strcmp(s.tok, name)) {
                start = s.p;
                break;
            }
        }
    }
    if (start) {
        s.p = start;
        for (next_token(&s); s.kind && !(s.kind == 'i' && !strcmp(s.tok, "vocab")); next_token(&s)) {}
        if (!s.kind) return -1;
    } else if (first_vocab) {
        s.p = first_vocab;
    } else {
        return -1;
    }
    next_token(&s);
    if (s.kind != '{') return -1;
    int n = 0;
    for (next_token(&s); s.kind && s.kind != '}'; next_token(&s)) {
        bool negative = false;
        if (s.kind == ',') continue;
        if (s.kind == '-') {
            negative = true;
            next_token(&s);
        }
        if (s.kind == 's' || (s.kind == 'i' && (!strcmp(s.tok, "true") || !strcmp(s.tok, "false")))) {
            if (n < cap) snprintf(words[n++], MAX_WORD, "%s", s.tok);
        } else if (s.kind == 'n') {
            long long lo = strtoll(s.tok, NULL, 10) * (negative ? -1 : 1), hi = lo;
            const char *after = s.p;
            next_token(&s);
            if (s.kind == '.') {
                next_token(&s);
                bool neg_hi = false;
                if (s.kind == '-') {
                    neg_hi = true;
                    next_token(&s);
                }
                if (s.kind != 'n') return -1;
                hi = strtoll(s.tok, NULL, 10) * (neg_hi ? -1 : 1);
            } else {
                s.p = after; /* not a range: read that token again */
            }
            for (long long v = lo; v <= hi && n < cap; v++) snprintf(words[n++], MAX_WORD, "%lld", v);
        } else {
            return -1; /* floats and anything else: not handled */
        }
    }
    return s.kind == '}' ? n : -1;
}

typedef struct Result {
    double load_ms, eval_ms;
    bool ok;
} Result;

static Result bench_file(const char *path, int reps, int ninputs, uint64_t seed)
{
    Result r = { 0, 0, false };
    double *times = malloc(sizeof(double) * (size_t)reps);
    if (!times) return r;

    /* (a) parse + check */
    for (int i = 0; i < reps; i++) {
        double t0 = now_ms();
        TfmcContext *ctx = tfmc_context_new(NULL);
        TfmcStatus st = ctx ? tfmc_load_file(ctx, path) : TFMC_ERR_NOMEM;
        if (st != TFMC_OK) {
            fprintf(stderr, "bench_frontend: %s does not load:\n", path);
            if (ctx) tfmc_print_diagnostics(ctx, stderr);
            tfmc_context_free(ctx);
            free(times);
            return r;
        }
        tfmc_context_free(ctx);
        times[i] = now_ms() - t0;
    }
    r.load_ms = median(times, reps);

    /* (b) eval: the program, its vocabulary and the inputs, built before timing */
    TfmcContext *ctx = tfmc_context_new(NULL);
    const TfmcProgram *p = NULL;
    char *text = read_file(path);
    char (*words)[MAX_WORD] = malloc(sizeof(*words) * MAX_VOCAB);
    TfmcValue *vocab = malloc(sizeof(TfmcValue) * MAX_VOCAB);
    TfmcValue *inputs = NULL, *out = NULL;
    size_t *lens = NULL;
    if (!ctx || !text || !words || !vocab || tfmc_load_file(ctx, path) != TFMC_OK) goto done;
    if (tfmc_find_program(ctx, NULL, &p) != TFMC_OK) {
        /* several programs: the first RASP program */
        p = NULL;
        for (size_t i = 0; i < tfmc_program_count(ctx) && !p; i++)
            if (tfmc_program_kind(tfmc_program_at(ctx, i)) == TFMC_PROGRAM_RASP) p = tfmc_program_at(ctx, i);
    }
    if (!p || tfmc_program_kind(p) != TFMC_PROGRAM_RASP) {
        fprintf(stderr, "bench_frontend: %s: no RASP program\n", path);
        goto done;
    }
    int nvocab = read_vocab(text, tfmc_program_name(p), words, MAX_VOCAB);
    if (nvocab <= 0) {
        fprintf(stderr, "bench_frontend: %s: cannot read the vocab statement\n", path);
        goto done;
    }
    for (int i = 0; i < nvocab; i++) {
        char err[256], *w = words[i];
        if (tfmc_parse_words(p, &w, 1, &vocab[i], 1, err, sizeof err) != TFMC_OK) {
            fprintf(stderr, "bench_frontend: %s: vocabulary word `%s`: %s\n", path, w, err);
            goto done;
        }
    }
    int max_len = tfmc_program_max_len(p);
    inputs = malloc(sizeof(TfmcValue) * (size_t)ninputs * (size_t)max_len);
    out = malloc(sizeof(TfmcValue) * (size_t)max_len);
    lens = malloc(sizeof(size_t) * (size_t)ninputs);
    if (!inputs || !out || !lens) goto done;
    uint64_t rng = seed;
    for (int i = 0; i < ninputs; i++) {
        lens[i] = 1 + rng_below(&rng, (size_t)max_len);
        for (size_t j = 0; j < lens[i]; j++)
            inputs[(size_t)i * (size_t)max_len + j] = vocab[rng_below(&rng, (size_t)nvocab)];
    }
    unsigned long checksum = 0; /* uses the outputs, and shows when two builds disagree */
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now_ms();
        for (int i = 0; i < ninputs; i++) {
            if (tfmc_eval(ctx, p, &inputs[(size_t)i * (size_t)max_len], lens[i], out) != TFMC_OK) {
                fprintf(stderr, "bench_frontend: %s: tfmc_eval failed on input %d\n", path, i);
                tfmc_print_diagnostics(ctx, stderr);
                goto done;
            }
            for (size_t j = 0; j < lens[i]; j++) checksum = checksum * 31 + (unsigned long)out[j].kind;
        }
        times[rep] = now_ms() - t0;
    }
    if (checksum == 1) fputc(' ', stderr); /* keep the loop's results alive */
    r.eval_ms = median(times, reps);
    r.ok = true;
done:
    free(lens);
    free(out);
    free(inputs);
    free(vocab);
    free(words);
    free(text);
    tfmc_context_free(ctx);
    free(times);
    return r;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_frontend [-r REPS] [-n INPUTS] [-s SEED] FILE.tfm...\n");
    return 2;
}

int main(int argc, char **argv)
{
    int reps = 7, ninputs = 1000;
    uint64_t seed = 1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (i + 1 >= argc) return usage();
        if (!strcmp(argv[i], "-r")) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n")) ninputs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s")) seed = strtoull(argv[++i], NULL, 10);
        else return usage();
    }
    if (i >= argc || reps < 1 || ninputs < 1) return usage();
    char eval_head[32];
    snprintf(eval_head, sizeof eval_head, "eval %d inputs ms", ninputs);
    printf("%-18s %14s %17s %10s %9s\n", "example", "parse+check ms", eval_head, "total ms", "< 100 ms");
    int status = 0;
    double sum_load = 0, sum_eval = 0;
    for (; i < argc; i++) {
        const char *base = strrchr(argv[i], '/');
        char name[64];
        snprintf(name, sizeof name, "%s", base ? base + 1 : argv[i]);
        char *dot = strstr(name, ".tfm");
        if (dot) *dot = '\0';
        Result r = bench_file(argv[i], reps, ninputs, seed);
        if (!r.ok) {
            printf("%-18s %14s %17s %10s %9s\n", name, "-", "-", "-", "error");
            status = 1;
            continue;
        }
        double total = r.load_ms + r.eval_ms;
        sum_load += r.load_ms;
        sum_eval += r.eval_ms;
        printf("%-18s %14.3f %17.3f %10.3f %9s\n", name, r.load_ms, r.eval_ms, total,
               total < BUDGET_MS ? "yes" : "NO");
        fflush(stdout);
    }
    printf("%-18s %14.3f %17.3f %10.3f\n", "(sum)", sum_load, sum_eval, sum_load + sum_eval);
    printf("medians of %d repetitions; eval = %d random inputs of lengths 1..max_len (seed %llu)\n", reps,
           ninputs, (unsigned long long)seed);
    return status;
}
