//  test_busy - back-pressure: with --max-queue 2 and one worker whose only
//  slot is taken, two more calls wait in the queue and the next one is
//  refused at once with BUSY (ZMESH_EAGAIN) instead of being buffered; a
//  request over max-body is refused TOO_BIG. Nothing is dropped silently.
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT_MS 5000

typedef struct {
    const char *endpoint;
    uint64_t inflight;
    uint64_t queued;
} s_wanted_t;

static bool
s_service_holds(void *arg)
{
    s_wanted_t *wanted = arg;
    zm_status_t status;
    return zm_harness_status(wanted->endpoint, "held", &status) == ZMESH_OK
           && status.inflight == wanted->inflight && status.queued == wanted->queued;
}

static void
test_busy_full_queue_refuses_at_once(void **state)
{
    char endpoint[256];
    const char *flags[] = {"--max-queue", "2", NULL};
    assert_non_null(
        zm_harness_broker(*state, "tcp://127.0.0.1:*", flags, endpoint, sizeof endpoint));
    assert_non_null(zm_harness_worker(*state, endpoint, "held", "hang", NULL));
    assert_true(zm_harness_wait_workers(endpoint, "held", 1, 10000));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    for (uint64_t i = 0; i < 3; i++) {          //  one held, two queued
        assert_int_equal(zmesh_client_send(client, "held", "\xc0", 1, 20000, NULL), ZMESH_OK);
        s_wanted_t wanted = {endpoint, 1, i};
        assert_true(zm_harness_wait_until(s_service_holds, &wanted, S_TIMEOUT_MS));
    }
    zmesh_msg_t *reply = NULL;
    int64_t started = zm_harness_now();
    int rc = zmesh_client_call(client, "held", "\xc0", 1, S_TIMEOUT_MS, &reply);
    int64_t elapsed = zm_harness_now() - started;
    print_message("the fourth call was refused after %lld ms: %s\n", (long long) elapsed,
                  zmesh_client_error(client));
    assert_int_equal(rc, ZMESH_EAGAIN);
    assert_true(elapsed < 1000);
    assert_true(strlen(zmesh_client_error(client)) > 0);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "held", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_busy"), 1);
    assert_int_equal(status.queued, 2);
}

static void
test_busy_request_over_max_body_is_too_big(void **state)
{
    char endpoint[256];
    const char *flags[] = {"--max-body", "65536", NULL};
    assert_non_null(
        zm_harness_broker(*state, "tcp://127.0.0.1:*", flags, endpoint, sizeof endpoint));
    assert_non_null(zm_harness_worker(*state, endpoint, "echo", "echo", NULL));
    assert_true(zm_harness_wait_workers(endpoint, "echo", 1, 10000));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    size_t size = 65536 + 1;                    //  one msgpack bin 32 object
    char *body = calloc(1, size);
    assert_non_null(body);
    uint32_t length = (uint32_t) (size - 5);
    body[0] = (char) 0xc6;
    body[1] = (char) (length >> 24);
    body[2] = (char) (length >> 16);
    body[3] = (char) (length >> 8);
    body[4] = (char) length;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_call(client, "echo", body, size, S_TIMEOUT_MS, &reply);
    free(body);
    assert_int_equal(rc, ZMESH_ETOOBIG);
    assert_null(reply);
    assert_true(strlen(zmesh_client_error(client)) > 0);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_too_big"), 1);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_busy_full_queue_refuses_at_once, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_busy_request_over_max_body_is_too_big,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_busy", tests, NULL, NULL);
}
