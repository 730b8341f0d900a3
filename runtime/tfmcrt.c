/* tfmcrt.c: reference kernels of the tfmc runtime. */
#include <math.h>
#include <stdbool.h>

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

void tfmcrt_act(float *x, size_t count, int act)
{
    for (size_t i = 0; i < count; i++) x[i] = act1(x[i], act);
}

void tfmcrt_glu(float *out, const float *gate, const float *up, size_t count, int act)
{
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

void tfmcrt_attend(float *out, const float *q, const float *kcache, const float *vcache, size_t n, size_t pos0,
                   const TfmcrtAttention *a, float *w)
{
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
                    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                    size_t c = 0;
                    for (; c + 4 <= hd; c += 4) {
                        s0 += qh[c] * kj[c];
                        s1 += qh[c + 1] * kj[c + 1];
                        s2 += qh[c + 2] * kj[c + 2];
                        s3 += qh[c + 3] * kj[c + 3];
                    }
                    for (; c < hd; c++) s0 += qh[c] * kj[c];
                    float s = a->scale * ((s0 + s1) + (s2 + s3));
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
