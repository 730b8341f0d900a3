/* interp.c: the RASP reference interpreter, with exactly Tracr's semantics (see docs/language.md),
 * and the --trace view of every named SOp. */
#include <string.h>

#include "frontend.h"

bool interp_select_pair(const RaspNode *n, Value key, Value query)
{
    if (key.kind == TFMC_UNDEF || query.kind == TFMC_UNDEF) return false;
    if (n->fn) {
        Value args[2] = { key, query }, out;
        char msg[8];
        if (scalar_eval(n->fn, args, &out, msg, sizeof msg) != SCALAR_OK) return false;
        switch (out.kind) {
        case TFMC_BOOL: return out.u.b;
        case TFMC_INT: return out.u.i != 0;
        case TFMC_FLOAT: return out.u.f != 0.0;
        case TFMC_STR: return out.u.s[0] != '\0';
        case TFMC_UNDEF: return false;
        }
        return false;
    }
    if (n->cmp == OP_TRUE) return true;
    if (n->cmp == OP_FALSE) return false;
    if (n->cmp == OP_EQ) return value_eq(key, query);
    if (n->cmp == OP_NE) return !value_eq(key, query);
    if ((key.kind == TFMC_STR) != (query.kind == TFMC_STR)) return false; /* not ordered */
    int c = value_cmp(key, query);
    if (value_eq(key, query)) c = 0;
    switch (n->cmp) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    default: return false;
    }
}

static Value apply(const RaspNode *n, const Value *args, int arity)
{
    Value out = { 0 };
    for (int i = 0; i < arity; i++)
        if (args[i].kind == TFMC_UNDEF) return out;
    char msg[8];
    if (scalar_eval(n->fn, args, &out, msg, sizeof msg) != SCALAR_OK) out.kind = TFMC_UNDEF;
    return out;
}

static Value aggregate_row(const RaspNode *n, const bool *row, const Value *vals, int len)
{
    Value out = { 0 };
    int count = 0;
    double sum = 0.0;
    for (int j = 0; j < len; j++) {
        if (!row[j]) continue;
        if (vals[j].kind == TFMC_UNDEF) return (Value){ 0 };
        if (n->mean) {
            sum += value_number(vals[j]);
        } else if (count > 0 && !value_eq(out, vals[j])) {
            return (Value){ 0 }; /* the selected values differ: undefined */
        } else if (count == 0) {
            out = vals[j];
        }
        count++;
    }
    if (!n->mean) return out;
    return count ? value_float(sum / count) : value_int(0);
}

void interp_run(const RaspProgram *p, const Value *tokens, int n, Arena *scratch, RaspTrace *t)
{
    t->n = n;
    t->sop = ARENA_ARRAY(scratch, Value *, p->nnodes);
    t->sel = ARENA_ARRAY(scratch, bool *, p->nnodes);
    for (int k = 0; k < p->nnodes; k++) {
        const RaspNode *node = p->nodes[k];
        Value *out = NULL;
        bool *m = NULL;
        if (node->is_selector) m = t->sel[k] = ARENA_ARRAY(scratch, bool, n * n);
        else out = t->sop[k] = ARENA_ARRAY(scratch, Value, n);
        const Value *a = node->in[0] ? t->sop[node->in[0]->id] : NULL;
        const Value *b = node->in[1] ? t->sop[node->in[1]->id] : NULL;
        switch (node->op) {
        case RN_TOKENS: memcpy(out, tokens, sizeof(Value) * (size_t)n); break;
        case RN_INDICES: for (int i = 0; i < n; i++) out[i] = value_int(i); break;
        case RN_LENGTH: for (int i = 0; i < n; i++) out[i] = value_int(n); break;
        case RN_FULL: for (int i = 0; i < n; i++) out[i] = node->fill; break;
        case RN_MAP: for (int i = 0; i < n; i++) out[i] = apply(node, &a[i], 1); break;
        case RN_SEQMAP:
            for (int i = 0; i < n; i++) {
                Value args[2] = { a[i], b[i] };
                out[i] = apply(node, args, 2);
            }
            break;
        case RN_SELECT:
            for (int q = 0; q < n; q++)
                for (int j = 0; j < n; j++) m[q * n + j] = interp_select_pair(node, a[j], b[q]);
            break;
        case RN_SEL_AND:
        case RN_SEL_OR: {
            const bool *x = t->sel[node->in[0]->id], *y = t->sel[node->in[1]->id];
            for (int i = 0; i < n * n; i++) m[i] = node->op == RN_SEL_AND ? (x[i] && y[i]) : (x[i] || y[i]);
            break;
        }
        case RN_SEL_NOT: {
            const bool *x = t->sel[node->in[0]->id];
            for (int i = 0; i < n * n; i++) m[i] = !x[i];
            break;
        }
        case RN_AGGREGATE: {
            const bool *sel = t->sel[node->in[0]->id];
            for (int q = 0; q < n; q++) out[q] = aggregate_row(node, sel + q * n, b, n);
            break;
        }
        case RN_SELECTOR_WIDTH: {
            const bool *sel = t->sel[node->in[0]->id];
            for (int q = 0; q < n; q++) {
                int w = 0;
                for (int j = 0; j < n; j++) w += sel[q * n + j];
                out[q] = value_int(w);
            }
            break;
        }
        }
    }
}

/* ---------------------------------------------------------------- trace */

enum { CELL = 48 };

/* The text of one cell: a value, or for a selector the keys a query selects: {0,2}. */
static void cell(const RaspTrace *t, const RaspNode *node, int i, char *buf)
{
    if (!node->is_selector) {
        value_format(t->sop[node->id][i], buf, CELL);
        return;
    }
    /* the selected keys, runs written as ranges: {0..16} for 17 keys, {1,3,5..9} */
    const bool *row = t->sel[node->id] + i * t->n;
    int len = snprintf(buf, CELL, "{");
    bool first = true;
    for (int j = 0; j < t->n; j++) {
        if (!row[j]) continue;
        int k = j;
        while (k + 1 < t->n && row[k + 1]) k++;
        char item[32];
        if (k > j + 1) snprintf(item, sizeof item, "%s%d..%d", first ? "" : ",", j, k);
        else if (k == j + 1) snprintf(item, sizeof item, "%s%d,%d", first ? "" : ",", j, k);
        else snprintf(item, sizeof item, "%s%d", first ? "" : ",", j);
        if (len + (int)strlen(item) + 6 >= CELL) { /* no room: say the set goes on */
            len += snprintf(buf + len, (size_t)(CELL - len), ",...");
            break;
        }
        len += snprintf(buf + len, (size_t)(CELL - len), "%s", item);
        first = false;
        j = k;
    }
    snprintf(buf + len, (size_t)(CELL - len), "}");
}

static bool shown(const RaspProgram *p, const RaspNode *n) { return n->named || n == p->output; }

void interp_trace_print(const RaspProgram *p, const RaspTrace *t, FILE *out)
{
    char buf[CELL];
    int name_w = (int)strlen("output");
    int width[1024] = { 0 };
    for (int k = 0; k < p->nnodes; k++) {
        const RaspNode *n = p->nodes[k];
        if (!shown(p, n)) continue;
        int l = (int)strlen(n->label);
        if (l > name_w) name_w = l;
        for (int i = 0; i < t->n && i < 1024; i++) {
            cell(t, n, i, buf);
            int w = (int)strlen(buf);
            if (w > width[i]) width[i] = w;
        }
    }
    for (int k = 0; k < p->nnodes; k++) {
        const RaspNode *n = p->nodes[k];
        if (!shown(p, n)) continue;
        const char *kind = n->is_selector ? "sel" : n->enc == ENC_NUMERICAL ? "num" : "cat";
        fprintf(out, "%-*s %s |", name_w, n->named ? n->label : "output", kind);
        for (int i = 0; i < t->n && i < 1024; i++) {
            cell(t, n, i, buf);
            /* no padding after the last column */
            fprintf(out, " %-*s", i + 1 < t->n ? width[i] : 0, buf);
        }
        fputc('\n', out);
    }
}
