/* reader_npy.c: NumPy .npy files (format versions 1.0, 2.0, 3.0).
 *
 * Byte layout:
 *   0   6  magic "\x93NUMPY"
 *   6   1  major version (1, 2 or 3), 7 1 minor version
 *   8   2  header length HL (v1, little-endian u16)  | 8 4 HL (v2, v3: u32)
 *   10/12 HL  ASCII (v3: UTF-8) Python dict literal, padded with spaces, ending in '\n':
 *            {'descr': '<f4', 'fortran_order': False, 'shape': (70, 112, 256, 256), }
 *   then the raw elements, C order (or Fortran order when fortran_order is True).
 * Supported descr: '<f4' '<f8' '<f2' (and '|'/'=' equivalents on little-endian hosts). */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_util.h"

struct as_reader {
    int fd;
    char path[4096];
    struct as_tensor_info ti;
};

#define NPY_MAX_HEADER (1 << 20)

/* find 'key': in the dict text and return a pointer just after the colon */
static const char *dict_value(const char *h, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\"", key);
        p = strstr(h, pat);
    }
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    return p;
}

static int parse_header(struct as_reader *r, const char *h, struct as_error *err)
{
    const char *path = r->path;
    const char *d = dict_value(h, "descr");
    if (!d || (*d != '\'' && *d != '"'))
        return as_error_set(err, AS_ERR_INPUT, "'%s': npy header has no 'descr'", path);
    char descr[16] = { 0 };
    size_t k = 0;
    for (d++; *d && *d != '\'' && *d != '"' && k < sizeof descr - 1; d++)
        descr[k++] = *d;
    const char *t = descr;
    if (*t == '<' || *t == '|' || *t == '=')
        t++;
    else
        return as_error_set(err, AS_ERR_INPUT, "'%s': npy dtype '%s' is not little-endian float", path, descr);
    if (!strcmp(t, "f4"))
        r->ti.dtype = AS_DTYPE_F32;
    else if (!strcmp(t, "f8"))
        r->ti.dtype = AS_DTYPE_F64;
    else if (!strcmp(t, "f2"))
        r->ti.dtype = AS_DTYPE_F16;
    else
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': npy dtype '%s' is not supported (float32, float64, float16)", path, descr);
    const char *f = dict_value(h, "fortran_order");
    if (!f)
        return as_error_set(err, AS_ERR_INPUT, "'%s': npy header has no 'fortran_order'", path);
    int fortran = !strncmp(f, "True", 4);
    if (!fortran && strncmp(f, "False", 5))
        return as_error_set(err, AS_ERR_INPUT, "'%s': npy 'fortran_order' is neither True nor False", path);
    const char *s = dict_value(h, "shape");
    if (!s || *s != '(')
        return as_error_set(err, AS_ERR_INPUT, "'%s': npy header has no 'shape' tuple", path);
    s++;
    r->ti.ndim = 0;
    for (;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        if (!isdigit((unsigned char)*s))
            return as_error_set(err, AS_ERR_INPUT, "'%s': npy shape is malformed", path);
        if (r->ti.ndim == AS_MAX_DIMS)
            return as_error_set(err, AS_ERR_INPUT, "'%s': npy rank exceeds %d", path, AS_MAX_DIMS);
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 0)
            return as_error_set(err, AS_ERR_INPUT, "'%s': npy shape value out of range", path);
        r->ti.shape[r->ti.ndim++] = v;
        s = end;
    }
    /* strides */
    int64_t st = 1;
    for (int i = 0; i < r->ti.ndim; i++) {
        int dim = fortran ? i : r->ti.ndim - 1 - i;
        r->ti.stride[dim] = st;
        if (as_mul_i64(st, r->ti.shape[dim] ? r->ti.shape[dim] : 1, &st))
            return as_error_set(err, AS_ERR_INPUT, "'%s': npy shape overflows", path);
    }
    return 0;
}

static int npy_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    (void)key;
    struct as_reader *r = as_xcalloc(1, sizeof *r);
    char *h = NULL;
    as_strlcpy(r->path, path, sizeof r->path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(r->fd, &sb)) {
        as_error_set(err, AS_ERR_INPUT, "cannot stat '%s': %s", path, strerror(errno));
        goto fail;
    }
    unsigned char pre[12];
    if (sb.st_size < 10 || pread(r->fd, pre, sb.st_size < 12 ? 10 : 12, 0) < 10) {
        as_error_set(err, AS_ERR_INPUT, "'%s': too short for a .npy file (%lld bytes)", path,
                     (long long)sb.st_size);
        goto fail;
    }
    if (memcmp(pre, "\x93NUMPY", 6)) {
        as_error_set(err, AS_ERR_INPUT, "'%s': not a .npy file (bad magic)", path);
        goto fail;
    }
    uint32_t hl;
    int64_t hstart;
    if (pre[6] == 1) {
        hl = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
        hstart = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (sb.st_size < 12) {
            as_error_set(err, AS_ERR_INPUT, "'%s': truncated .npy header", path);
            goto fail;
        }
        hl = (uint32_t)pre[8] | (uint32_t)pre[9] << 8 | (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
        hstart = 12;
    } else {
        as_error_set(err, AS_ERR_INPUT, "'%s': unsupported .npy version %d.%d", path, pre[6], pre[7]);
        goto fail;
    }
    if (hl > NPY_MAX_HEADER || hstart + (int64_t)hl > sb.st_size) {
        as_error_set(err, AS_ERR_INPUT, "'%s': .npy header length %u exceeds the file (%lld bytes)", path, hl,
                     (long long)sb.st_size);
        goto fail;
    }
    h = as_xmalloc((size_t)hl + 1);
    if (pread(r->fd, h, hl, hstart) != (ssize_t)hl) {
        as_error_set(err, AS_ERR_INPUT, "'%s': cannot read .npy header", path);
        goto fail;
    }
    h[hl] = '\0';
    if (memchr(h, '\0', hl)) {
        as_error_set(err, AS_ERR_INPUT, "'%s': .npy header contains a NUL byte", path);
        goto fail;
    }
    if (parse_header(r, h, err))
        goto fail;
    r->ti.data_offset = hstart + hl;
    int64_t numel = as_shape_numel(r->ti.ndim, r->ti.shape);
    if (as_mul_i64(numel, (int64_t)as_dtype_traits[r->ti.dtype].size, &r->ti.nbytes)) {
        as_error_set(err, AS_ERR_INPUT, "'%s': .npy shape overflows", path);
        goto fail;
    }
    char what[4200];
    snprintf(what, sizeof what, "'%s'", path);
    if (as_flat_check(&r->ti, (int64_t)sb.st_size - r->ti.data_offset, what, err))
        goto fail;
    free(h);
    *out = r;
    return 0;
fail:
    free(h);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
    return -1;
}

static const struct as_tensor_info *npy_info(const struct as_reader *r) { return &r->ti; }

static int npy_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out,
                    void *dst, struct as_error *err)
{
    return as_flat_read(r->fd, r->path, &r->ti, start, count, out, dst, err);
}

static void npy_close(struct as_reader *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}

static int npy_list(const char *path, void (*fn)(void *, const char *, const struct as_tensor_info *, const char *),
                    void *ctx, struct as_error *err)
{
    struct as_reader *r;
    if (npy_open(&r, path, NULL, err))
        return -1;
    fn(ctx, "", &r->ti, NULL);
    npy_close(r);
    return 0;
}

const struct as_reader_ops as_reader_npy = {
    .name = "npy", .open = npy_open, .info = npy_info, .read = npy_read, .close = npy_close, .list = npy_list,
};
