/* bench_rasp.c: for each RASP example, the time to compile it to C (parse, check, lower to
 * weights, write the C), the compiled model's size, and the in-process transformer's time per
 * forward pass at max_len (the reference the generated code is compared with by bench/rasp.sh). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tfmc.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The first vocabulary value of a program, found by trying the tokens of its vocab line. */
static int first_tokens(const TfmcProgram *p, const char *path, TfmcValue *tokens, size_t n)
{
    FILE *f = fopen(path, "r");
    char line[4096], word[256];
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        char *v = strstr(line, "vocab");
        if (!v || line[0] == '#') continue;
        char *b = strchr(v, '{');
        if (!b) continue;
        b++;
        /* first item: a string, an integer or the start of a range */
        size_t k = 0;
        while (*b == ' ' || *b == '"') b++;
        while (*b && *b != '"' && *b != ',' && *b != '}' && *b != '.' && k + 1 < sizeof word) word[k++] = *b++;
        word[k] = '\0';
        fclose(f);
        char err[256], *words[4096];
        for (size_t i = 0; i < n; i++) words[i] = word;
        return tfmc_parse_words(p, words, n, tokens, n, err, sizeof err) == TFMC_OK ? 0 : -1;
    }
    fclose(f);
    return -1;
}

int main(int argc, char **argv)
{
    printf("%-16s %9s %6s %5s %8s %8s %9s %10s %12s\n", "program", "compile", "layers", "heads", "residual",
           "params", "nonzero", "arena", "run us/fwd");
    int status = 0;
    for (int a = 1; a < argc; a++) {
        double best = 1e9;
        TfmcModelInfo info = { 0 };
        const char *name = "?";
        for (int rep = 0; rep < 20; rep++) {
            double t0 = now_ms();
            TfmcContext *ctx = tfmc_context_new(NULL);
            const TfmcProgram *p;
            FILE *null = fopen("/dev/null", "w");
            if (tfmc_load_file(ctx, argv[a]) != TFMC_OK || tfmc_find_program(ctx, NULL, &p) != TFMC_OK ||
                tfmc_emit_c(ctx, p, NULL, null) != TFMC_OK) {
                tfmc_print_diagnostics(ctx, stderr);
                status = 1;
            }
            fclose(null);
            double t = now_ms() - t0;
            if (t < best) best = t;
            if (rep == 0 && status == 0) {
                tfmc_model_info(ctx, p, &info);
                static char names[64][64];
                snprintf(names[a % 64], 64, "%s", tfmc_program_name(p));
                name = names[a % 64];
            }
            tfmc_context_free(ctx);
        }
        /* the in-process transformer (graph interpreter) at max_len */
        TfmcContext *ctx = tfmc_context_new(NULL);
        const TfmcProgram *p;
        double us = -1;
        if (tfmc_load_file(ctx, argv[a]) == TFMC_OK && tfmc_find_program(ctx, NULL, &p) == TFMC_OK) {
            size_t n = (size_t)tfmc_program_max_len(p);
            TfmcValue tokens[4096], out[4096];
            if (first_tokens(p, argv[a], tokens, n) == 0) {
                int reps = 2000;
                tfmc_run(ctx, p, tokens, n, out);
                double t0 = now_ms();
                for (int r = 0; r < reps; r++) tfmc_run(ctx, p, tokens, n, out);
                us = (now_ms() - t0) * 1e3 / reps;
            }
        }
        tfmc_context_free(ctx);
        printf("%-16s %7.2fms %6d %5d %8d %8ld %9ld %9zuB %12.2f\n", name, best, info.layers, info.heads, info.residual,
               info.params, info.nonzeros, info.arena_bytes, us);
    }
    return status;
}
