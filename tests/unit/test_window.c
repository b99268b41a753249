//  test_window - a producer's window of unsettled messages (lib/zm_window),
//  driven as the broker's answers would drive it (ZMP.md section 16.4):
//  seqs in order, cumulative ACCEPT, go-back-N after REFUSE 503, a message
//  refused for good, DONE for processed messages, and a new connection.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "zm_proto.h"
#include "zm_window.h"
#include "zmesh.h"

static int
s_setup(void **state)
{
    *state = zm_window_new();
    return 0;
}

static int
s_teardown(void **state)
{
    zm_window_t *window = *state;
    zm_window_destroy(&window);
    return 0;
}

//  Adds a one-byte message in mode; returns its token.
static uint64_t
s_add(zm_window_t *window, uint8_t value, int mode)
{
    zframe_t *body = zframe_new(&value, 1);
    uint64_t token = zm_window_add(window, &body, mode);
    assert_null(body);
    return token;
}

//  Expects the next message to send to be seq with body value, and sends it.
static void
s_send(zm_window_t *window, uint64_t seq, uint8_t value, uint32_t flags)
{
    uint64_t got_seq;
    uint32_t got_flags;
    zframe_t *body;
    assert_true(zm_window_peek(window, &got_seq, &got_flags, &body));
    assert_int_equal(got_seq, seq);
    assert_int_equal(got_flags, flags);
    assert_int_equal(zframe_size(body), 1);
    assert_int_equal(zframe_data(body)[0], value);
    zm_window_sent(window);
}

static void
s_expect_nothing_to_send(zm_window_t *window)
{
    uint64_t seq;
    uint32_t flags;
    zframe_t *body;
    assert_false(zm_window_peek(window, &seq, &flags, &body));
}

static void
test_window_accept_is_cumulative(void **state)
{
    zm_window_t *window = *state;
    for (uint8_t i = 1; i <= 3; i++)
        s_add(window, i, ZMESH_QUEUED);
    assert_false(zm_window_in_flight(window));
    for (uint8_t i = 1; i <= 3; i++)
        s_send(window, i, i, 0);
    s_expect_nothing_to_send(window);
    assert_true(zm_window_in_flight(window));
    assert_int_equal(zm_window_unaccepted(window), 3);
    zm_window_on_accept(window, 2);
    assert_int_equal(zm_window_unaccepted(window), 1);
    zm_window_on_accept(window, 3);
    assert_int_equal(zm_window_pending(window), 0);
    assert_false(zm_window_in_flight(window));
    assert_int_equal(zm_window_take_failure(window), ZMESH_OK);
}

static void
test_window_refused_full_goes_back(void **state)
{
    zm_window_t *window = *state;
    for (uint8_t i = 1; i <= 4; i++)
        s_add(window, i, ZMESH_QUEUED);
    for (uint8_t i = 1; i <= 4; i++)
        s_send(window, i, i, 0);
    //  1 taken; 2 refused for lack of room: 2, 3 and 4 go again, in order.
    assert_true(zm_window_on_refuse(window, 2, ZM_STATUS_BUSY, "full"));
    zm_window_on_accept(window, 1);
    s_send(window, 2, 2, 0);
    s_send(window, 3, 3, 0);
    s_send(window, 4, 4, 0);
    s_expect_nothing_to_send(window);
    zm_window_on_accept(window, 4);
    assert_int_equal(zm_window_pending(window), 0);
}

static void
test_window_refused_for_good_fails_one(void **state)
{
    zm_window_t *window = *state;
    for (uint8_t i = 1; i <= 3; i++)
        s_add(window, i, ZMESH_QUEUED);
    for (uint8_t i = 1; i <= 3; i++)
        s_send(window, i, i, 0);
    assert_false(zm_window_on_refuse(window, 2, ZM_STATUS_TOO_BIG, "too big"));
    zm_window_on_accept(window, 3);             //  settles 1 and 3; 2 already failed
    assert_int_equal(zm_window_pending(window), 0);
    assert_int_equal(zm_window_take_failure(window), ZMESH_ETOOBIG);
    assert_non_null(strstr(zm_window_error(window), "too big"));
    assert_int_equal(zm_window_take_failure(window), ZMESH_OK);   //  reported once
}

static void
test_window_processed_waits_for_done(void **state)
{
    zm_window_t *window = *state;
    uint64_t token = s_add(window, 7, ZMESH_PROCESSED);
    zm_window_watch(window, token);
    assert_int_equal(zm_window_watched(window, NULL), ZM_WINDOW_UNSENT);
    s_send(window, 1, 7, ZM_PUSH_DONE);
    assert_int_equal(zm_window_watched(window, NULL), ZM_WINDOW_SENT);
    zm_window_on_accept(window, 1);
    assert_int_equal(zm_window_watched(window, NULL), ZM_WINDOW_ACCEPTED);
    assert_int_equal(zm_window_unaccepted(window), 0);
    assert_int_equal(zm_window_pending(window), 1);
    int rc = -1;
    zm_window_on_done(window, 1, ZM_STATUS_OK);
    assert_int_equal(zm_window_watched(window, &rc), ZM_WINDOW_SETTLED);
    assert_int_equal(rc, ZMESH_OK);
    assert_int_equal(zm_window_pending(window), 0);
}

static void
test_window_done_before_accept_settles(void **state)
{
    zm_window_t *window = *state;
    uint64_t token = s_add(window, 1, ZMESH_PROCESSED);
    zm_window_watch(window, token);
    s_send(window, 1, 1, ZM_PUSH_DONE);
    zm_window_on_done(window, 1, ZM_STATUS_WORKER_LOST);    //  DONE implies taken
    int rc = ZMESH_OK;
    assert_int_equal(zm_window_watched(window, &rc), ZM_WINDOW_SETTLED);
    assert_int_equal(rc, ZMESH_EWORKERLOST);
    assert_int_equal(zm_window_pending(window), 0);
}

static void
test_window_new_connection_renumbers(void **state)
{
    zm_window_t *window = *state;
    for (uint8_t i = 1; i <= 3; i++)
        s_add(window, i, ZMESH_QUEUED);
    for (uint8_t i = 1; i <= 3; i++)
        s_send(window, i, i, 0);
    zm_window_on_accept(window, 1);
    zm_window_renumber(window);                 //  2 and 3 were lost with the connection
    s_send(window, 1, 2, 0);
    s_send(window, 2, 3, 0);
    s_expect_nothing_to_send(window);
    zm_window_on_accept(window, 2);
    assert_int_equal(zm_window_pending(window), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_window_accept_is_cumulative, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_refused_full_goes_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_refused_for_good_fails_one, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_window_processed_waits_for_done, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_window_done_before_accept_settles, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_window_new_connection_renumbers, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}
