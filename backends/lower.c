/* lower.c: the one lowering from graph ops to runtime kernel calls, which every backend consumes
 * (backend.h). Each op becomes one call, or two where a copy comes first (an activation or a
 * softmax that does not work in place); constants, tensors and options are referred to by
 * index, so a backend decides how to reach them (pointers in-process, arrays in C). */
#include <string.h>

#include "backend.h"
#include "tfmcrt.h"

/* the runtime numbers activations, norms and score functions as the IRs do */
_Static_assert(TFMCRT_RELU == (int)ACT_RELU && TFMCRT_GEGLU == (int)ACT_GEGLU && TFMCRT_SILU == (int)ACT_SILU &&
                   TFMCRT_GEGLU_TANH == (int)ACT_GEGLU_TANH,
               "activations");
_Static_assert(TFMCRT_NORM_NONE == (int)NORM_NONE && TFMCRT_DYT == (int)NORM_DYT, "norms");
_Static_assert(TFMCRT_SOFTMAX == (int)SCORE_SOFTMAX && TFMCRT_HARD == (int)SCORE_HARD, "score functions");

const KernelInfo kernel_info[K_COUNT] = {
#define KERNEL_INFO(e, fn, sig) [K_##e] = { #fn, sig, (KernelFn)fn },
    KERNELS(KERNEL_INFO)
#undef KERNEL_INFO
};

_Static_assert(sizeof kernel_info / sizeof kernel_info[0] == K_COUNT, "kernel_info covers Kernel");

typedef struct Lower {
    Arena *a;
    const Graph *g;
    KCall *calls;
    int ncalls, cap;
    KCall *cur;
} Lower;

static void begin(Lower *L, Kernel k, int op)
{
    KCall c = { 0 };
    c.kernel = k;
    c.op = op;
    c.head = L->g->ops[op].head;
    VEC_PUSH(L->a, L->calls, L->ncalls, L->cap, c);
    L->cur = &L->calls[L->ncalls - 1];
}

static void arg(Lower *L, KArg x)
{
    if (L->cur->nargs < KCALL_MAX_ARGS) L->cur->args[L->cur->nargs] = x;
    L->cur->nargs++; /* past the maximum: kprogram_check reports it */
}

static void exec(Lower *L) { arg(L, (KArg){ .kind = KA_EXEC }); }
static void tensor(Lower *L, int t) { arg(L, (KArg){ .kind = L->g->tensors[t].cache ? KA_CACHE : KA_TENSOR, .index = t }); }
static void cnst(Lower *L, int c) { arg(L, (KArg){ .kind = KA_CONST, .index = c }); }
static void rows_of(Lower *L, int c)
{
    arg(L, (KArg){ .kind = KA_ROWPTR, .index = c });
    arg(L, (KArg){ .kind = KA_COLIDX, .index = c });
}
static void n(Lower *L) { arg(L, (KArg){ .kind = KA_N }); }
static void pos0(Lower *L) { arg(L, (KArg){ .kind = KA_POS0 }); }
static void count(Lower *L, long per, int power) { arg(L, (KArg){ .kind = KA_COUNT, .value = per, .power = power }); }
static void size(Lower *L, long v) { arg(L, (KArg){ .kind = KA_SIZE, .value = v }); }
static void integer(Lower *L, long v) { arg(L, (KArg){ .kind = KA_INT, .value = v }); }
static void flt(Lower *L, float f) { arg(L, (KArg){ .kind = KA_FLOAT, .f = f }); }
static void named(Lower *L, long v, const char *name) { arg(L, (KArg){ .kind = KA_ENUM, .value = v, .name = name }); }

static void act(Lower *L, Activation a)
{
    static const char *const names[] = { "TFMCRT_RELU", "TFMCRT_GELU", "TFMCRT_GELU_TANH", "TFMCRT_SILU",
                                         "TFMCRT_SWIGLU", "TFMCRT_GEGLU", "TFMCRT_GEGLU_TANH" };
    /* the runtime's values are the model IR's order (tfmcrt.h) */
    named(L, (long)a, names[a]);
}

static void norm_kind(Lower *L, NormKind k)
{
    static const char *const names[] = { "TFMCRT_NORM_NONE", "TFMCRT_LAYERNORM", "TFMCRT_RMSNORM", "TFMCRT_DYT" };
    named(L, (long)k, names[k]);
}

/* out = in, unless they are one place already */
static void copy_unless_same(Lower *L, int op, int out, int in, long per, int power)
{
    if (L->g->tensors[out].offset == L->g->tensors[in].offset) return;
    begin(L, K_COPY, op);
    tensor(L, out);
    tensor(L, in);
    count(L, per, power);
}

static void lower_op(Lower *L, int i)
{
    const Graph *g = L->g;
    const GraphOp *o = &g->ops[i];
    int cols = g->tensors[o->out].cols, a = o->in[0], b = o->in[1];
    switch (o->kind) {
    case G_EMBED: {
        const GraphConst *tok = &g->consts[o->consts[0]];
        if (tok->vals) {
            begin(L, K_EMBED_CSR, i);
            tensor(L, o->out);
            arg(L, (KArg){ .kind = KA_IDS });
            n(L);
            pos0(L);
            size(L, g->dim);
            rows_of(L, o->consts[0]);
            cnst(L, o->consts[0]);
            rows_of(L, o->consts[1]);
            cnst(L, o->consts[1]);
        } else {
            begin(L, K_EMBED, i);
            tensor(L, o->out);
            arg(L, (KArg){ .kind = KA_IDS });
            n(L);
            pos0(L);
            cnst(L, o->consts[0]);
            cnst(L, o->consts[1]);
            size(L, g->dim);
        }
        if (o->scale != 1.0f) {
            /* Gemma: the embedding times sqrt(dim) (a tied head reads the table unscaled) */
            begin(L, K_SCALE, i);
            tensor(L, o->out);
            count(L, g->dim, 1);
            flt(L, o->scale);
        }
        return;
    }
    case G_LINEAR: {
        const GraphConst *w = graph_linear_w(g, o);
        if (w->q8) {
            begin(L, K_LINEAR_Q8, i);
            exec(L);
            tensor(L, o->out);
            tensor(L, a);
            n(L);
            arg(L, (KArg){ .kind = KA_Q8, .index = o->consts[0] });
            arg(L, (KArg){ .kind = KA_Q8_SCALE, .index = o->consts[0] });
            cnst(L, o->consts[1]);
            size(L, w->rows);
            size(L, w->cols);
            size(L, w->q8_group);
            return;
        }
        begin(L, w->vals ? (b >= 0 ? K_LINEAR_CSR_ACC : K_LINEAR_CSR) : K_LINEAR, i);
        exec(L);
        tensor(L, o->out);
        if (w->vals && b >= 0) tensor(L, b);
        tensor(L, a);
        n(L);
        if (w->vals) rows_of(L, o->consts[0]);
        cnst(L, o->consts[0]);
        cnst(L, o->consts[1]);
        size(L, w->rows);
        size(L, w->cols);
        return;
    }
    case G_ACT:
        copy_unless_same(L, i, o->out, a, cols, 1);
        begin(L, K_ACT, i);
        exec(L);
        tensor(L, o->out);
        count(L, cols, 1);
        act(L, o->act);
        return;
    case G_ADD:
        begin(L, K_ADD, i);
        exec(L);
        tensor(L, o->out);
        tensor(L, a);
        tensor(L, b);
        count(L, cols, 1);
        return;
    case G_SCORES:
        begin(L, K_SCORES, i);
        tensor(L, o->out);
        tensor(L, a);
        tensor(L, b);
        n(L);
        size(L, o->dk);
        flt(L, o->scale);
        integer(L, o->causal);
        return;
    case G_SOFTMAX:
        copy_unless_same(L, i, o->out, a, 1, 2);
        begin(L, K_SOFTMAX_ROWS, i);
        tensor(L, o->out);
        n(L);
        integer(L, o->causal);
        return;
    case G_MIX:
        begin(L, K_MIX, i);
        tensor(L, o->out);
        tensor(L, a);
        tensor(L, b);
        n(L);
        size(L, o->dv);
        return;
    case G_FUSED_ATTENTION:
        begin(L, K_ATTENTION, i);
        tensor(L, o->out);
        tensor(L, a);
        tensor(L, b);
        tensor(L, o->in[2]);
        n(L);
        size(L, o->dk);
        size(L, o->dv);
        flt(L, o->scale);
        integer(L, o->causal);
        return;
    case G_NORM:
        begin(L, K_NORM, i);
        exec(L);
        tensor(L, o->out);
        tensor(L, a);
        n(L);
        size(L, cols);
        norm_kind(L, o->norm.kind);
        flt(L, o->norm.eps);
        flt(L, o->norm.alpha);
        cnst(L, o->consts[0]);
        cnst(L, o->consts[1]);
        return;
    case G_GLU:
        begin(L, K_GLU, i);
        exec(L);
        tensor(L, o->out);
        tensor(L, a);
        tensor(L, b);
        count(L, cols, 1);
        act(L, o->act);
        return;
    case G_HEAD_NORM:
        begin(L, K_HEAD_NORM, i);
        exec(L);
        tensor(L, o->out);
        n(L);
        size(L, o->heads.heads);
        size(L, o->heads.head_dim);
        norm_kind(L, o->norm.kind);
        flt(L, o->norm.eps);
        cnst(L, o->consts[0]);
        return;
    case G_ROPE:
        begin(L, o->consts[0] >= 0 ? K_ROPE_FREQ : K_ROPE, i);
        exec(L);
        tensor(L, o->out);
        n(L);
        size(L, o->rope.heads);
        size(L, o->rope.head_dim);
        if (o->consts[0] >= 0) {
            size(L, o->rope.dims); /* scaled or partial: the rotating dimensions, each pair's frequency */
            pos0(L);
            cnst(L, o->consts[0]);
        } else {
            pos0(L);
            flt(L, o->rope.base);
        }
        return;
    case G_KV_STORE:
        begin(L, K_KV_STORE, i);
        exec(L);
        tensor(L, o->cache[0]);
        tensor(L, o->cache[1]);
        tensor(L, a);
        tensor(L, b);
        n(L);
        pos0(L);
        size(L, g->tensors[o->cache[0]].cols);
        return;
    case G_SLICE:
        begin(L, K_SLICE, i);
        tensor(L, o->out);
        tensor(L, a);
        n(L);
        size(L, g->tensors[a].cols);
        size(L, o->first);
        size(L, cols);
        return;
    case G_MHA_SCORES: case G_MHA_SOFTMAX: case G_MHA_MIX:
        begin(L, o->kind == G_MHA_SCORES ? K_MHA_SCORES : o->kind == G_MHA_SOFTMAX ? K_MHA_SOFTMAX : K_MHA_MIX, i);
        exec(L);
        tensor(L, o->out);
        tensor(L, a);
        if (o->kind != G_MHA_SOFTMAX) tensor(L, o->cache[0]);
        n(L);
        pos0(L);
        size(L, g->positions);
        arg(L, (KArg){ .kind = KA_ATTENTION, .index = i });
        return;
    case G_ATTEND:
        begin(L, K_ATTEND, i);
        exec(L);
        tensor(L, o->out);
        tensor(L, a);
        tensor(L, o->cache[0]);
        tensor(L, o->cache[1]);
        n(L);
        pos0(L);
        arg(L, (KArg){ .kind = KA_ATTENTION, .index = i });
        arg(L, (KArg){ .kind = KA_SCRATCH });
        return;
    case G_MOE:
        begin(L, K_MOE, i);
        exec(L);
        tensor(L, o->out);
        tensor(L, a);
        n(L);
        size(L, g->dim);
        cnst(L, o->consts[0]);
        arg(L, (KArg){ .kind = KA_EXPERTS, .index = i });
        integer(L, o->moe.experts);
        integer(L, o->moe.top);
        size(L, o->moe.hidden);
        act(L, o->moe.act);
        arg(L, (KArg){ .kind = KA_SCRATCH });
        return;
    case G_COUNT: return;
    }
}

/* The entry points of a compiled program: both kinds begin with init and end with these. */
#define ENTRY_INIT                                                                                                     \
    { "init", CT_INT, 3, { CT_CTX, CT_MEMORY, CT_SIZE }, { "ctx", "arena", "bytes" },                                  \
      "Take the arena (NAME_ARENA_BYTES, aligned for float) and keep it; 0 on success, -1 when it is too small, "      \
      "-3 when this CPU lacks an instruction set extension the code was compiled for (NAME_cpu_missing names it)." },
#define ENTRIES_OF_EVERY_PROGRAM                                                                                       \
    { "cpu_missing", CT_CONST_STRING, 0, { CT_VOID }, { "" },                                                          \
      "The first instruction set extension the code was compiled for that this CPU lacks (\"avx512f\", ...), "         \
      "or NULL when it has them all." },                                                                               \
    { "context_bytes", CT_SIZE, 0, { CT_VOID }, { "" },                                                                \
      "sizeof(NAME_ctx), for callers that have no prototype (libffi, Python)." },                                      \
    { "arena_bytes", CT_SIZE, 0, { CT_VOID }, { "" }, "NAME_ARENA_BYTES, the same." },
static const EntryPoint rasp_entries[] = {
    ENTRY_INIT
    { "encode", CT_INT, 1, { CT_CONST_STRING }, { "word" }, "The token id of a word, or -1 when it is not in the vocabulary." },
    { "forward", CT_INT, 4, { CT_CTX, CT_CONST_INTS, CT_INT, CT_OUTS }, { "ctx", "tokens", "n", "out" },
      "Run the transformer on tokens[0..n) and decode each position into out[0..n); 0, or -1 for a bad length, "
      "-2 for a bad token id." },
    { "value_name", CT_CONST_STRING, 1, { CT_INT }, { "id" }, "The text of an output value id; \"_\" for -1 (undefined)." },
    { "snap", CT_INT, 1, { CT_FLOAT }, { "v" },
      "The output value a number decodes to: the nearest within 1e-4 (relative), or -1." },
    ENTRIES_OF_EVERY_PROGRAM
};

static const EntryPoint model_entries[] = {
    ENTRY_INIT
    { "set_exec", CT_VOID, 3, { CT_CTX, CT_EXEC, CT_EXEC }, { "ctx", "prefill", "decode" },
      "The threads of prefill and of decode (NULL: the calling thread)." },
    { "reset", CT_VOID, 1, { CT_CTX }, { "ctx" }, "Forget every position: the next prefill starts a new sequence." },
    { "prefill", CT_INT, 4, { CT_CTX, CT_CONST_INTS, CT_INT, CT_FLOATS }, { "ctx", "tokens", "n", "logits" },
      "Feed tokens[0..n) at the next positions; logits (when not NULL) receives [n][NAME_VOCAB]." },
    { "prefill_last", CT_INT, 4, { CT_CTX, CT_CONST_INTS, CT_INT, CT_FLOATS }, { "ctx", "tokens", "n", "logits" },
      "The same, but logits receives the last position's [NAME_VOCAB], the only ones computed." },
    { "decode", CT_INT, 3, { CT_CTX, CT_INT, CT_FLOATS }, { "ctx", "token", "logits" },
      "Feed one token (using the KV cache); logits receives [NAME_VOCAB]." },
    ENTRIES_OF_EVERY_PROGRAM
};

const char *ctype_c(CType t, const char *prefix, char *buf, size_t cap)
{
    switch (t) {
    case CT_VOID: return "void";
    case CT_INT: return "int";
    case CT_FLOAT: return "float";
    case CT_SIZE: return "size_t";
    case CT_CTX: snprintf(buf, cap, "%s_ctx *", prefix); return buf;
    case CT_MEMORY: return "void *";
    case CT_CONST_INTS: return "const int *";
    case CT_FLOATS: return "float *";
    case CT_OUTS: snprintf(buf, cap, "%s_out_t *", prefix); return buf;
    case CT_CONST_STRING: return "const char *";
    case CT_EXEC: return "const struct TfmcrtExec *"; /* the SIMD header declares only the tag */
    }
    return "void";
}

KProgram *lower_graph(Arena *a, const Graph *g)
{
    Lower L = { a, g, NULL, 0, 0, NULL };
    for (int i = 0; i < g->nops; i++) lower_op(&L, i);
    KProgram *k = ARENA_NEW(a, KProgram);
    k->g = g;
    k->calls = L.calls;
    k->ncalls = L.ncalls;
    if (g->declared) {
        k->entries = model_entries;
        k->nentries = (int)(sizeof model_entries / sizeof model_entries[0]);
    } else {
        /* a categorical output names its values (value_name), a numerical one snaps to them */
        EntryPoint *e = ARENA_ARRAY(a, EntryPoint, 7);
        memcpy(e, rasp_entries, 3 * sizeof *e);
        e[3] = rasp_entries[g->model->out_kind == OUT_CATEGORICAL ? 3 : 4];
        memcpy(e + 4, rasp_entries + 5, 3 * sizeof *e);
        k->entries = e;
        k->nentries = 7;
    }
    return k;
}

/* Which signature characters an argument kind may stand for. */
static const char *accepts(KArgKind k)
{
    switch (k) {
    case KA_EXEC: return "e";
    case KA_TENSOR: case KA_CACHE: case KA_SCRATCH: return "oi";
    case KA_CONST: case KA_Q8_SCALE: return "w";
    case KA_Q8: return "q";
    case KA_ROWPTR: case KA_COLIDX: case KA_IDS: return "p";
    case KA_N: case KA_POS0: case KA_COUNT: case KA_SIZE: return "z";
    case KA_INT: case KA_ENUM: return "k";
    case KA_FLOAT: return "f";
    case KA_ATTENTION: return "a";
    case KA_EXPERTS: return "x";
    }
    return "";
}

bool kprogram_check(const KProgram *k, char *err, size_t cap)
{
    const Graph *g = k->g;
    for (int i = 0; i < k->ncalls; i++) {
        const KCall *c = &k->calls[i];
        const char *sig = kernel_info[c->kernel].signature;
        if (c->nargs != (int)strlen(sig)) {
            snprintf(err, cap, "call %d (%s): %d arguments for a signature of %zu", i, kernel_info[c->kernel].name,
                     c->nargs, strlen(sig));
            return false;
        }
        for (int j = 0; j < c->nargs; j++) {
            const KArg *x = &c->args[j];
            bool ok = strchr(accepts(x->kind), sig[j]) != NULL;
            if ((x->kind == KA_TENSOR || x->kind == KA_CACHE) && (x->index < 0 || x->index >= g->ntensors)) ok = false;
            if (x->kind == KA_CONST && (x->index < -1 || x->index >= g->nconsts)) ok = false;
            if ((x->kind == KA_Q8 || x->kind == KA_Q8_SCALE) &&
                (x->index < 0 || x->index >= g->nconsts || !g->consts[x->index].q8))
                ok = false;
            if ((x->kind == KA_ROWPTR || x->kind == KA_COLIDX) &&
                (x->index < 0 || x->index >= g->nconsts || !g->consts[x->index].vals))
                ok = false;
            if ((x->kind == KA_ATTENTION || x->kind == KA_EXPERTS) && (x->index < 0 || x->index >= g->nops)) ok = false;
            if (!ok) {
                snprintf(err, cap, "call %d (%s): argument %d (kind %d) does not fit `%c`", i, kernel_info[c->kernel].name,
                         j, (int)x->kind, sig[j]);
                return false;
            }
        }
    }
    return true;
}

void kprogram_print(const KProgram *k, FILE *out)
{
    const Graph *g = k->g;
    fprintf(out, "kernels %s: %d calls\n", g->name, k->ncalls);
    for (int i = 0; i < k->ncalls; i++) {
        const KCall *c = &k->calls[i];
        fprintf(out, "  %s%s(", c->head ? "[head] " : "", kernel_info[c->kernel].name);
        for (int j = 0; j < c->nargs; j++) {
            const KArg *x = &c->args[j];
            if (j) fputs(", ", out);
            switch (x->kind) {
            case KA_EXEC: fputs("ex", out); break;
            case KA_TENSOR: case KA_CACHE:
                fprintf(out, "%%%s@%zu", g->tensors[x->index].name, g->tensors[x->index].offset);
                break;
            case KA_SCRATCH: fprintf(out, "scratch@%zu", g->scratch); break;
            case KA_CONST: fprintf(out, x->index < 0 ? "NULL" : "@%s", x->index < 0 ? "" : g->consts[x->index].name); break;
            case KA_ROWPTR: fprintf(out, "@%s.rowptr", g->consts[x->index].name); break;
            case KA_COLIDX: fprintf(out, "@%s.colidx", g->consts[x->index].name); break;
            case KA_Q8: fprintf(out, "@%s.q8", g->consts[x->index].name); break;
            case KA_Q8_SCALE: fprintf(out, "@%s.scale", g->consts[x->index].name); break;
            case KA_IDS: fputs("ids", out); break;
            case KA_N: fputs(c->head ? "hn" : "n", out); break;
            case KA_POS0: fputs("pos0", out); break;
            case KA_COUNT: fprintf(out, "%s%s * %ld", c->head ? "hn" : "n", x->power == 2 ? " * n" : "", x->value); break;
            case KA_SIZE: case KA_INT: fprintf(out, "%ld", x->value); break;
            case KA_ENUM: fputs(x->name, out); break;
            case KA_FLOAT: fprintf(out, "%g", (double)x->f); break;
            case KA_ATTENTION: fprintf(out, "attention(%%%s)", g->tensors[g->ops[x->index].out].name); break;
            case KA_EXPERTS: fprintf(out, "experts(%%%s)", g->tensors[g->ops[x->index].out].name); break;
            }
        }
        fputs(")\n", out);
    }
}
