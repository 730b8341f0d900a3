/* bench_tokenize.c: tfmc's encode throughput on one thread: for each text file, the best of
 * REPS encodes of the whole file as one text (flags 0: no post-processor tokens), in MB/s
 * (10^6 bytes per second), with the id count and a hash of the ids that bench/tokenize.py compares
 * with the JavaScript reference's. Loading the tokenizer is not timed. -p: special tokens written
 * in the text are text (TFMC_TOKENIZE_PLAIN, as gpt-3-encoder reads them).
 *   bench_tokenize [-r REPS] [-p] TOKENIZER.json TEXT...
 * prints one line per text: `file=... bytes=... ids=... hash=... mb_s=... ms=...`. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfmc.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    for (size_t got; s && (got = fread(s + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) s = realloc(s, cap *= 2);
    }
    fclose(f);
    *len = n;
    return s;
}

/* FNV-1a over the ids, 32 bits (bench/tokenize.js computes the same). */
static uint32_t hash_ids(const int *ids, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint32_t)ids[i]) * 16777619u;
    return h;
}

int main(int argc, char **argv)
{
    int reps = 5, a = 1;
    unsigned flags = 0;
    for (;;) {
        if (a + 1 < argc && !strcmp(argv[a], "-r")) {
            reps = atoi(argv[a + 1]);
            a += 2;
        } else if (a < argc && !strcmp(argv[a], "-p")) {
            flags |= TFMC_TOKENIZE_PLAIN;
            a++;
        } else {
            break;
        }
    }
    if (argc - a < 2 || reps < 1) {
        fprintf(stderr, "usage: bench_tokenize [-r REPS] [-p] TOKENIZER.json TEXT...\n");
        return 2;
    }
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcTokenizer *tok;
    if (tfmc_tokenizer_load(ctx, argv[a], &tok) != TFMC_OK) {
        tfmc_print_diagnostics(ctx, stderr);
        return 1;
    }
    int status = 0;
    for (int f = a + 1; f < argc; f++) {
        size_t len;
        char *text = read_file(argv[f], &len);
        if (!text) {
            fprintf(stderr, "bench_tokenize: cannot read %s\n", argv[f]);
            status = 1;
            continue;
        }
        size_t cap = tfmc_tokenizer_max_ids(tok, len), n = 0;
        int *ids = malloc(cap * sizeof *ids);
        double best = 1e30;
        for (int r = 0; r < reps && ids; r++) {
            double t0 = now_s();
            TfmcStatus st = tfmc_tokenizer_encode(tok, text, len, flags, ids, cap, &n);
            double dt = now_s() - t0;
            if (st != TFMC_OK) {
                fprintf(stderr, "bench_tokenize: %s does not encode (status %d)\n", argv[f], (int)st);
                status = 1;
                break;
            }
            if (dt < best) best = dt;
        }
        if (best < 1e30)
            printf("file=%s bytes=%zu ids=%zu hash=%08x mb_s=%.2f ms=%.2f\n", argv[f], len, n, hash_ids(ids, n),
                   (double)len / best / 1e6, best * 1e3);
        free(ids);
        free(text);
    }
    tfmc_tokenizer_free(tok);
    tfmc_context_free(ctx);
    return status;
}
