/* as_summary.c: what a run says about itself: the provenance attributes of every model group and
 * the per-rank lines of the summary log (busy time, units, bytes read, balance, profile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_mpi.h"
#include "as_prof.h"
#include "as_results_names.h"
#include "as_run_internal.h"
#include "as_util.h"

void as_summary_fmt_bytes(char *buf, size_t n, double b)
{
    const char *u[] = { "B", "KB", "MB", "GB", "TB" };
    int k = 0;
    while (b >= 1000 && k < 4) {
        b /= 1000;
        k++;
    }
    snprintf(buf, n, k ? "%.1f %s" : "%.0f %s", b, u[k]);
}

static struct as_attr *attr_str(struct as_attr *a, const char *name, const char *val)
{
    *a = (struct as_attr){ .name = name, .kind = AS_ATTR_STR };
    as_strlcpy(a->str, val, sizeof a->str);
    return a;
}

int as_summary_model_attrs(const struct as_plan_model *mr, int full_digest, struct as_attr *attrs,
                           char (*names)[96], int max)
{
    int a = 0;
    const struct as_model_cfg *m = mr->m;
    if (m->synthetic) {
        attrs[a] = (struct as_attr){ .name = AS_RESULTS_ATTR_SOURCE, .kind = AS_ATTR_STR };
        as_synth_spec_format(&m->synth, attrs[a].str, sizeof attrs[a].str);
        a++;
    } else {
        attr_str(&attrs[a++], AS_RESULTS_ATTR_SOURCE, m->dir[0] ? m->dir : "tensors"); /* "tensors": files given one by one */
    }
    if (m->model_id[0]) {
        attr_str(&attrs[a++], AS_RESULTS_ATTR_MODEL_ID, m->model_id);
        attrs[a++] = (struct as_attr){ .name = AS_RESULTS_ATTR_MODEL_SEQ_LEN, .kind = AS_ATTR_I64, .i64 = m->seq_len_attr };
    }
    if (m->dataset[0])
        attr_str(&attrs[a++], AS_RESULTS_ATTR_DATASET, m->dataset);
    for (int k = 0; k < mr->in->n && a + 3 <= max; k++) {
        const struct as_plan_input *in = &mr->in->in[k];
        snprintf(names[a], sizeof names[a], AS_RESULTS_ATTR_INPUT_PREFIX "%s", in->name);
        attr_str(&attrs[a], names[a], in->path);
        a++;
        snprintf(names[a], sizeof names[a], AS_RESULTS_ATTR_INPUT_DIGEST_PREFIX "%s", in->name);
        attrs[a] = (struct as_attr){ .name = names[a], .kind = AS_ATTR_STR };
        snprintf(attrs[a].str, sizeof attrs[a].str, "%s %s size=%lld mtime_ns=%lld", in->digest,
                 full_digest ? "full" : "sampled", (long long)in->size, (long long)in->mtime);
        a++;
        if (in->key[0]) {
            snprintf(names[a], sizeof names[a], AS_RESULTS_ATTR_INPUT_KEY_PREFIX "%s", in->name);
            attr_str(&attrs[a], names[a], in->key);
            a++;
        }
    }
    return a;
}

void as_summary_ranks_all(struct as_run *r, struct as_strbuf *log, double **busy, double **bytes, int64_t **units,
                          int64_t **opens, double **read_s)
{
    int nranks = r->nranks;
    *busy = as_xcalloc((size_t)nranks, sizeof **busy);
    *bytes = as_xcalloc((size_t)nranks, sizeof **bytes);
    *units = as_xcalloc((size_t)nranks, sizeof **units);
    *opens = as_xcalloc((size_t)nranks, sizeof **opens);
    *read_s = as_xcalloc((size_t)nranks, sizeof **read_s);
    double my_bytes = (double)as_inputs_bytes(&r->open), my_read_s = as_inputs_read_seconds(&r->open);
    int64_t my_opens = (int64_t)as_tensor_file_opens();
    AS_MPI(MPI_Allgather(&r->busy, 1, MPI_DOUBLE, *busy, 1, MPI_DOUBLE, r->comm));
    AS_MPI(MPI_Allgather(&my_bytes, 1, MPI_DOUBLE, *bytes, 1, MPI_DOUBLE, r->comm));
    AS_MPI(MPI_Allgather(&r->units_done, 1, MPI_INT64_T, *units, 1, MPI_INT64_T, r->comm));
    AS_MPI(MPI_Allgather(&my_opens, 1, MPI_INT64_T, *opens, 1, MPI_INT64_T, r->comm));
    AS_MPI(MPI_Allgather(&my_read_s, 1, MPI_DOUBLE, *read_s, 1, MPI_DOUBLE, r->comm));
    double total_busy = 0, max_busy = 0;
    for (int q = 0; q < nranks; q++) {
        char b[32];
        as_summary_fmt_bytes(b, sizeof b, (*bytes)[q]);
        as_strbuf_addf(log, "rank %d busy %.3f s, %lld units, %s read in %.3f s, %lld files opened\n", q, (*busy)[q],
                       (long long)(*units)[q], b, (*read_s)[q], (long long)(*opens)[q]);
        total_busy += (*busy)[q];
        max_busy = (*busy)[q] > max_busy ? (*busy)[q] : max_busy;
    }
    as_strbuf_addf(log, "load balance (mean busy / max busy) %.3f\n",
                   max_busy > 0 ? total_busy / nranks / max_busy : 1.0);
    /* profile counters the stages fed (rank 0's names; every rank runs the same stages) */
    int n_prof = 0;
    const struct as_prof_counter *prof = as_prof_get(&n_prof);
    AS_MPI(MPI_Bcast(&n_prof, 1, MPI_INT, 0, r->comm));
    double *all = as_xcalloc((size_t)nranks * 2, sizeof *all);
    for (int k = 0; k < n_prof; k++) {
        double mine[2] = { 0, 0 };
        int mine_n = 0;
        const struct as_prof_counter *pc = as_prof_get(&mine_n);
        if (k < mine_n) {
            mine[0] = pc[k].seconds;
            mine[1] = pc[k].flops;
        }
        AS_MPI(MPI_Allgather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, r->comm));
        for (int q = 0; q < nranks; q++)
            if (all[2 * q] > 0)
                as_strbuf_addf(log, "rank %d profile %s: %.3f s, %.4g GFLOP, %.1f GFLOP/s\n", q,
                               k < n_prof && r->rank == 0 ? prof[k].name : "counter", all[2 * q],
                               all[2 * q + 1] * 1e-9, all[2 * q + 1] * 1e-9 / all[2 * q]);
    }
    free(all);
}
