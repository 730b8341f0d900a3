/* test_lexer_parser.c: the scanner and the grammar: AST shapes, precedence and associativity,
 * lambdas, select's comparison arguments, vocabulary sets, model declarations, source locations.
 * Syntax errors are in test_syntax_errors.c. */
#include <stdio.h>
#include <string.h>

#include "unit.h"

/* Parse `x = EXPR;` inside a program and print the expression as an S-expression. */
static void parse_expr(const char *expr, char *out, size_t cap, const char *file, int line)
{
    char src[512];
    snprintf(src, sizeof src, "rasp p {\n  x = %s;\n}\n", expr);
    Fx fx;
    fx_parse(&fx, src);
    unit_check_int(fx.nerrors, 0, expr, file, line);
    Stmt *s = fx_stmt(&fx, 0);
    if (s && s->kind == STMT_ASSIGN) sexp(s->expr, out, cap);
    else snprintf(out, cap, "(no assignment)");
    fx_free(&fx);
}

typedef struct Shape {
    const char *src, *want;
} Shape;

static void check_shapes(const Shape *cases, size_t n, const char *file)
{
    for (size_t i = 0; i < n; i++) {
        char got[512];
        parse_expr(cases[i].src, got, sizeof got, file, (int)i);
        unit_check_str(got, cases[i].want, cases[i].src, file, (int)i);
    }
}

static void test_precedence(void)
{
    static const Shape cases[] = {
        { "a + b * c", "(+ a (* b c))" },
        { "a * b + c", "(+ (* a b) c)" },
        { "(a + b) * c", "(* (+ a b) c)" },
        { "a + b % c", "(+ a (% b c))" },
        { "a / b % c", "(% (/ a b) c)" },
        { "-a * b", "(* (neg a) b)" },
        { "a - -b", "(- a (neg b))" },
        { "a + 1 < b * 2", "(< (+ a 1) (* b 2))" },
        { "not a == b", "(not (== a b))" },
        { "not a and b", "(and (not a) b)" },
        { "not not a", "(not (not a))" },
        { "a or b and c", "(or a (and b c))" },
        { "a and b or c", "(or (and a b) c)" },
        { "a == b and c != d", "(and (== a b) (!= c d))" },
        { "a or b ? x : y", "(? (or a b) x y)" },
        { "a <= b >= c", "(>= (<= a b) c)" },
    };
    check_shapes(cases, sizeof cases / sizeof cases[0], __FILE__);
}

static void test_associativity(void)
{
    static const Shape cases[] = {
        { "a - b - c", "(- (- a b) c)" },
        { "a / b / c", "(/ (/ a b) c)" },
        { "a - b + c", "(+ (- a b) c)" },
        { "length - indices - 1", "(- (- length indices) 1)" },
        { "a and b and c", "(and (and a b) c)" },
        { "c ? a : b ? d : e", "(? c a (? b d e))" },
        { "c ? a ? x : y : b", "(? c (? a x y) b)" },
    };
    check_shapes(cases, sizeof cases / sizeof cases[0], __FILE__);
}

static void test_literals_and_calls(void)
{
    static const Shape cases[] = {
        { "f()", "(call f)" },
        { "f(a, b + 1)", "(call f a (+ b 1))" },
        { "(x) + 1", "(+ x 1)" },
        { "1.5 + 2e3", "(+ 1.5f 2000f)" },
        { "true or false", "(or true false)" },
        { "tokens == \"x\"", "(== tokens \"x\")" },
        { "min(abs(a), floor(b))", "(call min (call abs a) (call floor b))" },
    };
    check_shapes(cases, sizeof cases / sizeof cases[0], __FILE__);

    /* escapes in strings: \" \\ \t \n */
    Fx fx;
    fx_parse(&fx, "rasp p { x = \"q\\\"\\\\\\t\\n\"; }");
    CHECK_INT(fx.nerrors, 0);
    Stmt *s = fx_stmt(&fx, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_INT(s->expr->kind, AST_STRING);
    CHECK_STR(s->expr->str, "q\"\\\t\n");
    fx_free(&fx);
}

static void test_lambdas(void)
{
    static const Shape cases[] = {
        { "map(x -> x + 1, tokens)", "(call map (lambda (x) (+ x 1)) tokens)" },
        { "map((x, y) -> x * y, a, b)", "(call map (lambda (x y) (* x y)) a b)" },
        { "map(x -> x > 0 ? 1 : 0, s)", "(call map (lambda (x) (? (> x 0) 1 0)) s)" },
        { "map(x -> min(x, 2), s)", "(call map (lambda (x) (call min x 2)) s)" },
        { "map( ( a ,b )  -> a, s, t)", "(call map (lambda (a b) a) s t)" },
        { "select(k, q, (k, q) -> k < q and q > 0)", "(call select k q (lambda (k q) (and (< k q) (> q 0))))" },
        { "y -> y or 1", "(lambda (y) (or y 1))" },
    };
    check_shapes(cases, sizeof cases / sizeof cases[0], __FILE__);
}

static void test_select_comparisons(void)
{
    static const Shape cases[] = {
        { "select(a, b, ==)", "(call select a b [==])" },
        { "select(a, b, !=)", "(call select a b [!=])" },
        { "select(a, b, <)", "(call select a b [<])" },
        { "select(a, b, <=)", "(call select a b [<=])" },
        { "select(a, b, >)", "(call select a b [>])" },
        { "select(a, b, >=)", "(call select a b [>=])" },
        { "select(a, b, true)", "(call select a b true)" },
        { "select(a, b, false)", "(call select a b false)" },
        { "select(a, b, <) and not select(a, b, ==)", "(and (call select a b [<]) (not (call select a b [==])))" },
    };
    check_shapes(cases, sizeof cases / sizeof cases[0], __FILE__);
}

static void test_vocab_sets(void)
{
    Fx fx;
    fx_parse(&fx, "rasp p {\n"
                  "  vocab {0..7, -3, -5..-2, 9};\n"
                  "  max_len 8;\n"
                  "  causal;\n"
                  "  vocab {\"a\", \"b c\"};\n"
                  "  vocab {1.5, -2.5, true, false,};\n"
                  "  vocab {};\n"
                  "  max_len -4;\n"
                  "}\n");
    CHECK_INT(fx.nerrors, 0);
    Stmt *s = fx_stmt(&fx, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_INT(s->kind, STMT_HEADER);
    CHECK_STR(s->name, "vocab");
    CHECK_INT(s->hv_kind, HV_SET);
    CHECK_INT(s->nset, 4);
    CU_ASSERT_FATAL(s->nset == 4);
    CU_ASSERT(s->set[0].is_range && s->set[0].lo.kind == TFMC_INT);
    CHECK_INT(s->set[0].lo.u.i, 0);
    CHECK_INT(s->set[0].hi, 7);
    CU_ASSERT(!s->set[1].is_range && s->set[1].lo.kind == TFMC_INT);
    CHECK_INT(s->set[1].lo.u.i, -3);
    CU_ASSERT(s->set[2].is_range);
    CHECK_INT(s->set[2].lo.u.i, -5);
    CHECK_INT(s->set[2].hi, -2);
    CHECK_INT(s->set[3].lo.u.i, 9);
    /* `  vocab {0..7, -3, -5..-2, 9};`: the set spans 9..29, -3 is at 16..17, -5..-2 at 20..25 */
    CHECK_INT(s->hv_loc.first_column, 9);
    CHECK_INT(s->hv_loc.last_column, 29);
    CHECK_INT(s->set[1].loc.first_column, 16);
    CHECK_INT(s->set[1].loc.last_column, 17);
    CHECK_INT(s->set[2].loc.first_column, 20);
    CHECK_INT(s->set[2].loc.last_column, 25);

    s = s->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_STR(s->name, "max_len");
    CHECK_INT(s->hv_kind, HV_INT);
    CHECK_INT(s->hv_int, 8);

    s = s->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_STR(s->name, "causal");
    CHECK_INT(s->hv_kind, HV_NONE);

    s = s->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_INT(s->nset, 2);
    CU_ASSERT_FATAL(s->nset == 2);
    CU_ASSERT(s->set[0].lo.kind == TFMC_STR && s->set[1].lo.kind == TFMC_STR);
    CHECK_STR(s->set[0].lo.u.s, "a");
    CHECK_STR(s->set[1].lo.u.s, "b c");

    s = s->next; /* floats and booleans, with a trailing comma */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_INT(s->nset, 4);
    CU_ASSERT_FATAL(s->nset == 4);
    CU_ASSERT(s->set[0].lo.kind == TFMC_FLOAT && s->set[0].lo.u.f == 1.5);
    CU_ASSERT(s->set[1].lo.kind == TFMC_FLOAT && s->set[1].lo.u.f == -2.5);
    CU_ASSERT(s->set[2].lo.kind == TFMC_BOOL && s->set[2].lo.u.b);
    CU_ASSERT(s->set[3].lo.kind == TFMC_BOOL && !s->set[3].lo.u.b);

    s = s->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_INT(s->hv_kind, HV_SET);
    CHECK_INT(s->nset, 0);

    s = s->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CHECK_INT(s->hv_int, -4);
    CU_ASSERT_PTR_NULL(s->next);
    fx_free(&fx);
}

static const MAtom *atom(const MOpt *o, int i) { return o && i < o->natoms ? &o->atoms[i] : NULL; }

static void test_model_declaration(void)
{
    Fx fx;
    fx_parse(&fx, "model m {\n"
                  "  vocab 256;\n"
                  "  embed token, position rope(base 10000);\n"
                  "  block x 2 {\n"
                  "    attention heads 4, causal, norm rmsnorm(eps 1e-5), bias false, window -1;\n"
                  "    mlp hidden 172, act swiglu;\n"
                  "  }\n"
                  "  block shared x 3 { }\n"
                  "  weights \"w.safetensors\" as llama;\n"
                  "  init random();\n"
                  "  unembed tied;\n"
                  "}\n");
    CHECK_INT(fx.nerrors, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx.items);
    CHECK_INT(fx.items->kind, ITEM_MODEL);
    CHECK_STR(fx.items->name, "m");
    const MStmt *st = fx.items->mbody;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);

    /* vocab 256 */
    CHECK_STR(st->name, "vocab");
    CU_ASSERT(!st->is_block && st->opts && st->opts->natoms == 1 && !st->opts->next);
    CU_ASSERT(atom(st->opts, 0) && atom(st->opts, 0)->kind == MA_INT && atom(st->opts, 0)->ival == 256);

    /* embed token, position rope(base 10000) */
    st = st->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CHECK_STR(st->name, "embed");
    const MOpt *o = st->opts;
    CU_ASSERT_FATAL(o && o->natoms == 1 && o->next && o->next->natoms == 2 && !o->next->next);
    CHECK_STR(o->atoms[0].str, "token");
    o = o->next;
    CU_ASSERT(o->atoms[0].kind == MA_NAME);
    CHECK_STR(o->atoms[0].str, "position");
    CU_ASSERT_FATAL(o->atoms[1].kind == MA_CALL);
    CHECK_STR(o->atoms[1].str, "rope");
    const MOpt *args = o->atoms[1].args;
    CU_ASSERT_FATAL(args && args->natoms == 2 && !args->next);
    CHECK_STR(args->atoms[0].str, "base");
    CU_ASSERT(args->atoms[1].kind == MA_INT && args->atoms[1].ival == 10000);

    /* block x 2 { attention ...; mlp ...; } */
    st = st->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CHECK_STR(st->name, "block");
    CU_ASSERT(st->is_block);
    CU_ASSERT_FATAL(st->opts && st->opts->natoms == 2);
    CHECK_STR(st->opts->atoms[0].str, "x");
    CU_ASSERT(st->opts->atoms[1].kind == MA_INT && st->opts->atoms[1].ival == 2);
    const MStmt *att = st->body;
    CU_ASSERT_FATAL(att && att->next && !att->next->next);
    CHECK_STR(att->name, "attention");
    const MOpt *ao = att->opts;
    int nopts = 0;
    for (const MOpt *t = ao; t; t = t->next) nopts++;
    CHECK_INT(nopts, 5);
    CU_ASSERT_FATAL(nopts == 5);
    CHECK_STR(ao->atoms[0].str, "heads");
    CU_ASSERT(ao->atoms[1].ival == 4);
    ao = ao->next;
    CU_ASSERT(ao->natoms == 1);
    CHECK_STR(ao->atoms[0].str, "causal");
    ao = ao->next; /* norm rmsnorm(eps 1e-5) */
    CU_ASSERT_FATAL(ao->natoms == 2 && ao->atoms[1].kind == MA_CALL && ao->atoms[1].args);
    CHECK_STR(ao->atoms[1].str, "rmsnorm");
    CU_ASSERT_FATAL(ao->atoms[1].args->natoms == 2);
    CU_ASSERT(ao->atoms[1].args->atoms[1].kind == MA_FLOAT);
    CHECK_DBL(ao->atoms[1].args->atoms[1].fval, 1e-5, 1e-12);
    ao = ao->next; /* bias false */
    CU_ASSERT(ao->natoms == 2 && ao->atoms[1].kind == MA_BOOL && ao->atoms[1].ival == 0);
    ao = ao->next; /* window -1 */
    CU_ASSERT(ao->natoms == 2 && ao->atoms[1].kind == MA_INT && ao->atoms[1].ival == -1);
    CHECK_STR(att->next->name, "mlp");
    CU_ASSERT(att->next->opts && att->next->opts->next && att->next->opts->next->natoms == 2);

    /* block shared x 3 { } */
    st = st->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT(st->is_block && st->body == NULL);
    CU_ASSERT(st->opts && st->opts->natoms == 3);

    /* weights "w.safetensors" as llama */
    st = st->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_FATAL(st->opts && st->opts->natoms == 3);
    CU_ASSERT(st->opts->atoms[0].kind == MA_STRING);
    CHECK_STR(st->opts->atoms[0].str, "w.safetensors");
    CHECK_STR(st->opts->atoms[2].str, "llama");

    /* init random() */
    st = st->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT(st->opts && st->opts->atoms[0].kind == MA_CALL && st->opts->atoms[0].args == NULL);

    st = st->next;
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CHECK_STR(st->name, "unembed");
    CU_ASSERT_PTR_NULL(st->next);
    fx_free(&fx);
}

static void test_locations(void)
{
    Fx fx;
    fx_parse(&fx, "rasp rev {\n"
                  "  vocab {\"a\"};\n"
                  "  max_len 4; # comment ; } {\n"
                  "  opp = length - indices - 1;\n"
                  "\tx = map(y -> y, opp);\n"
                  "  return aggregate(select(indices, opp, ==), tokens);\n"
                  "}\n");
    CHECK_INT(fx.nerrors, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx.items);
    CHECK_INT(fx.items->loc.first_line, 1);
    CHECK_INT(fx.items->loc.first_column, 1);
    CHECK_INT(fx.items->name_loc.first_column, 6);
    CHECK_INT(fx.items->name_loc.last_column, 8);

    Stmt *s = fx_stmt(&fx, 2); /* opp = length - indices - 1; */
    CU_ASSERT_FATAL(s && s->kind == STMT_ASSIGN);
    CHECK_INT(s->name_loc.first_line, 4);
    CHECK_INT(s->name_loc.first_column, 3);
    CHECK_INT(s->name_loc.last_column, 5);
    CHECK_INT(s->loc.first_column, 3);
    CHECK_INT(s->loc.last_column, 29);
    const Ast *e = s->expr; /* a binary expression spans its operands; op_loc is the operator */
    CHECK_INT(e->loc.first_line, 4);
    CHECK_INT(e->loc.first_column, 9);
    CHECK_INT(e->loc.last_column, 28);
    CHECK_INT(e->op_loc.first_column, 26);
    CHECK_INT(e->op_loc.last_column, 26);
    CHECK_INT(e->a->loc.first_column, 9);
    CHECK_INT(e->a->loc.last_column, 24);
    CHECK_INT(e->a->op_loc.first_column, 16);
    CHECK_INT(e->a->a->loc.first_column, 9);
    CHECK_INT(e->a->a->loc.last_column, 14);
    CHECK_INT(e->a->b->loc.first_column, 18);
    CHECK_INT(e->a->b->loc.last_column, 24);
    CHECK_INT(e->b->loc.first_column, 28);

    s = s->next; /* a tab counts as one column */
    CU_ASSERT_FATAL(s && s->kind == STMT_ASSIGN);
    CHECK_INT(s->name_loc.first_line, 5);
    CHECK_INT(s->name_loc.first_column, 2);
    const Ast *lam = s->expr->args[0];
    CHECK_INT(lam->kind, AST_LAMBDA);
    CHECK_INT(lam->loc.first_column, 10);
    CHECK_INT(lam->loc.last_column, 15);
    CHECK_INT(lam->param_locs[0].first_column, 10);

    s = s->next; /* return aggregate(select(indices, opp, ==), tokens); */
    CU_ASSERT_FATAL(s && s->kind == STMT_RETURN);
    CHECK_INT(s->loc.first_line, 6);
    CHECK_INT(s->loc.first_column, 3);
    e = s->expr;
    CHECK_INT(e->loc.first_column, 10);
    CHECK_INT(e->loc.last_column, 18);
    CU_ASSERT_FATAL(e->nargs == 2 && e->args[0]->nargs == 3);
    CHECK_INT(e->args[0]->loc.first_column, 20);
    CHECK_INT(e->args[0]->args[2]->kind, AST_CMP_OP);
    CHECK_INT(e->args[0]->args[2]->loc.first_column, 41);
    CHECK_INT(e->args[0]->args[2]->loc.last_column, 42);
    CHECK_INT(e->args[1]->loc.first_line, 6);
    CHECK_INT(e->args[1]->loc.first_column, 46);
    CHECK_INT(e->args[1]->loc.last_column, 51);
    fx_free(&fx);
}

static void test_ast_format(void)
{
    Fx fx;
    fx_parse(&fx, "rasp p { x = (a + b) * -c; y = map(z -> z % 2 == 0 ? \"e\" : \"o\", s); w = a - (b - c); }");
    CHECK_INT(fx.nerrors, 0);
    char buf[128];
    Stmt *s = fx_stmt(&fx, 0);
    CU_ASSERT_FATAL(s && s->next && s->next->next);
    ast_format(s->expr, buf, sizeof buf);
    CHECK_STR(buf, "(a + b) * -c");
    ast_format(s->next->expr, buf, sizeof buf);
    CHECK_STR(buf, "map(z -> z % 2 == 0 ? \"e\" : \"o\", s)");
    ast_format(s->next->next->expr, buf, sizeof buf);
    CHECK_STR(buf, "a - (b - c)");
    ast_format(s->expr, buf, 6); /* truncated, still terminated */
    CHECK_STR(buf, "(a + ");
    fx_free(&fx);

    /* printed expressions parse back to the same tree */
    static const char *const exprs[] = {
        "a + b * c", "(a + b) * c", "a - (b - c)", "a - b - c", "-(a + b)", "-a * b", "not a == b",
        "not (a and b)", "(not a) == b", "a or b and c", "(a or b) and c", "c ? a : b ? d : e",
        "(c ? a : b) ? d : e", "c ? (a ? x : y) : b", "(a or b) ? x : y", "a / (b * c)", "a % b % c",
        "a % (b % c)", "f(x -> x + 1, (k, q) -> k < q)", "select(a, b, <=) and not select(a, b, ==)",
        "a == (b == c)", "-(-a)", "(a < b) < c", "a < (b < c)", "map(x -> (x ? 1 : 2) + 3, s)",
    };
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++) {
        char want[512], printed[512], back[512];
        parse_expr(exprs[i], want, sizeof want, __FILE__, __LINE__);
        Fx f2;
        char src[512];
        snprintf(src, sizeof src, "rasp p { x = %s; }", exprs[i]);
        fx_parse(&f2, src);
        Stmt *st = fx_stmt(&f2, 0);
        if (st && st->expr) ast_format(st->expr, printed, sizeof printed);
        else snprintf(printed, sizeof printed, "(no expression)");
        fx_free(&f2);
        parse_expr(printed, back, sizeof back, __FILE__, __LINE__);
        unit_check_str(back, want, exprs[i], __FILE__, __LINE__);
    }
}

bool register_lexer_parser_tests(void)
{
    static const UnitTest tests[] = {
        { "precedence", test_precedence },
        { "associativity", test_associativity },
        { "literals and calls", test_literals_and_calls },
        { "lambdas", test_lambdas },
        { "select comparison arguments", test_select_comparisons },
        { "vocabulary sets", test_vocab_sets },
        { "model declaration", test_model_declaration },
        { "locations", test_locations },
        { "ast_format", test_ast_format },
    };
    return UNIT_SUITE("lexer and parser", tests);
}
