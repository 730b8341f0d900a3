/* tokenize.c: loading tokenizer.json files into the context's diagnostics (the tokenizer layer
 * itself knows nothing of contexts). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib.h"
#include "tokenizer.h"

/* A tokenizer.json larger than this is refused before it is read (Gemma 3's, the largest in
 * use, is 33 MB). */
#define TOKENIZER_MAX_BYTES ((size_t)1 << 30)

static TfmcStatus parse(TfmcContext *ctx, const char *path, const char *text, size_t len, TfmcTokenizer **out)
{
    TokenizerError err;
    *out = tokenizer_parse(text, len, &ctx->alloc, &err);
    if (*out) return TFMC_OK;
    if (err.nomem) return TFMC_ERR_NOMEM;
    SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
    f->path = arena_strdup(&ctx->arena, path);
    SrcLoc loc = { 0, 0, 0, 0 };
    if (err.has_place) {
        /* the text, for the caret under the place (only when there is an error to show) */
        f->text = arena_strndup(&ctx->arena, text, len);
        f->len = len;
        loc = (SrcLoc){ err.line, err.column, err.line, err.column };
    }
    diag_error(&ctx->diags, f, loc, "%s", err.message);
    if (err.hint[0]) diag_hint(&ctx->diags, "%s", err.hint);
    return TFMC_ERR_INPUT;
}

static TfmcStatus load(TfmcContext *ctx, const char *path, TfmcTokenizer **out)
{
    SrcLoc none = { 0, 0, 0, 0 };
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    struct stat sb;
    const char *why = NULL;
    if (fd < 0) why = strerror(errno);
    else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) why = "not a regular file";
    else if ((size_t)sb.st_size > TOKENIZER_MAX_BYTES) why = "larger than the 1 GiB a tokenizer.json may have";
    if (why) {
        if (fd >= 0) close(fd);
        SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
        f->path = arena_strdup(&ctx->arena, path);
        diag_error(&ctx->diags, f, none, "cannot read the tokenizer: %s", why);
        return TFMC_ERR_IO;
    }
    size_t len = (size_t)sb.st_size;
    const char *text = "";
    void *map = NULL;
    if (len) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
            f->path = arena_strdup(&ctx->arena, path);
            diag_error(&ctx->diags, f, none, "cannot map the tokenizer: %s", strerror(errno));
            return TFMC_ERR_IO;
        }
        text = map;
    }
    close(fd);
    /* a recovery point of our own: the mapping is released whatever happens */
    jmp_buf here, *outer = ctx->arena.on_oom;
    ctx->arena.on_oom = &here;
    if (setjmp(here)) {
        ctx->arena.on_oom = outer;
        if (map) munmap(map, len);
        longjmp(*outer, 1);
    }
    TfmcStatus status = parse(ctx, path, text, len, out);
    ctx->arena.on_oom = outer;
    if (map) munmap(map, len);
    return status;
}

TfmcStatus tfmc_tokenizer_load(TfmcContext *ctx, const char *path, TfmcTokenizer **out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, load(ctx, path, out));
}

TfmcStatus tfmc_tokenizer_load_string(TfmcContext *ctx, const char *name, const char *json, size_t len,
                                      TfmcTokenizer **out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, parse(ctx, name ? name : "<string>", json, len, out));
}

/* The most parsing one tokenizer.json takes: the high-water mark of a fixed buffer that grows
 * until the parse fits. The generated code runs the same parser over the same allocator, so the
 * mark is exact for it. */
static TfmcStatus measure(TfmcContext *ctx, const char *text, size_t len, size_t *load_bytes)
{
    size_t cap = len * 16 + ((size_t)16 << 20);
    for (;;) {
        void *buf = ctx->alloc.realloc(ctx->alloc.ud, NULL, cap);
        if (!buf) return TFMC_ERR_NOMEM;
        Bump b;
        bump_init(&b, buf, cap);
        TfmcAllocator al = bump_allocator(&b);
        TokenizerError err;
        TfmcTokenizer *t = tokenizer_parse(text, len, &al, &err);
        ctx->alloc.realloc(ctx->alloc.ud, buf, 0); /* (t lived in buf: nothing to free) */
        if (t) {
            /* every allocation is aligned within the buffer; the buffer itself may need that much more */
            *load_bytes = b.high + sizeof(ArenaAlign);
            return TFMC_OK;
        }
        if (!err.nomem || cap > ((size_t)1 << 34)) return err.nomem ? TFMC_ERR_NOMEM : TFMC_ERR_INPUT;
        cap *= 2;
    }
}

TfmcStatus tokenizer_embed(TfmcContext *ctx, const char *path, const char **json, size_t *len, size_t *load_bytes)
{
    TfmcTokenizer *t;
    TfmcStatus st = tfmc_tokenizer_load(ctx, path, &t);
    if (st != TFMC_OK) return st;
    tfmc_tokenizer_free(t);
    FILE *f = fopen(path, "rb");
    SrcLoc none = { 0, 0, 0, 0 };
    char *text = NULL;
    size_t n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            text = arena_alloc(&ctx->arena, (size_t)size + 1);
            n = fread(text, 1, (size_t)size, f);
            if (n != (size_t)size) text = NULL;
            else text[n] = '\0';
        }
    }
    if (f) fclose(f);
    if (!text) {
        SrcFile *sf = ARENA_NEW(&ctx->arena, SrcFile);
        sf->path = arena_strdup(&ctx->arena, path);
        diag_error(&ctx->diags, sf, none, "cannot read the tokenizer: %s", strerror(errno));
        return TFMC_ERR_IO;
    }
    *json = text;
    *len = n;
    return measure(ctx, text, n, load_bytes);
}
