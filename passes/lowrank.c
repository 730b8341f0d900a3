/* lowrank.c: low-rank factorisation by truncated SVD (opt-in with --low-rank=rank:R | energy:E |
 * error:T). A dense linear op out = W x + b, W [rows][cols] = U S V^T, becomes two:
 *   t   = V_r^T x          W1 [r][cols], no bias   (tensor "<name>.lowrank")
 *   out = (U_r S_r) t + b  W2 [rows][r]
 * when that is cheaper: r (rows + cols) < rows cols, or below W's non-zeros when the sparse pass
 * will compress W (-O2; usual for RASP matrices). The rank r is a fixed R, or the smallest r
 * keeping the fraction E of sum s_i^2, or the smallest r whose relative Frobenius error
 * ||W - W_r|| / ||W|| = sqrt(sum_{i>r} s_i^2 / sum s_i^2) is at most T (Eckart-Young). In every
 * mode singular values below 1e-7 s_max are dropped (the numerical rank), so matrices of low rank
 * (RASP-compiled ones often are) factor without loss beyond float rounding.
 * Applies to: dense G_LINEAR ops (not those the sparse pass compressed); ops sharing one W (shared
 * blocks) share its factors. The SVD runs in double precision (LAPACKE dgesdd); the generated code
 * needs no LAPACK, the factors are plain weights.
 * Preserves: each matrix within the relative error logged for it (measured on the float factors). */
#include <math.h>
#include <string.h>

#include "passes.h"

#ifndef TFMC_HAVE_LAPACKE

bool pass_lowrank(PassContext *pc, Graph *g)
{
    (void)g;
    SrcLoc none = { 0, 0, 0, 0 };
    diag_error(pc->diags, NULL, none, "low-rank factorisation needs LAPACKE (liblapacke-dev)");
    diag_hint(pc->diags, "install liblapacke-dev and libopenblas-dev, then reconfigure the build "
                         "(meson setup --reconfigure); or leave out --low-rank");
    return false;
}

#else

#include <lapacke.h>

/* Singular values below this fraction of the largest are numerical noise. */
#define LOWRANK_NUMERICAL_RANK 1e-7

/* One factored matrix (several ops may use it). */
typedef struct Factors {
    const float *w;
    int rows, cols;
    const char *name;  /* the first op's output */
    int rank;          /* the rank chosen, 0 when the matrix stays dense */
    int numerical;     /* singular values above 1e-7 s_max */
    double error;      /* ||W - W2 W1|| / ||W|| with the float factors */
    float *first;      /* W1 = V_r^T [rank][cols] */
    float *second;     /* W2 = U_r S_r [rows][rank] */
    const char *why;   /* why it stays dense, or NULL */
} Factors;

typedef struct Scratch {
    double *a, *s, *u, *vt, *work;
    lapack_int *iwork;
} Scratch;

static void *scratch_alloc(const Arena *a, size_t bytes)
{
    return a->alloc->realloc(a->alloc->ud, NULL, bytes ? bytes : 1);
}

static void scratch_free(const Arena *a, Scratch *s)
{
    void *all[] = { s->a, s->s, s->u, s->vt, s->work, s->iwork };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) a->alloc->realloc(a->alloc->ud, all[i], 0);
    memset(s, 0, sizeof *s);
}

/* The rank the options ask for, given the singular values s[0..k) (descending). */
static int choose_rank(const PassOptions *o, const double *s, int k, int numerical)
{
    double total = 0;
    for (int i = 0; i < k; i++) total += s[i] * s[i];
    if (o->lowrank_rank > 0) return o->lowrank_rank < numerical ? o->lowrank_rank : numerical;
    if (o->lowrank_energy > 0) {
        double kept = 0;
        for (int r = 1; r <= numerical; r++) {
            kept += s[r - 1] * s[r - 1];
            if (kept >= o->lowrank_energy * total) return r;
        }
        return numerical;
    }
    /* by error: the tail sums from the smallest up, so small tails are accurate */
    double tail = 0;
    int r = k;
    while (r > 0 && sqrt((tail + s[r - 1] * s[r - 1]) / total) <= o->lowrank_error) {
        tail += s[r - 1] * s[r - 1];
        r--;
    }
    if (r < 1) r = 1;
    return r < numerical ? r : numerical;
}

/* The relative Frobenius error of second . first against w. */
static double factor_error(const Factors *f)
{
    double diff = 0, norm = 0;
    for (int i = 0; i < f->rows; i++)
        for (int c = 0; c < f->cols; c++) {
            double v = 0;
            for (int j = 0; j < f->rank; j++)
                v += (double)f->second[(size_t)i * f->rank + j] * f->first[(size_t)j * f->cols + c];
            double w = f->w[(size_t)i * f->cols + c];
            diff += (w - v) * (w - v);
            norm += w * w;
        }
    return norm > 0 ? sqrt(diff / norm) : 0;
}

/* The multiplications W costs without factoring: rows x cols, or its non-zeros when the sparse
 * pass will store it in compressed rows (its rule, passes/sparse.c: at most 40% non-zeros and
 * fewer floats than dense). RASP matrices are mostly zeros: there compressed rows usually win. */
static long baseline_cost(const PassContext *pc, const Factors *f)
{
    long dense = (long)f->rows * f->cols, nnz = 0;
    bool sparse = false;
    for (int i = 0; i < pass_count; i++)
        if (!strcmp(pass_table[i].name, "sparse")) sparse = pass_enabled(&pass_table[i], pc->opts);
    if (!sparse) return dense;
    for (long i = 0; i < dense; i++) nnz += f->w[i] != 0.0f;
    return 10 * nnz <= 4 * dense && 2 * nnz + f->rows + 1 < dense ? nnz : dense;
}

/* Factor f->w as the options ask. False on an allocation failure (a diagnostic is added). */
static bool factor(PassContext *pc, Factors *f)
{
    int m = f->rows, n = f->cols, k = m < n ? m : n;
    long baseline = baseline_cost(pc, f);
    if ((long)m + n >= baseline) {
        f->why = baseline < (long)m * n ? "compressed rows (the sparse pass) are cheaper" : "too small to save FLOPs";
        return true;
    }
    const Arena *a = pc->arena;
    Scratch S = { 0 };
    /* W row-major [m][n] is W^T column-major [n][m]: W^T = U S VT, so W = VT^T S U^T and
     * W1 = V_r^T holds columns of U, W2 = U_r S_r rows of VT^T. */
    S.a = scratch_alloc(a, sizeof(double) * (size_t)m * n);
    S.s = scratch_alloc(a, sizeof(double) * (size_t)k);
    S.u = scratch_alloc(a, sizeof(double) * (size_t)n * k);
    S.vt = scratch_alloc(a, sizeof(double) * (size_t)k * m);
    S.iwork = scratch_alloc(a, sizeof(lapack_int) * 8 * (size_t)k);
    SrcLoc none = { 0, 0, 0, 0 };
    if (!S.a || !S.s || !S.u || !S.vt || !S.iwork) {
        scratch_free(a, &S);
        diag_error(pc->diags, NULL, none, "out of memory factoring a [%d][%d] matrix", m, n);
        return false;
    }
    for (size_t i = 0; i < (size_t)m * n; i++) S.a[i] = f->w[i];
    double query = 0;
    lapack_int info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', n, m, S.a, n, S.s, S.u, n, S.vt, k, &query, -1,
                                          S.iwork);
    size_t lwork = info == 0 && query >= 1 ? (size_t)query : 1;
    S.work = scratch_alloc(a, sizeof(double) * lwork);
    if (!S.work) {
        scratch_free(a, &S);
        diag_error(pc->diags, NULL, none, "out of memory factoring a [%d][%d] matrix", m, n);
        return false;
    }
    info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, 'S', n, m, S.a, n, S.s, S.u, n, S.vt, k, S.work, (lapack_int)lwork,
                               S.iwork);
    if (info != 0 || S.s[0] <= 0) {
        f->why = info != 0 ? "the SVD did not converge" : "all zeros";
        scratch_free(a, &S);
        return true;
    }
    int numerical = 0;
    while (numerical < k && S.s[numerical] >= LOWRANK_NUMERICAL_RANK * S.s[0]) numerical++;
    f->numerical = numerical;
    int r = choose_rank(pc->opts, S.s, k, numerical);
    f->rank = r;
    if ((long)r * (m + n) >= baseline) {
        f->why = baseline < (long)m * n ? "compressed rows (the sparse pass) are cheaper" : "the rank saves no FLOPs";
        scratch_free(a, &S);
        return true;
    }
    f->first = ARENA_ARRAY(pc->arena, float, (size_t)r * n);
    f->second = ARENA_ARRAY(pc->arena, float, (size_t)m * r);
    for (int j = 0; j < r; j++)
        for (int c = 0; c < n; c++) f->first[(size_t)j * n + c] = (float)S.u[(size_t)j * n + c];
    for (int i = 0; i < m; i++)
        for (int j = 0; j < r; j++) f->second[(size_t)i * r + j] = (float)(S.s[j] * S.vt[(size_t)i * k + j]);
    scratch_free(a, &S);
    f->error = factor_error(f);
    return true;
}

/* Replace every op that has factors by its two linears, in place in the op order. */
static void rewrite(PassContext *pc, Graph *g, Factors **plan)
{
    Arena *a = pc->arena;
    GraphOp *old = g->ops;
    int nold = g->nops;
    g->ops = NULL;
    g->nops = g->cap_ops = 0;
    for (int i = 0; i < nold; i++) {
        const Factors *f = plan[i];
        if (!f) {
            VEC_PUSH(a, g->ops, g->nops, g->cap_ops, old[i]);
            continue;
        }
        const char *name = g->tensors[old[i].out].name;
        const char *wname = g->consts[old[i].consts[0]].name;
        int t = graph_add_linear_named(a, g, old[i].in[0], f->first, NULL, f->rank, f->cols,
                                       arena_printf(a, "%s.lowrank", name), arena_printf(a, "%s.first", wname), NULL);
        int k = graph_add_op(a, g, G_LINEAR, old[i].out, t, -1, old[i].comment);
        g->ops[k].consts[0] = graph_add_const(a, g, f->second, f->rows, f->rank, arena_printf(a, "%s.second", wname));
        g->ops[k].consts[1] = old[i].consts[1];
        g->ops[k - 1].layer = g->ops[k].layer = old[i].layer;
        g->ops[k - 1].head = g->ops[k].head = old[i].head; /* both factors of the logits */
    }
}

bool pass_lowrank(PassContext *pc, Graph *g)
{
    int n = g->positions;
    double flops_before = graph_flops(g, n);
    Factors *done = ARENA_ARRAY(pc->arena, Factors, g->nops ? g->nops : 1);
    Factors **plan = ARENA_ARRAY(pc->arena, Factors *, g->nops ? g->nops : 1);
    int ndone = 0, matrices = 0, factored = 0;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        const GraphConst *w = graph_linear_w(g, o);
        if (o->kind != G_LINEAR || w->vals) continue;
        matrices++;
        Factors *f = NULL;
        for (int j = 0; j < ndone && !f; j++)
            if (done[j].w == w->data && done[j].rows == w->rows && done[j].cols == w->cols) f = &done[j];
        const char *name = g->tensors[o->out].name;
        if (f) { /* shared weights: the same factors */
            if (pc->log) fprintf(pc->log, "lowrank: %-20s [%d][%d] shares the weights of `%s`\n", name, w->rows,
                                 w->cols, f->name);
        } else {
            f = &done[ndone++];
            memset(f, 0, sizeof *f);
            f->w = w->data;
            f->rows = w->rows;
            f->cols = w->cols;
            f->name = name;
            if (!factor(pc, f)) return false;
            if (pc->log && f->why && f->numerical > 0)
                fprintf(pc->log, "lowrank: %-20s [%d][%d] stays dense: %s (numerical rank %d)\n", name, w->rows,
                        w->cols, f->why, f->numerical);
            else if (pc->log && f->why)
                fprintf(pc->log, "lowrank: %-20s [%d][%d] stays dense: %s\n", name, w->rows, w->cols, f->why);
            else if (pc->log)
                fprintf(pc->log, "lowrank: %-20s [%d][%d] rank %d (numerical %d), relative error %.6g, "
                                 "FLOPs %ld -> %ld\n", name, w->rows, w->cols, f->rank, f->numerical, f->error,
                        2L * w->rows * w->cols, 2L * f->rank * (w->rows + w->cols));
        }
        if (!f->why) {
            plan[i] = f;
            factored++;
        }
    }
    if (factored) rewrite(pc, g, plan);
    graph_plan(g);
    if (pc->log)
        fprintf(pc->log, "lowrank: %d of %d matrices factored, FLOPs/position at n = %d: %.0f -> %.0f\n", factored,
                matrices, n, flops_before, graph_flops(g, n));
    return true;
}

#endif
