/* lesion_run.c: every (layer, head) lesion of a model in one process, timed (jobs/bench_lesion.sh).
 *
 *   lesion_run MODEL_DIR TOKENS [--position P] [--mode rows|exact|full] [--layers N] [--json OUT]
 *
 * The clean pass, then for every layer l < N (default all) and head h the lesion of head h at
 * position P (default -2, from the end) and the log-probability of the next token:
 *   rows   as_model_lesion_heads: the H lesions of a layer as H rows of one pass over layers l..L-1
 *          at position P only (what the lesion stage computes)
 *   exact  as_model_lesion from layer l: all T rows of layers l..L-1, reusing the clean residual
 *   full   as_model_lesion from layer 0: the seed's way (a whole forward pass per lesion), in C
 * Prints the timings; --json writes {"position", "target_token", "logprob_clean",
 * "delta_logprob": (N, H), "top5_clean"} as lesion_reference.py does. Exit 4 on an input error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_model.h"
#include "as_util.h"

static int usage(void)
{
    fprintf(stderr, "usage: lesion_run MODEL_DIR TOKENS [--position P] [--mode rows|exact|full] [--layers N] "
                    "[--json OUT]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *tokens = NULL, *json = NULL, *mode = "rows";
    int position = -2, n_layers = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--position") && i + 1 < argc)
            position = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            mode = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            n_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else if (argv[i][0] == '-')
            return usage();
        else if (!dir)
            dir = argv[i];
        else if (!tokens)
            tokens = argv[i];
        else
            return usage();
    }
    if (!dir || !tokens || (strcmp(mode, "rows") && strcmp(mode, "exact") && strcmp(mode, "full")))
        return usage();
    struct as_error err = { 0 };
    struct as_model *m = NULL;
    int32_t *tok = NULL;
    int T = 0;
    double t0 = as_now();
    if (as_model_open(&m, dir, &err) || as_model_read_tokens(tokens, &tok, &T, &err) ||
        as_model_check_tokens(m, tok, T, tokens, &err)) {
        fprintf(stderr, "lesion_run: error: %s\n", err.msg);
        as_model_free(m);
        return as_status_exit_code(err.status);
    }
    double t_open = as_now() - t0;
    const struct as_model_config *c = &m->cfg;
    int L = n_layers < 0 || n_layers > c->n_layer ? c->n_layer : n_layers, H = c->n_head, V = c->vocab_size;
    int pos = ((position % T) + T) % T;
    if (pos + 1 >= T) {
        fprintf(stderr, "lesion_run: error: position %d leaves no following token in %d tokens\n", position, T);
        return 4;
    }
    struct as_model_pass pass;
    t0 = as_now();
    if (as_model_forward(m, tok, T, &pass, &err)) {
        fprintf(stderr, "lesion_run: error: %s\n", err.msg);
        return as_status_exit_code(err.status);
    }
    double t_clean = as_now() - t0;
    int tgt = tok[pos + 1];
    const float *row = pass.logits + (size_t)pos * V;
    double clean = as_model_logprob(row, V, tgt);
    double *delta = as_xmalloc((size_t)L * H * sizeof *delta);
    float *lg = as_xmalloc((size_t)H * V * sizeof *lg);
    int *heads = as_xmalloc((size_t)H * sizeof *heads);
    for (int h = 0; h < H; h++)
        heads[h] = h;
    t0 = as_now();
    for (int l = 0; l < L; l++) {
        if (!strcmp(mode, "rows")) {
            if (as_model_lesion_heads(m, &pass, l, pos, heads, H, lg, &err))
                goto fail;
            for (int h = 0; h < H; h++)
                delta[l * H + h] = as_model_logprob(lg + (size_t)h * V, V, tgt) - clean;
            continue;
        }
        for (int h = 0; h < H; h++) {
            struct as_lesion les = { l, pos, 1, &heads[h] };
            if (as_model_lesion(m, &pass, &les, !strcmp(mode, "exact") ? l : 0, lg, &err))
                goto fail;
            delta[l * H + h] = as_model_logprob(lg, V, tgt) - clean;
        }
    }
    double t_les = as_now() - t0;
    printf("model %s: %s, L %d, H %d, E %d, V %d, %.1f M parameters (%.0f MB used in place, %.0f MB converted)\n",
           dir, as_model_arch(m), c->n_layer, H, c->n_embd, V, m->n_params / 1e6, m->mapped_bytes / 1e6,
           m->copied_bytes / 1e6);
    printf("tokens %d, position %d, target %d, clean log-prob %.6f\n", T, pos, tgt, clean);
    printf("open %.3f s, clean pass %.3f s, %d lesions (%s) %.3f s = %.2f ms per lesion\n", t_open, t_clean, L * H,
           mode, t_les, 1e3 * t_les / (L * H));
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "lesion_run: cannot write '%s'\n", json);
            return 5;
        }
        int top[5];
        as_model_topk(row, V, V < 5 ? V : 5, top);
        fprintf(f, "{\"position\": %d, \"target_token\": %d, \"logprob_clean\": %.17g, \"delta_logprob\": [", pos,
                tgt, clean);
        for (int l = 0; l < L; l++) {
            fprintf(f, "%s[", l ? ", " : "");
            for (int h = 0; h < H; h++)
                fprintf(f, "%s%.17g", h ? ", " : "", delta[l * H + h]);
            fprintf(f, "]");
        }
        fprintf(f, "], \"top5_clean\": [");
        for (int i = 0; i < (V < 5 ? V : 5); i++)
            fprintf(f, "%s%d", i ? ", " : "", top[i]);
        fprintf(f, "]}\n");
        fclose(f);
    }
    free(delta);
    free(lg);
    free(heads);
    free(tok);
    as_model_pass_release(&pass);
    as_model_free(m);
    return 0;
fail:
    fprintf(stderr, "lesion_run: error: %s\n", err.msg);
    return as_status_exit_code(err.status);
}
