/* model_gpt2.h: GPT-2's weights and the kernels of its blocks (float32, cblas_sgemm) with their
 * naive double-precision _ref twins (model_gpt2_ref.c), exposed for tests.
 *
 * GPT-2 (Hugging Face's GPT2LMHeadModel): x = wte[tok] + wpe[pos]; per layer
 *   x += c_proj(attn(ln_1(x)))          c_attn: (E, 3E) Conv1D (x @ W + b), q | k | v column blocks
 *   x += mlp.c_proj(gelu(c_fc(ln_2(x)))) gelu with the tanh approximation
 * then logits = ln_f(x) @ wte^T. Attention per head h on columns h*d .. h*d+d-1: causal softmax of
 * q k^T / sqrt(d). A head lesion zeroes head h's columns of the attention output (the input of
 * attn.c_proj) in one row. */
#ifndef AS_PIPELINE_MODEL_GPT2_H
#define AS_PIPELINE_MODEL_GPT2_H

#include "as_model_impl.h"

struct as_gpt2_layer {
    const float *ln1_w, *ln1_b;     /* (E,) (E,) */
    const float *attn_w, *attn_b;   /* (E, 3E) (3E,) */
    const float *proj_w, *proj_b;   /* (E, E) (E,) */
    const float *ln2_w, *ln2_b;     /* (E,) (E,) */
    const float *fc_w, *fc_b;       /* (E, I) (I,) */
    const float *out_w, *out_b;     /* (I, E) (E,) mlp.c_proj */
};

struct as_gpt2 {
    struct as_model_weights w;      /* owns the mappings and copies the pointers below borrow */
    const float *wte;               /* (V, E), also the output head */
    const float *wpe;               /* (n_positions, E) */
    const float *lnf_w, *lnf_b;     /* (E,) (E,) */
    struct as_gpt2_layer *layer;    /* (L,) owned */
};

/* LayerNorm of the rows x (n, E) into y (n, E); mean and variance in double. */
void as_gpt2_layernorm(const float *x, int n, int E, const float *g, const float *b, double eps, float *y);

/* The attention block in place: x (T, E) += c_proj(attn(ln_1(x))), rows at positions 0..T-1.
 * mask may be NULL; q, k, v (T, E) each (may be NULL: not kept). */
void as_gpt2_attn(const struct as_gpt2_layer *w, const struct as_model_config *c, float *x, int T,
                  const struct as_head_mask *mask, float *q, float *k, float *v);
/* The same on n independent rows at position p against k_prev, v_prev (p, E); zero_head as in
 * as_model_ops.layer_rows. */
void as_gpt2_attn_rows(const struct as_gpt2_layer *w, const struct as_model_config *c, float *x, int n, int p,
                       const float *k_prev, const float *v_prev, const int *zero_head);
/* The MLP block in place: x (n, E) += mlp.c_proj(gelu(c_fc(ln_2(x)))). */
void as_gpt2_mlp(const struct as_gpt2_layer *w, const struct as_model_config *c, float *x, int n);

/* Naive twins in double: triple loops, exact tanh, no BLAS. */
void as_gpt2_attn_ref(const struct as_gpt2_layer *w, const struct as_model_config *c, double *x, int T,
                      const struct as_head_mask *mask);
void as_gpt2_mlp_ref(const struct as_gpt2_layer *w, const struct as_model_config *c, double *x, int n);

#endif
