/* graph.c: the graph IR: lowering from the model IR, a printer, and the interpreter (on the
 * runtime's kernels, the same ones generated code calls). */
#include <math.h>
#include <string.h>

#include "ir.h"
#include "tfmcrt.h"

int graph_add_tensor(Arena *a, Graph *g, int cols, bool square, const char *name)
{
    GraphTensor t = { cols, square, false, name, 0 };
    VEC_PUSH(a, g->tensors, g->ntensors, g->cap_tensors, t);
    return g->ntensors - 1;
}

int graph_add_op(Arena *a, Graph *g, GraphOpKind kind, int out, int in0, int in1, const char *comment)
{
    GraphOp o = { 0 };
    o.kind = kind;
    o.out = out;
    o.in[0] = in0;
    o.in[1] = in1;
    o.in[2] = -1;
    o.cache[0] = o.cache[1] = -1;
    o.comment = comment;
    VEC_PUSH(a, g->ops, g->nops, g->cap_ops, o);
    return g->nops - 1;
}

int graph_add_linear(Arena *a, Graph *g, int in, const float *w, const float *b, int rows, int cols, const char *name)
{
    int t = graph_add_tensor(a, g, rows, false, name);
    int k = graph_add_op(a, g, G_LINEAR, t, in, -1, name);
    g->ops[k].w = w;
    g->ops[k].b = b;
    g->ops[k].rows = rows;
    g->ops[k].cols = cols;
    return t;
}

/* The memory plan: every tensor its own region, sized for the largest n; then the kernels'
 * scratch. (A liveness-based plan belongs to the passes.) */
size_t graph_scratch_floats(const Graph *g)
{
    const Model *m = g->model;
    size_t n = (size_t)m->positions;
    size_t scratch = n + (size_t)m->dim;
    for (int i = 0; i < m->nblocks; i++) {
        /* tfmcrt_attend_ex: a row of scores per head */
        if (m->blocks[i].kind == BLOCK_MHA) {
            TfmcrtAttention at = { m->blocks[i].mha_heads, 1, 1, 0, 0, 0, 0, 0.0f };
            size_t need = tfmcrt_attend_scratch_floats(&at, n);
            if (need > scratch) scratch = need;
        }
        if (m->blocks[i].kind == BLOCK_MOE) {
            size_t need = tfmcrt_moe_scratch_floats((size_t)m->dim, m->blocks[i].experts,
                                                    (size_t)m->blocks[i].ffn.hidden, n);
            if (need > scratch) scratch = need;
        }
    }
    return scratch;
}

size_t graph_tensor_floats(const Graph *g, int t)
{
    size_t n = (size_t)g->model->positions;
    const GraphTensor *x = &g->tensors[t];
    return x->square ? n * n * (size_t)(x->cols > 1 ? x->cols : 1) : n * (size_t)x->cols;
}

void graph_plan(Graph *g)
{
    size_t at = 0;
    for (int i = 0; i < g->ntensors; i++) {
        g->tensors[i].offset = at;
        at += graph_tensor_floats(g, i);
    }
    g->scratch = at;
    g->arena_floats = at + graph_scratch_floats(g);
    g->planned = false;
}

bool graph_tensor_used(const Graph *g, int t)
{
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        if (o->out == t || o->in[0] == t || o->in[1] == t || o->in[2] == t || o->cache[0] == t || o->cache[1] == t)
            return true;
    }
    return false;
}

double graph_flops(const Graph *g, int n)
{
    double f = 0;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        const GraphTensor *t = &g->tensors[o->out];
        /* keys per query: all n, or (n + 1) / 2 on average under a causal mask */
        double keys = o->causal || (o->block && o->block->causal) ? (n + 1) / 2.0 : n;
        switch (o->kind) {
        case G_LINEAR: f += 2.0 * (o->vals ? o->nnz : (double)o->rows * o->cols); break; /* + acc: adds the non-zero rows only */
        case G_SCORES: f += 2.0 * o->rows * keys; break;
        case G_MIX: f += 2.0 * o->rows * keys; break;
        case G_FUSED_ATTENTION: f += 2.0 * (o->rows + o->cols) * keys; break;
        case G_SOFTMAX: f += 3.0 * keys; break;
        case G_ATTEND: f += 4.0 * o->block->mha_heads * o->block->head_dim * keys; break;
        case G_MHA_SCORES: case G_MHA_MIX: f += 2.0 * o->block->mha_heads * o->block->head_dim * keys; break;
        case G_MHA_SOFTMAX: f += 3.0 * o->block->mha_heads * keys; break;
        case G_MOE:
            f += 2.0 * o->block->experts * g->model->dim +
                 o->block->top * 2.0 * (o->block->ffn.gate ? 3 : 2) * o->block->ffn.hidden * g->model->dim;
            break;
        case G_ADD: case G_ACT: case G_GLU: case G_NORM: case G_ROPE: f += t->cols; break;
        case G_EMBED: case G_KV_STORE: case G_SLICE: break;
        }
    }
    return f;
}

#define tensor graph_add_tensor
#define op graph_add_op
#define linear graph_add_linear

Graph *graph_from_model(Arena *a, const Model *m)
{
    Graph *g = ARENA_NEW(a, Graph);
    g->model = m;
    int d = m->dim;
    int x = tensor(a, g, d, false, "x0");
    op(a, g, G_EMBED, x, -1, -1, "token and position embeddings");
    for (int bi = 0; bi < m->nblocks; bi++) {
        const ModelBlock *b = &m->blocks[bi];
        int delta = -1;
        if (b->kind == BLOCK_MLP) {
            int h = linear(a, g, x, b->w1, b->b1, b->hidden, d, arena_printf(a, "b%d.hidden", bi));
            int act = tensor(a, g, b->hidden, false, arena_printf(a, "b%d.act", bi));
            int k = op(a, g, G_ACT, act, h, -1, "activation");
            g->ops[k].act = b->act;
            delta = linear(a, g, act, b->w2, b->b2, d, b->hidden, arena_printf(a, "b%d.mlp_out", bi));
        } else {
            for (int hi = 0; hi < b->nheads; hi++) {
                const ModelHead *h = &b->heads[hi];
                const char *p = arena_printf(a, "b%d.h%d", bi, hi);
                int q = linear(a, g, x, h->wq, NULL, h->dk, d, arena_printf(a, "%s.q", p));
                int k = linear(a, g, x, h->wk, NULL, h->dk, d, arena_printf(a, "%s.k", p));
                int v = linear(a, g, x, h->wv, NULL, h->dv, d, arena_printf(a, "%s.v", p));
                int s = tensor(a, g, 0, true, arena_printf(a, "%s.scores", p));
                int so = op(a, g, G_SCORES, s, q, k, h->label);
                g->ops[so].scale = b->scale;
                g->ops[so].causal = b->causal;
                g->ops[so].never_later = h->never_later;
                g->ops[so].rows = h->dk;
                int pr = tensor(a, g, 0, true, arena_printf(a, "%s.probs", p));
                int sm = op(a, g, G_SOFTMAX, pr, s, -1, "softmax");
                g->ops[sm].causal = b->causal;
                int mix = tensor(a, g, h->dv, false, arena_printf(a, "%s.mix", p));
                int mo = op(a, g, G_MIX, mix, pr, v, "weighted sum of values");
                g->ops[mo].rows = h->dv;
                int o = linear(a, g, mix, h->wo, NULL, d, h->dv, arena_printf(a, "%s.out", p));
                if (delta < 0) {
                    delta = o;
                } else {
                    int sum = tensor(a, g, d, false, arena_printf(a, "%s.sum", p));
                    op(a, g, G_ADD, sum, delta, o, "sum of heads");
                    delta = sum;
                }
            }
        }
        int nx = tensor(a, g, d, false, arena_printf(a, "x%d", bi + 1));
        op(a, g, G_ADD, nx, x, delta, "residual");
        x = nx;
    }
    g->output = x;
    graph_plan(g);
    return g;
}

const char *graph_op_name(GraphOpKind k)
{
    switch (k) {
    case G_EMBED: return "embed";
    case G_LINEAR: return "linear";
    case G_ACT: return "act";
    case G_ADD: return "add";
    case G_SCORES: return "scores";
    case G_SOFTMAX: return "softmax";
    case G_MIX: return "mix";
    case G_NORM: return "norm";
    case G_GLU: return "glu";
    case G_ROPE: return "rope";
    case G_KV_STORE: return "kv_store";
    case G_ATTEND: return "attend";
    case G_MOE: return "moe";
    case G_FUSED_ATTENTION: return "fused_attention";
    case G_MHA_SCORES: return "mha_scores";
    case G_MHA_SOFTMAX: return "mha_softmax";
    case G_MHA_MIX: return "mha_mix";
    case G_SLICE: return "slice";
    }
    return "?";
}

void graph_print(const Graph *g, FILE *out)
{
    fprintf(out, "graph %s: %d ops, %d tensors, arena %zu floats (n <= %d%s)\n", g->model->name, g->nops,
            g->ntensors, g->arena_floats, g->model->positions, g->planned ? ", planned by liveness" : "");
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        const GraphTensor *t = &g->tensors[o->out];
        if (t->square && t->cols > 1) fprintf(out, "  %%%-14s [%d][n][n] = %s", t->name, t->cols, graph_op_name(o->kind));
        else if (t->square) fprintf(out, "  %%%-14s [n][n] = %s", t->name, graph_op_name(o->kind));
        else if (t->cache) fprintf(out, "  %%%-14s [max_len][%d] = %s", t->name, t->cols, graph_op_name(o->kind));
        else fprintf(out, "  %%%-14s [n][%d] = %s", t->name, t->cols, graph_op_name(o->kind));
        for (int k = 0; k < 3; k++)
            if (o->in[k] >= 0) fprintf(out, " %%%s", g->tensors[o->in[k]].name);
        if (o->kind == G_LINEAR) fprintf(out, " W[%d][%d]%s", o->rows, o->cols, o->b ? " +b" : "");
        if (o->kind == G_LINEAR && o->vals) fprintf(out, " sparse %d non-zeros", o->nnz);
        if (o->kind == G_LINEAR && o->in[1] >= 0) fprintf(out, " (added to %%%s)", g->tensors[o->in[1]].name);
        if (o->kind == G_SLICE) fprintf(out, " columns %d..%d", o->rows, o->rows + t->cols - 1);
        if (o->kind == G_SCORES || o->kind == G_FUSED_ATTENTION) fprintf(out, " scale %g%s", o->scale, o->causal ? " causal" : "");
        if (o->kind == G_SCORES && o->never_later && !o->causal) fprintf(out, " never-later");
        if (o->kind == G_SOFTMAX && o->causal) fprintf(out, " causal");
        if (o->cache[0] >= 0) fprintf(out, " cache %%%s %%%s", g->tensors[o->cache[0]].name, g->tensors[o->cache[1]].name);
        if (o->comment && o->kind != G_LINEAR) fprintf(out, "    # %s", o->comment);
        fputc('\n', out);
    }
}

static int rt_act(Activation a)
{
    switch (a) {
    case ACT_RELU: return TFMCRT_RELU;
    case ACT_GELU: return TFMCRT_GELU;
    case ACT_GELU_TANH: return TFMCRT_GELU_TANH;
    case ACT_SILU: return TFMCRT_SILU;
    case ACT_SWIGLU: return TFMCRT_SWIGLU;
    case ACT_GEGLU: return TFMCRT_GEGLU;
    }
    return TFMCRT_RELU;
}

static void rt_attention(const ModelBlock *b, TfmcrtAttention *a)
{
    a->heads = b->mha_heads;
    a->kv_heads = b->kv_heads;
    a->head_dim = b->head_dim;
    a->score = b->score == SCORE_SOFTMAX ? TFMCRT_SOFTMAX : b->score == SCORE_SOFTMAX1 ? TFMCRT_SOFTMAX1
             : b->score == SCORE_LINEAR ? TFMCRT_LINEAR : TFMCRT_HARD;
    a->causal = b->causal;
    a->window = b->window;
    a->alibi = b->pos == POS_ALIBI;
    a->scale = b->scale;
}

void graph_run(const Graph *g, const int *ids, int n, int pos0, float *arena, int head_rows)
{
    graph_run_exec(g, ids, n, pos0, arena, head_rows, NULL);
}

void graph_run_exec(const Graph *g, const int *ids, int n, int pos0, float *arena, int head_rows,
                    const TfmcrtExec *exec)
{
    const Model *m = g->model;
    float *scratch = arena + g->scratch;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        const GraphTensor *t = &g->tensors[o->out];
        /* the head (final norm, logits) runs on the last head_rows positions only */
        size_t un = (size_t)n, skip = 0;
        if (o->head && head_rows < n) {
            if (head_rows <= 0) continue;
            un = (size_t)head_rows;
            skip = (size_t)(n - head_rows);
        }
        float *out = arena + t->offset + skip * (size_t)t->cols;
        const float *a = o->in[0] >= 0 ? arena + g->tensors[o->in[0]].offset + skip * (size_t)g->tensors[o->in[0]].cols : NULL;
        const float *b = o->in[1] >= 0 ? arena + g->tensors[o->in[1]].offset + skip * (size_t)g->tensors[o->in[1]].cols : NULL;
        size_t count = un * (size_t)t->cols;
        switch (o->kind) {
        case G_EMBED:
            if (o->vals) { /* compressed tables: 0 + token row + position row, the same sums */
                for (int p = 0; p < n; p++) {
                    float *row = out + (size_t)p * m->dim;
                    int id = ids[p], at = pos0 + p;
                    memset(row, 0, sizeof(float) * (size_t)m->dim);
                    for (int k = o->rowptr[id]; k < o->rowptr[id + 1]; k++) row[o->colidx[k]] += o->vals[k];
                    for (int k = o->pos_rowptr[at]; k < o->pos_rowptr[at + 1]; k++) row[o->pos_colidx[k]] += o->pos_vals[k];
                }
                break;
            }
            for (int p = 0; p < n; p++) {
                float *row = out + (size_t)p * m->dim;
                const float *tok = m->tok_emb + (size_t)ids[p] * m->dim;
                if (m->pos_emb) tfmcrt_add(row, tok, m->pos_emb + (size_t)(pos0 + p) * m->dim, (size_t)m->dim);
                else memcpy(row, tok, sizeof(float) * (size_t)m->dim); /* rotary, ALiBi or no positions */
            }
            break;
        case G_LINEAR:
            if (o->vals && b)
                tfmcrt_linear_csr_acc_ex(exec, out, b, a, un, o->rowptr, o->colidx, o->vals, o->b, (size_t)o->rows,
                                         (size_t)o->cols);
            else if (o->vals)
                tfmcrt_linear_csr_ex(exec, out, a, un, o->rowptr, o->colidx, o->vals, o->b, (size_t)o->rows,
                                     (size_t)o->cols);
            else tfmcrt_linear_ex(exec, out, a, un, o->w, o->b, (size_t)o->rows, (size_t)o->cols);
            break;
        case G_FUSED_ATTENTION:
            tfmcrt_attention(out, a, b, arena + g->tensors[o->in[2]].offset, un, (size_t)o->rows, (size_t)o->cols,
                             o->scale, o->causal);
            break;
        case G_ACT:
            if (out != a) memcpy(out, a, sizeof(float) * count);
            tfmcrt_act_ex(exec, out, count, rt_act(o->act));
            break;
        case G_ADD: tfmcrt_add(out, a, b, count); break;
        case G_SCORES: tfmcrt_scores(out, a, b, un, (size_t)o->rows, o->scale, o->causal); break;
        case G_SOFTMAX:
            if (out != a) memcpy(out, a, sizeof(float) * un * un);
            tfmcrt_softmax_rows(out, un, o->causal);
            break;
        case G_MIX: tfmcrt_mix(out, a, b, un, (size_t)o->rows); break;
        case G_NORM:
            tfmcrt_norm_ex(exec, out, a, un, (size_t)t->cols, (int)o->norm->kind, o->norm->eps, o->norm->alpha,
                           o->norm->weight, o->norm->bias);
            break;
        case G_GLU: tfmcrt_glu_ex(exec, out, a, b, count, rt_act(o->act)); break;
        case G_ROPE:
            tfmcrt_rope_ex(exec, out, un, (size_t)o->heads, (size_t)o->block->head_dim, (size_t)pos0,
                           o->block->rope_base);
            break;
        case G_KV_STORE:
            tfmcrt_kv_store(arena + g->tensors[o->cache[0]].offset, arena + g->tensors[o->cache[1]].offset, a, b, un,
                            (size_t)pos0, (size_t)g->tensors[o->cache[0]].cols);
            break;
        case G_SLICE:
            tfmcrt_slice(out, a, un, (size_t)g->tensors[o->in[0]].cols, (size_t)o->rows, (size_t)t->cols);
            break;
        case G_MHA_SCORES: case G_MHA_SOFTMAX: case G_MHA_MIX: {
            TfmcrtAttention at;
            rt_attention(o->block, &at);
            if (o->kind == G_MHA_SCORES)
                tfmcrt_mha_scores_ex(exec, out, a, arena + g->tensors[o->cache[0]].offset, un, (size_t)pos0,
                                     (size_t)m->positions, &at);
            else if (o->kind == G_MHA_SOFTMAX)
                tfmcrt_mha_softmax_ex(exec, out, a, un, (size_t)pos0, (size_t)m->positions, &at);
            else
                tfmcrt_mha_mix_ex(exec, out, a, arena + g->tensors[o->cache[1]].offset, un, (size_t)pos0,
                                  (size_t)m->positions, &at);
            break;
        }
        case G_ATTEND: {
            TfmcrtAttention at;
            rt_attention(o->block, &at);
            tfmcrt_attend_ex(exec, out, a, arena + g->tensors[o->cache[0]].offset,
                             arena + g->tensors[o->cache[1]].offset, un, (size_t)pos0, &at, scratch);
            break;
        }
        case G_MOE: {
            const ModelBlock *bl = o->block;
            TfmcrtFfn ex[256];
            for (int e = 0; e < bl->experts && e < 256; e++) {
                const Ffn *f = &bl->expert[e];
                TfmcrtFfn x = { f->up, f->b_up, f->gate, f->b_gate, f->down, f->b_down };
                ex[e] = x;
            }
            tfmcrt_moe_ex(exec, out, a, un, (size_t)m->dim, bl->router, ex, bl->experts, bl->top,
                          (size_t)bl->ffn.hidden, rt_act(bl->ffn.act), scratch);
            break;
        }
        }
    }
}

int model_canonical_output(const Model *m, int k)
{
    int lo = k, hi = k;
    while (lo > 0 && fabs(value_number(m->out_values[lo]) - value_number(m->out_values[lo - 1])) <=
                         1e-9 * fmax(1.0, fabs(value_number(m->out_values[lo]))))
        lo--;
    while (hi + 1 < m->nout && fabs(value_number(m->out_values[hi + 1]) - value_number(m->out_values[hi])) <=
                                   1e-9 * fmax(1.0, fabs(value_number(m->out_values[hi]))))
        hi++;
    int best = lo;
    for (int j = lo + 1; j <= hi; j++)
        if (fabs(value_number(m->out_values[j])) < fabs(value_number(m->out_values[best]))) best = j;
    return best;
}

Value model_decode(const Model *m, const float *row)
{
    if (m->out_kind == OUT_NUMERICAL) {
        /* the output SOp's value set is known exactly: a number within 1e-4 (relative) of one of
         * its values decodes to that value, so float rounding never shows (nor differs between
         * -O levels); anything else is printed as computed */
        float v = row[m->out_dim];
        int lo = 0, hi = m->nout - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (value_number(m->out_values[mid]) < v) lo = mid + 1; else hi = mid;
        }
        for (int k = lo - 1; k <= lo && m->nout > 0; k++) {
            if (k < 0 || k >= m->nout) continue;
            double x = value_number(m->out_values[k]);
            if (fabs(v - x) <= 1e-4 * (fabs(x) > 1 ? fabs(x) : 1)) return m->out_values[model_canonical_output(m, k)];
        }
        return value_float(fabsf(v) < 1e-30f ? 0.0f : v);
    }
    /* defined when one value holds more than half: a one-hot up to exp(-50) leaks; an even mix
     * of two selected values (which the interpreter calls undefined) is not */
    int best = -1;
    float bv = 0.5f;
    for (int i = 0; i < m->nout; i++)
        if (row[m->out_dims[i]] > bv) {
            bv = row[m->out_dims[i]];
            best = i;
        }
    Value undef = { 0 };
    return best < 0 ? undef : m->out_values[best];
}
