//  test_stream_peers.c - the client and worker libraries' side of streamed replies (ZMP.md
//  section 6.10) against a fake broker: a ROUTER socket in the test that speaks ZMP/1 through
//  the codec and does exactly what each case needs, including what a real broker never does.
//  The client: a streamed call is never resent, so retries must not cut its timeout into
//  attempts; a part beyond the credit granted fails the stream (ZMESH_EPROTO, CANCEL sent)
//  instead of being buffered. The worker: a final reply of an old session must not make the
//  worker forget a stream of the new session that has the same ticket.
#include "fake_broker.h"
#include "zm_proto.h"
#include "zmesh.h"

#include <czmq.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

//  A one-byte MessagePack positive fixint body.
static zframe_t *
s_fixint(int value)
{
    uint8_t byte = (uint8_t) value;
    return zframe_new(&byte, 1);
}

static void
s_send_part(zm_fake_broker_t *fake, zframe_t *routing, uint64_t id, uint64_t seq)
{
    zm_proto_t part;
    zm_proto_init(&part);
    part.cmd = ZM_CMD_PART;
    part.id = id;
    part.seq = seq;
    part.body = s_fixint((int) seq);
    zm_fake_broker_send(fake, routing, &part);
}

static void
s_send_reply(zm_fake_broker_t *fake, zframe_t *routing, uint64_t id, uint32_t status)
{
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = id;
    reply.status = status;
    reply.body = s_fixint(0);
    zm_fake_broker_send(fake, routing, &reply);
}

//  Retries split a plain call's timeout into attempts; a stream is never resent, so its one
//  attempt is the whole timeout. Here the first part comes after half of it, long after a
//  quarter (retries 3) has passed: the stream must go on.
static void
test_stream_client_retries_keep_whole_timeout(void **state)
{
    zm_fake_broker_t *fake = *state;
    zmesh_client_t *client = zmesh_client_new(fake->endpoint, NULL);
    assert_non_null(client);
    zmesh_client_set_retries(client, 3);
    uint64_t id;
    assert_int_equal(zmesh_client_stream(client, "files", "\xc0", 1, 2000, 4, &id), ZMESH_OK);
    zm_proto_t call;
    zframe_t *routing = zm_fake_broker_expect(fake, ZM_CMD_CALL, &call, 5000);
    assert_true(call.flags & ZM_CALL_STREAM);
    assert_true(call.timeout_ms > 1500);
    uint64_t wire_id = call.id;
    zm_proto_reset(&call);
    zmesh_msg_t *msg = NULL;
    bool last = false;
    int64_t start = zclock_mono();
    int rc = zmesh_client_next(client, id, 1000, &msg, &last);
    if (rc != ZMESH_EAGAIN || last)
        fail_msg("the stream ended after %d ms with rc %d (%s): 1000 ms of a 2000 ms timeout "
                 "is not silence past it", (int) (zclock_mono() - start), rc,
                 zmesh_client_error(client));
    s_send_part(fake, routing, wire_id, 1);
    s_send_reply(fake, routing, wire_id, 200);
    assert_int_equal(zmesh_client_next(client, id, 5000, &msg, &last), ZMESH_OK);
    assert_false(last);
    assert_non_null(msg);
    zmesh_msg_destroy(&msg);
    assert_int_equal(zmesh_client_next(client, id, 5000, &msg, &last), ZMESH_OK);
    assert_true(last);
    zmesh_msg_destroy(&msg);
    //  No copy of the CALL went out: a stream is never resent.
    zm_proto_t other;
    if (zm_fake_broker_recv(fake, &other, NULL, 200)) {
        assert_int_not_equal(other.cmd, ZM_CMD_CALL);
        zm_proto_reset(&other);
    }
    zframe_destroy(&routing);
    zmesh_client_destroy(&client);
}

//  A broker (or a worker through a broken broker) that sends more parts than the client
//  granted would have the client buffer without bound: the stream fails with ZMESH_EPROTO
//  after the parts within the credit, and the client sends CANCEL.
static void
test_stream_client_part_beyond_credit_fails(void **state)
{
    zm_fake_broker_t *fake = *state;
    zmesh_client_t *client = zmesh_client_new(fake->endpoint, NULL);
    assert_non_null(client);
    uint64_t stream_id, plain_id;
    assert_int_equal(zmesh_client_stream(client, "files", "\xc0", 1, 5000, 2, &stream_id),
                     ZMESH_OK);
    assert_int_equal(zmesh_client_send(client, "echo", "\xc0", 1, 5000, &plain_id), ZMESH_OK);
    zm_proto_t call;
    zframe_t *routing = zm_fake_broker_expect(fake, ZM_CMD_CALL, &call, 5000);
    assert_int_equal(call.window, 2);
    uint64_t wire_stream = call.id;
    zm_proto_reset(&call);
    zframe_t *again = zm_fake_broker_expect(fake, ZM_CMD_CALL, &call, 5000);
    uint64_t wire_plain = call.id;
    zm_proto_reset(&call);
    zframe_destroy(&again);
    //  Three parts on a window of two, then the plain call's reply: once the client has that
    //  reply, it has read the parts before it.
    for (uint64_t seq = 1; seq <= 3; seq++)
        s_send_part(fake, routing, wire_stream, seq);
    s_send_reply(fake, routing, wire_plain, 200);
    zmesh_msg_t *msg = NULL;
    uint64_t got_id = 0;
    assert_int_equal(zmesh_client_recv(client, 5000, &got_id, &msg), ZMESH_OK);
    assert_true(got_id == plain_id);
    zmesh_msg_destroy(&msg);
    bool last = false;
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(zmesh_client_next(client, stream_id, 1000, &msg, &last), ZMESH_OK);
        assert_false(last);
        zmesh_msg_destroy(&msg);
    }
    int rc = zmesh_client_next(client, stream_id, 1000, &msg, &last);
    if (rc != ZMESH_EPROTO || !last)
        fail_msg("the part beyond the credit gave rc %d, last %d (%s), not ZMESH_EPROTO", rc,
                 last, zmesh_client_error(client));
    assert_non_null(strstr(zmesh_client_error(client), "beyond the credit"));
    zm_proto_t cancel;
    zframe_t *from = zm_fake_broker_expect(fake, ZM_CMD_CANCEL, &cancel, 5000);
    assert_true(cancel.id == wire_stream);
    zm_proto_reset(&cancel);
    zframe_destroy(&from);
    zframe_destroy(&routing);
    zmesh_client_destroy(&client);
}

//  The worker's handler: "hold" waits until the test releases it; "stream" sends two parts;
//  anything else is answered at once.
static volatile int s_released;

static int
s_handler(const zmesh_msg_t *request, zmesh_msg_t **reply_p, void *arg)
{
    (void) arg;
    const char *data = zmesh_msg_data(request);
    size_t size = zmesh_msg_size(request);
    if (size == 5 && memcmp(data, "\xa4hold", 5) == 0) {
        int64_t until = zclock_mono() + 10000;
        while (!__atomic_load_n(&s_released, __ATOMIC_SEQ_CST) && zclock_mono() < until)
            zclock_sleep(5);                    //  a handler busy elsewhere, not a test wait
        return ZMESH_OK;
    }
    if (size == 7 && memcmp(data, "\xa6stream", 7) == 0) {
        for (int seq = 1; seq <= 2; seq++) {
            uint8_t byte = (uint8_t) seq;
            int rc = zmesh_worker_send_part(&byte, 1, 4000);
            if (rc != ZMESH_OK) {
                zmesh_pack_t *pack = zmesh_pack_new();
                zmesh_pack_str(pack, zmesh_strerror(rc));
                *reply_p = zmesh_msg_new(zmesh_pack_data(pack), zmesh_pack_size(pack));
                zmesh_pack_destroy(&pack);
                return rc;
            }
        }
    }
    return ZMESH_OK;
}

static void *
s_worker_main(void *arg)
{
    zmesh_worker_run(arg, s_handler, NULL);
    return NULL;
}

static void
s_send_request(zm_fake_broker_t *fake, zframe_t *routing, uint64_t ticket, const char *body,
               uint32_t window)
{
    zm_proto_t request;
    zm_proto_init(&request);
    request.cmd = ZM_CMD_REQUEST;
    request.id = ticket;
    snprintf(request.service, sizeof request.service, "files");
    request.timeout_ms = 10000;
    request.attempt = 1;
    request.window = window;
    request.body = zframe_new(body, strlen(body));
    zm_fake_broker_send(fake, routing, &request);
}

//  Tickets start again after a broker restart. A handler of the old session that replies
//  after the new session started a stream with the same ticket must not take that stream's
//  place at the worker: its CREDIT would no longer reach the thread streaming.
static void
test_stream_worker_stale_reply_keeps_current_stream(void **state)
{
    zm_fake_broker_t *fake = *state;
    __atomic_store_n(&s_released, 0, __ATOMIC_SEQ_CST);
    zmesh_worker_t *worker = zmesh_worker_new(fake->endpoint, "files", NULL);
    assert_non_null(worker);
    zmesh_worker_set_threads(worker, 2);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_worker_main, worker), 0);
    //  Session 1: ticket 1 goes to a handler that holds it; then the broker "restarts".
    zm_proto_t command;
    zframe_t *old = zm_fake_broker_expect(fake, ZM_CMD_READY, &command, 5000);
    assert_true(command.flags & ZM_READY_STREAMS);
    zm_proto_reset(&command);
    s_send_request(fake, old, 1, "\xa4hold", 1);
    zm_proto_t disconnect;
    zm_proto_init(&disconnect);
    disconnect.cmd = ZM_CMD_DISCONNECT;
    disconnect.status = 400;
    snprintf(disconnect.reason, sizeof disconnect.reason, "not registered");
    zm_fake_broker_send(fake, old, &disconnect);
    zframe_destroy(&old);
    //  Session 2: ticket 1 again, a stream; its first part uses the first credit.
    zframe_t *routing = zm_fake_broker_expect(fake, ZM_CMD_READY, &command, 5000);
    zm_proto_reset(&command);
    s_send_request(fake, routing, 1, "\xa6stream", 1);
    zframe_t *from = zm_fake_broker_expect(fake, ZM_CMD_PART, &command, 5000);
    assert_true(command.id == 1 && command.seq == 1);
    zm_proto_reset(&command);
    zframe_destroy(&from);
    //  The old handler replies now. Its thread is free once the worker took that reply: a
    //  request then gets a handler (200) instead of "no free handler" (500).
    __atomic_store_n(&s_released, 1, __ATOMIC_SEQ_CST);
    uint64_t probe = 100;
    int64_t until = zclock_mono() + 5000;
    while (true) {
        assert_true(zclock_mono() < until);
        s_send_request(fake, routing, ++probe, "\xa4ping", 0);
        from = zm_fake_broker_expect(fake, ZM_CMD_REPLY, &command, 5000);
        zframe_destroy(&from);
        assert_true(command.id == probe);
        uint32_t status = command.status;
        zm_proto_reset(&command);
        if (status == 200)
            break;
        zclock_sleep(5);                        //  between probes only; the deadline bounds it
    }
    //  The stream's thread must still get its credit: part 2, then the final reply.
    zm_proto_t credit;
    zm_proto_init(&credit);
    credit.cmd = ZM_CMD_CREDIT;
    credit.id = 1;
    credit.window = 1;
    zm_fake_broker_send(fake, routing, &credit);
    zm_proto_t next;
    from = NULL;
    if (!zm_fake_broker_recv(fake, &next, &from, 3000) || next.cmd != ZM_CMD_PART || next.seq != 2)
        fail_msg("the stream of the new session got no part 2 after its CREDIT: the stale reply "
                 "made the worker forget it");
    zm_proto_reset(&next);
    zframe_destroy(&from);
    from = zm_fake_broker_expect(fake, ZM_CMD_REPLY, &next, 5000);
    assert_true(next.id == 1);
    assert_int_equal(next.status, 200);
    zm_proto_reset(&next);
    zframe_destroy(&from);
    zframe_destroy(&routing);
    zmesh_worker_stop(worker);
    pthread_join(thread, NULL);
    zmesh_worker_destroy(&worker);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        ZM_FAKE_BROKER_TEST(test_stream_client_retries_keep_whole_timeout),
        ZM_FAKE_BROKER_TEST(test_stream_client_part_beyond_credit_fails),
        ZM_FAKE_BROKER_TEST(test_stream_worker_stale_reply_keeps_current_stream),
    };
    return cmocka_run_group_tests_name("stream_peers", tests, NULL, NULL);
}
