/* cgen_model.c: the C backend's entry points of a declared model: NAME_init, NAME_set_exec,
 * NAME_reset, NAME_prefill(ctx, tokens, n, logits), NAME_prefill_last, NAME_decode(ctx, token,
 * logits) around the run function, over a fixed arena (activations for max_len positions, the KV
 * caches, kernel scratch); optionally a main() with the three modes of `tfmc run` (argmax per
 * position, --logits, --generate K, sampling through the runtime's sampler, stopping at eos) and,
 * with a tokenizer, text in and out (--prompt): tfmc's tokenizer amalgamated into the file with the
 * tokenizer.json as bytes, parsed into a fixed buffer (docs/design.md, "Text in generated C"). */
#include <stdlib.h>

#include "cgen.h"
#include "tokenizer_amalgamation.h"
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

/* Write text with @p replaced by the prefix and @P by its upper-case form (the generated main is
 * long: a template reads better than a printf with fifty arguments). */
static void template(Cgen *c, const char *text)
{
    char up[128];
    cgen_upper(c->P, up, sizeof up);
    for (const char *s = text; *s; s++) {
        if (s[0] == '@' && (s[1] == 'p' || s[1] == 'P')) {
            fputs(s[1] == 'p' ? c->P : up, c->out);
            s++;
        } else {
            fputc(*s, c->out);
        }
    }
}

/* The model's eos ids and the test for one. */
static void emit_eos(Cgen *c)
{
    const Model *m = c->m;
    if (m->neos == 0) {
        template(c, "/* The model declares no `eos`: generation runs to K tokens. */\n"
                    "static int @p_is_eos(int id)\n{\n    (void)id;\n    return 0;\n}\n\n");
        return;
    }
    template(c, "/* The model's `eos` ids: generation stops after one. */\nstatic const int @p_eos[] = { ");
    for (int i = 0; i < m->neos; i++) fprintf(c->out, "%s%d", i ? ", " : "", m->eos[i]);
    template(c, " };\n\nstatic int @p_is_eos(int id)\n{\n    size_t i;\n"
                "    for (i = 0; i < sizeof @p_eos / sizeof @p_eos[0]; i++)\n        if (@p_eos[i] == id) return 1;\n"
                "    return 0;\n}\n\n");
}

/* The tokenizer a file carries: tfmc's own code (amalgamated) and the tokenizer.json as bytes,
 * parsed at the first use into a fixed buffer; the main's printing of text when there is a main. */
static void emit_tokenizer(Cgen *c)
{
    const CgenOptions *o = c->o;
    template(c, "/* ---------------------------------------------------------------- the tokenizer\n"
                " * tfmc's tokenizer, the code `tfmc run --prompt` runs (tokenizer/ and the parts of support/ it\n"
                " * uses, amalgamated), below; the tokenizer.json after it, as bytes. */\n");
    fwrite(tfmctok_amalgamation, 1, tfmctok_amalgamation_length, c->out);
    fprintf(c->out, "\n/* %s (%zu bytes), as bytes: read by tokenizer_parse at the first --prompt. */\n"
                    "#if defined(__GNUC__)\n#pragma GCC diagnostic ignored \"-Woverlength-strings\"\n#endif\n",
            o->tokenizer_name, o->tokenizer_len);
    template(c, "#define @P_TOKENIZER_JSON_BYTES ");
    fprintf(c->out, "%zu\n", o->tokenizer_len);
    template(c, "static const char @p_tokenizer_json[@P_TOKENIZER_JSON_BYTES + 1] =");
    cgen_byte_string(c->out, o->tokenizer_json, o->tokenizer_len);
    template(c, ";\n\n"
        "/* The tokenizer's memory, a fixed buffer (no malloc; support/bump.c): what parsing the file\n"
        " * keeps and takes on the way (exact: measured by tfmc, which parses it with the same code and\n"
        " * allocator when it writes this file), and the working memory of encoding a prompt of up to\n"
        " * @P_PROMPT_MAX_BYTES bytes (at most 96 bytes a byte of text) and of decoding, given back after each call. */\n"
        "#define @P_TOKENIZER_LOAD_BYTES ");
    fprintf(c->out, "%zu\n", o->tokenizer_load_bytes);
    template(c,
        "#define @P_PROMPT_MAX_BYTES 131072\n"
        "#define @P_TOKENIZER_WORK_BYTES (96 * @P_PROMPT_MAX_BYTES + 65536)\n"
        "#define @P_TOKENIZER_BYTES (@P_TOKENIZER_LOAD_BYTES + @P_TOKENIZER_WORK_BYTES)\n"
        "static ArenaAlign @p_tokenizer_heap[@P_TOKENIZER_BYTES / sizeof(ArenaAlign) + 1];\n"
        "static Bump @p_bump;\nstatic TfmcAllocator @p_tokenizer_alloc;\n"
        "static TfmcTokenizer *@p_tokenizer;\n"
        "static size_t @p_tokenizer_mark; /* the top of what stays: the tokenizer and @p_piece */\n"
        "static char *@p_piece;           /* the decoded text of one token */\n\n"
        "/* Parse the tokenizer (once): 0, or -1 with a message. */\n"
        "static int @p_tokenizer_init(void)\n{\n"
        "    TokenizerError err;\n"
        "    if (@p_tokenizer) return 0;\n"
        "    bump_init(&@p_bump, @p_tokenizer_heap, sizeof @p_tokenizer_heap);\n"
        "    @p_tokenizer_alloc = bump_allocator(&@p_bump);\n"
        "    @p_tokenizer = tokenizer_parse(@p_tokenizer_json, @P_TOKENIZER_JSON_BYTES, &@p_tokenizer_alloc, &err);\n"
        "    if (@p_tokenizer)\n"
        "        @p_piece = (char *)@p_tokenizer_alloc.realloc(@p_tokenizer_alloc.ud, NULL, tfmc_tokenizer_stream_bytes(@p_tokenizer));\n"
        "    if (!@p_tokenizer || !@p_piece) {\n"
        "        fprintf(stderr, \"the tokenizer in this file cannot be read: %s\\n\",\n"
        "                @p_tokenizer ? \"no room for its text\" : err.nomem ? \"its buffer is too small\" : err.message);\n"
        "        @p_tokenizer = NULL;\n        return -1;\n    }\n"
        "    @p_tokenizer_mark = bump_mark(&@p_bump);\n    return 0;\n}\n\n");
    template(c,
        "/* @p_encode_text: UTF-8 text (len bytes) to token ids, with the tokens the tokenizer's post-processor\n"
        " * adds (Llama's <s>); the first cap are written, *n receives how many there are. 0, or -1 when the\n"
        " * text is not UTF-8 (*n: the byte where it stops), is longer than @P_PROMPT_MAX_BYTES bytes,\n"
        " * gives more than cap ids, or the tokenizer cannot be read (a message on standard error). */\n"
        "int @p_encode_text(const char *text, size_t len, int *ids, size_t cap, size_t *n);\n"
        "int @p_decode_text(const int *ids, size_t n, char *out, size_t cap, size_t *len);\n"
        "int @p_encode_text(const char *text, size_t len, int *ids, size_t cap, size_t *n)\n{\n"
        "    TfmcStatus st;\n"
        "    *n = 0;\n"
        "    if (@p_tokenizer_init() != 0 || len > @P_PROMPT_MAX_BYTES) return -1;\n"
        "    st = tfmc_tokenizer_encode(@p_tokenizer, text, len, TFMC_TOKENIZE_ADD_SPECIAL, ids, cap, n);\n"
        "    bump_release(&@p_bump, @p_tokenizer_mark);\n"
        "    return st == TFMC_OK && *n <= cap ? 0 : -1;\n}\n\n"
        "/* @p_decode_text: token ids to UTF-8 text (special tokens left out; bytes that are no character\n"
        " * become U+FFFD) in out, at most cap bytes, NUL-terminated when there is room; *len receives the\n"
        " * length. 0, or -1 for an id outside the vocabulary, a text longer than cap, or a tokenizer that\n"
        " * cannot be read. */\n"
        "int @p_decode_text(const int *ids, size_t n, char *out, size_t cap, size_t *len)\n{\n"
        "    TfmcStatus st;\n"
        "    *len = 0;\n"
        "    if (@p_tokenizer_init() != 0) return -1;\n"
        "    st = tfmc_tokenizer_decode(@p_tokenizer, ids, n, TFMC_TOKENIZE_SKIP_SPECIAL, out, cap, len);\n"
        "    bump_release(&@p_bump, @p_tokenizer_mark);\n"
        "    return st == TFMC_OK && *len <= cap ? 0 : -1;\n}\n\n");
    if (!o->main) return;
    template(c,
        "/* Print the text of the next token (flush: what is held back of a character), at once. */\n"
        "static void @p_text(TfmcTokenStream *stream, int id, int flush)\n{\n"
        "    size_t len;\n"
        "    if (flush) tfmc_tokenizer_stream_flush(stream, @p_piece, &len);\n"
        "    else tfmc_tokenizer_stream_push(stream, id, @p_piece, &len);\n"
        "    bump_release(&@p_bump, @p_tokenizer_mark);\n"
        "    fwrite(@p_piece, 1, len, stdout);\n    fflush(stdout); /* the text as it is generated */\n}\n\n");
}

static void emit_main(Cgen *c)
{
    bool text = c->o->tokenizer_json != NULL;
    template(c,
        "/* main: `prog [--logits | --generate K] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
        " * [--threads N[,D]] [--task-grain G] [--prompt TEXT | TOKEN...]`, as `tfmc run`: token ids on the\n"
        " * command line (one sequence) or one sequence per line of standard input, or (with a tokenizer in\n"
        " * this file) --prompt TEXT, whose generated tokens are printed as text. Prints the argmax id at each position,\n"
        " * the last position's logits, or K generated ids (greedy, or sampled by the runtime's sampler,\n"
        " * the one `tfmc run` uses: the same seed gives the same ids), stopping after an `eos` id. A bad\n"
        " * line gives an empty line, an error on standard error and exit status 1 at the end. */\n"
        "static float @p_arena[@P_ARENA_FLOATS];\nstatic float @p_logits[@P_MAX_LEN * @P_VOCAB];\n"
        "static int @p_work[@P_VOCAB]; /* the sampler's candidates */\n\n");
    emit_eos(c);
    template(c,
        "/* What the command line asks for. */\n"
        "typedef struct @p_options {\n"
        "    int mode;          /* 0: the argmax at each position, 1: --logits, 2: --generate */\n"
        "    long k;            /* --generate K */\n"
        "    float temperature; /* 0: greedy (the default) */\n"
        "    int top_k;         /* 0: every token */\n"
        "    float top_p;       /* 1: every token */\n"
        "    uint64_t seed;     /* each sequence starts from it */\n"
        "    int text;          /* --prompt --generate: the generated tokens as text */\n"
        "} @p_options;\n\n"
        "/* Does a sequence of count tokens (plus the generated ones) fit in max_len? */\n"
        "static int @p_fits(int count, const @p_options *o, const char *where)\n{\n"
        "    if (count > 0 && count <= @P_MAX_LEN && !(o->mode == 2 && count + o->k > @P_MAX_LEN)) return 1;\n"
        "    printf(\"\\n\");\n"
        "    if (count == 0) fprintf(stderr, \"%s: empty input: a sequence needs at least one token\\n\", where);\n"
        "    else fprintf(stderr, \"%s: %d tokens%s is more than max_len %d\\n\", where, count,\n"
        "                 o->mode == 2 ? \" plus the generated ones\" : \"\", @P_MAX_LEN);\n"
        "    return 0;\n}\n\n"
        "/* Run one sequence of ids (which fits) and print what the mode asks for. */\n"
        "static void @p_sequence(@p_ctx *ctx, const int *ids, int count, const @p_options *o)\n{\n"
        "    int i;\n"
        "    @p_reset(ctx);\n"
        "    /* --logits and --generate read the last position's logits: only those are computed */\n"
        "    if (o->mode == 0) @p_prefill(ctx, ids, count, @p_logits);\n"
        "    else @p_prefill_last(ctx, ids, count, @p_logits);\n"
        "    if (o->mode == 1) {\n"
        "        for (i = 0; i < @P_VOCAB; i++)\n"
        "            printf(\"%s%.9g\", i ? \" \" : \"\", (double)@p_logits[i]);\n"
        "    } else if (o->mode == 2) {\n"
        "        uint64_t state = tfmcrt_sample_seed(o->seed);\n"
        "        int next = tfmcrt_sample(@p_logits, @P_VOCAB, o->temperature, o->top_k, o->top_p, &state, @p_work);\n"
        "        long j;\n");
    if (text)
        template(c, "        TfmcTokenStream stream; /* special tokens left out, never half a character */\n"
                    "        if (o->text) tfmc_tokenizer_stream_init(&stream, @p_tokenizer, TFMC_TOKENIZE_SKIP_SPECIAL);\n");
    template(c,
        "        for (j = 0; j < o->k; j++) {\n"
        "            int stop = @p_is_eos(next);\n");
    if (text)
        template(c, "            if (o->text) @p_text(&stream, next, stop); /* an eos is not printed */\n"
                    "            else\n    ");
    template(c,
        "            printf(\"%s%d\", j ? \" \" : \"\", next);\n"
        "            if (stop) break;\n"
        "            if (j + 1 < o->k) {\n"
        "                @p_decode(ctx, next, @p_logits);\n"
        "                next = tfmcrt_sample(@p_logits, @P_VOCAB, o->temperature, o->top_k, o->top_p, &state, @p_work);\n"
        "            }\n");
    if (text) template(c, "            else if (o->text) @p_text(&stream, -1, 1);\n");
    template(c,
        "        }\n"
        "    } else {\n"
        "        for (i = 0; i < count; i++) printf(\"%s%d\", i ? \" \" : \"\", tfmcrt_argmax(@p_logits + i * @P_VOCAB, @P_VOCAB));\n"
        "    }\n"
        "    printf(\"\\n\");\n}\n\n"
        "static int @p_line(@p_ctx *ctx, char **words, int count, const @p_options *o, long lineno)\n{\n"
        "    int ids[@P_MAX_LEN] = { 0 }, i;\n    char where[48] = \"input\";\n"
        "    if (lineno > 0) sprintf(where, \"input line %ld\", lineno);\n"
        "    if (!@p_fits(count, o, where)) return 1;\n"
        "    for (i = 0; i < count; i++) {\n        char *end;\n        long v = strtol(words[i], &end, 10);\n"
        "        if (*end || end == words[i] || v < 0 || v >= @P_VOCAB) {\n"
        "            printf(\"\\n\");\n"
        "            fprintf(stderr, \"%s: token `%s` is not a token id in 0..%d\\n\", where, words[i], @P_VOCAB - 1);\n"
        "            return 1;\n        }\n        ids[i] = (int)v;\n    }\n"
        "    @p_sequence(ctx, ids, count, o);\n    return 0;\n}\n\n");
    if (text)
        template(c,
            "/* --prompt TEXT: the text encoded with the tokens the tokenizer's post-processor adds (Llama's\n"
            " * <s>), then run as a sequence; --generate prints text. 0, or 1 with a message. */\n"
            "static int @p_prompt(@p_ctx *ctx, const char *prompt, @p_options *o)\n{\n"
            "    int ids[@P_MAX_LEN] = { 0 };\n    size_t len = strlen(prompt), n = 0, i;\n    TfmcStatus st;\n"
            "    if (@p_tokenizer_init() != 0) return 1;\n"
            "    if (len > @P_PROMPT_MAX_BYTES) {\n"
            "        fprintf(stderr, \"the prompt has %lu bytes, more than the %d this program encodes\\n\", (unsigned long)len,\n"
            "                @P_PROMPT_MAX_BYTES);\n        return 1;\n    }\n"
            "    st = tfmc_tokenizer_encode(@p_tokenizer, prompt, len, TFMC_TOKENIZE_ADD_SPECIAL, ids, @P_MAX_LEN, &n);\n"
            "    bump_release(&@p_bump, @p_tokenizer_mark);\n"
            "    if (st != TFMC_OK || n == 0) {\n"
            "        if (st == TFMC_ERR_INPUT) fprintf(stderr, \"the prompt is not valid UTF-8 at byte %lu\\n\", (unsigned long)n + 1);\n"
            "        else if (st != TFMC_OK) fprintf(stderr, \"the prompt needs more working memory than the tokenizer's %lu bytes\\n\",\n"
            "                                       (unsigned long)@P_TOKENIZER_WORK_BYTES);\n"
            "        else fprintf(stderr, \"the prompt gives no tokens\\n\");\n"
            "        return 1;\n    }\n"
            "    for (i = 0; i < n && i < @P_MAX_LEN; i++)\n"
            "        if (ids[i] < 0 || ids[i] >= @P_VOCAB) {\n"
            "            fprintf(stderr, \"the tokenizer gives id %d, outside the model's vocabulary (0..%d)\\n\", ids[i], @P_VOCAB - 1);\n"
            "            return 1;\n        }\n"
            "    if (!@p_fits(n > @P_MAX_LEN ? @P_MAX_LEN + 1 : (int)n, o, \"prompt\")) return 1;\n"
            "    o->text = o->mode == 2;\n"
            "    @p_sequence(ctx, ids, (int)n, o);\n    return 0;\n}\n\n");
    template(c,
        "/* Threads of the runtime's pools: prefill's [0] and decode's [1] (one pool when the counts\n"
        " * agree, none for one thread), freed at exit. */\n"
        "static TfmcrtPool *@p_pools[2];\nstatic TfmcrtExec @p_execs[2];\n\n"
        "static void @p_free_pools(void)\n{\n"
        "    if (@p_pools[1] != @p_pools[0]) tfmcrt_pool_free(@p_pools[1]);\n    tfmcrt_pool_free(@p_pools[0]);\n}\n\n"
        "static int @p_threads(@p_ctx *ctx, long prefill, long decode, long grain)\n{\n"
        "    if (prefill < 1) prefill = tfmcrt_cores();\n    if (decode < 1) decode = tfmcrt_cores();\n"
        "    atexit(@p_free_pools);\n"
        "    if (prefill > 1 && !(@p_pools[0] = tfmcrt_pool_new((int)prefill))) return -1;\n"
        "    if (decode == prefill) @p_pools[1] = @p_pools[0];\n"
        "    else if (decode > 1 && !(@p_pools[1] = tfmcrt_pool_new((int)decode))) return -1;\n"
        "    @p_execs[0] = tfmcrt_pool_exec(@p_pools[0], (size_t)grain);\n"
        "    @p_execs[1] = tfmcrt_pool_exec(@p_pools[1], (size_t)grain);\n"
        "    @p_set_exec(ctx, &@p_execs[0], &@p_execs[1]);\n    return 0;\n}\n\n"
        "/* A sampling option's number, with the ranges of `tfmc run`: 0 and the value in *v, or 2. */\n"
        "static int @p_sampling(const char *opt, const char *arg, double *v)\n{\n"
        "    char *end = NULL;\n    int bad;\n    errno = 0;\n    *v = strtod(arg, &end);\n"
        "    bad = *end || errno || end == arg;\n"
        "    if (!strcmp(opt, \"--temperature\")) bad = bad || !(*v >= 0 && *v <= 100);\n"
        "    else if (!strcmp(opt, \"--top-p\")) bad = bad || !(*v > 0 && *v <= 1);\n"
        "    else if (!strcmp(opt, \"--top-k\")) bad = bad || !(*v >= 0 && *v <= 1e9) || *v != (long)*v;\n"
        "    else bad = bad || !(*v >= 0 && *v < 1.8e19) || *v != (double)(uint64_t)*v;\n"
        "    if (!bad) return 0;\n"
        "    fprintf(stderr, \"`%s` needs %s, not `%s`\\n\", opt,\n"
        "            !strcmp(opt, \"--temperature\") ? \"a temperature from 0 (greedy) to 100\"\n"
        "            : !strcmp(opt, \"--top-p\") ? \"a probability in (0, 1]\"\n"
        "            : !strcmp(opt, \"--top-k\") ? \"a count of tokens (0: all)\" : \"a seed, an integer from 0\", arg);\n"
        "    return 2;\n}\n\n");
    template(c,
        "int main(int argc, char **argv)\n{\n"
        "    static char line[65536];\n    char *words[@P_MAX_LEN + 1];\n    @p_ctx ctx;\n"
        "    @p_options o = { 0, 0, 0.0f, 0, 1.0f, 0, 0 };\n"
        "    int status = 0, first = 1;\n    long lineno = 0, prefill = 0, decode = 0, grain = 0;\n"
        "    const char *prompt = NULL; /* --prompt TEXT */\n"
        "    if ((status = @p_init(&ctx, @p_arena, sizeof @p_arena)) != 0) {\n");
    cgen_emit_init_failure(c, "status");
    template(c,
        "        return 1;\n    }\n"
        "    while (first < argc && argv[first][0] == '-' && argv[first][1] == '-') {\n"
        "        const char *a = argv[first];\n"
        "        if (strcmp(a, \"--\") == 0) {\n            first++;\n            break;\n        }\n"
        "        if (strcmp(a, \"--logits\") == 0) {\n            o.mode = 1;\n            first++;\n            continue;\n        }\n"
        "        if (strcmp(a, \"--threads\") && strcmp(a, \"--task-grain\") && strcmp(a, \"--generate\") &&\n"
        "            strcmp(a, \"--temperature\") && strcmp(a, \"--top-k\") && strcmp(a, \"--top-p\") && strcmp(a, \"--seed\") &&\n"
        "            strcmp(a, \"--prompt\")) {\n"
        "            fprintf(stderr, \"unknown option `%s` (--logits, --generate K, --temperature T, --top-k K, --top-p P, \"\n"
        "                            \"--seed S, --threads N[,D], --task-grain G, --prompt TEXT)\\n\", a);\n"
        "            return 2;\n        }\n"
        "        if (first + 1 >= argc) {\n"
        "            fprintf(stderr, \"`%s` needs a value\\n\", a);\n            return 2;\n        }\n"
        "        if (strcmp(a, \"--threads\") == 0) {\n"
        "            /* N, or N,D: prefill on N threads, decode on D (default: the machine's cores) */\n"
        "            char *end;\n            prefill = decode = strtol(argv[++first], &end, 10);\n"
        "            if (*end == ',') decode = strtol(end + 1, &end, 10);\n"
        "            if (*end || prefill < 1 || decode < 1 || prefill > 4096 || decode > 4096) {\n"
        "                fprintf(stderr, \"--threads needs a count N or N,D (1 to 4096)\\n\");\n"
        "                return 2;\n            }\n"
        "        } else if (strcmp(a, \"--task-grain\") == 0) {\n"
        "            /* the least multiply-adds a kernel gives a thread (0: the runtime's default) */\n"
        "            char *end;\n            grain = strtol(argv[++first], &end, 10);\n"
        "            if (*end || grain < 0) {\n"
        "                fprintf(stderr, \"--task-grain needs a count of multiply-adds\\n\");\n"
        "                return 2;\n            }\n"
        "        } else if (strcmp(a, \"--prompt\") == 0) {\n"
        "            prompt = argv[++first];\n");
    if (!text)
        template(c, "            fprintf(stderr, \"--prompt needs a tokenizer: generate this file again from a model with a \"\n"
                    "                            \"`tokenizer` statement, or with --tokenizer FILE\\n\");\n"
                    "            return 2;\n");
    template(c,
        "        } else if (strcmp(a, \"--generate\") == 0) {\n"
        "            char *end;\n            o.mode = 2;\n            o.k = strtol(argv[++first], &end, 10);\n"
        "            if (*end || o.k < 1) {\n                fprintf(stderr, \"--generate needs a positive count\\n\");\n"
        "                return 2;\n            }\n"
        "        } else {\n"
        "            double v;\n"
        "            if (@p_sampling(a, argv[++first], &v) != 0) return 2;\n"
        "            if (!strcmp(a, \"--temperature\")) o.temperature = (float)v;\n"
        "            else if (!strcmp(a, \"--top-k\")) o.top_k = (int)v;\n"
        "            else if (!strcmp(a, \"--top-p\")) o.top_p = (float)v;\n"
        "            else o.seed = (uint64_t)v;\n"
        "        }\n"
        "        first++;\n    }\n"
        "    if (@p_threads(&ctx, prefill, decode, grain) != 0) {\n"
        "        fprintf(stderr, \"cannot start the threads\\n\");\n        return 1;\n    }\n"
        "    if (prompt && argc > first) {\n"
        "        fprintf(stderr, \"give the input as --prompt TEXT or as ids, not both\\n\");\n        return 2;\n    }\n");
    if (text) template(c, "    if (prompt) return @p_prompt(&ctx, prompt, &o);\n");
    template(c,
        "    if (argc > first) {\n"
        "        if (argc - first > @P_MAX_LEN) {\n            printf(\"\\n\");\n"
        "            fprintf(stderr, \"input: more than max_len %d tokens\\n\", @P_MAX_LEN);\n            return 1;\n        }\n"
        "        return @p_line(&ctx, argv + first, argc - first, &o, 0);\n    }\n");
    char call[256];
    snprintf(call, sizeof call, "%s_line(&ctx, words, count, &o, lineno)", c->P);
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
    if (o->tokenizer_json) emit_tokenizer(cg);
    if (o->main) emit_main(cg);
}
