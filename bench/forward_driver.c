/* forward_driver.c: times a generated RASP model's forward pass at max_len. Built by bench/rasp.sh
 * with -DGEN="file.c" -DP=name -DUP=NAME; includes the generated file directly. */
#include <time.h>

#include GEN

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

int main(void)
{
    static float arena[CAT(UP, _ARENA_FLOATS)];
    CAT(P, _ctx) ctx;
    int tokens[CAT(UP, _MAX_LEN)], i, r, reps = 20000;
    static CAT(P, _out_t) out[CAT(UP, _MAX_LEN)];
    struct timespec t0, t1;
    double ns;
    if (CAT(P, _init)(&ctx, arena, sizeof arena) != 0) return 1;
    for (i = 0; i < CAT(UP, _MAX_LEN); i++) tokens[i] = (i * 7 + 3) % CAT(UP, _VOCAB);
    CAT(P, _forward)(&ctx, tokens, CAT(UP, _MAX_LEN), out);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (r = 0; r < reps; r++) CAT(P, _forward)(&ctx, tokens, CAT(UP, _MAX_LEN), out);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / reps;
    printf("%.2f\n", ns / 1e3);
    return 0;
}
