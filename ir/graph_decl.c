/* graph_decl.c: the graph of a declared model: embeddings, then per block a pre-norm, attention
 * over a KV cache (rotary or ALiBi positions, grouped K/V, windows, four score functions) or a
 * feed-forward network / mixture of experts, the residual add and an optional post-norm; the
 * final norm and the logits. The same graph serves prefill (n positions) and decode (one).
 * Tensors are named after their layer (layers.0.attention.q) and constants as the weights scheme
 * names them (layers.0.attention.q.weight, docs/weights.md). */
#include "ir.h"

#define tensor graph_add_tensor
#define op graph_add_op

static const char *name(Arena *a, const char *layer, const char *what) { return arena_printf(a, "%s.%s", layer, what); }

static int linear(Arena *a, Graph *g, int in, const float *w, const float *b, int rows, int cols, const char *t)
{
    return graph_add_linear_named(a, g, in, w, b, rows, cols, t, name(a, t, "weight"), name(a, t, "bias"));
}

static GraphAttention attention_of(const ModelBlock *b)
{
    GraphAttention at = { b->mha_heads, b->kv_heads, b->head_dim, b->window, b->score, b->causal,
                          b->pos == POS_ALIBI, b->scale };
    return at;
}

static int norm(Arena *a, Graph *g, int x, const Norm *n, const char *t)
{
    if (n->kind == NORM_NONE) return x;
    int out = tensor(a, g, g->dim, false, t);
    int k = op(a, g, G_NORM, out, x, -1, NULL);
    GraphOp *o = &g->ops[k];
    o->norm.kind = n->kind;
    o->norm.eps = n->eps;
    o->norm.alpha = n->alpha;
    o->consts[0] = graph_add_const(a, g, n->applied ? n->applied : n->weight, g->dim, 0, name(a, t, "weight"));
    o->consts[1] = graph_add_const(a, g, n->bias, g->dim, 0, name(a, t, "bias"));
    return out;
}

static int attention(Arena *a, Graph *g, int x, const ModelBlock *b, const char *L)
{
    int d = g->dim, q = b->mha_heads * b->head_dim, kv = b->kv_heads * b->head_dim;
    int h = norm(a, g, x, &b->norm, name(a, L, "norm"));
    int tq = linear(a, g, h, b->wq, b->bq, q, d, name(a, L, "q"));
    int tk = linear(a, g, h, b->wk, b->bk, kv, d, name(a, L, "k"));
    int tv = linear(a, g, h, b->wv, b->bv, kv, d, name(a, L, "v"));
    if (b->q_norm.kind != NORM_NONE) {
        /* per-head norms of q and k, before the rotary positions (Qwen 3) */
        const Norm *ns[2] = { &b->q_norm, &b->k_norm };
        int ts[2] = { tq, tk }, hs[2] = { b->mha_heads, b->kv_heads };
        for (int k = 0; k < 2; k++) {
            int r = op(a, g, G_HEAD_NORM, ts[k], ts[k], -1, k ? "per-head norm of the keys" : "per-head norm of the queries");
            GraphOp *o = &g->ops[r];
            o->norm.kind = ns[k]->kind;
            o->norm.eps = ns[k]->eps;
            o->heads.heads = hs[k];
            o->heads.head_dim = b->head_dim;
            o->consts[0] = graph_add_const(a, g, ns[k]->applied ? ns[k]->applied : ns[k]->weight, b->head_dim, 0,
                                           name(a, L, k ? "k_norm.weight" : "q_norm.weight"));
        }
    }
    if (b->pos == POS_ROPE) {
        int r = op(a, g, G_ROPE, tq, tq, -1, "rotary positions (queries)");
        GraphRope rq = { b->mha_heads, b->head_dim, b->rope_dims, b->rope_base };
        g->ops[r].rope = rq;
        g->ops[r].consts[0] = graph_add_const(a, g, b->rope_freq, b->rope_dims / 2, 0, name(a, L, "rope_freq"));
        r = op(a, g, G_ROPE, tk, tk, -1, "rotary positions (keys)");
        GraphRope rk = { b->kv_heads, b->head_dim, b->rope_dims, b->rope_base };
        g->ops[r].rope = rk;
        g->ops[r].consts[0] = graph_add_const(a, g, b->rope_freq, b->rope_dims / 2, 0, name(a, L, "rope_freq"));
    }
    int kc = tensor(a, g, kv, false, name(a, L, "k_cache"));
    int vc = tensor(a, g, kv, false, name(a, L, "v_cache"));
    g->tensors[kc].cache = g->tensors[vc].cache = true;
    int s = op(a, g, G_KV_STORE, kc, tk, tv, "append keys and values to the cache");
    g->ops[s].cache[0] = kc;
    g->ops[s].cache[1] = vc;
    /* unfused: scores [heads][n][n], their softmax, the weighted sum (fusion makes it one op) */
    int sc = tensor(a, g, b->mha_heads, true, name(a, L, "scores"));
    int k = op(a, g, G_MHA_SCORES, sc, tq, -1, "scores of every head against the key cache");
    g->ops[k].cache[0] = kc;
    g->ops[k].attn = attention_of(b);
    int pr = tensor(a, g, b->mha_heads, true, name(a, L, "probs"));
    k = op(a, g, G_MHA_SOFTMAX, pr, sc, -1, "the score function of each row");
    g->ops[k].attn = attention_of(b);
    int att = tensor(a, g, q, false, name(a, L, "mix"));
    k = op(a, g, G_MHA_MIX, att, pr, -1, "weighted sum of the value cache");
    g->ops[k].cache[0] = vc;
    g->ops[k].attn = attention_of(b);
    return linear(a, g, att, b->wo, b->bo, d, q, name(a, L, "o"));
}

static int ffn(Arena *a, Graph *g, int x, const ModelBlock *b, const char *L)
{
    int d = g->dim;
    int h = norm(a, g, x, &b->norm, name(a, L, "norm"));
    if (b->kind == BLOCK_MOE) {
        int t = tensor(a, g, d, false, name(a, L, "out"));
        int k = op(a, g, G_MOE, t, h, -1, "mixture of experts");
        GraphOp *o = &g->ops[k];
        GraphMoe moe = { b->experts, b->top, b->ffn.hidden, b->ffn.act };
        o->moe = moe;
        o->nconsts = 1 + 6 * b->experts;
        o->consts = ARENA_ARRAY(a, int, o->nconsts);
        o->consts[0] = graph_add_const(a, g, b->router, b->experts, d, name(a, L, "router.weight"));
        for (int e = 0; e < b->experts; e++) {
            const Ffn *f = &b->expert[e];
            int hd = f->hidden;
            const char *E = arena_printf(a, "%s.experts.%d", L, e);
            int *c = o->consts + 1 + 6 * e;
            c[0] = graph_add_const(a, g, f->up, hd, d, name(a, E, "up.weight"));
            c[1] = graph_add_const(a, g, f->b_up, hd, 0, name(a, E, "up.bias"));
            c[2] = graph_add_const(a, g, f->gate, hd, d, name(a, E, "gate.weight"));
            c[3] = graph_add_const(a, g, f->b_gate, hd, 0, name(a, E, "gate.bias"));
            c[4] = graph_add_const(a, g, f->down, d, hd, name(a, E, "down.weight"));
            c[5] = graph_add_const(a, g, f->b_down, d, 0, name(a, E, "down.bias"));
        }
        return t;
    }
    const Ffn *f = &b->ffn;
    int up = linear(a, g, h, f->up, f->b_up, f->hidden, d, name(a, L, "up"));
    int act = tensor(a, g, f->hidden, false, name(a, L, "act"));
    int k;
    if (f->gate) {
        int gate = linear(a, g, h, f->gate, f->b_gate, f->hidden, d, name(a, L, "gate"));
        k = op(a, g, G_GLU, act, gate, up, "gated activation");
    } else {
        k = op(a, g, G_ACT, act, up, -1, "activation");
    }
    g->ops[k].act = f->act;
    return linear(a, g, act, f->down, f->b_down, d, f->hidden, name(a, L, "down"));
}

Graph *graph_from_declared(Arena *a, const Model *m)
{
    Graph *g = graph_new(a, m);
    int d = m->dim;
    int x = tensor(a, g, d, false, "embed");
    int e = op(a, g, G_EMBED, x, -1, -1, "token and position embeddings");
    g->ops[e].scale = m->embed_scale;
    g->ops[e].consts[0] = graph_add_const(a, g, m->tok_emb, m->vocab_size, d, "embed.token.weight");
    if (m->pos == POS_LEARNED || m->pos == POS_SINUSOIDAL)
        g->ops[e].consts[1] = graph_add_const(a, g, m->pos_emb, m->positions, d,
                                              m->pos == POS_LEARNED ? "embed.position.weight" : "embed.sinusoidal");
    int pending = -1; /* a parallel attention's output, added with the next FFN's */
    for (int bi = 0; bi < m->nblocks; bi++) {
        const ModelBlock *b = &m->blocks[bi];
        const char *L = g->layer_names[bi];
        int first = g->nops;
        int delta = b->kind == BLOCK_MHA ? attention(a, g, x, b, L) : ffn(a, g, x, b, L);
        if (b->kind == BLOCK_MHA && b->parallel) {
            pending = delta;
            for (int i = first; i < g->nops; i++) g->ops[i].layer = bi;
            continue;
        }
        if (pending >= 0) {
            int sum = tensor(a, g, d, false, name(a, L, "parallel"));
            op(a, g, G_ADD, sum, pending, delta, "parallel attention + MLP");
            delta = sum;
            pending = -1;
        }
        int nx = tensor(a, g, d, false, name(a, L, "residual"));
        op(a, g, G_ADD, nx, x, delta, "residual");
        x = norm(a, g, nx, &b->post_norm, name(a, L, "post_norm"));
        for (int i = first; i < g->nops; i++) g->ops[i].layer = bi;
    }
    int first_head = g->nops;
    x = norm(a, g, x, &m->final_norm, "norm");
    g->output = graph_add_linear_named(a, g, x, m->unembed, NULL, m->vocab_size, d, "logits", "unembed.weight", NULL);
    for (int i = first_head; i < g->nops; i++) g->ops[i].head = true;
    graph_plan(g);
    return g;
}
