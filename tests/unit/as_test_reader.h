/* as_test_reader.h: compare what a reader returns for a hyperslab with the tensor's known values. */
#ifndef AS_TESTS_AS_TEST_READER_H
#define AS_TESTS_AS_TEST_READER_H

#include <jansson.h>

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

/* ---- the fixtures of tests/fixtures/readers (tests/gen/make_reader_fixtures.py), described by
 * its values.json: tensors with their values, each file's listing, hostile files with the
 * words their message must hold. The checks below take a reader and the file extension of
 * its fixtures. */
#define AS_TEST_READER_FIXTURES "tests/fixtures/readers/"

json_t *as_test_reader_values(void);  /* loaded once; NULL (and a failed CHECK) if unreadable */
void as_test_reader_values_release(void);
int as_test_has_ext(const char *file, const char *ext);

/* what list() reported: the first 16 keys and extras, and the count */
struct as_test_listed {
    char keys[16][64];
    char extras[16][64];
    int n;
};
void as_test_list_cb(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra);

/* Every tensor of the reader's fixtures: dtype, shape, nbytes, every value through the slab
 * series in float32 and float64, and a slab past the shape or an unsupported output type
 * rejected; hook (may be NULL) checks more of the info. Returns how many tensors. */
typedef void (*as_test_tensor_hook)(const char *path, const char *key, const struct as_tensor_info *ti,
                                    json_t *vals);
int as_test_reader_tensors(const struct as_reader_ops *ops, const char *ext, as_test_tensor_hook hook);
/* list() of every fixture file gives values.json's keys in order; check (may be NULL) sees
 * what was listed. */
void as_test_reader_listing(const struct as_reader_ops *ops, const char *ext,
                            void (*check)(const char *file, const struct as_test_listed *l));
/* open() refuses path (key) with AS_ERR_INPUT and a one-line message naming path and holding
 * expect (may be NULL). */
void as_test_check_rejected(const struct as_reader_ops *ops, const char *path, const char *key, const char *expect);
/* Every hostile fixture is rejected; list() of a bad_* file fails naming it or lists nothing.
 * Returns how many files. */
int as_test_reader_hostile(const struct as_reader_ops *ops, const char *ext);
/* A copy of `fixture` under a name without an extension is recognized by its magic (and,
 * with open_it, opens). */
void as_test_reader_magic(const struct as_reader_ops *ops, const char *fixture, int open_it);

#endif
