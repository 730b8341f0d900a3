/* jit.h: the LLVM ORC JIT backend's interface. The backend is a module of its own
 * (tfmc_llvm.so, linked against libLLVM), which the library opens with dlopen only when a program
 * is to run through it, so that nothing else pays libLLVM's load (about 13 ms). The module calls
 * nothing of the library: everything it needs comes in a JitInput, as data and addresses. */
#ifndef TFMC_JIT_H
#define TFMC_JIT_H

#include "backend.h"

#define TFMC_JIT_VERSION 3

typedef struct JitInput {
    const KProgram *k;
    const KernelInfo *kernels;            /* [K_COUNT]: kernel_info (signatures, addresses) */
    const TfmcrtAttention *const *attn;   /* per op: its attention options (or NULL) */
    const TfmcrtFfn *const *experts;      /* per op: its expert table (or NULL) */
    int opt_level;                        /* LLVM's pipeline: 0..3 */
    /* a declared model's entry points (k->entries) are compiled too, over these: */
    int vocab, max_len;
    size_t out_offset;                    /* the logits' tensor in the arena */
    bool cached;                          /* causal throughout: decode uses the KV cache */
    /* a RASP program's forward entry decodes each position: */
    int bos, dim, nout, out_dim;
    const int *value_dims;                /* categorical: the residual dimension of each value */
    bool categorical;
} JitInput;

typedef struct JitProgram JitProgram;

/* The transformer on ids[0..n) at positions pos0.., the head's calls on the last hn rows (hn <=
 * n): what ibackend_run computes, with the same kernels and the same sums. */
typedef void (*JitRunFn)(float *arena, const int *ids, size_t n, size_t pos0, size_t hn, const TfmcrtExec *ex);

typedef struct JitApi {
    int version; /* TFMC_JIT_VERSION */
    /* Compile a program; NULL with a message in err. Thread-safe: each program has an LLJIT of
     * its own, and the compiled function may run on any thread, several at once. */
    JitProgram *(*compile)(const JitInput *in, char *err, size_t cap);
    JitRunFn (*entry)(const JitProgram *p);
    double (*compile_seconds)(const JitProgram *p); /* IR, passes and machine code */
    /* An entry point by name (k->entries: NAME_init, NAME_prefill, ...; a RASP program's init,
     * forward and the sizes), with the generated C's signature and behaviour; NULL for one the
     * JIT does not compile (a RASP program's encode, value_name, snap: tables of text). */
    void *(*lookup)(const JitProgram *p, const char *entry);
    void (*free)(JitProgram *p);
} JitApi;

/* What the module exports: its one symbol. */
#define TFMC_JIT_SYMBOL "tfmc_llvm_api"

#endif
