/* test_reader_hdf5.c: the HDF5 reader against tests/fixtures/readers (made by
 * tests/gen/make_reader_fixtures.py): every value of every dataset (contiguous, chunked + gzip,
 * float16, big-endian, scalar, nested groups), full reads and hyperslabs, in float32 and
 * float64; data_offset of contiguous datasets; every hostile file (integer dataset, truncated,
 * not HDF5, groups, missing keys) rejected with a one-line message naming it. */
#undef NDEBUG
#include <fcntl.h>
#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_test.h"
#include "as_test_reader.h"

#define FIXTURES "tests/fixtures/readers/"
#define EXT ".h5"

extern const struct as_reader_ops as_reader_hdf5; /* not yet declared in as_reader.h */
static const struct as_reader_ops *const ops = &as_reader_hdf5;
static json_t *values;

static int has_ext(const char *file)
{
    return strlen(file) > strlen(EXT) && !strcmp(file + strlen(file) - strlen(EXT), EXT);
}

static int load_values(void)
{
    json_error_t je;
    values = json_load_file(FIXTURES "values.json", 0, &je);
    CHECK_MSG(values != NULL, "%s:%d: %s", FIXTURES "values.json", je.line, je.text);
    CHECK(json_integer_value(json_object_get(values, "version")) == 1);
    return values ? 0 : -1;
}


/* Contiguous little-endian datasets report where their bytes are; the others -1. */
static void check_offset(const char *path, const char *key, const struct as_tensor_info *ti, json_t *vals)
{
    int flat = key && (!strcmp(key, "/qk_mean") || !strcmp(key, "model/layer3/attn"));
    if (!flat) {
        if (key && (!strcmp(key, "/model/chunked") || !strcmp(key, "/be/f32")))
            CHECK_MSG(ti->data_offset == -1, "%s '%s': data_offset %lld", path, key, (long long)ti->data_offset);
        return;
    }
    CHECK_MSG(ti->data_offset > 0, "%s '%s': data_offset %lld", path, key, (long long)ti->data_offset);
    if (ti->data_offset <= 0)
        return;
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    if (ti->dtype == AS_DTYPE_F32) {
        float v[2];
        CHECK(pread(fd, v, sizeof v, ti->data_offset) == sizeof v);
        CHECK(v[0] == json_number_value(json_array_get(vals, 0)) && v[1] == json_number_value(json_array_get(vals, 1)));
    } else {
        double v[2];
        CHECK(pread(fd, v, sizeof v, ti->data_offset) == sizeof v);
        CHECK(v[0] == json_number_value(json_array_get(vals, 0)) && v[1] == json_number_value(json_array_get(vals, 1)));
    }
    close(fd);
}

static void check_tensor(json_t *t)
{
    char path[512];
    const char *file = json_string_value(json_object_get(t, "file"));
    const char *key = json_string_value(json_object_get(t, "key")); /* NULL for json null */
    json_t *shape = json_object_get(t, "shape"), *vals = json_object_get(t, "values");
    snprintf(path, sizeof path, FIXTURES "%s", file);
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
    check_offset(path, key, ti, vals);
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
        for (int d = 0; d < nd; d++) {
            start[d] = 0;
            count[d] = ti->shape[d];
        }
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

static void test_reader_hdf5__values(void)
{
    size_t i, n = 0;
    json_t *t;
    json_array_foreach(json_object_get(values, "tensors"), i, t) {
        if (!has_ext(json_string_value(json_object_get(t, "file"))))
            continue;
        check_tensor(t);
        n++;
    }
    CHECK(n >= 7);
}

struct listed {
    char keys[16][64];
    char extras[16][64];
    int n;
};

static void list_cb(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    struct listed *l = ctx;
    if (l->n < 16) {
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
        snprintf(l->extras[l->n], sizeof l->extras[0], "%s", extra ? extra : "(null)");
    }
    l->n++;
    CHECK(ti != NULL && ti->ndim >= 0 && ti->ndim <= AS_MAX_DIMS && ti->dtype < AS_DTYPE_COUNT);
}

static void test_reader_hdf5__list(void)
{
    const char *file;
    json_t *keys;
    json_object_foreach(json_object_get(values, "listing"), file, keys) {
        if (!has_ext(file))
            continue;
        char path[512];
        snprintf(path, sizeof path, FIXTURES "%s", file);
        struct listed l = { 0 };
        struct as_error err = { 0 };
        CHECK_MSG(ops->list(path, list_cb, &l, &err) == 0, "%s: %s", path, err.msg);
        CHECK_MSG(l.n == (int)json_array_size(keys), "%s: listed %d", path, l.n);
        for (int i = 0; i < l.n && i < (int)json_array_size(keys); i++)
            CHECK_MSG(!strcmp(l.keys[i], json_string_value(json_array_get(keys, i))), "%s: key %d is '%s'", path,
                      i, l.keys[i]);
        for (int i = 0; i < l.n && i < 16; i++)
            if (!strcmp(l.keys[i], "/model/chunked"))
                CHECK_MSG(!strcmp(l.extras[i], "chunked shuffle gzip"), "extra '%s'", l.extras[i]);
            else
                CHECK_MSG(!strcmp(l.extras[i], "contiguous") || !strcmp(l.extras[i], "compact"), "extra '%s'",
                          l.extras[i]);
    }
}

static void check_rejected(const char *path, const char *key, const char *expect)
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

static void test_reader_hdf5__hostile(void)
{
    size_t i, n = 0;
    json_t *h;
    json_array_foreach(json_object_get(values, "hostile"), i, h) {
        const char *file = json_string_value(json_object_get(h, "file"));
        if (!has_ext(file))
            continue;
        char path[512];
        snprintf(path, sizeof path, FIXTURES "%s", file);
        const char *key = json_string_value(json_object_get(h, "key"));
        check_rejected(path, key, json_string_value(json_object_get(h, "expect")));
        if (!strncmp(file, "bad_", 4)) {
            struct listed l = { 0 };
            struct as_error err = { 0 };
            /* list() fails on a broken file, or skips datasets open() refuses */
            if (ops->list(path, list_cb, &l, &err) == 0)
                CHECK_MSG(l.n == 0, "list %s: listed %d datasets", path, l.n);
            else
                CHECK_MSG(strstr(err.msg, path) != NULL, "list %s: %s", path, err.msg);
        }
        n++;
    }
    CHECK(n >= 8);
    check_rejected(FIXTURES "no_such_file.h5", NULL, "cannot open");
    check_rejected(FIXTURES "f32.safetensors", NULL, "cannot open");
}

/* A fixture copied to a name without an extension is still recognized by its magic. */
static void test_reader_hdf5__magic(void)
{
    char tmp[] = "/tmp/as_test_h5_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    FILE *in = fopen(FIXTURES "single.h5", "rb");
    CHECK(in != NULL);
    if (fd < 0 || !in)
        return;
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        CHECK(write(fd, buf, got) == (ssize_t)got);
    fclose(in);
    close(fd);
    struct as_error err = { 0 };
    CHECK(as_reader_for_path(tmp, &err) == ops);
    struct as_reader *r = NULL;
    CHECK(ops->open(&r, tmp, NULL, &err) == 0);
    ops->close(r);
    unlink(tmp);
}

/* Every file, dataset, group and datatype the tests above opened was closed again. */
static void test_reader_hdf5__nothing_left_open(void)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    CHECK_MSG(n == 0, "%zd hdf5 objects still open", n);
}

int main(void)
{
    if (load_values())
        return as_test_done();
    TEST_RUN(test_reader_hdf5__values);
    TEST_RUN(test_reader_hdf5__list);
    TEST_RUN(test_reader_hdf5__hostile);
    TEST_RUN(test_reader_hdf5__magic);
    TEST_RUN(test_reader_hdf5__nothing_left_open);
    json_decref(values);
    return as_test_done();
}
