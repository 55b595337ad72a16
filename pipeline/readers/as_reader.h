/* as_reader.h: one vtable per tensor file format (npy, pt, safetensors, hdf5, synthetic),
 * opened on one tensor of one file and read one hyperslab at a time.
 *
 * Every file is hostile: a reader validates magic, header, dtype, rank, dims, offsets and
 * sizes (overflow-checked) in open(), so read() can only fail on I/O. Nothing is loaded whole:
 * read() touches only the bytes of the requested slab (positioned reads, or an mmap window that
 * is unmapped before read() returns). */
#ifndef AS_PIPELINE_AS_READER_H
#define AS_PIPELINE_AS_READER_H

#include <stddef.h>
#include <stdint.h>

#include "as_dtype.h"
#include "as_error.h"

#define AS_MAX_DIMS 8

struct as_tensor_info {
    enum as_dtype dtype;           /* element type as stored */
    int ndim;                      /* 0..AS_MAX_DIMS */
    int64_t shape[AS_MAX_DIMS];    /* elements */
    int64_t stride[AS_MAX_DIMS];   /* elements; C order when contiguous */
    int64_t data_offset;           /* byte offset of element 0 in the file (-1: not a flat file) */
    int64_t nbytes;                /* bytes of the elements the tensor spans (0 for synthetic) */
};

struct as_reader;   /* opaque: one open tensor */

struct as_reader_ops {
    const char *name;              /* "npy", "pt", "safetensors", "hdf5", "synthetic" */
    /* Open tensor `key` of file `path` (key NULL: the file's only tensor, or its default).
     * On success *out is owned by the caller, released with close(). */
    int (*open)(struct as_reader **out, const char *path, const char *key, struct as_error *err);
    /* Borrowed; valid until close(). */
    const struct as_tensor_info *(*info)(const struct as_reader *r);
    /* Read the hyperslab start[d] .. start[d]+count[d]-1 of every dim d, converted to `out`,
     * into dst in C order. The caller (as_tensor_file_read) has checked the slab against
     * info()'s shape and that out is AS_DTYPE_F32 or AS_DTYPE_F64. */
    int (*read)(struct as_reader *r, const int64_t *start, const int64_t *count,
                enum as_dtype out, void *dst, struct as_error *err);
    void (*close)(struct as_reader *r);    /* NULL-safe */
    /* (optional) list the tensors of a file for `attnstat inspect`: calls fn once per tensor. */
    int (*list)(const char *path, void (*fn)(void *ctx, const char *key, const struct as_tensor_info *ti,
                                             const char *extra), void *ctx, struct as_error *err);
};

/* Readers by format (defined in reader_<format>.c). */
extern const struct as_reader_ops as_reader_npy;
extern const struct as_reader_ops as_reader_synth;
/* A Hugging Face model folder, for planning only (reader_hf.c): info (n_layer, n_head, n_embd,
 * vocab_size) float32 from config.json; read() refuses. */
extern const struct as_reader_ops as_reader_hf;
/* 1 when path is a folder with a config.json. */
int as_hf_is_folder(const char *path);
/* Total size and latest mtime (ns) of a model folder's config.json, index and .safetensors files:
 * what a run checks for changes, and its provenance instead of a digest. */
int as_hf_stat(const char *dir, int64_t *size, int64_t *mtime_ns, struct as_error *err);
extern const struct as_reader_ops as_reader_pt;
extern const struct as_reader_ops as_reader_safetensors;
extern const struct as_reader_ops as_reader_hdf5;

/* Every reader, NULL-terminated: a reader's index here names it between processes. */
extern const struct as_reader_ops *const as_readers_all[];
/* Readers of higher layers (a live model's activations, pipeline/model) join the table here, in
 * the same order on every rank (the config registers them while it loads). */
void as_reader_register(const struct as_reader_ops *ops);
/* Index of ops among the readers (as_readers_all, then the registered ones), or -1; and back. */
int as_reader_index(const struct as_reader_ops *ops);
const struct as_reader_ops *as_reader_at(int index);

/* How many times this process opened an input file so far (tensor opens, digests, format
 * sniffing; synthetic models not counted): the run reports it per rank. */
uint64_t as_tensor_file_opens(void);

/* The reader for a path, chosen by extension, then by magic bytes; NULL and err set if none. */
const struct as_reader_ops *as_reader_for_path(const char *path, struct as_error *err);

/* Open a tensor: picks the reader, opens, and returns a handle that remembers its ops. */
struct as_tensor_file {
    const struct as_reader_ops *ops;
    struct as_reader *r;
    char path[4096];
    char key[256];
    uint64_t bytes_read;           /* bytes of input read so far through this handle */
    double read_seconds;           /* time spent in its reads (generating, for synthetic models) */
};
int as_tensor_file_open(struct as_tensor_file *tf, const struct as_reader_ops *ops, const char *path,
                        const char *key, struct as_error *err);
int as_tensor_file_read(struct as_tensor_file *tf, const int64_t *start, const int64_t *count,
                        enum as_dtype out, void *dst, struct as_error *err);
void as_tensor_file_close(struct as_tensor_file *tf);
static inline const struct as_tensor_info *as_tensor_file_info(const struct as_tensor_file *tf)
{
    return tf->ops->info(tf->r);
}

/* Provenance of an input file: size, mtime (ns) and a 64-bit digest (hex, 17 bytes) of its
 * first and last 64 KiB and 16 blocks of 64 KiB spread over it (cheap on 100 GB files), or of
 * every byte when full = 1. -1 with err set when the file cannot be read. */
int as_file_digest(const char *path, int full, char *hex, int64_t *size, int64_t *mtime_ns, struct as_error *err);

/* "(70, 112, 256, 256)" into buf. */
const char *as_shape_str(const struct as_tensor_info *ti, char *buf, size_t n);

/* Number of elements of a shape, overflow-checked: -1 on overflow or negative dims. */
int64_t as_shape_numel(int ndim, const int64_t *shape);

#endif

/* ---- shared by formats that store a tensor as a strided array at a byte offset of a file
 * (npy, pt, safetensors). */

/* Check that every element ti can address (data_offset + stride-weighted index * itemsize) lies
 * inside [data_offset, data_offset + avail) and that the arithmetic cannot overflow.
 * Strides must be non-negative. `what` names the tensor for the message. */
int as_flat_check(const struct as_tensor_info *ti, int64_t avail, const char *what, struct as_error *err);

/* Read a hyperslab of a strided little-endian tensor from fd with positioned reads, converting
 * to `out`. Contiguous runs are read in one pread each (straight into dst when no conversion is
 * needed). Adds the bytes read to *bytes (may be NULL). */
int as_flat_read(int fd, const char *path, const struct as_tensor_info *ti, const int64_t *start,
                 const int64_t *count, enum as_dtype out, void *dst, struct as_error *err);

/* pread exactly n bytes at off (retrying short reads and EINTR); a short file is an input error
 * naming path and offset. */
int as_pread_all(int fd, void *buf, size_t n, int64_t off, const char *path, struct as_error *err);

/* Check a hyperslab request against the shape. */
int as_slab_check(const struct as_tensor_info *ti, const int64_t *start, const int64_t *count,
                  const char *path, struct as_error *err);
