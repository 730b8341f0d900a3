/* graph.c: the graph IR: its op table, building graphs (RASP programs' here, declared models' in
 * graph_decl.c), the memory plan's defaults, the FLOP count and the printer. The backends run
 * and emit it (backends/lower.c turns its ops into kernel calls). */
#include <math.h>
#include <string.h>

#include "ir.h"
#include "tfmcrt.h"

const GraphOpInfo graph_op_info[G_COUNT] = {
#define GRAPH_OP_INFO(e, name, min_in, max_in, caches, nconsts, consts, attrs, what) \
    [G_##e] = { name, min_in, max_in, caches, nconsts, consts, attrs, what },
    GRAPH_OPS(GRAPH_OP_INFO)
#undef GRAPH_OP_INFO
};

/* every op of the enum has its line */
_Static_assert(sizeof graph_op_info / sizeof graph_op_info[0] == G_COUNT, "graph_op_info covers GraphOpKind");

const char *graph_op_name(GraphOpKind k)
{
    return k >= 0 && k < G_COUNT ? graph_op_info[k].name : "?";
}

/* The name of each model block: declared models as docs/weights.md numbers layers (a shared
 * block's repetitions are its owner's layer, `repeat2`, `repeat3`... after the first), RASP
 * programs' residual blocks as their weight export does (blocks.B). */
static void name_layers(Arena *a, Graph *g, const Model *m)
{
    g->nlayers = m->nblocks;
    g->layer_names = ARENA_ARRAY(a, const char *, m->nblocks ? m->nblocks : 1);
    int *number = ARENA_ARRAY(a, int, m->nblocks ? m->nblocks : 1);
    int *uses = ARENA_ARRAY(a, int, m->nblocks ? m->nblocks : 1);
    int next = 0;
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        if (!m->declared) {
            g->layer_names[i] = arena_printf(a, "blocks.%d", i);
            continue;
        }
        int owner = b->shared_with >= 0 ? b->shared_with : i;
        if (owner == i) number[i] = next++;
        int use = ++uses[owner];
        const char *kind = b->kind == BLOCK_MHA ? "attention" : b->kind == BLOCK_FFN ? "mlp" : "moe";
        g->layer_names[i] = use == 1 ? arena_printf(a, "layers.%d.%s", number[owner], kind)
                                     : arena_printf(a, "layers.%d.repeat%d.%s", number[owner], use, kind);
    }
}

Graph *graph_new(Arena *a, const Model *m)
{
    Graph *g = ARENA_NEW(a, Graph);
    g->model = m;
    g->name = m->name;
    g->dim = m->dim;
    g->positions = m->positions;
    g->vocab_size = m->vocab_size;
    g->declared = m->declared;
    name_layers(a, g, m);
    return g;
}

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
    o.layer = -1;
    o.nconsts = graph_op_info[kind].nconsts;
    if (o.nconsts) {
        o.consts = ARENA_ARRAY(a, int, o.nconsts);
        for (int i = 0; i < o.nconsts; i++) o.consts[i] = -1;
    }
    if (kind == G_EMBED) o.scale = 1.0f; /* the token rows as they are */
    o.comment = comment;
    VEC_PUSH(a, g->ops, g->nops, g->cap_ops, o);
    return g->nops - 1;
}

int graph_add_const(Arena *a, Graph *g, const float *data, int rows, int cols, const char *name)
{
    if (!data) return -1;
    for (int i = 0; i < g->nconsts; i++)
        if (g->consts[i].data == data && g->consts[i].rows == rows && g->consts[i].cols == cols) return i;
    GraphConst c = { name, rows, cols, data, NULL, NULL, NULL, 0, NULL, NULL, 0 };
    VEC_PUSH(a, g->consts, g->nconsts, g->cap_consts, c);
    return g->nconsts - 1;
}

int graph_add_sparse_const(Arena *a, Graph *g, int rows, int cols, const int *rowptr, const int *colidx,
                           const float *vals, int nnz, const char *name)
{
    GraphConst c = { name, rows, cols, NULL, rowptr, colidx, vals, nnz, NULL, NULL, 0 };
    VEC_PUSH(a, g->consts, g->nconsts, g->cap_consts, c);
    return g->nconsts - 1;
}

int graph_add_q8_const(Arena *a, Graph *g, int rows, int cols, const int8_t *q8, const float *scale, int group,
                       const char *name)
{
    GraphConst c = { name, rows, cols, NULL, NULL, NULL, NULL, 0, q8, scale, group };
    VEC_PUSH(a, g->consts, g->nconsts, g->cap_consts, c);
    return g->nconsts - 1;
}

int graph_add_linear_named(Arena *a, Graph *g, int in, const float *w, const float *b, int rows, int cols,
                           const char *name, const char *wname, const char *bname)
{
    int t = graph_add_tensor(a, g, rows, false, name);
    int k = graph_add_op(a, g, G_LINEAR, t, in, -1, name);
    int wc = graph_add_const(a, g, w, rows, cols, wname);
    int bc = graph_add_const(a, g, b, rows, 0, bname);
    g->ops[k].consts[0] = wc;
    g->ops[k].consts[1] = bc;
    return t;
}

int graph_add_linear(Arena *a, Graph *g, int in, const float *w, const float *b, int rows, int cols, const char *name)
{
    return graph_add_linear_named(a, g, in, w, b, rows, cols, name, arena_printf(a, "%s.weight", name),
                                  arena_printf(a, "%s.bias", name));
}

const GraphConst *graph_linear_w(const Graph *g, const GraphOp *o)
{
    return o->consts && o->consts[0] >= 0 ? &g->consts[o->consts[0]] : NULL;
}

/* The memory plan: every tensor its own region, sized for the largest n; then the kernels'
 * scratch. (A liveness-based plan belongs to the passes.) */
size_t graph_scratch_floats(const Graph *g)
{
    size_t n = (size_t)g->positions;
    size_t scratch = n + (size_t)g->dim;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        size_t need = 0;
        if (o->kind == G_ATTEND) {
            /* tfmcrt_attend_ex: a row of scores per head */
            TfmcrtAttention at = { o->attn.heads, 1, 1, 0, 0, 0, 0, 0.0f };
            need = tfmcrt_attend_scratch_floats(&at, n);
        } else if (o->kind == G_MOE) {
            need = tfmcrt_moe_scratch_floats((size_t)g->dim, o->moe.experts, (size_t)o->moe.hidden, n);
        }
        if (need > scratch) scratch = need;
    }
    return scratch;
}

size_t graph_tensor_floats(const Graph *g, int t)
{
    size_t n = (size_t)g->positions;
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
    g->scratch_floats = graph_scratch_floats(g);
    g->arena_floats = at + g->scratch_floats;
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

int graph_in_place_input(const Graph *g, const GraphOp *o)
{
    if (o->kind == G_LINEAR && o->in[1] >= 0 && graph_linear_w(g, o)->vals) return o->in[1];
    if (o->kind == G_ACT || o->kind == G_SOFTMAX) return o->in[0];
    return -1;
}

bool graph_const_used(const Graph *g, int c)
{
    for (int i = 0; i < g->nops; i++)
        for (int k = 0; k < g->ops[i].nconsts; k++)
            if (g->ops[i].consts[k] == c) return true;
    return false;
}

double graph_flops(const Graph *g, int n)
{
    double f = 0;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        const GraphTensor *t = &g->tensors[o->out];
        /* keys per query: all n, or (n + 1) / 2 on average under a causal mask */
        bool causal = graph_op_info[o->kind].attrs & GA_ATTN ? o->attn.causal : o->causal;
        double keys = causal ? (n + 1) / 2.0 : n;
        double hd = (double)o->attn.heads * o->attn.head_dim;
        switch (o->kind) {
        case G_LINEAR: {
            const GraphConst *w = graph_linear_w(g, o);
            f += 2.0 * (w->vals ? w->nnz : (double)w->rows * w->cols); /* + acc: adds the non-zero rows only */
            break;
        }
        case G_SCORES: f += 2.0 * o->dk * keys; break;
        case G_MIX: f += 2.0 * o->dv * keys; break;
        case G_FUSED_ATTENTION: f += 2.0 * (o->dk + o->dv) * keys; break;
        case G_SOFTMAX: f += 3.0 * keys; break;
        case G_ATTEND: f += 4.0 * hd * keys; break;
        case G_MHA_SCORES: case G_MHA_MIX: f += 2.0 * hd * keys; break;
        case G_MHA_SOFTMAX: f += 3.0 * o->attn.heads * keys; break;
        case G_MOE: {
            bool gated = act_gated(o->moe.act);
            f += 2.0 * o->moe.experts * g->dim + o->moe.top * 2.0 * (gated ? 3 : 2) * o->moe.hidden * g->dim;
            break;
        }
        case G_ADD: case G_ACT: case G_GLU: case G_NORM: case G_ROPE: case G_HEAD_NORM: f += t->cols; break;
        case G_EMBED: case G_KV_STORE: case G_SLICE: break;
        case G_COUNT: break;
        }
    }
    return f;
}

#define tensor graph_add_tensor
#define op graph_add_op

/* A RASP program's graph: per attention block each head's q, k, v, scores, softmax, mix and
 * output projection, summed; per MLP block two linear maps around the activation. Names follow
 * the weight export: blocks.B.heads.H.q, blocks.B.mlp.hidden. */
Graph *graph_from_model(Arena *a, const Model *m)
{
    Graph *g = graph_new(a, m);
    int d = m->dim;
    int x = tensor(a, g, d, false, "embed");
    int e = op(a, g, G_EMBED, x, -1, -1, "token and position embeddings");
    g->ops[e].consts[0] = graph_add_const(a, g, m->tok_emb, m->vocab_size, d, "tok_emb");
    g->ops[e].consts[1] = graph_add_const(a, g, m->pos_emb, m->positions, d, "pos_emb");
    for (int bi = 0; bi < m->nblocks; bi++) {
        const ModelBlock *b = &m->blocks[bi];
        const char *L = g->layer_names[bi];
        int first = g->nops;
        int delta = -1;
        if (b->kind == BLOCK_MLP) {
            int h = graph_add_linear_named(a, g, x, b->w1, b->b1, b->hidden, d, arena_printf(a, "%s.mlp.hidden", L),
                                           arena_printf(a, "%s.mlp.w1", L), arena_printf(a, "%s.mlp.b1", L));
            int act = tensor(a, g, b->hidden, false, arena_printf(a, "%s.mlp.act", L));
            int k = op(a, g, G_ACT, act, h, -1, "activation");
            g->ops[k].act = b->act;
            delta = graph_add_linear_named(a, g, act, b->w2, b->b2, d, b->hidden, arena_printf(a, "%s.mlp.out", L),
                                           arena_printf(a, "%s.mlp.w2", L), arena_printf(a, "%s.mlp.b2", L));
        } else {
            for (int hi = 0; hi < b->nheads; hi++) {
                const ModelHead *h = &b->heads[hi];
                const char *p = arena_printf(a, "%s.heads.%d", L, hi);
                int q = graph_add_linear_named(a, g, x, h->wq, NULL, h->dk, d, arena_printf(a, "%s.q", p),
                                               arena_printf(a, "%s.wq", p), NULL);
                int k = graph_add_linear_named(a, g, x, h->wk, NULL, h->dk, d, arena_printf(a, "%s.k", p),
                                               arena_printf(a, "%s.wk", p), NULL);
                int v = graph_add_linear_named(a, g, x, h->wv, NULL, h->dv, d, arena_printf(a, "%s.v", p),
                                               arena_printf(a, "%s.wv", p), NULL);
                int s = tensor(a, g, 0, true, arena_printf(a, "%s.scores", p));
                int so = op(a, g, G_SCORES, s, q, k, h->label);
                g->ops[so].scale = b->scale;
                g->ops[so].causal = b->causal;
                g->ops[so].never_later = h->never_later;
                g->ops[so].dk = h->dk;
                int pr = tensor(a, g, 0, true, arena_printf(a, "%s.probs", p));
                int sm = op(a, g, G_SOFTMAX, pr, s, -1, "softmax");
                g->ops[sm].causal = b->causal;
                int mix = tensor(a, g, h->dv, false, arena_printf(a, "%s.mix", p));
                int mo = op(a, g, G_MIX, mix, pr, v, "weighted sum of values");
                g->ops[mo].dv = h->dv;
                int o = graph_add_linear_named(a, g, mix, h->wo, NULL, d, h->dv, arena_printf(a, "%s.out", p),
                                               arena_printf(a, "%s.wo", p), NULL);
                if (delta < 0) {
                    delta = o;
                } else {
                    int sum = tensor(a, g, d, false, arena_printf(a, "%s.sum", p));
                    op(a, g, G_ADD, sum, delta, o, "sum of heads");
                    delta = sum;
                }
            }
        }
        int nx = tensor(a, g, d, false, arena_printf(a, "%s.residual", L));
        op(a, g, G_ADD, nx, x, delta, "residual");
        for (int i = first; i < g->nops; i++) g->ops[i].layer = bi;
        x = nx;
    }
    g->output = x;
    graph_plan(g);
    return g;
}

static const char *act_name(Activation a)
{
    switch (a) {
    case ACT_RELU: return "relu";
    case ACT_GELU: return "gelu";
    case ACT_GELU_TANH: return "gelu_tanh";
    case ACT_SILU: return "silu";
    case ACT_SWIGLU: return "swiglu";
    case ACT_GEGLU: return "geglu";
    case ACT_GEGLU_TANH: return "geglu_tanh";
    }
    return "?";
}

static const char *norm_name(NormKind k)
{
    switch (k) {
    case NORM_NONE: return "none";
    case NORM_LAYERNORM: return "layernorm";
    case NORM_RMSNORM: return "rmsnorm";
    case NORM_DYT: return "dyt";
    }
    return "?";
}

static const char *score_name(ScoreKind s)
{
    switch (s) {
    case SCORE_SOFTMAX: return "softmax";
    case SCORE_SOFTMAX1: return "softmax1";
    case SCORE_LINEAR: return "linear";
    case SCORE_HARD: return "hard";
    }
    return "?";
}

/* The role of constant k of an op (its table's roles; MOE's experts after the router). */
static void const_role(const GraphOp *o, int k, char *buf, size_t cap)
{
    const char *roles = graph_op_info[o->kind].consts;
    int fixed = graph_op_info[o->kind].nconsts;
    if (k >= fixed) {
        static const char *const parts[6] = { "up", "b_up", "gate", "b_gate", "down", "b_down" };
        snprintf(buf, cap, "expert%d.%s", (k - fixed) / 6, parts[(k - fixed) % 6]);
        return;
    }
    const char *s = roles;
    for (int i = 0;; i++) {
        while (*s == ' ') s++;
        size_t len = strcspn(s, " ");
        if (i == k) {
            snprintf(buf, cap, "%.*s", (int)len, s);
            return;
        }
        s += len;
    }
}

/* A graph prints an op per line: the tensor written and its shape, the op, its inputs, caches,
 * constants (role=name[shape]) and attributes, from the op table. */
void graph_print(const Graph *g, FILE *out)
{
    fprintf(out, "graph %s: %d ops, %d tensors, %d constants, arena %zu floats (n <= %d%s)\n", g->name, g->nops,
            g->ntensors, g->nconsts, g->arena_floats, g->positions, g->planned ? ", planned by liveness" : "");
    int layer = -2;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        const GraphOpInfo *info = &graph_op_info[o->kind];
        const GraphTensor *t = &g->tensors[o->out];
        if (o->layer != layer && o->layer >= 0) fprintf(out, " %s:\n", g->layer_names[o->layer]);
        if (o->layer < 0 && o->head && (i == 0 || !g->ops[i - 1].head)) fprintf(out, " head:\n");
        layer = o->layer;
        if (t->square && t->cols > 1) fprintf(out, "  %%%-14s [%d][n][n] = %s", t->name, t->cols, info->name);
        else if (t->square) fprintf(out, "  %%%-14s [n][n] = %s", t->name, info->name);
        else if (t->cache) fprintf(out, "  %%%-14s [max_len][%d] = %s", t->name, t->cols, info->name);
        else fprintf(out, "  %%%-14s [n][%d] = %s", t->name, t->cols, info->name);
        for (int k = 0; k < 3; k++)
            if (o->in[k] >= 0) fprintf(out, " %%%s", g->tensors[o->in[k]].name);
        for (int k = 0; k < 2; k++)
            if (o->cache[k] >= 0) fprintf(out, " cache %%%s", g->tensors[o->cache[k]].name);
        for (int k = 0; k < o->nconsts; k++) {
            if (o->consts[k] < 0) continue;
            if (o->kind == G_MOE && k >= 1) { /* after the router: the experts, counted */
                fprintf(out, " +%d expert constants", o->nconsts - 1);
                break;
            }
            const GraphConst *c = &g->consts[o->consts[k]];
            char role[48];
            const_role(o, k, role, sizeof role);
            if (c->cols) fprintf(out, " %s=@%s[%d][%d]", role, c->name, c->rows, c->cols);
            else fprintf(out, " %s=@%s[%d]", role, c->name, c->rows);
            if (c->vals) fprintf(out, " (%d non-zeros)", c->nnz);
            if (c->q8) fprintf(out, " (int8, group %d)", c->q8_group);
        }
        unsigned A = info->attrs;
        if (A & GA_ACT) fprintf(out, " act=%s", act_name(o->act));
        if (A & GA_DK) fprintf(out, " dk=%d", o->dk);
        if (A & GA_DV) fprintf(out, " dv=%d", o->dv);
        if ((A & GA_SCALE) && !(o->kind == G_EMBED && o->scale == 1.0f)) fprintf(out, " scale=%g", (double)o->scale);
        if ((A & GA_CAUSAL) && o->causal) fprintf(out, " causal");
        if ((A & GA_NEVER_LATER) && o->never_later && !o->causal) fprintf(out, " never-later");
        if (A & GA_FIRST) fprintf(out, " columns %d..%d", o->first, o->first + t->cols - 1);
        if (A & GA_NORM) fprintf(out, " %s eps=%g", norm_name(o->norm.kind), (double)o->norm.eps);
        if ((A & GA_NORM) && o->norm.kind == NORM_DYT) fprintf(out, " alpha=%g", (double)o->norm.alpha);
        if (A & GA_ROPE) fprintf(out, " heads=%d head_dim=%d base=%g", o->rope.heads, o->rope.head_dim, (double)o->rope.base);
        if ((A & GA_ROPE) && o->rope.dims < o->rope.head_dim) fprintf(out, " dims=%d", o->rope.dims);
        if (A & GA_HEADS) fprintf(out, " heads=%d head_dim=%d", o->heads.heads, o->heads.head_dim);
        if (A & GA_ATTN) {
            fprintf(out, " heads=%d kv_heads=%d head_dim=%d %s scale=%g", o->attn.heads, o->attn.kv_heads,
                    o->attn.head_dim, score_name(o->attn.score), (double)o->attn.scale);
            if (o->attn.causal) fprintf(out, " causal");
            if (o->attn.window) fprintf(out, " window=%d", o->attn.window);
            if (o->attn.alibi) fprintf(out, " alibi");
        }
        if (A & GA_MOE)
            fprintf(out, " experts=%d top=%d hidden=%d act=%s", o->moe.experts, o->moe.top, o->moe.hidden,
                    act_name(o->moe.act));
        if (o->kind == G_LINEAR && o->in[1] >= 0) fprintf(out, " (added to %%%s)", g->tensors[o->in[1]].name);
        if (o->comment && o->kind != G_LINEAR) fprintf(out, "    # %s", o->comment);
        fputc('\n', out);
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
