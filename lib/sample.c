/* sample.c: choosing the next token from logits, the library's face of the runtime's sampler
 * (runtime/tfmcrt_sample.c): one implementation of the arithmetic, shared with the generated
 * `--main`, so that `tfmc run` and a compiled model draw the same tokens for the same seed. */
#include "tfmc.h"
#include "tfmcrt.h"

uint64_t tfmc_sampler_seed(uint64_t seed) { return tfmcrt_sample_seed(seed); }

int tfmc_sample(const float *logits, size_t n, const TfmcSampler *s, uint64_t *state, int *work)
{
    if (n == 0) return -1;
    if (!s) return tfmcrt_argmax(logits, n);
    return tfmcrt_sample(logits, n, s->temperature, s->top_k, s->top_p, state, work);
}
