/* model.c: the model IR: statistics, the verifier, and the text printer (`--emit=model`). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static long count_nonzero(const float *w, size_t n)
{
    long k = 0;
    for (size_t i = 0; i < n; i++) k += w[i] != 0.0f;
    return k;
}

static size_t ffn_params(const Ffn *f, size_t d)
{
    size_t h = (size_t)f->hidden;
    return 2 * h * d + (f->gate ? h * d : 0) + (f->b_up ? h + d + (f->gate ? h : 0) : 0);
}

static size_t norm_params(const Norm *n, size_t d) { return n->kind == NORM_NONE ? 0 : n->bias ? 2 * d : d; }

/* Statistics of a declared model: every distinct weight once (shared blocks count once). */
static void declared_stats(const Model *m, ModelStats *s)
{
    size_t d = (size_t)m->dim, p = (size_t)m->vocab_size * d;
    if (m->pos == POS_LEARNED) p += (size_t)m->positions * d;
    if (!m->tied) p += (size_t)m->vocab_size * d;
    p += norm_params(&m->final_norm, d);
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        s->blocks++;
        if (b->kind == BLOCK_MHA) {
            s->heads += b->mha_heads;
            s->layers++;
        }
        if (b->shared_with >= 0) continue;
        p += norm_params(&b->norm, d) + norm_params(&b->post_norm, d);
        if (b->kind == BLOCK_MHA) {
            size_t q = (size_t)b->mha_heads * b->head_dim, kv = (size_t)b->kv_heads * b->head_dim;
            p += 2 * q * d + 2 * kv * d + (b->bq ? q + 2 * kv + d : 0);
        } else if (b->kind == BLOCK_FFN) {
            p += ffn_params(&b->ffn, d);
        } else {
            p += (size_t)b->experts * d;
            for (int e = 0; e < b->experts; e++) p += ffn_params(&b->expert[e], d);
        }
    }
    s->params = s->nonzeros = (long)p;
}

void model_stats(const Model *m, ModelStats *s)
{
    if (m->declared) {
        memset(s, 0, sizeof *s);
        declared_stats(m, s);
        return;
    }
    memset(s, 0, sizeof *s);
    size_t d = (size_t)m->dim;
    s->params = (long)((size_t)m->vocab_size * d + (size_t)m->positions * d);
    s->nonzeros = count_nonzero(m->tok_emb, (size_t)m->vocab_size * d) +
                  count_nonzero(m->pos_emb, (size_t)m->positions * d);
    int last_attn = -2, layers = 0;
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        s->blocks++;
        if (b->kind == BLOCK_ATTENTION) {
            s->heads += b->nheads;
            for (int h = 0; h < b->nheads; h++) {
                const ModelHead *hd = &b->heads[h];
                size_t n = (size_t)(2 * hd->dk + 2 * hd->dv) * d;
                s->params += (long)n;
                s->nonzeros += count_nonzero(hd->wq, (size_t)hd->dk * d) + count_nonzero(hd->wk, (size_t)hd->dk * d) +
                               count_nonzero(hd->wv, (size_t)hd->dv * d) + count_nonzero(hd->wo, d * (size_t)hd->dv);
            }
            layers++;
            last_attn = i;
        } else {
            size_t n = 2 * (size_t)b->hidden * d;
            s->params += (long)(n + (size_t)b->hidden + d);
            s->nonzeros += count_nonzero(b->w1, (size_t)b->hidden * d) + count_nonzero(b->w2, (size_t)b->hidden * d) +
                           count_nonzero(b->b1, (size_t)b->hidden) + count_nonzero(b->b2, d);
            /* an MLP right after an attention block shares its layer */
            if (last_attn != i - 1) layers++;
        }
    }
    s->layers = layers;
}

static bool finite_all(const float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(w[i])) return false;
    return true;
}

bool model_verify(const Model *m, char *err, size_t cap)
{
    size_t d = (size_t)m->dim;
    if (m->declared) return true; /* weights were checked as they were read (shapes, NaN, Inf) */
    if (m->dim <= 0 || m->vocab_size <= 0 || m->positions <= 0) {
        snprintf(err, cap, "model `%s` has an empty dimension", m->name);
        return false;
    }
    if (!finite_all(m->tok_emb, (size_t)m->vocab_size * d) || !finite_all(m->pos_emb, (size_t)m->positions * d)) {
        snprintf(err, cap, "model `%s`: the embeddings hold a NaN or infinity", m->name);
        return false;
    }
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        if (b->kind == BLOCK_ATTENTION) {
            for (int h = 0; h < b->nheads; h++) {
                const ModelHead *hd = &b->heads[h];
                if (hd->dk <= 0 || hd->dv <= 0) {
                    snprintf(err, cap, "block %d head %d has an empty dimension", i, h);
                    return false;
                }
                if (!finite_all(hd->wq, (size_t)hd->dk * d) || !finite_all(hd->wk, (size_t)hd->dk * d) ||
                    !finite_all(hd->wv, (size_t)hd->dv * d) || !finite_all(hd->wo, d * (size_t)hd->dv)) {
                    snprintf(err, cap, "block %d head %d holds a NaN or infinity", i, h);
                    return false;
                }
            }
        } else if (b->hidden <= 0 || !finite_all(b->w1, (size_t)b->hidden * d) ||
                   !finite_all(b->w2, (size_t)b->hidden * d) || !finite_all(b->b1, (size_t)b->hidden) ||
                   !finite_all(b->b2, d)) {
            snprintf(err, cap, "MLP block %d is empty or holds a NaN or infinity", i);
            return false;
        }
    }
    if (m->out_kind == OUT_CATEGORICAL) {
        for (int i = 0; i < m->nout; i++)
            if (m->out_dims[i] < 0 || m->out_dims[i] >= m->dim) {
                snprintf(err, cap, "output dimension %d is outside the residual", m->out_dims[i]);
                return false;
            }
    } else if (m->out_dim < 0 || m->out_dim >= m->dim) {
        snprintf(err, cap, "the numerical output dimension is outside the residual");
        return false;
    }
    return true;
}

/* The non-zero entries of W[rows][cols] as `row_label <- col_label: value`. */
static void print_sparse(FILE *out, const char *name, const float *w, int rows, int cols, const char *const *row_labels,
                         const char *const *col_labels)
{
    fprintf(out, "    %s [%d][%d]\n", name, rows, cols);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float v = w[(size_t)r * cols + c];
            if (v == 0.0f) continue;
            fprintf(out, "      ");
            if (row_labels) fprintf(out, "%s", row_labels[r]); else fprintf(out, "%d", r);
            fprintf(out, " <- ");
            if (col_labels) fprintf(out, "%s", col_labels[c]); else fprintf(out, "%d", c);
            fprintf(out, ": %.9g\n", v);
        }
}

static const char *norm_name(const Norm *n)
{
    switch (n->kind) {
    case NORM_NONE: return "none";
    case NORM_LAYERNORM: return "layernorm";
    case NORM_RMSNORM: return "rmsnorm";
    case NORM_DYT: return "dyt";
    }
    return "?";
}

static void declared_print(const Model *m, FILE *out)
{
    static const char *const pos[] = { "none", "learned", "sinusoidal", "rope", "alibi" };
    static const char *const score[] = { "softmax", "softmax1", "linear", "hard" };
    static const char *const act[] = { "relu", "gelu", "gelu_tanh", "silu", "swiglu", "geglu", "geglu_tanh" };
    ModelStats s;
    model_stats(m, &s);
    fprintf(out, "model %s (declared)\n  vocab %d, max_len %d, dim %d, positions %s, %d blocks, %ld parameters\n", m->name,
            m->vocab_size, m->max_len, m->dim, pos[m->pos], m->nblocks, s.params);
    if (m->embed_scale != 1.0f) fprintf(out, "  token embedding scaled by %g\n", (double)m->embed_scale);
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        fprintf(out, "  block %d: ", i);
        if (b->kind == BLOCK_MHA)
            fprintf(out, "attention heads %d, kv_heads %d, head_dim %d%s, window %d, score %s%s%s", b->mha_heads,
                    b->kv_heads, b->head_dim, b->causal ? ", causal" : "", b->window, score[b->score],
                    b->bq ? ", bias" : "", b->parallel ? ", parallel" : "");
        if (b->kind == BLOCK_MHA && b->pos == POS_ROPE && b->rope_dims < b->head_dim)
            fprintf(out, ", rotary on %d of %d dimensions", b->rope_dims, b->head_dim);
        else if (b->kind == BLOCK_FFN)
            fprintf(out, "mlp hidden %d, act %s%s", b->ffn.hidden, act[b->ffn.act], b->ffn.b_up ? ", bias" : "");
        else
            fprintf(out, "moe experts %d, top %d, hidden %d, act %s", b->experts, b->top, b->ffn.hidden, act[b->ffn.act]);
        fprintf(out, ", norm %s", norm_name(&b->norm));
        if (b->norm.offset != 0) fprintf(out, " (offset %g)", (double)b->norm.offset);
        if (b->post_norm.kind != NORM_NONE) fprintf(out, ", post_norm %s", norm_name(&b->post_norm));
        if (b->shared_with >= 0) fprintf(out, " (weights of block %d)", b->shared_with);
        fputc('\n', out);
    }
    fprintf(out, "  final norm %s%s, unembed %s\n", norm_name(&m->final_norm), m->final_norm.offset != 0 ? " (offset)" : "",
            m->tied ? "tied" : "separate");
}

void model_print(const Model *m, FILE *out, Arena *a)
{
    if (m->declared) {
        declared_print(m, out);
        return;
    }
    ModelStats s;
    model_stats(m, &s);
    fprintf(out, "model %s\n", m->name);
    fprintf(out, "  residual %d, vocab %d%s, positions %d, layers %d, blocks %d, heads %d, params %ld (%ld non-zero)\n",
            m->dim, m->vocab_size, m->has_bos ? " (BOS included)" : "", m->positions, s.layers, s.blocks, s.heads,
            s.params, s.nonzeros);
    fprintf(out, "  dims:");
    for (int i = 0; i < m->dim; i++) fprintf(out, "%s%d=%s", i % 8 == 0 ? "\n    " : "  ", i, m->dim_labels[i]);
    fputc('\n', out);
    const char **tok_labels = NULL;
    char buf[96];
    if (m->vocab) {
        static const char *bos = "BOS";
        const char *labels[4096 + 1] = { 0 };
        int n = m->vocab_size < 4097 ? m->vocab_size : 4097;
        for (int i = 0; i < n; i++) {
            if (i == m->bos_id && m->has_bos) {
                labels[i] = bos;
                continue;
            }
            value_format(m->vocab[i], buf, sizeof buf);
            labels[i] = arena_strdup(a, buf);
        }
        tok_labels = labels;
        fprintf(out, "  token embedding\n");
        print_sparse(out, "tok_emb", m->tok_emb, m->vocab_size, m->dim, tok_labels, m->dim_labels);
    } else {
        print_sparse(out, "tok_emb", m->tok_emb, m->vocab_size, m->dim, NULL, m->dim_labels);
    }
    fprintf(out, "  position embedding\n");
    print_sparse(out, "pos_emb", m->pos_emb, m->positions, m->dim, NULL, m->dim_labels);
    for (int i = 0; i < m->nblocks; i++) {
        const ModelBlock *b = &m->blocks[i];
        fprintf(out, "  block %d: %s", i, b->kind == BLOCK_ATTENTION ? "attention" : "mlp");
        if (b->kind == BLOCK_ATTENTION) fprintf(out, ", %d head%s%s", b->nheads, b->nheads == 1 ? "" : "s", b->causal ? ", causal" : "");
        else fprintf(out, ", hidden %d, relu", b->hidden);
        fprintf(out, " (computes");
        for (int k = 0; k < b->nparts; k++) fprintf(out, " %s", b->parts[k]);
        fprintf(out, ")\n");
        if (b->kind == BLOCK_ATTENTION) {
            for (int h = 0; h < b->nheads; h++) {
                const ModelHead *hd = &b->heads[h];
                fprintf(out, "   head %d (%s): dk %d, dv %d\n", h, hd->label, hd->dk, hd->dv);
                print_sparse(out, "wq", hd->wq, hd->dk, m->dim, NULL, m->dim_labels);
                print_sparse(out, "wk", hd->wk, hd->dk, m->dim, NULL, m->dim_labels);
                print_sparse(out, "wv", hd->wv, hd->dv, m->dim, NULL, m->dim_labels);
                print_sparse(out, "wo", hd->wo, m->dim, hd->dv, m->dim_labels, NULL);
            }
        } else {
            print_sparse(out, "w1", b->w1, b->hidden, m->dim, NULL, m->dim_labels);
            print_sparse(out, "b1", b->b1, 1, b->hidden, NULL, NULL);
            print_sparse(out, "w2", b->w2, m->dim, b->hidden, m->dim_labels, NULL);
        }
    }
    if (m->out_kind == OUT_NUMERICAL) {
        fprintf(out, "  output numerical: %s\n", m->dim_labels[m->out_dim]);
    } else {
        fprintf(out, "  output categorical (argmax of the value dimensions, `_` unless one exceeds 0.5):");
        for (int i = 0; i < m->nout; i++) fprintf(out, " %s", m->dim_labels[m->out_dims[i]]);
        fputc('\n', out);
    }
}
