/* stage_registry.c: every stage attnstat knows, in the order they run and appear in results. */
#include <string.h>

#include "as_stage_registry.h"

extern const struct as_stage_ops as_stage_histsim;
extern const struct as_stage_ops as_stage_monotonicity;
extern const struct as_stage_ops as_stage_jacobian;
extern const struct as_stage_ops as_stage_patterns;
extern const struct as_stage_ops as_stage_activations;
extern const struct as_stage_ops as_stage_lesion;

const struct as_stage_ops *const as_stages[] = {
    &as_stage_histsim,
    &as_stage_monotonicity,
    &as_stage_jacobian,
    &as_stage_patterns,
    &as_stage_activations,
    &as_stage_lesion,
    NULL,
};

const struct as_stage_ops *as_stage_find(const char *name)
{
    for (int i = 0; as_stages[i]; i++)
        if (!strcmp(as_stages[i]->name, name))
            return as_stages[i];
    return NULL;
}
