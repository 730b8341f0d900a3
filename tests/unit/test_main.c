/* test_main.c: the CUnit runner of tfmc's unit tests, and the helpers every test file shares. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "unit.h"

/* ------------------------------------------------------------ registration */

bool unit_add_suite(const char *name, const UnitTest *tests, size_t n)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);
    if (!suite) {
        fprintf(stderr, "cannot add suite %s: %s\n", name, CU_get_error_msg());
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn)) {
            fprintf(stderr, "cannot add test %s: %s\n", tests[i].name, CU_get_error_msg());
            return false;
        }
    return true;
}

/* ------------------------------------------------- assertions with values */

static void report(bool ok, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void report(bool ok, const char *file, int line, const char *fmt, ...)
{
    char msg[1024] = "";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, ok ? "ok" : msg, file, "", CU_FALSE);
}

void unit_check_str(const char *actual, const char *expected, const char *expr, const char *file, int line)
{
    bool ok = actual && expected && strcmp(actual, expected) == 0;
    report(ok, file, line, "%s == \"%s\" (got \"%s\")", expr, expected ? expected : "(null)",
           actual ? actual : "(null)");
}

void unit_check_int(long long actual, long long expected, const char *expr, const char *file, int line)
{
    report(actual == expected, file, line, "%s == %lld (got %lld)", expr, expected, actual);
}

void unit_check_dbl(double actual, double expected, double tol, const char *expr, const char *file, int line)
{
    bool ok = fabs(actual - expected) <= tol;
    report(ok, file, line, "%s == %.17g within %g (got %.17g)", expr, expected, tol, actual);
}

void unit_check_has(const char *actual, const char *sub, const char *expr, const char *file, int line)
{
    bool ok = actual && strstr(actual, sub) != NULL;
    report(ok, file, line, "%s contains \"%s\" (got \"%s\")", expr, sub, actual ? actual : "(null)");
}

/* ----------------------------------------- the frontend: parse and check */

static void fx_init(Fx *fx, const char *text)
{
    memset(fx, 0, sizeof *fx);
    arena_init(&fx->arena, &libc_allocator, &fx->oom);
    fx->diags.arena = &fx->arena;
    fx->file.path = "test.tfm";
    fx->file.text = text;
    fx->file.len = strlen(text);
}

void fx_parse(Fx *fx, const char *text)
{
    fx_init(fx, text);
    if (setjmp(fx->oom)) {
        CU_FAIL("out of memory while parsing");
        return;
    }
    fx->items = parse_file(&fx->arena, &fx->file, &fx->diags, &fx->nerrors);
}

void fx_check(Fx *fx, const char *text)
{
    fx_init(fx, text);
    if (setjmp(fx->oom)) {
        CU_FAIL("out of memory while checking");
        return;
    }
    fx->items = parse_file(&fx->arena, &fx->file, &fx->diags, &fx->nerrors);
    if (fx->nerrors == 0) sema_check(&fx->arena, &fx->file, fx->items, &fx->diags, &fx->sema);
    for (int i = 0; i < fx->diags.n; i++)
        fprintf(stderr, "  (diagnostic %d:%d: %s)\n", fx->diags.items[i].line, fx->diags.items[i].column,
                fx->diags.items[i].message);
}

void fx_free(Fx *fx) { arena_free(&fx->arena); }

Stmt *fx_stmt(Fx *fx, int i)
{
    if (!fx->items) return NULL;
    Stmt *s = fx->items->body;
    while (s && i-- > 0) s = s->next;
    return s;
}

RaspNode *fx_node(const RaspProgram *p, const char *label)
{
    for (int i = 0; i < p->nnodes; i++)
        if (p->nodes[i]->label && strcmp(p->nodes[i]->label, label) == 0) return p->nodes[i];
    return NULL;
}

typedef struct Buf {
    char *p;
    size_t cap, len;
} Buf;

static void put(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Buf *b, const char *fmt, ...)
{
    if (b->len >= b->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n > 0) b->len += (size_t)n;
    if (b->len >= b->cap) b->len = b->cap - 1;
}

static const char *op_name(AstOp op)
{
    static const char *const names[] = {
        [OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/", [OP_MOD] = "%",
        [OP_EQ] = "==", [OP_NE] = "!=", [OP_LT] = "<", [OP_LE] = "<=", [OP_GT] = ">", [OP_GE] = ">=",
        [OP_AND] = "and", [OP_OR] = "or", [OP_NEG] = "neg", [OP_NOT] = "not", [OP_TRUE] = "true",
        [OP_FALSE] = "false",
    };
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "?op";
}

static void sexp_to(const Ast *e, Buf *b)
{
    if (!e) {
        put(b, "NULL");
        return;
    }
    switch (e->kind) {
    case AST_INT: put(b, "%lld", (long long)e->ival); break;
    case AST_FLOAT: put(b, "%gf", e->fval); break;
    case AST_STRING: put(b, "\"%s\"", e->str); break;
    case AST_BOOL: put(b, "%s", e->ival ? "true" : "false"); break;
    case AST_NAME: put(b, "%s", e->str); break;
    case AST_PARAM: put(b, "$%lld", (long long)e->ival); break;
    case AST_CALL:
        put(b, "(call %s", e->str);
        for (int i = 0; i < e->nargs; i++) {
            put(b, " ");
            sexp_to(e->args[i], b);
        }
        put(b, ")");
        break;
    case AST_UNARY:
        put(b, "(%s ", op_name(e->op));
        sexp_to(e->a, b);
        put(b, ")");
        break;
    case AST_BINARY:
        put(b, "(%s ", op_name(e->op));
        sexp_to(e->a, b);
        put(b, " ");
        sexp_to(e->b, b);
        put(b, ")");
        break;
    case AST_COND:
        put(b, "(? ");
        sexp_to(e->a, b);
        put(b, " ");
        sexp_to(e->b, b);
        put(b, " ");
        sexp_to(e->c, b);
        put(b, ")");
        break;
    case AST_LAMBDA:
        put(b, "(lambda (");
        for (int i = 0; i < e->nparams; i++) put(b, "%s%s", i ? " " : "", e->params[i]);
        put(b, ") ");
        sexp_to(e->a, b);
        put(b, ")");
        break;
    case AST_CMP_OP: put(b, "[%s]", op_name(e->op)); break;
    }
}

void sexp(const Ast *e, char *buf, size_t cap)
{
    Buf b = { buf, cap, 0 };
    buf[0] = '\0';
    sexp_to(e, &b);
}

void vs_text(const ValueSet *vs, char *buf, size_t cap)
{
    Buf b = { buf, cap, 0 };
    buf[0] = '\0';
    put(&b, "{");
    for (int i = 0; i < vs->n; i++) {
        Value v = vs->v[i];
        if (i) put(&b, ", ");
        switch (v.kind) {
        case TFMC_UNDEF: put(&b, "_"); break;
        case TFMC_BOOL: put(&b, "%s", v.u.b ? "true" : "false"); break;
        case TFMC_INT: put(&b, "%lld", (long long)v.u.i); break;
        case TFMC_FLOAT:
            if (v.u.f == floor(v.u.f) && fabs(v.u.f) < 1e15) put(&b, "%.1f", v.u.f);
            else put(&b, "%.6g", v.u.f);
            break;
        case TFMC_STR: put(&b, "\"%s\"", v.u.s); break;
        }
    }
    put(&b, "}");
}

/* ------------------------------------------------------ the public API */

static void print_diags(TfmcContext *ctx)
{
    for (size_t i = 0; i < tfmc_diagnostic_count(ctx); i++) {
        const TfmcDiagnostic *d = tfmc_diagnostic(ctx, i);
        fprintf(stderr, "  (diagnostic %d:%d: %s)\n", d->line, d->column, d->message);
    }
}

bool unit_load(Loaded *l, const char *src, const char *name, const char *file, int line)
{
    l->p = NULL;
    l->ctx = tfmc_context_new(NULL);
    report(l->ctx != NULL, file, line, "tfmc_context_new failed");
    if (!l->ctx) return false;
    TfmcStatus st = tfmc_load_string(l->ctx, "unit.tfm", src, strlen(src));
    report(st == TFMC_OK, file, line, "the program does not load (status %d)", (int)st);
    if (st != TFMC_OK) {
        print_diags(l->ctx);
        return false;
    }
    st = tfmc_find_program(l->ctx, name, &l->p);
    report(st == TFMC_OK && l->p, file, line, "no program %s", name ? name : "(the only one)");
    return st == TFMC_OK && l->p;
}

size_t unit_eval(Loaded *l, const char *input, TfmcValue *out, const char *file, int line)
{
    if (!l->p) {
        report(false, file, line, "no program loaded for input \"%s\"", input);
        return 0;
    }
    TfmcValue tokens[64];
    size_t n = 0;
    char err[256] = "";
    TfmcStatus st = tfmc_parse_tokens(l->p, input, tokens, 64, &n, err, sizeof err);
    report(st == TFMC_OK, file, line, "bad input \"%s\": %s", input, err);
    if (st != TFMC_OK) return 0;
    st = tfmc_eval(l->ctx, l->p, tokens, n, out);
    report(st == TFMC_OK, file, line, "tfmc_eval on \"%s\" failed (status %d)", input, (int)st);
    return st == TFMC_OK ? n : 0;
}

void unit_eval_eq(Loaded *l, const char *input, const char *expected, const char *file, int line)
{
    TfmcValue out[64];
    size_t n = unit_eval(l, input, out, file, line);
    if (n == 0) return;
    char text[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof text - 64; i++) {
        if (i) text[len++] = ' ';
        char one[64];
        tfmc_format_value(out[i], one, sizeof one);
        len += (size_t)snprintf(text + len, sizeof text - len, "%s", one);
    }
    report(strcmp(text, expected) == 0, file, line, "eval \"%s\" == \"%s\" (got \"%s\")", input, expected, text);
}

void unit_unload(Loaded *l)
{
    tfmc_context_free(l->ctx);
    l->ctx = NULL;
    l->p = NULL;
}

TfmcContext *unit_load_bad(const char *src, const char *file, int line)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcStatus st = tfmc_load_string(ctx, "bad.tfm", src, strlen(src));
    report(st == TFMC_ERR_COMPILE, file, line, "expected TFMC_ERR_COMPILE, got status %d", (int)st);
    return ctx;
}

const TfmcDiagnostic *unit_expect_diag(TfmcContext *ctx, int line, int col, const char *sub, const char *file,
                                       int at)
{
    for (size_t i = 0; i < tfmc_diagnostic_count(ctx); i++) {
        const TfmcDiagnostic *d = tfmc_diagnostic(ctx, i);
        if (d->line == line && d->column == col && strstr(d->message, sub)) {
            report(true, file, at, "-");
            return d;
        }
    }
    report(false, file, at, "no diagnostic %d:%d containing \"%s\"", line, col, sub);
    print_diags(ctx);
    return NULL;
}

void unit_expect_one_error(const char *src, int line, int col, const char *sub, const char *file, int at)
{
    TfmcContext *ctx = unit_load_bad(src, file, at);
    size_t n = tfmc_diagnostic_count(ctx);
    report(n == 1, file, at, "expected one diagnostic, got %zu", n);
    unit_expect_diag(ctx, line, col, sub, file, at);
    tfmc_context_free(ctx);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "cannot initialise CUnit: %s\n", CU_get_error_msg());
        return 1;
    }
    bool ok = register_lexer_parser_tests() && register_syntax_errors_tests() && register_sema_tests() &&
              register_diagnostics_tests() && register_interp_tests() && register_values_tests() &&
              register_api_tests() && register_runtime_tests() && register_pool_tests() && register_faults_tests() &&
              register_packed_tests() && register_quant_tests() && register_cpu_tests() && register_tokenizer_tests();
    if (!ok) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned asserts_failed = CU_get_number_of_failures();
    printf("\n%u tests failed, %u assertion failures, %u assertions in all\n", failed, asserts_failed,
           CU_get_number_of_asserts());
    CU_cleanup_registry();
    return failed != 0 || asserts_failed != 0;
}
