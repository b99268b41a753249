//  test_engine_stream.c - unit tests of streamed replies in the broker's
//  routing logic (ZMP.md section 6.10): the window a REQUEST carries, PARTs
//  forwarded in order within the credit and CREDIT passed on to the worker,
//  a worker past its credit or out of sequence kicked, CANCEL from the
//  client and a client's closed connection stopping the worker, a worker
//  lost mid-stream answered 502 and never requeued, a worker that does not
//  stream answering with one REPLY, the silence deadline moved by each
//  PART and CREDIT, a streamed call without a timeout refused, and a
//  queued call cancelled from the middle of its queue. Fabricated messages
//  and an explicit clock, as in test_engine.c.

#include "engine_fixture.h"

#define S_FLAGS (ZM_CALL_PROGRESS | ZM_CALL_STREAM)
#define S_WORKER_FLAGS ZM_READY_STREAMS

static void
s_stream_call(zm_engine_t *engine, const char *client, uint64_t request_id, uint32_t timeout_ms,
              uint32_t window, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_CALL;
    command.id = request_id;
    snprintf(command.service, sizeof command.service, "files");
    command.timeout_ms = timeout_ms;
    command.flags = S_FLAGS;
    command.window = window;
    command.body = zframe_new(ZT_BODY.data, ZT_BODY.size);
    zt_feed(engine, client, &command, now);
}

static void
s_part(zm_engine_t *engine, const char *worker, uint64_t ticket, uint64_t seq, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = ZM_CMD_PART;
    command.id = ticket;
    command.seq = seq;
    command.body = zframe_new(zt_fixint((int) (seq % 10)).data, 1);
    zt_feed(engine, worker, &command, now);
}

static void
s_client_command(zm_engine_t *engine, const char *client, zm_cmd_t cmd, uint64_t request_id,
                 uint32_t credit, int64_t now)
{
    zm_proto_t command;
    zm_proto_init(&command);
    command.cmd = cmd;
    command.id = request_id;
    command.window = credit;
    zt_feed(engine, client, &command, now);
}

//  Pops the REQUEST to W1 and checks its window; returns its ticket.
static uint64_t
s_expect_request(zm_engine_t *engine, uint32_t window)
{
    zt_out_t *out = zt_pop(engine);
    zt_assert_peer(out, "W1");
    zt_assert_cmd(out, ZM_CMD_REQUEST);
    assert_int_equal(out->command.window, window);
    return out->command.id;
}

static void
s_expect_part(zm_engine_t *engine, const char *client, uint64_t request_id, uint64_t seq)
{
    zt_out_t *out = zt_pop(engine);
    zt_assert_peer(out, client);
    zt_assert_cmd(out, ZM_CMD_PART);
    assert_true(out->command.id == request_id);
    assert_true(out->command.seq == seq);
    zt_assert_body(out->command.body, zt_fixint((int) (seq % 10)));
}

static void
s_expect_to_worker(zm_engine_t *engine, zm_cmd_t cmd, uint64_t ticket, uint32_t credit)
{
    zt_out_t *out = zt_pop(engine);
    zt_assert_peer(out, "W1");
    zt_assert_cmd(out, cmd);
    assert_true(out->command.id == ticket);
    if (cmd == ZM_CMD_CREDIT)
        assert_int_equal(out->command.window, credit);
}

static void
test_engine_stream_forwards_parts_within_credit(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 1000, 2, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 2);
    s_part(engine, "W1", ticket, 1, ZT_T0 + 1);
    s_expect_part(engine, "C1", 5, 1);
    s_part(engine, "W1", ticket, 2, ZT_T0 + 2);
    s_expect_part(engine, "C1", 5, 2);
    zt_expect_empty(engine);
    //  The client read both: two more credits, passed on to the worker.
    s_client_command(engine, "C1", ZM_CMD_CREDIT, 5, 2, ZT_T0 + 3);
    s_expect_to_worker(engine, ZM_CMD_CREDIT, ticket, 2);
    s_part(engine, "W1", ticket, 3, ZT_T0 + 4);
    s_expect_part(engine, "C1", 5, 3);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 5);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, ZT_ANSWER);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .replies = 1, .streams = 1, .parts = 3);
    //  A CREDIT after the end crossed the REPLY: ignored.
    s_client_command(engine, "C1", ZM_CMD_CREDIT, 5, 2, ZT_T0 + 6);
    zt_expect_empty(engine);
}

static void
test_engine_stream_kicks_worker_past_its_credit(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS | ZM_READY_IDEMPOTENT, ZT_T0);
    s_stream_call(engine, "C1", 5, 60000, 1, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 1);
    s_part(engine, "W1", ticket, 1, ZT_T0 + 1);
    s_expect_part(engine, "C1", 5, 1);
    //  Seq 2 without a CREDIT: the broker would have to buffer it.
    s_part(engine, "W1", ticket, 2, ZT_T0 + 2);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "credit");
    //  Parts were sent: never requeued, even from an idempotent worker.
    zt_expect_error(engine, "C1", 5, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .streams = 1, .parts = 1, .worker_lost = 1, .workers_kicked = 1);
}

static void
test_engine_stream_kicks_worker_out_of_sequence(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 60000, 4, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 4);
    s_part(engine, "W1", ticket, 2, ZT_T0 + 1);          //  seq 1 went missing
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "sequence");
    zt_expect_error(engine, "C1", 5, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_empty(engine);
}

static void
test_engine_stream_cancel_stops_worker(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 60000, 2, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 2);
    s_part(engine, "W1", ticket, 1, ZT_T0 + 1);
    s_expect_part(engine, "C1", 5, 1);
    s_client_command(engine, "C1", ZM_CMD_CANCEL, 5, 0, ZT_T0 + 2);
    s_expect_to_worker(engine, ZM_CMD_CANCEL, ticket, 0);
    //  A part already on its way is dropped; the REPLY frees the slot, answers nobody.
    s_part(engine, "W1", ticket, 2, ZT_T0 + 3);
    zt_answer(engine, "W1", ticket, ZM_STATUS_HANDLER_ERROR, ZT_BYTES("\xa9" "cancelled"),
              ZT_T0 + 4);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .streams = 1, .parts = 1, .cancelled = 1, .dropped_late_part = 1);
    //  The slot is free: the next call goes out.
    s_stream_call(engine, "C1", 6, 60000, 2, ZT_T0 + 5);
    s_expect_request(engine, 2);
}

static void
test_engine_stream_client_gone_stops_worker(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 60000, 2, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 2);
    s_stream_call(engine, "C1", 6, 60000, 2, ZT_T0);        //  queued behind it
    char id[ZM_ENGINE_ID_MAX];
    zframe_t *routing = zframe_new("C1", 2);
    zm_engine_on_gone(engine, zm_engine_hex(id, routing), ZT_T0 + 1);
    zframe_destroy(&routing);
    s_expect_to_worker(engine, ZM_CMD_CANCEL, ticket, 0);
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 2, .streams = 1, .cancelled = 2);
    //  The queued one is gone: the worker's REPLY frees the slot and nothing is dispatched.
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 2);
    zt_expect_empty(engine);
}

static void
test_engine_stream_worker_lost_answers_502(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 60000, 2, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 2);
    s_part(engine, "W1", ticket, 1, ZT_T0 + 1);
    s_expect_part(engine, "C1", 5, 1);
    zt_send_failed(engine, "W1", false, ZT_T0 + 2);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_empty(engine);
}

static void
test_engine_stream_to_plain_worker_is_one_reply(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, 0, ZT_T0);
    s_stream_call(engine, "C1", 5, 60000, 2, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 0);      //  no window: it would not read it
    s_client_command(engine, "C1", ZM_CMD_CREDIT, 5, 1, ZT_T0 + 1);
    zt_expect_empty(engine);                            //  not passed on
    s_part(engine, "W1", ticket, 1, ZT_T0 + 2);
    zt_expect_disconnect(engine, "W1", ZM_STATUS_MALFORMED, "not streamed");
    zt_expect_error(engine, "C1", 5, ZM_STATUS_WORKER_LOST, "lost");
    zt_expect_empty(engine);
}

static void
test_engine_stream_deadline_is_silence(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 1000, 2, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 2);
    s_part(engine, "W1", ticket, 1, ZT_T0 + 900);
    s_expect_part(engine, "C1", 5, 1);
    s_client_command(engine, "C1", ZM_CMD_CREDIT, 5, 1, ZT_T0 + 1500);
    s_expect_to_worker(engine, ZM_CMD_CREDIT, ticket, 1);
    zm_engine_on_tick(engine, ZT_T0 + 2400);            //  1000 after the CREDIT: not yet
    zt_expect_heartbeat(engine, "W1");
    zt_expect_empty(engine);
    zm_engine_on_tick(engine, ZT_T0 + 2600);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_EXPIRED, "timeout");
    s_expect_to_worker(engine, ZM_CMD_CANCEL, ticket, 0);
    zt_expect_empty(engine);
}

//  Without a timeout nothing would end a stream whose client vanished (no CURVE to tell us):
//  it would hold the worker's slot for ever. Refused with a reason, and nothing dispatched.
static void
test_engine_stream_refuses_call_without_timeout(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 0, 2, ZT_T0);
    zt_expect_error(engine, "C1", 5, ZM_STATUS_MALFORMED, "needs a timeout_ms");
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 1, .rejected_malformed = 1);
    //  The worker is still free for a stream that has one.
    s_stream_call(engine, "C1", 6, 1000, 2, ZT_T0 + 1);
    s_expect_request(engine, 2);
}

//  CANCEL of a call in the middle of a queue takes that one out (by its handle) and leaves the
//  others in their order, with their bytes still counted.
static void
test_engine_stream_cancel_of_queued_call_keeps_the_rest(void **state)
{
    zm_engine_t *engine = *state;
    zt_ready_flags(engine, "W1", "files", 1, S_WORKER_FLAGS, ZT_T0);
    s_stream_call(engine, "C1", 5, 60000, 2, ZT_T0);
    uint64_t ticket = s_expect_request(engine, 2);
    for (uint64_t id = 6; id <= 8; id++)
        s_stream_call(engine, "C1", id, 60000, (uint32_t) id, ZT_T0);
    s_client_command(engine, "C1", ZM_CMD_CANCEL, 7, 0, ZT_T0 + 1);
    s_client_command(engine, "C1", ZM_CMD_CANCEL, 7, 0, ZT_T0 + 1);    //  again: ignored
    zt_expect_empty(engine);
    ZT_COUNTERS(.calls = 4, .streams = 1, .cancelled = 1);
    //  Each REPLY frees the slot for the next one still queued: 6, then 8.
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 2);
    zt_expect_reply(engine, "C1", 5, ZM_STATUS_OK, ZT_ANSWER);
    ticket = s_expect_request(engine, 6);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 3);
    zt_expect_reply(engine, "C1", 6, ZM_STATUS_OK, ZT_ANSWER);
    ticket = s_expect_request(engine, 8);
    zt_answer(engine, "W1", ticket, ZM_STATUS_OK, ZT_ANSWER, ZT_T0 + 4);
    zt_expect_reply(engine, "C1", 8, ZM_STATUS_OK, ZT_ANSWER);
    zt_expect_empty(engine);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_engine_stream_forwards_parts_within_credit, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_kicks_worker_past_its_credit, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_kicks_worker_out_of_sequence, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_cancel_stops_worker, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_client_gone_stops_worker, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_worker_lost_answers_502, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_to_plain_worker_is_one_reply, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_deadline_is_silence, zt_setup,
                                        zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_refuses_call_without_timeout,
                                        zt_setup, zt_teardown),
        cmocka_unit_test_setup_teardown(test_engine_stream_cancel_of_queued_call_keeps_the_rest,
                                        zt_setup, zt_teardown),
    };
    return cmocka_run_group_tests_name("engine_stream", tests, NULL, NULL);
}
