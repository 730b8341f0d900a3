/* magnitude.c: magnitude pruning (lossy, opt-in with --prune=threshold:T | sparsity:S | structured:S).
 * Unstructured: in every weight matrix (RASP heads' wq/wk/wv/wo and MLP w1/w2; declared attention
 * wq/wk/wv/wo, FFN up/gate/down, MoE router and experts; not embeddings, the output head, norms or
 * biases) zero each weight with |w| < T, and/or the round(S n) weights of smallest magnitude of
 * each matrix (ties: the first in row-major order).
 * Structured: per block, remove round(S n) of the n MLP hidden units and of the n attention heads
 * (at least one stays), those whose weights have the smallest L2 norm: a unit's row of w1/up/gate
 * and column of w2/down, a head's rows of wq/wk/wv and columns of wo. The matrices shrink, so the
 * FLOPs drop. Declared heads only when kv_heads == heads and positions are not ALiBi (its slopes
 * depend on the head count); MoE experts each lose the same number of units (one hidden size).
 * Then the error it introduced is measured and logged (to the pass log, or stderr under --report):
 * the original and the pruned model run on 32 random inputs (xorshift64* seeded 0x5EED: a length
 * 1 + r % min(max_len, 64), then token ids r % vocab, RASP ones skipping BOS); declared models
 * report the largest absolute logit difference and how often the top-1 token agrees, RASP models
 * the fraction of decoded outputs that stay equal (numbers within 1e-4 relative, as verify).
 * Preserves: nothing exactly; the log says by how much. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { PROBES = 32, PROBE_MAX_LEN = 64 };
#define PROBE_SEED 0x5EEDull

/* ------------------------------------------------------------ unstructured */

typedef struct Unstructured {
    const PassOptions *opts;
    float *mag;          /* scratch: |w| of the largest matrix */
    long total, zeros_before, zeros_after;
    int matrices;
} Unstructured;

typedef void (*MatrixVisit)(void *ud, float *w, size_t n);

/* A declared block repeated with `block shared x N` holds its owner's weights (RASP blocks leave
 * shared_with 0: it means nothing there). */
static int owner_of(const Model *m, const ModelBlock *b)
{
    return m->declared ? b->shared_with : -1;
}

/* Every prunable weight matrix of the model, each once (shared blocks are visited in their owner). */
static void each_matrix(Model *m, MatrixVisit visit, void *ud)
{
    size_t d = (size_t)m->dim;
    for (int bi = 0; bi < m->nblocks; bi++) {
        ModelBlock *b = &m->blocks[bi];
        if (owner_of(m, b) >= 0) continue;
        switch (b->kind) {
        case BLOCK_ATTENTION:
            for (int h = 0; h < b->nheads; h++) {
                ModelHead *hd = &b->heads[h];
                visit(ud, hd->wq, (size_t)hd->dk * d);
                visit(ud, hd->wk, (size_t)hd->dk * d);
                visit(ud, hd->wv, (size_t)hd->dv * d);
                visit(ud, hd->wo, d * (size_t)hd->dv);
            }
            break;
        case BLOCK_MLP:
            visit(ud, b->w1, (size_t)b->hidden * d);
            visit(ud, b->w2, d * (size_t)b->hidden);
            break;
        case BLOCK_MHA: {
            size_t q = (size_t)b->mha_heads * b->head_dim, kv = (size_t)b->kv_heads * b->head_dim;
            visit(ud, b->wq, q * d);
            visit(ud, b->wk, kv * d);
            visit(ud, b->wv, kv * d);
            visit(ud, b->wo, d * q);
            break;
        }
        case BLOCK_FFN:
        case BLOCK_MOE: {
            int nf = b->kind == BLOCK_FFN ? 1 : b->experts;
            if (b->kind == BLOCK_MOE) visit(ud, b->router, (size_t)b->experts * d);
            for (int e = 0; e < nf; e++) {
                Ffn *f = b->kind == BLOCK_FFN ? &b->ffn : &b->expert[e];
                size_t size = (size_t)f->hidden * d;
                visit(ud, f->up, size);
                if (f->gate) visit(ud, f->gate, size);
                visit(ud, f->down, size);
            }
            break;
        }
        }
    }
}

static void largest_matrix(void *ud, float *w, size_t n)
{
    (void)w;
    size_t *max = ud;
    if (n > *max) *max = n;
}

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void prune_matrix(void *ud, float *w, size_t n)
{
    Unstructured *U = ud;
    const PassOptions *o = U->opts;
    for (size_t i = 0; i < n; i++) U->zeros_before += w[i] == 0.0f;
    if (o->prune_threshold > 0)
        for (size_t i = 0; i < n; i++)
            if (fabs(w[i]) < o->prune_threshold) w[i] = 0.0f;
    size_t k = o->prune_structured ? 0 : (size_t)llround(o->prune_sparsity * (double)n);
    if (k > n) k = n;
    if (k > 0) {
        /* the k-th smallest magnitude t: all below it go, then those equal to it in order */
        for (size_t i = 0; i < n; i++) U->mag[i] = fabsf(w[i]);
        qsort(U->mag, n, sizeof(float), compare_floats);
        float t = U->mag[k - 1];
        size_t zeroed = 0;
        for (size_t i = 0; i < n; i++)
            if (fabsf(w[i]) < t) {
                w[i] = 0.0f;
                zeroed++;
            }
        for (size_t i = 0; i < n && zeroed < k; i++)
            if (fabsf(w[i]) == t) {
                w[i] = 0.0f;
                zeroed++;
            }
    }
    for (size_t i = 0; i < n; i++) U->zeros_after += w[i] == 0.0f;
    U->total += (long)n;
    U->matrices++;
}

/* -------------------------------------------------------------- structured */

typedef struct Structured {
    Arena *a;
    double fraction;
    int heads_before, heads_after, units_before, units_after;
    int skipped_heads; /* blocks whose heads could not be removed (grouped K/V, ALiBi) */
} Structured;

/* Which of n units stay, given their squared norms: map[i] is the new index or -1. */
static int keep_largest(Arena *a, const double *norm2, int n, double fraction, int **map_out)
{
    int remove = (int)floor(fraction * n + 0.5);
    if (remove > n - 1) remove = n - 1;
    if (remove < 0) remove = 0;
    int *map = ARENA_ARRAY(a, int, n);
    bool *gone = ARENA_ARRAY(a, bool, n);
    /* remove the smallest, the first of equal ones first (n is small: selection is enough) */
    for (int r = 0; r < remove; r++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!gone[i] && (best < 0 || norm2[i] < norm2[best])) best = i;
        gone[best] = true;
    }
    int kept = 0;
    for (int i = 0; i < n; i++) map[i] = gone[i] ? -1 : kept++;
    *map_out = map;
    return kept;
}

static double row_norm2(const float *w, int cols)
{
    double s = 0;
    for (int c = 0; c < cols; c++) s += (double)w[c] * w[c];
    return s;
}

static double col_norm2(const float *w, int rows, int cols, int c)
{
    double s = 0;
    for (int r = 0; r < rows; r++) s += (double)w[(size_t)r * cols + c] * w[(size_t)r * cols + c];
    return s;
}

/* Rows of a [old][cols] matrix whose map entry is not -1, in order (NULL stays NULL). */
static float *keep_rows(Arena *a, const float *w, int old, int cols, const int *map, int nnew)
{
    if (!w) return NULL;
    float *o = ARENA_ARRAY(a, float, (size_t)nnew * cols);
    for (int r = 0; r < old; r++)
        if (map[r] >= 0) memcpy(o + (size_t)map[r] * cols, w + (size_t)r * cols, sizeof(float) * (size_t)cols);
    return o;
}

/* Columns of a [rows][old] matrix. */
static float *keep_cols(Arena *a, const float *w, int rows, int old, const int *map, int nnew)
{
    float *o = ARENA_ARRAY(a, float, (size_t)rows * nnew);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < old; c++)
            if (map[c] >= 0) o[(size_t)r * nnew + map[c]] = w[(size_t)r * old + c];
    return o;
}

/* A map over heads as a map over their rows (head_dim each). */
static int *rows_of_heads(Arena *a, const int *map, int heads, int head_dim)
{
    int *rows = ARENA_ARRAY(a, int, heads * head_dim);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < head_dim; i++) rows[h * head_dim + i] = map[h] < 0 ? -1 : map[h] * head_dim + i;
    return rows;
}

static void prune_ffn(Structured *S, Ffn *f, int d)
{
    int n = f->hidden, *map;
    double *norm2 = ARENA_ARRAY(S->a, double, n);
    for (int h = 0; h < n; h++) {
        norm2[h] = row_norm2(f->up + (size_t)h * d, d) + col_norm2(f->down, d, n, h);
        if (f->gate) norm2[h] += row_norm2(f->gate + (size_t)h * d, d);
    }
    int kept = keep_largest(S->a, norm2, n, S->fraction, &map);
    f->up = keep_rows(S->a, f->up, n, d, map, kept);
    f->gate = keep_rows(S->a, f->gate, n, d, map, kept);
    f->b_up = keep_rows(S->a, f->b_up, n, 1, map, kept);
    f->b_gate = keep_rows(S->a, f->b_gate, n, 1, map, kept);
    f->down = keep_cols(S->a, f->down, d, n, map, kept);
    f->hidden = kept;
    S->units_before += n;
    S->units_after += kept;
}

static void prune_rasp_mlp(Structured *S, ModelBlock *b, int d)
{
    int n = b->hidden, *map;
    double *norm2 = ARENA_ARRAY(S->a, double, n);
    for (int h = 0; h < n; h++) norm2[h] = row_norm2(b->w1 + (size_t)h * d, d) + col_norm2(b->w2, d, n, h);
    int kept = keep_largest(S->a, norm2, n, S->fraction, &map);
    b->w1 = keep_rows(S->a, b->w1, n, d, map, kept);
    b->b1 = keep_rows(S->a, b->b1, n, 1, map, kept);
    b->w2 = keep_cols(S->a, b->w2, d, n, map, kept);
    if (b->hidden_labels) {
        const char **labels = ARENA_ARRAY(S->a, const char *, kept);
        for (int h = 0; h < n; h++)
            if (map[h] >= 0) labels[map[h]] = b->hidden_labels[h];
        b->hidden_labels = labels;
    }
    b->hidden = kept;
    S->units_before += n;
    S->units_after += kept;
}

static void prune_rasp_heads(Structured *S, ModelBlock *b, int d)
{
    int n = b->nheads, *map;
    double *norm2 = ARENA_ARRAY(S->a, double, n);
    for (int i = 0; i < n; i++) {
        const ModelHead *h = &b->heads[i];
        norm2[i] = row_norm2(h->wq, h->dk * d) + row_norm2(h->wk, h->dk * d) + row_norm2(h->wv, h->dv * d) +
                   row_norm2(h->wo, d * h->dv);
    }
    int kept = keep_largest(S->a, norm2, n, S->fraction, &map);
    for (int i = 0; i < n; i++)
        if (map[i] >= 0) b->heads[map[i]] = b->heads[i];
    b->nheads = kept;
    S->heads_before += n;
    S->heads_after += kept;
}

static void prune_mha(Structured *S, ModelBlock *b, int d)
{
    int n = b->mha_heads, hd = b->head_dim, *map;
    if (b->kv_heads != n || b->pos == POS_ALIBI) {
        S->skipped_heads++;
        S->heads_before += n;
        S->heads_after += n;
        return;
    }
    double *norm2 = ARENA_ARRAY(S->a, double, n);
    for (int h = 0; h < n; h++) {
        size_t at = (size_t)h * hd * d;
        norm2[h] = row_norm2(b->wq + at, hd * d) + row_norm2(b->wk + at, hd * d) + row_norm2(b->wv + at, hd * d);
        for (int i = 0; i < hd; i++) norm2[h] += col_norm2(b->wo, d, n * hd, h * hd + i);
    }
    int kept = keep_largest(S->a, norm2, n, S->fraction, &map);
    int *rows = rows_of_heads(S->a, map, n, hd), old = n * hd, nrows = kept * hd;
    b->wq = keep_rows(S->a, b->wq, old, d, rows, nrows);
    b->wk = keep_rows(S->a, b->wk, old, d, rows, nrows);
    b->wv = keep_rows(S->a, b->wv, old, d, rows, nrows);
    b->bq = keep_rows(S->a, b->bq, old, 1, rows, nrows);
    b->bk = keep_rows(S->a, b->bk, old, 1, rows, nrows);
    b->bv = keep_rows(S->a, b->bv, old, 1, rows, nrows);
    b->wo = keep_cols(S->a, b->wo, d, old, rows, nrows);
    b->mha_heads = b->kv_heads = kept;
    S->heads_before += n;
    S->heads_after += kept;
}

static void prune_structured(Structured *S, Model *m)
{
    int d = m->dim;
    for (int bi = 0; bi < m->nblocks; bi++) {
        ModelBlock *b = &m->blocks[bi];
        if (owner_of(m, b) >= 0) continue;
        switch (b->kind) {
        case BLOCK_ATTENTION: prune_rasp_heads(S, b, d); break;
        case BLOCK_MLP: prune_rasp_mlp(S, b, d); break;
        case BLOCK_MHA: prune_mha(S, b, d); break;
        case BLOCK_FFN: prune_ffn(S, &b->ffn, d); break;
        case BLOCK_MOE:
            for (int e = 0; e < b->experts; e++) prune_ffn(S, &b->expert[e], d);
            b->ffn.hidden = b->expert[0].hidden;
            break;
        }
    }
    /* a shared block is a copy of its owner's fields */
    for (int bi = 0; bi < m->nblocks; bi++) {
        int owner = owner_of(m, &m->blocks[bi]);
        if (owner < 0) continue;
        m->blocks[bi] = m->blocks[owner];
        m->blocks[bi].shared_with = owner;
    }
}

/* ------------------------------------------------------ measuring the error */

/* xorshift64*: the probe inputs are reproducible (docs/passes.md and the tests repeat them). */
static uint32_t probe_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (uint32_t)((*s * 2685821657736338717ull) >> 32);
}

typedef struct Probes {
    int len[PROBES], at[PROBES]; /* token ids of probe i: ids + at[i], len[i] of them */
    int *ids, total;
    float *logits;   /* declared: the original model's [total][vocab] */
    Value *decoded;  /* RASP: the original model's outputs, BOS excluded */
    float *run;      /* the graph arena */
    double flops;
} Probes;

static void make_probes(Arena *a, const Model *m, Probes *P)
{
    uint64_t s = PROBE_SEED;
    int max = m->max_len < PROBE_MAX_LEN ? m->max_len : PROBE_MAX_LEN;
    int bos = m->declared ? 0 : 1;
    P->total = 0;
    for (int i = 0; i < PROBES; i++) {
        P->len[i] = 1 + (int)(probe_random(&s) % (uint32_t)max);
        P->at[i] = P->total;
        P->total += P->len[i] + bos;
    }
    P->ids = ARENA_ARRAY(a, int, P->total);
    for (int i = 0; i < PROBES; i++) {
        int *ids = P->ids + P->at[i];
        if (!m->declared) *ids++ = m->bos_id;
        for (int k = 0; k < P->len[i]; k++) {
            if (m->declared) {
                ids[k] = (int)(probe_random(&s) % (uint32_t)m->vocab_size);
            } else {
                int id = (int)(probe_random(&s) % (uint32_t)(m->vocab_size - 1));
                ids[k] = id >= m->bos_id ? id + 1 : id;
            }
        }
    }
}

static Graph *probe_graph(Arena *a, const Model *m)
{
    return m->declared ? graph_from_declared(a, m) : graph_from_model(a, m);
}

/* Run probe i; its outputs (logits, or the residual with BOS first) are returned. */
static const float *run_probe(PassContext *pc, const Graph *g, const Probes *P, int i, float *run)
{
    int n = P->len[i] + (g->declared ? 0 : 1);
    pc->run(pc->run_ud, g, P->ids + P->at[i], n, run);
    return run + g->tensors[g->output].offset;
}

static void run_reference(PassContext *pc, Arena *a, const Model *m, Probes *P)
{
    Graph *g = probe_graph(a, m);
    P->flops = graph_flops(g, m->positions);
    float *run = ARENA_ARRAY(a, float, g->arena_floats);
    int v = m->vocab_size, positions = 0;
    for (int i = 0; i < PROBES; i++) positions += P->len[i];
    if (m->declared) P->logits = ARENA_ARRAY(a, float, (size_t)positions * v);
    else P->decoded = ARENA_ARRAY(a, Value, positions);
    for (int i = 0, at = 0; i < PROBES; i++) {
        const float *out = run_probe(pc, g, P, i, run);
        if (m->declared) memcpy(P->logits + (size_t)at * v, out, sizeof(float) * (size_t)P->len[i] * v);
        else
            for (int k = 0; k < P->len[i]; k++) P->decoded[at + k] = model_decode(m, out + (size_t)(k + 1) * m->dim);
        at += P->len[i];
    }
}

static bool same_output(const Model *m, Value want, Value got)
{
    if (want.kind == TFMC_UNDEF || got.kind == TFMC_UNDEF) return want.kind == got.kind;
    if (m->out_kind == OUT_CATEGORICAL) return value_eq(want, got);
    double a = value_number(want), b = value_number(got);
    return fabs(a - b) <= 1e-4 * (fabs(a) > 1 ? fabs(a) : 1);
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static void report_error(PassContext *pc, Arena *a, const Model *m, const Probes *P, FILE *out)
{
    Graph *g = probe_graph(a, m);
    float *run = ARENA_ARRAY(a, float, g->arena_floats);
    int v = m->vocab_size, agree = 0, positions = 0;
    double max_error = 0;
    for (int i = 0; i < PROBES; i++) {
        const float *got = run_probe(pc, g, P, i, run);
        for (int k = 0; k < P->len[i]; k++, positions++) {
            if (m->declared) {
                const float *want = P->logits + (size_t)positions * v, *row = got + (size_t)k * v;
                for (int t = 0; t < v; t++) {
                    double e = fabs((double)want[t] - row[t]);
                    if (e > max_error || isnan(e)) max_error = e;
                }
                agree += argmax(want, v) == argmax(row, v);
            } else {
                agree += same_output(m, P->decoded[positions], model_decode(m, got + (size_t)(k + 1) * m->dim));
            }
        }
    }
    fprintf(out, "magnitude: FLOPs/position at n = %d: %.0f -> %.0f\n", m->positions, P->flops,
            graph_flops(g, m->positions));
    if (m->declared)
        fprintf(out, "magnitude: on %d random inputs (%d positions): max |logit error| %.9g, top-1 agreement %.9g "
                     "(%d of %d)\n", PROBES, positions, max_error, (double)agree / positions, agree, positions);
    else
        fprintf(out, "magnitude: on %d random inputs (%d positions): outputs unchanged %.9g (%d of %d)\n", PROBES,
                positions, (double)agree / positions, agree, positions);
}

/* ---------------------------------------------------------------- the pass */

/* Scratch memory for the pass, freed at its end, also when an allocation fails on the way. */
typedef struct Guard {
    Arena scratch;
    jmp_buf on_oom;
    jmp_buf *outer;
    Arena *arena;
} Guard;

bool pass_magnitude(PassContext *pc, Model *m)
{
    const PassOptions *o = pc->opts;
    /* the error is measured when asked for and there is a backend to run the graphs on */
    FILE *const out = !pc->run ? NULL : pc->log ? pc->log : o->report ? stderr : NULL;
    if (o->prune_threshold <= 0 && o->prune_sparsity <= 0) return true; /* nothing asked for */
    /* pruned scores lose the margin that makes a causal mask exact for never-later selectors:
     * fusion must then visit every key, as the error measured here (unfused) does */
    for (int bi = 0; bi < m->nblocks; bi++)
        for (int h = 0; h < m->blocks[bi].nheads; h++) m->blocks[bi].heads[h].never_later = false;
    Guard *G = ARENA_NEW(pc->arena, Guard);
    G->arena = pc->arena;
    G->outer = pc->arena->on_oom;
    arena_init(&G->scratch, pc->arena->alloc, &G->on_oom);
    if (setjmp(G->on_oom)) {
        arena_free(&G->scratch);
        G->arena->on_oom = G->outer;
        longjmp(*G->outer, 1);
    }
    pc->arena->on_oom = &G->on_oom;

    Probes P = { 0 };
    if (out) {
        make_probes(&G->scratch, m, &P);
        run_reference(pc, &G->scratch, m, &P);
    }
    if (o->prune_structured && o->prune_sparsity > 0) {
        Structured S = { pc->arena, o->prune_sparsity, 0, 0, 0, 0, 0 };
        prune_structured(&S, m);
        if (out) {
            fprintf(out, "magnitude: removed %d of %d heads and %d of %d MLP units (%.3g of each block)\n",
                    S.heads_before - S.heads_after, S.heads_before, S.units_before - S.units_after, S.units_before,
                    o->prune_sparsity);
            if (S.skipped_heads)
                fprintf(out, "magnitude: kept the heads of %d block%s (grouped K/V or ALiBi)\n", S.skipped_heads,
                        S.skipped_heads == 1 ? "" : "s");
        }
    }
    if (o->prune_threshold > 0 || (!o->prune_structured && o->prune_sparsity > 0)) {
        size_t largest = 0;
        each_matrix(m, largest_matrix, &largest);
        Unstructured U = { o, ARENA_ARRAY(&G->scratch, float, largest ? largest : 1), 0, 0, 0, 0 };
        each_matrix(m, prune_matrix, &U);
        if (out)
            fprintf(out, "magnitude: %ld of %ld weights in %d matrices are zero (%ld before)\n", U.zeros_after,
                    U.total, U.matrices, U.zeros_before);
    }
    if (out) report_error(pc, &G->scratch, m, &P, out);

    pc->arena->on_oom = G->outer;
    arena_free(&G->scratch);
    return true;
}
