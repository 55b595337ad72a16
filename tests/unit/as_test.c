/* as_test.c: the test harness helpers. */
#include "as_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "as_util.h"

int as_test_failures;
int as_test_checks;

int as_test_close(const char *file, int line, const char *what, double got, double want, double atol,
                  double rtol)
{
    as_test_checks++;
    double d = fabs(got - want);
    if (!(d <= atol + rtol * fabs(want)) && !(isnan(got) && isnan(want)) && !(got == want)) {
        as_test_failures++;
        fprintf(stderr, "%s:%d: %s = %.17g, want %.17g (|d| = %.3g)\n", file, line, what, got, want, d);
        return 0;
    }
    return 1;
}

int as_test_array(const char *file, int line, const char *what, const double *got, const double *want,
                  size_t n, double atol, double rtol)
{
    as_test_checks++;
    size_t bad = 0;
    double maxd = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        int same = got[i] == want[i] || (isnan(got[i]) && isnan(want[i]));
        if (!same && d > maxd)
            maxd = d;
        if (!same && !(d <= atol + rtol * fabs(want[i]))) {
            if (bad < 5)
                fprintf(stderr, "%s:%d: %s[%zu] = %.17g, want %.17g\n", file, line, what, i, got[i], want[i]);
            bad++;
        }
    }
    if (bad) {
        as_test_failures++;
        fprintf(stderr, "%s:%d: %s: %zu of %zu elements differ, max |d| = %.3g\n", file, line, what, bad, n,
                maxd);
        return 0;
    }
    return 1;
}

double as_test_nmse(const double *got, const double *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return den > 0 ? num / den : num;
}

int as_test_done(void)
{
    printf("%d passed, %d failed\n", as_test_checks - as_test_failures, as_test_failures);
    return as_test_failures ? 1 : 0;
}

double as_test_urand(uint64_t *state)
{
    *state = as_mix64(*state);
    return as_u01(*state);
}

double as_test_nrand(uint64_t *state)
{
    double u1 = as_test_urand(state), u2 = as_test_urand(state);
    return sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300)) * cos(6.283185307179586 * u2);
}

int as_test_write_npy(const char *path, const char *descr, int nd, const int64_t *shape, const void *data)
{
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    int64_t numel = 1;
    for (int d = 0; d < nd; d++) {
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%s%lld", d ? ", " : "", (long long)shape[d]);
        numel *= shape[d];
    }
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%s), }", nd == 1 ? "," : "");
    while ((10 + n + 1) % 64) /* the data starts on a 64-byte boundary */
        hdr[n++] = ' ';
    hdr[n++] = '\n';
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8) };
    size_t esz = (size_t)atoi(descr + 2);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n &&
             fwrite(data, esz, (size_t)numel, f) == (size_t)numel;
    return fclose(f) == 0 && ok ? 0 : -1;
}
