/* arena.c: bump allocation in blocks, freed all at once (one arena per context). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, cap;
    ArenaAlign data[]; /* (bytes, aligned for anything) */
};

size_t arena_block_bytes = 64 * 1024;

/* TFMC_NO_LIBC_ALLOCATOR: the tokenizer pasted into generated C (scripts/amalgamate_tokenizer.py)
 * has no libc allocator in its text at all: its memory is a fixed buffer (support/bump.c). */
#ifndef TFMC_NO_LIBC_ALLOCATOR
static void *libc_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

const TfmcAllocator libc_allocator = { libc_realloc, NULL };
#endif

void arena_init(Arena *a, const TfmcAllocator *alloc, jmp_buf *on_oom)
{
    a->alloc = alloc;
    a->on_oom = on_oom;
    a->head = NULL;
    a->cleanups = NULL;
}

struct ArenaCleanup {
    void (*fn)(void *);
    void *ud;
    ArenaCleanup *next;
};

void arena_on_free(Arena *a, void (*fn)(void *), void *ud)
{
    ArenaCleanup *c = arena_alloc(a, sizeof *c);
    c->fn = fn;
    c->ud = ud;
    c->next = a->cleanups;
    a->cleanups = c;
}

void *arena_alloc(Arena *a, size_t size)
{
    size_t align = sizeof(ArenaAlign);
    size = (size + align - 1) & ~(align - 1);
    if (size == 0) size = align;
    ArenaBlock *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > arena_block_bytes ? size : arena_block_bytes;
        b = a->alloc->realloc(a->alloc->ud, NULL, sizeof(ArenaBlock) + cap);
        if (!b) longjmp(*a->on_oom, 1);
        b->used = 0;
        b->cap = cap;
        /* A big one-off block goes behind the current one so its free space is kept. */
        if (a->head && cap > arena_block_bytes) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (unsigned char *)b->data + b->used;
    b->used += size;
    return p;
}

size_t arena_bytes(const Arena *a)
{
    size_t n = 0;
    for (const ArenaBlock *b = a->head; b; b = b->next) n += sizeof *b + b->cap;
    return n;
}

void *arena_zalloc(Arena *a, size_t size)
{
    void *p = arena_alloc(a, size);
    memset(p, 0, size);
    return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...)
{
    /* most strings are short: format on the stack, then copy (no vsnprintf(NULL, 0), which GCC's
     * -Wformat-truncation rejects at -O2 with sanitizers) */
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0, small[0] = '\0';
    if ((size_t)n < sizeof small) return arena_strndup(a, small, (size_t)n);
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void *arena_grow(Arena *a, void *ptr, int *cap, int need, size_t size)
{
    int ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) ncap *= 2;
    void *p = arena_alloc(a, (size_t)ncap * size);
    if (ptr) memcpy(p, ptr, (size_t)*cap * size);
    *cap = ncap;
    return p;
}

/* Room for `more` bytes and a terminating NUL. */
static void text_reserve(Text *t, size_t more)
{
    if (t->len + more + 1 <= t->cap) return;
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->len + more + 1) cap *= 2;
    char *s = arena_alloc(t->a, cap);
    if (t->s) memcpy(s, t->s, t->len);
    t->s = s;
    t->cap = cap;
}

void text_putc(Text *t, char c)
{
    text_reserve(t, 1);
    t->s[t->len++] = c;
    t->s[t->len] = '\0';
}

void text_printf(Text *t, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n <= 0) return;
    text_reserve(t, (size_t)n);
    if ((size_t)n < sizeof small) {
        memcpy(t->s + t->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

const char *text_str(Text *t) { return t->s ? t->s : ""; }

void arena_free(Arena *a)
{
    for (ArenaCleanup *c = a->cleanups; c; c = c->next) c->fn(c->ud);
    a->cleanups = NULL;
    ArenaBlock *b = a->head;
    while (b) {
        ArenaBlock *next = b->next;
        a->alloc->realloc(a->alloc->ud, b, 0);
        b = next;
    }
    a->head = NULL;
}
