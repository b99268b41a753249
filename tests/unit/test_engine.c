//  test_engine.c - unit tests of the broker's routing logic (broker/engine.c
//  with its services, worker sessions and calls) on the good path: dispatch
//  to the least recently used worker, slots, queueing and its bound, the
//  grace of a service with no worker, call deadlines, stray replies, and the
//  zmesh.* services with the bounded service table. Each test feeds
//  fabricated ROUTER messages with an explicit `now` and pops every outbox
//  message (engine_fixture.h), so it pins down exactly who is told what and
//  which counters move. Failures of peers are test_engine_faults.c's, and
//  requeueing, retries and PROGRESS test_engine_failover.c's.

#include <stdio.h>

#include <sys/wait.h>
#include <unistd.h>

#include "engine_fixture.h"

//  ---------------------------------------------------------------------------
//  Dispatch and replies

static void
test_engine_dispatches_call_to_ready_worker(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_expect_empty(engine);                    //  READY has no acknowledgement
    zt_call(engine, "C1", 7, "echo", 5000, ZT_BODY, ZT_T0 + 10);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 5000, ZT_BODY);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1);

    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 7, ZM_STATUS_OK, ZT_ANSWER);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1);

    //  The slot is free again: the next call goes straight out, with a new ticket.
    zt_call(engine, "C1", 8, "echo", 0, ZT_BODY, ZT_T0 + 30);
    uint64_t next = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    assert_true(next != ticket);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .replies = 1);
}

static void
test_engine_request_carries_time_left(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 1, "echo", 1000, zt_fixint(1), ZT_T0);
    zt_call(engine, "C1", 2, "echo", 0, zt_fixint(2), ZT_T0 + 100);
    zt_expect_empty(engine);
    zt_ready(engine, "W1", "echo", 2, ZT_T0 + 300);
    zt_expect_request(engine, "W1", "echo", 700, zt_fixint(1));   //  1000 - 300 waited
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(2));     //  no deadline
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2);
}

static void
test_engine_forwards_handler_error(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 3, "echo", 0, ZT_BODY, ZT_T0);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    zt_answer(engine, "W1", ticket, ZM_STATUS_HANDLER_ERROR, ZT_BYTES("\xa4" "oops"), ZT_T0 + 5);
    zt_expect_reply(engine, "C1", 3, ZM_STATUS_HANDLER_ERROR, ZT_BYTES("\xa4" "oops"));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .handler_errors = 1);   //  `replies` counts 200s only
}

static void
test_engine_matches_out_of_order_replies(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 4, ZT_T0);
    uint64_t tickets[4];
    for (int i = 1; i <= 3; i++) {
        zt_call(engine, "C1", (uint64_t) i, "echo", 0, zt_fixint(i), ZT_T0 + i);
        tickets[i] = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(i));
    }
    zt_call(engine, "C2", 1, "echo", 0, zt_fixint(9), ZT_T0 + 4);  //  same id, other client
    uint64_t other = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(9));
    assert_true(tickets[1] != tickets[2] && tickets[2] != tickets[3] && tickets[3] != other);

    //  Each reply body is the request's number plus 5, so a mix-up shows.
    zt_answer(engine, "W1", tickets[3], ZM_STATUS_OK, zt_fixint(8), ZT_T0 + 10);
    zt_expect_reply(engine, "C1", 3, ZM_STATUS_OK, zt_fixint(8));
    zt_answer(engine, "W1", other, ZM_STATUS_OK, zt_fixint(0), ZT_T0 + 11);
    zt_expect_reply(engine, "C2", 1, ZM_STATUS_OK, zt_fixint(0));
    zt_answer(engine, "W1", tickets[1], ZM_STATUS_OK, zt_fixint(6), ZT_T0 + 12);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(6));
    zt_answer(engine, "W1", tickets[2], ZM_STATUS_OK, zt_fixint(7), ZT_T0 + 13);
    zt_expect_reply(engine, "C1", 2, ZM_STATUS_OK, zt_fixint(7));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 4, .replies = 4);
}

//  ---------------------------------------------------------------------------
//  Least recently used dispatch and slots

static void
test_engine_lru_rotates_over_workers(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 1);
    zt_ready(engine, "W3", "echo", 1, ZT_T0 + 2);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 10);
    uint64_t t1 = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C1", 2, "echo", 0, zt_fixint(2), ZT_T0 + 11);
    uint64_t t2 = zt_expect_request(engine, "W2", "echo", 0, zt_fixint(2));
    zt_call(engine, "C1", 3, "echo", 0, zt_fixint(3), ZT_T0 + 12);
    uint64_t t3 = zt_expect_request(engine, "W3", "echo", 0, zt_fixint(3));
    zt_expect_empty(engine);

    //  Freed in the order W3, W1: that is the new order of the ready list.
    zt_answer(engine, "W3", t3, ZM_STATUS_OK, zt_fixint(3), ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 3, ZM_STATUS_OK, zt_fixint(3));
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 21);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zt_call(engine, "C1", 4, "echo", 0, zt_fixint(4), ZT_T0 + 30);
    zt_expect_request(engine, "W3", "echo", 0, zt_fixint(4));
    zt_call(engine, "C1", 5, "echo", 0, zt_fixint(5), ZT_T0 + 31);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(5));
    zt_call(engine, "C1", 6, "echo", 0, zt_fixint(6), ZT_T0 + 32);
    zt_expect_empty(engine);                    //  every slot taken: queued

    zt_answer(engine, "W2", t2, ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 40);
    zt_expect_reply(engine, "C1", 2, ZM_STATUS_OK, zt_fixint(2));
    zt_expect_request(engine, "W2", "echo", 0, zt_fixint(6));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 6, .replies = 3);
}

static void
test_engine_worker_slots_fill_before_queueing(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 3, ZT_T0);
    uint64_t tickets[4];
    for (int i = 1; i <= 3; i++) {
        zt_call(engine, "C1", (uint64_t) i, "echo", 0, zt_fixint(i), ZT_T0 + i);
        tickets[i] = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(i));
    }
    zt_call(engine, "C1", 4, "echo", 0, zt_fixint(4), ZT_T0 + 4);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 4);

    zt_answer(engine, "W1", tickets[2], ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 10);
    zt_expect_reply(engine, "C1", 2, ZM_STATUS_OK, zt_fixint(2));
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(4));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 4, .replies = 1);
}

static void
test_engine_lru_moves_worker_with_slots_left_to_back(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    zt_ready(engine, "W2", "echo", 1, ZT_T0 + 1);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 10);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));   //  W1 to the back
    zt_call(engine, "C1", 2, "echo", 0, zt_fixint(2), ZT_T0 + 11);
    uint64_t t2 = zt_expect_request(engine, "W2", "echo", 0, zt_fixint(2));
    zt_call(engine, "C1", 3, "echo", 0, zt_fixint(3), ZT_T0 + 12);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(3));
    zt_call(engine, "C1", 4, "echo", 0, zt_fixint(4), ZT_T0 + 13);
    zt_expect_empty(engine);
    zt_answer(engine, "W2", t2, ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 2, ZM_STATUS_OK, zt_fixint(2));
    zt_expect_request(engine, "W2", "echo", 0, zt_fixint(4));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 4, .replies = 1);
}

//  ---------------------------------------------------------------------------
//  Queueing and its bound

static void
test_engine_queued_calls_dispatch_in_order(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 1);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C2", 2, "echo", 0, zt_fixint(2), ZT_T0 + 2);
    zt_call(engine, "C3", 3, "echo", 0, zt_fixint(3), ZT_T0 + 3);
    zt_call(engine, "C1", 4, "echo", 0, zt_fixint(4), ZT_T0 + 4);
    zt_expect_empty(engine);

    static const char *const clients[] = {"", "C1", "C2", "C3", "C1"};
    for (int i = 1; i <= 4; i++) {
        zt_answer(engine, "W1", ticket, ZM_STATUS_OK, zt_fixint(i), ZT_T0 + 10 * i);
        zt_expect_reply(engine, clients[i], (uint64_t) i, ZM_STATUS_OK, zt_fixint(i));
        if (i < 4)
            ticket = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(i + 1));
        zt_expect_empty(engine);
    }
    ZT_COUNTERS(.calls = 4, .replies = 4);
}

static void
test_engine_rejects_call_over_queue_bound(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 1);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    for (int i = 2; i <= 1 + ZT_MAX_QUEUE; i++)
        zt_call(engine, "C1", (uint64_t) i, "echo", 0, zt_fixint(i), ZT_T0 + i);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 4);

    zt_call(engine, "C2", 9, "echo", 0, zt_fixint(9), ZT_T0 + 10);
    zt_expect_error(engine, "C2", 9, ZM_STATUS_BUSY, "full");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 5, .rejected_busy = 1);

    //  The rejected call took no place: the queue still serves 2, 3, 4.
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(2));
    zt_expect_empty(engine);
    zt_call(engine, "C2", 10, "echo", 0, zt_fixint(0), ZT_T0 + 21);  //  room for one again
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 6, .replies = 1, .rejected_busy = 1);
}

//  ---------------------------------------------------------------------------
//  Grace: a service with no worker

static void
test_engine_no_worker_answers_404_after_grace(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 5, "nobody", 0, ZT_BODY, ZT_T0 + 100);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 100 + ZT_GRACE_MS - 1);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1);
    zm_engine_on_tick(engine, ZT_T0 + 100 + ZT_GRACE_MS);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_NO_SERVICE, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .rejected_no_service = 1);
    zm_engine_on_tick(engine, ZT_T0 + 100 + 2 * ZT_GRACE_MS);      //  answered once only
    zt_expect_empty(engine);
}

static void
test_engine_worker_within_grace_gets_queued_call(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 1, "echo", 0, ZT_BODY, ZT_T0);
    zm_engine_on_tick(engine, ZT_T0 + 200);
    zt_expect_empty(engine);
    zt_ready(engine, "W1", "echo", 1, ZT_T0 + ZT_GRACE_MS - 1);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, ZT_BODY);
    zm_engine_on_tick(engine, ZT_T0 + ZT_GRACE_MS);
    zt_expect_empty(engine);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 600);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, ZT_ANSWER);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1);
}

static void
test_engine_grace_restarts_when_last_worker_leaves(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 10);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C1", 2, "echo", 0, zt_fixint(2), ZT_T0 + 20);
    zt_call(engine, "C2", 3, "echo", 0, zt_fixint(3), ZT_T0 + 30);
    zm_engine_on_tick(engine, ZT_T0 + 900);     //  queued far longer than the grace: fine
    zt_expect_empty(engine);

    zt_leave(engine, "W1", ZT_T0 + 950);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_WORKER_LOST, NULL);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 950 + ZT_GRACE_MS - 1);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 950 + ZT_GRACE_MS);
    zt_expect_error(engine, "C1", 2, ZM_STATUS_NO_SERVICE, NULL);
    zt_expect_error(engine, "C2", 3, ZM_STATUS_NO_SERVICE, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .worker_lost = 1, .rejected_no_service = 2);
}

//  ZMP.md 11.4: "When the call's own deadline comes before the end of its
//  grace, the deadline wins and the answer is 408", also when one tick sees
//  both passed (ticks are ZM_ENGINE_TICK_MS apart).
static void
test_engine_deadline_before_grace_wins(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 1, "nobody", 200, ZT_BODY, ZT_T0);
    zm_engine_on_tick(engine, ZT_T0 + 199);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 200);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .expired = 1);

    //  Deadline at +450, grace ends at +500, the next tick comes at +500.
    zt_call(engine, "C1", 2, "nobody", 450, ZT_BODY, ZT_T0 + 1000);
    zm_engine_on_tick(engine, ZT_T0 + 1000 + ZT_GRACE_MS);
    zt_expect_error(engine, "C1", 2, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .expired = 2);
}

//  ---------------------------------------------------------------------------
//  Deadlines

static void
test_engine_queued_call_expires_at_deadline(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 10);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C2", 2, "echo", 200, zt_fixint(2), ZT_T0 + 20);
    zm_engine_on_tick(engine, ZT_T0 + 219);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 220);
    zt_expect_error(engine, "C2", 2, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .expired = 1);

    //  The freed slot finds nothing to do: the expired call is gone for good.
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 300);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 400);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .replies = 1, .expired = 1);
}

static void
test_engine_held_call_expires_at_deadline(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 300, zt_fixint(1), ZT_T0);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 300, zt_fixint(1));
    zm_engine_on_tick(engine, ZT_T0 + 299);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 300);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .expired = 1);

    //  The worker keeps the slot until it answers: the next call waits.
    zt_call(engine, "C2", 2, "echo", 0, zt_fixint(2), ZT_T0 + 310);
    zm_engine_on_tick(engine, ZT_T0 + 400);     //  and the caller is answered once only
    zt_expect_empty(engine);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 500);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(2));   //  the late reply goes nowhere
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .expired = 1, .dropped_late_reply = 1);
}

static void
test_engine_lost_worker_skips_answered_call(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 100, zt_fixint(1), ZT_T0);
    zt_expect_request(engine, "W1", "echo", 100, zt_fixint(1));
    zt_call(engine, "C2", 2, "echo", 0, zt_fixint(2), ZT_T0);
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(2));
    zm_engine_on_tick(engine, ZT_T0 + 100);
    zt_expect_error(engine, "C1", 1, ZM_STATUS_EXPIRED, NULL);
    zt_leave(engine, "W1", ZT_T0 + 200);
    zt_expect_error(engine, "C2", 2, ZM_STATUS_WORKER_LOST, NULL);  //  C1 was answered already
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .expired = 1, .worker_lost = 1);
}

//  ZMP.md 11.3: "The broker never dispatches a call that has expired", also
//  when a slot frees up after the deadline but before the next tick.
static void
test_engine_never_dispatches_expired_call(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_call(engine, "C1", 1, "echo", 0, zt_fixint(1), ZT_T0 + 10);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_call(engine, "C2", 2, "echo", 200, zt_fixint(2), ZT_T0 + 20);
    zt_expect_empty(engine);

    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 250);  //  no tick yet
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zm_engine_on_tick(engine, ZT_T0 + 250);
    zt_expect_error(engine, "C2", 2, ZM_STATUS_EXPIRED, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .replies = 1, .expired = 1);
}

//  ---------------------------------------------------------------------------
//  Stray replies

static void
test_engine_drops_reply_for_unknown_ticket(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_answer(engine, "W1", t1 + t2 + 1000, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 10);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .dropped_late_reply = 1);

    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 20);  //  still registered
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 30);  //  a duplicate
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .replies = 1, .dropped_late_reply = 2);
}

static void
test_engine_drops_reply_for_other_workers_ticket(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    zt_answer(engine, "W2", t1, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 10);  //  W1's ticket
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .dropped_late_reply = 1);

    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zt_answer(engine, "W2", t2, ZM_STATUS_OK, zt_fixint(2), ZT_T0 + 21);
    zt_expect_reply(engine, "C2", 2, ZM_STATUS_OK, zt_fixint(2));
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .replies = 2, .dropped_late_reply = 1);
}

//  Ticket 0 is never given (tickets start at 1), so a REPLY carrying it is a
//  stray. The risky step runs in a child first: if the engine aborts on it,
//  this test fails instead of the whole run dying.
static void
test_engine_drops_reply_for_ticket_zero(void **state)
{
    zm_engine_t *engine = *state;
    uint64_t t1, t2;
    zt_two_busy_workers(engine, &t1, &t2);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        zt_answer(engine, "W1", 0, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 10);
        zm_engine_destroy(&engine);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the engine died on a worker REPLY with ticket 0 (%s %d)",
                 WIFSIGNALED(status) ? "signal" : "exit",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    zt_answer(engine, "W1", 0, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 10);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .dropped_late_reply = 1);
    zt_answer(engine, "W1", t1, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zt_expect_empty(engine);
}

//  ---------------------------------------------------------------------------
//  zmesh.* services

static void
test_engine_status_reports_services_workers_counters(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready(engine, "W1", "echo", 2, ZT_T0);
    for (int i = 1; i <= 3; i++)
        zt_call(engine, "C1", (uint64_t) i, "echo", 0, zt_fixint(i), ZT_T0 + 10);
    uint64_t ticket = zt_expect_request(engine, "W1", "echo", 0, zt_fixint(1));
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(2));
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, zt_fixint(1), ZT_T0 + 20);
    zt_expect_reply(engine, "C1", 1, ZM_STATUS_OK, zt_fixint(1));
    zt_expect_request(engine, "W1", "echo", 0, zt_fixint(3));
    zt_call(engine, "C1", 4, "echo", 0, zt_fixint(4), ZT_T0 + 30);
    zt_call(engine, "C2", 5, "nobody", 0, zt_fixint(5), ZT_T0 + 40);
    zt_expect_empty(engine);

    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 250);
    assert_true(zt_str_is(zt_map_get(status->root, "version"), "0.1.0"));
    assert_int_equal(zt_map_uint(status->root, "uptime_ms"), 250);
    assert_int_equal(zt_status_count(status, "services"), 2);
    zt_assert_service(status, "echo", 1, 2, 2, 1, 4);
    zt_assert_service(status, "nobody", 0, 0, 0, 1, 1);
    assert_int_equal(zt_status_count(status, "workers"), 1);
    const msgpack_object *worker = zt_status_entry(status, "workers", "id", "5731");  //  "W1"
    assert_non_null(worker);
    assert_true(zt_str_is(zt_map_get(worker, "service"), "echo"));
    assert_int_equal(zt_map_uint(worker, "slots"), 2);
    assert_int_equal(zt_map_uint(worker, "inflight"), 2);
    assert_int_equal(zt_map_uint(worker, "served"), 1);
    assert_int_equal(zt_map_uint(worker, "silent_ms"), 230);     //  last heard at +20
    const msgpack_object *counters = zt_map_get(status->root, "counters");
    assert_int_equal(zt_map_uint(counters, "calls"), 6);        //  counting this one
    assert_int_equal(zt_map_uint(counters, "replies"), 1);
    assert_int_equal(zt_map_uint(counters, "rejected_no_service"), 0);
    assert_int_equal(zt_map_uint(counters, "dropped_late_reply"), 0);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 6, .replies = 2);
}

static void
test_engine_other_reserved_name_gets_404_at_once(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 3, "zmesh.other", 0, ZT_BODY, ZT_T0);
    zt_expect_error(engine, "C1", 3, ZM_STATUS_NO_SERVICE, NULL);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .rejected_no_service = 1);
    zm_engine_on_tick(engine, ZT_T0 + ZT_GRACE_MS);
    zt_expect_empty(engine);
    assert_int_equal(zhashx_size(engine->services), 0);         //  no service was made
}

//  ---------------------------------------------------------------------------
//  The service table stays bounded

static void
test_engine_forgets_idle_services(void **state)
{
    zm_engine_t *engine = *state;
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "ghost%d", i);
        zt_call(engine, "C1", (uint64_t) i + 1, name, 0, ZT_BODY, ZT_T0);
    }
    zt_ready(engine, "W1", "echo", 1, ZT_T0);
    zt_leave(engine, "W1", ZT_T0 + 100);
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + ZT_GRACE_MS - 1);
    zt_expect_empty(engine);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + ZT_GRACE_MS - 1);
    assert_int_equal(zt_status_count(status, "services"), 21);
    zt_assert_service(status, "echo", 0, 0, 0, 0, 0);

    zm_engine_on_tick(engine, ZT_T0 + ZT_GRACE_MS);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = (uint64_t) i + 1;
    zt_expect_errors_any_order(engine, "C1", ZM_STATUS_NO_SERVICE, ids, 20);
    zt_expect_empty(engine);
    status = zt_status_fetch(engine, ZT_T0 + ZT_GRACE_MS);
    assert_int_equal(zt_status_count(status, "services"), 1);  //  echo: grace from +100
    zm_engine_on_tick(engine, ZT_T0 + 100 + ZT_GRACE_MS);
    status = zt_status_fetch(engine, ZT_T0 + 100 + ZT_GRACE_MS);
    assert_int_equal(zt_status_count(status, "services"), 0);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 23, .replies = 3, .rejected_no_service = 20);
}

static void
test_engine_max_services_rejects_new_names(void **state)
{
    zm_engine_t *engine = *state;
    zt_call(engine, "C1", 1, "a", 0, ZT_BODY, ZT_T0);
    zt_call(engine, "C1", 2, "b", 0, ZT_BODY, ZT_T0);
    zt_expect_empty(engine);
    zt_call(engine, "C1", 3, "c", 0, ZT_BODY, ZT_T0 + 1);
    zt_expect_error(engine, "C1", 3, ZM_STATUS_BUSY, "services");
    zt_ready(engine, "W1", "c", 1, ZT_T0 + 2);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_BUSY, "services");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 3, .rejected_busy = 2);                //  the CALL and the READY
    zt_call(engine, "C1", 4, "a", 0, ZT_BODY, ZT_T0 + 3);       //  known names still queue
    zt_expect_empty(engine);
    const zt_status_t *status = zt_status_fetch(engine, ZT_T0 + 4);  //  status still works
    assert_int_equal(zt_status_count(status, "services"), 2);

    zm_engine_on_tick(engine, ZT_T0 + ZT_GRACE_MS + 3);
    zt_expect_errors_any_order(engine, "C1", ZM_STATUS_NO_SERVICE, (uint64_t[]){1, 2, 4}, 3);
    zt_expect_empty(engine);
    zt_ready(engine, "W1", "c", 1, ZT_T0 + 600);  //  room again once they are forgotten
    zt_call(engine, "C1", 5, "c", 0, ZT_BODY, ZT_T0 + 601);
    zt_expect_request(engine, "W1", "c", 0, ZT_BODY);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 6, .replies = 1, .rejected_busy = 2, .rejected_no_service = 3);
}

int
main(void)
{
    zsys_set_logstream(NULL);                   //  the engine's logs are not under test
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, zt_setup, zt_teardown)
    const struct CMUnitTest tests[] = {
        S_TEST(test_engine_dispatches_call_to_ready_worker),
        S_TEST(test_engine_request_carries_time_left),
        S_TEST(test_engine_forwards_handler_error),
        S_TEST(test_engine_matches_out_of_order_replies),
        S_TEST(test_engine_lru_rotates_over_workers),
        S_TEST(test_engine_worker_slots_fill_before_queueing),
        S_TEST(test_engine_lru_moves_worker_with_slots_left_to_back),
        S_TEST(test_engine_queued_calls_dispatch_in_order),
        S_TEST(test_engine_rejects_call_over_queue_bound),
        S_TEST(test_engine_no_worker_answers_404_after_grace),
        S_TEST(test_engine_worker_within_grace_gets_queued_call),
        S_TEST(test_engine_grace_restarts_when_last_worker_leaves),
        S_TEST(test_engine_deadline_before_grace_wins),
        S_TEST(test_engine_queued_call_expires_at_deadline),
        S_TEST(test_engine_held_call_expires_at_deadline),
        S_TEST(test_engine_lost_worker_skips_answered_call),
        S_TEST(test_engine_never_dispatches_expired_call),
        S_TEST(test_engine_drops_reply_for_unknown_ticket),
        S_TEST(test_engine_drops_reply_for_other_workers_ticket),
        S_TEST(test_engine_drops_reply_for_ticket_zero),
        S_TEST(test_engine_status_reports_services_workers_counters),
        S_TEST(test_engine_other_reserved_name_gets_404_at_once),
        S_TEST(test_engine_forgets_idle_services),
        cmocka_unit_test_setup_teardown(test_engine_max_services_rejects_new_names,
                                        zt_setup_two_services, zt_teardown),
    };
#undef S_TEST
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
