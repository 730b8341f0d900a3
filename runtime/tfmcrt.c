/* tfmcrt.c: reference kernels of the tfmc runtime. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tfmcrt.h"

const char *tfmcrt_version(void) { return TFMCRT_VERSION; }

/* Clones of the hot kernels for AVX-512, AVX2+FMA and the baseline, chosen at load time from cpuid
 * (GCC's ifunc), so one binary runs everywhere, valgrind included, at the machine's speed. The
 * runtime is built with -ffp-contract=fast, so a * b + c is one fused multiply-add where the clone
 * has one. Not when the build already targets AVX2 or better (-march=native): nothing to choose,
 * and GCC 12 fails inlining into a clone narrower than the base target. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(__AVX2__)
#define TFMCRT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define TFMCRT_CPU_DISPATCH 1
#else
#define TFMCRT_CLONES
#endif

/* GNU vectors, where float arithmetic is float (not x87's long double: i386) and GCC has
 * __builtin_convertvector (9 and later). */
#if defined(__GNUC__) && defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ == 0 && \
    (defined(__clang__) || __GNUC__ >= 9)
/* Sixteen floats: one AVX-512 register, two AVX2 ones, four SSE ones. Independent lanes let the
 * compiler vectorise under plain -O2, where a single running sum may not be reassociated. */
typedef float Vec16 __attribute__((vector_size(64)));
typedef int32_t VecI16 __attribute__((vector_size(64))); /* lane masks: -1 or 0 */
#define VEC_LANES 16
#endif

#ifdef VEC_LANES
/* The kernels that keep many sixteen-lane vectors in registers (the GEMM tiles, the vector
 * activations) pay off only where a register holds sixteen floats: AVX-512, chosen at build time
 * or found at run time. Elsewhere GCC spills them and the row kernels are faster. */
static bool wide_registers(void)
{
#if defined(__AVX512F__)
    return true;
#elif defined(TFMCRT_CPU_DISPATCH)
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}
#endif

/* Tiled attention keeps two [hd][16] buffers (16 KB) on the stack: on 64-bit desktop and server
 * targets only, not on microcontrollers (define TFMCRT_SMALL_STACK to keep it off anywhere). */
#if defined(VEC_LANES) && (defined(__x86_64__) || defined(__aarch64__)) && !defined(TFMCRT_SMALL_STACK)
#define TFMCRT_TILED_ATTENTION 1
#endif

/* A dot product; the same summation order for every caller on a given machine. */
TFMCRT_CLONES
static float dot(const float *a, const float *b, size_t n)
{
    if (n < 16) {
        /* short vectors (RASP heads): sixteen-lane accumulators would cost more than they save */
        float s = 0;
        for (size_t c = 0; c < n; c++) s += a[c] * b[c];
        return s;
    }
    float acc[16] = { 0 };
    size_t c = 0;
    for (; c + 16 <= n; c += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[c + k] * b[c + k];
    float s = 0;
    for (; c < n; c++) s += a[c] * b[c];
    for (int k = 0; k < 16; k += 2) s += acc[k] + acc[k + 1];
    return s;
}

#ifdef VEC_LANES
/* y[0..8) = W[8][cols] . x: eight rows share each load of x; eight named accumulators stay in
 * registers. */
TFMCRT_CLONES
static void rows8(float *y, const float *w, const float *x, size_t cols)
{
    Vec16 a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 }, a5 = { 0 }, a6 = { 0 }, a7 = { 0 };
    const float *w0 = w, *w1 = w + cols, *w2 = w + 2 * cols, *w3 = w + 3 * cols;
    const float *w4 = w + 4 * cols, *w5 = w + 5 * cols, *w6 = w + 6 * cols, *w7 = w + 7 * cols;
    size_t c = 0;
    for (; c + VEC_LANES <= cols; c += VEC_LANES) {
        Vec16 xv, v0, v1, v2, v3, v4, v5, v6, v7;
        memcpy(&xv, x + c, sizeof xv);
        memcpy(&v0, w0 + c, sizeof xv);
        memcpy(&v1, w1 + c, sizeof xv);
        memcpy(&v2, w2 + c, sizeof xv);
        memcpy(&v3, w3 + c, sizeof xv);
        memcpy(&v4, w4 + c, sizeof xv);
        memcpy(&v5, w5 + c, sizeof xv);
        memcpy(&v6, w6 + c, sizeof xv);
        memcpy(&v7, w7 + c, sizeof xv);
        a0 += v0 * xv;
        a1 += v1 * xv;
        a2 += v2 * xv;
        a3 += v3 * xv;
        a4 += v4 * xv;
        a5 += v5 * xv;
        a6 += v6 * xv;
        a7 += v7 * xv;
    }
    Vec16 acc[8] = { a0, a1, a2, a3, a4, a5, a6, a7 };
    for (int r = 0; r < 8; r++) {
        float s = 0;
        for (size_t k = c; k < cols; k++) s += w[(size_t)r * cols + k] * x[k];
        for (int k = 0; k < VEC_LANES; k += 2) s += acc[r][k] + acc[r][k + 1];
        y[r] = s;
    }
}
#else
static void rows8(float *y, const float *w, const float *x, size_t cols)
{
    for (int r = 0; r < 8; r++) y[r] = dot(w + (size_t)r * cols, x, cols);
}
#endif

void tfmcrt_matvec(float *y, const float *w, const float *x, const float *b, size_t rows, size_t cols)
{
    tfmcrt_linear(y, x, 1, w, b, rows, cols);
}

/* y[n][rows] = x[n][cols] . W^T one position at a time: blocks of eight rows of W stay in the cache
 * while every position uses them. For one position (decode) this streams W once, which is what
 * bounds it. */
static void linear_rows8(float *out, const float *in, size_t n, const float *w, size_t rows, size_t cols)
{
    size_t r = 0;
    for (; r + 8 <= rows; r += 8)
        for (size_t i = 0; i < n; i++) rows8(out + i * rows + r, w + r * cols, in + i * cols, cols);
    for (; r < rows; r++)
        for (size_t i = 0; i < n; i++) out[i * rows + r] = dot(w + r * cols, in + i * cols, cols);
}

#ifdef VEC_LANES
/* Many positions at once (prefill) are a matrix product, bound by arithmetic, not by memory: W is
 * copied a panel at a time (GEMM_NR of its rows, GEMM_KC of its columns) into a buffer laid out
 * [column][row], which stays in L1 while every group of GEMM_MR positions multiplies it. Each
 * step of the tile loop then broadcasts one input value against two vectors of the panel into
 * eight accumulators that never leave the registers. Each output is summed in column order, the
 * same whatever n is. */
#define GEMM_MR 4
#define GEMM_NR 32
#define GEMM_KC 128

/* c[4][32] = (add ? c : 0) + a[4][kc] (rows lda apart) . bp[kc][32] */
TFMCRT_CLONES
static void gemm_tile(float *c, size_t ldc, const float *a, size_t lda, const float *bp, size_t kc, int add)
{
    Vec16 c00 = { 0 }, c01 = { 0 }, c10 = { 0 }, c11 = { 0 }, c20 = { 0 }, c21 = { 0 }, c30 = { 0 }, c31 = { 0 };
    if (add) {
        memcpy(&c00, c, 64), memcpy(&c01, c + 16, 64);
        memcpy(&c10, c + ldc, 64), memcpy(&c11, c + ldc + 16, 64);
        memcpy(&c20, c + 2 * ldc, 64), memcpy(&c21, c + 2 * ldc + 16, 64);
        memcpy(&c30, c + 3 * ldc, 64), memcpy(&c31, c + 3 * ldc + 16, 64);
    }
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    for (size_t k = 0; k < kc; k++) {
        Vec16 b0, b1;
        memcpy(&b0, bp + k * GEMM_NR, 64);
        memcpy(&b1, bp + k * GEMM_NR + 16, 64);
        c00 += b0 * a0[k], c01 += b1 * a0[k];
        c10 += b0 * a1[k], c11 += b1 * a1[k];
        c20 += b0 * a2[k], c21 += b1 * a2[k];
        c30 += b0 * a3[k], c31 += b1 * a3[k];
    }
    memcpy(c, &c00, 64), memcpy(c + 16, &c01, 64);
    memcpy(c + ldc, &c10, 64), memcpy(c + ldc + 16, &c11, 64);
    memcpy(c + 2 * ldc, &c20, 64), memcpy(c + 2 * ldc + 16, &c21, 64);
    memcpy(c + 3 * ldc, &c30, 64), memcpy(c + 3 * ldc + 16, &c31, 64);
}

/* c[8][16] = (add ? c : 0) + a[8][kc] . bp[kc][16]: the tile for W with at most 16 rows (the
 * narrow factor of a low-rank product), eight positions deep so that eight sums are in flight. */
TFMCRT_CLONES
static void gemm_tile16(float *c, size_t ldc, const float *a, size_t lda, const float *bp, size_t kc, int add)
{
    Vec16 c0 = { 0 }, c1 = { 0 }, c2 = { 0 }, c3 = { 0 }, c4 = { 0 }, c5 = { 0 }, c6 = { 0 }, c7 = { 0 };
    if (add) {
        memcpy(&c0, c, 64), memcpy(&c1, c + ldc, 64), memcpy(&c2, c + 2 * ldc, 64), memcpy(&c3, c + 3 * ldc, 64);
        memcpy(&c4, c + 4 * ldc, 64), memcpy(&c5, c + 5 * ldc, 64), memcpy(&c6, c + 6 * ldc, 64);
        memcpy(&c7, c + 7 * ldc, 64);
    }
    for (size_t k = 0; k < kc; k++) {
        Vec16 b0;
        memcpy(&b0, bp + k * 16, 64);
        c0 += b0 * a[k], c1 += b0 * a[lda + k], c2 += b0 * a[2 * lda + k], c3 += b0 * a[3 * lda + k];
        c4 += b0 * a[4 * lda + k], c5 += b0 * a[5 * lda + k], c6 += b0 * a[6 * lda + k];
        c7 += b0 * a[7 * lda + k];
    }
    memcpy(c, &c0, 64), memcpy(c + ldc, &c1, 64), memcpy(c + 2 * ldc, &c2, 64), memcpy(c + 3 * ldc, &c3, 64);
    memcpy(c + 4 * ldc, &c4, 64), memcpy(c + 5 * ldc, &c5, 64), memcpy(c + 6 * ldc, &c6, 64);
    memcpy(c + 7 * ldc, &c7, 64);
}

static void linear_gemm(float *out, const float *in, size_t n, const float *w, size_t rows, size_t cols)
{
    float bp[GEMM_KC * GEMM_NR], ct[8 * GEMM_NR], at[8 * GEMM_KC];
    /* panels 32 rows of W wide, 4 positions at a time; or 16 wide and 8 deep when W is that narrow */
    size_t width = rows <= 16 ? 16 : GEMM_NR, depth = rows <= 16 ? 8 : GEMM_MR;
    for (size_t r0 = 0; r0 < rows; r0 += width) {
        size_t nr = rows - r0 < width ? rows - r0 : width;
        for (size_t k0 = 0; k0 < cols; k0 += GEMM_KC) {
            size_t kc = cols - k0 < GEMM_KC ? cols - k0 : GEMM_KC;
            /* the panel, transposed; rows past the end of W are zeros */
            for (size_t j = 0; j < width; j++)
                for (size_t k = 0; k < kc; k++) bp[k * width + j] = j < nr ? w[(r0 + j) * cols + k0 + k] : 0.0f;
            for (size_t i0 = 0; i0 < n; i0 += depth) {
                size_t mr = n - i0 < depth ? n - i0 : depth;
                float *c = out + i0 * rows + r0;
                const float *a = in + i0 * cols + k0;
                size_t ldc = rows, lda = cols;
                bool edge = mr < depth || nr < width;
                if (edge) {
                    /* through zero-padded copies */
                    memset(at, 0, sizeof at);
                    memset(ct, 0, sizeof ct);
                    for (size_t i = 0; i < mr; i++) {
                        memcpy(at + i * GEMM_KC, a + i * cols, kc * sizeof(float));
                        if (k0 > 0) memcpy(ct + i * width, c + i * rows, nr * sizeof(float));
                    }
                    c = ct, a = at, ldc = width, lda = GEMM_KC;
                }
                if (width == 16)
                    gemm_tile16(c, ldc, a, lda, bp, kc, k0 > 0);
                else
                    gemm_tile(c, ldc, a, lda, bp, kc, k0 > 0);
                if (edge)
                    for (size_t i = 0; i < mr; i++) memcpy(out + (i0 + i) * rows + r0, ct + i * width, nr * sizeof(float));
            }
        }
    }
}
#endif

void tfmcrt_linear(float *out, const float *in, size_t n, const float *w, const float *b, size_t rows,
                   size_t cols)
{
#ifdef VEC_LANES
    if (n >= GEMM_MR && cols > 0 && wide_registers())
        linear_gemm(out, in, n, w, rows, cols);
    else
#endif
        linear_rows8(out, in, n, w, rows, cols);
    if (b)
        for (size_t i = 0; i < n; i++)
            for (size_t r = 0; r < rows; r++) out[i * rows + r] += b[r];
}

void tfmcrt_linear_csr(float *out, const float *in, size_t n, const int *rowptr, const int *colidx,
                       const float *vals, const float *b, size_t rows, size_t cols)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = in + i * cols;
        float *y = out + i * rows;
        for (size_t r = 0; r < rows; r++) {
            float s = b ? b[r] : 0.0f;
            for (int k = rowptr[r]; k < rowptr[r + 1]; k++) s += vals[k] * x[colidx[k]];
            y[r] = s;
        }
    }
}

void tfmcrt_linear_csr_acc(float *out, const float *acc, const float *in, size_t n, const int *rowptr,
                           const int *colidx, const float *vals, const float *b, size_t rows, size_t cols)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = in + i * cols;
        float *y = out + i * rows;
        const float *a = acc + i * rows;
        for (size_t r = 0; r < rows; r++) {
            if (rowptr[r] == rowptr[r + 1] && !b) {
                y[r] = a[r]; /* nothing to add: the same value, no arithmetic */
                continue;
            }
            float s = b ? b[r] : 0.0f;
            for (int k = rowptr[r]; k < rowptr[r + 1]; k++) s += vals[k] * x[colidx[k]];
            y[r] = a[r] + s;
        }
    }
}

TFMCRT_CLONES
void tfmcrt_attention(float *out, const float *q, const float *k, const float *v, size_t n, size_t dk, size_t dv,
                      float scale, int causal)
{
    for (size_t i = 0; i < n; i++) {
        float *o = out + i * dv, m = -INFINITY, sum = 0.0f;
        size_t last = causal ? i + 1 : n;
        for (size_t c = 0; c < dv; c++) o[c] = 0.0f;
        for (size_t j = 0; j < last; j++) {
            float s = scale * dot(q + i * dk, k + j * dk, dk);
            /* exp(-30) = 9e-14 of the largest term: below float precision of the sum (>= 1), so
             * such a key changes nothing and costs no exp */
            if (s < m - 30.0f) continue;
            if (s > m) {
                /* a new maximum: rescale what was summed so far */
                float r = expf(m - s);
                sum *= r;
                for (size_t c = 0; c < dv; c++) o[c] *= r;
                m = s;
            }
            /* RASP heads: most keys that count score exactly the maximum */
            float w = s == m ? 1.0f : expf(s - m);
            sum += w;
            for (size_t c = 0; c < dv; c++) o[c] += w * v[j * dv + c];
        }
        for (size_t c = 0; c < dv; c++) o[c] /= sum;
    }
}

void tfmcrt_slice(float *out, const float *in, size_t n, size_t in_cols, size_t start, size_t cols)
{
    for (size_t i = 0; i < n; i++) memcpy(out + i * cols, in + i * in_cols + start, cols * sizeof(float));
}

void tfmcrt_copy(float *out, const float *in, size_t count)
{
    if (count) memcpy(out, in, count * sizeof(float));
}

/* Without branches: a branch on the sign of each activation mispredicts half the time. */
TFMCRT_CLONES
void tfmcrt_relu(float *x, size_t count)
{
    size_t i = 0;
#ifdef VEC_LANES
    const Vec16 zero = { 0 };
    for (; i + VEC_LANES <= count; i += VEC_LANES) {
        Vec16 v;
        memcpy(&v, x + i, sizeof v);
        v = (Vec16)((VecI16)v & (v > zero));
        memcpy(x + i, &v, sizeof v);
    }
#endif
    for (; i < count; i++) x[i] = fmaxf(x[i], 0.0f);
}

void tfmcrt_add(float *out, const float *a, const float *b, size_t count)
{
    for (size_t i = 0; i < count; i++) out[i] = a[i] + b[i];
}

void tfmcrt_scores(float *s, const float *q, const float *k, size_t n, size_t dk, float scale, int causal)
{
    for (size_t i = 0; i < n; i++) {
        size_t last = causal ? i + 1 : n;
        for (size_t j = 0; j < last; j++) s[i * n + j] = scale * dot(q + i * dk, k + j * dk, dk);
    }
}

void tfmcrt_softmax_rows(float *s, size_t n, int causal)
{
    for (size_t i = 0; i < n; i++) {
        size_t last = causal ? i + 1 : n;
        tfmcrt_softmax(s + i * n, last);
        for (size_t j = last; j < n; j++) s[i * n + j] = 0.0f;
    }
}

void tfmcrt_mix(float *out, const float *p, const float *v, size_t n, size_t dv)
{
    for (size_t i = 0; i < n; i++) {
        float *o = out + i * dv;
        for (size_t c = 0; c < dv; c++) o[c] = 0.0f;
        for (size_t j = 0; j < n; j++) {
            float w = p[i * n + j];
            if (w == 0.0f) continue;
            for (size_t c = 0; c < dv; c++) o[c] += w * v[j * dv + c];
        }
    }
}

void tfmcrt_softmax(float *x, size_t n)
{
    if (n == 0) return;
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    for (size_t i = 0; i < n; i++) x[i] /= sum;
}

/* ----------------------------------------------------- declared models */

void tfmcrt_norm(float *out, const float *in, size_t n, size_t d, int kind, float eps, float alpha,
                 const float *w, const float *b)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = in + i * d;
        float *y = out + i * d;
        if (kind == TFMCRT_DYT) {
            for (size_t c = 0; c < d; c++) y[c] = w[c] * tanhf(alpha * x[c]) + (b ? b[c] : 0.0f);
            continue;
        }
        double mean = 0, sq = 0;
        if (kind == TFMCRT_LAYERNORM) {
            for (size_t c = 0; c < d; c++) mean += x[c];
            mean /= (double)d;
        }
        for (size_t c = 0; c < d; c++) sq += ((double)x[c] - mean) * ((double)x[c] - mean);
        float inv = (float)(1.0 / sqrt(sq / (double)d + (double)eps));
        for (size_t c = 0; c < d; c++) y[c] = (float)((double)x[c] - mean) * inv * w[c] + (b ? b[c] : 0.0f);
    }
}

#ifdef VEC_LANES

/* exp of sixteen lanes at once, in place, within 3 ulp of exp: exp(x) = 2^k exp(r),
 * k = round(x / ln 2), |r| <= ln(2)/2, exp(r) by its Taylor series to degree 6. Lanes below -87
 * (and -inf) give 0, lanes above 87 give exp(87), NaN lanes stay NaN. */
static inline __attribute__((always_inline)) void vexp(Vec16 *px)
{
    Vec16 x = *px;
    const Vec16 lo = { -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f,
                       -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f };
    VecI16 under = x < lo, over = x > -lo, nan = x != x;
    /* NaN lanes compute exp(0) and get their NaN back at the end (converting NaN to an integer
     * is undefined) */
    x = (Vec16)(((VecI16)x & ~(under | nan)) | ((VecI16)lo & under));
    x = (Vec16)(((VecI16)x & ~over) | ((VecI16)-lo & over));
    /* k = round(x / ln 2): x / ln 2 + 126.5 is positive, so truncation is floor (no rounding
     * tricks that -ffast-math could fold away) */
    VecI16 ki = __builtin_convertvector(x * 1.44269504088896341f + 126.5f, VecI16) - 126;
    Vec16 k = __builtin_convertvector(ki, Vec16);
    Vec16 r = x - k * 0.693145751953125f - k * 1.42860682030941723e-6f;
    Vec16 p = r * (1.0f / 720) + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    VecI16 bits = (ki + 127) << 23;
    *px = (Vec16)(((VecI16)(p * (Vec16)bits) & ~under & ~nan) | ((VecI16)*px & nan));
}
#endif

static float act1(float x, int act)
{
    switch (act) {
    case TFMCRT_RELU: return x > 0 ? x : 0;
    case TFMCRT_GELU:
    case TFMCRT_GEGLU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case TFMCRT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case TFMCRT_SILU:
    case TFMCRT_SWIGLU: return x / (1.0f + expf(-x));
    default: return x;
    }
}

#ifdef VEC_LANES
/* x / (1 + exp(-z)) for sixteen lanes: SiLU is z = x, tanh-GELU is z = 2u (0.5 (1 + tanh u) is
 * the logistic function of 2u). With up, the result times up (a gated unit). Tails go through a
 * padded copy, so every element takes the same arithmetic whatever its position. */
TFMCRT_CLONES
static void act_logistic(float *out, const float *x, const float *up, size_t count, int act)
{
    for (size_t i = 0; i < count; i += VEC_LANES) {
        size_t m = count - i < VEC_LANES ? count - i : VEC_LANES;
        Vec16 v = { 0 }, u = { 0 }, z;
        memcpy(&v, x + i, m * sizeof(float));
        if (up) memcpy(&u, up + i, m * sizeof(float));
        if (act == TFMCRT_GELU_TANH)
            z = v * (v * v * (-2.0f * 0.79788456080286536f * 0.044715f) - 2.0f * 0.79788456080286536f);
        else
            z = -v;
        vexp(&z);
        v = v / (z + 1.0f);
        if (up) v *= u;
        memcpy(out + i, &v, m * sizeof(float));
    }
}
#endif

void tfmcrt_act(float *x, size_t count, int act)
{
#ifdef VEC_LANES
    if ((act == TFMCRT_GELU_TANH || act == TFMCRT_SILU || act == TFMCRT_SWIGLU) && wide_registers()) {
        act_logistic(x, x, NULL, count, act);
        return;
    }
#endif
    if (act == TFMCRT_RELU) {
        tfmcrt_relu(x, count);
        return;
    }
    for (size_t i = 0; i < count; i++) x[i] = act1(x[i], act);
}

void tfmcrt_glu(float *out, const float *gate, const float *up, size_t count, int act)
{
#ifdef VEC_LANES
    if ((act == TFMCRT_SWIGLU || act == TFMCRT_SILU) && wide_registers()) {
        act_logistic(out, gate, up, count, act);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) out[i] = act1(gate[i], act) * up[i];
}

void tfmcrt_rope(float *x, size_t n, size_t heads, size_t hd, size_t pos0, float base)
{
    size_t half = hd / 2;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < half; j++) {
            double angle = (double)(pos0 + i) * pow((double)base, -2.0 * (double)j / (double)hd);
            float c = (float)cos(angle), s = (float)sin(angle);
            for (size_t h = 0; h < heads; h++) {
                float *v = x + i * heads * hd + h * hd;
                float a = v[j], b = v[j + half];
                v[j] = a * c - b * s;
                v[j + half] = b * c + a * s;
            }
        }
}

void tfmcrt_kv_store(float *kcache, float *vcache, const float *k, const float *v, size_t n, size_t pos0,
                     size_t kvd)
{
    for (size_t i = 0; i < n * kvd; i++) {
        kcache[pos0 * kvd + i] = k[i];
        vcache[pos0 * kvd + i] = v[i];
    }
}

static float elu1(float x) { return x > 0 ? x + 1.0f : expf(x); }

static void allowed(const TfmcrtAttention *a, size_t i, size_t n, size_t pos0, size_t *first, size_t *last);

#ifdef TFMCRT_TILED_ATTENTION
#define ATT_BK 8    /* keys per block */
#define ATT_MAXD 128 /* head dimensions the tiled kernel takes (two [hd][16] buffers on the stack) */

/* Softmax attention for sixteen queries of one head at a time, one query per vector lane, a block
 * of ATT_BK keys at a time (flash attention's online softmax: never more than 16 x ATT_BK scores).
 * The queries are transposed once into qt[hd][16] (with the scale folded in); then a key's scores
 * for all sixteen queries are one vector, sum over c of qt[c] times the key's c-th value, and the
 * softmax bookkeeping (running maximum, sum, rescaling) is lane-wise vector arithmetic. The
 * output is kept transposed too, ot[hd][16], and each of its vectors takes the block's ATT_BK
 * weighted values in one pass. Masked scores (causal, window, past the end) are -inf, so their
 * weights are exactly 0; the running maximum starts at -1e30 rather than -inf so that a query
 * whose keys are all still ahead never computes inf - inf. softmax1 starts from a virtual key of
 * score 0 and value 0: maximum 0, sum 1. */
TFMCRT_CLONES
static void attend_tiled(float *out, const float *q, const float *kcache, const float *vcache, size_t n,
                         size_t pos0, const TfmcrtAttention *a)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, group = H / (size_t)a->kv_heads;
    size_t kvd = (size_t)a->kv_heads * hd, qd = H * hd;
    float qt[ATT_MAXD * VEC_LANES], ot[ATT_MAXD * VEC_LANES];
    const Vec16 zero = { 0 };
    for (size_t h = 0; h < H; h++) {
        const float *kb = kcache + (h / group) * hd, *vb = vcache + (h / group) * hd;
        float slope = a->alibi ? powf(2.0f, -8.0f * (float)(h + 1) / (float)H) : 0.0f;
        for (size_t i0 = 0; i0 < n; i0 += VEC_LANES) {
            size_t nq = n - i0 < VEC_LANES ? n - i0 : VEC_LANES;
            Vec16 firstv = zero, lastv = zero, tv = zero, m, l, ninf = zero - INFINITY;
            size_t jbeg = 0, jend = 0, lo = 0, hi = 0;
            for (size_t r = 0; r < VEC_LANES; r++) {
                size_t f, e;
                allowed(a, i0 + (r < nq ? r : nq - 1), n, pos0, &f, &e);
                firstv[r] = (float)f, lastv[r] = (float)e, tv[r] = (float)(pos0 + i0 + r);
                if (r == 0) jbeg = f, hi = e;
                if (r == nq - 1) jend = e, lo = f;
                for (size_t c = 0; c < hd; c++) qt[c * VEC_LANES + r] = r < nq ? q[(i0 + r) * qd + h * hd + c] * a->scale : 0.0f;
            }
            /* keys in [lo, hi) are visible to every query of the group: no mask there */
            m = zero + (a->score == TFMCRT_SOFTMAX1 ? 0.0f : -1e30f);
            l = zero + (a->score == TFMCRT_SOFTMAX1 ? 1.0f : 0.0f);
            memset(ot, 0, hd * sizeof(Vec16));
            for (size_t j0 = jbeg; j0 < jend; j0 += ATT_BK) {
                size_t nk = jend - j0 < ATT_BK ? jend - j0 : ATT_BK;
                const float *k[ATT_BK], *v[ATT_BK];
                for (size_t j = 0; j < ATT_BK; j++) {
                    /* keys past the end repeat the first one; their weights are masked to 0 */
                    k[j] = kb + (j0 + (j < nk ? j : 0)) * kvd;
                    v[j] = vb + (j0 + (j < nk ? j : 0)) * kvd;
                }
                Vec16 s[ATT_BK];
                for (size_t j = 0; j < ATT_BK; j++) s[j] = zero;
                for (size_t c = 0; c < hd; c++) {
                    Vec16 qc;
                    memcpy(&qc, qt + c * VEC_LANES, 64);
                    s[0] += qc * k[0][c], s[1] += qc * k[1][c], s[2] += qc * k[2][c], s[3] += qc * k[3][c];
                    s[4] += qc * k[4][c], s[5] += qc * k[5][c], s[6] += qc * k[6][c], s[7] += qc * k[7][c];
                }
                bool masked = nk < ATT_BK || j0 < lo || j0 + ATT_BK > hi;
                Vec16 mn = m;
                for (size_t j = 0; j < ATT_BK; j++) {
                    float jj = (float)(j0 + j);
                    if (a->alibi) s[j] -= slope * (tv - jj);
                    if (j >= nk) {
                        s[j] = ninf;
                    } else if (masked) {
                        VecI16 out_of_range = (zero + jj < firstv) | (zero + jj >= lastv);
                        s[j] = (Vec16)(((VecI16)s[j] & ~out_of_range) | ((VecI16)ninf & out_of_range));
                    }
                    VecI16 gt = s[j] > mn;
                    mn = (Vec16)(((VecI16)s[j] & gt) | ((VecI16)mn & ~gt));
                }
                Vec16 corr = m - mn, sum = zero;
                vexp(&corr);
                for (size_t j = 0; j < ATT_BK; j++) {
                    s[j] -= mn;
                    vexp(&s[j]);
                    sum += s[j];
                }
                l = l * corr + sum;
                m = mn;
                for (size_t c = 0; c < hd; c++) {
                    Vec16 o;
                    memcpy(&o, ot + c * VEC_LANES, 64);
                    /* two chains of four multiply-adds, not one of eight */
                    Vec16 x0 = s[0] * v[0][c], x1 = s[1] * v[1][c];
                    x0 += s[2] * v[2][c], x1 += s[3] * v[3][c];
                    x0 += s[4] * v[4][c], x1 += s[5] * v[5][c];
                    x0 += s[6] * v[6][c], x1 += s[7] * v[7][c];
                    o = o * corr + (x0 + x1);
                    memcpy(ot + c * VEC_LANES, &o, 64);
                }
            }
            for (size_t r = 0; r < nq; r++)
                for (size_t c = 0; c < hd; c++) out[(i0 + r) * qd + h * hd + c] = ot[c * VEC_LANES + r] / l[r];
        }
    }
}
#endif

TFMCRT_CLONES
void tfmcrt_attend(float *out, const float *q, const float *kcache, const float *vcache, size_t n, size_t pos0,
                   const TfmcrtAttention *a, float *w)
{
#ifdef TFMCRT_TILED_ATTENTION
    /* many queries (prefill): sixteen at a time; one (decode): a row of scores at a time, below */
    if ((a->score == TFMCRT_SOFTMAX || a->score == TFMCRT_SOFTMAX1) && n >= 4 && a->head_dim <= ATT_MAXD) {
        attend_tiled(out, q, kcache, vcache, n, pos0, a);
        return;
    }
#endif
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, KV = (size_t)a->kv_heads, group = H / KV;
    size_t total = pos0 + n, kvd = KV * hd;
    for (size_t i = 0; i < n; i++) {
        size_t t = pos0 + i;
        size_t last = a->causal ? t + 1 : total;
        size_t first = (a->window > 0 && t + 1 > (size_t)a->window) ? t + 1 - (size_t)a->window : 0;
        for (size_t h = 0; h < H; h++) {
            const float *qh = q + i * H * hd + h * hd;
            size_t kh = h / group;
            float *o = out + i * H * hd + h * hd;
            for (size_t c = 0; c < hd; c++) o[c] = 0.0f;
            if (a->score == TFMCRT_LINEAR) {
                /* phi(q).phi(k) weights, phi = elu + 1, normalised by their sum */
                float sum = 0.0f;
                for (size_t j = first; j < last; j++) {
                    const float *kj = kcache + j * kvd + kh * hd;
                    float s = 0.0f;
                    for (size_t c = 0; c < hd; c++) s += elu1(qh[c]) * elu1(kj[c]);
                    w[j] = s;
                    sum += s;
                }
                for (size_t j = first; j < last; j++) w[j] /= sum;
            } else {
                float m = -INFINITY;
                float slope = a->alibi ? powf(2.0f, -8.0f * (float)(h + 1) / (float)H) : 0.0f;
                for (size_t j = first; j < last; j++) {
                    const float *kj = kcache + j * kvd + kh * hd;
                    float s = a->scale * dot(qh, kj, hd);
                    if (a->alibi) s -= slope * ((float)t - (float)j);
                    w[j] = s;
                    if (s > m) m = s;
                }
                if (a->score == TFMCRT_HARD) {
                    /* the highest-scoring positions, averaged over ties */
                    float count = 0;
                    for (size_t j = first; j < last; j++) count += w[j] == m;
                    for (size_t j = first; j < last; j++) w[j] = w[j] == m ? 1.0f / count : 0.0f;
                } else {
                    /* softmax1 = exp(x) / (1 + sum exp(x)): the 1 is exp(0), so shift by max(m, 0) */
                    float shift = a->score == TFMCRT_SOFTMAX1 && m < 0 ? 0 : m;
                    float sum = a->score == TFMCRT_SOFTMAX1 ? expf(-shift) : 0.0f;
                    for (size_t j = first; j < last; j++) {
                        w[j] = expf(w[j] - shift);
                        sum += w[j];
                    }
                    for (size_t j = first; j < last; j++) w[j] /= sum;
                }
            }
            for (size_t j = first; j < last; j++) {
                const float *vj = vcache + j * kvd + kh * hd;
                for (size_t c = 0; c < hd; c++) o[c] += w[j] * vj[c];
            }
        }
    }
}

/* The keys query i (at position pos0 + i) may see: [*first, *last). */
static void allowed(const TfmcrtAttention *a, size_t i, size_t n, size_t pos0, size_t *first, size_t *last)
{
    size_t t = pos0 + i;
    *last = a->causal ? t + 1 : pos0 + n;
    *first = (a->window > 0 && t + 1 > (size_t)a->window) ? t + 1 - (size_t)a->window : 0;
}

void tfmcrt_mha_scores(float *s, const float *q, const float *kcache, size_t n, size_t pos0, size_t T,
                       const TfmcrtAttention *a)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, group = H / (size_t)a->kv_heads, kvd = (size_t)a->kv_heads * hd;
    for (size_t h = 0; h < H; h++) {
        float slope = a->alibi ? powf(2.0f, -8.0f * (float)(h + 1) / (float)H) : 0.0f;
        for (size_t i = 0; i < n; i++) {
            size_t first, last;
            allowed(a, i, n, pos0, &first, &last);
            const float *qh = q + i * H * hd + h * hd;
            float *row = s + (h * n + i) * T;
            for (size_t j = first; j < last; j++) {
                const float *kj = kcache + j * kvd + (h / group) * hd;
                if (a->score == TFMCRT_LINEAR) {
                    float x = 0.0f;
                    for (size_t c = 0; c < hd; c++) x += elu1(qh[c]) * elu1(kj[c]);
                    row[j] = x;
                } else {
                    row[j] = a->scale * dot(qh, kj, hd);
                    if (a->alibi) row[j] -= slope * ((float)(pos0 + i) - (float)j);
                }
            }
        }
    }
}

void tfmcrt_mha_softmax(float *p, const float *s, size_t n, size_t pos0, size_t T, const TfmcrtAttention *a)
{
    for (size_t h = 0; h < (size_t)a->heads; h++)
        for (size_t i = 0; i < n; i++) {
            size_t first, last;
            allowed(a, i, n, pos0, &first, &last);
            const float *row = s + (h * n + i) * T;
            float *w = p + (h * n + i) * T, m = -INFINITY, sum = 0.0f;
            for (size_t j = 0; j < T; j++) w[j] = 0.0f;
            if (a->score == TFMCRT_LINEAR) {
                for (size_t j = first; j < last; j++) sum += row[j];
                for (size_t j = first; j < last; j++) w[j] = row[j] / sum;
                continue;
            }
            for (size_t j = first; j < last; j++) m = row[j] > m ? row[j] : m;
            if (a->score == TFMCRT_HARD) {
                float count = 0;
                for (size_t j = first; j < last; j++) count += row[j] == m;
                for (size_t j = first; j < last; j++) w[j] = row[j] == m ? 1.0f / count : 0.0f;
                continue;
            }
            float shift = a->score == TFMCRT_SOFTMAX1 && m < 0 ? 0 : m;
            sum = a->score == TFMCRT_SOFTMAX1 ? expf(-shift) : 0.0f;
            for (size_t j = first; j < last; j++) sum += w[j] = expf(row[j] - shift);
            for (size_t j = first; j < last; j++) w[j] /= sum;
        }
}

TFMCRT_CLONES
void tfmcrt_mha_mix(float *out, const float *p, const float *vcache, size_t n, size_t pos0, size_t T,
                    const TfmcrtAttention *a)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, group = H / (size_t)a->kv_heads, kvd = (size_t)a->kv_heads * hd;
    for (size_t i = 0; i < n; i++)
        for (size_t h = 0; h < H; h++) {
            size_t first, last;
            allowed(a, i, n, pos0, &first, &last);
            const float *w = p + (h * n + i) * T;
            float *o = out + i * H * hd + h * hd;
            for (size_t c = 0; c < hd; c++) o[c] = 0.0f;
            for (size_t j = first; j < last; j++) {
                const float *vj = vcache + j * kvd + (h / group) * hd;
                for (size_t c = 0; c < hd; c++) o[c] += w[j] * vj[c];
            }
        }
}

static void ffn1(float *y, const float *x, size_t d, const TfmcrtFfn *f, size_t hidden, int act, float *h, float *g)
{
    tfmcrt_matvec(h, f->up, x, f->b_up, hidden, d);
    if (f->gate) {
        tfmcrt_matvec(g, f->gate, x, f->b_gate, hidden, d);
        tfmcrt_glu(h, g, h, hidden, act);
    } else {
        tfmcrt_act(h, hidden, act);
    }
    tfmcrt_matvec(y, f->down, h, f->b_down, d, hidden);
}

void tfmcrt_moe(float *out, const float *in, size_t n, size_t d, const float *router, const TfmcrtFfn *experts,
                int nexperts, int top, size_t hidden, int act, float *scratch)
{
    float *h = scratch, *g = scratch + hidden, *y = scratch + 2 * hidden, *logits = scratch + 3 * hidden;
    (void)y;
    for (size_t i = 0; i < n; i++) {
        const float *x = in + i * d;
        float *o = out + i * d;
        tfmcrt_matvec(logits, router, x, NULL, (size_t)nexperts, d);
        int chosen[64];
        float weight[64], m = -INFINITY, sum = 0;
        for (int k = 0; k < top && k < 64; k++) {
            int best = -1;
            for (int e = 0; e < nexperts; e++) {
                bool taken = false;
                for (int q = 0; q < k; q++) taken |= chosen[q] == e;
                if (!taken && (best < 0 || logits[e] > logits[best])) best = e;
            }
            chosen[k] = best;
            if (logits[best] > m) m = logits[best];
        }
        for (int k = 0; k < top; k++) sum += weight[k] = expf(logits[chosen[k]] - m);
        for (size_t c = 0; c < d; c++) o[c] = 0.0f;
        for (int k = 0; k < top; k++) {
            /* y is d floats past the hidden buffers: the caller sized scratch for it */
            float *yk = scratch + 3 * hidden + (size_t)nexperts;
            ffn1(yk, x, d, &experts[chosen[k]], hidden, act, h, g);
            for (size_t c = 0; c < d; c++) o[c] += weight[k] / sum * yk[c];
        }
    }
}
