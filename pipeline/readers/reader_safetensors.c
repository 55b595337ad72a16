/* reader_safetensors.c: Hugging Face .safetensors files.
 *
 * Byte layout:
 *   0   8  header length N, little-endian u64 (N <= 100000000 and N <= file size - 8)
 *   8   N  UTF-8 JSON object, possibly padded with spaces:
 *            {"name": {"dtype": "F32", "shape": [12, 16, 64, 64], "data_offsets": [begin, end]}, ...,
 *             "__metadata__": {"key": "value", ...}}
 *   8+N    data buffer; a tensor's bytes are [begin, end) relative to its start, C order,
 *          little-endian.
 * The whole header is validated on open (every entry, not only the one asked for): exact keys,
 * known dtype, non-negative shape without overflow, end - begin == numel * itemsize,
 * end <= data size, no two tensors overlap, no duplicate names. Readable dtypes are F32, F64,
 * F16 and BF16; the other safetensors dtypes are validated but refused on open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_util.h"

#define ST_MAX_HEADER 100000000LL /* the limit the reference implementation enforces */
#define ST_NAME_SHOWN 80          /* bytes of a tensor name quoted in a message */
#define ST_NAMES_SHOWN 320        /* bytes of the tensor-name list in a message */

struct st_dtype {
    const char *name;   /* as spelled in the header */
    int bits;           /* per element */
    int as;             /* enum as_dtype, or -1: valid safetensors, not readable for statistics */
};

static const struct st_dtype st_dtypes[] = {
    { "F32", 32, AS_DTYPE_F32 },  { "F64", 64, AS_DTYPE_F64 },   { "F16", 16, AS_DTYPE_F16 },
    { "BF16", 16, AS_DTYPE_BF16 }, { "BOOL", 8, -1 },            { "U8", 8, -1 },
    { "I8", 8, -1 },              { "F8_E5M2", 8, -1 },          { "F8_E4M3", 8, -1 },
    { "F8_E8M0", 8, -1 },         { "I16", 16, -1 },             { "U16", 16, -1 },
    { "I32", 32, -1 },            { "U32", 32, -1 },             { "I64", 64, -1 },
    { "U64", 64, -1 },            { "C64", 64, -1 },             { "F4", 4, -1 },
    { "F6_E2M3", 6, -1 },         { "F6_E3M2", 6, -1 },
};

struct st_entry {
    const char *name;              /* borrowed from st_header.root */
    const struct st_dtype *dt;
    int ndim;                      /* may exceed AS_MAX_DIMS; then only open() refuses it */
    int64_t shape[AS_MAX_DIMS];    /* first AS_MAX_DIMS dims */
    int64_t begin, end;            /* bytes, relative to the data buffer */
};

struct st_header {
    json_t *root;                  /* owned */
    struct st_entry *e;            /* owned, n entries in header order */
    size_t n;
    int64_t data_start;            /* 8 + N */
    int64_t data_size;             /* file size - data_start */
    struct as_strbuf meta;         /* "k=v k=v" from __metadata__, empty if none */
};

struct as_reader {
    int fd;
    char path[4096];
    struct as_tensor_info ti;
};

/* Copy s for a one-line message: control bytes become '?', at most n-1 bytes, never cutting a
 * UTF-8 sequence. */
static const char *st_clean(char *dst, size_t n, const char *s)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        dst[k++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    if (*s)
        while (k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0x80)
            k--;
    if (*s && k > 0 && ((unsigned char)dst[k - 1] & 0xc0) == 0xc0)
        k--;
    dst[k] = '\0';
    return dst;
}

static void st_header_release(struct st_header *h)
{
    json_decref(h->root);
    free(h->e);
    as_strbuf_release(&h->meta);
    memset(h, 0, sizeof *h);
}

static int pread_full(int fd, void *buf, size_t n, int64_t off)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
        off += got;
    }
    return 0;
}

/* "'a', 'b', ..." for messages */
static void st_names(const struct st_header *h, struct as_strbuf *sb)
{
    char nm[ST_NAME_SHOWN];
    for (size_t i = 0; i < h->n; i++) {
        if (sb->len > ST_NAMES_SHOWN) {
            as_strbuf_addf(sb, ", ... (%zu in all)", h->n);
            return;
        }
        as_strbuf_addf(sb, "%s'%s'", i ? ", " : "", st_clean(nm, sizeof nm, h->e[i].name));
    }
    if (!h->n)
        as_strbuf_addf(sb, "none");
}

static int st_parse_metadata(const char *path, json_t *meta, struct st_header *h, struct as_error *err)
{
    const char *k;
    json_t *v;
    if (!json_is_object(meta))
        return as_error_set(err, AS_ERR_INPUT, "'%s': safetensors __metadata__ is not an object", path);
    json_object_foreach(meta, k, v) {
        char a[ST_NAME_SHOWN], b[ST_NAME_SHOWN];
        if (!json_is_string(v))
            return as_error_set(err, AS_ERR_INPUT, "'%s': safetensors __metadata__ value '%s' is not a string",
                                path, st_clean(a, sizeof a, k));
        as_strbuf_addf(&h->meta, "%s%s=%s", h->meta.len ? " " : "", st_clean(a, sizeof a, k),
                       st_clean(b, sizeof b, json_string_value(v)));
    }
    return 0;
}

static int st_parse_entry(const char *path, const char *name, json_t *o, struct st_entry *e, struct as_error *err)
{
    char nm[ST_NAME_SHOWN];
    st_clean(nm, sizeof nm, name);
    e->name = name;
    if (!json_is_object(o))
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': entry is not an object", path, nm);
    json_t *dtype = json_object_get(o, "dtype"), *shape = json_object_get(o, "shape");
    json_t *offs = json_object_get(o, "data_offsets");
    if (!dtype || !shape || !offs || json_object_size(o) != 3)
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': tensor '%s': entry must have exactly 'dtype', 'shape' and 'data_offsets'",
                            path, nm);
    if (!json_is_string(dtype))
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'dtype' is not a string", path, nm);
    const char *ds = json_string_value(dtype);
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0] && !e->dt; i++)
        if (!strcmp(ds, st_dtypes[i].name))
            e->dt = &st_dtypes[i];
    if (!e->dt) {
        char d[32];
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': unknown dtype '%s'", path, nm,
                            st_clean(d, sizeof d, ds));
    }
    if (!json_is_array(shape))
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'shape' is not an array", path, nm);
    int64_t numel = 1;
    size_t nd = json_array_size(shape);
    if (nd > 64)
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'shape' has %zu dims", path, nm, nd);
    e->ndim = (int)nd;
    for (size_t d = 0; d < nd; d++) {
        json_t *v = json_array_get(shape, d);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'shape'[%zu] is not a non-negative integer",
                                path, nm, d);
        int64_t s = (int64_t)json_integer_value(v);
        if (d < AS_MAX_DIMS)
            e->shape[d] = s;
        if (as_mul_i64(numel, s, &numel))
            return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'shape' overflows 64 bits", path, nm);
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
        !json_is_integer(json_array_get(offs, 1)))
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'data_offsets' is not [begin, end]", path, nm);
    e->begin = (int64_t)json_integer_value(json_array_get(offs, 0));
    e->end = (int64_t)json_integer_value(json_array_get(offs, 1));
    if (e->begin < 0 || e->end < e->begin)
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'data_offsets' [%lld, %lld] is not a range",
                            path, nm, (long long)e->begin, (long long)e->end);
    int64_t bits;
    if (as_mul_i64(numel, e->dt->bits, &bits))
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'shape' overflows 64 bits", path, nm);
    if (bits % 8 || e->end - e->begin != bits / 8)
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': tensor '%s': 'data_offsets' span %lld bytes but %s shape needs %lld%s", path,
                            nm, (long long)(e->end - e->begin), e->dt->name, (long long)(bits / 8),
                            bits % 8 ? " and a fraction" : "");
    return 0;
}

static int st_cmp_range(const void *a, const void *b)
{
    const struct st_entry *x = *(const struct st_entry *const *)a, *y = *(const struct st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int st_check_overlap(const char *path, struct st_header *h, struct as_error *err)
{
    if (h->n < 2)
        return 0;
    const struct st_entry **s = as_xcalloc(h->n, sizeof *s);
    for (size_t i = 0; i < h->n; i++)
        s[i] = &h->e[i];
    qsort(s, h->n, sizeof *s, st_cmp_range);
    const struct st_entry *prev = NULL; /* the non-empty range reaching furthest so far */
    int rc = 0;
    for (size_t i = 0; i < h->n && !rc; i++) {
        if (s[i]->begin == s[i]->end)
            continue;
        if (prev && s[i]->begin < prev->end) {
            char a[ST_NAME_SHOWN], b[ST_NAME_SHOWN];
            rc = as_error_set(err, AS_ERR_INPUT,
                              "'%s': tensors '%s' [%lld, %lld) and '%s' [%lld, %lld) overlap in 'data_offsets'",
                              path, st_clean(a, sizeof a, prev->name), (long long)prev->begin,
                              (long long)prev->end, st_clean(b, sizeof b, s[i]->name), (long long)s[i]->begin,
                              (long long)s[i]->end);
        }
        if (!prev || s[i]->end > prev->end)
            prev = s[i];
    }
    free(s);
    return rc;
}

/* Read and validate the whole header of the file open on fd. */
static int st_header_load(int fd, const char *path, struct st_header *h, struct as_error *err)
{
    memset(h, 0, sizeof *h);
    struct stat sb;
    if (fstat(fd, &sb))
        return as_error_set(err, AS_ERR_INPUT, "cannot stat '%s': %s", path, strerror(errno));
    int64_t size = (int64_t)sb.st_size;
    unsigned char pre[8];
    if (size < 8 || pread_full(fd, pre, 8, 0))
        return as_error_set(err, AS_ERR_INPUT, "'%s': too short for a safetensors file (%lld bytes)", path,
                            (long long)size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | pre[i];
    if (n > (uint64_t)(size - 8))
        return as_error_set(err, AS_ERR_INPUT, "'%s': safetensors header length %llu exceeds the file (%lld bytes)",
                            path, (unsigned long long)n, (long long)size);
    if (n > (uint64_t)ST_MAX_HEADER)
        return as_error_set(err, AS_ERR_INPUT, "'%s': safetensors header length %llu exceeds the limit of %lld",
                            path, (unsigned long long)n, ST_MAX_HEADER);
    h->data_start = 8 + (int64_t)n;
    h->data_size = size - h->data_start;
    char *buf = as_xmalloc((size_t)n);
    if (pread_full(fd, buf, n, 8)) {
        free(buf);
        return as_error_set(err, AS_ERR_INPUT, "cannot read the safetensors header of '%s'", path);
    }
    json_error_t jerr;
    h->root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!h->root) {
        char t[128];
        return as_error_set(err, AS_ERR_INPUT, "'%s': safetensors header is not valid json: %s at byte %d", path,
                            st_clean(t, sizeof t, jerr.text), jerr.position);
    }
    if (!json_is_object(h->root))
        return as_error_set(err, AS_ERR_INPUT, "'%s': safetensors header is not a json object", path);
    size_t cap = json_object_size(h->root);
    h->e = as_xcalloc(cap, sizeof *h->e);
    const char *k;
    json_t *v;
    json_object_foreach(h->root, k, v) {
        if (!strcmp(k, "__metadata__")) {
            if (st_parse_metadata(path, v, h, err))
                return -1;
            continue;
        }
        struct st_entry *e = &h->e[h->n++];
        if (st_parse_entry(path, k, v, e, err))
            return -1;
        if (e->end > h->data_size) {
            char nm[ST_NAME_SHOWN];
            return as_error_set(err, AS_ERR_INPUT,
                                "'%s': tensor '%s': 'data_offsets' end %lld > data size %lld", path,
                                st_clean(nm, sizeof nm, k), (long long)e->end, (long long)h->data_size);
        }
    }
    return st_check_overlap(path, h, err);
}

static int st_fill_info(const char *path, const struct st_header *h, const struct st_entry *e,
                        struct as_tensor_info *ti, struct as_error *err)
{
    char nm[ST_NAME_SHOWN];
    st_clean(nm, sizeof nm, e->name);
    if (e->dt->as < 0)
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': tensor '%s': dtype %s is not supported for statistics (F32, F64, F16, BF16)",
                            path, nm, e->dt->name);
    if (e->ndim > AS_MAX_DIMS)
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': rank %d exceeds %d", path, nm, e->ndim,
                            AS_MAX_DIMS);
    memset(ti, 0, sizeof *ti);
    ti->dtype = (enum as_dtype)e->dt->as;
    ti->ndim = e->ndim;
    int64_t st = 1;
    for (int d = e->ndim - 1; d >= 0; d--) {
        ti->shape[d] = e->shape[d];
        ti->stride[d] = st;
        if (as_mul_i64(st, e->shape[d] ? e->shape[d] : 1, &st))
            return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': 'shape' overflows 64 bits", path, nm);
    }
    ti->data_offset = h->data_start + e->begin;
    ti->nbytes = e->end - e->begin;
    char what[4096 + 2 * ST_NAME_SHOWN];
    snprintf(what, sizeof what, "'%s': tensor '%s'", path, nm);
    return as_flat_check(ti, h->data_size - e->begin, what, err);
}

static int st_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    struct st_header h = { 0 };
    struct as_reader *r = as_xcalloc(1, sizeof *r);
    as_strlcpy(r->path, path, sizeof r->path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (st_header_load(r->fd, path, &h, err))
        goto fail;
    const struct st_entry *e = NULL;
    if (!key || !*key) {
        if (h.n == 1) {
            e = &h.e[0];
        } else if (h.n == 0) {
            as_error_set(err, AS_ERR_INPUT, "'%s': holds no tensors", path);
            goto fail;
        } else {
            struct as_strbuf sb = AS_STRBUF_INIT;
            st_names(&h, &sb);
            as_error_set(err, AS_ERR_INPUT, "'%s': holds %zu tensors and no key names one: %s", path, h.n,
                         as_strbuf_str(&sb));
            as_strbuf_release(&sb);
            goto fail;
        }
    } else {
        for (size_t i = 0; i < h.n && !e; i++)
            if (!strcmp(h.e[i].name, key))
                e = &h.e[i];
        if (!e) {
            struct as_strbuf sb = AS_STRBUF_INIT;
            char nm[ST_NAME_SHOWN];
            st_names(&h, &sb);
            as_error_set(err, AS_ERR_INPUT, "'%s': no tensor '%s' (tensors: %s)", path,
                         st_clean(nm, sizeof nm, key), as_strbuf_str(&sb));
            as_strbuf_release(&sb);
            goto fail;
        }
    }
    if (st_fill_info(path, &h, e, &r->ti, err))
        goto fail;
    st_header_release(&h);
    *out = r;
    return 0;
fail:
    st_header_release(&h);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
    return -1;
}

static const struct as_tensor_info *st_info(const struct as_reader *r) { return &r->ti; }

static int st_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out,
                   void *dst, struct as_error *err)
{
    return as_flat_read(r->fd, r->path, &r->ti, start, count, out, dst, err);
}

static void st_close(struct as_reader *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}

/* Calls fn for every tensor that open() would accept, in header order; tensors of other dtypes
 * or of rank above AS_MAX_DIMS have no as_tensor_info and are skipped. extra is the __metadata__
 * as "k=v k=v" (NULL if none), valid during fn. */
static int st_list(const char *path,
                   void (*fn)(void *, const char *, const struct as_tensor_info *, const char *), void *ctx,
                   struct as_error *err)
{
    struct st_header h = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", path, strerror(errno));
    int rc = st_header_load(fd, path, &h, err);
    for (size_t i = 0; i < h.n && !rc; i++) {
        struct as_tensor_info ti;
        if (h.e[i].dt->as < 0 || h.e[i].ndim > AS_MAX_DIMS)
            continue;
        if (!(rc = st_fill_info(path, &h, &h.e[i], &ti, err)))
            fn(ctx, h.e[i].name, &ti, h.meta.len ? h.meta.buf : NULL);
    }
    st_header_release(&h);
    close(fd);
    return rc;
}

const struct as_reader_ops as_reader_safetensors = {
    .name = "safetensors", .open = st_open, .info = st_info, .read = st_read, .close = st_close, .list = st_list,
};
