//  test_worker_threads - a worker with 4 handler threads holds 4 calls at
//  once (4 slots): four concurrent 300 ms calls finish together in well
//  under 4 x 300 ms. It checks that the slots are real, not raw speed. An
//  inline worker offers its slots and answers calls queued at it one after
//  another, each with its own reply.
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_CALLS 4
#define S_SLEEP "\xcd\x01\x2c"                //  msgpack uint 300

static void
test_worker_threads_calls_overlap(void **state)
{
    char endpoint[256];
    assert_non_null(
        zm_harness_broker(*state, "tcp://127.0.0.1:*", NULL, endpoint, sizeof endpoint));
    const char *flags[] = {"--threads", "4", NULL};
    assert_non_null(zm_harness_worker(*state, endpoint, "slow", "slow", flags));
    assert_true(zm_harness_wait_workers(endpoint, "slow", 1, 10000));
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "slow", &status), ZMESH_OK);
    assert_int_equal(status.slots, S_CALLS);
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    int64_t started = zm_harness_now();
    for (int i = 0; i < S_CALLS; i++)
        assert_int_equal(zmesh_client_send(client, "slow", S_SLEEP, 3, 5000, NULL), ZMESH_OK);
    for (int i = 0; i < S_CALLS; i++) {
        zmesh_msg_t *reply = NULL;
        assert_int_equal(zmesh_client_recv(client, 5000, NULL, &reply), ZMESH_OK);
        assert_int_equal(zmesh_msg_size(reply), 3);
        assert_memory_equal(zmesh_msg_data(reply), S_SLEEP, 3);
        zmesh_msg_destroy(&reply);
    }
    int64_t elapsed = zm_harness_now() - started;
    print_message("%d calls of 300 ms took %lld ms\n", S_CALLS, (long long) elapsed);
    assert_true(elapsed >= 300);
    assert_true(elapsed < 1000);                  //  serial would be 1200 ms
}

//  Inline: 50 slots offered, 200 calls in flight, every reply its own.
static void
test_worker_inline_takes_many(void **state)
{
    char endpoint[256];
    assert_non_null(
        zm_harness_broker(*state, "tcp://127.0.0.1:*", NULL, endpoint, sizeof endpoint));
    const char *flags[] = {"--inline", "50", NULL};
    assert_non_null(zm_harness_worker(*state, endpoint, "echo", "echo", flags));
    assert_true(zm_harness_wait_workers(endpoint, "echo", 1, 10000));
    zm_status_t status;
    assert_int_equal(zm_harness_status(endpoint, "echo", &status), ZMESH_OK);
    assert_int_equal(status.slots, 50);
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    enum { S_INLINE_CALLS = 200 };
    bool seen[S_INLINE_CALLS] = {false};
    uint64_t ids[S_INLINE_CALLS];
    for (int i = 0; i < S_INLINE_CALLS; i++) {
        uint8_t request[3] = {0xcd, (uint8_t) (i >> 8), (uint8_t) i};
        assert_int_equal(zmesh_client_send(client, "echo", request, 3, 5000, &ids[i]), ZMESH_OK);
    }
    for (int i = 0; i < S_INLINE_CALLS; i++) {
        zmesh_msg_t *reply = NULL;
        uint64_t id = 0;
        assert_int_equal(zmesh_client_recv(client, 5000, &id, &reply), ZMESH_OK);
        assert_int_equal(zmesh_msg_size(reply), 3);
        const uint8_t *data = zmesh_msg_data(reply);
        int value = data[1] << 8 | data[2];
        assert_true(value < S_INLINE_CALLS && !seen[value]);
        assert_true(ids[value] == id);              //  the reply of that very call
        seen[value] = true;
        zmesh_msg_destroy(&reply);
    }
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_worker_threads_calls_overlap, zm_harness_setup,
                                        zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_worker_inline_takes_many, zm_harness_setup,
                                        zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_worker_threads", tests, NULL, NULL);
}
