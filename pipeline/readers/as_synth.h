/* as_synth.h: built-in synthetic models, so every stage can run with no data of the user's.
 *
 * A synthetic model is a spec (layers, heads, seq_len, batch, head_dim, seed, model name); each
 * tensor of it is generated one layer at a time, deterministically from (seed, model, layer,
 * index) with counter-based hashing, so any rank can make any layer and the results never depend
 * on who made it. The structure is realistic enough that every statistic is non-trivial: ALiBi-like
 * position bias, head-specific offsets and slopes, a diagonal unlike the off-diagonal, heavy tails.
 *
 * Tensors (float32):
 *   qk_mean, qk_var, attention_probs_mean, attention_probs_var   (L, H, T, T)
 *   attn, grad                                                    (L, B, H, T, T)
 *   q_acts, k_acts, v_acts                                        (L, T, D), D = H * head_dim
 * It is opened as a reader (as_reader_synth) on a spec string made by as_synth_spec_format(),
 * with the tensor name as the key. */
#ifndef AS_PIPELINE_AS_SYNTH_H
#define AS_PIPELINE_AS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "as_reader.h"

struct as_synth_spec {
    int64_t layers, heads, seq_len, batch, head_dim;
    uint64_t seed;
    char model[128];
};

/* "synthetic:layers=6,heads=8,seq_len=128,batch=2,head_dim=16,seed=7,model=synth-b" */
void as_synth_spec_format(const struct as_synth_spec *s, char *buf, size_t n);
int as_synth_spec_parse(const char *text, struct as_synth_spec *s, struct as_error *err);

/* One generator per tensor name. layer() fills one whole layer, C order, of shape ti->shape[1:]. */
struct as_synth_gen {
    const char *name;
    int ndim;                      /* including the layer dim */
    void (*shape)(const struct as_synth_spec *s, int64_t *shape);
    int (*layer)(const struct as_synth_spec *s, int64_t layer, float *dst, struct as_error *err);
};

/* Generators defined elsewhere (NULL-terminated tables): attention probabilities and
 * gradients (synth_attn.c), Q/K/V activations (synth_acts.c). */
extern const struct as_synth_gen *const as_synth_attn_gens[];
extern const struct as_synth_gen *const as_synth_acts_gens[];

/* Hash of (seed, model name, layer, stream): the base of every per-element counter. */
uint64_t as_synth_key(const struct as_synth_spec *s, int64_t layer, uint64_t stream);
/* Standard normal from a counter (Box-Muller on two hashes). */
double as_synth_normal(uint64_t key, uint64_t i);

#endif
