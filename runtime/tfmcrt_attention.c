/* tfmcrt_attention.c: attention kernels of the tfmc runtime: RASP heads (one row at a time, online
 * softmax), their unfused form, declared models' attention over the KV cache (tiled for prefill,
 * a row at a time for decode) and its unfused form. */
#include "tfmcrt_simd.h"

TFMCRT_CLONES
void tfmcrt_attention(float *out, const float *q, const float *k, const float *v, size_t n, size_t dk, size_t dv,
                      float scale, int causal)
{
    for (size_t i = 0; i < n; i++) {
        float *o = out + i * dv, m = -INFINITY, sum = 0.0f;
        size_t last = causal ? i + 1 : n;
        for (size_t c = 0; c < dv; c++) o[c] = 0.0f;
        for (size_t j = 0; j < last; j++) {
            float s = scale * tfmcrt_dot(q + i * dk, k + j * dk, dk);
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

void tfmcrt_scores(float *s, const float *q, const float *k, size_t n, size_t dk, float scale, int causal)
{
    for (size_t i = 0; i < n; i++) {
        size_t last = causal ? i + 1 : n;
        for (size_t j = 0; j < last; j++) s[i * n + j] = scale * tfmcrt_dot(q + i * dk, k + j * dk, dk);
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
 * score 0 and value 0: maximum 0, sum 1. This is one head h and the sixteen queries from i0. */
TFMCRT_CLONES
static void attend_tiled(float *out, const float *q, const float *kcache, const float *vcache, size_t n,
                         size_t pos0, const TfmcrtAttention *a, size_t h, size_t i0)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, group = H / (size_t)a->kv_heads;
    size_t kvd = (size_t)a->kv_heads * hd, qd = H * hd;
    float qt[ATT_MAXD * VEC_LANES], ot[ATT_MAXD * VEC_LANES];
    const Vec16 zero = { 0 };
    {
        const float *kb = kcache + (h / group) * hd, *vb = vcache + (h / group) * hd;
        float slope = a->alibi ? powf(2.0f, -8.0f * (float)(h + 1) / (float)H) : 0.0f;
        {
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

/* Heads h_begin..h_end of every query, a row of scores at a time in w[pos0 + n]. */
TFMCRT_CLONES
static void attend_rows(float *out, const float *q, const float *kcache, const float *vcache, size_t n, size_t pos0,
                        const TfmcrtAttention *a, float *w, size_t h_begin, size_t h_end)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, KV = (size_t)a->kv_heads, group = H / KV;
    size_t total = pos0 + n, kvd = KV * hd;
    for (size_t i = 0; i < n; i++) {
        size_t t = pos0 + i;
        size_t last = a->causal ? t + 1 : total;
        size_t first = (a->window > 0 && t + 1 > (size_t)a->window) ? t + 1 - (size_t)a->window : 0;
        for (size_t h = h_begin; h < h_end; h++) {
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
                    float s = a->scale * tfmcrt_dot(qh, kj, hd);
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

/* Many queries (prefill) of softmax scores: sixteen at a time, tiled; else a row of scores at a
 * time. */
static bool attend_is_tiled(const TfmcrtAttention *a, size_t n)
{
#ifdef TFMCRT_TILED_ATTENTION
    return (a->score == TFMCRT_SOFTMAX || a->score == TFMCRT_SOFTMAX1) && n >= 4 && a->head_dim <= ATT_MAXD;
#else
    (void)a, (void)n;
    return false;
#endif
}

size_t tfmcrt_attend_scratch_floats(const TfmcrtAttention *a, size_t positions)
{
    return (size_t)a->heads * positions;
}

/* The tasks of an attention: ranges of units, a unit being one head (rows) or one head and
 * sixteen queries (tiled); in the row form each head has its own row of scratch. */
typedef struct AttendJob {
    float *out;
    const float *q, *kcache, *vcache;
    size_t n, pos0;
    const TfmcrtAttention *a;
    float *scratch;
    size_t stride; /* floats between the scratch rows of two heads */
    bool tiled;
    size_t groups, units, ntasks;
} AttendJob;

static void attend_task(void *arg, size_t task)
{
    const AttendJob *j = arg;
    size_t u0 = task * j->units / j->ntasks, u1 = (task + 1) * j->units / j->ntasks;
    for (size_t u = u0; u < u1; u++) {
#ifdef TFMCRT_TILED_ATTENTION
        if (j->tiled) {
            attend_tiled(j->out, j->q, j->kcache, j->vcache, j->n, j->pos0, j->a, u / j->groups,
                         u % j->groups * VEC_LANES);
            continue;
        }
#endif
        attend_rows(j->out, j->q, j->kcache, j->vcache, j->n, j->pos0, j->a, j->scratch + u * j->stride, u, u + 1);
    }
}

/* Threads take whole heads (and, tiled, whole groups of sixteen queries): every output row of a
 * head is computed as on one thread. */
void tfmcrt_attend_ex(const TfmcrtExec *ex, float *out, const float *q, const float *kcache, const float *vcache,
                      size_t n, size_t pos0, const TfmcrtAttention *a, float *scratch)
{
    size_t H = (size_t)a->heads, T = pos0 + n;
    AttendJob j = { out, q, kcache, vcache, n, pos0, a, scratch, T, attend_is_tiled(a, n), 1, H, 1 };
    if (j.tiled) {
        j.groups = (n + 15) / 16;
        j.units = H * j.groups;
    }
    if (j.units == 0) return;
    j.ntasks = tfmcrt_tasks(ex, j.units, (j.tiled ? 16 : n) * T * (size_t)a->head_dim * 2);
    tfmcrt_parallel_for(ex, j.ntasks, attend_task, &j);
}

void tfmcrt_attend(float *out, const float *q, const float *kcache, const float *vcache, size_t n, size_t pos0,
                   const TfmcrtAttention *a, float *w)
{
    if (attend_is_tiled(a, n)) {
        tfmcrt_attend_ex(NULL, out, q, kcache, vcache, n, pos0, a, w);
        return;
    }
    attend_rows(out, q, kcache, vcache, n, pos0, a, w, 0, (size_t)a->heads);
}

/* The keys query i (at position pos0 + i) may see: [*first, *last). */
static void allowed(const TfmcrtAttention *a, size_t i, size_t n, size_t pos0, size_t *first, size_t *last)
{
    size_t t = pos0 + i;
    *last = a->causal ? t + 1 : pos0 + n;
    *first = (a->window > 0 && t + 1 > (size_t)a->window) ? t + 1 - (size_t)a->window : 0;
}

static void mha_scores(float *s, const float *q, const float *kcache, size_t n, size_t pos0, size_t T,
                       const TfmcrtAttention *a, size_t h0, size_t h1)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, group = H / (size_t)a->kv_heads, kvd = (size_t)a->kv_heads * hd;
    for (size_t h = h0; h < h1; h++) {
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
                    row[j] = a->scale * tfmcrt_dot(qh, kj, hd);
                    if (a->alibi) row[j] -= slope * ((float)(pos0 + i) - (float)j);
                }
            }
        }
    }
}

static void mha_softmax(float *p, const float *s, size_t n, size_t pos0, size_t T, const TfmcrtAttention *a,
                        size_t h0, size_t h1)
{
    for (size_t h = h0; h < h1; h++)
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
static void mha_mix(float *out, const float *p, const float *vcache, size_t n, size_t pos0, size_t T,
                    const TfmcrtAttention *a, size_t h0, size_t h1)
{
    size_t hd = (size_t)a->head_dim, H = (size_t)a->heads, group = H / (size_t)a->kv_heads, kvd = (size_t)a->kv_heads * hd;
    for (size_t i = 0; i < n; i++)
        for (size_t h = h0; h < h1; h++) {
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

/* The unfused attention on threads: each kernel takes whole heads. */
typedef struct MhaJob {
    int kind; /* 0 scores, 1 softmax, 2 mix */
    float *out;
    const float *in, *cache;
    size_t n, pos0, T, tasks;
    const TfmcrtAttention *a;
} MhaJob;

static void mha_task(void *arg, size_t t)
{
    const MhaJob *j = arg;
    size_t H = (size_t)j->a->heads, h0 = t * H / j->tasks, h1 = (t + 1) * H / j->tasks;
    if (j->kind == 0) mha_scores(j->out, j->in, j->cache, j->n, j->pos0, j->T, j->a, h0, h1);
    else if (j->kind == 1) mha_softmax(j->out, j->in, j->n, j->pos0, j->T, j->a, h0, h1);
    else mha_mix(j->out, j->in, j->cache, j->n, j->pos0, j->T, j->a, h0, h1);
}

static void mha_ex(const TfmcrtExec *ex, int kind, float *out, const float *in, const float *cache, size_t n,
                   size_t pos0, size_t T, const TfmcrtAttention *a)
{
    MhaJob j = { kind, out, in, cache, n, pos0, T, 1, a };
    j.tasks = tfmcrt_tasks(ex, (size_t)a->heads, n * (pos0 + n) * (size_t)a->head_dim);
    tfmcrt_parallel_for(ex, j.tasks, mha_task, &j);
}

void tfmcrt_mha_scores(float *s, const float *q, const float *kcache, size_t n, size_t pos0, size_t T,
                       const TfmcrtAttention *a)
{
    mha_scores(s, q, kcache, n, pos0, T, a, 0, (size_t)a->heads);
}

void tfmcrt_mha_softmax(float *p, const float *s, size_t n, size_t pos0, size_t T, const TfmcrtAttention *a)
{
    mha_softmax(p, s, n, pos0, T, a, 0, (size_t)a->heads);
}

void tfmcrt_mha_mix(float *out, const float *p, const float *vcache, size_t n, size_t pos0, size_t T,
                    const TfmcrtAttention *a)
{
    mha_mix(out, p, vcache, n, pos0, T, a, 0, (size_t)a->heads);
}

void tfmcrt_mha_scores_ex(const TfmcrtExec *ex, float *s, const float *q, const float *kcache, size_t n, size_t pos0,
                          size_t T, const TfmcrtAttention *a)
{
    mha_ex(ex, 0, s, q, kcache, n, pos0, T, a);
}

void tfmcrt_mha_softmax_ex(const TfmcrtExec *ex, float *p, const float *s, size_t n, size_t pos0, size_t T,
                           const TfmcrtAttention *a)
{
    mha_ex(ex, 1, p, s, NULL, n, pos0, T, a);
}

void tfmcrt_mha_mix_ex(const TfmcrtExec *ex, float *out, const float *p, const float *vcache, size_t n, size_t pos0,
                       size_t T, const TfmcrtAttention *a)
{
    mha_ex(ex, 2, out, p, vcache, n, pos0, T, a);
}
