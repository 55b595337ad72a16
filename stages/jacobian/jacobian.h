/* jacobian.h: softmax-Jacobian decomposition kernels (diagonal vs lateral part of the softmax
 * backward), after the softmax Jacobian analysis script (seed 004) and seed_reference.jacobian.
 *
 * For one (layer, head), with A = attention probabilities and g = dL/dA, both (B, T, T):
 *   s[b,i]     = sum_j A[b,i,j] g[b,i,j]
 *   g_full     = A * (g - s)                 (the softmax backward, lateral sum included)
 *   g_diag     = A * (1 - A) * g             (diagonal only, sigmoid-like)
 *   r_diag     = mean_b |g_diag[b]|^2 / (mean_b |g_full[b]|^2 + 1e-12),  r_offdiag = 1 - r_diag
 *   cos_diag   = mean_b cos(g_diag[b], g_full[b]),  cos_ste = mean_b cos(g[b], g_full[b]),
 *                each sample flattened to T*T values; cos is torch 1.13's cosine_similarity:
 *                x.y / (max(|x|, 1e-8) * max(|y|, 1e-8))  (each norm clamped on its own)
 *   a_mean     = mean of the entries of A that are > 0 (NaN if none, like torch)
 *   entropy    = mean over (b, i) of -sum_j A log(A + 1e-10)
 * Rows are all T entries (whatever lies above the diagonal is used as given: g is non-zero there).
 * A row is "bad" when |sum_j A[b,i,j] - 1| > row_tol (or the sum is not finite).
 *
 * Everything is accumulated in double. The streaming kernel takes one (b, h) slab at a time,
 * in one pass over memory (each row is walked twice while it sits in L1). */
#ifndef AS_STAGES_JACOBIAN_JACOBIAN_H
#define AS_STAGES_JACOBIAN_JACOBIAN_H

#include <stdint.h>

#define AS_JACOBIAN_COS_EPS 1e-8   /* torch.nn.functional.cosine_similarity's default eps */
#define AS_JACOBIAN_LOG_EPS 1e-10  /* inside the entropy's log */
#define AS_JACOBIAN_R_EPS 1e-12    /* in r_diag's denominator */

/* The statistics of one (layer, head). */
struct as_jacobian_head {
    double a_mean, entropy, r_diag, r_offdiag, cos_diag, cos_ste;
    int64_t bad_rows;              /* rows of A whose sum is off by more than row_tol */
    int64_t nonfinite;             /* NaN/Inf values in A and g together */
};

/* Sums over the batch of one (layer, head); zero it with as_jacobian_acc_init. */
struct as_jacobian_acc {
    int64_t n_samples;             /* slabs added (B) */
    int64_t n_rows;                /* query rows seen (B * T) */
    double full2, diag2;           /* sum_b |g_full[b]|^2, sum_b |g_diag[b]|^2 */
    double cos_diag, cos_ste;      /* sum_b of the per-sample cosines */
    double a_pos_sum;              /* sum of the A entries > 0 */
    int64_t a_pos_n;               /* how many */
    double ent_sum;                /* sum over rows of -sum_j A log(A + 1e-10) */
    int64_t bad_rows;
    int64_t nonfinite_attn, nonfinite_grad; /* NaN/Inf values in A and in g */
};

/* What one slab added, for messages: its bad rows and the first of them. */
struct as_jacobian_slab_check {
    int64_t bad_rows;
    int64_t first_bad_row;         /* -1 if none */
    double first_bad_sum;          /* that row's sum */
    int64_t nonfinite_attn, nonfinite_grad; /* NaN/Inf values in this slab's A and g */
};

void as_jacobian_acc_init(struct as_jacobian_acc *acc);
/* Add one sample: A, g (T, T), C order. chk (may be NULL) receives the slab's checks. */
void as_jacobian_acc_add(struct as_jacobian_acc *acc, const double *A, const double *g, int64_t T,
                         double row_tol, struct as_jacobian_slab_check *chk);
/* The statistics from the sums (r_diag etc. as defined above). */
void as_jacobian_acc_finish(const struct as_jacobian_acc *acc, struct as_jacobian_head *out);

/* Reference (jacobian_ref.c): the same statistics straight from the definitions, materialising
 * g_full and g_diag. A, g: (B, T, T), C order. */
void as_jacobian_head_ref(const double *A, const double *g, int64_t B, int64_t T, double row_tol,
                          struct as_jacobian_head *out);

#endif
