/* json.c: the pull reader of json.h. Strict RFC 8259: no comments, no trailing commas, no NaN,
 * strings valid UTF-8 with escapes decoded (surrogate pairs joined; a lone surrogate is an error). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void json_init(JsonReader *r, const char *text, size_t len, Arena *arena)
{
    memset(r, 0, sizeof *r);
    r->text = r->p = text;
    r->end = text + len;
    r->arena = arena;
    r->first = true;
}

bool json_failed(const JsonReader *r) { return r->error_at != NULL; }

bool json_fail(JsonReader *r, const char *fmt, ...)
{
    if (r->error_at) return false;
    r->error_at = r->p < r->end ? r->p : r->end;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->p = r->end; /* nothing more is read */
    return false;
}

void json_where(const JsonReader *r, int *line, int *column)
{
    const char *at = r->error_at ? r->error_at : r->p;
    int l = 1, c = 1;
    for (const char *q = r->text; q < at; q++) {
        if (*q == '\n') l++, c = 1;
        else if (!utf8_continuation((unsigned char)*q)) c++;
    }
    *line = l;
    *column = c;
}

static void skip_space(JsonReader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

JsonType json_peek(JsonReader *r)
{
    if (r->error_at) return JSON_ERROR;
    skip_space(r);
    if (r->p >= r->end) return JSON_ERROR;
    switch (*r->p) {
    case '{': return JSON_OBJECT;
    case '[': return JSON_ARRAY;
    case '"': return JSON_STRING;
    case 't': case 'f': return JSON_BOOL;
    case 'n': return JSON_NULL;
    default: return (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) ? JSON_NUMBER : JSON_ERROR;
    }
}

static const char *type_name(JsonType t)
{
    switch (t) {
    case JSON_ERROR: return "nothing valid";
    case JSON_NULL: return "null";
    case JSON_BOOL: return "a boolean";
    case JSON_NUMBER: return "a number";
    case JSON_STRING: return "a string";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
    }
    return "?";
}

/* Fail unless the next value is of type `want`. */
static bool expect_type(JsonReader *r, JsonType want)
{
    JsonType t = json_peek(r);
    if (t == want) return true;
    if (r->error_at) return false;
    if (r->p >= r->end) return json_fail(r, "the text ends where %s is due", type_name(want));
    if (t == JSON_ERROR) return json_fail(r, "unexpected character `%c` where %s is due", *r->p, type_name(want));
    return json_fail(r, "expected %s, found %s", type_name(want), type_name(t));
}

static bool open_container(JsonReader *r, JsonType t)
{
    if (!expect_type(r, t)) return false;
    if (r->depth >= JSON_MAX_DEPTH) return json_fail(r, "nested more than %d deep", JSON_MAX_DEPTH);
    r->kinds[r->depth++] = *r->p++;
    r->first = true;
    return true;
}

/* Before a member or element: the closing bracket (false), or a comma unless it is the first. */
static bool next_item(JsonReader *r, char close)
{
    if (r->error_at) return false;
    skip_space(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        r->first = false;
        return false;
    }
    if (!r->first) {
        if (r->p >= r->end) return json_fail(r, "the text ends inside %s", close == '}' ? "an object" : "an array");
        if (*r->p != ',')
            return json_fail(r, "expected `,` or `%c`", close);
        r->p++;
        skip_space(r);
        if (r->p < r->end && *r->p == close) return json_fail(r, "a trailing comma before `%c`", close);
    }
    r->first = false;
    return true;
}

bool json_object(JsonReader *r) { return open_container(r, JSON_OBJECT); }
bool json_array(JsonReader *r) { return open_container(r, JSON_ARRAY); }

bool json_member(JsonReader *r, JsonStr *key)
{
    if (!next_item(r, '}')) return false;
    if (json_peek(r) != JSON_STRING) return json_fail(r, "expected a member name (a string)");
    if (!json_string(r, key)) return false;
    skip_space(r);
    if (r->p >= r->end || *r->p != ':') return json_fail(r, "expected `:` after the member name");
    r->p++;
    return true;
}

bool json_element(JsonReader *r) { return next_item(r, ']'); }

/* The length of the UTF-8 sequence at p (n bytes available), or 0 when it is not valid UTF-8
 * (overlong forms, surrogates and code points past U+10FFFF included). */
int utf8_valid_length(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || (size_t)len > n) return 0;
    unsigned v = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (p[i] & 0x3F);
    }
    static const unsigned least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < least[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    return len;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char h = p[i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool json_string(JsonReader *r, JsonStr *out)
{
    if (!expect_type(r, JSON_STRING)) return false;
    const char *start = ++r->p;
    /* the decoded string is never longer than the text between the quotes */
    const char *close = start;
    while (close < r->end && *close != '"') close += (*close == '\\' && close + 1 < r->end) ? 2 : 1;
    if (close >= r->end) {
        r->p = start - 1;
        return json_fail(r, "a string is not closed");
    }
    size_t need = (size_t)(close - start) + 1;
    if (need > r->scratch_cap) {
        size_t cap = r->scratch_cap ? r->scratch_cap : 256;
        while (cap < need) cap *= 2;
        r->scratch = arena_alloc(r->arena, cap);
        r->scratch_cap = cap;
    }
    char *s = r->scratch;
    size_t n = 0;
    while (r->p < close) {
        unsigned char c = (unsigned char)*r->p;
        if (c < 0x20) return json_fail(r, "a control character (byte 0x%02x) in a string: write it as \\u%04x", c, c);
        if (c >= 0x80) {
            int len = utf8_valid_length((const unsigned char *)r->p, (size_t)(close - r->p));
            if (!len) return json_fail(r, "a string is not valid UTF-8 (byte 0x%02x)", c);
            memcpy(s + n, r->p, (size_t)len);
            n += (size_t)len;
            r->p += len;
            continue;
        }
        if (c != '\\') {
            s[n++] = (char)c;
            r->p++;
            continue;
        }
        const char *escape = r->p;
        char e = r->p[1];
        r->p += 2;
        switch (e) {
        case '"': case '\\': case '/': s[n++] = e; break;
        case 'b': s[n++] = '\b'; break;
        case 'f': s[n++] = '\f'; break;
        case 'n': s[n++] = '\n'; break;
        case 'r': s[n++] = '\r'; break;
        case 't': s[n++] = '\t'; break;
        case 'u': {
            r->p -= 2;
            int v = close - r->p >= 6 ? hex4(r->p + 2) : -1;
            if (v < 0) return json_fail(r, "a \\u escape needs four hexadecimal digits");
            r->p += 6;
            unsigned cp = (unsigned)v;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                r->p = escape;
                return json_fail(r, "a lone low surrogate \\u%04X", cp);
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = close - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u' ? hex4(r->p + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    r->p = escape;
                    return json_fail(r, "a high surrogate \\u%04X without its low half", cp);
                }
                r->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
            }
            n += put_utf8(s + n, cp);
            break;
        }
        default: r->p -= 2; return json_fail(r, "an unknown escape `\\%c` in a string", e);
        }
    }
    r->p = close + 1;
    s[n] = '\0';
    out->s = s;
    out->n = n;
    return true;
}

/* The span of a number as JSON writes one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. */
static bool number_span(JsonReader *r, const char **start, bool *integral)
{
    if (!expect_type(r, JSON_NUMBER)) return false;
    const char *p = r->p, *e = r->end;
    *start = p;
    *integral = true;
    if (*p == '-') p++;
    if (p >= e || *p < '0' || *p > '9') return json_fail(r, "a number needs a digit after `-`");
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9') return json_fail(r, "a number with a leading zero");
    } else {
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && *p == '.') {
        *integral = false;
        p++;
        if (p >= e || *p < '0' || *p > '9') return json_fail(r, "a number needs a digit after `.`");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *integral = false;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return json_fail(r, "a number needs a digit in its exponent");
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    r->p = p;
    return true;
}

bool json_number(JsonReader *r, double *out)
{
    const char *start;
    bool integral;
    if (!number_span(r, &start, &integral)) return false;
    char buf[64];
    size_t len = (size_t)(r->p - start);
    if (len >= sizeof buf) {
        r->p = start;
        return json_fail(r, "a number of more than %zu characters", sizeof buf - 1);
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    *out = strtod(buf, NULL);
    return true;
}

bool json_int(JsonReader *r, long long lo, long long hi, long long *out)
{
    const char *start;
    bool integral;
    if (!number_span(r, &start, &integral)) return false;
    if (!integral) {
        int len = (int)(r->p - start);
        r->p = start;
        return json_fail(r, "expected an integer, found %.*s", len > 40 ? 40 : len, start);
    }
    const char *p = start;
    bool neg = *p == '-';
    if (neg) p++;
    unsigned long long v = 0;
    for (; p < r->p; p++) {
        if (v > (1ULL << 62) / 10) {
            r->p = start;
            return json_fail(r, "an integer outside [%lld, %lld]", lo, hi);
        }
        v = v * 10 + (unsigned)(*p - '0');
    }
    long long x = neg ? -(long long)v : (long long)v;
    if (x < lo || x > hi) {
        r->p = start;
        return json_fail(r, "the integer %lld is outside [%lld, %lld]", x, lo, hi);
    }
    *out = x;
    return true;
}

static bool literal(JsonReader *r, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return json_fail(r, "unexpected text (not `%s`)", word);
    r->p += n;
    return true;
}

bool json_bool(JsonReader *r, bool *out)
{
    if (!expect_type(r, JSON_BOOL)) return false;
    *out = *r->p == 't';
    return literal(r, *out ? "true" : "false");
}

bool json_null(JsonReader *r) { return expect_type(r, JSON_NULL) && literal(r, "null"); }

/* Skip one value, iteratively: no recursion however deep the text. */
bool json_skip(JsonReader *r)
{
    int base = r->depth;
    for (;;) {
        JsonStr s;
        double d;
        bool b;
        switch (json_peek(r)) {
        case JSON_ERROR: expect_type(r, JSON_NULL); return false; /* says what is wrong */
        case JSON_NULL: json_null(r); break;
        case JSON_BOOL: json_bool(r, &b); break;
        case JSON_NUMBER: json_number(r, &d); break;
        case JSON_STRING: json_string(r, &s); break;
        case JSON_OBJECT: json_object(r); break;
        case JSON_ARRAY: json_array(r); break;
        }
        /* step to the next value: the next item of the innermost open container, closing the
         * containers that end here */
        for (;;) {
            if (r->error_at) return false;
            if (r->depth == base) return true;
            bool more = r->kinds[r->depth - 1] == '{' ? json_member(r, &s) : json_element(r);
            if (more) break;
        }
    }
}

bool json_end(JsonReader *r)
{
    if (r->error_at) return false;
    skip_space(r);
    if (r->p != r->end) return json_fail(r, "text after the end of the JSON value");
    return true;
}
