/* as_report_impl.h: what the files of pipeline/report/ share, and nothing outside it uses. */
#ifndef AS_REPORT_AS_REPORT_IMPL_H
#define AS_REPORT_AS_REPORT_IMPL_H

#include "as_results_read.h"
#include "as_util.h"

/* String attribute `name` of /models/<model> (model NULL: the root) as an owned string, "" when
 * absent or malformed. */
char *as_report_attr(const struct as_results_file *rf, const char *model, const char *name);
/* 1 when /models/<model> has status failed. */
int as_report_model_failed(const struct as_results_file *rf, const char *model);
/* Append s to html with &, <, >, " escaped. */
void as_report_html_text(struct as_strbuf *html, const char *s);

#endif
