/* bench_threads.c: a GPT-2-small-shaped model (dim 768, 12 layers, 12 heads, random weights) on
 * the runtime's threads: prefill of 128 tokens and decode tokens/s at each thread count given,
 * with a STREAM triad on the same number of threads measured in the same run (the bandwidth bound
 * of decode), and a check that every count gives the one-thread logits bit for bit.
 * usage: bench_threads [THREADS...] (default 1 2) -- prints key=value lines for bench/threads.sh. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfmc.h"
#include "tfmcrt.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct Triad {
    float *a, *b, *c;
    size_t n, tasks;
} Triad;

static void triad_task(void *arg, size_t t)
{
    const Triad *j = arg;
    size_t i0 = t * j->n / j->tasks, i1 = (t + 1) * j->n / j->tasks;
    for (size_t i = i0; i < i1; i++) j->a[i] = j->b[i] + 3.0f * j->c[i];
}

/* STREAM triad a = b + s c over arrays far larger than the caches, each thread its own part
 * (first touched by that thread too); bytes moved / time, the best of 5. */
static double triad_gbs(TfmcrtPool *pool)
{
    Triad j = { NULL, NULL, NULL, (size_t)32 << 20, (size_t)tfmcrt_pool_threads(pool) };
    j.a = malloc(j.n * 4), j.b = malloc(j.n * 4), j.c = malloc(j.n * 4);
    double best = 0;
    if (!j.a || !j.b || !j.c) return 0;
    for (size_t i = 0; i < j.n; i++) j.b[i] = (float)i, j.c[i] = 1.0f;
    tfmcrt_pool_parallel_for(pool, j.tasks, triad_task, &j);
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        tfmcrt_pool_parallel_for(pool, j.tasks, triad_task, &j);
        double gbs = 3.0 * (double)j.n * 4 / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    volatile float sink = j.a[j.n / 2];
    (void)sink;
    free(j.a), free(j.b), free(j.c);
    return best;
}

#include "gpt2_small.h"

int main(int argc, char **argv)
{
    int counts[16] = { 1, 2 }, ncounts = 2;
    if (argc > 1) {
        ncounts = 0;
        for (int i = 1; i < argc && ncounts < 16; i++) counts[ncounts++] = atoi(argv[i]) > 0 ? atoi(argv[i]) : 1;
    }
    TfmcContext *ctx = tfmc_context_new(NULL);
    const TfmcProgram *p;
    if (tfmc_load_string(ctx, "gpt2_small.tfm", gpt2_small, sizeof gpt2_small - 1) != TFMC_OK ||
        tfmc_find_program(ctx, NULL, &p) != TFMC_OK || tfmc_compile(ctx, p) != TFMC_OK) {
        tfmc_print_diagnostics(ctx, stderr);
        return 1;
    }
    int vocab = tfmc_model_vocab(p), n = 128, steps = 32;
    int *ids = malloc(sizeof(int) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)vocab);
    float *first = malloc(sizeof(float) * (size_t)n * (size_t)vocab), *dec1 = malloc(sizeof(float) * (size_t)vocab);
    if (!ids || !logits || !first || !dec1) return 1;
    for (int i = 0; i < n; i++) ids[i] = (i * 7919) % vocab;
    double block_bytes = 12.0 * (4.0 * 768 * 768 + 2.0 * 768 * 3072) * 4, head_bytes = (double)vocab * 768 * 4;
    double prefill1 = 0;
    int identical = 1;
    for (int c = 0; c < ncounts; c++) {
        int T = counts[c];
        TfmcrtPool *pool = T > 1 ? tfmcrt_pool_new(T) : NULL;
        double bw = triad_gbs(pool);
        tfmcrt_pool_free(pool);
        TfmcSession *s;
        if (tfmc_session_new_threads(ctx, p, T, &s) != TFMC_OK) {
            tfmc_print_diagnostics(ctx, stderr);
            return 1;
        }
        /* prefill 128 tokens, logits for every position: best of 3 */
        double prefill = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            tfmc_session_reset(s);
            double t0 = now();
            tfmc_session_prefill(s, ids, (size_t)n, logits);
            double t = now() - t0;
            if (t < prefill) prefill = t;
        }
        if (c == 0) memcpy(first, logits, sizeof(float) * (size_t)n * (size_t)vocab), prefill1 = prefill;
        else identical &= memcmp(first, logits, sizeof(float) * (size_t)n * (size_t)vocab) == 0;
        /* decode: one token at a time after a 1-token prefill */
        tfmc_session_reset(s);
        tfmc_session_prefill(s, ids, 1, logits);
        int next = tfmc_argmax(logits, (size_t)vocab);
        double t0 = now();
        for (int i = 0; i < steps; i++) {
            tfmc_session_decode(s, next, logits);
            next = tfmc_argmax(logits, (size_t)vocab);
        }
        double decode = (now() - t0) / steps;
        if (c == 0) memcpy(dec1, logits, sizeof(float) * (size_t)vocab);
        else identical &= memcmp(dec1, logits, sizeof(float) * (size_t)vocab) == 0;
        double bound = bw * 1e9 / (block_bytes + head_bytes);
        printf("t%d_bandwidth_gbs=%.1f\nt%d_prefill128_ms=%.1f\n", T, bw, T, prefill * 1e3);
        printf("t%d_prefill_speedup=%.2fx\n", T, prefill1 / prefill);
        printf("t%d_decode_tok_s=%.1f\nt%d_bound_tok_s=%.1f\nt%d_decode_of_bound=%.2f\n", T, 1.0 / decode, T, bound, T,
               1.0 / decode / bound);
        tfmc_session_free(s);
    }
    printf("logits_identical=%s\n", identical ? "yes" : "NO");
    free(ids), free(logits), free(first), free(dec1);
    tfmc_context_free(ctx);
    return identical ? 0 : 1;
}
