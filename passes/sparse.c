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

/* Constant c in compressed rows when the cost rule says so: the index of the compressed one
 * (made once per constant: memo[c]), or -1. */
static int compress(Arena *a, Graph *g, int c, int *memo)
{
    if (c < 0) return -1;
    if (memo[c] != -2) return memo[c];
    const GraphConst *k = &g->consts[c];
    memo[c] = -1;
    if (k->vals || !k->data || !k->cols) return -1; /* compressed already, int8, or a vector */
    int rows = k->rows, cols = k->cols;
    const float *w = k->data;
    size_t dense = (size_t)rows * (size_t)cols, nnz = 0, limit = 4 * dense / 10; /* the most the rule allows */
    /* counted a row at a time, stopping as soon as the rule fails: a dense matrix of a checkpoint
     * is read only until 40% of it is found non-zero, not to the end */
    for (size_t r = 0; r < (size_t)rows && nnz <= limit; r++) {
        const float *row = w + r * (size_t)cols;
        uint32_t lane[8] = { 0 }; /* independent counts: vector code under plain -O2 */
        size_t q = 0;
        for (; q + 8 <= (size_t)cols; q += 8)
            for (int j = 0; j < 8; j++) lane[j] += row[q + j] != 0.0f;
        for (; q < (size_t)cols; q++) nnz += row[q] != 0.0f;
        for (int j = 0; j < 8; j++) nnz += lane[j];
    }
    if (10 * nnz > 4 * dense) return -1;
    int *rowptr = ARENA_ARRAY(a, int, rows + 1);
    int *colidx = ARENA_ARRAY(a, int, nnz ? nnz : 1);
    float *vals = ARENA_ARRAY(a, float, nnz ? nnz : 1);
    int at = 0;
    for (int r = 0; r < rows; r++) {
        rowptr[r] = at;
        for (int q = 0; q < cols; q++) {
            float v = w[(size_t)r * cols + q];
            if (v == 0.0f) continue;
            colidx[at] = q;
            vals[at++] = v;
        }
    }
    rowptr[rows] = at;
    memo[c] = graph_add_sparse_const(a, g, rows, cols, rowptr, colidx, vals, at, k->name);
    return memo[c];
}

static bool is_sparse_linear(const Graph *g, const GraphOp *o)
{
    return o->kind == G_LINEAR && g->consts[o->consts[0]].vals;
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
                if (g->ops[q].out == t && is_sparse_linear(g, &g->ops[q]) && g->ops[q].in[1] < 0) j = q;
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
    int nc = g->nconsts;
    int *memo = ARENA_ARRAY(pc->arena, int, nc ? nc : 1);
    for (int i = 0; i < nc; i++) memo[i] = -2;
    for (int i = 0; i < g->nops; i++) {
        GraphOp *o = &g->ops[i];
        if (o->kind == G_LINEAR && !g->consts[o->consts[0]].vals) {
            int c = compress(pc->arena, g, o->consts[0], memo);
            if (c < 0) continue;
            o->consts[0] = c;
            /* a bias of zeros adds nothing: drop it (x + 0 is x) */
            int b = o->consts[1];
            bool zero = true;
            for (int r = 0; b >= 0 && r < g->consts[b].rows && zero; r++) zero = g->consts[b].data[r] == 0.0f;
            if (zero) o->consts[1] = -1;
        } else if (o->kind == G_EMBED && !g->declared && !g->consts[o->consts[0]].vals && o->consts[1] >= 0) {
            /* RASP embeddings are one-hot rows: both tables compressed, or neither */
            int tok = compress(pc->arena, g, o->consts[0], memo), pos = compress(pc->arena, g, o->consts[1], memo);
            if (tok >= 0 && pos >= 0) {
                o->consts[0] = tok;
                o->consts[1] = pos;
            }
        }
    }
    if (!g->declared) fuse_residual_adds(pc->arena, g);
    return true;
}
