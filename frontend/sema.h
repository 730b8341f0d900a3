/* sema.h: what the three parts of semantic analysis (sema.c, sema_values.c, sema_defs.c) share. */
#ifndef TFMC_SEMA_H
#define TFMC_SEMA_H

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

/* A program's node labels, for making assigned names unique (sema_values.c). */
typedef struct LabelEntry {
    const char *label; /* NULL: a free slot */
    int live;          /* nodes carrying it */
    int next_suffix;   /* the next k to try for `label_k` */
} LabelEntry;
typedef struct LabelTable {
    LabelEntry *v;
    size_t mask, n; /* capacity - 1, entries used */
} LabelTable;

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
    long expansions;        /* function calls expanded in this file (a limit keeps 2^n call trees out) */
    RaspNode *builtin[3];   /* tokens, indices, length, made on first use */
    int *uses;              /* per node id: how many nodes read it */
    int uses_cap;
    const Stmt *assign;     /* the assignment being checked: its name describes its value */
    LabelTable labels;      /* of the program being checked */
    /* the selectors that an aggregate or selector_width reads, even where the call had another
     * error: a causal program checks each of them (an error elsewhere hides no violation) */
    RaspNode **read_sels;
    int nread_sels, read_sels_cap;
} Sema;

/* The built-in names, and how many there are of each. */
extern const char *const sema_builtin_ops[];   /* map, select, aggregate, ... */
extern const char *const sema_builtin_sops[];  /* tokens, indices, length */
extern const char *const sema_scalar_funcs[];  /* min, max, abs, floor */
extern const char *const sema_header_names[];  /* vocab, max_len, causal */
enum { N_BUILTIN_OPS = 6, N_BUILTIN_SOPS = 3, N_SCALAR_FUNCS = 4, N_HEADER_NAMES = 3 };

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define ERROR(s, loc, ...) ((s)->nerrors++, diag_error((s)->diags, (s)->file, (loc), __VA_ARGS__))
#define HINT(s, ...) diag_hint((s)->diags, __VA_ARGS__)
/* A warning fails nothing: it does not count in nerrors. */
#define WARN(s, loc, ...) diag_warning((s)->diags, (s)->file, (loc), __VA_ARGS__)

/* sema.c: names, expressions, statements, program headers */
int sema_index_of(const char *name, const char *const *list, int n);
SVal sema_error(void);
SVal sema_node_value(RaspNode *n);
const char *sema_describe_kind(SVal v);
/* Where a message about an operator points: a binary or unary expression's operator, else e->loc. */
SrcLoc sema_operator_loc(const Ast *e);
const Binding *sema_lookup(const Scope *sc, const char *name);
SVal sema_check_expr(Sema *s, Scope *sc, Ast *e);
/* Run the assignments and the return of a body; returns the returned value. */
SVal sema_run_body(Sema *s, Scope *sc, Stmt *body, SrcLoc where, const char *what);

/* sema_values.c: nodes, value sets, lambda bodies, elementwise nodes and their fusion */
RaspNode *sema_new_node(Sema *s, RaspOp op, SrcLoc loc, RaspNode *a, RaspNode *b);
/* Finish a node: value set (which also type-checks lambdas over every input value). */
RaspNode *sema_finish(Sema *s, RaspNode *n);
RaspNode *sema_builtin_node(Sema *s, int which, SrcLoc loc); /* tokens, indices, length: 0, 1, 2 */
RaspNode *sema_full_node(Sema *s, Value c, SrcLoc loc);        /* a constant as an SOp */
/* Name a node after the assignment `name = ...` in scope sc. */
void sema_set_label(Sema *s, RaspNode *n, const Scope *sc, const char *name);
/* How a message names a node: `name` when the user named it, else its source text or "this map". */
const char *sema_node_name(Sema *s, const RaspNode *n);
/* A value as messages quote it: `3`, or "the string `a`" when with_kind and it is a string. */
const char *sema_value_text(Sema *s, Value v, bool with_kind);
void sema_compute_value_set(Sema *s, RaspNode *n);
/* Check a lambda body for `map` or `select` (`fn`); NULL on error. */
Ast *sema_check_lambda_body(Sema *s, Scope *sc, const Ast *lam, const char *fn);
/* Check a select lambda over every (key, query) pair of values; false after a type error. */
bool sema_check_select_pairs(Sema *s, const RaspNode *sel);
/* Warn when a select's predicate provably selects no pair, or every pair, of its value sets. */
void sema_warn_constant_selector(Sema *s, const RaspNode *sel);
Ast *sema_clone(Sema *s, const Ast *e);
Ast *sema_const_ast(Sema *s, Value v, SrcLoc loc);
Ast *sema_param_ast(Sema *s, int index, const char *name, SrcLoc loc);
/* Replace the parameters of body: parameter i becomes subst[i]. */
Ast *sema_substitute(Sema *s, const Ast *e, Ast *const *subst);
/* The elementwise node out = body(ins...), nins 1 to 3 distinct SOps, fusing fresh maps among
 * them; NULL when it would still read more than two SOps (*nleaves says how many). */
RaspNode *sema_elementwise(Sema *s, Ast *body, RaspNode **ins, int nins, SrcLoc loc, int *nleaves);

/* sema_defs.c: functions (recursion, expansion, unused ones) and causal programs */
/* Duplicates, parameters and recursion of the defs; items: the file, for the calls programs make. */
void sema_check_defs(Sema *s, const Item *items);
const Item *sema_find_def(const Sema *s, const char *name, int *index);
SVal sema_expand_def(Sema *s, Scope *sc, Ast *e, const Item *def, int index);
/* Defs that no program called: their names are still checked, and stray header statements. */
void sema_check_unused_defs(Sema *s);
void sema_check_causal(Sema *s, RaspProgram *p);

#endif
