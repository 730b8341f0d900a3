/* fuse_attention.c: attention fusion (-O2). The unfused attention of a RASP head is three ops
 * (scores [n][n], softmax [n][n], weighted sum); they become one op whose kernel runs one query row
 * at a time with an online softmax (a running maximum and sum), so the [n][n] tensors disappear
 * from the arena. Declared models' attention is fused from the start (tfmcrt_attend keeps one row
 * of scores). Preserves: the values up to float rounding (the softmax is computed in another
 * order; RASP outputs decode identically). */
#include "passes.h"

bool pass_fuse_attention(PassContext *pc, Graph *g)
{
    (void)pc;
    int k = 0;
    for (int i = 0; i < g->nops; i++) {
        GraphOp *o = &g->ops[i];
        if (o->kind == G_SCORES && i + 2 < g->nops && g->ops[i + 1].kind == G_SOFTMAX && g->ops[i + 2].kind == G_MIX &&
            g->ops[i + 1].in[0] == o->out && g->ops[i + 2].in[0] == g->ops[i + 1].out) {
            GraphOp f = *o;
            GraphOp *mix = &g->ops[i + 2];
            f.kind = G_FUSED_ATTENTION;
            f.out = mix->out;
            f.in[0] = o->in[0]; /* q */
            f.in[1] = o->in[1]; /* k */
            f.in[2] = mix->in[1]; /* v */
            f.rows = o->rows;     /* dk */
            f.cols = mix->rows;   /* dv */
            g->ops[k++] = f;
            i += 2;
            continue;
        }
        g->ops[k++] = *o;
    }
    g->nops = k;
    /* the [n][n] tensors are now unused; memory planning (or the default plan) skips nothing, so
     * give them no room: zero columns and not square */
    for (int t = 0; t < g->ntensors; t++) {
        if (!graph_tensor_used(g, t)) {
            g->tensors[t].square = false;
            g->tensors[t].cols = 0;
        }
    }
    graph_plan(g);
    return true;
}
