/* tfmcrt.c: reference kernels of the tfmc runtime. */
#include <math.h>

#include "tfmcrt.h"

const char *tfmcrt_version(void) { return TFMCRT_VERSION; }

/* A dot product with four independent sums: vectorised by the compiler without -ffast-math, and
 * the same summation order everywhere it is used. */
static float dot(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t c = 0;
    for (; c + 4 <= n; c += 4) {
        s0 += a[c] * b[c];
        s1 += a[c + 1] * b[c + 1];
        s2 += a[c + 2] * b[c + 2];
        s3 += a[c + 3] * b[c + 3];
    }
    for (; c < n; c++) s0 += a[c] * b[c];
    return (s0 + s1) + (s2 + s3);
}

void tfmcrt_matvec(float *y, const float *w, const float *x, const float *b, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) y[r] = dot(w + r * cols, x, cols) + (b ? b[r] : 0.0f);
}

void tfmcrt_linear(float *out, const float *in, size_t n, const float *w, const float *b, size_t rows,
                   size_t cols)
{
    for (size_t i = 0; i < n; i++) tfmcrt_matvec(out + i * rows, w, in + i * cols, b, rows, cols);
}

void tfmcrt_relu(float *x, size_t count)
{
    for (size_t i = 0; i < count; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
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
