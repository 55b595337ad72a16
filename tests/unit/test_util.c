/* test_util.c: the allocators of the out-of-memory policy (as_util.h): an impossible request ends
 * the process with exit 7 and one line naming the bytes and the caller's file:line. Each case
 * runs in a child (this program run again with the case's name), with ASan told to return NULL
 * rather than report, as a failing malloc does in production. */
#undef NDEBUG
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "as_error.h"
#include "as_test.h"
#include "as_util.h"

/* Sizes the compiler cannot see, so that it does not warn about them. */
static volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2 + 1;

/* Each case prints the line of its call on stdout, then makes the call, which must not return. */
static int oom_case(const char *name)
{
    void *p = NULL;
    if (!strcmp(name, "malloc")) {
        printf("%d\n", __LINE__ + 1), fflush(stdout);
        p = as_xmalloc(huge);
    } else if (!strcmp(name, "calloc")) {
        printf("%d\n", __LINE__ + 1), fflush(stdout);
        p = as_xcalloc(half, 4);
    } else if (!strcmp(name, "realloc")) {
        printf("%d\n", __LINE__ + 1), fflush(stdout);
        p = as_xrealloc(NULL, half, 2);
    } else {
        return 2;
    }
    free(p);
    return 0; /* returned: the test sees exit 0, not 7 */
}

/* Run `self oom <name>`; its exit status, stdout (the line) and stderr (the message). */
static int run_case(const char *self, const char *name, char *out, size_t nout, char *msg, size_t nmsg)
{
    int po[2], pe[2];
    if (pipe(po) || pipe(pe))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        setenv("ASAN_OPTIONS", "allocator_may_return_null=1", 1);
        execl(self, self, "oom", name, (char *)NULL);
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    ssize_t a = read(po[0], out, nout - 1), b = 0, got;
    while (b < (ssize_t)nmsg - 1 && (got = read(pe[0], msg + b, nmsg - 1 - (size_t)b)) > 0)
        b += got;
    out[a > 0 ? a : 0] = '\0';
    msg[b > 0 ? b : 0] = '\0';
    close(po[0]), close(pe[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check_case(const char *name, const char *bytes)
{
    char out[64], msg[1024], where[64];
    int code = run_case("/proc/self/exe", name, out, sizeof out, msg, sizeof msg);
    CHECK_MSG(code == AS_EXIT_NOMEM, "as_x%s: exit %d, want %d; stderr: %s", name, code, AS_EXIT_NOMEM, msg);
    snprintf(where, sizeof where, "test_util.c:%d", atoi(out));
    CHECK_MSG(atoi(out) > 0 && strstr(msg, where), "as_x%s: message does not name %s: %s", name, where, msg);
    CHECK_MSG(strstr(msg, "out of memory: ") && strstr(msg, bytes), "as_x%s: message does not say '%s': %s", name,
              bytes, msg);
    /* one line of ours; a sanitizer's own lines ("==pid==WARNING: ...", under ASan) aside */
    const char *ours = msg;
    while (ours[0] == '=' && ours[1] == '=' && strchr(ours, '\n'))
        ours = strchr(ours, '\n') + 1;
    CHECK_MSG(strchr(ours, '\n') == ours + strlen(ours) - 1, "as_x%s: not one line: %s", name, msg);
}

static void test_util__xmalloc_impossible_exits_7(void)
{
    char bytes[64];
    snprintf(bytes, sizeof bytes, "%zu bytes at ", (size_t)SIZE_MAX);
    check_case("malloc", bytes);
}

static void test_util__xcalloc_overflow_exits_7(void)
{
    char bytes[64];
    snprintf(bytes, sizeof bytes, "%zu x 4 bytes", (size_t)(SIZE_MAX / 2 + 1));
    check_case("calloc", bytes);
}

static void test_util__xrealloc_overflow_exits_7(void)
{
    char bytes[64];
    snprintf(bytes, sizeof bytes, "%zu x 2 bytes", (size_t)(SIZE_MAX / 2 + 1));
    check_case("realloc", bytes);
}

static void test_util__zero_bytes_allocate(void)
{
    void *a = as_xmalloc(0), *b = as_xcalloc(0, 8), *c = as_xrealloc(NULL, 0, 8);
    CHECK(a && b && c);
    free(a), free(b), free(c);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "oom"))
        return oom_case(argv[2]);
    TEST_RUN(test_util__xmalloc_impossible_exits_7);
    TEST_RUN(test_util__xcalloc_overflow_exits_7);
    TEST_RUN(test_util__xrealloc_overflow_exits_7);
    TEST_RUN(test_util__zero_bytes_allocate);
    return as_test_done();
}
