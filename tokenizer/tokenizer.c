/* tokenizer.c: Hugging Face tokenizer.json, read: the parts of the file into the structure of
 * model.h, and the tables encoding needs built at load. Encoding is in encode.c, decoding in
 * decode.c.
 *
 * Encoding follows the tokenizers library's pipeline: added tokens are found in the raw text
 * first (leftmost, longest); each stretch between them is normalised (NFC, Prepend, Replace), cut
 * into pieces by the pre-tokeniser (the GPT-2, Llama 3 and Qwen patterns, ByteLevel, Metaspace,
 * Split on a string), and each piece is merged by BPE: the adjacent pair of lowest merge rank
 * first, the leftmost of equal ones, until no pair merges. A byte-level tokenizer's vocabulary is
 * turned back into bytes at load (GPT-2's byte-to-character table read backwards), so BPE always
 * works on bytes; a SentencePiece-style one starts from UTF-8 characters and falls back to its
 * <0xAB> byte tokens for a character it lacks. Decoding is the decoder chain on each token's
 * bytes: ByteLevel, or Replace ▁ by a space, ByteFallback, Fuse, Strip a leading space. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "model.h"

/* ------------------------------------------------------------ loading */

typedef struct Loader {
    TfmcTokenizer *t;
    JsonReader r;
    TokenizerError *err;
    const char *mark; /* the start of the value being read: where an error about it points */
    jmp_buf fail;
    /* GPT-2's table: byte to code point, and code point (below 324) back to byte */
    uint32_t byte_char[256];
    int char_byte[324];
} Loader;

static void failed_at(Loader *l, const char *hint, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
static void failed_at(Loader *l, const char *hint, const char *fmt, ...)
{
    if (!json_failed(&l->r)) {
        if (l->mark) l->r.p = l->mark;
        va_list ap;
        va_start(ap, fmt);
        char msg[sizeof l->err->message];
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        json_fail(&l->r, "%s", msg);
    }
    snprintf(l->err->message, sizeof l->err->message, "%s", l->r.error);
    if (hint) snprintf(l->err->hint, sizeof l->err->hint, "%s", hint);
    l->err->has_place = true;
    json_where(&l->r, &l->err->line, &l->err->column);
    longjmp(l->fail, 1);
}

/* A JSON error from the reader (its message stands). */
static void check(Loader *l)
{
    if (json_failed(&l->r)) failed_at(l, NULL, "%s", l->r.error);
}

/* Remember where the next value starts. */
static void mark(Loader *l)
{
    json_peek(&l->r);
    l->mark = l->r.p;
}

static JsonStr read_string(Loader *l)
{
    JsonStr s;
    mark(l);
    if (!json_string(&l->r, &s)) check(l);
    return s;
}

static char *keep(Loader *l, JsonStr s) { return arena_strndup(&l->t->arena, s.s, s.n); }

static bool read_bool(Loader *l)
{
    bool b = false; /* (set unless json_bool fails, and then check jumps out) */
    mark(l);
    if (json_peek(&l->r) == JSON_NULL) {
        json_null(&l->r);
        return false;
    }
    if (!json_bool(&l->r, &b)) check(l);
    return b;
}

/* A hash of n bytes, eight at a time (a multiply and a shift per word, then a finalizer). */
uint32_t tokenizer_hash(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, s + i, n - i);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* Add id to the hash table (the table has room: it is sized at least twice the ids). */
static void vocab_insert(TfmcTokenizer *t, int id)
{
    for (size_t i = tokenizer_hash(t->piece[id], t->piece_len[id]) & t->vmask;; i = (i + 1) & t->vmask) {
        if (!t->vslot[i]) {
            t->vslot[i] = (uint32_t)id + 1;
            return;
        }
        int other = (int)t->vslot[i] - 1;
        if (other == id) return;
    }
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes for
 * U+0100 onwards, in order. */
static void byte_table(uint32_t byte_char[256], int char_byte[324])
{
    for (int i = 0; i < 324; i++) char_byte[i] = -1;
    int next = 256;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        byte_char[b] = printable ? (uint32_t)b : (uint32_t)next++;
        char_byte[byte_char[b]] = b;
    }
}

/* A vocabulary string as the bytes it stands for: byte-level strings are read through GPT-2's
 * table backwards (a character outside it is kept as UTF-8: no byte sequence makes it). */
static char *piece_bytes(Loader *l, JsonStr s, uint32_t *len)
{
    if (!l->t->byte_level) {
        *len = (uint32_t)s.n;
        return keep(l, s);
    }
    char *out = arena_alloc(&l->t->arena, s.n + 1);
    size_t n = 0;
    bool all = true;
    for (size_t i = 0; i < s.n;) {
        int clen;
        uint32_t cp = utf8_decode((const unsigned char *)s.s + i, s.n - i, &clen);
        if (cp < 324 && l->char_byte[cp] >= 0) out[n++] = (char)l->char_byte[cp];
        else all = false;
        i += (size_t)clen;
    }
    if (!all) {
        *len = (uint32_t)s.n;
        return keep(l, s);
    }
    out[n] = '\0';
    *len = (uint32_t)n;
    return out;
}

static const char *const gpt2_regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *const llama3_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const qwen2_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *const pattern_hint =
    "tfmc knows the regular expressions of GPT-2, Llama 3 and Qwen 2 (docs/tokenizers.md)";

/* {"String": "x"} or {"Regex": "..."}: a string (Regex false) or a known pattern. */
static void read_pattern(Loader *l, Step *st, bool *regex)
{
    JsonStr key;
    bool any = false;
    if (!json_object(&l->r)) check(l);
    while (json_member(&l->r, &key)) {
        any = true;
        if (json_str_is(key, "String")) {
            JsonStr s = read_string(l);
            if (s.n == 0) failed_at(l, NULL, "an empty split pattern");
            st->from = keep(l, s);
            st->from_n = s.n;
            *regex = false;
        } else if (json_str_is(key, "Regex")) {
            JsonStr s = read_string(l);
            if (json_str_is(s, gpt2_regex)) st->pattern = PATTERN_GPT2;
            else if (json_str_is(s, llama3_regex)) st->pattern = PATTERN_LLAMA3;
            else if (json_str_is(s, qwen2_regex)) st->pattern = PATTERN_QWEN2;
            else failed_at(l, pattern_hint, "the pre-tokenizer pattern %.*s is not one tfmc knows", (int)(s.n > 120 ? 120 : s.n), s.s);
            *regex = true;
        } else {
            failed_at(l, NULL, "a pattern is {\"String\": ...} or {\"Regex\": ...}");
        }
    }
    check(l);
    if (!any) failed_at(l, NULL, "an empty pattern");
}

static void push_step(Loader *l, Step **v, int *n, Step st)
{
    int cap = *n; /* steps are few: grow by one */
    Step *nv = arena_alloc(&l->t->arena, sizeof(Step) * (size_t)(cap + 1));
    if (*n) memcpy(nv, *v, sizeof(Step) * (size_t)*n);
    nv[(*n)++] = st;
    *v = nv;
}

typedef enum Part { PART_NORMALIZER, PART_PRE, PART_DECODER } Part;
static const char *const part_name[] = { "normalizer", "pre_tokenizer", "decoder" };

static void read_component(Loader *l, Part part, int depth);

/* The members of one component object; `type` decides what it is. The object's members may
 * come in any order, so it is read twice: once for its type, then for the rest. */
static void read_component(Loader *l, Part part, int depth)
{
    TfmcTokenizer *t = l->t;
    if (json_peek(&l->r) == JSON_NULL) {
        json_null(&l->r);
        return;
    }
    if (depth > 8) failed_at(l, NULL, "sequences nested too deeply");
    JsonReader start = l->r;
    char type[64] = "";
    const char *type_at = start.p;
    JsonStr key;
    if (!json_object(&l->r)) check(l);
    while (json_member(&l->r, &key)) {
        if (json_str_is(key, "type")) {
            JsonStr s = read_string(l);
            type_at = l->mark;
            snprintf(type, sizeof type, "%.*s", (int)s.n, s.s);
        } else if (!json_skip(&l->r)) check(l);
    }
    check(l);
    JsonReader after = l->r;
    l->r = start;
    l->mark = type_at;
    if (!type[0]) failed_at(l, NULL, "a %s without a \"type\"", part_name[part]);
    Step st;
    memset(&st, 0, sizeof st);
    st.use_regex = true;
    st.split = true;
    st.prepend = -1;
    bool regex = false, have_pattern = false;
    json_object(&l->r);
    while (json_member(&l->r, &key)) {
        if (json_str_is(key, "type")) {
            json_skip(&l->r);
        } else if (!strcmp(type, "Sequence") &&
                   (json_str_is(key, "normalizers") || json_str_is(key, "pretokenizers") || json_str_is(key, "decoders"))) {
            if (!json_array(&l->r)) check(l);
            while (json_element(&l->r)) read_component(l, part, depth + 1);
            check(l);
        } else if (json_str_is(key, "pattern")) {
            read_pattern(l, &st, &regex);
            have_pattern = true;
        } else if (json_str_is(key, "content") || json_str_is(key, "prepend") || json_str_is(key, "replacement")) {
            JsonStr s = read_string(l);
            if (json_str_is(key, "replacement")) {
                st.from = keep(l, s);
                st.from_n = s.n;
            } else {
                st.to = keep(l, s);
                st.to_n = s.n;
            }
        } else if (json_str_is(key, "behavior")) {
            JsonStr s = read_string(l);
            if (json_str_is(s, "Isolated")) st.behavior = SPLIT_ISOLATED;
            else if (json_str_is(s, "Removed")) st.behavior = SPLIT_REMOVED;
            else if (json_str_is(s, "MergedWithPrevious")) st.behavior = SPLIT_MERGED_PREVIOUS;
            else if (json_str_is(s, "MergedWithNext")) st.behavior = SPLIT_MERGED_NEXT;
            else failed_at(l, "tfmc splits with Isolated, Removed, MergedWithPrevious and MergedWithNext",
                           "the split behavior %.*s is not supported", (int)s.n, s.s);
        } else if (json_str_is(key, "invert")) {
            if (read_bool(l)) failed_at(l, NULL, "an inverted split is not supported");
        } else if (json_str_is(key, "add_prefix_space")) {
            st.prefix_space = read_bool(l);
        } else if (json_str_is(key, "split")) {
            st.split = read_bool(l);
        } else if (json_str_is(key, "individual_digits")) {
            st.individual = read_bool(l);
        } else if (json_str_is(key, "use_regex")) {
            st.use_regex = read_bool(l);
        } else if (json_str_is(key, "prepend_scheme")) {
            JsonStr s = read_string(l);
            st.prepend = json_str_is(s, "never") ? 0 : json_str_is(s, "first") ? 1 : json_str_is(s, "always") ? 2 : -1;
            if (st.prepend < 0) failed_at(l, NULL, "the prepend_scheme %.*s is not one of always, first, never", (int)s.n, s.s);
        } else if (json_str_is(key, "start")) {
            long long v;
            if (!json_int(&l->r, 0, 8, &v)) check(l);
            t->dec_strip = (int)v;
        } else if (json_str_is(key, "stop")) {
            long long v;
            if (!json_int(&l->r, 0, 0, &v)) failed_at(l, NULL, "a Strip decoder that strips the end is not supported");
        } else {
            /* trim_offsets, str_rep (Metaspace's old spelling), ...: nothing the ids depend on */
            if (!json_skip(&l->r)) check(l);
        }
    }
    check(l);
    l->r = after;
    l->mark = type_at;
    if (!strcmp(type, "Sequence")) return;
    const char *hint = NULL;
    if (part == PART_NORMALIZER) {
        if (!strcmp(type, "NFC")) st.kind = NORM_NFC;
        else if (!strcmp(type, "Prepend")) {
            if (!st.to) failed_at(l, NULL, "a Prepend normalizer without \"prepend\"");
            st.kind = NORM_PREPEND;
        } else if (!strcmp(type, "Replace")) {
            if (!have_pattern || regex || !st.to) failed_at(l, "tfmc replaces a {\"String\": ...} pattern", "a Replace normalizer needs a string pattern and \"content\"");
            st.kind = NORM_REPLACE;
        } else {
            hint = "tfmc normalises with NFC, Prepend, Replace and Sequence";
            failed_at(l, hint, "the normalizer %s is not supported", type);
        }
        push_step(l, &t->norm, &t->nnorm, st);
        return;
    }
    if (part == PART_PRE) {
        if (!strcmp(type, "Split")) {
            if (!have_pattern) failed_at(l, NULL, "a Split pre-tokenizer without a pattern");
            if (regex) {
                if (st.behavior != SPLIT_ISOLATED) failed_at(l, NULL, "a pattern split is supported with the Isolated behavior only");
                st.kind = PRE_PATTERN;
            } else {
                st.kind = PRE_SPLIT;
            }
        } else if (!strcmp(type, "ByteLevel")) {
            st.kind = PRE_BYTE_LEVEL;
            t->byte_level = true;
        } else if (!strcmp(type, "Metaspace")) {
            if (!st.from) st.from = "\xe2\x96\x81", st.from_n = 3;
            if (st.prepend < 0) st.prepend = st.prefix_space ? 2 : 0;
            st.kind = PRE_METASPACE;
        } else if (!strcmp(type, "Digits")) {
            st.kind = PRE_DIGITS;
        } else {
            failed_at(l, "tfmc pre-tokenizes with Split, ByteLevel, Metaspace, Digits and Sequence",
                      "the pre_tokenizer %s is not supported", type);
        }
        push_step(l, &t->pre, &t->npre, st);
        return;
    }
    /* decoders */
    if (!strcmp(type, "ByteLevel")) {
        t->dec_byte_level = true;
    } else if (!strcmp(type, "ByteFallback")) {
        t->dec_byte_fallback = true;
    } else if (!strcmp(type, "Fuse")) {
    } else if (!strcmp(type, "Strip")) {
        if (!st.to || st.to_n != 1 || st.to[0] != ' ') failed_at(l, NULL, "a Strip decoder is supported for spaces only");
    } else if (!strcmp(type, "Replace")) {
        if (!have_pattern || regex || !st.to) failed_at(l, NULL, "a Replace decoder needs a string pattern and \"content\"");
        t->dec_from = st.from, t->dec_from_n = st.from_n, t->dec_to = st.to, t->dec_to_n = st.to_n;
    } else if (!strcmp(type, "Metaspace")) {
        t->dec_from = st.from ? st.from : "\xe2\x96\x81";
        t->dec_from_n = st.from ? st.from_n : 3;
        t->dec_to = " ", t->dec_to_n = 1;
        if (st.prepend > 0 || (st.prepend < 0 && st.prefix_space)) t->dec_strip = 1;
    } else {
        failed_at(l, "tfmc decodes with ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace and Sequence",
                  "the decoder %s is not supported", type);
    }
}

/* "model": {"type": "BPE", "vocab": {...}, "merges": [...], ...}. Read in two passes: the options
 * and the vocabulary first, then the merges, which need the whole vocabulary. */
static void read_model(Loader *l)
{
    TfmcTokenizer *t = l->t;
    JsonReader start = l->r;
    JsonStr key;
    char type[32] = "BPE";
    const char *unk = NULL;
    bool have_vocab = false;
    if (!json_object(&l->r)) check(l);
    while (json_member(&l->r, &key)) {
        if (json_str_is(key, "type")) {
            JsonStr s = read_string(l);
            snprintf(type, sizeof type, "%.*s", (int)s.n, s.s);
            if (strcmp(type, "BPE"))
                failed_at(l, "tfmc reads BPE tokenizers: GPT-2, Llama, Mistral, Qwen, Gemma, Phi (docs/tokenizers.md)",
                          "the model type %s is not supported", type);
        } else if (json_str_is(key, "unk_token")) {
            if (json_peek(&l->r) == JSON_NULL) json_null(&l->r);
            else unk = keep(l, read_string(l));
        } else if (json_str_is(key, "byte_fallback")) {
            t->byte_fallback = read_bool(l);
        } else if (json_str_is(key, "fuse_unk")) {
            t->fuse_unk = read_bool(l);
        } else if (json_str_is(key, "ignore_merges")) {
            t->ignore_merges = read_bool(l);
        } else if (json_str_is(key, "dropout")) {
            if (json_peek(&l->r) == JSON_NULL) json_null(&l->r);
            else {
                double d;
                json_number(&l->r, &d);
                if (d != 0) failed_at(l, "dropout is for training; set it to null", "BPE dropout %g is not supported", d);
            }
        } else if (json_str_is(key, "continuing_subword_prefix") || json_str_is(key, "end_of_word_suffix")) {
            if (json_peek(&l->r) == JSON_NULL) json_null(&l->r);
            else {
                JsonStr s = read_string(l);
                if (s.n) failed_at(l, NULL, "a BPE with a subword prefix or word suffix (%.*s) is not supported", (int)s.n, s.s);
            }
        } else if (json_str_is(key, "vocab")) {
            /* count first, to size the tables */
            JsonReader at = l->r;
            int count = 0;
            long long max_id = -1;
            if (!json_object(&l->r)) check(l);
            while (json_member(&l->r, &key)) {
                long long id;
                if (!json_int(&l->r, 0, (1 << 24) - 1, &id)) check(l);
                if (id > max_id) max_id = id;
                count++;
            }
            check(l);
            JsonReader end = l->r;
            int n = (int)max_id + 1;
            for (int i = 0; i < t->nadded; i++)
                if (t->added[i].id >= n) n = t->added[i].id + 1;
            /* ids number the tokens from 0: one far past their count would make tables for nothing */
            if ((long long)n > (long long)count + t->nadded)
                failed_at(l, NULL, "the largest id, %d, is past the %d tokens of the file: ids number the tokens from 0",
                          n - 1, count + t->nadded);
            t->vocab = n;
            t->piece = ARENA_ARRAY(&t->arena, const char *, n);
            t->piece_len = ARENA_ARRAY(&t->arena, uint32_t, n);
            t->kind = ARENA_ARRAY(&t->arena, unsigned char, n);
            size_t slots = 16;
            while (slots < 2 * (size_t)(n + 1)) slots *= 2;
            t->vslot = ARENA_ARRAY(&t->arena, uint32_t, slots);
            t->vmask = slots - 1;
            l->r = at;
            json_object(&l->r);
            while (json_member(&l->r, &key)) {
                char *name = arena_strndup(&t->arena, key.s, key.n);
                long long id;
                mark(l);
                json_int(&l->r, 0, n - 1, &id);
                if (t->piece[id]) failed_at(l, NULL, "the id %lld is given to two tokens", id);
                JsonStr s = { name, key.n };
                t->piece[id] = piece_bytes(l, s, &t->piece_len[id]);
                int other = vocab_find(t, t->piece[id], t->piece_len[id]);
                if (other >= 0) failed_at(l, NULL, "the token `%s` appears twice (ids %d and %lld)", name, other, id);
                vocab_insert(t, (int)id);
            }
            check(l);
            l->r = end;
            (void)count;
            have_vocab = true;
        } else {
            if (!json_skip(&l->r)) check(l);
        }
    }
    check(l);
    if (!have_vocab) failed_at(l, NULL, "the model has no \"vocab\"");
    JsonReader after = l->r;

    /* the merges */
    l->r = start;
    json_object(&l->r);
    while (json_member(&l->r, &key)) {
        if (!json_str_is(key, "merges")) {
            json_skip(&l->r);
            continue;
        }
        JsonReader at = l->r;
        int count = 0;
        if (!json_array(&l->r)) check(l);
        while (json_element(&l->r)) {
            json_skip(&l->r);
            count++;
        }
        check(l);
        size_t slots = 16;
        while (slots < 2 * (size_t)(count + 1)) slots *= 2;
        t->mslot = ARENA_ARRAY(&t->arena, MergeSlot, slots);
        t->mmask = slots - 1;
        l->r = at;
        json_array(&l->r);
        char *joined = NULL;
        size_t joined_cap = 0;
        for (int rank = 0; json_element(&l->r); rank++) {
            /* "a b" or ["a", "b"] */
            JsonStr parts[2];
            char *copy[2];
            mark(l);
            const char *merge_at = l->mark;
            if (json_peek(&l->r) == JSON_ARRAY) {
                json_array(&l->r);
                for (int k = 0; k < 2; k++) {
                    if (!json_element(&l->r)) failed_at(l, NULL, "a merge is a pair of tokens");
                    parts[k] = read_string(l);
                    copy[k] = arena_strndup(&t->arena, parts[k].s, parts[k].n);
                    parts[k].s = copy[k];
                }
                if (json_element(&l->r)) failed_at(l, NULL, "a merge is a pair of tokens");
                check(l);
            } else {
                JsonStr s = read_string(l);
                const char *space = memchr(s.s, ' ', s.n);
                if (!space || memchr(space + 1, ' ', s.n - (size_t)(space + 1 - s.s)))
                    failed_at(l, NULL, "a merge \"%.*s\" is not two tokens separated by one space", (int)(s.n > 60 ? 60 : s.n), s.s);
                copy[0] = arena_strndup(&t->arena, s.s, (size_t)(space - s.s));
                copy[1] = arena_strndup(&t->arena, space + 1, s.n - (size_t)(space + 1 - s.s));
                parts[0] = (JsonStr){ copy[0], (size_t)(space - s.s) };
                parts[1] = (JsonStr){ copy[1], s.n - (size_t)(space + 1 - s.s) };
            }
            l->mark = merge_at;
            int ids[2];
            uint32_t lens[2];
            const char *bytes[2];
            for (int k = 0; k < 2; k++) {
                bytes[k] = piece_bytes(l, parts[k], &lens[k]);
                ids[k] = vocab_find(t, bytes[k], lens[k]);
                if (ids[k] < 0) failed_at(l, NULL, "the merge %d names `%s`, which is not in the vocabulary", rank, copy[k]);
            }
            size_t need = (size_t)lens[0] + lens[1];
            if (need > joined_cap) {
                joined_cap = need * 2 + 64;
                joined = arena_alloc(&t->arena, joined_cap);
            }
            memcpy(joined, bytes[0], lens[0]);
            memcpy(joined + lens[0], bytes[1], lens[1]);
            int result = vocab_find(t, joined, need);
            if (result < 0) failed_at(l, NULL, "the merge %d of `%s` and `%s` makes a token that is not in the vocabulary", rank, copy[0], copy[1]);
            /* a ▁ joined to the character before it (build_fast_paths) */
            for (size_t k = 1; k + 3 <= need; k++)
                if (!memcmp(joined + k, word_start, 3) && !(k >= 3 && !memcmp(joined + k - 3, word_start, 3)))
                    t->no_cut_after[(unsigned char)joined[k - 1]] = true;
            uint64_t k = merge_key(ids[0], ids[1]);
            size_t i = merge_hash(k) & t->mmask;
            while (t->mslot[i].key && t->mslot[i].key != k) i = (i + 1) & t->mmask;
            if (t->mslot[i].key) continue; /* a repeated merge keeps its first (lowest) rank */
            t->mslot[i] = (MergeSlot){ k, rank, result };
            t->merges++;
        }
        check(l);
    }
    check(l);
    if (!t->mslot) {
        t->mslot = ARENA_ARRAY(&t->arena, MergeSlot, 16);
        t->mmask = 15;
    }
    l->r = after;
    t->unk = -1;
    if (unk) {
        t->unk = vocab_find(t, unk, strlen(unk));
        if (t->unk < 0)
            for (int i = 0; i < t->nadded; i++)
                if (!strcmp(t->added[i].content, unk)) t->unk = t->added[i].id;
        if (t->unk < 0) failed_at(l, NULL, "the unk_token `%s` is not in the vocabulary", unk);
    }
}

/* "added_tokens": [{"id", "content", "special", "lstrip", "rstrip", "single_word", "normalized"}]. */
static void read_added(Loader *l)
{
    TfmcTokenizer *t = l->t;
    int cap = 0;
    if (json_peek(&l->r) == JSON_NULL) {
        json_null(&l->r);
        return;
    }
    if (!json_array(&l->r)) check(l);
    while (json_element(&l->r)) {
        Added a;
        memset(&a, 0, sizeof a);
        a.id = -1;
        bool normalized = false;
        JsonStr key;
        if (!json_object(&l->r)) check(l);
        while (json_member(&l->r, &key)) {
            if (json_str_is(key, "id")) {
                long long id;
                if (!json_int(&l->r, 0, (1 << 24) - 1, &id)) check(l);
                a.id = (int)id;
            } else if (json_str_is(key, "content")) {
                JsonStr s = read_string(l);
                if (!s.n) failed_at(l, NULL, "an added token with empty content");
                a.content = keep(l, s);
                a.len = s.n;
            } else if (json_str_is(key, "special")) a.special = read_bool(l);
            else if (json_str_is(key, "lstrip")) a.lstrip = read_bool(l);
            else if (json_str_is(key, "rstrip")) a.rstrip = read_bool(l);
            else if (json_str_is(key, "single_word")) a.single_word = read_bool(l);
            else if (json_str_is(key, "normalized")) normalized = read_bool(l);
            else if (!json_skip(&l->r)) check(l);
        }
        check(l);
        if (a.id < 0 || !a.content) failed_at(l, NULL, "an added token needs an \"id\" and a \"content\"");
        a.normalized = normalized;
        VEC_PUSH(&t->arena, t->added, t->nadded, cap, a);
        if (a.len > t->added_max) t->added_max = a.len;
        t->added_first[(unsigned char)a.content[0]] = true;
    }
    check(l);
}

/* "post_processor": TemplateProcessing's "single" template (a ByteLevel one adds nothing to the ids). */
static void read_post(Loader *l, int depth)
{
    TfmcTokenizer *t = l->t;
    if (json_peek(&l->r) == JSON_NULL) {
        json_null(&l->r);
        return;
    }
    if (depth > 8) failed_at(l, NULL, "post-processors nested too deeply");
    JsonReader start = l->r;
    JsonStr key;
    char type[64] = "";
    json_object(&l->r);
    while (json_member(&l->r, &key)) {
        if (json_str_is(key, "type")) {
            JsonStr s = read_string(l);
            snprintf(type, sizeof type, "%.*s", (int)s.n, s.s);
        } else if (!json_skip(&l->r)) check(l);
    }
    check(l);
    JsonReader after = l->r;
    if (!strcmp(type, "ByteLevel")) return;
    if (strcmp(type, "TemplateProcessing") && strcmp(type, "Sequence"))
        failed_at(l, "tfmc reads TemplateProcessing, ByteLevel and Sequence post-processors",
                  "the post_processor %s is not supported", type);
    l->r = start;
    json_object(&l->r);
    int cap_prefix = 0, cap_suffix = 0;
    while (json_member(&l->r, &key)) {
        if (!strcmp(type, "Sequence") && json_str_is(key, "processors")) {
            if (!json_array(&l->r)) check(l);
            while (json_element(&l->r)) read_post(l, depth + 1);
            check(l);
        } else if (json_str_is(key, "single")) {
            bool seen_sequence = false;
            if (!json_array(&l->r)) check(l);
            while (json_element(&l->r)) {
                JsonStr k2;
                json_object(&l->r);
                while (json_member(&l->r, &k2)) {
                    if (json_str_is(k2, "Sequence")) {
                        seen_sequence = true;
                        json_skip(&l->r);
                    } else if (json_str_is(k2, "SpecialToken")) {
                        JsonStr k3;
                        json_object(&l->r);
                        while (json_member(&l->r, &k3)) {
                            if (json_str_is(k3, "id")) {
                                JsonStr s = read_string(l);
                                int id = vocab_find(t, s.s, s.n);
                                for (int i = 0; i < t->nadded && id < 0; i++)
                                    if (t->added[i].len == s.n && !memcmp(t->added[i].content, s.s, s.n)) id = t->added[i].id;
                                if (id < 0) failed_at(l, NULL, "the template's token `%.*s` is not in the vocabulary", (int)s.n, s.s);
                                if (seen_sequence) VEC_PUSH(&t->arena, t->suffix, t->nsuffix, cap_suffix, id);
                                else VEC_PUSH(&t->arena, t->prefix, t->nprefix, cap_prefix, id);
                            } else json_skip(&l->r);
                        }
                    } else json_skip(&l->r);
                }
            }
            check(l);
        } else if (!json_skip(&l->r)) check(l);
    }
    check(l);
    l->r = after;
}

/* The added tokens' trie: a node per distinct prefix, the first token of each content at its node. */
static void build_added_trie(TfmcTokenizer *t)
{
    size_t total = 1;
    for (int i = 0; i < t->nadded; i++) total += t->added[i].len;
    t->anode_parent = ARENA_ARRAY(&t->arena, uint32_t, total);
    t->anode_token = ARENA_ARRAY(&t->arena, uint32_t, total);
    size_t slots = 16;
    while (slots < 2 * total) slots *= 2;
    t->aedge = ARENA_ARRAY(&t->arena, uint64_t, slots);
    t->aemask = slots - 1;
    t->nanodes = 1;
    for (int i = 0; i < t->nadded; i++) {
        const Added *a = &t->added[i];
        uint32_t node = 0;
        for (size_t k = 0; k < a->len; k++) {
            unsigned char byte = (unsigned char)a->content[k];
            uint32_t child = trie_next(t, node, byte);
            if (!child) {
                child = t->nanodes++;
                t->anode_parent[child] = node;
                if (node == 0) {
                    t->added_root[byte] = child;
                } else {
                    uint64_t key = ((uint64_t)node << 8 | byte) + 1;
                    size_t at = merge_hash(key) & t->aemask;
                    while (t->aedge[at]) at = (at + 1) & t->aemask;
                    t->aedge[at] = key << 32 | child;
                }
            }
            node = child;
        }
        if (!t->anode_token[node]) t->anode_token[node] = (uint32_t)i + 1;
    }
}

/* What encoding looks up most, precomputed: the ids of the characters of the BMP (256 KiB), NFC's quick-check table,
 * and whether BPE may run word by word. */
static void build_fast_paths(TfmcTokenizer *t)
{
    if (!t->byte_level) {
        t->char_id = ARENA_ARRAY(&t->arena, int32_t, 0x10000);
        for (uint32_t cp = 0; cp < 0x10000; cp++) {
            unsigned char buf[4];
            size_t n = utf8_encode(cp, buf);
            t->char_id[cp] = cp >= 0xD800 && cp < 0xE000 ? -1 : vocab_find(t, (const char *)buf, n);
        }
    }
    for (int k = 0; k < t->nnorm; k++)
        if (t->norm[k].kind == NORM_NFC && !t->nfc_unstable) {
            t->nfc_unstable = arena_alloc(&t->arena, UNICODE_NFC_TABLE_BYTES);
            unicode_nfc_unstable(t->nfc_unstable);
        }
    /* SentencePiece-style text is one piece per stretch (Llama 2, Gemma: no pre-tokeniser), and
     * BPE over it is BPE over its words when no merge joins a character to a following ▁: then the
     * text is cut before each ▁ that follows another character (all but the bytes no_cut_after
     * marks, which read_model saw in such a merge). A merge never joins across the cut, and BPE
     * merges in each word as it would in the whole. ignore_merges looks up whole pieces, so it
     * keeps them whole. */
    t->split_words = !t->byte_level && !t->ignore_merges && vocab_find(t, word_start, 3) >= 0;
}

/* The top level: record where each part is, then read them in the order they depend on each
 * other (added tokens; normaliser, pre-tokeniser and decoder, which say whether the vocabulary is
 * bytes; the model; the post-processor, which names tokens). */
static void load(Loader *l, const char *text, size_t len)
{
    enum { ADDED, NORMALIZER, PRE, POST, DECODER, MODEL, NPARTS };
    static const char *const names[NPARTS] = { "added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "model" };
    JsonReader part[NPARTS];
    bool have[NPARTS] = { false };
    JsonStr key;
    json_init(&l->r, text, len, &l->t->arena);
    if (json_peek(&l->r) != JSON_OBJECT) failed_at(l, "a tokenizer.json holds one JSON object", "this is not a tokenizer.json");
    json_object(&l->r);
    while (json_member(&l->r, &key)) {
        int which = -1;
        for (int i = 0; i < NPARTS; i++)
            if (json_str_is(key, names[i])) which = i;
        if (which >= 0) {
            json_peek(&l->r);
            part[which] = l->r;
            have[which] = true;
        }
        if (!json_skip(&l->r)) check(l);
    }
    check(l);
    json_end(&l->r);
    check(l);
    JsonReader end = l->r;
    if (!have[MODEL]) failed_at(l, "a tokenizer.json has a \"model\"", "this tokenizer.json has no \"model\"");
    byte_table(l->byte_char, l->char_byte);
    if (have[ADDED]) l->r = part[ADDED], read_added(l);
    if (have[NORMALIZER]) l->r = part[NORMALIZER], read_component(l, PART_NORMALIZER, 0);
    if (have[PRE]) l->r = part[PRE], read_component(l, PART_PRE, 0);
    if (have[DECODER]) l->r = part[DECODER], read_component(l, PART_DECODER, 0);
    l->t->byte_level |= l->t->dec_byte_level;
    l->r = part[MODEL];
    read_model(l);
    if (have[POST]) l->r = part[POST], read_post(l, 0);
    l->r = end;
    l->mark = part[MODEL].p; /* what is wrong with the whole is said at the model */

    TfmcTokenizer *t = l->t;
    /* added tokens: their text is their content, whatever the vocabulary holds for the id */
    for (int i = 0; i < t->nadded; i++) {
        Added *a = &t->added[i];
        t->piece[a->id] = a->content;
        t->piece_len[a->id] = (uint32_t)a->len;
        t->kind[a->id] |= PIECE_ADDED | (a->special ? PIECE_SPECIAL : 0);
    }
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    if (t->byte_level) {
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_id[b] = vocab_find(t, &c, 1);
            if (t->byte_id[b] < 0)
                failed_at(l, NULL, "this byte-level vocabulary has no token for the byte 0x%02x", b);
        }
    } else if (t->byte_fallback || t->dec_byte_fallback) {
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = vocab_find(t, name, 6);
            if (t->byte_id[b] >= 0) t->kind[t->byte_id[b]] |= PIECE_BYTE;
            else if (t->byte_fallback) failed_at(l, NULL, "byte_fallback is on, but the vocabulary has no token %s", name);
        }
    }
    for (int i = 0; i < t->nadded; i++)
        if (t->added[i].normalized && t->nnorm > 0)
            failed_at(l, "tfmc finds added tokens in the text before it is normalised (docs/tokenizers.md)",
                      "the added token `%s` is matched after normalisation (\"normalized\": true), which tfmc does not support with a normalizer",
                      t->added[i].content);
    build_added_trie(t);
    build_fast_paths(t);
    /* the longest decoded token (a bound for streaming buffers) */
    for (int id = 0; id < t->vocab; id++) {
        if (!t->piece[id]) continue;
        size_t n = t->piece_len[id];
        if (t->dec_from_n && t->dec_to_n > t->dec_from_n) n = n / t->dec_from_n * t->dec_to_n + n;
        if (n > t->max_text) t->max_text = n;
    }
}

TfmcTokenizer *tokenizer_parse(const char *text, size_t len, const TfmcAllocator *al, TokenizerError *err)
{
    memset(err, 0, sizeof *err);
    TfmcTokenizer *t = al->realloc(al->ud, NULL, sizeof *t);
    if (!t) {
        err->nomem = true;
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->alloc = *al;
    Loader *l = al->realloc(al->ud, NULL, sizeof *l);
    if (!l) {
        al->realloc(al->ud, t, 0);
        err->nomem = true;
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    memset(l, 0, sizeof *l);
    l->t = t;
    l->err = err;
    jmp_buf oom;
    arena_init(&t->arena, &t->alloc, &oom);
    if (setjmp(oom)) {
        err->nomem = true;
        snprintf(err->message, sizeof err->message, "out of memory while reading the tokenizer");
        goto fail;
    }
    if (setjmp(l->fail)) goto fail;
    load(l, text, len);
    al->realloc(al->ud, l, 0);
    t->bytes = sizeof *t + arena_bytes(&t->arena);
    t->arena.on_oom = NULL; /* nothing is allocated in it after loading */
    return t;
fail:
    al->realloc(al->ud, l, 0);
    arena_free(&t->arena);
    al->realloc(al->ud, t, 0);
    return NULL;
}

void tfmc_tokenizer_free(TfmcTokenizer *t)
{
    if (!t) return;
    TfmcAllocator al = t->alloc;
    arena_free(&t->arena);
    al.realloc(al.ud, t, 0);
}

int tfmc_tokenizer_vocab(const TfmcTokenizer *t) { return t->vocab; }

int tfmc_tokenizer_find(const TfmcTokenizer *t, const char *token)
{
    size_t n = strlen(token);
    for (int i = 0; i < t->nadded; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, token, n)) return t->added[i].id;
    if (!t->byte_level) return vocab_find(t, token, n);
    /* written as the file writes it: through GPT-2's table */
    uint32_t byte_char[256];
    int char_byte[324];
    byte_table(byte_char, char_byte);
    char buf[1024];
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int clen;
        uint32_t cp = utf8_decode((const unsigned char *)token + i, n - i, &clen);
        if (cp >= 324 || char_byte[cp] < 0 || m >= sizeof buf) return vocab_find(t, token, n);
        buf[m++] = (char)char_byte[cp];
        i += (size_t)clen;
    }
    return vocab_find(t, buf, m);
}

const char *tfmc_tokenizer_piece(const TfmcTokenizer *t, int id, size_t *len)
{
    if (id < 0 || id >= t->vocab || !t->piece[id]) return NULL;
    if (len) *len = t->piece_len[id];
    return t->piece[id];
}

bool tfmc_tokenizer_is_special(const TfmcTokenizer *t, int id)
{
    return id >= 0 && id < t->vocab && (t->kind[id] & PIECE_SPECIAL);
}

size_t tfmc_tokenizer_bytes(const TfmcTokenizer *t)
{
    return t->bytes;
}
