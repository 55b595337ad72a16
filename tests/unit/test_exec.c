/* test_exec.c: the serial executor (pipeline/stage/as_exec.h) and the stage API helpers it rests
 * on: as_exec_model equals the building blocks driven by hand in another unit order (as the MPI
 * driver spreads units over ranks), errors propagate from every step, the field accessors check
 * types, and every stage records its options as attributes that do not collide with datasets. */
#undef NDEBUG
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_exec.h"
#include "as_stage_registry.h"
#include "as_test.h"
#include "as_test_stage.h"

#define SPEC "synthetic:layers=3,heads=4,seq_len=12,batch=2,head_dim=8,seed=5,model=ex"
#define SPEC_HEADS 4

/* ---- the stage's inputs, opened from the synthetic spec */

struct inputs {
    struct as_tensor_file tf[AS_STAGE_MAX_INPUTS];
    struct as_tensor_file *in[AS_STAGE_MAX_INPUTS];
    int n;
};

static int inputs_open(struct inputs *p, const struct as_stage_ops *ops, const void *cfg, struct as_error *err)
{
    const char *names[AS_STAGE_MAX_INPUTS];
    memset(p, 0, sizeof *p);
    int n = ops->inputs(cfg, names);
    for (int k = 0; k < n; k++) {
        if (as_tensor_file_open(&p->tf[k], &as_reader_synth, SPEC, names[k], err))
            return -1;
        p->in[k] = &p->tf[k];
        p->n++;
    }
    return 0;
}

static void inputs_close(struct inputs *p)
{
    for (int k = 0; k < p->n; k++)
        as_tensor_file_close(&p->tf[k]);
    memset(p, 0, sizeof *p);
}

/* The building blocks by hand, as a driver on several ranks would: each prepass round sums one
 * counter array per unit (units visited last layer first), rows computed last layer first. */
static int by_hand(struct as_exec *ex, const struct as_stage_ops *ops, const void *cfg, struct inputs *p,
                   unsigned char **rows, unsigned char **block, struct as_stage_out *out, struct as_strbuf *log,
                   struct as_error *err)
{
    const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS];
    for (int k = 0; k < p->n; k++)
        info[k] = as_tensor_file_info(p->in[k]);
    if (as_exec_begin(ex, ops, cfg, info, SPEC_HEADS, err))
        return -1;
    int64_t L = ex->shape.n_layers;
    if (as_exec_has_prepass(ex)) {
        int more = 1;
        for (int round = 0; more; round++) {
            size_t n = as_exec_prepass_count(ex, round);
            uint64_t *sum = calloc(n ? n : 1, sizeof *sum), *acc = calloc(n ? n : 1, sizeof *acc);
            AS_ASSERT(sum && acc);
            for (int64_t l = L - 1; l >= 0; l--) {
                struct as_unit u;
                memset(acc, 0, n * sizeof *acc);
                as_exec_unit(ex, "m", l, p->in, &u);
                if (as_exec_prepass_unit(ex, round, &u, acc, err))
                    return -1;
                for (size_t i = 0; i < n; i++)
                    sum[i] += acc[i];
            }
            int rc = as_exec_prepass_reduce(ex, round, sum, &more, err);
            free(sum);
            free(acc);
            if (rc)
                return -1;
        }
    }
    *rows = calloc((size_t)L, ex->schema.row_size);
    *block = calloc(1, ex->schema.model_size ? ex->schema.model_size : 1);
    AS_ASSERT(*rows && *block);
    for (int64_t l = L - 1; l >= 0; l--) {
        struct as_unit u;
        as_exec_unit(ex, "m", l, p->in, &u);
        if (as_exec_run_unit(ex, &u, as_schema_row(&ex->schema, *rows, l), err))
            return -1;
    }
    out->model_fields = *block;
    out->log = log;
    return as_exec_finalize(ex, "m", *rows, out, err);
}

static int same_attr(const struct as_attr *a, const struct as_attr *b)
{
    if (strcmp(a->name, b->name) || a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case AS_ATTR_F64:
        return !memcmp(&a->f64, &b->f64, sizeof a->f64);
    case AS_ATTR_I64:
        return a->i64 == b->i64;
    case AS_ATTR_STR:
        return !strcmp(a->str, b->str);
    default:
        return a->n == b->n && !memcmp(a->vec, b->vec, (size_t)a->n * sizeof *a->vec);
    }
}

/* Stages that run a live model (their input is a `weights:` folder, not a tensor of the synthetic
 * model): tests/unit/test_model.c and tests/lesion_pipeline.sh test them. */
static int runs_a_model(const struct as_stage_ops *ops)
{
    return !strcmp(ops->name, "lesion");
}

static void test_exec__model_equals_building_blocks(void)
{
    for (int s = 0; as_stages[s]; s++) {
        const struct as_stage_ops *ops = as_stages[s];
        if (runs_a_model(ops))
            continue;
        struct as_error err = { 0 };
        void *cfg = NULL;
        struct inputs p;
        CHECK_MSG(!as_test_stage_configure(ops, NULL, &cfg, &err), "%s: %s", ops->name, err.msg);
        CHECK_MSG(!inputs_open(&p, ops, cfg, &err), "%s: %s", ops->name, err.msg);
        struct as_exec a, b;
        CHECK_MSG(!as_exec_model(&a, ops, cfg, "m", p.in, SPEC_HEADS, &err), "%s: %s", ops->name, err.msg);
        unsigned char *rows = NULL, *block = NULL;
        struct as_stage_out out = { 0 };
        struct as_strbuf log = AS_STRBUF_INIT;
        CHECK_MSG(!by_hand(&b, ops, cfg, &p, &rows, &block, &out, &log, &err), "%s: %s", ops->name, err.msg);
        CHECK(a.shape.n_layers == 3 && a.shape.n_heads == SPEC_HEADS && a.schema.n > 0);
        CHECK(a.schema.row_size == b.schema.row_size && a.schema.model_size == b.schema.model_size);
        CHECK_MSG(rows && !memcmp(a.rows, rows, (size_t)a.shape.n_layers * a.schema.row_size), "%s rows", ops->name);
        CHECK_MSG(block && !memcmp(a.model_block, block, a.schema.model_size), "%s model block", ops->name);
        CHECK_MSG(a.out.n_attrs == out.n_attrs && a.out.n_attrs > 0, "%s attrs %d %d", ops->name, a.out.n_attrs,
                  out.n_attrs);
        for (int i = 0; i < a.out.n_attrs && i < out.n_attrs; i++)
            CHECK_MSG(same_attr(&a.out.attrs[i], &out.attrs[i]), "%s attr %s", ops->name, a.out.attrs[i].name);
        CHECK_MSG(a.log.len && !strcmp(as_strbuf_str(&a.log), as_strbuf_str(&log)), "%s log", ops->name);
        /* the schema's layout is the one the pipeline computes */
        for (int k = 0; k < a.schema.n; k++)
            CHECK(a.schema.offset[k] == as_schema_offset(a.schema.fields, a.schema.n, k));
        CHECK(a.schema.row_size == as_schema_row_size(a.schema.fields, a.schema.n));
        CHECK(as_exec_field(&a, "no such field", 0) == NULL);
        as_exec_release(&a);
        as_exec_release(&b);
        as_exec_release(&b); /* twice: a no-op */
        free(rows);
        free(block);
        as_strbuf_release(&log);
        inputs_close(&p);
        ops->release(cfg);
    }
}

/* Every stage, default options and a few others: the option attributes are there, unique (the
 * helper asserts it), and named unlike the group's datasets (alibi_slopes predates the rule). */
static void test_exec__options_recorded(void)
{
    static const struct { const char *stage, *yaml; const char *const want[12]; } cases[] = {
        { "histsim", NULL, { "quantile_method", "samples", "seed", "non_finite_policy", "edges", "quantiles", "input",
                             "cache_mb", NULL } },
        { "histsim", "{quantile: sampled, samples: 300, seed: 2, non_finite: skip, edges: 20}", { "samples", NULL } },
        { "monotonicity", NULL, { "epsilon", "input", "scale", "slopes", "method", NULL } },
        { "jacobian", NULL, { "attn", "grad", "strict", "row_sum_tol", "cos_eps", NULL } },
        { "patterns", NULL, { "input", "batch_index", "tokens", "keywords", NULL } },
        { "activations", NULL, { "heads", "q", "k", "v", "skip_first_token", "edges_min", "edges_max", "edges_bins",
                                 "prob_hist_on", "prob_min", "prob_bins", "gemm" } },
        { "activations", "{prob_hist: false, gemm: float64, edges: {min: -2, max: 3, bins: 10}}", { "gemm", NULL } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct as_stage_ops *ops = as_stage_find(cases[c].stage);
        struct as_error err = { 0 };
        void *cfg = NULL;
        struct inputs p;
        struct as_exec ex;
        AS_ASSERT(ops);
        CHECK_MSG(!as_test_stage_configure(ops, cases[c].yaml, &cfg, &err), "%s", err.msg);
        CHECK_MSG(!inputs_open(&p, ops, cfg, &err), "%s", err.msg);
        CHECK_MSG(!as_exec_model(&ex, ops, cfg, "m", p.in, SPEC_HEADS, &err), "%s: %s", ops->name, err.msg);
        for (int i = 0; i < 12 && cases[c].want[i]; i++)
            CHECK_MSG(as_test_attr(&ex.out, cases[c].want[i]), "%s: no attribute %s", ops->name, cases[c].want[i]);
        for (int i = 0; i < ex.out.n_attrs; i++)
            CHECK_MSG(!strcmp(ex.out.attrs[i].name, "alibi_slopes") || as_schema_find(&ex.schema,
                      ex.out.attrs[i].name) < 0, "%s: attribute %s is also a dataset", ops->name, ex.out.attrs[i].name);
        if (c == 1) {
            const struct as_attr *a = as_test_attr(&ex.out, "seed"), *e = as_test_attr(&ex.out, "edges");
            const struct as_attr *nf = as_test_attr(&ex.out, "non_finite_policy");
            CHECK(a && a->kind == AS_ATTR_I64 && a->i64 == 2 && e && e->i64 == 20);
            CHECK(nf && !strcmp(nf->str, "skip") && !strcmp(as_test_attr(&ex.out, "quantile_method")->str, "sampled"));
            CHECK(as_test_attr(&ex.out, "samples")->i64 == 300 && as_test_attr(&ex.out, "cache_mb")->i64 == 160);
            CHECK(ex.schema.fields[as_schema_find(&ex.schema, "bins")].dims[0] == 20);
        }
        if (c == 6) {
            CHECK(!strcmp(as_test_attr(&ex.out, "gemm")->str, "dgemm (float64 products)"));
            CHECK(as_test_attr(&ex.out, "prob_hist_on")->i64 == 0 && as_test_attr(&ex.out, "edges_bins")->i64 == 10);
            CHECK(as_test_attr(&ex.out, "edges_min")->f64 == -2 && as_test_attr(&ex.out, "edges_max")->f64 == 3);
        }
        as_exec_release(&ex);
        inputs_close(&p);
        ops->release(cfg);
    }
}

/* ---- a fake stage: the prepass sums (layer + 1) over the layers, twice; run writes that sum
 * times the layer; failures on request */

struct fake_cfg {
    int fail_at;                   /* 0 none, 1 shape, 2 state_init, 3 prepass, 4 reduce, 5 run, 6 finalize */
    int64_t layers;
};

struct fake_state {
    uint64_t sum[2];
    int released;
};

static int fake_released;
static const struct as_stage_ops fake_stage;

static int fake_inputs(const void *cfg, const char **names)
{
    names[0] = "qk_mean";
    return 1;
}

static int fake_shape(const void *cfg, const struct as_tensor_info *const *info, struct as_stage_shape *sh,
                      struct as_error *err)
{
    const struct fake_cfg *c = cfg;
    if (c->fail_at == 1)
        return as_error_set(err, AS_ERR_INPUT, "fake: bad shape");
    sh->n_layers = c->layers;
    sh->n_heads = sh->n_heads ? sh->n_heads : info[0]->shape[1];
    sh->seq_len = info[0]->shape[2];
    return 0;
}

static int fake_schema(const void *cfg, const struct as_stage_shape *sh, struct as_field *f)
{
    f[0] = (struct as_field){ .name = "scaled", .description = "sum * layer", .type = AS_FTYPE_I64, .per_layer = 1 };
    f[1] = (struct as_field){ .name = "half", .description = "sum * layer / 2", .type = AS_FTYPE_F64, .per_layer = 1,
                              .ndim = 1, .dims = { 2 }, .dim_names = { "pair" } };
    f[2] = (struct as_field){ .name = "total", .description = "sum of scaled", .type = AS_FTYPE_I64 };
    return 3;
}

static size_t fake_state_size(const void *cfg, const struct as_stage_shape *sh) { return sizeof(struct fake_state); }

static int fake_state_init(const void *cfg, void *state, const struct as_stage_shape *sh,
                           const struct as_tensor_info *const *info, struct as_error *err)
{
    const struct fake_cfg *c = cfg;
    return c->fail_at == 2 ? as_error_set(err, AS_ERR_NOMEM, "fake: no state") : 0;
}

static void fake_state_release(const void *cfg, void *state) { fake_released++; }

static size_t fake_prepass_count(const void *cfg, const void *state, int round) { return 1; }

static int fake_prepass(const void *cfg, const void *state, int round, struct as_unit *u, uint64_t *acc,
                        struct as_error *err)
{
    const struct fake_cfg *c = cfg;
    if (c->fail_at == 3 && u->layer == 1)
        return as_error_set(err, AS_ERR_INPUT, "fake: prepass of layer %lld", (long long)u->layer);
    acc[0] += (uint64_t)u->layer + 1;
    return 0;
}

static int fake_reduce(const void *cfg, void *state, int round, const uint64_t *sum, int *more, struct as_error *err)
{
    const struct fake_cfg *c = cfg;
    struct fake_state *s = state;
    if (c->fail_at == 4)
        return as_error_set(err, AS_ERR_INPUT, "fake: reduce");
    s->sum[round] = sum[0];
    *more = round == 0;
    return 0;
}

static int fake_run(const void *cfg, const void *state, struct as_unit *u, unsigned char *row, struct as_error *err)
{
    const struct fake_cfg *c = cfg;
    const struct fake_state *s = state;
    if (c->fail_at == 5 && u->layer == 2)
        return as_error_set(err, AS_ERR_INPUT, "fake: run of layer %lld", (long long)u->layer);
    struct as_schema sc;
    as_schema_of(&sc, &fake_stage, cfg, u->shape);
    *as_schema_i64(&sc, row, 0) = (int64_t)(s->sum[0] + s->sum[1]) * u->layer;
    double *h = as_schema_f64(&sc, row, 1);
    h[0] = h[1] = (double)(s->sum[0] * (uint64_t)u->layer) / 2;
    return 0;
}

static int fake_finalize(const void *cfg, const void *state, const char *model, const struct as_stage_shape *sh,
                         const unsigned char *rows, struct as_stage_out *out, struct as_error *err)
{
    const struct fake_cfg *c = cfg;
    if (c->fail_at == 6)
        return as_error_set(err, AS_ERR_INTERNAL, "fake: finalize");
    struct as_schema sc;
    as_schema_of(&sc, &fake_stage, cfg, sh);
    int64_t t = 0;
    for (int64_t l = 0; l < sh->n_layers; l++)
        t += *as_schema_i64_const(&sc, as_schema_row_const(&sc, rows, l), 0);
    *as_schema_i64(&sc, out->model_fields, 2) = t;
    as_stage_out_i64(out, "total", t);
    as_strbuf_addf(out->log, "%s fake total %lld\n", model, (long long)t);
    return 0;
}

static const struct as_stage_ops fake_stage = {
    .name = "fake", .inputs = fake_inputs, .shape = fake_shape, .schema = fake_schema,
    .state_size = fake_state_size, .state_init = fake_state_init, .state_release = fake_state_release,
    .prepass_count = fake_prepass_count, .prepass = fake_prepass, .prepass_reduce = fake_reduce,
    .run = fake_run, .finalize = fake_finalize,
};

static void test_exec__fake_stage_and_errors(void)
{
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    AS_ASSERT(!as_tensor_file_open(&tf, &as_reader_synth, SPEC, "qk_mean", &err));
    struct as_tensor_file *in[1] = { &tf };
    struct fake_cfg c = { 0, 3 };
    struct as_exec ex;
    fake_released = 0;
    CHECK_MSG(!as_exec_model(&ex, &fake_stage, &c, "f", in, 0, &err), "%s", err.msg);
    /* both rounds summed 1 + 2 + 3 = 6 over the layers */
    const int64_t *scaled = as_exec_field(&ex, "scaled", 2), *total = as_exec_field(&ex, "total", 0);
    CHECK(scaled && *scaled == 24 && *(const int64_t *)as_exec_field(&ex, "scaled", 1) == 12);
    CHECK(((const double *)as_exec_field(&ex, "half", 2))[1] == 6.0);
    CHECK(total && *total == 36 && as_test_attr(&ex.out, "total")->i64 == 36);
    CHECK(ex.schema.row_size == 24 && ex.schema.model_size == 8 && ex.schema.offset[1] == 8);
    CHECK(ex.shape.n_heads == SPEC_HEADS);
    CHECK(!strcmp(as_strbuf_str(&ex.log), "f fake total 36\n"));
    as_exec_release(&ex);
    CHECK(fake_released == 1);
    /* the hint reaches shape() */
    CHECK(!as_exec_shape(&ex, &fake_stage, &c, (const struct as_tensor_info *const[]){ as_tensor_file_info(&tf) }, 7,
                         &err) && ex.shape.n_heads == 7 && !ex.state);
    as_exec_release(&ex);
    CHECK(fake_released == 1); /* no state, no state_release */

    static const char *const msgs[] = { NULL, "fake: bad shape", "fake: no state", "fake: prepass of layer 1",
                                        "fake: reduce", "fake: run of layer 2", "fake: finalize" };
    static const enum as_status sts[] = { AS_OK, AS_ERR_INPUT, AS_ERR_NOMEM, AS_ERR_INPUT, AS_ERR_INPUT, AS_ERR_INPUT,
                                          AS_ERR_INTERNAL };
    for (int f = 1; f <= 6; f++) {
        c.fail_at = f;
        as_error_clear(&err);
        fake_released = 0;
        CHECK(as_exec_model(&ex, &fake_stage, &c, "f", in, 0, &err) == -1);
        CHECK_MSG(err.status == sts[f] && !strcmp(err.msg, msgs[f]), "fail_at %d: %s", f, err.msg);
        as_exec_release(&ex);
        CHECK(fake_released == (f >= 2)); /* state_init ran (even when it failed): released */
    }
    as_tensor_file_close(&tf);
}

/* A field read with the wrong type is a bug: the process stops with exit code 6. */
static void test_exec__accessor_type_check(void)
{
    struct as_field f[2] = {
        { .name = "a", .type = AS_FTYPE_F64, .per_layer = 1, .ndim = 1, .dims = { 3 } },
        { .name = "b", .type = AS_FTYPE_I64, .per_layer = 1 },
    };
    struct as_schema s;
    as_schema_init(&s, f, 2);
    unsigned char row[32] = { 0 };
    CHECK(s.row_size == 32 && s.offset[1] == 24 && as_schema_i64(&s, row, 1) == (int64_t *)(void *)(row + 24));
    CHECK(as_schema_find(&s, "b") == 1 && as_schema_find(&s, "c") == -1);
    for (int bad = 0; bad < 2; bad++) {
        fflush(stderr);
        pid_t pid = fork();
        AS_ASSERT(pid >= 0);
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stderr))
                _exit(1);
            if (bad)
                as_schema_f64(&s, row, 2); /* no such field */
            else
                as_schema_f64(&s, row, 1); /* int64 as float64 */
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == AS_EXIT_INTERNAL, "case %d: status %d", bad, st);
    }
}

int main(void)
{
    TEST_RUN(test_exec__model_equals_building_blocks);
    TEST_RUN(test_exec__options_recorded);
    TEST_RUN(test_exec__fake_stage_and_errors);
    TEST_RUN(test_exec__accessor_type_check);
    return as_test_done();
}
