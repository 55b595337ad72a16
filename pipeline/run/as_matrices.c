/* as_matrices.c: the matrices, labels and overrides the figures need in the results file
 * (contract in as_matrices.h). */
#include "as_matrices.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_mpi.h"
#include "as_reader.h"
#include "as_util.h"

#define MATRIX_MEAN "qk_mean"
#define MATRIX_VAR "qk_var"

/* The matrices read for one run and what points into them. */
struct as_matrices {
    struct as_results_matrix *v;   /* n, grouped by model in the order of the models */
    int n;
    struct as_results_model_extra *models; /* (n_models,) */
    double **bufs;                 /* n_bufs owned (T, T) buffers that v points into */
    int n_bufs;
    char **notes;                  /* n_notes owned strings that v points into */
    int n_notes;
};

/* Read tensor `name` [layer, head] of model m as a (T, T) float64 buffer (owned, *out).
 * 1 read, 0 the model has no such tensor (note set), -1 error. */
static int read_slab(const struct as_config *cfg, const struct as_model_cfg *m, const char *name, int64_t layer,
                     int64_t head, int64_t want_T, double **out, int64_t *T_out, char *note, size_t note_n,
                     struct as_error *err)
{
    char path[AS_PATH_MAX], key[256];
    const struct as_reader_ops *ops;
    struct as_error miss = { AS_OK, "" };
    *out = NULL;
    if (as_config_tensor(cfg, m, name, path, sizeof path, key, sizeof key, &ops, &miss)) {
        if (want_T == 0) { /* the mean is required */
            *err = miss;
            return -1;
        }
        snprintf(note, note_n, "no %s input (%s): no variance figure", name, miss.msg);
        return 0;
    }
    struct as_tensor_file tf;
    if (as_tensor_file_open(&tf, ops, path, key[0] ? key : NULL, want_T ? &miss : err)) {
        if (want_T == 0)
            return as_error_prefix(err, "figures.matrices: model '%s': ", m->name);
        snprintf(note, note_n, "%s input '%s' cannot be read (%s): no variance figure", name, path, miss.msg);
        return 0;
    }
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    int rc = -1;
    if (ti->ndim != 4 || ti->shape[2] != ti->shape[3] || ti->shape[2] < 1 || (want_T && ti->shape[2] != want_T)) {
        char shape[128];
        as_shape_str(ti, shape, sizeof shape);
        if (want_T) {
            snprintf(note, note_n, "%s '%s' is %s, not (L, H, %lld, %lld): no variance figure", name, path, shape,
                     (long long)want_T, (long long)want_T);
            rc = 0;
        } else {
            as_error_set(err, AS_ERR_INPUT, "figures.matrices: model '%s': %s '%s' is %s, not (L, H, T, T)", m->name,
                         name, path, shape);
        }
        goto out;
    }
    if (layer >= ti->shape[0] || head >= ti->shape[1]) {
        as_error_set(err, AS_ERR_CONFIG, "figures.matrices: model '%s' has %lld layers and %lld heads: no layer "
                     "%lld head %lld", m->name, (long long)ti->shape[0], (long long)ti->shape[1], (long long)layer,
                     (long long)head);
        goto out;
    }
    int64_t T = ti->shape[2];
    double *v = as_xcalloc((size_t)T * (size_t)T, sizeof *v);
    int64_t start[4] = { layer, head, 0, 0 }, count[4] = { 1, 1, T, T };
    if (as_tensor_file_read(&tf, start, count, AS_DTYPE_F64, v, err)) {
        free(v);
        as_error_prefix(err, "figures.matrices: model '%s': ", m->name);
        goto out;
    }
    *out = v;
    *T_out = T;
    rc = 1;
out:
    as_tensor_file_close(&tf);
    return rc;
}

static void keep_buf(struct as_matrices *mx, double *b)
{
    mx->bufs = as_xrealloc(mx->bufs, (size_t)mx->n_bufs + 1, sizeof *mx->bufs);
    mx->bufs[mx->n_bufs++] = b;
}

/* Rank 0: every matrix asked for, model by model. */
static int collect(const struct as_config *cfg, const struct as_results_model *models, int n_models,
                   struct as_matrices *mx, struct as_error *err)
{
    mx->v = as_xcalloc(cfg->n_matrices ? (size_t)cfg->n_matrices : 1, sizeof *mx->v);
    for (int i = 0; i < n_models; i++) {
        const struct as_model_cfg *m = as_config_model(cfg, models[i].name);
        if (!m || models[i].error)
            continue;
        int first = mx->n;
        for (int k = 0; k < cfg->n_matrices; k++) {
            const struct as_matrix_req *q = &cfg->matrices[k];
            int dup = 0;
            for (int j = 0; j < k; j++) /* asked twice: stored once */
                dup |= !strcmp(cfg->matrices[j].model, q->model) && cfg->matrices[j].layer == q->layer &&
                       cfg->matrices[j].head == q->head;
            if (strcmp(q->model, m->name) || dup)
                continue;
            struct as_results_matrix *x = &mx->v[mx->n];
            double *mean = NULL, *var = NULL;
            int64_t T = 0, T2 = 0;
            char note[600] = "";
            if (read_slab(cfg, m, MATRIX_MEAN, q->layer, q->head, 0, &mean, &T, note, sizeof note, err) < 0)
                return -1;
            keep_buf(mx, mean);
            int r = read_slab(cfg, m, MATRIX_VAR, q->layer, q->head, T, &var, &T2, note, sizeof note, err);
            if (r < 0)
                return -1;
            *x = (struct as_results_matrix){ q->layer, q->head, T, mean, NULL, NULL };
            if (r > 0) {
                keep_buf(mx, var);
                x->var = var;
            } else {
                mx->notes = as_xrealloc(mx->notes, (size_t)mx->n_notes + 1, sizeof *mx->notes);
                x->note = mx->notes[mx->n_notes++] = as_xstrdup(note);
                fprintf(stderr, "attnstat: note: model '%s' layer %lld head %lld: %s\n", m->name,
                        (long long)q->layer, (long long)q->head, note);
            }
            mx->n++;
        }
        if (mx->n > first) {
            mx->models[i].matrices = &mx->v[first];
            mx->models[i].n_matrices = mx->n - first;
        }
    }
    return 0;
}

static void matrices_release(struct as_matrices *mx)
{
    for (int i = 0; i < mx->n_bufs; i++)
        free(mx->bufs[i]);
    free(mx->bufs);
    for (int i = 0; i < mx->n_notes; i++)
        free(mx->notes[i]);
    free(mx->notes);
    free(mx->v);
    free(mx->models);
    memset(mx, 0, sizeof *mx);
}

int as_matrices_write_results_all(MPI_Comm comm, const struct as_config *cfg, const struct as_results_run *run,
                                  const struct as_results_model *models, int n_models, struct as_error *err)
{
    struct as_matrices mx;
    memset(&mx, 0, sizeof mx);
    mx.models = as_xcalloc(n_models > 0 ? (size_t)n_models : 1, sizeof *mx.models);
    for (int i = 0; i < n_models; i++) {
        const struct as_model_cfg *m = as_config_model(cfg, models[i].name);
        mx.models[i].label = m && m->label[0] ? m->label : NULL;
    }
    int rc = -1;
    if (as_mpi_rank(comm) == 0 && cfg->n_matrices > 0)
        collect(cfg, models, n_models, &mx, err); /* err says how it went */
    if (!as_mpi_agree_all(comm, err)) {
        const struct as_results_extra extra = { as_strbuf_str(&cfg->overrides), mx.models };
        rc = as_results_write_extra_all(comm, cfg->output, run, models, n_models, &extra, err);
    }
    matrices_release(&mx);
    return rc;
}
