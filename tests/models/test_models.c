/* test_models.c: declared models against PyTorch references, and bad weight files.
 *
 * For every tests/fixtures/V.expected.safetensors (made by tests/fixtures/gen.py), load V.tfm,
 * compile it and check a session against the reference: the prefill logits of every position
 * (within 1e-4 x max(1, max|logit|)) and their argmax, a prefill in two pieces, one-token-at-a-time
 * decoding after a reset, and 8 greedy tokens. Then corrupt copies of a fixture's weights in a
 * temporary folder, one problem each, and check that loading fails with a diagnostic that names
 * the file and the tensor or the problem.
 *
 * Usage: test_models [FIXTURES_DIR [VARIANT...]]  (default: the folder given at build time). */
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "ir.h"
#include "tfmc.h"

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "tests/fixtures"
#endif

#define GEN 8 /* greedy tokens in a fixture's `generated` */

static const char *fixtures = FIXTURES_DIR;

/* ------------------------------------------------------------ helpers */

static void report(bool ok, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(bool ok, int line, const char *fmt, ...)
{
    char msg[2048] = "ok";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "  FAIL: %s\n", msg);
    }
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, __FILE__, "", CU_FALSE);
}
#define CHECK(ok, ...) report((ok), __LINE__, __VA_ARGS__)

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *t = realloc(buf, cap);
            if (!t) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = t;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    *size = n;
    return buf;
}

static bool write_all(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* Case-insensitive substring search. */
static bool has_text(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return true;
    }
    return n == 0;
}

/* Every diagnostic of the context as "message (hint)" lines. */
static void diagnostics_text(const TfmcContext *ctx, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < tfmc_diagnostic_count(ctx); i++) {
        const TfmcDiagnostic *d = tfmc_diagnostic(ctx, i);
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%s%s%s", d->message ? d->message : "", d->hint ? " (" : "",
                 d->hint ? d->hint : "", d->hint ? ")\n" : "\n");
    }
}

/* ------------------------------------------------------------ the variants */

static char **variants;
static int nvariants;

typedef struct Expected {
    int n, vocab;
    float *tokens;      /* [n] */
    float *logits;      /* [n][vocab]: every position of a prefill */
    float *step_logits; /* [n][vocab]: the last position of each prefix (NULL: = logits) */
    float *generated;   /* [GEN] */
} Expected;

static void expected_free(Expected *e)
{
    free(e->tokens);
    free(e->logits);
    free(e->step_logits);
    free(e->generated);
    memset(e, 0, sizeof *e);
}

static bool expected_read(const char *path, Expected *e)
{
    char err[512];
    memset(e, 0, sizeof *e);
    bool nomem;
    SafeTensors *st = safetensors_open(path, NULL, &nomem, err, sizeof err);
    if (!st) {
        CHECK(false, "%s: %s", path, err);
        return false;
    }
    int rank;
    long dims[4];
    bool ok = safetensors_shape(st, "logits", &rank, dims) && rank == 2 && dims[0] > 0 && dims[1] > 0;
    if (!ok) CHECK(false, "%s: no logits [n][vocab]", path);
    if (ok) {
        e->n = (int)dims[0];
        e->vocab = (int)dims[1];
        size_t nv = (size_t)e->n * (size_t)e->vocab;
        e->tokens = malloc(sizeof(float) * (size_t)e->n);
        e->logits = malloc(sizeof(float) * nv);
        e->generated = malloc(sizeof(float) * GEN);
        ok = e->tokens && e->logits && e->generated &&
             safetensors_read(st, "tokens", e->n, 0, e->tokens, err, sizeof err) &&
             safetensors_read(st, "logits", e->n, e->vocab, e->logits, err, sizeof err) &&
             safetensors_read(st, "generated", GEN, 0, e->generated, err, sizeof err);
        if (ok && safetensors_has(st, "step_logits")) {
            e->step_logits = malloc(sizeof(float) * nv);
            ok = e->step_logits && safetensors_read(st, "step_logits", e->n, e->vocab, e->step_logits, err, sizeof err);
        }
        if (!ok) CHECK(false, "%s: %s", path, err);
    }
    safetensors_close(st);
    if (!ok) expected_free(e);
    return ok;
}

/* max |a - b| over count floats, and max |b|. */
static double max_diff(const float *a, const float *b, size_t count, double *max_ref)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < count; i++) {
        double x = fabs((double)a[i] - (double)b[i]);
        if (!(x <= d)) d = x; /* NaN sticks */
        if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
    }
    if (max_ref) *max_ref = m;
    return d;
}

/* One sequence through a session on `prefill` and `decode` threads (every kernel cut as finely as
 * it goes: task grain 1): the full prefill's logits into pre[n][V], then after a reset the prefill
 * of the first half without logits and one decode step per remaining token into dec[n - half][V]. */
static bool threaded_logits(TfmcContext *ctx, const TfmcProgram *p, int prefill, int decode, const int *ids, int n,
                            int V, float *pre, float *dec)
{
    TfmcSession *s = NULL;
    TfmcStatus st = tfmc_session_new(ctx, p, &s);
    if (st == TFMC_OK) {
        tfmc_session_set_task_grain(s, 1);
        st = tfmc_session_set_threads(s, prefill, decode);
    }
    if (st == TFMC_OK) st = tfmc_session_prefill(s, ids, (size_t)n, pre);
    tfmc_session_reset(s);
    int half = n / 2;
    if (st == TFMC_OK && half > 0) st = tfmc_session_prefill(s, ids, (size_t)half, NULL);
    for (int i = half; i < n && st == TFMC_OK; i++) st = tfmc_session_decode(s, ids[i], dec + (size_t)(i - half) * V);
    tfmc_session_free(s);
    return st == TFMC_OK;
}

/* Threads never change a result: at 2, 3 and 4 threads (and prefill and decode on different
 * counts) the logits equal those of one thread bit for bit. */
static void check_threads(TfmcContext *ctx, const TfmcProgram *p, const char *name, const int *ids, int n, int V)
{
    size_t nv = (size_t)n * (size_t)V;
    float *pre1 = malloc(sizeof(float) * nv), *dec1 = malloc(sizeof(float) * nv);
    float *pre = malloc(sizeof(float) * nv), *dec = malloc(sizeof(float) * nv);
    static const int counts[][2] = { { 2, 2 }, { 3, 3 }, { 4, 4 }, { 4, 2 }, { 1, 3 } };
    if (!pre1 || !dec1 || !pre || !dec) {
        CHECK(false, "%s: out of memory", name);
    } else if (!threaded_logits(ctx, p, 1, 1, ids, n, V, pre1, dec1)) {
        CHECK(false, "%s: the one-thread run fails", name);
    } else {
        size_t ndec = (size_t)(n - n / 2) * (size_t)V;
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
            int tp = counts[k][0], td = counts[k][1];
            memset(pre, 0, sizeof(float) * nv);
            memset(dec, 0, sizeof(float) * nv);
            bool ok = threaded_logits(ctx, p, tp, td, ids, n, V, pre, dec);
            CHECK(ok, "%s: the run on %d,%d threads fails", name, tp, td);
            if (!ok) continue;
            CHECK(memcmp(pre, pre1, sizeof(float) * nv) == 0, "%s: prefill logits on %d threads differ from 1 thread",
                  name, tp);
            CHECK(memcmp(dec, dec1, sizeof(float) * ndec) == 0, "%s: decode logits on %d threads differ from 1 thread",
                  name, td);
        }
    }
    free(pre1);
    free(dec1);
    free(pre);
    free(dec);
}

static void check_variant(const char *name)
{
    char file[512];
    snprintf(file, sizeof file, "%s.tfm", name);
    char *tfm = path_join(fixtures, file);
    snprintf(file, sizeof file, "%s.expected.safetensors", name);
    char *exp_path = path_join(fixtures, file);
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcSession *s = NULL;
    float *got = NULL, *row = NULL;
    int *ids = NULL;
    Expected e = { 0 };
    if (!tfm || !exp_path || !ctx) {
        CHECK(false, "%s: out of memory", name);
        goto done;
    }
    if (!expected_read(exp_path, &e)) goto done;

    const TfmcProgram *p = NULL;
    TfmcStatus st = tfmc_load_file(ctx, tfm);
    if (st == TFMC_OK) st = tfmc_find_program(ctx, NULL, &p);
    if (st == TFMC_OK) st = tfmc_compile(ctx, p);
    if (st == TFMC_OK) st = tfmc_session_new(ctx, p, &s);
    if (st != TFMC_OK) {
        char diags[4096];
        diagnostics_text(ctx, diags, sizeof diags);
        CHECK(false, "%s: loading %s fails (status %d): %s", name, tfm, (int)st, diags);
        goto done;
    }
    CHECK(tfmc_model_vocab(p) == e.vocab, "%s: vocab %d, the reference has %d", name, tfmc_model_vocab(p), e.vocab);
    if (tfmc_model_vocab(p) != e.vocab) goto done;

    int n = e.n, V = e.vocab;
    size_t nv = (size_t)n * (size_t)V;
    got = malloc(sizeof(float) * nv);
    row = malloc(sizeof(float) * (size_t)V);
    ids = malloc(sizeof(int) * (size_t)n);
    if (!got || !row || !ids) {
        CHECK(false, "%s: out of memory", name);
        goto done;
    }
    for (int i = 0; i < n; i++) ids[i] = (int)e.tokens[i];

    /* prefill: every position */
    double max_ref;
    st = tfmc_session_prefill(s, ids, (size_t)n, got);
    CHECK(st == TFMC_OK, "%s: prefill fails (status %d)", name, (int)st);
    if (st != TFMC_OK) goto done;
    double diff = max_diff(got, e.logits, nv, &max_ref);
    double tol = 1e-4 * (max_ref > 1 ? max_ref : 1);
    CHECK(diff <= tol, "%s: prefill logits differ from PyTorch by %.3g (tolerance %.3g)", name, diff, tol);
    for (int i = 0; i < n; i++) {
        int a = tfmc_argmax(got + (size_t)i * V, (size_t)V), b = tfmc_argmax(e.logits + (size_t)i * V, (size_t)V);
        CHECK(a == b, "%s: argmax at position %d is %d, PyTorch's is %d", name, i, a, b);
    }
    double worst = diff;

    /* prefill in two pieces: the second continues from the caches and sees every token. The first
     * saw only its own: for a causal model (prefix logits = prefill logits) all its rows are known,
     * otherwise only its last row (the logits of that prefix). */
    bool causal = !e.step_logits || max_diff(e.step_logits, e.logits, nv, NULL) <= tol;
    tfmc_session_reset(s);
    int half = n / 2;
    st = tfmc_session_prefill(s, ids, (size_t)half, got);
    if (st == TFMC_OK) st = tfmc_session_prefill(s, ids + half, (size_t)(n - half), got + (size_t)half * V);
    CHECK(st == TFMC_OK, "%s: prefill in two pieces fails (status %d)", name, (int)st);
    if (st == TFMC_OK) {
        double d2 = max_diff(got + (size_t)half * V, e.logits + (size_t)half * V, (size_t)(n - half) * V, NULL);
        double d1 = causal ? max_diff(got, e.logits, (size_t)half * V, NULL)
                           : max_diff(got + (size_t)(half - 1) * V, e.step_logits + (size_t)(half - 1) * V, (size_t)V, NULL);
        if (!(d1 <= d2)) d2 = d1;
        CHECK(d2 <= tol, "%s: prefill in two pieces differs from PyTorch by %.3g (tolerance %.3g)", name, d2, tol);
        if (!(d2 <= worst)) worst = d2;
    }

    /* only the last position's logits (computed for it alone), and none at all followed by a decode
     * of the last token: both are the last row of the full prefill */
    tfmc_session_reset(s);
    st = tfmc_session_prefill_last(s, ids, (size_t)n, row);
    CHECK(st == TFMC_OK, "%s: prefill_last fails (status %d)", name, (int)st);
    if (st == TFMC_OK) {
        double d = max_diff(row, e.logits + (size_t)(n - 1) * V, (size_t)V, NULL);
        CHECK(d <= tol, "%s: prefill_last differs from PyTorch's last row by %.3g (tolerance %.3g)", name, d, tol);
        if (!(d <= worst)) worst = d;
    }
    tfmc_session_reset(s);
    st = n > 1 ? tfmc_session_prefill(s, ids, (size_t)n - 1, NULL) : TFMC_OK;
    if (st == TFMC_OK) st = tfmc_session_decode(s, ids[n - 1], row);
    CHECK(st == TFMC_OK, "%s: prefill without logits, then decode, fails (status %d)", name, (int)st);
    if (st == TFMC_OK) {
        double d = max_diff(row, e.logits + (size_t)(n - 1) * V, (size_t)V, NULL);
        CHECK(d <= tol, "%s: decode after a prefill without logits differs by %.3g (tolerance %.3g)", name, d, tol);
        if (!(d <= worst)) worst = d;
    }

    /* one token at a time after a reset: position i gives the logits of the prefix 0..i */
    tfmc_session_reset(s);
    const float *steps = e.step_logits ? e.step_logits : e.logits;
    double dd = 0;
    for (int i = 0; i < n; i++) {
        st = tfmc_session_decode(s, ids[i], row);
        if (st != TFMC_OK) break;
        double d = max_diff(row, steps + (size_t)i * V, (size_t)V, NULL);
        if (!(d <= dd)) dd = d;
    }
    CHECK(st == TFMC_OK, "%s: decode fails (status %d)", name, (int)st);
    CHECK(dd <= tol, "%s: one-at-a-time decoding differs from PyTorch by %.3g (tolerance %.3g)", name, dd, tol);
    if (!(dd <= worst)) worst = dd;

    /* greedy generation: the argmax of the last position, fed back one token at a time */
    tfmc_session_reset(s);
    int gen[GEN];
    st = tfmc_session_prefill(s, ids, (size_t)n, got);
    for (int k = 0; k < GEN && st == TFMC_OK; k++) {
        gen[k] = tfmc_argmax(k == 0 ? got + (size_t)(n - 1) * V : row, (size_t)V);
        if (k + 1 < GEN) st = tfmc_session_decode(s, gen[k], row);
    }
    CHECK(st == TFMC_OK, "%s: generation fails (status %d)", name, (int)st);
    if (st == TFMC_OK) {
        char a[256] = "", b[256] = "";
        bool same = true;
        for (int k = 0; k < GEN; k++) {
            same &= gen[k] == (int)e.generated[k];
            snprintf(a + strlen(a), sizeof a - strlen(a), " %d", gen[k]);
            snprintf(b + strlen(b), sizeof b - strlen(b), " %d", (int)e.generated[k]);
        }
        CHECK(same, "%s: generated%s, PyTorch generated%s", name, a, b);
    }
    printf("  %-14s max|diff| %.2e (tolerance %.2e, max|logit| %.2f)\n", name, worst, tol, max_ref);
    check_threads(ctx, p, name, ids, n, V);

done:
    tfmc_session_free(s);
    tfmc_context_free(ctx);
    expected_free(&e);
    free(got);
    free(row);
    free(ids);
    free(tfm);
    free(exp_path);
}

/* Every fixture is a test of its own, named after its variant. */
static void test_variant(void)
{
    CU_pTest t = CU_get_current_test();
    check_variant(t->pName);
}

/* ------------------------------------------------------------ bad weight files */

/* A safetensors file as our generator writes it, taken apart: entries with their bytes. */
typedef struct StEntry {
    char name[160];
    char dtype[16];
    long shape[8];
    int rank;
    size_t begin, end;         /* what the header says */
    size_t src_begin, src_end; /* where its bytes are in the original data */
} StEntry;

typedef struct StFile {
    StEntry e[512];
    int n;
    unsigned char *bytes; /* the whole original file */
    size_t size;
    const unsigned char *data;
    size_t data_size;
} StFile;

static const char *skip_to(const char *p, char c)
{
    while (*p && *p != c) p++;
    return *p ? p + 1 : NULL;
}

/* Parse the header of a generated fixture (compact JSON: name: {dtype, shape, data_offsets}). */
static bool st_parse(StFile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->bytes = read_all(path, &f->size);
    if (!f->bytes || f->size < 8) return false;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)f->bytes[i] << (8 * i);
    if (hlen > f->size - 8) return false;
    char *h = malloc((size_t)hlen + 1);
    if (!h) return false;
    memcpy(h, f->bytes + 8, (size_t)hlen);
    h[hlen] = '\0';
    f->data = f->bytes + 8 + hlen;
    f->data_size = f->size - 8 - (size_t)hlen;
    const char *p = skip_to(h, '{');
    bool ok = p != NULL;
    while (ok && (p = skip_to(p, '"')) != NULL) {
        const char *q = strchr(p, '"');
        if (!q || (size_t)(q - p) >= sizeof f->e[0].name) { ok = false; break; }
        if ((size_t)(q - p) == 12 && !strncmp(p, "__metadata__", 12)) {
            p = skip_to(q, '}'); /* flat metadata object */
            if (!p) break;
            continue;
        }
        if (f->n == 512) { ok = false; break; }
        StEntry *e = &f->e[f->n++];
        memcpy(e->name, p, (size_t)(q - p));
        const char *d = strstr(q, "\"dtype\":\"");
        const char *s = strstr(q, "\"shape\":[");
        const char *o = strstr(q, "\"data_offsets\":[");
        if (!d || !s || !o) { ok = false; break; }
        sscanf(d + 9, "%15[^\"]", e->dtype);
        s += 9;
        while (*s != ']') {
            char *end;
            e->shape[e->rank++] = strtol(s, &end, 10);
            s = *end == ',' ? end + 1 : end;
            if (e->rank == 8 && *s != ']') { ok = false; break; }
        }
        unsigned long a = 0, b = 0;
        if (sscanf(o + 16, "%lu,%lu", &a, &b) != 2) { ok = false; break; }
        e->begin = e->src_begin = a;
        e->end = e->src_end = b;
        p = skip_to(o, '}');
        if (!p) break;
    }
    free(h);
    return ok && f->n > 0;
}

static void st_free(StFile *f) { free(f->bytes); }

static StEntry *st_find(StFile *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name)) return &f->e[i];
    return NULL;
}

/* Write the entries as a safetensors file. relayout: data is the entries' source bytes in order, at
 * fresh offsets; otherwise (or with a replaced header) the original data as it is, under the offsets
 * the entries say. patch, when
 * not NULL, replaces patch_len bytes at data offset patch_at (after the layout). truncate_to (when
 * nonzero) cuts the file; hlen_override (when nonzero) replaces the header length field; a non-NULL
 * header replaces the JSON. */
typedef struct StWrite {
    bool relayout;
    const void *patch;
    size_t patch_at, patch_len;
    size_t truncate_to;
    uint64_t hlen_override;
    const char *header;
} StWrite;

static bool st_write(StFile *f, const char *path, const StWrite *w)
{
    size_t hcap = 65536 + (size_t)f->n * 256, hn = 0;
    char *h = malloc(hcap);
    size_t dcap = f->data_size * 2 + 64, dn = 0;
    unsigned char *data = malloc(dcap);
    bool ok = h && data;
    if (ok && (!w->relayout || w->header)) {
        memcpy(data, f->data, f->data_size);
        dn = f->data_size;
    }
    if (ok && w->header) {
        hn = (size_t)snprintf(h, hcap, "%s", w->header);
    } else if (ok) {
        hn = (size_t)snprintf(h, hcap, "{");
        for (int i = 0; i < f->n; i++) {
            StEntry *e = &f->e[i];
            if (w->relayout) {
                size_t len = e->src_end - e->src_begin;
                if (dn + len > dcap) { ok = false; break; }
                memcpy(data + dn, f->data + e->src_begin, len);
                e->begin = dn;
                e->end = dn + len;
                dn += len;
            }
            hn += (size_t)snprintf(h + hn, hcap - hn, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", e->name,
                                   e->dtype);
            for (int r = 0; r < e->rank; r++) hn += (size_t)snprintf(h + hn, hcap - hn, "%s%ld", r ? "," : "", e->shape[r]);
            hn += (size_t)snprintf(h + hn, hcap - hn, "],\"data_offsets\":[%zu,%zu]}", e->begin, e->end);
        }
        hn += (size_t)snprintf(h + hn, hcap - hn, "}");
        while (hn % 8) h[hn++] = ' ';
    }
    if (ok && w->patch) {
        if (w->patch_at + w->patch_len > dn) ok = false;
        else memcpy(data + w->patch_at, w->patch, w->patch_len);
    }
    FILE *out = ok ? fopen(path, "wb") : NULL;
    if (out) {
        unsigned char len8[8];
        uint64_t hl = w->hlen_override ? w->hlen_override : (uint64_t)hn;
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
        size_t total = 8 + hn + dn, limit = w->truncate_to ? w->truncate_to : total;
        size_t a = limit < 8 ? limit : 8;
        ok = fwrite(len8, 1, a, out) == a;
        if (ok && limit > 8) {
            size_t b = limit - 8 < hn ? limit - 8 : hn;
            ok = fwrite(h, 1, b, out) == b;
            if (ok && limit > 8 + hn) {
                size_t c = limit - 8 - hn < dn ? limit - 8 - hn : dn;
                ok = fwrite(data, 1, c, out) == c;
            }
        }
        ok = fclose(out) == 0 && ok;
    } else {
        ok = false;
    }
    free(h);
    free(data);
    return ok;
}

static char tmpdir[256];

/* Write CASE.tfm: the fixture's declaration with its weights file replaced by CASE.safetensors. */
static bool write_tfm(const char *fixture, const char *cas)
{
    char file[640], from[256], to[256];
    snprintf(file, sizeof file, "%s.tfm", fixture);
    char *src = path_join(fixtures, file);
    size_t size;
    unsigned char *text = src ? read_all(src, &size) : NULL;
    free(src);
    if (!text) return false;
    snprintf(from, sizeof from, "\"%s.safetensors\"", fixture);
    snprintf(to, sizeof to, "\"%s.safetensors\"", cas);
    char *t = malloc(size + 1);
    if (!t) { free(text); return false; }
    memcpy(t, text, size);
    t[size] = '\0';
    free(text);
    char *at = strstr(t, from);
    bool ok = at != NULL;
    if (ok) {
        snprintf(file, sizeof file, "%s/%s.tfm", tmpdir, cas);
        FILE *f = fopen(file, "wb");
        ok = f && fwrite(t, 1, (size_t)(at - t), f) == (size_t)(at - t) && fputs(to, f) >= 0 &&
             fputs(at + strlen(from), f) >= 0;
        if (f) ok = fclose(f) == 0 && ok;
    }
    free(t);
    return ok;
}

/* Load CASE.tfm and compile it: it must fail, never crash, with diagnostics that contain every one of
 * the NULL-terminated substrings (case-insensitive). */
static void expect_failure(const char *cas, ...)
{
    char tfm[512];
    snprintf(tfm, sizeof tfm, "%s/%s.tfm", tmpdir, cas);
    TfmcContext *ctx = tfmc_context_new(NULL);
    if (!ctx) {
        CHECK(false, "%s: out of memory", cas);
        return;
    }
    const TfmcProgram *p = NULL;
    TfmcStatus st = tfmc_load_file(ctx, tfm);
    if (st == TFMC_OK) st = tfmc_find_program(ctx, NULL, &p);
    if (st == TFMC_OK) st = tfmc_compile(ctx, p);
    char diags[4096];
    diagnostics_text(ctx, diags, sizeof diags);
    CHECK(st != TFMC_OK, "%s: loading bad weights succeeds", cas);
    CHECK(tfmc_diagnostic_count(ctx) > 0, "%s: loading fails without a diagnostic", cas);
    char file[256];
    snprintf(file, sizeof file, "%s.safetensors", cas);
    CHECK(has_text(diags, file), "%s: the diagnostic does not name the file %s: %s", cas, file, diags);
    va_list ap;
    va_start(ap, cas);
    for (const char *sub; (sub = va_arg(ap, const char *)) != NULL;)
        CHECK(has_text(diags, sub), "%s: the diagnostic does not mention \"%s\": %s", cas, sub, diags);
    va_end(ap);
    if (st != TFMC_OK) printf("  %-18s %s", cas, diags);
    tfmc_context_free(ctx);
}

static StFile base; /* learned.safetensors taken apart */

/* Write CASE.safetensors from the base fixture with w, and CASE.tfm. */
static bool make_case(StFile *f, const char *fixture, const char *cas, const StWrite *w)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, cas);
    bool ok = write_tfm(fixture, cas) && st_write(f, path, w);
    CHECK(ok, "%s: cannot write the test files in %s", cas, tmpdir);
    return ok;
}

static bool load_base(StFile *f, const char *fixture)
{
    char file[256];
    snprintf(file, sizeof file, "%s.safetensors", fixture);
    char *path = path_join(fixtures, file);
    bool ok = path && st_parse(f, path);
    CHECK(ok, "cannot read the fixture %s", path ? path : file);
    free(path);
    return ok;
}

/* Sanity: the rewritten base (relayout, nothing changed) loads. */
static void test_rewrite_ok(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StWrite w = { .relayout = true };
    if (make_case(&f, "learned", "rewritten", &w)) {
        char tfm[512];
        snprintf(tfm, sizeof tfm, "%s/rewritten.tfm", tmpdir);
        TfmcContext *ctx = tfmc_context_new(NULL);
        const TfmcProgram *p = NULL;
        TfmcStatus st = tfmc_load_file(ctx, tfm);
        if (st == TFMC_OK) st = tfmc_find_program(ctx, NULL, &p);
        if (st == TFMC_OK) st = tfmc_compile(ctx, p);
        char diags[4096];
        diagnostics_text(ctx, diags, sizeof diags);
        CHECK(st == TFMC_OK, "the rewritten fixture does not load: %s", diags);
        tfmc_context_free(ctx);
    }
    st_free(&f);
}

static void test_truncated(void)
{
    StWrite w = { .relayout = true, .truncate_to = base.size * 6 / 10 };
    if (make_case(&base, "learned", "truncated", &w)) expect_failure("truncated", "truncated", NULL);
}

static void test_truncated_header(void)
{
    /* cut inside the JSON: the header length now reaches past the end */
    StWrite w = { .relayout = true, .truncate_to = 40 };
    if (make_case(&base, "learned", "cut_header", &w)) expect_failure("cut_header", "header", NULL);
}

static void test_tiny_file(void)
{
    StWrite w = { .relayout = true, .truncate_to = 5 };
    if (make_case(&base, "learned", "tiny", &w)) expect_failure("tiny", "8-byte", NULL);
}

static void test_empty_file(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/empty.safetensors", tmpdir);
    bool ok = write_tfm("learned", "empty") && write_all(path, "", 0);
    CHECK(ok, "empty: cannot write the test files");
    if (ok) expect_failure("empty", NULL);
}

static void test_header_too_long(void)
{
    StWrite w = { .relayout = true, .hlen_override = (uint64_t)1 << 40 };
    if (make_case(&base, "learned", "long_header", &w)) expect_failure("long_header", "header length", NULL);
}

static void test_malformed_json(void)
{
    StWrite w = { .relayout = true, .header = "{\"embed.token.weight\":{\"dtype\":\"F32\",\"shape\":[48,16],\"data_offsets\":[0,3072]" };
    if (make_case(&base, "learned", "bad_json", &w)) expect_failure("bad_json", "JSON", NULL);
    StWrite w2 = { .relayout = true, .header = "not json at all!" };
    if (make_case(&base, "learned", "not_json", &w2)) expect_failure("not_json", "JSON", NULL);
    StWrite w3 = { .relayout = true, .header = "{\"embed.token.weight\":{\"dtype\":\"F32\",\"shape\":[48,16],\"data_offsets\":[0,3072]}}} " };
    if (make_case(&base, "learned", "json_trailing", &w3)) expect_failure("json_trailing", "JSON", NULL);
}

static void test_overlap(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *a = st_find(&f, "embed.token.weight"), *b = st_find(&f, "embed.position.weight");
    CHECK(a && b, "learned.safetensors lacks its embeddings");
    if (a && b) {
        size_t len = b->end - b->begin;
        b->begin = a->begin + 8;
        b->end = b->begin + len;
        StWrite w = { .relayout = false };
        if (make_case(&f, "learned", "overlap", &w)) expect_failure("overlap", "overlap", "embed.position.weight", NULL);
    }
    st_free(&f);
}

/* An empty tensor between two that overlap must not hide the overlap (the check once compared
 * neighbours only, and skipped empty ones). */
static void test_overlap_behind_empty(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *a = st_find(&f, "embed.token.weight"), *b = st_find(&f, "embed.position.weight");
    CHECK(a && b && f.n < 512, "learned.safetensors lacks its embeddings");
    if (a && b && f.n < 512) {
        size_t len = b->end - b->begin;
        b->begin = a->begin + 8;
        b->end = b->begin + len;
        StEntry *e = &f.e[f.n++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "unused.empty");
        snprintf(e->dtype, sizeof e->dtype, "F32");
        e->rank = 1;
        e->begin = e->end = a->begin + 4;
        StWrite w = { .relayout = false };
        if (make_case(&f, "learned", "overlap_empty", &w)) expect_failure("overlap_empty", "overlap", NULL);
    }
    st_free(&f);
}

/* JSON exactly as JSON is written: numbers, escapes, UTF-8 and no U+0000 inside a name or dtype
 * (a C string would end there: "F32\u0000junk" once read as F32). Each header also lacks tensors,
 * so a lenient reader fails later for another reason, which the "JSON" check tells apart. */
static void test_strict_json(void)
{
    static const char *const headers[] = {
        "{\"__metadata__\":{\"a\":+1}}",
        "{\"__metadata__\":{\"a\":01}}",
        "{\"__metadata__\":{\"a\":1.}}",
        "{\"__metadata__\":{\"a\":nan}}",
        "{\"__metadata__\":{\"a\":0x10}}",
        "{\"__metadata__\":{\"a\":\"\\u0zzz\"}}",
        "{\"__metadata__\":{\"a\":\"\xff\xfe\"}}",
        "{\"__metadata__\":{\"a\":\"\xc0\xaf\"}}", /* an overlong '/' */
        "{\"embed.token.weight\":{\"dtype\":\"F32\\u0000junk\",\"shape\":[48,16],\"data_offsets\":[0,3072]}}",
        "{\"embed.token.weight\\u0000junk\":{\"dtype\":\"F32\",\"shape\":[48,16],\"data_offsets\":[0,3072]}}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char cas[32];
        snprintf(cas, sizeof cas, "strict_json%zu", i);
        StWrite w = { .relayout = true, .header = headers[i] };
        if (make_case(&base, "learned", cas, &w)) expect_failure(cas, "JSON", NULL);
    }
    /* valid JSON in the metadata is fine: the file then fails only for its missing tensors */
    StWrite ok = { .relayout = true, .header = "{\"__metadata__\":{\"a\":[-0.5e+3,true,null,\"\\u00e9\xc3\xa9\"]}}" };
    if (make_case(&base, "learned", "meta_ok", &ok)) expect_failure("meta_ok", "embed.token.weight", NULL);
    /* no tensors at all */
    StWrite none = { .relayout = true, .header = "{}" };
    if (make_case(&base, "learned", "no_tensors", &none)) expect_failure("no_tensors", "embed.token.weight", NULL);
}

static void test_out_of_range(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "norm.weight");
    CHECK(e != NULL, "learned.safetensors lacks norm.weight");
    if (e) {
        size_t len = e->end - e->begin;
        e->begin = f.data_size - len / 2;
        e->end = e->begin + len;
        StWrite w = { .relayout = false };
        if (make_case(&f, "learned", "out_of_range", &w)) expect_failure("out_of_range", "norm.weight", "outside", NULL);
    }
    st_free(&f);
}

static void test_offsets_reversed(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "norm.bias");
    CHECK(e != NULL, "learned.safetensors lacks norm.bias");
    if (e) {
        size_t t = e->begin;
        e->begin = e->end;
        e->end = t;
        StWrite w = { .relayout = false };
        if (make_case(&f, "learned", "reversed", &w)) expect_failure("reversed", "norm.bias", NULL);
    }
    st_free(&f);
}

static void test_size_mismatch(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "layers.0.attention.q.bias");
    CHECK(e != NULL, "learned.safetensors lacks layers.0.attention.q.bias");
    if (e) {
        e->src_end -= 4; /* one float short of its shape */
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "short_tensor", &w)) expect_failure("short_tensor", "layers.0.attention.q.bias", NULL);
    }
    st_free(&f);
}

static void test_wrong_dtype(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "layers.0.attention.q.weight");
    CHECK(e != NULL, "learned.safetensors lacks layers.0.attention.q.weight");
    if (e) {
        strcpy(e->dtype, "I32");
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "dtype_i32", &w)) expect_failure("dtype_i32", "layers.0.attention.q.weight", "I32", NULL);
    }
    st_free(&f);
    /* F64: a float type tfmc does not read, of another element size */
    if (!load_base(&f, "learned")) return;
    e = st_find(&f, "layers.1.mlp.down.bias");
    CHECK(e != NULL, "learned.safetensors lacks layers.1.mlp.down.bias");
    if (e) {
        strcpy(e->dtype, "F64");
        e->shape[0] /= 2;
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "dtype_f64", &w)) expect_failure("dtype_f64", "layers.1.mlp.down.bias", "F64", NULL);
    }
    st_free(&f);
}

static void test_wrong_shape(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "embed.token.weight");
    CHECK(e != NULL && e->rank == 2, "learned.safetensors lacks embed.token.weight");
    if (e && e->rank == 2) {
        long t = e->shape[0];
        e->shape[0] = e->shape[1];
        e->shape[1] = t;
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "transposed", &w)) expect_failure("transposed", "embed.token.weight", "shape", NULL);
    }
    st_free(&f);
    /* a vector stored as a [1][d] matrix */
    if (!load_base(&f, "learned")) return;
    e = st_find(&f, "layers.1.mlp.norm.weight");
    CHECK(e && e->rank == 1, "learned.safetensors lacks layers.1.mlp.norm.weight");
    if (e && e->rank == 1) {
        e->shape[1] = e->shape[0];
        e->shape[0] = 1;
        e->rank = 2;
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "rank2_norm", &w)) expect_failure("rank2_norm", "layers.1.mlp.norm.weight", "shape", NULL);
    }
    st_free(&f);
}

static void test_missing_tensor(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "layers.1.mlp.down.bias");
    CHECK(e != NULL, "learned.safetensors lacks layers.1.mlp.down.bias");
    if (e) {
        *e = f.e[--f.n];
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "missing", &w)) expect_failure("missing", "layers.1.mlp.down.bias", "missing", NULL);
    }
    st_free(&f);
}

static void test_extra_tensor(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "layers.0.attention.q.weight");
    CHECK(e != NULL, "learned.safetensors lacks layers.0.attention.q.weight");
    if (e) {
        f.e[f.n] = *e;
        strcpy(f.e[f.n].name, "layers.7.attention.q.weight");
        f.n++;
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "extra", &w)) expect_failure("extra", "layers.7.attention.q.weight", NULL);
    }
    st_free(&f);
}

static void test_duplicate_tensor(void)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StEntry *e = st_find(&f, "norm.bias");
    CHECK(e != NULL, "learned.safetensors lacks norm.bias");
    if (e) {
        f.e[f.n++] = *e;
        StWrite w = { .relayout = true };
        if (make_case(&f, "learned", "duplicate", &w)) expect_failure("duplicate", "norm.bias", NULL);
    }
    st_free(&f);
}

/* Put one float32 value at element k of tensor name (relaid out). */
static void poison(const char *cas, const char *name, size_t k, uint32_t bits, const char *what)
{
    StFile f;
    if (!load_base(&f, "learned")) return;
    StWrite w = { .relayout = true };
    /* lay out once to learn the tensor's offset, then patch there */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, cas);
    bool ok = st_write(&f, path, &w);
    StEntry *e = st_find(&f, name);
    CHECK(ok && e, "%s: cannot prepare the test file", cas);
    if (ok && e) {
        unsigned char b[4] = { (unsigned char)bits, (unsigned char)(bits >> 8), (unsigned char)(bits >> 16),
                               (unsigned char)(bits >> 24) };
        w.patch = b;
        w.patch_at = e->begin + 4 * k;
        w.patch_len = 4;
        if (make_case(&f, "learned", cas, &w)) expect_failure(cas, name, what, NULL);
    }
    st_free(&f);
}

static void test_nan(void) { poison("nan", "layers.1.mlp.up.weight", 5, 0x7FC00000u, "NaN"); }
static void test_inf(void) { poison("inf", "norm.weight", 3, 0x7F800000u, "inf"); }
static void test_neg_inf(void) { poison("neg_inf", "embed.position.weight", 0, 0xFF800000u, "inf"); }

/* F16 and BF16 NaN/Inf after conversion. */
static void test_half_nan(void)
{
    StFile f;
    if (!load_base(&f, "f16")) return;
    StEntry *e = st_find(&f, "layers.2.attention.v.weight");
    CHECK(e && !strcmp(e->dtype, "F16"), "f16.safetensors lacks an F16 layers.2.attention.v.weight");
    if (e && !strcmp(e->dtype, "F16")) {
        StWrite w = { .relayout = true };
        unsigned char nan16[2] = { 0x00, 0x7E };
        w.patch = nan16;
        w.patch_at = e->begin + 2 * 7;
        w.patch_len = 2;
        if (make_case(&f, "f16", "f16_nan", &w)) expect_failure("f16_nan", "layers.2.attention.v.weight", "NaN", NULL);
    }
    st_free(&f);
    if (!load_base(&f, "bf16")) return;
    e = st_find(&f, "layers.1.mlp.gate.weight");
    CHECK(e && !strcmp(e->dtype, "BF16"), "bf16.safetensors lacks a BF16 layers.1.mlp.gate.weight");
    if (e && !strcmp(e->dtype, "BF16")) {
        StWrite w = { .relayout = true };
        unsigned char inf16[2] = { 0x80, 0x7F };
        w.patch = inf16;
        w.patch_at = e->begin;
        w.patch_len = 2;
        if (make_case(&f, "bf16", "bf16_inf", &w)) expect_failure("bf16_inf", "layers.1.mlp.gate.weight", "inf", NULL);
    }
    st_free(&f);
}

static void test_no_file(void)
{
    bool ok = write_tfm("learned", "absent");
    CHECK(ok, "absent: cannot write the test file");
    if (ok) expect_failure("absent", NULL);
}

/* GPT-2 layout: a position table shorter than max_len; a lm_head that is not the embedding with
 * `unembed tied`. */
static void test_gpt2_bad(void)
{
    StFile f;
    if (!load_base(&f, "gpt2")) return;
    StEntry *e = st_find(&f, "transformer.wpe.weight");
    CHECK(e && e->rank == 2, "gpt2.safetensors lacks transformer.wpe.weight");
    if (e && e->rank == 2) {
        e->shape[0] = 10;
        e->src_end = e->src_begin + (size_t)(10 * e->shape[1] * 4);
        StWrite w = { .relayout = true };
        if (make_case(&f, "gpt2", "gpt2_short_wpe", &w)) expect_failure("gpt2_short_wpe", "wpe.weight", NULL);
    }
    st_free(&f);
    if (!load_base(&f, "gpt2")) return;
    e = st_find(&f, "lm_head.weight");
    CHECK(e != NULL, "gpt2.safetensors lacks lm_head.weight");
    if (e) {
        StWrite w = { .relayout = true };
        char path[512];
        snprintf(path, sizeof path, "%s/gpt2_lm_head.safetensors", tmpdir);
        if (st_write(&f, path, &w)) {
            unsigned char b[4] = { 0, 0, 0x80, 0x3F }; /* 1.0f */
            w.patch = b;
            w.patch_at = e->begin + 4 * 3;
            w.patch_len = 4;
            if (make_case(&f, "gpt2", "gpt2_lm_head", &w)) expect_failure("gpt2_lm_head", "lm_head.weight", NULL);
        }
    }
    st_free(&f);
}

/* ------------------------------------------------------------ main */

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool list_variants(char **only, int nonly)
{
    DIR *d = opendir(fixtures);
    if (!d) {
        fprintf(stderr, "test_models: cannot open the fixtures folder %s\n", fixtures);
        return false;
    }
    static const char suffix[] = ".expected.safetensors";
    size_t ls = sizeof suffix - 1;
    int cap = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        size_t n = strlen(de->d_name);
        if (n <= ls || strcmp(de->d_name + n - ls, suffix)) continue;
        char *name = strndup(de->d_name, n - ls);
        bool wanted = nonly == 0;
        for (int i = 0; i < nonly; i++) wanted |= !strcmp(only[i], name);
        if (!name || !wanted) {
            free(name);
            continue;
        }
        if (nvariants == cap) {
            cap = cap ? 2 * cap : 64;
            char **t = realloc(variants, sizeof(char *) * (size_t)cap);
            if (!t) {
                free(name);
                break;
            }
            variants = t;
        }
        variants[nvariants++] = name;
    }
    closedir(d);
    if (nvariants) qsort(variants, (size_t)nvariants, sizeof(char *), by_name);
    return true;
}

static int bad_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/tfmc_models_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) return 1;
    char file[256];
    snprintf(file, sizeof file, "%s/learned.safetensors", fixtures);
    return st_parse(&base, file) ? 0 : 1;
}

static int bad_clean(void)
{
    st_free(&base);
    DIR *d = opendir(tmpdir);
    if (d) {
        for (struct dirent *de; (de = readdir(d)) != NULL;) {
            if (de->d_name[0] == '.') continue;
            char path[512];
            snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) fixtures = argv[1];
    if (!list_variants(argv + 2, argc > 2 ? argc - 2 : 0)) return 1;
    if (nvariants == 0) {
        fprintf(stderr, "test_models: no *.expected.safetensors in %s\n", fixtures);
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    bool ok = true;
    CU_pSuite models = CU_add_suite("models", NULL, NULL);
    ok = models != NULL;
    for (int i = 0; ok && i < nvariants; i++) ok = CU_add_test(models, variants[i], test_variant) != NULL;
    if (ok && argc <= 2) {
        CU_pSuite bad = CU_add_suite("bad_weights", bad_init, bad_clean);
        static const struct {
            const char *name;
            CU_TestFunc fn;
        } tests[] = {
            { "rewrite_ok", test_rewrite_ok },
            { "truncated", test_truncated },
            { "truncated_header", test_truncated_header },
            { "tiny_file", test_tiny_file },
            { "empty_file", test_empty_file },
            { "header_too_long", test_header_too_long },
            { "malformed_json", test_malformed_json },
            { "overlap", test_overlap },
            { "overlap behind an empty tensor", test_overlap_behind_empty },
            { "strict JSON", test_strict_json },
            { "out_of_range", test_out_of_range },
            { "offsets_reversed", test_offsets_reversed },
            { "size_mismatch", test_size_mismatch },
            { "wrong_dtype", test_wrong_dtype },
            { "wrong_shape", test_wrong_shape },
            { "missing_tensor", test_missing_tensor },
            { "extra_tensor", test_extra_tensor },
            { "duplicate_tensor", test_duplicate_tensor },
            { "nan", test_nan },
            { "inf", test_inf },
            { "neg_inf", test_neg_inf },
            { "half_nan_inf", test_half_nan },
            { "no_file", test_no_file },
            { "gpt2_bad", test_gpt2_bad },
        };
        ok = bad != NULL;
        for (size_t i = 0; ok && i < sizeof tests / sizeof tests[0]; i++)
            ok = CU_add_test(bad, tests[i].name, tests[i].fn) != NULL;
    }
    if (!ok) {
        fprintf(stderr, "test_models: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    /* CU_basic_run_tests returns success even when an assertion failed: count the failures */
    unsigned failed = CU_get_number_of_tests_failed(), suites_failed = CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    for (int i = 0; i < nvariants; i++) free(variants[i]);
    free(variants);
    return failed != 0 || suites_failed != 0;
}
