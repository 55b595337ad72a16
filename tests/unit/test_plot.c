#undef NDEBUG
#define _GNU_SOURCE
/* test_plot.c: `attnstat plot` on the results fixtures (tests/fixtures/results, made by
 * tests/gen/make_results_fixture.py): every figure in every format, what the heatmap pixels
 * show (decoded with a small zlib-only PNG reader, itself tested first), byte stability, the
 * `figures` attribute, incomplete files, the --matrix figure and the command's exit codes.
 * Runs from the repository root; works on copies of the fixtures in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>
#include <zlib.h>

#include "as_plot.h"
#include "as_results_read.h"
#include "as_stage_registry.h"
#include "as_test.h"

#define FIXTURE_DIR "tests/fixtures/results"
#define MIN_FIGURE_BYTES 2048
#define VIRIDIS_INDEX_TOL 3        /* colour-map steps between a cell's colour and its value's */

static char tmp[256];              /* this run's scratch directory */

/* ---- files */

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct as_strbuf sb = AS_STRBUF_INIT;
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        as_strbuf_add(&sb, buf, got);
    fclose(f);
    *n = sb.len;
    if (!sb.buf)
        as_strbuf_add(&sb, "", 0);
    return sb.buf;
}

static int copy_file(const char *from, const char *to)
{
    size_t n;
    char *d = slurp(from, &n);
    if (!d)
        return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(d, 1, n, f) == n ? 0 : -1;
    if (f && fclose(f))
        rc = -1;
    free(d);
    return rc;
}

static void path_join(char *out, size_t n, const char *a, const char *b)
{
    snprintf(out, n, "%s/%s", a, b);
}

static int file_equal(const char *a, const char *b)
{
    size_t na, nb;
    char *da = slurp(a, &na), *db = slurp(b, &nb);
    int eq = da && db && na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return eq;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}


/* ---- a minimal PNG reader: 8-bit RGB or RGBA, not interlaced; checks chunk CRCs */

struct image {
    uint32_t w, h;
    unsigned char *rgb;            /* w * h * 3 */
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* 0 ok, -1 not a PNG this reader handles */
static int png_decode(const unsigned char *d, size_t n, struct image *im)
{
    memset(im, 0, sizeof *im);
    if (n < 8 || memcmp(d, "\x89PNG\r\n\x1a\n", 8))
        return -1;
    unsigned char *idat = NULL;
    size_t idat_n = 0, pos = 8;
    int bpp = 0, ended = 0;
    while (pos + 12 <= n && !ended) {
        uint32_t len = be32(d + pos);
        if (len > n - pos - 12)
            goto fail;
        const unsigned char *type = d + pos + 4, *body = d + pos + 8;
        if (crc32(crc32(0L, Z_NULL, 0), type, len + 4) != be32(body + len))
            goto fail;
        if (!memcmp(type, "IHDR", 4)) {
            if (len != 13 || body[8] != 8 || (body[9] != 2 && body[9] != 6) || body[10] || body[11] || body[12])
                goto fail;
            im->w = be32(body);
            im->h = be32(body + 4);
            bpp = body[9] == 2 ? 3 : 4;
        } else if (!memcmp(type, "IDAT", 4)) {
            unsigned char *p = realloc(idat, idat_n + len + 1);
            if (!p)
                goto fail;
            idat = p;
            memcpy(idat + idat_n, body, len);
            idat_n += len;
        } else if (!memcmp(type, "IEND", 4)) {
            ended = 1;
        }
        pos += 12 + (size_t)len;
    }
    if (!ended || !bpp || !im->w || !im->h || im->w > 20000 || im->h > 20000)
        goto fail;
    size_t stride = (size_t)im->w * bpp;
    uLongf raw_n = (uLongf)((stride + 1) * im->h);
    unsigned char *raw = malloc(raw_n), *prev = calloc(stride, 1), *cur = malloc(stride);
    im->rgb = malloc((size_t)im->w * im->h * 3);
    if (!raw || !prev || !cur || !im->rgb || uncompress(raw, &raw_n, idat, idat_n) != Z_OK ||
        raw_n != (stride + 1) * im->h) {
        free(raw);
        free(prev);
        free(cur);
        goto fail;
    }
    for (uint32_t y = 0; y < im->h; y++) {
        const unsigned char *line = raw + y * (stride + 1);
        int filter = line[0];
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)bpp ? cur[x - bpp] : 0, b = prev[x], c = x >= (size_t)bpp ? prev[x - bpp] : 0;
            int pred = filter == 0 ? 0 : filter == 1 ? a : filter == 2 ? b : filter == 3 ? (a + b) / 2
                     : paeth(a, b, c);
            if (filter > 4) {
                free(raw);
                free(prev);
                free(cur);
                goto fail;
            }
            cur[x] = (unsigned char)(line[1 + x] + pred);
        }
        for (uint32_t x = 0; x < im->w; x++)
            memcpy(im->rgb + ((size_t)y * im->w + x) * 3, cur + (size_t)x * bpp, 3);
        memcpy(prev, cur, stride);
    }
    free(raw);
    free(prev);
    free(cur);
    free(idat);
    return 0;
fail:
    free(idat);
    free(im->rgb);
    im->rgb = NULL;
    return -1;
}

static int png_load(const char *path, struct image *im)
{
    size_t n;
    char *d = slurp(path, &n);
    if (!d)
        return -1;
    int rc = png_decode((const unsigned char *)d, n, im);
    free(d);
    return rc;
}

static const unsigned char *pixel(const struct image *im, double fx, double fy)
{
    uint32_t x = (uint32_t)(fx * im->w), y = (uint32_t)(fy * im->h);
    if (x >= im->w)
        x = im->w - 1;
    if (y >= im->h)
        y = im->h - 1;
    return im->rgb + ((size_t)y * im->w + x) * 3;
}

/* PNG writer for the reader's own test: each row uses filter (row % 5). */
static void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void chunk(struct as_strbuf *sb, const char *type, const unsigned char *body, uint32_t len)
{
    unsigned char hdr[8], crc[4];
    be32_put(hdr, len);
    memcpy(hdr + 4, type, 4);
    as_strbuf_add(sb, (const char *)hdr, 8);
    if (len)
        as_strbuf_add(sb, (const char *)body, len);
    uLong c = crc32(crc32(0L, Z_NULL, 0), hdr + 4, 4);
    if (len)   /* crc32(c, NULL, 0) returns the initial value, not c */
        c = crc32(c, body, len);
    be32_put(crc, (uint32_t)c);
    as_strbuf_add(sb, (const char *)crc, 4);
}

static void png_encode_rgba(const unsigned char *px, uint32_t w, uint32_t h, struct as_strbuf *out)
{
    size_t stride = (size_t)w * 4;
    unsigned char *raw = malloc((stride + 1) * h);
    for (uint32_t y = 0; y < h; y++) {
        const unsigned char *cur = px + y * stride, *up = y ? px + (y - 1) * stride : NULL;
        unsigned char *o = raw + y * (stride + 1);
        int f = (int)(y % 5);
        o[0] = (unsigned char)f;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= 4 ? cur[x - 4] : 0, b = up ? up[x] : 0, c = up && x >= 4 ? up[x - 4] : 0, p;
            if (f == 0) p = 0;
            else if (f == 1) p = a;
            else if (f == 2) p = b;
            else if (f == 3) p = (a + b) >> 1;
            else { int q = a + b - c; p = abs(q - a) <= abs(q - b) && abs(q - a) <= abs(q - c) ? a
                                         : abs(q - b) <= abs(q - c) ? b : c; }
            o[1 + x] = (unsigned char)(cur[x] - p);
        }
    }
    uLongf zn = compressBound((uLong)((stride + 1) * h));
    unsigned char *z = malloc(zn);
    compress(z, &zn, raw, (uLong)((stride + 1) * h));
    unsigned char ihdr[13] = { 0 };
    be32_put(ihdr, w);
    be32_put(ihdr + 4, h);
    ihdr[8] = 8;
    ihdr[9] = 6;
    as_strbuf_add(out, "\x89PNG\r\n\x1a\n", 8);
    chunk(out, "IHDR", ihdr, 13);
    chunk(out, "IDAT", z, (uint32_t)zn);
    chunk(out, "IEND", NULL, 0);
    free(raw);
    free(z);
}

static void test_plot__png_reader(void)
{
    enum { W = 7, H = 11 };
    unsigned char px[W * H * 4];
    for (int i = 0; i < W * H * 4; i++)
        px[i] = (unsigned char)((i * 37 + (i / 5) * 11) & 0xff);
    struct as_strbuf png = AS_STRBUF_INIT;
    png_encode_rgba(px, W, H, &png);
    struct image im;
    CHECK(png_decode((const unsigned char *)png.buf, png.len, &im) == 0);
    CHECK(im.w == W && im.h == H);
    int bad = 0;
    for (int i = 0; im.rgb && i < W * H; i++)
        bad += memcmp(im.rgb + i * 3, px + i * 4, 3) != 0;
    CHECK_MSG(bad == 0, "%d of %d pixels differ", bad, W * H);
    free(im.rgb);
    png.buf[png.len - 5] ^= 1;   /* IEND's CRC */
    CHECK(png_decode((const unsigned char *)png.buf, png.len, &im) == -1);
    as_strbuf_release(&png);
}

/* ---- the expected figure set */

static const char *const models[] = { "tiny", "synth-b" };
static const char *const heatmaps[] = { "histsim_within_diag", "histsim_within_lower", "histsim_js_similarity",
                                        "jacobian_r_diag", "jacobian_cos_diag" };
static const char *const lines[] = { "monotonicity_violation_rate", "monotonicity_absolute_error",
                                     "monotonicity_relative_error", "patterns_layer_entropy", "activations_q_var",
                                     "activations_k_var", "activations_v_var" };
static const char *const exts[] = { "png", "pdf", "svg" };
#define N_TABLE ((2 * 5 + 7) * 3)   /* the figures the issue asks for, in three formats */

/* Names a figure may have beyond those: fields registered stages list in ops->figures. */
static int from_registry(const char *name)
{
    for (int i = 0; as_stages[i]; i++)
        for (int k = 0; as_stages[i]->figures && as_stages[i]->figures[k]; k++)
            for (int e = 0; e < 3; e++) {
                char want[300];
                snprintf(want, sizeof want, "all_%s_%s.%s", as_stages[i]->name, as_stages[i]->figures[k], exts[e]);
                if (!strcmp(name, want))
                    return 1;
                for (int m = 0; m < 2; m++) {
                    snprintf(want, sizeof want, "%s_%s_%s.%s", models[m], as_stages[i]->name,
                             as_stages[i]->figures[k], exts[e]);
                    if (!strcmp(name, want))
                        return 1;
                }
            }
    return 0;
}

static struct as_strbuf all_made = AS_STRBUF_INIT;   /* what test_plot__every_figure drew */

static int check_figure_file(const char *path, const char *ext)
{
    size_t n;
    char *d = slurp(path, &n);
    int ok = 1;
    CHECK_MSG(d != NULL, "'%s' missing", path);
    if (!d)
        return 0;
    CHECK_MSG(n > MIN_FIGURE_BYTES, "'%s' is only %zu bytes", path, n);
    if (!strcmp(ext, "png"))
        ok = n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8);
    else if (!strcmp(ext, "pdf"))
        ok = n >= 5 && !memcmp(d, "%PDF-", 5) && strstr(d + n - 32 > d ? d + n - 32 : d, "%%EOF");
    else
        ok = !strncmp(d, "<?xml", 5) && strstr(d, "<svg") && strstr(d, "</svg>");
    CHECK_MSG(ok, "'%s' is not a valid %s file", path, ext);
    free(d);
    return ok;
}

static char small[512], incomplete[512];

static void test_plot__every_figure(void)
{
    char dir[512];
    path_join(dir, sizeof dir, tmp, "all");
    struct as_plot_opts o = { dir, AS_PLOT_PNG | AS_PLOT_PDF | AS_PLOT_SVG, NULL, 1 };
    struct as_strbuf *made = &all_made;
    struct as_error err = { AS_OK, "" };
    int rc = as_plot_results(small, &o, made, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    int n_table = 0;
    for (int e = 0; e < 3; e++) {
        char name[256];
        for (int m = 0; m < 2; m++)
            for (int k = 0; k < 5; k++) {
                snprintf(name, sizeof name, "%s_%s.%s", models[m], heatmaps[k], exts[e]);
                CHECK_MSG(as_text_has_line(as_strbuf_str(made), name), "'%s' not made", name);
                n_table += as_text_has_line(as_strbuf_str(made), name);
            }
        for (int k = 0; k < 7; k++) {
            snprintf(name, sizeof name, "all_%s.%s", lines[k], exts[e]);
            CHECK_MSG(as_text_has_line(as_strbuf_str(made), name), "'%s' not made", name);
            n_table += as_text_has_line(as_strbuf_str(made), name);
        }
    }
    CHECK(n_table == N_TABLE);
    /* every file made is valid, and is one of those or a field a stage lists in ops->figures */
    for (const char *p = as_strbuf_str(made); *p;) {
        const char *e = strchr(p, '\n');
        char name[256], path[1024];
        snprintf(name, sizeof name, "%.*s", (int)(e - p), p);
        path_join(path, sizeof path, dir, name);
        check_figure_file(path, strrchr(name, '.') + 1);
        int table = 0;
        for (int x = 0; x < 3; x++) {
            char want[256];
            for (int m = 0; m < 2; m++)
                for (int k = 0; k < 5; k++) {
                    snprintf(want, sizeof want, "%s_%s.%s", models[m], heatmaps[k], exts[x]);
                    table |= !strcmp(want, name);
                }
            for (int k = 0; k < 7; k++) {
                snprintf(want, sizeof want, "all_%s.%s", lines[k], exts[x]);
                table |= !strcmp(want, name);
            }
        }
        CHECK_MSG(table || from_registry(name), "unexpected figure '%s'", name);
        p = e + 1;
    }
}

/* Read a (L, H) float64 field of the fixture through the results reader. */
static double *read_field(const char *file, const char *model, const char *stage, const char *field, int64_t *L,
                          int64_t *H)
{
    struct as_results_file *rf = NULL;
    struct as_results_field_info fi;
    struct as_error err = { AS_OK, "" };
    double *v = NULL;
    *L = *H = 0;
    CHECK_MSG(as_results_open(file, &rf, &err) == 0, "%s", err.msg);
    if (!rf)
        return NULL;
    if (as_results_field_info(rf, model, stage, field, &fi, &err) == 1 && fi.ndim == 2) {
        *L = fi.dims[0];
        *H = fi.dims[1];
        v = malloc((size_t)fi.count * sizeof *v);
        CHECK_MSG(as_results_field_f64(rf, model, stage, field, v, (size_t)fi.count, &err) == 0, "%s", err.msg);
    }
    as_results_close(rf);
    return v;
}

static int viridis_index(const unsigned char *rgb)
{
    int best = -1;
    long bestd = 1L << 30;
    for (int i = 0; i < 256; i++) {
        unsigned char c[3];
        as_plot_viridis((i + 0.5) / 256.0, c);
        long d = 0;
        for (int k = 0; k < 3; k++)
            d += (long)(c[k] - rgb[k]) * (c[k] - rgb[k]);
        if (d < bestd) {
            bestd = d;
            best = i;
        }
    }
    return bestd <= 12 ? best : -1;
}

/* The heatmap's cells: many colours; each cell's centre has its value's viridis colour, with
 * layer 0 at the bottom and head 0 on the left. */
static void test_plot__heatmap_pixels(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/all/synth-b_histsim_within_diag.png", tmp);
    struct image im;
    CHECK_MSG(png_load(path, &im) == 0, "cannot decode '%s'", path);
    if (!im.rgb)
        return;
    CHECK(im.w == 800 && im.h == 800);
    double x0, y0, x1, y1;
    as_plot_heatmap_area(&x0, &y0, &x1, &y1);

    /* distinct colours inside the data area (a 64-bit set of RGB values, linear probing) */
    enum { SET = 1 << 16 };
    uint32_t *set = calloc(SET, sizeof *set);
    int distinct = 0;
    for (double fy = y0 + 0.01; fy < y1 - 0.01; fy += 0.5 / im.h)
        for (double fx = x0 + 0.01; fx < x1 - 0.01; fx += 0.5 / im.w) {
            const unsigned char *p = pixel(&im, fx, fy);
            uint32_t key = 1u << 24 | (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
            for (uint32_t h = (key * 2654435761u) & (SET - 1);; h = (h + 1) & (SET - 1)) {
                if (set[h] == key)
                    break;
                if (!set[h]) {
                    set[h] = key;
                    distinct++;
                    break;
                }
            }
        }
    free(set);
    CHECK_MSG(distinct >= 24, "only %d distinct colours in the heatmap", distinct);

    int64_t L, H;
    double *v = read_field(small, "synth-b", "histsim", "within_diag", &L, &H);
    CHECK_MSG(v != NULL && L == 8 && H == 6, "synth-b histsim/within_diag: (%lld, %lld)", (long long)L, (long long)H);
    int bad = 0;
    for (int64_t i = 0; i < L; i++)
        for (int64_t j = 0; j < H; j++) {
            double fx = x0 + (j + 0.5) / H * (x1 - x0), fy = y1 - (i + 0.5) / L * (y1 - y0);
            int got = viridis_index(pixel(&im, fx, fy)), want = (int)(v[i * H + j] * 256.0);
            if (got < 0 || abs(got - (want > 255 ? 255 : want)) > VIRIDIS_INDEX_TOL) {
                if (bad++ < 5)
                    fprintf(stderr, "  cell layer %lld head %lld: value %.4f wants viridis %d, pixel gives %d\n",
                            (long long)i, (long long)j, v[i * H + j], want, got);
            }
        }
    CHECK_MSG(bad == 0, "%d of %lld cells have the wrong colour", bad, (long long)(L * H));
    /* outside the data area, left of it: white page */
    const unsigned char *w = pixel(&im, 0.01, 0.5);
    CHECK(w[0] == 255 && w[1] == 255 && w[2] == 255);
    free(v);
    free(im.rgb);
}

/* Blank the digits of cairo's /CreationDate (D:YYYYMMDDHHmmSS) so two PDFs can be compared. */
static void blank_pdf_date(char *d, size_t n)
{
    for (char *p = d; p && (size_t)(p - d) + 16 < n; p++) {
        p = memmem(p, n - (size_t)(p - d), "/CreationDate (D:", 17);
        if (!p)
            break;
        for (char *q = p + 17; (size_t)(q - d) < n && *q >= '0' && *q <= '9'; q++)
            *q = '0';
    }
}

/* Draw everything in a fresh process, as `attnstat plot` does: cairo numbers the elements of
 * an SVG with per-process counters. */
static int plot_in_child(const char *dir)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        struct as_plot_opts o = { dir, AS_PLOT_PNG | AS_PLOT_PDF | AS_PLOT_SVG, NULL, 1 };
        struct as_error err = { AS_OK, "" };
        int rc = as_plot_results(small, &o, NULL, &err);
        if (rc)
            fprintf(stderr, "child: %s\n", err.msg);
        _exit(rc ? 1 : 0);
    }
    int st = 0;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Same results, same options: identical PNG and SVG files, PDFs identical but for the date. */
static void test_plot__byte_stable(void)
{
    char d1[512], d2[512];
    path_join(d1, sizeof d1, tmp, "stable1");
    path_join(d2, sizeof d2, tmp, "stable2");
    CHECK(plot_in_child(d1) == 0);
    CHECK(plot_in_child(d2) == 0);
    int n = 0;
    for (const char *p = as_strbuf_str(&all_made); *p;) {
        const char *e = strchr(p, '\n');
        char name[256], a[1024], b[1024];
        snprintf(name, sizeof name, "%.*s", (int)(e - p), p);
        path_join(a, sizeof a, d1, name);
        path_join(b, sizeof b, d2, name);
        if (!strcmp(strrchr(name, '.'), ".pdf")) {
            size_t na, nb;
            char *da = slurp(a, &na), *db = slurp(b, &nb);
            CHECK(da && db);
            if (da && db) {
                blank_pdf_date(da, na);
                blank_pdf_date(db, nb);
                CHECK_MSG(na == nb && !memcmp(da, db, na), "'%s' differs beyond its creation date", name);
            }
            free(da);
            free(db);
        } else {
            CHECK_MSG(file_equal(a, b), "'%s' differs between two runs", name);
        }
        n++;
        p = e + 1;
    }
    CHECK(n >= N_TABLE);
}

static char *read_root_str_attr(const char *file, const char *name, int *is_vlen_utf8)
{
    char *out = NULL;
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0 || H5Aexists(f, name) <= 0) {
        if (f >= 0)
            H5Fclose(f);
        return NULL;
    }
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), t = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    *is_vlen_utf8 = H5Tis_variable_str(t) > 0 && H5Tget_cset(t) == H5T_CSET_UTF8;
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char *s = NULL;
    if (*is_vlen_utf8 && H5Aread(a, mt, &s) >= 0 && s) {
        out = strdup(s);
        H5free_memory(s);
    }
    H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
    return out;
}

/* The results file lists the figures made from it; a later --matrix adds to the list. */
static void test_plot__figures_attribute(void)
{
    int vlen = 0;
    char *fig = read_root_str_attr(small, AS_RESULTS_ATTR_FIGURES, &vlen);
    CHECK_MSG(fig != NULL, "no attribute '" AS_RESULTS_ATTR_FIGURES "' in '%s'", small);
    CHECK(vlen);
    if (!fig)
        return;
    CHECK(as_text_has_line(fig, "tiny_histsim_within_diag.png"));
    CHECK(as_text_has_line(fig, "all_activations_v_var.svg"));
    CHECK(fig[strlen(fig) - 1] != '\n');
    int n_made = count_lines(as_strbuf_str(&all_made));
    CHECK_MSG(count_lines(fig) + 1 == n_made, "%d names, want %d (no duplicates)", count_lines(fig) + 1, n_made);
    free(fig);

    char dir[512];
    path_join(dir, sizeof dir, tmp, "all");
    struct as_plot_opts o = { dir, AS_PLOT_PNG, NULL, 0 };
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_plot_matrix(small, "tiny", 1, 2, &o, NULL, &err) == 0, "%s", err.msg);
    fig = read_root_str_attr(small, AS_RESULTS_ATTR_FIGURES, &vlen);
    CHECK(fig && as_text_has_line(fig, "tiny_qk_mean_layer1_head2.png") && as_text_has_line(fig, "tiny_histsim_within_diag.png"));
    CHECK(fig && count_lines(fig) + 1 == n_made + 1);
    free(fig);
}

/* The mean-score matrix: upper triangle white, lower triangle coloured; from a .npy input and
 * from a synthetic spec. */
static void test_plot__matrix(void)
{
    char dir[512], path[1024];
    path_join(dir, sizeof dir, tmp, "matrix");
    struct as_plot_opts o = { dir, AS_PLOT_PNG | AS_PLOT_PDF, NULL, 0 };
    struct as_strbuf made = AS_STRBUF_INIT;
    struct as_error err = { AS_OK, "" };
    CHECK_MSG(as_plot_matrix(small, "tiny", 2, 3, &o, &made, &err) == 0, "%s", err.msg);
    CHECK_MSG(as_plot_matrix(small, "synth-b", 7, 5, &o, &made, &err) == 0, "%s", err.msg);
    CHECK(as_text_has_line(as_strbuf_str(&made), "tiny_qk_mean_layer2_head3.pdf"));
    CHECK(as_text_has_line(as_strbuf_str(&made), "synth-b_qk_mean_layer7_head5.png"));
    const char *const pngs[] = { "tiny_qk_mean_layer2_head3.png", "synth-b_qk_mean_layer7_head5.png" };
    for (int k = 0; k < 2; k++) {
        path_join(path, sizeof path, dir, pngs[k]);
        check_figure_file(path, "png");
        struct image im;
        CHECK_MSG(png_load(path, &im) == 0, "cannot decode '%s'", path);
        if (!im.rgb)
            continue;
        double x0, y0, x1, y1;
        as_plot_heatmap_area(&x0, &y0, &x1, &y1);
        /* a quarter in from the top-right corner (j > i) and from the bottom-left (j < i) */
        const unsigned char *ur = pixel(&im, x0 + 0.8 * (x1 - x0), y0 + 0.2 * (y1 - y0));
        const unsigned char *ll = pixel(&im, x0 + 0.2 * (x1 - x0), y0 + 0.8 * (y1 - y0));
        CHECK_MSG(ur[0] == 255 && ur[1] == 255 && ur[2] == 255, "%s: upper triangle not white", pngs[k]);
        CHECK_MSG(viridis_index(ll) >= 0, "%s: lower triangle not coloured", pngs[k]);
        free(im.rgb);
    }
    err.status = AS_OK;
    CHECK(as_plot_matrix(small, "tiny", 3, 0, &o, NULL, &err) == -1 && err.status == AS_ERR_USAGE);
    CHECK(as_plot_matrix(small, "nope", 0, 0, &o, NULL, &err) == -1 && err.status == AS_ERR_USAGE);
    as_strbuf_release(&made);
}

/* An incomplete file warns on stderr and still draws what is there: missing units grey, the
 * missing stage (synth-b has no jacobian) skipped. */
static void test_plot__incomplete_warns(void)
{
    char dir[512], errpath[512], path[1024];
    path_join(dir, sizeof dir, tmp, "incomplete");
    path_join(errpath, sizeof errpath, tmp, "stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    struct as_plot_opts o = { dir, AS_PLOT_PNG, NULL, 0 };
    struct as_strbuf made = AS_STRBUF_INIT;
    struct as_error err = { AS_OK, "" };
    int rc = as_plot_results(incomplete, &o, &made, &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CHECK_MSG(rc == 0, "%s", err.msg);
    size_t n;
    char *text = slurp(errpath, &n);
    char want[1024];
    snprintf(want, sizeof want,
             "attnstat: warning: '%s' is not complete: figures show only the units that finished\n", incomplete);
    CHECK_MSG(text && strstr(text, want), "stderr was: %s", text ? text : "(none)");
    free(text);
    CHECK(as_text_has_line(as_strbuf_str(&made), "tiny_jacobian_r_diag.png"));
    CHECK(!as_text_has_line(as_strbuf_str(&made), "synth-b_jacobian_r_diag.png"));
    CHECK(as_text_has_line(as_strbuf_str(&made), "synth-b_histsim_within_diag.png"));
    CHECK(as_text_has_line(as_strbuf_str(&made), "all_monotonicity_violation_rate.png"));

    /* layers 5..7 of synth-b did not finish: grey cells there, colours below */
    path_join(path, sizeof path, dir, "synth-b_histsim_within_diag.png");
    struct image im;
    CHECK(png_load(path, &im) == 0);
    if (im.rgb) {
        double x0, y0, x1, y1;
        as_plot_heatmap_area(&x0, &y0, &x1, &y1);
        const unsigned char *top = pixel(&im, 0.5 * (x0 + x1), y1 - (6.5 / 8.0) * (y1 - y0));
        const unsigned char *bottom = pixel(&im, 0.5 * (x0 + x1), y1 - (1.5 / 8.0) * (y1 - y0));
        CHECK_MSG(top[0] == 217 && top[1] == 217 && top[2] == 217, "layer 6 is %d,%d,%d, not grey", top[0], top[1],
                  top[2]);
        CHECK(viridis_index(bottom) >= 0);
        free(im.rgb);
    }
    as_strbuf_release(&made);
}

static int cli(const char *const *args)
{
    int argc = 0;
    char *argv[16];
    for (; args[argc]; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    return as_plot_cli(argc, argv);
}

static void test_plot__cli_exit_codes(void)
{
    char dir[512], blocker[512], under[600];
    path_join(dir, sizeof dir, tmp, "cli");
    path_join(blocker, sizeof blocker, tmp, "a-file");
    snprintf(under, sizeof under, "%s/sub", blocker);
    FILE *f = fopen(blocker, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    CHECK(cli((const char *[]){ "plot", "--help", NULL }) == 0);
    CHECK(cli((const char *[]){ "plot", NULL }) == 2);
    CHECK(cli((const char *[]){ "plot", small, "--bogus", NULL }) == 2);
    CHECK(cli((const char *[]){ "plot", small, "--format", "gif", NULL }) == 2);
    CHECK(cli((const char *[]){ "plot", small, "--matrix", "tiny", "x", "0", NULL }) == 2);
    CHECK(cli((const char *[]){ "plot", small, "--models", "nope", "-o", dir, NULL }) == 2);
    CHECK(cli((const char *[]){ "plot", "tests/fixtures/results/missing.h5", "-o", dir, NULL }) == 4);
    CHECK(cli((const char *[]){ "plot", "tests/fixtures/README.md", "-o", dir, NULL }) == 4);
    CHECK(cli((const char *[]){ "plot", small, "-o", under, NULL }) == 5);
    CHECK(cli((const char *[]){ "plot", small, "-o", dir, "--format=svg,PNG", "--models", "synth-b", "--std-band",
                                NULL }) == 0);
    char path[1024];
    path_join(path, sizeof path, dir, "synth-b_histsim_within_diag.svg");
    CHECK(access(path, F_OK) == 0);
    path_join(path, sizeof path, dir, "all_monotonicity_absolute_error.png");
    CHECK(access(path, F_OK) == 0);
    path_join(path, sizeof path, dir, "tiny_histsim_within_diag.png");
    CHECK_MSG(access(path, F_OK) != 0, "--models synth-b drew tiny");
    CHECK(cli((const char *[]){ "plot", small, "-o", dir, "--matrix", "synth-b", "0", "1", NULL }) == 0);
}

static void test_plot__formats_parse(void)
{
    unsigned m = 0;
    struct as_error err = { AS_OK, "" };
    CHECK(as_plot_formats_parse("png,pdf,svg", &m, &err) == 0 && m == (AS_PLOT_PNG | AS_PLOT_PDF | AS_PLOT_SVG));
    CHECK(as_plot_formats_parse("SVG", &m, &err) == 0 && m == AS_PLOT_SVG);
    CHECK(as_plot_formats_parse("png,", &m, &err) == -1 && err.status == AS_ERR_USAGE);
    CHECK(as_plot_formats_parse("jpeg", &m, &err) == -1);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "%s/attnstat-plot-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    path_join(small, sizeof small, tmp, "small.h5");
    path_join(incomplete, sizeof incomplete, tmp, "small_incomplete.h5");
    if (copy_file(FIXTURE_DIR "/small.h5", small) || copy_file(FIXTURE_DIR "/small_incomplete.h5", incomplete)) {
        fprintf(stderr, "cannot copy the fixtures of " FIXTURE_DIR " (run from the repository root)\n");
        return 1;
    }
    TEST_RUN(test_plot__png_reader);
    TEST_RUN(test_plot__formats_parse);
    TEST_RUN(test_plot__every_figure);
    TEST_RUN(test_plot__heatmap_pixels);
    TEST_RUN(test_plot__byte_stable);
    TEST_RUN(test_plot__figures_attribute);
    TEST_RUN(test_plot__matrix);
    TEST_RUN(test_plot__incomplete_warns);
    TEST_RUN(test_plot__cli_exit_codes);
    as_strbuf_release(&all_made);
    if (as_test_failures == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove '%s'\n", tmp);
    } else {
        fprintf(stderr, "figures kept in %s\n", tmp);
    }
    return as_test_done();
}
