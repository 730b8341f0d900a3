/* test_interp.c: the reference interpreter through the public API (tfmc_load_string + tfmc_eval),
 * against outputs computed by hand. */
#include <stdio.h>
#include <string.h>

#include "unit.h"

#define INTS "  vocab {-7..7};\n  max_len 8;\n"
#define ABC "  vocab {\"a\", \"b\", \"c\"};\n  max_len 6;\n"

/* Program `rasp p { HEADER BODY }`; evaluate it on input and compare with expected. */
static void expect_eval(const char *header, const char *body, const char *input, const char *expected, int line)
{
    char src[1024];
    snprintf(src, sizeof src, "rasp p {\n%s%s\n}\n", header, body);
    Loaded l;
    if (unit_load(&l, src, NULL, __FILE__, line)) unit_eval_eq(&l, input, expected, __FILE__, line);
    unit_unload(&l);
}
#define EXPECT_EVAL(header, body, in, out) expect_eval((header), (body), (in), (out), __LINE__)
/* `return EXPR;` over the integers -7..7 on the input -7 7 -1 0 3. */
#define EXPECT_INTS(expr, out) expect_eval(INTS, "  return " expr ";", "-7 7 -1 0 3", (out), __LINE__)

static void test_reverse(void)
{
    Loaded l;
    if (LOAD(&l, "# reverse.tfm\n"
                 "rasp reverse {\n"
                 "  vocab {\"a\", \"b\", \"c\", \"d\"};\n"
                 "  max_len 8;\n"
                 "  opp  = length - indices - 1;\n"
                 "  flip = select(indices, opp, ==);\n"
                 "  return aggregate(flip, tokens);\n"
                 "}\n")) {
        CHECK_STR(tfmc_program_name(l.p), "reverse");
        CHECK_INT(tfmc_program_kind(l.p), TFMC_PROGRAM_RASP);
        CHECK_INT(tfmc_program_max_len(l.p), 8);
        EVAL_EQ(&l, "a b c d", "d c b a");
        EVAL_EQ(&l, "a b c", "c b a");
        EVAL_EQ(&l, "b", "b");
        EVAL_EQ(&l, "d d a", "a d d");
        EVAL_EQ(&l, "a b c d a b c c", "c c b a d c b a");
    }
    unit_unload(&l);
}

static void test_histogram(void)
{
    Loaded l;
    if (LOAD(&l, "def make_hist() {\n"
                 "  same_tok = select(tokens, tokens, ==);\n"
                 "  return selector_width(same_tok);\n"
                 "}\n"
                 "rasp hist {\n" ABC "  return make_hist();\n}\n")) {
        EVAL_EQ(&l, "a b a c", "2 1 2 1");
        EVAL_EQ(&l, "c c c", "3 3 3");
        EVAL_EQ(&l, "a", "1");
        EVAL_EQ(&l, "a b c a b a", "3 2 1 3 2 3");
    }
    unit_unload(&l);
}

static void test_sort(void)
{
    Loaded l;
    if (LOAD(&l, "def make_sort_unique(vals, keys) {\n"
                 "  smaller = select(keys, keys, <);\n"
                 "  target_pos = selector_width(smaller);\n"
                 "  sel_new = select(target_pos, indices, ==);\n"
                 "  return aggregate(sel_new, vals);\n"
                 "}\n"
                 "def make_sort(vals, keys) {\n"
                 "  unique_keys = map((x, i) -> x + 1 * i / 5, keys, indices);\n"
                 "  return make_sort_unique(vals, unique_keys);\n"
                 "}\n"
                 "rasp sort {\n"
                 "  vocab {1..5};\n"
                 "  max_len 5;\n"
                 "  return make_sort(tokens, tokens);\n"
                 "}\n")) {
        EVAL_EQ(&l, "2 4 3 1", "1 2 3 4");
        EVAL_EQ(&l, "2 4 1 2", "1 2 2 4");
        EVAL_EQ(&l, "5 4 3 2 1", "1 2 3 4 5");
        EVAL_EQ(&l, "5 5 5", "5 5 5");
        EVAL_EQ(&l, "3", "3");
    }
    unit_unload(&l);
}

static void test_frac_prevs(void)
{
    Loaded l;
    if (LOAD(&l, "def frac_prevs(bools) {\n"
                 "  prevs = select(indices, indices, <=);\n"
                 "  return numerical(aggregate(prevs, bools));\n"
                 "}\n"
                 "rasp p {\n"
                 "  vocab {\"x\", \"y\", \"z\"};\n"
                 "  max_len 6;\n"
                 "  return frac_prevs(numerical(tokens == \"x\"));\n"
                 "}\n")) {
        TfmcValue out[64];
        size_t n = EVAL(&l, "y x x z", out);
        CHECK_INT(n, 4);
        static const double want[] = { 0, 0.5, 2.0 / 3, 0.5 };
        for (size_t i = 0; i < n && i < 4; i++) {
            CU_ASSERT(out[i].kind == TFMC_FLOAT || out[i].kind == TFMC_INT);
            CHECK_DBL(value_number(out[i]), want[i], 1e-12);
        }
        EVAL_EQ(&l, "y x x z", "0 0.5 0.666666667 0.5");
        EVAL_EQ(&l, "x x x", "1 1 1");
        EVAL_EQ(&l, "x y y y z x", "1 0.5 0.333333333 0.25 0.2 0.333333333");
    }
    unit_unload(&l);
}

static void test_selector_combinations(void)
{
    const char *h = "  vocab {1, 2, 3};\n  max_len 6;\n"
                    "  before = select(indices, indices, <);\n"
                    "  same = select(tokens, tokens, ==);\n";
    EXPECT_EVAL(h, "  return selector_width(before or same);", "1 2 1 3", "2 2 3 4");
    EXPECT_EVAL(h, "  return selector_width(select(indices, indices, <=) and same);", "1 2 1 3", "1 1 2 1");
    EXPECT_EVAL(h, "  return selector_width(not same);", "1 2 1 3", "2 3 2 3");
    EXPECT_EVAL(h, "  return selector_width(not same and before);", "1 2 1 3", "0 1 1 3");
    EXPECT_EVAL(h, "  return selector_width(not (same or before));", "1 2 1 3", "2 2 1 0");
    EXPECT_EVAL(h, "  return selector_width(select(tokens, tokens, true));", "1 2 1", "3 3 3");
    EXPECT_EVAL(h, "  return selector_width(select(tokens, tokens, false));", "1 2 1", "0 0 0");
    EXPECT_EVAL(h, "  return selector_width(select(tokens, tokens, !=));", "1 2 1 3", "2 3 2 3");
    /* keys[j] OP queries[i]: with <, query i selects the keys smaller than its own value */
    EXPECT_EVAL(h, "  return selector_width(select(indices, indices, <));", "1 1 1 1", "0 1 2 3");
    EXPECT_EVAL(h, "  return selector_width(select(indices, indices, >=));", "1 1 1 1", "4 3 2 1");
    EXPECT_EVAL(h, "  return selector_width(select(tokens, indices, >));", "3 1 2", "3 2 1");
}

static void test_aggregate_edge_cases(void)
{
    /* categorical: undefined when nothing is selected or the selected values differ */
    const char *h = "  vocab {\"a\", \"b\"};\n  max_len 4;\n";
    EXPECT_EVAL(h, "  return aggregate(select(indices, indices, <), tokens);", "a b b", "_ a _");
    EXPECT_EVAL(h, "  return aggregate(select(indices, indices, <), tokens);", "a a b", "_ a a");
    EXPECT_EVAL(h, "  return aggregate(select(indices, indices, <), tokens);", "b", "_");
    EXPECT_EVAL(h, "  return aggregate(select(tokens, tokens, true), tokens);", "b b b", "b b b");
    EXPECT_EVAL(h, "  return aggregate(select(tokens, tokens, true), tokens);", "b a b", "_ _ _");
    /* numerical: the mean, 0 when nothing is selected */
    Loaded l;
    if (LOAD(&l, "rasp p {\n"
                 "  vocab {\"a\", \"b\"};\n"
                 "  max_len 4;\n"
                 "  isa = numerical(map(x -> x == \"a\" ? 1 : 0, tokens));\n"
                 "  return numerical(aggregate(select(indices, indices, <), isa));\n"
                 "}\n")) {
        TfmcValue out[64];
        size_t n = EVAL(&l, "a b a b", out);
        CHECK_INT(n, 4);
        static const double want[] = { 0, 1, 0.5, 2.0 / 3 };
        for (size_t i = 0; i < n && i < 4; i++) {
            CU_ASSERT(value_is_number(out[i]));
            CHECK_DBL(value_number(out[i]), want[i], 1e-12);
        }
        EVAL_EQ(&l, "b", "0");
    }
    unit_unload(&l);
}

static void test_select_lambda(void)
{
    const char *h = "  vocab {0..9};\n  max_len 6;\n";
    EXPECT_EVAL(h, "  return selector_width(select(tokens, tokens, (k, q) -> k > q));", "3 1 4 1 5", "2 3 1 3 0");
    /* keys are indices, queries tokens: out[i] = tokens[tokens[i]] */
    EXPECT_EVAL(h, "  return aggregate(select(indices, tokens, (k, q) -> k == q), tokens);", "2 0 1", "1 2 0");
    EXPECT_EVAL(h, "  return aggregate(select(indices, tokens, (k, q) -> k == q), tokens);", "5 0", "_ 5");
    EXPECT_EVAL(h, "  return selector_width(select(tokens, indices, (k, q) -> (k + q) % 2 == 0));", "1 2 4",
                "2 1 2");
    EXPECT_EVAL(h, "  return map((x, i) -> x * 10 + i, tokens, indices);", "3 1 4", "30 11 42");
    EXPECT_EVAL(h, "  return length;", "3 1 4", "3 3 3");
    EXPECT_EVAL(h, "  return 7;", "3 1", "7 7");
}

static void test_python_arithmetic(void)
{
    EXPECT_INTS("tokens % 3", "2 1 2 0 0");
    EXPECT_INTS("tokens % -3", "-1 -2 -1 0 0");
    EXPECT_EVAL(INTS, "  return map(x -> -7 % x, tokens);", "-7 7 -1 3 2", "0 0 0 2 1");
    EXPECT_INTS("tokens / 2", "-3.5 3.5 -0.5 0 1.5");
    EXPECT_INTS("floor(tokens / 2)", "-4 3 -1 0 1");
    EXPECT_INTS("abs(tokens)", "7 7 1 0 3");
    EXPECT_INTS("min(tokens, 2)", "-7 2 -1 0 2");
    EXPECT_INTS("max(tokens, -1)", "-1 7 -1 0 3");
    EXPECT_INTS("min(tokens, 0.5)", "-7 0.5 -1 0 0.5");
    EXPECT_INTS("map(x -> x > 0 ? x : -x, tokens)", "7 7 1 0 3");
    EXPECT_INTS("tokens - 2 * 3 + 1", "-12 2 -6 -5 -2");
    EXPECT_INTS("tokens - 3 - 1", "-11 3 -5 -4 -1");

    /* `/` is real division: a float even when exact */
    Loaded l;
    if (LOAD(&l, "rasp p {\n" INTS "  return tokens / 1;\n}\n")) {
        TfmcValue out[64];
        size_t n = EVAL(&l, "3 -7", out);
        CHECK_INT(n, 2);
        CU_ASSERT(out[0].kind == TFMC_FLOAT && out[0].u.f == 3.0);
        CU_ASSERT(out[1].kind == TFMC_FLOAT && out[1].u.f == -7.0);
    }
    unit_unload(&l);
    if (LOAD(&l, "rasp p {\n" INTS "  return floor(tokens / 2) + tokens % 2;\n}\n")) {
        TfmcValue out[64];
        size_t n = EVAL(&l, "-7 5", out);
        CHECK_INT(n, 2);
        CU_ASSERT(out[0].kind == TFMC_INT && out[0].u.i == -3); /* -4 + 1 */
        CU_ASSERT(out[1].kind == TFMC_INT && out[1].u.i == 3);  /* 2 + 1 */
    }
    unit_unload(&l);
}

/* Infix on SOps is sugar for a map: a conditional whose three operands all derive from one SOp is
 * the one-SOp map x -> x > 0 ? x : -x (spec: "sugar for the corresponding map (one SOp)"). */
static void test_conditional_on_one_sop(void)
{
    EXPECT_INTS("tokens > 0 ? tokens : -tokens", "7 7 1 0 3");
    EXPECT_INTS("tokens > 0 ? tokens * 2 : tokens - 1", "-8 14 -2 -1 6");
}

static void test_python_logic(void)
{
    /* `and` / `or` return one of their operands, as in Python */
    EXPECT_INTS("tokens and 5", "5 5 5 0 5");
    EXPECT_INTS("tokens or 5", "-7 7 -1 5 3");
    EXPECT_INTS("tokens > 0 and tokens", "false 7 false false 3");
    EXPECT_INTS("tokens < 0 or tokens", "true 7 true 0 3");
    EXPECT_INTS("not tokens", "false false false true false");
    /* true counts as 1 in arithmetic */
    EXPECT_INTS("(tokens > 0) + (tokens > 0)", "0 2 0 0 2");
    EXPECT_INTS("(tokens > 0) * 3", "0 3 0 0 3");
    EXPECT_INTS("-(tokens > 0)", "0 -1 0 0 -1");
    EXPECT_EVAL(INTS, "  return tokens == (tokens > 0);", "1 0 2", "true true false");
    /* integers and floats compare as numbers */
    EXPECT_INTS("tokens == 3.0", "false false false false true");
    EXPECT_INTS("tokens < 0.5", "true false true true false");
    EXPECT_INTS("tokens >= -1.0", "false true true true true");
    EXPECT_INTS("tokens != 7.0", "true false true true true");
    /* a string never equals a number */
    const char *h = "  vocab {\"1\", \"a\"};\n  max_len 4;\n";
    EXPECT_EVAL(h, "  return tokens == 1;", "1 a", "false false");
    EXPECT_EVAL(h, "  return tokens != 1;", "1 a", "true true");
    EXPECT_EVAL(h, "  return tokens == \"1\";", "1 a", "true false");
    EXPECT_EVAL(h, "  return tokens == \"a\" or \"z\";", "1 a", "z true");
    EXPECT_EVAL(h, "  return tokens < \"b\";", "1 a", "true true");
}

static void test_undefined_propagation(void)
{
    const char *h = "  vocab {1, 2, 3};\n  max_len 4;\n"
                    "  prev = aggregate(select(indices, indices, <), tokens);\n";
    EXPECT_EVAL(h, "  return map(x -> x + 1, prev);", "1 2 3", "_ 2 _");
    EXPECT_EVAL(h, "  return map(x -> x + 1, prev);", "2 2 2", "_ 3 3");
    EXPECT_EVAL(h, "  return prev + indices;", "1 2 3", "_ 2 _");
    EXPECT_EVAL(h, "  return map(x -> x * 0, prev) + 5;", "3 3", "_ 5");
    EXPECT_EVAL(h, "  return prev == prev;", "1 1", "_ true");
    EXPECT_EVAL(h, "  return map(x -> 1, prev);", "1 1", "_ 1");
}

static void test_eval_errors(void)
{
    static const char src[] = "rasp p { vocab {\"a\"}; max_len 2; return tokens; }\n"
                              "model m { vocab 4; max_len 4; dim 8; init random(seed 1); }\n";
    TfmcContext *ctx = tfmc_context_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CHECK_INT(tfmc_load_string(ctx, "two.tfm", src, strlen(src)), TFMC_OK);
    const TfmcProgram *p = NULL, *m = NULL;
    CHECK_INT(tfmc_program_count(ctx), 2);
    CHECK_INT(tfmc_find_program(ctx, "p", &p), TFMC_OK);
    CHECK_INT(tfmc_find_program(ctx, "m", &m), TFMC_OK);
    if (p && m) {
        TfmcValue tok[3] = { { .kind = TFMC_STR, .u.s = "a" }, { .kind = TFMC_STR, .u.s = "a" },
                             { .kind = TFMC_STR, .u.s = "a" } };
        TfmcValue out[3];
        CHECK_INT(tfmc_eval(ctx, p, tok, 0, out), TFMC_ERR_INPUT);
        CHECK_INT(tfmc_eval(ctx, p, tok, 3, out), TFMC_ERR_INPUT);
        CHECK_INT(tfmc_eval(ctx, p, tok, 2, out), TFMC_OK);
        CU_ASSERT(out[1].kind == TFMC_STR);
        CHECK_STR(out[1].u.s, "a");
        CHECK_INT(tfmc_program_kind(m), TFMC_PROGRAM_MODEL);
        CHECK_STR(tfmc_program_name(m), "m");
        CHECK_INT(tfmc_eval(ctx, m, tok, 1, out), TFMC_ERR_USAGE);
    }
    tfmc_context_free(ctx);
}

bool register_interp_tests(void)
{
    static const UnitTest tests[] = {
        { "reverse", test_reverse },
        { "histogram", test_histogram },
        { "sort", test_sort },
        { "frac_prevs", test_frac_prevs },
        { "selector and/or/not", test_selector_combinations },
        { "aggregate edge cases", test_aggregate_edge_cases },
        { "select with a lambda", test_select_lambda },
        { "Python arithmetic", test_python_arithmetic },
        { "conditional on one SOp", test_conditional_on_one_sop },
        { "Python logic and comparisons", test_python_logic },
        { "undefined propagation", test_undefined_propagation },
        { "eval errors", test_eval_errors },
    };
    return UNIT_SUITE("interpreter", tests);
}
