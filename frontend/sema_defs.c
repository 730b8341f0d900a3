/* sema_defs.c: `def` functions (duplicates, recursion, expansion, unused ones) and the causal check. */
#include <stdlib.h>
#include <string.h>

#include "sema.h"

/* The parameters a def may have: a call binds its arguments in an array of this size. */
enum { MAX_DEF_PARAMS = 64 };

/* ------------------------------------------------------------- defs */

const Item *sema_find_def(const Sema *s, const char *name, int *index)
{
    for (int i = 0; i < s->ndefs; i++)
        if (strcmp(s->defs[i]->name, name) == 0) {
            if (index) *index = i;
            return s->defs[i];
        }
    return NULL;
}

/* The call graph of the defs: callees of def i are callee[first[i] .. first[i + 1]), ascending. */
typedef struct CallGraph {
    int n;
    int *first, *callee;
    /* Tarjan's strongly connected components */
    int *index, *low, *stack, *component;
    bool *on_stack;
    int next_index, depth, ncomponents;
} CallGraph;

/* Calls to defs inside an expression. */
static void collect_calls(Sema *s, const Ast *e, int **out, int *n, int *cap)
{
    if (!e) return;
    if (e->kind == AST_CALL) {
        int k;
        if (sema_find_def(s, e->str, &k)) VEC_PUSH(s->arena, *out, *n, *cap, k);
        for (int i = 0; i < e->nargs; i++) collect_calls(s, e->args[i], out, n, cap);
    }
    collect_calls(s, e->a, out, n, cap);
    collect_calls(s, e->b, out, n, cap);
    collect_calls(s, e->c, out, n, cap);
}

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void build_call_graph(Sema *s, CallGraph *g)
{
    int n = s->ndefs, total = 0, cap = 0;
    g->n = n;
    g->first = ARENA_ARRAY(s->arena, int, n + 1);
    g->callee = NULL;
    for (int i = 0; i < n; i++) {
        int *calls = NULL, ncalls = 0, ccap = 0;
        for (const Stmt *st = s->defs[i]->body; st; st = st->next)
            collect_calls(s, st->expr, &calls, &ncalls, &ccap);
        if (ncalls) qsort(calls, (size_t)ncalls, sizeof(int), int_cmp);
        g->first[i] = total;
        for (int k = 0; k < ncalls; k++)
            if (k == 0 || calls[k] != calls[k - 1]) VEC_PUSH(s->arena, g->callee, total, cap, calls[k]);
    }
    g->first[n] = total;
}

static void strong_connect(CallGraph *g, int v)
{
    g->index[v] = g->low[v] = g->next_index++;
    g->stack[g->depth++] = v;
    g->on_stack[v] = true;
    for (int e = g->first[v]; e < g->first[v + 1]; e++) {
        int w = g->callee[e];
        if (g->index[w] < 0) {
            strong_connect(g, w);
            if (g->low[w] < g->low[v]) g->low[v] = g->low[w];
        } else if (g->on_stack[w] && g->index[w] < g->low[v]) {
            g->low[v] = g->index[w];
        }
    }
    if (g->low[v] != g->index[v]) return;
    int w;
    do {
        w = g->stack[--g->depth];
        g->on_stack[w] = false;
        g->component[w] = g->ncomponents;
    } while (w != v);
    g->ncomponents++;
}

/* Depth-first search from `at` within start's component, callees in ascending order; path holds
 * the call chain. Finds the first cycle through `start`. */
static bool find_cycle(const CallGraph *g, int start, int at, int *path, int depth, bool *seen)
{
    path[depth] = at;
    for (int e = g->first[at]; e < g->first[at + 1]; e++) {
        int k = g->callee[e];
        if (g->component[k] != g->component[start]) continue;
        if (k == start) {
            path[depth + 1] = k;
            return true;
        }
        if (seen[k]) continue;
        seen[k] = true;
        if (find_cycle(g, start, k, path, depth + 1, seen)) return true;
    }
    return false;
}

static bool loc_before(SrcLoc a, SrcLoc b)
{
    return a.first_line < b.first_line || (a.first_line == b.first_line && a.first_column < b.first_column);
}

/* The first call of `name` in e, by position, into *first. */
static void first_call(const Ast *e, const char *name, const Ast **first)
{
    if (!e) return;
    if (e->kind == AST_CALL) {
        if (strcmp(e->str, name) == 0 && (!*first || loc_before(e->loc, (*first)->loc))) *first = e;
        for (int i = 0; i < e->nargs; i++) first_call(e->args[i], name, first);
    }
    first_call(e->a, name, first);
    first_call(e->b, name, first);
    first_call(e->c, name, first);
}

/* Where `caller` calls `callee` first: the call a cycle through callee closes at. */
static SrcLoc call_site(const Item *caller, const Item *callee)
{
    const Ast *call = NULL;
    for (const Stmt *st = caller->body; st && !call; st = st->next) first_call(st->expr, callee->name, &call);
    return call ? call->loc : callee->name_loc;
}

/* Which defs are called from outside their own component: by a program or by a def that is not
 * on a cycle with them. A cycle is reported from such an entry, as a program meets it. */
static bool *entered_from_outside(Sema *s, const CallGraph *g, const Item *items)
{
    bool *entered = ARENA_ARRAY(s->arena, bool, g->n + 1);
    for (const Item *it = items; it; it = it->next) {
        if (it->kind != ITEM_RASP) continue;
        int *calls = NULL, ncalls = 0, cap = 0;
        for (const Stmt *st = it->body; st; st = st->next) collect_calls(s, st->expr, &calls, &ncalls, &cap);
        for (int k = 0; k < ncalls; k++) entered[calls[k]] = true;
    }
    for (int i = 0; i < g->n; i++)
        for (int e = g->first[i]; e < g->first[i + 1]; e++)
            if (g->component[g->callee[e]] != g->component[i]) entered[g->callee[e]] = true;
    return entered;
}

/* Report each set of mutually recursive defs once, with one cycle, at the call that closes it:
 * that call is what has to change. The cycle starts at the first def of the set that a program
 * or another def calls (else the first def of the set); every def of the set is marked recursive,
 * so its calls add no errors. */
static void check_recursion(Sema *s, const Item *items)
{
    int n = s->ndefs;
    CallGraph g;
    build_call_graph(s, &g);
    g.index = ARENA_ARRAY(s->arena, int, n + 1);
    g.low = ARENA_ARRAY(s->arena, int, n + 1);
    g.stack = ARENA_ARRAY(s->arena, int, n + 1);
    g.component = ARENA_ARRAY(s->arena, int, n + 1);
    g.on_stack = ARENA_ARRAY(s->arena, bool, n + 1);
    g.next_index = g.depth = g.ncomponents = 0;
    for (int i = 0; i < n; i++) g.index[i] = -1;
    for (int i = 0; i < n; i++)
        if (g.index[i] < 0) strong_connect(&g, i);
    int *size = ARENA_ARRAY(s->arena, int, g.ncomponents + 1);
    for (int i = 0; i < n; i++) size[g.component[i]]++;
    bool *entered = entered_from_outside(s, &g, items);
    /* per component: the def its cycle is reported from, or -1 */
    int *entry = ARENA_ARRAY(s->arena, int, g.ncomponents + 1);
    for (int c = 0; c < g.ncomponents; c++) entry[c] = -1;
    for (int i = 0; i < n; i++) {
        bool self_call = false;
        for (int e = g.first[i]; e < g.first[i + 1]; e++) self_call |= g.callee[e] == i;
        if (size[g.component[i]] < 2 && !self_call) continue;
        s->def_recursive[i] = true;
        int *at = &entry[g.component[i]];
        if (*at < 0 || (entered[i] && !entered[*at])) *at = i;
    }
    int *path = ARENA_ARRAY(s->arena, int, n + 2);
    bool *seen = ARENA_ARRAY(s->arena, bool, n + 1);
    for (int c = 0; c < g.ncomponents; c++) {
        int i = entry[c];
        if (i < 0) continue;
        for (int k = 0; k < n; k++)
            if (g.component[k] == c) seen[k] = false;
        if (!find_cycle(&g, i, i, path, 0, seen)) continue; /* cannot happen: i is on a cycle */
        int last = 1; /* path[last] is i again: the cycle closes with the call path[last - 1] -> i */
        while (path[last] != i) last++;
        char chain[512];
        int len = 0;
        for (int k = 0; k <= last && len < (int)sizeof chain - 80; k++)
            len += snprintf(chain + len, sizeof chain - (size_t)len, "%s`%s`", k ? " -> " : "", s->defs[path[k]]->name);
        ERROR(s, call_site(s->defs[path[last - 1]], s->defs[i]), "function `%s` is recursive: %s", s->defs[i]->name,
              chain);
        HINT(s, "this call closes the cycle; calls are expanded at compile time, so a function cannot call itself");
    }
}

void sema_check_defs(Sema *s, const Item *items)
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
                break; /* once, against the first definition */
            }
        if (d->nparams > MAX_DEF_PARAMS)
            ERROR(s, d->name_loc, "function `%s` has %d parameters, more than the limit of %d", d->name, d->nparams,
                  MAX_DEF_PARAMS);
        for (int p = 0; p < d->nparams; p++)
            for (int q = 0; q < p; q++)
                if (strcmp(d->params[p], d->params[q]) == 0)
                    ERROR(s, d->param_locs[p], "parameter `%s` appears twice", d->params[p]);
        if (sema_index_of(d->name, sema_builtin_ops, N_BUILTIN_OPS) >= 0 ||
            sema_index_of(d->name, sema_builtin_sops, N_BUILTIN_SOPS) >= 0 ||
            sema_index_of(d->name, sema_scalar_funcs, N_SCALAR_FUNCS) >= 0)
            ERROR(s, d->name_loc, "`%s` is a built-in name and cannot name a function", d->name);
    }
    check_recursion(s, items);
}

/* Expand a call of def: its body runs in a scope binding its parameters to the arguments. */
SVal sema_expand_def(Sema *s, Scope *sc, Ast *e, const Item *def, int index)
{
    SVal args[MAX_DEF_PARAMS];
    int n = e->nargs < MAX_DEF_PARAMS ? e->nargs : MAX_DEF_PARAMS;
    bool ok = true;
    for (int i = 0; i < n; i++) {
        args[i] = sema_check_expr(s, sc, e->args[i]);
        if (args[i].kind == SV_ERROR) ok = false;
        if (args[i].kind == SV_LAMBDA || args[i].kind == SV_CMP) {
            ERROR(s, e->args[i]->loc, "a function takes SOps, selectors and constants, not %s",
                  sema_describe_kind(args[i]));
            ok = false;
        }
    }
    /* a broken def's syntax error is reported, and so is one with too many parameters */
    if (def->broken || def->nparams > MAX_DEF_PARAMS) return sema_error();
    if (e->nargs != def->nparams) {
        ERROR(s, e->loc, "`%s` takes %d argument%s, not %d", def->name, def->nparams, def->nparams == 1 ? "" : "s",
              e->nargs);
        HINT(s, "`%s` is defined at line %d", def->name, def->loc.first_line);
        return sema_error();
    }
    if (!ok || s->def_recursive[index]) return sema_error();
    s->def_called[index] = true;
    if (s->depth >= COUNT(s->stack)) {
        ERROR(s, e->loc, "functions nest more than %d deep", COUNT(s->stack));
        return sema_error();
    }
    /* calls are expanded at compile time: a function calling another twice, ten deep, is 2^10
     * copies; past a limit the program is too large to compile, and the error says so once */
    enum { MAX_EXPANSIONS = 20000 };
    if (++s->expansions > MAX_EXPANSIONS) {
        if (s->expansions == MAX_EXPANSIONS + 1) {
            ERROR(s, e->loc, "expanding function calls makes this file too large (more than %d calls)", MAX_EXPANSIONS);
            HINT(s, "calls are expanded at compile time; call a function once and name its result");
        }
        return sema_error();
    }
    Scope inner = { NULL, def };
    for (int i = 0; i < def->nparams; i++) {
        Binding *b = ARENA_NEW(s->arena, Binding);
        b->name = def->params[i];
        b->val = args[i];
        /* the body may use a parameter many times: its SOp must stay one node */
        if (args[i].kind == SV_SOP || args[i].kind == SV_SEL) args[i].node->bound = true;
        b->loc = def->param_locs[i];
        b->next = inner.head;
        inner.head = b;
    }
    s->stack[s->depth++] = def;
    SVal r = sema_run_body(s, &inner, def->body, def->name_loc, "function");
    s->depth--;
    return r;
}

/* Names in a def that no program calls: resolved without knowing what its parameters hold. */
static void names_in(Sema *s, const Item *def, const Ast *e, const char *const *locals, int nlocals,
                     const Ast *lam)
{
    if (!e) return;
    if (e->kind == AST_NAME) {
        for (int i = 0; lam && i < lam->nparams; i++)
            if (strcmp(lam->params[i], e->str) == 0) return;
        if (sema_index_of(e->str, locals, nlocals) >= 0 ||
            sema_index_of(e->str, sema_builtin_sops, N_BUILTIN_SOPS) >= 0)
            return;
        const char *sug = diag_suggest(e->str, locals, nlocals);
        if (!sug) sug = diag_suggest(e->str, sema_builtin_sops, N_BUILTIN_SOPS);
        ERROR(s, e->loc, "unknown name `%s`", e->str);
        if (sug) HINT(s, "did you mean `%s`?", sug);
        return;
    }
    if (e->kind == AST_CALL) {
        if (sema_index_of(e->str, sema_builtin_ops, N_BUILTIN_OPS) < 0 &&
            sema_index_of(e->str, sema_scalar_funcs, N_SCALAR_FUNCS) < 0 && !sema_find_def(s, e->str, NULL)) {
            ERROR(s, e->loc, "unknown function `%s`", e->str);
            const char *sug = diag_suggest(e->str, sema_builtin_ops, N_BUILTIN_OPS);
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

void sema_check_unused_defs(Sema *s)
{
    for (int i = 0; i < s->ndefs; i++)
        if (!s->def_called[i] && !s->def_recursive[i] && !s->defs[i]->broken) check_names(s, s->defs[i]);
    for (int i = 0; i < s->ndefs; i++)
        for (Stmt *st = s->defs[i]->body; st; st = st->next)
            if (st->kind == STMT_HEADER) {
                ERROR(s, st->name_loc, "`%s` belongs in a program, not in a function", st->name);
            }
}

/* ---------------------------------------------------------- causality */

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

/* Does this selector provably select no key j <= i? Then restricting it to earlier positions
 * would leave it always empty, and the usual fix is no fix. */
static bool never_backward(const RaspNode *n, unsigned *memo, const RaspTrace *t)
{
    if (!(deps(n, memo) & 5u)) {
        const bool *m = t->sel[n->id];
        for (int i = 0; i < t->n; i++)
            for (int j = 0; j <= i; j++)
                if (m[i * t->n + j]) return false;
        return true;
    }
    if (n->op == RN_SEL_AND) return never_backward(n->in[0], memo, t) || never_backward(n->in[1], memo, t);
    if (n->op == RN_SEL_OR) return never_backward(n->in[0], memo, t) && never_backward(n->in[1], memo, t);
    return false;
}

/* What the causal check knows of one program's selectors, by node id. */
typedef struct CausalCheck {
    unsigned *deps;     /* deps()'s memo */
    const RaspTrace *t; /* the program at max_len: position-only selectors in full */
    bool *read;         /* an aggregate or selector_width reads it */
    signed char *fails; /* looks_backward is false: 1, true: 0, not yet known: -1 */
    signed char *fixed; /* covered()'s memo, as fails */
} CausalCheck;

static bool fails(CausalCheck *c, const RaspNode *n)
{
    if (c->fails[n->id] < 0) c->fails[n->id] = !looks_backward(n, c->deps, c->t);
    return c->fails[n->id] == 1;
}

/* Is every reason n fails a read selector that is reported (or is itself covered)? Then fixing
 * those fixes n, and n's own message would be an echo: `a and b` is proved as soon as one side is,
 * `a or b` when both are. */
static bool covered(CausalCheck *c, const RaspNode *n)
{
    if (c->fixed[n->id] >= 0) return c->fixed[n->id] == 1;
    bool r = false;
    if (n->op == RN_SEL_AND || n->op == RN_SEL_OR) {
        bool any = false, all = true;
        for (int k = 0; k < 2; k++) {
            const RaspNode *in = n->in[k];
            bool ok = !fails(c, in) || c->read[in->id] || covered(c, in);
            any |= fails(c, in) && ok;
            all &= ok;
        }
        r = n->op == RN_SEL_AND ? any : all;
    }
    c->fixed[n->id] = r;
    return r;
}

/* Every selector an aggregate or selector_width reads must look only backwards. Each violation is
 * reported once, with a fix that keeps the selector useful; a selector that fails only through
 * parts that are reported themselves is not reported again. */
void sema_check_causal(Sema *s, RaspProgram *p)
{
    if (s->nread_sels == 0) return;
    /* The scratch arena is freed on the way out when memory runs out. */
    Arena scratch;
    jmp_buf guard;
    arena_init(&scratch, s->arena->alloc, &guard);
    if (setjmp(guard)) {
        arena_free(&scratch);
        longjmp(*s->arena->on_oom, 1);
    }
    Value *tokens = ARENA_ARRAY(&scratch, Value, p->max_len);
    for (int i = 0; i < p->max_len; i++) tokens[i] = p->vocab.v[0];
    RaspTrace t;
    interp_run(p, tokens, p->max_len, &scratch, &t);
    CausalCheck c = { ARENA_ARRAY(&scratch, unsigned, p->nnodes), &t, ARENA_ARRAY(&scratch, bool, p->nnodes),
                      ARENA_ARRAY(&scratch, signed char, p->nnodes), ARENA_ARRAY(&scratch, signed char, p->nnodes) };
    memset(c.fails, -1, (size_t)p->nnodes);
    memset(c.fixed, -1, (size_t)p->nnodes);
    for (int k = 0; k < s->nread_sels; k++) c.read[s->read_sels[k]->id] = true;
    bool *reported = ARENA_ARRAY(&scratch, bool, p->nnodes);
    for (int k = 0; k < s->nread_sels; k++) {
        const RaspNode *sel = s->read_sels[k];
        if (reported[sel->id] || !fails(&c, sel) || covered(&c, sel)) continue;
        reported[sel->id] = true;
        const char *name = sema_node_name(s, sel);
        ERROR(s, sel->loc, "in a causal program every selector must look only backwards, and %s may select "
                           "later positions", name);
        if (never_backward(sel, c.deps, &t))
            HINT(s, "%s selects only later positions (j > i), so restricting it to earlier ones would leave it "
                    "empty: a causal program cannot read ahead; select earlier positions instead",
                 name);
        else
            HINT(s, "restrict it with `and select(indices, indices, <=)`");
    }
    arena_free(&scratch);
}
