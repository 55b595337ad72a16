/* as_simd.h: which vector instruction set the kernels use. One choice for the whole process:
 * the widest the CPU has, unless a test or benchmark forces a narrower one. Every kernel that
 * dispatches on it gives the same bits whatever the choice (fixed partial sums, the same IEEE
 * operations lane by lane, no FMA), so it changes speed, never a result. */
#ifndef AS_PIPELINE_AS_SIMD_H
#define AS_PIPELINE_AS_SIMD_H

enum as_simd {
    AS_SIMD_SCALAR = 0,            /* plain C, any machine */
    AS_SIMD_SSE2,                  /* the x86-64 baseline */
    AS_SIMD_AVX2,
    AS_SIMD_AVX512,                /* AVX-512F */
    AS_SIMD_COUNT
};

/* The level in use: the forced one, else the widest this CPU (and build) has. */
enum as_simd as_simd_level(void);
/* "scalar", "sse2", "avx2", "avx512", or NULL for an out-of-range level. */
const char *as_simd_name(enum as_simd level);
/* Force a level by name, or "auto" to go back to the CPU's widest. Returns -1 (nothing
 * changed) when the name is unknown or the CPU lacks the set. Not thread-safe: for tests and
 * benchmarks, before the kernels run. */
int as_simd_force(const char *name);

#endif
