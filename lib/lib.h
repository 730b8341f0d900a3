/* lib.h: what the public API's files share: the context and program handles. */
#ifndef TFMC_LIB_H
#define TFMC_LIB_H

#include "backends.h"
#include "passes.h"

struct TfmcProgram {
    TfmcProgramKind kind;
    const char *name;
    const SrcFile *file;
    RaspProgram *rasp;
    const ModelDecl *model;
    Model *compiled; /* the transformer, built on first use */
    Graph *graph;
};

struct TfmcContext {
    TfmcAllocator alloc;
    jmp_buf oom;
    Arena arena;
    DiagList diags;
    TfmcProgram **programs;
    int nprograms, cap;
    PassOptions passes;
};

#endif
