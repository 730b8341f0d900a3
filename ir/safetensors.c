/* safetensors.c: a validating reader of .safetensors files (memory-mapped): an 8-byte little-endian
 * header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then
 * the data. Every field is checked: the JSON, dtypes, shapes, offsets inside the data and not
 * overlapping, sizes equal to dtype x shape. F32, F16 and BF16 are read (converted to f32). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir.h"
#include "json.h"

typedef enum { DT_F32, DT_F16, DT_BF16 } Dtype;

typedef struct Entry {
    char *name;
    Dtype dtype;
    int rank;
    long dims[8];
    size_t begin, end; /* within the data section */
    const unsigned char *data; /* the data section it is in (a shard's, for a sharded checkpoint) */
    bool used;
} Entry;

struct SafeTensors {
    const TfmcAllocator *al;
    const unsigned char *map;
    size_t size;
    const unsigned char *data;
    size_t data_size;
    Entry *entries;
    int n;
    SafeTensors **shards; /* a sharded checkpoint: the files its index names (they own the names) */
    int nshards;
};

/* ------------------------------------------------------------ JSON */

typedef struct Json {
    const char *p, *end;
    char *err;
    size_t cap;
    const TfmcAllocator *al;
    bool nomem; /* an allocation failed (not the file's fault) */
} Json;

static void *st_alloc(const TfmcAllocator *al, void *p, size_t n) { return al->realloc(al->ud, p, n); }
static void st_free(const TfmcAllocator *al, void *p)
{
    if (p) al->realloc(al->ud, p, 0);
}

static bool jfail(Json *j, const char *what)
{
    if (j->err[0] == '\0') snprintf(j->err, j->cap, "malformed JSON header: %s", what);
    return false;
}

static void skip_ws(Json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool expect(Json *j, char c)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p != c) {
        char what[48];
        snprintf(what, sizeof what, "expected `%c`", c);
        return jfail(j, what);
    }
    j->p++;
    return true;
}

/* A JSON string into a buffer of the allocator (escapes decoded; \u kept to ASCII or '?'). A string
 * must be valid UTF-8 and may not hold U+0000 (names and dtypes are C strings: "F32\u0000x"
 * would read as F32). */
static char *jstring(Json *j)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p != '"') {
        jfail(j, "expected a string");
        return NULL;
    }
    j->p++;
    size_t cap = 32, n = 0;
    char *s = st_alloc(j->al, NULL, cap);
    if (!s) {
        j->nomem = true;
        return NULL;
    }
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if ((unsigned char)c < 32) {
            st_free(j->al, s);
            jfail(j, "control character in a string");
            return NULL;
        }
        if ((unsigned char)c >= 0x80) {
            /* a multi-byte character, copied whole once it is known to be valid */
            int len = utf8_valid_length((const unsigned char *)j->p - 1, (size_t)(j->end - j->p) + 1);
            if (len == 0) {
                st_free(j->al, s);
                jfail(j, "a string is not valid UTF-8");
                return NULL;
            }
            if (n + (size_t)len + 1 > cap) {
                cap = 2 * cap + (size_t)len;
                char *t = st_alloc(j->al, s, cap);
                if (!t) { st_free(j->al, s); j->nomem = true; return NULL; }
                s = t;
            }
            memcpy(s + n, j->p - 1, (size_t)len);
            n += (size_t)len;
            j->p += len - 1;
            continue;
        }
        if (c == '\\') {
            if (j->p >= j->end) break;
            char e = *j->p++;
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                if (j->end - j->p < 4) { st_free(j->al, s); jfail(j, "bad \\u escape"); return NULL; }
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *j->p++;
                    int digit = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                              : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (digit < 0) { st_free(j->al, s); jfail(j, "bad \\u escape"); return NULL; }
                    v = v * 16 + (unsigned)digit;
                }
                if (v == 0) { st_free(j->al, s); jfail(j, "\\u0000 in a string"); return NULL; }
                c = v < 128 ? (char)v : '?';
                break;
            }
            default: st_free(j->al, s); jfail(j, "bad escape in a string"); return NULL;
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            char *t = st_alloc(j->al, s, cap);
            if (!t) { st_free(j->al, s); j->nomem = true; return NULL; }
            s = t;
        }
        s[n++] = c;
    }
    if (j->p >= j->end) {
        st_free(j->al, s);
        jfail(j, "unterminated string");
        return NULL;
    }
    j->p++;
    s[n] = '\0';
    return s;
}

static bool jinteger(Json *j, long *out)
{
    skip_ws(j);
    const char *start = j->p;
    long v = 0;
    if (j->p < j->end && *j->p == '-') return jfail(j, "negative number where a size or offset is needed");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > (LONG_MAX - 9) / 10) return jfail(j, "number too large");
        v = v * 10 + (*j->p++ - '0');
    }
    if (j->p == start) return jfail(j, "expected an integer");
    if (j->p - start > 1 && *start == '0') return jfail(j, "an integer with a leading zero");
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) return jfail(j, "expected an integer");
    *out = v;
    return true;
}

static bool digits(Json *j)
{
    const char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > start;
}

/* A number exactly as JSON writes one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (no +1,
 * 1., 01, nan or 0x10). */
static bool jnumber(Json *j)
{
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jfail(j, "unexpected character");
    if (*j->p == '0') j->p++;
    else digits(j);
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!digits(j)) return jfail(j, "bad number");
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (!digits(j)) return jfail(j, "bad number");
    }
    if (j->p < j->end && ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || (*j->p >= 'a' && *j->p <= 'z') ||
                          (*j->p >= 'A' && *j->p <= 'Z')))
        return jfail(j, "bad number");
    return true;
}

/* Skip any JSON value (for metadata and unknown fields). */
static bool jskip(Json *j, int depth)
{
    skip_ws(j);
    if (depth > 64) return jfail(j, "nested too deeply");
    if (j->p >= j->end) return jfail(j, "unexpected end");
    char c = *j->p;
    if (c == '"') {
        char *s = jstring(j);
        st_free(j->al, s);
        return s != NULL;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == close) { j->p++; return true; }
        for (;;) {
            if (c == '{') {
                char *k = jstring(j);
                if (!k) return false;
                st_free(j->al, k);
                if (!expect(j, ':')) return false;
            }
            if (!jskip(j, depth + 1)) return false;
            skip_ws(j);
            if (j->p < j->end && *j->p == ',') { j->p++; continue; }
            return expect(j, close);
        }
    }
    static const char *const literals[] = { "true", "false", "null" };
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(literals[i]);
        if ((size_t)(j->end - j->p) >= len && !strncmp(j->p, literals[i], len)) {
            j->p += len;
            return true;
        }
    }
    return jnumber(j);
}

static bool parse_entry(Json *j, Entry *e, SafeTensors *st)
{
    bool have_dtype = false, have_shape = false, have_offsets = false;
    if (!expect(j, '{')) return false;
    for (;;) {
        char *key = jstring(j);
        if (!key) return false;
        if (!expect(j, ':')) { st_free(j->al, key); return false; }
        if (!strcmp(key, "dtype")) {
            char *d = jstring(j);
            if (!d) { st_free(j->al, key); return false; }
            if (!strcmp(d, "F32")) e->dtype = DT_F32;
            else if (!strcmp(d, "F16")) e->dtype = DT_F16;
            else if (!strcmp(d, "BF16")) e->dtype = DT_BF16;
            else {
                snprintf(j->err, j->cap, "tensor `%s` has dtype %s; tfmc reads F32, F16 and BF16", e->name, d);
                st_free(j->al, d);
                st_free(j->al, key);
                return false;
            }
            st_free(j->al, d);
            have_dtype = true;
        } else if (!strcmp(key, "shape")) {
            if (!expect(j, '[')) { st_free(j->al, key); return false; }
            skip_ws(j);
            e->rank = 0;
            if (j->p < j->end && *j->p == ']') j->p++;
            else for (;;) {
                long v;
                if (e->rank >= 8 || !jinteger(j, &v)) { st_free(j->al, key); return e->rank >= 8 ? jfail(j, "shape of rank > 8") : false; }
                e->dims[e->rank++] = v;
                skip_ws(j);
                if (j->p < j->end && *j->p == ',') { j->p++; continue; }
                if (!expect(j, ']')) { st_free(j->al, key); return false; }
                break;
            }
            have_shape = true;
        } else if (!strcmp(key, "data_offsets")) {
            long a, b;
            if (!expect(j, '[') || !jinteger(j, &a) || !expect(j, ',') || !jinteger(j, &b) || !expect(j, ']')) {
                st_free(j->al, key);
                return false;
            }
            e->begin = (size_t)a;
            e->end = (size_t)b;
            have_offsets = true;
        } else if (!jskip(j, 1)) {
            st_free(j->al, key);
            return false;
        }
        st_free(j->al, key);
        skip_ws(j);
        if (j->p < j->end && *j->p == ',') { j->p++; continue; }
        if (!expect(j, '}')) return false;
        break;
    }
    if (!have_dtype || !have_shape || !have_offsets) {
        snprintf(j->err, j->cap, "tensor `%s` lacks %s", e->name, !have_dtype ? "a dtype" : !have_shape ? "a shape" : "data_offsets");
        return false;
    }
    size_t elem = e->dtype == DT_F32 ? 4 : 2, count = 1;
    for (int i = 0; i < e->rank; i++) {
        if (e->dims[i] > 0 && count > SIZE_MAX / 8 / (size_t)e->dims[i]) {
            snprintf(j->err, j->cap, "tensor `%s` has an impossibly large shape", e->name);
            return false;
        }
        count *= (size_t)e->dims[i];
    }
    if (e->begin > e->end || e->end > st->data_size) {
        snprintf(j->err, j->cap, "tensor `%s` has data_offsets [%zu, %zu] outside the %zu bytes of data (truncated file?)",
                 e->name, e->begin, e->end, st->data_size);
        return false;
    }
    if (e->end - e->begin != count * elem) {
        snprintf(j->err, j->cap, "tensor `%s` holds %zu bytes, but its dtype and shape need %zu", e->name,
                 e->end - e->begin, count * elem);
        return false;
    }
    return true;
}

static int by_offset(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static SafeTensors *open_sharded(const char *path, const TfmcAllocator *al, bool *nomem, char *err, size_t cap);

static bool ends_with_index(const char *path)
{
    size_t n = strlen(path);
    return n >= 11 && !strcmp(path + n - 11, ".index.json");
}

SafeTensors *safetensors_open(const char *path, const TfmcAllocator *al, bool *nomem, char *err, size_t cap)
{
    err[0] = '\0';
    if (ends_with_index(path)) return open_sharded(path, al ? al : &libc_allocator, nomem, err, cap);
    *nomem = false;
    if (!al) al = &libc_allocator;
    /* non-blocking: opening a named pipe must not wait for a writer (it is rejected below) */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        snprintf(err, cap, "not a regular file");
        return NULL;
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        snprintf(err, cap, "the file has %zu bytes, fewer than the 8-byte header length", size);
        return NULL;
    }
    /* private and writable: tensors used in place are copy-on-write, never the file */
    void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, cap, "cannot map the file: %s", strerror(errno));
        return NULL;
    }
    SafeTensors *st = st_alloc(al, NULL, sizeof *st);
    if (!st) {
        munmap(map, size);
        *nomem = true;
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    memset(st, 0, sizeof *st);
    st->al = al;
    st->map = map;
    st->size = size;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)st->map[i] << (8 * i);
    if (hlen > size - 8) {
        snprintf(err, cap, "the header length %llu goes beyond the file's %zu bytes", (unsigned long long)hlen, size);
        safetensors_close(st);
        return NULL;
    }
    st->data = st->map + 8 + hlen;
    st->data_size = size - 8 - (size_t)hlen;
    Json j = { (const char *)st->map + 8, (const char *)st->map + 8 + hlen, err, cap, al, false };
    int ecap = 0;
    bool ok = expect(&j, '{');
    skip_ws(&j);
    if (ok && j.p < j.end && *j.p == '}') {
        j.p++;
    } else {
        while (ok) {
            char *name = jstring(&j);
            if (!name || !expect(&j, ':')) { st_free(al, name); ok = false; break; }
            if (!strcmp(name, "__metadata__")) {
                st_free(al, name);
                ok = jskip(&j, 1);
            } else {
                for (int i = 0; i < st->n; i++)
                    if (!strcmp(st->entries[i].name, name)) {
                        snprintf(err, cap, "tensor `%s` appears twice in the header", name);
                        ok = false;
                    }
                if (!ok) { st_free(al, name); break; }
                if (st->n == ecap) {
                    ecap = ecap ? ecap * 2 : 16;
                    Entry *e = st_alloc(al, st->entries, sizeof(Entry) * (size_t)ecap);
                    if (!e) { st_free(al, name); ok = false; j.nomem = true; break; }
                    st->entries = e;
                }
                Entry *e = &st->entries[st->n++];
                memset(e, 0, sizeof *e);
                e->name = name;
                ok = parse_entry(&j, e, st);
            }
            if (!ok) break;
            skip_ws(&j);
            if (j.p < j.end && *j.p == ',') { j.p++; continue; }
            ok = expect(&j, '}');
            break;
        }
    }
    if (ok) {
        skip_ws(&j);
        if (j.p != j.end) ok = jfail(&j, "text after the header object");
    }
    for (int i = 0; i < st->n; i++) st->entries[i].data = st->data;
    if (ok) {
        /* no two tensors may share bytes */
        Entry *sorted = st_alloc(al, NULL, sizeof(Entry) * (size_t)(st->n ? st->n : 1));
        if (!sorted) ok = false, j.nomem = true;
        else {
            if (st->n) memcpy(sorted, st->entries, sizeof(Entry) * (size_t)st->n);
            qsort(sorted, (size_t)st->n, sizeof(Entry), by_offset);
            /* in order of their starts, each tensor with bytes must start after every earlier one
             * ends (empty tensors hold no bytes and take no part) */
            int last = -1; /* the earlier non-empty tensor that ends last */
            for (int i = 0; i < st->n && ok; i++) {
                if (sorted[i].end == sorted[i].begin) continue;
                if (last >= 0 && sorted[i].begin < sorted[last].end) {
                    snprintf(err, cap, "tensors `%s` and `%s` overlap in the data", sorted[last].name, sorted[i].name);
                    ok = false;
                }
                if (last < 0 || sorted[i].end > sorted[last].end) last = i;
            }
            st_free(al, sorted);
        }
    }
    if (!ok) {
        if (j.nomem) {
            *nomem = true;
            snprintf(err, cap, "out of memory");
        } else if (!err[0]) {
            snprintf(err, cap, "malformed header");
        }
        safetensors_close(st);
        return NULL;
    }
    return st;
}

void safetensors_close(SafeTensors *st)
{
    if (!st) return;
    if (st->shards) {
        for (int i = 0; i < st->nshards; i++) safetensors_close(st->shards[i]);
        st_free(st->al, st->shards);
        st_free(st->al, st->entries);
        st_free(st->al, st);
        return;
    }
    for (int i = 0; i < st->n; i++) st_free(st->al, st->entries[i].name);
    st_free(st->al, st->entries);
    if (st->map) munmap((void *)st->map, st->size);
    st_free(st->al, st);
}

static Entry *find(const SafeTensors *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->entries[i].name, name)) return &st->entries[i];
    return NULL;
}

bool safetensors_has(const SafeTensors *st, const char *name) { return find(st, name) != NULL; }

bool safetensors_shape(const SafeTensors *st, const char *name, int *rank, long *dims)
{
    const Entry *e = find(st, name);
    if (!e) return false;
    *rank = e->rank;
    for (int i = 0; i < e->rank && i < 4; i++) dims[i] = e->dims[i];
    return true;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {
            /* subnormal: normalise */
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (mant & 0x3FF) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | mant << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* The shape as text: [3, 4]. */
static void shape_text(const long *dims, int rank, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && at < cap; i++) at += (size_t)snprintf(buf + at, cap - at, "%s%ld", i ? ", " : "", dims[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

int safetensors_check(SafeTensors *st, const char *name, int rows, int cols, char *err, size_t cap)
{
    Entry *e = find(st, name);
    if (!e) {
        snprintf(err, cap, "tensor `%s` is missing", name);
        return 1;
    }
    e->used = true;
    bool vector = cols == 0;
    bool shape_ok = vector ? (e->rank == 1 && e->dims[0] == rows)
                           : (e->rank == 2 && e->dims[0] == rows && e->dims[1] == cols);
    if (shape_ok) return 0;
    char got[128];
    shape_text(e->dims, e->rank, got, sizeof got);
    if (vector) snprintf(err, cap, "tensor `%s` has shape %s; the declaration needs [%d]", name, got, rows);
    else snprintf(err, cap, "tensor `%s` has shape %s; the declaration needs [%d, %d]", name, got, rows, cols);
    return 2;
}

bool safetensors_read(SafeTensors *st, const char *name, int rows, int cols, float *out, char *err, size_t cap)
{
    if (safetensors_check(st, name, rows, cols, err, cap) != 0) return false;
    Entry *e = find(st, name);
    bool vector = cols == 0;
    size_t count = (size_t)rows * (size_t)(vector ? 1 : cols);
    const unsigned char *p = e->data + e->begin;
    for (size_t i = 0; i < count; i++) {
        float f;
        if (e->dtype == DT_F32) {
            uint32_t bits = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                            (uint32_t)p[4 * i + 3] << 24;
            memcpy(&f, &bits, 4);
        } else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            if (e->dtype == DT_F16) {
                f = half_to_float(h);
            } else {
                uint32_t bits = (uint32_t)h << 16;
                memcpy(&f, &bits, 4);
            }
        }
        if (!isfinite(f)) {
            /* named by its index in the file's own shape, as a person looks it up */
            long at[2] = { vector ? (long)i : (long)(i / (size_t)cols), (long)(i % (size_t)(vector ? 1 : cols)) };
            char where[64];
            shape_text(at, vector ? 1 : 2, where, sizeof where);
            snprintf(err, cap, "tensor `%s` holds %s at %s", name, isnan(f) ? "NaN" : "an infinity", where);
            return false;
        }
        out[i] = f;
    }
    return true;
}

/* Where the first non-finite value of count floats is, or count. A float is not finite when its
 * exponent bits are all ones: or-ed over a block in eight independent lanes (which plain -O2
 * turns into vector code), then the block that has one searched again. */
static size_t first_non_finite(const float *w, size_t count)
{
    for (size_t at = 0; at < count; at += 4096) {
        size_t n = count - at < 4096 ? count - at : 4096, i = 0;
        uint32_t lane[8] = { 0 }, bad = 0;
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) {
                uint32_t b;
                memcpy(&b, w + at + i + k, 4);
                lane[k] |= (uint32_t)((b & 0x7F800000u) == 0x7F800000u);
            }
        for (int k = 0; k < 8; k++) bad |= lane[k];
        for (; i < n; i++) bad |= !isfinite(w[at + i]);
        if (!bad) continue;
        for (i = 0; i < n; i++)
            if (!isfinite(w[at + i])) return at + i;
    }
    return count;
}

int safetensors_map(SafeTensors *st, const char *name, int rows, int cols, const float **out, char *err, size_t cap)
{
    static const uint32_t one = 1;
    Entry *e = find(st, name);
    if (!e || e->dtype != DT_F32 || *(const unsigned char *)&one != 1) return 0;
    const unsigned char *p = e->data + e->begin;
    if ((uintptr_t)p % _Alignof(float)) return 0;
    if (safetensors_check(st, name, rows, cols, err, cap) != 0) return -1;
    size_t count = (size_t)rows * (size_t)(cols ? cols : 1);
    const float *w = (const float *)(const void *)p;
    size_t bad = first_non_finite(w, count);
    if (bad < count) {
        long at[2] = { cols ? (long)(bad / (size_t)cols) : (long)bad, cols ? (long)(bad % (size_t)cols) : 0 };
        char where[64];
        shape_text(at, cols ? 2 : 1, where, sizeof where);
        snprintf(err, cap, "tensor `%s` holds %s at %s", name, isnan(w[bad]) ? "NaN" : "an infinity", where);
        return -1;
    }
    *out = w;
    return 1;
}

int safetensors_count(const SafeTensors *st) { return st->n; }
const char *safetensors_name(const SafeTensors *st, int i) { return st->entries[i].name; }
bool safetensors_used(const SafeTensors *st, int i) { return st->entries[i].used; }

/* ------------------------------------------------------------ sharded checkpoints */

/* model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: "model-00001-of-00002.safetensors"}}.
 * Each shard is opened and checked as a file of its own; every tensor the map names must be in
 * the shard it names, and no tensor may be in two shards. */
static SafeTensors *open_sharded(const char *path, const TfmcAllocator *al, bool *nomem, char *err, size_t cap)
{
    *nomem = false;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t len = 0, tcap = 0;
    char *text = NULL;
    for (;;) {
        if (len + 4096 > tcap) {
            tcap = tcap ? tcap * 2 : 65536;
            if (tcap > ((size_t)256 << 20)) {
                fclose(fp);
                st_free(al, text);
                snprintf(err, cap, "an index over 256 MB is not a safetensors index");
                return NULL;
            }
            char *t = st_alloc(al, text, tcap);
            if (!t) { fclose(fp); st_free(al, text); *nomem = true; snprintf(err, cap, "out of memory"); return NULL; }
            text = t;
        }
        size_t got = fread(text + len, 1, tcap - len, fp);
        len += got;
        if (!got) break;
    }
    fclose(fp);
    jmp_buf oom;
    Arena a;
    arena_init(&a, al, &oom);
    SafeTensors *st = NULL;
    const char **map_names = NULL, **map_files = NULL;
    int nmap = 0, mapcap = 0;
    if (setjmp(oom)) {
        *nomem = true;
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    JsonReader r;
    json_init(&r, text, len, &a);
    JsonStr key;
    bool have_map = false;
    if (!json_object(&r)) goto bad;
    while (json_member(&r, &key)) {
        if (!json_str_is(key, "weight_map")) {
            json_skip(&r);
            continue;
        }
        have_map = true;
        if (!json_object(&r)) goto bad;
        while (json_member(&r, &key)) {
            const char *name = arena_strndup(&a, key.s, key.n);
            JsonStr file;
            if (!json_string(&r, &file)) goto bad;
            if (memchr(file.s, '/', file.n) || file.n == 0 || file.s[0] == '.') {
                snprintf(err, cap, "the index names the shard `%s` for `%s`: a shard is a file beside the index", file.s, name);
                goto fail;
            }
            size_t fl = file.n;
            if (fl < 12 || strcmp(file.s + fl - 12, ".safetensors")) {
                snprintf(err, cap, "the index names the shard `%s` for `%s`: a shard is a .safetensors file", file.s, name);
                goto fail;
            }
            const char *f = arena_strndup(&a, file.s, file.n);
            if (nmap == mapcap) {
                int grown = mapcap;
                map_names = arena_grow(&a, map_names, &grown, nmap + 1, sizeof *map_names);
                map_files = arena_grow(&a, map_files, &mapcap, nmap + 1, sizeof *map_files);
            }
            map_names[nmap] = name;
            map_files[nmap++] = f;
        }
    }
    if (!json_end(&r)) goto bad;
    if (!have_map) {
        snprintf(err, cap, "the index has no \"weight_map\"");
        goto fail;
    }
    st = st_alloc(al, NULL, sizeof *st);
    if (!st) longjmp(oom, 1);
    memset(st, 0, sizeof *st);
    st->al = al;
    /* the distinct shards, in the order the map first names them */
    const char *slash = strrchr(path, '/');
    int shard_cap = 0;
    const char **shard_files = NULL;
    for (int i = 0; i < nmap; i++) {
        bool seen = false;
        for (int k = 0; k < st->nshards && !seen; k++) seen = !strcmp(shard_files[k], map_files[i]);
        if (seen) continue;
        if (st->nshards >= 4096) {
            snprintf(err, cap, "the index names more than 4096 shards");
            goto fail;
        }
        int n = st->nshards;
        VEC_PUSH(&a, shard_files, n, shard_cap, map_files[i]);
        SafeTensors **sh = st_alloc(al, st->shards, sizeof *sh * (size_t)(st->nshards + 1));
        if (!sh) longjmp(oom, 1);
        st->shards = sh;
        const char *full = slash ? arena_printf(&a, "%.*s/%s", (int)(slash - path), path, map_files[i]) : map_files[i];
        char sub[400];
        bool sub_nomem;
        st->shards[st->nshards] = safetensors_open(full, al, &sub_nomem, sub, sizeof sub);
        if (!st->shards[st->nshards]) {
            *nomem = sub_nomem;
            snprintf(err, cap, "shard %s: %s", map_files[i], sub);
            goto fail;
        }
        st->nshards++;
    }
    int total = 0;
    for (int k = 0; k < st->nshards; k++) total += st->shards[k]->n;
    st->entries = st_alloc(al, NULL, sizeof(Entry) * (size_t)(total ? total : 1));
    if (!st->entries) longjmp(oom, 1);
    for (int k = 0; k < st->nshards; k++)
        for (int i = 0; i < st->shards[k]->n; i++) {
            Entry *e = &st->shards[k]->entries[i];
            for (int j = 0; j < st->n; j++)
                if (!strcmp(st->entries[j].name, e->name)) {
                    snprintf(err, cap, "tensor `%s` is in two shards", e->name);
                    goto fail;
                }
            st->entries[st->n++] = *e;
        }
    for (int i = 0; i < nmap; i++) {
        int k = 0;
        while (strcmp(shard_files[k], map_files[i])) k++;
        if (!find(st->shards[k], map_names[i])) {
            snprintf(err, cap, "the index puts `%s` in %s, which does not hold it", map_names[i], map_files[i]);
            goto fail;
        }
    }
    arena_free(&a);
    st_free(al, text);
    return st;
bad: {
        int line, col;
        json_where(&r, &line, &col);
        snprintf(err, cap, "%d:%d: %s", line, col, r.error[0] ? r.error : "malformed index");
    }
fail:
    safetensors_close(st);
    arena_free(&a);
    st_free(al, text);
    return NULL;
}
