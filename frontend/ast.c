/* ast.c: AST construction and printing expressions back as source text (parenthesised only where needed). */
#include <string.h>

#include "frontend.h"

Ast *ast_new(Arena *a, AstKind kind, SrcLoc loc)
{
    Ast *e = ARENA_NEW(a, Ast);
    e->kind = kind;
    e->loc = loc;
    return e;
}

const char *ast_op_text(AstOp op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_MOD: return "%";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    case OP_AND: return "and";
    case OP_OR: return "or";
    case OP_NEG: return "-";
    case OP_NOT: return "not";
    case OP_TRUE: return "true";
    case OP_FALSE: return "false";
    }
    return "?";
}

typedef struct Out {
    char *buf;
    size_t cap, len;
} Out;

static void put(Out *o, const char *s)
{
    size_t n = strlen(s);
    if (o->len + 1 < o->cap) {
        size_t room = o->cap - o->len - 1;
        size_t k = n < room ? n : room;
        memcpy(o->buf + o->len, s, k);
        o->buf[o->len + k] = '\0';
    }
    o->len += n;
}

/* Binding strength, loosest first (the grammar's precedence): a child looser than its place
 * needs parentheses. */
enum { PREC_LAMBDA, PREC_COND, PREC_OR, PREC_AND, PREC_NOT, PREC_CMP, PREC_ADD, PREC_MUL, PREC_NEG, PREC_PRIMARY };

static int precedence(const Ast *e)
{
    switch (e->kind) {
    case AST_LAMBDA: return PREC_LAMBDA;
    case AST_COND: return PREC_COND;
    case AST_UNARY: return e->op == OP_NOT ? PREC_NOT : PREC_NEG;
    case AST_BINARY:
        switch (e->op) {
        case OP_OR: return PREC_OR;
        case OP_AND: return PREC_AND;
        case OP_EQ: case OP_NE: case OP_LT: case OP_LE: case OP_GT: case OP_GE: return PREC_CMP;
        case OP_ADD: case OP_SUB: return PREC_ADD;
        case OP_MUL: case OP_DIV: case OP_MOD: return PREC_MUL;
        case OP_NEG: case OP_NOT: case OP_TRUE: case OP_FALSE: break;
        }
        return PREC_PRIMARY;
    case AST_INT: case AST_FLOAT: case AST_STRING: case AST_BOOL: case AST_NAME: case AST_PARAM:
    case AST_CALL: case AST_CMP_OP:
        return PREC_PRIMARY;
    }
    return PREC_PRIMARY;
}

static void format(const Ast *e, Out *o);

/* A child that must bind at least as tightly as min_prec; parenthesised when it does not. */
static void format_child(const Ast *e, Out *o, int min_prec)
{
    bool paren = precedence(e) < min_prec;
    if (paren) put(o, "(");
    format(e, o);
    if (paren) put(o, ")");
}

static void format(const Ast *e, Out *o)
{
    char tmp[64];
    int prec = precedence(e);
    switch (e->kind) {
    case AST_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)e->ival);
        put(o, tmp);
        break;
    case AST_FLOAT:
        snprintf(tmp, sizeof tmp, "%.9g", e->fval);
        put(o, tmp);
        break;
    case AST_STRING:
        put(o, "\"");
        put(o, e->str);
        put(o, "\"");
        break;
    case AST_BOOL: put(o, e->ival ? "true" : "false"); break;
    case AST_NAME:
    case AST_PARAM: put(o, e->str); break;
    case AST_CALL:
        put(o, e->str);
        put(o, "(");
        for (int i = 0; i < e->nargs; i++) {
            if (i) put(o, ", ");
            format_child(e->args[i], o, PREC_LAMBDA);
        }
        put(o, ")");
        break;
    case AST_UNARY:
        put(o, e->op == OP_NOT ? "not " : "-");
        format_child(e->a, o, prec);
        break;
    case AST_BINARY:
        /* left-associative: the right operand must bind more tightly than the operator */
        format_child(e->a, o, prec);
        put(o, " ");
        put(o, ast_op_text(e->op));
        put(o, " ");
        format_child(e->b, o, prec + 1);
        break;
    case AST_COND:
        /* right-associative: c ? a : b ? d : e */
        format_child(e->a, o, PREC_COND + 1);
        put(o, " ? ");
        format_child(e->b, o, PREC_COND);
        put(o, " : ");
        format_child(e->c, o, PREC_COND);
        break;
    case AST_LAMBDA:
        if (e->nparams == 1) {
            put(o, e->params[0]);
        } else {
            put(o, "(");
            for (int i = 0; i < e->nparams; i++) {
                if (i) put(o, ", ");
                put(o, e->params[i]);
            }
            put(o, ")");
        }
        put(o, " -> ");
        format_child(e->a, o, PREC_LAMBDA);
        break;
    case AST_CMP_OP: put(o, ast_op_text(e->op)); break;
    }
}

void ast_format(const Ast *e, char *buf, size_t cap)
{
    Out o = { buf, cap, 0 };
    if (cap) buf[0] = '\0';
    format(e, &o);
}
