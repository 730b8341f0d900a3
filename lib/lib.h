/* lib.h: what the public API's files share: the context and program handles. */
#ifndef TFMC_LIB_H
#define TFMC_LIB_H

#include "backend.h"
#include "llvm/jit.h"
#include "lower.h"
#include "passes.h"

struct TfmcProgram {
    TfmcProgramKind kind;
    const char *name;
    const SrcFile *file;
    RaspProgram *rasp;
    const ModelDecl *model;
    Model *compiled; /* the transformer, built on first use */
    Graph *graph;
    KProgram *kernels; /* the graph lowered to kernel calls, which every backend runs or writes */
    IBackend *interp;    /* the interpreter backend's view of them */
    JitProgram *jit;     /* the LLVM backend's code (compiled when first run through it), */
    JitRunFn jit_run;    /* its entry */
    const JitApi *jit_api;
    const char *tokenizer; /* a model's `tokenizer` statement (resolved), or NULL */
    const int *eos;        /* its `eos` ids */
    int neos;
};

struct TfmcContext {
    TfmcAllocator alloc;
    Arena arena;      /* its on_oom is the innermost running API call's recovery point */
    DiagList diags;
    TfmcProgram **programs;
    int nprograms, cap;
    PassOptions passes;
    size_t max_memory; /* what a compiled model may take; 0: the machine's memory */
    bool llvm;         /* run compiled programs through the LLVM JIT (tfmc_set_backend) */
};

/* A tokenizer.json for generated C (tokenize.c): checked by loading it (a bad file is reported
 * as tfmc_tokenizer_load reports it), its bytes in the context's arena, and what parsing them takes
 * from a fixed buffer (support/bump.c, the allocator the generated code parses it with). */
TfmcStatus tokenizer_embed(TfmcContext *ctx, const char *path, const char **json, size_t *len, size_t *load_bytes);

/* The program's JIT code, compiled by the LLVM backend the first time (compile.c). */
TfmcStatus lib_ensure_jit(TfmcContext *ctx, const TfmcProgram *p);
/* The LLVM backend's module (jit_load.c), opened on first use; NULL with the reason in *error. */
const JitApi *lib_jit_api(const char **error);

/* Every public entry point that can allocate runs its body through GUARDED: an allocation
 * failure anywhere below longjmps to this call's own recovery point (never to one of an earlier,
 * finished call), which restores the caller's (a public call made by another one) and returns
 * `failed`. What was allocated before the failure stays in the context's arena, so the context
 * stays usable and frees cleanly. Heap memory a body holds across allocations must be released by
 * a recovery point of its own that frees it and jumps on to the outer one. */
#define GUARDED(ctx, type, failed, call)           \
    do {                                          \
        jmp_buf guard_;                           \
        jmp_buf *outer_ = (ctx)->arena.on_oom;    \
        (ctx)->arena.on_oom = &guard_;            \
        if (setjmp(guard_)) {                     \
            (ctx)->arena.on_oom = outer_;         \
            return failed;                        \
        }                                         \
        type result_ = call;                      \
        (ctx)->arena.on_oom = outer_;             \
        return result_;                           \
    } while (0)

#endif
