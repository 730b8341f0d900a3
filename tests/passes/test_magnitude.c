/* test_magnitude.c: the magnitude pass through the public API. Each model is compiled twice, as
 * is and pruned, and the test compares the two: threshold pruning zeros exactly the weights below
 * it, sparsity 0.5 half of each matrix (the smallest), structured pruning removes the heads and
 * units of smallest norm and keeps the others as they were; nothing else changes. The error the
 * pass logs is recomputed here with sessions (declared models) and tfmc_run (RASP) on the same
 * probe inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes_test.h"

static const char models_src[] =
    "model tiny {\n"
    "  vocab 32; max_len 8; dim 16;\n"
    "  init random(seed 11);\n"
    "  embed token, position learned;\n"
    "  block x 2 {\n"
    "    attention heads 4, causal, norm layernorm(eps 1e-5);\n"
    "    mlp hidden 32, act gelu, norm layernorm(eps 1e-5);\n"
    "  }\n"
    "  norm layernorm(eps 1e-5);\n"
    "  unembed separate;\n"
    "}\n"
    "model gated {\n"
    "  vocab 32; max_len 8; dim 16;\n"
    "  init random(seed 12);\n"
    "  embed token, position rope(base 10000);\n"
    "  block x 1 {\n"
    "    attention heads 4, kv_heads 2, causal, norm rmsnorm(eps 1e-6), bias false;\n"
    "    moe experts 3, top 2, hidden 16, act swiglu, norm rmsnorm(eps 1e-6), bias false;\n"
    "  }\n"
    "  block shared x 2 {\n"
    "    attention heads 2, causal, norm rmsnorm(eps 1e-6);\n"
    "    mlp hidden 24, act swiglu, norm rmsnorm(eps 1e-6);\n"
    "  }\n"
    "  norm rmsnorm(eps 1e-6);\n"
    "  unembed tied;\n"
    "}\n"
    "def make_reverse(sop) {\n"
    "  opp_idx = length - indices - 1;\n"
    "  return aggregate(select(indices, opp_idx, ==), sop);\n"
    "}\n"
    "rasp reverse {\n"
    "  vocab {\"a\", \"b\", \"c\", \"d\", \"e\"};\n"
    "  max_len 5;\n"
    "  return make_reverse(tokens);\n"
    "}\n";

/* A program compiled with options; the --report stream (where the pass logs) kept in memory. */
typedef struct Compiled {
    TfmcContext *ctx;
    const TfmcProgram *p;
    FILE *report;
    char *log;
    size_t len;
} Compiled;

static bool compile(Compiled *c, const char *name, double threshold, double sparsity, bool structured)
{
    memset(c, 0, sizeof *c);
    c->report = open_memstream(&c->log, &c->len);
    c->ctx = tfmc_context_new(NULL);
    TfmcOptions o = { 0 };
    o.opt_level = 1;
    o.report = c->report;
    o.prune_threshold = threshold;
    o.prune_sparsity = sparsity;
    o.prune_structured = structured;
    tfmc_set_options(c->ctx, &o);
    bool ok = tfmc_load_string(c->ctx, "models.tfm", models_src, strlen(models_src)) == TFMC_OK &&
              tfmc_find_program(c->ctx, name, &c->p) == TFMC_OK && tfmc_compile(c->ctx, c->p) == TFMC_OK;
    if (!ok) tfmc_print_diagnostics(c->ctx, stderr);
    fflush(c->report);
    CHECK(ok, "`%s` does not compile", name);
    return ok;
}

static void release(Compiled *c)
{
    tfmc_context_free(c->ctx);
    fclose(c->report);
    free(c->log);
}

/* The program as is and pruned; both are compiled (and must be released) even when one fails. */
static bool compile_pair(Compiled *ref, Compiled *cut, const char *name, double threshold, double sparsity,
                         bool structured)
{
    bool a = compile(ref, name, 0, 0, false);
    bool b = compile(cut, name, threshold, sparsity, structured);
    return a && b;
}

/* ------------------------------------------------- the model's matrices */

typedef struct Matrix {
    float *w;
    size_t n;
} Matrix;

enum { MAX_MATRICES = 64 };

/* The matrices the pass prunes, in a fixed order (shared blocks once). */
static int matrices(const Model *m, Matrix *out)
{
    int k = 0;
    size_t d = (size_t)m->dim;
#define ADD(p, size) do { out[k].w = (p); out[k].n = (size); k++; } while (0)
    for (int bi = 0; bi < m->nblocks; bi++) {
        const ModelBlock *b = &m->blocks[bi];
        if (b->shared_with >= 0) continue;
        if (b->kind == BLOCK_MHA) {
            size_t q = (size_t)b->mha_heads * b->head_dim, kv = (size_t)b->kv_heads * b->head_dim;
            ADD(b->wq, q * d);
            ADD(b->wk, kv * d);
            ADD(b->wv, kv * d);
            ADD(b->wo, q * d);
        } else {
            int nf = b->kind == BLOCK_FFN ? 1 : b->experts;
            if (b->kind == BLOCK_MOE) ADD(b->router, (size_t)b->experts * d);
            for (int e = 0; e < nf; e++) {
                const Ffn *f = b->kind == BLOCK_FFN ? &b->ffn : &b->expert[e];
                ADD(f->up, (size_t)f->hidden * d);
                if (f->gate) ADD(f->gate, (size_t)f->hidden * d);
                ADD(f->down, (size_t)f->hidden * d);
            }
        }
    }
#undef ADD
    return k;
}

static bool same_floats(const float *a, const float *b, size_t n)
{
    return (!a && !b) || (a && b && memcmp(a, b, sizeof(float) * n) == 0);
}

/* Embeddings, norms, biases and the output head are never pruned. */
static void check_untouched(const Model *m0, const Model *m1)
{
    size_t d = (size_t)m0->dim;
    CHECK(same_floats(m0->tok_emb, m1->tok_emb, (size_t)m0->vocab_size * d), "token embedding changed");
    CHECK(same_floats(m0->pos_emb, m1->pos_emb, (size_t)m0->positions * d), "position embedding changed");
    CHECK(same_floats(m0->unembed, m1->unembed, (size_t)m0->vocab_size * d), "output head changed");
    CHECK(same_floats(m0->final_norm.weight, m1->final_norm.weight, d), "final norm changed");
    for (int bi = 0; bi < m0->nblocks; bi++) {
        const ModelBlock *a = &m0->blocks[bi], *b = &m1->blocks[bi];
        CHECK(same_floats(a->norm.weight, b->norm.weight, d) && same_floats(a->norm.bias, b->norm.bias, d),
              "block %d: norm changed", bi);
        if (a->kind == BLOCK_MHA) CHECK(same_floats(a->bo, b->bo, d), "block %d: output bias changed", bi);
        if (a->kind == BLOCK_FFN) CHECK(same_floats(a->ffn.b_down, b->ffn.b_down, d), "block %d: bias changed", bi);
    }
}

/* ------------------------------------------------------------ unstructured */

static void test_threshold(void)
{
    const double t = 0.02;
    static const char *const names[] = { "tiny", "gated" };
    for (int k = 0; k < 2; k++) {
        Compiled ref, cut;
        if (!compile_pair(&ref, &cut, names[k], t, 0, false)) goto done;
        Matrix a[MAX_MATRICES], b[MAX_MATRICES];
        int na = matrices(ref.p->compiled, a), nb = matrices(cut.p->compiled, b);
        CHECK(na == nb && na > 0, "%s: %d and %d matrices", names[k], na, nb);
        long zeros = 0, total = 0, wrong = 0;
        for (int i = 0; i < na && i < nb; i++)
            for (size_t j = 0; j < a[i].n; j++) {
                float w = a[i].w[j], got = b[i].w[j];
                bool want_zero = fabs(w) < t;
                wrong += want_zero ? got != 0.0f : got != w;
                zeros += got == 0.0f;
                total++;
            }
        CHECK(wrong == 0, "%s: %ld weights wrong after threshold %g", names[k], wrong, t);
        check_untouched(ref.p->compiled, cut.p->compiled);
        long logged_zeros = -1, logged_total = -1;
        const char *line = strstr(cut.log, "magnitude: ");
        while (line && sscanf(line, "magnitude: %ld of %ld weights", &logged_zeros, &logged_total) != 2)
            line = strstr(line + 1, "magnitude: ");
        CHECK(logged_zeros == zeros && logged_total == total, "%s: logged %ld of %ld zero, counted %ld of %ld\n%s",
              names[k], logged_zeros, logged_total, zeros, total, cut.log);
        printf("\n    %s threshold %g: %ld of %ld weights zero", names[k], t, zeros, total);
    done:
        release(&ref);
        release(&cut);
    }
}

static void test_sparsity_half(void)
{
    Compiled ref, cut;
    if (!compile_pair(&ref, &cut, "tiny", 0, 0.5, false)) goto done;
    Matrix a[MAX_MATRICES], b[MAX_MATRICES];
    int n = matrices(ref.p->compiled, a);
    CHECK(n == matrices(cut.p->compiled, b) && n == 12, "%d matrices", n);
    for (int i = 0; i < n; i++) {
        size_t zeros = 0, changed = 0;
        double largest_cut = 0, smallest_kept = INFINITY;
        for (size_t j = 0; j < a[i].n; j++) {
            if (b[i].w[j] == 0.0f) {
                zeros++;
                largest_cut = fmax(largest_cut, fabs(a[i].w[j]));
            } else {
                changed += b[i].w[j] != a[i].w[j];
                smallest_kept = fmin(smallest_kept, fabs(a[i].w[j]));
            }
        }
        CHECK(zeros == a[i].n / 2, "matrix %d: %zu of %zu zero, want half", i, zeros, a[i].n);
        CHECK(changed == 0, "matrix %d: %zu kept weights changed", i, changed);
        CHECK(largest_cut <= smallest_kept, "matrix %d: cut %g but kept %g", i, largest_cut, smallest_kept);
    }
    check_untouched(ref.p->compiled, cut.p->compiled);
done:
    release(&ref);
    release(&cut);
}

/* ------------------------------------------------------------- structured */

static double norm2(const float *w, size_t n, size_t stride)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)w[i * stride] * w[i * stride];
    return s;
}

/* The units to keep: all but the `remove` of smallest norm (the first of equal ones goes first). */
static void expect_kept(const double *norms, int n, int remove, int *kept)
{
    bool gone[256] = { false };
    for (int r = 0; r < remove; r++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (!gone[i] && (best < 0 || norms[i] < norms[best])) best = i;
        gone[best] = true;
    }
    for (int i = 0, k = 0; i < n; i++)
        if (!gone[i]) kept[k++] = i;
}

/* FFN b (pruned) holds the units `kept` of a, rows of up/gate/b_up/b_gate and columns of down. */
static void check_ffn(const Ffn *a, const Ffn *b, int d, int remove, const char *what)
{
    int n = a->hidden, kept[256];
    double norms[256];
    for (int h = 0; h < n; h++)
        norms[h] = norm2(a->up + (size_t)h * d, (size_t)d, 1) + norm2(a->down + h, (size_t)d, (size_t)n) +
                   (a->gate ? norm2(a->gate + (size_t)h * d, (size_t)d, 1) : 0);
    expect_kept(norms, n, remove, kept);
    CHECK(b->hidden == n - remove, "%s: hidden %d, want %d", what, b->hidden, n - remove);
    if (b->hidden != n - remove) return;
    long wrong = 0;
    for (int k = 0; k < b->hidden; k++) {
        int h = kept[k];
        wrong += memcmp(b->up + (size_t)k * d, a->up + (size_t)h * d, sizeof(float) * (size_t)d) != 0;
        if (a->gate) wrong += memcmp(b->gate + (size_t)k * d, a->gate + (size_t)h * d, sizeof(float) * (size_t)d) != 0;
        if (a->b_up) wrong += b->b_up[k] != a->b_up[h];
        if (a->b_gate) wrong += b->b_gate[k] != a->b_gate[h];
        for (int j = 0; j < d; j++) wrong += b->down[(size_t)j * b->hidden + k] != a->down[(size_t)j * n + h];
    }
    CHECK(wrong == 0, "%s: %ld kept units differ from the original ones", what, wrong);
}

/* Attention b holds the heads `kept` of a: rows of wq/wk/wv and their biases, columns of wo. */
static void check_heads(const ModelBlock *a, const ModelBlock *b, int d, int remove, const char *what)
{
    int n = a->mha_heads, hd = a->head_dim, kept[64];
    double norms[64];
    for (int h = 0; h < n; h++) {
        size_t at = (size_t)h * hd * d, size = (size_t)hd * d;
        norms[h] = norm2(a->wq + at, size, 1) + norm2(a->wk + at, size, 1) + norm2(a->wv + at, size, 1);
        for (int i = 0; i < hd; i++) norms[h] += norm2(a->wo + h * hd + i, (size_t)d, (size_t)n * hd);
    }
    expect_kept(norms, n, remove, kept);
    CHECK(b->mha_heads == n - remove && b->kv_heads == n - remove, "%s: %d heads, want %d", what, b->mha_heads,
          n - remove);
    if (b->mha_heads != n - remove) return;
    long wrong = 0;
    size_t size = (size_t)hd * d, q = (size_t)b->mha_heads * hd;
    for (int k = 0; k < b->mha_heads; k++) {
        size_t to = (size_t)k * size, from = (size_t)kept[k] * size;
        wrong += memcmp(b->wq + to, a->wq + from, sizeof(float) * size) != 0;
        wrong += memcmp(b->wk + to, a->wk + from, sizeof(float) * size) != 0;
        wrong += memcmp(b->wv + to, a->wv + from, sizeof(float) * size) != 0;
        if (a->bq)
            wrong += memcmp(b->bq + k * hd, a->bq + kept[k] * hd, sizeof(float) * (size_t)hd) != 0 ||
                     memcmp(b->bk + k * hd, a->bk + kept[k] * hd, sizeof(float) * (size_t)hd) != 0 ||
                     memcmp(b->bv + k * hd, a->bv + kept[k] * hd, sizeof(float) * (size_t)hd) != 0;
        for (int j = 0; j < d; j++)
            for (int i = 0; i < hd; i++)
                wrong += b->wo[(size_t)j * q + k * hd + i] != a->wo[(size_t)j * n * hd + kept[k] * hd + i];
    }
    CHECK(wrong == 0, "%s: %ld kept heads differ from the original ones", what, wrong);
}

static void test_structured(void)
{
    Compiled ref, cut;
    if (!compile_pair(&ref, &cut, "tiny", 0, 0.25, true)) goto done;
    const Model *a = ref.p->compiled, *b = cut.p->compiled;
    for (int bi = 0; bi < a->nblocks; bi++) {
        char what[32];
        snprintf(what, sizeof what, "tiny block %d", bi);
        if (a->blocks[bi].kind == BLOCK_MHA) check_heads(&a->blocks[bi], &b->blocks[bi], a->dim, 1, what);
        else check_ffn(&a->blocks[bi].ffn, &b->blocks[bi].ffn, a->dim, 8, what);
    }
    check_untouched(a, b);
    double f0 = graph_flops(ref.p->graph, a->positions), f1 = graph_flops(cut.p->graph, a->positions);
    CHECK(f1 < 0.8 * f0, "FLOPs %g -> %g", f0, f1);
    printf("\n    tiny structured 0.25: FLOPs/position %g -> %g", f0, f1);
    release(&ref);
    release(&cut);

    /* grouped K/V keeps its heads; MoE experts all lose 4 of 16; a shared block follows its owner */
    if (!compile_pair(&ref, &cut, "gated", 0, 0.25, true)) goto done;
    a = ref.p->compiled;
    b = cut.p->compiled;
    CHECK(b->blocks[0].mha_heads == 4 && b->blocks[0].kv_heads == 2 &&
              same_floats(b->blocks[0].wq, a->blocks[0].wq, 16 * 16),
          "grouped K/V heads changed");
    for (int e = 0; e < 3; e++) check_ffn(&a->blocks[1].expert[e], &b->blocks[1].expert[e], a->dim, 4, "expert");
    CHECK(b->blocks[1].ffn.hidden == 12, "MoE hidden %d, want 12", b->blocks[1].ffn.hidden);
    check_heads(&a->blocks[2], &b->blocks[2], a->dim, 1, "shared attention");
    check_ffn(&a->blocks[3].ffn, &b->blocks[3].ffn, a->dim, 6, "shared mlp");
    CHECK(b->blocks[4].wq == b->blocks[2].wq && b->blocks[4].mha_heads == 1 && b->blocks[4].shared_with == 2 &&
              b->blocks[5].ffn.up == b->blocks[3].ffn.up && b->blocks[5].ffn.hidden == 18,
          "the shared copies do not follow their owners");
    TfmcSession *s = NULL;
    int ids[] = { 1, 2, 3, 4 };
    float logits[4 * 32];
    CHECK(tfmc_session_new(cut.ctx, cut.p, &s) == TFMC_OK && tfmc_session_prefill(s, ids, 4, logits) == TFMC_OK,
          "the pruned model does not run");
    tfmc_session_free(s);
done:
    release(&ref);
    release(&cut);
}

/* --------------------------------------------------------- reported error */

typedef struct Probes {
    int len[32];
    int ids[32][64];
} Probes;

static void make_probes(const Model *m, Probes *P)
{
    uint64_t s = 0x5EED;
    int max = m->max_len < 64 ? m->max_len : 64;
    for (int i = 0; i < 32; i++) P->len[i] = 1 + (int)(probe_random(&s) % (uint32_t)max);
    for (int i = 0; i < 32; i++)
        for (int k = 0; k < P->len[i]; k++) {
            if (m->declared) {
                P->ids[i][k] = (int)(probe_random(&s) % (uint32_t)m->vocab_size);
            } else {
                int id = (int)(probe_random(&s) % (uint32_t)(m->vocab_size - 1));
                P->ids[i][k] = id >= m->bos_id ? id + 1 : id;
            }
        }
}

static void check_declared_error(double sparsity, bool structured)
{
    Compiled ref, cut;
    if (!compile_pair(&ref, &cut, "tiny", 0, sparsity, structured)) goto done;
    const char *line = strstr(cut.log, "magnitude: on 32 random inputs");
    int positions = 0, agree = 0, total = 0;
    double max_error = -1, agreement = -1;
    CHECK(line && sscanf(line, "magnitude: on 32 random inputs (%d positions): max |logit error| %lf, top-1 agreement "
                               "%lf (%d of %d)", &positions, &max_error, &agreement, &agree, &total) == 5,
          "no error line:\n%s", cut.log);
    Probes P;
    make_probes(ref.p->compiled, &P);
    TfmcSession *s0 = NULL, *s1 = NULL;
    CHECK(tfmc_session_new(ref.ctx, ref.p, &s0) == TFMC_OK && tfmc_session_new(cut.ctx, cut.p, &s1) == TFMC_OK,
          "no sessions");
    int v = tfmc_model_vocab(ref.p), my_positions = 0, my_agree = 0;
    double my_error = 0;
    float *l0 = malloc(sizeof(float) * 64 * (size_t)v), *l1 = malloc(sizeof(float) * 64 * (size_t)v);
    for (int i = 0; i < 32 && s0 && s1; i++) {
        tfmc_session_reset(s0);
        tfmc_session_reset(s1);
        tfmc_session_prefill(s0, P.ids[i], (size_t)P.len[i], l0);
        tfmc_session_prefill(s1, P.ids[i], (size_t)P.len[i], l1);
        for (int k = 0; k < P.len[i]; k++, my_positions++) {
            for (int t = 0; t < v; t++) my_error = fmax(my_error, fabs((double)l0[k * v + t] - l1[k * v + t]));
            my_agree += tfmc_argmax(l0 + k * v, (size_t)v) == tfmc_argmax(l1 + k * v, (size_t)v);
        }
    }
    CHECK(positions == my_positions && total == my_positions && agree == my_agree,
          "logged %d of %d agree over %d positions; recomputed %d of %d", agree, total, positions, my_agree,
          my_positions);
    CHECK(fabs(agreement - (double)my_agree / my_positions) < 1e-6, "logged agreement %g", agreement);
    CHECK(fabs(max_error - my_error) <= 1e-5 * my_error + 1e-7, "logged max error %.9g, recomputed %.9g", max_error,
          my_error);
    CHECK(my_error > 0, "pruning changed nothing");
    printf("\n    tiny %s %g: max |logit error| %.3g, top-1 agreement %d/%d", structured ? "structured" : "sparsity",
           sparsity, my_error, my_agree, my_positions);
    free(l0);
    free(l1);
    tfmc_session_free(s0);
    tfmc_session_free(s1);
done:
    release(&ref);
    release(&cut);
}

static void test_declared_error(void)
{
    check_declared_error(0.5, false);
    check_declared_error(0.25, true);
}

static bool same_value(TfmcValue a, TfmcValue b)
{
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case TFMC_UNDEF: return true;
    case TFMC_BOOL: return a.u.b == b.u.b;
    case TFMC_INT: return a.u.i == b.u.i;
    case TFMC_FLOAT: return fabs(a.u.f - b.u.f) <= 1e-4 * fmax(1, fabs(a.u.f));
    case TFMC_STR: return !strcmp(a.u.s, b.u.s);
    }
    return false;
}

/* RASP: the fraction of decoded outputs that stay equal, recomputed with tfmc_run. */
static void test_rasp_error(void)
{
    Compiled ref, cut;
    if (!compile_pair(&ref, &cut, "reverse", 0, 0.2, true)) goto done;
    const char *line = strstr(cut.log, "magnitude: on 32 random inputs");
    int positions = 0, agree = 0, total = 0, removed = 0, units = 0;
    double fraction = -1;
    CHECK(line && sscanf(line, "magnitude: on 32 random inputs (%d positions): outputs unchanged %lf (%d of %d)",
                         &positions, &fraction, &agree, &total) == 4, "no error line:\n%s", cut.log);
    line = strstr(cut.log, "magnitude: removed");
    CHECK(line && sscanf(line, "magnitude: removed %*d of %*d heads and %d of %d MLP units", &removed, &units) == 2 &&
              removed > 0, "no units removed:\n%s", cut.log);
    const Model *m = ref.p->compiled;
    Probes P;
    make_probes(m, &P);
    int my_positions = 0, my_agree = 0;
    for (int i = 0; i < 32; i++) {
        TfmcValue tokens[64], want[64], got[64];
        for (int k = 0; k < P.len[i]; k++) tokens[k] = m->vocab[P.ids[i][k]];
        bool ok = tfmc_run(ref.ctx, ref.p, tokens, (size_t)P.len[i], want) == TFMC_OK &&
                  tfmc_run(cut.ctx, cut.p, tokens, (size_t)P.len[i], got) == TFMC_OK;
        CHECK(ok, "probe %d does not run", i);
        for (int k = 0; ok && k < P.len[i]; k++, my_positions++) my_agree += same_value(want[k], got[k]);
    }
    CHECK(positions == my_positions && total == my_positions && agree == my_agree,
          "logged %d of %d unchanged; recomputed %d of %d", agree, total, my_agree, my_positions);
    printf("\n    reverse structured 0.2: %d of %d units removed, %d of %d outputs unchanged", removed, units, my_agree,
           my_positions);
done:
    release(&ref);
    release(&cut);
}

void add_magnitude_tests(CU_pSuite suite)
{
    CU_add_test(suite, "threshold zeros exactly the weights below it", test_threshold);
    CU_add_test(suite, "sparsity 0.5 zeros the smaller half of each matrix", test_sparsity_half);
    CU_add_test(suite, "structured pruning removes the smallest heads and units", test_structured);
    CU_add_test(suite, "declared models: the logged logit error is right", test_declared_error);
    CU_add_test(suite, "RASP models: the logged fraction unchanged is right", test_rasp_error);
}
