/* as_journal.h: what survives a killed job. Every rank appends a record of each unit it
 * finished to its own file in OUTPUT.journal/ (written at once, so it survives any kill of the
 * process; fdatasync'd at most once a second and at every stop, so a node that dies loses at
 * most a second of units); rank 0 also records the reduced prepass counters
 * of every round (a stage's prepass state is a deterministic function of them, so a resume
 * replays it without reading any data). `run --resume` loads all records, refuses a config whose
 * results-relevant content changed (saying what), computes only what is missing, and gives a
 * results file bitwise identical to an uninterrupted run. A record torn by a kill is detected by
 * its hash and ignored.
 *
 * Record: 40-byte header { u32 magic "ASJ1", u32 kind, i32 model, i32 stage, i64 index,
 * u64 payload bytes, u64 hash of header fields and payload } then the payload:
 *   kind 0 (header): the plan description text (first record of every file)
 *   kind 1 (unit):   index = layer; the rows of every active stage for that layer, stage order
 *   kind 2 (prepass): index = round; u64 count, then (u64 index, u64 value) for non-zero counters */
#ifndef AS_PIPELINE_AS_JOURNAL_H
#define AS_PIPELINE_AS_JOURNAL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "as_error.h"

enum as_jkind { AS_JREC_HEADER = 0, AS_JREC_UNIT = 1, AS_JREC_PREPASS = 2, AS_JREC_KIND_COUNT };

struct as_jrec {
    enum as_jkind kind;
    int32_t model, stage;
    int64_t index;
    const unsigned char *payload;  /* borrowed from the loaded blob */
    uint64_t len;
};

struct as_journal {
    int fd;                        /* this rank's file, -1 when closed */
    char dir[4200];
    unsigned char *blob;           /* loaded records (identical on every rank), owned */
    size_t blob_len;
    size_t pos;                    /* iteration cursor */
    double last_sync;              /* as_now() of the last fdatasync */
};

#define AS_JOURNAL_SYNC_SECONDS 1.0

/* COLLECTIVE. Open the journal of results file `output`. Fresh run (resume = 0): remove an old
 * journal and start one. Resume: rank 0 loads every record of the earlier attempts and checks
 * that their plan description equals `desc` (else AS_ERR_CONFIG naming the first line that
 * differs); the records are broadcast so every rank iterates the same list. */
int as_journal_open_all(MPI_Comm comm, struct as_journal *j, const char *output, const char *desc, int resume,
                        struct as_error *err);
/* Iterate the loaded records: returns 1 and fills rec, or 0 at the end. */
int as_journal_next(struct as_journal *j, struct as_jrec *rec);
/* Append a record and make it durable (fdatasync) before returning. */
int as_journal_append(struct as_journal *j, enum as_jkind kind, int32_t model, int32_t stage, int64_t index,
                      const void *payload, uint64_t len, struct as_error *err);
/* Sparse prepass payload helpers. */
int as_journal_prepass(struct as_journal *j, int32_t model, int32_t stage, int64_t round, const uint64_t *sum,
                       size_t n, struct as_error *err);
/* Expand a prepass record into sum[n] (zeroed first); -1 if it does not fit n. */
int as_journal_prepass_read(const struct as_jrec *rec, uint64_t *sum, size_t n);
/* Close this rank's file. */
void as_journal_close(struct as_journal *j);
/* COLLECTIVE: after a complete results file, remove the journal (rank 0). */
void as_journal_remove_all(MPI_Comm comm, struct as_journal *j);

#endif
