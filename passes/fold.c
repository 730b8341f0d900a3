/* fold.c: constant folding (-O1). A residual dimension that holds the same constant at every
 * position (the embeddings set it for every token, nothing writes it; RASP's `one`) is folded into
 * the biases of the MLPs that read it: b1 += W1[:, c] * value. Attention heads have no biases, so
 * they keep reading it; the prune pass then drops the dimension when nothing else does.
 * Preserves: every value exactly (x * value + b == b' with the product folded; one rounding). */
#include "passes.h"

bool pass_fold(PassContext *pc, Model *m)
{
    (void)pc;
    if (m->declared) return true;
    int d = m->dim;
    for (int c = 0; c < d; c++) {
        float value = m->tok_emb[c];
        bool constant = true;
        for (int t = 0; t < m->vocab_size && constant; t++) constant = m->tok_emb[(size_t)t * d + c] == value;
        for (int p = 0; p < m->positions && constant; p++) constant = m->pos_emb[(size_t)p * d + c] == 0.0f;
        for (int bi = 0; bi < m->nblocks && constant; bi++) {
            const ModelBlock *b = &m->blocks[bi];
            if (b->kind == BLOCK_MLP) {
                constant = b->b2[c] == 0.0f;
                for (int h = 0; h < b->hidden && constant; h++) constant = b->w2[(size_t)c * b->hidden + h] == 0.0f;
            } else {
                for (int hi = 0; hi < b->nheads && constant; hi++)
                    for (int k = 0; k < b->heads[hi].dv && constant; k++)
                        constant = b->heads[hi].wo[(size_t)c * b->heads[hi].dv + k] == 0.0f;
            }
        }
        if (!constant || value == 0.0f) continue;
        for (int bi = 0; bi < m->nblocks; bi++) {
            ModelBlock *b = &m->blocks[bi];
            if (b->kind != BLOCK_MLP) continue;
            for (int h = 0; h < b->hidden; h++) {
                float *w = &b->w1[(size_t)h * d + c];
                b->b1[h] += *w * value;
                *w = 0.0f;
            }
        }
    }
    return true;
}
