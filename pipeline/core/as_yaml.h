/* as_yaml.h: a YAML document as a tree of nodes that remember file:line:col, and typed getters
 * whose errors name the file, the key and the position (libyaml does the parsing). */
#ifndef AS_PIPELINE_AS_YAML_H
#define AS_PIPELINE_AS_YAML_H

#include <stddef.h>
#include <stdint.h>

#include "as_error.h"
#include "as_util.h"

enum as_ynode_kind { AS_YNODE_SCALAR, AS_YNODE_MAP, AS_YNODE_SEQ, AS_YNODE_KIND_COUNT };

struct as_ynode {
    enum as_ynode_kind kind;
    const char *file;          /* borrowed from the document */
    int line, col;             /* 1-based, of the node's start */
    char *scalar;              /* AS_YNODE_SCALAR: the text; quoted = 1 when it was quoted */
    int quoted;
    /* AS_YNODE_MAP: keys[i] -> items[i]; AS_YNODE_SEQ: items[i] */
    size_t n;
    struct as_ynode **keys;
    struct as_ynode **items;
};

struct as_ydoc {
    char *file;                /* owned */
    char *text;                /* owned: the whole config text (recorded in results) */
    size_t text_len;
    struct as_ynode *root;     /* owned */
};

/* Parse `path` (or, with as_ydoc_parse_string, `text` named `name`). Errors carry file:line:col. */
int as_ydoc_load(struct as_ydoc *doc, const char *path, struct as_error *err);
int as_ydoc_parse_string(struct as_ydoc *doc, const char *name, const char *text, size_t len,
                         struct as_error *err);
void as_ydoc_release(struct as_ydoc *doc);

/* Free a node tree that is not part of a document (e.g. one built by sweep expansion). */
void as_ynode_free(struct as_ynode *n);

/* Lookups. Return NULL when absent (map) or when the node is not a map. Borrowed. */
const struct as_ynode *as_ynode_get(const struct as_ynode *map, const char *key);

/* Every key of `map` must be in the NULL-terminated list `allowed`; `what` names the section
 * for the message ("stages.histsim"). A non-map node is an error too. */
int as_ynode_check_keys(const struct as_ynode *map, const char *what, const char *const *allowed,
                        struct as_error *err);

/* Typed getters on map[key]: absent -> *out = dflt and return 0; wrong type -> config error with
 * file:line:col. `what` names the section for messages. */
int as_ynode_get_str(const struct as_ynode *map, const char *what, const char *key, const char *dflt,
                     const char **out, struct as_error *err);
int as_ynode_get_int(const struct as_ynode *map, const char *what, const char *key, int64_t dflt,
                     int64_t lo, int64_t hi, int64_t *out, struct as_error *err);
int as_ynode_get_double(const struct as_ynode *map, const char *what, const char *key, double dflt,
                        double *out, struct as_error *err);
int as_ynode_get_bool(const struct as_ynode *map, const char *what, const char *key, int dflt, int *out,
                      struct as_error *err);
/* One of the NULL-terminated `choices`; *out is the index. */
int as_ynode_get_enum(const struct as_ynode *map, const char *what, const char *key, int dflt,
                      const char *const *choices, int *out, struct as_error *err);

/* Conversions of a scalar node (errors with position). */
int as_ynode_to_int(const struct as_ynode *n, const char *what, int64_t lo, int64_t hi, int64_t *out,
                    struct as_error *err);
int as_ynode_to_double(const struct as_ynode *n, const char *what, double *out, struct as_error *err);

/* A canonical one-line flow rendering of a node ({a: 1, b: [x, y]}), for comparing configs. */
void as_ynode_dump(const struct as_ynode *n, struct as_strbuf *out);

/* Set a config error at node n: "FILE:LINE:COL: <what>: <msg>". Returns -1. */
int as_ynode_error(const struct as_ynode *n, struct as_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
