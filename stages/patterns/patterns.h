/* patterns.h: where the last query of a prompt looks, per layer and head, after the attention
 * pattern notebook (seed 003) and seed_reference.patterns.
 *
 * Input of one layer: rows (H, T), the last query row A[l, h, T-1, :] of every head (float64).
 *   layer_entropy          = -sum_j m_j log m_j,  m_j = mean_h rows[h, j] + 1e-10
 *   head_entropy[h]        = -sum_j r_j log(r_j + 1e-10),  r = rows[h]
 *   head_max_attention[h]  = max_j r_j
 *   head_focus_position[h] = the first j with r_j == max (0-based key position)
 *   keyword_attention[k]   = sum over the positions p of keyword k of mean_h rows[h, p]
 * Keyword positions: the tokens that contain the keyword, ASCII case-insensitively (the
 * notebook's `kw.lower() in token.lower()`). */
#ifndef AS_STAGES_PATTERNS_PATTERNS_H
#define AS_STAGES_PATTERNS_PATTERNS_H

#include <stdint.h>

#define AS_PATTERNS_LOG_EPS 1e-10

/* One layer's results; the arrays are the caller's. */
struct as_patterns_out {
    double layer_entropy;
    double *head_entropy;          /* (H,) nats */
    double *head_max_attention;    /* (H,) probability */
    int64_t *head_focus_position;  /* (H,) 0-based key position */
    double *keyword_attention;     /* (K,) probability mass; unused when K = 0 */
};

/* Keyword positions in CSR form: keyword k at pos[start[k] .. start[k+1]-1]. */
struct as_patterns_keywords {
    int64_t K;
    const int64_t *start;          /* (K + 1,) */
    const int64_t *pos;            /* (start[K],) each in 0..T-1 */
};

/* rows: (H, T). kw may be NULL (no keywords). */
void as_patterns_layer(const double *rows, int64_t H, int64_t T, const struct as_patterns_keywords *kw,
                       struct as_patterns_out *out);
/* Reference (patterns_ref.c): the same, step by step as the notebook does it. */
void as_patterns_layer_ref(const double *rows, int64_t H, int64_t T, const struct as_patterns_keywords *kw,
                           struct as_patterns_out *out);

/* Positions of the n tokens that contain `keyword` (ASCII case-insensitive substring). Writes up to
 * max of them to pos (may be NULL) and returns how many there are. */
int64_t as_patterns_match(const char *const *tokens, int64_t n, const char *keyword, int64_t *pos,
                          int64_t max);

#endif
