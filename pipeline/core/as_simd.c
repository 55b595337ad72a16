/* as_simd.c: the vector instruction set in use (as_simd.h). */
#include "as_simd.h"

#include <string.h>

static const char *const names[AS_SIMD_COUNT] = { "scalar", "sse2", "avx2", "avx512" };
static int forced = -1; /* -1: none */

static enum as_simd cpu_widest(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    static int widest = -1;
    if (widest < 0) {
        __builtin_cpu_init();
        widest = __builtin_cpu_supports("avx512f") ? AS_SIMD_AVX512
                 : __builtin_cpu_supports("avx2")  ? AS_SIMD_AVX2
                                                    : AS_SIMD_SSE2;
    }
    return (enum as_simd)widest;
#else
    return AS_SIMD_SCALAR;
#endif
}

enum as_simd as_simd_level(void) { return forced >= 0 ? (enum as_simd)forced : cpu_widest(); }

const char *as_simd_name(enum as_simd level)
{
    return (unsigned)level < AS_SIMD_COUNT ? names[level] : NULL;
}

int as_simd_force(const char *name)
{
    if (!strcmp(name, "auto")) {
        forced = -1;
        return 0;
    }
    for (int l = 0; l < AS_SIMD_COUNT; l++)
        if (!strcmp(name, names[l])) {
            if (l > (int)cpu_widest())
                return -1;
            forced = l;
            return 0;
        }
    return -1;
}
