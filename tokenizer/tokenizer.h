/* tokenizer.h: Hugging Face tokenizer.json files read and run in C: BPE models (byte-level, as
 * GPT-2, Llama 3 and Qwen; SentencePiece-style with byte fallback, as Llama 2 and Gemma), their
 * normalisers, pre-tokenisers, decoders and added tokens (docs/tokenizers.md). The public calls
 * (tfmc_tokenizer_*) are declared in tfmc.h; this is the loader the library wraps. The layer sees
 * only the support layer. */
#ifndef TFMC_TOKENIZER_H
#define TFMC_TOKENIZER_H

#include "support.h"

/* Why a file was refused: the message, a hint, and the byte offset it is about (or none). */
typedef struct TokenizerError {
    bool nomem;
    bool has_place;
    int line, column;
    char message[300];
    char hint[200];
} TokenizerError;

/* Parse tokenizer.json text (which must stay alive only during the call). NULL on failure. */
TfmcTokenizer *tokenizer_parse(const char *text, size_t len, const TfmcAllocator *al, TokenizerError *err);

#endif
