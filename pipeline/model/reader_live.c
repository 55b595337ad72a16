/* reader_live.c: Q, K and V activations straight from a model's forward pass, as tensors the
 * activations stage reads like saved ones: path = the model folder (weights:), key =
 * "<q_acts|k_acts|v_acts>@<token file>" (the model entry's prompt:). The info is (L, T, E) float32,
 * head h in columns h*d .. h*d+d-1 (as_model_pass's layout, what measurement runs save). The first
 * open in a process runs the clean pass; later opens of the same model and prompt share it (one
 * pass per rank and model), so the three tensors and every layer cost one forward pass. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "as_model.h"
#include "as_reader.h"
#include "as_util.h"

/* The pass of the model and prompt opened last, kept for the process. */
static struct live_cache {
    char dir[4096], tokens[4096];
    struct as_model *m;
    struct as_model_pass pass;
    int ok;
} cache;

struct as_reader {
    struct as_tensor_info ti;
    const float *data;             /* (L, T, E), borrowed from the cache */
};

static int cache_get(const char *dir, const char *tokens, struct as_error *err)
{
    if (cache.ok && !strcmp(cache.dir, dir) && !strcmp(cache.tokens, tokens))
        return 0;
    as_model_pass_release(&cache.pass);
    as_model_free(cache.m);
    memset(&cache, 0, sizeof cache);
    int32_t *tok = NULL;
    int T = 0;
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1); /* the same bits for any thread count */
    int rc = as_model_read_tokens(tokens, &tok, &T, err) || as_model_open(&cache.m, dir, err) ||
             as_model_check_tokens(cache.m, tok, T, tokens, err) || as_model_forward(cache.m, tok, T, &cache.pass, err);
    openblas_set_num_threads(threads);
    free(tok);
    if (rc) {
        as_model_free(cache.m);
        cache.m = NULL;
        return -1;
    }
    as_strlcpy(cache.dir, dir, sizeof cache.dir);
    as_strlcpy(cache.tokens, tokens, sizeof cache.tokens);
    cache.ok = 1;
    return 0;
}

static int live_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    const char *at = key ? strchr(key, '@') : NULL;
    if (!at || at == key || !at[1])
        return as_error_set(err, AS_ERR_INPUT, "'%s': live activations need the key '<q_acts|k_acts|v_acts>@<token "
                            "file>', not '%s'", path, key ? key : "");
    char which[16];
    snprintf(which, sizeof which, "%.*s", (int)(at - key), key);
    if (strcmp(which, "q_acts") && strcmp(which, "k_acts") && strcmp(which, "v_acts"))
        return as_error_set(err, AS_ERR_INPUT, "'%s': a live model has q_acts, k_acts and v_acts, not '%s'", path,
                            which);
    if (cache_get(path, at + 1, err))
        return -1;
    struct as_reader *r = as_xcalloc(1, sizeof *r);
    r->data = which[0] == 'q' ? cache.pass.q : which[0] == 'k' ? cache.pass.k : cache.pass.v;
    r->ti.dtype = AS_DTYPE_F32;
    r->ti.ndim = 3;
    r->ti.shape[0] = cache.m->cfg.n_layer;
    r->ti.shape[1] = cache.pass.T;
    r->ti.shape[2] = cache.m->cfg.n_embd;
    r->ti.stride[2] = 1;
    r->ti.stride[1] = r->ti.shape[2];
    r->ti.stride[0] = r->ti.shape[1] * r->ti.shape[2];
    r->ti.data_offset = -1;
    *out = r;
    return 0;
}

static const struct as_tensor_info *live_info(const struct as_reader *r)
{
    return &r->ti;
}

static int live_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out, void *dst,
                     struct as_error *err)
{
    const int64_t *st = r->ti.stride;
    size_t k = 0;
    for (int64_t a = start[0]; a < start[0] + count[0]; a++)
        for (int64_t b = start[1]; b < start[1] + count[1]; b++)
            for (int64_t c = start[2]; c < start[2] + count[2]; c++, k++) {
                float v = r->data[a * st[0] + b * st[1] + c * st[2]];
                if (out == AS_DTYPE_F64)
                    ((double *)dst)[k] = v;
                else
                    ((float *)dst)[k] = v;
            }
    return 0;
}

static void live_close(struct as_reader *r)
{
    free(r);
}

const struct as_reader_ops as_reader_live = {
    .name = "live",
    .open = live_open,
    .info = live_info,
    .read = live_read,
    .close = live_close,
};
