/* scaling_plot.c: the plot of jobs/scaling.sh: speed-up (with the ideal line and the core count)
 * and efficiency + load balance against ranks, from the TSV that jobs/scaling.sh writes.
 *
 *   cc -O2 -o scaling_plot jobs/bench/scaling_plot.c $(pkg-config --cflags --libs plplot) -lm
 *   scaling_plot TABLE.tsv OUT.png [CORES]
 *
 * TSV: lines starting with '#' are comments (the first names the mode: "# strong scaling" or
 * "# weak scaling"); then a header line; then one row per rank count with at least the columns
 * ranks, speedup, efficiency, balance (found by name). PNG through PLplot's pngcairo driver. */
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 64
#define MAX_COLS 32

static int col_index(char names[][64], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: scaling_plot TABLE.tsv OUT.png [CORES]\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        fprintf(stderr, "scaling_plot: cannot open '%s'\n", argv[1]);
        return 4;
    }
    double cores = argc > 3 ? atof(argv[3]) : 0;
    char line[4096], names[MAX_COLS][64], mode[64] = "strong";
    int ncol = 0, n = 0;
    double rows[MAX_ROWS][MAX_COLS];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#') {
            if (strstr(line, "weak"))
                snprintf(mode, sizeof mode, "weak");
            continue;
        }
        char *save = NULL;
        int c = 0;
        for (char *tok = strtok_r(line, "\t", &save); tok && c < MAX_COLS; tok = strtok_r(NULL, "\t", &save), c++) {
            if (!ncol)
                snprintf(names[c], sizeof names[c], "%s", tok);
            else if (n < MAX_ROWS)
                rows[n][c] = atof(tok);
        }
        if (!ncol)
            ncol = c;
        else if (n < MAX_ROWS)
            n++;
    }
    fclose(f);
    int ir = col_index(names, ncol, "ranks"), is = col_index(names, ncol, "speedup"),
        ie = col_index(names, ncol, "efficiency"), ib = col_index(names, ncol, "balance");
    if (n == 0 || ir < 0 || is < 0 || ie < 0 || ib < 0) {
        fprintf(stderr, "scaling_plot: '%s' has no rows with columns ranks, speedup, efficiency, balance\n", argv[1]);
        return 4;
    }
    FILE *probe = fopen(argv[2], "wb"); /* PLplot exits when it cannot open its output */
    if (!probe) {
        fprintf(stderr, "scaling_plot: cannot write '%s'\n", argv[2]);
        return 5;
    }
    fclose(probe);

    PLFLT x[MAX_ROWS], sp[MAX_ROWS], eff[MAX_ROWS], bal[MAX_ROWS], xmax = 1, ymax = 1;
    for (int i = 0; i < n; i++) {
        x[i] = log2(rows[i][ir]);
        sp[i] = rows[i][is];
        eff[i] = rows[i][ie];
        bal[i] = rows[i][ib];
        if (rows[i][ir] > xmax)
            xmax = rows[i][ir];
        if (sp[i] > ymax)
            ymax = sp[i];
    }
    if (xmax > ymax)
        ymax = xmax;
    plsdev("pngcairo");
    plsfnam(argv[2]);
    plspage(100, 100, 1100, 450, 0, 0);
    plscolbg(255, 255, 255);
    plssub(2, 1);
    plinit();
    plscol0(1, 0, 0, 0);         /* axes, text */
    plscol0(2, 31, 119, 180);    /* measured */
    plscol0(3, 150, 150, 150);   /* ideal, cores */
    plscol0(4, 214, 39, 40);     /* balance */

    /* left: speed-up against ranks (log2 axis) */
    double x0 = x[0] - 0.3, x1 = log2(xmax) + 0.3;
    plcol0(1);
    plenv(x0, x1, 0, ymax * 1.1, 0, 0);
    pllab("log2(ranks)", strcmp(mode, "weak") ? "speed-up" : "scaled speed-up",
          strcmp(mode, "weak") ? "strong scaling: speed-up" : "weak scaling: scaled speed-up");
    PLFLT ix[101], iy[101];      /* ideal: speed-up = ranks (a curve on the log2 axis) */
    for (int i = 0; i <= 100; i++) {
        ix[i] = x0 + (x1 - x0) * i / 100.0;
        iy[i] = exp2(ix[i]);
    }
    plcol0(3);
    pllsty(2);
    plline(101, ix, iy);
    if (cores > 0) {
        PLFLT cx[2] = { log2(cores), log2(cores) }, cy[2] = { 0, ymax * 1.1 };
        pllsty(3);
        plline(2, cx, cy);
        plptex(log2(cores) + 0.05, ymax * 1.02, 0, 0, 0, "cores");
    }
    pllsty(1);
    plcol0(2);
    plwidth(2);
    plline(n, x, sp);
    plpoin(n, x, sp, 17);
    plwidth(1);

    /* right: efficiency and load balance */
    plcol0(1);
    plenv(x0, x1, 0, 1.1, 0, 0);
    pllab("log2(ranks)", "fraction", "efficiency (blue), balance (red)");
    plcol0(2);
    plwidth(2);
    plline(n, x, eff);
    plpoin(n, x, eff, 17);
    plcol0(4);
    plline(n, x, bal);
    plpoin(n, x, bal, 4);
    plend();
    return 0;
}
