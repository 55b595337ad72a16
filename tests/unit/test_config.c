/* test_config.c: the YAML config loader: what it accepts and the file:line:col of what it refuses. */
#undef NDEBUG
#include <stdio.h>
#include <string.h>

#include "as_config.h"
#include "as_stage.h"
#include "as_test.h"

static void expect_error(const char *yaml, const char *want, enum as_status st)
{
    struct as_config cfg;
    struct as_error err = { 0 };
    int rc = as_config_parse(&cfg, "c.yaml", "/base", yaml, &err);
    CHECK_MSG(rc != 0, "accepted: %s", yaml);
    if (rc == 0) {
        as_config_release(&cfg);
        return;
    }
    CHECK_MSG(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
    CHECK_MSG(err.status == st, "status %s for '%s'", as_status_name(err.status), err.msg);
}

static void test_config__accepts_the_documented_keys(void)
{
    const char *y = "output: out/demo.h5\n"
                    "models:\n"
                    "  - name: small-a\n"
                    "    dir: data/a\n"
                    "    tensors: {attn: {file: jac.pt, key: attn}, qk_mean: q.npy}\n"
                    "  - name: synth-b\n"
                    "    synthetic: {layers: 6, heads: 8, seq_len: 128, seed: 7}\n"
                    "  - root: /results\n"
                    "    model_id: bigscience/bloom\n"
                    "    seq_len: 256\n"
                    "    dataset: wikipedia\n"
                    "stages:\n"
                    "  histsim: {}\n"
                    "figures: {formats: [png, pdf]}\n";
    struct as_config cfg;
    struct as_error err = { 0 };
    CHECK_MSG(as_config_parse(&cfg, "c.yaml", "/base", y, &err) == 0, "%s", err.msg);
    CHECK(!strcmp(cfg.output, "/base/out/demo.h5"));
    CHECK(!strcmp(cfg.log, "/base/out/demo.log"));
    CHECK(cfg.n_models == 3);
    CHECK(!strcmp(cfg.models[0].dir, "/base/data/a"));
    CHECK(cfg.models[0].n_tensors == 2);
    CHECK(!strcmp(cfg.models[0].tensors[0].file, "/base/data/a/jac.pt"));
    CHECK(!strcmp(cfg.models[0].tensors[0].key, "attn"));
    CHECK(cfg.models[1].synthetic && cfg.models[1].synth.heads == 8 && cfg.models[1].synth.seed == 7);
    CHECK(!strcmp(cfg.models[2].dir, "/results/bigscience_bloom/256"));
    CHECK(!strcmp(cfg.models[2].name, "wikipedia_bigscience_bloom_256"));
    CHECK(cfg.n_stages == 1 && !strcmp(cfg.stages[0].ops->name, "histsim"));
    CHECK(cfg.figures && cfg.figure_formats == 3);
    as_config_set_output(&cfg, "x/y.h5");
    CHECK(!strcmp(cfg.log, "x/y.log"));
    as_config_release(&cfg);
}

static void test_config__errors_have_positions(void)
{
    expect_error("output: a.h5\nmodels: [\n", "c.yaml:3:1: invalid YAML", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - name: a\n    dri: x\nstages: {histsim: {}}\n",
                 "c.yaml:4:5: models[0]: unknown key 'dri'", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - name: a\n    synthetic: {layers: six, heads: 2, seq_len: 4}\n"
                 "stages: {histsim: {}}\n",
                 "c.yaml:4:25: model 'a' synthetic.layers: expected an integer, found 'six'", AS_ERR_CONFIG);
    expect_error("models:\n  - {name: a, dir: x}\nstages: {histsim: {}}\n", "c.yaml:1:1: missing key 'output'",
                 AS_ERR_CONFIG);
    expect_error("output: a.h5\nstages: {histsim: {}}\n", "missing key 'models'", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels: []\nstages: {histsim: {}}\n", "c.yaml:2:9: models: expected a non-empty list",
                 AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a, dir: x}\n  - {name: a, dir: y}\nstages: {histsim: {}}\n",
                 "c.yaml:4:5: models[1]: duplicate model name 'a'", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a, dir: x}\nstages: {histsm: {}}\n",
                 "c.yaml:4:10: stages: unknown stage 'histsm' (known: histsim", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a, dir: x}\nstages: {histsim: {quantile: median}}\n",
                 "stages.histsim.quantile: 'median' is not one of: exact, sampled", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a, dir: x}\nstages: {histsim: {bins: 2}}\n",
                 "stages.histsim.bins: 2 is outside 3..4097", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a}\nstages: {histsim: {}}\n",
                 "models[0]: give exactly one of 'dir', 'synthetic'", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a, dir: x, synthetic: {layers: 1, heads: 1, seq_len: 1}}\n"
                 "stages: {histsim: {}}\n", "give exactly one of", AS_ERR_CONFIG);
    expect_error("output: a.h5\noutput: b.h5\nmodels:\n  - {name: a, dir: x}\nstages: {histsim: {}}\n",
                 "c.yaml:2:1: duplicate key 'output'", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a/b, dir: x}\nstages: {histsim: {}}\n",
                 "invalid model name 'a/b'", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - &x {name: a, dir: x}\n  - *x\nstages: {histsim: {}}\n",
                 "aliases are not supported", AS_ERR_CONFIG);
    expect_error("output: [a.h5]\nmodels:\n  - {name: a, dir: x}\nstages: {histsim: {}}\n",
                 "c.yaml:1:9: output: expected a string, found a sequence", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a, dir: x}\nstages: {}\n", "stages: expected a non-empty mapping",
                 AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {root: r, model_id: m}\nstages: {histsim: {}}\n",
                 "the seeds' layout needs 'root', 'model_id' and 'seq_len'", AS_ERR_CONFIG);
    expect_error("", "the config is empty", AS_ERR_CONFIG);
    expect_error("- a\n- b\n", "the config must be a mapping", AS_ERR_CONFIG);
    expect_error("output: a.h5\nmodels:\n  - {name: a, dir: x}\nstages: {histsim: {}}\nfigures: {formats: [gif]}\n",
                 "figures.formats: 'gif' is not png, pdf or svg", AS_ERR_CONFIG);
    /* fuzz finding: a key with an escaped newline made a two-line message; messages are one line */
    {
        struct as_config cfg;
        struct as_error err = { 0 };
        CHECK(as_config_parse(&cfg, "c.yaml", ".", "output: a.h5\nmodels:\n  - {name: a, \"mo\\ndel\": x}\n", &err) != 0);
        CHECK_MSG(strstr(err.msg, "unknown key 'mo?del'") != NULL && !strchr(err.msg, '\n'), "%s", err.msg);
    }
}

static void test_config__missing_tensor_names_model_and_paths(void)
{
    struct as_config cfg;
    struct as_error err = { 0 };
    const char *y = "output: a.h5\nmodels:\n  - {name: m1, dir: tests/fixtures/tiny}\n"
                    "  - {name: m2, dir: /nonexistent/dir}\nstages: {histsim: {}}\n";
    CHECK(as_config_parse(&cfg, "c.yaml", ".", y, &err) == 0);
    char path[AS_PATH_MAX], key[256];
    const struct as_reader_ops *ops;
    CHECK(as_config_tensor(&cfg, &cfg.models[0], "qk_mean", path, sizeof path, key, sizeof key, &ops, &err) == 0);
    CHECK(strstr(path, "tests/fixtures/tiny/qk_mean.") != NULL);
    CHECK(as_config_tensor(&cfg, &cfg.models[0], "nope", path, sizeof path, key, sizeof key, &ops, &err) != 0);
    CHECK_MSG(strstr(err.msg, "model 'm1': no tensor 'nope' in 'tests/fixtures/tiny'") != NULL, "%s", err.msg);
    CHECK(as_config_tensor(&cfg, &cfg.models[1], "qk_mean", path, sizeof path, key, sizeof key, &ops, &err) != 0);
    CHECK_MSG(strstr(err.msg, "model 'm2': directory '/nonexistent/dir' does not exist") != NULL, "%s", err.msg);
    CHECK(err.status == AS_ERR_INPUT);
    CHECK(as_config_tensor(&cfg, &cfg.models[0], "attn", path, sizeof path, key, sizeof key, &ops, &err) == 0);
    as_config_release(&cfg);
}

static void test_config__sweep_expands_in_order(void)
{
    const char *y = "output: a.h5\n"
                    "models:\n  - {name: first, synthetic: {layers: 1, heads: 1, seq_len: 2}}\n"
                    "sweep:\n"
                    "  vars: {dataset: [wiki, dclm], model_id: [org/a, org/b], seq_len: [64, 256]}\n"
                    "  model: {name: \"{dataset}-{model_id:path}-{seq_len}\", synthetic: {layers: 2, heads: 2, seq_len: \"{seq_len}\"}}\n"
                    "stages: {histsim: {}}\n";
    struct as_config cfg;
    struct as_error err = { 0 };
    CHECK_MSG(as_config_parse(&cfg, "c.yaml", "/base", y, &err) == 0, "%s", err.msg);
    CHECK(cfg.n_models == 9);
    CHECK(!strcmp(cfg.models[0].name, "first"));
    CHECK(!strcmp(cfg.models[1].name, "wiki-org_a-64"));
    CHECK(!strcmp(cfg.models[2].name, "wiki-org_a-256"));
    CHECK(!strcmp(cfg.models[3].name, "wiki-org_b-64"));
    CHECK(!strcmp(cfg.models[8].name, "dclm-org_b-256"));
    CHECK(cfg.models[8].synth.seq_len == 256);
    as_config_release(&cfg);
}

static void test_config__sweep_missing_and_errors(void)
{
    const char *base = "output: a.h5\nsweep:\n  vars: {d: [x, y]}\n  model: {root: /nonexistent, model_id: \"m-{d}\", seq_len: 8}\n";
    char y[1024];
    snprintf(y, sizeof y, "%s  missing: error\nstages: {histsim: {}}\n", base);
    expect_error(y, "c.yaml:3:3: sweep: 2 combinations are missing (set missing: skip to leave them out): "
                    "m-x_8 (/nonexistent/m-x/8);m-y_8 (/nonexistent/m-y/8)", AS_ERR_CONFIG);
    snprintf(y, sizeof y, "%s  missing: skip\nstages: {histsim: {}}\n", base);
    expect_error(y, "no model left: every sweep combination is missing", AS_ERR_CONFIG);
    /* one present, one skipped: recorded */
    snprintf(y, sizeof y, "output: a.h5\nsweep:\n  vars: {d: [tiny, nope]}\n  model: {name: \"{d}\", dir: \"tests/fixtures/{d}\"}\n"
                          "  missing: skip\nstages: {histsim: {}}\n");
    struct as_config cfg;
    struct as_error err = { 0 };
    CHECK_MSG(as_config_parse(&cfg, "c.yaml", ".", y, &err) == 0, "%s", err.msg);
    CHECK(cfg.n_models == 1 && !strcmp(cfg.models[0].name, "tiny"));
    CHECK_MSG(strstr(as_strbuf_str(&cfg.skipped), "nope (tests/fixtures/nope)") != NULL, "%s", as_strbuf_str(&cfg.skipped));
    as_config_release(&cfg);
    expect_error("output: a.h5\nsweep:\n  vars: {d: [x]}\n  model: {name: \"{e}\", synthetic: {layers: 1, heads: 1, seq_len: 2}}\n"
                 "stages: {histsim: {}}\n", "c.yaml:4:17: sweep: template '{e}' uses '{e}', which is not in sweep.vars",
                 AS_ERR_CONFIG);
    expect_error("output: a.h5\nsweep:\n  vars: {d: [x, x]}\n  model: {name: \"n{d}\", synthetic: {layers: 1, heads: 1, seq_len: 2}}\n"
                 "stages: {histsim: {}}\n", "duplicate model name 'nx'", AS_ERR_CONFIG);
    expect_error("output: a.h5\nsweep:\n  vars: {d: []}\n  model: {name: a}\nstages: {histsim: {}}\n",
                 "c.yaml:3:13: sweep.vars.d: expected a non-empty list", AS_ERR_CONFIG);
    expect_error("output: a.h5\nsweep:\n  vars: {d: [x]}\n  model: {name: \"{d:upper}\"}\nstages: {histsim: {}}\n",
                 "unknown filter ':upper'", AS_ERR_CONFIG);
}

static void test_config__select_models(void)
{
    const char *y = "output: a.h5\nmodels:\n  - {name: a, synthetic: {layers: 1, heads: 1, seq_len: 2}}\n"
                    "  - {name: b, synthetic: {layers: 1, heads: 1, seq_len: 2}}\n"
                    "  - {name: c, synthetic: {layers: 1, heads: 1, seq_len: 2}}\nstages: {histsim: {}}\n";
    struct as_config cfg;
    struct as_error err = { 0 };
    CHECK(as_config_parse(&cfg, "c.yaml", ".", y, &err) == 0);
    CHECK(as_config_select_models(&cfg, "c,a", &err) == 0);
    CHECK(cfg.n_models == 2 && !strcmp(cfg.models[0].name, "a") && !strcmp(cfg.models[1].name, "c"));
    CHECK(as_config_select_models(&cfg, "zz", &err) != 0);
    CHECK_MSG(strstr(err.msg, "--models names 'zz', which the config does not have") != NULL, "%s", err.msg);
    as_config_release(&cfg);
}

/* ---- histsim's `edges` (bin edges) and its deprecated spelling `bins` */

static char warnings[2048];

static void catch_warning(void *ctx, const char *line)
{
    size_t n = strlen(warnings);
    snprintf(warnings + n, sizeof warnings - n, "%s", line);
}

static void test_config__histsim_edges_and_deprecated_bins(void)
{
    const char *head = "output: a.h5\nmodels:\n  - {name: a, synthetic: {layers: 1, heads: 1, seq_len: 4}}\nstages:\n";
    char y[512];
    struct as_config cfg;
    struct as_error err = { 0 };
    as_stage_set_warn(catch_warning, NULL);
    /* the new key: no warning */
    warnings[0] = '\0';
    snprintf(y, sizeof y, "%s  histsim: {edges: 50}\n", head);
    CHECK_MSG(as_config_parse(&cfg, "c.yaml", "/base", y, &err) == 0, "%s", err.msg);
    if (!err.status)
        as_config_release(&cfg);
    CHECK_MSG(!warnings[0], "%s", warnings);
    /* the old key: accepted, one warning line naming the place */
    snprintf(y, sizeof y, "%s  histsim:\n    bins: 200\n", head);
    CHECK_MSG(as_config_parse(&cfg, "c.yaml", "/base", y, &err) == 0, "%s", err.msg);
    if (!err.status)
        as_config_release(&cfg);
    CHECK_MSG(!strcmp(warnings, "attnstat: warning: c.yaml:6:11: stages.histsim.bins is deprecated: it counts bin "
                                "edges; write edges: 200 (199 bins)\n"), "%s", warnings);
    /* both: a config error */
    warnings[0] = '\0';
    snprintf(y, sizeof y, "%s  histsim: {edges: 50, bins: 50}\n", head);
    expect_error(y, "c.yaml:5:30: stages.histsim: give edges or its deprecated spelling bins, not both",
                 AS_ERR_CONFIG);
    CHECK_MSG(!warnings[0], "%s", warnings);
    /* the range is the same under either name */
    snprintf(y, sizeof y, "%s  histsim: {edges: 2}\n", head);
    expect_error(y, "stages.histsim.edges", AS_ERR_CONFIG);
    snprintf(y, sizeof y, "%s  histsim: {bins: 2}\n", head);
    expect_error(y, "stages.histsim.bins", AS_ERR_CONFIG);
    as_stage_set_warn(NULL, NULL);
}

int main(void)
{
    TEST_RUN(test_config__sweep_expands_in_order);
    TEST_RUN(test_config__sweep_missing_and_errors);
    TEST_RUN(test_config__select_models);
    TEST_RUN(test_config__accepts_the_documented_keys);
    TEST_RUN(test_config__errors_have_positions);
    TEST_RUN(test_config__missing_tensor_names_model_and_paths);
    TEST_RUN(test_config__histsim_edges_and_deprecated_bins);
    return as_test_done();
}
