/* test_table.c: what reproducing the paper adds around the statistics: --set overrides of the
 * config, labels and data_root, the matrices and extras the run writes (as_matrices_write_results_all,
 * as the driver calls it), the paper figures drawn from them, and the tables of a results file. */
#undef NDEBUG
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_config.h"
#include "as_matrices.h"
#include "as_plot.h"
#include "as_report.h"
#include "as_results_read.h"
#include "as_test.h"

static const char *const base_yaml =
    "output: out/r.h5\n"
    "sweep:\n"
    "  vars: {seq_len: [8]}\n"
    "  model: {name: \"m-{seq_len}\", label: lab, root: \"{data_root}/res\", model_id: org/m, seq_len: \"{seq_len}\"}\n"
    "  missing: skip\n"
    "models:\n"
    "  - {name: s, synthetic: {layers: 2, heads: 2, seq_len: 4, seed: 1}}\n"
    "stages:\n"
    "  histsim:\n";

static void expect_set_error(const char *const *sets, int n, const char *want, enum as_status st)
{
    struct as_config cfg;
    struct as_error err = { AS_OK, "" };
    int rc = as_config_parse_set(&cfg, "c.yaml", "/base", base_yaml, sets, n, &err);
    CHECK_MSG(rc != 0, "accepted %s", sets[n - 1]);
    if (rc == 0) {
        as_config_release(&cfg);
        return;
    }
    CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    CHECK_MSG(err.status == st, "status %s for '%s'", as_status_name(err.status), err.msg);
}

static void test_table__set_overrides_nested_keys(void)
{
    struct as_config cfg;
    struct as_error err = { AS_OK, "" };
    const char *sets[] = { "data_root=/data", "models.0.label=Synth", "stages.histsim.edges=100",
                           "figures.style=paper", "sweep.vars.seq_len=[8, 16]" };
    CHECK_MSG(as_config_parse_set(&cfg, "c.yaml", "/base", base_yaml, sets, 5, &err) == 0, "%s", err.msg);
    if (err.status)
        return;
    CHECK(!strcmp(cfg.data_root, "/data"));
    CHECK(cfg.n_models == 1 && !strcmp(cfg.models[0].label, "Synth")); /* the sweep's folders are missing */
    CHECK(cfg.figures && (cfg.figure_formats & AS_CONFIG_FIG_PAPER));
    CHECK(!strcmp(as_strbuf_str(&cfg.overrides), "data_root=/data\nmodels.0.label=Synth\nstages.histsim.edges=100\n"
                  "figures.style=paper\nsweep.vars.seq_len=[8, 16]"));
    CHECK(strstr(as_strbuf_str(&cfg.skipped), "m-8 (/data/res/org_m/8)") != NULL);
    CHECK(strstr(as_strbuf_str(&cfg.skipped), "m-16 (/data/res/org_m/16)") != NULL);
    as_config_release(&cfg);

    const char *unknown[] = { "data_root=/d", "stages.histsim.edgs=1" };
    expect_set_error(unknown, 2, "--set stages.histsim.edgs=1: stages.histsim: unknown key 'edgs'", AS_ERR_CONFIG);
    const char *top[] = { "outptu=x" };
    expect_set_error(top, 1, "--set outptu=x: config: unknown key 'outptu'", AS_ERR_CONFIG);
    const char *type[] = { "data_root=/d", "stages.histsim.edges=many" };
    expect_set_error(type, 2, "edges", AS_ERR_CONFIG);
    const char *label[] = { "data_root=/d", "models.0.label=[a, b]" };
    expect_set_error(label, 2, "label", AS_ERR_CONFIG);
    const char *noeq[] = { "data_root" };
    expect_set_error(noeq, 1, "expected KEY=VALUE", AS_ERR_USAGE);
    const char *through[] = { "output.x=1" };
    expect_set_error(through, 1, "'output' is a value, not a mapping", AS_ERR_CONFIG);
    const char *index[] = { "models.3.label=x" };
    expect_set_error(index, 1, "is a list of 1", AS_ERR_CONFIG);
    const char *none[] = { "stages.histsim.edges=100" }; /* {data_root} with no data_root */
    expect_set_error(none, 1, "data_root is not set", AS_ERR_CONFIG);
    const char *mx[] = { "data_root=/d", "figures.matrices=[{model: nope, layer: 0, head: 0}]" };
    expect_set_error(mx, 2, "figures.matrices[0]: no model 'nope'", AS_ERR_CONFIG);
}

enum { ML = 2, MH = 3, MT = 5 };

static double qk(int l, int h, int i, int j) { return l * 100 + h * 10 + i + 0.01 * j; }

static void write_model(const char *dir, int with_var)
{
    static double v[ML * MH * MT * MT];
    for (int l = 0; l < ML; l++)
        for (int h = 0; h < MH; h++)
            for (int i = 0; i < MT; i++)
                for (int j = 0; j < MT; j++)
                    v[((l * MH + h) * MT + i) * MT + j] = qk(l, h, i, j);
    char p[512];
    mkdir(dir, 0777);
    const int64_t shape[4] = { ML, MH, MT, MT };
    snprintf(p, sizeof p, "%s/qk_mean.npy", dir);
    CHECK(as_test_write_npy(p, "<f8", 4, shape, v) == 0);
    if (with_var) {
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            v[k] *= 2;
        snprintf(p, sizeof p, "%s/qk_var.npy", dir);
        CHECK(as_test_write_npy(p, "<f8", 4, shape, v) == 0);
    }
}

static void test_table__matrices_labels_overrides_written(void)
{
    char tmp[] = "/tmp/attnstat-table.XXXXXX", a[600], b[600], figs[600], path[1200];
    CHECK(mkdtemp(tmp) != NULL);
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b", tmp);
    write_model(a, 1);
    write_model(b, 0);
    const char *yaml = "output: r.h5\n"
                       "models:\n"
                       "  - {name: a, dir: a, label: Model A}\n"
                       "  - {name: b, dir: b}\n"
                       "stages: {histsim: {}}\n"
                       "figures:\n"
                       "  matrices: [{model: a, layer: 1, head: 2}, {model: b, layer: 0, head: 1}, {model: a, layer: 1, head: 2}]\n";
    const char *sets[] = { "figures.style=paper" };
    struct as_config cfg;
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_config_parse_set(&cfg, "c.yaml", tmp, yaml, sets, 1, &err) == 0, "%s", err.msg);
    if (err.status)
        return;
    CHECK(cfg.n_matrices == 3);
    const int owner[ML] = { 0, 0 };
    const struct as_results_model models[2] = {
        { "a", ML, MH, MT, owner, NULL, 0, NULL, 0, NULL },
        { "b", ML, MH, MT, owner, NULL, 0, NULL, 0, NULL },
    };
    const double busy[1] = { 0 }, bytes[1] = { 0 };
    const int64_t units[1] = { 0 }, opens[1] = { 0 };
    const struct as_results_run run = { "x", "c.yaml", "attnstat run c.yaml", "t0", "t1", 1, busy, bytes, units, 1,
                                        "", "", 0, 0, "", opens, NULL };
    CHECK_MSG(as_matrices_write_results_all(MPI_COMM_SELF, &cfg, &run, models, 2, &err) == 0, "%s", err.msg);

    struct as_results_file *rf = NULL;
    CHECK_MSG(as_results_open(cfg.output, &rf, &err) == 0, "%s", err.msg);
    if (rf) {
        char *s = NULL;
        const struct as_results_obj ma = { "a", NULL, NULL }, mb = { "b", NULL, NULL };
        CHECK(as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_CONFIG_OVERRIDES, &s, &err) == 1 &&
              !strcmp(s, "figures.style=paper"));
        free(s);
        s = NULL;
        CHECK(as_results_attr_str(rf, &ma, AS_RESULTS_ATTR_LABEL, &s, &err) == 1 && !strcmp(s, "Model A"));
        free(s);
        s = NULL;
        CHECK(as_results_attr_str(rf, &mb, AS_RESULTS_ATTR_LABEL, &s, &err) == 0);
        struct as_results_list f = AS_RESULTS_LIST_INIT;
        CHECK(as_results_fields(rf, "a", AS_RESULTS_GROUP_MATRICES, &f, &err) == 0 && f.n == 2);
        as_results_list_release(&f);
        double m[MT * MT], want[MT * MT];
        for (int i = 0; i < MT; i++)
            for (int j = 0; j < MT; j++)
                want[i * MT + j] = qk(1, 2, i, j);
        CHECK(as_results_field_f64(rf, "a", AS_RESULTS_GROUP_MATRICES, AS_RESULTS_MATRIX_MEAN_PREFIX "1_2", m, MT * MT,
                                   &err) == 0);
        CHECK_ARRAY(m, want, MT * MT, 0, 0);
        for (int k = 0; k < MT * MT; k++)
            want[k] *= 2;
        CHECK(as_results_field_f64(rf, "a", AS_RESULTS_GROUP_MATRICES, AS_RESULTS_MATRIX_VAR_PREFIX "1_2", m, MT * MT,
                                   &err) == 0);
        CHECK_ARRAY(m, want, MT * MT, 0, 0);
        CHECK(as_results_fields(rf, "b", AS_RESULTS_GROUP_MATRICES, &f, &err) == 0 && f.n == 1);
        as_results_list_release(&f);
        const struct as_results_obj note = { "b", AS_RESULTS_GROUP_MATRICES, AS_RESULTS_MATRIX_MEAN_PREFIX "0_1" };
        CHECK(as_results_attr_str(rf, &note, AS_RESULTS_ATTR_MATRIX_NOTE, &s, &err) == 1 && strstr(s, "no qk_var"));
        free(s);
        as_results_close(rf);
    }

    /* the attention-matrix figures, from the results alone */
    snprintf(figs, sizeof figs, "%s/figs", tmp);
    struct as_plot_paper_opts po = { figs, 0, 0, 0 };
    struct as_strbuf made = AS_STRBUF_INIT;
    CHECK_MSG(as_plot_paper(cfg.output, &po, &made, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(as_strbuf_str(&made), "attention_heatmap_mean_a_5_1_2.png\nattention_heatmap_variance_a_5_1_2.png\n"
                                        "attention_heatmap_mean_b_5_0_1.png\n"));
    as_strbuf_release(&made);
    snprintf(path, sizeof path, "%s/attention_heatmap_variance_a_5_1_2.png", figs);
    CHECK(access(path, F_OK) == 0);

    /* no stage in the file: the table is its header alone */
    snprintf(path, sizeof path, "%s/t.csv", tmp);
    FILE *out = fopen(path, "w");
    CHECK(out && as_report_table(cfg.output, NULL, AS_REPORT_CSV, out, &err) == 0);
    if (out)
        fclose(out);

    /* a layer out of range: a config error, nothing written */
    cfg.matrices[0].layer = 7;
    unlink(cfg.output);
    CHECK(as_matrices_write_results_all(MPI_COMM_SELF, &cfg, &run, models, 2, &err) != 0);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "no layer 7 head 2"), "%s", err.msg);
    CHECK(access(cfg.output, F_OK) != 0);
    as_config_release(&cfg);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    TEST_RUN(test_table__set_overrides_nested_keys);
    TEST_RUN(test_table__matrices_labels_overrides_written);
    int rc = as_test_done();
    MPI_Finalize();
    return rc;
}
