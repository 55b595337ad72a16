/* as_main.c: command-line parsing and dispatch. main() stays in attnstat_main.c. */
#define _GNU_SOURCE
#include <malloc.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_config.h"
#include "as_driver.h"
#include "as_merge.h"
#include "as_mpi.h"
#include "as_plot.h"
#include "as_reader.h"
#include "as_report.h"
#include "as_results_read.h"
#include "as_run.h"
#include "as_stage.h"
#include "as_util.h"
#include "as_version.h"

static const char usage[] =
    "usage: attnstat run CONFIG [-o OUTPUT] [--models a,b] [--resume] [--quiet] [--set KEY=VALUE]...\n"
    "       attnstat validate CONFIG [--ranks N] [--list-models | --json] [--set KEY=VALUE]...\n"
    "       attnstat inspect FILE...\n"
    "       attnstat summary RESULTS.h5\n"
    "       attnstat merge OUT.h5 PART.h5...\n"
    "       attnstat plot RESULTS.h5 [-o DIR] [--format png,pdf,svg] [--models a,b] [--matrix MODEL LAYER HEAD]\n"
    "       attnstat plot RESULTS.h5 --style paper [-o DIR] [--std-band]\n"
    "       attnstat table RESULTS.h5 [--stage S] [--format csv|markdown|latex] [-o FILE]\n"
    "       attnstat report RESULTS.h5 -o REPORT.html\n"
    "       attnstat --help | --version\n"
    "\n"
    "Computes statistics of transformer attention (histsim, monotonicity, jacobian, patterns, activations)\n"
    "for many models at once; run it under mpirun/srun to spread (model, layer) units over ranks.\n"
    "Exit codes: 0 ok, 2 usage, 3 config, 4 input data, 5 I/O, 6 internal, 75 stopped (resumable).\n";

static void report(const struct as_error *err)
{
    fprintf(stderr, "attnstat: error: %s\n", err->msg);
}

static void on_signal(int sig)
{
    (void)sig;
    as_stop_requested = 1;
}

static char *join_argv(int argc, char **argv)
{
    struct as_strbuf sb = AS_STRBUF_INIT;
    for (int i = 0; i < argc; i++)
        as_strbuf_addf(&sb, "%s%s", i ? " " : "", argv[i]);
    return sb.buf;
}

#define AS_MAX_SETS 256             /* --set options of one command */

/* `--set KEY=VALUE` (or --set=KEY=VALUE) at argv[*i]: appended to sets (AS_MAX_SETS entries).
 * 1 taken, 0 not a --set, -1 usage error (reported). */
static int take_set(int argc, char **argv, int *i, const char **sets, int *n_sets)
{
    const char *a = argv[*i];
    if (!strncmp(a, "--set=", 6) && *n_sets < AS_MAX_SETS) {
        sets[(*n_sets)++] = a + 6;
        return 1;
    }
    if (strcmp(a, "--set"))
        return 0;
    if (*n_sets == AS_MAX_SETS) {
        as_usage_error(usage, "more than %d --set options", AS_MAX_SETS);
        return -1;
    }
    if (++*i == argc) {
        as_usage_error(usage, "%s", "--set needs KEY=VALUE");
        return -1;
    }
    sets[(*n_sets)++] = argv[*i];
    return 1;
}

static int cmd_run(int argc, char **argv)
{
    const char *config = NULL, *output = NULL, *models = NULL;
    const char *sets[AS_MAX_SETS];
    int quiet = 0, resume = 0, n_sets = 0, t;
    for (int i = 2; i < argc; i++) {
        if ((t = take_set(argc, argv, &i, sets, &n_sets)) != 0) {
            if (t < 0)
                return AS_EXIT_USAGE;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (++i == argc)
                return as_usage_error(usage, "%s needs a file name", argv[i - 1]);
            output = argv[i];
        } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--models")) {
            if (++i == argc)
                return as_usage_error(usage, "%s needs a comma-separated list of model names", argv[i - 1]);
            models = argv[i];
        } else if (!strcmp(argv[i], "--resume")) {
            resume = 1;
        } else if (argv[i][0] == '-') {
            return as_usage_error(usage, "unknown option '%s' for run", argv[i]);
        } else if (!config) {
            config = argv[i];
        } else {
            return as_usage_error(usage, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!config)
        return as_usage_error(usage, "%s", "run needs a CONFIG file");
    /* per-head and per-layer buffers are freed and allocated again all run long: let malloc
     * reuse them instead of mapping fresh zeroed pages each time (peak memory is unchanged) */
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    AS_MPI(MPI_Init(&argc, &argv));
    as_mpi_init_all();
    int rank = as_mpi_rank(MPI_COMM_WORLD), size = as_mpi_size(MPI_COMM_WORLD);
    if (rank != 0) /* config warnings (deprecated keys) once per run */
        as_stage_set_warn(NULL, NULL);
    /* srun without the MPI plugin starts N separate 1-rank jobs that would all write the same file */
    const char *expect = getenv("ATTNSTAT_EXPECT_NP");
    if (expect && *expect && atoi(expect) != size) {
        if (rank == 0)
            fprintf(stderr, "attnstat: error: started as %d-rank job(s) but ATTNSTAT_EXPECT_NP=%s: srun needs "
                            "--mpi=pmix (or use mpirun) so that all tasks form one MPI job\n", size, expect);
        AS_MPI(MPI_Finalize());
        return AS_EXIT_USAGE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN); /* a file size limit: write() fails with EFBIG, reported, instead of a kill */
    struct as_error err = { 0 };
    struct as_config cfg;
    int rc = as_config_load_set(&cfg, config, sets, n_sets, &err);
    if (!rc && models && (rc = as_config_select_models(&cfg, models, &err)))
        as_config_release(&cfg);
    if (!rc && output)
        as_config_set_output(&cfg, output);
    int code;
    if (rc) {
        if (rank == 0)
            report(&err);
        code = as_status_exit_code(err.status);
    } else {
        char *cmdline = join_argv(argc, argv);
        struct as_run_opts opts = { cmdline, !quiet, resume };
        rc = as_run_all(MPI_COMM_WORLD, &cfg, &opts, &err);
        free(cmdline);
        if (rank == 0) {
            if (rc)
                report(&err);
            else if (!quiet)
                fprintf(stderr, "attnstat: results in %s, summary log in %s%s%s\n", cfg.output, cfg.log,
                        cfg.figures ? ", figures in " : "", cfg.figures ? cfg.figures_dir : "");
        }
        code = rc ? as_status_exit_code(err.status) : 0;
        as_config_release(&cfg);
    }
    /* the run is over: a SIGTERM from mpirun tearing the job down must end the process, not ask
     * it to stop gracefully */
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    AS_MPI(MPI_Finalize());
    return code;
}

static int cmd_validate(int argc, char **argv)
{
    const char *config = NULL;
    const char *sets[AS_MAX_SETS];
    long ranks = 1;
    int list_models = 0, json = 0, n_sets = 0, t;
    for (int i = 2; i < argc; i++) {
        if ((t = take_set(argc, argv, &i, sets, &n_sets)) != 0) {
            if (t < 0)
                return AS_EXIT_USAGE;
        } else if (!strcmp(argv[i], "--list-models")) {
            list_models = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--ranks") || !strcmp(argv[i], "-n")) {
            if (++i == argc)
                return as_usage_error(usage, "%s needs a number", argv[i - 1]);
            char *end;
            ranks = strtol(argv[i], &end, 10);
            if (*end || ranks < 1 || ranks > 1000000)
                return as_usage_error(usage, "bad rank count '%s'", argv[i]);
        } else if (argv[i][0] == '-') {
            return as_usage_error(usage, "unknown option '%s' for validate", argv[i]);
        } else if (!config) {
            config = argv[i];
        } else {
            return as_usage_error(usage, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!config)
        return as_usage_error(usage, "%s", "validate needs a CONFIG file");
    struct as_error err = { 0 };
    struct as_config cfg;
    int rc = as_config_load_set(&cfg, config, sets, n_sets, &err);
    if (list_models) { /* one name per line, for scripts (jobs/submit-array.sh) */
        if (rc) {
            report(&err);
            return as_status_exit_code(err.status);
        }
        for (int i = 0; i < cfg.n_models; i++)
            printf("%s\n", cfg.models[i].name);
        as_config_release(&cfg);
        return 0;
    }
    if (rc || as_validate(&cfg, (int)ranks, json, stdout, &err)) {
        report(&err);
        if (cfg.doc.root)
            as_config_release(&cfg);
        return as_status_exit_code(err.status);
    }
    as_config_release(&cfg);
    if (!json)
        printf("config is valid\n");
    return 0;
}

static void print_tensor(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    (void)ctx;
    printf("  %-32s %-8s shape (", key && *key ? key : "(root)",
           (unsigned)ti->dtype < AS_DTYPE_COUNT ? as_dtype_traits[ti->dtype].name : "-");
    for (int d = 0; d < ti->ndim; d++)
        printf("%s%lld", d ? ", " : "", (long long)ti->shape[d]);
    printf(") strides (");
    for (int d = 0; d < ti->ndim; d++)
        printf("%s%lld", d ? ", " : "", (long long)ti->stride[d]);
    printf(")");
    if (ti->data_offset >= 0)
        printf(" bytes [%lld, +%lld)", (long long)ti->data_offset, (long long)ti->nbytes);
    if (extra && *extra)
        printf(" %s", extra);
    printf("\n");
}

static int cmd_inspect(int argc, char **argv)
{
    if (argc < 3)
        return as_usage_error(usage, "%s", "inspect needs at least one FILE");
    int worst = 0;
    for (int i = 2; i < argc; i++) {
        struct as_error err = { 0 };
        const struct as_reader_ops *ops = as_reader_for_path(argv[i], &err);
        if (ops && ops->list) {
            printf("%s (%s)\n", argv[i], ops->name);
            if (ops->list(argv[i], print_tensor, NULL, &err) == 0)
                continue;
        } else if (ops) {
            as_error_set(&err, AS_ERR_INPUT, "'%s': the %s reader cannot list tensors", argv[i], ops->name);
        }
        report(&err);
        int code = as_status_exit_code(err.status);
        worst = code > worst ? code : worst;
    }
    return worst;
}

static int cmd_summary(int argc, char **argv)
{
    if (argc != 3)
        return as_usage_error(usage, "%s", "summary needs one RESULTS.h5 file");
    struct as_results_file *rf;
    struct as_error err = { 0 };
    if (as_results_open(argv[2], &rf, &err)) {
        fprintf(stderr, "attnstat: error: cannot open results file '%s'\n", argv[2]);
        return AS_EXIT_INPUT;
    }
    int complete = as_results_is_complete(rf);
    /* provenance, one "<name> <value>" line each, then the summary-log text of files that hold one */
    static const char *const keys[] = { AS_RESULTS_ATTR_TOOL_VERSION, AS_RESULTS_ATTR_GIT_COMMIT,
                                        AS_RESULTS_ATTR_CONFIG_PATH, AS_RESULTS_ATTR_COMMAND_LINE,
                                        AS_RESULTS_ATTR_START_TIME, AS_RESULTS_ATTR_END_TIME,
                                        AS_RESULTS_ATTR_UNITS_COMPUTED, AS_RESULTS_ATTR_UNITS_REUSED,
                                        AS_RESULTS_ATTR_SUMMARY, NULL };
    char *failed = NULL;
    if (as_results_attr_str(rf, NULL, AS_RESULTS_ATTR_FAILED_MODELS, &failed, NULL) <= 0 || !failed[0]) {
        free(failed);
        failed = NULL;
    }
    printf("%s: %s\n", argv[2], complete ? "complete" : failed ? "NOT complete: models failed (on_error: skip)"
                                                            : "NOT complete: some units are missing");
    for (const char *m = failed; m && *m;) { /* one name per line, and why */
        size_t n = strcspn(m, "\n");
        char name[AS_NAME_MAX];
        snprintf(name, sizeof name, "%.*s", (int)n, m);
        struct as_results_obj at = { name, NULL, NULL };
        char *why = NULL;
        as_results_attr_str(rf, &at, AS_RESULTS_ATTR_ERROR, &why, NULL);
        printf("failed model %s: %s\n", name, why ? why : "");
        free(why);
        m += n + (m[n] == '\n');
    }
    free(failed);
    for (int k = 0; keys[k]; k++) {
        char *s = NULL;
        int64_t v;
        if (as_results_attr_str(rf, NULL, keys[k], &s, NULL) <= 0) {
            if (as_results_attr_i64(rf, NULL, keys[k], &v, NULL) == 1)
                printf("%-13s %lld\n", keys[k], (long long)v);
            continue;
        }
        if (!strcmp(keys[k], AS_RESULTS_ATTR_SUMMARY))
            printf("\n%s", s);
        else
            printf("%-13s %s\n", keys[k], s);
        free(s);
    }
    as_results_close(rf);
    return complete ? 0 : AS_EXIT_INPUT;
}

int as_main(int argc, char **argv)
{
    if (argc < 2)
        return as_usage_error(usage, "%s", "missing command");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("attnstat %s (%s)\n", as_version(), as_git_describe());
        return 0;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc, argv);
    if (!strcmp(cmd, "validate"))
        return cmd_validate(argc, argv);
    if (!strcmp(cmd, "inspect"))
        return cmd_inspect(argc, argv);
    if (!strcmp(cmd, "summary"))
        return cmd_summary(argc, argv);
    if (!strcmp(cmd, "plot"))
        return as_plot_cli(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge"))
        return as_merge_cli(argc - 1, argv + 1);
    if (!strcmp(cmd, "table"))
        return as_report_table_cli(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return as_report_cli(argc - 1, argv + 1);
    return as_usage_error(usage, "unknown command '%s'", cmd);
}
