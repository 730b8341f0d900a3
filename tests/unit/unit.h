/* unit.h: what the CUnit unit tests of tfmc share: registration, fixtures over the frontend and the
 * public API, and assertions that print the actual value when they fail. */
#ifndef TFMC_UNIT_H
#define TFMC_UNIT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>

#include <CUnit/CUnit.h>

#include "frontend.h"
#include "tfmc.h"

/* ------------------------------------------------------------ registration */

typedef struct UnitTest {
    const char *name;
    CU_TestFunc fn;
} UnitTest;

/* Add a suite of n tests; false when CUnit refused (reported on stderr). */
bool unit_add_suite(const char *name, const UnitTest *tests, size_t n);
#define UNIT_SUITE(name, tests) unit_add_suite((name), (tests), sizeof(tests) / sizeof((tests)[0]))

bool register_lexer_parser_tests(void);
bool register_syntax_errors_tests(void);
bool register_sema_tests(void);
bool register_diagnostics_tests(void);
bool register_interp_tests(void);
bool register_values_tests(void);
bool register_api_tests(void);
bool register_runtime_tests(void);
bool register_pool_tests(void);
bool register_faults_tests(void);
bool register_packed_tests(void);
bool register_quant_tests(void);
bool register_cpu_tests(void);
bool register_tokenizer_tests(void);

/* ------------------------------------------------- assertions with values */

void unit_check_str(const char *actual, const char *expected, const char *expr, const char *file, int line);
void unit_check_int(long long actual, long long expected, const char *expr, const char *file, int line);
void unit_check_dbl(double actual, double expected, double tol, const char *expr, const char *file, int line);
/* The string contains the substring. */
void unit_check_has(const char *actual, const char *sub, const char *expr, const char *file, int line);

#define CHECK_STR(a, e) unit_check_str((a), (e), #a, __FILE__, __LINE__)
#define CHECK_INT(a, e) unit_check_int((long long)(a), (long long)(e), #a, __FILE__, __LINE__)
#define CHECK_DBL(a, e, tol) unit_check_dbl((a), (e), (tol), #a, __FILE__, __LINE__)
#define CHECK_HAS(a, sub) unit_check_has((a), (sub), #a, __FILE__, __LINE__)

/* ----------------------------------------- the frontend: parse and check */

typedef struct Fx {
    jmp_buf oom;
    Arena arena;
    DiagList diags;
    SrcFile file;
    Item *items;
    int nerrors; /* syntax errors */
    SemaResult sema;
} Fx;

/* Parse text into fx (freed by fx_free). */
void fx_parse(Fx *fx, const char *text);
/* Parse and, when there is no syntax error, check. */
void fx_check(Fx *fx, const char *text);
void fx_free(Fx *fx);
/* The i-th statement of the first item (NULL if missing). */
Stmt *fx_stmt(Fx *fx, int i);
/* The node of program p labelled `label`, or NULL. */
RaspNode *fx_node(const RaspProgram *p, const char *label);

/* An expression as an S-expression, independent of the library's printer:
 * (+ a (* b 2)), (neg x), (not x), (? c a b), (call f a b), (lambda (x y) body), [<=]. */
void sexp(const Ast *e, char *buf, size_t cap);
/* A value set as {0, 1.5, 2.0, "a", true}: floats with an integral value print as 2.0. */
void vs_text(const ValueSet *vs, char *buf, size_t cap);

/* ------------------------------------------------------ the public API */

typedef struct Loaded {
    TfmcContext *ctx;
    const TfmcProgram *p;
} Loaded;

/* Load src, which must compile and hold one program (or `name`). Prints the diagnostics otherwise. */
bool unit_load(Loaded *l, const char *src, const char *name, const char *file, int line);
/* Evaluate l on a line of tokens and compare the output as the command line prints it. */
void unit_eval_eq(Loaded *l, const char *input, const char *expected, const char *file, int line);
/* Evaluate into out (cap 64); returns the length, 0 on failure (asserted). */
size_t unit_eval(Loaded *l, const char *input, TfmcValue *out, const char *file, int line);
void unit_unload(Loaded *l);

#define LOAD(l, src) unit_load((l), (src), NULL, __FILE__, __LINE__)
#define EVAL_EQ(l, in, out) unit_eval_eq((l), (in), (out), __FILE__, __LINE__)
#define EVAL(l, in, out) unit_eval((l), (in), (out), __FILE__, __LINE__)

/* Load src expecting TFMC_ERR_COMPILE; returns the context (free it). */
TfmcContext *unit_load_bad(const char *src, const char *file, int line);
/* There is a diagnostic at line:col whose message contains sub; returns it. */
const TfmcDiagnostic *unit_expect_diag(TfmcContext *ctx, int line, int col, const char *sub, const char *file,
                                       int at);
/* src fails with exactly one diagnostic, at line:col, whose message contains sub. */
void unit_expect_one_error(const char *src, int line, int col, const char *sub, const char *file, int at);

#define LOAD_BAD(src) unit_load_bad((src), __FILE__, __LINE__)
#define EXPECT_DIAG(ctx, line, col, sub) unit_expect_diag((ctx), (line), (col), (sub), __FILE__, __LINE__)
#define EXPECT_ONE_ERROR(src, line, col, sub) unit_expect_one_error((src), (line), (col), (sub), __FILE__, __LINE__)

#endif
