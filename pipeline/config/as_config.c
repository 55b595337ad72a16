/* as_config.c: YAML -> struct as_config, every error with file:line:col. */
#include "as_config.h"
#include "as_model.h"
#include "as_stage_registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_util.h"

/* Collapse "a/./b" and "a/x/../b" (x not "..") so paths read the way users wrote them. */
static void path_tidy(char *p)
{
    char *seg[512];
    int n = 0, abs = p[0] == '/';
    char buf[AS_PATH_MAX];
    as_strlcpy(buf, p, sizeof buf);
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < 512; t = strtok_r(NULL, "/", &save)) {
        if (!strcmp(t, "."))
            continue;
        if (!strcmp(t, "..") && n > 0 && strcmp(seg[n - 1], ".."))
            n--;
        else if (!(strcmp(t, "..") == 0 && abs && n == 0))
            seg[n++] = t;
    }
    char out[AS_PATH_MAX];
    size_t k = 0;
    out[0] = '\0';
    if (abs)
        out[k++] = '/';
    for (int i = 0; i < n && k < sizeof out - 1; i++)
        k += (size_t)snprintf(out + k, sizeof out - k, "%s%s", i ? "/" : "", seg[i]);
    if (k == 0)
        snprintf(out, sizeof out, ".");
    else
        out[k < sizeof out ? k : sizeof out - 1] = '\0';
    as_strlcpy(p, out, AS_PATH_MAX);
}

static void path_join(char *out, size_t n, const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir[0])
        as_strlcpy(out, rel, n);
    else
        snprintf(out, n, "%s/%s", dir, rel);
    path_tidy(out);
}

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) >= AS_NAME_MAX)
        return 0;
    for (const char *c = s; *c; c++)
        if (*c == '/' || *c == '\n' || (unsigned char)*c < 0x20)
            return 0;
    return strcmp(s, ".") && strcmp(s, "..");
}

static int parse_synthetic(struct as_model_cfg *m, const struct as_ynode *n, struct as_error *err)
{
    static const char *const keys[] = { "layers", "heads", "seq_len", "seed", "batch", "head_dim", NULL };
    char what[256];
    snprintf(what, sizeof what, "model '%s' synthetic", m->name);
    if (n->kind != AS_YNODE_MAP)
        return as_ynode_error(n, err, "%s: expected a mapping {layers, heads, seq_len, seed}", what);
    if (as_ynode_check_keys(n, what, keys, err))
        return -1;
    int64_t seed;
    struct as_synth_spec *s = &m->synth;
    if (!as_ynode_get(n, "layers") || !as_ynode_get(n, "heads") || !as_ynode_get(n, "seq_len"))
        return as_ynode_error(n, err, "%s: needs layers, heads and seq_len", what);
    if (as_ynode_get_int(n, what, "layers", 0, 1, 4096, &s->layers, err) ||
        as_ynode_get_int(n, what, "heads", 0, 1, 4096, &s->heads, err) ||
        as_ynode_get_int(n, what, "seq_len", 0, 1, 1 << 16, &s->seq_len, err) ||
        as_ynode_get_int(n, what, "seed", 0, 0, INT64_MAX, &seed, err) ||
        as_ynode_get_int(n, what, "batch", 2, 1, 4096, &s->batch, err) ||
        as_ynode_get_int(n, what, "head_dim", 16, 1, 4096, &s->head_dim, err))
        return -1;
    s->seed = (uint64_t)seed;
    as_strlcpy(s->model, m->name, sizeof s->model);
    m->synthetic = 1;
    return 0;
}

static int parse_tensors(const struct as_config *cfg, struct as_model_cfg *m, const struct as_ynode *n,
                         struct as_error *err)
{
    char what[256];
    snprintf(what, sizeof what, "model '%s' tensors", m->name);
    if (n->kind != AS_YNODE_MAP)
        return as_ynode_error(n, err, "%s: expected a mapping of tensor name to file", what);
    for (size_t i = 0; i < n->n; i++) {
        const struct as_ynode *k = n->keys[i], *v = n->items[i];
        if (m->n_tensors == AS_MAX_TENSORS)
            return as_ynode_error(k, err, "%s: more than %d tensors", what, AS_MAX_TENSORS);
        struct as_tensor_ref *t = &m->tensors[m->n_tensors];
        if (strlen(k->scalar) >= sizeof t->name || !k->scalar[0])
            return as_ynode_error(k, err, "%s: bad tensor name '%s'", what, k->scalar);
        as_strlcpy(t->name, k->scalar, sizeof t->name);
        const char *file = NULL, *key = "";
        if (v->kind == AS_YNODE_SCALAR) {
            file = v->scalar;
        } else {
            static const char *const keys[] = { "file", "key", NULL };
            char w2[320];
            snprintf(w2, sizeof w2, "%s.%s", what, t->name);
            if (as_ynode_check_keys(v, w2, keys, err) || as_ynode_get_str(v, w2, "file", NULL, &file, err) ||
                as_ynode_get_str(v, w2, "key", "", &key, err))
                return -1;
            if (!file)
                return as_ynode_error(v, err, "%s: missing key 'file'", w2);
        }
        if (!file[0])
            return as_ynode_error(v, err, "%s.%s: empty file name", what, t->name);
        path_join(t->file, sizeof t->file, m->dir[0] ? m->dir : cfg->dir, file);
        as_strlcpy(t->key, key, sizeof t->key);
        m->n_tensors++;
    }
    return 0;
}

static int parse_model(struct as_config *cfg, struct as_model_cfg *m, const struct as_ynode *n, int idx,
                       struct as_error *err)
{
    static const char *const keys[] = { "name", "dir", "synthetic", "tensors", "root", "model_id", "seq_len",
                                        "dataset", "heads", "label", "weights", "prompt", NULL };
    char what[64];
    snprintf(what, sizeof what, "models[%d]", idx);
    m->node = n;
    if (n->kind != AS_YNODE_MAP)
        return as_ynode_error(n, err, "%s: expected a mapping with name and dir or synthetic", what);
    if (as_ynode_check_keys(n, what, keys, err))
        return -1;
    const char *name, *dir, *root, *model_id, *dataset, *label;
    char auto_name[AS_NAME_MAX];
    int64_t seq_len;
    if (as_ynode_get_str(n, what, "name", NULL, &name, err) || as_ynode_get_str(n, what, "dir", NULL, &dir, err) ||
        as_ynode_get_str(n, what, "root", NULL, &root, err) ||
        as_ynode_get_str(n, what, "model_id", NULL, &model_id, err) ||
        as_ynode_get_str(n, what, "dataset", "", &dataset, err) ||
        as_ynode_get_str(n, what, "label", "", &label, err) ||
        as_ynode_get_int(n, what, "seq_len", 0, 1, 1 << 20, &seq_len, err) ||
        as_ynode_get_int(n, what, "heads", 0, 1, 1 << 20, &m->heads, err))
        return -1;
    const struct as_ynode *syn = as_ynode_get(n, "synthetic");
    int sources = (dir != NULL) + (syn != NULL) + (root != NULL || model_id != NULL);
    /* a model may also be given by its files alone (tensors: without dir:) */
    if (sources > 1 || (sources == 0 && !as_ynode_get(n, "tensors") && !as_ynode_get(n, "weights")))
        return as_ynode_error(n, err, "%s: give exactly one of 'dir', 'synthetic' or 'root' + 'model_id' + "
                                      "'seq_len', or the files in 'tensors'", what);
    if (root || model_id) {
        if (!root || !model_id || !seq_len)
            return as_ynode_error(n, err, "%s: the seeds' layout needs 'root', 'model_id' and 'seq_len'", what);
        as_strlcpy(m->model_id, model_id, sizeof m->model_id);
        m->seq_len_attr = seq_len;
        char mid[256], rel[AS_PATH_MAX], rootp[AS_PATH_MAX];
        as_strlcpy(mid, model_id, sizeof mid);
        for (char *c = mid; *c; c++)
            if (*c == '/')
                *c = '_';
        path_join(rootp, sizeof rootp, cfg->dir, root);
        snprintf(rel, sizeof rel, "%s/%s/%lld", rootp, mid, (long long)seq_len);
        as_strlcpy(m->dir, rel, sizeof m->dir);
        if (!name) {
            snprintf(auto_name, sizeof auto_name, "%s%s%s_%lld", dataset, dataset[0] ? "_" : "", mid,
                     (long long)seq_len);
            name = auto_name;
        }
    } else if (seq_len) {
        return as_ynode_error(as_ynode_get(n, "seq_len"), err, "%s: 'seq_len' belongs to the seeds' layout "
                                                              "(root + model_id + seq_len)", what);
    }
    if (!name)
        return as_ynode_error(n, err, "%s: missing key 'name'", what);
    if (!valid_name(name))
        return as_ynode_error(as_ynode_get(n, "name"), err, "%s: invalid model name '%s' (no '/', not empty)",
                              what, name);
    as_strlcpy(m->name, name, sizeof m->name);
    as_strlcpy(m->dataset, dataset, sizeof m->dataset);
    if (strlen(label) >= sizeof m->label)
        return as_ynode_error(as_ynode_get(n, "label"), err, "model '%s': label longer than %d bytes", name,
                              (int)sizeof m->label - 1);
    as_strlcpy(m->label, label, sizeof m->label);
    if (dir) {
        if (!dir[0])
            return as_ynode_error(as_ynode_get(n, "dir"), err, "model '%s': empty 'dir'", name);
        path_join(m->dir, sizeof m->dir, cfg->dir, dir);
    }
    if (syn && parse_synthetic(m, syn, err))
        return -1;
    if (syn && !m->heads)
        m->heads = m->synth.heads;
    const struct as_ynode *t = as_ynode_get(n, "tensors");
    if (t && parse_tensors(cfg, m, t, err))
        return -1;
    const char *weights; /* a Hugging Face folder, for stages that run the model */
    if (as_ynode_get_str(n, what, "weights", NULL, &weights, err))
        return -1;
    if (weights && !weights[0])
        return as_ynode_error(as_ynode_get(n, "weights"), err, "model '%s': empty 'weights'", m->name);
    if (weights)
        path_join(m->weights, sizeof m->weights, cfg->dir, weights);
    const char *prompt; /* token ids: Q/K/V from the forward pass of `weights` over them */
    if (as_ynode_get_str(n, what, "prompt", NULL, &prompt, err))
        return -1;
    if (prompt && (!prompt[0] || !weights))
        return as_ynode_error(as_ynode_get(n, "prompt"), err, "model '%s': 'prompt' needs 'weights' (the model "
                              "that runs over it)", m->name);
    if (prompt)
        path_join(m->prompt, sizeof m->prompt, cfg->dir, prompt);
    struct as_model_config mc; /* live activations: the head count is the model's */
    struct as_error ignore = { AS_OK, "" };
    if (prompt && !m->heads && !as_model_probe(m->weights, &mc, &ignore))
        m->heads = mc.n_head;
    return 0;
}

/* figures.matrices: [{model, layer, head}] (the models are checked once the config's are known). */
static int parse_matrices(struct as_config *cfg, const struct as_ynode *l, struct as_error *err)
{
    static const char *const keys[] = { "model", "layer", "head", NULL };
    if (l->kind != AS_YNODE_SEQ)
        return as_ynode_error(l, err, "figures.matrices: expected a list of {model, layer, head}");
    cfg->matrices = as_xcalloc(l->n ? l->n : 1, sizeof *cfg->matrices);
    for (size_t i = 0; i < l->n; i++) {
        const struct as_ynode *e = l->items[i];
        struct as_matrix_req *q = &cfg->matrices[i];
        char what[64];
        const char *model;
        snprintf(what, sizeof what, "figures.matrices[%zu]", i);
        if (e->kind != AS_YNODE_MAP)
            return as_ynode_error(e, err, "%s: expected a mapping {model, layer, head}", what);
        if (as_ynode_check_keys(e, what, keys, err) || as_ynode_get_str(e, what, "model", NULL, &model, err) ||
            as_ynode_get_int(e, what, "layer", -1, 0, 1 << 20, &q->layer, err) ||
            as_ynode_get_int(e, what, "head", -1, 0, 1 << 20, &q->head, err))
            return -1;
        if (!model || q->layer < 0 || q->head < 0)
            return as_ynode_error(e, err, "%s: needs model, layer and head", what);
        if (strlen(model) >= sizeof q->model)
            return as_ynode_error(e, err, "%s: model name too long", what);
        as_strlcpy(q->model, model, sizeof q->model);
        cfg->n_matrices++;
    }
    return 0;
}

static int parse_figures(struct as_config *cfg, const struct as_ynode *n, struct as_error *err)
{
    static const char *const keys[] = { "dir", "formats", "style", "matrices", NULL };
    static const char *const styles[] = { "generic", "paper", NULL };
    if (n->kind == AS_YNODE_SCALAR) {
        int on;
        if (as_ynode_get_bool(n, "", "figures", 0, &on, err))
            return -1;
    }
    if (as_ynode_check_keys(n, "figures", keys, err))
        return -1;
    const char *dir;
    if (as_ynode_get_str(n, "figures", "dir", NULL, &dir, err))
        return -1;
    int paper = 0;
    if (as_ynode_get_enum(n, "figures", "style", 0, styles, &paper, err))
        return -1;
    const struct as_ynode *mx = as_ynode_get(n, "matrices");
    if (mx && parse_matrices(cfg, mx, err))
        return -1;
    cfg->figures = 1;
    cfg->figure_formats = 1;
    if (dir)
        path_join(cfg->figures_dir, sizeof cfg->figures_dir, cfg->dir, dir);
    const struct as_ynode *f = as_ynode_get(n, "formats");
    if (f) {
        if (f->kind != AS_YNODE_SEQ || f->n == 0)
            return as_ynode_error(f, err, "figures.formats: expected a list such as [png, pdf]");
        cfg->figure_formats = 0;
        for (size_t i = 0; i < f->n; i++) {
            const struct as_ynode *x = f->items[i];
            if (x->kind != AS_YNODE_SCALAR)
                return as_ynode_error(x, err, "figures.formats: expected png, pdf or svg");
            if (!strcmp(x->scalar, "png"))
                cfg->figure_formats |= 1;
            else if (!strcmp(x->scalar, "pdf"))
                cfg->figure_formats |= 2;
            else if (!strcmp(x->scalar, "svg"))
                cfg->figure_formats |= 4;
            else
                return as_ynode_error(x, err, "figures.formats: '%s' is not png, pdf or svg", x->scalar);
        }
    }
    if (paper)
        cfg->figure_formats |= AS_CONFIG_FIG_PAPER;
    return 0;
}

static void derive_log(struct as_config *cfg)
{
    as_strlcpy(cfg->log, cfg->output, sizeof cfg->log);
    char *dot = strrchr(cfg->log, '.'), *slash = strrchr(cfg->log, '/');
    if (dot && (!slash || dot > slash))
        *dot = '\0';
    size_t len = strlen(cfg->log);
    if (len + 5 < sizeof cfg->log)
        memcpy(cfg->log + len, ".log", 5);
    if (!cfg->figures_dir[0]) {
        as_strlcpy(cfg->figures_dir, cfg->log, sizeof cfg->figures_dir);
        len = strlen(cfg->figures_dir);
        cfg->figures_dir[len - 4] = '\0';
        if (len + 4 < sizeof cfg->figures_dir)
            memcpy(cfg->figures_dir + len - 4, "_figures", 9);
    }
}


/* A zeroed entry at cfg->models[cfg->n_models] (not counted until the caller does). */
static struct as_model_cfg *model_push(struct as_config *cfg)
{
    if (cfg->n_models == cfg->cap_models) {
        int cap = cfg->cap_models ? 2 * cfg->cap_models : 16;
        cfg->models = as_xrealloc(cfg->models, (size_t)cap, sizeof *cfg->models);
        cfg->cap_models = cap;
    }
    memset(&cfg->models[cfg->n_models], 0, sizeof cfg->models[0]);
    return &cfg->models[cfg->n_models];
}

/* ---- sweeps: `{var}` in a template scalar is the value; `{var:path}` the value with '/' as '_' */

static int expand_template(const char *tmpl, const struct as_ynode *vars, const size_t *pick, const char *data_root,
                           char *out, size_t n, const struct as_ynode *at, struct as_error *err)
{
    size_t k = 0;
    for (const char *c = tmpl; *c; c++) {
        if (*c != '{') {
            if (k + 1 < n)
                out[k++] = *c;
            continue;
        }
        const char *end = strchr(c, '}');
        if (!end)
            return as_ynode_error(at, err, "sweep: unclosed '{' in template '%s'", tmpl);
        char name[128];
        size_t len = (size_t)(end - c - 1);
        if (len >= sizeof name)
            return as_ynode_error(at, err, "sweep: variable name too long in '%s'", tmpl);
        memcpy(name, c + 1, len);
        name[len] = '\0';
        int path = 0;
        char *colon = strchr(name, ':');
        if (colon) {
            if (strcmp(colon, ":path"))
                return as_ynode_error(at, err, "sweep: unknown filter '%s' in '%s' (only :path)", colon, tmpl);
            *colon = '\0';
            path = 1;
        }
        size_t v;
        for (v = 0; v < vars->n; v++)
            if (!strcmp(vars->keys[v]->scalar, name))
                break;
        const char *val;
        if (v < vars->n) {
            val = vars->items[v]->items[pick[v]]->scalar;
        } else if (!strcmp(name, "data_root")) { /* the config's data_root: unless a var has the name */
            if (!data_root[0])
                return as_ynode_error(at, err, "sweep: template '%s' uses '{data_root}' but data_root is not set "
                                      "(give data_root: in the config or --set data_root=PATH)", tmpl);
            val = data_root;
        } else {
            return as_ynode_error(at, err, "sweep: template '%s' uses '{%s}', which is not in sweep.vars", tmpl, name);
        }
        for (const char *x = val; *x; x++)
            if (k + 1 < n)
                out[k++] = path && *x == '/' ? '_' : *x;
        c = end;
    }
    out[k] = '\0';
    return 0;
}

static struct as_ynode *clone_expand(const struct as_ynode *t, const struct as_ynode *vars, const size_t *pick,
                                     const char *data_root, struct as_error *err)
{
    struct as_ynode *n = as_xcalloc(1, sizeof *n);
    *n = *t;
    n->keys = n->items = NULL;
    n->n = 0;
    n->scalar = NULL;
    if (t->kind == AS_YNODE_SCALAR) {
        char buf[AS_PATH_MAX];
        if (expand_template(t->scalar, vars, pick, data_root, buf, sizeof buf, t, err)) {
            free(n);
            return NULL;
        }
        n->scalar = as_xstrdup(buf);
        if (strchr(t->scalar, '{'))
            n->quoted = 0; /* "{seq_len}" is quoted for YAML's sake; its value may be a number */
        return n;
    }
    n->items = as_xcalloc(t->n ? t->n : 1, sizeof *n->items);
    if (t->kind == AS_YNODE_MAP)
        n->keys = as_xcalloc(t->n ? t->n : 1, sizeof *n->keys);
    for (size_t i = 0; i < t->n; i++) {
        if (t->kind == AS_YNODE_MAP) {
            n->keys[i] = as_xcalloc(1, sizeof *n->keys[i]);
            *n->keys[i] = *t->keys[i];
            n->keys[i]->scalar = as_xstrdup(t->keys[i]->scalar);
        }
        n->items[i] = clone_expand(t->items[i], vars, pick, data_root, err);
        n->n = i + 1;
        if (!n->items[i]) {
            n->n = i + (t->kind == AS_YNODE_MAP);
            if (t->kind == AS_YNODE_MAP) { /* free the key we allocated without an item */
                free(n->keys[i]->scalar);
                free(n->keys[i]);
                n->n = i;
            }
            as_ynode_free(n);
            return NULL;
        }
    }
    return n;
}

static int dir_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Expand one sweep onto the end of cfg->models. */
static int expand_sweep(struct as_config *cfg, const struct as_ynode *sw, struct as_error *err)
{
    static const char *const keys[] = { "vars", "model", "missing", NULL };
    static const char *const miss[] = { "error", "skip", NULL };
    int skip;
    if (sw->kind != AS_YNODE_MAP)
        return as_ynode_error(sw, err, "sweep: expected a mapping with vars and model");
    if (as_ynode_check_keys(sw, "sweep", keys, err) || as_ynode_get_enum(sw, "sweep", "missing", 0, miss, &skip, err))
        return -1;
    const struct as_ynode *vars = as_ynode_get(sw, "vars"), *tmpl = as_ynode_get(sw, "model");
    if (!vars || vars->kind != AS_YNODE_MAP || vars->n == 0)
        return as_ynode_error(vars ? vars : sw, err, "sweep.vars: expected a mapping of variable to a list of values");
    if (!tmpl || tmpl->kind != AS_YNODE_MAP)
        return as_ynode_error(tmpl ? tmpl : sw, err, "sweep.model: expected a model entry whose strings may use {var}");
    for (size_t v = 0; v < vars->n; v++) {
        const struct as_ynode *l = vars->items[v];
        if (l->kind != AS_YNODE_SEQ || l->n == 0)
            return as_ynode_error(l, err, "sweep.vars.%s: expected a non-empty list", vars->keys[v]->scalar);
        for (size_t i = 0; i < l->n; i++)
            if (l->items[i]->kind != AS_YNODE_SCALAR)
                return as_ynode_error(l->items[i], err, "sweep.vars.%s: values must be scalars", vars->keys[v]->scalar);
    }
    size_t pick[64] = { 0 };
    if (vars->n > 64)
        return as_ynode_error(vars, err, "sweep.vars: more than 64 variables");
    struct as_strbuf missing = AS_STRBUF_INIT;
    int n_missing = 0, rc = 0;
    for (;;) {
        struct as_ynode *entry = clone_expand(tmpl, vars, pick, cfg->data_root, err);
        if (!entry) {
            rc = -1;
            break;
        }
        cfg->generated = as_xrealloc(cfg->generated, (size_t)cfg->n_generated + 1, sizeof *cfg->generated);
        cfg->generated[cfg->n_generated++] = entry;
        struct as_model_cfg *m = model_push(cfg);
        if (parse_model(cfg, m, entry, cfg->n_models, err)) {
            rc = -1;
            break;
        }
        if (!m->synthetic && !dir_exists(m->dir)) {
            as_strbuf_addf(skip ? &cfg->skipped : &missing, "%s (%s)\n", m->name, m->dir);
            n_missing++;
        } else {
            cfg->n_models++;
        }
        size_t v = vars->n;
        while (v-- > 0) { /* odometer: the last variable varies fastest */
            if (++pick[v] < vars->items[v]->n)
                break;
            pick[v] = 0;
        }
        if (v == (size_t)-1)
            break;
    }
    if (!rc && n_missing && !skip) {
        /* one line: the first few missing combinations, then a count */
        char first[600];
        as_strlcpy(first, as_strbuf_str(&missing), sizeof first);
        for (char *c = first; *c; c++)
            if (*c == '\n')
                *c = ';';
        rc = as_ynode_error(sw, err, "sweep: %d combination%s missing (set missing: skip to leave them out): %s",
                            n_missing, n_missing == 1 ? " is" : "s are", first);
    }
    as_strbuf_release(&missing);
    return rc;
}

static size_t sweep_size(const struct as_ynode *sw)
{
    const struct as_ynode *vars = as_ynode_get(sw, "vars");
    if (!vars || vars->kind != AS_YNODE_MAP)
        return 0;
    size_t total = 1;
    for (size_t v = 0; v < vars->n; v++)
        if (vars->items[v]->kind == AS_YNODE_SEQ && total <= AS_MAX_MODELS)
            total *= vars->items[v]->n ? vars->items[v]->n : 1;
    return total;
}

static int parse_root(struct as_config *cfg, struct as_error *err)
{
    static const char *const keys[] = { "output", "models", "sweep", "stages", "figures", "provenance", "on_error",
                                        "split", "data_root", NULL };
    const struct as_ynode *root = cfg->doc.root;
    if (root->kind != AS_YNODE_MAP)
        return as_ynode_error(root, err, "the config must be a mapping with output, models and stages");
    if (as_ynode_check_keys(root, "config", keys, err))
        return -1;
    const char *output;
    if (as_ynode_get_str(root, "", "output", NULL, &output, err))
        return -1;
    if (!output)
        return as_ynode_error(root, err, "missing key 'output' (the results file, e.g. out/run.h5)");
    if (!output[0])
        return as_ynode_error(as_ynode_get(root, "output"), err, "output: empty path");
    path_join(cfg->output, sizeof cfg->output, cfg->dir, output);
    const char *data_root;
    if (as_ynode_get_str(root, "", "data_root", NULL, &data_root, err))
        return -1;
    if (data_root && !data_root[0])
        return as_ynode_error(as_ynode_get(root, "data_root"), err, "data_root: empty path");
    if (data_root)
        path_join(cfg->data_root, sizeof cfg->data_root, cfg->dir, data_root);

    const struct as_ynode *models = as_ynode_get(root, "models"), *sweep = as_ynode_get(root, "sweep");
    if (!models && !sweep)
        return as_ynode_error(root, err, "missing key 'models' (a list of models) or 'sweep'");
    if (models && (models->kind != AS_YNODE_SEQ || models->n == 0))
        return as_ynode_error(models, err, "models: expected a non-empty list");
    /* `sweep:` is one sweep or a list of them */
    const struct as_ynode *const *sweeps = NULL;
    size_t n_sweeps = 0, total = models ? models->n : 0;
    if (sweep) {
        if (sweep->kind == AS_YNODE_SEQ) {
            sweeps = (const struct as_ynode *const *)sweep->items;
            n_sweeps = sweep->n;
        } else {
            sweeps = &sweep;
            n_sweeps = 1;
        }
        for (size_t k = 0; k < n_sweeps; k++)
            total += sweep_size(sweeps[k]);
    }
    if (total > AS_MAX_MODELS)
        return as_ynode_error(sweep ? sweep : models, err, "%zu models: more than %d", total, AS_MAX_MODELS);
    for (size_t i = 0; models && i < models->n; i++) {
        struct as_model_cfg *m = model_push(cfg);
        if (parse_model(cfg, m, models->items[i], (int)i, err))
            return -1;
        cfg->n_models++;
    }
    for (size_t k = 0; k < n_sweeps; k++)
        if (expand_sweep(cfg, sweeps[k], err))
            return -1;
    if (cfg->n_models == 0)
        return as_ynode_error(sweep ? sweep : root, err, "no model left: every sweep combination is missing");
    for (int i = 0; i < cfg->n_models; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(cfg->models[j].name, cfg->models[i].name))
                return as_ynode_error(cfg->models[i].node, err, "models[%d]: duplicate model name '%s' (also "
                                      "models[%d] at line %d)", i, cfg->models[i].name, j, cfg->models[j].node->line);

    const struct as_ynode *stages = as_ynode_get(root, "stages");
    if (!stages)
        return as_ynode_error(root, err, "missing key 'stages' (e.g. stages: {histsim: {}})");
    if (stages->kind != AS_YNODE_MAP || stages->n == 0)
        return as_ynode_error(stages, err, "stages: expected a non-empty mapping of stage name to options");
    for (size_t i = 0; i < stages->n; i++) {
        const char *sname = stages->keys[i]->scalar;
        if (!as_stage_find(sname)) {
            struct as_strbuf sb = AS_STRBUF_INIT;
            for (int k = 0; as_stages[k]; k++)
                as_strbuf_addf(&sb, "%s%s", k ? ", " : "", as_stages[k]->name);
            as_ynode_error(stages->keys[i], err, "stages: unknown stage '%s' (known: %s)", sname,
                           as_strbuf_str(&sb));
            as_strbuf_release(&sb);
            return -1;
        }
    }
    /* registry order, so results and logs do not depend on the order in the YAML */
    for (int k = 0; as_stages[k]; k++) {
        const struct as_ynode *opt = as_ynode_get(stages, as_stages[k]->name);
        if (!as_ynode_get(stages, as_stages[k]->name) &&
            !(stages->kind == AS_YNODE_MAP && opt))
            continue;
        /* `histsim:` with no value is a null scalar: defaults */
        const struct as_ynode *o = opt;
        if (o && o->kind == AS_YNODE_SCALAR && !o->quoted && (!o->scalar[0] || !strcmp(o->scalar, "~") ||
                                                              !strcmp(o->scalar, "null")))
            o = NULL;
        if (o && o->kind != AS_YNODE_MAP)
            return as_ynode_error(o, err, "stages.%s: expected a mapping of options ({} for defaults)",
                                  as_stages[k]->name);
        struct as_stage_cfg *sc = &cfg->stages[cfg->n_stages];
        sc->ops = as_stages[k];
        sc->node = o;
        if (as_stages[k]->configure(&sc->cfg, o, err))
            return -1;
        cfg->n_stages++;
    }
    const struct as_ynode *fig = as_ynode_get(root, "figures");
    if (fig && parse_figures(cfg, fig, err))
        return -1;
    for (int i = 0; i < cfg->n_matrices; i++) { /* a model left out by missing: skip is no error */
        const char *mn = cfg->matrices[i].model;
        size_t len = strlen(mn);
        const char *sk = as_strbuf_str(&cfg->skipped);
        int skipped = !strncmp(sk, mn, len) && sk[len] == ' ';
        for (const char *p = strchr(sk, '\n'); p && !skipped; p = strchr(p + 1, '\n'))
            skipped = !strncmp(p + 1, mn, len) && p[1 + len] == ' ';
        if (!as_config_model(cfg, mn) && !skipped)
            return as_ynode_error(as_ynode_get(fig, "matrices")->items[i], err, "figures.matrices[%d]: no model '%s' "
                                  "in the config", i, mn);
    }
    const struct as_ynode *prov = as_ynode_get(root, "provenance");
    if (prov) {
        static const char *const pk[] = { "digest", NULL };
        static const char *const dv[] = { "sampled", "full", NULL };
        if (as_ynode_check_keys(prov, "provenance", pk, err) ||
            as_ynode_get_enum(prov, "provenance", "digest", 0, dv, &cfg->full_digest, err))
            return -1;
    }
    static const char *const oe[] = { "stop", "skip", NULL };
    int skip = 0;
    if (as_ynode_get_enum(root, "", "on_error", 0, oe, &skip, err))
        return -1;
    cfg->on_error = skip ? AS_ON_ERROR_SKIP : AS_ON_ERROR_STOP;
    cfg->split = AS_CONFIG_SPLIT_AUTO;
    const struct as_ynode *sp = as_ynode_get(root, "split");
    if (sp && sp->kind == AS_YNODE_SCALAR && (!strcmp(sp->scalar, "auto") || !strcmp(sp->scalar, "off"))) {
        cfg->split = !strcmp(sp->scalar, "off") ? 0 : AS_CONFIG_SPLIT_AUTO;
    } else if (sp) {
        int64_t n;
        if (as_ynode_get_int(root, "", "split", 0, 1, 1 << 20, &n, err)) {
            as_ynode_error(sp, err, "split: expected auto, off or a number of pieces (1 to %d)", 1 << 20);
            return -1;
        }
        cfg->split = (int)n;
    }
    derive_log(cfg);
    return 0;
}

/* ---- --set KEY=VALUE: edits of the YAML tree before it is parsed */

static struct as_ynode *ynode_new(enum as_ynode_kind kind, const char *file, const char *scalar)
{
    struct as_ynode *n = as_xcalloc(1, sizeof *n);
    n->kind = kind;
    n->file = file;
    n->line = n->col = 1;
    if (scalar)
        n->scalar = as_xstrdup(scalar);
    return n;
}

static void ynode_push(struct as_ynode *map, struct as_ynode *key, struct as_ynode *item)
{
    map->items = as_xrealloc(map->items, map->n + 1, sizeof *map->items);
    map->keys = as_xrealloc(map->keys, map->n + 1, sizeof *map->keys);
    map->keys[map->n] = key;
    map->items[map->n++] = item;
}

static int is_null_scalar(const struct as_ynode *n)
{
    return n->kind == AS_YNODE_SCALAR && !n->quoted &&
           (!n->scalar[0] || !strcmp(n->scalar, "~") || !strcmp(n->scalar, "null"));
}

/* Apply one override to the document's tree. `tag` ("--set KEY=VALUE", owned by the caller for as
 * long as the tree lives) is the file name of every node the override makes. */
static int apply_set(struct as_config *cfg, const char *set, const char *tag, struct as_error *err)
{
    const char *eq = strchr(set, '=');
    if (!eq || eq == set)
        return as_error_set(err, AS_ERR_USAGE, "--set '%s': expected KEY=VALUE (a dotted key such as "
                            "stages.histsim.edges=100)", set);
    char key[512];
    if ((size_t)(eq - set) >= sizeof key)
        return as_error_set(err, AS_ERR_USAGE, "--set: key '%.40s...' is too long", set);
    memcpy(key, set, (size_t)(eq - set));
    key[eq - set] = '\0';
    const char *value = eq + 1;
    char abs_root[AS_PATH_MAX];
    if (!strcmp(key, "data_root") && value[0] && value[0] != '/') { /* from the command line: the cwd */
        char cwd[AS_PATH_MAX];
        if (getcwd(cwd, sizeof cwd)) {
            snprintf(abs_root, sizeof abs_root, "%s/%s", cwd, value);
            path_tidy(abs_root);
            value = abs_root;
        }
    }
    /* the value is YAML: 100, [png, pdf], "a b", {} */
    struct as_ydoc vd;
    memset(&vd, 0, sizeof vd);
    if (!value[0])
        vd.file = as_xstrdup(tag);
    else if (as_ydoc_parse_string(&vd, tag, value, strlen(value), err))
        return -1;
    cfg->set_docs = as_xrealloc(cfg->set_docs, (size_t)cfg->n_set_docs + 1, sizeof *cfg->set_docs);
    cfg->set_docs[cfg->n_set_docs++] = vd;
    struct as_ynode *val = vd.root;
    cfg->set_docs[cfg->n_set_docs - 1].root = NULL; /* grafted below: the config's tree owns it */
    if (!val) { /* `--set k=`: the empty string */
        val = ynode_new(AS_YNODE_SCALAR, tag, "");
        val->quoted = 1;
    }
    const char *file = cfg->set_docs[cfg->n_set_docs - 1].file; /* lives as long as the config */
    struct as_ynode *cur = cfg->doc.root;
    char *save = NULL, path[512] = "";
    for (char *seg = strtok_r(key, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
        int last = save == NULL || *save == '\0';
        if (!seg[0]) {
            as_ynode_free(val);
            return as_error_set(err, AS_ERR_USAGE, "--set '%s': empty part in the key", set);
        }
        struct as_ynode **slot = NULL;
        if (cur->kind == AS_YNODE_MAP) {
            for (size_t i = 0; i < cur->n; i++)
                if (!strcmp(cur->keys[i]->scalar, seg))
                    slot = &cur->items[i];
            if (!slot) {
                ynode_push(cur, ynode_new(AS_YNODE_SCALAR, file, seg),
                           last ? NULL : ynode_new(AS_YNODE_MAP, file, NULL));
                slot = &cur->items[cur->n - 1];
            }
        } else if (cur->kind == AS_YNODE_SEQ) {
            char *end;
            long idx = strtol(seg, &end, 10);
            if (*end || idx < 0 || (size_t)idx >= cur->n) {
                as_ynode_free(val);
                return as_error_set(err, AS_ERR_CONFIG, "%s: '%s%s' is a list of %zu: '%s' is not an index of it",
                                    tag, path, path[0] ? "" : "(top)", cur->n, seg);
            }
            slot = &cur->items[idx];
        } else {
            as_ynode_free(val);
            return as_error_set(err, AS_ERR_CONFIG, "%s: '%s' is a value, not a mapping: it has no key '%s'", tag,
                                path, seg);
        }
        snprintf(path + strlen(path), sizeof path - strlen(path), "%s%s", path[0] ? "." : "", seg);
        if (last) {
            as_ynode_free(*slot);
            *slot = val;
            break;
        }
        if (is_null_scalar(*slot)) { /* `histsim:` with no value: becomes the mapping the key goes in */
            as_ynode_free(*slot);
            *slot = ynode_new(AS_YNODE_MAP, file, NULL);
        }
        cur = *slot;
    }
    as_strbuf_addf(&cfg->overrides, "%s%s", cfg->overrides.len ? "\n" : "", set);
    return 0;
}

/* "--set K=V:1:5: msg" -> "--set K=V: msg": an override has no line and column. */
static void tidy_set_error(const struct as_config *cfg, struct as_error *err)
{
    for (int i = 0; i < cfg->n_set_docs; i++) {
        const char *tag = cfg->set_docs[i].file;
        size_t n = strlen(tag);
        if (strncmp(err->msg, tag, n) || err->msg[n] != ':')
            continue;
        char *p = err->msg + n + 1, *q = p;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == p || *q != ':')
            return;
        q++;
        while (*q >= '0' && *q <= '9')
            q++;
        if (*q == ':')
            memmove(p - 1, q, strlen(q) + 1);
        return;
    }
}

static int apply_sets(struct as_config *cfg, const char *const *sets, int n_sets, struct as_error *err)
{
    if (n_sets > 0 && cfg->doc.root->kind != AS_YNODE_MAP)
        return as_ynode_error(cfg->doc.root, err, "the config must be a mapping with output, models and stages");
    for (int i = 0; i < n_sets; i++) {
        char tag[600];
        snprintf(tag, sizeof tag, "--set %s", sets[i]);
        if (apply_set(cfg, sets[i], tag, err))
            return -1;
    }
    return 0;
}

static int load_common(struct as_config *cfg, const char *const *sets, int n_sets, struct as_error *err)
{
    as_reader_register(&as_reader_live); /* on every rank, before any describes an input */
    if (apply_sets(cfg, sets, n_sets, err) || parse_root(cfg, err)) {
        tidy_set_error(cfg, err);
        as_config_release(cfg);
        return -1;
    }
    return 0;
}

int as_config_parse_set(struct as_config *cfg, const char *name, const char *dir, const char *text,
                        const char *const *sets, int n_sets, struct as_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    as_strlcpy(cfg->path, name, sizeof cfg->path);
    as_strlcpy(cfg->dir, dir, sizeof cfg->dir);
    if (as_ydoc_parse_string(&cfg->doc, name, text, strlen(text), err))
        return -1;
    return load_common(cfg, sets, n_sets, err);
}

int as_config_parse(struct as_config *cfg, const char *name, const char *dir, const char *text,
                    struct as_error *err)
{
    return as_config_parse_set(cfg, name, dir, text, NULL, 0, err);
}

int as_config_load_set(struct as_config *cfg, const char *path, const char *const *sets, int n_sets,
                       struct as_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    as_strlcpy(cfg->path, path, sizeof cfg->path);
    as_strlcpy(cfg->dir, path, sizeof cfg->dir);
    char *slash = strrchr(cfg->dir, '/');
    if (slash)
        *slash = '\0';
    else
        as_strlcpy(cfg->dir, ".", sizeof cfg->dir);
    if (as_ydoc_load(&cfg->doc, path, err))
        return -1;
    return load_common(cfg, sets, n_sets, err);
}

int as_config_load(struct as_config *cfg, const char *path, struct as_error *err)
{
    return as_config_load_set(cfg, path, NULL, 0, err);
}

const struct as_model_cfg *as_config_model(const struct as_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->n_models; i++)
        if (!strcmp(cfg->models[i].name, name))
            return &cfg->models[i];
    return NULL;
}

void as_config_release(struct as_config *cfg)
{
    for (int i = 0; i < cfg->n_generated; i++)
        as_ynode_free(cfg->generated[i]);
    free(cfg->generated);
    as_strbuf_release(&cfg->skipped);
    for (int i = 0; i < cfg->n_stages; i++)
        if (cfg->stages[i].ops->release)
            cfg->stages[i].ops->release(cfg->stages[i].cfg);
    free(cfg->models);
    free(cfg->matrices);
    as_strbuf_release(&cfg->overrides);
    as_ydoc_release(&cfg->doc);
    for (int i = 0; i < cfg->n_set_docs; i++) /* after the tree: its grafted nodes name these files */
        as_ydoc_release(&cfg->set_docs[i]);
    free(cfg->set_docs);
    memset(cfg, 0, sizeof *cfg);
}

int as_config_select_models(struct as_config *cfg, const char *names, struct as_error *err)
{
    char *list = as_xstrdup(names), *save = NULL;
    int *keep = as_xcalloc((size_t)cfg->n_models, sizeof *keep), rc = 0;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < cfg->n_models; i++)
            if (!strcmp(cfg->models[i].name, tok)) {
                keep[i] = found = 1;
            }
        if (!found) {
            rc = as_error_set(err, AS_ERR_CONFIG, "%s: --models names '%s', which the config does not have", cfg->path,
                              tok);
            break;
        }
    }
    if (!rc) {
        int n = 0;
        for (int i = 0; i < cfg->n_models; i++)
            if (keep[i])
                cfg->models[n++] = cfg->models[i];
        if (n == 0)
            rc = as_error_set(err, AS_ERR_CONFIG, "%s: --models selects no model", cfg->path);
        else
            cfg->n_models = n;
        as_strlcpy(cfg->selection, names, sizeof cfg->selection);
    }
    free(keep);
    free(list);
    return rc;
}

void as_config_set_output(struct as_config *cfg, const char *output)
{
    as_strlcpy(cfg->output, output, sizeof cfg->output);
    cfg->figures_dir[0] = '\0';
    derive_log(cfg);
}

/* Files a tensor name may be stored in, in the order they are looked for; attn/grad may also
 * live in a jacobian.* dict file, as the notebooks save them. */
static const char *const tensor_exts[] = { ".pt", ".pth", ".safetensors", ".h5", ".hdf5", ".npy", NULL };

/* Whether folder dir has a file for tensor `name` (by the names `dir:` looks for). */
static int dir_has_tensor(const char *dir, const char *name)
{
    char cand[AS_PATH_MAX + 64];
    for (int e = 0; tensor_exts[e]; e++) {
        snprintf(cand, sizeof cand, "%s/%s%s", dir, name, tensor_exts[e]);
        if (file_exists(cand))
            return 1;
    }
    return 0;
}

int as_config_tensor(const struct as_config *cfg, const struct as_model_cfg *m, const char *name, char *path,
                     size_t path_n, char *key, size_t key_n, const struct as_reader_ops **ops,
                     struct as_error *err)
{
    *ops = NULL;
    key[0] = '\0';
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) {
            as_strlcpy(path, m->tensors[i].file, path_n);
            as_strlcpy(key, m->tensors[i].key, key_n);
            if (!file_exists(path))
                return as_error_set(err, AS_ERR_INPUT, "model '%s': tensor '%s': no file '%s'", m->name, name,
                                    path);
            return 0;
        }
    if (!strcmp(name, AS_WEIGHTS_TENSOR)) { /* the model's weights folder (stages that run it) */
        if (!m->weights[0])
            return as_error_set(err, AS_ERR_CONFIG, "model '%s': this stage runs the model: give 'weights: DIR' (a "
                                "Hugging Face folder with config.json and model.safetensors)", m->name);
        as_strlcpy(path, m->weights, path_n);
        if (!as_hf_is_folder(path))
            return as_error_set(err, AS_ERR_INPUT, "model '%s': weights '%s' is not a model folder (no config.json)",
                                m->name, path);
        *ops = &as_reader_hf;
        return 0;
    }
    if (m->synthetic) {
        as_synth_spec_format(&m->synth, path, path_n);
        as_strlcpy(key, name, key_n);
        *ops = &as_reader_synth;
        return 0;
    }
    if (m->prompt[0] && (!strcmp(name, "q_acts") || !strcmp(name, "k_acts") || !strcmp(name, "v_acts")) &&
        !(m->dir[0] && dir_has_tensor(m->dir, name))) { /* live, from the model's forward pass */
        as_strlcpy(path, m->weights, path_n);
        if (!as_hf_is_folder(path))
            return as_error_set(err, AS_ERR_INPUT, "model '%s': weights '%s' is not a model folder (no config.json)",
                                m->name, path);
        if ((size_t)snprintf(key, key_n, "%s@%s", name, m->prompt) >= key_n)
            return as_error_set(err, AS_ERR_CONFIG, "model '%s': prompt path too long", m->name);
        *ops = &as_reader_live;
        return 0;
    }
    if (!m->dir[0]) { /* given by its files alone */
        struct as_strbuf sb = AS_STRBUF_INIT;
        for (int i = 0; i < m->n_tensors; i++)
            as_strbuf_addf(&sb, "%s'%s'", i ? ", " : "", m->tensors[i].name);
        as_error_set(err, AS_ERR_INPUT, "model '%s': no file for tensor '%s' (its 'tensors' give %s; add it, or "
                     "give 'dir')", m->name, name, as_strbuf_str(&sb));
        as_strbuf_release(&sb);
        return -1;
    }
    char cand[AS_PATH_MAX];
    for (int e = 0; tensor_exts[e]; e++) {
        snprintf(cand, sizeof cand, "%s/%s%s", m->dir, name, tensor_exts[e]);
        if (file_exists(cand)) {
            as_strlcpy(path, cand, path_n);
            return 0;
        }
    }
    if (!strcmp(name, "attn") || !strcmp(name, "grad")) {
        for (int e = 0; tensor_exts[e]; e++) {
            snprintf(cand, sizeof cand, "%s/jacobian%s", m->dir, tensor_exts[e]);
            if (file_exists(cand)) {
                as_strlcpy(path, cand, path_n);
                as_strlcpy(key, name, key_n);
                return 0;
            }
        }
    }
    struct stat sb;
    if (stat(m->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return as_error_set(err, AS_ERR_INPUT, "model '%s': directory '%s' does not exist", m->name, m->dir);
    return as_error_set(err, AS_ERR_INPUT, "model '%s': no tensor '%s' in '%s' (looked for %s.pt, .safetensors, "
                        ".h5, .npy)", m->name, name, m->dir, name);
}
