/* import.c: `tfmc import DIR`: a Hugging Face model folder (config.json, generation_config.json,
 * model.safetensors or a sharded model.safetensors.index.json, tokenizer.json) as a .tfm that loads
 * the checkpoint unchanged. Each line of the .tfm says which config field it came from. A field
 * that changes the computation and that tfmc cannot honour is an error naming the field and its
 * value; a field tfmc does not know is a warning (docs/import.md). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "lib.h"

/* The longest max_len an import writes: the KV caches take max_len x layers x 2 x kv_dim floats,
 * so a 128k-position config would ask for gigabytes a small deployment does not want. */
#define IMPORT_MAX_LEN 8192

/* One top-level member of config.json. */
typedef struct Field {
    const char *name;
    JsonType type;
    double num;
    bool flag;
    const char *str;       /* strings, and the text of other values (for messages) */
    const char *at;        /* where its value starts (for the caret) */
    JsonReader value;      /* a reader at its value, for objects and arrays */
    bool used;
} Field;

typedef struct Config {
    TfmcContext *ctx;
    SrcFile *file;
    Field *f;
    int n, cap;
    bool failed;
} Config;

static void place(Config *c, const char *at, SrcLoc *loc)
{
    JsonReader r;
    json_init(&r, c->file->text, c->file->len, NULL);
    r.p = at;
    json_where(&r, &loc->first_line, &loc->first_column);
    loc->last_line = loc->first_line;
    loc->last_column = loc->first_column;
}

static Field *field(Config *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->f[i].name, name)) {
            c->f[i].used = true;
            return &c->f[i];
        }
    return NULL;
}

static void refuse(Config *c, const Field *f, const char *hint, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void refuse(Config *c, const Field *f, const char *hint, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    SrcLoc loc = { 0, 0, 0, 0 };
    if (f) place(c, f->at, &loc);
    diag_error(&c->ctx->diags, c->file, loc, "%s", msg);
    if (hint) diag_hint(&c->ctx->diags, "%s", hint);
    c->failed = true;
}

/* A number field that must be a positive integer (required unless def >= 0, its default). */
static long int_field(Config *c, const char *name, long def)
{
    Field *f = field(c, name);
    if (!f || f->type == JSON_NULL) {
        if (def < 0) refuse(c, NULL, NULL, "config.json has no `%s`", name);
        return def;
    }
    if (f->type != JSON_NUMBER || f->num != floor(f->num) || f->num < 1 || f->num > INT_MAX) {
        refuse(c, f, NULL, "`%s` is %s; tfmc needs a positive integer", name, f->str);
        return def < 0 ? 1 : def;
    }
    return (long)f->num;
}

static double num_field(Config *c, const char *name, double def)
{
    Field *f = field(c, name);
    if (!f || f->type == JSON_NULL) return def;
    if (f->type != JSON_NUMBER) {
        refuse(c, f, NULL, "`%s` is %s; tfmc needs a number", name, f->str);
        return def;
    }
    return f->num;
}

static bool bool_field(Config *c, const char *name, bool def)
{
    Field *f = field(c, name);
    if (!f || f->type == JSON_NULL) return def;
    if (f->type != JSON_BOOL) {
        refuse(c, f, NULL, "`%s` is %s; tfmc needs true or false", name, f->str);
        return def;
    }
    return f->flag;
}

static const char *str_field(Config *c, const char *name, const char *def)
{
    Field *f = field(c, name);
    if (!f || f->type == JSON_NULL) return def;
    if (f->type != JSON_STRING) {
        refuse(c, f, NULL, "`%s` is %s; tfmc needs a string", name, f->str);
        return def;
    }
    return f->str;
}

/* The field must be absent, null or equal to what tfmc computes (a bool or a number). */
static void must_be(Config *c, const char *name, double want, const char *why)
{
    Field *f = field(c, name);
    if (!f || f->type == JSON_NULL) return;
    double v = f->type == JSON_BOOL ? (double)f->flag : f->type == JSON_NUMBER ? f->num : NAN;
    if (v != want) refuse(c, f, why, "`%s` is %s, which tfmc cannot honour", name, f->str);
}

/* The text of a JSON value, for messages: at most 60 characters. */
static const char *value_text(Arena *a, const char *from, const char *to)
{
    /* on one line: runs of white space become one space ({"rope_type": "llama3", ...}) */
    char *s = arena_alloc(a, (size_t)(to - from) + 1);
    size_t n = 0;
    for (const char *p = from; p < to; p++) {
        bool space = *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t';
        if (space && (n == 0 || s[n - 1] == ' ' || s[n - 1] == '{' || s[n - 1] == '[')) continue;
        if ((*p == '}' || *p == ']') && n > 0 && s[n - 1] == ' ') n--;
        s[n++] = space ? ' ' : *p;
    }
    s[n] = '\0';
    return n > 80 ? arena_printf(a, "%.77s...", s) : s;
}

static bool read_config(Config *c)
{
    Arena *a = &c->ctx->arena;
    JsonReader r;
    json_init(&r, c->file->text, c->file->len, a);
    JsonStr key;
    if (json_peek(&r) != JSON_OBJECT) {
        refuse(c, NULL, NULL, "config.json is not a JSON object");
        return false;
    }
    json_object(&r);
    while (json_member(&r, &key)) {
        Field f;
        memset(&f, 0, sizeof f);
        f.name = arena_strndup(a, key.s, key.n);
        f.type = json_peek(&r);
        f.at = r.p;
        f.value = r;
        JsonStr s;
        switch (f.type) {
        case JSON_NUMBER: json_number(&r, &f.num); break;
        case JSON_BOOL: json_bool(&r, &f.flag); break;
        case JSON_STRING: json_string(&r, &s); f.str = arena_strndup(a, s.s, s.n); break;
        case JSON_NULL: json_null(&r); break;
        case JSON_OBJECT: case JSON_ARRAY: json_skip(&r); break;
        case JSON_ERROR: json_skip(&r); break;
        }
        if (!f.str) f.str = value_text(a, f.at, r.p);
        VEC_PUSH(a, c->f, c->n, c->cap, f);
    }
    json_end(&r);
    if (json_failed(&r)) {
        SrcLoc loc;
        json_where(&r, &loc.first_line, &loc.first_column);
        loc.last_line = loc.first_line, loc.last_column = loc.first_column;
        diag_error(&c->ctx->diags, c->file, loc, "%s", r.error);
        return false;
    }
    return true;
}

/* The whole of DIR/name, in the context's arena, or NULL when it is not there. */
static SrcFile *read_text(TfmcContext *ctx, const char *dir, const char *name, bool required)
{
    const char *path = arena_printf(&ctx->arena, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        if (required) {
            SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
            f->path = path;
            SrcLoc none = { 0, 0, 0, 0 };
            diag_error(&ctx->diags, f, none, "cannot read %s: %s (is %s a Hugging Face model folder?)", name, strerror(errno), dir);
        }
        return NULL;
    }
    Text t = { &ctx->arena, NULL, 0, 0 };
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, fp)) > 0) {
        if (t.len + got > ((size_t)64 << 20)) break; /* a config is small: 64 MB is not one */
        for (size_t i = 0; i < got; i++) text_putc(&t, buf[i]);
    }
    fclose(fp);
    SrcFile *f = ARENA_NEW(&ctx->arena, SrcFile);
    f->path = path;
    f->text = text_str(&t);
    f->len = t.len;
    return f;
}

/* The end-of-sequence ids: generation_config.json's eos_token_id, else config.json's (an id or a list). */
static int read_eos(TfmcContext *ctx, const char *dir, Config *c, int *ids, int cap, const char **from)
{
    SrcFile *g = read_text(ctx, dir, "generation_config.json", false);
    const char *text = NULL;
    size_t len = 0;
    const char *at = NULL;
    if (g) {
        JsonReader r;
        json_init(&r, g->text, g->len, &ctx->arena);
        JsonStr key;
        if (json_object(&r))
            while (json_member(&r, &key)) {
                if (json_str_is(key, "eos_token_id")) {
                    json_peek(&r);
                    at = r.p;
                    text = g->text;
                    len = g->len;
                }
                json_skip(&r);
            }
        if (at) *from = "generation_config.json: eos_token_id";
    }
    Field *f = field(c, "eos_token_id");
    if (!at && f) {
        at = f->at;
        text = c->file->text;
        len = c->file->len;
        *from = "config.json: eos_token_id";
    }
    if (!at) return 0;
    JsonReader r;
    json_init(&r, text, len, &ctx->arena);
    r.p = at;
    int n = 0;
    long long v;
    if (json_peek(&r) == JSON_ARRAY) {
        json_array(&r);
        while (json_element(&r) && n < cap)
            if (json_int(&r, 0, INT_MAX, &v)) ids[n++] = (int)v;
    } else if (json_peek(&r) == JSON_NUMBER && json_int(&r, 0, INT_MAX, &v)) {
        ids[n++] = (int)v;
    }
    return n;
}

/* Fields that change nothing tfmc computes (training, dtype, bookkeeping, special token ids). */
static bool ignorable(const char *name)
{
    static const char *const names[] = {
        "architectures", "model_type", "torch_dtype", "transformers_version", "_name_or_path", "use_cache",
        "initializer_range", "bos_token_id", "eos_token_id", "pad_token_id", "attention_dropout", "hidden_dropout",
        "embd_pdrop", "resid_pdrop", "attn_pdrop", "summary_type", "summary_use_proj", "summary_activation",
        "summary_proj_to_labels", "summary_first_dropout", "task_specific_params", "tokenizer_class", "dtype",
        "reorder_and_upcast_attn", "output_attentions", "output_hidden_states", "return_dict", "id2label", "label2id",
        "problem_type", "auto_map", "quantization_config_ignored", "max_window_layers", "classifier_dropout",
        "n_ctx", "layer_types", "use_return_dict", "tie_encoder_decoder",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

/* rope_scaling {"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
 * "original_max_position_embeddings"} as tfmc's `scaling llama3(...)`; any other type is refused. */
static void read_rope_scaling(Config *c, Field *rs, char *out, size_t cap)
{
    Arena *a = &c->ctx->arena;
    static const char *const hint = "tfmc scales rotary positions as Llama 3 does (rope_type \"llama3\"; docs/import.md)";
    if (rs->type != JSON_OBJECT) {
        refuse(c, rs, hint, "`rope_scaling` is %s; tfmc needs an object", rs->str);
        return;
    }
    JsonReader r = rs->value;
    r.arena = a;
    JsonStr key;
    char type[32] = "";
    double v[4] = { 0, 0, 0, 0 };
    bool have[4] = { false, false, false, false };
    static const char *const names[] = { "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings" };
    json_object(&r);
    while (json_member(&r, &key)) {
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (json_str_is(key, names[i])) k = i;
        if (json_str_is(key, "rope_type") || json_str_is(key, "type")) {
            JsonStr s;
            if (json_string(&r, &s)) snprintf(type, sizeof type, "%.*s", (int)s.n, s.s);
        } else if (k >= 0 && json_peek(&r) == JSON_NUMBER) {
            json_number(&r, &v[k]);
            have[k] = true;
        } else {
            json_skip(&r);
        }
    }
    if (strcmp(type, "llama3")) {
        refuse(c, rs, hint, "`rope_scaling` is %s, of a type tfmc does not have", rs->str);
        return;
    }
    for (int i = 0; i < 4; i++)
        if (!have[i]) {
            refuse(c, rs, hint, "`rope_scaling` of type llama3 lacks `%s`", names[i]);
            return;
        }
    snprintf(out, cap, "scaling llama3(factor %.9g, low_freq_factor %.9g, high_freq_factor %.9g, original_max_len %.9g)", v[0],
             v[1], v[2], v[3]);
}

typedef struct Out {
    FILE *fp;
} Out;

/* A line of the .tfm, and after it the comment that says where it came from. */
static void line(Out *o, int indent, const char *from, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void line(Out *o, int indent, const char *from, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    int width = fprintf(o->fp, "%*s%s", indent, "", text);
    if (from) fprintf(o->fp, "%*s# %s", width < 60 ? 60 - width : 1, "", from);
    fputc('\n', o->fp);
}

static TfmcStatus import_dir(TfmcContext *ctx, const char *dir, const char *out_path, FILE *fp)
{
    Arena *a = &ctx->arena;
    SrcFile *cfg = read_text(ctx, dir, "config.json", true);
    if (!cfg) return TFMC_ERR_IO;
    Config c = { ctx, cfg, NULL, 0, 0, false };
    if (!read_config(&c)) return TFMC_ERR_INPUT;
    const char *type = str_field(&c, "model_type", NULL);
    Field *type_f = field(&c, "model_type");
    static const char *const families[] = { "gpt2", "llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gpt_neox" };
    static const char *const later[] = { "gemma2", "gemma3", "gemma3_text" };
    bool known = false;
    for (int i = 0; type && i < 8; i++) known |= !strcmp(type, families[i]);
    if (!type) {
        refuse(&c, NULL, NULL, "config.json has no `model_type`");
        return TFMC_ERR_INPUT;
    }
    if (!known) {
        bool planned = false;
        for (int i = 0; i < 3; i++) planned |= !strcmp(type, later[i]);
        refuse(&c, type_f, "tfmc imports gpt2, llama, mistral, qwen2, qwen3, phi3, gemma and gpt_neox (docs/import.md)",
               "`model_type` is \"%s\", which tfmc does not import%s", type, planned ? " yet" : "");
        return TFMC_ERR_INPUT;
    }
    bool gpt2 = !strcmp(type, "gpt2"), qwen3 = !strcmp(type, "qwen3"), gemma = !strcmp(type, "gemma");
    bool neox = !strcmp(type, "gpt_neox");

    /* weights: one file, or a sharded checkpoint's index */
    const char *weights = NULL;
    const char *candidates[] = { "model.safetensors", "model.safetensors.index.json" };
    for (int i = 0; i < 2 && !weights; i++)
        if (access(arena_printf(a, "%s/%s", dir, candidates[i]), R_OK) == 0) weights = candidates[i];
    if (!weights) {
        SrcLoc none = { 0, 0, 0, 0 };
        diag_error(&ctx->diags, cfg, none, "%s has no model.safetensors and no model.safetensors.index.json", dir);
        if (access(arena_printf(a, "%s/pytorch_model.bin", dir), F_OK) == 0)
            diag_hint(&ctx->diags, "pytorch_model.bin is a pickle, which tfmc does not read: save the model with safe_serialization=True");
        return TFMC_ERR_IO;
    }
    bool have_tokenizer = access(arena_printf(a, "%s/tokenizer.json", dir), R_OK) == 0;

    /* paths in the .tfm are relative to its folder: bare names when it is written into DIR */
    char real_dir[PATH_MAX], real_out[PATH_MAX];
    const char *prefix = "";
    if (!realpath(dir, real_dir)) snprintf(real_dir, sizeof real_dir, "%s", dir);
    if (out_path) {
        char *copy = arena_strdup(a, out_path);
        char *slash = strrchr(copy, '/');
        const char *out_dir = slash ? (*slash = '\0', copy[0] ? copy : "/") : ".";
        if (!realpath(out_dir, real_out) || strcmp(real_out, real_dir)) prefix = arena_printf(a, "%s/", real_dir);
    } else {
        prefix = arena_printf(a, "%s/", real_dir);
    }

    long vocab, dim, layers, heads, kv_heads, head_dim, hidden, positions;
    double eps, theta = 0;
    bool tied, attn_bias = false, mlp_bias = false, qkv_bias = false;
    const char *act = NULL;
    long window = 0;
    char scaling[256] = "";
    long rotary = 0;             /* GPT-NeoX: the rotating dimensions of a head, when not all */
    bool parallel = false;       /* GPT-NeoX: use_parallel_residual */
    const char *theta_name = "rope_theta", *pct_name = "rotary_pct"; /* the fields GPT-NeoX's came from */
    if (neox) {
        vocab = int_field(&c, "vocab_size", -1);
        dim = int_field(&c, "hidden_size", -1);
        layers = int_field(&c, "num_hidden_layers", -1);
        heads = int_field(&c, "num_attention_heads", -1);
        kv_heads = heads;
        head_dim = heads ? dim / heads : 1;
        hidden = int_field(&c, "intermediate_size", -1);
        positions = int_field(&c, "max_position_embeddings", 2048);
        eps = num_field(&c, "layer_norm_eps", 1e-5);
        /* rope_theta in transformers 4.4x and later, rotary_emb_base before */
        if (!field(&c, "rope_theta")) theta_name = "rotary_emb_base";
        theta = num_field(&c, theta_name, 10000);
        field(&c, "rotary_emb_base");
        if (field(&c, "partial_rotary_factor")) pct_name = "partial_rotary_factor";
        Field *pct_f = field(&c, pct_name);
        double pct = num_field(&c, pct_name, 0.25);
        field(&c, "rotary_pct");
        tied = bool_field(&c, "tie_word_embeddings", false);
        parallel = bool_field(&c, "use_parallel_residual", true);
        attn_bias = bool_field(&c, "attention_bias", true);
        mlp_bias = true;
        const char *fn = str_field(&c, "hidden_act", "gelu");
        if (!strcmp(fn, "gelu")) act = "gelu";
        else if (!strcmp(fn, "gelu_new") || !strcmp(fn, "gelu_pytorch_tanh") || !strcmp(fn, "gelu_fast")) act = "gelu_tanh";
        else if (!strcmp(fn, "relu")) act = "relu";
        else if (!strcmp(fn, "silu")) act = "silu";
        else refuse(&c, field(&c, "hidden_act"), "tfmc has gelu, gelu_new (gelu_tanh), relu and silu", "`hidden_act` is \"%s\", which tfmc does not have", fn);
        if (!c.failed && heads > 0 && dim % heads == 0) {
            /* transformers: rotary_ndims = int(head_size * rotary_pct) */
            rotary = (long)(head_dim * pct);
            if (!(pct > 0) || pct > 1 || rotary < 2 || rotary % 2)
                refuse(&c, pct_f, "tfmc rotates an even number of dimensions, at least 2, of each head",
                       "`%s` %g gives %ld rotating dimensions of a head of %ld", pct_name, pct, rotary, head_dim);
            if (rotary == head_dim) rotary = 0;
        }
        Field *rs = field(&c, "rope_scaling");
        if (rs && rs->type != JSON_NULL) read_rope_scaling(&c, rs, scaling, sizeof scaling);
    } else if (gpt2) {
        vocab = int_field(&c, "vocab_size", -1);
        dim = int_field(&c, "n_embd", -1);
        layers = int_field(&c, "n_layer", -1);
        heads = int_field(&c, "n_head", -1);
        kv_heads = heads;
        head_dim = dim / heads;
        hidden = int_field(&c, "n_inner", 4 * dim);
        positions = int_field(&c, "n_positions", -1);
        eps = num_field(&c, "layer_norm_epsilon", 1e-5);
        tied = bool_field(&c, "tie_word_embeddings", true);
        const char *fn = str_field(&c, "activation_function", "gelu_new");
        Field *fn_f = field(&c, "activation_function");
        if (!strcmp(fn, "gelu_new") || !strcmp(fn, "gelu_pytorch_tanh")) act = "gelu_tanh";
        else if (!strcmp(fn, "gelu")) act = "gelu";
        else if (!strcmp(fn, "relu")) act = "relu";
        else refuse(&c, fn_f, "tfmc has gelu_new (gelu_tanh), gelu and relu", "`activation_function` is \"%s\", which tfmc does not have", fn);
        must_be(&c, "scale_attn_weights", 1, "tfmc scales attention scores by 1/sqrt(head_dim)");
        must_be(&c, "scale_attn_by_inverse_layer_idx", 0, "tfmc does not scale scores by the layer index");
        must_be(&c, "add_cross_attention", 0, "tfmc has no cross-attention");
    } else {
        vocab = int_field(&c, "vocab_size", -1);
        dim = int_field(&c, "hidden_size", -1);
        layers = int_field(&c, "num_hidden_layers", -1);
        heads = int_field(&c, "num_attention_heads", -1);
        kv_heads = int_field(&c, "num_key_value_heads", heads);
        head_dim = int_field(&c, "head_dim", heads ? dim / heads : 1);
        hidden = int_field(&c, "intermediate_size", -1);
        positions = int_field(&c, "max_position_embeddings", 2048);
        eps = num_field(&c, "rms_norm_eps", 1e-6);
        theta = num_field(&c, "rope_theta", 10000);
        tied = bool_field(&c, "tie_word_embeddings", false);
        if (gemma) {
            /* Gemma: hidden_activation when given, else hidden_act (as transformers 4.5x reads it) */
            eps = num_field(&c, "rms_norm_eps", 1e-6);
            tied = bool_field(&c, "tie_word_embeddings", true);
            Field *ha = field(&c, "hidden_activation");
            bool given = ha && ha->type != JSON_NULL;
            const char *an = given ? "hidden_activation" : "hidden_act";
            const char *fn = str_field(&c, an, "gelu_pytorch_tanh");
            if (!strcmp(fn, "gelu_pytorch_tanh") || !strcmp(fn, "gelu_new") || !strcmp(fn, "gelu_tanh")) act = "geglu_tanh";
            else if (!strcmp(fn, "gelu")) act = "geglu";
            else refuse(&c, field(&c, an), "tfmc's gated MLPs are geglu_tanh (gelu_pytorch_tanh), geglu (gelu) and swiglu (silu)",
                        "`%s` is \"%s\", which tfmc does not have in a gemma MLP", an, fn);
            if (!given && act && !strcmp(act, "geglu")) {
                SrcLoc loc;
                place(&c, field(&c, "hidden_act")->at, &loc);
                diag_warning(&ctx->diags, cfg, loc, "`hidden_act` is \"gelu\" and `hidden_activation` is not given: imported as exact "
                             "gelu, as transformers 4.5x runs it (earlier versions ran gelu_pytorch_tanh)");
            }
        } else {
            const char *fn = str_field(&c, "hidden_act", "silu");
            if (strcmp(fn, "silu")) refuse(&c, field(&c, "hidden_act"), "tfmc's gated MLP with silu is swiglu", "`hidden_act` is \"%s\", which tfmc does not have in a %s MLP", fn, type);
            act = "swiglu";
        }
        attn_bias = bool_field(&c, "attention_bias", false);
        mlp_bias = bool_field(&c, "mlp_bias", false);
        qkv_bias = !strcmp(type, "qwen2"); /* Qwen 2: biases on q, k and v, none on o */
        Field *rs = field(&c, "rope_scaling");
        if (rs && rs->type != JSON_NULL) read_rope_scaling(&c, rs, scaling, sizeof scaling);
        must_be(&c, "pretraining_tp", 1, "pretraining_tp splits the projections in training only when it is 1");
        if (!strcmp(type, "phi3")) {
            must_be(&c, "partial_rotary_factor", 1, "tfmc's rotary positions turn every dimension of a head");
            field(&c, "original_max_position_embeddings"); /* used only by rope_scaling */
        }
        if (!strcmp(type, "mistral") || !strcmp(type, "phi3")) {
            Field *sw = field(&c, "sliding_window");
            if (sw && sw->type != JSON_NULL) window = int_field(&c, "sliding_window", 0);
        } else if (!strcmp(type, "qwen2") || qwen3) {
            bool sliding = bool_field(&c, "use_sliding_window", false);
            field(&c, "sliding_window"); /* used only with use_sliding_window */
            if (sliding) refuse(&c, field(&c, "use_sliding_window"), NULL, "`use_sliding_window` is true: Qwen 2's per-layer windows are not in tfmc yet");
        }
    }
    if (!c.failed && (dim % heads || (kv_heads && heads % kv_heads)))
        refuse(&c, NULL, NULL, "the heads do not divide: %ld heads, %ld key/value heads, hidden size %ld", heads, kv_heads, dim);
    for (int i = 0; i < c.n; i++)
        if (!c.f[i].used && !ignorable(c.f[i].name)) {
            SrcLoc loc;
            place(&c, c.f[i].at, &loc);
            diag_warning(&ctx->diags, cfg, loc, "config.json's `%s` (%s) is not a field tfmc knows for %s; the imported model ignores it",
                         c.f[i].name, c.f[i].str, type);
        }
    if (c.failed) return TFMC_ERR_INPUT;
    int eos[16];
    const char *eos_from = NULL;
    int neos = read_eos(ctx, dir, &c, eos, 16, &eos_from);
    for (int i = 0; i < neos; i++)
        if (eos[i] >= vocab) neos = 0; /* an eos outside the vocabulary would not load: leave it out */

    long max_len = positions > IMPORT_MAX_LEN ? IMPORT_MAX_LEN : positions;
    Out o = { fp };
    char name[64];
    const char *base = strrchr(real_dir, '/');
    snprintf(name, sizeof name, "%s", base && base[1] ? base + 1 : "imported");
    for (char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) *p = '_';
    if (name[0] >= '0' && name[0] <= '9') name[0] = '_';
    fprintf(fp, "# Imported by tfmc %s from %s (model_type \"%s\"): the checkpoint unchanged.\n", tfmc_version(), real_dir, type);
    fprintf(fp, "# Each line says the config.json field it comes from.\n");
    fprintf(fp, "model %s {\n", name);
    line(&o, 2, gpt2 ? "vocab_size" : "vocab_size", "vocab %ld;", vocab);
    if (max_len < positions)
        line(&o, 2, arena_printf(a, "%s %ld, capped at %d: the KV caches grow with it", gpt2 ? "n_positions" : "max_position_embeddings",
                                 positions, IMPORT_MAX_LEN), "max_len %ld;", max_len);
    else
        line(&o, 2, gpt2 ? "n_positions" : "max_position_embeddings", "max_len %ld;", max_len);
    line(&o, 2, gpt2 ? "n_embd" : "hidden_size", "dim %ld;", dim);
    line(&o, 2, "the checkpoint, read unchanged", "weights \"%s%s\" as %s;", prefix, weights,
         gpt2 ? "gpt2" : neox ? "gpt_neox" : "llama");
    if (have_tokenizer) line(&o, 2, "tokenizer.json", "tokenizer \"%stokenizer.json\";", prefix);
    if (neos) {
        char ids[200] = "";
        size_t at = 0;
        for (int i = 0; i < neos; i++) at += (size_t)snprintf(ids + at, sizeof ids - at, "%s%d", i ? ", " : "", eos[i]);
        line(&o, 2, eos_from, "eos %s;", ids);
    }
    char rot[64] = "", emb_scale[64] = "";
    if (rotary) snprintf(rot, sizeof rot, ", dims %ld", rotary);
    /* Gemma: the embedding times sqrt(hidden_size), rounded to float as transformers does */
    if (gemma) snprintf(emb_scale, sizeof emb_scale, ", scale %.9g", (double)(float)sqrt((double)dim));
    const char *pos_from = neox ? (rotary ? arena_printf(a, "%s, %s: partial rotary", theta_name, pct_name) : theta_name)
                                : gemma ? "rope_theta; Gemma: embedding times sqrt(hidden_size)" : "rope_theta";
    if (gpt2) line(&o, 2, "GPT-2: learned positions", "embed token, position learned;");
    else if (scaling[0])
        line(&o, 2, arena_printf(a, "%s, rope_scaling", pos_from), "embed token, position rope(base %.9g%s, %s)%s;", theta, rot,
             scaling, emb_scale);
    else line(&o, 2, pos_from, "embed token, position rope(base %.9g%s)%s;", theta, rot, emb_scale);
    line(&o, 2, gpt2 ? "n_layer" : "num_hidden_layers", "block x %ld {", layers);
    if (neox) {
        line(&o, 4, arena_printf(a, "num_attention_heads, layer_norm_eps, attention_bias%s", parallel ? ", use_parallel_residual" : ""),
             "attention heads %ld, causal, norm layernorm(eps %.9g), bias %s%s;", heads, eps, attn_bias ? "true" : "false",
             parallel ? ", parallel" : "");
        line(&o, 4, "intermediate_size, hidden_act, layer_norm_eps", "mlp hidden %ld, act %s, norm layernorm(eps %.9g);", hidden, act, eps);
    } else if (gemma) {
        line(&o, 4, "num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps (Gemma: 1 + w), attention_bias",
             "attention heads %ld, kv_heads %ld, head_dim %ld, causal, norm rmsnorm(eps %.9g, offset 1), bias %s;", heads, kv_heads,
             head_dim, eps, attn_bias ? "true" : "false");
        line(&o, 4, arena_printf(a, "intermediate_size, %s, rms_norm_eps (1 + w)", act && !strcmp(act, "geglu") ? "hidden_act gelu" : "gelu_pytorch_tanh"),
             "mlp hidden %ld, act %s, norm rmsnorm(eps %.9g, offset 1), bias false;", hidden, act, eps);
    } else if (gpt2) {
        line(&o, 4, "n_head, layer_norm_epsilon", "attention heads %ld, causal, norm layernorm(eps %.9g);", heads, eps);
        line(&o, 4, "n_inner, activation_function", "mlp hidden %ld, act %s, norm layernorm(eps %.9g);", hidden, act, eps);
    } else {
        const char *bias = qkv_bias ? (attn_bias ? "true" : "qkv") : attn_bias ? "true" : "false";
        char win[48] = "";
        if (window) snprintf(win, sizeof win, ", window %ld", window);
        char qk[64] = "";
        if (qwen3) snprintf(qk, sizeof qk, ", qk_norm rmsnorm(eps %.9g)", eps);
        line(&o, 4, arena_printf(a, "num_attention_heads, num_key_value_heads, head_dim, rms_norm_eps%s%s%s", window ? ", sliding_window" : "",
                                 qkv_bias ? "; Qwen 2: q, k, v biases" : ", attention_bias", qwen3 ? "; Qwen 3: q and k norms" : ""),
             "attention heads %ld, kv_heads %ld, head_dim %ld, causal%s, norm rmsnorm(eps %.9g)%s, bias %s;", heads, kv_heads,
             head_dim, win, eps, qk, bias);
        line(&o, 4, "intermediate_size, hidden_act silu, rms_norm_eps, mlp_bias", "mlp hidden %ld, act %s, norm rmsnorm(eps %.9g), bias %s;",
             hidden, act, eps, mlp_bias ? "true" : "false");
    }
    line(&o, 2, NULL, "}");
    if (gpt2) line(&o, 2, "layer_norm_epsilon", "norm layernorm(eps %.9g);", eps);
    else if (neox) line(&o, 2, "layer_norm_eps", "norm layernorm(eps %.9g);", eps);
    else if (gemma) line(&o, 2, "rms_norm_eps (Gemma: 1 + w)", "norm rmsnorm(eps %.9g, offset 1);", eps);
    else line(&o, 2, "rms_norm_eps", "norm rmsnorm(eps %.9g);", eps);
    line(&o, 2, "tie_word_embeddings", "unembed %s;", tied ? "tied" : "separate");
    fprintf(fp, "}\n");
    return ferror(fp) ? TFMC_ERR_IO : TFMC_OK;
}

TfmcStatus tfmc_import(TfmcContext *ctx, const char *dir, const char *out_path, FILE *out)
{
    GUARDED(ctx, TfmcStatus, TFMC_ERR_NOMEM, import_dir(ctx, dir, out_path, out));
}
