/* sample.c: choosing the next token from logits: greedy, or temperature, top-k and top-p (nucleus)
 * sampling with a seeded generator. Every step is in a fixed order (candidates sorted by logit, then
 * id; sums in double), so the same logits, options and state give the same token on every machine. */
#include <math.h>
#include <stdbool.h>

#include "tfmc.h"

/* splitmix64: a seed spread over the state's bits */
uint64_t tfmc_sampler_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 1;
}

/* xorshift64*: a uniform double in [0, 1) from 53 bits */
static double uniform(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

/* Candidates in order: the larger logit first, the smaller id of equal ones. */
static bool before(const float *l, int i, int j) { return l[i] > l[j] || (l[i] == l[j] && i < j); }

/* Heap sort by `before` (no qsort: its comparator could not see the logits without a global). */
static void sift(const float *l, int *v, size_t at, size_t n)
{
    for (;;) {
        size_t c = 2 * at + 1;
        if (c >= n) return;
        if (c + 1 < n && before(l, v[c], v[c + 1])) c++; /* a heap with the last in order on top */
        if (!before(l, v[at], v[c])) return;
        int t = v[at];
        v[at] = v[c];
        v[c] = t;
        at = c;
    }
}

static void sort_candidates(const float *l, int *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) sift(l, v, i, n);
    for (size_t end = n; end > 1; end--) {
        int t = v[0];
        v[0] = v[end - 1];
        v[end - 1] = t;
        sift(l, v, 0, end - 1);
    }
}

/* Keep the k best of cand[0..n) at its front, in order: a bounded insertion (k is small). */
static size_t top_k(const float *l, int *cand, size_t n, size_t k)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int id = cand[i];
        if (kept == k && !(l[id] > l[cand[k - 1]] || (l[id] == l[cand[k - 1]] && id < cand[k - 1]))) continue;
        size_t j = kept < k ? kept++ : k - 1;
        while (j > 0 && (l[cand[j - 1]] < l[id] || (l[cand[j - 1]] == l[id] && cand[j - 1] > id))) {
            cand[j] = cand[j - 1];
            j--;
        }
        cand[j] = id;
    }
    return kept;
}

int tfmc_sample(const float *logits, size_t n, const TfmcSampler *s, uint64_t *state, int *work)
{
    if (n == 0) return -1;
    if (!s || s->temperature == 0) return tfmc_argmax(logits, n);
    if (!(s->temperature > 0) || !isfinite(s->temperature) || s->top_k < 0 || !(s->top_p > 0 && s->top_p <= 1))
        return -1;
    float max = logits[0];
    for (size_t i = 1; i < n; i++)
        if (logits[i] > max) max = logits[i];
    double inv_t = 1.0 / s->temperature;
    size_t m = 0;
    if (s->top_p < 1 && s->top_k == 0) {
        /* a candidate below (1 - p) / (n - 1) of the largest weight cannot be needed to reach p
         * (llama2.c's cut): it keeps the sort short */
        double cut = log((1.0 - s->top_p) / (double)(n > 1 ? n - 1 : 1));
        for (size_t i = 0; i < n; i++)
            if ((logits[i] - max) * inv_t >= cut) work[m++] = (int)i;
    } else {
        for (size_t i = 0; i < n; i++) work[m++] = (int)i;
    }
    if (s->top_k > 0 && (size_t)s->top_k < m) {
        m = top_k(logits, work, m, (size_t)s->top_k);
    } else if (s->top_p < 1) {
        sort_candidates(logits, work, m);
    }
    double total = 0;
    for (size_t i = 0; i < m; i++) total += exp((logits[work[i]] - max) * inv_t);
    if (s->top_p < 1) {
        /* the smallest prefix (in order) whose weight reaches p of the whole */
        double want = s->top_p * total, sum = 0;
        size_t keep = 0;
        while (keep < m && sum < want) sum += exp((logits[work[keep++]] - max) * inv_t);
        m = keep ? keep : 1;
        total = sum;
    }
    double r = uniform(state) * total, acc = 0;
    for (size_t i = 0; i < m; i++) {
        acc += exp((logits[work[i]] - max) * inv_t);
        if (r < acc) return work[i];
    }
    return work[m - 1];
}
