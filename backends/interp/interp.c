/* interp.c: the interpreter backend. Runs a kernel program in-process: each call's arguments are
 * resolved (arena offsets to pointers, constants to their arrays) and its runtime kernel called,
 * the same kernels, with the same arguments, that the C backend writes. `tfmc run`, `tfmc verify`
 * and the library's programs and sessions run on it. */
#include <string.h>
#include <time.h>

#include "backend.h"
#include "tfmcrt.h"

struct IBackend {
    const KProgram *k;
    TfmcrtAttention *attn; /* per op: its attention options (zero for the others) */
    TfmcrtFfn **experts;   /* per op: its experts (NULL for the others) */
};

static const float *const_data(const Graph *g, int c)
{
    if (c < 0) return NULL;
    return g->consts[c].vals ? g->consts[c].vals : g->consts[c].data;
}

IBackend *ibackend_new(Arena *a, const KProgram *k)
{
    const Graph *g = k->g;
    IBackend *ip = ARENA_NEW(a, IBackend);
    ip->k = k;
    ip->attn = ARENA_ARRAY(a, TfmcrtAttention, g->nops ? g->nops : 1);
    ip->experts = ARENA_ARRAY(a, TfmcrtFfn *, g->nops ? g->nops : 1);
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        if (graph_op_info[o->kind].attrs & GA_ATTN) {
            const GraphAttention *at = &o->attn;
            TfmcrtAttention t = { at->heads, at->kv_heads, at->head_dim, (int)at->score, at->causal, at->window,
                                  at->alibi, at->scale };
            ip->attn[i] = t;
        }
        if (o->kind == G_MOE) {
            TfmcrtFfn *ex = ARENA_ARRAY(a, TfmcrtFfn, o->moe.experts);
            for (int e = 0; e < o->moe.experts; e++) {
                const int *c = o->consts + 1 + 6 * e;
                TfmcrtFfn f = { const_data(g, c[0]), const_data(g, c[1]), const_data(g, c[2]),
                                const_data(g, c[3]), const_data(g, c[4]), const_data(g, c[5]) };
                ex[e] = f;
            }
            ip->experts[i] = ex;
        }
    }
    return ip;
}

const TfmcrtAttention *ibackend_attention(const IBackend *ip, int op) { return &ip->attn[op]; }
const TfmcrtFfn *ibackend_experts(const IBackend *ip, int op) { return ip->experts[op]; }

/* What one call sees: its arena, ids, positions and rows. */
typedef struct Frame {
    const IBackend *ip;
    const KCall *c;
    float *arena;
    const int *ids;
    size_t n, pos0, skip; /* skip: rows before a head call's first */
    const TfmcrtExec *ex;
} Frame;

static float *F(const Frame *f, int j)
{
    const KArg *x = &f->c->args[j];
    const Graph *g = f->ip->k->g;
    if (x->kind == KA_SCRATCH) return f->arena + g->scratch;
    const GraphTensor *t = &g->tensors[x->index];
    return f->arena + t->offset + (x->kind == KA_TENSOR ? f->skip * (size_t)t->cols : 0);
}

static const float *W(const Frame *f, int j) { return const_data(f->ip->k->g, f->c->args[j].index); }

static const int8_t *Q(const Frame *f, int j) { return f->ip->k->g->consts[f->c->args[j].index].q8; }
static const float *S(const Frame *f, int j) { return f->ip->k->g->consts[f->c->args[j].index].q8_scale; }

static const int *P(const Frame *f, int j)
{
    const KArg *x = &f->c->args[j];
    if (x->kind == KA_IDS) return f->ids;
    const GraphConst *c = &f->ip->k->g->consts[x->index];
    return x->kind == KA_ROWPTR ? c->rowptr : c->colidx;
}

static size_t Z(const Frame *f, int j)
{
    const KArg *x = &f->c->args[j];
    switch (x->kind) {
    case KA_N: return f->n;
    case KA_POS0: return f->pos0;
    case KA_COUNT: return (size_t)x->value * f->n * (x->power == 2 ? f->n : 1);
    default: return (size_t)x->value;
    }
}

static int K(const Frame *f, int j) { return (int)f->c->args[j].value; }
static float R(const Frame *f, int j) { return f->c->args[j].f; }
static const TfmcrtAttention *A(const Frame *f, int j) { return &f->ip->attn[f->c->args[j].index]; }
static const TfmcrtFfn *X(const Frame *f, int j) { return f->ip->experts[f->c->args[j].index]; }

static void call(const Frame *f)
{
    const TfmcrtExec *ex = f->ex;
    switch (f->c->kernel) {
    case K_EMBED: tfmcrt_embed(F(f, 0), P(f, 1), Z(f, 2), Z(f, 3), W(f, 4), W(f, 5), Z(f, 6)); break;
    case K_EMBED_CSR:
        tfmcrt_embed_csr(F(f, 0), P(f, 1), Z(f, 2), Z(f, 3), Z(f, 4), P(f, 5), P(f, 6), W(f, 7), P(f, 8), P(f, 9),
                         W(f, 10));
        break;
    case K_LINEAR: tfmcrt_linear_ex(ex, F(f, 1), F(f, 2), Z(f, 3), W(f, 4), W(f, 5), Z(f, 6), Z(f, 7)); break;
    case K_LINEAR_Q8:
        tfmcrt_linear_q8_ex(ex, F(f, 1), F(f, 2), Z(f, 3), Q(f, 4), S(f, 5), W(f, 6), Z(f, 7), Z(f, 8), Z(f, 9));
        break;
    case K_LINEAR_CSR:
        tfmcrt_linear_csr_ex(ex, F(f, 1), F(f, 2), Z(f, 3), P(f, 4), P(f, 5), W(f, 6), W(f, 7), Z(f, 8), Z(f, 9));
        break;
    case K_LINEAR_CSR_ACC:
        tfmcrt_linear_csr_acc_ex(ex, F(f, 1), F(f, 2), F(f, 3), Z(f, 4), P(f, 5), P(f, 6), W(f, 7), W(f, 8), Z(f, 9),
                                 Z(f, 10));
        break;
    case K_COPY: tfmcrt_copy(F(f, 0), F(f, 1), Z(f, 2)); break;
    case K_SCALE: tfmcrt_scale(F(f, 0), Z(f, 1), R(f, 2)); break;
    case K_ACT: tfmcrt_act_ex(ex, F(f, 1), Z(f, 2), K(f, 3)); break;
    case K_ADD: tfmcrt_add_ex(ex, F(f, 1), F(f, 2), F(f, 3), Z(f, 4)); break;
    case K_SCORES: tfmcrt_scores(F(f, 0), F(f, 1), F(f, 2), Z(f, 3), Z(f, 4), R(f, 5), K(f, 6)); break;
    case K_SOFTMAX_ROWS: tfmcrt_softmax_rows(F(f, 0), Z(f, 1), K(f, 2)); break;
    case K_MIX: tfmcrt_mix(F(f, 0), F(f, 1), F(f, 2), Z(f, 3), Z(f, 4)); break;
    case K_ATTENTION:
        tfmcrt_attention(F(f, 0), F(f, 1), F(f, 2), F(f, 3), Z(f, 4), Z(f, 5), Z(f, 6), R(f, 7), K(f, 8));
        break;
    case K_NORM:
        tfmcrt_norm_ex(ex, F(f, 1), F(f, 2), Z(f, 3), Z(f, 4), K(f, 5), R(f, 6), R(f, 7), W(f, 8), W(f, 9));
        break;
    case K_HEAD_NORM: tfmcrt_head_norm_ex(ex, F(f, 1), Z(f, 2), Z(f, 3), Z(f, 4), K(f, 5), R(f, 6), W(f, 7)); break;
    case K_GLU: tfmcrt_glu_ex(ex, F(f, 1), F(f, 2), F(f, 3), Z(f, 4), K(f, 5)); break;
    case K_ROPE_FREQ: tfmcrt_rope_freq_ex(ex, F(f, 1), Z(f, 2), Z(f, 3), Z(f, 4), Z(f, 5), Z(f, 6), W(f, 7)); break;
    case K_ROPE: tfmcrt_rope_ex(ex, F(f, 1), Z(f, 2), Z(f, 3), Z(f, 4), Z(f, 5), R(f, 6)); break;
    case K_KV_STORE: tfmcrt_kv_store_ex(ex, F(f, 1), F(f, 2), F(f, 3), F(f, 4), Z(f, 5), Z(f, 6), Z(f, 7)); break;
    case K_SLICE: tfmcrt_slice(F(f, 0), F(f, 1), Z(f, 2), Z(f, 3), Z(f, 4), Z(f, 5)); break;
    case K_MHA_SCORES: tfmcrt_mha_scores_ex(ex, F(f, 1), F(f, 2), F(f, 3), Z(f, 4), Z(f, 5), Z(f, 6), A(f, 7)); break;
    case K_MHA_SOFTMAX: tfmcrt_mha_softmax_ex(ex, F(f, 1), F(f, 2), Z(f, 3), Z(f, 4), Z(f, 5), A(f, 6)); break;
    case K_MHA_MIX: tfmcrt_mha_mix_ex(ex, F(f, 1), F(f, 2), F(f, 3), Z(f, 4), Z(f, 5), Z(f, 6), A(f, 7)); break;
    case K_ATTEND: tfmcrt_attend_ex(ex, F(f, 1), F(f, 2), F(f, 3), F(f, 4), Z(f, 5), Z(f, 6), A(f, 7), F(f, 8)); break;
    case K_MOE:
        tfmcrt_moe_ex(ex, F(f, 1), F(f, 2), Z(f, 3), Z(f, 4), W(f, 5), X(f, 6), K(f, 7), K(f, 8), Z(f, 9), K(f, 10),
                      F(f, 11));
        break;
    case K_COUNT: break;
    }
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void ibackend_run_timed(const IBackend *ip, const int *ids, int n, int pos0, float *arena, int head_rows,
                        const TfmcrtExec *ex, double *seconds)
{
    const KProgram *k = ip->k;
    for (int i = 0; i < k->ncalls; i++) {
        Frame f = { ip, &k->calls[i], arena, ids, (size_t)n, (size_t)pos0, 0, ex };
        if (f.c->head && head_rows < n) {
            if (head_rows <= 0) continue;
            f.n = (size_t)head_rows;
            f.skip = (size_t)(n - head_rows);
        }
        if (!seconds) {
            call(&f);
            continue;
        }
        double t0 = now();
        call(&f);
        seconds[i] += now() - t0;
    }
}

void ibackend_run(const IBackend *ip, const int *ids, int n, int pos0, float *arena, int head_rows, const TfmcrtExec *ex)
{
    ibackend_run_timed(ip, ids, n, pos0, arena, head_rows, ex, NULL);
}

void ibackend_run_graph(void *cache, const Graph *g, const int *ids, int n, float *arena)
{
    IBackendCache *c = cache;
    if (c->g != g) {
        c->ip = ibackend_new(c->arena, lower_graph(c->arena, g));
        c->g = g;
    }
    ibackend_run(c->ip, ids, n, 0, arena, n, NULL);
}
