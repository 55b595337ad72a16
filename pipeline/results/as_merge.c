/* as_merge.c: `attnstat merge`: array-mode part files -> one results file (serial HDF5). Every part
 * is checked before OUT.partial is created, so a refused merge writes nothing. */
#include "as_merge.h"

#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "as_config.h"
#include "as_error.h"
#include "as_util.h"
#include "as_version.h"

static const char merge_usage[] =
    "usage: attnstat merge OUT.h5 PART.h5...\n"
    "Combines the part files of an array-mode sweep (attnstat run CONFIG --models <subset> -o PART.h5,\n"
    "same CONFIG for every part) into OUT.h5, identical under /models to a single run of CONFIG.\n";

struct part {
    const char *path;
    hid_t f;                       /* open read-only, -1 when closed */
    char *config, *config_path, *sweep_part, *start_time, *end_time, *command_line;
    char *tool_version, *git_commit; /* all owned; NULL when the attribute is absent */
    int64_t mpi_size;
    char **models;                 /* owned, n_models names in the part's creation order */
    int n_models;
};

/* A root/group string attribute (variable-length or fixed) as an owned C string; NULL if absent
 * or not a string. */
static char *attr_str_read(hid_t obj, const char *name)
{
    if (H5Aexists(obj, name) <= 0)
        return NULL;
    char *out = NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    if (t >= 0 && H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            if (H5Aread(a, mt, &s) >= 0 && s) {
                out = as_xstrdup(s);
                H5free_memory(s);
            }
            H5Tclose(mt);
        } else {
            size_t n = H5Tget_size(t);
            out = as_xcalloc(n + 1, 1);
            if (H5Aread(a, t, out) < 0) {
                free(out);
                out = NULL;
            }
        }
    }
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return out;
}

/* An integer attribute; 0 and *ok = 0 if absent or unreadable. */
static int64_t attr_i64_read(hid_t obj, const char *name, int *ok)
{
    int64_t v = 0;
    *ok = 0;
    if (H5Aexists(obj, name) <= 0)
        return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &v) >= 0)
        *ok = 1;
    if (a >= 0)
        H5Aclose(a);
    return v;
}

static int attr_str_write(hid_t obj, const char *name, const char *val)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &val) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static int attr_i64_write(hid_t obj, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(obj, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    struct part *p = data;
    p->models = realloc(p->models, (size_t)(p->n_models + 1) * sizeof *p->models);
    if (!p->models)
        return -1;
    p->models[p->n_models++] = as_xstrdup(name);
    return 0;
}

static void part_release(struct part *p)
{
    if (p->f >= 0)
        H5Fclose(p->f);
    p->f = -1;
    free(p->config);
    free(p->config_path);
    free(p->sweep_part);
    free(p->start_time);
    free(p->end_time);
    free(p->command_line);
    free(p->tool_version);
    free(p->git_commit);
    for (int i = 0; i < p->n_models; i++)
        free(p->models[i]);
    free(p->models);
    p->models = NULL;
    p->n_models = 0;
}

/* Open one part and read what the checks need. */
static int part_open(struct part *p, struct as_error *err)
{
    if (access(p->path, R_OK) != 0)
        return as_error_set(err, AS_ERR_INPUT, "cannot open part '%s': %s", p->path, strerror(errno));
    p->f = H5Fopen(p->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (p->f < 0)
        return as_error_set(err, AS_ERR_INPUT, "part '%s' is not an HDF5 file", p->path);
    p->config = attr_str_read(p->f, "config");
    if (!p->config || H5Lexists(p->f, "models", H5P_DEFAULT) <= 0)
        return as_error_set(err, AS_ERR_INPUT, "part '%s' is not an attnstat results file (no root attribute "
                            "'config' or no /models)", p->path);
    int ok;
    int64_t complete = attr_i64_read(p->f, "complete", &ok);
    if (!ok || complete != 1)
        return as_error_set(err, AS_ERR_INPUT, "part '%s' is not complete (root attribute complete != 1): finish "
                            "it with 'attnstat run ... --resume' before merging", p->path);
    p->config_path = attr_str_read(p->f, "config_path");
    p->sweep_part = attr_str_read(p->f, "sweep_part");
    p->start_time = attr_str_read(p->f, "start_time");
    p->end_time = attr_str_read(p->f, "end_time");
    p->command_line = attr_str_read(p->f, "command_line");
    p->tool_version = attr_str_read(p->f, "tool_version");
    p->git_commit = attr_str_read(p->f, "git_commit");
    p->mpi_size = attr_i64_read(p->f, "mpi_size", &ok);
    hid_t g = H5Gopen2(p->f, "models", H5P_DEFAULT);
    if (g < 0)
        return as_error_set(err, AS_ERR_INPUT, "part '%s': cannot open /models", p->path);
    hsize_t idx = 0;
    herr_t rc = H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect_name, p);
    if (rc < 0 && p->n_models == 0) { /* written without creation order: name order */
        idx = 0;
        rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, p);
    }
    H5Gclose(g);
    if (rc < 0)
        return as_error_set(err, AS_ERR_INPUT, "part '%s': cannot list /models", p->path);
    return 0;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int str_eq(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

/* mkdir -p of the folder of `path`. */
static int make_parent(const char *path)
{
    char d[AS_PATH_MAX];
    as_strlcpy(d, path, sizeof d);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d)
        return 0;
    *slash = '\0';
    for (char *c = d + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            if (mkdir(d, 0777) && errno != EEXIST)
                return -1;
            *c = '/';
        }
    return mkdir(d, 0777) && errno != EEXIST ? -1 : 0;
}

static hid_t group_create(hid_t parent, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

/* The checks across parts and against the config; owner receives, for each model of the
 * config in config order, the index of the part that has it. */
static int check_parts(struct part *parts, int n, const struct as_config *cfg, int *owner, struct as_error *err)
{
    for (int i = 1; i < n; i++)
        if (strcmp(parts[i].config, parts[0].config))
            return as_error_set(err, AS_ERR_INPUT, "part '%s' was made from a different config than part '%s' "
                                "(root attribute 'config' differs)", parts[i].path, parts[0].path);
    for (int m = 0; m < cfg->n_models; m++)
        owner[m] = -1;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < parts[i].n_models; k++) {
            const char *name = parts[i].models[k];
            int m = 0;
            while (m < cfg->n_models && strcmp(cfg->models[m].name, name))
                m++;
            if (m == cfg->n_models)
                return as_error_set(err, AS_ERR_INPUT, "part '%s' has model '%s', which its config does not name",
                                    parts[i].path, name);
            if (owner[m] >= 0)
                return as_error_set(err, AS_ERR_INPUT, "model '%s' is in two parts: '%s' and '%s'", name,
                                    parts[owner[m]].path, parts[i].path);
            owner[m] = i;
        }
    int missing = 0;
    struct as_strbuf sb = AS_STRBUF_INIT;
    for (int m = 0; m < cfg->n_models; m++)
        if (owner[m] < 0) {
            if (missing < 5)
                as_strbuf_addf(&sb, "%s'%s'", missing ? ", " : "", cfg->models[m].name);
            missing++;
        }
    if (missing) {
        as_error_set(err, AS_ERR_INPUT, "%d model%s of the config %s in no part (%s%s): merge every part of the "
                     "sweep", missing, missing == 1 ? "" : "s", missing == 1 ? "is" : "are", as_strbuf_str(&sb),
                     missing > 5 ? ", ..." : "");
        as_strbuf_release(&sb);
        return -1;
    }
    return 0;
}

static char *join_args(int argc, char **argv)
{
    struct as_strbuf sb = AS_STRBUF_INIT;
    as_strbuf_addf(&sb, "attnstat");
    for (int i = 0; i < argc; i++)
        as_strbuf_addf(&sb, " %s", argv[i]);
    return sb.buf;
}

/* ---- dimension scales. H5Ocopy copies the DIMENSION_LIST and REFERENCE_LIST attributes with the
 * object addresses of the source file (HDF5 1.10 does not remap references stored in attributes,
 * with or without H5O_COPY_EXPAND_REFERENCE_FLAG), so they are dropped from the copy and the
 * scales are attached again from the source's attachments, in the source's creation order. */

struct names {
    char **v;
    int n;
};

static herr_t collect_dataset(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    struct names *nm = data;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    char **v = realloc(nm->v, (size_t)(nm->n + 1) * sizeof *v);
    if (!v)
        return -1;
    nm->v = v;
    nm->v[nm->n++] = as_xstrdup(name);
    return 0;
}

struct scale_ctx {
    hid_t dst_group;               /* the copied model group */
    hid_t dst_ds;                  /* the copied dataset */
    size_t prefix_len;             /* length of the source model group's path + 1 */
    const char *src_group;         /* path of the source model group, e.g. /models/m */
    int failed;
};

static herr_t reattach_one(hid_t dset, unsigned dim, hid_t scale, void *data)
{
    struct scale_ctx *c = data;
    char path[AS_PATH_MAX];
    ssize_t len = H5Iget_name(scale, path, sizeof path);
    /* a scale outside the model group would not be copied: leave the dimension without it */
    if (len <= 0 || (size_t)len >= sizeof path || strncmp(path, c->src_group, c->prefix_len - 1) ||
        path[c->prefix_len - 1] != '/')
        return 0;
    hid_t sc = H5Dopen2(c->dst_group, path + c->prefix_len, H5P_DEFAULT);
    if (sc < 0 || H5DSattach_scale(c->dst_ds, sc, dim) < 0)
        c->failed = 1;
    if (sc >= 0)
        H5Dclose(sc);
    return c->failed ? -1 : 0;
}

static int reattach_scales(hid_t src_group, hid_t dst_group)
{
    struct names nm = { NULL, 0 };
    int rc = 0;
    if (H5Ovisit2(src_group, H5_INDEX_CRT_ORDER, H5_ITER_INC, collect_dataset, &nm, H5O_INFO_BASIC) < 0) {
        for (int i = 0; i < nm.n; i++)
            free(nm.v[i]);
        nm.n = 0;
        if (H5Ovisit2(src_group, H5_INDEX_NAME, H5_ITER_INC, collect_dataset, &nm, H5O_INFO_BASIC) < 0)
            rc = -1;
    }
    /* pass 1: drop the stale references from every copied dataset */
    for (int i = 0; i < nm.n && !rc; i++) {
        hid_t d = H5Dopen2(dst_group, nm.v[i], H5P_DEFAULT);
        if (d < 0) {
            rc = -1;
            break;
        }
        if (H5Aexists(d, "DIMENSION_LIST") > 0 && H5Adelete(d, "DIMENSION_LIST") < 0)
            rc = -1;
        if (H5Aexists(d, "REFERENCE_LIST") > 0 && H5Adelete(d, "REFERENCE_LIST") < 0)
            rc = -1;
        H5Dclose(d);
    }
    /* pass 2: attach what the source attached, dimension by dimension */
    char src_path[AS_PATH_MAX];
    ssize_t plen = H5Iget_name(src_group, src_path, sizeof src_path);
    if (plen <= 0 || (size_t)plen >= sizeof src_path)
        rc = -1;
    for (int i = 0; i < nm.n && !rc; i++) {
        hid_t s = H5Dopen2(src_group, nm.v[i], H5P_DEFAULT), d = H5Dopen2(dst_group, nm.v[i], H5P_DEFAULT);
        if (s < 0 || d < 0) {
            rc = -1;
        } else if (H5Aexists(s, "DIMENSION_LIST") > 0) {
            hid_t sp = H5Dget_space(s);
            int nd = H5Sget_simple_extent_ndims(sp);
            H5Sclose(sp);
            struct scale_ctx c = { dst_group, d, (size_t)plen + 1, src_path, 0 };
            for (int dim = 0; dim < nd && !rc; dim++)
                if (H5DSget_num_scales(s, (unsigned)dim) > 0 &&
                    (H5DSiterate_scales(s, (unsigned)dim, NULL, reattach_one, &c) < 0 || c.failed))
                    rc = -1;
        }
        if (s >= 0)
            H5Dclose(s);
        if (d >= 0)
            H5Dclose(d);
    }
    for (int i = 0; i < nm.n; i++)
        free(nm.v[i]);
    free(nm.v);
    return rc;
}

/* Copy /models/<name> of src into dst_models, with its dimension scales. */
static int copy_model(hid_t src, const char *name, hid_t dst_models)
{
    char path[AS_NAME_MAX + 16];
    snprintf(path, sizeof path, "/models/%s", name);
    if (H5Ocopy(src, path, dst_models, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
        return -1;
    hid_t sg = H5Gopen2(src, path, H5P_DEFAULT), dg = H5Gopen2(dst_models, name, H5P_DEFAULT);
    int rc = sg >= 0 && dg >= 0 ? reattach_scales(sg, dg) : -1;
    if (sg >= 0)
        H5Gclose(sg);
    if (dg >= 0)
        H5Gclose(dg);
    return rc;
}

/* Write OUT.partial and rename it to OUT. */
static int write_merged(const char *out, struct part *parts, int n, const struct as_config *cfg, const int *owner,
                        const char *command_line, struct as_error *err)
{
    char tmp[AS_PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.partial", out);
    if (make_parent(out))
        return as_error_set(err, AS_ERR_IO, "cannot create the folder of '%s': %s", out, strerror(errno));
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (f < 0)
        return as_error_set(err, AS_ERR_IO, "cannot create '%s' (does its folder exist and is it writable?)", tmp);

    /* provenance: the merge's tool and command line, the parts' config and time span */
    struct as_strbuf from = AS_STRBUF_INIT;
    const char *t0 = "", *t1 = "";
    int64_t mpi_size = 0;
    for (int i = 0; i < n; i++) {
        as_strbuf_addf(&from, "%s%s", i ? "\n" : "", parts[i].path);
        if (parts[i].start_time && (!*t0 || strcmp(parts[i].start_time, t0) < 0))
            t0 = parts[i].start_time;
        if (parts[i].end_time && strcmp(parts[i].end_time, t1) > 0)
            t1 = parts[i].end_time;
        if (parts[i].mpi_size > mpi_size)
            mpi_size = parts[i].mpi_size;
    }
    char now[32];
    as_iso_time(now, sizeof now);
    int bad = 0;
    const char *what = "root attributes";
    bad |= attr_str_write(f, "tool", "attnstat");
    bad |= attr_str_write(f, "tool_version", as_version());
    bad |= attr_str_write(f, "git_commit", as_git_describe());
    bad |= attr_str_write(f, "config", parts[0].config);
    bad |= attr_str_write(f, "config_path", parts[0].config_path ? parts[0].config_path : "");
    bad |= attr_str_write(f, "command_line", command_line);
    bad |= attr_str_write(f, "start_time", t0);
    bad |= attr_str_write(f, "end_time", t1);
    bad |= attr_str_write(f, "merge_time", now);
    bad |= attr_i64_write(f, "mpi_size", mpi_size);
    bad |= attr_str_write(f, "merged_from", as_strbuf_str(&from));
    as_strbuf_release(&from);

    /* /run/parts/<i>: each part's per-rank figures */
    hid_t run = bad ? -1 : group_create(f, "run"), pg = run >= 0 ? group_create(run, "parts") : -1;
    if (pg < 0 && !bad) {
        bad = 1;
        what = "/run/parts";
    }
    for (int i = 0; i < n && !bad; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d", i);
        if (H5Lexists(parts[i].f, "run", H5P_DEFAULT) > 0) {
            if (H5Ocopy(parts[i].f, "run", pg, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
                bad = 1;
                what = "/run of a part";
                break;
            }
        } else {
            hid_t e = group_create(pg, name);
            if (e >= 0)
                H5Gclose(e);
        }
        hid_t g = H5Gopen2(pg, name, H5P_DEFAULT);
        if (g < 0) {
            bad = 1;
            break;
        }
        bad |= attr_str_write(g, "file", parts[i].path);
        bad |= attr_str_write(g, "sweep_part", parts[i].sweep_part ? parts[i].sweep_part : "");
        bad |= attr_i64_write(g, "mpi_size", parts[i].mpi_size);
        bad |= attr_str_write(g, "start_time", parts[i].start_time ? parts[i].start_time : "");
        bad |= attr_str_write(g, "end_time", parts[i].end_time ? parts[i].end_time : "");
        bad |= attr_str_write(g, "command_line", parts[i].command_line ? parts[i].command_line : "");
        H5Gclose(g);
        if (bad)
            what = "/run/parts attributes";
    }
    if (pg >= 0)
        H5Gclose(pg);
    if (run >= 0)
        H5Gclose(run);

    /* /models/<name>, in the config's order, so the merged file lists them as one run would */
    hid_t mg = bad ? -1 : group_create(f, "models");
    if (mg < 0 && !bad) {
        bad = 1;
        what = "/models";
    }
    char where[AS_NAME_MAX + AS_PATH_MAX + 32];
    for (int m = 0; m < cfg->n_models && !bad; m++) {
        const struct part *p = &parts[owner[m]];
        if (copy_model(p->f, cfg->models[m].name, mg) < 0) {
            bad = 1;
            snprintf(where, sizeof where, "model '%s' (from '%s')", cfg->models[m].name, p->path);
            what = where;
        }
    }
    if (mg >= 0)
        H5Gclose(mg);
    if (!bad)
        bad |= attr_i64_write(f, "complete", 1);
    if (H5Fclose(f) < 0 && !bad) {
        bad = 1;
        what = "closing the file";
    }
    if (bad) {
        unlink(tmp);
        return as_error_set(err, AS_ERR_IO, "cannot write '%s': %s", tmp, what);
    }
    if (rename(tmp, out) != 0) {
        as_error_set(err, AS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, out, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int as_merge_cli(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(merge_usage, stdout);
            return AS_EXIT_OK;
        }
        if (argv[i][0] == '-' && argv[i][1])
            return as_usage_error(merge_usage, "unknown option '%s' for merge", argv[i]);
    }
    if (argc < 3)
        return as_usage_error(merge_usage, "%s", "merge needs OUT.h5 and at least one PART.h5");
    const char *out = argv[1];
    int n = argc - 2;
    for (int i = 0; i < n; i++) {
        if (same_file(out, argv[2 + i]) || !strcmp(out, argv[2 + i]))
            return as_usage_error(merge_usage, "merge: OUT '%s' is also given as a part", out);
        for (int j = 0; j < i; j++)
            if (!strcmp(argv[2 + i], argv[2 + j]) || same_file(argv[2 + i], argv[2 + j]))
                return as_usage_error(merge_usage, "merge: part '%s' is given twice", argv[2 + i]);
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    struct part *parts = as_xcalloc((size_t)n, sizeof *parts);
    for (int i = 0; i < n; i++) {
        parts[i].path = argv[2 + i];
        parts[i].f = -1;
    }
    struct as_error err = { 0 };
    struct as_config cfg = { 0 };
    int have_cfg = 0, *owner = NULL, rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = part_open(&parts[i], &err);
    if (!rc) {
        /* the model list comes from the config text itself, so a forgotten part is noticed */
        const char *cp = parts[0].config_path && *parts[0].config_path ? parts[0].config_path : "config";
        char dir[AS_PATH_MAX];
        as_strlcpy(dir, cp, sizeof dir);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            as_strlcpy(dir, ".", sizeof dir);
        /* relative paths in it (sweep roots) resolve as in the run: run merge where the parts ran */
        if (as_config_parse(&cfg, cp, dir, parts[0].config, &err))
            rc = as_error_prefix(&err, "part '%s': cannot list the models of its config (merge re-reads it, from "
                                 "the folder the parts ran in, to check that no model is missing): ",
                                 parts[0].path);
        else
            have_cfg = 1;
        if (rc && err.status != AS_ERR_INPUT)
            err.status = AS_ERR_INPUT;
    }
    if (!rc) {
        owner = as_xcalloc((size_t)cfg.n_models, sizeof *owner);
        rc = check_parts(parts, n, &cfg, owner, &err);
    }
    if (!rc) {
        for (int i = 1; i < n; i++)
            if (!str_eq(parts[i].git_commit, parts[0].git_commit) ||
                !str_eq(parts[i].tool_version, parts[0].tool_version)) {
                fprintf(stderr, "attnstat: warning: parts '%s' and '%s' were written by different attnstat builds "
                        "(%s %s vs %s %s)\n", parts[0].path, parts[i].path, parts[0].tool_version ? parts[0].tool_version : "?",
                        parts[0].git_commit ? parts[0].git_commit : "?",
                        parts[i].tool_version ? parts[i].tool_version : "?",
                        parts[i].git_commit ? parts[i].git_commit : "?");
                break;
            }
        char *cmdline = join_args(argc, argv);
        rc = write_merged(out, parts, n, &cfg, owner, cmdline, &err);
        free(cmdline);
    }
    int code = 0;
    if (rc) {
        fprintf(stderr, "attnstat: error: %s\n", err.msg);
        code = as_status_exit_code(err.status);
    }
    for (int i = 0; i < n; i++)
        part_release(&parts[i]);
    free(parts);
    free(owner);
    if (have_cfg)
        as_config_release(&cfg);
    return code;
}
