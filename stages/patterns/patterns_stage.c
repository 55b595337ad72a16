/* patterns_stage.c: the "patterns" stage: where the last query of one prompt looks, per layer and
 * head (see patterns.h). Reads only the last query row of each head.
 *
 * Options (stages.patterns):
 *   input: tensor name, (L, H, T, T) or (L, B, H, T, T)           default "attn"
 *   batch_index: the batch item of a 5-D input                     default 0
 *   tokens: path (relative to the working directory) of a text file with one token per line,
 *           T lines; a final newline and a '\r' before each '\n' are not part of the tokens
 *   keywords: list of strings; needs tokens. A keyword no token contains is a config error.
 * Results, per layer: layer_entropy (L,), head_entropy, head_max_attention (L, H) float64,
 * head_focus_position (L, H) int64, and with keywords keyword_attention (L, K) plus the
 * `keywords` attribute (a JSON list). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_stage.h"
#include "patterns.h"

#define PAT_NAME_MAX 256
#define PAT_TOKENS_MAX_BYTES (64 << 20)
#define PAT_TOP 5                  /* heads listed in the summary log, as the notebook does */

struct pat_cfg {
    char input[PAT_NAME_MAX];
    int64_t batch_index;
    char *tokens_path;             /* owned; NULL without tokens */
    char *token_text;              /* owned: the file, lines NUL-terminated in place */
    char **tokens;                 /* owned array of pointers into token_text */
    int64_t n_tokens;
    char **keywords;               /* owned */
    int64_t K;
    int64_t *kw_start;             /* owned (K + 1,) */
    int64_t *kw_pos;               /* owned (kw_start[K],) */
    char kw_attr[256];             /* the keywords as a JSON list */
};

/* Every option, recorded as an attribute of the group ("" and "[]" when tokens and keywords
 * are not given); batch_index is parsed from here. */
static const struct as_stage_option pat_options[] = {
    { .key = "input", .type = AS_OPT_STR, .offset = offsetof(struct pat_cfg, input) },
    { .key = "batch_index", .type = AS_OPT_I64, .offset = offsetof(struct pat_cfg, batch_index), .parse = 1,
      .i64_default = 0, .lo = 0, .hi = INT64_MAX },
    { .key = "tokens", .type = AS_OPT_STRP, .offset = offsetof(struct pat_cfg, tokens_path) },
    { .key = "keywords", .type = AS_OPT_STR, .offset = offsetof(struct pat_cfg, kw_attr) },
    { .key = NULL },
};

/* Fields in schema order (keyword_attention only with keywords). */
enum { PAT_F_LAYER_ENTROPY, PAT_F_HEAD_ENTROPY, PAT_F_HEAD_MAX, PAT_F_FOCUS, PAT_F_KEYWORD, PAT_F_COUNT };

extern const struct as_stage_ops as_stage_patterns;

static void pat_release(void *cfg)
{
    struct pat_cfg *c = cfg;
    if (!c)
        return;
    for (int64_t k = 0; k < c->K; k++)
        free(c->keywords[k]);
    free(c->keywords);
    free(c->kw_start);
    free(c->kw_pos);
    free(c->tokens);
    free(c->token_text);
    free(c->tokens_path);
    free(c);
}

static int load_tokens(struct pat_cfg *c, const struct as_ynode *at, struct as_error *err)
{
    FILE *f = fopen(c->tokens_path, "rb");
    if (!f)
        return as_ynode_error(at, err, "stages.patterns.tokens: cannot open '%s': %s", c->tokens_path,
                              strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = as_xmalloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap)
            break;
        if (cap >= PAT_TOKENS_MAX_BYTES) {
            free(buf);
            fclose(f);
            return as_ynode_error(at, err, "stages.patterns.tokens: '%s' is larger than %d bytes",
                                  c->tokens_path, PAT_TOKENS_MAX_BYTES);
        }
        cap *= 2;
        buf = as_xrealloc(buf, cap + 1, 1);
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return as_ynode_error(at, err, "stages.patterns.tokens: cannot read '%s'", c->tokens_path);
    }
    buf[len] = '\0';
    c->token_text = buf;
    if (len && buf[len - 1] == '\n')
        buf[--len] = '\0';
    int64_t n = len ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == '\n';
    if (n == 0)
        return as_ynode_error(at, err, "stages.patterns.tokens: '%s' is empty", c->tokens_path);
    if (memchr(buf, '\0', len))
        return as_ynode_error(at, err, "stages.patterns.tokens: '%s' contains a NUL byte", c->tokens_path);
    c->tokens = as_xcalloc((size_t)n, sizeof *c->tokens);
    char *p = buf;
    for (int64_t t = 0; t < n; t++) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        size_t tl = strlen(p);
        if (tl && p[tl - 1] == '\r')
            p[tl - 1] = '\0';
        c->tokens[t] = p;
        p = nl ? nl + 1 : p + tl;
    }
    c->n_tokens = n;
    return 0;
}

/* The keyword list as JSON, for the attribute; -1 if it does not fit. */
static int keywords_json(struct pat_cfg *c)
{
    struct as_strbuf sb = AS_STRBUF_INIT;
    as_strbuf_add(&sb, "[", 1);
    for (int64_t k = 0; k < c->K; k++) {
        as_strbuf_add(&sb, k ? ", \"" : "\"", k ? 3 : 1);
        for (const unsigned char *s = (const unsigned char *)c->keywords[k]; *s; s++) {
            if (*s == '"' || *s == '\\')
                as_strbuf_addf(&sb, "\\%c", *s);
            else if (*s < 0x20)
                as_strbuf_addf(&sb, "\\u%04x", *s);
            else
                as_strbuf_add(&sb, (const char *)s, 1);
        }
        as_strbuf_add(&sb, "\"", 1);
    }
    as_strbuf_add(&sb, "]", 1);
    int r = as_strlcpy(c->kw_attr, as_strbuf_str(&sb), sizeof c->kw_attr);
    as_strbuf_release(&sb);
    return r;
}

static int load_keywords(struct pat_cfg *c, const struct as_ynode *kn, struct as_error *err)
{
    const char *what = "stages.patterns.keywords";
    if (kn->kind != AS_YNODE_SEQ)
        return as_ynode_error(kn, err, "%s: expected a list of strings", what);
    if (!c->tokens)
        return as_ynode_error(kn, err, "%s: keywords need `tokens` (a file with one token per line)", what);
    c->K = 0;
    c->keywords = as_xcalloc(kn->n, sizeof *c->keywords);
    c->kw_start = as_xcalloc(kn->n + 1, sizeof *c->kw_start);
    int64_t total = 0;
    for (size_t k = 0; k < kn->n; k++) {
        const struct as_ynode *it = kn->items[k];
        if (it->kind != AS_YNODE_SCALAR || !it->scalar[0])
            return as_ynode_error(it, err, "%s: item %zu: expected a non-empty string", what, k);
        int64_t m = as_patterns_match((const char *const *)c->tokens, c->n_tokens, it->scalar, NULL, 0);
        if (!m)
            return as_ynode_error(it, err, "%s: keyword '%s' is in no token of '%s' (%lld tokens)", what,
                                  it->scalar, c->tokens_path, (long long)c->n_tokens);
        c->keywords[c->K++] = as_xstrdup(it->scalar);
        total += m;
        c->kw_start[k + 1] = total;
    }
    c->kw_pos = as_xcalloc((size_t)total, sizeof *c->kw_pos);
    for (int64_t k = 0; k < c->K; k++)
        as_patterns_match((const char *const *)c->tokens, c->n_tokens, c->keywords[k], c->kw_pos + c->kw_start[k],
                          c->kw_start[k + 1] - c->kw_start[k]);
    if (keywords_json(c))
        return as_ynode_error(kn, err, "%s: the keyword list is longer than %zu bytes as JSON", what,
                              sizeof c->kw_attr - 1);
    return 0;
}

static int pat_configure(void **out, const struct as_ynode *node, struct as_error *err)
{
    const char *what = "stages.patterns", *input, *tokens;
    struct pat_cfg *c = as_xcalloc(1, sizeof *c);
    snprintf(c->kw_attr, sizeof c->kw_attr, "[]");
    if (as_stage_options_parse(pat_options, node, what, NULL, c, err) ||
        as_ynode_get_str(node, what, "input", "attn", &input, err) ||
        as_ynode_get_str(node, what, "tokens", NULL, &tokens, err))
        goto fail;
    if (!*input || as_strlcpy(c->input, input, sizeof c->input)) {
        as_ynode_error(as_ynode_get(node, "input"), err, "%s.input: a tensor name of 1..%d bytes", what,
                       PAT_NAME_MAX - 1);
        goto fail;
    }
    if (tokens) {
        c->tokens_path = as_xstrdup(tokens);
        if (load_tokens(c, as_ynode_get(node, "tokens"), err))
            goto fail;
    }
    const struct as_ynode *kn = as_ynode_get(node, "keywords");
    if (kn && load_keywords(c, kn, err))
        goto fail;
    *out = c;
    return 0;
fail:
    pat_release(c);
    return -1;
}

static int pat_inputs(const void *cfg, const char **names)
{
    names[0] = ((const struct pat_cfg *)cfg)->input;
    return 1;
}

static int pat_shape(const void *cfg, const struct as_tensor_info *const *info, struct as_stage_shape *out,
                     struct as_error *err)
{
    const struct pat_cfg *c = cfg;
    const struct as_tensor_info *a = info[0];
    int nd = a->ndim, ok = nd == 4 || nd == 5;
    for (int d = 0; ok && d < nd; d++)
        ok = a->shape[d] > 0;
    if (!ok || a->shape[nd - 1] != a->shape[nd - 2]) {
        char sh[160];
        size_t len = (size_t)snprintf(sh, sizeof sh, "(");
        for (int d = 0; d < nd && len < sizeof sh; d++)
            len += (size_t)snprintf(sh + len, sizeof sh - len, "%s%lld", d ? ", " : "", (long long)a->shape[d]);
        if (len < sizeof sh)
            snprintf(sh + len, sizeof sh - len, ")");
        return as_error_set(err, AS_ERR_INPUT, "patterns: input '%s' is %s, not (L, H, T, T) or (L, B, H, T, T)",
                            c->input, sh);
    }
    if (nd == 5 && c->batch_index >= a->shape[1])
        return as_error_set(err, AS_ERR_CONFIG, "stages.patterns.batch_index: %lld is out of range for '%s' "
                            "with batch size %lld", (long long)c->batch_index, c->input, (long long)a->shape[1]);
    if (nd == 4 && c->batch_index)
        return as_error_set(err, AS_ERR_CONFIG, "stages.patterns.batch_index: %lld given but input '%s' is "
                            "(L, H, T, T) with no batch dimension", (long long)c->batch_index, c->input);
    int64_t T = a->shape[nd - 1], H = a->shape[nd - 3];
    if (c->tokens && c->n_tokens != T)
        return as_error_set(err, AS_ERR_INPUT, "patterns: tokens file '%s' has %lld tokens but input '%s' has "
                            "T = %lld", c->tokens_path, (long long)c->n_tokens, c->input, (long long)T);
    if (as_shape_numel(nd, a->shape) < 0)
        return as_error_set(err, AS_ERR_INPUT, "patterns: input '%s' is too large", c->input);
    out->n_layers = a->shape[0];
    out->n_heads = H;
    out->seq_len = T;
    out->unit_cost = (double)(H * T);
    out->unit_bytes = H * T * (int64_t)as_dtype_traits[a->dtype].size;
    return 0;
}

static int pat_schema(const void *cfg, const struct as_stage_shape *sh, struct as_field *f)
{
    const struct pat_cfg *c = cfg;
    static const char *const names[] = { "layer_entropy", "head_entropy", "head_max_attention",
                                         "head_focus_position", "keyword_attention" };
    static const char *const desc[] = {
        "entropy of the last query row of the head-mean pattern, -sum m log m with m = mean_h A + 1e-10 (nats)",
        "entropy of the last query row of each head, -sum r log(r + 1e-10) (nats)",
        "largest attention probability of the last query row of each head",
        "key position (0-based) of that largest probability, the first if tied",
        "attention of the last query to each keyword's positions (head mean, summed over positions)",
    };
    int n = c->K ? 5 : 4;
    for (int k = 0; k < n; k++) {
        memset(&f[k], 0, sizeof f[k]);
        f[k].name = names[k];
        f[k].description = desc[k];
        f[k].type = k == 3 ? AS_FTYPE_I64 : AS_FTYPE_F64;
        f[k].per_layer = 1;
        f[k].ndim = k ? 1 : 0;
        f[k].dims[0] = k == 4 ? c->K : sh->n_heads;
        f[k].dim_names[0] = k == 4 ? "keyword" : "head";
    }
    return n;
}

static int pat_run(const void *cfg, const void *state, struct as_unit *u, unsigned char *row,
                   struct as_error *err)
{
    const struct pat_cfg *c = cfg;
    const struct as_tensor_info *ti = as_tensor_file_info(u->in[0]);
    int nd = ti->ndim;
    int64_t H = ti->shape[nd - 3], T = ti->shape[nd - 1], l = u->layer, K = c->K;
    int64_t start[5], count[5];
    if (nd == 5) {
        int64_t s[5] = { l, c->batch_index, 0, T - 1, 0 }, n[5] = { 1, 1, H, 1, T };
        memcpy(start, s, sizeof s);
        memcpy(count, n, sizeof n);
    } else {
        int64_t s[4] = { l, 0, T - 1, 0 }, n[4] = { 1, H, 1, T };
        memcpy(start, s, sizeof s);
        memcpy(count, n, sizeof n);
    }
    size_t nout = (size_t)(3 * H + K);
    double *rows = as_xmalloc((size_t)(H * T) * sizeof *rows), *res = as_xcalloc(nout, sizeof *res);
    int64_t *focus = as_xcalloc((size_t)H, sizeof *focus);
    int ret = -1;
    if (as_tensor_file_read(u->in[0], start, count, AS_DTYPE_F64, rows, err))
        goto out;
    for (int64_t h = 0; h < H; h++) {
        int64_t bad = 0;
        for (int64_t j = 0; j < T; j++)
            bad += !isfinite(rows[h * T + j]);
        if (bad) {
            as_error_set(err, AS_ERR_INPUT, "model '%s' layer %lld head %lld: %lld NaN/Inf values in the last "
                         "query row of '%s'", u->model, (long long)l, (long long)h, (long long)bad, c->input);
            goto out;
        }
    }
    struct as_patterns_keywords kw = { K, c->kw_start, c->kw_pos };
    struct as_patterns_out o = { 0, res, res + H, focus, res + 2 * H };
    as_patterns_layer(rows, H, T, K ? &kw : NULL, &o);
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_patterns, cfg, u->shape);
    *as_schema_f64(&sc, row, PAT_F_LAYER_ENTROPY) = o.layer_entropy;
    memcpy(as_schema_f64(&sc, row, PAT_F_HEAD_ENTROPY), res, (size_t)H * sizeof *res);
    memcpy(as_schema_f64(&sc, row, PAT_F_HEAD_MAX), res + H, (size_t)H * sizeof *res);
    memcpy(as_schema_i64(&sc, row, PAT_F_FOCUS), focus, (size_t)H * sizeof *focus);
    if (K)
        memcpy(as_schema_f64(&sc, row, PAT_F_KEYWORD), res + 2 * H, (size_t)K * sizeof *res);
    ret = 0;
out:
    free(rows);
    free(res);
    free(focus);
    return ret;
}

struct head_rank {
    int64_t layer, head, focus;
    double entropy;
};

static int by_entropy_asc(const void *pa, const void *pb)
{
    const struct head_rank *a = pa, *b = pb;
    if (a->entropy != b->entropy)
        return a->entropy < b->entropy ? -1 : 1;
    return a->layer != b->layer ? (a->layer < b->layer ? -1 : 1) : (a->head > b->head) - (a->head < b->head);
}

/* pandas nlargest(keep='first'): larger entropy first, ties in (layer, head) order */
static int by_entropy_desc(const void *pa, const void *pb)
{
    const struct head_rank *a = pa, *b = pb;
    if (a->entropy != b->entropy)
        return a->entropy > b->entropy ? -1 : 1;
    return a->layer != b->layer ? (a->layer < b->layer ? -1 : 1) : (a->head > b->head) - (a->head < b->head);
}

static int pat_finalize(const void *cfg, const void *state, const char *model, const struct as_stage_shape *sh,
                        const unsigned char *rows, struct as_stage_out *out, struct as_error *err)
{
    const struct pat_cfg *c = cfg;
    int64_t L = sh->n_layers, H = sh->n_heads, n = L * H;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_patterns, cfg, sh);
    struct head_rank *hr = as_xcalloc((size_t)n, sizeof *hr);
    double *v = as_xcalloc((size_t)n, sizeof *v);
    for (int64_t l = 0; l < L; l++)
        for (int64_t h = 0; h < H; h++) {
            const unsigned char *r = as_schema_row_const(&sc, rows, l);
            struct head_rank *x = &hr[l * H + h];
            x->layer = l;
            x->head = h;
            x->entropy = as_schema_f64_const(&sc, r, PAT_F_HEAD_ENTROPY)[h];
            x->focus = as_schema_i64_const(&sc, r, PAT_F_FOCUS)[h];
        }
    double last = *as_schema_f64_const(&sc, as_schema_row_const(&sc, rows, L - 1), PAT_F_LAYER_ENTROPY);
    as_strbuf_addf(out->log, "%s patterns last layer entropy = %.3f\n", model, last);
    for (int k = 0; k < 2; k++) {
        for (int64_t l = 0; l < L; l++)
            memcpy(v + l * H, as_schema_f64_const(&sc, as_schema_row_const(&sc, rows, l),
                                                  k ? PAT_F_HEAD_MAX : PAT_F_HEAD_ENTROPY), (size_t)H * sizeof *v);
        as_log_stats(out->log, model, "patterns", k ? "head_max_attention" : "head_entropy", v, (size_t)n, 1);
    }
    int top = n < PAT_TOP ? (int)n : PAT_TOP;
    /* the notebook: "Most focused heads (lowest entropy)", 0-based layer and head numbers */
    qsort(hr, (size_t)n, sizeof *hr, by_entropy_asc);
    as_strbuf_addf(out->log, "%s patterns most focused heads (lowest entropy):\n", model);
    for (int i = 0; i < top; i++) {
        as_strbuf_addf(out->log, "  Layer %lld, Head %lld: entropy=%.3f, focuses on ", (long long)hr[i].layer,
                       (long long)hr[i].head, hr[i].entropy);
        if (c->tokens)
            as_strbuf_addf(out->log, "'%s'\n", c->tokens[hr[i].focus]);
        else
            as_strbuf_addf(out->log, "position %lld\n", (long long)hr[i].focus);
    }
    qsort(hr, (size_t)n, sizeof *hr, by_entropy_desc);
    as_strbuf_addf(out->log, "%s patterns most distributed heads (highest entropy):\n", model);
    for (int i = 0; i < top; i++)
        as_strbuf_addf(out->log, "  Layer %lld, Head %lld: entropy=%.3f\n", (long long)hr[i].layer,
                       (long long)hr[i].head, hr[i].entropy);
    free(hr);
    free(v);

    as_stage_out_options(out, pat_options, c);
    return 0;
}

static const char *const pat_figures[] = { "layer_entropy", "head_entropy", "head_max_attention", NULL };

const struct as_stage_ops as_stage_patterns = {
    .name = "patterns",
    .configure = pat_configure,
    .release = pat_release,
    .inputs = pat_inputs,
    .shape = pat_shape,
    .schema = pat_schema,
    .run = pat_run,
    .finalize = pat_finalize,
    .figures = pat_figures,
};
