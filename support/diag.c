/* diag.c: collecting diagnostics and printing them caret-style under the source line. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* A message formatted into buf (cap bytes), or into the arena when it is longer. Duplicates are
 * compared before anything is copied, so a repeated error costs no memory. */
static const char *vformat_local(Arena *a, char *buf, size_t cap, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(buf, cap, fmt, ap2);
    va_end(ap2);
    if (n < 0) return "(unprintable message)";
    if ((size_t)n < cap) return buf;
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

/* Append an item with the file its source line comes from. Both arrays grow before either
 * changes, so an allocation failure leaves the list as it was. */
static void add_item(DiagList *d, const SrcFile *f, TfmcDiagnostic item)
{
    if (d->n >= d->cap) {
        int cap = d->cap;
        TfmcDiagnostic *items = arena_grow(d->arena, d->items, &cap, d->n + 1, sizeof *items);
        const SrcFile **files = ARENA_ARRAY(d->arena, const SrcFile *, cap);
        if (d->files) memcpy(files, d->files, sizeof(*files) * (size_t)d->n);
        d->items = items;
        d->files = files;
        d->cap = cap;
    }
    d->items[d->n] = item;
    d->files[d->n] = f;
    d->n++;
}

static void vreport(DiagList *d, const SrcFile *f, SrcLoc loc, bool warning, const char *fmt, va_list ap)
{
    /* Past the limit, one last error says so and the rest are dropped (a file of garbage would
     * otherwise give one error per byte, each printing its line). */
    if (d->n >= DIAG_MAX_ERRORS) {
        if (d->n == DIAG_MAX_ERRORS) {
            TfmcDiagnostic last = { 0 };
            last.file = f ? f->path : NULL;
            last.message = arena_printf(d->arena, "too many errors: only the first %d are shown", DIAG_MAX_ERRORS);
            add_item(d, f, last);
            d->errors++;
        }
        d->dropped = true;
        return;
    }
    char buf[512];
    const char *msg = vformat_local(d->arena, buf, sizeof buf, fmt, ap);
    /* A def expanded at several call sites reports its own errors once; a long-lived context fed
     * the same bad input again keeps one message. */
    for (int i = 0; i < d->n; i++) {
        const TfmcDiagnostic *o = &d->items[i];
        if (o->line == loc.first_line && o->column == loc.first_column && d->files[i] == f &&
            o->warning == warning && strcmp(o->message, msg) == 0) {
            d->dropped = true;
            return;
        }
    }
    TfmcDiagnostic item = { 0 };
    item.file = f ? f->path : NULL;
    item.line = loc.first_line;
    item.column = loc.first_column;
    item.end_line = loc.last_line;
    item.end_column = loc.last_column;
    item.warning = warning;
    item.message = msg == buf ? arena_strdup(d->arena, buf) : msg;
    add_item(d, f, item);
    d->dropped = false;
    if (!warning) d->errors++;
}

void diag_error(DiagList *d, const SrcFile *f, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(d, f, loc, false, fmt, ap);
    va_end(ap);
}

void diag_warning(DiagList *d, const SrcFile *f, SrcLoc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(d, f, loc, true, fmt, ap);
    va_end(ap);
}

void diag_hint(DiagList *d, const char *fmt, ...)
{
    if (d->n == 0 || d->dropped) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    const char *msg = vformat_local(d->arena, buf, sizeof buf, fmt, ap);
    va_end(ap);
    d->items[d->n - 1].hint = msg == buf ? arena_strdup(d->arena, buf) : msg;
}

void diag_hint_at(DiagList *d, int index, const char *fmt, ...)
{
    if (index < 0 || index >= d->n) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    const char *msg = vformat_local(d->arena, buf, sizeof buf, fmt, ap);
    va_end(ap);
    d->items[index].hint = msg == buf ? arena_strdup(d->arena, buf) : msg;
}

void diag_clear(DiagList *d)
{
    d->items = NULL;
    d->files = NULL;
    d->n = d->cap = d->errors = 0;
    d->dropped = false;
}

/* The text of line `line` (1-based) of f, and its length. */
static const char *source_line(const SrcFile *f, int line, size_t *len)
{
    const char *p = f->text, *end = f->text + f->len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    if (p > end || (p == end && line > 1 && p[-1] == '\n')) return NULL;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    if (*len > 0 && p[*len - 1] == '\r') (*len)--;
    return p;
}

/* Lines longer than this many characters are shown as a window around the column. */
#define SHOW_WIDTH 100

/* The byte offset of character `index` (0-based) of text[0..len); len when past the end. */
static size_t char_offset(const char *text, size_t len, int index)
{
    size_t i = 0;
    for (int k = 0; i < len; i++) {
        if (utf8_continuation((unsigned char)text[i])) continue;
        if (k++ == index) return i;
    }
    return len;
}

static int char_count(const char *text, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++) n += !utf8_continuation((unsigned char)text[i]);
    return n;
}

/* The source line, then a caret under the column (columns count characters) and tildes under the
 * rest of the range. A long line is cut to a window around the column, marked with `...`. */
static void print_source(const TfmcDiagnostic *dg, const char *text, size_t len, FILE *out)
{
    int nchars = char_count(text, len);
    int col = dg->column < 1 ? 1 : dg->column; /* 1-based; may be one past the end */
    int first = 0, last = nchars;              /* the characters shown: [first, last) */
    if (nchars > SHOW_WIDTH) {
        first = col - 1 - SHOW_WIDTH / 2;
        if (first > nchars - SHOW_WIDTH) first = nchars - SHOW_WIDTH;
        if (first < 0) first = 0;
        last = first + SHOW_WIDTH;
    }
    size_t from = char_offset(text, len, first), to = char_offset(text, len, last);
    const char *cut = first > 0 ? "..." : "";
    fprintf(out, "%s%.*s%s\n", cut, (int)(to - from), text + from, last < nchars ? "..." : "");
    /* Copy tabs so the caret lines up whatever the tab width. */
    fputs(first > 0 ? "   " : "", out);
    size_t at = from;
    for (int c = first; c < col - 1; c++) {
        if (at < len) {
            fputc(text[at] == '\t' ? '\t' : ' ', out);
            at++;
            while (at < len && utf8_continuation((unsigned char)text[at])) at++;
        } else {
            fputc(' ', out);
        }
    }
    fputc('^', out);
    if (dg->end_line == dg->line && dg->end_column > col) {
        int end = dg->end_column;
        if (end > nchars) end = nchars;
        if (end > last) end = last;
        for (int c = col; c < end; c++) fputc('~', out);
    }
    fputc('\n', out);
}

const char *diag_source_text(const SrcFile *f, SrcLoc loc, size_t *len)
{
    size_t line_len;
    if (!f || loc.first_line < 1 || loc.last_line != loc.first_line || loc.last_column < loc.first_column)
        return NULL;
    const char *text = source_line(f, loc.first_line, &line_len);
    if (!text || loc.last_column > char_count(text, line_len)) return NULL;
    size_t from = char_offset(text, line_len, loc.first_column - 1);
    size_t to = char_offset(text, line_len, loc.last_column);
    *len = to - from;
    return text + from;
}

static void print_one(const TfmcDiagnostic *dg, const SrcFile *f, FILE *out)
{
    const char *kind = dg->warning ? "warning" : "error";
    if (dg->file && dg->line > 0)
        fprintf(out, "%s:%d:%d: %s: %s\n", dg->file, dg->line, dg->column, kind, dg->message);
    else if (dg->file)
        fprintf(out, "%s: %s: %s\n", dg->file, kind, dg->message);
    else
        fprintf(out, "%s: %s\n", kind, dg->message);
    size_t len;
    const char *text = (f && dg->line > 0) ? source_line(f, dg->line, &len) : NULL;
    if (text) print_source(dg, text, len, out);
    if (dg->hint) fprintf(out, "note: %s\n", dg->hint);
}

void diag_print(const DiagList *d, FILE *out)
{
    /* Source order within a file; insertion order otherwise (stable insertion sort). */
    int n = d->n;
    const TfmcAllocator *al = d->arena->alloc;
    int *order = al->realloc(al->ud, NULL, sizeof(int) * (size_t)(n ? n : 1));
    if (!order) {
        for (int i = 0; i < n; i++) print_one(&d->items[i], d->files[i], out);
        return;
    }
    for (int i = 0; i < n; i++) {
        int j = i;
        const TfmcDiagnostic *x = &d->items[i];
        while (j > 0) {
            const TfmcDiagnostic *y = &d->items[order[j - 1]];
            bool same = x->file && y->file && strcmp(x->file, y->file) == 0;
            if (!same || x->line == 0 || y->line == 0) break;
            if (y->line < x->line || (y->line == x->line && y->column <= x->column)) break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int i = 0; i < n; i++) print_one(&d->items[order[i]], d->files[order[i]], out);
    al->realloc(al->ud, order, 0);
}

static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 1000;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* A candidate is a suggestion when few of its letters change: one edit for names of up to three
 * letters, then one more per three letters; never as many edits as the shorter name has
 * letters (`x` is not a suggestion for `idx`). */
const char *diag_suggest(const char *name, const char *const *cands, int n)
{
    const char *best = NULL;
    int best_d = 1000;
    int len = (int)strlen(name);
    for (int i = 0; i < n; i++) {
        if (!cands[i] || strcmp(cands[i], name) == 0) continue;
        int dist = edit_distance(name, cands[i]);
        int shorter = (int)strlen(cands[i]) < len ? (int)strlen(cands[i]) : len;
        int limit = len <= 3 ? 1 : len / 3 + 1;
        if (dist > limit || dist >= shorter) continue;
        if (dist < best_d) {
            best_d = dist;
            best = cands[i];
        }
    }
    return best;
}
