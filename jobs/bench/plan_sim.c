/* plan_sim.c: projects attnstat's wall time for big sweeps and rank counts with the project's own
 * cost model (each stage's shape() -> unit_cost, the "elements touched" of one (model, layer) unit,
 * and unit_bytes) and its own scheduler (as_plan_assign: LPT), fitted on a measured run from files.
 *
 *   plan_sim FIT.h5 [--cold COLD.h5] [--ranks 1,2,4,8,64,512] [--nodes 1,8,64] [--ranks-per-node 64]
 *            [--node-gbps 5] [--fs-gbps 100] [--compare RESULTS.h5...]
 *
 * FIT.h5: a complete results file of a run whose inputs were page-cached files (best: one rank, no
 * oversubscription; jobs/scaling.sh's first warm run). The fit is two numbers:
 *   seconds per cost unit = sum(/run/rank_busy_seconds) / sum of the unit costs of its models
 *                           (shapes from the model attributes; stages from the groups present);
 *                           busy time from the page cache = compute (+ copying from the cache)
 *   read factor           = sum(/run/rank_bytes_read) / sum of the stages' unit_bytes (histsim
 *                           reads a layer twice when it exceeds cache_mb: about 2, else 1)
 * COLD.h5 (optional): the same config and rank count with the inputs evicted from the page cache;
 * sum(cold busy - warm busy) is this machine's storage read time: its rate is printed.
 * Then, with FIT's stages (histsim, monotonicity, patterns: the (layers, heads, T, T) inputs):
 *   - the paper sweep (75 models = 5 models x seq_len {64, 256, 512, 1024, 2048} x 3 datasets) at
 *     each --ranks count, compute only: predicted wall (max rank load), mean load, load balance
 *     (mean/max), the lower bound max(total/ranks, largest unit), the largest unit, and the read
 *     rate the file system must sustain for that wall;
 *   - the same sweep on --nodes nodes of --ranks-per-node ranks reading from a file system of
 *     --fs-gbps GB/s aggregate and --node-gbps GB/s per node: a rank reads at
 *     min(node/ranks-per-node, fs/ranks) and does not overlap reading with computing (attnstat
 *     reads a slab, then computes on it), so a unit takes cost * s/cost + bytes * factor / rate,
 *     and LPT places those times (every rank's share of the aggregate is taken for the whole run:
 *     pessimistic once ranks run out of units); "bound" is what units finer than a layer could
 *     reach: all bytes at min(fs, nodes * node) GB/s plus the compute spread evenly;
 *   - with --compare: each RESULTS file's own models at its own mpi_size, next to what was
 *     measured there (max and mean busy, balance, predicted / measured), to check the model.
 * Units are planned as the driver plans them (pipeline/plan: as_plan_pieces with split: auto,
 * as_plan_schedule): whole layers, or pieces of the layers of stages that split (histsim's heads,
 * monotonicity's row and column blocks), the two phases scheduled one after the other; "largest
 * unit" is the largest task, and balance is total / (ranks * sum over phases of the max load).
 * Busy time only: start-up, the collective prepass waits and writing the file are not modelled.
 * Built as a CMake target of attnstat (jobs/bench/CMakeLists.txt: links as_plan, as_results). */
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_dtype.h"
#include "as_error.h"
#include "as_plan.h"
#include "as_results_names.h"
#include "as_results_read.h"
#include "as_stage_registry.h"

#define MAX_STAGES 8
#define MAX_RANKS 64 /* entries of --ranks / --nodes lists */

struct model_shape {
    char name[128];
    int64_t layers, heads, seq_len;
};

struct stage_set {
    const struct as_stage_ops *ops[MAX_STAGES];
    void *cfg[MAX_STAGES];
    int n;
};

/* how long a unit takes: cost * spc + bytes * read_factor / rank_bps (rank_bps 0: compute only) */
struct timing {
    double spc, read_factor, rank_bps;
};

struct sim {
    int64_t units;
    double total, max, mean, balance, largest; /* seconds (cost units when spc = 1) */
    double bytes;                  /* input bytes of all units (unit_bytes, before the read factor) */
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
    if (strcmp(name, "histsim") && strcmp(name, "monotonicity") && strcmp(name, "patterns"))
        die("stage '%s' has no cost model in plan_sim (only histsim, monotonicity, patterns: "
            "(layers, heads, T, T) inputs)", name);
    struct as_error err = { 0 };
    if (ss->n == MAX_STAGES || ops->configure(&ss->cfg[ss->n], NULL, &err))
        die("cannot configure stage '%s' with its defaults", name);
    ss->ops[ss->n++] = ops;
}

/* The shape (cost, bytes, phases) of each stage on one layer of model m. */
static void stage_shapes(const struct stage_set *ss, const struct model_shape *m, struct as_stage_shape *out)
{
    struct as_tensor_info ti = { .dtype = AS_DTYPE_F32, .ndim = 4, .data_offset = -1 };
    int64_t shape[4] = { m->layers, m->heads, m->seq_len, m->seq_len };
    for (int d = 3, s = 1; d >= 0; d--) {
        ti.shape[d] = shape[d];
        ti.stride[d] = s;
        s *= (int)shape[d];
    }
    const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS] = { &ti, &ti, &ti, &ti };
    for (int i = 0; i < ss->n; i++) {
        struct as_error err = { 0 };
        memset(&out[i], 0, sizeof out[i]);
        if (ss->ops[i]->shape(ss->cfg[i], info, &out[i], &err))
            die("stage shape() refused a model: %s", err.msg);
    }
}

/* The driver's plan of models[] on nranks ranks (pipeline/plan: whole layers, or pieces of a
 * split stage's layer with `split: auto`, LPT per phase), each task weighted by its time under tm. */
static struct sim simulate(const struct stage_set *ss, const struct model_shape *models, int n, int nranks,
                           struct timing tm)
{
    struct sim r = { 0 };
    struct as_stage_shape *sh = calloc((size_t)n * MAX_STAGES, sizeof *sh);
    if (!sh)
        die("%s", "out of memory");
    double target[2] = { 0, 0 };
    for (int i = 0; i < n; i++) {
        r.units += models[i].layers;
        stage_shapes(ss, &models[i], sh + (size_t)i * MAX_STAGES);
        for (int k = 0; k < ss->n; k++) {
            const struct as_stage_shape *x = &sh[(size_t)i * MAX_STAGES + k];
            target[0] += (double)models[i].layers * (x->n_phases ? x->phase_cost[0] : x->unit_cost);
            target[1] += (double)models[i].layers * (x->n_phases > 1 ? x->phase_cost[1] : 0);
        }
    }
    target[0] /= 16.0 * nranks; /* as as_plan_reassign */
    target[1] /= 16.0 * nranks;
    size_t cap = 1024, nt = 0;
    struct as_unit_desc *t = malloc(cap * sizeof *t);
    if (!t)
        die("%s", "out of memory");
#define PUSH(task)                                                                                                     \
    do {                                                                                                               \
        if (nt == cap && !(t = realloc(t, (cap *= 2) * sizeof *t)))                                                    \
            die("%s", "out of memory");                                                                                \
        t[nt++] = (task);                                                                                              \
    } while (0)
    for (int i = 0; i < n; i++)
        for (int64_t l = 0; l < models[i].layers; l++) {
            struct as_unit_desc whole = { .model = i, .layer = l, .stage = -1 };
            double whole_bytes = 0;
            for (int k = 0; k < ss->n; k++) {
                const struct as_stage_shape *x = &sh[(size_t)i * MAX_STAGES + k];
                int64_t np[2];
                as_plan_pieces(x, x->unit_cost, target, nranks > 1 ? AS_SPLIT_AUTO : AS_SPLIT_OFF, np);
                r.bytes += (double)x->unit_bytes;
                if (!np[0]) {
                    whole.cost += x->unit_cost * tm.spc;
                    whole_bytes += (double)x->unit_bytes;
                    continue;
                }
                for (int f = 0; f < x->n_phases; f++)
                    for (int64_t b = 0; b < np[f]; b++) {
                        int64_t p0 = b * x->parts[f] / np[f], p1 = (b + 1) * x->parts[f] / np[f];
                        double share = (double)(p1 - p0) / (double)x->parts[f], bytes = f ? 0 : x->unit_bytes * share;
                        double sec = x->phase_cost[f] * share * tm.spc +
                                     (tm.rank_bps > 0 ? bytes * tm.read_factor / tm.rank_bps : 0);
                        PUSH(((struct as_unit_desc){ .model = i, .layer = l, .cost = sec, .bytes = (int64_t)bytes,
                                                     .stage = k, .phase = f, .part0 = p0, .part1 = p1 }));
                    }
            }
            if (whole.cost > 0 || whole_bytes > 0) {
                whole.cost += tm.rank_bps > 0 ? whole_bytes * tm.read_factor / tm.rank_bps : 0;
                whole.bytes = (int64_t)whole_bytes;
                PUSH(whole);
            }
        }
#undef PUSH
    int *owner = calloc(nt + 1, sizeof *owner);
    r.load = calloc((size_t)nranks, sizeof *r.load);
    if (!owner || !r.load)
        die("%s", "out of memory");
    for (size_t k = 0; k < nt; k++) {
        r.total += t[k].cost;
        if (t[k].cost > r.largest)
            r.largest = t[k].cost;
    }
    r.balance = as_plan_schedule(t, nt, nranks, owner, r.load);
    r.mean = r.total / nranks;
    r.max = r.balance > 0 ? r.mean / r.balance : 0; /* the predicted wall: sum over phases of the max load */
    free(t);
    free(owner);
    free(sh);
    return r;
}

/* ---- results files: the reader (as_results_read.h) for models, shapes and stages; the /run
 * datasets have no reader function yet, so they are read with HDF5 under the names of
 * as_results_names.h */

struct results {
    struct model_shape *models;
    int n_models;
    struct stage_set stages;
    int mpi_size;
    double busy[MAX_RANKS * 64];  /* (mpi_size,) /run/rank_busy_seconds */
    double bytes[MAX_RANKS * 64]; /* (mpi_size,) /run/rank_bytes_read */
};

static void run_dataset(const char *path, const char *name, double *v, int n)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f < 0 ? -1 : H5Dopen2(f, name, H5P_DEFAULT);
    hid_t sp = d < 0 ? -1 : H5Dget_space(d);
    if (sp < 0 || H5Sget_simple_extent_npoints(sp) != n ||
        H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        die("no %s of %d values in '%s' (a merged file has them per part only)", name, n, path);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
}

static void results_read(struct results *r, const char *path)
{
    memset(r, 0, sizeof *r);
    struct as_results_file *rf;
    struct as_error err = { 0 };
    struct as_results_list models = AS_RESULTS_LIST_INIT;
    int64_t size = 0;
    if (as_results_open(path, &rf, &err))
        die("%s", err.msg);
    if (as_results_attr_i64(rf, NULL, AS_RESULTS_ATTR_MPI_SIZE, &size, &err) != 1)
        die("'%s' has no attribute " AS_RESULTS_ATTR_MPI_SIZE, path);
    if (size < 1 || size > (int64_t)(sizeof r->busy / sizeof r->busy[0]))
        die("mpi_size of '%s' is out of range", path);
    r->mpi_size = (int)size;
    if (as_results_models(rf, &models, &err))
        die("%s", err.msg);
    r->models = calloc((size_t)models.n + 1, sizeof *r->models);
    if (!r->models)
        die("%s", "out of memory");
    for (int i = 0; i < models.n; i++) {
        struct model_shape *m = &r->models[r->n_models++];
        struct as_results_model_info mi;
        struct as_results_list st = AS_RESULTS_LIST_INIT;
        if (as_results_model_info(rf, models.v[i], &mi, &err) || as_results_stages(rf, models.v[i], &st, &err))
            die("%s", err.msg);
        snprintf(m->name, sizeof m->name, "%s", models.v[i]);
        m->layers = mi.n_layers;
        m->heads = mi.n_heads;
        m->seq_len = mi.seq_len;
        for (int s = 0; s < st.n; s++)
            stages_add(&r->stages, st.v[s]);
        as_results_list_release(&st);
    }
    as_results_list_release(&models);
    as_results_close(rf);
    run_dataset(path, "/" AS_RESULTS_GROUP_RUN "/" AS_RESULTS_DSET_RANK_BUSY, r->busy, r->mpi_size);
    run_dataset(path, "/" AS_RESULTS_GROUP_RUN "/" AS_RESULTS_DSET_RANK_BYTES, r->bytes, r->mpi_size);
}

static double sum(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s;
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

static int parse_list(const char *s0, int *v)
{
    int n = 0;
    const char *s = s0;
    char *end;
    while (*s && n < MAX_RANKS) {
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > 1000000 || (*end && *end != ','))
            die("bad list '%s'", s0);
        v[n++] = (int)x;
        s = *end == ',' ? end + 1 : end;
    }
    if (!n)
        die("empty list '%s'", s0);
    return n;
}

static double positive(const char *opt, const char *s)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !(x > 0))
        die("%s: '%s' is not a positive number", opt, s);
    return x;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: plan_sim FIT.h5 [--cold COLD.h5] [--ranks 1,2,4,8,64,512] [--nodes 1,8,64]\n"
                        "                [--ranks-per-node 64] [--node-gbps 5] [--fs-gbps 100] [--compare RESULTS.h5...]\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *fit_path = argv[1], *cold_path = NULL;
    int ranks[MAX_RANKS] = { 1, 2, 4, 8, 64, 512 }, n_ranks = 6, first_compare = argc;
    int nodes[MAX_RANKS] = { 1, 8, 64 }, n_nodes = 3, rpn = 64;
    double node_gbps = 5, fs_gbps = 100;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--compare")) {
            first_compare = i + 1;
            break;
        }
        if (!v)
            die("%s needs a value", a);
        if (!strcmp(a, "--ranks"))
            n_ranks = parse_list(v, ranks);
        else if (!strcmp(a, "--nodes"))
            n_nodes = parse_list(v, nodes);
        else if (!strcmp(a, "--ranks-per-node"))
            rpn = (int)positive(a, v);
        else if (!strcmp(a, "--node-gbps"))
            node_gbps = positive(a, v);
        else if (!strcmp(a, "--fs-gbps"))
            fs_gbps = positive(a, v);
        else if (!strcmp(a, "--cold"))
            cold_path = v;
        else
            die("unknown argument '%s'", a);
        i++;
    }

    /* the fit: seconds per cost unit and bytes read per unit byte */
    struct results fit;
    results_read(&fit, fit_path);
    if (!fit.stages.n)
        die("'%s' has no histsim, monotonicity or patterns results to fit on", fit_path);
    struct sim fs = simulate(&fit.stages, fit.models, fit.n_models, fit.mpi_size, (struct timing){ 1, 1, 0 });
    double busy = sum(fit.busy, fit.mpi_size), read = sum(fit.bytes, fit.mpi_size);
    struct timing tm = { busy / fs.total, fs.bytes > 0 ? read / fs.bytes : 1, 0 };
    printf("fit: %s: %d models, %lld units, %d rank%s, stages", fit_path, fit.n_models, (long long)fs.units,
           fit.mpi_size, fit.mpi_size == 1 ? "" : "s");
    for (int s = 0; s < fit.stages.n; s++)
        printf(" %s", fit.stages.ops[s]->name);
    printf("\n     busy %.2f s over %.4g cost units (elements touched): %.3f ns per element\n", busy, fs.total,
           tm.spc * 1e9);
    printf("     read %.4g GB for %.4g GB of unit inputs: read factor %.2f\n", read / 1e9, fs.bytes / 1e9,
           tm.read_factor);
    free(fs.load);
    if (cold_path) {
        struct results cold;
        results_read(&cold, cold_path);
        if (cold.mpi_size != fit.mpi_size || cold.n_models != fit.n_models)
            die("--cold '%s' is not a run of the fit's models at its rank count", cold_path);
        double wait = 0;
        for (int q = 0; q < cold.mpi_size; q++)
            wait += cold.busy[q] > fit.busy[q] ? cold.busy[q] - fit.busy[q] : 0;
        double cb = sum(cold.bytes, cold.mpi_size);
        printf("     cold cache (%s): busy %.2f s = %.2f s compute + %.2f s waiting for storage: %.0f MB/s per rank "
               "(this machine's disk)\n",
               cold_path, sum(cold.busy, cold.mpi_size), busy, wait, wait > 0 ? cb / wait / 1e6 : NAN);
        free(cold.models);
    }
    printf("\n");

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
    {
        struct sim s = simulate(&fit.stages, paper, n_paper, 1, tm);
        printf("paper sweep: %d models (5 models x seq_len 64..2048 x %d datasets), stages as the fit: %lld units, "
               "%.3g TB of input tensors, %.3g TB read (x %.2f)\n",
               n_paper, PAPER_DATASETS, (long long)s.units, s.bytes / 1e12, s.bytes * tm.read_factor / 1e12,
               tm.read_factor);
        free(s.load);
    }
    printf("compute only (reads as fast as from this machine's page cache):\n");
    printf("%7s %7s %12s %12s %8s %12s %12s %10s\n", "ranks", "units", "wall (max)", "mean load", "balance",
           "lower bound", "largest unit", "read GB/s");
    for (int i = 0; i < n_ranks; i++) {
        struct sim s = simulate(&fit.stages, paper, n_paper, ranks[i], tm);
        double bound = s.mean > s.largest ? s.mean : s.largest;
        char a[32], b[32], c[32], d[32];
        printf("%7d %7lld %12s %12s %8.3f %12s %12s %10.2f\n", ranks[i], (long long)s.units,
               fmt_time(s.max, a, sizeof a), fmt_time(s.mean, b, sizeof b), s.balance, fmt_time(bound, c, sizeof c),
               fmt_time(s.largest, d, sizeof d), s.bytes * tm.read_factor / s.max / 1e9);
        free(s.load);
    }

    /* on nodes, from a file system of a given bandwidth */
    printf("\non nodes of %d ranks; file system assumed: %.3g GB/s aggregate, %.3g GB/s per node; a rank reads at "
           "min(node/%d, fs/ranks), not overlapped with computing\n", rpn, fs_gbps, node_gbps, rpn);
    printf("| nodes | ranks | units | rank read MB/s | compute-only wall | wall with reads | read share | balance | "
           "largest unit | FS GB/s used | bound: reads at full FS rate |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_nodes; i++) {
        int nr = nodes[i] * rpn;
        double per_node = node_gbps * 1e9 / rpn, per_fs = fs_gbps * 1e9 / nr;
        struct timing io = tm;
        io.rank_bps = per_node < per_fs ? per_node : per_fs;
        struct sim c = simulate(&fit.stages, paper, n_paper, nr, tm);
        struct sim s = simulate(&fit.stages, paper, n_paper, nr, io);
        char a[32], b[32], d[32], e[32];
        double rd = s.bytes * tm.read_factor / io.rank_bps; /* all ranks' read seconds */
        /* what units finer than a layer could reach: every byte at min(fs, nodes * node), plus the
         * compute spread evenly */
        double agg = fs_gbps < nodes[i] * node_gbps ? fs_gbps : nodes[i] * node_gbps;
        double bound = s.bytes * tm.read_factor / (agg * 1e9) + c.total / nr;
        printf("| %d | %d | %lld | %.0f | %s | %s | %.0f%% | %.3f | %s | %.1f | %s |\n", nodes[i], nr,
               (long long)s.units, io.rank_bps / 1e6, fmt_time(c.max, a, sizeof a), fmt_time(s.max, b, sizeof b),
               100 * rd / s.total, s.balance, fmt_time(s.largest, d, sizeof d),
               s.bytes * tm.read_factor / s.max / 1e9, fmt_time(bound, e, sizeof e));
        free(c.load);
        free(s.load);
    }

    /* the measured runs next to their prediction */
    if (first_compare < argc) {
        printf("\nmeasured vs predicted (busy seconds; the same LPT plan the driver made; compute only)\n");
        printf("%-36s %5s %6s %10s %10s %10s %10s %9s %9s %10s\n", "file", "ranks", "units", "pred max", "meas max",
               "pred mean", "meas mean", "pred bal", "meas bal", "pred/meas");
        for (int i = first_compare; i < argc; i++) {
            struct results r;
            results_read(&r, argv[i]);
            struct sim s = simulate(&r.stages, r.models, r.n_models, r.mpi_size, tm);
            double mx = 0, tot = sum(r.busy, r.mpi_size);
            for (int q = 0; q < r.mpi_size; q++)
                mx = r.busy[q] > mx ? r.busy[q] : mx;
            const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
            printf("%-36s %5d %6lld %10.2f %10.2f %10.2f %10.2f %9.3f %9.3f %10.3f\n", base, r.mpi_size,
                   (long long)s.units, s.max, mx, s.mean, tot / r.mpi_size, s.balance,
                   mx > 0 ? tot / r.mpi_size / mx : 1.0, mx > 0 ? s.max / mx : NAN);
            free(s.load);
            free(r.models);
        }
    }
    free(fit.models);
    return 0;
}
