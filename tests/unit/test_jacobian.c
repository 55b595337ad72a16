/* test_jacobian.c: the jacobian kernels against their _ref twin, the stage's bad-input handling,
 * the synthetic attn/grad generators, and parity with tests/fixtures/tiny/reference.json. */
#undef NDEBUG
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_stage.h"
#include "as_test.h"
#include "as_test_stage.h"
#include "jacobian/jacobian.h"

extern const struct as_stage_ops as_stage_jacobian;
/* Not from as_synth.h on purpose: it declares the table weak, and a weak reference does not pull
 * synth_attn.o out of libas_core.a. This strong one does. */
struct as_synth_gen;
extern const struct as_synth_gen *const as_synth_attn_gens[];

#define KERNEL_ATOL 1e-12          /* optimized vs _ref, both double */
#define KERNEL_RTOL 1e-10
#define FIXTURE_DIR "tests/fixtures/tiny"

static const char *const metrics[6] = { "a_mean", "entropy", "r_diag", "r_offdiag", "cos_diag", "cos_ste" };
/* compare_results.py's TOL["jacobian"], in the order of metrics[] */
static const double ref_tol[6][2] = { { 1e-6, 1e-4 }, { 1e-5, 1e-4 }, { 1e-5, 1e-4 },
                                      { 1e-5, 1e-4 }, { 1e-5, 1e-4 }, { 1e-5, 1e-4 } };

/* ---- helpers */

static uint64_t rng_state = 12345;
static double nrand(void) { return as_test_nrand(&rng_state); }

/* Causal softmax rows of scale * normal scores into A (B, T, T); g normal * gscale everywhere. */
static void random_inputs(double *A, double *g, int64_t B, int64_t T, double scale, double gscale)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < T; i++) {
            double *r = A + (b * T + i) * T, mx = -INFINITY, s = 0;
            for (int64_t j = 0; j <= i; j++) {
                r[j] = scale * nrand();
                mx = fmax(mx, r[j]);
            }
            for (int64_t j = 0; j < T; j++) {
                r[j] = j <= i ? exp(r[j] - mx) : 0.0;
                s += r[j];
            }
            for (int64_t j = 0; j < T; j++)
                r[j] /= s;
        }
    for (int64_t k = 0; k < B * T * T; k++)
        g[k] = gscale * nrand();
}

static void kernel_stream(const double *A, const double *g, int64_t B, int64_t T, double tol,
                          struct as_jacobian_head *out)
{
    struct as_jacobian_acc acc;
    as_jacobian_acc_init(&acc);
    for (int64_t b = 0; b < B; b++)
        as_jacobian_acc_add(&acc, A + b * T * T, g + b * T * T, T, tol, NULL);
    as_jacobian_acc_finish(&acc, out);
}

static void check_heads(const struct as_jacobian_head *got, const struct as_jacobian_head *want, double atol,
                        double rtol)
{
    const double gv[6] = { got->a_mean, got->entropy, got->r_diag, got->r_offdiag, got->cos_diag, got->cos_ste };
    const double wv[6] = { want->a_mean, want->entropy, want->r_diag, want->r_offdiag, want->cos_diag,
                           want->cos_ste };
    CHECK_ARRAY(gv, wv, 6, atol, rtol);
    CHECK(got->bad_rows == want->bad_rows);
    CHECK(got->nonfinite == want->nonfinite);
}

/* One stage, driven through its ops as the pipeline does, on npy paths or "synthetic:..." specs. */
struct run {
    void *cfg;
    struct as_tensor_file tf[AS_STAGE_MAX_INPUTS];
    int n_in;
    struct as_exec ex;             /* shape, schema, rows, out, log */
};

static void run_release(struct run *r)
{
    as_exec_release(&r->ex);
    for (int i = 0; i < r->n_in; i++)
        as_tensor_file_close(&r->tf[i]);
    if (r->cfg)
        as_stage_jacobian.release(r->cfg);
    memset(r, 0, sizeof *r);
}

/* Configure from yaml (NULL: defaults) and open the inputs from src[] (one per input name, or
 * one synthetic spec for all). Stops after `upto` ("configure", "shape", "run", "finalize"); the
 * serial executor does the rest: its building blocks up to "run", as_exec_model for "finalize". */
static int run_stage(struct run *r, const char *yaml, const char *const *src, const char *upto,
                     struct as_error *err)
{
    const struct as_stage_ops *ops = &as_stage_jacobian;
    memset(r, 0, sizeof *r);
    int rc = as_test_stage_configure(ops, yaml, &r->cfg, err);
    if (rc || !strcmp(upto, "configure"))
        return rc;
    const char *names[AS_STAGE_MAX_INPUTS];
    struct as_tensor_file *in[AS_STAGE_MAX_INPUTS];
    r->n_in = ops->inputs(r->cfg, names);
    const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS];
    for (int i = 0; i < r->n_in; i++) {
        int synth = !strncmp(src[0], "synthetic:", 10);
        if (as_tensor_file_open(&r->tf[i], synth ? &as_reader_synth : NULL, synth ? src[0] : src[i],
                                synth ? names[i] : NULL, err)) {
            r->n_in = i;
            return -1;
        }
        info[i] = as_tensor_file_info(&r->tf[i]);
        in[i] = &r->tf[i];
    }
    if (!strcmp(upto, "finalize"))
        return as_exec_model(&r->ex, ops, r->cfg, "m1", in, 0, err);
    if (as_exec_shape(&r->ex, ops, r->cfg, info, 0, err))
        return -1;
    if (!strcmp(upto, "shape"))
        return 0;
    if (as_exec_state_init(&r->ex, err))
        return -1;
    r->ex.rows = calloc((size_t)r->ex.shape.n_layers, r->ex.schema.row_size);
    for (int64_t l = 0; l < r->ex.shape.n_layers; l++) {
        struct as_unit u;
        as_exec_unit(&r->ex, "m1", l, in, &u);
        if (as_exec_run_unit(&r->ex, &u, as_schema_row(&r->ex.schema, r->ex.rows, l), err))
            return -1;
    }
    return 0;
}

/* Element (layer, h) of field `name` from the rows. */
static double field_f64(const struct run *r, const char *name, int64_t l, int64_t h)
{
    const double *v = as_exec_field(&r->ex, name, l);
    if (!v)
        AS_BUG("no field %s", name);
    return v[h];
}

static int64_t field_i64(const struct run *r, const char *name, int64_t l, int64_t h)
{
    int k = as_schema_find(&r->ex.schema, name);
    if (k < 0)
        AS_BUG("no field %s", name);
    return as_schema_i64_const(&r->ex.schema, as_schema_row_const(&r->ex.schema, r->ex.rows, l), k)[h];
}

/* Read a whole (L, B, H, T, T) tensor as double. */
static double *read_all(struct as_tensor_file *tf)
{
    const struct as_tensor_info *ti = as_tensor_file_info(tf);
    int64_t n = as_shape_numel(ti->ndim, ti->shape);
    double *x = malloc((size_t)n * sizeof *x);
    int64_t start[AS_MAX_DIMS] = { 0 };
    struct as_error err = { 0 };
    AS_ASSERT(x && !as_tensor_file_read(tf, start, ti->shape, AS_DTYPE_F64, x, &err));
    return x;
}

/* The reference statistics of (l, h) from whole tensors. */
static void ref_head(const double *A, const double *g, const int64_t *shape, int64_t l, int64_t h, double tol,
                     struct as_jacobian_head *out)
{
    int64_t B = shape[1], H = shape[2], T = shape[3], n = T * T;
    double *a = malloc((size_t)(B * n) * sizeof *a), *y = malloc((size_t)(B * n) * sizeof *y);
    for (int64_t b = 0; b < B; b++) {
        memcpy(a + b * n, A + ((l * B + b) * H + h) * n, (size_t)n * sizeof *a);
        memcpy(y + b * n, g + ((l * B + b) * H + h) * n, (size_t)n * sizeof *y);
    }
    as_jacobian_head_ref(a, y, B, T, tol, out);
    free(a);
    free(y);
}

static char tmpdir[64];

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

/* ---- kernel tests */

static void test_jacobian__kernel_vs_ref(void)
{
    const int64_t cases[][2] = { { 1, 1 }, { 1, 2 }, { 1, 7 }, { 3, 17 }, { 2, 32 }, { 4, 33 } };
    const double scales[][2] = { { 1.0, 1.0 }, { 8.0, 1e-3 }, { 0.0, 1.0 }, { 3.0, 1e100 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
            int64_t B = cases[c][0], T = cases[c][1];
            double *A = malloc((size_t)(B * T * T) * sizeof *A), *g = malloc((size_t)(B * T * T) * sizeof *g);
            random_inputs(A, g, B, T, scales[s][0], scales[s][1]);
            struct as_jacobian_head got, want;
            kernel_stream(A, g, B, T, 1e-3, &got);
            as_jacobian_head_ref(A, g, B, T, 1e-3, &want);
            check_heads(&got, &want, KERNEL_ATOL, KERNEL_RTOL);
            CHECK(got.bad_rows == 0);
            free(A);
            free(g);
        }
}

/* A worked example: T = 2, row 0 has a single non-zero (the first query), B = 1. */
static void test_jacobian__hand_example(void)
{
    const double A[4] = { 1, 0, 0.25, 0.75 }, g[4] = { 1, 2, 3, 5 };
    /* row 1: s = 4.5, g_full = (-0.375, 0.375), g_diag = (0.5625, 0.9375); row 0: both 0 */
    double full2 = 2 * 0.375 * 0.375, diag2 = 0.5625 * 0.5625 + 0.9375 * 0.9375;
    double r = diag2 / (full2 + 1e-12);
    double cd = (-0.375 * 0.5625 + 0.375 * 0.9375) / (sqrt(diag2) * sqrt(full2));
    double cs = (3 * -0.375 + 5 * 0.375) / (sqrt(39.0) * sqrt(full2));
    double ent = (-(1 * log(1 + 1e-10)) - (0.25 * log(0.25 + 1e-10) + 0.75 * log(0.75 + 1e-10))) / 2;
    struct as_jacobian_head got, ref;
    kernel_stream(A, g, 1, 2, 1e-3, &got);
    as_jacobian_head_ref(A, g, 1, 2, 1e-3, &ref);
    const struct as_jacobian_head want = { 2.0 / 3.0, ent, r, 1 - r, cd, cs, 0, 0 };
    check_heads(&got, &want, 1e-15, 1e-13);
    check_heads(&ref, &want, 1e-15, 1e-13);

    /* T = 1: everything is zero but the norms are clamped (torch gives 0 cosines) */
    const double one = 1.0, gg = 2.0;
    kernel_stream(&one, &gg, 1, 1, 1e-3, &got);
    CHECK(got.r_diag == 0 && got.cos_diag == 0 && got.cos_ste == 0 && got.a_mean == 1);
}

/* cosine_similarity's eps clamps each norm on its own (torch 1.13): with |x| = |y| = 1e-9 the
 * result is 0.01, not 1 (nor 1e-10 as with max(|x||y|, eps)). */
static void test_jacobian__cosine_eps(void)
{
    /* T = 2; A row 1 = (0.5, 0.5) and g row 1 = (0, c): g_full = (-c/4, c/4), g_diag = (0, c/4) */
    const double A[4] = { 1, 0, 0.5, 0.5 };
    double g[4] = { 0, 0, 0, 4e-9 };
    struct as_jacobian_head got;
    kernel_stream(A, g, 1, 2, 1e-3, &got);
    /* |g_full| = sqrt(2) * 1e-9, |g_diag| = 1e-9, dot = 1e-18: 1e-18 / (1e-8 * 1e-8) */
    CHECK_CLOSE(got.cos_diag, 1e-2, 1e-15, 1e-9);
    g[3] = 4.0;
    kernel_stream(A, g, 1, 2, 1e-3, &got);
    CHECK_CLOSE(got.cos_diag, 1 / sqrt(2.0), 1e-15, 1e-12);
}

static void test_jacobian__kernel_checks(void)
{
    int64_t T = 5;
    double A[25], g[25];
    random_inputs(A, g, 1, T, 1.0, 1.0);
    A[2 * T + 1] += 0.01; /* row 2 sums to 1.01 */
    struct as_jacobian_acc acc;
    struct as_jacobian_slab_check chk;
    as_jacobian_acc_init(&acc);
    as_jacobian_acc_add(&acc, A, g, T, 1e-3, &chk);
    CHECK(chk.bad_rows == 1 && chk.first_bad_row == 2 && fabs(chk.first_bad_sum - 1.01) < 1e-12);
    CHECK(chk.nonfinite_attn == 0 && chk.nonfinite_grad == 0);
    as_jacobian_acc_add(&acc, A, g, T, 0.02, &chk);
    CHECK(chk.bad_rows == 0);
    A[3] = NAN;
    g[7] = INFINITY;
    g[8] = -INFINITY;
    as_jacobian_acc_add(&acc, A, g, T, 1e-3, &chk);
    CHECK(chk.nonfinite_attn == 1 && chk.nonfinite_grad == 2);
    struct as_jacobian_head ref;
    as_jacobian_head_ref(A, g, 1, T, 1e-3, &ref);
    CHECK(ref.nonfinite == 3);
}

/* ---- stage tests */

static void test_jacobian__config(void)
{
    struct run r;
    struct as_error err = { 0 };
    CHECK(run_stage(&r, "attn: probs\ngrad: dA\nstrict: true\nrow_sum_tol: 0.01\n", NULL, "configure", &err) == 0);
    const char *names[4];
    CHECK(as_stage_jacobian.inputs(r.cfg, names) == 2 && !strcmp(names[0], "probs") && !strcmp(names[1], "dA"));
    run_release(&r);
    CHECK(run_stage(&r, NULL, NULL, "configure", &err) == 0);
    CHECK(as_stage_jacobian.inputs(r.cfg, names) == 2 && !strcmp(names[0], "attn") && !strcmp(names[1], "grad"));
    run_release(&r);

    CHECK(run_stage(&r, "atn: x\n", NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "test.yaml:1:1") && strstr(err.msg, "'atn'"), "%s",
              err.msg);
    run_release(&r);
    CHECK(run_stage(&r, "row_sum_tol: -1\n", NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "row_sum_tol"), "%s", err.msg);
    run_release(&r);
    CHECK(run_stage(&r, "strict: maybe\n", NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "strict"), "%s", err.msg);
    run_release(&r);
}

static void test_jacobian__shape_mismatch(void)
{
    struct run r;
    struct as_error err = { 0 };
    CHECK(run_stage(&r, NULL, NULL, "configure", &err) == 0);
    struct as_tensor_info a = { .dtype = AS_DTYPE_F32, .ndim = 5, .shape = { 2, 1, 2, 4, 4 } };
    struct as_tensor_info g = a;
    g.shape[4] = 5;
    const struct as_tensor_info *info[2] = { &a, &g };
    struct as_exec ex;
    CHECK(as_exec_shape(&ex, &as_stage_jacobian, r.cfg, info, 0, &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "'attn' (2, 1, 2, 4, 4)") &&
              strstr(err.msg, "'grad' (2, 1, 2, 4, 5)"), "%s", err.msg);
    g = a;
    g.ndim = 4;
    CHECK(as_exec_shape(&ex, &as_stage_jacobian, r.cfg, info, 0, &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "'grad' (2, 1, 2, 4)"), "%s", err.msg);
    a.shape[4] = 3;
    g = a;
    CHECK(as_exec_shape(&ex, &as_stage_jacobian, r.cfg, info, 0, &err) == -1); /* not T x T */
    a.shape[4] = 4;
    g = a;
    CHECK(as_exec_shape(&ex, &as_stage_jacobian, r.cfg, info, 0, &err) == 0);
    CHECK(ex.shape.n_layers == 2 && ex.shape.n_heads == 2 && ex.shape.seq_len == 4 &&
          ex.shape.unit_bytes == 2 * 1 * 2 * 16 * 4);
    as_exec_release(&ex);
    run_release(&r);
}

/* (L=2, B=2, H=2, T=4) files with one bad row in attn, or a NaN in grad */
static void test_jacobian__bad_input(void)
{
    const int64_t shape[5] = { 2, 2, 2, 4, 4 };
    int64_t n = 2 * 2 * 2 * 16;
    double *A = malloc((size_t)n * sizeof *A), *g = malloc((size_t)n * sizeof *g);
    float *fa = malloc((size_t)n * sizeof *fa), *fg = malloc((size_t)n * sizeof *fg);
    random_inputs(A, g, 8, 4, 1.0, 1.0);
    for (int64_t k = 0; k < n; k++) {
        fa[k] = (float)A[k];
        fg[k] = (float)g[k];
    }
    char pa[128], pg[128], pbad[128], pnan[128];
    tmp_path(pa, sizeof pa, "attn.npy");
    tmp_path(pg, sizeof pg, "grad.npy");
    tmp_path(pbad, sizeof pbad, "attn_bad.npy");
    tmp_path(pnan, sizeof pnan, "grad_nan.npy");
    CHECK(as_test_write_npy(pa, "<f4", 5, shape, fa) == 0 && as_test_write_npy(pg, "<f4", 5, shape, fg) == 0);
    /* layer 1, batch 0, head 1, row 2 sums to 0.9 */
    int64_t off = ((1 * 2 + 0) * 2 + 1) * 16 + 2 * 4;
    float keep = fa[off];
    fa[off] = keep - 0.1f;
    CHECK(as_test_write_npy(pbad, "<f4", 5, shape, fa) == 0);
    fa[off] = keep;
    fg[((1 * 2 + 1) * 2 + 0) * 16 + 5] = NAN; /* layer 1, batch 1, head 0 */
    fg[((1 * 2 + 0) * 2 + 0) * 16 + 6] = INFINITY;
    CHECK(as_test_write_npy(pnan, "<f4", 5, shape, fg) == 0);

    struct run r;
    struct as_error err = { 0 };
    const char *good[2] = { pa, pg }, *bad[2] = { pbad, pg }, *nan[2] = { pa, pnan };
    CHECK_MSG(run_stage(&r, NULL, good, "finalize", &err) == 0, "%s", err.msg);
    CHECK(field_i64(&r, "bad_rows", 0, 0) == 0 && field_i64(&r, "bad_rows", 1, 0) == 0);
    CHECK(!strstr(as_strbuf_str(&r.ex.log), "warning"));
    CHECK_MSG(strstr(as_strbuf_str(&r.ex.log), "m1 jacobian r_diag | min="), "%s", as_strbuf_str(&r.ex.log));
    run_release(&r);

    CHECK_MSG(run_stage(&r, NULL, bad, "finalize", &err) == 0, "%s", err.msg);
    CHECK(field_i64(&r, "bad_rows", 0, 0) == 0 && field_i64(&r, "bad_rows", 1, 0) == 1);
    CHECK_MSG(strstr(as_strbuf_str(&r.ex.log), "m1 jacobian warning: 1 rows of 'attn' do not sum to 1 within 0.001 "
                                            "(layers: 0 1)\n"), "%s", as_strbuf_str(&r.ex.log));
    run_release(&r);

    CHECK(run_stage(&r, "strict: true\n", bad, "finalize", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "model 'm1' layer 1 head 1 batch 0: 1 rows of 'attn'") &&
              strstr(err.msg, "row 2 sums to 0."), "%s", err.msg);
    run_release(&r);
    CHECK_MSG(run_stage(&r, "strict: true\nrow_sum_tol: 0.2\n", bad, "finalize", &err) == 0, "%s", err.msg);
    run_release(&r);

    CHECK(run_stage(&r, NULL, nan, "finalize", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT &&
              strstr(err.msg, "model 'm1' layer 1 head 0: 0 NaN/Inf values in 'attn' and 2 in 'grad'"), "%s", err.msg);
    run_release(&r);
    CHECK(run_stage(&r, "strict: true\n", nan, "finalize", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "NaN/Inf"), "%s", err.msg);
    run_release(&r);
    unlink(pa);
    unlink(pg);
    unlink(pbad);
    unlink(pnan);
    free(A);
    free(g);
    free(fa);
    free(fg);
}

/* ---- synthetic attn / grad */

static float *synth_layer(const char *spec, const char *name, int64_t l, int64_t *n)
{
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    AS_ASSERT(!as_tensor_file_open(&tf, &as_reader_synth, spec, name, &err));
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    int64_t start[5] = { l, 0, 0, 0, 0 }, count[5];
    memcpy(count, ti->shape, sizeof count);
    count[0] = 1;
    *n = as_shape_numel(5, count);
    float *x = malloc((size_t)*n * sizeof *x);
    AS_ASSERT(x && !as_tensor_file_read(&tf, start, count, AS_DTYPE_F32, x, &err));
    as_tensor_file_close(&tf);
    return x;
}

static void test_jacobian__synthetic(void)
{
    const char *spec = "synthetic:layers=2,heads=3,seq_len=200,batch=2,head_dim=64,seed=9,model=s";
    CHECK(as_synth_attn_gens[0] != NULL);
    int64_t n, n2, T = 200;
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    float *a1 = synth_layer(spec, "attn", 1, &n), *g1 = synth_layer(spec, "grad", 1, &n);
    openblas_set_num_threads(2);
    CHECK_MSG(openblas_get_num_threads() == 2, "openblas did not take 2 threads");
    float *a2 = synth_layer(spec, "attn", 1, &n2), *g2 = synth_layer(spec, "grad", 1, &n2);
    openblas_set_num_threads(threads);
    CHECK(n == 2 * 3 * T * T && n2 == n);
    CHECK(!memcmp(a1, a2, (size_t)n * sizeof *a1));
    CHECK(!memcmp(g1, g2, (size_t)n * sizeof *g1));
    /* causal probability rows; grad non-zero above the diagonal; layers and heads differ */
    int64_t bad = 0, upper_nz = 0, finite = 0;
    for (int64_t s = 0; s < 6; s++)
        for (int64_t i = 0; i < T; i++) {
            double sum = 0;
            for (int64_t j = 0; j < T; j++) {
                float x = a1[(s * T + i) * T + j];
                sum += x;
                bad += j > i ? x != 0 : x < 0;
                upper_nz += j > i && g1[(s * T + i) * T + j] != 0;
                finite += isfinite(g1[(s * T + i) * T + j]);
            }
            bad += fabs(sum - 1) > 1e-5;
        }
    CHECK(bad == 0 && upper_nz > 6 * T * (T - 1) / 2 - 10 && finite == n);
    float *a0 = synth_layer(spec, "attn", 0, &n2);
    CHECK(memcmp(a0, a1, (size_t)n * sizeof *a0) != 0);
    CHECK(memcmp(a1, a1 + T * T, (size_t)(T * T) * sizeof *a1) != 0);
    free(a0);
    free(a1);
    free(a2);
    free(g1);
    free(g2);
}

/* The stage on a synthetic model equals the reference over whole tensors; odd T, B = 1 */
static void test_jacobian__stage_vs_ref_synthetic(void)
{
    const char *specs[] = { "synthetic:layers=3,heads=2,seq_len=37,batch=1,head_dim=8,seed=3,model=s1",
                            "synthetic:layers=2,heads=4,seq_len=16,batch=3,head_dim=4,seed=4,model=s2" };
    for (int s = 0; s < 2; s++) {
        struct run r;
        struct as_error err = { 0 };
        const char *src[1] = { specs[s] };
        CHECK_MSG(run_stage(&r, NULL, src, "finalize", &err) == 0, "%s", err.msg);
        if (err.status)
            continue;
        const struct as_tensor_info *ti = as_tensor_file_info(&r.tf[0]);
        double *A = read_all(&r.tf[0]), *g = read_all(&r.tf[1]);
        for (int64_t l = 0; l < ti->shape[0]; l++) {
            int64_t bad = 0;
            for (int64_t h = 0; h < ti->shape[2]; h++) {
                struct as_jacobian_head want;
                ref_head(A, g, ti->shape, l, h, 1e-3, &want);
                const double wv[6] = { want.a_mean, want.entropy, want.r_diag, want.r_offdiag, want.cos_diag,
                                       want.cos_ste };
                for (int k = 0; k < 6; k++)
                    CHECK_CLOSE(field_f64(&r, metrics[k], l, h), wv[k], KERNEL_ATOL, KERNEL_RTOL);
                bad += want.bad_rows;
            }
            CHECK(field_i64(&r, "bad_rows", l, 0) == bad);
        }
        CHECK(r.ex.schema.n == 7 && r.ex.schema.fields[0].ndim == 1 && !strcmp(r.ex.schema.fields[0].dim_names[0], "head") && r.ex.schema.fields[6].ndim == 0 &&
              r.ex.schema.fields[6].type == AS_FTYPE_I64);
        free(A);
        free(g);
        run_release(&r);
    }
}

/* ---- parity with the oracle on the tiny fixture */

static void test_jacobian__fixture_parity(void)
{
    const char *src[2] = { FIXTURE_DIR "/attn.npy", FIXTURE_DIR "/grad.npy" };
    json_error_t jerr;
    json_t *root = json_load_file(FIXTURE_DIR "/reference.json", 0, &jerr);
    CHECK_MSG(root != NULL, "cannot load reference.json: %s", jerr.text);
    if (!root)
        return;
    json_t *ref = json_object_get(root, "jacobian");
    struct run r;
    struct as_error err = { 0 };
    CHECK_MSG(ref && run_stage(&r, NULL, src, "finalize", &err) == 0, "%s", err.msg);
    if (ref && !err.status) {
        int64_t L = r.ex.shape.n_layers, H = r.ex.shape.n_heads;
        CHECK(L == 3 && H == 4 && r.ex.shape.seq_len == 24);
        for (int k = 0; k < 6; k++) {
            json_t *rows = json_object_get(ref, metrics[k]);
            CHECK_MSG(json_array_size(rows) == (size_t)L, "%s", metrics[k]);
            double got[64], want[64];
            for (int64_t l = 0; l < L && l < (int64_t)json_array_size(rows); l++)
                for (int64_t h = 0; h < H; h++) {
                    got[l * H + h] = field_f64(&r, metrics[k], l, h);
                    want[l * H + h] = json_real_value(json_array_get(json_array_get(rows, l), h));
                }
            if (!as_test_array(__FILE__, __LINE__, metrics[k], got, want, (size_t)(L * H), ref_tol[k][0],
                               ref_tol[k][1]))
                fprintf(stderr, "  (field %s)\n", metrics[k]);
        }
        for (int64_t l = 0; l < L; l++)
            CHECK(field_i64(&r, "bad_rows", l, 0) == 0);
        fprintf(stderr, "%s", as_strbuf_str(&r.ex.log));
    }
    run_release(&r);
    json_decref(root);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/as_test_jacobian_XXXXXX");
    AS_ASSERT(mkdtemp(tmpdir));
    TEST_RUN(test_jacobian__kernel_vs_ref);
    TEST_RUN(test_jacobian__hand_example);
    TEST_RUN(test_jacobian__cosine_eps);
    TEST_RUN(test_jacobian__kernel_checks);
    TEST_RUN(test_jacobian__config);
    TEST_RUN(test_jacobian__shape_mismatch);
    TEST_RUN(test_jacobian__bad_input);
    TEST_RUN(test_jacobian__synthetic);
    TEST_RUN(test_jacobian__stage_vs_ref_synthetic);
    TEST_RUN(test_jacobian__fixture_parity);
    rmdir(tmpdir);
    return as_test_done();
}
