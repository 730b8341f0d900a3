/* tokenizer.c: Hugging Face tokenizer.json, read and run.
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
#include "tokenizer.h"
#include "unicode.h"

/* ------------------------------------------------------------ the structure */

typedef enum Pattern { PATTERN_GPT2, PATTERN_LLAMA3, PATTERN_QWEN2 } Pattern;
typedef enum SplitBehavior { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_PREVIOUS, SPLIT_MERGED_NEXT } SplitBehavior;

typedef enum StepKind {
    /* normalisers */
    NORM_NFC,
    NORM_PREPEND,
    NORM_REPLACE,
    /* pre-tokenisers */
    PRE_PATTERN,    /* one of the known regular expressions, each match a piece (Isolated) */
    PRE_SPLIT,      /* Split on a string */
    PRE_BYTE_LEVEL, /* a space before a piece (add_prefix_space) and the GPT-2 pattern (use_regex) */
    PRE_METASPACE,  /* spaces become the replacement; prepended; split before each */
    PRE_DIGITS,     /* each digit a piece of its own (individual_digits) or runs of digits */
} StepKind;

typedef struct Step {
    StepKind kind;
    Pattern pattern;
    SplitBehavior behavior;
    bool prefix_space; /* ByteLevel's add_prefix_space (Metaspace's old spelling of prepend always) */
    bool split;        /* Metaspace: a piece before each replacement */
    bool use_regex;    /* ByteLevel: split by the GPT-2 pattern (the default) */
    bool individual;   /* Digits: each digit alone */
    int prepend;       /* Metaspace: 0 never, 1 first, 2 always (-1: not given) */
    const char *from, *to; /* Replace, Prepend (to), Split and Metaspace (from) */
    size_t from_n, to_n;
} Step;

typedef struct Added {
    int id;
    const char *content;
    size_t len;
    bool special, lstrip, rstrip, single_word, normalized;
} Added;

typedef struct MergeSlot {
    uint64_t key; /* (left id + 1) << 32 | (right id + 1); 0: empty */
    int rank, result;
} MergeSlot;

struct TfmcTokenizer {
    TfmcAllocator alloc;
    Arena arena;
    size_t bytes;
    int vocab;            /* ids 0..vocab-1 */
    const char **piece;   /* the bytes of each id (NULL: no such id) */
    uint32_t *piece_len;
    unsigned char *kind;  /* per id: PIECE_* bits */
    uint32_t *vslot;      /* the vocabulary's hash table (id + 1; 0 empty) */
    size_t vmask;
    MergeSlot *mslot;
    size_t mmask;
    int merges;
    bool byte_level;      /* pieces are bytes (the ByteLevel pre-tokeniser or decoder) */
    bool byte_fallback;
    bool fuse_unk, ignore_merges;
    int unk;              /* -1: none */
    int byte_id[256];     /* byte-level: the id of each byte; fallback: <0xAB> */
    Step *norm;
    int nnorm;
    Step *pre;
    int npre;
    Added *added;
    int nadded;
    size_t added_max;      /* the longest added token */
    bool added_first[256]; /* a byte some added token starts with */
    /* added tokens as a trie of their bytes: node 0 is the root, its children in added_root, the
     * other edges in a hash table */
    uint32_t added_root[256];  /* the node after a first byte (0: none) */
    uint64_t *aedge;           /* (node << 8 | byte) + 1 << 32 | child; 0 empty */
    size_t aemask;
    uint32_t *anode_parent;
    uint32_t *anode_token;     /* the added token that ends at a node (index + 1; 0 none) */
    uint32_t nanodes;
    /* fast paths */
    int32_t *char_id;          /* SentencePiece-style: the id of each code point below U+10000 (-1 none) */
    uint8_t *nfc_unstable;     /* NFC's quick-check table, when a normaliser is NFC */
    bool split_words;          /* SentencePiece-style: BPE word by word (word_start) */
    bool no_cut_after[256];    /* ... except after a byte some merge joins to a following ▁ */
    size_t max_text;       /* the longest text one token decodes to */
    /* the decoder */
    bool dec_byte_level, dec_byte_fallback;
    const char *dec_from, *dec_to; /* Replace (▁ to a space); Metaspace too */
    size_t dec_from_n, dec_to_n;
    int dec_strip;         /* leading spaces stripped from the text */
    /* the post-processor's template for one sequence */
    int *prefix, *suffix;
    int nprefix, nsuffix;
};

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */
static const char word_start[] = "\xe2\x96\x81";

enum { PIECE_ADDED = 1, PIECE_SPECIAL = 2, PIECE_BYTE = 4 /* <0xAB>, decoded as its byte */ };

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
    bool b;
    mark(l);
    if (json_peek(&l->r) == JSON_NULL) {
        json_null(&l->r);
        return false;
    }
    if (!json_bool(&l->r, &b)) check(l);
    return b;
}

/* A hash of n bytes, eight at a time (a multiply and a shift per word, then a finalizer). */
static uint32_t hash_bytes(const char *s, size_t n)
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

static int vocab_find(const TfmcTokenizer *t, const char *s, size_t n)
{
    if (!t->vslot) return -1;
    for (size_t i = hash_bytes(s, n) & t->vmask;; i = (i + 1) & t->vmask) {
        uint32_t v = t->vslot[i];
        if (!v) return -1;
        int id = (int)v - 1;
        if (t->piece_len[id] == n && !memcmp(t->piece[id], s, n)) return id;
    }
}

/* Add id to the hash table (the table has room: it is sized at least twice the ids). */
static void vocab_insert(TfmcTokenizer *t, int id)
{
    for (size_t i = hash_bytes(t->piece[id], t->piece_len[id]) & t->vmask;; i = (i + 1) & t->vmask) {
        if (!t->vslot[i]) {
            t->vslot[i] = (uint32_t)id + 1;
            return;
        }
        int other = (int)t->vslot[i] - 1;
        if (other == id) return;
    }
}

static uint64_t merge_key(int a, int b) { return (uint64_t)(uint32_t)(a + 1) << 32 | (uint32_t)(b + 1); }

static size_t merge_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

/* Ask for the slot of (a, b) before merge_find needs it: the table is larger than the caches, and
 * a word's pairs are looked up together, so their misses overlap. */
static void merge_prefetch(const TfmcTokenizer *t, int a, int b)
{
#if defined(__GNUC__)
    __builtin_prefetch(&t->mslot[merge_hash(merge_key(a, b)) & t->mmask]);
#else
    (void)t, (void)a, (void)b;
#endif
}

static const MergeSlot *merge_find(const TfmcTokenizer *t, int a, int b)
{
    uint64_t k = merge_key(a, b);
    for (size_t i = merge_hash(k) & t->mmask;; i = (i + 1) & t->mmask) {
        if (t->mslot[i].key == k) return &t->mslot[i];
        if (!t->mslot[i].key) return NULL;
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

/* The child of a trie node by one byte (0: none). */
static uint32_t trie_next(const TfmcTokenizer *t, uint32_t node, unsigned char byte)
{
    if (node == 0) return t->added_root[byte];
    uint64_t key = ((uint64_t)node << 8 | byte) + 1;
    for (size_t i = merge_hash(key) & t->aemask;; i = (i + 1) & t->aemask) {
        uint64_t e = t->aedge[i];
        if (!e) return 0;
        if (e >> 32 == key) return (uint32_t)e;
    }
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

/* ------------------------------------------------------------ encoding */

/* Growable arrays of an encode call, from the tokenizer's allocator; a failure jumps out. */
typedef struct Work {
    const TfmcTokenizer *t;
    jmp_buf *oom;
    void *blocks[16]; /* what to free at the end */
    int nblocks;
} Work;

typedef struct Bytes { unsigned char *s; size_t n, cap; } Bytes;
typedef struct Ints { int *v; size_t n, cap; } Ints;
typedef struct Span { size_t at, n; } Span;
typedef struct Spans { Span *v; size_t n, cap; } Spans;

/* Grow *p (tracked in w) to hold `need` elements of `size`: grow checks, grow_block reallocates. */
static void grow_block(Work *w, void **p, size_t *cap, size_t need, size_t size)
{
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) ncap *= 2;
    int slot = -1;
    for (int i = 0; i < w->nblocks; i++)
        if (w->blocks[i] == *p) slot = i;
    if (ncap > SIZE_MAX / size) longjmp(*w->oom, 1);
    void *np = w->t->alloc.realloc(w->t->alloc.ud, *p, ncap * size);
    if (!np) longjmp(*w->oom, 1);
    if (slot < 0) {
        if (w->nblocks == (int)(sizeof w->blocks / sizeof w->blocks[0])) longjmp(*w->oom, 1);
        slot = w->nblocks++;
    }
    w->blocks[slot] = np;
    *p = np;
    *cap = ncap;
}

static inline void grow(Work *w, void **p, size_t *cap, size_t need, size_t size)
{
    if (need > *cap) grow_block(w, p, cap, need, size);
}

static void bytes_put(Work *w, Bytes *b, const void *s, size_t n)
{
    grow(w, (void **)&b->s, &b->cap, b->n + n + 1, 1);
    memcpy(b->s + b->n, s, n);
    b->n += n;
}

static void ints_push(Work *w, Ints *v, int x)
{
    grow(w, (void **)&v->v, &v->cap, v->n + 1, sizeof(int));
    v->v[v->n++] = x;
}

static void spans_push(Work *w, Spans *v, size_t at, size_t n)
{
    if (n == 0) return;
    grow(w, (void **)&v->v, &v->cap, v->n + 1, sizeof(Span));
    v->v[v->n++] = (Span){ at, n };
}

/* The code point at i (0 of length 0 past the end); ASCII without a call. */
static inline uint32_t cp_at(const unsigned char *s, size_t n, size_t i, int *len)
{
    if (i >= n) {
        *len = 0;
        return 0;
    }
    if (s[i] < 0x80) {
        *len = 1;
        return s[i];
    }
    return utf8_decode(s + i, n - i, len);
}

static inline bool is_L(uint32_t c) { return c < 0x80 ? (c | 0x20) - 'a' < 26 : unicode_is_letter(c); }
static inline bool is_N(uint32_t c) { return c < 0x80 ? c - '0' < 10 : unicode_is_number(c); }
static inline bool is_S(uint32_t c) { return c < 0x80 ? c == ' ' || (c >= '\t' && c <= '\r') : unicode_is_space(c); }
static bool is_other(uint32_t c) { return !is_S(c) && !is_L(c) && !is_N(c); }

/* The end of the run of characters of class `in` from i. */
static size_t run(const unsigned char *s, size_t n, size_t i, bool (*in)(uint32_t))
{
    int len;
    while (i < n && in(cp_at(s, n, i, &len))) i += (size_t)len;
    return i;
}

static int lower_ascii(uint32_t c) { return c < 128 ? (int)(c | 0x20) : c == 0x17F ? 's' : -1; }

/* A contraction at i ('s 't 're 've 'm 'll 'd), case-insensitively or not: its end, or i. */
static size_t contraction(const unsigned char *s, size_t n, size_t i, bool fold)
{
    if (s[i] != '\'' || i + 1 >= n) return i;
    int l1, l2;
    uint32_t c1 = cp_at(s, n, i + 1, &l1), c2 = cp_at(s, n, i + 1 + (size_t)l1, &l2);
    int a = fold ? lower_ascii(c1) : (int)(c1 < 128 ? c1 : 0);
    int b = fold ? lower_ascii(c2) : (int)(c2 < 128 ? c2 : 0);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 1 + (size_t)l1;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 1 + (size_t)l1 + (size_t)l2;
    return i;
}

/* \s+(?!\S)|\s+ at i (a white-space character): a run that ends the text is taken whole; one followed
 * by more text leaves its last character to start the next piece. */
static size_t space_run(const unsigned char *s, size_t n, size_t i)
{
    size_t end = run(s, n, i, is_S);
    if (end == n) return end;
    size_t last = end; /* the start of the run's last character */
    do last--; while (last > i && (s[last] & 0xC0) == 0x80);
    return last > i ? last : end;
}

/* The end of the match of the pattern at i (< n): every character is matched by some branch. */
static size_t match_at(Pattern p, const unsigned char *s, size_t n, size_t i)
{
    int l0, l1;
    uint32_t c0 = cp_at(s, n, i, &l0);
    size_t e = contraction(s, n, i, p != PATTERN_GPT2);
    if (e > i) return e;
    if (p == PATTERN_GPT2) {
        /* ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+' */
        size_t j = c0 == ' ' ? i + 1 : i;
        uint32_t c = cp_at(s, n, j, &l1);
        if (j < n && is_L(c)) return run(s, n, j, is_L);
        if (j < n && is_N(c)) return run(s, n, j, is_N);
        if (j < n && is_other(c)) return run(s, n, j, is_other);
        return space_run(s, n, i);
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c0 != '\r' && c0 != '\n' && !is_L(c0) && !is_N(c0)) {
        uint32_t c = cp_at(s, n, i + (size_t)l0, &l1);
        if (i + (size_t)l0 < n && is_L(c)) return run(s, n, i + (size_t)l0, is_L);
    }
    if (is_L(c0)) return run(s, n, i, is_L);
    /* \p{N}{1,3} (Llama 3) or \p{N} (Qwen 2) */
    if (is_N(c0)) {
        size_t j = i + (size_t)l0;
        for (int k = 1; k < (p == PATTERN_LLAMA3 ? 3 : 1) && j < n; k++) {
            uint32_t c = cp_at(s, n, j, &l1);
            if (!is_N(c)) break;
            j += (size_t)l1;
        }
        return j;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    size_t j = c0 == ' ' ? i + 1 : i;
    if (j < n && is_other(cp_at(s, n, j, &l1))) {
        j = run(s, n, j, is_other);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    /* '\s*[\r\n]+': up to the last line break of the white-space run */
    size_t end = run(s, n, i, is_S), last_break = n;
    for (size_t k = i; k < end; k++)
        if (s[k] == '\r' || s[k] == '\n') last_break = k;
    if (last_break < n) return last_break + 1;
    return space_run(s, n, i);
}

/* The first place at or after i where pattern (m > 0 bytes) starts in s, or n. */
static size_t find(const unsigned char *s, size_t n, size_t i, const char *pattern, size_t m)
{
    while (i + m <= n) {
        const unsigned char *c = memchr(s + i, (unsigned char)pattern[0], n - m + 1 - i);
        if (!c) break;
        i = (size_t)(c - s);
        if (!memcmp(c + 1, pattern + 1, m - 1)) return i;
        i++;
    }
    return n;
}

/* Cut each piece of `in` (text `src`) by one pre-tokeniser step into `out` (text `dst`). */
static void pre_step(Work *w, const Step *st, const Bytes *src, const Spans *in, Bytes *dst, Spans *out, bool first_segment)
{
    dst->n = 0;
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        const unsigned char *s = src->s + in->v[k].at;
        size_t n = in->v[k].n;
        size_t base = dst->n;
        switch (st->kind) {
        case PRE_PATTERN:
            bytes_put(w, dst, s, n);
            for (size_t i = 0; i < n;) {
                size_t e = match_at(st->pattern, s, n, i);
                spans_push(w, out, base + i, e - i);
                i = e;
            }
            break;
        case PRE_BYTE_LEVEL: {
            if (st->prefix_space && s[0] != ' ') bytes_put(w, dst, " ", 1);
            bytes_put(w, dst, s, n);
            size_t m = dst->n - base;
            const unsigned char *d = dst->s + base;
            if (!st->use_regex) {
                spans_push(w, out, base, m);
                break;
            }
            for (size_t i = 0; i < m;) {
                size_t e = match_at(PATTERN_GPT2, d, m, i);
                spans_push(w, out, base + i, e - i);
                i = e;
            }
            break;
        }
        case PRE_METASPACE: {
            bool prepend = st->prepend == 2 || (st->prepend == 1 && first_segment && k == 0);
            if (prepend && !(n >= st->from_n && !memcmp(s, st->from, st->from_n))) bytes_put(w, dst, st->from, st->from_n);
            for (size_t i = 0; i < n;) {
                const unsigned char *space = memchr(s + i, ' ', n - i);
                size_t at = space ? (size_t)(space - s) : n;
                bytes_put(w, dst, s + i, at - i);
                if (at == n) break;
                bytes_put(w, dst, st->from, st->from_n);
                i = at + 1;
            }
            size_t m = dst->n - base, start = 0;
            const unsigned char *d = dst->s + base;
            if (st->split) /* split before each replacement (MergedWithNext) */
                for (size_t i = 1; i + st->from_n <= m; i++)
                    if (!memcmp(d + i, st->from, st->from_n)) {
                        spans_push(w, out, base + start, i - start);
                        start = i;
                    }
            spans_push(w, out, base + start, m - start);
            break;
        }
        case PRE_SPLIT: {
            bytes_put(w, dst, s, n);
            size_t start = 0; /* the start of the piece not yet pushed */
            for (size_t i = 0; (i = find(s, n, i, st->from, st->from_n)) < n;) {
                size_t e = i + st->from_n;
                switch (st->behavior) {
                case SPLIT_ISOLATED: spans_push(w, out, base + start, i - start); spans_push(w, out, base + i, e - i); start = e; break;
                case SPLIT_REMOVED: spans_push(w, out, base + start, i - start); start = e; break;
                case SPLIT_MERGED_PREVIOUS: spans_push(w, out, base + start, e - start); start = e; break;
                case SPLIT_MERGED_NEXT: spans_push(w, out, base + start, i - start); start = i; break;
                }
                i = e;
            }
            spans_push(w, out, base + start, n - start);
            break;
        }
        case PRE_DIGITS: {
            bytes_put(w, dst, s, n);
            size_t start = 0;
            for (size_t i = 0; i < n;) {
                if (s[i] >= '0' && s[i] <= '9') {
                    size_t e = st->individual ? i + 1 : i;
                    if (!st->individual) while (e < n && s[e] >= '0' && s[e] <= '9') e++;
                    spans_push(w, out, base + start, i - start);
                    spans_push(w, out, base + i, e - i);
                    start = i = e;
                } else {
                    i++;
                }
            }
            spans_push(w, out, base + start, n - start);
            break;
        }
        case NORM_NFC: case NORM_PREPEND: case NORM_REPLACE: break;
        }
    }
}

typedef struct Pair { int rank; int pos; int left, right; int a, b; } Pair;
typedef struct Heap { Pair *v; size_t n, cap; } Heap;

static bool pair_before(const Pair *x, const Pair *y) { return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos; }

static void heap_push(Work *w, Heap *h, Pair p)
{
    grow(w, (void **)&h->v, &h->cap, h->n + 1, sizeof(Pair));
    size_t i = h->n++;
    while (i > 0 && pair_before(&p, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = p;
}

static Pair heap_pop(Heap *h)
{
    Pair top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pair_before(&h->v[c + 1], &h->v[c])) c++;
        if (!pair_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

typedef struct Symbols { int *id, *prev, *next; size_t n, cap_id, cap_prev, cap_next; } Symbols;

static void add_pair(Work *w, Heap *h, const Symbols *sy, int left)
{
    int right = sy->next[left];
    if (left < 0 || right < 0) return;
    const MergeSlot *m = merge_find(w->t, sy->id[left], sy->id[right]);
    if (m) heap_push(w, h, (Pair){ m->rank, left, left, right, sy->id[left], sy->id[right] });
}

/* A piece's first symbols, one per byte (byte-level) or per character (its token, its <0xAB>
 * byte tokens, or unk); -1 when a character has no token (no unk, no fallback). */
static long initial_symbols(const TfmcTokenizer *t, const unsigned char *s, size_t n, int *id)
{
    size_t m = 0;
    if (t->byte_level) {
        for (size_t i = 0; i < n; i++) id[i] = t->byte_id[s[i]];
        return (long)n;
    }
    for (size_t i = 0; i < n;) {
        int len, tok;
        uint32_t cp = cp_at(s, n, i, &len);
        tok = cp < 0x10000 ? t->char_id[cp] : vocab_find(t, (const char *)s + i, (size_t)len);
        if (tok >= 0) {
            id[m++] = tok;
        } else if (t->byte_fallback) {
            for (int k = 0; k < len; k++) id[m++] = t->byte_id[s[i + (size_t)k]];
        } else if (t->unk >= 0) {
            if (!(t->fuse_unk && m > 0 && id[m - 1] == t->unk)) id[m++] = t->unk;
        } else {
            return -1;
        }
        i += (size_t)len;
    }
    return (long)m;
}

enum { SMALL_PIECE = 64 }; /* symbols up to which BPE scans instead of keeping a heap */

/* The rank and result of merging a and b (rank INT_MAX: they do not merge). */
static void pair_rank(const TfmcTokenizer *t, int a, int b, int *rank, int *result)
{
    const MergeSlot *m = merge_find(t, a, b);
    *rank = m ? m->rank : INT_MAX;
    *result = m ? m->result : -1;
}

/* BPE over a few symbols: a list linked through small arrays on the stack, with the rank of the
 * pair each symbol starts; the lowest (the leftmost of equal ones) is found by a scan, merged, and
 * the pairs on its two sides are looked up again. The ids are left in id[0..], in order. */
static size_t merge_small(const TfmcTokenizer *t, int *id, size_t n)
{
    enum { END = SMALL_PIECE };
    int rank[SMALL_PIECE], result[SMALL_PIECE]; /* of the pair (i, next[i]); INT_MAX: none */
    unsigned char prev[SMALL_PIECE], next[SMALL_PIECE];
    if (n < 2) return n;
    for (size_t i = 0; i + 1 < n; i++) merge_prefetch(t, id[i], id[i + 1]);
    for (size_t i = 0; i < n; i++) {
        prev[i] = (unsigned char)(i ? i - 1 : END);
        next[i] = (unsigned char)(i + 1 < n ? i + 1 : END);
        if (i + 1 < n) pair_rank(t, id[i], id[i + 1], &rank[i], &result[i]);
        else rank[i] = INT_MAX;
    }
    for (;;) {
        size_t best = 0;
        for (size_t i = next[0]; i != END; i = next[i])
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == INT_MAX) break;
        size_t right = next[best], after = next[right];
        id[best] = result[best];
        next[best] = (unsigned char)after;
        if (after != END) prev[after] = (unsigned char)best;
        if (prev[best] != END) merge_prefetch(t, id[prev[best]], id[best]);
        if (after != END) merge_prefetch(t, id[best], id[after]);
        if (prev[best] != END) pair_rank(t, id[prev[best]], id[best], &rank[prev[best]], &result[prev[best]]);
        if (after != END) pair_rank(t, id[best], id[after], &rank[best], &result[best]);
        else rank[best] = INT_MAX;
    }
    size_t m = 0;
    for (size_t i = 0; i != END; i = next[i]) id[m++] = id[i];
    return m;
}

/* BPE over many symbols: a heap of candidate pairs, a pair that a merge has made stale skipped
 * when it comes up. */
static size_t merge_large(Work *w, Symbols *sy, Heap *h)
{
    const TfmcTokenizer *t = w->t;
    grow(w, (void **)&sy->prev, &sy->cap_prev, sy->n, sizeof(int));
    grow(w, (void **)&sy->next, &sy->cap_next, sy->n, sizeof(int));
    for (size_t i = 0; i < sy->n; i++) {
        sy->prev[i] = (int)i - 1;
        sy->next[i] = i + 1 < sy->n ? (int)i + 1 : -1;
    }
    h->n = 0;
    for (size_t i = 0; i + 1 < sy->n; i++) add_pair(w, h, sy, (int)i);
    while (h->n) {
        Pair p = heap_pop(h);
        /* stale when either side has merged since */
        if (sy->id[p.left] != p.a || sy->next[p.left] != p.right || sy->id[p.right] != p.b) continue;
        const MergeSlot *m = merge_find(t, p.a, p.b);
        sy->id[p.left] = m->result;
        int after = sy->next[p.right];
        sy->next[p.left] = after;
        if (after >= 0) sy->prev[after] = p.left;
        sy->id[p.right] = -1;
        sy->next[p.right] = -1;
        if (sy->prev[p.left] >= 0) add_pair(w, h, sy, sy->prev[p.left]);
        add_pair(w, h, sy, p.left);
    }
    size_t m = 0;
    for (int i = sy->n ? 0 : -1; i >= 0; i = sy->next[i]) sy->id[m++] = sy->id[i];
    return m;
}

/* BPE on one word: its ids appended to out. false: a character has no token (no unk, no fallback). */
static bool bpe(Work *w, const unsigned char *s, size_t n, Ints *out, Symbols *sy, Heap *h)
{
    const TfmcTokenizer *t = w->t;
    if (t->ignore_merges) {
        int id = vocab_find(t, (const char *)s, n);
        if (id >= 0) {
            ints_push(w, out, id);
            return true;
        }
    }
    /* a character is at most four symbols (byte fallback), and takes at least one byte for each */
    grow(w, (void **)&sy->id, &sy->cap_id, n, sizeof(int));
    long first = initial_symbols(t, s, n, sy->id);
    if (first < 0) return false;
    sy->n = (size_t)first;
    size_t m = sy->n <= SMALL_PIECE ? merge_small(t, sy->id, sy->n) : merge_large(w, sy, h);
    grow(w, (void **)&out->v, &out->cap, out->n + m, sizeof(int));
    for (size_t i = 0; i < m; i++) out->v[out->n++] = sy->id[i]; /* a few: no call */
    return true;
}

/* The words met before in this call and their ids, for the words that come again: a table of
 * fixed slots in pairs, each word in the pair its hash picks, the one used last first (a new word
 * pushes out the older of the two). Only words of up to CACHE_TEXT bytes with up to CACHE_IDS ids
 * are kept. A text of 256 bytes or more gets a slot per 16 bytes (a power of two, from 64 to
 * CACHE_SLOTS: 60 bytes each, at most 480 KiB); the table lives for one call. */
enum { CACHE_TEXT = 24, CACHE_IDS = 7, CACHE_SLOTS = 8192 };
typedef struct CacheSlot {
    uint32_t hash;
    uint8_t len; /* 0: empty */
    uint8_t nids;
    int32_t ids[CACHE_IDS];
    unsigned char text[CACHE_TEXT];
} CacheSlot;

typedef struct Encoder {
    Bytes norm, tmp, pa, pb;
    Spans sa, sb;
    Symbols sy;
    Heap heap;
    CacheSlot *cache; /* NULL: no cache (a short text) */
    size_t cache_mask, cache_cap;
} Encoder;

static bool cache_holds(const CacheSlot *slot, const unsigned char *s, size_t n, uint32_t hash)
{
    return slot->len == n && slot->hash == hash && !memcmp(slot->text, s, n);
}

/* One word through the cache. */
static bool encode_word(Work *w, Encoder *e, const unsigned char *s, size_t n, Ints *out)
{
    if (!e->cache || n > CACHE_TEXT) return bpe(w, s, n, out, &e->sy, &e->heap);
    uint32_t hash = hash_bytes((const char *)s, n);
    CacheSlot *pair = &e->cache[hash & e->cache_mask & ~(size_t)1];
    if (!cache_holds(&pair[0], s, n, hash) && cache_holds(&pair[1], s, n, hash)) {
        CacheSlot swap = pair[0];
        pair[0] = pair[1];
        pair[1] = swap;
    }
    if (cache_holds(&pair[0], s, n, hash)) {
        grow(w, (void **)&out->v, &out->cap, out->n + pair[0].nids, sizeof(int));
        for (int k = 0; k < pair[0].nids; k++) out->v[out->n++] = pair[0].ids[k];
        return true;
    }
    size_t before = out->n;
    if (!bpe(w, s, n, out, &e->sy, &e->heap)) return false;
    size_t nids = out->n - before;
    if (nids <= CACHE_IDS) {
        pair[1] = pair[0];
        pair[0].hash = hash;
        pair[0].len = (uint8_t)n;
        pair[0].nids = (uint8_t)nids;
        memcpy(pair[0].text, s, n);
        for (size_t k = 0; k < nids; k++) pair[0].ids[k] = out->v[before + k];
    }
    return true;
}

/* One piece of the pre-tokeniser: word by word where BPE allows (split_words). */
static bool encode_piece(Work *w, Encoder *e, const unsigned char *s, size_t n, Ints *out)
{
    const TfmcTokenizer *t = w->t;
    if (!t->split_words) return encode_word(w, e, s, n, out);
    size_t start = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        /* before a ▁ that follows a character other than ▁ */
        if (s[i] != 0xE2 || s[i + 1] != 0x96 || s[i + 2] != 0x81 || t->no_cut_after[s[i - 1]]) continue;
        if (i >= 3 && s[i - 3] == 0xE2 && s[i - 2] == 0x96 && s[i - 1] == 0x81) continue;
        if (!encode_word(w, e, s + start, i - start, out)) return false;
        start = i;
        i += 2;
    }
    return encode_word(w, e, s + start, n - start, out);
}

/* Normalise s into out. */
static void normalise(Work *w, const unsigned char *s, size_t n, Bytes *out, Bytes *tmp)
{
    const TfmcTokenizer *t = w->t;
    out->n = 0;
    bytes_put(w, out, s, n);
    for (int k = 0; k < t->nnorm; k++) {
        const Step *st = &t->norm[k];
        tmp->n = 0;
        switch (st->kind) {
        case NORM_NFC: {
            bool ascii = true;
            for (size_t i = 0; i < out->n && ascii; i++) ascii = out->s[i] < 0x80;
            if (ascii) continue;
            grow(w, (void **)&tmp->s, &tmp->cap, UNICODE_NFC_BYTES(out->n) + 4 * UNICODE_NFC_POINTS(out->n), 1);
            /* the code points in the buffer's tail, aligned */
            size_t off = (UNICODE_NFC_BYTES(out->n) + 3) & ~(size_t)3;
            tmp->n = unicode_nfc_quick(t->nfc_unstable, out->s, out->n, tmp->s, (uint32_t *)(void *)(tmp->s + off));
            break;
        }
        case NORM_PREPEND:
            if (out->n == 0) continue;
            bytes_put(w, tmp, st->to, st->to_n);
            bytes_put(w, tmp, out->s, out->n);
            break;
        case NORM_REPLACE:
            for (size_t i = 0; i < out->n;) {
                size_t at = find(out->s, out->n, i, st->from, st->from_n);
                bytes_put(w, tmp, out->s + i, at - i);
                if (at == out->n) break;
                bytes_put(w, tmp, st->to, st->to_n);
                i = at + st->from_n;
            }
            break;
        case PRE_PATTERN: case PRE_SPLIT: case PRE_BYTE_LEVEL: case PRE_METASPACE: case PRE_DIGITS: continue;
        }
        Bytes swap = *out;
        *out = *tmp;
        *tmp = swap;
    }
}

static bool word_char(const unsigned char *s, size_t n, size_t i)
{
    int len;
    uint32_t c = cp_at(s, n, i, &len);
    return c == '_' || is_L(c) || is_N(c);
}

/* The added token that matches at i, longest first; its extent (with lstrip and rstrip) in *from, *to.
 * The trie is walked as far as the text follows it, then back towards the root: the longest
 * token that may stand here wins. */
static const Added *added_at(const TfmcTokenizer *t, const unsigned char *s, size_t n, size_t i, size_t lo, unsigned flags,
                             size_t *from, size_t *to)
{
    uint32_t node = t->added_root[s[i]];
    if (!node) return NULL;
    size_t len = 1;
    for (uint32_t next; i + len < n && (next = trie_next(t, node, s[i + len])) != 0; len++) node = next;
    for (; node; node = t->anode_parent[node], len--) {
        if (!t->anode_token[node]) continue;
        const Added *a = &t->added[t->anode_token[node] - 1];
        if (a->special && (flags & TFMC_TOKENIZE_PLAIN)) continue;
        if (a->single_word) {
            size_t before = i;
            while (before > 0 && (s[before - 1] & 0xC0) == 0x80) before--;
            if ((i > 0 && word_char(s, n, before - 1 < before ? before - 1 : 0)) || (i + len < n && word_char(s, n, i + len)))
                continue;
        }
        size_t f = i, e = i + len;
        if (a->lstrip)
            while (f > lo && (s[f - 1] == ' ' || s[f - 1] == '\t' || s[f - 1] == '\n' || s[f - 1] == '\r')) f--;
        if (a->rstrip)
            while (e < n && (s[e] == ' ' || s[e] == '\t' || s[e] == '\n' || s[e] == '\r')) e++;
        *from = f;
        *to = e;
        return a;
    }
    return NULL;
}

/* One stretch of text between added tokens: normalise, pre-tokenise, BPE. */
static bool encode_segment(Work *w, Encoder *e, const unsigned char *s, size_t n, bool first, Ints *out)
{
    const TfmcTokenizer *t = w->t;
    if (n == 0) return true;
    normalise(w, s, n, &e->norm, &e->tmp);
    if (e->norm.n == 0) return true;
    Bytes *src = &e->pa, *dst = &e->pb;
    Spans *in = &e->sa, *outp = &e->sb;
    src->n = 0;
    bytes_put(w, src, e->norm.s, e->norm.n);
    in->n = 0;
    spans_push(w, in, 0, src->n);
    for (int k = 0; k < t->npre; k++) {
        pre_step(w, &t->pre[k], src, in, dst, outp, first);
        Bytes *bt = src; src = dst; dst = bt;
        Spans *st = in; in = outp; outp = st;
    }
    for (size_t k = 0; k < in->n; k++)
        if (!encode_piece(w, e, src->s + in->v[k].at, in->v[k].n, out)) return false;
    return true;
}

size_t tfmc_tokenizer_max_ids(const TfmcTokenizer *t, size_t len)
{
    /* a byte is at most one token; a normaliser may prepend and a pre-tokeniser add a space per piece */
    return 2 * len + 8 + (size_t)t->nprefix + (size_t)t->nsuffix;
}

TfmcStatus tfmc_tokenizer_encode(const TfmcTokenizer *t, const char *text, size_t len, unsigned flags, int *ids,
                                 size_t cap, size_t *n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t bad = utf8_check(s, len);
    if (bad < len) {
        *n = bad;
        return TFMC_ERR_INPUT;
    }
    jmp_buf oom;
    Work w = { t, &oom, { 0 }, 0 };
    Encoder e;
    memset(&e, 0, sizeof e);
    Ints out = { 0 };
    TfmcStatus status = TFMC_OK;
    if (setjmp(oom)) {
        status = TFMC_ERR_NOMEM;
        goto done;
    }
    if (len >= 256) {
        /* a slot per 16 bytes of text, up to CACHE_SLOTS */
        size_t slots = 64;
        while (slots < len / 16 && slots < CACHE_SLOTS) slots *= 2;
        grow(&w, (void **)&e.cache, &e.cache_cap, slots, sizeof(CacheSlot));
        memset(e.cache, 0, sizeof(CacheSlot) * slots);
        e.cache_mask = slots - 1;
    }
    if (flags & TFMC_TOKENIZE_ADD_SPECIAL)
        for (int i = 0; i < t->nprefix; i++) ints_push(&w, &out, t->prefix[i]);
    size_t start = 0; /* the start of the text not yet encoded */
    bool first = true;
    for (size_t i = 0; i < len;) {
        size_t from, to;
        if (!t->added_root[s[i]]) { /* no added token starts with this byte */
            i++;
            continue;
        }
        const Added *a = added_at(t, s, len, i, start, flags, &from, &to);
        if (!a) {
            i++;
            continue;
        }
        if (!encode_segment(&w, &e, s + start, from - start, first && start == 0, &out)) {
            status = TFMC_ERR_INPUT;
            *n = start;
            goto done;
        }
        first = false;
        ints_push(&w, &out, a->id);
        start = i = to;
    }
    if (!encode_segment(&w, &e, s + start, len - start, first && start == 0, &out)) {
        status = TFMC_ERR_INPUT;
        *n = start;
        goto done;
    }
    if (flags & TFMC_TOKENIZE_ADD_SPECIAL)
        for (int i = 0; i < t->nsuffix; i++) ints_push(&w, &out, t->suffix[i]);
    *n = out.n;
    if (ids && cap && out.n) memcpy(ids, out.v, sizeof(int) * (out.n < cap ? out.n : cap));
done:
    for (int i = 0; i < w.nblocks; i++) t->alloc.realloc(t->alloc.ud, w.blocks[i], 0);
    return status;
}

/* ------------------------------------------------------------ decoding */

/* The bytes one token decodes to (before the leading strip and the UTF-8 assembly). */
static size_t token_bytes(const TfmcTokenizer *t, int id, unsigned flags, unsigned char *out)
{
    /* added tokens go through the decoder too (Gemma's "▁▁" runs are added tokens), but a
     * byte-level one holds its text as it is */
    if ((t->kind[id] & PIECE_SPECIAL) && (flags & TFMC_TOKENIZE_SKIP_SPECIAL)) return 0;
    const unsigned char *p = (const unsigned char *)t->piece[id];
    size_t n = t->piece_len[id];
    if ((t->kind[id] & PIECE_BYTE) && t->dec_byte_fallback) {
        int hi = p[3] <= '9' ? p[3] - '0' : p[3] - 'A' + 10, lo = p[4] <= '9' ? p[4] - '0' : p[4] - 'A' + 10;
        out[0] = (unsigned char)(hi * 16 + lo);
        return 1;
    }
    if (!t->dec_from_n) {
        memcpy(out, p, n);
        return n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (i + t->dec_from_n <= n && !memcmp(p + i, t->dec_from, t->dec_from_n)) {
            memcpy(out + m, t->dec_to, t->dec_to_n);
            m += t->dec_to_n;
            i += t->dec_from_n;
        } else {
            out[m++] = p[i++];
        }
    }
    return m;
}

size_t tfmc_tokenizer_stream_bytes(const TfmcTokenizer *t) { return 3 * (t->max_text + 4) + 1; }

void tfmc_tokenizer_stream_init(TfmcTokenStream *s, const TfmcTokenizer *t, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->tokenizer = t;
    s->flags = flags;
    s->strip = t->dec_strip;
}

/* How many bytes at s (n of them) form the longest valid start of a UTF-8 character (at least
 * 1), and in *need how many the whole character takes. */
static int utf8_prefix(const unsigned char *s, size_t n, int *need)
{
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    *need = len;
    if (len <= 1) return 1;
    unsigned lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    else if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    int k = 1;
    for (; k < len && (size_t)k < n; k++) {
        if (s[k] < lo || s[k] > hi) break;
        lo = 0x80, hi = 0xBF;
    }
    return k;
}

static const unsigned char replacement[3] = { 0xEF, 0xBF, 0xBD };

/* Emit the complete characters of buf[0..n); keep an incomplete valid tail in the stream unless
 * `final`. Invalid bytes become U+FFFD (one per maximal invalid part, as the Unicode standard and
 * every UTF-8 decoder the references use). Returns the bytes written to out. */
static size_t assemble(TfmcTokenStream *st, const unsigned char *buf, size_t n, bool final, char *out)
{
    size_t m = 0;
    st->npending = 0;
    for (size_t i = 0; i < n;) {
        int need, got = utf8_prefix(buf + i, n - i, &need);
        if (need == got) {
            memcpy(out + m, buf + i, (size_t)got);
            m += (size_t)got;
            i += (size_t)got;
        } else if (need > 0 && i + (size_t)got == n && !final) {
            memcpy(st->pending, buf + i, (size_t)got);
            st->npending = got;
            break;
        } else {
            memcpy(out + m, replacement, 3);
            m += 3;
            i += (size_t)got;
        }
    }
    out[m] = '\0';
    return m;
}

TfmcStatus tfmc_tokenizer_stream_push(TfmcTokenStream *s, int id, char *out, size_t *len)
{
    const TfmcTokenizer *t = s->tokenizer;
    *len = 0;
    out[0] = '\0';
    if (id < 0 || id >= t->vocab || !t->piece[id]) return TFMC_ERR_INPUT;
    unsigned char buf[4 + 4096];
    unsigned char *b = buf;
    size_t need = 4 + t->max_text;
    if (need > sizeof buf) {
        b = t->alloc.realloc(t->alloc.ud, NULL, need);
        if (!b) return TFMC_ERR_NOMEM;
    }
    memcpy(b, s->pending, (size_t)s->npending);
    size_t n = (size_t)s->npending;
    size_t k = token_bytes(t, id, s->flags, b + n);
    size_t skip = 0;
    while (s->strip > 0 && skip < k && b[n + skip] == ' ') skip++, s->strip--;
    if (skip < k) s->strip = 0;
    memmove(b + n, b + n + skip, k - skip);
    n += k - skip;
    *len = assemble(s, b, n, false, out);
    if (b != buf) t->alloc.realloc(t->alloc.ud, b, 0);
    return TFMC_OK;
}

void tfmc_tokenizer_stream_flush(TfmcTokenStream *s, char *out, size_t *len)
{
    unsigned char buf[4];
    size_t n = (size_t)s->npending;
    memcpy(buf, s->pending, n);
    *len = assemble(s, buf, n, true, out);
}

TfmcStatus tfmc_tokenizer_decode(const TfmcTokenizer *t, const int *ids, size_t n, unsigned flags, char *out,
                                 size_t cap, size_t *len)
{
    TfmcTokenStream st;
    tfmc_tokenizer_stream_init(&st, t, flags);
    size_t bound = tfmc_tokenizer_stream_bytes(t);
    char small[4096];
    char *piece = bound <= sizeof small ? small : t->alloc.realloc(t->alloc.ud, NULL, bound);
    if (!piece) return TFMC_ERR_NOMEM;
    size_t total = 0;
    TfmcStatus status = TFMC_OK;
    for (size_t i = 0; i <= n; i++) {
        size_t m;
        if (i < n) {
            status = tfmc_tokenizer_stream_push(&st, ids[i], piece, &m);
            if (status != TFMC_OK) break;
        } else {
            tfmc_tokenizer_stream_flush(&st, piece, &m);
        }
        if (total < cap) memcpy(out + total, piece, total + m <= cap ? m : cap - total);
        total += m;
    }
    if (cap) out[total < cap ? total : cap - 1] = '\0';
    *len = total;
    if (piece != small) t->alloc.realloc(t->alloc.ud, piece, 0);
    return status;
}

size_t tfmc_tokenizer_bytes(const TfmcTokenizer *t)
{
    return t->bytes;
}
