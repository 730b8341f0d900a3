/* value.c: RASP scalar values with Python's semantics (Tracr's lambdas are Python), value sets,
 * and the evaluator of lambda bodies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

Value value_int(int64_t i) { Value v = { .kind = TFMC_INT, .u.i = i }; return v; }
Value value_float(double f) { Value v = { .kind = TFMC_FLOAT, .u.f = f }; return v; }
Value value_bool(bool b) { Value v = { .kind = TFMC_BOOL, .u.b = b }; return v; }

bool value_is_number(Value v) { return v.kind == TFMC_BOOL || v.kind == TFMC_INT || v.kind == TFMC_FLOAT; }

double value_number(Value v)
{
    switch (v.kind) {
    case TFMC_BOOL: return v.u.b ? 1.0 : 0.0;
    case TFMC_INT: return (double)v.u.i;
    case TFMC_FLOAT: return v.u.f;
    case TFMC_UNDEF:
    case TFMC_STR: return 0.0;
    }
    return 0.0;
}

static bool is_integral(Value v) { return v.kind == TFMC_BOOL || v.kind == TFMC_INT; }
static int64_t as_int(Value v) { return v.kind == TFMC_BOOL ? (int64_t)v.u.b : v.u.i; }

/* Numbers compare by value (exactly for two integers), strings by bytes. */
static int cmp_loose(Value a, Value b)
{
    int ra = a.kind == TFMC_UNDEF ? 0 : a.kind == TFMC_STR ? 2 : 1;
    int rb = b.kind == TFMC_UNDEF ? 0 : b.kind == TFMC_STR ? 2 : 1;
    if (ra != rb) return ra < rb ? -1 : 1;
    if (ra == 2) {
        int c = strcmp(a.u.s, b.u.s);
        return (c > 0) - (c < 0);
    }
    if (ra == 0) return 0;
    if (is_integral(a) && is_integral(b)) {
        int64_t x = as_int(a), y = as_int(b);
        return (x > y) - (x < y);
    }
    double x = value_number(a), y = value_number(b);
    return (x > y) - (x < y);
}

bool value_eq(Value a, Value b)
{
    if (a.kind == TFMC_UNDEF || b.kind == TFMC_UNDEF) return a.kind == b.kind;
    if ((a.kind == TFMC_STR) != (b.kind == TFMC_STR)) return false;
    return cmp_loose(a, b) == 0;
}

int value_cmp(Value a, Value b)
{
    int c = cmp_loose(a, b);
    if (c) return c;
    /* equal numbers of different kinds: a fixed order keeps sorting deterministic */
    static const int rank[] = { [TFMC_UNDEF] = 0, [TFMC_INT] = 1, [TFMC_FLOAT] = 2, [TFMC_BOOL] = 3,
                                [TFMC_STR] = 4 };
    return (rank[a.kind] > rank[b.kind]) - (rank[a.kind] < rank[b.kind]);
}

int value_format(Value v, char *buf, size_t cap)
{
    switch (v.kind) {
    case TFMC_UNDEF: return snprintf(buf, cap, "_");
    case TFMC_BOOL: return snprintf(buf, cap, "%s", v.u.b ? "true" : "false");
    case TFMC_INT: return snprintf(buf, cap, "%lld", (long long)v.u.i);
    case TFMC_FLOAT: return snprintf(buf, cap, "%.9g", v.u.f == 0.0 ? 0.0 : v.u.f);
    case TFMC_STR: return snprintf(buf, cap, "%s", v.u.s);
    }
    return 0;
}

static int qsort_cmp(const void *a, const void *b) { return value_cmp(*(const Value *)a, *(const Value *)b); }

int valueset_normalise(Value *vals, int n)
{
    if (n <= 1) return n;
    qsort(vals, (size_t)n, sizeof(Value), qsort_cmp);
    int k = 1;
    for (int i = 1; i < n; i++)
        if (cmp_loose(vals[k - 1], vals[i]) != 0) vals[k++] = vals[i];
    return k;
}

int valueset_index(const ValueSet *s, Value v)
{
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = cmp_loose(s->v[mid], v);
        if (c == 0) return (v.kind == TFMC_STR) == (s->v[mid].kind == TFMC_STR) ? mid : -1;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

bool valueset_contains(const ValueSet *s, Value v) { return valueset_index(s, v) >= 0; }

/* ------------------------------------------------------- lambda bodies */

static const char *kind_name(Value v)
{
    switch (v.kind) {
    case TFMC_UNDEF: return "undefined";
    case TFMC_BOOL: return "boolean";
    case TFMC_INT: return "integer";
    case TFMC_FLOAT: return "number";
    case TFMC_STR: return "string";
    }
    return "?";
}

static bool truthy(Value v)
{
    switch (v.kind) {
    case TFMC_UNDEF: return false;
    case TFMC_BOOL: return v.u.b;
    case TFMC_INT: return v.u.i != 0;
    case TFMC_FLOAT: return v.u.f != 0.0;
    case TFMC_STR: return v.u.s[0] != '\0';
    }
    return false;
}

typedef struct ScalarCtx {
    const Value *params;
    char *msg;
    size_t cap;
    const Ast *where; /* the innermost expression whose evaluation failed */
} ScalarCtx;

static ScalarStatus type_error(ScalarCtx *c, const char *fmt, const char *op, Value a, Value b)
{
    char x[64], y[64];
    value_format(a, x, sizeof x);
    value_format(b, y, sizeof y);
    snprintf(c->msg, c->cap, fmt, op, kind_name(a), x, kind_name(b), y);
    return SCALAR_TYPE;
}

static ScalarStatus eval(const Ast *e, ScalarCtx *c, Value *out);

static ScalarStatus arith(AstOp op, Value a, Value b, ScalarCtx *c, Value *out)
{
    if (!value_is_number(a) || !value_is_number(b))
        return type_error(c, "`%s` needs numbers, not the %s `%s` and the %s `%s`", ast_op_text(op), a, b);
    if (is_integral(a) && is_integral(b) && op != OP_DIV) {
        int64_t x = as_int(a), y = as_int(b), r = 0;
        bool overflow = false;
        switch (op) {
        case OP_ADD: overflow = __builtin_add_overflow(x, y, &r); break;
        case OP_SUB: overflow = __builtin_sub_overflow(x, y, &r); break;
        case OP_MUL: overflow = __builtin_mul_overflow(x, y, &r); break;
        case OP_MOD:
            if (y == 0) return SCALAR_ARITH;
            if (y == -1) { r = 0; break; }
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            break;
        default: break;
        }
        if (overflow) return SCALAR_ARITH;
        *out = value_int(r);
        return SCALAR_OK;
    }
    double x = value_number(a), y = value_number(b), r = 0;
    switch (op) {
    case OP_ADD: r = x + y; break;
    case OP_SUB: r = x - y; break;
    case OP_MUL: r = x * y; break;
    case OP_DIV:
        if (y == 0) return SCALAR_ARITH;
        r = x / y;
        break;
    case OP_MOD:
        if (y == 0) return SCALAR_ARITH;
        r = fmod(x, y);
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        break;
    default: break;
    }
    if (isnan(r)) return SCALAR_ARITH;
    *out = value_float(r);
    return SCALAR_OK;
}

static ScalarStatus compare(AstOp op, Value a, Value b, ScalarCtx *c, Value *out)
{
    if (op == OP_EQ || op == OP_NE) {
        bool eq = value_eq(a, b);
        *out = value_bool(op == OP_EQ ? eq : !eq);
        return SCALAR_OK;
    }
    if ((a.kind == TFMC_STR) != (b.kind == TFMC_STR))
        return type_error(c, "`%s` cannot order the %s `%s` and the %s `%s`", ast_op_text(op), a, b);
    int r = cmp_loose(a, b);
    bool res = op == OP_LT ? r < 0 : op == OP_LE ? r <= 0 : op == OP_GT ? r > 0 : r >= 0;
    *out = value_bool(res);
    return SCALAR_OK;
}

static ScalarStatus call(const Ast *e, ScalarCtx *c, Value *out)
{
    Value a, b;
    ScalarStatus s = eval(e->args[0], c, &a);
    if (s != SCALAR_OK) return s;
    if (strcmp(e->str, "abs") == 0 || strcmp(e->str, "floor") == 0) {
        if (!value_is_number(a)) {
            char x[64];
            value_format(a, x, sizeof x);
            snprintf(c->msg, c->cap, "`%s` needs a number, not the %s `%s`", e->str, kind_name(a), x);
            return SCALAR_TYPE;
        }
        if (strcmp(e->str, "abs") == 0) {
            if (a.kind == TFMC_FLOAT) { *out = value_float(fabs(a.u.f)); return SCALAR_OK; }
            int64_t x = as_int(a);
            if (x == INT64_MIN) return SCALAR_ARITH;
            *out = value_int(x < 0 ? -x : x);
            return SCALAR_OK;
        }
        if (a.kind != TFMC_FLOAT) { *out = value_int(as_int(a)); return SCALAR_OK; }
        double f = floor(a.u.f);
        if (!(f >= -9.2e18 && f <= 9.2e18)) return SCALAR_ARITH;
        *out = value_int((int64_t)f);
        return SCALAR_OK;
    }
    /* min / max: Python returns the first of equal arguments */
    s = eval(e->args[1], c, &b);
    if (s != SCALAR_OK) return s;
    if ((a.kind == TFMC_STR) != (b.kind == TFMC_STR))
        return type_error(c, "`%s` cannot order the %s `%s` and the %s `%s`", e->str, a, b);
    int r = cmp_loose(b, a);
    bool is_min = strcmp(e->str, "min") == 0;
    *out = (is_min ? r < 0 : r > 0) ? b : a;
    return SCALAR_OK;
}

static ScalarStatus eval_node(const Ast *e, ScalarCtx *c, Value *out)
{
    Value a, b;
    ScalarStatus s;
    switch (e->kind) {
    case AST_INT: *out = value_int(e->ival); return SCALAR_OK;
    case AST_FLOAT: *out = value_float(e->fval); return SCALAR_OK;
    case AST_BOOL: *out = value_bool(e->ival != 0); return SCALAR_OK;
    case AST_STRING: out->kind = TFMC_STR; out->u.s = e->str; return SCALAR_OK;
    case AST_PARAM: *out = c->params[e->ival]; return SCALAR_OK;
    case AST_CALL: return call(e, c, out);
    case AST_UNARY:
        if ((s = eval(e->a, c, &a)) != SCALAR_OK) return s;
        if (e->op == OP_NOT) { *out = value_bool(!truthy(a)); return SCALAR_OK; }
        return arith(OP_SUB, value_int(0), a, c, out);
    case AST_COND:
        if ((s = eval(e->a, c, &a)) != SCALAR_OK) return s;
        return eval(truthy(a) ? e->b : e->c, c, out);
    case AST_BINARY:
        if ((s = eval(e->a, c, &a)) != SCALAR_OK) return s;
        if (e->op == OP_AND || e->op == OP_OR) {
            /* Python: `a and b` is a when a is false, else b (and `or` the reverse) */
            if (truthy(a) == (e->op == OP_OR)) { *out = a; return SCALAR_OK; }
            return eval(e->b, c, out);
        }
        if ((s = eval(e->b, c, &b)) != SCALAR_OK) return s;
        switch (e->op) {
        case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: return arith(e->op, a, b, c, out);
        case OP_EQ: case OP_NE: case OP_LT: case OP_LE: case OP_GT: case OP_GE: return compare(e->op, a, b, c, out);
        case OP_AND: case OP_OR: case OP_NEG: case OP_NOT: case OP_TRUE: case OP_FALSE: break;
        }
        break;
    case AST_NAME: case AST_LAMBDA: case AST_CMP_OP: break;
    }
    snprintf(c->msg, c->cap, "internal error: unexpected expression in a lambda");
    return SCALAR_TYPE;
}

static ScalarStatus eval(const Ast *e, ScalarCtx *c, Value *out)
{
    ScalarStatus s = eval_node(e, c, out);
    if (s != SCALAR_OK && !c->where) c->where = e;
    return s;
}

ScalarStatus scalar_eval_at(const Ast *e, const Value *params, Value *out, char *msg, size_t cap, const Ast **where)
{
    ScalarCtx c = { params, msg, cap, NULL };
    ScalarStatus s = eval(e, &c, out);
    if (where) *where = c.where;
    return s;
}

ScalarStatus scalar_eval(const Ast *e, const Value *params, Value *out, char *msg, size_t cap)
{
    return scalar_eval_at(e, params, out, msg, cap, NULL);
}
