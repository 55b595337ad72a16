/* reader_hdf5.c: one dataset of an HDF5 file (HDF5 1.10 and later).
 *
 * Byte layout: the HDF5 file format (superblock with signature "\x89HDF\r\n\x1a\n" at offset 0,
 * 512, 1024, ...; object headers; B-trees for chunks). Only the library parses it.
 *   key       dataset path from the root, "/qk_mean" or "model/layer3/attn"; NULL or "": the only
 *             dataset of the file
 *   dtypes    H5T_FLOAT of 4 bytes (float32), 8 bytes (float64), or 2 bytes with the IEEE binary16
 *             layout (float16); either byte order. Integer and other classes are refused.
 *   layouts   contiguous, compact, chunked (with filters this HDF5 build has); external and
 *             virtual storage are refused, since they make the library read other files.
 * Files are opened read-only with the serial sec2 driver, independently on every rank, even
 * though the library is the parallel build. HDF5's automatic error printing is switched off
 * around every call here; failures become one-line messages naming the file and the dataset
 * plus the innermost reason from the HDF5 error stack.
 * Hostile shapes: a dataset's shape is only a claim of its header (unwritten chunks read as the
 * fill value), so a dataset must hold its data: unfiltered, every byte of it stored in the file;
 * filtered, at least 1/H5R_MAX_EXPANSION of it (deflate's limit), else open() refuses it before
 * any caller sizes a buffer by it (list() still shows it). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_reader.h"
#include "as_util.h"

#define H5R_NAME_SHOWN 120  /* bytes of a dataset path quoted in a message */
#define H5R_NAMES_SHOWN 320 /* bytes of the dataset list in a message */
#define H5R_MAX_EXPANSION 1032 /* data bytes per stored byte of a filtered dataset (deflate's limit) */

struct as_reader {
    hid_t file, dset;
    char path[4096];
    char key[1024];
    struct as_tensor_info ti;
};

/* Switches HDF5's automatic error printing off, and back to what it was. */
struct h5_quiet {
    H5E_auto2_t fn;
    void *data;
};

static void h5_quiet_begin(struct h5_quiet *q)
{
    q->fn = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5_quiet_end(const struct h5_quiet *q)
{
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

/* Copy s for a one-line message: control bytes become '?', at most n-1 bytes. */
static const char *h5_clean(char *dst, size_t n, const char *s)
{
    size_t k = 0;
    for (; *s && k + 1 < n; s++)
        dst[k++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    if (*s)
        while (k > 0 && ((unsigned char)dst[k - 1] & 0x80))
            k--;
    dst[k] = '\0';
    return dst;
}

static herr_t h5_why_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    char *buf = data;
    if (n == 0 && e->desc && *e->desc)
        h5_clean(buf, 160, e->desc);
    else if (n == 0 && H5Eget_msg(e->min_num, NULL, buf, 160) < 0)
        buf[0] = '\0';
    return 0;
}

/* The innermost reason on the HDF5 error stack ("file signature not found"), then clears it. */
static const char *h5_why(char buf[160])
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_why_cb, buf);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0])
        snprintf(buf, 160, "hdf5 error");
    return buf;
}

/* ---- dataset names */

struct h5_names {
    char **v;   /* owned, "/a/b" */
    size_t n, alloc;
};

static void h5_names_release(struct h5_names *nm)
{
    for (size_t i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
    memset(nm, 0, sizeof *nm);
}

#if H5_VERSION_GE(1, 12, 0)
typedef H5O_info2_t h5_oinfo_t;
#define h5_ovisit(f, cb, data) H5Ovisit3((f), H5_INDEX_NAME, H5_ITER_INC, (cb), (data), H5O_INFO_BASIC)
#define h5_oinfo_by_name(f, n, oi) H5Oget_info_by_name3((f), (n), (oi), H5O_INFO_BASIC, H5P_DEFAULT)
#else
typedef H5O_info_t h5_oinfo_t;
#define h5_ovisit(f, cb, data) H5Ovisit2((f), H5_INDEX_NAME, H5_ITER_INC, (cb), (data), H5O_INFO_BASIC)
#define h5_oinfo_by_name(f, n, oi) H5Oget_info_by_name2((f), (n), (oi), H5O_INFO_BASIC, H5P_DEFAULT)
#endif

static herr_t h5_visit_cb(hid_t obj, const char *name, const h5_oinfo_t *info, void *data)
{
    struct h5_names *nm = data;
    (void)obj;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    if (nm->n == nm->alloc) {
        nm->alloc = nm->alloc ? 2 * nm->alloc : 16;
        nm->v = as_xrealloc(nm->v, nm->alloc, sizeof *nm->v);
    }
    size_t len = strlen(name);
    char *s = as_xmalloc(len + 2);
    s[0] = '/';
    memcpy(s + 1, name, len + 1);
    nm->v[nm->n++] = s;
    return 0;
}

/* Every dataset reachable by hard links from the root, in name order, each once. */
static int h5_collect(hid_t file, const char *path, struct h5_names *nm, struct as_error *err)
{
    char why[160];
    if (h5_ovisit(file, h5_visit_cb, nm) < 0)
        return as_error_set(err, AS_ERR_INPUT, "'%s': cannot list the datasets: %s", path, h5_why(why));
    return 0;
}

static void h5_names_fmt(const struct h5_names *nm, struct as_strbuf *sb)
{
    char c[H5R_NAME_SHOWN];
    for (size_t i = 0; i < nm->n; i++) {
        if (sb->len > H5R_NAMES_SHOWN) {
            as_strbuf_addf(sb, ", ... (%zu in all)", nm->n);
            return;
        }
        as_strbuf_addf(sb, "%s'%s'", i ? ", " : "", h5_clean(c, sizeof c, nm->v[i]));
    }
    if (!nm->n)
        as_strbuf_addf(sb, "none");
}

/* ---- datasets */

static int h5_file_open(const char *path, hid_t *file, struct as_error *err)
{
    char why[160];
    int rc = -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_sec2(fapl) < 0) {
        as_error_set(err, AS_ERR_HDF5, "cannot open '%s': cannot set up the sec2 driver: %s", path, h5_why(why));
        goto out;
    }
#if H5_VERSION_GE(1, 10, 7)
    /* inputs on file systems without flock (some Lustre mounts) must still open */
    H5Pset_file_locking(fapl, 1, 1);
#endif
    *file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (*file < 0) {
        as_error_set(err, AS_ERR_INPUT, "cannot open '%s' as hdf5: %s", path, h5_why(why));
        goto out;
    }
    rc = 0;
out:
    if (fapl >= 0)
        H5Pclose(fapl);
    return rc;
}

/* The as_dtype of an HDF5 file type; *le set when its bytes are exactly as_dtype's little-endian
 * IEEE layout (so a flat reader could use data_offset). -1 with err set when unsupported. */
static int h5_dtype(hid_t type, enum as_dtype *dt, int *le, const char *path, const char *name,
                    struct as_error *err)
{
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    *le = 0;
    if (cls == H5T_FLOAT && size == 4) {
        *dt = AS_DTYPE_F32;
        *le = H5Tequal(type, H5T_IEEE_F32LE) > 0;
        return 0;
    }
    if (cls == H5T_FLOAT && size == 8) {
        *dt = AS_DTYPE_F64;
        *le = H5Tequal(type, H5T_IEEE_F64LE) > 0;
        return 0;
    }
    if (cls == H5T_FLOAT && size == 2) {
        size_t spos, epos, esize, mpos, msize;
        if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 && spos == 15 && epos == 10 &&
            esize == 5 && mpos == 0 && msize == 10 && H5Tget_ebias(type) == 15 &&
            H5Tget_norm(type) == H5T_NORM_IMPLIED && H5Tget_offset(type) == 0) {
            *dt = AS_DTYPE_F16;
            *le = H5Tget_order(type) == H5T_ORDER_LE;
            return 0;
        }
    }
    if (cls == H5T_FLOAT)
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': dataset '%s' has a %zu-byte float type that is not float32, float64 or "
                            "ieee float16",
                            path, name, size);
    if (cls == H5T_INTEGER)
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': dataset '%s' has integer type %sint%zu; only float32, float64 and float16 "
                            "are supported",
                            path, name, H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", 8 * size);
    static const char *const cls_names[] = { "integer", "float", "time", "string", "bitfield", "opaque",
                                             "compound", "reference", "enum", "variable-length", "array" };
    const char *cn = cls >= 0 && (size_t)cls < sizeof cls_names / sizeof cls_names[0] ? cls_names[cls] : "unknown";
    return as_error_set(err, AS_ERR_INPUT,
                        "'%s': dataset '%s' has %s type; only float32, float64 and float16 are supported", path,
                        name, cn);
}

/* The data of a dataset of nbytes must be stored in its file (see the top of this file). */
static int h5_check_stored(hid_t dset, const char *path, const char *name, int64_t nbytes, struct as_error *err)
{
    if (nbytes == 0)
        return 0;
    hid_t dcpl = H5Dget_create_plist(dset);
    int filtered = dcpl >= 0 && H5Pget_nfilters(dcpl) > 0;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    hsize_t stored = H5Dget_storage_size(dset), fsize = 0;
    hid_t f = H5Iget_file_id(dset);
    if (f >= 0 && H5Fget_filesize(f, &fsize) >= 0 && stored > fsize)
        stored = fsize; /* chunk sizes are claims of the file too */
    if (f >= 0)
        H5Fclose(f);
    uint64_t most = (uint64_t)stored * (filtered ? H5R_MAX_EXPANSION : 1);
    if ((uint64_t)nbytes <= most)
        return 0;
    if (!filtered)
        return as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s' needs %lld bytes but only %llu are stored in the "
                            "file (unwritten or truncated)", path, name, (long long)nbytes,
                            (unsigned long long)stored);
    return as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s' needs %lld bytes, more than %d times the %llu "
                        "compressed bytes stored in the file (unwritten or truncated)", path, name,
                        (long long)nbytes, H5R_MAX_EXPANSION, (unsigned long long)stored);
}

/* Fill ti (and, if extra is not NULL, a layout note for `inspect`) for an open dataset.
 * Returns -2 with err set for a type that is not a float type, -1 for other failures. */
static int h5_dset_info(hid_t dset, const char *path, const char *name, struct as_tensor_info *ti,
                        struct as_strbuf *extra, struct as_error *err)
{
    char why[160];
    hid_t type = H5I_INVALID_HID, space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
    int rc = -1, le = 0;
    memset(ti, 0, sizeof *ti);
    ti->data_offset = -1;
    if ((type = H5Dget_type(dset)) < 0 || (space = H5Dget_space(dset)) < 0 ||
        (dcpl = H5Dget_create_plist(dset)) < 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s': cannot read its header: %s", path, name, h5_why(why));
        goto out;
    }
    if (h5_dtype(type, &ti->dtype, &le, path, name, err)) {
        rc = -2;
        goto out;
    }
    H5S_class_t sc = H5Sget_simple_extent_type(space);
    if (sc == H5S_NULL || sc == H5S_NO_CLASS) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s' has no data (null dataspace)", path, name);
        goto out;
    }
    int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 0 || nd > AS_MAX_DIMS) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s': rank %d outside 0..%d", path, name, nd, AS_MAX_DIMS);
        goto out;
    }
    hsize_t dims[AS_MAX_DIMS];
    if (nd > 0 && H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s': cannot read its shape: %s", path, name, h5_why(why));
        goto out;
    }
    ti->ndim = nd;
    for (int d = 0; d < nd; d++) {
        if (dims[d] > (hsize_t)INT64_MAX) {
            as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s': dim %d is too large", path, name, d);
            goto out;
        }
        ti->shape[d] = (int64_t)dims[d];
    }
    int64_t st = 1, numel = as_shape_numel(nd, ti->shape);
    for (int d = nd - 1; d >= 0; d--) {
        ti->stride[d] = st;
        if (as_mul_i64(st, ti->shape[d] ? ti->shape[d] : 1, &st))
            numel = -1;
    }
    if (numel < 0 || as_mul_i64(numel, (int64_t)as_dtype_traits[ti->dtype].size, &ti->nbytes)) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s': shape overflows 64 bits", path, name);
        goto out;
    }
    H5D_layout_t layout = H5Pget_layout(dcpl);
    if (layout == H5D_VIRTUAL || H5Pget_external_count(dcpl) != 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s' uses %s storage in other files, not supported", path,
                     name, layout == H5D_VIRTUAL ? "virtual" : "external");
        goto out;
    }
    if (layout != H5D_CONTIGUOUS && layout != H5D_CHUNKED && layout != H5D_COMPACT) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s' has an unknown storage layout", path, name);
        goto out;
    }
    if (extra)
        as_strbuf_addf(extra, "%s", layout == H5D_CHUNKED ? "chunked" : layout == H5D_COMPACT ? "compact"
                                                                                              : "contiguous");
    int nf = H5Pget_nfilters(dcpl);
    for (int i = 0; i < nf; i++) {
        unsigned flags, conf;
        size_t ncd = 0;
        char fname[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, NULL, sizeof fname, fname, &conf);
        if (id < 0 || H5Zfilter_avail(id) <= 0) {
            char c[64];
            as_error_set(err, AS_ERR_INPUT, "'%s': dataset '%s' needs hdf5 filter %d ('%s'), not in this build",
                         path, name, (int)id, h5_clean(c, sizeof c, fname));
            goto out;
        }
        if (extra) {
            char c[64];
            as_strbuf_addf(extra, " %s", id == H5Z_FILTER_DEFLATE ? "gzip" : h5_clean(c, sizeof c, fname));
        }
    }
    if (layout == H5D_CONTIGUOUS && le) {
        haddr_t off = H5Dget_offset(dset);
        if (off != HADDR_UNDEF && off <= (haddr_t)INT64_MAX)
            ti->data_offset = (int64_t)off;
    }
    H5Eclear2(H5E_DEFAULT);
    rc = 0;
out:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    return rc;
}

/* Open `key` in an open file; on failure say whether it is missing or not a dataset. */
static hid_t h5_dset_open(hid_t file, const char *path, const char *key, struct as_error *err)
{
    char why[160], c[H5R_NAME_SHOWN];
    hid_t d = H5Dopen2(file, key, H5P_DEFAULT);
    if (d >= 0)
        return d;
    h5_why(why);
    h5_clean(c, sizeof c, key);
    h5_oinfo_t oi;
    if (h5_oinfo_by_name(file, key, &oi) >= 0 && oi.type != H5O_TYPE_DATASET) {
        as_error_set(err, AS_ERR_INPUT, "'%s': '%s' is a %s, not a dataset", path, c,
                     oi.type == H5O_TYPE_GROUP ? "group" : "named datatype");
        return H5I_INVALID_HID;
    }
    H5Eclear2(H5E_DEFAULT);
    struct h5_names nm = { 0 };
    struct as_strbuf sb = AS_STRBUF_INIT;
    if (h5_collect(file, path, &nm, NULL))
        as_strbuf_addf(&sb, "unknown");
    else
        h5_names_fmt(&nm, &sb);
    as_error_set(err, AS_ERR_INPUT, "'%s': cannot open dataset '%s': %s (datasets: %s)", path, c, why,
                 as_strbuf_str(&sb));
    as_strbuf_release(&sb);
    h5_names_release(&nm);
    return H5I_INVALID_HID;
}

static int h5_open(struct as_reader **out, const char *path, const char *key, struct as_error *err)
{
    struct h5_quiet q;
    struct h5_names nm = { 0 };
    struct as_reader *r = as_xcalloc(1, sizeof *r);
    h5_quiet_begin(&q);
    r->file = r->dset = H5I_INVALID_HID;
    as_strlcpy(r->path, path, sizeof r->path);
    if (h5_file_open(path, &r->file, err))
        goto fail;
    if (!key || !*key) {
        if (h5_collect(r->file, path, &nm, err))
            goto fail;
        if (nm.n == 0) {
            as_error_set(err, AS_ERR_INPUT, "'%s': holds no datasets", path);
            goto fail;
        }
        if (nm.n != 1) {
            struct as_strbuf sb = AS_STRBUF_INIT;
            h5_names_fmt(&nm, &sb);
            as_error_set(err, AS_ERR_INPUT, "'%s': holds %zu datasets and no key names one: %s", path, nm.n,
                         as_strbuf_str(&sb));
            as_strbuf_release(&sb);
            goto fail;
        }
        key = nm.v[0];
    }
    if (as_strlcpy(r->key, key, sizeof r->key)) {
        as_error_set(err, AS_ERR_INPUT, "'%s': dataset path longer than %zu bytes", path, sizeof r->key - 1);
        goto fail;
    }
    if ((r->dset = h5_dset_open(r->file, path, key, err)) < 0)
        goto fail;
    char c[H5R_NAME_SHOWN];
    if (h5_dset_info(r->dset, path, h5_clean(c, sizeof c, key), &r->ti, NULL, err) ||
        h5_check_stored(r->dset, path, c, r->ti.nbytes, err))
        goto fail;
    h5_names_release(&nm);
    h5_quiet_end(&q);
    *out = r;
    return 0;
fail:
    if (r->dset >= 0)
        H5Dclose(r->dset);
    if (r->file >= 0)
        H5Fclose(r->file);
    free(r);
    h5_names_release(&nm);
    h5_quiet_end(&q);
    return -1;
}

static const struct as_tensor_info *h5_info(const struct as_reader *r) { return &r->ti; }

static int h5_read(struct as_reader *r, const int64_t *start, const int64_t *count, enum as_dtype out,
                   void *dst, struct as_error *err)
{
    if (as_shape_numel(r->ti.ndim, count) == 0)
        return 0;
    struct h5_quiet q;
    char why[160], c[H5R_NAME_SHOWN];
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hid_t mt = out == AS_DTYPE_F32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    int rc = -1;
    h5_quiet_begin(&q);
    if (r->ti.ndim == 0) {
        if (H5Dread(r->dset, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
            goto fail;
        rc = 0;
        goto out;
    }
    hsize_t hs[AS_MAX_DIMS], hc[AS_MAX_DIMS];
    for (int d = 0; d < r->ti.ndim; d++) {
        hs[d] = (hsize_t)start[d];
        hc[d] = (hsize_t)count[d];
    }
    if ((fs = H5Dget_space(r->dset)) < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, hs, NULL, hc, NULL) < 0 ||
        (ms = H5Screate_simple(r->ti.ndim, hc, NULL)) < 0 || H5Dread(r->dset, mt, ms, fs, H5P_DEFAULT, dst) < 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    as_error_set(err, AS_ERR_INPUT, "cannot read dataset '%s' of '%s': %s", h5_clean(c, sizeof c, r->key),
                 r->path, h5_why(why));
out:
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    h5_quiet_end(&q);
    return rc;
}

static void h5_close(struct as_reader *r)
{
    if (!r)
        return;
    struct h5_quiet q;
    h5_quiet_begin(&q);
    if (r->dset >= 0)
        H5Dclose(r->dset);
    if (r->file >= 0)
        H5Fclose(r->file);
    h5_quiet_end(&q);
    free(r);
}

/* Calls fn for every float dataset (datasets of other types are skipped), in name order, with
 * extra = its storage ("contiguous", "chunked gzip", ...), valid during fn. */
static int h5_list(const char *path, void (*fn)(void *, const char *, const struct as_tensor_info *, const char *),
                   void *ctx, struct as_error *err)
{
    struct h5_quiet q;
    struct h5_names nm = { 0 };
    hid_t file = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    int rc = -1;
    h5_quiet_begin(&q);
    if (h5_file_open(path, &file, err) || h5_collect(file, path, &nm, err))
        goto out;
    for (size_t i = 0; i < nm.n; i++) {
        struct as_tensor_info ti;
        struct as_strbuf extra = AS_STRBUF_INIT;
        char c[H5R_NAME_SHOWN];
        if ((dset = h5_dset_open(file, path, nm.v[i], err)) < 0)
            goto out;
        int got = h5_dset_info(dset, path, h5_clean(c, sizeof c, nm.v[i]), &ti, &extra, err);
        H5Dclose(dset);
        dset = H5I_INVALID_HID;
        if (got == 0)
            fn(ctx, nm.v[i], &ti, as_strbuf_str(&extra));
        as_strbuf_release(&extra);
        if (got == -1)
            goto out;
    }
    as_error_clear(err);
    rc = 0;
out:
    if (dset >= 0)
        H5Dclose(dset);
    if (file >= 0)
        H5Fclose(file);
    h5_names_release(&nm);
    h5_quiet_end(&q);
    return rc;
}

const struct as_reader_ops as_reader_hdf5 = {
    .name = "hdf5", .open = h5_open, .info = h5_info, .read = h5_read, .close = h5_close, .list = h5_list,
};
