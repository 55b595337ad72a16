/* model_weights.c: the weights of a Hugging Face safetensors folder (one file or an indexed set
 * of shards) as float32, through the safetensors reader. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_model_impl.h"
#include "as_util.h"

#define WEIGHTS_SINGLE "model.safetensors"
#define WEIGHTS_INDEX "model.safetensors.index.json"

struct list_ctx {
    struct as_model_weights *w;
    int file;
};

static void list_cb(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    struct list_ctx *c = ctx;
    struct as_model_weights *w = c->w;
    if (w->n == w->alloc) {
        w->alloc = w->alloc ? 2 * w->alloc : 64;
        w->t = as_xrealloc(w->t, w->alloc, sizeof *w->t);
    }
    w->t[w->n].key = as_xstrdup(key);
    w->t[w->n].file = c->file;
    w->t[w->n].ti = *ti;
    w->n++;
}

static void add_file(struct as_model_weights *w, const char *name)
{
    struct as_strbuf sb = AS_STRBUF_INIT;
    as_strbuf_addf(&sb, "%s/%s", w->dir, name);
    w->files = as_xrealloc(w->files, (size_t)w->n_files + 1, sizeof *w->files);
    w->files[w->n_files++] = sb.buf;
}

/* the shard names of model.safetensors.index.json, each once, in first-seen order */
static int read_index(struct as_model_weights *w, const char *path, struct as_error *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return as_error_set(err, AS_ERR_INPUT, "'%s': not valid json: %s (line %d)", path, je.text, je.line);
    json_t *map = json_object_get(root, "weight_map");
    int rc = 0;
    if (!json_is_object(map) || !json_object_size(map)) {
        rc = as_error_set(err, AS_ERR_INPUT, "'%s': no 'weight_map' object of key -> file", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(map, key, v) {
        const char *f = json_string_value(v);
        if (!f || !*f || strchr(f, '/') || !strcmp(f, "..")) {
            rc = as_error_set(err, AS_ERR_INPUT, "'%s': weight_map['%s'] is not a file name of the folder", path,
                              key);
            goto out;
        }
        int seen = 0;
        for (int i = 0; i < w->n_files && !seen; i++)
            seen = !strcmp(strrchr(w->files[i], '/') + 1, f);
        if (!seen)
            add_file(w, f);
    }
out:
    json_decref(root);
    return rc;
}

int as_model_weights_open(struct as_model_weights *w, const char *dir, const char *prefix, struct as_error *err)
{
    memset(w, 0, sizeof *w);
    w->prefix = prefix ? prefix : "";
    if (as_strlcpy(w->dir, dir, sizeof w->dir))
        return as_error_set(err, AS_ERR_INPUT, "model folder path too long: '%.64s...'", dir);
    struct as_strbuf idx = AS_STRBUF_INIT;
    as_strbuf_addf(&idx, "%s/%s", dir, WEIGHTS_INDEX);
    struct stat sb;
    int rc = 0;
    if (!stat(idx.buf, &sb)) {
        rc = read_index(w, idx.buf, err);
    } else {
        add_file(w, WEIGHTS_SINGLE);
        if (stat(w->files[0], &sb))
            rc = as_error_set(err, AS_ERR_INPUT, "model folder '%s': no %s nor %s", dir, WEIGHTS_SINGLE,
                              WEIGHTS_INDEX);
    }
    as_strbuf_release(&idx);
    for (int i = 0; i < w->n_files && !rc; i++) {
        struct list_ctx c = { w, i };
        rc = as_reader_safetensors.list(w->files[i], list_cb, &c, err);
    }
    if (!rc) {
        w->map = as_xcalloc((size_t)w->n_files, sizeof *w->map);
        w->map_len = as_xcalloc((size_t)w->n_files, sizeof *w->map_len);
    } else {
        as_model_weights_release(w);
    }
    return rc;
}

static const struct as_model_tensor *find(const struct as_model_weights *w, const char *key)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].key, key))
            return &w->t[i];
    return NULL;
}

static const char *shape_of(int nd, const int64_t *s, char *buf, size_t n)
{
    struct as_tensor_info ti = { .ndim = nd };
    for (int d = 0; d < nd; d++)
        ti.shape[d] = s[d];
    return as_shape_str(&ti, buf, n);
}

/* the whole file mapped read-only (shared: ranks on a node share the page cache) */
static const void *file_map(struct as_model_weights *w, int f, struct as_error *err)
{
    if (w->map[f])
        return w->map[f];
    int fd = open(w->files[f], O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", w->files[f], strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        as_error_set(err, AS_ERR_INPUT, "cannot map '%s': %s", w->files[f], strerror(errno));
        return NULL;
    }
    w->map[f] = p;
    w->map_len[f] = (size_t)sb.st_size;
    return p;
}

int as_model_weights_get(struct as_model_weights *w, const char *name, int ndim, const int64_t *shape,
                         const float **out, struct as_error *err)
{
    struct as_strbuf key = AS_STRBUF_INIT;
    as_strbuf_addf(&key, "%s%s", w->prefix, name);
    const struct as_model_tensor *t = find(w, key.buf);
    if (!t)
        t = find(w, name);
    if (!t) {
        as_error_set(err, AS_ERR_INPUT, "model folder '%s': no weight '%s'%s%s%s in %s", w->dir, name,
                     *w->prefix ? " (nor '" : "", *w->prefix ? key.buf : "", *w->prefix ? "')" : "",
                     w->n_files > 1 ? "its shards" : WEIGHTS_SINGLE);
        as_strbuf_release(&key);
        return -1;
    }
    as_strbuf_release(&key);
    int same = t->ti.ndim == ndim;
    for (int d = 0; d < ndim && same; d++)
        same = t->ti.shape[d] == shape[d];
    if (!same) {
        char a[128], b[128];
        return as_error_set(err, AS_ERR_INPUT, "'%s': weight '%s' has shape %s, expected %s", w->files[t->file],
                            t->key, as_shape_str(&t->ti, a, sizeof a), shape_of(ndim, shape, b, sizeof b));
    }
    int64_t numel = as_shape_numel(ndim, shape);
    w->n_params += numel;
    if (t->ti.dtype == AS_DTYPE_F32 && t->ti.data_offset % (int64_t)sizeof(float) == 0) {
        const unsigned char *base = file_map(w, t->file, err);
        if (!base)
            return -1;
        if ((size_t)(t->ti.data_offset + t->ti.nbytes) > w->map_len[t->file])
            return as_error_set(err, AS_ERR_INPUT, "'%s': weight '%s' ends past the file (%zu bytes): truncated?",
                                w->files[t->file], t->key, w->map_len[t->file]);
        *out = (const float *)(const void *)(base + t->ti.data_offset);
        w->mapped_bytes += numel * (int64_t)sizeof(float);
        return 0;
    }
    struct as_tensor_file tf;
    if (as_tensor_file_open(&tf, &as_reader_safetensors, w->files[t->file], t->key, err))
        return -1;
    float *dst = as_xmalloc((size_t)(numel ? numel : 1) * sizeof(float));
    int64_t start[AS_MAX_DIMS] = { 0 };
    int rc = as_tensor_file_read(&tf, start, shape, AS_DTYPE_F32, dst, err);
    as_tensor_file_close(&tf);
    if (rc) {
        free(dst);
        return -1;
    }
    w->owned = as_xrealloc(w->owned, w->n_owned + 1, sizeof *w->owned);
    w->owned[w->n_owned++] = dst;
    w->copied_bytes += numel * (int64_t)sizeof(float);
    *out = dst;
    return 0;
}

void as_model_weights_release(struct as_model_weights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n_files; i++) {
        if (w->map && w->map[i])
            munmap(w->map[i], w->map_len[i]);
        free(w->files[i]);
    }
    for (size_t i = 0; i < w->n; i++)
        free(w->t[i].key);
    for (size_t i = 0; i < w->n_owned; i++)
        free(w->owned[i]);
    free(w->files);
    free(w->map);
    free(w->map_len);
    free(w->t);
    free(w->owned);
    memset(w, 0, sizeof *w);
}

int as_model_cfg_int(const json_t *root, const char *key, int lo, int *v, const char *cfg_path,
                     struct as_error *err)
{
    json_t *j = json_object_get(root, key);
    if (!j)
        return as_error_set(err, AS_ERR_INPUT, "'%s': missing key '%s'", cfg_path, key);
    if (!json_is_integer(j) || json_integer_value(j) < lo || json_integer_value(j) > (1 << 30))
        return as_error_set(err, AS_ERR_INPUT, "'%s': '%s' must be an integer in [%d, %d]", cfg_path, key, lo,
                            1 << 30);
    *v = (int)json_integer_value(j);
    return 0;
}

int as_model_cfg_num(const json_t *root, const char *key, double *v, const char *cfg_path, struct as_error *err)
{
    json_t *j = json_object_get(root, key);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_number(j))
        return as_error_set(err, AS_ERR_INPUT, "'%s': '%s' must be a number", cfg_path, key);
    *v = json_number_value(j);
    return 0;
}
