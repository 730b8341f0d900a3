/* ir.h: the two IRs of tfmc. The model IR is a transformer as data (embeddings, attention and
 * MLP blocks with their weights, output decoding); RASP programs are lowered into it Tracr-style
 * and declared models load into it. The graph IR is a list of tensor operations with static
 * shapes lowered from the model IR; its interpreter backs `tfmc run` and `tfmc verify`, and the
 * backends walk it. */
#ifndef TFMC_IR_H
#define TFMC_IR_H

#include "frontend.h"

/* ------------------------------------------------------------ model IR */

typedef enum Activation { ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SILU, ACT_SWIGLU, ACT_GEGLU } Activation;
typedef enum NormKind { NORM_NONE, NORM_LAYERNORM, NORM_RMSNORM, NORM_DYT } NormKind;
typedef enum ScoreKind { SCORE_SOFTMAX, SCORE_SOFTMAX1, SCORE_LINEAR, SCORE_HARD } ScoreKind;
typedef enum PosKind { POS_NONE, POS_LEARNED, POS_SINUSOIDAL, POS_ROPE, POS_ALIBI } PosKind;

/* A normalisation: layernorm (x - mean) / sqrt(var + eps) * w + b, rmsnorm x / sqrt(mean(x^2) + eps) * w,
 * dyt w * tanh(alpha x) + b (Zhu et al. 2025, "Transformers without Normalization"). */
typedef struct Norm {
    NormKind kind;
    float eps, alpha;
    float *weight, *bias; /* [dim]; bias NULL for rmsnorm */
} Norm;

/* A feed-forward network: down(act(up x + b_up)) + b_down, or for gated activations
 * down(act(gate x + b_gate) * (up x + b_up)) + b_down. */
typedef struct Ffn {
    int hidden;
    Activation act;
    float *up, *b_up;     /* [hidden][dim], [hidden] */
    float *gate, *b_gate; /* gated only */
    float *down, *b_down; /* [dim][hidden], [dim] */
} Ffn;

/* One attention head: q = Wq x, k = Wk x, v = Wv x (rows of the matrices are head dimensions,
 * columns residual dimensions), out = Wo (softmax(scale * q.k) v). Heads of one block may have
 * different sizes (RASP heads read only the subspaces they need). */
typedef struct ModelHead {
    const char *label; /* the RASP node it computes, or "h3" */
    int dk, dv;
    bool never_later; /* its selector never selects a key after the query: a causal mask is exact */
    float *wq, *wk; /* [dk][dim] */
    float *wv;      /* [dv][dim] */
    float *wo;      /* [dim][dv] */
} ModelHead;

/* RASP models use BLOCK_ATTENTION (heads of any size) and BLOCK_MLP; declared models use
 * BLOCK_MHA (uniform heads, grouped K/V, positions, norms), BLOCK_FFN and BLOCK_MOE. */
typedef enum BlockKind { BLOCK_ATTENTION, BLOCK_MLP, BLOCK_MHA, BLOCK_FFN, BLOCK_MOE } BlockKind;

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
    /* declared models: x += f(norm(x)) then x = post_norm(x); `parallel` attention shares the
     * input of the next FFN/MoE: x += attn(norm(x)) + ffn(norm2(x)) */
    Norm norm, post_norm;
    bool parallel;
    int mha_heads, kv_heads, head_dim, window; /* window 0: none */
    ScoreKind score;
    PosKind pos;          /* rope / alibi act inside attention */
    float rope_base;
    float *wq, *bq;       /* [heads * head_dim][dim] */
    float *wk, *bk, *wv, *bv; /* [kv_heads * head_dim][dim] */
    float *wo, *bo;       /* [dim][heads * head_dim] */
    Ffn ffn;              /* BLOCK_FFN */
    int experts, top;     /* BLOCK_MOE */
    float *router;        /* [experts][dim] */
    Ffn *expert;          /* [experts] */
    int shared_with;      /* -1, or the block whose weights these are (block shared x N) */
    bool bias;            /* declared: its projections have biases */
} ModelBlock;

typedef enum OutputKind { OUT_CATEGORICAL, OUT_NUMERICAL, OUT_LOGITS } OutputKind;

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
    float *pos_emb;           /* [positions][dim]; declared models: NULL unless learned or sinusoidal */
    ModelBlock *blocks;
    int nblocks, cap_blocks;
    /* output decoding */
    OutputKind out_kind;
    int nout;                 /* categorical: the value dimensions */
    int *out_dims;
    Value *out_values;
    int out_dim;              /* numerical: the dimension read */
    /* declared models: positions, final norm, logits = unembed . x */
    bool declared;
    PosKind pos;
    Norm final_norm;
    float *unembed;           /* [vocab_size][dim]; == tok_emb when tied */
    bool tied;
    size_t weight_bytes;      /* declared: what its weights take */
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

/* Check a model declaration and build its model with its weights (a .safetensors file, or
 * seeded random ones). NULL with diagnostics on failure. Before any weight is allocated, the
 * memory the model needs is checked against max_memory (0: the machine's, model_memory_limit)
 * and the weight file's header against the declaration. check_only: only those checks and every
 * statement and option, no weights allocated or read (what loading a file does for its models). */
Model *model_declare(Arena *arena, const ModelDecl *decl, const SrcFile *file, DiagList *diags, bool check_only,
                     size_t max_memory);
/* `requested`, or when 0 what this process may take: the least of the physical memory, the
 * cgroup's memory.max and RLIMIT_AS / RLIMIT_DATA. */
size_t model_memory_limit(size_t requested);

/* Every weight of a declared model under its name in our scheme (docs/weights.md); cols 0 marks
 * a vector. Loading and --emit=weights both walk this one list. */
typedef void (*TensorVisit)(void *ud, const char *name, float *data, int rows, int cols);
void model_tfmc_tensors(Arena *a, const Model *m, TensorVisit visit, void *ud);

/* ------------------------------------------------------- safetensors */

typedef struct SafeTensors SafeTensors;
/* Open and validate a .safetensors file (memory-mapped; its bookkeeping from al, or the C library's
 * when NULL). NULL with the problem in err, and *nomem when it was an allocation that failed. */
SafeTensors *safetensors_open(const char *path, const TfmcAllocator *al, bool *nomem, char *err, size_t cap);
void safetensors_close(SafeTensors *st);
bool safetensors_has(const SafeTensors *st, const char *name);
/* Read tensor `name` of the given shape as f32 into out (converting f16/bf16); NaN/Inf rejected.
 * shape[1] == 0 for a vector. */
bool safetensors_read(SafeTensors *st, const char *name, int rows, int cols, float *out, char *err, size_t cap);
/* Check that tensor `name` has the given shape, without reading it: 0 when it does, 1 when it is
 * missing, 2 when its shape differs (the problem in err). Present tensors count as used. */
int safetensors_check(SafeTensors *st, const char *name, int rows, int cols, char *err, size_t cap);
/* The header's tensors, in file order, and whether each was checked or read. */
int safetensors_count(const SafeTensors *st);
const char *safetensors_name(const SafeTensors *st, int i);
bool safetensors_used(const SafeTensors *st, int i);
/* Shape of a tensor: rank and dims (up to 4); false when absent. */
bool safetensors_shape(const SafeTensors *st, const char *name, int *rank, long *dims);

void model_stats(const Model *m, ModelStats *s);
/* Check shapes and finite weights; writes the first problem to err and returns false. */
bool model_verify(const Model *m, char *err, size_t cap);
/* Print the model IR as text (token labels are made in a). */
void model_print(const Model *m, FILE *out, Arena *a);

/* ------------------------------------------------------------ graph IR */

typedef enum GraphOpKind {
    G_EMBED,    /* out[n][dim] = tok_emb[ids[i]] + pos_emb[pos0 + i] */
    G_LINEAR,   /* out[n][rows] = in[n][cols] . W^T (+ b); compressed with in[1]: in[1] + that */
    G_ACT,      /* out = act(in) */
    G_ADD,      /* out = a + b */
    G_SCORES,   /* out[n][n] = scale * q . k^T, masked (-inf) where not allowed */
    G_SOFTMAX,  /* out[n][n] = softmax over each row */
    G_MIX,      /* out[n][dv] = p[n][n] . v[n][dv] */
    G_NORM,     /* out = norm(in) */
    G_GLU,      /* out = act(gate) * up */
    G_ROPE,     /* in place: rotary positions on q or k */
    G_KV_STORE, /* k and v rows into the block's caches at pos0 */
    G_ATTEND,   /* out = attention of q over the caches */
    G_MOE,      /* out = mixture of experts */
    G_FUSED_ATTENTION, /* out[n][dv] = softmax(scale q.k^T) v row by row (online softmax, no [n][n]) */
    G_MHA_SCORES,  /* declared, unfused: out[heads][n][T] = scores of q against the key cache */
    G_MHA_SOFTMAX, /* out = the score function (softmax, softmax1, hard, linear) of each row */
    G_MHA_MIX,     /* out[n][heads * hd] = weights . value cache */
    G_SLICE        /* out[n][cols] = columns rows .. rows + cols of in[n][...] (after a fused QKV) */
} GraphOpKind;

typedef struct GraphOp {
    GraphOpKind kind;
    int out;            /* the tensor written */
    int in[3];          /* tensors read, -1 when unused (in[2]: the values of a fused attention) */
    int cache[2];       /* G_KV_STORE / G_ATTEND: the key and value caches */
    const float *w, *b; /* G_LINEAR weights (model-owned) */
    int rows, cols;     /* G_LINEAR shape of W */
    /* G_LINEAR in a compressed layout (the sparse pass): W's non-zeros by row */
    const int *rowptr, *colidx;
    const float *vals;
    int nnz;
    /* G_EMBED in compressed rows: the token table in the fields above, the position table here */
    const int *pos_rowptr, *pos_colidx;
    const float *pos_vals;
    int pos_nnz;
    Activation act;
    float scale;
    bool causal;
    bool never_later;         /* G_SCORES: the head's selector never selects a later key */
    bool head;                /* the final norm and logits: needed only for the rows read */
    const Norm *norm;         /* G_NORM */
    const ModelBlock *block;  /* G_ROPE, G_ATTEND, G_MOE: the block's options */
    int heads;                /* G_ROPE: heads in the tensor */
    const char *comment;
} GraphOp;

/* A tensor: [n][cols] per position, or [n][n] for scores (square); a cache holds every position
 * [positions][cols] and lives across calls. Lengths are dynamic (n <= positions); storage is
 * planned for the largest n. */
typedef struct GraphTensor {
    int cols;
    bool square;
    bool cache;
    const char *name;
    size_t offset; /* in floats, within the arena (memory plan) */
} GraphTensor;

typedef struct Graph {
    const Model *model;
    GraphOp *ops;
    int nops, cap_ops;
    GraphTensor *tensors;
    int ntensors, cap_tensors;
    int output;      /* RASP: the final residual; declared models: the logits */
    size_t scratch;  /* offset of the kernels' scratch floats */
    size_t arena_floats;
    bool planned;    /* the memory planning pass placed the tensors (else one region each) */
} Graph;

int graph_add_tensor(Arena *a, Graph *g, int cols, bool square, const char *name);
int graph_add_op(Arena *a, Graph *g, GraphOpKind kind, int out, int in0, int in1, const char *comment);
int graph_add_linear(Arena *a, Graph *g, int in, const float *w, const float *b, int rows, int cols, const char *name);
/* Give every tensor its place in the arena (and the kernels their scratch): one region each. */
void graph_plan(Graph *g);
/* The floats the kernels' scratch needs. */
size_t graph_scratch_floats(const Graph *g);
/* The floats tensor t takes for the largest n (a square tensor holds max(cols, 1) planes). */
size_t graph_tensor_floats(const Graph *g, int t);
/* Does some op read or write tensor t? */
bool graph_tensor_used(const Graph *g, int t);
/* FLOPs per position of the graph at sequence length n. */
double graph_flops(const Graph *g, int n);

Graph *graph_from_model(Arena *arena, const Model *m);
/* The graph of a declared model (KV caches, norms, positions, MoE...). */
Graph *graph_from_declared(Arena *arena, const Model *m);
void graph_print(const Graph *g, FILE *out);
/* The op's name in --emit=graph. */
const char *graph_op_name(GraphOpKind k);
/* Check a graph (references, shapes and attributes of every op, every input written before it is
 * read, the arena bounds, no two live tensors sharing memory); the first problem goes to err. */
bool graph_verify(Arena *arena, const Graph *g, char *err, size_t cap);
/* Run the graph on token ids at positions pos0..pos0+n-1 (RASP: BOS included, pos0 0). The arena
 * holds g->arena_floats floats; caches in it keep earlier positions. The output tensor is at
 * arena + g->tensors[g->output].offset. */
/* Run the graph on n positions starting at position pos0. Ops marked `head` (a declared model's
 * final norm and logits) run on the last head_rows positions only (n: all; 0: none), the others
 * on all n; rows are where a full run would put them. */
void graph_run(const Graph *g, const int *ids, int n, int pos0, float *arena, int head_rows);
/* The same on an execution context's threads (the runtime's TfmcrtExec; NULL: this thread), with
 * the same results bit for bit whatever its thread count. */
struct TfmcrtExec;
void graph_run_exec(const Graph *g, const int *ids, int n, int pos0, float *arena, int head_rows,
                    const struct TfmcrtExec *ex);
/* Numbers of a numerical output's value set closer than 1e-9 (relative) are one value to the
 * transformer (a mean of means holds 0 and -1.4e-17): output k decodes as the member of its run
 * nearest zero (the first on a tie), so float sums that differ in the last bits, as between -O
 * levels, print the same. */
int model_canonical_output(const Model *m, int k);
/* Decode position i of a residual: a categorical value (undefined when no dimension is > 0.5),
 * or a number. */
Value model_decode(const Model *m, const float *row);

#endif
