/* test_sema.c: semantic analysis through the frontend API: value sets (Tracr's basis inference),
 * encodings, def expansion. Diagnostics are in test_diagnostics.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

/* Check src, which must have no diagnostics, and return its only program. */
static RaspProgram *check_ok(Fx *fx, const char *src)
{
    fx_check(fx, src);
    CHECK_INT(fx->nerrors, 0);
    CHECK_INT(fx->diags.n, 0);
    CHECK_INT(fx->sema.nprograms, 1);
    return fx->sema.nprograms == 1 ? fx->sema.programs[0] : NULL;
}

static RaspNode *node_op(const RaspProgram *p, RaspOp op)
{
    for (int i = 0; i < p->nnodes; i++)
        if (p->nodes[i]->op == op) return p->nodes[i];
    return NULL;
}

/* The value set of the output of `return EXPR;` in a program with this header. */
static void output_vs(const char *header, const char *expr, char *buf, size_t cap)
{
    char src[512];
    snprintf(src, sizeof src, "rasp p {\n%s\n  return %s;\n}\n", header, expr);
    Fx fx;
    RaspProgram *p = check_ok(&fx, src);
    if (p && p->output) vs_text(&p->output->vs, buf, cap);
    else snprintf(buf, cap, "(no program)");
    fx_free(&fx);
}

#define CHECK_VS(header, expr, want)                   \
    do {                                               \
        char got_[512];                                \
        output_vs((header), (expr), got_, sizeof got_); \
        CHECK_STR(got_, (want));                       \
    } while (0)

static void test_builtin_value_sets(void)
{
    Fx fx;
    RaspProgram *p = check_ok(&fx, "rasp p {\n"
                                   "  vocab {\"c\", \"a\", \"b\"};\n"
                                   "  max_len 4;\n"
                                   "  w = selector_width(select(tokens, tokens, ==) and select(indices + length, indices, <));\n"
                                   "  return w;\n"
                                   "}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CHECK_INT(p->max_len, 4);
    char buf[256];
    vs_text(&p->vocab, buf, sizeof buf);
    CHECK_STR(buf, "{\"a\", \"b\", \"c\"}");
    RaspNode *n = node_op(p, RN_TOKENS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    vs_text(&n->vs, buf, sizeof buf);
    CHECK_STR(buf, "{\"a\", \"b\", \"c\"}");
    n = node_op(p, RN_INDICES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    vs_text(&n->vs, buf, sizeof buf);
    CHECK_STR(buf, "{0, 1, 2, 3}");
    n = node_op(p, RN_LENGTH);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    vs_text(&n->vs, buf, sizeof buf);
    CHECK_STR(buf, "{1, 2, 3, 4}");
    n = node_op(p, RN_SEQMAP); /* indices + length: 0..3 + 1..4 */
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    vs_text(&n->vs, buf, sizeof buf);
    CHECK_STR(buf, "{1, 2, 3, 4, 5, 6, 7}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->output);
    CHECK_INT(p->output->op, RN_SELECTOR_WIDTH);
    CHECK_STR(p->output->label, "w");
    vs_text(&p->output->vs, buf, sizeof buf);
    CHECK_STR(buf, "{0, 1, 2, 3, 4}");
    fx_free(&fx);

    /* an integer range vocabulary, with negative numbers, comes out sorted */
    p = check_ok(&fx, "rasp p { vocab {3, -2..0, 7}; max_len 1; return tokens; }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    vs_text(&p->vocab, buf, sizeof buf);
    CHECK_STR(buf, "{-2, -1, 0, 3, 7}");
    CHECK_INT(p->max_len, 1);
    fx_free(&fx);
}

static void test_map_value_sets(void)
{
    const char *h03 = "  vocab {0..3};\n  max_len 4;";
    /* every vocabulary value through the lambda; 12 / 0 is dropped */
    CHECK_VS(h03, "map(x -> 12 / x, tokens)", "{4.0, 6.0, 12.0}");
    CHECK_VS(h03, "map(x -> x % 2, tokens)", "{0, 1}");
    CHECK_VS(h03, "map(x -> x - 2, tokens) * 2", "{-4, -2, 0, 2}");
    CHECK_VS(h03, "tokens / 2", "{0.0, 0.5, 1.0, 1.5}");
    CHECK_VS(h03, "tokens > 1", "{false, true}");
    CHECK_VS(h03, "map(x -> x > 5, tokens)", "{false}");
    CHECK_VS(h03, "map(x -> -x, tokens) % 3", "{0, 1, 2}");
    /* two SOps: every pair; pairs with a zero divisor are dropped */
    CHECK_VS("  vocab {1, 2};\n  max_len 3;", "map((x, y) -> x / y, tokens, indices)", "{0.5, 1.0, 2.0}");
    CHECK_VS("  vocab {0..2};\n  max_len 3;", "tokens * indices", "{0, 1, 2, 4}");
    CHECK_VS("  vocab {\"a\", \"b\"};\n  max_len 2;", "map(x -> x == \"a\" ? \"yes\" : \"no\", tokens)",
             "{\"no\", \"yes\"}");
    /* a constant folds into a full sequence of one value */
    CHECK_VS(h03, "2 * 3 + 1", "{7}");
    /* categorical aggregate: the values of its input */
    CHECK_VS(h03, "aggregate(select(indices, indices, ==), tokens + 10)", "{10, 11, 12, 13}");
}

/* The numerical output's value set, checked against the sorted list want[0..n). */
static void check_means(const char *src, const double *want, int n, int line)
{
    Fx fx;
    fx_check(&fx, src);
    unit_check_int(fx.diags.n, 0, "diagnostics", __FILE__, line);
    unit_check_int(fx.sema.nprograms, 1, "programs", __FILE__, line);
    if (fx.sema.nprograms == 1) {
        const RaspNode *out = fx.sema.programs[0]->output;
        unit_check_int(out->op, RN_AGGREGATE, "op", __FILE__, line);
        unit_check_int(out->mean, 1, "mean", __FILE__, line);
        unit_check_int(out->enc, ENC_NUMERICAL, "encoding", __FILE__, line);
        unit_check_int(out->vs.n, n, "value count", __FILE__, line);
        for (int i = 0; i < n && i < out->vs.n; i++) {
            CU_ASSERT(value_is_number(out->vs.v[i]));
            unit_check_dbl(value_number(out->vs.v[i]), want[i], 1e-12, "mean value", __FILE__, line);
        }
    }
    fx_free(&fx);
}

static void test_numerical_mean_value_sets(void)
{
    /* means of 1..4 values from {0, 1}: every k/m with m <= 4, plus 0 for an empty selection */
    static const double four[] = { 0, 0.25, 1.0 / 3, 0.5, 2.0 / 3, 0.75, 1 };
    check_means("rasp p {\n"
                "  vocab {\"a\", \"b\"};\n"
                "  max_len 4;\n"
                "  isa = numerical(map(x -> x == \"a\" ? 1 : 0, tokens));\n"
                "  prevs = select(indices, indices, <=);\n"
                "  return numerical(aggregate(prevs, isa));\n"
                "}\n",
                four, 7, __LINE__);
    static const double three[] = { 0, 1.0 / 3, 0.5, 2.0 / 3, 1 };
    check_means("rasp p {\n"
                "  vocab {\"a\", \"b\"};\n"
                "  max_len 3;\n"
                "  return numerical(aggregate(select(indices, indices, <=), numerical(tokens == \"a\")));\n"
                "}\n",
                three, 5, __LINE__);
    /* {0, 2} with max_len 2: 0, 2, (0+2)/2 */
    static const double two[] = { 0, 1, 2 };
    check_means("rasp p { vocab {0, 2}; max_len 2; return aggregate(select(tokens, tokens, true), numerical(tokens)); }",
                two, 3, __LINE__);
    /* {1, 3}, max_len 2: 1, 3, 2 and the empty selection's 0 */
    static const double odd[] = { 0, 1, 2, 3 };
    check_means("rasp p { vocab {1, 3}; max_len 2; return aggregate(select(tokens, tokens, true), numerical(tokens)); }",
                odd, 4, __LINE__);
}

static void test_encodings(void)
{
    Fx fx;
    RaspProgram *p = check_ok(&fx, "rasp p {\n"
                                   "  vocab {0..3};\n"
                                   "  max_len 4;\n"
                                   "  prevs = select(indices, indices, <=);\n"
                                   "  big = tokens > 1;\n"
                                   "  nbig = numerical(big);\n"
                                   "  cbig = categorical(nbig);\n"
                                   "  cat = aggregate(prevs, tokens);\n"
                                   "  num = aggregate(prevs, nbig);\n"
                                   "  fresh = numerical(aggregate(prevs, big));\n"
                                   "  nt = numerical(tokens);\n"
                                   "  return selector_width(prevs) + cat + cbig;\n"
                                   "}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    RaspNode *big = fx_node(p, "big"), *nbig = fx_node(p, "nbig"), *cbig = fx_node(p, "cbig");
    RaspNode *cat = fx_node(p, "cat"), *num = fx_node(p, "num"), *fresh = fx_node(p, "fresh");
    RaspNode *nt = fx_node(p, "nt"), *tokens = fx_node(p, "tokens");
    CU_ASSERT_FATAL(big && nbig && cbig && cat && num && fresh && nt && tokens);
    CHECK_INT(big->enc, ENC_CATEGORICAL);   /* the default */
    CHECK_INT(nbig->enc, ENC_NUMERICAL);
    CU_ASSERT(nbig != big);                  /* a named SOp keeps its encoding: numerical() copies it */
    CHECK_INT(cbig->enc, ENC_CATEGORICAL);
    CU_ASSERT(cbig != nbig);
    CHECK_INT(cat->enc, ENC_CATEGORICAL);
    CU_ASSERT(!cat->mean);
    CHECK_INT(num->enc, ENC_NUMERICAL);      /* aggregating a numerical SOp is a numerical mean */
    CU_ASSERT(num->mean);
    CHECK_INT(fresh->op, RN_AGGREGATE);
    CHECK_INT(fresh->enc, ENC_NUMERICAL);
    CU_ASSERT(fresh->mean);
    char buf[256];
    vs_text(&fresh->vs, buf, sizeof buf);   /* means of {false, true} over 1..4 values, as numbers */
    CU_ASSERT(fresh->vs.n == 7);
    CHECK_INT(tokens->enc, ENC_CATEGORICAL);
    CHECK_INT(nt->enc, ENC_NUMERICAL);
    CU_ASSERT(nt->in[0] == tokens);
    vs_text(&nt->vs, buf, sizeof buf);
    CHECK_STR(buf, "{0, 1, 2, 3}");
    CHECK_INT(p->output->enc, ENC_CATEGORICAL);
    fx_free(&fx);
}

static void test_def_expansion(void)
{
    Fx fx;
    RaspProgram *p = check_ok(&fx, "def inc(s) {\n"
                                   "  t = s + 1;\n"
                                   "  return t;\n"
                                   "}\n"
                                   "def twice(s) {\n"
                                   "  return inc(inc(s));\n"
                                   "}\n"
                                   "def width(sel) { return selector_width(sel); }\n"
                                   "rasp p {\n"
                                   "  vocab {0..3};\n"
                                   "  max_len 4;\n"
                                   "  a = twice(tokens);\n"
                                   "  b = width(select(a, a, ==));\n"
                                   "  return a;\n"
                                   "}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CHECK_STR(p->name, "p");
    /* tokens, the two expansions of inc, select, selector_width */
    CHECK_INT(p->nnodes, 5);
    RaspNode *out = p->output, *first = fx_node(p, "inc.t");
    CU_ASSERT_FATAL(out && first);
    CHECK_INT(out->op, RN_MAP);
    CU_ASSERT(out != first);
    CU_ASSERT(out->in[0] == first);
    CU_ASSERT(first->in[0] && first->in[0]->op == RN_TOKENS);
    char buf[128];
    vs_text(&first->vs, buf, sizeof buf);
    CHECK_STR(buf, "{1, 2, 3, 4}");
    vs_text(&out->vs, buf, sizeof buf);
    CHECK_STR(buf, "{2, 3, 4, 5}");
    RaspNode *b = fx_node(p, "b");
    CU_ASSERT_FATAL(b != NULL);
    CHECK_INT(b->op, RN_SELECTOR_WIDTH);
    CU_ASSERT(b->in[0] && b->in[0]->is_selector && b->in[0]->in[0] == out && b->in[0]->in[1] == out);
    /* every node id is its index: a topological order */
    for (int i = 0; i < p->nnodes; i++) {
        CHECK_INT(p->nodes[i]->id, i);
        for (int k = 0; k < 2; k++)
            if (p->nodes[i]->in[k]) CU_ASSERT(p->nodes[i]->in[k]->id < i);
    }
    fx_free(&fx);
}

static void test_select_nodes(void)
{
    Fx fx;
    RaspProgram *p = check_ok(&fx, "rasp p {\n"
                                   "  vocab {0..3};\n"
                                   "  max_len 4;\n"
                                   "  lt = select(tokens, indices, <);\n"
                                   "  all = select(tokens, tokens, true);\n"
                                   "  fn = select(tokens, indices, (k, q) -> k + q == 3);\n"
                                   "  both = lt and not fn;\n"
                                   "  return aggregate(both or all, tokens);\n"
                                   "}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    RaspNode *lt = fx_node(p, "lt"), *all = fx_node(p, "all"), *fn = fx_node(p, "fn"), *both = fx_node(p, "both");
    CU_ASSERT_FATAL(lt && all && fn && both);
    CU_ASSERT(lt->is_selector && lt->op == RN_SELECT && lt->fn == NULL && lt->cmp == OP_LT);
    CU_ASSERT(lt->in[0]->op == RN_TOKENS && lt->in[1]->op == RN_INDICES); /* keys, queries */
    CHECK_INT(all->cmp, OP_TRUE);
    CU_ASSERT_PTR_NOT_NULL(fn->fn);
    CHECK_INT(both->op, RN_SEL_AND);
    CU_ASSERT(both->in[0] == lt && both->in[1] && both->in[1]->op == RN_SEL_NOT && both->in[1]->in[0] == fn);
    const RaspNode *agg = p->output;
    CU_ASSERT_FATAL(agg && agg->op == RN_AGGREGATE);
    CU_ASSERT(agg->in[0]->op == RN_SEL_OR && agg->in[0]->in[0] == both && agg->in[0]->in[1] == all);

    /* interp_select_pair: key k, query q */
    Value k1 = value_int(1), k2 = value_int(2), undef = { 0 };
    CU_ASSERT(interp_select_pair(lt, k1, k2));   /* 1 < 2 */
    CU_ASSERT(!interp_select_pair(lt, k2, k1));
    CU_ASSERT(!interp_select_pair(lt, k1, k1));
    CU_ASSERT(interp_select_pair(fn, k1, k2));   /* 1 + 2 == 3 */
    CU_ASSERT(!interp_select_pair(fn, k1, k1));
    CU_ASSERT(!interp_select_pair(all, undef, k1)); /* undefined never matches */
    CU_ASSERT(interp_select_pair(all, k1, k2));
    fx_free(&fx);
}

static void test_interp_run_trace(void)
{
    Fx fx;
    RaspProgram *p = check_ok(&fx, "rasp p {\n"
                                   "  vocab {\"a\", \"b\"};\n"
                                   "  max_len 5;\n"
                                   "  same = select(tokens, tokens, ==);\n"
                                   "  n = selector_width(same);\n"
                                   "  return n * 10 + indices;\n"
                                   "}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    Arena scratch;
    jmp_buf oom;
    arena_init(&scratch, &libc_allocator, &oom);
    if (setjmp(oom)) {
        CU_FAIL("out of memory");
        fx_free(&fx);
        return;
    }
    Value toks[3] = { p->vocab.v[1], p->vocab.v[0], p->vocab.v[1] }; /* b a b */
    RaspTrace t;
    interp_run(p, toks, 3, &scratch, &t);
    CHECK_INT(t.n, 3);
    RaspNode *same = fx_node(p, "same"), *n = fx_node(p, "n");
    CU_ASSERT_FATAL(same && n && t.sel[same->id] && t.sop[n->id]);
    CU_ASSERT_PTR_NULL(t.sop[same->id]);
    CU_ASSERT_PTR_NULL(t.sel[n->id]);
    static const bool want_sel[9] = { 1, 0, 1, 0, 1, 0, 1, 0, 1 }; /* [query][key] */
    for (int i = 0; i < 9; i++) CHECK_INT(t.sel[same->id][i], want_sel[i]);
    static const int64_t want_n[3] = { 2, 1, 2 }, want_out[3] = { 20, 11, 22 };
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(t.sop[n->id][i].kind == TFMC_INT);
        CHECK_INT(t.sop[n->id][i].u.i, want_n[i]);
        CU_ASSERT(t.sop[p->output->id][i].kind == TFMC_INT);
        CHECK_INT(t.sop[p->output->id][i].u.i, want_out[i]);
    }
    arena_free(&scratch);
    fx_free(&fx);
}

bool register_sema_tests(void)
{
    static const UnitTest tests[] = {
        { "built-in value sets", test_builtin_value_sets },
        { "map value sets", test_map_value_sets },
        { "numerical mean value sets", test_numerical_mean_value_sets },
        { "encodings", test_encodings },
        { "def expansion", test_def_expansion },
        { "select nodes", test_select_nodes },
        { "interp_run trace", test_interp_run_trace },
    };
    return UNIT_SUITE("sema", tests);
}
