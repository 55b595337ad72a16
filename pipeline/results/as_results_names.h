/* as_results_names.h: every name of the results file (README "Results layout"), in one place.
 *
 * The writer (as_results.c), the merge (as_merge.c), the reader (as_results_read.c) and every
 * program or test that reads a results file use these names; no other C file spells them.
 * Stage group and field names are not here: they are the stages' (ops->name and their schemas).
 *
 *   /                                 root attributes AS_RESULTS_ATTR_* (provenance, complete)
 *   /run/rank_busy_seconds, ...       per-rank load of the job (a merged file: /run/parts/<i>/)
 *   /models/<model>                   model attributes, dimension scales layer and head
 *   /models/<model>/<stage>/<field>   float64 or int64 datasets, attribute description
 *
 * All names are string literals (macros), so they can be concatenated and used in static
 * initializers: AS_RESULTS_ATTR_INPUT_PREFIX "qk_mean" is "input:qk_mean". */
#ifndef AS_RESULTS_AS_RESULTS_NAMES_H
#define AS_RESULTS_AS_RESULTS_NAMES_H

/* ---- root attributes */

#define AS_RESULTS_ATTR_TOOL "tool"                 /* string: the program, AS_RESULTS_TOOL_NAME */
#define AS_RESULTS_TOOL_NAME "attnstat"             /* the value of AS_RESULTS_ATTR_TOOL */
#define AS_RESULTS_ATTR_TOOL_VERSION "tool_version" /* string: as_version() of the writer */
#define AS_RESULTS_ATTR_GIT_COMMIT "git_commit"     /* string: as_git_describe() of the writer */
#define AS_RESULTS_ATTR_CONFIG "config"             /* string: the YAML text of the run's config */
#define AS_RESULTS_ATTR_CONFIG_PATH "config_path"   /* string: the config file's path as given */
#define AS_RESULTS_ATTR_COMMAND_LINE "command_line" /* string: argv joined by spaces */
#define AS_RESULTS_ATTR_MPI_SIZE "mpi_size"         /* int64: ranks of the job (merge: the largest part's) */
#define AS_RESULTS_ATTR_START_TIME "start_time"     /* string: UTC ISO 8601 start (merge: earliest part) */
#define AS_RESULTS_ATTR_END_TIME "end_time"         /* string: UTC ISO 8601 end (merge: latest part) */
#define AS_RESULTS_ATTR_COMPLETE "complete"         /* int64 1 only when every unit of every model was
                                                     * written; absent otherwise */
#define AS_RESULTS_ATTR_SWEEP_PART "sweep_part"     /* string: the --models selection of an array-mode
                                                     * part; absent for a whole run */
#define AS_RESULTS_ATTR_SWEEP_SKIPPED "sweep_skipped" /* string: sweep combinations left out
                                                       * (missing: skip); absent when none */
#define AS_RESULTS_ATTR_FIGURES "figures"           /* string: figure file names made from the file,
                                                     * one per line, not newline-terminated */
#define AS_RESULTS_ATTR_MERGED_FROM "merged_from"   /* string (merged files): the part files,
                                                     * newline-joined, in command-line order */
#define AS_RESULTS_ATTR_MERGE_TIME "merge_time"     /* string (merged files): UTC ISO 8601 of the merge */
#define AS_RESULTS_ATTR_UNITS_COMPUTED "units_computed" /* int64: (model, layer) units this run computed
                                                       * (a stage of them at least) */
#define AS_RESULTS_ATTR_UNITS_REUSED "units_reused" /* int64: units every stage of which came from the
                                                     * journal or the results file of an earlier run */
#define AS_RESULTS_ATTR_FAILED_MODELS "failed_models" /* string: the models that failed (on_error: skip),
                                                       * one per line, not newline-terminated; "" none */
#define AS_RESULTS_ATTR_CONFIG_OVERRIDES "config_overrides" /* string: the --set KEY=VALUE overrides
                                                     * applied to the config text, one per line, not
                                                     * newline-terminated; absent when none */
#define AS_RESULTS_ATTR_SUMMARY "summary"           /* string: a summary-log text; no attnstat version
                                                     * writes it, `attnstat summary` prints it if present */

/* ---- /run: the job's per-rank load */

#define AS_RESULTS_GROUP_RUN "run"                       /* group under the root */
#define AS_RESULTS_DSET_RANK_BUSY "rank_busy_seconds"    /* float64 (mpi_size,): seconds computing */
#define AS_RESULTS_DSET_RANK_BYTES "rank_bytes_read"     /* float64 (mpi_size,): input bytes read */
#define AS_RESULTS_DSET_RANK_UNITS "rank_units"          /* int64 (mpi_size,): units computed */
#define AS_RESULTS_DSET_RANK_READ_S "rank_read_seconds"   /* float64 (mpi_size,): of the busy time,
                                                          * seconds in input reads (or generating) */
#define AS_RESULTS_DSET_RANK_OPENS "rank_files_opened"   /* int64 (mpi_size,): input files each rank
                                                          * opened (tensors, digests) */
#define AS_RESULTS_GROUP_PARTS "parts"                   /* merged files: /run/parts/<i>/, part i's /run
                                                          * with the attributes below */
#define AS_RESULTS_ATTR_PART_FILE "file"                 /* string: the part's path as given to merge */
/* a part group also holds AS_RESULTS_ATTR_SWEEP_PART, _MPI_SIZE, _START_TIME, _END_TIME and
 * _COMMAND_LINE of that part */

/* ---- /models/<model> */

#define AS_RESULTS_GROUP_MODELS "models"            /* group under the root; one subgroup per model,
                                                     * in config order (creation order tracked) */
#define AS_RESULTS_ATTR_N_LAYERS "n_layers"         /* int64: layers of the model */
#define AS_RESULTS_ATTR_N_HEADS "n_heads"           /* int64: heads per layer */
#define AS_RESULTS_ATTR_SEQ_LEN "seq_len"           /* int64: sequence length T */
#define AS_RESULTS_ATTR_SOURCE "source"             /* string: the model's folder, or its synthetic spec */
#define AS_RESULTS_ATTR_MODEL_ID "model_id"         /* string: model id of a root: model (e.g. bigscience/bloom) */
#define AS_RESULTS_ATTR_MODEL_SEQ_LEN "model_seq_len" /* int64: the seq_len: key of a root: model */
#define AS_RESULTS_ATTR_DATASET "dataset"           /* string: dataset: key of a root: model */
#define AS_RESULTS_ATTR_STATUS "status"             /* string: AS_RESULTS_STATUS_OK, or _FAILED (on_error:
                                                     * skip): then the group has no datasets */
#define AS_RESULTS_STATUS_OK "ok"
#define AS_RESULTS_STATUS_FAILED "failed"
#define AS_RESULTS_ATTR_LABEL "label"               /* string: the model's label: (display name in
                                                     * legends); absent when not given */
#define AS_RESULTS_ATTR_ERROR "error"               /* string (failed models): the one-line message */
/* Per-input attributes: the prefix followed by the tensor name (e.g. "input:qk_mean"). */
#define AS_RESULTS_ATTR_INPUT_PREFIX "input:"       /* string: the tensor's file path or synthetic spec */
#define AS_RESULTS_ATTR_INPUT_DIGEST_PREFIX "input_digest:" /* string: "<digest> full|sampled size=N
                                                             * mtime_ns=N" of the input file */
#define AS_RESULTS_ATTR_INPUT_KEY_PREFIX "input_key:" /* string: the key inside a dict-like file; absent
                                                       * when the file holds one tensor */

/* ---- /models/<model>/<stage>: besides the stage's own attributes (its options, ...) */

#define AS_RESULTS_ATTR_KEY "key"                   /* string, 32 hex digits: the (model, stage) key of
                                                     * pipeline/plan, what determines these results;
                                                     * `run --resume` reuses a group whose key matches */
#define AS_RESULTS_ATTR_STAGE_SUMMARY "summary"     /* string: the summary-log lines of this stage on
                                                     * this model */

/* ---- /models/<model>/matrices: T x T slabs of the inputs stored for the attention-matrix figures
 * (config figures.matrices). Not a stage: as_results_stages lists it too, so callers that
 * take subgroups for stages skip this name. */

#define AS_RESULTS_GROUP_MATRICES "matrices"        /* group in a model group, when matrices were asked for */
#define AS_RESULTS_MATRIX_MEAN_PREFIX "qk_mean_"    /* float64 (T, T): qk_mean[layer, head], named
                                                     * qk_mean_<layer>_<head> */
#define AS_RESULTS_MATRIX_VAR_PREFIX "qk_var_"      /* float64 (T, T): qk_var[layer, head], when the
                                                     * model has a qk_var input */
#define AS_RESULTS_ATTR_MATRIX_LAYER "layer"        /* int64 on each matrix: its layer (0-based) */
#define AS_RESULTS_ATTR_MATRIX_HEAD "head"          /* int64 on each matrix: its head (0-based) */
#define AS_RESULTS_ATTR_MATRIX_NOTE "note"          /* string on a mean matrix without its variance:
                                                     * why (e.g. no qk_var input) */

/* ---- datasets and dimension scales */

#define AS_RESULTS_ATTR_DESCRIPTION "description"   /* string: what a dataset holds (every dataset) */
#define AS_RESULTS_DIM_LAYER "layer"                /* int64 (n_layers,) scale 0..L-1 in each model group;
                                                     * also its dataset name and dimension label */
#define AS_RESULTS_DIM_HEAD "head"                  /* int64 (n_heads,) scale 0..H-1 in each model group */
#define AS_RESULTS_DIM_INDEX "index"                /* the scale name of a field dimension its stage
                                                     * leaves unnamed */
/* Stage-specific scales (edge, bin, ...) live in the stage group, named after the dimension; the
 * dataset takes this suffix when a field of the stage has the dimension's name, and "_<length>"
 * when two lengths share a name. */
#define AS_RESULTS_SCALE_CLASH_SUFFIX "_index"
/* Attributes HDF5's dimension-scale API (H5DS) keeps on datasets and scales; attnstat never
 * writes them itself, the merge drops and rebuilds them when it copies a model. */
#define AS_RESULTS_H5DS_DIMENSION_LIST "DIMENSION_LIST" /* on a dataset: the scales of each dimension */
#define AS_RESULTS_H5DS_REFERENCE_LIST "REFERENCE_LIST" /* on a scale: the datasets attached to it */

#endif
