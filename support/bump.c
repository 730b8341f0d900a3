/* bump.c: a TfmcAllocator over one fixed buffer: allocation by bumping a top, the last allocation
 * resized or freed in place, a high-water mark (support.h says why). */
#include <string.h>

#include "support.h"

/* Before each allocation: its size and the previous last allocation (ArenaAlign-sized, so the
 * allocation after it stays aligned). */
typedef union BumpHeader {
    struct {
        size_t size, prev;
    } h;
    ArenaAlign align;
} BumpHeader;

static size_t bump_round(size_t n) { return (n + sizeof(ArenaAlign) - 1) / sizeof(ArenaAlign) * sizeof(ArenaAlign); }

void bump_init(Bump *b, void *buf, size_t cap)
{
    size_t skip = (sizeof(ArenaAlign) - (size_t)((uintptr_t)buf % sizeof(ArenaAlign))) % sizeof(ArenaAlign);
    b->base = (unsigned char *)buf + (skip < cap ? skip : cap);
    b->cap = cap - (skip < cap ? skip : cap);
    b->top = b->high = 0;
    b->last = b->cap;
}

size_t bump_mark(const Bump *b) { return b->top; }

void bump_release(Bump *b, size_t mark)
{
    if (mark > b->top) return;
    b->top = mark;
    while (b->last != b->cap && b->last >= mark) {
        BumpHeader hd;
        memcpy(&hd, b->base + b->last, sizeof hd);
        b->last = hd.h.prev;
    }
}

static BumpHeader *header_of(void *p) { return (BumpHeader *)((unsigned char *)p - sizeof(BumpHeader)); }

static void *bump_take(Bump *b, size_t size)
{
    size_t need = sizeof(BumpHeader) + bump_round(size);
    BumpHeader *hd;
    if (size > b->cap || need > b->cap - b->top) return NULL;
    hd = (BumpHeader *)(b->base + b->top);
    hd->h.size = size;
    hd->h.prev = b->last;
    b->last = b->top;
    b->top += need;
    if (b->top > b->high) b->high = b->top;
    return hd + 1;
}

static void *bump_realloc(void *ud, void *ptr, size_t size)
{
    Bump *b = ud;
    BumpHeader *hd;
    int last;
    void *np;
    if (!ptr) return size ? bump_take(b, size) : NULL;
    hd = header_of(ptr);
    last = (unsigned char *)hd == b->base + b->last;
    if (size == 0) {
        if (last) {
            b->top = b->last;
            b->last = hd->h.prev;
        }
        return NULL;
    }
    if (last) {
        size_t need = sizeof(BumpHeader) + bump_round(size);
        if (size > b->cap || need > b->cap - b->last) return NULL;
        hd->h.size = size;
        b->top = b->last + need;
        if (b->top > b->high) b->high = b->top;
        return ptr;
    }
    np = bump_take(b, size);
    if (np) memcpy(np, ptr, hd->h.size < size ? hd->h.size : size);
    return np;
}

TfmcAllocator bump_allocator(Bump *b)
{
    TfmcAllocator a;
    a.realloc = bump_realloc;
    a.ud = b;
    return a;
}
