/* tfmcrt.c: reference kernels of the tfmc runtime. */
#include <math.h>

#include "tfmcrt.h"

const char *tfmcrt_version(void) { return TFMCRT_VERSION; }

void tfmcrt_matvec(float *y, const float *w, const float *x, const float *b, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = w + r * cols;
        /* Four independent sums: the compiler vectorises them without -ffast-math. */
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t c = 0;
        for (; c + 4 <= cols; c += 4) {
            s0 += row[c] * x[c];
            s1 += row[c + 1] * x[c + 1];
            s2 += row[c + 2] * x[c + 2];
            s3 += row[c + 3] * x[c + 3];
        }
        for (; c < cols; c++) s0 += row[c] * x[c];
        y[r] = (s0 + s1) + (s2 + s3) + (b ? b[r] : 0.0f);
    }
}

void tfmcrt_softmax(float *x, size_t n)
{
    if (n == 0) return;
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    for (size_t i = 0; i < n; i++) x[i] /= sum;
}
