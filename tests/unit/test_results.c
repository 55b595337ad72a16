#undef NDEBUG
#define _GNU_SOURCE
/* test_results.c: the results file's names and its serial reader (pipeline/results/): the
 * fixtures tests/fixtures/results/small.h5 and small_incomplete.h5 (tests/gen/
 * make_results_fixture.py) read through as_results_read.h, a file written by as_results_write_all
 * (MPI singleton) read back name by name, and the `figures` attribute as_results_record_figures
 * keeps. Runs from the repository root. */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "as_results.h"
#include "as_results_read.h"
#include "as_test.h"

#define FIXTURE_DIR "tests/fixtures/results"
#define SMALL FIXTURE_DIR "/small.h5"
#define INCOMPLETE FIXTURE_DIR "/small_incomplete.h5"

static char tmp[256];              /* this run's scratch directory */

static int list_is(const struct as_results_list *l, const char *const *want, int n)
{
    if (l->n != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(l->v[i], want[i]))
            return 0;
    return 1;
}

static void print_list(const char *what, const struct as_results_list *l)
{
    fprintf(stderr, "  %s:", what);
    for (int i = 0; i < l->n; i++)
        fprintf(stderr, " %s", l->v[i]);
    fprintf(stderr, "\n");
}

static int has(const struct as_results_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], name))
            return 1;
    return 0;
}

/* ---- the fixtures */

static void test_results__open_errors(void)
{
    struct as_results_file *rf = NULL;
    struct as_error err = { AS_OK, "" };
    CHECK(as_results_open(FIXTURE_DIR "/missing.h5", &rf, &err) == -1 && rf == NULL);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "cannot read results file '" FIXTURE_DIR "/missing.h5'"),
              "%s", err.msg);
    err.status = AS_OK;
    CHECK(as_results_open("tests/fixtures/README.md", &rf, &err) == -1 && rf == NULL);
    CHECK_MSG(err.status == AS_ERR_INPUT && !strcmp(err.msg, "'tests/fixtures/README.md' is not an HDF5 file"), "%s",
              err.msg);
    as_results_close(NULL);   /* a no-op */
    as_results_list_release(NULL);
}

static void test_results__root(void)
{
    struct as_results_file *rf = NULL, *ri = NULL;
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_results_open(SMALL, &rf, &err) == 0, "%s", err.msg);
    CHECK_MSG(as_results_open(INCOMPLETE, &ri, &err) == 0, "%s", err.msg);
    if (!rf || !ri)
        return;
    CHECK(!strcmp(as_results_path(rf), SMALL));
    CHECK(as_results_is_complete(rf) == 1);
    CHECK(as_results_is_complete(ri) == 0);
    CHECK(as_results_has_models(rf) && as_results_has_models(ri));

    char *s = NULL;
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_TOOL_VERSION, &s, &err) == 1 && s &&
          !strcmp(s, "attnstat 0.1.0 (results fixture)"));
    free(s);
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_CONFIG, &s, &err) == 1 && s && !strncmp(s, "models:\n", 8));
    free(s);
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_GIT_COMMIT, &s, &err) == 0 && s == NULL);
    int64_t v = 0;
    CHECK(as_results_attr_i64(rf, NULL, AS_RESULTS_ATTR_COMPLETE, &v, &err) == 1 && v == 1);
    CHECK(as_results_attr_i64(ri, NULL, AS_RESULTS_ATTR_COMPLETE, &v, &err) == 0);
    /* the wrong kind is malformed, not absent */
    err.status = AS_OK;
    CHECK(as_results_attr_i64(rf, NULL, AS_RESULTS_ATTR_CONFIG, &v, &err) == -1 && err.status == AS_ERR_INPUT);
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_COMPLETE, &s, &err) == -1 && s == NULL);

    struct as_results_list names = AS_RESULTS_LIST_INIT;
    CHECK_MSG(as_results_attr_names(rf, NULL, &names, &err) == 0, "%s", err.msg);
    CHECK(names.n == 3 && has(&names, AS_RESULTS_ATTR_COMPLETE) && has(&names, AS_RESULTS_ATTR_CONFIG) &&
          has(&names, AS_RESULTS_ATTR_TOOL_VERSION));
    as_results_list_release(&names);
    CHECK(names.v == NULL && names.n == 0);
    as_results_close(rf);
    as_results_close(ri);
}

static void test_results__models(void)
{
    struct as_results_file *rf = NULL;
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_results_open(SMALL, &rf, &err) == 0, "%s", err.msg);
    if (!rf)
        return;
    struct as_results_list l = AS_RESULTS_LIST_INIT;
    static const char *const models[] = { "tiny", "synth-b" };   /* creation order, not name order */
    CHECK(as_results_models(rf, &l, &err) == 0 && list_is(&l, models, 2));
    as_results_list_release(&l);

    struct as_results_model_info mi;
    CHECK(as_results_model_info(rf, "tiny", &mi, &err) == 0 && mi.n_layers == 3 && mi.n_heads == 4 &&
          mi.seq_len == 24);
    CHECK(as_results_model_info(rf, "synth-b", &mi, &err) == 0 && mi.n_layers == 8 && mi.n_heads == 6 &&
          mi.seq_len == 32);
    CHECK(as_results_model_info(rf, "nope", &mi, &err) == -1);
    CHECK_MSG(!strcmp(err.msg, "'" SMALL "': cannot open group /" AS_RESULTS_GROUP_MODELS "/nope"), "%s", err.msg);

    const struct as_results_obj tiny = { "tiny", NULL, NULL };
    char *s = NULL;
    CHECK(as_results_attr_str(rf, &tiny, AS_RESULTS_ATTR_INPUT_PREFIX "qk_mean", &s, &err) == 1 && s &&
          !strcmp(s, "tests/fixtures/tiny/qk_mean.npy"));
    free(s);
    CHECK(as_results_attr_str(rf, &tiny, AS_RESULTS_ATTR_INPUT_KEY_PREFIX "qk_mean", &s, &err) == 0);
    int64_t v = 0;
    CHECK(as_results_attr_i64(rf, &tiny, AS_RESULTS_ATTR_N_LAYERS, &v, &err) == 1 && v == 3);
    const struct as_results_obj nope = { "nope", NULL, NULL };
    CHECK(as_results_attr_i64(rf, &nope, AS_RESULTS_ATTR_N_LAYERS, &v, &err) == 0);   /* no such model: absent */

    /* the fixture's model groups do not track creation order: name order; scales are not stages */
    static const char *const stages[] = { "activations", "histsim", "jacobian", "monotonicity", "patterns" };
    CHECK(as_results_stages(rf, "tiny", &l, &err) == 0 && list_is(&l, stages, 5));
    if (!list_is(&l, stages, 5))
        print_list("stages", &l);
    as_results_list_release(&l);
    static const char *const fields[] = { "bins", "js_similarity", "mean_diag", "mean_lower", "within_diag",
                                          "within_lower" };   /* the scale _edge200 left out */
    CHECK(as_results_fields(rf, "tiny", "histsim", &l, &err) == 0 && list_is(&l, fields, 6));
    if (!list_is(&l, fields, 6))
        print_list("fields", &l);
    as_results_list_release(&l);
    CHECK(as_results_fields(rf, "tiny", "nope", &l, &err) == -1 && l.n == 0);
    CHECK(as_results_stages(rf, "nope", &l, &err) == -1 && l.n == 0);
    as_results_close(rf);
}

static void test_results__fields(void)
{
    struct as_results_file *rf = NULL, *ri = NULL;
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_results_open(SMALL, &rf, &err) == 0, "%s", err.msg);
    CHECK_MSG(as_results_open(INCOMPLETE, &ri, &err) == 0, "%s", err.msg);
    if (!rf || !ri)
        return;
    struct as_results_field_info fi;
    CHECK(as_results_field_info(rf, "tiny", "histsim", "within_diag", &fi, &err) == 1);
    CHECK(fi.type == AS_FTYPE_F64 && fi.ndim == 2 && fi.dims[0] == 3 && fi.dims[1] == 4 && fi.count == 12);
    CHECK(!strcmp(fi.dim_names[0], AS_RESULTS_DIM_LAYER) && !strcmp(fi.dim_names[1], AS_RESULTS_DIM_HEAD));
    CHECK(!fi.is_scale);
    double wd[12];
    CHECK_MSG(as_results_field_f64(rf, "tiny", "histsim", "within_diag", wd, 12, &err) == 0, "%s", err.msg);
    /* tests/fixtures/tiny/reference.json, layer 0 */
    const double want0[4] = { 0.44180936, 0.42143341, 0.42143341, 0.45828918 };
    CHECK_ARRAY(wd, want0, 4, 1e-8, 0.0);
    CHECK(as_results_field_f64(rf, "tiny", "histsim", "within_diag", wd, 11, &err) == -1);   /* count mismatch */

    CHECK(as_results_field_info(rf, "tiny", "monotonicity", "violations", &fi, &err) == 1);
    CHECK(fi.type == AS_FTYPE_I64 && fi.ndim == 1 && fi.dims[0] == 3 && !strcmp(fi.dim_names[0], AS_RESULTS_DIM_LAYER));
    int64_t viol[3], comb[3];
    double rate[3];
    CHECK(as_results_field_i64(rf, "tiny", "monotonicity", "violations", viol, 3, &err) == 0);
    CHECK(as_results_field_i64(rf, "tiny", "monotonicity", "combinations", comb, 3, &err) == 0);
    CHECK(as_results_field_f64(rf, "tiny", "monotonicity", "violation_rate", rate, 3, &err) == 0);
    CHECK(viol[0] == 29 && viol[1] == 22 && viol[2] == 40 && comb[0] == 6624);
    for (int l = 0; l < 3; l++)
        CHECK_CLOSE(rate[l], (double)viol[l] / (double)comb[l], 0.0, 1e-12);

    CHECK(as_results_field_info(rf, "tiny", "histsim", "bins", &fi, &err) == 1);
    CHECK(fi.ndim == 1 && fi.dims[0] == 200 && !strcmp(fi.dim_names[0], "edge"));
    CHECK(as_results_field_info(rf, "tiny", "histsim", "_edge200", &fi, &err) == 1 && fi.is_scale);
    CHECK(as_results_field_info(rf, "tiny", "histsim", "nope", &fi, &err) == 0);
    CHECK(as_results_field_info(rf, "tiny", "nope", "within_diag", &fi, &err) == 0);
    CHECK(as_results_field_info(rf, "nope", "histsim", "within_diag", &fi, &err) == 0);
    CHECK(as_results_field_info(rf, "tiny", "histsim", NULL, &fi, &err) == 0);   /* a group */
    err.status = AS_OK;
    CHECK(as_results_field_f64(rf, "tiny", "histsim", "nope", wd, 1, &err) == -1 && err.status == AS_ERR_INPUT);

    /* dataset attributes: the description every field has */
    const struct as_results_obj wdo = { "tiny", "histsim", "within_diag" };
    char *s = NULL;
    CHECK(as_results_attr_str(rf, &wdo, AS_RESULTS_ATTR_DESCRIPTION, &s, &err) == 1 && s &&
          !strncmp(s, "1 - normalised entropy", 22));
    free(s);

    /* units that did not finish: the fill value (NaN for float64, -1 for int64) */
    CHECK(as_results_field_info(ri, "synth-b", "monotonicity", "violations", &fi, &err) == 1);
    CHECK(fi.has_fill && fi.fill == -1.0 && fi.dims[0] == 8);
    int64_t v8[8];
    CHECK(as_results_field_i64(ri, "synth-b", "monotonicity", "violations", v8, 8, &err) == 0);
    CHECK(v8[4] >= 0 && v8[5] == -1 && v8[7] == -1);
    CHECK(as_results_field_info(ri, "synth-b", "histsim", "within_diag", &fi, &err) == 1 && fi.has_fill &&
          isnan(fi.fill));
    CHECK(as_results_field_info(ri, "synth-b", "jacobian", "r_diag", &fi, &err) == 0);   /* stage missing */
    as_results_close(rf);
    as_results_close(ri);
}

/* ---- a file the writer made, read back by name */

#define W_L 2
#define W_H 3
#define W_BINS 5
#define W_EDGES 6

static void test_results__writer_roundtrip(void)
{
    char path[512], partial[600];
    snprintf(path, sizeof path, "%s/w.h5", tmp);
    snprintf(partial, sizeof partial, "%s.partial", path);
    struct as_field f[4] = {
        { .name = "score", .description = "a (layer, head) score", .type = AS_FTYPE_F64, .per_layer = 1,
          .ndim = 1, .dims = { W_H }, .dim_names = { AS_RESULTS_DIM_HEAD } },
        { .name = "count", .description = "a per-layer count", .type = AS_FTYPE_I64, .per_layer = 1 },
        { .name = "hist", .description = "a per-layer histogram", .type = AS_FTYPE_F64, .per_layer = 1,
          .ndim = 1, .dims = { W_BINS }, .dim_names = { "bin" } },
        { .name = "edge", .description = "the histogram's edges", .type = AS_FTYPE_F64, .per_layer = 0,
          .ndim = 1, .dims = { W_EDGES }, .dim_names = { "edge" } },
    };
    /* rows: score (3), count (1), hist (5) per layer, packed in schema order, 8 bytes each */
    enum { ROW = W_H + 1 + W_BINS };
    double rows[W_L * ROW];
    for (int l = 0; l < W_L; l++) {
        double *r = rows + (size_t)l * ROW;
        for (int h = 0; h < W_H; h++)
            r[h] = l + 0.1 * h;
        int64_t c = 10 * (l + 1);
        memcpy(&r[W_H], &c, 8);
        for (int b = 0; b < W_BINS; b++)
            r[W_H + 1 + b] = b * (l + 1);
    }
    double edges[W_EDGES] = { -1, -0.5, 0, 0.5, 1, 1.5 };
    static const double slopes[3] = { 0.5, 0.25, 0.125 };
    struct as_attr sattrs[3] = {
        { .name = "epsilon", .kind = AS_ATTR_F64, .f64 = 1e-10 },
        { .name = "input", .kind = AS_ATTR_STR, .str = "qk_mean" },
        { .name = "slopes", .kind = AS_ATTR_F64VEC, .vec = slopes, .n = 3 },
    };
    struct as_attr mattrs[2] = {
        { .name = AS_RESULTS_ATTR_SOURCE, .kind = AS_ATTR_STR, .str = "synthetic:layers=2" },
        { .name = AS_RESULTS_ATTR_INPUT_PREFIX "qk_mean", .kind = AS_ATTR_STR, .str = "x/qk_mean.npy" },
    };
    const struct as_results_stage st = { "st", f, 4, W_L, (const unsigned char *)rows,
                                         (const unsigned char *)edges, sattrs, 3, NULL, NULL };
    const int owner[W_L] = { 0, 0 };
    const struct as_results_model model = { "m", W_L, W_H, 16, owner, mattrs, 2, &st, 1, NULL };
    const double busy[1] = { 1.5 }, bytes[1] = { 1024 };
    const int64_t units[1] = { W_L };
    struct as_results_run run = { "models: []\n", "c.yaml", "attnstat run c.yaml", "2026-01-01T00:00:00Z",
                                  "2026-01-01T00:00:01Z", 1, busy, bytes, units, 1, "", "a;b", 0, 0, "", NULL, NULL };
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_results_write_all(MPI_COMM_SELF, path, &run, &model, 1, &err) == 0, "%s", err.msg);
    CHECK(access(path, F_OK) == 0 && access(partial, F_OK) != 0);

    struct as_results_file *rf = NULL;
    CHECK_MSG(as_results_open(path, &rf, &err) == 0, "%s", err.msg);
    if (!rf)
        return;
    char *s = NULL;
    int64_t v = 0;
    CHECK(as_results_is_complete(rf));
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_TOOL, &s, &err) == 1 && !strcmp(s, AS_RESULTS_TOOL_NAME));
    free(s);
    static const char *const root_str[][2] = {
        { AS_RESULTS_ATTR_CONFIG, "models: []\n" }, { AS_RESULTS_ATTR_CONFIG_PATH, "c.yaml" },
        { AS_RESULTS_ATTR_COMMAND_LINE, "attnstat run c.yaml" }, { AS_RESULTS_ATTR_START_TIME, "2026-01-01T00:00:00Z" },
        { AS_RESULTS_ATTR_END_TIME, "2026-01-01T00:00:01Z" }, { AS_RESULTS_ATTR_SWEEP_SKIPPED, "a;b" },
    };
    for (size_t k = 0; k < sizeof root_str / sizeof root_str[0]; k++) {
        CHECK_MSG(as_results_attr_str(rf, NULL, root_str[k][0], &s, &err) == 1 && !strcmp(s, root_str[k][1]),
                  "root attribute %s", root_str[k][0]);
        free(s);
    }
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_TOOL_VERSION, &s, &err) == 1);
    free(s);
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_GIT_COMMIT, &s, &err) == 1);
    free(s);
    CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_SWEEP_PART, &s, &err) == 0);   /* "" is not written */
    CHECK(as_results_attr_i64(rf, NULL, AS_RESULTS_ATTR_MPI_SIZE, &v, &err) == 1 && v == 1);
    CHECK(as_results_attr_i64(rf, NULL, AS_RESULTS_ATTR_COMPLETE, &v, &err) == 1 && v == 1);

    struct as_results_list l = AS_RESULTS_LIST_INIT;
    static const char *const models[] = { "m" }, *const stages[] = { "st" };
    static const char *const fields[] = { "score", "count", "hist", "edge" };   /* schema order */
    CHECK(as_results_models(rf, &l, &err) == 0 && list_is(&l, models, 1));
    as_results_list_release(&l);
    CHECK(as_results_stages(rf, "m", &l, &err) == 0 && list_is(&l, stages, 1));
    as_results_list_release(&l);
    CHECK(as_results_fields(rf, "m", "st", &l, &err) == 0 && list_is(&l, fields, 4));
    if (!list_is(&l, fields, 4))
        print_list("fields", &l);
    as_results_list_release(&l);

    struct as_results_model_info mi;
    CHECK(as_results_model_info(rf, "m", &mi, &err) == 0 && mi.n_layers == W_L && mi.n_heads == W_H &&
          mi.seq_len == 16);
    const struct as_results_obj mo = { "m", NULL, NULL }, so = { "m", "st", NULL }, fo = { "m", "st", "count" };
    CHECK(as_results_attr_str(rf, &mo, AS_RESULTS_ATTR_SOURCE, &s, &err) == 1 && !strcmp(s, "synthetic:layers=2"));
    free(s);
    CHECK(as_results_attr_str(rf, &mo, AS_RESULTS_ATTR_INPUT_PREFIX "qk_mean", &s, &err) == 1 &&
          !strcmp(s, "x/qk_mean.npy"));
    free(s);
    double d[8];
    size_t n = 0;
    CHECK(as_results_attr_f64(rf, &so, "epsilon", d, 8, &n, &err) == 1 && n == 1 && d[0] == 1e-10);
    CHECK(as_results_attr_f64(rf, &so, "slopes", d, 2, &n, &err) == 1 && n == 3 && d[0] == 0.5 && d[1] == 0.25);
    CHECK(as_results_attr_f64(rf, &so, "slopes", NULL, 0, &n, &err) == 1 && n == 3);
    CHECK(as_results_attr_f64(rf, &so, "input", d, 8, &n, &err) == -1);
    CHECK(as_results_attr_str(rf, &so, "input", &s, &err) == 1 && !strcmp(s, "qk_mean"));
    free(s);
    CHECK(as_results_attr_names(rf, &so, &l, &err) == 0 && l.n == 3 && has(&l, "epsilon") && has(&l, "slopes"));
    as_results_list_release(&l);
    CHECK(as_results_attr_str(rf, &fo, AS_RESULTS_ATTR_DESCRIPTION, &s, &err) == 1 &&
          !strcmp(s, "a per-layer count"));
    free(s);

    /* shapes and dimension names: layer and head from the model, stage scales by dimension name */
    struct as_results_field_info fi;
    CHECK(as_results_field_info(rf, "m", "st", "score", &fi, &err) == 1 && fi.ndim == 2 && fi.dims[0] == W_L &&
          fi.dims[1] == W_H && !strcmp(fi.dim_names[0], AS_RESULTS_DIM_LAYER) &&
          !strcmp(fi.dim_names[1], AS_RESULTS_DIM_HEAD) && !fi.has_fill);
    CHECK(as_results_field_info(rf, "m", "st", "count", &fi, &err) == 1 && fi.type == AS_FTYPE_I64 &&
          fi.ndim == 1 && !strcmp(fi.dim_names[0], AS_RESULTS_DIM_LAYER));
    CHECK(as_results_field_info(rf, "m", "st", "hist", &fi, &err) == 1 && fi.ndim == 2 && fi.dims[1] == W_BINS &&
          !strcmp(fi.dim_names[1], "bin"));
    CHECK(as_results_field_info(rf, "m", "st", "edge", &fi, &err) == 1 && fi.ndim == 1 && fi.dims[0] == W_EDGES &&
          !strcmp(fi.dim_names[0], "edge") && !fi.is_scale);
    /* the scale of dimension "edge" clashes with the field "edge": it takes the suffix */
    CHECK(as_results_field_info(rf, "m", "st", "edge" AS_RESULTS_SCALE_CLASH_SUFFIX, &fi, &err) == 1 && fi.is_scale);
    CHECK(as_results_field_info(rf, "m", "st", "bin", &fi, &err) == 1 && fi.is_scale);

    double score[W_L * W_H], hist[W_L * W_BINS], e[W_EDGES];
    int64_t count[W_L];
    CHECK(as_results_field_f64(rf, "m", "st", "score", score, W_L * W_H, &err) == 0);
    CHECK(as_results_field_i64(rf, "m", "st", "count", count, W_L, &err) == 0);
    CHECK(as_results_field_f64(rf, "m", "st", "hist", hist, W_L * W_BINS, &err) == 0);
    CHECK(as_results_field_f64(rf, "m", "st", "edge", e, W_EDGES, &err) == 0);
    CHECK(score[W_H + 2] == 1 + 0.2 && count[0] == 10 && count[1] == 20 && hist[W_BINS + 4] == 8);
    CHECK_ARRAY(e, edges, W_EDGES, 0.0, 0.0);
    as_results_close(rf);

    /* /run and the model's own scales, by name */
    hid_t h = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(h >= 0);
    if (h >= 0) {
        CHECK(H5Lexists(h, AS_RESULTS_GROUP_RUN, H5P_DEFAULT) > 0);
        CHECK(H5Lexists(h, AS_RESULTS_GROUP_RUN "/" AS_RESULTS_DSET_RANK_BUSY, H5P_DEFAULT) > 0);
        CHECK(H5Lexists(h, AS_RESULTS_GROUP_RUN "/" AS_RESULTS_DSET_RANK_BYTES, H5P_DEFAULT) > 0);
        CHECK(H5Lexists(h, AS_RESULTS_GROUP_RUN "/" AS_RESULTS_DSET_RANK_UNITS, H5P_DEFAULT) > 0);
        CHECK(H5Lexists(h, AS_RESULTS_GROUP_MODELS "/m/" AS_RESULTS_DIM_LAYER, H5P_DEFAULT) > 0);
        CHECK(H5Lexists(h, AS_RESULTS_GROUP_MODELS "/m/" AS_RESULTS_DIM_HEAD, H5P_DEFAULT) > 0);
        H5Fclose(h);
    }

    /* an incomplete run (models failed with on_error: skip): complete = 0 */
    run.complete = 0;
    CHECK_MSG(as_results_write_all(MPI_COMM_SELF, path, &run, &model, 1, &err) == 0, "%s", err.msg);
    CHECK(as_results_open(path, &rf, &err) == 0);
    if (rf) {
        CHECK(!as_results_is_complete(rf));
        CHECK(as_results_attr_i64(rf, NULL, AS_RESULTS_ATTR_COMPLETE, &v, &err) == 1 && v == 0);
        as_results_close(rf);
    }
}

/* ---- the figures attribute */

static void test_results__record_figures(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/w.h5", tmp);   /* written by the round trip */
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_results_record_figures(path, "a.png\nb.png\n", &err) == 0, "%s", err.msg);
    CHECK_MSG(as_results_record_figures(path, "b.png\nc.png", &err) == 0, "%s", err.msg);
    struct as_results_file *rf = NULL;
    CHECK(as_results_open(path, &rf, &err) == 0);
    char *s = NULL;
    if (rf) {
        CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_FIGURES, &s, &err) == 1);
        CHECK_MSG(s && !strcmp(s, "a.png\nb.png\nc.png"), "figures: '%s'", s ? s : "(none)");
        free(s);
        as_results_close(rf);
    }
    err.status = AS_OK;
    CHECK(as_results_record_figures(FIXTURE_DIR "/missing.h5", "a.png", &err) == -1 && err.status == AS_ERR_IO);
    CHECK_MSG(!strcmp(err.msg, "cannot open '" FIXTURE_DIR "/missing.h5' read-write: figures not recorded in it"),
              "%s", err.msg);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    snprintf(tmp, sizeof tmp, "%s/attnstat-results-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    TEST_RUN(test_results__open_errors);
    TEST_RUN(test_results__root);
    TEST_RUN(test_results__models);
    TEST_RUN(test_results__fields);
    TEST_RUN(test_results__writer_roundtrip);
    TEST_RUN(test_results__record_figures);
    if (as_test_failures == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove '%s'\n", tmp);
    } else {
        fprintf(stderr, "files kept in %s\n", tmp);
    }
    MPI_Finalize();
    return as_test_done();
}
