/* as_stage_registry.h: every stage attnstat knows (pipeline/stage/stage_registry.c), in the order
 * they run and appear in results. For config, plot and tests; stages themselves never look here. */
#ifndef AS_STAGE_AS_STAGE_REGISTRY_H
#define AS_STAGE_AS_STAGE_REGISTRY_H

#include "as_stage.h"

/* NULL-terminated, static. */
extern const struct as_stage_ops *const as_stages[];
/* The stage named `name`, or NULL. */
const struct as_stage_ops *as_stage_find(const char *name);

#endif
