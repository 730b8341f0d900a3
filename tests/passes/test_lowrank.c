/* test_lowrank.c: the low-rank pass on hand-built graphs (exactly low-rank matrices factor
 * without loss, the rank follows --low-rank=rank|energy|error, FLOPs drop with the rank, the
 * logged errors are the real ones, shared weights share factors) and on a RASP program, which
 * must still equal the interpreter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes_test.h"

/* A graph of linear ops only, over an input tensor `x` (no embedding: tests write x themselves). */
static Graph *new_graph(Arena *a, int positions, int max_cols)
{
    Model *m = ARENA_NEW(a, Model);
    m->name = "lowrank_test";
    m->dim = max_cols;
    m->positions = m->max_len = positions;
    return graph_new(a, m);
}

/* A linear op's matrix: its shape, values and bias. */
static int R(const Graph *g, const GraphOp *o) { return graph_linear_w(g, o)->rows; }
static int C(const Graph *g, const GraphOp *o) { return graph_linear_w(g, o)->cols; }
static const float *Wd(const Graph *g, const GraphOp *o) { return graph_linear_w(g, o)->data; }
static const float *Bd(const Graph *g, const GraphOp *o) { return o->consts[1] >= 0 ? g->consts[o->consts[1]].data : NULL; }

static float *random_low_rank(Arena *a, uint64_t *s, int rows, int cols, int rank, double noise)
{
    float *w = ARENA_ARRAY(a, float, (size_t)rows * cols);
    double *l = calloc((size_t)rows * rank, sizeof(double)), *r = calloc((size_t)rank * cols, sizeof(double));
    for (int i = 0; i < rows * rank; i++) l[i] = test_gaussian(s);
    for (int i = 0; i < rank * cols; i++) r[i] = test_gaussian(s);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double v = 0;
            for (int k = 0; k < rank; k++) v += l[i * rank + k] * r[k * cols + j];
            w[(size_t)i * cols + j] = (float)(v + noise * test_gaussian(s));
        }
    free(l);
    free(r);
    return w;
}

/* ||W - second . first|| / ||W|| for a factored pair of ops. */
static double factored_error(const Graph *g, const float *w, const GraphOp *first, const GraphOp *second)
{
    double diff = 0, norm = 0;
    for (int i = 0; i < R(g, second); i++)
        for (int c = 0; c < C(g, first); c++) {
            double v = 0;
            for (int k = 0; k < R(g, first); k++)
                v += (double)Wd(g, second)[(size_t)i * C(g, second) + k] * Wd(g, first)[(size_t)k * C(g, first) + c];
            double x = w[(size_t)i * C(g, first) + c];
            diff += (x - v) * (x - v);
            norm += x * x;
        }
    return sqrt(diff / norm);
}

/* The rank and error the pass logged for tensor `name`; false when it logged none. */
static bool logged(const char *log, const char *name, int *rank, double *error)
{
    for (const char *line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char got[64];
        int rows, cols, numerical;
        if (sscanf(line, "lowrank: %63s [%d][%d] rank %d (numerical %d), relative error %lf", got, &rows, &cols, rank,
                   &numerical, error) == 6 && !strcmp(got, name))
            return true;
    }
    return false;
}

/* Run g on n random rows of x (cols wide); the output rows land in out. */
static void run_graph(Graph *g, int x, int n, const float *input, float *out)
{
    float *arena = calloc(g->arena_floats, sizeof(float));
    int cols = g->tensors[x].cols, rows = g->tensors[g->output].cols;
    memcpy(arena + g->tensors[x].offset, input, sizeof(float) * (size_t)n * cols);
    Arena a;
    arena_init(&a, &libc_allocator, NULL);
    ibackend_run(ibackend_new(&a, lower_graph(&a, g)), NULL, n, 0, arena, n, NULL);
    arena_free(&a);
    memcpy(out, arena + g->tensors[g->output].offset, sizeof(float) * (size_t)n * rows);
    free(arena);
}

/* out = W in + b, in double. */
static void dense(const float *w, const float *b, int rows, int cols, int n, const double *in, double *out)
{
    for (int p = 0; p < n; p++)
        for (int i = 0; i < rows; i++) {
            double v = b ? b[i] : 0;
            for (int c = 0; c < cols; c++) v += (double)w[(size_t)i * cols + c] * in[(size_t)p * cols + c];
            out[(size_t)p * rows + i] = v;
        }
}

#ifdef TFMC_HAVE_LAPACKE

/* An exactly rank-2 20x30 matrix (small integers: exact in float) factors at rank 2 in every mode,
 * within 1e-6. */
static void exact_rank2(int mode)
{
    enum { ROWS = 20, COLS = 30, N = 5 };
    {
        Fixture fx;
        fixture_init(&fx);
        if (setjmp(fx.oom)) {
            CHECK(false, "out of memory");
            fixture_free(&fx);
            return;
        }
        if (mode == 0) fx.opts.lowrank_rank = 10;
        if (mode == 1) fx.opts.lowrank_error = 1e-6;
        if (mode == 2) fx.opts.lowrank_energy = 0.999999999;
        uint64_t s = 42;
        float *w = ARENA_ARRAY(&fx.arena, float, ROWS * COLS), *b = ARENA_ARRAY(&fx.arena, float, ROWS);
        int a1[ROWS], a2[ROWS], b1[COLS], b2[COLS];
        for (int i = 0; i < ROWS; i++) a1[i] = (int)(test_uniform(&s) * 7) - 3, a2[i] = (int)(test_uniform(&s) * 7) - 3;
        for (int j = 0; j < COLS; j++) b1[j] = (int)(test_uniform(&s) * 7) - 3, b2[j] = (int)(test_uniform(&s) * 7) - 3;
        for (int i = 0; i < ROWS; i++) {
            b[i] = (float)test_gaussian(&s);
            for (int j = 0; j < COLS; j++) w[i * COLS + j] = (float)(a1[i] * b1[j] + a2[i] * b2[j]);
        }
        Graph *g = new_graph(&fx.arena, N, COLS);
        int x = graph_add_tensor(&fx.arena, g, COLS, false, "x");
        int y = graph_add_linear(&fx.arena, g, x, w, b, ROWS, COLS, "y");
        g->output = y;
        graph_plan(g);
        CHECK(graph_flops(g, N) == 2.0 * ROWS * COLS, "dense FLOPs %g", graph_flops(g, N));

        CHECK(pass_lowrank(&fx.pc, g), "mode %d: the pass fails", mode);
        const char *log = fixture_log(&fx);
        CHECK(g->nops == 2, "mode %d: %d ops after the pass, want 2\n%s", mode, g->nops, log);
        if (g->nops != 2) {
            fixture_free(&fx);
            return;
        }
        const GraphOp *o1 = &g->ops[0], *o2 = &g->ops[1];
        CHECK(o1->kind == G_LINEAR && R(g, o1) == 2 && C(g, o1) == COLS && !Bd(g, o1) && o1->in[0] == x,
              "mode %d: first factor [%d][%d]", mode, R(g, o1), C(g, o1));
        CHECK(!strcmp(g->tensors[o1->out].name, "y.lowrank"), "intermediate named `%s`", g->tensors[o1->out].name);
        CHECK(o2->kind == G_LINEAR && R(g, o2) == ROWS && C(g, o2) == 2 && Bd(g, o2) == b && o2->in[0] == o1->out &&
                  o2->out == y, "mode %d: second factor [%d][%d]", mode, R(g, o2), C(g, o2));
        CHECK(graph_flops(g, N) == 2.0 * 2 * (ROWS + COLS), "mode %d: FLOPs %g after", mode, graph_flops(g, N));
        int rank = 0;
        double reported = -1, error = factored_error(g, w, o1, o2);
        CHECK(logged(log, "y", &rank, &reported) && rank == 2, "mode %d: log says rank %d:\n%s", mode, rank, log);
        CHECK(error <= 1e-6, "mode %d: relative error %g", mode, error);
        CHECK(fabs(reported - error) <= 1e-8, "mode %d: logged error %g, recomputed %g", mode, reported, error);

        /* the factored graph computes W x + b within 1e-6 */
        float in[N * COLS], out[N * ROWS];
        double din[N * COLS], want[N * ROWS], worst = 0, scale = 0;
        for (int i = 0; i < N * COLS; i++) din[i] = in[i] = (float)test_gaussian(&s);
        run_graph(g, x, N, in, out);
        dense(w, b, ROWS, COLS, N, din, want);
        for (int i = 0; i < N * ROWS; i++) {
            worst = fmax(worst, fabs(out[i] - want[i]));
            scale = fmax(scale, fabs(want[i]));
        }
        CHECK(worst <= 1e-6 * scale, "mode %d: output error %g of %g", mode, worst, scale);
        fixture_free(&fx);
    }
}

static void test_exact_rank2(void)
{
    for (int mode = 0; mode < 3; mode++) exact_rank2(mode);
}

/* A chain of rank-4, -6 and -3 matrices plus noise of 1e-5: at error 1e-3 each factors at its
 * rank, and the FLOPs drop to 2 r (rows + cols) per matrix. */
static void test_low_rank_plus_noise(void)
{
    enum { N = 4, LAYERS = 3 };
    static const int rows[LAYERS] = { 64, 40, 24 }, cols[LAYERS] = { 48, 64, 40 }, ranks[LAYERS] = { 4, 6, 3 };
    static const char *const names[LAYERS] = { "h1", "h2", "out" };
    Fixture fx;
    fixture_init(&fx);
    if (setjmp(fx.oom)) {
        CHECK(false, "out of memory");
        fixture_free(&fx);
        return;
    }
    fx.opts.lowrank_error = 1e-3;
    uint64_t s = 7;
    Graph *g = new_graph(&fx.arena, N, 64);
    float *w[LAYERS];
    int x = graph_add_tensor(&fx.arena, g, cols[0], false, "x"), t = x;
    double before = 0, want_after = 0;
    for (int l = 0; l < LAYERS; l++) {
        w[l] = random_low_rank(&fx.arena, &s, rows[l], cols[l], ranks[l], 1e-5);
        t = graph_add_linear(&fx.arena, g, t, w[l], NULL, rows[l], cols[l], names[l]);
        before += 2.0 * rows[l] * cols[l];
        want_after += 2.0 * ranks[l] * (rows[l] + cols[l]);
    }
    g->output = t;
    graph_plan(g);
    CHECK(graph_flops(g, N) == before, "FLOPs before %g, want %g", graph_flops(g, N), before);

    CHECK(pass_lowrank(&fx.pc, g), "the pass fails");
    const char *log = fixture_log(&fx);
    CHECK(g->nops == 2 * LAYERS, "%d ops after the pass:\n%s", g->nops, log);
    double after = graph_flops(g, N);
    CHECK(after == want_after, "FLOPs after %g, want %g (before %g)", after, want_after, before);
    printf("\n    low rank + noise: FLOPs/position %g -> %g (%.1fx)", before, after, before / after);
    for (int l = 0; l < LAYERS && g->nops == 2 * LAYERS; l++) {
        const GraphOp *o1 = &g->ops[2 * l], *o2 = &g->ops[2 * l + 1];
        int rank = 0;
        double reported = -1, error = factored_error(g, w[l], o1, o2);
        CHECK(R(g, o1) == ranks[l] && C(g, o2) == ranks[l], "%s: rank %d, want %d", names[l], R(g, o1), ranks[l]);
        CHECK(logged(log, names[l], &rank, &reported) && rank == ranks[l], "%s: logged rank %d:\n%s", names[l], rank, log);
        CHECK(error <= 1e-3, "%s: relative error %g", names[l], error);
        CHECK(fabs(reported - error) <= 1e-5 * error + 1e-12, "%s: logged error %g, recomputed %g", names[l], reported,
              error);
        printf("\n    %s [%d][%d]: rank %d, relative error %.3g", names[l], rows[l], cols[l], rank, error);
    }

    /* the whole chain stays within a few 1e-3 of the dense one */
    float in[N * 48], out[N * 24];
    double a[N * 64], b[N * 64], worst = 0, scale = 0;
    for (int i = 0; i < N * 48; i++) a[i] = in[i] = (float)test_gaussian(&s);
    run_graph(g, x, N, in, out);
    for (int l = 0; l < LAYERS; l++) {
        dense(w[l], NULL, rows[l], cols[l], N, a, b);
        memcpy(a, b, sizeof(double) * (size_t)N * rows[l]);
    }
    for (int i = 0; i < N * 24; i++) {
        worst = fmax(worst, fabs(out[i] - a[i]));
        scale = fmax(scale, fabs(a[i]));
    }
    CHECK(worst <= 3e-3 * scale, "chain output error %g of %g", worst, scale);
    fixture_free(&fx);
}

/* Known singular values (a scaled partial permutation): the rank each mode picks and the error
 * it logs follow Eckart-Young exactly. */
enum { SV_ROWS = 20, SV_COLS = 30 };

static void rank_selection(int mode, const double *sv, double total)
{
    enum { ROWS = SV_ROWS, COLS = SV_COLS };
    {
        Fixture fx;
        fixture_init(&fx);
        if (setjmp(fx.oom)) {
            CHECK(false, "out of memory");
            fixture_free(&fx);
            return;
        }
        int want = 0;
        double kept = 0;
        if (mode == 0) {
            fx.opts.lowrank_rank = want = 3;
        } else if (mode == 1) {
            fx.opts.lowrank_energy = 0.99;
            while (kept < 0.99 * total) kept += sv[want] * sv[want], want++;
        } else {
            fx.opts.lowrank_error = 0.05;
            double tail = total;
            while (sqrt(tail / total) > 0.05) tail -= sv[want] * sv[want], want++;
        }
        double tail = 0;
        for (int i = want; i < ROWS; i++) tail += sv[i] * sv[i];
        float *w = ARENA_ARRAY(&fx.arena, float, ROWS * COLS);
        for (int i = 0; i < ROWS; i++) w[i * COLS + (7 * i) % COLS] = (float)((i % 2 ? -1 : 1) * sv[i]);
        Graph *g = new_graph(&fx.arena, 2, COLS);
        int x = graph_add_tensor(&fx.arena, g, COLS, false, "x");
        g->output = graph_add_linear(&fx.arena, g, x, w, NULL, ROWS, COLS, "y");
        graph_plan(g);
        CHECK(pass_lowrank(&fx.pc, g), "the pass fails");
        int rank = 0;
        double reported = -1;
        const char *log = fixture_log(&fx);
        CHECK(logged(log, "y", &rank, &reported) && rank == want, "mode %d: rank %d, want %d\n%s", mode, rank, want, log);
        CHECK(fabs(reported - sqrt(tail / total)) <= 1e-5 * sqrt(tail / total), "mode %d: error %g, Eckart-Young %g",
              mode, reported, sqrt(tail / total));
        fixture_free(&fx);
    }
}

static void test_rank_selection(void)
{
    double sv[SV_ROWS], total = 0;
    for (int i = 0; i < SV_ROWS; i++) {
        sv[i] = 10 * pow(0.6, i);
        total += sv[i] * sv[i];
    }
    for (int mode = 0; mode < 3; mode++) rank_selection(mode, sv, total);
}

/* Full-rank and tiny matrices stay dense; two ops of one W share its factors. */
static void test_dense_and_shared(void)
{
    Fixture fx;
    fixture_init(&fx);
    if (setjmp(fx.oom)) {
        CHECK(false, "out of memory");
        fixture_free(&fx);
        return;
    }
    fx.opts.lowrank_error = 1e-3;
    uint64_t s = 3;
    Graph *g = new_graph(&fx.arena, 2, 30);
    int x = graph_add_tensor(&fx.arena, g, 30, false, "x");
    float *full = random_low_rank(&fx.arena, &s, 20, 30, 20, 0);
    float *low = random_low_rank(&fx.arena, &s, 30, 30, 2, 0);
    float *row = random_low_rank(&fx.arena, &s, 1, 20, 1, 0);
    int a = graph_add_linear(&fx.arena, g, x, low, NULL, 30, 30, "a");
    int b = graph_add_linear(&fx.arena, g, a, low, NULL, 30, 30, "b");
    int c = graph_add_linear(&fx.arena, g, b, full, NULL, 20, 30, "c");
    g->output = graph_add_linear(&fx.arena, g, c, row, NULL, 1, 20, "d");
    graph_plan(g);
    CHECK(pass_lowrank(&fx.pc, g), "the pass fails");
    const char *log = fixture_log(&fx);
    CHECK(g->nops == 6, "%d ops, want 6:\n%s", g->nops, log);
    if (g->nops == 6) {
        CHECK(g->ops[0].consts[0] == g->ops[2].consts[0] && g->ops[1].consts[0] == g->ops[3].consts[0],
              "shared weights, separate factors");
        CHECK(Wd(g, &g->ops[4]) == full && Wd(g, &g->ops[5]) == row, "the full-rank and 1-row matrices changed");
    }
    CHECK(strstr(log, "lowrank: b") && strstr(log, "shares the weights of `a`"), "no sharing logged:\n%s", log);
    CHECK(strstr(log, "stays dense: the rank saves no FLOPs (numerical rank 20)"), "full rank not logged:\n%s", log);
    CHECK(strstr(log, "stays dense: too small to save FLOPs"), "1-row matrix not logged:\n%s", log);
    fixture_free(&fx);
}

/* A rank-2 matrix with 24 non-zeros of 600: factored without the sparse pass (100 < 600
 * multiplications), left to it when it runs (-O1 and up: 24 non-zeros beat 100). */
static void sparse_baseline(bool sparse)
{
    Fixture fx;
    fixture_init(&fx);
    if (setjmp(fx.oom)) {
        CHECK(false, "out of memory");
        fixture_free(&fx);
        return;
    }
    fx.opts.disabled = sparse ? NULL : "sparse";
    fx.opts.lowrank_error = 1e-6;
    float *w = ARENA_ARRAY(&fx.arena, float, 20 * 30);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            w[(2 * i) * 30 + 3 * j] += (float)(i + 1) * (float)(j + 2);
            w[(2 * i + 7) * 30 + 3 * j + 1] += (float)(i - 3) * (float)(j + 1);
        }
    Graph *g = new_graph(&fx.arena, 2, 30);
    int x = graph_add_tensor(&fx.arena, g, 30, false, "x");
    g->output = graph_add_linear(&fx.arena, g, x, w, NULL, 20, 30, "y");
    graph_plan(g);
    CHECK(pass_lowrank(&fx.pc, g), "the pass fails");
    const char *log = fixture_log(&fx);
    if (sparse)
        CHECK(g->nops == 1 && strstr(log, "compressed rows (the sparse pass) are cheaper"), "with sparse: factored:\n%s", log);
    else
        CHECK(g->nops == 2 && R(g, &g->ops[0]) == 2, "without sparse: not factored at rank 2:\n%s", log);
    fixture_free(&fx);
}

static void test_sparse_baseline(void)
{
    sparse_baseline(false);
    sparse_baseline(true);
}

static const char reverse_src[] =
    "def make_reverse(sop) {\n"
    "  opp_idx = length - indices - 1;\n"
    "  return aggregate(select(indices, opp_idx, ==), sop);\n"
    "}\n"
    "rasp reverse {\n"
    "  vocab {\"a\", \"b\", \"c\", \"d\", \"e\"};\n"
    "  max_len 5;\n"
    "  return make_reverse(tokens);\n"
    "}\n";

/* RASP matrices have low numerical rank: factored at error 1e-6 the program still equals the
 * interpreter on every input, at -O1 without the sparse pass and at -O2 (with it). */
static void test_rasp_verify(void)
{
    for (int level = 1; level <= 2; level++) {
        char *log = NULL;
        size_t len = 0;
        FILE *report = open_memstream(&log, &len);
        TfmcContext *ctx = tfmc_context_new(NULL);
        TfmcOptions o = { 0 };
        o.opt_level = level;
        o.disabled = level == 1 ? "sparse" : NULL;
        o.lowrank_error = 1e-6;
        o.report = report;
        tfmc_set_options(ctx, &o);
        const TfmcProgram *p = NULL;
        TfmcVerifyOptions vo = { 0, 100000, 1 };
        TfmcVerifyResult r = { 0 };
        bool ok = tfmc_load_string(ctx, "reverse.tfm", reverse_src, strlen(reverse_src)) == TFMC_OK &&
                  tfmc_find_program(ctx, "reverse", &p) == TFMC_OK && tfmc_verify(ctx, p, &vo, &r, stderr) == TFMC_OK;
        if (!ok) tfmc_print_diagnostics(ctx, stderr);
        fflush(report);
        int factored = 0, matrices = 0;
        const char *sum = strstr(log, "lowrank: ");
        while (sum && sscanf(sum, "lowrank: %d of %d matrices factored", &factored, &matrices) != 2)
            sum = strstr(sum + 1, "lowrank: ");
        CHECK(ok && r.equal && r.exhaustive, "-O%d: reverse differs from the interpreter after low-rank", level);
        /* with the sparse pass, compressed rows are cheaper than any factors of these matrices */
        CHECK(level == 2 ? factored == 0 : factored > 0, "-O%d: %d matrices factored:\n%s", level, factored, log);
        printf("\n    reverse -O%d: %d of %d matrices factored, %ld inputs equal", level, factored, matrices, r.checked);
        tfmc_context_free(ctx);
        fclose(report);
        free(log);
    }
}

void add_lowrank_tests(CU_pSuite suite)
{
    CU_add_test(suite, "an exactly rank-2 matrix factors losslessly", test_exact_rank2);
    CU_add_test(suite, "low rank + noise: ranks and FLOPs", test_low_rank_plus_noise);
    CU_add_test(suite, "rank by fixed rank, energy and error", test_rank_selection);
    CU_add_test(suite, "full-rank and tiny stay dense; shared weights share factors", test_dense_and_shared);
    CU_add_test(suite, "at -O2 sparse matrices are left to the sparse pass", test_sparse_baseline);
    CU_add_test(suite, "a RASP program still equals the interpreter", test_rasp_verify);
}

#else

/* Without LAPACKE the pass says what is missing. */
static void test_needs_lapacke(void)
{
    Fixture fx;
    fixture_init(&fx);
    fx.opts.lowrank_rank = 2;
    Graph *g = new_graph(&fx.arena, 2, 4);
    CHECK(!pass_lowrank(&fx.pc, g), "the pass succeeds without LAPACKE");
    CHECK(fx.diags.n == 1 && strstr(fx.diags.items[0].message, "needs LAPACKE (liblapacke-dev)"), "no clear error");
    (void)run_graph;
    (void)dense;
    (void)logged;
    (void)factored_error;
    (void)random_low_rank;
    fixture_free(&fx);
}

void add_lowrank_tests(CU_pSuite suite)
{
    CU_add_test(suite, "without LAPACKE: a clear error", test_needs_lapacke);
}

#endif
