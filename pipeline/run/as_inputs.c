/* as_inputs.c: the input tensors of a run: described once before the plan (split across ranks),
 * opened on each rank while its units run (a few models at a time), checked for changes. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_model.h"
#include "as_mpi.h"
#include "as_run_internal.h"
#include "as_synth.h"
#include "as_util.h"

static int is_file(const struct as_plan_input *in)
{
    return in->ops != &as_reader_synth;
}

/* A model folder (weights: run live): described and checked by its files' sizes and mtimes. */
static int is_model_folder(const struct as_plan_input *in)
{
    return in->ops == &as_reader_hf || in->ops == &as_reader_live;
}

/* Describe tensor `name` of model m; the open handle goes to *tf (closed by the caller). */
static int probe_one(const struct as_config *cfg, const struct as_model_cfg *m, const char *name,
                     struct as_plan_input *in, struct as_tensor_file *tf, struct as_error *err)
{
    as_strlcpy(in->name, name, sizeof in->name);
    if (as_config_tensor(cfg, m, name, in->path, sizeof in->path, in->key, sizeof in->key, &in->ops, err))
        return -1;
    if (as_tensor_file_open(tf, in->ops, in->path, in->key[0] ? in->key : NULL, err))
        return as_error_prefix(err, "model '%s': tensor '%s': ", m->name, name);
    in->info = *as_tensor_file_info(tf);
    in->ops = tf->ops;
    if (m->synthetic && in->ops == &as_reader_synth) {
        snprintf(in->digest, sizeof in->digest, "%016llx", (unsigned long long)as_synth_key(&m->synth, 0, 0));
        return 0;
    }
    if (is_model_folder(in)) { /* its weights' digest, the folder's size and mtime */
        char w[AS_PATH_MAX + 64];
        int64_t sz, mt;
        snprintf(w, sizeof w, "%s/model.safetensors", in->path);
        if (access(w, R_OK))
            snprintf(w, sizeof w, "%s/model.safetensors.index.json", in->path);
        if (as_file_digest(w, cfg->full_digest, in->digest, &sz, &mt, err) ||
            as_hf_stat(in->path, &in->size, &in->mtime, err))
            return as_error_prefix(err, "model '%s': tensor '%s': ", m->name, name);
        return 0;
    }
    if (as_file_digest(in->path, cfg->full_digest, in->digest, &in->size, &in->mtime, err))
        return as_error_prefix(err, "model '%s': tensor '%s': ", m->name, name);
    return 0;
}

/* Every input of model i into in; the handles into tf[] (closed by the caller, also on error).
 * A model's own failure under on_error: skip is recorded in `in`, not returned. */
static int probe_model(const struct as_config *cfg, int i, struct as_plan_inputs *in,
                       struct as_tensor_file tf[AS_MAX_TENSORS], struct as_error *err)
{
    const char *names[AS_MAX_TENSORS + 1];
    int n = as_plan_input_names(cfg, names, AS_MAX_TENSORS + 1);
    const struct as_model_cfg *m = &cfg->models[i];
    memset(in, 0, sizeof *in);
    int rc = 0;
    if (n > AS_MAX_TENSORS)
        rc = as_error_set(err, AS_ERR_CONFIG, "model '%s': more than %d input tensors", m->name, AS_MAX_TENSORS);
    for (int k = 0; k < n && !rc; k++)
        rc = probe_one(cfg, m, names[k], &in->in[k], &tf[k], err);
    if (!rc) {
        in->n = n;
        return 0;
    }
    if (cfg->on_error != AS_ON_ERROR_SKIP || (err->status != AS_ERR_INPUT && err->status != AS_ERR_CONFIG))
        return -1;
    in->failed = (int)err->status; /* on_error: skip: recorded, the plan leaves the model out */
    as_strlcpy(in->error, err->msg, sizeof in->error);
    as_error_clear(err);
    return 0;
}

int as_inputs_probe(const struct as_config *cfg, struct as_plan_inputs **inputs, struct as_error *err)
{
    *inputs = as_xcalloc((size_t)cfg->n_models, sizeof **inputs);
    for (int i = 0; i < cfg->n_models; i++) {
        struct as_tensor_file tf[AS_MAX_TENSORS] = { 0 };
        int rc = probe_model(cfg, i, &(*inputs)[i], tf, err);
        for (int k = 0; k < AS_MAX_TENSORS; k++)
            as_tensor_file_close(&tf[k]);
        if (rc)
            return -1;
    }
    return 0;
}

/* ---- descriptions between ranks (as_pack / as_unpack) */

static void pack_model(struct as_strbuf *b, int32_t i, const struct as_plan_inputs *in)
{
    int32_t hdr[3] = { i, in->failed, in->n };
    as_pack(b, hdr, sizeof hdr);
    as_pack_str(b, in->error);
    for (int k = 0; k < in->n; k++) {
        const struct as_plan_input *t = &in->in[k];
        int32_t ops = as_reader_index(t->ops);
        as_pack_str(b, t->name);
        as_pack_str(b, t->path);
        as_pack_str(b, t->key);
        as_pack(b, &ops, 4);
        as_pack(b, &t->info, sizeof t->info);
        as_pack(b, t->digest, sizeof t->digest);
        as_pack(b, &t->size, 8);
        as_pack(b, &t->mtime, 8);
    }
}

static void unpack_model(struct as_cursor *c, struct as_plan_inputs *all, int n_models)
{
    int32_t hdr[3];
    as_unpack(c, hdr, sizeof hdr);
    AS_ASSERT(hdr[0] >= 0 && hdr[0] < n_models && hdr[2] >= 0 && hdr[2] <= AS_MAX_TENSORS);
    struct as_plan_inputs *in = &all[hdr[0]];
    in->failed = hdr[1];
    in->n = hdr[2];
    as_unpack_str(c, in->error, sizeof in->error);
    for (int k = 0; k < in->n; k++) {
        struct as_plan_input *t = &in->in[k];
        int32_t ops;
        as_unpack_str(c, t->name, sizeof t->name);
        as_unpack_str(c, t->path, sizeof t->path);
        as_unpack_str(c, t->key, sizeof t->key);
        as_unpack(c, &ops, 4);
        t->ops = as_reader_at(ops);
        AS_ASSERT(t->ops);
        as_unpack(c, &t->info, sizeof t->info);
        as_unpack(c, t->digest, sizeof t->digest);
        as_unpack(c, &t->size, 8);
        as_unpack(c, &t->mtime, 8);
    }
}

static struct as_run_open_slot *slot_take(struct as_run_open *o, int model);

int as_inputs_probe_all(struct as_run *r, struct as_error *err)
{
    const struct as_config *cfg = r->cfg;
    r->inputs = as_xcalloc((size_t)cfg->n_models, sizeof *r->inputs);
    struct as_strbuf mine = AS_STRBUF_INIT;
    int64_t failed_model = INT64_MAX;
    for (int i = r->rank; i < cfg->n_models; i += r->nranks) {
        struct as_run_open_slot *sl = slot_take(&r->open, i);
        if (probe_model(cfg, i, &r->inputs[i], sl->tf, err)) {
            failed_model = i;
            break;
        }
        if (r->inputs[i].failed)
            as_inputs_close(&r->open); /* nothing of a failed model stays open */
        pack_model(&mine, i, &r->inputs[i]);
    }
    /* the error of the lowest model, so that it does not depend on the rank count */
    if (as_mpi_agree_first_all(r->comm, failed_model, err)) {
        as_strbuf_release(&mine);
        return -1;
    }
    int len = (int)mine.len, *lens = as_xcalloc((size_t)r->nranks, sizeof *lens);
    int *displs = as_xcalloc((size_t)r->nranks, sizeof *displs);
    AS_ASSERT(mine.len < (size_t)1 << 30);
    AS_MPI(MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, r->comm));
    size_t total = 0;
    for (int q = 0; q < r->nranks; q++) {
        displs[q] = (int)total;
        total += (size_t)lens[q];
    }
    AS_ASSERT(total < (size_t)1 << 31);
    unsigned char *all = as_xmalloc(total);
    AS_MPI(MPI_Allgatherv(mine.buf ? mine.buf : "", len, MPI_BYTE, all, lens, displs, MPI_BYTE, r->comm));
    struct as_cursor c = { all, all + total };
    while (c.p < c.end)
        unpack_model(&c, r->inputs, cfg->n_models);
    free(all);
    free(lens);
    free(displs);
    as_strbuf_release(&mine);
    return 0;
}

/* ---- the open models of this rank */

static void slot_close(struct as_run_open *o, struct as_run_open_slot *sl)
{
    for (int k = 0; k < AS_MAX_TENSORS; k++) {
        o->bytes_closed += sl->tf[k].bytes_read;
        o->seconds_closed += sl->tf[k].read_seconds;
        as_tensor_file_close(&sl->tf[k]);
    }
    memset(sl->tf, 0, sizeof sl->tf);
    sl->model = -1;
}

/* A slot for `model`: its own if open, else the least recently used one, closed. */
static struct as_run_open_slot *slot_take(struct as_run_open *o, int model)
{
    int best = 0;
    for (int k = 0; k < AS_RUN_OPEN_SLOTS; k++) {
        if (o->slot[k].model == model && model >= 0) {
            best = k;
            break;
        }
        if (o->slot[k].used < o->slot[best].used)
            best = k;
    }
    struct as_run_open_slot *sl = &o->slot[best];
    if (sl->model != model)
        slot_close(o, sl);
    sl->model = model;
    sl->used = ++o->tick;
    o->cur = best;
    return sl;
}

void as_inputs_init(struct as_run_open *o)
{
    memset(o, 0, sizeof *o);
    for (int k = 0; k < AS_RUN_OPEN_SLOTS; k++)
        o->slot[k].model = -1;
}

void as_inputs_close(struct as_run_open *o)
{
    for (int k = 0; k < AS_RUN_OPEN_SLOTS; k++)
        slot_close(o, &o->slot[k]);
    o->tick = 0;
    for (int k = 0; k < AS_RUN_OPEN_SLOTS; k++)
        o->slot[k].used = 0;
}

uint64_t as_inputs_bytes(const struct as_run_open *o)
{
    uint64_t b = o->bytes_closed;
    for (int s = 0; s < AS_RUN_OPEN_SLOTS; s++)
        for (int k = 0; k < AS_MAX_TENSORS; k++)
            b += o->slot[s].tf[k].bytes_read;
    return b;
}

double as_inputs_read_seconds(const struct as_run_open *o)
{
    double t = o->seconds_closed;
    for (int s = 0; s < AS_RUN_OPEN_SLOTS; s++)
        for (int k = 0; k < AS_MAX_TENSORS; k++)
            t += o->slot[s].tf[k].read_seconds;
    return t;
}

int as_inputs_check(struct as_run *r, int model, struct as_error *err)
{
    const struct as_plan_model *mr = &r->plan.models[model];
    for (int k = 0; k < mr->in->n; k++) {
        const struct as_plan_input *in = &mr->in->in[k];
        if (!is_file(in))
            continue;
        struct stat sb;
        int64_t size, mtime;
        if (is_model_folder(in)) {
            if (as_hf_stat(in->path, &size, &mtime, err))
                return as_error_prefix(err, "model '%s': ", mr->m->name);
        } else if (stat(in->path, &sb)) {
            return as_error_set(err, AS_ERR_INPUT, "model '%s': tensor '%s': input file '%s' disappeared during the run",
                                mr->m->name, in->name, in->path);
        } else {
            size = (int64_t)sb.st_size;
            mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        }
        if (size != in->size || mtime != in->mtime)
            return as_error_set(err, AS_ERR_INPUT, "model '%s': tensor '%s': input file '%s' changed during the run "
                                "(size %lld -> %lld, mtime %lld -> %lld ns); nothing read from it counts: run again",
                                mr->m->name, in->name, in->path, (long long)in->size, (long long)size,
                                (long long)in->mtime, (long long)mtime);
    }
    return 0;
}

int as_inputs_open(struct as_run *r, int model, struct as_error *err)
{
    struct as_run_open *o = &r->open;
    const struct as_plan_model *mr = &r->plan.models[model];
    int fresh = 1;
    for (int k = 0; k < AS_RUN_OPEN_SLOTS; k++)
        fresh &= o->slot[k].model != model;
    struct as_run_open_slot *sl = slot_take(o, model);
    if (!fresh)
        return 0;
    for (int k = 0; k < mr->in->n; k++) {
        const struct as_plan_input *in = &mr->in->in[k];
        if (as_tensor_file_open(&sl->tf[k], in->ops, in->path, in->key[0] ? in->key : NULL, err)) {
            slot_close(o, sl);
            return as_error_prefix(err, "model '%s': tensor '%s': ", mr->m->name, in->name);
        }
        /* the file may have changed since the plan was made */
        const struct as_tensor_info *ti = as_tensor_file_info(&sl->tf[k]);
        if (ti->ndim != in->info.ndim || memcmp(ti->shape, in->info.shape, sizeof ti->shape) ||
            ti->dtype != in->info.dtype) {
            slot_close(o, sl);
            return as_error_set(err, AS_ERR_INPUT, "model '%s': tensor '%s' changed while the run was starting",
                                mr->m->name, in->name);
        }
    }
    if (as_inputs_check(r, model, err)) {
        slot_close(o, sl);
        return -1;
    }
    return 0;
}

void as_inputs_unit(struct as_unit *u, struct as_run *r, int model, int s, int64_t layer)
{
    const struct as_plan_model *mr = &r->plan.models[model];
    const struct as_plan_stage *ps = &mr->st[s];
    struct as_run_open_slot *sl = &r->open.slot[r->open.cur];
    AS_ASSERT(sl->model == model);
    struct as_tensor_file *in[AS_STAGE_MAX_INPUTS];
    for (int k = 0; k < ps->n_inputs; k++)
        in[k] = &sl->tf[ps->in_idx[k]];
    as_exec_unit(&as_run_stage_of(r, model, s)->ex, mr->m->name, layer, in, u);
}
