/* as_validate.c: `attnstat validate`: every input described and the plan printed, nothing computed,
 * no MPI. */
#include <stdio.h>
#include <stdlib.h>

#include "as_dtype.h"
#include "as_run_internal.h"

static void print_plan(const struct as_config *cfg, const struct as_plan *p, int nranks, FILE *out)
{
    fprintf(out, "config %s: %d model%s, stages:", cfg->path, cfg->n_models, cfg->n_models == 1 ? "" : "s");
    for (int s = 0; s < cfg->n_stages; s++)
        fprintf(out, " %s", cfg->stages[s].ops->name);
    fprintf(out, "\noutput %s\nlog    %s\n\n", cfg->output, cfg->log);
    double total_bytes = 0;
    for (int i = 0; i < p->n_models; i++) {
        const struct as_plan_model *mr = &p->models[i];
        double mb = 0;
        for (int64_t l = 0; l < mr->n_layers; l++)
            mb += (double)p->units[mr->first_unit + (size_t)l].bytes;
        total_bytes += mb;
        char b[32];
        as_summary_fmt_bytes(b, sizeof b, mb);
        fprintf(out, "model %s: %lld layers x %lld heads, seq_len %lld, %lld units, %s to read, est. cost %.3g per unit\n",
                mr->m->name, (long long)mr->n_layers, (long long)mr->n_heads, (long long)mr->seq_len,
                (long long)mr->n_layers, b, mr->n_layers ? p->units[mr->first_unit].cost : 0.0);
        for (int k = 0; k < mr->in->n; k++) {
            const struct as_plan_input *in = &mr->in->in[k];
            fprintf(out, "  %-22s %-8s (", in->name, as_dtype_traits[in->info.dtype].name);
            for (int d = 0; d < in->info.ndim; d++)
                fprintf(out, "%s%lld", d ? ", " : "", (long long)in->info.shape[d]);
            fprintf(out, ")  %s%s%s%s\n", in->path, in->key[0] ? " [" : "", in->key, in->key[0] ? "]" : "");
        }
    }
    if (cfg->skipped.len)
        fprintf(out, "\nskipped sweep combinations (missing: skip):\n%s", as_strbuf_str(&cfg->skipped));
    char tb[32];
    as_summary_fmt_bytes(tb, sizeof tb, total_bytes);
    fprintf(out, "\n%zu units, %s to read; plan for %d rank%s (load balance %.3f):\n", p->n_units, tb, nranks,
            nranks == 1 ? "" : "s", as_plan_balance(p->load, nranks));
    for (int q = 0; q < nranks; q++) {
        double bytes = 0;
        size_t units = 0;
        for (size_t u = 0; u < p->n_units; u++)
            if (p->owner[u] == q) {
                bytes += (double)p->units[u].bytes;
                units++;
            }
        char b[32];
        as_summary_fmt_bytes(b, sizeof b, bytes);
        fprintf(out, "  rank %d: %zu units, %s, cost %.3g\n", q, units, b, p->load[q]);
    }
}

int as_validate(struct as_config *cfg, int nranks, FILE *out, struct as_error *err)
{
    struct as_plan_inputs *inputs = NULL;
    struct as_plan p = { 0 };
    int rc = as_inputs_probe(cfg, &inputs, err);
    if (!rc)
        rc = as_plan_build(&p, cfg, inputs, nranks, err);
    if (!rc)
        print_plan(cfg, &p, nranks, out);
    as_plan_release(&p);
    free(inputs);
    return rc;
}
