/* decode.c: ids to text: the decoder chain on each token's bytes (ByteLevel, or Replace ▁ by a
 * space, ByteFallback, Fuse, Strip a leading space), and the bytes put together into UTF-8 (U+FFFD
 * for what is not), at once or one id at a time (streaming). */
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* ------------------------------------------------------------ decoding */

/* The bytes one token decodes to (before the leading strip and the UTF-8 assembly). */
static size_t token_bytes(const TfmcTokenizer *t, int id, unsigned flags, unsigned char *out)
{
    /* added tokens go through the decoder too (Gemma's "▁▁" runs are added tokens), but a
     * byte-level one holds its text as it is */
    if ((t->kind[id] & PIECE_SPECIAL) && (flags & TFMC_TOKENIZE_SKIP_SPECIAL)) return 0;
    const unsigned char *p = (const unsigned char *)t->piece[id];
    size_t n = t->piece_len[id];
    if ((t->kind[id] & PIECE_BYTE) && t->dec_byte_fallback) {
        int hi = p[3] <= '9' ? p[3] - '0' : p[3] - 'A' + 10, lo = p[4] <= '9' ? p[4] - '0' : p[4] - 'A' + 10;
        out[0] = (unsigned char)(hi * 16 + lo);
        return 1;
    }
    if (!t->dec_from_n) {
        memcpy(out, p, n);
        return n;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        if (i + t->dec_from_n <= n && !memcmp(p + i, t->dec_from, t->dec_from_n)) {
            memcpy(out + m, t->dec_to, t->dec_to_n);
            m += t->dec_to_n;
            i += t->dec_from_n;
        } else {
            out[m++] = p[i++];
        }
    }
    return m;
}

size_t tfmc_tokenizer_stream_bytes(const TfmcTokenizer *t) { return 3 * (t->max_text + 4) + 1; }

void tfmc_tokenizer_stream_init(TfmcTokenStream *s, const TfmcTokenizer *t, unsigned flags)
{
    memset(s, 0, sizeof *s);
    s->tokenizer = t;
    s->flags = flags;
    s->strip = t->dec_strip;
}

/* How many bytes at s (n of them) form the longest valid start of a UTF-8 character (at least
 * 1), and in *need how many the whole character takes. */
static int utf8_prefix(const unsigned char *s, size_t n, int *need)
{
    unsigned c = s[0];
    int len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    *need = len;
    if (len <= 1) return 1;
    unsigned lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    else if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    int k = 1;
    for (; k < len && (size_t)k < n; k++) {
        if (s[k] < lo || s[k] > hi) break;
        lo = 0x80, hi = 0xBF;
    }
    return k;
}

static const unsigned char replacement[3] = { 0xEF, 0xBF, 0xBD };

/* Emit the complete characters of buf[0..n); keep an incomplete valid tail in the stream unless
 * `final`. Invalid bytes become U+FFFD (one per maximal invalid part, as the Unicode standard and
 * every UTF-8 decoder the references use). Returns the bytes written to out. */
static size_t assemble(TfmcTokenStream *st, const unsigned char *buf, size_t n, bool final, char *out)
{
    size_t m = 0;
    st->npending = 0;
    for (size_t i = 0; i < n;) {
        int need, got = utf8_prefix(buf + i, n - i, &need);
        if (need == got) {
            memcpy(out + m, buf + i, (size_t)got);
            m += (size_t)got;
            i += (size_t)got;
        } else if (need > 0 && i + (size_t)got == n && !final) {
            memcpy(st->pending, buf + i, (size_t)got);
            st->npending = got;
            break;
        } else {
            memcpy(out + m, replacement, 3);
            m += 3;
            i += (size_t)got;
        }
    }
    out[m] = '\0';
    return m;
}

TfmcStatus tfmc_tokenizer_stream_push(TfmcTokenStream *s, int id, char *out, size_t *len)
{
    const TfmcTokenizer *t = s->tokenizer;
    *len = 0;
    out[0] = '\0';
    if (id < 0 || id >= t->vocab || !t->piece[id]) return TFMC_ERR_INPUT;
    unsigned char buf[4 + 4096];
    unsigned char *b = buf;
    size_t need = 4 + t->max_text;
    if (need > sizeof buf) {
        b = t->alloc.realloc(t->alloc.ud, NULL, need);
        if (!b) return TFMC_ERR_NOMEM;
    }
    memcpy(b, s->pending, (size_t)s->npending);
    size_t n = (size_t)s->npending;
    size_t k = token_bytes(t, id, s->flags, b + n);
    size_t skip = 0;
    while (s->strip > 0 && skip < k && b[n + skip] == ' ') skip++, s->strip--;
    if (skip < k) s->strip = 0;
    memmove(b + n, b + n + skip, k - skip);
    n += k - skip;
    *len = assemble(s, b, n, false, out);
    if (b != buf) t->alloc.realloc(t->alloc.ud, b, 0);
    return TFMC_OK;
}

void tfmc_tokenizer_stream_flush(TfmcTokenStream *s, char *out, size_t *len)
{
    unsigned char buf[4];
    size_t n = (size_t)s->npending;
    memcpy(buf, s->pending, n);
    *len = assemble(s, buf, n, true, out);
}

TfmcStatus tfmc_tokenizer_decode(const TfmcTokenizer *t, const int *ids, size_t n, unsigned flags, char *out,
                                 size_t cap, size_t *len)
{
    TfmcTokenStream st;
    tfmc_tokenizer_stream_init(&st, t, flags);
    size_t bound = tfmc_tokenizer_stream_bytes(t);
    char small[4096];
    char *piece = bound <= sizeof small ? small : t->alloc.realloc(t->alloc.ud, NULL, bound);
    if (!piece) return TFMC_ERR_NOMEM;
    size_t total = 0;
    TfmcStatus status = TFMC_OK;
    for (size_t i = 0; i <= n; i++) {
        size_t m;
        if (i < n) {
            status = tfmc_tokenizer_stream_push(&st, ids[i], piece, &m);
            if (status != TFMC_OK) break;
        } else {
            tfmc_tokenizer_stream_flush(&st, piece, &m);
        }
        if (total < cap) memcpy(out + total, piece, total + m <= cap ? m : cap - total);
        total += m;
    }
    if (cap) out[total < cap ? total : cap - 1] = '\0';
    *len = total;
    if (piece != small) t->alloc.realloc(t->alloc.ud, piece, 0);
    return status;
}

