/* plan_sim.c: projects attnstat's wall time for big sweeps and rank counts with the project's own
 * cost model (each stage's shape() -> unit_cost, the "elements touched" of one (model, layer) unit)
 * and its own scheduler (as_plan_assign: LPT), calibrated on a measured run.
 *
 *   plan_sim FIT.h5 [--ranks 1,2,4,8,64,512] [--compare RESULTS.h5...]
 *
 * FIT.h5 is any complete results file (best: one rank, no oversubscription). The fit is one
 * number: seconds per cost unit = sum(/run/rank_busy_seconds) / sum of the unit costs of its
 * models (shapes from the /models/<name> attributes n_layers, n_heads, seq_len; stages from the
 * groups present). It then simulates
 *   - the paper sweep: 75 models = 5 models x seq_len {64, 256, 512, 1024, 2048} x 3 datasets,
 *     with FIT's stages: predicted wall (max rank load), mean load, load balance (mean/max), the
 *     lower bound max(total/ranks, largest unit), at each --ranks count;
 *   - with --compare: each RESULTS file's own models at its own mpi_size, next to what was
 *     measured there (max and mean busy, balance), to check the model on this machine.
 * Busy time only: start-up, the collective prepass waits and writing the file are not modelled;
 * "read GB/s" is the aggregate input rate the file system must sustain for that wall time (the
 * fit's busy time includes its own reading, or generating synthetic tensors).
 * Only stages whose input is a (layers, heads, T, T) tensor have a cost here: histsim, monotonicity.
 *
 * Build (links the project's core library; flags as attnstat's own link line):
 *   B=build-slurm; cc -O2 -Ipipeline -Istages $(pkg-config --cflags hdf5-openmpi) jobs/bench/plan_sim.c \
 *      -o $B/plan_sim $(sed -e 's/^.*-o attnstat//' -e "s# libas_core.a # $B/libas_core.a #" \
 *      $B/CMakeFiles/attnstat.dir/link.txt)
 * (jobs/scaling.sh does this and runs it on its strong-scaling files.) */
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_dtype.h"
#include "as_error.h"
#include "as_plan.h"
#include "as_stage_registry.h"

#define MAX_STAGES 8
#define MAX_RANKS 64

struct model_shape {
    char name[128];
    int64_t layers, heads, seq_len;
};

struct stage_set {
    const struct as_stage_ops *ops[MAX_STAGES];
    void *cfg[MAX_STAGES];
    int n;
};

struct sim {
    int64_t units;
    double total, max, mean, balance, largest; /* cost units */
    double bytes;                  /* input bytes of all units */
    double *load;                 /* (nranks,) owned */
};

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "plan_sim: error: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* ---- the cost model: the stages' own shape() */

static void stages_add(struct stage_set *ss, const char *name)
{
    for (int i = 0; i < ss->n; i++)
        if (!strcmp(ss->ops[i]->name, name))
            return;
    const struct as_stage_ops *ops = as_stage_find(name);
    if (!ops)
        return;                    /* not a stage group */
    if (strcmp(name, "histsim") && strcmp(name, "monotonicity"))
        die("stage '%s' has no cost model in plan_sim (only histsim, monotonicity)", name);
    struct as_error err = { 0 };
    if (ss->n == MAX_STAGES || ops->configure(&ss->cfg[ss->n], NULL, &err))
        die("cannot configure stage '%s' with its defaults", name);
    ss->ops[ss->n++] = ops;
}

/* Cost (and, in *bytes, input bytes) of one unit of model m. */
static double unit_cost(const struct stage_set *ss, const struct model_shape *m, double *bytes)
{
    struct as_tensor_info ti = { .dtype = AS_DTYPE_F32, .ndim = 4, .data_offset = -1 };
    int64_t shape[4] = { m->layers, m->heads, m->seq_len, m->seq_len };
    for (int d = 3, s = 1; d >= 0; d--) {
        ti.shape[d] = shape[d];
        ti.stride[d] = s;
        s *= (int)shape[d];
    }
    const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS] = { &ti, &ti, &ti, &ti };
    double c = 0;
    *bytes = 0;
    for (int i = 0; i < ss->n; i++) {
        struct as_stage_shape sh = { 0 };
        struct as_error err = { 0 };
        if (ss->ops[i]->shape(ss->cfg[i], info, &sh, &err))
            die("stage shape() refused a model: %s", err.msg);
        c += sh.unit_cost;
        *bytes += (double)sh.unit_bytes;
    }
    return c;
}

/* LPT over the (model, layer) units of models[], as the driver plans them */
static struct sim simulate(const struct stage_set *ss, const struct model_shape *models, int n, int nranks)
{
    struct sim r = { 0 };
    for (int i = 0; i < n; i++)
        r.units += models[i].layers;
    struct as_unit_desc *u = calloc((size_t)r.units, sizeof *u);
    int *owner = calloc((size_t)r.units, sizeof *owner);
    r.load = calloc((size_t)nranks, sizeof *r.load);
    if (!u || !owner || !r.load)
        die("%s", "out of memory");
    int64_t k = 0;
    for (int i = 0; i < n; i++) {
        double b, c = unit_cost(ss, &models[i], &b);
        for (int64_t l = 0; l < models[i].layers; l++, k++) {
            u[k] = (struct as_unit_desc){ .model = i, .layer = l, .cost = c, .bytes = (int64_t)b };
            r.total += c;
            r.bytes += b;
            if (c > r.largest)
                r.largest = c;
        }
    }
    as_plan_assign(u, (size_t)r.units, nranks, owner, r.load);
    for (int q = 0; q < nranks; q++)
        if (r.load[q] > r.max)
            r.max = r.load[q];
    r.mean = r.total / nranks;
    r.balance = as_plan_balance(r.load, nranks);
    free(u);
    free(owner);
    return r;
}

/* ---- results files */

static int64_t attr_i64(hid_t obj, const char *name, const char *where)
{
    int64_t v = 0;
    hid_t a = H5Aexists(obj, name) > 0 ? H5Aopen(obj, name, H5P_DEFAULT) : -1;
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT64, &v) < 0)
        die("no integer attribute '%s'", where);
    H5Aclose(a);
    return v;
}

struct results {
    struct model_shape *models;
    int n_models;
    struct stage_set stages;
    int mpi_size;
    double busy[MAX_RANKS * 16]; /* (mpi_size,) */
};

static herr_t add_model(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    struct results *r = data;
    r->models = realloc(r->models, (size_t)(r->n_models + 1) * sizeof *r->models);
    if (!r->models)
        die("%s", "out of memory");
    struct model_shape *m = &r->models[r->n_models++];
    snprintf(m->name, sizeof m->name, "%s", name);
    hid_t mg = H5Gopen2(g, name, H5P_DEFAULT);
    m->layers = attr_i64(mg, "n_layers", name);
    m->heads = attr_i64(mg, "n_heads", name);
    m->seq_len = attr_i64(mg, "seq_len", name);
    for (int s = 0; as_stages[s]; s++)
        if (H5Lexists(mg, as_stages[s]->name, H5P_DEFAULT) > 0)
            stages_add(&r->stages, as_stages[s]->name);
    H5Gclose(mg);
    return 0;
}

static void results_read(struct results *r, const char *path)
{
    memset(r, 0, sizeof *r);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        die("cannot open results file '%s'", path);
    r->mpi_size = (int)attr_i64(f, "mpi_size", "mpi_size");
    if (r->mpi_size < 1 || r->mpi_size > (int)(sizeof r->busy / sizeof r->busy[0]))
        die("mpi_size of '%s' is out of range", path);
    hid_t d = H5Dopen2(f, "/run/rank_busy_seconds", H5P_DEFAULT);
    if (d < 0 || H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->busy) < 0)
        die("no /run/rank_busy_seconds in '%s' (a merged file has them per part only)", path);
    H5Dclose(d);
    hid_t g = H5Gopen2(f, "/models", H5P_DEFAULT);
    hsize_t idx = 0;
    if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, add_model, r) < 0)
        die("cannot list /models of '%s'", path);
    H5Gclose(g);
    H5Fclose(f);
}

static const char *fmt_time(double s, char *buf, size_t n)
{
    if (s < 120)
        snprintf(buf, n, "%.1f s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.1f min", s / 60);
    else
        snprintf(buf, n, "%.2f h", s / 3600);
    return buf;
}

/* ---- the paper sweep: 5 models x 5 seq_len x 3 datasets */

static const struct { const char *id; int64_t layers, heads; } paper_models[] = {
    { "bigscience_bloom", 70, 112 },
    { "eluzhnica_mpt-30b", 48, 64 },
    { "tiiuae_falcon-rw-7b", 36, 64 },
    { "anas-awadalla_mpt-7b", 32, 32 },
    { "bigscience_bloom-7b1", 30, 32 },
};
static const int64_t paper_seq[] = { 64, 256, 512, 1024, 2048 };
#define PAPER_DATASETS 3

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: plan_sim FIT.h5 [--ranks 1,2,4,8,64,512] [--compare RESULTS.h5...]\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *fit_path = argv[1];
    int ranks[MAX_RANKS] = { 1, 2, 4, 8, 64, 512 }, n_ranks = 6, first_compare = argc;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ranks") && i + 1 < argc) {
            n_ranks = 0;
            char *s = argv[++i], *end;
            while (*s && n_ranks < MAX_RANKS) {
                long v = strtol(s, &end, 10);
                if (end == s || v < 1 || v > 1000000)
                    die("bad --ranks list '%s'", argv[i]);
                ranks[n_ranks++] = (int)v;
                s = *end == ',' ? end + 1 : end;
            }
        } else if (!strcmp(argv[i], "--compare")) {
            first_compare = i + 1;
            break;
        } else {
            die("unknown argument '%s'", argv[i]);
        }
    }

    /* the fit: seconds per cost unit */
    struct results fit;
    results_read(&fit, fit_path);
    struct sim fs = simulate(&fit.stages, fit.models, fit.n_models, fit.mpi_size);
    double busy = 0;
    for (int q = 0; q < fit.mpi_size; q++)
        busy += fit.busy[q];
    double spc = busy / fs.total;
    printf("fit: %s: %d models, %lld units, %d rank%s, stages", fit_path, fit.n_models, (long long)fs.units,
           fit.mpi_size, fit.mpi_size == 1 ? "" : "s");
    for (int s = 0; s < fit.stages.n; s++)
        printf(" %s", fit.stages.ops[s]->name);
    printf("\n     busy %.2f s over %.4g cost units (elements touched): %.3f ns per element\n\n", busy, fs.total,
           spc * 1e9);
    free(fs.load);

    /* the paper sweep */
    int n_paper = 0;
    struct model_shape paper[PAPER_DATASETS * 5 * 5];
    for (int d = 0; d < PAPER_DATASETS; d++)
        for (size_t m = 0; m < sizeof paper_models / sizeof paper_models[0]; m++)
            for (size_t t = 0; t < sizeof paper_seq / sizeof paper_seq[0]; t++) {
                struct model_shape *p = &paper[n_paper++];
                snprintf(p->name, sizeof p->name, "d%d_%s_%lld", d, paper_models[m].id, (long long)paper_seq[t]);
                p->layers = paper_models[m].layers;
                p->heads = paper_models[m].heads;
                p->seq_len = paper_seq[t];
            }
    printf("paper sweep: %d models (5 models x seq_len 64..2048 x %d datasets), stages as the fit\n", n_paper,
           PAPER_DATASETS);
    printf("%7s %7s %12s %12s %8s %12s %12s %10s\n", "ranks", "units", "wall (max)", "mean load", "balance",
           "lower bound", "largest unit", "read GB/s");
    for (int i = 0; i < n_ranks; i++) {
        struct sim s = simulate(&fit.stages, paper, n_paper, ranks[i]);
        double bound = s.mean > s.largest ? s.mean : s.largest;
        char a[32], b[32], c[32], d[32];
        printf("%7d %7lld %12s %12s %8.3f %12s %12s %10.2f\n", ranks[i], (long long)s.units,
               fmt_time(s.max * spc, a, sizeof a), fmt_time(s.mean * spc, b, sizeof b), s.balance,
               fmt_time(bound * spc, c, sizeof c), fmt_time(s.largest * spc, d, sizeof d), s.bytes / (s.max * spc) / 1e9);
        free(s.load);
    }

    /* the measured runs next to their prediction */
    if (first_compare < argc) {
        printf("\nmeasured vs predicted (busy seconds; the same LPT plan the driver made)\n");
        printf("%-36s %5s %10s %10s %10s %10s %9s %9s\n", "file", "ranks", "pred max", "meas max", "pred mean",
               "meas mean", "pred bal", "meas bal");
        for (int i = first_compare; i < argc; i++) {
            struct results r;
            results_read(&r, argv[i]);
            struct sim s = simulate(&r.stages, r.models, r.n_models, r.mpi_size);
            double mx = 0, sum = 0;
            for (int q = 0; q < r.mpi_size; q++) {
                sum += r.busy[q];
                mx = r.busy[q] > mx ? r.busy[q] : mx;
            }
            const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
            printf("%-36s %5d %10.2f %10.2f %10.2f %10.2f %9.3f %9.3f\n", base, r.mpi_size, s.max * spc, mx,
                   s.mean * spc, sum / r.mpi_size, s.balance, mx > 0 ? sum / r.mpi_size / mx : 1.0);
            free(s.load);
            free(r.models);
        }
    }
    free(fit.models);
    return 0;
}
