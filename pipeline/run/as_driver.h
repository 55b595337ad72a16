/* as_driver.h: a run from config to results: plan, collective prepass, units, gather, write. */
#ifndef AS_PIPELINE_AS_DRIVER_H
#define AS_PIPELINE_AS_DRIVER_H

#include <mpi.h>
#include <stdio.h>

#include "as_config.h"
#include "as_error.h"

struct as_run_opts {
    const char *command_line;      /* recorded in the results */
    int progress;                  /* rank 0 reports progress on stderr */
    int resume;                    /* continue from the journal of an interrupted run */
};

/* COLLECTIVE over comm: run the whole pipeline. Every rank returns the same status; on error,
 * err holds the message of the lowest rank that saw one. */
int as_run_all(MPI_Comm comm, struct as_config *cfg, const struct as_run_opts *opts, struct as_error *err);

/* Check the config and every input (existence, format, dtype, shape) and print the plan for
 * `nranks` ranks to out: models, tensors, units, bytes and cost per rank, as text for people, or
 * with json = 1 as one JSON object for scripts (the schema is in README "validate --json"; keys in
 * a fixed order, stable across versions: fields are only ever added). No MPI, no computing. */
int as_validate(struct as_config *cfg, int nranks, int json, FILE *out, struct as_error *err);

/* Set by the SIGTERM/SIGUSR1 handler; checked between units. */
extern volatile int as_stop_requested;

#endif
