/* cgen_model.c: the portable C backend for declared models. One C99 file: weights as hex floats,
 * a fixed arena (activations for max_len positions, the KV caches, kernel scratch), and
 *   NAME_init, NAME_reset, NAME_prefill(ctx, tokens, n, logits), NAME_decode(ctx, token, logits)
 * calling the runtime's kernels in the graph's order; optionally a main() with the three modes
 * of `tfmc run` (argmax per position, --logits, --generate K). */
#include <stdlib.h>

#include "cgen.h"
#include "tfmc_config.h" /* TFMC_VERSION: the backends do not call up into the library */

/* The name of the array holding w, writing it the first time. */
static const char *weights(Cgen *c, const float *w, size_t n, const char *name, const char *comment)
{
    if (!w) return "NULL";
    for (int i = 0; i < c->nemitted; i++)
        if (c->emitted[i] == w) return c->emitted_names[i];
    const char *full = arena_printf(c->o->arena, "%s_%s", c->P, name);
    cgen_weights_array(c, name, w, n, comment);
    int k = c->nemitted;
    if (c->nemitted == c->cap_emitted) {
        int cap = c->cap_emitted;
        c->emitted = arena_grow(c->o->arena, c->emitted, &cap, k + 1, sizeof(*c->emitted));
        cap = c->cap_emitted;
        c->emitted_names = arena_grow(c->o->arena, c->emitted_names, &cap, k + 1, sizeof(*c->emitted_names));
        c->cap_emitted = cap;
    }
    c->emitted[k] = w;
    c->emitted_names[k] = full;
    c->nemitted++;
    return full;
}

static const char *norm_kind(NormKind k)
{
    switch (k) {
    case NORM_NONE: return "TFMCRT_NORM_NONE";
    case NORM_LAYERNORM: return "TFMCRT_LAYERNORM";
    case NORM_RMSNORM: return "TFMCRT_RMSNORM";
    case NORM_DYT: return "TFMCRT_DYT";
    }
    return "TFMCRT_NORM_NONE";
}

static const char *score_name(ScoreKind s)
{
    switch (s) {
    case SCORE_SOFTMAX: return "TFMCRT_SOFTMAX";
    case SCORE_SOFTMAX1: return "TFMCRT_SOFTMAX1";
    case SCORE_LINEAR: return "TFMCRT_LINEAR";
    case SCORE_HARD: return "TFMCRT_HARD";
    }
    return "TFMCRT_SOFTMAX";
}

/* Weights and per-op constant tables, before the code that uses them. */
static void emit_constants(Cgen *c)
{
    const Graph *g = c->g;
    const Model *m = c->m;
    size_t d = (size_t)m->dim;
    char id[128], name[192];
    weights(c, m->tok_emb, (size_t)m->vocab_size * d, "tok_emb", "token embedding [vocab][dim]");
    if (m->pos == POS_LEARNED || m->pos == POS_SINUSOIDAL)
        weights(c, m->pos_emb, (size_t)m->positions * d, "pos_emb", "position embedding [max_len][dim]");
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *op = &g->ops[i];
        const char *t = cgen_ident(g->tensors[op->out].name, id, sizeof id);
        if (op->kind == G_LINEAR && op->vals) {
            snprintf(name, sizeof name, "w_%s", t);
            cgen_sparse_arrays(c, name, op, g->tensors[op->out].name);
            snprintf(name, sizeof name, "b_%s", t);
            weights(c, op->b, (size_t)op->rows, name, g->tensors[op->out].name);
        } else if (op->kind == G_LINEAR) {
            snprintf(name, sizeof name, "w_%s", t);
            weights(c, op->w, (size_t)op->rows * op->cols, name, g->tensors[op->out].name);
            snprintf(name, sizeof name, "b_%s", t);
            weights(c, op->b, (size_t)op->rows, name, g->tensors[op->out].name);
        } else if (op->kind == G_NORM) {
            snprintf(name, sizeof name, "%s_weight", t);
            weights(c, op->norm->weight, d, name, g->tensors[op->out].name);
            snprintf(name, sizeof name, "%s_bias", t);
            weights(c, op->norm->bias, d, name, g->tensors[op->out].name);
        } else if (op->kind == G_ATTEND || op->kind == G_MHA_SCORES || op->kind == G_MHA_SOFTMAX || op->kind == G_MHA_MIX) {
            const ModelBlock *b = op->block;
            fprintf(c->out, "static const TfmcrtAttention %s_%s_options = { %d, %d, %d, %s, %d, %d, %d, %af };\n\n", c->P,
                    t, b->mha_heads, b->kv_heads, b->head_dim, score_name(b->score), b->causal ? 1 : 0, b->window,
                    b->pos == POS_ALIBI ? 1 : 0, (double)b->scale);
        } else if (op->kind == G_MOE) {
            const ModelBlock *b = op->block;
            const char **names = ARENA_ARRAY(c->o->arena, const char *, 6 * (size_t)b->experts);
            snprintf(name, sizeof name, "%s_router", t);
            const char *router = weights(c, b->router, (size_t)b->experts * d, name, "router [experts][dim]");
            for (int e = 0; e < b->experts; e++) {
                const Ffn *f = &b->expert[e];
                size_t h = (size_t)f->hidden;
                const float *arrays[6] = { f->up, f->b_up, f->gate, f->b_gate, f->down, f->b_down };
                size_t sizes[6] = { h * d, h, h * d, h, d * h, d };
                static const char *const parts[6] = { "up", "b_up", "gate", "b_gate", "down", "b_down" };
                for (int k = 0; k < 6; k++) {
                    snprintf(name, sizeof name, "%s_e%d_%s", t, e, parts[k]);
                    names[6 * e + k] = weights(c, arrays[k], sizes[k], name, "expert");
                }
            }
            fprintf(c->out, "static const TfmcrtFfn %s_%s_experts[%d] = {\n", c->P, t, b->experts);
            for (int e = 0; e < b->experts; e++) {
                fprintf(c->out, "    { %s, %s, %s, %s, %s, %s },\n", names[6 * e], names[6 * e + 1], names[6 * e + 2],
                        names[6 * e + 3], names[6 * e + 4], names[6 * e + 5]);
            }
            fprintf(c->out, "};\n\n");
            (void)router; /* the array is named %s_%s_router, as the call in emit_run expects */
        }
    }
}

/* The forward pass over positions pos0..pos0+n-1, in graph order. */
static void emit_run(Cgen *c)
{
    const Graph *g = c->g;
    const Model *m = c->m;
    const char *P = c->P;
    char id[128], a[128], b[128], name[192];
    fprintf(c->out, "/* The transformer on ids[0..n) at positions pos0..; the final norm and the logits only for\n"
                    " * the last hn positions (n: all, 0: none), in their rows. The kernels with an execution\n"
                    " * context run on its threads (NULL: this one), with the same results at every count. */\n");
    fprintf(c->out, "static void %s_run(%s_ctx *ctx, const TfmcrtExec *ex, const int *ids, size_t n, size_t pos0, size_t hn)\n{\n", P, P);
    for (int t = 0; t < g->ntensors; t++)
        if (graph_tensor_used(g, t))
            fprintf(c->out, "    float *%s = ctx->arena + %zu;\n", cgen_ident(g->tensors[t].name, id, sizeof id),
                    g->tensors[t].offset);
    fprintf(c->out, "    float *scratch = ctx->arena + %zu;\n    size_t p, hs = n - hn;\n\n", g->scratch);
    int block = -1;
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *op = &g->ops[i];
        const char *out = cgen_ident(g->tensors[op->out].name, id, sizeof id);
        if (op->in[0] >= 0) cgen_ident(g->tensors[op->in[0]].name, a, sizeof a);
        if (op->in[1] >= 0) cgen_ident(g->tensors[op->in[1]].name, b, sizeof b);
        int bi = -1;
        if (sscanf(g->tensors[op->out].name, "b%d.", &bi) == 1 && bi != block) {
            block = bi;
            const ModelBlock *mb = &m->blocks[bi];
            fprintf(c->out, "\n    /* block %d: %s */\n", bi,
                    mb->kind == BLOCK_MHA ? "attention" : mb->kind == BLOCK_FFN ? "feed-forward" : "mixture of experts");
        }
        size_t cols = (size_t)g->tensors[op->out].cols;
        /* head ops (final norm, logits: G_NORM and G_LINEAR) run on the rows asked for */
        char O[160], A[160], guard[16] = "";
        const char *N = "n";
        snprintf(O, sizeof O, "%s", out);
        snprintf(A, sizeof A, "%s", op->in[0] >= 0 ? a : "");
        if (op->head) {
            if (i == 0 || !g->ops[i - 1].head) fprintf(c->out, "\n    /* the head, for the last hn positions */\n");
            snprintf(O, sizeof O, "%s + hs * %zu", out, cols);
            snprintf(A, sizeof A, "%s + hs * %d", a, g->tensors[op->in[0]].cols);
            N = "hn";
            snprintf(guard, sizeof guard, "if (hn) ");
        }
        switch (op->kind) {
        case G_EMBED:
            fprintf(c->out, "    /* embeddings */\n    for (p = 0; p < n; p++)\n");
            if (m->pos == POS_LEARNED || m->pos == POS_SINUSOIDAL)
                fprintf(c->out, "        tfmcrt_add(%s + p * %d, %s_tok_emb + (size_t)ids[p] * %d, %s_pos_emb + (pos0 + p) * %d, %d);\n",
                        out, m->dim, P, m->dim, P, m->dim, m->dim);
            else
                fprintf(c->out, "        tfmcrt_copy(%s + p * %d, %s_tok_emb + (size_t)ids[p] * %d, %d);\n", out,
                        m->dim, P, m->dim, m->dim);
            break;
        case G_LINEAR:
            snprintf(name, sizeof name, "w_%s", out);
            if (op->vals)
                fprintf(c->out, "    %stfmcrt_linear_csr_ex(ex, %s, %s, %s, %s_%s_rowptr, %s_%s_colidx, %s_%s_vals, %s, %d, %d);\n",
                        guard, O, A, N, P, name, P, name, P, name, weights(c, op->b, 0, "", ""), op->rows, op->cols);
            else
                fprintf(c->out, "    %stfmcrt_linear_ex(ex, %s, %s, %s, %s, %s, %d, %d);\n", guard, O, A, N,
                        weights(c, op->w, 0, name, ""), weights(c, op->b, 0, "", ""), op->rows, op->cols);
            break;
        case G_NORM:
            fprintf(c->out, "    %stfmcrt_norm_ex(ex, %s, %s, %s, %d, %s, %af, %af, %s, %s);\n", guard, O, A, N, m->dim,
                    norm_kind(op->norm->kind), (double)op->norm->eps, (double)op->norm->alpha,
                    weights(c, op->norm->weight, 0, "", ""), weights(c, op->norm->bias, 0, "", ""));
            break;
        case G_ACT:
            fprintf(c->out, "    tfmcrt_copy(%s, %s, n * %zu);\n", out, a, cols);
            fprintf(c->out, "    tfmcrt_act_ex(ex, %s, n * %zu, %s);\n", out, cols, cgen_act_name(op->act));
            break;
        case G_GLU: fprintf(c->out, "    tfmcrt_glu_ex(ex, %s, %s, %s, n * %zu, %s);\n", out, a, b, cols, cgen_act_name(op->act)); break;
        case G_ADD: fprintf(c->out, "    tfmcrt_add(%s, %s, %s, n * %zu);  /* %s */\n", out, a, b, cols, op->comment); break;
        case G_ROPE:
            fprintf(c->out, "    tfmcrt_rope_ex(ex, %s, n, %d, %d, pos0, %af);  /* %s */\n", out, op->heads, op->block->head_dim,
                    (double)op->block->rope_base, op->comment);
            break;
        case G_KV_STORE: {
            char kc[128], vc[128];
            cgen_ident(g->tensors[op->cache[0]].name, kc, sizeof kc);
            cgen_ident(g->tensors[op->cache[1]].name, vc, sizeof vc);
            fprintf(c->out, "    tfmcrt_kv_store(%s, %s, %s, %s, n, pos0, %d);\n", kc, vc, a, b, g->tensors[op->cache[0]].cols);
            break;
        }
        case G_ATTEND: {
            char kc[128], vc[128];
            cgen_ident(g->tensors[op->cache[0]].name, kc, sizeof kc);
            cgen_ident(g->tensors[op->cache[1]].name, vc, sizeof vc);
            fprintf(c->out, "    tfmcrt_attend_ex(ex, %s, %s, %s, %s, n, pos0, &%s_%s_options, scratch);\n", out, a, kc, vc, P, out);
            break;
        }
        case G_MOE:
            fprintf(c->out, "    tfmcrt_moe_ex(ex, %s, %s, n, %d, %s_%s_router, %s_%s_experts, %d, %d, %d, %s, scratch);\n", out, a,
                    m->dim, P, out, P, out, op->block->experts, op->block->top, op->block->ffn.hidden,
                    cgen_act_name(op->block->ffn.act));
            break;
        case G_MHA_SCORES: case G_MHA_SOFTMAX: case G_MHA_MIX: {
            char kc[128];
            const char *fn = op->kind == G_MHA_SCORES    ? "tfmcrt_mha_scores_ex"
                             : op->kind == G_MHA_SOFTMAX ? "tfmcrt_mha_softmax_ex"
                                                         : "tfmcrt_mha_mix_ex";
            fprintf(c->out, "    %s(ex, %s, %s, ", fn, out, a);
            if (op->kind != G_MHA_SOFTMAX)
                fprintf(c->out, "%s, ", cgen_ident(g->tensors[op->cache[op->kind == G_MHA_MIX]].name, kc, sizeof kc));
            fprintf(c->out, "n, pos0, %d, &%s_%s_options);\n", m->positions, P, out);
            break;
        }
        case G_SLICE:
            fprintf(c->out, "    tfmcrt_slice(%s, %s, n, %d, %d, %d);  /* from the fused projection */\n", out, a,
                    g->tensors[op->in[0]].cols, op->rows, g->tensors[op->out].cols);
            break;
        case G_SCORES: case G_SOFTMAX: case G_MIX: case G_FUSED_ATTENTION: break; /* RASP graphs only */
        }
    }
    fprintf(c->out, "}\n\n");
}

static void emit_api(Cgen *c, bool cached)
{
    const Model *m = c->m;
    const Graph *g = c->g;
    const char *P = c->P;
    char up[128], id[128];
    cgen_upper(P, up, sizeof up);
    const char *logits = cgen_ident(g->tensors[g->output].name, id, sizeof id);
    fprintf(c->out,
            "int %s_init(%s_ctx *ctx, void *arena, size_t bytes);\n"
            "int %s_init(%s_ctx *ctx, void *arena, size_t bytes)\n{\n"
            "    if (!ctx || !arena || bytes < %s_ARENA_BYTES) return -1;\n"
            "    ctx->arena = (float *)arena;\n    ctx->len = 0;\n"
            "    ctx->prefill_exec = ctx->decode_exec = NULL;\n    return 0;\n}\n\n"
            "/* Threads: prefill (several tokens) runs on prefill's, decode (one token) on decode's: a\n"
            " * runtime pool (tfmcrt_pool_exec(tfmcrt_pool_new(N), 0)) or the caller's own parallel_for;\n"
            " * NULL: the calling thread only. The logits are the same bit for bit whatever they are. The\n"
            " * contexts are not copied: they must outlive their use. */\n"
            "void %s_set_exec(%s_ctx *ctx, const TfmcrtExec *prefill, const TfmcrtExec *decode);\n"
            "void %s_set_exec(%s_ctx *ctx, const TfmcrtExec *prefill, const TfmcrtExec *decode)\n{\n"
            "    ctx->prefill_exec = prefill;\n    ctx->decode_exec = decode;\n}\n\n"
            "/* Forget every position: the next prefill starts a new sequence. */\n"
            "void %s_reset(%s_ctx *ctx);\nvoid %s_reset(%s_ctx *ctx) { ctx->len = 0; }\n\n",
            P, P, P, P, up, P, P, P, P, P, P, P, P);
    fprintf(c->out,
            "/* Feed tokens[0..n); the logits of the last `rows` of them (n, 1 or 0) go to logits. */\n"
            "static int %s_feed(%s_ctx *ctx, const int *tokens, int n, float *logits, int rows, int decode)\n{\n"
            "    int i;\n    size_t total = (size_t)n;\n"
            "    const TfmcrtExec *ex = decode ? ctx->decode_exec : ctx->prefill_exec;\n"
            "    if (n < 1 || ctx->len + n > %s_MAX_LEN) return -1;\n"
            "    for (i = 0; i < n; i++) {\n        if (tokens[i] < 0 || tokens[i] >= %s_VOCAB) return -2;\n"
            "        ctx->tokens[ctx->len + i] = tokens[i];\n    }\n",
            P, P, up, up);
    if (cached)
        fprintf(c->out, "    %s_run(ctx, ex, tokens, (size_t)n, (size_t)ctx->len, (size_t)rows);\n", P);
    else
        fprintf(c->out, "    /* bidirectional attention: every position sees the new tokens, so run them all */\n"
                        "    total = (size_t)(ctx->len + n);\n"
                        "    %s_run(ctx, ex, ctx->tokens, total, 0, (size_t)rows);\n", P);
    fprintf(c->out,
            "    ctx->len += n;\n"
            "    if (rows) memcpy(logits, ctx->arena + %zu + (total - (size_t)rows) * %d, sizeof(float) * (size_t)rows * %d);\n"
            "    return 0;\n}\n\n",
            g->tensors[g->output].offset, m->vocab_size, m->vocab_size);
    (void)logits;
    fprintf(c->out,
            "/* Feed tokens[0..n) at the next positions; logits (when not NULL) receives [n][%s_VOCAB];\n"
            " * with NULL the final norm and logits are not computed. Returns 0, -1 when the sequence\n"
            " * would pass %s_MAX_LEN, -2 for a bad token id. */\n"
            "int %s_prefill(%s_ctx *ctx, const int *tokens, int n, float *logits);\n"
            "int %s_prefill(%s_ctx *ctx, const int *tokens, int n, float *logits)\n"
            "{\n    return %s_feed(ctx, tokens, n, logits, logits ? n : 0, 0);\n}\n\n"
            "/* The same, but logits receives [%s_VOCAB], those of the last position, the only ones\n"
            " * computed (a prompt before generation). */\n"
            "int %s_prefill_last(%s_ctx *ctx, const int *tokens, int n, float *logits);\n"
            "int %s_prefill_last(%s_ctx *ctx, const int *tokens, int n, float *logits)\n"
            "{\n    return %s_feed(ctx, tokens, n, logits, logits ? 1 : 0, 0);\n}\n\n"
            "/* Feed one token (using the KV cache); logits receives [%s_VOCAB]. */\n"
            "int %s_decode(%s_ctx *ctx, int token, float *logits);\n"
            "int %s_decode(%s_ctx *ctx, int token, float *logits) { return %s_feed(ctx, &token, 1, logits, logits ? 1 : 0, 1); }\n\n",
            up, up, P, P, P, P, P, up, P, P, P, P, P, up, P, P, P, P, P);
}

static void emit_main(Cgen *c)
{
    const char *P = c->P;
    char up[128];
    cgen_upper(P, up, sizeof up);
    fprintf(c->out,
            "/* main: `prog [--logits | --generate K] [TOKEN...]`, token ids on the command line (one\n"
            " * sequence) or one sequence per line of standard input. Prints the argmax id at each position,\n"
            " * the last position's logits, or K greedy ids. A bad line gives an empty line, an error on\n"
            " * standard error and exit status 1 at the end. */\n"
            "static float %s_arena[%s_ARENA_FLOATS];\nstatic float %s_logits[%s_MAX_LEN * %s_VOCAB];\n\n"
            "static int %s_argmax(const float *v)\n{\n    int i, best = 0;\n"
            "    for (i = 1; i < %s_VOCAB; i++)\n        if (v[i] > v[best]) best = i;\n    return best;\n}\n\n",
            P, up, P, up, up, P, up);
    fprintf(c->out,
            "static int %s_line(%s_ctx *ctx, char **words, int count, int mode, long k, long lineno)\n{\n"
            "    int ids[%s_MAX_LEN] = { 0 }, i;\n    char where[48] = \"input\";\n"
            "    if (lineno > 0) sprintf(where, \"input line %%ld\", lineno);\n"
            "    if (count == 0 || count > %s_MAX_LEN || (mode == 2 && count + k > %s_MAX_LEN)) {\n"
            "        printf(\"\\n\");\n"
            "        if (count == 0) fprintf(stderr, \"%%s: empty input: a sequence needs at least one token\\n\", where);\n"
            "        else fprintf(stderr, \"%%s: %%d tokens%%s is more than max_len %%d\\n\", where, count,\n"
            "                     mode == 2 ? \" plus the generated ones\" : \"\", %s_MAX_LEN);\n"
            "        return 1;\n    }\n"
            "    for (i = 0; i < count; i++) {\n        char *end;\n        long v = strtol(words[i], &end, 10);\n"
            "        if (*end || end == words[i] || v < 0 || v >= %s_VOCAB) {\n"
            "            printf(\"\\n\");\n"
            "            fprintf(stderr, \"%%s: token `%%s` is not a token id in 0..%%d\\n\", where, words[i], %s_VOCAB - 1);\n"
            "            return 1;\n        }\n        ids[i] = (int)v;\n    }\n"
            "    %s_reset(ctx);\n"
            "    /* --logits and --generate read the last position's logits: only those are computed */\n"
            "    if (mode == 0) %s_prefill(ctx, ids, count, %s_logits);\n"
            "    else %s_prefill_last(ctx, ids, count, %s_logits);\n"
            "    if (mode == 1) {\n"
            "        for (i = 0; i < %s_VOCAB; i++)\n"
            "            printf(\"%%s%%.9g\", i ? \" \" : \"\", (double)%s_logits[i]);\n"
            "    } else if (mode == 2) {\n"
            "        int next = %s_argmax(%s_logits);\n        long j;\n"
            "        for (j = 0; j < k; j++) {\n            printf(\"%%s%%d\", j ? \" \" : \"\", next);\n"
            "            if (j + 1 < k) {\n                %s_decode(ctx, next, %s_logits);\n"
            "                next = %s_argmax(%s_logits);\n            }\n        }\n"
            "    } else {\n"
            "        for (i = 0; i < count; i++) printf(\"%%s%%d\", i ? \" \" : \"\", %s_argmax(%s_logits + i * %s_VOCAB));\n"
            "    }\n    printf(\"\\n\");\n    return 0;\n}\n\n",
            P, P, up, up, up, up, up, up, P, P, P, P, P, up, P, P, P, P, P, P, P, P, P, up);
    fprintf(c->out,
            "/* Threads of the runtime's pools: prefill's [0] and decode's [1] (one pool when the counts\n"
            " * agree, none for one thread), freed at exit. */\n"
            "static TfmcrtPool *%s_pools[2];\nstatic TfmcrtExec %s_execs[2];\n\n"
            "static void %s_free_pools(void)\n{\n"
            "    if (%s_pools[1] != %s_pools[0]) tfmcrt_pool_free(%s_pools[1]);\n    tfmcrt_pool_free(%s_pools[0]);\n}\n\n"
            "static int %s_threads(%s_ctx *ctx, long prefill, long decode, long grain)\n{\n"
            "    if (prefill < 1) prefill = tfmcrt_cores();\n    if (decode < 1) decode = tfmcrt_cores();\n"
            "    atexit(%s_free_pools);\n"
            "    if (prefill > 1 && !(%s_pools[0] = tfmcrt_pool_new((int)prefill))) return -1;\n"
            "    if (decode == prefill) %s_pools[1] = %s_pools[0];\n"
            "    else if (decode > 1 && !(%s_pools[1] = tfmcrt_pool_new((int)decode))) return -1;\n"
            "    %s_execs[0] = tfmcrt_pool_exec(%s_pools[0], (size_t)grain);\n"
            "    %s_execs[1] = tfmcrt_pool_exec(%s_pools[1], (size_t)grain);\n"
            "    %s_set_exec(ctx, &%s_execs[0], &%s_execs[1]);\n    return 0;\n}\n\n",
            P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P);
    fprintf(c->out,
            "int main(int argc, char **argv)\n{\n"
            "    static char line[65536];\n    char *words[%s_MAX_LEN + 1];\n    %s_ctx ctx;\n"
            "    int status = 0, first = 1, mode = 0;\n    long k = 0, lineno = 0, prefill = 0, decode = 0, grain = 0;\n"
            "    if (%s_init(&ctx, %s_arena, sizeof %s_arena) != 0) return 1;\n"
            "    while (first < argc && argv[first][0] == '-' && argv[first][1] == '-') {\n"
            "        if (strcmp(argv[first], \"--logits\") == 0) mode = 1;\n"
            "        else if (strcmp(argv[first], \"--threads\") == 0 && first + 1 < argc) {\n"
            "            /* N, or N,D: prefill on N threads, decode on D (default: the machine's cores) */\n"
            "            char *end;\n            prefill = decode = strtol(argv[++first], &end, 10);\n"
            "            if (*end == ',') decode = strtol(end + 1, &end, 10);\n"
            "            if (*end || prefill < 1 || decode < 1 || prefill > 4096 || decode > 4096) {\n"
            "                fprintf(stderr, \"--threads needs a count N or N,D (1 to 4096)\\n\");\n"
            "                return 2;\n            }\n"
            "        } else if (strcmp(argv[first], \"--task-grain\") == 0 && first + 1 < argc) {\n"
            "            /* the least multiply-adds a kernel gives a thread (0: the runtime's default) */\n"
            "            char *end;\n            grain = strtol(argv[++first], &end, 10);\n"
            "            if (*end || grain < 0) {\n"
            "                fprintf(stderr, \"--task-grain needs a count of multiply-adds\\n\");\n"
            "                return 2;\n            }\n        }\n"
            "        else if (strcmp(argv[first], \"--generate\") == 0 && first + 1 < argc) {\n"
            "            char *end;\n            mode = 2;\n            k = strtol(argv[++first], &end, 10);\n"
            "            if (*end || k < 1) {\n                fprintf(stderr, \"--generate needs a positive count\\n\");\n"
            "                return 2;\n            }\n"
            "        } else if (strcmp(argv[first], \"--\") == 0) {\n            first++;\n            break;\n"
            "        } else {\n"
            "            fprintf(stderr, \"unknown option `%%s` (--logits, --generate K, --threads N[,D], --task-grain G)\\n\",\n"
            "                    argv[first]);\n"
            "            return 2;\n        }\n        first++;\n    }\n"
            "    if (%s_threads(&ctx, prefill, decode, grain) != 0) {\n"
            "        fprintf(stderr, \"cannot start the threads\\n\");\n        return 1;\n    }\n"
            "    if (argc > first) {\n"
            "        if (argc - first > %s_MAX_LEN) {\n            printf(\"\\n\");\n"
            "            fprintf(stderr, \"input: more than max_len %%d tokens\\n\", %s_MAX_LEN);\n            return 1;\n        }\n"
            "        return %s_line(&ctx, argv + first, argc - first, mode, k, 0);\n    }\n",
            up, P, P, P, P, P, up, up, P);
    char call[256];
    snprintf(call, sizeof call, "%s_line(&ctx, words, count, mode, k, lineno)", P);
    cgen_emit_line_reader(c, call, true);
}

void cgen_emit_model(const Graph *g, const CgenOptions *o, FILE *out)
{
    Cgen c = { g, g->model, o, out, o->weights ? o->weights : out, o->prefix, NULL, NULL, 0, 0 };
    const Model *m = g->model;
    ModelStats s;
    model_stats(m, &s);
    char up[128];
    cgen_upper(o->prefix, up, sizeof up);
    bool cached = true;
    for (int i = 0; i < m->nblocks; i++)
        if (m->blocks[i].kind == BLOCK_MHA && !m->blocks[i].causal) cached = false;
    fprintf(out,
            "/* %s: generated by tfmc %s from %s (source FNV-1a 0x%016llx).\n * Options: %s\n"
            " * The model `%s`: vocab %d, max_len %d, dim %d, %d blocks, %ld parameters.\n"
            " * Build: cc THIS_FILE.c%s%s $(tfmc config --cflags --libs)\n"
            " * Use: %s_init(&ctx, arena, %s_ARENA_BYTES), then %s_prefill(&ctx, tokens, n, logits) and\n"
            " * %s_decode(&ctx, token, logits) one token at a time (%s); %s_reset starts over.\n"
            " * The arena (caller memory, aligned for float) holds the activations and KV caches; nothing\n"
            " * here allocates. */\n",
            o->prefix, TFMC_VERSION, o->source_path ? o->source_path : "?", (unsigned long long)o->source_hash,
            o->options ? o->options : "", m->name, m->vocab_size, m->max_len, m->dim, m->nblocks, s.params,
            o->weights_name ? " " : "", o->weights_name ? o->weights_name : "", o->prefix, up, o->prefix, o->prefix,
            cached ? "the KV cache keeps earlier positions" : "bidirectional attention: each call recomputes", o->prefix);
    fprintf(out, "#include <stddef.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n#include \"tfmcrt.h\"\n\n");
    fprintf(out, "#define %s_VOCAB %d\n#define %s_MAX_LEN %d\n#define %s_DIM %d\n", up, m->vocab_size, up, m->max_len, up, m->dim);
    fprintf(out, "#define %s_ARENA_FLOATS %zu\n#define %s_ARENA_BYTES (%s_ARENA_FLOATS * sizeof(float))\n\n", up,
            g->arena_floats, up, up);
    fprintf(out, "typedef struct %s_ctx {\n    float *arena;\n    int len;                  /* positions fed so far */\n"
                 "    int tokens[%s_MAX_LEN];   /* and their tokens */\n"
                 "    const TfmcrtExec *prefill_exec, *decode_exec; /* threads (NULL: none): %s_set_exec */\n} %s_ctx;\n\n",
            o->prefix, up, o->prefix, o->prefix);
    if (o->weights)
        fprintf(o->weights, "/* Weights of `%s`, generated by tfmc %s; compile and link with its code. */\n\n", o->prefix,
                TFMC_VERSION);
    emit_constants(&c);
    emit_run(&c);
    emit_api(&c, cached);
    if (o->main) emit_main(&c);
}
