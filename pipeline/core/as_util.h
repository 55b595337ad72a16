/* as_util.h: small shared helpers: growable strings, checked arithmetic, hashing, time. */
#ifndef AS_PIPELINE_AS_UTIL_H
#define AS_PIPELINE_AS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A growable NUL-terminated string (git strbuf). buf is owned; _release frees it. */
struct as_strbuf {
    char *buf;
    size_t len, alloc;
};
#define AS_STRBUF_INIT { NULL, 0, 0 }

/* Branch hints: the compiler lays the unlikely side out as the cold one. */
#if defined(__GNUC__)
#define AS_LIKELY(x) __builtin_expect(!!(x), 1)
#define AS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define AS_LIKELY(x) (x)
#define AS_UNLIKELY(x) (x)
#endif
void as_strbuf_addf(struct as_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void as_strbuf_add(struct as_strbuf *sb, const char *s, size_t n);
void as_strbuf_release(struct as_strbuf *sb);
static inline const char *as_strbuf_str(const struct as_strbuf *sb) { return sb->buf ? sb->buf : ""; }

/* Byte-packing of plain data between processes (same binary, same layout): as_pack appends n
 * bytes, as_pack_str a string as (u64 length, bytes); a cursor reads them back in order (AS_ASSERT
 * on reading past the end: the packer is the same program). */
void as_pack(struct as_strbuf *b, const void *p, size_t n);
void as_pack_str(struct as_strbuf *b, const char *s);
struct as_cursor {
    const unsigned char *p, *end;
};
void as_unpack(struct as_cursor *c, void *dst, size_t n);
/* The next string into dst (cap bytes, AS_ASSERT that it fits), or as an owned copy. */
void as_unpack_str(struct as_cursor *c, char *dst, size_t cap);
char *as_unpack_strdup(struct as_cursor *c);

/* 1 when `line` is one of the newline-separated lines of `text`. */
int as_text_has_line(const char *text, const char *line);

/* Overflow-checked size arithmetic: return 0 and set *out, or -1 on overflow. */
int as_mul_i64(int64_t a, int64_t b, int64_t *out);
int as_add_i64(int64_t a, int64_t b, int64_t *out);

/* The allocators of the out-of-memory policy (as_error.h): never NULL; on failure the job ends
 * (exit 7) with one line naming the bytes and the calling file:line. 0 bytes allocate 1. */
void *as_xmalloc_at(size_t size, const char *file, int line);
void *as_xcalloc_at(size_t n, size_t size, const char *file, int line);
void *as_xrealloc_at(void *p, size_t n, size_t size, const char *file, int line);
#define as_xmalloc(size) as_xmalloc_at((size), __FILE__, __LINE__)
#define as_xcalloc(n, size) as_xcalloc_at((n), (size), __FILE__, __LINE__)
#define as_xrealloc(p, n, size) as_xrealloc_at((p), (n), (size), __FILE__, __LINE__) /* n * size, checked */
char *as_xstrdup(const char *s);

/* splitmix64: counter-based, so any element can be generated independently (synthetic data,
 * samplers) and results do not depend on who computes what. */
static inline uint64_t as_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
/* Uniform double in [0, 1) from 53 bits of a hash. */
static inline double as_u01(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

/* Large buffers that are filled at once (caches): anonymous memory mapped with its pages in
 * place (MAP_POPULATE: one system call instead of a page fault per 4 KB). Zero-filled. NULL on
 * failure. Free with as_big_free(p, n), n as allocated. */
void *as_big_alloc(size_t n);
void as_big_free(void *p, size_t n);

double as_now(void);               /* monotonic seconds */
void as_iso_time(char *buf, size_t n); /* UTC "2026-11-26T10:22:25Z" */

/* mkdir -p of the folder that will hold `path` (nothing when path has no '/'); -1 on failure. */
int as_mkdir_parent(const char *path);

/* Copy at most n-1 bytes and always terminate; returns -1 if truncated. */
int as_strlcpy(char *dst, const char *src, size_t n);

#endif
