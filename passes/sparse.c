/* sparse.c: weight-specialised code for very sparse matrices (-O2). A linear op whose weight
 * matrix is mostly zeros (RASP-compiled models are) gets its non-zeros in compressed rows
 * (values, column indices, row starts), which the backends and the interpreter multiply without
 * touching the zeros; so are the one-hot embedding tables of RASP models. Cost rule: compressed
 * when at most 40% of the weights are non-zero: the multiplications drop by 2.5x or more (the C
 * backend writes small ones as straight-line code, where indices cost nothing).
 * A compressed linear op whose result is added to the residual stream becomes one op adding only
 * its non-zero rows (RASP blocks write few dimensions). Preserves: every value exactly (the zeros
 * contributed nothing; the summation order of the remaining terms is row order). */
#include "passes.h"

/* W[rows][cols] in compressed rows, when the cost rule says so; false otherwise. */
static bool compress(Arena *a, const float *w, int rows, int cols, const int **rowptr_out, const int **colidx_out,
                     const float **vals_out, int *nnz_out)
{
    size_t dense = (size_t)rows * (size_t)cols, nnz = 0;
    for (size_t k = 0; k < dense; k++) nnz += w[k] != 0.0f;
    if (10 * nnz > 4 * dense) return false;
    int *rowptr = ARENA_ARRAY(a, int, rows + 1);
    int *colidx = ARENA_ARRAY(a, int, nnz ? nnz : 1);
    float *vals = ARENA_ARRAY(a, float, nnz ? nnz : 1);
    int at = 0;
    for (int r = 0; r < rows; r++) {
        rowptr[r] = at;
        for (int c = 0; c < cols; c++) {
            float v = w[(size_t)r * cols + c];
            if (v == 0.0f) continue;
            colidx[at] = c;
            vals[at++] = v;
        }
    }
    rowptr[rows] = at;
    *rowptr_out = rowptr;
    *colidx_out = colidx;
    *vals_out = vals;
    *nnz_out = at;
    return true;
}

/* A RASP block writes a few residual dimensions: `x + W h` with W compressed becomes one op
 * that adds only W's non-zero rows (in place when x is not read again), instead of a linear op
 * and an add over every dimension. Same sums in the same order. */
static void fuse_residual_adds(Arena *a, Graph *g)
{
    int *readers = ARENA_ARRAY(a, int, g->ntensors ? g->ntensors : 1);
    for (int i = 0; i < g->nops; i++)
        for (int q = 0; q < 3; q++)
            if (g->ops[i].in[q] >= 0) readers[g->ops[i].in[q]]++;
    int k = 0;
    for (int i = 0; i < g->nops; i++) {
        GraphOp *add = &g->ops[i];
        if (add->kind == G_ADD) {
            int t = add->in[1], j = -1;
            for (int q = 0; q < k; q++)
                if (g->ops[q].out == t && g->ops[q].kind == G_LINEAR && g->ops[q].vals && g->ops[q].in[1] < 0) j = q;
            if (j >= 0 && readers[t] == 1 && add->in[0] != t) {
                g->ops[j].in[1] = add->in[0];
                g->ops[j].out = add->out;
                g->tensors[t].cols = 0; /* no longer written */
                continue;
            }
        }
        g->ops[k++] = *add;
    }
    g->nops = k;
}

bool pass_sparse(PassContext *pc, Graph *g)
{
    const Model *m = g->model;
    for (int i = 0; i < g->nops; i++) {
        GraphOp *o = &g->ops[i];
        if (o->kind == G_LINEAR && !o->vals) {
            if (!compress(pc->arena, o->w, o->rows, o->cols, &o->rowptr, &o->colidx, &o->vals, &o->nnz)) continue;
            /* a bias of zeros adds nothing: drop it (x + 0 is x) */
            bool zero = true;
            for (int r = 0; o->b && r < o->rows && zero; r++) zero = o->b[r] == 0.0f;
            if (zero) o->b = NULL;
        } else if (o->kind == G_EMBED && !m->declared && !o->vals) {
            /* RASP embeddings are one-hot rows: both tables compressed, or neither */
            GraphOp t = *o;
            if (compress(pc->arena, m->tok_emb, m->vocab_size, m->dim, &t.rowptr, &t.colidx, &t.vals, &t.nnz) &&
                compress(pc->arena, m->pos_emb, m->positions, m->dim, &t.pos_rowptr, &t.pos_colidx, &t.pos_vals,
                         &t.pos_nnz))
                *o = t;
        }
    }
    if (!m->declared) fuse_residual_adds(pc->arena, g);
    return true;
}
