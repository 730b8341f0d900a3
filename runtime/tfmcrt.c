/* tfmcrt.c: the tfmc runtime's element-wise kernels, norms, activations, positions, caches and
 * mixtures of experts; matrix products are in tfmcrt_linear.c, attention in tfmcrt_attention.c. */
#include "tfmcrt_simd.h"

const char *tfmcrt_version(void) { return TFMCRT_VERSION; }

#ifdef VEC_LANES
bool tfmcrt_wide_registers(void)
{
#if defined(TFMCRT_WIDE)
    return TFMCRT_WIDE; /* set by the code that includes the runtime (the SIMD backend's target) */
#elif defined(__AVX512F__)
    return true;
#elif defined(TFMCRT_CPU_DISPATCH)
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}
#endif

TFMCRT_CLONES
float tfmcrt_dot(const float *a, const float *b, size_t n)
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

void tfmcrt_slice(float *out, const float *in, size_t n, size_t in_cols, size_t start, size_t cols)
{
    for (size_t i = 0; i < n; i++) memcpy(out + i * cols, in + i * in_cols + start, cols * sizeof(float));
}

void tfmcrt_embed(float *out, const int *ids, size_t n, size_t pos0, const float *tok, const float *pos, size_t dim)
{
    for (size_t i = 0; i < n; i++) {
        const float *t = tok + (size_t)ids[i] * dim;
        if (pos) tfmcrt_add(out + i * dim, t, pos + (pos0 + i) * dim, dim);
        else tfmcrt_copy(out + i * dim, t, dim);
    }
}

void tfmcrt_embed_csr(float *out, const int *ids, size_t n, size_t pos0, size_t dim, const int *tok_rowptr,
                      const int *tok_colidx, const float *tok_vals, const int *pos_rowptr, const int *pos_colidx,
                      const float *pos_vals)
{
    for (size_t i = 0; i < n; i++) {
        float *row = out + i * dim;
        int id = ids[i];
        size_t at = pos0 + i;
        memset(row, 0, sizeof(float) * dim);
        for (int k = tok_rowptr[id]; k < tok_rowptr[id + 1]; k++) row[tok_colidx[k]] += tok_vals[k];
        for (int k = pos_rowptr[at]; k < pos_rowptr[at + 1]; k++) row[pos_colidx[k]] += pos_vals[k];
    }
}

void tfmcrt_copy(float *out, const float *in, size_t count)
{
    if (count) memcpy(out, in, count * sizeof(float));
}

void tfmcrt_scale(float *x, size_t count, float s)
{
    for (size_t i = 0; i < count; i++) x[i] *= s;
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
    tfmcrt_norm_ex(NULL, out, in, n, d, kind, eps, alpha, w, b);
}

/* One task of an elementwise or per-row kernel: rows (or floats) [t * count / tasks, ...) of
 * count, each range a multiple of align long (but the last). */
typedef struct RowJob {
    float *out;
    const float *in, *in2, *w, *b;
    size_t count, align, tasks, d, heads, pos0;
    int kind;
    float eps, alpha;
} RowJob;

static void row_range(const RowJob *j, size_t task, size_t *begin, size_t *end)
{
    size_t units = (j->count + j->align - 1) / j->align;
    *begin = task * units / j->tasks * j->align;
    *end = (task + 1) * units / j->tasks * j->align;
    if (*end > j->count) *end = j->count;
}

static void norm_rows(float *out, const float *in, size_t n, size_t d, int kind, float eps, float alpha,
                      const float *w, const float *b);

static void add_task(void *arg, size_t task)
{
    const RowJob *j = arg;
    size_t c0, c1;
    row_range(j, task, &c0, &c1);
    tfmcrt_add(j->out + c0, j->in + c0, j->in2 + c0, c1 - c0);
}

/* Threads take ranges of 256 floats (an addition is the same whatever the range). */
void tfmcrt_add_ex(const TfmcrtExec *ex, float *out, const float *a, const float *b, size_t count)
{
    RowJob j = { out, a, b, NULL, NULL, count, 256, 1, 0, 0, 0, 0, 0, 0 };
    j.tasks = tfmcrt_tasks(ex, (count + 255) / 256, 256);
    tfmcrt_parallel_for(ex, j.tasks, add_task, &j);
}

typedef struct KvJob {
    float *kcache, *vcache;
    const float *k, *v;
    size_t n, pos0, kvd, tasks;
} KvJob;

static void kv_task(void *arg, size_t task)
{
    const KvJob *j = arg;
    size_t i0 = task * j->n / j->tasks, i1 = (task + 1) * j->n / j->tasks;
    tfmcrt_kv_store(j->kcache, j->vcache, j->k + i0 * j->kvd, j->v + i0 * j->kvd, i1 - i0, j->pos0 + i0, j->kvd);
}

/* Threads take ranges of positions. */
void tfmcrt_kv_store_ex(const TfmcrtExec *ex, float *kcache, float *vcache, const float *k, const float *v, size_t n,
                        size_t pos0, size_t kvd)
{
    KvJob j = { kcache, vcache, k, v, n, pos0, kvd, 1 };
    if (n == 0) return;
    j.tasks = tfmcrt_tasks(ex, n, 2 * kvd);
    tfmcrt_parallel_for(ex, j.tasks, kv_task, &j);
}

static void norm_task(void *arg, size_t task)
{
    const RowJob *j = arg;
    size_t i0, i1;
    row_range(j, task, &i0, &i1);
    norm_rows(j->out + i0 * j->d, j->in + i0 * j->d, i1 - i0, j->d, j->kind, j->eps, j->alpha, j->w, j->b);
}

/* Threads take whole rows (positions). */
void tfmcrt_norm_ex(const TfmcrtExec *ex, float *out, const float *in, size_t n, size_t d, int kind, float eps,
                    float alpha, const float *w, const float *b)
{
    RowJob j = { out, in, NULL, w, b, n, 1, 1, d, 0, 0, kind, eps, alpha };
    j.tasks = tfmcrt_tasks(ex, n, 4 * d);
    tfmcrt_parallel_for(ex, j.tasks, norm_task, &j);
}

/* Each head of each position normalised on its own, in place: x[n][heads][hd] (Qwen 3's q and k
 * norms: one weight vector [hd] for every head). The rows are the n x heads head vectors. */
void tfmcrt_head_norm_ex(const TfmcrtExec *ex, float *x, size_t n, size_t heads, size_t hd, int kind, float eps,
                         const float *w)
{
    RowJob j = { x, x, NULL, w, NULL, n * heads, heads, 1, hd, 0, 0, kind, eps, 0 };
    j.tasks = tfmcrt_tasks(ex, n, 4 * hd * heads);
    tfmcrt_parallel_for(ex, j.tasks, norm_task, &j);
}

static void norm_rows(float *out, const float *in, size_t n, size_t d, int kind, float eps, float alpha,
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
    case TFMCRT_GELU_TANH:
    case TFMCRT_GEGLU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
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

static void act_task(void *arg, size_t task)
{
    const RowJob *j = arg;
    size_t c0, c1;
    row_range(j, task, &c0, &c1);
    if (j->in2) tfmcrt_glu(j->out + c0, j->in + c0, j->in2 + c0, c1 - c0, j->kind);
    else tfmcrt_act(j->out + c0, c1 - c0, j->kind);
}

/* Threads take ranges of 256-float multiples: every element goes through the same vector lane
 * arithmetic as on one thread. */
void tfmcrt_act_ex(const TfmcrtExec *ex, float *x, size_t count, int act)
{
    RowJob j = { x, NULL, NULL, NULL, NULL, count, 256, 1, 0, 0, 0, act, 0, 0 };
    j.tasks = tfmcrt_tasks(ex, (count + 255) / 256, 256 * 16);
    tfmcrt_parallel_for(ex, j.tasks, act_task, &j);
}

void tfmcrt_glu_ex(const TfmcrtExec *ex, float *out, const float *gate, const float *up, size_t count, int act)
{
    RowJob j = { out, gate, up, NULL, NULL, count, 256, 1, 0, 0, 0, act, 0, 0 };
    j.tasks = tfmcrt_tasks(ex, (count + 255) / 256, 256 * 16);
    tfmcrt_parallel_for(ex, j.tasks, act_task, &j);
}

void tfmcrt_act(float *x, size_t count, int act)
{
#ifdef VEC_LANES
    if ((act == TFMCRT_GELU_TANH || act == TFMCRT_SILU || act == TFMCRT_SWIGLU) && tfmcrt_wide_registers()) {
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
    if ((act == TFMCRT_SWIGLU || act == TFMCRT_SILU) && tfmcrt_wide_registers()) {
        act_logistic(out, gate, up, count, act);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) out[i] = act1(gate[i], act) * up[i];
}

static void rope_task(void *arg, size_t task)
{
    const RowJob *j = arg;
    size_t i0, i1;
    row_range(j, task, &i0, &i1);
    tfmcrt_rope(j->out + i0 * j->heads * j->d, i1 - i0, j->heads, j->d, j->pos0 + i0, j->eps);
}

/* Threads take whole positions. */
void tfmcrt_rope_ex(const TfmcrtExec *ex, float *x, size_t n, size_t heads, size_t hd, size_t pos0, float base)
{
    RowJob j = { x, NULL, NULL, NULL, NULL, n, 1, 1, hd, heads, pos0, 0, base, 0 };
    j.tasks = tfmcrt_tasks(ex, n, heads * hd * 4 + hd * 40);
    tfmcrt_parallel_for(ex, j.tasks, rope_task, &j);
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

/* As tfmcrt_rope on the first rot dimensions of each head, with the frequency of each pair given:
 * freq[rot / 2] (scaled rotary positions, Llama 3's rope_scaling; partial rotary, GPT-NeoX). */
void tfmcrt_rope_freq(float *x, size_t n, size_t heads, size_t hd, size_t rot, size_t pos0, const float *freq)
{
    size_t half = rot / 2;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < half; j++) {
            double angle = (double)(pos0 + i) * (double)freq[j];
            float c = (float)cos(angle), s = (float)sin(angle);
            for (size_t h = 0; h < heads; h++) {
                float *v = x + i * heads * hd + h * hd;
                float a = v[j], b = v[j + half];
                v[j] = a * c - b * s;
                v[j + half] = b * c + a * s;
            }
        }
}

static void rope_freq_task(void *arg, size_t task)
{
    const RowJob *j = arg;
    size_t i0, i1;
    row_range(j, task, &i0, &i1);
    tfmcrt_rope_freq(j->out + i0 * j->heads * j->d, i1 - i0, j->heads, j->d, (size_t)j->kind, j->pos0 + i0, j->w);
}

void tfmcrt_rope_freq_ex(const TfmcrtExec *ex, float *x, size_t n, size_t heads, size_t hd, size_t rot, size_t pos0,
                         const float *freq)
{
    RowJob j = { x, NULL, NULL, freq, NULL, n, 1, 1, hd, heads, pos0, (int)rot, 0, 0 };
    j.tasks = tfmcrt_tasks(ex, n, heads * hd * 4 + rot * 20);
    tfmcrt_parallel_for(ex, j.tasks, rope_freq_task, &j);
}

void tfmcrt_kv_store(float *kcache, float *vcache, const float *k, const float *v, size_t n, size_t pos0,
                     size_t kvd)
{
    for (size_t i = 0; i < n * kvd; i++) {
        kcache[pos0 * kvd + i] = k[i];
        vcache[pos0 * kvd + i] = v[i];
    }
}
static void ffn1(const TfmcrtExec *ex, float *y, const float *x, size_t d, const TfmcrtFfn *f, size_t hidden, int act,
                 float *h, float *g)
{
    tfmcrt_linear_ex(ex, h, x, 1, f->up, f->b_up, hidden, d);
    if (f->gate) {
        tfmcrt_linear_ex(ex, g, x, 1, f->gate, f->b_gate, hidden, d);
        tfmcrt_glu_ex(ex, h, g, h, hidden, act);
    } else {
        tfmcrt_act_ex(ex, h, hidden, act);
    }
    tfmcrt_linear_ex(ex, y, h, 1, f->down, f->b_down, d, hidden);
}

/* Positions i0..i1 of a mixture of experts with one slot of scratch; ex (NULL inside a task) for
 * the experts' products. */
static void moe_rows(const TfmcrtExec *ex, float *out, const float *in, size_t i0, size_t i1, size_t d,
                     const float *router, const TfmcrtFfn *experts, int nexperts, int top, size_t hidden, int act,
                     float *scratch)
{
    float *h = scratch, *g = scratch + hidden, *logits = scratch + 3 * hidden;
    for (size_t i = i0; i < i1; i++) {
        const float *x = in + i * d;
        float *o = out + i * d;
        tfmcrt_linear_ex(ex, logits, x, 1, router, NULL, (size_t)nexperts, d);
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
            ffn1(ex, yk, x, d, &experts[chosen[k]], hidden, act, h, g);
            for (size_t c = 0; c < d; c++) o[c] += weight[k] / sum * yk[c];
        }
    }
}

void tfmcrt_moe(float *out, const float *in, size_t n, size_t d, const float *router, const TfmcrtFfn *experts,
                int nexperts, int top, size_t hidden, int act, float *scratch)
{
    moe_rows(NULL, out, in, 0, n, d, router, experts, nexperts, top, hidden, act, scratch);
}

size_t tfmcrt_moe_scratch_floats(size_t d, int nexperts, size_t hidden, size_t positions)
{
    size_t slots = positions < TFMCRT_MOE_SLOTS ? positions : TFMCRT_MOE_SLOTS;
    return (slots ? slots : 1) * (3 * hidden + (size_t)nexperts + d);
}

typedef struct MoeJob {
    float *out;
    const float *in, *router;
    const TfmcrtFfn *experts;
    size_t n, d, hidden, tasks;
    int nexperts, top, act;
    float *scratch;
} MoeJob;

static void moe_task(void *arg, size_t t)
{
    const MoeJob *j = arg;
    size_t slot = 3 * j->hidden + (size_t)j->nexperts + j->d;
    moe_rows(NULL, j->out, j->in, t * j->n / j->tasks, (t + 1) * j->n / j->tasks, j->d, j->router, j->experts,
             j->nexperts, j->top, j->hidden, j->act, j->scratch + t * slot);
}

/* Threads take whole positions, each task its own slot of scratch (at most TFMCRT_MOE_SLOTS); one
 * position (decode) runs its experts' products on the threads instead. */
void tfmcrt_moe_ex(const TfmcrtExec *ex, float *out, const float *in, size_t n, size_t d, const float *router,
                   const TfmcrtFfn *experts, int nexperts, int top, size_t hidden, int act, float *scratch)
{
    size_t work = (size_t)top * 3 * hidden * d + (size_t)nexperts * d;
    size_t tasks = tfmcrt_tasks(ex, n, work);
    if (tasks > TFMCRT_MOE_SLOTS) tasks = TFMCRT_MOE_SLOTS;
    if (tasks <= 1) {
        moe_rows(ex, out, in, 0, n, d, router, experts, nexperts, top, hidden, act, scratch);
        return;
    }
    MoeJob j = { out, in, router, experts, n, d, hidden, tasks, nexperts, top, act, scratch };
    tfmcrt_parallel_for(ex, tasks, moe_task, &j);
}
