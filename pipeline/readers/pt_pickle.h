/* pt_pickle.h: a restricted pickle virtual machine for the data.pkl record of torch.save files.
 * It never imports or calls anything: globals become symbolic tokens from a closed allow-list,
 * REDUCE only evaluates the few torch rebuild functions, and every tensor is validated against
 * its storage record in the zip archive.
 *
 * Byte layout of data.pkl (pickle protocol 2; 3-5 when the user asked for it):
 *   80 02                          PROTO 2 (first opcode)
 *   opcode stream, e.g. for torch.save(tensor):
 *     c "torch._utils\n_rebuild_tensor_v2\n"     GLOBAL: push the callable token
 *     (  ( X 'storage' c "torch\nFloatStorage\n" X '0' X 'cpu' K 6  t  Q
 *                                               persistent id ('storage', type, key, location,
 *                                               numel) -> BINPERSID -> storage record data/<key>
 *        K 0                                    storage_offset (elements)
 *        K 2 K 3 86                             size (2, 3)
 *        K 3 K 1 86                             stride (3, 1) (elements)
 *        89                                     requires_grad False
 *        c "collections\nOrderedDict\n" ) R     backward_hooks: OrderedDict()
 *     t R                                       REDUCE: _rebuild_tensor_v2(*args)
 *   2e                             STOP; nothing may follow
 *   Integers are little-endian (K u8, M u16, J i32, 8a n + n bytes two's complement) except
 *   BINFLOAT (G), a big-endian IEEE double. q/r/94 store the top of the stack in the memo
 *   (dense: index <= size), h/j push a memo entry (the same object, not a copy).
 *
 * Opcodes accepted: PROTO FRAME STOP GLOBAL STACK_GLOBAL BINPUT LONG_BINPUT MEMOIZE BINGET
 * LONG_BINGET MARK TUPLE EMPTY_TUPLE TUPLE1-3 BINUNICODE SHORT_BINUNICODE BININT1 BININT2
 * BININT LONG1 NONE NEWTRUE NEWFALSE BINFLOAT EMPTY_DICT SETITEM SETITEMS EMPTY_LIST APPEND
 * APPENDS REDUCE BINPERSID BUILD. Everything else is an error.
 *
 * Globals allowed (anything else is an error naming it):
 *   callables  torch._utils._rebuild_tensor_v2 / _rebuild_tensor_v3 / _rebuild_parameter /
 *              _rebuild_parameter_with_state, torch._tensor._rebuild_from_type_v2 (only around
 *              v2/v3/_rebuild_parameter with cls torch.Tensor or torch.nn.parameter.Parameter),
 *              collections.OrderedDict (no arguments), torch.Size (one int tuple)
 *   markers    torch.<X>Storage (also torch.cuda.<X>Storage) for the 12 classic storage types,
 *              torch.UntypedStorage, torch.Tensor, torch.nn.parameter.Parameter, and the dtypes
 *              torch.<dtype> passed to _rebuild_tensor_v3
 * BUILD is accepted only on a dict with a dict state (state_dict _metadata), which is dropped.
 *
 * Limits (no bombs): data.pkl <= PT_MAX_PICKLE, stack, MARK depth, container nesting, memo,
 * objects, container slots, string length, rank; the VM is a loop with explicit stacks, and
 * the tree walk that names tensors is iterative with a depth and a work bound (pickles can
 * build cycles and exponentially shared DAGs). */
#ifndef AS_PIPELINE_PT_PICKLE_H
#define AS_PIPELINE_PT_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "pt_zip.h"

#define PT_MAX_PICKLE ((size_t)256 << 20) /* bytes of data.pkl */
#define PT_MAX_STACK (1 << 20)            /* values on the VM stack (all MARK frames) */
#define PT_MAX_MARKS 1024                 /* nested MARKs */
#define PT_MAX_DEPTH 1024                 /* nesting of containers */
#define PT_MAX_MEMO (1 << 23)             /* memo entries */
#define PT_MAX_OBJECTS (1 << 22)          /* strings, containers, tensors, storages */
#define PT_MAX_ITEMS (1 << 25)            /* slots in all containers together */
#define PT_MAX_STRING ((size_t)64 << 20)  /* bytes in one string */
#define PT_MAX_DIMS 64                    /* rank of one tensor */
#define PT_MAX_KEY 64                     /* storage key: 1..64 of [0-9A-Za-z] */
#define PT_MAX_NAME 4096                  /* bytes of a tensor's dotted name */
#define PT_MAX_WALK (1 << 24)             /* container slots visited while naming tensors */
#define PT_MAX_TENSORS (1 << 20)          /* named tensors (a shared tensor counts once per name) */

/* Every element type torch.save can write. */
enum pt_dtype {
    PT_DTYPE_F64, PT_DTYPE_F32, PT_DTYPE_F16, PT_DTYPE_BF16,
    PT_DTYPE_I64, PT_DTYPE_I32, PT_DTYPE_I16, PT_DTYPE_I8, PT_DTYPE_U8, PT_DTYPE_BOOL,
    PT_DTYPE_C64, PT_DTYPE_C128, PT_DTYPE_C32, PT_DTYPE_U16, PT_DTYPE_U32, PT_DTYPE_U64,
    PT_DTYPE_F8_E4M3FN, PT_DTYPE_F8_E5M2, PT_DTYPE_F8_E4M3FNUZ, PT_DTYPE_F8_E5M2FNUZ, PT_DTYPE_F8_E8M0FNU,
    PT_DTYPE_COUNT
};

struct pt_dtype_traits {
    const char *name;   /* torch spelling: "float32", "int64", "float8_e4m3fn", ... */
    int size;           /* bytes per element */
    int as_dtype;       /* enum as_dtype for the four float types, -1 for the rest */
    int swap;           /* bytes swapped as one unit for byteorder "big" (size/2 for complex) */
};
extern const struct pt_dtype_traits pt_dtype_traits[PT_DTYPE_COUNT];

struct pt_storage {
    char key[PT_MAX_KEY + 1];           /* "0", "1", ... or a pointer value */
    enum pt_dtype dtype;                /* of the storage class; U8 for UntypedStorage */
    int untyped;                        /* torch.UntypedStorage: numel counts bytes */
    int64_t numel;                      /* elements of dtype */
    const struct pt_zip_entry *rec;     /* borrowed from the pt_zip: record data/<key> */
};

struct pt_tensor {
    const struct pt_storage *st;        /* borrowed from the pt_pickle */
    enum pt_dtype dtype;
    int64_t offset;                     /* storage_offset, elements of dtype */
    int ndim;                           /* 0..PT_MAX_DIMS */
    const int64_t *shape, *stride;      /* (ndim,) elements; owned by the pt_pickle */
    unsigned requires_grad : 1, parameter : 1, conj : 1, neg : 1;
};

struct pt_arena;    /* internal */
struct pt_obj;      /* internal: a string, container, tensor or storage */

/* The unpickled object tree. Everything it points to is owned by it. */
struct pt_pickle {
    struct pt_obj *root;        /* NULL when the root is a scalar (None, int, ...) */
    const struct pt_tensor *root_tensor; /* the root when it is a tensor, else NULL */
    uint64_t globals_used;      /* bit i: allow-list entry i appeared in a GLOBAL */
    struct pt_arena *arena;
};

/* Run the VM on data[0..n). Storages are resolved and size-checked against zip (borrowed; it
 * must outlive pk). data may be freed after the call. On failure pk is released. */
int pt_pickle_load(struct pt_pickle *pk, const unsigned char *data, size_t n, const struct pt_zip *zip,
                   const char *path, struct as_error *err);
void pt_pickle_release(struct pt_pickle *pk);   /* may be called twice */

/* Write the allow-listed globals the pickle used, "torch._utils._rebuild_tensor_v2, ...",
 * into buf (always terminated, truncated with "..." if needed). */
void pt_pickle_globals(const struct pt_pickle *pk, char *buf, size_t n);

/* One tensor of the tree with its dotted name: dict keys and list/tuple indices joined by
 * '.', "" for a root tensor. */
struct pt_named {
    char *name;                         /* owned by the array */
    const struct pt_tensor *t;          /* borrowed from the pt_pickle */
};

/* All tensors of the tree, depth-first in pickle order. *out is owned by the caller and freed
 * with pt_named_free (also on failure it is NULL and *n is 0). */
int pt_pickle_tensors(const struct pt_pickle *pk, struct pt_named **out, size_t *n, const char *path,
                      struct as_error *err);
void pt_named_free(struct pt_named *v, size_t n);

#endif
