/* quantize.c: weight-only int8 quantisation (opt-in with --quantize=int8 or int8:group=G; see
 * docs/quantize.md). The dense weight matrix of every linear op of the blocks (attention q, k, v,
 * o or a fused QKV, the MLP's up, gate and down) becomes symmetric int8 with one f32 scale per
 * output row, or per group of G consecutive inputs of each row (the last group of a row is
 * shorter when G does not divide the row):
 *   scale = max |w| / 127 over the row or group (0 when they are all 0),
 *   q     = w / scale rounded half away from zero (roundf), kept in [-127, 127] (0 when scale is 0),
 * and the op computes with q * scale (tfmcrt_linear_q8_ex). Stays float: the embeddings, the
 * output head, biases, norms, and MoE experts and routers (a later step). A matrix several ops
 * share (a shared block, a tied or stacked weight) is quantised once and stays one constant.
 * With --report it logs per matrix the range of its scales and the max and mean |w - q * scale|.
 * Preserves: each weight within scale / 2 of its value (rounding); the outputs within what that
 * error gives (measured by tests/e2e/check_quantize.py). */
#include <math.h>

#include "passes.h"

/* Quantise constant c (dense [rows][cols]) into a new int8 constant; its index. */
static int quantize_const(PassContext *pc, Graph *g, int c, int group)
{
    const GraphConst *k = &g->consts[c];
    size_t rows = (size_t)k->rows, cols = (size_t)k->cols;
    size_t G = group > 0 && (size_t)group < cols ? (size_t)group : cols;
    size_t groups = (cols + G - 1) / G;
    int8_t *q = ARENA_ARRAY(pc->arena, int8_t, rows * cols > 0 ? rows * cols : 1);
    float *scale = ARENA_ARRAY(pc->arena, float, rows * groups > 0 ? rows * groups : 1);
    const float *w = k->data;
    float smin = INFINITY, smax = 0;
    double err_max = 0, err_sum = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t gi = 0; gi < groups; gi++) {
            size_t c0 = gi * G, c1 = c0 + G < cols ? c0 + G : cols;
            const float *row = w + r * cols;
            float m = 0;
            for (size_t j = c0; j < c1; j++) m = fmaxf(m, fabsf(row[j]));
            float s = m / 127.0f;
            scale[r * groups + gi] = s;
            smin = fminf(smin, s);
            smax = fmaxf(smax, s);
            for (size_t j = c0; j < c1; j++) {
                float v = s > 0 ? roundf(row[j] / s) : 0.0f;
                v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
                q[r * cols + j] = (int8_t)v;
                double e = fabs((double)row[j] - (double)v * (double)s);
                err_max = e > err_max ? e : err_max;
                err_sum += e;
            }
        }
    if (pc->log)
        fprintf(pc->log, "quantize: %-34s [%zu][%zu] int8, group %zu: scales %.4g..%.4g, |w - q*s| max %.4g mean %.4g\n",
                k->name, rows, cols, G, (double)(rows ? smin : 0), (double)smax, err_max,
                rows * cols > 0 ? err_sum / (double)(rows * cols) : 0.0);
    return graph_add_q8_const(pc->arena, g, k->rows, k->cols, q, scale, (int)G, k->name);
}

bool pass_quantize(PassContext *pc, Graph *g)
{
    if (pc->opts->quantize_bits != 8) {
        SrcLoc none = { 0, 0, 0, 0 };
        if (pc->opts->quantize_bits == 0)
            diag_error(pc->diags, NULL, none, "the quantize pass needs --quantize=int8 or int8:group=G");
        else
            diag_error(pc->diags, NULL, none, "only --quantize=int8 is implemented (asked for %d bits)",
                       pc->opts->quantize_bits);
        return false;
    }
    if (!g->declared) {
        SrcLoc none = { 0, 0, 0, 0 };
        diag_error(pc->diags, NULL, none, "--quantize is for declared models; `%s` is a RASP program", g->name);
        diag_hint(pc->diags, "compiled RASP programs stay float (their weights are small integers)");
        return false;
    }
    int nc = g->nconsts, done = 0;
    int *memo = ARENA_ARRAY(pc->arena, int, nc ? nc : 1);
    for (int i = 0; i < nc; i++) memo[i] = -1;
    for (int i = 0; i < g->nops; i++) {
        GraphOp *o = &g->ops[i];
        if (o->kind != G_LINEAR || o->layer < 0 || o->head || o->consts[0] < 0) continue;
        int c = o->consts[0];
        if (c >= nc || !g->consts[c].data || !g->consts[c].cols) continue; /* compressed, or made here */
        if (memo[c] < 0) {
            memo[c] = quantize_const(pc, g, c, pc->opts->quantize_group);
            done++;
        }
        o->consts[0] = memo[c];
    }
    if (pc->log) fprintf(pc->log, "quantize: %d matrices in int8 (embeddings, head and MoE experts stay float)\n", done);
    return true;
}
