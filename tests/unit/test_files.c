//  Unit tests for the files service's handler (workers/files.c), outside any worker (so
//  nothing is streamed) on a directory tree made for each test: symbolic links that stay
//  under the root are followed, those that lead out are refused, whether they are the last
//  component or a directory on the way, absolute or relative; link loops end; a FIFO or a
//  directory is refused for reading at once instead of blocking a handler thread; and a root
//  of "/" serves paths under it.
#define _GNU_SOURCE                 //  mkdtemp, realpath

#include "files.h"
#include "zm_json.h"

#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    char top[PATH_MAX];             //  the test's directory, resolved
    char root[PATH_MAX + 8];        //  top/root: what is served
    zw_files_t *files;
} s_fixture_t;

static void
s_write(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

static int
s_setup(void **state)
{
    s_fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *tmpdir = getenv("TMPDIR");
    char pattern[PATH_MAX];
    snprintf(pattern, sizeof pattern, "%s/zmesh-files-XXXXXX", tmpdir ? tmpdir : "/tmp");
    assert_non_null(mkdtemp(pattern));
    assert_non_null(realpath(pattern, fx->top));
    char path[2 * PATH_MAX];
    snprintf(fx->root, sizeof fx->root, "%s/root", fx->top);
    assert_int_equal(mkdir(fx->root, 0755), 0);
    snprintf(path, sizeof path, "%s/outside", fx->top);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/outside/secret.txt", fx->top);
    s_write(path, "secret\n");
    snprintf(path, sizeof path, "%s/sub", fx->root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/top.txt", fx->root);
    s_write(path, "top\n");
    snprintf(path, sizeof path, "%s/sub/inner.txt", fx->root);
    s_write(path, "inner\n");
    char error[256];
    fx->files = zw_files_new(fx->root, error, sizeof error);
    assert_non_null(fx->files);
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fixture_t *fx = *state;
    zw_files_destroy(&fx->files);
    char command[PATH_MAX + 32];
    snprintf(command, sizeof command, "rm -rf '%s'", fx->top);
    assert_int_equal(system(command), 0);
    free(fx);
    return 0;
}

//  A symbolic link at root/name to target.
static void
s_link(const s_fixture_t *fx, const char *name, const char *target)
{
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", fx->root, name);
    assert_int_equal(symlink(target, path), 0);
}

//  Sends the JSON request to the handler; returns its status and the reply as JSON.
static int
s_call(zw_files_t *files, const char *json, char *reply, size_t size)
{
    char *body;
    size_t body_size;
    assert_int_equal(zm_json_to_msgpack(json, strlen(json), &body, &body_size, NULL, 0), ZMESH_OK);
    zmesh_msg_t *request = zmesh_msg_new(body, body_size);
    free(body);
    zmesh_msg_t *answer = NULL;
    int rc = zw_files_handler(request, &answer, files);
    zmesh_msg_destroy(&request);
    assert_non_null(answer);
    char *text;
    assert_int_equal(zm_msgpack_to_json(zmesh_msg_data(answer), zmesh_msg_size(answer), &text,
                                        NULL, 0),
                     ZMESH_OK);
    snprintf(reply, size, "%s", text);
    free(text);
    zmesh_msg_destroy(&answer);
    return rc;
}

#define S_EXPECT(files, json, expected_rc, expected_text)                                   \
    do {                                                                                    \
        char reply_[4096];                                                                  \
        int rc_ = s_call((files), (json), reply_, sizeof reply_);                           \
        if (rc_ != (expected_rc) || !strstr(reply_, (expected_text)))                       \
            fail_msg("%s: rc %d, reply %s; wanted rc %d and \"%s\"", (json), rc_, reply_,   \
                     (expected_rc), (expected_text));                                       \
    } while (0)

static void
test_files_links_inside_are_followed(void **state)
{
    s_fixture_t *fx = *state;
    char target[2 * PATH_MAX];
    s_link(fx, "sub/up", "../top.txt");                 //  ".." in a link, still inside
    s_link(fx, "here", ".");
    s_link(fx, "subdir", "sub");
    snprintf(target, sizeof target, "%s/sub/inner.txt", fx->root);
    s_link(fx, "absolute-in", target);                  //  absolute, under the root
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"sub/up\"}", ZMESH_OK, "\"size\":4");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"here/here/subdir/inner.txt\"}", ZMESH_OK,
             "\"size\":6");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"absolute-in\"}", ZMESH_OK, "\"size\":6");
    S_EXPECT(fx->files, "{\"op\":\"stat\",\"path\":\"subdir\"}", ZMESH_OK, "\"type\":\"dir\"");
    S_EXPECT(fx->files, "{\"op\":\"list\",\"path\":\"subdir\"}", ZMESH_OK, "inner.txt");
    S_EXPECT(fx->files, "{\"op\":\"stat\",\"path\":\"\"}", ZMESH_OK, "\"type\":\"dir\"");
}

static void
test_files_links_out_are_refused(void **state)
{
    s_fixture_t *fx = *state;
    char target[2 * PATH_MAX];
    snprintf(target, sizeof target, "%s/outside/secret.txt", fx->top);
    s_link(fx, "absolute-out", target);
    s_link(fx, "relative-out", "../outside/secret.txt");
    s_link(fx, "sub/deep-out", "../../outside");
    snprintf(target, sizeof target, "%s/outside", fx->top);
    s_link(fx, "dir-out", target);
    s_link(fx, "etc", "/etc");
    const char *paths[] = {"absolute-out", "relative-out", "sub/deep-out/secret.txt",
                           "dir-out/secret.txt", "dir-out", "etc/passwd"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"op\":\"read\",\"path\":\"%s\"}", paths[i]);
        S_EXPECT(fx->files, json, ZMESH_EINVAL, "leads out of the root");
        snprintf(json, sizeof json, "{\"op\":\"stat\",\"path\":\"%s\"}", paths[i]);
        S_EXPECT(fx->files, json, ZMESH_EINVAL, "leads out of the root");
    }
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"sub/../top.txt\"}", ZMESH_EINVAL,
             "has a '..' part");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"/etc/passwd\"}", ZMESH_EINVAL,
             "absolute path");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"top.txt/x\"}", ZMESH_EINVAL,
             "Not a directory");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"nothing\"}", ZMESH_EINVAL,
             "No such file");
}

static void
test_files_link_loops_end(void **state)
{
    s_fixture_t *fx = *state;
    s_link(fx, "loop", "loop");
    s_link(fx, "ping", "pong");
    s_link(fx, "pong", "ping");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"loop\"}", ZMESH_EINVAL,
             "Too many levels of symbolic links");
    S_EXPECT(fx->files, "{\"op\":\"stat\",\"path\":\"ping/x\"}", ZMESH_EINVAL,
             "Too many levels of symbolic links");
}

//  Opening a FIFO for reading waits for a writer: the handler must refuse it without opening
//  it, or a handler thread hangs for ever. The alarm turns a hang into a failure.
static void
test_files_read_of_fifo_is_refused_at_once(void **state)
{
    s_fixture_t *fx = *state;
    char path[2 * PATH_MAX];
    snprintf(path, sizeof path, "%s/sub/fifo", fx->root);
    assert_int_equal(mkfifo(path, 0644), 0);
    s_link(fx, "fifo-link", "sub/fifo");
    alarm(10);
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"sub/fifo\"}", ZMESH_EINVAL,
             "not a regular file (a FIFO)");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"fifo-link\"}", ZMESH_EINVAL,
             "not a regular file (a FIFO)");
    alarm(0);
    S_EXPECT(fx->files, "{\"op\":\"stat\",\"path\":\"sub/fifo\"}", ZMESH_OK,
             "\"type\":\"other\"");
    S_EXPECT(fx->files, "{\"op\":\"read\",\"path\":\"sub\"}", ZMESH_EINVAL,
             "not a regular file (a directory)");
    S_EXPECT(fx->files, "{\"op\":\"list\",\"path\":\"top.txt\"}", ZMESH_EINVAL,
             "Not a directory");
}

//  With the root "/" every relative path is under it.
static void
test_files_root_slash_serves(void **state)
{
    s_fixture_t *fx = *state;
    char error[256];
    zw_files_t *files = zw_files_new("/", error, sizeof error);
    assert_non_null(files);
    char json[2 * PATH_MAX];
    snprintf(json, sizeof json, "{\"op\":\"read\",\"path\":\"%s/sub/inner.txt\"}", fx->root + 1);
    S_EXPECT(files, json, ZMESH_OK, "\"size\":6");
    char target[2 * PATH_MAX];
    snprintf(target, sizeof target, "%s/outside/secret.txt", fx->top);
    s_link(fx, "absolute", target);                     //  under "/", so followed
    snprintf(json, sizeof json, "{\"op\":\"read\",\"path\":\"%s/absolute\"}", fx->root + 1);
    S_EXPECT(files, json, ZMESH_OK, "\"size\":7");
    S_EXPECT(files, "{\"op\":\"stat\",\"path\":\"\"}", ZMESH_OK, "\"type\":\"dir\"");
    S_EXPECT(files, "{\"op\":\"stat\",\"path\":\"/etc\"}", ZMESH_EINVAL, "absolute path");
    zw_files_destroy(&files);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files_links_inside_are_followed, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_files_links_out_are_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_files_link_loops_end, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_files_read_of_fifo_is_refused_at_once, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_files_root_slash_serves, s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("files", tests, NULL, NULL);
}
