/* as_report_cli.c: `attnstat table` and `attnstat report` command lines (contract in as_report.h). */
#include <stdio.h>
#include <string.h>

#include "as_report.h"

static const char table_usage[] =
    "usage: attnstat table RESULTS.h5 [--stage S] [--format csv|markdown|latex] [-o FILE]\n"
    "  csv (default): one row per value: model,model_id,dataset,seq_len,stage,field,layer,head,value\n"
    "  markdown, latex: per stage, min, max, mean and std of each field per model\n";
static const char report_usage[] = "usage: attnstat report RESULTS.h5 -o REPORT.html\n"
                                   "  one self-contained HTML page: provenance, summary log, failures, every\n"
                                   "  paper figure inline, the summary tables\n";

/* "--opt VALUE" or "--opt=VALUE" at argv[*i] (long or short name): 1 and *val, 0 not this option,
 * -1 value missing. */
static int opt(int argc, char **argv, int *i, const char *lng, const char *shrt, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(lng);
    if (!strncmp(a, lng, n) && a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (strcmp(a, lng) && (!shrt || strcmp(a, shrt)))
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

int as_report_table_cli(int argc, char **argv)
{
    const char *results = NULL, *stage = NULL, *format = "csv", *output = NULL, *v;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(table_usage, stdout);
            return AS_EXIT_OK;
        } else if ((r = opt(argc, argv, &i, "--stage", NULL, &v)) != 0) {
            if (r < 0)
                return as_usage_error(table_usage, "%s", "table: --stage needs a stage name");
            stage = v;
        } else if ((r = opt(argc, argv, &i, "--format", NULL, &v)) != 0) {
            if (r < 0)
                return as_usage_error(table_usage, "%s", "table: --format needs csv, markdown or latex");
            format = v;
        } else if ((r = opt(argc, argv, &i, "--output", "-o", &v)) != 0) {
            if (r < 0 || !*v)
                return as_usage_error(table_usage, "%s", "table: -o needs a file name");
            output = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return as_usage_error(table_usage, "unknown option '%s' for table", argv[i]);
        } else if (!results) {
            results = argv[i];
        } else {
            return as_usage_error(table_usage, "table: unexpected argument '%s' (one results file)", argv[i]);
        }
    }
    if (!results)
        return as_usage_error(table_usage, "%s", "table needs one RESULTS.h5 file");
    enum as_report_format fmt;
    if (!strcmp(format, "csv"))
        fmt = AS_REPORT_CSV;
    else if (!strcmp(format, "markdown") || !strcmp(format, "md"))
        fmt = AS_REPORT_MARKDOWN;
    else if (!strcmp(format, "latex") || !strcmp(format, "tex"))
        fmt = AS_REPORT_LATEX;
    else
        return as_usage_error(table_usage, "table: unknown format '%s' (csv, markdown, latex)", format);
    FILE *out = stdout;
    if (output && !(out = fopen(output, "w"))) {
        fprintf(stderr, "attnstat: error: cannot write '%s'\n", output);
        return AS_EXIT_IO;
    }
    struct as_error err = { AS_OK, "" };
    int rc = as_report_table(results, stage, fmt, out, &err);
    if (output && fclose(out) && !rc)
        rc = as_error_set(&err, AS_ERR_IO, "cannot write '%s'", output);
    if (rc) {
        fprintf(stderr, "attnstat: error: %s\n", err.msg);
        if (output)
            remove(output);
        return as_status_exit_code(err.status);
    }
    return AS_EXIT_OK;
}

int as_report_cli(int argc, char **argv)
{
    const char *results = NULL, *output = NULL, *v;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(report_usage, stdout);
            return AS_EXIT_OK;
        } else if ((r = opt(argc, argv, &i, "--output", "-o", &v)) != 0) {
            if (r < 0 || !*v)
                return as_usage_error(report_usage, "%s", "report: -o needs a file name");
            output = v;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return as_usage_error(report_usage, "unknown option '%s' for report", argv[i]);
        } else if (!results) {
            results = argv[i];
        } else {
            return as_usage_error(report_usage, "report: unexpected argument '%s' (one results file)", argv[i]);
        }
    }
    if (!results || !output)
        return as_usage_error(report_usage, "%s", "report needs one RESULTS.h5 file and -o REPORT.html");
    struct as_error err = { AS_OK, "" };
    if (as_report_html(results, output, &err)) {
        fprintf(stderr, "attnstat: error: %s\n", err.msg);
        return as_status_exit_code(err.status);
    }
    printf("%s\n", output);
    return AS_EXIT_OK;
}
