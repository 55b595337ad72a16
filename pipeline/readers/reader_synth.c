/* reader_synth.c: the synthetic-model reader and the score tensors (qk_mean & co). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_synth.h"
#include "as_util.h"

struct as_reader {
    struct as_synth_spec spec;
    const struct as_synth_gen *gen;
    struct as_tensor_info ti;
    float *row;                    /* as_synth_pad(cols) */
    void *state;                   /* gen->state_size() bytes */
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
    /* element counters are 32-bit and rows int32-indexed */
    if (s->seq_len > (1 << 30) || s->head_dim > (1 << 30) || s->heads > (1 << 30) / s->head_dim)
        return as_error_set(err, AS_ERR_INPUT, "synthetic spec '%s': seq_len and heads * head_dim must be "
                            "at most 2^30", text);
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

/* ---- the score tensors: (L, H, T, T), one (layer, head) matrix at a time */

static void shape_lhtt(const struct as_synth_spec *s, int64_t *sh)
{
    sh[0] = s->layers;
    sh[1] = s->heads;
    sh[2] = s->seq_len;
    sh[3] = s->seq_len;
}

/* A head's parameters; its rows are made from them and the row's key alone. */
struct score_head {
    uint64_t key;
    float offset, slope, diag, scale, sink;
};

static size_t score_state_size(const struct as_synth_spec *s) { return sizeof(struct score_head); }

/* Raw mean QK score of head h at (i, j): a head offset, an ALiBi-like slope times the distance
 * (stronger in early layers), a diagonal bonus, an attention sink on column 0 in about half the
 * heads, and heavy-tailed noise (2% of the entries 4x wider), scaled per head. */
static void score_begin(const struct as_synth_spec *s, const int64_t *mat, int64_t row_end, void *state)
{
    struct score_head *p = state;
    int64_t l = mat[0], h = mat[1], H = s->heads;
    uint64_t hk = as_synth_sub(as_synth_key(s, l, 1), (uint64_t)h);
    double depth = (double)(l + 1) / (double)s->layers;
    double sink = as_synth_u01(as_synth_sub(hk, 14));
    p->key = as_synth_sub(hk, 10);
    p->offset = (float)(2.0 * (as_synth_u01(as_synth_sub(hk, 11)) - 0.5));
    /* 2^(-8 (h + 1) / H) (1.5 - depth) / 4 */
    p->slope = as_synth_expf((float)(-8.0 * 0.6931471805599453 * (double)(h + 1) / (double)H)) *
               (float)((1.5 - depth) * 0.25);
    p->diag = (float)(0.5 + 2.0 * as_synth_u01(as_synth_sub(hk, 12)) * (1.0 - 0.5 * depth));
    p->scale = (float)(0.3 + 0.7 * as_synth_u01(as_synth_sub(hk, 13)));
    p->sink = sink < 0.5 ? (float)(6.0 * sink) : 0.0f;
}

static void score_row(const struct as_synth_spec *s, const struct score_head *p, int64_t i, int64_t n, float *dst)
{
    as_synth_noise(as_synth_sub(p->key, (uint64_t)i), n, 5, 4.0f, dst);
    as_synth_ramp(dst, n, i, p->offset, -p->slope, p->scale);
    if (i < n)
        dst[i] += p->diag;
    dst[0] += p->sink;
}

static void qk_mean_row(const struct as_synth_spec *s, void *state, int64_t i, float *dst)
{
    score_row(s, state, i, s->seq_len, dst);
}

/* Variances: positive, larger where |score| is larger. */
static void qk_var_row(const struct as_synth_spec *s, void *state, int64_t i, float *dst)
{
    score_row(s, state, i, s->seq_len, dst);
    as_synth_square(dst, s->seq_len, 0.1f, 0.5f);
}

/* Causal softmax of the row's scores (mean attention probabilities); above the diagonal 0.
 * Only the causal part of the scores is made. */
static void probs_mean_row(const struct as_synth_spec *s, void *state, int64_t i, float *dst)
{
    score_row(s, state, i, i + 1, dst);
    as_synth_softmax_causal(dst, i, s->seq_len);
}

static void probs_var_row(const struct as_synth_spec *s, void *state, int64_t i, float *dst)
{
    probs_mean_row(s, state, i, dst);
    as_synth_bernvar(dst, s->seq_len, 0.1f);
}

static const struct as_synth_gen gen_qk_mean = { "qk_mean", 4, shape_lhtt, score_state_size, score_begin, qk_mean_row };
static const struct as_synth_gen gen_qk_var = { "qk_var", 4, shape_lhtt, score_state_size, score_begin, qk_var_row };
static const struct as_synth_gen gen_probs_mean = { "attention_probs_mean", 4, shape_lhtt, score_state_size,
                                                    score_begin, probs_mean_row };
static const struct as_synth_gen gen_probs_var = { "attention_probs_var", 4, shape_lhtt, score_state_size,
                                                   score_begin, probs_var_row };

const struct as_synth_gen *const as_synth_score_gens[] = { &gen_qk_mean, &gen_qk_var, &gen_probs_mean,
                                                           &gen_probs_var, NULL };

static const struct as_synth_gen *find_gen(const char *name)
{
    const struct as_synth_gen *const *tabs[] = { as_synth_score_gens, as_synth_attn_gens, as_synth_acts_gens };
    for (size_t t = 0; t < 3; t++)
        for (const struct as_synth_gen *const *g = tabs[t]; *g; g++)
            if (!strcmp((*g)->name, name))
                return *g;
    return NULL;
}

static void synth_close(struct as_reader *r);

static int synth_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    struct as_reader *r = as_xcalloc(1, sizeof *r);
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
    r->row = as_xmalloc((size_t)as_synth_pad(r->ti.shape[r->ti.ndim - 1]) * sizeof *r->row);
    r->state = as_xmalloc(r->gen->state_size(&r->spec) + 1);
    *out = r;
    return 0;
}

static const struct as_tensor_info *synth_info(const struct as_reader *r) { return &r->ti; }

/* Matrix by matrix (dims 0 .. nd-3 of the slab, C order), row by row: each row is made whole
 * and its requested cols copied, converted. */
static int synth_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out,
                      void *dst, struct as_error *err)
{
    int nd = r->ti.ndim, nm = nd - 2;
    int64_t mat[AS_MAX_DIMS], idx[AS_MAX_DIMS] = { 0 };
    int64_t c0 = start[nd - 1], nc = count[nd - 1], r0 = start[nd - 2], nr = count[nd - 2];
    if (as_shape_numel(nd, count) <= 0)
        return 0;
    float *f = dst;
    double *d = dst;
    for (;;) {
        for (int k = 0; k < nm; k++)
            mat[k] = start[k] + idx[k];
        r->gen->begin(&r->spec, mat, r0 + nr, r->state);
        for (int64_t i = r0; i < r0 + nr; i++) {
            r->gen->row(&r->spec, r->state, i, r->row);
            if (out == AS_DTYPE_F32) {
                memcpy(f, r->row + c0, (size_t)nc * sizeof *f);
                f += nc;
            } else {
                as_synth_widen(d, r->row + c0, nc);
                d += nc;
            }
        }
        int k = nm - 1;
        for (; k >= 0; k--) {
            if (++idx[k] < count[k])
                break;
            idx[k] = 0;
        }
        if (k < 0)
            return 0;
    }
}

static void synth_close(struct as_reader *r)
{
    if (!r)
        return;
    free(r->row);
    free(r->state);
    free(r);
}

const struct as_reader_ops as_reader_synth = {
    .name = "synthetic", .open = synth_open, .info = synth_info, .read = synth_read, .close = synth_close,
};
