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
    { "quantize", 99, NULL, pass_quantize, "weight-only int8 weights of the blocks' linear ops (opt-in)" },
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
    if (!strcmp(p->name, "quantize")) return o->quantize_bits > 0;
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
                                          "fuse-attention, fuse-qkv, lowrank, quantize, sparse, memplan", what, (int)len, p);
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

/* Weights the code stores: every constant an op uses, once (a tied embedding and its output
 * head, the repetitions of a shared layer), dense ones whole, compressed ones by their non-zeros
 * (indices are not parameters). */
static long stored_params(const Graph *g)
{
    long p = 0;
    for (int c = 0; c < g->nconsts; c++) {
        const GraphConst *k = &g->consts[c];
        if (graph_const_used(g, c)) p += k->vals ? k->nnz : (long)k->rows * (k->cols ? k->cols : 1);
    }
    return p;
}

/* "weight B" of --report: the bytes of the constants' arrays (what the generated C's weight
 * arrays hold), compressed ones by their values and indices. */
static long weight_bytes(const Graph *g)
{
    long bytes = 0;
    for (int c = 0; c < g->nconsts; c++) {
        const GraphConst *k = &g->consts[c];
        if (!graph_const_used(g, c)) continue;
        if (k->q8) { /* int8 values and their float scales */
            bytes += (long)k->rows * k->cols + 4L * k->rows * graph_q8_groups(k);
            continue;
        }
        bytes += 4 * (k->vals ? 2L * k->nnz + k->rows + 1 : (long)k->rows * (k->cols ? k->cols : 1)); /* floats and ints */
    }
    return bytes;
}

static void report_row(FILE *out, const char *after, const Model *m, const Graph *g)
{
    ModelStats s;
    model_stats(m, &s);
    if (!g || m->declared) fprintf(out, "  %-16s %12ld %12ld", after, s.params, s.nonzeros);
    else fprintf(out, "  %-16s %12ld %12ld", after, stored_params(g), s.nonzeros);
    if (g)
        fprintf(out, " %14.0f %12ld %12zu\n", graph_flops(g, m->positions), weight_bytes(g), g->arena_floats * 4);
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
    diag_error(pc->diags, NULL, none, "internal error: the graph of `%s` after %s is malformed: %s", g->name,
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
        report_row(r, "lowering", m, NULL);
    }
    for (int i = 0; i < pass_count; i++) {
        const PassInfo *p = &pass_table[i];
        if (!p->model || !pass_enabled(p, o)) continue;
        if (!p->model(pc, m)) return NULL;
        if (r) report_row(r, p->name, m, NULL);
    }
    Graph *g = m->declared ? graph_from_declared(pc->arena, m) : graph_from_model(pc->arena, m);
    if (!verified(pc, g, "lowering")) return NULL;
    if (r) report_row(r, "graph", m, g);
    for (int i = 0; i < pass_count; i++) {
        const PassInfo *p = &pass_table[i];
        if (!p->graph || !pass_enabled(p, o)) continue;
        if (!p->graph(pc, g)) return NULL;
        if (!verified(pc, g, p->name)) return NULL;
        if (r) report_row(r, p->name, m, g);
    }
    return g;
}
