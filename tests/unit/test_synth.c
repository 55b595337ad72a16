/* test_synth.c: the synthetic models (pipeline/readers/as_synth.h): the same bits for any slab
 * decomposition, instruction set and reader; the same spec, the same bytes; statistics that are
 * not trivial; memory of one row, not of a layer. */
#undef NDEBUG
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "as_reader.h"
#include "as_simd.h"
#include "as_synth.h"
#include "as_test.h"

/* odd sizes: T not a multiple of the vector width, head_dim of 5 (Q/K/V rows of 15) */
static const char *const SPEC = "synthetic:layers=2,heads=3,seq_len=37,batch=2,head_dim=5,seed=3,model=t";
static const char *const TENSORS[] = { "qk_mean", "qk_var", "attention_probs_mean", "attention_probs_var",
                                       "attn", "grad", "q_acts", "k_acts", "v_acts" };
#define N_TENSORS (sizeof TENSORS / sizeof TENSORS[0])
#define ROW_SUM_TOL 1e-6

struct whole {
    struct as_tensor_file tf;
    const struct as_tensor_info *ti;
    int64_t n;
    float *x;
};

static void whole_open(struct whole *w, const char *spec, const char *name)
{
    struct as_error err = { 0 };
    AS_ASSERT(!as_tensor_file_open(&w->tf, &as_reader_synth, spec, name, &err));
    w->ti = as_tensor_file_info(&w->tf);
    w->n = as_shape_numel(w->ti->ndim, w->ti->shape);
    w->x = malloc((size_t)w->n * sizeof *w->x);
    int64_t start[AS_MAX_DIMS] = { 0 };
    AS_ASSERT(w->x && !as_tensor_file_read(&w->tf, start, w->ti->shape, AS_DTYPE_F32, w->x, &err));
}

static void whole_close(struct whole *w)
{
    as_tensor_file_close(&w->tf);
    free(w->x);
}

/* Read the tensor in blocks: along dim d, pieces of blk[d] (the last piece shorter), every block
 * compared with the same elements of the whole read. Returns the count of differing elements. */
static int64_t read_blocks(struct whole *w, const int64_t *blk, enum as_dtype dt)
{
    const struct as_tensor_info *ti = w->ti;
    int nd = ti->ndim;
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS], bad = 0;
    size_t esz = dt == AS_DTYPE_F64 ? 8 : 4;
    void *buf = malloc((size_t)w->n * esz);
    struct as_error err = { 0 };
    for (;;) {
        int64_t m = 1;
        for (int d = 0; d < nd; d++) {
            count[d] = start[d] + blk[d] <= ti->shape[d] ? blk[d] : ti->shape[d] - start[d];
            m *= count[d];
        }
        AS_ASSERT(!as_tensor_file_read(&w->tf, start, count, dt, buf, &err));
        int64_t idx[AS_MAX_DIMS] = { 0 };
        for (int64_t k = 0; k < m; k++) {
            int64_t off = 0;
            for (int d = 0; d < nd; d++)
                off += (start[d] + idx[d]) * ti->stride[d];
            double got = dt == AS_DTYPE_F64 ? ((double *)buf)[k] : ((float *)buf)[k];
            if (dt == AS_DTYPE_F32 ? memcmp((float *)buf + k, w->x + off, 4) != 0 : got != (double)w->x[off])
                bad++;
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < count[d])
                    break;
                idx[d] = 0;
            }
        }
        int d = nd - 1;
        for (; d >= 0; d--) {
            start[d] += blk[d];
            if (start[d] < ti->shape[d])
                break;
            start[d] = 0;
        }
        if (d < 0)
            break;
    }
    free(buf);
    return bad;
}

static void test_synth__any_decomposition(void)
{
    for (size_t t = 0; t < N_TENSORS; t++) {
        struct whole w;
        whole_open(&w, SPEC, TENSORS[t]);
        int nd = w.ti->ndim;
        int64_t blk[AS_MAX_DIMS];
        /* a layer at a time */
        for (int d = 0; d < nd; d++)
            blk[d] = d ? w.ti->shape[d] : 1;
        CHECK_MSG(read_blocks(&w, blk, AS_DTYPE_F32) == 0, "%s per layer", TENSORS[t]);
        /* a matrix (head) at a time, and as float64 */
        for (int d = 0; d < nd - 2; d++)
            blk[d] = 1;
        CHECK_MSG(read_blocks(&w, blk, AS_DTYPE_F32) == 0, "%s per head", TENSORS[t]);
        CHECK_MSG(read_blocks(&w, blk, AS_DTYPE_F64) == 0, "%s per head, float64", TENSORS[t]);
        /* odd blocks of rows and cols, 2 matrices at once */
        blk[0] = 2;
        blk[nd - 2] = 7;
        blk[nd - 1] = 5;
        CHECK_MSG(read_blocks(&w, blk, AS_DTYPE_F32) == 0, "%s in 7 x 5 blocks", TENSORS[t]);
        /* single rows, single elements */
        for (int d = 0; d < nd; d++)
            blk[d] = 1;
        blk[nd - 1] = w.ti->shape[nd - 1];
        CHECK_MSG(read_blocks(&w, blk, AS_DTYPE_F64) == 0, "%s per row", TENSORS[t]);
        blk[nd - 1] = 1;
        CHECK_MSG(read_blocks(&w, blk, AS_DTYPE_F32) == 0, "%s per element", TENSORS[t]);
        whole_close(&w);
    }
}

/* every instruction set this CPU has gives the same bits */
static void test_synth__any_instruction_set(void)
{
    const char *sets[] = { "scalar", "sse2", "avx2", "avx512" };
    for (size_t t = 0; t < N_TENSORS; t++) {
        struct whole ref, w;
        whole_open(&ref, SPEC, TENSORS[t]);
        for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++) {
            if (as_simd_force(sets[s]))
                continue;
            whole_open(&w, SPEC, TENSORS[t]);
            CHECK_MSG(!memcmp(w.x, ref.x, (size_t)w.n * 4), "%s with %s", TENSORS[t], sets[s]);
            whole_close(&w);
        }
        as_simd_force("auto");
        whole_close(&ref);
    }
}

/* the same spec gives the same bytes (two readers); another seed or model name other values */
static void test_synth__same_spec_same_bytes(void)
{
    const char *other[] = { "synthetic:layers=2,heads=3,seq_len=37,batch=2,head_dim=5,seed=4,model=t",
                            "synthetic:layers=2,heads=3,seq_len=37,batch=2,head_dim=5,seed=3,model=u" };
    for (size_t t = 0; t < N_TENSORS; t++) {
        struct whole a, b;
        whole_open(&a, SPEC, TENSORS[t]);
        whole_open(&b, SPEC, TENSORS[t]);
        CHECK_MSG(!memcmp(a.x, b.x, (size_t)a.n * 4), "%s twice", TENSORS[t]);
        whole_close(&b);
        for (int o = 0; o < 2; o++) {
            whole_open(&b, other[o], TENSORS[t]);
            CHECK_MSG(memcmp(a.x, b.x, (size_t)a.n * 4) != 0, "%s vs %s", TENSORS[t], other[o]);
            whole_close(&b);
        }
        /* layers differ */
        CHECK_MSG(memcmp(a.x, a.x + a.ti->stride[0], (size_t)a.ti->stride[0] * 4) != 0, "%s layers", TENSORS[t]);
        whole_close(&a);
    }
}

/* the noise: mean 0, sd 1, bounded without tails; heavy tails when asked */
static void test_synth__noise(void)
{
    enum { n = 1 << 16 };
    float *z = malloc(n * sizeof *z);
    for (int tail = 0; tail < 2; tail++) {
        as_synth_noise(12345, n, tail ? 5 : 0, 4.0f, z);
        double s = 0, s2 = 0;
        int64_t big = 0;
        for (int j = 0; j < n; j++) {
            s += z[j];
            s2 += (double)z[j] * z[j];
            big += fabsf(z[j]) > 3.5f;
        }
        double mean = s / n, sd = sqrt(s2 / n - mean * mean);
        CHECK_MSG(fabs(mean) < 0.03 && (tail || fabs(sd - 1) < 0.02), "tail %d: mean %g sd %g", tail, mean, sd);
        /* Irwin-Hall(4) is bounded by 2 sqrt(3); 2% of values 4x wider: ~0.7% beyond 3.5 */
        CHECK_MSG(tail ? big > n / 400 && big < n / 50 : big == 0, "tail %d: %lld beyond 3.5", tail, (long long)big);
    }
    free(z);
    CHECK_CLOSE(as_synth_expf(-1.5f), exp(-1.5), 0, 3e-7);
    CHECK_CLOSE(as_synth_expf(0.7f), exp(0.7f), 0, 3e-7);
}

/* scores: per-head means differ, the diagonal stands out, the score falls with distance */
static void test_synth__scores(void)
{
    const char *spec = "synthetic:layers=3,heads=8,seq_len=64,batch=1,head_dim=8,seed=5,model=s";
    struct whole w;
    whole_open(&w, spec, "qk_mean");
    int64_t H = 8, T = 64;
    double means[8];
    for (int64_t l = 0; l < 3; l++)
        for (int64_t h = 0; h < H; h++) {
            const float *x = w.x + (l * H + h) * T * T;
            double diag = 0, near = 0, far = 0, all = 0;
            int64_t nn = 0, nf = 0;
            for (int64_t i = 0; i < T; i++)
                for (int64_t j = 0; j < T; j++) {
                    all += x[i * T + j];
                    if (i == j)
                        diag += x[i * T + j];
                    else if (labs((long)(i - j)) <= 2)
                        near += x[i * T + j], nn++;
                    else if (labs((long)(i - j)) >= 40)
                        far += x[i * T + j], nf++;
                }
            diag /= T, near /= nn, far /= nf;
            if (l == 0)
                means[h] = all / (T * T);
            CHECK_MSG(diag > near + 0.2, "layer %lld head %lld: diagonal %g vs near %g", (long long)l, (long long)h,
                      diag, near);
            if (h < H / 2) /* ALiBi-like: the steep half of the heads (the rest have slopes ~ 2^-8) */
                CHECK_MSG(far < near, "layer %lld head %lld: far %g vs near %g", (long long)l, (long long)h, far,
                          near);
        }
    for (int a = 0; a < 8; a++)
        for (int b = a + 1; b < 8; b++)
            CHECK_MSG(fabs(means[a] - means[b]) > 1e-3, "heads %d and %d: means %g %g", a, b, means[a], means[b]);
    whole_close(&w);
}

/* probability rows: causal, non-negative, summing to 1; gradients dense */
static void test_synth__probability_rows(void)
{
    const char *spec = "synthetic:layers=2,heads=4,seq_len=301,batch=2,head_dim=16,seed=8,model=p";
    const char *names[] = { "attention_probs_mean", "attn" };
    for (int t = 0; t < 2; t++) {
        struct whole w;
        whole_open(&w, spec, names[t]);
        int64_t T = 301, nmat = w.n / (T * T), bad = 0, upper = 0, neg = 0;
        double worst = 0;
        for (int64_t m = 0; m < nmat; m++)
            for (int64_t i = 0; i < T; i++) {
                const float *r = w.x + (m * T + i) * T;
                double s = 0;
                for (int64_t j = 0; j < T; j++) {
                    s += r[j];
                    upper += j > i && r[j] != 0;
                    neg += r[j] < 0;
                }
                worst = fabs(s - 1) > worst ? fabs(s - 1) : worst;
                bad += fabs(s - 1) > ROW_SUM_TOL;
            }
        CHECK_MSG(bad == 0 && upper == 0 && neg == 0, "%s: %lld rows off by more than %g (worst %g), %lld "
                  "non-zero above the diagonal, %lld negative", names[t], (long long)bad, ROW_SUM_TOL, worst,
                  (long long)upper, (long long)neg);
        /* not uniform: the last row's largest probability well above 1/T */
        float mx = 0;
        for (int64_t j = 0; j < T; j++)
            mx = w.x[(T - 1) * T + j] > mx ? w.x[(T - 1) * T + j] : mx;
        CHECK_MSG(mx > 5.0 / T, "%s: last row max %g", names[t], mx);
        whole_close(&w);
    }
    struct whole g;
    whole_open(&g, spec, "grad");
    int64_t zero = 0;
    for (int64_t k = 0; k < g.n; k++)
        zero += g.x[k] == 0 || !isfinite(g.x[k]);
    CHECK_MSG(zero < g.n / 1000, "grad: %lld zero or non-finite of %lld", (long long)zero, (long long)g.n);
    whole_close(&g);
}

/* Q and K have outlier dims (the same ones); V's token 0 is small (the attention sink) */
static void test_synth__acts_outliers(void)
{
    for (int seed = 1; seed <= 4; seed++) {
        char spec[200];
        snprintf(spec, sizeof spec, "synthetic:layers=2,heads=8,seq_len=50,batch=1,head_dim=16,seed=%d,model=a", seed);
        int64_t T = 50, D = 128;
        int top[3] = { -1, -1, -1 }, second = -1;
        for (int t = 0; t < 3; t++) {
            struct whole w;
            whole_open(&w, spec, t == 0 ? "q_acts" : t == 1 ? "k_acts" : "v_acts");
            const float *x = w.x + T * D; /* layer 1 */
            double col[128], med[128];
            for (int64_t d = 0; d < D; d++) {
                col[d] = 0;
                for (int64_t i = 1; i < T; i++)
                    col[d] += fabs(x[i * D + d]) / (double)(T - 1);
                med[d] = col[d];
            }
            for (int a = 0; a < D; a++)
                for (int b = a + 1; b < D; b++)
                    if (med[b] < med[a]) {
                        double s = med[a];
                        med[a] = med[b];
                        med[b] = s;
                    }
            for (int64_t d = 0; d < D; d++)
                if (top[t] < 0 || col[d] > col[top[t]])
                    top[t] = (int)d;
            if (t < 2)
                CHECK_MSG(med[D - 1] > 5 * med[D / 2], "seed %d %s: max dim %g, median %g", seed, t ? "k" : "q",
                          med[D - 1], med[D / 2]);
            if (t == 1) /* K's two largest dims (2 + D/512 outliers) */
                for (int64_t d = 0; d < D; d++)
                    if (d != top[1] && (second < 0 || col[d] > col[second]))
                        second = (int)d;
            if (t == 2) {
                double n0 = 0, n1 = 0;
                for (int64_t d = 0; d < D; d++)
                    n0 += (double)x[d] * x[d], n1 += (double)x[D + d] * x[D + d];
                CHECK_MSG(n0 < 0.1 * n1, "seed %d: V token 0 %g vs token 1 %g", seed, n0, n1);
            }
            whole_close(&w);
        }
        CHECK_MSG(top[0] == top[1] || top[0] == second, "seed %d: Q's largest dim %d, K's %d and %d", seed, top[0],
                  top[1], second);
    }
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* BLOOM's shape at T = 2048 (112 heads): a head costs its own bytes, never a layer's (3.7 GB) */
static void test_synth__memory_of_a_head(void)
{
    const char *spec = "synthetic:layers=70,heads=112,seq_len=2048,batch=1,head_dim=128,seed=1,model=bloom";
    const char *names[] = { "attention_probs_mean", "attn", "q_acts" };
    int64_t T = 2048;
    float *buf = malloc((size_t)(T * T) * sizeof *buf);
    memset(buf, 0, (size_t)(T * T) * sizeof *buf);
    long before = maxrss_kb();
    for (int t = 0; t < 3; t++) {
        struct as_tensor_file tf;
        struct as_error err = { 0 };
        AS_ASSERT(!as_tensor_file_open(&tf, &as_reader_synth, spec, names[t], &err));
        int64_t s5[5] = { 69, 0, 111, 0, 0 }, c5[5] = { 1, 1, 1, T, T };
        int64_t s4[4] = { 69, 111, 0, 0 }, c4[4] = { 1, 1, T, T };
        int64_t s3[3] = { 69, 0, 0 }, c3[3] = { 1, T / 8, 112 * 128 };
        CHECK(!as_tensor_file_read(&tf, t == 0 ? s4 : t == 1 ? s5 : s3, t == 0 ? c4 : t == 1 ? c5 : c3,
                                   AS_DTYPE_F32, buf, &err));
        as_tensor_file_close(&tf);
    }
    long grew = maxrss_kb() - before;
    CHECK_MSG(grew < 32 * 1024, "peak RSS grew by %ld KB for one head", grew);
    free(buf);
}

int main(void)
{
    TEST_RUN(test_synth__any_decomposition);
    TEST_RUN(test_synth__any_instruction_set);
    TEST_RUN(test_synth__same_spec_same_bytes);
    TEST_RUN(test_synth__noise);
    TEST_RUN(test_synth__scores);
    TEST_RUN(test_synth__probability_rows);
    TEST_RUN(test_synth__acts_outliers);
    TEST_RUN(test_synth__memory_of_a_head);
    return as_test_done();
}
