/* as_config.h: the run configuration, loaded from YAML with libyaml.
 *
 *   output: out/demo.h5            # results file; the summary log goes beside it (out/demo.log)
 *   models:
 *     - name: small-a              # unique; /models/small-a in the results
 *       dir: path/to/model/dir     # tensors found by name: qk_mean.{pt,safetensors,h5,npy}
 *       tensors:                   # (optional) per tensor: a file, or {file, key}
 *         attn: {file: jacobian.pt, key: attn}
 *     - root: /data/results        # the seeds' layout <root>/<model id with / as _>/<seq_len>/
 *       model_id: bigscience/bloom
 *       seq_len: 256
 *     - name: synth-b
 *       synthetic: {layers: 6, heads: 8, seq_len: 128, seed: 7}
 *   stages:
 *     histsim: {}                  # options per stage; see README "Config reference"
 *   sweep:                         # (optional) model entries from the cartesian product of vars
 *     vars: {dataset: [wikipedia, dclm], model_id: [bigscience/bloom], seq_len: [64, 256]}
 *     model: {root: "/data/results-final-{dataset}", model_id: "{model_id}", seq_len: "{seq_len}"}
 *     missing: skip                # or error (default): combinations whose folder is missing
 *   figures: {formats: [png]}      # (optional) draw figures at the end of run
 *   on_error: stop                 # or skip: a model whose inputs or stages fail is recorded as
 *                                  # failed and the others finish (exit 4, complete = 0)
 * Relative paths resolve against the config file's folder. */
#ifndef AS_PIPELINE_AS_CONFIG_H
#define AS_PIPELINE_AS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "as_stage.h"
#include "as_synth.h"
#include "as_yaml.h"

#define AS_PATH_MAX 4096
#define AS_NAME_MAX 128
#define AS_MAX_TENSORS 16
#define AS_MAX_STAGES 8
#define AS_MAX_MODELS 20000        /* models in one config (sweeps included) */
#define AS_WEIGHTS_TENSOR "weights" /* the input name of a model's `weights:` folder */

struct as_tensor_ref {
    char name[64];                 /* tensor name, e.g. "qk_mean" */
    char file[AS_PATH_MAX];        /* resolved path */
    char key[256];                 /* key inside a dict-like file, "" for none */
};

struct as_model_cfg {
    char name[AS_NAME_MAX];
    const struct as_ynode *node;   /* the entry, for error positions; borrowed from the doc */
    int synthetic;                 /* 1: built-in synthetic model */
    struct as_synth_spec synth;
    char dir[AS_PATH_MAX];         /* resolved; "" for synthetic */
    char weights[AS_PATH_MAX];     /* `weights:` a Hugging Face model folder, resolved; "" none */
    char model_id[256];            /* seeds' layout, "" when not used */
    char dataset[64];
    int64_t seq_len_attr;          /* seeds' layout seq_len, 0 when not used */
    int64_t heads;                 /* `heads:` (0: unknown), a hint for stages that cannot see it */
    struct as_tensor_ref tensors[AS_MAX_TENSORS]; /* explicit per-tensor files */
    int n_tensors;
};

struct as_stage_cfg {
    const struct as_stage_ops *ops;
    void *cfg;                     /* owned: ops->release() */
    const struct as_ynode *node;   /* its options (NULL: defaults); borrowed from doc */
};

enum as_on_error { AS_ON_ERROR_STOP = 0, AS_ON_ERROR_SKIP, AS_ON_ERROR_COUNT };

struct as_config {
    struct as_ydoc doc;            /* owned: the parsed text (recorded in results) */
    char path[AS_PATH_MAX];        /* the config file as given */
    char dir[AS_PATH_MAX];         /* its folder */
    char output[AS_PATH_MAX];      /* results file */
    char log[AS_PATH_MAX];         /* summary log */
    struct as_model_cfg *models;   /* owned, n_models (cap_models allocated) */
    int n_models, cap_models;
    struct as_stage_cfg stages[AS_MAX_STAGES]; /* in registry order */
    int n_stages;
    int figures;                   /* 1: draw figures at the end of run */
    char figures_dir[AS_PATH_MAX];
    unsigned figure_formats;       /* bitmask: 1 png, 2 pdf, 4 svg */
    char selection[4096];          /* --models list when a subset runs ("" = all) */
    struct as_ynode **generated;   /* owned: model entries expanded from sweeps */
    int n_generated;
    struct as_strbuf skipped;      /* sweep combinations skipped with `missing: skip`, one per line */
    int full_digest;               /* provenance: digest every byte of the inputs */
    enum as_on_error on_error;     /* a model's failure stops the run, or is recorded and skipped */
};

/* Load and check a config; errors carry file:line:col. On error *cfg is released. */
int as_config_load(struct as_config *cfg, const char *path, struct as_error *err);
/* Same, from a string (tests); `name` stands for the file name in messages and `dir` for its folder. */
int as_config_parse(struct as_config *cfg, const char *name, const char *dir, const char *text,
                    struct as_error *err);
void as_config_release(struct as_config *cfg);

/* Keep only the models named in the comma-separated list `names` (array mode), in config order;
 * an unknown name is a config error naming it. Records the selection in cfg->selection. */
int as_config_select_models(struct as_config *cfg, const char *names, struct as_error *err);

/* Replace the output path (from -o): resolved against the current directory; the log follows. */
void as_config_set_output(struct as_config *cfg, const char *output);

/* Where tensor `name` of model m comes from: fills path (file or synthetic spec), key ("" none)
 * and *ops (NULL: choose by path). Missing file -> AS_ERR_INPUT naming the model, the tensor and
 * the places looked at. */
int as_config_tensor(const struct as_config *cfg, const struct as_model_cfg *m, const char *name,
                     char *path, size_t path_n, char *key, size_t key_n, const struct as_reader_ops **ops,
                     struct as_error *err);

#endif
