/* bench_load: how long a Hugging Face checkpoint takes from its folder to the first token, against
 * the floor any loader that touches every weight has, measured in the same run.
 *
 *   bench_load [-r REPS] DIR
 *
 * Each repetition, in a fresh context: `tfmc import DIR` (config.json to a .tfm, written into DIR's
 * parent's temporary file), load and check the .tfm (which reads or maps the weights), compile
 * (graph, passes, memory plan), make a session and decode one token. The reference: one pass
 * reading every byte of model.safetensors through a fresh memory mapping (a sum of its words), the
 * least work of a loader that checks or converts each weight. The page cache is warm for both (the
 * first repetition is not counted). Prints the median of each phase in ms. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tfmc.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One pass over the file's bytes through a new mapping; returns ms, and the sum in *sink. */
static double read_pass(const char *path, uint64_t *sink)
{
    double t0 = now_ms();
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(path);
        exit(1);
    }
    size_t n = (size_t)st.st_size / 8;
    const uint64_t *w = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (w == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    uint64_t s[4] = { 0, 0, 0, 0 };
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; k++) s[k] += w[i + k];
    for (; i < n; i++) s[0] += w[i];
    munmap((void *)w, (size_t)st.st_size);
    *sink += s[0] + s[1] + s[2] + s[3];
    return now_ms() - t0;
}

static void fail(TfmcContext *ctx, const char *what)
{
    fprintf(stderr, "bench_load: %s failed\n", what);
    if (ctx) tfmc_print_diagnostics(ctx, stderr);
    exit(1);
}

int main(int argc, char **argv)
{
    int reps = 7, a = 1;
    if (a + 1 < argc && !strcmp(argv[a], "-r")) {
        reps = atoi(argv[a + 1]);
        a += 2;
    }
    if (a >= argc || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: bench_load [-r REPS] DIR\n");
        return 2;
    }
    const char *dir = argv[a];
    char tfm[4096], weights[4096];
    snprintf(tfm, sizeof tfm, "%s/bench_load.tfm", dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    enum { IMPORT, LOAD, COMPILE, SESSION, TOKEN, TOTAL, FLOOR, PHASES };
    static const char *const names[] = { "import", "load+check", "compile", "session", "first token", "total", "read floor" };
    double t[PHASES][100];
    uint64_t sink = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = now_ms();
        TfmcContext *ctx = tfmc_context_new(NULL);
        FILE *out = fopen(tfm, "w");
        if (!out || tfmc_import(ctx, dir, tfm, out) != TFMC_OK) fail(ctx, "import");
        fclose(out);
        double t1 = now_ms();
        const TfmcProgram *p;
        if (tfmc_load_file(ctx, tfm) != TFMC_OK || tfmc_find_program(ctx, NULL, &p) != TFMC_OK) fail(ctx, "load");
        double t2 = now_ms();
        if (tfmc_compile(ctx, p) != TFMC_OK) fail(ctx, "compile");
        double t3 = now_ms();
        TfmcSession *s;
        if (tfmc_session_new_threads(ctx, p, 1, &s) != TFMC_OK) fail(ctx, "session");
        double t4 = now_ms();
        size_t vocab = (size_t)tfmc_model_vocab(p);
        float *logits = malloc(sizeof(float) * vocab);
        if (!logits || tfmc_session_decode(s, 1, logits) != TFMC_OK) fail(ctx, "decode");
        sink += (uint64_t)tfmc_argmax(logits, vocab);
        double t5 = now_ms();
        free(logits);
        tfmc_session_free(s);
        tfmc_context_free(ctx);
        double floor_ms = read_pass(weights, &sink);
        if (r < 0) continue; /* the page cache warm */
        double v[PHASES] = { t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0, floor_ms };
        for (int k = 0; k < PHASES; k++) t[k][r] = v[k];
    }
    unlink(tfm);
    printf("%s: median of %d (checksum %llu)\n", dir, reps, (unsigned long long)(sink & 0xFF));
    double med[PHASES];
    for (int k = 0; k < PHASES; k++) {
        med[k] = median(t[k], reps);
        printf("  %-12s %8.1f ms\n", names[k], med[k]);
    }
    printf("  total / read floor: %.2f\n", med[TOTAL] / med[FLOOR]);
    return 0;
}
