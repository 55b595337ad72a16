/* monotonicity.h: kernels of the ALiBi monotonicity stage (notebook "Attention Monotone",
 * oracle seed_reference.py:monotonicity).
 *
 * Per layer, from the content scores S (H, T, T):
 *   x[h,i,j] = scale*S[h,i,j] - m_h*(i-j)                  (ALiBi bias, slopes m_h)
 *   A[i,j]   = mean_h causal_softmax_j<=i(x[h,i,:])         (float64)
 *   C[i,k]   = sum_{j<=k} A[i,j]                            (row-wise cumulative sum, sequential)
 *   over all i < j and all k: violation when fl(C[i,k] - C[j,k]) < -eps; statistics of
 *   |C[i,k]-C[j,k]| and |C[i,k]-C[j,k]| / (max(C[i,k],C[j,k]) + 1e-5) over the violations.
 *
 * as_mono_count is the O(T^2 log T) time, O(T) extra memory version; as_mono_count_ref is the
 * direct O(T^3) loop the notebook does (without its O(T^3) memory). Both give the same violation
 * count exactly (the predicate is evaluated on the same doubles); the error statistics agree to
 * ~1e-15 relative (as_mono_count accumulates in double-double, see monotonicity_kernels.c). */
#ifndef AS_STAGES_MONOTONICITY_MONOTONICITY_H
#define AS_STAGES_MONOTONICITY_MONOTONICITY_H

#include <stdint.h>

#include "as_stage.h"

/* Relative-error denominator offset of the notebook: |d| / (max(C[i,k], C[j,k]) + AS_MONO_REL_DELTA). */
#define AS_MONO_REL_DELTA 1e-5
/* `method: auto` uses the _ref kernel for T <= this: measured crossover T ~ 32 (realistic
 * attention) to ~40 (uniform data), where either takes ~25-70 us per layer. */
#define AS_MONO_AUTO_REF_MAX_T 32

enum as_mono_rule { AS_MONO_RULE_STANDARD = 0, AS_MONO_RULE_BLOOM, AS_MONO_RULE_LIST, AS_MONO_RULE_COUNT };

/* Statistics of one layer (the stage's per_layer fields). */
struct as_mono_stats {
    int64_t combinations;          /* T(T-1)/2 * T: pairs i<j times columns k */
    int64_t violations;            /* pairs and columns with fl(C[i,k]-C[j,k]) < -eps */
    double violation_rate;         /* violations / max(combinations, 1) */
    double abs_mean, abs_std;      /* of |C[i,k]-C[j,k]| over violations; std with n-1, 0 if n < 2 */
    double rel_mean, rel_std;      /* of |C[i,k]-C[j,k]| / (max(C[i,k],C[j,k]) + 1e-5), likewise */
};

/* ALiBi slopes m_h, h = 0..H-1, into out (H,):
 *   STANDARD: 2^(-8(h+1)/H)  (the notebook; exact IEEE ops + pow, bit-identical to Python's)
 *   BLOOM:    HF transformers' BLOOM get_slopes, in float64 (HF rounds to float32): p = largest
 *             power of two <= H, base = 2^(-2^-(log2 p - 3)), m_h = base^(h+1) for h < p, then
 *             extra = 2^(-2^-(log2 2p - 3)), m_{p+r} = extra^(2r+1) for r < H-p.
 * rule must be STANDARD or BLOOM; H >= 1. */
void as_mono_slopes(enum as_mono_rule rule, int64_t H, double *out);

/* Add the causal softmax of one head to acc:
 *   x[i,j] = scale*s[i,j] - slope*(i-j) for j <= i; acc[i,j] += softmax_j(x[i,0..i])
 * s: (T, T) row-major content scores of the head, overwritten (scratch); entries j > i unread.
 * acc: (T, T) row-major; entries j > i untouched. Values of s[i, j<=i] must be finite and their
 * scaled and biased values too (the caller checks). */
int as_mono_head_accum(double *s, int64_t T, double scale, double slope, double *acc);

/* The same for rows [i0, i1) of a head: row i at s + (i - i0)*ld (entries j <= i read, ld >= i1), its
 * softmax added to acc + (i - i0)*ld_acc. Row by row the very operations of as_mono_head_accum, so
 * any split into row ranges gives the same bits. */
int as_mono_rows_accum(double *s, int64_t ld, int64_t i0, int64_t i1, double scale, double slope, double *acc,
                       int64_t ld_acc);
/* Rows [i0, i1) of C from their head sums (row i at acc + (i - i0)*ld_acc, entries j <= i): the
 * row-wise cumulative sum of acc / H over all T columns (the entries j > i add 0), into c + (i - i0)*T;
 * bit for bit as_mono_cumsum_t's rows. */
void as_mono_cumsum_rows(const double *acc, int64_t ld_acc, int64_t i0, int64_t i1, int64_t T, int64_t H, double *c);

/* From acc (T, T) row-major = sum over H heads of the softmax (upper triangle ignored):
 * A = acc / H, C = row-wise cumulative sum of A (sequential, j = 0..T-1; acc is overwritten
 * with C), and ct (T, T) = C transposed: ct[k*T + i] = C[i][k]. */
void as_mono_cumsum_t(double *acc, int64_t T, int64_t H, double *ct);
/* Columns [k0, k1) of c (T, T) row-major, transposed in tiles: ct[(k - k0)*T + i] = c[i*T + k]. */
void as_mono_transpose_cols(const double *c, int64_t T, int64_t k0, int64_t k1, double *ct);

/* Violation statistics from ct (T, T), C transposed (column k of C at ct + k*T).
 * eps >= 0 and finite; ct finite. work: as_mono_work_size(T) doubles, scratch. */
int64_t as_mono_work_size(int64_t T);
/* The violations of one column k of C and their double-double sums (|d|, d^2, rel, rel^2 as hi,
 * lo pairs): per column, so columns may be counted anywhere and combined in column order. */
struct as_mono_col {
    int64_t violations;
    double s[8];
};
/* Columns [k0, k1), column k at ct + (k - k0)*T, into rec[0 .. k1-k0). */
void as_mono_count_cols(const double *ct, int64_t T, int64_t k0, int64_t k1, double eps, double *work,
                        struct as_mono_col *rec);
/* The statistics from the records of all T columns, summed in column order. */
void as_mono_combine_cols(const struct as_mono_col *rec, int64_t T, struct as_mono_stats *out);
/* Every column, then combined: as_mono_count_cols(0, T) + as_mono_combine_cols. */
void as_mono_count(const double *ct, int64_t T, double eps, double *work, struct as_mono_stats *out);
/* The same by the direct loop over k, i < j (double accumulation, two-pass std like torch). */
void as_mono_count_ref(const double *ct, int64_t T, double eps, struct as_mono_stats *out);

extern const struct as_stage_ops as_stage_monotonicity;

#endif
