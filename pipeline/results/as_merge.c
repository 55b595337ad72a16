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
#include "as_results_impl.h"
#include "as_results_read.h"
#include "as_util.h"
#include "as_version.h"

static const char merge_usage[] =
    "usage: attnstat merge OUT.h5 PART.h5...\n"
    "Combines the part files of an array-mode sweep (attnstat run CONFIG --models <subset> -o PART.h5,\n"
    "same CONFIG for every part) into OUT.h5, identical under /models to a single run of CONFIG.\n";

struct part {
    const char *path;
    struct as_results_file *rf;    /* open read-only, NULL when closed */
    char *config, *config_path, *sweep_part, *start_time, *end_time, *command_line;
    char *overrides;               /* the run's --set overrides, one per line; NULL: none */
    char *tool_version, *git_commit; /* all owned; NULL when the attribute is absent */
    int64_t mpi_size;
    struct as_results_list models; /* the part's models, in its creation order */
};

/* A root string attribute of a part, owned; NULL if absent or not a string. */
static char *part_str(const struct part *p, const char *name)
{
    char *s = NULL;
    if (as_results_attr_str(p->rf, NULL, name, &s, NULL) <= 0)
        return NULL;
    return s;
}

static void part_release(struct part *p)
{
    as_results_close(p->rf);
    p->rf = NULL;
    free(p->config);
    free(p->config_path);
    free(p->overrides);
    free(p->sweep_part);
    free(p->start_time);
    free(p->end_time);
    free(p->command_line);
    free(p->tool_version);
    free(p->git_commit);
    as_results_list_release(&p->models);
}

/* Open one part and read what the checks need. */
static int part_open(struct part *p, struct as_error *err)
{
    if (access(p->path, R_OK) != 0)
        return as_error_set(err, AS_ERR_INPUT, "cannot open part '%s': %s", p->path, strerror(errno));
    if (as_results_open(p->path, &p->rf, err))
        return as_error_set(err, AS_ERR_INPUT, "part '%s' is not an HDF5 file", p->path);
    p->config = part_str(p, AS_RESULTS_ATTR_CONFIG);
    if (!p->config || !as_results_has_models(p->rf))
        return as_error_set(err, AS_ERR_INPUT, "part '%s' is not an attnstat results file (no root attribute "
                            "'" AS_RESULTS_ATTR_CONFIG "' or no /" AS_RESULTS_GROUP_MODELS ")", p->path);
    if (!as_results_is_complete(p->rf))
        return as_error_set(err, AS_ERR_INPUT, "part '%s' is not complete (root attribute " AS_RESULTS_ATTR_COMPLETE
                            " != 1): finish it with 'attnstat run ... --resume' before merging", p->path);
    p->config_path = part_str(p, AS_RESULTS_ATTR_CONFIG_PATH);
    p->overrides = part_str(p, AS_RESULTS_ATTR_CONFIG_OVERRIDES);
    p->sweep_part = part_str(p, AS_RESULTS_ATTR_SWEEP_PART);
    p->start_time = part_str(p, AS_RESULTS_ATTR_START_TIME);
    p->end_time = part_str(p, AS_RESULTS_ATTR_END_TIME);
    p->command_line = part_str(p, AS_RESULTS_ATTR_COMMAND_LINE);
    p->tool_version = part_str(p, AS_RESULTS_ATTR_TOOL_VERSION);
    p->git_commit = part_str(p, AS_RESULTS_ATTR_GIT_COMMIT);
    if (as_results_attr_i64(p->rf, NULL, AS_RESULTS_ATTR_MPI_SIZE, &p->mpi_size, NULL) <= 0)
        p->mpi_size = 0;
    if (as_results_models(p->rf, &p->models, err))
        return as_error_set(err, AS_ERR_INPUT, "part '%s': cannot list /" AS_RESULTS_GROUP_MODELS, p->path);
    return 0;
}

/* Scalar attributes of OUT (NULL strings written as ""): 0, or -1. */
static int put_str(hid_t obj, const char *name, const char *val)
{
    return as_results_h5_attr_str_write(obj, name, val ? val : "");
}

static int put_i64(hid_t obj, const char *name, int64_t v)
{
    return as_results_h5_attr_i64_write(obj, name, v);
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
                                "(root attribute '" AS_RESULTS_ATTR_CONFIG "' differs)", parts[i].path, parts[0].path);
    for (int m = 0; m < cfg->n_models; m++)
        owner[m] = -1;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < parts[i].models.n; k++) {
            const char *name = parts[i].models.v[k];
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
    nm->v = as_xrealloc(nm->v, (size_t)nm->n + 1, sizeof *nm->v);
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
        if (H5Aexists(d, AS_RESULTS_H5DS_DIMENSION_LIST) > 0 && H5Adelete(d, AS_RESULTS_H5DS_DIMENSION_LIST) < 0)
            rc = -1;
        if (H5Aexists(d, AS_RESULTS_H5DS_REFERENCE_LIST) > 0 && H5Adelete(d, AS_RESULTS_H5DS_REFERENCE_LIST) < 0)
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
        } else if (H5Aexists(s, AS_RESULTS_H5DS_DIMENSION_LIST) > 0) {
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
    snprintf(path, sizeof path, "/" AS_RESULTS_GROUP_MODELS "/%s", name);
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
    bad |= put_str(f, AS_RESULTS_ATTR_TOOL, AS_RESULTS_TOOL_NAME);
    bad |= put_str(f, AS_RESULTS_ATTR_TOOL_VERSION, as_version());
    bad |= put_str(f, AS_RESULTS_ATTR_GIT_COMMIT, as_git_describe());
    bad |= put_str(f, AS_RESULTS_ATTR_CONFIG, parts[0].config);
    bad |= put_str(f, AS_RESULTS_ATTR_CONFIG_PATH, parts[0].config_path);
    if (parts[0].overrides && parts[0].overrides[0])
        bad |= put_str(f, AS_RESULTS_ATTR_CONFIG_OVERRIDES, parts[0].overrides);
    bad |= put_str(f, AS_RESULTS_ATTR_COMMAND_LINE, command_line);
    bad |= put_str(f, AS_RESULTS_ATTR_START_TIME, t0);
    bad |= put_str(f, AS_RESULTS_ATTR_END_TIME, t1);
    bad |= put_str(f, AS_RESULTS_ATTR_MERGE_TIME, now);
    bad |= put_i64(f, AS_RESULTS_ATTR_MPI_SIZE, mpi_size);
    bad |= put_str(f, AS_RESULTS_ATTR_MERGED_FROM, as_strbuf_str(&from));
    as_strbuf_release(&from);

    /* /run/parts/<i>: each part's per-rank figures */
    hid_t run = bad ? -1 : group_create(f, AS_RESULTS_GROUP_RUN);
    hid_t pg = run >= 0 ? group_create(run, AS_RESULTS_GROUP_PARTS) : -1;
    if (pg < 0 && !bad) {
        bad = 1;
        what = "/" AS_RESULTS_GROUP_RUN "/" AS_RESULTS_GROUP_PARTS;
    }
    for (int i = 0; i < n && !bad; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d", i);
        hid_t pf = as_results_hid(parts[i].rf);
        if (H5Lexists(pf, AS_RESULTS_GROUP_RUN, H5P_DEFAULT) > 0) {
            if (H5Ocopy(pf, AS_RESULTS_GROUP_RUN, pg, name, H5P_DEFAULT, H5P_DEFAULT) < 0) {
                bad = 1;
                what = "/" AS_RESULTS_GROUP_RUN " of a part";
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
        bad |= put_str(g, AS_RESULTS_ATTR_PART_FILE, parts[i].path);
        bad |= put_str(g, AS_RESULTS_ATTR_SWEEP_PART, parts[i].sweep_part);
        bad |= put_i64(g, AS_RESULTS_ATTR_MPI_SIZE, parts[i].mpi_size);
        bad |= put_str(g, AS_RESULTS_ATTR_START_TIME, parts[i].start_time);
        bad |= put_str(g, AS_RESULTS_ATTR_END_TIME, parts[i].end_time);
        bad |= put_str(g, AS_RESULTS_ATTR_COMMAND_LINE, parts[i].command_line);
        H5Gclose(g);
        if (bad)
            what = "/" AS_RESULTS_GROUP_RUN "/" AS_RESULTS_GROUP_PARTS " attributes";
    }
    if (pg >= 0)
        H5Gclose(pg);
    if (run >= 0)
        H5Gclose(run);

    /* /models/<name>, in the config's order, so the merged file lists them as one run would */
    hid_t mg = bad ? -1 : group_create(f, AS_RESULTS_GROUP_MODELS);
    if (mg < 0 && !bad) {
        bad = 1;
        what = "/" AS_RESULTS_GROUP_MODELS;
    }
    char where[AS_NAME_MAX + AS_PATH_MAX + 32];
    for (int m = 0; m < cfg->n_models && !bad; m++) {
        const struct part *p = &parts[owner[m]];
        if (copy_model(as_results_hid(p->rf), cfg->models[m].name, mg) < 0) {
            bad = 1;
            snprintf(where, sizeof where, "model '%s' (from '%s')", cfg->models[m].name, p->path);
            what = where;
        }
    }
    if (mg >= 0)
        H5Gclose(mg);
    if (!bad)
        bad |= put_i64(f, AS_RESULTS_ATTR_COMPLETE, 1);
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
    for (int i = 0; i < n; i++)
        parts[i].path = argv[2 + i];
    struct as_error err = { 0 };
    struct as_config cfg = { 0 };
    int have_cfg = 0, *owner = NULL, rc = 0;
    char *merge_ovbuf = NULL;
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
        /* the parts' --set overrides (the same in every part: the same config), applied again */
        const char *ov = parts[0].overrides ? parts[0].overrides : "";
        for (int i = 1; i < n && !rc; i++)
            if (strcmp(ov, parts[i].overrides ? parts[i].overrides : ""))
                rc = as_error_set(&err, AS_ERR_INPUT, "part '%s' was run with other --set overrides than part '%s' "
                                  "(root attribute '" AS_RESULTS_ATTR_CONFIG_OVERRIDES "' differs)", parts[i].path,
                                  parts[0].path);
        char *ovbuf = as_xstrdup(ov);
        const char *sets[256];
        int n_sets = 0;
        for (char *line = ovbuf; *line && n_sets < 256;) { /* one override per line */
            char *e = strchr(line, '\n');
            sets[n_sets++] = line;
            if (!e)
                break;
            *e = '\0';
            line = e + 1;
        }
        /* relative paths in it (sweep roots) resolve as in the run: run merge where the parts ran */
        if (!rc && as_config_parse_set(&cfg, cp, dir, parts[0].config, sets, n_sets, &err))
            rc = as_error_prefix(&err, "part '%s': cannot list the models of its config (merge re-reads it, from "
                                 "the folder the parts ran in, to check that no model is missing): ",
                                 parts[0].path);
        else if (!rc)
            have_cfg = 1;
        merge_ovbuf = ovbuf; /* the config may keep pointers into it: freed with it, below */
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
    free(merge_ovbuf);
    return code;
}
