/* memory_limit.c: how much memory this process may take, for the check that a declared model
 * fits before its weights are allocated: physical memory, the cgroup's limit, resource limits. */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ir.h"

/* A byte count from the first line of a file (cgroup limits), or 0 when absent or "max". */
static size_t read_limit(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long long v = 0;
    int got = fscanf(f, "%llu", &v);
    fclose(f);
    return got == 1 ? (size_t)v : 0;
}

static size_t smaller(size_t a, size_t b) { return b && b < a ? b : a; }

size_t model_memory_limit(size_t requested)
{
    if (requested) return requested;
    size_t limit = (size_t)-1;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) limit = (size_t)pages * (size_t)page;
    limit = smaller(limit, read_limit("/sys/fs/cgroup/memory.max"));
    limit = smaller(limit, read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = smaller(limit, (size_t)rl.rlim_cur);
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = smaller(limit, (size_t)rl.rlim_cur);
    return limit;
}
