/* as_stage.c: schema arithmetic, field accessors, attributes and options, config warnings, and
 * the notebook-style summary lines shared by all stages. */
#include "as_stage.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- field accessors */

void as_schema_init(struct as_schema *s, const struct as_field *f, int n)
{
    AS_ASSERT(n >= 0 && n <= AS_STAGE_MAX_FIELDS);
    memset(s, 0, sizeof *s);
    memcpy(s->fields, f, (size_t)n * sizeof *f);
    s->n = n;
    for (int k = 0; k < n; k++)
        s->offset[k] = as_schema_offset(f, n, k);
    s->row_size = as_schema_row_size(f, n);
    s->model_size = as_schema_model_size(f, n);
}

void as_schema_of(struct as_schema *s, const struct as_stage_ops *ops, const void *cfg,
                  const struct as_stage_shape *sh)
{
    struct as_field f[AS_STAGE_MAX_FIELDS];
    memset(f, 0, sizeof f);
    as_schema_init(s, f, ops->schema(cfg, sh, f));
}

int as_schema_find(const struct as_schema *s, const char *name)
{
    for (int k = 0; k < s->n; k++)
        if (!strcmp(s->fields[k].name, name))
            return k;
    return -1;
}

unsigned char *as_schema_row(const struct as_schema *s, unsigned char *rows, int64_t layer)
{
    AS_ASSERT(layer >= 0);
    return rows + (size_t)layer * s->row_size;
}

const unsigned char *as_schema_row_const(const struct as_schema *s, const unsigned char *rows, int64_t layer)
{
    AS_ASSERT(layer >= 0);
    return rows + (size_t)layer * s->row_size;
}

static size_t field_at(const struct as_schema *s, int k, enum as_ftype type)
{
    if (k < 0 || k >= s->n)
        as_bug(__FILE__, __LINE__, "field %d of a schema of %d fields", k, s->n);
    if (s->fields[k].type != type)
        as_bug(__FILE__, __LINE__, "field '%s' is %s, accessed as %s", s->fields[k].name,
               s->fields[k].type == AS_FTYPE_F64 ? "float64" : "int64", type == AS_FTYPE_F64 ? "float64" : "int64");
    return s->offset[k];
}

double *as_schema_f64(const struct as_schema *s, unsigned char *base, int k)
{
    return (double *)(void *)(base + field_at(s, k, AS_FTYPE_F64));
}

int64_t *as_schema_i64(const struct as_schema *s, unsigned char *base, int k)
{
    return (int64_t *)(void *)(base + field_at(s, k, AS_FTYPE_I64));
}

const double *as_schema_f64_const(const struct as_schema *s, const unsigned char *base, int k)
{
    return (const double *)(const void *)(base + field_at(s, k, AS_FTYPE_F64));
}

const int64_t *as_schema_i64_const(const struct as_schema *s, const unsigned char *base, int k)
{
    return (const int64_t *)(const void *)(base + field_at(s, k, AS_FTYPE_I64));
}

/* ---- attributes */

static struct as_attr *out_add(struct as_stage_out *out, const char *name, enum as_attr_kind kind)
{
    if (out->n_attrs >= AS_STAGE_MAX_ATTRS)
        as_bug(__FILE__, __LINE__, "attribute '%s': more than %d attributes", name, AS_STAGE_MAX_ATTRS);
    for (int i = 0; i < out->n_attrs; i++)
        if (!strcmp(out->attrs[i].name, name))
            as_bug(__FILE__, __LINE__, "attribute '%s' recorded twice", name);
    struct as_attr *a = &out->attrs[out->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->kind = kind;
    return a;
}

void as_stage_out_f64(struct as_stage_out *out, const char *name, double v)
{
    out_add(out, name, AS_ATTR_F64)->f64 = v;
}

void as_stage_out_i64(struct as_stage_out *out, const char *name, int64_t v)
{
    out_add(out, name, AS_ATTR_I64)->i64 = v;
}

void as_stage_out_str(struct as_stage_out *out, const char *name, const char *v)
{
    struct as_attr *a = out_add(out, name, AS_ATTR_STR);
    if (as_strlcpy(a->str, v ? v : "", sizeof a->str))
        as_bug(__FILE__, __LINE__, "attribute '%s': value longer than %zu bytes", name, sizeof a->str - 1);
}

void as_stage_out_vec(struct as_stage_out *out, const char *name, const double *v, int64_t n)
{
    struct as_attr *a = out_add(out, name, AS_ATTR_F64VEC);
    a->vec = v;
    a->n = n;
}

/* ---- options */

static int opt_is_top(const struct as_stage_option *o) { return !strchr(o->key, '.'); }

int as_stage_options_parse(const struct as_stage_option *tab, const struct as_ynode *node, const char *what,
                           const char *const *extra_keys, void *cfg, struct as_error *err)
{
    const char *keys[2 * AS_STAGE_MAX_ATTRS + 1];
    int nk = 0;
    /* top-level keys of the table (a nested key's map is among extra_keys), then the extras */
    for (const struct as_stage_option *o = tab; o->key; o++) {
        int seen = !opt_is_top(o);
        for (int i = 0; i < nk && !seen; i++)
            seen = !strcmp(keys[i], o->key);
        if (seen)
            continue;
        AS_ASSERT(nk < 2 * AS_STAGE_MAX_ATTRS);
        keys[nk++] = o->key;
    }
    for (int i = 0; extra_keys && extra_keys[i]; i++) {
        AS_ASSERT(nk < 2 * AS_STAGE_MAX_ATTRS);
        keys[nk++] = extra_keys[i];
    }
    keys[nk] = NULL;
    if (as_ynode_check_keys(node, what, keys, err))
        return -1;
    unsigned char *base = cfg;
    for (const struct as_stage_option *o = tab; o->key; o++) {
        if (!o->parse)
            continue;
        AS_ASSERT(opt_is_top(o));
        void *p = base + o->offset;
        int64_t lo = o->lo < o->hi ? o->lo : INT64_MIN, hi = o->lo < o->hi ? o->hi : INT64_MAX, v;
        int iv;
        switch (o->type) {
        case AS_OPT_F64:
            if (as_ynode_get_double(node, what, o->key, o->f64_default, (double *)p, err))
                return -1;
            break;
        case AS_OPT_I64:
        case AS_OPT_INT:
        case AS_OPT_U64:
            if (o->type == AS_OPT_U64 && lo < 0)
                lo = 0;
            if (o->type == AS_OPT_INT) {
                lo = lo < INT32_MIN ? INT32_MIN : lo;
                hi = hi > INT32_MAX ? INT32_MAX : hi;
            }
            if (as_ynode_get_int(node, what, o->key, o->i64_default, lo, hi, &v, err))
                return -1;
            if (o->type == AS_OPT_I64)
                memcpy(p, &v, sizeof v);
            else if (o->type == AS_OPT_U64) {
                uint64_t u = (uint64_t)v;
                memcpy(p, &u, sizeof u);
            } else {
                iv = (int)v;
                memcpy(p, &iv, sizeof iv);
            }
            break;
        case AS_OPT_BOOL:
            if (as_ynode_get_bool(node, what, o->key, (int)o->i64_default, &iv, err))
                return -1;
            memcpy(p, &iv, sizeof iv);
            break;
        case AS_OPT_ENUM:
            if (as_ynode_get_enum(node, what, o->key, (int)o->i64_default, o->choices, &iv, err))
                return -1;
            memcpy(p, &iv, sizeof iv);
            break;
        default:
            as_bug(__FILE__, __LINE__, "option '%s': type %d is parsed by the stage", o->key, (int)o->type);
        }
    }
    return 0;
}

void as_stage_out_options(struct as_stage_out *out, const struct as_stage_option *tab, const void *cfg)
{
    const unsigned char *base = cfg;
    for (const struct as_stage_option *o = tab; o->key; o++) {
        const char *name = o->attr ? o->attr : o->key;
        const void *p = base + o->offset;
        double d;
        int64_t v;
        uint64_t u;
        int iv;
        const char *s;
        switch (o->type) {
        case AS_OPT_F64:
            memcpy(&d, p, sizeof d);
            as_stage_out_f64(out, name, d);
            break;
        case AS_OPT_I64:
            memcpy(&v, p, sizeof v);
            as_stage_out_i64(out, name, v);
            break;
        case AS_OPT_U64:
            memcpy(&u, p, sizeof u);
            AS_ASSERT(u <= INT64_MAX);
            as_stage_out_i64(out, name, (int64_t)u);
            break;
        case AS_OPT_INT:
        case AS_OPT_BOOL:
            memcpy(&iv, p, sizeof iv);
            as_stage_out_i64(out, name, iv);
            break;
        case AS_OPT_ENUM: {
            const char *const *names = o->names ? o->names : o->choices;
            memcpy(&iv, p, sizeof iv);
            AS_ASSERT(iv >= 0);
            for (int i = 0; i < iv; i++)
                AS_ASSERT(names[i]);
            AS_ASSERT(names[iv]);
            as_stage_out_str(out, name, names[iv]);
            break;
        }
        case AS_OPT_STR:
            as_stage_out_str(out, name, (const char *)p);
            break;
        case AS_OPT_STRP:
            memcpy(&s, p, sizeof s);
            as_stage_out_str(out, name, s ? s : "");
            break;
        case AS_OPT_F64VEC:
            as_stage_out_vec(out, name, (const double *)p, o->n);
            break;
        default:
            as_bug(__FILE__, __LINE__, "option '%s': unknown type %d", o->key, (int)o->type);
        }
    }
}

/* ---- config warnings */

/* Under an MPI launcher every rank loads the config: the default sink prints on rank 0 only, the
 * rank read from the launcher's environment (this layer has no MPI). */
static void warn_stderr(void *ctx, const char *line)
{
    static const char *const rank_vars[] = { "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", NULL };
    (void)ctx;
    for (int i = 0; rank_vars[i]; i++) {
        const char *r = getenv(rank_vars[i]);
        if (r && *r && strcmp(r, "0"))
            return;
    }
    fputs(line, stderr);
    fflush(stderr);
}

static void (*warn_fn)(void *ctx, const char *line) = warn_stderr;
static void *warn_ctx;

void as_stage_set_warn(void (*fn)(void *ctx, const char *line), void *ctx)
{
    warn_fn = fn;
    warn_ctx = ctx;
}

void as_stage_warn(const struct as_ynode *at, const char *fmt, ...)
{
    if (!warn_fn)
        return;
    char msg[AS_ERROR_MSG_MAX], line[AS_ERROR_MSG_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at)
        snprintf(line, sizeof line, "attnstat: warning: %s:%d:%d: %s\n", at->file ? at->file : "?", at->line,
                 at->col, msg);
    else
        snprintf(line, sizeof line, "attnstat: warning: %s\n", msg);
    warn_fn(warn_ctx, line);
}
