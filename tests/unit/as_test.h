/* as_test.h: a tiny test harness: TEST_RUN(fn), CHECK(cond), CHECK_CLOSE(got, want, atol, rtol),
 * per-element comparison of arrays that prints the first 5 mismatches and the maximum error. */
#ifndef AS_TESTS_AS_TEST_H
#define AS_TESTS_AS_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int as_test_failures;
extern int as_test_checks;

#define CHECK(c) do { as_test_checks++; if (!(c)) { as_test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); } } while (0)
#define CHECK_MSG(c, ...) do { as_test_checks++; if (!(c)) { as_test_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #c); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_CLOSE(got, want, atol, rtol) \
    as_test_close(__FILE__, __LINE__, #got, (double)(got), (double)(want), (atol), (rtol))
#define CHECK_ARRAY(got, want, n, atol, rtol) \
    as_test_array(__FILE__, __LINE__, #got, (got), (want), (n), (atol), (rtol))
#define TEST_RUN(fn) do { int before_ = as_test_failures; fn(); \
    fprintf(stderr, "%s %s\n", as_test_failures == before_ ? "ok  " : "FAIL", #fn); } while (0)

int as_test_close(const char *file, int line, const char *what, double got, double want, double atol,
                  double rtol);
/* |got - want| <= atol + rtol*|want| elementwise; prints first 5 mismatches and the max error. */
int as_test_array(const char *file, int line, const char *what, const double *got, const double *want,
                  size_t n, double atol, double rtol);
/* Test data: *state advanced by as_mix64, then uniform in [0, 1); standard normal by Box-Muller
 * from two uniforms. */
double as_test_urand(uint64_t *state);
double as_test_nrand(uint64_t *state);
/* Write a C-order .npy (format 1.0, numpy's header layout) of `descr` ("<f2", "<f4", "<f8")
 * holding the nd-dim shape's elements from data. 0, or -1 when the file cannot be written. */
int as_test_write_npy(const char *path, const char *descr, int nd, const int64_t *shape, const void *data);
/* Normalised mean squared error of got vs want (ggml-style). */
double as_test_nmse(const double *got, const double *want, size_t n);
/* Prints "N passed, M failed" and returns the exit status. */
int as_test_done(void);

#endif
