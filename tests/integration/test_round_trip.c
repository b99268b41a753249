//  test_round_trip - a real broker and one echo worker: a call comes back
//  with exactly the request's bytes, the client can call again, and 50
//  calls in flight at once each come back matched to their own request id.
//  It checks the plain path end to end; failure modes have their own tests.
#include "harness.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_TIMEOUT_MS 5000
#define S_BATCH 50

//  Starts a broker and an echo worker and waits until the worker is registered.
static void
s_start(zm_harness_t *harness, char *endpoint, size_t size)
{
    assert_non_null(zm_harness_broker(harness, "tcp://127.0.0.1:*", NULL, endpoint, size));
    assert_non_null(zm_harness_worker(harness, endpoint, "echo", "echo", NULL));
    assert_true(zm_harness_wait_workers(endpoint, "echo", 1, 10000));
}

static void
s_assert_echo(zmesh_client_t *client, const void *request, size_t size)
{
    zmesh_msg_t *reply = NULL;
    int rc = zmesh_client_call(client, "echo", request, size, S_TIMEOUT_MS, &reply);
    assert_int_equal(rc, ZMESH_OK);
    assert_int_equal(zmesh_msg_size(reply), size);
    assert_memory_equal(zmesh_msg_data(reply), request, size);
    zmesh_msg_destroy(&reply);
}

static void
test_round_trip_call_returns_request_bytes(void **state)
{
    char endpoint[256];
    s_start(*state, endpoint, sizeof endpoint);
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    //  {"x": [1, 2, 3]}, then a second, different call on the same client.
    s_assert_echo(client, "\x81\xa1x\x93\x01\x02\x03", 7);
    s_assert_echo(client, "\xa5hello", 6);
    assert_int_equal(zmesh_client_pending(client), 0);
}

//  Request i is [i, "request <i>"]: its body says which call it was.
static size_t
s_batch_request(zmesh_pack_t *pack, uint64_t index)
{
    char text[32];
    snprintf(text, sizeof text, "request %llu", (unsigned long long) index);
    zmesh_pack_reset(pack);
    zmesh_pack_array(pack, 2);
    zmesh_pack_uint(pack, index);
    zmesh_pack_str(pack, text);
    return zmesh_pack_size(pack);
}

static void
s_pack_destroy(void **pack_p)
{
    zmesh_pack_destroy((zmesh_pack_t **) pack_p);
}

static void
test_round_trip_many_in_flight_match_their_ids(void **state)
{
    char endpoint[256];
    s_start(*state, endpoint, sizeof endpoint);
    zmesh_client_t *client = zm_harness_client(*state, endpoint);
    assert_non_null(client);
    zmesh_pack_t *pack = zmesh_pack_new();
    zm_harness_adopt(*state, pack, s_pack_destroy);
    uint64_t ids[S_BATCH];
    for (uint64_t i = 0; i < S_BATCH; i++) {
        size_t size = s_batch_request(pack, i);
        assert_int_equal(zmesh_client_send(client, "echo", zmesh_pack_data(pack), size,
                                           S_TIMEOUT_MS, &ids[i]),
                         ZMESH_OK);
        for (uint64_t j = 0; j < i; j++)
            assert_true(ids[j] != ids[i]);
    }
    bool seen[S_BATCH] = {false};
    for (int received = 0; received < S_BATCH; received++) {
        uint64_t id = 0;
        zmesh_msg_t *reply = NULL;
        assert_int_equal(zmesh_client_recv(client, S_TIMEOUT_MS, &id, &reply), ZMESH_OK);
        size_t index = 0;
        while (index < S_BATCH && ids[index] != id)
            index++;
        assert_true(index < S_BATCH);             //  an id we sent
        assert_false(seen[index]);                //  once only
        seen[index] = true;
        size_t size = s_batch_request(pack, index);
        assert_int_equal(zmesh_msg_size(reply), size);
        assert_memory_equal(zmesh_msg_data(reply), zmesh_pack_data(pack), size);
        zmesh_msg_destroy(&reply);
    }
    assert_int_equal(zmesh_client_pending(client), 0);
    uint64_t id = 1;
    assert_int_equal(zmesh_client_recv(client, 0, &id, NULL), ZMESH_EAGAIN);
    assert_int_equal(id, 0);
}

int
main(int argc, char **argv)
{
    zm_harness_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_call_returns_request_bytes,
                                        zm_harness_setup, zm_harness_teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_many_in_flight_match_their_ids,
                                        zm_harness_setup, zm_harness_teardown),
    };
    return cmocka_run_group_tests_name("integration_round_trip", tests, NULL, NULL);
}
