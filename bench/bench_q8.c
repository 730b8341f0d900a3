/* bench_q8.c: weight-only int8 (tfmcrt_linear_q8_ex, docs/quantize.md) against the f32 linear
 * (tfmcrt_linear_ex) at decode (one position) and a short prefill (16 positions), one thread, at
 * stories110M and GPT-2-small shapes: per row and with groups of 32 and 64 inputs. W is bigger than
 * the caches (several copies are cycled through), so decode reads it from memory as a model does.
 * usage: bench_q8 [REPS] (default 7): microseconds per call, the best of REPS. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tfmcrt.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { COPIES = 8 };

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    static const size_t shapes[][2] = { { 768, 768 }, { 3072, 768 }, { 768, 3072 }, { 2048, 768 } };
    static const size_t groups[] = { 0, 32, 64 };
    printf("one thread, microseconds per call (best of %d); int8 speedup over f32 in parentheses\n", reps < 1 ? 1 : reps);
    printf("%-10s %3s %9s %16s %16s %16s\n", "shape", "n", "f32", "int8 row", "int8 g32", "int8 g64");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1];
        float *w = malloc(COPIES * rows * cols * sizeof *w), *sc = malloc(rows * cols * sizeof *sc);
        int8_t *q = malloc(COPIES * rows * cols);
        float *x = malloc(16 * cols * sizeof *x), *y = malloc(16 * rows * sizeof *y);
        if (!w || !sc || !q || !x || !y) return 1;
        unsigned seed = 1;
        for (size_t i = 0; i < COPIES * rows * cols; i++) {
            seed = seed * 1664525u + 1013904223u;
            w[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
            q[i] = (int8_t)((int)(seed >> 24) % 255 - 127);
        }
        for (size_t i = 0; i < rows * cols; i++) sc[i] = 0.01f;
        for (size_t i = 0; i < 16 * cols; i++) x[i] = (float)i / (float)cols;
        for (size_t n = 1; n <= 16; n += 15) {
            double best[4] = { 1e9, 1e9, 1e9, 1e9 };
            for (int r = 0; r < (reps < 1 ? 1 : reps); r++)
                for (int k = 0; k < 4; k++) {
                    double t = now();
                    for (int c = 0; c < COPIES; c++) {
                        if (k == 0) tfmcrt_linear_ex(NULL, y, x, n, w + c * rows * cols, NULL, rows, cols);
                        else tfmcrt_linear_q8_ex(NULL, y, x, n, q + c * rows * cols, sc, NULL, rows, cols, groups[k - 1]);
                    }
                    t = (now() - t) / COPIES;
                    if (t < best[k]) best[k] = t;
                }
            printf("%4zux%-5zu %3zu %9.1f", rows, cols, n, best[0] * 1e6);
            for (int k = 1; k < 4; k++) printf(" %9.1f (%4.2f)", best[k] * 1e6, best[0] / best[k]);
            printf("\n");
        }
        free(w), free(sc), free(q), free(x), free(y);
    }
    return 0;
}
