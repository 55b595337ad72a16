/* reader_pt.c: PyTorch torch.save files (zip format, torch 1.6 - 2.x), read without Python.
 *
 * Byte layout: an uncompressed zip archive (pt_zip.h) whose entries share one folder:
 *   <prefix>/data.pkl            pickle of the saved object (pt_pickle.h); tensors reference
 *                                storages through persistent ids ('storage', type, key, ...)
 *   <prefix>/data/<key>          raw bytes of one storage: numel * itemsize, little-endian
 *                                unless the byteorder record says "big"
 *   <prefix>/version             "3\n" (or <prefix>/.data/version)
 *   <prefix>/byteorder           "little" | "big" (torch >= 2.1; absent: little)
 *   <prefix>/.data/serialization_id, .format_version, .storage_alignment   (ignored)
 * Element i of a tensor lives at byte data_off(data/<key>) + (storage_offset + sum_d i_d *
 * stride_d) * itemsize of the file.
 *
 * Keys: a tensor is named by joining dict keys and list/tuple indices with '.' ("attn",
 * "model.layers.3.attn", "0"); the root tensor of torch.save(t) is "". Key NULL or "" opens
 * the root tensor, or the only tensor of the file.
 *
 * open() reads the zip directory, data.pkl and the small records (CRC-checked), never tensor
 * data. read() verifies a storage record's CRC-32 when one call reads the whole record (the
 * usual case for small tensors); partial reads cannot be verified. Big-endian files are
 * byte-swapped. float32/float64/float16/bfloat16 tensors can be opened; list() shows every
 * tensor, with ti->dtype == AS_DTYPE_COUNT and the torch dtype named in `extra` for the rest.
 * Refused with a clear message: the legacy pre-1.6 format, TorchScript archives, anything the
 * pickle allow-list does not know. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_util.h"
#include "pt_pickle.h"
#include "pt_zip.h"

#define PT_MAX_SMALL_RECORD 64                 /* bytes of version / byteorder records */
#define PT_CRC_TEMP_MAX ((int64_t)256 << 20)   /* larger converting reads skip the CRC check */
#define PT_MIN_VERSION 1
#define PT_MAX_VERSION 10

/* One parsed file: the zip directory, the unpickled tree and its named tensors. */
struct pt_file {
    int fd;
    const char *path;           /* borrowed from the caller */
    struct pt_zip zip;
    struct pt_pickle pk;
    struct pt_named *t;         /* (nt,) */
    size_t nt;
    int big_endian;
};

struct as_reader {
    int fd;
    char path[4096];
    char name[256];             /* tensor name, for messages (may be cut) */
    struct as_tensor_info ti;
    int big_endian, neg, contiguous;
    int64_t rec_off, rec_size;  /* the storage record */
    uint32_t crc;               /* its CRC-32; 0: not recorded */
    int crc_checked;
};

static void pt_file_close(struct pt_file *f)
{
    pt_named_free(f->t, f->nt);
    f->t = NULL;
    f->nt = 0;
    pt_pickle_release(&f->pk);
    pt_zip_release(&f->zip);
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* Not a zip: say what it is. */
static int not_zip(int fd, const char *path, const unsigned char *b, ssize_t got, struct as_error *err)
{
    static const unsigned char magic[10] = { 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19 };
    unsigned char tar[5];
    if (got >= 14 && b[0] == 0x80 && b[2] == 0x8a && b[3] == 0x0a && !memcmp(b + 4, magic, sizeof magic))
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': legacy (pre-1.6) torch.save format; re-save it with torch.save(torch.load(f), f) "
                            "in torch >= 1.6", path);
    if (pread(fd, tar, sizeof tar, 257) == (ssize_t)sizeof tar && !memcmp(tar, "ustar", 5))
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': legacy (tar, torch <= 0.3) torch.save format; re-save it with "
                            "torch.save(torch.load(f), f) in torch >= 1.6", path);
    if (got >= 8 && !memcmp(b, "PYTORCH1", 8))
        return as_error_set(err, AS_ERR_INPUT, "'%s': archive format of a pytorch preview release is not supported",
                            path);
    return as_error_set(err, AS_ERR_INPUT, "'%s': not a torch.save file (no zip signature)", path);
}

/* Read a small record ("version", "byteorder") into buf (NUL-terminated, *len bytes); 1 if
 * absent. */
static int small_record(const struct pt_file *f, const char *rec, char *buf, size_t *len, struct as_error *err)
{
    const struct pt_zip_entry *e = pt_zip_find(&f->zip, rec);
    if (!e)
        return 1;
    if (e->size > PT_MAX_SMALL_RECORD)
        return as_error_set(err, AS_ERR_INPUT, "'%s': record '%s' has %lld bytes (at most %d)", f->path, rec,
                            (long long)e->size, PT_MAX_SMALL_RECORD);
    if (pt_zip_read(f->fd, f->path, e, buf, err))
        return -1;
    buf[e->size] = '\0';
    *len = (size_t)e->size;
    return 0;
}

/* A printable copy of a record for messages. */
static const char *printable(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
    out[n] = '\0';
    return out;
}

static int check_records(struct pt_file *f, struct as_error *err)
{
    char buf[PT_MAX_SMALL_RECORD + 1], shown[PT_MAX_SMALL_RECORD + 1];
    size_t len = 0;
    const char *vrec = ".data/version";
    int rc = small_record(f, vrec, buf, &len, err);
    if (rc == 1) {
        vrec = "version";
        rc = small_record(f, vrec, buf, &len, err);
    }
    if (rc < 0)
        return -1;
    if (rc == 1)
        return as_error_set(err, AS_ERR_INPUT, "'%s': no 'version' record in the archive '%s/'", f->path,
                            f->zip.prefix);
    size_t digits = len;
    while (digits && (buf[digits - 1] == '\n' || buf[digits - 1] == '\r' || buf[digits - 1] == ' '))
        digits--;
    long v = 0;
    for (size_t i = 0; i < digits && v <= PT_MAX_VERSION; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            v = -1;
            break;
        }
        v = v * 10 + (buf[i] - '0');
    }
    if (!digits || v < PT_MIN_VERSION || v > PT_MAX_VERSION)
        return as_error_set(err, AS_ERR_INPUT, "'%s': record '%s' is '%s', not a format version %d..%d", f->path,
                            vrec, printable(buf, len, shown), PT_MIN_VERSION, PT_MAX_VERSION);
    rc = small_record(f, "byteorder", buf, &len, err);
    if (rc < 0)
        return -1;
    int little = rc == 0 && len == 6 && !memcmp(buf, "little", 6), big = rc == 0 && len == 3 && !memcmp(buf, "big", 3);
    if (rc == 0 && !little && !big)
        return as_error_set(err, AS_ERR_INPUT, "'%s': record 'byteorder' is '%s', not 'little' or 'big'", f->path,
                            printable(buf, len, shown));
    f->big_endian = big;
    return 0;
}

static int pt_file_open(struct pt_file *f, const char *path, struct as_error *err)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return as_error_set(err, AS_ERR_INPUT, "cannot open '%s': %s", path, strerror(errno));
    unsigned char b[16];
    ssize_t got = pread(f->fd, b, sizeof b, 0);
    if (got < 0) {
        as_error_set(err, AS_ERR_INPUT, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (got < 4 || memcmp(b, "PK\3\4", 4)) {
        not_zip(f->fd, path, b, got, err);
        goto fail;
    }
    if (pt_zip_open(&f->zip, f->fd, path, err) || check_records(f, err))
        goto fail;
    const struct pt_zip_entry *e = pt_zip_find(&f->zip, "data.pkl");
    if (!e) {
        as_error_set(err, AS_ERR_INPUT, "'%s': no 'data.pkl' record in the archive '%s/'", path, f->zip.prefix);
        goto fail;
    }
    if ((uint64_t)e->size > PT_MAX_PICKLE) {
        as_error_set(err, AS_ERR_INPUT, "'%s': data.pkl has %lld bytes (at most %zu MiB)", path, (long long)e->size,
                     PT_MAX_PICKLE >> 20);
        goto fail;
    }
    unsigned char *pkl = as_xmalloc((size_t)e->size); /* bounded: the record lies inside the file */
    int rc = pt_zip_read(f->fd, path, e, pkl, err) ||
             pt_pickle_load(&f->pk, pkl, (size_t)e->size, &f->zip, path, err) ||
             pt_pickle_tensors(&f->pk, &f->t, &f->nt, path, err);
    free(pkl);
    if (rc)
        goto fail;
    return 0;
fail:
    pt_file_close(f);
    return -1;
}

/* "a, b, c" (cut to fit n) for error messages. */
static void name_list(const struct pt_file *f, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < f->nt; i++) {
        int w = snprintf(buf + len, n - len, "%s'%s'", i ? ", " : "", f->t[i].name);
        if (w < 0 || (size_t)w >= n - len) {
            snprintf(buf + (n > 40 ? n - 40 : 0), n > 40 ? 40 : n, ", ... (%zu tensors)", f->nt);
            return;
        }
        len += (size_t)w;
    }
}

/* ti for tensor t; *rec_end = end offset of its storage record. */
static int fill_info(const struct pt_file *f, const struct pt_named *nt, struct as_tensor_info *ti,
                     struct as_error *err)
{
    const struct pt_tensor *t = nt->t;
    const struct pt_dtype_traits *dt = &pt_dtype_traits[t->dtype];
    int64_t isz = dt->size, numel = 1, off;
    memset(ti, 0, sizeof *ti);
    ti->dtype = dt->as_dtype >= 0 ? (enum as_dtype)dt->as_dtype : AS_DTYPE_COUNT;
    for (int d = 0; d < t->ndim; d++)
        numel *= t->shape[d]; /* cannot overflow: checked by the pickle VM */
    if (as_mul_i64(t->offset, isz, &off) || as_add_i64(t->st->rec->data_off, off, &ti->data_offset) ||
        as_mul_i64(numel, isz, &ti->nbytes))
        return as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s': byte offsets overflow", f->path, nt->name);
    if (t->ndim <= AS_MAX_DIMS) {
        ti->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) {
            ti->shape[d] = t->shape[d];
            ti->stride[d] = t->stride[d];
        }
    }
    return 0;
}

static int is_contiguous(const struct as_tensor_info *ti)
{
    int64_t want = 1;
    for (int d = ti->ndim - 1; d >= 0; d--) {
        if (ti->shape[d] != 1 && ti->stride[d] != want)
            return 0;
        want *= ti->shape[d];
    }
    return 1;
}

static int pt_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    struct pt_file f;
    char names[300];
    if (pt_file_open(&f, path, err))
        return -1;
    size_t pick = f.nt;
    if (!key || !*key) {
        if (f.nt == 1) {
            pick = 0;
        } else {
            name_list(&f, names, sizeof names);
            as_error_set(err, AS_ERR_INPUT, "'%s': %s; choose a key: %s", path,
                         f.nt ? "holds several tensors" : "holds no tensor", f.nt ? names : "-");
            goto fail;
        }
    } else {
        size_t hits = 0;
        for (size_t i = 0; i < f.nt; i++)
            if (!strcmp(f.t[i].name, key)) {
                if (!hits++)
                    pick = i;
            }
        if (!hits) {
            name_list(&f, names, sizeof names);
            as_error_set(err, AS_ERR_INPUT, "'%s': no tensor '%s'; available: %s", path, key, f.nt ? names : "none");
            goto fail;
        }
        if (hits > 1) {
            as_error_set(err, AS_ERR_INPUT, "'%s': tensor name '%s' is ambiguous (%zu tensors have it)", path, key, hits);
            goto fail;
        }
    }
    const struct pt_named *nt = &f.t[pick];
    struct as_tensor_info ti;
    if (fill_info(&f, nt, &ti, err))
        goto fail;
    if (ti.dtype == AS_DTYPE_COUNT) {
        as_error_set(err, AS_ERR_INPUT,
                     "'%s': tensor '%s': dtype %s is not supported for statistics (float32, float64, float16, bfloat16)",
                     path, nt->name, pt_dtype_traits[nt->t->dtype].name);
        goto fail;
    }
    if (nt->t->ndim > AS_MAX_DIMS) {
        as_error_set(err, AS_ERR_INPUT, "'%s': tensor '%s' has %d dims (at most %d)", path, nt->name, nt->t->ndim,
                     AS_MAX_DIMS);
        goto fail;
    }
    char what[512];
    snprintf(what, sizeof what, "'%s': tensor '%s'", path, nt->name);
    const struct pt_zip_entry *rec = nt->t->st->rec;
    if (as_flat_check(&ti, rec->data_off + rec->size - ti.data_offset, what, err))
        goto fail;
    struct as_reader *r = as_xcalloc(1, sizeof *r);
    r->fd = f.fd;
    f.fd = -1; /* the reader keeps the descriptor */
    as_strlcpy(r->path, path, sizeof r->path);
    as_strlcpy(r->name, nt->name, sizeof r->name);
    r->ti = ti;
    r->big_endian = f.big_endian;
    r->neg = nt->t->neg;
    r->contiguous = is_contiguous(&ti);
    r->rec_off = rec->data_off;
    r->rec_size = rec->size;
    r->crc = rec->crc;
    pt_file_close(&f);
    *out = r;
    return 0;
fail:
    pt_file_close(&f);
    return -1;
}

static const struct as_tensor_info *pt_info(const struct as_reader *r) { return &r->ti; }

static void swap_bytes(unsigned char *p, size_t n, size_t unit)
{
    for (size_t i = 0; i + unit <= n * unit; i += unit)
        for (size_t a = i, b = i + unit - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

static void negate(void *dst, enum as_dtype out, size_t n)
{
    if (out == AS_DTYPE_F64)
        for (size_t i = 0; i < n; i++)
            ((double *)dst)[i] = -((double *)dst)[i];
    else
        for (size_t i = 0; i < n; i++)
            ((float *)dst)[i] = -((float *)dst)[i];
}

static int pt_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out, void *dst,
                   struct as_error *err)
{
    const struct as_tensor_info *ti = &r->ti;
    int64_t n = as_shape_numel(ti->ndim, count);
    if (n <= 0)
        return n < 0 ? as_error_set(err, AS_ERR_INTERNAL, "'%s': bad slab", r->path) : 0;
    size_t isz = as_dtype_traits[ti->dtype].size, osz = as_dtype_traits[out].size;
    int whole = r->crc && !r->crc_checked && r->contiguous && ti->data_offset == r->rec_off &&
                ti->nbytes == r->rec_size && (isz == osz || ti->nbytes <= PT_CRC_TEMP_MAX);
    for (int d = 0; whole && d < ti->ndim; d++)
        whole = start[d] == 0 && count[d] == ti->shape[d];
    if (!r->big_endian && !whole) { /* the usual path: straight into dst */
        if (as_flat_read(r->fd, r->path, ti, start, count, out, dst, err))
            return -1;
        if (r->neg)
            negate(dst, out, (size_t)n);
        return 0;
    }
    /* raw bytes first: CRC check and/or byte swap, then convert */
    unsigned char *raw = isz == osz ? dst : as_xmalloc((size_t)n * isz);
    int rc = as_flat_read(r->fd, r->path, ti, start, count, ti->dtype, raw, err);
    if (!rc && whole) {
        uint32_t got = pt_crc32(0, raw, (size_t)n * isz);
        if (got != r->crc)
            rc = as_error_set(err, AS_ERR_INPUT,
                              "'%s': tensor '%s': crc-32 mismatch in its storage record (stored %08x, computed %08x)",
                              r->path, r->name, r->crc, got);
        else
            r->crc_checked = 1;
    }
    if (!rc && r->big_endian)
        swap_bytes(raw, (size_t)n, isz);
    if (!rc && raw != dst)
        as_dtype_convert(ti->dtype, raw, out, dst, (size_t)n);
    if (raw != dst)
        free(raw);
    if (!rc && r->neg)
        negate(dst, out, (size_t)n);
    return rc;
}

static void pt_close(struct as_reader *r)
{
    if (!r)
        return;
    close(r->fd);
    free(r);
}

static int pt_list(const char *path, void (*fn)(void *, const char *, const struct as_tensor_info *, const char *),
                   void *ctx, struct as_error *err)
{
    struct pt_file f;
    char globals[400], extra[512];
    if (pt_file_open(&f, path, err))
        return -1;
    pt_pickle_globals(&f.pk, globals, sizeof globals);
    for (size_t i = 0; i < f.nt; i++) {
        struct as_tensor_info ti;
        const struct pt_tensor *t = f.t[i].t;
        if (fill_info(&f, &f.t[i], &ti, err)) {
            pt_file_close(&f);
            return -1;
        }
        int len = 0;
        extra[0] = '\0';
        if (ti.dtype == AS_DTYPE_COUNT)
            len = snprintf(extra, sizeof extra, "dtype %s (not supported for statistics); ",
                           pt_dtype_traits[t->dtype].name);
        if (t->ndim > AS_MAX_DIMS)
            len += snprintf(extra + len, sizeof extra - len, "%d dims (more than %d: not readable); ", t->ndim,
                            AS_MAX_DIMS);
        snprintf(extra + len, sizeof extra - len, "%s%sglobals: %s", f.big_endian ? "big-endian; " : "",
                 t->neg ? "negated view; " : "", globals);
        fn(ctx, f.t[i].name, &ti, extra);
    }
    pt_file_close(&f);
    return 0;
}

const struct as_reader_ops as_reader_pt = {
    .name = "pt", .open = pt_open, .info = pt_info, .read = pt_read, .close = pt_close, .list = pt_list,
};
