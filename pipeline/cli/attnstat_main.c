/* attnstat_main.c: the thin main: argv -> as_main(). */
#include "as_run.h"

int main(int argc, char **argv)
{
    return as_main(argc, argv);
}
