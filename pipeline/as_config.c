/* as_config.c: YAML -> struct as_config, every error with file:line:col. */
#include "as_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_util.h"

static void path_join(char *out, size_t n, const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir[0])
        as_strlcpy(out, rel, n);
    else
        snprintf(out, n, "%s/%s", dir, rel);
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
                                        "dataset", NULL };
    char what[64];
    snprintf(what, sizeof what, "models[%d]", idx);
    m->node = n;
    if (n->kind != AS_YNODE_MAP)
        return as_ynode_error(n, err, "%s: expected a mapping with name and dir or synthetic", what);
    if (as_ynode_check_keys(n, what, keys, err))
        return -1;
    const char *name, *dir, *root, *model_id, *dataset;
    char auto_name[AS_NAME_MAX];
    int64_t seq_len;
    if (as_ynode_get_str(n, what, "name", NULL, &name, err) || as_ynode_get_str(n, what, "dir", NULL, &dir, err) ||
        as_ynode_get_str(n, what, "root", NULL, &root, err) ||
        as_ynode_get_str(n, what, "model_id", NULL, &model_id, err) ||
        as_ynode_get_str(n, what, "dataset", "", &dataset, err) ||
        as_ynode_get_int(n, what, "seq_len", 0, 1, 1 << 20, &seq_len, err))
        return -1;
    const struct as_ynode *syn = as_ynode_get(n, "synthetic");
    int sources = (dir != NULL) + (syn != NULL) + (root != NULL || model_id != NULL);
    if (sources != 1)
        return as_ynode_error(n, err, "%s: give exactly one of 'dir', 'synthetic' or 'root' + 'model_id' + "
                                      "'seq_len'", what);
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
    if (dir) {
        if (!dir[0])
            return as_ynode_error(as_ynode_get(n, "dir"), err, "model '%s': empty 'dir'", name);
        path_join(m->dir, sizeof m->dir, cfg->dir, dir);
    }
    if (syn && parse_synthetic(m, syn, err))
        return -1;
    const struct as_ynode *t = as_ynode_get(n, "tensors");
    if (t && parse_tensors(cfg, m, t, err))
        return -1;
    return 0;
}

static int parse_figures(struct as_config *cfg, const struct as_ynode *n, struct as_error *err)
{
    static const char *const keys[] = { "dir", "formats", NULL };
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

static int parse_root(struct as_config *cfg, struct as_error *err)
{
    static const char *const keys[] = { "output", "models", "stages", "figures", NULL };
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

    const struct as_ynode *models = as_ynode_get(root, "models");
    if (!models)
        return as_ynode_error(root, err, "missing key 'models' (a list of models)");
    if (models->kind != AS_YNODE_SEQ || models->n == 0)
        return as_ynode_error(models, err, "models: expected a non-empty list");
    cfg->models = calloc(models->n, sizeof *cfg->models);
    if (!cfg->models)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %zu models", models->n);
    for (size_t i = 0; i < models->n; i++) {
        if (parse_model(cfg, &cfg->models[i], models->items[i], (int)i, err))
            return -1;
        cfg->n_models++;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cfg->models[j].name, cfg->models[i].name))
                return as_ynode_error(models->items[i], err, "models[%zu]: duplicate model name '%s' (also "
                                      "models[%zu] at line %d)", i, cfg->models[i].name, j,
                                      cfg->models[j].node->line);
    }

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
    derive_log(cfg);
    return 0;
}

int as_config_parse(struct as_config *cfg, const char *name, const char *dir, const char *text,
                    struct as_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    as_strlcpy(cfg->path, name, sizeof cfg->path);
    as_strlcpy(cfg->dir, dir, sizeof cfg->dir);
    if (as_ydoc_parse_string(&cfg->doc, name, text, strlen(text), err))
        return -1;
    if (parse_root(cfg, err)) {
        as_config_release(cfg);
        return -1;
    }
    return 0;
}

int as_config_load(struct as_config *cfg, const char *path, struct as_error *err)
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
    if (parse_root(cfg, err)) {
        as_config_release(cfg);
        return -1;
    }
    return 0;
}

void as_config_release(struct as_config *cfg)
{
    for (int i = 0; i < cfg->n_stages; i++)
        if (cfg->stages[i].ops->release)
            cfg->stages[i].ops->release(cfg->stages[i].cfg);
    free(cfg->models);
    as_ydoc_release(&cfg->doc);
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
    if (m->synthetic) {
        as_synth_spec_format(&m->synth, path, path_n);
        as_strlcpy(key, name, key_n);
        *ops = &as_reader_synth;
        return 0;
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
