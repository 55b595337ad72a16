/* lesion.c: head lesions on a live model (seed 002, demo 3). For every (layer, head) of a model
 * given by `weights: DIR` (a Hugging Face folder, pipeline/model), the output of that head (the
 * input of the attention output projection, its columns) is zeroed at one position of the
 * prompt, and the log-probability of the next token at that position is read, as the seed's
 * forward pre-hook does.
 *
 *   stages:
 *     lesion:
 *       tokens: prompt.txt      # token ids, whitespace-separated (the user's tokenizer wrote them;
 *                               # path relative to the working directory); required
 *       position: -2            # the lesioned position and the one read (negative: from the end)
 *       heads: [0, 4]           # default all
 *       layers: [10, 11]        # default all
 *
 * Results /models/<m>/lesion/: delta_logprob (L, H) = lesioned minus clean log-probability of
 * the target token (NaN for heads or layers left out), top5_clean (5,) the clean top-5 next
 * tokens at the position; attributes logprob_clean, target_token, position and the options.
 * Units are (model, layer): a unit lesions every chosen head of its layer at once (n rows of one
 * GEMM, from the clean residual stream of its layer: as_model_lesion_heads), so its bits depend
 * only on the model, the prompt and the head list, never on the rank. The clean pass is made once
 * per rank and model and kept in the unit's scratch slot; the prepass hands its target token,
 * log-probability and top-5 to every rank as integer counters (exact). */
#include <cblas.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "as_model.h"
#include "as_stage.h"
#include "as_util.h"

extern const struct as_stage_ops as_stage_lesion;

#define WHAT "stages.lesion"
#define LES_TOPK 5

struct les_cfg {
    char *tokens_path;             /* owned */
    int64_t position;              /* as given (may be negative) */
    int32_t *tok;                  /* (T,) owned */
    int T;
    int64_t *heads;                /* (n_heads,) owned; NULL: all */
    int n_heads;
    int64_t *layers;               /* (n_layers,) owned; NULL: all */
    int n_layers;
    char heads_text[256], layers_text[256]; /* as recorded: "all" or "[0, 4]" */
};

struct les_state {
    int64_t target;                /* the token after `position` */
    int64_t pos;                   /* position, resolved */
    double logprob_clean;
    int64_t top5[LES_TOPK];
    int have;                      /* the prepass delivered the above */
};

/* The clean pass, kept on this rank for the model's units. */
struct les_scratch {
    struct as_model *m;
    struct as_model_pass pass;
};

enum { F_DELTA, F_TOP5 };          /* schema order: delta per layer, top5 per model */
enum { P_TARGET, P_TOP5, P_LOGPROB = P_TOP5 + LES_TOPK, P_HAVE, P_COUNT }; /* prepass counters */

static const struct as_stage_option les_options[] = {
    { .key = "tokens", .type = AS_OPT_STRP, .offset = offsetof(struct les_cfg, tokens_path) },
    { .key = "position", .type = AS_OPT_I64, .offset = offsetof(struct les_cfg, position), .parse = 1,
      .i64_default = -2, .lo = -(1 << 20), .hi = 1 << 20 },
    { .key = "heads", .type = AS_OPT_STR, .offset = offsetof(struct les_cfg, heads_text) },
    { .key = "layers", .type = AS_OPT_STR, .offset = offsetof(struct les_cfg, layers_text) },
    { 0 },
};

static void les_release(void *cfgp)
{
    struct les_cfg *c = cfgp;
    if (!c)
        return;
    free(c->tokens_path);
    free(c->tok);
    free(c->heads);
    free(c->layers);
    free(c);
}

/* An optional list of non-negative integers: *v owned (NULL when absent), text as recorded. */
static int int_list(const struct as_ynode *node, const char *key, int64_t **v, int *n, char *text, size_t text_n,
                    struct as_error *err)
{
    const struct as_ynode *l = as_ynode_get(node, key);
    snprintf(text, text_n, "all");
    if (!l)
        return 0;
    if (l->kind != AS_YNODE_SEQ || l->n == 0)
        return as_ynode_error(l, err, WHAT ".%s: expected a non-empty list of indices", key);
    *v = as_xcalloc(l->n, sizeof **v);
    size_t k = (size_t)snprintf(text, text_n, "[");
    for (size_t i = 0; i < l->n; i++) {
        char what[64];
        snprintf(what, sizeof what, WHAT ".%s[%zu]", key, i);
        if (as_ynode_to_int(l->items[i], what, 0, 1 << 20, &(*v)[i], err))
            return -1;
        if (k < text_n)
            k += (size_t)snprintf(text + k, text_n - k, "%s%" PRId64, i ? ", " : "", (*v)[i]);
    }
    if (k < text_n)
        snprintf(text + k, text_n - k, "]");
    *n = (int)l->n;
    return 0;
}

static int les_configure(void **out, const struct as_ynode *node, struct as_error *err)
{
    static const char *const extra[] = { "tokens", "heads", "layers", NULL };
    struct les_cfg *c = as_xcalloc(1, sizeof *c);
    const char *tokens = NULL;
    if (as_stage_options_parse(les_options, node, WHAT, extra, c, err) ||
        as_ynode_get_str(node, WHAT, "tokens", NULL, &tokens, err) ||
        int_list(node, "heads", &c->heads, &c->n_heads, c->heads_text, sizeof c->heads_text, err) ||
        int_list(node, "layers", &c->layers, &c->n_layers, c->layers_text, sizeof c->layers_text, err))
        goto fail;
    if (!tokens) {
        as_error_set(err, AS_ERR_CONFIG, "%s: missing key 'tokens' (a file of token ids, whitespace-separated)", WHAT);
        goto fail;
    }
    c->tokens_path = as_xstrdup(tokens);
    if (as_model_read_tokens(c->tokens_path, &c->tok, &c->T, err)) {
        as_error_prefix(err, WHAT ".tokens: ");
        err->status = AS_ERR_CONFIG;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    les_release(c);
    return -1;
}

static int les_inputs(const void *cfg, const char **names)
{
    names[0] = "weights";
    return 1;
}

static int les_shape(const void *cfgp, const struct as_tensor_info *const *info, struct as_stage_shape *out,
                     struct as_error *err)
{
    const struct les_cfg *c = cfgp;
    const struct as_tensor_info *ti = info[0];
    if (ti->ndim != 4)
        return as_error_set(err, AS_ERR_INPUT, "lesion: the model's weights must be a model folder");
    int64_t L = ti->shape[0], H = ti->shape[1], E = ti->shape[2], V = ti->shape[3];
    int64_t pos = c->position < 0 ? c->T + c->position : c->position;
    if (pos < 0 || pos >= c->T - 1)
        return as_error_set(err, AS_ERR_CONFIG, WHAT ".position: %" PRId64 " leaves no next token to read in a "
                            "prompt of %d tokens", c->position, c->T);
    for (int i = 0; i < c->n_heads; i++)
        if (c->heads[i] >= H)
            return as_error_set(err, AS_ERR_CONFIG, WHAT ".heads: head %" PRId64 " of a model with %" PRId64
                                " heads", c->heads[i], H);
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] >= L)
            return as_error_set(err, AS_ERR_CONFIG, WHAT ".layers: layer %" PRId64 " of a model with %" PRId64
                                " layers", c->layers[i], L);
    for (int t = 0; t < c->T; t++)
        if (c->tok[t] >= V)
            return as_error_set(err, AS_ERR_INPUT, "lesion: token %d of '%s' is %d, outside the vocabulary (%" PRId64
                                " ids)", t, c->tokens_path, c->tok[t], V);
    out->n_layers = L;
    out->n_heads = H;
    out->seq_len = c->T;
    /* a unit: n lesioned rows through the layers above it, about 24 E^2 flops per row and layer */
    out->unit_cost = (double)(c->n_heads ? c->n_heads : H) * (double)L / 2 * 24.0 * (double)E * (double)E;
    out->unit_bytes = 0;
    return 0;
}

static int les_schema(const void *cfg, const struct as_stage_shape *sh, struct as_field *f)
{
    f[F_DELTA] = (struct as_field){ "delta_logprob",
                                    "lesioned minus clean log-probability of the target token (NaN: not lesioned)",
                                    AS_FTYPE_F64, 1, 1, { sh->n_heads }, { "head" } };
    f[F_TOP5] = (struct as_field){ "top5_clean", "the clean top-5 next tokens at the position, most likely first",
                              AS_FTYPE_I64, 0, 1, { LES_TOPK }, { "rank" } };
    return 2;
}

static size_t les_state_size(const void *cfg, const struct as_stage_shape *sh)
{
    return sizeof(struct les_state);
}

static int les_state_init(const void *cfgp, void *state, const struct as_stage_shape *sh,
                          const struct as_tensor_info *const *info, struct as_error *err)
{
    const struct les_cfg *c = cfgp;
    struct les_state *st = state;
    st->pos = c->position < 0 ? c->T + c->position : c->position;
    st->target = c->tok[st->pos + 1];
    return 0;
}

static void les_scratch_release(const void *cfg, void *scratch)
{
    struct les_scratch *s = scratch;
    if (!s)
        return;
    as_model_pass_release(&s->pass);
    as_model_free(s->m);
    free(s);
}

/* The model and its clean pass on this rank, made at the first unit. OpenBLAS on one thread
 * around every GEMM: its sgemm does not give the same bits for other thread counts. */
static int clean_pass(const struct les_cfg *c, struct as_unit *u, struct les_scratch **out, struct as_error *err)
{
    if (*u->scratch) {
        *out = *u->scratch;
        return 0;
    }
    struct les_scratch *s = as_xcalloc(1, sizeof *s);
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int rc = as_model_open(&s->m, u->in[0]->path, err) ||
             as_model_check_tokens(s->m, c->tok, c->T, c->tokens_path, err) ||
             as_model_forward(s->m, c->tok, c->T, &s->pass, err);
    openblas_set_num_threads(threads);
    if (rc) {
        les_scratch_release(c, s);
        return as_error_prefix(err, "model '%s': ", u->model);
    }
    *u->scratch = s;
    *out = s;
    return 0;
}

static int layer_chosen(const struct les_cfg *c, int64_t l)
{
    if (!c->layers)
        return 1;
    for (int i = 0; i < c->n_layers; i++)
        if (c->layers[i] == l)
            return 1;
    return 0;
}

static size_t les_prepass_count(const void *cfg, const void *state, int round)
{
    return P_COUNT;
}

/* Round 0: the unit of layer 0 hands the clean pass's target, log-probability and top-5 over. */
static int les_prepass(const void *cfgp, const void *state, int round, struct as_unit *u, uint64_t *acc,
                       struct as_error *err)
{
    const struct les_cfg *c = cfgp;
    const struct les_state *st = state;
    if (u->layer != 0)
        return 0;
    struct les_scratch *s;
    if (clean_pass(c, u, &s, err))
        return -1;
    int V = s->m->cfg.vocab_size, top[LES_TOPK];
    const float *row = s->pass.logits + (size_t)st->pos * (size_t)V;
    double lp = as_model_logprob(row, V, (int)st->target);
    as_model_topk(row, V, LES_TOPK, top);
    acc[P_TARGET] = (uint64_t)st->target;
    for (int k = 0; k < LES_TOPK; k++)
        acc[P_TOP5 + k] = (uint64_t)top[k];
    memcpy(&acc[P_LOGPROB], &lp, sizeof lp);
    acc[P_HAVE] = 1;
    return 0;
}

static int les_prepass_reduce(const void *cfg, void *state, int round, const uint64_t *sum, int *more,
                              struct as_error *err)
{
    struct les_state *st = state;
    *more = 0;
    if (sum[P_HAVE] != 1 || (int64_t)sum[P_TARGET] != st->target)
        return as_error_set(err, AS_ERR_INTERNAL, "lesion: the clean pass did not arrive");
    for (int k = 0; k < LES_TOPK; k++)
        st->top5[k] = (int64_t)sum[P_TOP5 + k];
    memcpy(&st->logprob_clean, &sum[P_LOGPROB], sizeof st->logprob_clean);
    st->have = 1;
    return 0;
}

static int les_run(const void *cfgp, const void *state, struct as_unit *u, unsigned char *row, struct as_error *err)
{
    const struct les_cfg *c = cfgp;
    const struct les_state *st = state;
    const int64_t H = u->shape->n_heads;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_lesion, cfgp, u->shape);
    double *delta = as_schema_f64(&sc, row, F_DELTA);
    for (int64_t h = 0; h < H; h++)
        delta[h] = NAN;
    if (!layer_chosen(c, u->layer))
        return 0;
    struct les_scratch *s;
    if (clean_pass(c, u, &s, err))
        return -1;
    int n = c->heads ? c->n_heads : (int)H, V = s->m->cfg.vocab_size;
    int *heads = as_xcalloc((size_t)n, sizeof *heads);
    for (int i = 0; i < n; i++)
        heads[i] = c->heads ? (int)c->heads[i] : i;
    float *logits = as_xcalloc((size_t)n * (size_t)V, sizeof *logits);
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int rc = as_model_lesion_heads(s->m, &s->pass, (int)u->layer, (int)st->pos, heads, n, logits, err);
    openblas_set_num_threads(threads);
    if (!rc)
        for (int i = 0; i < n; i++)
            delta[heads[i]] = as_model_logprob(logits + (size_t)i * (size_t)V, V, (int)st->target) - st->logprob_clean;
    else
        as_error_prefix(err, "model '%s' layer %" PRId64 ": ", u->model, u->layer);
    free(logits);
    free(heads);
    return rc;
}

static int les_finalize(const void *cfgp, const void *state, const char *model, const struct as_stage_shape *sh,
                        const unsigned char *rows, struct as_stage_out *out, struct as_error *err)
{
    const struct les_state *st = state;
    struct as_schema sc;
    as_schema_of(&sc, &as_stage_lesion, cfgp, sh);
    int64_t *top5 = as_schema_i64(&sc, out->model_fields, F_TOP5);
    memcpy(top5, st->top5, sizeof st->top5);
    as_stage_out_options(out, les_options, cfgp);
    as_stage_out_f64(out, "logprob_clean", st->logprob_clean);
    as_stage_out_i64(out, "target_token", st->target);
    as_stage_out_i64(out, "target_position", st->pos);
    /* the summary line: the clean log-probability and the lesion that lowers it most */
    int64_t bl = -1, bh = -1;
    double best = INFINITY;
    for (int64_t l = 0; l < sh->n_layers; l++) {
        const double *d = as_schema_f64_const(&sc, as_schema_row_const(&sc, rows, l), F_DELTA);
        for (int64_t h = 0; h < sh->n_heads; h++)
            if (!isnan(d[h]) && d[h] < best) {
                best = d[h];
                bl = l;
                bh = h;
            }
    }
    as_strbuf_addf(out->log, "%s lesion | log p(token %" PRId64 " at position %" PRId64 ") clean %.4f", model,
                   st->target, st->pos + 1, st->logprob_clean);
    if (bl >= 0)
        as_strbuf_addf(out->log, ", largest drop %.4f (layer %" PRId64 " head %" PRId64 ")", best, bl, bh);
    as_strbuf_addf(out->log, "\n");
    return 0;
}

static const char *const les_figures[] = { "delta_logprob", NULL };

const struct as_stage_ops as_stage_lesion = {
    .name = "lesion",
    .configure = les_configure,
    .release = les_release,
    .inputs = les_inputs,
    .shape = les_shape,
    .schema = les_schema,
    .state_size = les_state_size,
    .state_init = les_state_init,
    .prepass_count = les_prepass_count,
    .prepass = les_prepass,
    .prepass_reduce = les_prepass_reduce,
    .scratch_release = les_scratch_release,
    .run = les_run,
    .finalize = les_finalize,
    .figures = les_figures,
};
