/* test_syntax_errors.c: syntax and lexical errors: counted, placed, and recovered from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static int count_items(const Item *it)
{
    int n = 0;
    for (; it; it = it->next) n++;
    return n;
}

static void test_syntax_errors_recovered(void)
{
    Fx fx;
    fx_parse(&fx, "rasp p {\n"
                  "  vocab {0..3};\n"
                  "  max_len 8;\n"
                  "  a = tokens + ;\n"
                  "  b = indices * * 2;\n"
                  "  return a;\n"
                  "}\n"
                  "rasp q { vocab {1}; max_len 1; return tokens; }\n");
    CHECK_INT(fx.nerrors, 2);
    CHECK_INT(fx.diags.n, 2);
    if (fx.diags.n == 2) {
        CHECK_INT(fx.diags.items[0].line, 4);
        CHECK_INT(fx.diags.items[0].column, 16);
        CHECK_HAS(fx.diags.items[0].message, "unexpected `;`");
        CHECK_INT(fx.diags.items[1].line, 5);
        CHECK_INT(fx.diags.items[1].column, 17);
        CHECK_HAS(fx.diags.items[1].message, "unexpected `*`");
    }
    /* both programs are there; the bad statements are dropped, the others kept */
    CHECK_INT(count_items(fx.items), 2);
    int nstmts = 0;
    for (Stmt *s = fx.items ? fx.items->body : NULL; s; s = s->next) nstmts++;
    CHECK_INT(nstmts, 3);
    if (fx.items && fx.items->next) {
        CHECK_STR(fx.items->next->name, "q");
        CU_ASSERT(fx.items->broken);        /* it held the syntax errors */
        CU_ASSERT(!fx.items->next->broken);
    }
    fx_free(&fx);

    fx_parse(&fx, "");
    CHECK_INT(fx.nerrors, 0);
    CU_ASSERT_PTR_NULL(fx.items);
    fx_free(&fx);
}

typedef struct LexCase {
    const char *stmt; /* on line 2, after two spaces */
    int column;
    const char *message, *hint;
} LexCase;

static void test_lexer_errors(void)
{
    static const LexCase cases[] = {
        { "x = a && b;", 9, "unknown operator", "write `and`" },
        { "x = a || b;", 9, "unknown operator", "write `or`" },
        { "x = !a;", 7, "unknown operator", "write `not`" },
        { "x = 12ab;", 7, "malformed number", NULL },
        { "x = 99999999999999999999;", 7, "integer literal is too large (more than 9223372036854775807)", NULL },
        { "x = \"abc;", 7, "unterminated string", NULL },
        { "x = \"a\\qb\";", 9, "unknown escape sequence", NULL },
        { "x = a @ b;", 9, "unexpected character `@`", NULL },
        { "x = a $ b;", 9, "unexpected character `$`", NULL },
        /* Python and C habits: one error each, under the token, saying what tfm writes */
        { "x = a // b;", 9, "tfm has no `//` operator", "floor(a / b)" },
        { "x = a ** 2;", 9, "tfm has no `**` operator", "x * x" },
        { "x = map(lambda v: v + 1, tokens);", 11, "`lambda` is Python", "write `v -> ...`" },
        { "x = map(lambda v, w: v, tokens, indices);", 11, "`lambda` is Python", "write `(v, w) -> ...`" },
        { "// a comment, it's not", 3, "`//` does not start a comment", "comments start with `#`" },
        { "x = 1; // a note", 10, "`//` does not start a comment", "comments start with `#`" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "rasp p {\n  %s\n  return tokens;\n}\n", cases[i].stmt);
        Fx fx;
        fx_parse(&fx, src);
        unit_check_int(fx.nerrors, 1, cases[i].stmt, __FILE__, __LINE__);
        unit_check_int(fx.diags.n, 1, cases[i].stmt, __FILE__, __LINE__);
        if (fx.diags.n >= 1) {
            const TfmcDiagnostic *d = &fx.diags.items[0];
            unit_check_int(d->line, 2, cases[i].stmt, __FILE__, __LINE__);
            unit_check_int(d->column, cases[i].column, cases[i].stmt, __FILE__, __LINE__);
            unit_check_has(d->message, cases[i].message, cases[i].stmt, __FILE__, __LINE__);
            if (cases[i].hint) unit_check_has(d->hint, cases[i].hint, cases[i].stmt, __FILE__, __LINE__);
        }
        fx_free(&fx);
    }
}

static void test_missing_semicolon(void)
{
    Fx fx;
    fx_parse(&fx, "rasp p {\n"
                  "  vocab {\"a\", \"b\"};\n"
                  "  max_len 8;\n"
                  "  x = tokens == \"a\"\n"
                  "  return x;\n"
                  "}\n");
    CHECK_INT(fx.nerrors, 1);
    if (fx.diags.n >= 1) {
        CHECK_INT(fx.diags.items[0].line, 4);
        CHECK_INT(fx.diags.items[0].column, 20);
        CHECK_HAS(fx.diags.items[0].message, "missing `;`");
    }
    fx_free(&fx);

    /* a def with parameters, and a def without */
    fx_parse(&fx, "def f(a, bb) { return a; }\ndef g() { return tokens; }\n");
    CHECK_INT(fx.nerrors, 0);
    CU_ASSERT_FATAL(fx.items && fx.items->next);
    CHECK_INT(fx.items->kind, ITEM_DEF);
    CHECK_INT(fx.items->nparams, 2);
    CHECK_STR(fx.items->params[1], "bb");
    CHECK_INT(fx.items->param_locs[1].first_column, 10);
    CHECK_INT(fx.items->next->nparams, 0);
    fx_free(&fx);
}

/* `a // b` reads on as `a / b`: the columns after it stay right (the scanner gives back what its
 * pattern took past the `//`). */
static void test_floor_division_columns(void)
{
    Fx fx;
    fx_parse(&fx, "rasp p {\n  x = a // b c;\n}\n");
    CHECK_INT(fx.diags.n, 2);
    if (fx.diags.n == 2) {
        CHECK_INT(fx.diags.items[0].column, 9);
        CHECK_INT(fx.diags.items[0].end_column, 10);
        CHECK_HAS(fx.diags.items[0].message, "tfm has no `//` operator");
        CHECK_INT(fx.diags.items[1].column, 14);
        CHECK_HAS(fx.diags.items[1].message, "unexpected name `c`");
    }
    fx_free(&fx);
}

/* Bison's stack holds YYMAXDEPTH (10000) entries: a chain of conditionals that keeps them all open
 * overflows it, and the message states that limit. */
static void test_parser_stack_limit(void)
{
    enum { CONDITIONALS = 6000 };
    const char *head = "rasp p {\n  vocab {0..3};\n  max_len 4;\n  x = ";
    const char *link = "tokens ? 1 : ";
    size_t cap = strlen(head) + CONDITIONALS * strlen(link) + 64;
    char *src = malloc(cap);
    CU_ASSERT_FATAL(src != NULL);
    size_t len = (size_t)snprintf(src, cap, "%s", head);
    for (int i = 0; i < CONDITIONALS; i++) len += (size_t)snprintf(src + len, cap - len, "%s", link);
    snprintf(src + len, cap - len, "2;\n  return x;\n}\n");
    Fx fx;
    fx_parse(&fx, src);
    CHECK_INT(fx.diags.n, 1);
    if (fx.diags.n >= 1) {
        CHECK_INT(fx.diags.items[0].line, 4);
        CHECK_HAS(fx.diags.items[0].message, "expression nested too deeply: the parser's stack holds 10000 entries");
    }
    fx_free(&fx);
    free(src);
}

bool register_syntax_errors_tests(void)
{
    static const UnitTest tests[] = {
        { "syntax errors recovered", test_syntax_errors_recovered },
        { "lexer errors", test_lexer_errors },
        { "missing semicolon, def headers", test_missing_semicolon },
        { "parser stack limit stated", test_parser_stack_limit },
        { "floor division columns", test_floor_division_columns },
    };
    return UNIT_SUITE("syntax errors", tests);
}
