/* as_util.c: strbuf, checked arithmetic, time. */
#include "as_util.h"

#include "as_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>

static void sb_grow(struct as_strbuf *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->alloc)
        return;
    size_t want = sb->alloc ? sb->alloc : 256;
    while (want < sb->len + extra + 1)
        want *= 2;
    sb->buf = as_xrealloc(sb->buf, want, 1);
    sb->alloc = want;
}

void as_strbuf_add(struct as_strbuf *sb, const char *s, size_t n)
{
    sb_grow(sb, n);
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void as_strbuf_addf(struct as_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    sb_grow(sb, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void as_strbuf_release(struct as_strbuf *sb)
{
    free(sb->buf);
    sb->buf = NULL;
    sb->len = sb->alloc = 0;
}

int as_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return -1;
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

int as_add_i64(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0)
        return -1;
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

__attribute__((noreturn)) static void oom(size_t n, size_t size, const char *file, int line)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        as_fatal(AS_EXIT_NOMEM, "out of memory: %zu x %zu bytes (more than the address space) at %s:%d", n, size,
                 file, line);
    as_fatal(AS_EXIT_NOMEM, "out of memory: %zu bytes at %s:%d (give each rank more memory, then run again with --resume)",
             bytes, file, line);
}

void *as_xmalloc_at(size_t size, const char *file, int line)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size, 1, file, line);
    return p;
}

void *as_xcalloc_at(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n, size, file, line);
    return p;
}

void *as_xrealloc_at(void *p, size_t n, size_t size, const char *file, int line)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes))
        oom(n, size, file, line);
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        oom(n, size, file, line);
    return q;
}

char *as_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = as_xcalloc(n, 1);
    memcpy(p, s, n);
    return p;
}

double as_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void as_iso_time(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int as_strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (n == 0)
        return -1;
    size_t c = len < n - 1 ? len : n - 1;
    memcpy(dst, src, c);
    dst[c] = '\0';
    return len < n ? 0 : -1;
}

int as_mkdir_parent(const char *path)
{
    char d[4200];
    as_strlcpy(d, path, sizeof d);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d)
        return 0;
    *slash = '\0';
    for (char *p = d + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(d, 0777) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(d, 0777) && errno != EEXIST ? -1 : 0;
}

void *as_big_alloc(size_t n)
{
    if (!n)
        return NULL;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void as_big_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

int as_text_has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, line, n))
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

void as_pack(struct as_strbuf *b, const void *p, size_t n)
{
    as_strbuf_add(b, p, n);
}

void as_pack_str(struct as_strbuf *b, const char *s)
{
    uint64_t n = strlen(s);
    as_pack(b, &n, sizeof n);
    as_pack(b, s, (size_t)n);
}

void as_unpack(struct as_cursor *c, void *dst, size_t n)
{
    AS_ASSERT((size_t)(c->end - c->p) >= n);
    memcpy(dst, c->p, n);
    c->p += n;
}

void as_unpack_str(struct as_cursor *c, char *dst, size_t cap)
{
    uint64_t n;
    as_unpack(c, &n, sizeof n);
    AS_ASSERT(n < cap);
    as_unpack(c, dst, (size_t)n);
    dst[n] = 0;
}

char *as_unpack_strdup(struct as_cursor *c)
{
    uint64_t n;
    as_unpack(c, &n, sizeof n);
    char *s = as_xmalloc((size_t)n + 1);
    as_unpack(c, s, (size_t)n);
    s[n] = 0;
    return s;
}
