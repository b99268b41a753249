//  test_broker_restart - the broker on a fixed ipc:// path is stopped and a
//  new one started on the same path: the worker registers again by itself
//  (DISCONNECT 400 "not registered" to its heartbeat, or its silence timer)
//  and the same client, reconnected by libzmq, is served again. Waits are
//  deadline-bounded polls of zmesh.status.
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void
s_assert_echo(zmesh_client_t *client, const char *request, size_t size)
{
    zmesh_msg_t *reply = NULL;
    assert_int_equal(zmesh_client_call(client, "echo", request, size, 5000, &reply), ZMESH_OK);
    assert_int_equal(zmesh_msg_size(reply), size);
    assert_memory_equal(zmesh_msg_data(reply), request, size);
    zmesh_msg_destroy(&reply);
}

static zm_proc_t *
s_broker_at(zm_harness_t *harness, const char *bind, char *endpoint, size_t size)
{
    zm_proc_t *broker = zm_harness_broker(harness, bind, NULL, endpoint, size);
    assert_non_null(broker);
    assert_string_equal(endpoint, bind);
    return broker;
}

static void
test_broker_restart_worker_registers_again(void **state)
{
    zm_harness_t *harness = *state;
    char bind[256], endpoint[256];
    snprintf(bind, sizeof bind, "ipc://%s/broker.ipc", zm_harness_dir(harness));
    zm_proc_t *broker = s_broker_at(harness, bind, endpoint, sizeof endpoint);
    const char *flags[] = {"--heartbeat-ms", "500", "--liveness", "3", NULL};
    assert_non_null(zm_harness_worker(harness, endpoint, "echo", "echo", flags));
    assert_true(zm_harness_wait_workers(endpoint, "echo", 1, 10000));
    zmesh_client_t *client = zm_harness_client(harness, endpoint);
    assert_non_null(client);
    s_assert_echo(client, "\xa6" "before", 7);

    int exit_status = zm_harness_stop(broker, ZM_HARNESS_STOP_MS);
    assert_true(zm_harness_exited_ok(exit_status));
    int64_t restarted = zm_harness_now();
    s_broker_at(harness, bind, endpoint, sizeof endpoint);
    assert_true(zm_harness_wait_workers(endpoint, "echo", 1, 10000));
    s_assert_echo(client, "\xa5" "after", 6);
    int64_t elapsed = zm_harness_now() - restarted;
    print_message("served again %lld ms after the restart\n", (long long) elapsed);
    assert_true(elapsed < 10000);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_broker_restart_worker_registers_again,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_broker_restart", tests, NULL, NULL);
}
