/* pt_zip.h: the ZIP container of torch.save files (torch 1.6 - 2.x): a validating walk of the
 * central directory that finds each stored entry's raw data offset. No inflate, no encryption.
 *
 * Byte layout (all integers little-endian; torch writes every entry this way through miniz):
 *
 *   per entry, in any order:
 *     local file header  30 bytes  sig 50 4b 03 04 | u16 version needed | u16 flags (0x0808;
 *                                  0x0800 for empty records) | u16 method (0 = stored) |
 *                                  u16 time | u16 date | u32 crc | u32 csize | u32 usize
 *                                  (crc and sizes are 0 in torch files: never used) |
 *                                  u16 name length n | u16 extra length x
 *                        n bytes   name "<prefix>/<record>"
 *                        x bytes   extra: [zip64 block 01 00 ...] + "FB" u16 len + 'Z' padding
 *                                  so that the data starts at a multiple of 64 (not relied on)
 *     data               usize bytes, raw: data offset = lho + 30 + n + x (LOCAL n and x)
 *     data descriptor    50 4b 07 08 | u32 crc | u32/u64 csize | u32/u64 usize (ignored)
 *   central directory, one record per entry:
 *     46 bytes  sig 50 4b 01 02 | u16 made by | u16 needed | u16 flags | u16 method | u16 time |
 *               u16 date | u32 crc | u32 csize | u32 usize | u16 name len | u16 extra len |
 *               u16 comment len | u16 disk start | u16 internal attr | u32 external attr |
 *               u32 local header offset (lho)
 *     then name, extra, comment. A 32-bit field equal to 0xffffffff takes its value from the
 *     zip64 extra block (id 0x0001): u64 usize, u64 csize, u64 lho, u32 disk, each present only
 *     when its 32-bit field is 0xffffffff (disk: 0xffff), in that order.
 *   zip64 end of central directory record (torch always writes it):
 *     sig 50 4b 06 06 | u64 size of the rest (>= 44) | u16 made by | u16 needed | u32 disk |
 *     u32 cd disk | u64 entries on disk | u64 entries | u64 cd size | u64 cd offset
 *   zip64 end of central directory locator (20 bytes, right before the EOCD):
 *     sig 50 4b 06 07 | u32 disk of the zip64 EOCD | u64 its offset | u32 number of disks
 *   end of central directory (22 bytes + comment, last in the file):
 *     sig 50 4b 05 06 | u16 disk | u16 cd disk | u16 entries on disk | u16 entries |
 *     u32 cd size | u32 cd offset | u16 comment length (0xffff / 0xffffffff: see zip64)
 *
 * Validated by pt_zip_open: EOCD ends the file exactly; zip64 locator/record consistent and
 * before the locator; single disk; central directory inside the file and before the end
 * records; every entry stored (method 0), not encrypted, csize == usize; zip64 extras well
 * formed; local header signature, name and method equal to the central directory's; data
 * before the central directory; no duplicate names; no two entries overlapping (header +
 * data); all names UTF-8 without control bytes, under one top-level folder (the prefix, taken
 * from the first central-directory entry); no TorchScript records (constants.pkl, code/).
 * All arithmetic is 64-bit and overflow-checked. */
#ifndef AS_PIPELINE_PT_ZIP_H
#define AS_PIPELINE_PT_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"

#define PT_ZIP_MAX_ENTRIES (1 << 20)   /* entries in one archive */
#define PT_ZIP_MAX_NAME 1024           /* bytes in one entry name */

struct pt_zip_entry {
    char *name;          /* owned by the pt_zip: full name "<prefix>/<record>", NUL-terminated */
    const char *record;  /* borrowed from name: the part after "<prefix>/" */
    int64_t lho;         /* offset of the local header in the file */
    int64_t data_off;    /* offset of the first data byte in the file */
    int64_t size;        /* bytes of data (stored: compressed == uncompressed) */
    uint32_t crc;        /* CRC-32 from the central directory; 0 = not recorded */
    int64_t csize;       /* compressed size (== size once pt_zip_open succeeded) */
    uint16_t method, flags; /* from the central directory (0 and no encryption bit once open) */
};

struct pt_zip {
    int64_t file_size;
    size_t n;                    /* entries */
    struct pt_zip_entry *e;      /* (n,) owned; sorted by record name */
    char prefix[PT_ZIP_MAX_NAME]; /* folder of entry #0, without the '/' */
};

/* Parse and validate the archive in fd (path only names it in messages). On success z is
 * filled and owned by the caller (pt_zip_release). On failure z is released, err set. */
int pt_zip_open(struct pt_zip *z, int fd, const char *path, struct as_error *err);

/* The entry for a record name relative to the prefix ("data.pkl", "data/0"), or NULL.
 * Borrowed from z; valid until pt_zip_release. */
const struct pt_zip_entry *pt_zip_find(const struct pt_zip *z, const char *record);

/* Read a whole entry into buf (e->size bytes) with positioned reads and verify its CRC-32
 * when the stored CRC is non-zero. */
int pt_zip_read(int fd, const char *path, const struct pt_zip_entry *e, void *buf, struct as_error *err);

/* Free what z owns; z may be released twice. */
void pt_zip_release(struct pt_zip *z);

/* CRC-32 (zlib polynomial 0xedb88320), continued from crc (0 to start). */
uint32_t pt_crc32(uint32_t crc, const void *buf, size_t n);

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
int pt_utf8_valid(const unsigned char *s, size_t n);

#endif
