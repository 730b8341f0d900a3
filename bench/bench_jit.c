/* bench_jit.c: the llvm backend side by side with its references, in one run (issue 13).
 *
 *   compile    JIT compile plus the first call: a tiny model (dim 64, 2 layers; target 50 ms, from
 *              tfmc_set_backend to the first logits, tfmc's own compile excluded) and each RASP
 *              example at -O2 (target 20 ms);
 *   speed      the JIT'd code against the generated -O2 C (`cc -O2 -shared`, dlopen), both called
 *              through the same entry points (libffi) for models, tfmc_run vs NAME_forward for
 *              RASP programs: time per call, the ratio, and the geometric mean (target >= 1);
 *   sweep      24 variants x 100 sequences (prefill of 8 tokens each) in-process through the JIT,
 *              compile included (target 3 s), against the same through cc + dlopen and through
 *              the interpreter backend.
 * usage: bench_jit EXAMPLES_DIR [CC]  (the runtime flags for cc are compiled in) */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfmc.h"

#ifndef RUNTIME_FLAGS
#define RUNTIME_FLAGS ""
#endif

static const char *cc = "cc";
static char tmpdir[256];

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static void model_source(char *buf, size_t cap, const char *name, int vocab, int dim, int layers, int seed)
{
    snprintf(buf, cap,
             "model %s {\n  vocab %d; max_len 64; dim %d;\n  init random(seed %d);\n  embed token, position rope(base 10000);\n"
             "  block x %d {\n    attention heads 4, causal, norm rmsnorm(eps 1e-5), bias false;\n"
             "    mlp hidden %d, act swiglu, norm rmsnorm(eps 1e-5), bias false;\n  }\n"
             "  norm rmsnorm(eps 1e-5);\n  unembed separate;\n}\n",
             name, vocab, dim, seed, layers, dim * 8 / 3);
}

/* The generated C (-O2) of p as a shared object; its entries, or NULL. */
static TfmcEntries *shared_entries(TfmcContext *ctx, const TfmcProgram *p, const char *name)
{
    char c_path[512], so[512], cmd[2048];
    snprintf(c_path, sizeof c_path, "%s/%s.c", tmpdir, name);
    snprintf(so, sizeof so, "%s/%s.so", tmpdir, name);
    FILE *f = fopen(c_path, "w");
    if (!f) return NULL;
    TfmcStatus st = tfmc_emit_c(ctx, p, NULL, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s -O2 -shared -fPIC %s %s -o %s", cc, c_path, RUNTIME_FLAGS, so);
    if (st != TFMC_OK || system(cmd) != 0) return NULL;
    TfmcEntries *e = NULL;
    return tfmc_entries_open(ctx, p, so, &e) == TFMC_OK ? e : NULL;
}

typedef struct Model {
    void *ctx, *arena;
    float *logits;
} Model;

static bool model_new(TfmcEntries *e, Model *m, int vocab)
{
    size_t cb = 0, ab = 0;
    int st = -1;
    tfmc_entries_call(e, "context_bytes", &cb, NULL);
    tfmc_entries_call(e, "arena_bytes", &ab, NULL);
    m->ctx = calloc(1, cb);
    m->arena = calloc(1, ab);
    m->logits = calloc((size_t)vocab, sizeof(float));
    void *args[3] = { &m->ctx, &m->arena, &ab };
    return m->ctx && m->arena && m->logits && tfmc_entries_call(e, "init", &st, args) == TFMC_OK && st == 0;
}

static void model_free(Model *m)
{
    free(m->ctx);
    free(m->arena);
    free(m->logits);
}

/* reset, prefill_last of n tokens, then decode steps: the seconds. */
static double model_step(TfmcEntries *e, Model *m, const int *tokens, int n, int decode)
{
    int st;
    double t0 = now();
    void *r[1] = { &m->ctx };
    tfmc_entries_call(e, "reset", NULL, r);
    void *args[4] = { &m->ctx, &tokens, &n, &m->logits };
    tfmc_entries_call(e, "prefill_last", &st, args);
    for (int d = 0; d < decode; d++) {
        int t = tokens[d % n];
        void *a[3] = { &m->ctx, &t, &m->logits };
        tfmc_entries_call(e, "decode", &st, a);
    }
    return now() - t0;
}

static double best_of(TfmcEntries *e, Model *m, const int *tokens, int n, int decode, int reps)
{
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = model_step(e, m, tokens, n, decode);
        if (t < best) best = t;
    }
    return best;
}

static double log_sum;
static int log_count;

static void bench_models(void)
{
    static const struct {
        const char *name;
        int vocab, dim, layers;
    } shapes[] = { { "tiny", 256, 64, 2 }, { "small", 512, 128, 4 }, { "medium", 1024, 288, 6 } };
    char src[4096];
    printf("\nmodels: prefill 32 + 16 decode steps, best of 7 (ms); JIT'd entries vs generated -O2 C (both via libffi)\n");
    printf("%-8s %10s %10s %8s\n", "shape", "jit", "C -O2", "C/jit");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        model_source(src, sizeof src, shapes[s].name, shapes[s].vocab, shapes[s].dim, shapes[s].layers, 3);
        TfmcContext *ctx = tfmc_context_new(NULL);
        const TfmcProgram *p;
        TfmcEntries *j = NULL, *c;
        if (tfmc_load_string(ctx, "m.tfm", src, strlen(src)) != TFMC_OK || tfmc_find_program(ctx, NULL, &p) != TFMC_OK ||
            tfmc_entries_jit(ctx, p, &j) != TFMC_OK || !(c = shared_entries(ctx, p, shapes[s].name))) {
            tfmc_print_diagnostics(ctx, stderr);
            tfmc_context_free(ctx);
            continue;
        }
        int tokens[32];
        for (int i = 0; i < 32; i++) tokens[i] = (i * 37 + 5) % shapes[s].vocab;
        Model mj, mc;
        if (model_new(j, &mj, shapes[s].vocab) && model_new(c, &mc, shapes[s].vocab)) {
            double tj = best_of(j, &mj, tokens, 32, 16, 7), tc = best_of(c, &mc, tokens, 32, 16, 7);
            printf("%-8s %10.3f %10.3f %8.2f\n", shapes[s].name, tj * 1e3, tc * 1e3, tc / tj);
            log_sum += log(tc / tj);
            log_count++;
        }
        model_free(&mj);
        model_free(&mc);
        tfmc_entries_free(c);
        tfmc_context_free(ctx);
    }
}

static void bench_tiny_compile(void)
{
    char src[4096];
    model_source(src, sizeof src, "tiny", 256, 64, 2, 1);
    double best = 1e30, tfmc_best = 1e30;
    for (int r = 0; r < 5; r++) {
        TfmcContext *ctx = tfmc_context_new(NULL);
        const TfmcProgram *p;
        TfmcSession *s;
        float logits[256];
        int token = 3;
        double t0 = now();
        tfmc_load_string(ctx, "tiny.tfm", src, strlen(src));
        tfmc_find_program(ctx, NULL, &p);
        tfmc_compile(ctx, p);
        double t1 = now();
        tfmc_set_backend(ctx, "llvm");
        if (tfmc_session_new_threads(ctx, p, 1, &s) == TFMC_OK && tfmc_session_prefill_last(s, &token, 1, logits) == TFMC_OK) {
            double t2 = now();
            if (t2 - t1 < best) best = t2 - t1;
            if (t1 - t0 < tfmc_best) tfmc_best = t1 - t0;
            tfmc_session_free(s);
        }
        tfmc_context_free(ctx);
    }
    printf("tiny model (dim 64, 2 layers): JIT compile + first call %.1f ms (target 50), tfmc's own compile %.1f ms, "
           "best of 5\n", best * 1e3, tfmc_best * 1e3);
}

/* NAME_forward of ids[0..n) through entries e (init on a fresh arena first): the best of 200, s. */
static double time_forward(TfmcEntries *e, const int *ids, int n)
{
    size_t cb = 0, ab = 0;
    int status = -1;
    double best = 1e30;
    tfmc_entries_call(e, "context_bytes", &cb, NULL);
    tfmc_entries_call(e, "arena_bytes", &ab, NULL);
    void *cctx = calloc(1, cb), *arena = calloc(1, ab);
    double outs[64 * 2];
    void *ia[3] = { &cctx, &arena, &ab }, *op = outs;
    if (cctx && arena && tfmc_entries_call(e, "init", &status, ia) == TFMC_OK && status == 0) {
        void *fa[4] = { &cctx, &ids, &n, &op };
        for (int r = 0; r < 200; r++) {
            double a = now();
            tfmc_entries_call(e, "forward", &status, fa);
            double b = now() - a;
            if (b < best) best = b;
        }
    }
    free(cctx);
    free(arena);
    return best;
}

/* A RASP program's tokens for a max_len input: its vocabulary's words in turn. */
static void bench_rasp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    static char names[64][128];
    int count = 0;
    while ((de = readdir(d)) && count < 64) {
        size_t len = strlen(de->d_name);
        if (len > 4 && !strcmp(de->d_name + len - 4, ".tfm")) snprintf(names[count++], sizeof names[0], "%.*s", (int)sizeof names[0] - 1, de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)count, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    printf("\nRASP examples at -O2: JIT compile + first call (tfmc_run; target 20 ms); then NAME_forward at max_len,\n"
           "JIT'd against the generated -O2 C (cc -shared, dlopen), both via libffi, microseconds per call, best of 200\n");
    printf("%-18s %9s %9s %9s %7s\n", "program", "jit ms", "jit us", "C us", "C/jit");
    TfmcOptions o = { 2, NULL, NULL, NULL, 0, 0, false, 0, 0, 0, 0, 0, 0 };
    for (int i = 0; i < count; i++) {
        char path[1024], *src;
        snprintf(path, sizeof path, "%.800s/%.127s", dir, names[i]);
        if (!(src = read_file(path))) continue;
        TfmcContext *ctx = tfmc_context_new(NULL);
        tfmc_set_options(ctx, &o);
        const TfmcProgram *p;
        if (tfmc_load_string(ctx, path, src, strlen(src)) != TFMC_OK || tfmc_find_program(ctx, NULL, &p) != TFMC_OK ||
            tfmc_compile(ctx, p) != TFMC_OK) {
            free(src);
            tfmc_context_free(ctx);
            continue;
        }
        int max_len = tfmc_program_max_len(p), n = max_len;
        TfmcValue tokens[64], out[64];
        char err[256], line[1024] = "";
        /* the first word of the vocabulary block, repeated: some programs take only some words */
        const char *v = strstr(src, "vocab {");
        char word[64] = "";
        if (v) sscanf(v + 7, " %*[\"]%63[^\",} .]", word);
        if (v && !word[0]) sscanf(v + 7, " %63[^\",} .]", word);
        size_t nt = 0;
        for (int k = 0; k < n; k++) snprintf(line + strlen(line), sizeof line - strlen(line), "%s ", word);
        if (tfmc_parse_tokens(p, line, tokens, 64, &nt, err, sizeof err) != TFMC_OK) {
            printf("%-18s (no input: %s)\n", names[i], err);
            free(src);
            tfmc_context_free(ctx);
            continue;
        }
        double t0 = now();
        tfmc_set_backend(ctx, "llvm");
        TfmcStatus st = tfmc_run(ctx, p, tokens, nt, out);
        double first = now() - t0, jit = 1e30, c = 1e30;
        TfmcEntries *e = shared_entries(ctx, p, names[i]), *j = NULL;
        if (st == TFMC_OK && tfmc_entries_jit(ctx, p, &j) != TFMC_OK) st = TFMC_ERR_USAGE;
        if (e && st == TFMC_OK) {
            int ids[64], id = -1;
            const char *w = word;
            void *ea[1] = { &w };
            tfmc_entries_call(e, "encode", &id, ea);
            for (size_t k = 0; k < nt; k++) ids[k] = id;
            c = time_forward(e, ids, (int)nt);
            jit = time_forward(j, ids, (int)nt);
            tfmc_entries_free(e);
        }
        printf("%-18s %9.2f %9.2f %9.2f %7.2f\n", names[i], first * 1e3, jit * 1e6, c * 1e6, c / jit);
        if (c < 1e30 && jit < 1e30) {
            log_sum += log(c / jit);
            log_count++;
        }
        free(src);
        tfmc_context_free(ctx);
    }
}

static void bench_sweep(void)
{
    static const char *const norms[] = { "layernorm(eps 1e-5)", "rmsnorm(eps 1e-6)" };
    static const char *const scores[] = { "softmax", "softmax1" };
    static const char *const positions[] = { "learned", "rope(base 10000)", "alibi" };
    double total[3] = { 0, 0, 0 };
    for (int way = 0; way < 3; way++) {
        double t0 = now();
        for (int v = 0; v < 24; v++) {
            char src[2048], name[64];
            int norm = v % 2, score = v / 2 % 2, pos = v / 4 % 3, kind = v / 12;
            snprintf(name, sizeof name, "s%d", v);
            snprintf(src, sizeof src,
                     "model %s {\n  vocab 64; max_len 16; dim 32;\n  init random(seed %d);\n  embed token, position %s;\n"
                     "  block%s x %d {\n    attention heads 4, %s, score %s, norm %s;\n    %s, norm %s;\n  }\n"
                     "  norm %s;\n  unembed tied;\n}\n",
                     name, v + 1, positions[pos], kind ? " shared" : "", kind ? 3 : 2, kind ? "window 4" : "causal",
                     scores[score], norms[norm], kind ? "mlp hidden 48, act gelu" : "moe experts 4, top 2, hidden 24, act swiglu",
                     norms[norm], norms[norm]);
            TfmcContext *ctx = tfmc_context_new(NULL);
            const TfmcProgram *p;
            tfmc_load_string(ctx, "s.tfm", src, strlen(src));
            tfmc_find_program(ctx, NULL, &p);
            int tokens[8];
            float logits[64];
            if (way < 2) {
                TfmcSession *s;
                if (way == 1) tfmc_set_backend(ctx, "llvm");
                if (tfmc_session_new_threads(ctx, p, 1, &s) == TFMC_OK) {
                    for (int q = 0; q < 100; q++) {
                        for (int i = 0; i < 8; i++) tokens[i] = (q * 11 + i * 7) % 64;
                        tfmc_session_reset(s);
                        tfmc_session_prefill_last(s, tokens, 8, logits);
                    }
                    tfmc_session_free(s);
                }
            } else {
                TfmcEntries *e = shared_entries(ctx, p, name);
                Model m;
                if (e && model_new(e, &m, 64)) {
                    for (int q = 0; q < 100; q++) {
                        for (int i = 0; i < 8; i++) tokens[i] = (q * 11 + i * 7) % 64;
                        model_step(e, &m, tokens, 8, 0);
                    }
                    model_free(&m);
                }
                if (e) tfmc_entries_free(e);
            }
            tfmc_context_free(ctx);
        }
        total[way] = now() - t0;
    }
    printf("\nsweep: 24 variants x 100 sequences of 8 tokens, compile included: llvm %.2f s (target 3), "
           "interpreter %.2f s, cc -O2 + dlopen %.2f s\n", total[1], total[0], total[2]);
}

int main(int argc, char **argv)
{
    const char *examples = argc > 1 ? argv[1] : "examples";
    if (argc > 2) cc = argv[2];
    if (!tfmc_backend_available("llvm")) {
        printf("bench_jit: no llvm backend in this build\n");
        return 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tfmc_bench_jit.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    bench_tiny_compile();
    bench_rasp(examples);
    bench_models();
    if (log_count) printf("\ngeometric mean of C time / JIT time over %d programs: %.2f (>= 1: the JIT is as fast)\n", log_count,
                          exp(log_sum / log_count));
    bench_sweep();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : 1;
}
