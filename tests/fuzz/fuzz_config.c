/* fuzz_config.c: libFuzzer harness for the YAML config loader: parses the input as a config (every
 * stage's options included), selects models, and expands sweeps. Any config error is fine; a
 * crash, a sanitizer report, or an error without a message is a finding.
 *
 *   fuzz_config -max_total_time=120 corpus/ tests/fuzz/corpus_config */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct as_config cfg;
    struct as_error err = { 0 };
    if (as_config_parse(&cfg, "fuzz.yaml", "/nonexistent-fuzz", text, &err) == 0) {
        if (cfg.n_models > 0)
            as_config_select_models(&cfg, cfg.models[0].name, &err);
        as_config_release(&cfg);
    } else if (!err.msg[0] || err.status == AS_OK || strchr(err.msg, '\n')) {
        fprintf(stderr, "config error without a proper message: status %d '%s'\n", err.status, err.msg);
        abort();
    }
    free(text);
    return 0;
}
