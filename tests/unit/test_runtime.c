/* test_runtime.c: the runtime kernels (tfmcrt) against naive double-precision references. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ------------------------------------------------ shared by the tests below */

/* Floats past the end of every output buffer, which a kernel must leave alone. */
enum { GUARD = 16 };
#define SENTINEL 12345.0f

static void fill_nan(float *x, size_t count)
{
    for (size_t i = 0; i < count; i++) x[i] = NAN;
}

static void set_guard(float *x)
{
    for (size_t i = 0; i < GUARD; i++) x[i] = SENTINEL;
}

static bool guard_intact(const float *x)
{
    for (size_t i = 0; i < GUARD; i++)
        if (x[i] != SENTINEL) return false;
    return true;
}

/* The worst |got - ref| / tol of a case, so that a case is one assertion (thousands of cases stay
 * fast) and a failure can name its case. A NaN error is infinitely bad; the first element (at 0)
 * always sets it, so that it holds real numbers. */
typedef struct Worst {
    double ratio, got, ref, tol;
    size_t at;
} Worst;

static void worst_add(Worst *w, double got, double ref, double tol, size_t at)
{
    double err = fabs(got - ref), ratio = isnan(err) ? INFINITY : err / tol;
    if (ratio > w->ratio || at == 0) *w = (Worst){ ratio, got, ref, tol, at };
}

/* ------------------------------------------------ linear through the packed-panel GEMM */

/* n >= 4 positions go through linear_gemm (tiles 4x32, or 8x16 when rows <= 16; depth blocks of 128
 * columns; edge tiles through zero-padded copies): shapes on both sides of every edge, each output
 * against a double reference within 1e-5 of the sum of the sizes of its terms, and each row
 * against a one-position call (the row-block kernel, a different summation). */
static void test_linear_gemm(void)
{
    static const size_t ns[] = { 4, 5, 7, 8, 9, 13, 33 };
    static const size_t rowss[] = { 1, 7, 16, 17, 31, 32, 33, 70 };
    static const size_t colss[] = { 1, 15, 16, 127, 128, 129, 300 };
    enum { MAXN = 33, MAXR = 70, MAXC = 300 };
    static float w[MAXR * MAXC], in[MAXN * MAXC], b[MAXR], out[MAXN * MAXR + GUARD], one[MAXR + GUARD];
    static double tol[MAXN * MAXR];
    uint32_t state = 4242;
    for (size_t ci = 0; ci < sizeof colss / sizeof colss[0]; ci++)
        for (size_t ri = 0; ri < sizeof rowss / sizeof rowss[0]; ri++) {
            size_t rows = rowss[ri], cols = colss[ci];
            for (size_t i = 0; i < rows * cols; i++) w[i] = next_float(&state);
            for (size_t r = 0; r < rows; r++) b[r] = next_float(&state);
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                size_t n = ns[ni];
                for (size_t i = 0; i < n * cols; i++) in[i] = next_float(&state) * 4.0f;
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                    const float *bias = with_bias ? b : NULL;
                    fill_nan(out, n * rows);
                    set_guard(out + n * rows);
                    tfmcrt_linear(out, in, n, w, bias, rows, cols);
                    Worst vs_ref = { 0 }, vs_row = { 0 };
                    for (size_t i = 0; i < n; i++)
                        for (size_t r = 0; r < rows; r++) {
                            double s = bias ? (double)b[r] : 0.0, size = fabs(s);
                            for (size_t c = 0; c < cols; c++) {
                                double t = (double)w[r * cols + c] * (double)in[i * cols + c];
                                s += t;
                                size += fabs(t);
                            }
                            tol[i * rows + r] = 1e-5 * (size > 1.0 ? size : 1.0);
                            worst_add(&vs_ref, out[i * rows + r], s, tol[i * rows + r], i * rows + r);
                        }
                    /* row i alone takes the one-position kernel */
                    for (size_t i = 0; i < n; i++) {
                        fill_nan(one, rows);
                        set_guard(one + rows);
                        tfmcrt_linear(one, in + i * cols, 1, w, bias, rows, cols);
                        CU_ASSERT(guard_intact(one + rows));
                        for (size_t r = 0; r < rows; r++)
                            worst_add(&vs_row, out[i * rows + r], one[r], tol[i * rows + r], i * rows + r);
                    }
                    if (!(vs_ref.ratio <= 1.0))
                        fprintf(stderr,
                                "\n  linear n=%zu rows=%zu cols=%zu bias=%d: out[%zu][%zu] = %.9g, double %.9g\n",
                                n, rows, cols, with_bias, vs_ref.at / rows, vs_ref.at % rows, vs_ref.got, vs_ref.ref);
                    if (!(vs_row.ratio <= 1.0))
                        fprintf(stderr,
                                "\n  linear n=%zu rows=%zu cols=%zu bias=%d: out[%zu][%zu] = %.9g, alone %.9g\n",
                                n, rows, cols, with_bias, vs_row.at / rows, vs_row.at % rows, vs_row.got, vs_row.ref);
                    CHECK_DBL(vs_ref.got, vs_ref.ref, vs_ref.tol);
                    CHECK_DBL(vs_row.got, vs_row.ref, vs_row.tol);
                    CU_ASSERT(guard_intact(out + n * rows));
                }
            }
        }
}

/* ------------------------------------------------ attention over the caches */

/* The documented semantics of tfmcrt_attend in double precision: query i at position t = pos0 + i
 * sees key j < pos0 + n when (not causal or j <= t) and (no window or j > t - window); its score is
 * scale q.k, minus m_h (t - j) with alibi; head h reads kv head h / (heads / kv_heads). Weights:
 * softmax; softmax1 exp(s) / (1 + sum exp(s)); hard, the average over the top-scoring keys;
 * linear, phi(q).phi(k) / their sum with phi = elu + 1 (neither scale nor alibi). Returns the
 * number of (query, head) rows whose hard maximum is tied. */
static size_t attend_ref(double *ref, const float *q, const float *kc, const float *vc, size_t n, size_t pos0,
                         const TfmcrtAttention *a)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, group = H / (size_t)a->kv_heads;
    size_t kvd = (size_t)a->kv_heads * hd, qd = H * hd, total = pos0 + n, ties = 0;
    double *s = malloc(total * sizeof *s), *p = malloc(total * sizeof *p);
    bool *ok = malloc(total * sizeof *ok);
    for (size_t i = 0; i < n; i++)
        for (size_t h = 0; h < H; h++) {
            long t = (long)(pos0 + i);
            const float *qh = q + i * qd + h * hd;
            size_t kh = h / group;
            double m = -INFINITY, slope = pow(2.0, -8.0 * (double)(h + 1) / (double)H);
            for (size_t j = 0; j < total; j++) {
                long jj = (long)j;
                ok[j] = (!a->causal || jj <= t) && (a->window <= 0 || jj > t - a->window);
                if (!ok[j]) continue;
                const float *kj = kc + j * kvd + kh * hd;
                double x = 0;
                for (size_t c = 0; c < hd; c++) {
                    if (a->score == TFMCRT_LINEAR) {
                        double fq = qh[c] > 0 ? qh[c] + 1.0 : exp(qh[c]), fk = kj[c] > 0 ? kj[c] + 1.0 : exp(kj[c]);
                        x += fq * fk;
                    } else {
                        x += (double)qh[c] * (double)kj[c];
                    }
                }
                if (a->score != TFMCRT_LINEAR) {
                    x *= (double)a->scale;
                    if (a->alibi) x -= slope * (double)(t - jj);
                }
                s[j] = x;
                if (x > m) m = x;
            }
            double sum = 0;
            if (a->score == TFMCRT_SOFTMAX1) sum = exp(-(m > 0 ? m : 0)); /* the virtual key of score 0 */
            size_t count = 0;
            for (size_t j = 0; j < total; j++) {
                if (!ok[j]) {
                    p[j] = 0;
                    continue;
                }
                switch (a->score) {
                case TFMCRT_SOFTMAX: p[j] = exp(s[j] - m); break;
                case TFMCRT_SOFTMAX1: p[j] = exp(s[j] - (m > 0 ? m : 0)); break;
                case TFMCRT_HARD: p[j] = s[j] == m, count += s[j] == m; break;
                default: p[j] = s[j]; break;
                }
                sum += p[j];
            }
            ties += count > 1;
            double *o = ref + i * qd + h * hd;
            for (size_t c = 0; c < hd; c++) o[c] = 0;
            for (size_t j = 0; j < total; j++)
                if (ok[j])
                    for (size_t c = 0; c < hd; c++) o[c] += p[j] / sum * (double)vc[j * kvd + kh * hd + c];
        }
    free(s);
    free(p);
    free(ok);
    return ties;
}

/* tfmcrt_attend against attend_ref within 2e-5 of max(1, max |v|) (the worst case measures 0.06
 * of that, 0.6 with scores near 80): outputs filled with NaN first, so each must be written;
 * nothing past the output or past the pos0 + n floats of scratch may change. One assertion per
 * case; a failure prints the case. */
static size_t check_attend(const TfmcrtAttention *a, size_t n, size_t pos0, const float *q, const float *kc,
                           const float *vc)
{
    size_t qd = (size_t)a->heads * (size_t)a->head_dim, total = pos0 + n;
    size_t kvd = (size_t)a->kv_heads * (size_t)a->head_dim;
    float *out = malloc((n * qd + GUARD) * sizeof *out), *scratch = malloc((total + GUARD) * sizeof *scratch);
    double *ref = malloc(n * qd * sizeof *ref);
    fill_nan(out, n * qd);
    set_guard(out + n * qd);
    fill_nan(scratch, total);
    set_guard(scratch + total);
    tfmcrt_attend(out, q, kc, vc, n, pos0, a, scratch);
    size_t ties = attend_ref(ref, q, kc, vc, n, pos0, a);
    double vmax = 1.0;
    for (size_t i = 0; i < total * kvd; i++) vmax = fabs(vc[i]) > vmax ? fabs(vc[i]) : vmax;
    double tol = 2e-5 * vmax;
    Worst w = { 0 };
    bool finite = true;
    for (size_t i = 0; i < n * qd; i++) {
        worst_add(&w, out[i], ref[i], tol, i);
        finite &= isfinite(out[i]) != 0;
    }
    if (!(w.ratio <= 1.0) || !finite)
        fprintf(stderr,
                "\n  attend n=%zu pos0=%zu heads=%d kv_heads=%d head_dim=%d score=%d causal=%d window=%d alibi=%d "
                "scale=%g: out[%zu][%zu] expected %.9g, got %.9g (tolerance %g)\n",
                n, pos0, a->heads, a->kv_heads, a->head_dim, a->score, a->causal, a->window, a->alibi,
                (double)a->scale, w.at / qd, w.at % qd, w.ref, w.got, w.tol);
    CHECK_DBL(w.got, w.ref, w.tol);
    CU_ASSERT(finite);
    CU_ASSERT(guard_intact(out + n * qd));
    CU_ASSERT(guard_intact(scratch + total));
    free(out);
    free(scratch);
    free(ref);
    return ties;
}

/* Queries q[n][heads * hd] uniform in [qlo, qhi), keys [pos0 + n][kv_heads * hd] in [klo, khi),
 * values in [-2, 2), in exactly sized blocks so that a memory checker sees any read past them. */
typedef struct AttData {
    float *q, *k, *v;
} AttData;

static AttData att_data(uint32_t *state, size_t n, size_t pos0, size_t heads, size_t kv_heads, size_t hd, float qlo,
                        float qhi, float klo, float khi)
{
    size_t nq = n * heads * hd, nkv = (pos0 + n) * kv_heads * hd;
    AttData d = { malloc(nq * sizeof(float)), malloc(nkv * sizeof(float)), malloc(nkv * sizeof(float)) };
    for (size_t i = 0; i < nq; i++) d.q[i] = qlo + (qhi - qlo) * 0.5f * (next_float(state) + 1.0f);
    for (size_t i = 0; i < nkv; i++) d.k[i] = klo + (khi - klo) * 0.5f * (next_float(state) + 1.0f);
    for (size_t i = 0; i < nkv; i++) d.v[i] = 2.0f * next_float(state);
    return d;
}

static void att_free(AttData *d)
{
    free(d->q);
    free(d->k);
    free(d->v);
}

/* softmax and softmax1: n >= 4 and head_dim <= 128 take the tiled kernel (16 queries a vector,
 * blocks of 8 keys), the rest the row-at-a-time one; every combination of the masks. */
static void test_attend_softmax(void)
{
    static const size_t ns[] = { 1, 3, 4, 5, 16, 17, 40 }, pos0s[] = { 0, 5 };
    static const int hds[] = { 8, 16, 64, 80, 136 }, groups[][2] = { { 2, 2 }, { 4, 2 } };
    uint32_t state = 31337;
    for (size_t di = 0; di < sizeof hds / sizeof hds[0]; di++)
        for (size_t gi = 0; gi < 2; gi++)
            for (size_t pi = 0; pi < 2; pi++)
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    size_t n = ns[ni], pos0 = pos0s[pi], hd = (size_t)hds[di];
                    size_t heads = (size_t)groups[gi][0], kv_heads = (size_t)groups[gi][1];
                    AttData d = att_data(&state, n, pos0, heads, kv_heads, hd, -2, 2, -2, 2);
                    for (int score = TFMCRT_SOFTMAX; score <= TFMCRT_SOFTMAX1; score++)
                        for (int mask = 0; mask < 8; mask++) {
                            TfmcrtAttention a = { groups[gi][0], groups[gi][1], hds[di], score, mask & 1,
                                                  mask & 2 ? 3 : 0, (mask & 4) != 0, 1.5f / sqrtf((float)hd) };
                            check_attend(&a, n, pos0, d.q, d.k, d.v);
                        }
                    att_free(&d);
                }
}

/* The tiled kernel skips the mask on blocks of 8 keys that every query of its group of 16 sees:
 * pos0 from 0 to 16 puts the first query's last key, and with windows the last query's first key,
 * at every position within a block. */
static void test_attend_block_alignment(void)
{
    static const size_t ns[] = { 4, 5, 16, 17, 24 };
    static const int windows[] = { 0, 3, 8, 13 };
    uint32_t state = 1618;
    for (size_t pos0 = 0; pos0 <= 16; pos0++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            size_t n = ns[ni];
            AttData d = att_data(&state, n, pos0, 4, 2, 8, -2, 2, -2, 2);
            for (int score = TFMCRT_SOFTMAX; score <= TFMCRT_SOFTMAX1; score++)
                for (int causal = 0; causal < 2; causal++)
                    for (size_t wi = 0; wi < sizeof windows / sizeof windows[0]; wi++) {
                        TfmcrtAttention a = { 4, 2, 8, score, causal, windows[wi], (int)(pos0 + n) % 2, 0.5f };
                        check_attend(&a, n, pos0, d.q, d.k, d.v);
                    }
            att_free(&d);
        }
}

/* Scores up to +-80 (and, in half the cases, all of them far below 0, where softmax1's virtual key
 * dominates): every output finite, and still the reference's numbers within the same tolerance.
 * The scores are then rounded to a few float epsilons of 80, which moves the weights by as many
 * relative: the worst case measures about half the tolerance (AVX-512, AVX2 and SSE builds). */
static void test_attend_large_scores(void)
{
    static const size_t ns[] = { 3, 4, 17, 40 };
    static const int hds[] = { 16, 64, 136 };
    uint32_t state = 99;
    for (size_t di = 0; di < sizeof hds / sizeof hds[0]; di++)
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (int negative = 0; negative < 2; negative++) {
                size_t n = ns[ni], pos0 = 5, hd = (size_t)hds[di], kvd = 2 * hd, total = pos0 + n;
                /* negative: q > 0 and k < 0, so every score is below 0 */
                AttData d = negative ? att_data(&state, n, pos0, 4, 2, hd, 0.1f, 1, -1, -0.1f)
                                     : att_data(&state, n, pos0, 4, 2, hd, -1, 1, -1, 1);
                double most = 0;
                for (size_t i = 0; i < n; i++)
                    for (size_t h = 0; h < 4; h++)
                        for (size_t j = 0; j < total; j++) {
                            double x = 0;
                            for (size_t c = 0; c < hd; c++)
                                x += (double)d.q[i * 4 * hd + h * hd + c] * (double)d.k[j * kvd + h / 2 * hd + c];
                            most = fabs(x) > most ? fabs(x) : most;
                        }
                float scale = (float)(80.0 / most);
                for (int score = TFMCRT_SOFTMAX; score <= TFMCRT_SOFTMAX1; score++)
                    for (int mask = 0; mask < 4; mask++) {
                        TfmcrtAttention a = { 4, 2, hds[di], score, mask & 1, 0, (mask & 2) != 0, scale };
                        check_attend(&a, n, pos0, d.q, d.k, d.v);
                    }
                att_free(&d);
            }
}

/* hard and linear always take the row-at-a-time kernel. hard: small integer queries and keys and
 * a power-of-two scale make every score exact in float and in double, so both see the same ties
 * (which the test makes sure occur). */
static void test_attend_hard_linear(void)
{
    static const size_t ns[] = { 1, 3, 4, 17 }, pos0s[] = { 0, 5 };
    static const int hds[] = { 8, 16 };
    uint32_t state = 2718;
    size_t ties = 0;
    for (size_t di = 0; di < 2; di++)
        for (size_t pi = 0; pi < 2; pi++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                size_t n = ns[ni], pos0 = pos0s[pi], hd = (size_t)hds[di];
                AttData d = att_data(&state, n, pos0, 4, 2, hd, -2, 2, -2, 2);
                for (int mask = 0; mask < 8; mask++) {
                    TfmcrtAttention a = { 4, 2, hds[di], TFMCRT_LINEAR, mask & 1, mask & 2 ? 3 : 0, 0, 1.0f };
                    check_attend(&a, n, pos0, d.q, d.k, d.v);
                }
                /* integers in -2..2 */
                size_t nq = n * 4 * hd, nkv = (pos0 + n) * 2 * hd;
                for (size_t i = 0; i < nq; i++) d.q[i] = roundf(d.q[i]);
                for (size_t i = 0; i < nkv; i++) d.k[i] = roundf(d.k[i]);
                for (int mask = 0; mask < 8; mask++) {
                    TfmcrtAttention a = { 4, 2, hds[di], TFMCRT_HARD, mask & 1, mask & 2 ? 3 : 0, (mask & 4) != 0,
                                          0.5f };
                    ties += check_attend(&a, n, pos0, d.q, d.k, d.v);
                }
                att_free(&d);
            }
    CU_ASSERT(ties > 10);
}

/* ------------------------------------------------ activations through the vector exp */

/* gelu_tanh in double: 0.5 x (1 + tanh u); for u < -5, where 1 + tanh u cancels, the same value
 * as x e^(2u) / (1 + e^(2u)). */
static double gelu_tanh_ref(double x)
{
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    if (u >= -5) return 0.5 * x * (1.0 + tanh(u));
    double e = exp(2.0 * u);
    return x * e / (1.0 + e);
}

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }

/* The kernel computes x / (1 + exp(-z)) with z = x (silu) or z = 2u (gelu_tanh), and measures
 * (x from -100 to 100 by 0.01; AVX-512, AVX2 and SSE builds) within 2.2 float epsilons of the
 * result, relative, for silu and within 1.15 (1 + |z|) for gelu_tanh, whose z, a cubic in x
 * rounded in float, is off by about |z| epsilons, which exp turns into as many relative. The
 * tolerances allow about twice that: 4 and 2 (1 + |z|) epsilons (swiglu, one product more: 5).
 * Where -z > 87 the exp saturates (at exp(87)) and the result, below |x| e^-87 = 1.7e-38 |x| in
 * size, is only absolutely right: hence a floor of 1e-37 |x| (times |up| for a gated unit). */
static double act_tol(double x, double ref, int act, double up)
{
    double z = 2.0 * 0.7978845608028654 * (x + 0.044715 * x * x * x);
    double rel = act == TFMCRT_GELU_TANH ? 2.0 * (1.0 + fabs(z)) : act == TFMCRT_SILU ? 4.0 : 5.0;
    return rel * FLT_EPSILON * fabs(ref) + 1e-37 * (fabs(x) > 1.0 ? fabs(x) : 1.0) * (fabs(up) > 1.0 ? fabs(up) : 1.0);
}

static void test_act_logistic(void)
{
    enum { GRID = 20001 };
    static float x[GRID + GUARD], y[GRID + GUARD];
    static const int acts[] = { TFMCRT_GELU_TANH, TFMCRT_SILU };
    static const float special[] = { 0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, -1e-6f, 100.0f, -100.0f, 87.5f, -87.5f };
    for (size_t i = 0; i < GRID; i++) x[i] = (float)(-100.0 + 0.01 * (double)i);
    for (size_t ai = 0; ai < 2; ai++) {
        int act = acts[ai];
        memcpy(y, x, GRID * sizeof(float));
        set_guard(y + GRID);
        tfmcrt_act(y, GRID, act);
        Worst w = { 0 };
        for (size_t i = 0; i < GRID; i++) {
            double ref = act == TFMCRT_SILU ? silu_ref(x[i]) : gelu_tanh_ref(x[i]);
            worst_add(&w, y[i], ref, act_tol(x[i], ref, act, 1.0), i);
        }
        if (!(w.ratio <= 1.0))
            fprintf(stderr, "\n  %s(%.9g): expected %.9g, got %.9g\n", act == TFMCRT_SILU ? "silu" : "gelu_tanh",
                    (double)x[w.at], w.ref, w.got);
        CHECK_DBL(w.got, w.ref, w.tol);
        CU_ASSERT(guard_intact(y + GRID));
        float s[sizeof special / sizeof special[0]];
        memcpy(s, special, sizeof s);
        tfmcrt_act(s, sizeof s / sizeof s[0], act);
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
            double ref = act == TFMCRT_SILU ? silu_ref(special[i]) : gelu_tanh_ref(special[i]);
            CHECK_DBL(s[i], ref, act_tol(special[i], ref, act, 1.0));
        }
    }
}

/* Counts with tails: the tail goes through a padded copy, so an element's result does not depend
 * on where it is (exactly), and nothing past count is written. */
static void test_act_tails(void)
{
    static const size_t counts[] = { 1, 15, 16, 17, 100 };
    static const int acts[] = { TFMCRT_GELU_TANH, TFMCRT_SILU };
    float x[100], full[100], y[100 + GUARD];
    uint32_t state = 5;
    for (size_t i = 0; i < 100; i++) x[i] = next_float(&state) * (i % 2 ? 100.0f : 6.0f);
    for (size_t ai = 0; ai < 2; ai++) {
        int act = acts[ai];
        memcpy(full, x, sizeof full);
        tfmcrt_act(full, 100, act);
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            size_t count = counts[ci];
            /* the last count elements, so that each lands at another lane than in full */
            const float *src = x + 100 - count;
            memcpy(y, src, count * sizeof(float));
            set_guard(y + count);
            tfmcrt_act(y, count, act);
            size_t differ = 0;
            for (size_t i = 0; i < count; i++) {
                double ref = act == TFMCRT_SILU ? silu_ref(src[i]) : gelu_tanh_ref(src[i]);
                CHECK_DBL(y[i], ref, act_tol(src[i], ref, act, 1.0));
                differ += memcmp(&y[i], &full[100 - count + i], sizeof(float)) != 0;
            }
            CHECK_INT(differ, 0);
            CU_ASSERT(guard_intact(y + count));
        }
    }
}

/* swiglu: silu(gate) * up, also with out the same buffer as up (tfmcrt_moe calls it so). */
static void test_glu_swiglu(void)
{
    static const size_t counts[] = { 1, 15, 16, 17, 100 };
    float gate[100], up[100], out[100 + GUARD], h[100 + GUARD];
    uint32_t state = 8;
    for (size_t i = 0; i < 100; i++) {
        gate[i] = next_float(&state) * (i % 3 ? 8.0f : 100.0f);
        up[i] = next_float(&state) * 3.0f;
    }
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        size_t count = counts[ci];
        fill_nan(out, count);
        set_guard(out + count);
        tfmcrt_glu(out, gate, up, count, TFMCRT_SWIGLU);
        memcpy(h, up, count * sizeof(float));
        set_guard(h + count);
        tfmcrt_glu(h, gate, h, count, TFMCRT_SWIGLU);
        size_t differ = 0;
        for (size_t i = 0; i < count; i++) {
            double ref = silu_ref(gate[i]) * (double)up[i];
            CHECK_DBL(out[i], ref, act_tol(gate[i], ref, TFMCRT_SWIGLU, up[i]));
            differ += memcmp(&out[i], &h[i], sizeof(float)) != 0;
        }
        CHECK_INT(differ, 0); /* in place: the same numbers */
        CU_ASSERT(guard_intact(out + count));
        CU_ASSERT(guard_intact(h + count));
    }
}

/* ------------------------------------------------ relu */

/* Exactly max(x, 0), -0 and subnormals and infinities included, in the vector body and in the
 * tail; and tfmcrt_act(RELU) is the same. */
static void test_relu(void)
{
    static const size_t counts[] = { 0, 1, 15, 16, 17, 31, 32, 33, 100 };
    static const float special[] = { -0.0f, 0.0f, 1e-40f, -1e-40f, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX,
                                     INFINITY, -INFINITY, 1.0f, -1.0f, 0.5f };
    enum { NS = sizeof special / sizeof special[0] };
    float orig[100], x[100 + GUARD];
    uint32_t state = 77;
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        size_t count = counts[ci];
        /* every third element special, at positions that move with count into and out of the tail */
        for (size_t i = 0; i < 100; i++)
            orig[i] = i % 3 == 0 ? special[(i / 3 + count) % NS] : next_float(&state) * 50.0f;
        for (int via_act = 0; via_act < 2; via_act++) {
            memcpy(x, orig, sizeof orig);
            set_guard(x + count);
            if (via_act)
                tfmcrt_act(x, count, TFMCRT_RELU);
            else
                tfmcrt_relu(x, count);
            size_t wrong = 0;
            for (size_t i = 0; i < count; i++) {
                bool ok = orig[i] > 0 ? memcmp(&x[i], &orig[i], sizeof(float)) == 0 : x[i] == 0.0f;
                if (!ok && wrong++ == 0)
                    fprintf(stderr, "\n  relu count=%zu: x[%zu] = %g gave %g\n", count, i, (double)orig[i],
                            (double)x[i]);
            }
            CHECK_INT(wrong, 0);
            CU_ASSERT(guard_intact(x + count));
        }
    }
}

bool register_runtime_tests(void)
{
    static const UnitTest tests[] = {
        { "matvec: small, by hand", test_matvec_small },
        { "matvec: random against double", test_matvec_random },
        { "softmax", test_softmax },
        { "softmax rows, causal", test_softmax_rows_causal },
        { "linear: packed-panel GEMM, every edge, against double and one row", test_linear_gemm },
        { "attend: softmax/softmax1, tiled and per row, every mask", test_attend_softmax },
        { "attend: key blocks at every alignment", test_attend_block_alignment },
        { "attend: scores up to 80, no overflow", test_attend_large_scores },
        { "attend: hard and linear", test_attend_hard_linear },
        { "act: gelu_tanh and silu through the vector exp", test_act_logistic },
        { "act: tails", test_act_tails },
        { "glu: swiglu, also in place", test_glu_swiglu },
        { "relu: exact, with tails", test_relu },
    };
    return UNIT_SUITE("runtime", tests);
}
