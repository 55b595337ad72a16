/* test_patterns.c: the patterns kernel against its _ref twin, keyword matching, the stage's
 * options and bad input, 4-D and 5-D inputs, and parity with tests/fixtures/tiny/reference.json. */
#undef NDEBUG
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_stage.h"
#include "as_test.h"
#include "as_test_stage.h"
#include "patterns/patterns.h"

extern const struct as_stage_ops as_stage_patterns;
/* Not from as_synth.h on purpose: it declares the table weak, and a weak reference does not pull
 * synth_attn.o out of libas_core.a. This strong one does. */
struct as_synth_gen;
extern const struct as_synth_gen *const as_synth_attn_gens[];

#define KERNEL_ATOL 1e-13
#define KERNEL_RTOL 1e-12
#define REF_ATOL 1e-6              /* compare_results.py's TOL["patterns"] */
#define REF_RTOL 1e-6
#define FIXTURE_DIR "tests/fixtures/tiny"
#define FIXTURE_TEXT "The old lighthouse stood" /* window 0 of the tiny fixture: T = 24 bytes */

static uint64_t rng_state = 777;
static double urand(void) { return as_test_urand(&rng_state); }

/* H causal softmax rows of length T (the last query sees every key), sharpness varies by head */
static void random_rows(double *rows, int64_t H, int64_t T)
{
    for (int64_t h = 0; h < H; h++) {
        double s = 0, sharp = 0.5 + 6.0 * urand();
        for (int64_t j = 0; j < T; j++) {
            rows[h * T + j] = exp(sharp * (urand() - 0.5));
            s += rows[h * T + j];
        }
        for (int64_t j = 0; j < T; j++)
            rows[h * T + j] /= s;
    }
}

struct layer_res {
    double le, he[64], hm[64], kw[16];
    int64_t hf[64];
};

static void run_kernel(int ref, const double *rows, int64_t H, int64_t T, const struct as_patterns_keywords *kw,
                       struct layer_res *r)
{
    struct as_patterns_out o = { 0, r->he, r->hm, r->hf, r->kw };
    (ref ? as_patterns_layer_ref : as_patterns_layer)(rows, H, T, kw, &o);
    r->le = o.layer_entropy;
}

static void check_same(const struct layer_res *a, const struct layer_res *b, int64_t H, int64_t K)
{
    CHECK_CLOSE(a->le, b->le, KERNEL_ATOL, KERNEL_RTOL);
    CHECK_ARRAY(a->he, b->he, (size_t)H, KERNEL_ATOL, KERNEL_RTOL);
    CHECK_ARRAY(a->hm, b->hm, (size_t)H, 0, 0);
    CHECK(!memcmp(a->hf, b->hf, (size_t)H * sizeof a->hf[0]));
    CHECK_ARRAY(a->kw, b->kw, (size_t)K, KERNEL_ATOL, KERNEL_RTOL);
}

/* ---- kernel */

static void test_patterns__kernel_vs_ref(void)
{
    const int64_t cases[][2] = { { 1, 1 }, { 1, 2 }, { 3, 7 }, { 12, 33 }, { 5, 64 } };
    const int64_t start[4] = { 0, 2, 3, 6 }, pos[6] = { 0, 0, 0, 0, 0, 0 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t H = cases[c][0], T = cases[c][1];
        double *rows = malloc((size_t)(H * T) * sizeof *rows);
        random_rows(rows, H, T);
        int64_t p[6];
        for (int i = 0; i < 6; i++)
            p[i] = (pos[i] + i * 5) % T;
        struct as_patterns_keywords kw = { 3, start, p };
        struct layer_res a, b;
        run_kernel(0, rows, H, T, &kw, &a);
        run_kernel(1, rows, H, T, &kw, &b);
        check_same(&a, &b, H, 3);
        /* one-hot rows: zero entropy (up to the 1e-10), focus on the one */
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < T; j++)
                rows[h * T + j] = j == (h * 3) % T;
        run_kernel(0, rows, H, T, NULL, &a);
        run_kernel(1, rows, H, T, NULL, &b);
        check_same(&a, &b, H, 0);
        for (int64_t h = 0; h < H; h++)
            CHECK(a.hf[h] == (h * 3) % T && a.hm[h] == 1 && fabs(a.he[h]) < 1e-9);
        free(rows);
    }
}

static void test_patterns__hand_example(void)
{
    /* H = 2, T = 3; head 1 ties at 0 and 1 (numpy argmax: the first) */
    const double rows[6] = { 0.2, 0.5, 0.3, 0.5, 0.5, 0.0 };
    const int64_t start[3] = { 0, 2, 3 }, pos[3] = { 0, 2, 1 };
    struct as_patterns_keywords kw = { 2, start, pos };
    struct layer_res r, ref;
    run_kernel(0, rows, 2, 3, &kw, &r);
    run_kernel(1, rows, 2, 3, &kw, &ref);
    check_same(&r, &ref, 2, 2);
    double m[3] = { 0.35 + 1e-10, 0.5 + 1e-10, 0.15 + 1e-10 };
    CHECK_CLOSE(r.le, -(m[0] * log(m[0]) + m[1] * log(m[1]) + m[2] * log(m[2])), 1e-15, 1e-13);
    CHECK_CLOSE(r.he[0], -(0.2 * log(0.2 + 1e-10) + 0.5 * log(0.5 + 1e-10) + 0.3 * log(0.3 + 1e-10)), 1e-15,
                1e-13);
    CHECK_CLOSE(r.he[1], -2 * 0.5 * log(0.5 + 1e-10), 1e-15, 1e-13);
    CHECK(r.hf[0] == 1 && r.hf[1] == 0 && r.hm[0] == 0.5 && r.hm[1] == 0.5);
    CHECK_CLOSE(r.kw[0], 0.35 + 0.15, 1e-15, 1e-13);
    CHECK_CLOSE(r.kw[1], 0.5, 1e-15, 1e-13);
}

static void test_patterns__match(void)
{
    const char *tok[] = { "Question", ":", " 15", " plus", "PLUS", "27", "" };
    int64_t pos[8];
    CHECK(as_patterns_match(tok, 7, "plus", pos, 8) == 2 && pos[0] == 3 && pos[1] == 4);
    CHECK(as_patterns_match(tok, 7, "question", pos, 8) == 1 && pos[0] == 0);
    CHECK(as_patterns_match(tok, 7, "5", pos, 8) == 1 && pos[0] == 2);
    CHECK(as_patterns_match(tok, 7, "7", pos, 1) == 1 && pos[0] == 5);
    CHECK(as_patterns_match(tok, 7, "1", pos, 0) == 1);
    CHECK(as_patterns_match(tok, 7, "minus", pos, 8) == 0);
}

/* ---- stage driver */

struct run {
    void *cfg;
    struct as_tensor_file tf;
    int opened;
    struct as_exec ex;             /* shape, schema, rows, out, log */
};

static void run_release(struct run *r)
{
    as_exec_release(&r->ex);
    if (r->opened)
        as_tensor_file_close(&r->tf);
    if (r->cfg)
        as_stage_patterns.release(r->cfg);
    memset(r, 0, sizeof *r);
}

/* src: an npy path or a "synthetic:..." spec; upto: "configure", "shape" or "finalize" (the
 * serial executor: as_exec_shape, or as_exec_model) */
static int run_stage(struct run *r, const char *yaml, const char *src, const char *upto, struct as_error *err)
{
    const struct as_stage_ops *ops = &as_stage_patterns;
    memset(r, 0, sizeof *r);
    int rc = as_test_stage_configure(ops, yaml, &r->cfg, err);
    if (rc || !strcmp(upto, "configure"))
        return rc;
    const char *names[AS_STAGE_MAX_INPUTS];
    CHECK(ops->inputs(r->cfg, names) == 1);
    int synth = !strncmp(src, "synthetic:", 10);
    if (as_tensor_file_open(&r->tf, synth ? &as_reader_synth : NULL, src, synth ? names[0] : NULL, err))
        return -1;
    r->opened = 1;
    const struct as_tensor_info *info[1] = { as_tensor_file_info(&r->tf) };
    if (!strcmp(upto, "shape"))
        return as_exec_shape(&r->ex, ops, r->cfg, info, 0, err);
    struct as_tensor_file *in[1] = { &r->tf };
    return as_exec_model(&r->ex, ops, r->cfg, "m1", in, 0, err);
}

static const void *field_at(const struct run *r, const char *name, int64_t l, int64_t i)
{
    const unsigned char *p = as_exec_field(&r->ex, name, l);
    if (!p)
        AS_BUG("no field %s", name);
    return p + i * 8;
}
static double f64_at(const struct run *r, const char *name, int64_t l, int64_t i)
{
    double v;
    memcpy(&v, field_at(r, name, l, i), 8);
    return v;
}
static int64_t i64_at(const struct run *r, const char *name, int64_t l, int64_t i)
{
    int64_t v;
    memcpy(&v, field_at(r, name, l, i), 8);
    return v;
}

/* The last query rows (H, T) of layer l (batch item b of a 5-D input) */
static double *last_rows(struct as_tensor_file *tf, int64_t l, int64_t b)
{
    const struct as_tensor_info *ti = as_tensor_file_info(tf);
    int nd = ti->ndim;
    int64_t H = ti->shape[nd - 3], T = ti->shape[nd - 1];
    double *x = malloc((size_t)(H * T) * sizeof *x);
    struct as_error err = { 0 };
    for (int64_t h = 0; h < H; h++) {
        int64_t s5[5] = { l, b, h, T - 1, 0 }, c5[5] = { 1, 1, 1, 1, T }, s4[4] = { l, h, T - 1, 0 },
                c4[4] = { 1, 1, 1, T };
        AS_ASSERT(!as_tensor_file_read(tf, nd == 5 ? s5 : s4, nd == 5 ? c5 : c4, AS_DTYPE_F64, x + h * T, &err));
    }
    return x;
}

/* Every field of the stage vs the _ref kernel on rows read independently */
static void check_vs_ref(struct run *r, int64_t b, const struct as_patterns_keywords *kw)
{
    int64_t H = r->ex.shape.n_heads, T = r->ex.shape.seq_len, K = kw ? kw->K : 0;
    for (int64_t l = 0; l < r->ex.shape.n_layers; l++) {
        double *rows = last_rows(&r->tf, l, b);
        struct layer_res want;
        run_kernel(1, rows, H, T, kw, &want);
        CHECK_CLOSE(f64_at(r, "layer_entropy", l, 0), want.le, KERNEL_ATOL, KERNEL_RTOL);
        for (int64_t h = 0; h < H; h++) {
            CHECK_CLOSE(f64_at(r, "head_entropy", l, h), want.he[h], KERNEL_ATOL, KERNEL_RTOL);
            CHECK(f64_at(r, "head_max_attention", l, h) == want.hm[h]);
            CHECK(i64_at(r, "head_focus_position", l, h) == want.hf[h]);
        }
        for (int64_t k = 0; k < K; k++)
            CHECK_CLOSE(f64_at(r, "keyword_attention", l, k), want.kw[k], KERNEL_ATOL, KERNEL_RTOL);
        free(rows);
    }
}

static char tmpdir[64], tokens_path[128], short_tokens[128];

static void write_tokens(const char *path, const char *text, int n)
{
    FILE *f = fopen(path, "w");
    AS_ASSERT(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%c\n", text[i]);
    fclose(f);
}

/* ---- stage tests */

static void test_patterns__config(void)
{
    struct run r;
    struct as_error err = { 0 };
    char yaml[512];
    CHECK(run_stage(&r, NULL, NULL, "configure", &err) == 0);
    run_release(&r);
    CHECK(run_stage(&r, "batch_index: -1\n", NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "batch_index"), "%s", err.msg);
    run_release(&r);
    CHECK(run_stage(&r, "keywords: [a]\n", NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "need `tokens`"), "%s", err.msg);
    run_release(&r);
    snprintf(yaml, sizeof yaml, "tokens: %s\nkeywords: [light, zebra]\n", tokens_path);
    CHECK(run_stage(&r, yaml, NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "test.yaml:2:") &&
              strstr(err.msg, "keyword 'light' is in no token"), "%s", err.msg);
    run_release(&r);
    snprintf(yaml, sizeof yaml, "tokens: %s\nkeywords: o\n", tokens_path);
    CHECK(run_stage(&r, yaml, NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "list of strings"), "%s", err.msg);
    run_release(&r);
    CHECK(run_stage(&r, "tokens: /nonexistent/tokens.txt\n", NULL, "configure", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "'/nonexistent/tokens.txt'"), "%s", err.msg);
    run_release(&r);
}

static void test_patterns__bad_input(void)
{
    struct run r;
    struct as_error err = { 0 };
    char yaml[512];
    /* tokens of the wrong count */
    snprintf(yaml, sizeof yaml, "tokens: %s\n", short_tokens);
    CHECK(run_stage(&r, yaml, FIXTURE_DIR "/attn.npy", "shape", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "has 23 tokens but input 'attn' has T = 24"), "%s",
              err.msg);
    run_release(&r);
    CHECK(run_stage(&r, "batch_index: 4\n", FIXTURE_DIR "/attn.npy", "shape", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "batch size 4"), "%s", err.msg);
    run_release(&r);
    CHECK(run_stage(&r, "batch_index: 1\n", FIXTURE_DIR "/qk_mean.npy", "shape", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_CONFIG && strstr(err.msg, "no batch dimension"), "%s", err.msg);
    run_release(&r);
    CHECK(run_stage(&r, NULL, FIXTURE_DIR "/q_acts.npy", "shape", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "(3, 24, 32)"), "%s", err.msg);
    run_release(&r);
    /* NaN in the last row of layer 1 head 2 */
    float x[150];
    for (int i = 0; i < 150; i++)
        x[i] = 0.2f;
    x[((1 * 3 + 2) * 5 + 4) * 5 + 3] = NAN;
    x[((1 * 3 + 1) * 5 + 3) * 5 + 3] = NAN; /* not a last row: not read */
    char p[128];
    snprintf(p, sizeof p, "%s/nan.npy", tmpdir);
    FILE *f = fopen(p, "wb");
    char hdr[118];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 5, 5), }");
    memset(hdr + len, ' ', sizeof hdr - (size_t)len);
    hdr[sizeof hdr - 1] = '\n';
    fwrite("\x93NUMPY\x01\x00\x76\x00", 1, 10, f);
    fwrite(hdr, 1, sizeof hdr, f);
    fwrite(x, sizeof x[0], 150, f);
    fclose(f);
    CHECK(run_stage(&r, NULL, p, "finalize", &err) == -1);
    CHECK_MSG(err.status == AS_ERR_INPUT && strstr(err.msg, "model 'm1' layer 1 head 2: 1 NaN/Inf values"), "%s",
              err.msg);
    run_release(&r);
    unlink(p);
}

/* 4-D (synthetic attention_probs_mean) and 5-D (synthetic attn, batch item 1) inputs */
static void test_patterns__synthetic(void)
{
    struct run r;
    struct as_error err = { 0 };
    CHECK(as_synth_attn_gens[0] != NULL);
    const char *s4 = "synthetic:layers=3,heads=5,seq_len=19,batch=2,head_dim=8,seed=1,model=p4";
    CHECK_MSG(run_stage(&r, "input: attention_probs_mean\n", s4, "finalize", &err) == 0, "%s", err.msg);
    if (!err.status)
        check_vs_ref(&r, 0, NULL);
    CHECK(r.ex.schema.n == 4 && r.ex.schema.fields[3].type == AS_FTYPE_I64 && r.ex.schema.fields[0].ndim == 0 && !strcmp(r.ex.schema.fields[1].dim_names[0], "head"));
    CHECK_MSG(strstr(as_strbuf_str(&r.ex.log), "most focused heads (lowest entropy):\n  Layer ") &&
              strstr(as_strbuf_str(&r.ex.log), "focuses on position "), "%s", as_strbuf_str(&r.ex.log));
    run_release(&r);
    CHECK_MSG(run_stage(&r, "batch_index: 1\n", s4, "finalize", &err) == 0, "%s", err.msg);
    if (!err.status)
        check_vs_ref(&r, 1, NULL);
    run_release(&r);
}

static void test_patterns__fixture_parity(void)
{
    json_error_t jerr;
    json_t *root = json_load_file(FIXTURE_DIR "/reference.json", 0, &jerr);
    CHECK_MSG(root != NULL, "cannot load reference.json: %s", jerr.text);
    json_t *ref = root ? json_object_get(root, "patterns") : NULL;
    CHECK(ref != NULL);
    if (!ref) {
        json_decref(root);
        return;
    }
    struct run r;
    struct as_error err = { 0 };
    char yaml[512];
    snprintf(yaml, sizeof yaml, "input: attn\nbatch_index: 0\ntokens: %s\nkeywords: [o, T, \"h\"]\n", tokens_path);
    CHECK_MSG(run_stage(&r, yaml, FIXTURE_DIR "/attn.npy", "finalize", &err) == 0, "%s", err.msg);
    if (!err.status) {
        int64_t L = r.ex.shape.n_layers, H = r.ex.shape.n_heads;
        CHECK(L == 3 && H == 4 && r.ex.shape.seq_len == 24);
        json_t *le = json_object_get(ref, "layer_entropy");
        for (int64_t l = 0; l < L; l++)
            CHECK_CLOSE(f64_at(&r, "layer_entropy", l, 0), json_real_value(json_array_get(le, l)), REF_ATOL,
                        REF_RTOL);
        const char *ff[3] = { "head_entropy", "head_max_attention", "head_focus_position" };
        for (int k = 0; k < 3; k++) {
            json_t *rows = json_object_get(ref, ff[k]);
            CHECK(json_array_size(rows) == (size_t)L);
            for (int64_t l = 0; l < L; l++)
                for (int64_t h = 0; h < H; h++) {
                    json_t *w = json_array_get(json_array_get(rows, l), h);
                    if (k == 2)
                        CHECK_MSG(i64_at(&r, ff[k], l, h) == json_integer_value(w), "focus l%lld h%lld",
                                  (long long)l, (long long)h);
                    else
                        CHECK_CLOSE(f64_at(&r, ff[k], l, h), json_real_value(w), REF_ATOL, REF_RTOL);
                }
        }
        /* keywords: 'o' at 4, 14, 21, 22; 'T' (any case) at 0, 12, 20; 'h' at 1, 11, 13 */
        const int64_t start[4] = { 0, 4, 7, 10 }, pos[10] = { 4, 14, 21, 22, 0, 12, 20, 1, 11, 13 };
        struct as_patterns_keywords kw = { 3, start, pos };
        check_vs_ref(&r, 0, &kw);
        CHECK(r.ex.schema.n == 5 && r.ex.schema.fields[4].dims[0] == 3 && !strcmp(r.ex.schema.fields[4].dim_names[0], "keyword"));
        int found = 0;
        for (int a = 0; a < r.ex.out.n_attrs; a++)
            found |= !strcmp(r.ex.out.attrs[a].name, "keywords") && !strcmp(r.ex.out.attrs[a].str, "[\"o\", \"T\", \"h\"]");
        CHECK(found);
        const char *log = as_strbuf_str(&r.ex.log);
        CHECK_MSG(strstr(log, "m1 patterns most focused heads (lowest entropy):\n  Layer ") &&
                  strstr(log, ", focuses on '") && strstr(log, "m1 patterns most distributed heads (highest "
                  "entropy):\n  Layer "), "%s", log);
        fprintf(stderr, "%s", log);
    }
    run_release(&r);
    json_decref(root);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/as_test_patterns_XXXXXX");
    AS_ASSERT(mkdtemp(tmpdir));
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens.txt", tmpdir);
    snprintf(short_tokens, sizeof short_tokens, "%s/short.txt", tmpdir);
    write_tokens(tokens_path, FIXTURE_TEXT, 24);
    write_tokens(short_tokens, FIXTURE_TEXT, 23);
    TEST_RUN(test_patterns__kernel_vs_ref);
    TEST_RUN(test_patterns__hand_example);
    TEST_RUN(test_patterns__match);
    TEST_RUN(test_patterns__config);
    TEST_RUN(test_patterns__bad_input);
    TEST_RUN(test_patterns__synthetic);
    TEST_RUN(test_patterns__fixture_parity);
    unlink(tokens_path);
    unlink(short_tokens);
    rmdir(tmpdir);
    return as_test_done();
}
