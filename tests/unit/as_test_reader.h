/* as_test_reader.h: compare what a reader returns for a hyperslab with the tensor's known values. */
#ifndef AS_TESTS_AS_TEST_READER_H
#define AS_TESTS_AS_TEST_READER_H

#include "as_reader.h"

/* want[i] for the slab start/count of a C-order tensor of `shape` whose values are `all` */
void as_test_slab_expect(int nd, const int64_t *shape, const double *all, const int64_t *start,
                         const int64_t *count, double *want);
/* Read slab start/count as float64 and float32 and compare exactly with `all`. */
void as_test_check_slab(struct as_tensor_file *tf, const double *all, const int64_t *start, const int64_t *count,
                        const char *what);
/* The series every reader test reads: the whole tensor; for 4-D tensors one layer, one
 * (layer, head) and one head of every layer; a strided middle range; the last element. */
void as_test_check_slabs(struct as_tensor_file *tf, const double *all);

#endif
