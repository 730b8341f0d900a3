/* memplan.c: memory planning (-O1). One arena; each tensor gets an offset when its producing op
 * runs and frees its place after the last op that reads it, so tensors that are never alive at
 * the same time share memory (first fit over the free list); an op that may write over its input
 * (graph_in_place_input) takes the input's place when that was its last use. KV caches and the graph's output
 * stay for good. Preserves: every value exactly (only addresses change). The arena size reported
 * by --report and NAME_ARENA_BYTES is what the generated code uses. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct Block {
    size_t at, size;
} Block;

/* First fit in a sorted free list; grows the arena's end when nothing fits. */
static size_t take(Block *free_list, int *nfree, size_t *end, size_t size)
{
    for (int i = 0; i < *nfree; i++)
        if (free_list[i].size >= size) {
            size_t at = free_list[i].at;
            free_list[i].at += size;
            free_list[i].size -= size;
            if (free_list[i].size == 0) {
                memmove(free_list + i, free_list + i + 1, sizeof(Block) * (size_t)(*nfree - i - 1));
                (*nfree)--;
            }
            return at;
        }
    size_t at = *end;
    *end += size;
    return at;
}

/* Return a region, merging with its neighbours. */
static void give(Block *free_list, int *nfree, size_t at, size_t size)
{
    int i = 0;
    while (i < *nfree && free_list[i].at < at) i++;
    memmove(free_list + i + 1, free_list + i, sizeof(Block) * (size_t)(*nfree - i));
    free_list[i].at = at;
    free_list[i].size = size;
    (*nfree)++;
    if (i + 1 < *nfree && free_list[i].at + free_list[i].size == free_list[i + 1].at) {
        free_list[i].size += free_list[i + 1].size;
        memmove(free_list + i + 1, free_list + i + 2, sizeof(Block) * (size_t)(*nfree - i - 2));
        (*nfree)--;
    }
    if (i > 0 && free_list[i - 1].at + free_list[i - 1].size == free_list[i].at) {
        free_list[i - 1].size += free_list[i].size;
        memmove(free_list + i, free_list + i + 1, sizeof(Block) * (size_t)(*nfree - i - 1));
        (*nfree)--;
    }
}

bool pass_memplan(PassContext *pc, Graph *g)
{
    int nt = g->ntensors;
    size_t n = (size_t)g->positions;
    int *last = ARENA_ARRAY(pc->arena, int, nt ? nt : 1);
    bool *placed = ARENA_ARRAY(pc->arena, bool, nt ? nt : 1);
    Block *free_list = ARENA_ARRAY(pc->arena, Block, 2 * nt + 2);
    for (int t = 0; t < nt; t++) last[t] = -1;
    for (int i = 0; i < g->nops; i++)
        for (int k = 0; k < 3; k++)
            if (g->ops[i].in[k] >= 0) last[g->ops[i].in[k]] = i;
    for (int t = 0; t < nt; t++)
        if (g->tensors[t].cache || t == g->output) last[t] = g->nops; /* kept to the end */
    size_t end = 0;
    int nfree = 0;
    /* caches first: they live across calls */
    for (int t = 0; t < nt; t++)
        if (g->tensors[t].cache) {
            g->tensors[t].offset = end;
            end += n * (size_t)g->tensors[t].cols;
            placed[t] = true;
        }
    for (int i = 0; i < g->nops; i++) {
        const GraphOp *o = &g->ops[i];
        int t = o->out;
        /* a sparse update of a tensor read for the last time here takes its place (in place) */
        /* so does an activation or a softmax of a tensor read for the last time (the kernels work
         * in place: the copy before them goes) */
        int over = graph_in_place_input(g, o);
        if (!placed[t] && over >= 0 && last[over] == i && over != g->output && !g->tensors[over].cache &&
            graph_tensor_floats(g, over) == graph_tensor_floats(g, t)) {
            g->tensors[t].offset = g->tensors[over].offset;
            placed[t] = true;
            last[over] = -2; /* its place now belongs to t: not given back below */
        }
        if (!placed[t]) {
            size_t size = graph_tensor_floats(g, t);
            g->tensors[t].offset = take(free_list, &nfree, &end, size ? size : 1);
            placed[t] = true;
            if (last[t] < 0) last[t] = i; /* written, never read */
        }
        /* inputs whose last reader this is give their place back (after the output is placed,
         * so an op never writes over what it reads) */
        for (int k = 0; k < 3; k++) {
            int in = o->in[k];
            if (in < 0 || last[in] != i || in == t) continue;
            bool dup = false;
            for (int q = 0; q < k; q++) dup |= o->in[q] == in;
            if (dup) continue;
            size_t size = graph_tensor_floats(g, in);
            give(free_list, &nfree, g->tensors[in].offset, size ? size : 1);
        }
        if (last[t] == i && t != g->output) {
            size_t size = graph_tensor_floats(g, t);
            give(free_list, &nfree, g->tensors[t].offset, size ? size : 1);
        }
    }
    g->scratch = end;
    g->scratch_floats = graph_scratch_floats(g);
    g->arena_floats = end + g->scratch_floats;
    g->planned = true;
    return true;
}
