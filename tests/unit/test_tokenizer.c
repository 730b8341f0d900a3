/* test_tokenizer.c: the JSON reader and the tokenizers on small tokenizer.json files written here,
 * whose ids are worked out by hand from the BPE rule (lowest merge rank first, the leftmost of
 * equal ones), and their errors. tests/tokenizers/ checks real files against other implementations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "unicode.h"
#include "unit.h"

/* ------------------------------------------------------------ the fixed-buffer allocator */

/* support/bump.c, the tokenizer's allocator in generated C: aligned allocations, the last one
 * resized and freed in place, frees in reverse order giving everything back, marks, NULL when full. */
static void test_bump(void)
{
    static ArenaAlign buf[1024]; /* 16 KiB */
    Bump b;
    bump_init(&b, (unsigned char *)buf + 1, sizeof buf - 1); /* a misaligned start is aligned */
    TfmcAllocator al = bump_allocator(&b);
    char *x = al.realloc(al.ud, NULL, 10);
    char *y = al.realloc(al.ud, NULL, 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL((uintptr_t)x % sizeof(ArenaAlign), 0);
    CU_ASSERT_EQUAL((uintptr_t)y % sizeof(ArenaAlign), 0);
    CU_ASSERT(y >= x + 10);
    memset(y, 7, 100);
    size_t top = b.top;
    CU_ASSERT_PTR_EQUAL(al.realloc(al.ud, y, 1000), y); /* the last grows in place */
    CU_ASSERT(y[99] == 7);
    memset(x, 3, 10);
    char *x2 = al.realloc(al.ud, x, 20); /* not the last: moved, its bytes kept */
    CU_ASSERT_PTR_NOT_NULL_FATAL(x2);
    CU_ASSERT(x2 > y && x2[9] == 3);
    CU_ASSERT_PTR_NULL(al.realloc(al.ud, x2, 0));
    CU_ASSERT_PTR_NULL(al.realloc(al.ud, y, 0)); /* reverse order: all given back but x */
    CU_ASSERT(b.top < top);
    size_t mark = bump_mark(&b);
    CU_ASSERT_PTR_NULL(al.realloc(al.ud, NULL, 20000)); /* no room: NULL */
    CU_ASSERT_PTR_NOT_NULL(al.realloc(al.ud, NULL, 4000));
    CU_ASSERT_PTR_NOT_NULL(al.realloc(al.ud, NULL, 4000));
    size_t high = b.high;
    bump_release(&b, mark);
    CU_ASSERT_EQUAL(b.top, mark);
    CU_ASSERT_EQUAL(b.high, high);
    char *z = al.realloc(al.ud, NULL, 8);
    CU_ASSERT_PTR_NOT_NULL(z);
    CU_ASSERT_PTR_EQUAL(al.realloc(al.ud, z, 16), z); /* after a release the newest is the last again */
}

/* ------------------------------------------------------------ JSON */

static void test_json_values(void)
{
    jmp_buf oom;
    Arena a;
    arena_init(&a, &libc_allocator, &oom);
    if (setjmp(oom)) CU_FAIL_FATAL("out of memory");
    const char *text = "{\"a\": [1, -2.5e1, true, null, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {}, \"c\": []}";
    JsonReader r;
    json_init(&r, text, strlen(text), &a);
    JsonStr key, s;
    long long i;
    double d;
    bool b;
    CU_ASSERT(json_object(&r));
    CU_ASSERT(json_member(&r, &key) && json_str_is(key, "a"));
    CU_ASSERT(json_array(&r));
    CU_ASSERT(json_element(&r) && json_int(&r, 0, 10, &i));
    CHECK_INT(i, 1);
    CU_ASSERT(json_element(&r) && json_number(&r, &d));
    CHECK_DBL(d, -25.0, 0);
    CU_ASSERT(json_element(&r) && json_bool(&r, &b) && b);
    CU_ASSERT(json_element(&r) && json_null(&r));
    CU_ASSERT(json_element(&r) && json_string(&r, &s));
    CHECK_STR(s.s, "x\xc3\xa9\xf0\x9f\x98\x80\n"); /* é and U+1F600 from a surrogate pair */
    CU_ASSERT(!json_element(&r));
    CU_ASSERT(json_member(&r, &key) && json_str_is(key, "b") && json_skip(&r));
    CU_ASSERT(json_member(&r, &key) && json_str_is(key, "c") && json_skip(&r));
    CU_ASSERT(!json_member(&r, &key));
    CU_ASSERT(json_end(&r) && !json_failed(&r));
    arena_free(&a);
}

/* The first error of text: its line, column and message. */
static void expect_json_error(const char *text, int line, int col, const char *sub)
{
    jmp_buf oom;
    Arena a;
    arena_init(&a, &libc_allocator, &oom);
    if (setjmp(oom)) CU_FAIL_FATAL("out of memory");
    JsonReader r;
    json_init(&r, text, strlen(text), &a);
    bool ok = json_skip(&r) && json_end(&r);
    CU_ASSERT(!ok);
    int l, c;
    json_where(&r, &l, &c);
    CHECK_INT(l, line);
    CHECK_INT(c, col);
    CHECK_HAS(r.error, sub);
    arena_free(&a);
}

static void test_json_errors(void)
{
    expect_json_error("[1, 2,]", 1, 7, "trailing comma");
    expect_json_error("{\"a\" 1}", 1, 6, "`:`");
    expect_json_error("{\n  \"a\": 01\n}", 2, 8, "leading zero");
    expect_json_error("\"\\ud800x\"", 1, 2, "surrogate");
    expect_json_error("\"\\q\"", 1, 2, "unknown escape");
    expect_json_error("\"abc", 1, 1, "not closed");
    expect_json_error("[1] 2", 1, 5, "after the end");
    expect_json_error("nul", 1, 1, "null");
    expect_json_error("\"tab\there\"", 1, 5, "control character");
    expect_json_error("\"\xff\"", 1, 2, "UTF-8");
    /* deep nesting is an error, not a deep recursion */
    char deep[2 * JSON_MAX_DEPTH + 8];
    memset(deep, '[', JSON_MAX_DEPTH + 1);
    memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    deep[2 * JSON_MAX_DEPTH + 2] = '\0';
    expect_json_error(deep, 1, JSON_MAX_DEPTH + 1, "nested more than");
}

/* ------------------------------------------------------------ tokenizers */

static TfmcTokenizer *load(TfmcContext *ctx, const char *json)
{
    TfmcTokenizer *t = NULL;
    TfmcStatus st = tfmc_tokenizer_load_string(ctx, "tiny.json", json, strlen(json), &t);
    if (st != TFMC_OK) tfmc_print_diagnostics(ctx, stderr);
    CHECK_INT(st, TFMC_OK);
    return t;
}

/* The ids of text as "1 2 3". */
static void encode_text(const TfmcTokenizer *t, const char *text, unsigned flags, char *out, size_t cap)
{
    int ids[256];
    size_t n;
    out[0] = '\0';
    CHECK_INT(tfmc_tokenizer_encode(t, text, strlen(text), flags, ids, 256, &n), TFMC_OK);
    size_t at = 0;
    for (size_t i = 0; i < n && i < 256; i++) at += (size_t)snprintf(out + at, cap - at, i ? " %d" : "%d", ids[i]);
}

#define CHECK_ENCODE(t, text, flags, want)              \
    do {                                                \
        char got_[1024];                                \
        encode_text((t), (text), (flags), got_, sizeof got_); \
        CHECK_STR(got_, (want));                        \
    } while (0)

static const char *const rank_json =
    "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"bc\": 4, \"abc\": 5, \"aa\": 6},\n"
    " \"merges\": [\"b c\", \"a b\", \"a bc\", \"a a\"]}}";

static void test_bpe_ranks(void)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcTokenizer *t = load(ctx, rank_json);
    if (!t) goto out;
    CHECK_INT(tfmc_tokenizer_vocab(t), 7);
    /* abc: (b,c) has rank 0, so bc first, then (a,bc) of rank 2: abc. Had (a,b) gone first there
     * would be no merge for (ab,c) and the result would be 3 2. */
    CHECK_ENCODE(t, "abc", 0, "5");
    CHECK_ENCODE(t, "ab", 0, "3");
    /* aaa: three equal pairs; the leftmost merges first: aa a */
    CHECK_ENCODE(t, "aaa", 0, "6 0");
    CHECK_ENCODE(t, "aaaa", 0, "6 6");
    CHECK_ENCODE(t, "cab", 0, "2 3");
    /* a character it lacks, with no unk and no byte fallback: an error naming where */
    int ids[8];
    size_t n;
    CHECK_INT(tfmc_tokenizer_encode(t, "abx", 3, 0, ids, 8, &n), TFMC_ERR_INPUT);
    char text[16];
    size_t len;
    int abc[] = { 5, 2, 6 };
    CHECK_INT(tfmc_tokenizer_decode(t, abc, 3, 0, text, sizeof text, &len), TFMC_OK);
    CHECK_STR(text, "abccaa");
    int bad[] = { 7 };
    CHECK_INT(tfmc_tokenizer_decode(t, bad, 1, 0, text, sizeof text, &len), TFMC_ERR_INPUT);
    tfmc_tokenizer_free(t);
out:
    tfmc_context_free(ctx);
}

/* A SentencePiece-style BPE as Llama 2's: ▁ for spaces, prepended; byte fallback for the rest. */
static char *sentencepiece_json(void)
{
    size_t cap = 1 << 16, at = 0;
    char *j = malloc(cap);
    at += (size_t)snprintf(j + at, cap - at,
        "{\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true},\n"
        "                  {\"id\": 1, \"content\": \"<s>\", \"special\": true}],\n"
        " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\xe2\x96\x81\"},\n"
        "     {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"}]},\n"
        " \"pre_tokenizer\": null,\n"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},\n"
        "     {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]},\n"
        " \"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"\xe2\x96\x81\"}, \"content\": \" \"},\n"
        "     {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},\n"
        " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"fuse_unk\": true, \"vocab\": {\"<unk>\": 0, \"<s>\": 1");
    for (int b = 0; b < 256; b++) at += (size_t)snprintf(j + at, cap - at, ", \"<0x%02X>\": %d", b, 2 + b);
    /* 258 ▁, 259 h, 260 i, 261 ▁h, 262 ▁hi */
    at += (size_t)snprintf(j + at, cap - at, ", \"\xe2\x96\x81\": 258, \"h\": 259, \"i\": 260, \"\xe2\x96\x81h\": 261, \"\xe2\x96\x81hi\": 262},\n"
                                             " \"merges\": [\"\xe2\x96\x81 h\", \"\xe2\x96\x81h i\"]}}");
    return j;
}

static void test_sentencepiece_fallback_and_stream(void)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    char *json = sentencepiece_json();
    TfmcTokenizer *t = load(ctx, json);
    free(json);
    if (!t) goto out;
    /* "hi hi": ▁hi▁hi -> 262 262; é (C3 A9) is not in the vocabulary: its bytes' tokens */
    CHECK_ENCODE(t, "hi hi", 0, "262 262");
    CHECK_ENCODE(t, "hi hi", TFMC_TOKENIZE_ADD_SPECIAL, "1 262 262");
    CHECK_ENCODE(t, "h\xc3\xa9", 0, "261 197 171");
    /* <s> written in the text is the special token (and the text after it is prepended again) unless plain */
    CHECK_ENCODE(t, "hi<s>hi", 0, "262 1 262");
    CHECK_ENCODE(t, "i<s>", TFMC_TOKENIZE_PLAIN, "258 260 62 117 64"); /* < s > by their bytes: 0x3C 0x73 0x3E */
    CHECK_INT(tfmc_tokenizer_find(t, "\xe2\x96\x81hi"), 262);
    CHECK_INT(tfmc_tokenizer_find(t, "nope"), -1);
    CU_ASSERT(tfmc_tokenizer_is_special(t, 1));
    CU_ASSERT(!tfmc_tokenizer_is_special(t, 262));

    /* decoding: ▁ to a space, the leading one stripped, bytes joined into é */
    int ids[] = { 1, 262, 261, 197, 171, 262 };
    char text[64];
    size_t len;
    CHECK_INT(tfmc_tokenizer_decode(t, ids, 6, 0, text, sizeof text, &len), TFMC_OK);
    CHECK_STR(text, "<s> hi h\xc3\xa9 hi");
    CHECK_INT(tfmc_tokenizer_decode(t, ids, 6, TFMC_TOKENIZE_SKIP_SPECIAL, text, sizeof text, &len), TFMC_OK);
    CHECK_STR(text, "hi h\xc3\xa9 hi");
    /* a buffer too small: the length is still the whole text's */
    CHECK_INT(tfmc_tokenizer_decode(t, ids + 1, 5, 0, text, 4, &len), TFMC_OK);
    CHECK_INT(len, strlen("hi h\xc3\xa9 hi"));
    CHECK_STR(text, "hi ");

    /* streaming: é's first byte waits for its second */
    TfmcTokenStream s;
    tfmc_tokenizer_stream_init(&s, t, 0);
    char *piece = malloc(tfmc_tokenizer_stream_bytes(t));
    CHECK_INT(tfmc_tokenizer_stream_push(&s, 261, piece, &len), TFMC_OK);
    CHECK_STR(piece, "h"); /* the leading space stripped */
    CHECK_INT(tfmc_tokenizer_stream_push(&s, 197, piece, &len), TFMC_OK);
    CHECK_STR(piece, "");
    CHECK_INT(tfmc_tokenizer_stream_push(&s, 171, piece, &len), TFMC_OK);
    CHECK_STR(piece, "\xc3\xa9");
    CHECK_INT(tfmc_tokenizer_stream_push(&s, 262, piece, &len), TFMC_OK);
    CHECK_STR(piece, " hi");
    /* an incomplete character at the end becomes U+FFFD; a byte that cannot start one, at once */
    CHECK_INT(tfmc_tokenizer_stream_push(&s, 2 + 0xE2, piece, &len), TFMC_OK);
    CHECK_STR(piece, "");
    tfmc_tokenizer_stream_flush(&s, piece, &len);
    CHECK_STR(piece, "\xef\xbf\xbd");
    CHECK_INT(tfmc_tokenizer_stream_push(&s, 2 + 0x80, piece, &len), TFMC_OK);
    CHECK_STR(piece, "\xef\xbf\xbd");
    CHECK_INT(tfmc_tokenizer_stream_push(&s, 99999, piece, &len), TFMC_ERR_INPUT);
    free(piece);

    /* text that is not UTF-8: the offset of the bad byte */
    int out[16];
    size_t n;
    CHECK_INT(tfmc_tokenizer_encode(t, "hi\xc3(", 4, 0, out, 16, &n), TFMC_ERR_INPUT);
    CHECK_INT(n, 2);
    tfmc_tokenizer_free(t);
out:
    tfmc_context_free(ctx);
}

/* `count` copies of `word` encode as `count` copies of `unit` then `tail`: long texts go through
 * the per-call word cache and, as one piece of many symbols, BPE's heap. */
static void check_repeated(const TfmcTokenizer *t, const char *word, int count, const int *unit, size_t nunit,
                           const int *tail, size_t ntail)
{
    size_t wl = strlen(word), len = wl * (size_t)count;
    char *text = malloc(len + 1);
    for (int i = 0; i < count; i++) memcpy(text + wl * (size_t)i, word, wl);
    size_t cap = tfmc_tokenizer_max_ids(t, len), n = 0, want = nunit * (size_t)count + ntail;
    int *ids = malloc(cap * sizeof *ids);
    CHECK_INT(tfmc_tokenizer_encode(t, text, len, 0, ids, cap, &n), TFMC_OK);
    CHECK_INT(n, want);
    bool same = n == want;
    for (size_t i = 0; same && i < n; i++)
        same = ids[i] == (i < nunit * (size_t)count ? unit[i % nunit] : tail[i - nunit * (size_t)count]);
    CU_ASSERT(same);
    free(ids);
    free(text);
}

static void test_long_texts(void)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcTokenizer *t = load(ctx, rank_json);
    if (t) {
        /* one piece of 300 symbols (no pre-tokeniser): by the heap, as the short cases by a scan */
        check_repeated(t, "abc", 100, (const int[]){ 5 }, 1, NULL, 0);
        check_repeated(t, "aa", 150, (const int[]){ 6 }, 1, NULL, 0);
        check_repeated(t, "ab", 40, (const int[]){ 3 }, 1, NULL, 0);
        tfmc_tokenizer_free(t);
    }
    char *json = sentencepiece_json();
    t = load(ctx, json);
    free(json);
    if (t) {
        /* ▁hi▁hi...▁: word by word, each word after the first from the cache; the last ▁ alone */
        check_repeated(t, "hi ", 1000, (const int[]){ 262 }, 1, (const int[]){ 258 }, 1);
        tfmc_tokenizer_free(t);
    }
    tfmc_context_free(ctx);
}

/* SentencePiece-style text is merged word by word, cut before each ▁, except after a character
 * that a merge joins to a ▁: here x▁ and x▁h are tokens, so "x hi" stays whole. */
static void test_words_joined(void)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    const char *json =
        "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"},\n"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"\xe2\x96\x81\": 0, \"h\": 1, \"i\": 2, \"x\": 3, \"\xe2\x96\x81h\": 4,\n"
        "   \"x\xe2\x96\x81\": 5, \"x\xe2\x96\x81h\": 6, \"hi\": 7},\n"
        "   \"merges\": [\"x \xe2\x96\x81\", \"h i\", \"\xe2\x96\x81 h\", \"x\xe2\x96\x81 h\"]}}";
    TfmcTokenizer *t = load(ctx, json);
    if (t) {
        /* x▁hi: x▁ (rank 0), hi (rank 1); x▁ hi does not merge */
        CHECK_ENCODE(t, "x hi", 0, "5 7");
        /* i▁h: cut before ▁ (no merge joins i to it): i | ▁h */
        CHECK_ENCODE(t, "i h", 0, "2 4");
        CHECK_ENCODE(t, "x h", 0, "6");
        tfmc_tokenizer_free(t);
    }
    tfmc_context_free(ctx);
}

/* Added tokens: the longest that may stand at a place, found in a trie of their bytes. */
static void test_added_longest(void)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    const char *json =
        "{\"added_tokens\": [{\"id\": 4, \"content\": \"ab\"}, {\"id\": 5, \"content\": \"abcd\", \"special\": true},\n"
        "                  {\"id\": 6, \"content\": \"b\"}],\n"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"d\": 3}, \"merges\": []}}";
    TfmcTokenizer *t = load(ctx, json);
    if (t) {
        CHECK_ENCODE(t, "abcda", 0, "5 0");
        CHECK_ENCODE(t, "abcda", TFMC_TOKENIZE_PLAIN, "4 2 3 0"); /* abcd is special: text; ab is not */
        CHECK_ENCODE(t, "abc", 0, "4 2");
        CHECK_ENCODE(t, "cbab", 0, "2 6 4");
        tfmc_tokenizer_free(t);
    }
    tfmc_context_free(ctx);
}

/* NFC with the quick check equals NFC of the whole, on random strings of characters that
 * compose, decompose, reorder or block one another. */
static void test_nfc_quick(void)
{
    static const uint32_t pool[] = {
        'a', 'e', 'o', 'A', ' ', 0xC5, 0xE9, 0x212B /* Angstrom: a singleton */, 0x300, 0x301, 0x308, 0x323,
        0x327, 0x31B, 0x345, 0x344, 0x1E08, 0x1EA0, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x0B47, 0x0B3E,
        0x0B57, 0x0CC6, 0x0CC2, 0x0CD5, 0x0CCA, 0x0F73, 0x1D15E, 0x1D165, 0x2F800, 0x4E00, 0x1F600, 0x0958, 0x05B8,
    };
    uint8_t *unstable = malloc(UNICODE_NFC_TABLE_BYTES);
    unicode_nfc_unstable(unstable);
    uint64_t seed = 1;
    unsigned char s[64], whole[UNICODE_NFC_BYTES(64)], quick[UNICODE_NFC_BYTES(64)];
    uint32_t work[UNICODE_NFC_POINTS(64)];
    int bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int count = 1 + (int)(seed >> 60);
        for (int k = 0; k < count; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            n += utf8_encode(pool[(seed >> 33) % (sizeof pool / sizeof pool[0])], s + n);
        }
        size_t a = unicode_nfc(s, n, whole, work), b = unicode_nfc_quick(unstable, s, n, quick, work);
        if (a != b || memcmp(whole, quick, a)) bad++;
    }
    CHECK_INT(bad, 0);
    /* é decomposed is composed; precomposed text is left as it is */
    unsigned char out[UNICODE_NFC_BYTES(8)];
    CHECK_INT(unicode_nfc_quick(unstable, (const unsigned char *)"e\xcc\x81", 3, out, work), 2);
    CU_ASSERT(!memcmp(out, "\xc3\xa9", 2));
    free(unstable);
}

/* A file tfmc refuses: one diagnostic at line:col whose message holds sub. */
static void expect_refused(const char *json, int line, int col, const char *sub)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcTokenizer *t = NULL;
    CHECK_INT(tfmc_tokenizer_load_string(ctx, "bad.json", json, strlen(json), &t), TFMC_ERR_INPUT);
    CU_ASSERT(t == NULL);
    CHECK_INT(tfmc_diagnostic_count(ctx), 1);
    const TfmcDiagnostic *d = tfmc_diagnostic(ctx, 0);
    if (d) {
        CHECK_STR(d->file, "bad.json");
        CHECK_INT(d->line, line);
        CHECK_INT(d->column, col);
        CHECK_HAS(d->message, sub);
    }
    tfmc_context_free(ctx);
}

static void test_refused(void)
{
    expect_refused("[]", 1, 1, "not a tokenizer.json");
    expect_refused("{\"version\": \"1.0\"}", 1, 19, "no \"model\"");
    expect_refused("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", 1, 20, "model type Unigram is not supported");
    expect_refused("{\"model\": {\"type\": \"BPE\",\n \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", 2, 32, "`b`, which is not in the vocabulary");
    expect_refused("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}}", 1, 50, "id 0 is given to two tokens");
    expect_refused("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}, \"behavior\": \"Isolated\"},\n"
                   " \"model\": {\"type\": \"BPE\", \"vocab\": {}}}", 1, 58, "pattern \\w+ is not one tfmc knows");
    expect_refused("{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {}}}", 1, 25,
                   "normalizer Lowercase is not supported");
    expect_refused("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a a\"]}}", 1, 57, "not in the vocabulary");
    expect_refused("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, }", 1, 47, "trailing comma");
    expect_refused("{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", 1, 51,
                   "no token for the byte 0x00");
}

static void test_missing_file(void)
{
    TfmcContext *ctx = tfmc_context_new(NULL);
    TfmcTokenizer *t = NULL;
    CHECK_INT(tfmc_tokenizer_load(ctx, "/nonexistent/tokenizer.json", &t), TFMC_ERR_IO);
    CHECK_INT(tfmc_diagnostic_count(ctx), 1);
    if (tfmc_diagnostic_count(ctx)) CHECK_HAS(tfmc_diagnostic(ctx, 0)->message, "cannot read the tokenizer");
    CHECK_INT(tfmc_tokenizer_load(ctx, "/", &t), TFMC_ERR_IO);
    tfmc_context_free(ctx);
}

/* Sampling: the frequencies of many draws against the softmax worked out here, and the cuts of
 * top-k and top-p on logits whose probabilities are known by hand. */
static void test_sampling(void)
{
    /* logits log(1), log(2), log(3), log(4): probabilities 0.1, 0.2, 0.3, 0.4 at temperature 1 */
    float l[4] = { 0.0f, 0.69314718f, 1.09861229f, 1.38629436f };
    int work[4];
    long count[4] = { 0 };
    uint64_t state = tfmc_sampler_seed(42);
    TfmcSampler t1 = { 1.0f, 0, 1.0f };
    enum { DRAWS = 200000 };
    for (int i = 0; i < DRAWS; i++) {
        int id = tfmc_sample(l, 4, &t1, &state, work);
        CU_ASSERT(id >= 0 && id < 4);
        if (id >= 0 && id < 4) count[id]++;
    }
    /* five standard deviations of a binomial at 200000 draws are below 0.006 */
    for (int i = 0; i < 4; i++) CHECK_DBL((double)count[i] / DRAWS, 0.1 * (i + 1), 0.006);
    /* temperature 0.5 squares the odds: 1, 4, 9, 16 over 30 */
    TfmcSampler half = { 0.5f, 0, 1.0f };
    long c2[4] = { 0 };
    for (int i = 0; i < DRAWS; i++) c2[tfmc_sample(l, 4, &half, &state, work)]++;
    for (int i = 0; i < 4; i++) CHECK_DBL((double)c2[i] / DRAWS, (double)((i + 1) * (i + 1)) / 30.0, 0.006);
    /* top-k 2: only ids 3 and 2, in odds 4 : 3 */
    TfmcSampler k2 = { 1.0f, 2, 1.0f };
    long c3[4] = { 0 };
    for (int i = 0; i < DRAWS; i++) c3[tfmc_sample(l, 4, &k2, &state, work)]++;
    CHECK_INT(c3[0] + c3[1], 0);
    CHECK_DBL((double)c3[3] / DRAWS, 4.0 / 7.0, 0.006);
    /* top-p 0.6: 0.4 + 0.3 reaches it, so ids 3 and 2 again; top-p 0.35: id 3 alone */
    TfmcSampler p6 = { 1.0f, 0, 0.6f }, p4 = { 1.0f, 0, 0.35f };
    long c4[4] = { 0 };
    for (int i = 0; i < 20000; i++) c4[tfmc_sample(l, 4, &p6, &state, work)]++;
    CHECK_INT(c4[0] + c4[1], 0);
    CU_ASSERT(c4[2] > 0 && c4[3] > 0);
    for (int i = 0; i < 1000; i++) CHECK_INT(tfmc_sample(l, 4, &p4, &state, work), 3);
    /* greedy: the first of equal largest */
    float tie[3] = { 1.0f, 5.0f, 5.0f };
    TfmcSampler greedy = { 0.0f, 0, 1.0f };
    CHECK_INT(tfmc_sample(tie, 3, &greedy, &state, work), 1);
    /* the same seed, the same draws */
    uint64_t a = tfmc_sampler_seed(7), b = tfmc_sampler_seed(7);
    for (int i = 0; i < 100; i++) CHECK_INT(tfmc_sample(l, 4, &t1, &a, work), tfmc_sample(l, 4, &t1, &b, work));
    /* bad options */
    TfmcSampler bad = { -1.0f, 0, 1.0f }, badp = { 1.0f, 0, 0.0f };
    CHECK_INT(tfmc_sample(l, 4, &bad, &state, work), -1);
    CHECK_INT(tfmc_sample(l, 4, &badp, &state, work), -1);
    CHECK_INT(tfmc_sample(l, 0, &t1, &state, work), -1);
}

bool register_tokenizer_tests(void)
{
    static const UnitTest tests[] = {
        { "bump: a fixed buffer as an allocator", test_bump },
        { "json: values, escapes, surrogate pairs", test_json_values },
        { "json: errors at their line and column", test_json_errors },
        { "bpe: merge ranks, leftmost first", test_bpe_ranks },
        { "sentencepiece: byte fallback, specials, streaming", test_sentencepiece_fallback_and_stream },
        { "long texts: the word cache, BPE by its heap", test_long_texts },
        { "sentencepiece: word by word unless a merge joins a word to the next", test_words_joined },
        { "added tokens: the longest that may stand", test_added_longest },
        { "nfc: the quick check against the whole", test_nfc_quick },
        { "refused files: what and where", test_refused },
        { "missing files", test_missing_file },
        { "sampling: frequencies, top-k, top-p, seeds", test_sampling },
    };
    return UNIT_SUITE("tokenizer", tests);
}
