/* as_results_read.h: serial access to a finished results file, for `attnstat plot`, `summary`,
 * `merge` and the tests: a read-only reader (plain HDF5, no MPI), and the one update made to a
 * closed file, recording the figures drawn from it. Names of groups, datasets and attributes are
 * in as_results_names.h; the layout is in as_results.h and README "Results layout".
 *
 * Conventions of every function below:
 *   - HDF5's automatic error printing is off while it runs (the caller's handler is restored);
 *     errors come back as struct as_error, AS_ERR_INPUT for a file that is missing, not HDF5 or
 *     not laid out as a results file (out of memory ends the job: pipeline/core/as_error.h).
 *   - Getters return 1 when the value was read, 0 when it is absent (err untouched), -1 when it
 *     is there but malformed or unreadable (err set).
 *   - Strings and lists they return are owned by the caller (free / as_results_list_release);
 *     nothing they return points into the reader. */
#ifndef AS_RESULTS_AS_RESULTS_READ_H
#define AS_RESULTS_AS_RESULTS_READ_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "as_results_names.h"
#include "as_stage.h"

#define AS_RESULTS_MAX_DIMS (AS_FIELD_MAX_DIMS + 1) /* a field's layer dimension and its own */
#define AS_RESULTS_DIM_NAME_MAX 64                  /* scale names are cut to 63 bytes */

/* An open results file (read-only). Opaque: as_results_open makes one, as_results_close frees it. */
struct as_results_file;

/* An object of the file that attributes are read from: the root when the pointer passed is NULL;
 * else /models/<model>, /models/<model>/<stage> or the dataset /models/<model>/<stage>/<field>,
 * the deepest of the names that is not NULL (names after a NULL are ignored). Borrowed. */
struct as_results_obj {
    const char *model, *stage, *field;
};

/* A list of names (models, stages, fields, attributes) in the file's order. v and its strings
 * are owned by whoever holds the list; as_results_list_release frees them and empties it. */
struct as_results_list {
    char **v;
    int n;
};
#define AS_RESULTS_LIST_INIT { NULL, 0 }
void as_results_list_release(struct as_results_list *l);

/* ---- the file */

/* Open `path` read-only. 0 and *out (owned: as_results_close), or -1 with one of
 * "cannot read results file '<path>': <strerror>", "'<path>' is not an HDF5 file",
 * "cannot open results file '<path>'". The file is not checked further: any HDF5 file opens. */
int as_results_open(const char *path, struct as_results_file **out, struct as_error *err);
/* Close the file and free the reader. NULL is a no-op. */
void as_results_close(struct as_results_file *r);
/* The path given to as_results_open; borrowed, valid until as_results_close. */
const char *as_results_path(const struct as_results_file *r);

/* 1 when root attribute `complete` is the number 1, else 0 (absent, malformed, another value). */
int as_results_is_complete(const struct as_results_file *r);
/* 1 when the file has the group /models (every results file, even one with no models), else 0. */
int as_results_has_models(const struct as_results_file *r);

/* ---- attributes of the root, a model, a stage group or a field (at: see struct as_results_obj);
 * an attribute of an object the file does not have counts as absent (0) */

/* A scalar string attribute, variable or fixed length, as a malloc'd C string in *out (owned by
 * the caller; NULL unless 1 is returned). */
int as_results_attr_str(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                        char **out, struct as_error *err);
/* A scalar integer or floating-point attribute, converted to int64. */
int as_results_attr_i64(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                        int64_t *out, struct as_error *err);
/* A numeric attribute, scalar or 1-D, as float64: *n gets its element count; at most cap elements
 * are stored in v (v may be NULL when cap is 0, to ask for the count). */
int as_results_attr_f64(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                        double *v, size_t cap, size_t *n, struct as_error *err);
/* The attribute names of the object, in creation order when it tracks it, else name order.
 * 0 and *out filled (release it), or -1 (the object does not exist or cannot be listed). */
int as_results_attr_names(const struct as_results_file *r, const struct as_results_obj *at,
                          struct as_results_list *out, struct as_error *err);

/* ---- models, stages, fields */

/* The model groups under /models, in creation (= config) order when the file tracks it, else in
 * name order; links that are not groups are left out. 0 and *out filled, or -1 with
 * "'<path>' has no /models group: not an attnstat results file" or "'<path>': cannot list /models". */
int as_results_models(const struct as_results_file *r, struct as_results_list *out, struct as_error *err);

struct as_results_model_info {
    int64_t n_layers;              /* attribute n_layers, >= 1 */
    int64_t n_heads;               /* attribute n_heads, >= 1 */
    int64_t seq_len;               /* attribute seq_len, 0 when absent */
};
/* The shape attributes of /models/<model>. 0, or -1 with "'<path>': cannot open group
 * /models/<model>", "'<path>': model '<model>' has no|a malformed attribute 'n_layers'|'n_heads'"
 * or "'<path>': model '<model>' has n_layers=<L> n_heads=<H>" (not both >= 1). */
int as_results_model_info(const struct as_results_file *r, const char *model, struct as_results_model_info *out,
                          struct as_error *err);
/* The stage groups of a model (its subgroups), in creation order when tracked, else name order.
 * 0 and *out filled, or -1 (no such model, cannot list). */
int as_results_stages(const struct as_results_file *r, const char *model, struct as_results_list *out,
                      struct as_error *err);
/* The fields of a stage group: its datasets that are not dimension scales, in creation (= schema)
 * order when tracked, else name order. 0 and *out filled, or -1 (no such stage, cannot list). */
int as_results_fields(const struct as_results_file *r, const char *model, const char *stage,
                      struct as_results_list *out, struct as_error *err);

/* What a field dataset holds. Dimension scales count as fields here (is_scale says so). */
struct as_results_field_info {
    enum as_ftype type;            /* AS_FTYPE_F64: a floating-point dataset, AS_FTYPE_I64: integer */
    int ndim;                      /* the dataset's rank (0 for a scalar); may exceed AS_RESULTS_MAX_DIMS */
    int64_t dims[AS_RESULTS_MAX_DIMS]; /* the first min(ndim, AS_RESULTS_MAX_DIMS) extents */
    int64_t count;                 /* elements in all: the product of every extent */
    /* per dimension, the name of the first dimension scale attached to it, "" when none (the
     * writer attaches AS_RESULTS_DIM_LAYER, AS_RESULTS_DIM_HEAD and stage scales such as "edge") */
    char dim_names[AS_RESULTS_MAX_DIMS][AS_RESULTS_DIM_NAME_MAX];
    int is_scale;                  /* 1: the dataset is itself a dimension scale */
    int has_fill;                  /* 1: the dataset has a user-defined fill value (elements never
                                    * written read as it; attnstat's own files have none) */
    double fill;                   /* that fill value as float64 when has_fill, else 0 */
};
/* The dataset /models/<model>/<stage>/<field>. 1 and *out filled; 0 when there is no such
 * dataset (missing model, stage or field, a group, a dangling link) or it is not numeric; -1 when
 * it cannot be inspected. */
int as_results_field_info(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                          struct as_results_field_info *out, struct as_error *err);
/* Read a whole field in C order, converted to float64 or int64 (integers read as float64 are
 * exact below 2^53). n is the element count of v and must equal the field's count. 0, or -1 (no
 * such numeric field, count mismatch, read error). */
int as_results_field_f64(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                         double *v, size_t n, struct as_error *err);
int as_results_field_i64(const struct as_results_file *r, const char *model, const char *stage, const char *field,
                         int64_t *v, size_t n, struct as_error *err);

/* ---- a stage group taken whole, for `run --resume` (pipeline/run/as_reuse.c) */

/* The kind of attribute `name` of `at`: AS_ATTR_STR (a string), AS_ATTR_I64 or AS_ATTR_F64 (a
 * scalar integer or float), AS_ATTR_F64VEC (a 1-D numeric list). 1, 0 absent, -1 another kind. */
int as_results_attr_kind(const struct as_results_file *r, const struct as_results_obj *at, const char *name,
                         enum as_attr_kind *kind, struct as_error *err);

/* What a stage group holds besides its datasets: the stage's attributes (without the key and the
 * summary), as they were written, and its summary-log lines. Owned; as_results_stage_copy_release. */
struct as_results_stage_copy {
    struct as_attr attrs[AS_STAGE_MAX_ATTRS];
    int n_attrs;
    char names[AS_STAGE_MAX_ATTRS][64]; /* storage of attrs[k].name */
    double *vecs[AS_STAGE_MAX_ATTRS];   /* storage of attrs[k].vec, owned */
    char *log;                          /* the summary lines, owned ("" when absent) */
};
void as_results_stage_copy_release(struct as_results_stage_copy *c);

/* Load /models/<model>/<stage> into the caller's buffers laid out by the schema (fields, n_fields):
 * rows (n_layers rows of as_schema_row_size bytes) and model_block (as_schema_model_size bytes),
 * bit for bit as written, and its attributes and summary into *copy. 1 loaded; 0 when the group
 * does not hold exactly that schema (a field missing, of another type or shape: then nothing is
 * to be reused); -1 read error. */
int as_results_load_stage(const struct as_results_file *r, const char *model, const char *stage,
                          const struct as_field *fields, int n_fields, int64_t n_layers, unsigned char *rows,
                          unsigned char *model_block, struct as_results_stage_copy *copy, struct as_error *err);

/* ---- the one serial update */

/* Record figures made from the closed results file at `path`: root attribute `figures` (variable-
 * length UTF-8, one name per line, not newline-terminated) becomes the names it held, then those
 * of `names` (newline-separated, a trailing newline allowed) it did not hold yet, in order. The
 * file must not be open anywhere (not even through an as_results_file). 0, or -1 with AS_ERR_IO
 * and one of "cannot open '<path>' read-write: figures not recorded in it", "cannot write
 * attribute 'figures' of '<path>'", "cannot close '<path>' after recording figures"; callers that
 * treat this as a warning print the message as it is. */
int as_results_record_figures(const char *path, const char *names, struct as_error *err);

#endif
