/* test_plan.c: the plan as a pure function, for 1, 2, 3 and 7 ranks in one process: the LPT
 * assignment; plans built from a config and described inputs (no file is opened); journal replay
 * and re-assignment when a run resumes at another rank count. */
#undef NDEBUG
#include <stdlib.h>
#include <string.h>

#include "as_config.h"
#include "as_plan.h"
#include "as_test.h"

static void test_plan__every_unit_once_and_balanced(void)
{
    /* two models of different sizes, like 30x32 heads next to 70x112 */
    struct as_unit_desc u[100];
    size_t n = 0;
    for (int l = 0; l < 30; l++)
        u[n++] = (struct as_unit_desc){ .model = 0, .layer = l, .cost = 32.0 * 65536, .bytes = 32 * 65536 * 4, .stage = -1 };
    for (int l = 0; l < 70; l++)
        u[n++] = (struct as_unit_desc){ .model = 1, .layer = l, .cost = 112.0 * 65536, .bytes = 112 * 65536 * 4, .stage = -1 };
    int ranks[] = { 1, 2, 3, 7 };
    for (int k = 0; k < 4; k++) {
        int nr = ranks[k], owner[100], owner2[100];
        double load[7], total = 0, sum = 0;
        as_plan_assign(u, n, nr, owner, load);
        as_plan_assign(u, n, nr, owner2, NULL);
        CHECK(memcmp(owner, owner2, sizeof owner) == 0); /* deterministic */
        for (size_t i = 0; i < n; i++) {
            CHECK(owner[i] >= 0 && owner[i] < nr);
            total += u[i].cost;
        }
        for (int r = 0; r < nr; r++)
            sum += load[r];
        CHECK_CLOSE(sum, total, 0, 1e-12);
        double bal = as_plan_balance(load, nr);
        CHECK_MSG(bal > 0.95, "np=%d balance %.3f", nr, bal);
    }
}

static void test_plan__more_ranks_than_units(void)
{
    struct as_unit_desc u[2] = { { .model = 0, .layer = 0, .cost = 1, .bytes = 1, .stage = -1 },
                                 { .model = 0, .layer = 1, .cost = 1, .bytes = 1, .stage = -1 } };
    int owner[2];
    double load[7];
    as_plan_assign(u, 2, 7, owner, load);
    CHECK(owner[0] == 0 && owner[1] == 1);
    CHECK(load[6] == 0);
    CHECK(as_plan_balance(load, 7) < 0.3);
}

static void test_plan__ties_by_model_then_layer(void)
{
    #define U(m, l) { .model = m, .layer = l, .cost = 5, .stage = -1 }
    struct as_unit_desc u[4] = { U(1, 0), U(0, 1), U(0, 0), U(1, 1) };
#undef U
    int owner[4];
    as_plan_assign(u, 4, 2, owner, NULL);
    /* order (0,0) (0,1) (1,0) (1,1) -> ranks 0 1 0 1 */
    CHECK(owner[2] == 0 && owner[1] == 1 && owner[0] == 0 && owner[3] == 1);
}

/* A config of three models (different layer and head counts), histsim + monotonicity, with the
 * inputs described by hand as a probe would: no file is read. */
static const char *const PLAN_YAML = "output: out.h5\n"
                                     "models:\n"
                                     "  - {name: a, synthetic: {layers: 5, heads: 4, seq_len: 16}}\n"
                                     "  - {name: b, synthetic: {layers: 3, heads: 8, seq_len: 32}}\n"
                                     "  - {name: c, synthetic: {layers: 7, heads: 2, seq_len: 8}}\n"
                                     "stages: {histsim: {}, monotonicity: {}}\n";

static void describe_inputs(const struct as_config *cfg, struct as_plan_inputs *in)
{
    const char *names[AS_MAX_TENSORS];
    int n = as_plan_input_names(cfg, names, AS_MAX_TENSORS);
    CHECK(n == 2 && !strcmp(names[0], "qk_mean") && !strcmp(names[1], "attention_probs_mean"));
    for (int i = 0; i < cfg->n_models; i++) {
        const struct as_synth_spec *sp = &cfg->models[i].synth;
        memset(&in[i], 0, sizeof in[i]);
        in[i].n = n;
        for (int k = 0; k < n; k++) {
            struct as_plan_input *t = &in[i].in[k];
            memset(t, 0, sizeof *t);
            snprintf(t->name, sizeof t->name, "%s", names[k]);
            snprintf(t->path, sizeof t->path, "/nowhere/%s/%s.npy", cfg->models[i].name, names[k]);
            t->info.dtype = AS_DTYPE_F32;
            t->info.ndim = 4;
            int64_t shape[4] = { sp->layers, sp->heads, sp->seq_len, sp->seq_len };
            memcpy(t->info.shape, shape, sizeof shape);
            t->info.stride[3] = 1;
            for (int d = 2; d >= 0; d--)
                t->info.stride[d] = t->info.stride[d + 1] * shape[d + 1];
            snprintf(t->digest, sizeof t->digest, "%016x", 0x1234 + i * 16 + k);
        }
    }
}

/* The config of `yaml` and its inputs described by hand. */
static void setup(struct as_config *cfg, struct as_plan_inputs *in, const char *yaml)
{
    struct as_error err = { 0 };
    CHECK_MSG(as_config_parse(cfg, "c.yaml", "/base", yaml, &err) == 0, "%s", err.msg);
    describe_inputs(cfg, in);
}

static void test_plan__build_from_described_inputs(void)
{
    struct as_config cfg;
    struct as_error err = { 0 };
    struct as_plan_inputs in[3];
    setup(&cfg, in, PLAN_YAML);
    int ranks[] = { 1, 2, 3, 7 };
    for (int k = 0; k < 4; k++) {
        struct as_plan p;
        CHECK_MSG(as_plan_build(&p, &cfg, in, ranks[k], &err) == 0, "%s", err.msg);
        CHECK(p.n_models == 3 && p.n_units == 15 && p.n_todo == 15);
        CHECK(p.models[0].n_layers == 5 && p.models[1].n_heads == 8 && p.models[2].seq_len == 8);
        CHECK(p.models[1].first_unit == 5 && p.models[2].first_unit == 8);
        for (size_t u = 0; u < p.n_units; u++) {
            CHECK(p.units[u].model == (u < 5 ? 0 : u < 8 ? 1 : 2));
            CHECK(p.run_owner[u] == p.owner[u] && p.owner[u] >= 0 && p.owner[u] < ranks[k]);
            CHECK(p.units[u].cost > 0);
            CHECK(as_plan_stage_todo(&p, u, 0) && as_plan_stage_todo(&p, u, 1));
        }
        /* a bigger model's units cost more */
        CHECK(p.units[5].cost > p.units[0].cost && p.units[0].cost > p.units[8].cost);
        struct as_strbuf d = AS_STRBUF_INIT;
        as_plan_describe(&p, &d);
        CHECK(strstr(as_strbuf_str(&d), "model b input qk_mean /nowhere/b/qk_mean.npy float32 (3, 8, 32, 32)") != NULL);
        CHECK(strstr(as_strbuf_str(&d), "stage monotonicity") != NULL);
        as_strbuf_release(&d);
        as_plan_release(&p);
    }
    as_config_release(&cfg);
}

/* An interrupted run at np = a finished some (unit, stage)s; the resume at np = b marks them done
 * from the journal records (by key) and assigns exactly the units with a stage left, the same way
 * whatever a was. */
static void test_plan__resume_at_another_rank_count(void)
{
    struct as_config cfg;
    struct as_error err = { 0 };
    struct as_plan_inputs in[3];
    setup(&cfg, in, PLAN_YAML);
    int ranks[] = { 1, 2, 3, 7 };
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            struct as_plan first, resumed;
            CHECK(as_plan_build(&first, &cfg, in, ranks[a], &err) == 0);
            CHECK(as_plan_build(&resumed, &cfg, in, ranks[b], &err) == 0);
            /* the journal of the first attempt: every stage of rank 0's units, histsim of every
             * third unit */
            size_t n_done = 0;
            for (size_t u = 0; u < first.n_units; u++) {
                const struct as_unit_desc *ud = &first.units[u];
                const struct as_plan_model *mr = &first.models[ud->model];
                for (int s = 0; s < 2; s++)
                    if (first.owner[u] == 0 || (u % 3 == 0 && s == 0)) {
                        CHECK(as_plan_mark_done(&resumed, mr->key[s], ud->layer, mr->st[s].row_size, NULL, NULL) == 1);
                    }
                n_done += first.owner[u] == 0;
            }
            /* records of another plan are ignored */
            const uint64_t other[2] = { 1, 2 };
            const struct as_plan_model *m0 = &first.models[0];
            CHECK(as_plan_mark_done(&resumed, other, 0, m0->st[0].row_size, NULL, NULL) == 0);
            CHECK(as_plan_mark_done(&resumed, m0->key[0], 5, m0->st[0].row_size, NULL, NULL) == 0); /* no layer 5 */
            CHECK(as_plan_mark_done(&resumed, m0->key[0], -1, m0->st[0].row_size, NULL, NULL) == 0);
            CHECK(as_plan_mark_done(&resumed, m0->key[0], 0, m0->st[0].row_size + 8, NULL, NULL) == 0);
            as_plan_reassign(&resumed);
            CHECK(resumed.n_todo == resumed.n_units - n_done);
            size_t todo = 0;
            for (size_t u = 0; u < resumed.n_units; u++) {
                int left = as_plan_stage_todo(&resumed, u, 0) + as_plan_stage_todo(&resumed, u, 1);
                CHECK(left == (first.owner[u] == 0 ? 0 : u % 3 == 0 ? 1 : 2));
                if (!left) {
                    CHECK(resumed.run_owner[u] == -1);
                    continue;
                }
                todo++;
                CHECK(resumed.run_owner[u] >= 0 && resumed.run_owner[u] < ranks[b]);
                /* prepass work and row writing stay with the full plan's owner */
                CHECK(resumed.owner[u] >= 0 && resumed.owner[u] < ranks[b]);
            }
            CHECK(todo == resumed.n_todo);
            /* the assignment of what is left is that of a fresh plan of those units alone, each
             * costing the stages it has left */
            struct as_unit_desc left[32];
            int own[32];
            size_t k = 0;
            for (size_t u = 0; u < resumed.n_units; u++)
                if (resumed.run_owner[u] >= 0) {
                    const struct as_plan_model *mr = &resumed.models[resumed.units[u].model];
                    left[k] = resumed.units[u];
                    left[k].cost = (as_plan_stage_todo(&resumed, u, 0) ? mr->st[0].shape.unit_cost : 0) +
                                   (as_plan_stage_todo(&resumed, u, 1) ? mr->st[1].shape.unit_cost : 0);
                    k++;
                }
            as_plan_assign(left, k, ranks[b], own, NULL);
            k = 0;
            for (size_t u = 0; u < resumed.n_units; u++)
                if (resumed.run_owner[u] >= 0)
                    CHECK(resumed.run_owner[u] == own[k++]);
            as_plan_release(&first);
            as_plan_release(&resumed);
        }
    as_config_release(&cfg);
}

/* Everything finished before: nothing left to assign. */
static void test_plan__resume_with_everything_done(void)
{
    struct as_config cfg;
    struct as_error err = { 0 };
    struct as_plan_inputs in[3];
    setup(&cfg, in, PLAN_YAML);
    struct as_plan p;
    CHECK(as_plan_build(&p, &cfg, in, 3, &err) == 0);
    for (int i = 0; i < 3; i++)
        for (int s = 0; s < 2; s++)
            if (i == 1)
                as_plan_mark_reused(&p, i, s);
            else
                for (int64_t l = 0; l < p.models[i].n_layers; l++)
                    CHECK(as_plan_mark_done(&p, p.models[i].key[s], l, p.models[i].st[s].row_size, NULL, NULL) == 1);
    as_plan_reassign(&p);
    CHECK(p.n_todo == 0);
    CHECK(p.models[1].reused[0] && p.models[1].reused[1] && !p.models[0].reused[0]);
    for (size_t u = 0; u < p.n_units; u++)
        CHECK(p.run_owner[u] == -1);
    as_plan_release(&p);
    as_config_release(&cfg);
}

/* Keys: what determines a (model, stage)'s results, and nothing else. */
static void test_plan__keys(void)
{
    struct as_config c1, c2;
    struct as_error err = { 0 };
    CHECK(as_config_parse(&c1, "c.yaml", "/base", PLAN_YAML, &err) == 0);
    /* c first, b gone, another model added, another output; monotonicity with another epsilon */
    const char *y2 = "output: other.h5\n"
                     "models:\n"
                     "  - {name: c, synthetic: {layers: 7, heads: 2, seq_len: 8}}\n"
                     "  - {name: d, synthetic: {layers: 2, heads: 2, seq_len: 8}}\n"
                     "  - {name: a, synthetic: {layers: 5, heads: 4, seq_len: 16}}\n"
                     "stages: {histsim: {}, monotonicity: {epsilon: 1e-9}}\n";
    CHECK_MSG(as_config_parse(&c2, "c.yaml", "/base", y2, &err) == 0, "%s", err.msg);
    struct as_plan_inputs i1[3], i2[3];
    describe_inputs(&c1, i1);
    describe_inputs(&c2, i2);
    /* the same files as c1's a and c */
    i2[0] = i1[2];
    i2[2] = i1[0];
    struct as_plan p1, p2;
    CHECK(as_plan_build(&p1, &c1, i1, 2, &err) == 0 && as_plan_build(&p2, &c2, i2, 5, &err) == 0);
    /* histsim of a and of c: same key in both configs; monotonicity differs (its options) */
    CHECK(!memcmp(p1.models[0].key[0], p2.models[2].key[0], 16));
    CHECK(!memcmp(p1.models[2].key[0], p2.models[0].key[0], 16));
    CHECK(memcmp(p1.models[0].key[1], p2.models[2].key[1], 16) != 0);
    /* different inputs, different keys; histsim and monotonicity of one model differ */
    CHECK(memcmp(p1.models[0].key[0], p1.models[1].key[0], 16) != 0);
    CHECK(memcmp(p1.models[0].key[0], p1.models[0].key[1], 16) != 0);
    /* an input rewritten (its mtime) changes the keys of the stages that read it */
    i1[0].in[0].mtime += 1;
    struct as_plan p3;
    CHECK(as_plan_build(&p3, &c1, i1, 2, &err) == 0);
    CHECK(memcmp(p1.models[0].key[0], p3.models[0].key[0], 16) != 0); /* histsim reads qk_mean */
    CHECK(!memcmp(p1.models[0].key[1], p3.models[0].key[1], 16));    /* monotonicity does not */
    /* a synthetic model's values depend on its name: renamed, it is another model */
    struct as_config c4;
    const char *y4 = "output: out.h5\nmodels:\n  - {name: a2, synthetic: {layers: 5, heads: 4, seq_len: 16}}\n"
                     "stages: {histsim: {}, monotonicity: {}}\n";
    CHECK(as_config_parse(&c4, "c.yaml", "/base", y4, &err) == 0);
    struct as_plan_inputs i4[1];
    describe_inputs(&c4, i4);
    i4[0] = i1[0];
    i4[0].in[0].mtime -= 1;
    struct as_plan p4;
    CHECK(as_plan_build(&p4, &c4, i4, 1, &err) == 0);
    CHECK(memcmp(p1.models[0].key[0], p4.models[0].key[0], 16) != 0);
    as_plan_release(&p4);
    as_config_release(&c4);
    struct as_strbuf t = AS_STRBUF_INIT;
    as_plan_key_text(&p1, 0, 0, &t);
    CHECK_MSG(strstr(as_strbuf_str(&t), "stage histsim") && strstr(as_strbuf_str(&t), "/nowhere/a/qk_mean.npy"),
              "%s", as_strbuf_str(&t));
    as_strbuf_release(&t);
    as_plan_release(&p1);
    as_plan_release(&p2);
    as_plan_release(&p3);
    as_config_release(&c1);
    as_config_release(&c2);
}

/* on_error: skip: a model whose inputs failed, or that a stage refuses, is failed with its
 * message and has no units; the others are planned as if it were not there. */
static void test_plan__on_error_skip(void)
{
    struct as_config cfg;
    struct as_error err = { 0 };
    char y[1024];
    snprintf(y, sizeof y, "%son_error: skip\n", PLAN_YAML);
    CHECK(as_config_parse(&cfg, "c.yaml", "/base", y, &err) == 0);
    CHECK(cfg.on_error == AS_ON_ERROR_SKIP);
    struct as_plan_inputs in[3];
    describe_inputs(&cfg, in);
    in[0].failed = 1;
    in[0].n = 0;
    snprintf(in[0].error, sizeof in[0].error, "model 'a': tensor 'qk_mean': no file");
    in[1].in[0].info.shape[3] = 31; /* b's qk_mean is not square */
    struct as_plan p;
    CHECK_MSG(as_plan_build(&p, &cfg, in, 2, &err) == 0, "%s", err.msg);
    CHECK(p.models[0].failed && strstr(p.models[0].error, "no file"));
    CHECK(p.models[1].failed && strstr(p.models[1].error, "model 'b' stage histsim"));
    CHECK(!p.models[2].failed && p.n_units == 7 && p.models[2].first_unit == 0);
    as_plan_fail_model(&p, 2, "unit c/L3: 2 non-finite values");
    as_plan_reassign(&p);
    CHECK(p.n_todo == 0 && p.models[2].failed);
    as_plan_release(&p);
    as_config_release(&cfg);
}

/* A stage that cannot take the described input fails the plan with the model and stage named. */
static void test_plan__shape_error_names_model_and_stage(void)
{
    struct as_config cfg;
    struct as_error err = { 0 };
    struct as_plan_inputs in[3];
    setup(&cfg, in, PLAN_YAML);
    in[1].in[0].info.shape[3] = 31; /* b's qk_mean is not square */
    struct as_plan p;
    CHECK(as_plan_build(&p, &cfg, in, 2, &err) != 0);
    CHECK_MSG(strstr(err.msg, "model 'b' stage histsim") != NULL, "%s", err.msg);
    as_plan_release(&p);
    as_config_release(&cfg);
}

int main(void)
{
    TEST_RUN(test_plan__build_from_described_inputs);
    TEST_RUN(test_plan__resume_at_another_rank_count);
    TEST_RUN(test_plan__resume_with_everything_done);
    TEST_RUN(test_plan__keys);
    TEST_RUN(test_plan__on_error_skip);
    TEST_RUN(test_plan__shape_error_names_model_and_stage);
    TEST_RUN(test_plan__every_unit_once_and_balanced);
    TEST_RUN(test_plan__more_ranks_than_units);
    TEST_RUN(test_plan__ties_by_model_then_layer);
    return as_test_done();
}
