/* as_test.c: the test harness helpers. */
#include "as_test.h"

#include <math.h>

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
