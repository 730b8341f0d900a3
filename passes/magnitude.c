/* magnitude.c: magnitude pruning (lossy, opt-in with --prune=...). Not implemented yet: asking
 * for it is an error rather than a silent no-op. */
#include "passes.h"

bool pass_magnitude(PassContext *pc, Model *m)
{
    (void)m;
    SrcLoc none = { 0, 0, 0, 0 };
    diag_error(pc->diags, NULL, none, "magnitude pruning is not implemented yet");
    return false;
}
