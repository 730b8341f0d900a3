/* test_diagnostics.c: every class of semantic error gives one diagnostic at the right line and
 * column with the expected message; independent errors are all reported; the printed form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* Lines 1-3 of most sources; the statements under test start on line 4. */
#define HDR "rasp p {\n  vocab {0..3};\n  max_len 8;\n"
#define HDR_STR "rasp p {\n  vocab {\"a\", \"b\"};\n  max_len 8;\n"
#define PROG_OK "rasp p {\n  vocab {0..3};\n  max_len 8;\n  return tokens;\n}\n"

static void expect_hint(const char *src, int line, int col, const char *sub, const char *hint, int at)
{
    TfmcContext *ctx = unit_load_bad(src, __FILE__, at);
    unit_check_int((long long)tfmc_diagnostic_count(ctx), 1, "diagnostic count", __FILE__, at);
    const TfmcDiagnostic *d = unit_expect_diag(ctx, line, col, sub, __FILE__, at);
    if (d) unit_check_has(d->hint, hint, "hint", __FILE__, at);
    tfmc_context_free(ctx);
}

static void test_name_errors(void)
{
    expect_hint(HDR "  return tokenz + 1;\n}\n", 4, 10, "unknown name `tokenz`", "did you mean `tokens`?", __LINE__);
    expect_hint(HDR "  return mapp(x -> x, tokens);\n}\n", 4, 10, "unknown function `mapp`", "`map`", __LINE__);
    EXPECT_ONE_ERROR(HDR "  a = tokens;\n  a = indices;\n  return a;\n}\n", 5, 3, "`a` is already defined (line 4)");
    EXPECT_ONE_ERROR(HDR "  tokens = indices;\n  return indices;\n}\n", 4, 3, "`tokens` is a built-in name");
    EXPECT_ONE_ERROR(HDR "  return tokens(1);\n}\n", 4, 10, "`tokens` is an SOp, not a function");
    EXPECT_ONE_ERROR("def f(s) { return s; }\nrasp p {\n  vocab {0..3};\n  max_len 8;\n  return f;\n}\n", 5, 10,
                     "`f` is a function; call it with arguments");
    /* names in a def that nothing calls are still checked */
    EXPECT_ONE_ERROR("def f(s) {\n  return s + y;\n}\n" PROG_OK, 2, 14, "unknown name `y`");
    EXPECT_ONE_ERROR("rasp p { vocab {1}; max_len 1; return tokens; }\nrasp p { vocab {1}; max_len 1; return tokens; }\n",
                     2, 6, "`p` is already defined (line 1)");
}

static void test_header_errors(void)
{
    TfmcContext *ctx = LOAD_BAD("rasp q {\n  return tokens;\n}\n");
    CHECK_INT(tfmc_diagnostic_count(ctx), 2);
    EXPECT_DIAG(ctx, 1, 6, "program `q` has no `vocab` statement");
    EXPECT_DIAG(ctx, 1, 6, "program `q` has no `max_len` statement");
    CHECK_INT(tfmc_program_count(ctx), 0);
    tfmc_context_free(ctx);

    expect_hint(HDR "  causl;\n  return tokens;\n}\n", 4, 3, "unknown statement `causl`", "did you mean `causal`?",
                __LINE__);
    EXPECT_ONE_ERROR(HDR "  vocab {1};\n  return tokens;\n}\n", 4, 3, "`vocab` is given twice (first at line 2)");
    EXPECT_ONE_ERROR("rasp p {\n  vocab {1, \"a\"};\n  max_len 8;\n  return tokens;\n}\n", 2, 9,
                     "holds strings or numbers, not both");
    EXPECT_ONE_ERROR("rasp p {\n  vocab {0..3, 2};\n  max_len 8;\n  return tokens;\n}\n", 2, 9, "lists a value twice");
    EXPECT_ONE_ERROR("rasp p {\n  vocab {5..3};\n  max_len 8;\n  return tokens;\n}\n", 2, 10, "the range 5..3 is empty");
    EXPECT_ONE_ERROR("rasp p {\n  vocab {\"a b\", \"c\"};\n  max_len 8;\n  return tokens;\n}\n", 2, 10,
                     "a token cannot be empty or contain whitespace");
    EXPECT_ONE_ERROR("rasp p {\n  vocab {0..3};\n  max_len 0;\n  return tokens;\n}\n", 3, 11,
                     "`max_len` takes a positive integer");
    EXPECT_ONE_ERROR("rasp p {\n  vocab {0..3};\n  max_len 2000;\n  return tokens;\n}\n", 3, 11,
                     "larger than the limit of 1024");
    EXPECT_ONE_ERROR(HDR "  causal 1;\n  return tokens;\n}\n", 4, 3, "`causal` takes no value");
}

static void test_statement_errors(void)
{
    EXPECT_ONE_ERROR(HDR "  return tokens;\n  x = indices;\n}\n", 5, 3, "statement after `return`");
    EXPECT_ONE_ERROR(HDR "  x = tokens;\n}\n", 1, 6, "the program has no `return`");
    EXPECT_ONE_ERROR(HDR "  s = select(tokens, tokens, ==);\n  return s;\n}\n", 5, 10,
                     "a program returns an SOp, not a selector");
    EXPECT_ONE_ERROR(HDR "  f = x -> x;\n  return tokens;\n}\n", 4, 7, "a lambda cannot be assigned to a name");
    EXPECT_ONE_ERROR(HDR "  k = 1 / 0;\n  return tokens;\n}\n", 4, 7, "arithmetic error in a constant expression");
}

static void test_def_errors(void)
{
    expect_hint("def h(s) {\n  return h(s) + 1;\n}\nrasp p {\n  vocab {0..3};\n  max_len 8;\n  return h(tokens);\n}\n",
                2, 10, "function `h` is recursive: `h` -> `h`", "this call closes the cycle", __LINE__);
    /* a cycle is one error, at the call that closes it: from the first function when no program
     * calls it, else from the one the program calls */
    EXPECT_ONE_ERROR("def f(s) {\n  return g(s);\n}\ndef g(s) {\n  return f(s);\n}\n" PROG_OK, 5, 10,
                     "function `f` is recursive: `f` -> `g` -> `f`");
    EXPECT_ONE_ERROR("def f(s) {\n  return g(s);\n}\ndef g(s) {\n  return f(s);\n}\n"
                     "rasp p {\n  vocab {0..3};\n  max_len 8;\n  return g(tokens);\n}\n",
                     2, 10, "function `g` is recursive: `g` -> `f` -> `g`");
    EXPECT_ONE_ERROR("def f(a) {\n  return a;\n}\nrasp p {\n  vocab {0..3};\n  max_len 8;\n  return f(tokens, indices);\n}\n",
                     7, 10, "`f` takes 1 argument, not 2");
    EXPECT_ONE_ERROR("def f(a, a) { return a; }\n" PROG_OK, 1, 10, "parameter `a` appears twice");
    EXPECT_ONE_ERROR("def f(s) {\n  max_len 3;\n  return s;\n}\n" PROG_OK, 2, 3,
                     "`max_len` belongs in a program, not in a function");
    EXPECT_ONE_ERROR("def map(s) { return s; }\n" PROG_OK, 1, 5, "`map` is a built-in name");
    /* an error inside a def expanded twice (same place, same message) is reported once */
    EXPECT_ONE_ERROR("def f(s) {\n  return s + \"x\";\n}\n"
                     "rasp p {\n  vocab {0..3};\n  max_len 8;\n  a = f(tokens);\n  b = f(indices);\n  return a + b;\n}\n",
                     2, 12, "`+` needs numbers, not the integer `0` and the string `x`");
}

static void test_call_errors(void)
{
    EXPECT_ONE_ERROR(HDR "  return selector_width(tokens, tokens);\n}\n", 4, 10,
                     "`selector_width` takes 1 argument, not 2");
    EXPECT_ONE_ERROR(HDR "  return aggregate(select(tokens, tokens), tokens);\n}\n", 4, 20, "`select` takes 3 arguments, not 2");
    EXPECT_ONE_ERROR(HDR "  return map(x -> x);\n}\n", 4, 10, "`map` takes 2 to 3 arguments, not 1");
    EXPECT_ONE_ERROR(HDR "  return map(tokens, tokens);\n}\n", 4, 14, "the first argument of `map` must be a lambda");
    EXPECT_ONE_ERROR(HDR "  return map((x, y) -> x, tokens);\n}\n", 4, 14,
                     "this lambda takes 2 parameters but `map` gives it 1 SOp");
    EXPECT_ONE_ERROR(HDR "  return map(x -> x, tokens, indices);\n}\n", 4, 14,
                     "this lambda takes 1 parameter but `map` gives it 2 SOps");
    EXPECT_ONE_ERROR(HDR "  k = tokens + 1;\n  return map(x -> x * k, tokens);\n}\n", 5, 23,
                     "a lambda body sees only its parameters and constants, and `k` is an SOp");
    EXPECT_ONE_ERROR(HDR "  return aggregate(tokens, tokens);\n}\n", 4, 20,
                     "`aggregate` needs a selector as its first argument, but `tokens` is an SOp");
    EXPECT_ONE_ERROR(HDR "  return aggregate(select(indices, numerical(tokens), <), tokens);\n}\n", 4, 36,
                     "`select` compares categorical SOps");
    EXPECT_ONE_ERROR(HDR "  return aggregate(select(tokens, tokens, x -> x), tokens);\n}\n", 4, 43,
                     "a `select` lambda takes two parameters (key, query), not 1");
    EXPECT_ONE_ERROR(HDR "  return aggregate(select(tokens, tokens, 1), tokens);\n}\n", 4, 43,
                     "the third argument of `select` must be a comparison");
}

static void test_type_errors(void)
{
    EXPECT_ONE_ERROR(HDR_STR "  return map(x -> x - 1, tokens);\n}\n", 4, 21,
                     "`-` needs numbers, not the string `a` and the integer `1`");
    EXPECT_ONE_ERROR(HDR_STR "  return map(x -> x < 1, tokens);\n}\n", 4, 21, "`<` cannot order");
    EXPECT_ONE_ERROR(HDR_STR "  return aggregate(select(tokens, tokens, (k, q) -> k - q), tokens);\n}\n", 4, 55,
                     "`-` needs numbers");
    EXPECT_ONE_ERROR(HDR "  return select(tokens, tokens, ==) + 1;\n}\n", 4, 37, "`+` cannot take a selector");
    EXPECT_ONE_ERROR(HDR "  return aggregate(select(tokens, tokens, ==) and tokens, tokens);\n}\n", 4, 47,
                     "`and` combines two selectors or two SOps, not a selector and an SOp");
    EXPECT_ONE_ERROR(HDR "  return indices > 2 ? tokens : length;\n}\n", 4, 10,
                     "an elementwise expression combines at most two SOps, and this one combines 3");
}

static void test_causal_errors(void)
{
    EXPECT_ONE_ERROR(HDR "  causal;\n  return length - 1;\n}\n", 5, 10, "`length` is not available in a causal program");
    EXPECT_ONE_ERROR(HDR "  causal;\n  s = select(indices, indices, >=);\n  return aggregate(s, tokens);\n}\n", 5, 7,
                     "may select later positions");
    EXPECT_ONE_ERROR(HDR "  causal;\n  s = select(tokens, tokens, ==);\n  return selector_width(s);\n}\n", 5, 7,
                     "may select later positions");
    /* backward-looking selectors are accepted */
    Loaded l;
    if (LOAD(&l, HDR "  causal;\n  s = select(tokens, tokens, ==) and select(indices, indices, <=);\n"
                 "  return selector_width(s);\n}\n")) {
        EVAL_EQ(&l, "1 2 1 1", "1 1 2 3");
    }
    unit_unload(&l);
}

/* A selector that provably selects nothing (or every key) is a warning: the program still loads
 * and runs, and the message names both value sets, a long one abbreviated. */
static void test_constant_selector_warnings(void)
{
    Loaded l;
    if (LOAD(&l, HDR_STR "  s = select(tokens, indices, ==);\n  return selector_width(s);\n}\n")) {
        CHECK_INT(tfmc_diagnostic_count(l.ctx), 1);
        const TfmcDiagnostic *d = tfmc_diagnostic(l.ctx, 0);
        CU_ASSERT(d && d->warning);
        d = EXPECT_DIAG(l.ctx, 4, 7, "`s` never selects anything: `==` is false for every key in {\"a\", \"b\"} "
                                     "(`tokens`) and query in {0..7} (`indices`)");
        if (d) CHECK_HAS(d->hint, "a string never equals a number");
        EVAL_EQ(&l, "a b", "0 0");
    }
    unit_unload(&l);
    /* `!=` between them selects every key: tokens and indices are never undefined */
    if (LOAD(&l, HDR_STR "  s = select(tokens, indices, !=);\n  return selector_width(s);\n}\n")) {
        EXPECT_DIAG(l.ctx, 4, 7, "`s` always selects every key: `!=` is true");
        EVAL_EQ(&l, "a b a", "3 3 3");
    }
    unit_unload(&l);
    /* a long set shows its first values and its size */
    if (LOAD(&l, "rasp p {\n  vocab {0..99};\n  max_len 4;\n"
                 "  size = map(x -> x > 50 ? \"big\" : \"small\", tokens);\n"
                 "  s = select(tokens * 2, size, ==);\n  return selector_width(s);\n}\n")) {
        EXPECT_DIAG(l.ctx, 5, 7, "every key in {0, 2, 4, 6, 8, ... 100 values} (`tokens * 2`) and query in "
                                 "{\"big\", \"small\"} (`size`)");
    }
    unit_unload(&l);
    /* no warning: values that meet, an explicit `true`, or keys that may be undefined */
    const char *quiet[] = {
        HDR "  s = select(tokens, indices, ==);\n  return selector_width(s);\n}\n",
        HDR_STR "  s = select(tokens, indices, true);\n  return selector_width(s);\n}\n",
        HDR_STR "  f = aggregate(select(indices, indices, ==), tokens);\n"
                "  s = select(f, indices, !=);\n  return selector_width(s);\n}\n",
    };
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) {
        if (LOAD(&l, quiet[i])) unit_check_int((long long)tfmc_diagnostic_count(l.ctx), 0, quiet[i], __FILE__, __LINE__);
        unit_unload(&l);
    }
}

static void test_independent_errors(void)
{
    TfmcContext *ctx = LOAD_BAD(HDR "  a = tokenz + 1;\n"
                                    "  b = mapp(x -> x, tokens);\n"
                                    "  c = select(tokens, tokens, ==) + 1;\n"
                                    "  d = foo * bar;\n"
                                    "  return tokens;\n"
                                    "}\n"
                                    "rasp q {\n"
                                    "  vocab {0..3};\n"
                                    "  max_len 8;\n"
                                    "  return indices + lenght;\n"
                                    "}\n");
    CHECK_INT(tfmc_diagnostic_count(ctx), 6);
    EXPECT_DIAG(ctx, 4, 7, "unknown name `tokenz`");
    EXPECT_DIAG(ctx, 5, 7, "unknown function `mapp`");
    EXPECT_DIAG(ctx, 6, 34, "`+` cannot take a selector");
    EXPECT_DIAG(ctx, 7, 7, "unknown name `foo`");
    EXPECT_DIAG(ctx, 7, 13, "unknown name `bar`");
    const TfmcDiagnostic *d = EXPECT_DIAG(ctx, 13, 20, "unknown name `lenght`");
    if (d) {
        CHECK_STR(d->file, "bad.tfm");
        CHECK_INT(d->end_line, 13);
        CHECK_INT(d->end_column, 25);
        CHECK_HAS(d->hint, "`length`");
    }
    CHECK_INT(tfmc_program_count(ctx), 0);
    tfmc_context_free(ctx);
}

static char *print_to_string(TfmcContext *ctx)
{
    FILE *f = tmpfile();
    if (!f) return NULL;
    tfmc_print_diagnostics(ctx, f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (s && n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
    fclose(f);
    return s;
}

static void test_printed_form(void)
{
    TfmcContext *ctx = LOAD_BAD(HDR "  return tokenz + 1;\n}\n");
    char *s = print_to_string(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    static const char want[] = "bad.tfm:4:10: error: unknown name `tokenz`\n"
                               "  return tokenz + 1;\n"
                               "         ^";
    CU_ASSERT(strncmp(s, want, sizeof want - 1) == 0);
    CHECK_HAS(s, "did you mean `tokens`?");
    free(s);
    /* a client's own error has no place */
    tfmc_report(ctx, "bad input line %d", 7);
    CHECK_INT(tfmc_diagnostic_count(ctx), 2);
    const TfmcDiagnostic *d = tfmc_diagnostic(ctx, 1);
    CU_ASSERT_FATAL(d != NULL);
    CHECK_STR(d->message, "bad input line 7");
    CHECK_INT(d->line, 0);
    CU_ASSERT_PTR_NULL(tfmc_diagnostic(ctx, 2));
    s = print_to_string(ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_HAS(s, "error: bad input line 7\n");
    free(s);
    tfmc_context_free(ctx);
}

bool register_diagnostics_tests(void)
{
    static const UnitTest tests[] = {
        { "name errors", test_name_errors },
        { "header errors", test_header_errors },
        { "statement errors", test_statement_errors },
        { "def errors", test_def_errors },
        { "call errors", test_call_errors },
        { "type errors", test_type_errors },
        { "causal errors", test_causal_errors },
        { "independent errors all reported", test_independent_errors },
        { "constant selector warnings", test_constant_selector_warnings },
        { "printed form", test_printed_form },
    };
    return UNIT_SUITE("diagnostics", tests);
}
