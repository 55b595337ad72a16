/* as_reuse.c: `run --resume` reuses finished (model, stage)s from the results file already at
 * OUTPUT, complete or not (a run with on_error: skip leaves one with complete = 0): a stage group
 * whose `key` attribute equals the plan's key of a (model, stage) holds exactly what this run
 * would compute, so its rows, model block, attributes and summary lines are taken as they are,
 * whatever model name or position it had. Rank 0 reads the file; every rank gets the copies. */
#include <stdlib.h>
#include <string.h>

#include "as_mpi.h"
#include "as_results_read.h"
#include "as_run_internal.h"
#include "as_util.h"

void as_reuse_key_hex(const uint64_t key[2], char hex[33])
{
    snprintf(hex, 33, "%016llx%016llx", (unsigned long long)key[0], (unsigned long long)key[1]);
}

/* The stage groups of the old file, by key. */
struct found {
    char key[33];
    char *model;                   /* owned */
    const char *stage;             /* the config's stage name */
};

static int by_key(const void *a, const void *b)
{
    return strcmp(((const struct found *)a)->key, ((const struct found *)b)->key);
}

/* Rank 0: index every (model, stage) group of the old file that has a key. */
static struct found *index_file(struct as_run *r, const struct as_results_file *f, size_t *n_out)
{
    struct as_results_list models = AS_RESULTS_LIST_INIT;
    struct as_error e = { 0 };
    struct found *v = NULL;
    size_t n = 0;
    if (as_results_models(f, &models, &e))
        return NULL;
    for (int i = 0; i < models.n; i++)
        for (int s = 0; s < r->cfg->n_stages; s++) {
            const char *sname = r->cfg->stages[s].ops->name;
            struct as_results_obj at = { models.v[i], sname, NULL };
            char *key = NULL;
            if (as_results_attr_str(f, &at, AS_RESULTS_ATTR_KEY, &key, &e) == 1 && strlen(key) == 32) {
                v = as_xrealloc(v, n + 1, sizeof *v);
                as_strlcpy(v[n].key, key, sizeof v[n].key);
                v[n].model = as_xstrdup(models.v[i]);
                v[n].stage = sname;
                n++;
            }
            free(key);
            as_error_clear(&e);
        }
    as_results_list_release(&models);
    qsort(v, n, sizeof *v, by_key);
    *n_out = n;
    return v;
}

/* Rank 0: load the copies into the (model, stage)s they fit; returns how many. */
static int load_all(struct as_run *r, const char *path)
{
    struct as_results_file *f = NULL;
    struct as_error e = { 0 };
    if (as_results_open(path, &f, &e))
        return 0; /* nothing there (or not a results file): nothing to reuse */
    size_t n_found = 0;
    struct found *idx = index_file(r, f, &n_found);
    int n = 0;
    for (int i = 0; i < r->plan.n_models; i++) {
        const struct as_plan_model *mr = &r->plan.models[i];
        for (int s = 0; s < r->cfg->n_stages && !mr->failed; s++) {
            const struct as_plan_stage *ps = &mr->st[s];
            if (!ps->active)
                continue;
            struct found want;
            as_reuse_key_hex(mr->key[s], want.key);
            const struct found *hit = n_found ? bsearch(&want, idx, n_found, sizeof *idx, by_key) : NULL;
            if (!hit || strcmp(hit->stage, r->cfg->stages[s].ops->name))
                continue;
            struct as_run_stage *rs = as_run_stage_of(r, i, s);
            rs->copy = as_xcalloc(1, sizeof *rs->copy);
            if (as_results_load_stage(f, hit->model, hit->stage, ps->fields, ps->n_fields, ps->shape.n_layers,
                                      rs->rows, rs->model_block, rs->copy, &e) != 1) {
                as_results_stage_copy_release(rs->copy); /* does not fit: computed again */
                free(rs->copy);
                rs->copy = NULL;
                as_error_clear(&e);
                continue;
            }
            n++;
        }
    }
    for (size_t k = 0; k < n_found; k++)
        free(idx[k].model);
    free(idx);
    as_results_close(f);
    return n;
}

/* ---- from rank 0 to every rank: (model, stage, rows, block, attributes, log) per copy */

static void pack(struct as_run *r, struct as_strbuf *b)
{
    for (int i = 0; i < r->plan.n_models; i++)
        for (int s = 0; s < r->cfg->n_stages; s++) {
            struct as_run_stage *rs = as_run_stage_of(r, i, s);
            if (!rs->copy)
                continue;
            const struct as_plan_stage *ps = &r->plan.models[i].st[s];
            int32_t hdr[3] = { i, s, rs->copy->n_attrs };
            as_pack(b, hdr, sizeof hdr);
            as_pack(b, rs->rows, (size_t)ps->shape.n_layers * ps->row_size);
            as_pack(b, rs->model_block, ps->model_size);
            for (int k = 0; k < rs->copy->n_attrs; k++) {
                const struct as_attr *a = &rs->copy->attrs[k];
                int32_t kind = (int32_t)a->kind;
                as_pack(b, &kind, 4);
                as_pack_str(b, a->name);
                as_pack(b, &a->f64, 8);
                as_pack(b, &a->i64, 8);
                as_pack_str(b, a->str);
                as_pack(b, &a->n, 8);
                if (a->kind == AS_ATTR_F64VEC)
                    as_pack(b, a->vec, (size_t)a->n * sizeof *a->vec);
            }
            as_pack_str(b, rs->copy->log ? rs->copy->log : "");
        }
}

static void unpack(struct as_run *r, struct as_cursor *c)
{
    while (c->p < c->end) {
        int32_t hdr[3];
        as_unpack(c, hdr, sizeof hdr);
        AS_ASSERT(hdr[0] >= 0 && hdr[0] < r->plan.n_models && hdr[1] >= 0 && hdr[1] < r->cfg->n_stages &&
                  hdr[2] >= 0 && hdr[2] <= AS_STAGE_MAX_ATTRS);
        const struct as_plan_stage *ps = &r->plan.models[hdr[0]].st[hdr[1]];
        struct as_run_stage *rs = as_run_stage_of(r, hdr[0], hdr[1]);
        rs->copy = as_xcalloc(1, sizeof *rs->copy);
        as_unpack(c, rs->rows, (size_t)ps->shape.n_layers * ps->row_size);
        as_unpack(c, rs->model_block, ps->model_size);
        struct as_results_stage_copy *cp = rs->copy;
        cp->n_attrs = hdr[2];
        for (int k = 0; k < cp->n_attrs; k++) {
            struct as_attr *a = &cp->attrs[k];
            int32_t kind;
            as_unpack(c, &kind, 4);
            a->kind = (enum as_attr_kind)kind;
            as_unpack_str(c, cp->names[k], sizeof cp->names[k]);
            a->name = cp->names[k];
            as_unpack(c, &a->f64, 8);
            as_unpack(c, &a->i64, 8);
            as_unpack_str(c, a->str, sizeof a->str);
            as_unpack(c, &a->n, 8);
            if (a->kind == AS_ATTR_F64VEC) {
                cp->vecs[k] = as_xcalloc((size_t)a->n, sizeof *cp->vecs[k]);
                as_unpack(c, cp->vecs[k], (size_t)a->n * sizeof *cp->vecs[k]);
                a->vec = cp->vecs[k];
            }
        }
        cp->log = as_unpack_strdup(c);
    }
}

int as_reuse_all(struct as_run *r)
{
    struct as_strbuf b = AS_STRBUF_INIT;
    if (r->rank == 0) {
        load_all(r, r->cfg->output);
        pack(r, &b);
    }
    uint64_t len = b.len;
    unsigned char *buf = (unsigned char *)b.buf; /* rank 0's; the others get theirs */
    as_mpi_bcast_bytes_all(r->comm, 0, &buf, &len);
    if (r->rank != 0) {
        struct as_cursor c = { buf, buf + len };
        unpack(r, &c);
        free(buf);
    }
    as_strbuf_release(&b);
    int n = 0;
    for (int i = 0; i < r->plan.n_models; i++)
        for (int s = 0; s < r->cfg->n_stages; s++)
            if (as_run_stage_of(r, i, s)->copy) {
                as_plan_mark_reused(&r->plan, i, s);
                n++;
            }
    return n;
}
