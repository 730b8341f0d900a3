/* encode.c: text to ids: added tokens found in the raw text (a trie), each stretch between them
 * normalised (NFC with a quick check, Prepend, Replace), cut into pieces by the pre-tokeniser
 * (hand-written matchers for the known patterns, ByteLevel, Metaspace, Split, Digits), SentencePiece
 * text cut into words where no merge joins across, and each word merged by BPE, through a cache
 * of the words met before in the call (docs/tokenizers.md, "Performance"). */
#include <limits.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

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
 * CACHE_SLOTS: 60 bytes each, at most 480 KiB) at its first word of up to CACHE_TEXT bytes; the
 * table lives for one call. */
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
    CacheSlot *cache;   /* allocated at the first word it can hold */
    size_t cache_slots; /* 0: no cache (a short text) */
    size_t cache_cap;
} Encoder;

static bool cache_holds(const CacheSlot *slot, const unsigned char *s, size_t n, uint32_t hash)
{
    return slot->len == n && slot->hash == hash && !memcmp(slot->text, s, n);
}

/* One word through the cache. */
static bool encode_word(Work *w, Encoder *e, const unsigned char *s, size_t n, Ints *out)
{
    if (!e->cache_slots || n > CACHE_TEXT) return bpe(w, s, n, out, &e->sy, &e->heap);
    if (!e->cache) { /* (a text of one long word takes none) */
        grow(w, (void **)&e->cache, &e->cache_cap, e->cache_slots, sizeof(CacheSlot));
        memset(e->cache, 0, sizeof(CacheSlot) * e->cache_slots);
    }
    uint32_t hash = tokenizer_hash((const char *)s, n);
    CacheSlot *pair = &e->cache[hash & (e->cache_slots - 1) & ~(size_t)1];
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
    volatile TfmcStatus status = TFMC_OK; /* (read after the longjmp of an allocation failure) */
    if (setjmp(oom)) {
        status = TFMC_ERR_NOMEM;
        goto done;
    }
    if (len >= 256) {
        /* a slot per 16 bytes of text, up to CACHE_SLOTS */
        e.cache_slots = 64;
        while (e.cache_slots < len / 16 && e.cache_slots < CACHE_SLOTS) e.cache_slots *= 2;
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

