/* manager.c: the pass table, -O levels, --passes / --no-PASS, and the --report table (parameters,
 * FLOPs per token, weight bytes and arena bytes after each pass). */
#include <string.h>

#include "passes.h"

const PassInfo pass_table[] = {
    { "fold", 1, pass_fold, NULL, "constant folding: the constant `one` dimension into MLP biases" },
    { "prune", 1, pass_prune, NULL, "exact pruning: dead residual dimensions, heads, neurons, blocks" },
    { "magnitude", 99, pass_magnitude, NULL, "magnitude pruning (lossy, opt-in)" },
    { "fuse-attention", 1, NULL, pass_fuse_attention, "scores + softmax + mix into one kernel, no [n][n] tensors" },
    { "fuse-qkv", 2, NULL, pass_fuse_qkv, "Q, K and V projections as one matrix multiplication" },
    { "lowrank", 99, NULL, pass_lowrank, "low-rank factorisation by truncated SVD (opt-in)" },
    { "sparse", 1, NULL, pass_sparse, "compressed rows for very sparse weight matrices" },
    { "memplan", 1, NULL, pass_memplan, "one arena, tensors placed by liveness" },
};
const int pass_count = (int)(sizeof pass_table / sizeof pass_table[0]);

/* Is `name` an item of the comma-separated list? */
static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

bool pass_enabled(const PassInfo *p, const PassOptions *o)
{
    if (o->disabled && listed(o->disabled, p->name)) return false;
    if (o->only) return listed(o->only, p->name);
    if (!strcmp(p->name, "magnitude")) return o->prune_threshold > 0 || o->prune_sparsity > 0;
    if (!strcmp(p->name, "lowrank")) return o->lowrank_rank > 0 || o->lowrank_energy > 0 || o->lowrank_error > 0;
    return o->level >= p->level;
}

static bool check_list(const char *list, const char *what, DiagList *diags)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        bool found = false;
        for (int i = 0; i < pass_count; i++)
            if (strlen(pass_table[i].name) == len && !strncmp(pass_table[i].name, p, len)) found = true;
        if (!found) {
            SrcLoc none = { 0, 0, 0, 0 };
            diag_error(diags, NULL, none, "%s names no pass `%.*s`; the passes are prune, fold, magnitude, "
                                          "fuse-attention, fuse-qkv, lowrank, sparse, memplan", what, (int)len, p);
            return false;
        }
        p = end ? end + 1 : NULL;
    }
    return true;
}

bool passes_check_names(const PassOptions *o, DiagList *diags)
{
    return check_list(o->only, "--passes", diags) && check_list(o->disabled, "--no-", diags);
}

/* Weights the code stores: dense matrices whole, compressed ones by their non-zeros (indices are
 * not parameters), the embeddings, biases. */
static long stored_params(const Model *m, const Graph *g)
{
    long p = (long)m->vocab_size * m->dim + (long)m->positions * m->dim;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        if (o->kind == G_EMBED && o->vals) p += o->nnz + o->pos_nnz - (long)m->vocab_size * m->dim - (long)m->positions * m->dim;
        if (o->kind != G_LINEAR) continue;
        p += o->vals ? o->nnz : (long)o->rows * o->cols;
        if (o->b) p += o->rows;
    }
    return p;
}

/* The weight arrays the generated code holds, each once however many ops read it (a tied
 * embedding and its output head, the repetitions of a shared block). */
typedef struct Arrays {
    const void **seen;
    int n, cap;
    Arena *arena;
    long bytes;
} Arrays;

static void array(Arrays *A, const void *p, size_t count)
{
    if (!p) return;
    for (int i = 0; i < A->n; i++)
        if (A->seen[i] == p) return;
    VEC_PUSH(A->arena, A->seen, A->n, A->cap, p);
    A->bytes += (long)(4 * count); /* floats and ints alike */
}

static void ffn_arrays(Arrays *A, const Ffn *f, size_t d)
{
    size_t h = (size_t)f->hidden;
    array(A, f->up, h * d);
    array(A, f->b_up, h);
    array(A, f->gate, h * d);
    array(A, f->b_gate, h);
    array(A, f->down, d * h);
    array(A, f->b_down, d);
}

/* "weight B" of --report: the bytes of those arrays, compressed matrices by their values and
 * indices (what the generated C's weight arrays hold). */
static long weight_bytes(Arena *arena, const Model *m, const Graph *g)
{
    Arrays A = { NULL, 0, 0, arena, 0 };
    size_t d = (size_t)m->dim;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        switch (o->kind) {
        case G_EMBED:
            if (o->vals) {
                array(&A, o->vals, 2 * (size_t)o->nnz + (size_t)m->vocab_size + 1);
                array(&A, o->pos_vals, 2 * (size_t)o->pos_nnz + (size_t)m->positions + 1);
            } else {
                array(&A, m->tok_emb, (size_t)m->vocab_size * d);
                array(&A, m->pos_emb, (size_t)m->positions * d);
            }
            break;
        case G_LINEAR:
            if (o->vals) array(&A, o->vals, 2 * (size_t)o->nnz + (size_t)o->rows + 1);
            else array(&A, o->w, (size_t)o->rows * o->cols);
            array(&A, o->b, (size_t)o->rows);
            break;
        case G_NORM:
            array(&A, o->norm->weight, d);
            array(&A, o->norm->bias, d);
            break;
        case G_MOE:
            array(&A, o->block->router, (size_t)o->block->experts * d);
            for (int e = 0; e < o->block->experts; e++) ffn_arrays(&A, &o->block->expert[e], d);
            break;
        default:
            break;
        }
    }
    return A.bytes;
}

static void report_row(Arena *arena, FILE *out, const char *after, const Model *m, const Graph *g)
{
    ModelStats s;
    model_stats(m, &s);
    if (!g || m->declared) fprintf(out, "  %-16s %12ld %12ld", after, s.params, s.nonzeros);
    else fprintf(out, "  %-16s %12ld %12ld", after, stored_params(m, g), s.nonzeros);
    if (g)
        fprintf(out, " %14.0f %12ld %12zu\n", graph_flops(g, m->positions), weight_bytes(arena, m, g), g->arena_floats * 4);
    else
        fprintf(out, " %14s %12s %12s\n", "-", "-", "-");
}

/* In debug builds (and so in the tests) the graph is verified after it is made and after every
 * pass: a pass that breaks it is an internal error naming the pass, not a wrong result later. */
static bool verified(PassContext *pc, const Graph *g, const char *after)
{
#ifdef NDEBUG
    (void)pc;
    (void)g;
    (void)after;
    return true;
#else
    char err[512];
    if (graph_verify(pc->arena, g, err, sizeof err)) return true;
    SrcLoc none = { 0, 0, 0, 0 };
    diag_error(pc->diags, NULL, none, "internal error: the graph of `%s` after %s is malformed: %s", g->model->name,
               after, err);
    return false;
#endif
}

Graph *passes_compile(PassContext *pc, Model *m)
{
    const PassOptions *o = pc->opts;
    FILE *r = o->report;
    if (r) {
        fprintf(r, "passes for `%s` (-O%d):\n  %-16s %12s %12s %14s %12s %12s\n", m->name, o->level, "after", "stored",
                "non-zero", "FLOPs/token", "weight B", "arena B");
        report_row(pc->arena, r, "lowering", m, NULL);
    }
    for (int i = 0; i < pass_count; i++) {
        const PassInfo *p = &pass_table[i];
        if (!p->model || !pass_enabled(p, o)) continue;
        if (!p->model(pc, m)) return NULL;
        if (r) report_row(pc->arena, r, p->name, m, NULL);
    }
    Graph *g = m->declared ? graph_from_declared(pc->arena, m) : graph_from_model(pc->arena, m);
    if (!verified(pc, g, "lowering")) return NULL;
    if (r) report_row(pc->arena, r, "graph", m, g);
    for (int i = 0; i < pass_count; i++) {
        const PassInfo *p = &pass_table[i];
        if (!p->graph || !pass_enabled(p, o)) continue;
        if (!p->graph(pc, g)) return NULL;
        if (!verified(pc, g, p->name)) return NULL;
        if (r) report_row(pc->arena, r, p->name, m, g);
    }
    return g;
}
