/* as_stage.h: the interface every statistic (stage) implements, and what the pipeline hands it.
 *
 * A stage is a const vtable (struct as_stage_ops) listed in pipeline/stage_registry.c. The
 * pipeline calls, per model:
 *   configure (once per run)  -> shape (validates inputs, sizes units)  -> schema (datasets)
 *   -> [prepass rounds: collective, integer counters only]  -> run (once per layer = unit, on
 *   whichever rank the plan gives it)  -> finalize (on every rank, from all the layers' rows).
 * Stages never include mpi.h or hdf5.h and never call exit(): they read inputs through the
 * as_tensor_file handles of the unit and write only into the caller's buffers. Everything they
 * produce must be a deterministic function of the inputs (no dependence on rank or thread count).
 *
 * Results layout: a stage's datasets go to /models/<model>/<stage name>/<field name>. Fields
 * marked per_layer have shape (n_layers, dims...) and are filled one row per unit by run();
 * the others have shape (dims...) and are filled by finalize(). Every element is 8 bytes (float64
 * or int64), fields are packed in schema order. Stages reach them through struct as_schema's
 * typed accessors (as_schema_f64/as_schema_i64), never by byte arithmetic; they record their
 * options with as_stage_out_options. pipeline/stage/as_exec.h runs a stage on one model serially.
 *
 * Figures: `attnstat plot` draws each field from the results file by its dimension names:
 * (layer, head) fields as heatmaps, (layer,) fields as per-layer lines across models; a stage
 * lists the fields worth a figure in its ops->figures (NULL-terminated names). */
#ifndef AS_PIPELINE_AS_STAGE_H
#define AS_PIPELINE_AS_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "as_reader.h"
#include "as_util.h"
#include "as_yaml.h"

#define AS_STAGE_MAX_INPUTS 4
#define AS_STAGE_MAX_FIELDS 24
#define AS_STAGE_MAX_ATTRS 16
#define AS_FIELD_MAX_DIMS 3

enum as_ftype { AS_FTYPE_F64 = 0, AS_FTYPE_I64, AS_FTYPE_COUNT };

struct as_field {
    const char *name;              /* dataset name */
    const char *description;       /* stored as the dataset's `description` attribute */
    enum as_ftype type;
    int per_layer;                 /* 1: shape (n_layers, dims...), filled by run() */
    int ndim;                      /* dims beyond the layer dim (0 for a (n_layers,) field) */
    int64_t dims[AS_FIELD_MAX_DIMS];
    const char *dim_names[AS_FIELD_MAX_DIMS]; /* "head", "edge", "bin", ... */
};

/* Sizes a stage derives from its inputs in shape(). */
struct as_stage_shape {
    int64_t n_layers;              /* units of this model for this stage */
    int64_t n_heads;
    int64_t seq_len;
    double unit_cost;              /* relative cost of one unit (about: elements touched) */
    int64_t unit_bytes;            /* input bytes one unit reads */
    /* Units finer than a layer (stages with run_part; 0 phases: a layer is one unit). A layer's
     * work is n_phases phases of parts[f] parts each, all parts of a phase about equally costly
     * (phase_cost[f] for the whole phase of one layer). Part p of phase f writes the bytes
     * [off(p), off(p+1)) (ops->part_offset) of the phase's layer buffer of phase_bytes[f] bytes;
     * phase 1 reads the whole phase-0 buffer of its layer; combine() makes the row from the last
     * phase's buffer. Records depend on the part alone, never on which parts a unit groups, so a
     * layer split in any way gives the row of the whole layer bit for bit. */
    int n_phases;                  /* 0, 1 or 2 */
    int64_t parts[2];
    double phase_cost[2];
    size_t phase_bytes[2];
};

/* One work unit, as run() and prepass() see it. */
struct as_unit {
    const char *model;             /* model name */
    int64_t layer;                 /* 0-based */
    const struct as_stage_shape *shape;
    struct as_tensor_file *in[AS_STAGE_MAX_INPUTS];   /* the stage's inputs, in inputs() order */
    /* stages with run_part: the parts [part0, part1) of phase 0 this unit covers (prepass and
     * run_part; [0, parts[0]) for a whole layer), or of `phase` in run_part */
    int phase;
    int64_t part0, part1;
    /* A slot the stage may use to keep data on this rank from the prepass to run() of the same
     * model (e.g. a layer it already read). Never part of the results' inputs beyond what reading
     * the file again would give. Freed with ops->scratch_release after the last unit. */
    void **scratch;
};

enum as_attr_kind { AS_ATTR_F64, AS_ATTR_I64, AS_ATTR_STR, AS_ATTR_F64VEC, AS_ATTR_KIND_COUNT };

struct as_attr {
    const char *name;
    enum as_attr_kind kind;
    double f64;
    int64_t i64;
    char str[1024];
    const double *vec;             /* borrowed from cfg or model state; valid until release */
    int64_t n;
};

/* What finalize() fills: per-model fields (packed, sized by the schema), group attributes and
 * summary-log lines (each ends with '\n'). */
struct as_stage_out {
    unsigned char *model_fields;   /* caller-allocated */
    struct as_attr attrs[AS_STAGE_MAX_ATTRS];
    int n_attrs;
    struct as_strbuf *log;
};

struct as_stage_ops {
    const char *name;              /* YAML key under stages: and HDF5 group name */
    /* Parse the stage's options (node is its YAML map, or NULL for defaults). *cfg owned by the
     * caller, released with release(). */
    int (*configure)(void **cfg, const struct as_ynode *node, struct as_error *err);
    void (*release)(void *cfg);
    /* Names of the tensors the stage reads (e.g. "qk_mean"), in the order of unit->in[]. */
    int (*inputs)(const void *cfg, const char **names);
    /* Validate the inputs' shapes and dtypes (info[i] for inputs()[i]) and size the units. On
     * entry out->n_heads holds the model's head count when something knows it (the model's
     * `heads:` key, a synthetic spec, or an earlier stage's input), else 0: a stage whose inputs
     * do not show the heads (Q/K/V activations) uses it. */
    int (*shape)(const void *cfg, const struct as_tensor_info *const *info, struct as_stage_shape *out,
                 struct as_error *err);
    /* The datasets; returns how many (<= AS_STAGE_MAX_FIELDS). */
    int (*schema)(const void *cfg, const struct as_stage_shape *sh, struct as_field *fields);
    /* (optional) bytes of the per-model state the prepass builds and run/finalize read. */
    size_t (*state_size)(const void *cfg, const struct as_stage_shape *sh);
    /* (optional) set up the state before the prepass (identically on every rank), and free what
     * it allocated. The state is zeroed by the pipeline before state_init. */
    int (*state_init)(const void *cfg, void *state, const struct as_stage_shape *sh,
                      const struct as_tensor_info *const *info, struct as_error *err);
    void (*state_release)(const void *cfg, void *state);
    /* (optional) prepass: rounds 0, 1, ... until prepass_reduce sets *more = 0. In each round
     * every unit adds into `acc` (prepass_count() counters, zeroed by the caller); the pipeline
     * sums acc over all units of the model on all ranks (integers: order-free, so exact) and
     * hands the sum to prepass_reduce, which updates the state on every rank alike. */
    size_t (*prepass_count)(const void *cfg, const void *state, int round);
    int (*prepass)(const void *cfg, const void *state, int round, struct as_unit *u, uint64_t *acc,
                   struct as_error *err);
    int (*prepass_reduce)(const void *cfg, void *state, int round, const uint64_t *sum, int *more,
                          struct as_error *err);
    /* (optional) free what the stage left in a unit's scratch slot. */
    void (*scratch_release)(const void *cfg, void *scratch);
    /* Compute one layer: write the row of every per_layer field, packed in schema order. */
    int (*run)(const void *cfg, const void *state, struct as_unit *u, unsigned char *row,
               struct as_error *err);
    /* (optional, with part_offset and combine, instead of run) Units finer than a layer (see
     * as_stage_shape.n_phases): compute parts [u->part0, u->part1) of phase u->phase of u->layer
     * into out, which is the bytes [off(part0), off(part1)) of that phase's layer buffer; prev is
     * the whole phase-0 buffer of the layer in phase 1, NULL in phase 0. */
    int (*run_part)(const void *cfg, const void *state, struct as_unit *u, const unsigned char *prev,
                    unsigned char *out, struct as_error *err);
    /* Byte offset of part p (0 <= p <= parts[phase]) in the phase's layer buffer: increasing,
     * off(0) = 0, off(parts) = phase_bytes. */
    size_t (*part_offset)(const void *cfg, const struct as_stage_shape *sh, int phase, int64_t p);
    /* The row of `layer` from its last phase's buffer (phase_bytes[n_phases - 1] bytes). */
    int (*combine)(const void *cfg, const void *state, const struct as_stage_shape *sh, int64_t layer,
                   const unsigned char *last, unsigned char *row, struct as_error *err);
    /* From all rows (n_layers rows, layer order), fill per-model fields, attributes, log lines. */
    int (*finalize)(const void *cfg, const void *state, const char *model, const struct as_stage_shape *sh,
                    const unsigned char *rows, struct as_stage_out *out, struct as_error *err);
    const char *const *figures;    /* (optional) fields worth a figure; NULL-terminated */
};

/* ---- field accessors
 *
 * A schema with its byte layout, built once from ops->schema(): stages address their fields
 * through it instead of computing offsets. The accessors check the field index and its type
 * (AS_ASSERT: a wrong type or index is a bug) and return a pointer to the field's first element
 * inside `base`: a row (per_layer fields) or the model block (the others). Rows and the model
 * block are 8-byte aligned (calloc), and every offset is a multiple of 8. */
struct as_schema {
    struct as_field fields[AS_STAGE_MAX_FIELDS];
    int n;
    size_t offset[AS_STAGE_MAX_FIELDS]; /* of field k in its row or in the model block */
    size_t row_size;               /* bytes of one per-layer row */
    size_t model_size;             /* bytes of the per-model block */
};

/* From n fields (copied). */
void as_schema_init(struct as_schema *s, const struct as_field *f, int n);
/* ops->schema(cfg, sh) and its layout: what the pipeline allocates for this stage and model. */
void as_schema_of(struct as_schema *s, const struct as_stage_ops *ops, const void *cfg,
                  const struct as_stage_shape *sh);
/* Index of the field called `name`, or -1. */
int as_schema_find(const struct as_schema *s, const char *name);
/* Row `layer` of a (n_layers, row_size) buffer. */
unsigned char *as_schema_row(const struct as_schema *s, unsigned char *rows, int64_t layer);
const unsigned char *as_schema_row_const(const struct as_schema *s, const unsigned char *rows, int64_t layer);
/* Field k of a row or of the model block; borrowed from base. */
double *as_schema_f64(const struct as_schema *s, unsigned char *base, int k);
int64_t *as_schema_i64(const struct as_schema *s, unsigned char *base, int k);
const double *as_schema_f64_const(const struct as_schema *s, const unsigned char *base, int k);
const int64_t *as_schema_i64_const(const struct as_schema *s, const unsigned char *base, int k);

/* ---- attributes of /models/<m>/<stage> (finalize fills them)
 *
 * Each call appends one attribute to out (AS_ASSERT: at most AS_STAGE_MAX_ATTRS, names
 * unique). `name` is borrowed (a literal or cfg-owned, valid until the stage's release); the
 * vector of as_stage_out_vec too; a string is copied (at most 1023 bytes). */
void as_stage_out_f64(struct as_stage_out *out, const char *name, double v);
void as_stage_out_i64(struct as_stage_out *out, const char *name, int64_t v);
void as_stage_out_str(struct as_stage_out *out, const char *name, const char *v);
void as_stage_out_vec(struct as_stage_out *out, const char *name, const double *v, int64_t n);

/* ---- stage options: one table per stage describes every option, its default and where the
 * configured value lives in the stage's cfg struct. as_stage_options_parse reads the entries
 * marked `parse` (top-level scalars); the stage parses the others itself (lists, maps, names it
 * validates). as_stage_out_options records every entry as an attribute of the stage's group
 * with its effective value (after defaults), so results files say how they were made.
 * Attribute names must differ from the group's dataset names (attr gives another name). */
enum as_opt_type {
    AS_OPT_F64 = 0,                /* double -> F64 attribute */
    AS_OPT_I64,                    /* int64_t -> I64 */
    AS_OPT_INT,                    /* int -> I64 */
    AS_OPT_U64,                    /* uint64_t (<= INT64_MAX) -> I64 */
    AS_OPT_BOOL,                   /* int 0/1 -> I64 */
    AS_OPT_ENUM,                   /* int index into choices -> STR names[index] */
    AS_OPT_STR,                    /* char array -> STR */
    AS_OPT_STRP,                   /* char * (NULL: not given) -> STR ("" when NULL) */
    AS_OPT_F64VEC,                 /* double array of n elements -> F64VEC */
    AS_OPT_TYPE_COUNT
};

struct as_stage_option {
    const char *key;               /* YAML key, "map.key" for a key of a nested map; NULL ends a table */
    const char *attr;              /* attribute name; NULL: key */
    enum as_opt_type type;
    size_t offset;                 /* offsetof(the stage's cfg struct, the value) */
    int parse;                     /* 1: as_stage_options_parse reads it (top-level keys only) */
    double f64_default;            /* AS_OPT_F64 */
    int64_t i64_default, lo, hi;   /* AS_OPT_I64/INT/U64/BOOL/ENUM (default, and range when lo < hi) */
    const char *const *choices;    /* AS_OPT_ENUM: NULL-terminated names, for parsing */
    const char *const *names;      /* AS_OPT_ENUM: attribute text per index; NULL: choices */
    int64_t n;                     /* AS_OPT_F64VEC: elements */
};

/* Check node's keys (the table's top-level keys plus `extra_keys`, NULL-terminated or NULL) and
 * read every `parse` entry into cfg (defaults when absent). `what` names the section
 * ("stages.histsim") in messages. node NULL: defaults. */
int as_stage_options_parse(const struct as_stage_option *tab, const struct as_ynode *node, const char *what,
                           const char *const *extra_keys, void *cfg, struct as_error *err);
/* Record every entry of tab as an attribute of out, values read from cfg. */
void as_stage_out_options(struct as_stage_out *out, const struct as_stage_option *tab, const void *cfg);

/* ---- config warnings (e.g. a deprecated option), from configure():
 * "attnstat: warning: FILE:LINE:COL: <message>" (position of `at`, which may be NULL), handed to
 * the sink set by as_stage_set_warn (default: a line on stderr, printed only where the launcher's
 * rank variable OMPI_COMM_WORLD_RANK, PMIX_RANK or PMI_RANK is unset or 0, so an MPI run prints
 * it once). as_stage_set_warn(NULL, NULL) silences them (a driver that knows its rank can do so
 * on every rank but 0). */
void as_stage_warn(const struct as_ynode *at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void as_stage_set_warn(void (*fn)(void *ctx, const char *line), void *ctx);

/* Bytes of one per-layer row and of the per-model block, from a schema. */
size_t as_schema_row_size(const struct as_field *f, int n);
size_t as_schema_model_size(const struct as_field *f, int n);
/* Byte offset of field k inside its row (per_layer) or block (per-model). */
size_t as_schema_offset(const struct as_field *f, int n, int k);
int64_t as_field_count(const struct as_field *f); /* elements per row (or of the block field) */

/* Summary-log line of a (layer, head) statistic as the notebooks print it:
 * "<model> <stage> <name> | min=%.4f max=%.4f mean=%.4f std=%.4f" (population std). */
void as_log_stats(struct as_strbuf *log, const char *model, const char *stage, const char *name,
                  const double *v, size_t n, size_t stride);
/* The same over a (rows, cols) block whose rows are row_stride doubles apart. */
void as_log_stats_rows(struct as_strbuf *log, const char *model, const char *stage, const char *name,
                       const double *v, size_t rows, size_t cols, size_t row_stride);

#endif
