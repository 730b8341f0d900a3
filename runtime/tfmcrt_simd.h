/* tfmcrt_simd.h: what the runtime's kernel files share (not installed): the per-CPU clones, the
 * sixteen-lane vector types, and the few kernels more than one file calls. */
#ifndef TFMCRT_SIMD_H
#define TFMCRT_SIMD_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "tfmcrt.h"

/* Clones of the hot kernels for AVX-512, AVX2+FMA and the baseline, chosen at load time from cpuid
 * (GCC's ifunc), so one binary runs everywhere, valgrind included, at the machine's speed. The
 * runtime is built with -ffp-contract=fast, so a * b + c is one fused multiply-add where the clone
 * has one. Not when the build already targets AVX2 or better (-march=native): nothing to choose,
 * and GCC 12 fails inlining into a clone narrower than the base target. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(__AVX2__)
#ifdef __SANITIZE_THREAD__
/* ThreadSanitizer instruments the clones' resolvers, which the dynamic loader runs before the
 * sanitizer has started (a crash at load): one baseline clone, the same kernels chosen at run time */
#define TFMCRT_CLONES
#else
#define TFMCRT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#define TFMCRT_CPU_DISPATCH 1
#else
#define TFMCRT_CLONES
#endif

/* GNU vectors, where float arithmetic is float (not x87's long double: i386) and GCC has
 * __builtin_convertvector (9 and later). */
#if defined(__GNUC__) && defined(__FLT_EVAL_METHOD__) && __FLT_EVAL_METHOD__ == 0 && \
    (defined(__clang__) || __GNUC__ >= 9)
/* Sixteen floats: one AVX-512 register, two AVX2 ones, four SSE ones. Independent lanes let the
 * compiler vectorise under plain -O2, where a single running sum may not be reassociated. */
typedef float Vec16 __attribute__((vector_size(64)));
typedef int32_t VecI16 __attribute__((vector_size(64))); /* lane masks: -1 or 0 */
#define VEC_LANES 16
#endif

#ifdef VEC_LANES
/* The kernels that keep many sixteen-lane vectors in registers (the GEMM tiles, the vector
 * activations) pay off only where a register holds sixteen floats: AVX-512, chosen at build time
 * or found at run time. Elsewhere GCC spills them and the row kernels are faster. */
TFMCRT_API bool tfmcrt_wide_registers(void);
#endif

/* Tiled attention keeps two [hd][16] buffers (16 KB) on the stack: on 64-bit desktop and server
 * targets only, not on microcontrollers (define TFMCRT_SMALL_STACK to keep it off anywhere). */
#if defined(VEC_LANES) && (defined(__x86_64__) || defined(__aarch64__)) && !defined(TFMCRT_SMALL_STACK)
#define TFMCRT_TILED_ATTENTION 1
#endif

/* How many tasks to cut `units` equal pieces of work (`work` multiply-adds each) into under ex:
 * at most its thread count and the units, at least `grain` work each, at least 1. Only the speed
 * depends on it, never a result. */
TFMCRT_API size_t tfmcrt_tasks(const TfmcrtExec *ex, size_t units, size_t work);

/* A dot product; the same summation order for every caller on a given machine. */
TFMCRT_API float tfmcrt_dot(const float *a, const float *b, size_t n);

#ifdef VEC_LANES

/* exp of sixteen lanes at once, in place, within 3 ulp of exp: exp(x) = 2^k exp(r),
 * k = round(x / ln 2), |r| <= ln(2)/2, exp(r) by its Taylor series to degree 6. Lanes below -87
 * (and -inf) give 0, lanes above 87 give exp(87), NaN lanes stay NaN. */
static inline __attribute__((always_inline)) void vexp(Vec16 *px)
{
    Vec16 x = *px;
    const Vec16 lo = { -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f,
                       -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f, -87.0f };
    VecI16 under = x < lo, over = x > -lo, nan = x != x;
    /* NaN lanes compute exp(0) and get their NaN back at the end (converting NaN to an integer
     * is undefined) */
    x = (Vec16)(((VecI16)x & ~(under | nan)) | ((VecI16)lo & under));
    x = (Vec16)(((VecI16)x & ~over) | ((VecI16)-lo & over));
    /* k = round(x / ln 2): x / ln 2 + 126.5 is positive, so truncation is floor (no rounding
     * tricks that -ffast-math could fold away) */
    VecI16 ki = __builtin_convertvector(x * 1.44269504088896341f + 126.5f, VecI16) - 126;
    Vec16 k = __builtin_convertvector(ki, Vec16);
    Vec16 r = x - k * 0.693145751953125f - k * 1.42860682030941723e-6f;
    Vec16 p = r * (1.0f / 720) + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    VecI16 bits = (ki + 127) << 23;
    *px = (Vec16)(((VecI16)(p * (Vec16)bits) & ~under & ~nan) | ((VecI16)*px & nan));
}
#endif

#endif
