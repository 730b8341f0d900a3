/* test_pool.c: the runtime's threads: the pool runs every task exactly once (0 tasks, fewer tasks
 * than threads, odd counts, nested and concurrent calls), and the kernels' _ex forms give the
 * plain forms' results bit for bit at every thread count, at shapes that straddle their blocking. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "tfmcrt.h"
#include "unit.h"

#define MAXTASKS 1000

typedef struct Counts {
    atomic_int ran[MAXTASKS];
    TfmcrtPool *pool;
    size_t inner; /* nested: each task runs this many tasks of its own */
    atomic_int inner_ran[64][16];
} Counts;

static void count_inner(void *arg, size_t task)
{
    atomic_int *row = arg;
    atomic_fetch_add(&row[task], 1);
}

static void count_task(void *arg, size_t task)
{
    Counts *c = arg;
    atomic_fetch_add(&c->ran[task], 1);
    if (c->inner) tfmcrt_pool_parallel_for(c->pool, c->inner, count_inner, c->inner_ran[task]);
}

static Counts *counts_new(TfmcrtPool *pool)
{
    Counts *c = calloc(1, sizeof *c);
    if (c) c->pool = pool;
    return c;
}

static void test_every_task_once(void)
{
    static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 7, 13, 64, 999, MAXTASKS };
    for (int threads = 1; threads <= 5; threads++) {
        TfmcrtPool *pool = tfmcrt_pool_new(threads);
        CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
        CU_ASSERT_EQUAL(tfmcrt_pool_threads(pool), threads);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            for (int round = 0; round < 3; round++) {
                Counts *c = counts_new(pool);
                CU_ASSERT_PTR_NOT_NULL_FATAL(c);
                tfmcrt_pool_parallel_for(pool, sizes[k], count_task, c);
                int wrong = 0;
                for (size_t t = 0; t < MAXTASKS; t++) wrong += atomic_load(&c->ran[t]) != (t < sizes[k]);
                CU_ASSERT_EQUAL(wrong, 0);
                free(c);
            }
        }
        tfmcrt_pool_free(pool);
    }
}

/* Through an execution context, and with none (NULL: in order, on this thread). */
static size_t order[16];
static size_t norder;
static void record(void *arg, size_t task)
{
    (void)arg;
    order[norder++] = task;
}

static void test_exec(void)
{
    norder = 0;
    tfmcrt_parallel_for(NULL, 5, record, NULL);
    CU_ASSERT_EQUAL(norder, 5);
    for (size_t i = 0; i < norder; i++) CU_ASSERT_EQUAL(order[i], i);
    TfmcrtExec none = tfmcrt_pool_exec(NULL, 0);
    CU_ASSERT_PTR_NULL(none.parallel_for);
    CU_ASSERT_EQUAL(none.nthreads, 1);
    TfmcrtPool *pool = tfmcrt_pool_new(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    TfmcrtExec ex = tfmcrt_pool_exec(pool, 7);
    CU_ASSERT_EQUAL(ex.nthreads, 3);
    CU_ASSERT_EQUAL(ex.grain, 7);
    Counts *c = counts_new(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    tfmcrt_parallel_for(&ex, 37, count_task, c);
    int wrong = 0;
    for (size_t t = 0; t < MAXTASKS; t++) wrong += atomic_load(&c->ran[t]) != (t < 37);
    CU_ASSERT_EQUAL(wrong, 0);
    free(c);
    tfmcrt_pool_free(pool);
    tfmcrt_pool_free(NULL);
    CU_ASSERT(tfmcrt_cores() >= 1);
}

/* A task that calls parallel_for on its own pool: the inner tasks run too, each once. */
static void test_nested(void)
{
    TfmcrtPool *pool = tfmcrt_pool_new(3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    Counts *c = counts_new(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->inner = 11;
    tfmcrt_pool_parallel_for(pool, 64, count_task, c);
    int wrong = 0;
    for (size_t t = 0; t < 64; t++) {
        wrong += atomic_load(&c->ran[t]) != 1;
        for (size_t u = 0; u < 16; u++) wrong += atomic_load(&c->inner_ran[t][u]) != (u < 11);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    free(c);
    tfmcrt_pool_free(pool);
}

/* Two threads sharing one pool: their calls take turns, and each runs its own tasks once. */
static void *caller(void *arg)
{
    Counts *c = arg;
    for (int round = 0; round < 50; round++) tfmcrt_pool_parallel_for(c->pool, 20, count_task, c);
    return NULL;
}

static void test_concurrent_callers(void)
{
    TfmcrtPool *pool = tfmcrt_pool_new(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool);
    Counts *a = counts_new(pool), *b = counts_new(pool);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    pthread_t ta, tb;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ta, NULL, caller, a), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tb, NULL, caller, b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    int wrong = 0;
    for (size_t t = 0; t < MAXTASKS; t++)
        wrong += atomic_load(&a->ran[t]) != (t < 20 ? 50 : 0) || atomic_load(&b->ran[t]) != (t < 20 ? 50 : 0);
    CU_ASSERT_EQUAL(wrong, 0);
    free(a);
    free(b);
    tfmcrt_pool_free(pool);
}

/* ------------------------------------------------ kernels: threads change nothing */

static float *random_floats(size_t n, unsigned seed)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    return v;
}

static TfmcrtPool *pools[5];
static TfmcrtExec execs[5]; /* execs[t]: t threads, every kernel cut as finely as it goes */

static void open_pools(void)
{
    for (int t = 2; t <= 4; t++) {
        pools[t] = tfmcrt_pool_new(t);
        execs[t] = tfmcrt_pool_exec(pools[t], 1);
    }
}

static void close_pools(void)
{
    for (int t = 2; t <= 4; t++) tfmcrt_pool_free(pools[t]), pools[t] = NULL;
}

static void test_linear_threads(void)
{
    /* rows across the 8-row blocks, the 16 and 32 wide panels; positions across the 4 and 8 deep
     * tiles; columns across the 16 lanes and the 128-column panels */
    static const size_t rows[] = { 1, 7, 8, 9, 16, 17, 33, 70, 200 };
    static const size_t cols[] = { 1, 15, 16, 31, 130, 257 };
    static const size_t ns[] = { 1, 2, 3, 4, 5, 9, 17, 40 };
    open_pools();
    int wrong = 0, runs = 0;
    for (size_t a = 0; a < sizeof rows / sizeof rows[0]; a++)
        for (size_t b = 0; b < sizeof cols / sizeof cols[0]; b++)
            for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
                size_t R = rows[a], C = cols[b], n = ns[c];
                float *w = random_floats(R * C, 1), *x = random_floats(n * C, 2), *bias = random_floats(R, 3);
                float *ref = malloc(n * R * sizeof *ref), *got = malloc(n * R * sizeof *got);
                CU_ASSERT_FATAL(w && x && bias && ref && got);
                tfmcrt_linear(ref, x, n, w, (c & 1) ? bias : NULL, R, C);
                for (int t = 2; t <= 4; t++) {
                    memset(got, 0xFF, n * R * sizeof *got);
                    tfmcrt_linear_ex(&execs[t], got, x, n, w, (c & 1) ? bias : NULL, R, C);
                    wrong += memcmp(ref, got, n * R * sizeof *got) != 0;
                    runs++;
                }
                free(w), free(x), free(bias), free(ref), free(got);
            }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(runs, 9 * 6 * 8 * 3);
    close_pools();
}

static void test_attend_threads(void)
{
    static const int scores[] = { TFMCRT_SOFTMAX, TFMCRT_SOFTMAX1, TFMCRT_LINEAR, TFMCRT_HARD };
    static const size_t ns[] = { 1, 3, 4, 17, 33 };
    open_pools();
    int wrong = 0;
    for (size_t s = 0; s < 4; s++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (size_t pos0 = 0; pos0 <= 5; pos0 += 5) {
                TfmcrtAttention a = { 6, 3, 20, scores[s], (k & 1) == 0, (int)(k % 3) * 4, s == 0 && k == 2, 0.25f };
                size_t n = ns[k], T = pos0 + n, qd = 6 * 20, kvd = 3 * 20;
                float *q = random_floats(n * qd, 4), *kc = random_floats(T * kvd, 5), *vc = random_floats(T * kvd, 6);
                float *ref = malloc(n * qd * sizeof *ref), *got = malloc(n * qd * sizeof *got);
                float *scratch = malloc(tfmcrt_attend_scratch_floats(&a, T) * sizeof *scratch);
                CU_ASSERT_FATAL(q && kc && vc && ref && got && scratch);
                tfmcrt_attend(ref, q, kc, vc, n, pos0, &a, scratch);
                for (int t = 2; t <= 4; t++) {
                    memset(got, 0xFF, n * qd * sizeof *got);
                    tfmcrt_attend_ex(&execs[t], got, q, kc, vc, n, pos0, &a, scratch);
                    wrong += memcmp(ref, got, n * qd * sizeof *got) != 0;
                }
                free(q), free(kc), free(vc), free(ref), free(got), free(scratch);
            }
    CU_ASSERT_EQUAL(wrong, 0);
    close_pools();
}

static void test_rows_threads(void)
{
    open_pools();
    int wrong = 0;
    for (size_t n = 1; n <= 9; n += 4) {
        size_t d = 40, count = n * 700 + 3;
        float *x = random_floats(n * d, 7), *w = random_floats(d, 8), *b = random_floats(d, 9);
        float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
        float *g = random_floats(count, 10), *u = random_floats(count, 11);
        CU_ASSERT_FATAL(x && w && b && ref && got && g && u);
        for (int kind = TFMCRT_LAYERNORM; kind <= TFMCRT_DYT; kind++) {
            tfmcrt_norm(ref, x, n, d, kind, 1e-5f, 0.7f, w, b);
            for (int t = 2; t <= 4; t++) {
                tfmcrt_norm_ex(&execs[t], got, x, n, d, kind, 1e-5f, 0.7f, w, b);
                wrong += memcmp(ref, got, n * d * sizeof *got) != 0;
            }
        }
        for (int act = TFMCRT_RELU; act <= TFMCRT_SILU; act++) {
            memcpy(ref, g, count * sizeof *ref);
            tfmcrt_act(ref, count, act);
            for (int t = 2; t <= 4; t++) {
                memcpy(got, g, count * sizeof *got);
                tfmcrt_act_ex(&execs[t], got, count, act);
                wrong += memcmp(ref, got, count * sizeof *got) != 0;
            }
        }
        for (int act = TFMCRT_SWIGLU; act <= TFMCRT_GEGLU_TANH; act++) {
            tfmcrt_glu(ref, g, u, count, act);
            for (int t = 2; t <= 4; t++) {
                tfmcrt_glu_ex(&execs[t], got, g, u, count, act);
                wrong += memcmp(ref, got, count * sizeof *got) != 0;
            }
        }
        memcpy(ref, x, n * d * sizeof *ref);
        tfmcrt_rope(ref, n, 2, 20, 3, 10000.0f);
        for (int t = 2; t <= 4; t++) {
            memcpy(got, x, n * d * sizeof *got);
            tfmcrt_rope_ex(&execs[t], got, n, 2, 20, 3, 10000.0f);
            wrong += memcmp(ref, got, n * d * sizeof *got) != 0;
        }
        /* partial rotary: 6 of 20 dimensions turn, the others stay as they were */
        float freq[3] = { 1.0f, 0.1f, 0.01f };
        memcpy(ref, x, n * d * sizeof *ref);
        tfmcrt_rope_freq(ref, n, 2, 20, 6, 3, freq);
        for (size_t i = 0; i < n * d; i++)
            if (i % 20 >= 6 && ref[i] != x[i]) wrong++;
        /* by hand: position 3, pair (1, 4) of the second head at frequency 0.1 */
        float c3 = (float)cos(0.3), s3 = (float)sin(0.3);
        CU_ASSERT_DOUBLE_EQUAL(ref[21], x[21] * c3 - x[24] * s3, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(ref[24], x[24] * c3 + x[21] * s3, 1e-6);
        for (int t = 2; t <= 4; t++) {
            memcpy(got, x, n * d * sizeof *got);
            tfmcrt_rope_freq_ex(&execs[t], got, n, 2, 20, 6, 3, freq);
            wrong += memcmp(ref, got, n * d * sizeof *got) != 0;
        }
        free(x), free(w), free(b), free(ref), free(got), free(g), free(u);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    close_pools();
}

static void test_moe_threads(void)
{
    size_t d = 24, hidden = 40;
    int E = 4, top = 2;
    float *router = random_floats((size_t)E * d, 12), *w[4][6];
    TfmcrtFfn ex[4];
    for (int e = 0; e < E; e++) {
        for (int k = 0; k < 6; k++)
            w[e][k] = random_floats(k == 5 ? d : k % 2 ? hidden : hidden * d, 13 + 6 * (unsigned)e + (unsigned)k);
        TfmcrtFfn f = { w[e][0], w[e][1], e % 2 ? w[e][2] : NULL, e % 2 ? w[e][3] : NULL, w[e][4], w[e][5] };
        ex[e] = f;
    }
    open_pools();
    int wrong = 0;
    for (size_t n = 1; n <= 21; n += 5) {
        float *x = random_floats(n * d, 40), *ref = malloc(n * d * sizeof *ref), *got = malloc(n * d * sizeof *got);
        float *scratch = malloc(tfmcrt_moe_scratch_floats(d, E, hidden, n) * sizeof *scratch);
        CU_ASSERT_FATAL(x && ref && got && scratch);
        tfmcrt_moe(ref, x, n, d, router, ex, E, top, hidden, TFMCRT_SWIGLU, scratch);
        for (int t = 2; t <= 4; t++) {
            memset(got, 0xFF, n * d * sizeof *got);
            tfmcrt_moe_ex(&execs[t], got, x, n, d, router, ex, E, top, hidden, TFMCRT_SWIGLU, scratch);
            wrong += memcmp(ref, got, n * d * sizeof *got) != 0;
        }
        free(x), free(ref), free(got), free(scratch);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    close_pools();
    for (int e = 0; e < E; e++)
        for (int k = 0; k < 6; k++) free(w[e][k]);
    free(router);
}

/* Compressed rows (every third weight kept, some rows empty) and the unfused attention. */
static void test_csr_mha_threads(void)
{
    open_pools();
    int wrong = 0;
    size_t R = 37, C = 29, n = 6;
    int *rowptr = malloc((R + 1) * sizeof *rowptr), *colidx = malloc(R * C * sizeof *colidx);
    float *vals = random_floats(R * C, 50), *x = random_floats(n * C, 51), *acc = random_floats(n * R, 52);
    float *ref = malloc(n * R * sizeof *ref), *got = malloc(n * R * sizeof *got);
    CU_ASSERT_FATAL(rowptr && colidx && vals && x && acc && ref && got);
    rowptr[0] = 0;
    for (size_t r = 0; r < R; r++) {
        int k = rowptr[r];
        for (size_t c = 0; c < C && r % 5 != 2; c++)
            if ((r + c) % 3 == 0) colidx[k++] = (int)c;
        rowptr[r + 1] = k;
    }
    tfmcrt_linear_csr(ref, x, n, rowptr, colidx, vals, NULL, R, C);
    for (int t = 2; t <= 4; t++) {
        tfmcrt_linear_csr_ex(&execs[t], got, x, n, rowptr, colidx, vals, NULL, R, C);
        wrong += memcmp(ref, got, n * R * sizeof *got) != 0;
    }
    tfmcrt_linear_csr_acc(ref, acc, x, n, rowptr, colidx, vals, NULL, R, C);
    for (int t = 2; t <= 4; t++) {
        tfmcrt_linear_csr_acc_ex(&execs[t], got, acc, x, n, rowptr, colidx, vals, NULL, R, C);
        wrong += memcmp(ref, got, n * R * sizeof *got) != 0;
    }
    free(rowptr), free(colidx), free(vals), free(x), free(acc), free(ref), free(got);

    TfmcrtAttention a = { 6, 2, 12, TFMCRT_SOFTMAX1, 1, 3, 0, 0.3f };
    size_t pos0 = 2, T = 9, H = 6, hd = 12, kvd = 2 * 12;
    n = 5;
    float *q = random_floats(n * H * hd, 53), *kc = random_floats(T * kvd, 54), *vc = random_floats(T * kvd, 55);
    float *s1 = calloc(H * n * T, sizeof(float)), *p1 = calloc(H * n * T, sizeof(float));
    float *s2 = calloc(H * n * T, sizeof(float)), *p2 = calloc(H * n * T, sizeof(float));
    float *o1 = malloc(n * H * hd * sizeof(float)), *o2 = malloc(n * H * hd * sizeof(float));
    CU_ASSERT_FATAL(q && kc && vc && s1 && p1 && s2 && p2 && o1 && o2);
    tfmcrt_mha_scores(s1, q, kc, n, pos0, T, &a);
    tfmcrt_mha_softmax(p1, s1, n, pos0, T, &a);
    tfmcrt_mha_mix(o1, p1, vc, n, pos0, T, &a);
    for (int t = 2; t <= 4; t++) {
        tfmcrt_mha_scores_ex(&execs[t], s2, q, kc, n, pos0, T, &a);
        tfmcrt_mha_softmax_ex(&execs[t], p2, s2, n, pos0, T, &a);
        tfmcrt_mha_mix_ex(&execs[t], o2, p2, vc, n, pos0, T, &a);
        wrong += memcmp(s1, s2, H * n * T * sizeof(float)) != 0 || memcmp(p1, p2, H * n * T * sizeof(float)) != 0 ||
                 memcmp(o1, o2, n * H * hd * sizeof(float)) != 0;
    }
    free(q), free(kc), free(vc), free(s1), free(p1), free(s2), free(p2), free(o1), free(o2);
    CU_ASSERT_EQUAL(wrong, 0);
    close_pools();
}

bool register_pool_tests(void)
{
    static const UnitTest tests[] = {
        { "every task once", test_every_task_once },
        { "execution contexts", test_exec },
        { "nested parallel_for", test_nested },
        { "concurrent callers", test_concurrent_callers },
        { "linear: threads change nothing", test_linear_threads },
        { "attend: threads change nothing", test_attend_threads },
        { "norm, act, glu, rope: threads change nothing", test_rows_threads },
        { "moe: threads change nothing", test_moe_threads },
        { "compressed rows, unfused attention: threads change nothing", test_csr_mha_threads },
    };
    return unit_add_suite("pool", tests, sizeof tests / sizeof tests[0]);
}
