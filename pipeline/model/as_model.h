/* as_model.h: a causal language model's forward pass in float32 (cblas_sgemm), loaded from a
 * Hugging Face folder, and head lesions on it (seed 002, demo 3; issue 17).
 *
 * A model folder holds config.json and model.safetensors, or shards listed in
 * model.safetensors.index.json ("weight_map": {key: file}). config.json's "model_type" (or its
 * "architectures" list) picks the architecture (struct as_model_ops, as_model_impl.h); GPT-2 is
 * the one there is. Weights are F32, F16, BF16 (or F64), read through the safetensors reader:
 * F32 tensors are used in place from a read-only shared mapping of the file (ranks on one node
 * share the page cache), the other dtypes are converted to float32 once per process.
 *
 * The clean pass of a prompt keeps the residual stream at the input of every layer and each
 * layer's Q, K, V. A lesion zeroes heads' outputs (the input of the attention output projection,
 * that head's columns) at one position of one layer, as the seed's forward pre-hook does; it
 * restarts from the clean residual stream at the input of its layer instead of recomputing the
 * layers below. Nothing here is collective and a model is read-only once open: one model can
 * serve any number of passes, in any order, with the same bits for the same calls.
 *
 * Errors are input errors (AS_ERR_INPUT, exit 4) with one-line messages naming the file and key:
 * a missing config.json key, an unknown architecture, a missing weight, a wrong weight shape, a
 * token id out of range, a prompt longer than n_positions. Memory: as_xmalloc (exit 7). */
#ifndef AS_PIPELINE_AS_MODEL_H
#define AS_PIPELINE_AS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"

struct as_model_ops;   /* an architecture (as_model_impl.h) */

struct as_model_config {
    int n_layer;            /* L */
    int n_head;             /* H */
    int n_embd;             /* E = H * head_dim */
    int head_dim;           /* d */
    int n_inner;            /* MLP width (GPT-2: 4 E unless config.json's n_inner says) */
    int n_positions;        /* longest prompt */
    int vocab_size;         /* V */
    double ln_eps;          /* LayerNorm epsilon */
};

struct as_model {
    const struct as_model_ops *ops;   /* the architecture, static */
    struct as_model_config cfg;
    char dir[4096];                   /* the folder, as given */
    void *impl;                       /* the architecture's weights: owned, ops->release frees */
    int64_t n_params;                 /* elements of the weights the forward pass uses */
    int64_t mapped_bytes;             /* bytes used in place from the files' mappings */
    int64_t copied_bytes;             /* bytes converted to float32 into this process's memory */
};

/* Open the model in folder dir: config.json, the architecture, every weight (shapes checked).
 * *out is owned by the caller (as_model_free). */
int as_model_open(struct as_model **out, const char *dir, struct as_error *err);
/* Only config.json: the architecture and *cfg, no weights touched (for planning and validate). */
int as_model_probe(const char *dir, struct as_model_config *cfg, struct as_error *err);
void as_model_free(struct as_model *m);                         /* NULL-safe */
const char *as_model_arch(const struct as_model *m);            /* "gpt2": static */

/* Token ids from a text file of whitespace-separated non-negative integers (what the user's
 * tokenizer wrote). *tok is owned by the caller (free()); *n >= 1. Errors name the file and the
 * 0-based index of the bad token. */
int as_model_read_tokens(const char *path, int32_t **tok, int *n, struct as_error *err);
/* Every id in [0, vocab_size), 1 <= n <= n_positions; `what` (e.g. the token file's path) names
 * the prompt in the message. */
int as_model_check_tokens(const struct as_model *m, const int32_t *tok, int n, const char *what,
                          struct as_error *err);

/* One prompt's clean forward pass. Every array is owned by the pass (as_model_pass_release). */
struct as_model_pass {
    int T;                  /* tokens */
    int32_t *tokens;        /* (T,) a copy */
    float *resid;           /* (L+1, T, E): block l is the input of layer l (0: the embeddings);
                               block L the output of the last layer, before the final norm */
    float *q, *k, *v;       /* (L, T, E) each: layer l's queries, keys, values, head h in columns
                               h*d .. h*d+d-1 (the activations stage's (L, T, D) layout) */
    float *logits;          /* (T, V) */
};

/* The clean pass of tok[0..T) (checked with as_model_check_tokens first). */
int as_model_forward(const struct as_model *m, const int32_t *tok, int T, struct as_model_pass *pass,
                     struct as_error *err);
void as_model_pass_release(struct as_model_pass *pass);        /* NULL-safe; zeroes it */

/* A lesion: the outputs of heads[0..n_heads) of `layer` (the input of the attention output
 * projection, head h's d columns) are zeroed at `position` only, together. */
struct as_lesion {
    int layer;              /* 0 .. L-1 */
    int position;           /* 0 .. T-1 */
    int n_heads;            /* >= 1 */
    const int *heads;       /* (n_heads,) each 0 .. H-1; borrowed */
};

/* The exact lesioned pass: layers from_layer .. L-1 on all T rows of the clean residual stream
 * at the input of from_layer (0 <= from_layer <= les->layer), with the lesion applied in its
 * layer, then the logits of row les->position into logits (V,). from_layer = les->layer reuses
 * the clean pass below the lesion; any from_layer gives the same bits, since the layers below
 * compute exactly what the clean pass computed (same kernels, same shapes). */
int as_model_lesion(const struct as_model *m, const struct as_model_pass *clean, const struct as_lesion *les,
                    int from_layer, float *logits, struct as_error *err);

/* n single-head lesions at once: for each i, head heads[i] of `layer` alone zeroed at `position`;
 * logits (n, V) of row `position` for each. Causal attention makes rows before `position` equal
 * to the clean pass in every layer and rows after it irrelevant to row `position`, so only that
 * row is recomputed, from `layer` on, for the n lesions as n rows of one GEMM, attending to the
 * clean pass's keys and values of the earlier positions. About T x cheaper than as_model_lesion
 * and equal to it to float32 rounding (not bitwise: the GEMMs have other shapes). The bits depend
 * only on (layer, position, heads, n) and the clean pass, not on other calls. */
int as_model_lesion_heads(const struct as_model *m, const struct as_model_pass *clean, int layer, int position,
                          const int *heads, int n, float *logits, struct as_error *err);

/* log_softmax(logits)[target], accumulated in double. */
double as_model_logprob(const float *logits, int vocab, int target);
/* The k largest logits' ids, largest first (ties: lower id first), into ids (k,). */
void as_model_topk(const float *logits, int vocab, int k, int *ids);

/* Q, K, V of a model's clean pass as tensors (reader_live.c): path the model folder, key
 * "<q_acts|k_acts|v_acts>@<token file>"; (L, T, E) float32. Registered with the readers
 * (as_reader_register) by the config, so a run can describe and hand it between ranks. */
struct as_reader_ops;
extern const struct as_reader_ops as_reader_live;

#endif
