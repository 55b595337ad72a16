/* reader_hf.c: a Hugging Face model folder (config.json + model.safetensors, or shards listed in
 * model.safetensors.index.json) seen as a "tensor" for planning: its info is the float32 shape
 * (n_layer, n_head, n_embd, vocab_size) from config.json, and there is nothing to read: a stage
 * that runs the model (stages/lesion) opens it through pipeline/model. as_hf_stat gives the size
 * and mtime the run checks for changes, over config.json and every .safetensors file. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "as_reader.h"
#include "as_util.h"

#define HF_CONFIG_MAX (1 << 20) /* bytes of config.json */

struct as_reader {
    struct as_tensor_info ti;
    char path[4096];
};

/* The first of `keys` that config.json has, as a positive int. */
static int cfg_int(json_t *root, const char *const *keys, int64_t *out, const char *path, struct as_error *err)
{
    for (int k = 0; keys[k]; k++) {
        json_t *v = json_object_get(root, keys[k]);
        if (!v)
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1 << 24))
            return as_error_set(err, AS_ERR_INPUT, "'%s': key '%s' is not a positive integer", path, keys[k]);
        *out = json_integer_value(v);
        return 0;
    }
    return as_error_set(err, AS_ERR_INPUT, "'%s': no key '%s'", path, keys[0]);
}

static int hf_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    (void)key;
    char cp[4200];
    snprintf(cp, sizeof cp, "%s/config.json", path);
    struct stat sb;
    if (stat(cp, &sb))
        return as_error_set(err, AS_ERR_INPUT, "'%s': not a model folder (no config.json): %s", path, strerror(errno));
    if (sb.st_size > HF_CONFIG_MAX)
        return as_error_set(err, AS_ERR_INPUT, "'%s' is larger than %d bytes", cp, HF_CONFIG_MAX);
    json_error_t je;
    json_t *root = json_load_file(cp, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return as_error_set(err, AS_ERR_INPUT, "'%s' is not a JSON object: %s (line %d)", cp, je.text, je.line);
    }
    static const char *const layers[] = { "n_layer", "num_hidden_layers", NULL };
    static const char *const heads[] = { "n_head", "num_attention_heads", NULL };
    static const char *const embd[] = { "n_embd", "hidden_size", NULL };
    static const char *const vocab[] = { "vocab_size", NULL };
    struct as_reader *r = as_xcalloc(1, sizeof *r);
    int64_t *s = r->ti.shape;
    int rc = cfg_int(root, layers, &s[0], cp, err) || cfg_int(root, heads, &s[1], cp, err) ||
             cfg_int(root, embd, &s[2], cp, err) || cfg_int(root, vocab, &s[3], cp, err);
    json_decref(root);
    if (rc) {
        free(r);
        return -1;
    }
    r->ti.dtype = AS_DTYPE_F32;
    r->ti.ndim = 4;
    r->ti.stride[3] = 1;
    for (int d = 2; d >= 0; d--)
        r->ti.stride[d] = r->ti.stride[d + 1] * s[d + 1];
    r->ti.data_offset = -1;
    as_strlcpy(r->path, path, sizeof r->path);
    *out = r;
    return 0;
}

static const struct as_tensor_info *hf_info(const struct as_reader *r)
{
    return &r->ti;
}

static int hf_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out, void *dst,
                   struct as_error *err)
{
    return as_error_set(err, AS_ERR_INPUT, "'%s' is a model folder: it is run, not read as a tensor", r->path);
}

static void hf_close(struct as_reader *r)
{
    free(r);
}

const struct as_reader_ops as_reader_hf = {
    .name = "hf",
    .open = hf_open,
    .info = hf_info,
    .read = hf_read,
    .close = hf_close,
};

int as_hf_is_folder(const char *path)
{
    char cp[4200];
    struct stat sb;
    snprintf(cp, sizeof cp, "%s/config.json", path);
    return !stat(path, &sb) && S_ISDIR(sb.st_mode) && !stat(cp, &sb);
}

int as_hf_stat(const char *dir, int64_t *size, int64_t *mtime_ns, struct as_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return as_error_set(err, AS_ERR_INPUT, "cannot open model folder '%s': %s", dir, strerror(errno));
    *size = 0;
    *mtime_ns = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) && !rc) {
        size_t n = strlen(e->d_name);
        int weights = n > 12 && !strcmp(e->d_name + n - 12, ".safetensors");
        if (!weights && strcmp(e->d_name, "config.json") && strcmp(e->d_name, "model.safetensors.index.json"))
            continue;
        char p[4400];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &sb)) {
            rc = as_error_set(err, AS_ERR_INPUT, "cannot stat '%s': %s", p, strerror(errno));
            break;
        }
        int64_t m = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        *size += (int64_t)sb.st_size;
        *mtime_ns = m > *mtime_ns ? m : *mtime_ns;
    }
    closedir(d);
    return rc;
}
