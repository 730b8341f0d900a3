/* unicode.c: UTF-8, character classes by binary search in the generated tables, and NFC
 * (Unicode Standard Annex #15: full canonical decomposition, canonical ordering, composition of
 * primary composites; Hangul syllables by arithmetic). */
#include <string.h>

#include "unicode.h"

uint32_t utf8_decode(const unsigned char *s, size_t n, int *len)
{
    int l = utf8_valid_length(s, n);
    if (l == 0) {
        *len = 1;
        return 0xFFFD;
    }
    *len = l;
    if (l == 1) return s[0];
    uint32_t v = s[0] & (0x7F >> l);
    for (int i = 1; i < l; i++) v = v << 6 | (s[i] & 0x3F);
    return v;
}

size_t utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII eight bytes at a time */
        uint64_t word;
        if (i + 8 <= n && (memcpy(&word, s + i, 8), !(word & 0x8080808080808080ULL))) { i += 8; continue; }
        if (s[i] < 0x80) { i++; continue; }
        int l = utf8_valid_length(s + i, n - i);
        if (!l) return i;
        i += (size_t)l;
    }
    return n;
}

size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { out[0] = (unsigned char)(0xC0 | cp >> 6); out[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool in_ranges(const UnicodeRange *r, int n, uint32_t cp)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

bool unicode_is_letter(uint32_t cp)
{
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(unicode_letters, unicode_letter_count, cp);
}

bool unicode_is_number(uint32_t cp)
{
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return in_ranges(unicode_numbers, unicode_number_count, cp);
}

bool unicode_is_space(uint32_t cp)
{
    /* the White_Space property (PropList.txt): what \s means in the tokenizers' regular expressions */
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

uint8_t unicode_combining_class(uint32_t cp)
{
    if (cp < 0x300) return 0;
    int lo = 0, hi = unicode_class_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < unicode_classes[mid].lo) hi = mid - 1;
        else if (cp > unicode_classes[mid].hi) lo = mid + 1;
        else return unicode_classes[mid].ccc;
    }
    return 0;
}

static const UnicodeDecomposition *find_decomposition(uint32_t cp)
{
    int lo = 0, hi = unicode_decomposition_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < unicode_decompositions[mid].cp) hi = mid - 1;
        else if (cp > unicode_decompositions[mid].cp) lo = mid + 1;
        else return &unicode_decompositions[mid];
    }
    return NULL;
}

/* Hangul syllables (Unicode chapter 3.12). */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7, L_COUNT = 19, V_COUNT = 21,
       T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

/* Append the full canonical decomposition of cp. */
static size_t decompose(uint32_t cp, uint32_t *out)
{
    if (cp >= S_BASE && cp < S_BASE + S_COUNT) {
        uint32_t s = cp - S_BASE;
        out[0] = L_BASE + s / N_COUNT;
        out[1] = V_BASE + (s % N_COUNT) / T_COUNT;
        if (s % T_COUNT == 0) return 2;
        out[2] = T_BASE + s % T_COUNT;
        return 3;
    }
    const UnicodeDecomposition *d = cp < 0xC0 ? NULL : find_decomposition(cp);
    if (!d) {
        out[0] = cp;
        return 1;
    }
    size_t n = decompose(d->first, out);
    if (d->second) n += decompose(d->second, out + n);
    return n;
}

static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    int lo = 0, hi = unicode_composition_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const UnicodeComposition *c = &unicode_compositions[mid];
        if (a < c->first || (a == c->first && b < c->second)) hi = mid - 1;
        else if (a > c->first || b > c->second) lo = mid + 1;
        else return c->composite;
    }
    return 0;
}

size_t unicode_nfc(const unsigned char *s, size_t n, unsigned char *out, uint32_t *work)
{
    /* decompose */
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int len;
        uint32_t cp = utf8_decode(s + i, n - i, &len);
        i += (size_t)len;
        m += decompose(cp, work + m);
    }
    /* canonical ordering: a stable insertion sort of each run of non-starters by class */
    for (size_t i = 1; i < m; i++) {
        uint8_t c = unicode_combining_class(work[i]);
        if (c == 0) continue;
        size_t j = i;
        uint32_t cp = work[i];
        while (j > 0) {
            uint8_t p = unicode_combining_class(work[j - 1]);
            if (p == 0 || p <= c) break;
            work[j] = work[j - 1];
            j--;
        }
        work[j] = cp;
    }
    /* compose: each character joins the last starter unless a character between them blocks it */
    size_t kept = 0;
    long starter = -1;
    int last_class = -1;
    for (size_t i = 0; i < m; i++) {
        uint32_t cp = work[i];
        int c = unicode_combining_class(cp);
        if (starter >= 0 && (last_class < c || (last_class == 0 && (size_t)starter == kept - 1)) ) {
            uint32_t composite = compose(work[starter], cp);
            if (composite) {
                work[starter] = composite;
                continue;
            }
        }
        if (c == 0) {
            starter = (long)kept;
            last_class = 0;
        } else {
            last_class = c;
        }
        work[kept++] = cp;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < kept; i++) bytes += utf8_encode(work[i], out + bytes);
    return bytes;
}

/* ------------------------------------------------------------ NFC's quick check */

static void set_bit(uint8_t *bits, uint32_t cp)
{
    if (cp < UNICODE_NFC_LIMIT) bits[cp >> 3] |= (uint8_t)(1u << (cp & 7));
}

static bool bit(const uint8_t *bits, uint32_t cp) { return cp < UNICODE_NFC_LIMIT && (bits[cp >> 3] >> (cp & 7) & 1); }

void unicode_nfc_unstable(uint8_t *bits)
{
    memset(bits, 0, UNICODE_NFC_TABLE_BYTES);
    /* non-starters */
    for (int i = 0; i < unicode_class_count; i++)
        for (uint32_t cp = unicode_classes[i].lo; cp <= unicode_classes[i].hi; cp++)
            if (unicode_classes[i].ccc) set_bit(bits, cp);
    /* characters that may join the one before them (NFC_Quick_Check=Maybe), Hangul vowels and trailing consonants too */
    for (int i = 0; i < unicode_composition_count; i++) set_bit(bits, unicode_compositions[i].second);
    for (uint32_t cp = V_BASE; cp < V_BASE + V_COUNT; cp++) set_bit(bits, cp);
    for (uint32_t cp = T_BASE + 1; cp < T_BASE + T_COUNT; cp++) set_bit(bits, cp);
    /* characters that NFC changes (NFC_Quick_Check=No): a decomposition that does not compose back
     * (singletons, exclusions), or a composite whose decomposition starts with a character that
     * joins the one before it */
    for (int i = 0; i < unicode_decomposition_count; i++) {
        const UnicodeDecomposition *d = &unicode_decompositions[i];
        bool primary = d->second && compose(d->first, d->second) == d->cp;
        uint32_t first = d->first;
        for (const UnicodeDecomposition *f; primary && (f = find_decomposition(first)) != NULL;) first = f->first;
        if (!primary || bit(bits, first) || unicode_combining_class(first)) set_bit(bits, d->cp);
    }
}

/* The start of the character before i (i > 0). */
static size_t char_before(const unsigned char *s, size_t i)
{
    do i--; while (i > 0 && (s[i] & 0xC0) == 0x80);
    return i;
}

size_t unicode_nfc_quick(const uint8_t *unstable, const unsigned char *s, size_t n, unsigned char *out, uint32_t *work)
{
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        /* the stretch of stable characters from i: NFC leaves it as it is */
        size_t j = i;
        uint32_t cp = 0;
        int len = 0;
        while (j < n) {
            if (s[j] < 0xCC) { /* below U+0300 */
                j += s[j] < 0x80 ? 1 : 2;
                continue;
            }
            cp = utf8_decode(s + j, n - j, &len);
            if (bit(unstable, cp)) break;
            j += (size_t)len;
        }
        if (j == n) {
            memcpy(out + m, s + i, n - i);
            return m + (n - i);
        }
        /* an unstable character at j: normalise from the last stable one before it (it may join
         * it) up to the next stable one */
        size_t from = j > i ? char_before(s, j) : j;
        memcpy(out + m, s + i, from - i);
        m += from - i;
        size_t to = j + (size_t)len;
        while (to < n) {
            if (s[to] < 0xCC) break;
            cp = utf8_decode(s + to, n - to, &len);
            if (!bit(unstable, cp)) break;
            to += (size_t)len;
        }
        m += unicode_nfc(s + from, to - from, out + m, work);
        i = to;
    }
    return m;
}
