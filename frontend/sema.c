/* sema.c: semantic analysis of .tfm items. Resolves names, expands `def` calls, checks arities,
 * selectors versus SOps, lambdas and encodings, and builds each rasp program's checked graph with
 * the value set of every SOp (Tracr's basis inference). Reports every independent error. */
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

/* What an expression denotes while it is being checked. */
typedef enum SValKind { SV_ERROR, SV_SOP, SV_SEL, SV_CONST, SV_LAMBDA, SV_CMP } SValKind;
typedef struct SVal {
    SValKind kind;
    RaspNode *node;  /* SV_SOP, SV_SEL */
    Value c;         /* SV_CONST */
    const Ast *ast;  /* SV_LAMBDA, SV_CMP: the expression */
} SVal;

typedef struct Binding Binding;
struct Binding {
    const char *name;
    SVal val;
    SrcLoc loc;
    Binding *next;
};

typedef struct Scope {
    Binding *head;
    const Item *def; /* the def being expanded, NULL at program level */
} Scope;

typedef struct Sema {
    Arena *arena;
    const SrcFile *file;
    DiagList *diags;
    int nerrors;
    Item **defs;
    int ndefs;
    bool *def_recursive;    /* parallel to defs: part of a call cycle */
    bool *def_called;       /* parallel to defs: expanded at least once */
    RaspProgram *prog;
    bool have_sizes;        /* vocab and max_len are known: value sets can be computed */
    const Item *stack[32];  /* defs being expanded */
    int depth;
    RaspNode *builtin[3];   /* tokens, indices, length, made on first use */
    int *uses;              /* per node id: how many nodes read it */
    int uses_cap;
} Sema;

static const char *const builtin_ops[] = { "map", "select", "aggregate", "selector_width",
                                           "numerical", "categorical" };
static const char *const builtin_sops[] = { "tokens", "indices", "length" };
static const char *const scalar_funcs[] = { "min", "max", "abs", "floor" };
static const char *const header_names[] = { "vocab", "max_len", "causal" };

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int index_of(const char *name, const char *const *list, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0) return i;
    return -1;
}

static SVal sv_error(void) { SVal v = { 0 }; v.kind = SV_ERROR; return v; }
static SVal sv_node(RaspNode *n)
{
    SVal v = { 0 };
    v.kind = n->is_selector ? SV_SEL : SV_SOP;
    v.node = n;
    return v;
}
static SVal sv_const(Value c) { SVal v = { 0 }; v.kind = SV_CONST; v.c = c; return v; }

#define ERROR(s, loc, ...) ((s)->nerrors++, diag_error((s)->diags, (s)->file, (loc), __VA_ARGS__))
#define HINT(s, ...) diag_hint((s)->diags, __VA_ARGS__)

static const char *describe_kind(SVal v)
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

/* ---------------------------------------------------------------- nodes */

static const char *op_label(RaspOp op)
{
    switch (op) {
    case RN_TOKENS: return "tokens";
    case RN_INDICES: return "indices";
    case RN_LENGTH: return "length";
    case RN_FULL: return "full";
    case RN_MAP: return "map";
    case RN_SEQMAP: return "sequence_map";
    case RN_AGGREGATE: return "aggregate";
    case RN_SELECTOR_WIDTH: return "selector_width";
    case RN_SELECT: return "select";
    case RN_SEL_AND: return "select_and";
    case RN_SEL_OR: return "select_or";
    case RN_SEL_NOT: return "select_not";
    }
    return "?";
}

static bool label_taken(const RaspProgram *p, const char *label)
{
    for (int i = 0; i < p->nnodes; i++)
        if (p->nodes[i]->label && strcmp(p->nodes[i]->label, label) == 0) return true;
    return false;
}

static void set_label(Sema *s, RaspNode *n, const char *name)
{
    const char *label = name;
    for (int k = 2; label_taken(s->prog, label); k++) label = arena_printf(s->arena, "%s_%d", name, k);
    n->label = label;
    n->named = true;
}

static void compute_value_set(Sema *s, RaspNode *n);

static RaspNode *new_node(Sema *s, RaspOp op, SrcLoc loc, RaspNode *a, RaspNode *b)
{
    RaspProgram *p = s->prog;
    RaspNode *n = ARENA_NEW(s->arena, RaspNode);
    n->op = op;
    n->loc = loc;
    n->in[0] = a;
    n->in[1] = b;
    n->is_selector = op == RN_SELECT || op == RN_SEL_AND || op == RN_SEL_OR || op == RN_SEL_NOT;
    n->id = p->nnodes;
    VEC_PUSH(s->arena, p->nodes, p->nnodes, p->cap, n);
    n->label = arena_printf(s->arena, "%s_%d", op_label(op), n->id);
    if (s->uses_cap < p->cap) {
        int *u = ARENA_ARRAY(s->arena, int, p->cap);
        if (s->uses) memcpy(u, s->uses, sizeof(int) * (size_t)s->uses_cap);
        s->uses = u;
        s->uses_cap = p->cap;
    }
    s->uses[n->id] = 0;
    if (a) s->uses[a->id]++;
    if (b) s->uses[b->id]++;
    return n;
}

/* Finish a node: value set (which also type-checks lambdas over every input value). */
static RaspNode *finish(Sema *s, RaspNode *n)
{
    if (s->have_sizes && !n->is_selector) compute_value_set(s, n);
    return n;
}

static RaspNode *builtin_node(Sema *s, int which, SrcLoc loc)
{
    if (!s->builtin[which]) {
        static const RaspOp ops[] = { RN_TOKENS, RN_INDICES, RN_LENGTH };
        RaspNode *n = new_node(s, ops[which], loc, NULL, NULL);
        n->label = builtin_sops[which];
        n->named = true;
        s->builtin[which] = finish(s, n);
    }
    return s->builtin[which];
}

static RaspNode *full_node(Sema *s, Value c, SrcLoc loc)
{
    RaspNode *n = new_node(s, RN_FULL, loc, NULL, NULL);
    n->fill = c;
    return finish(s, n);
}

/* An SOp operand: SOps as they are, constants as constant sequences. */
static RaspNode *as_sop(Sema *s, SVal v, SrcLoc loc, const char *what)
{
    switch (v.kind) {
    case SV_SOP: return v.node;
    case SV_CONST: return full_node(s, v.c, loc);
    case SV_ERROR: return NULL;
    case SV_SEL:
    case SV_LAMBDA:
    case SV_CMP: break;
    }
    ERROR(s, loc, "%s needs an SOp, not %s", what, describe_kind(v));
    if (v.kind == SV_SEL) HINT(s, "turn a selector into an SOp with aggregate(sel, values) or selector_width(sel)");
    return NULL;
}

/* --------------------------------------------------------- value sets */

static void too_many_values(Sema *s, RaspNode *n, long count, long limit)
{
    ERROR(s, n->loc, "the value set of `%s` has %ld values, more than the limit of %ld", n->label,
          count, limit);
    HINT(s, "a compiled SOp needs one residual dimension per value: narrow the vocabulary, max_len, "
            "or the operation");
}

static void set_values(Sema *s, RaspNode *n, Value *vals, int count)
{
    count = valueset_normalise(vals, count);
    long limit = n->enc == ENC_NUMERICAL ? 16 * RASP_MAX_VALUES : RASP_MAX_VALUES;
    if (count > limit) {
        too_many_values(s, n, count, limit);
        count = 0;
    }
    n->vs.v = vals;
    n->vs.n = count;
}

/* Apply a lambda to one tuple of input values during inference; type errors become diagnostics. */
static bool apply(Sema *s, RaspNode *n, const Value *args, Value *out, bool *reported)
{
    char msg[256];
    ScalarStatus st = scalar_eval(n->fn, args, out, msg, sizeof msg);
    if (st == SCALAR_OK) return true;
    if (st == SCALAR_TYPE && !*reported) {
        char a[64], b[64];
        value_format(args[0], a, sizeof a);
        ERROR(s, n->fn->loc, "%s", msg);
        if (n->op == RN_SEQMAP) {
            value_format(args[1], b, sizeof b);
            HINT(s, "with `%s` = %s of `%s` and %s of `%s`; every value of the inputs must work", n->label,
                 a, n->in[0]->label, b, n->in[1]->label);
        } else {
            HINT(s, "for the value %s of `%s`; every value of the input must work", a, n->in[0]->label);
        }
        *reported = true;
    }
    return false; /* an arithmetic error (division by zero) drops the value, as Tracr does */
}

/* The means of every multiset of 1..max_len values drawn from vs, and 0 (nothing selected). */
static void mean_values(Sema *s, RaspNode *n, const ValueSet *vs)
{
    int limit = 16 * RASP_MAX_VALUES;
    for (int i = 0; i < vs->n; i++) {
        if (!value_is_number(vs->v[i])) {
            char b[64];
            value_format(vs->v[i], b, sizeof b);
            ERROR(s, n->loc, "a numerical aggregate averages numbers, but `%s` can be %s", n->in[1]->label, b);
            HINT(s, "aggregate it categorically, or map it to numbers first");
            return;
        }
    }
    /* sums[m]: every sum of m values; built one value at a time. */
    int cap = limit * 2 + 2;
    double *sums = malloc(sizeof(double) * (size_t)cap), *next = malloc(sizeof(double) * (size_t)cap);
    Value *out = ARENA_ARRAY(s->arena, Value, cap);
    if (!sums || !next) {
        free(sums);
        free(next);
        longjmp(*s->arena->on_oom, 1);
    }
    int nsums = 1, nout = 0;
    sums[0] = 0.0;
    out[nout++] = value_int(0);
    bool ok = true;
    for (int m = 1; m <= s->prog->max_len && ok; m++) {
        int nn = 0;
        for (int i = 0; i < nsums && ok; i++)
            for (int j = 0; j < vs->n; j++) {
                if (nn >= cap) { ok = false; break; }
                next[nn++] = sums[i] + value_number(vs->v[j]);
            }
        Value *tmp = ARENA_ARRAY(s->arena, Value, nn ? nn : 1);
        for (int i = 0; i < nn; i++) tmp[i] = value_float(next[i]);
        nn = valueset_normalise(tmp, nn);
        if (nn > limit) { ok = false; break; }
        for (int i = 0; i < nn; i++) {
            sums[i] = tmp[i].u.f;
            if (nout >= cap) { ok = false; break; }
            out[nout++] = value_float(sums[i] / m);
        }
        nsums = nn;
        nout = valueset_normalise(out, nout);
        if (nout > limit) ok = false;
    }
    free(sums);
    free(next);
    if (!ok) {
        too_many_values(s, n, nout, limit);
        return;
    }
    set_values(s, n, out, nout);
}

static void compute_value_set(Sema *s, RaspNode *n)
{
    RaspProgram *p = s->prog;
    Value *vals;
    int count = 0;
    bool reported = false;
    switch (n->op) {
    case RN_TOKENS:
        n->vs = p->vocab;
        return;
    case RN_INDICES:
    case RN_LENGTH:
    case RN_SELECTOR_WIDTH: {
        int lo = n->op == RN_LENGTH ? 1 : 0, hi = n->op == RN_INDICES ? p->max_len - 1 : p->max_len;
        vals = ARENA_ARRAY(s->arena, Value, hi - lo + 1);
        for (int i = lo; i <= hi; i++) vals[count++] = value_int(i);
        set_values(s, n, vals, count);
        return;
    }
    case RN_FULL:
        vals = ARENA_NEW(s->arena, Value);
        vals[0] = n->fill;
        set_values(s, n, vals, 1);
        return;
    case RN_MAP: {
        const ValueSet *in = &n->in[0]->vs;
        vals = ARENA_ARRAY(s->arena, Value, in->n ? in->n : 1);
        for (int i = 0; i < in->n; i++)
            if (apply(s, n, &in->v[i], &vals[count], &reported)) count++;
        set_values(s, n, vals, count);
        return;
    }
    case RN_SEQMAP: {
        const ValueSet *a = &n->in[0]->vs, *b = &n->in[1]->vs;
        long pairs = (long)a->n * b->n;
        if (pairs > RASP_MAX_PAIRS) {
            ERROR(s, n->loc, "`%s` combines %d values of `%s` with %d of `%s`: %ld pairs, more than the limit of %d",
                  n->label, a->n, n->in[0]->label, b->n, n->in[1]->label, pairs, RASP_MAX_PAIRS);
            HINT(s, "a two-SOp map is compiled as a table over every pair of input values");
            return;
        }
        vals = ARENA_ARRAY(s->arena, Value, pairs ? pairs : 1);
        for (int i = 0; i < a->n && !reported; i++)
            for (int j = 0; j < b->n; j++) {
                Value args[2] = { a->v[i], b->v[j] };
                if (apply(s, n, args, &vals[count], &reported)) count++;
                if (reported) break;
            }
        set_values(s, n, vals, count);
        return;
    }
    case RN_AGGREGATE:
        if (n->mean) mean_values(s, n, &n->in[1]->vs);
        else n->vs = n->in[1]->vs;
        return;
    case RN_SELECT:
    case RN_SEL_AND:
    case RN_SEL_OR:
    case RN_SEL_NOT:
        return;
    }
}

/* ------------------------------------------------- lambdas and fusion */

static SVal check_expr(Sema *s, Scope *sc, Ast *e);
static const Binding *lookup(const Scope *sc, const char *name);

static Ast *clone(Sema *s, const Ast *e)
{
    Ast *c = ARENA_NEW(s->arena, Ast);
    *c = *e;
    return c;
}

static Ast *const_ast(Sema *s, Value v, SrcLoc loc)
{
    Ast *c;
    switch (v.kind) {
    case TFMC_INT: c = ast_new(s->arena, AST_INT, loc); c->ival = v.u.i; return c;
    case TFMC_FLOAT: c = ast_new(s->arena, AST_FLOAT, loc); c->fval = v.u.f; return c;
    case TFMC_BOOL: c = ast_new(s->arena, AST_BOOL, loc); c->ival = v.u.b; return c;
    case TFMC_STR: c = ast_new(s->arena, AST_STRING, loc); c->str = v.u.s; return c;
    case TFMC_UNDEF: break;
    }
    return ast_new(s->arena, AST_BOOL, loc);
}

static Ast *param_ast(Sema *s, int index, const char *name, SrcLoc loc)
{
    Ast *p = ast_new(s->arena, AST_PARAM, loc);
    p->ival = index;
    p->str = name;
    return p;
}

/* Check a lambda body against its parameters: a copy with names resolved to parameters or to
 * constants of the enclosing scope. NULL on error. */
static Ast *check_body(Sema *s, Scope *sc, const Ast *lam, const Ast *e)
{
    Ast *c;
    switch (e->kind) {
    case AST_INT: case AST_FLOAT: case AST_STRING: case AST_BOOL: case AST_PARAM:
        return clone(s, e);
    case AST_NAME: {
        for (int i = 0; i < lam->nparams; i++)
            if (strcmp(lam->params[i], e->str) == 0) return param_ast(s, i, e->str, e->loc);
        const Binding *b = lookup(sc, e->str);
        if (b && b->val.kind == SV_CONST) return const_ast(s, b->val.c, e->loc);
        if (b && b->val.kind == SV_ERROR) return NULL;
        if (b || index_of(e->str, builtin_sops, COUNT(builtin_sops)) >= 0) {
            ERROR(s, e->loc, "a lambda body sees only its parameters and constants, and `%s` is %s",
                  e->str, b ? describe_kind(b->val) : "an SOp");
            HINT(s, "pass it as an argument instead: map((x, y) -> ..., s, %s)", e->str);
            return NULL;
        }
        const char *cands[8];
        int nc = 0;
        for (int i = 0; i < lam->nparams && nc < 8; i++) cands[nc++] = lam->params[i];
        const char *sug = diag_suggest(e->str, cands, nc);
        ERROR(s, e->loc, "unknown name `%s` in a lambda body", e->str);
        if (sug) HINT(s, "did you mean `%s`?", sug);
        return NULL;
    }
    case AST_CALL: {
        int f = index_of(e->str, scalar_funcs, COUNT(scalar_funcs));
        if (f < 0) {
            ERROR(s, e->loc, "`%s` cannot be called inside a lambda", e->str);
            HINT(s, "lambda bodies may call min, max, abs and floor");
            return NULL;
        }
        int want = f < 2 ? 2 : 1;
        if (e->nargs != want) {
            ERROR(s, e->loc, "`%s` takes %d argument%s, not %d", e->str, want, want == 1 ? "" : "s", e->nargs);
            return NULL;
        }
        c = clone(s, e);
        c->args = ARENA_ARRAY(s->arena, Ast *, e->nargs);
        bool ok = true;
        for (int i = 0; i < e->nargs; i++) ok &= (c->args[i] = check_body(s, sc, lam, e->args[i])) != NULL;
        return ok ? c : NULL;
    }
    case AST_UNARY:
    case AST_BINARY:
    case AST_COND: {
        c = clone(s, e);
        bool ok = (c->a = check_body(s, sc, lam, e->a)) != NULL;
        if (e->b) ok &= (c->b = check_body(s, sc, lam, e->b)) != NULL;
        if (e->c) ok &= (c->c = check_body(s, sc, lam, e->c)) != NULL;
        return ok ? c : NULL;
    }
    case AST_LAMBDA:
        ERROR(s, e->loc, "a lambda cannot be nested inside another lambda");
        return NULL;
    case AST_CMP_OP:
        ERROR(s, e->loc, "a bare `%s` is only an argument of select", ast_op_text(e->op));
        return NULL;
    }
    return NULL;
}

/* Replace the parameters of body: parameter i becomes subst[i]. */
static Ast *substitute(Sema *s, const Ast *e, Ast *const *subst)
{
    if (e->kind == AST_PARAM) return subst[e->ival];
    Ast *c = clone(s, e);
    if (e->a) c->a = substitute(s, e->a, subst);
    if (e->b) c->b = substitute(s, e->b, subst);
    if (e->c) c->c = substitute(s, e->c, subst);
    if (e->nargs) {
        c->args = ARENA_ARRAY(s->arena, Ast *, e->nargs);
        for (int i = 0; i < e->nargs; i++) c->args[i] = substitute(s, e->args[i], subst);
    }
    return c;
}

/* An elementwise node can absorb an unnamed map it alone reads (Tracr merges nested maps too). */
static bool fusable(const Sema *s, const RaspNode *n)
{
    return n && !n->named && s->uses[n->id] == 0 && n->enc == ENC_CATEGORICAL &&
           (n->op == RN_MAP || n->op == RN_SEQMAP);
}

/* Build the elementwise node out = body(ins...), fusing fresh maps among the inputs while the
 * result still reads at most two SOps. nins is 1 or 2 (two equal inputs collapse to one). */
static RaspNode *elementwise(Sema *s, Ast *body, RaspNode **ins, int nins, SrcLoc loc)
{
    RaspNode *leaves[2];
    int nleaves = 0;
    Ast *subst[2] = { NULL, NULL };
    for (int i = 0; i < nins; i++) {
        RaspNode *in = ins[i];
        /* Try to inline: its inputs must fit beside the leaves gathered so far and those still to come. */
        if (fusable(s, in) && !(nins == 2 && ins[0] == ins[1])) {
            RaspNode *trial[4];
            int nt = nleaves;
            memcpy(trial, leaves, sizeof(RaspNode *) * (size_t)nleaves);
            int arity = in->op == RN_SEQMAP ? 2 : 1;
            Ast *inner[2];
            for (int k = 0; k < arity; k++) {
                int at = -1;
                for (int t = 0; t < nt; t++)
                    if (trial[t] == in->in[k]) at = t;
                if (at < 0) { trial[nt] = in->in[k]; at = nt++; }
                inner[k] = param_ast(s, at, in->in[k]->label, loc);
            }
            int later = 0;
            bool numerical = false;
            for (int t = 0; t < nt; t++) numerical |= trial[t]->enc == ENC_NUMERICAL;
            for (int j = i + 1; j < nins; j++) {
                bool seen = false;
                for (int t = 0; t < nt; t++) seen |= trial[t] == ins[j];
                later += !seen;
                numerical |= ins[j]->enc == ENC_NUMERICAL;
            }
            /* A two-SOp map compiles as a table over categorical inputs: never fuse a numerical
             * SOp into one (keep the discretising map of it on its own). */
            if (nt + later <= 2 && !(nt + later == 2 && numerical)) {
                memcpy(leaves, trial, sizeof(RaspNode *) * (size_t)nt);
                nleaves = nt;
                subst[i] = substitute(s, in->fn, inner);
                /* the fused node is gone: its readers no longer count */
                for (int k = 0; k < arity; k++) s->uses[in->in[k]->id]--;
                in->op = RN_FULL; /* mark dead; removed below */
                in->fill.kind = TFMC_UNDEF;
                in->label = NULL;
                continue;
            }
        }
        int at = -1;
        for (int t = 0; t < nleaves; t++)
            if (leaves[t] == in) at = t;
        if (at < 0) { leaves[nleaves] = in; at = nleaves++; }
        subst[i] = param_ast(s, at, in->label, loc);
    }
    /* Drop nodes killed by fusion (they are always the most recent ones). */
    RaspProgram *p = s->prog;
    for (int i = 0; i < p->nnodes; i++) {
        if (p->nodes[i]->op == RN_FULL && p->nodes[i]->label == NULL) {
            for (int j = i + 1; j < p->nnodes; j++) {
                p->nodes[j - 1] = p->nodes[j];
                s->uses[j - 1] = s->uses[j];
                p->nodes[j - 1]->id = j - 1;
            }
            p->nnodes--;
            i--;
        }
    }
    Ast *fn = substitute(s, body, subst);
    RaspNode *n = new_node(s, nleaves == 2 ? RN_SEQMAP : RN_MAP, loc, leaves[0], nleaves == 2 ? leaves[1] : NULL);
    n->fn = fn;
    return finish(s, n);
}

/* ------------------------------------------------------- expressions */

static const Binding *lookup(const Scope *sc, const char *name)
{
    for (const Binding *b = sc->head; b; b = b->next)
        if (strcmp(b->name, name) == 0) return b;
    return NULL;
}

static const Item *find_def(const Sema *s, const char *name, int *index)
{
    for (int i = 0; i < s->ndefs; i++)
        if (strcmp(s->defs[i]->name, name) == 0) {
            if (index) *index = i;
            return s->defs[i];
        }
    return NULL;
}

static void unknown_name(Sema *s, const Scope *sc, const char *name, SrcLoc loc, bool call)
{
    const char *cands[256];
    int n = 0;
    for (const Binding *b = sc->head; b && n < 200; b = b->next) cands[n++] = b->name;
    for (int i = 0; i < COUNT(builtin_sops); i++) cands[n++] = builtin_sops[i];
    if (call) {
        for (int i = 0; i < COUNT(builtin_ops); i++) cands[n++] = builtin_ops[i];
        for (int i = 0; i < s->ndefs && n < 250; i++) cands[n++] = s->defs[i]->name;
    }
    const char *sug = diag_suggest(name, cands, n);
    if (call) ERROR(s, loc, "unknown function `%s`", name);
    else ERROR(s, loc, "unknown name `%s`", name);
    if (sug) HINT(s, "did you mean `%s`?", sug);
}

static SVal check_name(Sema *s, Scope *sc, Ast *e)
{
    const Binding *b = lookup(sc, e->str);
    if (b) return b->val;
    int k = index_of(e->str, builtin_sops, COUNT(builtin_sops));
    if (k >= 0) {
        if (k == 2 && s->prog->causal) {
            ERROR(s, e->loc, "`length` is not available in a causal program");
            HINT(s, "a causal position sees only the tokens before it; count them with "
                    "selector_width(select(indices, indices, <=))");
            return sv_error();
        }
        return sv_node(builtin_node(s, k, e->loc));
    }
    if (find_def(s, e->str, NULL) || index_of(e->str, builtin_ops, COUNT(builtin_ops)) >= 0) {
        ERROR(s, e->loc, "`%s` is a function; call it with arguments", e->str);
        return sv_error();
    }
    if (index_of(e->str, header_names, COUNT(header_names)) >= 0) {
        ERROR(s, e->loc, "`%s` is a program header statement, not a value", e->str);
        return sv_error();
    }
    unknown_name(s, sc, e->str, e->loc, false);
    return sv_error();
}

/* Fold a scalar expression whose operands are all constants. */
static SVal fold(Sema *s, Ast *body, SrcLoc loc)
{
    Value out;
    char msg[256];
    ScalarStatus st = scalar_eval(body, NULL, &out, msg, sizeof msg);
    if (st == SCALAR_OK) return sv_const(out);
    if (st == SCALAR_ARITH) ERROR(s, loc, "arithmetic error in a constant expression (division by zero or overflow)");
    else ERROR(s, loc, "%s", msg);
    return sv_error();
}

/* An operator or scalar function applied to operands that may be SOps: fold constants, else
 * build an elementwise map over the (at most two) distinct SOps. */
static SVal elementwise_expr(Sema *s, Ast *e, SVal *ops, int nops)
{
    RaspNode *ins[3];
    int nins = 0;
    Ast *args[3];
    for (int i = 0; i < nops; i++) {
        if (ops[i].kind == SV_ERROR) return sv_error();
        if (ops[i].kind == SV_SEL) {
            ERROR(s, e->loc, "`%s` cannot take a selector", e->kind == AST_CALL ? e->str : e->kind == AST_COND ? "?:" : ast_op_text(e->op));
            HINT(s, "selectors combine with `and`, `or` and `not` only");
            return sv_error();
        }
        if (ops[i].kind == SV_LAMBDA || ops[i].kind == SV_CMP) {
            ERROR(s, e->loc, "%s cannot be an operand", describe_kind(ops[i]));
            return sv_error();
        }
    }
    for (int i = 0; i < nops; i++) {
        if (ops[i].kind == SV_CONST) {
            args[i] = const_ast(s, ops[i].c, e->loc);
            continue;
        }
        int at = -1;
        for (int k = 0; k < nins; k++)
            if (ins[k] == ops[i].node) at = k;
        if (at < 0) { ins[nins] = ops[i].node; at = nins++; }
        args[i] = param_ast(s, at, ops[i].node->label, e->loc);
    }
    Ast *body = clone(s, e);
    if (e->kind == AST_CALL) {
        body->args = ARENA_ARRAY(s->arena, Ast *, nops);
        for (int i = 0; i < nops; i++) body->args[i] = args[i];
    } else {
        body->a = args[0];
        body->b = nops > 1 ? args[1] : NULL;
        body->c = nops > 2 ? args[2] : NULL;
    }
    if (nins == 0) return fold(s, body, e->loc);
    if (nins > 2) {
        ERROR(s, e->loc, "an elementwise expression combines at most two SOps, and this one combines %d", nins);
        HINT(s, "name an intermediate result: t = a + b; then use t");
        return sv_error();
    }
    return sv_node(elementwise(s, body, ins, nins, e->loc));
}

static SVal check_binary(Sema *s, Scope *sc, Ast *e)
{
    SVal ops[2] = { check_expr(s, sc, e->a), check_expr(s, sc, e->b) };
    if (ops[0].kind == SV_ERROR || ops[1].kind == SV_ERROR) return sv_error();
    bool sel0 = ops[0].kind == SV_SEL, sel1 = ops[1].kind == SV_SEL;
    if (sel0 || sel1) {
        if ((e->op == OP_AND || e->op == OP_OR) && sel0 && sel1) {
            RaspNode *n = new_node(s, e->op == OP_AND ? RN_SEL_AND : RN_SEL_OR, e->loc, ops[0].node, ops[1].node);
            return sv_node(n);
        }
        if (e->op == OP_AND || e->op == OP_OR) {
            ERROR(s, e->loc, "`%s` combines two selectors or two SOps, not a selector and %s",
                  ast_op_text(e->op), describe_kind(sel0 ? ops[1] : ops[0]));
            return sv_error();
        }
    }
    return elementwise_expr(s, e, ops, 2);
}

static SVal check_call(Sema *s, Scope *sc, Ast *e);

static SVal check_expr(Sema *s, Scope *sc, Ast *e)
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
    case AST_PARAM: return sv_error();
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
        SVal op = check_expr(s, sc, e->a);
        if (op.kind == SV_SEL && e->op == OP_NOT) return sv_node(new_node(s, RN_SEL_NOT, e->loc, op.node, NULL));
        return elementwise_expr(s, e, &op, 1);
    }
    case AST_BINARY: return check_binary(s, sc, e);
    case AST_COND: {
        SVal ops[3] = { check_expr(s, sc, e->a), check_expr(s, sc, e->b), check_expr(s, sc, e->c) };
        return elementwise_expr(s, e, ops, 3);
    }
    case AST_CALL: return check_call(s, sc, e);
    }
    return sv_error();
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
    if (v.kind == SV_SEL) return v.node;
    if (v.kind == SV_ERROR) return NULL;
    char text[96];
    ast_format(arg, text, sizeof text);
    ERROR(s, arg->loc, "`%s` needs a selector as its first argument, but `%s` is %s", fn, text, describe_kind(v));
    HINT(s, "make a selector with select(keys, queries, ==)");
    return NULL;
}

static SVal check_map(Sema *s, Scope *sc, Ast *e)
{
    if (!want_args(s, e, 2, 3)) return sv_error();
    SVal lam = check_expr(s, sc, e->args[0]);
    int nsops = e->nargs - 1;
    SVal vals[2];
    bool ok = lam.kind == SV_LAMBDA;
    if (lam.kind != SV_LAMBDA && lam.kind != SV_ERROR) {
        ERROR(s, e->args[0]->loc, "the first argument of `map` must be a lambda such as x -> x + 1, not %s",
              describe_kind(lam));
    }
    for (int i = 0; i < nsops; i++) {
        vals[i] = check_expr(s, sc, e->args[i + 1]);
        if (vals[i].kind == SV_ERROR) ok = false;
        else if (vals[i].kind != SV_SOP && vals[i].kind != SV_CONST) {
            ERROR(s, e->args[i + 1]->loc, "`map` applies to SOps, not to %s", describe_kind(vals[i]));
            if (vals[i].kind == SV_SEL) HINT(s, "turn a selector into an SOp with aggregate or selector_width");
            ok = false;
        }
    }
    if (lam.kind == SV_LAMBDA && lam.ast->nparams != nsops) {
        ERROR(s, lam.ast->loc, "this lambda takes %d parameter%s but `map` gives it %d SOp%s", lam.ast->nparams,
              lam.ast->nparams == 1 ? "" : "s", nsops, nsops == 1 ? "" : "s");
        ok = false;
    }
    if (lam.kind != SV_LAMBDA) return sv_error();
    Ast *body = check_body(s, sc, lam.ast, lam.ast->a);
    if (!ok || !body) return sv_error();
    /* Build it like an operator over the arguments: constants fold in, equal SOps merge. */
    RaspNode *ins[2];
    int nins = 0;
    Ast *subst[2];
    for (int i = 0; i < nsops; i++) {
        if (vals[i].kind == SV_CONST) {
            subst[i] = const_ast(s, vals[i].c, e->loc);
            continue;
        }
        int at = -1;
        for (int k = 0; k < nins; k++)
            if (ins[k] == vals[i].node) at = k;
        if (at < 0) { ins[nins] = vals[i].node; at = nins++; }
        subst[i] = param_ast(s, at, vals[i].node->label, e->loc);
    }
    body = substitute(s, body, subst);
    if (nins == 0) return fold(s, body, e->loc);
    RaspNode *n = elementwise(s, body, ins, nins, e->loc);
    return sv_node(n);
}

static SVal check_select(Sema *s, Scope *sc, Ast *e)
{
    if (!want_args(s, e, 3, 3)) return sv_error();
    RaspNode *kq[2] = { NULL, NULL };
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        SVal v = check_expr(s, sc, e->args[i]);
        kq[i] = as_sop(s, v, e->args[i]->loc, i == 0 ? "the keys of `select`" : "the queries of `select`");
        if (!kq[i]) { ok = false; continue; }
        if (kq[i]->enc == ENC_NUMERICAL) {
            ERROR(s, e->args[i]->loc, "`select` compares categorical SOps, but `%s` is numerical", kq[i]->label);
            HINT(s, "use categorical(...) or the SOp before numerical(...)");
            ok = false;
        }
    }
    Ast *pred = e->args[2];
    SVal p = check_expr(s, sc, pred);
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
        } else if (!(fn = check_body(s, sc, p.ast, p.ast->a))) {
            ok = false;
        }
    } else if (p.kind != SV_ERROR) {
        ERROR(s, pred->loc, "the third argument of `select` must be a comparison (== != < <= > >=), true, false, "
                            "or a lambda (k, q) -> ..., not %s", describe_kind(p));
        ok = false;
    } else {
        ok = false;
    }
    if (!ok) return sv_error();
    RaspNode *n = new_node(s, RN_SELECT, e->loc, kq[0], kq[1]);
    n->cmp = cmp;
    n->fn = fn;
    /* Check the predicate over every (key, query) pair of values, as a map would be. */
    if (fn && s->have_sizes) {
        const ValueSet *a = &kq[0]->vs, *b = &kq[1]->vs;
        if ((long)a->n * b->n <= RASP_MAX_PAIRS) {
            char msg[256];
            for (int i = 0; i < a->n; i++)
                for (int j = 0; j < b->n; j++) {
                    Value args[2] = { a->v[i], b->v[j] }, out;
                    if (scalar_eval(fn, args, &out, msg, sizeof msg) == SCALAR_TYPE) {
                        char x[64], y[64];
                        value_format(args[0], x, sizeof x);
                        value_format(args[1], y, sizeof y);
                        ERROR(s, fn->loc, "%s", msg);
                        HINT(s, "for the key %s and the query %s", x, y);
                        return sv_error();
                    }
                }
        }
    }
    return sv_node(n);
}

static SVal set_encoding(Sema *s, Scope *sc, Ast *e, Encoding enc)
{
    if (!want_args(s, e, 1, 1)) return sv_error();
    SVal v = check_expr(s, sc, e->args[0]);
    if (v.kind == SV_CONST) v = sv_node(full_node(s, v.c, e->args[0]->loc));
    if (v.kind == SV_ERROR) return v;
    if (v.kind != SV_SOP) {
        ERROR(s, e->args[0]->loc, "`%s` sets the encoding of an SOp, not of %s", e->str, describe_kind(v));
        return sv_error();
    }
    RaspNode *n = v.node;
    if (n->enc == enc) return v;
    if (n->named || s->uses[n->id] > 0 || n->op == RN_TOKENS || n->op == RN_INDICES || n->op == RN_LENGTH) {
        /* The SOp is shared: the new encoding belongs to a copy (as Tracr's annotate does). */
        RaspNode *c = new_node(s, n->op, e->loc, n->in[0], n->in[1]);
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
            c->fn = param_ast(s, 0, n->label, e->loc);
        }
        n = c;
    }
    n->enc = enc;
    if (enc == ENC_NUMERICAL) {
        for (int i = 0; i < n->vs.n; i++)
            if (!value_is_number(n->vs.v[i])) {
                char b[64];
                value_format(n->vs.v[i], b, sizeof b);
                ERROR(s, e->loc, "a numerical SOp holds numbers, but `%s` can be %s", n->label, b);
                return sv_error();
            }
        if (n->op == RN_AGGREGATE && !n->mean) {
            n->mean = true;
            if (s->have_sizes) compute_value_set(s, n);
        }
    }
    return sv_node(n);
}

static SVal expand_def(Sema *s, Scope *sc, Ast *e, const Item *def, int index);

static SVal check_call(Sema *s, Scope *sc, Ast *e)
{
    const char *f = e->str;
    if (strcmp(f, "map") == 0) return check_map(s, sc, e);
    if (strcmp(f, "select") == 0) return check_select(s, sc, e);
    if (strcmp(f, "numerical") == 0) return set_encoding(s, sc, e, ENC_NUMERICAL);
    if (strcmp(f, "categorical") == 0) return set_encoding(s, sc, e, ENC_CATEGORICAL);
    if (strcmp(f, "aggregate") == 0) {
        if (!want_args(s, e, 2, 2)) return sv_error();
        RaspNode *sel = need_selector(s, check_expr(s, sc, e->args[0]), e->args[0], f);
        RaspNode *val = as_sop(s, check_expr(s, sc, e->args[1]), e->args[1]->loc, "the values of `aggregate`");
        if (!sel || !val) return sv_error();
        RaspNode *n = new_node(s, RN_AGGREGATE, e->loc, sel, val);
        n->mean = val->enc == ENC_NUMERICAL;
        n->enc = val->enc;
        return sv_node(finish(s, n));
    }
    if (strcmp(f, "selector_width") == 0) {
        if (!want_args(s, e, 1, 1)) return sv_error();
        RaspNode *sel = need_selector(s, check_expr(s, sc, e->args[0]), e->args[0], f);
        if (!sel) return sv_error();
        return sv_node(finish(s, new_node(s, RN_SELECTOR_WIDTH, e->loc, sel, NULL)));
    }
    int fi = index_of(f, scalar_funcs, COUNT(scalar_funcs));
    if (fi >= 0) {
        int want = fi < 2 ? 2 : 1;
        if (!want_args(s, e, want, want)) return sv_error();
        SVal ops[2];
        for (int i = 0; i < want; i++) ops[i] = check_expr(s, sc, e->args[i]);
        return elementwise_expr(s, e, ops, want);
    }
    int di;
    const Item *def = find_def(s, f, &di);
    if (def) return expand_def(s, sc, e, def, di);
    const Binding *b = lookup(sc, f);
    if (b || index_of(f, builtin_sops, COUNT(builtin_sops)) >= 0) {
        ERROR(s, e->loc, "`%s` is %s, not a function", f, b ? describe_kind(b->val) : "an SOp");
        return sv_error();
    }
    unknown_name(s, sc, f, e->loc, true);
    for (int i = 0; i < e->nargs; i++) check_expr(s, sc, e->args[i]);
    return sv_error();
}

/* --------------------------------------------------------- statements */

static bool bind(Sema *s, Scope *sc, const char *name, SrcLoc loc, SVal v)
{
    const Binding *old = lookup(sc, name);
    if (old) {
        ERROR(s, loc, "`%s` is already defined (line %d)", name, old->loc.first_line);
        HINT(s, "each name is assigned once; choose a new name");
        return false;
    }
    if (index_of(name, builtin_sops, COUNT(builtin_sops)) >= 0 ||
        index_of(name, builtin_ops, COUNT(builtin_ops)) >= 0 ||
        index_of(name, scalar_funcs, COUNT(scalar_funcs)) >= 0) {
        ERROR(s, loc, "`%s` is a built-in name and cannot be assigned", name);
        return false;
    }
    if (find_def(s, name, NULL)) {
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

/* Run the assignments and the return of a body; returns the returned value. */
static SVal run_body(Sema *s, Scope *sc, Stmt *body, SrcLoc where, const char *what)
{
    SVal result = sv_error();
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
            if (index_of(st->name, header_names, COUNT(header_names)) >= 0) {
                ERROR(s, st->name_loc, "`%s` is a header statement, not a variable", st->name);
                HINT(s, "write `%s %s;` without `=`", st->name, strcmp(st->name, "vocab") == 0 ? "{...}" : "N");
                break;
            }
            SVal v = check_expr(s, sc, st->expr);
            if (v.kind == SV_SOP || v.kind == SV_SEL) {
                RaspNode *n = v.node;
                if (!n->named) {
                    const char *label = sc->def ? arena_printf(s->arena, "%s.%s", sc->def->name, st->name) : st->name;
                    set_label(s, n, label);
                }
            }
            if (v.kind == SV_LAMBDA || v.kind == SV_CMP) {
                ERROR(s, st->expr->loc, "%s cannot be assigned to a name", describe_kind(v));
                v = sv_error();
            }
            bind(s, sc, st->name, st->name_loc, v);
            break;
        }
        case STMT_RETURN:
            result = check_expr(s, sc, st->expr);
            returned = true;
            if (result.kind == SV_LAMBDA || result.kind == SV_CMP) {
                ERROR(s, st->expr->loc, "a %s returns an SOp or a selector, not %s", what, describe_kind(result));
                result = sv_error();
            }
            break;
        }
    }
    if (!returned) {
        ERROR(s, where, "the %s has no `return`", what);
        HINT(s, "end it with `return EXPR;`");
    }
    return result;
}

static SVal expand_def(Sema *s, Scope *sc, Ast *e, const Item *def, int index)
{
    SVal args[64];
    int n = e->nargs < 64 ? e->nargs : 64;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        args[i] = check_expr(s, sc, e->args[i]);
        if (args[i].kind == SV_ERROR) ok = false;
        if (args[i].kind == SV_LAMBDA || args[i].kind == SV_CMP) {
            ERROR(s, e->args[i]->loc, "a function takes SOps, selectors and constants, not %s", describe_kind(args[i]));
            ok = false;
        }
    }
    if (e->nargs != def->nparams) {
        ERROR(s, e->loc, "`%s` takes %d argument%s, not %d", def->name, def->nparams, def->nparams == 1 ? "" : "s",
              e->nargs);
        HINT(s, "`%s` is defined at line %d", def->name, def->loc.first_line);
        return sv_error();
    }
    if (!ok || s->def_recursive[index]) return sv_error();
    s->def_called[index] = true;
    if (s->depth >= COUNT(s->stack)) {
        ERROR(s, e->loc, "functions nest more than %d deep", COUNT(s->stack));
        return sv_error();
    }
    Scope inner = { NULL, def };
    for (int i = 0; i < def->nparams; i++) {
        Binding *b = ARENA_NEW(s->arena, Binding);
        b->name = def->params[i];
        b->val = args[i];
        b->loc = def->param_locs[i];
        b->next = inner.head;
        inner.head = b;
    }
    s->stack[s->depth++] = def;
    SVal r = run_body(s, &inner, def->body, def->name_loc, "function");
    s->depth--;
    return r;
}

/* ------------------------------------------------------------- defs */

/* Calls to defs inside an expression, for the recursion check. */
static void collect_calls(const Sema *s, const Ast *e, int from, bool *edges)
{
    if (!e) return;
    if (e->kind == AST_CALL) {
        int k;
        if (find_def(s, e->str, &k)) edges[from * s->ndefs + k] = true;
        for (int i = 0; i < e->nargs; i++) collect_calls(s, e->args[i], from, edges);
    }
    collect_calls(s, e->a, from, edges);
    collect_calls(s, e->b, from, edges);
    collect_calls(s, e->c, from, edges);
}

/* Depth-first search from `at`; path holds the call chain. Reports the first cycle through `start`. */
static bool find_cycle(const Sema *s, const bool *edges, int start, int at, int *path, int depth, bool *seen)
{
    path[depth] = at;
    for (int k = 0; k < s->ndefs; k++) {
        if (!edges[at * s->ndefs + k]) continue;
        if (k == start) {
            path[depth + 1] = k;
            return true;
        }
        if (seen[k]) continue;
        seen[k] = true;
        if (find_cycle(s, edges, start, k, path, depth + 1, seen)) return true;
    }
    return false;
}

static void check_defs(Sema *s)
{
    int n = s->ndefs;
    s->def_recursive = ARENA_ARRAY(s->arena, bool, n ? n : 1);
    s->def_called = ARENA_ARRAY(s->arena, bool, n ? n : 1);
    for (int i = 0; i < n; i++) {
        const Item *d = s->defs[i];
        for (int j = 0; j < i; j++)
            if (strcmp(s->defs[j]->name, d->name) == 0) {
                ERROR(s, d->name_loc, "function `%s` is already defined (line %d)", d->name,
                      s->defs[j]->name_loc.first_line);
            }
        for (int p = 0; p < d->nparams; p++)
            for (int q = 0; q < p; q++)
                if (strcmp(d->params[p], d->params[q]) == 0)
                    ERROR(s, d->param_locs[p], "parameter `%s` appears twice", d->params[p]);
        if (index_of(d->name, builtin_ops, COUNT(builtin_ops)) >= 0 ||
            index_of(d->name, builtin_sops, COUNT(builtin_sops)) >= 0 ||
            index_of(d->name, scalar_funcs, COUNT(scalar_funcs)) >= 0)
            ERROR(s, d->name_loc, "`%s` is a built-in name and cannot name a function", d->name);
    }
    bool *edges = ARENA_ARRAY(s->arena, bool, n > 0 ? n * n : 1);
    for (int i = 0; i < n; i++)
        for (const Stmt *st = s->defs[i]->body; st; st = st->next) collect_calls(s, st->expr, i, edges);
    int *path = ARENA_ARRAY(s->arena, int, n + 2);
    bool *seen = ARENA_ARRAY(s->arena, bool, n ? n : 1);
    for (int i = 0; i < n; i++) {
        memset(seen, 0, sizeof(bool) * (size_t)n);
        if (!find_cycle(s, edges, i, i, path, 0, seen)) continue;
        s->def_recursive[i] = true;
        char chain[512];
        int len = 0;
        for (int k = 0; len < (int)sizeof chain - 80; k++) {
            len += snprintf(chain + len, sizeof chain - (size_t)len, "%s`%s`", k ? " -> " : "", s->defs[path[k]]->name);
            if (k > 0 && path[k] == i) break;
        }
        ERROR(s, s->defs[i]->name_loc, "function `%s` is recursive: %s", s->defs[i]->name, chain);
        HINT(s, "calls are expanded at compile time, so a function cannot call itself");
    }
}

/* ---------------------------------------------------------- programs */

static bool headers(Sema *s, Item *it, RaspProgram *p)
{
    const Stmt *seen[3] = { NULL, NULL, NULL };
    for (Stmt *st = it->body; st; st = st->next) {
        if (st->kind != STMT_HEADER) continue;
        int h = index_of(st->name, header_names, COUNT(header_names));
        if (h < 0) {
            const char *sug = diag_suggest(st->name, header_names, COUNT(header_names));
            ERROR(s, st->name_loc, "unknown statement `%s`", st->name);
            if (sug) HINT(s, "did you mean `%s`?", sug);
            else HINT(s, "a program holds `vocab`, `max_len`, `causal`, assignments `name = expr;` and `return expr;`");
            continue;
        }
        if (seen[h]) {
            ERROR(s, st->name_loc, "`%s` is given twice (first at line %d)", st->name, seen[h]->loc.first_line);
            continue;
        }
        seen[h] = st;
        if (h == 0) { /* vocab */
            if (st->hv_kind != HV_SET) {
                ERROR(s, st->loc, "`vocab` takes a set such as {\"a\", \"b\"} or {0..7}");
                continue;
            }
            int count = 0;
            bool ok = true;
            for (int i = 0; i < st->nset; i++) {
                const SetItem *si = &st->set[i];
                if (!si->is_range) { count++; continue; }
                if (si->hi < si->lo.u.i || si->hi - si->lo.u.i >= RASP_MAX_VALUES) {
                    ERROR(s, si->loc, "the range %lld..%lld is %s", (long long)si->lo.u.i, (long long)si->hi,
                          si->hi < si->lo.u.i ? "empty" : "too large for a vocabulary");
                    ok = false;
                    continue;
                }
                count += (int)(si->hi - si->lo.u.i + 1);
            }
            if (!ok) continue;
            if (count > RASP_MAX_VALUES) {
                ERROR(s, st->hv_loc, "the vocabulary has %d values, more than the limit of %d", count, RASP_MAX_VALUES);
                continue;
            }
            if (count == 0) {
                ERROR(s, st->hv_loc, "the vocabulary is empty");
                continue;
            }
            Value *vals = ARENA_ARRAY(s->arena, Value, count);
            int k = 0;
            bool has_str = false, has_num = false;
            for (int i = 0; i < st->nset; i++) {
                const SetItem *si = &st->set[i];
                if (si->is_range) {
                    for (int64_t v = si->lo.u.i; v <= si->hi; v++) vals[k++] = value_int(v);
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
            if (!ok) continue;
            p->vocab.v = vals;
            p->vocab.n = k;
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
    if (!seen[0]) {
        ERROR(s, it->name_loc, "program `%s` has no `vocab` statement", it->name);
        HINT(s, "add a line such as `vocab {\"a\", \"b\", \"c\"};`");
    }
    if (!seen[1]) {
        ERROR(s, it->name_loc, "program `%s` has no `max_len` statement", it->name);
        HINT(s, "add a line such as `max_len 8;`");
    }
    return p->vocab.n > 0 && p->max_len > 0;
}

/* Which built-ins each node reads (bit 0 tokens, 1 indices, 2 length). */
static unsigned deps(const RaspNode *n, unsigned *memo)
{
    if (memo[n->id] & 8u) return memo[n->id] & 7u;
    unsigned d = n->op == RN_TOKENS ? 1u : n->op == RN_INDICES ? 2u : n->op == RN_LENGTH ? 4u : 0u;
    for (int i = 0; i < 2; i++)
        if (n->in[i]) d |= deps(n->in[i], memo);
    memo[n->id] = d | 8u;
    return d;
}

/* Does this selector provably select only keys j <= i? */
static bool looks_backward(const RaspNode *n, unsigned *memo, const RaspTrace *t)
{
    if (!(deps(n, memo) & 5u)) { /* a function of positions only: check every pair */
        const bool *m = t->sel[n->id];
        for (int i = 0; i < t->n; i++)
            for (int j = i + 1; j < t->n; j++)
                if (m[i * t->n + j]) return false;
        return true;
    }
    if (n->op == RN_SEL_AND) return looks_backward(n->in[0], memo, t) || looks_backward(n->in[1], memo, t);
    if (n->op == RN_SEL_OR) return looks_backward(n->in[0], memo, t) && looks_backward(n->in[1], memo, t);
    return false;
}

static void check_causal(Sema *s, RaspProgram *p)
{
    Arena scratch;
    arena_init(&scratch, s->arena->alloc, s->arena->on_oom);
    Value *tokens = ARENA_ARRAY(&scratch, Value, p->max_len);
    for (int i = 0; i < p->max_len; i++) tokens[i] = p->vocab.v[0];
    RaspTrace t;
    interp_run(p, tokens, p->max_len, &scratch, &t);
    unsigned *memo = ARENA_ARRAY(&scratch, unsigned, p->nnodes);
    for (int i = 0; i < p->nnodes; i++) {
        const RaspNode *n = p->nodes[i];
        if (n->op != RN_AGGREGATE && n->op != RN_SELECTOR_WIDTH) continue;
        if (looks_backward(n->in[0], memo, &t)) continue;
        ERROR(s, n->in[0]->loc, "in a causal program every selector must look only backwards, and `%s` may select "
                                "later positions", n->in[0]->label);
        HINT(s, "restrict it with `and select(indices, indices, <=)`");
    }
    arena_free(&scratch);
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
    int before = s->nerrors;
    s->have_sizes = headers(s, it, p);
    Scope sc = { NULL, NULL };
    SVal r = run_body(s, &sc, it->body, it->name_loc, "program");
    if (r.kind == SV_CONST) r = sv_node(full_node(s, r.c, it->name_loc));
    if (r.kind == SV_SEL) {
        for (Stmt *st = it->body; st; st = st->next)
            if (st->kind == STMT_RETURN) ERROR(s, st->expr->loc, "a program returns an SOp, not a selector");
        HINT(s, "aggregate it: return aggregate(sel, values);");
    }
    if (r.kind == SV_SOP) p->output = r.node;
    if (s->nerrors == before && p->causal && s->have_sizes) check_causal(s, p);
    return s->nerrors == before && p->output ? p : NULL;
}

/* Names in a def that no program calls: resolved without knowing what its parameters hold. */
static void names_in(Sema *s, const Item *def, const Ast *e, const char *const *locals, int nlocals,
                     const Ast *lam)
{
    if (!e) return;
    if (e->kind == AST_NAME) {
        for (int i = 0; lam && i < lam->nparams; i++)
            if (strcmp(lam->params[i], e->str) == 0) return;
        if (index_of(e->str, locals, nlocals) >= 0 || index_of(e->str, builtin_sops, COUNT(builtin_sops)) >= 0)
            return;
        const char *sug = diag_suggest(e->str, locals, nlocals);
        if (!sug) sug = diag_suggest(e->str, builtin_sops, COUNT(builtin_sops));
        ERROR(s, e->loc, "unknown name `%s`", e->str);
        if (sug) HINT(s, "did you mean `%s`?", sug);
        return;
    }
    if (e->kind == AST_CALL) {
        if (index_of(e->str, builtin_ops, COUNT(builtin_ops)) < 0 &&
            index_of(e->str, scalar_funcs, COUNT(scalar_funcs)) < 0 && !find_def(s, e->str, NULL)) {
            ERROR(s, e->loc, "unknown function `%s`", e->str);
            const char *sug = diag_suggest(e->str, builtin_ops, COUNT(builtin_ops));
            if (sug) HINT(s, "did you mean `%s`?", sug);
        }
        for (int i = 0; i < e->nargs; i++) names_in(s, def, e->args[i], locals, nlocals, lam);
        return;
    }
    if (e->kind == AST_LAMBDA) {
        names_in(s, def, e->a, locals, nlocals, e);
        return;
    }
    names_in(s, def, e->a, locals, nlocals, lam);
    names_in(s, def, e->b, locals, nlocals, lam);
    names_in(s, def, e->c, locals, nlocals, lam);
}

static void check_names(Sema *s, const Item *def)
{
    const char **locals = NULL;
    int n = 0, cap = 0;
    for (int i = 0; i < def->nparams; i++) VEC_PUSH(s->arena, locals, n, cap, def->params[i]);
    for (const Stmt *st = def->body; st; st = st->next) {
        names_in(s, def, st->expr, locals, n, NULL);
        if (st->kind == STMT_ASSIGN) VEC_PUSH(s->arena, locals, n, cap, st->name);
    }
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
    check_defs(&s);
    for (Item *it = items; it; it = it->next) {
        if (it->kind == ITEM_DEF) continue;
        for (Item *o = items; o != it; o = o->next)
            if (o->kind != ITEM_DEF && strcmp(o->name, it->name) == 0)
                ERROR(&s, it->name_loc, "`%s` is already defined (line %d)", it->name, o->name_loc.first_line);
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
    for (int i = 0; i < s.ndefs; i++)
        if (!s.def_called[i] && !s.def_recursive[i]) check_names(&s, s.defs[i]);
    for (int i = 0; i < s.ndefs; i++)
        for (Stmt *st = s.defs[i]->body; st; st = st->next)
            if (st->kind == STMT_HEADER) {
                ERROR(&s, st->name_loc, "`%s` belongs in a program, not in a function", st->name);
            }
}
