/* fuzz_reader_pt.c: libFuzzer harness for the torch.save reader: the input becomes a file (a
 * memfd), which is listed, and every listed float tensor is opened and read (whole when small,
 * else its first and last element), as float32 and float64.
 * Inputs that start with a pickle PROTO byte (0x80) are data.pkl alone: the harness wraps them in
 * a valid archive (records data/0..data/3 of 24, 8, 0 and 2 bytes, version, CRCs 0), so that
 * mutations reach the pickle VM instead of failing the zip CRC check. Seed with the archives
 * and with their data.pkl records. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "as_reader.h"

extern const struct as_reader_ops as_reader_pt;

#define FUZZ_MAX_TENSORS 32
#define FUZZ_MAX_READ (1 << 16) /* elements read at once */

struct names {
    char name[FUZZ_MAX_TENSORS][256];
    int n;
};

static void collect(void *ctx, const char *key, const struct as_tensor_info *ti, const char *extra)
{
    struct names *c = ctx;
    if (!key || !extra || ti->ndim < 0 || ti->ndim > AS_MAX_DIMS)
        abort();
    if (c->n < FUZZ_MAX_TENSORS && ti->dtype != AS_DTYPE_COUNT && strlen(key) < sizeof c->name[0])
        memcpy(c->name[c->n++], key, strlen(key) + 1);
}

struct buf {
    unsigned char *b;
    size_t n, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        if (!(b->b = realloc(b->b, b->cap)))
            abort();
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void put_zeros(struct buf *b, size_t n)
{
    static const unsigned char z[16];
    put(b, z, n);
}

static void put_le(struct buf *b, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        put(b, &c, 1);
    }
}

/* A stored archive "f/" holding data.pkl = pkl and fixed storage records (CRCs 0). */
static void wrap(struct buf *z, const uint8_t *pkl, size_t n)
{
    static const unsigned char blob[24] = { 0, 0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40,
                                            0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40 };
    const char *names[] = { "f/data.pkl", "f/data/0", "f/data/1", "f/data/2", "f/data/3", "f/version" };
    const void *data[] = { pkl, blob, blob, blob, blob, "3\n" };
    size_t len[] = { n, 24, 8, 0, 2, 2 };
    uint32_t lho[6];
    struct buf cd = { 0 };
    for (int i = 0; i < 6; i++) {
        lho[i] = (uint32_t)z->n;
        put(z, "PK\3\4", 4);
        put_zeros(z, 14); /* version, flags, method, time, date, crc */
        put_le(z, (uint32_t)len[i], 4);
        put_le(z, (uint32_t)len[i], 4);
        put_le(z, (uint32_t)strlen(names[i]), 2);
        put_le(z, 0, 2);
        put(z, names[i], strlen(names[i]));
        put(z, data[i], len[i]);
    }
    for (int i = 0; i < 6; i++) {
        put(&cd, "PK\1\2", 4);
        put_zeros(&cd, 16); /* made by, needed, flags, method, time, date, crc */
        put_le(&cd, (uint32_t)len[i], 4);
        put_le(&cd, (uint32_t)len[i], 4);
        put_le(&cd, (uint32_t)strlen(names[i]), 2);
        put_zeros(&cd, 12); /* extra, comment, disk, internal and external attributes */
        put_le(&cd, lho[i], 4);
        put(&cd, names[i], strlen(names[i]));
    }
    uint32_t cd_off = (uint32_t)z->n;
    put(z, cd.b, cd.n);
    put(z, "PK\5\6", 4);
    put_zeros(z, 4);
    put_le(z, 6, 2);
    put_le(z, 6, 2);
    put_le(z, (uint32_t)cd.n, 4);
    put_le(z, cd_off, 4);
    put_le(z, 0, 2);
    free(cd.b);
}

static void check_err(const struct as_error *err)
{
    if (!err->msg[0] || strchr(err->msg, '\n')) /* every failure is explained in one line */
        abort();
}

static void read_tensor(const char *path, const char *key)
{
    struct as_error err = { 0 };
    struct as_reader *r;
    if (as_reader_pt.open(&r, path, key, &err)) {
        check_err(&err);
        return;
    }
    const struct as_tensor_info *ti = as_reader_pt.info(r);
    int64_t start[AS_MAX_DIMS] = { 0 }, count[AS_MAX_DIMS], n = as_shape_numel(ti->ndim, ti->shape);
    if (n < 0)
        abort();
    for (int out = 0; out < 2; out++) {
        enum as_dtype o = out ? AS_DTYPE_F64 : AS_DTYPE_F32;
        if (n > 0 && n <= FUZZ_MAX_READ) {
            double *dst = malloc((size_t)n * sizeof *dst);
            if (dst && as_reader_pt.read(r, start, ti->shape, o, dst, &err))
                check_err(&err);
            free(dst);
        } else if (n > 0) {
            double one;
            for (int d = 0; d < ti->ndim; d++)
                count[d] = 1;
            if (as_reader_pt.read(r, start, count, o, &one, &err))
                check_err(&err);
            for (int d = 0; d < ti->ndim; d++)
                start[d] = ti->shape[d] - 1;
            if (as_reader_pt.read(r, start, count, o, &one, &err))
                check_err(&err);
            memset(start, 0, sizeof start);
        }
    }
    as_reader_pt.close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_reader_pt", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    struct buf z = { 0 };
    if (size && data[0] == 0x80) {
        wrap(&z, data, size);
        data = z.b;
        size = z.n;
    }
    if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    free(z.b);
    struct names c = { .n = 0 };
    struct as_error err = { 0 };
    if (as_reader_pt.list(path, collect, &c, &err)) {
        check_err(&err);
        return 0;
    }
    for (int i = 0; i < c.n; i++)
        read_tensor(path, c.name[i]);
    read_tensor(path, NULL);
    return 0;
}
