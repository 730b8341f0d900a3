/* cgen.h: what the portable C backend's files share. */
#ifndef TFMC_CGEN_H
#define TFMC_CGEN_H

#include <string.h>

#include "backends.h"

typedef struct Cgen {
    const Graph *g;
    const Model *m;
    const CgenOptions *o;
    FILE *out; /* the code */
    FILE *wf;  /* the weights (the same file unless separate) */
    const char *P;
    /* weight arrays already written, by address (shared blocks reuse them) */
    const float **emitted;
    const char **emitted_names;
    int nemitted, cap_emitted;
} Cgen;

void cgen_c_string(FILE *out, const char *s);
/* A C identifier fragment for a tensor name: b0.h1.q -> b0_h1_q. */
const char *cgen_ident(const char *name, char *buf, size_t cap);
/* A weight array as exact hexadecimal floats (zeros as 0). */
void cgen_weights_array(Cgen *c, const char *name, const float *w, size_t n, const char *comment);
/* A compressed-rows weight matrix: NAME_vals, NAME_rowptr, NAME_colidx. */
void cgen_sparse_arrays(Cgen *c, const char *name, const GraphOp *op, const char *comment);
/* The stdin loop of a generated main(): one sequence per line, split at whitespace, given to
 * `call` (which sees words, count, lineno); lines too long for the buffer are bad lines. With
 * check_len, a line of more than MAX_LEN tokens is reported here. Ends main(). */
void cgen_emit_line_reader(Cgen *c, const char *call, bool check_len);
/* The upper-case macro prefix: reverse -> REVERSE. */
void cgen_upper(const char *p, char *buf, size_t cap);
/* The runtime's enum name of an activation (TFMCRT_GELU ...). */
const char *cgen_act_name(Activation a);
/* The C backend of declared models: prefill, decode with a KV cache, reset, main(). */
void cgen_emit_model(const Graph *g, const CgenOptions *o, FILE *out);

#endif
