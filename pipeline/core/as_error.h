/* as_error.h: the one error type of attnstat, its status codes and process exit codes. */
#ifndef AS_PIPELINE_AS_ERROR_H
#define AS_PIPELINE_AS_ERROR_H

#include <stdarg.h>

enum as_status {
    AS_OK = 0,
    AS_ERR_USAGE,   /* bad command line */
    AS_ERR_CONFIG,  /* bad YAML config: syntax, unknown key, wrong type, missing key */
    AS_ERR_INPUT,   /* an input tensor file: missing, malformed, hostile, wrong shape, NaN/Inf */
    AS_ERR_IO,      /* cannot write results, log or journal */
    AS_ERR_NOMEM,   /* allocation failed */
    AS_ERR_MPI,     /* an MPI call failed */
    AS_ERR_HDF5,    /* an HDF5 call failed */
    AS_ERR_STOPPED, /* stopped by SIGTERM/SIGUSR1: resumable */
    AS_ERR_INTERNAL,/* a bug */
    AS_STATUS_COUNT
};

/* Process exit codes, documented in README.md ("Exit codes"). */
enum as_exit {
    AS_EXIT_OK = 0,
    AS_EXIT_USAGE = 2,
    AS_EXIT_CONFIG = 3,
    AS_EXIT_INPUT = 4,
    AS_EXIT_IO = 5,
    AS_EXIT_INTERNAL = 6,
    AS_EXIT_NOMEM = 7,      /* out of memory: fewer ranks per node, then --resume */
    AS_EXIT_RESUMABLE = 75 /* EX_TEMPFAIL: run again with --resume */
};

#define AS_ERROR_MSG_MAX 512

struct as_error {
    enum as_status status;
    char msg[AS_ERROR_MSG_MAX];
};

/* Fill *err (may be NULL) and return -1, so call sites read `return as_error_set(...)`.
 * The message is lowercase, git style, and names the file/key/model/layer concerned. */
int as_error_set(struct as_error *err, enum as_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend context ("model 'x' layer 3: ") to an error already set. Returns -1. */
int as_error_prefix(struct as_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void as_error_clear(struct as_error *err);
const char *as_status_name(enum as_status status);

/* A command-line mistake: "attnstat: <message>" then the usage text on stderr. Returns
 * AS_EXIT_USAGE, so a command reads `return as_usage_error(usage, "...", ...)`. */
int as_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int as_status_exit_code(enum as_status status);

/* Fatal errors end the whole job: one line "attnstat: error: <message>" on stderr, then the hook
 * set with as_fatal_set_hook (MPI_Abort(MPI_COMM_WORLD, code) once MPI runs: pipeline/mpi), else
 * exit(code). Only for what no caller can handle: programmer bugs and out of memory.
 *
 * Out-of-memory policy: memory that a run needs comes from as_xmalloc/as_xcalloc/as_xrealloc
 * (pipeline/core/as_util.h), which end the job with AS_EXIT_NOMEM on failure, naming the bytes and
 * the place; the journal keeps every finished unit, so `run --resume` on nodes with more memory
 * per rank continues. No other code tests an allocation for NULL, except where a smaller
 * allocation is a real alternative (an optional cache), which then falls back silently. */
void as_fatal(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void as_fatal_set_hook(void (*hook)(int code));

/* Programmer bugs: report file:line and end the whole job (exit 6). Never for bad input. */
void as_bug(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
#define AS_BUG(...) as_bug(__FILE__, __LINE__, __VA_ARGS__)
#define AS_ASSERT(c) do { if (!(c)) as_bug(__FILE__, __LINE__, "assertion failed: %s", #c); } while (0)

#endif
