/* as_results_impl.h: HDF5-level helpers shared by the files of pipeline/results/ (serial writes
 * of the merge and of as_results_record_figures, the reader's handle for H5Ocopy). Not for use
 * outside pipeline/results/: other layers go through as_results_read.h. */
#ifndef AS_RESULTS_AS_RESULTS_IMPL_H
#define AS_RESULTS_AS_RESULTS_IMPL_H

#include <hdf5.h>
#include <stdint.h>

#include "as_results_read.h"

/* The HDF5 file handle of an open reader; borrowed, valid until as_results_close. */
hid_t as_results_hid(const struct as_results_file *r);

/* Create scalar attribute `name` on obj: a variable-length UTF-8 string, or an int64 (stored
 * little-endian). 0, or -1 (nothing reported: the caller says what it was writing). */
int as_results_h5_attr_str_write(hid_t obj, const char *name, const char *val);
int as_results_h5_attr_i64_write(hid_t obj, const char *name, int64_t v);

/* A scalar string attribute of obj (variable or fixed length) as a malloc'd string in *out
 * (owned by the caller). 1 read, 0 absent, -1 not a scalar string or unreadable (*out NULL). */
int as_results_h5_attr_str_read(hid_t obj, const char *name, char **out);

/* Silence HDF5's automatic error printing, and restore the caller's handler. */
struct as_results_h5_quiet {
    H5E_auto2_t fn;
    void *data;
};
void as_results_h5_quiet_begin(struct as_results_h5_quiet *q);
void as_results_h5_quiet_end(const struct as_results_h5_quiet *q);

#endif
