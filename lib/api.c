/* api.c: the public API of include/tfmc.h over the frontend: contexts, loading, programs, eval. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib.h"
#include "tfmc_config.h"

const char *tfmc_version(void) { return TFMC_VERSION; }

TfmcContext *tfmc_context_new(const TfmcAllocator *allocator)
{
    TfmcAllocator a = allocator ? *allocator : libc_allocator;
    TfmcContext *ctx = a.realloc(a.ud, NULL, sizeof *ctx);
    if (!ctx) return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = a;
    arena_init(&ctx->arena, &ctx->alloc, NULL); /* each API call sets its own recovery point */
    ctx->diags.arena = &ctx->arena;
    ctx->passes.level = 1;
    return ctx;
}

void tfmc_context_free(TfmcContext *ctx)
{
    if (!ctx) return;
    for (int i = 0; i < ctx->nprograms; i++)
        if (ctx->programs[i]->jit) ctx->programs[i]->jit_api->free(ctx->programs[i]->jit);
    arena_free(&ctx->arena);
    ctx->alloc.realloc(ctx->alloc.ud, ctx, 0);
}

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Register a checked RASP program (rasp) or model declaration (model) of file. */
static TfmcProgram *add_program(TfmcContext *ctx, const SrcFile *file, const char *name, RaspProgram *rasp,
                                const ModelDecl *model)
{
    TfmcProgram *p = ARENA_NEW(&ctx->arena, TfmcProgram);
    p->kind = rasp ? TFMC_PROGRAM_RASP : TFMC_PROGRAM_MODEL;
    p->name = name;
    p->rasp = rasp;
    p->model = model;
    p->file = file;
    VEC_PUSH(&ctx->arena, ctx->programs, ctx->nprograms, ctx->cap, p);
    return p;
}

static TfmcStatus load(TfmcContext *ctx, SrcFile *file)
{
    int nerrors = 0;
    Item *items = parse_file(&ctx->arena, file, &ctx->diags, &nerrors);
    int before = ctx->diags.errors;
    SemaResult r = { 0 };
    /* Items with syntax errors are marked broken and skipped, so the rest of the file is still
     * checked (every independent error) without echoes of the broken ones. */
    sema_check(&ctx->arena, file, items, &ctx->diags, &r);
    if (nerrors) return TFMC_ERR_COMPILE; /* no program of a file with syntax errors is used */
    for (int i = 0; i < r.nprograms; i++) add_program(ctx, file, r.programs[i]->name, r.programs[i], NULL);
    for (int i = 0; i < r.nmodels; i++) {
        /* a model's statements and options are checked with the file; its weights when compiled */
        Model *m = model_declare(&ctx->arena, r.models[i], file, &ctx->diags, true, ctx->max_memory);
        if (m) {
            TfmcProgram *p = add_program(ctx, file, r.models[i]->name, NULL, r.models[i]);
            p->tokenizer = m->tokenizer;
            p->eos = m->eos;
            p->neos = m->neos;
        }
    }
    return ctx->diags.errors > before ? TFMC_ERR_COMPILE : TFMC_OK;
}

static TfmcStatus load_string(TfmcContext *ctx, const char *name, const char *text, size_t len)
{
    SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
    f->path = arena_strdup(&ctx->arena, name ? name : "<string>");
    f->text = arena_strndup(&ctx->arena, text, len);
    f->len = len;
    f->hash = fnv1a(text, len);
    return load(ctx, f);
}

TfmcStatus tfmc_load_string(TfmcContext *ctx, const char *name, const char *text, size_t len)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, load_string(ctx, name, text, len));
}

/* The whole file into a buffer of the context's allocator (NULL when out of memory). */
static char *read_all(TfmcContext *ctx, FILE *fp, size_t *out_len)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            char *nb = ctx->alloc.realloc(ctx->alloc.ud, buf, ncap);
            if (!nb) {
                ctx->alloc.realloc(ctx->alloc.ud, buf, 0);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    *out_len = len;
    return buf;
}

/* The file's text copied into the arena, under a recovery point of our own that frees buf. */
static SrcFile *source_file(TfmcContext *ctx, const char *path, char *buf, size_t len)
{
    jmp_buf here, *outer = ctx->arena.on_oom;
    ctx->arena.on_oom = &here;
    if (setjmp(here)) {
        ctx->arena.on_oom = outer;
        ctx->alloc.realloc(ctx->alloc.ud, buf, 0);
        longjmp(*outer, 1);
    }
    SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
    f->path = arena_strdup(&ctx->arena, path);
    f->text = arena_strndup(&ctx->arena, buf, len);
    f->len = len;
    f->hash = fnv1a(buf, len);
    ctx->arena.on_oom = outer;
    return f;
}

static TfmcStatus load_file(TfmcContext *ctx, const char *path)
{
    SrcLoc none = { 0, 0, 0, 0 };
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
        f->path = arena_strdup(&ctx->arena, path);
        diag_error(&ctx->diags, f, none, "cannot open the file: %s", strerror(errno));
        return TFMC_ERR_IO;
    }
    size_t len = 0;
    char *buf = read_all(ctx, fp, &len);
    bool failed = buf && ferror(fp) != 0;
    fclose(fp);
    if (!buf) return TFMC_ERR_NOMEM;
    if (failed) {
        ctx->alloc.realloc(ctx->alloc.ud, buf, 0);
        SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
        f->path = arena_strdup(&ctx->arena, path);
        diag_error(&ctx->diags, f, none, "cannot read the file (is it a directory?)");
        return TFMC_ERR_IO;
    }
    SrcFile *f = source_file(ctx, path, buf, len);
    ctx->alloc.realloc(ctx->alloc.ud, buf, 0);
    return load(ctx, f);
}

TfmcStatus tfmc_load_file(TfmcContext *ctx, const char *path)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, load_file(ctx, path));
}

size_t tfmc_diagnostic_count(const TfmcContext *ctx) { return (size_t)ctx->diags.n; }

const TfmcDiagnostic *tfmc_diagnostic(const TfmcContext *ctx, size_t i)
{
    return i < (size_t)ctx->diags.n ? &ctx->diags.items[i] : NULL;
}

void tfmc_print_diagnostics(const TfmcContext *ctx, FILE *out) { diag_print(&ctx->diags, out); }

static bool report(TfmcContext *ctx, const char *msg)
{
    SrcLoc none = { 0, 0, 0, 0 };
    diag_error(&ctx->diags, NULL, none, "%s", msg);
    return true;
}

static bool report_guarded(TfmcContext *ctx, const char *msg)
{
    GUARDED(ctx, bool, false, report(ctx, msg));
}

void tfmc_report(TfmcContext *ctx, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    report_guarded(ctx, buf); /* out of memory: the message is lost, nothing else */
}

size_t tfmc_program_count(const TfmcContext *ctx) { return (size_t)ctx->nprograms; }

const TfmcProgram *tfmc_program_at(const TfmcContext *ctx, size_t i)
{
    return i < (size_t)ctx->nprograms ? ctx->programs[i] : NULL;
}

TfmcStatus tfmc_find_program(TfmcContext *ctx, const char *name, const TfmcProgram **out)
{
    *out = NULL;
    if (!name) {
        if (ctx->nprograms == 1) {
            *out = ctx->programs[0];
            return TFMC_OK;
        }
        if (ctx->nprograms == 0) tfmc_report(ctx, "the file holds no program or model");
        else tfmc_report(ctx, "the file holds %d programs and models; choose one with -p NAME", ctx->nprograms);
        return TFMC_ERR_USAGE;
    }
    for (int i = 0; i < ctx->nprograms; i++)
        if (strcmp(ctx->programs[i]->name, name) == 0) {
            *out = ctx->programs[i];
            return TFMC_OK;
        }
    char list[512];
    int len = 0;
    list[0] = '\0';
    for (int i = 0; i < ctx->nprograms && len < (int)sizeof list - 64; i++)
        len += snprintf(list + len, sizeof list - (size_t)len, "%s%s", i ? ", " : "", ctx->programs[i]->name);
    tfmc_report(ctx, "no program or model named `%s`%s%s", name, ctx->nprograms ? "; the file holds " : "", list);
    return TFMC_ERR_USAGE;
}

const char *tfmc_program_name(const TfmcProgram *p) { return p->name; }
TfmcProgramKind tfmc_program_kind(const TfmcProgram *p) { return p->kind; }
int tfmc_program_max_len(const TfmcProgram *p)
{
    return p->rasp ? p->rasp->max_len : p->compiled ? p->compiled->max_len : 0;
}

/* ------------------------------------------------------------ tokens */

static TfmcStatus read_token(const RaspProgram *rp, const char *word, size_t wlen, TfmcValue *out, char *err,
                             size_t errcap)
{
    bool numeric = rp->vocab.n > 0 && rp->vocab.v[0].kind != TFMC_STR;
    char tmp[256];
    if (wlen >= sizeof tmp) {
        snprintf(err, errcap, "token `%.40s...` is too long", word);
        return TFMC_ERR_INPUT;
    }
    memcpy(tmp, word, wlen);
    tmp[wlen] = '\0';
    Value v = { 0 };
    bool has_bool = false;
    for (int k = 0; k < rp->vocab.n; k++) has_bool |= rp->vocab.v[k].kind == TFMC_BOOL;
    if (numeric && has_bool && (!strcmp(tmp, "true") || !strcmp(tmp, "false"))) {
        /* a vocabulary of booleans reads them as they print */
        v = value_bool(tmp[0] == 't');
    } else if (numeric) {
        char *end;
        errno = 0;
        long long i = strtoll(tmp, &end, 10);
        bool has_float = false;
        for (int k = 0; k < rp->vocab.n; k++) has_float |= rp->vocab.v[k].kind == TFMC_FLOAT;
        if (*end == '\0' && errno == 0 && end != tmp) {
            v = value_int(i);
        } else if (!has_float) {
            /* an integer vocabulary reads tokens as integers: `2.` or `1e0` are not tokens */
            snprintf(err, errcap, "token `%s` is not an integer, and the vocabulary holds integers", tmp);
            return TFMC_ERR_INPUT;
        } else {
            double d = strtod(tmp, &end);
            if (*end != '\0' || end == tmp) {
                snprintf(err, errcap, "token `%s` is not a number, and the vocabulary holds numbers", tmp);
                return TFMC_ERR_INPUT;
            }
            v = value_float(d);
        }
    } else {
        v.kind = TFMC_STR;
        v.u.s = tmp;
    }
    int at = valueset_index(&rp->vocab, v);
    if (at < 0) {
        snprintf(err, errcap, "unknown token `%s`: it is not in the vocabulary of `%s`", tmp, rp->name);
        return TFMC_ERR_INPUT;
    }
    *out = rp->vocab.v[at]; /* the vocabulary's own value: interned strings, exact kinds */
    return TFMC_OK;
}

static TfmcStatus check_length(const TfmcProgram *p, size_t n, char *err, size_t errcap)
{
    if (n == 0) {
        snprintf(err, errcap, "empty input: a sequence needs at least one token");
        return TFMC_ERR_INPUT;
    }
    if (n > (size_t)p->rasp->max_len) {
        snprintf(err, errcap, "the sequence has %zu tokens, more than max_len %d of `%s`", n, p->rasp->max_len,
                 p->name);
        return TFMC_ERR_INPUT;
    }
    return TFMC_OK;
}

static bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

/* The next whitespace-separated word at or after *s (NULL when none), its length in *len; *s
 * moves past it. */
static const char *next_word(const char **s, size_t *len)
{
    const char *p = *s;
    while (blank(*p)) p++;
    if (!*p) return NULL;
    const char *w = p;
    while (*p && !blank(*p)) p++;
    *len = (size_t)(p - w);
    *s = p;
    return w;
}

TfmcStatus tfmc_parse_tokens(const TfmcProgram *p, const char *line, TfmcValue *tokens, size_t cap, size_t *n,
                             char *err, size_t errcap)
{
    *n = 0;
    if (!p->rasp) {
        snprintf(err, errcap, "`%s` is a model, not a RASP program", p->name);
        return TFMC_ERR_USAGE;
    }
    const char *s = line, *w;
    size_t count = 0, len;
    while ((w = next_word(&s, &len))) {
        if (count < cap) {
            TfmcStatus st = read_token(p->rasp, w, len, &tokens[count], err, errcap);
            if (st != TFMC_OK) return st;
        }
        count++;
    }
    TfmcStatus st = check_length(p, count, err, errcap);
    if (st != TFMC_OK) return st;
    if (count > cap) {
        snprintf(err, errcap, "too many tokens");
        return TFMC_ERR_INPUT;
    }
    *n = count;
    return TFMC_OK;
}

TfmcStatus tfmc_parse_words(const TfmcProgram *p, char *const *words, size_t count, TfmcValue *tokens, size_t cap,
                            char *err, size_t errcap)
{
    if (!p->rasp) {
        snprintf(err, errcap, "`%s` is a model, not a RASP program", p->name);
        return TFMC_ERR_USAGE;
    }
    TfmcStatus st = check_length(p, count, err, errcap);
    if (st != TFMC_OK) return st;
    if (count > cap) {
        snprintf(err, errcap, "too many tokens");
        return TFMC_ERR_INPUT;
    }
    for (size_t i = 0; i < count; i++) {
        st = read_token(p->rasp, words[i], strlen(words[i]), &tokens[i], err, errcap);
        if (st != TFMC_OK) return st;
    }
    return TFMC_OK;
}

/* A model's token: an id in 0..vocab-1, read as strtol reads it (as the generated main does). */
static TfmcStatus read_id(int vocab, const char *w, size_t len, int *out, char *err, size_t errcap)
{
    char buf[64], *end = buf;
    long v = -1;
    if (len < sizeof buf) {
        memcpy(buf, w, len);
        buf[len] = '\0';
        errno = 0;
        v = strtol(buf, &end, 10);
    }
    if (len >= sizeof buf || *end || end == buf || errno || v < 0 || v >= vocab) {
        snprintf(err, errcap, "token `%.*s` is not a token id in 0..%d", (int)(len > 64 ? 64 : len), w, vocab - 1);
        return TFMC_ERR_INPUT;
    }
    *out = (int)v;
    return TFMC_OK;
}

static TfmcStatus check_model_length(const TfmcProgram *p, size_t n, size_t cap, char *err, size_t errcap)
{
    if (p->rasp) {
        snprintf(err, errcap, "`%s` is a RASP program: its tokens are values (tfmc_parse_tokens)", p->name);
        return TFMC_ERR_USAGE;
    }
    if (!p->compiled) {
        snprintf(err, errcap, "`%s` is not compiled yet: its vocabulary is known after tfmc_compile", p->name);
        return TFMC_ERR_USAGE;
    }
    if (n == 0) {
        snprintf(err, errcap, "empty input: a sequence needs at least one token");
        return TFMC_ERR_INPUT;
    }
    if (n > (size_t)tfmc_program_max_len(p) || n > cap) {
        snprintf(err, errcap, "the sequence has %zu tokens, more than max_len %d", n, tfmc_program_max_len(p));
        return TFMC_ERR_INPUT;
    }
    return TFMC_OK;
}

TfmcStatus tfmc_parse_ids(const TfmcProgram *p, const char *line, int *ids, size_t cap, size_t *n, char *err,
                          size_t errcap)
{
    *n = 0;
    const char *s = line, *w;
    size_t count = 0, len;
    while ((w = next_word(&s, &len))) {
        if (count < cap && p->compiled) {
            TfmcStatus st = read_id(tfmc_model_vocab(p), w, len, &ids[count], err, errcap);
            if (st != TFMC_OK) return st;
        }
        count++;
    }
    TfmcStatus st = check_model_length(p, count, cap, err, errcap);
    if (st == TFMC_OK) *n = count;
    return st;
}

TfmcStatus tfmc_parse_id_words(const TfmcProgram *p, char *const *words, size_t count, int *ids, size_t cap,
                               char *err, size_t errcap)
{
    TfmcStatus st = check_model_length(p, count, cap, err, errcap);
    for (size_t i = 0; i < count && st == TFMC_OK; i++)
        st = read_id(tfmc_model_vocab(p), words[i], strlen(words[i]), &ids[i], err, errcap);
    return st;
}

/* ------------------------------------------------------------- eval */

static TfmcStatus run(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, TfmcValue *out,
                      FILE *trace)
{
    if (!p->rasp) {
        tfmc_report(ctx, "`%s` is a model; eval runs RASP programs (use `tfmc run`)", p->name);
        return TFMC_ERR_USAGE;
    }
    if (n == 0 || n > (size_t)p->rasp->max_len) {
        tfmc_report(ctx, "input length %zu is outside 1..%d", n, p->rasp->max_len);
        return TFMC_ERR_INPUT;
    }
    Arena scratch;
    jmp_buf oom;
    arena_init(&scratch, &ctx->alloc, &oom);
    if (setjmp(oom)) {
        arena_free(&scratch);
        return TFMC_ERR_NOMEM;
    }
    RaspTrace t;
    interp_run(p->rasp, tokens, (int)n, &scratch, &t);
    if (out) {
        memcpy(out, t.sop[p->rasp->output->id], sizeof(Value) * n);
        /* a numerical output is a number: `true` counts as 1 */
        if (p->rasp->output->enc == ENC_NUMERICAL)
            for (size_t i = 0; i < n; i++)
                if (out[i].kind == TFMC_BOOL) out[i] = value_int(out[i].u.b);
    }
    if (trace) interp_trace_print(p->rasp, &t, trace);
    arena_free(&scratch);
    return TFMC_OK;
}

TfmcStatus tfmc_eval(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, TfmcValue *out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, run(ctx, p, tokens, n, out, NULL));
}

TfmcStatus tfmc_eval_trace(TfmcContext *ctx, const TfmcProgram *p, const TfmcValue *tokens, size_t n, FILE *out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, run(ctx, p, tokens, n, NULL, out));
}

int tfmc_format_value(TfmcValue v, char *buf, size_t cap) { return value_format(v, buf, cap); }

void tfmc_print_values(FILE *out, const TfmcValue *v, size_t n)
{
    char buf[128];
    for (size_t i = 0; i < n; i++) {
        value_format(v[i], buf, sizeof buf);
        fprintf(out, "%s%s", i ? " " : "", buf);
    }
    fputc('\n', out);
}

const char *tfmc_model_tokenizer(const TfmcProgram *p) { return p->tokenizer; }

size_t tfmc_model_eos(const TfmcProgram *p, const int **ids)
{
    if (ids) *ids = p->eos;
    return (size_t)p->neos;
}
