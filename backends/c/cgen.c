/* cgen.c: the portable C backend. Writes one readable C99 file from a kernel program: the
 * weights as exact hexadecimal float arrays, a fixed memory plan in a caller-provided arena (no
 * malloc), a run function that reads top to bottom as the program's kernel calls, and around it
 * the entry points of a RASP program (cgen_rasp.c) or a declared model (cgen_model.c), with
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

void cgen_upper(const char *p, char *buf, size_t cap)
{
    size_t i = 0;
    for (; p[i] && i + 1 < cap; i++) buf[i] = (char)((p[i] >= 'a' && p[i] <= 'z') ? p[i] - 32 : p[i]);
    buf[i] = '\0';
}

/* Large weight arrays as the bytes of their floats in a string literal, which compilers read an
 * order of magnitude faster, and in far less memory, than a list of float constants: each byte
 * printable as itself (but ", \\ and ?, against trigraphs), else as an octal escape, as short as
 * the next character allows. The array is a union of the bytes and the floats, so it is read as
 * floats with no copy and float alignment. Once per file, before the first: the guards. */
static void bytes_prelude(Cgen *c)
{
    if (c->bytes_prelude) return;
    c->bytes_prelude = true;
    fprintf(c->wf,
            "/* The large weight arrays below are the little-endian bytes of their floats, in string\n"
            " * literals longer than the 4095 characters C99 promises (GCC and clang take any length). */\n"
            "#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__\n"
            "#error \"the weights here are little-endian bytes: generate this file again with --byte-arrays=off\"\n"
            "#endif\n"
            "#if defined(__GNUC__)\n#pragma GCC diagnostic ignored \"-Woverlength-strings\"\n#endif\n\n");
}

void cgen_byte_string(FILE *f, const void *data, size_t bytes)
{
    const unsigned char *b = data;
    char line[160]; /* one line of the literal, written at once: a quarter of the time of putc */
    size_t len = 0;
    fputs("\n    \"", f);
    for (size_t i = 0; i < bytes; i++) {
        unsigned c = b[i];
        if (len >= 120) {
            fwrite(line, 1, len, f);
            fputs("\"\n    \"", f);
            len = 0;
        }
        if (c >= 32 && c < 127 && c != '"' && c != '\\' && c != '?') {
            line[len++] = (char)c;
            continue;
        }
        /* an octal escape, as short as the next character allows (three digits before a digit) */
        bool digit_next = i + 1 < bytes && b[i + 1] >= '0' && b[i + 1] <= '7' && len < 119;
        line[len++] = '\\';
        if (digit_next || c >= 64) line[len++] = (char)('0' + (c >> 6));
        if (digit_next || c >= 8) line[len++] = (char)('0' + (c >> 3 & 7));
        line[len++] = (char)('0' + (c & 7));
    }
    fwrite(line, 1, len, f);
    fputs("\"", f);
}

/* Weights as hexadecimal floats (exact, no decimal rounding; zeros as 0), or, from
 * o->byte_arrays floats on, as a byte string. */
void cgen_weights_array(Cgen *c, const char *name, const float *w, size_t n, const char *comment)
{
    bool sep = c->o->weights != NULL;
    long threshold = c->o->byte_arrays == 0 ? CGEN_BYTE_ARRAYS : c->o->byte_arrays;
    if (threshold > 0 && n >= (size_t)threshold) {
        bytes_prelude(c);
        if (sep)
            fprintf(c->out, "extern const union %s_bytes { unsigned char b[%zu]; float f[%zu]; } %s_u;\n#define %s (%s_u.f)\n",
                    name, n * sizeof(float), n, name, name, name);
        fprintf(c->wf, "/* %s, as bytes */\n%sconst union %s_bytes { unsigned char b[%zu]; float f[%zu]; } %s_u = {", comment,
                sep ? "" : "static ", name, n * sizeof(float), n, name);
        cgen_byte_string(c->wf, w, n * sizeof(float));
        fprintf(c->wf, "\n};\n");
        if (!sep) fprintf(c->wf, "#define %s (%s_u.f)\n", name, name);
        fputc('\n', c->wf);
        return;
    }
    if (sep) fprintf(c->out, "extern const float %s[%zu];\n", name, n);
    fprintf(c->wf, "/* %s */\n%sconst float %s[%zu] = {", comment, sep ? "" : "static ", name, n);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) fprintf(c->wf, "\n   ");
        if (w[i] == 0.0f) fprintf(c->wf, " 0,");
        else fprintf(c->wf, " %af,", (double)w[i]);
    }
    fprintf(c->wf, "\n};\n\n");
}

/* An int8 constant's values: decimal numbers, or from o->byte_arrays values on a byte string (a
 * union of the bytes and the int8_t values, as for floats). */
static void int8_array(Cgen *c, const char *name, const int8_t *q, size_t n, const char *comment)
{
    bool sep = c->o->weights != NULL;
    long threshold = c->o->byte_arrays == 0 ? CGEN_BYTE_ARRAYS : c->o->byte_arrays;
    if (threshold > 0 && n >= (size_t)threshold) {
        bytes_prelude(c);
        if (sep)
            fprintf(c->out, "extern const union %s_bytes { unsigned char b[%zu]; int8_t q[%zu]; } %s_u;\n#define %s (%s_u.q)\n",
                    name, n, n, name, name, name);
        fprintf(c->wf, "/* %s, as bytes */\n%sconst union %s_bytes { unsigned char b[%zu]; int8_t q[%zu]; } %s_u = {",
                comment, sep ? "" : "static ", name, n, n, name);
        cgen_byte_string(c->wf, q, n);
        fprintf(c->wf, "\n};\n");
        if (!sep) fprintf(c->wf, "#define %s (%s_u.q)\n", name, name);
        fputc('\n', c->wf);
        return;
    }
    if (sep) fprintf(c->out, "extern const int8_t %s[%zu];\n", name, n);
    fprintf(c->wf, "/* %s */\n%sconst int8_t %s[%zu] = {", comment, sep ? "" : "static ", name, n);
    for (size_t i = 0; i < n; i++) fprintf(c->wf, "%s %d,", i % 16 == 0 ? "\n   " : "", (int)q[i]);
    fprintf(c->wf, "\n};\n\n");
}

static void int_array(Cgen *c, const char *name, const int *v, size_t n)
{
    bool sep = c->o->weights != NULL;
    if (sep) fprintf(c->out, "extern const int %s[%zu];\n", name, n);
    fprintf(c->wf, "%sconst int %s[%zu] = {", sep ? "" : "static ", name, n);
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

static const EntryPoint *entry(const Cgen *c, const char *name)
{
    for (int i = 0; i < c->k->nentries; i++)
        if (!strcmp(c->k->entries[i].name, name)) return &c->k->entries[i];
    return NULL;
}

void cgen_prototype(Cgen *c, const char *name)
{
    const EntryPoint *e = entry(c, name);
    char buf[160];
    if (!e) return;
    const char *t = ctype_c(e->result, c->P, buf, sizeof buf);
    fprintf(c->out, "%s%s%s_%s(", t, t[strlen(t) - 1] == '*' ? "" : " ", c->P, e->name);
    for (int i = 0; i < e->nparams; i++) {
        t = ctype_c(e->params[i], c->P, buf, sizeof buf);
        fprintf(c->out, "%s%s%s%s", i ? ", " : "", t, t[strlen(t) - 1] == '*' ? "" : " ", e->param_names[i]);
    }
    if (e->nparams == 0) fputs("void", c->out);
    fputc(')', c->out);
}

void cgen_entry_doc(Cgen *c, const char *name)
{
    const EntryPoint *e = entry(c, name);
    if (!e) return;
    char up[128];
    cgen_upper(c->P, up, sizeof up);
    fputs("/* ", c->out);
    for (const char *s = e->doc; *s; s++) {
        if (!strncmp(s, "NAME", 4)) {
            fputs(up, c->out);
            s += 3;
        } else {
            fputc(*s, c->out);
        }
    }
    fputs(" */\n", c->out);
}

void cgen_entry(Cgen *c, const char *name)
{
    if (!entry(c, name)) return;
    cgen_entry_doc(c, name);
    cgen_prototype(c, name);
    fputs(";\n", c->out);
    cgen_prototype(c, name);
    fputc('\n', c->out);
}

/* ------------------------------------------------------------ constants */

/* Weight-specialised code: a compressed matrix with few non-zeros becomes straight-line C with
 * its weights as constants (a weight of 1 is a plain add). Same terms, same order as
 * tfmcrt_linear_csr, so the same numbers. Not with --weights=separate (the weights are the code). */
enum { UNROLL_MAX_NNZ = 2048 };

static bool unrollable(const Cgen *c, const KCall *k)
{
    if (c->o->weights || (k->kernel != K_LINEAR_CSR && k->kernel != K_LINEAR_CSR_ACC) || k->head) return false;
    int w = k->args[k->kernel == K_LINEAR_CSR ? 6 : 7].index;
    return c->g->consts[w].nnz <= UNROLL_MAX_NNZ;
}

static void emit_unrolled(Cgen *c, const KCall *k)
{
    const Graph *g = c->g;
    bool acc = k->kernel == K_LINEAR_CSR_ACC; /* out = acc + (W x + b): only the rows with terms change */
    const GraphConst *w = &g->consts[k->args[acc ? 7 : 6].index];
    int bi = k->args[acc ? 8 : 7].index;
    const float *bias = bi >= 0 ? g->consts[bi].data : NULL;
    char id[160];
    const char *t = g->tensors[g->ops[k->op].out].name;
    fprintf(c->out, "/* %s: %s [%d][%d], %d non-zeros, specialised%s */\n", t, w->name, w->rows, w->cols, w->nnz,
            acc ? ", added to the residual" : "");
    fprintf(c->out, "static void %s_lin_%s(float *out, %sconst float *in, size_t n)\n{\n    size_t i;\n", c->P,
            cgen_ident(t, id, sizeof id), acc ? "const float *acc, " : "");
    fprintf(c->out, "    for (i = 0; i < n; i++) {\n        const float *x = in + i * %d;\n        float *y = out + i * %d;\n",
            w->cols, w->rows);
    if (acc) fprintf(c->out, "        const float *a = acc + i * %d;\n        if (y != a) memcpy(y, a, sizeof(float) * %d);\n",
                     w->rows, w->rows);
    for (int r = 0; r < w->rows; r++) {
        if (acc && !bias && w->rowptr[r] == w->rowptr[r + 1]) continue;
        if (acc) fprintf(c->out, "        y[%d] = y[%d] + (", r, r);
        else fprintf(c->out, "        y[%d] = ", r);
        if (bias) fprintf(c->out, "%af", (double)bias[r]);
        else fprintf(c->out, "0.0f");
        for (int q = w->rowptr[r]; q < w->rowptr[r + 1]; q++) {
            float v = w->vals[q];
            if (v == 1.0f) fprintf(c->out, " + x[%d]", w->colidx[q]);
            else if (v == -1.0f) fprintf(c->out, " - x[%d]", w->colidx[q]);
            else fprintf(c->out, " + x[%d] * %af", w->colidx[q], (double)v);
        }
        fprintf(c->out, acc ? ");\n" : ";\n");
    }
    fprintf(c->out, "    }\n}\n\n");
}

/* Constant i as C arrays: NAME (dense; packed: in tfmcrt_pack's layout), or NAME_vals,
 * NAME_rowptr, NAME_colidx. */
static void emit_const(Cgen *c, int i)
{
    const GraphConst *k = &c->g->consts[i];
    char comment[256], name[320];
    if (k->cols) snprintf(comment, sizeof comment, "%s [%d][%d]", k->name, k->rows, k->cols);
    else snprintf(comment, sizeof comment, "%s [%d]", k->name, k->rows);
    if (c->packed[i]) {
        size_t rows = (size_t)k->rows, cols = (size_t)k->cols, n = tfmcrt_packed_floats(rows, cols);
        float *p = malloc((n ? n : 1) * sizeof *p);
        if (!p) {
            c->failed = true;
            return;
        }
        tfmcrt_pack(p, k->data, rows, cols);
        snprintf(comment, sizeof comment,
                 "%s [%d][%d], packed: panels of 16 rows, each [%d][16] (tfmcrt_pack; zero rows pad the last)", k->name,
                 k->rows, k->cols, k->cols);
        cgen_weights_array(c, c->cname[i], p, n, comment);
        free(p);
        return;
    }
    if (k->q8) {
        size_t groups = (size_t)graph_q8_groups(k);
        snprintf(name, sizeof name, "%s_q8", c->cname[i]);
        char full[1024];
        snprintf(full, sizeof full, "%s in int8: W[r][c] = %s[r * %d + c] * %s_scale[r * %zu + c / %d]", comment, name,
                 k->cols, c->cname[i], groups, k->q8_group);
        int8_array(c, name, k->q8, (size_t)k->rows * (size_t)k->cols, full);
        snprintf(name, sizeof name, "%s_scale", c->cname[i]);
        snprintf(full, sizeof full, "%s: a scale per row and group of %d inputs, [%d][%zu]", k->name, k->q8_group,
                 k->rows, groups);
        cgen_weights_array(c, name, k->q8_scale, (size_t)k->rows * groups, full);
        return;
    }
    if (!k->vals) {
        cgen_weights_array(c, c->cname[i], k->data, (size_t)k->rows * (size_t)(k->cols ? k->cols : 1), comment);
        return;
    }
    char full[320];
    snprintf(full, sizeof full, "%s, %d non-zeros in compressed rows", comment, k->nnz);
    snprintf(name, sizeof name, "%s_vals", c->cname[i]);
    cgen_weights_array(c, name, k->vals, (size_t)(k->nnz ? k->nnz : 1), full);
    snprintf(name, sizeof name, "%s_rowptr", c->cname[i]);
    int_array(c, name, k->rowptr, (size_t)k->rows + 1);
    snprintf(name, sizeof name, "%s_colidx", c->cname[i]);
    int_array(c, name, k->colidx, (size_t)(k->nnz ? k->nnz : 1));
}

static const char *score_name(ScoreKind s)
{
    static const char *const names[] = { "TFMCRT_SOFTMAX", "TFMCRT_SOFTMAX1", "TFMCRT_LINEAR", "TFMCRT_HARD" };
    return names[s];
}

/* The argument kinds that name a constant's arrays. */
#define CONST_ARG(k) ((k) == KA_CONST || (k) == KA_ROWPTR || (k) == KA_COLIDX || (k) == KA_Q8 || (k) == KA_Q8_SCALE)

void cgen_emit_constants(Cgen *c)
{
    const Graph *g = c->g;
    const KProgram *k = c->k;
    Arena *a = c->o->arena;
    int nc = g->nconsts;
    c->cname = ARENA_ARRAY(a, const char *, nc ? nc : 1);
    c->unrolled = ARENA_ARRAY(a, bool, k->ncalls ? k->ncalls : 1);
    bool *needed = ARENA_ARRAY(a, bool, nc ? nc : 1), *done = ARENA_ARRAY(a, bool, nc ? nc : 1);
    bool *options = ARENA_ARRAY(a, bool, g->nops ? g->nops : 1);
    /* SIMD: a dense weight every use of which is a linear's W is written packed */
    int *uses = ARENA_ARRAY(a, int, nc ? nc : 1), *linear_uses = ARENA_ARRAY(a, int, nc ? nc : 1);
    c->packed = ARENA_ARRAY(a, bool, nc ? nc : 1);
    for (int i = 0; i < k->ncalls; i++)
        for (int j = 0; j < k->calls[i].nargs; j++) {
            const KArg *x = &k->calls[i].args[j];
            if (CONST_ARG(x->kind) && x->index >= 0) {
                uses[x->index]++;
                linear_uses[x->index] += k->calls[i].kernel == K_LINEAR && j == 4;
            }
            if (x->kind == KA_EXPERTS)
                for (int q = 0; q < g->ops[x->index].nconsts; q++)
                    if (g->ops[x->index].consts[q] >= 0) uses[g->ops[x->index].consts[q]]++;
        }
    for (int i = 0; i < nc; i++)
        c->packed[i] = c->o->target && g->consts[i].data && g->consts[i].cols && uses[i] && uses[i] == linear_uses[i];
    for (int i = 0; i < k->ncalls; i++) {
        const KCall *call = &k->calls[i];
        c->unrolled[i] = unrollable(c, call);
        if (c->unrolled[i]) continue; /* its weights are in its code */
        for (int j = 0; j < call->nargs; j++) {
            const KArg *x = &call->args[j];
            if (CONST_ARG(x->kind) && x->index >= 0) needed[x->index] = true;
            if (x->kind == KA_EXPERTS) {
                const GraphOp *o = &g->ops[x->index];
                for (int q = 1; q < o->nconsts; q++)
                    if (o->consts[q] >= 0) needed[o->consts[q]] = true;
            }
        }
    }
    /* names: the constant's, unique among those written (a suffix when two would read the same) */
    char id[256];
    for (int i = 0; i < nc; i++) {
        const char *base = arena_printf(a, "%s_%s", c->P, cgen_ident(g->consts[i].name, id, sizeof id));
        const char *name = base;
        for (int s = 2; needed[i]; s++) {
            bool taken = false;
            for (int j = 0; j < i && !taken; j++) taken = needed[j] && !strcmp(c->cname[j], name);
            if (!taken) break;
            name = arena_printf(a, "%s_%d", base, s);
        }
        c->cname[i] = name;
    }
    if (c->o->weights) {
        fprintf(c->wf, "/* Weights of `%s`, generated by tfmc %s; compile and link with its code. */\n\n", c->P,
                TFMC_VERSION);
        bool q8 = false;
        for (int i = 0; i < nc; i++) q8 |= needed[i] && g->consts[i].q8;
        if (q8) fprintf(c->wf, "#include <stdint.h> /* int8_t: the int8 weights */\n\n");
    }
    for (int i = 0; i < k->ncalls; i++) {
        const KCall *call = &k->calls[i];
        for (int j = 0; j < call->nargs; j++) {
            const KArg *x = &call->args[j];
            int list[1] = { x->index };
            const int *cs = list;
            int ncs = 0;
            if (CONST_ARG(x->kind) && x->index >= 0) ncs = 1;
            if (x->kind == KA_EXPERTS) {
                cs = g->ops[x->index].consts + 1;
                ncs = g->ops[x->index].nconsts - 1;
            }
            for (int q = 0; q < ncs; q++)
                if (cs[q] >= 0 && needed[cs[q]] && !done[cs[q]]) {
                    emit_const(c, cs[q]);
                    done[cs[q]] = true;
                }
            if ((x->kind == KA_ATTENTION || x->kind == KA_EXPERTS) && !options[x->index]) {
                const GraphOp *o = &g->ops[x->index];
                const char *t = cgen_ident(g->tensors[o->out].name, id, sizeof id);
                options[x->index] = true;
                if (x->kind == KA_ATTENTION) {
                    const GraphAttention *at = &o->attn;
                    fprintf(c->out, "static const TfmcrtAttention %s_%s_options = { %d, %d, %d, %s, %d, %d, %d, %af };\n\n",
                            c->P, t, at->heads, at->kv_heads, at->head_dim, score_name(at->score), at->causal ? 1 : 0,
                            at->window, at->alibi ? 1 : 0, (double)at->scale);
                    continue;
                }
                fprintf(c->out, "static const TfmcrtFfn %s_%s_experts[%d] = {\n", c->P, t, o->moe.experts);
                for (int e = 0; e < o->moe.experts; e++) {
                    fputs("    {", c->out);
                    for (int q = 0; q < 6; q++) {
                        int ci = o->consts[1 + 6 * e + q];
                        fprintf(c->out, "%s %s", q ? "," : "", ci >= 0 ? c->cname[ci] : "NULL");
                    }
                    fputs(" },\n", c->out);
                }
                fprintf(c->out, "};\n\n");
            }
        }
    }
    for (int i = 0; i < k->ncalls; i++)
        if (c->unrolled[i]) emit_unrolled(c, &k->calls[i]);
}

/* ------------------------------------------------------------ the run function */

static void emit_arg(Cgen *c, const KCall *call, const KArg *x)
{
    const Graph *g = c->g;
    char id[256];
    const char *n = call->head ? "hn" : "n";
    switch (x->kind) {
    case KA_EXEC: fputs("ex", c->out); return;
    case KA_TENSOR:
        fputs(cgen_ident(g->tensors[x->index].name, id, sizeof id), c->out);
        if (call->head) fprintf(c->out, " + hs * %d", g->tensors[x->index].cols);
        return;
    case KA_CACHE: fputs(cgen_ident(g->tensors[x->index].name, id, sizeof id), c->out); return;
    case KA_SCRATCH: fputs("scratch", c->out); return;
    case KA_CONST:
        if (x->index < 0) fputs("NULL", c->out);
        else fprintf(c->out, "%s%s", c->cname[x->index], g->consts[x->index].vals ? "_vals" : "");
        return;
    case KA_ROWPTR: fprintf(c->out, "%s_rowptr", c->cname[x->index]); return;
    case KA_COLIDX: fprintf(c->out, "%s_colidx", c->cname[x->index]); return;
    case KA_Q8: fprintf(c->out, "%s_q8", c->cname[x->index]); return;
    case KA_Q8_SCALE: fprintf(c->out, "%s_scale", c->cname[x->index]); return;
    case KA_IDS: fputs("ids", c->out); return;
    case KA_N: fputs(n, c->out); return;
    case KA_POS0: fputs("pos0", c->out); return;
    case KA_COUNT:
        if (x->power == 2) fprintf(c->out, "%s * %s", n, n);
        else fprintf(c->out, "%s * %ld", n, x->value);
        if (x->power == 2 && x->value != 1) fprintf(c->out, " * %ld", x->value);
        return;
    case KA_SIZE: case KA_INT: fprintf(c->out, "%ld", x->value); return;
    case KA_ENUM: fputs(x->name, c->out); return;
    case KA_FLOAT: fprintf(c->out, "%af", (double)x->f); return;
    case KA_ATTENTION:
        fprintf(c->out, "&%s_%s_options", c->P, cgen_ident(g->tensors[g->ops[x->index].out].name, id, sizeof id));
        return;
    case KA_EXPERTS:
        fprintf(c->out, "%s_%s_experts", c->P, cgen_ident(g->tensors[g->ops[x->index].out].name, id, sizeof id));
        return;
    }
}

/* The comment that opens a layer's calls. */
static void layer_comment(Cgen *c, int layer)
{
    const Model *m = c->m;
    const ModelBlock *b = &m->blocks[layer];
    fprintf(c->out, "\n    /* %s", c->g->layer_names[layer]);
    if (!m->declared) {
        fprintf(c->out, ": %s, computes", b->kind == BLOCK_MLP ? "MLP" : "attention");
        for (int q = 0; q < b->nparts; q++) fprintf(c->out, " %s", b->parts[q]);
    } else if (b->shared_with >= 0) {
        fprintf(c->out, " (the weights of %s)", c->g->layer_names[b->shared_with]);
    }
    fprintf(c->out, " */\n");
}

void cgen_emit_run(Cgen *c)
{
    const Graph *g = c->g;
    const KProgram *k = c->k;
    char id[256];
    bool *used = ARENA_ARRAY(c->o->arena, bool, g->ntensors ? g->ntensors : 1);
    bool head = false, scratch = false, ex = false, ids = false, pos0 = false;
    for (int i = 0; i < k->ncalls; i++) {
        head |= k->calls[i].head;
        for (int j = 0; j < k->calls[i].nargs; j++) {
            const KArg *x = &k->calls[i].args[j];
            if (x->kind == KA_TENSOR || x->kind == KA_CACHE) used[x->index] = true;
            scratch |= x->kind == KA_SCRATCH;
            ex |= x->kind == KA_EXEC && !c->unrolled[i];
            ids |= x->kind == KA_IDS;
            pos0 |= x->kind == KA_POS0;
        }
    }
    fprintf(c->out, "/* The transformer on ids[0..n) at positions pos0..pos0+n-1: the program's kernel calls in\n"
                    " * order, on the arena's tensors. The head (a model's final norm and logits) runs on the last\n"
                    " * hn positions only (n: all, 0: none), in their rows. The kernels with an execution context run\n"
                    " * on its threads (NULL: this one), with the same results at every count. */\n");
    fprintf(c->out, "static void %s_run(%s_ctx *ctx, const TfmcrtExec *ex, const int *ids, size_t n, size_t pos0, size_t hn)\n{\n",
            c->P, c->P);
    for (int t = 0; t < g->ntensors; t++)
        if (used[t])
            fprintf(c->out, "    float *%s = ctx->arena + %zu;\n", cgen_ident(g->tensors[t].name, id, sizeof id),
                    g->tensors[t].offset);
    if (scratch) fprintf(c->out, "    float *scratch = ctx->arena + %zu;\n", g->scratch);
    if (head) fprintf(c->out, "    size_t hs = n - hn; /* the rows before the head's */\n");
    /* the parameters no call reads (a RASP program has no head; one with no threaded kernel) */
    if (!ex) fprintf(c->out, "    (void)ex;\n");
    if (!ids) fprintf(c->out, "    (void)ids;\n");
    if (!pos0) fprintf(c->out, "    (void)pos0;\n");
    if (!head) fprintf(c->out, "    (void)hn;\n");
    int layer = -1;
    bool in_head = false;
    for (int i = 0; i < k->ncalls; i++) {
        const KCall *call = &k->calls[i];
        const GraphOp *o = &g->ops[call->op];
        if (o->layer >= 0 && o->layer != layer) layer_comment(c, layer = o->layer);
        if (call->head && !in_head) fprintf(c->out, "\n    /* the head, for the last hn positions */\n");
        in_head = call->head;
        if (i == 0 || k->calls[i - 1].op != call->op) {
            if (o->kind == G_EMBED) fprintf(c->out, "    /* %s */\n", o->comment);
        }
        if (c->unrolled[i]) {
            bool acc = call->kernel == K_LINEAR_CSR_ACC;
            fprintf(c->out, "    %s_lin_%s(", c->P, cgen_ident(g->tensors[o->out].name, id, sizeof id));
            emit_arg(c, call, &call->args[1]);
            fputs(", ", c->out);
            emit_arg(c, call, &call->args[2]);
            if (acc) {
                fputs(", ", c->out);
                emit_arg(c, call, &call->args[3]);
            }
            fputs(", n);", c->out);
            fputs(acc ? "  /* added to the residual */\n" : "\n", c->out);
            continue;
        }
        bool packed = call->kernel == K_LINEAR && call->args[4].index >= 0 && c->packed[call->args[4].index];
        fprintf(c->out, "    %s%s(", call->head ? "if (hn) " : "", packed ? "tfmcrt_linear_packed_ex" : kernel_info[call->kernel].name);
        for (int j = 0; j < call->nargs; j++) {
            if (j) fputs(", ", c->out);
            emit_arg(c, call, &call->args[j]);
        }
        fputs(");", c->out);
        if (o->comment && o->kind != G_LINEAR && o->kind != G_NORM && o->kind != G_EMBED && call->kernel != K_COPY)
            fprintf(c->out, "  /* %s */", o->comment);
        fputc('\n', c->out);
    }
    fprintf(c->out, "}\n\n");
}

bool cgen_emit(const KProgram *k, const CgenOptions *o, FILE *out)
{
    Cgen c = { k, k->g, k->g->model, o, out, o->weights ? o->weights : out, o->prefix, NULL, NULL, NULL, false, false };
    if (k->g->declared) cgen_emit_model(&c);
    else cgen_emit_rasp(&c);
    return !c.failed && !ferror(out) && !(o->weights && ferror(o->weights));
}
