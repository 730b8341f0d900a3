/* test_graph_verify.c: graph_verify accepts the graphs the compiler makes (declared models and
 * RASP programs, at -O0..-O2) and rejects hand-broken copies of them, one test per check; the
 * lowering to kernel calls covers every op in order and kprogram_check rejects broken calls; the
 * entry points (data) are the prototypes the generated C declares. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "passes_test.h"

/* A compiled program's graph, from a source string, at one -O level. */
typedef struct Compiled {
    TfmcContext *ctx;
    const TfmcProgram *p;
} Compiled;

static const Graph *compiled(Compiled *c, const char *src, int level)
{
    c->ctx = tfmc_context_new(NULL);
    TfmcOptions o = { 0 };
    o.opt_level = level;
    tfmc_set_options(c->ctx, &o);
    c->p = NULL;
    if (tfmc_load_string(c->ctx, "v.tfm", src, strlen(src)) != TFMC_OK || tfmc_find_program(c->ctx, NULL, &c->p) != TFMC_OK ||
        tfmc_compile(c->ctx, c->p) != TFMC_OK) {
        tfmc_print_diagnostics(c->ctx, stderr);
        return NULL;
    }
    return c->p->graph;
}

static const char model_src[] =
    "model v { vocab 20; max_len 8; dim 16; init random(seed 5); embed token, position rope(base 10000);\n"
    "  block x 2 { attention heads 2, causal, norm rmsnorm(eps 1e-5); mlp hidden 32, act swiglu, norm rmsnorm(eps 1e-5); }\n"
    "  block x 1 { attention heads 2, causal; moe experts 3, top 2, hidden 8, act gelu; }\n"
    "  norm rmsnorm(eps 1e-5); unembed tied; }";
static const char rasp_src[] =
    "rasp v { vocab {1, 2, 3}; max_len 5;\n"
    "  smaller = select(tokens, tokens, <);\n"
    "  target = selector_width(smaller);\n"
    "  return aggregate(select(target, indices, ==), tokens); }";

/* A copy of g whose ops (their constant lists too), tensors and constants may be broken. */
typedef struct Copy {
    Graph g;
    GraphOp ops[512];
    GraphTensor tensors[512];
    GraphConst consts[512];
    int op_consts[2048];
} Copy;

static bool copy_of(Copy *c, const Graph *g)
{
    int total = 0;
    for (int i = 0; i < g->nops; i++) total += g->ops[i].nconsts;
    if (g->nops > 512 || g->ntensors > 512 || g->nconsts > 512 || total > 2048) return false;
    c->g = *g;
    memcpy(c->ops, g->ops, sizeof(GraphOp) * (size_t)g->nops);
    memcpy(c->tensors, g->tensors, sizeof(GraphTensor) * (size_t)g->ntensors);
    memcpy(c->consts, g->consts, sizeof(GraphConst) * (size_t)g->nconsts);
    for (int i = 0, at = 0; i < g->nops; i++) {
        if (g->ops[i].nconsts) memcpy(c->op_consts + at, g->ops[i].consts, sizeof(int) * (size_t)g->ops[i].nconsts);
        c->ops[i].consts = c->op_consts + at;
        at += g->ops[i].nconsts;
    }
    c->g.ops = c->ops;
    c->g.tensors = c->tensors;
    c->g.consts = c->consts;
    return true;
}

/* The first op of a kind at or after `from`, or -1. */
static int find_op(const Graph *g, GraphOpKind kind, int from)
{
    for (int i = from; i < g->nops; i++)
        if (g->ops[i].kind == kind) return i;
    return -1;
}

static bool rejects(Arena *a, const Graph *g, const char *want, int line)
{
    char err[512];
    bool ok = graph_verify(a, g, err, sizeof err);
    test_check(!ok, line, __FILE__, "a broken graph passed (want: %s)", want);
    if (ok) return false;
    test_check(strstr(err, want) != NULL, line, __FILE__, "got `%s`, want `%s`", err, want);
    return true;
}
#define REJECTS(g, want) rejects(&fx.arena, (g), (want), __LINE__)

static void test_accepts_compiled(void)
{
    Fixture fx;
    fixture_init(&fx);
    const char *const srcs[2] = { model_src, rasp_src };
    for (int s = 0; s < 2; s++)
        for (int level = 0; level <= 2; level++) {
            Compiled c;
            const Graph *g = compiled(&c, srcs[s], level);
            CHECK(g != NULL, "compiles at -O%d", level);
            char err[512] = "";
            if (g) CHECK(graph_verify(&fx.arena, g, err, sizeof err), "-O%d: %s", level, err);
            tfmc_context_free(c.ctx);
        }
    fixture_free(&fx);
}

/* Every check of a declared model's graph at -O1 (planned memory), each on a fresh copy. */
static void test_rejects_broken_model(void)
{
    Fixture fx;
    fixture_init(&fx);
    Compiled c;
    const Graph *g = compiled(&c, model_src, 1);
    CHECK(g != NULL, "the model compiles");
    static Copy k;
    if (!g || !copy_of(&k, g)) {
        tfmc_context_free(c.ctx);
        fixture_free(&fx);
        return;
    }
    int lin = find_op(g, G_LINEAR, 0), add = find_op(g, G_ADD, 0), norm = find_op(g, G_NORM, 0);
    int glu = find_op(g, G_GLU, 0), rope = find_op(g, G_ROPE, 0), kv = find_op(g, G_KV_STORE, 0);
    int att = find_op(g, G_ATTEND, 0), moe = find_op(g, G_MOE, 0), emb = find_op(g, G_EMBED, 0);
    CHECK(lin >= 0 && add >= 0 && norm >= 0 && glu >= 0 && rope >= 0 && kv >= 0 && att >= 0 && moe >= 0 && emb >= 0,
          "the model has every op kind tested");

    copy_of(&k, g);
    k.ops[lin].in[0] = g->ntensors + 3;
    REJECTS(&k.g, "refers to tensor");
    copy_of(&k, g);
    k.ops[lin].in[0] = k.ops[add].out; /* written only later */
    REJECTS(&k.g, "before any op writes it");
    copy_of(&k, g);
    k.consts[k.ops[lin].consts[0]].cols++;
    REJECTS(&k.g, "the op needs");
    copy_of(&k, g);
    k.ops[lin].consts[0] = -1;
    REJECTS(&k.g, "no W");
    copy_of(&k, g);
    k.ops[lin].consts[1] = k.g.nconsts + 5;
    REJECTS(&k.g, "refers to constant");
    copy_of(&k, g);
    k.ops[lin].nconsts = 1;
    REJECTS(&k.g, "1 constants; a linear has 2");
    copy_of(&k, g);
    k.ops[emb].consts[0] = k.ops[lin].consts[0]; /* a table of the wrong shape */
    REJECTS(&k.g, "token table");
    copy_of(&k, g);
    int add2 = find_op(g, G_ADD, glu + 1); /* an add after the gated activation: give it that, hidden-wide */
    CHECK(add2 > glu && k.tensors[k.ops[glu].out].cols != k.tensors[k.ops[add2].out].cols, "an add after the glu");
    k.ops[add2].in[1] = k.ops[glu].out;
    REJECTS(&k.g, "second input");
    copy_of(&k, g);
    k.ops[glu].act = (Activation)99;
    REJECTS(&k.g, "activation 99");
    copy_of(&k, g);
    k.ops[norm].consts[0] = -1;
    REJECTS(&k.g, "no norm weights");
    copy_of(&k, g);
    k.ops[norm].norm.kind = NORM_NONE;
    REJECTS(&k.g, "norm kind");
    copy_of(&k, g);
    k.ops[rope].in[0] = k.ops[lin].in[0];
    REJECTS(&k.g, "in place");
    copy_of(&k, g);
    k.tensors[k.ops[kv].cache[0]].cache = false;
    REJECTS(&k.g, "is not a cache");
    copy_of(&k, g);
    k.ops[att].attn.kv_heads = 0;
    REJECTS(&k.g, "attention of");
    copy_of(&k, g);
    k.ops[att].cache[1] = -1;
    REJECTS(&k.g, "1 caches; a attend uses 2");
    copy_of(&k, g);
    k.ops[moe].moe.top = 99;
    REJECTS(&k.g, "experts, top 99");
    copy_of(&k, g);
    k.ops[moe].consts[2] = k.ops[moe].consts[1]; /* an up bias where a vector was wanted: [hidden][dim] */
    REJECTS(&k.g, "is not a vector");
    copy_of(&k, g);
    k.tensors[k.ops[emb].out].cols++;
    REJECTS(&k.g, "embeds");
    copy_of(&k, g);
    k.g.output = -1;
    REJECTS(&k.g, "the output is tensor");
    copy_of(&k, g);
    k.g.arena_floats -= 1;
    REJECTS(&k.g, "scratch ends past the arena");
    copy_of(&k, g);
    k.tensors[k.ops[lin].out].offset = k.g.scratch;
    REJECTS(&k.g, "past the tensors' region");
    /* two tensors alive at once in one place: an op's output over its own input */
    copy_of(&k, g);
    k.tensors[k.ops[lin].out].offset = k.tensors[k.ops[lin].in[0]].offset;
    REJECTS(&k.g, "share memory");
    tfmc_context_free(c.ctx);
    fixture_free(&fx);
}

/* The RASP dialect's ops at -O0 (unfused scores, softmax and mix) and -O1 (fused, compressed). */
static void test_rejects_broken_rasp(void)
{
    Fixture fx;
    fixture_init(&fx);
    static Copy k;
    Compiled c0, c1;
    const Graph *g0 = compiled(&c0, rasp_src, 0), *g1 = compiled(&c1, rasp_src, 1);
    CHECK(g0 && g1, "the program compiles");
    if (g0 && g1) {
        int sc = find_op(g0, G_SCORES, 0), sm = find_op(g0, G_SOFTMAX, 0), mix = find_op(g0, G_MIX, 0);
        CHECK(sc >= 0 && sm >= 0 && mix >= 0, "-O0 has unfused attention");
        if (sc >= 0 && sm >= 0 && mix >= 0) {
            copy_of(&k, g0);
            k.ops[sc].dk++;
            REJECTS(&k.g, "dk");
            copy_of(&k, g0);
            k.tensors[k.ops[sm].out].square = false;
            REJECTS(&k.g, "[n][n]");
            copy_of(&k, g0);
            k.ops[mix].dv++;
            REJECTS(&k.g, "dv");
            copy_of(&k, g0);
            k.ops[sc].scale = 1.0f / 0.0f * 0.0f; /* NaN */
            REJECTS(&k.g, "scale");
        }
        int fa = find_op(g1, G_FUSED_ATTENTION, 0), sparse = -1;
        for (int i = 0; i < g1->nops && sparse < 0; i++)
            if (g1->ops[i].kind == G_LINEAR && graph_linear_w(g1, &g1->ops[i])->vals) sparse = i;
        CHECK(fa >= 0 && sparse >= 0, "-O1 has fused attention and compressed rows");
        if (fa >= 0) {
            copy_of(&k, g1);
            k.ops[fa].dv++;
            REJECTS(&k.g, "dv");
        }
        if (sparse >= 0) {
            copy_of(&k, g1);
            k.consts[k.ops[sparse].consts[0]].nnz++;
            REJECTS(&k.g, "non-zeros");
        }
    }
    tfmc_context_free(c0.ctx);
    tfmc_context_free(c1.ctx);
    fixture_free(&fx);
}

/* The kernel program of each compiled graph: every op lowered, in op order, and the calls fit
 * their kernels' signatures; a call broken in each way is rejected. */
static void test_kernel_programs(void)
{
    Fixture fx;
    fixture_init(&fx);
    const char *const srcs[2] = { model_src, rasp_src };
    for (int s = 0; s < 2; s++)
        for (int level = 0; level <= 2; level++) {
            Compiled c;
            const Graph *g = compiled(&c, srcs[s], level);
            CHECK(g != NULL, "compiles at -O%d", level);
            if (!g) {
                tfmc_context_free(c.ctx);
                continue;
            }
            const KProgram *k = c.p->kernels;
            char err[512] = "";
            CHECK(k && k->g == g && kprogram_check(k, err, sizeof err), "-O%d: %s", level, err);
            /* ops in order, each with one call (or two: a copy, then the kernel) */
            int op = 0, calls = 0;
            for (int i = 0; i < k->ncalls; i++) {
                CHECK(k->calls[i].op == op || k->calls[i].op == op + 1, "-O%d: call %d is of op %d after op %d", level, i,
                      k->calls[i].op, op);
                if (k->calls[i].op != op) calls = 0;
                op = k->calls[i].op;
                calls++;
                CHECK(calls <= 2 && (calls == 1 || k->calls[i - 1].kernel == K_COPY), "-O%d: op %d has a third call", level, op);
                CHECK(k->calls[i].head == g->ops[op].head, "-O%d: call %d's head mark", level, i);
            }
            CHECK(k->ncalls > 0 && k->calls[0].op == 0 && op == g->nops - 1, "-O%d: %d calls for %d ops", level, k->ncalls, g->nops);
            /* broken copies: a wrong kind, a missing argument, rows of a dense constant */
            KCall *saved = malloc(sizeof(KCall) * (size_t)k->ncalls);
            memcpy(saved, k->calls, sizeof(KCall) * (size_t)k->ncalls);
            KProgram broken = *k;
            broken.calls = saved;
            int lin = -1;
            for (int i = 0; i < k->ncalls && lin < 0; i++)
                if (k->calls[i].kernel == K_LINEAR) lin = i;
            saved[0].args[0].kind = KA_FLOAT;
            CHECK(!kprogram_check(&broken, err, sizeof err) && strstr(err, "does not fit"), "a float for a tensor: %s", err);
            memcpy(saved, k->calls, sizeof(KCall) * (size_t)k->ncalls);
            saved[0].nargs--;
            CHECK(!kprogram_check(&broken, err, sizeof err) && strstr(err, "arguments for a signature"), "one argument short: %s", err);
            if (lin >= 0) {
                memcpy(saved, k->calls, sizeof(KCall) * (size_t)k->ncalls);
                saved[lin].args[4].kind = KA_ROWPTR; /* a dense W's "rows" */
                CHECK(!kprogram_check(&broken, err, sizeof err), "row starts of a dense constant accepted");
                memcpy(saved, k->calls, sizeof(KCall) * (size_t)k->ncalls);
                saved[lin].args[1].index = g->ntensors;
                CHECK(!kprogram_check(&broken, err, sizeof err), "a tensor out of range accepted");
            }
            free(saved);
            tfmc_context_free(c.ctx);
        }
    fixture_free(&fx);
}

/* The program's entry points are what the C declares: each prototype, written out by hand here. */
static void test_entry_points(void)
{
    static const char *const model_protos[] = {
        "int v_init(v_ctx *ctx, void *arena, size_t bytes);",
        "void v_set_exec(v_ctx *ctx, const struct TfmcrtExec *prefill, const struct TfmcrtExec *decode);",
        "void v_reset(v_ctx *ctx);",
        "int v_prefill(v_ctx *ctx, const int *tokens, int n, float *logits);",
        "int v_prefill_last(v_ctx *ctx, const int *tokens, int n, float *logits);",
        "int v_decode(v_ctx *ctx, int token, float *logits);",
        "const char *v_cpu_missing(void);",
        "size_t v_context_bytes(void);",
        "size_t v_arena_bytes(void);",
    };
    static const char *const rasp_protos[] = {
        "int v_init(v_ctx *ctx, void *arena, size_t bytes);",
        "int v_encode(const char *word);",
        "int v_forward(v_ctx *ctx, const int *tokens, int n, v_out_t *out);",
        "const char *v_value_name(int id);",
        "const char *v_cpu_missing(void);",
        "size_t v_context_bytes(void);",
        "size_t v_arena_bytes(void);",
    };
    const char *const srcs[2] = { model_src, rasp_src };
    const char *const *protos[2] = { model_protos, rasp_protos };
    int counts[2] = { 9, 7 };
    for (int s = 0; s < 2; s++) {
        Compiled c;
        const Graph *g = compiled(&c, srcs[s], 1);
        CHECK(g != NULL, "compiles");
        if (!g) {
            tfmc_context_free(c.ctx);
            continue;
        }
        const KProgram *k = c.p->kernels;
        CHECK(k->nentries == counts[s], "%d entry points, want %d", k->nentries, counts[s]);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        CHECK(tfmc_emit_c(c.ctx, c.p, NULL, f) == TFMC_OK, "emits C");
        fclose(f);
        for (int e = 0; e < counts[s] && e < k->nentries; e++) {
            char name[64];
            snprintf(name, sizeof name, "v_%s(", k->entries[e].name);
            CHECK(strstr(protos[s][e], name) != NULL, "entry %d is `%s`, want %s", e, k->entries[e].name, protos[s][e]);
            CHECK(text && strstr(text, protos[s][e]), "the C does not declare `%s`", protos[s][e]);
            CHECK((k->entries[e].nparams >= 1 || k->entries[e].result != CT_VOID) && k->entries[e].doc &&
                      k->entries[e].doc[0], "entry %s", k->entries[e].name);
        }
        free(text);
        tfmc_context_free(c.ctx);
    }
}

void add_graph_verify_tests(CU_pSuite suite)
{
    CU_add_test(suite, "accepts every compiled graph, -O0..-O2", test_accepts_compiled);
    CU_add_test(suite, "rejects broken declared-model graphs, one check each", test_rejects_broken_model);
    CU_add_test(suite, "rejects broken RASP graphs, one check each", test_rejects_broken_rasp);
    CU_add_test(suite, "kernel programs: every op, in order; broken calls rejected", test_kernel_programs);
    CU_add_test(suite, "entry points: the prototypes the C declares", test_entry_points);
}
