/* as_results_read.c: the serial reader of results files (contract in as_results_read.h) and the
 * HDF5 attribute helpers of as_results_impl.h. */
#include "as_results_read.h"

#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_results_impl.h"
#include "as_util.h"

struct as_results_file {
    hid_t f;                       /* read-only */
    char *path;                    /* owned copy of the path given */
};

/* ---- HDF5 helpers (as_results_impl.h) */

void as_results_h5_quiet_begin(struct as_results_h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void as_results_h5_quiet_end(const struct as_results_h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

int as_results_h5_attr_str_write(hid_t obj, const char *name, const char *val)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &val) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

int as_results_h5_attr_i64_write(hid_t obj, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

int as_results_h5_attr_str_read(hid_t obj, const char *name, char **out)
{
    *out = NULL;
    if (H5Aexists(obj, name) <= 0)
        return 0;
    int rc = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), sp = -1, t = -1, mt = -1;
    if (a < 0)
        goto out;
    sp = H5Aget_space(a);
    t = H5Aget_type(a);
    if (sp < 0 || t < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
        goto out;
    mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &s) < 0)
            goto out;
        *out = as_xstrdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(t);
        char *s = as_xcalloc(sz + 1, 1);
        H5Tset_size(mt, sz);
        H5Tset_cset(mt, H5Tget_cset(t));
        H5Tset_strpad(mt, H5Tget_strpad(t));
        if (H5Aread(a, mt, s) < 0) {
            free(s);
            goto out;
        }
        *out = s;
    }
    rc = 1;
out:
    if (mt >= 0)
        H5Tclose(mt);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

hid_t as_results_hid(const struct as_results_file *r)
{
    return r->f;
}

/* ---- lists */

void as_results_list_release(struct as_results_list *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void list_add(struct as_results_list *l, const char *name)
{
    l->v = as_xrealloc(l->v, (size_t)l->n + 1, sizeof *l->v);
    l->v[l->n++] = as_xstrdup(name);
}

/* The links of group g whose objects have type `want` (and are not dimension scales, with
 * no_scales), in creation order when g tracks it, else name order. 0, or -1 (cannot list). */
static int list_children(hid_t g, H5I_type_t want, int no_scales, struct as_results_list *out)
{
    H5G_info_t gi;
    if (H5Gget_info(g, &gi) < 0)
        return -1;
    unsigned crt = 0;
    hid_t gcpl = H5Gget_create_plist(g);
    if (gcpl >= 0) {
        H5Pget_link_creation_order(gcpl, &crt);
        H5Pclose(gcpl);
    }
    H5_index_t idx = (crt & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        H5_index_t use = idx;
        ssize_t len = H5Lget_name_by_idx(g, ".", use, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        if (len < 0 && use == H5_INDEX_CRT_ORDER) {
            use = H5_INDEX_NAME;
            len = H5Lget_name_by_idx(g, ".", use, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
        }
        if (len < 0)
            continue;
        char *name = as_xmalloc((size_t)len + 1);
        if (H5Lget_name_by_idx(g, ".", use, H5_ITER_INC, i, name, (size_t)len + 1, H5P_DEFAULT) < 0) {
            free(name);
            continue;
        }
        hid_t o = H5Oopen(g, name, H5P_DEFAULT);   /* fails for a dangling or external link */
        if (o >= 0) {
            if (H5Iget_type(o) == want && !(no_scales && want == H5I_DATASET && H5DSis_scale(o) > 0))
                list_add(out, name);
            H5Oclose(o);
        }
        free(name);
    }
    return 0;
}

/* ---- paths */

/* "/", "/models/<model>", "/models/<model>/<stage>" or "/models/<model>/<stage>/<field>": the
 * deepest level whose name is given. Owned by the caller. */
static char *obj_path(const char *model, const char *stage, const char *field)
{
    struct as_strbuf sb = AS_STRBUF_INIT;
    if (!model) {
        as_strbuf_addf(&sb, "/");
        return sb.buf;
    }
    as_strbuf_addf(&sb, "/" AS_RESULTS_GROUP_MODELS "/%s", model);
    if (stage) {
        as_strbuf_addf(&sb, "/%s", stage);
        if (field)
            as_strbuf_addf(&sb, "/%s", field);
    }
    return sb.buf;
}

/* Does every link along `path` (absolute, from obj_path) exist? H5Lexists wants each parent. */
static int path_exists(hid_t f, const char *path)
{
    if (!strcmp(path, "/"))
        return 1;
    char *p = as_xstrdup(path);
    int ok = 1;
    for (char *s = p + 1; ok; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            ok = H5Lexists(f, p, H5P_DEFAULT) > 0;
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return ok;
}

/* Open the object at path: its id, or -1 if absent or not openable. */
static hid_t open_path(hid_t f, const char *path)
{
    return path_exists(f, path) ? H5Oopen(f, path, H5P_DEFAULT) : -1;
}

static char *at_path(const struct as_results_obj *at)
{
    return at ? obj_path(at->model, at->model ? at->stage : NULL, at->model && at->stage ? at->field : NULL)
              : obj_path(NULL, NULL, NULL);
}

/* ---- the file */

int as_results_open(const char *path, struct as_results_file **out, struct as_error *err)
{
    *out = NULL;
    if (access(path, R_OK))
        return as_error_set(err, AS_ERR_INPUT, "cannot read results file '%s': %s", path, strerror(errno));
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    int rc = 0;
    hid_t f = -1;
    if (H5Fis_hdf5(path) <= 0)
        rc = as_error_set(err, AS_ERR_INPUT, "'%s' is not an HDF5 file", path);
    else if ((f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        rc = as_error_set(err, AS_ERR_INPUT, "cannot open results file '%s'", path);
    as_results_h5_quiet_end(&q);
    if (rc)
        return rc;
    struct as_results_file *r = as_xcalloc(1, sizeof *r);
    r->f = f;
    r->path = as_xstrdup(path);
    *out = r;
    return 0;
}

void as_results_close(struct as_results_file *r)
{
    if (!r)
        return;
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    if (r->f >= 0)
        H5Fclose(r->f);
    as_results_h5_quiet_end(&q);
    free(r->path);
    free(r);
}

const char *as_results_path(const struct as_results_file *r)
{
    return r->path;
}

int as_results_is_complete(const struct as_results_file *r)
{
    int64_t v = 0;
    return as_results_attr_i64(r, NULL, AS_RESULTS_ATTR_COMPLETE, &v, NULL) > 0 && v == 1;
}

int as_results_has_models(const struct as_results_file *r)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    int has = H5Lexists(r->f, AS_RESULTS_GROUP_MODELS, H5P_DEFAULT) > 0;
    as_results_h5_quiet_end(&q);
    return has;
}

/* ---- attributes */

/* Open attribute `name` of the object `at`: 1 and *obj, *a open (close both), 0 absent, -1 the
 * attribute exists but cannot be opened (err set). *where gets the object's path (owned). */
static int attr_open(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                     hid_t *obj, hid_t *a, char **where, struct as_error *err)
{
    *obj = *a = -1;
    *where = at_path(at);
    *obj = open_path(r->f, *where);
    if (*obj < 0)
        return 0;
    if (H5Aexists(*obj, name) <= 0)
        return 0;
    *a = H5Aopen(*obj, name, H5P_DEFAULT);
    if (*a < 0)
        return as_error_set(err, AS_ERR_INPUT, "'%s': cannot open attribute '%s' of %s", r->path, name, *where);
    return 1;
}

static void attr_close(hid_t obj, hid_t a, char *where)
{
    if (a >= 0)
        H5Aclose(a);
    if (obj >= 0)
        H5Oclose(obj);
    free(where);
}

int as_results_attr_str(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                        char **out, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    *out = NULL;
    char *where = at_path(at);
    hid_t obj = open_path(r->f, where);
    int rc = obj < 0 ? 0 : as_results_h5_attr_str_read(obj, name, out);
    if (rc < 0)
        as_error_set(err, AS_ERR_INPUT, "'%s': attribute '%s' of %s is not a readable scalar string", r->path, name,
                     where);
    if (obj >= 0)
        H5Oclose(obj);
    free(where);
    as_results_h5_quiet_end(&q);
    return rc;
}

int as_results_attr_i64(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                        int64_t *out, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    hid_t obj, a, sp = -1, t = -1;
    char *where;
    int rc = attr_open(r, at, name, &obj, &a, &where, err);
    if (rc <= 0)
        goto out;
    rc = -1;
    sp = H5Aget_space(a);
    t = H5Aget_type(a);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    int64_t v;
    if (sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && (cls == H5T_INTEGER || cls == H5T_FLOAT) &&
        H5Aread(a, H5T_NATIVE_INT64, &v) >= 0) {
        *out = v;
        rc = 1;
    } else {
        as_error_set(err, AS_ERR_INPUT, "'%s': attribute '%s' of %s is not a scalar number", r->path, name, where);
    }
out:
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    attr_close(obj, a, where);
    as_results_h5_quiet_end(&q);
    return rc;
}

int as_results_attr_f64(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                        double *v, size_t cap, size_t *n, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    hid_t obj, a, sp = -1, t = -1;
    char *where;
    double *tmp = NULL;
    *n = 0;
    int rc = attr_open(r, at, name, &obj, &a, &where, err);
    if (rc <= 0)
        goto out;
    rc = -1;
    sp = H5Aget_space(a);
    t = H5Aget_type(a);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (np < 0 || H5Sget_simple_extent_ndims(sp) > 1 || (cls != H5T_INTEGER && cls != H5T_FLOAT)) {
        as_error_set(err, AS_ERR_INPUT, "'%s': attribute '%s' of %s is not a number or a list of numbers", r->path,
                     name, where);
        goto out;
    }
    tmp = as_xcalloc((size_t)np, sizeof *tmp);
    if (H5Aread(a, H5T_NATIVE_DOUBLE, tmp) < 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': cannot read attribute '%s' of %s", r->path, name, where);
        goto out;
    }
    *n = (size_t)np;
    if (cap)
        memcpy(v, tmp, (cap < *n ? cap : *n) * sizeof *v);
    rc = 1;
out:
    free(tmp);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    attr_close(obj, a, where);
    as_results_h5_quiet_end(&q);
    return rc;
}

static herr_t attr_name_cb(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)obj;
    (void)info;
    list_add(data, name);
    return 0;
}

int as_results_attr_names(const struct as_results_file *r, const struct as_results_obj *at,
                          struct as_results_list *out, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    char *where = at_path(at);
    hid_t obj = open_path(r->f, where);
    int rc = 0;
    out->v = NULL;
    out->n = 0;
    if (obj < 0) {
        rc = as_error_set(err, AS_ERR_INPUT, "'%s' has no %s", r->path, where);
    } else {
        hsize_t idx = 0;
        if (H5Aiterate2(obj, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, attr_name_cb, out) < 0) {
            as_results_list_release(out);   /* creation order not tracked: name order */
            idx = 0;
            if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_name_cb, out) < 0) {
                as_results_list_release(out);
                rc = as_error_set(err, AS_ERR_INPUT, "'%s': cannot list the attributes of %s", r->path, where);
            }
        }
        H5Oclose(obj);
    }
    free(where);
    as_results_h5_quiet_end(&q);
    return rc;
}

/* ---- models, stages, fields */

/* List the children of type `want` of the group at path; -1 with "'<file>' has no <what>" when
 * it is missing, "'<file>': cannot list <path>" when it cannot be listed. */
static int list_group(const struct as_results_file *r, const char *path, H5I_type_t want, int no_scales,
                      struct as_results_list *out, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    out->v = NULL;
    out->n = 0;
    int rc = 0;
    hid_t g = open_path(r->f, path);
    if (g < 0 || H5Iget_type(g) != H5I_GROUP)
        rc = as_error_set(err, AS_ERR_INPUT, "'%s' has no group %s", r->path, path);
    else if (list_children(g, want, no_scales, out) < 0)
        rc = as_error_set(err, AS_ERR_INPUT, "'%s': cannot list %s", r->path, path);
    if (rc)
        as_results_list_release(out);
    if (g >= 0)
        H5Oclose(g);
    as_results_h5_quiet_end(&q);
    return rc;
}

int as_results_models(const struct as_results_file *r, struct as_results_list *out, struct as_error *err)
{
    out->v = NULL;
    out->n = 0;
    if (!as_results_has_models(r))
        return as_error_set(err, AS_ERR_INPUT, "'%s' has no /" AS_RESULTS_GROUP_MODELS " group: not an attnstat "
                            "results file", r->path);
    if (list_group(r, "/" AS_RESULTS_GROUP_MODELS, H5I_GROUP, 0, out, err))
        return as_error_set(err, AS_ERR_INPUT, "'%s': cannot list /" AS_RESULTS_GROUP_MODELS, r->path);
    return 0;
}

int as_results_model_info(const struct as_results_file *r, const char *model, struct as_results_model_info *out,
                          struct as_error *err)
{
    static const char *const keys[] = { AS_RESULTS_ATTR_N_LAYERS, AS_RESULTS_ATTR_N_HEADS, AS_RESULTS_ATTR_SEQ_LEN };
    int64_t *vals[] = { &out->n_layers, &out->n_heads, &out->seq_len };
    memset(out, 0, sizeof *out);
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    char *path = obj_path(model, NULL, NULL);
    hid_t g = open_path(r->f, path);
    int is_group = g >= 0 && H5Iget_type(g) == H5I_GROUP;
    if (g >= 0)
        H5Oclose(g);
    free(path);
    as_results_h5_quiet_end(&q);
    if (!is_group)
        return as_error_set(err, AS_ERR_INPUT, "'%s': cannot open group /" AS_RESULTS_GROUP_MODELS "/%s", r->path,
                            model);
    const struct as_results_obj at = { model, NULL, NULL };
    for (int k = 0; k < 3; k++) {
        struct as_error ignore = { AS_OK, "" };
        int rc = as_results_attr_i64(r, &at, keys[k], vals[k], &ignore);
        if (rc <= 0 && k < 2)
            return as_error_set(err, AS_ERR_INPUT, "'%s': model '%s' has %s attribute '%s'", r->path, model,
                                rc ? "a malformed" : "no", keys[k]);
    }
    if (out->n_layers < 1 || out->n_heads < 1)
        return as_error_set(err, AS_ERR_INPUT, "'%s': model '%s' has " AS_RESULTS_ATTR_N_LAYERS "=%lld "
                            AS_RESULTS_ATTR_N_HEADS "=%lld", r->path, model, (long long)out->n_layers,
                            (long long)out->n_heads);
    return 0;
}

int as_results_stages(const struct as_results_file *r, const char *model, struct as_results_list *out,
                      struct as_error *err)
{
    char *path = obj_path(model, NULL, NULL);
    int rc = list_group(r, path, H5I_GROUP, 0, out, err);
    free(path);
    return rc;
}

int as_results_fields(const struct as_results_file *r, const char *model, const char *stage,
                      struct as_results_list *out, struct as_error *err)
{
    char *path = obj_path(model, stage, NULL);
    int rc = list_group(r, path, H5I_DATASET, 1, out, err);
    free(path);
    return rc;
}

static herr_t scale_name_cb(hid_t did, unsigned dim, hid_t dsid, void *data)
{
    (void)did;
    (void)dim;
    char *buf = data;
    if (H5DSget_scale_name(dsid, buf, AS_RESULTS_DIM_NAME_MAX) <= 0)
        buf[0] = 0;
    return 1;   /* the first scale names the dimension */
}

/* Open the dataset of a field: its id (close it) and its type class in *cls, or -1 when there
 * is no such dataset. *path gets its path (owned). */
static hid_t field_open(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                        char **path, H5T_class_t *cls)
{
    *path = obj_path(model, stage, field);
    hid_t ds = open_path(r->f, *path);
    if (ds < 0)
        return -1;
    if (H5Iget_type(ds) != H5I_DATASET) {
        H5Oclose(ds);
        return -1;
    }
    hid_t t = H5Dget_type(ds);
    *cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (t >= 0)
        H5Tclose(t);
    return ds;
}

int as_results_field_info(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                          struct as_results_field_info *out, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    memset(out, 0, sizeof *out);
    char *path;
    H5T_class_t cls = H5T_NO_CLASS;
    hid_t ds = field_open(r, model, stage, field, &path, &cls), sp = -1, dcpl = -1;
    int rc = 0;
    if (ds < 0 || (cls != H5T_FLOAT && cls != H5T_INTEGER))
        goto out;
    out->type = cls == H5T_FLOAT ? AS_FTYPE_F64 : AS_FTYPE_I64;
    sp = H5Dget_space(ds);
    hsize_t dims[H5S_MAX_RANK];
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd < 0 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        rc = as_error_set(err, AS_ERR_INPUT, "'%s': cannot read the shape of %s", r->path, path);
        goto out;
    }
    out->ndim = nd;
    out->count = 1;
    for (int d = 0; d < nd; d++) {
        out->count *= (int64_t)dims[d];
        if (d < AS_RESULTS_MAX_DIMS) {
            out->dims[d] = (int64_t)dims[d];
            if (H5DSget_num_scales(ds, (unsigned)d) > 0)
                H5DSiterate_scales(ds, (unsigned)d, NULL, scale_name_cb, out->dim_names[d]);
            out->dim_names[d][AS_RESULTS_DIM_NAME_MAX - 1] = 0;
        }
    }
    out->is_scale = H5DSis_scale(ds) > 0;
    H5D_fill_value_t fst;
    dcpl = H5Dget_create_plist(ds);
    if (dcpl >= 0 && H5Pfill_value_defined(dcpl, &fst) >= 0 && fst == H5D_FILL_VALUE_USER_DEFINED) {
        double f;
        if (H5Pget_fill_value(dcpl, H5T_NATIVE_DOUBLE, &f) >= 0) {
            out->has_fill = 1;
            out->fill = f;
        }
    }
    rc = 1;
out:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Oclose(ds);
    free(path);
    as_results_h5_quiet_end(&q);
    return rc;
}

static int field_read(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                      hid_t mtype, void *v, size_t n, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    char *path;
    H5T_class_t cls = H5T_NO_CLASS;
    hid_t ds = field_open(r, model, stage, field, &path, &cls), sp = -1;
    int rc = -1;
    if (ds < 0 || (cls != H5T_FLOAT && cls != H5T_INTEGER)) {
        as_error_set(err, AS_ERR_INPUT, "'%s' has no numeric dataset %s", r->path, path);
        goto out;
    }
    sp = H5Dget_space(ds);
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (np < 0 || (size_t)np != n) {
        as_error_set(err, AS_ERR_INPUT, "'%s': %s has %lld elements, not %zu", r->path, path, (long long)np, n);
        goto out;
    }
    if (n && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': cannot read %s", r->path, path);
        goto out;
    }
    rc = 0;
out:
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Oclose(ds);
    free(path);
    as_results_h5_quiet_end(&q);
    return rc;
}

int as_results_field_f64(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                         double *v, size_t n, struct as_error *err)
{
    return field_read(r, model, stage, field, H5T_NATIVE_DOUBLE, v, n, err);
}

int as_results_field_i64(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                         int64_t *v, size_t n, struct as_error *err)
{
    return field_read(r, model, stage, field, H5T_NATIVE_INT64, v, n, err);
}

/* ---- a stage group taken whole */

int as_results_attr_kind(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                         enum as_attr_kind *kind, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    hid_t obj, a, sp = -1, t = -1;
    char *where;
    int rc = attr_open(r, at, name, &obj, &a, &where, err);
    if (rc > 0) {
        sp = H5Aget_space(a);
        t = H5Aget_type(a);
        H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
        H5S_class_t scls = sp >= 0 ? H5Sget_simple_extent_type(sp) : H5S_NO_CLASS;
        if (cls == H5T_STRING && scls == H5S_SCALAR)
            *kind = AS_ATTR_STR;
        else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && scls == H5S_SCALAR)
            *kind = cls == H5T_INTEGER ? AS_ATTR_I64 : AS_ATTR_F64;
        else if (cls == H5T_FLOAT && scls == H5S_SIMPLE && H5Sget_simple_extent_ndims(sp) == 1)
            *kind = AS_ATTR_F64VEC;
        else
            rc = -1;
    }
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    attr_close(obj, a, where);
    as_results_h5_quiet_end(&q);
    return rc;
}

void as_results_stage_copy_release(struct as_results_stage_copy *c)
{
    if (!c)
        return;
    for (int k = 0; k < AS_STAGE_MAX_ATTRS; k++)
        free(c->vecs[k]);
    free(c->log);
    memset(c, 0, sizeof *c);
}

/* One field into its place in every row (per-layer) or in the model block. 1, 0 (shape or type
 * differs), -1. */
static int load_field(const struct as_results_file *r, const char *model, const char *stage, const struct as_field *f,
                      size_t off, size_t row_size, int64_t n_layers, unsigned char *rows, unsigned char *block,
                      struct as_error *err)
{
    struct as_results_field_info fi;
    int rc = as_results_field_info(r, model, stage, f->name, &fi, err);
    if (rc <= 0)
        return rc;
    int nd = f->per_layer + f->ndim;
    if (fi.type != f->type || fi.ndim != nd || (f->per_layer && fi.dims[0] != n_layers))
        return 0;
    for (int d = 0; d < f->ndim; d++)
        if (fi.dims[f->per_layer + d] != f->dims[d])
            return 0;
    size_t per = (size_t)as_field_count(f), n = (size_t)fi.count;
    unsigned char *tmp = as_xcalloc(n, 8);
    rc = f->type == AS_FTYPE_I64 ? as_results_field_i64(r, model, stage, f->name, (int64_t *)(void *)tmp, n, err)
                                 : as_results_field_f64(r, model, stage, f->name, (double *)(void *)tmp, n, err);
    if (!rc) {
        if (f->per_layer)
            for (int64_t l = 0; l < n_layers; l++)
                memcpy(rows + (size_t)l * row_size + off, tmp + (size_t)l * per * 8, per * 8);
        else
            memcpy(block + off, tmp, per * 8);
    }
    free(tmp);
    return rc ? -1 : 1;
}

static int load_attr(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                     struct as_results_stage_copy *c, struct as_error *err)
{
    enum as_attr_kind kind;
    int rc = as_results_attr_kind(r, at, name, &kind, err);
    if (rc <= 0)
        return rc;
    if (c->n_attrs == AS_STAGE_MAX_ATTRS)
        return 0;
    int k = c->n_attrs;
    struct as_attr *a = &c->attrs[k];
    memset(a, 0, sizeof *a);
    as_strlcpy(c->names[k], name, sizeof c->names[k]);
    a->name = c->names[k];
    a->kind = kind;
    char *str = NULL;
    size_t n = 0;
    switch (kind) {
    case AS_ATTR_STR:
        rc = as_results_attr_str(r, at, name, &str, err);
        if (rc == 1 && strlen(str) >= sizeof a->str)
            rc = 0; /* longer than an attribute holds: not the stage's */
        if (rc == 1)
            as_strlcpy(a->str, str, sizeof a->str);
        free(str);
        break;
    case AS_ATTR_I64:
        rc = as_results_attr_i64(r, at, name, &a->i64, err);
        break;
    case AS_ATTR_F64:
        rc = as_results_attr_f64(r, at, name, &a->f64, 1, &n, err);
        break;
    default:
        rc = as_results_attr_f64(r, at, name, NULL, 0, &n, err);
        if (rc == 1) {
            c->vecs[k] = as_xcalloc(n, sizeof *c->vecs[k]);
            rc = as_results_attr_f64(r, at, name, c->vecs[k], n, &n, err);
            a->vec = c->vecs[k];
            a->n = (int64_t)n;
        }
        break;
    }
    if (rc == 1)
        c->n_attrs++;
    return rc;
}

int as_results_load_stage(const struct as_results_file *r, const char *model, const char *stage,
                          const struct as_field *fields, int n_fields, int64_t n_layers, unsigned char *rows,
                          unsigned char *model_block, struct as_results_stage_copy *copy, struct as_error *err)
{
    memset(copy, 0, sizeof *copy);
    size_t row_size = as_schema_row_size(fields, n_fields);
    int rc = 1;
    for (int k = 0; k < n_fields && rc == 1; k++)
        rc = load_field(r, model, stage, &fields[k], as_schema_offset(fields, n_fields, k), row_size, n_layers, rows,
                        model_block, err);
    struct as_results_obj at = { model, stage, NULL };
    struct as_results_list names = AS_RESULTS_LIST_INIT;
    if (rc == 1 && as_results_attr_names(r, &at, &names, err))
        rc = -1;
    for (int k = 0; k < names.n && rc == 1; k++)
        if (strcmp(names.v[k], AS_RESULTS_ATTR_KEY) && strcmp(names.v[k], AS_RESULTS_ATTR_STAGE_SUMMARY))
            rc = load_attr(r, &at, names.v[k], copy, err);
    as_results_list_release(&names);
    if (rc == 1 && as_results_attr_str(r, &at, AS_RESULTS_ATTR_STAGE_SUMMARY, &copy->log, err) < 0)
        rc = -1;
    if (rc == 1 && !copy->log)
        copy->log = as_xstrdup("");
    if (rc != 1)
        as_results_stage_copy_release(copy);
    return rc;
}
