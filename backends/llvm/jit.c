/* jit.c: the LLVM ORC JIT backend (the module tfmc_llvm.so, opened by the library on demand).
 * It compiles a kernel program to one function, run(arena, ids, n, pos0, hn, ex), which makes
 * the program's calls in order as the C backend writes them:
 *   - a runtime kernel call becomes a call to the kernel's address in this process, its LLVM
 *     function type read off the kernel's signature (backend.h), every size, offset, weight
 *     pointer and option a constant; the runtime's kernels are already the fastest code for
 *     dense products, attention and norms, so they are called, not re-derived;
 *   - a compressed product with at most UNROLL_MAX_NNZ non-zeros becomes straight-line code with
 *     its weights as constants (a weight of 1 an add), looping over the positions: the C
 *     backend's specialisation, the same terms in the same order. No fast-math flag is set on it
 *     (no reassociation, no contraction), so the sums are the compressed kernel's exactly and
 *     RASP programs stay exactly equal to `tfmc eval`.
 * Threads: the LLVM context, module and LLJIT of a program are its own, so programs compile
 * concurrently under one lock held only around LLVM's global initialisation; the compiled
 * function is pure code over its arguments and runs on any number of threads at once. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "jit.h"

enum { UNROLL_MAX_NNZ = 2048 };

struct JitProgram {
    LLVMOrcLLJITRef jit;
    JitRunFn run;
    double seconds;
    /* a declared model's: what its entry points need, and their addresses */
    int vocab, max_len;
    size_t arena_floats, out_offset;
    bool cached, model;
    int bos, dim, nout, out_dim; /* a RASP program's */
    const int *value_dims;
    bool categorical;
    int nentries;
    const EntryPoint *entries;
    void **addresses;
};

/* A declared model's context, as the JIT'd entry points use it (the generated C's fields). */
typedef struct JitCtx {
    float *arena;
    const TfmcrtExec *prefill_exec, *decode_exec;
    int len;
    int tokens[]; /* max_len of them */
} JitCtx;

/* The entry points' bodies, in C: each JIT'd entry is a wrapper that calls one of these with its
 * program as a constant first argument, then its own arguments (cgen_model.c writes the same). */
static int e_init(const JitProgram *p, JitCtx *c, void *arena, size_t bytes)
{
    if (!c || !arena || bytes < p->arena_floats * sizeof(float)) return -1;
    c->arena = arena;
    if (!p->model) return 0; /* a RASP program's context is its arena alone (e_context_bytes) */
    c->len = 0;
    c->prefill_exec = c->decode_exec = NULL;
    return 0;
}

static void e_set_exec(const JitProgram *p, JitCtx *c, const TfmcrtExec *prefill, const TfmcrtExec *decode)
{
    (void)p;
    c->prefill_exec = prefill;
    c->decode_exec = decode;
}

static void e_reset(const JitProgram *p, JitCtx *c)
{
    (void)p;
    c->len = 0;
}

static int feed(const JitProgram *p, JitCtx *c, const int *tokens, int n, float *logits, int rows, int decode)
{
    const TfmcrtExec *ex = decode ? c->decode_exec : c->prefill_exec;
    size_t total = (size_t)n;
    if (n < 1 || c->len + n > p->max_len) return -1;
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= p->vocab) return -2;
        c->tokens[c->len + i] = tokens[i];
    }
    if (p->cached) {
        p->run(c->arena, tokens, (size_t)n, (size_t)c->len, (size_t)rows, ex);
    } else {
        total = (size_t)(c->len + n);
        p->run(c->arena, c->tokens, total, 0, (size_t)rows, ex);
    }
    c->len += n;
    if (rows)
        memcpy(logits, c->arena + p->out_offset + (total - (size_t)rows) * (size_t)p->vocab,
               sizeof(float) * (size_t)rows * (size_t)p->vocab);
    return 0;
}

static int e_prefill(const JitProgram *p, JitCtx *c, const int *tokens, int n, float *logits)
{
    return feed(p, c, tokens, n, logits, logits ? n : 0, 0);
}

static int e_prefill_last(const JitProgram *p, JitCtx *c, const int *tokens, int n, float *logits)
{
    return feed(p, c, tokens, n, logits, logits ? 1 : 0, 0);
}

static int e_decode(const JitProgram *p, JitCtx *c, int token, float *logits)
{
    return feed(p, c, &token, 1, logits, logits ? 1 : 0, 1);
}

/* A RASP program's forward: BOS, the transformer, each position decoded (cgen_rasp.c's). */
static int e_forward(const JitProgram *p, JitCtx *c, const int *tokens, int n, void *out)
{
    int ids[4097];
    if (n < 1 || n > p->max_len || n > 4096) return -1;
    ids[0] = p->bos;
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= p->vocab) return -2;
        ids[i + 1] = tokens[i];
    }
    p->run(c->arena, ids, (size_t)n + 1, 0, (size_t)n + 1, NULL);
    for (int i = 0; i < n; i++) {
        const float *row = c->arena + p->out_offset + (size_t)(i + 1) * (size_t)p->dim;
        if (p->categorical) {
            int best = -1;
            float bv = 0.5f; /* undefined unless a value holds more than half */
            for (int v = 0; v < p->nout; v++)
                if (row[p->value_dims[v]] > bv) {
                    bv = row[p->value_dims[v]];
                    best = v;
                }
            ((int *)out)[i] = best;
        } else {
            ((float *)out)[i] = row[p->out_dim];
        }
    }
    return 0;
}

static const char *e_cpu_missing(const JitProgram *p)
{
    (void)p;
    return NULL; /* compiled for this machine's CPU */
}

static size_t e_context_bytes(const JitProgram *p)
{
    return p->model ? sizeof(JitCtx) + (size_t)p->max_len * sizeof(int) : sizeof(float *);
}
static size_t e_arena_bytes(const JitProgram *p) { return p->arena_floats * sizeof(float); }

typedef void (*AnyFn)(void);

static AnyFn entry_body(const char *name)
{
    static const struct {
        const char *name;
        AnyFn fn;
    } bodies[] = {
        { "init", (AnyFn)e_init }, { "set_exec", (AnyFn)e_set_exec }, { "reset", (AnyFn)e_reset },
        { "prefill", (AnyFn)e_prefill }, { "prefill_last", (AnyFn)e_prefill_last }, { "decode", (AnyFn)e_decode },
        { "cpu_missing", (AnyFn)e_cpu_missing }, { "context_bytes", (AnyFn)e_context_bytes },
        { "arena_bytes", (AnyFn)e_arena_bytes }, { "forward", (AnyFn)e_forward },
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
        if (!strcmp(bodies[i].name, name)) return bodies[i].fn;
    return NULL;
}

typedef struct Builder {
    const JitInput *in;
    const Graph *g;
    LLVMContextRef c;
    LLVMModuleRef m;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    LLVMTypeRef f32, i32, i64, ptr, vd;
    LLVMValueRef arena, ids, n, pos0, hn, ex, hs; /* hs: n - hn, the rows before the head's */
    bool oom;
} Builder;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static LLVMValueRef ci64(Builder *B, uint64_t v) { return LLVMConstInt(B->i64, v, 0); }

/* An address of this process as a constant pointer. */
static LLVMValueRef address(Builder *B, const void *p)
{
    if (!p) return LLVMConstNull(B->ptr);
    return LLVMConstIntToPtr(ci64(B, (uint64_t)(uintptr_t)p), B->ptr);
}

static const float *const_data(const Graph *g, int c)
{
    if (c < 0) return NULL;
    return g->consts[c].vals ? g->consts[c].vals : g->consts[c].data;
}

/* arena + offset floats (+ extra floats, a run-time count, when not NULL). */
static LLVMValueRef arena_at(Builder *B, size_t offset, LLVMValueRef extra)
{
    LLVMValueRef idx = ci64(B, offset);
    if (extra) idx = LLVMBuildAdd(B->b, idx, extra, "");
    return LLVMBuildGEP2(B->b, B->f32, B->arena, &idx, 1, "");
}

static LLVMTypeRef sig_type(Builder *B, char s)
{
    switch (s) {
    case 'z': return B->i64;
    case 'k': return B->i32;
    case 'f': return B->f32;
    default: return B->ptr;
    }
}

/* The value of argument x of call k, for a parameter of signature letter s. */
static LLVMValueRef arg_value(Builder *B, const KCall *k, const KArg *x, char s)
{
    const Graph *g = B->g;
    LLVMValueRef n = k->head ? B->hn : B->n;
    switch (x->kind) {
    case KA_EXEC: return B->ex;
    case KA_TENSOR:
        return arena_at(B, g->tensors[x->index].offset,
                        k->head ? LLVMBuildMul(B->b, B->hs, ci64(B, (uint64_t)g->tensors[x->index].cols), "") : NULL);
    case KA_CACHE: return arena_at(B, g->tensors[x->index].offset, NULL);
    case KA_SCRATCH: return arena_at(B, g->scratch, NULL);
    case KA_CONST: return address(B, const_data(g, x->index));
    case KA_ROWPTR: return address(B, g->consts[x->index].rowptr);
    case KA_COLIDX: return address(B, g->consts[x->index].colidx);
    case KA_Q8: return address(B, g->consts[x->index].q8);
    case KA_Q8_SCALE: return address(B, g->consts[x->index].q8_scale);
    case KA_IDS: return B->ids;
    case KA_N: return n;
    case KA_POS0: return B->pos0;
    case KA_COUNT: {
        LLVMValueRef v = LLVMBuildMul(B->b, n, ci64(B, (uint64_t)x->value), "");
        return x->power == 2 ? LLVMBuildMul(B->b, v, n, "") : v;
    }
    case KA_SIZE: case KA_INT: case KA_ENUM:
        return s == 'k' ? LLVMConstInt(B->i32, (uint64_t)x->value, 1) : ci64(B, (uint64_t)x->value);
    case KA_FLOAT: return LLVMConstReal(B->f32, x->f);
    case KA_ATTENTION: return address(B, B->in->attn[x->index]);
    case KA_EXPERTS: return address(B, B->in->experts[x->index]);
    }
    return LLVMConstNull(B->ptr);
}

static void emit_call(Builder *B, const KCall *k)
{
    const char *sig = B->in->kernels[k->kernel].signature;
    LLVMTypeRef params[KCALL_MAX_ARGS];
    LLVMValueRef args[KCALL_MAX_ARGS];
    for (int j = 0; j < k->nargs; j++) {
        params[j] = sig_type(B, sig[j]);
        args[j] = arg_value(B, k, &k->args[j], sig[j]);
    }
    LLVMTypeRef ft = LLVMFunctionType(B->vd, params, (unsigned)k->nargs, 0);
    union {
        KernelFn fn;
        uintptr_t bits;
    } a = { B->in->kernels[k->kernel].fn };
    LLVMValueRef callee = LLVMConstIntToPtr(ci64(B, (uint64_t)a.bits), B->ptr);
    LLVMBuildCall2(B->b, ft, callee, args, (unsigned)k->nargs, "");
}

static bool unrollable(const Builder *B, const KCall *k)
{
    if ((k->kernel != K_LINEAR_CSR && k->kernel != K_LINEAR_CSR_ACC) || k->head) return false;
    int w = k->args[k->kernel == K_LINEAR_CSR ? 6 : 7].index;
    return B->g->consts[w].nnz <= UNROLL_MAX_NNZ;
}

static LLVMValueRef load_f(Builder *B, LLVMValueRef base, LLVMValueRef row, int i)
{
    LLVMValueRef idx = LLVMBuildAdd(B->b, row, ci64(B, (uint64_t)i), "");
    LLVMValueRef p = LLVMBuildGEP2(B->b, B->f32, base, &idx, 1, "");
    return LLVMBuildLoad2(B->b, B->f32, p, "");
}

static void store_f(Builder *B, LLVMValueRef v, LLVMValueRef base, LLVMValueRef row, int i)
{
    LLVMValueRef idx = LLVMBuildAdd(B->b, row, ci64(B, (uint64_t)i), "");
    LLVMBuildStore(B->b, v, LLVMBuildGEP2(B->b, B->f32, base, &idx, 1, ""));
}

/* The straight-line product: for each position i, y[r] = (acc: a[r] +) (b[r] + the row's terms in
 * order), rows without terms and bias copied from a (acc) — cgen.c's emit_unrolled, in IR. */
static void emit_unrolled(Builder *B, const KCall *k)
{
    const Graph *g = B->g;
    bool acc = k->kernel == K_LINEAR_CSR_ACC;
    const GraphConst *w = &g->consts[k->args[acc ? 7 : 6].index];
    int bi = k->args[acc ? 8 : 7].index;
    const float *bias = bi >= 0 ? g->consts[bi].data : NULL;
    /* (out, in, ...) or (out, acc, in, ...): tfmcrt_linear_csr_ex's and tfmcrt_linear_csr_acc_ex's order */
    LLVMValueRef out = arg_value(B, k, &k->args[1], 'o'), in = arg_value(B, k, &k->args[acc ? 3 : 2], 'i');
    LLVMValueRef a = acc ? arg_value(B, k, &k->args[2], 'i') : NULL;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(B->b);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(B->c, B->fn, "rows");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(B->c, B->fn, "rows.done");
    LLVMBuildCondBr(B->b, LLVMBuildICmp(B->b, LLVMIntNE, B->n, ci64(B, 0), ""), body, done);
    LLVMPositionBuilderAtEnd(B->b, body);
    LLVMValueRef i = LLVMBuildPhi(B->b, B->i64, "i");
    LLVMValueRef xrow = LLVMBuildMul(B->b, i, ci64(B, (uint64_t)w->cols), "");
    LLVMValueRef yrow = LLVMBuildMul(B->b, i, ci64(B, (uint64_t)w->rows), "");
    /* every load first (each input column once, each accumulated value), then the sums, then the
     * stores: no store sits between two loads, so LLVM has no aliasing to work out (out may be
     * acc, in place), which on rows of thousands of terms is most of its compile time */
    LLVMValueRef *x = calloc((size_t)(w->cols ? w->cols : 1), sizeof *x);
    LLVMValueRef *y = calloc((size_t)(w->rows ? w->rows : 1), sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        B->oom = true;
        return;
    }
    for (int q = 0; q < w->nnz; q++)
        if (!x[w->colidx[q]]) x[w->colidx[q]] = load_f(B, in, xrow, w->colidx[q]);
    for (int r = 0; r < w->rows; r++) {
        bool empty = w->rowptr[r] == w->rowptr[r + 1];
        if (acc && !bias && empty) {
            y[r] = load_f(B, a, yrow, r);
            continue;
        }
        LLVMValueRef sum = LLVMConstReal(B->f32, bias ? bias[r] : 0.0f);
        for (int q = w->rowptr[r]; q < w->rowptr[r + 1]; q++) {
            float v = w->vals[q];
            LLVMValueRef xv = x[w->colidx[q]];
            if (v == 1.0f) sum = LLVMBuildFAdd(B->b, sum, xv, "");
            else if (v == -1.0f) sum = LLVMBuildFSub(B->b, sum, xv, "");
            else sum = LLVMBuildFAdd(B->b, sum, LLVMBuildFMul(B->b, xv, LLVMConstReal(B->f32, v), ""), "");
        }
        y[r] = acc ? LLVMBuildFAdd(B->b, load_f(B, a, yrow, r), sum, "") : sum;
    }
    for (int r = 0; r < w->rows; r++) store_f(B, y[r], out, yrow, r);
    free(x);
    free(y);
    LLVMValueRef next = LLVMBuildAdd(B->b, i, ci64(B, 1), "");
    LLVMValueRef zero = ci64(B, 0);
    LLVMBasicBlockRef from[2] = { pre, LLVMGetInsertBlock(B->b) };
    LLVMValueRef vals[2] = { zero, next };
    LLVMAddIncoming(i, vals, from, 2);
    LLVMBuildCondBr(B->b, LLVMBuildICmp(B->b, LLVMIntULT, next, B->n, ""), body, done);
    LLVMPositionBuilderAtEnd(B->b, done);
}

static LLVMTypeRef ctype_llvm(Builder *B, CType t)
{
    switch (t) {
    case CT_VOID: return B->vd;
    case CT_INT: return B->i32;
    case CT_FLOAT: return B->f32;
    case CT_SIZE: return B->i64;
    default: return B->ptr;
    }
}

/* A declared model's entry points: NAME(params) { return body(program, params); } for each, the
 * program an address constant. */
static void build_entries(Builder *B, const JitProgram *p)
{
    for (int i = 0; i < p->nentries; i++) {
        const EntryPoint *e = &p->entries[i];
        union {
            AnyFn fn;
            uintptr_t bits;
        } body = { entry_body(e->name) };
        if (!body.fn) continue;
        LLVMTypeRef params[ENTRY_MAX_PARAMS + 1];
        params[0] = B->ptr;
        for (int j = 0; j < e->nparams; j++) params[j + 1] = ctype_llvm(B, e->params[j]);
        LLVMTypeRef ret = ctype_llvm(B, e->result);
        LLVMValueRef fn = LLVMAddFunction(B->m, e->name, LLVMFunctionType(ret, params + 1, (unsigned)e->nparams, 0));
        LLVMPositionBuilderAtEnd(B->b, LLVMAppendBasicBlockInContext(B->c, fn, "entry"));
        LLVMValueRef args[ENTRY_MAX_PARAMS + 1];
        args[0] = address(B, p);
        for (int j = 0; j < e->nparams; j++) args[j + 1] = LLVMGetParam(fn, (unsigned)j);
        LLVMTypeRef bt = LLVMFunctionType(ret, params, (unsigned)e->nparams + 1, 0);
        LLVMValueRef r = LLVMBuildCall2(B->b, bt, LLVMConstIntToPtr(ci64(B, (uint64_t)body.bits), B->ptr), args,
                                        (unsigned)e->nparams + 1, "");
        if (e->result == CT_VOID) LLVMBuildRetVoid(B->b);
        else LLVMBuildRet(B->b, r);
    }
}

/* The module: one function `run` with the program's calls; the head's behind `if (hn)`. */
static void build(Builder *B)
{
    const KProgram *k = B->in->k;
    LLVMTypeRef params[6] = { B->ptr, B->ptr, B->i64, B->i64, B->i64, B->ptr };
    B->fn = LLVMAddFunction(B->m, "run", LLVMFunctionType(B->vd, params, 6, 0));
    B->arena = LLVMGetParam(B->fn, 0);
    B->ids = LLVMGetParam(B->fn, 1);
    B->n = LLVMGetParam(B->fn, 2);
    B->pos0 = LLVMGetParam(B->fn, 3);
    B->hn = LLVMGetParam(B->fn, 4);
    B->ex = LLVMGetParam(B->fn, 5);
    LLVMPositionBuilderAtEnd(B->b, LLVMAppendBasicBlockInContext(B->c, B->fn, "entry"));
    B->hs = LLVMBuildSub(B->b, B->n, B->hn, "hs");
    for (int i = 0; i < k->ncalls; i++) {
        const KCall *call = &k->calls[i];
        if (unrollable(B, call)) {
            emit_unrolled(B, call);
            continue;
        }
        if (!call->head) {
            emit_call(B, call);
            continue;
        }
        LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(B->c, B->fn, "head");
        LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(B->c, B->fn, "head.done");
        LLVMBuildCondBr(B->b, LLVMBuildICmp(B->b, LLVMIntNE, B->hn, ci64(B, 0), ""), then, after);
        LLVMPositionBuilderAtEnd(B->b, then);
        emit_call(B, call);
        LLVMBuildBr(B->b, after);
        LLVMPositionBuilderAtEnd(B->b, after);
    }
    LLVMBuildRetVoid(B->b);
}

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_llvm(void)
{
    static bool done;
    pthread_mutex_lock(&init_lock);
    if (!done) {
        LLVMInitializeNativeTarget();
        LLVMInitializeNativeAsmPrinter();
        done = true;
    }
    pthread_mutex_unlock(&init_lock);
}

/* An LLVM error's message into err (and the error consumed); true when there was one. */
static bool failed(LLVMErrorRef e, const char *what, char *err, size_t cap)
{
    if (!e) return false;
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, cap, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return true;
}

static LLVMTargetMachineRef host_machine(int opt, char *err, size_t cap)
{
    char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
    LLVMTargetRef target;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        snprintf(err, cap, "no LLVM target for %s: %s", triple, msg ? msg : "?");
        LLVMDisposeMessage(msg);
    } else {
        char *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
        /* levels 0 and 1 take LLVM's fast instruction selection: on rows of straight-line terms
         * the SelectionDAG costs 40-60 ms where FastISel takes 7 (sort.tfm) */
        LLVMCodeGenOptLevel level = opt <= 1 ? LLVMCodeGenLevelNone : opt == 2 ? LLVMCodeGenLevelDefault
                                    : LLVMCodeGenLevelAggressive;
        tm = LLVMCreateTargetMachine(target, triple, cpu, features, level, LLVMRelocDefault, LLVMCodeModelJITDefault);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(features);
        if (!tm) snprintf(err, cap, "LLVM cannot make a target machine for this CPU");
    }
    LLVMDisposeMessage(triple);
    return tm;
}

static void jit_free(JitProgram *p)
{
    if (!p) return;
    if (p->jit) LLVMOrcDisposeLLJIT(p->jit);
    free(p->addresses);
    free(p);
}

static JitProgram *jit_compile(const JitInput *in, char *err, size_t cap)
{
    double t0 = now();
    init_llvm();
    JitProgram *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    Builder B = { 0 };
    B.in = in;
    B.g = in->k->g;
    B.c = LLVMOrcThreadSafeContextGetContext(tsc);
    B.m = LLVMModuleCreateWithNameInContext(in->k->g->name ? in->k->g->name : "tfmc", B.c);
    B.b = LLVMCreateBuilderInContext(B.c);
    B.f32 = LLVMFloatTypeInContext(B.c);
    B.i32 = LLVMInt32TypeInContext(B.c);
    B.i64 = LLVMInt64TypeInContext(B.c);
    B.ptr = LLVMPointerTypeInContext(B.c, 0);
    B.vd = LLVMVoidTypeInContext(B.c);
    build(&B);
    const Graph *g = in->k->g;
    p->model = g->declared;
    p->vocab = in->vocab;
    p->max_len = in->max_len;
    p->arena_floats = g->arena_floats;
    p->out_offset = in->out_offset;
    p->cached = in->cached;
    p->bos = in->bos;
    p->dim = in->dim;
    p->nout = in->nout;
    p->out_dim = in->out_dim;
    p->value_dims = in->value_dims;
    p->categorical = in->categorical;
    p->entries = in->k->entries;
    p->nentries = in->k->nentries;
    p->addresses = calloc((size_t)(p->nentries ? p->nentries : 1), sizeof *p->addresses);
    if (!p->addresses) {
        snprintf(err, cap, "out of memory");
        LLVMDisposeBuilder(B.b);
        LLVMDisposeModule(B.m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        free(p);
        return NULL;
    }
    build_entries(&B, p);
    LLVMDisposeBuilder(B.b);
    char *msg = NULL;
    bool bad = B.oom || LLVMVerifyModule(B.m, LLVMReturnStatusAction, &msg);
    if (B.oom) snprintf(err, cap, "out of memory");
    else if (bad) snprintf(err, cap, "internal error: the JIT's module does not verify: %s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    LLVMTargetMachineRef tm = bad ? NULL : host_machine(in->opt_level, err, cap);
    if (!tm) {
        LLVMDisposeModule(B.m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        free(p);
        return NULL;
    }
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(B.m, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(B.m, layout);
    LLVMDisposeTargetData(layout);
    /* 0: no pass; 1 (the default): early CSE only, the glue between calls and the straight-line
     * rows being already what they should be; 2 and 3: LLVM's default pipelines */
    char pipeline[64];
    int level = in->opt_level < 0 ? 0 : in->opt_level > 3 ? 3 : in->opt_level;
    snprintf(pipeline, sizeof pipeline, "%s", level == 0 ? "default<O0>" : level == 1 ? "function(early-cse)"
                                              : level == 2 ? "default<O2>" : "default<O3>");
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    /* the only loops are over positions (a few, a run-time count) around straight-line rows:
     * vectorising or unrolling them only grows the code and the compile time */
    LLVMPassBuilderOptionsSetLoopVectorization(po, 0);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 0);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, 0);
    LLVMPassBuilderOptionsSetLoopInterleaving(po, 0);
    LLVMErrorRef e = LLVMRunPasses(B.m, pipeline, tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (failed(e, "LLVM's passes", err, cap)) {
        LLVMDisposeTargetMachine(tm);
        LLVMDisposeModule(B.m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        free(p);
        return NULL;
    }
    /* the LLJIT takes the target machine (through its builder) and the module */
    LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
    if (failed(LLVMOrcCreateLLJIT(&p->jit, jb), "LLVM's JIT", err, cap)) {
        LLVMDisposeModule(B.m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        free(p);
        return NULL;
    }
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(p->jit);
    /* the C library's functions that code generation may call (memcpy, memset) */
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if (failed(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(p->jit), NULL, NULL),
               "LLVM's symbol search", err, cap)) {
        LLVMDisposeModule(B.m);
        LLVMOrcDisposeThreadSafeContext(tsc);
        jit_free(p);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(jd, gen);
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(B.m, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc);
    if (failed(LLVMOrcLLJITAddLLVMIRModule(p->jit, jd, tsm), "LLVM's JIT (adding the module)", err, cap)) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        jit_free(p);
        return NULL;
    }
    LLVMOrcExecutorAddress addr = 0;
    if (failed(LLVMOrcLLJITLookup(p->jit, &addr, "run"), "LLVM's JIT (code generation)", err, cap)) {
        jit_free(p);
        return NULL;
    }
    union {
        uintptr_t bits;
        JitRunFn fn;
    } f = { (uintptr_t)addr };
    p->run = f.fn;
    for (int i = 0; i < p->nentries; i++) {
        if (!entry_body(p->entries[i].name)) continue;
        if (failed(LLVMOrcLLJITLookup(p->jit, &addr, p->entries[i].name), "LLVM's JIT (an entry point)", err, cap)) {
            jit_free(p);
            return NULL;
        }
        p->addresses[i] = (void *)(uintptr_t)addr;
    }
    p->seconds = now() - t0;
    return p;
}

static JitRunFn jit_entry(const JitProgram *p) { return p->run; }

static void *jit_lookup(const JitProgram *p, const char *entry)
{
    for (int i = 0; i < p->nentries; i++)
        if (!strcmp(p->entries[i].name, entry)) return p->addresses[i];
    return NULL;
}
static double jit_seconds(const JitProgram *p) { return p->seconds; }

/* The module's one export (-fvisibility=hidden hides everything else). */
__attribute__((visibility("default"))) const JitApi tfmc_llvm_api = { TFMC_JIT_VERSION, jit_compile, jit_entry, jit_seconds,
                                                                      jit_lookup, jit_free };
