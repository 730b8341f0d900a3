/* tfmc.c: the `tfmc` command, a thin client of libtfmc (include/tfmc.h). It parses the command
 * line, prints diagnostics and picks the exit status: 0 success, 1 bad input or compile error,
 * 2 wrong usage. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tfmc.h"
#include "tfmc_config.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2, MAX_TOKENS = 4096 };

/* The warnings load() printed: the diagnostics are printed again only when there are new ones. */
static size_t diagnostics_shown;

/* The context's diagnostics; when a call failed without leaving one (out of memory), say so. */
static void print_errors(const TfmcContext *ctx, TfmcStatus st)
{
    if (tfmc_diagnostic_count(ctx) > diagnostics_shown) tfmc_print_diagnostics(ctx, stderr);
    if (tfmc_diagnostic_count(ctx) == diagnostics_shown && st != TFMC_OK)
        fprintf(stderr, "tfmc: %s\n", st == TFMC_ERR_NOMEM ? "out of memory" : "failed, with no diagnostic (an internal error)");
}

static const char usage_main[] =
    "usage: tfmc COMMAND [ARGS]   or   tfmc FILE -o OUT.c [-p NAME]\n"
    "\n"
    "tfmc compiles .tfm programs (RASP programs and transformer model declarations).\n"
    "\n"
    "commands:\n"
    "  eval FILE [-p NAME] [--trace] [TOKEN...]  run a RASP program in the reference interpreter\n"
    "  run FILE [-p NAME] [TOKEN...]             compile to a transformer and run it in-process\n"
    "  run MODEL.tfm [--logits | --generate K] [ID...]\n"
    "                                            a declared model: the argmax id at each position,\n"
    "                                            the last position's logits, or K greedy ids\n"
    "  verify FILE [-p NAME] [--len N] [--samples K]\n"
    "                                            check the transformer against the interpreter\n"
    "  FILE -o OUT.c [-p NAME] [--main]          compile a program or a model to portable C, with\n"
    "                                            prefill/decode/reset for a model (`tfmc help compile`)\n"
    "  FILE --emit=model|graph|kernels|weights   print the model or graph IR or its kernel calls, export weights\n"
    "  config --cflags --libs                    flags for building generated C\n"
    "  check FILE                                parse and check a file, report every error\n"
    "  tokenize TOKENIZER.json [--decode] [TEXT...]  text to token ids and back (tokenizer.json)\n"
    "  import DIR [-o FILE.tfm]                  a .tfm for a Hugging Face model folder\n"
    "  help [COMMAND]                            show help for a command\n"
    "\n"
    "options:\n"
    "  -h, --help      show this help\n"
    "  -V, --version   print the version\n"
    "\n"
    "With TOKENs on the command line the input is that one sequence; with none, each line of\n"
    "standard input is one sequence of whitespace-separated tokens (for a model, integer token ids\n"
    "0..vocab-1). Exit status: 0 on success, 1 on bad input or a compile error, 2 on wrong usage.\n";

static const char usage_eval[] =
    "usage: tfmc eval FILE [-p NAME] [--trace] [--] [TOKEN...]\n"
    "\n"
    "Run the RASP program NAME of FILE (optional when FILE holds one program) in the reference\n"
    "interpreter, which has exactly Tracr's semantics. Each input sequence gives one output line:\n"
    "its values separated by spaces, `_` for an undefined value.\n"
    "\n"
    "  -p, --program NAME  the program to run\n"
    "  --trace             print every named SOp's values, aligned in columns, for each input\n"
    "  --                  end of options: what follows are tokens (for tokens starting with `-`)\n"
    "\n"
    "With TOKENs the input is that one sequence; with none, each line of standard input is one\n"
    "sequence. A bad line (unknown token, too long, empty) gives an empty output line, one error\n"
    "line on standard error naming the input line, and exit status 1 at the end.\n";

static const char usage_run[] =
    "usage: tfmc run FILE [-p NAME] [-O0|-O1|-O2 ...] [--] [TOKEN...]\n"
    "       tfmc run MODEL.tfm [-p NAME] [--logits | --generate K] [-O0|-O1|-O2 ...] [--] [ID...]\n"
    "       tfmc run MODEL.tfm --prompt TEXT --generate K [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
    "\n"
    "A RASP program: compile NAME of FILE (optional when FILE holds one item) to a transformer\n"
    "(Tracr's construction) and run the transformer in-process. Input and output exactly as\n"
    "`tfmc eval`: one line of values per input sequence, `_` for an undefined value.\n"
    "\n"
    "A model declaration: build it from its weights file (or `init random`), then read each\n"
    "sequence as integer token ids 0..vocab-1 separated by whitespace, and print one line:\n"
    "  (default)      the argmax id at each position, from one prefill of the whole sequence\n"
    "  --logits       the vocabulary's logits at the last position (%.9g), the only ones computed\n"
    "  --generate K   K greedy ids: the prefill gives the first, then one decode step each with\n"
    "                 the KV cache (a model with any bidirectional attention recomputes the whole\n"
    "                 sequence at each step); a sequence whose length plus K passes max_len is a\n"
    "                 bad line; generation stops early after one of the model's `eos` ids\n"
    "  --prompt TEXT  the input is TEXT, encoded by the model's tokenizer (its `tokenizer` statement,\n"
    "                 or --tokenizer FILE) with the tokens its post-processor adds (Llama's <s>);\n"
    "                 --generate then prints the generated text as it comes, not ids\n"
    "  --temperature T, --top-k K, --top-p P, --seed S\n"
    "                 --generate samples instead of taking the argmax: softmax(logits / T) over\n"
    "                 the K most likely (0: all), cut to the fewest whose probability reaches P;\n"
    "                 seeded with S (default 0), each input line from the same seed: the same\n"
    "                 command gives the same output at every thread count. T 0 (default): greedy\n"
    "Each sequence starts afresh (the session is reset before its prefill).\n"
    "\n"
    "  -p, --program NAME  the program or model to run\n"
    "  -O0, -O1, -O2       the pass level, and the other optimisation options of `tfmc help compile`\n"
    "  --threads N[,D]     a model runs on N threads (default: the machine's cores), decode steps\n"
    "                      on D when given; the logits are the same bit for bit at every count\n"
    "  --task-grain G      the least multiply-adds a kernel gives a thread (tests: 1 cuts every one)\n"
    "  --profile           a model: at the end, the time spent in each runtime kernel and in each\n"
    "                      layer, on standard error\n"    "  --backend=B         what runs the transformer: interp (the default: the graph interpreter\n"
    "                      over the runtime's kernels) or llvm (compiled by LLVM's ORC JIT first;\n"
    "                      --profile stays on interp, whose calls can be timed one by one)\n"
    "  --                  end of options: what follows are tokens\n"
    "\n"
    "With tokens on the command line the input is that one sequence; with none, each line of\n"
    "standard input is one. A bad line (an unknown token or an id outside 0..vocab-1, too long,\n"
    "empty) gives an empty output line, one error line on standard error naming the input line,\n"
    "and exit status 1 at the end.\n";

static const char usage_verify[] =
    "usage: tfmc verify FILE [-p NAME] [--len N] [--samples K] [--seed S] [--backend=interp|llvm]\n"
    "\n"
    "Check that the compiled transformer equals the reference interpreter on every input sequence\n"
    "of length 1..N (default: max_len), or on K random ones (default 20000) when there are more.\n"
    "Categorical outputs must be equal, numerical ones within 1e-4 x max(1, |value|). An exhaustive\n"
    "check that finds nothing says \"verified\"; a sampled one says \"no difference on K sampled\n"
    "inputs\". Prints the first counterexample with the interpreter's trace and, when the input meets\n"
    "a known limit of compiled weights (a categorical aggregate selecting differing values, an\n"
    "undefined numerical SOp, `not`/`or` over undefined values), a `likely cause:` line naming it\n"
    "(docs/compiling.md); exit status 1 when there is one.\n"
    "\n"
    "  -p, --program NAME  the program to check\n"
    "  --len N             check lengths 1..N (at most max_len)\n"
    "  --samples K         the most sequences checked: more than K gives K seeded random ones\n"
    "  --seed S            the seed of the sample\n"
    "  --backend=B         the transformer on interp (the default) or llvm (the ORC JIT)\n"
    "  -O0, -O1, -O2 and the other optimisation options of `tfmc help compile`\n";

static const char usage_compile[] =
    "usage: tfmc FILE -o OUT.c [-p NAME] [--main] [--backend=c|simd [--target=T]] [--weights=separate]\n"
    "       [--byte-arrays=N|off] [--tokenizer FILE|none]\n"
    "       tfmc FILE --emit=model|graph|kernels [-o OUT]\n"
    "       tfmc FILE --emit=weights -o OUT.safetensors\n"
    "\n"
    "Compile program or model NAME of FILE (optional when FILE holds one) and write:\n"
    "  (default)        portable C99, weights as hex floats. A RASP program: NAME_init,\n"
    "                   NAME_forward, NAME_encode. A model: NAME_init; NAME_prefill (n tokens at\n"
    "                   the next positions, logits [n][vocab] or NULL), NAME_prefill_last (the\n"
    "                   last position's logits only), NAME_decode (one token, with the KV cache;\n"
    "                   bidirectional attention recomputes), NAME_reset (start a new\n"
    "                   sequence) and NAME_set_exec (threads for prefill and decode: a runtime\n"
    "                   pool or your own parallel_for); see docs/models.md\n"
    "  --main           add a main() with the same input/output as `tfmc eval` (a RASP program)\n"
    "                   or as `tfmc run` (a model: prog [--logits | --generate K]\n"
    "                   [--threads N[,D]] [ID...])\n"
    "  --backend=c      portable C that links against the runtime (libtfmcrt), whose kernels pick\n"
    "                   AVX-512, AVX2 or baseline code for the CPU at load time (the default)\n"
    "  --backend=simd   one self-contained file: the runtime inside, its kernels compiled for\n"
    "                   --target, the weights packed as the kernels read them; build it with\n"
    "                   `cc -O2 OUT.c -lm` (no threads unless you pass a parallel_for). NAME_init\n"
    "                   returns -3 on a CPU without the target's extensions (NAME_cpu_missing\n"
    "                   names the first); on another architecture it builds as portable code\n"
    "  --target=T       the SIMD backend's target: avx512, avx2, neon, baseline, or native (this\n"
    "                   machine's best; the default)\n"
    "  --weights=separate  put the weights in a second file, OUT_weights.c\n"    "  --byte-arrays=N|off  weight arrays of N floats or more (default 1024) as the bytes of their\n"
    "                   floats in string literals, which compilers read ~8x faster and in a quarter of\n"
    "                   the memory; off: every weight a hexadecimal float (the same bits either way)\n"
    "  --tokenizer FILE|none  for a model: carry this tokenizer.json as data, with NAME_encode_text\n"
    "                   and NAME_decode_text (with --main the default is the model's `tokenizer`\n"
    "                   statement, and the program reads and writes text: `prog --prompt TEXT\n"
    "                   --generate K`); none: ids only\n"
    "  (with -o OUT.c, also OUT.h: the sizes, the context type and the prototypes, for the files\n"
    "   that call it; OUT.c stays self-contained; not with -o -)\n"
    "  --emit=model     the model IR as text (every residual dimension named)\n"
    "  --emit=graph     the graph IR as text\n"
    "  --emit=kernels   the runtime kernel calls the graph lowers to (what every backend runs)\n"
    "  --emit=weights   the weights as .safetensors: a RASP program's with metadata naming the\n"
    "                   residual dimensions, a model's in the tfmc naming scheme\n"
    "Optimisation (also for run and verify; see docs/passes.md):\n"
    "  -O0, -O1 (default), -O2   the pass level\n"
    "  --passes=a,b,c   exactly these passes; --no-PASS skips one (e.g. --no-prune)\n"
    "  --report         a table after each pass: parameters, FLOPs per token, weight and arena bytes\n"
    "  --max-memory=BYTES   the most a model may take (weights, arena, KV caches; K, M, G suffixes);\n"
    "                   default: the machine's memory\n"
    "  --prune=threshold:T | sparsity:S | structured:S   magnitude pruning (lossy)\n"
    "  --low-rank=rank:R | energy:E | error:T            low-rank factorisation\n"
    "  --quantize=int8 | int8:group=G   declared models: the blocks' weights in int8, a scale per\n"
    "                   output row or per G inputs (lossy; docs/quantize.md)\n"
    "Build the C: cc OUT.c $(tfmc config --cflags --libs) -o prog  (--backend=simd: cc -O2 OUT.c -lm -o prog)\n";

static const char usage_config[] =
    "usage: tfmc config [--lib=tfmcrt|tfmc] [--cflags] [--libs]\n"
    "\n"
    "Print compiler and linker flags, for the build tree when tfmc runs from it, else for the\n"
    "installed prefix:\n"
    "  --lib=tfmcrt  (the default) what generated C needs: the runtime's header and library\n"
    "  --lib=tfmc    what a program calling the tfmc library (include/tfmc.h) needs: the shared\n"
    "                library libtfmc.so, with a run path to its folder\n";

static const char usage_tokenize[] =
    "usage: tfmc tokenize TOKENIZER.json [--decode] [--whole] [--escapes] [--add-special] [--plain] [--skip-special] [TEXT...]\n"
    "\n"
    "Encode text into token ids with a Hugging Face tokenizer.json (BPE: GPT-2, Llama, Mistral, Qwen,\n"
    "Gemma, Phi...): each TEXT argument, or else each line of standard input, gives one line of ids.\n"
    "  --whole         standard input is one text, line breaks included\n"
    "  --add-special   add the tokens the tokenizer's post-processor adds (Llama's <s>, Gemma's <bos>)\n"
    "  --plain         special tokens written in the text (<|endoftext|>) are text, not tokens\n"
    "  --decode        the reverse: each line (or argument) of ids gives one line of text\n"
    "  --skip-special  when decoding, leave special tokens out\n"
    "  --escapes       texts in and out are written with \\n \\r \\t \\\\ and \\xHH (a text per line may\n"
    "                  then hold line breaks and any byte)\n";

static const char usage_check[] =
    "usage: tfmc check FILE [--max-memory=BYTES]\n"
    "\n"
    "Parse and check FILE and report every error, caret-style. For a model: every statement and\n"
    "option, the memory it needs against the machine's (or --max-memory), and its weight file's\n"
    "header (every missing, unexpected or mis-shaped tensor; no weight data is read). Prints\n"
    "nothing and exits 0 when the file is correct.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "tfmc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see `tfmc --help`)\n");
    return EXIT_USAGE;
}

/* The optimisation options shared by compile, run and verify. */
static TfmcOptions pass_opts = { 1, NULL, NULL, NULL, 0, 0, false, 0, 0, 0, 0, 0, 0 };

/* BYTES with an optional K, M, G or T (powers of 1024); false when malformed or 0. */
static bool parse_bytes(const char *v, size_t *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    double unit = 1;
    if (*end == 'K' || *end == 'k') unit = 1024.0, end++;
    else if (*end == 'M') unit = 1024.0 * 1024, end++;
    else if (*end == 'G') unit = 1024.0 * 1024 * 1024, end++;
    else if (*end == 'T') unit = 1024.0 * 1024 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'i') end += *end == 'i' && end[1] == 'B' ? 2 : 1;
    if (end == v || *end || errno || !(x > 0) || x * unit >= 1.8e19) return false;
    *out = (size_t)(x * unit);
    return *out > 0;
}
static char disabled[1024];

/* Take one optimisation option; returns 1 when a was one, 0 when not, -1 when it is malformed. */
static int pass_option(const char *a)
{
    if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) {
        pass_opts.opt_level = a[2] - '0';
        return 1;
    }
    if (!strncmp(a, "--passes=", 9)) {
        pass_opts.passes = a + 9;
        return 1;
    }
    if (!strcmp(a, "--report")) {
        pass_opts.report = stderr;
        return 1;
    }
    if (!strncmp(a, "--max-memory=", 13)) return parse_bytes(a + 13, &pass_opts.max_memory) ? 1 : -1;
    if (!strncmp(a, "--prune=", 8)) {
        const char *v = a + 8;
        char *end;
        double x = strtod(strchr(v, ':') ? strchr(v, ':') + 1 : v, &end);
        if (*end || x <= 0) return -1;
        if (!strncmp(v, "threshold:", 10)) pass_opts.prune_threshold = x;
        else if (!strncmp(v, "sparsity:", 9) && x < 1) pass_opts.prune_sparsity = x;
        else if (!strncmp(v, "structured:", 11) && x < 1) {
            pass_opts.prune_sparsity = x;
            pass_opts.prune_structured = true;
        } else return -1;
        return 1;
    }
    if (!strncmp(a, "--low-rank=", 11)) {
        const char *v = a + 11;
        char *end;
        double x = strtod(strchr(v, ':') ? strchr(v, ':') + 1 : v, &end);
        if (*end || x <= 0) return -1;
        if (!strncmp(v, "rank:", 5) && x == (int)x) pass_opts.lowrank_rank = (int)x;
        else if (!strncmp(v, "energy:", 7) && x <= 1) pass_opts.lowrank_energy = x;
        else if (!strncmp(v, "error:", 6)) pass_opts.lowrank_error = x;
        else return -1;
        return 1;
    }
    if (!strncmp(a, "--quantize=", 11)) {
        const char *v = a + 11;
        if (strncmp(v, "int8", 4) || (v[4] && v[4] != ':')) return -1;
        pass_opts.quantize_bits = 8;
        pass_opts.quantize_group = 0;
        if (v[4] == ':') {
            char *end;
            if (strncmp(v + 5, "group=", 6)) return -1;
            errno = 0;
            long gsz = strtol(v + 11, &end, 10);
            if (end == v + 11 || *end || errno || gsz < 1 || gsz > 1 << 24) return -1;
            pass_opts.quantize_group = (int)gsz;
        }
        return 1;
    }
    if (!strncmp(a, "--no-", 5) && a[5]) {
        size_t len = strlen(disabled);
        snprintf(disabled + len, sizeof disabled - len, "%s%s", len ? "," : "", a + 5);
        pass_opts.disabled = disabled;
        return 1;
    }
    return 0;
}

static int bad_pass_option(const char *a)
{
    fprintf(stderr, "tfmc: malformed option `%s` (--prune=threshold:T|sparsity:S|structured:S, "
                    "--low-rank=rank:R|energy:E|error:T, --quantize=int8[:group=G], --max-memory=BYTES[K|M|G])\n", a);
    return EXIT_USAGE;
}

/* Load FILE and report its diagnostics; NULL (with the exit status in *status) on failure. */
/* --backend=interp|llvm of run and verify: what runs the compiled transformer in-process. */
static const char *exec_backend;

/* --backend=B for run and verify: 1 taken, -1 a bad one (reported), 0 not this option. */
static int backend_option(const char *a, const char *cmd)
{
    if (strncmp(a, "--backend=", 10) != 0) return 0;
    if (strcmp(a + 10, "interp") && strcmp(a + 10, "llvm")) {
        fprintf(stderr, "tfmc: %s: unknown backend `%s` (interp or llvm)\n", cmd, a + 10);
        return -1;
    }
    exec_backend = a + 10;
    return 1;
}

static TfmcContext *load(const char *path, int *status)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    if (!ctx) {
        fprintf(stderr, "tfmc: out of memory\n");
        *status = EXIT_INPUT;
        return NULL;
    }
    tfmc_set_options(ctx, &pass_opts);
    if (exec_backend && tfmc_set_backend(ctx, exec_backend) != TFMC_OK) {
        tfmc_print_diagnostics(ctx, stderr);
        tfmc_context_free(ctx);
        *status = EXIT_USAGE;
        return NULL;
    }
    TfmcStatus st = tfmc_load_file(ctx, path);
    if (st != TFMC_OK) {
        if (st == TFMC_ERR_NOMEM) fprintf(stderr, "tfmc: out of memory\n");
        tfmc_print_diagnostics(ctx, stderr);
        tfmc_context_free(ctx);
        *status = EXIT_INPUT;
        return NULL;
    }
    /* a file with warnings only loads: show them now, they fail nothing */
    diagnostics_shown = tfmc_diagnostic_count(ctx);
    if (diagnostics_shown > 0) tfmc_print_diagnostics(ctx, stderr);
    return ctx;
}

static int cmd_check(int argc, char **argv)
{
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_check, stdout);
            return 0;
        }
        if (!strncmp(argv[i], "--max-memory=", 13)) {
            if (pass_option(argv[i]) < 0) return bad_pass_option(argv[i]);
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1]) return usage_error("check: unknown option `%s`", argv[i]);
        if (file) return usage_error("check: more than one file given (`%s`)", argv[i]);
        file = argv[i];
    }
    if (!file) return usage_error("check: no FILE given%s", "");
    int status = 0;
    TfmcContext *ctx = load(file, &status);
    if (!ctx) return status;
    tfmc_context_free(ctx);
    return 0;
}

/* Evaluate one sequence (interpreter or compiled transformer) and print its line. */
static bool eval_one(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, bool trace,
                     bool compiled)
{
    TfmcValue out[MAX_TOKENS];
    TfmcStatus st = compiled ? tfmc_run(ctx, p, tokens, n, out) : tfmc_eval(ctx, p, tokens, n, out);
    if (st != TFMC_OK) {
        fputc('\n', stdout);
        print_errors(ctx, st);
        return false;
    }
    if (trace) tfmc_eval_trace(ctx, p, tokens, n, stdout);
    tfmc_print_values(stdout, out, n);
    return true;
}

/* One input sequence of a model: argmax ids per position, the last logits, or K generated ids. */
/* How `run` generates: --generate K, sampling, the end-of-sequence ids, text through a tokenizer. */
typedef struct Generation {
    bool logits;
    long count;            /* --generate K (-1: not generating) */
    TfmcSampler sampler;   /* temperature 0: greedy */
    uint64_t seed;
    const int *eos;        /* the model's `eos` ids: generation stops after one */
    size_t neos;
    TfmcTokenizer *tokenizer; /* --prompt: the output is text */
} Generation;

static bool is_eos(const Generation *g, int id)
{
    for (size_t i = 0; i < g->neos; i++)
        if (g->eos[i] == id) return true;
    return false;
}

static bool model_line(TfmcSession *s, int vocab, int max_len, const int *ids, size_t n, const Generation *g,
                       char *err, size_t errcap)
{
    long generate = g->count;
    if (generate > 0 && n + (size_t)generate > (size_t)max_len) {
        snprintf(err, errcap, "%zu tokens plus %ld generated is more than max_len %d", n, generate, max_len);
        return false;
    }
    /* --logits and --generate read the last position's logits only: only those are computed */
    bool every = !g->logits && generate <= 0;
    float *out = malloc(sizeof(float) * (every ? n : 1) * (size_t)vocab);
    int *work = malloc(sizeof(int) * (size_t)vocab);
    char *piece = g->tokenizer ? malloc(tfmc_tokenizer_stream_bytes(g->tokenizer)) : NULL;
    if (!out || !work || (g->tokenizer && !piece)) {
        free(out);
        free(work);
        free(piece);
        snprintf(err, errcap, "out of memory");
        return false;
    }
    tfmc_session_reset(s);
    bool ok = (every ? tfmc_session_prefill(s, ids, n, out) : tfmc_session_prefill_last(s, ids, n, out)) == TFMC_OK;
    const float *last = every ? out + (n - 1) * (size_t)vocab : out;
    if (!ok) {
        snprintf(err, errcap, "the model could not run this sequence");
    } else if (g->logits) {
        for (int v = 0; v < vocab; v++) printf("%s%.9g", v ? " " : "", (double)last[v]);
        putchar('\n');
    } else if (generate > 0) {
        /* each input line samples from the same seed: one line's output does not depend on the others */
        uint64_t state = tfmc_sampler_seed(g->seed);
        TfmcTokenStream text;
        if (g->tokenizer) tfmc_tokenizer_stream_init(&text, g->tokenizer, TFMC_TOKENIZE_SKIP_SPECIAL);
        int next = tfmc_sample(last, (size_t)vocab, &g->sampler, &state, work);
        for (long k = 0; k < generate && ok; k++) {
            bool stop = is_eos(g, next);
            if (g->tokenizer) {
                size_t len;
                if (!stop) tfmc_tokenizer_stream_push(&text, next, piece, &len);
                else tfmc_tokenizer_stream_flush(&text, piece, &len);
                fwrite(piece, 1, len, stdout);
                fflush(stdout); /* the text as it is generated */
            } else {
                printf("%s%d", k ? " " : "", next);
            }
            if (stop) break;
            if (k + 1 < generate) {
                ok = tfmc_session_decode(s, next, out) == TFMC_OK;
                next = tfmc_sample(out, (size_t)vocab, &g->sampler, &state, work);
            } else if (g->tokenizer) {
                size_t len;
                tfmc_tokenizer_stream_flush(&text, piece, &len);
                fwrite(piece, 1, len, stdout);
            }
        }
        putchar('\n');
    } else {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", tfmc_argmax(out + i * (size_t)vocab, (size_t)vocab));
        putchar('\n');
    }
    free(out);
    free(work);
    free(piece);
    return ok;
}

/* Threads for `run`: prefill and decode counts (0: the machine's cores) and the task grain. */
typedef struct RunThreads {
    int prefill, decode;
    long grain;
    bool profile; /* --profile: the time of each kernel, on standard error at the end */
} RunThreads;

static int run_model(TfmcContext *ctx, const TfmcProgram *p, char **words, size_t nwords, Generation *g,
                     const char *prompt, const RunThreads *threads)
{
    TfmcSession *s;
    TfmcStatus st = tfmc_session_new(ctx, p, &s);
    if (st == TFMC_OK) {
        tfmc_session_set_task_grain(s, (size_t)threads->grain);
        if (threads->prefill != 1 || threads->decode != 1)
            st = tfmc_session_set_threads(s, threads->prefill, threads->decode);
        if (st == TFMC_OK && threads->profile) st = tfmc_session_profile(s, true);
        if (st != TFMC_OK) tfmc_session_free(s);
    }
    if (st != TFMC_OK) {
        print_errors(ctx, st);
        return EXIT_INPUT;
    }
    int vocab = tfmc_model_vocab(p), max_len = tfmc_program_max_len(p), status = 0;
    int ids[MAX_TOKENS];
    char err[256];
    g->neos = tfmc_model_eos(p, &g->eos);
    if (prompt) {
        size_t n;
        TfmcStatus es = tfmc_tokenizer_encode(g->tokenizer, prompt, strlen(prompt), TFMC_TOKENIZE_ADD_SPECIAL, ids, MAX_TOKENS, &n);
        if (es != TFMC_OK || n == 0 || n > MAX_TOKENS) {
            if (es == TFMC_ERR_INPUT) fprintf(stderr, "tfmc: run: the prompt is not valid UTF-8 at byte %zu\n", n + 1);
            else fprintf(stderr, "tfmc: run: the prompt %s\n", es != TFMC_OK ? "could not be encoded" : n ? "is too long" : "gives no tokens");
            status = EXIT_INPUT;
        } else {
            for (size_t i = 0; i < n; i++)
                if (ids[i] >= vocab) {
                    fprintf(stderr, "tfmc: run: the tokenizer gives id %d, outside the model's vocabulary (0..%d)\n", ids[i], vocab - 1);
                    status = EXIT_INPUT;
                    break;
                }
            if (!status && !model_line(s, vocab, max_len, ids, n, g, err, sizeof err)) {
                fputc('\n', stdout);
                fprintf(stderr, "tfmc: run: %s\n", err);
                status = EXIT_INPUT;
            }
        }
    } else if (nwords > 0) {
        if (tfmc_parse_id_words(p, words, nwords, ids, MAX_TOKENS, err, sizeof err) != TFMC_OK ||
            !model_line(s, vocab, max_len, ids, nwords, g, err, sizeof err)) {
            fputc('\n', stdout);
            fprintf(stderr, "tfmc: input: %s\n", err);
            status = EXIT_INPUT;
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        for (long lineno = 1; getline(&line, &cap, stdin) >= 0; lineno++) {
            size_t n = 0;
            if (tfmc_parse_ids(p, line, ids, MAX_TOKENS, &n, err, sizeof err) != TFMC_OK ||
                !model_line(s, vocab, max_len, ids, n, g, err, sizeof err)) {
                fputc('\n', stdout);
                fflush(stdout);
                fprintf(stderr, "tfmc: input line %ld: %s\n", lineno, err);
                status = EXIT_INPUT;
            }
            fflush(stdout);
        }
        free(line);
    }
    if (threads->profile) {
        fflush(stdout);
        tfmc_session_print_profile(s, stderr);
    }
    tfmc_session_free(s);
    return status;
}

/* `eval` and `run`: the same command line and I/O, the interpreter or the transformer. */
static int cmd_sequences(int argc, char **argv, bool compiled)
{
    const char *cmdname = compiled ? "run" : "eval";
    const char *file = NULL, *name = NULL;
    bool trace = false, logits = false;
    long generate = -1;
    RunThreads threads = { 0, 0, 0, false };
    Generation gen = { false, -1, { 0, 0, 1 }, 0, NULL, 0, NULL };
    const char *prompt = NULL, *tokenizer = NULL;
    char **words = malloc(sizeof(char *) * (size_t)(argc + 1));
    size_t nwords = 0;
    bool options_done = false;
    int status = 0;
    if (!words) return EXIT_INPUT;
    int taken; /* what pass_option made of an argument (parsed once: --no-X appends) */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        /* A word that starts with `-` and a digit is a token (negative integers), not an option. */
        bool option = !options_done && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9');
        if (option && !strcmp(a, "--")) {
            options_done = true;
        } else if (option && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            fputs(compiled ? usage_run : usage_eval, stdout);
            free(words);
            return 0;
        } else if (option && (!strcmp(a, "-p") || !strcmp(a, "--program"))) {
            if (i + 1 >= argc) {
                free(words);
                fprintf(stderr, "tfmc: %s: `%s` needs a program name (see `tfmc --help`)\n", cmdname, a);
                return EXIT_USAGE;
            }
            name = argv[++i];
        } else if (option && !strncmp(a, "--program=", 10)) {
            name = a + 10;
        } else if (option && compiled && (taken = pass_option(a)) != 0) {
            if (taken < 0) {
                free(words);
                return bad_pass_option(a);
            }
        } else if (option && compiled && !strcmp(a, "--logits")) {
            logits = true;
        } else if (option && compiled && !strcmp(a, "--generate")) {
            char *end;
            generate = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (i + 1 >= argc || *end || generate < 1) {
                free(words);
                fprintf(stderr, "tfmc: run: `--generate` needs a positive number of tokens\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (option && compiled && (!strcmp(a, "--prompt") || !strcmp(a, "--tokenizer"))) {
            if (i + 1 >= argc) {
                free(words);
                fprintf(stderr, "tfmc: run: `%s` needs %s\n", a, a[2] == 'p' ? "a text" : "a tokenizer.json");
                return EXIT_USAGE;
            }
            *(a[2] == 'p' ? &prompt : &tokenizer) = argv[++i];
        } else if (option && compiled && (!strcmp(a, "--temperature") || !strcmp(a, "--top-p") ||
                                          !strcmp(a, "--top-k") || !strcmp(a, "--seed"))) {
            char *end = NULL;
            errno = 0;
            double v = i + 1 < argc ? strtod(argv[i + 1], &end) : -1;
            bool bad = i + 1 >= argc || *end || errno || end == argv[i + 1];
            if (!strcmp(a, "--temperature")) bad = bad || !(v >= 0 && v <= 100), gen.sampler.temperature = (float)v;
            else if (!strcmp(a, "--top-p")) bad = bad || !(v > 0 && v <= 1), gen.sampler.top_p = (float)v;
            else if (!strcmp(a, "--top-k")) bad = bad || !(v >= 0 && v <= 1e9) || v != (long)v, gen.sampler.top_k = (int)v;
            else bad = bad || !(v >= 0 && v < 1.8e19) || v != (double)(uint64_t)v, gen.seed = (uint64_t)v;
            if (bad) {
                free(words);
                fprintf(stderr, "tfmc: run: `%s` needs %s\n", a,
                        !strcmp(a, "--temperature") ? "a temperature from 0 (greedy) to 100"
                        : !strcmp(a, "--top-p") ? "a probability in (0, 1]"
                        : !strcmp(a, "--top-k") ? "a count of tokens (0: all)" : "a seed, an integer from 0");
                return EXIT_USAGE;
            }
            i++;
        } else if (option && compiled && (!strcmp(a, "--threads") || !strcmp(a, "--task-grain"))) {
            char *end = NULL;
            bool grain = !strcmp(a, "--task-grain");
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1, d = v;
            if (!grain && end && *end == ',') d = strtol(end + 1, &end, 10);
            if (i + 1 >= argc || *end || v < (grain ? 0 : 1) || d < 1 || v > 4096 || d > 4096) {
                free(words);
                fprintf(stderr, "tfmc: run: `%s` needs %s\n", a,
                        grain ? "a count of multiply-adds (0: the default)" : "a thread count N or N,D (1 to 4096)");
                return EXIT_USAGE;
            }
            if (grain) threads.grain = v;
            else threads.prefill = (int)v, threads.decode = (int)d;
            i++;
        } else if (option && !strcmp(a, "--trace") && !compiled) {
            trace = true;
        } else if (option && !strcmp(a, "--profile") && compiled) {
            threads.profile = true;
        } else if (option && compiled && (taken = backend_option(a, cmdname)) != 0) {
            if (taken < 0) {
                free(words);
                return EXIT_USAGE;
            }
        } else if (option) {
            free(words);
            fprintf(stderr, "tfmc: %s: unknown option `%s` (see `tfmc %s --help`)\n", cmdname, a, cmdname);
            return EXIT_USAGE;
        } else if (!file) {
            file = a;
        } else {
            words[nwords++] = argv[i];
        }
    }
    if (!file) {
        free(words);
        fprintf(stderr, "tfmc: %s: no FILE given (see `tfmc %s --help`)\n", cmdname, cmdname);
        return EXIT_USAGE;
    }
    TfmcContext *ctx = load(file, &status);
    if (!ctx) {
        free(words);
        return status;
    }
    const TfmcProgram *p;
    if (tfmc_find_program(ctx, name, &p) != TFMC_OK) {
        tfmc_print_diagnostics(ctx, stderr);
        tfmc_context_free(ctx);
        free(words);
        return EXIT_USAGE;
    }
    if (tfmc_program_kind(p) != TFMC_PROGRAM_RASP && !compiled) {
        fprintf(stderr, "tfmc: eval: `%s` is a model declaration; eval runs RASP programs\n", tfmc_program_name(p));
        tfmc_context_free(ctx);
        free(words);
        return EXIT_USAGE;
    }
    TfmcStatus cst = compiled ? tfmc_compile(ctx, p) : TFMC_OK;
    if (cst != TFMC_OK) {
        print_errors(ctx, cst);
        tfmc_context_free(ctx);
        free(words);
        return EXIT_INPUT;
    }
    if (tfmc_program_kind(p) == TFMC_PROGRAM_MODEL) {
        gen.logits = logits;
        gen.count = generate;
        if (prompt && nwords > 0) {
            fprintf(stderr, "tfmc: run: give the input as --prompt TEXT or as ids, not both\n");
            status = EXIT_USAGE;
        } else if (prompt) {
            const char *path = tokenizer ? tokenizer : tfmc_model_tokenizer(p);
            TfmcStatus ts = path ? tfmc_tokenizer_load(ctx, path, &gen.tokenizer) : TFMC_ERR_USAGE;
            if (!path) {
                fprintf(stderr, "tfmc: run: --prompt needs a tokenizer: `tokenizer \"tokenizer.json\";` in the model, or --tokenizer FILE\n");
                status = EXIT_USAGE;
            } else if (ts != TFMC_OK) {
                print_errors(ctx, ts);
                status = EXIT_INPUT;
            }
        }
        if (!status) status = run_model(ctx, p, words, nwords, &gen, prompt, &threads);
        tfmc_tokenizer_free(gen.tokenizer);
        tfmc_context_free(ctx);
        free(words);
        return status;
    }
    if (prompt || tokenizer || gen.sampler.temperature > 0) {
        fprintf(stderr, "tfmc: run: --prompt, --tokenizer and sampling are for models; `%s` is a RASP program\n", tfmc_program_name(p));
        tfmc_context_free(ctx);
        free(words);
        return EXIT_USAGE;
    }
    if (logits || generate > 0) {
        fprintf(stderr, "tfmc: run: --logits and --generate are for models; `%s` is a RASP program\n", tfmc_program_name(p));
        tfmc_context_free(ctx);
        free(words);
        return EXIT_USAGE;
    }
    TfmcValue tokens[MAX_TOKENS];
    char err[512];
    if (nwords > 0) {
        if (tfmc_parse_words(p, words, nwords, tokens, MAX_TOKENS, err, sizeof err) != TFMC_OK) {
            fputc('\n', stdout);
            fprintf(stderr, "tfmc: input: %s\n", err);
            status = EXIT_INPUT;
        } else {
            if (!eval_one(ctx, p, tokens, nwords, trace, compiled)) status = EXIT_INPUT;
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        for (long lineno = 1; (len = getline(&line, &cap, stdin)) >= 0; lineno++) {
            size_t n;
            if (strlen(line) != (size_t)len) {
                fputc('\n', stdout);
                fprintf(stderr, "tfmc: input line %ld: the line contains a NUL byte\n", lineno);
                status = EXIT_INPUT;
                continue;
            }
            if (tfmc_parse_tokens(p, line, tokens, MAX_TOKENS, &n, err, sizeof err) != TFMC_OK) {
                fputc('\n', stdout);
                fflush(stdout);
                fprintf(stderr, "tfmc: input line %ld: %s\n", lineno, err);
                status = EXIT_INPUT;
                continue;
            }
            if (!eval_one(ctx, p, tokens, n, trace, compiled)) status = EXIT_INPUT;
            fflush(stdout);
        }
        free(line);
    }
    tfmc_context_free(ctx);
    free(words);
    return status;
}

/* `tfmc verify FILE [-p NAME] [--len N] [--samples K] [--seed S]` */
static int cmd_verify(int argc, char **argv)
{
    const char *file = NULL, *name = NULL;
    TfmcVerifyOptions o = { 0, 0, 0 };
    int taken; /* what pass_option made of an argument (parsed once: --no-X appends) */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_verify, stdout);
            return 0;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--program")) {
            if (!has_value) return usage_error("verify: `%s` needs a program name", a);
            name = argv[++i];
        } else if (!strcmp(a, "--len") || !strcmp(a, "--samples") || !strcmp(a, "--seed")) {
            char *end;
            if (!has_value) return usage_error("verify: `%s` needs a number", a);
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 1) return usage_error("verify: `%s` needs a positive integer", a);
            if (!strcmp(a, "--len")) o.max_len = (int)(v > 4096 ? 4096 : v);
            else if (!strcmp(a, "--samples")) o.samples = (long)v;
            else o.seed = (uint64_t)v;
        } else if ((taken = pass_option(a)) != 0) {
            if (taken < 0) return bad_pass_option(a);
        } else if ((taken = backend_option(a, "verify")) != 0) {
            if (taken < 0) return EXIT_USAGE;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("verify: unknown option `%s`", a);
        } else if (!file) {
            file = a;
        } else {
            return usage_error("verify: unexpected argument `%s`", a);
        }
    }
    if (!file) return usage_error("verify: no FILE given%s", "");
    int status = 0;
    TfmcContext *ctx = load(file, &status);
    if (!ctx) return status;
    const TfmcProgram *p;
    TfmcVerifyResult r;
    TfmcStatus st = tfmc_find_program(ctx, name, &p);
    if (st == TFMC_OK) st = tfmc_verify(ctx, p, &o, &r, stdout);
    if (st != TFMC_OK) {
        print_errors(ctx, st);
        tfmc_context_free(ctx);
        return st == TFMC_ERR_USAGE ? EXIT_USAGE : EXIT_INPUT;
    }
    /* "verified" only for a check of every sequence: a sample that found nothing proves nothing */
    if (r.equal && r.exhaustive)
        printf("verified `%s`: the transformer equals the interpreter on %ld input%s (every sequence up to the "
               "length)\n", tfmc_program_name(p), r.checked, r.checked == 1 ? "" : "s");
    else if (r.equal)
        printf("`%s`: no difference on %ld sampled input%s between the transformer and the interpreter (a seeded "
               "random sample: not verified on every sequence up to the length)\n", tfmc_program_name(p), r.checked,
               r.checked == 1 ? "" : "s");
    else
        printf("`%s`: the transformer differs from the interpreter (after %ld equal input%s)\n", tfmc_program_name(p),
               r.checked, r.checked == 1 ? "" : "s");
    tfmc_context_free(ctx);
    return r.equal ? 0 : EXIT_INPUT;
}

/* Append one command-line word to the "Options:" line of generated C, as a shell reads it back:
 * single-quoted when it holds more than [A-Za-z0-9_./=:,+@%-], with `*` and `/` never adjacent
 * (that would end the C comment) and control characters as `?`. When a word does not fit, the
 * line ends in ` ...` and takes nothing more. */
static void record_option(char *buf, size_t cap, size_t *len, const char *word)
{
    static const char ellipsis[] = " ...";
    if (*len >= 4 && !strcmp(buf + *len - 4, ellipsis)) return;
    char text[600];
    size_t n = 0;
    bool plain = *word != '\0', fits = true;
    for (const char *c = word; *c; c++)
        if (!strchr("_./=:,+@%-", *c) && !(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z') &&
            !(*c >= '0' && *c <= '9'))
            plain = false;
    if (*len) text[n++] = ' ';
    if (!plain) text[n++] = '\'';
    for (const char *c = word; *c && fits; c++) {
        /* a quote: close, an escaped quote, reopen; `*` before `/`: close and reopen between them */
        const char *piece = *c == '\'' ? "'\\''" : c[0] == '*' && c[1] == '/' ? "*''" : NULL;
        size_t k = piece ? strlen(piece) : 1;
        if (n + k + 1 >= sizeof text) fits = false;
        else if (piece) memcpy(text + n, piece, k);
        else text[n] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
        n += fits ? k : 0;
    }
    if (!plain) text[n++] = '\'';
    if (!fits || *len + n + sizeof ellipsis > cap) {
        memcpy(buf + *len, ellipsis, sizeof ellipsis);
        *len += sizeof ellipsis - 1;
        return;
    }
    memcpy(buf + *len, text, n);
    *len += n;
    buf[*len] = '\0';
}

/* A target the SIMD backend knows (the library checks again, and names them too). */
static bool simd_target_known(const char *t)
{
    static const char *const names[] = { "avx512", "avx2", "neon", "baseline", "native" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(t, names[i])) return true;
    return false;
}

/* `tfmc FILE -o OUT [-p NAME] [--main] [--backend=c] [--emit=c|model|graph|weights] [--weights=separate]` */
static int cmd_compile(int argc, char **argv)
{
    const char *file = NULL, *name = NULL, *out = NULL, *emit = "c", *weights = "inline", *target = NULL;
    bool simd = false;
    long byte_arrays = 0; /* --byte-arrays: 0 the default, -1 off */
    bool with_main = false;
    const char *tokenizer = NULL; /* --tokenizer FILE|none: NULL the model's own */
    char options[2048] = ""; /* the options and their values, for the header comment of generated C */
    size_t olen = 0;
    int taken; /* what pass_option made of an argument (parsed once: --no-X appends) */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && strcmp(a, "-") != 0) record_option(options, sizeof options, &olen, a);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_compile, stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "-p") || !strcmp(a, "--program")) {
            if (i + 1 >= argc) return usage_error("`%s` needs a value", a);
            record_option(options, sizeof options, &olen, argv[i + 1]);
            if (!strcmp(a, "-o")) out = argv[++i];
            else name = argv[++i];
        } else if (!strcmp(a, "--main")) {
            with_main = true;
        } else if (!strcmp(a, "--tokenizer")) {
            if (i + 1 >= argc) return usage_error("`%s` needs a tokenizer.json (or `none`)", a);
            record_option(options, sizeof options, &olen, argv[i + 1]);
            tokenizer = !strcmp(argv[++i], "none") ? "" : argv[i];
        } else if (!strncmp(a, "--emit=", 7)) {
            emit = a + 7;
            if (strcmp(emit, "c") && strcmp(emit, "model") && strcmp(emit, "graph") && strcmp(emit, "kernels") &&
                strcmp(emit, "weights"))
                return usage_error("unknown --emit kind `%s` (c, model, graph, kernels or weights)", emit);
        } else if (!strncmp(a, "--backend=", 10)) {
            if (strcmp(a + 10, "c") != 0 && strcmp(a + 10, "simd") != 0)
                return usage_error("backend `%s` is not available in this build (available: c, simd)", a + 10);
            simd = !strcmp(a + 10, "simd");
        } else if (!strncmp(a, "--target=", 9)) {
            target = a + 9;
        } else if (!strncmp(a, "--byte-arrays=", 14)) {
            char *end;
            byte_arrays = !strcmp(a + 14, "off") ? -1 : strtol(a + 14, &end, 10);
            if (strcmp(a + 14, "off") && (*end || end == a + 14 || byte_arrays < 1))
                return usage_error("--byte-arrays needs a count of floats (1 or more) or `off`, not `%s`", a + 14);
        } else if (!strncmp(a, "--weights=", 10)) {
            weights = a + 10;
            if (strcmp(weights, "inline") && strcmp(weights, "separate"))
                return usage_error("unknown --weights mode `%s` (inline or separate)", weights);
        } else if ((taken = pass_option(a)) != 0) {
            if (taken < 0) return bad_pass_option(a);
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option `%s`", a);
        } else if (!file) {
            file = a;
        } else {
            return usage_error("unexpected argument `%s`", a);
        }
    }
    if (!file) return usage_error("no FILE given%s", "");
    if (target && !simd) return usage_error("`--target=%s` is for the SIMD backend: add --backend=simd", target);
    if (target && !simd_target_known(target))
        return usage_error("unknown --target `%s` (avx512, avx2, neon, baseline or native)", target);
    if (simd && !target) target = "native";
    bool binary = !strcmp(emit, "weights");
    if (!out && (binary || !strcmp(emit, "c"))) return usage_error("`--emit=%s` needs an output file: -o OUT", emit);
    int status = 0;
    TfmcContext *ctx = load(file, &status);
    if (!ctx) return status;
    const TfmcProgram *p;
    TfmcStatus st = tfmc_find_program(ctx, name, &p);
    if (st == TFMC_OK) st = tfmc_compile(ctx, p);
    if (st == TFMC_OK && binary) st = tfmc_write_safetensors(ctx, p, out);
    if (st == TFMC_OK && !binary) {
        FILE *f = out && strcmp(out, "-") ? fopen(out, "w") : stdout;
        FILE *wf = NULL, *hf = NULL;
        char wpath[4096], hpath[4096];
        if (!f) {
            fprintf(stderr, "tfmc: cannot write `%s`\n", out);
            tfmc_context_free(ctx);
            return EXIT_INPUT;
        }
        if (!strcmp(emit, "c") && !strcmp(weights, "separate")) {
            size_t len = strlen(out);
            snprintf(wpath, sizeof wpath, "%.*s_weights.c", (int)(len > 2 && !strcmp(out + len - 2, ".c") ? len - 2 : len), out);
            wf = fopen(wpath, "w");
            if (!wf) {
                fprintf(stderr, "tfmc: cannot write `%s`\n", wpath);
                if (f != stdout) fclose(f);
                tfmc_context_free(ctx);
                return EXIT_INPUT;
            }
        }
        if (!strcmp(emit, "c") && f != stdout) {
            /* OUT.h beside OUT.c: the interface, for the files that call it */
            size_t len = strlen(out);
            snprintf(hpath, sizeof hpath, "%.*s.h", (int)(len > 2 && !strcmp(out + len - 2, ".c") ? len - 2 : len), out);
            hf = fopen(hpath, "w");
            if (!hf) {
                fprintf(stderr, "tfmc: cannot write `%s`\n", hpath);
                if (wf) fclose(wf);
                fclose(f);
                tfmc_context_free(ctx);
                return EXIT_INPUT;
            }
        }
        if (!strcmp(emit, "c")) {
            const char *base = out ? strrchr(out, '/') : NULL;
            TfmcCOptions co = { with_main, options, wf, wf ? wpath : NULL, hf, base ? base + 1 : out, simd ? target : NULL,
                                byte_arrays, tokenizer };
            st = tfmc_emit_c(ctx, p, &co, f);
        } else {
            st = tfmc_emit(ctx, p, !strcmp(emit, "model") ? TFMC_EMIT_MODEL : !strcmp(emit, "kernels") ? TFMC_EMIT_KERNELS : TFMC_EMIT_GRAPH, f);
        }
        if (wf && fclose(wf) != 0) st = TFMC_ERR_IO;
        if (hf && fclose(hf) != 0) st = TFMC_ERR_IO;
        if (f != stdout && fclose(f) != 0) st = TFMC_ERR_IO;
        if (st == TFMC_ERR_IO) fprintf(stderr, "tfmc: cannot write `%s`\n", out);
    }
    if (st != TFMC_OK) print_errors(ctx, st);
    tfmc_context_free(ctx);
    return st == TFMC_OK ? 0 : st == TFMC_ERR_USAGE ? EXIT_USAGE : EXIT_INPUT;
}

/* The flags a generated file needs: from the build tree when tfmc runs from it, else the prefix. */
static int cmd_config(int argc, char **argv)
{
    bool cflags = false, libs = false, lib_tfmc = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--cflags")) cflags = true;
        else if (!strcmp(argv[i], "--lib=tfmc")) lib_tfmc = true;
        else if (!strcmp(argv[i], "--lib=tfmcrt")) lib_tfmc = false;
        else if (!strncmp(argv[i], "--lib=", 6))
            return usage_error("config: unknown library `%s` (tfmcrt or tfmc)", argv[i] + 6);
        else if (!strcmp(argv[i], "--libs")) libs = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_config, stdout);
            return 0;
        } else return usage_error("config: unknown option `%s`", argv[i]);
    }
    if (!cflags && !libs) return usage_error("config: say --cflags, --libs or both%s", "");
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    self[len > 0 ? len : 0] = '\0';
    const char *root = TFMC_BUILD_ROOT;
    bool in_build = len > 0 && strncmp(self, root, strlen(root)) == 0 && self[strlen(root)] == '/';
    if (lib_tfmc) {
        if (cflags) {
            if (in_build) printf("-I%s/include", TFMC_SOURCE_ROOT);
            else printf("-I%s", TFMC_INCLUDEDIR);
        }
        if (libs) {
            if (cflags) putchar(' ');
            if (in_build) printf("%s/libtfmc.so -Wl,-rpath,%s%s", TFMC_BUILD_ROOT, TFMC_BUILD_ROOT, TFMC_SANITIZE);
            else printf("-L%s -ltfmc -Wl,-rpath,%s", TFMC_LIBDIR, TFMC_LIBDIR);
        }
        putchar('\n');
        return 0;
    }
    if (cflags) {
        if (in_build) printf("-I%s/runtime", TFMC_SOURCE_ROOT);
        else printf("-I%s", TFMC_INCLUDEDIR);
    }
    if (libs) {
        if (cflags) putchar(' ');
        if (in_build) printf("%s/runtime/libtfmcrt.a -lm -pthread%s", TFMC_BUILD_ROOT, TFMC_SANITIZE);
        else printf("-L%s -ltfmcrt -lm -pthread", TFMC_LIBDIR);
    }
    putchar('\n');
    return 0;
}

/* --escapes: \n \r \t \\ and \xHH in place, in s[0..*len); false on a malformed escape. */
static bool unescape(char *s, size_t *len)
{
    size_t o = 0;
    for (size_t i = 0; i < *len; i++) {
        if (s[i] != '\\') {
            s[o++] = s[i];
            continue;
        }
        char e = ++i < *len ? s[i] : '\0';
        if (e == 'n') s[o++] = '\n';
        else if (e == 'r') s[o++] = '\r';
        else if (e == 't') s[o++] = '\t';
        else if (e == '\\') s[o++] = '\\';
        else if (e == 'x' && i + 2 < *len && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
            char hex[3] = { s[i + 1], s[i + 2], '\0' };
            s[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else return false;
    }
    *len = o;
    return true;
}

static bool escapes;

static void write_text(const char *s, size_t n)
{
    if (!escapes) {
        fwrite(s, 1, n, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\\') fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

/* One text to ids on a line; false (with the message printed) when the text is not UTF-8. */
static bool tokenize_one(const TfmcTokenizer *tok, char *text, size_t len, unsigned flags, long line)
{
    if (escapes && !unescape(text, &len)) {
        fprintf(stderr, "tfmc: %s%.0ld%sa malformed escape (\\n \\r \\t \\\\ \\xHH)\n", line > 0 ? "line " : "",
                line > 0 ? line : 0, line > 0 ? ": " : "");
        return false;
    }
    size_t cap = tfmc_tokenizer_max_ids(tok, len), n;
    int *ids = malloc(sizeof(int) * (cap ? cap : 1));
    if (!ids) {
        fprintf(stderr, "tfmc: out of memory\n");
        return false;
    }
    TfmcStatus st = tfmc_tokenizer_encode(tok, text, len, flags, ids, cap, &n);
    if (st != TFMC_OK) {
        if (st == TFMC_ERR_NOMEM) fprintf(stderr, "tfmc: out of memory\n");
        else if (line > 0) fprintf(stderr, "tfmc: line %ld: the text is not valid UTF-8 at byte %zu\n", line, n + 1);
        else fprintf(stderr, "tfmc: the text is not valid UTF-8 at byte %zu\n", n + 1);
        free(ids);
        return false;
    }
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    return true;
}

/* One line of ids to text; false (with the message printed) on a bad id. */
static bool detokenize_one(const TfmcTokenizer *tok, const char *text, unsigned flags, long line)
{
    size_t cap = 64, n = 0;
    int *ids = malloc(sizeof(int) * cap);
    const char *p = text;
    bool ok = ids != NULL;
    while (ok) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        int vocab = tfmc_tokenizer_vocab(tok);
        if (end == p || errno || v < 0 || v >= vocab || (*end && *end != ' ' && *end != '\t' && *end != '\r' && *end != '\n')) {
            int w = 0;
            while (p[w] && p[w] != ' ' && p[w] != '\t' && p[w] != '\n' && w < 40) w++;
            fprintf(stderr, "tfmc: %s%.0ld%s`%.*s` is not a token id (0..%d)\n", line > 0 ? "line " : "", line > 0 ? line : 0,
                    line > 0 ? ": " : "", w, p, vocab - 1);
            ok = false;
            break;
        }
        if (n == cap) {
            int *m = realloc(ids, sizeof(int) * (cap *= 2));
            if (!m) { ok = false; break; }
            ids = m;
        }
        ids[n++] = (int)v;
        p = end;
    }
    if (ok) {
        size_t len;
        tfmc_tokenizer_decode(tok, ids, n, flags, NULL, 0, &len);
        char *out = malloc(len + 1);
        TfmcStatus st = out ? tfmc_tokenizer_decode(tok, ids, n, flags, out, len + 1, &len) : TFMC_ERR_NOMEM;
        if (st == TFMC_OK) {
            write_text(out, len);
            putchar('\n');
        } else {
            size_t bad = 0;
            while (bad < n && tfmc_tokenizer_piece(tok, ids[bad], NULL)) bad++;
            if (st == TFMC_ERR_NOMEM) fprintf(stderr, "tfmc: out of memory\n");
            else fprintf(stderr, "tfmc: %s%.0ld%sid %d is not a token of this tokenizer\n", line > 0 ? "line " : "",
                         line > 0 ? line : 0, line > 0 ? ": " : "", bad < n ? ids[bad] : -1);
            ok = false;
        }
        free(out);
    }
    free(ids);
    return ok;
}

static int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL;
    bool decode = false, whole = false, texts = false;
    unsigned flags = 0;
    int first_text = argc;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!texts && !strcmp(a, "--")) texts = true;
        else if (!texts && !strcmp(a, "--decode")) decode = true;
        else if (!texts && !strcmp(a, "--whole")) whole = true;
        else if (!texts && !strcmp(a, "--escapes")) escapes = true;
        else if (!texts && !strcmp(a, "--add-special")) flags |= TFMC_TOKENIZE_ADD_SPECIAL;
        else if (!texts && !strcmp(a, "--plain")) flags |= TFMC_TOKENIZE_PLAIN;
        else if (!texts && !strcmp(a, "--skip-special")) flags |= TFMC_TOKENIZE_SKIP_SPECIAL;
        else if (!texts && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            fputs(usage_tokenize, stdout);
            return 0;
        } else if (!texts && a[0] == '-' && a[1] == '-') return usage_error("tokenize: unknown option `%s`", a);
        else if (!path) path = a;
        else {
            first_text = i;
            break;
        }
    }
    if (!path) return usage_error("tokenize: give a tokenizer.json%s", "");
    TfmcContext *ctx = tfmc_context_new(NULL);
    if (!ctx) return EXIT_INPUT;
    TfmcTokenizer *tok = NULL;
    TfmcStatus st = tfmc_tokenizer_load(ctx, path, &tok);
    if (st != TFMC_OK) {
        print_errors(ctx, st);
        tfmc_context_free(ctx);
        return EXIT_INPUT;
    }
    bool ok = true;
    if (first_text < argc) {
        for (int i = first_text; i < argc; i++) {
            if (!strcmp(argv[i], "--") && i == first_text) continue;
            ok = (decode ? detokenize_one(tok, argv[i], flags, 0) : tokenize_one(tok, argv[i], strlen(argv[i]), flags, 0)) && ok;
        }
    } else if (whole) {
        size_t len = 0, cap = 1 << 16;
        char *buf = malloc(cap);
        for (size_t got; buf && (got = fread(buf + len, 1, cap - len - 1, stdin)) > 0;) {
            len += got;
            if (cap - len < 2) {
                char *m = realloc(buf, cap *= 2);
                if (!m) { free(buf); buf = NULL; }
                buf = m;
            }
        }
        if (!buf) ok = false;
        else {
            buf[len] = '\0';
            ok = decode ? detokenize_one(tok, buf, flags, 0) : tokenize_one(tok, buf, len, flags, 0);
        }
        free(buf);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        for (long n = 1; (len = getline(&line, &cap, stdin)) >= 0; n++) {
            if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
            ok = (decode ? detokenize_one(tok, line, flags, n) : tokenize_one(tok, line, (size_t)len, flags, n)) && ok;
        }
        free(line);
    }
    tfmc_tokenizer_free(tok);
    tfmc_context_free(ctx);
    return ok ? 0 : EXIT_INPUT;
}

static const char usage_import[] =
    "usage: tfmc import DIR [-o FILE.tfm]\n"
    "\n"
    "Write a .tfm that loads the Hugging Face model folder DIR unchanged: config.json,\n"
    "generation_config.json (the end-of-sequence ids), model.safetensors or a sharded\n"
    "model.safetensors.index.json, and tokenizer.json when there is one. Families: gpt2, llama,\n"
    "mistral, qwen2, qwen3, phi3, gemma, gpt_neox. Each line says the config field it comes from; a field tfmc cannot honour is\n"
    "an error naming it, one it does not know a warning. Without -o the .tfm goes to standard\n"
    "output, with absolute paths; with -o inside DIR its paths are bare names.\n";

static int cmd_import(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_import, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o")) {
            if (i + 1 >= argc) return usage_error("import: `-o` needs a file name%s", "");
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            return usage_error("import: unknown option `%s`", argv[i]);
        } else if (!dir) {
            dir = argv[i];
        } else {
            return usage_error("import: one folder at a time (`%s`?)", argv[i]);
        }
    }
    if (!dir) return usage_error("import: give a Hugging Face model folder%s", "");
    TfmcContext *ctx = tfmc_context_new(NULL);
    if (!ctx) return EXIT_INPUT;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    TfmcStatus st = mem ? tfmc_import(ctx, dir, out, mem) : TFMC_ERR_NOMEM;
    if (mem) fclose(mem);
    tfmc_print_diagnostics(ctx, stderr); /* warnings too */
    int status = 0;
    if (st != TFMC_OK) {
        if (tfmc_diagnostic_count(ctx) == 0) print_errors(ctx, st);
        status = EXIT_INPUT;
    } else if (out) {
        FILE *fp = fopen(out, "w");
        if (!fp || fwrite(text, 1, len, fp) != len || fclose(fp) != 0) {
            fprintf(stderr, "tfmc: import: cannot write %s: %s\n", out, strerror(errno));
            status = EXIT_INPUT;
        }
    } else {
        fwrite(text, 1, len, stdout);
    }
    free(text);
    tfmc_context_free(ctx);
    return status;
}

static int cmd_help(int argc, char **argv)
{
    if (argc == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(argv[0], "eval")) fputs(usage_eval, stdout);
    else if (!strcmp(argv[0], "run")) fputs(usage_run, stdout);
    else if (!strcmp(argv[0], "verify")) fputs(usage_verify, stdout);
    else if (!strcmp(argv[0], "check")) fputs(usage_check, stdout);
    else if (!strcmp(argv[0], "config")) fputs(usage_config, stdout);
    else if (!strcmp(argv[0], "compile")) fputs(usage_compile, stdout);
    else if (!strcmp(argv[0], "tokenize")) fputs(usage_tokenize, stdout);
    else if (!strcmp(argv[0], "import")) fputs(usage_import, stdout);
    else return usage_error("help: unknown command `%s`", argv[0]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("tfmc %s\n", tfmc_version());
        return 0;
    }
    if (!strcmp(cmd, "eval")) return cmd_sequences(argc - 2, argv + 2, false);
    if (!strcmp(cmd, "run")) return cmd_sequences(argc - 2, argv + 2, true);
    if (!strcmp(cmd, "verify")) return cmd_verify(argc - 2, argv + 2);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 2, argv + 2);
    if (!strcmp(cmd, "config")) return cmd_config(argc - 2, argv + 2);
    if (!strcmp(cmd, "help")) return cmd_help(argc - 2, argv + 2);
    if (!strcmp(cmd, "compile")) return cmd_compile(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "import")) return cmd_import(argc - 2, argv + 2);
    if (cmd[0] == '-') return cmd_compile(argc - 1, argv + 1); /* options before FILE */
    /* `tfmc FILE ...` compiles, when FILE is not a command name */
    if (strchr(cmd, '.') || strchr(cmd, '/') || access(cmd, F_OK) == 0) return cmd_compile(argc - 1, argv + 1);
    return usage_error("unknown command `%s`", cmd);
}
