/* test_math.c: the vectorised exp against libm (the naive twin) and its scalar path. */
#undef NDEBUG
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "as_math.h"
#include "as_test.h"

#define EXP_MAX_ULP 2.0

static double ulp_diff(double a, double b)
{
    if (a == b)
        return 0;
    return fabs(a - b) / fabs(nextafter(b, INFINITY) - b);
}

static void test_math__exp_matches_libm(void)
{
    size_t n = 1000003;
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint64_t s = 7;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(s >> 11) / 9007199254740992.0;
        x[i] = i % 3 == 0 ? -u * 30 : i % 3 == 1 ? (u - 0.5) * 1400 : (u - 0.5) * 1e-6;
    }
    memcpy(y, x, n * sizeof *x);
    as_vexp(y, n);
    double worst = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double want = exp(x[i]);
        if (x[i] < AS_EXP_MIN) { /* flushed to zero below the normal range */
            bad += y[i] != 0.0;
            continue;
        }
        double d = ulp_diff(y[i], want);
        worst = d > worst ? d : worst;
        bad += d > EXP_MAX_ULP;
        bad += y[i] != as_exp1(x[i]); /* the SSE2 and scalar paths give the same bits */
    }
    fprintf(stderr, "  as_vexp: worst error %.2f ulp over %zu values\n", worst, n);
    CHECK_MSG(bad == 0, "%zu values off (worst %.2f ulp)", bad, worst);
    double sp[6] = { 0.0, -0.0, NAN, INFINITY, -INFINITY, 709.9 };
    as_vexp(sp, 6);
    CHECK(sp[0] == 1.0 && sp[1] == 1.0 && isnan(sp[2]) && isinf(sp[3]) && sp[4] == 0.0 && isinf(sp[5]));
    free(x);
    free(y);
}

int main(void)
{
    TEST_RUN(test_math__exp_matches_libm);
    return as_test_done();
}
