/* value.c: the evaluator of lambda bodies, with Python's semantics (Tracr's lambdas are Python).
 * The values themselves and value sets are plain data in support/value.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

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
    if (value_is_integral(a) && value_is_integral(b) && op != OP_DIV) {
        int64_t x = value_as_int(a), y = value_as_int(b), r = 0;
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
    int r = value_cmp_loose(a, b);
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
            int64_t x = value_as_int(a);
            if (x == INT64_MIN) return SCALAR_ARITH;
            *out = value_int(x < 0 ? -x : x);
            return SCALAR_OK;
        }
        if (a.kind != TFMC_FLOAT) { *out = value_int(value_as_int(a)); return SCALAR_OK; }
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
    int r = value_cmp_loose(b, a);
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
