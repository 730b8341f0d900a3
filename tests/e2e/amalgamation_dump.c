/* amalgamation_dump.c: writes the runtime's amalgamation (the array in build/runtime/
 * tfmcrt_amalgamation.c) to standard output, for check_amalgamation.py. */
#include <stdio.h>
#include <string.h>

#include "tfmcrt_amalgamation.h"

int main(void)
{
    if (strlen(tfmcrt_amalgamation) != tfmcrt_amalgamation_length) return 1;
    return fwrite(tfmcrt_amalgamation, 1, tfmcrt_amalgamation_length, stdout) == tfmcrt_amalgamation_length ? 0 : 1;
}
