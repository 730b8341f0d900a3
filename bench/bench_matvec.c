/* bench_matvec.c: the one-position linear (decode's matrix-vector product) at the shapes of
 * stories15M and stories110M, against a STREAM triad measured in the same run, with two other
 * access patterns beside the runtime's for comparison: rows8 (eight rows side by side, the kernel
 * before issue 12) and one row with four accumulators (faster on some shapes, but a summation
 * order no packed layout can reproduce). Also prefill (128 positions) with W packed once
 * (tfmcrt_pack) against W as it is, which the GEMM repacks at every call.
 * usage: bench_matvec [REPS] (default 7): GB/s = weight bytes read / time, the best of REPS. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfmcrt_simd.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* STREAM triad a = b + 3 c over three 128 MB arrays: bytes moved / time, the best of reps. */
static double triad_gbs(int reps)
{
    size_t n = (size_t)32 << 20;
    float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
    double best = 0;
    if (!a || !b || !c) return 0;
    for (size_t i = 0; i < n; i++) a[i] = 0.0f, b[i] = (float)i, c[i] = 1.0f;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
        double gbs = 3.0 * (double)n * 4 / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    volatile float sink = a[n / 2];
    (void)sink;
    free(a), free(b), free(c);
    return best;
}

#ifdef VEC_LANES
/* The kernel before issue 12: eight rows side by side share each load of x. */
TFMCRT_CLONES
static void rows8(float *y, const float *w, const float *x, size_t rows, size_t cols)
{
    for (size_t r0 = 0; r0 + 8 <= rows; r0 += 8) {
        Vec16 acc[8];
        for (int r = 0; r < 8; r++) acc[r] = (Vec16){ 0 };
        size_t c = 0;
        for (; c + 16 <= cols; c += 16) {
            Vec16 xv;
            memcpy(&xv, x + c, 64);
            for (int r = 0; r < 8; r++) {
                Vec16 v;
                memcpy(&v, w + (r0 + (size_t)r) * cols + c, 64);
                acc[r] += v * xv;
            }
        }
        for (int r = 0; r < 8; r++) {
            float s = 0;
            for (size_t k = c; k < cols; k++) s += w[(r0 + (size_t)r) * cols + k] * x[k];
            for (int k = 0; k < 16; k += 2) s += acc[r][k] + acc[r][k + 1];
            y[r0 + (size_t)r] = s;
        }
    }
}

/* One row at a time with four accumulators (64 columns a step). */
TFMCRT_CLONES
static void row_x4(float *y, const float *w, const float *x, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        Vec16 a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 };
        size_t c = 0;
        for (; c + 64 <= cols; c += 64) {
            Vec16 v0, v1, v2, v3, x0, x1, x2, x3;
            memcpy(&v0, wr + c, 64), memcpy(&v1, wr + c + 16, 64);
            memcpy(&v2, wr + c + 32, 64), memcpy(&v3, wr + c + 48, 64);
            memcpy(&x0, x + c, 64), memcpy(&x1, x + c + 16, 64);
            memcpy(&x2, x + c + 32, 64), memcpy(&x3, x + c + 48, 64);
            a0 += v0 * x0, a1 += v1 * x1, a2 += v2 * x2, a3 += v3 * x3;
        }
        for (; c + 16 <= cols; c += 16) {
            Vec16 v, xv;
            memcpy(&v, wr + c, 64), memcpy(&xv, x + c, 64);
            a0 += v * xv;
        }
        Vec16 a = (a0 + a1) + (a2 + a3);
        float s = 0;
        for (; c < cols; c++) s += wr[c] * x[c];
        for (int k = 0; k < 16; k++) s += a[k];
        y[r] = s;
    }
}
#endif

typedef enum { K_RUNTIME, K_PACKED, K_ROWS8, K_ROW_X4, K_COUNT } Kernel;
static const char *const kernel_names[K_COUNT] = { "runtime", "packed", "rows8", "row_x4" };

static void run(Kernel k, float *y, const float *w, const float *x, size_t n, size_t rows, size_t cols)
{
    switch (k) {
    case K_RUNTIME: tfmcrt_linear(y, x, n, w, NULL, rows, cols); return;
    case K_PACKED: tfmcrt_linear_packed_ex(NULL, y, x, n, w, NULL, rows, cols); return;
#ifdef VEC_LANES
    case K_ROWS8: rows8(y, w, x, rows, cols); return;
    case K_ROW_X4: row_x4(y, w, x, rows, cols); return;
#else
    case K_ROWS8:
    case K_ROW_X4: tfmcrt_linear(y, x, n, w, NULL, rows, cols); return;
#endif
    case K_COUNT: return;
    }
}

/* Seconds per call of kernel k over n positions, the best of reps passes; each pass walks
 * copies of W that together exceed the caches (as decode walks a model's layers), or one copy
 * (hot, in cache when it fits). */
static double time_kernel(Kernel k, float *const *copies, size_t ncopies, const float *x, float *y, size_t n,
                          size_t rows, size_t cols, int reps)
{
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = now();
        for (size_t c = 0; c < ncopies; c++) run(k, y, copies[c], x, n, rows, cols);
        double t = (now() - t0) / (double)ncopies;
        if (t < best) best = t;
    }
    return best;
}

static float next_float(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / 16777216.0f - 0.5f;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    static const size_t shapes[][2] = { { 288, 288 }, { 768, 288 }, { 32000, 288 },
                                        { 768, 768 }, { 2048, 768 }, { 32000, 768 } };
    enum { NSHAPES = sizeof shapes / sizeof shapes[0], MAXCOPIES = 4096, PREFILL = 128 };
    const size_t total = (size_t)384 << 20; /* bytes of W copies per shape: far past any L3 here */
    if (reps < 1) reps = 1;
    double triad = triad_gbs(reps);
    printf("triad %.1f GB/s (best of %d)\n", triad, reps);
    printf("decode, one position: GB/s of weights read, (ratio to the triad); cold: %zu MB of copies of W, hot: one\n",
           total >> 20);
    printf("%-10s", "shape");
    for (int k = 0; k < K_COUNT; k++) printf(" %17s", kernel_names[k]);
    printf(" %9s\n", "hot:rt");
    float *x = malloc(PREFILL * 768 * sizeof *x), *y = malloc(PREFILL * 32000 * sizeof *y);
    unsigned state = 1;
    for (size_t i = 0; i < PREFILL * 768; i++) x[i] = next_float(&state);
    double prefill[NSHAPES][2];
    for (size_t s = 0; s < NSHAPES; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1], bytes = rows * cols * sizeof(float);
        size_t ncopies = total / bytes;
        if (ncopies > MAXCOPIES) ncopies = MAXCOPIES;
        if (ncopies < 2) ncopies = 2;
        float *copies[MAXCOPIES], *packed[MAXCOPIES];
        for (size_t c = 0; c < ncopies; c++) {
            copies[c] = malloc(bytes);
            packed[c] = malloc(tfmcrt_packed_floats(rows, cols) * sizeof(float));
            if (!copies[c] || !packed[c]) return 1;
            for (size_t i = 0; i < rows * cols; i++) copies[c][i] = next_float(&state);
            tfmcrt_pack(packed[c], copies[c], rows, cols);
        }
        printf("%5zux%-4zu", rows, cols);
        for (int k = 0; k < K_COUNT; k++) {
            double t = time_kernel((Kernel)k, k == K_PACKED ? packed : copies, ncopies, x, y, 1, rows, cols, reps);
            printf("   %6.1f (%5.2f)", (double)bytes / t / 1e9, (double)bytes / t / 1e9 / triad);
        }
        double hot = time_kernel(K_RUNTIME, copies, 1, x, y, 1, rows, cols, reps * 20);
        printf(" %9.1f\n", (double)bytes / hot / 1e9);
        for (int p = 0; p < 2; p++)
            prefill[s][p] = time_kernel(p ? K_PACKED : K_RUNTIME, p ? packed : copies, ncopies < 4 ? ncopies : 4, x, y,
                                        PREFILL, rows, cols, reps);
        for (size_t c = 0; c < ncopies; c++) free(copies[c]), free(packed[c]);
    }
    printf("prefill, %d positions: GFLOP/s (2 rows cols n / time), W as it is vs packed once\n", PREFILL);
    printf("%-10s %10s %10s %8s\n", "shape", "unpacked", "packed", "speedup");
    for (size_t s = 0; s < NSHAPES; s++) {
        double flops = 2.0 * (double)shapes[s][0] * (double)shapes[s][1] * PREFILL;
        printf("%5zux%-4zu %10.1f %10.1f %8.2f\n", shapes[s][0], shapes[s][1], flops / prefill[s][0] / 1e9,
               flops / prefill[s][1] / 1e9, prefill[s][0] / prefill[s][1]);
    }
    free(x), free(y);
    return 0;
}
