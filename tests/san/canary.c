/* A program with one deliberate sanitizer finding per mode, for tests/san/check_san.py: in a
 * sanitizer build, `meson test` (with no --setup: the `san` setup is the default there) must turn
 * each of them into a failing exit status (99), or a real finding in a test would pass. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile kept;

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "ok";
    if (!strcmp(mode, "ok")) {
        puts("ok");
        return 0;
    }
    if (!strcmp(mode, "ub")) {           /* UBSan: signed integer overflow */
        volatile int big = INT_MAX;
        int sum = big + 1;
        printf("%d\n", sum);
        return 0;
    }
    if (!strcmp(mode, "heap")) {         /* ASan: heap buffer overflow */
        volatile size_t n = 8;
        char *p = malloc(n);
        if (!p) return 1;
        p[n] = 1;
        printf("%d\n", p[0]);
        free(p);
        return 0;
    }
    if (!strcmp(mode, "leak")) {         /* LeakSanitizer: memory never freed */
        kept = malloc(64);
        kept = NULL;
        puts("leaked");
        return 0;
    }
    fprintf(stderr, "usage: canary ok|ub|heap|leak\n");
    return 2;
}
