/* ir.h: the two IRs of tfmc. The model IR is a transformer as data (embeddings, attention and
 * MLP blocks with their weights, output decoding); RASP programs are lowered into it Tracr-style
 * and declared models load into it. The graph IR is a list of tensor operations with static
 * shapes lowered from the model IR; its interpreter backs `tfmc run` and `tfmc verify`, and the
 * backends walk it. */
#ifndef TFMC_IR_H
#define TFMC_IR_H

#include "frontend.h"

/* ------------------------------------------------------------ model IR */

typedef enum Activation { ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SILU } Activation;

/* One attention head: q = Wq x, k = Wk x, v = Wv x (rows of the matrices are head dimensions,
 * columns residual dimensions), out = Wo (softmax(scale * q.k) v). Heads of one block may have
 * different sizes (RASP heads read only the subspaces they need). */
typedef struct ModelHead {
    const char *label; /* the RASP node it computes, or "h3" */
    int dk, dv;
    float *wq, *wk; /* [dk][dim] */
    float *wv;      /* [dv][dim] */
    float *wo;      /* [dim][dv] */
} ModelHead;

typedef enum BlockKind { BLOCK_ATTENTION, BLOCK_MLP } BlockKind;

/* A residual block: x += attention(x) or x += mlp(x). */
typedef struct ModelBlock {
    BlockKind kind;
    /* attention */
    int nheads;
    ModelHead *heads;
    bool causal;
    float scale;
    /* mlp: x += W2 act(W1 x + b1) + b2 */
    int hidden;
    float *w1, *b1; /* [hidden][dim], [hidden] */
    float *w2, *b2; /* [dim][hidden], [dim] */
    Activation act;
    const char **hidden_labels; /* what each hidden unit computes (RASP), may be NULL */
    const char **parts;         /* the RASP nodes this block computes */
    int nparts;
} ModelBlock;

typedef enum OutputKind { OUT_CATEGORICAL, OUT_NUMERICAL } OutputKind;

typedef struct Model {
    const char *name;
    int dim;                  /* residual width */
    const char **dim_labels;  /* [dim]: `one`, `tokens:a`, `indices:3`, `opp:2` ... */
    int vocab_size;           /* token ids 0..vocab_size-1 (the BOS id included when has_bos) */
    int max_len;              /* longest input, BOS excluded */
    int positions;            /* rows of pos_emb: max_len (+1 with BOS) */
    bool has_bos;             /* RASP models: position 0 holds the BOS token */
    int bos_id;
    float *tok_emb;           /* [vocab_size][dim] */
    float *pos_emb;           /* [positions][dim] */
    ModelBlock *blocks;
    int nblocks, cap_blocks;
    /* output decoding */
    OutputKind out_kind;
    int nout;                 /* categorical: the value dimensions */
    int *out_dims;
    Value *out_values;
    int out_dim;              /* numerical: the dimension read */
    /* RASP vocabulary: token id i is vocab[i] */
    const Value *vocab;
    int nvocab;
    bool vocab_is_int;
} Model;

typedef struct ModelStats {
    int layers;     /* attention+MLP pairs, counted as Tracr does */
    int blocks;     /* non-empty residual blocks */
    int heads;
    long params;    /* every weight, zeros included */
    long nonzeros;
} ModelStats;

/* Compile a checked RASP program into a model, Tracr's way. NULL with a diagnostic on failure. */
Model *rasp_lower(Arena *arena, const RaspProgram *p, DiagList *diags);

void model_stats(const Model *m, ModelStats *s);
/* Check shapes and finite weights; writes the first problem to err and returns false. */
bool model_verify(const Model *m, char *err, size_t cap);
void model_print(const Model *m, FILE *out);

/* ------------------------------------------------------------ graph IR */

typedef enum GraphOpKind {
    G_EMBED,   /* out[n][dim] = tok_emb[ids[i]] + pos_emb[i] */
    G_LINEAR,  /* out[n][rows] = in[n][cols] . W^T (+ b) */
    G_ACT,     /* out = act(in) */
    G_ADD,     /* out = a + b */
    G_SCORES,  /* out[n][n] = scale * q . k^T, masked (-inf) where not allowed */
    G_SOFTMAX, /* out[n][n] = softmax over each row */
    G_MIX,     /* out[n][dv] = p[n][n] . v[n][dv] */
    G_DECODE   /* the program's output from the residual */
} GraphOpKind;

typedef struct GraphOp {
    GraphOpKind kind;
    int out;            /* the tensor written */
    int in[2];          /* tensors read, -1 when unused */
    const float *w, *b; /* G_LINEAR weights (model-owned) */
    int rows, cols;     /* G_LINEAR shape of W */
    Activation act;
    float scale;
    bool causal;
    const char *comment;
} GraphOp;

/* A tensor: [n][cols] per position, or [n][n] for scores (square). Lengths are dynamic (n), with
 * n <= positions; storage is planned for the largest n. */
typedef struct GraphTensor {
    int cols;
    bool square;
    const char *name;
    size_t offset; /* in floats, within the arena (memory plan) */
} GraphTensor;

typedef struct Graph {
    const Model *model;
    GraphOp *ops;
    int nops, cap_ops;
    GraphTensor *tensors;
    int ntensors, cap_tensors;
    int residual;    /* the tensor holding the final residual stream */
    size_t arena_floats;
} Graph;

Graph *graph_from_model(Arena *arena, const Model *m);
void graph_print(const Graph *g, FILE *out);
/* Run the graph on token ids (BOS included when the model has one); resid receives the final
 * residual [n][dim]. scratch must hold g->arena_floats floats. */
void graph_run(const Graph *g, const int *ids, int n, float *scratch, float *resid);
/* Decode position i of a residual: a categorical value (undefined when no dimension is >= 0.5),
 * or a number. */
Value model_decode(const Model *m, const float *row);

#endif
