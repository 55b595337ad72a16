/* as_reader.c: reader registry, the tensor-file handle and the shared strided-file reader. */
#define _GNU_SOURCE
#include "as_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_util.h"

int64_t as_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (as_mul_i64(n, shape[d], &n))
            return -1;
    return n;
}

const char *as_shape_str(const struct as_tensor_info *ti, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "(");
    for (int d = 0; d < ti->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)ti->shape[d]);
    if (k < n)
        snprintf(buf + k, n - k, ")");
    return buf;
}

static uint64_t n_opens; /* files this process opened: tensors, digests, format sniffing */

int as_file_digest(const char *path, int full, char *hex, int64_t *size, int64_t *mtime_ns, struct as_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    n_opens += fd >= 0;
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        if (fd >= 0)
            close(fd);
        return as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", path, strerror(errno));
    }
    *size = (int64_t)sb.st_size;
    *mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
    enum { BLK = 65536, NSAMPLE = 16 };
    unsigned char *buf = as_xmalloc(BLK);
    uint64_t h = as_mix64((uint64_t)sb.st_size);
    int rc = 0;
    int64_t n_blocks = (*size + BLK - 1) / BLK;
    for (int64_t k = 0; k < n_blocks; k++) {
        int take = full || k == 0 || k == n_blocks - 1 || n_blocks <= NSAMPLE + 2;
        if (!take)
            for (int q = 1; q <= NSAMPLE; q++)
                take |= k == n_blocks * q / (NSAMPLE + 1);
        if (!take)
            continue;
        ssize_t got = pread(fd, buf, BLK, (off_t)k * BLK);
        if (got < 0) {
            rc = as_error_set(err, AS_ERR_INPUT, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
        h = as_mix64(h ^ (uint64_t)k);
        for (ssize_t i = 0; i + 8 <= got; i += 8) {
            uint64_t w;
            memcpy(&w, buf + i, 8);
            h = as_mix64(h ^ w);
        }
        for (ssize_t i = got - got % 8; i < got; i++)
            h = as_mix64(h ^ buf[i]);
    }
    free(buf);
    close(fd);
    snprintf(hex, 17, "%016llx", (unsigned long long)h);
    return rc;
}

/* Readers that exist in this build, tried in order by extension. Formats from the readers issue
 * (pt, safetensors, hdf5) register here. */
struct reader_ext {
    const char *ext;
    const struct as_reader_ops *ops;
};


static const struct as_reader_ops *ops_by_ext(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return NULL;
    const struct reader_ext table[] = {
        { ".npy", &as_reader_npy },
        { ".pt", &as_reader_pt }, { ".pth", &as_reader_pt }, { ".bin", &as_reader_pt },
        { ".safetensors", &as_reader_safetensors },
        { ".h5", &as_reader_hdf5 }, { ".hdf5", &as_reader_hdf5 },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(dot, table[i].ext) && table[i].ops)
            return table[i].ops;
    return NULL;
}

const struct as_reader_ops *as_reader_for_path(const char *path, struct as_error *err)
{
    const struct as_reader_ops *ops = ops_by_ext(path);
    if (ops)
        return ops;
    if (as_hf_is_folder(path))
        return &as_reader_hf;
    /* by magic */
    unsigned char m[8] = { 0 };
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    n_opens += fd >= 0;
    if (fd < 0) {
        as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    ssize_t got = pread(fd, m, sizeof m, 0);
    close(fd);
    if (got >= 6 && !memcmp(m, "\x93NUMPY", 6))
        return &as_reader_npy;
    if (got >= 4 && !memcmp(m, "PK\x03\x04", 4) )
        return &as_reader_pt;
    if (got >= 8 && !memcmp(m, "\x89HDF\r\n\x1a\n", 8) && 1)
        return &as_reader_hdf5;
    if (got >= 8) {
        uint64_t hl;
        memcpy(&hl, m, 8);
        unsigned char c = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (pread(fd, &c, 1, 8) == 1 && c == '{' && hl < (1u << 30)) {
                close(fd);
                return &as_reader_safetensors;
            }
            close(fd);
        }
    }
    as_error_set(err, AS_ERR_INPUT, "'%s': unknown tensor file format (expected .npy, .pt, .safetensors or .h5)",
                 path);
    return NULL;
}

const struct as_reader_ops *const as_readers_all[] = {
    &as_reader_npy, &as_reader_pt, &as_reader_safetensors, &as_reader_hdf5, &as_reader_synth, &as_reader_hf, NULL,
};

static const struct as_reader_ops *registered[8];
static int n_registered;

void as_reader_register(const struct as_reader_ops *ops)
{
    if (as_reader_index(ops) >= 0)
        return;
    AS_ASSERT(n_registered < (int)(sizeof registered / sizeof registered[0]));
    registered[n_registered++] = ops;
}

int as_reader_index(const struct as_reader_ops *ops)
{
    int i = 0;
    for (; as_readers_all[i]; i++)
        if (as_readers_all[i] == ops)
            return i;
    for (int k = 0; k < n_registered; k++)
        if (registered[k] == ops)
            return i + k;
    return -1;
}

const struct as_reader_ops *as_reader_at(int index)
{
    int i = 0;
    while (as_readers_all[i])
        i++;
    if (index < 0 || index >= i + n_registered)
        return NULL;
    return index < i ? as_readers_all[index] : registered[index - i];
}

uint64_t as_tensor_file_opens(void)
{
    return n_opens;
}

int as_tensor_file_open(struct as_tensor_file *tf, const struct as_reader_ops *ops, const char *path,
                        const char *key, struct as_error *err)
{
    memset(tf, 0, sizeof *tf);
    if (!ops && !(ops = as_reader_for_path(path, err)))
        return -1;
    tf->ops = ops;
    as_strlcpy(tf->path, path, sizeof tf->path);
    as_strlcpy(tf->key, key ? key : "", sizeof tf->key);
    if (ops->open(&tf->r, path, key, err)) {
        tf->r = NULL;
        return -1;
    }
    n_opens += ops != &as_reader_synth;
    return 0;
}

int as_tensor_file_read(struct as_tensor_file *tf, const int64_t *start, const int64_t *count,
                        enum as_dtype out, void *dst, struct as_error *err)
{
    const struct as_tensor_info *ti = tf->ops->info(tf->r);
    if (out != AS_DTYPE_F32 && out != AS_DTYPE_F64)
        return as_error_set(err, AS_ERR_INTERNAL, "'%s': read into %s: only float32 or float64", tf->path,
                            (unsigned)out < AS_DTYPE_COUNT ? as_dtype_traits[out].name : "an unknown dtype");
    if (as_slab_check(ti, start, count, tf->path, err))
        return -1;
    double t0 = as_now();
    int rc = tf->ops->read(tf->r, start, count, out, dst, err);
    tf->read_seconds += as_now() - t0;
    if (rc)
        return -1;
    tf->bytes_read += (uint64_t)as_shape_numel(ti->ndim, count) * as_dtype_traits[ti->dtype].size;
    return 0;
}

void as_tensor_file_close(struct as_tensor_file *tf)
{
    if (tf && tf->ops && tf->r)
        tf->ops->close(tf->r);
    if (tf)
        tf->r = NULL;
}

int as_slab_check(const struct as_tensor_info *ti, const int64_t *start, const int64_t *count,
                  const char *path, struct as_error *err)
{
    for (int d = 0; d < ti->ndim; d++)
        if (start[d] < 0 || count[d] < 0 || start[d] > ti->shape[d] || count[d] > ti->shape[d] - start[d])
            return as_error_set(err, AS_ERR_INTERNAL,
                                "'%s': slab [%lld, +%lld) outside dim %d of size %lld", path,
                                (long long)start[d], (long long)count[d], d, (long long)ti->shape[d]);
    return 0;
}

int as_flat_check(const struct as_tensor_info *ti, int64_t avail, const char *what, struct as_error *err)
{
    int64_t isz = (int64_t)as_dtype_traits[ti->dtype].size, last = 0;
    if (ti->ndim < 0 || ti->ndim > AS_MAX_DIMS)
        return as_error_set(err, AS_ERR_INPUT, "%s: rank %d outside 0..%d", what, ti->ndim, AS_MAX_DIMS);
    for (int d = 0; d < ti->ndim; d++) {
        if (ti->shape[d] < 0)
            return as_error_set(err, AS_ERR_INPUT, "%s: negative size %lld in dim %d", what,
                                (long long)ti->shape[d], d);
        if (ti->stride[d] < 0)
            return as_error_set(err, AS_ERR_INPUT, "%s: negative stride %lld in dim %d", what,
                                (long long)ti->stride[d], d);
    }
    if (as_shape_numel(ti->ndim, ti->shape) < 0)
        return as_error_set(err, AS_ERR_INPUT, "%s: shape overflows 64 bits", what);
    if (as_shape_numel(ti->ndim, ti->shape) == 0)
        return 0;
    for (int d = 0; d < ti->ndim; d++) {
        int64_t t;
        if (as_mul_i64(ti->shape[d] - 1, ti->stride[d], &t) || as_add_i64(last, t, &last))
            return as_error_set(err, AS_ERR_INPUT, "%s: strides overflow 64 bits", what);
    }
    int64_t end;
    if (as_add_i64(last, 1, &end) || as_mul_i64(end, isz, &end))
        return as_error_set(err, AS_ERR_INPUT, "%s: extent overflows 64 bits", what);
    if (end > avail)
        return as_error_set(err, AS_ERR_INPUT, "%s: data needs %lld bytes but only %lld are there", what,
                            (long long)end, (long long)avail);
    return 0;
}

int as_pread_all(int fd, void *buf, size_t n, int64_t off, const char *path, struct as_error *err)
{
    unsigned char *p = buf;
    while (n) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return as_error_set(err, AS_ERR_INPUT, "cannot read '%s' at offset %lld: %s", path,
                                (long long)off, strerror(errno));
        if (got == 0)
            return as_error_set(err, AS_ERR_INPUT, "'%s' is truncated: end of file at offset %lld", path,
                                (long long)off);
        p += got;
        n -= (size_t)got;
        off += got;
    }
    return 0;
}

#define FLAT_CHUNK (1 << 20) /* elements converted per pread when types differ */

int as_flat_read(int fd, const char *path, const struct as_tensor_info *ti, const int64_t *start,
                 const int64_t *count, enum as_dtype out, void *dst, struct as_error *err)
{
    int nd = ti->ndim;
    int64_t isz = (int64_t)as_dtype_traits[ti->dtype].size, osz = (int64_t)as_dtype_traits[out].size;
    int64_t total = as_shape_numel(nd, count);
    if (total <= 0)
        return 0;
    /* the innermost run of dims that is contiguous in the file and fully requested */
    int inner = nd;          /* dims inner..nd-1 form one contiguous run */
    int64_t run = 1;
    while (inner > 0) {
        int d = inner - 1;
        if (ti->stride[d] != run && ti->shape[d] != 1)
            break;
        run *= count[d];
        inner--;
        if (count[d] != ti->shape[d])
            break;
    }
    /* iterate over the outer dims [0, inner) */
    int64_t idx[AS_MAX_DIMS] = { 0 };
    int64_t done = 0;
    void *scratch = NULL;
    if (ti->dtype != out)
        scratch = as_xmalloc((size_t)((run < FLAT_CHUNK ? run : FLAT_CHUNK) * isz));
    int rc = 0;
    while (done < total) {
        int64_t elem = 0;
        for (int d = 0; d < nd; d++)
            elem += (start[d] + (d < inner ? idx[d] : 0)) * ti->stride[d];
        int64_t off = ti->data_offset + elem * isz;
        unsigned char *o = (unsigned char *)dst + done * osz;
        if (ti->dtype == out) {
            if ((rc = as_pread_all(fd, o, (size_t)(run * isz), off, path, err)))
                break;
        } else {
            for (int64_t k = 0; k < run && !rc; k += FLAT_CHUNK) {
                int64_t m = run - k < FLAT_CHUNK ? run - k : FLAT_CHUNK;
                if (!(rc = as_pread_all(fd, scratch, (size_t)(m * isz), off + k * isz, path, err)))
                    as_dtype_convert(ti->dtype, scratch, out, o + k * osz, (size_t)m);
            }
            if (rc)
                break;
        }
        done += run;
        for (int d = inner - 1; d >= 0; d--) {
            if (++idx[d] < count[d])
                break;
            idx[d] = 0;
        }
    }
    free(scratch);
    return rc;
}
