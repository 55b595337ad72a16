/* as_dtype.c: dtype table and conversions. */
#include "as_dtype.h"

#include <assert.h>
#include <string.h>

const struct as_dtype_traits as_dtype_traits[AS_DTYPE_COUNT] = {
    [AS_DTYPE_F32] = { "float32", 4 },
    [AS_DTYPE_F64] = { "float64", 8 },
    [AS_DTYPE_F16] = { "float16", 2 },
    [AS_DTYPE_BF16] = { "bfloat16", 2 },
};
static_assert(AS_DTYPE_COUNT == 4, "update as_dtype_traits");

enum as_dtype as_dtype_working(enum as_dtype in)
{
    return in == AS_DTYPE_F64 ? AS_DTYPE_F64 : AS_DTYPE_F32;
}

float as_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float as_bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void as_dtype_convert(enum as_dtype in, const void *src, enum as_dtype out, void *dst, size_t n)
{
    if (in == out) {
        memmove(dst, src, n * as_dtype_traits[in].size);
        return;
    }
    /* straight loops the compiler vectorises: these run on every element of every layer read */
    if (in == AS_DTYPE_F32 && out == AS_DTYPE_F64) {
        const float *s = src;
        double *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
        return;
    }
    if (in == AS_DTYPE_F64 && out == AS_DTYPE_F32) {
        const double *s = src;
        float *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = (float)s[i];
        return;
    }
    if (in == AS_DTYPE_BF16) {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)s[i] << 16;
            float f;
            memcpy(&f, &bits, 4);
            if (out == AS_DTYPE_F64)
                ((double *)dst)[i] = f;
            else
                ((float *)dst)[i] = f;
        }
        return;
    }
    const uint16_t *h = src; /* float16 */
    for (size_t i = 0; i < n; i++) {
        float f = as_f16_to_f32(h[i]);
        if (out == AS_DTYPE_F64)
            ((double *)dst)[i] = f;
        else
            ((float *)dst)[i] = f;
    }
}
