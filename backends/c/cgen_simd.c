/* cgen_simd.c: what makes the C backend's file the SIMD backend's. The same kernel calls, written
 * by the same emitter (cgen.c), but into one self-contained file: the runtime's amalgamation
 * (scripts/amalgamate.py: every kernel static) pasted in, its kernels and the run function compiled
 * for the target through a target pragma, the dense weights packed at compile time in the order
 * the kernels read them, and a CPU check that NAME_init runs, compiled for the architecture's
 * baseline, so that a machine without the extensions gets an error naming the one it lacks rather
 * than "Illegal instruction". On any other architecture (or compiler) the same file builds as the
 * portable code: the pragmas and the check are behind #if on the target's macros.
 *
 * Why the kernels are not written again here with intrinsics: the runtime's hot kernels are
 * written once, in GNU vector C (sixteen-lane vectors, tfmcrt_simd.h) that GCC and clang compile
 * to each target's registers and fused multiply-adds; the library builds them for the baseline
 * and clones them per CPU, the amalgamation builds them for the target named here. One source of
 * the arithmetic, so the SIMD file and the library compute the same sums in the same order. */
#include <stdlib.h>

#include "cgen.h"
#include "tfmcrt_amalgamation.h"

static const SimdTarget targets[] = {
    { "avx512", "__x86_64__", "x86-64 with AVX-512 (F, BW, DQ, VL), AVX2 and FMA", "avx2,fma,avx512f,avx512bw,avx512dq,avx512vl",
      true },
    { "avx2", "__x86_64__", "x86-64 with AVX2 and FMA", "avx2,fma", false },
    { "neon", "__aarch64__", "AArch64 with NEON (Advanced SIMD, every AArch64 CPU has it)", "", false },
    { "baseline", NULL, "the architecture's baseline (whatever the compiler targets by default)", "", false },
};

const char simd_target_names[] = "avx512, avx2, neon, baseline or native";

/* Every extension of t's list this CPU has (x86: cpuid; elsewhere none are known). */
static bool cpu_has_all(const SimdTarget *t)
{
    char buf[128];
    const char *names[16];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", t->extensions);
    for (char *s = strtok(buf, ","); s && n < 16; s = strtok(NULL, ",")) names[n++] = s;
#if defined(__x86_64__)
    return tfmcrt_cpu_first_missing(names, n) == NULL;
#else
    return n == 0;
#endif
}

const SimdTarget *simd_target(const char *name)
{
    int n = (int)(sizeof targets / sizeof targets[0]);
    if (!strcmp(name, "native")) {
#if defined(__x86_64__)
        for (int i = 0; i < n; i++)
            if (targets[i].arch && !strcmp(targets[i].arch, "__x86_64__") && cpu_has_all(&targets[i])) return &targets[i];
#elif defined(__aarch64__)
        return simd_target("neon");
#endif
        return simd_target("baseline");
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(targets[i].name, name)) return &targets[i];
    return NULL;
}

/* P_SIMD: defined when the file is compiled where its target applies (the architecture, and a
 * compiler that takes target pragmas: GCC and clang). */
static void simd_macro(Cgen *c)
{
    const SimdTarget *t = c->o->target;
    char up[128];
    cgen_upper(c->P, up, sizeof up);
    if (!t->arch) return;
    fprintf(c->out,
            "/* %s_SIMD: this file was generated for %s (--target=%s); it is defined where\n"
            " * that applies. Anywhere else the same code builds for that machine's baseline. */\n"
            "#if defined(%s) && defined(__GNUC__)\n#define %s_SIMD 1\n#endif\n\n",
            up, t->describe, t->name, t->arch, up);
}

void cgen_prologue(Cgen *c)
{
    /* errno: the generated main reads numbers with strtod, as the command line does */
    if (c->o->main) fprintf(c->out, "#include <errno.h>\n");
    fprintf(c->out, "#include <stddef.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    if (!c->o->target) {
        fprintf(c->out, "#include \"tfmcrt.h\"\n\n");
        return;
    }
    /* every header the runtime includes, before any target pragma: a system header's inline
     * functions stay compiled for the baseline */
    fprintf(c->out, "#include <math.h>\n#include <stdbool.h>\n#include <stdint.h>\n");
    fprintf(c->out, "#if defined(__x86_64__) || defined(__i386__)\n#include <cpuid.h>\n#endif\n\n");
    simd_macro(c);
    fwrite(tfmcrt_amalgamation, 1, tfmcrt_amalgamation_kernels, c->out);
    fputc('\n', c->out);
}

/* The conditions of the target region, in the order begin and end test them. */
static void region_if(Cgen *c, const char *clang, const char *gcc)
{
    char up[128];
    cgen_upper(c->P, up, sizeof up);
    fprintf(c->out, "#if defined(%s_SIMD) && defined(__clang__)\n%s#elif defined(%s_SIMD)\n%s#endif\n", up, clang, up, gcc);
}

void cgen_target_begin(Cgen *c)
{
    const SimdTarget *t = c->o->target;
    if (!t) return;
    char up[128], clang[512], gcc[512];
    cgen_upper(c->P, up, sizeof up);
    fprintf(c->out,
            "/* ---------------------------------------------------------------- compiled for %s\n"
            " * From here to the end of %s_run: the runtime's kernels and the transformer, compiled for\n"
            " * %s%s. Multiply-adds fuse (as in the runtime library). */\n",
            t->name, c->P, t->describe, *t->extensions ? " through a target pragma" : "");
    if (*t->extensions) {
        snprintf(clang, sizeof clang,
                 "#pragma clang attribute push(__attribute__((target(\"%s\"))), apply_to = function)\n"
                 "#pragma clang fp contract(fast)\n", t->extensions);
        snprintf(gcc, sizeof gcc,
                 "#pragma GCC push_options\n#pragma GCC target(\"%s\")\n#pragma GCC optimize(\"fp-contract=fast\", \"ipa-cp-clone\")\n",
                 t->extensions);
    } else {
        snprintf(clang, sizeof clang, "#pragma clang fp contract(fast)\n");
        snprintf(gcc, sizeof gcc, "#pragma GCC push_options\n#pragma GCC optimize(\"fp-contract=fast\")\n");
    }
    if (t->arch) region_if(c, clang, gcc);
    fprintf(c->out, "#if defined(%s_SIMD)\n#define TFMCRT_WIDE %d /* the sixteen-lane kernels: a register holds %s */\n#endif\n",
            up, t->wide ? 1 : 0, t->wide ? "sixteen floats" : "fewer than sixteen floats");
    fputs(tfmcrt_amalgamation + tfmcrt_amalgamation_kernels, c->out);
    fputc('\n', c->out);
}

void cgen_target_end(Cgen *c)
{
    const SimdTarget *t = c->o->target;
    if (!t || !t->arch) return;
    fprintf(c->out, "/* ---------------------------------------------------------------- the baseline again */\n");
    if (*t->extensions) region_if(c, "#pragma clang attribute pop\n", "#pragma GCC pop_options\n");
    else region_if(c, "", "#pragma GCC pop_options\n");
    fputc('\n', c->out);
}

void cgen_emit_cpu_missing(Cgen *c)
{
    const SimdTarget *t = c->o->target;
    char up[128];
    cgen_upper(c->P, up, sizeof up);
    cgen_entry(c, "cpu_missing");
    if (!t) {
        /* the runtime library's own build (-march=native builds of it need more than the baseline) */
        fprintf(c->out, "{\n    return tfmcrt_cpu_missing();\n}\n\n");
        return;
    }
    if (!*t->extensions) {
        fprintf(c->out, "{\n    return NULL; /* the baseline: nothing to check */\n}\n\n");
        return;
    }
    int n = 1;
    for (const char *s = t->extensions; *s; s++) n += *s == ',';
    fprintf(c->out, "{\n#if defined(%s_SIMD)\n    static const char *const extensions[%d] = { \"", up, n);
    for (const char *s = t->extensions; *s; s++) {
        if (*s == ',') fputs("\", \"", c->out);
        else fputc(*s, c->out);
    }
    fprintf(c->out, "\" };\n    return tfmcrt_cpu_first_missing(extensions, %d);\n#else\n    return NULL;\n#endif\n}\n\n", n);
}

void cgen_emit_sizes(Cgen *c)
{
    char up[128];
    cgen_upper(c->P, up, sizeof up);
    cgen_entry(c, "context_bytes");
    fprintf(c->out, "{\n    return sizeof(%s_ctx);\n}\n\n", c->P);
    cgen_entry(c, "arena_bytes");
    fprintf(c->out, "{\n    return %s_ARENA_BYTES;\n}\n\n", up);
}

void cgen_emit_init_check(Cgen *c)
{
    fprintf(c->out, "    if (%s_cpu_missing()) return -3;\n", c->P);
}

void cgen_emit_init_failure(Cgen *c, const char *status)
{
    const SimdTarget *t = c->o->target;
    fprintf(c->out, "        if (%s == -3)\n            fprintf(stderr, \"%s: ", status, c->P);
    if (t)
        fprintf(c->out, "compiled for %s (tfmc --backend=simd --target=%s), but this CPU lacks %%s; generate it "
                        "again with --target=native on this machine, or with --backend=c\\n\", %s_cpu_missing());\n",
                t->name, t->name, c->P);
    else
        fprintf(c->out, "the tfmc runtime it is linked with was compiled for more than this CPU has: it lacks %%s; "
                        "rebuild the runtime without -march\\n\", %s_cpu_missing());\n", c->P);
}

const char *cgen_build_line(Cgen *c)
{
    const CgenOptions *o = c->o;
    const char *w = o->weights_name ? o->weights_name : "";
    const char *sp = o->weights_name ? " " : "";
    if (!o->target) return arena_printf(o->arena, "cc THIS_FILE.c%s%s $(tfmc config --cflags --libs)", sp, w);
    return arena_printf(o->arena,
                        "cc -O2 THIS_FILE.c%s%s -lm (nothing else: the runtime is inside, its kernels\n"
                        " * compiled for %s; one thread unless NAME_set_exec is given a parallel_for)",
                        sp, w, o->target->name);
}
