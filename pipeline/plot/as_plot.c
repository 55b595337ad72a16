/* as_plot.c: paper figures from a results file: per-model heatmaps of (layer, head) fields,
 * per-layer lines across models, and the mean-score matrix of one (layer, head), drawn with
 * PLplot's cairo drivers. The contract is in as_plot.h. */
#define _GNU_SOURCE
#include "as_plot.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>
#include <plplot.h>

#include "as_reader.h"
#include "as_stage_registry.h"

/* ---- what to draw */

enum fig_kind { FIG_ANY = 0, FIG_HEATMAP, FIG_LINES, FIG_KIND_COUNT };
enum fig_range { RANGE_AUTO = 0, RANGE_UNIT };   /* AUTO: one range shared by the models drawn */

struct fig_spec {
    const char *stage, *field;
    enum fig_kind kind;            /* FIG_ANY: by the dataset's shape */
    enum fig_range range;
    const char *title;             /* heatmaps: "<title> - <model>" */
    const char *axis;              /* colour-bar label or y-axis label */
    const char *std_field;         /* lines: the field holding the std for the optional band */
};

/* The figures of the known stages. A new stage adds rows here for a chosen title and range; it
 * can also just list fields in its ops->figures, which are drawn by shape with an automatic
 * range and the field name as label (see collect_specs). */
static const struct fig_spec fig_table[] = {
    { "histsim", "within_diag", FIG_HEATMAP, RANGE_UNIT, "Within-diagonal similarity", "Similarity", NULL },
    { "histsim", "within_lower", FIG_HEATMAP, RANGE_UNIT, "Within-lower-triangle similarity", "Similarity", NULL },
    { "histsim", "js_similarity", FIG_HEATMAP, RANGE_UNIT, "JS similarity, diagonal vs lower triangle",
      "JS similarity", NULL },
    { "jacobian", "r_diag", FIG_HEATMAP, RANGE_AUTO, "Jacobian diagonal energy ratio", "r_diag", NULL },
    { "jacobian", "cos_diag", FIG_HEATMAP, RANGE_AUTO, "Jacobian diagonal cosine", "cos_diag", NULL },
    { "monotonicity", "violation_rate", FIG_LINES, RANGE_AUTO, "Monotonicity violation rate", "Violation rate",
      NULL },
    { "monotonicity", "absolute_error", FIG_LINES, RANGE_AUTO, "Monotonicity absolute error", "Absolute error",
      "absolute_error_std" },
    { "monotonicity", "relative_error", FIG_LINES, RANGE_AUTO, "Monotonicity relative error", "Relative error",
      "relative_error_std" },
    { "patterns", "layer_entropy", FIG_LINES, RANGE_AUTO, "Attention entropy of the last query", "Entropy (nats)",
      NULL },
    { "activations", "q_var", FIG_LINES, RANGE_AUTO, "Query activation variance", "Var(Q)", NULL },
    { "activations", "k_var", FIG_LINES, RANGE_AUTO, "Key activation variance", "Var(K)", NULL },
    { "activations", "v_var", FIG_LINES, RANGE_AUTO, "Value activation variance", "Var(V)", NULL },
};
#define FIG_TABLE_N (sizeof fig_table / sizeof fig_table[0])

/* ---- look: sizes, fonts, colours */

enum fig_shape { SHAPE_SQUARE, SHAPE_WIDE, SHAPE_COUNT };

/* A page in inches; PNG at png_dpi pixels per inch, PDF and SVG in points. Font sizes (em) and
 * line widths in points of that page: a heatmap (8 in) is meant to be printed about a column wide
 * (3.3 in, so 18 pt text prints at about 7.5 pt), a line plot (4.5 in) a column wide too. */
static const struct page {
    double w_in, h_in, png_dpi;
    double tick_pt, label_pt, title_pt, legend_pt, marker_pt;
    double tick_len_pt, axis_lw, grid_lw, line_lw;
} pages[SHAPE_COUNT] = {
    [SHAPE_SQUARE] = { 8.0, 8.0, 100.0, 17.0, 19.0, 20.0, 17.0, 8.0, 6.0, 1.4, 1.0, 2.5 },
    [SHAPE_WIDE] = { 4.5, 3.0, 200.0, 9.0, 10.0, 10.5, 9.0, 4.0, 3.5, 0.8, 0.6, 1.5 },
};

static const struct fmt {
    enum as_plot_format bit;
    const char *name, *ext, *device;
} fmts[AS_PLOT_FORMAT_COUNT] = {
    { AS_PLOT_PNG, "png", "png", "pngcairo" },
    { AS_PLOT_PDF, "pdf", "pdf", "pdfcairo" },
    { AS_PLOT_SVG, "svg", "svg", "svgcairo" },
};

/* Heatmap data area, in normalised page coordinates (PLplot: from the bottom left). */
static const double hm_vp[4] = { 0.145, 0.765, 0.105, 0.885 };   /* room for 4-digit labels */

/* PDF/SVG heatmaps with more cells than this are drawn as one image (a T x T matrix). */
#define MAX_VECTOR_CELLS 16384

/* cmap0 slots */
enum { C_WHITE = 0, C_BLACK, C_MISSING, C_GRID, C_TEXT2, C_MODEL0 };
#define N_MODEL_COLOURS 10
#define C_BAND0 (C_MODEL0 + N_MODEL_COLOURS)
#define N_CMAP0 (C_BAND0 + N_MODEL_COLOURS)
#define BAND_ALPHA 0.22

/* matplotlib's tab10, the notebooks' line colours */
static const unsigned char model_rgb[N_MODEL_COLOURS][3] = {
    { 31, 119, 180 }, { 255, 127, 14 }, { 44, 160, 44 }, { 214, 39, 40 }, { 148, 103, 189 },
    { 140, 86, 75 }, { 227, 119, 194 }, { 127, 127, 127 }, { 188, 189, 34 }, { 23, 190, 207 },
};

/* viridis (van der Walt & Smith, CC0), the 256 entries of matplotlib's table rounded to 8 bits */
static const unsigned char viridis[256][3] = {
    { 68,   1,  84}, { 68,   2,  86}, { 69,   4,  87}, { 69,   5,  89},
    { 70,   7,  90}, { 70,   8,  92}, { 70,  10,  93}, { 70,  11,  94},
    { 71,  13,  96}, { 71,  14,  97}, { 71,  16,  99}, { 71,  17, 100},
    { 71,  19, 101}, { 72,  20, 103}, { 72,  22, 104}, { 72,  23, 105},
    { 72,  24, 106}, { 72,  26, 108}, { 72,  27, 109}, { 72,  28, 110},
    { 72,  29, 111}, { 72,  31, 112}, { 72,  32, 113}, { 72,  33, 115},
    { 72,  35, 116}, { 72,  36, 117}, { 72,  37, 118}, { 72,  38, 119},
    { 72,  40, 120}, { 72,  41, 121}, { 71,  42, 122}, { 71,  44, 122},
    { 71,  45, 123}, { 71,  46, 124}, { 71,  47, 125}, { 70,  48, 126},
    { 70,  50, 126}, { 70,  51, 127}, { 70,  52, 128}, { 69,  53, 129},
    { 69,  55, 129}, { 69,  56, 130}, { 68,  57, 131}, { 68,  58, 131},
    { 68,  59, 132}, { 67,  61, 132}, { 67,  62, 133}, { 66,  63, 133},
    { 66,  64, 134}, { 66,  65, 134}, { 65,  66, 135}, { 65,  68, 135},
    { 64,  69, 136}, { 64,  70, 136}, { 63,  71, 136}, { 63,  72, 137},
    { 62,  73, 137}, { 62,  74, 137}, { 62,  76, 138}, { 61,  77, 138},
    { 61,  78, 138}, { 60,  79, 138}, { 60,  80, 139}, { 59,  81, 139},
    { 59,  82, 139}, { 58,  83, 139}, { 58,  84, 140}, { 57,  85, 140},
    { 57,  86, 140}, { 56,  88, 140}, { 56,  89, 140}, { 55,  90, 140},
    { 55,  91, 141}, { 54,  92, 141}, { 54,  93, 141}, { 53,  94, 141},
    { 53,  95, 141}, { 52,  96, 141}, { 52,  97, 141}, { 51,  98, 141},
    { 51,  99, 141}, { 50, 100, 142}, { 50, 101, 142}, { 49, 102, 142},
    { 49, 103, 142}, { 49, 104, 142}, { 48, 105, 142}, { 48, 106, 142},
    { 47, 107, 142}, { 47, 108, 142}, { 46, 109, 142}, { 46, 110, 142},
    { 46, 111, 142}, { 45, 112, 142}, { 45, 113, 142}, { 44, 113, 142},
    { 44, 114, 142}, { 44, 115, 142}, { 43, 116, 142}, { 43, 117, 142},
    { 42, 118, 142}, { 42, 119, 142}, { 42, 120, 142}, { 41, 121, 142},
    { 41, 122, 142}, { 41, 123, 142}, { 40, 124, 142}, { 40, 125, 142},
    { 39, 126, 142}, { 39, 127, 142}, { 39, 128, 142}, { 38, 129, 142},
    { 38, 130, 142}, { 38, 130, 142}, { 37, 131, 142}, { 37, 132, 142},
    { 37, 133, 142}, { 36, 134, 142}, { 36, 135, 142}, { 35, 136, 142},
    { 35, 137, 142}, { 35, 138, 141}, { 34, 139, 141}, { 34, 140, 141},
    { 34, 141, 141}, { 33, 142, 141}, { 33, 143, 141}, { 33, 144, 141},
    { 33, 145, 140}, { 32, 146, 140}, { 32, 146, 140}, { 32, 147, 140},
    { 31, 148, 140}, { 31, 149, 139}, { 31, 150, 139}, { 31, 151, 139},
    { 31, 152, 139}, { 31, 153, 138}, { 31, 154, 138}, { 30, 155, 138},
    { 30, 156, 137}, { 30, 157, 137}, { 31, 158, 137}, { 31, 159, 136},
    { 31, 160, 136}, { 31, 161, 136}, { 31, 161, 135}, { 31, 162, 135},
    { 32, 163, 134}, { 32, 164, 134}, { 33, 165, 133}, { 33, 166, 133},
    { 34, 167, 133}, { 34, 168, 132}, { 35, 169, 131}, { 36, 170, 131},
    { 37, 171, 130}, { 37, 172, 130}, { 38, 173, 129}, { 39, 173, 129},
    { 40, 174, 128}, { 41, 175, 127}, { 42, 176, 127}, { 44, 177, 126},
    { 45, 178, 125}, { 46, 179, 124}, { 47, 180, 124}, { 49, 181, 123},
    { 50, 182, 122}, { 52, 182, 121}, { 53, 183, 121}, { 55, 184, 120},
    { 56, 185, 119}, { 58, 186, 118}, { 59, 187, 117}, { 61, 188, 116},
    { 63, 188, 115}, { 64, 189, 114}, { 66, 190, 113}, { 68, 191, 112},
    { 70, 192, 111}, { 72, 193, 110}, { 74, 193, 109}, { 76, 194, 108},
    { 78, 195, 107}, { 80, 196, 106}, { 82, 197, 105}, { 84, 197, 104},
    { 86, 198, 103}, { 88, 199, 101}, { 90, 200, 100}, { 92, 200,  99},
    { 94, 201,  98}, { 96, 202,  96}, { 99, 203,  95}, {101, 203,  94},
    {103, 204,  92}, {105, 205,  91}, {108, 205,  90}, {110, 206,  88},
    {112, 207,  87}, {115, 208,  86}, {117, 208,  84}, {119, 209,  83},
    {122, 209,  81}, {124, 210,  80}, {127, 211,  78}, {129, 211,  77},
    {132, 212,  75}, {134, 213,  73}, {137, 213,  72}, {139, 214,  70},
    {142, 214,  69}, {144, 215,  67}, {147, 215,  65}, {149, 216,  64},
    {152, 216,  62}, {155, 217,  60}, {157, 217,  59}, {160, 218,  57},
    {162, 218,  55}, {165, 219,  54}, {168, 219,  52}, {170, 220,  50},
    {173, 220,  48}, {176, 221,  47}, {178, 221,  45}, {181, 222,  43},
    {184, 222,  41}, {186, 222,  40}, {189, 223,  38}, {192, 223,  37},
    {194, 223,  35}, {197, 224,  33}, {200, 224,  32}, {202, 225,  31},
    {205, 225,  29}, {208, 225,  28}, {210, 226,  27}, {213, 226,  26},
    {216, 226,  25}, {218, 227,  25}, {221, 227,  24}, {223, 227,  24},
    {226, 228,  24}, {229, 228,  25}, {231, 228,  25}, {234, 229,  26},
    {236, 229,  27}, {239, 229,  28}, {241, 229,  29}, {244, 230,  30},
    {246, 230,  32}, {248, 230,  33}, {251, 231,  35}, {253, 231,  37},
};

static const double pt_mm = 25.4 / 72.0;

/* ---- small helpers */

/* [A-Za-z0-9._+-] kept, anything else becomes '_'. */
static void safe_name(const char *in, char *out, size_t n)
{
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '+' || c == '-';
        out[i] = ok ? (char)c : '_';
    }
    out[i] = 0;
    if (out[0] == '.')
        out[0] = '_';
}

static int mkdir_p(const char *dir, struct as_error *err)
{
    char buf[4096];
    if (as_strlcpy(buf, dir, sizeof buf))
        return as_error_set(err, AS_ERR_IO, "output directory name '%s' is too long", dir);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST)
                return as_error_set(err, AS_ERR_IO, "cannot create directory '%s': %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return as_error_set(err, AS_ERR_IO, "'%s' is not a directory", dir);
    return 0;
}

/* Is `name` one of the comma-separated items of `list`? */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* Is `line` one of the lines of `text`? */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, line, n))
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* A "nice" step (1, 2, 2.5, 5 times a power of ten) giving about `target` intervals over span. */
static double nice_step(double span, int target)
{
    if (!(span > 0))
        return 1.0;
    double raw = span / target, p = pow(10.0, floor(log10(raw))), m = raw / p;
    double s = m < 1.5 ? 1.0 : m < 2.25 ? 2.0 : m < 3.5 ? 2.5 : m < 7.5 ? 5.0 : 10.0;
    return s * p;
}

/* Integer tick step for n cells or layers: at most max_ticks labels. */
static double int_step(int64_t n, int max_ticks)
{
    static const int steps[] = { 1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if ((n + steps[i] - 1) / steps[i] <= max_ticks)
            return steps[i];
    return 10000;
}

/* ---- HDF5 reading (errors silenced while probing; the caller's handler restored after) */

struct h5_quiet {
    H5E_auto2_t fn;
    void *data;
};

static void h5_quiet_begin(struct h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5_quiet_end(const struct h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->fn, q->data);
}

static void h5_close_attr(hid_t a) { if (a >= 0) H5Aclose(a); }
static void h5_close_type(hid_t t) { if (t >= 0) H5Tclose(t); }
static void h5_close_space(hid_t s) { if (s >= 0) H5Sclose(s); }

/* 1 and *v set, 0 if absent, -1 if not a scalar number. */
static int attr_i64(hid_t obj, const char *name, int64_t *v)
{
    if (H5Aexists(obj, name) <= 0)
        return 0;
    int rc = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), sp = -1, t = -1;
    if (a < 0)
        goto out;
    sp = H5Aget_space(a);
    t = H5Aget_type(a);
    if (sp < 0 || t < 0 || H5Sget_simple_extent_npoints(sp) != 1)
        goto out;
    H5T_class_t cls = H5Tget_class(t);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        goto out;
    if (H5Aread(a, H5T_NATIVE_INT64, v) >= 0)
        rc = 1;
out:
    h5_close_type(t);
    h5_close_space(sp);
    h5_close_attr(a);
    return rc;
}

/* A scalar string attribute (variable or fixed length), malloc'd into *out. 1 / 0 absent / -1. */
static int attr_str(hid_t obj, const char *name, char **out)
{
    *out = NULL;
    if (H5Aexists(obj, name) <= 0)
        return 0;
    int rc = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), sp = -1, t = -1, mt = -1;
    if (a < 0)
        goto out;
    sp = H5Aget_space(a);
    t = H5Aget_type(a);
    if (sp < 0 || t < 0 || H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
        goto out;
    mt = H5Tcopy(H5T_C_S1);
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &s) < 0)
            goto out;
        *out = as_xstrdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t sz = H5Tget_size(t);
        char *s = as_xcalloc(sz + 1, 1);
        H5Tset_size(mt, sz);
        H5Tset_cset(mt, H5Tget_cset(t));
        H5Tset_strpad(mt, H5Tget_strpad(t));
        if (H5Aread(a, mt, s) < 0) {
            free(s);
            goto out;
        }
        *out = s;
    }
    rc = 1;
out:
    h5_close_type(mt);
    h5_close_type(t);
    h5_close_space(sp);
    h5_close_attr(a);
    return rc;
}

static herr_t scale_name_cb(hid_t did, unsigned dim, hid_t dsid, void *data)
{
    char *buf = data;
    if (H5DSget_scale_name(dsid, buf, 64) <= 0)
        buf[0] = 0;
    return 1;   /* the first scale names the dimension */
}

/* Name of the first dimension scale attached to dimension d ("" if none). */
static void dim_name(hid_t ds, unsigned d, char buf[64])
{
    buf[0] = 0;
    if (H5DSget_num_scales(ds, d) <= 0)
        return;
    int idx = 0;
    H5DSiterate_scales(ds, d, &idx, scale_name_cb, buf);
    buf[63] = 0;
}

/* One field of one model, as doubles; NaN where not computed. (L,) fields: cols == 1. */
struct series {
    enum fig_kind kind;            /* 0: absent */
    int64_t rows, cols;
    double *v;                     /* rows * cols, C order */
    double *sd;                    /* (rows,) std for the band, or NULL */
    int n_missing;
};

static void series_release(struct series *s)
{
    free(s->v);
    free(s->sd);
    memset(s, 0, sizeof *s);
}

/* Read /models/<m>/<stage>/<field> if it has the shape of `want` ((L,) lines, (L, H) heatmap;
 * FIG_ANY: either) and its dimension scales, if any, are named layer (and head).
 * 1 read, 0 absent or another shape (a warning when the name matches but the shape does not),
 * -1 on a read error. */
static int read_series(hid_t mg, const char *model, const char *stage, const char *field, int64_t L, int64_t H,
                       enum fig_kind want, struct series *s, struct as_error *err)
{
    char path[256];
    memset(s, 0, sizeof *s);
    snprintf(path, sizeof path, "%s/%s", stage, field);
    if (H5Lexists(mg, stage, H5P_DEFAULT) <= 0 || H5Lexists(mg, path, H5P_DEFAULT) <= 0)
        return 0;
    int rc = 0;
    hid_t ds = H5Dopen2(mg, path, H5P_DEFAULT), sp = -1, t = -1, dcpl = -1;
    if (ds < 0)
        return 0;   /* a group or a dangling link: not a field */
    sp = H5Dget_space(ds);
    t = H5Dget_type(ds);
    if (sp < 0 || t < 0) {
        rc = as_error_set(err, AS_ERR_INPUT, "model '%s': cannot read '%s'", model, path);
        goto out;
    }
    H5T_class_t cls = H5Tget_class(t);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[2] = { 0, 0 };
    if ((cls != H5T_FLOAT && cls != H5T_INTEGER) || rank < 1 || rank > 2 || H5DSis_scale(ds) > 0)
        goto out;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    enum fig_kind kind = rank == 2 ? FIG_HEATMAP : FIG_LINES;
    if (want != FIG_ANY && want != kind)
        goto out;
    char n0[64], n1[64] = "";
    dim_name(ds, 0, n0);
    if (rank == 2)
        dim_name(ds, 1, n1);
    if ((n0[0] && strcmp(n0, "layer")) || (n1[0] && strcmp(n1, "head")))
        goto out;
    if (rank == 2 && !strcmp(n1, "head"))
        H = (int64_t)dims[1];   /* the scale says heads: a stage may count them its own way */
    if ((int64_t)dims[0] != L || (rank == 2 && (int64_t)dims[1] != H)) {
        /* a field of the table, or one whose scales say (layer[, head]): worth a word */
        if (want != FIG_ANY || (n0[0] && (rank == 1 || n1[0]))) {
            char got[64], exp[64];
            if (rank == 2) {
                snprintf(got, sizeof got, "%llu, %llu", (unsigned long long)dims[0], (unsigned long long)dims[1]);
                snprintf(exp, sizeof exp, "%lld, %lld", (long long)L, (long long)H);
            } else {
                snprintf(got, sizeof got, "%llu,", (unsigned long long)dims[0]);
                snprintf(exp, sizeof exp, "%lld,", (long long)L);
            }
            fprintf(stderr, "attnstat: warning: model '%s': '%s' has shape (%s), expected (%s): not drawn\n",
                    model, path, got, exp);
        }
        goto out;
    }
    s->kind = kind;
    s->rows = L;
    s->cols = rank == 2 ? H : 1;
    s->v = malloc((size_t)(s->rows * s->cols) * sizeof *s->v);
    if (!s->v) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory reading '%s'", path);
        goto out;
    }
    if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->v) < 0) {
        rc = as_error_set(err, AS_ERR_INPUT, "model '%s': cannot read '%s'", model, path);
        series_release(s);
        goto out;
    }
    /* not computed: NaN, or a user-defined fill value other than 0 (0 is a real value too often) */
    double fill = NAN;
    H5D_fill_value_t fst;
    dcpl = H5Dget_create_plist(ds);
    if (dcpl >= 0 && H5Pfill_value_defined(dcpl, &fst) >= 0 && fst == H5D_FILL_VALUE_USER_DEFINED) {
        double f;
        if (H5Pget_fill_value(dcpl, H5T_NATIVE_DOUBLE, &f) >= 0 && f != 0.0)
            fill = f;
    }
    for (int64_t i = 0; i < s->rows * s->cols; i++) {
        if (s->v[i] == fill || !isfinite(s->v[i]))
            s->v[i] = NAN;
        if (isnan(s->v[i]))
            s->n_missing++;
    }
    rc = 1;
out:
    if (dcpl >= 0)
        H5Pclose(dcpl);
    h5_close_type(t);
    h5_close_space(sp);
    H5Dclose(ds);
    return rc;
}

/* ---- the open results file */

struct model {
    char name[256];
    char safe[256];                /* for file names */
    hid_t g;
    int64_t L, H, T;
    int color;                     /* index into model_rgb, by position in the file */
};

struct ctx {
    const char *results;
    char dir[4096];
    unsigned formats;
    int std_band;
    hid_t f;
    struct model *m;
    int n;
    struct as_strbuf *made;        /* caller's list, may be NULL */
    struct as_strbuf names;        /* what this call drew */
};

static int open_results(const char *path, hid_t *f, struct as_error *err)
{
    if (access(path, R_OK))
        return as_error_set(err, AS_ERR_INPUT, "cannot read results file '%s': %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return as_error_set(err, AS_ERR_INPUT, "'%s' is not an HDF5 file", path);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0)
        return as_error_set(err, AS_ERR_INPUT, "cannot open results file '%s'", path);
    return 0;
}

static int open_model(struct ctx *c, hid_t models, const char *name, struct model *m, struct as_error *err)
{
    memset(m, 0, sizeof *m);
    m->g = -1;
    if (as_strlcpy(m->name, name, sizeof m->name))
        return as_error_set(err, AS_ERR_INPUT, "'%s': model name '%.40s...' is too long", c->results, name);
    safe_name(name, m->safe, sizeof m->safe);
    m->g = H5Gopen2(models, name, H5P_DEFAULT);
    if (m->g < 0)
        return as_error_set(err, AS_ERR_INPUT, "'%s': cannot open group /models/%s", c->results, name);
    static const char *const keys[] = { "n_layers", "n_heads", "seq_len" };
    int64_t *vals[] = { &m->L, &m->H, &m->T };
    for (int k = 0; k < 3; k++) {
        int r = attr_i64(m->g, keys[k], vals[k]);
        if (r <= 0 && k < 2)
            return as_error_set(err, AS_ERR_INPUT, "'%s': model '%s' has %s attribute '%s'", c->results, name,
                                r ? "a malformed" : "no", keys[k]);
    }
    if (m->L < 1 || m->H < 1)
        return as_error_set(err, AS_ERR_INPUT, "'%s': model '%s' has n_layers=%lld n_heads=%lld", c->results,
                            name, (long long)m->L, (long long)m->H);
    return 0;
}

/* The models of /models in creation (config) order when the file tracks it, else name order;
 * only those in `only` (comma list) when it is not NULL; with `only` naming one model, that one. */
static int open_models(struct ctx *c, const char *only, struct as_error *err)
{
    hid_t models = -1, gcpl = -1;
    int rc = -1;
    if (H5Lexists(c->f, "models", H5P_DEFAULT) <= 0 || (models = H5Gopen2(c->f, "models", H5P_DEFAULT)) < 0)
        return as_error_set(err, AS_ERR_INPUT, "'%s' has no /models group: not an attnstat results file",
                            c->results);
    H5G_info_t gi;
    if (H5Gget_info(models, &gi) < 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': cannot list /models", c->results);
        goto out;
    }
    unsigned crt = 0;
    gcpl = H5Gget_create_plist(models);
    if (gcpl >= 0)
        H5Pget_link_creation_order(gcpl, &crt);
    H5_index_t idx = (crt & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    c->m = as_xcalloc(gi.nlinks ? gi.nlinks : 1, sizeof *c->m);
    struct as_strbuf all = AS_STRBUF_INIT;
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        char name[512];
        ssize_t len = H5Lget_name_by_idx(models, ".", idx, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0 && idx == H5_INDEX_CRT_ORDER)
            len = H5Lget_name_by_idx(models, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (len < 0 || (size_t)len >= sizeof name)
            continue;
        hid_t g = H5Gopen2(models, name, H5P_DEFAULT);
        if (g < 0)
            continue;   /* not a group */
        H5Gclose(g);
        as_strbuf_addf(&all, "%s%s", all.len ? ", " : "", name);
        if (only && !in_list(only, name))
            continue;
        if (open_model(c, models, name, &c->m[c->n], err)) {
            if (c->m[c->n].g >= 0)
                H5Gclose(c->m[c->n].g);
            as_strbuf_release(&all);
            goto out;
        }
        c->m[c->n].color = (int)(i % N_MODEL_COLOURS);
        c->n++;
    }
    if (only) {   /* every name asked for must exist */
        for (const char *p = only; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            int found = 0;
            for (int k = 0; k < c->n; k++)
                if (strlen(c->m[k].name) == len && !strncmp(c->m[k].name, p, len))
                    found = 1;
            if (!found && len) {
                as_error_set(err, AS_ERR_USAGE, "no model '%.*s' in '%s' (it has: %s)", (int)len, p, c->results,
                             all.len ? all.buf : "no models");
                as_strbuf_release(&all);
                goto out;
            }
            if (!e)
                break;
            p = e + 1;
        }
    }
    as_strbuf_release(&all);
    rc = 0;
out:
    if (gcpl >= 0)
        H5Pclose(gcpl);
    if (models >= 0)
        H5Gclose(models);
    return rc;
}

/* Close every HDF5 handle of the results file (so it can be reopened read-write). */
static void ctx_close_file(struct ctx *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->m[i].g >= 0) {
            H5Gclose(c->m[i].g);
            c->m[i].g = -1;
        }
    if (c->f >= 0)
        H5Fclose(c->f);
    c->f = -1;
}

static void ctx_release(struct ctx *c)
{
    ctx_close_file(c);
    free(c->m);
    as_strbuf_release(&c->names);
    c->m = NULL;
    c->n = 0;
}

static int ctx_init(struct ctx *c, const char *results, const struct as_plot_opts *o, struct as_strbuf *made,
                    struct as_error *err)
{
    memset(c, 0, sizeof *c);
    c->f = -1;
    c->results = results;
    c->made = made;
    c->formats = o && o->formats ? o->formats : AS_PLOT_PNG;
    c->std_band = o ? o->std_band : 0;
    const char *dir = o && o->out_dir && *o->out_dir ? o->out_dir : ".";
    if (as_strlcpy(c->dir, dir, sizeof c->dir))
        return as_error_set(err, AS_ERR_IO, "output directory name '%.64s...' is too long", dir);
    if (c->formats & ~(unsigned)(AS_PLOT_PNG | AS_PLOT_PDF | AS_PLOT_SVG))
        return as_error_set(err, AS_ERR_USAGE, "unknown figure format bits 0x%x", c->formats);
    return 0;
}

/* ---- PLplot pages
 *
 * Sizes are given for the physical page (inches, points). The cairo drivers lay a page out at
 * 72 device units per inch whatever the PNG resolution, so PLplot's millimetres are scaled by
 * pg_scale = PLplot page width / physical page width; fonts and line widths go through it, so a
 * PNG and a PDF of the same figure look alike. */

static double pg_scale = 1.0;
static int pg_vector;              /* PDF or SVG page */
static char pl_abort_msg[256];

static void pl_abort(PLCHAR_VECTOR msg)
{
    fprintf(stderr, "attnstat: warning: plplot: %s\n", msg);
    as_strlcpy(pl_abort_msg, msg, sizeof pl_abort_msg);
}

/* PLplot's character height is the capital height; DejaVu Sans capitals are 0.73 em. */
#define CAP_EM 0.73

static void set_font(double pt) { plschr(pt * CAP_EM * pt_mm * pg_scale, 1.0); }
static void set_width(double pt) { plwidth(pt * pg_scale); }
static double font_em_mm(double pt) { return pt * pt_mm * pg_scale; }

/* Rough width of text in PLplot mm at `pt`, from DejaVu Sans advances (digits 0.64 em, lower case
 * about 0.58 em, capitals and non-ASCII 0.70 em); a little generous. Used to keep labels, titles
 * and legends clear of each other. */
static double text_mm(const char *s, double pt)
{
    double em = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c & 0xc0) == 0x80)
            continue;   /* UTF-8 continuation byte */
        em += (c >= '0' && c <= '9') || c == '-' ? 0.64 : c == '.' || c == ',' || c == ' ' ? 0.32
              : (c >= 'A' && c <= 'Z') || c >= 0x80 ? 0.70 : c == 'i' || c == 'l' || c == 'j' ? 0.28 : 0.58;
    }
    return em * font_em_mm(pt);
}

/* plmtex with the displacement in mm (PLplot's unit is the current character height). */
static void mtex_mm(const char *side, double off_mm, double pos, double just, const char *text)
{
    PLFLT def, ht;
    plgchr(&def, &ht);
    plmtex(side, off_mm / ht, pos, just, text);
}

/* Start a page. PLplot calls exit() when it cannot open its output file, so this checks first
 * that the file can be written. */
static int page_begin(const char *path, enum fig_shape shape, const struct fmt *fm, struct as_error *err)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return as_error_set(err, AS_ERR_IO, "cannot write figure '%s': %s", path, strerror(errno));
    fclose(fp);
    const struct page *pg = &pages[shape];
    double dpi = fm->bit == AS_PLOT_PNG ? pg->png_dpi : 72.0;
    pl_abort_msg[0] = 0;
    pg_vector = fm->bit != AS_PLOT_PNG;
    plsabort(pl_abort);
    plsdev(fm->device);
    plsfnam(path);
    plspage(dpi, dpi, (PLINT)lround(pg->w_in * dpi), (PLINT)lround(pg->h_in * dpi), 0, 0);
    plscmap0n(N_CMAP0);
    plscolbg(255, 255, 255);
    plinit();
    plscol0(C_WHITE, 255, 255, 255);
    plscol0(C_BLACK, 0, 0, 0);
    plscol0(C_MISSING, 217, 217, 217);
    plscol0(C_GRID, 230, 230, 230);
    plscol0(C_TEXT2, 90, 90, 90);
    for (int i = 0; i < N_MODEL_COLOURS; i++) {
        plscol0(C_MODEL0 + i, model_rgb[i][0], model_rgb[i][1], model_rgb[i][2]);
        plscol0a(C_BAND0 + i, model_rgb[i][0], model_rgb[i][1], model_rgb[i][2], BAND_ALPHA);
    }
    PLINT r[256], g[256], b[256];
    for (int i = 0; i < 256; i++) {
        r[i] = viridis[i][0];
        g[i] = viridis[i][1];
        b[i] = viridis[i][2];
    }
    plscmap1n(256);
    plscmap1(r, g, b, 256);
    plsfont(PL_FCI_SANS, PL_FCI_UPRIGHT, PL_FCI_MEDIUM);
    pladv(0);
    PLFLT sx0, sx1, sy0, sy1;
    plgspa(&sx0, &sx1, &sy0, &sy1);
    pg_scale = (sx1 - sx0) / (pg->w_in * 25.4);
    plcol0(C_BLACK);
    set_width(pg->axis_lw);
    set_font(pg->tick_pt);
    return 0;
}

static int page_end(const char *path, struct as_error *err)
{
    plend1();
    struct stat st;
    if (stat(path, &st) || st.st_size == 0)
        return as_error_set(err, AS_ERR_IO, "cannot write figure '%s'%s%s", path, pl_abort_msg[0] ? ": " : "",
                            pl_abort_msg);
    return 0;
}

/* A figure: draw(arg) is called once per format on a fresh page. */
typedef void (*draw_fn)(const void *arg);

static int emit(struct ctx *c, const char *base, enum fig_shape shape, draw_fn draw, const void *arg,
                struct as_error *err)
{
    for (int k = 0; k < AS_PLOT_FORMAT_COUNT; k++) {
        const struct fmt *fm = &fmts[k];
        if (!(c->formats & fm->bit))
            continue;
        char name[600], path[4800];
        snprintf(name, sizeof name, "%s.%s", base, fm->ext);
        if ((size_t)snprintf(path, sizeof path, "%s/%s", c->dir, name) >= sizeof path)
            return as_error_set(err, AS_ERR_IO, "figure path '%s/%s' is too long", c->dir, name);
        if (page_begin(path, shape, fm, err))
            return -1;
        draw(arg);
        if (page_end(path, err))
            return -1;
        as_strbuf_addf(&c->names, "%s\n", name);
        if (c->made)
            as_strbuf_addf(c->made, "%s\n", name);
    }
    return 0;
}

/* ---- axes: outward ticks and labels, matplotlib-like */

enum side { SIDE_BOTTOM, SIDE_LEFT, SIDE_RIGHT, SIDE_COUNT };

/* Tick labels of an axis: fixed-point with the decimals the step needs; values below 1e-3 or
 * from 1e5 up are scaled by 10^-exp10 (the axis title then says "x10^exp10"). */
struct tickfmt {
    double step;
    int decimals;
    int exp10;
};

static struct tickfmt tick_format(double lo, double hi, double step)
{
    struct tickfmt t = { step, 0, 0 };
    double big = fmax(fabs(lo), fabs(hi));
    if (big > 0 && (big < 1e-3 || big >= 1e5))
        t.exp10 = (int)floor(log10(big));
    double s = step / pow(10.0, t.exp10);
    while (t.decimals < 8 && fabs(s * pow(10.0, t.decimals) - nearbyint(s * pow(10.0, t.decimals))) > 1e-6)
        t.decimals++;
    return t;
}

static void tick_label(const struct tickfmt *t, double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.*f", t->decimals, v / pow(10.0, t->exp10));
    if (buf[0] == '-') {   /* no "-0.0"; a real minus sign otherwise */
        int zero = 1;
        for (const char *p = buf + 1; *p; p++)
            if (*p != '0' && *p != '.')
                zero = 0;
        if (zero) {
            memmove(buf, buf + 1, strlen(buf));
        } else if (strlen(buf) + 3 < n) {
            memmove(buf + 3, buf + 1, strlen(buf));
            memcpy(buf, "\xe2\x88\x92", 3);   /* U+2212 */
        }
    }
}

/* Ticks of the current viewport's axis on `side` at multiples of t->step, pointing out, with
 * labels. Returns the width (mm) of the widest label, for placing the axis title. */
static double axis_draw(enum side side, const struct tickfmt *t, double tick_pt, double font_pt)
{
    PLFLT vx0, vx1, vy0, vy1, wx0, wx1, wy0, wy1, sx0, sx1, sy0, sy1;
    plgvpd(&vx0, &vx1, &vy0, &vy1);
    plgvpw(&wx0, &wx1, &wy0, &wy1);
    plgspa(&sx0, &sx1, &sy0, &sy1);
    double a0 = side == SIDE_BOTTOM ? wx0 : wy0, a1 = side == SIDE_BOTTOM ? wx1 : wy1;
    double lo = fmin(a0, a1), hi = fmax(a0, a1), eps = 1e-9 * t->step;
    double per_mm_x = (wx1 - wx0) / ((vx1 - vx0) * (sx1 - sx0)), per_mm_y = (wy1 - wy0) / ((vy1 - vy0) * (sy1 - sy0));
    double tick_mm = tick_pt * pt_mm * pg_scale;

    /* ticks lie outside the viewport, where PLplot clips: draw them in a viewport covering the
     * subpage whose window extends the current one */
    plvpor(0.0, 1.0, 0.0, 1.0);
    plwind(wx0 - vx0 * (wx1 - wx0) / (vx1 - vx0), wx1 + (1.0 - vx1) * (wx1 - wx0) / (vx1 - vx0),
           wy0 - vy0 * (wy1 - wy0) / (vy1 - vy0), wy1 + (1.0 - vy1) * (wy1 - wy0) / (vy1 - vy0));
    for (double k = ceil((lo - eps) / t->step); k * t->step <= hi + eps; k++) {
        double v = k * t->step;
        PLFLT px[2], py[2];
        if (side == SIDE_BOTTOM) {
            px[0] = px[1] = v;
            py[0] = wy0;
            py[1] = wy0 - tick_mm * per_mm_y;
        } else {
            double e = side == SIDE_LEFT ? wx0 : wx1;
            py[0] = py[1] = v;
            px[0] = e;
            px[1] = e + (side == SIDE_LEFT ? -1.0 : 1.0) * tick_mm * per_mm_x;
        }
        pljoin(px[0], py[0], px[1], py[1]);
    }
    plvpor(vx0, vx1, vy0, vy1);
    plwind(wx0, wx1, wy0, wy1);

    set_font(font_pt);
    double widest = 0, gap = 0.35 * font_em_mm(font_pt);
    for (double k = ceil((lo - eps) / t->step); k * t->step <= hi + eps; k++) {
        double v = k * t->step, pos = (v - a0) / (a1 - a0);
        char buf[64];
        tick_label(t, v, buf, sizeof buf);
        widest = fmax(widest, text_mm(buf, font_pt));
        if (side == SIDE_BOTTOM)
            mtex_mm("b", tick_mm + gap + 0.5 * CAP_EM * font_em_mm(font_pt), pos, 0.5, buf);
        else if (side == SIDE_LEFT)
            mtex_mm("lv", tick_mm + gap, pos, 1.0, buf);
        else
            mtex_mm("rv", tick_mm + gap, pos, 0.0, buf);
    }
    return widest;
}

/* Axis title on `side`, clear of ticks and labels (label_w: widest tick label, mm). plmtex
 * places the middle of the capitals at the displacement. */
static void axis_title(enum side side, const char *text, const struct tickfmt *t, double label_w, double tick_pt,
                       double tick_font_pt, double font_pt)
{
    char buf[320];
    if (t && t->exp10)
        snprintf(buf, sizeof buf, "%s (\xc3\x97" "10#u%d#d)", text, t->exp10);
    else
        as_strlcpy(buf, text, sizeof buf);
    double tick_mm = tick_pt * pt_mm * pg_scale, gap = 0.35 * font_em_mm(tick_font_pt);
    double em = font_em_mm(font_pt), half_cap = 0.5 * CAP_EM * em;
    set_font(font_pt);
    if (side == SIDE_BOTTOM)
        mtex_mm("b", tick_mm + gap + CAP_EM * font_em_mm(tick_font_pt) + 0.55 * em + half_cap, 0.5, 0.5, buf);
    else if (side == SIDE_LEFT)   /* reads upwards, descenders towards the axis */
        mtex_mm("l", tick_mm + gap + label_w + 0.5 * em + 0.22 * em + half_cap, 0.5, 0.5, buf);
    else
        mtex_mm("r", tick_mm + gap + label_w + 0.5 * em + half_cap, 0.5, 0.5, buf);
}

/* Figure title above the viewport (descenders towards it): centred on the viewport, shifted to
 * stay on the page, smaller only if wider than the page. */
static void title_above(const char *text, double lift_mm, double font_pt)
{
    PLFLT vx0, vx1, vy0, vy1, sx0, sx1, sy0, sy1;
    plgvpd(&vx0, &vx1, &vy0, &vy1);
    plgspa(&sx0, &sx1, &sy0, &sy1);
    double page = sx1 - sx0, margin = 0.02, w = text_mm(text, font_pt) / page;
    if (w > 1.0 - 2 * margin) {
        font_pt *= fmax((1.0 - 2 * margin) / w, 0.6);
        w = text_mm(text, font_pt) / page;
    }
    double c = 0.5 * (vx0 + vx1);
    c = fmax(c, margin + 0.5 * w);
    c = fmin(c, 1.0 - margin - 0.5 * w);
    double em = font_em_mm(font_pt);
    set_font(font_pt);
    mtex_mm("t", lift_mm + 0.22 * em + 0.5 * CAP_EM * em, (c - vx0) / (vx1 - vx0), 0.5, text);
}

/* Integer ticks (cells, layers) formatted without decimals. */
static struct tickfmt int_ticks(int64_t n, int max_ticks)
{
    struct tickfmt t = { int_step(n, max_ticks), 0, 0 };
    return t;
}

/* ---- heatmaps */

struct heatmap {
    const char *title, *subtitle, *xlabel, *ylabel, *cbar_label;
    const double *v;               /* (rows, cols) C order, NaN = no data */
    int64_t rows, cols;
    double lo, hi;
    int matrix;                    /* 1: row 0 at the top, NaN cells white (masked) */
    enum fig_shape shape;
};

/* plimagefr's index space -> world: cell (i, j) spans [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5] */
static void cell_xform(PLFLT x, PLFLT y, PLFLT *tx, PLFLT *ty, PLPointer data)
{
    (void)data;
    *tx = x - 0.5;
    *ty = y - 0.5;
}

/* Cells as one image (PNG, and big matrices in PDF/SVG): exact pixels, small files. No data:
 * grey cells in heatmaps; masked cells of a matrix stay white. */
static void cells_image(const struct heatmap *h, double lo, double hi)
{
    int64_t nx = h->cols, ny = h->rows;
    PLFLT **z;
    plAlloc2dGrid(&z, (PLINT)nx, (PLINT)ny);
    double skip = hi + (hi - lo) + 1.0;   /* outside [lo, hi]: plimagefr leaves the cell undrawn */
    plcol0(C_MISSING);
    for (int64_t i = 0; i < ny; i++)
        for (int64_t j = 0; j < nx; j++) {
            double v = h->v[i * nx + j];
            if (isnan(v)) {
                z[j][i] = skip;
                if (!h->matrix) {
                    PLFLT px[4] = { j - 0.5, j + 0.5, j + 0.5, j - 0.5 };
                    PLFLT py[4] = { i - 0.5, i - 0.5, i + 0.5, i + 0.5 };
                    plfill(4, px, py);
                }
            } else {
                z[j][i] = v < lo ? lo : v > hi ? hi : v;
            }
        }
    plimagefr((PLFLT_MATRIX)z, (PLINT)nx, (PLINT)ny, -0.5, (double)nx - 0.5, -0.5, (double)ny - 0.5, lo, hi, lo, hi,
              cell_xform, NULL);
    plFree2dGrid(z, (PLINT)nx, (PLINT)ny);
}

/* Cells as filled rectangles (PDF, SVG): sharp at any zoom, where cairo would embed a 72-dpi
 * image that viewers interpolate. Each cell reaches a little into its right and upper
 * neighbours, which are drawn later, so viewers show no hairline seams between cells. */
static void cells_vector(const struct heatmap *h, double lo, double hi)
{
    int64_t nx = h->cols, ny = h->rows;
    const double grow = 0.02;
    for (int64_t i = 0; i < ny; i++)
        for (int64_t j = 0; j < nx; j++) {
            double v = h->v[i * nx + j];
            if (isnan(v) && h->matrix)
                continue;
            int right = j + 1 < nx && !(h->matrix && isnan(h->v[i * nx + j + 1]));
            int up = i + 1 < ny && !(h->matrix && isnan(h->v[(i + 1) * nx + j]));
            double x1 = j + 0.5 + (right ? grow : 0.0), y1 = i + 0.5 + (up ? grow : 0.0);
            PLFLT px[4] = { j - 0.5, x1, x1, j - 0.5 };
            PLFLT py[4] = { i - 0.5, i - 0.5, y1, y1 };
            if (isnan(v))
                plcol0(C_MISSING);
            else
                plcol1(((v < lo ? lo : v > hi ? hi : v) - lo) / (hi - lo));
            plfill(4, px, py);
        }
}

static void draw_heatmap(const void *arg)
{
    const struct heatmap *h = arg;
    const struct page *pg = &pages[h->shape];
    int64_t nx = h->cols, ny = h->rows;
    double lo = h->lo, hi = h->hi;
    if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.05 : 0.5;
        lo -= d;
        hi += d;
    }
    plvpor(hm_vp[0], hm_vp[1], hm_vp[2], hm_vp[3]);
    if (h->matrix)
        plwind(-0.5, (double)nx - 0.5, (double)ny - 0.5, -0.5);
    else
        plwind(-0.5, (double)nx - 0.5, -0.5, (double)ny - 0.5);

    if (pg_vector && nx * ny <= MAX_VECTOR_CELLS)
        cells_vector(h, lo, hi);
    else
        cells_image(h, lo, hi);

    plcol0(C_BLACK);
    set_width(pg->axis_lw);
    plbox("bc", 0, 0, "bc", 0, 0);
    int maxt = h->matrix ? 8 : 12;
    struct tickfmt tx = int_ticks(nx, maxt), ty = int_ticks(ny, maxt);
    axis_draw(SIDE_BOTTOM, &tx, pg->tick_len_pt, pg->tick_pt);
    double wy = axis_draw(SIDE_LEFT, &ty, pg->tick_len_pt, pg->tick_pt);
    axis_title(SIDE_BOTTOM, h->xlabel, NULL, 0, pg->tick_len_pt, pg->tick_pt, pg->label_pt);
    axis_title(SIDE_LEFT, h->ylabel, NULL, wy, pg->tick_len_pt, pg->tick_pt, pg->label_pt);
    double lift = 0.5 * font_em_mm(pg->title_pt);
    if (h->subtitle) {
        plcol0(C_TEXT2);
        title_above(h->subtitle, lift, pg->label_pt * 0.85);
        plcol0(C_BLACK);
        lift += 1.45 * font_em_mm(pg->label_pt * 0.85);
    }
    title_above(h->title, lift, pg->title_pt);

    /* colour bar right of the data, ticks and label on its right: the 256 colours the cells use,
     * each band reaching a little into the next (no seams). Drawn by hand: plcolorbar's ticks
     * cross the bar on both sides, and its gradient leaks a cairo pattern per page. */
    plvpor(hm_vp[1] + 0.025, hm_vp[1] + 0.06, hm_vp[2], hm_vp[3]);
    plwind(0.0, 1.0, 0.0, 256.0);
    for (int k = 0; k < 256; k++) {
        PLFLT bx[4] = { 0.0, 1.0, 1.0, 0.0 }, by[4] = { k, k, k + (k < 255 ? 1.3 : 1.0), k + (k < 255 ? 1.3 : 1.0) };
        plcol1((k + 0.5) / 256.0);
        plfill(4, bx, by);
    }
    plwind(0.0, 1.0, lo, hi);
    plcol0(C_BLACK);
    set_width(pg->axis_lw);
    plbox("bc", 0, 0, "bc", 0, 0);
    struct tickfmt tc = tick_format(lo, hi, nice_step(hi - lo, 5));
    double wc = axis_draw(SIDE_RIGHT, &tc, pg->tick_len_pt, pg->tick_pt);
    axis_title(SIDE_RIGHT, h->cbar_label, &tc, wc, pg->tick_len_pt, pg->tick_pt, pg->label_pt);
}

void as_plot_viridis(double t, unsigned char rgb[3])
{
    int i = isnan(t) ? 0 : (int)(t * 256.0);   /* as PLplot's plcol1 picks from 256 colours */
    i = i < 0 ? 0 : i > 255 ? 255 : i;
    memcpy(rgb, viridis[i], 3);
}

void as_plot_heatmap_area(double *x0, double *y0, double *x1, double *y1)
{
    *x0 = hm_vp[0];
    *x1 = hm_vp[1];
    *y0 = 1.0 - hm_vp[3];
    *y1 = 1.0 - hm_vp[2];
}

/* ---- lines across models */

struct lines {
    const char *title, *ylabel;
    const struct ctx *c;
    const struct series *s;        /* one per model, kind 0 where absent */
    int band;
    enum fig_shape shape;
};

/* Calls fn for each run of consecutive points where y (and sd, if given) are not NaN. */
static void runs(const double *y, const double *sd, int64_t n, void (*fn)(const double *y, const double *sd,
                 int64_t first, int64_t len, void *data), void *data)
{
    for (int64_t i = 0; i < n;) {
        if (isnan(y[i]) || (sd && isnan(sd[i]))) {
            i++;
            continue;
        }
        int64_t j = i;
        while (j < n && !isnan(y[j]) && !(sd && isnan(sd[j])))
            j++;
        fn(y, sd, i, j - i, data);
        i = j;
    }
}

static void band_run(const double *y, const double *sd, int64_t first, int64_t len, void *data)
{
    (void)data;
    PLFLT *px = malloc(2 * (size_t)len * sizeof *px), *py = malloc(2 * (size_t)len * sizeof *py);
    if (!px || !py) {
        free(px);
        free(py);
        return;
    }
    for (int64_t k = 0; k < len; k++) {
        int64_t i = first + k;
        px[k] = px[2 * len - 1 - k] = (double)(i + 1);
        py[k] = y[i] - 2.0 * sd[i];
        py[2 * len - 1 - k] = y[i] + 2.0 * sd[i];
    }
    if (len == 1)   /* a lone point: an error bar */
        plline(2, px, py);
    else
        plfill((PLINT)(2 * len), px, py);
    free(px);
    free(py);
}

static const char marker[] = "\xe2\x97\x8f";   /* U+25CF black circle */

static void line_run(const double *y, const double *sd, int64_t first, int64_t len, void *data)
{
    const int *markers = data;
    PLFLT *px = malloc((size_t)len * sizeof *px), *py = malloc((size_t)len * sizeof *py);
    if (!px || !py) {
        free(px);
        free(py);
        return;
    }
    for (int64_t k = 0; k < len; k++) {
        px[k] = (double)(first + k + 1);
        py[k] = y[first + k];
    }
    if (len > 1)
        plline((PLINT)len, px, py);
    if (*markers || len == 1)
        plstring((PLINT)len, px, py, marker);
    free(px);
    free(py);
}

static void draw_lines(const void *arg)
{
    const struct lines *l = arg;
    const struct page *pg = &pages[l->shape];
    const struct ctx *c = l->c;
    int64_t Lmax = 1;
    double lo = INFINITY, hi = -INFINITY, name_w = 0;
    int n_drawn = 0;
    for (int m = 0; m < c->n; m++) {
        const struct series *s = &l->s[m];
        if (!s->kind)
            continue;
        n_drawn++;
        name_w = fmax(name_w, text_mm(c->m[m].name, pg->legend_pt));
        if (s->rows > Lmax)
            Lmax = s->rows;
        for (int64_t i = 0; i < s->rows; i++) {
            double v = s->v[i];
            if (isnan(v))
                continue;
            double a = v, b = v;
            if (l->band && s->sd && !isnan(s->sd[i])) {
                a = v - 2.0 * s->sd[i];
                b = v + 2.0 * s->sd[i];
            }
            lo = fmin(lo, a);
            hi = fmax(hi, b);
        }
    }
    if (!(lo <= hi)) {
        lo = 0.0;
        hi = 1.0;
    } else if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 0.5;
        lo -= d;
        hi += d;
    } else {
        double pad = 0.05 * (hi - lo);
        lo -= pad;
        hi += pad;
    }
    double xpad = fmin(fmax(0.03 * (double)(Lmax - 1), 0.3), 0.75);   /* < 1: no layer-0 tick */
    struct tickfmt tx = int_ticks(Lmax, 10), ty = tick_format(lo, hi, nice_step(hi - lo, 5));

    /* left margin from the widest y label; legend right of the plot */
    PLFLT sx0, sx1, sy0, sy1;
    plgspa(&sx0, &sx1, &sy0, &sy1);
    double page_w = sx1 - sx0, label_w = 0;
    for (double k = ceil(lo / ty.step - 1e-9); k * ty.step <= hi + 1e-9 * ty.step; k++) {
        char buf[64];
        tick_label(&ty, k * ty.step, buf, sizeof buf);
        label_w = fmax(label_w, text_mm(buf, pg->tick_pt));
    }
    double left = (label_w + pg->tick_len_pt * pt_mm * pg_scale + 2.6 * font_em_mm(pg->label_pt)) / page_w;
    /* the legend takes (offset + sample) of the plot width, then a gap and the names */
    double sample = 0.07, offset = 0.015, text_end = 0.985 - (name_w + 0.8 * font_em_mm(pg->legend_pt)) / page_w;
    double right = (text_end + (offset + sample) * left) / (1.0 + offset + sample);
    if (right < left + 0.45)
        right = left + 0.45;
    plvpor(left, right, 0.155, 0.90);
    plwind(1.0 - xpad, (double)Lmax + xpad, lo, hi);

    plcol0(C_GRID);
    set_width(pg->grid_lw);
    plbox("g", tx.step, 1, "g", ty.step, 1);

    if (l->band)
        for (int m = 0; m < c->n; m++)
            if (l->s[m].kind && l->s[m].sd) {
                plcol0(C_BAND0 + c->m[m].color);
                runs(l->s[m].v, l->s[m].sd, l->s[m].rows, band_run, NULL);
            }

    int markers = Lmax <= 48;
    set_font(pg->marker_pt);
    set_width(pg->line_lw);
    for (int m = 0; m < c->n; m++)
        if (l->s[m].kind) {
            plcol0(C_MODEL0 + c->m[m].color);
            runs(l->s[m].v, NULL, l->s[m].rows, line_run, &markers);
        }

    plcol0(C_BLACK);
    set_width(pg->axis_lw);
    plbox("bc", 0, 0, "bc", 0, 0);
    axis_draw(SIDE_BOTTOM, &tx, pg->tick_len_pt, pg->tick_pt);
    double wy = axis_draw(SIDE_LEFT, &ty, pg->tick_len_pt, pg->tick_pt);
    axis_title(SIDE_BOTTOM, "Layer", NULL, 0, pg->tick_len_pt, pg->tick_pt, pg->label_pt);
    axis_title(SIDE_LEFT, l->ylabel, &ty, wy, pg->tick_len_pt, pg->tick_pt, pg->label_pt);
    title_above(l->title, 0.45 * font_em_mm(pg->title_pt), pg->title_pt);

    /* legend: right of the plot, top-aligned, no frame */
    PLINT *opt = as_xcalloc((size_t)n_drawn, sizeof *opt), *lcol = as_xcalloc((size_t)n_drawn, sizeof *lcol);
    PLINT *lsty = as_xcalloc((size_t)n_drawn, sizeof *lsty), *snum = as_xcalloc((size_t)n_drawn, sizeof *snum);
    PLINT *tcol = as_xcalloc((size_t)n_drawn, sizeof *tcol);
    PLFLT *lwid = as_xcalloc((size_t)n_drawn, sizeof *lwid), *sscl = as_xcalloc((size_t)n_drawn, sizeof *sscl);
    const char **text = as_xcalloc((size_t)n_drawn, sizeof *text), **sym = as_xcalloc((size_t)n_drawn, sizeof *sym);
    int k = 0;
    for (int m = 0; m < c->n; m++)
        if (l->s[m].kind) {
            opt[k] = PL_LEGEND_LINE;   /* PLplot puts a lone legend symbol at the sample's end: lines only */
            lcol[k] = C_MODEL0 + c->m[m].color;
            tcol[k] = C_BLACK;
            lsty[k] = 1;
            lwid[k] = pg->line_lw * pg_scale;
            snum[k] = 1;
            sscl[k] = pg->marker_pt / pg->legend_pt;
            sym[k] = marker;
            text[k] = c->m[m].name;
            k++;
        }
    /* centred by default: shift up so its first row sits at the top of the plot */
    PLFLT vx0, vx1, vy0, vy1;
    plgvpd(&vx0, &vx1, &vy0, &vy1);
    double row_mm = 2.0 * CAP_EM * font_em_mm(pg->legend_pt);
    double up = 0.5 - 0.5 * n_drawn * row_mm / ((vy1 - vy0) * (sy1 - sy0));
    set_font(pg->legend_pt);
    PLFLT w, hgt;
    pllegend(&w, &hgt, 0, PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT,
             offset, up > 0 ? up : 0.0, sample, C_WHITE, C_BLACK, 1, n_drawn, 1, n_drawn, opt, 0.6, 1.0, 2.0, 0.0, tcol, text,
             NULL, NULL, NULL, NULL, lcol, lsty, lwid, lcol, sscl, snum, sym);
    free(opt);
    free(lcol);
    free(lsty);
    free(snum);
    free(tcol);
    free(lwid);
    free(sscl);
    free(text);
    free(sym);
}

/* ---- the figure list */

struct spec_list {
    struct fig_spec *v;
    int n;
};

/* The table's rows, then the fields registered stages list in ops->figures that the table does
 * not have (drawn by shape). */
static void collect_specs(struct spec_list *out)
{
    size_t cap = FIG_TABLE_N;
    for (int i = 0; as_stages[i]; i++)
        for (int k = 0; as_stages[i]->figures && as_stages[i]->figures[k]; k++)
            cap++;
    out->v = as_xcalloc(cap, sizeof *out->v);
    out->n = 0;
    for (size_t i = 0; i < FIG_TABLE_N; i++)
        out->v[out->n++] = fig_table[i];
    for (int i = 0; as_stages[i]; i++) {
        const struct as_stage_ops *ops = as_stages[i];
        for (int k = 0; ops->figures && ops->figures[k]; k++) {
            int known = 0;
            for (int j = 0; j < out->n; j++)
                if (!strcmp(out->v[j].stage, ops->name) && !strcmp(out->v[j].field, ops->figures[k]))
                    known = 1;
            if (!known)
                out->v[out->n++] = (struct fig_spec){ ops->name, ops->figures[k], FIG_ANY, RANGE_AUTO, NULL,
                                                      ops->figures[k], NULL };
        }
    }
}

static int draw_spec(struct ctx *c, const struct fig_spec *sp, struct as_error *err)
{
    struct series *s = as_xcalloc((size_t)c->n, sizeof *s);
    enum fig_kind kind = sp->kind;
    int rc = -1, have = 0;
    char title[256], base[700];
    if (sp->title)
        as_strlcpy(title, sp->title, sizeof title);
    else
        snprintf(title, sizeof title, "%s: %s", sp->stage, sp->field);
    for (int m = 0; m < c->n; m++) {
        int r = read_series(c->m[m].g, c->m[m].name, sp->stage, sp->field, c->m[m].L, c->m[m].H, kind, &s[m], err);
        if (r < 0)
            goto out;
        if (r == 0)
            continue;
        kind = s[m].kind;
        have++;
        if (kind == FIG_LINES && sp->std_field && c->std_band) {
            struct series sd;
            r = read_series(c->m[m].g, c->m[m].name, sp->stage, sp->std_field, c->m[m].L, c->m[m].H, FIG_LINES,
                            &sd, err);
            if (r < 0)
                goto out;
            if (r > 0) {
                s[m].sd = sd.v;
                sd.v = NULL;
            }
        }
    }
    if (!have) {
        rc = 0;
        goto out;
    }
    if (kind == FIG_HEATMAP) {
        double lo = 0.0, hi = 1.0;
        if (sp->range == RANGE_AUTO) {
            lo = INFINITY;
            hi = -INFINITY;
            for (int m = 0; m < c->n; m++)
                for (int64_t i = 0; s[m].kind && i < s[m].rows * s[m].cols; i++)
                    if (!isnan(s[m].v[i])) {
                        lo = fmin(lo, s[m].v[i]);
                        hi = fmax(hi, s[m].v[i]);
                    }
            if (!(lo <= hi)) {
                lo = 0.0;
                hi = 1.0;
            }
        }
        for (int m = 0; m < c->n; m++) {
            if (!s[m].kind)
                continue;
            char full[400], sub[128] = "";
            snprintf(full, sizeof full, "%s \xe2\x80\x94 %s", title, c->m[m].name);
            if (s[m].n_missing)
                snprintf(sub, sizeof sub, "grey: not computed (%d of %lld)", s[m].n_missing,
                         (long long)(s[m].rows * s[m].cols));
            struct heatmap h = { full, sub[0] ? sub : NULL, "Head", "Layer", sp->axis, s[m].v, s[m].rows, s[m].cols,
                                 lo, hi, 0, SHAPE_SQUARE };
            snprintf(base, sizeof base, "%s_%s_%s", c->m[m].safe, sp->stage, sp->field);
            if (emit(c, base, SHAPE_SQUARE, draw_heatmap, &h, err))
                goto out;
        }
    } else {
        int band = c->std_band && sp->std_field;
        struct lines l = { title, sp->axis, c, s, band, SHAPE_WIDE };
        snprintf(base, sizeof base, "all_%s_%s", sp->stage, sp->field);
        if (emit(c, base, SHAPE_WIDE, draw_lines, &l, err))
            goto out;
    }
    rc = 0;
out:
    for (int m = 0; m < c->n; m++)
        series_release(&s[m]);
    free(s);
    return rc;
}

/* Write or replace root attribute `figures`: the names it held, then the new ones. */
static void record_figures(const char *path, const char *names)
{
    struct h5_quiet q;
    h5_quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), t = -1, sp = -1, a = -1;
    char *old = NULL;
    struct as_strbuf all = AS_STRBUF_INIT;
    if (f < 0) {
        fprintf(stderr, "attnstat: warning: cannot open '%s' read-write: figures not recorded in it\n", path);
        goto out;
    }
    if (attr_str(f, "figures", &old) > 0 && old[0]) {
        as_strbuf_add(&all, old, strlen(old));
        if (all.buf[all.len - 1] != '\n')
            as_strbuf_add(&all, "\n", 1);
    }
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[700];
        if (len && len < sizeof line) {
            memcpy(line, p, len);
            line[len] = 0;
            if (!has_line(as_strbuf_str(&all), line))
                as_strbuf_addf(&all, "%s\n", line);
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (all.len && all.buf[all.len - 1] == '\n')
        all.buf[--all.len] = 0;   /* newline-separated, not terminated */
    const char *text = as_strbuf_str(&all);
    if (H5Aexists(f, "figures") > 0 && H5Adelete(f, "figures") < 0)
        goto fail;
    t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
        goto fail;
    sp = H5Screate(H5S_SCALAR);
    a = H5Acreate2(f, "figures", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, &text) < 0)
        goto fail;
    goto out;
fail:
    fprintf(stderr, "attnstat: warning: cannot write attribute 'figures' of '%s'\n", path);
out:
    h5_close_attr(a);
    h5_close_space(sp);
    h5_close_type(t);
    if (f >= 0 && H5Fclose(f) < 0)
        fprintf(stderr, "attnstat: warning: cannot close '%s' after recording figures\n", path);
    free(old);
    as_strbuf_release(&all);
    h5_quiet_end(&q);
}

int as_plot_results(const char *results_path, const struct as_plot_opts *o, struct as_strbuf *made,
                    struct as_error *err)
{
    struct ctx c;
    struct spec_list specs = { NULL, 0 };
    struct h5_quiet q;
    int rc = -1;
    if (ctx_init(&c, results_path, o, made, err))
        return -1;
    h5_quiet_begin(&q);
    if (open_results(results_path, &c.f, err) || open_models(&c, o ? o->models : NULL, err))
        goto out;
    int64_t complete = 0;
    if (attr_i64(c.f, "complete", &complete) <= 0 || complete != 1)
        fprintf(stderr, "attnstat: warning: '%s' is not complete: figures show only the units that finished\n",
                results_path);
    if (mkdir_p(c.dir, err))
        goto out;
    collect_specs(&specs);
    for (int i = 0; i < specs.n; i++)
        if (draw_spec(&c, &specs.v[i], err))
            goto out;
    rc = 0;
out:
    free(specs.v);
    ctx_close_file(&c);
    h5_quiet_end(&q);
    if (c.names.len)   /* what was drawn, even if a later figure failed */
        record_figures(results_path, c.names.buf);
    ctx_release(&c);
    return rc;
}

int as_plot_run_figures(const char *results_path, const char *dir, unsigned formats, struct as_error *err)
{
    struct as_plot_opts o = { dir, formats, NULL, 0 };
    return as_plot_results(results_path, &o, NULL, err);
}

/* ---- one T x T matrix of the input qk_mean */

static int open_input(const char *results, const char *spec, const char *key, struct as_tensor_file *tf,
                      struct as_error *err)
{
    if (!strncmp(spec, "synthetic:", 10))
        return as_tensor_file_open(tf, &as_reader_synth, spec, key ? key : "qk_mean", err);
    if (spec[0] != '/' && access(spec, F_OK)) {
        const char *slash = strrchr(results, '/');
        if (slash) {
            char alt[4096];
            if ((size_t)snprintf(alt, sizeof alt, "%.*s/%s", (int)(slash - results), results, spec) < sizeof alt &&
                !access(alt, F_OK))
                return as_tensor_file_open(tf, NULL, alt, key, err);
        }
    }
    return as_tensor_file_open(tf, NULL, spec, key, err);
}

int as_plot_matrix(const char *results_path, const char *model, int64_t layer, int64_t head,
                   const struct as_plot_opts *o, struct as_strbuf *made, struct as_error *err)
{
    struct ctx c;
    struct h5_quiet q;
    struct as_tensor_file tf;
    int tf_open = 0, rc = -1;
    char *spec = NULL, *key = NULL;
    double *v = NULL;
    if (ctx_init(&c, results_path, o, made, err))
        return -1;
    h5_quiet_begin(&q);
    if (open_results(results_path, &c.f, err))
        goto out;
    if (strchr(model, ',')) {
        as_error_set(err, AS_ERR_USAGE, "--matrix takes one model, not '%s'", model);
        goto out;
    }
    if (open_models(&c, model, err))
        goto out;
    if (c.n != 1) {
        as_error_set(err, AS_ERR_USAGE, "no model '%s' in '%s'", model, results_path);
        goto out;
    }
    const struct model *m = &c.m[0];
    if (layer < 0 || layer >= m->L || head < 0 || head >= m->H) {
        as_error_set(err, AS_ERR_USAGE, "model '%s' has layers 0..%lld and heads 0..%lld: no layer %lld head %lld",
                     model, (long long)m->L - 1, (long long)m->H - 1, (long long)layer, (long long)head);
        goto out;
    }
    int r = attr_str(m->g, "input:qk_mean", &spec);
    if (r <= 0) {
        as_error_set(err, AS_ERR_INPUT, "'%s': model '%s' records no input 'qk_mean' (attribute 'input:qk_mean')",
                     results_path, model);
        goto out;
    }
    if (attr_str(m->g, "input_key:qk_mean", &key) < 0)
        key = NULL;
    if (open_input(results_path, spec, key, &tf, err)) {
        as_error_prefix(err, "model '%s' input qk_mean: ", model);
        goto out;
    }
    tf_open = 1;
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    if (ti->ndim != 4 || ti->shape[0] <= layer || ti->shape[1] <= head || ti->shape[2] != ti->shape[3] ||
        ti->shape[2] < 1) {
        as_error_set(err, AS_ERR_INPUT, "model '%s': input qk_mean '%s' is not (L, H, T, T) with L > %lld, "
                     "H > %lld", model, spec, (long long)layer, (long long)head);
        goto out;
    }
    int64_t T = ti->shape[2], nel;
    if (as_mul_i64(T, T, &nel) || !(v = malloc((size_t)nel * sizeof *v))) {
        as_error_set(err, AS_ERR_NOMEM, "model '%s': no memory for a %lld x %lld matrix", model, (long long)T,
                     (long long)T);
        goto out;
    }
    int64_t start[4] = { layer, head, 0, 0 }, count[4] = { 1, 1, T, T };
    if (as_tensor_file_read(&tf, start, count, AS_DTYPE_F64, v, err)) {
        as_error_prefix(err, "model '%s': ", model);
        goto out;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            double *x = &v[i * T + j];
            if (j > i || !isfinite(*x)) {
                *x = NAN;
                continue;
            }
            lo = fmin(lo, *x);
            hi = fmax(hi, *x);
        }
    if (!(lo <= hi)) {
        lo = 0.0;
        hi = 1.0;
    }
    char title[400], base[700];
    snprintf(title, sizeof title, "Mean QK score \xe2\x80\x94 %s, layer %lld, head %lld", model, (long long)layer,
             (long long)head);
    struct heatmap h = { title, NULL, "Key position", "Query position", "Mean score", v, T, T, lo, hi, 1,
                         SHAPE_SQUARE };
    snprintf(base, sizeof base, "%s_qk_mean_layer%lld_head%lld", m->safe, (long long)layer, (long long)head);
    ctx_close_file(&c);
    if (mkdir_p(c.dir, err) || emit(&c, base, SHAPE_SQUARE, draw_heatmap, &h, err))
        goto out;
    rc = 0;
out:
    if (tf_open)
        as_tensor_file_close(&tf);
    free(v);
    free(spec);
    free(key);
    ctx_close_file(&c);
    h5_quiet_end(&q);
    if (c.names.len)   /* what was drawn, even if a later figure failed */
        record_figures(results_path, c.names.buf);
    ctx_release(&c);
    return rc;
}

/* ---- command line */

int as_plot_formats_parse(const char *list, unsigned *mask, struct as_error *err)
{
    *mask = 0;
    for (const char *p = list; ; ) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int k = 0;
        for (; k < AS_PLOT_FORMAT_COUNT; k++)
            if (len == strlen(fmts[k].name) && !strncasecmp(p, fmts[k].name, len))
                break;
        if (k == AS_PLOT_FORMAT_COUNT)
            return as_error_set(err, AS_ERR_USAGE, "unknown figure format '%.*s' (png, pdf, svg)", (int)len, p);
        *mask |= fmts[k].bit;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

static const char plot_usage[] =
    "usage: attnstat plot RESULTS.h5 [-o DIR] [--format png,pdf,svg] [--models a,b] [--std-band]\n"
    "       attnstat plot RESULTS.h5 --matrix MODEL LAYER HEAD [-o DIR] [--format ...]\n"
    "\n"
    "  -o, --out DIR        write figures to DIR (created if missing; default: .)\n"
    "  --format LIST        png, pdf and/or svg, comma-separated (default: png)\n"
    "  --models LIST        only these models (default: all in the file)\n"
    "  --std-band           shade +-2 std around the monotonicity error lines\n"
    "  --matrix M L H       the input mean-score matrix of model M, layer L, head H (0-based)\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attnstat plot: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%.*s(see 'attnstat plot --help')\n", (int)(strstr(plot_usage, "\n\n") + 1 - plot_usage),
            plot_usage);
    return AS_EXIT_USAGE;
}

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
    struct as_error err = { AS_OK, "" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(plot_usage, stdout);
            return AS_EXIT_OK;
        } else if (is_opt(a, "--out", "-o")) {
            if (!(o.out_dir = opt_value(argc, argv, &i, "--out", "-o")) || !*o.out_dir)
                return usage_error("option '%s' needs a directory", a);
        } else if (is_opt(a, "--format", NULL)) {
            const char *v = opt_value(argc, argv, &i, "--format", NULL);
            if (!v)
                return usage_error("option '%s' needs a list of formats", a);
            if (as_plot_formats_parse(v, &o.formats, &err))
                return usage_error("%s", err.msg);
        } else if (is_opt(a, "--models", NULL)) {
            if (!(o.models = opt_value(argc, argv, &i, "--models", NULL)) || !*o.models)
                return usage_error("option '%s' needs a list of model names", a);
        } else if (!strcmp(a, "--std-band")) {
            o.std_band = 1;
        } else if (!strcmp(a, "--matrix")) {
            if (i + 3 >= argc)
                return usage_error("%s needs MODEL LAYER HEAD", a);
            mmodel = argv[i + 1];
            if (parse_index(argv[i + 2], &mlayer))
                return usage_error("--matrix: layer '%s' is not a non-negative integer", argv[i + 2]);
            if (parse_index(argv[i + 3], &mhead))
                return usage_error("--matrix: head '%s' is not a non-negative integer", argv[i + 3]);
            i += 3;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (!results) {
            results = a;
        } else {
            return usage_error("unexpected argument '%s' (one results file)", a);
        }
    }
    if (!results)
        return usage_error("%s", "which results file?");
    struct as_strbuf made = AS_STRBUF_INIT;
    int rc = mmodel ? as_plot_matrix(results, mmodel, mlayer, mhead, &o, &made, &err)
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
