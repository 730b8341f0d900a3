/* support.h: what every stage of tfmc shares and nothing of tfmc's stages: the arena (bump
 * allocation freed at once, out of memory as a longjmp), strings built in it, source places and
 * the diagnostics list. The layer below everything (docs/design.md, section 3). */
#ifndef TFMC_SUPPORT_H
#define TFMC_SUPPORT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tfmc.h"

/* ---------------------------------------------------------------- arena */

/* Bump allocation from blocks freed all at once. Allocation failure jumps to
 * the context's recovery point (the API entry), so callers never check NULL. */
typedef struct ArenaBlock ArenaBlock;
typedef struct ArenaCleanup ArenaCleanup;
/* The strictest alignment of the scalars (max_align_t's, spelt out so that the support layer also
 * builds as C99: the tokenizer's amalgamation pastes it into generated code); its size is a
 * multiple of it, and every arena allocation is rounded to its size. */
typedef union ArenaAlign {
    long double ld;
    long long ll;
    double d;
    void *p;
    void (*f)(void);
} ArenaAlign;
typedef struct Arena {
    const TfmcAllocator *alloc;
    jmp_buf *on_oom;
    ArenaBlock *head;
    ArenaCleanup *cleanups; /* run by arena_free, the latest first */
} Arena;

/* The C library's realloc and free as a TfmcAllocator (a context's default). */
extern const TfmcAllocator libc_allocator;

void arena_init(Arena *a, const TfmcAllocator *alloc, jmp_buf *on_oom);
/* The size of an arena's blocks (64 KiB). Fault-injection tests make it small, so that almost
 * every allocation reaches the allocator and can fail there. */
extern size_t arena_block_bytes;
void *arena_alloc(Arena *a, size_t size);
void *arena_zalloc(Arena *a, size_t size);
/* The bytes the arena holds from its allocator. */
size_t arena_bytes(const Arena *a);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Grow an array of `*cap` elements of `size` bytes to hold at least `need` elements. */
void *arena_grow(Arena *a, void *ptr, int *cap, int need, size_t size);
/* Have arena_free call fn(ud) before it frees the blocks: for what the arena's memory points into
 * and the arena does not own (a memory-mapped weight file). */
void arena_on_free(Arena *a, void (*fn)(void *), void *ud);
void arena_free(Arena *a);

/* ---------------------------------------------------------------- a fixed buffer as an allocator */

/* A TfmcAllocator over one buffer the caller owns, for code that must not call malloc (the
 * tokenizer in generated C): each allocation is put on top of the last (aligned as ArenaAlign,
 * after a header of its size); the last one grows, shrinks and is freed in place, so frees in
 * reverse order give the memory back; anything else freed stays taken until bump_release. No
 * room: NULL. `high` is the most ever taken, so running code once over a large buffer says how
 * large a buffer that code needs (tfmc sizes a generated tokenizer's buffer so). */
typedef struct Bump {
    unsigned char *base;
    size_t cap;
    size_t top;  /* bytes taken, from base */
    size_t last; /* the offset of the last allocation's header, or cap when none */
    size_t high; /* the largest top so far */
} Bump;
void bump_init(Bump *b, void *buf, size_t cap);
TfmcAllocator bump_allocator(Bump *b);
/* Everything taken after the mark (bump_mark's value) is given back at once. */
size_t bump_mark(const Bump *b);
void bump_release(Bump *b, size_t mark);

/* A string built piece by piece in an arena (JSON headers, messages). */
typedef struct Text {
    Arena *a;
    char *s;
    size_t len, cap;
} Text;
void text_putc(Text *t, char c);
void text_printf(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The string so far ("" when empty); the Text may go on growing. */
const char *text_str(Text *t);

#define ARENA_NEW(a, T) ((T *)arena_zalloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_zalloc((a), sizeof(T) * (size_t)(n)))
/* Append x to the array field v (with count n and capacity cap) of an arena-held vector. */
#define VEC_PUSH(a, v, n, cap, x)                                                     \
    do {                                                                              \
        if ((n) >= (cap)) (v) = arena_grow((a), (v), &(cap), (n) + 1, sizeof(*(v))); \
        (v)[(n)++] = (x);                                                             \
    } while (0)

/* ---------------------------------------------------------- diagnostics */

typedef struct SrcFile {
    const char *path;
    const char *text;
    size_t len;
    uint64_t hash; /* FNV-1a of the text, recorded in generated code */
} SrcFile;

/* A source range; columns are 1-based and count characters (not bytes), last_column inclusive.
 * Bison's YYLTYPE. */
typedef struct SrcLoc {
    int first_line, first_column, last_line, last_column;
} SrcLoc;

/* The length of the valid UTF-8 sequence at p (n bytes available), or 0 when it is not valid UTF-8
 * (overlong forms, surrogates and code points past U+10FFFF included). In support/json.c. */
int utf8_valid_length(const unsigned char *p, size_t n);

/* A UTF-8 continuation byte: it does not start a character, so it does not start a column. */
static inline bool utf8_continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

typedef struct DiagList {
    Arena *arena;
    TfmcDiagnostic *items;
    const SrcFile **files; /* parallel to items: where to find the source line */
    int n, cap;
    int errors;   /* items that are errors (the rest are warnings) */
    bool dropped; /* the last error repeated an earlier one and was not added */
} DiagList;

/* At most this many errors are kept; one more says that the rest were dropped. */
#define DIAG_MAX_ERRORS 100

void diag_error(DiagList *d, const SrcFile *f, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A warning: printed like an error, but it fails nothing. */
void diag_warning(DiagList *d, const SrcFile *f, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Attach a hint to diagnostic `index` (one of d->n). */
void diag_hint_at(DiagList *d, int index, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Forget every diagnostic (their memory is the list's arena's, which the caller frees). */
void diag_clear(DiagList *d);
/* Attach a hint to the most recent error. */
void diag_hint(DiagList *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_print(const DiagList *d, FILE *out);
/* The source text of a range within one line of f (columns count characters), or NULL. */
const char *diag_source_text(const SrcFile *f, SrcLoc loc, size_t *len);
/* The closest name to `name` among `cands` (edit distance), or NULL when none is close. */
const char *diag_suggest(const char *name, const char *const *cands, int n);

/* --------------------------------------------------------------- values */

/* A RASP scalar (support/value.c): plain data, the public TfmcValue. */
typedef TfmcValue Value;

typedef struct ValueSet {
    Value *v; /* sorted by value_cmp, no two equal */
    int n;
} ValueSet;

bool value_is_number(Value v); /* bool, int or float */
bool value_is_integral(Value v); /* bool or int */
int64_t value_as_int(Value v);   /* of an integral value */
/* Numbers by value (exactly for two integers), strings by bytes, undefined first. */
int value_cmp_loose(Value a, Value b);
double value_number(Value v);
/* Python equality: numbers (bools included) compare by value, strings by text. */
bool value_eq(Value a, Value b);
/* A total order for value sets: undefined, then numbers, then strings. */
int value_cmp(Value a, Value b);
int value_format(Value v, char *buf, size_t cap);
Value value_int(int64_t i);
Value value_float(double f);
Value value_bool(bool b);

/* Sort and deduplicate vals[0..n) in place; returns the new count. */
int valueset_normalise(Value *vals, int n);
bool valueset_contains(const ValueSet *s, Value v);
int valueset_index(const ValueSet *s, Value v);

#endif
