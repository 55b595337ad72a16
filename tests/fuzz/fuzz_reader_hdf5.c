/* fuzz_reader_hdf5.c: the HDF5 input reader under libFuzzer (same harness as fuzz_reader_npy.c).
 * libhdf5 itself is not instrumented: findings inside it are reported upstream, not fixed here.
 * Run with ASAN_OPTIONS=allocator_may_return_null=1: a hostile file makes libhdf5 ask for
 * exabytes, which in production fails with NULL and an HDF5 error, as it should.
 *
 *   ASAN_OPTIONS=allocator_may_return_null=1 fuzz_reader_hdf5 -max_total_time=120 corpus/ tests/fuzz/corpus_hdf5 */
#define AS_FUZZ_HDF5 1
#include "fuzz_reader_npy.c"
