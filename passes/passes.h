/* passes.h: the optimisation passes and the pass manager. Model passes rewrite the model IR
 * before the graph is built; graph passes rewrite the graph. Each pass is one file with one entry
 * point and a header comment saying what it does and what it preserves. */
#ifndef TFMC_PASSES_H
#define TFMC_PASSES_H

#include "ir.h"

typedef struct PassOptions {
    int level;                 /* -O0, -O1, -O2 */
    const char *only;          /* --passes=a,b,c: exactly these, in table order (NULL: by level) */
    const char *disabled;      /* --no-PASS, comma-separated */
    FILE *report;              /* --report: a table after each pass, or NULL */
    /* magnitude pruning (opt-in) */
    double prune_threshold;    /* |w| below it become 0 (0: off) */
    double prune_sparsity;     /* or: this fraction of each matrix's weights (0: off) */
    bool prune_structured;     /* whole heads / neurons by norm, with prune_sparsity as the fraction */
    /* low-rank factorisation (opt-in) */
    int lowrank_rank;          /* a fixed rank, or */
    double lowrank_energy;     /* the smallest rank keeping this fraction of sum(s^2), or */
    double lowrank_error;      /* the smallest rank whose relative Frobenius error is below it */
    /* weight-only quantisation (opt-in) */
    int quantize_bits;         /* 8: int8 (0: off) */
    int quantize_group;        /* inputs per scale; 0: one scale per row */
} PassOptions;

typedef struct PassContext {
    Arena *arena;
    DiagList *diags;
    const PassOptions *opts;
    FILE *log; /* what passes report about themselves (ranks, errors), or NULL */
    GraphRunner run; /* runs a graph (the interpreter backend, given by the library), or NULL */
    void *run_ud;
} PassContext;

typedef bool (*ModelPass)(PassContext *pc, Model *m);
typedef bool (*GraphPass)(PassContext *pc, Graph *g);

typedef struct PassInfo {
    const char *name;
    int level;          /* on from this -O level; 99: only when asked for */
    ModelPass model;    /* one of the two */
    GraphPass graph;
    const char *what;
} PassInfo;

extern const PassInfo pass_table[];
extern const int pass_count;

/* Is pass `p` on under these options? */
bool pass_enabled(const PassInfo *p, const PassOptions *o);
/* Check --passes / --no-PASS names; false with a diagnostic naming the unknown one. */
bool passes_check_names(const PassOptions *o, DiagList *diags);
/* Run the model passes, build the graph, run the graph passes; NULL on failure. */
Graph *passes_compile(PassContext *pc, Model *m);

/* The passes (one file each). */
bool pass_prune(PassContext *pc, Model *m);
bool pass_fold(PassContext *pc, Model *m);
bool pass_magnitude(PassContext *pc, Model *m);
bool pass_fuse_attention(PassContext *pc, Graph *g);
bool pass_fuse_qkv(PassContext *pc, Graph *g);
bool pass_lowrank(PassContext *pc, Graph *g);
bool pass_quantize(PassContext *pc, Graph *g);
bool pass_sparse(PassContext *pc, Graph *g);
bool pass_memplan(PassContext *pc, Graph *g);

#endif
