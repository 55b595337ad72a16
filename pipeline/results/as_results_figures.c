/* as_results_figures.c: as_results_record_figures, the one serial update of a closed results
 * file (contract in as_results_read.h). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "as_results_impl.h"
#include "as_results_read.h"
#include "as_util.h"


int as_results_record_figures(const char *path, const char *names, struct as_error *err)
{
    struct as_results_h5_quiet q;
    as_results_h5_quiet_begin(&q);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    char *old = NULL;
    struct as_strbuf all = AS_STRBUF_INIT;
    int rc = -1;
    if (f < 0) {
        as_error_set(err, AS_ERR_IO, "cannot open '%s' read-write: figures not recorded in it", path);
        goto out;
    }
    if (as_results_h5_attr_str_read(f, AS_RESULTS_ATTR_FIGURES, &old) > 0 && old[0]) {
        as_strbuf_add(&all, old, strlen(old));
        if (all.buf[all.len - 1] != '\n')
            as_strbuf_add(&all, "\n", 1);
    }
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[700];
        if (len && len < sizeof line) {
            memcpy(line, p, len);
            line[len] = 0;
            if (!as_text_has_line(as_strbuf_str(&all), line))
                as_strbuf_addf(&all, "%s\n", line);
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (all.len && all.buf[all.len - 1] == '\n')
        all.buf[--all.len] = 0;   /* newline-separated, not terminated */
    if ((H5Aexists(f, AS_RESULTS_ATTR_FIGURES) > 0 && H5Adelete(f, AS_RESULTS_ATTR_FIGURES) < 0) ||
        as_results_h5_attr_str_write(f, AS_RESULTS_ATTR_FIGURES, as_strbuf_str(&all))) {
        as_error_set(err, AS_ERR_IO, "cannot write attribute '" AS_RESULTS_ATTR_FIGURES "' of '%s'", path);
        goto out;
    }
    rc = 0;
out:
    if (f >= 0 && H5Fclose(f) < 0 && !rc)
        rc = as_error_set(err, AS_ERR_IO, "cannot close '%s' after recording figures", path);
    free(old);
    as_strbuf_release(&all);
    as_results_h5_quiet_end(&q);
    return rc;
}
