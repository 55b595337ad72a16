/* as_results.c: writes the results file. Rank 0 writes it whole with HDF5's POSIX driver from the
 * gathered rows; the other ranks wait for its status (as_results.h says why). */
#include "as_results.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_mpi.h"
#include "as_results_impl.h"
#include "as_results_names.h"
#include "as_util.h"
#include "as_version.h"

/* Sticky error: the first HDF5 failure is remembered and every later call is skipped. */
struct wr {
    struct as_error *err;
    int failed;
    int rank;
    hid_t str_t;                   /* variable-length UTF-8 string type */
    const char *path;              /* the file being written */
};

/* The first failure, with the system's reason when the POSIX driver left one in errno. */
static void wr_fail(struct wr *w, const char *what, int e)
{
    w->failed = 1;
    if (e)
        as_error_set(w->err, AS_ERR_IO, "cannot write results file '%s' (%s): %s", w->path, what, strerror(e));
    else
        as_error_set(w->err, AS_ERR_HDF5, "cannot write results file '%s' (%s)", w->path, what);
}

#define WR_CHECK(w, call, what)                                                                  \
    do {                                                                                         \
        if (!(w)->failed) {                                                                      \
            errno = 0;                                                                           \
            if ((call) < 0)                                                                      \
                wr_fail((w), (what), errno);                                                     \
        }                                                                                        \
    } while (0)

static void attr_str(struct wr *w, hid_t obj, const char *name, const char *val)
{
    if (w->failed)
        return;
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(obj, name, w->str_t, sp, H5P_DEFAULT, H5P_DEFAULT);
    WR_CHECK(w, a, name);
    if (a >= 0) {
        WR_CHECK(w, H5Awrite(a, w->str_t, &val), name);
        H5Aclose(a);
    }
    H5Sclose(sp);
}

static void attr_num(struct wr *w, hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *val,
                     hsize_t n)
{
    if (w->failed)
        return;
    hid_t sp = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    WR_CHECK(w, a, name);
    if (a >= 0) {
        WR_CHECK(w, H5Awrite(a, mtype, val), name);
        H5Aclose(a);
    }
    H5Sclose(sp);
}

static void attr_i64(struct wr *w, hid_t obj, const char *name, int64_t v)
{
    attr_num(w, obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 0);
}

static void write_attrs(struct wr *w, hid_t obj, const struct as_attr *a, int n)
{
    for (int i = 0; i < n; i++) {
        switch (a[i].kind) {
        case AS_ATTR_F64:
            attr_num(w, obj, a[i].name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &a[i].f64, 0);
            break;
        case AS_ATTR_I64:
            attr_i64(w, obj, a[i].name, a[i].i64);
            break;
        case AS_ATTR_STR:
            attr_str(w, obj, a[i].name, a[i].str);
            break;
        case AS_ATTR_F64VEC:
            if (a[i].n > 0)
                attr_num(w, obj, a[i].name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, a[i].vec, (hsize_t)a[i].n);
            break;
        default:
            break;
        }
    }
}

static hid_t make_group(struct wr *w, hid_t parent, const char *name)
{
    if (w->failed)
        return -1;
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    WR_CHECK(w, g, name);
    return g;
}

/* A dataset of rank nd, contiguous, allocated early, never filled (every element is written). */
static hid_t make_dataset(struct wr *w, hid_t parent, const char *name, hid_t ftype, int nd, const hsize_t *dims)
{
    if (w->failed)
        return -1;
    hid_t sp = H5Screate_simple(nd, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t d = H5Dcreate2(parent, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    WR_CHECK(w, d, name);
    return d;
}

/* An index scale 0..n-1 named `name` in `parent`, written by rank 0. */
static hid_t make_scale(struct wr *w, hid_t parent, const char *dsname, const char *scale_name, int64_t n,
                        const char *desc)
{
    hsize_t dims[1] = { (hsize_t)n };
    hid_t d = make_dataset(w, parent, dsname, H5T_STD_I64LE, 1, dims);
    if (d < 0)
        return -1;
    int64_t *v = as_xcalloc((size_t)n, sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = i;
    WR_CHECK(w, H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), dsname);
    free(v);
    WR_CHECK(w, H5DSset_scale(d, scale_name), dsname);
    attr_str(w, d, AS_RESULTS_ATTR_DESCRIPTION, desc);
    return d;
}

static void write_stage(struct wr *w, hid_t mg, const struct as_results_model *m, const struct as_results_stage *s,
                        hid_t layer_scale, hid_t head_scale)
{
    hid_t sg = make_group(w, mg, s->name);
    if (sg < 0)
        return;
    write_attrs(w, sg, s->attrs, s->n_attrs);
    if (s->key)
        attr_str(w, sg, AS_RESULTS_ATTR_KEY, s->key);
    if (s->summary)
        attr_str(w, sg, AS_RESULTS_ATTR_STAGE_SUMMARY, s->summary);
    size_t row_size = as_schema_row_size(s->fields, s->n_fields);
    /* stage-specific scales, one per distinct dim name other than head */
    const char *scale_names[AS_STAGE_MAX_FIELDS * AS_FIELD_MAX_DIMS];
    int64_t scale_len[AS_STAGE_MAX_FIELDS * AS_FIELD_MAX_DIMS];
    hid_t scales[AS_STAGE_MAX_FIELDS * AS_FIELD_MAX_DIMS];
    int n_scales = 0;
    for (int k = 0; k < s->n_fields; k++) {
        const struct as_field *f = &s->fields[k];
        hsize_t dims[AS_FIELD_MAX_DIMS + 1];
        int nd = 0;
        if (f->per_layer)
            dims[nd++] = (hsize_t)s->n_layers;
        for (int d = 0; d < f->ndim; d++)
            dims[nd++] = (hsize_t)f->dims[d];
        hid_t ftype = f->type == AS_FTYPE_I64 ? H5T_STD_I64LE : H5T_IEEE_F64LE;
        hid_t mtype = f->type == AS_FTYPE_I64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
        hid_t d = make_dataset(w, sg, f->name, ftype, nd, dims);
        if (d < 0)
            break;
        attr_str(w, d, AS_RESULTS_ATTR_DESCRIPTION, f->description ? f->description : "");
        size_t off = as_schema_offset(s->fields, s->n_fields, k), fbytes = (size_t)as_field_count(f) * 8;
        if (f->per_layer) { /* the field's slice of every row, layer order */
            unsigned char *buf = as_xcalloc((size_t)s->n_layers, fbytes);
            for (int64_t l = 0; l < s->n_layers; l++)
                memcpy(buf + (size_t)l * fbytes, s->rows + (size_t)l * row_size + off, fbytes);
            WR_CHECK(w, H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), f->name);
            free(buf);
        } else {
            WR_CHECK(w, H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->model_block + off), f->name);
        }
        /* dimension scales */
        int dim = 0;
        if (f->per_layer) {
            WR_CHECK(w, H5DSattach_scale(d, layer_scale, 0), f->name);
            WR_CHECK(w, H5DSset_label(d, 0, AS_RESULTS_DIM_LAYER), f->name);
            dim = 1;
        }
        for (int e = 0; e < f->ndim; e++, dim++) {
            const char *dn = f->dim_names[e] ? f->dim_names[e] : AS_RESULTS_DIM_INDEX;
            hid_t sc = -1;
            if (!strcmp(dn, AS_RESULTS_DIM_HEAD) && f->dims[e] == m->n_heads) {
                sc = head_scale;
            } else if (!strcmp(dn, AS_RESULTS_DIM_LAYER) && f->dims[e] == m->n_layers) {
                sc = layer_scale;
            } else {
                for (int q = 0; q < n_scales; q++)
                    if (!strcmp(scale_names[q], dn) && scale_len[q] == f->dims[e])
                        sc = scales[q];
                if (sc < 0 && n_scales < (int)(sizeof scales / sizeof scales[0])) {
                    char dsname[96];
                    int clash = 0;
                    for (int q = 0; q < s->n_fields; q++)
                        clash |= !strcmp(s->fields[q].name, dn);
                    snprintf(dsname, sizeof dsname, "%s%s", dn, clash ? AS_RESULTS_SCALE_CLASH_SUFFIX : "");
                    for (int q = 0; q < n_scales; q++)
                        if (!strcmp(scale_names[q], dn))
                            snprintf(dsname, sizeof dsname, "%s_%lld", dn, (long long)f->dims[e]);
                    sc = make_scale(w, sg, dsname, dn, f->dims[e], "index along this dimension");
                    scale_names[n_scales] = dn;
                    scale_len[n_scales] = f->dims[e];
                    scales[n_scales++] = sc;
                }
            }
            if (sc >= 0) {
                WR_CHECK(w, H5DSattach_scale(d, sc, (unsigned)dim), f->name);
                WR_CHECK(w, H5DSset_label(d, (unsigned)dim, dn), f->name);
            }
        }
        H5Dclose(d);
    }
    for (int q = 0; q < n_scales; q++)
        if (scales[q] >= 0)
            H5Dclose(scales[q]);
    H5Gclose(sg);
}

/* /models/<m>/matrices/qk_mean_<l>_<h> and qk_var_<l>_<h>, (T, T) float64. */
static void write_one_matrix(struct wr *w, hid_t g, const char *prefix, const struct as_results_matrix *x,
                             const double *v, const char *desc)
{
    char name[96];
    snprintf(name, sizeof name, "%s%lld_%lld", prefix, (long long)x->layer, (long long)x->head);
    hsize_t dims[2] = { (hsize_t)x->T, (hsize_t)x->T };
    hid_t d = make_dataset(w, g, name, H5T_IEEE_F64LE, 2, dims);
    if (d < 0)
        return;
    WR_CHECK(w, H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), name);
    attr_str(w, d, AS_RESULTS_ATTR_DESCRIPTION, desc);
    attr_i64(w, d, AS_RESULTS_ATTR_MATRIX_LAYER, x->layer);
    attr_i64(w, d, AS_RESULTS_ATTR_MATRIX_HEAD, x->head);
    if (v == x->mean && !x->var && x->note)
        attr_str(w, d, AS_RESULTS_ATTR_MATRIX_NOTE, x->note);
    H5Dclose(d);
}

static void write_matrices(struct wr *w, hid_t mg, const struct as_results_model_extra *m)
{
    if (w->failed || m->n_matrices <= 0 || !m->matrices)
        return;
    hid_t g = make_group(w, mg, AS_RESULTS_GROUP_MATRICES);
    if (g < 0)
        return;
    for (int i = 0; i < m->n_matrices; i++) {
        const struct as_results_matrix *x = &m->matrices[i];
        write_one_matrix(w, g, AS_RESULTS_MATRIX_MEAN_PREFIX, x, x->mean,
                         "input qk_mean[layer, head]: mean raw attention scores (query, key)");
        if (x->var)
            write_one_matrix(w, g, AS_RESULTS_MATRIX_VAR_PREFIX, x, x->var,
                             "input qk_var[layer, head]: variance of the raw attention scores (query, key)");
    }
    H5Gclose(g);
}

/* Write n bytes to fd, retrying short writes. 0, or the errno. */
static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? errno : EIO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* The file image HDF5 built in memory, to tmp: every write and the fsync checked, so a full disk,
 * a quota, an I/O error or a file size limit is an error naming the file and the reason (HDF5's
 * own close of a file it failed to write crashes HDF5 1.10 at exit). */
static void save_image(struct wr *w, hid_t f, const char *tmp)
{
    if (w->failed)
        return;
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    if (n < 0) {
        wr_fail(w, "taking its image", 0);
        return;
    }
    unsigned char *img = as_xmalloc((size_t)n);
    if (H5Fget_file_image(f, img, (size_t)n) != n) {
        wr_fail(w, "taking its image", 0);
    } else {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666), e = fd < 0 ? errno : 0;
        if (!e)
            e = write_all(fd, img, (size_t)n);
        if (!e && fsync(fd))
            e = errno;
        if (fd >= 0 && close(fd) && !e)
            e = errno;
        if (e) {
            w->failed = 1;
            as_error_set(w->err, AS_ERR_IO, "cannot write results file '%s': %s", tmp, strerror(e));
        }
    }
    free(img);
}

/* Rank 0: the whole file, built in memory (HDF5's core driver, no backing store) and saved to
 * tmp. */
static void write_file(struct wr *w, const char *tmp, const struct as_results_run *run,
                       const struct as_results_model *models, int n_models, const struct as_results_extra *extra)
{
    static const struct as_results_model_extra none = { NULL, NULL, 0 };
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_fapl_core(fapl, (size_t)1 << 20, 0);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (f < 0) {
        w->failed = 1;
        as_error_set(w->err, AS_ERR_HDF5, "cannot create results file '%s' in memory", tmp);
        return;
    }
    attr_str(w, f, AS_RESULTS_ATTR_TOOL, AS_RESULTS_TOOL_NAME);
    attr_str(w, f, AS_RESULTS_ATTR_TOOL_VERSION, as_version());
    attr_str(w, f, AS_RESULTS_ATTR_GIT_COMMIT, as_git_describe());
    attr_str(w, f, AS_RESULTS_ATTR_CONFIG, run->config_text ? run->config_text : "");
    attr_str(w, f, AS_RESULTS_ATTR_CONFIG_PATH, run->config_path ? run->config_path : "");
    attr_str(w, f, AS_RESULTS_ATTR_COMMAND_LINE, run->command_line ? run->command_line : "");
    attr_str(w, f, AS_RESULTS_ATTR_START_TIME, run->start_time ? run->start_time : "");
    attr_str(w, f, AS_RESULTS_ATTR_END_TIME, run->end_time ? run->end_time : "");
    attr_i64(w, f, AS_RESULTS_ATTR_MPI_SIZE, run->mpi_size);
    if (run->sweep_part && run->sweep_part[0])
        attr_str(w, f, AS_RESULTS_ATTR_SWEEP_PART, run->sweep_part);
    if (run->sweep_skipped && run->sweep_skipped[0])
        attr_str(w, f, AS_RESULTS_ATTR_SWEEP_SKIPPED, run->sweep_skipped);
    attr_i64(w, f, AS_RESULTS_ATTR_UNITS_COMPUTED, run->units_computed);
    attr_i64(w, f, AS_RESULTS_ATTR_UNITS_REUSED, run->units_reused);
    attr_str(w, f, AS_RESULTS_ATTR_FAILED_MODELS, run->failed_models ? run->failed_models : "");
    if (extra && extra->config_overrides && extra->config_overrides[0])
        attr_str(w, f, AS_RESULTS_ATTR_CONFIG_OVERRIDES, extra->config_overrides);

    hid_t rg = make_group(w, f, AS_RESULTS_GROUP_RUN);
    if (rg >= 0) {
        hsize_t n = (hsize_t)run->mpi_size;
        static const char *const names[] = { AS_RESULTS_DSET_RANK_BUSY, AS_RESULTS_DSET_RANK_BYTES,
                                             AS_RESULTS_DSET_RANK_READ_S, AS_RESULTS_DSET_RANK_UNITS,
                                             AS_RESULTS_DSET_RANK_OPENS };
        static const char *const desc[] = { "seconds each rank spent computing units and prepass rounds",
                                            "input bytes each rank read",
                                            "of the busy seconds, those in input reads (generating, for synthetic models)",
                                            "units each rank computed",
                                            "input files each rank opened (tensors and digests)" };
        const void *vals[] = { run->rank_busy, run->rank_bytes, run->rank_read_s, run->rank_units, run->rank_opens };
        for (int k = 0; k < 5; k++) {
            if (!vals[k])
                continue;
            int i64 = k >= 3;
            hid_t d = make_dataset(w, rg, names[k], i64 ? H5T_STD_I64LE : H5T_IEEE_F64LE, 1, &n);
            if (d < 0)
                break;
            WR_CHECK(w, H5Dwrite(d, i64 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals[k]),
                     names[k]);
            attr_str(w, d, AS_RESULTS_ATTR_DESCRIPTION, desc[k]);
            H5Dclose(d);
        }
        H5Gclose(rg);
    }
    hid_t models_g = make_group(w, f, AS_RESULTS_GROUP_MODELS);
    for (int i = 0; i < n_models && models_g >= 0 && !w->failed; i++) {
        const struct as_results_model *m = &models[i];
        const struct as_results_model_extra *mx = extra && extra->models ? &extra->models[i] : &none;
        hid_t mg = make_group(w, models_g, m->name);
        if (mg < 0)
            break;
        attr_str(w, mg, AS_RESULTS_ATTR_STATUS, m->error ? AS_RESULTS_STATUS_FAILED : AS_RESULTS_STATUS_OK);
        if (mx->label && mx->label[0])
            attr_str(w, mg, AS_RESULTS_ATTR_LABEL, mx->label);
        if (m->error) { /* what it was given, and why it failed: no value that pretends to be one */
            attr_str(w, mg, AS_RESULTS_ATTR_ERROR, m->error);
            write_attrs(w, mg, m->attrs, m->n_attrs);
            H5Gclose(mg);
            continue;
        }
        attr_i64(w, mg, AS_RESULTS_ATTR_N_LAYERS, m->n_layers);
        attr_i64(w, mg, AS_RESULTS_ATTR_N_HEADS, m->n_heads);
        attr_i64(w, mg, AS_RESULTS_ATTR_SEQ_LEN, m->seq_len);
        write_attrs(w, mg, m->attrs, m->n_attrs);
        hid_t ls = make_scale(w, mg, AS_RESULTS_DIM_LAYER, AS_RESULTS_DIM_LAYER, m->n_layers, "layer index (0-based)");
        hid_t hs = make_scale(w, mg, AS_RESULTS_DIM_HEAD, AS_RESULTS_DIM_HEAD, m->n_heads, "head index (0-based)");
        for (int s = 0; s < m->n_stages && !w->failed; s++)
            write_stage(w, mg, m, &m->stages[s], ls, hs);
        write_matrices(w, mg, mx);
        if (ls >= 0) H5Dclose(ls);
        if (hs >= 0) H5Dclose(hs);
        H5Gclose(mg);
    }
    if (models_g >= 0)
        H5Gclose(models_g);
    /* complete only when every unit of every model was written; 0 with failed models */
    if (!w->failed)
        attr_i64(w, f, AS_RESULTS_ATTR_COMPLETE, run->complete ? 1 : 0);
    if (!w->failed && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
        wr_fail(w, "flushing it", 0);
    save_image(w, f, tmp);
    if (H5Fclose(f) < 0 && !w->failed)
        wr_fail(w, "closing it", 0);
}

int as_results_write_all(MPI_Comm comm, const char *path, const struct as_results_run *run,
                         const struct as_results_model *models, int n_models, struct as_error *err)
{
    return as_results_write_extra_all(comm, path, run, models, n_models, NULL, err);
}

int as_results_write_extra_all(MPI_Comm comm, const char *path, const struct as_results_run *run,
                               const struct as_results_model *models, int n_models,
                               const struct as_results_extra *extra, struct as_error *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    struct wr w = { err, 0, as_mpi_rank(comm), -1, tmp };
    int rc = 0;
    if (w.rank == 0) {
        if (as_mkdir_parent(path)) {
            rc = as_error_set(err, AS_ERR_IO, "cannot create the folder of results file '%s': %s", path,
                              strerror(errno));
        } else {
            struct as_results_h5_quiet q;
            as_results_h5_quiet_begin(&q);
            w.str_t = H5Tcopy(H5T_C_S1);
            H5Tset_size(w.str_t, H5T_VARIABLE);
            H5Tset_cset(w.str_t, H5T_CSET_UTF8);
            write_file(&w, tmp, run, models, n_models, extra);
            H5Tclose(w.str_t);
            as_results_h5_quiet_end(&q);
            rc = w.failed ? -1 : 0;
            if (rc)
                unlink(tmp); /* nothing half-written is left; the journal keeps the work */
        }
        /* test hook (tests/resume_kill.sh): hold the finished .partial file so a kill lands here */
        const char *hold = getenv("ATTNSTAT_TEST_HOLD_WRITE");
        if (!rc && hold && atoi(hold) > 0)
            sleep((unsigned)atoi(hold));
        if (!rc && rename(tmp, path) != 0)
            rc = as_error_set(err, AS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    }
    /* every rank learns rank 0's outcome */
    int st = rc ? (int)err->status : 0;
    AS_MPI(MPI_Bcast(&st, 1, MPI_INT, 0, comm));
    if (!st)
        return 0;
    AS_MPI(MPI_Bcast(err->msg, sizeof err->msg, MPI_CHAR, 0, comm));
    err->status = (enum as_status)st;
    return -1;
}
