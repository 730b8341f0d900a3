/* cgen_model.c: the C backend's entry points of a declared model: NAME_init, NAME_set_exec,
 * NAME_reset, NAME_prefill(ctx, tokens, n, logits), NAME_prefill_last, NAME_decode(ctx, token,
 * logits) around the run function, over a fixed arena (activations for max_len positions, the KV
 * caches, kernel scratch); optionally a main() with the three modes of `tfmc run` (argmax per
 * position, --logits, --generate K). */
#include <stdlib.h>

#include "cgen.h"
#include "tfmc_config.h" /* TFMC_VERSION: the backends do not call up into the library */

static void emit_api(Cgen *c, bool cached)
{
    const Model *m = c->m;
    const Graph *g = c->g;
    const char *P = c->P;
    char up[128];
    cgen_upper(P, up, sizeof up);
    cgen_emit_cpu_missing(c);
    cgen_emit_sizes(c);
    cgen_entry(c, "init");
    fprintf(c->out,
            "{\n    if (!ctx || !arena || bytes < %s_ARENA_BYTES) return -1;\n", up);
    cgen_emit_init_check(c);
    fprintf(c->out,
            "    ctx->arena = (float *)arena;\n    ctx->len = 0;\n"
            "    ctx->prefill_exec = ctx->decode_exec = NULL;\n    return 0;\n}\n\n"
            "/* Threads: prefill (several tokens) runs on prefill's, decode (one token) on decode's: a\n"
            " * runtime pool (tfmcrt_pool_exec(tfmcrt_pool_new(N), 0)) or the caller's own parallel_for;\n"
            " * NULL: the calling thread only. The logits are the same bit for bit whatever they are. The\n"
            " * contexts are not copied: they must outlive their use. */\n");
    cgen_entry(c, "set_exec");
    fprintf(c->out, "{\n    ctx->prefill_exec = prefill;\n    ctx->decode_exec = decode;\n}\n\n");
    cgen_entry(c, "reset");
    fprintf(c->out, "{\n    ctx->len = 0;\n}\n\n");
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
    fprintf(c->out, "/* Returns 0, -1 when the sequence would pass %s_MAX_LEN, -2 for a bad token id; with logits\n"
                    " * NULL the final norm and logits are not computed. */\n", up);
    cgen_entry(c, "prefill");
    fprintf(c->out, "{\n    return %s_feed(ctx, tokens, n, logits, logits ? n : 0, 0);\n}\n\n", P);
    fprintf(c->out, "/* (a prompt before generation) */\n");
    cgen_entry(c, "prefill_last");
    fprintf(c->out, "{\n    return %s_feed(ctx, tokens, n, logits, logits ? 1 : 0, 0);\n}\n\n", P);
    cgen_entry(c, "decode");
    fprintf(c->out, "{\n    return %s_feed(ctx, &token, 1, logits, logits ? 1 : 0, 1);\n}\n\n", P);
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
            "    if ((status = %s_init(&ctx, %s_arena, sizeof %s_arena)) != 0) {\n",
            up, P, P, P, P);
    cgen_emit_init_failure(c, "status");
    fprintf(c->out,
            "        return 1;\n    }\n"
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
            P, up, up, P);
    char call[256];
    snprintf(call, sizeof call, "%s_line(&ctx, words, count, mode, k, lineno)", P);
    cgen_emit_line_reader(c, call, true);
}

/* The sizes and types a caller uses: in the .c and in its header. */
void cgen_model_interface(Cgen *cg)
{
    const CgenOptions *o = cg->o;
    const Graph *g = cg->g;
    const Model *m = cg->m;
    FILE *out = cg->out;
    char up[128];
    cgen_upper(o->prefix, up, sizeof up);
    fprintf(out, "#define %s_VOCAB %d\n#define %s_MAX_LEN %d\n#define %s_DIM %d\n", up, m->vocab_size, up, m->max_len, up, m->dim);
    fprintf(out, "#define %s_ARENA_FLOATS %zu\n#define %s_ARENA_BYTES (%s_ARENA_FLOATS * sizeof(float))\n\n", up,
            g->arena_floats, up, up);
    fprintf(out, "typedef struct %s_ctx {\n    float *arena;\n    int len;                  /* positions fed so far */\n"
                 "    int tokens[%s_MAX_LEN];   /* and their tokens */\n"
                 "    const struct TfmcrtExec *prefill_exec, *decode_exec; /* threads (NULL: none): %s_set_exec */\n} %s_ctx;\n\n",
            o->prefix, up, o->prefix, o->prefix);
}

void cgen_emit_model(Cgen *cg)
{
    const CgenOptions *o = cg->o;
    FILE *out = cg->out;
    const Model *m = cg->m;
    ModelStats s;
    model_stats(m, &s);
    char up[128];
    cgen_upper(o->prefix, up, sizeof up);
    int owned = 0;
    for (int i = 0; i < m->nblocks; i++) owned += m->blocks[i].shared_with < 0;
    char shared[64] = "";
    if (owned < m->nblocks) snprintf(shared, sizeof shared, " (%d applications: block shared)", m->nblocks);
    bool cached = true;
    for (int i = 0; i < m->nblocks; i++)
        if (m->blocks[i].kind == BLOCK_MHA && !m->blocks[i].causal) cached = false;
    fprintf(out,
            "/* %s: generated by tfmc %s from %s (source FNV-1a 0x%016llx).\n * Options: %s\n"
            " * The model `%s`: vocab %d, max_len %d, dim %d, %d layers%s, %ld parameters.\n"
            " * Build: %s\n"
            " * Use: %s_init(&ctx, arena, %s_ARENA_BYTES), then %s_prefill(&ctx, tokens, n, logits) and\n"
            " * %s_decode(&ctx, token, logits) one token at a time (%s); %s_reset starts over.\n"
            " * The arena (caller memory, aligned for float) holds the activations and KV caches; nothing\n"
            " * here allocates. */\n",
            o->prefix, TFMC_VERSION, o->source_path ? o->source_path : "?", (unsigned long long)o->source_hash,
            o->options ? o->options : "", m->name, m->vocab_size, m->max_len, m->dim, owned, shared, s.params,
            cgen_build_line(cg), o->prefix, up, o->prefix, o->prefix,
            cached ? "the KV cache keeps earlier positions" : "bidirectional attention: each call recomputes", o->prefix);
    cgen_prologue(cg);
    cgen_model_interface(cg);
    cgen_target_begin(cg);
    cgen_emit_constants(cg);
    cgen_emit_run(cg);
    cgen_target_end(cg);
    emit_api(cg, cached);
    if (o->main) emit_main(cg);
}
