/* model_weights.c: the weights of a declared model: seeded random ones, or a .safetensors file read
 * in our naming scheme or as a Hugging Face GPT-2 / Llama checkpoint (layouts converted on
 * reading); also the one list of our tensor names that loading and --emit=weights share. */
#include <math.h>
#include <string.h>

#include "model_decl.h"

/* Seeded N(0, 0.02) weights (xorshift64* and Box-Muller); norm weights around 1. */
static double gaussian(uint64_t *s)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        u[i] = ((double)((*s * 2685821657736338717ull) >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

static void fill(float *w, size_t n, uint64_t *s, float mean, float std)
{
    if (!w) return;
    for (size_t i = 0; i < n; i++) w[i] = mean + std * (float)gaussian(s);
}

static void fill_norm(Norm *n, size_t d, uint64_t *s)
{
    fill(n->weight, d, s, 1.0f, 0.1f);
    fill(n->bias, d, s, 0.0f, 0.1f);
}

static void fill_ffn(Ffn *f, size_t d, uint64_t *s)
{
    size_t h = (size_t)f->hidden;
    fill(f->up, h * d, s, 0, 0.02f);
    fill(f->gate, h * d, s, 0, 0.02f);
    fill(f->down, d * h, s, 0, 0.02f);
    fill(f->b_up, h, s, 0, 0.02f);
    fill(f->b_gate, h, s, 0, 0.02f);
    fill(f->b_down, d, s, 0, 0.02f);
}

void decl_random_weights(Decl *D)
{
    Model *m = D->m;
    size_t d = (size_t)m->dim;
    uint64_t s = D->seed * 0x9E3779B97F4A7C15ull + 1;
    fill(m->tok_emb, (size_t)m->vocab_size * d, &s, 0, 0.02f);
    if (m->pos == POS_LEARNED) fill(m->pos_emb, (size_t)m->positions * d, &s, 0, 0.02f);
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with >= 0) continue;
        fill_norm(&b->norm, d, &s);
        fill_norm(&b->post_norm, d, &s);
        if (b->kind == BLOCK_MHA) {
            size_t q = (size_t)b->mha_heads * b->head_dim, kv = (size_t)b->kv_heads * b->head_dim;
            fill(b->wq, q * d, &s, 0, 0.02f);
            fill(b->wk, kv * d, &s, 0, 0.02f);
            fill(b->wv, kv * d, &s, 0, 0.02f);
            fill(b->wo, d * q, &s, 0, 0.02f);
            fill(b->bq, q, &s, 0, 0.02f);
            fill(b->bk, kv, &s, 0, 0.02f);
            fill(b->bv, kv, &s, 0, 0.02f);
            fill(b->bo, d, &s, 0, 0.02f);
            fill(b->q_norm.weight, (size_t)b->head_dim, &s, 1.0f, 0.1f);
            fill(b->k_norm.weight, (size_t)b->head_dim, &s, 1.0f, 0.1f);
        } else if (b->kind == BLOCK_FFN) {
            fill_ffn(&b->ffn, d, &s);
        } else {
            fill(b->router, (size_t)b->experts * d, &s, 0, 0.02f);
            for (int e = 0; e < b->experts; e++) fill_ffn(&b->expert[e], d, &s);
        }
    }
    fill_norm(&m->final_norm, d, &s);
    if (!m->tied) fill(m->unembed, (size_t)m->vocab_size * d, &s, 0, 0.02f);
}

/* ------------------------------------------------------------ naming */

/* Loading walks the declaration's tensors twice with the same code: first checking names and
 * shapes against the header (D->counting: nothing is allocated yet, nothing read, every problem
 * reported), then, when all is well and the weights are allocated, reading them. */
typedef struct Loader {
    Decl *D;
    SafeTensors *st;
    bool reading;            /* false: the header check */
    int problems;            /* errors reported */
    int missing;             /* tensors the declaration needs that the file lacks */
    const char *first_missing;
    int first_missing_diag;  /* its diagnostic, where the hint goes (-1: none) */
    float *tmp[3];           /* conversion buffers (transposes, fused tensors), the allocator's */
    size_t tmp_cap[3];
    bool mapped;             /* some weight points into the file's mapping */
} Loader;

/* Report at most this many tensor problems one by one; then one line counts the rest. */
enum { LOAD_MAX_REPORTED = 24 };

static const char *resolve(Loader *L, const char *name)
{
    if (safetensors_has(L->st, name)) return name;
    const char *prefix = L->D->scheme == SCHEME_GPT2    ? "transformer."
                         : L->D->scheme == SCHEME_LLAMA ? "model."
                         : L->D->scheme == SCHEME_NEOX  ? "gpt_neox."
                                                        : NULL;
    if (prefix) {
        const char *full = arena_printf(L->D->a, "%s%s", prefix, name);
        if (safetensors_has(L->st, full)) return full;
    }
    return name;
}

static void load_error(Loader *L, const char *msg)
{
    if (L->problems++ < LOAD_MAX_REPORTED) ERR(L->D, L->D->weights_loc, "%s: %s", L->D->weights, msg);
    else L->D->errors++;
}

/* A buffer of n floats in slot k, from the context's allocator (freed when loading ends). */
static float *tmp_buffer(Loader *L, int k, size_t n)
{
    if (L->tmp_cap[k] >= n) return L->tmp[k];
    const TfmcAllocator *al = L->D->a->alloc;
    float *t = al->realloc(al->ud, L->tmp[k], n * sizeof(float));
    if (!t) longjmp(*L->D->a->on_oom, 1); /* decl_load_weights frees the buffers on the way out */
    L->tmp[k] = t;
    L->tmp_cap[k] = n;
    return t;
}

/* The weight in *slot, allocated now when it is still only declared (decl_unallocated: weights
 * read from a file are allocated as they are read, and not at all when used in place). */
static float *own(Loader *L, float **slot, size_t n)
{
    if (*slot == decl_unallocated) *slot = arena_alloc(L->D->a, (n ? n : 1) * sizeof(float));
    return *slot;
}

/* Check (header pass) or read name [rows][cols] (cols 0: a vector) into *slot, transposed from the
 * file's [cols][rows] when asked. A tensor that needs no change (F32, aligned, not transposed) is
 * not copied: *slot then points into the file's mapping, which lives as long as the model. */
static void load(Loader *L, const char *name, float **slot, int rows, int cols, bool transposed)
{
    char err[512];
    name = resolve(L, name);
    int frows = transposed ? cols : rows, fcols = transposed ? rows : cols;
    if (!L->reading) {
        int k = safetensors_check(L->st, name, frows, fcols, err, sizeof err);
        if (k != 0) load_error(L, err);
        if (k == 1 && L->missing++ == 0) {
            L->first_missing = name;
            L->first_missing_diag = L->problems <= LOAD_MAX_REPORTED ? L->D->diags->n - 1 : -1;
        }
        return;
    }
    size_t count = (size_t)rows * (size_t)(cols ? cols : 1);
    if (!transposed) {
        const float *in_place;
        int k = safetensors_map(L->st, name, rows, cols, &in_place, err, sizeof err);
        if (k < 0) {
            load_error(L, err);
        } else if (k > 0) {
            *slot = (float *)in_place; /* the mapping is private: a write would copy the page, never touch the file */
            L->mapped = true;
        } else if (!safetensors_read(L->st, name, rows, cols, own(L, slot, count), err, sizeof err)) {
            load_error(L, err);
        }
        return;
    }
    float *t = tmp_buffer(L, 0, count);
    if (!safetensors_read(L->st, name, cols, rows, t, err, sizeof err)) {
        load_error(L, err);
        return;
    }
    float *out = own(L, slot, count);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) out[(size_t)r * cols + c] = t[(size_t)c * rows + r];
}

/* Part of a fused tensor, n floats from `from`: used in place when the fused tensor was (from is in
 * the file's mapping), else copied out of the conversion buffer. */
static void part(Loader *L, float **slot, const float *from, size_t n, bool in_place)
{
    if (in_place) *slot = (float *)from;
    else memcpy(own(L, slot, n), from, n * sizeof(float));
}

static void load_norm(Loader *L, const char *base, Norm *n)
{
    if (n->kind == NORM_NONE) return;
    int d = L->D->dim;
    load(L, arena_printf(L->D->a, "%s.weight", base), &n->weight, d, 0, false);
    if (n->bias) load(L, arena_printf(L->D->a, "%s.bias", base), &n->bias, d, 0, false);
}

static void visit_norm(Arena *a, const char *base, Norm *n, int d, TensorVisit visit, void *ud)
{
    if (n->kind == NORM_NONE) return;
    visit(ud, arena_printf(a, "%s.weight", base), &n->weight, d, 0);
    if (n->bias) visit(ud, arena_printf(a, "%s.bias", base), &n->bias, d, 0);
}

static void visit_ffn(Arena *a, const char *base, Ffn *f, int d, TensorVisit visit, void *ud)
{
    int h = f->hidden;
    visit(ud, arena_printf(a, "%s.up.weight", base), &f->up, h, d);
    if (f->gate) visit(ud, arena_printf(a, "%s.gate.weight", base), &f->gate, h, d);
    visit(ud, arena_printf(a, "%s.down.weight", base), &f->down, d, h);
    if (f->b_up) {
        visit(ud, arena_printf(a, "%s.up.bias", base), &f->b_up, h, 0);
        if (f->gate) visit(ud, arena_printf(a, "%s.gate.bias", base), &f->b_gate, h, 0);
        visit(ud, arena_printf(a, "%s.down.bias", base), &f->b_down, d, 0);
    }
}

/* Our scheme (docs/weights.md): layers.L.{attention,mlp,moe}..., embed.*, norm.*, unembed. Layers
 * are numbered over the blocks that own their weights (shared repetitions reuse theirs). */
void model_tfmc_tensors(Arena *a, Model *m, TensorVisit visit, void *ud)
{
    int d = m->dim, l = 0;
    visit(ud, "embed.token.weight", &m->tok_emb, m->vocab_size, d);
    if (m->pos == POS_LEARNED) visit(ud, "embed.position.weight", &m->pos_emb, m->positions, d);
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with >= 0) continue;
        const char *kind = b->kind == BLOCK_MHA ? "attention" : b->kind == BLOCK_FFN ? "mlp" : "moe";
        const char *base = arena_printf(a, "layers.%d.%s", l++, kind);
        visit_norm(a, arena_printf(a, "%s.norm", base), &b->norm, d, visit, ud);
        visit_norm(a, arena_printf(a, "%s.post_norm", base), &b->post_norm, d, visit, ud);
        if (b->kind == BLOCK_MHA) {
            int q = b->mha_heads * b->head_dim, kv = b->kv_heads * b->head_dim;
            visit(ud, arena_printf(a, "%s.q.weight", base), &b->wq, q, d);
            visit(ud, arena_printf(a, "%s.k.weight", base), &b->wk, kv, d);
            visit(ud, arena_printf(a, "%s.v.weight", base), &b->wv, kv, d);
            visit(ud, arena_printf(a, "%s.o.weight", base), &b->wo, d, q);
            if (b->bq) {
                visit(ud, arena_printf(a, "%s.q.bias", base), &b->bq, q, 0);
                visit(ud, arena_printf(a, "%s.k.bias", base), &b->bk, kv, 0);
                visit(ud, arena_printf(a, "%s.v.bias", base), &b->bv, kv, 0);
                if (b->bo) visit(ud, arena_printf(a, "%s.o.bias", base), &b->bo, d, 0);
            }
            if (b->q_norm.weight) {
                visit(ud, arena_printf(a, "%s.q_norm.weight", base), &b->q_norm.weight, b->head_dim, 0);
                visit(ud, arena_printf(a, "%s.k_norm.weight", base), &b->k_norm.weight, b->head_dim, 0);
            }
        } else if (b->kind == BLOCK_FFN) {
            visit_ffn(a, base, &b->ffn, d, visit, ud);
        } else {
            visit(ud, arena_printf(a, "%s.router.weight", base), &b->router, b->experts, d);
            for (int e = 0; e < b->experts; e++)
                visit_ffn(a, arena_printf(a, "%s.experts.%d", base, e), &b->expert[e], d, visit, ud);
        }
    }
    visit_norm(a, "norm", &m->final_norm, d, visit, ud);
    if (!m->tied) visit(ud, "unembed.weight", &m->unembed, m->vocab_size, d);
}

static void load_visit(void *ud, const char *name, float **slot, int rows, int cols)
{
    load((Loader *)ud, name, slot, rows, cols, false);
}

static void load_tfmc(Loader *L) { model_tfmc_tensors(L->D->a, L->D->m, load_visit, L); }

/* A position table with at least max_len rows: its first rows are used. */
static void load_positions(Loader *L, const char *name)
{
    Model *m = L->D->m;
    int rank;
    long dims[4];
    name = resolve(L, name);
    if (!safetensors_shape(L->st, name, &rank, dims)) {
        load(L, name, &m->pos_emb, m->positions, m->dim, false); /* reports it missing */
        return;
    }
    if (rank != 2 || dims[1] != m->dim || dims[0] < m->positions) {
        char msg[256];
        snprintf(msg, sizeof msg, "tensor `%s` must have shape [>= %d, %d] (max_len rows of dim)", name, m->positions, m->dim);
        char seen[8];
        safetensors_check(L->st, name, 0, 0, seen, sizeof seen); /* counts as seen: not also "unexpected" */
        load_error(L, msg);
        return;
    }
    char err[512];
    if (!L->reading) {
        safetensors_check(L->st, name, (int)dims[0], m->dim, err, sizeof err);
        return;
    }
    float *t = tmp_buffer(L, 0, (size_t)dims[0] * m->dim);
    if (!safetensors_read(L->st, name, (int)dims[0], m->dim, t, err, sizeof err)) load_error(L, err);
    else memcpy(own(L, &m->pos_emb, (size_t)m->positions * m->dim), t, sizeof(float) * (size_t)m->positions * m->dim);
}

/* The output head of a HF checkpoint (lm_head.weight, embed_out.weight), or tied to the embedding. */
static void load_head(Loader *L, const char *head)
{
    Model *m = L->D->m;
    if (!safetensors_has(L->st, head) || !m->tied) {
        if (!m->tied) load(L, head, &m->unembed, m->vocab_size, m->dim, false);
        return;
    }
    /* a tied model's checkpoint may still store the head: it must be the embedding */
    if (!L->reading) {
        load(L, head, NULL, m->vocab_size, m->dim, false);
        return;
    }
    size_t n = (size_t)m->vocab_size * m->dim;
    float *t = tmp_buffer(L, 1, n);
    int before = L->problems;
    load(L, head, &t, m->vocab_size, m->dim, false);
    if (L->problems == before && memcmp(t, m->tok_emb, n * sizeof(float)) != 0)
        load_error(L, arena_printf(L->D->a, "`%s` differs from the token embedding, but the model says `unembed tied`; "
                                            "declare `unembed separate`", head));
}

static void load_lm_head(Loader *L) { load_head(L, "lm_head.weight"); }

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* GPT-2 checkpoints store their causal masks as buffers; Llama ones the rotary frequencies. */
static bool gpt2_ignored(const char *name) { return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias"); }
static bool llama_ignored(const char *name) { return ends_with(name, "rotary_emb.inv_freq"); }
static bool neox_ignored(const char *name)
{
    return ends_with(name, ".attention.bias") || ends_with(name, ".attention.masked_bias") || llama_ignored(name);
}

/* GPT-2: h.N.{ln_1, attn.c_attn (fused QKV, Conv1D [in][out]), attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj}. */
static void load_gpt2(Loader *L)
{
    Model *m = L->D->m;
    Arena *a = L->D->a;
    int d = m->dim, layer = -1;
    load(L, "wte.weight", &m->tok_emb, m->vocab_size, d, false);
    if (m->pos == POS_LEARNED) load_positions(L, "wpe.weight");
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with >= 0) continue;
        if (b->kind == BLOCK_MHA) layer++;
        if (layer < 0) { load_error(L, "a GPT-2 block starts with `attention`"); return; }
        const char *h = arena_printf(a, "h.%d", layer);
        if (b->kind == BLOCK_MHA) {
            if (b->kv_heads != b->mha_heads || b->head_dim * b->mha_heads != d || !b->bq || !b->bo || b->q_norm.kind != NORM_NONE)
                { load_error(L, "GPT-2 attention has kv_heads = heads, head_dim = dim / heads and biases"); return; }
            load_norm(L, arena_printf(a, "%s.ln_1", h), &b->norm);
            /* the fused [d][3d] projection, split into Q, K and V */
            float *qkv = L->reading ? tmp_buffer(L, 1, (size_t)3 * d * d) : NULL;
            float *bias = L->reading ? tmp_buffer(L, 2, (size_t)3 * d) : NULL;
            int before = L->problems;
            load(L, arena_printf(a, "%s.attn.c_attn.weight", h), &qkv, 3 * d, d, true);
            load(L, arena_printf(a, "%s.attn.c_attn.bias", h), &bias, 3 * d, 0, false);
            if (L->reading && L->problems == before) {
                size_t dd = (size_t)d * d;
                part(L, &b->wq, qkv, dd, false); /* transposed: in the conversion buffer */
                part(L, &b->wk, qkv + dd, dd, false);
                part(L, &b->wv, qkv + 2 * dd, dd, false);
                bool in_place = bias != L->tmp[2];
                part(L, &b->bq, bias, (size_t)d, in_place);
                part(L, &b->bk, bias + d, (size_t)d, in_place);
                part(L, &b->bv, bias + 2 * d, (size_t)d, in_place);
            }
            load(L, arena_printf(a, "%s.attn.c_proj.weight", h), &b->wo, d, d, true);
            load(L, arena_printf(a, "%s.attn.c_proj.bias", h), &b->bo, d, 0, false);
        } else if (b->kind == BLOCK_FFN) {
            if (b->ffn.gate || !b->ffn.b_up) { load_error(L, "a GPT-2 MLP is ungated, with biases"); return; }
            load_norm(L, arena_printf(a, "%s.ln_2", h), &b->norm);
            load(L, arena_printf(a, "%s.mlp.c_fc.weight", h), &b->ffn.up, b->ffn.hidden, d, true);
            load(L, arena_printf(a, "%s.mlp.c_fc.bias", h), &b->ffn.b_up, b->ffn.hidden, 0, false);
            load(L, arena_printf(a, "%s.mlp.c_proj.weight", h), &b->ffn.down, d, b->ffn.hidden, true);
            load(L, arena_printf(a, "%s.mlp.c_proj.bias", h), &b->ffn.b_down, d, 0, false);
        } else {
            { load_error(L, "GPT-2 checkpoints have no mixture of experts"); return; }
        }
    }
    load_norm(L, "ln_f", &m->final_norm);
    load_lm_head(L);
}

/* Llama: model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
 * mlp.{gate,up,down}_proj}, model.norm, lm_head. */
static void load_llama(Loader *L)
{
    Model *m = L->D->m;
    Arena *a = L->D->a;
    int d = m->dim, layer = -1;
    load(L, "embed_tokens.weight", &m->tok_emb, m->vocab_size, d, false);
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with >= 0) continue;
        if (b->kind == BLOCK_MHA) layer++;
        if (layer < 0) { load_error(L, "a Llama block starts with `attention`"); return; }
        const char *h = arena_printf(a, "layers.%d", layer);
        if (b->kind == BLOCK_MHA) {
            int q = b->mha_heads * b->head_dim, kv = b->kv_heads * b->head_dim;
            load_norm(L, arena_printf(a, "%s.input_layernorm", h), &b->norm);
            const char *fused = resolve(L, arena_printf(a, "%s.self_attn.qkv_proj.weight", h));
            if (safetensors_has(L->st, fused)) {
                /* Phi-3: q, k and v stacked in one [q + 2 kv][dim] tensor, split here */
                float *qkv = L->reading ? tmp_buffer(L, 1, (size_t)(q + 2 * kv) * d) : NULL;
                int before = L->problems;
                load(L, fused, &qkv, q + 2 * kv, d, false);
                if (L->reading && L->problems == before) {
                    /* q, k and v are consecutive rows: in place when the fused tensor is */
                    bool in_place = qkv != L->tmp[1];
                    part(L, &b->wq, qkv, (size_t)q * d, in_place);
                    part(L, &b->wk, qkv + (size_t)q * d, (size_t)kv * d, in_place);
                    part(L, &b->wv, qkv + (size_t)(q + kv) * d, (size_t)kv * d, in_place);
                }
                if (b->bq) { load_error(L, "a fused qkv_proj has no biases in Phi-3: declare `bias false`"); return; }
            } else {
                load(L, arena_printf(a, "%s.self_attn.q_proj.weight", h), &b->wq, q, d, false);
                load(L, arena_printf(a, "%s.self_attn.k_proj.weight", h), &b->wk, kv, d, false);
                load(L, arena_printf(a, "%s.self_attn.v_proj.weight", h), &b->wv, kv, d, false);
            }
            load(L, arena_printf(a, "%s.self_attn.o_proj.weight", h), &b->wo, d, q, false);
            if (b->bq) {
                load(L, arena_printf(a, "%s.self_attn.q_proj.bias", h), &b->bq, q, 0, false);
                load(L, arena_printf(a, "%s.self_attn.k_proj.bias", h), &b->bk, kv, 0, false);
                load(L, arena_printf(a, "%s.self_attn.v_proj.bias", h), &b->bv, kv, 0, false);
                if (b->bo) load(L, arena_printf(a, "%s.self_attn.o_proj.bias", h), &b->bo, d, 0, false);
            }
            if (b->q_norm.weight) {
                load(L, arena_printf(a, "%s.self_attn.q_norm.weight", h), &b->q_norm.weight, b->head_dim, 0, false);
                load(L, arena_printf(a, "%s.self_attn.k_norm.weight", h), &b->k_norm.weight, b->head_dim, 0, false);
            }
        } else if (b->kind == BLOCK_FFN) {
            if (!b->ffn.gate) { load_error(L, "a Llama MLP is gated: use `act swiglu`"); return; }
            load_norm(L, arena_printf(a, "%s.post_attention_layernorm", h), &b->norm);
            const char *fused = resolve(L, arena_printf(a, "%s.mlp.gate_up_proj.weight", h));
            if (safetensors_has(L->st, fused)) {
                /* Phi-3: gate and up stacked in one [2 hidden][dim] tensor, the gate first */
                size_t hd = (size_t)b->ffn.hidden * d;
                float *gu = L->reading ? tmp_buffer(L, 1, 2 * hd) : NULL;
                int before = L->problems;
                load(L, fused, &gu, 2 * b->ffn.hidden, d, false);
                if (L->reading && L->problems == before) {
                    bool in_place = gu != L->tmp[1];
                    part(L, &b->ffn.gate, gu, hd, in_place);
                    part(L, &b->ffn.up, gu + hd, hd, in_place);
                }
                if (b->ffn.b_up) { load_error(L, "a fused gate_up_proj has no biases in Phi-3: declare `bias false`"); return; }
            } else {
                load(L, arena_printf(a, "%s.mlp.gate_proj.weight", h), &b->ffn.gate, b->ffn.hidden, d, false);
                load(L, arena_printf(a, "%s.mlp.up_proj.weight", h), &b->ffn.up, b->ffn.hidden, d, false);
            }
            load(L, arena_printf(a, "%s.mlp.down_proj.weight", h), &b->ffn.down, d, b->ffn.hidden, false);
            if (b->ffn.b_up) {
                load(L, arena_printf(a, "%s.mlp.gate_proj.bias", h), &b->ffn.b_gate, b->ffn.hidden, 0, false);
                load(L, arena_printf(a, "%s.mlp.up_proj.bias", h), &b->ffn.b_up, b->ffn.hidden, 0, false);
                load(L, arena_printf(a, "%s.mlp.down_proj.bias", h), &b->ffn.b_down, d, 0, false);
            }
        } else {
            { load_error(L, "Llama checkpoints have no mixture of experts"); return; }
        }
    }
    load_norm(L, "norm", &m->final_norm);
    load_lm_head(L);
}

/* GPT-NeoX (Pythia): gpt_neox.embed_in, gpt_neox.layers.N.{input_layernorm, attention.query_key_value
 * (fused, per head: q, k, v of head_dim rows each), attention.dense, post_attention_layernorm,
 * mlp.dense_h_to_4h, mlp.dense_4h_to_h}, gpt_neox.final_layer_norm, embed_out. */
static void load_neox(Loader *L)
{
    Model *m = L->D->m;
    Arena *a = L->D->a;
    int d = m->dim, layer = -1;
    load(L, "embed_in.weight", &m->tok_emb, m->vocab_size, d, false);
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with >= 0) continue;
        if (b->kind == BLOCK_MHA) layer++;
        if (layer < 0) { load_error(L, "a GPT-NeoX block starts with `attention`"); return; }
        const char *h = arena_printf(a, "layers.%d", layer);
        if (b->kind == BLOCK_MHA) {
            int hd = b->head_dim, nh = b->mha_heads, q = nh * hd;
            if (b->kv_heads != nh || b->q_norm.kind != NORM_NONE || (b->bq && !b->bo))
                { load_error(L, "GPT-NeoX attention has kv_heads = heads, biases on all four projections or none"); return; }
            load_norm(L, arena_printf(a, "%s.input_layernorm", h), &b->norm);
            /* rows h * 3 hd + t * hd + r hold row r of head h of q (t 0), k (1), v (2) */
            float *qkv = L->reading ? tmp_buffer(L, 1, (size_t)3 * q * d) : NULL;
            float *bias = L->reading && b->bq ? tmp_buffer(L, 2, (size_t)3 * q) : NULL;
            int before = L->problems;
            load(L, arena_printf(a, "%s.attention.query_key_value.weight", h), &qkv, 3 * q, d, false);
            if (b->bq) load(L, arena_printf(a, "%s.attention.query_key_value.bias", h), &bias, 3 * q, 0, false);
            if (L->reading && L->problems == before) {
                float *w[3] = { own(L, &b->wq, (size_t)q * d), own(L, &b->wk, (size_t)q * d), own(L, &b->wv, (size_t)q * d) };
                float *bs[3] = { NULL, NULL, NULL };
                if (bias) {
                    bs[0] = own(L, &b->bq, (size_t)q);
                    bs[1] = own(L, &b->bk, (size_t)q);
                    bs[2] = own(L, &b->bv, (size_t)q);
                }
                for (int head = 0; head < nh; head++)
                    for (int t = 0; t < 3; t++) {
                        size_t from = (size_t)(head * 3 + t) * hd, to = (size_t)head * hd;
                        memcpy(w[t] + to * d, qkv + from * d, sizeof(float) * (size_t)hd * d);
                        if (bias) memcpy(bs[t] + to, bias + from, sizeof(float) * (size_t)hd);
                    }
            }
            load(L, arena_printf(a, "%s.attention.dense.weight", h), &b->wo, d, q, false);
            if (b->bo) load(L, arena_printf(a, "%s.attention.dense.bias", h), &b->bo, d, 0, false);
        } else if (b->kind == BLOCK_FFN) {
            if (b->ffn.gate) { load_error(L, "a GPT-NeoX MLP is ungated"); return; }
            load_norm(L, arena_printf(a, "%s.post_attention_layernorm", h), &b->norm);
            load(L, arena_printf(a, "%s.mlp.dense_h_to_4h.weight", h), &b->ffn.up, b->ffn.hidden, d, false);
            load(L, arena_printf(a, "%s.mlp.dense_4h_to_h.weight", h), &b->ffn.down, d, b->ffn.hidden, false);
            if (b->ffn.b_up) {
                load(L, arena_printf(a, "%s.mlp.dense_h_to_4h.bias", h), &b->ffn.b_up, b->ffn.hidden, 0, false);
                load(L, arena_printf(a, "%s.mlp.dense_4h_to_h.bias", h), &b->ffn.b_down, d, 0, false);
            }
        } else {
            { load_error(L, "GPT-NeoX checkpoints have no mixture of experts"); return; }
        }
    }
    load_norm(L, "final_layer_norm", &m->final_norm);
    load_head(L, "embed_out.weight");
}

/* Which scheme a file's names follow, from names only that scheme has; -1 when none fits. */
static int file_scheme(const SafeTensors *st)
{
    static const char *const marks[][2] = { { "wte.weight", ".attn.c_attn.weight" },
                                            { "embed_tokens.weight", ".self_attn.q_proj.weight" },
                                            { "embed.token.weight", ".attention.q.weight" },
                                            { "embed_in.weight", ".attention.query_key_value.weight" } };
    static const Scheme schemes[] = { SCHEME_GPT2, SCHEME_LLAMA, SCHEME_TFMC, SCHEME_NEOX };
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < safetensors_count(st); i++)
            for (int j = 0; j < 2; j++)
                if (ends_with(safetensors_name(st, i), marks[k][j])) return (int)schemes[k];
    return -1;
}

/* After the header check found missing tensors: a note when the file's names are another
 * scheme's, or carry a prefix this scheme does not strip. */
static void missing_hint(Loader *L)
{
    static const char *const names[] = { "tfmc", "gpt2", "llama", "gpt_neox" };
    Decl *D = L->D;
    int k = file_scheme(L->st);
    if (k >= 0 && k != (int)D->scheme) {
        diag_hint_at(D->diags, L->first_missing_diag,
                     "the file's tensor names are those of the %s scheme: write `weights \"%s\" as %s;`", names[k],
                     D->weights, names[k]);
        return;
    }
    size_t n = strlen(L->first_missing);
    for (int i = 0; i < safetensors_count(L->st); i++) {
        const char *have = safetensors_name(L->st, i);
        size_t h = strlen(have);
        if (h > n && have[h - n - 1] == '.' && !strcmp(have + h - n, L->first_missing)) {
            diag_hint_at(D->diags, L->first_missing_diag,
                         "the file names it `%s`: its names carry the prefix `%.*s`, which the %s scheme %s",
                      have, (int)(h - n), have, names[D->scheme],
                      D->scheme == SCHEME_GPT2 ? "does not strip (it strips `transformer.`)"
                      : D->scheme == SCHEME_LLAMA ? "does not strip (it strips `model.`)"
                      : D->scheme == SCHEME_NEOX ? "does not strip (it strips `gpt_neox.`)" : "does not expect");
            return;
        }
    }
}

static void walk(Loader *L)
{
    if (L->D->scheme == SCHEME_GPT2) load_gpt2(L);
    else if (L->D->scheme == SCHEME_LLAMA) load_llama(L);
    else if (L->D->scheme == SCHEME_NEOX) load_neox(L);
    else load_tfmc(L);
}

/* The header check: every tensor of the declaration, then every tensor of the file it has no
 * place for. */
static void check_header(Loader *L)
{
    Decl *D = L->D;
    walk(L);
    if (L->missing) missing_hint(L);
    bool (*ignored)(const char *) = D->scheme == SCHEME_GPT2    ? gpt2_ignored
                                    : D->scheme == SCHEME_LLAMA ? llama_ignored
                                    : D->scheme == SCHEME_NEOX  ? neox_ignored
                                                                : NULL;
    for (int i = 0; i < safetensors_count(L->st); i++) {
        const char *name = safetensors_name(L->st, i);
        if (safetensors_used(L->st, i) || (ignored && ignored(name))) continue;
        char msg[512];
        snprintf(msg, sizeof msg, "unexpected tensor `%s`: the declaration has no place for it", name);
        load_error(L, msg);
    }
    if (L->problems > LOAD_MAX_REPORTED)
        ERR(D, D->weights_loc, "%s: %d more problems with its tensors (%d in all, %d of them missing tensors)",
            D->weights, L->problems - LOAD_MAX_REPORTED, L->problems, L->missing);
}

static void free_buffers(Loader *L)
{
    const TfmcAllocator *al = L->D->a->alloc;
    for (int k = 0; k < 3; k++) al->realloc(al->ud, L->tmp[k], 0);
}

/* The open weight file, closed when the model's arena is freed (weights used in place point into
 * it) or at once when no weight does. */
typedef struct OpenFile {
    SafeTensors *st;
} OpenFile;

static void close_file(void *ud)
{
    OpenFile *f = ud;
    safetensors_close(f->st);
    f->st = NULL;
}

/* The header check or the reading, under a recovery point that closes the file and frees the
 * buffers when an allocation fails. */
static void load_guarded(Loader *L, OpenFile *file)
{
    Arena *a = L->D->a;
    jmp_buf here, *outer = a->on_oom;
    a->on_oom = &here;
    if (setjmp(here)) {
        a->on_oom = outer;
        free_buffers(L);
        close_file(file);
        longjmp(*outer, 1);
    }
    if (L->reading) walk(L);
    else check_header(L);
    a->on_oom = outer;
}

/* After reading: the repetitions of a shared block take their owner's weights again (they were
 * read or mapped only now), a tied head is the embedding, and no weight is left unread. */
static void settle(Loader *L)
{
    Model *m = L->D->m;
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with < 0) continue;
        int owner = b->shared_with;
        *b = m->blocks[owner];
        b->shared_with = owner;
    }
    if (m->tied) m->unembed = m->tok_emb;
}

static void unread(void *ud, const char *name, float **slot, int rows, int cols)
{
    (void)rows, (void)cols;
    Loader *L = ud;
    if (*slot == decl_unallocated) load_error(L, arena_printf(L->D->a, "internal: tensor `%s` was not read", name));
}

bool decl_load_weights(Decl *D)
{
    char err[512];
    const char *path = D->weights;
    char full[4096];
    if (path[0] != '/' && D->file && D->file->path) {
        /* relative to the folder of the .tfm file */
        const char *slash = strrchr(D->file->path, '/');
        if (slash) {
            snprintf(full, sizeof full, "%.*s/%s", (int)(slash - D->file->path), D->file->path, path);
            path = full;
        }
    }
    /* the cleanup first, so that an allocation failing after the file is open still closes it */
    OpenFile *file = ARENA_NEW(D->a, OpenFile);
    arena_on_free(D->a, close_file, file);
    bool nomem;
    file->st = safetensors_open(path, D->a->alloc, &nomem, err, sizeof err);
    if (nomem) longjmp(*D->a->on_oom, 1);
    if (!file->st) {
        ERR(D, D->weights_loc, "%s: %s", D->weights, err);
        return false;
    }
    Loader L = { 0 };
    L.D = D;
    L.st = file->st;
    L.reading = !D->counting;
    load_guarded(&L, file);
    free_buffers(&L);
    if (L.reading && L.problems == 0) {
        settle(&L);
        model_tfmc_tensors(D->a, D->m, unread, &L);
    }
    if (!L.mapped || L.problems) close_file(file);
    return L.problems == 0;
}
