/* as_version.h: the tool's version and the source tree it was built from. Both are taken at build
 * time (cmake/as_version.cmake), not at configure time, so they never go stale. */
#ifndef AS_CORE_AS_VERSION_H
#define AS_CORE_AS_VERSION_H

/* The release version, e.g. "0.1.0". Static storage. */
const char *as_version(void);
/* `git describe --always --dirty` of the tree that was built, or "unknown" outside a checkout.
 * Static storage. */
const char *as_git_describe(void);

/* The results-relevant version: what a stage computes from the same inputs and options. Part of
 * every (model, stage) key (pipeline/plan), so finished work of an older attnstat is reused only
 * while this is unchanged. Bump it with any change to what a stage writes. */
#define AS_RESULTS_VERSION "attnstat-results-1"

#endif
