/* as_yaml.c: libyaml events -> a node tree with positions; typed getters with file:line:col. */
#include "as_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "as_util.h"

#define YAML_MAX_DEPTH 64
#define YAML_MAX_BYTES (16 << 20)

void as_ynode_free(struct as_ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys)
            as_ynode_free(n->keys[i]);
        as_ynode_free(n->items[i]);
    }
    free(n->keys);
    free(n->items);
    free(n->scalar);
    free(n);
}

static void node_push(struct as_ynode *parent, struct as_ynode *key, struct as_ynode *item)
{
    size_t n = parent->n + 1;
    parent->items = as_xrealloc(parent->items, n, sizeof *parent->items);
    if (parent->kind == AS_YNODE_MAP)
        parent->keys = as_xrealloc(parent->keys, n, sizeof *parent->keys);
    if (parent->kind == AS_YNODE_MAP)
        parent->keys[parent->n] = key;
    parent->items[parent->n] = item;
    parent->n = n;
}

int as_ynode_error(const struct as_ynode *n, struct as_error *err, const char *fmt, ...)
{
    char msg[AS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n)
        return as_error_set(err, AS_ERR_CONFIG, "%s:%d:%d: %s", n->file, n->line, n->col, msg);
    return as_error_set(err, AS_ERR_CONFIG, "%s", msg);
}

/* Build the tree with an explicit stack; anchors/aliases are refused (a config has no use for
 * them and they make billion-laughs documents possible). */
static int build(struct as_ydoc *doc, yaml_parser_t *p, struct as_error *err)
{
    struct as_ynode *stack[YAML_MAX_DEPTH];
    struct as_ynode *pending_key[YAML_MAX_DEPTH];
    int depth = 0, done = 0, rc = -1;
    yaml_event_t ev;
    struct as_ynode *root = NULL;
    while (!done) {
        if (!yaml_parser_parse(p, &ev)) {
            if (p->error == YAML_MEMORY_ERROR)
                as_fatal(AS_EXIT_NOMEM, "out of memory: libyaml failed to allocate while parsing '%s'", doc->file);
            as_error_set(err, AS_ERR_CONFIG, "%s:%lu:%lu: invalid YAML: %s%s%s", doc->file,
                         (unsigned long)p->problem_mark.line + 1, (unsigned long)p->problem_mark.column + 1,
                         p->problem ? p->problem : "syntax error", p->context ? " " : "",
                         p->context ? p->context : "");
            goto out;
        }
        struct as_ynode *n = NULL;
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (root) {
                as_error_set(err, AS_ERR_CONFIG, "%s:%d:%d: a config holds one YAML document, found a second",
                             doc->file, line, col);
                yaml_event_delete(&ev);
                goto out;
            }
            break;
        case YAML_ALIAS_EVENT:
            as_error_set(err, AS_ERR_CONFIG, "%s:%d:%d: YAML aliases are not supported in configs", doc->file,
                         line, col);
            yaml_event_delete(&ev);
            goto out;
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            n = as_xcalloc(1, sizeof *n);
            n->file = doc->file;
            n->line = line;
            n->col = col;
            if (ev.type == YAML_SCALAR_EVENT) {
                n->kind = AS_YNODE_SCALAR;
                n->scalar = as_xcalloc(ev.data.scalar.length + 1, 1);
                memcpy(n->scalar, ev.data.scalar.value, ev.data.scalar.length);
                if (memchr(ev.data.scalar.value, '\0', ev.data.scalar.length)) {
                    as_error_set(err, AS_ERR_CONFIG, "%s:%d:%d: NUL character in a scalar", doc->file, line, col);
                    as_ynode_free(n);
                    yaml_event_delete(&ev);
                    goto out;
                }
                n->quoted = ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
            } else {
                n->kind = ev.type == YAML_SEQUENCE_START_EVENT ? AS_YNODE_SEQ : AS_YNODE_MAP;
            }
            if (depth == 0) {
                root = n;
            } else {
                struct as_ynode *top = stack[depth - 1];
                if (top->kind == AS_YNODE_MAP) {
                    if (!pending_key[depth - 1]) {
                        if (n->kind != AS_YNODE_SCALAR) {
                            as_error_set(err, AS_ERR_CONFIG, "%s:%d:%d: mapping keys must be plain strings",
                                         doc->file, line, col);
                            as_ynode_free(n);
                            yaml_event_delete(&ev);
                            goto out;
                        }
                        for (size_t i = 0; i < top->n; i++)
                            if (!strcmp(top->keys[i]->scalar, n->scalar)) {
                                as_error_set(err, AS_ERR_CONFIG, "%s:%d:%d: duplicate key '%s' (first at line %d)",
                                             doc->file, line, col, n->scalar, top->keys[i]->line);
                                as_ynode_free(n);
                                yaml_event_delete(&ev);
                                goto out;
                            }
                        pending_key[depth - 1] = n;
                    } else {
                        node_push(top, pending_key[depth - 1], n);
                        pending_key[depth - 1] = NULL;
                    }
                } else {
                    node_push(top, NULL, n);
                }
            }
            if (n->kind != AS_YNODE_SCALAR) {
                if (depth == YAML_MAX_DEPTH) {
                    as_error_set(err, AS_ERR_CONFIG, "%s:%d:%d: YAML nested deeper than %d levels", doc->file,
                                 line, col, YAML_MAX_DEPTH);
                    yaml_event_delete(&ev);
                    goto out;
                }
                pending_key[depth] = NULL;
                stack[depth++] = n;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    rc = 0;
out:
    /* a pending key whose value never arrived (error path) is not in the tree */
    for (int d = 0; d < depth; d++)
        if (pending_key[d])
            as_ynode_free(pending_key[d]);
    if (rc) {
        as_ynode_free(root);
        root = NULL;
    }
    doc->root = root;
    return rc;
}

int as_ydoc_parse_string(struct as_ydoc *doc, const char *name, const char *text, size_t len,
                         struct as_error *err)
{
    memset(doc, 0, sizeof *doc);
    doc->file = as_xstrdup(name);
    doc->text = as_xcalloc(len + 1, 1);
    memcpy(doc->text, text, len);
    doc->text_len = len;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) /* fails only when it cannot allocate */
        as_fatal(AS_EXIT_NOMEM, "out of memory: cannot initialise the YAML parser for '%s'", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)doc->text, len);
    int rc = build(doc, &p, err);
    yaml_parser_delete(&p);
    if (!rc && !doc->root)
        rc = as_error_set(err, AS_ERR_CONFIG, "%s: the config is empty", name);
    if (rc) {
        as_ydoc_release(doc);
        return -1;
    }
    return 0;
}

int as_ydoc_load(struct as_ydoc *doc, const char *path, struct as_error *err)
{
    memset(doc, 0, sizeof *doc);
    FILE *f = fopen(path, "rb");
    if (!f)
        return as_error_set(err, AS_ERR_CONFIG, "cannot open config '%s': %s", path, strerror(errno));
    struct as_strbuf sb = AS_STRBUF_INIT;
    char buf[65536];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        as_strbuf_add(&sb, buf, got);
        if (sb.len > YAML_MAX_BYTES) {
            fclose(f);
            as_strbuf_release(&sb);
            return as_error_set(err, AS_ERR_CONFIG, "config '%s' is larger than %d MiB", path, YAML_MAX_BYTES >> 20);
        }
    }
    int ferr = ferror(f);
    fclose(f);
    if (ferr) {
        as_strbuf_release(&sb);
        return as_error_set(err, AS_ERR_CONFIG, "cannot read config '%s'", path);
    }
    int rc = as_ydoc_parse_string(doc, path, as_strbuf_str(&sb), sb.len, err);
    as_strbuf_release(&sb);
    return rc;
}

void as_ydoc_release(struct as_ydoc *doc)
{
    as_ynode_free(doc->root);
    free(doc->file);
    free(doc->text);
    memset(doc, 0, sizeof *doc);
}

const struct as_ynode *as_ynode_get(const struct as_ynode *map, const char *key)
{
    if (!map || map->kind != AS_YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i]->scalar, key))
            return map->items[i];
    return NULL;
}

int as_ynode_check_keys(const struct as_ynode *map, const char *what, const char *const *allowed,
                        struct as_error *err)
{
    if (!map)
        return 0;
    if (map->kind == AS_YNODE_SCALAR && map->scalar[0] == '\0' && !map->quoted)
        return 0; /* `histsim:` with nothing after it means defaults */
    if (map->kind != AS_YNODE_MAP)
        return as_ynode_error(map, err, "%s: expected a mapping", what);
    for (size_t i = 0; i < map->n; i++) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(*a, map->keys[i]->scalar);
        if (!ok) {
            struct as_strbuf sb = AS_STRBUF_INIT;
            for (const char *const *a = allowed; *a; a++)
                as_strbuf_addf(&sb, "%s%s", a == allowed ? "" : ", ", *a);
            as_ynode_error(map->keys[i], err, "%s: unknown key '%s' (known: %s)", what, map->keys[i]->scalar,
                           sb.len ? sb.buf : "none");
            as_strbuf_release(&sb);
            return -1;
        }
    }
    return 0;
}

static int want_scalar(const struct as_ynode *n, const char *what, const char *type, struct as_error *err)
{
    if (n->kind != AS_YNODE_SCALAR)
        return as_ynode_error(n, err, "%s: expected %s, found a %s", what, type,
                              n->kind == AS_YNODE_MAP ? "mapping" : "sequence");
    return 0;
}

int as_ynode_to_int(const struct as_ynode *n, const char *what, int64_t lo, int64_t hi, int64_t *out,
                    struct as_error *err)
{
    if (want_scalar(n, what, "an integer", err))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(n->scalar, &end, 10);
    if (n->quoted || end == n->scalar || *end || errno)
        return as_ynode_error(n, err, "%s: expected an integer, found '%s'", what, n->scalar);
    if (v < lo || v > hi)
        return as_ynode_error(n, err, "%s: %lld is outside %lld..%lld", what, v, (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

int as_ynode_to_double(const struct as_ynode *n, const char *what, double *out, struct as_error *err)
{
    if (want_scalar(n, what, "a number", err))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(n->scalar, &end);
    if (n->quoted || end == n->scalar || *end || errno || !isfinite(v))
        return as_ynode_error(n, err, "%s: expected a finite number, found '%s'", what, n->scalar);
    *out = v;
    return 0;
}

static char *qualify(char *buf, size_t n, const char *what, const char *key)
{
    snprintf(buf, n, "%s%s%s", what ? what : "", what && *what ? "." : "", key);
    return buf;
}

int as_ynode_get_str(const struct as_ynode *map, const char *what, const char *key, const char *dflt,
                     const char **out, struct as_error *err)
{
    const struct as_ynode *n = as_ynode_get(map, key);
    char q[256];
    if (!n) {
        *out = dflt;
        return 0;
    }
    if (want_scalar(n, qualify(q, sizeof q, what, key), "a string", err))
        return -1;
    *out = n->scalar;
    return 0;
}

int as_ynode_get_int(const struct as_ynode *map, const char *what, const char *key, int64_t dflt, int64_t lo,
                     int64_t hi, int64_t *out, struct as_error *err)
{
    const struct as_ynode *n = as_ynode_get(map, key);
    char q[256];
    if (!n) {
        *out = dflt;
        return 0;
    }
    return as_ynode_to_int(n, qualify(q, sizeof q, what, key), lo, hi, out, err);
}

int as_ynode_get_double(const struct as_ynode *map, const char *what, const char *key, double dflt, double *out,
                        struct as_error *err)
{
    const struct as_ynode *n = as_ynode_get(map, key);
    char q[256];
    if (!n) {
        *out = dflt;
        return 0;
    }
    return as_ynode_to_double(n, qualify(q, sizeof q, what, key), out, err);
}

int as_ynode_get_bool(const struct as_ynode *map, const char *what, const char *key, int dflt, int *out,
                      struct as_error *err)
{
    const struct as_ynode *n = as_ynode_get(map, key);
    char q[256];
    if (!n) {
        *out = dflt;
        return 0;
    }
    if (want_scalar(n, qualify(q, sizeof q, what, key), "true or false", err))
        return -1;
    if (!strcmp(n->scalar, "true") || !strcmp(n->scalar, "True") || !strcmp(n->scalar, "yes"))
        *out = 1;
    else if (!strcmp(n->scalar, "false") || !strcmp(n->scalar, "False") || !strcmp(n->scalar, "no"))
        *out = 0;
    else
        return as_ynode_error(n, err, "%s: expected true or false, found '%s'", q, n->scalar);
    return 0;
}

int as_ynode_get_enum(const struct as_ynode *map, const char *what, const char *key, int dflt,
                      const char *const *choices, int *out, struct as_error *err)
{
    const struct as_ynode *n = as_ynode_get(map, key);
    char q[256];
    if (!n) {
        *out = dflt;
        return 0;
    }
    if (want_scalar(n, qualify(q, sizeof q, what, key), "a string", err))
        return -1;
    struct as_strbuf sb = AS_STRBUF_INIT;
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(choices[i], n->scalar)) {
            *out = i;
            as_strbuf_release(&sb);
            return 0;
        }
        as_strbuf_addf(&sb, "%s%s", i ? ", " : "", choices[i]);
    }
    as_ynode_error(n, err, "%s: '%s' is not one of: %s", q, n->scalar, as_strbuf_str(&sb));
    as_strbuf_release(&sb);
    return -1;
}

void as_ynode_dump(const struct as_ynode *n, struct as_strbuf *out)
{
    if (!n) {
        as_strbuf_addf(out, "{}");
        return;
    }
    switch (n->kind) {
    case AS_YNODE_SCALAR:
        as_strbuf_addf(out, n->quoted ? "'%s'" : "%s", n->scalar);
        break;
    case AS_YNODE_SEQ:
        as_strbuf_addf(out, "[");
        for (size_t i = 0; i < n->n; i++) {
            if (i)
                as_strbuf_addf(out, ", ");
            as_ynode_dump(n->items[i], out);
        }
        as_strbuf_addf(out, "]");
        break;
    default:
        as_strbuf_addf(out, "{");
        for (size_t i = 0; i < n->n; i++) {
            as_strbuf_addf(out, "%s%s: ", i ? ", " : "", n->keys[i]->scalar);
            as_ynode_dump(n->items[i], out);
        }
        as_strbuf_addf(out, "}");
        break;
    }
}
