/* as_mpi.c: checked MPI calls, the fatal path through MPI_Abort, agreement on errors. */
#include "as_mpi.h"

#include "as_util.h"

#include <stdint.h>
#include <stdio.h>

void as_mpi_fail(int rc, const char *call, const char *file, int line)
{
    char msg[MPI_MAX_ERROR_STRING] = "unknown MPI error";
    int len = 0, rank = -1;
    MPI_Error_string(rc, msg, &len);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "attnstat: error: rank %d: MPI call %s failed at %s:%d: %s\n", rank, call, file, line, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, AS_EXIT_INTERNAL);
    for (;;) /* MPI_Abort does not return */
        ;
}

static void abort_job(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
}

void as_mpi_init_all(void)
{
    AS_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    as_fatal_set_hook(abort_job);
}

int as_mpi_rank(MPI_Comm comm)
{
    int r;
    AS_MPI(MPI_Comm_rank(comm, &r));
    return r;
}

int as_mpi_size(MPI_Comm comm)
{
    int n;
    AS_MPI(MPI_Comm_size(comm, &n));
    return n;
}

/* Every rank takes the error of rank `first` (INT32_MAX: nobody failed). */
static int take_error(MPI_Comm comm, int first, struct as_error *err)
{
    if (first == INT32_MAX)
        return 0;
    int st = (int)err->status;
    AS_MPI(MPI_Bcast(&st, 1, MPI_INT, first, comm));
    AS_MPI(MPI_Bcast(err->msg, sizeof err->msg, MPI_CHAR, first, comm));
    err->status = (enum as_status)st;
    return -1;
}

int as_mpi_agree_all(MPI_Comm comm, struct as_error *err)
{
    int rank = as_mpi_rank(comm);
    int mine = err->status != AS_OK ? rank : INT32_MAX, first;
    AS_MPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm));
    return take_error(comm, first, err);
}

int as_mpi_agree_first_all(MPI_Comm comm, int64_t key, struct as_error *err)
{
    int rank = as_mpi_rank(comm);
    int64_t mine = err->status != AS_OK ? key : INT64_MAX, low;
    AS_MPI(MPI_Allreduce(&mine, &low, 1, MPI_INT64_T, MPI_MIN, comm));
    int who = err->status != AS_OK && mine == low ? rank : INT32_MAX, first;
    AS_MPI(MPI_Allreduce(&who, &first, 1, MPI_INT, MPI_MIN, comm));
    return take_error(comm, first, err);
}

void as_mpi_bcast_bytes_all(MPI_Comm comm, int root, unsigned char **buf, uint64_t *n)
{
    AS_MPI(MPI_Bcast(n, 1, MPI_UINT64_T, root, comm));
    if (as_mpi_rank(comm) != root)
        *buf = as_xmalloc((size_t)*n);
    for (uint64_t off = 0; off < *n; off += (uint64_t)1 << 30) {
        uint64_t c = *n - off < ((uint64_t)1 << 30) ? *n - off : ((uint64_t)1 << 30);
        AS_MPI(MPI_Bcast(*buf + off, (int)c, MPI_BYTE, root, comm));
    }
}
