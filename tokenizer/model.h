/* model.h: a loaded tokenizer's structure and its lookups (the vocabulary, the merges, the added
 * tokens' trie), shared by reading it (tokenizer.c), encoding (encode.c) and decoding (decode.c).
 * Internal to the tokenizer layer: the library sees only tokenizer.h and tfmc.h. */
#ifndef TFMC_TOKENIZER_MODEL_H
#define TFMC_TOKENIZER_MODEL_H

#include <string.h>

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

/* ------------------------------------------------------------ lookups */

/* A hash of n bytes, eight at a time (a multiply and a shift per word, then a finalizer). */
uint32_t tokenizer_hash(const char *s, size_t n);

static inline int vocab_find(const TfmcTokenizer *t, const char *s, size_t n)
{
    if (!t->vslot) return -1;
    for (size_t i = tokenizer_hash(s, n) & t->vmask;; i = (i + 1) & t->vmask) {
        uint32_t v = t->vslot[i];
        if (!v) return -1;
        int id = (int)v - 1;
        if (t->piece_len[id] == n && !memcmp(t->piece[id], s, n)) return id;
    }
}

static inline uint64_t merge_key(int a, int b) { return (uint64_t)(uint32_t)(a + 1) << 32 | (uint32_t)(b + 1); }

static inline size_t merge_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k;
}

/* Ask for the slot of (a, b) before merge_find needs it: the table is larger than the caches, and
 * a word's pairs are looked up together, so their misses overlap. */
static inline void merge_prefetch(const TfmcTokenizer *t, int a, int b)
{
#if defined(__GNUC__)
    __builtin_prefetch(&t->mslot[merge_hash(merge_key(a, b)) & t->mmask]);
#else
    (void)t, (void)a, (void)b;
#endif
}

static inline const MergeSlot *merge_find(const TfmcTokenizer *t, int a, int b)
{
    uint64_t k = merge_key(a, b);
    for (size_t i = merge_hash(k) & t->mmask;; i = (i + 1) & t->mmask) {
        if (t->mslot[i].key == k) return &t->mslot[i];
        if (!t->mslot[i].key) return NULL;
    }
}

/* The child of a trie node by one byte (0: none). */
static inline uint32_t trie_next(const TfmcTokenizer *t, uint32_t node, unsigned char byte)
{
    if (node == 0) return t->added_root[byte];
    uint64_t key = ((uint64_t)node << 8 | byte) + 1;
    for (size_t i = merge_hash(key) & t->aemask;; i = (i + 1) & t->aemask) {
        uint64_t e = t->aedge[i];
        if (!e) return 0;
        if (e >> 32 == key) return (uint32_t)e;
    }
}

#endif
