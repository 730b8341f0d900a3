/* graph_decl.c: the graph of a declared model: embeddings, then per block a pre-norm, attention
 * over a KV cache (rotary or ALiBi positions, grouped K/V, windows, four score functions) or a
 * feed-forward network / mixture of experts, the residual add and an optional post-norm; the
 * final norm and the logits. The same graph serves prefill (n positions) and decode (one). */
#include "ir.h"

#define tensor graph_add_tensor
#define op graph_add_op
#define linear graph_add_linear

static int norm(Arena *a, Graph *g, int x, const Norm *n, const char *name)
{
    if (n->kind == NORM_NONE) return x;
    int t = tensor(a, g, g->model->dim, false, name);
    int k = op(a, g, G_NORM, t, x, -1, name);
    g->ops[k].norm = n;
    return t;
}

static int attention(Arena *a, Graph *g, int x, const ModelBlock *b, int bi)
{
    const Model *m = g->model;
    int d = m->dim, q = b->mha_heads * b->head_dim, kv = b->kv_heads * b->head_dim;
    int h = norm(a, g, x, &b->norm, arena_printf(a, "b%d.norm", bi));
    int tq = linear(a, g, h, b->wq, b->bq, q, d, arena_printf(a, "b%d.q", bi));
    int tk = linear(a, g, h, b->wk, b->bk, kv, d, arena_printf(a, "b%d.k", bi));
    int tv = linear(a, g, h, b->wv, b->bv, kv, d, arena_printf(a, "b%d.v", bi));
    if (b->pos == POS_ROPE) {
        int r = op(a, g, G_ROPE, tq, tq, -1, "rotary positions (queries)");
        g->ops[r].block = b;
        g->ops[r].heads = b->mha_heads;
        r = op(a, g, G_ROPE, tk, tk, -1, "rotary positions (keys)");
        g->ops[r].block = b;
        g->ops[r].heads = b->kv_heads;
    }
    int kc = tensor(a, g, kv, false, arena_printf(a, "b%d.k_cache", bi));
    int vc = tensor(a, g, kv, false, arena_printf(a, "b%d.v_cache", bi));
    g->tensors[kc].cache = g->tensors[vc].cache = true;
    int s = op(a, g, G_KV_STORE, kc, tk, tv, "append keys and values to the cache");
    g->ops[s].cache[0] = kc;
    g->ops[s].cache[1] = vc;
    /* unfused: scores [heads][n][n], their softmax, the weighted sum (fusion makes it one op) */
    int sc = tensor(a, g, b->mha_heads, true, arena_printf(a, "b%d.scores", bi));
    int k = op(a, g, G_MHA_SCORES, sc, tq, -1, "scores of every head against the key cache");
    g->ops[k].cache[0] = kc;
    g->ops[k].cache[1] = vc;
    g->ops[k].block = b;
    int pr = tensor(a, g, b->mha_heads, true, arena_printf(a, "b%d.probs", bi));
    k = op(a, g, G_MHA_SOFTMAX, pr, sc, -1, "the score function of each row");
    g->ops[k].block = b;
    int att = tensor(a, g, q, false, arena_printf(a, "b%d.attn", bi));
    k = op(a, g, G_MHA_MIX, att, pr, -1, "weighted sum of the value cache");
    g->ops[k].cache[0] = kc;
    g->ops[k].cache[1] = vc;
    g->ops[k].block = b;
    return linear(a, g, att, b->wo, b->bo, d, q, arena_printf(a, "b%d.attn_out", bi));
}

static int ffn(Arena *a, Graph *g, int x, const ModelBlock *b, int bi)
{
    const Model *m = g->model;
    int d = m->dim;
    int h = norm(a, g, x, &b->norm, arena_printf(a, "b%d.norm", bi));
    if (b->kind == BLOCK_MOE) {
        int t = tensor(a, g, d, false, arena_printf(a, "b%d.moe", bi));
        int k = op(a, g, G_MOE, t, h, -1, "mixture of experts");
        g->ops[k].block = b;
        return t;
    }
    const Ffn *f = &b->ffn;
    int up = linear(a, g, h, f->up, f->b_up, f->hidden, d, arena_printf(a, "b%d.up", bi));
    int act = tensor(a, g, f->hidden, false, arena_printf(a, "b%d.act", bi));
    int k;
    if (f->gate) {
        int gate = linear(a, g, h, f->gate, f->b_gate, f->hidden, d, arena_printf(a, "b%d.gate", bi));
        k = op(a, g, G_GLU, act, gate, up, "gated activation");
    } else {
        k = op(a, g, G_ACT, act, up, -1, "activation");
    }
    g->ops[k].act = f->act;
    return linear(a, g, act, f->down, f->b_down, d, f->hidden, arena_printf(a, "b%d.mlp_out", bi));
}

Graph *graph_from_declared(Arena *a, const Model *m)
{
    Graph *g = ARENA_NEW(a, Graph);
    g->model = m;
    int d = m->dim;
    int x = tensor(a, g, d, false, "x0");
    op(a, g, G_EMBED, x, -1, -1, "token and position embeddings");
    int pending = -1; /* a parallel attention's output, added with the next FFN's */
    for (int bi = 0; bi < m->nblocks; bi++) {
        const ModelBlock *b = &m->blocks[bi];
        int delta = b->kind == BLOCK_MHA ? attention(a, g, x, b, bi) : ffn(a, g, x, b, bi);
        if (b->kind == BLOCK_MHA && b->parallel) {
            pending = delta;
            continue;
        }
        if (pending >= 0) {
            int sum = tensor(a, g, d, false, arena_printf(a, "b%d.parallel", bi));
            op(a, g, G_ADD, sum, pending, delta, "parallel attention + MLP");
            delta = sum;
            pending = -1;
        }
        int nx = tensor(a, g, d, false, arena_printf(a, "x%d", bi + 1));
        op(a, g, G_ADD, nx, x, delta, "residual");
        x = norm(a, g, nx, &b->post_norm, arena_printf(a, "b%d.post_norm", bi));
    }
    int first_head = g->nops;
    x = norm(a, g, x, &m->final_norm, "final_norm");
    g->output = linear(a, g, x, m->unembed, NULL, m->vocab_size, d, "logits");
    for (int i = first_head; i < g->nops; i++) g->ops[i].head = true;
    graph_plan(g);
    return g;
}
