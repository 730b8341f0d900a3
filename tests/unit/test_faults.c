/* test_faults.c: fault injection through the whole public API, and bounded memory. An allocator
 * that fails at the k-th allocation (once, or from then on), for every k, across load, check,
 * options, compile at each -O level, run, eval, verify, emit, the C backend, the safetensors writer
 * and sessions: every call returns its status or TFMC_ERR_NOMEM, the context stays usable (after
 * a single failure the same calls succeed with the same results) and frees everything. Then a
 * long-lived context fed a million bad inputs, whose memory must stay flat, and the memory check
 * of declared models against the exact need. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#if defined(__SANITIZE_ADDRESS__)
int __lsan_do_recoverable_leak_check(void);
#endif

/* --------------------------------------------------------- the allocator */

enum { FAULT_MAX_LIVE = 1 << 14 };
typedef struct Faults {
    void *live[FAULT_MAX_LIVE];
    size_t bytes[FAULT_MAX_LIVE];
    long nlive, allocs, bad_frees;
    size_t live_bytes;
    long fail_at;   /* the allocation that fails (-1: none) */
    bool once;      /* only that one, or every one from it on */
    long failures;  /* allocations refused */
} Faults;

static void *fault_realloc(void *ud, void *ptr, size_t size)
{
    Faults *t = ud;
    long at = -1;
    if (ptr) {
        for (long i = t->nlive - 1; i >= 0 && at < 0; i--)
            if (t->live[i] == ptr) at = i;
        if (at < 0) {
            t->bad_frees++;
            return NULL;
        }
    }
    if (size == 0) {
        if (ptr) {
            free(ptr);
            t->live_bytes -= t->bytes[at];
            t->nlive--;
            t->live[at] = t->live[t->nlive];
            t->bytes[at] = t->bytes[t->nlive];
        }
        return NULL;
    }
    long k = t->allocs++;
    if (t->fail_at >= 0 && (t->once ? k == t->fail_at : k >= t->fail_at)) {
        t->failures++;
        return NULL;
    }
    if (!ptr && t->nlive >= FAULT_MAX_LIVE) return NULL;
    void *p = realloc(ptr, size);
    if (!p) return NULL;
    if (ptr) {
        t->live_bytes += size - t->bytes[at];
        t->live[at] = p;
        t->bytes[at] = size;
    } else {
        t->live[t->nlive] = p;
        t->bytes[t->nlive++] = size;
        t->live_bytes += size;
    }
    return p;
}

/* ------------------------------------------------------------- the scenario */

static const char fault_src[] =
    "rasp reverse {\n"
    "  vocab {\"a\", \"b\", \"c\"};\n"
    "  max_len 4;\n"
    "  opp  = length - indices - 1;\n"
    "  return aggregate(select(indices, opp, ==), tokens);\n"
    "}\n"
    "rasp hist {\n"
    "  vocab {1, 2, 3};\n"
    "  max_len 4;\n"
    "  return selector_width(select(tokens, tokens, ==));\n"
    "}\n"
    "model tiny {\n"
    "  vocab 12;\n"
    "  max_len 6;\n"
    "  dim 8;\n"
    "  init random(seed 3);\n"
    "  embed token, position learned;\n"
    "  block x 1 {\n"
    "    attention heads 2, causal, norm layernorm(eps 1e-5);\n"
    "    mlp hidden 16, act gelu, norm layernorm(eps 1e-5);\n"
    "  }\n"
    "  norm layernorm(eps 1e-5);\n"
    "  unembed tied;\n"
    "}\n";

/* A model reading the weights that the scenario's setup wrote (tfmc's scheme). */
static char weights_src[1024];
static char weights_path[64], out_path[64];

/* What one pass over the API produced, to compare a recovered context with an untouched one. */
typedef struct Outcome {
    char reverse[32], hist[32];
    float logits[12], decoded[12]; /* the generated model: prefill's last row, then one decode */
    float last[2][12];             /* prefill_last of it and of the model reading its weights */
    long verified;
} Outcome;

typedef struct Step {
    Faults *t;
    int line;     /* the test's line, for messages */
    long errors;  /* statuses that were neither the expected one nor NOMEM */
    long nomem;
    bool retry;   /* after NOMEM, call again (a single failure: the second call must succeed) */
} Step;

/* Call `call` (a TfmcStatus expression); NOMEM is fine (and retried once when retrying), any other
 * status than `want` is an error. Evaluates to the final status. */
#define STEP(S, want, call)                                                       \
    __extension__({                                                               \
        TfmcStatus st_ = (call);                                                  \
        if (st_ == TFMC_ERR_NOMEM) {                                              \
            (S)->nomem++;                                                         \
            if ((S)->retry) st_ = (call);                                         \
        }                                                                         \
        if (st_ != (want) && !(st_ == TFMC_ERR_NOMEM && !(S)->retry)) {           \
            (S)->errors++;                                                        \
            fprintf(stderr, "    %s: status %d, want %d (fail_at %ld)\n", #call, st_, want, (S)->t->fail_at); \
        }                                                                         \
        st_;                                                                      \
    })

static void values_text(const TfmcValue *v, size_t n, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && at + 16 < cap; i++) {
        if (i) buf[at++] = ' ';
        at += (size_t)tfmc_format_value(v[i], buf + at, cap - at);
    }
}

/* One pass over the public API at -O`level`; fills out when every step succeeded. */
static void scenario(Step *S, int level, Outcome *out, FILE *sink)
{
    TfmcAllocator a = { fault_realloc, S->t };
    TfmcContext *ctx = tfmc_context_new(&a);
    if (!ctx) return;
    TfmcOptions o = { 0 };
    o.opt_level = level;
    STEP(S, TFMC_OK, tfmc_set_options(ctx, &o));
    TfmcStatus st = STEP(S, TFMC_OK, tfmc_load_string(ctx, "faults.tfm", fault_src, strlen(fault_src)));
    if (st == TFMC_OK) st = STEP(S, TFMC_OK, tfmc_load_string(ctx, "weights.tfm", weights_src, strlen(weights_src)));
    const TfmcProgram *rev = NULL, *hist = NULL, *tiny = NULL, *fromfile = NULL;
    if (st == TFMC_OK) {
        STEP(S, TFMC_OK, tfmc_find_program(ctx, "reverse", &rev));
        STEP(S, TFMC_OK, tfmc_find_program(ctx, "hist", &hist));
        STEP(S, TFMC_OK, tfmc_find_program(ctx, "tiny", &tiny));
        STEP(S, TFMC_OK, tfmc_find_program(ctx, "fromfile", &fromfile));
        const TfmcProgram *none = NULL;
        STEP(S, TFMC_ERR_USAGE, tfmc_find_program(ctx, "nothing", &none));
    }
    /* a file with errors, loaded into the same context */
    static const char bad[] = "rasp q { vocab {1}; max_len 2; return nothing + 1; }\n";
    STEP(S, TFMC_ERR_COMPILE, tfmc_load_string(ctx, "bad.tfm", bad, strlen(bad)));
    tfmc_report(ctx, "a client's own error %d", 7);
    if (rev && hist) {
        TfmcValue tok[4], res[4];
        size_t n = 0;
        char err[128];
        if (tfmc_parse_tokens(rev, "a b c", tok, 4, &n, err, sizeof err) == TFMC_OK) {
            if (STEP(S, TFMC_OK, tfmc_run(ctx, rev, tok, n, res)) == TFMC_OK) values_text(res, n, out->reverse, sizeof out->reverse);
            STEP(S, TFMC_OK, tfmc_eval(ctx, rev, tok, n, res));
            STEP(S, TFMC_OK, tfmc_eval_trace(ctx, rev, tok, n, sink));
        }
        if (tfmc_parse_tokens(hist, "1 2 2 3", tok, 4, &n, err, sizeof err) == TFMC_OK &&
            STEP(S, TFMC_OK, tfmc_run(ctx, hist, tok, n, res)) == TFMC_OK)
            values_text(res, n, out->hist, sizeof out->hist);
        TfmcVerifyOptions vo = { 3, 0, 0 };
        TfmcVerifyResult vr;
        if (STEP(S, TFMC_OK, tfmc_verify(ctx, hist, &vo, &vr, sink)) == TFMC_OK && vr.equal) out->verified = vr.checked;
        TfmcModelInfo info;
        STEP(S, TFMC_OK, tfmc_model_info(ctx, rev, &info));
        STEP(S, TFMC_OK, tfmc_emit(ctx, rev, TFMC_EMIT_MODEL, sink));
        STEP(S, TFMC_OK, tfmc_emit(ctx, hist, TFMC_EMIT_GRAPH, sink));
        TfmcCOptions co = { true, "-O2 --main", NULL, NULL, NULL, NULL, NULL, 0, NULL };
        STEP(S, TFMC_OK, tfmc_emit_c(ctx, rev, &co, sink));
        STEP(S, TFMC_OK, tfmc_write_safetensors(ctx, hist, out_path));
    }
    const TfmcProgram *models[2] = { tiny, fromfile };
    for (int k = 0; k < 2; k++) {
        const TfmcProgram *p = models[k];
        if (!p) continue;
        TfmcCOptions co = { false, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL };
        STEP(S, TFMC_OK, tfmc_emit_c(ctx, p, &co, sink));
        STEP(S, TFMC_OK, tfmc_write_safetensors(ctx, p, out_path));
        TfmcSession *s = NULL;
        if (STEP(S, TFMC_OK, tfmc_session_new(ctx, p, &s)) != TFMC_OK) continue;
        int ids[3] = { 1, 5, 7 }, bad_id = 99;
        float logits[3 * 12], last[12];
        if (STEP(S, TFMC_OK, tfmc_session_prefill(s, ids, 3, logits)) == TFMC_OK && k == 0)
            memcpy(out->logits, logits + 2 * 12, sizeof out->logits);
        if (STEP(S, TFMC_OK, tfmc_session_decode(s, 2, last)) == TFMC_OK && k == 0)
            memcpy(out->decoded, last, sizeof out->decoded);
        STEP(S, TFMC_ERR_INPUT, tfmc_session_prefill(s, &bad_id, 1, last));
        STEP(S, TFMC_ERR_INPUT, tfmc_session_prefill(s, ids, 0, last));
        tfmc_session_reset(s);
        if (STEP(S, TFMC_OK, tfmc_session_prefill_last(s, ids, 3, last)) == TFMC_OK)
            memcpy(out->last[k], last, sizeof last);
        tfmc_session_free(s);
    }
    tfmc_context_free(ctx);
}

/* Write the tiny model's weights for the `fromfile` model (with the C library's allocator). */
static bool setup_weights(void)
{
    snprintf(weights_path, sizeof weights_path, "/tmp/tfmc_faults_%d.safetensors", (int)getpid());
    snprintf(out_path, sizeof out_path, "/tmp/tfmc_faults_out_%d.safetensors", (int)getpid());
    TfmcContext *ctx = tfmc_context_new(NULL);
    const TfmcProgram *p = NULL;
    bool ok = tfmc_load_string(ctx, "faults.tfm", fault_src, strlen(fault_src)) == TFMC_OK &&
              tfmc_find_program(ctx, "tiny", &p) == TFMC_OK && tfmc_write_safetensors(ctx, p, weights_path) == TFMC_OK;
    tfmc_context_free(ctx);
    const char *body = strstr(fault_src, "model tiny {") + strlen("model tiny {");
    snprintf(weights_src, sizeof weights_src, "model fromfile {%.*s", (int)strlen(body), body);
    char *init = strstr(weights_src, "init random(seed 3);");
    if (!init) return false;
    char rest[1024];
    snprintf(rest, sizeof rest, "%s", init + strlen("init random(seed 3);"));
    snprintf(init, sizeof weights_src - (size_t)(init - weights_src), "weights \"%s\";%s", weights_path, rest);
    return ok;
}

/* For every k until the scenario runs with no failure: fail the k-th allocation (once, or every
 * one from it on), then check statuses, results and that every block came back. */
static void run_faults(int level, bool once)
{
    FILE *sink = fopen("/dev/null", "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sink);
    static Faults t;
    memset(&t, 0, sizeof t);
    t.fail_at = -1;
    Step S = { &t, __LINE__, 0, 0, false };
    Outcome ref;
    memset(&ref, 0, sizeof ref);
    scenario(&S, level, &ref, sink);
    long total = t.allocs;
    CHECK_INT(S.errors, 0);
    CHECK_INT(t.nlive, 0);
    CHECK_STR(ref.reverse, "c b a");
    CHECK_STR(ref.hist, "1 2 2 1");
    CU_ASSERT(ref.verified > 0);
    /* the model read back from its safetensors computes exactly what it was written from */
    CU_ASSERT(ref.last[0][0] != 0 && memcmp(ref.last[0], ref.last[1], sizeof ref.last[0]) == 0);
    CU_ASSERT(total > 20);
    long nomem = 0, broken = 0;
    for (long k = 0; k < total; k++) {
        memset(&t, 0, sizeof t);
        t.fail_at = k;
        t.once = once;
        Step s = { &t, __LINE__, 0, 0, once };
        Outcome got;
        memset(&got, 0, sizeof got);
        scenario(&s, level, &got, sink);
        nomem += s.nomem;
        if (s.errors || t.nlive || t.bad_frees) broken++;
        if (s.errors || t.nlive || t.bad_frees)
            fprintf(stderr, "    -O%d fail_at %ld%s: %ld wrong statuses, %ld blocks left, %ld bad frees\n", level, k,
                    once ? " (once)" : "", s.errors, t.nlive, t.bad_frees);
        /* one failure, then every call again: the same results as without it */
        if (once && t.nlive == 0 && s.errors == 0 && got.reverse[0]) {
            if (strcmp(got.reverse, ref.reverse) || strcmp(got.hist, ref.hist) || got.verified != ref.verified ||
                memcmp(got.logits, ref.logits, sizeof ref.logits) || memcmp(got.decoded, ref.decoded, sizeof ref.decoded) ||
                memcmp(got.last, ref.last, sizeof ref.last)) {
                fprintf(stderr, "    -O%d fail_at %ld: a recovered context computes something else\n", level, k);
                broken++;
            }
        }
    }
    CHECK_INT(broken, 0);
    CU_ASSERT(nomem >= total / 2); /* the failures did reach the calls */
    printf("\n    -O%d: each of %ld allocations failed in turn%s: %ld out-of-memory statuses ", level, total,
           once ? " (once)" : " (and all after it)", nomem);
    fclose(sink);
#if defined(__SANITIZE_ADDRESS__)
    CU_ASSERT_EQUAL(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* Small arena blocks: almost every allocation of the library reaches the allocator. */
enum { FAULT_BLOCK_BYTES = 512 };

static void test_faults_from_k(void)
{
    CU_ASSERT_FATAL(setup_weights());
    size_t saved = arena_block_bytes;
    arena_block_bytes = FAULT_BLOCK_BYTES;
    for (int level = 0; level <= 2; level++) run_faults(level, false);
    arena_block_bytes = saved;
}

static void test_faults_once(void)
{
    CU_ASSERT_FATAL(setup_weights());
    size_t saved = arena_block_bytes;
    arena_block_bytes = FAULT_BLOCK_BYTES;
    for (int level = 0; level <= 2; level++) run_faults(level, true);
    arena_block_bytes = saved;
    remove(weights_path);
    remove(out_path);
}

/* ---------------------------------------------------- bounded memory */

/* A server's context: a million identical bad prefills, then bad inputs of every kind, cost no
 * memory once their message is recorded. */
static void test_repeated_errors_flat(void)
{
    static Faults t;
    memset(&t, 0, sizeof t);
    t.fail_at = -1;
    TfmcAllocator a = { fault_realloc, &t };
    TfmcContext *ctx = tfmc_context_new(&a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    const TfmcProgram *p = NULL, *rev = NULL;
    TfmcSession *s = NULL;
    CU_ASSERT_FATAL(tfmc_load_string(ctx, "faults.tfm", fault_src, strlen(fault_src)) == TFMC_OK &&
                    tfmc_find_program(ctx, "tiny", &p) == TFMC_OK && tfmc_find_program(ctx, "reverse", &rev) == TFMC_OK &&
                    tfmc_session_new(ctx, p, &s) == TFMC_OK && tfmc_compile(ctx, rev) == TFMC_OK);
    int bad = 12;
    float logits[12];
    CHECK_INT(tfmc_session_prefill(s, &bad, 1, logits), TFMC_ERR_INPUT);
    size_t bytes = t.live_bytes;
    long allocs = t.allocs;
    for (long i = 0; i < 1000000; i++)
        if (tfmc_session_prefill(s, &bad, 1, logits) != TFMC_ERR_INPUT) break;
    CHECK_INT(t.allocs, allocs);
    CHECK_INT(t.live_bytes, bytes);
    CHECK_INT(tfmc_diagnostic_count(ctx), 1);
    /* no tokens at all has its own message */
    CHECK_INT(tfmc_session_prefill(s, &bad, 0, logits), TFMC_ERR_INPUT);
    const TfmcDiagnostic *none = tfmc_diagnostic(ctx, 1);
    CU_ASSERT(none && strstr(none->message, "no tokens to feed to `tiny`"));
    /* distinct messages: recorded up to the limit, then nothing more is taken */
    TfmcValue tok[8], out[8];
    for (int i = 0; i < 8; i++) tok[i] = (TfmcValue){ .kind = TFMC_STR, .u.s = "zz" };
    for (int i = 0; i < 300; i++) {
        int id = 100 + i;
        tfmc_session_prefill(s, &id, 1, logits);
        tfmc_run(ctx, rev, tok, (size_t)(1 + i % 8), out);
        tfmc_report(ctx, "client error %d", i);
    }
    size_t capped = t.live_bytes;
    for (int i = 0; i < 100000; i++) {
        int id = 1000 + i;
        tfmc_session_prefill(s, &id, 1, logits);
        tfmc_report(ctx, "client error %d", i);
    }
    CHECK_INT(t.live_bytes, capped);
    CU_ASSERT(tfmc_diagnostic_count(ctx) <= 101);
    /* and the session still works */
    int ids[2] = { 1, 2 };
    CHECK_INT(tfmc_session_prefill(s, ids, 2, NULL), TFMC_OK);
    tfmc_session_free(s);
    tfmc_context_free(ctx);
    CHECK_INT(t.nlive, 0);
}

/* The memory check before weights are allocated never refuses what the exact check after the
 * passes accepts: with max_memory at exactly weights + arena the model compiles, one byte less
 * it does not (and says why). */
static void test_memory_limit_exact(void)
{
    static const char *const bodies[] = {
        "embed token, position learned; block x 2 { attention heads 2, causal, norm layernorm(eps 1e-5); "
        "mlp hidden 32, act gelu, norm layernorm(eps 1e-5); } norm layernorm(eps 1e-5); unembed tied;",
        "embed token, position rope(base 10000); block x 3 { attention heads 4, kv_heads 2, causal, norm rmsnorm(eps 1e-5); "
        "mlp hidden 24, act swiglu, norm rmsnorm(eps 1e-5); } norm rmsnorm(eps 1e-5); unembed separate;",
        "embed token, position sinusoidal; block shared x 4 { attention heads 2, causal, norm layernorm(eps 1e-5); "
        "moe experts 4, top 2, hidden 8, act silu, norm layernorm(eps 1e-5); } norm layernorm(eps 1e-5); unembed tied;",
    };
    for (int level = 0; level <= 2; level++)
        for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
            char src[1024];
            snprintf(src, sizeof src, "model m { vocab 40; max_len 24; dim 16; init random(seed 2); %s }", bodies[b]);
            TfmcContext *ctx = tfmc_context_new(NULL);
            TfmcOptions o = { 0 };
            o.opt_level = level;
            tfmc_set_options(ctx, &o);
            const TfmcProgram *p = NULL;
            TfmcModelInfo info;
            CHECK_INT(tfmc_load_string(ctx, "m.tfm", src, strlen(src)), TFMC_OK);
            CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_OK);
            CHECK_INT(tfmc_model_info(ctx, p, &info), TFMC_OK);
            tfmc_context_free(ctx);
            size_t need = info.weight_bytes + info.arena_bytes;
            CU_ASSERT(info.weight_bytes >= (size_t)info.params * 4);
            for (int less = 0; less <= 1; less++) {
                ctx = tfmc_context_new(NULL);
                o.max_memory = need - (size_t)less;
                tfmc_set_options(ctx, &o);
                CHECK_INT(tfmc_load_string(ctx, "m.tfm", src, strlen(src)), TFMC_OK);
                CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_OK);
                CHECK_INT(tfmc_compile(ctx, p), less ? TFMC_ERR_COMPILE : TFMC_OK);
                if (less) {
                    const TfmcDiagnostic *d = tfmc_diagnostic(ctx, tfmc_diagnostic_count(ctx) - 1);
                    CU_ASSERT(d && strstr(d->message, "the limit is") && strstr(d->message, "--max-memory"));
                }
                tfmc_context_free(ctx);
            }
        }
}

bool register_faults_tests(void)
{
    static const UnitTest tests[] = {
        { "allocation failures from the k-th on, every k, -O0..-O2", test_faults_from_k },
        { "one failed allocation, every k: the context recovers", test_faults_once },
        { "a million bad inputs: memory stays flat", test_repeated_errors_flat },
        { "memory limit: the early check within the exact need", test_memory_limit_exact },
    };
    return UNIT_SUITE("faults", tests);
}
