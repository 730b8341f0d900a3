/* tfmcrt_sample.c: choosing the next token from logits: greedy, or temperature, top-k and top-p
 * (nucleus) sampling with a seeded generator (splitmix64 seed, xorshift64* draws). The one sampler:
 * the library's tfmc_sample and the generated `--main` both call it, so `tfmc run` and a compiled
 * model draw the same tokens. Every step is in a fixed order (candidates sorted by logit, then id;
 * sums in double), so the same logits, options and state give the same token on every machine;
 * the steps are specified in docs/models.md ("Sampling"). */
#include <math.h>
#include <stdint.h>

#include "tfmcrt.h"

int tfmcrt_argmax(const float *v, size_t n)
{
    size_t best = 0, i;
    for (i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return (int)best;
}

/* splitmix64: a seed spread over the state's bits (never 0, a fixed point of xorshift) */
uint64_t tfmcrt_sample_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 1;
}

/* xorshift64*: a uniform double in [0, 1) from 53 bits */
static double sample_uniform(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

/* Candidates in order: the larger logit first, the smaller id of equal ones. */
static int sample_before(const float *l, int i, int j) { return l[i] > l[j] || (l[i] == l[j] && i < j); }

/* Heap sort by sample_before (no qsort: its comparator could not see the logits without a global). */
static void sample_sift(const float *l, int *v, size_t at, size_t n)
{
    for (;;) {
        size_t c = 2 * at + 1;
        int t;
        if (c >= n) return;
        if (c + 1 < n && sample_before(l, v[c], v[c + 1])) c++; /* a heap with the last in order on top */
        if (!sample_before(l, v[at], v[c])) return;
        t = v[at];
        v[at] = v[c];
        v[c] = t;
        at = c;
    }
}

static void sample_sort(const float *l, int *v, size_t n)
{
    size_t i, end;
    for (i = n / 2; i-- > 0;) sample_sift(l, v, i, n);
    for (end = n; end > 1; end--) {
        int t = v[0];
        v[0] = v[end - 1];
        v[end - 1] = t;
        sample_sift(l, v, 0, end - 1);
    }
}

/* Keep the k best of cand[0..n) at its front, in order: a bounded insertion (k is small). */
static size_t sample_top_k(const float *l, int *cand, size_t n, size_t k)
{
    size_t kept = 0, i;
    for (i = 0; i < n; i++) {
        int id = cand[i];
        size_t j;
        if (kept == k && !sample_before(l, id, cand[k - 1])) continue;
        j = kept < k ? kept++ : k - 1;
        while (j > 0 && sample_before(l, id, cand[j - 1])) {
            cand[j] = cand[j - 1];
            j--;
        }
        cand[j] = id;
    }
    return kept;
}

int tfmcrt_sample(const float *logits, size_t n, float temperature, int top_k, float top_p, uint64_t *state,
                  int *work)
{
    float max;
    double inv_t, total = 0, r, acc = 0;
    size_t m = 0, i;
    if (n == 0) return -1;
    if (temperature == 0) return tfmcrt_argmax(logits, n);
    if (!(temperature > 0) || !isfinite(temperature) || top_k < 0 || !(top_p > 0 && top_p <= 1)) return -1;
    max = logits[0];
    for (i = 1; i < n; i++)
        if (logits[i] > max) max = logits[i];
    inv_t = 1.0 / temperature;
    if (top_p < 1 && top_k == 0) {
        /* a candidate below (1 - p) / (n - 1) of the largest weight cannot be needed to reach p
         * (llama2.c's cut): it keeps the sort short */
        double cut = log((1.0 - top_p) / (double)(n > 1 ? n - 1 : 1));
        for (i = 0; i < n; i++)
            if ((logits[i] - max) * inv_t >= cut) work[m++] = (int)i;
    } else {
        for (i = 0; i < n; i++) work[m++] = (int)i;
    }
    if (top_k > 0 && (size_t)top_k < m) {
        m = sample_top_k(logits, work, m, (size_t)top_k);
    } else if (top_p < 1) {
        sample_sort(logits, work, m);
    }
    for (i = 0; i < m; i++) total += exp((logits[work[i]] - max) * inv_t);
    if (top_p < 1) {
        /* the smallest prefix (in order) whose weight reaches p of the whole */
        double want = top_p * total, sum = 0;
        size_t keep = 0;
        while (keep < m && sum < want) sum += exp((logits[work[keep++]] - max) * inv_t);
        m = keep ? keep : 1;
        total = sum;
    }
    r = sample_uniform(state) * total;
    for (i = 0; i < m; i++) {
        acc += exp((logits[work[i]] - max) * inv_t);
        if (r < acc) return work[i];
    }
    return work[m - 1];
}
