/* test_config.c: the YAML config loader: what it accepts and the file:line:col of what it refuses. */
#undef NDEBUG
#include <stdio.h>
#include <string.h>

#include "as_config.h"
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
    CHECK_MSG(strstr(err.msg, "model 'm1': no tensor 'nope' in './tests/fixtures/tiny'") != NULL, "%s", err.msg);
    CHECK(as_config_tensor(&cfg, &cfg.models[1], "qk_mean", path, sizeof path, key, sizeof key, &ops, &err) != 0);
    CHECK_MSG(strstr(err.msg, "model 'm2': directory '/nonexistent/dir' does not exist") != NULL, "%s", err.msg);
    CHECK(err.status == AS_ERR_INPUT);
    CHECK(as_config_tensor(&cfg, &cfg.models[0], "attn", path, sizeof path, key, sizeof key, &ops, &err) == 0);
    as_config_release(&cfg);
}

int main(void)
{
    TEST_RUN(test_config__accepts_the_documented_keys);
    TEST_RUN(test_config__errors_have_positions);
    TEST_RUN(test_config__missing_tensor_names_model_and_paths);
    return as_test_done();
}
