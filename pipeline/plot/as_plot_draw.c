/* as_plot_draw.c: the figure kinds of `attnstat plot`, drawn with PLplot's cairo drivers: pages
 * and formats, matplotlib-like axes, (layer, head) heatmaps and T x T matrices, per-layer lines
 * across models. It knows nothing of results files: as_plot.c hands it the numbers. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <sys/stat.h>

#include <plplot.h>

#include "as_plot_impl.h"

/* ---- look: sizes, fonts, colours */

/* A page in inches; PNG at png_dpi pixels per inch, PDF and SVG in points. Font sizes (em) and
 * line widths in points of that page: a heatmap (8 in) is meant to be printed about a column wide
 * (3.3 in, so 18 pt text prints at about 7.5 pt), a line plot (4.5 in) a column wide too. */
static const struct page {
    double w_in, h_in, png_dpi;
    double tick_pt, label_pt, title_pt, legend_pt, marker_pt;
    double tick_len_pt, axis_lw, grid_lw, line_lw;
} pages[AS_PLOT_SHAPE_COUNT] = {
    [AS_PLOT_SHAPE_SQUARE] = { 8.0, 8.0, 100.0, 17.0, 19.0, 20.0, 17.0, 8.0, 6.0, 1.4, 1.0, 2.5 },
    [AS_PLOT_SHAPE_WIDE] = { 4.5, 3.0, 200.0, 9.0, 10.0, 10.5, 9.0, 4.0, 3.5, 0.8, 0.6, 1.5 },
    [AS_PLOT_SHAPE_PAPER_SQUARE] = { 8.0, 8.0, 400.0, 20.0, 25.0, 20.0, 17.0, 8.0, 6.0, 1.4, 1.0, 2.5 },
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
#define N_MODEL_COLOURS AS_PLOT_MODEL_COLOURS
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

/* ---- tick steps */

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
static int page_begin(const char *path, enum as_plot_shape shape, const struct fmt *fm, struct as_error *err)
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

/* Whether the file at path ends as a whole PNG, PDF or SVG does (cairo does not report a write
 * that failed, e.g. on a full disk: the file is then cut short). */
static int file_complete(const char *path)
{
    static const char *const tails[] = { "IEND\xae\x42\x60\x82", "%%EOF", "</svg>" };
    unsigned char buf[64];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    long n = 0;
    if (!fseek(f, -(long)sizeof buf, SEEK_END) || !fseek(f, 0, SEEK_SET))
        n = (long)fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        size_t k = strlen(tails[t]);
        for (long i = 0; i + (long)k <= n; i++)
            if (!memcmp(buf + i, tails[t], k))
                return 1;
    }
    return 0;
}

static int page_end(const char *path, struct as_error *err)
{
    plend1();
    struct stat st;
    if (stat(path, &st) || st.st_size == 0)
        return as_error_set(err, AS_ERR_IO, "cannot write figure '%s'%s%s", path, pl_abort_msg[0] ? ": " : "",
                            pl_abort_msg);
    if (!file_complete(path)) {
        unlink(path);
        return as_error_set(err, AS_ERR_IO, "cannot write figure '%s': it was cut short (no space left on device?)",
                            path);
    }
    return 0;
}

int as_plot_emit(const struct as_plot_out *out, const char *base, enum as_plot_shape shape, as_plot_draw_fn draw,
                 const void *arg, struct as_error *err)
{
    for (int k = 0; k < AS_PLOT_FORMAT_COUNT; k++) {
        const struct fmt *fm = &fmts[k];
        if (!(out->formats & fm->bit))
            continue;
        char name[600], path[4800];
        snprintf(name, sizeof name, "%s.%s", base, fm->ext);
        if ((size_t)snprintf(path, sizeof path, "%s/%s", out->dir, name) >= sizeof path)
            return as_error_set(err, AS_ERR_IO, "figure path '%s/%s' is too long", out->dir, name);
        if (page_begin(path, shape, fm, err))
            return -1;
        draw(arg);
        if (page_end(path, err))
            return -1;
        as_strbuf_addf(out->names, "%s\n", name);
        if (out->made)
            as_strbuf_addf(out->made, "%s\n", name);
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

/* plimagefr's index space -> world: cell (i, j) spans [i - 0.5, i + 0.5] x [j - 0.5, j + 0.5] */
static void cell_xform(PLFLT x, PLFLT y, PLFLT *tx, PLFLT *ty, PLPointer data)
{
    (void)data;
    *tx = x - 0.5;
    *ty = y - 0.5;
}

/* Cells as one image (PNG, and big matrices in PDF/SVG): exact pixels, small files. No data:
 * grey cells in heatmaps; masked cells of a matrix stay white. */
static void cells_image(const struct as_plot_heatmap *h, double lo, double hi)
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
static void cells_vector(const struct as_plot_heatmap *h, double lo, double hi)
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

void as_plot_draw_heatmap(const void *arg)
{
    const struct as_plot_heatmap *h = arg;
    const struct page *pg = &pages[h->shape];
    int64_t nx = h->cols, ny = h->rows;
    double lo = h->lo, hi = h->hi;
    if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.05 : 0.5;
        lo -= d;
        hi += d;
    }
    /* the paper's figures draw square cells (matplotlib's imshow aspect="equal"): the data box
     * shrinks to fit, centred, and the colour bar follows its height */
    double vp[4] = { hm_vp[0], hm_vp[1], hm_vp[2], hm_vp[3] };
    if (h->shape == AS_PLOT_SHAPE_PAPER_SQUARE && nx > 0 && ny > 0) {
        double w = (vp[1] - vp[0]) * pg->w_in, ht = (vp[3] - vp[2]) * pg->h_in;
        double cell = fmin(w / (double)nx, ht / (double)ny);
        double dw = (w - cell * (double)nx) / pg->w_in, dh = (ht - cell * (double)ny) / pg->h_in;
        vp[0] += dw / 2;
        vp[1] -= dw / 2;
        vp[2] += dh / 2;
        vp[3] -= dh / 2;
    }
    plvpor(vp[0], vp[1], vp[2], vp[3]);
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
    plvpor(vp[1] + 0.025, vp[1] + 0.06, vp[2], vp[3]);
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
    PLFLT *px = as_xcalloc(2 * (size_t)len, sizeof *px), *py = as_xcalloc(2 * (size_t)len, sizeof *py);
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
    PLFLT *px = as_xcalloc((size_t)len, sizeof *px), *py = as_xcalloc((size_t)len, sizeof *py);
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

void as_plot_draw_lines(const void *arg)
{
    const struct as_plot_lines *l = arg;
    const struct page *pg = &pages[l->shape];
    int64_t Lmax = 1;
    double lo = INFINITY, hi = -INFINITY, name_w = 0;
    int n_drawn = 0;
    for (int m = 0; m < l->n; m++) {
        const struct as_plot_line *s = &l->v[m];
        n_drawn++;
        name_w = fmax(name_w, text_mm(s->name, pg->legend_pt));
        if (s->n > Lmax)
            Lmax = s->n;
        for (int64_t i = 0; i < s->n; i++) {
            double v = s->y[i];
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
        for (int m = 0; m < l->n; m++)
            if (l->v[m].sd) {
                plcol0(C_BAND0 + l->v[m].color);
                runs(l->v[m].y, l->v[m].sd, l->v[m].n, band_run, NULL);
            }

    int markers = Lmax <= 48 && !l->no_markers;
    set_font(pg->marker_pt);
    set_width(pg->line_lw);
    for (int m = 0; m < l->n; m++) {
        plcol0(C_MODEL0 + l->v[m].color);
        runs(l->v[m].y, NULL, l->v[m].n, line_run, &markers);
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
    for (int m = 0; m < l->n; m++) {
        opt[k] = PL_LEGEND_LINE;   /* PLplot puts a lone legend symbol at the sample's end: lines only */
        lcol[k] = C_MODEL0 + l->v[m].color;
        tcol[k] = C_BLACK;
        lsty[k] = 1;
        lwid[k] = pg->line_lw * pg_scale;
        snum[k] = 1;
        sscl[k] = pg->marker_pt / pg->legend_pt;
        sym[k] = marker;
        text[k] = l->v[m].name;
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

/* ---- formats */

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
