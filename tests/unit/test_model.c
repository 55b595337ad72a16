/* test_model.c: the GPT-2 forward pass of pipeline/model against the float64 torch oracle
 * (../shared/oracle/lesion_reference.py, run by tests/gen/make_gpt2_fixtures.py into
 * tests/fixtures/gpt2): clean logits and every head-lesion delta on every fixture (F32, F16,
 * BF16, shards, with and without the 'transformer.' prefix); a lesion that reuses the clean
 * residual stream equals a full lesioned recompute bit for bit; the one-row lesion path; the
 * BLAS kernels against their naive double _ref twins; and the input errors. */
#undef NDEBUG
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_model.h"
#include "as_test.h"
#include "as_util.h"
#include "model_gpt2.h"

#define FIX "tests/fixtures/gpt2/"
#define LOGIT_RTOL 1e-4     /* float32 logits vs the float64 reference, relative ... */
#define LOGIT_ATOL 1e-5     /* ... plus this, for logits near zero */
#define DELTA_ATOL 1e-4     /* lesion delta log-probabilities vs the reference */
#define LOGPROB_ATOL 1e-4   /* clean log-probability of the target */
#define ROWS_ATOL 2e-5      /* one-row lesion path vs the exact lesion, log-probability */
#define REF_ATOL 2e-5       /* BLAS float32 blocks vs the _ref double twins: abs + rel */
#define REF_RTOL 2e-5

static const struct {
    const char *name, *tokens;
    int64_t copied; /* 1: weights converted (F16/BF16), 0: used in place */
} fixtures[] = {
    { "random", "tokens_random.txt", 0 },     { "trained", "tokens_trained.txt", 0 },
    { "trained_f16", "tokens_trained.txt", 1 }, { "trained_bf16", "tokens_trained.txt", 1 },
    { "trained_shard", "tokens_trained.txt", 0 },
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

static char tmpdir[256];

/* ---- helpers */

static json_t *load_json(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    CHECK_MSG(j != NULL, "%s: %s", path, je.text);
    return j;
}

static struct as_model *open_fixture(const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, FIX "%s", name);
    struct as_model *m = NULL;
    struct as_error err = { 0 };
    int rc = as_model_open(&m, dir, &err);
    CHECK_MSG(rc == 0, "%s: %s", dir, err.msg);
    struct as_model_config cfg;
    CHECK_MSG(as_model_probe(dir, &cfg, &err) == 0, "%s: %s", dir, err.msg);
    CHECK(m && !memcmp(&cfg, &m->cfg, sizeof cfg));
    return m;
}

static int read_tokens(const char *file, int32_t **tok)
{
    char path[512];
    snprintf(path, sizeof path, FIX "%s", file);
    int n = 0;
    struct as_error err = { 0 };
    int rc = as_model_read_tokens(path, tok, &n, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return n;
}

static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    AS_ASSERT(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        AS_ASSERT(fwrite(buf, 1, n, out) == n);
    fclose(in);
    AS_ASSERT(fclose(out) == 0);
}

/* tmpdir/<name>: a copy of fixture folder `fixture` (its config.json and model.safetensors) */
static const char *copy_fixture(const char *fixture, const char *name)
{
    static char dir[512];
    char a[1024], b[1024];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    AS_ASSERT(mkdir(dir, 0755) == 0 || errno == EEXIST);
    const char *files[] = { "config.json", "model.safetensors" };
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, FIX "%s/%s", fixture, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        copy_file(a, b);
    }
    return dir;
}

/* replace the first `from` after the first `after` (NULL: from the start) in file path; the
 * file keeps its length when from and to have the same length */
static void edit_file(const char *dir, const char *file, const char *after, const char *from, const char *to)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "rb");
    AS_ASSERT(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = as_xmalloc((size_t)n + 1);
    AS_ASSERT(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = '\0';
    char *s = after ? memmem(buf, (size_t)n, after, strlen(after)) : buf;
    AS_ASSERT(s);
    char *p = memmem(s, (size_t)(buf + n - s), from, strlen(from));
    AS_ASSERT(p);
    f = fopen(path, "wb");
    fwrite(buf, 1, (size_t)(p - buf), f);
    fwrite(to, 1, strlen(to), f);
    fwrite(p + strlen(from), 1, (size_t)(buf + n - p - (long)strlen(from)), f);
    AS_ASSERT(fclose(f) == 0);
    free(buf);
}

static void write_text(const char *dir, const char *file, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    AS_ASSERT(f && fputs(text, f) >= 0 && fclose(f) == 0);
}

/* opening dir fails with AS_ERR_INPUT and a one-line message holding each of words[] */
static void check_open_fails(const char *dir, const char *const *words)
{
    struct as_model *m = NULL;
    struct as_error err = { 0 };
    int rc = as_model_open(&m, dir, &err);
    CHECK_MSG(rc == -1 && m == NULL, "'%s' opened", dir);
    CHECK_MSG(err.status == AS_ERR_INPUT, "status %d: %s", err.status, err.msg);
    CHECK_MSG(!strchr(err.msg, '\n'), "message has a newline: %s", err.msg);
    for (int i = 0; words[i]; i++)
        CHECK_MSG(strstr(err.msg, words[i]) != NULL, "message lacks '%s': %s", words[i], err.msg);
    as_model_free(m);
}

static double max_abs_diff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i] - b[i]) > m ? fabs(a[i] - b[i]) : m;
    return m;
}

/* ---- parity with the oracle */

static void check_reference(struct as_model *m, const struct as_model_pass *pass, const char *ref_path)
{
    json_t *ref = load_json(ref_path);
    if (!ref)
        return;
    const struct as_model_config *c = &m->cfg;
    int pos = (int)json_integer_value(json_object_get(ref, "position"));
    int tgt = (int)json_integer_value(json_object_get(ref, "target_token"));
    CHECK(pos >= 0 && pos + 1 < pass->T && tgt == pass->tokens[pos + 1]);
    const float *row = pass->logits + (size_t)pos * c->vocab_size;
    double clean = as_model_logprob(row, c->vocab_size, tgt);
    CHECK_CLOSE(clean, json_real_value(json_object_get(ref, "logprob_clean")), LOGPROB_ATOL, 0);
    int top[5];
    as_model_topk(row, c->vocab_size, 5, top);
    json_t *rt = json_object_get(ref, "top5_clean");
    for (int i = 0; i < 5; i++)
        CHECK_MSG(top[i] == json_integer_value(json_array_get(rt, i)), "%s: top5[%d] %d vs %d", ref_path, i, top[i],
                  (int)json_integer_value(json_array_get(rt, i)));
    int L = c->n_layer, H = c->n_head, V = c->vocab_size;
    double *got = as_xmalloc((size_t)L * H * sizeof *got), *rows = as_xmalloc((size_t)L * H * sizeof *rows);
    double *want = as_xmalloc((size_t)L * H * sizeof *want);
    float *lg = as_xmalloc((size_t)H * V * sizeof *lg);
    int *all = as_xmalloc((size_t)H * sizeof *all);
    for (int h = 0; h < H; h++)
        all[h] = h;
    struct as_error err = { 0 };
    for (int l = 0; l < L; l++) {
        json_t *jr = json_array_get(json_object_get(ref, "delta_logprob"), l);
        for (int h = 0; h < H; h++) {
            struct as_lesion les = { l, pos, 1, &all[h] };
            CHECK(as_model_lesion(m, pass, &les, l, lg, &err) == 0);
            got[l * H + h] = as_model_logprob(lg, V, tgt) - clean;
            want[l * H + h] = json_real_value(json_array_get(jr, h));
        }
        CHECK(as_model_lesion_heads(m, pass, l, pos, all, H, lg, &err) == 0);
        for (int h = 0; h < H; h++)
            rows[l * H + h] = as_model_logprob(lg + (size_t)h * V, V, tgt) - clean;
    }
    CHECK_ARRAY(got, want, (size_t)L * H, DELTA_ATOL, 0);
    CHECK_ARRAY(rows, want, (size_t)L * H, DELTA_ATOL, 0);
    CHECK_ARRAY(rows, got, (size_t)L * H, ROWS_ATOL, 0);
    fprintf(stderr, "  %s: max |delta - ref| %.2g (exact), %.2g (one-row path); |logprob - ref| %.2g\n", ref_path,
            max_abs_diff(got, want, (size_t)L * H), max_abs_diff(rows, want, (size_t)L * H),
            fabs(clean - json_real_value(json_object_get(ref, "logprob_clean"))));
    free(got);
    free(rows);
    free(want);
    free(lg);
    free(all);
    json_decref(ref);
}

static void test_model__parity(void)
{
    for (size_t f = 0; f < N_FIXTURES; f++) {
        struct as_model *m = open_fixture(fixtures[f].name);
        if (!m)
            continue;
        CHECK(!strcmp(as_model_arch(m), "gpt2"));
        CHECK_MSG(fixtures[f].copied ? m->mapped_bytes == 0 && m->copied_bytes > 0
                                     : m->copied_bytes == 0 && m->mapped_bytes > 0,
                  "%s: mapped %lld copied %lld", fixtures[f].name, (long long)m->mapped_bytes,
                  (long long)m->copied_bytes);
        int32_t *tok = NULL;
        int T = read_tokens(fixtures[f].tokens, &tok);
        struct as_model_pass pass;
        struct as_error err = { 0 };
        CHECK_MSG(as_model_forward(m, tok, T, &pass, &err) == 0, "%s", err.msg);
        char path[512];
        snprintf(path, sizeof path, FIX "%s.logits.json", fixtures[f].name);
        json_t *jl = load_json(path);
        json_t *rows = json_object_get(jl, "logits");
        int V = m->cfg.vocab_size;
        CHECK((int)json_array_size(rows) == T);
        double *got = as_xmalloc((size_t)T * V * sizeof *got), *want = as_xmalloc((size_t)T * V * sizeof *want);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < V; i++) {
                got[(size_t)t * V + i] = pass.logits[(size_t)t * V + i];
                want[(size_t)t * V + i] = json_real_value(json_array_get(json_array_get(rows, t), i));
            }
        CHECK_ARRAY(got, want, (size_t)T * V, LOGIT_ATOL, LOGIT_RTOL);
        double scale = 0;
        for (size_t i = 0; i < (size_t)T * V; i++)
            scale = fmax(scale, fabs(want[i]));
        fprintf(stderr, "  %s: logits max |d| %.2g = %.2g of the largest |logit|\n", fixtures[f].name,
                max_abs_diff(got, want, (size_t)T * V), max_abs_diff(got, want, (size_t)T * V) / scale);
        free(got);
        free(want);
        json_decref(jl);
        snprintf(path, sizeof path, FIX "%s.reference.json", fixtures[f].name);
        check_reference(m, &pass, path);
        if (!strcmp(fixtures[f].name, "random"))
            check_reference(m, &pass, FIX "random.pos3.reference.json");
        as_model_pass_release(&pass);
        free(tok);
        as_model_free(m);
    }
}

/* a lesion from its own layer (reusing the clean residual stream) equals the full lesioned
 * recompute from layer 0, bit for bit, for every layer, head and several positions; lesioning
 * several heads together too */
static void test_model__reuse_bitwise(void)
{
    const char *names[] = { "random", "trained_bf16" };
    for (int f = 0; f < 2; f++) {
        struct as_model *m = open_fixture(names[f]);
        if (!m)
            continue;
        int32_t *tok = NULL;
        int T = read_tokens(f ? "tokens_trained.txt" : "tokens_random.txt", &tok);
        struct as_model_pass pass;
        struct as_error err = { 0 };
        CHECK(as_model_forward(m, tok, T, &pass, &err) == 0);
        int V = m->cfg.vocab_size, H = m->cfg.n_head, diff = 0, n = 0;
        float *a = as_xmalloc((size_t)V * sizeof *a), *b = as_xmalloc((size_t)V * sizeof *b);
        int positions[] = { 0, 3, T - 2, T - 1 }, pair[2] = { 0, H - 1 };
        for (int pi = 0; pi < 4; pi++)
            for (int l = 0; l < m->cfg.n_layer; l++)
                for (int h = 0; h <= H; h++) {
                    struct as_lesion les = { l, positions[pi], h < H ? 1 : 2, h < H ? &h : pair };
                    CHECK(as_model_lesion(m, &pass, &les, l, a, &err) == 0);
                    for (int from = 0; from < l; from++) {
                        CHECK(as_model_lesion(m, &pass, &les, from, b, &err) == 0);
                        diff += memcmp(a, b, (size_t)V * sizeof *a) != 0;
                        n++;
                    }
                }
        CHECK_MSG(diff == 0, "%s: %d of %d reused lesions differ from the full recompute", names[f], diff, n);
        /* a lesion changes the logits; the clean pass's own row is reproduced by a recompute */
        int h0 = 0;
        struct as_lesion les = { 0, T - 2, 1, &h0 };
        CHECK(as_model_lesion(m, &pass, &les, 0, a, &err) == 0);
        CHECK(memcmp(a, pass.logits + (size_t)(T - 2) * V, (size_t)V * sizeof *a) != 0);
        /* errors of the lesion API */
        les.layer = m->cfg.n_layer;
        CHECK(as_model_lesion(m, &pass, &les, 0, a, &err) == -1 && strstr(err.msg, "layer"));
        les.layer = 1;
        CHECK(as_model_lesion(m, &pass, &les, 2, a, &err) == -1);
        les.position = T;
        CHECK(as_model_lesion(m, &pass, &les, 1, a, &err) == -1 && strstr(err.msg, "position"));
        int bad = H;
        CHECK(as_model_lesion_heads(m, &pass, 0, 1, &bad, 1, a, &err) == -1 && strstr(err.msg, "head"));
        free(a);
        free(b);
        as_model_pass_release(&pass);
        free(tok);
        as_model_free(m);
    }
}

/* the pass's Q, K, V are ln_1(resid[l]) @ c_attn's column blocks + bias (naive, double) */
static void test_model__qkv(void)
{
    struct as_model *m = open_fixture("trained");
    if (!m)
        return;
    int32_t *tok = NULL;
    int T = read_tokens("tokens_trained.txt", &tok);
    struct as_model_pass pass;
    struct as_error err = { 0 };
    CHECK(as_model_forward(m, tok, T, &pass, &err) == 0);
    const struct as_gpt2 *g = m->impl;
    int E = m->cfg.n_embd;
    size_t te = (size_t)T * E;
    double *got = as_xmalloc(3 * te * sizeof *got), *want = as_xmalloc(3 * te * sizeof *want);
    float *a = as_xmalloc(te * sizeof *a);
    for (int l = 0; l < m->cfg.n_layer; l++) {
        const struct as_gpt2_layer *w = &g->layer[l];
        as_gpt2_layernorm(pass.resid + l * te, T, E, w->ln1_w, w->ln1_b, m->cfg.ln_eps, a);
        for (int t = 0; t < T; t++)
            for (int j = 0; j < 3 * E; j++) {
                double s = w->attn_b[j];
                for (int i = 0; i < E; i++)
                    s += (double)a[t * E + i] * w->attn_w[i * 3 * E + j];
                const float *src = j < E ? pass.q : j < 2 * E ? pass.k : pass.v;
                got[(size_t)t * 3 * E + j] = src[l * te + (size_t)t * E + j % E];
                want[(size_t)t * 3 * E + j] = s;
            }
        CHECK_ARRAY(got, want, 3 * te, REF_ATOL, REF_RTOL);
    }
    free(got);
    free(want);
    free(a);
    as_model_pass_release(&pass);
    free(tok);
    as_model_free(m);
}

/* ---- the BLAS kernels against their _ref twins */

static uint64_t rng = 2024;

static float *rand_floats(size_t n, double mean, double sd)
{
    float *p = as_xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(mean + sd * as_test_nrand(&rng));
    return p;
}

static void check_blocks(const struct as_gpt2_layer *w, const struct as_model_config *c, const float *x0, int T,
                         const char *what)
{
    int E = c->n_embd;
    size_t te = (size_t)T * E;
    float *x = as_xmalloc(te * sizeof *x);
    double *xd = as_xmalloc(te * sizeof *xd), *got = as_xmalloc(te * sizeof *got);
    int heads[2] = { 0, c->n_head - 1 };
    for (int variant = 0; variant < 3; variant++) {
        struct as_head_mask mask = { T / 2, variant == 2 ? 2 : 1, heads };
        const struct as_head_mask *mk = variant ? &mask : NULL;
        for (size_t i = 0; i < te; i++)
            xd[i] = x[i] = x0[i];
        as_gpt2_attn(w, c, x, T, mk, NULL, NULL, NULL);
        as_gpt2_attn_ref(w, c, xd, T, mk);
        for (size_t i = 0; i < te; i++)
            got[i] = x[i];
        CHECK_MSG(as_test_array(__FILE__, __LINE__, "attention", got, xd, te, REF_ATOL, REF_RTOL),
                  "%s, mask variant %d", what, variant);
    }
    for (size_t i = 0; i < te; i++)
        xd[i] = x[i] = x0[i];
    as_gpt2_mlp(w, c, x, T);
    as_gpt2_mlp_ref(w, c, xd, T);
    for (size_t i = 0; i < te; i++)
        got[i] = x[i];
    CHECK_ARRAY(got, xd, te, REF_ATOL, REF_RTOL);
    /* the one-row path: row p of the full block, from the keys/values of the rows before it */
    float *q = as_xmalloc(te * sizeof *q), *k = as_xmalloc(te * sizeof *k), *v = as_xmalloc(te * sizeof *v);
    for (size_t i = 0; i < te; i++)
        xd[i] = x[i] = x0[i];
    as_gpt2_attn(w, c, x, T, NULL, q, k, v);
    int ps[3] = { 0, T / 2, T - 1 };
    for (int pi = 0; pi < 3; pi++) {
        int p = ps[pi], zero[2] = { -1, 1 % c->n_head };
        float *r = as_xmalloc(2 * (size_t)E * sizeof *r);
        memcpy(r, x0 + (size_t)p * E, (size_t)E * sizeof *r);
        memcpy(r + E, x0 + (size_t)p * E, (size_t)E * sizeof *r);
        as_gpt2_attn_rows(w, c, r, 2, p, k, v, zero);
        double *gd = as_xmalloc(2 * (size_t)E * sizeof *gd), *wd = as_xmalloc(2 * (size_t)E * sizeof *wd);
        for (size_t i = 0; i < te; i++)
            xd[i] = x0[i];
        as_gpt2_attn_ref(w, c, xd, T, NULL);
        for (int j = 0; j < E; j++)
            wd[j] = xd[(size_t)p * E + j];
        int h1 = zero[1];
        struct as_head_mask mask = { p, 1, &h1 };
        for (size_t i = 0; i < te; i++)
            xd[i] = x0[i];
        as_gpt2_attn_ref(w, c, xd, T, &mask);
        for (int j = 0; j < E; j++)
            wd[E + j] = xd[(size_t)p * E + j];
        for (int j = 0; j < 2 * E; j++)
            gd[j] = r[j];
        CHECK_ARRAY(gd, wd, 2 * (size_t)E, REF_ATOL, REF_RTOL);
        free(r);
        free(gd);
        free(wd);
    }
    free(q);
    free(k);
    free(v);
    free(x);
    free(xd);
    free(got);
}

static void test_model__ref_twins(void)
{
    /* odd sizes: E 15 = 3 heads x 5, MLP width 7, T 13; then the fixture's real layers */
    struct as_model_config c = { .n_layer = 1, .n_head = 3, .n_embd = 15, .head_dim = 5, .n_inner = 7,
                                 .n_positions = 16, .vocab_size = 8, .ln_eps = 1e-5 };
    int E = c.n_embd, NI = c.n_inner, T = 13;
    struct as_gpt2_layer w = {
        .ln1_w = rand_floats(E, 1, 0.2), .ln1_b = rand_floats(E, 0, 0.2),
        .attn_w = rand_floats((size_t)E * 3 * E, 0, 0.4), .attn_b = rand_floats(3 * E, 0, 0.2),
        .proj_w = rand_floats((size_t)E * E, 0, 0.3), .proj_b = rand_floats(E, 0, 0.2),
        .ln2_w = rand_floats(E, 1, 0.2), .ln2_b = rand_floats(E, 0, 0.2),
        .fc_w = rand_floats((size_t)E * NI, 0, 0.3), .fc_b = rand_floats(NI, 0, 0.2),
        .out_w = rand_floats((size_t)NI * E, 0, 0.3), .out_b = rand_floats(E, 0, 0.2),
    };
    float *x0 = rand_floats((size_t)T * E, 0.5, 2.0);
    check_blocks(&w, &c, x0, T, "odd sizes");
    /* huge-magnitude residual stream (LayerNorm takes the scale out) */
    for (int i = 0; i < T * E; i++)
        x0[i] *= 1e4f;
    check_blocks(&w, &c, x0, T, "x 1e4");
    /* T = 1 */
    check_blocks(&w, &c, x0, 1, "T = 1");
    free(x0);
    const float *ptrs[] = { w.ln1_w, w.ln1_b, w.attn_w, w.attn_b, w.proj_w, w.proj_b,
                            w.ln2_w, w.ln2_b, w.fc_w,   w.fc_b,   w.out_w,  w.out_b };
    for (int i = 0; i < 12; i++)
        free((void *)(uintptr_t)ptrs[i]);

    struct as_model *m = open_fixture("trained");
    if (!m)
        return;
    int32_t *tok = NULL;
    int Tn = read_tokens("tokens_trained.txt", &tok);
    struct as_model_pass pass;
    struct as_error err = { 0 };
    CHECK(as_model_forward(m, tok, Tn, &pass, &err) == 0);
    const struct as_gpt2 *g = m->impl;
    for (int l = 0; l < m->cfg.n_layer; l++)
        check_blocks(&g->layer[l], &m->cfg, pass.resid + (size_t)l * Tn * m->cfg.n_embd, Tn, "trained");
    as_model_pass_release(&pass);
    free(tok);
    as_model_free(m);
}

/* ---- errors */

static void test_model__errors(void)
{
    const char *d;
    /* config.json */
    d = copy_fixture("random", "no_n_head");
    edit_file(d, "config.json", NULL, "\"n_head\"", "\"n_hedd\"");
    check_open_fails(d, (const char *const[]){ "config.json", "missing key 'n_head'", NULL });
    d = copy_fixture("random", "bloom");
    edit_file(d, "config.json", NULL, "\"GPT2LMHeadModel\"", "\"BloomForCausalLM\"");
    edit_file(d, "config.json", NULL, "\"gpt2\"", "\"bloom\"");
    check_open_fails(d, (const char *const[]){ "config.json", "unknown architecture 'bloom'", "gpt2", NULL });
    struct as_model_config cfg;
    struct as_error perr = { 0 };
    CHECK(as_model_probe(d, &cfg, &perr) == -1 && strstr(perr.msg, "unknown architecture 'bloom'"));
    d = copy_fixture("random", "no_config");
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", d);
    unlink(p);
    check_open_fails(d, (const char *const[]){ "config.json", NULL });
    d = copy_fixture("random", "bad_heads");
    edit_file(d, "config.json", NULL, "\"n_head\": 4", "\"n_head\": 5");
    check_open_fails(d, (const char *const[]){ "config.json", "n_embd 32", "n_head 5", NULL });
    /* weights */
    d = copy_fixture("random", "missing_key");
    edit_file(d, "model.safetensors", NULL, "\"h.1.mlp.c_fc.bias\"", "\"h.1.mlp.c_fc.biaZ\"");
    check_open_fails(d, (const char *const[]){ "no weight 'h.1.mlp.c_fc.bias'", "model.safetensors", d, NULL });
    d = copy_fixture("random", "wrong_shape");
    edit_file(d, "model.safetensors", "\"h.0.attn.c_attn.weight\"", "[32,96]", "[96,32]");
    check_open_fails(d, (const char *const[]){ "model.safetensors", "'h.0.attn.c_attn.weight'", "(96, 32)",
                                               "expected (32, 96)", NULL });
    d = copy_fixture("random", "wrong_vocab");
    edit_file(d, "config.json", NULL, "\"vocab_size\": 64", "\"vocab_size\": 65");
    check_open_fails(d, (const char *const[]){ "'wte.weight'", "(64, 32)", "expected (65, 32)", NULL });
    d = copy_fixture("random", "no_weights");
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    unlink(p);
    check_open_fails(d, (const char *const[]){ "model.safetensors", NULL });
    d = copy_fixture("random", "lost_shard");
    write_text(d, "model.safetensors.index.json",
               "{\"weight_map\": {\"wte.weight\": \"model-00001-of-00002.safetensors\"}}\n");
    check_open_fails(d, (const char *const[]){ "model-00001-of-00002.safetensors", NULL });

    /* tokens */
    struct as_model *m = open_fixture("random");
    if (!m)
        return;
    struct as_error err = { 0 };
    int32_t *tok = NULL;
    int n = 0;
    d = copy_fixture("random", "tokens");
    const struct {
        const char *text, *words;
        int read_ok;
    } cases[] = {
        { "1 2 64 3\n", "token 2 is id 64, outside the vocabulary [0, 64)", 1 },
        { "1 2 x3 4\n", "token 2 'x3' is not a non-negative integer id", 0 },
        { "1 -2\n", "token 1 '-2'", 0 },
        { "  \n", "holds no tokens", 0 },
        { "0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2\n",
          "33 tokens, longer than the model's n_positions 32", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(d, "tokens.txt", cases[i].text);
        snprintf(p, sizeof p, "%s/tokens.txt", d);
        int rc = as_model_read_tokens(p, &tok, &n, &err);
        CHECK_MSG(rc == (cases[i].read_ok ? 0 : -1), "case %zu: %s", i, err.msg);
        if (!rc) {
            rc = as_model_check_tokens(m, tok, n, p, &err);
            CHECK(rc == -1);
            struct as_model_pass pass;
            CHECK(as_model_forward(m, tok, n, &pass, &err) == -1 && pass.logits == NULL);
            as_model_check_tokens(m, tok, n, p, &err);
            free(tok);
        }
        CHECK(err.status == AS_ERR_INPUT);
        CHECK_MSG(strstr(err.msg, cases[i].words) != NULL, "case %zu: message lacks '%s': %s", i, cases[i].words,
                  err.msg);
        CHECK_MSG(rc == -1 && (cases[i].read_ok == 0 || strstr(err.msg, p)), "case %zu: %s", i, err.msg);
    }
    snprintf(p, sizeof p, "%s/none.txt", d);
    CHECK(as_model_read_tokens(p, &tok, &n, &err) == -1 && strstr(err.msg, "none.txt"));
    as_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_model.XXXXXX");
    AS_ASSERT(mkdtemp(tmpdir));
    TEST_RUN(test_model__parity);
    TEST_RUN(test_model__reuse_bitwise);
    TEST_RUN(test_model__qkv);
    TEST_RUN(test_model__ref_twins);
    TEST_RUN(test_model__errors);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return as_test_done();
}
