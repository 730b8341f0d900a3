/* test_runtime.c: the runtime kernels (tfmcrt) against naive double-precision references. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tfmcrt.h"
#include "unit.h"

/* A deterministic pseudo-random float in [-1, 1). */
static float next_float(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)((double)(*state >> 8) / (double)(1u << 24) * 2.0 - 1.0);
}

static void test_matvec_small(void)
{
    /* W = [[1 2 3] [4 5 6]], x = [1 0 -1], b = [0.5 -0.5]: y = [-2 + 0.5, -2 - 0.5] */
    const float w[6] = { 1, 2, 3, 4, 5, 6 }, x[3] = { 1, 0, -1 }, b[2] = { 0.5f, -0.5f };
    float y[2] = { 99, 99 };
    tfmcrt_matvec(y, w, x, b, 2, 3);
    CHECK_DBL(y[0], -1.5, 0);
    CHECK_DBL(y[1], -2.5, 0);
    tfmcrt_matvec(y, w, x, NULL, 2, 3);
    CHECK_DBL(y[0], -2.0, 0);
    CHECK_DBL(y[1], -2.0, 0);
    /* one column, one row */
    const float w1[1] = { 3 }, x1[1] = { -2 };
    tfmcrt_matvec(y, w1, x1, NULL, 1, 1);
    CHECK_DBL(y[0], -6.0, 0);
    /* no columns: y = b */
    y[0] = 7;
    y[1] = 7;
    tfmcrt_matvec(y, w, x, b, 2, 0);
    CHECK_DBL(y[0], 0.5, 0);
    CHECK_DBL(y[1], -0.5, 0);
}

static void test_matvec_random(void)
{
    static const size_t shapes[][2] = { { 7, 13 }, { 16, 64 }, { 5, 3 }, { 33, 257 }, { 1, 1000 } };
    static float w[33 * 1000], x[1000], b[64], y[64];
    uint32_t state = 12345;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1];
        for (size_t i = 0; i < rows * cols; i++) w[i] = next_float(&state);
        for (size_t i = 0; i < cols; i++) x[i] = next_float(&state) * 4.0f;
        for (size_t i = 0; i < rows; i++) b[i] = next_float(&state);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            tfmcrt_matvec(y, w, x, with_bias ? b : NULL, rows, cols);
            for (size_t r = 0; r < rows; r++) {
                double ref = with_bias ? (double)b[r] : 0.0, scale = fabs(ref);
                for (size_t c = 0; c < cols; c++) {
                    ref += (double)w[r * cols + c] * (double)x[c];
                    scale += fabs((double)w[r * cols + c] * (double)x[c]);
                }
                /* relative to the size of the terms: a cancelling sum is no more exact in float */
                CHECK_DBL(y[r], ref, 1e-5 * (scale > 1.0 ? scale : 1.0));
            }
        }
    }
}

static void test_softmax(void)
{
    float x[3] = { 1, 2, 3 };
    tfmcrt_softmax(x, 3);
    double e1 = exp(1.0), e2 = exp(2.0), e3 = exp(3.0), z = e1 + e2 + e3;
    CHECK_DBL(x[0], e1 / z, 1e-6); /* 0.09003057 */
    CHECK_DBL(x[1], e2 / z, 1e-6); /* 0.24472847 */
    CHECK_DBL(x[2], e3 / z, 1e-6); /* 0.66524096 */
    CHECK_DBL(x[0], 0.09003057, 1e-6);
    CHECK_DBL((double)x[0] + x[1] + x[2], 1.0, 1e-6);

    /* large inputs: no overflow (max subtracted) */
    float big[2] = { 1000, 1001 };
    tfmcrt_softmax(big, 2);
    CU_ASSERT(isfinite(big[0]) && isfinite(big[1]));
    CHECK_DBL(big[0], 1.0 / (1.0 + exp(1.0)), 1e-6); /* 0.26894142 */
    CHECK_DBL(big[1], 1.0 / (1.0 + exp(-1.0)), 1e-6);
    float neg[2] = { -1000, -1000 };
    tfmcrt_softmax(neg, 2);
    CHECK_DBL(neg[0], 0.5, 1e-7);
    CHECK_DBL(neg[1], 0.5, 1e-7);

    float one[1] = { -42 };
    tfmcrt_softmax(one, 1);
    CHECK_DBL(one[0], 1.0, 0);

    /* random vectors against an expf reference */
    uint32_t state = 777;
    static float v[200];
    for (size_t n = 2; n <= 200; n += 33) {
        float ref[200];
        for (size_t i = 0; i < n; i++) v[i] = next_float(&state) * 20.0f;
        float m = v[0];
        for (size_t i = 1; i < n; i++) m = v[i] > m ? v[i] : m;
        double sum = 0;
        for (size_t i = 0; i < n; i++) {
            ref[i] = expf(v[i] - m);
            sum += ref[i];
        }
        tfmcrt_softmax(v, n);
        double total = 0;
        for (size_t i = 0; i < n; i++) {
            CHECK_DBL(v[i], ref[i] / sum, 1e-6 + 1e-5 * (ref[i] / sum));
            CU_ASSERT(v[i] >= 0.0f);
            total += v[i];
        }
        CHECK_DBL(total, 1.0, 1e-5);
    }
}

static void test_softmax_rows_causal(void)
{
    /* row i of a causal softmax covers j <= i only; the rest are 0 */
    float s[9] = { 0, 5, 5, 1, 1, 9, 0, 0, 0 };
    tfmcrt_softmax_rows(s, 3, 1);
    CHECK_DBL(s[0], 1.0, 1e-7);
    CHECK_DBL(s[1], 0.0, 0);
    CHECK_DBL(s[2], 0.0, 0);
    CHECK_DBL(s[3], 0.5, 1e-7);
    CHECK_DBL(s[4], 0.5, 1e-7);
    CHECK_DBL(s[5], 0.0, 0);
    for (int j = 6; j < 9; j++) CHECK_DBL(s[j], 1.0 / 3, 1e-7);
}

bool register_runtime_tests(void)
{
    static const UnitTest tests[] = {
        { "matvec: small, by hand", test_matvec_small },
        { "matvec: random against double", test_matvec_random },
        { "softmax", test_softmax },
        { "softmax rows, causal", test_softmax_rows_causal },
    };
    return UNIT_SUITE("runtime", tests);
}
