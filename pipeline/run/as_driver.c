/* as_driver.c: the MPI pipeline. Units are (model, layer); each rank runs every configured stage on
 * the units the plan gives it. Determinism: each unit's rows depend only on its inputs; prepass
 * sums are integers; rows are combined with a bitwise OR of disjoint buffers; every reduction
 * over layers happens in layer order in finalize(). So results do not depend on the rank count. */
#define _GNU_SOURCE
#include "as_driver.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "as_journal.h"
#include "as_plan.h"
#include "as_plot.h"
#include "as_prof.h"
#include "as_results.h"
#include "as_util.h"
#include "as_version.h"

volatile int as_stop_requested;

struct stage_run {
    int active;
    struct as_stage_shape shape;
    struct as_field fields[AS_STAGE_MAX_FIELDS];
    int n_fields;
    size_t row_size, model_size;
    int in_idx[AS_STAGE_MAX_INPUTS];
    int n_inputs;
    void *state;
    void *scratch;                 /* the stage's per-rank slot (as_unit.scratch) */
    unsigned char *rows;           /* (n_layers, row_size) */
    unsigned char *model_block;
    struct as_stage_out out;
    struct as_strbuf log;
};

struct model_run {
    const struct as_model_cfg *m;
    int n_in;
    char in_name[AS_MAX_TENSORS][64];
    char in_path[AS_MAX_TENSORS][AS_PATH_MAX];
    char in_key[AS_MAX_TENSORS][256];
    const struct as_reader_ops *in_ops[AS_MAX_TENSORS];
    struct as_tensor_info in_info[AS_MAX_TENSORS];
    char in_digest[AS_MAX_TENSORS][17];
    int64_t in_size[AS_MAX_TENSORS], in_mtime[AS_MAX_TENSORS];
    int64_t n_layers, n_heads, seq_len;
    struct stage_run st[AS_MAX_STAGES];
    int *row_owner;                /* (n_layers,) */
    size_t first_unit;
    struct as_attr attrs[4 * AS_MAX_TENSORS + 6];
    char attr_names[4 * AS_MAX_TENSORS + 6][96]; /* storage of the input:* attribute names */
    int n_attrs;
};

struct plan {
    struct as_config *cfg;
    struct model_run *models;
    int n_models;
    struct as_unit_desc *units;
    size_t n_units;
    int *owner;                    /* (n_units,) prepass work and row writing */
    double *load;
    int nranks;
    unsigned char *done;           /* (n_units,) finished in an earlier attempt (journal) */
    int *run_owner;                /* (n_units,) rank that computes a unit now, -1 when done */
    size_t n_todo;
    struct as_journal journal;
};

/* ---- plan */

static int add_input(struct model_run *mr, const struct as_config *cfg, const char *name, struct as_error *err)
{
    for (int i = 0; i < mr->n_in; i++)
        if (!strcmp(mr->in_name[i], name))
            return i;
    if (mr->n_in == AS_MAX_TENSORS)
        return as_error_set(err, AS_ERR_CONFIG, "model '%s': more than %d input tensors", mr->m->name,
                            AS_MAX_TENSORS);
    int i = mr->n_in;
    as_strlcpy(mr->in_name[i], name, sizeof mr->in_name[i]);
    if (as_config_tensor(cfg, mr->m, name, mr->in_path[i], sizeof mr->in_path[i], mr->in_key[i],
                         sizeof mr->in_key[i], &mr->in_ops[i], err))
        return -1;
    struct as_tensor_file tf;
    if (as_tensor_file_open(&tf, mr->in_ops[i], mr->in_path[i], mr->in_key[i][0] ? mr->in_key[i] : NULL, err))
        return as_error_prefix(err, "model '%s': tensor '%s': ", mr->m->name, name);
    mr->in_info[i] = *as_tensor_file_info(&tf);
    mr->in_ops[i] = tf.ops;
    as_tensor_file_close(&tf);
    if (mr->m->synthetic && mr->in_ops[i] == &as_reader_synth) {
        snprintf(mr->in_digest[i], sizeof mr->in_digest[i], "%016llx",
                 (unsigned long long)as_synth_key(&mr->m->synth, 0, 0));
    } else if (as_file_digest(mr->in_path[i], cfg->full_digest, mr->in_digest[i], &mr->in_size[i], &mr->in_mtime[i],
                              err)) {
        return as_error_prefix(err, "model '%s': tensor '%s': ", mr->m->name, name);
    }
    mr->n_in++;
    return i;
}

static void plan_release(struct plan *p)
{
    for (int i = 0; i < p->n_models; i++) {
        struct model_run *mr = &p->models[i];
        for (int s = 0; s < p->cfg->n_stages; s++) {
            struct stage_run *sr = &mr->st[s];
            if (sr->scratch && p->cfg->stages[s].ops->scratch_release)
                p->cfg->stages[s].ops->scratch_release(p->cfg->stages[s].cfg, sr->scratch);
            if (sr->state && p->cfg->stages[s].ops->state_release)
                p->cfg->stages[s].ops->state_release(p->cfg->stages[s].cfg, sr->state);
            free(sr->state);
            free(sr->rows);
            free(sr->model_block);
            as_strbuf_release(&sr->log);
        }
        free(mr->row_owner);
    }
    free(p->models);
    free(p->units);
    free(p->owner);
    free(p->load);
    free(p->done);
    free(p->run_owner);
    as_journal_close(&p->journal);
    memset(p, 0, sizeof *p);
}

static int plan_build(struct plan *p, struct as_config *cfg, int nranks, struct as_error *err)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    p->nranks = nranks;
    p->models = calloc((size_t)cfg->n_models, sizeof *p->models);
    if (!p->models)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for the plan");
    p->n_models = cfg->n_models;
    size_t n_units = 0;
    for (int i = 0; i < cfg->n_models; i++) {
        struct model_run *mr = &p->models[i];
        mr->m = &cfg->models[i];
        for (int s = 0; s < cfg->n_stages; s++) {
            const struct as_stage_ops *ops = cfg->stages[s].ops;
            struct stage_run *sr = &mr->st[s];
            const char *names[AS_STAGE_MAX_INPUTS] = { 0 };
            const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS] = { 0 };
            sr->n_inputs = ops->inputs(cfg->stages[s].cfg, names);
            for (int k = 0; k < sr->n_inputs; k++) {
                int idx = add_input(mr, cfg, names[k], err);
                if (idx < 0)
                    return -1; /* the message names the model and the tensor */
                sr->in_idx[k] = idx;
                info[k] = &mr->in_info[idx];
            }
            sr->shape.n_heads = mr->n_heads ? mr->n_heads : mr->m->heads; /* the hint */
            if (ops->shape(cfg->stages[s].cfg, info, &sr->shape, err))
                return as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, ops->name);
            sr->n_fields = ops->schema(cfg->stages[s].cfg, &sr->shape, sr->fields);
            sr->row_size = as_schema_row_size(sr->fields, sr->n_fields);
            sr->model_size = as_schema_model_size(sr->fields, sr->n_fields);
            sr->active = 1;
            if (sr->shape.n_layers > mr->n_layers)
                mr->n_layers = sr->shape.n_layers;
            if (!mr->n_heads) {
                mr->n_heads = sr->shape.n_heads;
                mr->seq_len = sr->shape.seq_len;
            }
        }
        mr->first_unit = n_units;
        n_units += (size_t)mr->n_layers;
    }
    p->units = calloc(n_units ? n_units : 1, sizeof *p->units);
    p->owner = calloc(n_units ? n_units : 1, sizeof *p->owner);
    p->done = calloc(n_units ? n_units : 1, 1);
    p->run_owner = calloc(n_units ? n_units : 1, sizeof *p->run_owner);
    p->load = calloc((size_t)nranks, sizeof *p->load);
    if (!p->units || !p->owner || !p->load || !p->done || !p->run_owner)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for %zu units", n_units);
    p->n_units = n_units;
    for (int i = 0; i < p->n_models; i++) {
        struct model_run *mr = &p->models[i];
        for (int64_t l = 0; l < mr->n_layers; l++) {
            struct as_unit_desc *u = &p->units[mr->first_unit + (size_t)l];
            u->model = i;
            u->layer = l;
            for (int s = 0; s < cfg->n_stages; s++)
                if (mr->st[s].active && l < mr->st[s].shape.n_layers) {
                    u->cost += mr->st[s].shape.unit_cost;
                    u->bytes += mr->st[s].shape.unit_bytes;
                }
        }
    }
    as_plan_assign(p->units, p->n_units, nranks, p->owner, p->load);
    memcpy(p->run_owner, p->owner, n_units * sizeof *p->owner);
    p->n_todo = n_units;
    p->journal.fd = -1;
    for (int i = 0; i < p->n_models; i++) {
        struct model_run *mr = &p->models[i];
        mr->row_owner = as_xcalloc((size_t)mr->n_layers, sizeof *mr->row_owner);
        for (int64_t l = 0; l < mr->n_layers; l++)
            mr->row_owner[l] = p->owner[mr->first_unit + (size_t)l];
    }
    return 0;
}

/* The results-relevant content of a run, one line per item: a resume must see the same. */
static void plan_describe(const struct plan *p, struct as_strbuf *sb)
{
    for (int i = 0; i < p->n_models; i++) {
        const struct model_run *mr = &p->models[i];
        for (int k = 0; k < mr->n_in; k++) {
            char sh[128];
            as_strbuf_addf(sb, "model %s input %s %s%s%s %s %s size %lld mtime %lld digest %s\n", mr->m->name,
                           mr->in_name[k], mr->in_path[k], mr->in_key[k][0] ? " key " : "", mr->in_key[k],
                           as_dtype_traits[mr->in_info[k].dtype].name, as_shape_str(&mr->in_info[k], sh, sizeof sh),
                           (long long)mr->in_size[k], (long long)mr->in_mtime[k], mr->in_digest[k]);
        }
    }
    for (int s = 0; s < p->cfg->n_stages; s++) {
        as_strbuf_addf(sb, "stage %s ", p->cfg->stages[s].ops->name);
        as_ynode_dump(p->cfg->stages[s].node, sb);
        as_strbuf_addf(sb, "\n");
    }
}

/* Bytes of the journal payload of one unit: the rows of every stage that covers its layer. */
static size_t unit_payload_size(const struct plan *p, const struct as_unit_desc *ud)
{
    size_t n = 0;
    const struct model_run *mr = &p->models[ud->model];
    for (int s = 0; s < p->cfg->n_stages; s++)
        if (mr->st[s].active && ud->layer < mr->st[s].shape.n_layers)
            n += mr->st[s].row_size;
    return n;
}

/* Apply the journal's unit records: rows in place, units marked done; then assign what is left. */
static void plan_apply_journal(struct plan *p)
{
    struct as_jrec rec;
    p->journal.pos = 0;
    while (as_journal_next(&p->journal, &rec)) {
        if (rec.kind != AS_JREC_UNIT || rec.model < 0 || rec.model >= p->n_models)
            continue;
        struct model_run *mr = &p->models[rec.model];
        if (rec.index < 0 || rec.index >= mr->n_layers)
            continue;
        size_t ui = mr->first_unit + (size_t)rec.index;
        if (rec.len != unit_payload_size(p, &p->units[ui]))
            continue;
        const unsigned char *src = rec.payload;
        for (int s = 0; s < p->cfg->n_stages; s++) {
            struct stage_run *sr = &mr->st[s];
            if (!sr->active || rec.index >= sr->shape.n_layers)
                continue;
            memcpy(sr->rows + (size_t)rec.index * sr->row_size, src, sr->row_size);
            src += sr->row_size;
        }
        p->done[ui] = 1;
    }
    struct as_unit_desc *todo = as_xcalloc(p->n_units, sizeof *todo);
    size_t *map = as_xcalloc(p->n_units, sizeof *map), n = 0;
    for (size_t u = 0; u < p->n_units; u++) {
        p->run_owner[u] = -1;
        if (!p->done[u]) {
            map[n] = u;
            todo[n++] = p->units[u];
        }
    }
    int *own = as_xcalloc(n, sizeof *own);
    as_plan_assign(todo, n, p->nranks, own, NULL);
    for (size_t k = 0; k < n; k++)
        p->run_owner[map[k]] = own[k];
    p->n_todo = n;
    free(own);
    free(map);
    free(todo);
}

/* The journaled sum of a prepass round, if the interrupted run got that far. */
static int journal_prepass(struct plan *p, int model, int stage, int round, uint64_t *acc, size_t n)
{
    struct as_jrec rec;
    p->journal.pos = 0;
    while (as_journal_next(&p->journal, &rec))
        if (rec.kind == AS_JREC_PREPASS && rec.model == model && rec.stage == stage && rec.index == round)
            return as_journal_prepass_read(&rec, acc, n) == 0;
    return 0;
}

/* ---- validate */

static void fmt_bytes(char *buf, size_t n, double b)
{
    const char *u[] = { "B", "KB", "MB", "GB", "TB" };
    int k = 0;
    while (b >= 1000 && k < 4) {
        b /= 1000;
        k++;
    }
    snprintf(buf, n, k ? "%.1f %s" : "%.0f %s", b, u[k]);
}

int as_validate(struct as_config *cfg, int nranks, FILE *out, struct as_error *err)
{
    struct plan p;
    if (plan_build(&p, cfg, nranks, err)) {
        plan_release(&p);
        return -1;
    }
    fprintf(out, "config %s: %d model%s, stages:", cfg->path, cfg->n_models, cfg->n_models == 1 ? "" : "s");
    for (int s = 0; s < cfg->n_stages; s++)
        fprintf(out, " %s", cfg->stages[s].ops->name);
    fprintf(out, "\noutput %s\nlog    %s\n\n", cfg->output, cfg->log);
    double total_bytes = 0;
    for (int i = 0; i < p.n_models; i++) {
        struct model_run *mr = &p.models[i];
        double mb = 0;
        for (int64_t l = 0; l < mr->n_layers; l++)
            mb += (double)p.units[mr->first_unit + (size_t)l].bytes;
        total_bytes += mb;
        char b[32];
        fmt_bytes(b, sizeof b, mb);
        fprintf(out, "model %s: %lld layers x %lld heads, seq_len %lld, %lld units, %s to read, est. cost %.3g per unit\n",
                mr->m->name, (long long)mr->n_layers, (long long)mr->n_heads, (long long)mr->seq_len,
                (long long)mr->n_layers, b, mr->n_layers ? p.units[mr->first_unit].cost : 0.0);
        for (int k = 0; k < mr->n_in; k++) {
            const struct as_tensor_info *ti = &mr->in_info[k];
            fprintf(out, "  %-22s %-8s (", mr->in_name[k], as_dtype_traits[ti->dtype].name);
            for (int d = 0; d < ti->ndim; d++)
                fprintf(out, "%s%lld", d ? ", " : "", (long long)ti->shape[d]);
            fprintf(out, ")  %s%s%s%s\n", mr->in_path[k], mr->in_key[k][0] ? " [" : "", mr->in_key[k],
                    mr->in_key[k][0] ? "]" : "");
        }
    }
    if (cfg->skipped.len)
        fprintf(out, "\nskipped sweep combinations (missing: skip):\n%s", as_strbuf_str(&cfg->skipped));
    char tb[32];
    fmt_bytes(tb, sizeof tb, total_bytes);
    fprintf(out, "\n%zu units, %s to read; plan for %d rank%s (load balance %.3f):\n", p.n_units, tb, nranks,
            nranks == 1 ? "" : "s", as_plan_balance(p.load, nranks));
    for (int r = 0; r < nranks; r++) {
        double bytes = 0;
        size_t units = 0;
        for (size_t u = 0; u < p.n_units; u++)
            if (p.owner[u] == r) {
                bytes += (double)p.units[u].bytes;
                units++;
            }
        char b[32];
        fmt_bytes(b, sizeof b, bytes);
        fprintf(out, "  rank %d: %zu units, %s, cost %.3g\n", r, units, b, p.load[r]);
    }
    plan_release(&p);
    return 0;
}

/* ---- agreement: every rank learns whether any rank failed, and the lowest failing rank's message */

static int agree(MPI_Comm comm, struct as_error *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    int mine = err->status != AS_OK ? rank : INT32_MAX, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == INT32_MAX)
        return 0;
    int st = (int)err->status;
    MPI_Bcast(&st, 1, MPI_INT, first, comm);
    MPI_Bcast(err->msg, sizeof err->msg, MPI_CHAR, first, comm);
    err->status = (enum as_status)st;
    return -1;
}

/* ---- open inputs of one model on this rank */

struct open_inputs {
    int model;                     /* -1: none open */
    struct as_tensor_file tf[AS_MAX_TENSORS];
    uint64_t bytes_closed;         /* bytes read through handles already closed */
};

static void inputs_close(struct open_inputs *o)
{
    for (int k = 0; k < AS_MAX_TENSORS; k++) {
        o->bytes_closed += o->tf[k].bytes_read;
        o->tf[k].bytes_read = 0;
        as_tensor_file_close(&o->tf[k]);
    }
    memset(o->tf, 0, sizeof o->tf);
    o->model = -1;
}

static uint64_t inputs_bytes(const struct open_inputs *o)
{
    uint64_t b = o->bytes_closed;
    for (int k = 0; k < AS_MAX_TENSORS; k++)
        b += o->tf[k].bytes_read;
    return b;
}

static int inputs_open(struct open_inputs *o, const struct plan *p, int model, struct as_error *err)
{
    if (o->model == model)
        return 0;
    inputs_close(o);
    const struct model_run *mr = &p->models[model];
    for (int k = 0; k < mr->n_in; k++) {
        if (as_tensor_file_open(&o->tf[k], mr->in_ops[k], mr->in_path[k], mr->in_key[k][0] ? mr->in_key[k] : NULL,
                                err))
            return as_error_prefix(err, "model '%s': tensor '%s': ", mr->m->name, mr->in_name[k]);
        /* the file may have changed since the plan was made */
        const struct as_tensor_info *ti = as_tensor_file_info(&o->tf[k]);
        if (ti->ndim != mr->in_info[k].ndim || memcmp(ti->shape, mr->in_info[k].shape, sizeof ti->shape) ||
            ti->dtype != mr->in_info[k].dtype)
            return as_error_set(err, AS_ERR_INPUT, "model '%s': tensor '%s' changed while the run was starting",
                                mr->m->name, mr->in_name[k]);
    }
    o->model = model;
    return 0;
}

static void unit_for(struct as_unit *u, struct plan *p, struct open_inputs *o, int model, int s,
                     int64_t layer)
{
    struct model_run *mr = &p->models[model];
    struct stage_run *sr = &mr->st[s];
    memset(u, 0, sizeof *u);
    u->scratch = &sr->scratch;
    u->model = mr->m->name;
    u->layer = layer;
    u->shape = &sr->shape;
    for (int k = 0; k < sr->n_inputs; k++)
        u->in[k] = &o->tf[sr->in_idx[k]];
}

/* ---- prepass */

static int prepass_all(MPI_Comm comm, struct plan *p, int rank, struct open_inputs *o, double *busy,
                       struct as_error *err)
{
    struct as_config *cfg = p->cfg;
    for (int i = 0; i < p->n_models; i++) {
        struct model_run *mr = &p->models[i];
        for (int s = 0; s < cfg->n_stages; s++) {
            const struct as_stage_ops *ops = cfg->stages[s].ops;
            struct stage_run *sr = &mr->st[s];
            const void *scfg = cfg->stages[s].cfg;
            if (!sr->active)
                continue;
            size_t ss = ops->state_size ? ops->state_size(scfg, &sr->shape) : 0;
            sr->state = calloc(1, ss ? ss : 1);
            if (!sr->state)
                as_error_set(err, AS_ERR_NOMEM, "out of memory for the state of stage %s", ops->name);
            if (!err->status && ops->state_init) {
                const struct as_tensor_info *info[AS_STAGE_MAX_INPUTS];
                for (int k = 0; k < sr->n_inputs; k++)
                    info[k] = &mr->in_info[sr->in_idx[k]];
                if (ops->state_init(scfg, sr->state, &sr->shape, info, err))
                    as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, ops->name);
            }
            if (agree(comm, err))
                return -1;
            if (!ops->prepass)
                continue;
            int more = 1;
            for (int round = 0; more; round++) {
                size_t n = ops->prepass_count(scfg, sr->state, round);
                uint64_t *acc = as_xcalloc(n, sizeof *acc);
                if (journal_prepass(p, i, s, round, acc, n)) { /* replay: identical on every rank */
                    if (ops->prepass_reduce(scfg, sr->state, round, acc, &more, err))
                        as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, ops->name);
                    free(acc);
                    if (err->status)
                        return -1;
                    continue;
                }
                double t0 = as_now();
                for (int64_t l = 0; l < sr->shape.n_layers && !err->status; l++) {
                    if (mr->row_owner[l] != rank)
                        continue;
                    if (as_stop_requested) {
                        as_error_set(err, AS_ERR_STOPPED, "stopped by a signal during the prepass of model '%s'",
                                     mr->m->name);
                        break;
                    }
                    if (inputs_open(o, p, i, err))
                        break;
                    struct as_unit u;
                    unit_for(&u, p, o, i, s, l);
                    if (ops->prepass(scfg, sr->state, round, &u, acc, err))
                        as_error_prefix(err, "rank %d unit %s/L%lld: ", rank, mr->m->name, (long long)l);
                }
                *busy += as_now() - t0;
                /* every rank takes part in the sum, failed or not, then they agree */
                for (size_t off = 0; off < n; off += (size_t)1 << 24) {
                    size_t c = n - off < ((size_t)1 << 24) ? n - off : ((size_t)1 << 24);
                    MPI_Allreduce(MPI_IN_PLACE, acc + off, (int)c, MPI_UINT64_T, MPI_SUM, comm);
                }
                if (agree(comm, err)) { /* the sum counts only if every rank contributed in full */
                    free(acc);
                    return -1;
                }
                if (rank == 0)
                    as_journal_prepass(&p->journal, i, s, round, acc, n, err);
                if (agree(comm, err)) {
                    free(acc);
                    return -1;
                }
                if (ops->prepass_reduce(scfg, sr->state, round, acc, &more, err))
                    as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, ops->name);
                free(acc);
                if (err->status)
                    return -1; /* identical on every rank: no agreement needed */
            }
        }
    }
    return 0;
}

/* ---- units, with progress and stop messages to and from rank 0 */

enum { TAG_PROGRESS = 11, TAG_FINISH = 12, TAG_STOP = 13, TAG_DONE = 14 };

struct progress {
    size_t done, total;
    double t0, last_print;
    int tty, enabled;
};

static void progress_print(struct progress *pg, int final)
{
    if (!pg->enabled)
        return;
    double now = as_now(), el = now - pg->t0;
    if (!final && now - pg->last_print < (pg->tty ? 0.2 : 10.0))
        return;
    pg->last_print = now;
    double eta = pg->done ? el / (double)pg->done * (double)(pg->total - pg->done) : 0;
    fprintf(stderr, "%sattnstat: units %zu/%zu (%3.0f%%), elapsed %.1f s, eta %.1f s%s", pg->tty ? "\r" : "",
            pg->done, pg->total, pg->total ? 100.0 * (double)pg->done / (double)pg->total : 100.0, el, eta,
            pg->tty && !final ? "" : "\n");
    fflush(stderr);
}

static int run_unit(struct plan *p, struct open_inputs *o, size_t ui, int rank, struct as_error *err)
{
    const struct as_unit_desc *ud = &p->units[ui];
    struct model_run *mr = &p->models[ud->model];
    if (inputs_open(o, p, ud->model, err))
        return as_error_prefix(err, "rank %d unit %s/L%lld: ", rank, mr->m->name, (long long)ud->layer);
    for (int s = 0; s < p->cfg->n_stages; s++) {
        struct stage_run *sr = &mr->st[s];
        if (!sr->active || ud->layer >= sr->shape.n_layers)
            continue;
        struct as_unit u;
        unit_for(&u, p, o, ud->model, s, ud->layer);
        if (p->cfg->stages[s].ops->run(p->cfg->stages[s].cfg, sr->state, &u,
                                       sr->rows + (size_t)ud->layer * sr->row_size, err))
            return as_error_prefix(err, "rank %d unit %s/L%lld: ", rank, mr->m->name, (long long)ud->layer);
    }
    /* durable before it counts as done */
    size_t n = unit_payload_size(p, ud);
    unsigned char *payload = malloc(n ? n : 1), *dst = payload;
    if (!payload)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for a journal record");
    for (int s = 0; s < p->cfg->n_stages; s++) {
        struct stage_run *sr = &mr->st[s];
        if (!sr->active || ud->layer >= sr->shape.n_layers)
            continue;
        memcpy(dst, sr->rows + (size_t)ud->layer * sr->row_size, sr->row_size);
        dst += sr->row_size;
    }
    int rc = as_journal_append(&p->journal, AS_JREC_UNIT, ud->model, -1, ud->layer, payload, n, err);
    free(payload);
    return rc;
}

static int units_all(MPI_Comm comm, struct plan *p, int rank, int nranks, struct open_inputs *o,
                     struct progress *pg, double *busy, int64_t *my_units, struct as_error *err)
{
    int stop = 0;
    int *finished = as_xcalloc((size_t)nranks, sizeof *finished);
    int n_finished = 0;
    int64_t msg[3];
    /* rank 0: handle one message from another rank */
#define HANDLE(src)                                                                              \
    do {                                                                                         \
        if (st.MPI_TAG == TAG_PROGRESS) {                                                        \
            pg->done += (size_t)msg[0];                                                          \
            if (msg[1] && !stop) {                                                               \
                stop = 1;                                                                        \
                for (int r = 1; r < nranks; r++)                                                 \
                    if (!finished[r])                                                            \
                        MPI_Send(msg, 3, MPI_INT64_T, r, TAG_STOP, comm);                        \
            }                                                                                    \
        } else if (st.MPI_TAG == TAG_FINISH) {                                                   \
            finished[src] = 1;                                                                   \
            n_finished++;                                                                        \
        }                                                                                        \
    } while (0)

    for (size_t ui = 0; ui < p->n_units; ui++) {
        if (p->run_owner[ui] != rank)
            continue;
        int flag;
        MPI_Status st;
        if (rank == 0) {
            for (;;) {
                MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, &st);
                if (!flag)
                    break;
                MPI_Recv(msg, 3, MPI_INT64_T, st.MPI_SOURCE, st.MPI_TAG, comm, &st);
                HANDLE(st.MPI_SOURCE);
            }
        } else {
            MPI_Iprobe(0, TAG_STOP, comm, &flag, &st);
            if (flag)
                stop = 1;
        }
        if (stop || as_stop_requested)
            break;
        double t0 = as_now();
        int rc = run_unit(p, o, ui, rank, err);
        *busy += as_now() - t0;
        if (!rc)
            (*my_units)++;
        if (rank == 0) {
            pg->done += !rc;
            progress_print(pg, 0);
            if (rc && !stop) {
                stop = 1;
                for (int r = 1; r < nranks; r++)
                    if (!finished[r])
                        MPI_Send(msg, 3, MPI_INT64_T, r, TAG_STOP, comm);
            }
        } else {
            msg[0] = !rc;
            msg[1] = rc != 0;
            msg[2] = 0;
            MPI_Send(msg, 3, MPI_INT64_T, 0, TAG_PROGRESS, comm);
        }
        if (rc)
            break;
    }
    if (rank == 0) {
        while (n_finished < nranks - 1) {
            MPI_Status st;
            MPI_Recv(msg, 3, MPI_INT64_T, MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &st);
            HANDLE(st.MPI_SOURCE);
            progress_print(pg, 0);
        }
        for (int r = 1; r < nranks; r++)
            MPI_Send(msg, 3, MPI_INT64_T, r, TAG_DONE, comm);
        if (!err->status && !stop && !as_stop_requested)
            progress_print(pg, 1);
        else if (pg->enabled && pg->tty)
            fputc('\n', stderr);
    } else {
        msg[0] = msg[1] = msg[2] = 0;
        MPI_Send(msg, 3, MPI_INT64_T, 0, TAG_FINISH, comm);
        for (;;) { /* drain STOPs until DONE: nothing is left unmatched */
            MPI_Status st;
            MPI_Recv(msg, 3, MPI_INT64_T, 0, MPI_ANY_TAG, comm, &st);
            if (st.MPI_TAG == TAG_DONE)
                break;
        }
    }
#undef HANDLE
    free(finished);
    inputs_close(o);
    if (!err->status && as_stop_requested)
        as_error_set(err, AS_ERR_STOPPED, "stopped by a signal; run again with --resume to finish");
    int any_stop = as_stop_requested, all_stop;
    MPI_Allreduce(&any_stop, &all_stop, 1, MPI_INT, MPI_MAX, comm);
    if (all_stop && !err->status)
        as_error_set(err, AS_ERR_STOPPED, "stopped by a signal; run again with --resume to finish");
    return agree(comm, err);
}

/* ---- gather and write */

static int gather_rows(MPI_Comm comm, struct plan *p)
{
    for (int i = 0; i < p->n_models; i++)
        for (int s = 0; s < p->cfg->n_stages; s++) {
            struct stage_run *sr = &p->models[i].st[s];
            if (!sr->active)
                continue;
            size_t n = (size_t)sr->shape.n_layers * sr->row_size;
            for (size_t off = 0; off < n; off += (size_t)1 << 30) {
                size_t c = n - off < ((size_t)1 << 30) ? n - off : ((size_t)1 << 30);
                MPI_Allreduce(MPI_IN_PLACE, sr->rows + off, (int)c, MPI_BYTE, MPI_BOR, comm);
            }
        }
    return 0;
}

static int finalize_all(struct plan *p, struct as_error *err)
{
    for (int i = 0; i < p->n_models; i++) {
        struct model_run *mr = &p->models[i];
        for (int s = 0; s < p->cfg->n_stages; s++) {
            struct stage_run *sr = &mr->st[s];
            if (!sr->active)
                continue;
            sr->out.model_fields = sr->model_block;
            sr->out.log = &sr->log;
            if (p->cfg->stages[s].ops->finalize(p->cfg->stages[s].cfg, sr->state, mr->m->name, &sr->shape,
                                                sr->rows, &sr->out, err))
                return as_error_prefix(err, "model '%s' stage %s: ", mr->m->name, p->cfg->stages[s].ops->name);
        }
    }
    return 0;
}

static void model_attrs(struct model_run *mr, int p_full_digest)
{
    int a = 0;
    const struct as_model_cfg *m = mr->m;
    if (m->synthetic) {
        mr->attrs[a] = (struct as_attr){ .name = "source", .kind = AS_ATTR_STR };
        as_synth_spec_format(&m->synth, mr->attrs[a].str, sizeof mr->attrs[a].str);
        a++;
    } else {
        mr->attrs[a] = (struct as_attr){ .name = "source", .kind = AS_ATTR_STR };
        as_strlcpy(mr->attrs[a].str, m->dir, sizeof mr->attrs[a].str);
        a++;
    }
    if (m->model_id[0]) {
        mr->attrs[a] = (struct as_attr){ .name = "model_id", .kind = AS_ATTR_STR };
        as_strlcpy(mr->attrs[a++].str, m->model_id, sizeof mr->attrs[0].str);
        mr->attrs[a++] = (struct as_attr){ .name = "model_seq_len", .kind = AS_ATTR_I64, .i64 = m->seq_len_attr };
    }
    if (m->dataset[0]) {
        mr->attrs[a] = (struct as_attr){ .name = "dataset", .kind = AS_ATTR_STR };
        as_strlcpy(mr->attrs[a++].str, m->dataset, sizeof mr->attrs[0].str);
    }
    for (int k = 0; k < mr->n_in && a + 2 <= (int)(sizeof mr->attrs / sizeof mr->attrs[0]); k++) {
        char *nm = mr->attr_names[a];
        snprintf(nm, sizeof mr->attr_names[a], "input:%s", mr->in_name[k]);
        mr->attrs[a] = (struct as_attr){ .name = nm, .kind = AS_ATTR_STR };
        as_strlcpy(mr->attrs[a++].str, mr->in_path[k], sizeof mr->attrs[0].str);
        char *nd = mr->attr_names[a];
        snprintf(nd, sizeof mr->attr_names[a], "input_digest:%s", mr->in_name[k]);
        mr->attrs[a] = (struct as_attr){ .name = nd, .kind = AS_ATTR_STR };
        snprintf(mr->attrs[a++].str, sizeof mr->attrs[0].str, "%s %s size=%lld mtime_ns=%lld", mr->in_digest[k],
                 p_full_digest ? "full" : "sampled", (long long)mr->in_size[k], (long long)mr->in_mtime[k]);
        if (mr->in_key[k][0]) {
            char *nk = mr->attr_names[a];
            snprintf(nk, sizeof mr->attr_names[a], "input_key:%s", mr->in_name[k]);
            mr->attrs[a] = (struct as_attr){ .name = nk, .kind = AS_ATTR_STR };
            as_strlcpy(mr->attrs[a++].str, mr->in_key[k], sizeof mr->attrs[0].str);
        }
    }
    mr->n_attrs = a;
}

static int write_log(const char *path, const char *text, struct as_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return as_error_set(err, AS_ERR_IO, "cannot write summary log '%s'", path);
    fputs(text, f);
    if (fclose(f))
        return as_error_set(err, AS_ERR_IO, "cannot write summary log '%s'", path);
    return 0;
}


int as_run_all(MPI_Comm comm, struct as_config *cfg, const struct as_run_opts *opts, struct as_error *err)
{
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    char start_time[32], end_time[32];
    as_iso_time(start_time, sizeof start_time);
    struct plan p;
    struct open_inputs o = { .model = -1 };
    struct progress pg = { 0 };
    double busy = 0;
    int64_t my_units = 0;
    struct as_results_model *rm = NULL;
    struct as_results_stage *rs = NULL;
    int rc = plan_build(&p, cfg, nranks, err);
    if (agree(comm, err))
        goto out;
    /* buffers for rows and per-model blocks */
    for (int i = 0; i < p.n_models && !err->status; i++)
        for (int s = 0; s < cfg->n_stages; s++) {
            struct stage_run *sr = &p.models[i].st[s];
            if (!sr->active)
                continue;
            sr->rows = calloc((size_t)sr->shape.n_layers, sr->row_size ? sr->row_size : 1);
            sr->model_block = calloc(1, sr->model_size ? sr->model_size : 1);
            if (!sr->rows || !sr->model_block)
                as_error_set(err, AS_ERR_NOMEM, "out of memory for the results of model '%s'", p.models[i].m->name);
        }
    if (agree(comm, err))
        goto out;
    struct as_strbuf desc = AS_STRBUF_INIT;
    plan_describe(&p, &desc);
    rc = as_journal_open_all(comm, &p.journal, cfg->output, as_strbuf_str(&desc), opts->resume, err);
    as_strbuf_release(&desc);
    if (rc)
        goto out;
    plan_apply_journal(&p);
    if (rank == 0 && opts->resume && opts->progress)
        fprintf(stderr, "attnstat: resuming: %zu of %zu units finished earlier\n", p.n_units - p.n_todo, p.n_units);
    pg.enabled = rank == 0 && opts->progress;
    pg.tty = isatty(2);
    pg.total = p.n_todo;
    pg.t0 = pg.last_print = as_now();
    if (prepass_all(comm, &p, rank, &o, &busy, err))
        goto out;
    if (units_all(comm, &p, rank, nranks, &o, &pg, &busy, &my_units, err))
        goto out;
    gather_rows(comm, &p);
    if (finalize_all(&p, err)) /* identical on every rank */
        goto out;

    /* per-rank figures */
    double *rank_busy = as_xcalloc((size_t)nranks, sizeof(double)), *rank_bytes = as_xcalloc((size_t)nranks, 8);
    int64_t *rank_units = as_xcalloc((size_t)nranks, sizeof(int64_t));
    double my_bytes = (double)inputs_bytes(&o);
    MPI_Allgather(&busy, 1, MPI_DOUBLE, rank_busy, 1, MPI_DOUBLE, comm);
    MPI_Allgather(&my_bytes, 1, MPI_DOUBLE, rank_bytes, 1, MPI_DOUBLE, comm);
    MPI_Allgather(&my_units, 1, MPI_INT64_T, rank_units, 1, MPI_INT64_T, comm);

    struct as_strbuf log = AS_STRBUF_INIT;
    as_strbuf_addf(&log, "attnstat %s (%s) summary: config %s, %d model%s, %zu units, %d rank%s, started %s\n",
                   as_version(), as_git_describe(), cfg->path, p.n_models, p.n_models == 1 ? "" : "s", p.n_units, nranks,
                   nranks == 1 ? "" : "s", start_time);
    rm = calloc((size_t)p.n_models, sizeof *rm);
    rs = calloc((size_t)p.n_models * (size_t)cfg->n_stages + 1, sizeof *rs);
    for (int i = 0; i < p.n_models; i++) {
        struct model_run *mr = &p.models[i];
        model_attrs(mr, cfg->full_digest);
        rm[i] = (struct as_results_model){ mr->m->name, mr->n_layers, mr->n_heads, mr->seq_len, mr->row_owner,
                                           mr->attrs, mr->n_attrs, rs + (size_t)i * cfg->n_stages, 0 };
        for (int s = 0; s < cfg->n_stages; s++) {
            struct stage_run *sr = &mr->st[s];
            if (!sr->active)
                continue;
            rs[(size_t)i * cfg->n_stages + rm[i].n_stages++] = (struct as_results_stage){
                cfg->stages[s].ops->name, sr->fields, sr->n_fields, sr->shape.n_layers, sr->rows, sr->model_block,
                sr->out.attrs, sr->out.n_attrs };
            as_strbuf_add(&log, as_strbuf_str(&sr->log), sr->log.len);
        }
    }
    if (cfg->skipped.len)
        as_strbuf_addf(&log, "skipped sweep combinations (missing: skip):\n%s", as_strbuf_str(&cfg->skipped));
    double total_busy = 0, max_busy = 0;
    for (int r = 0; r < nranks; r++) {
        char b[32];
        fmt_bytes(b, sizeof b, rank_bytes[r]);
        as_strbuf_addf(&log, "rank %d busy %.3f s, %lld units, %s read\n", r, rank_busy[r], (long long)rank_units[r], b);
        total_busy += rank_busy[r];
        max_busy = rank_busy[r] > max_busy ? rank_busy[r] : max_busy;
    }
    as_strbuf_addf(&log, "load balance (mean busy / max busy) %.3f\n", max_busy > 0 ? total_busy / nranks / max_busy : 1.0);
    /* profile counters the stages fed (rank 0's names; every rank runs the same stages) */
    int n_prof = 0;
    const struct as_prof_counter *prof = as_prof_get(&n_prof);
    MPI_Bcast(&n_prof, 1, MPI_INT, 0, comm);
    for (int k = 0; k < n_prof; k++) {
        double mine[2] = { 0, 0 };
        int mine_n = 0;
        const struct as_prof_counter *pc = as_prof_get(&mine_n);
        if (k < mine_n) {
            mine[0] = pc[k].seconds;
            mine[1] = pc[k].flops;
        }
        double *all = as_xcalloc((size_t)nranks * 2, sizeof *all);
        MPI_Allgather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, comm);
        for (int r = 0; r < nranks; r++)
            if (all[2 * r] > 0)
                as_strbuf_addf(&log, "rank %d profile %s: %.3f s, %.4g GFLOP, %.1f GFLOP/s\n", r,
                               k < n_prof && rank == 0 ? prof[k].name : "counter", all[2 * r], all[2 * r + 1] * 1e-9,
                               all[2 * r + 1] * 1e-9 / all[2 * r]);
        free(all);
    }
    as_iso_time(end_time, sizeof end_time);
    struct as_results_run run = { cfg->doc.text, cfg->path, opts->command_line, start_time, end_time, nranks,
                                  rank_busy, rank_bytes, rank_units, 1, cfg->selection,
                                  as_strbuf_str(&cfg->skipped) };
    rc = as_results_write_all(comm, cfg->output, &run, rm, p.n_models, err);
    if (!rc && rank == 0) {
        as_strbuf_addf(&log, "results %s (complete)\n", cfg->output);
        rc = write_log(cfg->log, as_strbuf_str(&log), err);
        if (!rc && cfg->figures) {
            rc = as_plot_run_figures(cfg->output, cfg->figures_dir, cfg->figure_formats, err);
        }
    }
    if (rc == 0 && rank != 0)
        as_error_clear(err);
    if (!agree(comm, err))
        as_journal_remove_all(comm, &p.journal); /* the results file is complete: nothing to resume */
    as_strbuf_release(&log);
    free(rank_busy);
    free(rank_bytes);
    free(rank_units);
out:
    inputs_close(&o);
    free(rm);
    free(rs);
    plan_release(&p);
    return err->status ? -1 : 0;
}
