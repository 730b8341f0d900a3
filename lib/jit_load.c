/* jit_load.c: the LLVM JIT backend, opened on demand. The JIT is a module of its own
 * (backends/llvm/, tfmc_llvm.so), so that only a program that asks for it pays for loading
 * libLLVM. The module is looked for at $TFMC_LLVM_MODULE, else beside the build tree this library
 * was built in when the running code comes from that tree, else in the installed libdir. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib.h"
#include "tfmc_config.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const JitApi *api;
static char why[512]; /* why the module is not there, once it has been looked for */

#if TFMC_HAVE_LLVM
/* Where the module should be: the build tree's when this code runs from it. */
static const char *module_path(void)
{
    const char *env = getenv("TFMC_LLVM_MODULE");
    if (env && *env) return env;
    Dl_info info;
    const char *root = TFMC_BUILD_ROOT;
    size_t len = strlen(root);
    char where[PATH_MAX];
    /* the shared library (loaded by any path, relative too), or a program linked with the static
     * one (the tfmc command): where that file really is */
    if (dladdr((void *)(size_t)&api, &info) && info.dli_fname && realpath(info.dli_fname, where) &&
        !strncmp(where, root, len) && where[len] == '/')
        return TFMC_LLVM_MODULE_BUILD;
    ssize_t n = readlink("/proc/self/exe", where, sizeof where - 1);
    if (n > 0) where[n] = '\0';
    if (n > 0 && (size_t)n > len && !strncmp(where, root, len) && where[len] == '/') return TFMC_LLVM_MODULE_BUILD;
    return TFMC_LLVM_MODULE_INSTALLED;
}
#endif

const JitApi *lib_jit_api(const char **error)
{
    pthread_mutex_lock(&lock);
    if (!api && !why[0]) {
#if TFMC_HAVE_LLVM
        const char *path = module_path();
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        const JitApi *a = h ? (const JitApi *)dlsym(h, TFMC_JIT_SYMBOL) : NULL;
        if (!h)
            snprintf(why, sizeof why, "the llvm backend's module does not load: %s", dlerror());
        else if (!a || a->version != TFMC_JIT_VERSION)
            snprintf(why, sizeof why, "`%s` is not this version's llvm backend (rebuild and reinstall tfmc)", path);
        else
            api = a; /* the module stays open for the process: compiled code lives in it */
#else
        snprintf(why, sizeof why, "the llvm backend is not in this build (it needs LLVM 19: Debian's llvm-19-dev, "
                                  "then `meson setup --reconfigure build`; -Dllvm=enabled makes it required)");
#endif
    }
    const JitApi *a = api;
    pthread_mutex_unlock(&lock);
    if (!a && error) *error = why;
    return a;
}
