/* histsim_spill.h: a per-rank spill file on node-local disk for histsim's packed triangles.
 *
 * The file is created unlinked (O_TMPFILE, else mkstemp + unlink) in a directory, so a killed job
 * leaves nothing behind; closing it gives the space back. The spill only saves a second read of
 * the input: every failure (cannot create, not enough free space, a write or read error, a short
 * read or write) is reported by a return value and never as an error: the caller reads the input
 * again. Nothing here depends on or changes a result. */
#ifndef AS_STAGES_HISTSIM_HISTSIM_SPILL_H
#define AS_STAGES_HISTSIM_HISTSIM_SPILL_H

#include <stddef.h>
#include <stdint.h>

/* Free space a spill must leave on its file system: the larger of these two. */
#define AS_HS_SPILL_MARGIN_MIN ((uint64_t)64 << 20)
#define AS_HS_SPILL_MARGIN_FRAC 0.05

struct as_hs_spill;

/* An empty spill file in dir; NULL when it cannot be created (dir missing, not writable, ...).
 * Owned by the caller: as_hs_spill_close. */
struct as_hs_spill *as_hs_spill_open(const char *dir);
/* Room for n more bytes at the end of the file, when the file system keeps its margin free after
 * them: the offset, or -1. */
int64_t as_hs_spill_reserve(struct as_hs_spill *sp, size_t n);
/* Give back [off, off + n) when it is the last reservation (the file shrinks); else a no-op. */
void as_hs_spill_unreserve(struct as_hs_spill *sp, int64_t off, size_t n);
/* Write / read n bytes at off inside a reservation: 0, or -1 on any error or short transfer. */
int as_hs_spill_write(struct as_hs_spill *sp, const void *buf, size_t n, int64_t off);
int as_hs_spill_read(struct as_hs_spill *sp, void *buf, size_t n, int64_t off);
/* Close (the space is freed); NULL: a no-op. */
void as_hs_spill_close(struct as_hs_spill *sp);

/* Bytes written to and read back from spill files by this process, and failed transfers. */
struct as_hs_spill_stats {
    uint64_t bytes_written, bytes_read;
    uint64_t write_failures, read_failures;
};
void as_hs_spill_stats(struct as_hs_spill_stats *out);

#endif
