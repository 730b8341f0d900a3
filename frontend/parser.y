/* parser.y: the pure, reentrant bison grammar of .tfm (rasp programs, defs, model declarations). */
%code top {
#define _POSIX_C_SOURCE 200809L
}

%code requires {
#include "frontend.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif

typedef struct AstList { Ast **v; int n, cap; } AstList;
typedef struct NameList { const char **v; SrcLoc *locs; int n, cap, lcap; } NameList;
typedef struct SetList { SetItem *v; int n, cap; } SetList;

/* What the scanner and the parser share. */
typedef struct ParseCtx {
    Arena *arena;
    const SrcFile *file;
    DiagList *diags;
    int nerrors;
    Item *items, *last_item;
    /* scanner position and the previous token's end, for "missing `;`" */
    int line, column;
    SrcLoc prev, cur;
    const char *text, *end; /* the input, consumed by the scanner's YY_INPUT */
    const char *tok_text;   /* the text of the last token */
    int paren_depth;        /* open parentheses of the current statement */
    bool too_deep;          /* this statement's parentheses were reported as too deep */
    bool semicolon_missing; /* the last syntax error was a `;` missing at a line end */
    int errors_before_item; /* nerrors when the current item started */
} ParseCtx;
}

%code provides {
int yylex(YYSTYPE *yylval, SrcLoc *yylloc, yyscan_t scanner);
}

%code {
#include <stdlib.h>
#include <string.h>

/* The parser's stack grows in the arena: nothing to free when running out of memory jumps out. */
#define YYMALLOC(size) arena_alloc(ctx->arena, (size))
#define YYFREE(ptr) ((void)(ptr))

static void yyerror(SrcLoc *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg);
static Ast *mk(ParseCtx *ctx, AstKind k, SrcLoc loc)
{
    Ast *e = ast_new(ctx->arena, k, loc);
    e->depth = 1;
    return e;
}
/* Expressions nested deeper than this are an error: the checks after parsing recurse on them. */
#define MAX_EXPR_DEPTH 1000

/* Record e's depth (a leaf is 1) and report when it is too deep (`at`: the operator). The caller
 * then drops the statement with YYERROR, so each statement reports this at most once. */
static bool nested_too_deeply(ParseCtx *ctx, Ast *e, SrcLoc at)
{
    int d = 0;
    const Ast *kids[3] = { e->a, e->b, e->c };
    for (int i = 0; i < 3; i++)
        if (kids[i] && kids[i]->depth > d) d = kids[i]->depth;
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i]->depth > d) d = e->args[i]->depth;
    e->depth = d + 1;
    if (e->depth <= MAX_EXPR_DEPTH) return false;
    ctx->nerrors++;
    diag_error(ctx->diags, ctx->file, at, "expression nested too deeply (more than %d levels)", MAX_EXPR_DEPTH);
    diag_hint(ctx->diags, "each operator of a chain such as a + b + c is one level; name intermediate results: "
                          "t = ...; then use t");
    return true;
}
#define CHECK_DEPTH(e, at) do { if (nested_too_deeply(ctx, (e), (at))) YYERROR; } while (0)

/* A binary expression spans both operands; op_loc is its operator. */
static Ast *binary(ParseCtx *ctx, AstOp op, Ast *a, Ast *b, SrcLoc loc, SrcLoc op_loc)
{
    Ast *e = mk(ctx, AST_BINARY, loc);
    e->op = op; e->a = a; e->b = b; e->op_loc = op_loc;
    return e;
}
static Ast *unary(ParseCtx *ctx, AstOp op, Ast *a, SrcLoc loc, SrcLoc op_loc)
{
    Ast *e = mk(ctx, AST_UNARY, loc);
    e->op = op; e->a = a; e->op_loc = op_loc;
    return e;
}
static Stmt *stmt(ParseCtx *ctx, StmtKind k, SrcLoc loc)
{
    Stmt *s = ARENA_NEW(ctx->arena, Stmt);
    s->kind = k; s->loc = loc;
    return s;
}
/* Items that held a syntax error are marked broken: later stages skip them. */
static void add_item(ParseCtx *ctx, Item *it)
{
    it->broken = ctx->nerrors > ctx->errors_before_item;
    ctx->errors_before_item = ctx->nerrors;
    if (ctx->last_item) ctx->last_item->next = it; else ctx->items = it;
    ctx->last_item = it;
}
static Stmt *append_stmt(Stmt *list, Stmt *s)
{
    if (!s) return list;
    if (!list) return s;
    Stmt *t = list;
    while (t->next) t = t->next;
    t->next = s;
    return list;
}
static MStmt *append_mstmt(MStmt *list, MStmt *s)
{
    if (!s) return list;
    if (!list) return s;
    MStmt *t = list;
    while (t->next) t = t->next;
    t->next = s;
    return list;
}
static NameList *names_push(ParseCtx *ctx, NameList *l, const char *name, SrcLoc loc)
{
    if (!l) l = ARENA_NEW(ctx->arena, NameList);
    int n = l->n;
    VEC_PUSH(ctx->arena, l->v, l->n, l->cap, name);
    VEC_PUSH(ctx->arena, l->locs, n, l->lcap, loc);
    return l;
}
static SetItem set_value(SrcLoc loc, Value v)
{
    SetItem s = {0};
    s.loc = loc; s.lo = v;
    return s;
}
static MAtom matom(MAtom a, SrcLoc loc) { a.loc = loc; return a; }
/* After a statement cut short by a syntax error: when the error was only a `;` missing at the end
 * of a line, go on as if it had been there, so that the next statement's errors are reported. */
#define STATEMENT_CUT()                           \
    do {                                          \
        if (ctx->semicolon_missing) yyerrok;      \
        ctx->semicolon_missing = false;           \
    } while (0)
}

%define api.pure full
%define api.location.type {SrcLoc}
%define parse.error custom
%locations
%param {yyscan_t scanner}
%parse-param {ParseCtx *ctx}
%expect 0

%union {
    int64_t ival;
    double fval;
    const char *str;
    Ast *ast;
    AstList *alist;
    NameList *names;
    Stmt *stmt;
    MStmt *mstmt;
    MOpt *mopt;
    MAtom matom;
    SetList *set;
    SetItem setitem;
    AstOp op;
}

%token DEF "`def`" RASP "`rasp`" MODEL "`model`" RETURN "`return`"
%token TRUE "`true`" FALSE "`false`" AND "`and`" OR "`or`" NOT "`not`"
%token <str> IDENT "name" STRING "string"
%token <ival> INT "integer"
%token <fval> FLOAT "number"
%token ARROW "`->`" DOTDOT "`..`" EQ "`==`" NE "`!=`" LE "`<=`" GE "`>=`"
%token LAMBDA_LPAREN "`(` of a lambda"
%token '(' "`(`" ')' "`)`" '{' "`{`" '}' "`}`" ',' "`,`" ';' "`;`" '=' "`=`"
%token '<' "`<`" '>' "`>`" '+' "`+`" '-' "`-`" '*' "`*`" '/' "`/`" '%' "`%`"
%token '?' "`?`" ':' "`:`"

%right '?' ':'
%left OR
%left AND
%precedence NOT
%left EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/' '%'
%precedence UMINUS

%type <ast> expr e primary lambda arg
%type <alist> args
%type <names> params opt_params
%type <stmt> stmts stmt
%type <mstmt> mstmts mstmt
%type <mopt> mopts mopt matoms_call
%type <matom> matom
%type <set> set set_items
%type <setitem> set_item
%type <ival> signed_int
%type <op> cmp_op

%%

file
    : %empty
    | file item
    ;

item
    : DEF IDENT '(' opt_params ')' '{' stmts '}' {
        Item *it = ARENA_NEW(ctx->arena, Item);
        it->kind = ITEM_DEF; it->loc = @1; it->name_loc = @2; it->name = $2;
        if ($4) { it->params = $4->v; it->param_locs = $4->locs; it->nparams = $4->n; }
        it->body = $7;
        add_item(ctx, it);
      }
    | RASP IDENT '{' stmts '}' {
        Item *it = ARENA_NEW(ctx->arena, Item);
        it->kind = ITEM_RASP; it->loc = @1; it->name_loc = @2; it->name = $2; it->body = $4;
        add_item(ctx, it);
      }
    | MODEL IDENT '{' mstmts '}' {
        Item *it = ARENA_NEW(ctx->arena, Item);
        it->kind = ITEM_MODEL; it->loc = @1; it->name_loc = @2; it->name = $2; it->mbody = $4;
        add_item(ctx, it);
      }
    | error '}' { yyerrok; ctx->errors_before_item = ctx->nerrors; }
    | error '{' skipped '}' { yyerrok; ctx->errors_before_item = ctx->nerrors; }
    ;

/* The body of an item whose start did not parse: skipped up to its matching `}`. */
skipped
    : %empty
    | skipped skipped_token
    | skipped '{' skipped '}'
    ;

skipped_token
    : DEF | RASP | MODEL | RETURN | TRUE | FALSE | AND | OR | NOT
    | IDENT {} | STRING {} | INT {} | FLOAT {}
    | ARROW | DOTDOT | EQ | NE | LE | GE | LAMBDA_LPAREN
    | '(' | ')' | ',' | ';' | '=' | '<' | '>' | '+' | '-' | '*' | '/' | '%' | '?' | ':'
    ;

opt_params
    : %empty { $$ = NULL; }
    | params
    ;

params
    : IDENT { $$ = names_push(ctx, NULL, $1, @1); }
    | params ',' IDENT { $$ = names_push(ctx, $1, $3, @3); }
    ;

stmts
    : %empty { $$ = NULL; }
    | stmts stmt { $$ = append_stmt($1, $2); }
    ;

stmt
    : IDENT '=' expr ';' {
        $$ = stmt(ctx, STMT_ASSIGN, @$); $$->name = $1; $$->name_loc = @1; $$->expr = $3;
      }
    | RETURN expr ';' { $$ = stmt(ctx, STMT_RETURN, @$); $$->expr = $2; }
    | IDENT ';' {
        $$ = stmt(ctx, STMT_HEADER, @$); $$->name = $1; $$->name_loc = @1; $$->hv_kind = HV_NONE;
      }
    | IDENT signed_int ';' {
        $$ = stmt(ctx, STMT_HEADER, @$); $$->name = $1; $$->name_loc = @1;
        $$->hv_kind = HV_INT; $$->hv_int = $2; $$->hv_loc = @2;
      }
    | IDENT set ';' {
        $$ = stmt(ctx, STMT_HEADER, @$); $$->name = $1; $$->name_loc = @1;
        $$->hv_kind = HV_SET; $$->set = $2->v; $$->nset = $2->n; $$->hv_loc = @2;
      }
    /* a statement cut short by a syntax error (usually a missing `;`) keeps what it read */
    | IDENT '=' expr error {
        $$ = stmt(ctx, STMT_ASSIGN, @$); $$->name = $1; $$->name_loc = @1; $$->expr = $3; STATEMENT_CUT();
      }
    | RETURN expr error { $$ = stmt(ctx, STMT_RETURN, @$); $$->expr = $2; STATEMENT_CUT(); }
    | IDENT signed_int error {
        $$ = stmt(ctx, STMT_HEADER, @$); $$->name = $1; $$->name_loc = @1;
        $$->hv_kind = HV_INT; $$->hv_int = $2; $$->hv_loc = @2; STATEMENT_CUT();
      }
    | IDENT set error {
        $$ = stmt(ctx, STMT_HEADER, @$); $$->name = $1; $$->name_loc = @1;
        $$->hv_kind = HV_SET; $$->set = $2->v; $$->nset = $2->n; $$->hv_loc = @2; STATEMENT_CUT();
      }
    | error ';' { $$ = NULL; yyerrok; ctx->semicolon_missing = false; }
    ;

set
    : '{' '}' { $$ = ARENA_NEW(ctx->arena, SetList); }
    | '{' set_items '}' { $$ = $2; }
    | '{' set_items ',' '}' { $$ = $2; }
    ;

set_items
    : set_item { $$ = ARENA_NEW(ctx->arena, SetList); VEC_PUSH(ctx->arena, $$->v, $$->n, $$->cap, $1); }
    | set_items ',' set_item { $$ = $1; VEC_PUSH(ctx->arena, $$->v, $$->n, $$->cap, $3); }
    ;

set_item
    : signed_int { $$ = set_value(@$, value_int($1)); }
    | signed_int DOTDOT signed_int { $$ = set_value(@$, value_int($1)); $$.hi = $3; $$.is_range = true; }
    | FLOAT { $$ = set_value(@$, value_float($1)); }
    | '-' FLOAT { $$ = set_value(@$, value_float(-$2)); }
    | TRUE { $$ = set_value(@$, value_bool(true)); }
    | FALSE { $$ = set_value(@$, value_bool(false)); }
    | STRING { Value v = {0}; v.kind = TFMC_STR; v.u.s = $1; $$ = set_value(@$, v); }
    ;

signed_int
    : INT
    | '-' INT { $$ = -$2; }
    ;

expr
    : lambda
    | e
    ;

lambda
    : IDENT ARROW expr {
        $$ = mk(ctx, AST_LAMBDA, @$); $$->a = $3;
        NameList *l = names_push(ctx, NULL, $1, @1);
        $$->params = l->v; $$->param_locs = l->locs; $$->nparams = l->n;
        CHECK_DEPTH($$, @2);
      }
    | LAMBDA_LPAREN params ')' ARROW expr {
        $$ = mk(ctx, AST_LAMBDA, @$); $$->a = $5;
        $$->params = $2->v; $$->param_locs = $2->locs; $$->nparams = $2->n;
        CHECK_DEPTH($$, @4);
      }
    ;

e
    : e '?' e ':' e {
        $$ = mk(ctx, AST_COND, @$); $$->a = $1; $$->b = $3; $$->c = $5; CHECK_DEPTH($$, @2);
      }
    | e OR e  { $$ = binary(ctx, OP_OR, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e AND e { $$ = binary(ctx, OP_AND, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | NOT e   { $$ = unary(ctx, OP_NOT, $2, @$, @1); CHECK_DEPTH($$, @1); }
    | e EQ e  { $$ = binary(ctx, OP_EQ, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e NE e  { $$ = binary(ctx, OP_NE, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e '<' e { $$ = binary(ctx, OP_LT, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e LE e  { $$ = binary(ctx, OP_LE, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e '>' e { $$ = binary(ctx, OP_GT, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e GE e  { $$ = binary(ctx, OP_GE, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e '+' e { $$ = binary(ctx, OP_ADD, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e '-' e { $$ = binary(ctx, OP_SUB, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e '*' e { $$ = binary(ctx, OP_MUL, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e '/' e { $$ = binary(ctx, OP_DIV, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | e '%' e { $$ = binary(ctx, OP_MOD, $1, $3, @$, @2); CHECK_DEPTH($$, @2); }
    | '-' e %prec UMINUS { $$ = unary(ctx, OP_NEG, $2, @$, @1); CHECK_DEPTH($$, @1); }
    | primary
    ;

primary
    : INT    { $$ = mk(ctx, AST_INT, @$); $$->ival = $1; }
    | FLOAT  { $$ = mk(ctx, AST_FLOAT, @$); $$->fval = $1; }
    | STRING { $$ = mk(ctx, AST_STRING, @$); $$->str = $1; }
    | TRUE   { $$ = mk(ctx, AST_BOOL, @$); $$->ival = 1; }
    | FALSE  { $$ = mk(ctx, AST_BOOL, @$); $$->ival = 0; }
    | IDENT  { $$ = mk(ctx, AST_NAME, @$); $$->str = $1; }
    | IDENT '(' ')' { $$ = mk(ctx, AST_CALL, @1); $$->str = $1; }
    | IDENT '(' args ')' {
        $$ = mk(ctx, AST_CALL, @1); $$->str = $1; $$->args = $3->v; $$->nargs = $3->n;
        CHECK_DEPTH($$, @1);
      }
    | '(' expr ')' { $$ = $2; }
    ;

args
    : arg { $$ = ARENA_NEW(ctx->arena, AstList); VEC_PUSH(ctx->arena, $$->v, $$->n, $$->cap, $1); }
    | args ',' arg { $$ = $1; VEC_PUSH(ctx->arena, $$->v, $$->n, $$->cap, $3); }
    ;

arg
    : expr
    | cmp_op { $$ = mk(ctx, AST_CMP_OP, @1); $$->op = $1; }
    ;

cmp_op
    : EQ  { $$ = OP_EQ; }
    | NE  { $$ = OP_NE; }
    | '<' { $$ = OP_LT; }
    | LE  { $$ = OP_LE; }
    | '>' { $$ = OP_GT; }
    | GE  { $$ = OP_GE; }
    ;

mstmts
    : %empty { $$ = NULL; }
    | mstmts mstmt { $$ = append_mstmt($1, $2); }
    ;

mstmt
    : IDENT ';' { $$ = ARENA_NEW(ctx->arena, MStmt); $$->loc = @$; $$->name_loc = @1; $$->name = $1; }
    | IDENT mopts ';' {
        $$ = ARENA_NEW(ctx->arena, MStmt); $$->loc = @$; $$->name_loc = @1; $$->name = $1; $$->opts = $2;
      }
    | IDENT mopt '{' mstmts '}' {
        $$ = ARENA_NEW(ctx->arena, MStmt); $$->loc = @$; $$->name_loc = @1; $$->name = $1;
        $$->opts = $2; $$->body = $4; $$->is_block = true;
      }
    | error ';' { $$ = NULL; yyerrok; }
    ;

mopts
    : mopt
    | mopts ',' mopt { MOpt *t = $1; while (t->next) t = t->next; t->next = $3; $$ = $1; }
    ;

mopt
    : matom {
        $$ = ARENA_NEW(ctx->arena, MOpt); $$->loc = @$;
        int cap = 0; VEC_PUSH(ctx->arena, $$->atoms, $$->natoms, cap, $1);
      }
    | mopt matom {
        $$ = $1; $$->loc.last_line = @2.last_line; $$->loc.last_column = @2.last_column;
        /* atoms are few: grow one by one */
        MAtom *v = ARENA_ARRAY(ctx->arena, MAtom, $$->natoms + 1);
        memcpy(v, $$->atoms, sizeof(MAtom) * (size_t)$$->natoms);
        v[$$->natoms++] = $2; $$->atoms = v;
      }
    ;

matoms_call
    : %empty { $$ = NULL; }
    | mopts
    ;

matom
    : IDENT  { MAtom a = {0}; a.kind = MA_NAME; a.str = $1; $$ = matom(a, @$); }
    | INT    { MAtom a = {0}; a.kind = MA_INT; a.ival = $1; a.fval = (double)$1; $$ = matom(a, @$); }
    | '-' INT { MAtom a = {0}; a.kind = MA_INT; a.ival = -$2; a.fval = -(double)$2; $$ = matom(a, @$); }
    | FLOAT  { MAtom a = {0}; a.kind = MA_FLOAT; a.fval = $1; $$ = matom(a, @$); }
    | '-' FLOAT { MAtom a = {0}; a.kind = MA_FLOAT; a.fval = -$2; $$ = matom(a, @$); }
    | STRING { MAtom a = {0}; a.kind = MA_STRING; a.str = $1; $$ = matom(a, @$); }
    | TRUE   { MAtom a = {0}; a.kind = MA_BOOL; a.ival = 1; $$ = matom(a, @$); }
    | FALSE  { MAtom a = {0}; a.kind = MA_BOOL; a.ival = 0; $$ = matom(a, @$); }
    | IDENT '(' matoms_call ')' {
        MAtom a = {0}; a.kind = MA_CALL; a.str = $1; a.args = $3; $$ = matom(a, @$);
      }
    ;

%%

/* Bison's own messages; with custom syntax errors the only one left is its stack overflow. */
static void yyerror(SrcLoc *loc, yyscan_t scanner, ParseCtx *ctx, const char *msg)
{
    (void)scanner;
    ctx->nerrors++;
    if (strcmp(msg, "memory exhausted") == 0) {
        diag_error(ctx->diags, ctx->file, *loc,
                   "expression nested too deeply: the parser's stack holds %d entries, about two per operator "
                   "still open", YYMAXDEPTH);
        diag_hint(ctx->diags, "name intermediate results: t = ...; then use t");
        return;
    }
    diag_error(ctx->diags, ctx->file, *loc, "%s", msg);
}

/* A readable name for a token: `x` for punctuation and keywords, its text for names and numbers
 * (cut short when long). */
static const char *describe(const yypcontext_t *yyctx, ParseCtx *ctx, yysymbol_kind_t sym)
{
    const char *text = ctx->tok_text ? ctx->tok_text : "";
    int len = (int)strlen(text), shown = len > 40 ? 40 : len;
    const char *more = len > 40 ? "..." : "";
    switch (sym) {
    case YYSYMBOL_IDENT: return arena_printf(ctx->arena, "name `%.*s%s`", shown, text, more);
    case YYSYMBOL_INT: case YYSYMBOL_FLOAT: return arena_printf(ctx->arena, "number `%.*s%s`", shown, text, more);
    case YYSYMBOL_YYEOF: return "end of file";
    default: (void)yyctx; return yysymbol_name(sym);
    }
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner, ParseCtx *ctx)
{
    (void)scanner;
    enum { MAX_EXPECTED = 6 };
    yysymbol_kind_t expected[MAX_EXPECTED];
    int n = yypcontext_expected_tokens(yyctx, expected, MAX_EXPECTED);
    yysymbol_kind_t got = yypcontext_token(yyctx);
    SrcLoc loc = *yypcontext_location(yyctx);
    bool wants_semicolon = false;
    for (int i = 0; i < n; i++) wants_semicolon |= strcmp(yysymbol_name(expected[i]), "`;`") == 0;
    ctx->nerrors++;
    ctx->semicolon_missing = false;
    /* A statement that ends at a line break or at the end of the file without `;`: point just
     * past its last token. */
    bool at_eof = got == YYSYMBOL_YYEOF;
    if (wants_semicolon && ctx->prev.last_line > 0 && (loc.first_line > ctx->prev.last_line || at_eof)) {
        SrcLoc at = { ctx->prev.last_line, ctx->prev.last_column + 1,
                      ctx->prev.last_line, ctx->prev.last_column + 1 };
        diag_error(ctx->diags, ctx->file, at, "missing `;` at the end of the statement");
        /* Parse on as if it were there; at the end of the file there is nothing left to parse. */
        ctx->semicolon_missing = !at_eof;
        return 0;
    }
    const char *msg = arena_printf(ctx->arena, "unexpected %s", describe(yyctx, ctx, got));
    for (int i = 0; i < n; i++)
        msg = arena_printf(ctx->arena, "%s%s%s", msg, i == 0 ? "; expected " : (i == n - 1 ? " or " : ", "),
                           yysymbol_name(expected[i]));
    diag_error(ctx->diags, ctx->file, loc, "%s", msg);
    return 0;
}
