/* backend.h: the backend interface. A planned graph is lowered once (lower.c) to a kernel
 * program: the runtime kernel calls that compute it, as data (the kernel, its typed arguments:
 * tensors by arena offset, constants by identity, sizes, options), and the entry points of a
 * compiled model (names, argument types). Every backend consumes that lowering: the interpreter
 * (interp/) calls the kernels in-process, the C backend (c/) writes the same calls as C, and the
 * SIMD and JIT backends are to do the same. No backend looks at graph ops itself. */
#ifndef TFMC_BACKEND_H
#define TFMC_BACKEND_H

#include "ir.h"
#include "tfmcrt.h"

/* The runtime's kernels a program calls, with their C names and signatures, one character per
 * parameter:
 *   e const TfmcrtExec *   o float * (written)   i const float * (read)   w const float * (weights)
 *   p const int *          z size_t              k int                    f float
 *   a const TfmcrtAttention *                    x const TfmcrtFfn *
 *   q const int8_t * (int8 weights)                                                              */
#define KERNELS(X)                                                     \
    X(EMBED, tfmcrt_embed, "opzzwwz")                                \
    X(EMBED_CSR, tfmcrt_embed_csr, "opzzzppwppw")                    \
    X(LINEAR, tfmcrt_linear_ex, "eoizwwzz")                          \
    X(LINEAR_CSR, tfmcrt_linear_csr_ex, "eoizppwwzz")                \
    X(LINEAR_Q8, tfmcrt_linear_q8_ex, "eoizqwwzzz")                  \
    X(LINEAR_CSR_ACC, tfmcrt_linear_csr_acc_ex, "eoiizppwwzz")       \
    X(COPY, tfmcrt_copy, "oiz")                                      \
    X(SCALE, tfmcrt_scale, "ozf")                                    \
    X(ACT, tfmcrt_act_ex, "eozk")                                    \
    X(ADD, tfmcrt_add_ex, "eoiiz")                                   \
    X(SCORES, tfmcrt_scores, "oiizzfk")                              \
    X(SOFTMAX_ROWS, tfmcrt_softmax_rows, "ozk")                      \
    X(MIX, tfmcrt_mix, "oiizz")                                      \
    X(ATTENTION, tfmcrt_attention, "oiiizzzfk")                      \
    X(NORM, tfmcrt_norm_ex, "eoizzkffww")                            \
    X(HEAD_NORM, tfmcrt_head_norm_ex, "eozzzkfw")                    \
    X(GLU, tfmcrt_glu_ex, "eoiizk")                                  \
    X(ROPE, tfmcrt_rope_ex, "eozzzzf")                               \
    X(ROPE_FREQ, tfmcrt_rope_freq_ex, "eozzzzzw")                    \
    X(KV_STORE, tfmcrt_kv_store_ex, "eooiizzz")                      \
    X(SLICE, tfmcrt_slice, "oizzzz")                                 \
    X(MHA_SCORES, tfmcrt_mha_scores_ex, "eoiizzza")                  \
    X(MHA_SOFTMAX, tfmcrt_mha_softmax_ex, "eoizzza")                 \
    X(MHA_MIX, tfmcrt_mha_mix_ex, "eoiizzza")                        \
    X(ATTEND, tfmcrt_attend_ex, "eoiiizzao")                         \
    X(MOE, tfmcrt_moe_ex, "eoizzwxkkzko")

typedef enum Kernel {
#define KERNEL_ENUM(e, fn, sig) K_##e,
    KERNELS(KERNEL_ENUM)
#undef KERNEL_ENUM
    K_COUNT
} Kernel;

/* A kernel's address, for backends that call it in-process through a type of their own (the JIT:
 * its LLVM function type comes from the signature). */
typedef void (*KernelFn)(void);

typedef struct KernelInfo {
    const char *name;      /* the runtime's function */
    const char *signature; /* as above */
    KernelFn fn;           /* its address in this process */
} KernelInfo;

extern const KernelInfo kernel_info[K_COUNT];

typedef enum KArgKind {
    KA_EXEC,      /* the call's execution context (threads) */
    KA_TENSOR,    /* a tensor of the arena (a head call: from the first row it computes) */
    KA_CACHE,     /* a cache: every position */
    KA_SCRATCH,   /* the kernels' scratch */
    KA_CONST,     /* a constant's values (dense data, or a compressed one's vals); NULL for -1 */
    KA_ROWPTR,    /* a compressed constant's row starts */
    KA_COLIDX,    /* and column indices */
    KA_Q8,        /* an int8 constant's values */
    KA_Q8_SCALE,  /* and its scales */
    KA_IDS,       /* the token ids of the call */
    KA_N,         /* the positions the call runs on (a head call: the rows asked for) */
    KA_POS0,      /* the position of the first */
    KA_COUNT,     /* value * N^power: element counts */
    KA_SIZE,      /* a size */
    KA_INT,       /* an int (flags) */
    KA_ENUM,      /* an int the runtime names (name: TFMCRT_GELU) */
    KA_FLOAT,
    KA_ATTENTION, /* the attention options of op `index` */
    KA_EXPERTS    /* the experts of op `index` (its constants, six each after the router) */
} KArgKind;

typedef struct KArg {
    KArgKind kind;
    int index;        /* tensor, constant or op */
    long value;       /* KA_COUNT, KA_SIZE, KA_INT, KA_ENUM */
    int power;        /* KA_COUNT: 1 or 2 */
    float f;          /* KA_FLOAT */
    const char *name; /* KA_ENUM */
} KArg;

enum { KCALL_MAX_ARGS = 12 };

typedef struct KCall {
    Kernel kernel;
    int op;           /* the graph op it computes (part of) */
    bool head;        /* runs on the head's rows only (a declared model's final norm and logits) */
    int nargs;
    KArg args[KCALL_MAX_ARGS];
} KCall;

/* C types of the entry points' parameters and results. */
typedef enum CType {
    CT_VOID, CT_INT, CT_FLOAT, CT_SIZE, CT_CTX, CT_MEMORY, CT_CONST_INTS, CT_FLOATS, CT_OUTS,
    CT_CONST_STRING, CT_EXEC
} CType;

enum { ENTRY_MAX_PARAMS = 4 };

/* An entry point of a compiled model: NAME_<name>(params) -> result. */
typedef struct EntryPoint {
    const char *name;
    CType result;
    int nparams;
    CType params[ENTRY_MAX_PARAMS];
    const char *param_names[ENTRY_MAX_PARAMS];
    const char *doc;
} EntryPoint;

typedef struct KProgram {
    const Graph *g;
    KCall *calls;
    int ncalls;
    const EntryPoint *entries;
    int nentries;
} KProgram;

/* Lower a planned graph (the last pass done) to its kernel program. */
KProgram *lower_graph(Arena *a, const Graph *g);
/* Check every call's arguments against its kernel's signature; the first problem to err. */
bool kprogram_check(const KProgram *k, char *err, size_t cap);
/* The C spelling of an entry-point type (`out_t` is the program's output element type). */
const char *ctype_c(CType t, const char *prefix, char *buf, size_t cap);
/* Print the kernel program (--emit=kernels). */
void kprogram_print(const KProgram *k, FILE *out);

/* ------------------------------------------------------ the interpreter backend */

typedef struct IBackend IBackend;
/* Resolve a program's constants and options for running in-process (bookkeeping in a). */
IBackend *ibackend_new(Arena *a, const KProgram *k);
/* Run it on n positions from pos0 (RASP: BOS included, pos0 0). Calls of the head run on the
 * last head_rows positions only (n: all; 0: none), the others on all n; rows are where a full
 * run puts them. The arena holds g->arena_floats floats; its caches keep earlier positions. On
 * ex's threads (NULL: this one), with the same results bit for bit whatever its thread count. */
void ibackend_run(const IBackend *ip, const int *ids, int n, int pos0, float *arena, int head_rows,
                  const TfmcrtExec *ex);
/* The same, adding each call's wall time to seconds[call] (the program's ncalls entries). */
void ibackend_run_timed(const IBackend *ip, const int *ids, int n, int pos0, float *arena, int head_rows,
                        const TfmcrtExec *ex, double *seconds);
/* The attention options and the expert table of op `op`, resolved for this process (the JIT calls
 * the kernels with these pointers as constants). */
const TfmcrtAttention *ibackend_attention(const IBackend *ip, int op);
const TfmcrtFfn *ibackend_experts(const IBackend *ip, int op);
/* A GraphRunner (ir.h) for the passes: lowers g the first time it sees it (its cache keeps the
 * last one) and runs it on every row, single-threaded. */
typedef struct IBackendCache {
    Arena *arena;
    const Graph *g;
    IBackend *ip;
} IBackendCache;
void ibackend_run_graph(void *cache, const Graph *g, const int *ids, int n, float *arena);

/* ------------------------------------------------------ the C backends */

/* A target of the SIMD backend: the architecture it compiles for (the C macro that names it), the
 * extensions its kernels are compiled with (GCC and clang spell them alike in a target attribute;
 * the CPU check tests each by __builtin_cpu_supports' name), and whether a register holds sixteen
 * floats (the runtime's wide kernels: TFMCRT_WIDE). */
typedef struct SimdTarget {
    const char *name;        /* avx512, avx2, neon, baseline */
    const char *arch;        /* the macro of its architecture: __x86_64__, __aarch64__ */
    const char *describe;    /* for comments and messages */
    const char *extensions;  /* comma-separated, as target("...") takes them; "" for the baseline */
    bool wide;
} SimdTarget;

/* The target called name (avx512, avx2, neon, baseline; native: this machine's best), or NULL. */
const SimdTarget *simd_target(const char *name);
/* The targets' names, for messages: "avx512, avx2, neon, baseline or native". */
extern const char simd_target_names[];

typedef struct CgenOptions {
    const char *prefix;       /* C identifier prefix: the program's name */
    const char *source_path;  /* for the header comment */
    uint64_t source_hash;     /* FNV-1a of the source text */
    const char *options;      /* the command line options, recorded in the header comment */
    bool main;                /* add a main() with the spec's I/O */
    FILE *weights;            /* when not NULL, weights go to this second file */
    const char *weights_name; /* its file name, for the comment */
    Arena *arena;             /* the emitter's own bookkeeping */
    const char *code_name;    /* the .c file's name, for the header's comment */
    const SimdTarget *target; /* NULL: portable C calling libtfmcrt; else the SIMD backend's one
                               * self-contained file for this target (cgen_simd.c) */
    long byte_arrays;         /* weight arrays of at least this many floats as byte strings; 0:
                               * the default (CGEN_BYTE_ARRAYS), -1: never */
    const char *tokenizer_json; /* a model's main with text: the tokenizer.json carried as data */
    size_t tokenizer_len;       /* its bytes */
    const char *tokenizer_name; /* its path, for the comment */
    size_t tokenizer_load_bytes; /* what parsing it takes from a fixed buffer (support/bump.c) */
} CgenOptions;

/* Write the C99 file of a kernel program (portable, or with o->target the SIMD backend's); false
 * when writing it (or the weights file) failed. */
bool cgen_emit(const KProgram *k, const CgenOptions *o, FILE *out);
/* Write its header (OUT.h): the sizes, types and entry-point prototypes; false on a write error. */
bool cgen_emit_header(const KProgram *k, const CgenOptions *o, FILE *out);

#endif
