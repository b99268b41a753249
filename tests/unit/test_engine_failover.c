//  test_engine_failover.c - unit tests of the broker's failure handling
//  (broker/engine.c): a worker that declared its calls idempotent (READY
//  flags 1) and dies, leaves or becomes unreachable holding calls has them
//  dispatched again, with a new ticket, the next attempt number and the same
//  body bytes, up to max_attempts; a requeued call waits at the head of its
//  queue and still expires; a non-idempotent worker's calls are answered 502
//  as before; a client's retried CALL (same routing id and request id) is
//  ignored while the original is unanswered; and PROGRESS moves a held
//  call's deadline and reaches a caller that asked for it. Each test feeds
//  fabricated ROUTER messages with an explicit `now` and pops every outbox
//  message (engine_fixture.h): no sockets, no sleeps, no clock.

#include <string.h>

#include "engine_fixture.h"

#define S_DEAD_AFTER (ZT_HEARTBEAT_MS * ZT_LIVENESS)     //  silence that ends a session
#define S_IDEMPOTENT ZM_READY_IDEMPOTENT

//  ---------------------------------------------------------------------------
//  Attempts and requeueing

static void
test_engine_request_carries_attempt_1_on_first_dispatch(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 1);
    //  On the wire: ["ZMP1", "REQUEST", 1, "echo", 0, 1], the attempt appended.
    zmsg_t *msg = zm_engine_outbox_pop(engine);
    assert_non_null(msg);
    zmsg_first(msg);                            //  the routing id
    zmsg_next(msg);                             //  the delimiter
    zframe_t *header = zmsg_next(msg);
    char bytes[64] = "";
    size_t size = header && zframe_size(header) < sizeof bytes ? zframe_size(header) : 0;
    if (size)
        memcpy(bytes, zframe_data(header), size);
    zmsg_destroy(&msg);
    static const char expected[] = "\x96\xa4ZMP1\xa7REQUEST\x01\xa4" "echo\x00\x01";
    assert_int_equal(size, sizeof expected - 1);
    assert_memory_equal(bytes, expected, size);

    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0 + 2);
    zt_call(engine, "C1", 2, "echo", 0, zt_fixint(2), ZT_T0 + 3);
    zt_expect_request_attempt(engine, "W2", "echo", 0, zt_fixint(2), 1);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2);
}

static void
test_engine_requeues_idempotent_call_when_worker_expires(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 7, "echo", 0, ZT_BODY, ZT_T0);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0 + S_DEAD_AFTER - 500);
    zt_expect_empty(engine);

    zm_engine_on_tick(engine, ZT_T0 + S_DEAD_AFTER);
    uint64_t t2 = zt_expect_request_attempt(engine, "W2", "echo", 0, ZT_BODY, 2);
    assert_true(t2 != t1);
    zt_expect_empty(engine);                    //  no 502: the caller notices nothing
    ZT_COUNTERS(.calls = 1, .requeued = 1, .workers_expired = 1);

    zt_answer(engine, "W2", t2, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + S_DEAD_AFTER + 10);
    zt_expect_reply(engine, "C1", 7, ZM_STATUS_OK, ZT_ANSWER);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1, .requeued = 1, .workers_expired = 1);
}

//  The next dispatch carries the time left, not the original timeout.
static void
test_engine_requeues_idempotent_call_when_worker_disconnects(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 3, "echo", 1000, zt_fixint(5), ZT_T0);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 1000, zt_fixint(5), 1);
    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 100);
    zt_leave(engine, "W1", ZT_T0 + 300);
    uint64_t t2 = zt_expect_request_attempt(engine, "W2", "echo", 700, zt_fixint(5), 2);
    assert_true(t2 != t1);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1);
    zt_answer(engine, "W2", t2, ZM_STATUS_OK, zt_fixint(6), ZT_T0 + 400);
    zt_expect_reply(engine, "C1", 3, ZM_STATUS_OK, zt_fixint(6));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1, .requeued = 1);
}

static void
test_engine_requeues_idempotent_call_when_worker_is_unreachable(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0 + 1);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zt_send_failed(engine, "W1", false, ZT_T0 + 10);
    uint64_t t2 = zt_expect_request_attempt(engine, "W2", "echo", 0, ZT_BODY, 2);
    assert_true(t2 != t1);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1, .workers_unreachable = 1);

    zt_send_failed(engine, "W2", true, ZT_T0 + 20);     //  its queue is full: lost too
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 2, .workers_unreachable = 2);
    zt_ready(engine, "W3", "echo", 1, ZT_T0 + 30);
    zt_expect_request_attempt(engine, "W3", "echo", 0, ZT_BODY, 3);
    zt_expect_empty(engine);
}

//  With no worker left, the call goes back to the head of the queue, past
//  the queue's bound (it was admitted once), and a retry of it is ignored.
static void
test_engine_requeued_call_waits_at_the_head_of_the_queue(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(1), 1);
    for (int i = 2; i <= 1 + ZT_MAX_QUEUE; i++)
        zt_call(engine, "C2", (uint64_t) i, "echo", 0, zt_fixint(i), ZT_T0 + i);
    zt_leave(engine, "W1", ZT_T0 + 10);
    zt_expect_empty(engine);                    //  nobody to send it to, nothing lost
    ZT_COUNTERS(.calls = 4, .requeued = 1);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 11);     //  a retry
    zt_call(engine, "C3", 9, "echo", 0, zt_fixint(9), ZT_T0 + 12);     //  a new call
    zt_expect_error(engine, "C3", 9, ZM_STATUS_BUSY, "full");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 6, .rejected_busy = 1, .requeued = 1, .duplicate_calls = 1);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 13);
    zt_assert_service(status, "echo", 0, 0, 0, 1 + ZT_MAX_QUEUE, 1 + ZT_MAX_QUEUE + 1);

    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 20);
    uint64_t ticket = zt_expect_request_attempt(engine, "W2", "echo", 0, zt_fixint(1), 2);
    for (int i = 1; i <= 1 + ZT_MAX_QUEUE; i++) {
        zt_answer(engine, "W2", ticket, ZM_STATUS_OK, zt_fixint(i), ZT_T0 + 20 + i);
        zt_expect_reply(engine, i == 1 ? "C1" : "C2", (uint64_t) i, ZM_STATUS_OK, zt_fixint(i));
        if (i < 1 + ZT_MAX_QUEUE)
            ticket = zt_expect_request_attempt(engine, "W2", "echo", 0, zt_fixint(i + 1), 1);
        zt_expect_empty(engine);
    }
    ZT_COUNTERS(.calls = 7, .replies = 5, .rejected_busy = 1, .requeued = 1,
                .duplicate_calls = 1);
}

//  A worker that held several calls: they go back in the order they came,
//  oldest first, all before the calls that were already waiting.
static void
test_engine_requeued_calls_keep_their_order(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 2, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 1);
    zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(1), 1);
    zt_call(engine, "C1", 2, "echo", 0, zt_fixint(2), ZT_T0 + 2);
    zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(2), 1);
    zt_call(engine, "C1", 3, "echo", 0, zt_fixint(3), ZT_T0 + 3);
    zt_leave(engine, "W1", ZT_T0 + 10);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .requeued = 2);

    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 20);
    const uint32_t attempts[] = {0, 2, 2, 1};
    for (int i = 1; i <= 3; i++) {
        uint64_t ticket =
            zt_expect_request_attempt(engine, "W2", "echo", 0, zt_fixint(i), attempts[i]);
        zt_expect_empty(engine);
        zt_answer(engine, "W2", ticket, ZM_STATUS_OK, zt_fixint(i), ZT_T0 + 20 + i);
        zt_expect_reply(engine, "C1", (uint64_t) i, ZM_STATUS_OK, zt_fixint(i));
    }
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .replies = 3, .requeued = 2);
}

//  ---------------------------------------------------------------------------
//  Where requeueing ends

static void
test_engine_answers_502_after_max_attempts(void **state)
{
    zm_engine_t *engine = *state;
    assert_int_equal(engine->config.max_attempts, 3);           //  the default
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zt_leave(engine, "W1", ZT_T0 + 10);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0 + 20);
    zt_expect_request_attempt(engine, "W2", "echo", 0, ZT_BODY, 2);
    zt_send_failed(engine, "W2", false, ZT_T0 + 30);
    zt_ready_flags(engine, "W3", "echo", 1, S_IDEMPOTENT, ZT_T0 + 40);
    zt_expect_request_attempt(engine, "W3", "echo", 0, ZT_BODY, 3);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 2, .workers_unreachable = 1);

    zm_engine_on_tick(engine, ZT_T0 + 40 + S_DEAD_AFTER);      //  the third loss
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 2, .worker_lost = 1, .workers_expired = 1,
                .workers_unreachable = 1);
    zt_ready_flags(engine, "W4", "echo", 1, S_IDEMPOTENT, ZT_T0 + 40 + S_DEAD_AFTER);
    zt_expect_empty(engine);                    //  nothing left to run
}

static void
test_engine_max_attempts_1_never_requeues(void **state)
{
    zm_engine_t *engine = *state;
    engine->config.max_attempts = 1;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0 + 1);
    zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zt_leave(engine, "W1", ZT_T0 + 10);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .worker_lost = 1);
}

//  Idempotence is the lost worker's promise: an idempotent worker standing
//  by does not make another worker's calls safe to run again.
static void
test_engine_non_idempotent_worker_loss_answers_502(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(1), 1);
    zt_call(engine, "C2", 2, "echo", 0, zt_fixint(2), ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(2), 1);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0 + S_DEAD_AFTER - 500);
    zm_engine_on_tick(engine, ZT_T0 + S_DEAD_AFTER);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_empty(engine);                    //  nothing goes to W2
    ZT_COUNTERS(.calls = 2, .worker_lost = 2, .workers_expired = 1);
}

//  Where a call runs again is up to the worker that loses it: the second,
//  non-idempotent worker's loss is final.
static void
test_engine_requeued_call_lost_by_a_non_idempotent_worker_gets_502(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 10);
    zt_leave(engine, "W1", ZT_T0 + 20);
    zt_expect_request_attempt(engine, "W2", "echo", 0, ZT_BODY, 2);
    zt_ready_flags(engine, "W3", "echo", 1, S_IDEMPOTENT, ZT_T0 + 30);
    zt_leave(engine, "W2", ZT_T0 + 40);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);                    //  nothing goes to W3
    ZT_COUNTERS(.calls = 1, .requeued = 1, .worker_lost = 1);
}

//  A held call already answered 408 is over: its worker's death neither
//  requeues it nor answers it again.
static void
test_engine_answered_call_is_not_requeued(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 100, ZT_BODY, ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 100, ZT_BODY, 1);
    zm_engine_on_tick(engine, ZT_T0 + 100);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0 + 150);
    zt_leave(engine, "W1", ZT_T0 + 200);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .expired = 1);
}

//  Requeued with its deadline ahead, expired before a worker came: 408,
//  never a dispatch; and once answered, the same id is a new call again.
static void
test_engine_requeued_call_past_its_deadline_gets_408(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 1000, ZT_BODY, ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 1000, ZT_BODY, 1);
    zt_leave(engine, "W1", ZT_T0 + 400);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1);

    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 1200);           //  no tick in between
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1, .expired = 1);

    zt_call(engine, "C1", 1, "echo", 1000, ZT_BODY, ZT_T0 + 1300);
    zt_expect_request_attempt(engine, "W2", "echo", 1000, ZT_BODY, 1);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .requeued = 1, .expired = 1);
}

static void
test_engine_requeued_call_expires_in_the_queue(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 300, ZT_BODY, ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 300, ZT_BODY, 1);
    zt_leave(engine, "W1", ZT_T0 + 100);
    zm_engine_on_tick(engine, ZT_T0 + 299);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 300);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1, .expired = 1);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0 + 301);
    zt_expect_empty(engine);
}

//  ZMP.md's grace applies to a requeued call as to any queued one: from the
//  moment the service lost its last worker.
static void
test_engine_requeued_call_gets_404_when_no_worker_comes(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zt_leave(engine, "W1", ZT_T0 + 1000);
    zm_engine_on_tick(engine, ZT_T0 + 1000 + ZT_GRACE_MS - 1);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 1000 + ZT_GRACE_MS);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_NO_SERVICE, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1, .rejected_no_service = 1);
}

//  Two workers found dead in one tick: the first one's call must not be
//  dispatched to the second, which the same tick is about to retire. Many
//  idle victims, so that hash order cannot retire the holder last.
static void
test_engine_never_requeues_to_a_worker_dying_in_the_same_tick(void **state)
{
    zm_engine_t *engine = *state;
    static const char *const idle[] = {"W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9"};
    const size_t count = sizeof idle / sizeof idle[0];
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    for (size_t i = 0; i < count; i++)
        zt_ready_flags(engine, idle[i], "echo", 1, S_IDEMPOTENT, ZT_T0);
    zm_engine_on_tick(engine, ZT_T0 + S_DEAD_AFTER);
    zt_expect_empty(engine);                    //  no REQUEST to a worker being retired
    ZT_COUNTERS(.calls = 1, .requeued = 1, .workers_expired = 1 + count);
    zt_ready(engine, "WX", "echo", 1, ZT_T0 + S_DEAD_AFTER + 1);
    zt_expect_request_attempt(engine, "WX", "echo", 0, ZT_BODY, 2);
    zt_expect_empty(engine);
}

//  ---------------------------------------------------------------------------
//  Late replies and retried CALLs

//  The lost worker's REPLY on its old ticket never reaches the caller, who
//  gets exactly one answer: the one of the worker now holding the call.
static void
test_engine_drops_late_reply_of_the_lost_worker(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 0, ZT_BODY, 1);
    zt_ready_flags(engine, "W2", "echo", 1, S_IDEMPOTENT, ZT_T0 + S_DEAD_AFTER - 500);
    zm_engine_on_tick(engine, ZT_T0 + S_DEAD_AFTER);
    uint64_t t2 = zt_expect_request_attempt(engine, "W2", "echo", 0, ZT_BODY, 2);
    const int64_t now = ZT_T0 + S_DEAD_AFTER;

    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(6), now + 10);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "not registered");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1, .workers_expired = 1, .dropped_late_reply = 1);
    //  Registered again on the same routing id, it still holds nothing.
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, now + 20);
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(6), now + 30);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .requeued = 1, .workers_expired = 1, .dropped_late_reply = 2);

    zt_answer(engine, "W2", t2, ZM_STATUS_OK, zt_fixint(7), now + 40);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(7));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1, .requeued = 1, .workers_expired = 1,
                .dropped_late_reply = 2);
}

static void
test_engine_ignores_duplicate_call_while_queued(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(1), ZT_T0);
    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(1), ZT_T0 + 10);    //  the retry
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .duplicate_calls = 1);
    zt_call(engine, "C2", 5, "echo", 0, zt_fixint(2), ZT_T0 + 20);    //  not C1's: a call
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .duplicate_calls = 1);

    zt_ready(engine, "W1", "echo", 3, ZT_T0 + 30);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(1), 1);
    uint64_t t2 = zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(2), 1);
    zt_expect_empty(engine);                    //  the retry took no slot
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(3), ZT_T0 + 40);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, zt_fixint(3));
    zt_answer(engine, "W1", t2, ZM_STATUS_OK, zt_fixint(4), ZT_T0 + 41);
    zt_expect_reply(engine, "C2", 5, ZM_STATUS_OK, zt_fixint(4));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .replies = 2, .duplicate_calls = 1);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 50);
    zt_assert_service(status, "echo", 1, 3, 0, 0, 2);
}

static void
test_engine_ignores_duplicate_call_while_held(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(1), ZT_T0);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(1), 1);
    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(1), ZT_T0 + 10);
    zt_expect_empty(engine);                    //  not run twice, though a slot is free
    ZT_COUNTERS(.calls = 2, .duplicate_calls = 1);
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, zt_fixint(2));
    zt_expect_empty(engine);                    //  one answer for both

    //  Answered: the same id is a new call now.
    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(3), ZT_T0 + 30);
    uint64_t t2 = zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(3), 1);
    assert_true(t2 != t1);
    zt_answer(engine, "W1", t2, ZM_STATUS_OK, zt_fixint(4), ZT_T0 + 40);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, zt_fixint(4));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .replies = 2, .duplicate_calls = 1);
}

//  408 while queued, 408 while held and 502 are answers too: after each,
//  the request id is free again.
static void
test_engine_request_id_is_new_again_after_an_error_answer(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 5, "echo", 100, zt_fixint(1), ZT_T0);
    zm_engine_on_tick(engine, ZT_T0 + 100);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_EXPIRED, NULL);
    zt_ready(engine, "W1", "echo", 1, ZT_T0 + 200);
    zt_call(engine, "C1", 5, "echo", 100, zt_fixint(2), ZT_T0 + 200);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 100, zt_fixint(2), 1);
    zm_engine_on_tick(engine, ZT_T0 + 300);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_EXPIRED, NULL);
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 310);     //  late
    zt_expect_empty(engine);

    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(3), ZT_T0 + 400);
    zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(3), 1);
    zt_leave(engine, "W1", ZT_T0 + 410);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_WORKER_LOST, NULL);
    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 420);
    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(4), ZT_T0 + 430);
    zt_expect_request_attempt(engine, "W2", "echo", 0, zt_fixint(4), 1);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 4, .expired = 2, .worker_lost = 1, .dropped_late_reply = 1);
}

//  ---------------------------------------------------------------------------
//  PROGRESS

static void
test_engine_progress_moves_the_deadline_and_reaches_the_caller(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call_flags(engine, "C1", 1, "echo", 300, ZM_CALL_PROGRESS, ZT_BODY, ZT_T0);
    uint64_t ticket = zt_expect_request_attempt(engine, "W1", "echo", 300, ZT_BODY, 1);
    zt_progress(engine, "W1", ticket, 600, ZT_T0 + 200);        //  deadline: +800
    zt_expect_progress(engine, "C1", 1, 600);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .progress = 1);

    zm_engine_on_tick(engine, ZT_T0 + 300);                     //  the old deadline
    zm_engine_on_tick(engine, ZT_T0 + 799);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 800);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .progress = 1, .expired = 1);
}

//  A caller whose CALL had no flags may be a REQ socket: it gets its REPLY
//  and nothing else, but the deadline moves all the same.
static void
test_engine_progress_is_not_sent_to_a_caller_without_flags(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 300, ZT_BODY, ZT_T0);
    uint64_t ticket = zt_expect_request_attempt(engine, "W1", "echo", 300, ZT_BODY, 1);
    zt_progress(engine, "W1", ticket, 600, ZT_T0 + 200);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .progress = 1);
    zm_engine_on_tick(engine, ZT_T0 + 799);
    zt_expect_empty(engine);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 799);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, ZT_ANSWER);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1, .progress = 1);
}

//  PROGRESS only ever moves a deadline out; a call without one keeps none.
static void
test_engine_progress_never_shortens_a_deadline(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    zt_call_flags(engine, "C1", 1, "echo", 500, ZM_CALL_PROGRESS, zt_fixint(1), ZT_T0);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 500, zt_fixint(1), 1);
    zt_call_flags(engine, "C2", 2, "echo", 0, ZM_CALL_PROGRESS, zt_fixint(2), ZT_T0);
    uint64_t t2 = zt_expect_request_attempt(engine, "W1", "echo", 0, zt_fixint(2), 1);
    zt_progress(engine, "W1", t1, 100, ZT_T0 + 100);
    zt_expect_progress(engine, "C1", 1, 100);
    zt_progress(engine, "W1", t2, 100, ZT_T0 + 100);
    zt_expect_progress(engine, "C2", 2, 100);
    zm_engine_on_tick(engine, ZT_T0 + 499);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 500);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);                    //  C2's call has no deadline still
    zt_answer(engine, "W1", t2, ZM_STATUS_OK, zt_fixint(3), ZT_T0 + 900);
    zt_expect_reply(engine, "C2", 2, ZM_STATUS_OK, zt_fixint(3));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .replies = 1, .progress = 2, .expired = 1);
}

//  A ticket the worker does not hold (another worker's, unknown, 0, or one
//  already answered 408) gets no PROGRESS through and moves no deadline.
static void
test_engine_ignores_progress_for_a_ticket_not_held(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_ready(engine, "W2", "echo", 1, ZT_T0);
    zt_call_flags(engine, "C1", 1, "echo", 300, ZM_CALL_PROGRESS, zt_fixint(1), ZT_T0);
    uint64_t t1 = zt_expect_request_attempt(engine, "W1", "echo", 300, zt_fixint(1), 1);
    zt_call_flags(engine, "C2", 2, "echo", 0, ZM_CALL_PROGRESS, zt_fixint(2), ZT_T0);
    uint64_t t2 = zt_expect_request_attempt(engine, "W2", "echo", 0, zt_fixint(2), 1);
    zt_progress(engine, "W2", t1, 5000, ZT_T0 + 100);          //  W1's ticket
    zt_progress(engine, "W1", t1 + t2 + 100, 5000, ZT_T0 + 100);
    zt_progress(engine, "W1", 0, 5000, ZT_T0 + 100);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2);
    zm_engine_on_tick(engine, ZT_T0 + 300);                     //  the deadline held
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_progress(engine, "W1", t1, 5000, ZT_T0 + 400);          //  answered already
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .expired = 1);
    //  Both workers are still registered and serving.
    zt_progress(engine, "W2", t2, 5000, ZT_T0 + 500);
    zt_expect_progress(engine, "C2", 2, 5000);
    zt_answer(engine, "W2", t2, ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 600);
    zt_expect_reply(engine, "C2", 2, ZM_STATUS_OK, zt_fixint(2));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .replies = 1, .expired = 1, .progress = 1);
}

//  PROGRESS is traffic: it keeps the worker's session alive like HEARTBEAT.
static void
test_engine_progress_postpones_worker_expiry(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    zt_progress(engine, "W1", ticket, 1000, ZT_T0 + 2000);
    zm_engine_on_tick(engine, ZT_T0 + S_DEAD_AFTER);
    zt_expect_heartbeat(engine, "W1");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .progress = 1);
    zm_engine_on_tick(engine, ZT_T0 + 2000 + S_DEAD_AFTER);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .progress = 1, .worker_lost = 1, .workers_expired = 1);
}

static void
test_engine_disconnects_unregistered_progress(void **state)
{
    zm_engine_t *engine = *state;
    zt_progress(engine, "X1", 1, 1000, ZT_T0);
    zt_expect_disconnect(engine, "X1", ZM_STATUS_MALFORMED, "not registered");
    zt_expect_empty(engine);
    ZT_COUNTERS(0);
    zt_ready(engine, "X1", "echo", 1, ZT_T0 + 1);               //  it may still register
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0 + 2);
    uint64_t ticket = zt_expect_request(engine, "X1", "echo", 0, ZT_BODY);
    zt_progress(engine, "X1", ticket, 1000, ZT_T0 + 3);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .progress = 1);
}

//  A registered worker's malformed PROGRESS ends its session like any other
//  malformed message; a good PROGRESS from the next worker still works.
static void
test_engine_kicks_worker_sending_malformed_progress(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call_flags(engine, "C1", 1, "echo", 0, ZM_CALL_PROGRESS, ZT_BODY, ZT_T0);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    assert_true(ticket < 128);                  //  a positive fixint below
    char header[] = "\x94\xa4ZMP1\xa8PROGRESS\x00\xcd\x03\xe8";
    header[15] = (char) ticket;
    const zt_bytes_t frames[] = {ZT_EMPTY, {header, sizeof header - 1}, ZT_BYTES("\xc0")};
    zt_feed_raw(engine, "W1", frames, 3, ZT_T0 + 10);           //  with a body frame
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "frames");
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .worker_lost = 1, .workers_kicked = 1);

    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 20);
    zt_call_flags(engine, "C1", 2, "echo", 0, ZM_CALL_PROGRESS, ZT_BODY, ZT_T0 + 21);
    ticket = zt_expect_request(engine, "W2", "echo", 0, ZT_BODY);
    zt_progress(engine, "W2", ticket, 1000, ZT_T0 + 22);
    zt_expect_progress(engine, "C1", 2, 1000);
    zt_expect_empty(engine);
}

//  ---------------------------------------------------------------------------
//  zmesh.status

static void
test_engine_status_tells_idempotent_workers(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "echo", 1, S_IDEMPOTENT, ZT_T0);
    zt_ready(engine, "W2", "echo", 1, ZT_T0);
    zt_ready_flags(engine, "W3", "echo", 1, 2, ZT_T0);          //  an unknown bit only
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 1);
    static const struct {
        const char *id;         //  hex of "W1", "W2", "W3"
        bool idempotent;
    } expected[] = {{"5731", true}, {"5732", false}, {"5733", false}};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const msgpack_object *worker = zt_status_entry(status, "workers", "id", expected[i].id);
        assert_non_null(worker);
        const msgpack_object *flag = zt_map_get(worker, "idempotent");
        assert_int_equal(flag->type, MSGPACK_OBJECT_BOOLEAN);
        assert_int_equal(flag->via.boolean, expected[i].idempotent);
    }
    const msgpack_object *counters = zt_map_get(status->root, "counters");
    assert_int_equal(zt_map_uint(counters, "requeued"), 0);
    assert_int_equal(zt_map_uint(counters, "duplicate_calls"), 0);
    assert_int_equal(zt_map_uint(counters, "progress"), 0);
    zt_expect_empty(engine);
}

int
main(void)
{
    zsys_set_logstream(NULL);                   //  the engine's logs are not under test
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, zt_setup, zt_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_engine_request_carries_attempt_1_on_first_dispatch),
        S_TEST(test_engine_requeues_idempotent_call_when_worker_expires),
        S_TEST(test_engine_requeues_idempotent_call_when_worker_disconnects),
        S_TEST(test_engine_requeues_idempotent_call_when_worker_is_unreachable),
        S_TEST(test_engine_requeued_call_waits_at_the_head_of_the_queue),
        S_TEST(test_engine_requeued_calls_keep_their_order),
        S_TEST(test_engine_answers_502_after_max_attempts),
        S_TEST(test_engine_max_attempts_1_never_requeues),
        S_TEST(test_engine_non_idempotent_worker_loss_answers_502),
        S_TEST(test_engine_requeued_call_lost_by_a_non_idempotent_worker_gets_502),
        S_TEST(test_engine_answered_call_is_not_requeued),
        S_TEST(test_engine_requeued_call_past_its_deadline_gets_408),
        S_TEST(test_engine_requeued_call_expires_in_the_queue),
        S_TEST(test_engine_requeued_call_gets_404_when_no_worker_comes),
        S_TEST(test_engine_never_requeues_to_a_worker_dying_in_the_same_tick),
        S_TEST(test_engine_drops_late_reply_of_the_lost_worker),
        S_TEST(test_engine_ignores_duplicate_call_while_queued),
        S_TEST(test_engine_ignores_duplicate_call_while_held),
        S_TEST(test_engine_request_id_is_new_again_after_an_error_answer),
        S_TEST(test_engine_progress_moves_the_deadline_and_reaches_the_caller),
        S_TEST(test_engine_progress_is_not_sent_to_a_caller_without_flags),
        S_TEST(test_engine_progress_never_shortens_a_deadline),
        S_TEST(test_engine_ignores_progress_for_a_ticket_not_held),
        S_TEST(test_engine_progress_postpones_worker_expiry),
        S_TEST(test_engine_disconnects_unregistered_progress),
        S_TEST(test_engine_kicks_worker_sending_malformed_progress),
        S_TEST(test_engine_status_tells_idempotent_workers),
    };
#undef S_TEST
    return cmocka_run_group_tests_name("engine_failover", tests, NULL, NULL);
}
