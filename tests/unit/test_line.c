//  test_line.c - unit tests of zm_line, the line reader of `zmesh call` and the --exec bridge,
//  over a pipe(2) that each test fills by hand: lines split across writes, "\r\n", empty lines,
//  a last line cut off by the end of input, the max_line bound on both sides, many lines in one
//  write, the timeouts (0, > 0, and a signal cutting -1 short), end of input and read errors.
//  No sockets, no child processes; the only waits are the timeouts under test.

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "zm_line.h"

#define S_MAX_LINE 8                //  max_line of the fixture's reader

//  A byte string literal and its length; literals may hold NUL bytes.
#define BYTES(literal) literal, sizeof(literal) - 1

//  Each test's pipe and a reader of its read end.
typedef struct {
    int reader_fd;              //  read end; -1 once closed
    int writer_fd;              //  write end; -1 once closed
    zm_line_reader_t *reader;   //  owned: reads reader_fd, max_line S_MAX_LINE
} s_fixture_t;

static int
s_setup(void **state)
{
    s_fixture_t *self = calloc(1, sizeof *self);
    assert_non_null(self);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    self->reader_fd = fds[0];
    self->writer_fd = fds[1];
    self->reader = zm_line_reader_new(self->reader_fd, S_MAX_LINE);
    *state = self;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fixture_t *self = *state;
    zm_line_reader_destroy(&self->reader);
    assert_null(self->reader);
    zm_line_reader_destroy(&self->reader);          //  a no-op on NULL
    if (self->reader_fd >= 0)
        close(self->reader_fd);
    if (self->writer_fd >= 0)
        close(self->writer_fd);
    free(self);
    return 0;
}

static void
s_write(s_fixture_t *self, const char *data, size_t size)
{
    assert_int_equal(write(self->writer_fd, data, size), (ssize_t) size);
}

static void
s_close_writer(s_fixture_t *self)
{
    close(self->writer_fd);
    self->writer_fd = -1;
}

//  Asserts that the next line, waited for with timeout_ms, is exactly the size bytes of expected.
static void
s_expect_line(s_fixture_t *self, int timeout_ms, const char *expected, size_t size)
{
    char *line = NULL;
    size_t length = 0;
    assert_int_equal(zm_line_reader_next(self->reader, timeout_ms, &line, &length), ZM_LINE_OK);
    assert_int_equal(length, size);
    assert_memory_equal(line, expected, size);
    assert_int_equal(line[length], '\0');
}

//  Asserts that the next call, with timeout_ms, returns status (not ZM_LINE_OK).
static void
s_expect_status(s_fixture_t *self, int timeout_ms, zm_line_status_t status)
{
    char *line = NULL;
    size_t length = 0;
    assert_int_equal(zm_line_reader_next(self->reader, timeout_ms, &line, &length), status);
    assert_null(line);                              //  outputs are set only on ZM_LINE_OK
}

static void
test_line_joins_a_line_split_across_writes(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("ab"));
    s_expect_status(self, 0, ZM_LINE_NONE);
    s_write(self, BYTES("cd"));
    s_expect_status(self, 0, ZM_LINE_NONE);
    s_write(self, BYTES("ef\ngh"));
    s_expect_line(self, 0, BYTES("abcdef"));
    assert_true(zm_line_reader_terminated(self->reader));
    s_expect_status(self, 0, ZM_LINE_NONE);
    s_write(self, BYTES("\n"));
    s_expect_line(self, 0, BYTES("gh"));
}

static void
test_line_strips_crlf(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("one\r\ntwo\r"));
    s_expect_line(self, 0, BYTES("one"));
    s_expect_status(self, 0, ZM_LINE_NONE);         //  "\r" alone ends nothing
    s_write(self, BYTES("\nthree\rx\n"));
    s_expect_line(self, 0, BYTES("two"));
    s_expect_line(self, 0, BYTES("three\rx"));     //  only a '\r' before the '\n' goes
}

static void
test_line_returns_last_line_without_newline(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("first\ntail"));
    s_close_writer(self);
    s_expect_line(self, -1, BYTES("first"));
    assert_true(zm_line_reader_terminated(self->reader));
    s_expect_line(self, -1, BYTES("tail"));
    assert_false(zm_line_reader_terminated(self->reader));
    s_expect_status(self, -1, ZM_LINE_EOF);
}

static void
test_line_keeps_lone_cr_of_last_line(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("tail\r"));
    s_close_writer(self);
    s_expect_line(self, -1, BYTES("tail\r"));      //  returned as it is: no "\r\n" came
    assert_false(zm_line_reader_terminated(self->reader));
    s_expect_status(self, -1, ZM_LINE_EOF);
}

static void
test_line_returns_empty_lines(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("\n\r\nx\n"));
    s_expect_line(self, 0, BYTES(""));
    s_expect_line(self, 0, BYTES(""));
    s_expect_line(self, 0, BYTES("x"));
}

static void
test_line_keeps_nul_bytes(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("a\0b\n"));
    s_expect_line(self, 0, BYTES("a\0b"));
}

static void
test_line_accepts_line_of_max_line(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("12345678\n"));
    s_expect_line(self, 0, BYTES("12345678"));
    s_write(self, BYTES("abcdefgh\r\n"));           //  the "\r" does not count
    s_expect_line(self, 0, BYTES("abcdefgh"));
    s_write(self, BYTES("ABCDEFGH"));
    s_close_writer(self);
    s_expect_line(self, 0, BYTES("ABCDEFGH"));     //  nor does a missing "\n"
    s_expect_status(self, 0, ZM_LINE_EOF);
}

static void
test_line_refuses_line_over_max_line(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("ok\n123456789\nnext\n"));  //  one byte over, its "\n" at hand
    s_expect_line(self, 0, BYTES("ok"));
    s_expect_status(self, 0, ZM_LINE_TOOLONG);
    s_expect_status(self, 0, ZM_LINE_TOOLONG);      //  final: "next" is never reached
}

static void
test_line_refuses_endless_line_before_its_end(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("0123456789abcdef"));       //  no "\n" yet, and maybe never
    s_expect_status(self, 0, ZM_LINE_TOOLONG);
    s_write(self, BYTES("\n"));
    s_expect_status(self, 0, ZM_LINE_TOOLONG);
}

static void
test_line_refuses_cut_off_last_line_over_max_line(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("12345678\r"));             //  would fit with a "\n"; none comes
    s_close_writer(self);
    s_expect_status(self, 0, ZM_LINE_TOOLONG);
}

static void
test_line_timeout_zero_returns_none(void **state)
{
    s_fixture_t *self = *state;
    s_expect_status(self, 0, ZM_LINE_NONE);
    s_expect_status(self, 0, ZM_LINE_NONE);
    s_write(self, BYTES("late\n"));
    s_expect_line(self, 0, BYTES("late"));
}

static void
test_line_timeout_waits_that_long(void **state)
{
    s_fixture_t *self = *state;
    int64_t started = zclock_mono();
    s_expect_status(self, 50, ZM_LINE_NONE);
    assert_true(zclock_mono() - started >= 50);
    s_write(self, BYTES("half"));                   //  a part of a line is not a line
    started = zclock_mono();
    s_expect_status(self, 50, ZM_LINE_NONE);
    assert_true(zclock_mono() - started >= 50);
    s_write(self, BYTES("\n"));
    s_expect_line(self, 50, BYTES("half"));
}

static void
s_on_alarm(int signal_number)
{
    (void) signal_number;
}

static void
test_line_signal_ends_wait_for_ever(void **state)
{
    s_fixture_t *self = *state;
    struct sigaction action = {.sa_handler = s_on_alarm};
    struct sigaction previous;
    sigemptyset(&action.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &action, &previous), 0);
    //  Repeating, so that a signal landing before the wait starts cannot hang the test.
    struct itimerval timer = {.it_value.tv_usec = 20000, .it_interval.tv_usec = 20000};
    assert_int_equal(setitimer(ITIMER_REAL, &timer, NULL), 0);
    s_expect_status(self, -1, ZM_LINE_NONE);
    struct itimerval off = {0};
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    assert_int_equal(sigaction(SIGALRM, &previous, NULL), 0);
    s_write(self, BYTES("after\n"));
    s_expect_line(self, -1, BYTES("after"));        //  nothing was lost
}

static void
test_line_returns_many_lines_of_one_write_one_by_one(void **state)
{
    s_fixture_t *self = *state;
    s_write(self, BYTES("a\nbb\nccc\r\n\ndddd\n"));
    s_close_writer(self);                           //  all is buffered: no read needed
    s_expect_line(self, 0, BYTES("a"));
    s_expect_line(self, 0, BYTES("bb"));
    s_expect_line(self, 0, BYTES("ccc"));
    s_expect_line(self, 0, BYTES(""));
    s_expect_line(self, 0, BYTES("dddd"));
    s_expect_status(self, 0, ZM_LINE_EOF);
}

static void
test_line_returns_eof_for_ever(void **state)
{
    s_fixture_t *self = *state;
    s_close_writer(self);
    s_expect_status(self, -1, ZM_LINE_EOF);
    s_expect_status(self, 0, ZM_LINE_EOF);
    s_expect_status(self, 50, ZM_LINE_EOF);
}

static void
test_line_reports_read_error(void **state)
{
    s_fixture_t *self = *state;
    close(self->reader_fd);                         //  the reader only borrows it
    self->reader_fd = -1;
    errno = 0;
    s_expect_status(self, 0, ZM_LINE_ERROR);
    assert_int_equal(errno, EBADF);
}

//  A line far longer than the first buffer, fed through a pipe that holds less than it.
static void
test_line_grows_buffer_for_long_line(void **state)
{
    s_fixture_t *self = *state;
    const size_t size = 300000;
    zm_line_reader_destroy(&self->reader);
    self->reader = zm_line_reader_new(self->reader_fd, size);
    char *data = malloc(size + 1);
    assert_non_null(data);
    memset(data, 'x', size);
    data[size] = '\n';
    assert_int_equal(fcntl(self->writer_fd, F_SETFL, O_NONBLOCK), 0);
    size_t written = 0;
    char *line = NULL;
    size_t length = 0;
    zm_line_status_t status = ZM_LINE_NONE;
    while (status == ZM_LINE_NONE) {
        ssize_t rc = write(self->writer_fd, data + written, size + 1 - written);
        assert_true(rc > 0 || (rc < 0 && errno == EAGAIN) || written == size + 1);
        written += rc > 0 ? (size_t) rc : 0;
        status = zm_line_reader_next(self->reader, 0, &line, &length);
        assert_true(status == ZM_LINE_OK || written < size + 1);
    }
    assert_int_equal(status, ZM_LINE_OK);
    assert_int_equal(length, size);
    assert_memory_equal(line, data, size);
    free(data);
}

int
main(void)
{
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_line_joins_a_line_split_across_writes),
        S_TEST(test_line_strips_crlf),
        S_TEST(test_line_returns_last_line_without_newline),
        S_TEST(test_line_keeps_lone_cr_of_last_line),
        S_TEST(test_line_returns_empty_lines),
        S_TEST(test_line_keeps_nul_bytes),
        S_TEST(test_line_accepts_line_of_max_line),
        S_TEST(test_line_refuses_line_over_max_line),
        S_TEST(test_line_refuses_endless_line_before_its_end),
        S_TEST(test_line_refuses_cut_off_last_line_over_max_line),
        S_TEST(test_line_timeout_zero_returns_none),
        S_TEST(test_line_timeout_waits_that_long),
        S_TEST(test_line_signal_ends_wait_for_ever),
        S_TEST(test_line_returns_many_lines_of_one_write_one_by_one),
        S_TEST(test_line_returns_eof_for_ever),
        S_TEST(test_line_reports_read_error),
        S_TEST(test_line_grows_buffer_for_long_line),
    };
    return cmocka_run_group_tests_name("line", tests, NULL, NULL);
}
