/* sema_values.c: graph nodes (made and named), value sets (Tracr's basis inference), lambda bodies, map fusion. */
#include <stdlib.h>
#include <string.h>

#include "sema.h"

/* ---------------------------------------------------------------- nodes */

static const char *op_label(RaspOp op)
{
    switch (op) {
    case RN_TOKENS: return "tokens";
    case RN_INDICES: return "indices";
    case RN_LENGTH: return "length";
    case RN_FULL: return "full";
    case RN_MAP: return "map";
    case RN_SEQMAP: return "sequence_map";
    case RN_AGGREGATE: return "aggregate";
    case RN_SELECTOR_WIDTH: return "selector_width";
    case RN_SELECT: return "select";
    case RN_SEL_AND: return "select_and";
    case RN_SEL_OR: return "select_or";
    case RN_SEL_NOT: return "select_not";
    }
    return "?";
}

/* The program's labels in a hash table: how many live nodes carry each, and the next `_k` suffix
 * to try for a name given again (a def expanded many times names its locals many times). */
static LabelEntry *label_entry(Sema *s, const char *label, bool add)
{
    LabelTable *t = &s->labels;
    if (add && (t->n + 1) * 2 > t->mask + 1) { /* grow at half full */
        LabelTable old = *t;
        size_t cap = old.v ? (old.mask + 1) * 2 : 64;
        t->v = ARENA_ARRAY(s->arena, LabelEntry, cap);
        t->mask = cap - 1;
        t->n = 0;
        for (size_t i = 0; old.v && i <= old.mask; i++)
            if (old.v[i].label) *label_entry(s, old.v[i].label, true) = old.v[i];
    }
    if (!t->v) return NULL;
    uint64_t h = 1469598103934665603ull;
    for (const char *c = label; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        LabelEntry *e = &t->v[i];
        if (e->label && strcmp(e->label, label) == 0) return e;
        if (!e->label) {
            if (!add) return NULL;
            e->label = label;
            e->live = 0;
            e->next_suffix = 2;
            t->n++;
            return e;
        }
    }
}

static bool label_taken(Sema *s, const char *label)
{
    const LabelEntry *e = label_entry(s, label, false);
    return e && e->live > 0;
}

/* Give n a label (NULL: none), keeping the table's counts. */
static void relabel(Sema *s, RaspNode *n, const char *label)
{
    if (n->label) label_entry(s, n->label, true)->live--;
    n->label = label;
    if (label) label_entry(s, label, true)->live++;
}

void sema_set_label(Sema *s, RaspNode *n, const Scope *sc, const char *name)
{
    const char *base = sc->def ? arena_printf(s->arena, "%s.%s", sc->def->name, name) : name;
    const char *label = base;
    if (label_taken(s, base)) {
        LabelEntry *e = label_entry(s, base, true);
        int k = e->next_suffix;
        while (label_taken(s, label = arena_printf(s->arena, "%s_%d", base, k))) k++;
        label_entry(s, base, true)->next_suffix = k + 1; /* the table may have grown */
    }
    relabel(s, n, label);
    n->name = name;
    n->named = true;
}

static bool same_loc(SrcLoc a, SrcLoc b)
{
    return a.first_line == b.first_line && a.first_column == b.first_column && a.last_line == b.last_line &&
           a.last_column == b.last_column;
}

static bool is_letter(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static bool is_identifier(const char *text, size_t len)
{
    if (len == 0 || !is_letter(text[0])) return false;
    for (size_t i = 1; i < len; i++)
        if (!is_letter(text[i]) && !(text[i] >= '0' && text[i] <= '9')) return false;
    return true;
}

const char *rasp_node_describe(Arena *a, const SrcFile *file, const RaspNode *n)
{
    static const char *const operations[] = { "map", "select", "aggregate", "selector_width" };
    if (n->named) return arena_printf(a, "`%s`", n->name ? n->name : n->label);
    if (n->op == RN_FULL) { /* a constant used as an SOp */
        char buf[96];
        value_format(n->fill, buf, sizeof buf);
        return arena_printf(a, "`%s`", buf);
    }
    size_t len;
    const char *text = diag_source_text(file, n->loc, &len);
    if (text && is_identifier(text, len)) { /* a call, placed at the function's name */
        const char *f = arena_strndup(a, text, len);
        if (sema_index_of(f, operations, COUNT(operations)) >= 0) return arena_printf(a, "this %s", f);
        return arena_printf(a, "this `%s(...)`", f);
    }
    if (text && len <= 40) return arena_printf(a, "`%.*s`", (int)len, text);
    return n->is_selector ? "this selector" : "this SOp";
}

/* While an assignment is checked, its whole value is called by the assignment's name. */
const char *sema_node_name(Sema *s, const RaspNode *n)
{
    if (!n->named && n->op != RN_FULL && s->assign && same_loc(n->loc, s->assign->expr->loc))
        return arena_printf(s->arena, "`%s`", s->assign->name);
    return rasp_node_describe(s->arena, s->file, n);
}

const char *sema_value_text(Sema *s, Value v, bool with_kind)
{
    char buf[96];
    value_format(v, buf, sizeof buf);
    if (with_kind && v.kind == TFMC_STR) return arena_printf(s->arena, "the string `%s`", buf);
    return arena_printf(s->arena, "`%s`", buf);
}

RaspNode *sema_new_node(Sema *s, RaspOp op, SrcLoc loc, RaspNode *a, RaspNode *b)
{
    RaspProgram *p = s->prog;
    RaspNode *n = ARENA_NEW(s->arena, RaspNode);
    n->op = op;
    n->loc = loc;
    n->in[0] = a;
    n->in[1] = b;
    n->is_selector = op == RN_SELECT || op == RN_SEL_AND || op == RN_SEL_OR || op == RN_SEL_NOT;
    n->id = p->nnodes;
    VEC_PUSH(s->arena, p->nodes, p->nnodes, p->cap, n);
    relabel(s, n, arena_printf(s->arena, "%s_%d", op_label(op), n->id));
    if (s->uses_cap < p->cap) {
        int *u = ARENA_ARRAY(s->arena, int, p->cap);
        if (s->uses) memcpy(u, s->uses, sizeof(int) * (size_t)s->uses_cap);
        s->uses = u;
        s->uses_cap = p->cap;
    }
    s->uses[n->id] = 0;
    if (a) s->uses[a->id]++;
    if (b) s->uses[b->id]++;
    return n;
}

RaspNode *sema_finish(Sema *s, RaspNode *n)
{
    if (s->have_sizes && !n->is_selector) sema_compute_value_set(s, n);
    return n;
}

RaspNode *sema_builtin_node(Sema *s, int which, SrcLoc loc)
{
    if (!s->builtin[which]) {
        static const RaspOp ops[] = { RN_TOKENS, RN_INDICES, RN_LENGTH };
        RaspNode *n = sema_new_node(s, ops[which], loc, NULL, NULL);
        relabel(s, n, sema_builtin_sops[which]);
        n->named = true;
        s->builtin[which] = sema_finish(s, n);
    }
    return s->builtin[which];
}

RaspNode *sema_full_node(Sema *s, Value c, SrcLoc loc)
{
    RaspNode *n = sema_new_node(s, RN_FULL, loc, NULL, NULL);
    n->fill = c;
    return sema_finish(s, n);
}

/* --------------------------------------------------------- value sets */

/* exact: count is the size of the value set; else the enumeration stopped past the limit. */
static void too_many_values(Sema *s, RaspNode *n, long count, long limit, bool exact)
{
    if (exact)
        ERROR(s, n->loc, "the value set of %s has %ld values, more than the limit of %ld", sema_node_name(s, n),
              count, limit);
    else
        ERROR(s, n->loc, "the value set of %s has more than %ld values", sema_node_name(s, n), limit);
    HINT(s, "a compiled SOp needs one residual dimension per value: narrow the vocabulary, max_len, "
            "or the operation");
}

static void set_values(Sema *s, RaspNode *n, Value *vals, int count)
{
    count = valueset_normalise(vals, count);
    long limit = n->enc == ENC_NUMERICAL ? 16 * RASP_MAX_VALUES : RASP_MAX_VALUES;
    if (count > limit) {
        too_many_values(s, n, count, limit, true);
        count = 0;
    }
    n->vs.v = vals;
    n->vs.n = count;
}

/* Apply a lambda to one tuple of input values during inference; type errors become diagnostics. */
static bool apply(Sema *s, RaspNode *n, const Value *args, Value *out, bool *reported)
{
    char msg[256];
    const Ast *where = NULL;
    ScalarStatus st = scalar_eval_at(n->fn, args, out, msg, sizeof msg, &where);
    if (st == SCALAR_OK) return true;
    if (st == SCALAR_TYPE && !*reported) {
        ERROR(s, sema_operator_loc(where ? where : n->fn), "%s", msg);
        if (n->op == RN_SEQMAP)
            HINT(s, "for the values %s of %s and %s of %s; every pair of input values must work",
                 sema_value_text(s, args[0], false), sema_node_name(s, n->in[0]), sema_value_text(s, args[1], false),
                 sema_node_name(s, n->in[1]));
        else
            HINT(s, "for the value %s of %s; every value of the input must work", sema_value_text(s, args[0], false),
                 sema_node_name(s, n->in[0]));
        *reported = true;
    }
    return false; /* an arithmetic error (division by zero) drops the value, as Tracr does */
}

/* A set of doubles (open addressing, grown at half full), for the sums and means of a numerical
 * aggregate. Memory from malloc, freed by dset_free; failure jumps to the arena's recovery point. */
typedef struct DoubleSet {
    Sema *s;
    double *keys;
    unsigned char *used;
    size_t mask; /* capacity - 1, a power of two */
    size_t n;
} DoubleSet;

static void dset_alloc(DoubleSet *d, size_t capacity)
{
    d->keys = malloc(sizeof(double) * capacity);
    d->used = calloc(capacity, 1);
    if (!d->keys || !d->used) {
        free(d->keys);
        free(d->used);
        d->keys = NULL;
        d->used = NULL;
        longjmp(*d->s->arena->on_oom, 1);
    }
    d->mask = capacity - 1;
    d->n = 0;
}

static void dset_free(DoubleSet *d)
{
    free(d->keys);
    free(d->used);
    d->keys = NULL;
    d->used = NULL;
}

static bool dset_add(DoubleSet *d, double x);

static void dset_clear(DoubleSet *d)
{
    memset(d->used, 0, d->mask + 1);
    d->n = 0;
}

static void dset_grow(DoubleSet *d)
{
    DoubleSet old = *d;
    dset_alloc(d, (old.mask + 1) * 2);
    for (size_t i = 0; i <= old.mask; i++)
        if (old.used[i]) dset_add(d, old.keys[i]);
    dset_free(&old);
}

/* Add x; true when it was not there yet. */
static bool dset_add(DoubleSet *d, double x)
{
    if (x == 0.0) x = 0.0; /* -0.0 and 0.0 are one value */
    uint64_t h;
    memcpy(&h, &x, sizeof h);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    for (size_t i = (size_t)h & d->mask;; i = (i + 1) & d->mask) {
        if (!d->used[i]) {
            d->used[i] = 1;
            d->keys[i] = x;
            if (++d->n * 2 > d->mask + 1) dset_grow(d);
            return true;
        }
        if (d->keys[i] == x) return false;
    }
}

typedef enum MeansStatus { MEANS_OK, MEANS_OVER, MEANS_SLOW } MeansStatus;

/* Additions means_general may make before the enumeration is called too slow (MEANS_SLOW). */
#define MEANS_BUDGET (1L << 27)

/* Integers: the sums of m values, less m * lo, as a bitset; each value shifts the sums of m - 1
 * values in. The caller checked that max_len * (hi - lo) + 1 bits are few. */
static MeansStatus means_integral(Sema *s, const ValueSet *vs, int64_t lo, int64_t hi, long limit, DoubleSet *means)
{
    int max_len = s->prog->max_len;
    size_t words = ((size_t)max_len * (size_t)(hi - lo) + 1 + 63) / 64;
    uint64_t *cur = calloc(words, sizeof(uint64_t)), *next = calloc(words, sizeof(uint64_t));
    if (!cur || !next) {
        free(cur);
        free(next);
        longjmp(*s->arena->on_oom, 1);
    }
    cur[0] = 1; /* the empty sum */
    MeansStatus st = MEANS_OK;
    for (int m = 1; m <= max_len && st == MEANS_OK; m++) {
        size_t cur_words = ((size_t)(m - 1) * (size_t)(hi - lo) + 1 + 63) / 64;
        memset(next, 0, words * sizeof(uint64_t));
        for (int j = 0; j < vs->n; j++) {
            size_t shift = (size_t)((vs->v[j].kind == TFMC_BOOL ? (int64_t)vs->v[j].u.b : vs->v[j].u.i) - lo);
            size_t ws = shift / 64, bs = shift % 64;
            for (size_t i = 0; i < cur_words; i++) {
                uint64_t w = cur[i];
                if (!w) continue;
                next[i + ws] |= w << bs;
                if (bs && i + ws + 1 < words) next[i + ws + 1] |= w >> (64 - bs);
            }
        }
        long count = 0;
        for (size_t i = 0; i < words; i++) count += __builtin_popcountll(next[i]);
        if (count > limit) {
            st = MEANS_OVER; /* each sum of m values gives its own mean */
            break;
        }
        for (size_t i = 0; i < words; i++)
            for (uint64_t w = next[i]; w; w &= w - 1) {
                int64_t sum = (int64_t)(i * 64 + (size_t)__builtin_ctzll(w)) + (int64_t)m * lo;
                dset_add(means, (double)sum / m);
            }
        if (means->n > (size_t)limit) st = MEANS_OVER;
        uint64_t *t = cur;
        cur = next;
        next = t;
    }
    free(cur);
    free(next);
    return st;
}

/* Any numbers: the distinct sums of m values in a hash set, from those of m - 1 values. Each new
 * sum of m values is a new mean, so the count can pass the limit before the round ends. */
static MeansStatus means_general(Sema *s, const ValueSet *vs, long limit, DoubleSet *means)
{
    int max_len = s->prog->max_len;
    DoubleSet next = { .s = s };
    double *sums = malloc(sizeof(double) * (size_t)(limit + 1)), *vals = malloc(sizeof(double) * (size_t)vs->n);
    if (!sums || !vals) {
        free(sums);
        free(vals);
        longjmp(*s->arena->on_oom, 1);
    }
    for (int j = 0; j < vs->n; j++) vals[j] = value_number(vs->v[j]);
    dset_alloc(&next, 64);
    int nsums = 1;
    sums[0] = 0.0;
    MeansStatus st = MEANS_OK;
    long work = 0;
    for (int m = 1; m <= max_len && st == MEANS_OK; m++) {
        dset_clear(&next);
        for (int i = 0; i < nsums && st == MEANS_OK; i++) {
            for (int j = 0; j < vs->n; j++) {
                double sum = sums[i] + vals[j];
                if (!dset_add(&next, sum)) continue;
                dset_add(means, sum / m);
                if (next.n > (size_t)limit || means->n > (size_t)limit) {
                    st = MEANS_OVER;
                    break;
                }
            }
            work += vs->n;
            if (st == MEANS_OK && work > MEANS_BUDGET) st = MEANS_SLOW;
        }
        nsums = 0;
        for (size_t k = 0; st == MEANS_OK && k <= next.mask; k++)
            if (next.used[k]) sums[nsums++] = next.keys[k];
    }
    free(sums);
    free(vals);
    dset_free(&next);
    return st;
}

/* The means of every multiset of 1..max_len values drawn from vs, and 0 (nothing selected). The
 * value set is over the limit as soon as the sums of m values alone are (each gives its own mean),
 * and surely when max_len * (|vs| - 1) + 1 is: m of |vs| numbers have at least that many sums. */
static void mean_values(Sema *s, RaspNode *n, const ValueSet *vs)
{
    const long limit = 16 * RASP_MAX_VALUES;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    bool integral = true;
    for (int i = 0; i < vs->n; i++) {
        Value v = vs->v[i];
        if (!value_is_number(v)) {
            ERROR(s, n->loc, "a numerical aggregate averages numbers, but %s can be %s", sema_node_name(s, n->in[1]),
                  sema_value_text(s, v, true));
            HINT(s, "aggregate it categorically, or map it to numbers first");
            return;
        }
        if (v.kind == TFMC_FLOAT || (v.kind == TFMC_INT && (v.u.i > (1LL << 40) || v.u.i < -(1LL << 40)))) {
            integral = false;
            continue;
        }
        int64_t x = v.kind == TFMC_BOOL ? (int64_t)v.u.b : v.u.i;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
    }
    int max_len = s->prog->max_len;
    MeansStatus st = MEANS_OK;
    DoubleSet means = { .s = s };
    if (vs->n > 1 && (long)max_len * (vs->n - 1) + 1 > limit) {
        st = MEANS_OVER;
    } else {
        dset_alloc(&means, 64);
        if (vs->n > 0 && integral && (double)max_len * (double)(hi - lo) < (double)(1 << 24))
            st = means_integral(s, vs, lo, hi, limit, &means);
        else
            st = means_general(s, vs, limit, &means);
    }
    if (st != MEANS_OK) {
        dset_free(&means);
        if (st == MEANS_OVER) {
            too_many_values(s, n, 0, limit, false);
        } else {
            ERROR(s, n->loc, "the value set of %s takes too long to compute (more than %ld additions): the means "
                             "of up to %d of the %d values of %s", sema_node_name(s, n), MEANS_BUDGET, max_len, vs->n,
                  sema_node_name(s, n->in[1]));
            HINT(s, "narrow the values it averages, or max_len");
        }
        return;
    }
    /* Running out of arena memory here jumps out: free the set on the way. */
    jmp_buf *outer = s->arena->on_oom, guard;
    if (setjmp(guard)) {
        s->arena->on_oom = outer;
        dset_free(&means);
        longjmp(*outer, 1);
    }
    s->arena->on_oom = &guard;
    Value *out = ARENA_ARRAY(s->arena, Value, (int)means.n + 1);
    s->arena->on_oom = outer;
    int nout = 0;
    out[nout++] = value_int(0); /* nothing selected */
    for (size_t k = 0; k <= means.mask; k++)
        if (means.used[k]) out[nout++] = value_float(means.keys[k]);
    dset_free(&means);
    set_values(s, n, out, nout);
}

void sema_compute_value_set(Sema *s, RaspNode *n)
{
    RaspProgram *p = s->prog;
    Value *vals;
    int count = 0;
    bool reported = false;
    switch (n->op) {
    case RN_TOKENS:
        n->vs = p->vocab;
        return;
    case RN_INDICES:
    case RN_LENGTH:
    case RN_SELECTOR_WIDTH: {
        int lo = n->op == RN_LENGTH ? 1 : 0, hi = n->op == RN_INDICES ? p->max_len - 1 : p->max_len;
        vals = ARENA_ARRAY(s->arena, Value, hi - lo + 1);
        for (int i = lo; i <= hi; i++) vals[count++] = value_int(i);
        set_values(s, n, vals, count);
        return;
    }
    case RN_FULL:
        vals = ARENA_NEW(s->arena, Value);
        vals[0] = n->fill;
        set_values(s, n, vals, 1);
        return;
    case RN_MAP: {
        const ValueSet *in = &n->in[0]->vs;
        vals = ARENA_ARRAY(s->arena, Value, in->n ? in->n : 1);
        for (int i = 0; i < in->n; i++)
            if (apply(s, n, &in->v[i], &vals[count], &reported)) count++;
            else n->partial = true;
        set_values(s, n, vals, count);
        return;
    }
    case RN_SEQMAP: {
        const ValueSet *a = &n->in[0]->vs, *b = &n->in[1]->vs;
        long pairs = (long)a->n * b->n;
        if (pairs > RASP_MAX_PAIRS) {
            ERROR(s, n->loc, "%s combines %d values of %s with %d of %s: %ld pairs, more than the limit of %d",
                  sema_node_name(s, n), a->n, sema_node_name(s, n->in[0]), b->n, sema_node_name(s, n->in[1]), pairs,
                  RASP_MAX_PAIRS);
            HINT(s, "a two-SOp map is compiled as a table over every pair of input values");
            return;
        }
        vals = ARENA_ARRAY(s->arena, Value, pairs ? pairs : 1);
        for (int i = 0; i < a->n && !reported; i++)
            for (int j = 0; j < b->n; j++) {
                Value args[2] = { a->v[i], b->v[j] };
                if (apply(s, n, args, &vals[count], &reported)) count++;
                else n->partial = true;
                if (reported) break;
            }
        set_values(s, n, vals, count);
        return;
    }
    case RN_AGGREGATE:
        if (n->mean) mean_values(s, n, &n->in[1]->vs);
        else n->vs = n->in[1]->vs;
        return;
    case RN_SELECT:
    case RN_SEL_AND:
    case RN_SEL_OR:
    case RN_SEL_NOT:
        return;
    }
}

bool sema_check_select_pairs(Sema *s, const RaspNode *sel)
{
    const ValueSet *a = &sel->in[0]->vs, *b = &sel->in[1]->vs;
    if ((long)a->n * b->n > RASP_MAX_PAIRS) return true;
    char msg[256];
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++) {
            Value args[2] = { a->v[i], b->v[j] }, out;
            const Ast *where = NULL;
            if (scalar_eval_at(sel->fn, args, &out, msg, sizeof msg, &where) == SCALAR_TYPE) {
                ERROR(s, sema_operator_loc(where ? where : sel->fn), "%s", msg);
                HINT(s, "for the key %s and the query %s", sema_value_text(s, args[0], false),
                     sema_value_text(s, args[1], false));
                return false;
            }
        }
    return true;
}

/* A value set as a message shows it: {0..7} for a run of integers, else its values, strings
 * quoted as in a vocabulary, the first few only when there are many. */
static const char *value_set_text(Sema *s, const ValueSet *vs)
{
    enum { SHOWN = 5 };
    bool run = vs->n >= 3;
    for (int i = 0; run && i < vs->n; i++)
        run = vs->v[i].kind == TFMC_INT && (i == 0 || vs->v[i].u.i == vs->v[i - 1].u.i + 1);
    if (run)
        return arena_printf(s->arena, "{%lld..%lld}", (long long)vs->v[0].u.i, (long long)vs->v[vs->n - 1].u.i);
    const char *text = "{";
    int shown = vs->n <= SHOWN + 1 ? vs->n : SHOWN;
    for (int i = 0; i < shown; i++) {
        char buf[64];
        value_format(vs->v[i], buf, sizeof buf);
        const char *quote = vs->v[i].kind == TFMC_STR ? "\"" : "";
        text = arena_printf(s->arena, "%s%s%s%s%s", text, i ? ", " : "", quote, buf, quote);
    }
    if (shown < vs->n) return arena_printf(s->arena, "%s, ... %d values}", text, vs->n);
    return arena_printf(s->arena, "%s}", text);
}

/* Can this SOp never be undefined? (Then a predicate true for every pair of values selects every
 * key; an undefined key or query is never selected.) */
static bool never_undefined(const RaspNode *n)
{
    switch (n->op) {
    case RN_TOKENS:
    case RN_INDICES:
    case RN_LENGTH:
    case RN_FULL:
    case RN_SELECTOR_WIDTH:
        return true;
    case RN_MAP: return !n->partial && never_undefined(n->in[0]);
    case RN_SEQMAP: return !n->partial && never_undefined(n->in[0]) && never_undefined(n->in[1]);
    case RN_AGGREGATE: return n->mean && never_undefined(n->in[1]); /* a mean of nothing is 0 */
    case RN_SELECT:
    case RN_SEL_AND:
    case RN_SEL_OR:
    case RN_SEL_NOT:
        return false;
    }
    return false;
}

static bool all_strings(const ValueSet *vs)
{
    for (int i = 0; i < vs->n; i++)
        if (vs->v[i].kind != TFMC_STR) return false;
    return true;
}

static bool no_strings(const ValueSet *vs)
{
    for (int i = 0; i < vs->n; i++)
        if (vs->v[i].kind == TFMC_STR) return false;
    return true;
}

void sema_warn_constant_selector(Sema *s, const RaspNode *sel)
{
    /* `true` and `false` say what they do; empty sets (an error already) say nothing */
    if (!sel->fn && (sel->cmp == OP_TRUE || sel->cmp == OP_FALSE)) return;
    const ValueSet *keys = &sel->in[0]->vs, *queries = &sel->in[1]->vs;
    if (keys->n == 0 || queries->n == 0 || (long)keys->n * queries->n > RASP_MAX_PAIRS) return;
    bool some_true = false, some_false = false;
    for (int i = 0; i < keys->n && !(some_true && some_false); i++)
        for (int j = 0; j < queries->n && !(some_true && some_false); j++) {
            if (interp_select_pair(sel, keys->v[i], queries->v[j])) some_true = true;
            else some_false = true;
        }
    if (some_true && some_false) return;
    if (some_true && !(never_undefined(sel->in[0]) && never_undefined(sel->in[1]))) return;
    const char *pred = sel->fn ? "its lambda" : arena_printf(s->arena, "`%s`", ast_op_text(sel->cmp));
    const char *name = sema_node_name(s, sel);
    WARN(s, sel->loc, "%s %s: %s is %s for every key in %s (%s) and query in %s (%s)", name,
         some_true ? "always selects every key" : "never selects anything", pred, some_true ? "true" : "false",
         value_set_text(s, keys), sema_node_name(s, sel->in[0]), value_set_text(s, queries),
         sema_node_name(s, sel->in[1]));
    bool mixed = (all_strings(keys) && no_strings(queries)) || (no_strings(keys) && all_strings(queries));
    if (mixed && !sel->fn)
        HINT(s, "a string never equals a number, and is never ordered against one");
    else if (some_true)
        HINT(s, "if that is meant, select(keys, queries, true) says so");
    else
        HINT(s, "if that is meant, select(keys, queries, false) says so");
}

/* ------------------------------------------------------ lambda bodies */

Ast *sema_clone(Sema *s, const Ast *e)
{
    Ast *c = ARENA_NEW(s->arena, Ast);
    *c = *e;
    return c;
}

Ast *sema_const_ast(Sema *s, Value v, SrcLoc loc)
{
    Ast *c;
    switch (v.kind) {
    case TFMC_INT: c = ast_new(s->arena, AST_INT, loc); c->ival = v.u.i; return c;
    case TFMC_FLOAT: c = ast_new(s->arena, AST_FLOAT, loc); c->fval = v.u.f; return c;
    case TFMC_BOOL: c = ast_new(s->arena, AST_BOOL, loc); c->ival = v.u.b; return c;
    case TFMC_STR: c = ast_new(s->arena, AST_STRING, loc); c->str = v.u.s; return c;
    case TFMC_UNDEF: break;
    }
    return ast_new(s->arena, AST_BOOL, loc);
}

Ast *sema_param_ast(Sema *s, int index, const char *name, SrcLoc loc)
{
    Ast *p = ast_new(s->arena, AST_PARAM, loc);
    p->ival = index;
    p->str = name;
    return p;
}

/* A copy of a lambda body with names resolved to parameters or to constants of the enclosing
 * scope; `fn` (map or select) says what the lambda belongs to. NULL on error. */
static Ast *check_body(Sema *s, Scope *sc, const Ast *lam, const Ast *e, const char *fn)
{
    Ast *c;
    switch (e->kind) {
    case AST_INT: case AST_FLOAT: case AST_STRING: case AST_BOOL: case AST_PARAM:
        return sema_clone(s, e);
    case AST_NAME: {
        for (int i = 0; i < lam->nparams; i++)
            if (strcmp(lam->params[i], e->str) == 0) return sema_param_ast(s, i, e->str, e->loc);
        const Binding *b = sema_lookup(sc, e->str);
        if (b && b->val.kind == SV_CONST) return sema_const_ast(s, b->val.c, e->loc);
        if (b && b->val.kind == SV_ERROR) return NULL;
        if (b || sema_index_of(e->str, sema_builtin_sops, N_BUILTIN_SOPS) >= 0) {
            ERROR(s, e->loc, "a lambda body sees only its parameters and constants, and `%s` is %s",
                  e->str, b ? sema_describe_kind(b->val) : "an SOp");
            if (strcmp(fn, "select") == 0)
                HINT(s, "a `select` lambda sees one key value and one query value: build `%s` into the keys or "
                        "the queries first", e->str);
            else
                HINT(s, "pass it as an argument instead: map((x, y) -> ..., s, %s)", e->str);
            return NULL;
        }
        const char *sug = diag_suggest(e->str, lam->params, lam->nparams);
        ERROR(s, e->loc, "unknown name `%s` in a lambda body", e->str);
        if (sug) HINT(s, "did you mean `%s`?", sug);
        return NULL;
    }
    case AST_CALL: {
        int f = sema_index_of(e->str, sema_scalar_funcs, N_SCALAR_FUNCS);
        if (f < 0) {
            ERROR(s, e->loc, "`%s` cannot be called inside a lambda", e->str);
            HINT(s, "lambda bodies may call min, max, abs and floor");
            return NULL;
        }
        int want = f < 2 ? 2 : 1;
        if (e->nargs != want) {
            ERROR(s, e->loc, "`%s` takes %d argument%s, not %d", e->str, want, want == 1 ? "" : "s", e->nargs);
            return NULL;
        }
        c = sema_clone(s, e);
        c->args = ARENA_ARRAY(s->arena, Ast *, e->nargs);
        bool ok = true;
        for (int i = 0; i < e->nargs; i++) ok &= (c->args[i] = check_body(s, sc, lam, e->args[i], fn)) != NULL;
        return ok ? c : NULL;
    }
    case AST_UNARY:
    case AST_BINARY:
    case AST_COND: {
        c = sema_clone(s, e);
        bool ok = (c->a = check_body(s, sc, lam, e->a, fn)) != NULL;
        if (e->b) ok &= (c->b = check_body(s, sc, lam, e->b, fn)) != NULL;
        if (e->c) ok &= (c->c = check_body(s, sc, lam, e->c, fn)) != NULL;
        return ok ? c : NULL;
    }
    case AST_LAMBDA:
        ERROR(s, e->loc, "a lambda cannot be nested inside another lambda");
        return NULL;
    case AST_CMP_OP:
        ERROR(s, e->loc, "a bare `%s` is only an argument of select", ast_op_text(e->op));
        return NULL;
    }
    return NULL;
}

Ast *sema_check_lambda_body(Sema *s, Scope *sc, const Ast *lam, const char *fn)
{
    return check_body(s, sc, lam, lam->a, fn);
}

Ast *sema_substitute(Sema *s, const Ast *e, Ast *const *subst)
{
    if (e->kind == AST_PARAM) return subst[e->ival];
    Ast *c = sema_clone(s, e);
    if (e->a) c->a = sema_substitute(s, e->a, subst);
    if (e->b) c->b = sema_substitute(s, e->b, subst);
    if (e->c) c->c = sema_substitute(s, e->c, subst);
    if (e->nargs) {
        c->args = ARENA_ARRAY(s->arena, Ast *, e->nargs);
        for (int i = 0; i < e->nargs; i++) c->args[i] = sema_substitute(s, e->args[i], subst);
    }
    return c;
}

/* ------------------------------------------------- elementwise nodes */

/* An elementwise node can absorb an unnamed map it alone reads (Tracr merges nested maps too). */
static bool fusable(const Sema *s, const RaspNode *n)
{
    /* not a map that is undefined on some inputs: inlined under `and`, `or` or `?:` its
     * undefined value could be skipped, where the separate map makes the result undefined */
    return n && !n->named && !n->bound && !n->partial && s->uses[n->id] == 0 && n->enc == ENC_CATEGORICAL &&
           (n->op == RN_MAP || n->op == RN_SEQMAP);
}

/* Fuse fresh maps among the inputs (up to three: a conditional) while the result still reads at
 * most two SOps. Inputs are distinct. NULL, with *nleaves the count, when it would read more. */
RaspNode *sema_elementwise(Sema *s, Ast *body, RaspNode **ins, int nins, SrcLoc loc, int *nleaves_out)
{
    /* Plan first (nothing changes yet): which inputs fuse, and the leaves the result reads. */
    RaspNode *leaves[6] = { NULL };
    int nleaves = 0;
    bool fuse[3] = { false, false, false };
    /* Fusing every fresh input is best when the result then reads one SOp, or two categorical
     * ones (x > 0 ? x : -x reads x alone); else fuse greedily, input by input. */
    bool any_numerical = false;
    for (int i = 0; i < nins; i++) {
        fuse[i] = fusable(s, ins[i]);
        int arity = !fuse[i] ? 1 : ins[i]->op == RN_SEQMAP ? 2 : 1;
        for (int k = 0; k < arity; k++) {
            RaspNode *leaf = fuse[i] ? ins[i]->in[k] : ins[i];
            bool seen = false;
            for (int t = 0; t < nleaves; t++) seen |= leaves[t] == leaf;
            if (!seen) leaves[nleaves++] = leaf;
            any_numerical |= leaf->enc == ENC_NUMERICAL;
        }
    }
    bool all_fused = nleaves == 1 || (nleaves == 2 && !any_numerical);
    for (int i = 0; i < nins && !all_fused; i++) {
        if (i == 0) {
            nleaves = 0;
            memset(fuse, 0, sizeof fuse);
        }
        RaspNode *in = ins[i];
        /* Try to inline: its inputs must fit beside the leaves gathered so far and those still to come. */
        if (fusable(s, in)) {
            RaspNode *trial[6];
            int nt = nleaves;
            memcpy(trial, leaves, sizeof(RaspNode *) * (size_t)nleaves);
            int arity = in->op == RN_SEQMAP ? 2 : 1;
            for (int k = 0; k < arity; k++) {
                bool seen = false;
                for (int t = 0; t < nt; t++) seen |= trial[t] == in->in[k];
                if (!seen) trial[nt++] = in->in[k];
            }
            int later = 0;
            bool numerical = false;
            for (int t = 0; t < nt; t++) numerical |= trial[t]->enc == ENC_NUMERICAL;
            for (int j = i + 1; j < nins; j++) {
                bool seen = false;
                for (int t = 0; t < nt; t++) seen |= trial[t] == ins[j];
                later += !seen;
                numerical |= ins[j]->enc == ENC_NUMERICAL;
            }
            /* A two-SOp map compiles as a table over categorical inputs: never fuse a numerical
             * SOp into one (keep the discretising map of it on its own). */
            if (nt + later <= 2 && !(nt + later == 2 && numerical)) {
                memcpy(leaves, trial, sizeof(RaspNode *) * (size_t)nt);
                nleaves = nt;
                fuse[i] = true;
                continue;
            }
        }
        bool seen = false;
        for (int t = 0; t < nleaves; t++) seen |= leaves[t] == in;
        if (!seen) leaves[nleaves++] = in;
    }
    if (nleaves_out) *nleaves_out = nleaves;
    if (nleaves > 2) return NULL;
    /* Then build: parameter k of the new body reads leaves[k]. */
    Ast *subst[3] = { NULL, NULL, NULL };
    int first_dead = s->prog->nnodes;
    for (int i = 0; i < nins; i++) {
        RaspNode *in = ins[i];
        if (!fuse[i]) {
            int at = 0;
            while (leaves[at] != in) at++;
            subst[i] = sema_param_ast(s, at, in->label, loc);
            continue;
        }
        int arity = in->op == RN_SEQMAP ? 2 : 1;
        Ast *inner[2];
        for (int k = 0; k < arity; k++) {
            int at = 0;
            while (leaves[at] != in->in[k]) at++;
            inner[k] = sema_param_ast(s, at, in->in[k]->label, loc);
        }
        subst[i] = sema_substitute(s, in->fn, inner);
        /* the fused node is gone: its readers no longer count */
        for (int k = 0; k < arity; k++) s->uses[in->in[k]->id]--;
        in->op = RN_FULL; /* mark dead; removed below */
        if (in->id < first_dead) first_dead = in->id;
        in->fill.kind = TFMC_UNDEF;
        relabel(s, in, NULL);
    }
    /* Drop nodes killed by fusion (they are among the most recent ones). */
    RaspProgram *p = s->prog;
    for (int i = first_dead; i < p->nnodes; i++) {
        if (p->nodes[i]->op == RN_FULL && p->nodes[i]->label == NULL) {
            for (int j = i + 1; j < p->nnodes; j++) {
                p->nodes[j - 1] = p->nodes[j];
                s->uses[j - 1] = s->uses[j];
                p->nodes[j - 1]->id = j - 1;
            }
            p->nnodes--;
            i--;
        }
    }
    Ast *fn = sema_substitute(s, body, subst);
    RaspNode *n = sema_new_node(s, nleaves == 2 ? RN_SEQMAP : RN_MAP, loc, leaves[0], nleaves == 2 ? leaves[1] : NULL);
    n->fn = fn;
    return sema_finish(s, n);
}
