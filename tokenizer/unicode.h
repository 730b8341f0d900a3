/* unicode.h: the Unicode the tokenizers need: UTF-8, the letter, number and white-space classes of
 * the pre-tokenizer patterns, and NFC. The tables are generated (scripts/unicode_tables.py). */
#ifndef TFMC_UNICODE_H
#define TFMC_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support.h" /* utf8_valid_length */

typedef struct UnicodeRange { uint32_t lo, hi; } UnicodeRange;
typedef struct UnicodeClass { uint32_t lo, hi; uint8_t ccc; } UnicodeClass;
typedef struct UnicodeDecomposition { uint32_t cp, first, second; } UnicodeDecomposition; /* second 0: a singleton */
typedef struct UnicodeComposition { uint32_t first, second, composite; } UnicodeComposition;

extern const char unicode_version[];
extern const UnicodeRange unicode_letters[], unicode_numbers[];
extern const int unicode_letter_count, unicode_number_count;
extern const UnicodeClass unicode_classes[];
extern const int unicode_class_count;
extern const UnicodeDecomposition unicode_decompositions[];
extern const int unicode_decomposition_count;
extern const UnicodeComposition unicode_compositions[];
extern const int unicode_composition_count;

/* The code point at s (n bytes available) and its length in *len; a byte that does not start
 * valid UTF-8 reads as U+FFFD of length 1. */
uint32_t utf8_decode(const unsigned char *s, size_t n, int *len);
/* Where the text stops being valid UTF-8 (n when it is valid). */
size_t utf8_check(const unsigned char *s, size_t n);
size_t utf8_encode(uint32_t cp, unsigned char *out);

bool unicode_is_letter(uint32_t cp);  /* \p{L} */
bool unicode_is_number(uint32_t cp);  /* \p{N} */
bool unicode_is_space(uint32_t cp);   /* \s: the White_Space property */
uint8_t unicode_combining_class(uint32_t cp);

/* NFC of valid UTF-8 s[0..n) into out, which holds UNICODE_NFC_BYTES(n); returns the length.
 * `work` holds UNICODE_NFC_POINTS(n) code points. A code point decomposes into at most four, and
 * takes at least one byte for each two of them (bounds with room to spare). */
#define UNICODE_NFC_POINTS(n) (2 * (n) + 16)
#define UNICODE_NFC_BYTES(n) (8 * (n) + 64)
size_t unicode_nfc(const unsigned char *s, size_t n, unsigned char *out, uint32_t *work);

/* NFC's quick check (UAX #15, section 9): a character that is a starter and that NFC neither
 * changes nor joins to the one before it is stable, and text cut before a stable character
 * normalises as its two parts do. The table (a bit per code point below UNICODE_NFC_LIMIT; none
 * above it is unstable) marks the unstable ones; unicode_nfc_unstable fills it from the tables. */
#define UNICODE_NFC_LIMIT 0x30000u
#define UNICODE_NFC_TABLE_BYTES (UNICODE_NFC_LIMIT / 8)
void unicode_nfc_unstable(uint8_t *bits);
/* unicode_nfc, with the stretches of stable characters copied as they are and only the characters
 * around an unstable one normalised (the same bounds on out and work). */
size_t unicode_nfc_quick(const uint8_t *unstable, const unsigned char *s, size_t n, unsigned char *out, uint32_t *work);

#endif
