/* backends.h: code generators that walk the graph IR. */
#ifndef TFMC_BACKENDS_H
#define TFMC_BACKENDS_H

#include "ir.h"

typedef struct CgenOptions {
    const char *prefix;       /* C identifier prefix: the program's name */
    const char *source_path;  /* for the header comment */
    uint64_t source_hash;     /* FNV-1a of the source text */
    const char *options;      /* the command line options, recorded in the header comment */
    bool main;                /* add a main() with the spec's I/O */
    FILE *weights;            /* when not NULL, weights go to this second file */
    const char *weights_name; /* its file name, for the comment */
    Arena *arena;             /* the emitter's own bookkeeping */
} CgenOptions;

/* Write the portable C99 file for graph g; false when writing it (or the weights file) failed. */
bool cgen_emit(const Graph *g, const CgenOptions *o, FILE *out);

#endif
