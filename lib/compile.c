/* compile.c: the public API for compiled programs: lowering to the model IR and graph IR, running
 * the transformer, verifying it against the interpreter, emitting text, C and safetensors. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "tfmcrt.h"

static TfmcProgram *mutable(const TfmcProgram *p) { return (TfmcProgram *)p; }

static TfmcStatus set_options(TfmcContext *ctx, const TfmcOptions *o)
{
    PassOptions *p = &ctx->passes;
    memset(p, 0, sizeof *p);
    p->level = o->opt_level < 0 ? 0 : o->opt_level > 2 ? 2 : o->opt_level;
    p->only = o->passes ? arena_strdup(&ctx->arena, o->passes) : NULL;
    p->disabled = o->disabled ? arena_strdup(&ctx->arena, o->disabled) : NULL;
    p->report = o->report;
    p->prune_threshold = o->prune_threshold;
    p->prune_sparsity = o->prune_sparsity;
    p->prune_structured = o->prune_structured;
    p->lowrank_rank = o->lowrank_rank;
    p->lowrank_energy = o->lowrank_energy;
    p->lowrank_error = o->lowrank_error;
    p->quantize_bits = o->quantize_bits;
    p->quantize_group = o->quantize_group;
    ctx->max_memory = o->max_memory;
    return TFMC_OK;
}

TfmcStatus tfmc_set_options(TfmcContext *ctx, const TfmcOptions *o)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, set_options(ctx, o));
}

static TfmcStatus compile(TfmcContext *ctx, const TfmcProgram *cp)
{
    TfmcProgram *p = mutable(cp);
    if (p->graph) return TFMC_OK;
    Model *m = p->rasp ? rasp_lower(&ctx->arena, p->rasp, &ctx->diags)
                       : model_declare(&ctx->arena, p->model, p->file, &ctx->diags, false, ctx->max_memory);
    if (!m) return TFMC_ERR_COMPILE;
    char err[256];
    if (!model_verify(m, err, sizeof err)) {
        tfmc_report(ctx, "internal error: the compiled model is malformed: %s", err);
        return TFMC_ERR_COMPILE;
    }
    if (!passes_check_names(&ctx->passes, &ctx->diags)) return TFMC_ERR_USAGE;
    /* the passes that evaluate a graph (magnitude pruning) run it on the interpreter backend */
    IBackendCache runner = { &ctx->arena, NULL, NULL };
    PassContext pc = { &ctx->arena, &ctx->diags, &ctx->passes, ctx->passes.report, ibackend_run_graph, &runner };
    Graph *g = passes_compile(&pc, m);
    if (!g) return TFMC_ERR_COMPILE;
    KProgram *k = lower_graph(&ctx->arena, g);
    if (!kprogram_check(k, err, sizeof err)) {
        tfmc_report(ctx, "internal error: the kernel program is malformed: %s", err);
        return TFMC_ERR_COMPILE;
    }
    /* the declaration's estimate came first (model_declare); now the planned arena is exact, and
     * it is checked before a session allocates it */
    size_t limit = model_memory_limit(ctx->max_memory);
    double arena = (double)g->arena_floats * sizeof(float), total = (double)m->weight_bytes + arena;
    if (m->declared && total > (double)limit) {
        tfmc_report(ctx, "model `%s` needs %.1f MiB: weights %.1f MiB and an arena (activations and KV caches) of "
                         "%.1f MiB; the limit is %.1f MiB (%s)", m->name, total / 1048576.0,
                    (double)m->weight_bytes / 1048576.0, arena / 1048576.0, (double)limit / 1048576.0,
                    ctx->max_memory ? "--max-memory" : "this machine's memory");
        return TFMC_ERR_COMPILE;
    }
    IBackend *ip = ibackend_new(&ctx->arena, k);
    /* the program counts as compiled only now (an allocation failure above leaves it as it was) */
    p->compiled = m;
    p->kernels = k;
    p->interp = ip;
    p->graph = g;
    return TFMC_OK;
}

TfmcStatus tfmc_compile(TfmcContext *ctx, const TfmcProgram *p)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, compile(ctx, p));
}

TfmcStatus tfmc_model_info(TfmcContext *ctx, const TfmcProgram *p, TfmcModelInfo *info)
{
    TfmcStatus st = tfmc_compile(ctx, p);
    if (st != TFMC_OK) return st;
    ModelStats s;
    model_stats(p->compiled, &s);
    info->residual = p->compiled->dim;
    info->layers = s.layers;
    info->blocks = s.blocks;
    info->heads = s.heads;
    info->params = s.params;
    info->nonzeros = s.nonzeros;
    info->arena_bytes = p->graph->arena_floats * sizeof(float);
    info->weight_bytes = p->compiled->weight_bytes;
    return TFMC_OK;
}

TfmcStatus lib_ensure_jit(TfmcContext *ctx, const TfmcProgram *cp)
{
    TfmcProgram *p = (TfmcProgram *)cp;
    if (p->jit) return TFMC_OK;
    const char *why = NULL;
    const JitApi *api = lib_jit_api(&why);
    if (!api) {
        tfmc_report(ctx, "%s", why);
        return TFMC_ERR_USAGE;
    }
    const Graph *g = p->graph;
    const TfmcrtAttention **attn = ARENA_ARRAY(&ctx->arena, const TfmcrtAttention *, g->nops ? g->nops : 1);
    const TfmcrtFfn **experts = ARENA_ARRAY(&ctx->arena, const TfmcrtFfn *, g->nops ? g->nops : 1);
    for (int i = 0; i < g->nops; i++) {
        attn[i] = ibackend_attention(p->interp, i);
        experts[i] = ibackend_experts(p->interp, i);
    }
    const Model *m = p->compiled;
    bool cached = true;
    for (int i = 0; i < m->nblocks; i++)
        if (m->blocks[i].kind == BLOCK_MHA && !m->blocks[i].causal) cached = false;
    /* the JIT's optimisation level: 1 unless TFMC_JIT_OPT says 0..3 (docs/compiling.md) */
    const char *lvl = getenv("TFMC_JIT_OPT");
    int opt = lvl && lvl[0] >= '0' && lvl[0] <= '3' && !lvl[1] ? lvl[0] - '0' : 1;
    JitInput in = { p->kernels, kernel_info, attn, experts, opt, m->declared ? m->vocab_size : m->nvocab, m->max_len,
                    g->tensors[g->output].offset, cached, m->bos_id, m->dim, m->nout, m->out_dim, m->out_dims,
                    m->out_kind == OUT_CATEGORICAL };
    char err[1024];
    JitProgram *j = api->compile(&in, err, sizeof err);
    if (!j) {
        tfmc_report(ctx, "the llvm backend cannot compile `%s`: %s", p->name, err);
        return TFMC_ERR_COMPILE;
    }
    p->jit = j;
    p->jit_run = api->entry(j);
    p->jit_api = api;
    return TFMC_OK;
}

/* With the llvm backend chosen, the program's JIT code (compiled the first time). */
static TfmcStatus ensure_jit(TfmcContext *ctx, const TfmcProgram *p)
{
    return ctx->llvm ? lib_ensure_jit(ctx, p) : TFMC_OK;
}

/* Run the program on n positions from pos0, the head on the last head_rows: through the JIT when
 * it is chosen and compiled (and no per-call times are asked for: the JIT's code has no seams
 * between calls), else the interpreter backend. Both make the same kernel calls. */
static void execute(bool llvm, const TfmcProgram *p, const int *ids, int n, int pos0, float *arena, int head_rows,
                    const TfmcrtExec *ex, double *seconds)
{
    if (llvm && p->jit_run && !seconds) {
        size_t hn = head_rows <= 0 ? 0 : head_rows > n ? (size_t)n : (size_t)head_rows;
        p->jit_run(arena, ids, (size_t)n, (size_t)pos0, hn, ex);
        return;
    }
    ibackend_run_timed(p->interp, ids, n, pos0, arena, head_rows, ex, seconds);
}

/* Token values to ids, BOS first. */
static void token_ids(const Model *m, const TfmcValue *tokens, size_t n, int *ids)
{
    ValueSet vocab = { (Value *)m->vocab, m->nvocab };
    ids[0] = m->bos_id;
    for (size_t i = 0; i < n; i++) ids[i + 1] = valueset_index(&vocab, tokens[i]);
}

/* Run the graph on one input; scratch holds arena_floats + positions * dim floats. */
static bool run_graph(bool llvm, const TfmcProgram *p, const TfmcValue *tokens, size_t n, float *scratch, TfmcValue *out)
{
    const Model *m = p->compiled;
    int ids[4096 + 1];
    if (n == 0 || n > (size_t)m->max_len) return false;
    token_ids(m, tokens, n, ids);
    for (size_t i = 1; i <= n; i++)
        if (ids[i] < 0) return false;
    execute(llvm, p, ids, (int)n + 1, 0, scratch, (int)n + 1, NULL, NULL);
    const float *resid = scratch + p->graph->tensors[p->graph->output].offset;
    for (size_t i = 0; i < n; i++) out[i] = model_decode(m, resid + (i + 1) * (size_t)m->dim);
    return true;
}

static float *scratch_new(TfmcContext *ctx, const TfmcProgram *p)
{
    return ctx->alloc.realloc(ctx->alloc.ud, NULL, p->graph->arena_floats * sizeof(float));
}

static TfmcStatus run(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, TfmcValue *out)
{
    TfmcStatus st = tfmc_compile(ctx, p);
    if (st != TFMC_OK) return st;
    if (!p->rasp) {
        tfmc_report(ctx, "`%s` is a model: run it with a session (tfmc_session_new)", p->name);
        return TFMC_ERR_USAGE;
    }
    if ((st = ensure_jit(ctx, p)) != TFMC_OK) return st;
    float *scratch = scratch_new(ctx, p);
    if (!scratch) return TFMC_ERR_NOMEM;
    bool ok = run_graph(ctx->llvm, p, tokens, n, scratch, out);
    ctx->alloc.realloc(ctx->alloc.ud, scratch, 0);
    if (!ok) {
        tfmc_report(ctx, "bad input for `%s`: length %zu or a token outside the vocabulary", p->name, n);
        return TFMC_ERR_INPUT;
    }
    return TFMC_OK;
}

TfmcStatus tfmc_run(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, TfmcValue *out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, run(ctx, p, tokens, n, out));
}

static TfmcStatus emit(TfmcContext *ctx, const TfmcProgram *p, TfmcEmitKind kind, FILE *out)
{
    TfmcStatus st = tfmc_compile(ctx, p);
    if (st != TFMC_OK) return st;
    if (kind == TFMC_EMIT_MODEL) model_print(p->compiled, out, &ctx->arena);
    else if (kind == TFMC_EMIT_KERNELS) kprogram_print(p->kernels, out);
    else graph_print(p->graph, out);
    return TFMC_OK;
}

TfmcStatus tfmc_emit(TfmcContext *ctx, const TfmcProgram *p, TfmcEmitKind kind, FILE *out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, emit(ctx, p, kind, out));
}

static TfmcStatus emit_c(TfmcContext *ctx, const TfmcProgram *p, const TfmcCOptions *opts, FILE *out)
{
    TfmcStatus st = tfmc_compile(ctx, p);
    if (st != TFMC_OK) return st;
    CgenOptions o = { 0 };
    o.prefix = p->name;
    o.source_path = p->file ? p->file->path : NULL;
    o.source_hash = p->file ? p->file->hash : 0;
    o.options = opts ? opts->options : NULL;
    o.main = opts && opts->main;
    o.weights = opts ? opts->weights : NULL;
    o.weights_name = opts ? opts->weights_name : NULL;
    o.arena = &ctx->arena;
    o.code_name = opts ? opts->code_name : NULL;
    o.byte_arrays = opts ? opts->byte_arrays : 0;
    /* with --main the model's own tokenizer by default; without, only the one asked for (its
     * NAME_encode and NAME_decode for a program that links the model) */
    const char *tokenizer = opts && opts->tokenizer ? opts->tokenizer : o.main ? p->tokenizer : NULL;
    if (opts && opts->tokenizer && opts->tokenizer[0] && p->kind != TFMC_PROGRAM_MODEL) {
        tfmc_report(ctx, "a tokenizer is carried by the C of a model declaration, not of a RASP program");
        return TFMC_ERR_USAGE;
    }
    if (p->kind == TFMC_PROGRAM_MODEL && tokenizer && tokenizer[0]) {
        st = tokenizer_embed(ctx, tokenizer, &o.tokenizer_json, &o.tokenizer_len, &o.tokenizer_load_bytes);
        /* an unreadable tokenizer is bad input here: TFMC_ERR_IO would say the C could not be written */
        if (st != TFMC_OK) return st == TFMC_ERR_IO ? TFMC_ERR_INPUT : st;
        o.tokenizer_name = tokenizer;
    }
    if (opts && opts->target && !(o.target = simd_target(opts->target))) {
        tfmc_report(ctx, "unknown SIMD target `%s` (%s)", opts->target, simd_target_names);
        return TFMC_ERR_USAGE;
    }
    if (opts && opts->header && !cgen_emit_header(p->kernels, &o, opts->header)) {
        tfmc_report(ctx, "cannot write the header of `%s`: %s", p->name, strerror(errno));
        return TFMC_ERR_IO;
    }
    if (!cgen_emit(p->kernels, &o, out)) {
        tfmc_report(ctx, "cannot write the C of `%s`: %s", p->name, strerror(errno));
        return TFMC_ERR_IO;
    }
    return TFMC_OK;
}

TfmcStatus tfmc_emit_c(TfmcContext *ctx, const TfmcProgram *p, const TfmcCOptions *opts, FILE *out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, emit_c(ctx, p, opts, out));
}

/* ------------------------------------------------------------- verify */

static bool same(const Model *m, Value want, Value got)
{
    if (m->out_kind == OUT_CATEGORICAL) {
        if (want.kind == TFMC_UNDEF || got.kind == TFMC_UNDEF) return want.kind == got.kind;
        return value_eq(want, got);
    }
    if (want.kind == TFMC_UNDEF || !value_is_number(want)) return false;
    double a = value_number(want), b = value_number(got);
    return fabs(a - b) <= 1e-4 * (fabs(a) > 1 ? fabs(a) : 1);
}

static uint64_t next_random(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* A selector over an SOp that is undefined at some position of this input: the SOp's node, or NULL. */
static const RaspNode *selector_reads_undefined(const RaspNode *sel, const RaspTrace *t, int *pos)
{
    if (sel->op != RN_SELECT) {
        const RaspNode *u = selector_reads_undefined(sel->in[0], t, pos);
        return u || !sel->in[1] ? u : selector_reads_undefined(sel->in[1], t, pos);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < t->n; i++)
            if (t->sop[sel->in[k]->id][i].kind == TFMC_UNDEF) {
                *pos = i;
                return sel->in[k];
            }
    return NULL;
}

#define LIMITS_DOC "docs/compiling.md, \"What it cannot represent\""

/* The first known limit of compiled weights (docs/compiling.md, "What it cannot represent") that
 * this input meets in a node the output depends on, as one "likely cause" line; nothing when none. */
static void report_likely_cause(const RaspProgram *rp, const RaspTrace *t, Arena *a, FILE *report)
{
    bool *live = ARENA_ARRAY(a, bool, rp->nnodes);
    live[rp->output->id] = true;
    for (int k = rp->nnodes - 1; k >= 0; k--)
        for (int j = 0; live[k] && j < 2; j++)
            if (rp->nodes[k]->in[j]) live[rp->nodes[k]->in[j]->id] = true;
    for (int k = 0; k < rp->nnodes; k++) {
        const RaspNode *node = rp->nodes[k];
        if (!live[k]) continue;
        /* ` `x` at line 5`, or ` at line 5` for an unnamed node ("this aggregate") */
        const char *what = rasp_node_describe(a, rp->file, node);
        what = arena_printf(a, "%s%s at line %d", strncmp(what, "this ", 5) ? " " : "",
                            strncmp(what, "this ", 5) ? what : "", node->loc.first_line);
        if (node->op == RN_AGGREGATE && !node->mean) {
            /* The head gives each of a query's m selected keys 1/m of the value's one-hot (an undefined
             * value has none), decoded as the value holding more than 1/2. A mix of values, or of
             * undefined and defined ones, is undefined to the interpreter; it differs in the output
             * when one value holds a majority, and in whatever reads the mix anywhere else. */
            const bool *sel = t->sel[node->in[0]->id];
            const Value *vals = t->sop[node->in[1]->id];
            for (int q = 0; q < t->n; q++) {
                int m = 0, first = -1, differs = -1, undefined = -1, major = -1, votes = 0;
                for (int j = 0; j < t->n; j++) {
                    if (!sel[q * t->n + j]) continue;
                    m++;
                    bool undef = vals[j].kind == TFMC_UNDEF;
                    if (undef) undefined = j;
                    else if (first < 0) first = j;
                    else if (differs < 0 && !value_eq(vals[first], vals[j])) differs = j;
                    /* Boyer-Moore majority vote, undefined counting as a value of its own */
                    bool same = major >= 0 && (vals[major].kind == TFMC_UNDEF) == undef &&
                                (undef || value_eq(vals[major], vals[j]));
                    if (votes == 0) major = j, votes = 1;
                    else votes += same ? 1 : -1;
                }
                int held = 0;
                for (int j = 0; major >= 0 && vals[major].kind != TFMC_UNDEF && j < t->n; j++)
                    held += sel[q * t->n + j] && vals[j].kind != TFMC_UNDEF && value_eq(vals[major], vals[j]);
                if (!(differs >= 0 || (undefined >= 0 && first >= 0)) || (node == rp->output && 2 * held <= m))
                    continue;
                char v1[64], v2[64];
                value_format(vals[first], v1, sizeof v1);
                if (differs >= 0) {
                    value_format(vals[differs], v2, sizeof v2);
                    fprintf(report, "  likely cause: the categorical aggregate%s selects differing values for "
                                    "position %d (%s at %d, %s at %d); the interpreter says undefined, the attention "
                                    "averages them. As in Tracr, a categorical aggregate must select equal values "
                                    "(%s)\n", what, q, v1, first, v2, differs, LIMITS_DOC);
                } else {
                    fprintf(report, "  likely cause: the categorical aggregate%s selects an undefined value (at %d) "
                                    "beside %s (at %d) for position %d; the interpreter says undefined, the attention "
                                    "averages the defined ones (%s)\n", what, undefined, v1, first, q, LIMITS_DOC);
                }
                return;
            }
        } else if (!node->is_selector && node->enc == ENC_NUMERICAL) {
            for (int i = 0; i < t->n; i++)
                if (t->sop[k][i].kind == TFMC_UNDEF) {
                    fprintf(report, "  likely cause: the numerical SOp%s is undefined at position %d; a numerical "
                                    "SOp has no undefined in the weights, which hold 0 there (%s)\n", what, i,
                            LIMITS_DOC);
                    return;
                }
        } else if (node->op == RN_SEL_NOT || node->op == RN_SEL_OR) {
            int pos = 0;
            const RaspNode *u = selector_reads_undefined(node, t, &pos);
            if (u) {
                fprintf(report, "  likely cause: the selector%s uses `%s` over %s, which is undefined at position "
                                "%d; the interpreter never selects an undefined value (so `not` selects it), the "
                                "weights' score table has no row for undefined (%s)\n", what,
                        node->op == RN_SEL_NOT ? "not" : "or", rasp_node_describe(a, rp->file, u), pos, LIMITS_DOC);
                return;
            }
        }
    }
}

static void report_counterexample(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n,
                                  const TfmcValue *want, const TfmcValue *got, FILE *report)
{
    fprintf(report, "counterexample for `%s`:\n  input:       ", p->name);
    tfmc_print_values(report, tokens, n);
    fprintf(report, "  interpreter: ");
    tfmc_print_values(report, want, n);
    fprintf(report, "  transformer: ");
    tfmc_print_values(report, got, n);
    Arena scratch;
    jmp_buf oom;
    arena_init(&scratch, &ctx->alloc, &oom);
    if (!setjmp(oom)) { /* out of memory: no cause line, the rest as ever */
        RaspTrace t;
        interp_run(p->rasp, tokens, (int)n, &scratch, &t);
        report_likely_cause(p->rasp, &t, &scratch, report);
    }
    arena_free(&scratch);
    fprintf(report, "trace of the interpreter:\n");
    tfmc_eval_trace(ctx, p, tokens, n, report);
}

/* The buffers of one verify run, from the context's allocator. */
typedef struct VerifyBuffers {
    float *scratch;
    TfmcValue *tokens; /* [3][len]: input, interpreter, transformer */
    int *digits;
} VerifyBuffers;

static void verify_buffers_free(TfmcContext *ctx, VerifyBuffers *b)
{
    ctx->alloc.realloc(ctx->alloc.ud, b->scratch, 0);
    ctx->alloc.realloc(ctx->alloc.ud, b->tokens, 0);
    ctx->alloc.realloc(ctx->alloc.ud, b->digits, 0);
}

/* Compare on count inputs (every one of lengths 1..len in order when exhaustive, else random). */
static TfmcStatus verify_loop(TfmcContext *ctx, const TfmcProgram *p, int len, long count, uint64_t seed,
                              VerifyBuffers *buf, TfmcVerifyResult *result, FILE *report)
{
    const Model *m = p->compiled;
    TfmcValue *tokens = buf->tokens, *want = tokens + len, *got = tokens + 2 * len;
    int *digits = buf->digits;
    int cur_len = 1;
    result->equal = true;
    for (long k = 0; k < count; k++) {
        size_t n;
        if (result->exhaustive) {
            /* odometer over digits[0..cur_len) */
            if (k > 0) {
                int i = 0;
                while (i < cur_len && ++digits[i] == m->nvocab) digits[i++] = 0;
                if (i == cur_len) {
                    cur_len++;
                    memset(digits, 0, sizeof(int) * (size_t)cur_len);
                }
            }
            n = (size_t)cur_len;
            for (size_t i = 0; i < n; i++) tokens[i] = m->vocab[digits[i]];
        } else {
            n = 1 + (size_t)(next_random(&seed) % (uint64_t)len);
            for (size_t i = 0; i < n; i++) tokens[i] = m->vocab[next_random(&seed) % (uint64_t)m->nvocab];
        }
        TfmcStatus st = tfmc_eval(ctx, p, tokens, n, want);
        if (st == TFMC_ERR_NOMEM) return st;
        if (st != TFMC_OK || !run_graph(ctx->llvm, p, tokens, n, buf->scratch, got)) {
            result->equal = false;
            break;
        }
        result->checked++;
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) ok = same(m, want[i], got[i]);
        if (!ok) {
            result->equal = false;
            if (report) report_counterexample(ctx, p, tokens, n, want, got, report);
            break;
        }
    }
    return TFMC_OK;
}

static TfmcStatus verify(TfmcContext *ctx, const TfmcProgram *p, const TfmcVerifyOptions *opts, TfmcVerifyResult *result,
                         FILE *report)
{
    memset(result, 0, sizeof *result);
    TfmcStatus st = tfmc_compile(ctx, p);
    if (st != TFMC_OK) return st;
    const Model *m = p->compiled;
    if (!p->rasp) {
        tfmc_report(ctx, "`%s` is a model declaration: verify compares a RASP program's transformer with its "
                         "interpreter", p->name);
        return TFMC_ERR_USAGE;
    }
    if ((st = ensure_jit(ctx, p)) != TFMC_OK) return st;
    int len = opts && opts->max_len > 0 ? opts->max_len : m->max_len;
    if (len > m->max_len) {
        tfmc_report(ctx, "--len %d is more than max_len %d of `%s`", len, m->max_len, p->name);
        return TFMC_ERR_USAGE;
    }
    long samples = opts && opts->samples > 0 ? opts->samples : 20000;
    uint64_t seed = opts && opts->seed ? opts->seed : 0x9E3779B97F4A7C15ull;
    /* how many sequences of length 1..len there are, saturating */
    double total = 0, pow = 1;
    for (int l = 1; l <= len; l++) {
        pow *= m->nvocab;
        total += pow;
    }
    result->exhaustive = total <= (double)samples;
    long count = result->exhaustive ? (long)total : samples;
    VerifyBuffers buf = { 0 };
    buf.scratch = ctx->alloc.realloc(ctx->alloc.ud, NULL, p->graph->arena_floats * sizeof(float));
    buf.tokens = ctx->alloc.realloc(ctx->alloc.ud, NULL, sizeof(TfmcValue) * (size_t)len * 3);
    buf.digits = ctx->alloc.realloc(ctx->alloc.ud, NULL, sizeof(int) * ((size_t)len + 1));
    if (!buf.scratch || !buf.tokens || !buf.digits) {
        verify_buffers_free(ctx, &buf);
        return TFMC_ERR_NOMEM;
    }
    memset(buf.digits, 0, sizeof(int) * ((size_t)len + 1));
    /* a recovery point of our own frees the buffers */
    jmp_buf here, *outer = ctx->arena.on_oom;
    ctx->arena.on_oom = &here;
    if (setjmp(here)) {
        ctx->arena.on_oom = outer;
        verify_buffers_free(ctx, &buf);
        longjmp(*outer, 1);
    }
    st = verify_loop(ctx, p, len, count, seed, &buf, result, report);
    ctx->arena.on_oom = outer;
    verify_buffers_free(ctx, &buf);
    return st;
}

TfmcStatus tfmc_verify(TfmcContext *ctx, const TfmcProgram *p, const TfmcVerifyOptions *opts, TfmcVerifyResult *result,
                       FILE *report)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, verify(ctx, p, opts, result, report));
}

/* -------------------------------------------------------- safetensors */

typedef struct Tensor {
    const char *name;
    const float *data;
    size_t rows, cols;
} Tensor;

static void json_string(Text *out, const char *s)
{
    text_putc(out, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') text_printf(out, "\\%c", c);
        else if (c < 32) text_printf(out, "\\u%04x", c);
        else text_putc(out, c);
    }
    text_putc(out, '"');
}

/* A JSON document written into a string (metadata values are strings in safetensors). */
static const char *json_in_string(Arena *a, void (*write)(Text *, const Model *), const Model *m)
{
    Text t = { a, NULL, 0, 0 };
    write(&t, m);
    return text_str(&t);
}

static void write_labels(Text *f, const Model *m)
{
    text_putc(f, '[');
    for (int i = 0; i < m->dim; i++) {
        if (i) text_putc(f, ',');
        json_string(f, m->dim_labels[i]);
    }
    text_putc(f, ']');
}

static void write_vocab(Text *f, const Model *m)
{
    char buf[128];
    text_putc(f, '[');
    for (int i = 0; i < m->nvocab; i++) {
        value_format(m->vocab[i], buf, sizeof buf);
        if (i) text_putc(f, ',');
        json_string(f, buf);
    }
    text_putc(f, ']');
}

static void write_output(Text *f, const Model *m)
{
    char buf[128];
    if (m->out_kind == OUT_NUMERICAL) {
        text_printf(f, "{\"kind\":\"numerical\",\"dim\":%d}", m->out_dim);
        return;
    }
    text_printf(f, "{\"kind\":\"categorical\",\"dims\":[");
    for (int i = 0; i < m->nout; i++) text_printf(f, "%s%d", i ? "," : "", m->out_dims[i]);
    text_printf(f, "],\"values\":[");
    for (int i = 0; i < m->nout; i++) {
        value_format(m->out_values[i], buf, sizeof buf);
        if (i) text_putc(f, ',');
        json_string(f, buf);
    }
    text_printf(f, "]}");
}

static void write_blocks(Text *f, const Model *m)
{
    text_putc(f, '[');
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        if (i) text_putc(f, ',');
        if (b->kind == BLOCK_ATTENTION)
            text_printf(f, "{\"kind\":\"attention\",\"heads\":%d,\"causal\":%s,\"scale\":%.9g}", b->nheads,
                    b->causal ? "true" : "false", (double)b->scale);
        else
            text_printf(f, "{\"kind\":\"mlp\",\"hidden\":%d,\"act\":\"relu\"}", b->hidden);
    }
    text_putc(f, ']');
}

typedef struct TensorList {
    Arena *arena;
    Tensor *v;
    int n, cap;
} TensorList;

static void collect(void *ud, const char *name, float **slot, int rows, int cols)
{
    TensorList *l = ud;
    /* vectors are written with shape [rows] */
    Tensor t = { name, *slot, cols ? (size_t)rows : 1, cols ? (size_t)cols : (size_t)rows };
    VEC_PUSH(l->arena, l->v, l->n, l->cap, t);
}

static TfmcStatus write_file(TfmcContext *ctx, const char *path, const Model *m, const Tensor *ts, int nt);

static TfmcStatus write_safetensors(TfmcContext *ctx, const TfmcProgram *p, const char *path)
{
    TfmcStatus st = tfmc_compile(ctx, p);
    if (st != TFMC_OK) return st;
    const Model *m = p->compiled;
    if (m->declared) {
        /* a declared model's weights, whatever they were read from, in our scheme */
        TensorList l = { &ctx->arena, NULL, 0, 0 };
        model_tfmc_tensors(&ctx->arena, (Model *)m, collect, &l); /* collect only reads */
        return write_file(ctx, path, m, l.v, l.n);
    }
    size_t d = (size_t)m->dim;
    Tensor *ts = NULL;
    int nt = 0, cap = 0;
    Tensor t0 = { "tok_emb", m->tok_emb, (size_t)m->vocab_size, d };
    Tensor t1 = { "pos_emb", m->pos_emb, (size_t)m->positions, d };
    VEC_PUSH(&ctx->arena, ts, nt, cap, t0);
    VEC_PUSH(&ctx->arena, ts, nt, cap, t1);
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        if (b->kind == BLOCK_ATTENTION) {
            for (int h = 0; h < b->nheads; h++) {
                const ModelHead *hd = &b->heads[h];
                static const char *const names[] = { "wq", "wk", "wv", "wo" };
                const float *data[] = { hd->wq, hd->wk, hd->wv, hd->wo };
                size_t rows[] = { (size_t)hd->dk, (size_t)hd->dk, (size_t)hd->dv, d };
                size_t cols[] = { d, d, d, (size_t)hd->dv };
                for (int k = 0; k < 4; k++) {
                    Tensor t = { arena_printf(&ctx->arena, "blocks.%d.heads.%d.%s", i, h, names[k]), data[k], rows[k], cols[k] };
                    VEC_PUSH(&ctx->arena, ts, nt, cap, t);
                }
            }
        } else {
            Tensor a = { arena_printf(&ctx->arena, "blocks.%d.mlp.w1", i), b->w1, (size_t)b->hidden, d };
            Tensor bb = { arena_printf(&ctx->arena, "blocks.%d.mlp.b1", i), b->b1, 1, (size_t)b->hidden };
            Tensor c = { arena_printf(&ctx->arena, "blocks.%d.mlp.w2", i), b->w2, d, (size_t)b->hidden };
            Tensor e = { arena_printf(&ctx->arena, "blocks.%d.mlp.b2", i), b->b2, 1, d };
            VEC_PUSH(&ctx->arena, ts, nt, cap, a);
            VEC_PUSH(&ctx->arena, ts, nt, cap, bb);
            VEC_PUSH(&ctx->arena, ts, nt, cap, c);
            VEC_PUSH(&ctx->arena, ts, nt, cap, e);
        }
    }
    return write_file(ctx, path, m, ts, nt);
}

/* The file: header length, JSON header (metadata for RASP models), little-endian f32 data. */
static TfmcStatus write_file(TfmcContext *ctx, const char *path, const Model *m, const Tensor *ts, int nt)
{
    Arena *a = &ctx->arena;
    Text h = { a, NULL, 0, 0 };
    text_printf(&h, "{\"__metadata__\":{\"format\":\"tfmc\",\"program\":");
    json_string(&h, m->name);
    if (!m->declared) {
        text_printf(&h, ",\"residual_labels\":");
        json_string(&h, json_in_string(a, write_labels, m));
        text_printf(&h, ",\"vocab\":");
        json_string(&h, json_in_string(a, write_vocab, m));
        text_printf(&h, ",\"bos_id\":\"%d\",\"output\":", m->bos_id);
        json_string(&h, json_in_string(a, write_output, m));
        text_printf(&h, ",\"blocks\":");
        json_string(&h, json_in_string(a, write_blocks, m));
    }
    text_printf(&h, "}");
    size_t offset = 0;
    for (int i = 0; i < nt; i++) {
        size_t bytes = ts[i].rows * ts[i].cols * sizeof(float);
        text_printf(&h, ",");
        json_string(&h, ts[i].name);
        if (ts[i].rows == 1 && (m->declared || strstr(ts[i].name, ".b")))
            text_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}", ts[i].cols, offset,
                        offset + bytes);
        else
            text_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}", ts[i].rows, ts[i].cols,
                        offset, offset + bytes);
        offset += bytes;
    }
    text_printf(&h, "}");
    /* pad the header with spaces to a multiple of 8 bytes */
    while (h.len % 8) text_putc(&h, ' ');
    FILE *f = fopen(path, "wb");
    if (!f) {
        tfmc_report(ctx, "cannot write `%s`: %s", path, strerror(errno));
        return TFMC_ERR_IO;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(h.s, 1, h.len, f);
    for (int i = 0; i < nt; i++) {
        /* little-endian f32, as safetensors requires */
        for (size_t k = 0; k < ts[i].rows * ts[i].cols; k++) {
            uint32_t bits;
            memcpy(&bits, &ts[i].data[k], 4);
            unsigned char b4[4] = { (unsigned char)bits, (unsigned char)(bits >> 8), (unsigned char)(bits >> 16),
                                    (unsigned char)(bits >> 24) };
            fwrite(b4, 1, 4, f);
        }
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        tfmc_report(ctx, "cannot write `%s`", path);
        return TFMC_ERR_IO;
    }
    return TFMC_OK;
}

TfmcStatus tfmc_write_safetensors(TfmcContext *ctx, const TfmcProgram *p, const char *path)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, write_safetensors(ctx, p, path));
}

/* ------------------------------------------------------------ sessions */

struct TfmcSession {
    TfmcContext *ctx;
    const TfmcProgram *p;
    float *arena;
    int len;
    int *history;   /* every token so far: models with bidirectional attention recompute */
    bool cached;    /* every attention is causal: the KV caches hold what later steps need */
    /* threads: a pool each for prefill and decode (one, when the counts agree; none for 1) */
    TfmcrtPool *prefill_pool, *decode_pool;
    size_t grain;
    double *seconds; /* tfmc_session_profile: each kernel call's time so far, or NULL */
    long steps[2];   /* and the prefills and decodes it covers */
};

int tfmc_model_vocab(const TfmcProgram *p) { return p->compiled ? p->compiled->vocab_size : 0; }

/* Zeroed memory for a session. From the C library, calloc: a large block comes as fresh pages that
 * are zero without being touched, so the KV caches and the logits of max_len positions cost
 * nothing until used (a memset would fault in every page at once). */
static void *session_alloc(TfmcContext *ctx, size_t bytes)
{
    if (ctx->alloc.realloc == libc_allocator.realloc) return calloc(1, bytes ? bytes : 1); /* freed by its free() */
    void *p = ctx->alloc.realloc(ctx->alloc.ud, NULL, bytes ? bytes : 1);
    if (p) memset(p, 0, bytes);
    return p;
}

TfmcStatus tfmc_session_new(TfmcContext *ctx, const TfmcProgram *p, TfmcSession **out)
{
    *out = NULL;
    TfmcStatus st = tfmc_compile(ctx, p);
    if (st != TFMC_OK) return st;
    if (!p->compiled->declared) {
        tfmc_report(ctx, "`%s` is a RASP program: use tfmc_run", p->name);
        return TFMC_ERR_USAGE;
    }
    if ((st = ensure_jit(ctx, p)) != TFMC_OK) return st;
    TfmcSession *s = session_alloc(ctx, sizeof *s);
    if (!s) return TFMC_ERR_NOMEM;
    s->ctx = ctx;
    s->p = p;
    s->arena = session_alloc(ctx, p->graph->arena_floats * sizeof(float));
    s->history = session_alloc(ctx, (size_t)p->compiled->max_len * sizeof(int));
    if (!s->arena || !s->history) {
        tfmc_session_free(s);
        return TFMC_ERR_NOMEM;
    }
    s->cached = true;
    for (int i = 0; i < p->compiled->nblocks; i++)
        if (p->compiled->blocks[i].kind == BLOCK_MHA && !p->compiled->blocks[i].causal) s->cached = false;
    *out = s;
    return TFMC_OK;
}

static void session_free_pools(TfmcSession *s)
{
    if (s->decode_pool != s->prefill_pool) tfmcrt_pool_free(s->decode_pool);
    tfmcrt_pool_free(s->prefill_pool);
    s->prefill_pool = s->decode_pool = NULL;
}

TfmcStatus tfmc_session_set_threads(TfmcSession *s, int prefill_threads, int decode_threads)
{
    int np = prefill_threads > 0 ? prefill_threads : tfmcrt_cores();
    int nd = decode_threads > 0 ? decode_threads : tfmcrt_cores();
    TfmcrtPool *pp = NULL, *dp = NULL;
    int want = np;
    if (np > 1 && !(pp = tfmcrt_pool_new(np))) goto fail;
    want = nd;
    if (nd == np) dp = pp;
    else if (nd > 1 && !(dp = tfmcrt_pool_new(nd))) goto fail;
    session_free_pools(s);
    s->prefill_pool = pp;
    s->decode_pool = dp;
    return TFMC_OK;
fail:
    tfmcrt_pool_free(pp);
    tfmc_report(s->ctx, "cannot start %d threads", want);
    return TFMC_ERR_NOMEM;
}

void tfmc_session_set_task_grain(TfmcSession *s, size_t grain) { s->grain = grain; }

TfmcStatus tfmc_session_new_threads(TfmcContext *ctx, const TfmcProgram *p, int nthreads, TfmcSession **out)
{
    TfmcStatus st = tfmc_session_new(ctx, p, out);
    if (st != TFMC_OK || nthreads == 1) return st;
    st = tfmc_session_set_threads(*out, nthreads, nthreads);
    if (st != TFMC_OK) {
        tfmc_session_free(*out);
        *out = NULL;
    }
    return st;
}

void tfmc_session_free(TfmcSession *s)
{
    if (!s) return;
    session_free_pools(s);
    TfmcAllocator *a = &s->ctx->alloc;
    a->realloc(a->ud, s->arena, 0);
    a->realloc(a->ud, s->history, 0);
    a->realloc(a->ud, s->seconds, 0);
    a->realloc(a->ud, s, 0);
}

void tfmc_session_reset(TfmcSession *s) { s->len = 0; }

/* Feed n tokens; the head computes the logits of the last `rows` of them (n, 1 or 0), which go
 * to logits. */
static TfmcStatus session_feed(TfmcSession *s, const int *ids, size_t n, float *logits, size_t rows, bool decode)
{
    const Model *m = s->p->compiled;
    const Graph *g = s->p->graph;
    if (n == 0) {
        tfmc_report(s->ctx, "no tokens to feed to `%s`: prefill takes at least one", m->name);
        return TFMC_ERR_INPUT;
    }
    if ((size_t)s->len + n > (size_t)m->max_len) {
        tfmc_report(s->ctx, "%zu tokens after %d: more than max_len %d of `%s`", n, s->len, m->max_len, m->name);
        return TFMC_ERR_INPUT;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab_size) {
            tfmc_report(s->ctx, "token id %d is outside 0..%d", ids[i], m->vocab_size - 1);
            return TFMC_ERR_INPUT;
        }
    memcpy(s->history + s->len, ids, n * sizeof(int));
    size_t total = n; /* positions in this run; the rows asked for are its last `rows` */
    TfmcrtExec ex = tfmcrt_pool_exec(decode ? s->decode_pool : s->prefill_pool, s->grain);
    if (s->cached) {
        execute(s->ctx->llvm, s->p, ids, (int)n, s->len, s->arena, (int)rows, &ex, s->seconds);
    } else {
        /* bidirectional attention: every position sees the new tokens, so recompute all */
        total = (size_t)s->len + n;
        execute(s->ctx->llvm, s->p, s->history, (int)total, 0, s->arena, (int)rows, &ex, s->seconds);
    }
    s->len += (int)n;
    if (s->seconds) s->steps[decode]++;
    if (rows) {
        const float *out = s->arena + g->tensors[g->output].offset;
        memcpy(logits, out + (total - rows) * (size_t)m->vocab_size, rows * (size_t)m->vocab_size * sizeof(float));
    }
    return TFMC_OK;
}

TfmcStatus tfmc_session_prefill(TfmcSession *s, const int *ids, size_t n, float *logits)
{
    return session_feed(s, ids, n, logits, logits ? n : 0, false);
}

TfmcStatus tfmc_session_prefill_last(TfmcSession *s, const int *ids, size_t n, float *logits)
{
    return session_feed(s, ids, n, logits, logits ? 1 : 0, false);
}

TfmcStatus tfmc_session_decode(TfmcSession *s, int id, float *logits)
{
    return session_feed(s, &id, 1, logits, logits ? 1 : 0, true);
}

int tfmc_argmax(const float *v, size_t n) { return tfmcrt_argmax(v, n); }

TfmcStatus tfmc_session_profile(TfmcSession *s, bool on)
{
    TfmcAllocator *a = &s->ctx->alloc;
    if (!on) {
        a->realloc(a->ud, s->seconds, 0);
        s->seconds = NULL;
        return TFMC_OK;
    }
    if (s->seconds) return TFMC_OK;
    size_t n = (size_t)s->p->kernels->ncalls;
    s->seconds = session_alloc(s->ctx, sizeof(double) * (n ? n : 1));
    s->steps[0] = s->steps[1] = 0;
    return s->seconds ? TFMC_OK : TFMC_ERR_NOMEM;
}

/* Time by kernel, most first, then by layer. */
void tfmc_session_print_profile(const TfmcSession *s, FILE *out)
{
    if (!s->seconds) return;
    const KProgram *k = s->p->kernels;
    const Graph *g = k->g;
    double by_kernel[K_COUNT] = { 0 }, total = 0;
    long calls[K_COUNT] = { 0 };
    for (int i = 0; i < k->ncalls; i++) {
        by_kernel[k->calls[i].kernel] += s->seconds[i];
        calls[k->calls[i].kernel]++;
        total += s->seconds[i];
    }
    fprintf(out, "profile of `%s`: %ld prefills, %ld decode steps, %.3f ms in kernels\n", g->name, s->steps[0],
            s->steps[1], total * 1e3);
    fprintf(out, "  %-26s %9s %12s %7s\n", "kernel", "calls/run", "ms", "share");
    bool done[K_COUNT] = { false };
    for (;;) {
        int best = -1;
        for (int q = 0; q < K_COUNT; q++)
            if (!done[q] && calls[q] && (best < 0 || by_kernel[q] > by_kernel[best])) best = q;
        if (best < 0) break;
        done[best] = true;
        fprintf(out, "  %-26s %9ld %12.3f %6.1f%%\n", kernel_info[best].name, calls[best], by_kernel[best] * 1e3,
                total > 0 ? 100 * by_kernel[best] / total : 0.0);
    }
    /* per layer (the embeddings and the head on their own) */
    fprintf(out, "  %-36s %12s %7s\n", "layer", "ms", "share");
    int layer = -2;
    double sum = 0;
    for (int i = 0; i <= k->ncalls; i++) {
        int l = i < k->ncalls ? g->ops[k->calls[i].op].layer : -3;
        bool head = i < k->ncalls && k->calls[i].head;
        if (head) l = -4;
        if (i > 0 && l != layer) {
            const char *name = layer >= 0 ? g->layer_names[layer] : layer == -4 ? "head" : "embed";
            fprintf(out, "  %-36s %12.3f %6.1f%%\n", name, sum * 1e3, total > 0 ? 100 * sum / total : 0.0);
            sum = 0;
        }
        layer = l;
        if (i < k->ncalls) sum += s->seconds[i];
    }
}

bool tfmc_backend_available(const char *backend)
{
    if (backend && !strcmp(backend, "llvm")) return lib_jit_api(NULL) != NULL;
    return backend && !strcmp(backend, "interp");
}

TfmcStatus tfmc_set_backend(TfmcContext *ctx, const char *backend)
{
    if (backend && !strcmp(backend, "interp")) {
        ctx->llvm = false;
        return TFMC_OK;
    }
    if (backend && !strcmp(backend, "llvm")) {
        const char *why = NULL;
        if (!lib_jit_api(&why)) {
            tfmc_report(ctx, "%s", why);
            return TFMC_ERR_USAGE;
        }
        ctx->llvm = true;
        return TFMC_OK;
    }
    tfmc_report(ctx, "unknown backend `%s` (interp or llvm)", backend ? backend : "(null)");
    return TFMC_ERR_USAGE;
}
