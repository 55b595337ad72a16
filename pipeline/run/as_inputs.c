/* as_inputs.c: the input tensors of a run: described once before the plan, opened per model on
 * each rank while its units run. */
#include <stdlib.h>
#include <string.h>

#include "as_run_internal.h"
#include "as_synth.h"
#include "as_util.h"

static int probe_one(const struct as_config *cfg, const struct as_model_cfg *m, const char *name,
                     struct as_plan_input *in, struct as_error *err)
{
    as_strlcpy(in->name, name, sizeof in->name);
    if (as_config_tensor(cfg, m, name, in->path, sizeof in->path, in->key, sizeof in->key, &in->ops, err))
        return -1;
    struct as_tensor_file tf;
    if (as_tensor_file_open(&tf, in->ops, in->path, in->key[0] ? in->key : NULL, err))
        return as_error_prefix(err, "model '%s': tensor '%s': ", m->name, name);
    in->info = *as_tensor_file_info(&tf);
    in->ops = tf.ops;
    as_tensor_file_close(&tf);
    if (m->synthetic && in->ops == &as_reader_synth) {
        snprintf(in->digest, sizeof in->digest, "%016llx", (unsigned long long)as_synth_key(&m->synth, 0, 0));
        return 0;
    }
    if (as_file_digest(in->path, cfg->full_digest, in->digest, &in->size, &in->mtime, err))
        return as_error_prefix(err, "model '%s': tensor '%s': ", m->name, name);
    return 0;
}

int as_inputs_probe(const struct as_config *cfg, struct as_plan_inputs **inputs, struct as_error *err)
{
    const char *names[AS_MAX_TENSORS + 1];
    int n = as_plan_input_names(cfg, names, AS_MAX_TENSORS + 1);
    *inputs = as_xcalloc(cfg->n_models ? (size_t)cfg->n_models : 1, sizeof **inputs);
    for (int i = 0; i < cfg->n_models; i++) {
        const struct as_model_cfg *m = &cfg->models[i];
        if (n > AS_MAX_TENSORS)
            return as_error_set(err, AS_ERR_CONFIG, "model '%s': more than %d input tensors", m->name,
                                AS_MAX_TENSORS);
        for (int k = 0; k < n; k++)
            if (probe_one(cfg, m, names[k], &(*inputs)[i].in[k], err))
                return -1; /* the message names the model and the tensor */
        (*inputs)[i].n = n;
    }
    return 0;
}

void as_inputs_close(struct as_run_open *o)
{
    for (int k = 0; k < AS_MAX_TENSORS; k++) {
        o->bytes_closed += o->tf[k].bytes_read;
        o->tf[k].bytes_read = 0;
        as_tensor_file_close(&o->tf[k]);
    }
    memset(o->tf, 0, sizeof o->tf);
    o->model = -1;
}

uint64_t as_inputs_bytes(const struct as_run_open *o)
{
    uint64_t b = o->bytes_closed;
    for (int k = 0; k < AS_MAX_TENSORS; k++)
        b += o->tf[k].bytes_read;
    return b;
}

int as_inputs_open(struct as_run *r, int model, struct as_error *err)
{
    struct as_run_open *o = &r->open;
    if (o->model == model)
        return 0;
    as_inputs_close(o);
    const struct as_plan_model *mr = &r->plan.models[model];
    for (int k = 0; k < mr->in->n; k++) {
        const struct as_plan_input *in = &mr->in->in[k];
        if (as_tensor_file_open(&o->tf[k], in->ops, in->path, in->key[0] ? in->key : NULL, err))
            return as_error_prefix(err, "model '%s': tensor '%s': ", mr->m->name, in->name);
        /* the file may have changed since the plan was made */
        const struct as_tensor_info *ti = as_tensor_file_info(&o->tf[k]);
        if (ti->ndim != in->info.ndim || memcmp(ti->shape, in->info.shape, sizeof ti->shape) ||
            ti->dtype != in->info.dtype)
            return as_error_set(err, AS_ERR_INPUT, "model '%s': tensor '%s' changed while the run was starting",
                                mr->m->name, in->name);
    }
    o->model = model;
    return 0;
}

void as_inputs_unit(struct as_unit *u, struct as_run *r, int model, int s, int64_t layer)
{
    const struct as_plan_model *mr = &r->plan.models[model];
    const struct as_plan_stage *ps = &mr->st[s];
    memset(u, 0, sizeof *u);
    u->scratch = &as_run_stage_of(r, model, s)->scratch;
    u->model = mr->m->name;
    u->layer = layer;
    u->shape = &ps->shape;
    for (int k = 0; k < ps->n_inputs; k++)
        u->in[k] = &r->open.tf[ps->in_idx[k]];
}
