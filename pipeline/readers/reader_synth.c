/* reader_synth.c: the synthetic-model reader and the score tensors (qk_mean & co). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_synth.h"
#include "as_util.h"

struct as_reader {
    struct as_synth_spec spec;
    const struct as_synth_gen *gen;
    struct as_tensor_info ti;
    int64_t layer_elems;
    int64_t cached_layer;          /* layer held in buf, -1 none */
    float *buf;
};

void as_synth_spec_format(const struct as_synth_spec *s, char *buf, size_t n)
{
    snprintf(buf, n, "synthetic:layers=%lld,heads=%lld,seq_len=%lld,batch=%lld,head_dim=%lld,seed=%llu,model=%s",
             (long long)s->layers, (long long)s->heads, (long long)s->seq_len, (long long)s->batch,
             (long long)s->head_dim, (unsigned long long)s->seed, s->model);
}

int as_synth_spec_parse(const char *text, struct as_synth_spec *s, struct as_error *err)
{
    memset(s, 0, sizeof *s);
    if (strncmp(text, "synthetic:", 10))
        return as_error_set(err, AS_ERR_INPUT, "'%s' is not a synthetic spec", text);
    const char *p = text + 10;
    while (*p) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        if (!eq)
            return as_error_set(err, AS_ERR_INPUT, "synthetic spec '%s' is malformed", text);
        size_t klen = (size_t)(eq - p);
        const char *v = eq + 1;
        if (klen == 5 && !strncmp(p, "model", 5)) { /* last: may hold commas */
            as_strlcpy(s->model, v, sizeof s->model);
            break;
        }
        long long x = strtoll(v, NULL, 10);
        if (klen == 6 && !strncmp(p, "layers", 6)) s->layers = x;
        else if (klen == 5 && !strncmp(p, "heads", 5)) s->heads = x;
        else if (klen == 7 && !strncmp(p, "seq_len", 7)) s->seq_len = x;
        else if (klen == 5 && !strncmp(p, "batch", 5)) s->batch = x;
        else if (klen == 8 && !strncmp(p, "head_dim", 8)) s->head_dim = x;
        else if (klen == 4 && !strncmp(p, "seed", 4)) s->seed = (uint64_t)x;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (s->layers < 1 || s->heads < 1 || s->seq_len < 1 || s->batch < 1 || s->head_dim < 1)
        return as_error_set(err, AS_ERR_INPUT, "synthetic spec '%s' has a non-positive size", text);
    return 0;
}

uint64_t as_synth_key(const struct as_synth_spec *s, int64_t layer, uint64_t stream)
{
    uint64_t h = as_mix64(s->seed ^ 0x5bd1e995u);
    for (const char *c = s->model; *c; c++)
        h = as_mix64(h ^ (unsigned char)*c);
    h = as_mix64(h ^ (uint64_t)layer);
    return as_mix64(h ^ (stream * 0x9e3779b97f4a7c15ULL));
}

double as_synth_normal(uint64_t key, uint64_t i)
{
    double u1 = as_u01(as_mix64(key ^ (2 * i))), u2 = as_u01(as_mix64(key ^ (2 * i + 1)));
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- the score tensors: (L, H, T, T) */

static void shape_lhtt(const struct as_synth_spec *s, int64_t *sh)
{
    sh[0] = s->layers;
    sh[1] = s->heads;
    sh[2] = s->seq_len;
    sh[3] = s->seq_len;
}

/* Raw mean QK score of head h at (i, j): a head offset, an ALiBi-like slope times the distance
 * (stronger in early layers), a diagonal bonus, and heavy-tailed noise (normal / sqrt of a
 * uniform mix), all averaged over a notional batch, so the scale shrinks like real means. */
static void scores_layer(const struct as_synth_spec *s, int64_t l, float *dst)
{
    int64_t H = s->heads, T = s->seq_len;
    uint64_t key = as_synth_key(s, l, 1);
    double depth = (double)(l + 1) / (double)s->layers;
    for (int64_t h = 0; h < H; h++) {
        uint64_t hk = as_mix64(key ^ (uint64_t)h);
        double offset = 2.0 * (as_u01(as_mix64(hk ^ 11)) - 0.5);
        double slope = pow(2.0, -8.0 * (double)(h + 1) / (double)H) * (1.5 - depth);
        double diag = 0.5 + 2.0 * as_u01(as_mix64(hk ^ 12)) * (1.0 - 0.5 * depth);
        double scale = 0.3 + 0.7 * as_u01(as_mix64(hk ^ 13));
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j < T; j++) {
                uint64_t idx = (uint64_t)(i * T + j);
                double z = as_synth_normal(hk, idx);
                double u = as_u01(as_mix64(hk ^ (idx * 0xd6e8feb86659fd93ULL) ^ 77));
                double tail = u < 0.02 ? 4.0 : 1.0; /* 2% of entries from a wider distribution */
                double v = offset - slope * fabs((double)(i - j)) * 0.25 + scale * tail * z;
                if (i == j)
                    v += diag;
                dst[(h * T + i) * T + j] = (float)v;
            }
    }
}

static int gen_qk_mean(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    scores_layer(s, l, dst);
    return 0;
}

/* Variances: positive, larger where |score| is larger. */
static int gen_qk_var(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    scores_layer(s, l, dst);
    int64_t n = s->heads * s->seq_len * s->seq_len;
    for (int64_t k = 0; k < n; k++)
        dst[k] = (float)(0.1 + 0.5 * dst[k] * dst[k]);
    return 0;
}

/* Causal softmax of the scores per row (mean attention probabilities); upper triangle 0. */
static int gen_probs_mean(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    int64_t H = s->heads, T = s->seq_len;
    scores_layer(s, l, dst);
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < T; i++) {
            float *row = dst + (h * T + i) * T;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j <= i; j++)
                mx = row[j] > mx ? row[j] : mx;
            for (int64_t j = 0; j <= i; j++)
                sum += exp(row[j] - mx);
            for (int64_t j = 0; j < T; j++)
                row[j] = j <= i ? (float)(exp(row[j] - mx) / sum) : 0.0f;
        }
    return 0;
}

static int gen_probs_var(const struct as_synth_spec *s, int64_t l, float *dst, struct as_error *err)
{
    gen_probs_mean(s, l, dst, err);
    int64_t n = s->heads * s->seq_len * s->seq_len;
    for (int64_t k = 0; k < n; k++)
        dst[k] = dst[k] * (1.0f - dst[k]) * 0.1f;
    return 0;
}

static const struct as_synth_gen gen_table[] = {
    { "qk_mean", 4, shape_lhtt, gen_qk_mean },
    { "qk_var", 4, shape_lhtt, gen_qk_var },
    { "attention_probs_mean", 4, shape_lhtt, gen_probs_mean },
    { "attention_probs_var", 4, shape_lhtt, gen_probs_var },
};

static const struct as_synth_gen *find_gen(const char *name)
{
    for (size_t i = 0; i < sizeof gen_table / sizeof gen_table[0]; i++)
        if (!strcmp(gen_table[i].name, name))
            return &gen_table[i];
    const struct as_synth_gen *const *tabs[] = { as_synth_attn_gens, as_synth_acts_gens };
    for (size_t t = 0; t < 2; t++)
        for (const struct as_synth_gen *const *g = tabs[t]; g && *g; g++)
            if (!strcmp((*g)->name, name))
                return *g;
    return NULL;
}

static int synth_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    struct as_reader *r = calloc(1, sizeof *r);
    if (!r)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    if (as_synth_spec_parse(path, &r->spec, err)) {
        free(r);
        return -1;
    }
    r->gen = key ? find_gen(key) : NULL;
    if (!r->gen) {
        as_error_set(err, AS_ERR_INPUT, "synthetic model '%s' has no tensor '%s'", r->spec.model, key ? key : "");
        free(r);
        return -1;
    }
    r->ti.dtype = AS_DTYPE_F32;
    r->ti.ndim = r->gen->ndim;
    r->gen->shape(&r->spec, r->ti.shape);
    int64_t st = 1;
    for (int d = r->ti.ndim - 1; d >= 0; d--) {
        r->ti.stride[d] = st;
        st *= r->ti.shape[d];
    }
    r->ti.data_offset = -1;
    r->layer_elems = r->ti.stride[0];
    r->cached_layer = -1;
    *out = r;
    return 0;
}

static const struct as_tensor_info *synth_info(const struct as_reader *r) { return &r->ti; }

static int synth_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out,
                      void *dst, struct as_error *err)
{
    int nd = r->ti.ndim;
    int64_t total = as_shape_numel(nd, count), done = 0;
    int64_t idx[AS_MAX_DIMS] = { 0 };
    if (total <= 0)
        return 0;
    if (!r->buf && !(r->buf = malloc((size_t)r->layer_elems * sizeof(float))))
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for a synthetic layer of %lld values",
                            (long long)r->layer_elems);
    /* rows along the last dim are contiguous */
    int64_t run = count[nd - 1];
    while (done < total) {
        int64_t l = start[0] + idx[0];
        if (l != r->cached_layer) {
            if (r->gen->layer(&r->spec, l, r->buf, err))
                return -1;
            r->cached_layer = l;
        }
        int64_t off = 0;
        for (int d = 1; d < nd; d++)
            off += (start[d] + (d < nd - 1 ? idx[d] : 0)) * r->ti.stride[d];
        if (out == AS_DTYPE_F32)
            memcpy((float *)dst + done, r->buf + off, (size_t)run * sizeof(float));
        else
            for (int64_t k = 0; k < run; k++)
                ((double *)dst)[done + k] = r->buf[off + k];
        done += run;
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < count[d])
                break;
            idx[d] = 0;
        }
    }
    return 0;
}

static void synth_close(struct as_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r);
}

const struct as_reader_ops as_reader_synth = {
    .name = "synthetic", .open = synth_open, .info = synth_info, .read = synth_read, .close = synth_close,
};
