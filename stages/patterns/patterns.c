/* patterns.c: the per-layer focus kernel (last query row of every head) and keyword matching. */
#include "patterns.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

void as_patterns_layer(const double *rows, int64_t H, int64_t T, const struct as_patterns_keywords *kw,
                       struct as_patterns_out *out)
{
    double le = 0;
    for (int64_t j = 0; j < T; j++) {
        double m = 0;
        for (int64_t h = 0; h < H; h++)
            m += rows[h * T + j];
        m = m / (double)H + AS_PATTERNS_LOG_EPS;
        le -= m * log(m);
    }
    out->layer_entropy = le;
    for (int64_t h = 0; h < H; h++) {
        const double *r = rows + h * T;
        double e = 0, mx = r[0];
        int64_t at = 0;
        for (int64_t j = 0; j < T; j++) {
            if (r[j] != 0)
                e -= r[j] * log(r[j] + AS_PATTERNS_LOG_EPS);
            if (r[j] > mx) {
                mx = r[j];
                at = j;
            }
        }
        out->head_entropy[h] = e;
        out->head_max_attention[h] = mx;
        out->head_focus_position[h] = at;
    }
    for (int64_t k = 0; kw && k < kw->K; k++) {
        double s = 0;
        for (int64_t p = kw->start[k]; p < kw->start[k + 1]; p++) {
            double m = 0;
            for (int64_t h = 0; h < H; h++)
                m += rows[h * T + kw->pos[p]];
            s += m / (double)H;
        }
        out->keyword_attention[k] = s;
    }
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

int64_t as_patterns_match(const char *const *tokens, int64_t n, const char *keyword, int64_t *pos,
                          int64_t max)
{
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
        if (contains_nocase(tokens[i], keyword)) {
            if (pos && c < max)
                pos[c] = i;
            c++;
        }
    return c;
}
