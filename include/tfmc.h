/* tfmc.h: the public API of libtfmc, the Transformer Model Compiler.
 *
 * Everything the `tfmc` command does goes through these functions: load a .tfm
 * file or string (parse + check), pick a program in it, evaluate it on token
 * sequences with the reference interpreter, read the diagnostics. The library
 * never exits or aborts; every call that can fail returns a TfmcStatus and
 * leaves its diagnostics in the context.
 */
#ifndef TFMC_H
#define TFMC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum TfmcStatus {
    TFMC_OK = 0,
    TFMC_ERR_COMPILE,  /* the source has errors; see the diagnostics */
    TFMC_ERR_INPUT,    /* a bad input sequence (unknown token, too long, empty) */
    TFMC_ERR_IO,       /* a file could not be read or written */
    TFMC_ERR_USAGE,    /* a bad argument to an API call (e.g. no such program) */
    TFMC_ERR_NOMEM     /* the allocator failed */
} TfmcStatus;

/* All memory the library takes comes from this function, Lua style:
 * realloc(ud, ptr, size) with size 0 frees ptr and returns NULL. */
typedef struct TfmcAllocator {
    void *(*realloc)(void *ud, void *ptr, size_t size);
    void *ud;
} TfmcAllocator;

/* A scalar value of a RASP sequence. */
typedef enum TfmcValueKind {
    TFMC_UNDEF = 0, /* undefined (printed as `_`) */
    TFMC_BOOL,
    TFMC_INT,
    TFMC_FLOAT,
    TFMC_STR
} TfmcValueKind;

typedef struct TfmcValue {
    TfmcValueKind kind;
    union {
        bool b;
        int64_t i;
        double f;
        const char *s; /* owned by the context (interned) */
    } u;
} TfmcValue;

typedef struct TfmcContext TfmcContext;
typedef struct TfmcProgram TfmcProgram;

typedef enum TfmcProgramKind { TFMC_PROGRAM_RASP, TFMC_PROGRAM_MODEL } TfmcProgramKind;

/* One diagnostic: FILE:LINE:COL: error: MESSAGE (or warning: MESSAGE), with an optional hint. */
typedef struct TfmcDiagnostic {
    const char *file;
    int line, column;         /* 1-based; 0 when the error has no place */
    int end_line, end_column; /* the last character of the range, inclusive */
    const char *message;
    const char *hint;         /* NULL or a suggestion */
    bool warning;             /* a warning: it fails nothing */
} TfmcDiagnostic;

const char *tfmc_version(void);

/* A context owns everything loaded into it; NULL allocator = the C library. */
TfmcContext *tfmc_context_new(const TfmcAllocator *allocator);
void tfmc_context_free(TfmcContext *ctx);

/* Parse and check a .tfm file (or a string named `name` in diagnostics). All
 * independent errors are collected; the status is TFMC_ERR_COMPILE if any. */
TfmcStatus tfmc_load_file(TfmcContext *ctx, const char *path);
TfmcStatus tfmc_load_string(TfmcContext *ctx, const char *name, const char *text, size_t len);

size_t tfmc_diagnostic_count(const TfmcContext *ctx);
const TfmcDiagnostic *tfmc_diagnostic(const TfmcContext *ctx, size_t i);
/* Print every diagnostic caret-style: the location line, the source line, a caret. */
void tfmc_print_diagnostics(const TfmcContext *ctx, FILE *out);
/* Add a diagnostic with no source place (used by clients for their own errors). */
void tfmc_report(TfmcContext *ctx, const char *fmt, ...);

/* The programs and models of everything loaded, in source order. */
size_t tfmc_program_count(const TfmcContext *ctx);
const TfmcProgram *tfmc_program_at(const TfmcContext *ctx, size_t i);
/* Find NAME, or with NAME == NULL the only program of the file. Reports an error otherwise. */
TfmcStatus tfmc_find_program(TfmcContext *ctx, const char *name, const TfmcProgram **out);

const char *tfmc_program_name(const TfmcProgram *p);
TfmcProgramKind tfmc_program_kind(const TfmcProgram *p);
int tfmc_program_max_len(const TfmcProgram *p);

/* Read a line of whitespace-separated tokens into values of the program's
 * vocabulary. On a bad line writes a message (without a newline) to err. */
TfmcStatus tfmc_parse_tokens(const TfmcProgram *p, const char *line, TfmcValue *tokens,
                             size_t cap, size_t *n, char *err, size_t errcap);
/* Same, from already split words (the command line). */
TfmcStatus tfmc_parse_words(const TfmcProgram *p, char *const *words, size_t count,
                            TfmcValue *tokens, size_t cap, char *err, size_t errcap);
/* A compiled model's input: a line of whitespace-separated token ids (decimal, 0..vocab-1), at
 * most max_len and cap of them. On a bad line writes a message (without a newline) to err. */
TfmcStatus tfmc_parse_ids(const TfmcProgram *p, const char *line, int *ids, size_t cap, size_t *n, char *err,
                          size_t errcap);
/* Same, from already split words. */
TfmcStatus tfmc_parse_id_words(const TfmcProgram *p, char *const *words, size_t count, int *ids, size_t cap,
                               char *err, size_t errcap);

/* Run a RASP program in the reference interpreter: out[i] for each of the n positions. */
TfmcStatus tfmc_eval(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n,
                     TfmcValue *out);
/* Print every named SOp (and selector) of the program on this input, aligned in columns. */
TfmcStatus tfmc_eval_trace(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens,
                           size_t n, FILE *out);

/* Format one value as the command line prints it (`_` for undefined, %.9g floats). */
int tfmc_format_value(TfmcValue v, char *buf, size_t cap);
/* Write n values separated by single spaces, then a newline. */
void tfmc_print_values(FILE *out, const TfmcValue *v, size_t n);

/* ------------------------------------------------- compiling to transformers */

typedef struct TfmcModelInfo {
    int residual;       /* residual stream width */
    int layers;         /* attention + MLP pairs, as Tracr counts them */
    int blocks;         /* non-empty attention or MLP blocks */
    int heads;
    long params;        /* every weight, zeros included */
    long nonzeros;
    size_t arena_bytes; /* what the generated code's arena needs */
    size_t weight_bytes; /* declared models: what the weights take in memory (f32) */
} TfmcModelInfo;

/* How programs are optimised: -O level, pass selection, the opt-in lossy passes, --report. */
typedef struct TfmcOptions {
    int opt_level;            /* 0, 1 (the default) or 2 */
    const char *passes;       /* exactly these passes, comma-separated (NULL: by level) */
    const char *disabled;     /* passes to skip, comma-separated */
    FILE *report;             /* a table after each pass, or NULL */
    double prune_threshold;   /* magnitude pruning: |w| below it become 0 */
    double prune_sparsity;    /* or this fraction of each matrix */
    bool prune_structured;    /* whole heads / neurons by norm */
    int lowrank_rank;         /* low-rank: a fixed rank, */
    double lowrank_energy;    /* or the energy to keep, */
    double lowrank_error;     /* or the relative error allowed */
    size_t max_memory;        /* bytes a compiled model may take (weights, arena, KV caches); 0: the
                                 machine's memory. More is a compile error stating each part. */
    int quantize_bits;        /* weight-only quantisation of declared models: 8 (int8) or 0 (off) */
    int quantize_group;       /* inputs per scale (int8:group=G); 0: one scale per output row */
} TfmcOptions;

/* Options for the programs compiled after this call (unknown pass names are reported then). */
TfmcStatus tfmc_set_options(TfmcContext *ctx, const TfmcOptions *opts);

/* The backend that runs compiled programs in-process (tfmc_run, tfmc_verify, sessions) from now
 * on: "interp" (the default: the graph interpreter over the runtime's kernels) or "llvm" (the ORC
 * JIT, when this build has it: tfmc_backend_available). TFMC_ERR_USAGE, with a diagnostic, for
 * an unknown or absent one. */
TfmcStatus tfmc_set_backend(TfmcContext *ctx, const char *backend);
/* Whether this build (and this machine: the JIT's module loads) has the backend. */
bool tfmc_backend_available(const char *backend);

/* A compiled program's entry points (the generated C's NAME_init, NAME_prefill, ...: names and
 * types are the program's entry-point data), called through libffi with call interfaces built at
 * run time, so that a caller needs no prototype for them. From a shared object built from the
 * program's generated C (`tfmc FILE -o m.c`, `cc -shared -fPIC m.c $(tfmc config --cflags --libs)
 * -o m.so`), or, for a declared model, JIT-compiled by the llvm backend: the same entries with the
 * same behaviour either way. They live as long as the context; tfmc_entries_free closes the
 * shared object. */
typedef struct TfmcEntries TfmcEntries;
TfmcStatus tfmc_entries_open(TfmcContext *ctx, const TfmcProgram *p, const char *shared_object, TfmcEntries **out);
TfmcStatus tfmc_entries_jit(TfmcContext *ctx, const TfmcProgram *p, TfmcEntries **out);
int tfmc_entries_count(const TfmcEntries *e);
const char *tfmc_entries_name(const TfmcEntries *e, int i);  /* "init", "prefill", ... */
void *tfmc_entries_address(const TfmcEntries *e, const char *name);
/* Call entry `name`: args[i] points to the i-th argument's value (as for ffi_call), result to
 * storage of the result's type (NULL for void). TFMC_ERR_USAGE for an unknown name. */
TfmcStatus tfmc_entries_call(TfmcEntries *e, const char *name, void *result, void **args);
void tfmc_entries_free(TfmcEntries *e);

/* Compile program p to a transformer (RASP programs: Tracr's construction), then run the passes.
 * The result is kept on the program; later calls return at once. Errors go to the diagnostics. */
TfmcStatus tfmc_compile(TfmcContext *ctx, const TfmcProgram *p);
TfmcStatus tfmc_model_info(TfmcContext *ctx, const TfmcProgram *p, TfmcModelInfo *info);

/* Run the compiled transformer in-process; the same output convention as tfmc_eval. */
TfmcStatus tfmc_run(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, TfmcValue *out);

/* The model IR, the graph IR, or the graph lowered to runtime kernel calls (what every backend
 * runs or writes). */
typedef enum TfmcEmitKind { TFMC_EMIT_MODEL, TFMC_EMIT_GRAPH, TFMC_EMIT_KERNELS } TfmcEmitKind;
/* Print the model IR or the graph IR as text. */
TfmcStatus tfmc_emit(TfmcContext *ctx, const TfmcProgram *p, TfmcEmitKind kind, FILE *out);

typedef struct TfmcCOptions {
    bool main;                /* add a main() with the command line's I/O */
    const char *options;      /* recorded in the header comment */
    FILE *weights;            /* NULL: weights in the same file; else in this second file */
    const char *weights_name;
    FILE *header;             /* not NULL: the header (sizes, types, prototypes) goes here too */
    const char *code_name;    /* the .c file's name, for the header's comment */
    const char *target;       /* NULL: the portable C backend (calls libtfmcrt); "avx512", "avx2",
                               * "neon", "baseline" or "native" (this machine's best): the SIMD
                               * backend's one self-contained file (docs/compiling.md) */
    long byte_arrays;         /* weight arrays of at least this many floats are written as byte
                               * strings (fast to compile); 0: the default, 1024; -1: never (all
                               * hexadecimal floats) */
    const char *tokenizer;    /* for a model: a tokenizer.json the file carries as data, with its
                               * NAME_encode and NAME_decode, so that its main (and any program that
                               * links it) reads and writes text; NULL: with main the model's
                               * `tokenizer` statement, if any, without main none; "": none
                               * (docs/models.md) */
} TfmcCOptions;
/* Write the C99 code of the compiled program (and with opts->header its header: the .c stays
 * self-contained, the header is for the other files of a program that call it). An unknown
 * target is TFMC_ERR_USAGE. */
TfmcStatus tfmc_emit_c(TfmcContext *ctx, const TfmcProgram *p, const TfmcCOptions *opts, FILE *out);

/* Write the compiled weights as a .safetensors file, with metadata naming every residual
 * dimension, the vocabulary and the output decoding. */
TfmcStatus tfmc_write_safetensors(TfmcContext *ctx, const TfmcProgram *p, const char *path);

typedef struct TfmcVerifyOptions {
    int max_len;    /* check every sequence of length 1..max_len (0: the program's max_len) */
    long samples;   /* when there are more than this many, check this many random ones */
    uint64_t seed;
} TfmcVerifyOptions;
typedef struct TfmcVerifyResult {
    long checked;
    bool exhaustive;
    bool equal;     /* no counterexample */
} TfmcVerifyResult;
/* Compare the compiled transformer with the reference interpreter; the first counterexample,
 * with its trace, is written to report. Categorical outputs must be equal, numerical ones
 * within 1e-4 x max(1, |value|). */
TfmcStatus tfmc_verify(TfmcContext *ctx, const TfmcProgram *p, const TfmcVerifyOptions *opts,
                       TfmcVerifyResult *result, FILE *report);

/* ------------------------------------------------------ declared models */

/* A running model: its KV caches and position, for prefill then decode. */
typedef struct TfmcSession TfmcSession;

int tfmc_model_vocab(const TfmcProgram *p); /* token ids are 0..vocab-1 */
/* The model's `tokenizer "FILE";` (resolved against the .tfm's folder), or NULL. */
const char *tfmc_model_tokenizer(const TfmcProgram *p);
/* The model's `eos ID, ...;`: the ids that end generation (*ids may be NULL when there are none). */
size_t tfmc_model_eos(const TfmcProgram *p, const int **ids);

/* Sampling the next token from logits: greedy when temperature is 0 (the default); else softmax of
 * logits / temperature, cut to the top_k most likely (0: all) and to the smallest set whose
 * probability reaches top_p (1: all), drawn with the generator in *state (seed it with
 * tfmc_sampler_seed). Deterministic: the same logits, options and state give the same id. */
typedef struct TfmcSampler {
    float temperature;
    int top_k;
    float top_p;
} TfmcSampler;
uint64_t tfmc_sampler_seed(uint64_t seed);
/* work holds n ints (the candidates); returns the id, or -1 when n is 0 or an option is out of range. */
int tfmc_sample(const float *logits, size_t n, const TfmcSampler *s, uint64_t *state, int *work);
TfmcStatus tfmc_session_new(TfmcContext *ctx, const TfmcProgram *p, TfmcSession **out);
/* A session on nthreads threads (the calling one and nthreads - 1 of a pool of the session's own;
 * 0: the machine's cores; 1: as tfmc_session_new, no thread made). Threads never change a
 * result: the logits are the same bit for bit at every count. */
TfmcStatus tfmc_session_new_threads(TfmcContext *ctx, const TfmcProgram *p, int nthreads, TfmcSession **out);
/* Run prefill (several tokens, compute bound) on prefill_threads and decode (one token, memory
 * bound) on decode_threads; 0: the machine's cores. TFMC_ERR_NOMEM when threads cannot be made
 * (the session then keeps its previous threads). */
TfmcStatus tfmc_session_set_threads(TfmcSession *s, int prefill_threads, int decode_threads);
/* The least work (multiply-adds) a kernel gives a thread of its own; 0: the runtime's default.
 * Tests set 1, so that even a tiny model's kernels are cut into as many parts as threads. */
void tfmc_session_set_task_grain(TfmcSession *s, size_t grain);
void tfmc_session_free(TfmcSession *s);
/* Time every kernel call of the session's prefills and decodes from now on (on: a double per
 * call, from the context's allocator; off: forget them), and print the time so far by kernel
 * and by layer. The timing adds a clock read per call; the results are unchanged. */
TfmcStatus tfmc_session_profile(TfmcSession *s, bool on);
void tfmc_session_print_profile(const TfmcSession *s, FILE *out);
void tfmc_session_reset(TfmcSession *s);
/* Feed n tokens at the next positions; logits (when not NULL) receives [n][vocab]. With NULL the
 * final norm and the logits are not computed at all. */
TfmcStatus tfmc_session_prefill(TfmcSession *s, const int *ids, size_t n, float *logits);
/* The same, but logits receives [vocab]: those of the last position only, the only ones computed
 * (a prompt before generation: the output head then costs one position, not n). */
TfmcStatus tfmc_session_prefill_last(TfmcSession *s, const int *ids, size_t n, float *logits);
/* Feed one token; logits receives [vocab]. */
TfmcStatus tfmc_session_decode(TfmcSession *s, int id, float *logits);
/* The index of the largest value (the first of equal ones). */
int tfmc_argmax(const float *v, size_t n);


/* ----------------------------------------------------------- import */

/* Write to out a .tfm that loads the Hugging Face model folder dir unchanged (config.json,
 * generation_config.json, model.safetensors or model.safetensors.index.json, tokenizer.json).
 * Paths in it are bare names when out_path (where the .tfm will be) is inside dir, absolute
 * otherwise (out_path NULL: standard output). A config field tfmc cannot honour is an error
 * naming it (TFMC_ERR_INPUT), one it does not know a warning (docs/import.md). */
TfmcStatus tfmc_import(TfmcContext *ctx, const char *dir, const char *out_path, FILE *out);

/* ----------------------------------------------------------- tokenizers */

/* A Hugging Face tokenizer.json: BPE, byte-level (GPT-2, Llama 3, Qwen) or SentencePiece-style
 * with byte fallback (Llama 2, Gemma), with its added and special tokens (docs/tokenizers.md).
 * Immutable once loaded: one tokenizer may be used from several threads at once. */
typedef struct TfmcTokenizer TfmcTokenizer;

/* Load a tokenizer.json; a bad file is TFMC_ERR_IO or TFMC_ERR_INPUT with a diagnostic in the
 * context naming its line and column. The tokenizer takes its memory from the context's
 * allocator, but does not belong to the context: it lives until tfmc_tokenizer_free. */
TfmcStatus tfmc_tokenizer_load(TfmcContext *ctx, const char *path, TfmcTokenizer **out);
TfmcStatus tfmc_tokenizer_load_string(TfmcContext *ctx, const char *name, const char *json, size_t len,
                                      TfmcTokenizer **out);
void tfmc_tokenizer_free(TfmcTokenizer *t);
int tfmc_tokenizer_vocab(const TfmcTokenizer *t);      /* ids are 0..vocab-1 */
size_t tfmc_tokenizer_bytes(const TfmcTokenizer *t);   /* the memory it holds */
/* The id of a token written as the file writes it ("<|endoftext|>", "<s>", "Ġthe"), or -1. */
int tfmc_tokenizer_find(const TfmcTokenizer *t, const char *token);
/* The text of a token as decoding gives it (its bytes, not always valid UTF-8 alone); NULL for an id
 * outside the vocabulary. */
const char *tfmc_tokenizer_piece(const TfmcTokenizer *t, int id, size_t *len);
bool tfmc_tokenizer_is_special(const TfmcTokenizer *t, int id);

enum {
    TFMC_TOKENIZE_ADD_SPECIAL = 1, /* encode: add the post-processor's tokens (Llama's <s>, Gemma's <bos>) */
    TFMC_TOKENIZE_PLAIN = 2,       /* encode: special tokens written in the text are text, not tokens */
    TFMC_TOKENIZE_SKIP_SPECIAL = 4 /* decode: leave special tokens out */
};

/* Encode UTF-8 text (TFMC_ERR_INPUT, naming the byte, when it is not valid UTF-8). *n receives
 * the number of ids; only the first `cap` are written, so a call with cap 0 asks for the count.
 * At most tfmc_tokenizer_max_ids(t, len) ids come from len bytes. */
TfmcStatus tfmc_tokenizer_encode(const TfmcTokenizer *t, const char *text, size_t len, unsigned flags, int *ids,
                                 size_t cap, size_t *n);
size_t tfmc_tokenizer_max_ids(const TfmcTokenizer *t, size_t len);
/* Decode ids into text (TFMC_ERR_INPUT for an id outside the vocabulary). Bytes that do not form
 * UTF-8 become U+FFFD. *len receives the length; at most cap bytes are written, NUL-terminated
 * when there is room. */
TfmcStatus tfmc_tokenizer_decode(const TfmcTokenizer *t, const int *ids, size_t n, unsigned flags, char *out,
                                 size_t cap, size_t *len);

/* Streaming decode, one id at a time as a model generates them: each push gives the text that is
 * complete, never part of a UTF-8 character (those bytes wait for the next token). The
 * concatenated pushes and the final flush equal tfmc_tokenizer_decode of all the ids. */
typedef struct TfmcTokenStream {
    const TfmcTokenizer *tokenizer;
    unsigned flags;
    unsigned char pending[4]; /* the start of a character that is not complete yet */
    int npending;
    int strip; /* leading spaces the decoder still removes */
} TfmcTokenStream;
void tfmc_tokenizer_stream_init(TfmcTokenStream *s, const TfmcTokenizer *t, unsigned flags);
/* out must hold tfmc_tokenizer_stream_bytes(t) bytes; *len receives the text's length (NUL-terminated). */
TfmcStatus tfmc_tokenizer_stream_push(TfmcTokenStream *s, int id, char *out, size_t *len);
void tfmc_tokenizer_stream_flush(TfmcTokenStream *s, char *out, size_t *len);
size_t tfmc_tokenizer_stream_bytes(const TfmcTokenizer *t);

#ifdef __cplusplus
}
#endif
#endif
