/* model_driver.c: times a generated model's prefill and decode, one thread. Built by
 * bench/simd.sh with -DGEN="file.c" -DP=name -DUP=NAME; includes the generated file directly, so
 * the same driver times the portable backend's file (linked with libtfmcrt) and the SIMD
 * backend's (nothing else). Prints prefill_tok_s=... decode_tok_s=... and a checksum of the last
 * logits (the two files' must agree to about 1e-5). */
#include <time.h>

#include GEN

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define PREFILL 128

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float arena[CAT(UP, _ARENA_FLOATS)];
static float logits[CAT(UP, _VOCAB)];

int main(void)
{
    CAT(P, _ctx) ctx;
    int tokens[PREFILL], i, r, reps = 5, decode = CAT(UP, _MAX_LEN) - PREFILL;
    double best_prefill = 1e30, best_decode = 1e30, sum = 0;
    if (CAT(P, _init)(&ctx, arena, sizeof arena) != 0) return 1;
    for (i = 0; i < PREFILL; i++) tokens[i] = (i * 7919 + 3) % CAT(UP, _VOCAB);
    for (r = 0; r < reps; r++) {
        double t0, t1, t2;
        int next = 1;
        CAT(P, _reset)(&ctx);
        t0 = now();
        CAT(P, _prefill_last)(&ctx, tokens, PREFILL, logits);
        t1 = now();
        for (i = 0; i < decode; i++) {
            CAT(P, _decode)(&ctx, next, logits);
            next = (next * 31 + i) % CAT(UP, _VOCAB);
        }
        t2 = now();
        if (t1 - t0 < best_prefill) best_prefill = t1 - t0;
        if (t2 - t1 < best_decode) best_decode = t2 - t1;
    }
    for (i = 0; i < CAT(UP, _VOCAB); i++) sum += logits[i] * (double)(i % 7 + 1);
    printf("prefill_tok_s=%.0f decode_tok_s=%.1f checksum=%.6g\n", PREFILL / best_prefill, decode / best_decode, sum);
    return 0;
}
