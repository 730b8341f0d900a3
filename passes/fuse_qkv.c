/* fuse_qkv.c: QKV fusion (-O2, declared models; RASP heads are compressed by sparse instead). The query, key and value projections of an
 * attention block read the same normalised input: they become one matrix multiplication by the
 * stacked weights [Wq; Wk; Wv] (and biases), whose result is cut into q, k and v, so the input is
 * read once and one larger, more efficient multiplication replaces three. The blocks of
 * `block shared x N` hold the same three matrices, so they get the same stacked one: a shared
 * block's weights are stored (and emitted) once at -O2 as at -O1. Preserves: every value exactly
 * (each output is the same dot product). */
#include <string.h>

#include "passes.h"

/* Stacked matrices already made, by the three they were made from. */
typedef struct Stacked {
    const float *from[3], *bias_from[3];
    float *w, *b;
} Stacked;

bool pass_fuse_qkv(PassContext *pc, Graph *g)
{
    if (!g->model->declared) return true; /* RASP heads are compressed instead (sparse) */
    Arena *a = pc->arena;
    GraphOp *ops = ARENA_ARRAY(a, GraphOp, g->nops + 2 * g->nops / 3 + 4);
    Stacked *made = ARENA_ARRAY(a, Stacked, g->nops / 3 + 1);
    int nmade = 0;
    int k = 0;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *q = &g->ops[i];
        if (i + 2 < g->nops && q->kind == G_LINEAR && !q->vals && q->in[1] < 0) {
            const GraphOp *kk = &g->ops[i + 1], *v = &g->ops[i + 2];
            bool same = kk->kind == G_LINEAR && v->kind == G_LINEAR && !kk->vals && !v->vals && kk->in[1] < 0 &&
                        v->in[1] < 0 && kk->in[0] == q->in[0] && v->in[0] == q->in[0] && kk->cols == q->cols &&
                        v->cols == q->cols && (!q->b) == (!kk->b) && (!q->b) == (!v->b);
            /* only the projections of one attention block: the next ops use them */
            const char *name = g->tensors[q->out].name;
            size_t len = strlen(name);
            same = same && len > 2 && !strcmp(name + len - 2, ".q");
            if (same) {
                int rows = q->rows + kk->rows + v->rows, cols = q->cols;
                const GraphOp *part[3] = { q, kk, v };
                Stacked *st = NULL;
                for (int m = 0; m < nmade && !st; m++) {
                    bool eq = true;
                    for (int p = 0; p < 3; p++)
                        eq = eq && made[m].from[p] == part[p]->w && made[m].bias_from[p] == part[p]->b;
                    if (eq) st = &made[m];
                }
                if (!st) {
                    st = &made[nmade++];
                    st->w = ARENA_ARRAY(a, float, (size_t)rows * cols);
                    st->b = q->b ? ARENA_ARRAY(a, float, rows) : NULL;
                    int at = 0;
                    for (int p = 0; p < 3; p++) {
                        st->from[p] = part[p]->w;
                        st->bias_from[p] = part[p]->b;
                        memcpy(st->w + (size_t)at * cols, part[p]->w, sizeof(float) * (size_t)part[p]->rows * cols);
                        if (st->b) memcpy(st->b + at, part[p]->b, sizeof(float) * (size_t)part[p]->rows);
                        at += part[p]->rows;
                    }
                }
                float *w = st->w, *b = st->b;
                int at = 0;
                int t = graph_add_tensor(a, g, rows, false, arena_printf(a, "%.*sqkv", (int)(len - 1), name));
                GraphOp f = *q;
                f.out = t;
                f.w = w;
                f.b = b;
                f.rows = rows;
                f.comment = g->tensors[t].name;
                ops[k++] = f;
                for (int p = 0; p < 3; p++) {
                    GraphOp s = { 0 };
                    s.kind = G_SLICE;
                    s.out = part[p]->out;
                    s.in[0] = t;
                    s.in[1] = s.in[2] = -1;
                    s.cache[0] = s.cache[1] = -1;
                    s.rows = at; /* the first column */
                    s.comment = "slice";
                    ops[k++] = s;
                    at += part[p]->rows;
                }
                i += 2;
                continue;
            }
        }
        ops[k++] = *q;
    }
    g->ops = ops;
    g->nops = k;
    g->cap_ops = k;
    graph_plan(g);
    return true;
}
