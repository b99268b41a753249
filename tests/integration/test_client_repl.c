//  test_client_repl.c - the client library's side of replicated services (ZMP.md section 20)
//  against a fake broker: a ROUTER socket in the test that decodes what the client sends with
//  the codec. Writes and quorum reads go out as CALLs with flag 4 or 8 (and a plain call with
//  neither), from the blocking calls and from zmesh_client_send_flags; a retried write keeps
//  its request id, which is its write id, and its flag; two clients start their ids at
//  different random values, so their write ids do not collide; many writes can be in flight
//  and each outcome comes back under its own id.
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

#define S_WRITES 200            //  writes in flight at once in the async test

//  Waits up to timeout_ms for a CALL (dropping any other command) and decodes it into
//  command; *routing_p gets the sender. False if none came in time or what came does not
//  decode: the caller fails the test, and may run on another thread than cmocka's.
static bool
s_recv_call(zm_fake_broker_t *fake, zm_proto_t *command, zframe_t **routing_p, int timeout_ms)
{
    int64_t until = zclock_mono() + timeout_ms;
    while (true) {
        int64_t left = until - zclock_mono();
        if (left <= 0 || zm_fake_broker_poll(fake, command, routing_p, (int) left, NULL) <= 0)
            return false;
        if (command->cmd == ZM_CMD_CALL)
            return true;
        zframe_destroy(routing_p);
        zm_proto_reset(command);
    }
}

//  Expects a CALL within timeout_ms; returns its sender.
static zframe_t *
s_expect_call(zm_fake_broker_t *fake, zm_proto_t *command, int timeout_ms)
{
    zframe_t *routing = NULL;
    if (!s_recv_call(fake, command, &routing, timeout_ms))
        fail_msg("the fake broker got no good CALL within %d ms", timeout_ms);
    return routing;
}

//  Answers request id with status and a positive fixint body holding value.
static void
s_reply(zm_fake_broker_t *fake, zframe_t *routing, uint64_t id, uint32_t status, uint8_t value)
{
    zm_proto_t reply;
    zm_proto_init(&reply);
    reply.cmd = ZM_CMD_REPLY;
    reply.id = id;
    reply.status = status;
    reply.body = zframe_new(&value, 1);
    zm_fake_broker_send(fake, routing, &reply);
}

//  The fixint a reply holds, or -1.
static int
s_fixint(const zmesh_msg_t *msg)
{
    const uint8_t *data = zmesh_msg_data(msg);
    return zmesh_msg_size(msg) == 1 && data[0] < 0x80 ? data[0] : -1;
}

//  zmesh_client_send_flags puts the flag on the wire, and nothing else changes: each
//  CALL asks for PROGRESS as every client call does, and the id handed back is the one
//  on the wire.
static void
test_client_repl_send_flags_on_the_wire(void **state)
{
    zm_fake_broker_t *fake = *state;
    zmesh_client_t *client = zmesh_client_new(fake->endpoint, NULL);
    assert_non_null(client);
    const int flags[] = {0, ZMESH_CALL_WRITE, ZMESH_CALL_QUORUM, -1};     //  -1: zmesh_client_send
    uint64_t ids[4];
    for (int i = 0; i < 4; i++) {
        int rc = flags[i] < 0
                     ? zmesh_client_send(client, "kv", "\x01", 1, 5000, &ids[i])
                     : zmesh_client_send_flags(client, "kv", "\x01", 1, 5000, flags[i], &ids[i]);
        assert_int_equal(rc, ZMESH_OK);
    }
    for (int i = 0; i < 4; i++) {
        zm_proto_t call;
        zframe_t *routing = s_expect_call(fake, &call, 5000);
        uint32_t want = ZM_CALL_PROGRESS | (flags[i] > 0 ? (uint32_t) flags[i] : 0);
        if (call.flags != want || call.id != ids[i])
            fail_msg("call %d: flags %u id %llu, want flags %u id %llu", i, call.flags,
                     (unsigned long long) call.id, want, (unsigned long long) ids[i]);
        assert_string_equal(call.service, "kv");
        assert_true(call.timeout_ms > 4000 && call.timeout_ms <= 5000);
        assert_int_equal(call.window, 0);
        assert_int_equal(zframe_size(call.body), 1);
        s_reply(fake, routing, call.id, 200, (uint8_t) i);
        zframe_destroy(&routing);
        zm_proto_reset(&call);
    }
    for (int i = 0; i < 4; i++) {
        uint64_t id = 0;
        zmesh_msg_t *reply = NULL;
        assert_int_equal(zmesh_client_recv(client, 5000, &id, &reply), ZMESH_OK);
        assert_true(id == ids[s_fixint(reply)]);
        zmesh_msg_destroy(&reply);
    }
    assert_int_equal(zmesh_client_pending(client), 0);
    zmesh_client_destroy(&client);
}

//  The fake's thread for the blocking calls: answers `count` CALLs with their flags as
//  the body (status 200), or gives up after 10 s.
typedef struct {
    zm_fake_broker_t *fake;
    int count;
    int answered;               //  out
} s_answerer_t;

static void *
s_answer_flags(void *arg)
{
    s_answerer_t *answerer = arg;
    for (int i = 0; i < answerer->count; i++) {
        zm_proto_t call;
        zframe_t *routing = NULL;
        if (!s_recv_call(answerer->fake, &call, &routing, 10000))
            break;
        zm_proto_t reply;
        zm_proto_init(&reply);
        reply.cmd = ZM_CMD_REPLY;
        reply.id = call.id;
        reply.status = 200;
        uint8_t value = (uint8_t) call.flags;
        reply.body = zframe_new(&value, 1);
        if (zm_fake_broker_post(answerer->fake, routing, &reply) == 0)
            answerer->answered++;
        zframe_destroy(&routing);
        zm_proto_reset(&call);
    }
    return NULL;
}

//  zmesh_client_write, zmesh_client_read_quorum and zmesh_client_call block for the reply
//  and send flags 4, 8 and neither (the fake answers with the flags it saw).
static void
test_client_repl_blocking_calls_send_their_flag(void **state)
{
    zm_fake_broker_t *fake = *state;
    zmesh_client_t *client = zmesh_client_new(fake->endpoint, NULL);
    assert_non_null(client);
    s_answerer_t answerer = {.fake = fake, .count = 3};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_answer_flags, &answerer), 0);
    zmesh_msg_t *write = NULL, *quorum = NULL, *plain = NULL;
    int write_rc = zmesh_client_write(client, "kv", "\x81\xa1k\x01", 4, 5000, &write);
    int quorum_rc = zmesh_client_read_quorum(client, "kv", "\xa1k", 2, 5000, &quorum);
    int plain_rc = zmesh_client_call(client, "kv", "\xa1k", 2, 5000, &plain);
    pthread_join(thread, NULL);
    assert_int_equal(answerer.answered, 3);
    assert_int_equal(write_rc, ZMESH_OK);
    assert_int_equal(quorum_rc, ZMESH_OK);
    assert_int_equal(plain_rc, ZMESH_OK);
    assert_int_equal(s_fixint(write), ZM_CALL_PROGRESS | ZM_CALL_WRITE);
    assert_int_equal(s_fixint(quorum), ZM_CALL_PROGRESS | ZM_CALL_QUORUM);
    assert_int_equal(s_fixint(plain), ZM_CALL_PROGRESS);
    zmesh_msg_destroy(&write);
    zmesh_msg_destroy(&quorum);
    zmesh_msg_destroy(&plain);
    zmesh_client_destroy(&client);
}

//  A write whose attempt goes unanswered is sent again with the same request id, its write
//  id, and the write flag: the replicas recognise it and apply it once.
static void
test_client_repl_retry_keeps_write_id(void **state)
{
    zm_fake_broker_t *fake = *state;
    zmesh_client_t *client = zmesh_client_new(fake->endpoint, NULL);
    assert_non_null(client);
    zmesh_client_set_retries(client, 2);        //  three attempts of 1000 ms
    uint64_t id = 0;
    assert_int_equal(zmesh_client_send_flags(client, "kv", "\x01", 1, 3000, ZMESH_CALL_WRITE,
                                             &id),
                     ZMESH_OK);
    zm_proto_t first, second;
    zframe_t *routing = s_expect_call(fake, &first, 2000);
    zframe_destroy(&routing);
    //  Unanswered: the client must give the next attempt before its own deadline.
    zmesh_msg_t *reply = NULL;
    uint64_t got = 0;
    assert_int_equal(zmesh_client_recv(client, 1500, &got, &reply), ZMESH_EAGAIN);
    routing = s_expect_call(fake, &second, 2000);
    assert_true(first.id == id);
    assert_true(second.id == id);
    assert_true(first.flags & ZM_CALL_WRITE);
    assert_true(second.flags & ZM_CALL_WRITE);
    assert_false(second.flags & ZM_CALL_QUORUM);
    assert_true(second.timeout_ms < first.timeout_ms);  //  the same call's time, running out
    assert_true(zframe_eq(first.body, second.body));
    s_reply(fake, routing, second.id, 200, 7);
    assert_int_equal(zmesh_client_recv(client, 5000, &got, &reply), ZMESH_OK);
    assert_true(got == id);
    assert_int_equal(s_fixint(reply), 7);
    zmesh_msg_destroy(&reply);
    zframe_destroy(&routing);
    zm_proto_reset(&first);
    zm_proto_reset(&second);
    zmesh_client_destroy(&client);
}

//  Two clients, made one after the other in one process, start their request ids at
//  different random points below 2^63: not both at 1, as a counter from 0 would.
static void
test_client_repl_first_ids_differ_between_clients(void **state)
{
    zm_fake_broker_t *fake = *state;
    zmesh_client_t *a = zmesh_client_new(fake->endpoint, NULL);
    zmesh_client_t *b = zmesh_client_new(fake->endpoint, NULL);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t id_a = 0, id_b = 0, id_a2 = 0;
    assert_int_equal(zmesh_client_send_flags(a, "kv", "\x01", 1, 5000, ZMESH_CALL_WRITE, &id_a),
                     ZMESH_OK);
    assert_int_equal(zmesh_client_send_flags(b, "kv", "\x01", 1, 5000, ZMESH_CALL_WRITE, &id_b),
                     ZMESH_OK);
    assert_int_equal(zmesh_client_send_flags(a, "kv", "\x01", 1, 5000, ZMESH_CALL_WRITE,
                                             &id_a2),
                     ZMESH_OK);
    if (id_a == id_b || id_a == 1 || id_b == 1)
        fail_msg("first ids %llu and %llu", (unsigned long long) id_a,
                 (unsigned long long) id_b);
    //  Below 2^63 + the calls made: far from wrapping round to 0, the id replicas do not
    //  deduplicate.
    assert_true(id_a > 0 && id_a <= (UINT64_C(1) << 63));
    assert_true(id_b > 0 && id_b <= (UINT64_C(1) << 63));
    assert_true(id_a2 == id_a + 1);
    //  The wire has the same ids.
    uint64_t seen[3];
    for (int i = 0; i < 3; i++) {
        zm_proto_t call;
        zframe_t *routing = s_expect_call(fake, &call, 5000);
        seen[i] = call.id;
        zframe_destroy(&routing);
        zm_proto_reset(&call);
    }
    for (int i = 0; i < 3; i++)
        assert_true(seen[i] == id_a || seen[i] == id_b || seen[i] == id_a2);
    assert_true(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
    zmesh_client_destroy(&a);
    zmesh_client_destroy(&b);
}

//  S_WRITES writes in flight at once from one client: each has its own id, all carry the
//  write flag, and answers given in reverse order come back to the right ids.
static void
test_client_repl_many_writes_in_flight(void **state)
{
    zm_fake_broker_t *fake = *state;
    zmesh_client_t *client = zmesh_client_new(fake->endpoint, NULL);
    assert_non_null(client);
    uint64_t *ids = calloc(S_WRITES, sizeof *ids);
    uint64_t *wire = calloc(S_WRITES, sizeof *wire);
    zframe_t *routing = NULL;
    assert_non_null(ids);
    assert_non_null(wire);
    for (int i = 0; i < S_WRITES; i++) {
        uint8_t body = (uint8_t) (i % 128);
        assert_int_equal(zmesh_client_send_flags(client, "kv", &body, 1, 10000, ZMESH_CALL_WRITE,
                                                 &ids[i]),
                         ZMESH_OK);
    }
    assert_int_equal(zmesh_client_pending(client), S_WRITES);
    for (int i = 0; i < S_WRITES; i++) {
        zm_proto_t call;
        zframe_destroy(&routing);
        routing = s_expect_call(fake, &call, 5000);
        assert_true(call.flags & ZM_CALL_WRITE);
        assert_true(call.id == ids[i]);         //  one connection keeps the order of the sends
        wire[i] = call.id;
        zm_proto_reset(&call);
    }
    for (int i = S_WRITES - 1; i >= 0; i--)
        s_reply(fake, routing, wire[i], 200, (uint8_t) (i % 128));
    for (int i = 0; i < S_WRITES; i++) {
        uint64_t id = 0;
        zmesh_msg_t *reply = NULL;
        assert_int_equal(zmesh_client_recv(client, 5000, &id, &reply), ZMESH_OK);
        //  Reversed: the i-th outcome is the write sent last but i.
        int index = S_WRITES - 1 - i;
        assert_true(id == ids[index]);
        assert_int_equal(s_fixint(reply), index % 128);
        zmesh_msg_destroy(&reply);
    }
    assert_int_equal(zmesh_client_pending(client), 0);
    zframe_destroy(&routing);
    free(ids);
    free(wire);
    zmesh_client_destroy(&client);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        ZM_FAKE_BROKER_TEST(test_client_repl_send_flags_on_the_wire),
        ZM_FAKE_BROKER_TEST(test_client_repl_blocking_calls_send_their_flag),
        ZM_FAKE_BROKER_TEST(test_client_repl_retry_keeps_write_id),
        ZM_FAKE_BROKER_TEST(test_client_repl_first_ids_differ_between_clients),
        ZM_FAKE_BROKER_TEST(test_client_repl_many_writes_in_flight),
    };
    return cmocka_run_group_tests_name("client_repl", tests, NULL, NULL);
}
