/* as_journal.h: what survives a killed job. Every rank appends a record of each (model, stage,
 * layer) it finished to its own file in OUTPUT.journal/ (written at once, so it survives any kill
 * of the process; fdatasync'd at most once a second and at every stop, so a node that dies loses
 * at most a second of units); rank 0 also records the reduced prepass counters of every round (a
 * stage's prepass state is a deterministic function of them, so a resume replays it without
 * reading any data). Records are keyed by the (model, stage) key of the plan (what determines the
 * results: pipeline/plan/as_plan.h), not by positions in the config, so `run --resume` reuses them
 * whatever else changed in the config, at any rank count, and the results are bitwise identical to
 * an uninterrupted run. A record torn by a kill is detected by its hash and ignored.
 *
 * Record: 48-byte header { u32 magic "ASJ2", u32 kind, u64 key[2], i64 index, u64 payload bytes,
 * u64 hash of header fields and payload } then the payload:
 *   kind 0 (header): a description of the run, for people (first record of every file)
 *   kind 1 (unit):   index = layer; the row of that (model, stage) for that layer
 *   kind 2 (prepass): index = round; u64 count, then (u64 index, u64 value) for non-zero counters
 *   kind 3 (part):   index = layer; i64 part0, i64 part1, then the bytes of those last-phase parts
 *                    of a layer split into units finer than it (as_stage.h) */
#ifndef AS_PIPELINE_AS_JOURNAL_H
#define AS_PIPELINE_AS_JOURNAL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "as_util.h"

enum as_jkind { AS_JREC_HEADER = 0, AS_JREC_UNIT = 1, AS_JREC_PREPASS = 2, AS_JREC_PART = 3, AS_JREC_KIND_COUNT };

struct as_jrec {
    enum as_jkind kind;
    uint64_t key[2];               /* the (model, stage) key; 0 for the header */
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
    struct as_strbuf staged;       /* records added, written by the next flush */
};

#define AS_JOURNAL_SYNC_SECONDS 1.0

/* COLLECTIVE. Open the journal of results file `output`. Fresh run (resume = 0): remove an old
 * journal and start one. Resume: rank 0 loads every valid record of the earlier attempts, and they
 * are broadcast so every rank iterates the same list. `desc` goes into this attempt's header. */
int as_journal_open_all(MPI_Comm comm, struct as_journal *j, const char *output, const char *desc, int resume,
                        struct as_error *err);
/* Iterate the loaded records: returns 1 and fills rec, or 0 at the end. */
int as_journal_next(struct as_journal *j, struct as_jrec *rec);
/* Stage a record; as_journal_flush writes every staged record with one write() (so a unit's
 * records land together) and syncs at most once a second. */
void as_journal_add(struct as_journal *j, enum as_jkind kind, const uint64_t key[2], int64_t index,
                    const void *payload, uint64_t len);
int as_journal_flush(struct as_journal *j, struct as_error *err);
/* Add and flush one record. */
int as_journal_append(struct as_journal *j, enum as_jkind kind, const uint64_t key[2], int64_t index,
                      const void *payload, uint64_t len, struct as_error *err);
/* Sparse prepass payload helpers. */
int as_journal_prepass(struct as_journal *j, const uint64_t key[2], int64_t round, const uint64_t *sum, size_t n,
                       struct as_error *err);
/* Expand a prepass record into sum[n] (zeroed first); -1 if it does not fit n. */
int as_journal_prepass_read(const struct as_jrec *rec, uint64_t *sum, size_t n);
/* Close this rank's file. */
void as_journal_close(struct as_journal *j);
/* COLLECTIVE: after a complete results file, remove the journal (rank 0). */
void as_journal_remove_all(MPI_Comm comm, struct as_journal *j);

#endif
