/* test_main.c: the CUnit runner of the pass tests (tests/passes) and their shared helpers. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "passes_test.h"

void test_check(bool ok, int line, const char *file, const char *fmt, ...)
{
    char msg[1024] = "ok";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, msg);
    }
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}

void fixture_init(Fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    arena_init(&fx->arena, &libc_allocator, &fx->oom);
    fx->diags.arena = &fx->arena;
    fx->opts.level = 1;
    /* the low-rank tests weigh factors against dense products; sparse_baseline turns it back on */
    fx->opts.disabled = "sparse";
    fx->logf = open_memstream(&fx->log, &fx->loglen);
    fx->pc.arena = &fx->arena;
    fx->pc.diags = &fx->diags;
    fx->pc.opts = &fx->opts;
    fx->pc.log = fx->logf;
}

const char *fixture_log(Fixture *fx)
{
    fflush(fx->logf);
    return fx->log ? fx->log : "";
}

void fixture_free(Fixture *fx)
{
    if (fx->logf) fclose(fx->logf);
    free(fx->log);
    arena_free(&fx->arena);
    memset(fx, 0, sizeof *fx);
}

static uint64_t next64(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

double test_uniform(uint64_t *s) { return (double)(next64(s) >> 11) / 9007199254740992.0; }

double test_gaussian(uint64_t *s)
{
    double u = test_uniform(s) + 1e-300, v = test_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint32_t probe_random(uint64_t *s) { return (uint32_t)(next64(s) >> 32); }

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite lowrank = CU_add_suite("lowrank", NULL, NULL);
    CU_pSuite magnitude = CU_add_suite("magnitude", NULL, NULL);
    CU_pSuite verify = CU_add_suite("graph_verify", NULL, NULL);
    if (!lowrank || !magnitude || !verify) {
        CU_cleanup_registry();
        return 1;
    }
    add_lowrank_tests(lowrank);
    add_magnitude_tests(magnitude);
    add_graph_verify_tests(verify);
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed != 0;
}
