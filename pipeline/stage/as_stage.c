/* as_stage.c: schema arithmetic and the notebook-style summary lines shared by all stages. */
#include "as_stage.h"

#include <math.h>

int64_t as_field_count(const struct as_field *f)
{
    int64_t n = 1;
    for (int d = 0; d < f->ndim; d++)
        n *= f->dims[d];
    return n;
}

size_t as_schema_row_size(const struct as_field *f, int n)
{
    size_t s = 0;
    for (int k = 0; k < n; k++)
        if (f[k].per_layer)
            s += (size_t)as_field_count(&f[k]) * 8;
    return s;
}

size_t as_schema_model_size(const struct as_field *f, int n)
{
    size_t s = 0;
    for (int k = 0; k < n; k++)
        if (!f[k].per_layer)
            s += (size_t)as_field_count(&f[k]) * 8;
    return s;
}

size_t as_schema_offset(const struct as_field *f, int n, int k)
{
    size_t s = 0;
    for (int j = 0; j < k; j++)
        if (f[j].per_layer == f[k].per_layer)
            s += (size_t)as_field_count(&f[j]) * 8;
    return s;
}

void as_log_stats_rows(struct as_strbuf *log, const char *model, const char *stage, const char *name,
                       const double *v, size_t rows, size_t cols, size_t row_stride)
{
    double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
    size_t n = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double x = v[r * row_stride + c];
            if (!isfinite(x))
                continue;
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
            sum += x;
            n++;
        }
    double mean = n ? sum / (double)n : NAN;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double x = v[r * row_stride + c];
            if (isfinite(x))
                sq += (x - mean) * (x - mean);
        }
    double std = n ? sqrt(sq / (double)n) : NAN;
    as_strbuf_addf(log, "%s %s %s | min=%.4f max=%.4f mean=%.4f std=%.4f\n", model, stage, name, n ? mn : NAN,
                   n ? mx : NAN, mean, std);
}

void as_log_stats(struct as_strbuf *log, const char *model, const char *stage, const char *name, const double *v,
                  size_t n, size_t stride)
{
    as_log_stats_rows(log, model, stage, name, v, n, 1, stride ? stride : 1);
}
