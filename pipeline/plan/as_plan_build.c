/* as_plan_build.c: from (config, input descriptions) to stages, schemas and units; journal
 * replay and re-assignment. Pure: no MPI, no file I/O. */
#include <stdlib.h>
#include <string.h>

#include "as_dtype.h"
#include "as_exec.h"
#include "as_plan.h"
#include "as_synth.h"
#include "as_version.h"

int as_plan_input_names(const struct as_config *cfg, const char **names, int max)
{
    int n = 0;
    for (int s = 0; s < cfg->n_stages; s++) {
        const char *sn[AS_STAGE_MAX_INPUTS] = { 0 };
        int k_n = cfg->stages[s].ops->inputs(cfg->stages[s].cfg, sn);
        for (int k = 0; k < k_n; k++) {
            int seen = 0;
            for (int j = 0; j < n && !seen; j++)
                seen = !strcmp(names[j], sn[k]);
            if (!seen && n < max)
                names[n++] = sn[k];
        }
    }
    return n;
}

static void stage_key(const struct as_plan *p, int model, int stage, uint64_t key[2]);

static int input_index(const struct as_plan_inputs *in, const char *name)
{
    for (int i = 0; i < in->n; i++)
        if (!strcmp(in->in[i].name, name))
            return i;
    return -1;
}

void as_plan_release(struct as_plan *p)
{
    for (int k = 0; p->part_done && p->cfg && k < p->n_models * p->cfg->n_stages; k++)
        free(p->part_done[k]);
    free(p->part_done);
    free(p->split);
    free(p->from_parts);
    free(p->tasks);
    free(p->task_owner);
    free(p->unit_task);
    free(p->models);
    free(p->units);
    free(p->owner);
    free(p->load);
    free(p->stage_done);
    free(p->run_owner);
    memset(p, 0, sizeof *p);
}

/* Shapes and schemas of one model's stages. */
static int plan_model(struct as_plan_model *mr, const struct as_config *cfg, struct as_error *err)
{
    if (mr->in->failed)
        return as_error_set(err, AS_ERR_INPUT, "%s", mr->in->error);
    for (int s = 0; s < cfg->n_stages; s++) {
        const struct as_stage_ops *ops = cfg->stages[s].ops;
        struct as_plan_stage *sr = &mr->st[s];
        const char *names[AS_STAGE_MAX_INPUTS] = { 0 };
        const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS] = { 0 };
        sr->n_inputs = ops->inputs(cfg->stages[s].cfg, names);
        for (int k = 0; k < sr->n_inputs; k++) {
            int idx = input_index(mr->in, names[k]);
            if (idx < 0)
                return as_error_set(err, AS_ERR_INTERNAL, "model '%s': input '%s' of stage %s was not described",
                                    mr->m->name, names[k], ops->name);
            sr->in_idx[k] = idx;
            info[k] = &mr->in->in[idx].info;
        }
        /* the executor's shape step, as every stage test and the run use it */
        struct as_exec ex;
        int rc = as_exec_shape(&ex, ops, cfg->stages[s].cfg, info, mr->n_heads ? mr->n_heads : mr->m->heads, err);
        if (!rc) {
            sr->shape = ex.shape;
            sr->n_fields = ex.schema.n;
            memcpy(sr->fields, ex.schema.fields, sizeof sr->fields);
            sr->row_size = ex.schema.row_size;
            sr->model_size = ex.schema.model_size;
        }
        as_exec_release(&ex);
        if (rc)
            return as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, ops->name);
        sr->active = 1;
        if (sr->shape.n_layers > mr->n_layers)
            mr->n_layers = sr->shape.n_layers;
        if (!mr->n_heads) {
            mr->n_heads = sr->shape.n_heads;
            mr->seq_len = sr->shape.seq_len;
        }
    }
    return 0;
}

int as_plan_build(struct as_plan *p, const struct as_config *cfg, const struct as_plan_inputs *inputs, int nranks,
                  struct as_error *err)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    p->nranks = nranks;
    p->models = as_xcalloc((size_t)cfg->n_models, sizeof *p->models);
    p->n_models = cfg->n_models;
    size_t n_units = 0;
    for (int i = 0; i < cfg->n_models; i++) {
        struct as_plan_model *mr = &p->models[i];
        mr->m = &cfg->models[i];
        mr->in = &inputs[i];
        if (plan_model(mr, cfg, err)) {
            if (cfg->on_error != AS_ON_ERROR_SKIP)
                return -1;
            /* recorded; the model has no units and no results */
            as_plan_fail_model(p, i, err->msg);
            as_error_clear(err);
            mr->n_layers = 0;
        }
        for (int s = 0; s < cfg->n_stages && !mr->failed; s++)
            stage_key(p, i, s, mr->key[s]);
        mr->first_unit = n_units;
        n_units += (size_t)mr->n_layers;
    }
    p->units = as_xcalloc(n_units, sizeof *p->units);
    p->owner = as_xcalloc(n_units, sizeof *p->owner);
    p->stage_done = as_xcalloc(n_units * (size_t)cfg->n_stages, 1);
    p->run_owner = as_xcalloc(n_units, sizeof *p->run_owner);
    p->load = as_xcalloc((size_t)nranks, sizeof *p->load);
    p->n_units = n_units;
    for (int i = 0; i < p->n_models; i++) {
        const struct as_plan_model *mr = &p->models[i];
        for (int64_t l = 0; l < mr->n_layers; l++) {
            struct as_unit_desc *u = &p->units[mr->first_unit + (size_t)l];
            u->model = i;
            u->layer = l;
            u->stage = -1;
            for (int s = 0; s < cfg->n_stages; s++)
                if (mr->st[s].active && l < mr->st[s].shape.n_layers) {
                    u->cost += mr->st[s].shape.unit_cost;
                    u->bytes += mr->st[s].shape.unit_bytes;
                } else {
                    p->stage_done[(mr->first_unit + (size_t)l) * (size_t)cfg->n_stages + (size_t)s] = 1;
                }
        }
    }
    /* units finer than a layer: which parts of the last phase are finished, per splitting stage */
    p->split = as_xcalloc(n_units * (size_t)cfg->n_stages + 1, 1);
    p->from_parts = as_xcalloc(n_units * (size_t)cfg->n_stages + 1, 1);
    p->part_done = as_xcalloc((size_t)p->n_models * (size_t)cfg->n_stages + 1, sizeof *p->part_done);
    for (int i = 0; i < p->n_models; i++)
        for (int s = 0; s < cfg->n_stages; s++) {
            const struct as_plan_stage *ps = &p->models[i].st[s];
            if (ps->active && !p->models[i].failed && ps->shape.n_phases > 0)
                p->part_done[(size_t)i * (size_t)cfg->n_stages + (size_t)s] =
                    as_xcalloc((size_t)ps->shape.n_layers * (size_t)ps->shape.parts[ps->shape.n_phases - 1] + 1, 1);
        }
    as_plan_reassign(p);
    /* the first attempt's owner of each unit: its whole-layer task, else its first piece */
    for (size_t u = 0; u < n_units; u++)
        p->owner[u] = p->run_owner[u];
    for (size_t k = p->n_tasks; k-- > 0;) {
        const struct as_unit_desc *t = &p->tasks[k];
        size_t u = p->models[t->model].first_unit + (size_t)t->layer;
        if (t->stage >= 0 && p->run_owner[u] < 0)
            p->owner[u] = p->task_owner[k];
    }
    return 0;
}

/* Whether journal records of (key, layer) belong to stage s of model i. */
static int record_matches(const struct as_plan *p, int i, int s, const uint64_t key[2], int64_t layer)
{
    const struct as_plan_model *mr = &p->models[i];
    const struct as_plan_stage *ps = &mr->st[s];
    return !mr->failed && ps->active && layer >= 0 && layer < ps->shape.n_layers && mr->key[s][0] == key[0] &&
           mr->key[s][1] == key[1];
}

int as_plan_mark_done(struct as_plan *p, const uint64_t key[2], int64_t layer, uint64_t row_len,
                      void (*found)(int model, int stage, void *arg), void *arg)
{
    int n = 0;
    for (int i = 0; i < p->n_models; i++)
        for (int s = 0; s < p->cfg->n_stages; s++) {
            if (!record_matches(p, i, s, key, layer) || row_len != p->models[i].st[s].row_size)
                continue;
            p->stage_done[(p->models[i].first_unit + (size_t)layer) * (size_t)p->cfg->n_stages + (size_t)s] = 1;
            if (found)
                found(i, s, arg);
            n++;
        }
    return n;
}

int as_plan_mark_parts(struct as_plan *p, const uint64_t key[2], int64_t layer, int64_t p0, int64_t p1,
                       uint64_t len, void (*found)(int model, int stage, void *arg), void *arg)
{
    int n = 0;
    for (int i = 0; i < p->n_models; i++)
        for (int s = 0; s < p->cfg->n_stages; s++) {
            unsigned char *done = as_plan_parts_done(p, i, s);
            if (!done || !record_matches(p, i, s, key, layer))
                continue;
            const struct as_stage_shape *sh = &p->models[i].st[s].shape;
            const struct as_stage_ops *ops = p->cfg->stages[s].ops;
            const void *scfg = p->cfg->stages[s].cfg;
            int last = sh->n_phases - 1;
            int64_t P = sh->parts[last];
            if (p0 < 0 || p0 >= p1 || p1 > P ||
                len != ops->part_offset(scfg, sh, last, p1) - ops->part_offset(scfg, sh, last, p0))
                continue;
            memset(done + layer * P + p0, 1, (size_t)(p1 - p0));
            int all = 1;
            for (int64_t k = 0; k < P && all; k++)
                all = done[layer * P + k];
            if (all) {
                size_t at = (p->models[i].first_unit + (size_t)layer) * (size_t)p->cfg->n_stages + (size_t)s;
                p->stage_done[at] = 1;
                p->from_parts[at] = 1;
            }
            if (found)
                found(i, s, arg);
            n++;
        }
    return n;
}

void as_plan_mark_reused(struct as_plan *p, int model, int stage)
{
    struct as_plan_model *mr = &p->models[model];
    mr->reused[stage] = 1;
    for (int64_t l = 0; l < mr->n_layers; l++)
        p->stage_done[(mr->first_unit + (size_t)l) * (size_t)p->cfg->n_stages + (size_t)stage] = 1;
}

void as_plan_fail_model(struct as_plan *p, int model, const char *error)
{
    struct as_plan_model *mr = &p->models[model];
    mr->failed = 1;
    as_strlcpy(mr->error, error, sizeof mr->error);
    for (int64_t l = 0; p->stage_done && l < mr->n_layers; l++)
        memset(p->stage_done + (mr->first_unit + (size_t)l) * (size_t)p->cfg->n_stages, 1, (size_t)p->cfg->n_stages);
}

void as_plan_key_text(const struct as_plan *p, int model, int stage, struct as_strbuf *sb)
{
    const struct as_plan_model *mr = &p->models[model];
    const struct as_plan_stage *ps = &mr->st[stage];
    as_strbuf_addf(sb, "%s\nstage %s ", AS_RESULTS_VERSION, p->cfg->stages[stage].ops->name);
    as_ynode_dump(p->cfg->stages[stage].node, sb);
    char spec[512] = "";
    if (mr->m->synthetic)
        as_synth_spec_format(&mr->m->synth, spec, sizeof spec);
    as_strbuf_addf(sb, "\nheads %lld synthetic %s\n", (long long)mr->m->heads, spec);
    for (int k = 0; k < ps->n_inputs; k++) {
        const struct as_plan_input *in = &mr->in->in[ps->in_idx[k]];
        char sh[128];
        as_strbuf_addf(sb, "input %s %s key %s %s %s size %lld mtime %lld digest %s\n", in->name, in->path, in->key,
                       as_dtype_traits[in->info.dtype].name, as_shape_str(&in->info, sh, sizeof sh),
                       (long long)in->size, (long long)in->mtime, in->digest);
    }
}

static uint64_t fnv_mix(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return as_mix64(h);
}

static void stage_key(const struct as_plan *p, int model, int stage, uint64_t key[2])
{
    struct as_strbuf sb = AS_STRBUF_INIT;
    as_plan_key_text(p, model, stage, &sb);
    key[0] = fnv_mix(sb.buf, sb.len, 0xcbf29ce484222325ull);
    key[1] = fnv_mix(sb.buf, sb.len, 0x84222325cbf29ce4ull);
    as_strbuf_release(&sb);
}

void as_plan_describe(const struct as_plan *p, struct as_strbuf *sb)
{
    for (int i = 0; i < p->n_models; i++) {
        const struct as_plan_model *mr = &p->models[i];
        for (int k = 0; k < mr->in->n; k++) {
            const struct as_plan_input *in = &mr->in->in[k];
            char sh[128];
            as_strbuf_addf(sb, "model %s input %s %s%s%s %s %s size %lld mtime %lld digest %s\n", mr->m->name,
                           in->name, in->path, in->key[0] ? " key " : "", in->key, as_dtype_traits[in->info.dtype].name,
                           as_shape_str(&in->info, sh, sizeof sh), (long long)in->size, (long long)in->mtime,
                           in->digest);
        }
    }
    for (int s = 0; s < p->cfg->n_stages; s++) {
        as_strbuf_addf(sb, "stage %s ", p->cfg->stages[s].ops->name);
        as_ynode_dump(p->cfg->stages[s].node, sb);
        as_strbuf_addf(sb, "\n");
    }
}
