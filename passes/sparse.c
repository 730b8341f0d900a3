/* sparse.c: weight-specialised code for very sparse matrices (-O2). A linear op whose weight
 * matrix is mostly zeros (RASP-compiled models are) gets its non-zeros in compressed rows
 * (values, column indices, row starts), which the backends and the interpreter multiply without
 * touching the zeros. Cost rule: compressed when at most 40% of the weights are non-zero: the
 * multiplications drop by 2.5x or more, and values plus indices (2 * non-zeros + rows + 1) take
 * less memory than the dense matrix.
 * Preserves: every value exactly (the zeros contributed nothing; the summation order of the
 * remaining terms is row order). */
#include "passes.h"

bool pass_sparse(PassContext *pc, Graph *g)
{
    for (int i = 0; i < g->nops; i++) {
        GraphOp *o = &g->ops[i];
        if (o->kind != G_LINEAR || o->vals) continue;
        size_t dense = (size_t)o->rows * (size_t)o->cols, nnz = 0;
        for (size_t k = 0; k < dense; k++) nnz += o->w[k] != 0.0f;
        if (10 * nnz > 4 * dense || 2 * nnz + (size_t)o->rows + 1 >= dense) continue;
        int *rowptr = ARENA_ARRAY(pc->arena, int, o->rows + 1);
        int *colidx = ARENA_ARRAY(pc->arena, int, nnz ? nnz : 1);
        float *vals = ARENA_ARRAY(pc->arena, float, nnz ? nnz : 1);
        int at = 0;
        for (int r = 0; r < o->rows; r++) {
            rowptr[r] = at;
            for (int c = 0; c < o->cols; c++) {
                float w = o->w[(size_t)r * o->cols + c];
                if (w == 0.0f) continue;
                colidx[at] = c;
                vals[at++] = w;
            }
        }
        rowptr[o->rows] = at;
        o->rowptr = rowptr;
        o->colidx = colidx;
        o->vals = vals;
        o->nnz = at;
    }
    return true;
}
