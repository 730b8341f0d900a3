/* lowrank.c: low-rank factorisation (opt-in with --low-rank=...). Not implemented yet: asking for
 * it is an error rather than a silent no-op. */
#include "passes.h"

bool pass_lowrank(PassContext *pc, Graph *g)
{
    (void)g;
    SrcLoc none = { 0, 0, 0, 0 };
    diag_error(pc->diags, NULL, none, "low-rank factorisation is not implemented yet");
    return false;
}
