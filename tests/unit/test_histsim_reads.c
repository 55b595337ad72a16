/* test_histsim_reads.c: how histsim reads its input (memory cache, spill file, re-read of the
 * triangles, the sampled gather) never changes a result: the same rows, bit for bit, on every
 * path, also when the spill fails in every way it can; and sampled mode gives the edges the radix
 * selection it replaced gave. */
#undef NDEBUG
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_test.h"
#include "as_test_stage.h"
#include "histsim/histsim.h"
#include "histsim/histsim_spill.h"

extern const struct as_stage_ops as_stage_histsim;

/* Values from a formula both C and numpy compute bit for bit (integer arithmetic, one division,
 * one multiplication, one rounding to float32); NaN at every nan_every-th element (0: none). */
static double fx_value(uint64_t k)
{
    double u = (double)((k * 2654435761ull) % 1000003ull) / 1000003.0;
    return (u - 0.5) * (double)(1 + k % 7);
}

static void write_fixture(const char *path, int64_t L, int64_t H, int64_t T, int f64, uint64_t nan_every)
{
    int64_t shape[4] = { L, H, T, T };
    size_t n = (size_t)(L * H * T * T);
    void *x = malloc(n * (f64 ? 8 : 4));
    for (size_t k = 0; k < n; k++) {
        double v = nan_every && k % nan_every == 0 ? NAN : fx_value(k);
        if (f64)
            ((double *)x)[k] = v;
        else
            ((float *)x)[k] = (float)v;
    }
    CHECK(as_test_write_npy(path, f64 ? "<f8" : "<f4", 4, shape, x) == 0);
    free(x);
}

struct fixture {
    char path[256];
    struct as_tensor_file tf;
    struct as_tensor_file *in[1];
};

static void fixture_open(struct fixture *f, const char *name, int64_t L, int64_t H, int64_t T, int f64,
                         uint64_t nan_every)
{
    struct as_error err = { 0 };
    snprintf(f->path, sizeof f->path, "/tmp/as_test_hsreads_%s_%d.npy", name, (int)getpid());
    write_fixture(f->path, L, H, T, f64, nan_every);
    CHECK_MSG(as_tensor_file_open(&f->tf, NULL, f->path, NULL, &err) == 0, "%s", err.msg);
    f->in[0] = &f->tf;
}

static void fixture_close(struct fixture *f)
{
    as_tensor_file_close(&f->tf);
    unlink(f->path);
}

/* Run with options opts; the result must be released by the caller. */
static int run(struct fixture *f, const char *opts, struct as_test_stage_result *res)
{
    struct as_error err = { 0 };
    as_hs_keep_stats_reset();
    int rc = as_test_run_stage(&as_stage_histsim, opts, "m", f->in, res, &err);
    CHECK_MSG(rc == 0, "%s: %s", opts, err.msg);
    return rc;
}

/* Rows, model block and every attribute but `spill` (which records the option) identical. */
static int same_results(const struct as_test_stage_result *a, const struct as_test_stage_result *b)
{
    const struct as_exec *x = &a->ex, *y = &b->ex;
    if (x->schema.row_size != y->schema.row_size || x->shape.n_layers != y->shape.n_layers ||
        memcmp(x->rows, y->rows, (size_t)x->shape.n_layers * x->schema.row_size) ||
        memcmp(x->model_block, y->model_block, x->schema.model_size) || x->out.n_attrs != y->out.n_attrs)
        return 0;
    for (int i = 0; i < x->out.n_attrs; i++) {
        const struct as_attr *p = &x->out.attrs[i], *q = &y->out.attrs[i];
        if (strcmp(p->name, q->name) || p->kind != q->kind)
            return 0;
        if (!strcmp(p->name, "spill") || !strcmp(p->name, "cache_mb"))
            continue;
        if (memcmp(&p->f64, &q->f64, sizeof p->f64) || p->i64 != q->i64 || strcmp(p->str, q->str) || p->n != q->n ||
            (p->n && memcmp(p->vec, q->vec, (size_t)p->n * sizeof *p->vec)))
            return 0;
    }
    return 1;
}

/* A fresh empty directory for spill files. */
static void make_dir(char *dir, size_t n, const char *name)
{
    snprintf(dir, n, "/tmp/as_test_hsreads_%s_%d", name, (int)getpid());
    mkdir(dir, 0700);
}

static int dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return d && n == 0;
}

/* The per-head triangle size in bytes. */
static uint64_t tri_bytes(int64_t T, int f64) { return (uint64_t)(T * (T + 1) / 2) * (f64 ? 8u : 4u); }

/* Memory cache, spill file and re-read give the same bits; each path was really taken. */
static void test_histsim_reads__paths_identical(void)
{
    static const struct { const char *name; int64_t L, H, T; int f64; uint64_t nan_every; const char *extra; } cases[] = {
        { "f32_odd", 3, 4, 37, 0, 0, "" },
        { "f32_t65", 2, 3, 65, 0, 0, "" },          /* 3 rows per triangle read, a short last block */
        { "f64_odd", 2, 3, 21, 1, 0, "" },          /* float64: radix prepass, kept in its last round */
        { "f32_nan", 2, 2, 19, 0, 13, "non_finite: skip, " },
        { "t1", 2, 2, 1, 0, 0, "" },
    };
    char dir[256], opts[512];
    make_dir(dir, sizeof dir, "spill");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct fixture f;
        int64_t L = cases[c].L, H = cases[c].H, T = cases[c].T;
        fixture_open(&f, cases[c].name, L, H, T, cases[c].f64, cases[c].nan_every);
        struct as_test_stage_result reread, mem, spill;
        struct as_hs_keep_stats st;
        struct as_hs_spill_stats s0, s1;

        snprintf(opts, sizeof opts, "{%scache_mb: 0, spill: off}", cases[c].extra);
        if (run(&f, opts, &reread) == 0) {
            as_hs_keep_stats(&st);
            CHECK_MSG(st.reread == (uint64_t)L && st.memory == 0 && st.spilled == 0, "%s: reread %llu of %lld",
                      cases[c].name, (unsigned long long)st.reread, (long long)L);
        }
        snprintf(opts, sizeof opts, "{%scache_mb: 4096, spill: off}", cases[c].extra);
        if (run(&f, opts, &mem) == 0) {
            as_hs_keep_stats(&st);
            CHECK_MSG(st.memory == (uint64_t)L && st.reread == 0, "%s: %llu layers in memory", cases[c].name,
                      (unsigned long long)st.memory);
            CHECK_MSG(same_results(&reread, &mem), "%s: memory cache differs from the re-read", cases[c].name);
        }
        as_hs_spill_stats(&s0);
        snprintf(opts, sizeof opts, "{%scache_mb: 0, spill: '%s'}", cases[c].extra, dir);
        if (run(&f, opts, &spill) == 0) {
            as_hs_keep_stats(&st);
            as_hs_spill_stats(&s1);
            uint64_t want = (uint64_t)(L * H) * tri_bytes(T, cases[c].f64);
            CHECK_MSG(st.spilled == (uint64_t)L && st.from_spill == (uint64_t)L && st.reread == 0 &&
                          st.spill_dropped == 0 && st.spill_failed == 0,
                      "%s: spilled %llu, read back %llu", cases[c].name, (unsigned long long)st.spilled,
                      (unsigned long long)st.from_spill);
            CHECK_MSG(s1.bytes_written - s0.bytes_written == want && s1.bytes_read - s0.bytes_read == want,
                      "%s: spill wrote %llu, read %llu bytes, want %llu", cases[c].name,
                      (unsigned long long)(s1.bytes_written - s0.bytes_written),
                      (unsigned long long)(s1.bytes_read - s0.bytes_read), (unsigned long long)want);
            CHECK_MSG(same_results(&reread, &spill), "%s: spill differs from the re-read", cases[c].name);
            const struct as_attr *a = as_test_attr(&spill.ex.out, "spill");
            CHECK(a && a->kind == AS_ATTR_STR && !strcmp(a->str, dir));
        }
        CHECK_MSG(dir_is_empty(dir), "%s: the spill left a file in %s", cases[c].name, dir);
        /* the default: spill auto, TMPDIR unset here means off; the attribute says auto */
        if (!getenv("TMPDIR")) {
            struct as_test_stage_result def;
            snprintf(opts, sizeof opts, "{%scache_mb: 0}", cases[c].extra);
            if (run(&f, opts, &def) == 0) {
                as_hs_keep_stats(&st);
                CHECK(st.reread == (uint64_t)L && !strcmp(as_test_attr(&def.ex.out, "spill")->str, "auto"));
                CHECK(same_results(&reread, &def));
            }
            as_test_stage_result_release(&def);
            /* spill: auto with TMPDIR set spills there */
            setenv("TMPDIR", dir, 1);
            if (run(&f, opts, &def) == 0) {
                as_hs_keep_stats(&st);
                CHECK_MSG(st.from_spill == (uint64_t)L, "%s: TMPDIR not used by spill: auto", cases[c].name);
                CHECK(same_results(&reread, &def));
            }
            unsetenv("TMPDIR");
            as_test_stage_result_release(&def);
        }
        as_test_stage_result_release(&reread);
        as_test_stage_result_release(&mem);
        as_test_stage_result_release(&spill);
        fixture_close(&f);
    }
    rmdir(dir);
}

/* The rows of the re-read path against a direct computation: the triangles read in row blocks
 * are the triangles (the means are sums of exactly those values). */
static void test_histsim_reads__triangle_read_values(void)
{
    int64_t L = 2, H = 3, T = 65;
    struct fixture f;
    fixture_open(&f, "tri", L, H, T, 0, 0);
    struct as_test_stage_result r;
    if (run(&f, "{cache_mb: 0, spill: off}", &r) == 0)
        for (int64_t l = 0; l < L; l++)
            for (int64_t h = 0; h < H; h++) {
                double sd = 0, sl = 0;
                for (int64_t i = 0; i < T; i++)
                    for (int64_t j = 0; j <= i; j++) {
                        double v = (float)fx_value((uint64_t)(((l * H + h) * T + i) * T + j));
                        if (i == j)
                            sd += v;
                        else
                            sl += v;
                    }
                CHECK_CLOSE(as_test_field(&r, "mean_diag", l)[h], sd / (double)T, 1e-12, 1e-12);
                CHECK_CLOSE(as_test_field(&r, "mean_lower", l)[h], sl / (double)(T * (T - 1) / 2), 1e-12, 1e-12);
            }
    as_test_stage_result_release(&r);
    fixture_close(&f);
}

/* A spill that cannot be created, has no room, fails to write or loses what it wrote: the same
 * results, silently, from the input. */
static void test_histsim_reads__spill_fallbacks(void)
{
    int64_t L = 3, H = 4, T = 33;
    struct fixture f;
    fixture_open(&f, "fb", L, H, T, 0, 0);
    struct as_test_stage_result ref, r;
    struct as_hs_keep_stats st;
    char opts[512], dir[256];
    CHECK(run(&f, "{cache_mb: 0, spill: off}", &ref) == 0);
    /* cannot be created */
    static const char *const bad[] = { "/proc", "/nonexistent/attnstat/spill", "/dev/null" };
    for (int i = 0; i < 3; i++) {
        snprintf(opts, sizeof opts, "{cache_mb: 0, spill: '%s'}", bad[i]);
        if (run(&f, opts, &r) == 0) {
            as_hs_keep_stats(&st);
            CHECK_MSG(st.reread == (uint64_t)L && st.spilled == 0, "%s: spilled", bad[i]);
            CHECK_MSG(same_results(&ref, &r), "spill %s: results differ", bad[i]);
        }
        as_test_stage_result_release(&r);
    }
    /* write errors: a file size limit below the spill (EFBIG from the second head on) */
    make_dir(dir, sizeof dir, "fb");
    snprintf(opts, sizeof opts, "{cache_mb: 0, spill: '%s'}", dir);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)(tri_bytes(T, 0) + tri_bytes(T, 0) / 2);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int rc = run(&f, opts, &r);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    if (rc == 0) {
        as_hs_keep_stats(&st);
        CHECK_MSG(st.spill_dropped >= 1 && st.from_spill + st.spill_dropped == st.spilled &&
                      st.from_spill + st.reread == (uint64_t)L,
                  "EFBIG: spilled %llu dropped %llu read back %llu reread %llu", (unsigned long long)st.spilled,
                  (unsigned long long)st.spill_dropped, (unsigned long long)st.from_spill,
                  (unsigned long long)st.reread);
        CHECK_MSG(same_results(&ref, &r), "EFBIG: results differ");
    }
    as_test_stage_result_release(&r);
    /* read errors: the spill file truncated between the prepass and run() (short reads) */
    void *cfg = NULL;
    struct as_error err = { 0 };
    struct as_exec ex;
    const struct as_tensor_info *info[1] = { as_tensor_file_info(&f.tf) };
    as_hs_keep_stats_reset();
    CHECK(as_test_stage_configure(&as_stage_histsim, opts, &cfg, &err) == 0);
    CHECK_MSG(as_exec_begin(&ex, &as_stage_histsim, cfg, info, 0, &err) == 0, "%s", err.msg);
    int more = 1;
    for (int round = 0; more; round++) {
        uint64_t *acc = calloc(as_exec_prepass_count(&ex, round) + 1, sizeof *acc);
        for (int64_t l = 0; l < L; l++) {
            struct as_unit u;
            as_exec_unit(&ex, "m", l, f.in, &u);
            CHECK(as_exec_prepass_unit(&ex, round, &u, acc, &err) == 0);
        }
        CHECK(as_exec_prepass_reduce(&ex, round, acc, &more, &err) == 0);
        free(acc);
    }
    int truncated = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));) {
        char link[512], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0 && (target[n] = 0, !strncmp(target, dir, strlen(dir))))
            truncated += ftruncate(atoi(e->d_name), 0) == 0;
    }
    if (d)
        closedir(d);
    CHECK_MSG(truncated == 1, "found %d spill files to truncate", truncated);
    unsigned char *rows = calloc((size_t)L, ex.schema.row_size);
    for (int64_t l = 0; l < L; l++) {
        struct as_unit u;
        as_exec_unit(&ex, "m", l, f.in, &u);
        CHECK(as_exec_run_unit(&ex, &u, as_schema_row(&ex.schema, rows, l), &err) == 0);
    }
    as_hs_keep_stats(&st);
    CHECK_MSG(st.spilled == (uint64_t)L && st.spill_failed == (uint64_t)L && st.from_spill == 0,
              "truncated spill: %llu failed reads", (unsigned long long)st.spill_failed);
    CHECK_MSG(!memcmp(rows, ref.ex.rows, (size_t)L * ex.schema.row_size), "truncated spill: rows differ");
    free(rows);
    as_exec_release(&ex);
    as_stage_histsim.release(cfg);
    CHECK(dir_is_empty(dir));
    /* a full file system: a 64 KiB tmpfs (root only) has less room than the margin */
    if (mount("tmpfs", dir, "tmpfs", 0, "size=64k") == 0) {
        if (run(&f, opts, &r) == 0) {
            as_hs_keep_stats(&st);
            CHECK_MSG(st.spilled == 0 && st.reread == (uint64_t)L, "full tmpfs: spilled %llu",
                      (unsigned long long)st.spilled);
            CHECK_MSG(same_results(&ref, &r), "full tmpfs: results differ");
        }
        as_test_stage_result_release(&r);
        CHECK(dir_is_empty(dir));
        umount(dir);
    } else {
        printf("skip test_histsim_reads__spill_fallbacks (full file system): cannot mount a tmpfs: %s\n",
               strerror(errno));
    }
    rmdir(dir);
    as_test_stage_result_release(&ref);
    fixture_close(&f);
}

/* Sampled mode: the edges (bit for bit), counts and search name the radix selection of the
 * sample gave before the sample was gathered in one round (values of tests/unit's formula,
 * computed by commit 5a72330's attnstat: quantile: sampled, samples: 1000, seed: 5, edges: 9,
 * non_finite: skip). */
static void test_histsim_reads__sampled_edges_unchanged(void)
{
    static const double want_a[9] = { -0x1.a98cec0000000p+1, -0x1.41f2060000000p+1, -0x1.b4ae420000000p+0,
                                      -0x1.caf0f00000000p-1, -0x1.642ac00000000p-4, 0x1.71e6400000000p-1,
                                      0x1.8828ea0000000p+0,  0x1.2baf5a0000000p+1,  0x1.934a400000000p+1 };
    static const double want_b[9] = { -0x1.9611bb194fa74p+1, -0x1.2f28b5350d43ep+1, -0x1.907f5ea195c0ep+0,
                                      -0x1.855aa5b221f40p-1, 0x1.64971dee79940p-5,  0x1.b1ed896ff126cp-1,
                                      0x1.a6c8d0807d5a4p+0,  0x1.3a4d6e2481108p+1,  0x1.a1367408c373fp+1 };
    static const struct { const char *name; int64_t L, H, T; int f64; uint64_t nan_every; const double *want;
                          int64_t counted, skipped; } cases[] = {
        { "sa", 3, 4, 23, 0, 97, want_a, 990, 10 },
        { "sb", 2, 3, 16, 1, 0, want_b, 1000, 0 },
    };
    for (size_t c = 0; c < 2; c++) {
        struct fixture f;
        fixture_open(&f, cases[c].name, cases[c].L, cases[c].H, cases[c].T, cases[c].f64, cases[c].nan_every);
        struct as_test_stage_result r, r0;
        const char *o = "{quantile: sampled, samples: 1000, seed: 5, edges: 9, non_finite: skip}";
        if (run(&f, o, &r) == 0) {
            const double *bins = as_test_field(&r, "bins", 0);
            CHECK_MSG(!memcmp(bins, cases[c].want, 9 * sizeof *bins), "%s: sampled edges changed", cases[c].name);
            for (int k = 0; k < 9 && memcmp(bins, cases[c].want, 9 * sizeof *bins); k++)
                fprintf(stderr, "  edge %d: %a, want %a\n", k, bins[k], cases[c].want[k]);
            CHECK(as_test_attr(&r.ex.out, "values_counted")->i64 == cases[c].counted);
            CHECK(as_test_attr(&r.ex.out, "non_finite_skipped")->i64 == cases[c].skipped);
            CHECK(!strcmp(as_test_attr(&r.ex.out, "quantile_search")->str, "radix"));
            /* sampled mode reads the sample, then the triangles: every path alike */
            if (run(&f, "{quantile: sampled, samples: 1000, seed: 5, edges: 9, non_finite: skip, cache_mb: 0, "
                        "spill: off}", &r0) == 0)
                CHECK(same_results(&r, &r0));
            as_test_stage_result_release(&r0);
        }
        as_test_stage_result_release(&r);
        /* sampled reads: the sample (one element each, or short runs), then the triangles */
        uint64_t before = f.tf.bytes_read;
        if (run(&f, "{quantile: sampled, samples: 100, seed: 1, non_finite: skip}", &r) == 0) {
            uint64_t esz = cases[c].f64 ? 8 : 4, T = (uint64_t)cases[c].T, LH = (uint64_t)(cases[c].L * cases[c].H);
            uint64_t want = LH * (T * (T + 1) / 2 + (T + 31) / 32 * T) * esz + 100 * 512; /* runs: gaps <= 512 B */
            uint64_t got = f.tf.bytes_read - before;
            CHECK_MSG(got <= want, "%s: sampled mode read %llu bytes, want <= %llu", cases[c].name,
                      (unsigned long long)got, (unsigned long long)want);
        }
        as_test_stage_result_release(&r);
        fixture_close(&f);
    }
}

/* A sampled run whose sample holds a NaN reports it like the radix pass did (non_finite: error). */
static void test_histsim_reads__sampled_non_finite_error(void)
{
    struct fixture f;
    fixture_open(&f, "snf", 2, 2, 9, 0, 3); /* a third of the values are NaN */
    struct as_test_stage_result r;
    struct as_error err = { 0 };
    CHECK(as_test_run_stage(&as_stage_histsim, "{quantile: sampled, samples: 50}", "mm", f.in, &r, &err) != 0);
    CHECK_MSG(strstr(err.msg, "model 'mm' layer 0 head 0: ") && strstr(err.msg, "non-finite values in 'qk_mean'"),
              "%s", err.msg);
    as_test_stage_result_release(&r);
    fixture_close(&f);
}

int main(void)
{
    TEST_RUN(test_histsim_reads__paths_identical);
    TEST_RUN(test_histsim_reads__triangle_read_values);
    TEST_RUN(test_histsim_reads__spill_fallbacks);
    TEST_RUN(test_histsim_reads__sampled_edges_unchanged);
    TEST_RUN(test_histsim_reads__sampled_non_finite_error);
    return as_test_done();
}
