/* ir.h: the two IRs of tfmc. The model IR is a transformer as data (embeddings, attention and
 * MLP blocks with their weights, output decoding); RASP programs are lowered into it Tracr-style
 * and declared models load into it. The graph IR is a list of tensor operations with static
 * shapes lowered from the model IR; its interpreter backs `tfmc run` and `tfmc verify`, and the
 * backends walk it. */
#ifndef TFMC_IR_H
#define TFMC_IR_H

#include "support.h" /* the IRs see the support layer, not the frontend (lower.h bridges them) */

/* ------------------------------------------------------------ model IR */

/* The runtime's activation values are these, in this order (tfmcrt.h). */
typedef enum Activation { ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SILU, ACT_SWIGLU, ACT_GEGLU, ACT_GEGLU_TANH } Activation;
/* Gated: act(gate x) * (up x). */
static inline bool act_gated(Activation a) { return a == ACT_SWIGLU || a == ACT_GEGLU || a == ACT_GEGLU_TANH; }
typedef enum NormKind { NORM_NONE, NORM_LAYERNORM, NORM_RMSNORM, NORM_DYT } NormKind;
typedef enum ScoreKind { SCORE_SOFTMAX, SCORE_SOFTMAX1, SCORE_LINEAR, SCORE_HARD } ScoreKind;
typedef enum PosKind { POS_NONE, POS_LEARNED, POS_SINUSOIDAL, POS_ROPE, POS_ALIBI } PosKind;

/* A normalisation: layernorm (x - mean) / sqrt(var + eps) * w + b, rmsnorm x / sqrt(mean(x^2) + eps) * w,
 * dyt w * tanh(alpha x) + b (Zhu et al. 2025, "Transformers without Normalization"). With an offset
 * the scale applied is offset + w (Gemma stores w - 1): `applied` holds it, made once the weights
 * are in (model_decl.c); the graph uses it, and `weight` stays what the file holds. */
typedef struct Norm {
    NormKind kind;
    float eps, alpha, offset;
    float *weight, *bias; /* [dim]; bias NULL for rmsnorm */
    float *applied;       /* offset + weight when offset != 0, else NULL */
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
    int rope_dims;          /* the leading dimensions of each head that rotate (rope(dims R)); head_dim: all */
    const float *rope_freq; /* each rotating pair's frequency [rope_dims / 2] when scaled or partial, or NULL */
    float *wq, *bq;       /* [heads * head_dim][dim] */
    float *wk, *bk, *wv, *bv; /* [kv_heads * head_dim][dim] */
    float *wo, *bo;       /* [dim][heads * head_dim] */
    Ffn ffn;              /* BLOCK_FFN */
    int experts, top;     /* BLOCK_MOE */
    float *router;        /* [experts][dim] */
    Ffn *expert;          /* [experts] */
    int shared_with;      /* -1, or the block whose weights these are (block shared x N) */
    bool bias;            /* declared: its projections have biases */
    bool no_output_bias;  /* declared attention: `bias qkv`, no bias on the output projection */
    Norm q_norm, k_norm;  /* declared attention: per-head norms of q and k (`qk_norm`), weights [head_dim] */
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
    float embed_scale;        /* declared: the token embedding is multiplied by it (Gemma: sqrt(dim)); 1: none */
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
    const char *tokenizer;    /* declared: its tokenizer.json (resolved against the .tfm), or NULL */
    int *eos;                 /* declared: the ids that end generation */
    /* declared: rope(scaling llama3(...)) or scaling linear(factor F); factor 0: none */
    float rope_factor, rope_low, rope_high, rope_original;
    bool rope_linear;
    int rope_dims;            /* declared: rope(dims R); 0: the whole head */
    int neos;
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

/* `requested`, or when 0 what this process may take: the least of the physical memory, the
 * cgroup's memory.max and RLIMIT_AS / RLIMIT_DATA. */
size_t model_memory_limit(size_t requested);

/* Every weight of a declared model under its name in our scheme (docs/weights.md); cols 0 marks
 * a vector. Loading and --emit=weights both walk this one list. */
typedef void (*TensorVisit)(void *ud, const char *name, float **slot, int rows, int cols);
void model_tfmc_tensors(Arena *a, Model *m, TensorVisit visit, void *ud);

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
/* Tensor `name` of the given shape in place, when it needs no conversion (stored F32, aligned, on
 * a little-endian machine), every value checked finite: 1 with *out pointing into the mapping (valid
 * until safetensors_close); 0 when it must be read with safetensors_read; -1 with the problem in err. */
int safetensors_map(SafeTensors *st, const char *name, int rows, int cols, const float **out, char *err, size_t cap);
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

/* The graph IR stands alone: tensors with static shapes, constants (weights) with an identity,
 * and ops whose attributes are values. It keeps a pointer to its model only for the model's
 * input and output description (vocabulary, output values: what the entry points decode); no op
 * reads the model IR.
 *
 * The op table. Each op: its enum, its name in --emit=graph, how many tensor inputs it reads
 * (at least, at most), how many caches it uses, how many constant operands it has and their
 * roles (MOE adds six per expert after its router), and the attributes it has. The printer, the verifier and the
 * lowering to kernel calls (backends/lower.c) read it; a new op is a line here, a case in
 * graph_verify's check_op and graph_flops (switches the compiler checks for completeness), and
 * its kernel calls in the lowering. */
#define GRAPH_OPS(X)                                                                                   \
    X(EMBED, "embed", 0, 0, 0, 2, "tokens positions", GA_SCALE,                                          \
      "out[n][dim] = scale * token rows (+ position rows) of the token ids")                          \
    X(LINEAR, "linear", 1, 2, 0, 2, "W b", 0, "out[n][rows] = in[n][cols] W^T + b; a second input: it + that") \
    X(ACT, "act", 1, 1, 0, 0, "", GA_ACT, "out = act(in)")                                               \
    X(ADD, "add", 2, 2, 0, 0, "", 0, "out = a + b")                                                      \
    X(SCORES, "scores", 2, 2, 0, 0, "", GA_DK | GA_SCALE | GA_CAUSAL | GA_NEVER_LATER,                   \
      "out[n][n] = scale q k^T, masked where not allowed")                                            \
    X(SOFTMAX, "softmax", 1, 1, 0, 0, "", GA_CAUSAL, "out[n][n] = softmax of each row")                  \
    X(MIX, "mix", 2, 2, 0, 0, "", GA_DV, "out[n][dv] = p[n][n] v[n][dv]")                                \
    X(FUSED_ATTENTION, "fused_attention", 3, 3, 0, 0, "", GA_DK | GA_DV | GA_SCALE | GA_CAUSAL,          \
      "out[n][dv] = softmax(scale q k^T) v, a row at a time (online softmax)")                        \
    X(NORM, "norm", 1, 1, 0, 2, "weight bias", GA_NORM, "out = norm(in)")                                \
    X(GLU, "glu", 2, 2, 0, 0, "", GA_ACT, "out = act(gate) * up")                                        \
    X(ROPE, "rope", 1, 1, 0, 1, "freq", GA_ROPE, "in place: rotary positions of q or k (freq: scaled or partial)") \
    X(HEAD_NORM, "head_norm", 1, 1, 0, 1, "weight", GA_NORM | GA_HEADS, "in place: each head of q or k normalised") \
    X(KV_STORE, "kv_store", 2, 2, 2, 0, "", 0, "k and v rows into the caches at pos0")                   \
    X(ATTEND, "attend", 1, 1, 2, 0, "", GA_ATTN, "out = attention of q over the caches")                 \
    X(MHA_SCORES, "mha_scores", 1, 1, 1, 0, "", GA_ATTN, "out[heads][n][T] = scores against the key cache") \
    X(MHA_SOFTMAX, "mha_softmax", 1, 1, 0, 0, "", GA_ATTN, "out = the score function of each row")       \
    X(MHA_MIX, "mha_mix", 1, 1, 1, 0, "", GA_ATTN, "out[n][heads * hd] = weights . value cache")         \
    X(MOE, "moe", 1, 1, 0, 1, "router", GA_MOE, "out = mixture of experts (six constants per expert)")   \
    X(SLICE, "slice", 1, 1, 0, 0, "", GA_FIRST, "out[n][cols] = columns first.. of in (a fused QKV)")

/* The attributes an op may have (GraphOpInfo.attrs). */
enum {
    GA_ACT = 1 << 0,         /* act */
    GA_SCALE = 1 << 1,       /* scale */
    GA_CAUSAL = 1 << 2,      /* causal */
    GA_NEVER_LATER = 1 << 3, /* never_later */
    GA_DK = 1 << 4,          /* dk */
    GA_DV = 1 << 5,          /* dv */
    GA_FIRST = 1 << 6,       /* first */
    GA_NORM = 1 << 7,        /* norm */
    GA_ROPE = 1 << 8,        /* rope */
    GA_ATTN = 1 << 9,        /* attn */
    GA_MOE = 1 << 10,        /* moe */
    GA_HEADS = 1 << 11       /* heads: the head layout of q or k */
};

typedef enum GraphOpKind {
#define GRAPH_OP_ENUM(e, name, min_in, max_in, caches, nconsts, consts, attrs, what) G_##e,
    GRAPH_OPS(GRAPH_OP_ENUM)
#undef GRAPH_OP_ENUM
    G_COUNT
} GraphOpKind;

typedef struct GraphOpInfo {
    const char *name;
    int min_inputs, max_inputs; /* tensor inputs in[0..] */
    int caches;                 /* cache[0..] */
    int nconsts;                /* constant operands (MOE: six per expert follow) */
    const char *consts;         /* their roles, space-separated ("W b") */
    unsigned attrs;             /* GA_* */
    const char *what;
} GraphOpInfo;

extern const GraphOpInfo graph_op_info[G_COUNT];

/* A constant: a weight matrix [rows][cols] or vector [rows] (cols 0), dense or in compressed
 * rows. Ops refer to constants by index, so one array used by several ops (a tied head, the
 * blocks of `block shared x N`, a stacked QKV used by each application) is one constant, stored
 * and emitted once. */
typedef struct GraphConst {
    const char *name;        /* its name in the weights scheme (layers.0.attention.q.weight) */
    int rows, cols;
    const float *data;       /* dense: [rows][cols] (or [rows]); NULL when compressed */
    const int *rowptr, *colidx; /* compressed rows: row r's non-zeros are vals[rowptr[r]..rowptr[r+1]) */
    const float *vals;
    int nnz;
    /* int8 (the quantize pass, docs/quantize.md): data and vals NULL; w[r][c] ~ q8[r * cols + c] *
     * q8_scale[r * groups + c / q8_group], groups = ceil(cols / q8_group) (the last one may be short) */
    const int8_t *q8;
    const float *q8_scale;
    int q8_group;
} GraphConst;

typedef struct GraphNorm {
    NormKind kind;
    float eps, alpha;
} GraphNorm;

typedef struct GraphHeads {
    int heads, head_dim;
} GraphHeads;

typedef struct GraphRope {
    int heads, head_dim;
    int dims; /* the leading dimensions of each head that rotate (pairs j, j + dims / 2) */
    float base;
} GraphRope;

/* A declared model's attention, as the runtime's kernels take it. */
typedef struct GraphAttention {
    int heads, kv_heads, head_dim, window; /* window 0: none */
    ScoreKind score;
    bool causal, alibi;
    float scale;
} GraphAttention;

typedef struct GraphMoe {
    int experts, top, hidden;
    Activation act;
} GraphMoe;

typedef struct GraphOp {
    GraphOpKind kind;
    int out;           /* the tensor written */
    int in[3];         /* tensors read, -1 when unused */
    int cache[2];      /* the caches used (KV_STORE, ATTEND: key then value; MHA_SCORES the key
                        * cache, MHA_MIX the value cache), -1 when unused */
    int *consts;       /* constants, by role (graph_op_info); -1: absent (no bias) */
    int nconsts;
    /* attributes: graph_op_info[kind].attrs says which this op has */
    Activation act;    /* GA_ACT */
    float scale;       /* GA_SCALE */
    bool causal;       /* GA_CAUSAL */
    bool never_later;  /* GA_NEVER_LATER: the head's selector never selects a later key */
    int dk, dv;        /* GA_DK, GA_DV: query/key and value widths of a RASP head */
    int first;         /* GA_FIRST: the first column a slice takes */
    GraphNorm norm;    /* GA_NORM */
    GraphRope rope;    /* GA_ROPE */
    GraphAttention attn; /* GA_ATTN */
    GraphMoe moe;      /* GA_MOE */
    GraphHeads heads;  /* GA_HEADS */
    int layer;         /* the model block it computes, -1 for the embeddings and the head */
    bool head;         /* the final norm and logits: needed only for the rows read */
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
    const Model *model;  /* the input and output description only (see above) */
    const char *name;
    int dim;             /* residual width */
    int positions;       /* the largest n */
    int vocab_size;
    bool declared;       /* a declared model (KV caches, logits) or a RASP program */
    GraphOp *ops;
    int nops, cap_ops;
    GraphTensor *tensors;
    int ntensors, cap_tensors;
    GraphConst *consts;
    int nconsts, cap_consts;
    int output;      /* RASP: the final residual; declared models: the logits */
    size_t scratch;  /* offset of the kernels' scratch floats */
    size_t scratch_floats; /* what they need (graph_scratch_floats) */
    size_t arena_floats;
    bool planned;    /* the memory planning pass placed the tensors (else one region each) */
    /* the names of the model's blocks (layers.0.attention, layers.0.repeat2.mlp; blocks.3) */
    const char **layer_names;
    int nlayers;
} Graph;

/* A graph for a model with no ops yet (its sizes and layer names from m). */
Graph *graph_new(Arena *a, const Model *m);
int graph_add_tensor(Arena *a, Graph *g, int cols, bool square, const char *name);
/* An op with its table's constant slots (all -1) and no attributes. */
int graph_add_op(Arena *a, Graph *g, GraphOpKind kind, int out, int in0, int in1, const char *comment);
/* The constant holding data [rows][cols] (cols 0: a vector): the existing one when the same
 * array of the same shape is already a constant; -1 for NULL. */
int graph_add_const(Arena *a, Graph *g, const float *data, int rows, int cols, const char *name);
/* A compressed-rows constant. */
int graph_add_sparse_const(Arena *a, Graph *g, int rows, int cols, const int *rowptr, const int *colidx,
                           const float *vals, int nnz, const char *name);
/* An int8 constant [rows][cols]: values q8, one scale per group of `group` inputs of each row. */
int graph_add_q8_const(Arena *a, Graph *g, int rows, int cols, const int8_t *q8, const float *scale, int group,
                       const char *name);
/* The groups of a row of an int8 constant: ceil(cols / group). */
static inline int graph_q8_groups(const GraphConst *c) { return (c->cols + c->q8_group - 1) / c->q8_group; }
/* out = in W^T + b as a new tensor named name; W, b become constants (wname, bname). */
int graph_add_linear(Arena *a, Graph *g, int in, const float *w, const float *b, int rows, int cols, const char *name);
int graph_add_linear_named(Arena *a, Graph *g, int in, const float *w, const float *b, int rows, int cols,
                           const char *name, const char *wname, const char *bname);
/* A LINEAR op's weight constant and shape. */
const GraphConst *graph_linear_w(const Graph *g, const GraphOp *o);
/* Give every tensor its place in the arena (and the kernels their scratch): one region each. */
void graph_plan(Graph *g);
/* The floats the kernels' scratch needs. */
size_t graph_scratch_floats(const Graph *g);
/* The floats tensor t takes for the largest n (a square tensor holds max(cols, 1) planes). */
size_t graph_tensor_floats(const Graph *g, int t);
/* Does some op read or write tensor t? */
bool graph_tensor_used(const Graph *g, int t);
/* The input an op may write its output over (the memory plan puts them in one place when the
 * input is read for the last time): a compressed linear's accumulator, an activation's or a
 * softmax's input; -1 for the others. */
int graph_in_place_input(const Graph *g, const GraphOp *o);
/* Is constant c used by some op? */
bool graph_const_used(const Graph *g, int c);
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
/* Run a graph: the interpreter backend (backends/interp) through this hook, which the library
 * sets, so that the passes below the backends can evaluate a graph (magnitude pruning). Runs g
 * on ids at positions 0..n-1, every row; the arena holds g->arena_floats floats. */
typedef void (*GraphRunner)(void *ud, const Graph *g, const int *ids, int n, float *arena);

/* Numbers of a numerical output's value set closer than 1e-9 (relative) are one value to the
 * transformer (a mean of means holds 0 and -1.4e-17): output k decodes as the member of its run
 * nearest zero (the first on a tie), so float sums that differ in the last bits, as between -O
 * levels, print the same. */
int model_canonical_output(const Model *m, int k);
/* Decode position i of a residual: a categorical value (undefined when no dimension is > 0.5),
 * or a number. */
Value model_decode(const Model *m, const float *row);

#endif
