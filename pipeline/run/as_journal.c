/* as_journal.c: the unit journal behind --resume. */
#define _GNU_SOURCE
#include "as_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "as_mpi.h"
#include "as_util.h"

#define JMAGIC 0x324a5341u /* "ASJ2" */
#define JHDR 48
#define JHASHED 40                 /* header bytes under the hash: all but the hash */

static uint64_t jhash(const unsigned char *hdr, const unsigned char *p, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < JHASHED; i++)
        h = (h ^ hdr[i]) * 0x100000001b3ull;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return as_mix64(h);
}

static void put_hdr(unsigned char *h, uint32_t kind, const uint64_t key[2], int64_t index, uint64_t len)
{
    uint32_t magic = JMAGIC;
    uint64_t k[2] = { key ? key[0] : 0, key ? key[1] : 0 };
    memcpy(h, &magic, 4);
    memcpy(h + 4, &kind, 4);
    memcpy(h + 8, k, 16);
    memcpy(h + 24, &index, 8);
    memcpy(h + 32, &len, 8);
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void as_journal_add(struct as_journal *j, enum as_jkind kind, const uint64_t key[2], int64_t index,
                    const void *payload, uint64_t len)
{
    unsigned char h[JHDR];
    put_hdr(h, (uint32_t)kind, key, index, len);
    uint64_t hv = jhash(h, payload, len);
    memcpy(h + JHASHED, &hv, 8);
    as_strbuf_add(&j->staged, (const char *)h, JHDR);
    if (len)
        as_strbuf_add(&j->staged, payload, (size_t)len);
}

int as_journal_flush(struct as_journal *j, struct as_error *err)
{
    size_t n = j->staged.len;
    j->staged.len = 0;
    if (n && write_all(j->fd, j->staged.buf, n))
        return as_error_set(err, AS_ERR_IO, "cannot write the journal in '%s': %s", j->dir, strerror(errno));
    /* written: the record survives any kill of the process; synced at most once a second, so a
     * node that dies loses at most a second of work */
    double now = as_now();
    if (now - j->last_sync >= AS_JOURNAL_SYNC_SECONDS) {
        if (fdatasync(j->fd))
            return as_error_set(err, AS_ERR_IO, "cannot sync the journal in '%s': %s", j->dir, strerror(errno));
        j->last_sync = now;
    }
    return 0;
}

int as_journal_append(struct as_journal *j, enum as_jkind kind, const uint64_t key[2], int64_t index,
                      const void *payload, uint64_t len, struct as_error *err)
{
    as_journal_add(j, kind, key, index, payload, len);
    return as_journal_flush(j, err);
}

int as_journal_prepass(struct as_journal *j, const uint64_t key[2], int64_t round, const uint64_t *sum, size_t n,
                       struct as_error *err)
{
    size_t nz = 0;
    for (size_t i = 0; i < n; i++)
        nz += sum[i] != 0;
    uint64_t *buf = as_xcalloc(1 + 2 * nz, sizeof *buf);
    size_t k = 0;
    buf[k++] = n;
    for (size_t i = 0; i < n; i++)
        if (sum[i]) {
            buf[k++] = i;
            buf[k++] = sum[i];
        }
    int rc = as_journal_append(j, AS_JREC_PREPASS, key, round, buf, k * sizeof *buf, err);
    free(buf);
    return rc;
}

int as_journal_prepass_read(const struct as_jrec *rec, uint64_t *sum, size_t n)
{
    if (rec->len < 8 || (rec->len - 8) % 16)
        return -1;
    uint64_t cnt;
    memcpy(&cnt, rec->payload, 8);
    if (cnt != n)
        return -1;
    memset(sum, 0, n * sizeof *sum);
    for (uint64_t off = 8; off < rec->len; off += 16) {
        uint64_t i, v;
        memcpy(&i, rec->payload + off, 8);
        memcpy(&v, rec->payload + off + 8, 8);
        if (i >= n)
            return -1;
        sum[i] = v;
    }
    return 0;
}

/* Append the valid records of one file to sb, the header record left out. A torn tail (a kill
 * mid-write) ends the file. */
static void load_file(const char *path, struct as_strbuf *sb)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    unsigned char h[JHDR];
    unsigned char *p = NULL;
    while (fread(h, 1, JHDR, f) == JHDR) {
        uint32_t magic, kind;
        uint64_t len, hv;
        memcpy(&magic, h, 4);
        memcpy(&kind, h + 4, 4);
        memcpy(&len, h + 32, 8);
        memcpy(&hv, h + JHASHED, 8);
        if (magic != JMAGIC || kind >= AS_JREC_KIND_COUNT || len > ((uint64_t)1 << 34))
            break;
        free(p);
        /* optional: a length torn by a kill may be huge; when it cannot be had, the record counts
         * as torn (the file ends there), as when its bytes are missing */
        p = malloc(len ? len : 1);
        if (!p || fread(p, 1, len, f) != len || jhash(h, p, len) != hv)
            break;
        if (kind == AS_JREC_HEADER)
            continue;
        as_strbuf_add(sb, (const char *)h, JHDR);
        as_strbuf_add(sb, (const char *)p, len);
    }
    free(p);
    fclose(f);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int as_journal_open_all(MPI_Comm comm, struct as_journal *j, const char *output, const char *desc, int resume,
                        struct as_error *err)
{
    int rank;
    rank = as_mpi_rank(comm);
    memset(j, 0, sizeof *j);
    j->fd = -1;
    snprintf(j->dir, sizeof j->dir, "%s.journal", output);
    int rc = 0;
    struct as_strbuf blob = AS_STRBUF_INIT;
    uint64_t attempt = 0;
    if (rank == 0) {
        DIR *d = opendir(j->dir);
        char **names = NULL;
        size_t n = 0;
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (e->d_name[0] != '.') {
                    names = as_xrealloc(names, n + 1, sizeof *names);
                    names[n++] = as_xstrdup(e->d_name);
                }
            closedir(d);
        }
        if (n) /* a fixed order: records apply the same way every time */
            qsort(names, n, sizeof *names, cmp_str);
        char path[4400];
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", j->dir, names[i]);
            if (resume)
                load_file(path, &blob);
            else
                unlink(path);
            unsigned long long a;
            if (sscanf(names[i], "a%llu-", &a) == 1 && a >= attempt)
                attempt = a + 1;
            free(names[i]);
        }
        free(names);
        if (!rc && as_mkdir_parent(output))
            rc = as_error_set(err, AS_ERR_IO, "cannot create the folder of results file '%s': %s", output,
                              strerror(errno));
        else if (!rc && mkdir(j->dir, 0777) && errno != EEXIST)
            rc = as_error_set(err, AS_ERR_IO, "cannot create journal folder '%s': %s", j->dir, strerror(errno));
    }
    int st = rc ? (int)err->status : 0;
    AS_MPI(MPI_Bcast(&st, 1, MPI_INT, 0, comm));
    if (st) {
        AS_MPI(MPI_Bcast(err->msg, sizeof err->msg, MPI_CHAR, 0, comm));
        err->status = (enum as_status)st;
        as_strbuf_release(&blob);
        return -1;
    }
    uint64_t len = blob.len;
    AS_MPI(MPI_Bcast(&attempt, 1, MPI_UINT64_T, 0, comm));
    if (rank == 0) {
        j->blob = as_xmalloc(len);
        memcpy(j->blob, blob.buf ? blob.buf : "", len);
    }
    as_mpi_bcast_bytes_all(comm, 0, &j->blob, &len);
    j->blob_len = len;
    as_strbuf_release(&blob);
    char path[4400];
    snprintf(path, sizeof path, "%s/a%06llu-r%06d", j->dir, (unsigned long long)attempt, rank);
    j->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    j->last_sync = as_now(); /* the first sync comes a second in */
    int bad = j->fd < 0;
    if (bad)
        as_error_set(err, AS_ERR_IO, "cannot create journal '%s': %s", path, strerror(errno));
    else if (as_journal_append(j, AS_JREC_HEADER, NULL, 0, desc, strlen(desc), err))
        bad = 1;
    int any;
    AS_MPI(MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm));
    if (any && !bad)
        as_error_set(err, AS_ERR_IO, "cannot create the journal in '%s' (another rank failed)", j->dir);
    return any ? -1 : 0;
}

int as_journal_next(struct as_journal *j, struct as_jrec *rec)
{
    if (j->pos + JHDR > j->blob_len)
        return 0;
    const unsigned char *h = j->blob + j->pos;
    uint32_t kind;
    memcpy(&kind, h + 4, 4);
    rec->kind = (enum as_jkind)kind;
    memcpy(rec->key, h + 8, 16);
    memcpy(&rec->index, h + 24, 8);
    memcpy(&rec->len, h + 32, 8);
    rec->payload = h + JHDR;
    j->pos += JHDR + rec->len;
    return 1;
}

void as_journal_close(struct as_journal *j)
{
    if (j->fd >= 0) {
        fdatasync(j->fd);
        close(j->fd);
    }
    j->fd = -1;
    free(j->blob);
    j->blob = NULL;
    as_strbuf_release(&j->staged);
}

void as_journal_remove_all(MPI_Comm comm, struct as_journal *j)
{
    int rank;
    rank = as_mpi_rank(comm);
    if (j->fd >= 0) { /* about to be deleted: no point in syncing it */
        close(j->fd);
        j->fd = -1;
    }
    as_journal_close(j);
    AS_MPI(MPI_Barrier(comm));
    if (rank != 0)
        return;
    DIR *d = opendir(j->dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", j->dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(j->dir);
}
