/* as_results.h: the parallel HDF5 results file.
 *
 * Layout (README "Results layout"):
 *   /                       attrs: tool_version, git_commit, config (text), config_path, command_line,
 *                                  mpi_size, start_time, end_time, complete (int64 1, only when every
 *                                  unit of every model was written)
 *   /run/{rank_busy_seconds, rank_bytes_read, rank_units}   (mpi_size,)
 *   /models/<name>          attrs: n_layers, n_heads, seq_len, source, input:<tensor>, ...
 *   /models/<name>/layer, head                      dimension scales (index values)
 *   /models/<name>/<stage>/<field>                  float64 / int64, attr `description`
 *   /models/<name>/<stage>/<dim>                    stage-specific dimension scales (edge, bin, ...)
 * Every name above is a macro of as_results_names.h; read a finished file with as_results_read.h
 * (serial, no MPI), which also records the figures drawn from it.
 * The file is written as OUTPUT.partial and renamed to OUTPUT once closed, so a killed job never
 * leaves a file at OUTPUT that looks finished. */
#ifndef AS_PIPELINE_AS_RESULTS_H
#define AS_PIPELINE_AS_RESULTS_H

#include <mpi.h>
#include <stdint.h>

#include "as_error.h"
#include "as_results_names.h"
#include "as_stage.h"

struct as_results_stage {
    const char *name;
    const struct as_field *fields;
    int n_fields;
    int64_t n_layers;
    const unsigned char *rows;     /* n_layers rows, complete on every rank */
    const unsigned char *model_block;
    const struct as_attr *attrs;
    int n_attrs;
    const char *key;               /* AS_RESULTS_ATTR_KEY, or NULL */
    const char *summary;           /* AS_RESULTS_ATTR_STAGE_SUMMARY, or NULL */
};

/* One T x T matrix of a model's inputs (figures.matrices), written under
 * /models/<name>/matrices/. Borrowed. */
struct as_results_matrix {
    int64_t layer, head, T;
    const double *mean;            /* (T, T) qk_mean[layer, head] */
    const double *var;             /* (T, T) qk_var[layer, head], or NULL */
    const char *note;              /* why var is NULL, or NULL */
};

struct as_results_model {
    const char *name;
    int64_t n_layers, n_heads, seq_len;
    const int *row_owner;          /* (n_layers,) rank that writes each row */
    const struct as_attr *attrs;   /* group attributes beyond the shape */
    int n_attrs;
    const struct as_results_stage *stages;
    int n_stages;
    const char *error;             /* NULL: status ok; else the model failed (no scales, no stages) */
};

struct as_results_run {
    const char *config_text;
    const char *config_path;
    const char *command_line;
    const char *start_time;
    const char *end_time;
    int mpi_size;
    const double *rank_busy;       /* (mpi_size,) */
    const double *rank_bytes;      /* (mpi_size,) */
    const int64_t *rank_units;     /* (mpi_size,) */
    int complete;
    const char *sweep_part;        /* --models selection of an array-mode part, or "" */
    const char *sweep_skipped;     /* sweep combinations left out (missing: skip), or "" */
    int64_t units_computed, units_reused;
    const char *failed_models;     /* newline-separated, or "" */
    const int64_t *rank_opens;     /* (mpi_size,) */
    const double *rank_read_s;     /* (mpi_size,) seconds each rank spent reading (or generating) inputs */
};

/* What the figures and the command line add to a run's results (pipeline/run/as_matrices.h).
 * Kept apart from the structs above, which callers fill positionally. Borrowed. */
struct as_results_model_extra {
    const char *label;             /* AS_RESULTS_ATTR_LABEL, or NULL/"" for none */
    const struct as_results_matrix *matrices; /* n_matrices, or NULL */
    int n_matrices;
};
struct as_results_extra {
    const char *config_overrides;  /* AS_RESULTS_ATTR_CONFIG_OVERRIDES, or NULL/"" for none */
    const struct as_results_model_extra *models; /* (n_models,) as the models passed, or NULL */
};

/* COLLECTIVE over comm: rank 0 creates OUTPUT.partial, writes everything, closes it and renames it
 * to OUTPUT; the other ranks wait for its status. Every rank passes identical metadata and rows
 * (complete after the gather). The results are small (L x H numbers per field), so one writer
 * costs nothing, and a write that fails (ENOSPC, EDQUOT, EIO, EFBIG) comes back as an error on
 * every rank instead of leaving ranks in HDF5's collective metadata flush; the partial file is
 * then removed. Errors name the file and strerror. complete = 1 only when run->complete. */
int as_results_write_all(MPI_Comm comm, const char *path, const struct as_results_run *run,
                         const struct as_results_model *models, int n_models, struct as_error *err);
/* The same, with the extras written too (extra may be NULL; only rank 0's are read). */
int as_results_write_extra_all(MPI_Comm comm, const char *path, const struct as_results_run *run,
                               const struct as_results_model *models, int n_models,
                               const struct as_results_extra *extra, struct as_error *err);

#endif
