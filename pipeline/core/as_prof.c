/* as_prof.c: the per-process profile counters. */
#include "as_prof.h"

#include <string.h>

static struct as_prof_counter counters[AS_PROF_MAX];
static int n_counters;

void as_prof_add(const char *name, double seconds, double flops)
{
    int i;
    for (i = 0; i < n_counters; i++)
        if (!strcmp(counters[i].name, name))
            break;
    if (i == n_counters) {
        if (n_counters == AS_PROF_MAX)
            return;
        counters[n_counters++].name = name;
    }
    counters[i].seconds += seconds;
    counters[i].flops += flops;
    counters[i].calls++;
}

const struct as_prof_counter *as_prof_get(int *n)
{
    *n = n_counters;
    return counters;
}
