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
 *   data_root: /data               # (optional) the {data_root} of sweep templates
 *   figures: {formats: [png]}      # (optional) draw figures at the end of run; style: paper draws
 *                                  # the paper's files; matrices: [{model, layer, head}] stores
 *                                  # those T x T slabs of qk_mean (and qk_var) in the results
 *   on_error: stop                 # or skip: a model whose inputs or stages fail is recorded as
 *                                  # failed and the others finish (exit 4, complete = 0)
 *   split: auto                    # units finer than a layer: auto (large layers, more ranks than
 *                                  # work), off, or N pieces per phase for every layer of a stage
 *                                  # that splits (histsim, monotonicity); results are the same
 * A model entry may have `label:` (display name in legends, model attribute `label`).
 * Relative paths resolve against the config file's folder.
 *
 * Overrides (`--set KEY=VALUE` of run and validate): KEY is a dotted path into the YAML tree
 * (`stages.histsim.edges`, `sweep.0.missing`; a number indexes a list), VALUE is YAML (`100`,
 * `[png, pdf]`, `"a b"`). Each is applied to the tree before the config is parsed, so every check
 * applies: a key the schema does not have is the config error `unknown key` naming it, a value of
 * the wrong type the usual type error; the position of such an error is the override itself
 * (`--set stages.histsim.edgs=100: stages.histsim: unknown key 'edgs' (...)`). A relative
 * `data_root` given by --set resolves against the current directory (like -o). */
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
    char prompt[AS_PATH_MAX];      /* `prompt:` token ids: q/k/v_acts then come live from the model's
                                    * forward pass over them; "" none */
    char model_id[256];            /* seeds' layout, "" when not used */
    char dataset[64];
    int64_t seq_len_attr;          /* seeds' layout seq_len, 0 when not used */
    int64_t heads;                 /* `heads:` (0: unknown), a hint for stages that cannot see it */
    char label[AS_NAME_MAX];       /* `label:` display name for legends, "" when not given */
    struct as_tensor_ref tensors[AS_MAX_TENSORS]; /* explicit per-tensor files */
    int n_tensors;
};

struct as_stage_cfg {
    const struct as_stage_ops *ops;
    void *cfg;                     /* owned: ops->release() */
    const struct as_ynode *node;   /* its options (NULL: defaults); borrowed from doc */
};

/* One T x T matrix the run stores for the attention-matrix figures (figures.matrices). */
struct as_matrix_req {
    char model[AS_NAME_MAX];       /* a model of the config */
    int64_t layer, head;           /* 0-based */
};

/* figure_formats bits: AS_CONFIG_FIG_PNG, _PDF, _SVG (the values of as_plot.h's AS_PLOT_*), and
 * AS_CONFIG_FIG_PAPER: `style: paper`, the paper's files (attnstat plot --style paper). */
#define AS_CONFIG_FIG_PNG 1u
#define AS_CONFIG_FIG_PDF 2u
#define AS_CONFIG_FIG_SVG 4u
#define AS_CONFIG_FIG_PAPER 256u

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
    unsigned figure_formats;       /* bitmask AS_CONFIG_FIG_*: 1 png, 2 pdf, 4 svg, 256 paper style */
    struct as_matrix_req *matrices; /* owned, n_matrices: figures.matrices */
    int n_matrices;
    char data_root[AS_PATH_MAX];   /* data_root: resolved, "" when not set */
    struct as_strbuf overrides;    /* the --set KEY=VALUE applied, one per line, not newline-terminated */
    struct as_ydoc *set_docs;      /* owned: the parsed values of the overrides (n_set_docs) */
    int n_set_docs;
    char selection[4096];          /* --models list when a subset runs ("" = all) */
    struct as_ynode **generated;   /* owned: model entries expanded from sweeps */
    int n_generated;
    struct as_strbuf skipped;      /* sweep combinations skipped with `missing: skip`, one per line */
    int full_digest;               /* provenance: digest every byte of the inputs */
    enum as_on_error on_error;     /* a model's failure stops the run, or is recorded and skipped */
    int split;                     /* split: AS_CONFIG_SPLIT_AUTO (-1, default), 0 (off), or pieces per phase */
};

#define AS_CONFIG_SPLIT_AUTO (-1)

/* Load and check a config; errors carry file:line:col. On error *cfg is released. */
int as_config_load(struct as_config *cfg, const char *path, struct as_error *err);
/* Same, from a string (tests); `name` stands for the file name in messages and `dir` for its folder. */
int as_config_parse(struct as_config *cfg, const char *name, const char *dir, const char *text,
                    struct as_error *err);
/* as_config_load / as_config_parse with the n_sets overrides "KEY=VALUE" (borrowed) applied in
 * order (header comment). An override without '=' or with an empty key is AS_ERR_USAGE; a path
 * through a value that is not a mapping or list, or a list index out of range, AS_ERR_CONFIG; then
 * the config's own errors. The overrides are recorded in cfg->overrides. */
int as_config_load_set(struct as_config *cfg, const char *path, const char *const *sets, int n_sets,
                       struct as_error *err);
int as_config_parse_set(struct as_config *cfg, const char *name, const char *dir, const char *text,
                        const char *const *sets, int n_sets, struct as_error *err);
/* The model of the config named `name`, or NULL. Borrowed. */
const struct as_model_cfg *as_config_model(const struct as_config *cfg, const char *name);
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
