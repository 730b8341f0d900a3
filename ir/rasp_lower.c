/* rasp_lower.c: compile a checked RASP program into transformer weights, the way Tracr does.
 *
 * Residual stream: `one` (1 at every position), `bos` (1 at the BOS position 0 only), one
 * direction per (SOp, value) for categorical SOps and one per numerical SOp. Token and position
 * embeddings write `tokens:v` and `indices:i`. Each map becomes an MLP (a lookup table over a
 * categorical input, a pair table over two, a discretising MLP over a numerical input, two ReLUs
 * when the map is linear); select + aggregate becomes an attention head whose scores are S per
 * satisfied predicate, with BOS scoring S/2 below a full match so that it takes the attention
 * exactly when nothing is selected; selector_width attends to BOS and the selected keys alike and
 * reads 1/(w+1) back through a discretising MLP whose slopes come from the value gaps, so it is
 * exact at any max_len. Layers are allocated by longest path: attention at even slots, MLPs at
 * odd ones, independent nodes side by side.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "lower.h"

/* The score of one satisfied predicate. Unselected keys trail by at least S/2, so their softmax
 * weight is below exp(-S/2) ~ 2e-22: float32 results are exact. */
#define SCORE 100.0f

typedef struct Piece {
    int hidden;
    float *w1, *b1, *w2; /* [hidden][dim], [hidden], [dim][hidden] */
    const char **labels;
} Piece;

typedef struct Lower {
    Arena *a;
    const RaspProgram *p;
    DiagList *diags;
    Model *m;
    int *base, *slot, *aux;
    bool *live;
    bool failed;
    int one, bos;
    const char **labels;
    int d, cap;
    /* per slot: heads or MLP pieces */
    ModelHead **heads;
    int *nheads, *cap_heads;
    Piece ***pieces;
    int *npieces, *cap_pieces;
    const char ***parts;
    int *nparts, *cap_parts;
    int nslots;
} Lower;

static void fail(Lower *L, const RaspNode *n, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    if (n->named) diag_error(L->diags, L->p->file, n->loc, "cannot compile `%s` to a transformer: %s", n->label, msg);
    else diag_error(L->diags, L->p->file, n->loc, "cannot compile this expression to a transformer: %s", msg);
    L->failed = true;
}

static int new_dim(Lower *L, const char *label)
{
    VEC_PUSH(L->a, L->labels, L->d, L->cap, label);
    return L->d - 1;
}

static const char *value_label(Lower *L, const char *name, Value v)
{
    char buf[96];
    value_format(v, buf, sizeof buf);
    return arena_printf(L->a, "%s:%s", name, buf);
}

/* --------------------------------------------------------- scheduling */

static void mark_live(Lower *L, const RaspNode *n)
{
    if (L->live[n->id]) return;
    L->live[n->id] = true;
    for (int i = 0; i < 2; i++)
        if (n->in[i]) mark_live(L, n->in[i]);
}

/* The latest slot among the SOps a selector reads. */
static int selector_inputs_slot(Lower *L, const RaspNode *sel)
{
    if (!sel->is_selector) return L->slot[sel->id];
    int s = -1;
    for (int i = 0; i < 2; i++)
        if (sel->in[i]) {
            int t = selector_inputs_slot(L, sel->in[i]);
            if (t > s) s = t;
        }
    return s;
}

static int next_parity(int after, int parity)
{
    int s = after + 1;
    if ((s & 1) != parity) s++;
    return s;
}

static void schedule(Lower *L)
{
    const RaspProgram *p = L->p;
    int maxslot = -1;
    for (int k = 0; k < p->nnodes; k++) {
        const RaspNode *n = p->nodes[k];
        if (!L->live[k] || n->is_selector) continue;
        int s = -1;
        switch (n->op) {
        case RN_TOKENS: case RN_INDICES: case RN_FULL: s = -1; break;
        case RN_MAP: s = next_parity(L->slot[n->in[0]->id], 1); break;
        case RN_SEQMAP: {
            int a = L->slot[n->in[0]->id], b = L->slot[n->in[1]->id];
            s = next_parity(a > b ? a : b, 1);
            break;
        }
        case RN_AGGREGATE: {
            int a = selector_inputs_slot(L, n->in[0]), b = L->slot[n->in[1]->id];
            s = next_parity(a > b ? a : b, 0);
            break;
        }
        case RN_SELECTOR_WIDTH: s = next_parity(selector_inputs_slot(L, n->in[0]), 0) + 1; break;
        case RN_LENGTH: s = 1; break;
        case RN_SELECT: case RN_SEL_AND: case RN_SEL_OR: case RN_SEL_NOT: break;
        }
        L->slot[k] = s;
        if (s > maxslot) maxslot = s;
    }
    L->nslots = maxslot + 1;
}

/* ------------------------------------------------------------ residual */

static void allocate_dims(Lower *L)
{
    const RaspProgram *p = L->p;
    L->one = new_dim(L, "one");
    L->bos = new_dim(L, "bos");
    for (int k = 0; k < p->nnodes; k++) L->base[k] = L->aux[k] = -1;
    /* tokens and indices always exist (Tracr's embeddings), in this order */
    RaspNode *tok = NULL, *idx = NULL;
    for (int k = 0; k < p->nnodes; k++) {
        if (p->nodes[k]->op == RN_TOKENS) tok = p->nodes[k];
        if (p->nodes[k]->op == RN_INDICES) idx = p->nodes[k];
    }
    int tb = L->d;
    for (int i = 0; i < p->vocab.n; i++) new_dim(L, value_label(L, "tokens", p->vocab.v[i]));
    int ib = L->d;
    for (int i = 0; i < p->max_len; i++) new_dim(L, value_label(L, "indices", value_int(i)));
    if (tok) L->base[tok->id] = tb;
    if (idx) L->base[idx->id] = ib;
    for (int k = 0; k < p->nnodes; k++) {
        const RaspNode *n = p->nodes[k];
        if (!L->live[k] || n->is_selector || n->op == RN_TOKENS || n->op == RN_INDICES) continue;
        if (n->op == RN_SELECTOR_WIDTH || n->op == RN_LENGTH)
            L->aux[k] = new_dim(L, arena_printf(L->a, "%s:bos_share", n->label));
        if (n->enc == ENC_NUMERICAL) {
            L->base[k] = new_dim(L, n->label);
            continue;
        }
        L->base[k] = L->d;
        for (int i = 0; i < n->vs.n; i++) new_dim(L, value_label(L, n->label, n->vs.v[i]));
    }
}

/* -------------------------------------------------------------- pieces */

static Piece *new_piece(Lower *L, int slot, int hidden, const RaspNode *n)
{
    Piece *pc = ARENA_NEW(L->a, Piece);
    pc->hidden = hidden;
    pc->w1 = ARENA_ARRAY(L->a, float, (size_t)hidden * L->d);
    pc->b1 = ARENA_ARRAY(L->a, float, hidden);
    pc->w2 = ARENA_ARRAY(L->a, float, (size_t)hidden * L->d);
    pc->labels = ARENA_ARRAY(L->a, const char *, hidden);
    for (int h = 0; h < hidden; h++) pc->labels[h] = n->label;
    VEC_PUSH(L->a, L->pieces[slot], L->npieces[slot], L->cap_pieces[slot], pc);
    VEC_PUSH(L->a, L->parts[slot], L->nparts[slot], L->cap_parts[slot], n->label);
    return pc;
}

#define W1(pc, h, j) ((pc)->w1[(size_t)(h) * L->d + (j)])
#define W2(pc, j, h) ((pc)->w2[(size_t)(j) * (pc)->hidden + (h)])

/* Write value y of node n from hidden unit h with weight w. */
static void write_output(Lower *L, Piece *pc, const RaspNode *n, int h, Value y, float w)
{
    if (y.kind == TFMC_UNDEF) return;
    if (n->enc == ENC_NUMERICAL) {
        W2(pc, L->base[n->id], h) += w * (float)value_number(y);
        return;
    }
    int k = valueset_index(&n->vs, y);
    if (k >= 0) W2(pc, L->base[n->id] + k, h) += w;
}

static Value apply_fn(const RaspNode *n, const Value *args)
{
    Value out = { 0 };
    char msg[8];
    if (scalar_eval(n->fn, args, &out, msg, sizeof msg) != SCALAR_OK) out.kind = TFMC_UNDEF;
    return out;
}

/* A categorical input: one hidden unit per input value, a lookup table. */
static void table_mlp(Lower *L, const RaspNode *n, int slot)
{
    const RaspNode *in = n->in[0];
    Piece *pc = new_piece(L, slot, in->vs.n, n);
    for (int i = 0; i < in->vs.n; i++) {
        W1(pc, i, L->base[in->id] + i) = 1.0f;
        write_output(L, pc, n, i, apply_fn(n, &in->vs.v[i]), 1.0f);
    }
}

/* Two categorical inputs: one hidden unit per pair of values, on when both are. */
static void pair_mlp(Lower *L, const RaspNode *n, int slot)
{
    const RaspNode *a = n->in[0], *b = n->in[1];
    Piece *pc = new_piece(L, slot, a->vs.n * b->vs.n, n);
    int h = 0;
    for (int i = 0; i < a->vs.n; i++)
        for (int j = 0; j < b->vs.n; j++, h++) {
            W1(pc, h, L->base[a->id] + i) = 1.0f;
            W1(pc, h, L->base[b->id] + j) = 1.0f;
            pc->b1[h] = -1.0f;
            Value args[2] = { a->vs.v[i], b->vs.v[j] };
            write_output(L, pc, n, h, apply_fn(n, args), 1.0f);
        }
}

/* A numerical input at dimension `in_dim` taking the sorted values xs[0..k): a step of height
 * f(x[i+1]) - f(x[i]) at each midpoint, made of two ReLUs whose slope 4/gap makes it exact for
 * inputs within a quarter gap of a value. Every unit is switched off at BOS. */
static void discretising_mlp(Lower *L, const RaspNode *n, int slot, int in_dim, const double *xs,
                             const Value *ys, int k)
{
    Piece *pc = new_piece(L, slot, 1 + 2 * (k - 1), n);
    /* unit 0: 1 off BOS, carries f(x0) */
    W1(pc, 0, L->one) = 1.0f;
    W1(pc, 0, L->bos) = -1.0f;
    write_output(L, pc, n, 0, ys[0], 1.0f);
    /* At BOS the input holds some value within the range of xs (0 for numerical SOps, 1 for a
     * BOS share): a gate of slope * (that bound + |mid|) keeps both units of every step at 0. */
    double bound = 0;
    for (int i = 0; i < k; i++) bound = fabs(xs[i]) > bound ? fabs(xs[i]) : bound;
    for (int i = 0; i + 1 < k; i++) {
        double mid = (xs[i] + xs[i + 1]) / 2, gap = xs[i + 1] - xs[i];
        double slope = 4.0 / gap;
        double gate = slope * (bound + fabs(mid)) + 2.0;
        for (int u = 0; u < 2; u++) {
            int h = 1 + 2 * i + u;
            W1(pc, h, in_dim) = (float)slope;
            W1(pc, h, L->bos) = (float)-gate;
            pc->b1[h] = (float)(-slope * mid + (u == 0 ? 0.5 : -0.5));
        }
        /* step = unit(2i+1) - unit(2i+2): add f(x[i+1]) and remove f(x[i]) */
        write_output(L, pc, n, 1 + 2 * i, ys[i + 1], 1.0f);
        write_output(L, pc, n, 2 + 2 * i, ys[i + 1], -1.0f);
        write_output(L, pc, n, 1 + 2 * i, ys[i], -1.0f);
        write_output(L, pc, n, 2 + 2 * i, ys[i], 1.0f);
    }
}

/* A numerical output that is a x + b y + c of numerical inputs on every value: two ReLUs. */
static bool linear_mlp(Lower *L, const RaspNode *n, int slot)
{
    int arity = n->op == RN_SEQMAP ? 2 : 1;
    for (int i = 0; i < arity; i++)
        if (n->in[i]->enc != ENC_NUMERICAL) return false;
    if (n->enc != ENC_NUMERICAL) return false;
    const ValueSet *A = &n->in[0]->vs, *B = arity == 2 ? &n->in[1]->vs : NULL;
    Value zero = value_int(0), one = value_int(1);
    Value args[2] = { zero, zero };
    Value c0 = apply_fn(n, args);
    args[0] = one;
    Value ca = apply_fn(n, args);
    args[0] = zero;
    args[1] = one;
    Value cb = arity == 2 ? apply_fn(n, args) : zero;
    if (c0.kind == TFMC_UNDEF || ca.kind == TFMC_UNDEF || cb.kind == TFMC_UNDEF) return false;
    double c = value_number(c0), a = value_number(ca) - c, b = arity == 2 ? value_number(cb) - c : 0;
    for (int i = 0; i < A->n; i++)
        for (int j = 0; j < (B ? B->n : 1); j++) {
            Value xy[2] = { A->v[i], B ? B->v[j] : zero };
            Value y = apply_fn(n, xy);
            if (y.kind == TFMC_UNDEF || !value_is_number(y)) return false;
            double want = a * value_number(xy[0]) + b * value_number(xy[1]) + c;
            if (fabs(value_number(y) - want) > 1e-9 * (1 + fabs(want))) return false;
        }
    Piece *pc = new_piece(L, slot, 2, n);
    for (int u = 0; u < 2; u++) {
        float sign = u == 0 ? 1.0f : -1.0f;
        W1(pc, u, L->base[n->in[0]->id]) = sign * (float)a;
        if (arity == 2) W1(pc, u, L->base[n->in[1]->id]) += sign * (float)b;
        W1(pc, u, L->one) = sign * (float)c;
        W1(pc, u, L->bos) = -sign * (float)c;
        W2(pc, L->base[n->id], u) = sign;
    }
    return true;
}

static void numeric_values(const ValueSet *vs, double *xs)
{
    for (int i = 0; i < vs->n; i++) xs[i] = value_number(vs->v[i]);
}

/* Matrices past this many floats are not compiled (a clear error instead of running out of memory). */
#define MAX_MATRIX_FLOATS ((size_t)1 << 27)

static void map_mlp(Lower *L, const RaspNode *n, int slot)
{
    size_t hidden = n->op == RN_SEQMAP ? (size_t)n->in[0]->vs.n * (size_t)n->in[1]->vs.n : 2 * (size_t)n->in[0]->vs.n + 1;
    if (hidden * (size_t)L->d > MAX_MATRIX_FLOATS) {
        char what[160];
        snprintf(what, sizeof what, "%zu hidden units over a residual of %d, %zu weights per matrix (the limit is %zu)",
                 hidden, L->d, hidden * (size_t)L->d, MAX_MATRIX_FLOATS);
        fail(L, n, "its MLP would need %s: too large to compile (the interpreter runs it)", what);
        return;
    }
    if (linear_mlp(L, n, slot)) return;
    if (n->op == RN_SEQMAP) {
        if (n->in[0]->enc == ENC_NUMERICAL || n->in[1]->enc == ENC_NUMERICAL) {
            fail(L, n, "a two-SOp map of a numerical SOp is compiled only when it is linear (%s); make the inputs "
                       "categorical", "a x + b y + c");
            return;
        }
        pair_mlp(L, n, slot);
        return;
    }
    const RaspNode *in = n->in[0];
    if (in->enc == ENC_CATEGORICAL) {
        table_mlp(L, n, slot);
        return;
    }
    int k = in->vs.n;
    double *xs = ARENA_ARRAY(L->a, double, k ? k : 1);
    Value *ys = ARENA_ARRAY(L->a, Value, k ? k : 1);
    numeric_values(&in->vs, xs);
    for (int i = 0; i < k; i++) ys[i] = apply_fn(n, &in->vs.v[i]);
    if (k == 0) return;
    discretising_mlp(L, n, slot, L->base[in->id], xs, ys, k);
}

/* ----------------------------------------------------------- attention */

/* One conjunct of a selector: a 0/1 matrix over the values of one (queries, keys) pair. */
typedef struct Conjunct {
    const RaspNode *keys, *queries;
    bool *m; /* [queries->vs.n][keys->vs.n] */
} Conjunct;

static bool same_pair(const RaspNode *sel, const RaspNode **k, const RaspNode **q)
{
    if (sel->op == RN_SELECT) {
        if (!*k) { *k = sel->in[0]; *q = sel->in[1]; }
        return *k == sel->in[0] && *q == sel->in[1];
    }
    for (int i = 0; i < 2; i++)
        if (sel->in[i] && !same_pair(sel->in[i], k, q)) return false;
    return true;
}

static bool eval_selector(const RaspNode *sel, Value key, Value query)
{
    switch (sel->op) {
    case RN_SELECT: return interp_select_pair(sel, key, query);
    case RN_SEL_AND: return eval_selector(sel->in[0], key, query) && eval_selector(sel->in[1], key, query);
    case RN_SEL_OR: return eval_selector(sel->in[0], key, query) || eval_selector(sel->in[1], key, query);
    case RN_SEL_NOT: return !eval_selector(sel->in[0], key, query);
    default: return false;
    }
}

/* Split a selector into conjuncts that each read one (keys, queries) pair. */
static bool conjuncts(Lower *L, const RaspNode *sel, Conjunct *out, int *n, int cap)
{
    const RaspNode *k = NULL, *q = NULL;
    if (same_pair(sel, &k, &q)) {
        if (*n >= cap) return false;
        Conjunct *c = &out[(*n)++];
        c->keys = k;
        c->queries = q;
        c->m = ARENA_ARRAY(L->a, bool, (size_t)q->vs.n * k->vs.n);
        for (int i = 0; i < q->vs.n; i++)
            for (int j = 0; j < k->vs.n; j++) c->m[i * k->vs.n + j] = eval_selector(sel, k->vs.v[j], q->vs.v[i]);
        return true;
    }
    if (sel->op == RN_SEL_AND) return conjuncts(L, sel->in[0], out, n, cap) && conjuncts(L, sel->in[1], out, n, cap);
    return false;
}

/* Whether a conjunct compares indices with indices and never selects a key after the query: then
 * neither does the selector (all its conjuncts must hold). */
static bool conjunct_never_later(const Conjunct *c)
{
    if (c->keys->op != RN_INDICES || c->queries->op != RN_INDICES) return false;
    int kn = c->keys->vs.n;
    for (int i = 0; i < c->queries->vs.n; i++)
        for (int j = 0; j < kn; j++)
            if (c->m[i * kn + j] && value_number(c->keys->vs.v[j]) > value_number(c->queries->vs.v[i])) return false;
    return true;
}

/* A head scoring S per satisfied conjunct, and bos_score for the BOS key. */
static ModelHead *score_head(Lower *L, const RaspNode *n, int slot, const RaspNode *sel, float bos_per_conj,
                             float bos_extra, int dv)
{
    Conjunct cs[16];
    int nc = 0;
    if (sel && !conjuncts(L, sel, cs, &nc, 16)) {
        fail(L, n, "its selector combines selects over different SOps with `or` or `not`%s",
             "; rewrite it as one select with a lambda over a combined SOp");
        return NULL;
    }
    int dk = 1;
    for (int c = 0; c < nc; c++) dk += cs[c].queries->vs.n;
    ModelHead h = { 0 };
    h.label = n->label;
    h.dk = dk;
    h.dv = dv;
    h.wq = ARENA_ARRAY(L->a, float, (size_t)dk * L->d);
    h.wk = ARENA_ARRAY(L->a, float, (size_t)dk * L->d);
    h.wv = ARENA_ARRAY(L->a, float, (size_t)dv * L->d);
    h.wo = ARENA_ARRAY(L->a, float, (size_t)L->d * dv);
    int r = 0;
    for (int c = 0; c < nc; c++) {
        const Conjunct *cj = &cs[c];
        int kn = cj->keys->vs.n;
        h.never_later |= conjunct_never_later(cj);
        for (int i = 0; i < cj->queries->vs.n; i++, r++) {
            h.wq[(size_t)r * L->d + L->base[cj->queries->id] + i] = 1.0f;
            for (int j = 0; j < kn; j++)
                if (cj->m[i * kn + j]) h.wk[(size_t)r * L->d + L->base[cj->keys->id] + j] = SCORE;
        }
    }
    h.wq[(size_t)r * L->d + L->one] = 1.0f;
    if (sel) h.wk[(size_t)r * L->d + L->bos] = SCORE * (bos_per_conj * (float)nc + bos_extra);
    else h.wk[(size_t)r * L->d + L->one] = SCORE; /* no selector (length): every key and BOS score S */
    VEC_PUSH(L->a, L->heads[slot], L->nheads[slot], L->cap_heads[slot], h);
    VEC_PUSH(L->a, L->parts[slot], L->nparts[slot], L->cap_parts[slot], n->label);
    return &L->heads[slot][L->nheads[slot] - 1];
}

static void aggregate_head(Lower *L, const RaspNode *n, int slot)
{
    const RaspNode *v = n->in[1];
    if (!n->mean && n->enc == ENC_NUMERICAL) {
        fail(L, n, "%s", "a numerical aggregate of a categorical SOp needs numerical values");
        return;
    }
    if (n->mean && n->enc == ENC_CATEGORICAL) {
        fail(L, n, "%s", "the mean of a numerical SOp cannot be categorical; drop categorical(...)");
        return;
    }
    int dv = n->mean ? 1 : v->vs.n;
    /* BOS scores S/2 below a full match: it wins only when no key matches */
    ModelHead *h = score_head(L, n, slot, n->in[0], 1.0f, -0.5f, dv);
    if (!h) return;
    if (!n->mean) {
        for (int i = 0; i < dv; i++) {
            h->wv[(size_t)i * L->d + L->base[v->id] + i] = 1.0f;
            int k = valueset_index(&n->vs, v->vs.v[i]);
            h->wo[(size_t)(L->base[n->id] + k) * dv + i] = 1.0f;
        }
    } else if (v->enc == ENC_NUMERICAL) {
        h->wv[L->base[v->id]] = 1.0f;
        h->wo[(size_t)L->base[n->id] * dv] = 1.0f;
    } else {
        for (int i = 0; i < v->vs.n; i++) h->wv[L->base[v->id] + i] = (float)value_number(v->vs.v[i]);
        h->wo[(size_t)L->base[n->id] * dv] = 1.0f;
    }
}

/* selector_width (and length): attend to BOS and the selected keys alike; the BOS share 1/(w+1)
 * goes to an auxiliary dimension, and a discretising MLP reads w back. */
static void width_node(Lower *L, const RaspNode *n, int slot)
{
    const RaspNode *sel = n->op == RN_LENGTH ? NULL : n->in[0];
    ModelHead *h = score_head(L, n, slot - 1, sel, 1.0f, 0.0f, 1);
    if (!h) return;
    h->wv[L->bos] = 1.0f;
    h->wo[(size_t)L->aux[n->id]] = 1.0f;
    int lo = n->op == RN_LENGTH ? 1 : 0, k = L->p->max_len - lo + 1;
    double *xs = ARENA_ARRAY(L->a, double, k);
    Value *ys = ARENA_ARRAY(L->a, Value, k);
    /* sorted by increasing share: the largest width first */
    for (int i = 0; i < k; i++) {
        int w = L->p->max_len - i;
        xs[i] = 1.0 / (w + 1);
        ys[i] = value_int(w);
    }
    discretising_mlp(L, n, slot, L->aux[n->id], xs, ys, k);
}

/* -------------------------------------------------------------- model */

static void embeddings(Lower *L, Model *m)
{
    const RaspProgram *p = L->p;
    int d = L->d;
    m->nvocab = p->vocab.n;
    m->vocab = p->vocab.v;
    m->vocab_is_int = p->vocab.n > 0 && p->vocab.v[0].kind != TFMC_STR;
    m->vocab_size = p->vocab.n + 1;
    m->bos_id = p->vocab.n;
    m->has_bos = true;
    m->max_len = p->max_len;
    m->positions = p->max_len + 1;
    m->tok_emb = ARENA_ARRAY(L->a, float, (size_t)m->vocab_size * d);
    m->pos_emb = ARENA_ARRAY(L->a, float, (size_t)m->positions * d);
    int tb = -1, ib = -1;
    for (int i = 0; i < d; i++) {
        if (tb < 0 && strncmp(L->labels[i], "tokens:", 7) == 0) tb = i;
        if (ib < 0 && strncmp(L->labels[i], "indices:", 8) == 0) ib = i;
    }
    for (int t = 0; t < m->vocab_size; t++) {
        float *row = m->tok_emb + (size_t)t * d;
        row[L->one] = 1.0f;
        if (t == m->bos_id) {
            row[L->bos] = 1.0f;
            continue;
        }
        row[tb + t] = 1.0f;
        /* constant SOps are part of every real token */
        for (int k = 0; k < p->nnodes; k++) {
            const RaspNode *n = p->nodes[k];
            if (!L->live[k] || n->op != RN_FULL) continue;
            if (n->enc == ENC_NUMERICAL) row[L->base[k]] = (float)value_number(n->fill);
            else row[L->base[k] + valueset_index(&n->vs, n->fill)] = 1.0f;
        }
    }
    for (int pos = 1; pos < m->positions; pos++) m->pos_emb[(size_t)pos * d + ib + pos - 1] = 1.0f;
}

static void add_block(Lower *L, Model *m, int slot)
{
    int d = L->d;
    ModelBlock b = { 0 };
    b.parts = L->parts[slot];
    b.nparts = L->nparts[slot];
    if (slot % 2 == 0) {
        if (L->nheads[slot] == 0) return;
        b.kind = BLOCK_ATTENTION;
        b.heads = L->heads[slot];
        b.nheads = L->nheads[slot];
        b.causal = L->p->causal;
        b.scale = 1.0f;
    } else {
        if (L->npieces[slot] == 0) return;
        b.kind = BLOCK_MLP;
        b.act = ACT_RELU;
        int hidden = 0;
        for (int i = 0; i < L->npieces[slot]; i++) hidden += L->pieces[slot][i]->hidden;
        if (hidden == 0) return; /* maps whose value sets are empty: they compute nothing */
        b.hidden = hidden;
        b.w1 = ARENA_ARRAY(L->a, float, (size_t)hidden * d);
        b.b1 = ARENA_ARRAY(L->a, float, hidden);
        b.w2 = ARENA_ARRAY(L->a, float, (size_t)hidden * d);
        b.b2 = ARENA_ARRAY(L->a, float, d);
        b.hidden_labels = ARENA_ARRAY(L->a, const char *, hidden);
        int at = 0;
        for (int i = 0; i < L->npieces[slot]; i++) {
            const Piece *pc = L->pieces[slot][i];
            memcpy(b.w1 + (size_t)at * d, pc->w1, sizeof(float) * (size_t)pc->hidden * d);
            memcpy(b.b1 + at, pc->b1, sizeof(float) * (size_t)pc->hidden);
            for (int j = 0; j < d; j++)
                memcpy(b.w2 + (size_t)j * hidden + at, pc->w2 + (size_t)j * pc->hidden, sizeof(float) * (size_t)pc->hidden);
            memcpy(b.hidden_labels + at, pc->labels, sizeof(char *) * (size_t)pc->hidden);
            at += pc->hidden;
        }
    }
    VEC_PUSH(L->a, m->blocks, m->nblocks, m->cap_blocks, b);
}

Model *rasp_lower(Arena *arena, const RaspProgram *p, DiagList *diags)
{
    Lower L = { 0 };
    L.a = arena;
    L.p = p;
    L.diags = diags;
    int nn = p->nnodes;
    L.base = ARENA_ARRAY(arena, int, nn);
    L.slot = ARENA_ARRAY(arena, int, nn);
    L.aux = ARENA_ARRAY(arena, int, nn);
    L.live = ARENA_ARRAY(arena, bool, nn);
    mark_live(&L, p->output);
    schedule(&L);
    allocate_dims(&L);
    if ((size_t)L.d * (size_t)L.d > MAX_MATRIX_FLOATS) {
        char what[128];
        snprintf(what, sizeof what, "a residual stream of %d dimensions (the limit is %d: a [dim][dim] matrix of at most %zu weights)",
                 L.d, (int)sqrt((double)MAX_MATRIX_FLOATS), MAX_MATRIX_FLOATS);
        fail(&L, p->output, "the program needs %s: too large to compile (the interpreter runs it)", what);
        return NULL;
    }
    int ns = L.nslots > 0 ? L.nslots : 1;
    L.heads = ARENA_ARRAY(arena, ModelHead *, ns);
    L.nheads = ARENA_ARRAY(arena, int, ns);
    L.cap_heads = ARENA_ARRAY(arena, int, ns);
    L.pieces = ARENA_ARRAY(arena, Piece **, ns);
    L.npieces = ARENA_ARRAY(arena, int, ns);
    L.cap_pieces = ARENA_ARRAY(arena, int, ns);
    L.parts = ARENA_ARRAY(arena, const char **, ns);
    L.nparts = ARENA_ARRAY(arena, int, ns);
    L.cap_parts = ARENA_ARRAY(arena, int, ns);
    /* what float32 weights cannot hold, said before building them */
    for (int k = 0; k < nn && !L.failed; k++) {
        const RaspNode *n = p->nodes[k];
        if (!L.live[k] || n->is_selector) continue;
        for (int i = 0; i < n->vs.n; i++)
            if (value_is_number(n->vs.v[i]) && !(fabs(value_number(n->vs.v[i])) <= FLT_MAX)) {
                char v[64];
                snprintf(v, sizeof v, "%g", value_number(n->vs.v[i]));
                fail(&L, n, "it can be %s, beyond float32's range (3.4e38): the transformer's weights cannot hold it", v);
                break;
            }
        if (!L.failed && n->op == RN_AGGREGATE && n->in[1]->vs.n == 0)
            fail(&L, n, "%s", "the values it aggregates are always undefined (an empty value set): nothing to compile");
    }
    for (int k = 0; k < nn && !L.failed; k++) {
        const RaspNode *n = p->nodes[k];
        if (!L.live[k] || n->is_selector) continue;
        switch (n->op) {
        case RN_MAP: case RN_SEQMAP: map_mlp(&L, n, L.slot[k]); break;
        case RN_AGGREGATE: aggregate_head(&L, n, L.slot[k]); break;
        case RN_SELECTOR_WIDTH: case RN_LENGTH: width_node(&L, n, L.slot[k]); break;
        case RN_TOKENS: case RN_INDICES: case RN_FULL: break;
        case RN_SELECT: case RN_SEL_AND: case RN_SEL_OR: case RN_SEL_NOT: break;
        }
    }
    if (L.failed) return NULL;
    Model *m = ARENA_NEW(arena, Model);
    m->name = p->name;
    m->dim = L.d;
    m->dim_labels = L.labels;
    embeddings(&L, m);
    for (int s = 0; s < L.nslots; s++) add_block(&L, m, s);
    const RaspNode *out = p->output;
    if (out->enc == ENC_NUMERICAL) {
        m->out_kind = OUT_NUMERICAL;
        m->out_dim = L.base[out->id];
        /* the values it can take: decoding snaps to the nearest (within 1e-4) */
        m->nout = out->vs.n;
        Value *nums = ARENA_ARRAY(arena, Value, out->vs.n ? out->vs.n : 1);
        for (int i = 0; i < out->vs.n; i++)
            nums[i] = out->vs.v[i].kind == TFMC_BOOL ? value_int(out->vs.v[i].u.b) : out->vs.v[i];
        m->out_values = nums;
    } else {
        m->out_kind = OUT_CATEGORICAL;
        m->nout = out->vs.n;
        m->out_dims = ARENA_ARRAY(arena, int, out->vs.n ? out->vs.n : 1);
        m->out_values = out->vs.v;
        for (int i = 0; i < out->vs.n; i++) m->out_dims[i] = L.base[out->id] + i;
    }
    return m;
}
