/* test_api.c: the public API around evaluation: reading tokens, formatting values, finding
 * programs, and contexts with a custom allocator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tfmc_config.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif
#include "unit.h"

static void test_parse_tokens_strings(void)
{
    Loaded l;
    if (!LOAD(&l, "rasp p { vocab {\"a\", \"bb\", \"c\"}; max_len 3; return tokens; }")) {
        unit_unload(&l);
        return;
    }
    TfmcValue t[8];
    size_t n = 99;
    char err[256] = "";
    CHECK_INT(tfmc_parse_tokens(l.p, "bb a", t, 8, &n, err, sizeof err), TFMC_OK);
    CHECK_INT(n, 2);
    CU_ASSERT(t[0].kind == TFMC_STR && t[1].kind == TFMC_STR);
    CHECK_STR(t[0].u.s, "bb");
    CHECK_STR(t[1].u.s, "a");
    /* any whitespace separates tokens */
    CHECK_INT(tfmc_parse_tokens(l.p, " \tc  a\r\n", t, 8, &n, err, sizeof err), TFMC_OK);
    CHECK_INT(n, 2);
    CHECK_STR(t[0].u.s, "c");

    err[0] = '\0';
    CHECK_INT(tfmc_parse_tokens(l.p, "a d c", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_HAS(err, "unknown token `d`");
    CHECK_INT(n, 0);
    err[0] = '\0';
    CHECK_INT(tfmc_parse_tokens(l.p, "a b", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT); /* b is not bb */
    CHECK_HAS(err, "unknown token `b`");
    err[0] = '\0';
    CHECK_INT(tfmc_parse_tokens(l.p, "a a a a", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_HAS(err, "4 tokens, more than max_len 3");
    err[0] = '\0';
    CHECK_INT(tfmc_parse_tokens(l.p, "", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_HAS(err, "empty");
    err[0] = '\0';
    CHECK_INT(tfmc_parse_tokens(l.p, "  \t ", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_HAS(err, "empty");
    /* more tokens than the caller's array holds */
    CU_ASSERT(tfmc_parse_tokens(l.p, "a a a", t, 2, &n, err, sizeof err) != TFMC_OK);

    char w0[] = "c", w1[] = "bb", w2[] = "zz";
    char *words[] = { w0, w1, w2 };
    CHECK_INT(tfmc_parse_words(l.p, words, 2, t, 8, err, sizeof err), TFMC_OK);
    CHECK_STR(t[0].u.s, "c");
    CHECK_STR(t[1].u.s, "bb");
    err[0] = '\0';
    CHECK_INT(tfmc_parse_words(l.p, words, 3, t, 8, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_HAS(err, "unknown token `zz`");
    CHECK_INT(tfmc_parse_words(l.p, words, 0, t, 8, err, sizeof err), TFMC_ERR_INPUT);
    unit_unload(&l);
}

static void test_parse_tokens_integers(void)
{
    Loaded l;
    if (!LOAD(&l, "rasp p { vocab {-2..2, 10}; max_len 4; return tokens; }")) {
        unit_unload(&l);
        return;
    }
    TfmcValue t[8];
    size_t n = 0;
    char err[256] = "";
    CHECK_INT(tfmc_parse_tokens(l.p, "-2 0 10 2", t, 8, &n, err, sizeof err), TFMC_OK);
    CHECK_INT(n, 4);
    static const int64_t want[] = { -2, 0, 10, 2 };
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT(t[i].kind == TFMC_INT);
        CHECK_INT(t[i].u.i, want[i]);
    }
    err[0] = '\0';
    CHECK_INT(tfmc_parse_tokens(l.p, "1 3", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_HAS(err, "unknown token `3`");
    err[0] = '\0';
    CHECK_INT(tfmc_parse_tokens(l.p, "1 x", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_HAS(err, "`x`");
    CHECK_INT(tfmc_parse_tokens(l.p, "1 2 1 2 1", t, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    /* evaluation of integer tokens */
    EVAL_EQ(&l, "10 -2 1", "10 -2 1");
    unit_unload(&l);
}

static void test_format_value(void)
{
    char buf[64];
    TfmcValue v = { 0 };
    CHECK_INT(tfmc_format_value(v, buf, sizeof buf), 1);
    CHECK_STR(buf, "_");
    v = value_bool(true);
    tfmc_format_value(v, buf, sizeof buf);
    CHECK_STR(buf, "true");
    v = value_bool(false);
    tfmc_format_value(v, buf, sizeof buf);
    CHECK_STR(buf, "false");
    v = value_int(-9007199254740993LL);
    tfmc_format_value(v, buf, sizeof buf);
    CHECK_STR(buf, "-9007199254740993");
    static const struct {
        double f;
        const char *want;
    } floats[] = {
        { 0.5, "0.5" },        { 2.0, "2" },          { 2.0 / 3, "0.666666667" }, { 1.0 / 3, "0.333333333" },
        { -3.5, "-3.5" },      { 1e20, "1e+20" },     { 123456789.0, "123456789" }, { 1234567891.0, "1.23456789e+09" },
        { 1e-7, "1e-07" },     { 0.1, "0.1" },
    };
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        int len = tfmc_format_value(value_float(floats[i].f), buf, sizeof buf);
        CHECK_STR(buf, floats[i].want);
        CHECK_INT(len, strlen(floats[i].want));
    }
    TfmcValue s = { .kind = TFMC_STR, .u.s = "word" };
    CHECK_INT(tfmc_format_value(s, buf, sizeof buf), 4);
    CHECK_STR(buf, "word");

    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    TfmcValue row[4] = { value_int(3), { 0 }, value_float(0.25), s };
    tfmc_print_values(f, row, 4);
    rewind(f);
    char line[64] = "";
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
    CHECK_STR(line, "3 _ 0.25 word\n");
    fclose(f);
}

static void test_find_program(void)
{
    static const char two[] = "rasp first { vocab {1}; max_len 1; return tokens; }\n"
                              "rasp second { vocab {2}; max_len 2; return tokens; }\n";
    TfmcContext *ctx = tfmc_context_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CHECK_STR(tfmc_version(), TFMC_VERSION);
    CHECK_INT(tfmc_program_count(ctx), 0);
    const TfmcProgram *p = (const TfmcProgram *)1;
    CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_ERR_USAGE);
    CU_ASSERT_PTR_NULL(p);
    CHECK_INT(tfmc_load_string(ctx, "two.tfm", two, strlen(two)), TFMC_OK);
    CHECK_INT(tfmc_diagnostic_count(ctx), 1); /* the failed lookup above */
    CHECK_INT(tfmc_program_count(ctx), 2);
    CU_ASSERT_FATAL(tfmc_program_at(ctx, 0) && tfmc_program_at(ctx, 1));
    CHECK_STR(tfmc_program_name(tfmc_program_at(ctx, 0)), "first");
    CHECK_STR(tfmc_program_name(tfmc_program_at(ctx, 1)), "second");
    CU_ASSERT_PTR_NULL(tfmc_program_at(ctx, 2));

    CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_ERR_USAGE);
    CHECK_INT(tfmc_diagnostic_count(ctx), 2);
    const TfmcDiagnostic *d = tfmc_diagnostic(ctx, 1);
    if (d) CHECK_HAS(d->message, "2 programs");
    CHECK_INT(tfmc_find_program(ctx, "second", &p), TFMC_OK);
    CU_ASSERT(p == tfmc_program_at(ctx, 1));
    CHECK_INT(tfmc_program_max_len(p), 2);
    CHECK_INT(tfmc_find_program(ctx, "third", &p), TFMC_ERR_USAGE);
    CU_ASSERT_PTR_NULL(p);
    d = tfmc_diagnostic(ctx, 2);
    if (d) {
        CHECK_HAS(d->message, "no program or model named `third`");
        CHECK_HAS(d->message, "first, second");
    }
    /* a second load adds to the same context */
    static const char more[] = "rasp third { vocab {3}; max_len 3; return tokens; }";
    CHECK_INT(tfmc_load_string(ctx, "more.tfm", more, strlen(more)), TFMC_OK);
    CHECK_INT(tfmc_program_count(ctx), 3);
    CHECK_INT(tfmc_find_program(ctx, "third", &p), TFMC_OK);
    CHECK_INT(tfmc_program_max_len(p), 3);
    /* a load that fails adds diagnostics, not programs */
    static const char bad[] = "rasp fourth { vocab {3}; max_len 3; return nothing; }";
    CHECK_INT(tfmc_load_string(ctx, "bad.tfm", bad, strlen(bad)), TFMC_ERR_COMPILE);
    CHECK_INT(tfmc_program_count(ctx), 3);
    d = tfmc_diagnostic(ctx, tfmc_diagnostic_count(ctx) - 1);
    if (d) {
        CHECK_STR(d->file, "bad.tfm");
        CHECK_HAS(d->message, "unknown name `nothing`");
    }
    tfmc_context_free(ctx);
}

static void test_load_file(void)
{
    char path[] = "/tmp/tfmc_unit_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    static const char src[] = "rasp p {\n  vocab {1, 2};\n  max_len 3;\n  return tokens * 10;\n}\n";
    FILE *f = fdopen(fd, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(src, f);
    fclose(f);
    TfmcContext *ctx = tfmc_context_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CHECK_INT(tfmc_load_file(ctx, path), TFMC_OK);
    Loaded l = { ctx, NULL };
    CHECK_INT(tfmc_find_program(ctx, NULL, &l.p), TFMC_OK);
    EVAL_EQ(&l, "2 1 2", "20 10 20");
    /* a directory is not a source file; neither is a missing one */
    CHECK_INT(tfmc_load_file(ctx, "/tmp"), TFMC_ERR_IO);
    CHECK_INT(tfmc_load_file(ctx, "/nonexistent/dir/x.tfm"), TFMC_ERR_IO);
    CHECK_INT(tfmc_diagnostic_count(ctx), 2);
    const TfmcDiagnostic *d = tfmc_diagnostic(ctx, 1);
    if (d) CHECK_STR(d->file, "/nonexistent/dir/x.tfm");
    CHECK_INT(tfmc_program_count(ctx), 1);
    tfmc_context_free(ctx);
    remove(path);
}

/* ----------------------------------------------------- custom allocator */

enum { MAX_LIVE = 4096 };
typedef struct Tracker {
    void *live[MAX_LIVE];
    long nlive, allocs, news, frees, bad_frees;
    long fail_after; /* -1: never */
} Tracker;

static void *tracking_realloc(void *ud, void *ptr, size_t size)
{
    Tracker *t = ud;
    long at = -1;
    if (ptr) {
        for (long i = 0; i < t->nlive; i++)
            if (t->live[i] == ptr) at = i;
        if (at < 0) {
            t->bad_frees++; /* not ours, or freed twice: leave it alone */
            return NULL;
        }
    }
    if (size == 0) {
        if (ptr) {
            free(ptr);
            t->live[at] = t->live[--t->nlive];
            t->frees++;
        }
        return NULL;
    }
    if (t->fail_after >= 0 && t->allocs >= t->fail_after) return NULL;
    if (!ptr && t->nlive >= MAX_LIVE) return NULL;
    void *p = realloc(ptr, size);
    if (!p) return NULL;
    if (ptr) {
        t->live[at] = p;
    } else {
        t->live[t->nlive++] = p;
        t->news++;
    }
    t->allocs++;
    return p;
}

static void test_custom_allocator(void)
{
    static Tracker t;
    memset(&t, 0, sizeof t);
    t.fail_after = -1;
    TfmcAllocator a = { tracking_realloc, &t };
    TfmcContext *ctx = tfmc_context_new(&a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    CU_ASSERT(t.nlive >= 1);
    static const char src[] = "rasp reverse {\n"
                              "  vocab {\"a\", \"b\", \"c\", \"d\"};\n"
                              "  max_len 8;\n"
                              "  opp  = length - indices - 1;\n"
                              "  flip = select(indices, opp, ==);\n"
                              "  return aggregate(flip, tokens);\n"
                              "}\n";
    CHECK_INT(tfmc_load_string(ctx, "reverse.tfm", src, strlen(src)), TFMC_OK);
    const TfmcProgram *p = NULL;
    CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_OK);
    long after_load = t.allocs;
    CU_ASSERT(after_load >= 2);
    if (p) {
        TfmcValue tok[8], out[8];
        size_t n = 0;
        char err[128];
        CHECK_INT(tfmc_parse_tokens(p, "a b c", tok, 8, &n, err, sizeof err), TFMC_OK);
        long live_before = t.nlive;
        CHECK_INT(tfmc_eval(ctx, p, tok, n, out), TFMC_OK);
        CU_ASSERT(t.allocs > after_load); /* the interpreter's scratch memory comes from the allocator too */
        CHECK_INT(t.nlive, live_before);  /* and is given back at once */
        char buf[16];
        tfmc_format_value(out[0], buf, sizeof buf);
        CHECK_STR(buf, "c");
    }
    static const char bad[] = "rasp q { vocab {1}; max_len 2; return nothing + 1; }\nrasp r { x = ; }";
    CHECK_INT(tfmc_load_string(ctx, "bad.tfm", bad, strlen(bad)), TFMC_ERR_COMPILE);
    CHECK_INT(tfmc_find_program(ctx, "zzz", &p), TFMC_ERR_USAGE);
    tfmc_report(ctx, "a client error %d", 1);
    CU_ASSERT(tfmc_diagnostic_count(ctx) >= 3);
    tfmc_context_free(ctx);
    CHECK_INT(t.nlive, 0);
    CHECK_INT(t.bad_frees, 0);
    CHECK_INT(t.frees, t.news); /* every block freed exactly once */
    CU_ASSERT(t.news >= 3);
}

/* Load src with an allocator that fails after k = 0, 1, 2, ... allocations until the load succeeds:
 * every call reports TFMC_ERR_NOMEM or succeeds, and tfmc_context_free gives everything back. */
static void load_failing_allocations(const char *src, size_t len, int line)
{
    static Tracker t;
    int nomem = 0, ok = 0;
    for (long k = 0; k < 1000 && !ok; k++) {
        memset(&t, 0, sizeof t);
        t.fail_after = k;
        TfmcAllocator a = { tracking_realloc, &t };
        TfmcContext *ctx = tfmc_context_new(&a);
        if (!ctx) {
            unit_check_int(t.nlive, 0, "blocks left after a failed tfmc_context_new", __FILE__, line);
            continue;
        }
        TfmcStatus st = tfmc_load_string(ctx, "oom.tfm", src, len);
        unit_check_int(st == TFMC_OK || st == TFMC_ERR_NOMEM, 1, "status OK or NOMEM", __FILE__, line);
        if (st == TFMC_OK) {
            ok++;
            const TfmcProgram *p = NULL;
            if (tfmc_find_program(ctx, NULL, &p) == TFMC_OK) {
                TfmcValue tok[1];
                size_t n = 0;
                char err[64];
                if (tfmc_parse_tokens(p, "a", tok, 1, &n, err, sizeof err) == TFMC_OK) {
                    TfmcValue out[1];
                    st = tfmc_eval(ctx, p, tok, 1, out);
                    unit_check_int(st == TFMC_OK || st == TFMC_ERR_NOMEM, 1, "eval status", __FILE__, line);
                }
            }
        } else if (st == TFMC_ERR_NOMEM) {
            nomem++;
        }
        tfmc_context_free(ctx);
        unit_check_int(t.nlive, 0, "blocks left after tfmc_context_free", __FILE__, line);
        unit_check_int(t.bad_frees, 0, "bad frees", __FILE__, line);
    }
    unit_check_int(nomem > 0, 1, "some loads ran out of memory", __FILE__, line);
    unit_check_int(ok, 1, "the load succeeded in the end", __FILE__, line);
}

/* A model's input: token ids, as `tfmc run` and the generated main() read them. */
static void test_parse_ids(void)
{
    Loaded l;
    if (!LOAD(&l, "model m { vocab 10; max_len 3; dim 4; init random(seed 1); embed token, position learned;\n"
                  "  block x 1 { mlp hidden 4; } unembed tied; }")) {
        unit_unload(&l);
        return;
    }
    int ids[8] = { 0 };
    size_t n = 99;
    char err[256] = "";
    /* the vocabulary is known once the model is compiled */
    CHECK_INT(tfmc_parse_ids(l.p, "1", ids, 8, &n, err, sizeof err), TFMC_ERR_USAGE);
    CHECK_INT(tfmc_compile(l.ctx, l.p), TFMC_OK);
    CHECK_INT(tfmc_parse_ids(l.p, " 9\t0 3\n", ids, 8, &n, err, sizeof err), TFMC_OK);
    CHECK_INT(n, 3);
    CU_ASSERT(ids[0] == 9 && ids[1] == 0 && ids[2] == 3);
    /* out of range, not a number, empty, too long, over the caller's capacity */
    CHECK_INT(tfmc_parse_ids(l.p, "1 10", ids, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_STR(err, "token `10` is not a token id in 0..9");
    CHECK_INT(n, 0);
    CHECK_INT(tfmc_parse_ids(l.p, "1 -1", ids, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_INT(tfmc_parse_ids(l.p, "2x", ids, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_INT(tfmc_parse_ids(l.p, "99999999999999999999", ids, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_INT(tfmc_parse_ids(l.p, " \n", ids, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_STR(err, "empty input: a sequence needs at least one token");
    CHECK_INT(tfmc_parse_ids(l.p, "1 2 3 4", ids, 8, &n, err, sizeof err), TFMC_ERR_INPUT);
    CHECK_STR(err, "the sequence has 4 tokens, more than max_len 3");
    CHECK_INT(tfmc_parse_ids(l.p, "1 2 3", ids, 2, &n, err, sizeof err), TFMC_ERR_INPUT);
    char w0[] = "4", w1[] = "5", *words[2] = { w0, w1 };
    CHECK_INT(tfmc_parse_id_words(l.p, words, 2, ids, 8, err, sizeof err), TFMC_OK);
    CU_ASSERT(ids[0] == 4 && ids[1] == 5);
    unit_unload(&l);
    /* a RASP program's tokens are values, not ids */
    if (!LOAD(&l, "rasp p { vocab {1, 2}; max_len 3; return tokens; }")) {
        unit_unload(&l);
        return;
    }
    CHECK_INT(tfmc_parse_ids(l.p, "1", ids, 8, &n, err, sizeof err), TFMC_ERR_USAGE);
    unit_unload(&l);
}

/* Programs the interpreter runs but float32 weights cannot hold: a clear error at the node, not
 * an internal one (found by tests/fuzz/fuzz_compile.py). */
static void test_cannot_compile(void)
{
    static const struct { const char *src, *want; } cases[] = {
        { "rasp p { vocab {0, 1}; max_len 4; z = tokens % 0;\n"
          "  return aggregate(select(indices, indices, ==), z); }",
          "the values it aggregates are always undefined" },
        { "rasp p { vocab {0, 1}; max_len 4; return numerical(tokens * 1e39); }", "beyond float32's range" },
        /* sizes past what tfmc compiles say the limit: 8001 token + 1024 index + 8001 value dimensions */
        { "rasp p { vocab {0..8000}; max_len 1024; return tokens - 1; }",
          "a residual stream of 17028 dimensions (the limit is 11585" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TfmcContext *ctx = tfmc_context_new(NULL);
        const TfmcProgram *p = NULL;
        CHECK_INT(tfmc_load_string(ctx, "p.tfm", cases[i].src, strlen(cases[i].src)), TFMC_OK);
        CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_OK);
        if (p) CHECK_INT(tfmc_compile(ctx, p), TFMC_ERR_COMPILE);
        size_t n = tfmc_diagnostic_count(ctx);
        const TfmcDiagnostic *d = n ? tfmc_diagnostic(ctx, n - 1) : NULL;
        CU_ASSERT(d && d->line > 0 && strstr(d->message, cases[i].want) && !strstr(d->message, "internal error"));
        if (d && !strstr(d->message, cases[i].want)) fprintf(stderr, "    got: %s\n", d->message);
        tfmc_context_free(ctx);
    }
}

static void test_allocation_failures(void)
{
    /* out of memory while checking: a numerical mean's value set, a def, maps */
    static const char small[] = "def hist(s) { return selector_width(select(s, s, ==)); }\n"
                                "rasp p {\n"
                                "  vocab {\"a\", \"b\"};\n"
                                "  max_len 4;\n"
                                "  f = numerical(aggregate(select(indices, indices, <=), numerical(tokens == \"a\")));\n"
                                "  return hist(tokens) + f;\n"
                                "}\n";
    load_failing_allocations(small, strlen(small), __LINE__);

    /* out of memory while parsing: tokens that fill several arena blocks */
    enum { NSTR = 60, STRLEN = 2000 };
    static char big[NSTR * (STRLEN + 8) + 256];
    size_t len = (size_t)snprintf(big, sizeof big, "rasp p {\n  max_len 2;\n  vocab {\"a\"");
    for (int i = 0; i < NSTR; i++) {
        len += (size_t)snprintf(big + len, sizeof big - len, ", \"%03d", i);
        memset(big + len, 'x', STRLEN);
        len += STRLEN;
        big[len++] = '"';
    }
    len += (size_t)snprintf(big + len, sizeof big - len, "};\n  return tokens;\n}\n");
    load_failing_allocations(big, len, __LINE__);

#if defined(__SANITIZE_ADDRESS__)
    /* memory taken behind the allocator's back (malloc) and lost on the way out */
    CU_ASSERT_EQUAL(__lsan_do_recoverable_leak_check(), 0);
#endif
}

/* The C of a program at one -O level, in memory. */
static char *emit_c_text(const char *src, int level, size_t *len)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcOptions o = { 0 };
    o.opt_level = level;
    tfmc_set_options(ctx, &o);
    const TfmcProgram *p = NULL;
    char *text = NULL;
    *len = 0;
    FILE *f = open_memstream(&text, len);
    if (tfmc_load_string(ctx, "shared.tfm", src, strlen(src)) != TFMC_OK || tfmc_find_program(ctx, NULL, &p) != TFMC_OK ||
        tfmc_emit_c(ctx, p, NULL, f) != TFMC_OK)
        tfmc_print_diagnostics(ctx, stderr);
    fclose(f);
    tfmc_context_free(ctx);
    return text;
}

static long count_of(const char *text, const char *what)
{
    long n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

/* `block shared x 3` holds one set of weights: the generated C writes it once at -O1 and, with the
 * Q, K and V projections stacked into one matrix, once at -O2 too (it wrote three stacked copies). */
static void test_shared_weights_once(void)
{
    static const char src[] = "model shared { vocab 20; max_len 8; dim 16; init random(seed 4); "
                              "embed token, position learned; block shared x 3 { attention heads 2, causal, "
                              "norm layernorm(eps 1e-5); mlp hidden 32, act gelu, norm layernorm(eps 1e-5); } "
                              "norm layernorm(eps 1e-5); unembed tied; }";
    size_t n1, n2;
    char *c1 = emit_c_text(src, 1, &n1), *c2 = emit_c_text(src, 2, &n2);
    CU_ASSERT_FATAL(c1 && c2 && n1 > 0 && n2 > 0);
    /* every weight is one hex-float literal: the same values at both levels */
    CHECK_INT(count_of(c2, "0x"), count_of(c1, "0x"));
    CHECK_INT(count_of(c2, "_layers_0_attention_qkv_weight["), 1); /* one stacked matrix, declared once */
    CHECK_INT(count_of(c2, "_layers_0_attention_qkv_bias["), 1);   /* and its bias */
    free(c1);
    free(c2);
}

/* The bytes of every `static const float|int NAME[N]` array of a C text. */
static long array_bytes(const char *text)
{
    long bytes = 0;
    static const char *const kinds[2] = { "static const float ", "static const int " };
    for (int k = 0; k < 2; k++)
        for (const char *p = text; (p = strstr(p, kinds[k])); p++) {
            const char *br = strchr(p, '[');
            const char *nl = strchr(p, '\n');
            if (br && (!nl || br < nl)) bytes += 4 * strtol(br + 1, NULL, 10);
        }
    return bytes;
}

/* --report's "weight B" of a declared model is what the generated C's weight arrays hold: a tied
 * head, shared blocks and stacked QKV counted once, the norms and experts included. */
static void test_report_weight_bytes(void)
{
    static const char src[] = "model w { vocab 24; max_len 8; dim 16; init random(seed 6); embed token, position learned; "
                              "block shared x 2 { attention heads 2, causal, norm layernorm(eps 1e-5); "
                              "moe experts 3, top 2, hidden 8, act swiglu, norm rmsnorm(eps 1e-5); } "
                              "block x 1 { attention heads 4, kv_heads 2, causal; mlp hidden 32, act gelu; } "
                              "norm layernorm(eps 1e-5); unembed tied; }";
    for (int level = 0; level <= 2; level++) {
        char *report = NULL, *text = NULL;
        size_t rlen = 0, tlen = 0;
        FILE *rf = open_memstream(&report, &rlen), *tf = open_memstream(&text, &tlen);
        TfmcContext *ctx = tfmc_context_new(NULL);
        TfmcOptions o = { 0 };
        o.opt_level = level;
        o.report = rf;
        tfmc_set_options(ctx, &o);
        const TfmcProgram *p = NULL;
        CHECK_INT(tfmc_load_string(ctx, "w.tfm", src, strlen(src)), TFMC_OK);
        CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_OK);
        CHECK_INT(tfmc_emit_c(ctx, p, NULL, tf), TFMC_OK);
        fclose(rf);
        fclose(tf);
        /* the last row: after, stored, non-zero, FLOPs/token, weight B, arena B */
        const char *last = report;
        for (const char *q = report; q && *q; q++)
            if (*q == '\n' && q[1]) last = q + 1;
        char after[32];
        long stored, nonzero, weight, arena;
        double flops;
        CU_ASSERT_FATAL(sscanf(last, "%31s %ld %ld %lf %ld %ld", after, &stored, &nonzero, &flops, &weight, &arena) == 6);
        CHECK_INT(weight, array_bytes(text));
        free(report);
        free(text);
        tfmc_context_free(ctx);
    }
}

/* A C file that cannot be written is an I/O error with a message (the backend returns a status). */
static void test_emit_write_error(void)
{
    FILE *full = fopen("/dev/full", "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(full); /* Linux: every write fails with ENOSPC */
    static const char src[] = "rasp reverse { vocab {\"a\", \"b\"}; max_len 6; opp = length - indices - 1;\n"
                              "  return aggregate(select(indices, opp, ==), tokens); }";
    TfmcContext *ctx = tfmc_context_new(NULL);
    const TfmcProgram *p = NULL;
    CHECK_INT(tfmc_load_string(ctx, "r.tfm", src, strlen(src)), TFMC_OK);
    CHECK_INT(tfmc_find_program(ctx, NULL, &p), TFMC_OK);
    TfmcCOptions co = { true, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL };
    CHECK_INT(tfmc_emit_c(ctx, p, &co, full), TFMC_ERR_IO);
    const TfmcDiagnostic *d = tfmc_diagnostic(ctx, tfmc_diagnostic_count(ctx) - 1);
    CU_ASSERT(d && strstr(d->message, "cannot write the C of `reverse`"));
    fclose(full);
    tfmc_context_free(ctx);
}

/* A session's profile lists every kernel the program calls, as many times per run as
 * --emit=kernels shows it, and every layer of --emit=graph, in order; the logits are those of a
 * session without it. */
static void test_session_profile(void)
{
    static const char src[] = "model prof { vocab 30; max_len 16; dim 32; init random(seed 9); "
                              "embed token, position rope(base 10000); block x 2 { attention heads 4, causal, "
                              "norm rmsnorm(eps 1e-5); mlp hidden 64, act swiglu, norm rmsnorm(eps 1e-5); } "
                              "norm rmsnorm(eps 1e-5); unembed tied; }";
    TfmcContext *ctx = tfmc_context_new(NULL);
    const TfmcProgram *p = NULL;
    CU_ASSERT_FATAL(tfmc_load_string(ctx, "prof.tfm", src, strlen(src)) == TFMC_OK &&
                    tfmc_find_program(ctx, NULL, &p) == TFMC_OK && tfmc_compile(ctx, p) == TFMC_OK);
    char *kernels = NULL, *profile = NULL, *graph = NULL;
    size_t klen = 0, plen = 0, glen = 0;
    FILE *f = open_memstream(&kernels, &klen);
    CHECK_INT(tfmc_emit(ctx, p, TFMC_EMIT_KERNELS, f), TFMC_OK);
    fclose(f);
    f = open_memstream(&graph, &glen);
    CHECK_INT(tfmc_emit(ctx, p, TFMC_EMIT_GRAPH, f), TFMC_OK);
    fclose(f);
    TfmcSession *plain, *timed;
    CU_ASSERT_FATAL(tfmc_session_new(ctx, p, &plain) == TFMC_OK && tfmc_session_new(ctx, p, &timed) == TFMC_OK);
    CHECK_INT(tfmc_session_profile(timed, true), TFMC_OK);
    int ids[5] = { 1, 7, 3, 29, 0 };
    float a[30], b[30];
    CHECK_INT(tfmc_session_prefill_last(plain, ids, 5, a), TFMC_OK);
    CHECK_INT(tfmc_session_prefill_last(timed, ids, 5, b), TFMC_OK);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    CHECK_INT(tfmc_session_decode(plain, 4, a), TFMC_OK);
    CHECK_INT(tfmc_session_decode(timed, 4, b), TFMC_OK);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    f = open_memstream(&profile, &plen);
    tfmc_session_print_profile(timed, f);
    fclose(f);
    CU_ASSERT(strstr(profile, "1 prefills, 1 decode steps") != NULL);
    /* each kernel's count in the program text against the profile's calls/run */
    int kinds = 0;
    for (const char *line = strchr(profile, '\n') + 1; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char name[64];
        long calls;
        double ms;
        if (sscanf(line, " %63s %ld %lf", name, &calls, &ms) != 3 || strncmp(name, "tfmcrt_", 7)) continue;
        char pattern[80];
        snprintf(pattern, sizeof pattern, " %s(", name); /* after the indent, or a head call's [head] */
        long in_text = 0;
        for (const char *q = kernels; (q = strstr(q, pattern)); q++) in_text++;
        CHECK_INT(calls, in_text);
        CU_ASSERT(ms >= 0);
        kinds++;
    }
    long distinct = 0;
    static const char *const all[] = { "tfmcrt_embed(", "tfmcrt_linear_ex(", "tfmcrt_norm_ex(", "tfmcrt_rope_ex(",
                                       "tfmcrt_kv_store_ex(", "tfmcrt_attend_ex(", "tfmcrt_add_ex(", "tfmcrt_glu_ex(",
                                       "tfmcrt_slice(", "tfmcrt_copy(" };
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) distinct += strstr(kernels, all[k]) != NULL;
    CHECK_INT(kinds, distinct);
    /* the layers, in the graph's order */
    const char *at = profile;
    static const char *const layers[] = { "\n  embed ", "layers.0.attention", "layers.1.mlp", "layers.2.attention",
                                          "layers.3.mlp", "\n  head " };
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
        const char *q = strstr(at, layers[l]);
        CU_ASSERT(q != NULL);
        if (q) at = q;
        if (l > 0 && l < 5) CU_ASSERT(strstr(graph, layers[l]) != NULL);
    }
    tfmc_session_free(plain);
    tfmc_session_free(timed);
    free(kernels);
    free(profile);
    free(graph);
    tfmc_context_free(ctx);
}

bool register_api_tests(void)
{
    static const UnitTest tests[] = {
        { "parse tokens: strings", test_parse_tokens_strings },
        { "parse tokens: integers", test_parse_tokens_integers },
        { "format values", test_format_value },
        { "find programs", test_find_program },
        { "load a file", test_load_file },
        { "custom allocator", test_custom_allocator },
        { "parse ids (models)", test_parse_ids },
        { "cannot compile: clear errors", test_cannot_compile },
        { "allocation failures", test_allocation_failures },
        { "shared blocks: weights emitted once at -O1 and -O2", test_shared_weights_once },
        { "emit C: a write error is reported", test_emit_write_error },
        { "--report's weight bytes are the generated arrays'", test_report_weight_bytes },
        { "session profile: every kernel and layer, results unchanged", test_session_profile },
    };
    return UNIT_SUITE("api", tests);
}
