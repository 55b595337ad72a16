/* as_run.h: the command-line entry point (run, validate, inspect, summary, plot, merge). */
#ifndef AS_PIPELINE_AS_RUN_H
#define AS_PIPELINE_AS_RUN_H

/* Parses argv, initialises MPI when the command needs it, runs it; returns the process exit code
 * (enum as_exit). */
int as_main(int argc, char **argv);

#endif
