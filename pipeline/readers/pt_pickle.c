/* pt_pickle.c: the restricted pickle VM of torch.save's data.pkl and the walk that names its
 * tensors (contract and limits in pt_pickle.h). */
#include "pt_pickle.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_dtype.h"
#include "as_util.h"

#define PT_MAX_VM_BYTES ((size_t)1 << 30) /* arena bytes: objects, strings, container slots */
#define PT_MAX_LINE 256                   /* bytes of one GLOBAL module or name */
#define ARENA_CHUNK ((size_t)64 << 10)

const struct pt_dtype_traits pt_dtype_traits[PT_DTYPE_COUNT] = {
    [PT_DTYPE_F64] = { "float64", 8, AS_DTYPE_F64, 8 },
    [PT_DTYPE_F32] = { "float32", 4, AS_DTYPE_F32, 4 },
    [PT_DTYPE_F16] = { "float16", 2, AS_DTYPE_F16, 2 },
    [PT_DTYPE_BF16] = { "bfloat16", 2, AS_DTYPE_BF16, 2 },
    [PT_DTYPE_I64] = { "int64", 8, -1, 8 },
    [PT_DTYPE_I32] = { "int32", 4, -1, 4 },
    [PT_DTYPE_I16] = { "int16", 2, -1, 2 },
    [PT_DTYPE_I8] = { "int8", 1, -1, 1 },
    [PT_DTYPE_U8] = { "uint8", 1, -1, 1 },
    [PT_DTYPE_BOOL] = { "bool", 1, -1, 1 },
    [PT_DTYPE_C64] = { "complex64", 8, -1, 4 },
    [PT_DTYPE_C128] = { "complex128", 16, -1, 8 },
    [PT_DTYPE_C32] = { "complex32", 4, -1, 2 },
    [PT_DTYPE_U16] = { "uint16", 2, -1, 2 },
    [PT_DTYPE_U32] = { "uint32", 4, -1, 4 },
    [PT_DTYPE_U64] = { "uint64", 8, -1, 8 },
    [PT_DTYPE_F8_E4M3FN] = { "float8_e4m3fn", 1, -1, 1 },
    [PT_DTYPE_F8_E5M2] = { "float8_e5m2", 1, -1, 1 },
    [PT_DTYPE_F8_E4M3FNUZ] = { "float8_e4m3fnuz", 1, -1, 1 },
    [PT_DTYPE_F8_E5M2FNUZ] = { "float8_e5m2fnuz", 1, -1, 1 },
    [PT_DTYPE_F8_E8M0FNU] = { "float8_e8m0fnu", 1, -1, 1 },
};
static_assert(PT_DTYPE_COUNT == 21, "update pt_dtype_traits");

/* ---- the allow-list */

enum gkind { G_CALL, G_MARKER, G_STORAGE, G_DTYPE };
enum gcall { C_V2, C_V3, C_PARAM, C_PARAM_STATE, C_FROM_TYPE, C_ODICT, C_SIZE };
enum gmarker { M_TENSOR, M_PARAMETER };
#define UNTYPED (-1) /* G_STORAGE `what` of torch.UntypedStorage */

struct pt_global {
    const char *module, *name;
    enum gkind kind;
    int what;           /* enum gcall, enum gmarker, or enum pt_dtype (UNTYPED) */
};

#define STORAGES(mod) \
    { mod, "DoubleStorage", G_STORAGE, PT_DTYPE_F64 }, { mod, "FloatStorage", G_STORAGE, PT_DTYPE_F32 }, \
    { mod, "HalfStorage", G_STORAGE, PT_DTYPE_F16 }, { mod, "BFloat16Storage", G_STORAGE, PT_DTYPE_BF16 }, \
    { mod, "LongStorage", G_STORAGE, PT_DTYPE_I64 }, { mod, "IntStorage", G_STORAGE, PT_DTYPE_I32 }, \
    { mod, "ShortStorage", G_STORAGE, PT_DTYPE_I16 }, { mod, "CharStorage", G_STORAGE, PT_DTYPE_I8 }, \
    { mod, "ByteStorage", G_STORAGE, PT_DTYPE_U8 }, { mod, "BoolStorage", G_STORAGE, PT_DTYPE_BOOL }, \
    { mod, "ComplexFloatStorage", G_STORAGE, PT_DTYPE_C64 }, \
    { mod, "ComplexDoubleStorage", G_STORAGE, PT_DTYPE_C128 }

static const struct pt_global globals[] = {
    { "torch._utils", "_rebuild_tensor_v2", G_CALL, C_V2 },
    { "torch._utils", "_rebuild_tensor_v3", G_CALL, C_V3 },
    { "torch._utils", "_rebuild_parameter", G_CALL, C_PARAM },
    { "torch._utils", "_rebuild_parameter_with_state", G_CALL, C_PARAM_STATE },
    { "torch._tensor", "_rebuild_from_type_v2", G_CALL, C_FROM_TYPE },
    { "collections", "OrderedDict", G_CALL, C_ODICT },
    { "torch", "Size", G_CALL, C_SIZE },
    { "torch", "Tensor", G_MARKER, M_TENSOR },
    { "torch.nn.parameter", "Parameter", G_MARKER, M_PARAMETER },
    { "torch", "UntypedStorage", G_STORAGE, UNTYPED },
    STORAGES("torch"),
    STORAGES("torch.cuda"),
    /* dtype arguments of _rebuild_tensor_v3 */
    { "torch", "float64", G_DTYPE, PT_DTYPE_F64 }, { "torch", "float32", G_DTYPE, PT_DTYPE_F32 },
    { "torch", "float16", G_DTYPE, PT_DTYPE_F16 }, { "torch", "bfloat16", G_DTYPE, PT_DTYPE_BF16 },
    { "torch", "int64", G_DTYPE, PT_DTYPE_I64 }, { "torch", "int32", G_DTYPE, PT_DTYPE_I32 },
    { "torch", "int16", G_DTYPE, PT_DTYPE_I16 }, { "torch", "int8", G_DTYPE, PT_DTYPE_I8 },
    { "torch", "uint8", G_DTYPE, PT_DTYPE_U8 }, { "torch", "bool", G_DTYPE, PT_DTYPE_BOOL },
    { "torch", "complex64", G_DTYPE, PT_DTYPE_C64 }, { "torch", "complex128", G_DTYPE, PT_DTYPE_C128 },
    { "torch", "complex32", G_DTYPE, PT_DTYPE_C32 }, { "torch", "uint16", G_DTYPE, PT_DTYPE_U16 },
    { "torch", "uint32", G_DTYPE, PT_DTYPE_U32 }, { "torch", "uint64", G_DTYPE, PT_DTYPE_U64 },
    { "torch", "float8_e4m3fn", G_DTYPE, PT_DTYPE_F8_E4M3FN }, { "torch", "float8_e5m2", G_DTYPE, PT_DTYPE_F8_E5M2 },
    { "torch", "float8_e4m3fnuz", G_DTYPE, PT_DTYPE_F8_E4M3FNUZ },
    { "torch", "float8_e5m2fnuz", G_DTYPE, PT_DTYPE_F8_E5M2FNUZ },
    { "torch", "float8_e8m0fnu", G_DTYPE, PT_DTYPE_F8_E8M0FNU },
};
#define N_GLOBALS (sizeof globals / sizeof globals[0])
static_assert(N_GLOBALS <= 64, "globals_used is a 64-bit mask");

/* legitimate torch constructs that are refused with a reason */
static const struct {
    const char *module, *name, *why;
} refused[] = {
    { "torch._utils", "_rebuild_qtensor", "quantized tensors are not supported" },
    { "torch._utils", "_rebuild_sparse_tensor", "sparse tensors are not supported" },
    { "torch._utils", "_rebuild_sparse_csr_tensor", "sparse tensors are not supported" },
    { "torch.serialization", "_get_layout", "sparse tensors are not supported" },
    { "torch._utils", "_rebuild_nested_tensor", "nested tensors are not supported" },
    { "torch._utils", "_rebuild_wrapper_subclass", "tensor subclasses are not supported" },
    { "torch._utils", "_rebuild_meta_tensor_no_storage", "meta tensors hold no data" },
    { "torch._utils", "_rebuild_device_tensor_from_numpy", "device (xla) tensors are not supported" },
    { "torch._utils", "_rebuild_device_tensor_from_cpu_tensor", "device tensors are not supported" },
    { "torch._utils", "_rebuild_tensor", "pre-v2 tensor pickles are not supported" },
};

/* ---- values */

enum kind { K_NONE, K_BOOL, K_INT, K_FLOAT, K_GLOBAL, K_STR, K_TUPLE, K_LIST, K_DICT, K_TENSOR, K_STORAGE };
static const char *const kind_names[] = { "none", "bool", "int", "float", "global", "str",
                                          "tuple", "list", "dict", "tensor", "storage" };

struct val {
    enum kind kind;
    union {
        int64_t i;          /* K_BOOL, K_INT */
        double f;           /* K_FLOAT */
        int g;              /* K_GLOBAL: index in globals[] */
        struct pt_obj *o;   /* K_STR and up */
    } u;
};

struct pt_obj {
    enum kind kind;
    int ordered;            /* K_DICT made by OrderedDict() */
    uint32_t depth;         /* containers: 1 + deepest item when it was added */
    union {
        struct {
            char *s;        /* NUL-terminated copy; may hold NULs inside */
            size_t len;
        } str;
        struct {
            struct val *v;  /* tuple/list: items; dict: key, value, key, value, ... */
            size_t n, cap;
        } seq;
        struct pt_tensor t;
        struct pt_storage *st;
    } u;
};

struct pt_chunk {
    struct pt_chunk *next;
    size_t used, size;
    max_align_t data[];
};

struct pt_arena {
    struct pt_chunk *head;
    size_t total;
};

struct vm {
    const unsigned char *d;
    size_t n, pos, at;                  /* at: offset of the current opcode */
    const struct pt_zip *zip;
    const char *path;
    struct as_error *err;
    struct pt_arena *arena;
    struct val *stack;
    size_t sp, scap;
    size_t marks[PT_MAX_MARKS];
    size_t nmarks;
    struct val *memo;
    size_t nmemo, memocap;
    size_t objects, items;
    struct pt_obj **stab;               /* storages by key: open addressing */
    size_t stab_n, stab_cap;
    uint64_t globals_used;
};

__attribute__((format(printf, 2, 3))) static int fail(struct vm *vm, const char *fmt, ...)
{
    char msg[AS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return as_error_set(vm->err, AS_ERR_INPUT, "'%s': %s", vm->path, msg);
}

static void *vm_alloc(struct vm *vm, size_t n)
{
    struct pt_arena *a = vm->arena;
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->size - a->head->used < n) {
        size_t sz = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (sz > PT_MAX_VM_BYTES - a->total) {
            fail(vm, "data.pkl needs more than %zu MiB of memory to unpickle", PT_MAX_VM_BYTES >> 20);
            return NULL;
        }
        struct pt_chunk *c = as_xmalloc(sizeof *c + sz);
        c->next = a->head;
        c->used = 0;
        c->size = sz;
        a->head = c;
        a->total += sz;
    }
    void *p = (unsigned char *)a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static struct pt_obj *new_obj(struct vm *vm, enum kind k)
{
    if (vm->objects >= PT_MAX_OBJECTS) {
        fail(vm, "data.pkl creates more than %d objects", PT_MAX_OBJECTS);
        return NULL;
    }
    struct pt_obj *o = vm_alloc(vm, sizeof *o);
    if (!o)
        return NULL;
    memset(o, 0, sizeof *o);
    o->kind = k;
    o->depth = k == K_TUPLE || k == K_LIST || k == K_DICT;
    vm->objects++;
    return o;
}

static struct val obj_val(struct pt_obj *o)
{
    struct val v = { .kind = o->kind, .u.o = o };
    return v;
}

static uint32_t val_depth(const struct val *v)
{
    return v->kind >= K_STR ? v->u.o->depth : 0;
}

/* Append k items to container o (tuple, list or dict pairs). */
static int seq_add(struct vm *vm, struct pt_obj *o, const struct val *items, size_t k)
{
    if (k > PT_MAX_ITEMS - vm->items)
        return fail(vm, "data.pkl puts more than %d items into containers", PT_MAX_ITEMS);
    size_t need = o->u.seq.n + k;
    if (need > o->u.seq.cap) {
        size_t cap = o->u.seq.cap * 2;
        if (cap < need)
            cap = need;
        if (cap < 4)
            cap = 4;
        struct val *v = vm_alloc(vm, cap * sizeof *v);
        if (!v)
            return -1;
        if (o->u.seq.n)
            memcpy(v, o->u.seq.v, o->u.seq.n * sizeof *v);
        o->u.seq.v = v;
        o->u.seq.cap = cap;
    }
    for (size_t i = 0; i < k; i++) {
        uint32_t d = val_depth(&items[i]) + 1;
        if (d > o->depth)
            o->depth = d;
    }
    if (o->depth > PT_MAX_DEPTH)
        return fail(vm, "containers nested deeper than %d levels", PT_MAX_DEPTH);
    if (k)
        memcpy(o->u.seq.v + o->u.seq.n, items, k * sizeof *items);
    o->u.seq.n += k;
    vm->items += k;
    return 0;
}

/* ---- the stack, MARKs and the memo */

static size_t stack_base(const struct vm *vm)
{
    return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
}

static int push(struct vm *vm, struct val v)
{
    if (vm->sp == vm->scap) {
        if (vm->sp >= PT_MAX_STACK)
            return fail(vm, "pickle stack exceeds %d values", PT_MAX_STACK);
        size_t cap = vm->scap ? vm->scap * 2 : 256;
        vm->stack = as_xrealloc(vm->stack, cap, sizeof *vm->stack);
        vm->scap = cap;
    }
    vm->stack[vm->sp++] = v;
    return 0;
}

static int pop(struct vm *vm, struct val *v)
{
    if (vm->sp <= stack_base(vm))
        return fail(vm, "pickle stack underflow at offset %zu", vm->at);
    *v = vm->stack[--vm->sp];
    return 0;
}

static int top(struct vm *vm, struct val **v)
{
    if (vm->sp <= stack_base(vm))
        return fail(vm, "pickle stack underflow at offset %zu", vm->at);
    *v = &vm->stack[vm->sp - 1];
    return 0;
}

/* Close the innermost MARK: its items are stack[*start .. vm->sp); the caller resets sp. */
static int pop_mark(struct vm *vm, size_t *start)
{
    if (!vm->nmarks)
        return fail(vm, "pickle opcode at offset %zu needs a MARK", vm->at);
    *start = vm->marks[--vm->nmarks];
    return 0;
}

static int memo_put(struct vm *vm, uint64_t idx)
{
    struct val *t = NULL;
    if (top(vm, &t))
        return -1;
    if (idx > vm->nmemo || idx >= PT_MAX_MEMO)
        return fail(vm, "pickle memo index %llu is not sequential (memo holds %zu)", (unsigned long long)idx,
                    vm->nmemo);
    if (idx == vm->nmemo) {
        if (vm->nmemo == vm->memocap) {
            size_t cap = vm->memocap ? vm->memocap * 2 : 256;
            vm->memo = as_xrealloc(vm->memo, cap, sizeof *vm->memo);
            vm->memocap = cap;
        }
        vm->nmemo++;
    }
    vm->memo[idx] = *t;
    return 0;
}

static int memo_get(struct vm *vm, uint64_t idx)
{
    if (idx >= vm->nmemo)
        return fail(vm, "pickle memo index %llu is undefined", (unsigned long long)idx);
    return push(vm, vm->memo[idx]);
}

/* ---- operands */

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int need(struct vm *vm, size_t k)
{
    if (vm->n - vm->pos < k)
        return fail(vm, "data.pkl is truncated inside the opcode at offset %zu", vm->at);
    return 0;
}

static int push_str(struct vm *vm, size_t len)
{
    if (len > PT_MAX_STRING)
        return fail(vm, "pickle string of %zu bytes at offset %zu exceeds the %zu MiB limit", len, vm->at,
                    PT_MAX_STRING >> 20);
    if (need(vm, len))
        return -1;
    const unsigned char *s = vm->d + vm->pos;
    if (!pt_utf8_valid(s, len))
        return fail(vm, "pickle string at offset %zu is not valid utf-8", vm->at);
    struct pt_obj *o = new_obj(vm, K_STR);
    if (!o || !(o->u.str.s = vm_alloc(vm, len + 1)))
        return -1;
    memcpy(o->u.str.s, s, len);
    o->u.str.s[len] = '\0';
    o->u.str.len = len;
    vm->pos += len;
    return push(vm, obj_val(o));
}

static int str_is(const struct val *v, const char *s)
{
    return v->kind == K_STR && v->u.o->u.str.len == strlen(s) && !memcmp(v->u.o->u.str.s, s, v->u.o->u.str.len);
}

/* A GLOBAL operand: 1..PT_MAX_LINE printable ASCII bytes without spaces. */
static int ident_ok(const unsigned char *s, size_t n)
{
    if (n == 0 || n > PT_MAX_LINE)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return 0;
    return 1;
}

static int push_global(struct vm *vm, const char *mod, size_t ml, const char *name, size_t nl)
{
    for (size_t i = 0; i < N_GLOBALS; i++)
        if (strlen(globals[i].module) == ml && !memcmp(globals[i].module, mod, ml) &&
            strlen(globals[i].name) == nl && !memcmp(globals[i].name, name, nl)) {
            vm->globals_used |= (uint64_t)1 << i;
            struct val v = { .kind = K_GLOBAL, .u.g = (int)i };
            return push(vm, v);
        }
    const char *why = NULL;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (strlen(refused[i].module) == ml && !memcmp(refused[i].module, mod, ml) &&
            strlen(refused[i].name) == nl && !memcmp(refused[i].name, name, nl))
            why = refused[i].why;
    if (!why && ml == 5 && !memcmp(mod, "torch", 5) && nl > 8 && name[0] == 'Q' &&
        !memcmp(name + nl - 7, "Storage", 7))
        why = "quantized tensors are not supported";
    if (!why && ((ml >= 16 && !memcmp(mod, "torch.nn.modules", 16)) || (ml == 8 && !memcmp(mod, "__main__", 8))))
        why = "a pickled module or class: save model.state_dict() instead";
    if (why)
        return fail(vm, "pickle global '%.*s.%.*s' is not allowed (%s)", (int)ml, mod, (int)nl, name, why);
    return fail(vm, "pickle global '%.*s.%.*s' is not allowed", (int)ml, mod, (int)nl, name);
}

static int op_global(struct vm *vm)
{
    const char *part[2];
    size_t len[2];
    for (int k = 0; k < 2; k++) {
        size_t avail = vm->n - vm->pos, lim = avail < PT_MAX_LINE + 1 ? avail : PT_MAX_LINE + 1;
        const unsigned char *s = vm->d + vm->pos, *nl = memchr(s, '\n', lim);
        if (!nl)
            return fail(vm, "pickle GLOBAL at offset %zu has an unterminated or overlong operand", vm->at);
        len[k] = (size_t)(nl - s);
        if (!ident_ok(s, len[k]))
            return fail(vm, "pickle GLOBAL at offset %zu has a non-ascii or empty operand", vm->at);
        part[k] = (const char *)s;
        vm->pos += len[k] + 1;
    }
    return push_global(vm, part[0], len[0], part[1], len[1]);
}

static int op_stack_global(struct vm *vm)
{
    struct val name, mod;
    if (pop(vm, &name) || pop(vm, &mod))
        return -1;
    if (name.kind != K_STR || mod.kind != K_STR ||
        !ident_ok((const unsigned char *)mod.u.o->u.str.s, mod.u.o->u.str.len) ||
        !ident_ok((const unsigned char *)name.u.o->u.str.s, name.u.o->u.str.len))
        return fail(vm, "pickle STACK_GLOBAL at offset %zu needs two ascii strings", vm->at);
    return push_global(vm, mod.u.o->u.str.s, mod.u.o->u.str.len, name.u.o->u.str.s, name.u.o->u.str.len);
}

/* ---- storages (BINPERSID) */

static uint64_t key_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static struct pt_obj **stab_slot(struct pt_obj **tab, size_t cap, const char *key)
{
    size_t i = (size_t)key_hash(key) & (cap - 1);
    while (tab[i] && strcmp(tab[i]->u.st->key, key))
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

static int stab_insert(struct vm *vm, struct pt_obj *o)
{
    if (2 * (vm->stab_n + 1) > vm->stab_cap) {
        size_t cap = vm->stab_cap ? vm->stab_cap * 2 : 64;
        struct pt_obj **t = as_xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < vm->stab_cap; i++)
            if (vm->stab[i])
                *stab_slot(t, cap, vm->stab[i]->u.st->key) = vm->stab[i];
        free(vm->stab);
        vm->stab = t;
        vm->stab_cap = cap;
    }
    *stab_slot(vm->stab, vm->stab_cap, o->u.st->key) = o;
    vm->stab_n++;
    return 0;
}

static int op_persid(struct vm *vm)
{
    struct val pid;
    if (pop(vm, &pid))
        return -1;
    const struct val *a = pid.kind == K_TUPLE ? pid.u.o->u.seq.v : NULL;
    if (!a || pid.u.o->u.seq.n != 5 || !str_is(&a[0], "storage") || a[1].kind != K_GLOBAL ||
        a[2].kind != K_STR || a[3].kind != K_STR || a[4].kind != K_INT)
        return fail(vm, "persistent id at offset %zu is not ('storage', type, key, location, numel)", vm->at);
    const struct pt_global *g = &globals[a[1].u.g];
    if (g->kind != G_STORAGE)
        return fail(vm, "persistent id at offset %zu: '%s.%s' is not a storage type", vm->at, g->module, g->name);
    const char *key = a[2].u.o->u.str.s;
    size_t klen = a[2].u.o->u.str.len;
    int key_ok = klen >= 1 && klen <= PT_MAX_KEY;
    for (size_t i = 0; key_ok && i < klen; i++)
        key_ok = (key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'z') ||
                 (key[i] >= 'A' && key[i] <= 'Z');
    if (!key_ok)
        return fail(vm, "storage key at offset %zu is not 1..%d ascii letters or digits", vm->at, PT_MAX_KEY);
    enum pt_dtype dt = g->what == UNTYPED ? PT_DTYPE_U8 : (enum pt_dtype)g->what;
    int64_t isz = pt_dtype_traits[dt].size, numel = a[4].u.i;
    if (numel < 0 || numel > ((int64_t)1 << 62) / isz)
        return fail(vm, "storage 'data/%s' declares %lld elements (out of range)", key, (long long)numel);
    if (vm->stab_cap) {
        struct pt_obj *prev = *stab_slot(vm->stab, vm->stab_cap, key);
        if (prev) {
            const struct pt_storage *p = prev->u.st;
            if (p->dtype != dt || p->untyped != (g->what == UNTYPED) || p->numel != numel)
                return fail(vm, "storage 'data/%s' is used as %s[%lld] and as %s[%lld]", key,
                            pt_dtype_traits[p->dtype].name, (long long)p->numel, pt_dtype_traits[dt].name,
                            (long long)numel);
            return push(vm, obj_val(prev));
        }
    }
    char rec[PT_MAX_KEY + 8];
    snprintf(rec, sizeof rec, "data/%s", key);
    const struct pt_zip_entry *e = pt_zip_find(vm->zip, rec);
    if (!e)
        return fail(vm, "storage '%s' has no record in the archive", rec);
    if (e->size != numel * isz)
        return fail(vm, "storage '%s' needs %lld bytes but the record holds %lld", rec, (long long)(numel * isz),
                    (long long)e->size);
    struct pt_obj *o = new_obj(vm, K_STORAGE);
    if (!o || !(o->u.st = vm_alloc(vm, sizeof *o->u.st)))
        return -1;
    struct pt_storage *st = o->u.st;
    memcpy(st->key, key, klen);
    st->key[klen] = '\0';
    st->dtype = dt;
    st->untyped = g->what == UNTYPED;
    st->numel = numel;
    st->rec = e;
    if (stab_insert(vm, o))
        return -1;
    return push(vm, obj_val(o));
}

/* ---- REDUCE */

static int hooks_ok(struct vm *vm, const struct val *h)
{
    if (h->kind != K_DICT || !h->u.o->ordered || h->u.o->u.seq.n)
        return fail(vm, "tensor at offset %zu: backward_hooks must be an empty OrderedDict", vm->at);
    return 0;
}

static int int_tuple(struct vm *vm, const struct val *v, const char *what)
{
    if (v->kind != K_TUPLE)
        return fail(vm, "tensor at offset %zu: %s is a %s, not a tuple", vm->at, what, kind_names[v->kind]);
    if (v->u.o->u.seq.n > PT_MAX_DIMS)
        return fail(vm, "tensor at offset %zu: %s has %zu dims (at most %d)", vm->at, what, v->u.o->u.seq.n,
                    PT_MAX_DIMS);
    for (size_t i = 0; i < v->u.o->u.seq.n; i++)
        if (v->u.o->u.seq.v[i].kind != K_INT)
            return fail(vm, "tensor at offset %zu: %s holds a %s", vm->at, what, kind_names[v->u.o->u.seq.v[i].kind]);
    return 0;
}

/* _rebuild_tensor_v2/v3(storage, offset, size, stride, requires_grad, ...): a[0..4];
 * dtype -1: the storage's; meta: NULL or the metadata dict. */
static int make_tensor(struct vm *vm, const struct val *a, int dtype, const struct val *meta, struct val *out)
{
    if (a[0].kind != K_STORAGE)
        return fail(vm, "tensor at offset %zu: first argument is a %s, not a storage", vm->at, kind_names[a[0].kind]);
    const struct pt_storage *st = a[0].u.o->u.st;
    if (a[1].kind != K_INT)
        return fail(vm, "tensor on storage 'data/%s': storage_offset is a %s", st->key, kind_names[a[1].kind]);
    if (int_tuple(vm, &a[2], "size") || int_tuple(vm, &a[3], "stride"))
        return -1;
    if (a[4].kind != K_BOOL)
        return fail(vm, "tensor on storage 'data/%s': requires_grad is a %s", st->key, kind_names[a[4].kind]);
    int conj = 0, neg = 0;
    if (meta) {
        if (meta->kind != K_DICT)
            return fail(vm, "tensor on storage 'data/%s': metadata is a %s", st->key, kind_names[meta->kind]);
        for (size_t i = 0; i < meta->u.o->u.seq.n; i += 2) {
            const struct val *k = &meta->u.o->u.seq.v[i], *v = k + 1;
            int is_conj = str_is(k, "conj");
            if ((!is_conj && !str_is(k, "neg")) || v->kind != K_BOOL)
                return fail(vm, "tensor on storage 'data/%s': unsupported metadata (only conj/neg flags)", st->key);
            if (is_conj)
                conj = v->u.i != 0;
            else
                neg = v->u.i != 0;
        }
    }
    enum pt_dtype dt = st->dtype;
    int64_t elems = st->numel;
    if (dtype >= 0) {
        if (!st->untyped)
            return fail(vm, "tensor on storage 'data/%s': _rebuild_tensor_v3 needs an UntypedStorage", st->key);
        dt = (enum pt_dtype)dtype;
        int64_t isz = pt_dtype_traits[dt].size;
        if (st->numel % isz)
            return fail(vm, "storage 'data/%s' holds %lld bytes, not a multiple of %s's %lld", st->key,
                        (long long)st->numel, pt_dtype_traits[dt].name, (long long)isz);
        elems = st->numel / isz;
    }
    size_t nd = a[2].u.o->u.seq.n;
    if (a[3].u.o->u.seq.n != nd)
        return fail(vm, "tensor on storage 'data/%s': size has %zu dims, stride has %zu", st->key, nd,
                    a[3].u.o->u.seq.n);
    const struct val *sz = a[2].u.o->u.seq.v, *sd = a[3].u.o->u.seq.v;
    int64_t offset = a[1].u.i, numel = 1;
    if (offset < 0)
        return fail(vm, "tensor on storage 'data/%s': negative storage_offset %lld", st->key, (long long)offset);
    for (size_t d = 0; d < nd; d++) {
        if (sz[d].u.i < 0 || sd[d].u.i < 0)
            return fail(vm, "tensor on storage 'data/%s': negative size or stride in dim %zu", st->key, d);
        if (as_mul_i64(numel, sz[d].u.i, &numel))
            return fail(vm, "tensor on storage 'data/%s': element count overflows", st->key);
    }
    if (numel > 0) {
        int64_t last = offset;
        for (size_t d = 0; d < nd; d++) {
            int64_t t;
            if (as_mul_i64(sz[d].u.i - 1, sd[d].u.i, &t) || as_add_i64(last, t, &last))
                return fail(vm, "tensor on storage 'data/%s': extent overflows", st->key);
        }
        if (last >= elems)
            return fail(vm, "tensor on storage 'data/%s': element %lld lies outside the storage's %lld elements",
                        st->key, (long long)last, (long long)elems);
    }
    struct pt_obj *o = new_obj(vm, K_TENSOR);
    int64_t *dims = o ? vm_alloc(vm, (2 * nd + 1) * sizeof *dims) : NULL;
    if (!dims)
        return -1;
    for (size_t d = 0; d < nd; d++) {
        dims[d] = sz[d].u.i;
        dims[nd + d] = sd[d].u.i;
    }
    struct pt_tensor *t = &o->u.t;
    t->st = st;
    t->dtype = dt;
    t->offset = offset;
    t->ndim = (int)nd;
    t->shape = dims;
    t->stride = dims + nd;
    t->requires_grad = a[4].u.i != 0;
    t->conj = conj;
    t->neg = neg;
    *out = obj_val(o);
    return 0;
}

static int call(struct vm *vm, int gi, const struct pt_obj *args, struct val *out)
{
    const struct val *a = args->u.seq.v;
    size_t na = args->u.seq.n;
    const char *fname = globals[gi].name;
    switch ((enum gcall)globals[gi].what) {
    case C_ODICT: {
        if (na)
            return fail(vm, "collections.OrderedDict() at offset %zu takes no arguments here", vm->at);
        struct pt_obj *o = new_obj(vm, K_DICT);
        if (!o)
            return -1;
        o->ordered = 1;
        *out = obj_val(o);
        return 0;
    }
    case C_SIZE:
        if (na != 1 || int_tuple(vm, &a[0], "torch.Size argument"))
            return fail(vm, "torch.Size at offset %zu takes one tuple of ints", vm->at);
        *out = a[0];
        return 0;
    case C_V2:
        if (na != 6 && na != 7)
            return fail(vm, "%s at offset %zu takes 6 or 7 arguments, got %zu", fname, vm->at, na);
        if (hooks_ok(vm, &a[5]))
            return -1;
        return make_tensor(vm, a, -1, na == 7 ? &a[6] : NULL, out);
    case C_V3:
        if (na != 7 && na != 8)
            return fail(vm, "%s at offset %zu takes 7 or 8 arguments, got %zu", fname, vm->at, na);
        if (hooks_ok(vm, &a[5]))
            return -1;
        if (a[6].kind != K_GLOBAL || globals[a[6].u.g].kind != G_DTYPE)
            return fail(vm, "%s at offset %zu: dtype argument is not a torch dtype", fname, vm->at);
        return make_tensor(vm, a, globals[a[6].u.g].what, na == 8 ? &a[7] : NULL, out);
    case C_PARAM:
    case C_PARAM_STATE: {
        size_t want = globals[gi].what == C_PARAM ? 3 : 4;
        if (na != want || a[0].kind != K_TENSOR || a[1].kind != K_BOOL)
            return fail(vm, "%s at offset %zu needs (tensor, bool, hooks%s)", fname, vm->at, want == 4 ? ", state" : "");
        if (hooks_ok(vm, &a[2]))
            return -1;
        if (want == 4 && a[3].kind != K_DICT)
            return fail(vm, "%s at offset %zu: state is a %s, not a dict", fname, vm->at, kind_names[a[3].kind]);
        a[0].u.o->u.t.requires_grad = a[1].u.i != 0;
        a[0].u.o->u.t.parameter = 1;
        *out = a[0];
        return 0;
    }
    case C_FROM_TYPE: {
        if (na != 4 || a[0].kind != K_GLOBAL || a[1].kind != K_GLOBAL || a[2].kind != K_TUPLE ||
            (a[3].kind != K_NONE && a[3].kind != K_DICT))
            return fail(vm, "%s at offset %zu needs (func, cls, args, state)", fname, vm->at);
        const struct pt_global *f = &globals[a[0].u.g], *cls = &globals[a[1].u.g];
        if (f->kind != G_CALL || (f->what != C_V2 && f->what != C_V3 && f->what != C_PARAM))
            return fail(vm, "%s at offset %zu: '%s.%s' is not a tensor rebuild function", fname, vm->at, f->module,
                        f->name);
        if (cls->kind != G_MARKER)
            return fail(vm, "%s at offset %zu: tensor class '%s.%s' is not allowed", fname, vm->at, cls->module,
                        cls->name);
        return call(vm, a[0].u.g, a[2].u.o, out); /* one level: f is never _rebuild_from_type_v2 */
    }
    }
    return fail(vm, "internal: unknown callable");
}

static int op_reduce(struct vm *vm)
{
    struct val args, fn;
    if (pop(vm, &args) || pop(vm, &fn))
        return -1;
    if (fn.kind == K_GLOBAL && globals[fn.u.g].kind != G_CALL)
        return fail(vm, "REDUCE at offset %zu calls '%s.%s', which is not callable", vm->at, globals[fn.u.g].module,
                    globals[fn.u.g].name);
    if (fn.kind != K_GLOBAL)
        return fail(vm, "REDUCE at offset %zu calls a %s", vm->at, kind_names[fn.kind]);
    if (args.kind != K_TUPLE)
        return fail(vm, "REDUCE at offset %zu: arguments are a %s, not a tuple", vm->at, kind_names[args.kind]);
    struct val out;
    if (call(vm, fn.u.g, args.u.o, &out))
        return -1;
    return push(vm, out);
}

/* ---- containers */

static int op_tuple(struct vm *vm, size_t start)
{
    struct pt_obj *o = new_obj(vm, K_TUPLE);
    if (!o || seq_add(vm, o, vm->stack + start, vm->sp - start))
        return -1;
    vm->sp = start;
    return push(vm, obj_val(o));
}

static int key_ok(const struct val *k)
{
    return k->kind == K_NONE || k->kind == K_BOOL || k->kind == K_INT || k->kind == K_FLOAT || k->kind == K_STR ||
           k->kind == K_TUPLE;
}

/* APPEND(S) / SETITEM(S): items at stack[start..sp) go into the container below them. */
static int op_fill(struct vm *vm, size_t start, enum kind want)
{
    size_t k = vm->sp - start;
    struct val *t = NULL;
    vm->sp = start; /* the items stay in place until copied: nothing is pushed meanwhile */
    if (top(vm, &t))
        return -1;
    if (t->kind != want)
        return fail(vm, "%s at offset %zu on a %s", want == K_LIST ? "APPEND" : "SETITEM", vm->at,
                    kind_names[t->kind]);
    if (want == K_DICT) {
        if (k % 2)
            return fail(vm, "SETITEMS at offset %zu with an odd number of values", vm->at);
        for (size_t i = 0; i < k; i += 2)
            if (!key_ok(&vm->stack[start + i]))
                return fail(vm, "SETITEM at offset %zu with a %s key", vm->at, kind_names[vm->stack[start + i].kind]);
    }
    return seq_add(vm, t->u.o, vm->stack + start, k);
}

static int op_build(struct vm *vm)
{
    struct val state, *obj = NULL;
    if (pop(vm, &state) || top(vm, &obj))
        return -1;
    if (obj->kind != K_DICT || state.kind != K_DICT)
        return fail(vm, "BUILD at offset %zu on a %s with a %s state is not allowed", vm->at, kind_names[obj->kind],
                    kind_names[state.kind]);
    return 0; /* an OrderedDict's __dict__ (state_dict _metadata): dropped */
}

static int push_scalar(struct vm *vm, enum kind k, int64_t i)
{
    struct val v = { .kind = k, .u.i = i };
    return push(vm, v);
}

static int run(struct vm *vm, struct val *root)
{
    const unsigned char *d = vm->d;
    for (;;) {
        if (vm->pos >= vm->n)
            return fail(vm, "data.pkl ends without a STOP opcode");
        vm->at = vm->pos;
        unsigned op = d[vm->pos++];
        int rc = 0;
        size_t start = 0;
        switch (op) {
        case 0x80: /* PROTO */
            if (vm->at != 0)
                return fail(vm, "pickle PROTO at offset %zu is not the first opcode", vm->at);
            if (need(vm, 1))
                return -1;
            if (d[vm->pos] < 2 || d[vm->pos] > 5)
                return fail(vm, "pickle protocol %u is not supported (2..5)", d[vm->pos]);
            vm->pos++;
            break;
        case 0x95: { /* FRAME: a hint; the length must fit */
            if (need(vm, 8))
                return -1;
            uint64_t len = (uint64_t)rd32(d + vm->pos) | (uint64_t)rd32(d + vm->pos + 4) << 32;
            vm->pos += 8;
            if (len > vm->n - vm->pos)
                return fail(vm, "pickle FRAME at offset %zu is longer than the data", vm->at);
            break;
        }
        case 'c':
            rc = op_global(vm);
            break;
        case 0x93:
            rc = op_stack_global(vm);
            break;
        case 'q':
            if (!(rc = need(vm, 1)))
                rc = memo_put(vm, d[vm->pos++]);
            break;
        case 'r':
            if (!(rc = need(vm, 4))) {
                rc = memo_put(vm, rd32(d + vm->pos));
                vm->pos += 4;
            }
            break;
        case 0x94: /* MEMOIZE */
            rc = memo_put(vm, vm->nmemo);
            break;
        case 'h':
            if (!(rc = need(vm, 1)))
                rc = memo_get(vm, d[vm->pos++]);
            break;
        case 'j':
            if (!(rc = need(vm, 4))) {
                rc = memo_get(vm, rd32(d + vm->pos));
                vm->pos += 4;
            }
            break;
        case '(': /* MARK */
            if (vm->nmarks >= PT_MAX_MARKS)
                return fail(vm, "pickle MARKs nested deeper than %d", PT_MAX_MARKS);
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case 't':
            if (!(rc = pop_mark(vm, &start)))
                rc = op_tuple(vm, start);
            break;
        case ')':
            rc = op_tuple(vm, vm->sp);
            break;
        case 0x85:
        case 0x86:
        case 0x87: /* TUPLE1..3 */
            if (vm->sp < stack_base(vm) + (op - 0x84))
                return fail(vm, "pickle stack underflow at offset %zu", vm->at);
            rc = op_tuple(vm, vm->sp - (op - 0x84));
            break;
        case 'X':
            if (!(rc = need(vm, 4))) {
                size_t len = rd32(d + vm->pos);
                vm->pos += 4;
                rc = push_str(vm, len);
            }
            break;
        case 0x8c: /* SHORT_BINUNICODE */
            if (!(rc = need(vm, 1))) {
                size_t len = d[vm->pos++];
                rc = push_str(vm, len);
            }
            break;
        case 'K':
            if (!(rc = need(vm, 1)))
                rc = push_scalar(vm, K_INT, d[vm->pos++]);
            break;
        case 'M':
            if (!(rc = need(vm, 2))) {
                rc = push_scalar(vm, K_INT, d[vm->pos] | d[vm->pos + 1] << 8);
                vm->pos += 2;
            }
            break;
        case 'J':
            if (!(rc = need(vm, 4))) {
                rc = push_scalar(vm, K_INT, (int32_t)rd32(d + vm->pos));
                vm->pos += 4;
            }
            break;
        case 0x8a: { /* LONG1: n bytes two's complement, n <= 8 */
            if (need(vm, 1))
                return -1;
            unsigned k = d[vm->pos++];
            if (k > 8)
                return fail(vm, "pickle integer at offset %zu is wider than 64 bits", vm->at);
            if (need(vm, k))
                return -1;
            uint64_t u = 0;
            for (unsigned i = 0; i < k; i++)
                u |= (uint64_t)d[vm->pos + i] << (8 * i);
            if (k && k < 8 && (d[vm->pos + k - 1] & 0x80))
                u |= ~(uint64_t)0 << (8 * k);
            vm->pos += k;
            int64_t v;
            memcpy(&v, &u, sizeof v);
            rc = push_scalar(vm, K_INT, v);
            break;
        }
        case 'N':
            rc = push_scalar(vm, K_NONE, 0);
            break;
        case 0x88:
        case 0x89:
            rc = push_scalar(vm, K_BOOL, op == 0x88);
            break;
        case 'G': { /* BINFLOAT: big-endian double */
            if (need(vm, 8))
                return -1;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++)
                u = u << 8 | d[vm->pos + i];
            vm->pos += 8;
            struct val v = { .kind = K_FLOAT };
            memcpy(&v.u.f, &u, sizeof u);
            rc = push(vm, v);
            break;
        }
        case '}':
        case ']': {
            struct pt_obj *o = new_obj(vm, op == '}' ? K_DICT : K_LIST);
            rc = o ? push(vm, obj_val(o)) : -1;
            break;
        }
        case 'a':
            if (vm->sp < stack_base(vm) + 1)
                return fail(vm, "pickle stack underflow at offset %zu", vm->at);
            rc = op_fill(vm, vm->sp - 1, K_LIST);
            break;
        case 'e':
            if (!(rc = pop_mark(vm, &start)))
                rc = op_fill(vm, start, K_LIST);
            break;
        case 's':
            if (vm->sp < stack_base(vm) + 2)
                return fail(vm, "pickle stack underflow at offset %zu", vm->at);
            rc = op_fill(vm, vm->sp - 2, K_DICT);
            break;
        case 'u':
            if (!(rc = pop_mark(vm, &start)))
                rc = op_fill(vm, start, K_DICT);
            break;
        case 'R':
            rc = op_reduce(vm);
            break;
        case 'Q':
            rc = op_persid(vm);
            break;
        case 'b':
            rc = op_build(vm);
            break;
        case '.': /* STOP */
            if (vm->nmarks || vm->sp != 1)
                return fail(vm, "pickle STOP at offset %zu with %zu values and %zu open MARKs on the stack", vm->at,
                            vm->sp, vm->nmarks);
            if (vm->pos != vm->n)
                return fail(vm, "%zu bytes after the pickle STOP opcode", vm->n - vm->pos);
            *root = vm->stack[0];
            return 0;
        default:
            return fail(vm, "pickle opcode 0x%02x at offset %zu is not supported", op, vm->at);
        }
        if (rc)
            return -1;
    }
}

/* ---- public */

void pt_pickle_release(struct pt_pickle *pk)
{
    if (!pk)
        return;
    if (pk->arena) {
        struct pt_chunk *c = pk->arena->head;
        while (c) {
            struct pt_chunk *next = c->next;
            free(c);
            c = next;
        }
        free(pk->arena);
    }
    memset(pk, 0, sizeof *pk);
}

int pt_pickle_load(struct pt_pickle *pk, const unsigned char *data, size_t n, const struct pt_zip *zip,
                   const char *path, struct as_error *err)
{
    memset(pk, 0, sizeof *pk);
    if (n > PT_MAX_PICKLE)
        return as_error_set(err, AS_ERR_INPUT, "'%s': data.pkl has %zu bytes (at most %zu MiB)", path, n,
                            PT_MAX_PICKLE >> 20);
    pk->arena = as_xcalloc(1, sizeof *pk->arena);
    struct vm *vm = as_xcalloc(1, sizeof *vm);
    vm->d = data;
    vm->n = n;
    vm->zip = zip;
    vm->path = path;
    vm->err = err;
    vm->arena = pk->arena;
    vm->scap = 256; /* never NULL: op_tuple and op_fill take vm->stack + start */
    vm->stack = as_xcalloc(vm->scap, sizeof *vm->stack);
    struct val root = { .kind = K_NONE };
    int rc = run(vm, &root);
    pk->globals_used = vm->globals_used;
    free(vm->stack);
    free(vm->memo);
    free(vm->stab);
    free(vm);
    if (rc) {
        pt_pickle_release(pk);
        return -1;
    }
    if (root.kind >= K_STR)
        pk->root = root.u.o;
    if (root.kind == K_TENSOR)
        pk->root_tensor = &root.u.o->u.t;
    return 0;
}

void pt_pickle_globals(const struct pt_pickle *pk, char *buf, size_t n)
{
    size_t len = 0;
    if (!n)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < N_GLOBALS; i++) {
        if (!(pk->globals_used >> i & 1))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s.%s", len ? ", " : "", globals[i].module, globals[i].name);
        if (w < 0 || (size_t)w >= n - len) {
            if (n > 4)
                memcpy(buf + n - 4, "...", 4);
            return;
        }
        len += (size_t)w;
    }
}

void pt_named_free(struct pt_named *v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Python's repr of a float key, near enough: shortest round-trip digits, ".0" for integers. */
static void float_repr(double f, char *buf, size_t n)
{
    if (isnan(f) || isinf(f)) {
        snprintf(buf, n, "%s", isnan(f) ? "nan" : f < 0 ? "-inf" : "inf");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    if (!strpbrk(buf, ".e"))
        snprintf(buf + strlen(buf), n - strlen(buf), ".0");
}

/* Write ".<segment>" (no dot at the root) at name[at]; *end = new length. */
static int put_segment(char *name, size_t at, const struct val *key, size_t index, size_t *end)
{
    char tmp[64];
    const char *s = tmp;
    size_t len;
    if (!key) {
        snprintf(tmp, sizeof tmp, "%zu", index);
    } else if (key->kind == K_STR) {
        s = key->u.o->u.str.s;
    } else if (key->kind == K_INT) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)key->u.i);
    } else if (key->kind == K_BOOL) {
        snprintf(tmp, sizeof tmp, "%s", key->u.i ? "True" : "False");
    } else if (key->kind == K_FLOAT) {
        float_repr(key->u.f, tmp, sizeof tmp);
    } else {
        snprintf(tmp, sizeof tmp, "%s", key->kind == K_NONE ? "None" : "(tuple)");
    }
    len = key && key->kind == K_STR ? key->u.o->u.str.len : strlen(s);
    size_t dot = at > 0;
    if (len > PT_MAX_NAME - at - dot)
        return -1;
    if (dot)
        name[at] = '.';
    for (size_t i = 0; i < len; i++) /* control bytes (and NULs) would garble names: '?' */
        name[at + dot + i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    *end = at + dot + len;
    name[*end] = '\0';
    return 0;
}

struct frame {
    const struct pt_obj *o;
    size_t i;               /* next item (dict: next pair) */
    size_t name_len;        /* length of this container's name */
};

static void emit(struct pt_named **out, size_t *n, size_t *cap, const char *name, const struct pt_tensor *t)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *out = as_xrealloc(*out, *cap, sizeof **out);
    }
    (*out)[*n].name = as_xstrdup(name);
    (*out)[*n].t = t;
    (*n)++;
}

int pt_pickle_tensors(const struct pt_pickle *pk, struct pt_named **out, size_t *n, const char *path,
                      struct as_error *err)
{
    struct pt_named *v = NULL;
    size_t nv = 0, cap = 0, nf = 0, visits = 0;
    struct frame *fr = as_xcalloc(PT_MAX_DEPTH + 1, sizeof *fr);
    char *name = as_xmalloc(PT_MAX_NAME + 1);
    int rc = -1;
    *out = NULL;
    *n = 0;
    name[0] = '\0';
    if (pk->root_tensor) {
        emit(&v, &nv, &cap, "", pk->root_tensor);
    } else if (pk->root && pk->root->kind >= K_TUPLE && pk->root->kind <= K_DICT) {
        fr[nf++] = (struct frame){ pk->root, 0, 0 };
    }
    while (nf) {
        struct frame *f = &fr[nf - 1];
        size_t step = f->o->kind == K_DICT ? 2 : 1;
        if (f->i >= f->o->u.seq.n) {
            nf--;
            continue;
        }
        const struct val *key = step == 2 ? &f->o->u.seq.v[f->i] : NULL, *item = &f->o->u.seq.v[f->i + step - 1];
        size_t index = f->i / step, end;
        f->i += step;
        if (++visits > PT_MAX_WALK) {
            as_error_set(err, AS_ERR_INPUT, "'%s': object tree too large to walk (more than %d items)", path,
                         PT_MAX_WALK);
            goto out;
        }
        int is_container = item->kind >= K_TUPLE && item->kind <= K_DICT;
        if (item->kind != K_TENSOR && !is_container)
            continue;
        if (put_segment(name, f->name_len, key, index, &end)) {
            as_error_set(err, AS_ERR_INPUT, "'%s': a tensor name exceeds %d bytes", path, PT_MAX_NAME);
            goto out;
        }
        if (item->kind == K_TENSOR) {
            if (nv >= PT_MAX_TENSORS) {
                as_error_set(err, AS_ERR_INPUT, "'%s': more than %d tensor names", path, PT_MAX_TENSORS);
                goto out;
            }
            emit(&v, &nv, &cap, name, &item->u.o->u.t);
        } else {
            if (nf > PT_MAX_DEPTH) {
                as_error_set(err, AS_ERR_INPUT, "'%s': containers nested deeper than %d levels (or cyclic)", path,
                             PT_MAX_DEPTH);
                goto out;
            }
            fr[nf++] = (struct frame){ item->u.o, 0, end };
        }
    }
    *out = v;
    *n = nv;
    v = NULL;
    nv = 0;
    rc = 0;
out:
    pt_named_free(v, nv);
    free(fr);
    free(name);
    return rc;
}
