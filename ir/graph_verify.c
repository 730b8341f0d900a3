/* graph_verify.c: the graph IR's verifier, run after every graph pass in debug builds and tests
 * (passes/manager.c). It checks what the backends rely on and nothing computes again: tensor and
 * op references in range, every input written by an earlier op, each op's shapes and attributes,
 * the output, every tensor inside the arena, and that no two tensors alive at the same time share
 * memory. The first problem is written to err. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "ir.h"

typedef struct Verify {
    const Graph *g;
    char *err;
    size_t cap;
    int op;      /* the op being checked, -1: none */
} Verify;

static bool fail(Verify *v, const char *what, ...) __attribute__((format(printf, 2, 3)));

static bool fail(Verify *v, const char *what, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    if (v->op >= 0) snprintf(v->err, v->cap, "op %d (%s): %s", v->op, graph_op_name(v->g->ops[v->op].kind), msg);
    else snprintf(v->err, v->cap, "%s", msg);
    return false;
}

static int cols(const Verify *v, int t) { return v->g->tensors[t].cols; }

/* Constant k of o, or NULL (absent, or out of range: then *bad is set). */
static const GraphConst *cst(const Verify *v, const GraphOp *o, int k)
{
    if (k >= o->nconsts || o->consts[k] < 0) return NULL;
    return &v->g->consts[o->consts[k]];
}

/* A vector constant of `rows` values, when present. */
static bool vector_ok(Verify *v, const GraphConst *c, int rows, const char *what)
{
    if (!c) return true;
    if (c->cols != 0 || c->rows != rows || !c->data) return fail(v, "%s `%s` is not a vector of %d", what, c->name, rows);
    return true;
}

/* A matrix constant [rows][cols], dense or compressed. */
static bool matrix_ok(Verify *v, const GraphConst *c, int rows, int cols, const char *what)
{
    if (!c) return fail(v, "no %s", what);
    if (c->rows != rows || c->cols != cols)
        return fail(v, "%s `%s` is [%d][%d], the op needs [%d][%d]", what, c->name, c->rows, c->cols, rows, cols);
    if (!c->data && !c->vals && !c->q8) return fail(v, "%s `%s` holds no values", what, c->name);
    if (c->q8 && (!c->q8_scale || c->q8_group < 1 || c->q8_group > c->cols))
        return fail(v, "int8 `%s` without scales or with group %d of %d columns", c->name, c->q8_group, c->cols);
    if (c->vals && (!c->rowptr || !c->colidx || c->rowptr[0] != 0 || c->rowptr[c->rows] != c->nnz))
        return fail(v, "compressed rows of `%s` that do not hold its %d non-zeros", c->name, c->nnz);
    return true;
}

static bool act_ok(Activation a) { return a >= ACT_RELU && a <= ACT_GEGLU_TANH; }

/* Shapes and attributes of one op; its references are already known to be in range. */
static bool check_op(Verify *v, const GraphOp *o)
{
    const Graph *g = v->g;
    const GraphTensor *out = &g->tensors[o->out];
    const GraphOpInfo *info = &graph_op_info[o->kind];
    int a = o->in[0], b = o->in[1];
    int nin = (o->in[0] >= 0) + (o->in[1] >= 0) + (o->in[2] >= 0);
    if (nin < info->min_inputs || nin > info->max_inputs)
        return fail(v, "%d inputs; a %s reads %d to %d", nin, info->name, info->min_inputs, info->max_inputs);
    for (int k = 0; k < nin; k++)
        if (o->in[k] < 0) return fail(v, "input %d is missing before input %d", k, nin - 1);
    int ncache = (o->cache[0] >= 0) + (o->cache[1] >= 0);
    if (ncache != info->caches) return fail(v, "%d caches; a %s uses %d", ncache, info->name, info->caches);
    for (int k = 0; k < ncache; k++)
        if (!g->tensors[o->cache[k]].cache) return fail(v, "its cache `%s` is not a cache", g->tensors[o->cache[k]].name);
    if ((info->attrs & GA_ACT) && !act_ok(o->act)) return fail(v, "activation %d", (int)o->act);
    if ((info->attrs & GA_SCALE) && !isfinite(o->scale)) return fail(v, "scale %g", (double)o->scale);
    switch (o->kind) {
    case G_EMBED:
        if (out->cols != g->dim) return fail(v, "embeds %d columns into a residual of %d", out->cols, g->dim);
        if (!cst(v, o, 0)) return fail(v, "no token table");
        if (!matrix_ok(v, cst(v, o, 0), g->vocab_size, g->dim, "token table")) return false;
        if (cst(v, o, 1) && !matrix_ok(v, cst(v, o, 1), g->positions, g->dim, "position table")) return false;
        if (cst(v, o, 1) && (!cst(v, o, 0)->vals) != (!cst(v, o, 1)->vals))
            return fail(v, "one table compressed and the other not");
        if (!(o->scale > 0)) return fail(v, "embedding scale %g", (double)o->scale);
        return true;
    case G_LINEAR: {
        const GraphConst *w = cst(v, o, 0);
        if (!matrix_ok(v, w, out->cols, cols(v, a), "W")) return false;
        if (!vector_ok(v, cst(v, o, 1), out->cols, "bias")) return false;
        if (b >= 0 && (!w->vals || cols(v, b) != out->cols)) return fail(v, "an accumulated input of the wrong shape");
        return true;
    }
    case G_ACT: case G_ADD: case G_GLU: case G_NORM:
        if (cols(v, a) != out->cols) return fail(v, "input of %d columns, output of %d", cols(v, a), out->cols);
        if ((o->kind == G_ADD || o->kind == G_GLU) && cols(v, b) != out->cols)
            return fail(v, "second input of %d columns, output of %d", cols(v, b), out->cols);
        if (o->kind == G_NORM) {
            if (o->norm.kind <= NORM_NONE || o->norm.kind > NORM_DYT) return fail(v, "norm kind %d", (int)o->norm.kind);
            if (!cst(v, o, 0)) return fail(v, "no norm weights");
            if (!vector_ok(v, cst(v, o, 0), out->cols, "norm weight") || !vector_ok(v, cst(v, o, 1), out->cols, "norm bias"))
                return false;
        }
        return true;
    case G_SCORES:
        if (!out->square) return fail(v, "scores are [n][n] of two inputs");
        if (o->dk <= 0 || cols(v, a) != o->dk || cols(v, b) != o->dk) return fail(v, "q and k must have dk = %d columns", o->dk);
        return true;
    case G_SOFTMAX:
        if (!out->square || !g->tensors[a].square) return fail(v, "softmax maps [n][n] to [n][n]");
        return true;
    case G_MIX:
        if (!g->tensors[a].square) return fail(v, "mix reads [n][n] weights and values");
        if (o->dv <= 0 || cols(v, b) != o->dv || out->cols != o->dv) return fail(v, "values and output must have dv = %d columns", o->dv);
        return true;
    case G_FUSED_ATTENTION:
        if (o->dk <= 0 || cols(v, a) != o->dk || cols(v, b) != o->dk) return fail(v, "q and k must have dk = %d columns", o->dk);
        if (o->dv <= 0 || cols(v, o->in[2]) != o->dv || out->cols != o->dv) return fail(v, "v and output must have dv = %d columns", o->dv);
        return true;
    case G_ROPE:
        if (a != o->out) return fail(v, "rope works in place");
        if (o->rope.heads <= 0 || o->rope.head_dim <= 0 || o->rope.head_dim % 2 || out->cols != o->rope.heads * o->rope.head_dim)
            return fail(v, "%d columns are not %d heads of an even head_dim %d", out->cols, o->rope.heads, o->rope.head_dim);
        if (!(o->rope.base > 0) || !isfinite(o->rope.base)) return fail(v, "rope base %g", (double)o->rope.base);
        if (o->rope.dims < 2 || o->rope.dims % 2 || o->rope.dims > o->rope.head_dim)
            return fail(v, "%d rotating dimensions of a head of %d", o->rope.dims, o->rope.head_dim);
        if (o->rope.dims < o->rope.head_dim && !cst(v, o, 0)) return fail(v, "partial rotary needs its frequencies");
        return !cst(v, o, 0) || vector_ok(v, cst(v, o, 0), o->rope.dims / 2, "rope frequencies");
    case G_HEAD_NORM:
        if (a != o->out) return fail(v, "head_norm works in place");
        if (o->heads.heads <= 0 || o->heads.head_dim <= 0 || out->cols != o->heads.heads * o->heads.head_dim)
            return fail(v, "%d columns are not %d heads of %d", out->cols, o->heads.heads, o->heads.head_dim);
        if (o->norm.kind <= NORM_NONE || o->norm.kind > NORM_DYT) return fail(v, "norm kind %d", (int)o->norm.kind);
        if (!cst(v, o, 0)) return fail(v, "no norm weights");
        return vector_ok(v, cst(v, o, 0), o->heads.head_dim, "head norm weight");
    case G_KV_STORE:
        if (cols(v, a) != cols(v, o->cache[0]) || cols(v, b) != cols(v, o->cache[1]))
            return fail(v, "k and v do not have their caches' widths");
        return true;
    case G_ATTEND: case G_MHA_SCORES: case G_MHA_SOFTMAX: case G_MHA_MIX: {
        const GraphAttention *at = &o->attn;
        if (at->heads <= 0 || at->kv_heads <= 0 || at->head_dim <= 0 || at->heads % at->kv_heads || at->window < 0 ||
            at->score < SCORE_SOFTMAX || at->score > SCORE_HARD || !isfinite(at->scale))
            return fail(v, "attention of %d heads, %d kv heads, head_dim %d, window %d, score %d, scale %g", at->heads,
                        at->kv_heads, at->head_dim, at->window, (int)at->score, (double)at->scale);
        int q = at->heads * at->head_dim, kv = at->kv_heads * at->head_dim;
        if ((o->kind == G_ATTEND || o->kind == G_MHA_SCORES) && cols(v, a) != q)
            return fail(v, "queries of %d columns, the attention has %d", cols(v, a), q);
        if ((o->kind == G_ATTEND || o->kind == G_MHA_MIX) && out->cols != q)
            return fail(v, "an output of %d columns, the attention has %d", out->cols, q);
        for (int k = 0; k < ncache; k++)
            if (cols(v, o->cache[k]) != kv) return fail(v, "a cache of %d columns, the attention has %d", cols(v, o->cache[k]), kv);
        if ((o->kind == G_MHA_SCORES || o->kind == G_MHA_SOFTMAX) && (!out->square || out->cols != at->heads))
            return fail(v, "scores are [heads][n][n]");
        if (o->kind == G_MHA_MIX && (!g->tensors[a].square || cols(v, a) != at->heads)) return fail(v, "mix reads [heads][n][n]");
        return true;
    }
    case G_MOE: {
        const GraphMoe *mo = &o->moe;
        int d = g->dim;
        if (mo->experts <= 0 || mo->top <= 0 || mo->top > mo->experts || mo->hidden <= 0 || !act_ok(mo->act))
            return fail(v, "%d experts, top %d, hidden %d", mo->experts, mo->top, mo->hidden);
        if (o->nconsts != 1 + 6 * mo->experts) return fail(v, "%d constants for %d experts", o->nconsts, mo->experts);
        if (cols(v, a) != d || out->cols != d) return fail(v, "a mixture of experts maps the residual");
        if (!matrix_ok(v, cst(v, o, 0), mo->experts, d, "router")) return false;
        bool gated = act_gated(mo->act);
        for (int e = 0; e < mo->experts; e++) {
            int c = 1 + 6 * e;
            if (!matrix_ok(v, cst(v, o, c), mo->hidden, d, "expert up") || !vector_ok(v, cst(v, o, c + 1), mo->hidden, "bias") ||
                !vector_ok(v, cst(v, o, c + 3), mo->hidden, "bias") || !matrix_ok(v, cst(v, o, c + 4), d, mo->hidden, "expert down") ||
                !vector_ok(v, cst(v, o, c + 5), d, "bias"))
                return false;
            if (gated != (cst(v, o, c + 2) != NULL)) return fail(v, "expert %d's gate does not match its activation", e);
            if (gated && !matrix_ok(v, cst(v, o, c + 2), mo->hidden, d, "expert gate")) return false;
        }
        return true;
    }
    case G_SLICE:
        if (o->first < 0 || o->first + out->cols > cols(v, a))
            return fail(v, "columns %d..%d of an input of %d", o->first, o->first + out->cols, cols(v, a));
        return true;
    case G_COUNT: break;
    }
    return fail(v, "unknown op kind %d", (int)o->kind);
}

/* May op o write its output over input `in` (same place, the input's last reader)? */
static bool in_place(const Graph *g, const GraphOp *o, int in) { return in >= 0 && graph_in_place_input(g, o) == in; }

/* Tensors s, then t, whose lives meet at one op that writes t over s in place. */
static bool handed_over(const Graph *g, const int *first, const int *last, int s, int t)
{
    return last[s] == first[t] && in_place(g, &g->ops[first[t]], s) && g->tensors[s].offset == g->tensors[t].offset &&
           graph_tensor_floats(g, s) == graph_tensor_floats(g, t);
}

bool graph_verify(Arena *arena, const Graph *g, char *err, size_t cap)
{
    Verify v = { g, err, cap, -1 };
    err[0] = '\0';
    int nt = g->ntensors;
    if (g->output < 0 || g->output >= nt) return fail(&v, "the output is tensor %d of %d", g->output, nt);
    /* the op that first writes each tensor, and the last that touches it */
    int *first = ARENA_ARRAY(arena, int, 2 * (size_t)nt + 1);
    int *last = first + nt;
    for (int t = 0; t < nt; t++) first[t] = last[t] = -1;
    bool ok = true;
    for (int i = 0; i < g->nops && ok; i++) {
        const GraphOp *o = &g->ops[i];
        v.op = i;
        int refs[6] = { o->in[0], o->in[1], o->in[2], o->cache[0], o->cache[1], o->out };
        for (int k = 0; k < 6 && ok; k++) {
            if (refs[k] < -1 || refs[k] >= nt || (k == 5 && refs[k] < 0)) ok = fail(&v, "refers to tensor %d of %d", refs[k], nt);
            else if (refs[k] >= 0 && k < 3 && first[refs[k]] < 0 && refs[k] != o->out)
                ok = fail(&v, "reads `%s` before any op writes it", g->tensors[refs[k]].name);
        }
        if (!ok) break;
        if (o->kind < 0 || o->kind >= G_COUNT) {
            ok = fail(&v, "unknown op kind %d", (int)o->kind);
            break;
        }
        if ((o->nconsts && !o->consts) ||
            (o->kind == G_MOE ? o->nconsts < 1 : o->nconsts != graph_op_info[o->kind].nconsts)) {
            ok = fail(&v, "%d constants; a %s has %d", o->nconsts, graph_op_info[o->kind].name, graph_op_info[o->kind].nconsts);
            break;
        }
        for (int k = 0; k < o->nconsts && ok; k++)
            if (o->consts[k] < -1 || o->consts[k] >= g->nconsts)
                ok = fail(&v, "refers to constant %d of %d", o->consts[k], g->nconsts);
        if (!ok) break;
        if (first[o->out] < 0) first[o->out] = i;
        for (int k = 0; k < 6; k++)
            if (refs[k] >= 0) last[refs[k]] = i;
        ok = check_op(&v, o);
    }
    v.op = -1;
    if (ok && first[g->output] < 0) ok = fail(&v, "no op writes the output `%s`", g->tensors[g->output].name);
    /* memory: every tensor in the arena, the scratch after them, no two live tensors overlapping */
    for (int t = 0; t < nt && ok; t++) {
        if (first[t] < 0) continue;
        if (g->tensors[t].offset + graph_tensor_floats(g, t) > g->scratch)
            ok = fail(&v, "tensor `%s` ends past the tensors' region (%zu + %zu > %zu floats)", g->tensors[t].name,
                      g->tensors[t].offset, graph_tensor_floats(g, t), g->scratch);
        /* the output stays alive to the end; caches hold earlier calls' positions: always alive */
        if (g->tensors[t].cache || t == g->output) last[t] = g->nops;
        if (g->tensors[t].cache) first[t] = 0;
    }
    if (ok && g->scratch + graph_scratch_floats(g) > g->arena_floats)
        ok = fail(&v, "the kernels' scratch ends past the arena (%zu + %zu > %zu floats)", g->scratch,
                  graph_scratch_floats(g), g->arena_floats);
    for (int s = 0; s < nt && ok; s++)
        for (int t = s + 1; t < nt && ok; t++) {
            if (first[s] < 0 || first[t] < 0 || last[s] < first[t] || last[t] < first[s]) continue;
            size_t s0 = g->tensors[s].offset, s1 = s0 + graph_tensor_floats(g, s);
            size_t t0 = g->tensors[t].offset, t1 = t0 + graph_tensor_floats(g, t);
            if (handed_over(g, first, last, s, t) || handed_over(g, first, last, t, s)) continue;
            if (s0 < t1 && t0 < s1 && s1 > s0 && t1 > t0)
                ok = fail(&v, "tensors `%s` and `%s` are alive together (ops %d..%d and %d..%d) and share memory",
                          g->tensors[s].name, g->tensors[t].name, first[s], last[s], first[t], last[t]);
        }
    return ok;
}
