/* as_mpi.h: every MPI call of attnstat goes through AS_MPI, and every rank-wide decision through
 * as_mpi_agree_all. MPI_COMM_WORLD is switched to MPI_ERRORS_RETURN at start-up
 * (as_mpi_init_all), so a failing call returns here: AS_MPI reports the call, its place and
 * MPI_Error_string on one line and ends the whole job with MPI_Abort (exit 6). Internal errors
 * (AS_BUG, AS_ASSERT, out of memory) end the job the same way once as_mpi_init_all has run. */
#ifndef AS_MPI_AS_MPI_H
#define AS_MPI_AS_MPI_H

#include <mpi.h>
#include <stdint.h>

#include "as_error.h"

/* Report a failed MPI call and MPI_Abort the job. */
void as_mpi_fail(int rc, const char *call, const char *file, int line) __attribute__((noreturn));

#define AS_MPI(call)                                                                             \
    do {                                                                                         \
        int as_mpi_rc_ = (call);                                                                 \
        if (as_mpi_rc_ != MPI_SUCCESS)                                                           \
            as_mpi_fail(as_mpi_rc_, #call, __FILE__, __LINE__);                                  \
    } while (0)

/* COLLECTIVE (MPI_COMM_WORLD): after MPI_Init, return MPI errors to the caller and route fatal
 * internal errors (as_bug, as_xcalloc's out of memory) to MPI_Abort, so no rank is left waiting. */
void as_mpi_init_all(void);

/* COLLECTIVE: every rank learns whether any rank has err set; if so, every rank gets the status
 * and message of the lowest failing rank and -1 is returned. */
int as_mpi_agree_all(MPI_Comm comm, struct as_error *err);

/* COLLECTIVE: like as_mpi_agree_all, but the error kept is that of the lowest `key` (ties: lowest
 * rank), e.g. the lowest failing layer, so the message does not depend on the rank count. */
int as_mpi_agree_first_all(MPI_Comm comm, int64_t key, struct as_error *err);

/* COLLECTIVE: rank root's n bytes at *buf reach every rank: *n is broadcast, the others get
 * *buf = as_xmalloc(*n) (owned by the caller), and the bytes go in pieces of at most 1 GiB (MPI's
 * int counts). Root keeps its *buf. */
void as_mpi_bcast_bytes_all(MPI_Comm comm, int root, unsigned char **buf, uint64_t *n);

/* This process's rank in comm and the size of comm (checked). */
int as_mpi_rank(MPI_Comm comm);
int as_mpi_size(MPI_Comm comm);

#endif
