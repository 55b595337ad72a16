/* pt_zip.c: validating ZIP central-directory walk for torch.save archives (layout in pt_zip.h). */
#define _GNU_SOURCE
#include "pt_zip.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_reader.h"

#include "as_util.h"

#define EOCD_LEN 22
#define LOC64_LEN 20
#define Z64_EOCD_LEN 56
#define CDH_LEN 46
#define LFH_LEN 30
#define MAX_COMMENT 0xffff
#define PT_ZIP_MAX_CD ((int64_t)256 << 20) /* bytes of central directory read into memory */
#define U32_MARK 0xffffffffu
#define U16_MARK 0xffffu

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }


static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_tab[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t pt_crc32(uint32_t crc, const void *buf, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = buf;
    crc = ~crc;
    while (n >= 8) { /* slice-by-8 */
        uint32_t a = crc ^ rd32(p), b = rd32(p + 4);
        crc = crc_tab[7][a & 0xff] ^ crc_tab[6][(a >> 8) & 0xff] ^ crc_tab[5][(a >> 16) & 0xff] ^
              crc_tab[4][a >> 24] ^ crc_tab[3][b & 0xff] ^ crc_tab[2][(b >> 8) & 0xff] ^
              crc_tab[1][(b >> 16) & 0xff] ^ crc_tab[0][b >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

int pt_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

void pt_zip_release(struct pt_zip *z)
{
    if (!z)
        return;
    if (z->e)
        for (size_t i = 0; i < z->n; i++)
            free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

static int cmp_record(const void *a, const void *b)
{
    return strcmp(((const struct pt_zip_entry *)a)->record, ((const struct pt_zip_entry *)b)->record);
}

static int cmp_lho(const void *a, const void *b)
{
    const struct pt_zip_entry *x = *(const struct pt_zip_entry *const *)a, *y = *(const struct pt_zip_entry *const *)b;
    return x->lho < y->lho ? -1 : x->lho > y->lho;
}

/* The end records: entry count, CD size and offset, and the first byte after the CD's room. */
struct zip_end {
    uint64_t count, cd_size, cd_off;
    int64_t limit;      /* the CD must end at or before this offset (start of the end records) */
};

static int find_end(int fd, const char *path, int64_t size, struct zip_end *end, struct as_error *err)
{
    int64_t tail = size < EOCD_LEN + MAX_COMMENT ? size : EOCD_LEN + MAX_COMMENT;
    unsigned char *t = as_xmalloc((size_t)tail);
    if (as_pread_all(fd, t, (size_t)tail, size - tail, path, err)) {
        free(t);
        return -1;
    }
    int64_t at = -1;
    for (int64_t i = tail - EOCD_LEN; i >= 0; i--)
        if (!memcmp(t + i, "PK\5\6", 4) && i + EOCD_LEN + rd16(t + i + 20) == tail) {
            at = i;
            break;
        }
    if (at < 0) {
        free(t);
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': zip end of central directory not found (truncated file or not a zip)", path);
    }
    unsigned char eocd[EOCD_LEN];
    memcpy(eocd, t + at, EOCD_LEN);
    free(t);
    int64_t eocd_off = size - tail + at;
    uint16_t disk = rd16(eocd + 4), cd_disk = rd16(eocd + 6), n_disk = rd16(eocd + 8), n = rd16(eocd + 10);
    uint32_t cd_size = rd32(eocd + 12), cd_off = rd32(eocd + 16);

    unsigned char loc[LOC64_LEN];
    int zip64 = 0;
    if (eocd_off >= LOC64_LEN) {
        if (as_pread_all(fd, loc, LOC64_LEN, eocd_off - LOC64_LEN, path, err))
            return -1;
        zip64 = !memcmp(loc, "PK\6\7", 4);
    }
    if (!zip64) {
        if (n == U16_MARK || n_disk == U16_MARK || cd_size == U32_MARK || cd_off == U32_MARK)
            return as_error_set(err, AS_ERR_INPUT, "'%s': zip64 markers in the end record but no zip64 locator",
                                path);
        if (disk || cd_disk || n_disk != n)
            return as_error_set(err, AS_ERR_INPUT, "'%s': multi-disk zip archives are not supported", path);
        end->count = n;
        end->cd_size = cd_size;
        end->cd_off = cd_off;
        end->limit = eocd_off;
        return 0;
    }
    int64_t loc_off = eocd_off - LOC64_LEN;
    uint64_t z64 = rd64(loc + 8);
    if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
        return as_error_set(err, AS_ERR_INPUT, "'%s': multi-disk zip archives are not supported", path);
    if (z64 > (uint64_t)loc_off || (uint64_t)loc_off - z64 < Z64_EOCD_LEN)
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip64 end record offset %llu is not before its locator",
                            path, (unsigned long long)z64);
    unsigned char r[Z64_EOCD_LEN];
    if (as_pread_all(fd, r, Z64_EOCD_LEN, (int64_t)z64, path, err))
        return -1;
    uint64_t rsize = rd64(r + 4);
    if (memcmp(r, "PK\6\6", 4) || rsize < Z64_EOCD_LEN - 12 || rsize > (uint64_t)loc_off - z64 - 12)
        return as_error_set(err, AS_ERR_INPUT, "'%s': bad zip64 end of central directory record at offset %llu",
                            path, (unsigned long long)z64);
    if (rd32(r + 16) || rd32(r + 20) || rd64(r + 24) != rd64(r + 32) || (disk && disk != U16_MARK) ||
        (cd_disk && cd_disk != U16_MARK))
        return as_error_set(err, AS_ERR_INPUT, "'%s': multi-disk zip archives are not supported", path);
    end->count = rd64(r + 32);
    end->cd_size = rd64(r + 40);
    end->cd_off = rd64(r + 48);
    end->limit = (int64_t)z64;
    if ((n != U16_MARK && n != end->count) || (cd_size != U32_MARK && cd_size != end->cd_size) ||
        (cd_off != U32_MARK && cd_off != end->cd_off))
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip64 and classic end records disagree", path);
    return 0;
}

/* Check one name: 1..PT_ZIP_MAX_NAME-1 bytes of UTF-8 without control bytes. */
static int name_ok(const unsigned char *s, size_t n)
{
    if (n == 0 || n >= PT_ZIP_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return pt_utf8_valid(s, n);
}

/* Parse central directory entry at cd[*pos] into e; advance *pos. */
static int parse_cd_entry(const unsigned char *cd, uint64_t cd_size, uint64_t *pos, size_t idx,
                          struct pt_zip_entry *e, const char *path, struct as_error *err)
{
    uint64_t p = *pos;
    if (cd_size - p < CDH_LEN || memcmp(cd + p, "PK\1\2", 4))
        return as_error_set(err, AS_ERR_INPUT, "'%s': bad zip central directory entry #%zu", path, idx);
    const unsigned char *h = cd + p;
    uint16_t flags = rd16(h + 8), method = rd16(h + 10);
    uint32_t crc = rd32(h + 16), csize32 = rd32(h + 20), usize32 = rd32(h + 24);
    uint16_t nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32), disk16 = rd16(h + 34);
    uint32_t lho32 = rd32(h + 42);
    if (cd_size - p - CDH_LEN < (uint64_t)nlen + xlen + clen)
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip central directory entry #%zu overruns the directory",
                            path, idx);
    const unsigned char *name = h + CDH_LEN, *x = name + nlen;
    if (!name_ok(name, nlen))
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': zip entry #%zu has an empty, overlong, non-utf-8 or control-character name",
                            path, idx);
    e->name = as_xmalloc((size_t)nlen + 1);
    memcpy(e->name, name, nlen);
    e->name[nlen] = '\0';
    const char *nm = e->name;
    /* extra fields: well-formed, at most one zip64 block */
    const unsigned char *z64 = NULL;
    uint16_t z64len = 0;
    for (uint32_t q = 0; q < xlen;) {
        if (xlen - q < 4 || xlen - q - 4 < rd16(x + q + 2))
            return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': malformed extra field", path, nm);
        if (rd16(x + q) == 1) {
            if (z64)
                return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': two zip64 extra fields", path, nm);
            z64 = x + q + 4;
            z64len = rd16(x + q + 2);
        }
        q += 4u + rd16(x + q + 2);
    }
    uint64_t usize = usize32, csize = csize32, lho = lho32, disk = disk16;
    uint32_t k = 0;
    uint64_t *fields[3] = { &usize, &csize, &lho };
    for (int f = 0; f < 3; f++) {
        if (*fields[f] != U32_MARK)
            continue;
        if (!z64 || z64len - k < 8)
            return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': 0xffffffff field without zip64 value",
                                path, nm);
        *fields[f] = rd64(z64 + k);
        k += 8;
    }
    if (disk16 == U16_MARK) {
        if (!z64 || z64len - k < 4)
            return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': 0xffff disk without zip64 value", path,
                                nm);
        disk = rd32(z64 + k);
    }
    if (disk)
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s' is on disk %llu (multi-disk archive)", path,
                            nm, (unsigned long long)disk);
    if (usize > INT64_MAX || csize > INT64_MAX || lho > INT64_MAX)
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': size or offset out of range", path, nm);
    e->method = method;
    e->flags = flags;
    e->size = (int64_t)usize;
    e->csize = (int64_t)csize;
    e->lho = (int64_t)lho;
    e->crc = crc;
    *pos = p + CDH_LEN + nlen + xlen + clen;
    return 0;
}

/* Check the local header of e and compute its data offset. */
static int check_local(int fd, const char *path, struct pt_zip_entry *e, int64_t cd_off, struct as_error *err)
{
    size_t nlen = strlen(e->name);
    unsigned char h[LFH_LEN + PT_ZIP_MAX_NAME];
    if (e->lho > cd_off || cd_off - e->lho < (int64_t)(LFH_LEN + nlen))
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': local header offset %lld is outside the data",
                            path, e->name, (long long)e->lho);
    if (as_pread_all(fd, h, LFH_LEN + nlen, e->lho, path, err))
        return -1;
    if (memcmp(h, "PK\3\4", 4))
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': no local header at offset %lld", path,
                            e->name, (long long)e->lho);
    if (rd16(h + 26) != nlen || memcmp(h + LFH_LEN, e->name, nlen))
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': local header name differs from the central directory",
                            path, e->name);
    if (rd16(h + 8) != 0 || (rd16(h + 6) & 0x41))
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': local header says compressed or encrypted",
                            path, e->name);
    e->data_off = e->lho + LFH_LEN + (int64_t)nlen + rd16(h + 28);
    if (e->data_off > cd_off || e->size > cd_off - e->data_off)
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': zip entry '%s': %lld bytes at offset %lld run past the central directory (offset %lld)",
                            path, e->name, (long long)e->size, (long long)e->data_off, (long long)cd_off);
    return 0;
}

int pt_zip_open(struct pt_zip *z, int fd, const char *path, struct as_error *err)
{
    memset(z, 0, sizeof *z);
    struct stat sb;
    if (fstat(fd, &sb))
        return as_error_set(err, AS_ERR_INPUT, "cannot stat '%s': %s", path, strerror(errno));
    z->file_size = sb.st_size;
    if (z->file_size < EOCD_LEN)
        return as_error_set(err, AS_ERR_INPUT, "'%s': too short for a zip archive (%lld bytes)", path,
                            (long long)z->file_size);
    struct zip_end end = { 0 };
    if (find_end(fd, path, z->file_size, &end, err))
        return -1;
    if (end.count == 0 || end.count > PT_ZIP_MAX_ENTRIES)
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip archive has %llu entries (1..%d allowed)", path,
                            (unsigned long long)end.count, PT_ZIP_MAX_ENTRIES);
    if (end.cd_off > (uint64_t)end.limit || end.cd_size > (uint64_t)end.limit - end.cd_off)
        return as_error_set(err, AS_ERR_INPUT,
                            "'%s': zip central directory (%llu bytes at offset %llu) overlaps the end records", path,
                            (unsigned long long)end.cd_size, (unsigned long long)end.cd_off);
    if (end.cd_size > (uint64_t)PT_ZIP_MAX_CD || end.cd_size < end.count * CDH_LEN)
        return as_error_set(err, AS_ERR_INPUT, "'%s': zip central directory size %llu does not fit %llu entries",
                            path, (unsigned long long)end.cd_size, (unsigned long long)end.count);
    int64_t cd_off = (int64_t)end.cd_off;
    unsigned char *cd = as_xmalloc((size_t)end.cd_size);
    struct pt_zip_entry **by_lho = NULL;
    z->e = as_xcalloc((size_t)end.count, sizeof *z->e);
    if (as_pread_all(fd, cd, (size_t)end.cd_size, cd_off, path, err))
        goto fail;
    uint64_t pos = 0;
    for (size_t i = 0; i < (size_t)end.count; i++) {
        z->n = i + 1; /* so that release frees this entry's name */
        if (parse_cd_entry(cd, end.cd_size, &pos, i, &z->e[i], path, err))
            goto fail;
    }
    if (pos != end.cd_size) {
        as_error_set(err, AS_ERR_INPUT, "'%s': %llu stray bytes in the zip central directory", path,
                     (unsigned long long)(end.cd_size - pos));
        goto fail;
    }
    free(cd);
    cd = NULL;
    /* the prefix: entry #0's folder */
    const char *slash = strchr(z->e[0].name, '/');
    if (!slash || slash == z->e[0].name) {
        as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s' is not inside a top-level folder", path, z->e[0].name);
        goto fail;
    }
    size_t plen = (size_t)(slash - z->e[0].name);
    memcpy(z->prefix, z->e[0].name, plen);
    z->prefix[plen] = '\0';
    for (size_t i = 0; i < z->n; i++) {
        struct pt_zip_entry *e = &z->e[i];
        if (strncmp(e->name, z->prefix, plen) || e->name[plen] != '/') {
            as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s' is outside the archive folder '%s/'", path, e->name,
                         z->prefix);
            goto fail;
        }
        e->record = e->name + plen + 1;
    }
    /* TorchScript first: its code/ entries are deflated, which would hide the real reason */
    for (size_t i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].record, "constants.pkl") || !strncmp(z->e[i].record, "code/", 5)) {
            as_error_set(err, AS_ERR_INPUT,
                         "'%s': torchscript archive (torch.jit.save); save a state_dict with torch.save instead", path);
            goto fail;
        }
    for (size_t i = 0; i < z->n; i++) {
        struct pt_zip_entry *e = &z->e[i];
        if (e->flags & 0x41) {
            as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s' is encrypted", path, e->name);
            goto fail;
        }
        if (e->method != 0) {
            as_error_set(err, AS_ERR_INPUT,
                         "'%s': zip entry '%s' uses compression method %u (torch.save stores entries uncompressed)",
                         path, e->name, e->method);
            goto fail;
        }
        if (e->csize != e->size) {
            as_error_set(err, AS_ERR_INPUT, "'%s': zip entry '%s': stored entry has csize %lld != usize %lld", path,
                         e->name, (long long)e->csize, (long long)e->size);
            goto fail;
        }
        if (check_local(fd, path, e, cd_off, err))
            goto fail;
    }
    /* no two entries may overlap (also catches two directory entries sharing a local header) */
    by_lho = as_xcalloc(z->n, sizeof *by_lho);
    for (size_t i = 0; i < z->n; i++)
        by_lho[i] = &z->e[i];
    qsort(by_lho, z->n, sizeof *by_lho, cmp_lho);
    for (size_t i = 1; i < z->n; i++)
        if (by_lho[i - 1]->data_off + by_lho[i - 1]->size > by_lho[i]->lho) {
            as_error_set(err, AS_ERR_INPUT, "'%s': zip entries '%s' and '%s' overlap", path, by_lho[i - 1]->name,
                         by_lho[i]->name);
            goto fail;
        }
    free(by_lho);
    by_lho = NULL;
    qsort(z->e, z->n, sizeof *z->e, cmp_record);
    for (size_t i = 1; i < z->n; i++)
        if (!strcmp(z->e[i - 1].record, z->e[i].record)) {
            as_error_set(err, AS_ERR_INPUT, "'%s': duplicate zip entry name '%s'", path, z->e[i].name);
            goto fail;
        }
    return 0;
fail:
    free(cd);
    free(by_lho);
    pt_zip_release(z);
    return -1;
}

const struct pt_zip_entry *pt_zip_find(const struct pt_zip *z, const char *record)
{
    struct pt_zip_entry key = { .record = record };
    if (!z->n)
        return NULL;
    return bsearch(&key, z->e, z->n, sizeof *z->e, cmp_record);
}

int pt_zip_read(int fd, const char *path, const struct pt_zip_entry *e, void *buf, struct as_error *err)
{
    if (as_pread_all(fd, buf, (size_t)e->size, e->data_off, path, err))
        return -1;
    if (e->crc) {
        uint32_t got = pt_crc32(0, buf, (size_t)e->size);
        if (got != e->crc)
            return as_error_set(err, AS_ERR_INPUT, "'%s': crc-32 mismatch in record '%s' (stored %08x, computed %08x)",
                                path, e->record, e->crc, got);
    }
    return 0;
}
