/* model_decl.c: model declarations (spec section 2) into the model IR: check every statement and
 * option, expand `block [shared] x N`, then fill the weights from a .safetensors file (our naming
 * scheme, or Hugging Face GPT-2 / Llama checkpoints unchanged) or from a seeded generator. */
#include <math.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "model_decl.h"


/* ------------------------------------------------------------ options */

static const char *opt_name(const MOpt *o) { return o->atoms[0].kind == MA_NAME ? o->atoms[0].str : NULL; }

static const MAtom *opt_value(Decl *D, const char *stmt, const MOpt *o)
{
    if (o->natoms < 2) {
        ERR(D, o->loc, "`%s`: option `%s` needs a value", stmt, opt_name(o));
        return NULL;
    }
    if (o->natoms > 2) {
        ERR(D, o->atoms[2].loc, "`%s`: option `%s` takes one value", stmt, opt_name(o));
        return NULL;
    }
    return &o->atoms[1];
}

/* After an error on an enumerated value (a norm, an act, a scheme...): "did you mean" the known one
 * it is a misspelling of, when the value is a name (or a call's name) close to one. */
static void suggest_value(Decl *D, const MAtom *v, const char *const *known, int n)
{
    if (!v || (v->kind != MA_NAME && v->kind != MA_CALL)) return;
    const char *sug = diag_suggest(v->str, known, n);
    if (sug) diag_hint(D->diags, "did you mean `%s`?", sug);
}

/* Sizes, counts and seeds end up in ints and in products of them: nothing declared may pass this. */
#define DECL_INT_MAX (1L << 30)

static bool atom_int(Decl *D, const char *stmt, const char *opt, const MAtom *v, long lo, long *out)
{
    if (!v) return false;
    if (v->kind != MA_INT || v->ival < lo) {
        ERR(D, v->loc, "`%s`: `%s` takes an integer from %ld to %ld", stmt, opt, lo, DECL_INT_MAX);
        return false;
    }
    if (v->ival > DECL_INT_MAX) {
        ERR(D, v->loc, "`%s`: `%s` is %lld, more than the limit of %ld", stmt, opt, (long long)v->ival, DECL_INT_MAX);
        return false;
    }
    *out = (long)v->ival;
    return true;
}

static bool atom_number(Decl *D, const char *stmt, const char *opt, const MAtom *v, double *out)
{
    if (!v) return false;
    if (v->kind != MA_INT && v->kind != MA_FLOAT) {
        ERR(D, v->loc, "`%s`: `%s` takes a number", stmt, opt);
        return false;
    }
    *out = v->fval;
    return true;
}

static bool atom_bool(Decl *D, const char *stmt, const char *opt, const MAtom *v, bool *out)
{
    if (!v) return false;
    if (v->kind != MA_BOOL) {
        static const char *const bools[] = { "true", "false" };
        ERR(D, v->loc, "`%s`: `%s` takes true or false", stmt, opt);
        suggest_value(D, v, bools, 2);
        return false;
    }
    *out = v->ival != 0;
    return true;
}

static void unknown_option(Decl *D, const char *stmt, const MOpt *o, const char *const *known, int n)
{
    const char *name = opt_name(o);
    if (!name) {
        ERR(D, o->loc, "`%s`: an option starts with its name", stmt);
        return;
    }
    ERR(D, o->loc, "`%s` has no option `%s`", stmt, name);
    const char *sug = diag_suggest(name, known, n);
    if (sug) diag_hint(D->diags, "did you mean `%s`?", sug);
}

/* NORM: layernorm(eps E) | rmsnorm(eps E) | dyt(alpha A) | none. */
static bool parse_norm(Decl *D, const char *stmt, const MAtom *v, Norm *n)
{
    if (!v) return false;
    memset(n, 0, sizeof *n);
    const char *kind = v->str;
    if (v->kind != MA_NAME && v->kind != MA_CALL) kind = NULL;
    if (kind && !strcmp(kind, "none") && v->kind == MA_NAME) return true;
    if (!kind || (strcmp(kind, "layernorm") && strcmp(kind, "rmsnorm") && strcmp(kind, "dyt"))) {
        static const char *const norms[] = { "layernorm", "rmsnorm", "dyt", "none" };
        ERR(D, v->loc, "`%s`: a norm is layernorm(eps E), rmsnorm(eps E), dyt(alpha A) or none", stmt);
        suggest_value(D, v, norms, 4);
        return false;
    }
    n->kind = !strcmp(kind, "layernorm") ? NORM_LAYERNORM : !strcmp(kind, "rmsnorm") ? NORM_RMSNORM : NORM_DYT;
    n->eps = 1e-5f;
    n->alpha = 0.5f;
    for (const MOpt *o = v->kind == MA_CALL ? v->args : NULL; o; o = o->next) {
        const char *name = opt_name(o);
        const char *want = n->kind == NORM_DYT ? "alpha" : "eps";
        double x;
        if (name && !strcmp(name, "offset") && n->kind != NORM_DYT) {
            /* the scale applied is offset + w (Gemma: 1) */
            if (!atom_number(D, kind, "offset", opt_value(D, kind, o), &x)) return false;
            n->offset = (float)x;
            continue;
        }
        if (!name || strcmp(name, want)) {
            ERR(D, o->loc, "`%s` takes `%s`%s, not `%s`", kind, want, n->kind == NORM_DYT ? "" : " and `offset`",
                name ? name : "?");
            return false;
        }
        if (!atom_number(D, kind, want, opt_value(D, kind, o), &x)) return false;
        if (n->kind == NORM_DYT) n->alpha = (float)x;
        else if (x <= 0) {
            ERR(D, o->loc, "`%s`: eps must be positive", kind);
            return false;
        } else n->eps = (float)x;
    }
    return true;
}

static bool parse_act(Decl *D, const MAtom *v, Activation *act)
{
    static const char *const names[] = { "relu", "gelu", "gelu_tanh", "silu", "swiglu", "geglu", "geglu_tanh" };
    static const Activation acts[] = { ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SILU, ACT_SWIGLU, ACT_GEGLU, ACT_GEGLU_TANH };
    if (!v) return false;
    if (v->kind == MA_NAME)
        for (int i = 0; i < 7; i++)
            if (!strcmp(v->str, names[i])) {
                *act = acts[i];
                return true;
            }
    ERR(D, v->loc, "`act` is relu, gelu, gelu_tanh, silu, swiglu, geglu or geglu_tanh");
    suggest_value(D, v, names, 7);
    return false;
}

/* A layer statement inside a block: attention, mlp or moe, into a block template. */
static bool parse_layer(Decl *D, const MStmt *st, ModelBlock *b)
{
    memset(b, 0, sizeof *b);
    b->shared_with = -1;
    bool bias = true;
    int before = D->errors;
    bool is_attn = !strcmp(st->name, "attention"), is_moe = !strcmp(st->name, "moe");
    if (!is_attn && !is_moe && strcmp(st->name, "mlp")) {
        static const char *const known[] = { "attention", "mlp", "moe" };
        ERR(D, st->name_loc, "a block holds `attention`, `mlp` and `moe` statements, not `%s`", st->name);
        const char *sug = diag_suggest(st->name, known, 3);
        if (sug) diag_hint(D->diags, "did you mean `%s`?", sug);
        return false;
    }
    long heads = 0, kv = 0, hd = 0, window = 0, hidden = 0, experts = 0, top = 0;
    SrcLoc heads_loc = st->name_loc, kv_loc = st->name_loc;
    b->act = ACT_GELU;
    b->score = SCORE_SOFTMAX;
    for (const MOpt *o = st->opts; o; o = o->next) {
        const char *n = opt_name(o);
        if (is_attn) {
            static const char *const known[] = { "heads", "kv_heads", "head_dim", "causal", "window", "score", "norm",
                                                 "post_norm", "bias", "parallel", "qk_norm" };
            if (n && !strcmp(n, "heads")) { heads_loc = o->loc; atom_int(D, "attention", n, opt_value(D, "attention", o), 1, &heads); }
            else if (n && !strcmp(n, "kv_heads")) { kv_loc = o->loc; atom_int(D, "attention", n, opt_value(D, "attention", o), 1, &kv); }
            else if (n && !strcmp(n, "head_dim")) atom_int(D, "attention", n, opt_value(D, "attention", o), 1, &hd);
            else if (n && !strcmp(n, "window")) { if (atom_int(D, "attention", n, opt_value(D, "attention", o), 1, &window)) b->causal = true; }
            else if (n && !strcmp(n, "causal") && o->natoms == 1) b->causal = true;
            else if (n && !strcmp(n, "parallel") && o->natoms == 1) b->parallel = true;
            else if (n && !strcmp(n, "bias")) {
                const MAtom *v = opt_value(D, "attention", o);
                /* `bias qkv`: q, k and v have biases, the output projection none (Qwen 2) */
                if (v && v->kind == MA_NAME && !strcmp(v->str, "qkv")) bias = true, b->no_output_bias = true;
                else if (v && v->kind != MA_BOOL) {
                    static const char *const biases[] = { "true", "false", "qkv" };
                    ERR(D, v->loc, "`attention`: `bias` takes true, false or qkv");
                    suggest_value(D, v, biases, 3);
                }
                else atom_bool(D, "attention", n, v, &bias);
            }
            else if (n && !strcmp(n, "norm")) parse_norm(D, "attention", opt_value(D, "attention", o), &b->norm);
            else if (n && !strcmp(n, "post_norm")) parse_norm(D, "attention", opt_value(D, "attention", o), &b->post_norm);
            else if (n && !strcmp(n, "qk_norm")) {
                /* each head of q and of k normalised before the rotary positions (Qwen 3) */
                const MAtom *v = opt_value(D, "attention", o);
                if (parse_norm(D, "attention", v, &b->q_norm) && b->q_norm.kind != NORM_RMSNORM && b->q_norm.kind != NORM_NONE) {
                    ERR(D, v->loc, "`qk_norm` is an rmsnorm (the per-head norm of Qwen 3)");
                    b->q_norm.kind = NORM_NONE;
                }
                b->k_norm = b->q_norm;
            }
            else if (n && !strcmp(n, "score")) {
                const MAtom *v = opt_value(D, "attention", o);
                static const char *const scores[] = { "softmax", "softmax1", "linear", "hard" };
                int k = -1;
                for (int i = 0; v && v->kind == MA_NAME && i < 4; i++)
                    if (!strcmp(v->str, scores[i])) k = i;
                if (v && k < 0) {
                    ERR(D, v->loc, "`score` is softmax, softmax1, linear or hard");
                    suggest_value(D, v, scores, 4);
                }
                if (k >= 0) b->score = (ScoreKind)k;
            } else if ((n && !strcmp(n, "causal")) || (n && !strcmp(n, "parallel"))) {
                ERR(D, o->loc, "`attention`: `%s` takes no value", n);
            } else unknown_option(D, "attention", o, known, 11);
        } else {
            static const char *const known[] = { "hidden", "act", "norm", "post_norm", "bias", "experts", "top" };
            int nk = is_moe ? 7 : 5;
            if (n && !strcmp(n, "hidden")) atom_int(D, st->name, n, opt_value(D, st->name, o), 1, &hidden);
            else if (n && !strcmp(n, "act")) parse_act(D, opt_value(D, st->name, o), &b->act);
            else if (n && !strcmp(n, "norm")) parse_norm(D, st->name, opt_value(D, st->name, o), &b->norm);
            else if (n && !strcmp(n, "post_norm")) parse_norm(D, st->name, opt_value(D, st->name, o), &b->post_norm);
            else if (n && !strcmp(n, "bias")) atom_bool(D, st->name, n, opt_value(D, st->name, o), &bias);
            else if (is_moe && n && !strcmp(n, "experts")) atom_int(D, "moe", n, opt_value(D, "moe", o), 1, &experts);
            else if (is_moe && n && !strcmp(n, "top")) atom_int(D, "moe", n, opt_value(D, "moe", o), 1, &top);
            else unknown_option(D, st->name, o, known, nk);
        }
    }
    if (D->errors != before) return false;
    if (is_attn) {
        b->kind = BLOCK_MHA;
        if (heads == 0) {
            ERR(D, st->name_loc, "`attention` needs `heads N`");
            return false;
        }
        if (kv == 0) kv = heads;
        if (heads % kv) {
            ERR(D, kv_loc, "`kv_heads %ld` must divide `heads %ld`", kv, heads);
            return false;
        }
        if (hd == 0) {
            if (D->dim % heads) {
                ERR(D, heads_loc, "`heads %ld` does not divide `dim %d`", heads, D->dim);
                diag_hint(D->diags, "give the head size with `head_dim N`");
                return false;
            }
            hd = D->dim / heads;
        }
        if (D->m->pos == POS_ROPE && hd % 2) {
            ERR(D, st->name_loc, "rope needs an even head_dim, and it is %ld", hd);
            return false;
        }
        if (D->m->pos == POS_ROPE && D->m->rope_dims > hd) {
            ERR(D, st->name_loc, "rope(dims %d) rotates more dimensions than a head has (head_dim %ld)", D->m->rope_dims, hd);
            return false;
        }
        if (heads * hd > DECL_INT_MAX) {
            /* sizes are ints in the IR; their products are taken in size_t, but one head row may not pass this */
            ERR(D, heads_loc, "`heads %ld` of `head_dim %ld` is %ld query dimensions, more than tfmc takes (%ld)", heads,
                hd, heads * hd, DECL_INT_MAX);
            return false;
        }
        b->mha_heads = (int)heads;
        b->kv_heads = (int)kv;
        b->head_dim = (int)hd;
        b->window = (int)window;
        b->scale = 1.0f / sqrtf((float)hd);
    } else {
        b->kind = is_moe ? BLOCK_MOE : BLOCK_FFN;
        b->ffn.hidden = (int)(hidden ? hidden : 4L * D->dim);
        b->ffn.act = b->act;
        if (is_moe) {
            if (!experts || !top) {
                ERR(D, st->name_loc, "`moe` needs `experts N` and `top K`");
                return false;
            }
            if (top > experts) {
                ERR(D, st->name_loc, "`top %ld` is more than `experts %ld`", top, experts);
                return false;
            }
            if (experts > 256 || top > 64) {
                ERR(D, st->name_loc, "`moe` takes at most 256 experts and top 64");
                return false;
            }
            b->experts = (int)experts;
            b->top = (int)top;
        }
    }
    b->bias = bias;
    return true;
}

/* ------------------------------------------------------------ weights */

float decl_unallocated[1];

/* A weight of n floats: counted, and allocated once the declaration's memory is known to fit. */
static float *alloc_f(Decl *D, size_t n)
{
    D->weight_bytes += (double)n * sizeof(float);
    if (D->counting || D->from_file) return decl_unallocated;
    return ARENA_ARRAY(D->a, float, n ? n : 1);
}

static void alloc_norm(Decl *D, Norm *n)
{
    if (n->kind == NORM_NONE) return;
    n->weight = alloc_f(D, (size_t)D->dim);
    if (n->kind != NORM_RMSNORM) n->bias = alloc_f(D, (size_t)D->dim);
}

static void alloc_ffn(Decl *D, Ffn *f, bool bias)
{
    size_t d = (size_t)D->dim, h = (size_t)f->hidden;
    bool gated = act_gated(f->act);
    f->up = alloc_f(D, h * d);
    f->down = alloc_f(D, d * h);
    if (gated) f->gate = alloc_f(D, h * d);
    if (bias) {
        f->b_up = alloc_f(D, h);
        f->b_down = alloc_f(D, d);
        if (gated) f->b_gate = alloc_f(D, h);
    }
}

static void alloc_block(Decl *D, ModelBlock *b)
{
    size_t d = (size_t)D->dim;
    bool bias = b->bias;
    alloc_norm(D, &b->norm);
    alloc_norm(D, &b->post_norm);
    if (b->kind == BLOCK_MHA) {
        size_t q = (size_t)b->mha_heads * b->head_dim, kv = (size_t)b->kv_heads * b->head_dim;
        b->wq = alloc_f(D, q * d);
        b->wk = alloc_f(D, kv * d);
        b->wv = alloc_f(D, kv * d);
        b->wo = alloc_f(D, d * q);
        if (bias) {
            b->bq = alloc_f(D, q);
            b->bk = alloc_f(D, kv);
            b->bv = alloc_f(D, kv);
            if (!b->no_output_bias) b->bo = alloc_f(D, d);
        }
        if (b->q_norm.kind != NORM_NONE) {
            b->q_norm.weight = alloc_f(D, (size_t)b->head_dim);
            b->k_norm.weight = alloc_f(D, (size_t)b->head_dim);
        }
    } else if (b->kind == BLOCK_FFN) {
        alloc_ffn(D, &b->ffn, bias);
    } else {
        b->router = alloc_f(D, (size_t)b->experts * d);
        b->expert = ARENA_ARRAY(D->a, Ffn, b->experts);
        for (int e = 0; e < b->experts; e++) {
            b->expert[e] = b->ffn;
            alloc_ffn(D, &b->expert[e], bias);
        }
    }
}

/* ---------------------------------------------------------- rotary scaling */

/* `scaling llama3(factor F, low_freq_factor L, high_freq_factor H, original_max_len M)`: Llama 3.1's
 * rope_scaling (Hugging Face's rope_type "llama3"). */
static void rope_scaling(Decl *D, const MAtom *v, Model *m)
{
    if (!v) return;
    if (v->kind != MA_CALL || strcmp(v->str, "llama3")) {
        ERR(D, v->loc, "`scaling` is llama3(factor F, low_freq_factor L, high_freq_factor H, original_max_len M)");
        return;
    }
    double f = 0, lo = 0, hi = 0, orig = 0;
    bool have[4] = { false, false, false, false };
    for (const MOpt *o = v->args; o; o = o->next) {
        static const char *const names[] = { "factor", "low_freq_factor", "high_freq_factor", "original_max_len" };
        double *dst[] = { &f, &lo, &hi, &orig };
        const char *n = opt_name(o);
        int k = -1;
        for (int i = 0; i < 4 && n; i++)
            if (!strcmp(n, names[i])) k = i;
        if (k < 0) {
            unknown_option(D, "llama3", o, names, 4);
            continue;
        }
        have[k] = atom_number(D, "llama3", names[k], opt_value(D, "llama3", o), dst[k]);
    }
    if (!have[0] || !have[1] || !have[2] || !have[3]) {
        ERR(D, v->loc, "llama3(...) needs factor, low_freq_factor, high_freq_factor and original_max_len");
        return;
    }
    if (!(f >= 1) || !(lo > 0) || !(hi > lo) || !(orig >= 1)) {
        ERR(D, v->loc, "llama3(...) needs factor >= 1, 0 < low_freq_factor < high_freq_factor and original_max_len >= 1");
        return;
    }
    m->rope_factor = (float)f;
    m->rope_low = (float)lo;
    m->rope_high = (float)hi;
    m->rope_original = (float)orig;
}

/* The frequency of each pair of `rot` rotating dimensions, base^(-2j/rot) as float (as
 * transformers computes its inv_freq), under Llama 3's scaling when declared: long wavelengths
 * slowed by the factor, short ones kept, those between blended (_compute_llama3_parameters). */
static const float *rope_frequencies(Arena *a, const Model *m, float base, int rot)
{
    float *freq = ARENA_ARRAY(a, float, rot / 2 > 0 ? rot / 2 : 1);
    double lo_wave = m->rope_original / m->rope_low, hi_wave = m->rope_original / m->rope_high;
    for (int j = 0; j < rot / 2; j++) {
        double inv = (double)(float)pow((double)base, -2.0 * j / rot);
        double wave = 2 * 3.14159265358979323846 / inv, out;
        if (!(m->rope_factor > 0) || wave < hi_wave) out = inv;
        else if (wave > lo_wave) out = inv / m->rope_factor;
        else {
            double smooth = (m->rope_original / wave - m->rope_low) / (m->rope_high - m->rope_low);
            out = (1 - smooth) * inv / m->rope_factor + smooth * inv;
        }
        freq[j] = (float)out;
    }
    return freq;
}

/* offset + w for every norm declared with an offset, once its weights are in (shared blocks point
 * at their owner's norms, so they share the result too). */
static void apply_norm_offset(Arena *a, Norm *n, int d)
{
    if (n->kind == NORM_NONE || n->offset == 0 || !n->weight || n->applied) return;
    n->applied = ARENA_ARRAY(a, float, (size_t)d);
    for (int i = 0; i < d; i++) n->applied[i] = n->offset + n->weight[i];
}

static void apply_norm_offsets(Arena *a, Model *m)
{
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with >= 0) continue;
        apply_norm_offset(a, &b->norm, m->dim);
        apply_norm_offset(a, &b->post_norm, m->dim);
        apply_norm_offset(a, &b->q_norm, b->head_dim);
        apply_norm_offset(a, &b->k_norm, b->head_dim);
    }
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with < 0) continue;
        const ModelBlock *o = &m->blocks[b->shared_with];
        b->norm.applied = o->norm.applied;
        b->post_norm.applied = o->post_norm.applied;
        b->q_norm.applied = o->q_norm.applied;
        b->k_norm.applied = o->k_norm.applied;
    }
    apply_norm_offset(a, &m->final_norm, m->dim);
}

/* ---------------------------------------------------------- statements */

static void add_blocks(Decl *D, const MStmt *st)
{
    /* block [shared] x N { ... } */
    const MOpt *o = st->opts;
    bool shared = false;
    long count = 0;
    int at = 0;
    if (o && o->natoms >= 1 && o->atoms[0].kind == MA_NAME && !strcmp(o->atoms[0].str, "shared")) {
        shared = true;
        at = 1;
    }
    if (!o || o->next || o->natoms != at + 2 || o->atoms[at].kind != MA_NAME || strcmp(o->atoms[at].str, "x") ||
        o->atoms[at + 1].kind != MA_INT || o->atoms[at + 1].ival < 1) {
        static const char *const words[] = { "shared" };
        ERR(D, st->loc, "a block is written `block x N { ... }` or `block shared x N { ... }` with N >= 1");
        if (o && o->natoms == 3 && !shared) suggest_value(D, &o->atoms[0], words, 1);
        return;
    }
    count = (long)o->atoms[at + 1].ival;
    if (count > 4096) {
        ERR(D, o->atoms[at + 1].loc, "%ld blocks is more than the limit of 4096", count);
        return;
    }
    ModelBlock tmpl[64];
    int nt = 0;
    for (const MStmt *l = st->body; l; l = l->next) {
        if (l->is_block) {
            ERR(D, l->loc, "blocks do not nest");
            continue;
        }
        if (nt >= 64) {
            ERR(D, l->loc, "a block holds at most 64 layers");
            break;
        }
        if (parse_layer(D, l, &tmpl[nt])) nt++;
    }
    if (nt == 0) {
        if (!st->body) ERR(D, st->loc, "the block is empty");
        return;
    }
    for (int i = 0; i < nt; i++)
        if (tmpl[i].parallel && (i + 1 >= nt || tmpl[i + 1].kind == BLOCK_MHA)) {
            ERR(D, st->loc, "a `parallel` attention must be followed by an `mlp` or `moe` in its block");
            return;
        }
    Model *m = D->m;
    int first = m->nblocks;
    for (long r = 0; r < count; r++)
        for (int i = 0; i < nt; i++) {
            ModelBlock b = tmpl[i];
            if (shared && r > 0) { /* the first repetition's weights, applied again */
                b = m->blocks[first + i];
                b.shared_with = first + i;
            } else {
                alloc_block(D, &b);
            }
            VEC_PUSH(D->a, m->blocks, m->nblocks, m->cap_blocks, b);
        }
}

/* The limit on vocab, max_len and dim, each. */
#define DECL_SIZE_MAX (1L << 24)

/* `vocab N;`, `max_len N;`, `dim N;`. On an error *out is left as it was: the caller, knowing the
 * statement was there, must not also say that it is missing. */
static bool int_statement(Decl *D, const MStmt *st, long lo, int *out, SrcLoc *loc)
{
    if (!st->opts || st->opts->next || st->opts->natoms != 1 || st->opts->atoms[0].kind != MA_INT ||
        st->opts->atoms[0].ival < lo) {
        bool one = st->opts && !st->opts->next && st->opts->natoms == 1; /* the caret under the value */
        ERR(D, one ? st->opts->atoms[0].loc : st->loc, "`%s` takes an integer from %ld to %ld", st->name, lo,
            DECL_SIZE_MAX);
        return false;
    }
    if (st->opts->atoms[0].ival > DECL_SIZE_MAX) {
        ERR(D, st->opts->atoms[0].loc, "`%s %lld` is larger than the limit of %ld", st->name,
            (long long)st->opts->atoms[0].ival, DECL_SIZE_MAX);
        return false;
    }
    *out = (int)st->opts->atoms[0].ival;
    if (loc) *loc = st->loc;
    return true;
}

/* The embeddings, the output head and the final norm (counted or allocated, as blocks are). */
static void alloc_embeddings(Decl *D)
{
    Model *m = D->m;
    size_t d = (size_t)m->dim;
    m->tok_emb = alloc_f(D, (size_t)m->vocab_size * d);
    /* rotary, ALiBi and position-free models have no table */
    m->pos_emb = m->pos == POS_LEARNED || m->pos == POS_SINUSOIDAL ? alloc_f(D, (size_t)m->positions * d) : NULL;
    if (m->pos == POS_SINUSOIDAL && D->from_file) m->pos_emb = ARENA_ARRAY(D->a, float, (size_t)m->positions * d); /* computed, never read */
    m->unembed = D->tied ? m->tok_emb : alloc_f(D, (size_t)m->vocab_size * d);
    alloc_norm(D, &m->final_norm);
}

/* Allocate every weight that was only counted: blocks that own theirs, then the repetitions of a
 * shared block take their owner's again. */
static void realise_weights(Decl *D)
{
    Model *m = D->m;
    D->counting = false;
    D->from_file = D->weights != NULL && !D->has_init;
    D->weight_bytes = 0;
    for (int i = 0; i < m->nblocks; i++) {
        ModelBlock *b = &m->blocks[i];
        if (b->shared_with < 0) {
            alloc_block(D, b);
            continue;
        }
        int owner = b->shared_with;
        *b = m->blocks[owner];
        b->shared_with = owner;
    }
    alloc_embeddings(D);
}

/* Sizes as people read them: 1.5 GiB, 12.0 MiB, 800 bytes. */
static const char *human_bytes(char *buf, size_t cap, double bytes)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    if (bytes < 1024) {
        snprintf(buf, cap, "%.0f bytes", bytes);
        return buf;
    }
    int u = -1;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", bytes, units[u]);
    return buf;
}

/* The memory a declared model takes is known from its declaration: its weights exactly, its KV
 * caches exactly (every attention block caches max_len keys and values), and at least the
 * logits of max_len positions and their input in the arena (the passes decide
 * the rest; lib/compile.c checks the exact arena once it is planned). More than the limit is an
 * error here, before anything is allocated. */
static void check_memory(Decl *D)
{
    const Model *m = D->m;
    double n = m->positions, kv = 0;
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        if (b->kind == BLOCK_MHA) kv += 2.0 * n * b->kv_heads * b->head_dim * sizeof(float);
    }
    double activations = n * ((double)m->dim + m->vocab_size) * sizeof(float); /* the logits and their input */
    double total = D->weight_bytes + kv + activations;
    size_t limit = model_memory_limit(D->max_memory);
    if (total <= (double)limit) return;
    char w[32], k[32], a[32], t[32], l[32];
    ERR(D, D->decl->loc,
        "model `%s` needs at least %s: weights %s, KV caches %s, activations at least %s; the limit is %s (%s)",
        m->name, human_bytes(t, sizeof t, total), human_bytes(w, sizeof w, D->weight_bytes),
        human_bytes(k, sizeof k, kv), human_bytes(a, sizeof a, activations), human_bytes(l, sizeof l, (double)limit),
        D->max_memory ? "--max-memory" : "this machine's memory");
    diag_hint(D->diags, "make `dim`, `max_len`, `vocab` or the blocks smaller%s",
              D->max_memory ? ", or raise --max-memory" : "");
}

Model *model_declare(Arena *arena, const ModelDecl *decl, const SrcFile *file, DiagList *diags, bool check_only,
                     size_t max_memory)
{
    Decl D = { 0 };
    D.check_only = check_only;
    D.counting = true;
    D.max_memory = max_memory;
    D.a = arena;
    D.file = file;
    D.diags = diags;
    D.decl = decl;
    D.tied = true;
    Model *m = ARENA_NEW(arena, Model);
    D.m = m;
    m->name = decl->name;
    m->declared = true;
    m->out_kind = OUT_LOGITS;
    m->pos = POS_NONE;
    m->embed_scale = 1.0f;
    static const char *const known[] = { "vocab", "max_len", "dim", "weights", "init", "embed", "block", "norm", "unembed",
                                         "tokenizer", "eos" };
    float rope_base = 10000.0f;
    bool said_vocab = false, said_max_len = false, said_dim = false; /* even when wrong: one error each */
    bool said_init = false;
    /* sizes first: layers need dim */
    for (const MStmt *st = decl->item->mbody; st; st = st->next) {
        if (!strcmp(st->name, "vocab")) { said_vocab = true; int_statement(&D, st, 1, &D.vocab, &D.vocab_loc); }
        else if (!strcmp(st->name, "max_len")) { said_max_len = true; int_statement(&D, st, 1, &D.max_len, NULL); }
        else if (!strcmp(st->name, "dim")) { said_dim = true; int_statement(&D, st, 1, &D.dim, &D.dim_loc); }
        else if (!strcmp(st->name, "embed")) {
            for (const MOpt *o = st->opts; o; o = o->next) {
                const char *n = opt_name(o);
                if (n && !strcmp(n, "token") && o->natoms == 1) continue;
                if (n && !strcmp(n, "scale")) {
                    /* the token rows times S (Gemma: sqrt(dim)); a tied head reads them unscaled */
                    double sc;
                    if (atom_number(&D, "embed", "scale", opt_value(&D, "embed", o), &sc)) {
                        if (!(sc > 0) || !isfinite((float)sc)) ERR(&D, o->loc, "the embedding scale must be positive");
                        else m->embed_scale = (float)sc;
                    }
                    continue;
                }
                if (!n || strcmp(n, "position")) {
                    static const char *const k[] = { "token", "position", "scale" };
                    unknown_option(&D, "embed", o, k, 3);
                    continue;
                }
                const MAtom *v = opt_value(&D, "embed", o);
                if (!v) continue;
                const char *p = v->kind == MA_NAME || v->kind == MA_CALL ? v->str : "";
                if (!strcmp(p, "learned") && v->kind == MA_NAME) m->pos = POS_LEARNED;
                else if (!strcmp(p, "sinusoidal") && v->kind == MA_NAME) m->pos = POS_SINUSOIDAL;
                else if (!strcmp(p, "alibi") && v->kind == MA_NAME) m->pos = POS_ALIBI;
                else if (!strcmp(p, "none") && v->kind == MA_NAME) m->pos = POS_NONE;
                else if (!strcmp(p, "rope")) {
                    m->pos = POS_ROPE;
                    for (const MOpt *ro = v->kind == MA_CALL ? v->args : NULL; ro; ro = ro->next) {
                        double base;
                        if (opt_name(ro) && !strcmp(opt_name(ro), "scaling")) {
                            rope_scaling(&D, opt_value(&D, "rope", ro), m);
                            continue;
                        }
                        if (opt_name(ro) && !strcmp(opt_name(ro), "dims")) {
                            /* partial rotary: the first R dimensions of each head rotate (GPT-NeoX) */
                            if (atom_number(&D, "rope", "dims", opt_value(&D, "rope", ro), &base)) {
                                if (base != (int)base || base < 2 || (int)base % 2)
                                    ERR(&D, ro->loc, "rope(dims R) needs an even whole number of dimensions, at least 2");
                                else m->rope_dims = (int)base;
                            }
                            continue;
                        }
                        if (!opt_name(ro) || strcmp(opt_name(ro), "base")) {
                            ERR(&D, ro->loc, "`rope` takes `base B`, `dims R` and `scaling llama3(...)`");
                            continue;
                        }
                        if (atom_number(&D, "rope", "base", opt_value(&D, "rope", ro), &base)) {
                            if (base <= 1) ERR(&D, ro->loc, "the rope base must be more than 1");
                            rope_base = (float)base;
                        }
                    }
                } else {
                    static const char *const kinds[] = { "learned", "sinusoidal", "rope", "alibi", "none" };
                    ERR(&D, v->loc, "a position is learned, sinusoidal, rope(base B), alibi or none");
                    suggest_value(&D, v, kinds, 5);
                }
            }
        }
    }
    if (!said_vocab) ERR(&D, decl->loc, "model `%s` has no `vocab N;` statement", decl->name);
    if (!said_max_len) ERR(&D, decl->loc, "model `%s` has no `max_len N;` statement", decl->name);
    if (!said_dim) ERR(&D, decl->loc, "model `%s` has no `dim N;` statement", decl->name);
    if (D.errors) return NULL;
    m->dim = D.dim;
    m->vocab_size = D.vocab;
    m->max_len = D.max_len;
    m->positions = D.max_len;
    for (const MStmt *st = decl->item->mbody; st; st = st->next) {
        const char *n = st->name;
        if (!strcmp(n, "vocab") || !strcmp(n, "max_len") || !strcmp(n, "dim") || !strcmp(n, "embed")) continue;
        if (!strcmp(n, "block") && st->is_block) {
            add_blocks(&D, st);
        } else if (!strcmp(n, "weights")) {
            const MOpt *o = st->opts;
            if (!o || o->next || o->atoms[0].kind != MA_STRING ||
                !(o->natoms == 1 || (o->natoms == 3 && o->atoms[1].kind == MA_NAME && !strcmp(o->atoms[1].str, "as") &&
                                     o->atoms[2].kind == MA_NAME))) {
                ERR(&D, st->loc, "write `weights \"FILE.safetensors\" [as gpt2|llama|gpt_neox|tfmc];`");
                continue;
            }
            D.weights = o->atoms[0].str;
            D.weights_loc = o->atoms[0].loc;
            if (o->natoms == 3) {
                const char *s = o->atoms[2].str;
                if (!strcmp(s, "gpt2")) D.scheme = SCHEME_GPT2;
                else if (!strcmp(s, "llama")) D.scheme = SCHEME_LLAMA;
                else if (!strcmp(s, "gpt_neox")) D.scheme = SCHEME_NEOX;
                else if (strcmp(s, "tfmc")) {
                    static const char *const schemes[] = { "gpt2", "llama", "gpt_neox", "tfmc" };
                    ERR(&D, o->atoms[2].loc, "the weight naming scheme is gpt2, llama, gpt_neox or tfmc");
                    suggest_value(&D, &o->atoms[2], schemes, 4);
                }
            }
        } else if (!strcmp(n, "init")) {
            const MOpt *o = st->opts;
            said_init = true;
            const MAtom *v = o && !o->next && o->natoms == 1 ? &o->atoms[0] : NULL;
            long seed = -1;
            if (v && v->kind == MA_CALL && !strcmp(v->str, "random") && v->args && !v->args->next &&
                opt_name(v->args) && !strcmp(opt_name(v->args), "seed"))
                atom_int(&D, "random", "seed", opt_value(&D, "random", v->args), 0, &seed);
            if (seed < 0) {
                static const char *const inits[] = { "random" };
                ERR(&D, st->loc, "write `init random(seed N);`");
                if (o && !o->next && o->natoms == 1) suggest_value(&D, &o->atoms[0], inits, 1);
            } else {
                D.has_init = true;
                D.seed = (uint64_t)seed;
            }
        } else if (!strcmp(n, "norm")) {
            if (!st->opts || st->opts->next || st->opts->natoms != 1) ERR(&D, st->loc, "write `norm NORM;`, e.g. `norm layernorm(eps 1e-5);`");
            else parse_norm(&D, "norm", &st->opts->atoms[0], &m->final_norm);
        } else if (!strcmp(n, "unembed")) {
            const MOpt *o = st->opts;
            if (o && !o->next && o->natoms == 1 && o->atoms[0].kind == MA_NAME && !strcmp(o->atoms[0].str, "tied")) D.tied = true;
            else if (o && !o->next && o->natoms == 1 && o->atoms[0].kind == MA_NAME && !strcmp(o->atoms[0].str, "separate")) D.tied = false;
            else {
                static const char *const unembeds[] = { "tied", "separate" };
                ERR(&D, st->loc, "write `unembed tied;` or `unembed separate;`");
                if (o && !o->next && o->natoms == 1) suggest_value(&D, &o->atoms[0], unembeds, 2);
            }
        } else if (!strcmp(n, "tokenizer")) {
            const MOpt *o = st->opts;
            if (!o || o->next || o->natoms != 1 || o->atoms[0].kind != MA_STRING) {
                ERR(&D, st->loc, "write `tokenizer \"tokenizer.json\";`");
                continue;
            }
            const char *path = o->atoms[0].str;
            if (path[0] != '/' && file && file->path && strrchr(file->path, '/')) {
                const char *slash = strrchr(file->path, '/');
                path = arena_printf(arena, "%.*s/%s", (int)(slash - file->path), file->path, path);
            }
            if (access(path, R_OK) != 0) ERR(&D, o->atoms[0].loc, "cannot read the tokenizer %s: %s", o->atoms[0].str, strerror(errno));
            m->tokenizer = path;
        } else if (!strcmp(n, "eos")) {
            int cap = 0;
            if (!st->opts) ERR(&D, st->loc, "write `eos ID, ...;`: the token ids that end generation");
            for (const MOpt *o = st->opts; o; o = o->next) {
                long id = -1;
                if (o->natoms != 1) {
                    ERR(&D, o->loc, "write `eos ID, ...;`: the token ids that end generation");
                    continue;
                }
                if (atom_int(&D, "eos", "an id", &o->atoms[0], 0, &id) && id >= D.vocab)
                    ERR(&D, o->atoms[0].loc, "the end-of-sequence id %ld is outside the vocabulary (0..%d)", id, D.vocab - 1);
                else if (id >= 0) VEC_PUSH(arena, m->eos, m->neos, cap, (int)id);
            }
        } else if (!strcmp(n, "attention") || !strcmp(n, "mlp") || !strcmp(n, "moe")) {
            ERR(&D, st->name_loc, "`%s` belongs inside a block: `block x N { %s ...; }`", n, n);
        } else {
            ERR(&D, st->name_loc, "unknown model statement `%s`", n);
            const char *sug = diag_suggest(n, known, 11);
            if (sug) diag_hint(diags, "did you mean `%s`?", sug);
        }
    }
    if (m->pos == POS_ROPE)
        for (int i = 0; i < m->nblocks; i++) {
            ModelBlock *b = &m->blocks[i];
            b->pos = POS_ROPE;
            b->rope_base = rope_base;
            if (b->kind != BLOCK_MHA) continue;
            b->rope_dims = m->rope_dims ? m->rope_dims : b->head_dim;
            if (m->rope_factor > 0 || b->rope_dims < b->head_dim) {
                /* one table per number of rotating dimensions: blocks that rotate as many share it */
                const float *same = NULL;
                for (int k = 0; k < i && !same; k++)
                    if (m->blocks[k].rope_freq && m->blocks[k].rope_dims == b->rope_dims) same = m->blocks[k].rope_freq;
                b->rope_freq = same ? same : rope_frequencies(arena, m, rope_base, b->rope_dims);
            }
        }
    if (m->pos == POS_ALIBI)
        for (int i = 0; i < m->nblocks; i++) m->blocks[i].pos = POS_ALIBI;
    if (!D.weights && !said_init) {
        ERR(&D, decl->loc, "model `%s` has no weights", decl->name);
        diag_hint(diags, "add `weights \"FILE.safetensors\";` or `init random(seed 1);`");
    }
    if (D.weights && D.has_init) ERR(&D, D.weights_loc, "a model takes `weights` or `init`, not both");
    if (D.errors) return NULL;
    m->tied = D.tied;
    alloc_embeddings(&D);
    /* what the model will take, then the weight file's header, before any weight is allocated */
    check_memory(&D);
    if (D.weights && !decl_load_weights(&D)) return NULL;
    if (D.errors) return NULL;
    if (check_only) return m;
    realise_weights(&D);
    m->weight_bytes = (size_t)D.weight_bytes;
    size_t d = (size_t)m->dim;
    if (m->pos == POS_SINUSOIDAL)
        for (int p = 0; p < m->positions; p++)
            for (int i = 0; 2 * i < m->dim; i++) {
                double f = p / pow(10000.0, 2.0 * i / m->dim);
                m->pos_emb[(size_t)p * d + 2 * i] = (float)sin(f);
                if (2 * i + 1 < m->dim) m->pos_emb[(size_t)p * d + 2 * i + 1] = (float)cos(f);
            }
    if (D.has_init) decl_random_weights(&D);
    else if (!decl_load_weights(&D)) return NULL;
    apply_norm_offsets(arena, m);
    m->dim_labels = NULL;
    return m;
}
