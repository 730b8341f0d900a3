/* test_quant.c: the int8 linear kernel (tfmcrt_linear_q8_ex) against a reference computed here from
 * float weights by the documented rule (docs/quantize.md): per row, or per group of G inputs of a
 * row (the last group shorter when G does not divide the row), scale = max |w| / 127 and q = w /
 * scale rounded half away from zero; out = b + sum of q * scale * x, the reference summed in double. Shapes where G divides the row and where it does not, G = 1, G = cols and G
 * past cols; 1 to 5 positions; 2 and 3 threads bit-identical to one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "tfmcrt.h"
#include "unit.h"

static float *random_floats(size_t n, unsigned seed)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / 8388608.0f - 1.0f;
    }
    return v;
}

/* Round half away from zero, written out (not roundf): the sign times floor(|v| + 1/2). */
static double round_away(double v) { return v < 0 ? -floor(-v + 0.5) : floor(v + 0.5); }

/* The rule: q[rows][cols] and scale[rows][groups] from w. */
static void quantize(const float *w, size_t rows, size_t cols, size_t group, signed char *q, float *scale)
{
    size_t groups = (cols + group - 1) / group;
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < groups; g++) {
            size_t c0 = g * group, c1 = c0 + group < cols ? c0 + group : cols;
            float m = 0;
            for (size_t c = c0; c < c1; c++) m = fabsf(w[r * cols + c]) > m ? fabsf(w[r * cols + c]) : m;
            float s = m / 127.0f;
            scale[r * groups + g] = s;
            for (size_t c = c0; c < c1; c++) {
                double v = s > 0 ? round_away((double)(w[r * cols + c] / s)) : 0.0;
                q[r * cols + c] = (signed char)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
        }
}

static void test_q8_rule(void)
{
    /* the rule itself on a row of known values: max 2.54 gives scale 0.02 */
    const float w[6] = { 2.54f, -2.54f, 0.0f, 1.0f, -0.03f, 0.3f };
    signed char q[6];
    float s;
    quantize(w, 1, 6, 6, q, &s);
    CHECK_DBL(s, 0.02, 1e-7);
    CHECK_INT(q[0], 127);
    CHECK_INT(q[1], -127);
    CHECK_INT(q[2], 0);
    CHECK_INT(q[3], 50);
    CHECK_INT(q[5], 15);
    /* ties, exact in float (scale 1): half away from zero */
    const float t[5] = { 127.0f, 0.5f, -0.5f, 1.5f, -2.5f };
    signed char qt[5];
    quantize(t, 1, 5, 5, qt, &s);
    CHECK_INT(qt[1], 1);
    CHECK_INT(qt[2], -1);
    CHECK_INT(qt[3], 2);
    CHECK_INT(qt[4], -3);
}

static void test_q8_kernel(void)
{
    static const size_t shapes[][3] = { /* rows, cols, group */
        { 1, 1, 1 }, { 3, 37, 16 }, { 5, 64, 32 }, { 17, 100, 32 }, { 33, 130, 64 }, { 8, 45, 45 },
        { 9, 20, 1 }, { 7, 33, 500 }, { 40, 257, 48 }, { 64, 80, 32 }
    };
    enum { MAXN = 5 };
    TfmcrtPool *pools[4] = { NULL };
    TfmcrtExec execs[4];
    for (int t = 2; t <= 3; t++) {
        pools[t] = tfmcrt_pool_new(t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pools[t]);
        execs[t] = tfmcrt_pool_exec(pools[t], 1); /* cut as finely as the kernel goes */
    }
    int far = 0, differ = 0, runs = 0;
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1], group = shapes[s][2];
        size_t G = group < cols ? group : cols, groups = (cols + G - 1) / G;
        float *w = random_floats(rows * cols, (unsigned)s + 3), *x = random_floats(MAXN * cols, 77);
        float *bias = random_floats(rows, 11), *scale = malloc(rows * groups * sizeof *scale);
        signed char *q = malloc(rows * cols);
        float *one = malloc(MAXN * rows * sizeof *one), *got = malloc(MAXN * rows * sizeof *got);
        CU_ASSERT_FATAL(w && x && bias && scale && q && one && got);
        quantize(w, rows, cols, G, q, scale);
        for (size_t n = 1; n <= MAXN; n++) {
            const float *b = n % 2 ? bias : NULL;
            memset(one, 0xFF, n * rows * sizeof *one);
            tfmcrt_linear_q8_ex(NULL, one, x, n, (const int8_t *)q, scale, b, rows, cols, group);
            for (size_t i = 0; i < n; i++)
                for (size_t r = 0; r < rows; r++) {
                    double want = b ? b[r] : 0, mag = fabs(want);
                    for (size_t c = 0; c < cols; c++) {
                        double t = (double)q[r * cols + c] * (double)scale[r * groups + c / G] * (double)x[i * cols + c];
                        want += t;
                        mag += fabs(t);
                    }
                    double e = fabs((double)one[i * rows + r] - want) / (mag > 0 ? mag : 1);
                    if (e > worst) worst = e;
                    if (e > 1e-5) far++;
                }
            for (int t = 2; t <= 3; t++) {
                memset(got, 0xFF, n * rows * sizeof *got);
                tfmcrt_linear_q8_ex(&execs[t], got, x, n, (const int8_t *)q, scale, b, rows, cols, group);
                differ += memcmp(one, got, n * rows * sizeof *got) != 0;
                runs++;
            }
        }
        free(w), free(x), free(bias), free(scale), free(q), free(one), free(got);
    }
    if (far) fprintf(stderr, "\n  q8 kernel: %d outputs past 1e-5 (relative to the sum of |terms|), worst %g\n", far, worst);
    CHECK_INT(far, 0);
    CHECK_INT(differ, 0);
    CU_ASSERT(runs > 0);
    for (int t = 2; t <= 3; t++) tfmcrt_pool_free(pools[t]);
}

bool register_quant_tests(void)
{
    static const UnitTest tests[] = {
        { "the rounding rule on known values", test_q8_rule },
        { "int8 linear against the float reference; threads bit-identical", test_q8_kernel },
    };
    return UNIT_SUITE("quant", tests);
}
