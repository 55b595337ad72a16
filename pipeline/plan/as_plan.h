/* as_plan.h: work units and their assignment to ranks. Pure functions: no MPI, testable for any
 * rank count in one process. */
#ifndef AS_PIPELINE_AS_PLAN_H
#define AS_PIPELINE_AS_PLAN_H

#include <stddef.h>
#include <stdint.h>

struct as_unit_desc {
    int model;                     /* index into the config's models */
    int64_t layer;
    double cost;                   /* estimated, relative */
    int64_t bytes;                 /* input bytes the unit reads */
};

/* Assign n units to nranks ranks: longest-processing-time first (units by decreasing cost, ties
 * by (model, layer)), each to the least-loaded rank (ties: lowest rank). owner[i] receives the
 * rank of unit i; load[r] (may be NULL, nranks entries) the summed cost per rank. Deterministic. */
void as_plan_assign(const struct as_unit_desc *units, size_t n, int nranks, int *owner, double *load);

/* Load balance of an assignment: mean load / max load (1 = perfect). */
double as_plan_balance(const double *load, int nranks);

#endif
