/* as_validate.c: `attnstat validate`: every input described and the plan printed, nothing computed,
 * no MPI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_dtype.h"
#include "as_run_internal.h"

/* Tasks (whole layers and pieces of split layers) and input bytes of rank q in the plan. */
static size_t rank_share(const struct as_plan *p, int q, double *bytes)
{
    size_t tasks = 0;
    *bytes = 0;
    for (size_t k = 0; k < p->n_tasks; k++)
        if (p->task_owner[k] == q) {
            *bytes += (double)p->tasks[k].bytes;
            tasks++;
        }
    return tasks;
}

/* Pieces of split layers among the tasks. */
static size_t n_pieces(const struct as_plan *p)
{
    size_t n = 0;
    for (size_t k = 0; k < p->n_tasks; k++)
        n += p->tasks[k].stage >= 0;
    return n;
}

static void print_plan(const struct as_config *cfg, const struct as_plan *p, int nranks, FILE *out)
{
    fprintf(out, "config %s: %d model%s, stages:", cfg->path, cfg->n_models, cfg->n_models == 1 ? "" : "s");
    for (int s = 0; s < cfg->n_stages; s++)
        fprintf(out, " %s", cfg->stages[s].ops->name);
    fprintf(out, "\noutput %s\nlog    %s\n\n", cfg->output, cfg->log);
    double total_bytes = 0;
    for (int i = 0; i < p->n_models; i++) {
        const struct as_plan_model *mr = &p->models[i];
        if (mr->failed) {
            fprintf(out, "model %s: failed (on_error: skip): %s\n", mr->m->name, mr->error);
            continue;
        }
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
    size_t pieces = n_pieces(p);
    fprintf(out, "\n%zu units, %s to read; plan for %d rank%s: %zu tasks (%zu whole layers, %zu pieces of split layers%s), "
            "load balance %.3f:\n", p->n_units, tb, nranks, nranks == 1 ? "" : "s", p->n_tasks, p->n_tasks - pieces,
            pieces, p->n_phases == 2 ? ", two phases" : "", p->balance);
    for (int q = 0; q < nranks; q++) {
        double bytes;
        size_t units = rank_share(p, q, &bytes);
        char b[32];
        as_summary_fmt_bytes(b, sizeof b, bytes);
        fprintf(out, "  rank %d: %zu tasks, %s, cost %.3g\n", q, units, b, p->load[q]);
    }
}

/* ---- JSON, by hand: strings escaped per RFC 8259 */

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c == '\n')
            fputs("\\n", out);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void json_kv_str(FILE *out, const char *key, const char *val, const char *sep)
{
    json_str(out, key);
    fputs(": ", out);
    json_str(out, val);
    fputs(sep, out);
}

static void print_json(const struct as_config *cfg, const struct as_plan *p, int nranks, FILE *out)
{
    fputs("{\n  ", out);
    json_kv_str(out, "config", cfg->path, ",\n  ");
    json_kv_str(out, "output", cfg->output, ",\n  ");
    json_kv_str(out, "log", cfg->log, ",\n  ");
    json_kv_str(out, "on_error", cfg->on_error == AS_ON_ERROR_SKIP ? "skip" : "stop", ",\n  ");
    fputs("\"stages\": [", out);
    for (int s = 0; s < cfg->n_stages; s++) {
        fputs(s ? ", " : "", out);
        json_str(out, cfg->stages[s].ops->name);
    }
    fputs("],\n  \"models\": [", out);
    double total_bytes = 0;
    for (int i = 0; i < p->n_models; i++) {
        const struct as_plan_model *mr = &p->models[i];
        double bytes = 0, cost = 0;
        for (int64_t l = 0; l < mr->n_layers; l++) {
            bytes += (double)p->units[mr->first_unit + (size_t)l].bytes;
            cost += p->units[mr->first_unit + (size_t)l].cost;
        }
        total_bytes += bytes;
        fprintf(out, "%s\n    {", i ? "," : "");
        json_kv_str(out, "name", mr->m->name, ", ");
        json_kv_str(out, "status", mr->failed ? "failed" : "ok", ", ");
        json_kv_str(out, "error", mr->error, ", ");
        json_kv_str(out, "model_id", mr->m->model_id, ", ");
        json_kv_str(out, "dataset", mr->m->dataset, ", ");
        fprintf(out, "\"layers\": %lld, \"heads\": %lld, \"seq_len\": %lld, \"units\": %lld, \"bytes\": %.0f, "
                "\"cost\": %.6g,\n     \"inputs\": [", (long long)mr->n_layers, (long long)mr->n_heads,
                (long long)mr->seq_len, (long long)mr->n_layers, bytes, cost);
        for (int k = 0; k < mr->in->n; k++) {
            const struct as_plan_input *in = &mr->in->in[k];
            fprintf(out, "%s\n      {", k ? "," : "");
            json_kv_str(out, "name", in->name, ", ");
            json_kv_str(out, "path", in->path, ", ");
            json_kv_str(out, "key", in->key, ", ");
            json_kv_str(out, "format", in->ops ? in->ops->name : "", ", ");
            json_kv_str(out, "dtype", as_dtype_traits[in->info.dtype].name, ", ");
            fputs("\"shape\": [", out);
            for (int d = 0; d < in->info.ndim; d++)
                fprintf(out, "%s%lld", d ? ", " : "", (long long)in->info.shape[d]);
            fprintf(out, "], \"size\": %lld, ", (long long)in->size);
            json_kv_str(out, "digest", in->digest, "}");
        }
        fputs("]}", out);
    }
    fputs("\n  ],\n  \"skipped\": [", out);
    const char *sk = as_strbuf_str(&cfg->skipped);
    int first = 1;
    while (*sk) { /* one combination per line */
        const char *e = strchr(sk, '\n');
        size_t n = e ? (size_t)(e - sk) : strlen(sk);
        char line[AS_PATH_MAX + 256];
        snprintf(line, sizeof line, "%.*s", (int)n, sk);
        fputs(first ? "" : ", ", out);
        json_str(out, line);
        first = 0;
        sk += n + (e != NULL);
    }
    fprintf(out, "],\n  \"units\": %zu, \"tasks\": %zu, \"pieces\": %zu, \"bytes\": %.0f, \"ranks\": %d, "
            "\"load_balance\": %.6f,\n  \"plan\": [", p->n_units, p->n_tasks, n_pieces(p), total_bytes, nranks, p->balance);
    for (int q = 0; q < nranks; q++) {
        double bytes;
        size_t units = rank_share(p, q, &bytes);
        fprintf(out, "%s\n    {\"rank\": %d, \"units\": %zu, \"bytes\": %.0f, \"cost\": %.6g}", q ? "," : "", q,
                units, bytes, p->load[q]);
    }
    fputs("\n  ]\n}\n", out);
}

int as_validate(struct as_config *cfg, int nranks, int json, FILE *out, struct as_error *err)
{
    struct as_plan_inputs *inputs = NULL;
    struct as_plan p = { 0 };
    int rc = as_inputs_probe(cfg, &inputs, err);
    if (!rc)
        rc = as_plan_build(&p, cfg, inputs, nranks, err);
    if (!rc && json)
        print_json(cfg, &p, nranks, out);
    else if (!rc)
        print_plan(cfg, &p, nranks, out);
    as_plan_release(&p);
    free(inputs);
    return rc;
}
