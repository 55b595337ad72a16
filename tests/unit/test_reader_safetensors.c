/* test_reader_safetensors.c: the safetensors reader against tests/fixtures/readers (made by
 * tests/gen/make_reader_fixtures.py): every value of every tensor, full reads and hyperslabs,
 * in float32 and float64; every hostile file rejected with a one-line message naming it; the
 * fuzzer's regression inputs opened without a crash. */
#undef NDEBUG
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_test.h"
#include "as_test_reader.h"

#define FIXTURES "tests/fixtures/readers/"
#define EXT ".safetensors"

static const struct as_reader_ops *const ops = &as_reader_safetensors;
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

static void test_reader_safetensors__values(void)
{
    size_t i, n = 0;
    json_t *t;
    json_array_foreach(json_object_get(values, "tensors"), i, t) {
        if (!has_ext(json_string_value(json_object_get(t, "file"))))
            continue;
        check_tensor(t);
        n++;
    }
    CHECK(n >= 8);
}

struct listed {
    char keys[16][64];
    char extra[128];
    int n;
};

static void list_cb(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    struct listed *l = ctx;
    if (l->n < 16)
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
    snprintf(l->extra, sizeof l->extra, "%s", extra ? extra : "(null)");
    l->n++;
    CHECK(ti != NULL && ti->ndim >= 0 && ti->ndim <= AS_MAX_DIMS && ti->dtype < AS_DTYPE_COUNT);
}

static void test_reader_safetensors__list(void)
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
        if (!strcmp(file, "multi.safetensors"))
            CHECK_MSG(!strcmp(l.extra, "format=pt model=tiny"), "extra '%s'", l.extra);
    }
    struct listed l = { 0 };
    struct as_error err = { 0 };
    CHECK(ops->list(FIXTURES "f32.safetensors", list_cb, &l, &err) == 0 && l.n == 1 &&
          !strcmp(l.extra, "(null)"));
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

static void test_reader_safetensors__hostile(void)
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
            /* list() fails on a broken file, or skips a tensor open() refuses (rank 9) */
            if (ops->list(path, list_cb, &l, &err) == 0)
                CHECK_MSG(l.n == 0, "list %s: listed %d tensors", path, l.n);
            else
                CHECK_MSG(strstr(err.msg, path) != NULL, "list %s: %s", path, err.msg);
        }
        n++;
    }
    CHECK(n >= 25);
    check_rejected(FIXTURES "no_such_file.safetensors", NULL, "cannot open");
}

/* A fixture copied to a name without an extension is still recognized by its magic. */
static void test_reader_safetensors__magic(void)
{
    char tmp[] = "/tmp/as_test_st_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    FILE *in = fopen(FIXTURES "f32.safetensors", "rb");
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
    unlink(tmp);
}

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
    if (load_values())
        return as_test_done();
    TEST_RUN(test_reader_safetensors__values);
    TEST_RUN(test_reader_safetensors__list);
    TEST_RUN(test_reader_safetensors__hostile);
    TEST_RUN(test_reader_safetensors__magic);
    TEST_RUN(test_reader_safetensors__regress);
    json_decref(values);
    return as_test_done();
}
