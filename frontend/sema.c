/* sema.c: semantic analysis of .tfm items: names, expressions, statements and program headers. */
#include <stdlib.h>
#include <string.h>

#include "sema.h"

const char *const sema_builtin_ops[] = { "map", "select", "aggregate", "selector_width", "numerical",
                                        "categorical" };
const char *const sema_builtin_sops[] = { "tokens", "indices", "length" };
const char *const sema_scalar_funcs[] = { "min", "max", "abs", "floor" };
const char *const sema_header_names[] = { "vocab", "max_len", "causal" };

int sema_index_of(const char *name, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return i;
    return -1;
}

SVal sema_error(void) { SVal v = { 0 }; v.kind = SV_ERROR; return v; }
SVal sema_node_value(RaspNode *n)
{
    SVal v = { 0 };
    v.kind = n->is_selector ? SV_SEL : SV_SOP;
    v.node = n;
    return v;
}
static SVal sv_const(Value c) { SVal v = { 0 }; v.kind = SV_CONST; v.c = c; return v; }

const char *sema_describe_kind(SVal v)
{
    switch (v.kind) {
    case SV_ERROR: return "an error";
    case SV_SOP: return "an SOp";
    case SV_SEL: return "a selector";
    case SV_CONST: return "a constant";
    case SV_LAMBDA: return "a lambda";
    case SV_CMP: return "a comparison operator";
    }
    return "?";
}

/* An SOp operand: SOps as they are, constants as constant sequences. */
static RaspNode *as_sop(Sema *s, SVal v, SrcLoc loc, const char *what)
{
    switch (v.kind) {
    case SV_SOP: return v.node;
    case SV_CONST: return sema_full_node(s, v.c, loc);
    case SV_ERROR: return NULL;
    case SV_SEL:
    case SV_LAMBDA:
    case SV_CMP: break;
    }
    ERROR(s, loc, "%s need an SOp, not %s", what, sema_describe_kind(v));
    if (v.kind == SV_SEL) HINT(s, "turn a selector into an SOp with aggregate(sel, values) or selector_width(sel)");
    return NULL;
}


/* ------------------------------------------------------- expressions */

const Binding *sema_lookup(const Scope *sc, const char *name)
{
    for (const Binding *b = sc->head; b; b = b->next)
        if (strcmp(b->name, name) == 0) return b;
    return NULL;
}

static void unknown_name(Sema *s, const Scope *sc, const char *name, SrcLoc loc, bool call)
{
    const char *cands[256];
    int n = 0;
    for (const Binding *b = sc->head; b && n < 200; b = b->next) cands[n++] = b->name;
    for (int i = 0; i < N_BUILTIN_SOPS; i++) cands[n++] = sema_builtin_sops[i];
    if (call) {
        for (int i = 0; i < N_BUILTIN_OPS; i++) cands[n++] = sema_builtin_ops[i];
        for (int i = 0; i < s->ndefs && n < 250; i++) cands[n++] = s->defs[i]->name;
    }
    const char *sug = diag_suggest(name, cands, n);
    if (call) ERROR(s, loc, "unknown function `%s`", name);
    else ERROR(s, loc, "unknown name `%s`", name);
    if (sug) HINT(s, "did you mean `%s`?", sug);
}

static SVal check_name(Sema *s, Scope *sc, Ast *e)
{
    const Binding *b = sema_lookup(sc, e->str);
    if (b) return b->val;
    int k = sema_index_of(e->str, sema_builtin_sops, N_BUILTIN_SOPS);
    if (k >= 0) {
        if (k == 2 && s->prog->causal) {
            ERROR(s, e->loc, "`length` is not available in a causal program");
            HINT(s, "a causal position sees only the tokens before it; count them with "
                    "selector_width(select(indices, indices, <=))");
            return sema_error();
        }
        return sema_node_value(sema_builtin_node(s, k, e->loc));
    }
    if (sema_find_def(s, e->str, NULL) || sema_index_of(e->str, sema_builtin_ops, N_BUILTIN_OPS) >= 0) {
        ERROR(s, e->loc, "`%s` is a function; call it with arguments", e->str);
        return sema_error();
    }
    if (sema_index_of(e->str, sema_header_names, N_HEADER_NAMES) >= 0) {
        ERROR(s, e->loc, "`%s` is a program header statement, not a value", e->str);
        return sema_error();
    }
    unknown_name(s, sc, e->str, e->loc, false);
    return sema_error();
}

/* Fold a scalar expression whose operands are all constants. */
static SVal fold(Sema *s, Ast *body, SrcLoc loc)
{
    Value out;
    char msg[256];
    const Ast *where = NULL;
    ScalarStatus st = scalar_eval_at(body, NULL, &out, msg, sizeof msg, &where);
    if (st == SCALAR_OK) return sv_const(out);
    if (st == SCALAR_ARITH) ERROR(s, loc, "arithmetic error in a constant expression (division by zero or overflow)");
    else ERROR(s, where ? sema_operator_loc(where) : loc, "%s", msg);
    return sema_error();
}

SrcLoc sema_operator_loc(const Ast *e)
{
    return e->kind == AST_BINARY || e->kind == AST_UNARY ? e->op_loc : e->loc;
}

/* An operator or scalar function applied to operands that may be SOps: fold constants, else
 * build an elementwise map over the (at most two) distinct SOps. */
static SVal elementwise_expr(Sema *s, Ast *e, SVal *ops, int nops)
{
    RaspNode *ins[3];
    int nins = 0;
    Ast *args[3];
    for (int i = 0; i < nops; i++) {
        if (ops[i].kind == SV_ERROR) return sema_error();
        if (ops[i].kind == SV_SEL) {
            ERROR(s, sema_operator_loc(e), "`%s` cannot take a selector",
                  e->kind == AST_CALL ? e->str : e->kind == AST_COND ? "?:" : ast_op_text(e->op));
            HINT(s, "selectors combine with `and`, `or` and `not` only");
            return sema_error();
        }
        if (ops[i].kind == SV_LAMBDA || ops[i].kind == SV_CMP) {
            ERROR(s, e->loc, "%s cannot be an operand", sema_describe_kind(ops[i]));
            return sema_error();
        }
    }
    for (int i = 0; i < nops; i++) {
        if (ops[i].kind == SV_CONST) {
            args[i] = sema_const_ast(s, ops[i].c, e->loc);
            continue;
        }
        int at = -1;
        for (int k = 0; k < nins; k++)
            if (ins[k] == ops[i].node) at = k;
        if (at < 0) { ins[nins] = ops[i].node; at = nins++; }
        args[i] = sema_param_ast(s, at, ops[i].node->label, e->loc);
    }
    Ast *body = sema_clone(s, e);
    if (e->kind == AST_CALL) {
        body->args = ARENA_ARRAY(s->arena, Ast *, nops);
        for (int i = 0; i < nops; i++) body->args[i] = args[i];
    } else {
        body->a = args[0];
        body->b = nops > 1 ? args[1] : NULL;
        body->c = nops > 2 ? args[2] : NULL;
    }
    if (nins == 0) return fold(s, body, e->loc);
    int nleaves;
    RaspNode *n = sema_elementwise(s, body, ins, nins, e->loc, &nleaves);
    if (!n) {
        ERROR(s, e->loc, "an elementwise expression combines at most two SOps, and this one combines %d", nleaves);
        HINT(s, "name an intermediate result: t = a + b; then use t");
        return sema_error();
    }
    return sema_node_value(n);
}

static SVal check_binary(Sema *s, Scope *sc, Ast *e)
{
    SVal ops[2] = { sema_check_expr(s, sc, e->a), sema_check_expr(s, sc, e->b) };
    if (ops[0].kind == SV_ERROR || ops[1].kind == SV_ERROR) return sema_error();
    bool sel0 = ops[0].kind == SV_SEL, sel1 = ops[1].kind == SV_SEL;
    if (sel0 || sel1) {
        if ((e->op == OP_AND || e->op == OP_OR) && sel0 && sel1) {
            RaspNode *n = sema_new_node(s, e->op == OP_AND ? RN_SEL_AND : RN_SEL_OR, e->loc, ops[0].node, ops[1].node);
            return sema_node_value(n);
        }
        if (e->op == OP_AND || e->op == OP_OR) {
            ERROR(s, e->op_loc, "`%s` combines two selectors or two SOps, not a selector and %s",
                  ast_op_text(e->op), sema_describe_kind(sel0 ? ops[1] : ops[0]));
            return sema_error();
        }
    }
    return elementwise_expr(s, e, ops, 2);
}

static SVal check_call(Sema *s, Scope *sc, Ast *e);

SVal sema_check_expr(Sema *s, Scope *sc, Ast *e)
{
    switch (e->kind) {
    case AST_INT: return sv_const(value_int(e->ival));
    case AST_FLOAT: return sv_const(value_float(e->fval));
    case AST_BOOL: return sv_const(value_bool(e->ival != 0));
    case AST_STRING: {
        Value v;
        v.kind = TFMC_STR;
        v.u.s = e->str;
        return sv_const(v);
    }
    case AST_NAME: return check_name(s, sc, e);
    case AST_PARAM: return sema_error();
    case AST_LAMBDA: {
        SVal v = { 0 };
        v.kind = SV_LAMBDA;
        v.ast = e;
        return v;
    }
    case AST_CMP_OP: {
        SVal v = { 0 };
        v.kind = SV_CMP;
        v.ast = e;
        return v;
    }
    case AST_UNARY: {
        SVal op = sema_check_expr(s, sc, e->a);
        if (op.kind == SV_SEL && e->op == OP_NOT)
            return sema_node_value(sema_new_node(s, RN_SEL_NOT, e->loc, op.node, NULL));
        return elementwise_expr(s, e, &op, 1);
    }
    case AST_BINARY: return check_binary(s, sc, e);
    case AST_COND: {
        SVal ops[3] = { sema_check_expr(s, sc, e->a), sema_check_expr(s, sc, e->b), sema_check_expr(s, sc, e->c) };
        return elementwise_expr(s, e, ops, 3);
    }
    case AST_CALL: return check_call(s, sc, e);
    }
    return sema_error();
}

static bool want_args(Sema *s, Ast *e, int lo, int hi)
{
    if (e->nargs >= lo && e->nargs <= hi) return true;
    if (lo == hi) ERROR(s, e->loc, "`%s` takes %d argument%s, not %d", e->str, lo, lo == 1 ? "" : "s", e->nargs);
    else ERROR(s, e->loc, "`%s` takes %d to %d arguments, not %d", e->str, lo, hi, e->nargs);
    return false;
}

static RaspNode *need_selector(Sema *s, SVal v, Ast *arg, const char *fn)
{
    if (v.kind == SV_SEL) {
        VEC_PUSH(s->arena, s->read_sels, s->nread_sels, s->read_sels_cap, v.node);
        return v.node;
    }
    if (v.kind == SV_ERROR) return NULL;
    char text[96];
    ast_format(arg, text, sizeof text);
    ERROR(s, arg->loc, "`%s` needs a selector as its first argument, but `%s` is %s", fn, text, sema_describe_kind(v));
    HINT(s, "make a selector with select(keys, queries, ==)");
    return NULL;
}

static SVal check_map(Sema *s, Scope *sc, Ast *e)
{
    if (!want_args(s, e, 2, 3)) return sema_error();
    SVal lam = sema_check_expr(s, sc, e->args[0]);
    int nsops = e->nargs - 1;
    SVal vals[2];
    bool ok = lam.kind == SV_LAMBDA;
    if (lam.kind != SV_LAMBDA && lam.kind != SV_ERROR) {
        ERROR(s, e->args[0]->loc, "the first argument of `map` must be a lambda such as x -> x + 1, not %s",
              sema_describe_kind(lam));
    }
    for (int i = 0; i < nsops; i++) {
        vals[i] = sema_check_expr(s, sc, e->args[i + 1]);
        if (vals[i].kind == SV_ERROR) ok = false;
        else if (vals[i].kind != SV_SOP && vals[i].kind != SV_CONST) {
            ERROR(s, e->args[i + 1]->loc, "`map` applies to SOps, not to %s", sema_describe_kind(vals[i]));
            if (vals[i].kind == SV_SEL) HINT(s, "turn a selector into an SOp with aggregate or selector_width");
            ok = false;
        }
    }
    if (lam.kind == SV_LAMBDA && lam.ast->nparams != nsops) {
        ERROR(s, lam.ast->loc, "this lambda takes %d parameter%s but `map` gives it %d SOp%s", lam.ast->nparams,
              lam.ast->nparams == 1 ? "" : "s", nsops, nsops == 1 ? "" : "s");
        ok = false;
    }
    if (lam.kind != SV_LAMBDA) return sema_error();
    Ast *body = sema_check_lambda_body(s, sc, lam.ast, "map");
    if (!ok || !body) return sema_error();
    /* Build it like an operator over the arguments: constants fold in, equal SOps merge. */
    RaspNode *ins[2];
    int nins = 0;
    Ast *subst[2];
    for (int i = 0; i < nsops; i++) {
        if (vals[i].kind == SV_CONST) {
            subst[i] = sema_const_ast(s, vals[i].c, e->loc);
            continue;
        }
        int at = -1;
        for (int k = 0; k < nins; k++)
            if (ins[k] == vals[i].node) at = k;
        if (at < 0) { ins[nins] = vals[i].node; at = nins++; }
        subst[i] = sema_param_ast(s, at, vals[i].node->label, e->loc);
    }
    body = sema_substitute(s, body, subst);
    if (nins == 0) return fold(s, body, e->loc);
    RaspNode *n = sema_elementwise(s, body, ins, nins, e->loc, NULL); /* two SOps at most: never NULL */
    return sema_node_value(n);
}

/* Names in e that mean nothing here (not bound, not built in, not a function), in order, at most
 * cap of them; a lambda inside binds its own. */
static void undefined_names(Sema *s, const Scope *sc, const Ast *e, const char **out, int *n, int cap)
{
    if (!e || e->kind == AST_LAMBDA) return;
    if (e->kind == AST_NAME) {
        if (sema_lookup(sc, e->str) || sema_index_of(e->str, sema_builtin_sops, N_BUILTIN_SOPS) >= 0 ||
            sema_index_of(e->str, sema_builtin_ops, N_BUILTIN_OPS) >= 0 ||
            sema_index_of(e->str, sema_header_names, N_HEADER_NAMES) >= 0 || sema_find_def(s, e->str, NULL))
            return;
        for (int i = 0; i < *n; i++)
            if (strcmp(out[i], e->str) == 0) return;
        if (*n < cap) out[(*n)++] = e->str;
        return;
    }
    for (int i = 0; e->kind == AST_CALL && i < e->nargs; i++) undefined_names(s, sc, e->args[i], out, n, cap);
    undefined_names(s, sc, e->a, out, n, cap);
    undefined_names(s, sc, e->b, out, n, cap);
    undefined_names(s, sc, e->c, out, n, cap);
}

/* Would an unknown name get a "did you mean" (a near name in scope or a built-in SOp)? */
static bool has_suggestion(const Scope *sc, const char *name)
{
    const char *cands[256];
    int n = 0;
    for (const Binding *b = sc->head; b && n < 200; b = b->next) cands[n++] = b->name;
    for (int i = 0; i < N_BUILTIN_SOPS; i++) cands[n++] = sema_builtin_sops[i];
    return diag_suggest(name, cands, n) != NULL;
}

/* Habits from Tracr and Python in the predicate of select: Tracr's comparison names (`LEQ`) and
 * a comparison of names that exist only in the writer's head (`x == y`, meant as a lambda). One
 * error for the whole predicate, instead of one per name; false when the predicate is neither. */
static bool foreign_predicate(Sema *s, const Scope *sc, const Ast *pred)
{
    static const char *const tracr[][2] = {
        { "EQ", "==" }, { "NEQ", "!=" }, { "LT", "<" }, { "LEQ", "<=" },
        { "GT", ">" }, { "GEQ", ">=" }, { "TRUE", "true" }, { "FALSE", "false" },
    };
    if (pred->kind == AST_LAMBDA || pred->kind == AST_CMP_OP) return false;
    const char *names[4];
    int n = 0;
    undefined_names(s, sc, pred, names, &n, COUNT(names));
    if (n == 0) return false;
    /* misspelt names (`tokns == indices`) get their usual "did you mean" instead */
    bool typos = true;
    for (int i = 0; i < n; i++) typos &= has_suggestion(sc, names[i]);
    if (typos) return false;
    for (int i = 0; pred->kind == AST_NAME && i < COUNT(tracr); i++)
        if (strcmp(pred->str, tracr[i][0]) == 0) {
            ERROR(s, pred->loc, "`%s` is Tracr's `Comparison.%s`; tfm writes the comparison itself", pred->str,
                  pred->str);
            HINT(s, "write select(keys, queries, %s)", tracr[i][1]);
            return true;
        }
    size_t len;
    const char *text = diag_source_text(s->file, pred->loc, &len);
    const char *shown = text && len <= 60 ? arena_printf(s->arena, "`%.*s`", (int)len, text) : "this predicate";
    const char *list = n == 1 ? arena_printf(s->arena, "`%s` is", names[0])
                       : n == 2 ? arena_printf(s->arena, "`%s` and `%s` are", names[0], names[1])
                                : arena_printf(s->arena, "`%s`, `%s` and more are", names[0], names[1]);
    ERROR(s, pred->loc, "%s is not a predicate: %s not defined here", shown, list);
    if (n == 2 && text && len <= 60)
        HINT(s, "a predicate of the key and the query is a lambda: write `(%s, %s) -> %.*s` (the key first, then "
                "the query)", names[0], names[1], (int)len, text);
    else
        HINT(s, "a predicate of the key and the query is a lambda, such as `(k, q) -> k == q` (the key first, "
                "then the query), or a comparison: select(keys, queries, ==)");
    return true;
}

static SVal check_select(Sema *s, Scope *sc, Ast *e)
{
    if (!want_args(s, e, 3, 3)) return sema_error();
    RaspNode *kq[2] = { NULL, NULL };
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        SVal v = sema_check_expr(s, sc, e->args[i]);
        kq[i] = as_sop(s, v, e->args[i]->loc, i == 0 ? "the keys of `select`" : "the queries of `select`");
        if (!kq[i]) { ok = false; continue; }
        if (kq[i]->enc == ENC_NUMERICAL) {
            if (kq[i]->named)
                ERROR(s, e->args[i]->loc, "`select` compares categorical SOps, but %s is numerical",
                      sema_node_name(s, kq[i]));
            else
                ERROR(s, e->args[i]->loc, "`select` compares categorical SOps, but its %s are numerical",
                      i == 0 ? "keys" : "queries");
            HINT(s, "use categorical(...) or the SOp before numerical(...)");
            ok = false;
        }
    }
    Ast *pred = e->args[2];
    if (foreign_predicate(s, sc, pred)) return sema_error();
    SVal p = sema_check_expr(s, sc, pred);
    const Ast *fn = NULL;
    AstOp cmp = OP_EQ;
    if (p.kind == SV_CMP) {
        cmp = p.ast->op;
    } else if (p.kind == SV_CONST && p.c.kind == TFMC_BOOL) {
        cmp = p.c.u.b ? OP_TRUE : OP_FALSE;
    } else if (p.kind == SV_LAMBDA) {
        if (p.ast->nparams != 2) {
            ERROR(s, p.ast->loc, "a `select` lambda takes two parameters (key, query), not %d", p.ast->nparams);
            ok = false;
        } else if (!(fn = sema_check_lambda_body(s, sc, p.ast, "select"))) {
            ok = false;
        }
    } else if (p.kind != SV_ERROR) {
        ERROR(s, pred->loc, "the third argument of `select` must be a comparison (== != < <= > >=), true, false, "
                            "or a lambda (k, q) -> ..., not %s", sema_describe_kind(p));
        if (p.kind == SV_SOP && pred->kind == AST_BINARY && pred->op >= OP_EQ && pred->op <= OP_GE)
            HINT(s, "this compares two SOps position by position; to compare each key with each query write "
                    "`%s`, or a lambda such as `(k, q) -> k %s q`", ast_op_text(pred->op), ast_op_text(pred->op));
        ok = false;
    } else {
        ok = false;
    }
    if (!ok) return sema_error();
    RaspNode *n = sema_new_node(s, RN_SELECT, e->loc, kq[0], kq[1]);
    n->cmp = cmp;
    n->fn = fn;
    /* Check the predicate over every (key, query) pair of values, as a map would be. */
    if (fn && s->have_sizes && !sema_check_select_pairs(s, n)) return sema_error();
    if (s->have_sizes) sema_warn_constant_selector(s, n);
    return sema_node_value(n);
}

static SVal set_encoding(Sema *s, Scope *sc, Ast *e, Encoding enc)
{
    if (!want_args(s, e, 1, 1)) return sema_error();
    SVal v = sema_check_expr(s, sc, e->args[0]);
    if (v.kind == SV_CONST) v = sema_node_value(sema_full_node(s, v.c, e->args[0]->loc));
    if (v.kind == SV_ERROR) return v;
    if (v.kind != SV_SOP) {
        ERROR(s, e->args[0]->loc, "`%s` sets the encoding of an SOp, not of %s", e->str, sema_describe_kind(v));
        return sema_error();
    }
    RaspNode *n = v.node, *given = v.node;
    if (n->enc == enc) return v;
    if (n->named || n->bound || s->uses[n->id] > 0 || n->op == RN_TOKENS || n->op == RN_INDICES || n->op == RN_LENGTH) {
        /* The SOp is shared: the new encoding belongs to a copy (as Tracr's annotate does). */
        RaspNode *c = sema_new_node(s, n->op, e->loc, n->in[0], n->in[1]);
        c->fn = n->fn;
        c->cmp = n->cmp;
        c->fill = n->fill;
        c->mean = n->mean;
        c->vs = n->vs;
        if (n->op == RN_TOKENS || n->op == RN_INDICES || n->op == RN_LENGTH) {
            /* A built-in is not recomputed: read it through an identity map. */
            c->op = RN_MAP;
            c->in[0] = n;
            c->in[1] = NULL;
            s->uses[n->id]++;
            c->fn = sema_param_ast(s, 0, n->label, e->loc);
        }
        n = c;
    }
    n->enc = enc;
    if (enc == ENC_NUMERICAL) {
        for (int i = 0; i < n->vs.n; i++)
            if (!value_is_number(n->vs.v[i])) {
                ERROR(s, e->loc, "a numerical SOp holds numbers, but %s can be %s", sema_node_name(s, given),
                      sema_value_text(s, n->vs.v[i], true));
                return sema_error();
            }
        if (n->op == RN_AGGREGATE && !n->mean) {
            n->mean = true;
            if (s->have_sizes) sema_compute_value_set(s, n);
        }
    }
    return sema_node_value(n);
}

static SVal check_call(Sema *s, Scope *sc, Ast *e)
{
    const char *f = e->str;
    if (strcmp(f, "map") == 0) return check_map(s, sc, e);
    if (strcmp(f, "select") == 0) return check_select(s, sc, e);
    if (strcmp(f, "numerical") == 0) return set_encoding(s, sc, e, ENC_NUMERICAL);
    if (strcmp(f, "categorical") == 0) return set_encoding(s, sc, e, ENC_CATEGORICAL);
    if (strcmp(f, "aggregate") == 0) {
        if (!want_args(s, e, 2, 2)) return sema_error();
        RaspNode *sel = need_selector(s, sema_check_expr(s, sc, e->args[0]), e->args[0], f);
        RaspNode *val = as_sop(s, sema_check_expr(s, sc, e->args[1]), e->args[1]->loc, "the values of `aggregate`");
        if (!sel || !val) return sema_error();
        RaspNode *n = sema_new_node(s, RN_AGGREGATE, e->loc, sel, val);
        n->mean = val->enc == ENC_NUMERICAL;
        n->enc = val->enc;
        return sema_node_value(sema_finish(s, n));
    }
    if (strcmp(f, "selector_width") == 0) {
        if (!want_args(s, e, 1, 1)) return sema_error();
        RaspNode *sel = need_selector(s, sema_check_expr(s, sc, e->args[0]), e->args[0], f);
        if (!sel) return sema_error();
        return sema_node_value(sema_finish(s, sema_new_node(s, RN_SELECTOR_WIDTH, e->loc, sel, NULL)));
    }
    int fi = sema_index_of(f, sema_scalar_funcs, N_SCALAR_FUNCS);
    if (fi >= 0) {
        int want = fi < 2 ? 2 : 1;
        if (!want_args(s, e, want, want)) return sema_error();
        SVal ops[2];
        for (int i = 0; i < want; i++) ops[i] = sema_check_expr(s, sc, e->args[i]);
        return elementwise_expr(s, e, ops, want);
    }
    int di;
    const Item *def = sema_find_def(s, f, &di);
    if (def) return sema_expand_def(s, sc, e, def, di);
    const Binding *b = sema_lookup(sc, f);
    if (b || sema_index_of(f, sema_builtin_sops, N_BUILTIN_SOPS) >= 0) {
        ERROR(s, e->loc, "`%s` is %s, not a function", f, b ? sema_describe_kind(b->val) : "an SOp");
        return sema_error();
    }
    unknown_name(s, sc, f, e->loc, true);
    for (int i = 0; i < e->nargs; i++) sema_check_expr(s, sc, e->args[i]);
    return sema_error();
}

/* --------------------------------------------------------- statements */

static bool bind(Sema *s, Scope *sc, const char *name, SrcLoc loc, SVal v)
{
    const Binding *old = sema_lookup(sc, name);
    if (old) {
        ERROR(s, loc, "`%s` is already defined (line %d)", name, old->loc.first_line);
        HINT(s, "each name is assigned once; choose a new name");
        return false;
    }
    if (sema_index_of(name, sema_builtin_sops, N_BUILTIN_SOPS) >= 0 ||
        sema_index_of(name, sema_builtin_ops, N_BUILTIN_OPS) >= 0 ||
        sema_index_of(name, sema_scalar_funcs, N_SCALAR_FUNCS) >= 0) {
        ERROR(s, loc, "`%s` is a built-in name and cannot be assigned", name);
        return false;
    }
    if (sema_find_def(s, name, NULL)) {
        ERROR(s, loc, "`%s` is the name of a function", name);
        return false;
    }
    Binding *b = ARENA_NEW(s->arena, Binding);
    b->name = name;
    b->val = v;
    b->loc = loc;
    b->next = sc->head;
    sc->head = b;
    return true;
}

SVal sema_run_body(Sema *s, Scope *sc, Stmt *body, SrcLoc where, const char *what)
{
    SVal result = sema_error();
    bool returned = false;
    for (Stmt *st = body; st; st = st->next) {
        if (returned) {
            ERROR(s, st->loc, "statement after `return`");
            HINT(s, "`return` ends the %s", what);
            break;
        }
        switch (st->kind) {
        case STMT_HEADER:
            break; /* handled by the program header pass; an error inside a def */
        case STMT_ASSIGN: {
            if (sema_index_of(st->name, sema_header_names, N_HEADER_NAMES) >= 0) {
                ERROR(s, st->name_loc, "`%s` is a header statement, not a variable", st->name);
                if (strcmp(st->name, "causal") == 0) HINT(s, "write `causal;`");
                else HINT(s, "write `%s %s;` without `=`", st->name, strcmp(st->name, "vocab") == 0 ? "{...}" : "N");
                break;
            }
            const Stmt *outer = s->assign;
            s->assign = st; /* messages about the whole value call it by this name */
            SVal v = sema_check_expr(s, sc, st->expr);
            s->assign = outer;
            if ((v.kind == SV_SOP || v.kind == SV_SEL) && !v.node->named) sema_set_label(s, v.node, sc, st->name);
            if (v.kind == SV_LAMBDA || v.kind == SV_CMP) {
                ERROR(s, st->expr->loc, "%s cannot be assigned to a name", sema_describe_kind(v));
                v = sema_error();
            }
            bind(s, sc, st->name, st->name_loc, v);
            break;
        }
        case STMT_RETURN: {
            const Stmt *outer = s->assign;
            s->assign = NULL;
            result = sema_check_expr(s, sc, st->expr);
            s->assign = outer;
            returned = true;
            if (result.kind == SV_LAMBDA || result.kind == SV_CMP) {
                ERROR(s, st->expr->loc, "a %s returns an SOp or a selector, not %s", what, sema_describe_kind(result));
                result = sema_error();
            }
            break;
        }
        }
    }
    if (!returned) {
        ERROR(s, where, "the %s has no `return`", what);
        HINT(s, "end it with `return EXPR;`");
    }
    return result;
}


/* ---------------------------------------------------------- programs */

/* `vocab SET;`: the token values, checked (ranges, count, kinds, duplicates) into p->vocab. */
static void read_vocab(Sema *s, const Stmt *st, RaspProgram *p)
{
    if (st->hv_kind != HV_SET) {
        ERROR(s, st->loc, "`vocab` takes a set such as {\"a\", \"b\"} or {0..7}");
        return;
    }
    int count = 0;
    bool ok = true;
    for (int i = 0; i < st->nset; i++) {
        const SetItem *si = &st->set[i];
        if (!si->is_range) { count++; continue; }
        /* the width in unsigned arithmetic: hi - lo can overflow int64_t */
        if (si->hi < si->lo.u.i) {
            ERROR(s, si->loc, "the range %lld..%lld is empty", (long long)si->lo.u.i, (long long)si->hi);
            ok = false;
            continue;
        }
        uint64_t width = (uint64_t)si->hi - (uint64_t)si->lo.u.i; /* values - 1: fits, where the count may not */
        if (width >= RASP_MAX_VALUES) {
            char values[32];
            if (width == UINT64_MAX) snprintf(values, sizeof values, "18446744073709551616");
            else snprintf(values, sizeof values, "%llu", (unsigned long long)width + 1);
            ERROR(s, si->loc, "the range %lld..%lld is too large for a vocabulary: %s values, more than the limit "
                              "of %d", (long long)si->lo.u.i, (long long)si->hi, values, RASP_MAX_VALUES);
            ok = false;
            continue;
        }
        count += (int)((uint64_t)si->hi - (uint64_t)si->lo.u.i + 1);
    }
    if (!ok) return;
    if (count > RASP_MAX_VALUES) {
        ERROR(s, st->hv_loc, "the vocabulary has %d values, more than the limit of %d", count, RASP_MAX_VALUES);
        return;
    }
    if (count == 0) {
        ERROR(s, st->hv_loc, "the vocabulary is empty");
        return;
    }
    Value *vals = ARENA_ARRAY(s->arena, Value, count);
    int k = 0;
    bool has_str = false, has_num = false;
    for (int i = 0; i < st->nset; i++) {
        const SetItem *si = &st->set[i];
        if (si->is_range) {
            int width = (int)((uint64_t)si->hi - (uint64_t)si->lo.u.i); /* checked above: small */
            for (int j = 0; j <= width; j++) vals[k++] = value_int(si->lo.u.i + j);
            has_num = true;
        } else {
            vals[k++] = si->lo;
            if (si->lo.kind == TFMC_STR) has_str = true; else has_num = true;
            if (si->lo.kind == TFMC_STR && (si->lo.u.s[0] == '\0' || strpbrk(si->lo.u.s, " \t\n\r"))) {
                ERROR(s, si->loc, "a token cannot be empty or contain whitespace");
                HINT(s, "input lines are split at whitespace");
                ok = false;
            }
        }
    }
    if (has_str && has_num) {
        ERROR(s, st->hv_loc, "a vocabulary holds strings or numbers, not both");
        HINT(s, "input tokens are read as integers when the vocabulary is numbers, else as strings");
        ok = false;
    }
    int before = k;
    k = valueset_normalise(vals, k);
    if (k != before) {
        ERROR(s, st->hv_loc, "the vocabulary lists a value twice");
        ok = false;
    }
    if (!ok) return;
    p->vocab.v = vals;
    p->vocab.n = k;
}

/* The header statements of a program; false when vocab or max_len is unknown (no value sets then). */
static bool headers(Sema *s, Item *it, RaspProgram *p)
{
    const Stmt *seen[3] = { NULL, NULL, NULL };
    /* a header already reported as mistyped (`max_length 8;`) or assigned (`max_len = 8;`) is not
     * reported missing as well */
    bool attempted[3] = { false, false, false };
    for (Stmt *st = it->body; st; st = st->next) {
        int h = sema_index_of(st->name ? st->name : "", sema_header_names, N_HEADER_NAMES);
        if (st->kind == STMT_ASSIGN && h >= 0) attempted[h] = true;
        if (st->kind != STMT_HEADER) continue;
        if (h < 0) {
            const char *sug = diag_suggest(st->name, sema_header_names, N_HEADER_NAMES);
            ERROR(s, st->name_loc, "unknown statement `%s`", st->name);
            if (sug) HINT(s, "did you mean `%s`?", sug);
            else HINT(s, "a program holds `vocab`, `max_len`, `causal`, assignments `name = expr;` and `return expr;`");
            if (sug) attempted[sema_index_of(sug, sema_header_names, N_HEADER_NAMES)] = true;
            continue;
        }
        if (seen[h]) {
            ERROR(s, st->name_loc, "`%s` is given twice (first at line %d)", st->name, seen[h]->loc.first_line);
            continue;
        }
        seen[h] = st;
        if (h == 0) { /* vocab */
            read_vocab(s, st, p);
        } else if (h == 1) { /* max_len */
            if (st->hv_kind != HV_INT || st->hv_int < 1) {
                ERROR(s, st->hv_kind == HV_NONE ? st->loc : st->hv_loc, "`max_len` takes a positive integer");
                continue;
            }
            if (st->hv_int > 1024) {
                ERROR(s, st->hv_loc, "`max_len %lld` is larger than the limit of 1024", (long long)st->hv_int);
                continue;
            }
            p->max_len = (int)st->hv_int;
        } else { /* causal */
            if (st->hv_kind != HV_NONE) {
                ERROR(s, st->loc, "`causal` takes no value");
                continue;
            }
            p->causal = true;
        }
    }
    if (!seen[0] && !attempted[0]) {
        ERROR(s, it->name_loc, "program `%s` has no `vocab` statement", it->name);
        HINT(s, "add a line such as `vocab {\"a\", \"b\", \"c\"};`");
    }
    if (!seen[1] && !attempted[1]) {
        ERROR(s, it->name_loc, "program `%s` has no `max_len` statement", it->name);
        HINT(s, "add a line such as `max_len 8;`");
    }
    return p->vocab.n > 0 && p->max_len > 0;
}

static RaspProgram *check_program(Sema *s, Item *it)
{
    RaspProgram *p = ARENA_NEW(s->arena, RaspProgram);
    p->name = it->name;
    p->loc = it->name_loc;
    p->file = s->file;
    s->prog = p;
    s->builtin[0] = s->builtin[1] = s->builtin[2] = NULL;
    s->uses = NULL;
    s->uses_cap = 0;
    memset(&s->labels, 0, sizeof s->labels);
    s->read_sels = NULL;
    s->nread_sels = s->read_sels_cap = 0;
    int before = s->nerrors;
    s->have_sizes = headers(s, it, p);
    Scope sc = { NULL, NULL };
    SVal r = sema_run_body(s, &sc, it->body, it->name_loc, "program");
    if (r.kind == SV_CONST) r = sema_node_value(sema_full_node(s, r.c, it->name_loc));
    if (r.kind == SV_SEL) {
        for (Stmt *st = it->body; st; st = st->next)
            if (st->kind == STMT_RETURN) ERROR(s, st->expr->loc, "a program returns an SOp, not a selector");
        HINT(s, "aggregate it: return aggregate(sel, values);");
    }
    if (r.kind == SV_SOP) p->output = r.node;
    /* after other errors too: every node made is whole, and a violation is independent of them */
    if (p->causal && s->have_sizes) sema_check_causal(s, p);
    return s->nerrors == before && p->output ? p : NULL;
}

void sema_check(Arena *arena, const SrcFile *file, Item *items, DiagList *diags, SemaResult *out)
{
    Sema s = { 0 };
    s.arena = arena;
    s.file = file;
    s.diags = diags;
    int ndefs = 0;
    for (Item *it = items; it; it = it->next) ndefs += it->kind == ITEM_DEF;
    s.defs = ARENA_ARRAY(arena, Item *, ndefs ? ndefs : 1);
    for (Item *it = items; it; it = it->next)
        if (it->kind == ITEM_DEF) s.defs[s.ndefs++] = it;
    sema_check_defs(&s, items);
    for (Item *it = items; it; it = it->next) {
        if (it->kind == ITEM_DEF || it->broken) continue; /* a broken item's syntax error is reported */
        for (Item *o = items; o != it; o = o->next)
            if (o->kind != ITEM_DEF && strcmp(o->name, it->name) == 0) {
                /* named once, against the first definition */
                ERROR(&s, it->name_loc, "`%s` is already defined (line %d)", it->name, o->name_loc.first_line);
                break;
            }
        if (it->kind == ITEM_RASP) {
            RaspProgram *p = check_program(&s, it);
            if (p) VEC_PUSH(arena, out->programs, out->nprograms, out->cap_programs, p);
        } else {
            ModelDecl *m = ARENA_NEW(arena, ModelDecl);
            m->name = it->name;
            m->loc = it->name_loc;
            m->item = it;
            VEC_PUSH(arena, out->models, out->nmodels, out->cap_models, m);
        }
    }
    /* Defs that no program calls still get their names checked. */
    sema_check_unused_defs(&s);
}
