/* test_values.c: scalar values (Python semantics), value sets, lambda bodies through scalar_eval,
 * the arena, and name suggestions. */
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static Value str(const char *s)
{
    Value v = { 0 };
    v.kind = TFMC_STR;
    v.u.s = s;
    return v;
}

static int sign(int x) { return (x > 0) - (x < 0); }

static void test_value_basics(void)
{
    Value i = value_int(-42), f = value_float(2.5), t = value_bool(true), b = value_bool(false), u = { 0 };
    CU_ASSERT(i.kind == TFMC_INT && i.u.i == -42);
    CU_ASSERT(f.kind == TFMC_FLOAT && f.u.f == 2.5);
    CU_ASSERT(t.kind == TFMC_BOOL && t.u.b && b.kind == TFMC_BOOL && !b.u.b);
    CU_ASSERT(u.kind == TFMC_UNDEF);
    CU_ASSERT(value_is_number(i) && value_is_number(f) && value_is_number(t));
    CU_ASSERT(!value_is_number(str("1")) && !value_is_number(u));
    CHECK_DBL(value_number(t), 1.0, 0);
    CHECK_DBL(value_number(b), 0.0, 0);
    CHECK_DBL(value_number(i), -42.0, 0);
    CHECK_DBL(value_number(f), 2.5, 0);
}

static void test_value_eq_cmp(void)
{
    char a1[] = "abc", a2[] = "abc"; /* equal text at different addresses */
    CU_ASSERT(value_eq(value_int(1), value_float(1.0)));
    CU_ASSERT(value_eq(value_bool(true), value_int(1)));
    CU_ASSERT(value_eq(value_bool(false), value_float(0.0)));
    CU_ASSERT(!value_eq(value_bool(true), value_int(2)));
    CU_ASSERT(!value_eq(str("1"), value_int(1)));
    CU_ASSERT(!value_eq(value_int(1), str("1")));
    CU_ASSERT(value_eq(str(a1), str(a2)));
    CU_ASSERT(!value_eq(str("abc"), str("abd")));
    CU_ASSERT(!value_eq(value_int(2), value_int(3)));
    CU_ASSERT(!value_eq(value_float(0.1), value_float(0.2)));
    Value u = { 0 };
    CU_ASSERT(value_eq(u, u));
    CU_ASSERT(!value_eq(u, value_int(0)));
    CU_ASSERT(!value_eq(value_int(0), u));
    /* two integers compare exactly, even beyond 2^53 */
    CU_ASSERT(!value_eq(value_int(9007199254740993LL), value_int(9007199254740992LL)));
    CU_ASSERT(value_cmp(value_int(9007199254740992LL), value_int(9007199254740993LL)) < 0);
    /* the order of value sets: undefined, numbers, strings */
    CU_ASSERT(value_cmp(u, value_int(-100)) < 0);
    CU_ASSERT(value_cmp(value_int(100), str("0")) < 0);
    CU_ASSERT(value_cmp(value_int(-5), value_float(-4.5)) < 0);
    CU_ASSERT(value_cmp(value_float(-4.5), value_int(-4)) < 0);
    CU_ASSERT(value_cmp(value_bool(false), value_float(0.5)) < 0);
    CU_ASSERT(value_cmp(str("a"), str("b")) < 0);
    CU_ASSERT(value_cmp(str("b"), str("ab")) > 0);
    CHECK_INT(value_cmp(value_int(3), value_int(3)), 0);
    CHECK_INT(value_cmp(str(a1), str(a2)), 0);
    Value xs[] = { value_int(1), value_float(1.0), value_bool(true), value_float(-3), str("x"), u };
    for (size_t p = 0; p < 6; p++)
        for (size_t q = 0; q < 6; q++) CHECK_INT(sign(value_cmp(xs[p], xs[q])), -sign(value_cmp(xs[q], xs[p])));
}

static void test_value_sets(void)
{
    Value v[] = { value_int(3), str("b"), value_int(1), str("a"), value_float(2.5), value_float(1.0), value_int(3),
                  value_bool(true) };
    int n = valueset_normalise(v, 8);
    CHECK_INT(n, 5); /* 1, 1.0 and true are one value */
    if (n == 5) {
        CHECK_DBL(value_number(v[0]), 1.0, 0);
        CU_ASSERT(v[1].kind == TFMC_FLOAT && v[1].u.f == 2.5);
        CU_ASSERT(v[2].kind == TFMC_INT && v[2].u.i == 3);
        CU_ASSERT(v[3].kind == TFMC_STR && v[4].kind == TFMC_STR);
        CHECK_STR(v[3].u.s, "a");
        CHECK_STR(v[4].u.s, "b");
    }
    CHECK_INT(valueset_normalise(v, 0), 0);
    CHECK_INT(valueset_normalise(v, 1), 1);

    Value w[] = { value_int(0), value_int(1), value_int(2), str("a") };
    ValueSet s = { w, 4 };
    CHECK_INT(valueset_index(&s, value_float(2.0)), 2);
    CHECK_INT(valueset_index(&s, value_bool(true)), 1);
    CHECK_INT(valueset_index(&s, value_int(0)), 0);
    CHECK_INT(valueset_index(&s, str("a")), 3);
    CHECK_INT(valueset_index(&s, str("2")), -1);
    CHECK_INT(valueset_index(&s, value_int(5)), -1);
    CHECK_INT(valueset_index(&s, value_float(0.5)), -1);
    CU_ASSERT(valueset_contains(&s, value_int(1)));
    CU_ASSERT(!valueset_contains(&s, str("b")));
    ValueSet empty = { NULL, 0 };
    CU_ASSERT(!valueset_contains(&empty, value_int(0)));
}

/* The checked body of `map(x -> EXPR, tokens)`: parameter 0 is x. */
static const Ast *body_of(Fx *fx, const char *expr)
{
    char src[256];
    snprintf(src, sizeof src, "rasp p { vocab {0..3}; max_len 2; return map(x -> %s, tokens); }", expr);
    fx_check(fx, src);
    CHECK_INT(fx->diags.n, 0);
    if (fx->sema.nprograms != 1 || !fx->sema.programs[0]->output) return NULL;
    const RaspNode *n = fx->sema.programs[0]->output;
    return n->op == RN_MAP ? n->fn : NULL;
}

typedef struct ScalarCase {
    const char *expr;
    Value x;
    ScalarStatus status;
    Value want;         /* when SCALAR_OK: kind and value */
    const char *msg;    /* when SCALAR_TYPE: a substring of the message */
} ScalarCase;

static void test_scalar_eval(void)
{
    const ScalarCase cases[] = {
        { "x % 3", value_int(-7), SCALAR_OK, value_int(2), NULL },
        { "x % -3", value_int(7), SCALAR_OK, value_int(-2), NULL },
        { "x % 3", value_int(-9), SCALAR_OK, value_int(0), NULL },
        { "7 % x", value_int(0), SCALAR_ARITH, { 0 }, NULL },
        { "10 / x", value_int(4), SCALAR_OK, value_float(2.5), NULL },
        { "10 / x", value_int(0), SCALAR_ARITH, { 0 }, NULL },
        { "10 / x", value_float(0.0), SCALAR_ARITH, { 0 }, NULL },
        { "x / 2", value_int(1), SCALAR_OK, value_float(0.5), NULL },
        { "x * 2.5", value_int(2), SCALAR_OK, value_float(5.0), NULL },
        { "x + 1", value_bool(true), SCALAR_OK, value_int(2), NULL },
        { "-x", value_bool(true), SCALAR_OK, value_int(-1), NULL },
        { "x + 1", str("a"), SCALAR_TYPE, { 0 }, "`+` needs numbers, not the string `a` and the integer `1`" },
        { "abs(x)", str("a"), SCALAR_TYPE, { 0 }, "`abs` needs a number" },
        { "x < 1", str("a"), SCALAR_TYPE, { 0 }, "`<` cannot order" },
        { "x == 1", str("1"), SCALAR_OK, value_bool(false), NULL },
        { "x != 1", str("1"), SCALAR_OK, value_bool(true), NULL },
        { "x == 1", value_float(1.0), SCALAR_OK, value_bool(true), NULL },
        { "floor(x)", value_float(-2.5), SCALAR_OK, value_int(-3), NULL },
        { "floor(x)", value_float(2.999), SCALAR_OK, value_int(2), NULL },
        { "floor(x)", value_bool(true), SCALAR_OK, value_int(1), NULL },
        { "abs(x)", value_float(-1.5), SCALAR_OK, value_float(1.5), NULL },
        { "abs(x)", value_int(-4), SCALAR_OK, value_int(4), NULL },
        { "max(x, 2)", value_float(2.0), SCALAR_OK, value_float(2.0), NULL }, /* the first of equals */
        { "min(x, 2)", value_float(2.0), SCALAR_OK, value_float(2.0), NULL },
        { "min(2, x)", value_float(2.0), SCALAR_OK, value_int(2), NULL },
        { "max(x, 2)", value_int(-3), SCALAR_OK, value_int(2), NULL },
        { "x ? 1 : 0", str(""), SCALAR_OK, value_int(0), NULL },
        { "x ? 1 : 0", str("q"), SCALAR_OK, value_int(1), NULL },
        { "x ? 1 : 0", value_float(0.0), SCALAR_OK, value_int(0), NULL },
        { "x and 1", value_float(0.0), SCALAR_OK, value_float(0.0), NULL },
        { "x or 1", value_float(0.0), SCALAR_OK, value_int(1), NULL },
        { "x or 1", value_int(-2), SCALAR_OK, value_int(-2), NULL },
        { "not x", str(""), SCALAR_OK, value_bool(true), NULL },
        { "x > 0 and x < 3 or x == 10", value_int(10), SCALAR_OK, value_bool(true), NULL },
        { "x > 0 and x < 3 or x == 10", value_int(3), SCALAR_OK, value_bool(false), NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ScalarCase *c = &cases[i];
        Fx fx;
        const Ast *body = body_of(&fx, c->expr);
        unit_check_int(body != NULL, 1, c->expr, __FILE__, __LINE__);
        if (body) {
            Value out = { 0 };
            char msg[256] = "";
            ScalarStatus st = scalar_eval(body, &c->x, &out, msg, sizeof msg);
            unit_check_int(st, c->status, c->expr, __FILE__, __LINE__);
            if (st == SCALAR_OK && c->status == SCALAR_OK) {
                unit_check_int(out.kind, c->want.kind, c->expr, __FILE__, __LINE__);
                unit_check_int(value_eq(out, c->want), 1, c->expr, __FILE__, __LINE__);
            }
            if (c->msg) unit_check_has(msg, c->msg, c->expr, __FILE__, __LINE__);
        }
        fx_free(&fx);
    }
}

/* ---------------------------------------------------------------- arena */

typedef struct Counter {
    long live, allocs;
    bool fail;
} Counter;

static void *counting_realloc(void *ud, void *ptr, size_t size)
{
    Counter *c = ud;
    if (size == 0) {
        if (ptr) c->live--;
        free(ptr);
        return NULL;
    }
    if (c->fail) return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr) {
        c->live++;
        c->allocs++;
    }
    return p;
}

static void test_arena(void)
{
    Counter c = { 0, 0, false };
    TfmcAllocator alloc = { counting_realloc, &c };
    Arena a;
    jmp_buf oom;
    arena_init(&a, &alloc, &oom);
    if (setjmp(oom)) {
        CU_FAIL("unexpected out of memory");
        arena_free(&a);
        return;
    }
    unsigned char *p[50];
    for (int i = 0; i < 50; i++) {
        p[i] = arena_alloc(&a, (size_t)(3 + i * 7));
        CHECK_INT((uintptr_t)p[i] % alignof(max_align_t), 0);
        memset(p[i], i, (size_t)(3 + i * 7));
    }
    for (int i = 0; i < 50; i++) /* no allocation overlaps another */
        for (int k = 0; k < 3 + i * 7; k++)
            if (p[i][k] != (unsigned char)i) {
                CU_FAIL("arena allocations overlap");
                i = 50;
                break;
            }
    int *z = arena_zalloc(&a, 64 * sizeof(int));
    int zeros = 0;
    for (int i = 0; i < 64; i++) zeros += z[i] == 0;
    CHECK_INT(zeros, 64);
    unsigned char *big = arena_alloc(&a, 1 << 20); /* larger than a block */
    big[0] = 1;
    big[(1 << 20) - 1] = 2;
    CHECK_STR(arena_strndup(&a, "hello", 3), "hel");
    CHECK_STR(arena_strdup(&a, "world"), "world");
    CHECK_STR(arena_printf(&a, "%d-%s-%.2f", 42, "x", 0.5), "42-x-0.50");
    int *v = NULL, cap = 0;
    v = arena_grow(&a, v, &cap, 5, sizeof(int));
    CU_ASSERT(cap >= 5);
    for (int i = 0; i < 5; i++) v[i] = i * i;
    int old = cap;
    v = arena_grow(&a, v, &cap, 100, sizeof(int));
    CU_ASSERT(cap >= 100 && cap > old);
    CHECK_INT(v[4], 16);
    CHECK_INT(v[2], 4);
    CU_ASSERT(c.allocs >= 2);
    CHECK_INT(c.live, c.allocs);
    arena_free(&a);
    CHECK_INT(c.live, 0);
    CU_ASSERT_PTR_NULL(a.head);

    /* failure jumps to the recovery point */
    volatile bool jumped = false;
    c.fail = true;
    if (setjmp(oom) == 0) {
        arena_alloc(&a, 16);
        CU_FAIL("arena_alloc returned from a failed allocation");
    } else {
        jumped = true;
    }
    CU_ASSERT(jumped);
    arena_free(&a);
    CHECK_INT(c.live, 0);
}

static void test_diag_suggest(void)
{
    static const char *const sops[] = { "tokens", "indices", "length" };
    CHECK_STR(diag_suggest("tokenz", sops, 3), "tokens");
    CHECK_STR(diag_suggest("lenght", sops, 3), "length");
    CHECK_STR(diag_suggest("indice", sops, 3), "indices");
    CU_ASSERT_PTR_NULL(diag_suggest("xyzzy", sops, 3));
    CU_ASSERT_PTR_NULL(diag_suggest("tokens", sops, 3)); /* the name itself is no suggestion */
    CU_ASSERT_PTR_NULL(diag_suggest("tokenz", sops, 0));
    static const char *const ops[] = { "map", "select", "selector_width", NULL };
    CHECK_STR(diag_suggest("selct", ops, 4), "select");
    CHECK_STR(diag_suggest("selector_widht", ops, 4), "selector_width");
    CU_ASSERT_PTR_NULL(diag_suggest("aggregate", ops, 4));
    /* a short name needs a close match: `x` is two edits from `idx`, not a suggestion */
    static const char *const short_names[] = { "x", "ab" };
    CU_ASSERT_PTR_NULL(diag_suggest("idx", short_names, 2));
    CHECK_STR(diag_suggest("abc", short_names, 2), "ab");
}

bool register_values_tests(void)
{
    static const UnitTest tests[] = {
        { "value basics", test_value_basics },
        { "value_eq and value_cmp", test_value_eq_cmp },
        { "value sets", test_value_sets },
        { "scalar_eval", test_scalar_eval },
        { "arena", test_arena },
        { "diag_suggest", test_diag_suggest },
    };
    return UNIT_SUITE("values", tests);
}
