/* tfmcrt_linear.c: matrix products of the tfmc runtime: one position at a time (decode, memory
 * bound), a packed-panel GEMM (prefill, compute bound), and compressed rows for sparse weights. */
#include "tfmcrt_simd.h"

/* One row of W times x, summed in the runtime's dot-product order: sixteen lane sums (lane j takes
 * columns j, j + 16, ... in turn), then the columns past the last whole sixteen one by one, then
 * the lanes added in pairs (0+1, 2+3, ...) onto that. The same order as tfmcrt_dot for sixteen or
 * more columns, and the order the packed panel kernel (below) reproduces sixteen rows at a time, so
 * the two give the same bits. One row at a time: W is read as one sequential stream, which the
 * hardware prefetcher follows at full speed even when rows are short (288 columns); eight rows
 * side by side (the previous kernel) were eight short streams it followed poorly. */
TFMCRT_CLONES
static float row_dot(const float *w, const float *x, size_t cols)
{
#ifdef VEC_LANES
    Vec16 acc = { 0 };
    size_t c = 0;
    for (; c + VEC_LANES <= cols; c += VEC_LANES) {
        Vec16 wv, xv;
        memcpy(&wv, w + c, sizeof wv);
        memcpy(&xv, x + c, sizeof xv);
        acc += wv * xv;
    }
    float s = 0;
    for (; c < cols; c++) s += w[c] * x[c];
    for (int k = 0; k < VEC_LANES; k += 2) s += acc[k] + acc[k + 1];
    return s;
#else
    float acc[16] = { 0 };
    size_t c = 0;
    for (; c + 16 <= cols; c += 16)
        for (int k = 0; k < 16; k++) acc[k] += w[c + k] * x[c + k];
    float s = 0;
    for (; c < cols; c++) s += w[c] * x[c];
    for (int k = 0; k < 16; k += 2) s += acc[k] + acc[k + 1];
    return s;
#endif
}

void tfmcrt_matvec(float *y, const float *w, const float *x, const float *b, size_t rows, size_t cols)
{
    tfmcrt_linear(y, x, 1, w, b, rows, cols);
}

/* y[n][rows] = x[n][cols] . W^T for rows r_begin..r_end of W: a row of W at a time, which stays in
 * L1 while every position uses it. For one position (decode) this streams W once, in order, which
 * is what bounds it. */
static void linear_rows(float *out, const float *in, size_t n, const float *w, size_t rows, size_t cols,
                        size_t r_begin, size_t r_end)
{
    for (size_t r = r_begin; r < r_end; r++)
        for (size_t i = 0; i < n; i++) out[i * rows + r] = row_dot(w + r * cols, in + i * cols, cols);
}

/* ------------------------------------------------------------ packed weights
 * tfmcrt_pack's layout: panels of PANEL consecutive rows of W, panel p holding rows 16p..16p+15
 * column by column ([cols][16], the last panel padded with zero rows). The GEMM reads two panels
 * side by side; the one-position kernel reads a panel as one sequential stream, its sixteen rows in
 * the sixteen lanes of a vector. */
#define PANEL 16

size_t tfmcrt_packed_floats(size_t rows, size_t cols) { return (rows + PANEL - 1) / PANEL * PANEL * cols; }

void tfmcrt_pack(float *dst, const float *w, size_t rows, size_t cols)
{
    for (size_t r0 = 0; r0 < rows; r0 += PANEL)
        for (size_t c = 0; c < cols; c++)
            for (size_t j = 0; j < PANEL; j++)
                dst[r0 * cols + c * PANEL + j] = r0 + j < rows ? w[(r0 + j) * cols + c] : 0.0f;
}

#ifdef VEC_LANES
/* y[16] = the panel's sixteen rows . x, each summed exactly as row_dot sums it: accumulator j
 * holds, for every row at once, lane j of row_dot's sixteen lane sums (columns j, j + 16, ...),
 * then the last columns one by one and the lanes in pairs. Sixteen independent accumulators and
 * no horizontal sum. */
TFMCRT_CLONES
static void panel_dot16(float *y, const float *p, const float *x, size_t cols)
{
    Vec16 a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 }, a5 = { 0 }, a6 = { 0 }, a7 = { 0 };
    Vec16 a8 = { 0 }, a9 = { 0 }, a10 = { 0 }, a11 = { 0 }, a12 = { 0 }, a13 = { 0 }, a14 = { 0 }, a15 = { 0 };
    size_t c = 0;
#define PANEL_STEP(acc, k)                                                                                              \
    do {                                                                                                               \
        Vec16 v;                                                                                                       \
        memcpy(&v, p + (c + (k)) * PANEL, sizeof v);                                                                   \
        acc += v * x[c + (k)];                                                                                         \
    } while (0)
    for (; c + 16 <= cols; c += 16) {
        PANEL_STEP(a0, 0); PANEL_STEP(a1, 1); PANEL_STEP(a2, 2); PANEL_STEP(a3, 3);
        PANEL_STEP(a4, 4); PANEL_STEP(a5, 5); PANEL_STEP(a6, 6); PANEL_STEP(a7, 7);
        PANEL_STEP(a8, 8); PANEL_STEP(a9, 9); PANEL_STEP(a10, 10); PANEL_STEP(a11, 11);
        PANEL_STEP(a12, 12); PANEL_STEP(a13, 13); PANEL_STEP(a14, 14); PANEL_STEP(a15, 15);
    }
    Vec16 s = { 0 };
    for (; c < cols; c++) PANEL_STEP(s, 0);
#undef PANEL_STEP
    s += a0 + a1, s += a2 + a3, s += a4 + a5, s += a6 + a7;
    s += a8 + a9, s += a10 + a11, s += a12 + a13, s += a14 + a15;
    memcpy(y, &s, sizeof s);
}

/* The same for lanes lane0..lane0+8 of the panel in eight-float vectors: where registers hold
 * eight floats or fewer (AVX2, SSE), sixteen of them fit where sixteen sixteen-float ones spill.
 * Lanes are independent, so the bits are panel_dot16's. */
typedef float Vec8 __attribute__((vector_size(32)));
TFMCRT_CLONES
static void panel_dot8(float *y, const float *p, const float *x, size_t cols, size_t lane0)
{
    Vec8 a0 = { 0 }, a1 = { 0 }, a2 = { 0 }, a3 = { 0 }, a4 = { 0 }, a5 = { 0 }, a6 = { 0 }, a7 = { 0 };
    Vec8 a8 = { 0 }, a9 = { 0 }, a10 = { 0 }, a11 = { 0 }, a12 = { 0 }, a13 = { 0 }, a14 = { 0 }, a15 = { 0 };
    size_t c = 0;
    p += lane0;
#define PANEL_STEP(acc, k)                                                                                              \
    do {                                                                                                               \
        Vec8 v;                                                                                                        \
        memcpy(&v, p + (c + (k)) * PANEL, sizeof v);                                                                   \
        acc += v * x[c + (k)];                                                                                         \
    } while (0)
    for (; c + 16 <= cols; c += 16) {
        PANEL_STEP(a0, 0); PANEL_STEP(a1, 1); PANEL_STEP(a2, 2); PANEL_STEP(a3, 3);
        PANEL_STEP(a4, 4); PANEL_STEP(a5, 5); PANEL_STEP(a6, 6); PANEL_STEP(a7, 7);
        PANEL_STEP(a8, 8); PANEL_STEP(a9, 9); PANEL_STEP(a10, 10); PANEL_STEP(a11, 11);
        PANEL_STEP(a12, 12); PANEL_STEP(a13, 13); PANEL_STEP(a14, 14); PANEL_STEP(a15, 15);
    }
    Vec8 s = { 0 };
    for (; c < cols; c++) PANEL_STEP(s, 0);
#undef PANEL_STEP
    s += a0 + a1, s += a2 + a3, s += a4 + a5, s += a6 + a7;
    s += a8 + a9, s += a10 + a11, s += a12 + a13, s += a14 + a15;
    memcpy(y + lane0, &s, sizeof s);
}
#endif

/* y[16] for one panel: row_dot's sums of its sixteen rows, bit for bit. */
static void panel_dot(float *y, const float *p, const float *x, size_t cols)
{
#ifdef VEC_LANES
    if (tfmcrt_wide_registers()) {
        panel_dot16(y, p, x, cols);
    } else {
        panel_dot8(y, p, x, cols, 0);
        panel_dot8(y, p, x, cols, 8);
    }
#else
    for (size_t j = 0; j < PANEL; j++) {
        float acc[16] = { 0 };
        size_t c = 0;
        for (; c + 16 <= cols; c += 16)
            for (int k = 0; k < 16; k++) acc[k] += p[(c + k) * PANEL + j] * x[c + k];
        float s = 0;
        for (; c < cols; c++) s += p[c * PANEL + j] * x[c];
        for (int k = 0; k < 16; k += 2) s += acc[k] + acc[k + 1];
        y[j] = s;
    }
#endif
}

/* linear_rows from packed W: rows r_begin..r_end (r_begin a multiple of 16), a panel at a time,
 * each position in turn while the panel is in the cache. */
static void linear_panels(float *out, const float *in, size_t n, const float *packed, size_t rows, size_t cols,
                          size_t r_begin, size_t r_end)
{
    float y[PANEL];
    for (size_t r0 = r_begin; r0 < r_end; r0 += PANEL) {
        size_t nr = r_end - r0 < PANEL ? r_end - r0 : PANEL;
        for (size_t i = 0; i < n; i++) {
            panel_dot(y, packed + r0 * cols, in + i * cols, cols);
            memcpy(out + i * rows + r0, y, nr * sizeof(float));
        }
    }
}

#ifdef VEC_LANES
/* Many positions at once (prefill) are a matrix product, bound by arithmetic, not by memory: W is
 * read a block at a time (GEMM_NR of its rows, GEMM_KC of its columns) laid out [column][row] as
 * two panels of tfmcrt_pack's layout: packed W as it is, other W copied into that layout at every
 * call. The block stays in L1 while every group of GEMM_MR positions multiplies it. Each
 * step of the tile loop then broadcasts one input value against two vectors of the panel into
 * eight accumulators that never leave the registers. Each output is summed in column order, the
 * same whatever n is. */
#define GEMM_MR 4
#define GEMM_NR 32
#define GEMM_KC 128

/* c[4][32] = (add ? c : 0) + a[4][kc] (rows lda apart) . [b0 b1][kc][32]: b0 and b1 are two
 * panels [kc][16] (columns 0..15 and 16..31 of the tile). */
TFMCRT_CLONES
static void gemm_tile(float *c, size_t ldc, const float *a, size_t lda, const float *b0p, const float *b1p, size_t kc,
                      int add)
{
    Vec16 c00 = { 0 }, c01 = { 0 }, c10 = { 0 }, c11 = { 0 }, c20 = { 0 }, c21 = { 0 }, c30 = { 0 }, c31 = { 0 };
    if (add) {
        memcpy(&c00, c, 64), memcpy(&c01, c + 16, 64);
        memcpy(&c10, c + ldc, 64), memcpy(&c11, c + ldc + 16, 64);
        memcpy(&c20, c + 2 * ldc, 64), memcpy(&c21, c + 2 * ldc + 16, 64);
        memcpy(&c30, c + 3 * ldc, 64), memcpy(&c31, c + 3 * ldc + 16, 64);
    }
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
    for (size_t k = 0; k < kc; k++) {
        Vec16 b0, b1;
        memcpy(&b0, b0p + k * PANEL, 64);
        memcpy(&b1, b1p + k * PANEL, 64);
        c00 += b0 * a0[k], c01 += b1 * a0[k];
        c10 += b0 * a1[k], c11 += b1 * a1[k];
        c20 += b0 * a2[k], c21 += b1 * a2[k];
        c30 += b0 * a3[k], c31 += b1 * a3[k];
    }
    memcpy(c, &c00, 64), memcpy(c + 16, &c01, 64);
    memcpy(c + ldc, &c10, 64), memcpy(c + ldc + 16, &c11, 64);
    memcpy(c + 2 * ldc, &c20, 64), memcpy(c + 2 * ldc + 16, &c21, 64);
    memcpy(c + 3 * ldc, &c30, 64), memcpy(c + 3 * ldc + 16, &c31, 64);
}

/* c[8][16] = (add ? c : 0) + a[8][kc] . bp[kc][16]: the tile for W with at most 16 rows (the
 * narrow factor of a low-rank product), eight positions deep so that eight sums are in flight. */
TFMCRT_CLONES
static void gemm_tile16(float *c, size_t ldc, const float *a, size_t lda, const float *bp, size_t kc, int add)
{
    Vec16 c0 = { 0 }, c1 = { 0 }, c2 = { 0 }, c3 = { 0 }, c4 = { 0 }, c5 = { 0 }, c6 = { 0 }, c7 = { 0 };
    if (add) {
        memcpy(&c0, c, 64), memcpy(&c1, c + ldc, 64), memcpy(&c2, c + 2 * ldc, 64), memcpy(&c3, c + 3 * ldc, 64);
        memcpy(&c4, c + 4 * ldc, 64), memcpy(&c5, c + 5 * ldc, 64), memcpy(&c6, c + 6 * ldc, 64);
        memcpy(&c7, c + 7 * ldc, 64);
    }
    for (size_t k = 0; k < kc; k++) {
        Vec16 b0;
        memcpy(&b0, bp + k * 16, 64);
        c0 += b0 * a[k], c1 += b0 * a[lda + k], c2 += b0 * a[2 * lda + k], c3 += b0 * a[3 * lda + k];
        c4 += b0 * a[4 * lda + k], c5 += b0 * a[5 * lda + k], c6 += b0 * a[6 * lda + k];
        c7 += b0 * a[7 * lda + k];
    }
    memcpy(c, &c0, 64), memcpy(c + ldc, &c1, 64), memcpy(c + 2 * ldc, &c2, 64), memcpy(c + 3 * ldc, &c3, 64);
    memcpy(c + 4 * ldc, &c4, 64), memcpy(c + 5 * ldc, &c5, 64), memcpy(c + 6 * ldc, &c6, 64);
    memcpy(c + 7 * ldc, &c7, 64);
}

/* Panels 32 rows of W wide, 4 positions at a time; or 16 wide and 8 deep when W is that narrow. */
static size_t gemm_width(size_t rows) { return rows <= 16 ? 16 : GEMM_NR; }
static size_t gemm_depth(size_t rows) { return rows <= 16 ? 8 : GEMM_MR; }

/* The second panel of a 32-row block past the last row of W: zeros (the GEMM reads kc <= GEMM_KC
 * columns of it). */
static const float zero_panel[GEMM_KC * PANEL];

/* out[n][rows] = in[n][cols] . W^T for rows r_begin..r_end of W (r_begin on a block boundary);
 * n positions from in and out, which may start anywhere in the matrices (rows and cols apart).
 * W is row-major (w), or tfmcrt_pack's layout (packed, w NULL): the same tiles read the same
 * numbers either way, so the results are the same bits. */
static void linear_gemm(float *out, const float *in, size_t n, const float *w, const float *packed, size_t rows,
                        size_t cols, size_t r_begin, size_t r_end)
{
    float bp[2 * GEMM_KC * PANEL], ct[8 * GEMM_NR], at[8 * GEMM_KC];
    size_t width = gemm_width(rows), depth = gemm_depth(rows);
    for (size_t r0 = r_begin; r0 < r_end; r0 += width) {
        size_t nr = r_end - r0 < width ? r_end - r0 : width;
        for (size_t k0 = 0; k0 < cols; k0 += GEMM_KC) {
            size_t kc = cols - k0 < GEMM_KC ? cols - k0 : GEMM_KC;
            const float *b0, *b1;
            if (packed) {
                b0 = packed + r0 * cols + k0 * PANEL;
                b1 = r0 + PANEL < rows ? b0 + PANEL * cols : zero_panel;
            } else {
                /* the block in the packed layout; rows past the end of W are zeros */
                for (size_t j = 0; j < width; j++)
                    for (size_t k = 0; k < kc; k++)
                        bp[j / PANEL * GEMM_KC * PANEL + k * PANEL + j % PANEL] =
                            j < nr ? w[(r0 + j) * cols + k0 + k] : 0.0f;
                b0 = bp, b1 = bp + GEMM_KC * PANEL;
            }
            for (size_t i0 = 0; i0 < n; i0 += depth) {
                size_t mr = n - i0 < depth ? n - i0 : depth;
                float *c = out + i0 * rows + r0;
                const float *a = in + i0 * cols + k0;
                size_t ldc = rows, lda = cols;
                bool edge = mr < depth || nr < width;
                if (edge) {
                    /* through zero-padded copies */
                    memset(at, 0, sizeof at);
                    memset(ct, 0, sizeof ct);
                    for (size_t i = 0; i < mr; i++) {
                        memcpy(at + i * GEMM_KC, a + i * cols, kc * sizeof(float));
                        if (k0 > 0) memcpy(ct + i * width, c + i * rows, nr * sizeof(float));
                    }
                    c = ct, a = at, ldc = width, lda = GEMM_KC;
                }
                if (width == 16)
                    gemm_tile16(c, ldc, a, lda, b0, kc, k0 > 0);
                else
                    gemm_tile(c, ldc, a, lda, b0, b1, kc, k0 > 0);
                if (edge)
                    for (size_t i = 0; i < mr; i++) memcpy(out + (i0 + i) * rows + r0, ct + i * width, nr * sizeof(float));
            }
        }
    }
}
#endif

/* One task of a linear: a range of row blocks of W (panels, or blocks of 16 rows) times a range
 * of position groups. */
typedef struct LinearJob {
    float *out;
    const float *in, *w, *b;
    size_t n, rows, cols;
    int packed;               /* w is in tfmcrt_pack's layout */
    int gemm;                 /* the packed-panel product, else the row (or panel) kernel */
    size_t unit, units;       /* rows of W per block, and blocks */
    size_t depth, groups;     /* positions per group, and groups */
    size_t row_tasks, pos_tasks;
} LinearJob;

static void linear_task(void *arg, size_t task)
{
    const LinearJob *j = arg;
    size_t rt = task % j->row_tasks, pt = task / j->row_tasks;
    size_t r_begin = rt * j->units / j->row_tasks * j->unit, r_end = (rt + 1) * j->units / j->row_tasks * j->unit;
    size_t i_begin = pt * j->groups / j->pos_tasks * j->depth, i_end = (pt + 1) * j->groups / j->pos_tasks * j->depth;
    if (r_end > j->rows) r_end = j->rows;
    if (i_end > j->n) i_end = j->n;
    float *out = j->out + i_begin * j->rows;
    const float *in = j->in + i_begin * j->cols;
    size_t n = i_end - i_begin;
    if (j->gemm) {
#ifdef VEC_LANES /* (only set then) */
        linear_gemm(out, in, n, j->packed ? NULL : j->w, j->packed ? j->w : NULL, j->rows, j->cols, r_begin, r_end);
#endif
    } else if (j->packed) {
        linear_panels(out, in, n, j->w, j->rows, j->cols, r_begin, r_end);
    } else {
        linear_rows(out, in, n, j->w, j->rows, j->cols, r_begin, r_end);
    }
    if (j->b)
        for (size_t i = 0; i < n; i++)
            for (size_t r = r_begin; r < r_end; r++) out[i * j->rows + r] += j->b[r];
}

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* Cut units x groups of equal work into row_tasks x pos_tasks tasks for `threads` threads (that
 * take the next task as they finish): the cut whose slowest thread has the least work,
 * ceil(tasks / threads) tasks of ceil(units / rows) x ceil(groups / positions) each; on a tie the
 * fewer tasks. 24 blocks of rows (a 768-row W) and 32 groups of 4 positions on 16 threads: 24 x 2
 * tasks, 3 each, where cutting the rows alone gives half the threads two blocks and the others
 * one. Only the speed depends on it. */
static void split(size_t threads, size_t units, size_t groups, size_t *row_tasks, size_t *pos_tasks)
{
    size_t best = (size_t)-1;
    *row_tasks = *pos_tasks = 1;
    if (threads <= 1) return;
    for (size_t p = 1; p <= groups && p <= threads; p++) {
        size_t cand[3] = { units, ceil_div(threads, p), ceil_div(2 * threads, p) };
        for (int c = 0; c < 3; c++) {
            size_t r = cand[c] < units ? cand[c] : units;
            size_t span = ceil_div(r * p, threads) * ceil_div(units, r) * ceil_div(groups, p);
            if (span < best || (span == best && r * p < *row_tasks * *pos_tasks)) {
                best = span;
                *row_tasks = r;
                *pos_tasks = p;
            }
        }
    }
}

/* Threads take whole blocks of rows of W and whole groups of positions (each output element is
 * then computed exactly as on one thread: the same block kernel, the same column order), cut so
 * that the threads' work is as even as the blocks allow (split). Blocks are 16 rows (or a GEMM
 * panel pair), so packed and row-major W are cut alike. */
static void linear_job(const TfmcrtExec *ex, float *out, const float *in, size_t n, const float *w, int packed,
                       const float *b, size_t rows, size_t cols)
{
    LinearJob j = { out, in, w, b, n, rows, cols, packed, 0, PANEL, 0, n ? n : 1, 1, 1, 1 };
#ifdef VEC_LANES
    if (n >= GEMM_MR && cols > 0 && tfmcrt_wide_registers()) {
        j.gemm = 1;
        j.unit = gemm_width(rows);
        j.depth = gemm_depth(rows);
    }
#endif
    j.units = (rows + j.unit - 1) / j.unit;
    j.groups = (n + j.depth - 1) / j.depth;
    if (j.units == 0 || j.groups == 0) return;
    size_t threads = tfmcrt_tasks(ex, j.units * j.groups, j.unit * j.depth * (cols ? cols : 1));
    split(threads, j.units, j.groups, &j.row_tasks, &j.pos_tasks);
    tfmcrt_parallel_for(ex, j.row_tasks * j.pos_tasks, linear_task, &j);
}

void tfmcrt_linear_ex(const TfmcrtExec *ex, float *out, const float *in, size_t n, const float *w, const float *b,
                      size_t rows, size_t cols)
{
    linear_job(ex, out, in, n, w, 0, b, rows, cols);
}

void tfmcrt_linear_packed_ex(const TfmcrtExec *ex, float *out, const float *in, size_t n, const float *packed,
                             const float *b, size_t rows, size_t cols)
{
    linear_job(ex, out, in, n, packed, 1, b, rows, cols);
}

void tfmcrt_linear(float *out, const float *in, size_t n, const float *w, const float *b, size_t rows,
                   size_t cols)
{
    tfmcrt_linear_ex(NULL, out, in, n, w, b, rows, cols);
}

/* Rows r0..r1 of a compressed-rows product (acc: added, and rows without terms copied). */
static void csr_rows(float *out, const float *acc, const float *in, size_t n, const int *rowptr, const int *colidx,
                     const float *vals, const float *b, size_t rows, size_t cols, size_t r0, size_t r1)
{
    for (size_t i = 0; i < n; i++) {
        const float *x = in + i * cols;
        float *y = out + i * rows;
        const float *a = acc ? acc + i * rows : NULL;
        for (size_t r = r0; r < r1; r++) {
            if (a && rowptr[r] == rowptr[r + 1] && !b) {
                y[r] = a[r]; /* nothing to add: the same value, no arithmetic */
                continue;
            }
            float s = b ? b[r] : 0.0f;
            for (int k = rowptr[r]; k < rowptr[r + 1]; k++) s += vals[k] * x[colidx[k]];
            y[r] = a ? a[r] + s : s;
        }
    }
}

typedef struct CsrJob {
    float *out;
    const float *acc, *in, *vals, *b;
    const int *rowptr, *colidx;
    size_t n, rows, cols, tasks;
} CsrJob;

static void csr_task(void *arg, size_t t)
{
    const CsrJob *j = arg;
    csr_rows(j->out, j->acc, j->in, j->n, j->rowptr, j->colidx, j->vals, j->b, j->rows, j->cols, t * j->rows / j->tasks,
             (t + 1) * j->rows / j->tasks);
}

/* Threads take ranges of rows of W; each row's sum is the one-thread sum. */
static void csr_ex(const TfmcrtExec *ex, float *out, const float *acc, const float *in, size_t n, const int *rowptr,
                   const int *colidx, const float *vals, const float *b, size_t rows, size_t cols)
{
    size_t nnz = rows ? (size_t)rowptr[rows] : 0;
    CsrJob j = { out, acc, in, vals, b, rowptr, colidx, n, rows, cols, 1 };
    if (rows == 0) return;
    j.tasks = tfmcrt_tasks(ex, rows, (nnz / rows + 1) * n);
    tfmcrt_parallel_for(ex, j.tasks, csr_task, &j);
}

void tfmcrt_linear_csr(float *out, const float *in, size_t n, const int *rowptr, const int *colidx,
                       const float *vals, const float *b, size_t rows, size_t cols)
{
    csr_rows(out, NULL, in, n, rowptr, colidx, vals, b, rows, cols, 0, rows);
}

void tfmcrt_linear_csr_acc(float *out, const float *acc, const float *in, size_t n, const int *rowptr,
                           const int *colidx, const float *vals, const float *b, size_t rows, size_t cols)
{
    csr_rows(out, acc, in, n, rowptr, colidx, vals, b, rows, cols, 0, rows);
}

void tfmcrt_linear_csr_ex(const TfmcrtExec *ex, float *out, const float *in, size_t n, const int *rowptr,
                          const int *colidx, const float *vals, const float *b, size_t rows, size_t cols)
{
    csr_ex(ex, out, NULL, in, n, rowptr, colidx, vals, b, rows, cols);
}

void tfmcrt_linear_csr_acc_ex(const TfmcrtExec *ex, float *out, const float *acc, const float *in, size_t n,
                              const int *rowptr, const int *colidx, const float *vals, const float *b, size_t rows,
                              size_t cols)
{
    csr_ex(ex, out, acc, in, n, rowptr, colidx, vals, b, rows, cols);
}

/* ------------------------------------------------------------ int8 weights */

/* One int8 row of W times x (the scales of its groups in scale[]): the sum of (q * scale) * x, each
 * weight dequantised by its group's scale as it is read, in sixteen independent lanes (lane k takes
 * columns k, k + 16, ... of each group) and a tail (each group's columns past its last whole
 * sixteen, one by one), then the lanes added in pairs onto the tail. The lanes live across groups
 * (no sum per group to reduce or store), so groups of 32 cost little more than one scale per row;
 * independent lanes: vector code under plain -O2. */
TFMCRT_CLONES
static float q8_row_dot(const int8_t *q, const float *scale, const float *x, size_t cols, size_t group)
{
    float lane[16] = { 0 }, tail = 0;
    for (size_t c0 = 0, gi = 0; c0 < cols; c0 += group, gi++) {
        size_t end = cols - c0 < group ? cols : c0 + group, c = c0;
        float sc = scale[gi];
        for (; c + 16 <= end; c += 16)
            for (int k = 0; k < 16; k++) lane[k] += (float)q[c + k] * sc * x[c + k];
        for (; c < end; c++) tail += (float)q[c] * sc * x[c];
    }
    for (int k = 0; k < 16; k += 2) tail += lane[k] + lane[k + 1];
    return tail;
}

typedef struct Q8Job {
    float *out;
    const float *in, *scale, *b;
    const int8_t *q;
    size_t n, rows, cols, group, groups, tasks;
} Q8Job;

/* Rows t * rows / tasks .. (t + 1) * rows / tasks: a row of W at a time, for every position (the
 * row stays in L1 while they use it). */
static void q8_task(void *arg, size_t t)
{
    const Q8Job *j = arg;
    size_t r0 = t * j->rows / j->tasks, r1 = (t + 1) * j->rows / j->tasks;
    for (size_t r = r0; r < r1; r++) {
        const int8_t *q = j->q + r * j->cols;
        const float *sc = j->scale + r * j->groups;
        float bias = j->b ? j->b[r] : 0.0f;
        for (size_t i = 0; i < j->n; i++)
            j->out[i * j->rows + r] = q8_row_dot(q, sc, j->in + i * j->cols, j->cols, j->group) + bias;
    }
}

void tfmcrt_linear_q8_ex(const TfmcrtExec *ex, float *out, const float *in, size_t n, const int8_t *q,
                         const float *scale, const float *b, size_t rows, size_t cols, size_t group)
{
    if (rows == 0 || n == 0) return;
    if (group == 0 || group > cols) group = cols ? cols : 1;
    Q8Job j = { out, in, scale, b, q, n, rows, cols, group, cols ? (cols + group - 1) / group : 0, 1 };
    j.tasks = tfmcrt_tasks(ex, rows, cols * n);
    tfmcrt_parallel_for(ex, j.tasks, q8_task, &j);
}
