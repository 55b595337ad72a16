/* histsim_spill.c: the per-rank spill file of histsim (see histsim_spill.h). */
#define _GNU_SOURCE
#include "histsim_spill.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "as_util.h"

struct as_hs_spill {
    int fd;
    int64_t end;                   /* bytes reserved */
};

static struct as_hs_spill_stats hs_spill_totals;

struct as_hs_spill *as_hs_spill_open(const char *dir)
{
    int fd = -1;
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#endif
    if (fd < 0) { /* a file system without O_TMPFILE: create, then unlink right away */
        char path[4096];
        if (snprintf(path, sizeof path, "%s/attnstat-histsim-spill.XXXXXX", dir) >= (int)sizeof path)
            return NULL;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
            return NULL;
        if (unlink(path)) {
            close(fd);
            return NULL;
        }
    }
    struct as_hs_spill *sp = as_xcalloc(1, sizeof *sp);
    sp->fd = fd;
    return sp;
}

int64_t as_hs_spill_reserve(struct as_hs_spill *sp, size_t n)
{
    struct statvfs st;
    if (fstatvfs(sp->fd, &st))
        return -1;
    uint64_t bs = st.f_frsize ? st.f_frsize : st.f_bsize;
    uint64_t avail = (uint64_t)st.f_bavail * bs, total = (uint64_t)st.f_blocks * bs;
    uint64_t margin = (uint64_t)((double)total * AS_HS_SPILL_MARGIN_FRAC);
    if (margin < AS_HS_SPILL_MARGIN_MIN)
        margin = AS_HS_SPILL_MARGIN_MIN;
    if (avail < margin || avail - margin < (uint64_t)n || sp->end > INT64_MAX - (int64_t)n)
        return -1;
    int64_t off = sp->end;
    sp->end += (int64_t)n;
    return off;
}

void as_hs_spill_unreserve(struct as_hs_spill *sp, int64_t off, size_t n)
{
    if (off + (int64_t)n != sp->end)
        return;
    sp->end = off;
    int rc = ftruncate(sp->fd, (off_t)off); /* failing, the blocks stay allocated until close: only space */
    (void)rc;
}

int as_hs_spill_write(struct as_hs_spill *sp, const void *buf, size_t n, int64_t off)
{
    const char *p = buf;
    size_t left = n;
    while (left) {
        ssize_t w = pwrite(sp->fd, p, left, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            hs_spill_totals.write_failures++;
            return -1;
        }
        p += w, left -= (size_t)w, off += w;
    }
    hs_spill_totals.bytes_written += n;
    return 0;
}

int as_hs_spill_read(struct as_hs_spill *sp, void *buf, size_t n, int64_t off)
{
    char *p = buf;
    size_t left = n;
    while (left) {
        ssize_t r = pread(sp->fd, p, left, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) { /* an error, or the end of the file: the spill lost what we wrote */
            hs_spill_totals.read_failures++;
            return -1;
        }
        p += r, left -= (size_t)r, off += r;
    }
    hs_spill_totals.bytes_read += n;
    return 0;
}

void as_hs_spill_close(struct as_hs_spill *sp)
{
    if (!sp)
        return;
    close(sp->fd);
    free(sp);
}

void as_hs_spill_stats(struct as_hs_spill_stats *out)
{
    *out = hs_spill_totals;
}
