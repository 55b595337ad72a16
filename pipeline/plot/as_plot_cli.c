/* as_plot_cli.c: `attnstat plot`'s command line (contract in as_plot.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_plot.h"

/* The usage lines, shown after a command-line mistake, and the help (--help) that follows them. */
#define PLOT_USAGE_LINES                                                                                   \
    "usage: attnstat plot RESULTS.h5 [-o DIR] [--format png,pdf,svg] [--models a,b] [--std-band]\n"        \
    "       attnstat plot RESULTS.h5 --matrix MODEL LAYER HEAD [-o DIR] [--format ...]\n"     \
    "       attnstat plot RESULTS.h5 --style paper [-o DIR] [--std-band] [--format ...]\n"

static const char plot_usage[] = PLOT_USAGE_LINES "(see 'attnstat plot --help')\n";

static const char plot_help[] =
    PLOT_USAGE_LINES
    "\n"
    "  -o, --out DIR        write figures to DIR (created if missing; default: .)\n"
    "  --format LIST        png, pdf and/or svg, comma-separated (default: png)\n"
    "  --models LIST        only these models (default: all in the file)\n"
    "  --std-band           shade +-2 std around the monotonicity error lines\n"
    "  --matrix M L H       the input mean-score matrix of model M, layer L, head H (0-based)\n"
    "  --style paper        the analysis notebooks' files: attention_stats_*.png/.txt per model,\n"
    "                       <dataset>/<T>/{violation_rate,average_*_error}.pdf, attention_heatmap_*\n"
    "                       of the matrices the run stored (formats: the notebooks', or --format)\n";

static int parse_index(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

/* "--opt VALUE" or "--opt=VALUE": the value, advancing *i; NULL if none. */
static const char *opt_value(int argc, char **argv, int *i, const char *lng, const char *shrt)
{
    const char *a = argv[*i];
    size_t n = strlen(lng);
    if (!strncmp(a, lng, n) && a[n] == '=')
        return a + n + 1;
    if (!strcmp(a, lng) || (shrt && !strcmp(a, shrt))) {
        if (*i + 1 >= argc)
            return NULL;
        return argv[++*i];
    }
    return NULL;
}

static int is_opt(const char *a, const char *lng, const char *shrt)
{
    size_t n = strlen(lng);
    return !strcmp(a, lng) || (!strncmp(a, lng, n) && a[n] == '=') || (shrt && !strcmp(a, shrt));
}

int as_plot_cli(int argc, char **argv)
{
    struct as_plot_opts o = { ".", 0, NULL, 0 };
    const char *results = NULL, *mmodel = NULL;
    int64_t mlayer = -1, mhead = -1;
    int paper = 0;
    struct as_error err = { AS_OK, "" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(plot_help, stdout);
            return AS_EXIT_OK;
        } else if (is_opt(a, "--out", "-o")) {
            if (!(o.out_dir = opt_value(argc, argv, &i, "--out", "-o")) || !*o.out_dir)
                return as_usage_error(plot_usage, "plot: option '%s' needs a directory", a);
        } else if (is_opt(a, "--format", NULL)) {
            const char *v = opt_value(argc, argv, &i, "--format", NULL);
            if (!v)
                return as_usage_error(plot_usage, "plot: option '%s' needs a list of formats", a);
            if (as_plot_formats_parse(v, &o.formats, &err))
                return as_usage_error(plot_usage, "plot: %s", err.msg);
        } else if (is_opt(a, "--models", NULL)) {
            if (!(o.models = opt_value(argc, argv, &i, "--models", NULL)) || !*o.models)
                return as_usage_error(plot_usage, "plot: option '%s' needs a list of model names", a);
        } else if (is_opt(a, "--style", NULL)) {
            const char *v = opt_value(argc, argv, &i, "--style", NULL);
            if (!v || (strcmp(v, "paper") && strcmp(v, "generic")))
                return as_usage_error(plot_usage, "plot: --style takes paper or generic, not '%s'", v ? v : "");
            paper = !strcmp(v, "paper");
        } else if (!strcmp(a, "--std-band")) {
            o.std_band = 1;
        } else if (!strcmp(a, "--matrix")) {
            if (i + 3 >= argc)
                return as_usage_error(plot_usage, "plot: %s needs MODEL LAYER HEAD", a);
            mmodel = argv[i + 1];
            if (parse_index(argv[i + 2], &mlayer))
                return as_usage_error(plot_usage, "plot: --matrix: layer '%s' is not a non-negative integer",
                                      argv[i + 2]);
            if (parse_index(argv[i + 3], &mhead))
                return as_usage_error(plot_usage, "plot: --matrix: head '%s' is not a non-negative integer",
                                      argv[i + 3]);
            i += 3;
        } else if (a[0] == '-' && a[1]) {
            return as_usage_error(plot_usage, "unknown option '%s' for plot", a);
        } else if (!results) {
            results = a;
        } else {
            return as_usage_error(plot_usage, "plot: unexpected argument '%s' (one results file)", a);
        }
    }
    if (!results)
        return as_usage_error(plot_usage, "%s", "plot needs one RESULTS.h5 file");
    if (paper && (mmodel || o.models))
        return as_usage_error(plot_usage, "%s", "plot: --style paper draws every model: no --matrix or --models");
    struct as_strbuf made = AS_STRBUF_INIT;
    struct as_plot_paper_opts po = { o.out_dir, o.formats, o.std_band, 1 };
    int rc = paper ? as_plot_paper(results, &po, &made, &err)
             : mmodel ? as_plot_matrix(results, mmodel, mlayer, mhead, &o, &made, &err)
                      : as_plot_results(results, &o, &made, &err);
    for (const char *p = as_strbuf_str(&made); *p;) {
        const char *e = strchr(p, '\n');
        int len = e ? (int)(e - p) : (int)strlen(p);
        printf("%s/%.*s\n", o.out_dir, len, p);
        if (!e)
            break;
        p = e + 1;
    }
    size_t n_made = made.len;
    as_strbuf_release(&made);
    if (rc) {
        fprintf(stderr, "attnstat: error: %s\n", err.msg);
        return as_status_exit_code(err.status);
    }
    if (!n_made && !mmodel)
        fprintf(stderr, "attnstat: warning: '%s' has nothing to draw\n", results);
    return AS_EXIT_OK;
}
