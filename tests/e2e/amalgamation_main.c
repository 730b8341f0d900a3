/* amalgamation_main.c: a small program over the runtime, built twice by check_amalgamation.py:
 * pasted after the amalgamation into one file (cc -std=c99 -pedantic, no library), and linked
 * against libtfmcrt (amalgamation_ref) for the reference. It checks what must hold bit for bit
 * within one build (packed == unpacked, a caller's parallel_for == none) and prints the outputs
 * for the script to compare across builds within a tolerance. Exit 1 on a failed check. */
#ifndef TFMCRT_AMALGAMATION
#include "tfmcrt.h"
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 70, COLS = 300, MAXN = 33 };

static float w[ROWS * COLS], x[MAXN * COLS], bias[ROWS], packed[80 * COLS];
static float ref[MAXN * ROWS], got[MAXN * ROWS];

static float next_float(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / 16777216.0f - 0.5f;
}

/* A caller's own parallel_for: tasks in reverse order, on this thread. */
static void reverse_for(void *user, size_t ntasks, TfmcrtTaskFn fn, void *arg)
{
    (void)user;
    for (size_t t = ntasks; t-- > 0;) fn(arg, t);
}

int main(void)
{
    static const size_t ns[] = { 1, 3, 5, 33 };
    TfmcrtExec mine = { reverse_for, NULL, 3, 1 };
    unsigned state = 12345;
    int bad = 0;
    const char *missing = tfmcrt_cpu_missing();
    printf("cpu %s\n", missing ? missing : "ok");
    if (tfmcrt_packed_floats(ROWS, COLS) != 80 * COLS) {
        printf("packed_floats %lu\n", (unsigned long)tfmcrt_packed_floats(ROWS, COLS));
        bad = 1;
    }
    for (size_t i = 0; i < ROWS * COLS; i++) w[i] = next_float(&state);
    for (size_t i = 0; i < MAXN * COLS; i++) x[i] = next_float(&state);
    for (size_t i = 0; i < ROWS; i++) bias[i] = next_float(&state);
    tfmcrt_pack(packed, w, ROWS, COLS);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        size_t n = ns[k];
        tfmcrt_linear_ex(NULL, ref, x, n, w, bias, ROWS, COLS);
        tfmcrt_linear_packed_ex(NULL, got, x, n, packed, bias, ROWS, COLS);
        if (memcmp(ref, got, n * ROWS * sizeof *got) != 0) printf("n %lu: packed differs\n", (unsigned long)n), bad = 1;
        tfmcrt_linear_packed_ex(&mine, got, x, n, packed, bias, ROWS, COLS);
        if (memcmp(ref, got, n * ROWS * sizeof *got) != 0) printf("n %lu: threads differ\n", (unsigned long)n), bad = 1;
        printf("linear n %lu:", (unsigned long)n);
        for (size_t i = 0; i < n * ROWS; i += 7) printf(" %.9g", ref[i]);
        printf("\n");
    }
    tfmcrt_norm_ex(&mine, got, x, 4, COLS, TFMCRT_RMSNORM, 1e-5f, 0.0f, w, NULL);
    printf("rmsnorm:");
    for (size_t i = 0; i < 4 * COLS; i += 13) printf(" %.9g", got[i]);
    printf("\n");
    return bad;
}
