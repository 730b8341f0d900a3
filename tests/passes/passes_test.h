/* passes_test.h: what the pass tests share: a checking macro, a pass context on a malloc arena
 * with its log in memory, seeded random numbers, and the suites' registration. */
#ifndef TFMC_PASSES_TEST_H
#define TFMC_PASSES_TEST_H

#include <CUnit/Basic.h>

#include "lib.h"

/* A failed check prints its message and counts as a CUnit failure. */
void test_check(bool ok, int line, const char *file, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#define CHECK(ok, ...) test_check((ok), __LINE__, __FILE__, __VA_ARGS__)

/* A pass context on its own arena; what the pass logs lands in `log` (after fixture_log). */
typedef struct Fixture {
    Arena arena;
    jmp_buf oom;
    DiagList diags;
    PassOptions opts;
    PassContext pc;
    FILE *logf;
    char *log;
    size_t loglen;
} Fixture;

void fixture_init(Fixture *fx);
/* Close the log stream and return the text logged so far (the stream is reopened). */
const char *fixture_log(Fixture *fx);
void fixture_free(Fixture *fx);


/* Seeded random numbers (xorshift64*): uniform in [0, 1) and standard normal. */
double test_uniform(uint64_t *s);
double test_gaussian(uint64_t *s);

/* The probe inputs of the magnitude pass, as docs/passes.md describes them: xorshift64* seeded
 * 0x5EED; 32 lengths 1 + r % min(max_len, 64), then the token ids (r % vocab, or for RASP
 * r % (vocab - 1) skipping the BOS id). */
uint32_t probe_random(uint64_t *s);

void add_lowrank_tests(CU_pSuite suite);
void add_magnitude_tests(CU_pSuite suite);
void add_graph_verify_tests(CU_pSuite suite);

#endif
