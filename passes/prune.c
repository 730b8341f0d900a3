/* prune.c: exact pruning of RASP-compiled models (-O1). Walks the blocks backwards from the
 * output: an MLP neuron is live when it writes a live residual dimension, a head when its output
 * does, and what live parts read becomes live. Dimensions nothing live reads, or that are always
 * zero (never written), are removed from every matrix; dead neurons, heads, query/key/value rows
 * and empty blocks go too. Preserves: every live value exactly (only terms that are 0 are
 * dropped), so outputs are identical up to float summation order. Declared models: no-op. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct Prune {
    Model *m;
    bool *live, *written;
    bool *reads; /* scratch: the dimensions one block reads */
} Prune;

static bool any_nonzero(const float *w, size_t n, size_t stride)
{
    for (size_t i = 0; i < n; i++)
        if (w[i * stride] != 0.0f) return true;
    return false;
}

/* Mark what the blocks need, from the output back; false when nothing changed. */
static void liveness(Prune *P)
{
    Model *m = P->m;
    int d = m->dim;
    memset(P->live, 0, sizeof(bool) * (size_t)d);
    if (m->out_kind == OUT_NUMERICAL) P->live[m->out_dim] = true;
    else
        for (int i = 0; i < m->nout; i++) P->live[m->out_dims[i]] = true;
    for (int bi = m->nblocks - 1; bi >= 0; bi--) {
        ModelBlock *b = &m->blocks[bi];
        bool *reads = P->reads;
        memset(reads, 0, sizeof(bool) * (size_t)d);
        if (b->kind == BLOCK_MLP) {
            for (int h = 0; h < b->hidden; h++) {
                bool used = false;
                for (int j = 0; j < d && !used; j++) used = P->live[j] && b->w2[(size_t)j * b->hidden + h] != 0.0f;
                if (!used) continue;
                for (int i = 0; i < d; i++)
                    if (b->w1[(size_t)h * d + i] != 0.0f && P->written[i]) reads[i] = true;
            }
        } else if (b->kind == BLOCK_ATTENTION) {
            for (int hi = 0; hi < b->nheads; hi++) {
                ModelHead *h = &b->heads[hi];
                bool used = false;
                for (int c = 0; c < h->dv; c++)
                    for (int j = 0; j < d && !used; j++) used = P->live[j] && h->wo[(size_t)j * h->dv + c] != 0.0f;
                if (!used) continue;
                for (int i = 0; i < d; i++) {
                    if (!P->written[i]) continue;
                    if (any_nonzero(h->wv + i, (size_t)h->dv, (size_t)d)) reads[i] = true;
                    /* a query/key row counts only when both its sides are non-zero */
                    for (int r = 0; r < h->dk; r++)
                        if ((h->wq[(size_t)r * d + i] != 0.0f && any_nonzero(h->wk + (size_t)r * d, (size_t)d, 1)) ||
                            (h->wk[(size_t)r * d + i] != 0.0f && any_nonzero(h->wq + (size_t)r * d, (size_t)d, 1)))
                            reads[i] = true;
                }
            }
        }
        for (int i = 0; i < d; i++) P->live[i] |= reads[i];
    }
}

/* Which dimensions can ever be non-zero: set by an embedding or written by a block. */
static void written(Prune *P)
{
    Model *m = P->m;
    int d = m->dim;
    for (int i = 0; i < d; i++) {
        bool w = any_nonzero(m->tok_emb + i, (size_t)m->vocab_size, (size_t)d) ||
                 any_nonzero(m->pos_emb + i, (size_t)m->positions, (size_t)d);
        for (int bi = 0; bi < m->nblocks && !w; bi++) {
            const ModelBlock *b = &m->blocks[bi];
            if (b->kind == BLOCK_MLP) w = any_nonzero(b->w2 + (size_t)i * b->hidden, (size_t)b->hidden, 1) || b->b2[i] != 0.0f;
            else
                for (int hi = 0; hi < b->nheads && !w; hi++)
                    w = any_nonzero(b->heads[hi].wo + (size_t)i * b->heads[hi].dv, (size_t)b->heads[hi].dv, 1);
        }
        P->written[i] = w;
    }
}

/* Keep columns `keep` of a [rows][old] matrix: a new [rows][new] one. */
static float *keep_cols(Arena *a, const float *w, int rows, int old, const int *map, int nnew)
{
    size_t size = (size_t)rows * (size_t)nnew;
    float *o = ARENA_ARRAY(a, float, size > 0 ? size : 1);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < old; c++)
            if (map[c] >= 0) o[(size_t)r * nnew + map[c]] = w[(size_t)r * old + c];
    return o;
}

/* Keep rows of a [old][cols] matrix. */
static float *keep_rows(Arena *a, const float *w, int old, int cols, const int *map, int nnew)
{
    size_t size = (size_t)nnew * (size_t)cols;
    float *o = ARENA_ARRAY(a, float, size > 0 ? size : 1);
    for (int r = 0; r < old; r++)
        if (map[r] >= 0) memcpy(o + (size_t)map[r] * cols, w + (size_t)r * cols, sizeof(float) * (size_t)cols);
    return o;
}

static void prune_block_parts(Arena *a, Model *m, ModelBlock *b, const bool *live)
{
    int d = m->dim;
    if (b->kind == BLOCK_MLP) {
        int *map = ARENA_ARRAY(a, int, b->hidden), n = 0;
        for (int h = 0; h < b->hidden; h++) {
            bool used = false;
            for (int j = 0; j < d && !used; j++) used = live[j] && b->w2[(size_t)j * b->hidden + h] != 0.0f;
            map[h] = used ? n++ : -1;
        }
        if (n == b->hidden) return;
        float *w2 = keep_cols(a, b->w2, d, b->hidden, map, n);
        b->w1 = keep_rows(a, b->w1, b->hidden, d, map, n);
        float *b1 = ARENA_ARRAY(a, float, n ? n : 1);
        const char **labels = b->hidden_labels ? ARENA_ARRAY(a, const char *, n ? n : 1) : NULL;
        for (int h = 0; h < b->hidden; h++)
            if (map[h] >= 0) {
                b1[map[h]] = b->b1[h];
                if (labels) labels[map[h]] = b->hidden_labels[h];
            }
        b->w2 = w2;
        b->b1 = b1;
        b->hidden_labels = labels;
        b->hidden = n;
        return;
    }
    int kept = 0;
    for (int hi = 0; hi < b->nheads; hi++) {
        ModelHead h = b->heads[hi];
        /* value rows that reach a live dimension, and query/key rows with both sides non-zero */
        int *vmap = ARENA_ARRAY(a, int, h.dv), nv = 0;
        for (int c = 0; c < h.dv; c++) {
            bool used = false;
            for (int j = 0; j < d && !used; j++) used = live[j] && h.wo[(size_t)j * h.dv + c] != 0.0f;
            vmap[c] = used && any_nonzero(h.wv + (size_t)c * d, (size_t)d, 1) ? nv++ : -1;
        }
        if (nv == 0) continue;
        int *kmap = ARENA_ARRAY(a, int, h.dk), nk = 0;
        for (int r = 0; r < h.dk; r++)
            kmap[r] = any_nonzero(h.wq + (size_t)r * d, (size_t)d, 1) && any_nonzero(h.wk + (size_t)r * d, (size_t)d, 1)
                          ? nk++ : -1;
        if (nk == 0) { /* no scores: a uniform average, keep one zero row */
            kmap[0] = 0;
            nk = 1;
        }
        h.wq = keep_rows(a, h.wq, h.dk, d, kmap, nk);
        h.wk = keep_rows(a, h.wk, h.dk, d, kmap, nk);
        h.wv = keep_rows(a, h.wv, h.dv, d, vmap, nv);
        h.wo = keep_cols(a, h.wo, d, h.dv, vmap, nv);
        h.dk = nk;
        h.dv = nv;
        b->heads[kept++] = h;
    }
    b->nheads = kept;
}

/* Remove the residual dimensions not in keep from every matrix, embedding, label and output. */
static void drop_dims(Arena *a, Model *m, const bool *keep)
{
    int d = m->dim, n = 0;
    int *map = ARENA_ARRAY(a, int, d);
    for (int i = 0; i < d; i++) map[i] = keep[i] ? n++ : -1;
    if (n == d) return;
    m->tok_emb = keep_cols(a, m->tok_emb, m->vocab_size, d, map, n);
    m->pos_emb = keep_cols(a, m->pos_emb, m->positions, d, map, n);
    for (int bi = 0; bi < m->nblocks; bi++) {
        ModelBlock *b = &m->blocks[bi];
        if (b->kind == BLOCK_MLP) {
            b->w1 = keep_cols(a, b->w1, b->hidden, d, map, n);
            b->w2 = keep_rows(a, b->w2, d, b->hidden, map, n);
            float *b2 = ARENA_ARRAY(a, float, n ? n : 1);
            for (int i = 0; i < d; i++)
                if (map[i] >= 0) b2[map[i]] = b->b2[i];
            b->b2 = b2;
        } else {
            for (int hi = 0; hi < b->nheads; hi++) {
                ModelHead *h = &b->heads[hi];
                h->wq = keep_cols(a, h->wq, h->dk, d, map, n);
                h->wk = keep_cols(a, h->wk, h->dk, d, map, n);
                h->wv = keep_cols(a, h->wv, h->dv, d, map, n);
                h->wo = keep_rows(a, h->wo, d, h->dv, map, n);
            }
        }
    }
    const char **labels = ARENA_ARRAY(a, const char *, n ? n : 1);
    for (int i = 0; i < d; i++)
        if (map[i] >= 0) labels[map[i]] = m->dim_labels[i];
    m->dim_labels = labels;
    if (m->out_kind == OUT_NUMERICAL) m->out_dim = map[m->out_dim];
    else {
        int *dims = ARENA_ARRAY(a, int, m->nout ? m->nout : 1);
        for (int i = 0; i < m->nout; i++) dims[i] = map[m->out_dims[i]];
        m->out_dims = dims;
    }
    m->dim = n;
}

bool pass_prune(PassContext *pc, Model *m)
{
    if (m->declared) return true;
    Prune P = { m, NULL, NULL, NULL };
    /* two rounds: removing parts can make more dimensions dead */
    for (int round = 0; round < 2; round++) {
        P.live = ARENA_ARRAY(pc->arena, bool, m->dim);
        P.written = ARENA_ARRAY(pc->arena, bool, m->dim);
        P.reads = ARENA_ARRAY(pc->arena, bool, m->dim);
        written(&P);
        liveness(&P);
        for (int i = 0; i < m->dim; i++) P.live[i] = P.live[i] && P.written[i];
        /* the output's dimensions stay, even when always zero (they decode to undefined) */
        if (m->out_kind == OUT_NUMERICAL) P.live[m->out_dim] = true;
        else
            for (int i = 0; i < m->nout; i++) P.live[m->out_dims[i]] = true;
        for (int bi = 0; bi < m->nblocks; bi++) prune_block_parts(pc->arena, m, &m->blocks[bi], P.live);
        drop_dims(pc->arena, m, P.live);
    }
    int k = 0;
    for (int bi = 0; bi < m->nblocks; bi++) {
        ModelBlock *b = &m->blocks[bi];
        if ((b->kind == BLOCK_MLP && b->hidden == 0) || (b->kind == BLOCK_ATTENTION && b->nheads == 0)) continue;
        m->blocks[k++] = *b;
    }
    m->nblocks = k;
    return true;
}
