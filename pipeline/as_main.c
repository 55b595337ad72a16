/* as_main.c: command-line parsing and dispatch. */
#include <stdio.h>
#include "as_run.h"
int as_main(int argc, char **argv) { (void)argc; (void)argv; puts("attnstat " AS_VERSION); return 0; }
