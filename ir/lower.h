/* lower.h: the two ways into the model IR from the frontend: a checked RASP program compiled
 * Tracr's way, and a model declaration checked and given its weights. The only IR header that
 * sees the frontend's types; the rest of the IR (ir.h), the passes and the backends do not. */
#ifndef TFMC_IR_LOWER_H
#define TFMC_IR_LOWER_H

#include "frontend.h"
#include "ir.h"

/* Compile a checked RASP program into a model, Tracr's way. NULL with a diagnostic on failure. */
Model *rasp_lower(Arena *arena, const RaspProgram *p, DiagList *diags);

/* Check a model declaration and build its model with its weights (a .safetensors file, or
 * seeded random ones). NULL with diagnostics on failure. Before any weight is allocated, the
 * memory the model needs is checked against max_memory (0: the machine's, model_memory_limit)
 * and the weight file's header against the declaration. check_only: only those checks and every
 * statement and option, no weights allocated or read (what loading a file does for its models). */
Model *model_declare(Arena *arena, const ModelDecl *decl, const SrcFile *file, DiagList *diags, bool check_only,
                     size_t max_memory);
#endif
