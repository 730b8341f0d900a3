/* cpu_native.c: tfmcrt_cpu_missing built with -march=native (meson compiles runtime/tfmcrt_cpu.c
 * into this program with that flag) must find every extension of the build machine. */
#include <stdio.h>

#include "tfmcrt.h"

int main(void)
{
    const char *missing = tfmcrt_cpu_missing();
    if (missing) {
        fprintf(stderr, "cpu_native: a -march=native build lacks %s on the machine that built it\n", missing);
        return 1;
    }
#if defined(__AVX2__)
    printf("cpu_native: built with AVX2 or more, nothing missing\n");
#else
    printf("cpu_native: nothing missing\n");
#endif
    return 0;
}
