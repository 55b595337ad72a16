/* as_matrices.h: what the config adds to the results besides statistics: the T x T matrices of
 * figures.matrices (qk_mean and, when the model has one, qk_var at one layer and head), the
 * models' display labels and the --set overrides, so that `attnstat plot --style paper` remakes
 * every paper figure from the results file alone. */
#ifndef AS_RUN_AS_MATRICES_H
#define AS_RUN_AS_MATRICES_H

#include <mpi.h>

#include "as_config.h"
#include "as_error.h"
#include "as_results.h"

/* COLLECTIVE over comm: as_results_write_all(comm, cfg->output, run, models, n_models, err), with
 * the extras written too:
 *   - root attribute config_overrides: cfg->overrides (the --set KEY=VALUE lines), when any;
 *   - model attribute label: the label: of the config's model of that name, when given;
 *   - /models/<m>/matrices/qk_mean_<l>_<h> (T, T): for each figures.matrices entry whose model is
 *     among models and did not fail, read by rank 0 (the one writer) from the model's qk_mean;
 *     and qk_var_<l>_<h> when the model has a qk_var input (none, or unreadable, or of another
 *     shape: no variance, a note on stderr and in the mean's attribute `note`, not an error).
 *     An entry naming a model not among models (left out by --models or missing: skip) is
 *     ignored.
 * Errors, the same on every rank: a layer or head out of range is AS_ERR_CONFIG, a qk_mean that
 * cannot be read or is not (L, H, T, T) AS_ERR_INPUT, each naming the model; then nothing is
 * written. Otherwise as as_results_write_all. */
int as_matrices_write_results_all(MPI_Comm comm, const struct as_config *cfg, const struct as_results_run *run,
                                  const struct as_results_model *models, int n_models, struct as_error *err);

#endif
