/* test_cpu.c: the run-time CPU check: names this CPU has, names nobody has (so the check is forced
 * whatever the machine), the first missing one is the one reported, and the library as built (for
 * the baseline) lacks nothing. tests/unit/cpu_native.c checks a -march=native build. */
#include <CUnit/Basic.h>

#include "tfmcrt.h"
#include "unit.h"

static void test_cpu_first_missing(void)
{
    CU_ASSERT_PTR_NULL(tfmcrt_cpu_first_missing(NULL, 0));
#if defined(__x86_64__)
    static const char *const base[] = { "sse2" };
    static const char *const bogus[] = { "sse2", "no-such-extension", "avx2", "another-one" };
    CU_ASSERT_PTR_NULL(tfmcrt_cpu_first_missing(base, 1));
    CHECK_STR(tfmcrt_cpu_first_missing(bogus, 4), "no-such-extension");
    CHECK_STR(tfmcrt_cpu_first_missing(bogus + 2, 2), __builtin_cpu_supports("avx2") ? "another-one" : "avx2");
    /* every name the check knows gives the same answer as the compiler's own test */
    static const char *const known[] = { "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512vnni" };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        __builtin_cpu_init();
        int has = 0;
        switch (i) {
        case 0: has = __builtin_cpu_supports("avx"); break;
        case 1: has = __builtin_cpu_supports("avx2"); break;
        case 2: has = __builtin_cpu_supports("fma"); break;
        case 3: has = __builtin_cpu_supports("avx512f"); break;
        case 4: has = __builtin_cpu_supports("avx512bw"); break;
        case 5: has = __builtin_cpu_supports("avx512vl"); break;
        default: has = __builtin_cpu_supports("avx512vnni"); break;
        }
        CHECK_INT(tfmcrt_cpu_first_missing(known + i, 1) == NULL, has != 0);
    }
#else
    static const char *const bogus[] = { "no-such-extension" };
    CU_ASSERT_PTR_NULL(tfmcrt_cpu_first_missing(bogus, 1));
#endif
}

static void test_cpu_missing_library(void)
{
    /* the library targets the baseline: nothing to lack (unless built with -march=...) */
#if !defined(__AVX__)
    CU_ASSERT_PTR_NULL(tfmcrt_cpu_missing());
#endif
}

bool register_cpu_tests(void)
{
    static const UnitTest tests[] = {
        { "cpu_first_missing: known, unknown, the first one", test_cpu_first_missing },
        { "cpu_missing: the baseline library lacks nothing", test_cpu_missing_library },
    };
    return UNIT_SUITE("cpu check", tests);
}
