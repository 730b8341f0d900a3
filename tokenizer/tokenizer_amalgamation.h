/* tokenizer_amalgamation.h: the tokenizer as one C text (scripts/amalgamate_tokenizer.py; the array
 * is generated into build/tokenizer/tfmctok_amalgamation.c): the tokenizer layer and the parts of the
 * support layer it uses, every function static, C99. A backend pastes it into a generated file whose
 * main reads and writes text, with the tokenizer.json as data. */
#ifndef TFMC_TOKENIZER_AMALGAMATION_H
#define TFMC_TOKENIZER_AMALGAMATION_H

#include <stddef.h>

extern const char tfmctok_amalgamation[];       /* NUL-terminated */
extern const size_t tfmctok_amalgamation_length; /* without the NUL */

#endif
