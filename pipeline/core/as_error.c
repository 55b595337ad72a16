/* as_error.c: error reporting helpers. */
#include "as_error.h"
#include "as_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int as_error_set(struct as_error *err, enum as_status status, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    err->status = status;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* one line whatever the file, key or YAML scalar it quotes holds */
    for (char *c = err->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return -1;
}

int as_error_prefix(struct as_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char pre[AS_ERROR_MSG_MAX], old[AS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t np = strlen(pre);
    if (np >= sizeof err->msg)
        np = sizeof err->msg - 1;
    memcpy(err->msg, pre, np);
    as_strlcpy(err->msg + np, old, sizeof err->msg - np);
    return -1;
}

void as_error_clear(struct as_error *err)
{
    if (err) {
        err->status = AS_OK;
        err->msg[0] = '\0';
    }
}

const char *as_status_name(enum as_status s)
{
    static const char *const names[AS_STATUS_COUNT] = {
        "ok", "usage", "config", "input", "io", "nomem", "mpi", "hdf5", "stopped", "internal",
    };
    return (unsigned)s < AS_STATUS_COUNT ? names[s] : "unknown";
}

int as_status_exit_code(enum as_status s)
{
    switch (s) {
    case AS_OK: return AS_EXIT_OK;
    case AS_ERR_USAGE: return AS_EXIT_USAGE;
    case AS_ERR_CONFIG: return AS_EXIT_CONFIG;
    case AS_ERR_INPUT: return AS_EXIT_INPUT;
    case AS_ERR_IO: case AS_ERR_HDF5: return AS_EXIT_IO;
    case AS_ERR_STOPPED: return AS_EXIT_RESUMABLE;
    case AS_ERR_NOMEM: return AS_EXIT_NOMEM;
    default: return AS_EXIT_INTERNAL;
    }
}

static void (*fatal_hook)(int code);

void as_fatal_set_hook(void (*hook)(int code))
{
    fatal_hook = hook;
}

__attribute__((noreturn)) static void fatal_v(int code, const char *prefix, const char *fmt, va_list ap)
{
    fprintf(stderr, "attnstat: error: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    if (fatal_hook)
        fatal_hook(code);
    exit(code);
}

void as_fatal(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fatal_v(code, "", fmt, ap);
}

void as_bug(const char *file, int line, const char *fmt, ...)
{
    char where[512];
    snprintf(where, sizeof where, "internal error (a bug, please report it) at %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    fatal_v(AS_EXIT_INTERNAL, where, fmt, ap);
}

int as_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "attnstat: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return AS_EXIT_USAGE;
}
