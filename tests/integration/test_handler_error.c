//  test_handler_error - a worker whose handler fails: the client gets
//  ZMESH_EHANDLER with the handler's own reason text, the broker counts it
//  as a handler error, and the worker and broker go on serving.
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
test_handler_error_reaches_client_with_reason(void **state)
{
    char endpoint[256];
    assert_non_null(
        zm_harness_broker(*state, "tcp://127.0.0.1:*", NULL, endpoint, sizeof endpoint));
    assert_non_null(zm_harness_worker(*state, endpoint, "fail", "fail", NULL));
    assert_true(zm_harness_wait_workers(endpoint, "fail", 1, 10000));
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    for (int i = 0; i < 2; i++) {                 //  the worker keeps serving after a failure
        zmesh_msg_t *reply = NULL;
        int rc = zmesh_client_call(client, "fail", "\x01", 1, S_TIMEOUT_MS, &reply);
        assert_int_equal(rc, ZMESH_EHANDLER);
        assert_null(reply);
        assert_string_equal(zmesh_client_error(client), "failed on purpose");
    }
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "fail", &status), ZMESH_OK);
    assert_int_equal(zm_status_counter(&status, "handler_errors"), 2);
    assert_int_equal(zm_status_counter(&status, "workers_kicked"), 0);
    assert_int_equal(status.workers, 1);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handler_error_reaches_client_with_reason,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_handler_error", tests, NULL, NULL);
}
