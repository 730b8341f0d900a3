/* json.h: a pull reader for JSON (RFC 8259) over text in memory. No tree is built: the caller
 * walks objects and arrays member by member and takes the values it wants, so a 30 MB
 * tokenizer.json costs only what the caller keeps. Every error records the first place it was
 * found (json_where gives its line and column) and stops the reader: every later call fails.
 * Part of the support layer (docs/design.md, section 3). */
#ifndef TFMC_JSON_H
#define TFMC_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "support.h"

typedef enum JsonType {
    JSON_ERROR, /* the reader has failed (or the text ended where a value was due) */
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} JsonType;

/* Objects and arrays nest at most this deep (deeper text is an error, never a deep recursion). */
#define JSON_MAX_DEPTH 512

typedef struct JsonReader {
    const char *text, *p, *end;
    Arena *arena;       /* decoded strings live here (a scratch buffer reused between strings) */
    char *scratch;
    size_t scratch_cap;
    bool first;         /* the next member or element is the first of its object or array */
    int depth;
    char kinds[JSON_MAX_DEPTH]; /* `{` or `[` for each open container */
    const char *error_at; /* NULL while the reader is sound */
    char error[200];
} JsonReader;

/* A decoded string: bytes (valid UTF-8, may hold U+0000) and their count; s[n] is '\0'. */
typedef struct JsonStr {
    const char *s;
    size_t n;
} JsonStr;

void json_init(JsonReader *r, const char *text, size_t len, Arena *arena);
/* The type of the next value (white space skipped); JSON_ERROR once the reader has failed. */
JsonType json_peek(JsonReader *r);
/* Record an error at the reader's place (the first one wins); returns false. */
bool json_fail(JsonReader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool json_failed(const JsonReader *r);
/* Line and column (1-based, columns count characters) of the first error, or of the reader's place. */
void json_where(const JsonReader *r, int *line, int *column);

/* `{`, then json_member until it returns false (at `}`, or on an error: check json_failed). Each
 * member's value must be read or skipped before the next json_member. Same for `[` and
 * json_element. */
bool json_object(JsonReader *r);
bool json_member(JsonReader *r, JsonStr *key); /* the key stays valid until the next string read */
bool json_array(JsonReader *r);
bool json_element(JsonReader *r);

/* Values. A string lives in the reader's scratch buffer until the next string is read: copy it to keep
 * it. json_string_eq compares the next string with a C string without keeping it. */
bool json_string(JsonReader *r, JsonStr *out);
bool json_number(JsonReader *r, double *out);
/* An integer in [lo, hi] (a JSON number with no fraction or exponent). */
bool json_int(JsonReader *r, long long lo, long long hi, long long *out);
bool json_bool(JsonReader *r, bool *out);
bool json_null(JsonReader *r);
bool json_skip(JsonReader *r);
/* After the top-level value: nothing but white space may follow. */
bool json_end(JsonReader *r);

static inline bool json_str_is(JsonStr s, const char *c)
{
    size_t i = 0;
    for (; i < s.n; i++)
        if (c[i] != s.s[i] || c[i] == '\0') return false;
    return c[i] == '\0';
}

#endif
