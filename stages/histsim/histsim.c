/* histsim.c: the histogram-similarity stage (seed 000) behind struct as_stage_ops.
 *
 * Prepass (collective, integer counters only, so exact and rank-count independent): the 0.5% and
 * 99.5% quantiles of all the model's values by radix selection over order-preserving keys, 16
 * bits per round (2 rounds for float32, 4 for float64). Round 0 also counts the values and the
 * non-finite ones. `quantile: sampled` takes the order statistics of a deterministic random subset
 * of `samples` element indices (Floyd's algorithm from `seed`), the notebook's method, gathered in
 * one round that reads only the sampled elements.
 *
 * Reads: the full pass of the prepass keeps each head's diagonal and strict lower triangle (all
 * run() needs) in memory within cache_mb, else in a per-rank spill file on node-local disk (option
 * `spill`), else run() reads the triangles again (only them, not the upper half). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_stage.h"
#include "histsim.h"
#include "histsim_spill.h"

enum hs_quantile { HS_EXACT, HS_SAMPLED };
enum hs_nonfinite { HS_NF_ERROR, HS_NF_SKIP };

struct hs_cfg {
    int quantile;                  /* enum hs_quantile */
    int64_t samples;
    uint64_t seed;
    int non_finite;                /* enum hs_nonfinite */
    int n_edges;
    double q[2];                   /* lower and upper quantile */
    char input[64];
    int64_t cache_mb;              /* per-rank budget for layers kept from the prepass to run() */
    char spill[1024];              /* "auto", "off" or a directory for the spill file */
};

#define HS_DIGIT_BITS 16
#define HS_DIGITS (1u << HS_DIGIT_BITS)
#define HS_TARGETS 4               /* lo/hi ranks of the two quantiles */

struct hs_state {
    int f64;                       /* working precision */
    int key_bits;                  /* 32 or 64 */
    uint64_t n;                    /* finite values (of the sample) */
    uint64_t nonfinite;
    uint64_t target[HS_TARGETS];   /* order-statistic ranks */
    uint64_t prefix[HS_TARGETS];   /* resolved high bits of each target's key */
    uint64_t rank_in[HS_TARGETS];  /* rank of the target among keys with that prefix */
    double w[2];                   /* interpolation weights */
    double qval[2];                /* the quantiles */
    int edges_ready;
    float e32[AS_HS_MAX_EDGES];
    double e64[AS_HS_MAX_EDGES];
    uint64_t win_lo[2];            /* first key of each quantile's window */
    int win_buckets[2];            /* its width in buckets of 2^16 keys */
    int window_hit;                /* both quantiles were inside their windows */
    int no_window;                 /* the sample could not bracket a quantile: radix right away */
    int sampled_all;               /* sampled mode with samples >= values: exact */
    /* sampled mode: sorted element indices */
    uint64_t *sample;
    uint64_t n_sample;
    uint64_t layer_elems;
};

#define WHAT "stages.histsim"

extern const struct as_stage_ops as_stage_histsim;

static const char *const hs_quantile_names[] = { "exact", "sampled", NULL };
static const char *const hs_nonfinite_names[] = { "error", "skip", NULL };

/* Every option, recorded as an attribute of the group; the scalars are parsed from here.
 * `non_finite` is also a dataset of the group: its attribute is non_finite_policy. The key
 * `bins` is the deprecated spelling of `edges` (it counts edges, unlike activations' bins). */
static const struct as_stage_option hs_options[] = {
    { .key = "quantile", .attr = "quantile_method", .type = AS_OPT_ENUM, .offset = offsetof(struct hs_cfg, quantile),
      .parse = 1, .i64_default = HS_EXACT, .choices = hs_quantile_names },
    { .key = "samples", .type = AS_OPT_I64, .offset = offsetof(struct hs_cfg, samples), .parse = 1,
      .i64_default = 1000000, .lo = 1, .hi = INT64_C(1) << 31 },
    { .key = "seed", .type = AS_OPT_U64, .offset = offsetof(struct hs_cfg, seed), .parse = 1, .i64_default = 0,
      .lo = 0, .hi = INT64_MAX },
    { .key = "non_finite", .attr = "non_finite_policy", .type = AS_OPT_ENUM,
      .offset = offsetof(struct hs_cfg, non_finite), .parse = 1, .i64_default = HS_NF_ERROR,
      .choices = hs_nonfinite_names },
    { .key = "edges", .type = AS_OPT_INT, .offset = offsetof(struct hs_cfg, n_edges) },
    { .key = "quantiles", .type = AS_OPT_F64VEC, .offset = offsetof(struct hs_cfg, q), .n = 2 },
    { .key = "input", .type = AS_OPT_STR, .offset = offsetof(struct hs_cfg, input) },
    { .key = "cache_mb", .type = AS_OPT_I64, .offset = offsetof(struct hs_cfg, cache_mb), .parse = 1,
      .i64_default = 160, .lo = 0, .hi = INT64_C(1) << 20 },
    { .key = "spill", .type = AS_OPT_STR, .offset = offsetof(struct hs_cfg, spill) },
    { .key = NULL },
};

static int hs_configure(void **out, const struct as_ynode *n, struct as_error *err)
{
    static const char *const deprecated[] = { "bins", NULL };
    struct hs_cfg *c = as_xcalloc(1, sizeof *c);
    int64_t edges;
    const char *input, *spill;
    c->q[0] = 0.005;
    c->q[1] = 0.995;
    if (as_stage_options_parse(hs_options, n, WHAT, deprecated, c, err))
        goto fail;
    const struct as_ynode *bn = as_ynode_get(n, "bins");
    if (bn && as_ynode_get(n, "edges")) {
        as_ynode_error(bn, err, WHAT ": give edges or its deprecated spelling bins, not both");
        goto fail;
    }
    if (as_ynode_get_int(n, WHAT, bn ? "bins" : "edges", 200, 3, AS_HS_MAX_EDGES, &edges, err) ||
        as_ynode_get_str(n, WHAT, "input", "qk_mean", &input, err) ||
        as_ynode_get_str(n, WHAT, "spill", "auto", &spill, err))
        goto fail;
    if (bn)
        as_stage_warn(bn, WHAT ".bins is deprecated: it counts bin edges; write edges: %lld (%lld bins)",
                      (long long)edges, (long long)edges - 1);
    c->n_edges = (int)edges;
    if (strlen(input) >= sizeof c->input || !input[0]) {
        as_ynode_error(as_ynode_get(n, "input"), err, "stages.histsim.input: bad tensor name '%s'", input);
        goto fail;
    }
    memcpy(c->input, input, strlen(input) + 1);
    if (strlen(spill) >= sizeof c->spill || !spill[0]) {
        as_ynode_error(as_ynode_get(n, "spill"), err, WHAT ".spill: expected auto, off or a directory, found '%s'",
                       spill);
        goto fail;
    }
    memcpy(c->spill, spill, strlen(spill) + 1);
    const struct as_ynode *qs = as_ynode_get(n, "quantiles");
    if (qs) {
        if (qs->kind != AS_YNODE_SEQ || qs->n != 2 || as_ynode_to_double(qs->items[0], "stages.histsim.quantiles",
                                                                          &c->q[0], err) ||
            as_ynode_to_double(qs->items[1], "stages.histsim.quantiles", &c->q[1], err)) {
            if (err->status == AS_OK || err->msg[0] == '\0')
                as_ynode_error(qs, err, "stages.histsim.quantiles: expected [low, high]");
            else if (qs->kind != AS_YNODE_SEQ || qs->n != 2)
                as_ynode_error(qs, err, "stages.histsim.quantiles: expected [low, high]");
            goto fail;
        }
        if (!(c->q[0] >= 0 && c->q[0] < c->q[1] && c->q[1] <= 1)) {
            as_ynode_error(qs, err, "stages.histsim.quantiles: need 0 <= low < high <= 1");
            goto fail;
        }
    }
    *out = c;
    return 0;
fail:
    free(c);
    return -1;
}

static void hs_release(void *cfg) { free(cfg); }

static int hs_inputs(const void *cfg, const char **names)
{
    names[0] = ((const struct hs_cfg *)cfg)->input;
    return 1;
}

/* The per-layer values of one head, as a part's record (the row holds them field by field). */
struct hs_head_rec {
    double within_diag, within_lower, js, mean_diag, mean_lower;
    int64_t non_finite;
};

static int hs_shape(const void *cfg, const struct as_tensor_info *const *info, struct as_stage_shape *out,
                    struct as_error *err)
{
    const struct as_tensor_info *ti = info[0];
    const struct hs_cfg *c = cfg;
    char sh[128];
    if (ti->ndim != 4 || ti->shape[2] != ti->shape[3])
        return as_error_set(err, AS_ERR_INPUT, "tensor '%s' must be (layers, heads, seq_len, seq_len), found %d dims %s",
                            c->input, ti->ndim, as_shape_str(ti, sh, sizeof sh));
    if (ti->shape[0] < 1 || ti->shape[1] < 1 || ti->shape[2] < 1)
        return as_error_set(err, AS_ERR_INPUT, "tensor '%s' is empty %s", c->input, as_shape_str(ti, sh, sizeof sh));
    out->n_layers = ti->shape[0];
    out->n_heads = ti->shape[1];
    out->seq_len = ti->shape[2];
    double htt = (double)ti->shape[1] * (double)ti->shape[2] * (double)ti->shape[3];
    out->unit_cost = 1.6 * htt; /* one full read, a sampled one, the histograms of half the layer */
    out->unit_bytes = (int64_t)(htt * (double)as_dtype_traits[ti->dtype].size);
    /* units finer than a layer: one part per head, its record the head's per-layer values */
    out->n_phases = 1;
    out->parts[0] = out->n_heads;
    out->phase_cost[0] = out->unit_cost;
    out->phase_bytes[0] = (size_t)out->n_heads * sizeof(struct hs_head_rec);
    return 0;
}

/* Fields, in schema order: per layer (L, H), then the model's bin edges. */
enum { HS_F_WITHIN_DIAG, HS_F_WITHIN_LOWER, HS_F_JS, HS_F_MEAN_DIAG, HS_F_MEAN_LOWER, HS_F_NON_FINITE, HS_F_BINS,
       HS_F_COUNT };

static const char *const hs_dims_head[] = { "head" };
static const char *const hs_dims_edge[] = { "edge" };

static int hs_schema(const void *cfg, const struct as_stage_shape *sh, struct as_field *f)
{
    const struct hs_cfg *c = cfg;
    int n = 0;
#define HS_LH(nm, ty, desc) f[n++] = (struct as_field){ nm, desc, ty, 1, 1, { sh->n_heads }, { hs_dims_head[0] } }
    HS_LH("within_diag", AS_FTYPE_F64, "1 - normalised entropy of the histogram of the diagonal scores");
    HS_LH("within_lower", AS_FTYPE_F64, "1 - normalised entropy of the histogram of the strictly lower triangle");
    HS_LH("js_similarity", AS_FTYPE_F64, "1 - Jensen-Shannon divergence (natural log) of diagonal vs lower histograms");
    HS_LH("mean_diag", AS_FTYPE_F64, "mean of the diagonal scores (finite values)");
    HS_LH("mean_lower", AS_FTYPE_F64, "mean of the strictly lower triangle scores (finite values)");
    HS_LH("non_finite", AS_FTYPE_I64, "NaN/Inf values skipped in this (layer, head) (non_finite: skip)");
#undef HS_LH
    f[n++] = (struct as_field){ "bins", "bin edges: linspace between the quantiles, as torch computes them",
                                AS_FTYPE_F64, 0, 1, { c->n_edges }, { hs_dims_edge[0] } };
    return n;
}

static size_t hs_state_size(const void *cfg, const struct as_stage_shape *sh) { return sizeof(struct hs_state); }

/* ---- prepass
 *
 * float32, exact (the common case), rounds:
 *   0 SAMPLE  one row in HS_SAMPLE_STRIDE of every head (hashed): a top-16-bit key histogram, the same
 *             on every rank after the sum; it brackets each quantile with a window of key buckets
 *   1 WINDOW  one full pass: per quantile, the count of values below its window and an exact
 *             histogram of the keys inside it (dense, one counter per key), plus totals; each
 *             head's diagonal and lower triangle are kept for run() (memory, else spill file)
 *   2, 3      RADIX, only when a quantile fell outside its window (never seen in practice)
 * float64 uses RADIX from round 0 (4 rounds; the last one keeps the triangles for run()).
 * `quantile: sampled` has one round, GATHER: one counter per sampled element (its key + 1). */

#define HS_SAMPLE_STRIDE 16
#define HS_MAX_WINDOW 32           /* buckets of 2^16 keys per window (2M counters) */

enum hs_phase { HS_PH_SAMPLE, HS_PH_WINDOW, HS_PH_RADIX, HS_PH_GATHER };

static int hs_windowed(const struct hs_state *s) { return !s->f64 && !s->sample; }

static enum hs_phase hs_phase_of(const struct hs_state *s, int round, int *radix_round)
{
    *radix_round = 0;
    if (s->sample)
        return HS_PH_GATHER;
    if (!hs_windowed(s)) {
        *radix_round = round;
        return HS_PH_RADIX;
    }
    /* radix rounds start after the window (round 2), or right after the sample (round 1) when
     * the sample was too small to bracket the quantiles */
    int radix_base = s->no_window ? 1 : 2;
    *radix_round = round - radix_base;
    return round == 0 ? HS_PH_SAMPLE : round < radix_base ? HS_PH_WINDOW : HS_PH_RADIX;
}

static size_t hs_window_size(const struct hs_state *s, int q) { return (size_t)s->win_buckets[q] << HS_DIGIT_BITS; }

static size_t hs_prepass_count(const void *cfg, const void *state, int round)
{
    const struct hs_state *s = state;
    int rr;
    switch (hs_phase_of(s, round, &rr)) {
    case HS_PH_SAMPLE:
        return HS_DIGITS;
    case HS_PH_WINDOW:
        return 4 + hs_window_size(s, 0) + hs_window_size(s, 1);
    case HS_PH_GATHER:
        return (size_t)s->n_sample;
    default: /* radix round 0: one histogram + [n, nonfinite]; later: one histogram per target */
        return rr == 0 ? HS_DIGITS + 2 : (size_t)HS_TARGETS * HS_DIGITS;
    }
}

/* Sort a[0..n) (values < 2^bits) ascending: LSD radix sort, 16-bit digits, through tmp (n);
 * cnt is scratch (2^16). */
static void hs_sort_u64(uint64_t *a, uint64_t *tmp, size_t *cnt, size_t n, int bits)
{
    for (int shift = 0; shift < bits; shift += 16) {
        memset(cnt, 0, ((size_t)1 << 16) * sizeof *cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(a[i] >> shift) & 0xffff]++;
        size_t pos = 0;
        for (size_t d = 0; d < (1 << 16); d++) {
            size_t c = cnt[d];
            cnt[d] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            tmp[cnt[(a[i] >> shift) & 0xffff]++] = a[i];
        uint64_t *t = a;
        a = tmp, tmp = t;
    }
    if (((bits + 15) / 16) % 2) /* an odd number of passes left the result in tmp */
        memcpy(tmp, a, n * sizeof *a);
}

/* Floyd's sampling of k distinct indices out of n, sorted; identical on every rank. */
static int hs_make_sample(struct hs_state *s, const struct hs_cfg *c, uint64_t n_total, struct as_error *err)
{
    uint64_t k = (uint64_t)c->samples;
    if (k >= n_total)
        return 0; /* the whole model: exact */
    uint64_t cap = 1;
    while (cap < 2 * k)
        cap <<= 1;
    uint64_t *set = as_xcalloc(cap, sizeof *set), *out = as_xcalloc(k, sizeof *out);
    size_t *cnt = as_xcalloc((size_t)1 << 16, sizeof *cnt);
    memset(set, 0xff, cap * sizeof *set);
    uint64_t m = 0, key = as_mix64(c->seed ^ 0x68697374ull);
    for (uint64_t j = n_total - k; j < n_total; j++) {
        uint64_t h = as_mix64(key + j);
        uint64_t t = (uint64_t)(((unsigned __int128)h * (j + 1)) >> 64);
        uint64_t pick = t;
        for (int pass = 0; pass < 2; pass++) {
            uint64_t slot = as_mix64(pick) & (cap - 1);
            int found = 0;
            while (set[slot] != UINT64_MAX) {
                if (set[slot] == pick) {
                    found = 1;
                    break;
                }
                slot = (slot + 1) & (cap - 1);
            }
            if (!found) {
                set[slot] = pick;
                out[m++] = pick;
                break;
            }
            pick = j; /* t was taken: take j, which cannot be */
        }
    }
    /* sorted, for the layer-by-layer walk; the hash set's memory is the sort's scratch */
    int bits = 0;
    while (bits < 64 && (n_total - 1) >> bits)
        bits++;
    hs_sort_u64(out, set, cnt, m, bits);
    free(set);
    free(cnt);
    s->sample = out;
    s->n_sample = m;
    return 0;
}

/* The heads a unit covers: [*h0, *h1). Every per-head loop and every kept entry works on this
 * range. */
static void hs_heads(const struct as_unit *u, int64_t *h0, int64_t *h1)
{
    *h0 = u->part0;
    *h1 = u->part1;
}

static int hs_read_head(const struct as_unit *u, int f64, int64_t h, void *buf, struct as_error *err)
{
    int64_t T = u->shape->seq_len;
    int64_t start[4] = { u->layer, h, 0, 0 }, count[4] = { 1, 1, T, T };
    return as_tensor_file_read(u->in[0], start, count, f64 ? AS_DTYPE_F64 : AS_DTYPE_F32, buf, err);
}

/* ---- what run() reads of a head: its T diagonal values, then the strict lower triangle row by
 * row (row i: j = 0..i-1), packed: two contiguous runs for the histogram kernel */

/* dst (T(T+1)/2) = the packed head of src (T, T), elements of esz bytes. */
static void hs_pack(void *dst, const void *src, int64_t T, size_t esz)
{
    char *d = dst, *l = d + (size_t)T * esz;
    const char *s = src;
    for (int64_t i = 0; i < T; i++) {
        memcpy(d + (size_t)i * esz, s + (size_t)(i * T + i) * esz, esz);
        memcpy(l, s + (size_t)(i * T) * esz, (size_t)i * esz);
        l += (size_t)i * esz;
    }
}

/* Rows per read of hs_read_tri: a block of rows [i0, i1) is read over columns [0, i1), so about
 * 1/64 of a head more than the triangle is read, never the upper rest. */
static int64_t hs_tri_rows(int64_t T) { return (T + 31) / 32; }

/* packed (T(T+1)/2, hs_pack's layout) = the diagonal and strict lower triangle of head h, read
 * in blocks of rows; buf holds hs_tri_rows(T) * T elements. */
static int hs_read_tri(const struct as_unit *u, int f64, int64_t h, void *buf, void *packed, struct as_error *err)
{
    int64_t T = u->shape->seq_len, B = hs_tri_rows(T);
    size_t esz = f64 ? 8 : 4;
    char *d = packed, *l = d + (size_t)T * esz;
    for (int64_t i0 = 0; i0 < T; i0 += B) {
        int64_t i1 = i0 + B < T ? i0 + B : T;
        int64_t start[4] = { u->layer, h, i0, 0 }, count[4] = { 1, 1, i1 - i0, i1 };
        if (as_tensor_file_read(u->in[0], start, count, f64 ? AS_DTYPE_F64 : AS_DTYPE_F32, buf, err))
            return -1;
        for (int64_t i = i0; i < i1; i++) {
            const char *row = (const char *)buf + (size_t)((i - i0) * i1) * esz;
            memcpy(d + (size_t)i * esz, row + (size_t)i * esz, esz);
            memcpy(l, row, (size_t)i * esz);
            l += (size_t)i * esz;
        }
    }
    return 0;
}

/* ---- head ranges kept from the prepass's full pass for run(), keyed by (layer, first head):
 * in memory (cache_mb), else in the spill file, else nothing (run() reads the input again) */

struct hs_kept {
    int64_t layer, head0, n_heads;
    void *tri;                     /* in memory: (n_heads, T(T+1)/2) packed heads; as_big_alloc; or NULL */
    int64_t spill_off;             /* spilled: offset of the same bytes in the spill file; or -1 */
    size_t bytes;
    struct hs_kept *next;
};

/* What a unit's scratch slot holds (one per model and rank). */
struct hs_scratch {
    struct hs_kept *kept;
    struct as_hs_spill *spill;     /* open while a head range is spilled */
    int64_t n_spilled;             /* head ranges in the spill file */
    int spill_broken;              /* the spill file could not be created: no further tries */
};

static size_t hs_cache_used;       /* bytes kept in memory in this process (one rank), all models */

/* The memory cache saves the second read of a layer; when reads come from memory (the page
 * cache) that read costs less than filling new memory with the copy. So once the full-pass reads
 * of this process have moved HS_CACHE_PROBE bytes at HS_CACHE_FAST_READ bytes/s or more, no
 * further layer is kept in memory. The spill ignores this: it exists for slow shared file
 * systems, where a local disk beats a second read. Only the speed depends on it, never a result. */
#define HS_CACHE_PROBE ((double)(8 << 20))
#define HS_CACHE_FAST_READ 4e9
static double hs_read_bytes, hs_read_seconds;

static int hs_reads_fast(void)
{
    return hs_read_bytes >= HS_CACHE_PROBE && hs_read_bytes >= HS_CACHE_FAST_READ * hs_read_seconds;
}

static struct as_hs_keep_stats hs_keep_totals;

void as_hs_keep_stats(struct as_hs_keep_stats *out)
{
    *out = hs_keep_totals;
}

void as_hs_keep_stats_reset(void)
{
    memset(&hs_keep_totals, 0, sizeof hs_keep_totals);
    hs_read_bytes = hs_read_seconds = 0;
}

/* The spill directory of the `spill` option, or NULL: `auto` is $TMPDIR when set. */
static const char *hs_spill_dir(const struct hs_cfg *c)
{
    if (!strcmp(c->spill, "off"))
        return NULL;
    if (strcmp(c->spill, "auto"))
        return c->spill;
    const char *t = getenv("TMPDIR");
    return t && t[0] ? t : NULL;
}

static void hs_kept_free(struct hs_scratch *x, struct hs_kept *e)
{
    if (e->tri) {
        hs_cache_used -= e->bytes;
        as_big_free(e->tri, e->bytes);
    }
    if (e->spill_off >= 0) {
        as_hs_spill_unreserve(x->spill, e->spill_off, e->bytes);
        if (--x->n_spilled == 0) { /* nothing left in it: give the disk space back */
            as_hs_spill_close(x->spill);
            x->spill = NULL;
        }
    }
    free(e);
}

static void hs_scratch_release(const void *cfg, void *scratch)
{
    struct hs_scratch *x = scratch;
    if (!x)
        return;
    while (x->kept) {
        struct hs_kept *n = x->kept->next;
        hs_kept_free(x, x->kept);
        x->kept = n;
    }
    as_hs_spill_close(x->spill);
    free(x);
}

/* The entry of (u->layer, head0), taken out of the list when take. */
static struct hs_kept *hs_kept_find(struct as_unit *u, int64_t head0, int take)
{
    struct hs_scratch *x = u->scratch ? *u->scratch : NULL;
    if (!x)
        return NULL;
    for (struct hs_kept **pp = &x->kept; *pp; pp = &(*pp)->next)
        if ((*pp)->layer == u->layer && (*pp)->head0 == head0) {
            struct hs_kept *e = *pp;
            if (take)
                *pp = e->next;
            return e;
        }
    return NULL;
}

/* Start keeping heads [h0, h1) of layer u->layer: in memory if cache_mb allows, else in the
 * spill file if there is one with room; NULL otherwise (and when they are kept already). */
static struct hs_kept *hs_keep_start(const struct hs_cfg *c, int f64, struct as_unit *u, int64_t h0, int64_t h1)
{
    int64_t T = u->shape->seq_len;
    size_t bytes = (size_t)(h1 - h0) * (size_t)(T * (T + 1) / 2) * (f64 ? 8 : 4);
    if (!u->scratch || hs_kept_find(u, h0, 0))
        return NULL;
    if (!*u->scratch)
        *u->scratch = as_xcalloc(1, sizeof(struct hs_scratch));
    struct hs_scratch *x = *u->scratch;
    void *tri = NULL;
    int64_t off = -1;
    if (hs_cache_used + bytes <= (size_t)c->cache_mb << 20 && !hs_reads_fast())
        tri = as_big_alloc(bytes); /* optional: NULL falls back to the spill or a second read */
    if (!tri) {
        const char *dir = hs_spill_dir(c);
        if (!dir || x->spill_broken)
            return NULL;
        if (!x->spill && !(x->spill = as_hs_spill_open(dir))) {
            x->spill_broken = 1;
            return NULL;
        }
        if ((off = as_hs_spill_reserve(x->spill, bytes)) < 0) {
            if (x->n_spilled == 0) {
                as_hs_spill_close(x->spill);
                x->spill = NULL;
            }
            return NULL;
        }
        x->n_spilled++;
        hs_keep_totals.spilled++;
    } else {
        hs_cache_used += bytes;
        hs_keep_totals.memory++;
    }
    struct hs_kept *e = as_xcalloc(1, sizeof *e);
    e->layer = u->layer;
    e->head0 = h0;
    e->n_heads = h1 - h0;
    e->tri = tri;
    e->spill_off = off;
    e->bytes = bytes;
    e->next = x->kept;
    x->kept = e;
    return e;
}

/* Keep head h (packed in `packed`, or packed here from the full head `full`). A spill write that
 * fails drops the entry: run() then reads the input again. Returns e, or NULL once dropped. */
static struct hs_kept *hs_keep_head(struct as_unit *u, struct hs_kept *e, int64_t h, const void *full, void *packed,
                                    size_t esz)
{
    int64_t T = u->shape->seq_len;
    size_t hb = (size_t)(T * (T + 1) / 2) * esz;
    if (e->tri) {
        hs_pack((char *)e->tri + (size_t)(h - e->head0) * hb, full, T, esz);
        return e;
    }
    hs_pack(packed, full, T, esz);
    struct hs_scratch *x = *u->scratch;
    if (!as_hs_spill_write(x->spill, packed, hb, e->spill_off + (int64_t)((size_t)(h - e->head0) * hb)))
        return e;
    hs_keep_totals.spill_dropped++;
    hs_kept_free(x, hs_kept_find(u, e->head0, 1));
    return NULL;
}

/* ---- the counting kernels of each phase */

struct hs_acc_ctx {
    const struct hs_state *s;
    int rr;                        /* radix round */
    uint64_t *acc;
};

static void hs_radix_count(struct hs_acc_ctx *x, uint64_t key)
{
    const struct hs_state *s = x->s;
    int shift = s->key_bits - HS_DIGIT_BITS * (x->rr + 1);
    uint64_t digit = (key >> shift) & (HS_DIGITS - 1);
    if (x->rr == 0) {
        x->acc[digit]++;
        return;
    }
    uint64_t high = key >> (shift + HS_DIGIT_BITS);
    for (int t = 0; t < HS_TARGETS; t++)
        if (high == s->prefix[t])
            x->acc[(size_t)t * HS_DIGITS + digit]++;
}


/* WINDOW: acc = [n, nonfinite, below0, below1, hist0 (W0 keys), hist1 (W1 keys)]. */
static uint64_t hs_window_count(const struct hs_state *s, const float *v, size_t n, uint64_t *acc)
{
    struct as_hs_window w = { { (uint32_t)s->win_lo[0], (uint32_t)s->win_lo[1] },
                              { (uint32_t)hs_window_size(s, 0), (uint32_t)hs_window_size(s, 1) },
                              { acc + 4, acc + 4 + hs_window_size(s, 0) }, { 0, 0 }, 0 };
    as_hs_window32(&w, v, n);
    acc[0] += n - w.nonfinite;
    acc[1] += w.nonfinite;
    acc[2] += w.below[0];
    acc[3] += w.below[1];
    return w.nonfinite;
}

/* GATHER: acc[k] = the key + 1 of the k-th sampled element (HS_GATHER_NONFINITE for NaN/Inf) for
 * the elements of this unit; the other units leave 0, so the sum over ranks is the gather. */
#define HS_GATHER_NONFINITE UINT64_MAX  /* above every finite key + 1 */
#define HS_GATHER_GAP_BYTES 512         /* samples this close in a row are read as one run: fewer
                                         * reads for a few more bytes (1M samples of 128M float32
                                         * from the page cache, np=2: 0.23x of the input read
                                         * instead of 0.013x at 64 bytes, and 0.3 s less) */

static int hs_non_finite_error(const struct hs_cfg *c, const struct as_unit *u, int64_t h, uint64_t nf,
                               struct as_error *err)
{
    return as_error_set(err, AS_ERR_INPUT, "model '%s' layer %lld head %lld: %llu non-finite values in '%s' "
                        "(set stages.histsim.non_finite: skip to leave them out)", u->model, (long long)u->layer,
                        (long long)h, (unsigned long long)nf, c->input);
}

static int hs_gather(const struct hs_cfg *c, const struct hs_state *s, struct as_unit *u, uint64_t *acc,
                     struct as_error *err)
{
    int64_t T = u->shape->seq_len, h0, h1;
    hs_heads(u, &h0, &h1);
    uint64_t tt = (uint64_t)(T * T), lbase = (uint64_t)u->layer * s->layer_elems;
    size_t esz = s->f64 ? 8 : 4;
    int64_t gap = HS_GATHER_GAP_BYTES / (int64_t)esz;
    const uint64_t *sp = s->sample, *end = s->sample + s->n_sample;
    while (sp < end && *sp < lbase + (uint64_t)h0 * tt)
        sp++;
    void *buf = as_xmalloc((size_t)T * esz);
    int rc = 0;
    for (int64_t h = h0; h < h1 && !rc; h++) {
        uint64_t base = lbase + (uint64_t)h * tt, head_nf = 0;
        while (sp < end && *sp < base + tt && !rc) {
            /* one run: the samples of one row no more than `gap` columns apart */
            uint64_t row0 = *sp - (*sp - base) % (uint64_t)T;
            int64_t i = (int64_t)((row0 - base) / (uint64_t)T), j0 = (int64_t)(*sp - row0), j1 = j0;
            const uint64_t *q = sp + 1;
            while (q < end && *q < row0 + (uint64_t)T && (int64_t)(*q - row0) - j1 <= gap)
                j1 = (int64_t)(*q++ - row0);
            int64_t start[4] = { u->layer, h, i, j0 }, count[4] = { 1, 1, 1, j1 - j0 + 1 };
            if ((rc = as_tensor_file_read(u->in[0], start, count, s->f64 ? AS_DTYPE_F64 : AS_DTYPE_F32, buf, err)))
                break;
            for (; sp < q; sp++) {
                size_t k = (size_t)(*sp - row0) - (size_t)j0;
                double v = s->f64 ? ((const double *)buf)[k] : ((const float *)buf)[k];
                uint64_t *slot = acc + (sp - s->sample);
                if (!isfinite(v)) {
                    head_nf++;
                    *slot = HS_GATHER_NONFINITE;
                } else {
                    *slot = (s->f64 ? as_hs_key64(v) : as_hs_key32((float)v)) + 1;
                }
            }
        }
        if (!rc && head_nf && c->non_finite == HS_NF_ERROR)
            rc = hs_non_finite_error(c, u, h, head_nf, err);
    }
    free(buf);
    return rc;
}

static int hs_prepass(const void *cfg, const void *state, int round, struct as_unit *u, uint64_t *acc,
                      struct as_error *err)
{
    const struct hs_cfg *c = cfg;
    const struct hs_state *s = state;
    int64_t T = u->shape->seq_len, h0, h1;
    int rr;
    enum hs_phase ph = hs_phase_of(s, round, &rr);
    size_t tt = (size_t)(T * T), esz = s->f64 ? 8 : 4;
    int rc = 0;
    hs_heads(u, &h0, &h1);
    if (ph == HS_PH_GATHER)
        return hs_gather(c, s, u, acc, err);
    if (ph == HS_PH_SAMPLE) {
        /* about one row in HS_SAMPLE_STRIDE of every head, chosen by a hash of (layer, head, row):
         * the same rows in every head would miss positions systematically (and with a position
         * bias, the tails live at the rows a stride skips) */
        float *row = as_xcalloc((size_t)T, sizeof *row);
        for (int64_t h = h0; h < h1 && !rc; h++)
            for (int64_t i = 0; i < T && !rc; i++) {
                uint64_t hk = as_mix64(((uint64_t)u->layer << 40) ^ ((uint64_t)h << 20) ^ (uint64_t)i ^ 0x5eedull);
                if (hk % HS_SAMPLE_STRIDE)
                    continue;
                int64_t start[4] = { u->layer, h, i, 0 }, count[4] = { 1, 1, 1, T };
                if ((rc = as_tensor_file_read(u->in[0], start, count, AS_DTYPE_F32, row, err)))
                    break;
                for (int64_t j = 0; j < T; j++) {
                    uint32_t b;
                    memcpy(&b, &row[j], 4);
                    if (!as_hs_f32_nonfinite(b))
                        acc[as_hs_f32_key(b) >> 16]++;
                }
            }
        free(row);
        return rc;
    }
    void *buf = as_xmalloc(tt * esz), *packed = NULL;
    /* the full pass that keeps the triangles for run(): the window pass, else the last radix round */
    int keep_round = ph == HS_PH_WINDOW || (ph == HS_PH_RADIX && rr == s->key_bits / HS_DIGIT_BITS - 1);
    struct hs_kept *kept = keep_round ? hs_keep_start(c, s->f64, u, h0, h1) : NULL;
    if (kept && !kept->tri)
        packed = as_xmalloc((size_t)(T * (T + 1) / 2) * esz);
    struct hs_acc_ctx x = { s, rr, acc };
    uint64_t n = 0, nonfinite = 0;
    for (int64_t h = h0; h < h1 && !rc; h++) {
        double t0 = as_now();
        if ((rc = hs_read_head(u, s->f64, h, buf, err)))
            break;
        hs_read_seconds += as_now() - t0;
        hs_read_bytes += (double)(tt * esz);
        uint64_t head_nf = 0;
        if (kept)
            kept = hs_keep_head(u, kept, h, buf, packed, esz);
        if (ph == HS_PH_WINDOW) {
            head_nf = hs_window_count(s, buf, tt, acc);
        } else if (s->f64) {
            const double *v = buf;
            for (size_t k = 0; k < tt; k++) {
                if (!isfinite(v[k])) {
                    head_nf++;
                    continue;
                }
                hs_radix_count(&x, as_hs_key64(v[k]));
            }
            n += tt - head_nf;
        } else if (rr == 0) { /* float32 radix round 0: the hot loop, inline */
            const float *v = buf;
            for (size_t k = 0; k < tt; k++) {
                uint32_t b;
                memcpy(&b, &v[k], 4);
                if (as_hs_f32_nonfinite(b)) {
                    head_nf++;
                    continue;
                }
                acc[as_hs_f32_key(b) >> 16]++;
            }
            n += tt - head_nf;
        } else {
            const float *v = buf;
            for (size_t k = 0; k < tt; k++) {
                if (!isfinite(v[k])) {
                    head_nf++;
                    continue;
                }
                hs_radix_count(&x, as_hs_key32(v[k]));
            }
            n += tt - head_nf;
        }
        /* non-finite values are reported by the first full pass over them */
        int first_full = ph == HS_PH_WINDOW || (ph == HS_PH_RADIX && rr == 0 && !hs_windowed(s));
        if (head_nf && c->non_finite == HS_NF_ERROR && first_full)
            rc = hs_non_finite_error(c, u, h, head_nf, err);
        nonfinite += head_nf;
    }
    if (ph == HS_PH_RADIX && rr == 0) {
        acc[HS_DIGITS] += n;
        acc[HS_DIGITS + 1] += nonfinite;
    }
    free(buf);
    free(packed);
    return rc;
}

/* Find which digit holds rank r given a histogram; returns the digit and the rank within it. */
static uint64_t hs_find(const uint64_t *hist, uint64_t nbins, uint64_t r, uint64_t *rank_in)
{
    uint64_t cum = 0;
    for (uint64_t d = 0; d < nbins; d++) {
        if (r < cum + hist[d]) {
            *rank_in = r - cum;
            return d;
        }
        cum += hist[d];
    }
    *rank_in = 0;
    return nbins - 1; /* not reached when the counts are consistent */
}

static void hs_make_edges(const struct hs_cfg *c, struct hs_state *s)
{
    for (int q = 0; q < 2; q++) {
        if (s->f64) {
            double a = as_hs_unkey64(s->prefix[2 * q]), b = as_hs_unkey64(s->prefix[2 * q + 1]);
            s->qval[q] = as_hs_lerp64(a, b, s->w[q]);
        } else {
            float a = as_hs_unkey32((uint32_t)s->prefix[2 * q]), b = as_hs_unkey32((uint32_t)s->prefix[2 * q + 1]);
            s->qval[q] = as_hs_lerp32(a, b, (float)s->w[q]);
        }
    }
    if (s->f64) {
        as_hs_linspace64(s->qval[0], s->qval[1], c->n_edges, s->e64);
    } else {
        as_hs_linspace32((float)s->qval[0], (float)s->qval[1], c->n_edges, s->e32);
        for (int k = 0; k < c->n_edges; k++)
            s->e64[k] = s->e32[k];
    }
    s->edges_ready = 1;
}

/* The key-bucket window around quantile q from the sample's histogram: the buckets holding the
 * sample ranks q*(m-1) -/+ a margin of 6 standard deviations of a sample quantile (and 0.02%,
 * for rows sampled at a stride). */
static void hs_choose_window(const struct hs_cfg *c, struct hs_state *s, const uint64_t *hist, int q)
{
    uint64_t m = 0;
    for (size_t d = 0; d < HS_DIGITS; d++)
        m += hist[d];
    if (m == 0) {
        s->win_lo[q] = 0;
        s->win_buckets[q] = 1;
        return;
    }
    double r = c->q[q] * (double)(m - 1);
    double margin = 6.0 * sqrt((double)m * c->q[q] * (1 - c->q[q])) + 0.0002 * (double)m + 2;
    if (r - margin <= 0 || r + margin >= (double)(m - 1)) {
        s->no_window = 1; /* a window could not be trusted to hold the quantile: radix */
        return;
    }
    double rl = r - margin, rh = r + margin;
    uint64_t dummy;
    uint64_t bl = hs_find(hist, HS_DIGITS, (uint64_t)rl, &dummy), bh = hs_find(hist, HS_DIGITS, (uint64_t)rh, &dummy);
    if (bh - bl + 1 > HS_MAX_WINDOW) { /* recentre on the estimate */
        uint64_t bc = hs_find(hist, HS_DIGITS, (uint64_t)r, &dummy);
        bl = bc >= HS_MAX_WINDOW / 2 ? bc - HS_MAX_WINDOW / 2 : 0;
        bh = bl + HS_MAX_WINDOW - 1;
        if (bh >= HS_DIGITS) {
            bh = HS_DIGITS - 1;
            bl = bh - HS_MAX_WINDOW + 1;
        }
    }
    s->win_lo[q] = bl << HS_DIGIT_BITS;
    s->win_buckets[q] = (int)(bh - bl + 1);
}

/* GATHER: the order statistics of the sample from its gathered keys, sorted: the keys the radix
 * selection over the sample finds. */
static int hs_gather_reduce(const struct hs_cfg *c, struct hs_state *s, const uint64_t *sum, struct as_error *err)
{
    uint64_t m = s->n_sample, n = 0, nf = 0;
    uint64_t *keys = as_xmalloc((size_t)(m ? m : 1) * sizeof *keys), *tmp = as_xmalloc((size_t)(m ? m : 1) * sizeof *tmp);
    size_t *cnt = as_xmalloc((size_t)HS_DIGITS * sizeof *cnt);
    int rc = 0;
    for (uint64_t k = 0; k < m && !rc; k++) {
        if (sum[k] == 0)
            rc = as_error_set(err, AS_ERR_INTERNAL, "sampled element %llu of '%s' was read by no unit",
                              (unsigned long long)s->sample[k], c->input);
        else if (sum[k] == HS_GATHER_NONFINITE)
            nf++;
        else
            keys[n++] = sum[k] - 1;
    }
    s->n = n;
    s->nonfinite = nf;
    if (!rc && n == 0)
        rc = as_error_set(err, AS_ERR_INPUT, "tensor '%s' has no finite values", c->input);
    if (!rc) {
        hs_sort_u64(keys, tmp, cnt, (size_t)n, s->key_bits);
        for (int q = 0; q < 2; q++)
            as_hs_rank(c->q[q], n, s->f64, &s->target[2 * q], &s->target[2 * q + 1], &s->w[q]);
        for (int t = 0; t < HS_TARGETS; t++)
            s->prefix[t] = keys[s->target[t]];
        hs_make_edges(c, s);
    }
    free(keys);
    free(tmp);
    free(cnt);
    return rc;
}

static int hs_prepass_reduce(const void *cfg, void *state, int round, const uint64_t *sum, int *more,
                             struct as_error *err)
{
    const struct hs_cfg *c = cfg;
    struct hs_state *s = state;
    int rr;
    enum hs_phase ph = hs_phase_of(s, round, &rr);
    *more = 1;
    if (ph == HS_PH_GATHER) {
        *more = 0;
        return hs_gather_reduce(c, s, sum, err);
    }
    if (ph == HS_PH_SAMPLE) {
        hs_choose_window(c, s, sum, 0);
        hs_choose_window(c, s, sum, 1);
        return 0;
    }
    if (ph == HS_PH_WINDOW) {
        s->n = sum[0];
        s->nonfinite = sum[1];
        if (s->n == 0)
            return as_error_set(err, AS_ERR_INPUT, "tensor '%s' has no finite values", c->input);
        int hit = 1;
        for (int q = 0; q < 2; q++) {
            as_hs_rank(c->q[q], s->n, 0, &s->target[2 * q], &s->target[2 * q + 1], &s->w[q]);
            const uint64_t *hist = sum + 4 + (q ? hs_window_size(s, 0) : 0);
            uint64_t below = sum[2 + q], inside = 0, span = hs_window_size(s, q);
            for (uint64_t d = 0; d < span; d++)
                inside += hist[d];
            for (int t = 2 * q; t < 2 * q + 2; t++) {
                if (s->target[t] < below || s->target[t] >= below + inside) {
                    hit = 0;
                    continue;
                }
                uint64_t rank_in;
                s->prefix[t] = s->win_lo[q] + hs_find(hist, span, s->target[t] - below, &rank_in);
            }
        }
        s->window_hit = hit;
        if (hit) {
            hs_make_edges(c, s);
            *more = 0;
        }
        return 0; /* a miss goes on with the radix rounds */
    }
    if (rr == 0) {
        s->n = sum[HS_DIGITS];
        s->nonfinite = sum[HS_DIGITS + 1];
        if (s->n == 0)
            return as_error_set(err, AS_ERR_INPUT, "tensor '%s' has no finite values", c->input);
        for (int q = 0; q < 2; q++)
            as_hs_rank(c->q[q], s->n, s->f64, &s->target[2 * q], &s->target[2 * q + 1], &s->w[q]);
        for (int t = 0; t < HS_TARGETS; t++)
            s->prefix[t] = hs_find(sum, HS_DIGITS, s->target[t], &s->rank_in[t]);
    } else {
        for (int t = 0; t < HS_TARGETS; t++) {
            uint64_t d = hs_find(sum + (size_t)t * HS_DIGITS, HS_DIGITS, s->rank_in[t], &s->rank_in[t]);
            s->prefix[t] = (s->prefix[t] << HS_DIGIT_BITS) | d;
        }
    }
    if (rr + 1 < s->key_bits / HS_DIGIT_BITS)
        return 0;
    *more = 0;
    hs_make_edges(c, s);
    return 0;
}

/* Precision and (sampled mode) the sample, before round 0. */
static int hs_state_init(const void *cfg, void *state, const struct as_stage_shape *sh,
                         const struct as_tensor_info *const *info, struct as_error *err)
{
    const struct hs_cfg *c = cfg;
    struct hs_state *s = state;
    s->f64 = info[0]->dtype == AS_DTYPE_F64;
    s->key_bits = s->f64 ? 64 : 32;
    s->layer_elems = (uint64_t)(sh->n_heads * sh->seq_len * sh->seq_len);
    if (c->quantile == HS_SAMPLED) {
        if (hs_make_sample(s, c, s->layer_elems * (uint64_t)sh->n_layers, err))
            return -1;
        if (!s->sample)
            s->sampled_all = 1;
    }
    return 0;
}

static void hs_state_release(const void *cfg, void *state)
{
    struct hs_state *s = state;
    free(s->sample);
    s->sample = NULL;
}

/* ---- units */

/* Heads [u->part0, u->part1) of u->layer: one record each into out. */
static int hs_run_part(const void *cfg, const void *state, struct as_unit *u, const unsigned char *prev,
                       unsigned char *out, struct as_error *err)
{
    const struct hs_cfg *c = cfg;
    const struct hs_state *s = state;
    int64_t T = u->shape->seq_len, h0, h1;
    hs_heads(u, &h0, &h1);
    int nb = c->n_edges - 1;
    size_t tp = (size_t)(T * (T + 1) / 2), esz = s->f64 ? 8 : 4;
    struct hs_kept *kept = hs_kept_find(u, h0, 1);
    int from_spill = kept && !kept->tri; /* 0 once a spill read failed */
    void *buf = NULL, *packed = kept && kept->tri ? NULL : as_xmalloc(tp * esz);
    uint64_t *cd = as_xcalloc((size_t)nb * 2, sizeof *cd), *cl = cd + nb;
    struct hs_head_rec *rec = (struct hs_head_rec *)out;
    int rc = 0;
    if (!kept)
        hs_keep_totals.reread++;
    for (int64_t h = h0; h < h1; h++) {
        memset(cd, 0, (size_t)nb * 2 * sizeof *cd);
        uint64_t nf_d = 0, nf_l = 0;
        double sd = 0, sl = 0;
        const void *p = kept && kept->tri ? (const void *)((const char *)kept->tri + (size_t)(h - h0) * tp * esz) : packed;
        if (from_spill && as_hs_spill_read(((struct hs_scratch *)*u->scratch)->spill, packed, tp * esz,
                                           kept->spill_off + (int64_t)((size_t)(h - h0) * tp * esz))) {
            from_spill = 0; /* the spill lost it: this head and the next ones from the input */
            hs_keep_totals.spill_failed++;
        }
        if (!(kept && kept->tri) && !from_spill) {
            if (!buf)
                buf = as_xmalloc((size_t)(hs_tri_rows(T) * T) * esz);
            if ((rc = hs_read_tri(u, s->f64, h, buf, packed, err)))
                break;
        }
        if (s->f64) {
            as_hs_hist64(p, (size_t)T, s->e64, c->n_edges, cd, &nf_d, &sd);
            as_hs_hist64((const double *)p + T, tp - (size_t)T, s->e64, c->n_edges, cl, &nf_l, &sl);
        } else {
            as_hs_hist32(p, (size_t)T, s->e32, c->n_edges, cd, &nf_d, &sd);
            as_hs_hist32((const float *)p + T, tp - (size_t)T, s->e32, c->n_edges, cl, &nf_l, &sl);
        }
        if ((nf_d || nf_l) && c->non_finite == HS_NF_ERROR) {
            rc = as_error_set(err, AS_ERR_INPUT, "model '%s' layer %lld head %lld: %llu non-finite values in '%s'",
                              u->model, (long long)u->layer, (long long)h, (unsigned long long)(nf_d + nf_l),
                              c->input);
            break;
        }
        uint64_t n_d = (uint64_t)T - nf_d, n_l = (uint64_t)T * (uint64_t)(T - 1) / 2 - nf_l;
        struct hs_head_rec *o = &rec[h - h0];
        o->within_diag = as_hs_within(cd, nb);
        o->within_lower = as_hs_within(cl, nb);
        o->js = as_hs_js_similarity(cd, cl, nb);
        o->mean_diag = n_d ? sd / (double)n_d : NAN;
        o->mean_lower = n_l ? sl / (double)n_l : NAN;
        o->non_finite = (int64_t)(nf_d + nf_l);
    }
    if (kept) {
        hs_keep_totals.from_spill += from_spill;
        hs_kept_free(*u->scratch, kept);
    }
    free(buf);
    free(packed);
    free(cd);
    return rc;
}

static size_t hs_part_offset(const void *cfg, const struct as_stage_shape *sh, int phase, int64_t p)
{
    return (size_t)p * sizeof(struct hs_head_rec);
}

/* The row from the heads' records. */
static int hs_combine(const void *cfg, const void *state, const struct as_stage_shape *sh, int64_t layer,
                      const unsigned char *last, unsigned char *row, struct as_error *err)
{
    const struct hs_head_rec *rec = (const struct hs_head_rec *)last;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_histsim, cfg, sh);
    for (int64_t h = 0; h < sh->n_heads; h++) {
        as_schema_f64(&sc, row, HS_F_WITHIN_DIAG)[h] = rec[h].within_diag;
        as_schema_f64(&sc, row, HS_F_WITHIN_LOWER)[h] = rec[h].within_lower;
        as_schema_f64(&sc, row, HS_F_JS)[h] = rec[h].js;
        as_schema_f64(&sc, row, HS_F_MEAN_DIAG)[h] = rec[h].mean_diag;
        as_schema_f64(&sc, row, HS_F_MEAN_LOWER)[h] = rec[h].mean_lower;
        as_schema_i64(&sc, row, HS_F_NON_FINITE)[h] = rec[h].non_finite;
    }
    return 0;
}

static int hs_finalize(const void *cfg, const void *state, const char *model, const struct as_stage_shape *sh,
                       const unsigned char *rows, struct as_stage_out *out, struct as_error *err)
{
    const struct hs_cfg *c = cfg;
    const struct hs_state *s = state;
    int64_t L = sh->n_layers, H = sh->n_heads, T = sh->seq_len;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_histsim, cfg, sh);
    double *bins = as_schema_f64(&sc, out->model_fields, HS_F_BINS);
    for (int k = 0; k < c->n_edges; k++)
        bins[k] = s->e64[k];
    /* model means: every (layer, head) mean covers the same number of values, so the mean of the
     * means is the mean over all values (exactly so when nothing was skipped) */
    double sd = 0, sl = 0;
    int64_t cnt = 0;
    for (int64_t l = 0; l < L; l++) {
        const unsigned char *r = as_schema_row_const(&sc, rows, l);
        const double *mdiag = as_schema_f64_const(&sc, r, HS_F_MEAN_DIAG);
        const double *mlow = as_schema_f64_const(&sc, r, HS_F_MEAN_LOWER);
        for (int64_t h = 0; h < H; h++) {
            if (isfinite(mdiag[h]) && isfinite(mlow[h])) {
                sd += mdiag[h];
                sl += mlow[h];
                cnt++;
            }
        }
    }
    double md = cnt ? sd / (double)cnt : NAN, ml = cnt ? sl / (double)cnt : NAN;
    out->n_attrs = 0;
    as_stage_out_f64(out, "mean_diagonal", md);
    as_stage_out_f64(out, "mean_off_diagonal", ml);
    as_stage_out_vec(out, "quantile_values", s->qval, 2);
    as_stage_out_i64(out, "values_counted", (int64_t)s->n);
    as_stage_out_i64(out, "non_finite_skipped", (int64_t)s->nonfinite);
    /* sampled mode gathers and sorts the sample, which finds what the radix selection it replaced
     * found: the attribute keeps that name */
    as_stage_out_str(out, "quantile_search",
                     s->window_hit ? "sample window" : hs_windowed(s) ? "sample window missed, radix" : "radix");
    as_stage_out_options(out, hs_options, c);
    static const int logged[] = { HS_F_WITHIN_DIAG, HS_F_WITHIN_LOWER, HS_F_JS };
    for (int f = 0; f < 3; f++)
        as_log_stats_rows(out->log, model, "histsim", sc.fields[logged[f]].name,
                          as_schema_f64_const(&sc, rows, logged[f]), (size_t)L, (size_t)H,
                          sc.row_size / sizeof(double));
    as_strbuf_addf(out->log, "%s histsim mean diagonal %.4f, mean off-diagonal %.4f, difference %.4f (T=%lld)\n",
                   model, md, ml, md - ml, (long long)T);
    return 0;
}

static const char *const hs_figures[] = { "within_diag", "within_lower", "js_similarity", NULL };

const struct as_stage_ops as_stage_histsim = {
    .name = "histsim",
    .configure = hs_configure,
    .release = hs_release,
    .inputs = hs_inputs,
    .shape = hs_shape,
    .schema = hs_schema,
    .state_size = hs_state_size,
    .state_init = hs_state_init,
    .state_release = hs_state_release,
    .prepass_count = hs_prepass_count,
    .prepass = hs_prepass,
    .prepass_reduce = hs_prepass_reduce,
    .scratch_release = hs_scratch_release,
    .run_part = hs_run_part,
    .part_offset = hs_part_offset,
    .combine = hs_combine,
    .finalize = hs_finalize,
    .figures = hs_figures,
};
