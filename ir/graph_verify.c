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

/* Shapes and attributes of one op; its references are already known to be in range. */
static bool check_op(Verify *v, const GraphOp *o)
{
    const Graph *g = v->g;
    const Model *m = g->model;
    const GraphTensor *out = &g->tensors[o->out];
    int a = o->in[0], b = o->in[1];
    switch (o->kind) {
    case G_EMBED:
        if (out->cols != m->dim) return fail(v, "embeds %d columns into a residual of %d", out->cols, m->dim);
        if (!m->tok_emb && !o->vals) return fail(v, "no token table");
        return true;
    case G_LINEAR:
        if (a < 0) return fail(v, "no input");
        if (o->rows <= 0 || o->cols <= 0) return fail(v, "W is [%d][%d]", o->rows, o->cols);
        if (cols(v, a) != o->cols) return fail(v, "W has %d columns, its input %d", o->cols, cols(v, a));
        if (out->cols != o->rows) return fail(v, "W has %d rows, its output %d columns", o->rows, out->cols);
        if (!o->w && !o->vals) return fail(v, "no weights");
        if (o->vals && (!o->rowptr || !o->colidx || o->rowptr[0] != 0 || o->rowptr[o->rows] != o->nnz))
            return fail(v, "compressed rows that do not hold its %d non-zeros", o->nnz);
        if (b >= 0 && (!o->vals || cols(v, b) != out->cols)) return fail(v, "an accumulated input of the wrong shape");
        return true;
    case G_ACT: case G_ADD: case G_GLU: case G_NORM:
        if (a < 0 || cols(v, a) != out->cols) return fail(v, "input of %d columns, output of %d", a < 0 ? 0 : cols(v, a), out->cols);
        if ((o->kind == G_ADD || o->kind == G_GLU) && (b < 0 || cols(v, b) != out->cols))
            return fail(v, "second input of %d columns, output of %d", b < 0 ? 0 : cols(v, b), out->cols);
        if ((o->kind == G_ACT || o->kind == G_GLU) && (o->act < ACT_RELU || o->act > ACT_GEGLU))
            return fail(v, "activation %d", (int)o->act);
        if (o->kind == G_NORM && (!o->norm || !o->norm->weight)) return fail(v, "no norm weights");
        return true;
    case G_SCORES:
        if (a < 0 || b < 0 || !out->square) return fail(v, "scores are [n][n] of two inputs");
        if (cols(v, a) != o->rows || cols(v, b) != o->rows) return fail(v, "q and k must have dk = %d columns", o->rows);
        if (!isfinite(o->scale)) return fail(v, "scale %g", (double)o->scale);
        return true;
    case G_SOFTMAX:
        if (a < 0 || !out->square || !g->tensors[a].square) return fail(v, "softmax maps [n][n] to [n][n]");
        return true;
    case G_MIX:
        if (a < 0 || b < 0 || !g->tensors[a].square) return fail(v, "mix reads [n][n] weights and values");
        if (cols(v, b) != o->rows || out->cols != o->rows) return fail(v, "values and output must have dv = %d columns", o->rows);
        return true;
    case G_FUSED_ATTENTION:
        if (a < 0 || b < 0 || o->in[2] < 0) return fail(v, "fused attention reads q, k and v");
        if (cols(v, a) != o->rows || cols(v, b) != o->rows) return fail(v, "q and k must have dk = %d columns", o->rows);
        if (cols(v, o->in[2]) != o->cols || out->cols != o->cols) return fail(v, "v and output must have dv = %d columns", o->cols);
        if (!isfinite(o->scale)) return fail(v, "scale %g", (double)o->scale);
        return true;
    case G_ROPE:
        if (a != o->out) return fail(v, "rope works in place");
        if (!o->block || o->heads <= 0 || out->cols != o->heads * o->block->head_dim)
            return fail(v, "%d columns are not %d heads of the block's head_dim", out->cols, o->heads);
        return true;
    case G_KV_STORE:
        if (a < 0 || b < 0 || o->cache[0] < 0 || o->cache[1] < 0) return fail(v, "kv_store reads k and v into two caches");
        if (!g->tensors[o->cache[0]].cache || !g->tensors[o->cache[1]].cache) return fail(v, "its caches are not caches");
        if (cols(v, a) != cols(v, o->cache[0]) || cols(v, b) != cols(v, o->cache[1]))
            return fail(v, "k and v do not have their caches' widths");
        return true;
    case G_ATTEND: case G_MHA_SCORES: case G_MHA_SOFTMAX: case G_MHA_MIX: {
        const ModelBlock *bl = o->block;
        if (!bl || bl->kind != BLOCK_MHA) return fail(v, "no attention block");
        if (a < 0) return fail(v, "no input");
        int q = bl->mha_heads * bl->head_dim;
        bool reads_cache = o->kind != G_MHA_SOFTMAX;
        if (reads_cache && (o->cache[0] < 0 || o->cache[1] < 0 || !g->tensors[o->cache[0]].cache))
            return fail(v, "it reads the block's caches");
        if ((o->kind == G_ATTEND || o->kind == G_MHA_SCORES) && cols(v, a) != q)
            return fail(v, "queries of %d columns, the block has %d", cols(v, a), q);
        if ((o->kind == G_ATTEND || o->kind == G_MHA_MIX) && out->cols != q)
            return fail(v, "an output of %d columns, the block has %d", out->cols, q);
        if ((o->kind == G_MHA_SCORES || o->kind == G_MHA_SOFTMAX) && (!out->square || out->cols != bl->mha_heads))
            return fail(v, "scores are [heads][n][n]");
        return true;
    }
    case G_MOE:
        if (!o->block || o->block->kind != BLOCK_MOE || !o->block->expert) return fail(v, "no mixture-of-experts block");
        if (a < 0 || cols(v, a) != m->dim || out->cols != m->dim) return fail(v, "a mixture of experts maps the residual");
        return true;
    case G_SLICE:
        if (a < 0 || o->rows < 0 || o->rows + out->cols > cols(v, a))
            return fail(v, "columns %d..%d of an input of %d", o->rows, o->rows + out->cols, a < 0 ? 0 : cols(v, a));
        return true;
    }
    return fail(v, "unknown op kind %d", (int)o->kind);
}

/* May op o write its output over input `in` (same place, the input's last reader)? Only a
 * compressed update of the residual (tfmcrt_linear_csr_acc adds into its accumulator in place). */
static bool in_place(const GraphOp *o, int in) { return o->kind == G_LINEAR && o->vals && o->in[1] == in; }

/* Tensors s, then t, whose lives meet at one op that writes t over s in place. */
static bool handed_over(const Graph *g, const int *first, const int *last, int s, int t)
{
    return last[s] == first[t] && in_place(&g->ops[first[t]], s) && g->tensors[s].offset == g->tensors[t].offset &&
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
