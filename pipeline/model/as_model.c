/* as_model.c: opening a model folder, the clean pass, the lesioned passes, token files. The
 * architecture-specific pieces come from struct as_model_ops (model_<arch>.c). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_model_impl.h"
#include "as_util.h"

const struct as_model_ops *const as_model_archs[] = { &as_model_gpt2, NULL };

/* "gpt2" or "gpt2, bloom" into buf */
static const char *known_archs(char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; as_model_archs[i] && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", as_model_archs[i]->name);
    return buf;
}

static const struct as_model_ops *pick_arch(const json_t *root, const char *path, struct as_error *err)
{
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    json_t *archs = json_object_get(root, "architectures");
    for (int i = 0; as_model_archs[i]; i++) {
        if (as_model_archs[i]->matches(mt, NULL))
            return as_model_archs[i];
        for (size_t j = 0; j < json_array_size(archs); j++)
            if (as_model_archs[i]->matches(NULL, json_string_value(json_array_get(archs, j))))
                return as_model_archs[i];
    }
    char known[128];
    const char *a0 = json_string_value(json_array_get(archs, 0));
    if (!mt && !a0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': missing key 'model_type' (and no 'architectures')", path);
        return NULL;
    }
    as_error_set(err, AS_ERR_INPUT, "'%s': unknown architecture '%s' (known: %s)", path, mt ? mt : a0,
                 known_archs(known, sizeof known));
    return NULL;
}

/* config.json of dir parsed into *root (owned) and its architecture; path receives its path */
static int read_config(const char *dir, struct as_strbuf *path, json_t **root, const struct as_model_ops **ops,
                       struct as_error *err)
{
    as_strbuf_addf(path, "%s/config.json", dir);
    json_error_t je;
    *root = json_load_file(path->buf, JSON_REJECT_DUPLICATES, &je);
    if (!*root) {
        FILE *f = fopen(path->buf, "r");
        if (!f)
            return as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", path->buf, strerror(errno));
        fclose(f);
        return as_error_set(err, AS_ERR_INPUT, "'%s': not valid json: %s (line %d)", path->buf, je.text, je.line);
    }
    if (!json_is_object(*root))
        return as_error_set(err, AS_ERR_INPUT, "'%s': not a json object", path->buf);
    return (*ops = pick_arch(*root, path->buf, err)) ? 0 : -1;
}

int as_model_probe(const char *dir, struct as_model_config *cfg, struct as_error *err)
{
    struct as_strbuf path = AS_STRBUF_INIT;
    json_t *root = NULL;
    const struct as_model_ops *ops = NULL;
    memset(cfg, 0, sizeof *cfg);
    int rc = read_config(dir, &path, &root, &ops, err);
    if (!rc)
        rc = ops->config(cfg, root, path.buf, err);
    json_decref(root);
    as_strbuf_release(&path);
    return rc;
}

int as_model_open(struct as_model **out, const char *dir, struct as_error *err)
{
    *out = NULL;
    struct as_model *m = as_xcalloc(1, sizeof *m);
    if (as_strlcpy(m->dir, dir, sizeof m->dir)) {
        free(m);
        return as_error_set(err, AS_ERR_INPUT, "model folder path too long: '%.64s...'", dir);
    }
    struct as_strbuf path = AS_STRBUF_INIT;
    json_t *root = NULL;
    int rc = read_config(dir, &path, &root, &m->ops, err);
    if (!rc)
        rc = m->ops->load(m, root, path.buf, err);
    json_decref(root);
    as_strbuf_release(&path);
    if (rc) {
        as_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void as_model_free(struct as_model *m)
{
    if (!m)
        return;
    if (m->ops)
        m->ops->release(m);
    free(m);
}

const char *as_model_arch(const struct as_model *m) { return m->ops->name; }

/* ---- tokens */

int as_model_read_tokens(const char *path, int32_t **tok, int *n, struct as_error *err)
{
    *tok = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return as_error_set(err, AS_ERR_INPUT, "cannot open token file '%s': %s", path, strerror(errno));
    int32_t *t = NULL;
    size_t cnt = 0, alloc = 0;
    char word[64];
    int rc = 0, c;
    for (;;) {
        size_t k = 0;
        while ((c = fgetc(f)) != EOF && isspace(c))
            ;
        if (c == EOF)
            break;
        do {
            if (k + 1 < sizeof word)
                word[k] = (char)c;
            k++;
        } while ((c = fgetc(f)) != EOF && !isspace(c));
        word[k < sizeof word ? k : sizeof word - 1] = '\0';
        char *end;
        errno = 0;
        long long v = strtoll(word, &end, 10);
        if (k >= sizeof word || *end || end == word || errno || v < 0 || v > INT32_MAX || !isdigit((unsigned char)word[0])) {
            rc = as_error_set(err, AS_ERR_INPUT, "token file '%s': token %zu '%.32s' is not a non-negative integer id",
                              path, cnt, word);
            break;
        }
        if (cnt == alloc) {
            alloc = alloc ? 2 * alloc : 256;
            t = as_xrealloc(t, alloc, sizeof *t);
        }
        t[cnt++] = (int32_t)v;
        if (cnt > (size_t)1 << 30) {
            rc = as_error_set(err, AS_ERR_INPUT, "token file '%s': more than 2^30 tokens", path);
            break;
        }
    }
    if (!rc && ferror(f))
        rc = as_error_set(err, AS_ERR_INPUT, "cannot read token file '%s'", path);
    if (!rc && cnt == 0)
        rc = as_error_set(err, AS_ERR_INPUT, "token file '%s' holds no tokens", path);
    fclose(f);
    if (rc) {
        free(t);
        return -1;
    }
    *tok = t;
    *n = (int)cnt;
    return 0;
}

int as_model_check_tokens(const struct as_model *m, const int32_t *tok, int n, const char *what, struct as_error *err)
{
    if (n < 1)
        return as_error_set(err, AS_ERR_INPUT, "%s: no tokens", what);
    if (n > m->cfg.n_positions)
        return as_error_set(err, AS_ERR_INPUT, "%s: %d tokens, longer than the model's n_positions %d ('%s')", what,
                            n, m->cfg.n_positions, m->dir);
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= m->cfg.vocab_size)
            return as_error_set(err, AS_ERR_INPUT, "%s: token %d is id %d, outside the vocabulary [0, %d) of '%s'",
                                what, i, (int)tok[i], m->cfg.vocab_size, m->dir);
    return 0;
}

/* ---- passes */

int as_model_forward(const struct as_model *m, const int32_t *tok, int T, struct as_model_pass *pass,
                     struct as_error *err)
{
    memset(pass, 0, sizeof *pass);
    if (as_model_check_tokens(m, tok, T, "prompt", err))
        return -1;
    const struct as_model_config *c = &m->cfg;
    size_t te = (size_t)T * c->n_embd, L = (size_t)c->n_layer;
    pass->T = T;
    pass->tokens = as_xmalloc((size_t)T * sizeof *pass->tokens);
    memcpy(pass->tokens, tok, (size_t)T * sizeof *tok);
    pass->resid = as_xmalloc((L + 1) * te * sizeof *pass->resid);
    pass->q = as_xmalloc(L * te * sizeof *pass->q);
    pass->k = as_xmalloc(L * te * sizeof *pass->k);
    pass->v = as_xmalloc(L * te * sizeof *pass->v);
    pass->logits = as_xmalloc((size_t)T * c->vocab_size * sizeof *pass->logits);
    m->ops->embed(m, tok, T, pass->resid);
    for (size_t l = 0; l < L; l++) {
        float *x = pass->resid + (l + 1) * te;
        memcpy(x, x - te, te * sizeof *x);
        m->ops->layer(m, (int)l, x, T, NULL, pass->q + l * te, pass->k + l * te, pass->v + l * te);
    }
    m->ops->logits(m, pass->resid + L * te, T, pass->logits);
    return 0;
}

void as_model_pass_release(struct as_model_pass *pass)
{
    if (!pass)
        return;
    free(pass->tokens);
    free(pass->resid);
    free(pass->q);
    free(pass->k);
    free(pass->v);
    free(pass->logits);
    memset(pass, 0, sizeof *pass);
}

static int check_lesion(const struct as_model *m, const struct as_model_pass *clean, int layer, int position,
                        const int *heads, int n, struct as_error *err)
{
    const struct as_model_config *c = &m->cfg;
    if (layer < 0 || layer >= c->n_layer)
        return as_error_set(err, AS_ERR_INPUT, "lesion layer %d outside [0, %d)", layer, c->n_layer);
    if (position < 0 || position >= clean->T)
        return as_error_set(err, AS_ERR_INPUT, "lesion position %d outside the prompt [0, %d)", position, clean->T);
    if (n < 1)
        return as_error_set(err, AS_ERR_INPUT, "lesion of layer %d names no head", layer);
    for (int i = 0; i < n; i++)
        if (heads[i] < 0 || heads[i] >= c->n_head)
            return as_error_set(err, AS_ERR_INPUT, "lesion head %d outside [0, %d)", heads[i], c->n_head);
    return 0;
}

int as_model_lesion(const struct as_model *m, const struct as_model_pass *clean, const struct as_lesion *les,
                    int from_layer, float *logits, struct as_error *err)
{
    if (check_lesion(m, clean, les->layer, les->position, les->heads, les->n_heads, err))
        return -1;
    if (from_layer < 0 || from_layer > les->layer)
        return as_error_set(err, AS_ERR_INPUT, "lesion of layer %d cannot start from layer %d", les->layer,
                            from_layer);
    const struct as_model_config *c = &m->cfg;
    int T = clean->T;
    size_t te = (size_t)T * c->n_embd;
    float *x = as_xmalloc(4 * te * sizeof *x), *q = x + te, *k = q + te, *v = k + te;
    memcpy(x, clean->resid + (size_t)from_layer * te, te * sizeof *x);
    struct as_head_mask mask = { les->position, les->n_heads, les->heads };
    for (int l = from_layer; l < c->n_layer; l++)
        m->ops->layer(m, l, x, T, l == les->layer ? &mask : NULL, q, k, v);
    m->ops->logits(m, x + (size_t)les->position * c->n_embd, 1, logits);
    free(x);
    return 0;
}

int as_model_lesion_heads(const struct as_model *m, const struct as_model_pass *clean, int layer, int position,
                          const int *heads, int n, float *logits, struct as_error *err)
{
    if (check_lesion(m, clean, layer, position, heads, n, err))
        return -1;
    const struct as_model_config *c = &m->cfg;
    int E = c->n_embd, T = clean->T;
    size_t te = (size_t)T * E;
    float *x = as_xmalloc((size_t)n * E * sizeof *x);
    const float *row = clean->resid + (size_t)layer * te + (size_t)position * E;
    for (int i = 0; i < n; i++)
        memcpy(x + (size_t)i * E, row, (size_t)E * sizeof *x);
    for (int l = layer; l < c->n_layer; l++)
        m->ops->layer_rows(m, l, x, n, position, clean->k + (size_t)l * te, clean->v + (size_t)l * te,
                           l == layer ? heads : NULL);
    m->ops->logits(m, x, n, logits);
    free(x);
    return 0;
}

double as_model_logprob(const float *logits, int vocab, int target)
{
    double mx = logits[0], s = 0;
    for (int i = 1; i < vocab; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < vocab; i++)
        s += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(s);
}

void as_model_topk(const float *logits, int vocab, int k, int *ids)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < vocab; i++) {
            int used = 0;
            for (int t = 0; t < j && !used; t++)
                used = ids[t] == i;
            if (!used && (best < 0 || logits[i] > logits[best]))
                best = i;
        }
        ids[j] = best;
    }
}
