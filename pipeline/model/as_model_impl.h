/* as_model_impl.h: the architecture interface of pipeline/model (struct as_model_ops) and the
 * weights of a Hugging Face safetensors folder. For architecture files and tests; users of the
 * model include as_model.h only.
 *
 * An architecture provides the pieces the generic passes of as_model.c chain: embeddings, one
 * layer on the T rows of a prompt, one layer on n independent rows at one position (the lesion
 * fast path), and the final norm with the output head. Its Q, K, V are handed out in one layout
 * whatever the architecture stores (BLOOM interleaves q, k, v per head in its fused weight):
 * (rows, E), head h in columns h*d .. h*d+d-1. */
#ifndef AS_PIPELINE_AS_MODEL_IMPL_H
#define AS_PIPELINE_AS_MODEL_IMPL_H

#include <jansson.h>

#include "as_model.h"
#include "as_reader.h"

/* Heads whose output is zeroed in one row of a layer's input to its output projection. */
struct as_head_mask {
    int row;                /* row of the block's rows */
    int n;                  /* heads */
    const int *heads;       /* (n,) borrowed */
};

struct as_model_ops {
    const char *name;       /* "gpt2" */
    /* 1 if config.json's model_type (may be NULL) or one of its architectures names this one */
    int (*matches)(const char *model_type, const char *architecture);
    /* Fill *cfg from config.json (root, parsed; `cfg_path` names it in messages); no weights. */
    int (*config)(struct as_model_config *cfg, const json_t *root, const char *cfg_path, struct as_error *err);
    /* Fill m->cfg, m->impl, m->n_params, m->mapped_bytes, m->copied_bytes from config.json
     * (root, parsed; `cfg_path` names it in messages) and the weights of m->dir. */
    int (*load)(struct as_model *m, const json_t *root, const char *cfg_path, struct as_error *err);
    void (*release)(struct as_model *m);                         /* frees m->impl; NULL-safe impl */
    /* x (T, E) = the embeddings of tok[0..T) at positions 0..T-1 */
    void (*embed)(const struct as_model *m, const int32_t *tok, int T, float *x);
    /* Layer l in place on x (T, E), rows = positions 0..T-1 (causal). mask may be NULL.
     * q, k, v (T, E) each receive the layer's queries, keys, values. */
    void (*layer)(const struct as_model *m, int l, float *x, int T, const struct as_head_mask *mask,
                  float *q, float *k, float *v);
    /* Layer l in place on x (n, E): n independent rows, all at position p, each attending to the
     * keys and values k_prev, v_prev (p, E) of positions 0..p-1 and to itself. zero_head (n,) or
     * NULL: if zero_head[i] >= 0, that head's output is zeroed in row i. */
    void (*layer_rows)(const struct as_model *m, int l, float *x, int n, int p, const float *k_prev,
                       const float *v_prev, const int *zero_head);
    /* logits (n, V) of the rows x (n, E): final norm, output head */
    void (*logits)(const struct as_model *m, const float *x, int n, float *logits);
};

/* The architectures, NULL-terminated (as_model.c). */
extern const struct as_model_ops as_model_gpt2;
extern const struct as_model_ops *const as_model_archs[];

/* ---- the weights of a Hugging Face safetensors folder */

struct as_model_tensor {
    char *key;                      /* owned */
    int file;                       /* index into files */
    struct as_tensor_info ti;       /* from the safetensors reader's listing */
};

struct as_model_weights {
    char dir[4096];
    int n_files;
    char **files;                   /* (n_files,) full paths, owned */
    void **map;                     /* (n_files,) read-only shared mapping of the file, or NULL */
    size_t *map_len;                /* (n_files,) */
    struct as_model_tensor *t;      /* (n,) owned */
    size_t n, alloc;
    const char *prefix;             /* "transformer." when the keys have it, else "" (static) */
    float **owned;                  /* (n_owned,) float32 copies, owned */
    size_t n_owned;
    int64_t mapped_bytes, copied_bytes, n_params;
};

/* List model.safetensors, or the shards of model.safetensors.index.json, of dir (each file's
 * header validated by the safetensors reader). prefix: keys may carry it ("transformer.") or not;
 * both spellings are looked up. */
int as_model_weights_open(struct as_model_weights *w, const char *dir, const char *prefix,
                          struct as_error *err);
/* Tensor `name` (without the prefix) as float32 of exactly the shape shape[0..ndim): in place
 * from the file's mapping when stored as aligned F32, else converted once into owned memory.
 * *out is borrowed, valid until as_model_weights_release. A missing key or another shape is an
 * input error naming the key, the file and both shapes. */
int as_model_weights_get(struct as_model_weights *w, const char *name, int ndim, const int64_t *shape,
                         const float **out, struct as_error *err);
void as_model_weights_release(struct as_model_weights *w);

/* config.json helpers: an integer >= lo (required) or a number (optional, *v kept if absent). */
int as_model_cfg_int(const json_t *root, const char *key, int lo, int *v, const char *cfg_path,
                     struct as_error *err);
int as_model_cfg_num(const json_t *root, const char *key, double *v, const char *cfg_path, struct as_error *err);

#endif
