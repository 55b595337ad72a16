/* test_monotonicity.c: the monotonicity stage: fast kernel vs _ref, ALiBi slopes, options and
 * input errors, and parity with the notebook's values on the tiny ALiBi model fixtures. */
#undef NDEBUG
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_test.h"
#include "as_test_stage.h"
#include "monotonicity/monotonicity.h"

/* compare_results.py's tolerances for the monotonicity datasets (abs, rel) */
#define TOL_RATE_ABS 1e-12
#define TOL_RATE_REL 1e-9
#define TOL_MEAN_ABS 1e-12
#define TOL_MEAN_REL 1e-7
#define TOL_STD_ABS 1e-12
#define TOL_STD_REL 1e-6
#define TOL_SLOPE_REL 1e-12
/* fast vs _ref: both are exact to ~1e-15; this leaves room for the _ref's plain double sums */
#define KTOL_MEAN_REL 1e-7
#define KTOL_STD_REL 1e-6
#define KTOL_ABS 1e-18

#define N_PER_LAYER 7

static uint64_t rng_state = 12345;
static double urand(void)
{
    return as_u01(as_mix64(rng_state++));
}

/* ---- kernel: fast vs ref */

static void compare_kernels(const char *what, const double *ct, int64_t T, double eps, double std_atol)
{
    double *work = malloc((size_t)as_mono_work_size(T > 0 ? T : 1) * sizeof *work);
    struct as_mono_stats f, r;
    as_mono_count(ct, T, eps, work, &f);
    as_mono_count_ref(ct, T, eps, &r);
    free(work);
    CHECK_MSG(f.combinations == r.combinations && f.combinations == T * (T - 1) / 2 * T, "%s: combinations %" PRId64
              " vs %" PRId64, what, f.combinations, r.combinations);
    CHECK_MSG(f.violations == r.violations, "%s T=%" PRId64 ": violations %" PRId64 " vs ref %" PRId64, what, T,
              f.violations, r.violations);
    if (!CHECK_CLOSE(f.violation_rate, r.violation_rate, 0, 1e-15) ||
        !CHECK_CLOSE(f.abs_mean, r.abs_mean, KTOL_ABS, KTOL_MEAN_REL) ||
        !CHECK_CLOSE(f.rel_mean, r.rel_mean, KTOL_ABS, KTOL_MEAN_REL) ||
        !CHECK_CLOSE(f.abs_std, r.abs_std, std_atol, KTOL_STD_REL) ||
        !CHECK_CLOSE(f.rel_std, r.rel_std, std_atol, KTOL_STD_REL))
        fprintf(stderr, "  in %s, T=%" PRId64 " eps=%g (n=%" PRId64 ")\n", what, T, eps, f.violations);
}

/* ct from random scores through the stage's softmax and cumsum kernels. */
static void make_ct_from_scores(double *ct, int64_t T, int64_t H, double spread, int ties)
{
    double *s = malloc((size_t)(T * T) * sizeof *s), *acc = calloc((size_t)(T * T), sizeof *acc);
    double *m = malloc((size_t)H * sizeof *m);
    as_mono_slopes(AS_MONO_RULE_STANDARD, H, m);
    for (int64_t h = 0; h < H; h++) {
        for (int64_t i = 0; i < T * T; i++)
            s[i] = ties ? floor(urand() * 4) * spread : (urand() - 0.5) * spread;
        as_mono_head_accum(s, T, 1.0, m[h], acc);
    }
    as_mono_cumsum_t(acc, T, H, ct);
    free(s);
    free(acc);
    free(m);
}

static void test_monotonicity__kernel_vs_ref(void)
{
    static const int64_t Ts[] = { 1, 2, 3, 5, 8, 9, 16, 17, 33, 64, 100, 257 };
    for (size_t t = 0; t < sizeof Ts / sizeof *Ts; t++) {
        int64_t T = Ts[t];
        size_t tt = (size_t)(T * T);
        double *ct = malloc(tt * sizeof *ct);
        char what[64];

        for (int spread = 0; spread < 3; spread++) {
            make_ct_from_scores(ct, T, 4, spread == 0 ? 1.0 : spread == 1 ? 6.0 : 20.0, 0);
            snprintf(what, sizeof what, "scores spread %d", spread);
            compare_kernels(what, ct, T, 1e-10, KTOL_ABS);
            compare_kernels(what, ct, T, 0.0, KTOL_ABS);
        }
        make_ct_from_scores(ct, T, 3, 2.0, 1);
        compare_kernels("tied scores", ct, T, 1e-10, KTOL_ABS);
        compare_kernels("tied scores", ct, T, 0.0, KTOL_ABS);

        for (size_t i = 0; i < tt; i++) /* uniform: about half the pairs violate */
            ct[i] = urand();
        compare_kernels("uniform", ct, T, 1e-10, KTOL_ABS);
        compare_kernels("uniform eps 0.3", ct, T, 0.3, KTOL_ABS);
        for (size_t i = 0; i < tt; i++) /* heavy ties */
            ct[i] = floor(urand() * 5) / 4;
        compare_kernels("ties", ct, T, 0.0, KTOL_ABS);
        compare_kernels("ties eps 0.25", ct, T, 0.25, KTOL_ABS);
        for (int64_t k = 0; k < T; k++) /* equal rows: C[i,k] the same for every i */
            for (int64_t i = 0; i < T; i++)
                ct[k * T + i] = (double)k / (double)T;
        compare_kernels("equal rows", ct, T, 0.0, KTOL_ABS);
        for (size_t i = 0; i < tt; i++)
            ct[i] = 0.375;
        compare_kernels("constant", ct, T, 0.0, KTOL_ABS);
        for (int64_t k = 0; k < T; k++) /* strictly decreasing: every pair violates */
            for (int64_t i = 0; i < T; i++)
                ct[k * T + i] = 1.0 - (double)i * 1e-3 - (double)k * 1e-6;
        compare_kernels("decreasing", ct, T, 1e-10, KTOL_ABS);
        for (size_t i = 0; i < tt; i++) /* tiny differences near 1: cancellation */
            ct[i] = 1.0 - urand() * 1e-9;
        compare_kernels("tiny differences", ct, T, 1e-10, KTOL_ABS);
        compare_kernels("tiny differences eps 0", ct, T, 0.0, KTOL_ABS);
        for (size_t i = 0; i < tt; i++) /* differences of a few ulps */
            ct[i] = 0.75 + (double)(as_mix64(rng_state++) % 16) * 0x1p-53;
        compare_kernels("ulp differences", ct, T, 0.0, KTOL_ABS);
        for (size_t i = 0; i < tt; i++) /* two levels: violations all ~1e-3, std ~1e-13 (round-off) */
            ct[i] = 0.3 + (double)(i % 2) * 1e-3 + urand() * 1e-13;
        compare_kernels("two levels", ct, T, 1e-10, 1e-15);
        for (size_t i = 0; i < tt; i++) /* wide dynamic range */
            ct[i] = ldexp(urand(), -(int)(as_mix64(rng_state++) % 60));
        compare_kernels("dynamic range", ct, T, 1e-10, KTOL_ABS);
        compare_kernels("dynamic range eps 0", ct, T, 0.0, KTOL_ABS);
        free(ct);
    }
}

/* ---- slopes */

static void test_monotonicity__slopes(void)
{
    static const int64_t Hs[] = { 8, 12, 112, 1, 2, 3, 16, 24, 64, 96 };
    for (size_t t = 0; t < sizeof Hs / sizeof *Hs; t++) {
        int64_t H = Hs[t];
        double *got = malloc((size_t)H * sizeof *got), *want = malloc((size_t)H * sizeof *want);
        as_mono_slopes(AS_MONO_RULE_STANDARD, H, got);
        for (int64_t h = 0; h < H; h++)
            want[h] = exp(-8.0 * (double)(h + 1) / (double)H * log(2.0));
        CHECK_ARRAY(got, want, (size_t)H, 0, 1e-14);

        /* BLOOM, transcribed from HF transformers' build_alibi_tensor */
        int64_t cp = (int64_t)pow(2.0, floor(log2((double)H)));
        double base = pow(2.0, -pow(2.0, -(log2((double)cp) - 3)));
        for (int64_t h = 0; h < cp; h++)
            want[h] = pow(base, (double)(1 + h));
        if (cp != H) {
            double extra = pow(2.0, -pow(2.0, -(log2((double)(2 * cp)) - 3)));
            int64_t rem = H - cp < cp ? H - cp : cp;
            for (int64_t r = 0; r < rem; r++)
                want[cp + r] = pow(extra, (double)(1 + 2 * r));
        }
        as_mono_slopes(AS_MONO_RULE_BLOOM, H, got);
        CHECK_ARRAY(got, want, (size_t)H, 0, 1e-14);
        free(got);
        free(want);
    }
    /* closed forms: H=8 bloom == standard == 2^-(h+1); H=12 and H=112 (bloom-176b) */
    double g8[8], s8[8], g12[12], s12[12], g112[112];
    as_mono_slopes(AS_MONO_RULE_BLOOM, 8, g8);
    as_mono_slopes(AS_MONO_RULE_STANDARD, 8, s8);
    for (int h = 0; h < 8; h++)
        CHECK(g8[h] == s8[h] && g8[h] == ldexp(1.0, -(h + 1)));
    as_mono_slopes(AS_MONO_RULE_BLOOM, 12, g12);
    as_mono_slopes(AS_MONO_RULE_STANDARD, 12, s12);
    for (int h = 0; h < 12; h++) {
        CHECK_CLOSE(g12[h], h < 8 ? ldexp(1.0, -(h + 1)) : pow(2.0, -(2.0 * (h - 8) + 1) / 2), 0, 1e-15);
        CHECK_CLOSE(s12[h], pow(2.0, -2.0 * (h + 1) / 3), 0, 1e-15);
    }
    CHECK_CLOSE(s12[0], 0.6299605249474366, 0, 1e-15); /* tiny12's reference */
    /* HF raises a rounded base to the k-th power: ~k ulps from the closed form 2^(-k/8) */
    as_mono_slopes(AS_MONO_RULE_BLOOM, 112, g112);
    for (int h = 0; h < 112; h++)
        CHECK_CLOSE(g112[h], h < 64 ? pow(2.0, -(h + 1) / 8.0) : pow(2.0, -(2.0 * (h - 64) + 1) / 16), 0, 1e-13);
}

/* ---- driving the stage through its ops */

struct stage_run {
    void *cfg;
    struct as_exec ex;             /* shape, schema, rows, model block (alibi_slopes), out, log */
};

static void stage_run_release(struct stage_run *r)
{
    as_exec_release(&r->ex);
    as_stage_monotonicity.release(r->cfg);
    memset(r, 0, sizeof *r);
}

static int stage_configure(struct stage_run *r, const char *yaml, struct as_error *err)
{
    memset(r, 0, sizeof *r);
    /* the stage must not keep pointers into the document: as_test_stage_configure frees it */
    return as_test_stage_configure(&as_stage_monotonicity, yaml, &r->cfg, err);
}

/* configure, then the serial executor: shape, schema, run every layer, finalize; err set and -1
 * on the first failure */
static int stage_run_file(struct stage_run *r, const char *yaml, const char *path, struct as_error *err)
{
    struct as_tensor_file tf;
    const char *names[AS_STAGE_MAX_INPUTS];
    if (stage_configure(r, yaml, err))
        return -1;
    CHECK(as_stage_monotonicity.inputs(r->cfg, names) == 1);
    if (as_tensor_file_open(&tf, NULL, path, NULL, err))
        return -1;
    struct as_tensor_file *in[1] = { &tf };
    int ret = as_exec_model(&r->ex, &as_stage_monotonicity, r->cfg, "tiny", in, 0, err);
    if (r->ex.schema.n)
        CHECK(r->ex.schema.n == N_PER_LAYER + 1);
    as_tensor_file_close(&tf);
    return ret;
}

/* Per-layer field k of layer l, as a double. */
static double row_value(const struct stage_run *r, int64_t l, int k)
{
    const unsigned char *row = as_schema_row_const(&r->ex.schema, r->ex.rows, l);
    if (r->ex.schema.fields[k].type == AS_FTYPE_I64)
        return (double)*as_schema_i64_const(&r->ex.schema, row, k);
    return *as_schema_f64_const(&r->ex.schema, row, k);
}

/* alibi_slopes (H,) of the model block */
static const double *model_slopes(const struct stage_run *r)
{
    return as_exec_field(&r->ex, "alibi_slopes", 0);
}

static void test_monotonicity__schema(void)
{
    struct stage_run r;
    struct as_error err = { 0 };
    int ok = !stage_run_file(&r, "method: fast\n", "tests/fixtures/tiny/attention_probs_mean.npy", &err);
    CHECK_MSG(ok, "%s", err.msg);
    if (!ok) {
        stage_run_release(&r);
        return;
    }
    static const char *names[] = { "combinations", "violations", "violation_rate", "absolute_error",
                                   "absolute_error_std", "relative_error", "relative_error_std", "alibi_slopes" };
    for (int k = 0; k < N_PER_LAYER + 1; k++) {
        CHECK(!strcmp(r.ex.schema.fields[k].name, names[k]) && r.ex.schema.fields[k].description && *r.ex.schema.fields[k].description);
        CHECK(r.ex.schema.fields[k].per_layer == (k < N_PER_LAYER));
        CHECK(r.ex.schema.fields[k].type == (k < 2 ? AS_FTYPE_I64 : AS_FTYPE_F64));
    }
    CHECK(r.ex.schema.fields[N_PER_LAYER].ndim == 1 && r.ex.schema.fields[N_PER_LAYER].dims[0] == 4 &&
          !strcmp(r.ex.schema.fields[N_PER_LAYER].dim_names[0], "head"));
    CHECK(r.ex.shape.n_layers == 3 && r.ex.shape.n_heads == 4 && r.ex.shape.seq_len == 24 && r.ex.shape.unit_bytes == 4 * 24 * 24 * 4 / 2 + 4 * 24 * 4);
    CHECK(r.ex.shape.unit_cost > 4 * 24 * 24);
    CHECK(r.ex.out.n_attrs == 6); /* 5 before every option was recorded: + method */
    const char *attrs[] = { "alibi_slopes", "epsilon", "input", "scale", "slopes" };
    for (int a = 0; a < r.ex.out.n_attrs && a < 5; a++)
        CHECK(!strcmp(r.ex.out.attrs[a].name, attrs[a]));
    CHECK(r.ex.out.attrs[0].kind == AS_ATTR_F64VEC && r.ex.out.attrs[0].n == 4 && r.ex.out.attrs[0].vec[1] == 0.0625);
    CHECK(r.ex.out.attrs[1].kind == AS_ATTR_F64 && r.ex.out.attrs[1].f64 == 1e-10);
    CHECK(r.ex.out.attrs[2].kind == AS_ATTR_STR && !strcmp(r.ex.out.attrs[2].str, "attention_probs_mean"));
    CHECK(r.ex.out.attrs[3].f64 == 1.0 && !strcmp(r.ex.out.attrs[4].str, "standard"));
    CHECK(!strcmp(r.ex.out.attrs[5].name, "method") && r.ex.out.attrs[5].kind == AS_ATTR_STR &&
          !strcmp(r.ex.out.attrs[5].str, "fast"));
    CHECK_MSG(!strcmp(as_strbuf_str(&r.ex.log), "tiny monotonicity | violations in 0 of 3 layers; highest rate: none\n"
                      "tiny monotonicity | mean violation rate 0 over 3 layers\n"), "log: %s", as_strbuf_str(&r.ex.log));
    stage_run_release(&r);
}

/* Compare a full stage run with the "monotonicity" object of a reference JSON. */
static void check_parity(const char *dir, const char *input, const char *scale, const char *json_name,
                         const char *method)
{
    char path[512], jpath[512], yaml[512];
    snprintf(path, sizeof path, "tests/fixtures/%s/%s.npy", dir, input);
    snprintf(jpath, sizeof jpath, "tests/fixtures/%s/%s", dir, json_name);
    snprintf(yaml, sizeof yaml, "input: %s\nscale: %s\nmethod: %s\n", input, scale, method);
    json_error_t jerr;
    json_t *root = json_load_file(jpath, 0, &jerr);
    CHECK_MSG(root != NULL, "cannot load %s: %s", jpath, jerr.text);
    if (!root)
        return;
    json_t *ref = json_object_get(root, "monotonicity");
    struct stage_run r;
    struct as_error err = { 0 };
    int ok = ref && !stage_run_file(&r, yaml, path, &err);
    CHECK_MSG(ok, "%s %s: %s", dir, input, err.msg);
    if (ok) {
        static const struct { const char *name; double atol, rtol; } tol[N_PER_LAYER] = {
            { "combinations", 0, 0 }, { "violations", 0, 0 }, { "violation_rate", TOL_RATE_ABS, TOL_RATE_REL },
            { "absolute_error", TOL_MEAN_ABS, TOL_MEAN_REL }, { "absolute_error_std", TOL_STD_ABS, TOL_STD_REL },
            { "relative_error", TOL_MEAN_ABS, TOL_MEAN_REL }, { "relative_error_std", TOL_STD_ABS, TOL_STD_REL },
        };
        int64_t L = r.ex.shape.n_layers;
        for (int k = 0; k < N_PER_LAYER; k++) {
            json_t *a = json_object_get(ref, tol[k].name);
            CHECK_MSG(json_is_array(a) && (int64_t)json_array_size(a) == L, "%s: %s", jpath, tol[k].name);
            if (!json_is_array(a) || (int64_t)json_array_size(a) != L)
                continue;
            double got[64], want[64];
            for (int64_t l = 0; l < L && l < 64; l++) {
                got[l] = row_value(&r, l, k);
                want[l] = json_number_value(json_array_get(a, (size_t)l));
            }
            if (!CHECK_ARRAY(got, want, (size_t)L, tol[k].atol, tol[k].rtol))
                fprintf(stderr, "  %s %s %s (%s)\n", dir, json_name, tol[k].name, method);
        }
        json_t *s = json_object_get(ref, "alibi_slopes");
        CHECK(json_is_array(s) && (int64_t)json_array_size(s) == r.ex.shape.n_heads);
        for (int64_t h = 0; s && h < r.ex.shape.n_heads; h++)
            CHECK_CLOSE(model_slopes(&r)[h], json_number_value(json_array_get(s, (size_t)h)), 0, TOL_SLOPE_REL);
        fprintf(stderr, "  %s/%s %s scale %s: %s", dir, input, method, scale, as_strbuf_str(&r.ex.log));
    }
    stage_run_release(&r);
    json_decref(root);
}

static void test_monotonicity__parity(void)
{
    static const char *methods[] = { "auto", "fast", "ref" };
    for (int m = 0; m < 3; m++) {
        check_parity("tiny", "attention_probs_mean", "1.0", "reference.json", methods[m]);
        check_parity("tiny", "qk_mean", "0.35355339059327373", "reference_mono_qk.json", methods[m]);
        check_parity("tiny12", "attention_probs_mean", "1.0", "reference.json", methods[m]);
        check_parity("tiny12", "qk_mean", "0.5", "reference_mono_qk.json", methods[m]);
    }
}

/* ---- options and input errors */

static void expect_config_error(const char *yaml, const char *needle)
{
    struct stage_run r;
    struct as_error err = { 0 };
    int rc = stage_configure(&r, yaml, &err);
    CHECK_MSG(rc < 0 && err.status == AS_ERR_CONFIG && strstr(err.msg, needle), "yaml '%s': rc %d msg '%s'", yaml,
              rc, err.msg);
    CHECK(r.cfg == NULL);
    stage_run_release(&r);
}

static void test_monotonicity__options(void)
{
    expect_config_error("bogus: 1\n", "unknown key 'bogus'");
    expect_config_error("epsilon: -1e-3\n", "must be >= 0");
    expect_config_error("slopes: alibi\n", "not one of");
    expect_config_error("slopes: []\n", "slopes");
    expect_config_error("slopes: [0.5, x]\n", "slopes[1]");
    expect_config_error("method: quick\n", "not one of");
    expect_config_error("scale: nan\n", "finite");
    expect_config_error("input: ''\n", "tensor name");

    struct stage_run r = { 0 };
    struct as_error err = { 0 };
    CHECK(!as_stage_monotonicity.configure(&r.cfg, NULL, &err)); /* NULL node: defaults */
    const char *names[1];
    CHECK(as_stage_monotonicity.inputs(r.cfg, names) == 1 && !strcmp(names[0], "attention_probs_mean"));
    stage_run_release(&r);

    /* an explicit list equal to the standard slopes gives the same numbers */
    struct stage_run a, b;
    const char *qk = "tests/fixtures/tiny/qk_mean.npy";
    int ok = !stage_run_file(&a, "input: qk_mean\nscale: 0.35355339059327373\n", qk, &err);
    ok = ok && !stage_run_file(&b, "input: qk_mean\nscale: 0.35355339059327373\nslopes: [0.25, 0.0625, 0.015625, "
                               "0.00390625]\nepsilon: 1e-10\n", qk, &err);
    CHECK_MSG(ok, "%s", err.msg);
    if (ok) {
        CHECK(!memcmp(a.ex.rows, b.ex.rows, (size_t)(3 * N_PER_LAYER * 8)));
        CHECK(!strcmp(b.ex.out.attrs[4].str, "list") && b.ex.out.attrs[0].vec[3] == 0.00390625);
        CHECK_MSG(strstr(as_strbuf_str(&a.ex.log), "violations in 3 of 3 layers; highest rate: L3 0.006039, L1 "
                         "0.004378, L2 0.003321\n"), "log: %s", as_strbuf_str(&a.ex.log));
    }
    stage_run_release(&a);
    stage_run_release(&b);

    /* slopes: bloom on 12 heads: 2^-1..2^-8, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 */
    ok = !stage_run_file(&a, "slopes: bloom\n", "tests/fixtures/tiny12/attention_probs_mean.npy", &err);
    CHECK_MSG(ok, "%s", err.msg);
    if (ok) {
        CHECK(!strcmp(a.ex.out.attrs[4].str, "bloom") && a.ex.out.attrs[0].n == 12);
        for (int h = 0; h < 12; h++)
            CHECK_CLOSE(model_slopes(&a)[h], h < 8 ? ldexp(1.0, -(h + 1)) : pow(2.0, -(2.0 * (h - 8) + 1) / 2), 0, 1e-15);
    }
    stage_run_release(&a);

    /* wrong slope count, bad shapes, non-finite values */
    err.status = AS_OK;
    CHECK(stage_run_file(&r, "slopes: [1, 2]\n", qk, &err) < 0 && err.status == AS_ERR_CONFIG &&
          strstr(err.msg, "2 slopes given but input 'attention_probs_mean' has 4 heads"));
    stage_run_release(&r);

    char path[64];
    snprintf(path, sizeof path, "/tmp/test_mono_%d.npy", (int)getpid());
    double v[2 * 3 * 5 * 5];
    for (int i = 0; i < 150; i++)
        v[i] = urand();
    int64_t bad_shape[4] = { 2, 3, 5, 5 };
    AS_ASSERT(as_test_write_npy(path, "<f8", 4, (int64_t[4]){ 2, 3, 5, 4 }, v) == 0);
    err.status = AS_OK;
    CHECK_MSG(stage_run_file(&r, "{}\n", path, &err) < 0 && err.status == AS_ERR_INPUT &&
              strstr(err.msg, "input 'attention_probs_mean': expected") && strstr(err.msg, "(2, 3, 5, 4)"), "%s",
              err.msg);
    stage_run_release(&r);

    v[1 * 75 + 2 * 25 + 3 * 5 + 1] = NAN;      /* layer 1 head 2, below the diagonal: counted */
    v[1 * 75 + 2 * 25 + 4 * 5 + 4] = INFINITY; /* on the diagonal: counted */
    v[1 * 75 + 2 * 25 + 0 * 5 + 3] = NAN;      /* above the diagonal: masked, ignored */
    AS_ASSERT(as_test_write_npy(path, "<f8", 4, bad_shape, v) == 0);
    err.status = AS_OK;
    CHECK_MSG(stage_run_file(&r, "{}\n", path, &err) < 0 && err.status == AS_ERR_INPUT &&
              !strcmp(err.msg, "model 'tiny' layer 1 head 2: 2 non-finite values in 'attention_probs_mean'"), "%s",
              err.msg);
    stage_run_release(&r);
    v[1 * 75 + 2 * 25 + 3 * 5 + 1] = 1e300;
    v[1 * 75 + 2 * 25 + 4 * 5 + 4] = 0;
    AS_ASSERT(as_test_write_npy(path, "<f8", 4, bad_shape, v) == 0);
    err.status = AS_OK;
    CHECK_MSG(stage_run_file(&r, "scale: 1e10\n", path, &err) < 0 && err.status == AS_ERR_INPUT &&
              strstr(err.msg, "layer 1 head 2: 1 values of 'attention_probs_mean' overflow"), "%s", err.msg);
    stage_run_release(&r);
    unlink(path);
}

int main(void)
{
    TEST_RUN(test_monotonicity__slopes);
    TEST_RUN(test_monotonicity__kernel_vs_ref);
    TEST_RUN(test_monotonicity__options);
    TEST_RUN(test_monotonicity__schema);
    TEST_RUN(test_monotonicity__parity);
    return as_test_done();
}
