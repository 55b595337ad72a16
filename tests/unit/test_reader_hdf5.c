/* test_reader_hdf5.c: the HDF5 reader against tests/fixtures/readers (made by
 * tests/gen/make_reader_fixtures.py): every value of every dataset (contiguous, chunked + gzip,
 * float16, big-endian, scalar, nested groups), full reads and hyperslabs, in float32 and
 * float64; data_offset of contiguous datasets; every hostile file (integer dataset, truncated,
 * not HDF5, groups, missing keys) rejected with a one-line message naming it. */
#undef NDEBUG
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_test.h"
#include "as_test_reader.h"

#define FIXTURES AS_TEST_READER_FIXTURES
#define EXT ".h5"

extern const struct as_reader_ops as_reader_hdf5; /* not yet declared in as_reader.h */
static const struct as_reader_ops *const ops = &as_reader_hdf5;

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

static void test_reader_hdf5__values(void) { CHECK(as_test_reader_tensors(ops, EXT, check_offset) >= 7); }

static void check_listing(const char *file, const struct as_test_listed *l)
{
    for (int i = 0; i < l->n && i < 16; i++)
        if (!strcmp(l->keys[i], "/model/chunked"))
            CHECK_MSG(!strcmp(l->extras[i], "chunked shuffle gzip"), "extra '%s'", l->extras[i]);
        else
            CHECK_MSG(!strcmp(l->extras[i], "contiguous") || !strcmp(l->extras[i], "compact"), "extra '%s'",
                      l->extras[i]);
}

static void test_reader_hdf5__list(void) { as_test_reader_listing(ops, EXT, check_listing); }

static void test_reader_hdf5__hostile(void)
{
    CHECK(as_test_reader_hostile(ops, EXT) >= 8);
    as_test_check_rejected(ops, FIXTURES "no_such_file.h5", NULL, "cannot open");
    as_test_check_rejected(ops, FIXTURES "f32.safetensors", NULL, "cannot open");
}

/* A fixture copied to a name without an extension is still recognized by its magic, and opens. */
static void test_reader_hdf5__magic(void) { as_test_reader_magic(ops, FIXTURES "single.h5", 1); }

/* Every file, dataset, group and datatype the tests above opened was closed again. */
static void test_reader_hdf5__nothing_left_open(void)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    CHECK_MSG(n == 0, "%zd hdf5 objects still open", n);
}

int main(void)
{
    if (!as_test_reader_values())
        return as_test_done();
    TEST_RUN(test_reader_hdf5__values);
    TEST_RUN(test_reader_hdf5__list);
    TEST_RUN(test_reader_hdf5__hostile);
    TEST_RUN(test_reader_hdf5__magic);
    TEST_RUN(test_reader_hdf5__nothing_left_open);
    as_test_reader_values_release();
    return as_test_done();
}
