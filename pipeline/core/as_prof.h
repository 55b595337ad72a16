/* as_prof.h: per-process profile counters a stage may feed (time and work of its hot calls, e.g.
 * the GEMMs); the driver gathers them per rank into the summary log and /run/profile_<name>.
 * They never enter /models: results stay independent of timing. */
#ifndef AS_PIPELINE_AS_PROF_H
#define AS_PIPELINE_AS_PROF_H

#define AS_PROF_MAX 8

struct as_prof_counter {
    const char *name;              /* static string, e.g. "activations.gemm" */
    double seconds;
    double flops;
    long long calls;
};

/* Add to counter `name` (created on first use; a static string). */
void as_prof_add(const char *name, double seconds, double flops);
/* The counters of this process; n set to how many. Borrowed. */
const struct as_prof_counter *as_prof_get(int *n);

#endif
