/* gpt2_small.h: the GPT-2-small-shaped model (random weights) that bench_models and bench_threads
 * both measure, so that their numbers are of one model. */
#ifndef TFMC_BENCH_GPT2_SMALL_H
#define TFMC_BENCH_GPT2_SMALL_H

static const char gpt2_small[] =
    "model gpt2_small {\n"
    "  vocab 50257; max_len 256; dim 768;\n"
    "  init random(seed 1);\n"
    "  embed token, position learned;\n"
    "  block x 12 {\n"
    "    attention heads 12, causal, norm layernorm(eps 1e-5);\n"
    "    mlp hidden 3072, act gelu_tanh, norm layernorm(eps 1e-5);\n"
    "  }\n"
    "  norm layernorm(eps 1e-5);\n"
    "  unembed tied;\n"
    "}\n";

#endif
