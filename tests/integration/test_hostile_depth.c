//  test_hostile_depth - bodies nested from 1 to 100,000 levels (arrays, map
//  values, map keys, and arrays and maps in turn; around a scalar or with
//  the innermost container empty) against the broker's depth bound (ZMP.md
//  15.1: a scalar has depth 0, a container one more than its deepest
//  element, an empty one 1): at or under the bound the echo worker returns
//  the body byte for byte, over it the broker answers 400 with the request
//  id, never overflows a stack, and serves a good call after every case.
//  Bounds tried: the default 64, --max-depth 32, ZMESH_MAX_DEPTH=1, and
//  out-of-range values (exit 2). Brokers run with --max-garbage 0 so that
//  the many refusals do not get the test's socket kicked.
#include "harness.h"
#include "hostile.h"
#include "wire.h"
#include "zmesh.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#define S_MAX_BODY "400000"           //  100,000 levels of 3-byte maps fit
#define S_DEEPEST 100000

static const char *s_broker_bin;      //  borrowed from argv, for the exit-code cases

//  One kind of nesting level: the bytes that open it, the bytes that close
//  it after its inner object, and the byte of an empty one.
typedef struct {
    const char *open;
    size_t open_size;
    const char *close;
    size_t close_size;
    uint8_t empty;
} s_level_t;

static const s_level_t s_array = {"\x91", 1, "", 0, 0x90};             //  [ _ ]
static const s_level_t s_map_value = {"\x81\xa1k", 3, "", 0, 0x80};    //  {"k": _}
static const s_level_t s_map_key = {"\x81", 1, "\xc0", 1, 0x80};       //  {_: nil}

//  A pattern alternates two kinds of level, outermost first.
typedef struct {
    const char *name;
    const s_level_t *even;
    const s_level_t *odd;
} s_pattern_t;

static const s_pattern_t s_patterns[] = {
    {"arrays", &s_array, &s_array},
    {"map values", &s_map_value, &s_map_value},
    {"map keys", &s_map_key, &s_map_key},
    {"arrays and map keys", &s_array, &s_map_key},
};
#define S_PATTERNS (sizeof s_patterns / sizeof s_patterns[0])

//  levels nested containers: around the scalar 42, or with the innermost
//  one empty. Either way the body's depth is levels. Returns a malloc'd body.
static uint8_t *
s_nested(const s_pattern_t *pattern, size_t levels, bool scalar, size_t *size_p)
{
    assert(levels >= 1);
    uint8_t *body = malloc(levels * 4 + 1);
    assert(body);
    size_t size = 0, open = scalar ? levels : levels - 1;
    for (size_t i = 0; i < open; i++) {
        const s_level_t *level = i % 2 ? pattern->odd : pattern->even;
        memcpy(body + size, level->open, level->open_size);
        size += level->open_size;
    }
    body[size++] = scalar ? 0x2a : (open % 2 ? pattern->odd : pattern->even)->empty;
    for (size_t i = open; i-- > 0;) {
        const s_level_t *level = i % 2 ? pattern->odd : pattern->even;
        memcpy(body + size, level->close, level->close_size);
        size += level->close_size;
    }
    *size_p = size;
    return body;
}

//  Sends one nested body and checks the answer: the echo at or under
//  max_depth, 400 over it.
static bool
s_try(zsock_t *raw, const s_pattern_t *pattern, size_t levels, bool scalar, int max_depth,
      uint64_t id)
{
    size_t size;
    uint8_t *body = s_nested(pattern, levels, scalar, &size);
    zmsg_t *msg = zm_wire_call(id, body, size);
    bool ok;
    if (levels <= (size_t) max_depth) {
        ok = zmsg_send(&msg, raw) == 0;
        zm_wire_answer_t answer;
        ok = ok && zm_wire_recv(raw, &answer, ZM_HOSTILE_TIMEOUT_MS);
        ok = ok && strcmp(answer.command, "REPLY") == 0 && answer.status == 200
             && answer.id == id && answer.body && zframe_size(answer.body) == size
             && memcmp(zframe_data(answer.body), body, size) == 0;
        zframe_destroy(&answer.body);
        zmsg_destroy(&msg);
    }
    else
        ok = zm_hostile_expect(raw, &msg, 400, id, ZM_HOSTILE_ID_EXACT);
    if (!ok)
        fprintf(stderr, "depth: %s, %zu levels %s, bound %d: wrong answer\n", pattern->name,
                levels, scalar ? "around a scalar" : "innermost empty", max_depth);
    free(body);
    return ok;
}

//  Runs every pattern at every level count, both ways, with a good call
//  after each; returns how many were refused.
static uint64_t
s_run(zm_harness_t *harness, const char *endpoint, const size_t *levels, size_t count,
      int max_depth)
{
    zmesh_client_t *client = zm_harness_client(harness, endpoint);
    zsock_t *raw = zm_wire_dealer(harness, endpoint);
    assert_non_null(client);
    assert_non_null(raw);
    uint64_t id = 1, refused = 0;
    for (size_t p = 0; p < S_PATTERNS; p++)
        for (size_t i = 0; i < count; i++)
            for (int scalar = 0; scalar < 2; scalar++) {
                assert_true(s_try(raw, &s_patterns[p], levels[i], scalar, max_depth, id++));
                refused += levels[i] > (size_t) max_depth;
                assert_true(zm_wire_echo_ok(client));
            }
    zmsg_t *scalar = zm_wire_call(id, "\x2a", 1);            //  depth 0 is always fine
    assert_true(zm_hostile_expect(raw, &scalar, 200, id, ZM_HOSTILE_ID_EXACT));
    return refused;
}

//  The broker is alive, refused exactly refused bodies and kicked nobody.
static void
s_check_broker(const zm_proc_t *broker, const char *endpoint, uint64_t refused)
{
    assert_true(zm_hostile_alive(broker));
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_malformed"), refused);
    assert_int_equal(zm_status_counter(&status, "peers_kicked"), 0);
    assert_int_equal(status.workers, 1);
}

static void
test_hostile_depth_default_bound_is_64(void **state)
{
    const char *flags[] = {"--max-body", S_MAX_BODY, "--max-garbage", "0", NULL};
    char endpoint[256];
    zm_proc_t *broker = zm_hostile_start(*state, flags, endpoint, sizeof endpoint);
    assert_non_null(broker);
    static const size_t levels[] = {1, 33, 63, 64, 65, 66, 1000, S_DEEPEST};
    uint64_t refused = s_run(*state, endpoint, levels, sizeof levels / sizeof levels[0], 64);
    assert_int_equal(refused, S_PATTERNS * 2 * 4);
    s_check_broker(broker, endpoint, refused);
}

static void
test_hostile_depth_max_depth_32(void **state)
{
    const char *flags[] = {"--max-body", S_MAX_BODY, "--max-garbage", "0", "--max-depth", "32",
                           NULL};
    char endpoint[256];
    zm_proc_t *broker = zm_hostile_start(*state, flags, endpoint, sizeof endpoint);
    assert_non_null(broker);
    static const size_t levels[] = {31, 32, 33, 64, S_DEEPEST};
    uint64_t refused = s_run(*state, endpoint, levels, sizeof levels / sizeof levels[0], 32);
    s_check_broker(broker, endpoint, refused);
}

static void
test_hostile_depth_env_max_depth_1(void **state)
{
    const char *flags[] = {"--max-body", S_MAX_BODY, "--max-garbage", "0", NULL};
    char endpoint[256];
    setenv("ZMESH_MAX_DEPTH", "1", 1);
    zm_proc_t *broker = zm_hostile_start(*state, flags, endpoint, sizeof endpoint);
    unsetenv("ZMESH_MAX_DEPTH");
    assert_non_null(broker);
    static const size_t levels[] = {1, 2, S_DEEPEST};
    uint64_t refused = s_run(*state, endpoint, levels, sizeof levels / sizeof levels[0], 1);
    s_check_broker(broker, endpoint, refused);
}

//  Starts the broker with one bad --max-depth and expects exit code 2.
static void
s_expect_usage_error(zm_harness_t *harness, const char *value)
{
    char *argv[] = {(char *) s_broker_bin, "--bind", "tcp://127.0.0.1:*", "--max-depth",
                    (char *) value, NULL};
    zm_proc_t *broker = zm_harness_spawn(harness, "broker-bad-depth", argv, false);
    assert_non_null(broker);
    int status = 0;
    assert_true(zm_harness_reap(broker, 5000, &status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 2)
        fprintf(stderr, "depth: --max-depth %s: status 0x%x, not exit 2\n", value, status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

static void
test_hostile_depth_bound_out_of_range_refused(void **state)
{
    s_expect_usage_error(*state, "0");
    s_expect_usage_error(*state, "65");
    s_expect_usage_error(*state, "100000");
    s_expect_usage_error(*state, "-1");
    s_expect_usage_error(*state, "32x");
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    s_broker_bin = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_depth_default_bound_is_64,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_depth_max_depth_32, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_depth_env_max_depth_1, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_depth_bound_out_of_range_refused,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_hostile_depth", tests, NULL, NULL);
}
