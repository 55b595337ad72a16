/* as_dtype.h: element types of input tensors and their conversion to a stage's working type. */
#ifndef AS_PIPELINE_AS_DTYPE_H
#define AS_PIPELINE_AS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum as_dtype {
    AS_DTYPE_F32 = 0,
    AS_DTYPE_F64,
    AS_DTYPE_F16,
    AS_DTYPE_BF16,
    AS_DTYPE_COUNT
};

struct as_dtype_traits {
    const char *name;   /* "float32", ... as torch and numpy spell it */
    size_t size;        /* bytes per element */
};

/* Indexed by enum as_dtype; a static_assert in as_dtype.c keeps it in step with AS_DTYPE_COUNT. */
extern const struct as_dtype_traits as_dtype_traits[AS_DTYPE_COUNT];

/* The working type a stage receives for an input dtype: float64 stays float64, every other
 * type becomes float32 (float16/bfloat16 widen exactly). */
enum as_dtype as_dtype_working(enum as_dtype in);

float as_f16_to_f32(uint16_t h);
float as_bf16_to_f32(uint16_t b);

/* Convert n little-endian elements of type `in` at src to `out` (F32 or F64) at dst.
 * src and dst must not overlap unless in == out. */
void as_dtype_convert(enum as_dtype in, const void *src, enum as_dtype out, void *dst, size_t n);

#endif
