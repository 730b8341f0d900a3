/* tfmcrt_amalgamation.h: the runtime as one C text (scripts/amalgamate.py; the array is generated
 * into build/runtime/tfmcrt_amalgamation.c): every runtime function static, no threads, C99. A
 * backend pastes it at the top of a generated file, which then needs nothing but `cc -O2 -lm`. */
#ifndef TFMCRT_AMALGAMATION_H
#define TFMCRT_AMALGAMATION_H

#include <stddef.h>

extern const char tfmcrt_amalgamation[];       /* NUL-terminated */
extern const size_t tfmcrt_amalgamation_length; /* without the NUL */
/* Where the kernels start: the text before (tfmcrt.h and the CPU check) is built for the
 * baseline of the architecture, so that it can run and report a missing extension on any CPU; the
 * SIMD backend compiles the text from here on for its target (docs/design.md). */
extern const size_t tfmcrt_amalgamation_kernels;

#endif
