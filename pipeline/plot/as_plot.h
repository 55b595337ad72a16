/* as_plot.h: paper figures from a results file (`attnstat plot`, and `run` with a figures:
 * section), drawn with PLplot's cairo drivers (pngcairo, pdfcairo, svgcairo).
 *
 * What is drawn: every field a stage lists in its ops->figures (pipeline/stage/as_stage.h), once
 * per model or across models by its shape; the paper's figures get their title, label and range
 * from the style table in as_plot.c, the others are labelled with the field name:
 *   per model    <model>_<stage>_<field>.<ext>   heatmap of a (layer, head) field: x = head,
 *                                                y = layer (0-based, origin lower left), viridis,
 *                                                labelled colour bar; similarities on [0, 1],
 *                                                other fields on one range shared by all models
 *   across models all_<stage>_<field>.<ext>      a (layer,) field against layer (1-based), one
 *                                                line per model, legend right of the plot;
 *                                                optional +-2 std band where the stage has one
 *   one matrix   <model>_qk_mean_layer<L>_head<H>.<ext>
 *                                                the input qk_mean of one (layer, head), T x T,
 *                                                key position across, query position down, the
 *                                                upper triangle masked (white)
 * Model names are made file-safe: characters other than [A-Za-z0-9._+-] become '_'.
 * Sizes: heatmaps 8 x 8 in (PNG 800 x 800 px), lines 4.5 x 3 in (PNG 900 x 600 px); PDF and SVG
 * pages have the same size in points. White background, sans-serif (fontconfig "sans").
 *
 * Reproducibility: PNG and SVG files are byte-identical for the same results file and the same
 * command (cairo numbers SVG elements per process, so an SVG drawn after other figures in one
 * process has other ids). PDF files differ only in the /CreationDate cairo writes into them.
 *
 * Results files are read serially through pipeline/results/as_results_read.h (no MPI needed).
 * Missing stages or fields are skipped. Values that are NaN or infinite, or equal to a dataset's
 * user-defined fill value (unless 0), count as not computed: grey cells in heatmaps, gaps in
 * lines. A file without the root attribute `complete` = 1 is drawn as it is, after a warning on
 * stderr. After drawing (also after a failure, for the figures made before it) the figures made
 * are recorded in the file with as_results_record_figures (root attribute `figures`, file names
 * one per line, keeping the names it already held); if that fails it is a warning on stderr, not
 * an error. Call these functions from one process (rank 0) while no one has the file open.
 * (as_plot.c: what to draw and the numbers; as_plot_draw.c: the figure kinds; as_plot_cli.c:
 * the command line.) */
#ifndef AS_PIPELINE_AS_PLOT_H
#define AS_PIPELINE_AS_PLOT_H

#include <stdint.h>

#include "as_error.h"
#include "as_util.h"

enum as_plot_format {
    AS_PLOT_PNG = 1u << 0,
    AS_PLOT_PDF = 1u << 1,
    AS_PLOT_SVG = 1u << 2,
};
#define AS_PLOT_FORMAT_COUNT 3

struct as_plot_opts {
    const char *out_dir;           /* created if missing (with parents); NULL: "." */
    unsigned formats;              /* AS_PLOT_* bitmask; 0: PNG */
    const char *models;            /* comma-separated model names to draw, or NULL for all */
    int std_band;                  /* 1: shade +-2 std around lines that have a *_std field */
};

/* Parse "png,pdf,svg" (any order, case-insensitive) into an AS_PLOT_* mask. For the CLI and the
 * config's figures: section. */
int as_plot_formats_parse(const char *list, unsigned *mask, struct as_error *err);

/* Draw every figure the results file has data for into o->out_dir and record them in the file.
 * File names (no directory) are appended to *made (may be NULL), one per line, in drawing order.
 * Errors: AS_ERR_INPUT (results file missing, not HDF5, malformed), AS_ERR_USAGE (a name in
 * o->models is not in the file), AS_ERR_IO (cannot create the directory or write a figure). */
int as_plot_results(const char *results_path, const struct as_plot_opts *o, struct as_strbuf *made,
                    struct as_error *err);

/* Draw the mean-score matrix of (layer, head) (0-based) of one model: reads the input tensor
 * qk_mean, shape (L, H, T, T), through the path or synthetic spec recorded in the model's
 * `input:qk_mean` attribute (and `input_key:qk_mean`, if any); a relative path that does not
 * exist from the current directory is tried relative to the results file's directory.
 * o->models and o->std_band are ignored. Same errors as as_plot_results, plus AS_ERR_USAGE for
 * an unknown model or a layer/head out of range. */
int as_plot_matrix(const char *results_path, const char *model, int64_t layer, int64_t head,
                   const struct as_plot_opts *o, struct as_strbuf *made, struct as_error *err);

/* For `run` with a figures: section (as_driver.c, rank 0, after the results file is closed):
 * as_plot_results with every model, no std band, formats an AS_PLOT_* mask (0: PNG); with bit
 * AS_PLOT_STYLE_PAPER in formats (config `figures: {style: paper}`), as_plot_paper instead, in
 * the notebooks' formats. */
#define AS_PLOT_STYLE_PAPER 256u   /* = AS_CONFIG_FIG_PAPER */
int as_plot_run_figures(const char *results_path, const char *dir, unsigned formats, struct as_error *err);

/* The paper's own files (`attnstat plot --style paper`), named as the analysis notebooks name them,
 * from the results file alone. <model> is the model id with '/' as '_' (bigscience_bloom; the file-
 * safe model name when the model has no model_id), <T> its sequence length, <dataset> its dataset;
 * files of a model with a dataset go in DIR/<dataset>/, the others in DIR/:
 *   attention_stats_{within_diag,within_lower,js_similarity}_<model>_<T>.png
 *        histsim heatmap, 8 x 8 in at 400 dpi (3200 x 3200 px), x = head, y = layer from the
 *        bottom, viridis on [0, 1], axes "Head" and "Layer", colour bar "Similarity" ("JS
 *        similarity" for js_similarity), no title
 *   attention_stats_summary_<model>_<T>.txt
 *        the notebook's print_stats lines, "Within-diagonal similarity | min=... max=... mean=...
 *        std=..." (population std, the numbers of the summary log)
 *   attention_heatmap_{mean,variance}_<model>_<T>_<layer>_<head>.png
 *        a matrix stored by `run` (config figures.matrices): x = key position, y = query position
 *        (row 0 at the top), upper triangle masked white, axes "Key Position" and "Query Position"
 *   <dataset>/<T>/{violation_rate,average_absolute_error,average_relative_error}.pdf (DIR/<T>/
 *        without a dataset): monotonicity per layer (numbered from 1) of every model of that
 *        dataset and T, 4.5 x 3 in, one line per model in file order, legend with the models'
 *        labels (else their names), +-2 std bands with std_band
 * formats 0 gives those formats; else every figure is drawn in each format of the mask (the
 * report uses PNG). Names made (relative to DIR) are appended to *made, and recorded in the
 * results file when record is 1. Errors as as_plot_results. */
struct as_plot_paper_opts {
    const char *out_dir;           /* created if missing; NULL: "." */
    unsigned formats;              /* AS_PLOT_* mask, 0: the notebooks' (PNG heatmaps, PDF lines) */
    int std_band;                  /* 1: +-2 std bands on the error figures */
    int record;                    /* 1: record the files in the results file's `figures` */
};
int as_plot_paper(const char *results_path, const struct as_plot_paper_opts *o, struct as_strbuf *made,
                  struct as_error *err);

/* `attnstat plot RESULTS.h5 [-o DIR] [--format pdf,png,svg] [--models a,b] [--std-band]
 *                          [--matrix MODEL LAYER HEAD]`; argv[0] is "plot".
 * Prints the paths written on stdout, one per line, and errors on stderr. Returns the exit code:
 * 0 ok, 2 usage, 4 results file missing or unreadable, 5 cannot write figures. */
int as_plot_cli(int argc, char **argv);

/* The colour a heatmap gives a value t of its range [0, 1] (viridis, 256 steps; t clamped). */
void as_plot_viridis(double t, unsigned char rgb[3]);

/* Where a heatmap's data area lies in its image, as fractions of the width (x0 < x1, from the
 * left) and of the height (y0 < y1, from the top). For tests and cropping. */
void as_plot_heatmap_area(double *x0, double *y0, double *x1, double *y1);

#endif
