/* fuse_qkv.c: QKV fusion (-O2, declared models; RASP heads are compressed by sparse instead). The query, key and value projections of an
 * attention block read the same normalised input: they become one matrix multiplication by the
 * stacked weights [Wq; Wk; Wv] (and biases), whose result is cut into q, k and v, so the input is
 * read once and one larger, more efficient multiplication replaces three. The applications of a
 * `block shared x N` layer use the same three constants, so they get the same stacked one: a
 * shared layer's weights are stored (and emitted) once at -O2 as at -O1. Preserves: every value
 * exactly (each output is the same dot product). */
#include <string.h>

#include "passes.h"

/* Stacked constants already made, by the six they were made from (weights, then biases). */
typedef struct Stacked {
    int from[6];
    int stacked[2];
} Stacked;

/* Are ops i, i+1, i+2 one attention's dense q, k and v projections? They read one input, and a
 * later op of their layer stores the second and third in the caches. */
static bool projections(const Graph *g, int i)
{
    if (i + 2 >= g->nops) return false;
    const GraphOp *q = &g->ops[i], *k = &g->ops[i + 1], *v = &g->ops[i + 2];
    for (int p = 0; p < 3; p++) {
        const GraphOp *o = &g->ops[i + p];
        const GraphConst *w = graph_linear_w(g, o);
        if (o->kind != G_LINEAR || !w || w->vals || o->in[1] >= 0 || o->in[0] != q->in[0] || o->layer != q->layer ||
            w->cols != graph_linear_w(g, q)->cols || (o->consts[1] < 0) != (q->consts[1] < 0))
            return false;
    }
    for (int j = i + 3; j < g->nops && g->ops[j].layer == q->layer; j++)
        if (g->ops[j].kind == G_KV_STORE && g->ops[j].in[0] == k->out && g->ops[j].in[1] == v->out) return true;
    return false;
}

/* The stacked constant's name: the query's with `q` made `qkv` (layers.0.attention.qkv.weight). */
static const char *stacked_name(Arena *a, const char *qname, const char *layer, const char *what)
{
    const char *end = strstr(qname, ".q.");
    if (end) return arena_printf(a, "%.*s.qkv.%s", (int)(end - qname), qname, what);
    return arena_printf(a, "%s.qkv.%s", layer, what);
}

bool pass_fuse_qkv(PassContext *pc, Graph *g)
{
    if (!g->declared) return true; /* RASP heads are compressed instead (sparse) */
    Arena *a = pc->arena;
    GraphOp *ops = ARENA_ARRAY(a, GraphOp, g->nops + 2 * g->nops / 3 + 4);
    Stacked *made = ARENA_ARRAY(a, Stacked, g->nops / 3 + 1);
    int nmade = 0, k = 0, nops = g->nops;
    for (int i = 0; i < nops; i++) {
        if (!projections(g, i)) {
            ops[k++] = g->ops[i];
            continue;
        }
        const GraphOp *part[3] = { &g->ops[i], &g->ops[i + 1], &g->ops[i + 2] };
        int key[6];
        for (int p = 0; p < 3; p++) {
            key[p] = part[p]->consts[0];
            key[3 + p] = part[p]->consts[1];
        }
        Stacked *st = NULL;
        for (int m = 0; m < nmade && !st; m++)
            if (!memcmp(made[m].from, key, sizeof key)) st = &made[m];
        int cols = graph_linear_w(g, part[0])->cols, rows = 0;
        for (int p = 0; p < 3; p++) rows += graph_linear_w(g, part[p])->rows;
        const char *layer = g->layer_names[part[0]->layer];
        if (!st) {
            st = &made[nmade++];
            memcpy(st->from, key, sizeof key);
            float *w = ARENA_ARRAY(a, float, (size_t)rows * cols);
            float *b = key[3] >= 0 ? ARENA_ARRAY(a, float, rows) : NULL;
            int at = 0;
            for (int p = 0; p < 3; p++) {
                const GraphConst *pw = &g->consts[key[p]];
                memcpy(w + (size_t)at * cols, pw->data, sizeof(float) * (size_t)pw->rows * cols);
                if (b) memcpy(b + at, g->consts[key[3 + p]].data, sizeof(float) * (size_t)pw->rows);
                at += pw->rows;
            }
            const char *qname = g->consts[key[0]].name;
            st->stacked[0] = graph_add_const(a, g, w, rows, cols, stacked_name(a, qname, layer, "weight"));
            st->stacked[1] = graph_add_const(a, g, b, rows, 0, stacked_name(a, qname, layer, "bias"));
        }
        int t = graph_add_tensor(a, g, rows, false, arena_printf(a, "%s.qkv", layer));
        GraphOp f = *part[0];
        f.out = t;
        f.consts = ARENA_ARRAY(a, int, 2);
        f.consts[0] = st->stacked[0];
        f.consts[1] = st->stacked[1];
        f.comment = g->tensors[t].name;
        ops[k++] = f;
        int at = 0;
        for (int p = 0; p < 3; p++) {
            GraphOp s = { 0 };
            s.kind = G_SLICE;
            s.out = part[p]->out;
            s.in[0] = t;
            s.in[1] = s.in[2] = -1;
            s.cache[0] = s.cache[1] = -1;
            s.first = at;
            s.layer = part[0]->layer;
            s.comment = "slice";
            ops[k++] = s;
            at += graph_linear_w(g, part[p])->rows;
        }
        i += 2;
    }
    g->ops = ops;
    g->nops = k;
    g->cap_ops = k;
    graph_plan(g);
    return true;
}
