/* as_plot_impl.h: what the files of pipeline/plot/ share, and nothing outside it uses: the figure
 * kinds drawn by as_plot_draw.c (heatmaps, matrices, lines) for the command in as_plot.c. */
#ifndef AS_PLOT_AS_PLOT_IMPL_H
#define AS_PLOT_AS_PLOT_IMPL_H

#include <stdint.h>

#include "as_error.h"
#include "as_plot.h"
#include "as_util.h"

/* Page shapes: SQUARE 8 x 8 in (heatmaps, matrices), WIDE 4.5 x 3 in (lines), PAPER_SQUARE the
 * notebooks' 8 x 8 in heatmaps (PNG at 400 dpi, 20 pt ticks, 25 pt labels). */
enum as_plot_shape { AS_PLOT_SHAPE_SQUARE, AS_PLOT_SHAPE_WIDE, AS_PLOT_SHAPE_PAPER_SQUARE, AS_PLOT_SHAPE_COUNT };

/* Line colours (matplotlib's tab10), cycled by a model's position in the results file. */
#define AS_PLOT_MODEL_COLOURS 10

/* A heatmap or matrix. Every pointer is borrowed for the drawing. */
struct as_plot_heatmap {
    const char *title, *subtitle, *xlabel, *ylabel, *cbar_label; /* subtitle may be NULL */
    const double *v;               /* (rows, cols) C order, NaN = no data */
    int64_t rows, cols;
    double lo, hi;                 /* colour range */
    int matrix;                    /* 1: row 0 at the top, NaN cells white (masked) */
    enum as_plot_shape shape;
};

/* A T x T matrix (C order) for a heatmap with the upper triangle masked: entries above the
 * diagonal and non-finite ones become NaN (drawn as masked); *lo, *hi the range of the others
 * ([0, 1] when none is left). */
void as_plot_mask_upper(double *v, int64_t T, double *lo, double *hi);

/* One model's line in a lines figure. Borrowed for the drawing. */
struct as_plot_line {
    const char *name;              /* legend text */
    int color;                     /* 0 .. AS_PLOT_MODEL_COLOURS - 1 */
    const double *y;               /* (n,) value per layer, NaN = not computed (a gap) */
    const double *sd;              /* (n,) std for the +-2 std band, or NULL */
    int64_t n;                     /* layers; x runs 1..n */
};

/* Per-layer lines of several models. */
struct as_plot_lines {
    const char *title, *ylabel;
    const struct as_plot_line *v;  /* n lines, legend in this order */
    int n;
    int band;                      /* 1: shade +-2 sd where a line has sd */
    enum as_plot_shape shape;
    int no_markers;                /* 1: lines only (the notebooks' style) */
};

/* Draw on the current page; arg is a const struct as_plot_heatmap * / as_plot_lines *. */
void as_plot_draw_heatmap(const void *arg);
void as_plot_draw_lines(const void *arg);
typedef void (*as_plot_draw_fn)(const void *arg);

/* Where figures go and who hears of them. */
struct as_plot_out {
    const char *dir;               /* existing directory */
    unsigned formats;              /* AS_PLOT_* mask, not 0 */
    struct as_strbuf *names;       /* file names made are appended, one per line */
    struct as_strbuf *made;        /* the same again when not NULL (the caller's list) */
};

/* [A-Za-z0-9._+-] kept, anything else becomes '_' (a leading '.' too). */
void as_plot_safe_name(const char *in, char *out, size_t n);
/* mkdir -p; AS_ERR_IO naming the folder. */
int as_plot_mkdir_p(const char *dir, struct as_error *err);

/* One figure: a fresh page per format of out->formats, draw(arg) on it, written to
 * <dir>/<base>.<ext>. 0, or -1 with AS_ERR_IO (cannot write it; the formats before are kept). */
int as_plot_emit(const struct as_plot_out *out, const char *base, enum as_plot_shape shape, as_plot_draw_fn draw,
                 const void *arg, struct as_error *err);

#endif
