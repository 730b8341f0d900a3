/* tfmcrt_cpu.c: does this CPU have every instruction set extension the code was compiled for? The
 * compiler's target macros (__AVX2__, __AVX512F__, ...) say what the build may use; cpuid says what
 * the machine has. Code built with -march=native (or an amalgamation built for another machine)
 * calls this first and reports a missing extension by name instead of dying of SIGILL. */
#include <string.h>

#include "tfmcrt.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* cpuid leaf 7 (subleaf sub) register reg, or 0 when the leaf does not exist. */
static unsigned cpuid7(unsigned sub, int reg)
{
    unsigned r[4] = { 0, 0, 0, 0 };
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, sub, r[0], r[1], r[2], r[3]);
    return r[reg];
}

/* One extension by name. __builtin_cpu_supports takes only string literals (and also checks that
 * the OS saves the wide registers); the few names clang 14 does not know are read from cpuid,
 * behind the AVX check that covers their registers. Unknown names are missing. */
static int cpu_has(const char *name)
{
#define SUPPORTS(s)                                                                                                    \
    if (strcmp(name, s) == 0) return __builtin_cpu_supports(s) != 0
    __builtin_cpu_init();
    SUPPORTS("sse2");
    SUPPORTS("sse3");
    SUPPORTS("ssse3");
    SUPPORTS("sse4.1");
    SUPPORTS("sse4.2");
    SUPPORTS("popcnt");
    SUPPORTS("avx");
    SUPPORTS("avx2");
    SUPPORTS("fma");
    SUPPORTS("bmi");
    SUPPORTS("bmi2");
    SUPPORTS("avx512f");
    SUPPORTS("avx512bw");
    SUPPORTS("avx512vl");
    SUPPORTS("avx512dq");
    SUPPORTS("avx512cd");
    SUPPORTS("avx512vnni");
    SUPPORTS("avx512bf16");
    SUPPORTS("avx512vbmi");
    SUPPORTS("avx512vbmi2");
    SUPPORTS("avx512ifma");
    SUPPORTS("avx512bitalg");
    SUPPORTS("avx512vpopcntdq");
#undef SUPPORTS
    if (strcmp(name, "f16c") == 0) {
        unsigned a, b, c, d;
        return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1);
    }
    if (strcmp(name, "avxvnni") == 0) return __builtin_cpu_supports("avx") && (cpuid7(1, 0) >> 4 & 1);
    if (strcmp(name, "avx512fp16") == 0) return __builtin_cpu_supports("avx512f") && (cpuid7(0, 3) >> 23 & 1);
    return 0;
}
#endif

const char *tfmcrt_cpu_first_missing(const char *const *names, size_t count)
{
#if defined(__x86_64__) || defined(__i386__)
    for (size_t i = 0; i < count; i++)
        if (!cpu_has(names[i])) return names[i];
#else
    (void)names, (void)count;
#endif
    return NULL;
}

const char *tfmcrt_cpu_missing(void)
{
    /* what this translation unit was compiled for, the most basic first */
    static const char *const built_for[] = {
#ifdef __SSE3__
        "sse3",
#endif
#ifdef __SSSE3__
        "ssse3",
#endif
#ifdef __SSE4_1__
        "sse4.1",
#endif
#ifdef __SSE4_2__
        "sse4.2",
#endif
#ifdef __POPCNT__
        "popcnt",
#endif
#ifdef __AVX__
        "avx",
#endif
#ifdef __AVX2__
        "avx2",
#endif
#ifdef __FMA__
        "fma",
#endif
#ifdef __F16C__
        "f16c",
#endif
#ifdef __BMI__
        "bmi",
#endif
#ifdef __BMI2__
        "bmi2",
#endif
#ifdef __AVXVNNI__
        "avxvnni",
#endif
#ifdef __AVX512F__
        "avx512f",
#endif
#ifdef __AVX512BW__
        "avx512bw",
#endif
#ifdef __AVX512VL__
        "avx512vl",
#endif
#ifdef __AVX512DQ__
        "avx512dq",
#endif
#ifdef __AVX512CD__
        "avx512cd",
#endif
#ifdef __AVX512VNNI__
        "avx512vnni",
#endif
#ifdef __AVX512BF16__
        "avx512bf16",
#endif
#ifdef __AVX512VBMI__
        "avx512vbmi",
#endif
#ifdef __AVX512VBMI2__
        "avx512vbmi2",
#endif
#ifdef __AVX512IFMA__
        "avx512ifma",
#endif
#ifdef __AVX512BITALG__
        "avx512bitalg",
#endif
#ifdef __AVX512VPOPCNTDQ__
        "avx512vpopcntdq",
#endif
#ifdef __AVX512FP16__
        "avx512fp16",
#endif
        "" /* (never checked: keeps the array non-empty) */
    };
    return tfmcrt_cpu_first_missing(built_for, sizeof built_for / sizeof built_for[0] - 1);
}
