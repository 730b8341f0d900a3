/* fuse_attention.c: attention fusion (-O1). Unfused attention is three ops: scores [n][n] (per
 * head), the score function, the weighted sum. For a RASP head they become one op whose kernel
 * runs one query row at a time with an online softmax (a running maximum and sum), and skips the
 * keys after the query when the head's selector provably never selects them (frac_prevs'
 * select(indices, indices, <=), shift_right's k == q - 1: half the scores); for a declared
 * model one tfmcrt_attend per block, a row of scores at a time over the KV cache, with every head,
 * mask, window, ALiBi and score function. Either way the [n][n] tensors leave the arena, so its
 * size no longer grows with n^2. Preserves: values up to float rounding (RASP outputs decode
 * identically; declared logits within 1e-5). */
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
            f.dk = o->dk;
            f.dv = mix->dv;
            /* a selector that never selects a later key: those keys score at least S/2 below BOS,
             * which the kernel visits first, so it already skipped them (30 below the running
             * maximum): the causal kernel gives the same bits without their dot products */
            f.causal = o->causal || o->never_later;
            g->ops[k++] = f;
            i += 2;
            continue;
        }
        if (o->kind == G_MHA_SCORES && i + 2 < g->nops && g->ops[i + 1].kind == G_MHA_SOFTMAX &&
            g->ops[i + 2].kind == G_MHA_MIX && g->ops[i + 1].in[0] == o->out && g->ops[i + 2].in[0] == g->ops[i + 1].out) {
            /* declared models: one tfmcrt_attend, a row of scores at a time over the KV cache */
            GraphOp f = g->ops[i + 2];
            f.kind = G_ATTEND;
            f.in[0] = o->in[0];
            f.cache[0] = o->cache[0];       /* the key cache (the scores') */
            f.cache[1] = g->ops[i + 2].cache[0]; /* the value cache (the mix's) */
            f.comment = "attention over the cache (fused)";
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
