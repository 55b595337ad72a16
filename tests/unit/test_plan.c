/* test_plan.c: the LPT assignment as a pure function, for 1, 2, 3 and 7 ranks in one process. */
#undef NDEBUG
#include <stdlib.h>
#include <string.h>

#include "as_plan.h"
#include "as_test.h"

static void test_plan__every_unit_once_and_balanced(void)
{
    /* two models of different sizes, like 30x32 heads next to 70x112 */
    struct as_unit_desc u[100];
    size_t n = 0;
    for (int l = 0; l < 30; l++)
        u[n++] = (struct as_unit_desc){ 0, l, 32.0 * 65536, 32 * 65536 * 4 };
    for (int l = 0; l < 70; l++)
        u[n++] = (struct as_unit_desc){ 1, l, 112.0 * 65536, 112 * 65536 * 4 };
    int ranks[] = { 1, 2, 3, 7 };
    for (int k = 0; k < 4; k++) {
        int nr = ranks[k], owner[100], owner2[100];
        double load[7], total = 0, sum = 0;
        as_plan_assign(u, n, nr, owner, load);
        as_plan_assign(u, n, nr, owner2, NULL);
        CHECK(memcmp(owner, owner2, sizeof owner) == 0); /* deterministic */
        for (size_t i = 0; i < n; i++) {
            CHECK(owner[i] >= 0 && owner[i] < nr);
            total += u[i].cost;
        }
        for (int r = 0; r < nr; r++)
            sum += load[r];
        CHECK_CLOSE(sum, total, 0, 1e-12);
        double bal = as_plan_balance(load, nr);
        CHECK_MSG(bal > 0.95, "np=%d balance %.3f", nr, bal);
    }
}

static void test_plan__more_ranks_than_units(void)
{
    struct as_unit_desc u[2] = { { 0, 0, 1, 1 }, { 0, 1, 1, 1 } };
    int owner[2];
    double load[7];
    as_plan_assign(u, 2, 7, owner, load);
    CHECK(owner[0] == 0 && owner[1] == 1);
    CHECK(load[6] == 0);
    CHECK(as_plan_balance(load, 7) < 0.3);
}

static void test_plan__ties_by_model_then_layer(void)
{
    struct as_unit_desc u[4] = { { 1, 0, 5, 0 }, { 0, 1, 5, 0 }, { 0, 0, 5, 0 }, { 1, 1, 5, 0 } };
    int owner[4];
    as_plan_assign(u, 4, 2, owner, NULL);
    /* order (0,0) (0,1) (1,0) (1,1) -> ranks 0 1 0 1 */
    CHECK(owner[2] == 0 && owner[1] == 1 && owner[0] == 0 && owner[3] == 1);
}

int main(void)
{
    TEST_RUN(test_plan__every_unit_once_and_balanced);
    TEST_RUN(test_plan__more_ranks_than_units);
    TEST_RUN(test_plan__ties_by_model_then_layer);
    return as_test_done();
}
