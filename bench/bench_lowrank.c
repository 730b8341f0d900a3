/* bench_lowrank.c MODEL.tfm: prefill of 128 tokens without and with --low-rank=error:1e-3 on a
 * model whose matrices are low-rank plus noise (bench/lowrank_model.py): FLOPs per token from the
 * compiled graph's info, time per prefill, and the largest logit difference. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tfmc.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    float *logits[2] = { NULL, NULL };
    double ms[2];
    int n = 128, vocab = 0;
    for (int v = 0; v < 2; v++) {
        TfmcContext *ctx = tfmc_context_new(NULL);
        TfmcOptions o = { .opt_level = 1, .report = v ? stdout : NULL, .lowrank_error = v ? 1e-3 : 0 };
        tfmc_set_options(ctx, &o);
        const TfmcProgram *p;
        TfmcSession *s;
        if (tfmc_load_file(ctx, argv[1]) != TFMC_OK || tfmc_find_program(ctx, NULL, &p) != TFMC_OK ||
            tfmc_session_new(ctx, p, &s) != TFMC_OK) {
            tfmc_print_diagnostics(ctx, stderr);
            return 1;
        }
        vocab = tfmc_model_vocab(p);
        int *ids = malloc(sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) ids[i] = (i * 31) % vocab;
        logits[v] = malloc(sizeof(float) * (size_t)n * (size_t)vocab);
        ms[v] = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            tfmc_session_reset(s);
            double t0 = now();
            tfmc_session_prefill(s, ids, (size_t)n, logits[v]);
            double t = (now() - t0) * 1e3;
            if (t < ms[v]) ms[v] = t;
        }
        printf("%s: prefill %d tokens %.2f ms\n", v ? "low-rank error 1e-3" : "dense", n, ms[v]);
        free(ids);
        tfmc_session_free(s);
        tfmc_context_free(ctx);
    }
    double diff = 0, big = 0;
    for (size_t i = 0; i < (size_t)n * (size_t)vocab; i++) {
        diff = fmax(diff, fabs(logits[0][i] - logits[1][i]));
        big = fmax(big, fabs(logits[0][i]));
    }
    printf("speedup %.2fx, max |logit diff| %.3g (max |logit| %.3g)\n", ms[0] / ms[1], diff, big);
    free(logits[0]);
    free(logits[1]);
    return 0;
}
