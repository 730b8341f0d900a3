/* test_sweep.c: an architecture sweep through every in-process path (issue 13).
 *
 * 24 declared variants, norm (layernorm, rmsnorm) x score (softmax, softmax1) x positions
 * (learned, rope, alibi) x (a mixture of experts | a shared block applied 3 times with a sliding
 * window of 4), each compiled once and run four ways on the same tokens: a session on the
 * interpreter backend (the reference: check_models.py ties it to PyTorch), a session on the llvm
 * backend, the JIT'd entry points called through libffi (tfmc_entries_jit), and the generated C
 * built with `cc -shared` and loaded with dlopen, its entries called through libffi too
 * (tfmc_entries_open). A prefill of PROMPT tokens then DECODE decode steps; every logit of every
 * path within 1e-6 x max|logit| of the interpreter's.
 *
 * Without the llvm backend or libffi in this build, prints `skipped: ...` and exits 77 (meson's
 * skip code). Usage: test_sweep [CC] (default cc). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "tfmc.h"

#ifndef RUNTIME_FLAGS
#define RUNTIME_FLAGS ""
#endif

enum { VOCAB = 64, PROMPT = 5, DECODE = 3, VARIANTS = 24 };

static const char *cc = "cc";
static char tmpdir[256];

static void variant_source(int v, char *buf, size_t cap, char *name, size_t ncap)
{
    static const char *const norms[] = { "layernorm(eps 1e-5)", "rmsnorm(eps 1e-6)" };
    static const char *const scores[] = { "softmax", "softmax1" };
    static const char *const positions[] = { "learned", "rope(base 10000)", "alibi" };
    int norm = v % 2, score = v / 2 % 2, pos = v / 4 % 3, kind = v / 12;
    snprintf(name, ncap, "v%d_%s_%s_%s_%s", v, norm ? "rms" : "ln", scores[score], pos == 0 ? "learned" : pos == 1 ? "rope" : "alibi",
             kind ? "shared_window" : "moe");
    snprintf(buf, cap,
             "model %s {\n  vocab %d; max_len 16; dim 32;\n  init random(seed %d);\n  embed token, position %s;\n"
             "  block%s x %d {\n    attention heads 4, %s, score %s, norm %s;\n"
             "    %s, norm %s;\n  }\n  norm %s;\n  unembed %s;\n}\n",
             name, VOCAB, 11 + v, positions[pos], kind ? " shared" : "", kind ? 3 : 2, kind ? "window 4" : "causal",
             scores[score], norms[norm], kind ? "mlp hidden 48, act gelu" : "moe experts 4, top 2, hidden 24, act swiglu",
             norms[norm], norms[norm], kind ? "tied" : "separate");
}

/* The largest |got - want| over max|want|, over vocab logits. */
static double rel_diff(const float *got, const float *want, int n)
{
    double scale = 0, diff = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= diff)) diff = d; /* NaN counts */
    }
    return scale > 0 ? diff / scale : diff;
}

/* Logits [1 + DECODE][VOCAB] through a session: prefill_last, then DECODE decode steps. */
static bool session_logits(TfmcContext *ctx, const TfmcProgram *p, const int *tokens, float *out)
{
    TfmcSession *s = NULL;
    if (tfmc_session_new_threads(ctx, p, 1, &s) != TFMC_OK) return false;
    bool ok = tfmc_session_prefill_last(s, tokens, PROMPT, out) == TFMC_OK;
    for (int d = 0; ok && d < DECODE; d++) ok = tfmc_session_decode(s, tokens[PROMPT + d], out + (d + 1) * VOCAB) == TFMC_OK;
    tfmc_session_free(s);
    return ok;
}

/* The same through entry points called by libffi. */
static bool entry_logits(TfmcEntries *e, const int *tokens, float *out)
{
    size_t ctx_bytes = 0, arena_bytes = 0;
    int status = -9;
    if (tfmc_entries_call(e, "context_bytes", &ctx_bytes, NULL) != TFMC_OK) return false;
    if (tfmc_entries_call(e, "arena_bytes", &arena_bytes, NULL) != TFMC_OK) return false;
    void *ctx = calloc(1, ctx_bytes), *arena = calloc(1, arena_bytes);
    bool ok = ctx && arena;
    void *args_init[3] = { &ctx, &arena, &arena_bytes };
    ok = ok && tfmc_entries_call(e, "init", &status, args_init) == TFMC_OK && status == 0;
    int n = PROMPT;
    const int *tp = tokens;
    float *lp = out;
    void *args_prefill[4] = { &ctx, &tp, &n, &lp };
    ok = ok && tfmc_entries_call(e, "prefill_last", &status, args_prefill) == TFMC_OK && status == 0;
    for (int d = 0; ok && d < DECODE; d++) {
        int token = tokens[PROMPT + d];
        float *l = out + (d + 1) * VOCAB;
        void *args_decode[3] = { &ctx, &token, &l };
        ok = tfmc_entries_call(e, "decode", &status, args_decode) == TFMC_OK && status == 0;
    }
    free(ctx);
    free(arena);
    return ok;
}

/* The generated C of p as a shared object in tmpdir; its path, or NULL. */
static const char *build_shared(TfmcContext *ctx, const TfmcProgram *p, const char *name, char *path, size_t cap)
{
    char c_path[512], cmd[2048];
    snprintf(c_path, sizeof c_path, "%s/%s.c", tmpdir, name);
    snprintf(path, cap, "%s/%s.so", tmpdir, name);
    FILE *f = fopen(c_path, "w");
    if (!f) return NULL;
    TfmcStatus st = tfmc_emit_c(ctx, p, NULL, f);
    fclose(f);
    if (st != TFMC_OK) return NULL;
    snprintf(cmd, sizeof cmd, "%s -std=c99 -O1 -shared -fPIC %s %s -o %s", cc, c_path, RUNTIME_FLAGS, path);
    return system(cmd) == 0 ? path : NULL;
}

static void test_sweep(void)
{
    double worst[3] = { 0, 0, 0 };
    int checked = 0;
    for (int v = 0; v < VARIANTS; v++) {
        char src[2048], name[128], so[512];
        variant_source(v, src, sizeof src, name, sizeof name);
        int tokens[PROMPT + DECODE];
        for (int i = 0; i < PROMPT + DECODE; i++) tokens[i] = (v * 7 + i * 13 + 1) % VOCAB;
        float want[(1 + DECODE) * VOCAB], got[(1 + DECODE) * VOCAB];
        TfmcContext *ref = tfmc_context_new(NULL), *jit = tfmc_context_new(NULL);
        const TfmcProgram *p = NULL, *q = NULL;
        CU_ASSERT_FATAL(tfmc_load_string(ref, "sweep.tfm", src, strlen(src)) == TFMC_OK);
        CU_ASSERT_FATAL(tfmc_load_string(jit, "sweep.tfm", src, strlen(src)) == TFMC_OK);
        CU_ASSERT_FATAL(tfmc_find_program(ref, NULL, &p) == TFMC_OK && tfmc_find_program(jit, NULL, &q) == TFMC_OK);
        if (!session_logits(ref, p, tokens, want)) {
            tfmc_print_diagnostics(ref, stderr);
            CU_FAIL("the interpreter backend's session");
            goto next;
        }
        /* 1: a session on the llvm backend */
        CU_ASSERT_FATAL(tfmc_set_backend(jit, "llvm") == TFMC_OK);
        memset(got, 0, sizeof got);
        CU_ASSERT(session_logits(jit, q, tokens, got));
        double d = rel_diff(got, want, (1 + DECODE) * VOCAB);
        if (d > worst[0]) worst[0] = d;
        if (!(d <= 1e-6)) printf("%s: llvm session differs by %.3g x max|logit|\n", name, d);
        CU_ASSERT(d <= 1e-6);
        /* 2: the JIT'd entry points through libffi */
        TfmcEntries *e = NULL;
        CU_ASSERT(tfmc_entries_jit(jit, q, &e) == TFMC_OK);
        if (e) {
            memset(got, 0, sizeof got);
            CU_ASSERT(entry_logits(e, tokens, got));
            d = rel_diff(got, want, (1 + DECODE) * VOCAB);
            if (d > worst[1]) worst[1] = d;
            if (!(d <= 1e-6)) printf("%s: JIT'd entries differ by %.3g x max|logit|\n", name, d);
            CU_ASSERT(d <= 1e-6);
        }
        /* 3: the generated C, cc -shared, dlopen, libffi */
        if (build_shared(ref, p, name, so, sizeof so)) {
            TfmcEntries *c = NULL;
            CU_ASSERT(tfmc_entries_open(ref, p, so, &c) == TFMC_OK);
            if (c) {
                memset(got, 0, sizeof got);
                CU_ASSERT(entry_logits(c, tokens, got));
                d = rel_diff(got, want, (1 + DECODE) * VOCAB);
                if (d > worst[2]) worst[2] = d;
                if (!(d <= 1e-6)) printf("%s: generated C differs by %.3g x max|logit|\n", name, d);
                CU_ASSERT(d <= 1e-6);
                tfmc_entries_free(c);
            } else {
                tfmc_print_diagnostics(ref, stderr);
            }
        } else {
            CU_FAIL("the generated C does not build as a shared object");
        }
        checked++;
    next:
        tfmc_context_free(ref);
        tfmc_context_free(jit);
    }
    printf("\n%d variants: max|diff| / max|logit|: llvm session %.2g, JIT'd entries %.2g, generated C %.2g\n", checked,
           worst[0], worst[1], worst[2]);
    CU_ASSERT(checked == VARIANTS);
}

/* A shape the tests do not depend on: the names of the entries, from the data, in both paths. */
static void test_entries_listed(void)
{
    char src[2048], name[128];
    variant_source(0, src, sizeof src, name, sizeof name);
    TfmcContext *ctx = tfmc_context_new(NULL);
    const TfmcProgram *p = NULL;
    CU_ASSERT_FATAL(tfmc_load_string(ctx, "sweep.tfm", src, strlen(src)) == TFMC_OK);
    CU_ASSERT_FATAL(tfmc_find_program(ctx, NULL, &p) == TFMC_OK);
    TfmcEntries *e = NULL;
    CU_ASSERT_FATAL(tfmc_entries_jit(ctx, p, &e) == TFMC_OK);
    const char *want[] = { "init", "set_exec", "reset", "prefill", "prefill_last", "decode", "cpu_missing" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        CU_ASSERT(tfmc_entries_address(e, want[i]) != NULL);
        CU_ASSERT(tfmc_entries_name(e, (int)i) && !strcmp(tfmc_entries_name(e, (int)i), want[i]));
    }
    int status = 0;
    CU_ASSERT(tfmc_entries_call(e, "no_such_entry", &status, NULL) == TFMC_ERR_USAGE);
    tfmc_context_free(ctx);
}

int main(int argc, char **argv)
{
    if (argc > 1) cc = argv[1];
    if (!tfmc_backend_available("llvm")) {
        TfmcContext *ctx = tfmc_context_new(NULL);
        tfmc_set_backend(ctx, "llvm");
        printf("skipped: %s\n", tfmc_diagnostic_count(ctx) ? tfmc_diagnostic(ctx, 0)->message : "no llvm backend");
        tfmc_context_free(ctx);
        return 77;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tfmc_sweep.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("jit sweep", NULL, NULL);
    CU_add_test(s, "24 variants: interp, llvm session, JIT'd entries, generated C through libffi", test_sweep);
    CU_add_test(s, "entries by name", test_entries_listed);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    return failures ? 1 : 0;
}
