/* bench_models.c: a GPT-2-small-shaped model (dim 768, 12 layers, 12 heads, random weights) on the
 * portable backend's kernels: prefill time for 128 tokens and decode tokens/s with the KV cache,
 * against the memory-bandwidth bound measured in the same run (a STREAM triad).
 * usage: bench_models [THREADS_IGNORED] -- prints key=value lines for bench/models.sh. */
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

/* STREAM triad a = b + s c over arrays far larger than the caches; bytes moved / time. */
static double triad_gbs(void)
{
    size_t n = (size_t)32 << 20;
    float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
    double best = 0;
    if (!a || !b || !c) return 0;
    for (size_t i = 0; i < n; i++) {
        b[i] = (float)i;
        c[i] = 1.0f;
        a[i] = 0;
    }
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
        double gbs = 3.0 * (double)n * 4 / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    volatile float sink = a[n / 2];
    (void)sink;
    free(a);
    free(b);
    free(c);
    return best;
}

#include "gpt2_small.h"

int main(void)
{
    double bw = triad_gbs();
    TfmcContext *ctx = tfmc_context_new(NULL);
    const TfmcProgram *p;
    TfmcSession *s;
    double t0 = now();
    if (tfmc_load_string(ctx, "gpt2_small.tfm", gpt2_small, sizeof gpt2_small - 1) != TFMC_OK ||
        tfmc_find_program(ctx, NULL, &p) != TFMC_OK || tfmc_session_new(ctx, p, &s) != TFMC_OK) {
        tfmc_print_diagnostics(ctx, stderr);
        return 1;
    }
    double build = now() - t0;
    int vocab = tfmc_model_vocab(p), n = 128, steps = 64;
    TfmcModelInfo info;
    tfmc_model_info(ctx, p, &info);
    int *ids = malloc(sizeof(int) * (size_t)n);
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)vocab);
    for (int i = 0; i < n; i++) ids[i] = (i * 7919) % vocab;
    /* prefill 128 tokens: best of 3 */
    double prefill = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        tfmc_session_reset(s);
        t0 = now();
        tfmc_session_prefill(s, ids, (size_t)n, logits);
        double t = now() - t0;
        if (t < prefill) prefill = t;
    }
    /* decode: one token at a time after a 1-token prefill */
    tfmc_session_reset(s);
    tfmc_session_prefill(s, ids, 1, logits);
    int next = tfmc_argmax(logits, (size_t)vocab);
    t0 = now();
    for (int i = 0; i < steps; i++) {
        tfmc_session_decode(s, next, logits);
        next = tfmc_argmax(logits, (size_t)vocab);
    }
    double decode = (now() - t0) / steps;
    /* weights read per decoded token: the 12 blocks, and the blocks plus the tied LM head */
    double block_bytes = 12.0 * (4.0 * 768 * 768 + 2.0 * 768 * 3072) * 4;
    double head_bytes = (double)vocab * 768 * 4;
    printf("bandwidth_gbs=%.1f\nparams=%ld\nbuild_s=%.2f\nprefill128_ms=%.1f\ndecode_tok_s=%.1f\n", bw, info.params, build,
           prefill * 1e3, 1.0 / decode);
    printf("bound_blocks_tok_s=%.1f\nbound_with_head_tok_s=%.1f\n", bw * 1e9 / block_bytes, bw * 1e9 / (block_bytes + head_bytes));
    free(ids);
    free(logits);
    tfmc_session_free(s);
    tfmc_context_free(ctx);
    /* attention fusion: prefill of 512 tokens, unfused ([heads][n][n] scores) against fused,
     * both with memory planning */
    static const char *const passes[2] = { "memplan", "fuse-attention,memplan" };
    static const char *const names[2] = { "unfused", "fused" };
    double t512[2] = { 0, 0 };
    for (int v = 0; v < 2; v++) {
        char src[sizeof gpt2_small + 16];
        snprintf(src, sizeof src, "%s", gpt2_small);
        char *ml = strstr(src, "max_len 256");
        memcpy(ml, "max_len 512", 11);
        TfmcContext *c2 = tfmc_context_new(NULL);
        TfmcOptions o = { .opt_level = 1, .passes = passes[v] };
        tfmc_set_options(c2, &o);
        const TfmcProgram *p2;
        TfmcSession *s2;
        if (tfmc_load_string(c2, "gpt2_512.tfm", src, strlen(src)) != TFMC_OK || tfmc_find_program(c2, NULL, &p2) != TFMC_OK ||
            tfmc_session_new(c2, p2, &s2) != TFMC_OK) {
            tfmc_print_diagnostics(c2, stderr);
            return 1;
        }
        TfmcModelInfo i2;
        tfmc_model_info(c2, p2, &i2);
        int *ids2 = malloc(sizeof(int) * 512);
        for (int i = 0; i < 512; i++) ids2[i] = (i * 7919) % vocab;
        t0 = now();
        tfmc_session_prefill(s2, ids2, 512, NULL);
        t512[v] = now() - t0;
        printf("prefill512_%s_ms=%.0f\narena512_%s_mb=%.1f\n", names[v], t512[v] * 1e3, names[v], i2.arena_bytes / 1e6);
        free(ids2);
        tfmc_session_free(s2);
        tfmc_context_free(c2);
    }
    printf("fusion_speedup_512=%.2fx\n", t512[0] / t512[1]);
    /* the attention alone (one GPT-2-small block: 12 heads of 64, causal, n = 512): the unfused
     * kernels with their [heads][n][n] tensors against tfmcrt_attend */
    {
        size_t n512 = 512, H = 12, hd = 64, d = H * hd;
        TfmcrtAttention a = { 12, 12, 64, TFMCRT_SOFTMAX, 1, 0, 0, 0.125f };
        float *q = malloc(sizeof(float) * n512 * d), *k = malloc(sizeof(float) * n512 * d), *v = malloc(sizeof(float) * n512 * d);
        float *out = malloc(sizeof(float) * n512 * d), *sc = malloc(sizeof(float) * H * n512 * n512);
        float *pr = malloc(sizeof(float) * H * n512 * n512), *scratch = malloc(sizeof(float) * n512);
        for (size_t i = 0; i < n512 * d; i++) {
            q[i] = (float)((i * 7) % 13) * 0.01f;
            k[i] = (float)((i * 5) % 11) * 0.01f;
            v[i] = (float)((i * 3) % 7) * 0.1f;
        }
        double tu = 1e9, tf = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            t0 = now();
            tfmcrt_mha_scores(sc, q, k, n512, 0, n512, &a);
            tfmcrt_mha_softmax(pr, sc, n512, 0, n512, &a);
            tfmcrt_mha_mix(out, pr, v, n512, 0, n512, &a);
            double t = now() - t0;
            if (t < tu) tu = t;
            t0 = now();
            tfmcrt_attend(out, q, k, v, n512, 0, &a, scratch);
            t = now() - t0;
            if (t < tf) tf = t;
        }
        printf("attention512_unfused_ms=%.1f\nattention512_fused_ms=%.1f\nattention512_fusion_speedup=%.2fx\n", tu * 1e3,
               tf * 1e3, tu / tf);
        printf("attention512_unfused_extra_mb=%.1f\n", 2.0 * H * n512 * n512 * 4 / 1e6);
        free(q); free(k); free(v); free(out); free(sc); free(pr); free(scratch);
    }
    return 0;
}
