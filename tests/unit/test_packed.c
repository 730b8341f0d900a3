/* test_packed.c: weights packed once (tfmcrt_pack) give tfmcrt_linear_ex's results bit for bit, at
 * odd shapes on both sides of the 16-row panels, the 32-row GEMM blocks and the 128-column depth
 * blocks, for 1 to 130 positions and 1, 2 and 3 threads; and the packed layout is the documented
 * one. */
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

/* packed[p * 16 * cols + c * 16 + j] = W[16p + j][c], zeros past the last row */
static void test_pack_layout(void)
{
    CHECK_INT(tfmcrt_packed_floats(0, 5), 0);
    CHECK_INT(tfmcrt_packed_floats(1, 5), 16 * 5);
    CHECK_INT(tfmcrt_packed_floats(16, 3), 16 * 3);
    CHECK_INT(tfmcrt_packed_floats(17, 3), 32 * 3);
    size_t rows = 37, cols = 5, wrong = 0;
    float *w = random_floats(rows * cols, 7), *p = malloc(tfmcrt_packed_floats(rows, cols) * sizeof *p);
    CU_ASSERT_FATAL(w && p);
    memset(p, 0xFF, tfmcrt_packed_floats(rows, cols) * sizeof *p);
    tfmcrt_pack(p, w, rows, cols);
    for (size_t r = 0; r < 48; r++)
        for (size_t c = 0; c < cols; c++) {
            float want = r < rows ? w[r * cols + c] : 0.0f, got = p[r / 16 * 16 * cols + c * 16 + r % 16];
            wrong += memcmp(&want, &got, sizeof got) != 0;
        }
    CHECK_INT(wrong, 0);
    free(w), free(p);
}

static void test_packed_identical(void)
{
    static const size_t shapes[][2] = { { 1, 1 }, { 3, 5 }, { 15, 17 }, { 16, 16 }, { 17, 33 },
                                        { 31, 129 }, { 33, 130 }, { 47, 257 }, { 70, 300 } };
    enum { MAXN = 130 };
    TfmcrtPool *pools[4] = { NULL };
    TfmcrtExec execs[4];
    for (int t = 2; t <= 3; t++) {
        pools[t] = tfmcrt_pool_new(t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pools[t]);
        execs[t] = tfmcrt_pool_exec(pools[t], 1); /* cut as finely as the kernels go */
    }
    int wrong = 0, runs = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], cols = shapes[s][1];
        float *w = random_floats(rows * cols, (unsigned)s + 1), *x = random_floats(MAXN * cols, 99);
        float *bias = random_floats(rows, 5), *packed = malloc(tfmcrt_packed_floats(rows, cols) * sizeof *packed);
        float *ref = malloc(MAXN * rows * sizeof *ref), *got = malloc(MAXN * rows * sizeof *got);
        CU_ASSERT_FATAL(w && x && bias && packed && ref && got);
        tfmcrt_pack(packed, w, rows, cols);
        for (size_t n = 1; n <= MAXN; n++) {
            const float *b = n % 2 ? bias : NULL;
            memset(ref, 0xFF, n * rows * sizeof *ref);
            tfmcrt_linear_ex(NULL, ref, x, n, w, b, rows, cols);
            for (int t = 1; t <= 3; t++) {
                memset(got, 0xFF, n * rows * sizeof *got);
                tfmcrt_linear_packed_ex(t == 1 ? NULL : &execs[t], got, x, n, packed, b, rows, cols);
                if (memcmp(ref, got, n * rows * sizeof *got) != 0) {
                    if (wrong < 5)
                        fprintf(stderr, "\n  packed differs: rows %zu cols %zu n %zu threads %d\n", rows, cols, n, t);
                    wrong++;
                }
                runs++;
            }
        }
        free(w), free(x), free(bias), free(packed), free(ref), free(got);
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(runs, 9 * MAXN * 3);
    for (int t = 2; t <= 3; t++) tfmcrt_pool_free(pools[t]);
}

bool register_packed_tests(void)
{
    static const UnitTest tests[] = {
        { "pack: the documented layout, zero padding", test_pack_layout },
        { "linear_packed_ex: linear_ex's bits, n 1..130, 1-3 threads", test_packed_identical },
    };
    return UNIT_SUITE("packed weights", tests);
}
