#undef NDEBUG
/* test_reader_pt.c: the torch.save reader (reader_pt.c, pt_zip.c, pt_pickle.c) against the
 * committed fixtures in tests/fixtures/pt/ (real torch 1.13 files, synthesized newer-writer
 * files, 48 hostile files, fuzzer regressions) and their verdicts in expected.json, plus
 * truncated, bit-flipped and hand-built archives. */
#define _GNU_SOURCE
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_reader.h"
#include "as_test.h"
#include "pt_pickle.h"
#include "pt_zip.h"

extern const struct as_reader_ops as_reader_pt;

#define VALUE_ATOL 0.0 /* fixture values are exactly representable in every dtype */
#define VALUE_RTOL 0.0

static char fixdir[1024];
static char tmpdir[1024];
static json_t *expected;

/* ---- helpers */

static void fixture(char *buf, size_t n, const char *rel)
{
    snprintf(buf, n, "%s/%s", fixdir, rel);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

static int spit(const char *path, const void *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(b, 1, n, f) == n ? 0 : -1;
    return fclose(f) || rc ? -1 : 0;
}

struct listed {
    char name[256];
    struct as_tensor_info ti;
    char extra[600];
};

struct list_ctx {
    struct listed v[64];
    int n;
};

static void list_cb(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    struct list_ctx *c = ctx;
    if (c->n < 64) {
        snprintf(c->v[c->n].name, sizeof c->v[c->n].name, "%s", key);
        c->v[c->n].ti = *ti;
        snprintf(c->v[c->n].extra, sizeof c->v[c->n].extra, "%s", extra ? extra : "");
    }
    c->n++;
}

/* Open tensor key and read the slab into a new double array (F64) or float array (F32). */
static void *read_slab(const char *path, const char *key, const int64_t *start, const int64_t *count,
                       enum as_dtype out, struct as_tensor_info *info, struct as_error *err)
{
    struct as_reader *r;
    if (as_reader_pt.open(&r, path, key, err))
        return NULL;
    const struct as_tensor_info *ti = as_reader_pt.info(r);
    if (info)
        *info = *ti;
    int64_t full_start[AS_MAX_DIMS] = { 0 };
    if (!start) {
        start = full_start;
        count = ti->shape;
    }
    int64_t n = as_shape_numel(ti->ndim, count);
    void *dst = malloc((size_t)(n > 0 ? n : 1) * as_dtype_traits[out].size);
    if (!dst || as_slab_check(ti, start, count, path, err) ||
        as_reader_pt.read(r, start, count, out, dst, err)) {
        free(dst);
        dst = NULL;
    }
    as_reader_pt.close(r);
    return dst;
}

/* A file is rejected when list(), or open() or a full read() of any tensor, fails. Every
 * failure message must be one non-empty line that names the file. */
static int rejected(const char *path, char *msg, size_t msgn)
{
    struct list_ctx *c = calloc(1, sizeof *c);
    struct as_error err = { 0 };
    int bad = 0;
    msg[0] = '\0';
    if (as_reader_pt.list(path, list_cb, c, &err)) {
        bad = 1;
    } else {
        for (int i = 0; i < c->n && i < 64 && !bad; i++) {
            if (c->v[i].ti.dtype == AS_DTYPE_COUNT)
                continue;
            void *v = read_slab(path, c->v[i].name, NULL, NULL, AS_DTYPE_F64, NULL, &err);
            if (!v)
                bad = 1;
            free(v);
        }
    }
    if (bad) {
        CHECK_MSG(err.msg[0] && strstr(err.msg, base_name(path)) && !strchr(err.msg, '\n'),
                  "message '%s' for '%s'", err.msg, path);
        snprintf(msg, msgn, "%s", err.msg);
    }
    free(c);
    return bad;
}

static enum as_dtype float_dtype(const char *name)
{
    for (int d = 0; d < AS_DTYPE_COUNT; d++)
        if (!strcmp(as_dtype_traits[d].name, name))
            return (enum as_dtype)d;
    return AS_DTYPE_COUNT;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- the fixtures against expected.json */

/* Row-major index of element idx[] in shape[] (for sub-slab expectations). */
static int64_t flat_index(int nd, const int64_t *shape, const int64_t *idx)
{
    int64_t k = 0;
    for (int d = 0; d < nd; d++)
        k = k * shape[d] + idx[d];
    return k;
}

/* Bytes per element of a torch dtype name, from the reader's table (0 if unknown). */
static int64_t torch_itemsize(const char *dtype)
{
    for (int d = 0; d < PT_DTYPE_COUNT; d++)
        if (!strcmp(pt_dtype_traits[d].name, dtype))
            return pt_dtype_traits[d].size;
    return 0;
}

/* Storage records seen in one file: key -> data offset of the record. */
struct records {
    char key[16][PT_MAX_KEY + 1];
    int64_t off[16];
    int n;
};

static void check_tensor(const char *path, const char *rel, json_t *want, const struct listed *got, int big_endian,
                         struct records *recs)
{
    const char *name = json_string_value(json_object_get(want, "name"));
    const char *dtype = json_string_value(json_object_get(want, "dtype"));
    json_t *shape = json_object_get(want, "shape"), *stride = json_object_get(want, "stride");
    CHECK_MSG(!strcmp(got->name, name), "%s: tensor '%s' listed as '%s'", rel, name, got->name);
    enum as_dtype fd = float_dtype(dtype);
    CHECK_MSG(got->ti.dtype == fd, "%s:%s dtype %d, want %s", rel, name, got->ti.dtype, dtype);
    if (fd == AS_DTYPE_COUNT) {
        char want_extra[64];
        snprintf(want_extra, sizeof want_extra, "dtype %s ", dtype);
        CHECK_MSG(strstr(got->extra, want_extra) != NULL, "%s:%s extra '%s' lacks '%s'", rel, name, got->extra,
                  want_extra);
    }
    CHECK_MSG(strstr(got->extra, "globals: ") != NULL, "%s:%s extra '%s'", rel, name, got->extra);
    int nd = (int)json_array_size(shape);
    CHECK_MSG(got->ti.ndim == nd, "%s:%s ndim %d, want %d", rel, name, got->ti.ndim, nd);
    int64_t numel = 1, isz = 0;
    for (int d = 0; d < nd && d < AS_MAX_DIMS; d++) {
        CHECK(got->ti.shape[d] == json_integer_value(json_array_get(shape, d)));
        CHECK(got->ti.stride[d] == json_integer_value(json_array_get(stride, d)));
        numel *= json_integer_value(json_array_get(shape, d));
    }
    /* data_offset = record start + storage_offset * itemsize; torch aligns records to 64 bytes,
     * and tensors sharing a storage agree on its start */
    const char *skey = json_string_value(json_object_get(want, "storage_key"));
    int64_t rec_start = got->ti.data_offset - json_integer_value(json_object_get(want, "storage_offset")) *
                                                  torch_itemsize(dtype);
    CHECK_MSG(torch_itemsize(dtype) > 0 && rec_start > 0 && rec_start % 64 == 0, "%s:%s record starts at %lld", rel,
              name, (long long)rec_start);
    int seen = 0;
    for (int i = 0; i < recs->n; i++)
        if (!strcmp(recs->key[i], skey)) {
            seen = 1;
            CHECK_MSG(recs->off[i] == rec_start, "%s:%s storage '%s' at %lld and %lld", rel, name, skey,
                      (long long)recs->off[i], (long long)rec_start);
        }
    if (!seen && recs->n < 16) {
        snprintf(recs->key[recs->n], sizeof recs->key[0], "%s", skey);
        recs->off[recs->n++] = rec_start;
    }
    const char *hex = json_string_value(json_object_get(want, "data_hex_le"));
    if (numel > 0 && hex && strlen(hex) <= 1024) {
        isz = (int64_t)strlen(hex) / 2 / numel;
        CHECK_MSG(got->ti.nbytes == numel * isz, "%s:%s nbytes %lld", rel, name, (long long)got->ti.nbytes);
        /* element 0 sits at data_offset: compare its bytes with the file */
        unsigned char elem[16], want_elem[16];
        int fd_ = open(path, O_RDONLY);
        CHECK(fd_ >= 0 && isz <= 16 && pread(fd_, elem, (size_t)isz, got->ti.data_offset) == isz);
        close(fd_);
        for (int64_t i = 0; i < isz; i++)
            want_elem[big_endian ? isz - 1 - i : i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        CHECK_MSG(!memcmp(elem, want_elem, (size_t)isz), "%s:%s bytes at data_offset %lld differ", rel, name,
                  (long long)got->ti.data_offset);
    }
    if (fd == AS_DTYPE_COUNT) {
        struct as_error err = { 0 };
        struct as_reader *r;
        int rc = as_reader_pt.open(&r, path, name, &err);
        CHECK_MSG(rc != 0 && strstr(err.msg, "is not supported for statistics"), "%s:%s: %s", rel, name, err.msg);
        if (!rc)
            as_reader_pt.close(r);
        return;
    }
    /* values: whole tensor as float64 and float32 */
    json_t *values = json_object_get(want, "values");
    CHECK((int64_t)json_array_size(values) == numel);
    double *wv = malloc((size_t)(numel ? numel : 1) * sizeof *wv);
    for (int64_t i = 0; i < numel; i++)
        wv[i] = json_number_value(json_array_get(values, (size_t)i));
    struct as_error err = { 0 };
    struct as_tensor_info info;
    double *v = read_slab(path, name, NULL, NULL, AS_DTYPE_F64, &info, &err);
    CHECK_MSG(v != NULL, "%s:%s: %s", rel, name, err.msg);
    if (v) {
        CHECK(!memcmp(&info, &got->ti, sizeof info));
        CHECK_ARRAY(v, wv, (size_t)numel, VALUE_ATOL, VALUE_RTOL);
    }
    free(v);
    float *f = read_slab(path, name, NULL, NULL, AS_DTYPE_F32, NULL, &err);
    CHECK_MSG(f != NULL, "%s:%s: %s", rel, name, err.msg);
    if (f) {
        double *fv = malloc((size_t)(numel ? numel : 1) * sizeof *fv);
        for (int64_t i = 0; i < numel; i++)
            fv[i] = f[i];
        CHECK_ARRAY(fv, wv, (size_t)numel, VALUE_ATOL, VALUE_RTOL);
        free(fv);
    }
    free(f);
    /* a sub-slab: drop the first index of every dim that has more than one */
    if (nd > 0 && numel > 1) {
        int64_t start[AS_MAX_DIMS], count[AS_MAX_DIMS], idx[AS_MAX_DIMS] = { 0 };
        for (int d = 0; d < nd; d++) {
            start[d] = got->ti.shape[d] > 1;
            count[d] = got->ti.shape[d] - start[d];
        }
        int64_t m = as_shape_numel(nd, count);
        double *sv = read_slab(path, name, start, count, AS_DTYPE_F64, NULL, &err);
        CHECK_MSG(sv != NULL, "%s:%s slab: %s", rel, name, err.msg);
        double *sw = malloc((size_t)(m ? m : 1) * sizeof *sw);
        for (int64_t k = 0; k < m; k++) {
            int64_t full[AS_MAX_DIMS];
            for (int d = 0; d < nd; d++)
                full[d] = start[d] + idx[d];
            sw[k] = wv[flat_index(nd, got->ti.shape, full)];
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < count[d])
                    break;
                idx[d] = 0;
            }
        }
        if (sv)
            CHECK_ARRAY(sv, sw, (size_t)m, VALUE_ATOL, VALUE_RTOL);
        free(sv);
        free(sw);
    }
    free(wv);
}

static int n_good, n_bad, n_tensors;

static void test_reader_pt__expected_json(void)
{
    const char *rel;
    json_t *want;
    json_object_foreach(expected, rel, want) {
        char path[4096];
        fixture(path, sizeof path, rel);
        if (!json_is_true(json_object_get(want, "ok"))) {
            char msg[AS_ERROR_MSG_MAX];
            CHECK_MSG(rejected(path, msg, sizeof msg), "%s was accepted (expected %s)", rel,
                      json_string_value(json_object_get(want, "error")));
            n_bad++;
            continue;
        }
        n_good++;
        struct list_ctx *c = calloc(1, sizeof *c);
        struct as_error err = { 0 };
        int rc = as_reader_pt.list(path, list_cb, c, &err);
        CHECK_MSG(rc == 0, "%s: %s", rel, err.msg);
        json_t *tensors = json_object_get(want, "tensors");
        CHECK_MSG(c->n == (int)json_array_size(tensors), "%s: %d tensors listed, want %zu", rel, c->n,
                  json_array_size(tensors));
        int big = !strcmp(json_string_value(json_object_get(want, "byteorder")), "big");
        struct records recs = { .n = 0 };
        for (int i = 0; !rc && i < c->n && i < (int)json_array_size(tensors); i++, n_tensors++)
            check_tensor(path, rel, json_array_get(tensors, (size_t)i), &c->v[i], big, &recs);
        free(c);
    }
    CHECK(n_good >= 28 && n_bad >= 49);
}

/* Every file in bad/ (not only those named in expected.json) and regress/ is rejected. */
static void check_dir_rejected(const char *sub, int *count)
{
    char dir[4096];
    fixture(dir, sizeof dir, sub);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096 + 256], msg[AS_ERROR_MSG_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        CHECK_MSG(rejected(path, msg, sizeof msg), "%s was accepted", path);
        (*count)++;
    }
    closedir(d);
}

static void test_reader_pt__bad_and_regress_dirs(void)
{
    int nb = 0, nr = 0;
    check_dir_rejected("bad", &nb);
    check_dir_rejected("regress", &nr);
    CHECK(nb == 48);
    fprintf(stderr, "     %d bad/ files and %d regress/ files rejected\n", nb, nr);
}

static void check_msg(const char *rel, const char *key, const char *want)
{
    char path[4096];
    struct as_error err = { 0 };
    struct as_reader *r;
    fixture(path, sizeof path, rel);
    int rc = as_reader_pt.open(&r, path, key, &err);
    CHECK_MSG(rc != 0 && strstr(err.msg, want), "%s key '%s': got '%s', want '%s'", rel, key ? key : "(null)", err.msg,
              want);
    CHECK(err.status == AS_ERR_INPUT || rc == 0);
    if (!rc)
        as_reader_pt.close(r);
}

static void test_reader_pt__messages(void)
{
    check_msg("bad/global_os_system.pt", NULL, "global_os_system.pt': pickle global 'os.system' is not allowed");
    check_msg("bad/reduce_builtins_print.pt", NULL, "pickle global 'builtins.print' is not allowed");
    check_msg("bad/quantized_tensor.pt", NULL, "quantized tensors are not supported");
    check_msg("legacy_format_float32_2x3.pt", NULL,
              "legacy_format_float32_2x3.pt': legacy (pre-1.6) torch.save format; re-save it with "
              "torch.save(torch.load(f), f) in torch >= 1.6");
    check_msg("bad/torchscript_module.pt", NULL, "torchscript archive");
    check_msg("bad/numel_exceeds_record.pt", NULL, "storage 'data/0' needs 4000 bytes but the record holds 24");
    check_msg("bad/deflated_data_record.pt", NULL, "compression method 8");
    check_msg("bad/duplicate_entry_names.pt", NULL, "duplicate zip entry name");
    check_msg("bad/mark_bomb.pt", NULL, "MARKs nested deeper than");
    check_msg("bad/deeply_nested_lists.pt", NULL, "nested deeper than");
    check_msg("dict_two_tensors.pt", "bias", "dtype int64 is not supported for statistics");
    check_msg("synth/float8_e4m3fn_v3.pt", "w8", "dtype float8_e4m3fn is not supported for statistics");
}

static void check_key(const char *rel, const char *key, int64_t n0, double v0)
{
    char path[4096];
    struct as_error err = { 0 };
    struct as_tensor_info ti;
    fixture(path, sizeof path, rel);
    double *v = read_slab(path, key, NULL, NULL, AS_DTYPE_F64, &ti, &err);
    CHECK_MSG(v != NULL, "%s key '%s': %s", rel, key ? key : "(null)", err.msg);
    if (v) {
        CHECK(as_shape_numel(ti.ndim, ti.shape) == n0);
        CHECK_CLOSE(v[0], v0, 0, 0);
    }
    free(v);
}

static void test_reader_pt__keys(void)
{
    check_key("float32_2x3.pt", NULL, 6, 0);            /* root tensor */
    check_key("float32_2x3.pt", "", 6, 0);
    check_key("state_dict_linear.pt", "bias", 2, 1.5);
    check_key("nested_checkpoint.pt", "model.weight", 6, 0.5);
    check_key("nested_checkpoint.pt", "pair.1", 1, 3.0); /* tuple index */
    check_key("parameter_dict.pt", NULL, 2, 1.0);        /* the only tensor of a dict */
    check_key("synth/float8_e4m3fn_v3.pt", "scale", 1, 0.5);
    check_msg("dict_two_tensors.pt", NULL, "holds several tensors; choose a key: 'weight', 'bias'");
    check_msg("nested_checkpoint.pt", "model", "no tensor 'model'; available: 'model.weight', 'model.bias'");
    check_msg("nested_checkpoint.pt", "pair.0", "tensor 'pair.0': dtype int32 is not supported for statistics");
}

static void test_reader_pt__zip64(void)
{
    char path[4096];
    size_t n;
    fixture(path, sizeof path, "synth/zip64_forced_small.pt");
    unsigned char *b = slurp(path, &n);
    CHECK(b && n == 1000);
    /* the file does exercise zip64: locator + record present, classic EOCD offsets are markers */
    CHECK(b && memmem(b, n, "PK\6\6", 4) && memmem(b, n, "PK\6\7", 4) &&
          !memcmp(b + n - 22, "PK\5\6", 4) && !memcmp(b + n - 6, "\xff\xff\xff\xff", 4));
    free(b);
    check_key("synth/zip64_forced_small.pt", NULL, 6, 0);
    struct as_error err = { 0 };
    int64_t start[2] = { 1, 1 }, count[2] = { 1, 2 };
    double *v = read_slab(path, NULL, start, count, AS_DTYPE_F64, NULL, &err);
    CHECK(v && v[0] == 4 && v[1] == 5);
    free(v);
}

static void test_reader_pt__prefix(void)
{
    char path[4096], copy[4096 + 64];
    size_t n;
    /* saved through a file object: prefix 'archive' */
    fixture(path, sizeof path, "float32_2x3_fileobj.pt");
    unsigned char *b = slurp(path, &n);
    CHECK(b && !memcmp(b + 30, "archive/data.pkl", 16));
    check_key("float32_2x3_fileobj.pt", NULL, 6, 0);
    free(b);
    /* saved to a path: prefix = the file's base name, also after renaming the file */
    fixture(path, sizeof path, "float32_2x3.pt");
    b = slurp(path, &n);
    CHECK(b && !memcmp(b + 30, "float32_2x3/data.pkl", 20));
    snprintf(copy, sizeof copy, "%s/renamed.pt", tmpdir);
    CHECK(b && spit(copy, b, n) == 0);
    struct as_error err = { 0 };
    double *v = read_slab(copy, NULL, NULL, NULL, AS_DTYPE_F64, NULL, &err);
    CHECK_MSG(v && v[5] == 5, "%s", err.msg);
    free(v);
    free(b);
    unlink(copy);
}

/* Cut a valid file every 7th byte: each piece is rejected or reads the original values. */
static void truncations(const char *rel, int *n_rej, int *n_ok)
{
    char path[4096], cut[4096 + 64], msg[AS_ERROR_MSG_MAX];
    size_t n;
    fixture(path, sizeof path, rel);
    unsigned char *b = slurp(path, &n);
    CHECK(b != NULL);
    snprintf(cut, sizeof cut, "%s/cut.pt", tmpdir);
    for (size_t len = 0; b && len < n; len += 7) {
        CHECK(spit(cut, b, len) == 0);
        if (rejected(cut, msg, sizeof msg)) {
            (*n_rej)++;
            continue;
        }
        (*n_ok)++;
        struct as_error e1 = { 0 }, e2 = { 0 };
        struct as_tensor_info t1, t2;
        double *a = read_slab(cut, NULL, NULL, NULL, AS_DTYPE_F64, &t1, &e1);
        double *o = read_slab(path, NULL, NULL, NULL, AS_DTYPE_F64, &t2, &e2);
        CHECK(a && o && !memcmp(&t1, &t2, sizeof t1) &&
              !memcmp(a, o, (size_t)as_shape_numel(t1.ndim, t1.shape) * sizeof *a));
        free(a);
        free(o);
    }
    unlink(cut);
    free(b);
}

static void test_reader_pt__truncated(void)
{
    int rej = 0, ok = 0;
    truncations("nested_checkpoint.pt", &rej, &ok);
    truncations("synth/zip64_forced_small.pt", &rej, &ok);
    truncations("synth/torch27_layout_float32_2x3.pt", &rej, &ok);
    CHECK(rej > 600 && ok == 0);
    fprintf(stderr, "     %d truncated files rejected, %d read\n", rej, ok);
}

/* Overwrite every byte of a valid file with a few values: no crash, no leak (under ASan), and
 * every failure explained. */
static void test_reader_pt__byte_mutations(void)
{
    static const unsigned char vals[] = { 0x00, 0xff, 0x7f, 0x80, 0x01 };
    const char *rels[] = { "dict_two_tensors.pt", "float32_2x3_proto4.pt", "synth/zip64_forced_small.pt" };
    char path[4096], mut[4096 + 64], msg[AS_ERROR_MSG_MAX];
    int rej = 0, ok = 0;
    snprintf(mut, sizeof mut, "%s/mut.pt", tmpdir);
    for (size_t f = 0; f < sizeof rels / sizeof rels[0]; f++) {
        size_t n;
        fixture(path, sizeof path, rels[f]);
        unsigned char *b = slurp(path, &n);
        CHECK(b != NULL);
        for (size_t i = 0; b && i < n; i++)
            for (size_t k = 0; k < sizeof vals; k++) {
                unsigned char old = b[i];
                if (old == vals[k])
                    continue;
                b[i] = vals[k];
                CHECK(spit(mut, b, n) == 0);
                if (rejected(mut, msg, sizeof msg))
                    rej++;
                else
                    ok++;
                b[i] = old;
            }
        free(b);
    }
    unlink(mut);
    CHECK(rej > 1000 && ok > 100);
    fprintf(stderr, "     %d mutants rejected, %d accepted\n", rej, ok);
}

/* ---- hand-built archives: what no fixture has */

struct buf {
    unsigned char *b;
    size_t n, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->b = realloc(b->b, b->cap);
        assert(b->b);
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void put_u8(struct buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void put_u16(struct buf *b, unsigned v) { put_u8(b, v & 0xff), put_u8(b, v >> 8 & 0xff); }
static void put_u32(struct buf *b, uint32_t v) { put_u16(b, v & 0xffff), put_u16(b, v >> 16); }
static void put_s(struct buf *b, const char *s) { put(b, s, strlen(s)); }
#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1) /* literals may hold NULs */

/* pickle pieces */
static void pk_str(struct buf *p, const char *s)
{
    put_u8(p, 'X');
    put_u32(p, (uint32_t)strlen(s));
    put_s(p, s);
}
static void pk_global(struct buf *p, const char *mod, const char *name)
{
    put_u8(p, 'c');
    put_s(p, mod);
    put_u8(p, '\n');
    put_s(p, name);
    put_u8(p, '\n');
}
static void pk_int(struct buf *p, int64_t v)
{
    put_u8(p, 0x8a);
    put_u8(p, 8);
    for (int i = 0; i < 8; i++)
        put_u8(p, (unsigned)((uint64_t)v >> (8 * i)) & 0xff);
}
static void pk_ints(struct buf *p, int n, const int64_t *v)
{
    put_u8(p, '(');
    for (int i = 0; i < n; i++)
        pk_int(p, v[i]);
    put_u8(p, 't');
}
/* _rebuild_tensor_v2(storage(key, FloatStorage, numel), offset, shape, stride, False, OrderedDict()[, meta]) */
static void pk_tensor(struct buf *p, const char *key, int64_t numel, int64_t offset, int nd, const int64_t *shape,
                      const int64_t *stride, const char *meta_key)
{
    pk_global(p, "torch._utils", "_rebuild_tensor_v2");
    put_u8(p, '(');
    put_u8(p, '(');
    pk_str(p, "storage");
    pk_global(p, "torch", "FloatStorage");
    pk_str(p, key);
    pk_str(p, "cpu");
    pk_int(p, numel);
    put_s(p, "tQ");
    pk_int(p, offset);
    pk_ints(p, nd, shape);
    pk_ints(p, nd, stride);
    put_u8(p, 0x89);
    pk_global(p, "collections", "OrderedDict");
    put_s(p, ")R");
    if (meta_key) {
        put_u8(p, '}');
        pk_str(p, meta_key);
        put_u8(p, 0x88);
        put_u8(p, 's');
    }
    put_s(p, "tR");
}

struct rec {
    const char *name;
    const void *data;
    size_t n;
};

/* A plain (non-zip64) stored archive, no alignment padding, real CRCs. */
static int write_zip(const char *path, const char *prefix, const struct rec *r, int n)
{
    struct buf z = { 0 }, cd = { 0 };
    for (int i = 0; i < n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s/%s", prefix, r[i].name);
        uint32_t lho = (uint32_t)z.n, crc = pt_crc32(0, r[i].data, r[i].n);
        put_s(&z, "PK\3\4");
        put_u16(&z, 20), put_u16(&z, 0), put_u16(&z, 0), put_u16(&z, 0), put_u16(&z, 0);
        put_u32(&z, crc), put_u32(&z, (uint32_t)r[i].n), put_u32(&z, (uint32_t)r[i].n);
        put_u16(&z, (unsigned)strlen(name)), put_u16(&z, 0);
        put_s(&z, name);
        put(&z, r[i].data, r[i].n);
        put_s(&cd, "PK\1\2");
        put_u16(&cd, 20), put_u16(&cd, 20), put_u16(&cd, 0), put_u16(&cd, 0), put_u16(&cd, 0), put_u16(&cd, 0);
        put_u32(&cd, crc), put_u32(&cd, (uint32_t)r[i].n), put_u32(&cd, (uint32_t)r[i].n);
        put_u16(&cd, (unsigned)strlen(name)), put_u16(&cd, 0), put_u16(&cd, 0), put_u16(&cd, 0), put_u16(&cd, 0);
        put_u32(&cd, 0), put_u32(&cd, lho);
        put_s(&cd, name);
    }
    uint32_t cd_off = (uint32_t)z.n;
    put(&z, cd.b, cd.n);
    put_s(&z, "PK\5\6");
    put_u16(&z, 0), put_u16(&z, 0), put_u16(&z, (unsigned)n), put_u16(&z, (unsigned)n);
    put_u32(&z, (uint32_t)cd.n), put_u32(&z, cd_off), put_u16(&z, 0);
    int rc = spit(path, z.b, z.n);
    free(z.b);
    free(cd.b);
    return rc;
}

/* Write <tmp>/<file> holding data.pkl = pkl, data/0 = data, version = "3\n". */
static void build(char *path, size_t pn, const char *file, const struct buf *pkl, const void *data, size_t dn)
{
    struct rec r[3] = { { "data.pkl", pkl->b, pkl->n }, { "data/0", data, dn }, { "version", "3\n", 2 } };
    snprintf(path, pn, "%s/%s", tmpdir, file);
    CHECK(write_zip(path, "archive", r, 3) == 0);
}

static void test_reader_pt__neg_view(void)
{
    float data[6] = { 0, 1, 2, 3, 4, 5 };
    int64_t shape[2] = { 2, 3 }, stride[2] = { 3, 1 };
    struct buf p = { 0 };
    char path[4096];
    put_s(&p, "\x80\x02");
    pk_tensor(&p, "0", 6, 0, 2, shape, stride, "neg");
    put_u8(&p, '.');
    build(path, sizeof path, "neg.pt", &p, data, sizeof data);
    struct as_error err = { 0 };
    double *v = read_slab(path, NULL, NULL, NULL, AS_DTYPE_F64, NULL, &err);
    CHECK_MSG(v && v[0] == 0 && v[1] == -1 && v[5] == -5, "%s", err.msg);
    free(v);
    int64_t start[2] = { 1, 0 }, count[2] = { 1, 3 };
    float *f = read_slab(path, NULL, start, count, AS_DTYPE_F32, NULL, &err);
    CHECK(f && f[0] == -3 && f[2] == -5);
    free(f);
    unlink(path);
    free(p.b);
}

/* A 4-D tensor read layer by layer (the pipeline's access pattern), from a non-zero offset. */
static void test_reader_pt__layers(void)
{
    enum { L = 7, H = 3, S = 16 };
    int64_t shape[4] = { L, H, S, S }, stride[4] = { H * S * S, S * S, S, 1 }, n = L * H * S * S;
    float *data = malloc((size_t)(n + 5) * sizeof *data);
    for (int64_t i = 0; i < n + 5; i++)
        data[i] = (float)(i - 5) * 0.5f;
    struct buf p = { 0 };
    char path[4096];
    put_s(&p, "\x80\x02}");
    pk_str(&p, "attn");
    pk_tensor(&p, "0", n + 5, 5, 4, shape, stride, NULL);
    put_s(&p, "s.");
    build(path, sizeof path, "layers.pt", &p, data, (size_t)(n + 5) * sizeof *data);
    struct as_error err = { 0 };
    struct as_reader *r;
    CHECK(as_reader_pt.open(&r, path, "attn", &err) == 0);
    const struct as_tensor_info *ti = as_reader_pt.info(r);
    float *layer = malloc(H * S * S * sizeof *layer);
    int ok = 1;
    for (int l = 0; l < L && ok; l++) {
        int64_t start[4] = { l, 0, 0, 0 }, count[4] = { 1, H, S, S };
        ok = as_reader_pt.read(r, start, count, AS_DTYPE_F32, layer, &err) == 0;
        for (int64_t i = 0; ok && i < H * S * S; i++)
            ok = layer[i] == (float)(l * H * S * S + i) * 0.5f;
    }
    CHECK_MSG(ok, "%s", err.msg);
    CHECK(ti->ndim == 4 && ti->nbytes == n * 4);
    as_reader_pt.close(r);
    unlink(path);
    free(layer);
    free(data);
    free(p.b);
}

static void expect_reject(const char *file, const struct buf *p, const char *want)
{
    char path[4096], msg[AS_ERROR_MSG_MAX];
    float data[6] = { 0 };
    build(path, sizeof path, file, p, data, sizeof data);
    CHECK_MSG(rejected(path, msg, sizeof msg) && strstr(msg, want), "%s: got '%s', want '%s'", file, msg, want);
    unlink(path);
}

/* Pickles that build cycles, shared DAGs and memo/stack bombs: bounded, explained. */
static void test_reader_pt__hostile_pickles(void)
{
    int64_t shape[1] = { 6 }, stride[1] = { 1 };
    struct buf p = { 0 };
    /* a list that contains itself */
    PUT_LIT(&p, "\x80\x02]q\x00h\x00" "a.");
    expect_reject("cycle.pt", &p, "nested deeper than");
    /* x_0 = t, x_k = (x_{k-1}, x_{k-1}): 2^40 names, or 2^40 visits with None leaves */
    for (int leaf = 0; leaf < 2; leaf++) {
        p.n = 0;
        put_s(&p, "\x80\x02");
        if (leaf)
            put_u8(&p, 'N');
        else
            pk_tensor(&p, "0", 6, 0, 1, shape, stride, NULL);
        PUT_LIT(&p, "q\x00");
        for (int k = 0; k < 40; k++)
            PUT_LIT(&p, "h\x00\x86q\x00"); /* memo[0] = (top, memo[0]) */
        put_u8(&p, '.');
        expect_reject(leaf ? "dag_none.pt" : "dag.pt", &p, leaf ? "too large to walk" : "more than 1048576 tensor names");
    }
    /* memo index jump, BINGET flood, huge LONG1, tensor as dict key, 65 dims */
    p.n = 0;
    put_s(&p, "\x80\x02Nr\xff\xff\xff\xff.");
    expect_reject("memo_jump.pt", &p, "not sequential");
    p.n = 0;
    PUT_LIT(&p, "\x80\x02Nq\x00");
    for (int i = 0; i < (1 << 20) + 1; i++)
        PUT_LIT(&p, "h\x00");
    put_u8(&p, '.');
    expect_reject("stack_flood.pt", &p, "pickle stack exceeds");
    p.n = 0;
    put_s(&p, "\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.");
    expect_reject("long9.pt", &p, "wider than 64 bits");
    p.n = 0;
    put_s(&p, "\x80\x02}");
    pk_tensor(&p, "0", 6, 0, 1, shape, stride, NULL);
    put_s(&p, "Ns.");
    expect_reject("tensor_key.pt", &p, "with a tensor key");
    p.n = 0;
    int64_t s65[65], t65[65];
    for (int i = 0; i < 65; i++)
        s65[i] = 1, t65[i] = 1;
    put_s(&p, "\x80\x02");
    pk_tensor(&p, "0", 6, 0, 65, s65, t65, NULL);
    put_u8(&p, '.');
    expect_reject("rank65.pt", &p, "has 65 dims");
    p.n = 0;
    put_s(&p, "\x80\x02");
    pk_tensor(&p, "0", 6, 0, 1, shape, stride, "bogus");
    put_u8(&p, '.');
    expect_reject("meta.pt", &p, "unsupported metadata");
    p.n = 0;
    put_s(&p, "\x80\x02");
    pk_global(&p, "torch.nn.modules.linear", "Linear");
    put_u8(&p, '.');
    expect_reject("module.pt", &p, "save model.state_dict() instead");
    free(p.b);
}

int main(void)
{
    const char *src = getenv("AS_SRC");
    snprintf(fixdir, sizeof fixdir, "%s/tests/fixtures/pt", src ? src : ".");
    char jpath[1024 + 32];
    snprintf(jpath, sizeof jpath, "%s/expected.json", fixdir);
    json_error_t jerr;
    expected = json_load_file(jpath, 0, &jerr);
    if (!expected) {
        fprintf(stderr, "cannot load %s: %s\n", jpath, jerr.text);
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/as_test_pt_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a temp dir: %s\n", strerror(errno));
        return 1;
    }
    TEST_RUN(test_reader_pt__expected_json);
    fprintf(stderr, "     %d accepted files (%d tensors), %d rejected files checked\n", n_good, n_tensors, n_bad);
    TEST_RUN(test_reader_pt__bad_and_regress_dirs);
    TEST_RUN(test_reader_pt__messages);
    TEST_RUN(test_reader_pt__keys);
    TEST_RUN(test_reader_pt__zip64);
    TEST_RUN(test_reader_pt__prefix);
    TEST_RUN(test_reader_pt__truncated);
    TEST_RUN(test_reader_pt__byte_mutations);
    TEST_RUN(test_reader_pt__neg_view);
    TEST_RUN(test_reader_pt__layers);
    TEST_RUN(test_reader_pt__hostile_pickles);
    json_decref(expected);
    rmdir(tmpdir);
    return as_test_done();
}
