/* cgen.h: what the portable C backend's files share. */
#ifndef TFMC_CGEN_H
#define TFMC_CGEN_H

#include <string.h>

#include "backend.h"

typedef struct Cgen {
    const KProgram *k;
    const Graph *g;
    const Model *m; /* the program's input and output description (vocabulary, output values) */
    const CgenOptions *o;
    FILE *out; /* the code */
    FILE *wf;  /* the weights (the same file unless separate) */
    const char *P;
    const char **cname;   /* per constant: its C array's name (P_layers_0_attention_q_weight) */
    bool *unrolled;       /* per call: a sparse product written as straight-line code */
    bool *packed;         /* per constant: written in tfmcrt_pack's layout (the SIMD backend) */
    bool failed;          /* out of memory on the way */
    bool bytes_prelude;   /* the byte arrays' guards are written (in wf) */
} Cgen;

void cgen_c_string(FILE *out, const char *s);
/* A C identifier fragment for a tensor name: layers.0.attention.q -> layers_0_attention_q. */
const char *cgen_ident(const char *name, char *buf, size_t cap);
/* From this many floats on, a weight array is a byte string (CgenOptions.byte_arrays 0). */
#define CGEN_BYTE_ARRAYS 1024
/* bytes[0..n) as C string literals of 120 characters a line, each byte printable as itself (but ",
 * \\ and ?), else as the shortest octal escape the next byte allows; no NUL is added. */
void cgen_byte_string(FILE *f, const void *bytes, size_t n);
/* A weight array as exact hexadecimal floats (zeros as 0), or a byte string (the same bits). */
void cgen_weights_array(Cgen *c, const char *name, const float *w, size_t n, const char *comment);
/* The stdin loop of a generated main(): one sequence per line, split at whitespace, given to
 * `call` (which sees words, count, lineno); lines too long for the buffer are bad lines. With
 * check_len, a line of more than MAX_LEN tokens is reported here. Ends main(). */
void cgen_emit_line_reader(Cgen *c, const char *call, bool check_len);
/* The upper-case macro prefix: reverse -> REVERSE. */
void cgen_upper(const char *p, char *buf, size_t cap);
/* The prototype of entry point `name` (from the program's entry points), without a semicolon. */
void cgen_prototype(Cgen *c, const char *name);
/* Its documentation comment (NAME_ made the upper-case prefix). */
void cgen_entry_doc(Cgen *c, const char *name);
/* Its documentation comment, the declaration, and the definition's first line. */
void cgen_entry(Cgen *c, const char *name);
/* The constants (weights, compressed rows, attention options, expert tables) the calls use, each
 * once, and the straight-line sparse products. */
void cgen_emit_constants(Cgen *c);
/* static void P_run(P_ctx *ctx, const TfmcrtExec *ex, const int *ids, size_t n, size_t pos0,
 * size_t hn): the kernel calls in order. */
void cgen_emit_run(Cgen *c);
/* The includes and the runtime: `#include "tfmcrt.h"`, or (SIMD) the amalgamation's header and
 * CPU check, for the baseline. */
void cgen_prologue(Cgen *c);
/* SIMD: the target pragma and the amalgamation's kernels (nothing for the portable backend); and
 * the end of that region, after P_run. */
void cgen_target_begin(Cgen *c);
void cgen_target_end(Cgen *c);
/* How to build the file, for its opening comment. */
const char *cgen_build_line(Cgen *c);
/* The entry point P_cpu_missing, for the baseline. */
void cgen_emit_cpu_missing(Cgen *c);
/* The entry points P_context_bytes and P_arena_bytes. */
void cgen_emit_sizes(Cgen *c);
/* In P_init: fail with -3 when the CPU lacks an extension. */
void cgen_emit_init_check(Cgen *c);
/* In a generated main, after `if ((STATUS = P_init(...)) != 0) {`: the message for -3. */
void cgen_emit_init_failure(Cgen *c, const char *status);
/* The two kinds of program around P_run. */
void cgen_emit_rasp(Cgen *c);
void cgen_emit_model(Cgen *c);
/* The size macros and types callers use (in the .c and its header). */
void cgen_rasp_interface(Cgen *c);
void cgen_model_interface(Cgen *c);

#endif
