/* as_report.h: tables and a shareable report from a results file alone (serial, no MPI), through
 * the results reader (as_results_read.h).
 *
 * The long table (`attnstat table RESULTS.h5`, CSV): one row per value,
 *   model,model_id,dataset,seq_len,stage,field,layer,head,value
 * (seq_len: the layout's seq_len, the folder's name, when the model has one; else the tensors' T)
 * for every field of every stage of every model that did not fail whose dimensions are (layer),
 * (layer, head) or (head) (by their dimension scales; head or layer left empty when the field has
 * none); values as the shortest %.15g to %.17g that reads back bit for bit (with a correctly rounded
 * parser: Python's float(), strtod; pandas' default parser may be a few ulp off; NaN "nan", infinities "inf", "-inf"), integer
 * fields as integers. RFC 4180 quoting, a header line, "\n" line ends: pandas.read_csv reads it
 * with no options. Models in file order, then stages, fields, layers, heads.
 *
 * The summary (`--format markdown` or `latex`): per stage, a table of per model and field the
 * min, max, mean and std (population) over every (layer, head) or layer of the field, printed
 * %.4f as the notebooks' print_stats and the summary log print them (the same numbers: the
 * log's own function, as_log_stats_rows, computes them).
 *
 * The report (`attnstat report RESULTS.h5 -o REPORT.html`): one HTML page with nothing outside
 * it (CSS inline, figures as data: URIs, no script or font from the network): provenance, the
 * config and its overrides, failed and skipped models, the summary log (the file beside the
 * results when it is there, else the stages' summaries), every figure of `plot --style paper`
 * (as PNG, drawn into a temporary folder that is removed), and the summary tables. A small
 * inline script writes each image's decoded size into the page (element #image-check), so a
 * headless browser's DOM shows that every image decodes. */
#ifndef AS_REPORT_AS_REPORT_H
#define AS_REPORT_AS_REPORT_H

#include <stdio.h>

#include "as_error.h"
#include "as_util.h"

enum as_report_format { AS_REPORT_CSV, AS_REPORT_MARKDOWN, AS_REPORT_LATEX, AS_REPORT_FORMAT_COUNT };

/* The long table (CSV) or the summary (markdown, LaTeX) of results_path to out; stage NULL: every
 * stage, else only that one (a stage no model has is AS_ERR_USAGE naming the stages there are).
 * Errors: AS_ERR_INPUT (results file missing or malformed), AS_ERR_IO (a write to out failed). */
int as_report_table(const char *results_path, const char *stage, enum as_report_format fmt, FILE *out,
                    struct as_error *err);

/* The summary as HTML tables (for the report), appended to *html. Same errors. */
int as_report_summary_html(const char *results_path, struct as_strbuf *html, struct as_error *err);

/* Write the report of results_path to out_path (replaced when it exists). Errors: AS_ERR_INPUT,
 * AS_ERR_IO (cannot write the page or draw the figures). */
int as_report_html(const char *results_path, const char *out_path, struct as_error *err);

/* `attnstat table RESULTS.h5 [--stage S] [--format csv|markdown|latex] [-o FILE]` and
 * `attnstat report RESULTS.h5 -o REPORT.html`; argv[0] is "table" / "report". Exit codes:
 * 0 ok, 2 usage, 4 results file missing or unreadable, 5 cannot write. */
int as_report_table_cli(int argc, char **argv);
int as_report_cli(int argc, char **argv);

#endif
