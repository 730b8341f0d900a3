/* model_decl.h: what the two halves of model declarations share: the declaration being built
 * (model_decl.c checks statements and options) and its weights (model_weights.c). */
#ifndef TFMC_MODEL_DECL_H
#define TFMC_MODEL_DECL_H

#include "lower.h"

typedef enum Scheme { SCHEME_TFMC, SCHEME_GPT2, SCHEME_LLAMA, SCHEME_NEOX } Scheme;

typedef struct Decl {
    Arena *a;
    const SrcFile *file;
    DiagList *diags;
    int errors;
    const ModelDecl *decl;
    Model *m;
    int vocab, max_len, dim;
    SrcLoc vocab_loc, dim_loc;
    const char *weights;
    SrcLoc weights_loc;
    Scheme scheme;
    bool has_init;
    uint64_t seed;
    bool tied;
    bool check_only;  /* statements, options and the weight file's header: no weights allocated or read */
    bool counting;    /* weights are counted, not allocated (until the memory is known to fit) */
    bool from_file;   /* weights are allocated as the file is read (or used in place), not before */
    double weight_bytes;
    size_t max_memory; /* 0: the machine's */
} Decl;

/* What a not yet allocated weight points to: it says that the weight exists (a bias, a gate);
 * nothing may read or write it. Weights read from a file keep it until they are read. */
extern float decl_unallocated[1];

#define ERR(D, loc, ...) ((D)->errors++, diag_error((D)->diags, (D)->file, (loc), __VA_ARGS__))

/* Seeded weights, and weights from the declaration's .safetensors file (false on an error). With
 * D->counting, decl_load_weights checks the file's header against the declaration instead: every
 * missing, unexpected or mis-shaped tensor is reported, and no weight data is read. */
void decl_random_weights(Decl *D);
bool decl_load_weights(Decl *D);

#endif
