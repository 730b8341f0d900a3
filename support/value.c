/* value.c: RASP scalar values with Python's semantics (Tracr's lambdas are Python) and value
 * sets: plain data that every layer reads (the frontend computes with them, the model IR decodes
 * its outputs into them, the backends print them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

Value value_int(int64_t i) { Value v = { .kind = TFMC_INT, .u.i = i }; return v; }
Value value_float(double f) { Value v = { .kind = TFMC_FLOAT, .u.f = f }; return v; }
Value value_bool(bool b) { Value v = { .kind = TFMC_BOOL, .u.b = b }; return v; }

bool value_is_number(Value v) { return v.kind == TFMC_BOOL || v.kind == TFMC_INT || v.kind == TFMC_FLOAT; }

double value_number(Value v)
{
    switch (v.kind) {
    case TFMC_BOOL: return v.u.b ? 1.0 : 0.0;
    case TFMC_INT: return (double)v.u.i;
    case TFMC_FLOAT: return v.u.f;
    case TFMC_UNDEF:
    case TFMC_STR: return 0.0;
    }
    return 0.0;
}

bool value_is_integral(Value v) { return v.kind == TFMC_BOOL || v.kind == TFMC_INT; }
int64_t value_as_int(Value v) { return v.kind == TFMC_BOOL ? (int64_t)v.u.b : v.u.i; }

/* Numbers compare by value (exactly for two integers), strings by bytes. */
int value_cmp_loose(Value a, Value b)
{
    int ra = a.kind == TFMC_UNDEF ? 0 : a.kind == TFMC_STR ? 2 : 1;
    int rb = b.kind == TFMC_UNDEF ? 0 : b.kind == TFMC_STR ? 2 : 1;
    if (ra != rb) return ra < rb ? -1 : 1;
    if (ra == 2) {
        int c = strcmp(a.u.s, b.u.s);
        return (c > 0) - (c < 0);
    }
    if (ra == 0) return 0;
    if (value_is_integral(a) && value_is_integral(b)) {
        int64_t x = value_as_int(a), y = value_as_int(b);
        return (x > y) - (x < y);
    }
    double x = value_number(a), y = value_number(b);
    return (x > y) - (x < y);
}

bool value_eq(Value a, Value b)
{
    if (a.kind == TFMC_UNDEF || b.kind == TFMC_UNDEF) return a.kind == b.kind;
    if ((a.kind == TFMC_STR) != (b.kind == TFMC_STR)) return false;
    return value_cmp_loose(a, b) == 0;
}

int value_cmp(Value a, Value b)
{
    int c = value_cmp_loose(a, b);
    if (c) return c;
    /* equal numbers of different kinds: a fixed order keeps sorting deterministic */
    static const int rank[] = { [TFMC_UNDEF] = 0, [TFMC_INT] = 1, [TFMC_FLOAT] = 2, [TFMC_BOOL] = 3,
                                [TFMC_STR] = 4 };
    return (rank[a.kind] > rank[b.kind]) - (rank[a.kind] < rank[b.kind]);
}

int value_format(Value v, char *buf, size_t cap)
{
    switch (v.kind) {
    case TFMC_UNDEF: return snprintf(buf, cap, "_");
    case TFMC_BOOL: return snprintf(buf, cap, "%s", v.u.b ? "true" : "false");
    case TFMC_INT: return snprintf(buf, cap, "%lld", (long long)v.u.i);
    case TFMC_FLOAT: return snprintf(buf, cap, "%.9g", v.u.f == 0.0 ? 0.0 : v.u.f);
    case TFMC_STR: return snprintf(buf, cap, "%s", v.u.s);
    }
    return 0;
}

static int qsort_cmp(const void *a, const void *b) { return value_cmp(*(const Value *)a, *(const Value *)b); }

int valueset_normalise(Value *vals, int n)
{
    if (n <= 1) return n;
    qsort(vals, (size_t)n, sizeof(Value), qsort_cmp);
    int k = 1;
    for (int i = 1; i < n; i++)
        if (value_cmp_loose(vals[k - 1], vals[i]) != 0) vals[k++] = vals[i];
    return k;
}

int valueset_index(const ValueSet *s, Value v)
{
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = value_cmp_loose(s->v[mid], v);
        if (c == 0) return (v.kind == TFMC_STR) == (s->v[mid].kind == TFMC_STR) ? mid : -1;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

bool valueset_contains(const ValueSet *s, Value v) { return valueset_index(s, v) >= 0; }

/* ------------------------------------------------------- lambda bodies */

