/* test_reader_safetensors.c: the safetensors reader against tests/fixtures/readers (made by
 * tests/gen/make_reader_fixtures.py): every value of every tensor, full reads and hyperslabs,
 * in float32 and float64; every hostile file rejected with a one-line message naming it; the
 * fuzzer's regression inputs opened without a crash. */
#undef NDEBUG
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_test.h"
#include "as_test_reader.h"

#define FIXTURES AS_TEST_READER_FIXTURES
#define EXT ".safetensors"

static const struct as_reader_ops *const ops = &as_reader_safetensors;

static void test_reader_safetensors__values(void) { CHECK(as_test_reader_tensors(ops, EXT, NULL) >= 8); }

static void check_listing(const char *file, const struct as_test_listed *l)
{
    if (!strcmp(file, "multi.safetensors") && l->n > 0)
        CHECK_MSG(!strcmp(l->extras[0], "format=pt model=tiny"), "extra '%s'", l->extras[0]);
}

static void test_reader_safetensors__list(void)
{
    as_test_reader_listing(ops, EXT, check_listing);
    struct as_test_listed l = { 0 };
    struct as_error err = { 0 };
    CHECK(ops->list(FIXTURES "f32.safetensors", as_test_list_cb, &l, &err) == 0 && l.n == 1 &&
          !strcmp(l.extras[0], "(null)"));
}

static void test_reader_safetensors__hostile(void)
{
    CHECK(as_test_reader_hostile(ops, EXT) >= 25);
    as_test_check_rejected(ops, FIXTURES "no_such_file.safetensors", NULL, "cannot open");
}

/* A fixture copied to a name without an extension is still recognized by its magic. */
static void test_reader_safetensors__magic(void) { as_test_reader_magic(ops, FIXTURES "f32.safetensors", 0); }

/* Inputs the fuzzer once crashed on: open every tensor, read it all; errors are fine, crashes
 * and messages that do not name the file are not. */
static void regress_cb(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    const char *path = ctx;
    struct as_tensor_file tf;
    struct as_error err = { 0 };
    if (as_tensor_file_open(&tf, ops, path, key, &err)) {
        CHECK_MSG(strstr(err.msg, path) != NULL, "%s: %s", path, err.msg);
        return;
    }
    int64_t start[AS_MAX_DIMS] = { 0 }, n = as_shape_numel(ti->ndim, ti->shape);
    double *dst = malloc((size_t)(n > 0 ? n : 1) * sizeof *dst);
    AS_ASSERT(dst);
    if (as_tensor_file_read(&tf, start, ti->shape, AS_DTYPE_F64, dst, &err))
        CHECK_MSG(strstr(err.msg, path) != NULL, "%s: %s", path, err.msg);
    free(dst);
    as_tensor_file_close(&tf);
}

static void test_reader_safetensors__regress(void)
{
    DIR *dir = opendir(FIXTURES "regress");
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.' || strncmp(de->d_name, "safetensors-", 12))
            continue;
        char path[512];
        snprintf(path, sizeof path, FIXTURES "regress/%s", de->d_name);
        struct as_reader *r = NULL;
        struct as_error err = { 0 };
        if (ops->open(&r, path, NULL, &err) == 0)
            ops->close(r);
        else
            CHECK_MSG(strstr(err.msg, path) != NULL && !strchr(err.msg, '\n'), "%s: %s", path, err.msg);
        if (ops->list(path, regress_cb, path, &err))
            CHECK_MSG(strstr(err.msg, path) != NULL && !strchr(err.msg, '\n'), "%s: %s", path, err.msg);
    }
    closedir(dir);
}

int main(void)
{
    if (!as_test_reader_values())
        return as_test_done();
    TEST_RUN(test_reader_safetensors__values);
    TEST_RUN(test_reader_safetensors__list);
    TEST_RUN(test_reader_safetensors__hostile);
    TEST_RUN(test_reader_safetensors__magic);
    TEST_RUN(test_reader_safetensors__regress);
    as_test_reader_values_release();
    return as_test_done();
}
