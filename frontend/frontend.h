/* frontend.h: the .tfm frontend's types: AST, values, the checked RASP graph (the arena and the
 * diagnostics are the support layer's, support/support.h). */
#ifndef TFMC_FRONTEND_H
#define TFMC_FRONTEND_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "support.h"

/* ------------------------------------------------------------------ AST */

typedef enum AstKind {
    AST_INT,      /* ival */
    AST_FLOAT,    /* fval */
    AST_STRING,   /* str */
    AST_BOOL,     /* ival 0/1 */
    AST_NAME,     /* str */
    AST_PARAM,    /* a lambda parameter after sema: ival = its index, str = its name */
    AST_CALL,     /* str(args) */
    AST_UNARY,    /* op a */
    AST_BINARY,   /* a op b */
    AST_COND,     /* a ? b : c */
    AST_LAMBDA,   /* params -> a */
    AST_CMP_OP    /* a bare comparison operator as an argument: select(k, q, <) */
} AstKind;

typedef enum AstOp {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE,
    OP_AND, OP_OR, OP_NEG, OP_NOT,
    OP_TRUE, OP_FALSE /* the constant comparisons of select */
} AstOp;

typedef struct Ast Ast;
struct Ast {
    AstKind kind;
    SrcLoc loc;    /* the whole expression; a call's is its name */
    SrcLoc op_loc; /* AST_BINARY, AST_UNARY: the operator */
    int depth;     /* nesting as parsed: 1 for a leaf (the parser bounds it) */
    AstOp op;
    int64_t ival;
    double fval;
    const char *str;
    Ast *a, *b, *c;
    Ast **args;
    int nargs;
    const char **params; /* lambda parameter names */
    SrcLoc *param_locs;
    int nparams;
};

typedef enum StmtKind {
    STMT_ASSIGN, /* name = expr; */
    STMT_RETURN, /* return expr; */
    STMT_HEADER  /* name [value]; : vocab, max_len, causal */
} StmtKind;

typedef struct SetItem {
    SrcLoc loc;
    TfmcValue lo;   /* a literal, or the start of a range */
    int64_t hi;     /* the end of a range (inclusive) when is_range */
    bool is_range;
} SetItem;

typedef struct Stmt Stmt;
struct Stmt {
    StmtKind kind;
    SrcLoc loc, name_loc;
    const char *name;
    Ast *expr;
    /* header value */
    enum { HV_NONE, HV_INT, HV_SET } hv_kind;
    int64_t hv_int;
    SrcLoc hv_loc;
    SetItem *set;
    int nset;
    Stmt *next;
};

/* Model declarations: `name option, option;` where an option is a sequence of
 * atoms (`heads 4`, `position rope(base 10000)`, `"f.safetensors" as gpt2`). */
typedef struct MOpt MOpt;
typedef struct MAtom {
    enum { MA_NAME, MA_INT, MA_FLOAT, MA_STRING, MA_BOOL, MA_CALL } kind;
    SrcLoc loc;
    const char *str;
    int64_t ival;
    double fval;
    MOpt *args; /* MA_CALL */
} MAtom;
struct MOpt {
    SrcLoc loc;
    MAtom *atoms;
    int natoms;
    MOpt *next;
};
typedef struct MStmt MStmt;
struct MStmt {
    SrcLoc loc, name_loc;
    const char *name;
    MOpt *opts;
    MStmt *body; /* block x N { body } */
    bool is_block;
    MStmt *next;
};

typedef enum ItemKind { ITEM_DEF, ITEM_RASP, ITEM_MODEL } ItemKind;
typedef struct Item Item;
struct Item {
    ItemKind kind;
    SrcLoc loc, name_loc;
    const char *name;
    const char **params; /* def */
    SrcLoc *param_locs;
    int nparams;
    Stmt *body;   /* def, rasp */
    MStmt *mbody; /* model */
    bool broken;  /* held a syntax error: what parsed of it is incomplete */
    Item *next;
};

/* Parse one file; syntax errors go to diags. Returns the items that parsed. */
Item *parse_file(Arena *arena, const SrcFile *file, DiagList *diags, int *nerrors);

Ast *ast_new(Arena *a, AstKind kind, SrcLoc loc);
const char *ast_op_text(AstOp op);
/* Print an expression back as source text (for messages and the trace). */
void ast_format(const Ast *e, char *buf, size_t cap);

/* --------------------------------------------------------------- values */

/* Value, ValueSet and their functions are in support.h. */

typedef enum ScalarStatus { SCALAR_OK, SCALAR_ARITH, SCALAR_TYPE } ScalarStatus;
/* Evaluate a checked lambda body with its parameters bound. SCALAR_ARITH: an
 * arithmetic error (division by zero); SCALAR_TYPE: a type error, explained in msg. */
ScalarStatus scalar_eval(const Ast *e, const Value *params, Value *out, char *msg, size_t cap);
/* The same, and on failure *where is the innermost expression that failed (for the caret). */
ScalarStatus scalar_eval_at(const Ast *e, const Value *params, Value *out, char *msg, size_t cap,
                            const Ast **where);

/* ----------------------------------------------------------- RASP graph */

typedef enum RaspOp {
    RN_TOKENS, RN_INDICES, RN_LENGTH,
    RN_FULL,           /* a constant sequence: fill */
    RN_MAP,            /* fn(in[0]) */
    RN_SEQMAP,         /* fn(in[0], in[1]) */
    RN_AGGREGATE,      /* in[0] = selector, in[1] = SOp */
    RN_SELECTOR_WIDTH, /* in[0] = selector */
    RN_SELECT,         /* keys in[0], queries in[1]; cmp or fn(k, q) */
    RN_SEL_AND, RN_SEL_OR, RN_SEL_NOT
} RaspOp;

typedef enum Encoding { ENC_CATEGORICAL, ENC_NUMERICAL } Encoding;

typedef struct RaspNode RaspNode;
struct RaspNode {
    RaspOp op;
    int id;             /* index in the program's node list (topological order) */
    const char *label;  /* the SOp's name: its assignment or an automatic map_3 */
    bool named;         /* label came from an assignment */
    const char *name;   /* named: the name as the user wrote it (label may add `def.` and `_2`) */
    SrcLoc loc;
    bool is_selector;
    Encoding enc;
    RaspNode *in[2];
    const Ast *fn;      /* map, sequence map, select with a lambda: the body */
    AstOp cmp;          /* select with a built-in comparison (fn == NULL) */
    Value fill;         /* RN_FULL */
    bool mean;          /* aggregate: numerical mean (else the one selected value) */
    bool bound;         /* a function parameter refers to it: never fused away or changed in place */
    bool partial;       /* an elementwise map undefined on some defined inputs (division by zero) */
    ValueSet vs;        /* SOps: every value it can take (undefined excluded) */
};

typedef struct RaspProgram {
    const char *name;
    SrcLoc loc;
    const SrcFile *file;
    ValueSet vocab;
    int max_len;
    bool causal;
    RaspNode **nodes;
    int nnodes, cap;
    RaspNode *output;
} RaspProgram;

/* How messages name a node, never by an automatic label (map_3): `name` when the user named it,
 * else its source text when short (`tokens + 1`), or "this aggregate", "this `min(...)`". */
const char *rasp_node_describe(Arena *a, const SrcFile *file, const RaspNode *n);

/* The limit on any value set's size, and on the pairs a two-SOp map enumerates. */
#define RASP_MAX_VALUES 16384
#define RASP_MAX_PAIRS (1 << 22)

typedef struct ModelDecl {
    const char *name;
    SrcLoc loc;
    const Item *item;
} ModelDecl;

/* Check every item; returns checked programs through the callback-free lists. */
typedef struct SemaResult {
    RaspProgram **programs;
    int nprograms, cap_programs;
    ModelDecl **models;
    int nmodels, cap_models;
} SemaResult;

void sema_check(Arena *arena, const SrcFile *file, Item *items, DiagList *diags, SemaResult *out);

/* --------------------------------------------------------- interpreter */

/* The values of every node of a program on one input. */
typedef struct RaspTrace {
    int n;
    Value **sop;    /* sop[node id][position], NULL for selectors */
    bool **sel;     /* sel[node id][query * n + key], NULL for SOps */
} RaspTrace;

/* Evaluate the whole program on tokens[0..n), n <= max_len; memory from scratch. */
void interp_run(const RaspProgram *p, const Value *tokens, int n, Arena *scratch, RaspTrace *t);
/* Does select node n select this key for this query? (undefined values never match) */
bool interp_select_pair(const RaspNode *n, Value key, Value query);
/* Print every named node's values, aligned in columns (the --trace view). */
void interp_trace_print(const RaspProgram *p, const RaspTrace *t, FILE *out);

#endif
