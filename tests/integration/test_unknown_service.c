//  test_unknown_service - the broker's grace period (ZMP.md 11.4): a call for
//  a service nobody serves is answered NO_SERVICE once the grace has passed,
//  not before and not at the call's own deadline; and a call sent before its
//  service's first worker existed is served once that worker registers
//  within the grace. Timing is asserted by lower bounds and by generous
//  upper bounds only.
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT_MS 5000

static void
test_unknown_service_answers_no_service_after_grace(void **state)
{
    char endpoint[256];
    const char *flags[] = {"--grace-ms", "300", NULL};
    assert_non_null(
        zm_harness_broker(*state, "tcp://127.0.0.1:*", flags, endpoint, sizeof endpoint));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    zmesh_msg_t *reply = NULL;
    int64_t started = zm_harness_now();
    int rc = zmesh_client_call(client, "no.such.service", "\xc0", 1, S_TIMEOUT_MS, &reply);
    int64_t elapsed = zm_harness_now() - started;
    print_message("no.such.service answered after %lld ms: %s\n", (long long) elapsed,
                  zmesh_client_error(client));
    assert_int_equal(rc, ZMESH_ENOSERVICE);
    assert_null(reply);
    assert_true(elapsed >= 300);                  //  not before the grace
    assert_true(elapsed < S_TIMEOUT_MS);          //  the broker's 404, not our own deadline
    assert_true(strlen(zmesh_client_error(client)) > 0);
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, NULL, &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "rejected_no_service"), 1);
}

typedef struct {
    const char *endpoint;
    const char *service;
} s_service_t;

//  The call waits in the queue of a service that has no worker yet.
static bool
s_call_queued(void *arg)
{
    s_service_t *service = arg;
    zm_status_t status;
    return zm_harness_status(service->endpoint, service->service, &status) == ZMESH_OK
           && status.known && status.workers == 0 && status.queued == 1;
}

static void
test_unknown_service_call_queued_before_worker_is_served(void **state)
{
    //  The grace must cover the worker's start-up, which under ASan on a busy
    //  CI machine can take a second; 300 ms would make this test flaky.
    char endpoint[256];
    const char *flags[] = {"--grace-ms", "4000", NULL};
    assert_non_null(
        zm_harness_broker(*state, "tcp://127.0.0.1:*", flags, endpoint, sizeof endpoint));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    uint64_t id = 0;
    int64_t started = zm_harness_now();
    assert_int_equal(zmesh_client_send(client, "late", "\xa4late", 5, 8000, &id), ZMESH_OK);
    s_service_t late = {endpoint, "late"};
    assert_true(zm_harness_wait_until(s_call_queued, &late, 3000));
    assert_non_null(zm_harness_worker(*state, endpoint, "late", "echo", NULL));
    uint64_t done_id = 0;
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_recv(client, 8000, &done_id, &reply);
    int64_t elapsed = zm_harness_now() - started;
    print_message("queued call served after %lld ms\n", (long long) elapsed);
    assert_int_equal(rc, ZMESH_OK);
    assert_int_equal(done_id, id);
    assert_int_equal(zmesh_msg_size(reply), 5);
    assert_memory_equal(zmesh_msg_data(reply), "\xa4late", 5);
    assert_true(elapsed < 4000);                  //  served within the grace
    zmesh_msg_destroy(&reply);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_service_answers_no_service_after_grace,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_service_call_queued_before_worker_is_served,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_unknown_service", tests, NULL, NULL);
}
