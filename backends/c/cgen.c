/* cgen.c: the portable C backend. Writes one readable C99 file: the weights as exact hexadecimal
 * float arrays, a fixed memory plan in a caller-provided arena (no malloc), a forward pass that
 * reads top to bottom as a sequence of runtime kernel calls, token encode/decode helpers, and
 * optionally a main() with the command line's I/O. */
#include <stdlib.h>
#include <string.h>

#include "cgen.h"
#include "tfmc_config.h" /* TFMC_VERSION: the backends do not call up into the library */

void cgen_c_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 32 || c >= 127) fprintf(out, "\\%03o", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

/* A C identifier fragment for a tensor name: b0.h1.q -> b0_h1_q. */
const char *cgen_ident(const char *name, char *buf, size_t cap)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++) {
        char c = name[i];
        buf[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
    }
    buf[i] = '\0';
    return buf;
}

/* Weights as hexadecimal floats: exact, no decimal rounding. Zeros are written as 0. */
void cgen_weights_array(Cgen *c, const char *name, const float *w, size_t n, const char *comment)
{
    bool sep = c->o->weights != NULL;
    if (sep) fprintf(c->out, "extern const float %s_%s[%zu];\n", c->P, name, n);
    fprintf(c->wf, "/* %s */\n%sconst float %s_%s[%zu] = {", comment, sep ? "" : "static ", c->P, name, n);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) fprintf(c->wf, "\n   ");
        if (w[i] == 0.0f) fprintf(c->wf, " 0,");
        else fprintf(c->wf, " %af,", (double)w[i]);
    }
    fprintf(c->wf, "\n};\n\n");
}

/* Weight-specialised code: a compressed matrix with few non-zeros becomes straight-line C with
 * its weights as constants (a weight of 1 is a plain add). Same terms, same order as
 * tfmcrt_linear_csr, so the same numbers. Not with --weights=separate (the weights are the code). */
enum { UNROLL_MAX_NNZ = 2048 };

static bool unrolled(const Cgen *c, const GraphOp *op)
{
    return op->vals && op->nnz <= UNROLL_MAX_NNZ && !c->o->weights;
}

static void emit_unrolled(Cgen *c, const GraphOp *op, const char *name)
{
    bool acc = op->in[1] >= 0; /* out = acc + (W x + b): only the rows with terms change */
    fprintf(c->out, "/* %s: W[%d][%d], %d non-zeros, specialised%s */\n", c->g->tensors[op->out].name, op->rows, op->cols,
            op->nnz, acc ? ", added to the residual" : "");
    fprintf(c->out, "static void %s_%s(float *out, %sconst float *in, size_t n)\n{\n    size_t i;\n", c->P, name,
            acc ? "const float *acc, " : "");
    fprintf(c->out, "    for (i = 0; i < n; i++) {\n        const float *x = in + i * %d;\n        float *y = out + i * %d;\n",
            op->cols, op->rows);
    if (acc) fprintf(c->out, "        const float *a = acc + i * %d;\n        if (y != a) memcpy(y, a, sizeof(float) * %d);\n",
                     op->rows, op->rows);
    for (int r = 0; r < op->rows; r++) {
        if (acc && !op->b && op->rowptr[r] == op->rowptr[r + 1]) continue;
        if (acc) fprintf(c->out, "        y[%d] = y[%d] + (", r, r);
        else fprintf(c->out, "        y[%d] = ", r);
        if (op->b) fprintf(c->out, "%af", (double)op->b[r]);
        else fprintf(c->out, "0.0f");
        for (int k = op->rowptr[r]; k < op->rowptr[r + 1]; k++) {
            float v = op->vals[k];
            if (v == 1.0f) fprintf(c->out, " + x[%d]", op->colidx[k]);
            else if (v == -1.0f) fprintf(c->out, " - x[%d]", op->colidx[k]);
            else fprintf(c->out, " + x[%d] * %af", op->colidx[k], (double)v);
        }
        fprintf(c->out, acc ? ");\n" : ";\n");
    }
    fprintf(c->out, "    }\n}\n\n");
}

static void emit_weights(Cgen *c)
{
    const Model *m = c->m;
    char id[128];
    const GraphOp *embed = NULL;
    for (int i = 0; i < c->g->nops; i++)
        if (c->g->ops[i].kind == G_EMBED) embed = &c->g->ops[i];
    if (embed && embed->vals) {
        /* the one-hot tables in compressed rows, as two sparse "matrices" */
        GraphOp tok = *embed, pos = *embed;
        tok.rows = m->vocab_size;
        pos.rows = m->positions;
        pos.rowptr = embed->pos_rowptr;
        pos.colidx = embed->pos_colidx;
        pos.vals = embed->pos_vals;
        pos.nnz = embed->pos_nnz;
        cgen_sparse_arrays(c, "tok", &tok, "token embedding [vocab][dim]");
        cgen_sparse_arrays(c, "pos", &pos, "position embedding [positions][dim]");
    } else {
        cgen_weights_array(c, "tok_emb", m->tok_emb, (size_t)m->vocab_size * m->dim, "token embedding [vocab][dim]");
        cgen_weights_array(c, "pos_emb", m->pos_emb, (size_t)m->positions * m->dim, "position embedding [positions][dim]");
    }
    for (int i = 0; i < c->g->nops; i++) {
        const GraphOp *op = &c->g->ops[i];
        if (op->kind != G_LINEAR) continue;
        const char *t = cgen_ident(c->g->tensors[op->out].name, id, sizeof id);
        char wname[160], comment[160];
        snprintf(wname, sizeof wname, "w_%s", t);
        snprintf(comment, sizeof comment, "%s: W[%d][%d]", c->g->tensors[op->out].name, op->rows, op->cols);
        if (op->vals && unrolled(c, op)) continue; /* its weights are in its code */
        if (op->vals) cgen_sparse_arrays(c, wname, op, comment);
        else cgen_weights_array(c, wname, op->w, (size_t)op->rows * op->cols, comment);
        if (op->b) {
            snprintf(wname, sizeof wname, "b_%s", t);
            snprintf(comment, sizeof comment, "%s: bias[%d]", c->g->tensors[op->out].name, op->rows);
            cgen_weights_array(c, wname, op->b, (size_t)op->rows, comment);
        }
    }
}

/* The upper-case prefix of macros: reverse -> REVERSE. */
static void int_array(Cgen *c, const char *name, const int *v, size_t n)
{
    bool sep = c->o->weights != NULL;
    if (sep) fprintf(c->out, "extern const int %s_%s[%zu];\n", c->P, name, n);
    fprintf(c->wf, "%sconst int %s_%s[%zu] = {", sep ? "" : "static ", c->P, name, n);
    for (size_t i = 0; i < n; i++) fprintf(c->wf, "%s %d,", i % 16 == 0 ? "\n   " : "", v[i]);
    fprintf(c->wf, "\n};\n\n");
}

void cgen_emit_line_reader(Cgen *c, const char *call, bool check_len)
{
    char up[128];
    cgen_upper(c->P, up, sizeof up);
    fprintf(c->out,
            "    while (fgets(line, sizeof line, stdin)) {\n"
            "        size_t len = strlen(line);\n        int count = 0;\n        char *s = line;\n        lineno++;\n"
            "        if (len == sizeof line - 1 && line[len - 1] != '\\n') {\n"
            "            int ch;\n            while ((ch = getchar()) != EOF && ch != '\\n') {}\n"
            "            printf(\"\\n\");\n            fprintf(stderr, \"input line %%ld: the line is too long\\n\", lineno);\n"
            "            status = 1;\n            continue;\n        }\n"
            "        for (;;) {\n"
            "            while (*s == ' ' || *s == '\\t' || *s == '\\r' || *s == '\\n' || *s == '\\v' || *s == '\\f') s++;\n"
            "            if (!*s) break;\n            if (count <= %s_MAX_LEN) words[count] = s;\n            count++;\n"
            "            while (*s && !(*s == ' ' || *s == '\\t' || *s == '\\r' || *s == '\\n' || *s == '\\v' || *s == '\\f')) s++;\n"
            "            if (*s) *s++ = '\\0';\n        }\n",
            up);
    if (check_len)
        fprintf(c->out,
                "        if (count > %s_MAX_LEN) {\n            printf(\"\\n\");\n"
                "            fprintf(stderr, \"input line %%ld: more than max_len %%d tokens\\n\", lineno, %s_MAX_LEN);\n"
                "            status = 1;\n            continue;\n        }\n",
                up, up);
    fprintf(c->out, "        if (%s != 0) status = 1;\n        fflush(stdout);\n    }\n    return status;\n}\n", call);
}

void cgen_sparse_arrays(Cgen *c, const char *name, const GraphOp *op, const char *comment)
{
    char buf[192];
    snprintf(buf, sizeof buf, "%s, %d non-zeros in compressed rows", comment, op->nnz);
    char vals[192];
    snprintf(vals, sizeof vals, "%s_vals", name);
    cgen_weights_array(c, vals, op->vals, (size_t)(op->nnz ? op->nnz : 1), buf);
    snprintf(vals, sizeof vals, "%s_rowptr", name);
    int_array(c, vals, op->rowptr, (size_t)op->rows + 1);
    snprintf(vals, sizeof vals, "%s_colidx", name);
    int_array(c, vals, op->colidx, (size_t)(op->nnz ? op->nnz : 1));
}

/* The runtime's name of an activation. */
const char *cgen_act_name(Activation a)
{
    switch (a) {
    case ACT_RELU: return "TFMCRT_RELU";
    case ACT_GELU: return "TFMCRT_GELU";
    case ACT_GELU_TANH: return "TFMCRT_GELU_TANH";
    case ACT_SILU: return "TFMCRT_SILU";
    case ACT_SWIGLU: return "TFMCRT_SWIGLU";
    case ACT_GEGLU: return "TFMCRT_GEGLU";
    }
    return "TFMCRT_RELU";
}

void cgen_upper(const char *p, char *buf, size_t cap)
{
    size_t i = 0;
    for (; p[i] && i + 1 < cap; i++) buf[i] = (char)((p[i] >= 'a' && p[i] <= 'z') ? p[i] - 32 : p[i]);
    buf[i] = '\0';
}

static void emit_header(Cgen *c)
{
    const Model *m = c->m;
    ModelStats s;
    model_stats(m, &s);
    const char *P = c->P;
    char up[128];
    cgen_upper(P, up, sizeof up);
    fprintf(c->out,
            "/* %s: generated by tfmc %s from %s (source FNV-1a 0x%016llx).\n"
            " * Options: %s\n"
            " * The RASP program `%s` compiled to a transformer: residual width %d, %d layers\n"
            " * (%d blocks, %d heads), %ld parameters (%ld non-zero). Position 0 holds a BOS token.\n"
            " * Build: cc THIS_FILE.c%s%s $(tfmc config --cflags --libs)\n"
            " * Use: %s_init(&ctx, arena, %s_ARENA_BYTES) once, then %s_forward(&ctx, tokens, n, out);\n"
            " * the arena is caller memory aligned for float; nothing here allocates. */\n",
            P, TFMC_VERSION, c->o->source_path ? c->o->source_path : "?", (unsigned long long)c->o->source_hash,
            c->o->options ? c->o->options : "", m->name, m->dim, s.layers, s.blocks, s.heads, s.params, s.nonzeros,
            c->o->weights_name ? " " : "", c->o->weights_name ? c->o->weights_name : "", P, up, P);
    fprintf(c->out, "#include <stddef.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    fprintf(c->out, "#include \"tfmcrt.h\"\n\n");
    fprintf(c->out, "#define %s_DIM %d            /* residual width */\n", up, m->dim);
    fprintf(c->out, "#define %s_MAX_LEN %d        /* longest input, BOS excluded */\n", up, m->max_len);
    fprintf(c->out, "#define %s_POSITIONS %d      /* BOS + MAX_LEN */\n", up, m->positions);
    fprintf(c->out, "#define %s_VOCAB %d          /* input token ids 0..VOCAB-1 */\n", up, m->nvocab);
    fprintf(c->out, "#define %s_BOS %d\n", up, m->bos_id);
    fprintf(c->out, "#define %s_ARENA_FLOATS %zu\n", up, c->g->arena_floats);
    fprintf(c->out, "#define %s_ARENA_BYTES (%s_ARENA_FLOATS * sizeof(float))\n\n", up, up);
    fprintf(c->out, "typedef struct %s_ctx {\n    float *arena;\n} %s_ctx;\n\n", P, P);
    fprintf(c->out, "/* What %s_forward writes per position: %s. */\ntypedef %s %s_out_t;\n\n", P,
            m->out_kind == OUT_CATEGORICAL ? "an output value id, -1 when undefined" : "the numerical output",
            m->out_kind == OUT_CATEGORICAL ? "int" : "float", P);
}

/* static const char *const NAME[] = { "text of each value", ... }; (one entry when n is 0) */
static void value_strings(Cgen *c, const char *name, const Value *v, int n, const char *empty)
{
    char buf[128];
    fprintf(c->out, "static const char *const %s_%s[%d] = {", c->P, name, n > 0 ? n : 1);
    for (int i = 0; i < n; i++) {
        value_format(v[i], buf, sizeof buf);
        fprintf(c->out, "%s", i % 8 == 0 ? "\n    " : " ");
        cgen_c_string(c->out, buf);
        fputc(',', c->out);
    }
    if (n == 0) fprintf(c->out, " \"%s\"", empty);
    fprintf(c->out, "\n};\n");
}

static void emit_tables(Cgen *c)
{
    const Model *m = c->m;
    const char *P = c->P;
    fprintf(c->out, "/* The vocabulary: token id i is %s_tokens[i]. */\n", P);
    value_strings(c, "tokens", m->vocab, m->nvocab, "");
    fputc('\n', c->out);
    if (m->out_kind == OUT_CATEGORICAL) {
        fprintf(c->out, "/* The output's values and the residual dimension of each. */\n");
        value_strings(c, "values", m->out_values, m->nout, "_");
        fprintf(c->out, "static const int %s_value_dims[%d] = {", P, m->nout > 0 ? m->nout : 1);
        for (int i = 0; i < m->nout; i++) fprintf(c->out, "%s%d,", i % 16 == 0 ? "\n    " : " ", m->out_dims[i]);
        if (m->nout == 0) fprintf(c->out, " 0");
        fprintf(c->out, "\n};\n\n");
    } else {
        fprintf(c->out, "/* The numbers the output can take (sorted), and their text. */\n");
        fprintf(c->out, "static const double %s_numbers[%d] = {", P, m->nout > 0 ? m->nout : 1);
        for (int i = 0; i < m->nout; i++)
            fprintf(c->out, "%s%a,", i % 4 == 0 ? "\n    " : " ", value_number(m->out_values[i]));
        if (m->nout == 0) fprintf(c->out, " 0");
        fprintf(c->out, "\n};\n");
        /* numbers closer than 1e-9 share the text of their run's member nearest zero (what
         * model_canonical_output decodes them to), so -O levels print alike */
        Value *canon = ARENA_ARRAY(c->o->arena, Value, m->nout > 0 ? m->nout : 1);
        for (int i = 0; i < m->nout; i++) canon[i] = m->out_values[model_canonical_output(m, i)];
        value_strings(c, "values", canon, m->nout, "0");
        fputc('\n', c->out);
    }
}

static void emit_api(Cgen *c)
{
    const Model *m = c->m;
    const char *P = c->P;
    char up[128];
    cgen_upper(P, up, sizeof up);
    fprintf(c->out, "/* Check the arena and keep it; 0 on success, -1 when it is too small. */\n");
    fprintf(c->out, "int %s_init(%s_ctx *ctx, void *arena, size_t bytes);\n", P, P);
    fprintf(c->out, "int %s_init(%s_ctx *ctx, void *arena, size_t bytes)\n{\n", P, P);
    fprintf(c->out, "    if (!ctx || !arena || bytes < %s_ARENA_BYTES) return -1;\n", up);
    fprintf(c->out, "    ctx->arena = (float *)arena;\n    return 0;\n}\n\n");
    fprintf(c->out, "/* The token id of a word, or -1 when it is not in the vocabulary. */\n");
    fprintf(c->out, "int %s_encode(const char *word);\n", P);
    fprintf(c->out, "int %s_encode(const char *word)\n{\n    int i;\n", P);
    bool has_float = false;
    for (int i = 0; i < m->nvocab; i++) has_float |= m->vocab[i].kind == TFMC_FLOAT;
    if (m->vocab_is_int) {
        /* the text as printed first (booleans print as true/false), then the number, compared
         * with each token's value (true is 1): an integer vocabulary reads integers only, one
         * with floats any number (as tfmc eval reads them) */
        fprintf(c->out, "    static const double number[%d] = {", m->nvocab > 0 ? m->nvocab : 1);
        for (int i = 0; i < m->nvocab; i++) fprintf(c->out, "%s%a", i ? ", " : " ", value_number(m->vocab[i]));
        fprintf(c->out, "%s };\n", m->nvocab ? "" : " 0");
        fprintf(c->out, "    char *end;\n    double v;\n");
        fprintf(c->out, "    for (i = 0; i < %s_VOCAB; i++)\n        if (strcmp(%s_tokens[i], word) == 0) return i;\n", up, P);
        fprintf(c->out, has_float ? "    v = strtod(word, &end);\n" : "    v = (double)strtol(word, &end, 10);\n");
        fprintf(c->out, "    if (end == word || *end != '\\0') return -1;\n");
        fprintf(c->out, "    for (i = 0; i < %s_VOCAB; i++)\n        if (number[i] == v) return i;\n", up);
    } else {
        fprintf(c->out, "    for (i = 0; i < %s_VOCAB; i++)\n        if (strcmp(%s_tokens[i], word) == 0) return i;\n", up, P);
    }
    fprintf(c->out, "    return -1;\n}\n\n");
    if (m->out_kind == OUT_NUMERICAL) {
        fprintf(c->out, "/* The output value a number decodes to: the nearest within 1e-4 (relative), or -1. */\n");
        fprintf(c->out, "int %s_snap(float v);\n", P);
        fprintf(c->out, "int %s_snap(float v)\n{\n    int lo = 0, hi = %d, k;\n", P, m->nout - 1);
        fprintf(c->out, "    while (lo < hi) {\n        int mid = (lo + hi) / 2;\n"
                        "        if (%s_numbers[mid] < v) lo = mid + 1; else hi = mid;\n    }\n", P);
        fprintf(c->out, "    for (k = lo - 1; k <= lo; k++) {\n        double x, tol;\n"
                        "        if (k < 0 || k >= %d) continue;\n        x = %s_numbers[k];\n"
                        "        tol = 1e-4 * (x > 1 || x < -1 ? (x < 0 ? -x : x) : 1);\n"
                        "        if (v - x <= tol && x - v <= tol) return k;\n    }\n    return -1;\n}\n\n",
                m->nout, P);
    }
    if (m->out_kind == OUT_CATEGORICAL) {
        fprintf(c->out, "/* The text of an output value id; \"_\" for -1 (undefined). */\n");
        fprintf(c->out, "const char *%s_value_name(int id);\n", P);
        fprintf(c->out, "const char *%s_value_name(int id)\n{\n    return id >= 0 && id < %d ? %s_values[id] : \"_\";\n}\n\n",
                P, m->nout, P);
    }
}

static void emit_forward(Cgen *c)
{
    for (int k = 0; k < c->g->nops; k++) {
        const GraphOp *op = &c->g->ops[k];
        char lin[160], id0[128];
        if (op->kind != G_LINEAR || !unrolled(c, op)) continue;
        snprintf(lin, sizeof lin, "lin_%s", cgen_ident(c->g->tensors[op->out].name, id0, sizeof id0));
        emit_unrolled(c, op, lin);
    }
    const Graph *g = c->g;
    const Model *m = c->m;
    const char *P = c->P;
    char up[128], id[128], id2[128];
    cgen_upper(P, up, sizeof up);
    bool cat = m->out_kind == OUT_CATEGORICAL;
    fprintf(c->out, "/* Run the transformer on tokens[0..n) (ids from %s_encode) and decode each position:\n", P);
    if (cat) fprintf(c->out, " * out[i] is an output value id (see %s_value_name), -1 when undefined.\n", P);
    else fprintf(c->out, " * out[i] is the numerical output.\n");
    fprintf(c->out, " * Returns 0, or -1 for a bad length, -2 for a bad token id. */\n");
    fprintf(c->out, "int %s_forward(%s_ctx *ctx, const int *tokens, int n, %s_out_t *out);\n", P, P, P);
    fprintf(c->out, "int %s_forward(%s_ctx *ctx, const int *tokens, int n, %s_out_t *out)\n{\n", P, P, P);
    fprintf(c->out, "    int ids[%s_POSITIONS];\n    size_t np, p;\n    int i;\n", up);
    /* tensors at their planned offsets */
    for (int t = 0; t < g->ntensors; t++)
        if (graph_tensor_used(g, t))
            fprintf(c->out, "    float *%s = ctx->arena + %zu;\n", cgen_ident(g->tensors[t].name, id, sizeof id),
                    g->tensors[t].offset);
    fprintf(c->out, "\n    if (n < 1 || n > %s_MAX_LEN) return -1;\n", up);
    fprintf(c->out, "    ids[0] = %s_BOS;\n", up);
    fprintf(c->out, "    for (i = 0; i < n; i++) {\n        if (tokens[i] < 0 || tokens[i] >= %s_VOCAB) return -2;\n", up);
    fprintf(c->out, "        ids[i + 1] = tokens[i];\n    }\n    np = (size_t)n + 1;\n\n");
    int block = -1;
    for (int k = 0; k < g->nops; k++) {
        const GraphOp *op = &g->ops[k];
        const char *out = cgen_ident(g->tensors[op->out].name, id, sizeof id);
        const char *a = op->in[0] >= 0 ? cgen_ident(g->tensors[op->in[0]].name, id2, sizeof id2) : NULL;
        char bname[128] = "";
        if (op->in[1] >= 0) cgen_ident(g->tensors[op->in[1]].name, bname, sizeof bname);
        int bi = -1;
        if (sscanf(g->tensors[op->out].name, "b%d.", &bi) == 1 && bi != block) {
            block = bi;
            const ModelBlock *b = &m->blocks[bi];
            fprintf(c->out, "\n    /* block %d: %s, computes", bi, b->kind == BLOCK_MLP ? "MLP" : "attention");
            for (int q = 0; q < b->nparts; q++) fprintf(c->out, " %s", b->parts[q]);
            fprintf(c->out, " */\n");
        }
        switch (op->kind) {
        case G_EMBED:
            if (op->vals) {
                fprintf(c->out, "    /* embeddings (compressed rows): 0 + token row + position row */\n");
                fprintf(c->out, "    for (p = 0; p < np; p++) {\n        float *row = %s + p * %d;\n        int k;\n", out, m->dim);
                fprintf(c->out, "        memset(row, 0, sizeof(float) * %d);\n", m->dim);
                fprintf(c->out, "        for (k = %s_tok_rowptr[ids[p]]; k < %s_tok_rowptr[ids[p] + 1]; k++) row[%s_tok_colidx[k]] += %s_tok_vals[k];\n", P, P, P, P);
                fprintf(c->out, "        for (k = %s_pos_rowptr[p]; k < %s_pos_rowptr[p + 1]; k++) row[%s_pos_colidx[k]] += %s_pos_vals[k];\n    }\n", P, P, P, P);
                break;
            }
            fprintf(c->out, "    /* embeddings: token row + position row */\n");
            fprintf(c->out, "    for (p = 0; p < np; p++)\n");
            fprintf(c->out, "        tfmcrt_add(%s + p * %d, %s_tok_emb + (size_t)ids[p] * %d, %s_pos_emb + p * %d, %d);\n",
                    out, m->dim, P, m->dim, P, m->dim, m->dim);
            break;
        case G_LINEAR: {
            char w[128];
            cgen_ident(g->tensors[op->out].name, w, sizeof w);
            if (unrolled(c, op) && op->in[1] >= 0) {
                fprintf(c->out, "    %s_lin_%s(%s, %s, %s, np);  /* added to the residual */\n", P, w, out, bname, a);
                break;
            }
            if (unrolled(c, op)) {
                fprintf(c->out, "    %s_lin_%s(%s, %s, np);\n", P, w, out, a);
                break;
            }
            if (op->vals && op->in[1] >= 0) {
                fprintf(c->out, "    tfmcrt_linear_csr_acc(%s, %s, %s, np, %s_w_%s_rowptr, %s_w_%s_colidx, %s_w_%s_vals, %s%s%s, %d, %d);\n",
                        out, bname, a, P, w, P, w, P, w, op->b ? P : "NULL", op->b ? "_b_" : "", op->b ? w : "", op->rows,
                        op->cols);
                break;
            }
            if (op->vals)
                fprintf(c->out, "    tfmcrt_linear_csr(%s, %s, np, %s_w_%s_rowptr, %s_w_%s_colidx, %s_w_%s_vals, ", out, a, P, w,
                        P, w, P, w);
            else
                fprintf(c->out, "    tfmcrt_linear(%s, %s, np, %s_w_%s, ", out, a, P, w);
            if (op->b) fprintf(c->out, "%s_b_%s", P, w); else fprintf(c->out, "NULL");
            fprintf(c->out, ", %d, %d);\n", op->rows, op->cols);
            break;
        }
        case G_ACT:
            fprintf(c->out, "    tfmcrt_copy(%s, %s, np * %d);\n", out, a, g->tensors[op->out].cols);
            if (op->act == ACT_RELU) fprintf(c->out, "    tfmcrt_relu(%s, np * %d);\n", out, g->tensors[op->out].cols);
            else fprintf(c->out, "    tfmcrt_act(%s, np * %d, %s);\n", out, g->tensors[op->out].cols, cgen_act_name(op->act));
            break;
        case G_ADD:
            fprintf(c->out, "    tfmcrt_add(%s, %s, %s, np * %d);  /* %s */\n", out, a, bname, g->tensors[op->out].cols,
                    op->comment);
            break;
        case G_SCORES:
            fprintf(c->out, "    tfmcrt_scores(%s, %s, %s, np, %d, %af, %d);  /* head: %s */\n", out, a, bname, op->rows,
                    (double)op->scale, op->causal ? 1 : 0, op->comment);
            break;
        case G_SOFTMAX:
            fprintf(c->out, "    tfmcrt_copy(%s, %s, np * np);\n", out, a);
            fprintf(c->out, "    tfmcrt_softmax_rows(%s, np, %d);\n", out, op->causal ? 1 : 0);
            break;
        case G_MIX: fprintf(c->out, "    tfmcrt_mix(%s, %s, %s, np, %d);\n", out, a, bname, op->rows); break;
        case G_FUSED_ATTENTION: {
            char vname[128];
            cgen_ident(g->tensors[op->in[2]].name, vname, sizeof vname);
            fprintf(c->out, "    tfmcrt_attention(%s, %s, %s, %s, np, %d, %d, %af, %d);  /* head: %s */\n", out, a, bname, vname,
                    op->rows, op->cols, (double)op->scale, op->causal ? 1 : 0, op->comment);
            break;
        }
        case G_NORM: case G_GLU: case G_ROPE: case G_KV_STORE: case G_ATTEND: case G_MOE: break;
        case G_MHA_SCORES: case G_MHA_SOFTMAX: case G_MHA_MIX: case G_SLICE: break;
        }
    }
    const char *res = cgen_ident(g->tensors[g->output].name, id, sizeof id);
    fprintf(c->out, "\n    /* decode positions 1..n (position 0 is BOS) */\n");
    fprintf(c->out, "    for (i = 0; i < n; i++) {\n        const float *row = %s + (size_t)(i + 1) * %d;\n", res, m->dim);
    if (cat) {
        fprintf(c->out, "        int best = -1, v;\n        float bv = 0.5f;  /* undefined unless a value holds more than half */\n");
        fprintf(c->out, "        for (v = 0; v < %d; v++)\n", m->nout);
        fprintf(c->out, "            if (row[%s_value_dims[v]] > bv) {\n                bv = row[%s_value_dims[v]];\n"
                        "                best = v;\n            }\n        out[i] = best;\n", P, P);
    } else {
        fprintf(c->out, "        out[i] = row[%d];\n", m->out_dim);
    }
    fprintf(c->out, "    }\n    return 0;\n}\n\n");
}

static void emit_main(Cgen *c)
{
    const Model *m = c->m;
    const char *P = c->P;
    char up[128];
    cgen_upper(P, up, sizeof up);
    bool cat = m->out_kind == OUT_CATEGORICAL;
    fprintf(c->out,
            "/* main: tokens from the command line (one sequence) or one sequence per line of standard\n"
            " * input; one output line each; a bad line gives an empty line, an error on standard error,\n"
            " * and exit status 1 at the end. */\n"
            "static float %s_arena[%s_ARENA_FLOATS];\n\n"
            "static int %s_run_line(%s_ctx *ctx, char **words, int count, long lineno)\n{\n"
            "    int tokens[%s_MAX_LEN] = { 0 }, i;\n    %s out[%s_MAX_LEN];\n"
            "    const char *where = lineno > 0 ? \"input line \" : \"input\";\n"
            "    char num[32] = \"\";\n"
            "    if (lineno > 0) sprintf(num, \"%%ld\", lineno);\n"
            "    if (count == 0) {\n"
            "        printf(\"\\n\");\n"
            "        fprintf(stderr, \"%%s%%s: empty input: a sequence needs at least one token\\n\", where, num);\n"
            "        return 1;\n    }\n"
            "    if (count > %s_MAX_LEN) {\n"
            "        printf(\"\\n\");\n"
            "        fprintf(stderr, \"%%s%%s: the sequence has %%d tokens, more than max_len %%d\\n\", where, num, count, %s_MAX_LEN);\n"
            "        return 1;\n    }\n"
            "    for (i = 0; i < count; i++) {\n"
            "        tokens[i] = %s_encode(words[i]);\n"
            "        if (tokens[i] < 0) {\n"
            "            printf(\"\\n\");\n"
            "            fprintf(stderr, \"%%s%%s: unknown token `%%s`\\n\", where, num, words[i]);\n"
            "            return 1;\n        }\n    }\n"
            "    %s_forward(ctx, tokens, count, out);\n"
            "    for (i = 0; i < count; i++)\n",
            P, up, P, P, up, cat ? "int" : "float", up, up, up, P, P);
    if (cat) fprintf(c->out, "        printf(\"%%s%%s\", i ? \" \" : \"\", %s_value_name(out[i]));\n", P);
    else
        fprintf(c->out, "        if (%s_snap(out[i]) >= 0) printf(\"%%s%%s\", i ? \" \" : \"\", %s_values[%s_snap(out[i])]);\n"
                        "        else printf(\"%%s%%.9g\", i ? \" \" : \"\", out[i] < 1e-30f && out[i] > -1e-30f ? 0.0 : (double)out[i]);\n",
                P, P, P);
    fprintf(c->out,
            "    printf(\"\\n\");\n    return 0;\n}\n\n"
            "int main(int argc, char **argv)\n{\n"
            "    static char line[65536];\n    char *words[%s_MAX_LEN + 1];\n"
            "    %s_ctx ctx;\n    int status = 0, first = 1;\n    long lineno = 0;\n"
            "    if (%s_init(&ctx, %s_arena, sizeof %s_arena) != 0) return 1;\n"
            "    /* --threads N[,D] as a model's main takes it: a RASP transformer is small and runs on one */\n"
            "    if (argc > 2 && strcmp(argv[1], \"--threads\") == 0) first = 3;\n"
            "    if (argc > first && strcmp(argv[first], \"--\") == 0) first++;\n"
            "    if (argc > first) return %s_run_line(&ctx, argv + first, argc - first, 0);\n",
            up, P, P, P, P, P);
    char call[256];
    snprintf(call, sizeof call, "%s_run_line(&ctx, words, count, lineno)", P);
    cgen_emit_line_reader(c, call, false);
}

bool cgen_emit(const Graph *g, const CgenOptions *o, FILE *out)
{
    if (g->model->declared) {
        cgen_emit_model(g, o, out);
        return !ferror(out) && !(o->weights && ferror(o->weights));
    }
    Cgen c = { g, g->model, o, out, o->weights ? o->weights : out, o->prefix, NULL, NULL, 0, 0 };
    emit_header(&c);
    if (o->weights)
        fprintf(o->weights, "/* Weights of `%s`, generated by tfmc %s; compile and link with %s.c. */\n\n", c.P,
                TFMC_VERSION, c.P);
    emit_weights(&c);
    emit_tables(&c);
    emit_api(&c);
    emit_forward(&c);
    if (o->main) emit_main(&c);
    return !ferror(out) && !(o->weights && ferror(o->weights));
}
