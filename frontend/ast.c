/* ast.c: AST construction and printing expressions back as source text. */
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

static void format(const Ast *e, Out *o)
{
    char tmp[64];
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
            format(e->args[i], o);
        }
        put(o, ")");
        break;
    case AST_UNARY:
        put(o, e->op == OP_NOT ? "not " : "-");
        format(e->a, o);
        break;
    case AST_BINARY:
        put(o, "(");
        format(e->a, o);
        put(o, " ");
        put(o, ast_op_text(e->op));
        put(o, " ");
        format(e->b, o);
        put(o, ")");
        break;
    case AST_COND:
        put(o, "(");
        format(e->a, o);
        put(o, " ? ");
        format(e->b, o);
        put(o, " : ");
        format(e->c, o);
        put(o, ")");
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
        format(e->a, o);
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
