/* as_test_reader.c: slab checks and the fixture-driven checks shared by the reader tests. */
#include "as_test_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_test.h"

#define ATOL_EXACT 0.0 /* fixtures hold values every type widens to exactly */
#define RTOL_EXACT 0.0

/* want[i] for the slab start/count of a C-order tensor of `shape` whose values are `all` */
void as_test_slab_expect(int nd, const int64_t *shape, const double *all, const int64_t *start, const int64_t *count,
                        double *want)
{
    int64_t n = as_shape_numel(nd, count), idx[AS_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < n; k++) {
        int64_t flat = 0;
        for (int d = 0; d < nd; d++)
            flat = flat * shape[d] + start[d] + idx[d];
        want[k] = all[flat];
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < count[d])
                break;
            idx[d] = 0;
        }
    }
}

/* Read slab start/count in both output types and compare with the json values. */
void as_test_check_slab(struct as_tensor_file *tf, const double *all, const int64_t *start, const int64_t *count,
                       const char *what)
{
    const struct as_tensor_info *ti = as_tensor_file_info(tf);
    int64_t n = as_shape_numel(ti->ndim, count);
    double *want = malloc((size_t)(n ? n : 1) * sizeof *want), *got = malloc((size_t)(n ? n : 1) * sizeof *got);
    float *got32 = malloc((size_t)(n ? n : 1) * sizeof *got32);
    AS_ASSERT(want && got && got32);
    as_test_slab_expect(ti->ndim, ti->shape, all, start, count, want);
    struct as_error err = { 0 };
    int rc = as_tensor_file_read(tf, start, count, AS_DTYPE_F64, got, &err);
    CHECK_MSG(rc == 0, "%s %s: %s", tf->path, what, err.msg);
    if (!rc && !CHECK_ARRAY(got, want, (size_t)n, ATOL_EXACT, RTOL_EXACT))
        fprintf(stderr, "  in %s key '%s' slab %s (float64)\n", tf->path, tf->key, what);
    rc = as_tensor_file_read(tf, start, count, AS_DTYPE_F32, got32, &err);
    CHECK_MSG(rc == 0, "%s %s: %s", tf->path, what, err.msg);
    for (int64_t i = 0; i < n; i++) {
        got[i] = got32[i];
        want[i] = (double)(float)want[i];
    }
    if (!rc && !CHECK_ARRAY(got, want, (size_t)n, ATOL_EXACT, RTOL_EXACT))
        fprintf(stderr, "  in %s key '%s' slab %s (float32)\n", tf->path, tf->key, what);
    free(want);
    free(got);
    free(got32);
}

void as_test_check_slabs(struct as_tensor_file *tf, const double *all)
{
    const struct as_tensor_info *ti = as_tensor_file_info(tf);
    int nd = ti->ndim;
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        count[d] = ti->shape[d];
    as_test_check_slab(tf, all, start, count, "full");
    if (nd == 4) {
        int64_t s1[4] = { 1, 0, 0, 0 }, c1[4] = { 1, ti->shape[1], ti->shape[2], ti->shape[3] };
        as_test_check_slab(tf, all, s1, c1, "layer 1");
        int64_t s2[4] = { 1, 2, 0, 0 }, c2[4] = { 1, 1, ti->shape[2], ti->shape[3] };
        as_test_check_slab(tf, all, s2, c2, "layer 1 head 2");
        int64_t s3[4] = { 0, 2, 0, 0 }, c3[4] = { ti->shape[0], 1, ti->shape[2], ti->shape[3] };
        as_test_check_slab(tf, all, s3, c3, "head 2 of every layer");
    }
    if (as_shape_numel(nd, ti->shape) > 0) {
        for (int d = 0; d < nd; d++) {
            start[d] = ti->shape[d] > 2 ? 1 : 0;
            count[d] = ti->shape[d] - 2 * start[d];
        }
        as_test_check_slab(tf, all, start, count, "middle");
        for (int d = 0; d < nd; d++) {
            start[d] = ti->shape[d] - 1;
            count[d] = 1;
        }
        as_test_check_slab(tf, all, start, count, "last element");
    }
}

/* ---- the format-independent half of the reader tests, over tests/fixtures/readers */

static json_t *fixture_values;

json_t *as_test_reader_values(void)
{
    if (!fixture_values) {
        json_error_t je;
        fixture_values = json_load_file(AS_TEST_READER_FIXTURES "values.json", 0, &je);
        CHECK_MSG(fixture_values != NULL, "%s:%d: %s", AS_TEST_READER_FIXTURES "values.json", je.line, je.text);
        CHECK(json_integer_value(json_object_get(fixture_values, "version")) == 1);
    }
    return fixture_values;
}

void as_test_reader_values_release(void)
{
    json_decref(fixture_values);
    fixture_values = NULL;
}

int as_test_has_ext(const char *file, const char *ext)
{
    return file && strlen(file) > strlen(ext) && !strcmp(file + strlen(file) - strlen(ext), ext);
}

void as_test_list_cb(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    struct as_test_listed *l = ctx;
    if (l->n < 16) {
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
        snprintf(l->extras[l->n], sizeof l->extras[0], "%s", extra ? extra : "(null)");
    }
    l->n++;
    CHECK(ti != NULL && ti->ndim >= 0 && ti->ndim <= AS_MAX_DIMS && ti->dtype < AS_DTYPE_COUNT);
}

/* One tensor of values.json: info, every value through the slab series, bad requests. */
static void check_tensor(const struct as_reader_ops *ops, json_t *t, as_test_tensor_hook hook)
{
    char path[512];
    const char *file = json_string_value(json_object_get(t, "file"));
    const char *key = json_string_value(json_object_get(t, "key")); /* NULL for json null */
    json_t *shape = json_object_get(t, "shape"), *vals = json_object_get(t, "values");
    snprintf(path, sizeof path, AS_TEST_READER_FIXTURES "%s", file);
    struct as_error err = { 0 };
    CHECK(as_reader_for_path(path, &err) == ops);
    struct as_tensor_file tf;
    if (as_tensor_file_open(&tf, NULL, path, key, &err)) {
        CHECK_MSG(0, "open %s key '%s': %s", path, key ? key : "(null)", err.msg);
        return;
    }
    const struct as_tensor_info *ti = as_tensor_file_info(&tf);
    CHECK_MSG(!strcmp(as_dtype_traits[ti->dtype].name, json_string_value(json_object_get(t, "dtype"))),
              "%s '%s': dtype %s", path, key, as_dtype_traits[ti->dtype].name);
    CHECK_MSG(ti->ndim == (int)json_array_size(shape), "%s '%s': ndim %d", path, key, ti->ndim);
    int nd = ti->ndim;
    for (int d = 0; d < nd && d < (int)json_array_size(shape); d++)
        CHECK(ti->shape[d] == json_integer_value(json_array_get(shape, d)));
    int64_t numel = as_shape_numel(nd, ti->shape);
    CHECK((size_t)numel == json_array_size(vals));
    CHECK(ti->nbytes == numel * (int64_t)as_dtype_traits[ti->dtype].size);
    if (hook)
        hook(path, key, ti, vals);
    double *all = malloc((json_array_size(vals) + 1) * sizeof *all);
    AS_ASSERT(all);
    for (size_t i = 0; i < json_array_size(vals); i++)
        all[i] = json_number_value(json_array_get(vals, i));
    if ((size_t)numel != json_array_size(vals) || ti->ndim != (int)json_array_size(shape))
        goto out;

    as_test_check_slabs(&tf, all);
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        count[d] = ti->shape[d];
    /* requests outside the shape and into an unsupported type fail cleanly */
    if (nd > 0) {
        count[0] = ti->shape[0] + 1;
        double one;
        CHECK(as_tensor_file_read(&tf, start, count, AS_DTYPE_F64, &one, &err) == -1);
        count[0] = ti->shape[0];
    }
    CHECK(as_tensor_file_read(&tf, start, count, AS_DTYPE_F16, all, &err) == -1);
out:
    free(all);
    as_tensor_file_close(&tf);
}

int as_test_reader_tensors(const struct as_reader_ops *ops, const char *ext, as_test_tensor_hook hook)
{
    size_t i;
    int n = 0;
    json_t *t;
    json_array_foreach(json_object_get(as_test_reader_values(), "tensors"), i, t) {
        if (!as_test_has_ext(json_string_value(json_object_get(t, "file")), ext))
            continue;
        check_tensor(ops, t, hook);
        n++;
    }
    return n;
}

void as_test_reader_listing(const struct as_reader_ops *ops, const char *ext,
                            void (*check)(const char *file, const struct as_test_listed *l))
{
    const char *file;
    json_t *keys;
    json_object_foreach(json_object_get(as_test_reader_values(), "listing"), file, keys) {
        if (!as_test_has_ext(file, ext))
            continue;
        char path[512];
        snprintf(path, sizeof path, AS_TEST_READER_FIXTURES "%s", file);
        struct as_test_listed l = { 0 };
        struct as_error err = { 0 };
        CHECK_MSG(ops->list(path, as_test_list_cb, &l, &err) == 0, "%s: %s", path, err.msg);
        CHECK_MSG(l.n == (int)json_array_size(keys), "%s: listed %d", path, l.n);
        for (int i = 0; i < l.n && i < (int)json_array_size(keys); i++)
            CHECK_MSG(!strcmp(l.keys[i], json_string_value(json_array_get(keys, i))), "%s: key %d is '%s'", path,
                      i, l.keys[i]);
        if (check)
            check(file, &l);
    }
}

void as_test_check_rejected(const struct as_reader_ops *ops, const char *path, const char *key, const char *expect)
{
    struct as_reader *r = NULL;
    struct as_error err = { 0 };
    int rc = ops->open(&r, path, key, &err);
    CHECK_MSG(rc == -1, "%s key '%s' was accepted", path, key ? key : "(null)");
    if (rc == 0) {
        ops->close(r);
        return;
    }
    CHECK_MSG(err.status == AS_ERR_INPUT, "%s: status %s: %s", path, as_status_name(err.status), err.msg);
    CHECK_MSG(strstr(err.msg, path) != NULL, "message does not name '%s': %s", path, err.msg);
    CHECK_MSG(!expect || strstr(err.msg, expect) != NULL, "%s: message lacks '%s': %s", path, expect, err.msg);
    CHECK_MSG(!strchr(err.msg, '\n'), "%s: message is not one line: %s", path, err.msg);
}

int as_test_reader_hostile(const struct as_reader_ops *ops, const char *ext)
{
    size_t i;
    int n = 0;
    json_t *h;
    json_array_foreach(json_object_get(as_test_reader_values(), "hostile"), i, h) {
        const char *file = json_string_value(json_object_get(h, "file"));
        if (!as_test_has_ext(file, ext))
            continue;
        char path[512];
        snprintf(path, sizeof path, AS_TEST_READER_FIXTURES "%s", file);
        const char *key = json_string_value(json_object_get(h, "key"));
        as_test_check_rejected(ops, path, key, json_string_value(json_object_get(h, "expect")));
        if (!strncmp(file, "bad_", 4)) {
            struct as_test_listed l = { 0 };
            struct as_error err = { 0 };
            /* list() fails on a broken file, or skips what open() refuses */
            if (ops->list(path, as_test_list_cb, &l, &err) == 0)
                CHECK_MSG(l.n == 0, "list %s: listed %d tensors", path, l.n);
            else
                CHECK_MSG(strstr(err.msg, path) != NULL, "list %s: %s", path, err.msg);
        }
        n++;
    }
    return n;
}

void as_test_reader_magic(const struct as_reader_ops *ops, const char *fixture, int open_it)
{
    char tmp[] = "/tmp/as_test_magic_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    FILE *in = fopen(fixture, "rb");
    CHECK(in != NULL);
    if (fd < 0 || !in) {
        if (in)
            fclose(in);
        if (fd >= 0)
            close(fd), unlink(tmp);
        return;
    }
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        CHECK(write(fd, buf, got) == (ssize_t)got);
    fclose(in);
    close(fd);
    struct as_error err = { 0 };
    CHECK(as_reader_for_path(tmp, &err) == ops);
    if (open_it) {
        struct as_reader *r = NULL;
        CHECK(ops->open(&r, tmp, NULL, &err) == 0);
        if (r)
            ops->close(r);
    }
    unlink(tmp);
}
